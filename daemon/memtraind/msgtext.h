/* msgtext.h: the strings of a protobuf message, checked as UTF-8.
 *
 * A Request from a client may carry any bytes in its `string` fields
 * (protobuf-c does not check them); the daemon echoes names, specs and paths
 * back in replies that strict protobuf clients then cannot decode. Dispatch
 * refuses such a request up front with the field's name. */
#ifndef MT_MSGTEXT_H
#define MT_MSGTEXT_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

/* 0 when every string field of m (nested messages and repeated fields
 * included) is valid UTF-8; otherwise -1 with the first bad field's dotted
 * name (e.g. "submit.name") in where[0..n). */
int msgtext_check(const ProtobufCMessage *m, char *where, size_t n);

#endif
