/*
 * The workload where a filesystem matters most to SQLite: N single-row autocommit
 * INSERTs, each its own transaction, with synchronous=FULL (so each commit syncs).
 *
 *   txbench [--vfs NAME] [--synchronous LEVEL] DB JOURNAL_MODE N
 *
 * DB is created afresh (an existing one and its journal/WAL are deleted first). Prints
 * one line: the journal mode, N, seconds and transactions per second. With --vfs bypassfs
 * the VFS is registered from $BFS_SQLITE_DEVICE (see sqlite/README.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "bfs_sqlite.h"

static void die(sqlite3 *db, const char *what) {
  fprintf(stderr, "txbench: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
  exit(1);
}

static void exec(sqlite3 *db, const char *sql) {
  if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) die(db, sql);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Deletes DB and what SQLite may have left beside it, through the VFS that holds them. */
static void remove_db(sqlite3_vfs *vfs, const char *db) {
  static const char *suffix[] = {"", "-journal", "-wal", "-shm"};
  for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s%s", db, suffix[i]);
    vfs->xDelete(vfs, path, 0);
  }
}

int main(int argc, char **argv) {
  const char *vfs_name = NULL, *sync = "FULL";
  int i = 1;
  for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (strcmp(argv[i], "--vfs") == 0) vfs_name = argv[i + 1];
    else if (strcmp(argv[i], "--synchronous") == 0) sync = argv[i + 1];
    else break;
  }
  if (argc - i != 3) {
    fprintf(stderr, "usage: %s [--vfs NAME] [--synchronous LEVEL] DB JOURNAL_MODE N\n", argv[0]);
    return 2;
  }
  const char *path = argv[i], *mode = argv[i + 1];
  long n = strtol(argv[i + 2], NULL, 10);
  if (vfs_name != NULL && strcmp(vfs_name, BFS_SQLITE_VFS_NAME) == 0 &&
      bfs_sqlite_register_env(0) != SQLITE_OK) {
    fprintf(stderr, "txbench: set BFS_SQLITE_DEVICE to use the bypassfs VFS\n");
    return 2;
  }
  sqlite3_vfs *vfs = sqlite3_vfs_find(vfs_name);
  if (vfs == NULL) {
    fprintf(stderr, "txbench: no VFS %s\n", vfs_name);
    return 2;
  }
  remove_db(vfs, path);

  sqlite3 *db;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs_name) != SQLITE_OK)
    die(db, "open");
  char sql[128];
  snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", mode);
  exec(db, sql);
  snprintf(sql, sizeof sql, "PRAGMA synchronous=%s", sync);
  exec(db, sql);
  exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)");

  sqlite3_stmt *ins;
  if (sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES(printf('row %d of the txbench', ?1))", -1,
                         &ins, NULL) != SQLITE_OK)
    die(db, "prepare");
  double t0 = now_s();
  for (long k = 0; k < n; k++) {
    sqlite3_bind_int64(ins, 1, k);
    if (sqlite3_step(ins) != SQLITE_DONE) die(db, "insert");
    sqlite3_reset(ins);
  }
  double secs = now_s() - t0;
  sqlite3_finalize(ins);
  sqlite3_stmt *cnt;
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &cnt, NULL) != SQLITE_OK ||
      sqlite3_step(cnt) != SQLITE_ROW || sqlite3_column_int64(cnt, 0) != n)
    die(db, "count after the inserts");
  sqlite3_finalize(cnt);
  if (sqlite3_close(db) != SQLITE_OK) die(db, "close");
  printf("journal_mode=%s synchronous=%s transactions=%ld seconds=%.3f tps=%.0f\n", mode, sync,
         n, secs, (double)n / secs);
  return 0;
}
