/*
 * The I/O methods of a file SQLite opened through the VFS: database, rollback journal,
 * WAL, super-journal. Reads and writes go straight to bypassfs with the calling thread's
 * context; xSync is bfs_fdatasync when SQLite says only the data matters
 * (SQLITE_SYNC_DATAONLY) and bfs_fsync otherwise.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

static int file_close(sqlite3_file *file) {
  struct bfs_file *f = (struct bfs_file *)file;
  int rc = SQLITE_OK;
  bfs_inode_detach(f);
  if (bfs_close(f->file) != 0) rc = SQLITE_IOERR_CLOSE;
  if (f->delete_on_close) {
    bfs_fs_t fs;
    if (bfs_vfs_fs(f->vfs, &fs) == SQLITE_OK) bfs_unlink(fs, f->path);
  }
  f->methods = NULL;
  return rc;
}

static int file_read(sqlite3_file *file, void *buf, int amount, sqlite3_int64 offset) {
  struct bfs_file *f = (struct bfs_file *)file;
  bfs_ctx_t ctx;
  if (bfs_vfs_ctx(f->vfs, &ctx) != SQLITE_OK) return SQLITE_IOERR_READ;
  char *p = buf;
  int done = 0;
  while (done < amount) {
    ssize_t n = bfs_pread(ctx, f->file, p + done, (size_t)(amount - done),
                          (uint64_t)offset + (uint64_t)done);
    if (n < 0) return SQLITE_IOERR_READ;
    if (n == 0) break;
    done += (int)n;
  }
  if (done < amount) {
    /* SQLite relies on the unread tail being zeroes. */
    memset(p + done, 0, (size_t)(amount - done));
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

static int file_write(sqlite3_file *file, const void *buf, int amount, sqlite3_int64 offset) {
  struct bfs_file *f = (struct bfs_file *)file;
  bfs_ctx_t ctx;
  if (bfs_vfs_ctx(f->vfs, &ctx) != SQLITE_OK) return SQLITE_IOERR_WRITE;
  const char *p = buf;
  int done = 0;
  while (done < amount) {
    ssize_t n = bfs_pwrite(ctx, f->file, p + done, (size_t)(amount - done),
                           (uint64_t)offset + (uint64_t)done);
    if (n <= 0) {
      /* Part of it may be written: the size is bfs_fstat's business again. */
      bfs_inode_resized(f, BFS_RESIZE_UNKNOWN, 0);
      return n == -ENOSPC ? SQLITE_FULL : SQLITE_IOERR_WRITE;
    }
    done += (int)n;
  }
  bfs_inode_resized(f, BFS_RESIZE_WRITTEN_TO, (uint64_t)offset + (uint64_t)amount);
  return SQLITE_OK;
}

static int file_truncate(sqlite3_file *file, sqlite3_int64 size) {
  struct bfs_file *f = (struct bfs_file *)file;
  bfs_ctx_t ctx;
  if (bfs_vfs_ctx(f->vfs, &ctx) != SQLITE_OK) return SQLITE_IOERR_TRUNCATE;
  if (bfs_ftruncate(ctx, f->file, (uint64_t)size) != 0) {
    bfs_inode_resized(f, BFS_RESIZE_UNKNOWN, 0);
    return SQLITE_IOERR_TRUNCATE;
  }
  bfs_inode_resized(f, BFS_RESIZE_TRUNCATED_TO, (uint64_t)size);
  return SQLITE_OK;
}

static int file_sync(sqlite3_file *file, int flags) {
  struct bfs_file *f = (struct bfs_file *)file;
  bfs_ctx_t ctx;
  if (bfs_vfs_ctx(f->vfs, &ctx) != SQLITE_OK) return SQLITE_IOERR_FSYNC;
  int rc;
  if (flags & SQLITE_SYNC_DATAONLY)
    rc = bfs_fdatasync(ctx, f->file);
  else
    rc = bfs_fsync(ctx, f->file);
  return rc == 0 ? SQLITE_OK : SQLITE_IOERR_FSYNC;
}

static int file_size(sqlite3_file *file, sqlite3_int64 *out) {
  uint64_t size;
  int rc = bfs_inode_size((struct bfs_file *)file, &size);
  *out = (sqlite3_int64)size;
  return rc;
}

static int file_control(sqlite3_file *file, int op, void *arg) {
  struct bfs_file *f = (struct bfs_file *)file;
  if (op == SQLITE_FCNTL_VFSNAME) {
    *(char **)arg = sqlite3_mprintf("%s", f->vfs->name);
    return SQLITE_OK;
  }
  return SQLITE_NOTFOUND;
}

static int file_sector_size(sqlite3_file *file) {
  (void)file;
  return 4096;
}

/*
 * Writing some bytes of a file never changes bytes around them after a crash, as copy on
 * write rewrites a block elsewhere and switches to it at commit (what
 * POWERSAFE_OVERWRITE promises). Nothing stronger is claimed: a multi-block write is not
 * atomic.
 */
static int file_device_characteristics(sqlite3_file *file) {
  (void)file;
  return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

const sqlite3_io_methods bfs_io_methods = {
    .iVersion = 2,
    .xClose = file_close,
    .xRead = file_read,
    .xWrite = file_write,
    .xTruncate = file_truncate,
    .xSync = file_sync,
    .xFileSize = file_size,
    .xLock = bfs_lock,
    .xUnlock = bfs_unlock,
    .xCheckReservedLock = bfs_check_reserved_lock,
    .xFileControl = file_control,
    .xSectorSize = file_sector_size,
    .xDeviceCharacteristics = file_device_characteristics,
    .xShmMap = bfs_shm_map,
    .xShmLock = bfs_shm_lock,
    .xShmBarrier = bfs_shm_barrier,
    .xShmUnmap = bfs_shm_unmap,
};
