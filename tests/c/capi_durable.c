/* The C API test: when namespace changes become durable (group commit). */
#include <sys/wait.h>

#include "capi_test.h"

/* In a child process: mounts with `flags`, makes the directory `dir`/new, makes it durable
 * with bfs_fsync_dir(`dir`) if asked, and dies without unmounting (a crash, as far as the
 * device can tell). Returns the child's exit status (0: every call succeeded). */
static int crash_after_mkdir(const char *dev, uint32_t flags, const char *dir, int fsync_dir) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    bfs_fs_t fs;
    char path[256];
    if (bfs_mount(dev, flags, &fs) != 0) _exit(10);
    snprintf(path, sizeof path, "%s/new", dir);
    if (bfs_mkdir(fs, path, 0755) != 0) _exit(11);
    if (fsync_dir && bfs_fsync_dir(fs, dir) != 0) _exit(12);
    _exit(0);
  }
  int status = -1;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* 1 if `path` exists on a fresh mount (which takes over the dead child's claim), 0 if not,
 * a negative errno if the mount or stat failed otherwise. */
static int exists_after_crash(const char *dev, const char *path) {
  bfs_fs_t fs;
  struct bfs_stat st;
  int rc = bfs_mount(dev, BFS_MOUNT_TAKEOVER, &fs);
  if (rc != 0) return rc;
  rc = bfs_stat(fs, path, &st);
  OK(bfs_unmount(fs));
  return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

/* bfs_fsync_dir and BFS_MOUNT_DIRSYNC make a new name durable; bfs_fsync_dir's errors. */
void durability(struct env *e) {
  bfs_file_t f;
  bfs_fs_t fs;
  up(e);
  OK(bfs_mkdir(e->fs, "/d1", 0755));
  OK(bfs_mkdir(e->fs, "/d2", 0755));
  OK(bfs_open(e->ctx, "/d1/file", O_RDWR | O_CREAT, 0644, &f));
  OK(bfs_close(f));
  EQ(bfs_fsync_dir(e->fs, NULL), -EINVAL);
  EQ(bfs_fsync_dir(e->fs, "/nonexistent"), -ENOENT);
  EQ(bfs_fsync_dir(e->fs, "/d1/file"), -ENOTDIR);
  for (int i = 0; i < N_BAD; i++) EQ(bfs_fsync_dir(bad_handle(e, i, e->fs), "/d1"), -EBADF);
  OK(bfs_fsync_dir(e->fs, "/"));
  OK(bfs_fsync_dir(e->fs, "/d1"));
  down(e);
  EQ(bfs_mount(e->dev, 1u << 7, &fs), -EINVAL);

  /* A directory's fsync makes a name created in it durable across a crash. */
  EQ(crash_after_mkdir(e->dev, 0, "/d1", 1), 0);
  EQ(exists_after_crash(e->dev, "/d1/new"), 1);
  /* So does a dirsync mount, on the call's return. */
  EQ(crash_after_mkdir(e->dev, BFS_MOUNT_DIRSYNC, "/d2", 0), 0);
  EQ(exists_after_crash(e->dev, "/d2/new"), 1);
}
