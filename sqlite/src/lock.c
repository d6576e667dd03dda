/*
 * SQLite's locks between the connections of this process, and WAL shared memory.
 *
 * A mounted bypassfs belongs to one process (a read-write mount holds the device
 * exclusively), so every connection that can touch a database is in this process and its
 * locks can live in memory: one record per open file (filesystem, inode), shared by all
 * handles of it, guarded by one mutex. SQLite locks only database files.
 *
 * Lock levels follow os_unix.c's rules without its fcntl half:
 * - the record's `level` is the strongest lock any connection holds; `shared` counts the
 *   connections holding SHARED or more;
 * - a connection may go above SHARED only when it holds the strongest lock (so RESERVED
 *   and PENDING have one holder), and nobody gets SHARED while PENDING or EXCLUSIVE is held;
 * - EXCLUSIVE needs every other connection gone from SHARED; until then the asker keeps
 *   PENDING, which lets readers finish but admits no new ones.
 *
 * The record also keeps the file's size, which xFileSize answers (SQLite asks at the start
 * of every transaction, and bfs_fstat walks the file's extents to count its blocks): every
 * write and truncate of the file goes through this VFS while it is open, so the size is
 * set from bfs_fstat when the record is made and moved by each write and truncate after;
 * an I/O error forgets it, and the next xFileSize asks bfs_fstat again.
 *
 * WAL shared memory is heap memory of the record, zeroed when first mapped: a database
 * opened for the first time in this process therefore runs WAL recovery, as after a crash.
 * Its eight lock slots hold -1 (exclusive), 0 (free) or the number of shared holders;
 * each connection remembers its own in two bit masks.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { SHM_NLOCK = SQLITE_SHM_NLOCK };

struct bfs_inode {
  struct bfs_inode *next;
  bfs_fs_t fs;
  uint64_t ino;
  int refs;
  /* The file's size, while size_known. */
  uint64_t size;
  int size_known;
  int shared;
  int level;
  /* WAL shared memory, while any connection has it open. */
  int shm_refs;
  int shm_region_size;
  int shm_nregion;
  void **shm_regions;
  int shm_lock[SHM_NLOCK];
};

static pthread_mutex_t inodes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bfs_inode *inodes;

int bfs_inode_attach(struct bfs_file *f, uint64_t ino, uint64_t size) {
  bfs_fs_t fs;
  int rc = bfs_vfs_fs(f->vfs, &fs);
  if (rc != SQLITE_OK) return rc;
  pthread_mutex_lock(&inodes_lock);
  struct bfs_inode *n = inodes;
  while (n != NULL && !(n->fs == fs && n->ino == ino)) n = n->next;
  if (n == NULL) {
    n = calloc(1, sizeof *n);
    if (n == NULL) {
      pthread_mutex_unlock(&inodes_lock);
      return SQLITE_NOMEM;
    }
    n->fs = fs;
    n->ino = ino;
    n->size = size;
    n->size_known = 1;
    n->next = inodes;
    inodes = n;
  }
  n->refs++;
  f->inode = n;
  pthread_mutex_unlock(&inodes_lock);
  return SQLITE_OK;
}

/* Drops the file's locks and its reference to the record (freeing it after the last). */
void bfs_inode_detach(struct bfs_file *f) {
  struct bfs_inode *n = f->inode;
  if (n == NULL) return;
  if (f->shm_open) bfs_shm_unmap((sqlite3_file *)f, 0);
  bfs_unlock((sqlite3_file *)f, SQLITE_LOCK_NONE);
  pthread_mutex_lock(&inodes_lock);
  if (--n->refs == 0) {
    struct bfs_inode **p = &inodes;
    while (*p != n) p = &(*p)->next;
    *p = n->next;
    free(n);
  }
  f->inode = NULL;
  pthread_mutex_unlock(&inodes_lock);
}

int bfs_inode_size(struct bfs_file *f, uint64_t *out) {
  struct bfs_inode *n = f->inode;
  pthread_mutex_lock(&inodes_lock);
  int known = n->size_known;
  *out = n->size;
  pthread_mutex_unlock(&inodes_lock);
  if (known) return SQLITE_OK;
  struct bfs_stat st;
  if (bfs_fstat(f->file, &st) != 0) return SQLITE_IOERR_FSTAT;
  pthread_mutex_lock(&inodes_lock);
  n->size = st.size;
  n->size_known = 1;
  pthread_mutex_unlock(&inodes_lock);
  *out = st.size;
  return SQLITE_OK;
}

void bfs_inode_resized(struct bfs_file *f, enum bfs_resize how, uint64_t size) {
  struct bfs_inode *n = f->inode;
  pthread_mutex_lock(&inodes_lock);
  switch (how) {
  case BFS_RESIZE_WRITTEN_TO:
    if (size > n->size) n->size = size;
    break;
  case BFS_RESIZE_TRUNCATED_TO:
    n->size = size;
    break;
  case BFS_RESIZE_UNKNOWN:
    n->size_known = 0;
    break;
  }
  pthread_mutex_unlock(&inodes_lock);
}

int bfs_lock(sqlite3_file *file, int level) {
  struct bfs_file *f = (struct bfs_file *)file;
  struct bfs_inode *n = f->inode;
  if (f->lock_level >= level) return SQLITE_OK;
  int rc = SQLITE_OK;
  pthread_mutex_lock(&inodes_lock);
  if (n->level != f->lock_level && (n->level >= SQLITE_LOCK_PENDING || level > SQLITE_LOCK_SHARED)) {
    /* Someone else holds the strongest lock: no SHARED under PENDING, nothing above it. */
    rc = SQLITE_BUSY;
  } else if (level == SQLITE_LOCK_SHARED) {
    n->shared++;
    if (n->level < SQLITE_LOCK_SHARED) n->level = SQLITE_LOCK_SHARED;
    f->lock_level = SQLITE_LOCK_SHARED;
  } else if (level == SQLITE_LOCK_EXCLUSIVE && n->shared > 1) {
    /* Readers remain: hold PENDING so no new ones come, and let SQLite retry. */
    n->level = SQLITE_LOCK_PENDING;
    f->lock_level = SQLITE_LOCK_PENDING;
    rc = SQLITE_BUSY;
  } else {
    n->level = level;
    f->lock_level = level;
  }
  pthread_mutex_unlock(&inodes_lock);
  return rc;
}

int bfs_unlock(sqlite3_file *file, int level) {
  struct bfs_file *f = (struct bfs_file *)file;
  struct bfs_inode *n = f->inode;
  if (f->lock_level <= level) return SQLITE_OK;
  pthread_mutex_lock(&inodes_lock);
  /* Above SHARED this connection held the record's strongest lock. */
  if (f->lock_level > SQLITE_LOCK_SHARED) n->level = SQLITE_LOCK_SHARED;
  if (level == SQLITE_LOCK_NONE) {
    if (--n->shared == 0) n->level = SQLITE_LOCK_NONE;
  }
  f->lock_level = level;
  pthread_mutex_unlock(&inodes_lock);
  return SQLITE_OK;
}

int bfs_check_reserved_lock(sqlite3_file *file, int *out) {
  struct bfs_file *f = (struct bfs_file *)file;
  pthread_mutex_lock(&inodes_lock);
  *out = f->inode->level > SQLITE_LOCK_SHARED;
  pthread_mutex_unlock(&inodes_lock);
  return SQLITE_OK;
}

int bfs_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out) {
  struct bfs_file *f = (struct bfs_file *)file;
  struct bfs_inode *n = f->inode;
  *out = NULL;
  int rc = SQLITE_OK;
  pthread_mutex_lock(&inodes_lock);
  if (!f->shm_open) {
    f->shm_open = 1;
    n->shm_refs++;
  }
  if (n->shm_region_size == 0) n->shm_region_size = size;
  if (n->shm_region_size != size) {
    rc = SQLITE_IOERR_SHMSIZE;
  } else if (region >= n->shm_nregion) {
    if (extend) {
      void **grown = realloc(n->shm_regions, (size_t)(region + 1) * sizeof *grown);
      if (grown == NULL) {
        rc = SQLITE_IOERR_NOMEM;
      } else {
        n->shm_regions = grown;
        while (n->shm_nregion <= region) {
          void *r = calloc(1, (size_t)size);
          if (r == NULL) {
            rc = SQLITE_IOERR_NOMEM;
            break;
          }
          n->shm_regions[n->shm_nregion++] = r;
        }
      }
    }
  }
  if (rc == SQLITE_OK && region < n->shm_nregion) *out = n->shm_regions[region];
  pthread_mutex_unlock(&inodes_lock);
  return rc;
}

int bfs_shm_lock(sqlite3_file *file, int offset, int n_locks, int flags) {
  struct bfs_file *f = (struct bfs_file *)file;
  struct bfs_inode *n = f->inode;
  if (offset < 0 || n_locks < 1 || offset + n_locks > SHM_NLOCK)
    return SQLITE_IOERR_SHMLOCK;
  uint16_t mask = (uint16_t)(((1u << n_locks) - 1) << offset);
  int rc = SQLITE_OK;
  pthread_mutex_lock(&inodes_lock);
  if (flags & SQLITE_SHM_UNLOCK) {
    for (int i = offset; i < offset + n_locks; i++) {
      if (f->shm_excl & (1u << i)) n->shm_lock[i] = 0;
      else if (f->shm_shared & (1u << i)) n->shm_lock[i]--;
    }
    f->shm_excl &= (uint16_t)~mask;
    f->shm_shared &= (uint16_t)~mask;
  } else if (flags & SQLITE_SHM_SHARED) {
    /* SQLite asks for shared locks one slot at a time. */
    if ((f->shm_shared | f->shm_excl) & mask) {
      /* held already */
    } else if (n->shm_lock[offset] < 0) {
      rc = SQLITE_BUSY;
    } else {
      n->shm_lock[offset]++;
      f->shm_shared |= mask;
    }
  } else {
    for (int i = offset; i < offset + n_locks && rc == SQLITE_OK; i++) {
      if (!(f->shm_excl & (1u << i)) && n->shm_lock[i] != 0) rc = SQLITE_BUSY;
    }
    if (rc == SQLITE_OK) {
      for (int i = offset; i < offset + n_locks; i++) n->shm_lock[i] = -1;
      f->shm_excl |= mask;
    }
  }
  pthread_mutex_unlock(&inodes_lock);
  return rc;
}

void bfs_shm_barrier(sqlite3_file *file) {
  (void)file;
  /* A full fence, and the mutex orders this with every other connection's lock calls. */
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  pthread_mutex_lock(&inodes_lock);
  pthread_mutex_unlock(&inodes_lock);
}

/* Called with inodes_lock held. */
static void shm_release(struct bfs_file *f) {
  struct bfs_inode *n = f->inode;
  for (int i = 0; i < SHM_NLOCK; i++) {
    if (f->shm_excl & (1u << i)) n->shm_lock[i] = 0;
    else if (f->shm_shared & (1u << i)) n->shm_lock[i]--;
  }
  f->shm_excl = f->shm_shared = 0;
  f->shm_open = 0;
  if (--n->shm_refs == 0) {
    for (int i = 0; i < n->shm_nregion; i++) free(n->shm_regions[i]);
    free(n->shm_regions);
    n->shm_regions = NULL;
    n->shm_nregion = 0;
    n->shm_region_size = 0;
  }
}

int bfs_shm_unmap(sqlite3_file *file, int delete_flag) {
  /* Nothing is on disk to delete: the memory goes with the last connection. */
  (void)delete_flag;
  struct bfs_file *f = (struct bfs_file *)file;
  if (!f->shm_open) return SQLITE_OK;
  pthread_mutex_lock(&inodes_lock);
  shm_release(f);
  pthread_mutex_unlock(&inodes_lock);
  return SQLITE_OK;
}
