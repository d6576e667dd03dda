/*
 * The C API test: every call of include/bypassfs.h, its results and each error a bad
 * handle, a bad path or a bad flag can reach. Built with -Wall -Werror (and once more with
 * -fsanitize=address) and run by tests/capi_c.rs on a fresh image file:
 *
 *   capi_test IMAGE
 *
 * Each section mounts the image afresh, so a failure names the area it is in.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
    return 2;
  }
  struct env e = {.dev = argv[1]};
  OK(bfs_format(e.dev));
  file_space(&e);
  printf("capi_test: %d checks, %d failed\n", checks, failures);
  return failures != 0;
}
