/* dispatch.h: one handler per verb of the protocol (proto/memtrain.proto).
 * Every Request gets at least one Response with its id: a status and, when
 * not OK, a message a person can act on. */
#ifndef MT_DISPATCH_H
#define MT_DISPATCH_H

#include <stdint.h>

#include "memtrain.pb-c.h"

struct conn;

void dispatch_request(struct conn *c, const Memtrain__Request *req);

/* For the verbs answered in other files (tidyverbs.c). */
struct store_job;
/* The Status for a negative MT_E_* code. */
Memtrain__Status dispatch_status(int code);
/* The stored row of a job c's peer may read (access.h); else an error reply
 * (a job it may not read is NOT_FOUND, as a missing one) and its code. */
int dispatch_get_row(struct conn *c, uint64_t id, uint64_t job_id, struct store_job *row);
/* 1 when c's peer may control row's job; else a PERMISSION_DENIED reply
 * ("... only its owner or root may <verb> it") and 0. */
int dispatch_may_control(struct conn *c, uint64_t id, const struct store_job *row,
                         const char *verb);

/* What the daemon does with its connections: requests to dispatch_request;
 * a closed connection takes its watches and dataset probes with it. */
extern const struct conn_handler dispatch_conn_handler;

#endif
