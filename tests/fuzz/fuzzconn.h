/* fuzzconn.h: the in-memory conn.h of the dispatch fuzz target (fuzzconn.c). */
#ifndef MT_FUZZCONN_H
#define MT_FUZZCONN_H

#include <stddef.h>

#include "conn.h"

/* Nonzero: print each reply's id, status, body and message on stderr. */
extern int fuzzconn_verbose;

/* Deliver the write completions queued so far (they may queue more). */
void fuzzconn_drain(void);
/* Replies packed since the start. */
size_t fuzzconn_replies(void);

#endif
