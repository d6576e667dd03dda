/*
 * Internals of the bypassfs SQLite VFS, shared by its files:
 *   vfs.c   the sqlite3_vfs methods (open, delete, access, full pathname) and registration
 *   file.c  the sqlite3_io_methods of a database, journal or WAL file
 *   lock.c  per-file records: SQLite's lock levels and WAL shared memory between the
 *           connections of this process, and the file's size
 *   ctx.c   per-thread bypassfs contexts and the mount-on-first-use of the extension
 *   ext.c   the loadable extension's entry point
 *
 * The same sources build the static library (linked against libsqlite3) and the extension
 * (-DBFS_SQLITE_EXTENSION: every sqlite3_* call goes through the table SQLite hands the
 * extension, as sqlite3ext.h arranges).
 */
#ifndef BFS_SQLITE_INTERNAL_H
#define BFS_SQLITE_INTERNAL_H

#ifdef BFS_SQLITE_EXTENSION
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3
#else
#include <sqlite3.h>
#endif

#include <pthread.h>
#include <stdint.h>

#include "bfs_sqlite.h"

/* Longest path inside the filesystem that the VFS hands out. */
#define BFS_SQLITE_MAX_PATH 512

/* One registered VFS: a filesystem, or a device to mount on first use. */
struct bfs_vfs {
  sqlite3_vfs base;
  /* The default VFS at registration: randomness, time, sleep, temporary files. */
  sqlite3_vfs *host;
  pthread_mutex_t mount_lock;
  /* 0 until mounted (env mode) or the embedder's filesystem. */
  bfs_fs_t fs;
  /* Env mode: the device to mount, whether to format it first; NULL for embedders. */
  char *device;
  int format;
  char name[64];
};

/* What every process-wide lock record is keyed by: one file of one filesystem. */
struct bfs_inode;

/* An open database, journal or WAL file. */
struct bfs_file {
  const sqlite3_io_methods *methods; /* must be first: this is a sqlite3_file */
  struct bfs_vfs *vfs;
  bfs_file_t file;
  /* The record shared with the other handles of the file: locks, WAL memory, size. */
  struct bfs_inode *inode;
  int lock_level; /* SQLITE_LOCK_NONE ... SQLITE_LOCK_EXCLUSIVE */
  /* This connection's WAL shared-memory locks, one bit per lock slot. */
  uint16_t shm_shared, shm_excl;
  int shm_open;
  int delete_on_close;
  char path[BFS_SQLITE_MAX_PATH];
};

/* ctx.c */
int bfs_vfs_fs(struct bfs_vfs *v, bfs_fs_t *out);
int bfs_vfs_ctx(struct bfs_vfs *v, bfs_ctx_t *out);

/* file.c */
extern const sqlite3_io_methods bfs_io_methods;

/* lock.c */
int bfs_inode_attach(struct bfs_file *f, uint64_t ino, uint64_t size);
void bfs_inode_detach(struct bfs_file *f);
int bfs_inode_size(struct bfs_file *f, uint64_t *out);
enum bfs_resize { BFS_RESIZE_WRITTEN_TO, BFS_RESIZE_TRUNCATED_TO, BFS_RESIZE_UNKNOWN };
void bfs_inode_resized(struct bfs_file *f, enum bfs_resize how, uint64_t size);
int bfs_lock(sqlite3_file *file, int level);
int bfs_unlock(sqlite3_file *file, int level);
int bfs_check_reserved_lock(sqlite3_file *file, int *out);
int bfs_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out);
int bfs_shm_lock(sqlite3_file *file, int offset, int n, int flags);
void bfs_shm_barrier(sqlite3_file *file);
int bfs_shm_unmap(sqlite3_file *file, int delete_flag);

/* vfs.c */
int bfs_register(struct bfs_vfs *v, int make_default);

#endif /* BFS_SQLITE_INTERNAL_H */
