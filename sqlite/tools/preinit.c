/*
 * Linked into programs that cannot be changed (SQLite's speedtest1) so that they run on the
 * bypassfs VFS: before main, registers the VFS "bypassfs" over $BFS_SQLITE_DEVICE (the
 * program then selects it, as speedtest1 does with `--vfs bypassfs`), and, when
 * $BFS_SQLITE_SYNCHRONOUS is set, applies `PRAGMA synchronous=<it>` to every connection
 * (speedtest1 can only turn syncing off). Does nothing when neither is set, so the same
 * binary runs unchanged on the default VFS for comparison.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "bfs_sqlite.h"

static int set_synchronous(sqlite3 *db, char **err, const void *api) {
  (void)api;
  const char *level = getenv("BFS_SQLITE_SYNCHRONOUS");
  if (strspn(level, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123") != strlen(level)) {
    *err = sqlite3_mprintf("BFS_SQLITE_SYNCHRONOUS=%s is not a synchronous level", level);
    return SQLITE_ERROR;
  }
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA synchronous=%s", level);
  return sqlite3_exec(db, sql, NULL, NULL, err);
}

__attribute__((constructor)) static void bfs_preinit(void) {
  const char *device = getenv("BFS_SQLITE_DEVICE");
  if (device != NULL && device[0] != '\0') {
    int rc = bfs_sqlite_register_env(0);
    if (rc != SQLITE_OK) {
      fprintf(stderr, "bypassfs VFS: registration failed (%d)\n", rc);
      exit(1);
    }
  }
  const char *level = getenv("BFS_SQLITE_SYNCHRONOUS");
  if (level != NULL && level[0] != '\0')
    sqlite3_auto_extension((void (*)(void))set_synchronous);
}
