/* fmt.h: mtctl's output helpers: job states, byte counts, durations,
 * aligned text tables, and a small streaming JSON emitter with correct
 * string escaping (fmt.c), plus the JSON form of each protocol message
 * (jsonmsg.c). Nothing here talks to the daemon. */
#ifndef MTCTL_FMT_H
#define MTCTL_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "memtrain.pb-c.h"
#include "memtrain/category.h"
#include "memtrain/plural.h"

/* ---- job states */

/* "RUNNING"; "UNKNOWN" for a value this client does not know. */
const char *fmt_state(int state);

/* "queued", "RUNNING", "out-of-memory", "oom", ... -> the JobState; -1 if
 * the name is unknown. */
int fmt_parse_state(const char *name);

/* COMPLETED, FAILED, CANCELLED, OUT_OF_MEMORY (INTERRUPTED is final only
 * when the daemon ends the stream). */
int fmt_state_final(int state);

/* The exit status for a final state (0, 10, 11, 12, 13); 1 otherwise. */
int fmt_state_exit(int state);

/* The job's reason, or "" when it only repeats the state ("cancelled"). */
const char *fmt_reason(const Memtrain__Job *job);

/* ---- numbers and times */

/* "1.50 MiB"; "0 B" for zero. Returns buf. */
char *fmt_bytes(char *buf, size_t len, uint64_t bytes);

/* The rows of a MemoryStats as mtctl prints them: the six categories first
 * (FMT_MEM_CATEGORIES), then the peak total and the three phase peaks. */
#define FMT_MEM_CATEGORIES MT_MEM_NCAT
#define FMT_MEM_ROWS (FMT_MEM_CATEGORIES + 4)
/* Row i's label: the category's name (memtrain/category.h), then "peak
 * total", "phase forward", "phase gradient", "phase update"; "?" past them. */
const char *fmt_mem_label(size_t i);
/* Row i of m; 0 when m is NULL. */
uint64_t fmt_mem_at(const Memtrain__MemoryStats *m, size_t i);

/* "45s", "3m12s", "2h05m", "4d3h". Negative durations print as "0s". */
char *fmt_duration(char *buf, size_t len, double seconds);

/* How long `job` has run: to its end, or to `now` (Unix ms) while it runs;
 * "-" when it never started. Returns buf. */
char *fmt_elapsed(char *buf, size_t len, const Memtrain__Job *job, int64_t now);

/* Unix milliseconds as local time with its zone, "2024-05-01 12:00:03 UTC"
 * (len >= 32); "-" for 0. Every time mtctl prints as text goes through it. */
char *fmt_time(char *buf, size_t len, int64_t ms);

/* A learning rate, the one way mtctl prints one: 4 significant digits,
 * "0.003", "0.0009877", "1e-05". */
char *fmt_lr(char *buf, size_t len, double lr);

/* "[#########-----------]  45%": a fraction as the one progress bar style
 * of mtctl (FMT_BAR_WIDTH cells; the percent is not clamped). len >= 32. */
#define FMT_BAR_WIDTH 20
char *fmt_bar(char *buf, size_t len, double fraction);

/* "97.85%" for 0.9785. */
char *fmt_percent(char *buf, size_t len, double fraction);

/* A model's shape: "784-256-256-10 relu, kaiming init" ("in"/"out" when the
 * dataset decides; a layer's own activation in brackets). Returns buf. */
char *fmt_model(char *buf, size_t len, const Memtrain__ModelSpec *m);

/* The user name of a uid (cached), or the number as text. */
const char *fmt_user(uint32_t uid, char *buf, size_t len);

/* ---- tables: columns padded to their widest cell; the last column is not
 * padded. Cells are copied. */
struct table {
    int ncols;
    const char *const *head;
    const char *right;        /* per column: 'r' right-aligned, else left; may be NULL */
    char **cells;             /* nrows * ncols */
    size_t nrows, cap;
    int oom;                  /* an allocation failed; table_print says so */
};

void table_init(struct table *t, int ncols, const char *const *head, const char *right);
/* Add a row of ncols cells; NULL cells print as "-". */
void table_add(struct table *t, const char *const *cells);
/* Print the header (if head) and the rows; -1 if a row could not be stored. */
int table_print(const struct table *t, FILE *f);
/* The same rows as CSV (every column, header row if head); -1 as above. */
int table_print_csv(const struct table *t, FILE *f);
void table_free(struct table *t);

/* A CSV field: quoted when it holds a comma, a quote or a line break. */
void csv_field(FILE *f, const char *s);

/* ---- JSON: one document or one JSON line at a time */
#define JSON_MAX_DEPTH 32
struct json {
    FILE *f;
    int depth;
    unsigned char first[JSON_MAX_DEPTH];  /* no member written yet at this level */
    char close[JSON_MAX_DEPTH];           /* '}' or ']' */
};

/* Start a document: "{" and "schema_version": 1. */
void json_begin(struct json *j, FILE *f);
/* Close the document (and anything left open) and end the line. */
void json_end(struct json *j);

/* Every value function takes the member name, or NULL inside an array. */
void json_obj(struct json *j, const char *key);
void json_obj_end(struct json *j);
void json_arr(struct json *j, const char *key);
void json_arr_end(struct json *j);
void json_str(struct json *j, const char *key, const char *s);   /* NULL -> null */
void json_u64(struct json *j, const char *key, uint64_t v);
void json_i64(struct json *j, const char *key, int64_t v);
void json_double(struct json *j, const char *key, double v);     /* not finite -> null */
void json_float(struct json *j, const char *key, float v);       /* 7 significant digits */
void json_bool(struct json *j, const char *key, int v);
void json_null(struct json *j, const char *key);

/* Write s as a JSON string literal (quotes, escapes, \u00XX controls). */
void json_write_string(FILE *f, const char *s);

/* ---- jsonmsg.c: protocol messages as JSON objects (names as in the .proto;
 * times are Unix milliseconds, sizes bytes). A NULL message writes null. */
void json_memory_stats(struct json *j, const char *key, const Memtrain__MemoryStats *m);
void json_memory_sample(struct json *j, const char *key, const Memtrain__MemorySample *s);
void json_epoch(struct json *j, const char *key, const Memtrain__EpochProgress *e);
void json_step(struct json *j, const char *key, const Memtrain__StepProgress *s);
void json_job(struct json *j, const char *key, const Memtrain__Job *job);
void json_spec(struct json *j, const char *key, const Memtrain__JobSpec *s);
void json_checkpoint(struct json *j, const char *key, const Memtrain__Checkpoint *ck);

#endif
