// The system SQLite (libsqlite3-dev): the snapshotter's metadata store.
#include <sqlite3.h>
