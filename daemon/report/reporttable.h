/* reporttable.h: the reproduction report's table, one module for both of
 * its programs: memtrain-report (rows from the runs it trains,
 * daemon/memtrain-report) and `mtctl report` (rows from jobs the daemon
 * stored, client/report.c). Each program fills report_row structs from its
 * own source; the figures (best epoch, mean seconds), the cells both print
 * alike (MB figures), the markdown table and the two CSVs with their one
 * schema live here. Not here: where rows come from, option parsing,
 * progress output, and each program's own columns in its human tables.
 *
 * The CSV schema (docs/rules/report.md lists the columns): a column one
 * source does not know is left empty there (memtrain-report has no job id,
 * mtctl no BP reference or steps per epoch), so both programs write the
 * same header and a reader needs one parser. Bytes are plain integers,
 * errors in percent, seconds as %.6g.
 *
 * Links libmtpapermem (the paper's counting and Table 1, papermem.h),
 * libmtcommon's headers and libc; nothing else of the engine, no protobuf. */
#ifndef MT_REPORTTABLE_H
#define MT_REPORTTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "memtrain/err.h"
#include "papermem.h"

#define REPORT_MAX_METRICS 16      /* as the engine's MT_MAX_RULE_METRICS */
#define REPORT_METRIC_NAME 24

/* A run's memory figures after some epoch: the arena's peaks since the
 * start (bytes), per category and per phase of a step (PAPERMEM_FORWARD,
 * _GRADIENT, _UPDATE), and the process's peak RSS. */
struct report_mem {
    int known;                       /* 0: none recorded; the fields are 0 */
    uint64_t params, grads, optimizer, kept_activations, workspace, data;
    uint64_t peak_total;             /* peak of the sum over categories */
    uint64_t phase_peak[PAPERMEM_NPHASE];
    uint64_t rss_peak;               /* VmHWM of the training process; 0 unknown */
};

/* A figure a rule reports per epoch ("li.2" = 0.031). */
struct report_metric {
    char name[REPORT_METRIC_NAME];
    double value;
};

/* One finished epoch. */
struct report_epoch {
    int epoch;                       /* 1-based */
    double loss;                     /* mean training loss over the epoch */
    double train_accuracy, test_accuracy;   /* 0..1 */
    double test_loss;                /* NAN: not recorded (stored jobs) */
    double seconds;                  /* training time of the epoch */
    double eval_seconds;             /* NAN: not recorded (stored jobs) */
    double samples_per_second;
    double lr;                       /* at the epoch's last step */
    struct report_mem mem;
    int n_metrics;
    struct report_metric metrics[REPORT_MAX_METRICS];
};

/* One row of the report: a rule on a network, trained by memtrain-report
 * or stored as a job. Initialise with report_row_init; the row owns `ep`
 * (report_row_add_epoch, report_row_deinit); `name` and `state` are
 * borrowed and must outlive the row's printing. */
struct report_row {
    uint64_t job_id;                 /* 0: not a stored job (empty in the CSV) */
    const char *name;                /* the job's name; NULL: none */
    char label[48];                  /* "bp", "bp+bw+ba", "tinyfoa", ... */
    char rule[32];                   /* the engine's rule: "bp" for bp+bw+ba */
    int table;                       /* memtrain-report's table, 1 or 2; 0: none */
    char network[96];                /* "784-2000x4-10 relu" */
    char optimizer[96];              /* "adam lr 0.0001, constant"; "": unknown */
    const char *state;               /* "ok", "failed" (memtrain-report), a job state (mtctl) */
    char message[MT_ERR_LEN];        /* why it failed or stopped; "" */
    int epochs_planned, epochs_done;
    struct report_epoch *ep;         /* (n_epochs): the epochs in order; owned */
    int n_epochs;
    struct report_mem mem;           /* the summary's memory figures (the last epoch's) */
    struct papermem pm;              /* the paper's counting of this run */
    const struct papermem_paper *paper;  /* the paper's row when this run is its setting */
    double paper_error_pct;          /* with paper: its MNIST or CIFAR-10 error */
    uint64_t bp_kept_activations;    /* BP's kept activations on this network; 0 unknown */
    long steps_per_epoch;            /* 0: unknown */
};

void report_row_init(struct report_row *r);
/* Frees the epochs; the row can be initialised again. */
void report_row_deinit(struct report_row *r);
/* Append a copy of *e; -1 when out of memory (the row is unchanged). */
int report_row_add_epoch(struct report_row *r, const struct report_epoch *e);

/* ------------------------------------------------------------- figures */

/* 100 (1 - test accuracy). */
double report_error_pct(const struct report_epoch *e);
/* Index (0-based) of the epoch with the highest test accuracy, the first
 * of equals; -1 without epochs. */
int report_best_epoch(const struct report_row *r);
/* Mean training seconds per epoch; NAN without epochs. */
double report_mean_seconds(const struct report_row *r);
/* The most epochs any of rows[0..n) has. */
int report_max_epochs(const struct report_row *const *rows, size_t n);

/* ---------------------------------------------------------------- cells */

/* MB (10^6 bytes, the paper's unit) with as many decimals as a small
 * figure needs: "%.1f" from 100, "%.2f" from 1, else "%.3f". Returns buf. */
const char *report_mb(char *buf, size_t len, double bytes);
/* "a / b / c" in MB, two decimals each. Returns buf. */
const char *report_mb3(char *buf, size_t len, double a, double b, double c);
/* The test error after epoch k + 1 as "%.2f"; "" when the row has fewer
 * epochs. Returns buf. */
const char *report_curve_cell(char *buf, size_t len, const struct report_row *r, int k);

/* ------------------------------------------------------------- markdown */

/* One markdown row: each cell written as " cell |" (" |" when empty), a
 * NULL cell as "-"; '|' in a cell becomes '/' and a line break a space, so
 * the line has ncols + 1 bars whatever the cells hold. */
void report_md_row(FILE *out, int ncols, const char *const *cells);
/* The header row and the "|---|" rule under it. */
void report_md_head(FILE *out, int ncols, const char *const *head);
/* A whole table: the header, then nrows rows of ncols cells (row-major in
 * `cells`). */
void report_md_table(FILE *out, int ncols, const char *const *head,
                     const char *const *cells, size_t nrows);

/* ------------------------------------------------------------------ CSV */

/* The header rows of the two CSVs, without the newline: the schema. */
extern const char report_csv_summary_head[];
extern const char report_csv_epochs_head[];

/* One row per report row: errors, the paper's counting and figures, the
 * arena's peaks, seconds per epoch (report_csv_summary_head). */
void report_csv_summary(FILE *out, const struct report_row *const *rows, size_t n);
/* One row per epoch of every report row (report_csv_epochs_head). */
void report_csv_epochs(FILE *out, const struct report_row *const *rows, size_t n);

#endif
