/*
 * The C API test: every call of include/bypassfs.h, its results and each error a bad
 * handle, a bad path or a bad flag can reach. Built with -Wall -Werror (and once more with
 * -fsanitize=address) and run by tests/capi_c.rs on a fresh image file:
 *
 *   capi_test IMAGE SECOND-IMAGE
 *
 * Each section mounts the image afresh, so a failure names the area it is in.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "bypassfs.h"

static int checks, failures;

/* Compares as long long so that int, ssize_t and int64_t results print alike. */
#define EQ(expr, want)                                                                    \
  do {                                                                                    \
    long long got_ = (long long)(expr), want_ = (long long)(want);                        \
    checks++;                                                                             \
    if (got_ != want_) {                                                                  \
      failures++;                                                                         \
      fprintf(stderr, "%s:%d: %s is %lld (%s), expected %lld\n", __FILE__, __LINE__,      \
              #expr, got_, got_ < 0 ? strerror((int)-got_) : "-", want_);                 \
    }                                                                                     \
  } while (0)
#define OK(expr) EQ(expr, 0)
#define TRUE(cond) EQ(!!(cond), 1)

/* The handles of a section, mounted and torn down around it. */
struct env {
  const char *dev;
  bfs_fs_t fs;
  bfs_ctx_t ctx;
};

static void up(struct env *e) {
  OK(bfs_mount(e->dev, 0, &e->fs));
  OK(bfs_ctx_create(e->fs, &e->ctx));
}

static void down(struct env *e) {
  OK(bfs_ctx_destroy(e->ctx));
  OK(bfs_unmount(e->fs));
}

/* Handles that name nothing where `right` is expected: zero, made up, forged ones of each
 * kind (a kind tag with a counter never handed out), and the section's real ones of another
 * kind. */
static uint64_t bad_handle(const struct env *e, int i, uint64_t right) {
  const uint64_t v[] = {0,
                        0xdeadbeefcafeULL,
                        0xB1000000FFFFFFFFULL,
                        0xB2000000FFFFFFFFULL,
                        0xB3000000FFFFFFFFULL,
                        0xB4000000FFFFFFFFULL,
                        e->fs,
                        e->ctx};
  return v[i] == right ? 0xB5000000FFFFFFFFULL : v[i];
}
enum { N_BAD = 8 };

static void fill(unsigned char *buf, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(i * 131 + seed);
}

/* fstat, fdatasync, fallocate, seek data/hole, statfs, access. */
static void file_space(struct env *e) {
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

/* format, mount, unmount, contexts; their flags and handles. */
static void lifecycle(struct env *e) {
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
  /* A context whose filesystem was unmounted is dead too. */
  OK(bfs_mount(e->dev, 0, &fs));
  OK(bfs_ctx_create(fs, &ctx));
  OK(bfs_unmount(fs));
  EQ(bfs_sync(ctx), -EBADF);
  EQ(bfs_ctx_destroy(ctx), 0);
}

/* open flags, close, synchronous I/O, fsync, ftruncate, truncate. */
static void files(struct env *e) {
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
static void two_filesystems(struct env *e, const char *dev2) {
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

static void threads(struct env *e) {
  up(e);
  pthread_t t;
  void *res;
  OK(pthread_create(&t, NULL, other_thread, e));
  OK(pthread_join(t, &res));
  long long *r = res;
  EQ(r[0], -EBADF);
  EQ(r[1], -EBADF);
  EQ(r[2], -EBADF);
  down(e);
}

/* mkdir, rmdir, unlink, rename with its flags, link, symlink, readlink, stat. */
static void names(struct env *e) {
  up(e);
  struct bfs_stat st, st2;
  bfs_file_t f;
  char target[64];
  OK(bfs_mkdir(e->fs, "/n", 0750));
  EQ(bfs_mkdir(e->fs, "/n", 0750), -EEXIST);
  EQ(bfs_mkdir(e->fs, "/missing/x", 0750), -ENOENT);
  EQ(bfs_mkdir(e->fs, NULL, 0750), -EINVAL);
  OK(bfs_stat(e->fs, "/n", &st));
  TRUE(S_ISDIR(st.mode) && (st.mode & 07777) == 0750);
  EQ(bfs_stat(e->fs, "/n/x", &st), -ENOENT);
  EQ(bfs_stat(e->fs, "/n", NULL), -EINVAL);
  OK(bfs_open(e->ctx, "/n/a", O_RDWR | O_CREAT, 0644, &f));
  OK(bfs_close(f));
  EQ(bfs_stat(e->fs, "/n/a/b", &st), -ENOTDIR);
  char longname[300];
  memset(longname, 'x', sizeof longname);
  longname[0] = '/';
  longname[sizeof longname - 1] = 0;
  EQ(bfs_mkdir(e->fs, longname, 0755), -ENAMETOOLONG);

  /* Hard links. */
  OK(bfs_link(e->fs, "/n/a", "/n/b"));
  OK(bfs_stat(e->fs, "/n/a", &st));
  OK(bfs_stat(e->fs, "/n/b", &st2));
  EQ(st.nlink, 2);
  EQ(st.ino, st2.ino);
  EQ(bfs_link(e->fs, "/n/a", "/n/b"), -EEXIST);
  EQ(bfs_link(e->fs, "/n", "/n/dirlink"), -EPERM);
  EQ(bfs_link(e->fs, "/n/none", "/n/c"), -ENOENT);
  EQ(bfs_link(e->fs, NULL, "/n/c"), -EINVAL);
  EQ(bfs_link(e->fs, "/n/a", NULL), -EINVAL);

  /* Symlinks: stat does not follow, access and open do. */
  OK(bfs_symlink(e->fs, "/n/a", "/n/s"));
  OK(bfs_stat(e->fs, "/n/s", &st));
  TRUE(S_ISLNK(st.mode));
  OK(bfs_access(e->fs, "/n/s", F_OK));
  EQ(bfs_readlink(e->fs, "/n/s", NULL, 0), 4);
  EQ(bfs_readlink(e->fs, "/n/s", target, sizeof target), 4);
  TRUE(memcmp(target, "/n/a", 4) == 0);
  EQ(bfs_readlink(e->fs, "/n/s", target, 2), -ERANGE);
  EQ(bfs_readlink(e->fs, "/n/s", NULL, 8), -EINVAL);
  EQ(bfs_readlink(e->fs, "/n/a", target, sizeof target), -EINVAL);
  EQ(bfs_readlink(e->fs, "/n/none", target, sizeof target), -ENOENT);
  EQ(bfs_readlink(e->fs, NULL, target, sizeof target), -EINVAL);
  EQ(bfs_symlink(e->fs, "/n/a", "/n/s"), -EEXIST);
  EQ(bfs_symlink(e->fs, "", "/n/empty"), -ENOENT);
  EQ(bfs_symlink(e->fs, NULL, "/n/t"), -EINVAL);
  EQ(bfs_symlink(e->fs, "/n/a", NULL), -EINVAL);
  OK(bfs_symlink(e->fs, "/n/dangling", "/n/d"));
  EQ(bfs_access(e->fs, "/n/d", F_OK), -ENOENT);
  OK(bfs_open(e->ctx, "/n/s", O_RDONLY, 0, &f));
  OK(bfs_close(f));

  /* Other nodes: FIFOs, sockets, devices, plain files; and NOCOW files. */
  OK(bfs_mknod(e->fs, "/n/fifo", S_IFIFO | 0600, 0));
  OK(bfs_stat(e->fs, "/n/fifo", &st));
  TRUE(S_ISFIFO(st.mode) && (st.mode & 07777) == 0600);
  OK(bfs_mknod(e->fs, "/n/sock", S_IFSOCK | 0600, 0));
  OK(bfs_mknod(e->fs, "/n/chr", S_IFCHR | 0600, makedev(1, 3)));
  OK(bfs_stat(e->fs, "/n/chr", &st));
  TRUE(S_ISCHR(st.mode));
  EQ(st.rdev, makedev(1, 3));
  OK(bfs_mknod(e->fs, "/n/blk", S_IFBLK | 0600, makedev(8, 1)));
  OK(bfs_mknod(e->fs, "/n/plain", 0640, 0));
  OK(bfs_stat(e->fs, "/n/plain", &st));
  TRUE(S_ISREG(st.mode) && st.nocow == 0);
  EQ(bfs_open(e->ctx, "/n/fifo", O_RDONLY, 0, &f), -EOPNOTSUPP);
  EQ(bfs_mknod(e->fs, "/n/fifo", S_IFIFO | 0600, 0), -EEXIST);
  EQ(bfs_mknod(e->fs, "/n/d2", S_IFDIR | 0700, 0), -EINVAL);
  EQ(bfs_mknod(e->fs, "/n/l2", S_IFLNK | 0700, 0), -EINVAL);
  EQ(bfs_mknod(e->fs, "/n/bad", 0170000, 0), -EINVAL);
  EQ(bfs_mknod(e->fs, "/none/x", S_IFIFO | 0600, 0), -ENOENT);
  EQ(bfs_mknod(e->fs, NULL, S_IFIFO | 0600, 0), -EINVAL);
  OK(bfs_create_nocow(e->fs, "/n/nocow", 0600));
  OK(bfs_stat(e->fs, "/n/nocow", &st));
  TRUE(S_ISREG(st.mode) && st.nocow == 1 && (st.mode & 07777) == 0600);
  EQ(bfs_create_nocow(e->fs, "/n/nocow", 0600), -EEXIST);
  EQ(bfs_create_nocow(e->fs, "/n/nocow2", S_IFREG | 0600), -EINVAL);
  EQ(bfs_create_nocow(e->fs, "/none/x", 0600), -ENOENT);
  EQ(bfs_create_nocow(e->fs, NULL, 0600), -EINVAL);
  OK(bfs_open(e->ctx, "/n/nocow", O_RDWR, 0, &f));
  EQ(bfs_pwrite(e->ctx, f, "in place", 8, 0), 8);
  OK(bfs_fsync(e->ctx, f));
  OK(bfs_close(f));

  /* rename: plain, no-replace, exchange; bad flags. */
  OK(bfs_open(e->ctx, "/n/c", O_RDWR | O_CREAT, 0600, &f));
  EQ(bfs_pwrite(e->ctx, f, "cc", 2, 0), 2);
  OK(bfs_close(f));
  EQ(bfs_rename2(e->fs, "/n/a", "/n/c", BFS_RENAME_NOREPLACE), -EEXIST);
  OK(bfs_rename2(e->fs, "/n/a", "/n/e", BFS_RENAME_NOREPLACE));
  OK(bfs_rename2(e->fs, "/n/e", "/n/c", BFS_RENAME_EXCHANGE));
  OK(bfs_stat(e->fs, "/n/e", &st));
  EQ(st.size, 2);
  OK(bfs_stat(e->fs, "/n/c", &st));
  EQ(st.size, 0);
  EQ(bfs_rename2(e->fs, "/n/c", "/n/zz", BFS_RENAME_EXCHANGE), -ENOENT);
  EQ(bfs_rename2(e->fs, "/n/c", "/n/e", BFS_RENAME_NOREPLACE | BFS_RENAME_EXCHANGE),
     -EINVAL);
  EQ(bfs_rename2(e->fs, "/n/c", "/n/e", 4), -EINVAL);
  EQ(bfs_rename2(e->fs, NULL, "/n/e", 0), -EINVAL);
  OK(bfs_rename2(e->fs, "/n/c", "/n/e", 0));
  EQ(bfs_stat(e->fs, "/n/c", &st), -ENOENT);
  OK(bfs_rename(e->fs, "/n/e", "/n/c"));
  EQ(bfs_rename(e->fs, "/n/none", "/n/x"), -ENOENT);
  EQ(bfs_rename(e->fs, "/n", "/n/sub"), -EINVAL);
  EQ(bfs_rename(e->fs, NULL, "/n/x"), -EINVAL);
  EQ(bfs_rename(e->fs, "/n/c", NULL), -EINVAL);
  OK(bfs_mkdir(e->fs, "/n/dir", 0755));
  OK(bfs_mkdir(e->fs, "/n/dir/in", 0755));
  EQ(bfs_rename(e->fs, "/n/c", "/n/dir"), -EISDIR);

  /* unlink and rmdir. */
  EQ(bfs_unlink(e->fs, "/n/dir"), -EISDIR);
  EQ(bfs_rmdir(e->fs, "/n/dir"), -ENOTEMPTY);
  EQ(bfs_rmdir(e->fs, "/n/c"), -ENOTDIR);
  OK(bfs_rmdir(e->fs, "/n/dir/in"));
  OK(bfs_rmdir(e->fs, "/n/dir"));
  EQ(bfs_rmdir(e->fs, "/n/dir"), -ENOENT);
  OK(bfs_unlink(e->fs, "/n/b"));
  EQ(bfs_unlink(e->fs, "/n/b"), -ENOENT);
  EQ(bfs_unlink(e->fs, NULL), -EINVAL);
  EQ(bfs_rmdir(e->fs, NULL), -EINVAL);
  /* An unlinked file stays readable through its open handle. */
  OK(bfs_open(e->ctx, "/n/c", O_RDWR, 0, &f));
  EQ(bfs_pwrite(e->ctx, f, "zz", 2, 0), 2);
  OK(bfs_unlink(e->fs, "/n/c"));
  char two[2];
  EQ(bfs_pread(e->ctx, f, two, 2, 0), 2);
  TRUE(memcmp(two, "zz", 2) == 0);
  OK(bfs_close(f));

  for (int i = 0; i < N_BAD; i++) {
    uint64_t bs = bad_handle(e, i, e->fs);
    EQ(bfs_mkdir(bs, "/n/x", 0755), -EBADF);
    EQ(bfs_rmdir(bs, "/n"), -EBADF);
    EQ(bfs_unlink(bs, "/n/s"), -EBADF);
    EQ(bfs_rename(bs, "/n/s", "/n/t"), -EBADF);
    EQ(bfs_rename2(bs, "/n/s", "/n/t", 0), -EBADF);
    EQ(bfs_link(bs, "/n/s", "/n/t"), -EBADF);
    EQ(bfs_symlink(bs, "/n/s", "/n/t"), -EBADF);
    EQ(bfs_readlink(bs, "/n/s", target, sizeof target), -EBADF);
    EQ(bfs_stat(bs, "/n", &st), -EBADF);
    EQ(bfs_mknod(bs, "/n/m", S_IFIFO | 0600, 0), -EBADF);
    EQ(bfs_create_nocow(bs, "/n/m", 0600), -EBADF);
  }
  down(e);
}

/* chmod, chown, utimens and their f-variants. */
static void attributes(struct env *e) {
  up(e);
  struct bfs_stat st;
  bfs_file_t f;
  OK(bfs_open(e->ctx, "/attr", O_RDWR | O_CREAT, 0644, &f));
  OK(bfs_chmod(e->ctx, "/attr", 04711));
  OK(bfs_fstat(f, &st));
  EQ(st.mode & 07777, 04711);
  TRUE(S_ISREG(st.mode));
  OK(bfs_fchmod(e->ctx, f, 0600));
  OK(bfs_stat(e->fs, "/attr", &st));
  EQ(st.mode & 07777, 0600);
  EQ(bfs_chmod(e->ctx, "/attr", 010000), -EINVAL);
  EQ(bfs_fchmod(e->ctx, f, 0170000), -EINVAL);

  OK(bfs_chown(e->ctx, "/attr", 1000, 2000));
  OK(bfs_fstat(f, &st));
  EQ(st.uid, 1000);
  EQ(st.gid, 2000);
  OK(bfs_fchown(e->ctx, f, (uint32_t)-1, 3000));
  OK(bfs_fstat(f, &st));
  EQ(st.uid, 1000);
  EQ(st.gid, 3000);
  OK(bfs_chown(e->ctx, "/attr", 7, (uint32_t)-1));
  OK(bfs_fstat(f, &st));
  EQ(st.uid, 7);
  EQ(st.gid, 3000);

  OK(bfs_utimens(e->ctx, "/attr", 1000000000LL, 2000000000LL));
  OK(bfs_fstat(f, &st));
  EQ(st.atime_ns, 1000000000LL);
  EQ(st.mtime_ns, 2000000000LL);
  OK(bfs_futimens(e->ctx, f, BFS_UTIME_OMIT, 5));
  OK(bfs_fstat(f, &st));
  EQ(st.atime_ns, 1000000000LL);
  EQ(st.mtime_ns, 5);
  OK(bfs_utimens(e->ctx, "/attr", BFS_UTIME_NOW, BFS_UTIME_OMIT));
  OK(bfs_fstat(f, &st));
  TRUE(st.atime_ns > 1600000000LL * 1000000000LL);
  EQ(st.mtime_ns, 5);
  OK(bfs_futimens(e->ctx, f, -1000, BFS_UTIME_NOW));
  OK(bfs_fstat(f, &st));
  EQ(st.atime_ns, -1000);
  TRUE(st.mtime_ns > 1600000000LL * 1000000000LL);

  EQ(bfs_chmod(e->ctx, "/none", 0600), -ENOENT);
  EQ(bfs_chown(e->ctx, "/none", 1, 1), -ENOENT);
  EQ(bfs_utimens(e->ctx, "/none", 1, 1), -ENOENT);
  EQ(bfs_chmod(e->ctx, NULL, 0600), -EINVAL);
  EQ(bfs_chown(e->ctx, NULL, 1, 1), -EINVAL);
  EQ(bfs_utimens(e->ctx, NULL, 1, 1), -EINVAL);
  for (int i = 0; i < N_BAD; i++) {
    uint64_t bf = bad_handle(e, i, f), bc = bad_handle(e, i, e->ctx);
    EQ(bfs_chmod(bc, "/attr", 0600), -EBADF);
    EQ(bfs_chown(bc, "/attr", 1, 1), -EBADF);
    EQ(bfs_utimens(bc, "/attr", 1, 1), -EBADF);
    EQ(bfs_fchmod(bc, f, 0600), -EBADF);
    EQ(bfs_fchown(bc, f, 1, 1), -EBADF);
    EQ(bfs_futimens(bc, f, 1, 1), -EBADF);
    EQ(bfs_fchmod(e->ctx, bf, 0600), -EBADF);
    EQ(bfs_fchown(e->ctx, bf, 1, 1), -EBADF);
    EQ(bfs_futimens(e->ctx, bf, 1, 1), -EBADF);
  }
  OK(bfs_close(f));
  down(e);
}

/* Directory streams: every entry once, telldir/seekdir, and the cookie form. */
static void directories(struct env *e) {
  up(e);
  enum { N = 150 };
  char path[64];
  bfs_file_t f;
  bfs_dir_t d;
  struct bfs_dirent ent;
  static unsigned char seen[N];
  OK(bfs_mkdir(e->fs, "/dir", 0755));
  for (int i = 0; i < N; i++) {
    snprintf(path, sizeof path, "/dir/e%03d", i);
    if (i % 10 == 0) {
      OK(bfs_mkdir(e->fs, path, 0755));
    } else {
      OK(bfs_open(e->ctx, path, O_WRONLY | O_CREAT, 0644, &f));
      OK(bfs_close(f));
    }
  }
  OK(bfs_symlink(e->fs, "/dir", "/dirlink"));
  OK(bfs_opendir(e->fs, "/dirlink", &d));
  EQ(bfs_telldir(d), 0);
  int n = 0, dirs = 0;
  int64_t mark = -1;
  char mark_name[BFS_NAME_MAX] = "";
  for (;;) {
    int r = bfs_readdir_next(d, &ent);
    EQ(r >= 0, 1);
    if (r <= 0) break;
    int i = atoi((const char *)ent.name + 1);
    TRUE(i >= 0 && i < N && !seen[i]);
    if (i >= 0 && i < N) seen[i] = 1;
    dirs += ent.d_type == DT_DIR;
    TRUE(ent.d_type == (i % 10 == 0 ? DT_DIR : DT_REG));
    EQ(bfs_telldir(d), (long long)ent.next_cookie);
    if (++n == 70) mark = bfs_telldir(d);
    if (n == 71) snprintf(mark_name, sizeof mark_name, "%s", (const char *)ent.name);
  }
  EQ(n, N);
  EQ(dirs, N / 10);
  EQ(bfs_readdir_next(d, &ent), 0);
  /* Back to a told position, after entries before and after it changed. */
  OK(bfs_unlink(e->fs, "/dir/e001"));
  OK(bfs_open(e->ctx, "/dir/zz-new", O_WRONLY | O_CREAT, 0644, &f));
  OK(bfs_close(f));
  OK(bfs_seekdir(d, mark));
  EQ(bfs_readdir_next(d, &ent), 1);
  EQ(strcmp((const char *)ent.name, mark_name), 0);
  OK(bfs_seekdir(d, 0));
  n = 0;
  while (bfs_readdir_next(d, &ent) == 1) n++;
  EQ(n, N);
  EQ(bfs_seekdir(d, -1), -EINVAL);
  EQ(bfs_readdir_next(d, NULL), -EINVAL);
  /* A stream keeps the filesystem mounted. */
  EQ(bfs_unmount(e->fs), -EBUSY);
  OK(bfs_closedir(d));
  EQ(bfs_closedir(d), -EBADF);
  EQ(bfs_readdir_next(d, &ent), -EBADF);
  EQ(bfs_telldir(d), -EBADF);
  EQ(bfs_seekdir(d, 0), -EBADF);

  /* A removed directory's stream reports it. */
  OK(bfs_mkdir(e->fs, "/gone", 0755));
  OK(bfs_opendir(e->fs, "/gone", &d));
  OK(bfs_rmdir(e->fs, "/gone"));
  EQ(bfs_readdir_next(d, &ent), -ENOENT);
  OK(bfs_closedir(d));

  EQ(bfs_opendir(e->fs, "/dir/e002", &d), -ENOTDIR);
  EQ(bfs_opendir(e->fs, "/none", &d), -ENOENT);
  EQ(bfs_opendir(e->fs, NULL, &d), -EINVAL);
  EQ(bfs_opendir(e->fs, "/dir", NULL), -EINVAL);

  /* The cookie form: batches of 16 add up to the whole directory. */
  uint64_t cookie = 0;
  struct bfs_dirent batch[16];
  ssize_t got;
  n = 0;
  while ((got = bfs_readdir(e->fs, "/dir", &cookie, batch, 16)) > 0) n += (int)got;
  EQ(got, 0);
  EQ(n, N);
  EQ(bfs_readdir(e->fs, "/dir", &cookie, batch, 0), -EINVAL);
  EQ(bfs_readdir(e->fs, "/dir", NULL, batch, 16), -EINVAL);
  EQ(bfs_readdir(e->fs, "/dir", &cookie, NULL, 16), -EINVAL);
  EQ(bfs_readdir(e->fs, NULL, &cookie, batch, 16), -EINVAL);
  cookie = 0;
  EQ(bfs_readdir(e->fs, "/dir/e002", &cookie, batch, 16), -ENOTDIR);
  EQ(bfs_readdir(e->fs, "/none", &cookie, batch, 16), -ENOENT);

  for (int i = 0; i < N_BAD; i++) {
    uint64_t bs = bad_handle(e, i, e->fs), bd = bad_handle(e, i, 0);
    EQ(bfs_opendir(bs, "/dir", &d), -EBADF);
    EQ(bfs_readdir_next(bd, &ent), -EBADF);
    EQ(bfs_telldir(bd), -EBADF);
    EQ(bfs_seekdir(bd, 0), -EBADF);
    EQ(bfs_closedir(bd), -EBADF);
    EQ(bfs_readdir(bs, "/dir", &cookie, batch, 16), -EBADF);
  }
  down(e);
}

/* Extended attributes. */
static void xattrs(struct env *e) {
  up(e);
  bfs_file_t f;
  char val[4096], list[256];
  OK(bfs_open(e->ctx, "/x", O_RDWR | O_CREAT, 0644, &f));
  OK(bfs_close(f));
  EQ(bfs_listxattr(e->fs, "/x", NULL, 0), 0);
  OK(bfs_setxattr(e->fs, "/x", "user.b", "two", 3, 0));
  OK(bfs_setxattr(e->fs, "/x", "user.a", "one!", 4, XATTR_CREATE));
  OK(bfs_setxattr(e->fs, "/x", "user.empty", NULL, 0, 0));
  EQ(bfs_setxattr(e->fs, "/x", "user.a", "x", 1, XATTR_CREATE), -EEXIST);
  EQ(bfs_setxattr(e->fs, "/x", "user.c", "x", 1, XATTR_REPLACE), -ENODATA);
  OK(bfs_setxattr(e->fs, "/x", "user.b", "three", 5, XATTR_REPLACE));
  EQ(bfs_setxattr(e->fs, "/x", "user.c", "x", 1, XATTR_CREATE | XATTR_REPLACE), -EINVAL);
  EQ(bfs_setxattr(e->fs, "/x", "user.c", "x", 1, 8), -EINVAL);
  EQ(bfs_setxattr(e->fs, "/x", "user.c", NULL, 1, 0), -EINVAL);
  EQ(bfs_setxattr(e->fs, "/x", "system.posix_acl_access", "x", 1, 0), -EOPNOTSUPP);
  memset(val, 'v', sizeof val);
  EQ(bfs_setxattr(e->fs, "/x", "user.big", val, sizeof val, 0), -ENOSPC);
  EQ(bfs_setxattr(e->fs, "/x", "", "x", 1, 0), -ENAMETOOLONG);

  EQ(bfs_getxattr(e->fs, "/x", "user.b", NULL, 0), 5);
  EQ(bfs_getxattr(e->fs, "/x", "user.b", val, sizeof val), 5);
  TRUE(memcmp(val, "three", 5) == 0);
  EQ(bfs_getxattr(e->fs, "/x", "user.b", val, 2), -ERANGE);
  EQ(bfs_getxattr(e->fs, "/x", "user.b", NULL, 8), -EINVAL);
  EQ(bfs_getxattr(e->fs, "/x", "user.empty", val, sizeof val), 0);
  EQ(bfs_getxattr(e->fs, "/x", "user.none", val, sizeof val), -ENODATA);
  EQ(bfs_getxattr(e->fs, "/none", "user.b", val, sizeof val), -ENOENT);

  static const char want[] = "user.a\0user.b\0user.empty";
  EQ(bfs_listxattr(e->fs, "/x", NULL, 0), (long long)sizeof want);
  EQ(bfs_listxattr(e->fs, "/x", list, sizeof list), (long long)sizeof want);
  TRUE(memcmp(list, want, sizeof want) == 0);
  EQ(bfs_listxattr(e->fs, "/x", list, 4), -ERANGE);
  EQ(bfs_listxattr(e->fs, "/x", NULL, 4), -EINVAL);
  EQ(bfs_listxattr(e->fs, "/none", list, sizeof list), -ENOENT);

  OK(bfs_removexattr(e->fs, "/x", "user.a"));
  EQ(bfs_removexattr(e->fs, "/x", "user.a"), -ENODATA);
  EQ(bfs_getxattr(e->fs, "/x", "user.a", val, sizeof val), -ENODATA);
  EQ(bfs_removexattr(e->fs, "/none", "user.a"), -ENOENT);

  EQ(bfs_getxattr(e->fs, NULL, "user.b", val, sizeof val), -EINVAL);
  EQ(bfs_getxattr(e->fs, "/x", NULL, val, sizeof val), -EINVAL);
  EQ(bfs_setxattr(e->fs, NULL, "user.b", "x", 1, 0), -EINVAL);
  EQ(bfs_setxattr(e->fs, "/x", NULL, "x", 1, 0), -EINVAL);
  EQ(bfs_listxattr(e->fs, NULL, list, sizeof list), -EINVAL);
  EQ(bfs_removexattr(e->fs, NULL, "user.b"), -EINVAL);
  EQ(bfs_removexattr(e->fs, "/x", NULL), -EINVAL);
  for (int i = 0; i < N_BAD; i++) {
    uint64_t bs = bad_handle(e, i, e->fs);
    EQ(bfs_getxattr(bs, "/x", "user.b", val, sizeof val), -EBADF);
    EQ(bfs_setxattr(bs, "/x", "user.b", "x", 1, 0), -EBADF);
    EQ(bfs_listxattr(bs, "/x", list, sizeof list), -EBADF);
    EQ(bfs_removexattr(bs, "/x", "user.b"), -EBADF);
  }
  down(e);
}

/* A read-only mount: reads work, every change is -EROFS. */
static void read_only(struct env *e) {
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
  OK(bfs_open(ctx, "/files/a", O_RDWR, 0, &f));
  EQ(bfs_pwrite(ctx, f, b, sizeof b, 0), -EROFS);
  EQ(bfs_fallocate(ctx, f, 0, 0, 4096), -EROFS);
  EQ(bfs_ftruncate(ctx, f, 0), -EROFS);
  OK(bfs_close(f));
  EQ(bfs_mkdir(fs, "/ro", 0755), -EROFS);
  EQ(bfs_unlink(fs, "/files/a"), -EROFS);
  EQ(bfs_chmod(ctx, "/files/a", 0600), -EROFS);
  EQ(bfs_setxattr(fs, "/x", "user.ro", "x", 1, 0), -EROFS);
  EQ(bfs_open(ctx, "/files/new", O_RDWR | O_CREAT, 0644, &f), -EROFS);
  OK(bfs_ctx_destroy(ctx));
  OK(bfs_unmount(fs));
}

/* Waits for `n` completions of `ctx`; each must be `want` bytes. */
static void complete(bfs_ctx_t ctx, int n, long long want) {
  struct bfs_completion c[8];
  for (int seen = 0; seen < n;) {
    ssize_t got = bfs_poll(ctx, c, 8, 1);
    EQ(got > 0, 1);
    if (got <= 0) return;
    for (ssize_t k = 0; k < got; k++) EQ(c[k].result, want);
    seen += (int)got;
  }
}

/* Asynchronous I/O: the copying calls, then DMA buffers with no copy at all. */
static void async_io(struct env *e) {
  up(e);
  enum { LEN = 64 << 10, N = 4 };
  bfs_file_t f, ro;
  struct bfs_stats s0, s1;
  struct bfs_completion c[N];
  static unsigned char mem[N][LEN], back[LEN];
  OK(bfs_open(e->ctx, "/aio", O_RDWR | O_CREAT | O_DIRECT, 0644, &f));

  /* The copying calls: every byte is copied once, at submit or at poll. */
  OK(bfs_stats(e->fs, &s0));
  for (int i = 0; i < N; i++) {
    fill(mem[i], LEN, 10 + i);
    OK(bfs_submit_pwrite(e->ctx, f, mem[i], LEN, (uint64_t)i * LEN, i));
  }
  complete(e->ctx, N, LEN);
  memset(mem, 0, sizeof mem);
  for (int i = 0; i < N; i++) OK(bfs_submit_pread(e->ctx, f, mem[i], LEN, (uint64_t)i * LEN, i));
  complete(e->ctx, N, LEN);
  fill(back, LEN, 12);
  TRUE(memcmp(mem[2], back, LEN) == 0);
  OK(bfs_stats(e->fs, &s1));
  EQ(s1.copied_bytes - s0.copied_bytes, 2 * N * LEN);
  EQ(bfs_poll(e->ctx, c, N, 0), 0);

  /* DMA buffers: the device reads and writes them; nothing is copied. */
  void *dma[N], *in;
  for (int i = 0; i < N; i++) {
    OK(bfs_dma_alloc(e->fs, LEN, &dma[i]));
    TRUE(((uintptr_t)dma[i] & 4095) == 0);
    fill(dma[i], LEN, 50 + i);
  }
  OK(bfs_dma_alloc(e->fs, 2 * LEN, &in));
  OK(bfs_stats(e->fs, &s0));
  for (int i = 0; i < N; i++)
    OK(bfs_submit_pwrite_dma(e->ctx, f, dma[i], LEN, (uint64_t)(N + i) * LEN, 100 + i));
  /* Lent buffers: neither submitted again nor freed until their completion is polled. */
  EQ(bfs_submit_pwrite_dma(e->ctx, f, dma[0], LEN, 0, 0), -EBUSY);
  EQ(bfs_submit_pread_dma(e->ctx, f, dma[1], LEN, 0, 0), -EBUSY);
  EQ(bfs_dma_free(dma[0]), -EBUSY);
  complete(e->ctx, N, LEN);
  OK(bfs_fsync(e->ctx, f));
  /* A read of part of a larger buffer: only `len` bytes are read into it. */
  memset(in, 0xee, 2 * LEN);
  OK(bfs_submit_pread_dma(e->ctx, f, in, LEN, (uint64_t)(N + 3) * LEN, 7));
  EQ(bfs_poll(e->ctx, c, N, 1), 1);
  EQ(c[0].user_data, 7);
  EQ(c[0].result, LEN);
  TRUE(memcmp(in, dma[3], LEN) == 0 && ((unsigned char *)in)[LEN] == 0xee);
  OK(bfs_stats(e->fs, &s1));
  EQ(s1.copied_bytes - s0.copied_bytes, 0);
  EQ(s1.bounce_bytes - s0.bounce_bytes, 0);
  TRUE(s1.direct_ios - s0.direct_ios >= N + 1);
  /* The synchronous O_DIRECT path from ordinary memory bounces. */
  EQ(bfs_pread(e->ctx, f, back, LEN, 0), LEN);
  OK(bfs_stats(e->fs, &s0));
  EQ(s0.bounce_bytes - s1.bounce_bytes, LEN);

  /* A failed request gives its buffer back too: a misaligned direct read, a write through
   * a read-only handle. */
  OK(bfs_submit_pread_dma(e->ctx, f, dma[0], 100, 1, 1));
  EQ(bfs_poll(e->ctx, c, N, 1), 1);
  EQ(c[0].result, -EINVAL);
  OK(bfs_open(e->ctx, "/aio", O_RDONLY | O_DIRECT, 0, &ro));
  OK(bfs_submit_pwrite_dma(e->ctx, ro, dma[0], LEN, 0, 2));
  EQ(bfs_poll(e->ctx, c, N, 1), 1);
  EQ(c[0].result, -EBADF);
  OK(bfs_submit_pwrite(e->ctx, ro, mem[0], LEN, 0, 3));
  EQ(bfs_poll(e->ctx, c, N, 1), 1);
  EQ(c[0].result, -EBADF);
  OK(bfs_close(ro));

  /* Completions left unpolled when the context goes: the buffers are the caller's again. */
  OK(bfs_submit_pread_dma(e->ctx, f, dma[1], LEN, 0, 1));
  OK(bfs_ctx_destroy(e->ctx));
  OK(bfs_ctx_create(e->fs, &e->ctx));
  OK(bfs_dma_free(dma[1]));
  OK(bfs_dma_alloc(e->fs, LEN, &dma[1]));

  /* Bad buffers, lengths, handles; none of them takes the buffer. */
  EQ(bfs_submit_pread_dma(e->ctx, f, mem[0], LEN, 0, 0), -EINVAL);
  EQ(bfs_submit_pread_dma(e->ctx, f, (char *)dma[0] + 4096, 4096, 0, 0), -EINVAL);
  EQ(bfs_submit_pread_dma(e->ctx, f, NULL, LEN, 0, 0), -EINVAL);
  EQ(bfs_submit_pread_dma(e->ctx, f, dma[0], LEN + 1, 0, 0), -EINVAL);
  EQ(bfs_submit_pwrite_dma(e->ctx, f, dma[0], 0, 0, 0), -EINVAL);
  EQ(bfs_submit_pwrite_dma(e->ctx, f, mem[0], LEN, 0, 0), -EINVAL);
  EQ(bfs_submit_pread(e->ctx, f, NULL, LEN, 0, 0), -EINVAL);
  EQ(bfs_submit_pread(e->ctx, f, mem[0], 0, 0, 0), -EINVAL);
  EQ(bfs_submit_pwrite(e->ctx, f, NULL, LEN, 0, 0), -EINVAL);
  EQ(bfs_submit_pwrite(e->ctx, f, mem[0], 0, 0, 0), -EINVAL);
  EQ(bfs_poll(e->ctx, NULL, 4, 0), -EINVAL);
  EQ(bfs_poll(e->ctx, c, 0, 0), -EINVAL);
  EQ(bfs_dma_alloc(e->fs, 0, &in), -EINVAL);
  EQ(bfs_dma_alloc(e->fs, (size_t)1 << 52, &in), -ENOMEM);
  EQ(bfs_dma_alloc(e->fs, LEN, NULL), -EINVAL);
  EQ(bfs_dma_free(mem[0]), -EINVAL);
  EQ(bfs_dma_free(NULL), -EINVAL);
  EQ(bfs_stats(e->fs, NULL), -EINVAL);
  for (int i = 0; i < N_BAD; i++) {
    uint64_t bf = bad_handle(e, i, f), bc = bad_handle(e, i, e->ctx);
    uint64_t bs = bad_handle(e, i, e->fs);
    EQ(bfs_submit_pread_dma(bc, f, dma[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pread_dma(e->ctx, bf, dma[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pwrite_dma(bc, f, dma[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pwrite_dma(e->ctx, bf, dma[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pread(bc, f, mem[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pread(e->ctx, bf, mem[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pwrite(bc, f, mem[0], LEN, 0, 0), -EBADF);
    EQ(bfs_submit_pwrite(e->ctx, bf, mem[0], LEN, 0, 0), -EBADF);
    EQ(bfs_poll(bc, c, N, 0), -EBADF);
    EQ(bfs_dma_alloc(bs, LEN, &in), -EBADF);
    EQ(bfs_stats(bs, &s0), -EBADF);
  }
  /* Still the caller's after all of that: free them. */
  for (int i = 0; i < N; i++) OK(bfs_dma_free(dma[i]));
  OK(bfs_dma_free(in));
  EQ(bfs_dma_free(dma[0]), -EINVAL);
  OK(bfs_close(f));
  down(e);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s IMAGE SECOND-IMAGE\n", argv[0]);
    return 2;
  }
  struct env e = {.dev = argv[1]};
  OK(bfs_format(e.dev));
  lifecycle(&e);
  files(&e);
  two_filesystems(&e, argv[2]);
  threads(&e);
  names(&e);
  attributes(&e);
  directories(&e);
  xattrs(&e);
  file_space(&e);
  async_io(&e);
  read_only(&e);
  printf("capi_test: %d checks, %d failed\n", checks, failures);
  return failures != 0;
}
