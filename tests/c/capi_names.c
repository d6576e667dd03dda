/* The C API test: names, attributes, directory streams, extended attributes. */
#include "capi_test.h"

/* mkdir, rmdir, unlink, rename with its flags, link, symlink, readlink, stat. */
void names(struct env *e) {
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
void attributes(struct env *e) {
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
void directories(struct env *e) {
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
void xattrs(struct env *e) {
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
