/* memtrain-report.h: what the files of memtrain-report share. The program
 * trains the TinyFoA table's setting once per row (entries.c: the rows and
 * their specs), each run in a child process (runner.c), and prints the
 * rows as its markdown report (markdown.c) and as the report table's CSVs
 * (daemon/report, the schema `mtctl report --csv` writes too); options.c
 * reads the command line, main.c ties them together. */
#ifndef MT_MEMTRAIN_REPORT_H
#define MT_MEMTRAIN_REPORT_H

#include <signal.h>
#include <stdio.h>

#include "reporttable.h"
#include "spec.h"

#define MAX_EPOCHS 1000
#define PAPER_WIDTH 2000
#define NENTRIES 14

/* ---------------------------------------------------------- options.c */

struct opts {
    int epochs;
    int rule_epochs[NENTRIES];        /* -1 = --epochs */
    int selected[NENTRIES];
    long train_limit, test_limit;
    int threads;
    int width;                        /* hidden width; the paper's is 2000 */
    unsigned long long seed;
    const char *data_dir;
    const char *out, *csv, *summary_csv;
    int no_fork;
};

/* Defaults, then the command line into *o. 0 to go on, -1 after --help
 * (exit 0), 2 on bad usage (the message is on stderr). */
int opts_parse(int argc, char **argv, struct opts *o);

/* ---------------------------------------------------------- entries.c */

/* One row of the report: a rule on a network. */
struct entry {
    const char *label;        /* as --rules names it */
    const char *rule;         /* the engine's rule */
    int table;                /* 1: the TinyFoA table; 2: the other rules */
    int binary;               /* rule.binary */
    int hidden;               /* hidden layers of 2000 */
    enum mt_act act;
    enum mt_normkind norm;
    int paper_optim;          /* Adam lr 1e-4 constant (spec 7.1); else the rule's defaults */
    int per_layer;            /* epochs count per hidden layer (TinyFoA's stages, spec 7.2) */
};

/* The rows, in the report's order (NENTRIES of them). */
extern const struct entry entries[NENTRIES];

/* The index of a row's label ("bpbin" = "bp+bw+ba"); -1 when unknown. */
int entry_index(const char *label);
/* The spec of a row: MNIST, 784-WxH-10 (W = o->width), batch 100, seed,
 * threads and data limits from o; the paper's optimizer (spec 7.1) when
 * the row uses it. */
void entry_spec(struct mt_spec *s, const struct entry *e, const struct opts *o, int epochs);
/* "adam lr 0.0001, constant": a resolved spec's optimizer and schedule. */
void entry_describe_optim(char *buf, size_t len, const struct mt_spec *s);
/* The row's identity in its report row: label, rule, table, network (from
 * spec s) and, for the TinyFoA table, the paper's row and MNIST error. */
void entry_row(const struct entry *e, const struct mt_spec *s, struct report_row *row);

/* ----------------------------------------------------------- runner.c */

enum run_status { RUN_SKIPPED, RUN_OK, RUN_FAILED };

/* A row's run: the spec it trained and its report row (label, network,
 * optimizer, epochs, memory, the paper's counting, BP's kept activations;
 * state "ok" or "failed" with the message). */
struct result {
    enum run_status status;
    struct mt_spec spec;              /* as built; resolved when `resolved` */
    int resolved;
    struct report_row row;            /* owns its epochs: report_row_deinit */
};

/* Set by SIGINT/SIGTERM: the run in progress stops, later ones are not run. */
extern volatile sig_atomic_t interrupted;

/* Monotonic seconds. */
double now_s(void);

/* Train row i (in a child process unless o->no_fork) into *r, which must
 * be zeroed. Progress and failures go to stderr; a failure is recorded in
 * r, never returned. */
void run_entry(int i, const struct opts *o, struct result *r);
/* Row i not run: its spec and the paper's counting only (the notes cite
 * TinyFoA's). */
void run_skip(int i, const struct opts *o, struct result *r);

/* --------------------------------------------------------- markdown.c */

/* The whole markdown report: header (the command line, data, network),
 * the TinyFoA table, the other rules, the curve, the notes. */
void md_write(FILE *f, const struct opts *o, const struct mt_data_shape *shape, int argc,
              char **argv, const struct result *res);

#endif
