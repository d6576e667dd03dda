/*
 * The C API test: every call of include/bypassfs.h, its results and each error a bad
 * handle, a bad path or a bad flag can reach. Built with -Wall -Werror (and once more with
 * -fsanitize=address) and run by tests/capi_c.rs on a fresh image file:
 *
 *   capi_test IMAGE SECOND-IMAGE
 *
 * Each section mounts the image afresh, so a failure names the area it is in. The sections
 * are in capi_files.c, capi_names.c, capi_async.c and capi_durable.c, declared in capi_test.h.
 */
#include "capi_test.h"

int checks, failures;

void up(struct env *e) {
  OK(bfs_mount(e->dev, 0, &e->fs));
  OK(bfs_ctx_create(e->fs, &e->ctx));
}

void down(struct env *e) {
  OK(bfs_ctx_destroy(e->ctx));
  OK(bfs_unmount(e->fs));
}

uint64_t bad_handle(const struct env *e, int i, uint64_t right) {
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

void fill(unsigned char *buf, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(i * 131 + seed);
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
  durability(&e);
  printf("capi_test: %d checks, %d failed\n", checks, failures);
  return failures != 0;
}
