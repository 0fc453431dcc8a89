/* yamlwalk.h: one walk over libyaml events for the files memtrain reads
 * (job specs in the engine, memtraind.yaml in the daemon).
 *
 * The walker owns the libyaml parser and the current event, refuses
 * aliases (no expansion bombs), keeps the dotted path of the value being
 * read ("model.hidden[1].width") and formats every error as
 * "FILE:LINE: PATH: text". A mapping is read key by key against a table of
 * key names: unknown keys (the message lists the valid ones), keys given
 * twice and non-scalar keys are refused there, so callers only store
 * values. It never recurses; callers walk nested sections themselves. */
#ifndef MEMTRAIN_YAMLWALK_H
#define MEMTRAIN_YAMLWALK_H

#include <stddef.h>
#include <stdio.h>

#include <yaml.h>

#include "memtrain/err.h"

#define MT_YAML_FILE_LEN 256   /* bytes of the file name kept for messages */
#define MT_YAML_PATH_LEN 192
#define MT_YAML_MAX_KEYS 32    /* keys of one mapping's table */

struct mt_yaml {
    yaml_parser_t parser;
    yaml_event_t ev;                /* the current event (valid when have_ev) */
    int have_ev;
    char file[MT_YAML_FILE_LEN];    /* sanitised, for messages */
    struct mt_err *err;             /* where failures are written; may be NULL */
    char path[MT_YAML_PATH_LEN];    /* dotted path of the current value; "" at the top */
    size_t plen;
};

/* Start a walk over `len` bytes of text (not copied: it must outlive the
 * walk) or over an open file (read as the walk goes; the caller closes it
 * after mt_yaml_deinit). `file` names the input in messages. 0 or
 * MT_E_NOMEM; on error nothing needs deinit. */
int mt_yaml_init_string(struct mt_yaml *y, const char *file, const char *text, size_t len,
                        struct mt_err *err);
int mt_yaml_init_file(struct mt_yaml *y, const char *file, FILE *f, struct mt_err *err);
void mt_yaml_deinit(struct mt_yaml *y);

/* Advance to the next event. MT_E_INVAL for a syntax error
 * ("FILE:LINE: YAML syntax error: ... (while ... at line N)") or an alias,
 * MT_E_NOMEM when libyaml runs out of memory. */
int mt_yaml_next(struct mt_yaml *y);
/* The current event's line (1-based) and what it is ("a mapping", "a
 * list", "a scalar", "nothing"). */
size_t mt_yaml_line(const struct mt_yaml *y);
const char *mt_yaml_kind(const struct mt_yaml *y);

/* Fill err with "FILE:LINE: PATH: text" (the path part when not at the
 * top, the line part when line > 0); returns MT_E_INVAL. */
int mt_yaml_fail(struct mt_yaml *y, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Past the stream and document start: the current event is the document's
 * root. *empty is set (and nothing else read) when the input holds no
 * document at all. */
int mt_yaml_doc_begin(struct mt_yaml *y, int *empty);
/* After the root: past the document end; a second document is refused
 * ("FILE:LINE: more than one YAML document"). */
int mt_yaml_doc_end(struct mt_yaml *y);

/* The current event as a scalar's text. When it is not a scalar, or holds a
 * NUL byte: MT_E_INVAL with "expected WHAT, got a mapping" (or "..., got a
 * value with a NUL byte"). */
int mt_yaml_scalar(struct mt_yaml *y, const char *what, const char **text, size_t *len);
/* The current scalar is an unquoted empty value, ~ or null. */
int mt_yaml_is_null(const struct mt_yaml *y);
/* "expected WHAT, got 'VALUE'" (the value shortened and sanitised) at the
 * current event's line. */
int mt_yaml_bad_value(struct mt_yaml *y, const char *what, const char *text, size_t len);

/* Append "[i]" to the path; returns the old length for mt_yaml_path_pop. */
size_t mt_yaml_path_index(struct mt_yaml *y, int i);
void mt_yaml_path_pop(struct mt_yaml *y, size_t old);

/* A mapping being read against a table of keys. `keys` points at n_keys
 * entries `stride` bytes apart, each starting with its `const char *name`. */
struct mt_yaml_map {
    const void *keys;
    size_t n_keys, stride;
    size_t seen[MT_YAML_MAX_KEYS];  /* line of each key's first appearance; 0 = not given */
    size_t index;                   /* the key just read */
    size_t line;                    /* its line */
    size_t plen;                    /* path length before it */
    int in_key;
};

/* Begin reading the mapping whose start is the current event. n_keys must
 * be at most MT_YAML_MAX_KEYS. */
void mt_yaml_map_begin(struct mt_yaml_map *m, const void *keys, size_t n_keys, size_t stride);
/* Read the next key: 1 when one was read (its name pushed on the path,
 * m->index and m->line set, the current event the start of its value), 0
 * at the end of the mapping, or an error: a key that is not a scalar, an
 * unknown key ("unknown key (expected one of: a, b, c)"), a key given twice
 * ("given twice (first at line N)"). */
int mt_yaml_map_next(struct mt_yaml *y, struct mt_yaml_map *m);

#endif
