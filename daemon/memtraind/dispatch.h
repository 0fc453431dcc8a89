/* dispatch.h: one handler per verb of the protocol (proto/memtrain.proto).
 * Every Request gets at least one Response with its id: a status and, when
 * not OK, a message a person can act on. */
#ifndef MT_DISPATCH_H
#define MT_DISPATCH_H

#include "memtrain.pb-c.h"

struct conn;

void dispatch_request(struct conn *c, const Memtrain__Request *req);

#endif
