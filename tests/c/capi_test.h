/*
 * What the parts of the C API test share: the check macros, the mounted handles of a
 * section, handles that name nothing, and the sections themselves (one file per area:
 * capi_files.c, capi_names.c, capi_async.c, capi_durable.c; capi_test.c runs them).
 */
#ifndef CAPI_TEST_H
#define CAPI_TEST_H

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

extern int checks, failures;

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

/* Mounts `e->dev` and makes a context; unmounts after destroying it. */
void up(struct env *e);
void down(struct env *e);

/* Handles that name nothing where `right` is expected: zero, made up, forged ones of each
 * kind (a kind tag with a counter never handed out), and the section's real ones of another
 * kind; i < N_BAD. */
uint64_t bad_handle(const struct env *e, int i, uint64_t right);
enum { N_BAD = 8 };

/* A byte pattern that differs with `seed`. */
void fill(unsigned char *buf, size_t len, unsigned seed);

/* capi_files.c */
void lifecycle(struct env *e);
void files(struct env *e);
void two_filesystems(struct env *e, const char *dev2);
void threads(struct env *e);
void file_space(struct env *e);
void read_only(struct env *e);
/* capi_names.c */
void names(struct env *e);
void attributes(struct env *e);
void directories(struct env *e);
void xattrs(struct env *e);
/* capi_async.c */
void async_io(struct env *e);
/* capi_durable.c */
void durability(struct env *e);

#endif
