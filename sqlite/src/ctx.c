/*
 * Contexts and mounting.
 *
 * A bypassfs context belongs to one thread (the C API's rule), while SQLite may use a
 * connection from any thread: each thread gets its own context per filesystem on its first
 * I/O, kept in thread-local slots; the C API destroys it when the thread exits.
 *
 * A VFS registered from the environment mounts its device on the first call that needs the
 * filesystem (so loading the extension costs nothing until a database is opened) and
 * unmounts it at exit, which makes everything durable even without a final fsync.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { CTX_SLOTS = 4 };

struct ctx_slot {
  bfs_fs_t fs;
  bfs_ctx_t ctx;
};

/*
 * When a thread exits, the C API drops its contexts by itself (they live in its
 * thread-locals, which are gone before any pthread key destructor could run), and these
 * slots go with the thread too.
 */
static __thread struct ctx_slot slots[CTX_SLOTS];

void bfs_sqlite_release_context(bfs_fs_t fs) {
  for (int i = 0; i < CTX_SLOTS; i++) {
    if (slots[i].fs == fs) {
      bfs_ctx_destroy(slots[i].ctx);
      slots[i].fs = 0;
      slots[i].ctx = 0;
    }
  }
}

int bfs_vfs_ctx(struct bfs_vfs *v, bfs_ctx_t *out) {
  bfs_fs_t fs;
  int rc = bfs_vfs_fs(v, &fs);
  if (rc != SQLITE_OK) return rc;
  int free_slot = -1;
  for (int i = 0; i < CTX_SLOTS; i++) {
    if (slots[i].fs == fs) {
      *out = slots[i].ctx;
      return SQLITE_OK;
    }
    if (slots[i].fs == 0 && free_slot < 0) free_slot = i;
  }
  if (free_slot < 0) {
    /* More filesystems than slots on one thread: recycle the first slot. */
    bfs_ctx_destroy(slots[0].ctx);
    free_slot = 0;
  }
  bfs_ctx_t ctx;
  if (bfs_ctx_create(fs, &ctx) != 0) return SQLITE_IOERR;
  slots[free_slot].fs = fs;
  slots[free_slot].ctx = ctx;
  *out = ctx;
  return SQLITE_OK;
}

/* The environment-mounted VFSes, unmounted at exit. */
static pthread_mutex_t mounted_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bfs_vfs *mounted[CTX_SLOTS];

static void *unmount_all(void *unused) {
  (void)unused;
  pthread_mutex_lock(&mounted_lock);
  for (int i = 0; i < CTX_SLOTS; i++) {
    struct bfs_vfs *v = mounted[i];
    if (v == NULL) continue;
    /* -EBUSY: a database is still open; what SQLite synced is durable already. */
    if (bfs_unmount(v->fs) == 0) v->fs = 0;
    mounted[i] = NULL;
  }
  pthread_mutex_unlock(&mounted_lock);
  return NULL;
}

/*
 * exit() destroys the main thread's thread-locals before it runs atexit handlers, the
 * C API's contexts among them, and the C API cannot be called on that thread any more:
 * unmount from a fresh thread instead.
 */
static void unmount_at_exit(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, unmount_all, NULL) == 0) pthread_join(t, NULL);
}

static int mount_device(struct bfs_vfs *v) {
  int rc;
  if (v->format) {
    rc = bfs_format(v->device);
    if (rc != 0) {
      fprintf(stderr, "bypassfs VFS: formatting %s failed: %s\n", v->device, strerror(-rc));
      return SQLITE_CANTOPEN;
    }
    v->format = 0;
  }
  bfs_fs_t fs;
  rc = bfs_mount(v->device, 0, &fs);
  if (rc != 0) {
    fprintf(stderr, "bypassfs VFS: mounting %s failed: %s\n", v->device, strerror(-rc));
    return SQLITE_CANTOPEN;
  }
  pthread_mutex_lock(&mounted_lock);
  static int registered;
  if (!registered) registered = atexit(unmount_at_exit) == 0;
  for (int i = 0; i < CTX_SLOTS; i++) {
    if (mounted[i] == NULL) {
      mounted[i] = v;
      break;
    }
  }
  pthread_mutex_unlock(&mounted_lock);
  __atomic_store_n(&v->fs, fs, __ATOMIC_RELEASE);
  return SQLITE_OK;
}

int bfs_vfs_fs(struct bfs_vfs *v, bfs_fs_t *out) {
  bfs_fs_t fs = __atomic_load_n(&v->fs, __ATOMIC_ACQUIRE);
  if (fs == 0) {
    if (v->device == NULL) return SQLITE_MISUSE;
    pthread_mutex_lock(&v->mount_lock);
    int rc = v->fs != 0 ? SQLITE_OK : mount_device(v);
    pthread_mutex_unlock(&v->mount_lock);
    if (rc != SQLITE_OK) return rc;
    fs = v->fs;
  }
  *out = fs;
  return SQLITE_OK;
}
