/*
 * bypassfs C API example: format an image, mount, write, fsync, unmount, remount, read
 * back and compare (synchronously and asynchronously), list a directory, check that bad
 * handles are errors, not crashes, and do asynchronous I/O on DMA buffers with no copy.
 *
 *   ci/install-c /usr/local                  # or any PREFIX (see PKG_CONFIG_PATH there)
 *   cc -Wall -Werror -o example examples/c/example.c $(pkg-config --cflags --libs bypassfs)
 *   truncate -s 64M /tmp/bfs.img && ./example /tmp/bfs.img
 *
 * or, from a build tree without installing:
 *
 *   cc -Wall -Werror -o example examples/c/example.c -Iinclude -Ltarget/debug -lbypassfs \
 *      -Wl,-rpath,$PWD/target/debug
 *
 * With a bypassfs built with `--features spdk`, the same through SPDK, on a bdev of an SPDK
 * JSON config (here an aio bdev over the image: {"method": "bdev_aio_create", "params":
 * {"name": "Aio0", "filename": "/tmp/bfs.img", "block_size": 4096}}):
 *
 *   ./example --spdk --bdev Aio0 aio.json          # add --no-huge without hugepages
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bypassfs.h"

#define CHECK(expr)                                                                       \
  do {                                                                                    \
    long long rc_ = (long long)(expr);                                                    \
    if (rc_ < 0) {                                                                        \
      fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,               \
              strerror((int)-rc_));                                                       \
      exit(1);                                                                            \
    }                                                                                     \
  } while (0)

#define EXPECT(cond)                                                                      \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);                \
      exit(1);                                                                            \
    }                                                                                     \
  } while (0)

/* Which bdev of a JSON config, and whether through SPDK: set from the command line. */
static struct bfs_device_opts dev_opts = {0};

enum { LEN = 1 << 20, ASYNC_N = 8, ASYNC_LEN = 64 << 10 };

static void pattern(unsigned char *buf, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)((i * 31 + seed) ^ (i >> 9));
}

static void write_phase(const char *dev, unsigned char *data) {
  bfs_fs_t fs;
  bfs_ctx_t ctx;
  bfs_file_t f;
  CHECK(bfs_format_with(dev, &dev_opts));
  CHECK(bfs_mount_with(dev, &dev_opts, 0, &fs));
  CHECK(bfs_ctx_create(fs, &ctx));
  CHECK(bfs_mkdir(fs, "/data", 0755));
  CHECK(bfs_open(ctx, "/data/blob.tmp", O_RDWR | O_CREAT | O_EXCL, 0644, &f));
  EXPECT(bfs_pwrite(ctx, f, data, LEN, 0) == LEN);

  /* Asynchronous writes after the synchronous ones: ASYNC_N requests in flight at once. */
  static unsigned char abuf[ASYNC_N][ASYNC_LEN];
  for (int i = 0; i < ASYNC_N; i++) {
    pattern(abuf[i], ASYNC_LEN, 100 + i);
    CHECK(bfs_submit_pwrite(ctx, f, abuf[i], ASYNC_LEN, LEN + (uint64_t)i * ASYNC_LEN, i));
  }
  int seen = 0;
  while (seen < ASYNC_N) {
    struct bfs_completion c[ASYNC_N];
    ssize_t n = bfs_poll(ctx, c, ASYNC_N, 1);
    CHECK(n);
    for (ssize_t k = 0; k < n; k++) {
      EXPECT(c[k].result == ASYNC_LEN);
      EXPECT(c[k].user_data < ASYNC_N);
    }
    seen += (int)n;
  }
  CHECK(bfs_fsync(ctx, f));
  CHECK(bfs_close(f));
  CHECK(bfs_rename(fs, "/data/blob.tmp", "/data/blob"));
  CHECK(bfs_mkdir(fs, "/data/empty", 0700));
  CHECK(bfs_unlink(fs, "/data/missing") == -ENOENT ? 0 : -EPROTO);
  CHECK(bfs_ctx_destroy(ctx));
  CHECK(bfs_unmount(fs));
}

static void read_phase(const char *dev, const unsigned char *data) {
  bfs_fs_t fs;
  bfs_ctx_t ctx;
  bfs_file_t f;
  CHECK(bfs_mount_with(dev, &dev_opts, 0, &fs));
  CHECK(bfs_ctx_create(fs, &ctx));

  struct bfs_stat st;
  CHECK(bfs_stat(fs, "/data/blob", &st));
  EXPECT(st.size == LEN + (uint64_t)ASYNC_N * ASYNC_LEN);
  EXPECT(S_ISREG(st.mode));
  EXPECT(bfs_stat(fs, "/data/blob.tmp", &st) == -ENOENT);

  unsigned char *back = malloc(LEN);
  EXPECT(back != NULL);
  CHECK(bfs_open(ctx, "/data/blob", O_RDONLY, 0, &f));
  EXPECT(bfs_pread(ctx, f, back, LEN, 0) == LEN);
  EXPECT(memcmp(back, data, LEN) == 0);

  static unsigned char abuf[ASYNC_N][ASYNC_LEN], want[ASYNC_LEN];
  for (int i = 0; i < ASYNC_N; i++)
    CHECK(bfs_submit_pread(ctx, f, abuf[i], ASYNC_LEN, LEN + (uint64_t)i * ASYNC_LEN, i));
  for (int seen = 0; seen < ASYNC_N;) {
    struct bfs_completion c[ASYNC_N];
    ssize_t n = bfs_poll(ctx, c, ASYNC_N, ASYNC_N - seen);
    CHECK(n);
    for (ssize_t k = 0; k < n; k++) EXPECT(c[k].result == ASYNC_LEN);
    seen += (int)n;
  }
  for (int i = 0; i < ASYNC_N; i++) {
    pattern(want, ASYNC_LEN, 100 + i);
    EXPECT(memcmp(abuf[i], want, ASYNC_LEN) == 0);
  }

  /* Writing through a read-only handle is EBADF. */
  EXPECT(bfs_pwrite(ctx, f, back, 16, 0) == -EBADF);

  uint64_t cookie = 0;
  struct bfs_dirent ents[8];
  ssize_t n = bfs_readdir(fs, "/data", &cookie, ents, 8);
  EXPECT(n == 2);
  int blob = 0, empty = 0;
  for (ssize_t i = 0; i < n; i++) {
    blob += strcmp((const char *)ents[i].name, "blob") == 0;
    empty += strcmp((const char *)ents[i].name, "empty") == 0 && ents[i].d_type == DT_DIR;
  }
  EXPECT(blob == 1 && empty == 1);
  EXPECT(bfs_readdir(fs, "/data", &cookie, ents, 8) == 0);

  /* A file open keeps the filesystem mounted. */
  EXPECT(bfs_unmount(fs) == -EBUSY);
  CHECK(bfs_close(f));

  /* Bad handles: zero, closed, made up, of the wrong kind; NULL pointers. */
  EXPECT(bfs_close(f) == -EBADF);
  EXPECT(bfs_pread(ctx, f, back, 16, 0) == -EBADF);
  EXPECT(bfs_pread(ctx, 0, back, 16, 0) == -EBADF);
  EXPECT(bfs_pread(0, 0, back, 16, 0) == -EBADF);
  EXPECT(bfs_fsync(ctx, 0xdeadbeefcafe) == -EBADF);
  EXPECT(bfs_fsync(ctx, (bfs_file_t)ctx) == -EBADF);
  EXPECT(bfs_mkdir((bfs_fs_t)ctx, "/x", 0755) == -EBADF);
  EXPECT(bfs_ctx_destroy(12345) == -EBADF);
  EXPECT(bfs_pread(ctx, f, NULL, 16, 0) == -EINVAL);
  EXPECT(bfs_stat(fs, NULL, &st) == -EINVAL);
  EXPECT(bfs_open(ctx, "/data/blob", O_RDONLY, 0, NULL) == -EINVAL);
  EXPECT(bfs_mount(NULL, 0, &fs) == -EINVAL);

  CHECK(bfs_ctx_destroy(ctx));
  EXPECT(bfs_ctx_destroy(ctx) == -EBADF);
  CHECK(bfs_unmount(fs));
  EXPECT(bfs_unmount(fs) == -EBADF);
  EXPECT(bfs_mkdir(fs, "/after", 0755) == -EBADF);
  free(back);
}

/* Zero-copy: DMA buffers of the library lent to requests on an O_DIRECT file, so the device
 * reads and writes them directly; bfs_stats shows that nothing was copied. */
static void dma_phase(const char *dev) {
  bfs_fs_t fs;
  bfs_ctx_t ctx;
  bfs_file_t f;
  struct bfs_stats before, after;
  struct bfs_completion c[ASYNC_N];
  void *buf[ASYNC_N];
  CHECK(bfs_mount_with(dev, &dev_opts, 0, &fs));
  CHECK(bfs_ctx_create(fs, &ctx));
  CHECK(bfs_open(ctx, "/data/direct", O_RDWR | O_CREAT | O_DIRECT, 0644, &f));
  for (int i = 0; i < ASYNC_N; i++) {
    CHECK(bfs_dma_alloc(fs, ASYNC_LEN, &buf[i]));
    pattern(buf[i], ASYNC_LEN, 200 + i);
  }
  CHECK(bfs_stats(fs, &before));
  /* Each buffer is the request's until its completion is polled. */
  for (int i = 0; i < ASYNC_N; i++)
    CHECK(bfs_submit_pwrite_dma(ctx, f, buf[i], ASYNC_LEN, (uint64_t)i * ASYNC_LEN, i));
  for (int seen = 0; seen < ASYNC_N;) {
    ssize_t n = bfs_poll(ctx, c, ASYNC_N, ASYNC_N - seen);
    CHECK(n);
    for (ssize_t k = 0; k < n; k++) EXPECT(c[k].result == ASYNC_LEN);
    seen += (int)n;
  }
  CHECK(bfs_fsync(ctx, f));
  for (int i = 0; i < ASYNC_N; i++) {
    memset(buf[i], 0, ASYNC_LEN);
    CHECK(bfs_submit_pread_dma(ctx, f, buf[i], ASYNC_LEN, (uint64_t)i * ASYNC_LEN, i));
  }
  for (int seen = 0; seen < ASYNC_N;) {
    ssize_t n = bfs_poll(ctx, c, ASYNC_N, ASYNC_N - seen);
    CHECK(n);
    for (ssize_t k = 0; k < n; k++) EXPECT(c[k].result == ASYNC_LEN);
    seen += (int)n;
  }
  CHECK(bfs_stats(fs, &after));
  EXPECT(after.copied_bytes == before.copied_bytes);
  EXPECT(after.bounce_bytes == before.bounce_bytes);
  static unsigned char want[ASYNC_LEN];
  for (int i = 0; i < ASYNC_N; i++) {
    pattern(want, ASYNC_LEN, 200 + i);
    EXPECT(memcmp(buf[i], want, ASYNC_LEN) == 0);
    CHECK(bfs_dma_free(buf[i]));
  }
  CHECK(bfs_close(f));
  CHECK(bfs_ctx_destroy(ctx));
  CHECK(bfs_unmount(fs));
}

int main(int argc, char **argv) {
  const char *dev = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--spdk") == 0) {
      dev_opts.flags |= BFS_DEVICE_SPDK;
    } else if (strcmp(argv[i], "--no-huge") == 0) {
      dev_opts.flags |= BFS_DEVICE_SPDK_NO_HUGE;
    } else if (strcmp(argv[i], "--bdev") == 0 && i + 1 < argc) {
      dev_opts.bdev = argv[++i];
    } else if (dev == NULL && argv[i][0] != '-') {
      dev = argv[i];
    } else {
      dev = NULL;
      break;
    }
  }
  if (dev == NULL) {
    fprintf(stderr, "usage: %s [--spdk [--no-huge]] [--bdev NAME] IMAGE-OR-CONFIG.json\n",
            argv[0]);
    return 2;
  }
  /* SPDK settings without BFS_DEVICE_SPDK are refused, not ignored. */
  struct bfs_device_opts half = {.flags = BFS_DEVICE_SPDK_NO_HUGE};
  EXPECT(bfs_format_with(dev, &half) == -EINVAL);
  unsigned char *data = malloc(LEN);
  EXPECT(data != NULL);
  pattern(data, LEN, 7);
  write_phase(dev, data);
  read_phase(dev, data);
  dma_phase(dev);
  free(data);
  printf("bypassfs C example: wrote, fsynced, remounted and read back %d bytes; bad handles refused\n",
         LEN + ASYNC_N * ASYNC_LEN);
  printf("bypassfs C example: %d bytes written and read back through DMA buffers, 0 copied\n",
         ASYNC_N * ASYNC_LEN);
  return 0;
}
