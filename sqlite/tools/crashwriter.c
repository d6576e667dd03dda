/*
 * The client of the SQLite crash test (bench/scripts/sqlite-crash.sh), on the bypassfs VFS
 * over $BFS_SQLITE_DEVICE.
 *
 *   crashwriter write DB JOURNAL_MODE SEED   numbered transactions until killed: after each
 *                                            COMMIT returns, prints its number (flushed)
 *   crashwriter check DB LAST                integrity_check is ok, transactions 1..LAST
 *                                            are all there, and none is there in part
 *
 * Exit codes: 0 ok, 1 a check failed, 2 usage, 3 the database did not open.
 *
 * Transaction n inserts row n (a payload of seeded random size, up to 6000 bytes, so
 * commits touch one page or several) and updates a summary row (count, sum, last): a
 * transaction applied in part shows as a summary that disagrees with the rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "bfs_sqlite.h"

static void die(sqlite3 *db, const char *what) {
  fprintf(stderr, "crashwriter: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
  exit(1);
}

static void exec(sqlite3 *db, const char *sql) {
  if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) die(db, sql);
}

static sqlite3_int64 query_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) die(db, sql);
  if (sqlite3_step(st) != SQLITE_ROW) die(db, sql);
  sqlite3_int64 v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static sqlite3 *open_db(const char *path) {
  if (bfs_sqlite_register_env(0) != SQLITE_OK) {
    fprintf(stderr, "crashwriter: set BFS_SQLITE_DEVICE\n");
    exit(2);
  }
  sqlite3 *db;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      BFS_SQLITE_VFS_NAME) != SQLITE_OK) {
    /* Its own exit code: the script retries while a killed writer's device lingers. */
    fprintf(stderr, "crashwriter: open %s: %s\n", path, sqlite3_errmsg(db));
    exit(3);
  }
  return db;
}

static _Noreturn void write_loop(const char *path, const char *mode, unsigned seed) {
  sqlite3 *db = open_db(path);
  char sql[160];
  snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", mode);
  exec(db, sql);
  exec(db, "PRAGMA synchronous=FULL");
  exec(db,
       "CREATE TABLE IF NOT EXISTS t(n INTEGER PRIMARY KEY, payload BLOB NOT NULL);"
       "CREATE TABLE IF NOT EXISTS summary(id INTEGER PRIMARY KEY, count INT, total INT, last INT);"
       "INSERT OR IGNORE INTO summary VALUES(1, 0, 0, 0)");
  sqlite3_int64 n = query_int(db, "SELECT last FROM summary");
  srand(seed);
  for (;;) {
    n++;
    int size = 1 + rand() % 6000;
    exec(db, "BEGIN");
    snprintf(sql, sizeof sql, "INSERT INTO t VALUES(%lld, zeroblob(%d))", (long long)n, size);
    exec(db, sql);
    snprintf(sql, sizeof sql,
             "UPDATE summary SET count = count + 1, total = total + %lld, last = %lld",
             (long long)n, (long long)n);
    exec(db, sql);
    exec(db, "COMMIT");
    printf("%lld\n", (long long)n);
    fflush(stdout);
  }
}

static int check(const char *path, long long last) {
  sqlite3 *db = open_db(path);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
    die(db, "integrity_check");
  int ok = sqlite3_step(st) == SQLITE_ROW &&
           strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
  if (!ok) fprintf(stderr, "crashwriter: integrity_check: %s\n", sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  if (!ok) return 1;
  /* The tables may not exist yet when the first writer was killed before creating them. */
  if (query_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'summary'") == 0) {
    if (last > 0) {
      fprintf(stderr, "crashwriter: no tables, but transaction %lld committed\n", last);
      return 1;
    }
    printf("check ok: empty database\n");
    return 0;
  }
  long long count = query_int(db, "SELECT count(*) FROM t");
  long long max = query_int(db, "SELECT coalesce(max(n), 0) FROM t");
  long long total = query_int(db, "SELECT coalesce(sum(n), 0) FROM t");
  long long s_count = query_int(db, "SELECT count FROM summary");
  long long s_total = query_int(db, "SELECT total FROM summary");
  long long s_last = query_int(db, "SELECT last FROM summary");
  if (count != max || s_count != count || s_total != total || s_last != max) {
    fprintf(stderr,
            "crashwriter: a transaction is there in part: rows %lld (max %lld, sum %lld), "
            "summary count %lld total %lld last %lld\n",
            count, max, total, s_count, s_total, s_last);
    return 1;
  }
  if (max < last) {
    fprintf(stderr, "crashwriter: transaction %lld committed but the database ends at %lld\n",
            last, max);
    return 1;
  }
  if (sqlite3_close(db) != SQLITE_OK) die(db, "close");
  printf("check ok: transactions 1..%lld present (%lld reported committed)\n", max, last);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "write") == 0)
    write_loop(argv[2], argv[3], (unsigned)strtoul(argv[4], NULL, 10));
  if (argc == 4 && strcmp(argv[1], "check") == 0)
    return check(argv[2], strtoll(argv[3], NULL, 10));
  fprintf(stderr, "usage: %s write DB JOURNAL_MODE SEED | check DB LAST\n", argv[0]);
  return 2;
}
