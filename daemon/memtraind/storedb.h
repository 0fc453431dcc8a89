/* storedb.h: the store's SQLite handle, for storetidy.c only (store.c and
 * storetidy.c are the files that include sqlite3.h). */
#ifndef MT_STOREDB_H
#define MT_STOREDB_H

#include <sqlite3.h>

#include "store.h"

/* The connection store_open made; owned by the store. */
sqlite3 *store_db(struct store *st);
/* "store: <op>: <SQLite's text>" in err, with the MT_E_* code for rc. Call
 * before resetting the statement that failed. */
int store_db_fail(struct store *st, int rc, const char *op, struct mt_err *err);

#endif
