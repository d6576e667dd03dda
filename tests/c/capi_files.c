/* The C API test: lifecycle, files and their space, threads, read-only mounts. */
#include "capi_test.h"

/* format, mount, unmount, contexts; their flags and handles. */
void lifecycle(struct env *e) {
  bfs_fs_t fs, fs2;
  bfs_ctx_t ctx;
  struct bfs_device_opts bad_opts = {.flags = 1u << 9};
  EQ(bfs_format(NULL), -EINVAL);
  EQ(bfs_format("/nonexistent/dir/img"), -ENODEV);
  EQ(bfs_format_with(e->dev, &bad_opts), -EINVAL);
  EQ(bfs_mount(NULL, 0, &fs), -EINVAL);
  EQ(bfs_mount(e->dev, 0, NULL), -EINVAL);
  EQ(bfs_mount(e->dev, 1u << 5, &fs), -EINVAL);
  EQ(bfs_mount("/nonexistent/dir/img", 0, &fs), -ENODEV);
  EQ(bfs_mount_with(e->dev, &bad_opts, 0, &fs), -EINVAL);
  OK(bfs_mount_with(e->dev, NULL, 0, &fs));
  /* A read-write mount holds the device: a second mount and a format are refused. */
  EQ(bfs_mount(e->dev, 0, &fs2), -EBUSY);
  EQ(bfs_mount(e->dev, BFS_MOUNT_RDONLY, &fs2), -EBUSY);
  EQ(bfs_format(e->dev), -EBUSY);
  EQ(bfs_ctx_create(fs, NULL), -EINVAL);
  OK(bfs_ctx_create(fs, &ctx));
  OK(bfs_sync(ctx));
  OK(bfs_ctx_destroy(ctx));
  EQ(bfs_ctx_destroy(ctx), -EBADF);
  EQ(bfs_sync(ctx), -EBADF);
  OK(bfs_unmount(fs));
  EQ(bfs_unmount(fs), -EBADF);
  EQ(bfs_ctx_create(fs, &ctx), -EBADF);
  struct env z = {.fs = 1, .ctx = 2};
  for (int i = 0; i < N_BAD; i++) {
    EQ(bfs_unmount(bad_handle(&z, i, 0)), -EBADF);
    EQ(bfs_ctx_create(bad_handle(&z, i, 0), &ctx), -EBADF);
    EQ(bfs_ctx_destroy(bad_handle(&z, i, 0)), -EBADF);
    EQ(bfs_sync(bad_handle(&z, i, 0)), -EBADF);
  }
  /* Taking over a mount claim that is clean is an ordinary mount. */
  OK(bfs_mount(e->dev, BFS_MOUNT_TAKEOVER, &fs));
  OK(bfs_unmount(fs));
  /* Unmounting destroys the calling thread's contexts of the filesystem: the handle is
   * dead, and the device it held open can be mounted again at once. */
  OK(bfs_mount(e->dev, 0, &fs));
  OK(bfs_ctx_create(fs, &ctx));
  OK(bfs_unmount(fs));
  EQ(bfs_sync(ctx), -EBADF);
  EQ(bfs_ctx_destroy(ctx), -EBADF);
  OK(bfs_mount(e->dev, 0, &fs));
  OK(bfs_unmount(fs));
}

/* open flags, close, synchronous I/O, fsync, ftruncate, truncate. */
void files(struct env *e) {
  up(e);
  bfs_file_t f, g;
  struct bfs_stat st;
  static unsigned char buf[16384], back[16384];
  fill(buf, sizeof buf, 2);
  OK(bfs_mkdir(e->fs, "/files", 0755));
  EQ(bfs_open(e->ctx, "/files/a", O_RDWR, 0644, &f), -ENOENT);
  EQ(bfs_open(e->ctx, "/files/a", O_RDWR | O_CREAT, 0644, NULL), -EINVAL);
  EQ(bfs_open(e->ctx, NULL, O_RDWR | O_CREAT, 0644, &f), -EINVAL);
  EQ(bfs_open(e->ctx, "/files/a", O_ACCMODE, 0644, &f), -EINVAL);
  EQ(bfs_open(e->ctx, "/files", O_RDONLY, 0, &f), -EISDIR);
  EQ(bfs_open(e->ctx, "/nodir/a", O_RDWR | O_CREAT, 0644, &f), -ENOENT);
  OK(bfs_open(e->ctx, "/files/a", O_RDWR | O_CREAT | O_EXCL, 0644, &f));
  EQ(bfs_open(e->ctx, "/files/a", O_RDWR | O_CREAT | O_EXCL, 0644, &g), -EEXIST);
  EQ(bfs_pwrite(e->ctx, f, buf, sizeof buf, 0), (long long)sizeof buf);
  EQ(bfs_pread(e->ctx, f, back, sizeof back, 0), (long long)sizeof back);
  TRUE(memcmp(buf, back, sizeof buf) == 0);
  EQ(bfs_pread(e->ctx, f, back, sizeof back, 1 << 20), 0);
  EQ(bfs_pread(e->ctx, f, NULL, 16, 0), -EINVAL);
  EQ(bfs_pwrite(e->ctx, f, NULL, 16, 0), -EINVAL);
  EQ(bfs_pread(e->ctx, f, back, SIZE_MAX, 0), -EINVAL);
  EQ(bfs_pwrite(e->ctx, f, buf, SIZE_MAX, 0), -EINVAL);
  /* Paths are UTF-8. */
  EQ(bfs_open(e->ctx, "/files/\xff", O_RDWR | O_CREAT, 0644, &g), -EINVAL);
  EQ(bfs_mkdir(e->fs, "/files/\xfe", 0755), -EINVAL);
  EQ(bfs_pwrite(e->ctx, f, buf, 16, INT64_MAX), -EFBIG);
  OK(bfs_fsync(e->ctx, f));
  OK(bfs_ftruncate(e->ctx, f, 100));
  OK(bfs_fstat(f, &st));
  EQ(st.size, 100);
  EQ(bfs_ftruncate(e->ctx, f, UINT64_MAX), -EFBIG);
  OK(bfs_truncate(e->ctx, "/files/a", 5000));
  OK(bfs_fstat(f, &st));
  EQ(st.size, 5000);
  EQ(bfs_pread(e->ctx, f, back, sizeof back, 0), 5000);
  TRUE(memcmp(back, buf, 100) == 0 && back[100] == 0 && back[4999] == 0);
  EQ(bfs_truncate(e->ctx, "/files", 0), -EISDIR);
  EQ(bfs_truncate(e->ctx, "/files/none", 0), -ENOENT);
  EQ(bfs_truncate(e->ctx, "/files/a", UINT64_MAX), -EFBIG);
  EQ(bfs_truncate(e->ctx, NULL, 0), -EINVAL);
  /* O_TRUNC, O_APPEND, and a read-only handle's writes. */
  OK(bfs_open(e->ctx, "/files/a", O_WRONLY | O_APPEND, 0, &g));
  EQ(bfs_pwrite(e->ctx, g, buf, 10, 0), 10);
  OK(bfs_fstat(g, &st));
  EQ(st.size, 5010);
  EQ(bfs_pread(e->ctx, g, back, 10, 0), -EBADF);
  OK(bfs_close(g));
  OK(bfs_open(e->ctx, "/files/a", O_RDONLY, 0, &g));
  EQ(bfs_pwrite(e->ctx, g, buf, 10, 0), -EBADF);
  EQ(bfs_ftruncate(e->ctx, g, 0), -EBADF);
  OK(bfs_close(g));
  OK(bfs_open(e->ctx, "/files/a", O_RDWR | O_TRUNC | O_SYNC, 0, &g));
  OK(bfs_fstat(g, &st));
  EQ(st.size, 0);
  EQ(bfs_pwrite(e->ctx, g, buf, 4096, 0), 4096);
  OK(bfs_close(g));
  /* O_DIRECT: aligned I/O from ordinary memory (bounced). */
  static unsigned char abuf[8192] __attribute__((aligned(4096)));
  OK(bfs_open(e->ctx, "/files/d", O_RDWR | O_CREAT | O_DIRECT | O_DSYNC, 0600, &g));
  fill(abuf, sizeof abuf, 3);
  EQ(bfs_pwrite(e->ctx, g, abuf, sizeof abuf, 0), (long long)sizeof abuf);
  memset(back, 0, sizeof back);
  EQ(bfs_pread(e->ctx, g, back, sizeof abuf, 0), (long long)sizeof abuf);
  TRUE(memcmp(back, abuf, sizeof abuf) == 0);
  EQ(bfs_pwrite(e->ctx, g, abuf, 100, 0), -EINVAL);
  OK(bfs_close(g));

  /* A file open keeps the filesystem mounted. */
  EQ(bfs_unmount(e->fs), -EBUSY);
  for (int i = 0; i < N_BAD; i++) {
    uint64_t bf = bad_handle(e, i, f), bc = bad_handle(e, i, e->ctx);
    EQ(bfs_open(bc, "/files/a", O_RDONLY, 0, &g), -EBADF);
    EQ(bfs_close(bf), -EBADF);
    EQ(bfs_pread(e->ctx, bf, back, 16, 0), -EBADF);
    EQ(bfs_pread(bc, f, back, 16, 0), -EBADF);
    EQ(bfs_pwrite(e->ctx, bf, buf, 16, 0), -EBADF);
    EQ(bfs_pwrite(bc, f, buf, 16, 0), -EBADF);
    EQ(bfs_fsync(e->ctx, bf), -EBADF);
    EQ(bfs_fsync(bc, f), -EBADF);
    EQ(bfs_ftruncate(e->ctx, bf, 0), -EBADF);
    EQ(bfs_ftruncate(bc, f, 0), -EBADF);
    EQ(bfs_truncate(bc, "/files/a", 0), -EBADF);
  }
  OK(bfs_close(f));
  EQ(bfs_close(f), -EBADF);
  EQ(bfs_pread(e->ctx, f, back, 16, 0), -EBADF);
  down(e);
}

/* A file of one filesystem is refused with a context of another. */
void two_filesystems(struct env *e, const char *dev2) {
  up(e);
  bfs_fs_t fs2;
  bfs_ctx_t ctx2;
  bfs_file_t f;
  unsigned char b[16] = {0};
  OK(bfs_format(dev2));
  OK(bfs_mount(dev2, 0, &fs2));
  OK(bfs_ctx_create(fs2, &ctx2));
  OK(bfs_open(e->ctx, "/two", O_RDWR | O_CREAT, 0644, &f));
  EQ(bfs_pwrite(ctx2, f, b, sizeof b, 0), -EBADF);
  EQ(bfs_fsync(ctx2, f), -EBADF);
  EQ(bfs_fallocate(ctx2, f, 0, 0, 4096), -EBADF);
  EQ(bfs_fchmod(ctx2, f, 0600), -EBADF);
  OK(bfs_close(f));
  OK(bfs_ctx_destroy(ctx2));
  OK(bfs_unmount(fs2));
  down(e);
}

/* Contexts belong to the thread that made them. */
static void *other_thread(void *arg) {
  const struct env *e = arg;
  unsigned char b[16];
  static long long r[3];
  r[0] = bfs_sync(e->ctx);
  r[1] = bfs_pread(e->ctx, 0, b, sizeof b, 0);
  r[2] = bfs_ctx_destroy(e->ctx);
  return r;
}

/* A worker of its own: its context, its file, and a file the main thread opened (file
 * handles serve any thread). Records the first call that went wrong (0: none), since the
 * check counters belong to the main thread. */
struct job {
  bfs_fs_t fs;
  bfs_file_t shared;
  int id;
  int failed_at;
  long long rc;
};

static void *worker(void *arg) {
  struct job *j = arg;
  enum { CHUNK = 16 << 10, CHUNKS = 16 };
  static __thread unsigned char buf[CHUNK], back[CHUNK];
  bfs_ctx_t ctx;
  bfs_file_t f;
  char path[32];
  long long rc;
#define STEP(n, expr, want)                                                               \
  do {                                                                                    \
    if ((rc = (long long)(expr)) != (long long)(want)) {                                  \
      j->failed_at = (n);                                                                 \
      j->rc = rc;                                                                         \
      return NULL;                                                                        \
    }                                                                                     \
  } while (0)
  STEP(1, bfs_ctx_create(j->fs, &ctx), 0);
  snprintf(path, sizeof path, "/par%d", j->id);
  STEP(2, bfs_open(ctx, path, O_RDWR | O_CREAT | O_EXCL, 0644, &f), 0);
  for (int i = 0; i < CHUNKS; i++) {
    fill(buf, CHUNK, (unsigned)(j->id * 100 + i));
    STEP(3, bfs_pwrite(ctx, f, buf, CHUNK, (uint64_t)i * CHUNK), CHUNK);
  }
  STEP(4, bfs_fsync(ctx, f), 0);
  for (int i = 0; i < CHUNKS; i++) {
    fill(buf, CHUNK, (unsigned)(j->id * 100 + i));
    STEP(5, bfs_pread(ctx, f, back, CHUNK, (uint64_t)i * CHUNK), CHUNK);
    STEP(6, memcmp(buf, back, CHUNK), 0);
  }
  STEP(7, bfs_pread(ctx, j->shared, back, 4, 0), 4);
  STEP(8, memcmp(back, "main", 4), 0);
  STEP(9, bfs_close(f), 0);
  STEP(10, bfs_ctx_destroy(ctx), 0);
#undef STEP
  return NULL;
}

void threads(struct env *e) {
  up(e);
  pthread_t t[4];
  void *res;
  OK(pthread_create(&t[0], NULL, other_thread, e));
  OK(pthread_join(t[0], &res));
  long long *r = res;
  EQ(r[0], -EBADF);
  EQ(r[1], -EBADF);
  EQ(r[2], -EBADF);

  /* Workers in parallel on one filesystem, each with its own context. */
  bfs_file_t shared;
  struct job jobs[4];
  OK(bfs_open(e->ctx, "/shared", O_RDWR | O_CREAT, 0644, &shared));
  EQ(bfs_pwrite(e->ctx, shared, "main", 4, 0), 4);
  for (int i = 0; i < 4; i++) {
    jobs[i] = (struct job){.fs = e->fs, .shared = shared, .id = i};
    OK(pthread_create(&t[i], NULL, worker, &jobs[i]));
  }
  for (int i = 0; i < 4; i++) {
    OK(pthread_join(t[i], NULL));
    EQ(jobs[i].failed_at, 0);
    if (jobs[i].failed_at)
      fprintf(stderr, "worker %d: step %d returned %lld\n", i, jobs[i].failed_at, jobs[i].rc);
  }
  OK(bfs_close(shared));
  down(e);
}

/* fstat, fdatasync, fallocate, seek data/hole, statfs, access. */
void file_space(struct env *e) {
  up(e);
  bfs_file_t f, ro;
  struct bfs_stat st;
  struct bfs_statfs sf;
  static unsigned char buf[64 << 10], back[64 << 10];
  fill(buf, sizeof buf, 1);

  OK(bfs_mkdir(e->fs, "/space", 0755));
  OK(bfs_open(e->ctx, "/space/f", O_RDWR | O_CREAT | O_EXCL, 0640, &f));
  EQ(bfs_pwrite(e->ctx, f, buf, 8192, 0), 8192);
  OK(bfs_fstat(f, &st));
  EQ(st.size, 8192);
  TRUE(S_ISREG(st.mode) && (st.mode & 07777) == 0640);
  EQ(st.nlink, 1);
  TRUE(st.blocks >= 16);
  OK(bfs_fdatasync(e->ctx, f));

  OK(bfs_statfs(e->fs, &sf));
  TRUE(sf.block_size >= 512 && sf.blocks > 0);
  TRUE(sf.blocks_free <= sf.blocks && sf.blocks_avail <= sf.blocks_free);
  EQ(sf.name_max, 255);
  TRUE(sf.files >= 2);

  /* Preallocation grows the file; KEEP_SIZE does not; both read as zeroes. */
  OK(bfs_fallocate(e->ctx, f, 0, 8192, 1 << 20));
  OK(bfs_fstat(f, &st));
  EQ(st.size, 8192 + (1 << 20));
  OK(bfs_fallocate(e->ctx, f, FALLOC_FL_KEEP_SIZE, 4 << 20, 65536));
  OK(bfs_fstat(f, &st));
  EQ(st.size, 8192 + (1 << 20));
  EQ(bfs_pread(e->ctx, f, back, 4096, 65536), 4096);
  TRUE(back[0] == 0 && back[4095] == 0);
  /* A punched hole reads as zeroes and keeps the size; a zeroed range too. */
  EQ(bfs_pwrite(e->ctx, f, buf, sizeof buf, 1 << 20), (long long)sizeof buf);
  OK(bfs_fallocate(e->ctx, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
  EQ(bfs_pread(e->ctx, f, back, 8192, 0), 8192);
  TRUE(back[0] == 0 && back[4095] == 0 && memcmp(back + 4096, buf + 4096, 4096) == 0);
  OK(bfs_fallocate(e->ctx, f, FALLOC_FL_ZERO_RANGE, (1 << 20) + 4096, 4096));
  EQ(bfs_pread(e->ctx, f, back, 8192, 1 << 20), 8192);
  TRUE(memcmp(back, buf, 4096) == 0 && back[4096] == 0 && back[8191] == 0);
  OK(bfs_fallocate(e->ctx, f, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 8 << 20, 4096));
  OK(bfs_fstat(f, &st));
  EQ(st.size, (1 << 20) + sizeof buf);
  /* Modes fs-core lacks, and a punch that would change the size. */
  EQ(bfs_fallocate(e->ctx, f, FALLOC_FL_PUNCH_HOLE, 0, 4096), -EOPNOTSUPP);
  EQ(bfs_fallocate(e->ctx, f, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), -EOPNOTSUPP);
  EQ(bfs_fallocate(e->ctx, f, FALLOC_FL_INSERT_RANGE, 0, 4096), -EOPNOTSUPP);
  EQ(bfs_fallocate(e->ctx, f, 0x4000, 0, 4096), -EOPNOTSUPP);
  EQ(bfs_fallocate(e->ctx, f, 0, 0, 0), -EINVAL);
  EQ(bfs_fallocate(e->ctx, f, 0, INT64_MAX, 4096), -EFBIG);

  /* Data and holes: a sparse file with data at 0 and at 1 MiB. */
  bfs_file_t sp;
  OK(bfs_open(e->ctx, "/space/sparse", O_RDWR | O_CREAT, 0600, &sp));
  EQ(bfs_pwrite(e->ctx, sp, buf, 4096, 0), 4096);
  EQ(bfs_pwrite(e->ctx, sp, buf, 4096, 1 << 20), 4096);
  OK(bfs_fsync(e->ctx, sp));
  EQ(bfs_seek(e->ctx, sp, 0, SEEK_DATA), 0);
  EQ(bfs_seek(e->ctx, sp, 0, SEEK_HOLE), 4096);
  EQ(bfs_seek(e->ctx, sp, 4096, SEEK_DATA), 1 << 20);
  EQ(bfs_seek(e->ctx, sp, (1 << 20) + 1, SEEK_HOLE), (1 << 20) + 4096);
  EQ(bfs_seek(e->ctx, sp, (1 << 20) + 4096, SEEK_DATA), -ENXIO);
  EQ(bfs_seek(e->ctx, sp, 5 << 20, SEEK_HOLE), -ENXIO);
  EQ(bfs_seek(e->ctx, sp, 0, SEEK_SET), -EINVAL);
  EQ(bfs_seek(e->ctx, sp, 0, 77), -EINVAL);
  OK(bfs_close(sp));

  /* access: existence, modes, a read-only handle's writes. */
  OK(bfs_access(e->fs, "/space/f", F_OK));
  OK(bfs_access(e->fs, "/space/f", R_OK | W_OK));
  EQ(bfs_access(e->fs, "/space/f", X_OK), -EACCES);
  OK(bfs_access(e->fs, "/space", X_OK));
  EQ(bfs_access(e->fs, "/space/nope", F_OK), -ENOENT);
  EQ(bfs_access(e->fs, "/space/f/below", F_OK), -ENOTDIR);
  EQ(bfs_access(e->fs, "/space/f", 0x40), -EINVAL);
  EQ(bfs_access(e->fs, "relative", F_OK), -ENOENT);
  EQ(bfs_access(e->fs, NULL, F_OK), -EINVAL);
  OK(bfs_open(e->ctx, "/space/f", O_RDONLY, 0, &ro));
  EQ(bfs_fallocate(e->ctx, ro, 0, 0, 4096), -EBADF);
  EQ(bfs_fdatasync(e->ctx, ro), 0);
  OK(bfs_close(ro));

  /* Bad handles and NULL outputs. */
  for (int i = 0; i < N_BAD; i++) {
    uint64_t bf = bad_handle(e, i, f), bc = bad_handle(e, i, e->ctx);
    uint64_t bs = bad_handle(e, i, e->fs);
    EQ(bfs_fstat(bf, &st), -EBADF);
    EQ(bfs_fdatasync(e->ctx, bf), -EBADF);
    EQ(bfs_fdatasync(bc, f), -EBADF);
    EQ(bfs_fallocate(e->ctx, bf, 0, 0, 4096), -EBADF);
    EQ(bfs_fallocate(bc, f, 0, 0, 4096), -EBADF);
    EQ(bfs_seek(e->ctx, bf, 0, SEEK_DATA), -EBADF);
    EQ(bfs_seek(bc, f, 0, SEEK_DATA), -EBADF);
    EQ(bfs_statfs(bs, &sf), -EBADF);
    EQ(bfs_access(bs, "/space", F_OK), -EBADF);
  }
  EQ(bfs_fstat(f, NULL), -EINVAL);
  EQ(bfs_statfs(e->fs, NULL), -EINVAL);
  OK(bfs_close(f));
  EQ(bfs_fstat(f, &st), -EBADF);
  down(e);
}

/* A read-only mount: reads work, every change is -EROFS. */
void read_only(struct env *e) {
  bfs_fs_t fs;
  bfs_ctx_t ctx;
  bfs_file_t f;
  struct bfs_stat st;
  char b[4];
  OK(bfs_mount(e->dev, BFS_MOUNT_RDONLY, &fs));
  OK(bfs_ctx_create(fs, &ctx));
  OK(bfs_stat(fs, "/files/a", &st));
  OK(bfs_access(fs, "/files/a", R_OK));
  EQ(bfs_access(fs, "/files/a", W_OK), -EROFS);
  OK(bfs_open(ctx, "/files/a", O_RDONLY, 0, &f));
  EQ(bfs_pread(ctx, f, b, sizeof b, 0), (long long)sizeof b);
  OK(bfs_close(f));
  /* As open(2): a handle that could write is refused at open. */
  EQ(bfs_open(ctx, "/files/a", O_RDWR, 0, &f), -EROFS);
  EQ(bfs_open(ctx, "/files/a", O_WRONLY | O_TRUNC, 0, &f), -EROFS);
  OK(bfs_open(ctx, "/files/a", O_RDONLY, 0, &f));
  /* A read-only handle: not open for writing (as fallocate(2) and ftruncate(2) say). */
  EQ(bfs_pwrite(ctx, f, b, sizeof b, 0), -EBADF);
  EQ(bfs_fallocate(ctx, f, 0, 0, 4096), -EBADF);
  EQ(bfs_ftruncate(ctx, f, 0), -EBADF);
  OK(bfs_close(f));
  EQ(bfs_mkdir(fs, "/ro", 0755), -EROFS);
  EQ(bfs_unlink(fs, "/files/a"), -EROFS);
  EQ(bfs_chmod(ctx, "/files/a", 0600), -EROFS);
  EQ(bfs_setxattr(fs, "/x", "user.ro", "x", 1, 0), -EROFS);
  EQ(bfs_open(ctx, "/files/new", O_RDWR | O_CREAT, 0644, &f), -EROFS);
  OK(bfs_ctx_destroy(ctx));
  OK(bfs_unmount(fs));
}
