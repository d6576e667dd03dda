/* The metadata workload of `bfsperf --fs --meta` (bench/src/meta.rs) through system calls,
 * for kernel filesystems: bench/scripts/vs-kernel-meta.sh builds and runs it.
 *
 * Usage: meta DIR FILES BYTES DIRS FILES_PER_DIR
 * Rows, one thread, in DIR (which must exist and be empty):
 *   create   open(O_CREAT|O_WRONLY) + write BYTES + close, FILES times, in DIR/meta
 *   stat     stat of each
 *   unlink   unlink of each
 *   extract  DIRS directories of FILES_PER_DIR files (created, written, closed) in
 *            DIR/tree, then syncfs, whose time is in the row's seconds
 * Prints one line per row: "ROW OPS SECONDS MAX_US" (MAX_US: the slowest operation).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
    fprintf(stderr, "meta: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void write_file(const char *path, const char *buf, size_t bytes)
{
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd < 0)
        die("open", path);
    if (bytes > 0 && write(fd, buf, bytes) != (ssize_t)bytes)
        die("write", path);
    if (close(fd) != 0)
        die("close", path);
}

enum { CREATE, STAT, UNLINK };

static void phase(const char *name, int op, const char *dir, long files, const char *buf,
                  size_t bytes)
{
    char path[4096];
    struct stat st;
    double max = 0, start = now();
    for (long i = 0; i < files; i++) {
        snprintf(path, sizeof path, "%s/meta/f%ld", dir, i);
        double t = now();
        if (op == CREATE)
            write_file(path, buf, bytes);
        else if (op == STAT && stat(path, &st) != 0)
            die("stat", path);
        else if (op == UNLINK && unlink(path) != 0)
            die("unlink", path);
        t = now() - t;
        if (t > max)
            max = t;
    }
    printf("%s %ld %.6f %.1f\n", name, files, now() - start, max * 1e6);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: meta DIR FILES BYTES DIRS FILES_PER_DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    long files = atol(argv[2]), dirs = atol(argv[4]), per_dir = atol(argv[5]);
    size_t bytes = (size_t)atol(argv[3]);
    char *buf = malloc(bytes ? bytes : 1);
    char path[4096];
    if (!buf)
        return 1;
    memset(buf, 0x5a, bytes);
    snprintf(path, sizeof path, "%s/meta", dir);
    if (mkdir(path, 0755) != 0)
        die("mkdir", path);
    phase("create", CREATE, dir, files, buf, bytes);
    phase("stat", STAT, dir, files, buf, bytes);
    phase("unlink", UNLINK, dir, files, buf, bytes);

    double max = 0, start = now();
    snprintf(path, sizeof path, "%s/tree", dir);
    if (mkdir(path, 0755) != 0)
        die("mkdir", path);
    for (long d = 0; d < dirs; d++) {
        snprintf(path, sizeof path, "%s/tree/d%ld", dir, d);
        if (mkdir(path, 0755) != 0)
            die("mkdir", path);
        for (long f = 0; f < per_dir; f++) {
            snprintf(path, sizeof path, "%s/tree/d%ld/f%ld", dir, d, f);
            double t = now();
            write_file(path, buf, bytes);
            t = now() - t;
            if (t > max)
                max = t;
        }
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || syncfs(fd) != 0)
        die("syncfs", dir);
    close(fd);
    printf("extract %ld %.6f %.1f\n", dirs * per_dir, now() - start, max * 1e6);
    return 0;
}
