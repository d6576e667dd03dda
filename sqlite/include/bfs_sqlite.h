/*
 * bypassfs SQLite VFS: SQLite databases stored in a bypassfs filesystem.
 *
 * Embedders that mount the filesystem themselves register it with bfs_sqlite_register()
 * (link libbfs_sqlite.a, libbypassfs and libsqlite3). The loadable extension
 * (bypassfs.so, entry point sqlite3_bypassfs_init) registers a VFS that mounts the device
 * named by $BFS_SQLITE_DEVICE on first use instead: see sqlite/README.md.
 *
 * Paths given to SQLite are paths inside the bypassfs filesystem ("/db/app.db"; a relative
 * name is taken from the root). Temporary files without a name (sorter spill, temp tables)
 * go to the default VFS, as SQLite puts them in the host's temporary directory anyway.
 */
#ifndef BFS_SQLITE_H
#define BFS_SQLITE_H

#include "bypassfs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The VFS name bfs_sqlite_register() and the extension use. */
#define BFS_SQLITE_VFS_NAME "bypassfs"

/*
 * Registers the VFS "bypassfs" over the mounted filesystem `fs`; with make_default != 0
 * it becomes SQLite's default VFS. The caller keeps `fs` mounted while any database of it
 * is open. Returns an SQLite result code (SQLITE_MISUSE when `fs` is 0 or the name is taken
 * by a VFS over another filesystem).
 */
int bfs_sqlite_register(bfs_fs_t fs, int make_default);

/*
 * Destroys the calling thread's bypassfs context of `fs`, which the VFS made on the
 * thread's first I/O (threads that exit lose theirs by themselves). Call it on each live
 * thread that used the VFS before bfs_unmount(fs): a context keeps the filesystem's device
 * open, so without it a later mount of the same device fails with -EBUSY.
 */
void bfs_sqlite_release_context(bfs_fs_t fs);

/* bfs_sqlite_register() under another name, for several filesystems in one process. */
int bfs_sqlite_register_as(const char *name, bfs_fs_t fs, int make_default);

/*
 * Registers the VFS "bypassfs" over the device named by the environment variable
 * BFS_SQLITE_DEVICE, mounted on the first file operation (formatted first if
 * BFS_SQLITE_FORMAT=1) and unmounted at exit. What the extension's entry point calls.
 */
int bfs_sqlite_register_env(int make_default);

#ifdef __cplusplus
}
#endif

#endif /* BFS_SQLITE_H */
