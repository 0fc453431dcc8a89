/* main.c: memtrain-report, the reproduction report of the TinyFoA table
 * (issue 4; spec sections 7.1, 7.5, 7.7, 9, 10).
 *
 * It trains, on MNIST with the paper's network (784-2000-2000-2000-2000-10
 * ReLU, batch 100; PEPITA on 784-2000-2000-2000-10 as in the paper), the
 * table's methods (BP, BP+BW+BA, FF, PEPITA, TinyFoA) and then the other
 * rules on the same network (entries.c), each in a child process of its
 * own (runner.c), and writes:
 *   1. the TinyFoA table beside ours: error, memory under the paper's
 *      counting (papermem.h) beside the paper's figures, and the arena's
 *      measured peaks (per phase, kept activations, total);
 *   2. the other rules: error, kept activations and their ratio to BP's,
 *      peak total, seconds per epoch;
 *   3. the test-error curve of every run;
 * as markdown (stdout or --out; markdown.c) and CSV (--csv, one row per
 * rule per epoch, plus a summary CSV: daemon/report's schema, the one
 * `mtctl report --csv` writes).
 *
 * Figures, not pass/fail: the exit status says whether the report was
 * written, not whether a target was met. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "memtrain-report.h"

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* What the writers of the output files print. */
struct report_out {
    const struct opts *o;
    const struct mt_data_shape *shape;
    int argc;
    char **argv;
    const struct result *res;
    const struct report_row *rows[NENTRIES];   /* the rows run, in order */
    size_t n;
};

static void write_md(FILE *f, const struct report_out *out)
{
    md_write(f, out->o, out->shape, out->argc, out->argv, out->res);
}

static void write_epochs(FILE *f, const struct report_out *out)
{
    report_csv_epochs(f, out->rows, out->n);
}

static void write_summary(FILE *f, const struct report_out *out)
{
    report_csv_summary(f, out->rows, out->n);
}

/* "x.csv" -> "x-summary.csv"; "x" -> "x-summary.csv". */
static void summary_name(char *out, size_t len, const char *csv)
{
    size_t n = strlen(csv);
    if (n >= 4 && strcmp(csv + n - 4, ".csv") == 0)
        n -= 4;
    snprintf(out, len, "%.*s-summary.csv", (int)n, csv);
}

static int write_file(const char *path, void (*fn)(FILE *, const struct report_out *),
                      const struct report_out *out)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "memtrain-report: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fn(f, out);
    if (ferror(f) | fclose(f)) {
        fprintf(stderr, "memtrain-report: writing %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(stderr, "memtrain-report: wrote %s\n", path);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    int rc = opts_parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;

    /* Find the data once, so a missing MNIST is one message, not 14 rows. */
    struct mt_spec probe;
    struct mt_data_shape shape;
    struct mt_err err = {0};
    entry_spec(&probe, &entries[0], &o, 1);
    if (data_probe(&probe.data, &shape, &err)) {
        fprintf(stderr, "memtrain-report: %s\n", err.msg);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct result *res = calloc(NENTRIES, sizeof *res);
    if (!res) {
        fprintf(stderr, "memtrain-report: out of memory\n");
        return 1;
    }
    double t0 = now_s();
    for (int i = 0; i < NENTRIES; i++) {
        if (o.selected[i])
            run_entry(i, &o, &res[i]);
        else
            run_skip(i, &o, &res[i]);   /* still described, for the notes */
    }
    fprintf(stderr, "memtrain-report: all runs done in %.0f s\n", now_s() - t0);

    struct report_out out = {&o, &shape, argc, argv, res, {NULL}, 0};
    for (int i = 0; i < NENTRIES; i++)
        if (res[i].status != RUN_SKIPPED)
            out.rows[out.n++] = &res[i].row;
    rc = 0;
    if (o.out) {
        if (write_file(o.out, write_md, &out))
            rc = 1;
    } else {
        write_md(stdout, &out);
        if (fflush(stdout))
            rc = 1;
    }
    if (o.csv) {
        char sum[MT_PATH_LEN + 16];
        if (o.summary_csv)
            snprintf(sum, sizeof sum, "%s", o.summary_csv);
        else
            summary_name(sum, sizeof sum, o.csv);
        if (write_file(o.csv, write_epochs, &out) || write_file(sum, write_summary, &out))
            rc = 1;
    }
    for (int i = 0; i < NENTRIES; i++)
        report_row_deinit(&res[i].row);
    free(res);
    return rc ? rc : interrupted ? 130 : 0;
}
