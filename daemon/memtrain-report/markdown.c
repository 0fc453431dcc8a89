/* markdown.c: memtrain-report's markdown report: a header saying how it
 * was made, the TinyFoA table beside ours, the other rules beside BP, the
 * test error after every epoch, and notes on the counting. Its columns
 * are its own (`mtctl report` prints one summary table of stored jobs);
 * the rows, their figures and the markdown rows come from daemon/report. */
#include <string.h>
#include <time.h>

#include "blas.h"
#include "memtrain-report.h"

#define MB 1e6

/* ---------------------------------------------------------------- cells */

static const char *status_cell(char *buf, size_t len, const struct result *r)
{
    if (r->status == RUN_OK)
        return "ok";
    if (r->row.n_epochs)
        snprintf(buf, len, "stopped after %d epoch(s): %s", r->row.n_epochs, r->row.message);
    else
        snprintf(buf, len, "%s", r->row.message);
    return buf;
}

static const char *epochs_cell(char *buf, size_t len, const struct entry *e,
                               const struct result *r)
{
    int n = r->row.epochs_planned;
    if (e->per_layer)
        snprintf(buf, len, "%d (%d per layer)", n, n / e->hidden);
    else
        snprintf(buf, len, "%d", n);
    return buf;
}

static void error_cells(const struct report_row *r, char *best, size_t nb, char *last, size_t nl)
{
    int b = report_best_epoch(r);
    if (b < 0) {
        snprintf(best, nb, "—");
        snprintf(last, nl, "—");
        return;
    }
    snprintf(best, nb, "%.2f %% (%d)", report_error_pct(&r->ep[b]), b + 1);
    snprintf(last, nl, "%.2f %%", report_error_pct(&r->ep[r->n_epochs - 1]));
}

/* Kept activations and peak total in MB, mean seconds per epoch; "—"
 * each before the first epoch. Each buffer holds 32 bytes. */
static void arena_cells(const struct report_row *r, char *kept, char *tot, char *sec)
{
    if (!r->mem.known) {
        snprintf(kept, 32, "—");
        snprintf(tot, 32, "—");
        snprintf(sec, 32, "—");
        return;
    }
    report_mb(kept, 32, (double)r->mem.kept_activations);
    report_mb(tot, 32, (double)r->mem.peak_total);
    snprintf(sec, 32, "%.1f", report_mean_seconds(r));
}

/* ------------------------------------------------------------- markdown */

static void md_header(FILE *f, const struct opts *o, const struct mt_data_shape *shape,
                      int argc, char **argv)
{
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime(&now));
    fprintf(f, "# memtrain reproduction report: the TinyFoA table (MNIST, fully connected "
            "4x2000)\n\n");
    fprintf(f, "Generated %s by `", date);
    for (int i = 0; i < argc; i++)
        fprintf(f, "%s%s", i ? " " : "", argv[i]);
    fprintf(f, "`.\n\n");
    fprintf(f, "- Data: MNIST, %ld training and %ld test images%s; inputs standardised over the "
            "training pixels; shuffled every epoch (the paper's loaders do not shuffle, spec "
            "7.8).\n", shape->train_n, shape->test_n,
            o->train_limit || o->test_limit ? " (limited by --train-limit/--test-limit: a quick "
            "run, not a reproduction)" : "");
    fprintf(f, "- Network: 784-%d-%d-%d-%d-10 ReLU (PEPITA: 784-%d-%d-%d-10, as in the paper; "
            "approxbp: GELU with layer-norm), batch 100, seed %llu.%s\n", o->width, o->width,
            o->width, o->width, o->width, o->width, o->width, o->seed,
            o->width != PAPER_WIDTH ? " **Not the paper's width (--width): the paper's figures "
            "do not apply; a smoke test of the report.**" : "");
    fprintf(f, "- Epochs: %d per rule unless set per rule (column `epochs`); TinyFoA trains its "
            "hidden layers one after another and gets that many per layer. The paper trains "
            "100, TinyFoA 100 per layer.\n", o->epochs);
    fprintf(f, "- OpenBLAS core %s, threads %d (0 = all cores).\n", blas_corename(), o->threads);
    fprintf(f, "- Units: MB = 10^6 bytes (the paper's unit). Error = 100 %% - test accuracy; "
            "best = the lowest over the epochs (epoch in brackets), last = after the last "
            "epoch.\n\n");
}

static void md_table1(FILE *f, const struct result *res)
{
    static const char *const head[] = {
        "method", "rule", "optimizer", "epochs", "our error best (epoch)", "our error last",
        "paper error", "ours, paper's counting: fwd / grad / update MB",
        "paper: fwd / grad / update MB", "counting",
        "arena phase peaks: fwd / grad / update MB", "kept activations MB",
        "arena peak total MB", "s/epoch", "status"};
    const int ncols = (int)(sizeof head / sizeof head[0]);
    fprintf(f, "## 1. The TinyFoA table (spec 7.7) beside ours\n\n");
    report_md_head(f, ncols, head);
    for (int i = 0; i < NENTRIES; i++) {
        const struct entry *e = &entries[i];
        const struct result *r = &res[i];
        if (e->table != 1 || r->status == RUN_SKIPPED)
            continue;
        const struct papermem_paper *row = r->row.paper;
        const struct papermem *pm = &r->row.pm;
        const struct report_mem *m = &r->row.mem;
        char rule[48], ep[48], best[48], last[32], perr[32], ours[64], theirs[64], count[48];
        char arena[64], kept[32], tot[32], sec[32], st[MT_ERR_LEN + 64];
        snprintf(rule, sizeof rule, "%s%s", e->rule, e->binary ? " binary" : "");
        error_cells(&r->row, best, sizeof best, last, sizeof last);
        snprintf(perr, sizeof perr, "%.2f %%", row->mnist_err);
        report_mb3(ours, sizeof ours, (double)pm->bytes[0], (double)pm->bytes[1],
                   (double)pm->bytes[2]);
        snprintf(theirs, sizeof theirs, "%.2f / %.2f / %.2f", row->mb[0], row->mb[1],
                 row->mb[2]);
        if (pm->scope == PAPERMEM_SLICE)
            snprintf(count, sizeof count, "Slice of W%d, M = %d", pm->layer, pm->groups);
        else if (pm->scope == PAPERMEM_MAX)
            snprintf(count, sizeof count, "Max (W%d)", pm->layer);
        else
            snprintf(count, sizeof count, "All (%d matrices)", pm->matrices);
        if (m->known) {
            snprintf(arena, sizeof arena, "%.1f / %.1f / %.1f", (double)m->phase_peak[0] / MB,
                     (double)m->phase_peak[1] / MB, (double)m->phase_peak[2] / MB);
        } else {
            snprintf(arena, sizeof arena, "—");
        }
        arena_cells(&r->row, kept, tot, sec);
        const char *cells[] = {row->method, rule, r->resolved ? r->row.optimizer : "—",
                               epochs_cell(ep, sizeof ep, e, r), best, last, perr, ours, theirs,
                               count, arena, kept, tot, sec, status_cell(st, sizeof st, r)};
        report_md_row(f, ncols, cells);
    }
    fprintf(f, "\n");
}

/* BP's kept activations against a rule's: "1/3.0", "2.00x", "0", "—". */
static const char *ratio_cell(char *buf, size_t len, uint64_t a, uint64_t bp)
{
    if (!bp)
        snprintf(buf, len, "—");
    else if (a == 0)
        snprintf(buf, len, "0");
    else if (a < bp)
        snprintf(buf, len, "1/%.1f", (double)bp / (double)a);
    else
        snprintf(buf, len, "%.2fx", (double)a / (double)bp);
    return buf;
}

static void md_table2(FILE *f, const struct result *res)
{
    static const char *const head[] = {
        "rule", "network", "optimizer", "epochs", "error best (epoch)", "error last",
        "kept activations MB", "ratio to BP's", "arena peak total MB", "s/epoch", "status"};
    const int ncols = (int)(sizeof head / sizeof head[0]);
    fprintf(f, "## 2. The other rules on the same network\n\n");
    report_md_head(f, ncols, head);
    for (int i = 0; i < NENTRIES; i++) {
        const struct entry *e = &entries[i];
        const struct result *r = &res[i];
        /* BP, the reference, heads this table too */
        if ((e->table != 2 && strcmp(e->label, "bp") != 0) || r->status == RUN_SKIPPED)
            continue;
        const struct report_mem *m = &r->row.mem;
        char ep[48], best[48], last[32], kept[32], ratio[48], tot[32], sec[32];
        char st[MT_ERR_LEN + 64];
        error_cells(&r->row, best, sizeof best, last, sizeof last);
        if (m->known)
            ratio_cell(ratio, sizeof ratio, m->kept_activations, r->row.bp_kept_activations);
        else
            snprintf(ratio, sizeof ratio, "—");
        arena_cells(&r->row, kept, tot, sec);
        const char *cells[] = {e->label, r->row.network, r->resolved ? r->row.optimizer : "—",
                               epochs_cell(ep, sizeof ep, e, r), best, last, kept, ratio, tot,
                               sec, status_cell(st, sizeof st, r)};
        report_md_row(f, ncols, cells);
    }
    fprintf(f, "\n");
}

static void md_curve(FILE *f, const struct result *res)
{
    const char *head[1 + NENTRIES];
    const struct report_row *rows[NENTRIES];
    int n = 0;
    head[0] = "epoch";
    for (int i = 0; i < NENTRIES; i++)
        if (res[i].status != RUN_SKIPPED) {
            head[1 + n] = entries[i].label;
            rows[n++] = &res[i].row;
        }
    int maxe = report_max_epochs(rows, (size_t)n);
    fprintf(f, "## 3. Test error (%%) after each epoch\n\n");
    report_md_head(f, 1 + n, head);
    for (int k = 0; k < maxe; k++) {
        char buf[1 + NENTRIES][24];
        const char *cells[1 + NENTRIES];
        snprintf(buf[0], sizeof buf[0], "%d", k + 1);
        cells[0] = buf[0];
        for (int c = 0; c < n; c++)
            cells[1 + c] = report_curve_cell(buf[1 + c], sizeof buf[1 + c], rows[c], k);
        report_md_row(f, 1 + n, cells);
    }
    if (!maxe)
        fprintf(f, "| (no epoch finished) |\n");
    fprintf(f, "\n");
}

static void md_notes(FILE *f, const struct result *res)
{
    const struct result *tf = &res[entry_index("tinyfoa")];
    fprintf(f, "## Notes\n\n");
    fprintf(f, "- *Paper's counting* (spec 7.5, daemon/engine/papermem.h): only the "
            "hidden-to-hidden 2000x2000 matrices count (the 784x2000 input matrix and the "
            "output matrix do not), 4 bytes per FP32 element, 1 bit per binary element, no "
            "optimizer state. BP and PEPITA count all of them in the forward (\"All\"), FF one "
            "layer (\"Max\"), TinyFoA one 1000x1000 block of one layer (\"Slice\", M = 2); "
            "gradient and update count gradients and the latent FP32 weights being updated. "
            "The paper's remainders of 0.00-0.06 MB are activation or bias terms we cannot "
            "reconstruct [U], so our figures are the dominant terms.\n");
    fprintf(f, "- Spec 7.5's general formula adds, for TinyFoA, the binary input and output of "
            "the layer and the logits to the forward (B(n_{l-1}+n_l)/8 + 4BC) and the binary "
            "slices to the gradient: %.3f / %.4f / %.2f MB with them. The forward then "
            "exceeds the paper's 0.50 by %.0f %%: the paper does not count those bits in its "
            "forward figure; its gradient figure 4.01 fits 4.00 plus the 0.0125 MB input "
            "slice.\n", (double)(tf->row.pm.bytes[0] + tf->row.pm.extra[0]) / MB,
            (double)(tf->row.pm.bytes[1] + tf->row.pm.extra[1]) / MB,
            (double)(tf->row.pm.bytes[2] + tf->row.pm.extra[2]) / MB,
            100.0 * ((double)(tf->row.pm.bytes[0] + tf->row.pm.extra[0]) / MB / 0.50 - 1.0));
    fprintf(f, "- *Arena figures* are what memtrain measures for the whole job: every "
            "parameter (input and output layers included), gradients, optimizer state "
            "(Adam: 8 bytes per parameter), kept activations, workspace and the dataset's "
            "bytes (47 MB for all of MNIST), each phase's peak total. Kept activations = the "
            "peak of the activations category (what is kept from the forward to the update; "
            "transient forward buffers are workspace).\n");
    fprintf(f, "- *Ratio to BP's*: BP's kept activations on the same network and batch from "
            "BP's plan (equal to its measured peak, tests/engine/test-plan.c); for approxbp "
            "that network is GELU with layer-norm, for PEPITA 3 hidden layers.\n");
    fprintf(f, "- Optimizers: BP, BP+BW+BA, TinyFoA and the rules compared with BP (ckpt, asa, "
            "approx8, approx4, approxbp) use Adam lr 1e-4 constant (spec 7.1); FF, PEPITA, fa, "
            "dfa, memdfa and mezo their rule's defaults (spec 7.9), shown in the optimizer "
            "column.\n");
    fprintf(f, "- s/epoch is training time only (the evaluation after each epoch excluded), "
            "the mean over the epochs run.\n\n");
}

void md_write(FILE *f, const struct opts *o, const struct mt_data_shape *shape, int argc,
              char **argv, const struct result *res)
{
    md_header(f, o, shape, argc, argv);
    md_table1(f, res);
    md_table2(f, res);
    md_curve(f, res);
    md_notes(f, res);
}
