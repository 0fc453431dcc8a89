/* server.h: the listening Unix socket.
 *
 * The socket lives in a 0750 directory with mode 0660, so the daemon's
 * user and group may connect; SO_PEERCRED tells who each client is. A
 * stale socket file (nobody answers on it) is replaced; a live one means
 * another memtraind runs there, which is an error. */
#ifndef MT_SERVER_H
#define MT_SERVER_H

#include "daemon.h"

int server_listen(struct daemon *d, struct mt_err *err);
/* Stop accepting and close the listener (connections stay). */
void server_stop(struct daemon *d);

#endif
