/*
 * The sqlite3_vfs methods and registration.
 *
 * Files SQLite names live in the bypassfs filesystem; a relative name is taken from its
 * root. Files without a name (temporary databases, sorter spill) are opened by the default
 * VFS in the host's temporary directory, exactly where SQLite would put them anyway:
 * the sqlite3_file then belongs to that VFS and never comes back here. Randomness, time
 * and sleep are the default VFS's too.
 *
 * bypassfs makes a namespace change (create, unlink) durable at its next commit, and the
 * filesystem lives in this process: a process that dies loses what was not committed, as
 * a kernel filesystem loses it at power loss. So xDelete always makes the unlink durable
 * (bfs_fsync_dir of the parent), whatever dirSync says: SQLite deletes a rollback journal
 * to commit a transaction, and a journal that came back after a kill would roll a
 * committed transaction back. A new file's name becomes durable with its first xSync
 * (a file's fsync commits its new name).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

static int vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n_out, char *out) {
  (void)vfs;
  size_t len = strlen(name);
  int relative = name[0] != '/';
  if (len + (size_t)relative + 1 > (size_t)n_out || len + 2 > BFS_SQLITE_MAX_PATH)
    return SQLITE_CANTOPEN;
  out[0] = '/';
  memcpy(out + relative, name, len + 1);
  return SQLITE_OK;
}

static int open_flags(int flags) {
  int o = (flags & SQLITE_OPEN_READWRITE) ? O_RDWR : O_RDONLY;
  if (flags & SQLITE_OPEN_CREATE) o |= O_CREAT;
  if (flags & SQLITE_OPEN_EXCLUSIVE) o |= O_EXCL;
  return o;
}

static int vfs_open(sqlite3_vfs *base, const char *name, sqlite3_file *file, int flags,
                    int *out_flags) {
  struct bfs_vfs *v = (struct bfs_vfs *)base;
  struct bfs_file *f = (struct bfs_file *)file;
  if (name == NULL) return v->host->xOpen(v->host, NULL, file, flags, out_flags);

  memset(f, 0, sizeof *f);
  f->vfs = v;
  int rc = vfs_full_pathname(base, name, sizeof f->path, f->path);
  if (rc != SQLITE_OK) return rc;
  bfs_ctx_t ctx;
  rc = bfs_vfs_ctx(v, &ctx);
  if (rc != SQLITE_OK) return SQLITE_CANTOPEN;

  int err = bfs_open(ctx, f->path, open_flags(flags), 0644, &f->file);
  if ((err == -EROFS || err == -EACCES) && (flags & SQLITE_OPEN_READWRITE) &&
      !(flags & SQLITE_OPEN_CREATE)) {
    /* As the unix VFS: a database that cannot be written is opened read-only. */
    flags = (flags & ~SQLITE_OPEN_READWRITE) | SQLITE_OPEN_READONLY;
    err = bfs_open(ctx, f->path, O_RDONLY, 0, &f->file);
  }
  if (err != 0) return SQLITE_CANTOPEN;

  /* Records are shared by inode, so that two names of one file agree. */
  struct bfs_stat st;
  rc = bfs_fstat(f->file, &st) == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
  if (rc == SQLITE_OK) rc = bfs_inode_attach(f, st.ino, st.size);
  if (rc != SQLITE_OK) {
    bfs_close(f->file);
    return rc;
  }
  f->delete_on_close = (flags & SQLITE_OPEN_DELETEONCLOSE) != 0;
  f->methods = &bfs_io_methods;
  if (out_flags != NULL) *out_flags = flags;
  return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *base, const char *name, int dir_sync) {
  (void)dir_sync; /* always synced: see the top of this file */
  struct bfs_vfs *v = (struct bfs_vfs *)base;
  char path[BFS_SQLITE_MAX_PATH];
  bfs_fs_t fs;
  if (vfs_full_pathname(base, name, sizeof path, path) != SQLITE_OK) return SQLITE_IOERR_DELETE;
  if (bfs_vfs_fs(v, &fs) != SQLITE_OK) return SQLITE_IOERR_DELETE;
  int err = bfs_unlink(fs, path);
  if (err == -ENOENT) return SQLITE_IOERR_DELETE_NOENT;
  if (err != 0) return SQLITE_IOERR_DELETE;
  /* The parent: everything up to the last '/' (the root for "/name"). */
  char *slash = strrchr(path, '/');
  if (slash == path) slash[1] = '\0';
  else *slash = '\0';
  return bfs_fsync_dir(fs, path) == 0 ? SQLITE_OK : SQLITE_IOERR_DIR_FSYNC;
}

static int vfs_access(sqlite3_vfs *base, const char *name, int flags, int *out) {
  struct bfs_vfs *v = (struct bfs_vfs *)base;
  char path[BFS_SQLITE_MAX_PATH];
  bfs_fs_t fs;
  struct bfs_stat st;
  *out = 0;
  if (vfs_full_pathname(base, name, sizeof path, path) != SQLITE_OK) return SQLITE_OK;
  if (bfs_vfs_fs(v, &fs) != SQLITE_OK) return SQLITE_IOERR_ACCESS;
  int err = bfs_stat(fs, path, &st);
  if (err == -ENOENT || err == -ENOTDIR) return SQLITE_OK;
  if (err != 0) return SQLITE_IOERR_ACCESS;
  if (flags == SQLITE_ACCESS_EXISTS) {
    /* As the unix VFS: an empty journal is no journal (SQLite truncates them to zero). */
    *out = !S_ISREG(st.mode) || st.size > 0;
  } else {
    *out = 1;
  }
  return SQLITE_OK;
}

/* Loading extensions, randomness, time: the default VFS's. */
static void *vfs_dl_open(sqlite3_vfs *b, const char *path) {
  sqlite3_vfs *h = ((struct bfs_vfs *)b)->host;
  return h->xDlOpen(h, path);
}
static void vfs_dl_error(sqlite3_vfs *b, int n, char *msg) {
  sqlite3_vfs *h = ((struct bfs_vfs *)b)->host;
  h->xDlError(h, n, msg);
}
static void (*vfs_dl_sym(sqlite3_vfs *b, void *lib, const char *sym))(void) {
  sqlite3_vfs *h = ((struct bfs_vfs *)b)->host;
  return h->xDlSym(h, lib, sym);
}
static void vfs_dl_close(sqlite3_vfs *b, void *lib) {
  sqlite3_vfs *h = ((struct bfs_vfs *)b)->host;
  h->xDlClose(h, lib);
}
static int vfs_randomness(sqlite3_vfs *b, int n, char *out) {
  sqlite3_vfs *h = ((struct bfs_vfs *)b)->host;
  return h->xRandomness(h, n, out);
}
static int vfs_sleep(sqlite3_vfs *b, int us) {
  sqlite3_vfs *h = ((struct bfs_vfs *)b)->host;
  return h->xSleep(h, us);
}
static int vfs_current_time(sqlite3_vfs *b, double *out) {
  sqlite3_vfs *h = ((struct bfs_vfs *)b)->host;
  return h->xCurrentTime(h, out);
}
static int vfs_get_last_error(sqlite3_vfs *b, int n, char *out) {
  sqlite3_vfs *h = ((struct bfs_vfs *)b)->host;
  return h->xGetLastError ? h->xGetLastError(h, n, out) : 0;
}
static int vfs_current_time_int64(sqlite3_vfs *b, sqlite3_int64 *out) {
  sqlite3_vfs *h = ((struct bfs_vfs *)b)->host;
  if (h->iVersion >= 2 && h->xCurrentTimeInt64 != NULL) return h->xCurrentTimeInt64(h, out);
  double now;
  int rc = h->xCurrentTime(h, &now);
  *out = (sqlite3_int64)(now * 86400000.0);
  return rc;
}

int bfs_register(struct bfs_vfs *v, int make_default) {
  sqlite3_vfs *existing = sqlite3_vfs_find(v->name);
  if (existing != NULL) {
    /* Registering again what is registered is harmless (an extension loaded by each
     * connection does), another filesystem under a taken name is not. */
    const struct bfs_vfs *e = (const struct bfs_vfs *)existing;
    int same = existing->xOpen == vfs_open &&
               (v->device != NULL ? e->device != NULL : e->device == NULL && e->fs == v->fs);
    free(v->device);
    free(v);
    if (!same) return SQLITE_MISUSE;
    return make_default ? sqlite3_vfs_register(existing, 1) : SQLITE_OK;
  }
  v->host = sqlite3_vfs_find(NULL);
  if (v->host == NULL) return SQLITE_ERROR;
  pthread_mutex_init(&v->mount_lock, NULL);
  sqlite3_vfs *b = &v->base;
  b->iVersion = 2;
  b->szOsFile = (int)sizeof(struct bfs_file);
  if (b->szOsFile < v->host->szOsFile) b->szOsFile = v->host->szOsFile;
  b->mxPathname = BFS_SQLITE_MAX_PATH - 1;
  b->zName = v->name;
  b->xOpen = vfs_open;
  b->xDelete = vfs_delete;
  b->xAccess = vfs_access;
  b->xFullPathname = vfs_full_pathname;
  b->xDlOpen = vfs_dl_open;
  b->xDlError = vfs_dl_error;
  b->xDlSym = vfs_dl_sym;
  b->xDlClose = vfs_dl_close;
  b->xRandomness = vfs_randomness;
  b->xSleep = vfs_sleep;
  b->xCurrentTime = vfs_current_time;
  b->xGetLastError = vfs_get_last_error;
  b->xCurrentTimeInt64 = vfs_current_time_int64;
  /* The VFS lives as long as the process: SQLite keeps pointing at it. */
  return sqlite3_vfs_register(b, make_default);
}

/* An extension runs inside an initialised SQLite (and has no sqlite3_initialize). */
static int init_sqlite(void) {
#ifdef BFS_SQLITE_EXTENSION
  return SQLITE_OK;
#else
  return sqlite3_initialize();
#endif
}

static struct bfs_vfs *new_vfs(const char *name) {
  struct bfs_vfs *v = calloc(1, sizeof *v);
  if (v == NULL) return NULL;
  if (name == NULL) name = BFS_SQLITE_VFS_NAME;
  if (strlen(name) >= sizeof v->name) {
    free(v);
    return NULL;
  }
  strcpy(v->name, name);
  return v;
}

int bfs_sqlite_register_as(const char *name, bfs_fs_t fs, int make_default) {
  if (fs == 0) return SQLITE_MISUSE;
  int rc = init_sqlite();
  if (rc != SQLITE_OK) return rc;
  struct bfs_vfs *v = new_vfs(name);
  if (v == NULL) return name != NULL && strlen(name) >= 64 ? SQLITE_MISUSE : SQLITE_NOMEM;
  v->fs = fs;
  return bfs_register(v, make_default);
}

int bfs_sqlite_register(bfs_fs_t fs, int make_default) {
  return bfs_sqlite_register_as(NULL, fs, make_default);
}

int bfs_sqlite_register_env(int make_default) {
  const char *device = getenv("BFS_SQLITE_DEVICE");
  const char *format = getenv("BFS_SQLITE_FORMAT");
  if (device == NULL || device[0] == '\0') return SQLITE_MISUSE;
  int rc = init_sqlite();
  if (rc != SQLITE_OK) return rc;
  struct bfs_vfs *v = new_vfs(NULL);
  if (v == NULL) return SQLITE_NOMEM;
  v->device = strdup(device);
  if (v->device == NULL) {
    free(v);
    return SQLITE_NOMEM;
  }
  v->format = format != NULL && strcmp(format, "1") == 0;
  return bfs_register(v, make_default);
}
