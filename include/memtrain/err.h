/* err.h: error codes and the message-carrying error struct shared by the
 * engine, the daemon and the client.
 *
 * Functions return 0 on success or a negative MT_E_* code. A function whose
 * failure a user must understand takes `struct mt_err *err` last and fills in
 * a sentence naming what failed ("train-images-idx3-ubyte: truncated: ...").
 * `err` may be NULL when the caller does not want the text. */
#ifndef MEMTRAIN_ERR_H
#define MEMTRAIN_ERR_H

#include <stddef.h>

enum {
    MT_OK = 0,
    MT_E_NOMEM = -1,     /* the system allocator said no */
    MT_E_LIMIT = -2,     /* the job's memory limit would be exceeded */
    MT_E_INVAL = -3,     /* invalid argument, spec value or shape */
    MT_E_IO = -4,        /* a file could not be opened or read */
    MT_E_FORMAT = -5,    /* a file is not what it claims to be */
    MT_E_CANCELLED = -6, /* stopped on request */
    MT_E_NOTFOUND = -7,  /* a named thing does not exist */
    MT_E_INJECTED = -8,  /* a fault injected by a test (arena_fail_after) */
    MT_E_PERM = -9,      /* the caller may not do this */
    MT_E_BUSY = -10,     /* the thing is in a state that does not allow it */
    MT_E_EOF = -20,      /* the peer closed before a frame began */
    MT_E_TOOBIG = -21,   /* a frame's length is over the cap */
    MT_E_TRUNCATED = -22, /* the peer closed in the middle of a frame */
    MT_E_PROTO = -23,    /* a frame's bytes are not the message expected */
    MT_E_UNREACHABLE = -24, /* no daemon listens on the socket */
};

#define MT_ERR_LEN 512

struct mt_err {
    int code;
    char msg[MT_ERR_LEN];
};

/* Fill `err` (if not NULL) with `code` and a printf-style message; returns
 * `code` so callers can write `return mt_err_set(err, MT_E_INVAL, ...)`. */
int mt_err_set(struct mt_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message with more context ("layer 3: " + msg). */
int mt_err_prefix(struct mt_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void mt_err_clear(struct mt_err *err);

/* Short English name of a code ("memory limit exceeded"). Never NULL. */
const char *mt_strerror(int code);

/* Format a byte count for humans: "1.50 MiB". Writes into buf, returns buf. */
char *mt_fmt_bytes(char *buf, size_t len, double bytes);

/* A user's value as quoted in a message: at most MT_SHOW_LEN bytes of
 * text[0..len), control bytes as '?', "..." when cut (never inside a UTF-8
 * sequence). `cap` of MT_SHOW_LEN + 4 is always enough. Returns out. */
#define MT_SHOW_LEN 48
char *mt_err_show(char *out, size_t cap, const char *text, size_t len);

#endif
