/*
 * The loadable extension: `.load ./bypassfs` (entry point sqlite3_bypassfs_init) registers
 * the VFS "bypassfs" over $BFS_SQLITE_DEVICE, mounted when the first database is opened
 * through it. The extension stays loaded after the connection that loaded it closes.
 */
#include <stdlib.h>

#include "internal.h"

SQLITE_EXTENSION_INIT1

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_bypassfs_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  (void)db;
  SQLITE_EXTENSION_INIT2(api);
  const char *device = getenv("BFS_SQLITE_DEVICE");
  if (device == NULL || device[0] == '\0') {
    *err = sqlite3_mprintf("bypassfs: set BFS_SQLITE_DEVICE to the device to mount");
    return SQLITE_ERROR;
  }
  int rc = bfs_sqlite_register_env(0);
  if (rc != SQLITE_OK) {
    *err = sqlite3_mprintf("bypassfs: registering the VFS failed (%d)", rc);
    return rc;
  }
  return SQLITE_OK_LOAD_PERMANENTLY;
}
