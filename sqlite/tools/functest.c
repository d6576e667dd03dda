/*
 * Functional test of the bypassfs VFS: formats IMAGE, registers the VFS over the mounted
 * filesystem (the embedder's way) and, in DELETE and WAL journal modes, checks
 * transactions, rollback, locking between two connections, writers on several threads,
 * temporary files, that a committed DELETE-mode transaction leaves no journal, and that
 * everything is still there after unmount and mount. Exits 1 naming the first failure.
 *
 *   functest IMAGE      (IMAGE: a file of at least 64 MiB; it is formatted)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "bfs_sqlite.h"

#define EXPECT(cond)                                                               \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);         \
      exit(1);                                                                     \
    }                                                                              \
  } while (0)

static void exec(sqlite3 *db, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "%s: %s\n", sql, err ? err : "?");
    exit(1);
  }
}

static sqlite3_int64 query_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  EXPECT(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
  EXPECT(sqlite3_step(st) == SQLITE_ROW);
  sqlite3_int64 v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void query_text(sqlite3 *db, const char *sql, char *out, size_t n) {
  sqlite3_stmt *st;
  EXPECT(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
  EXPECT(sqlite3_step(st) == SQLITE_ROW);
  snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
}

/* The VFS of the current mount (each mount is a new filesystem handle, so a new VFS). */
static const char *vfs_name = BFS_SQLITE_VFS_NAME;

static sqlite3 *open_db(const char *path) {
  sqlite3 *db;
  EXPECT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs_name) ==
         SQLITE_OK);
  return db;
}

static void integrity_ok(sqlite3 *db) {
  char res[256];
  query_text(db, "PRAGMA integrity_check", res, sizeof res);
  EXPECT(strcmp(res, "ok") == 0);
}

struct writer {
  const char *path;
  int id;
};

enum { THREADS = 3, ROWS_PER_THREAD = 200 };

/* One connection per thread, each its own bypassfs context inside the VFS. */
static void *writer_main(void *arg) {
  struct writer *w = arg;
  sqlite3 *db = open_db(w->path);
  sqlite3_busy_timeout(db, 10000);
  for (int i = 0; i < ROWS_PER_THREAD; i++) {
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO t(k, v) VALUES(%d, 'thread %d')",
             1000000 * (w->id + 1) + i, w->id);
    exec(db, sql);
  }
  sqlite3_close(db);
  return NULL;
}

static void check_mode(bfs_fs_t fs, const char *mode) {
  char path[64], res[64];
  snprintf(path, sizeof path, "/db-%s.sqlite", mode);
  sqlite3 *a = open_db(path);
  char sql[128];
  snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", mode);
  query_text(a, sql, res, sizeof res);
  EXPECT(strcasecmp(res, mode) == 0);
  exec(a, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)");
  exec(a, "BEGIN");
  for (int i = 0; i < 2000; i++) {
    snprintf(sql, sizeof sql, "INSERT INTO t VALUES(%d, printf('row %%d', %d))", i, i);
    exec(a, sql);
  }
  exec(a, "COMMIT");
  exec(a, "BEGIN; DELETE FROM t WHERE k < 1000; ROLLBACK");
  EXPECT(query_int(a, "SELECT count(*) FROM t") == 2000);
  EXPECT(query_int(a, "SELECT sum(k) FROM t") == 1999 * 2000 / 2);

  /* Two connections: one writer at a time; readers see the last commit. */
  sqlite3 *b = open_db(path);
  exec(a, "BEGIN IMMEDIATE; INSERT INTO t VALUES(5000, 'pending')");
  EXPECT(sqlite3_exec(b, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_BUSY);
  EXPECT(query_int(b, "SELECT count(*) FROM t") == 2000);
  exec(b, "BEGIN");
  EXPECT(query_int(b, "SELECT count(*) FROM t") == 2000);
  int commit_rc = sqlite3_exec(a, "COMMIT", NULL, NULL, NULL);
  if (strcmp(mode, "wal") == 0) {
    /* WAL: the reader keeps its snapshot and does not block the commit. */
    EXPECT(commit_rc == SQLITE_OK);
    EXPECT(query_int(b, "SELECT count(*) FROM t") == 2000);
    exec(b, "COMMIT");
  } else {
    /* Rollback journal: the reader's SHARED lock keeps the writer from EXCLUSIVE. */
    EXPECT(commit_rc == SQLITE_BUSY);
    exec(b, "COMMIT");
    exec(a, "COMMIT");
  }
  EXPECT(query_int(b, "SELECT count(*) FROM t") == 2001);
  sqlite3_close(b);

  pthread_t th[THREADS];
  struct writer w[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (struct writer){path, i};
    EXPECT(pthread_create(&th[i], NULL, writer_main, &w[i]) == 0);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  EXPECT(query_int(a, "SELECT count(*) FROM t") == 2001 + THREADS * ROWS_PER_THREAD);

  if (strcmp(mode, "wal") == 0) {
    /* A checkpoint with a reader open: the reader's snapshot pins the WAL, so the first
     * truncating checkpoint cannot finish (its first column, busy, is 1); after the reader
     * is done, it empties the WAL. */
    sqlite3 *r = open_db(path);
    exec(r, "BEGIN");
    EXPECT(query_int(r, "SELECT count(*) FROM t") == 2001 + THREADS * ROWS_PER_THREAD);
    exec(a, "INSERT INTO t VALUES(9000, 'after the reader')");
    EXPECT(query_int(a, "PRAGMA wal_checkpoint(TRUNCATE)") == 1);
    exec(r, "COMMIT");
    EXPECT(sqlite3_close(r) == SQLITE_OK);
    EXPECT(query_int(a, "PRAGMA wal_checkpoint(TRUNCATE)") == 0);
    struct bfs_stat wal;
    snprintf(sql, sizeof sql, "%s-wal", path);
    EXPECT(bfs_stat(fs, sql, &wal) == 0 && wal.size == 0);
    exec(a, "DELETE FROM t WHERE k = 9000");
  }

  /* Temporary files (to the default VFS) work beside the database. */
  exec(a, "PRAGMA temp_store=FILE; CREATE TEMP TABLE scratch AS SELECT * FROM t");
  EXPECT(query_int(a, "SELECT count(*) FROM scratch") == 2001 + THREADS * ROWS_PER_THREAD);
  integrity_ok(a);
  EXPECT(sqlite3_close(a) == SQLITE_OK);

  struct bfs_stat st;
  char journal[80];
  snprintf(journal, sizeof journal, "%s-journal", path);
  EXPECT(bfs_stat(fs, journal, &st) == -ENOENT);
  EXPECT(bfs_stat(fs, path, &st) == 0 && st.size > 0);
  printf("functest: journal_mode=%s ok\n", mode);
}

static void check_after_remount(const char *mode) {
  char path[64];
  snprintf(path, sizeof path, "/db-%s.sqlite", mode);
  sqlite3 *db = open_db(path);
  EXPECT(query_int(db, "SELECT count(*) FROM t") == 2001 + THREADS * ROWS_PER_THREAD);
  integrity_ok(db);
  EXPECT(sqlite3_close(db) == SQLITE_OK);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
    return 2;
  }
  bfs_fs_t fs;
  EXPECT(bfs_format(argv[1]) == 0);
  EXPECT(bfs_mount(argv[1], 0, &fs) == 0);
  EXPECT(bfs_sqlite_register(fs, 0) == SQLITE_OK);
  EXPECT(bfs_sqlite_register(fs, 0) == SQLITE_OK);
  EXPECT(bfs_sqlite_register(fs + 1, 0) == SQLITE_MISUSE);
  EXPECT(bfs_sqlite_register(0, 0) == SQLITE_MISUSE);

  sqlite3 *db;
  EXPECT(sqlite3_open_v2("/missing.db", &db, SQLITE_OPEN_READWRITE, BFS_SQLITE_VFS_NAME) ==
         SQLITE_CANTOPEN);
  sqlite3_close(db);

  check_mode(fs, "delete");
  check_mode(fs, "wal");
  bfs_sqlite_release_context(fs);
  EXPECT(bfs_unmount(fs) == 0);

  /* A new mount is a new handle: the name "bypassfs" stays with the old one. */
  int rc = bfs_mount(argv[1], 0, &fs);
  if (rc != 0) fprintf(stderr, "remount: %s\n", strerror(-rc));
  EXPECT(rc == 0);
  EXPECT(bfs_sqlite_register(fs, 0) == SQLITE_MISUSE);
  EXPECT(bfs_sqlite_register_as("bypassfs-again", fs, 1) == SQLITE_OK);
  EXPECT(strcmp(sqlite3_vfs_find(NULL)->zName, "bypassfs-again") == 0);
  vfs_name = "bypassfs-again";
  check_after_remount("delete");
  check_after_remount("wal");
  bfs_sqlite_release_context(fs);
  EXPECT(bfs_unmount(fs) == 0);
  printf("functest: all ok\n");
  return 0;
}
