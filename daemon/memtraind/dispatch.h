/* dispatch.h: one handler per verb of the protocol (proto/memtrain.proto).
 * Every Request gets at least one Response with its id: a status and, when
 * not OK, a message a person can act on. */
#ifndef MT_DISPATCH_H
#define MT_DISPATCH_H

#include "memtrain.pb-c.h"

struct conn;

void dispatch_request(struct conn *c, const Memtrain__Request *req);

/* What the daemon does with its connections: requests to dispatch_request;
 * a closed connection takes its watches and dataset probes with it. */
extern const struct conn_handler dispatch_conn_handler;

#endif
