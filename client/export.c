/* export.c: getting a job's results out: `metrics` (epoch history as a
 * table, CSV or JSON) and `ckpt ls` / `ckpt export` (a checkpoint's weights
 * as a NumPy .npz, npz.c). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "mtctl.h"
#include "npz.h"

/* The .npz member holding the model's description (docs/export.md). */
#define EXPORT_DESCRIPTION "memtrain.json"

/* ----------------------------------------------------------------- metrics */

static const char metrics_help[] =
    "Usage: mtctl metrics [OPTIONS] ID\n"
    "\n"
    "Print job ID's history: one row per finished epoch with its loss, training\n"
    "and test accuracy, seconds, samples/s, learning rate, the arena's peak and\n"
    "the worker's peak RSS, then one column per figure the learning rule reports\n"
    "(ASA's learning indicator of layer 2 is li.2; empty where an epoch has none).\n"
    "\n"
    "Options:\n"
    "      --csv              CSV with a header row, one table: the epochs, or\n"
    "                         the steps with --steps, or the memory samples with\n"
    "                         --memory; all memory figures in bytes\n"
    "  -o json, --json        one JSON document with \"epochs\" (and \"steps\",\n"
    "                         \"memory\" when asked for)\n"
    "      --steps            also every stored training step (step, epoch, loss)\n"
    "      --memory           also every stored memory sample: the bytes in use\n"
    "                         at the sample (taken between steps), the peaks so\n"
    "                         far, RSS, limit, and the peaks per category of the\n"
    "                         steps since the sample before (JSON \"interval_peak\",\n"
    "                         \"interval_steps\"; CSV interval_*)\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n";

/* The rule metrics' names over all epochs, in order of first appearance:
 * the extra columns of the epoch tables. Names point into the response. */
#define MAX_METRIC_COLS 64
struct metric_cols {
    const char *name[MAX_METRIC_COLS];
    int n;
};

static const char *metric_name(const Memtrain__RuleMetric *m)
{
    return m && m->name ? m->name : "";
}

static void metric_cols_of(struct metric_cols *mc, const Memtrain__MetricsResponse *mr)
{
    mc->n = 0;
    for (size_t i = 0; i < mr->n_epochs; i++)
        for (size_t k = 0; k < mr->epochs[i]->n_rule_metrics; k++) {
            const char *name = metric_name(mr->epochs[i]->rule_metrics[k]);
            int seen = 0;
            for (int c = 0; c < mc->n && !seen; c++)
                seen = strcmp(mc->name[c], name) == 0;
            if (!seen && mc->n < MAX_METRIC_COLS)
                mc->name[mc->n++] = name;
        }
}

/* Epoch e's metric called `name`, or NULL. */
static const Memtrain__RuleMetric *metric_find(const Memtrain__EpochProgress *e, const char *name)
{
    for (size_t k = 0; k < e->n_rule_metrics; k++)
        if (e->rule_metrics[k] && strcmp(metric_name(e->rule_metrics[k]), name) == 0)
            return e->rule_metrics[k];
    return NULL;
}

static void csv_epochs(const Memtrain__MetricsResponse *mr)
{
    struct metric_cols mc;
    metric_cols_of(&mc, mr);
    printf("epoch,loss,train_accuracy,test_accuracy,seconds,samples_per_second,lr,params,grads,"
           "optimizer,activations,workspace,data,peak_total,phase_peak_forward,"
           "phase_peak_gradient,phase_peak_update,rss_peak_bytes");
    for (int c = 0; c < mc.n; c++) {
        putchar(',');
        csv_field(stdout, mc.name[c]);
    }
    putchar('\n');
    for (size_t i = 0; i < mr->n_epochs; i++) {
        const Memtrain__EpochProgress *e = mr->epochs[i];
        static const Memtrain__MemoryStats zero = MEMTRAIN__MEMORY_STATS__INIT;
        const Memtrain__MemoryStats *m = e->memory ? e->memory : &zero;
        printf("%u,%.10g,%.10g,%.10g,%.6g,%.6g,%.7g,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,"
               "%llu,%llu", e->epoch, e->loss, e->train_accuracy, e->test_accuracy, e->seconds,
               e->samples_per_second, (double)e->lr, (unsigned long long)m->params,
               (unsigned long long)m->grads, (unsigned long long)m->optimizer,
               (unsigned long long)m->activations, (unsigned long long)m->workspace,
               (unsigned long long)m->data, (unsigned long long)m->peak_total,
               (unsigned long long)m->phase_peak_forward, (unsigned long long)m->phase_peak_gradient,
               (unsigned long long)m->phase_peak_update, (unsigned long long)m->rss_peak_bytes);
        for (int c = 0; c < mc.n; c++) {   /* empty where the epoch lacks it */
            const Memtrain__RuleMetric *rm = metric_find(e, mc.name[c]);
            if (rm)
                printf(",%.10g", rm->value);
            else
                putchar(',');
        }
        putchar('\n');
    }
}

static void csv_steps(const Memtrain__MetricsResponse *mr)
{
    printf("step,epoch,loss\n");
    for (size_t i = 0; i < mr->n_steps; i++)
        printf("%llu,%u,%.10g\n", (unsigned long long)mr->steps[i]->step, mr->steps[i]->epoch,
               mr->steps[i]->loss);
}

/* The memory samples: the bytes in use at the sample (between two steps),
 * the peaks so far, the kernel's figures, then the interval's peaks (the
 * steps since the sample before) and its steps, empty when the sample has
 * none (an older worker's). */
static void csv_memory(const Memtrain__MetricsResponse *mr)
{
    printf("time,params,grads,optimizer,activations,workspace,data,total,peak_total,rss_bytes,"
           "hwm_bytes,limit,interval_params,interval_grads,interval_optimizer,"
           "interval_activations,interval_workspace,interval_data,interval_total,"
           "interval_phase_peak_forward,interval_phase_peak_gradient,"
           "interval_phase_peak_update,interval_steps\n");
    for (size_t i = 0; i < mr->n_memory; i++) {
        const Memtrain__MemorySample *s = mr->memory[i];
        static const Memtrain__MemoryStats zero = MEMTRAIN__MEMORY_STATS__INIT;
        const Memtrain__MemoryStats *c = s->current ? s->current : &zero;
        const Memtrain__MemoryStats *p = s->peak ? s->peak : &zero;
        printf("%lld,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu", (long long)s->time,
               (unsigned long long)c->params, (unsigned long long)c->grads,
               (unsigned long long)c->optimizer, (unsigned long long)c->activations,
               (unsigned long long)c->workspace, (unsigned long long)c->data,
               (unsigned long long)c->peak_total, (unsigned long long)p->peak_total,
               (unsigned long long)s->rss_bytes, (unsigned long long)s->hwm_bytes,
               (unsigned long long)s->limit);
        for (size_t k = 0; k < FMT_MEM_ROWS; k++) {
            if (s->interval_peak)
                printf(",%llu", (unsigned long long)fmt_mem_at(s->interval_peak, k));
            else
                putchar(',');
        }
        if (s->interval_peak)
            printf(",%llu\n", (unsigned long long)s->interval_steps);
        else
            printf(",\n");
    }
}

/* The interval's peak of the categories other than activations and
 * workspace (params, grads, optimizer, data: what every step holds). */
static uint64_t interval_rest(const Memtrain__MemoryStats *m)
{
    return m->params + m->grads + m->optimizer + m->data;
}

static int text_memory(const Memtrain__MetricsResponse *mr)
{
    static const char *const mhead[] = {"TIME", "CURRENT", "STEPS", "ACTIVATIONS", "WORKSPACE",
                                        "REST", "INTERVAL", "PEAK", "RSS", "LIMIT"};
    struct table t;
    printf("\nmemory samples: CURRENT is the total in use at the sample (between steps);\n"
           "ACTIVATIONS, WORKSPACE, REST (params, grads, optimizer, data) and INTERVAL\n"
           "(the total) are the peaks of the STEPS steps since the sample before\n");
    table_init(&t, 10, mhead, ".rrrrrrrrr");
    for (size_t i = 0; i < mr->n_memory; i++) {
        const Memtrain__MemorySample *s = mr->memory[i];
        const Memtrain__MemoryStats *iv = s->interval_peak;
        char tm[32], cur[32], st[24], act[32], ws[32], rest[32], itot[32], pk[32], rss[32],
            lim[32];
        snprintf(st, sizeof st, "%llu", (unsigned long long)s->interval_steps);
        const char *cells[] = {
            fmt_time(tm, sizeof tm, s->time),
            s->current ? fmt_bytes(cur, sizeof cur, s->current->peak_total) : "-",
            iv ? st : "-",
            iv ? fmt_bytes(act, sizeof act, iv->activations) : "-",
            iv ? fmt_bytes(ws, sizeof ws, iv->workspace) : "-",
            iv ? fmt_bytes(rest, sizeof rest, interval_rest(iv)) : "-",
            iv ? fmt_bytes(itot, sizeof itot, iv->peak_total) : "-",
            s->peak ? fmt_bytes(pk, sizeof pk, s->peak->peak_total) : "-",
            fmt_bytes(rss, sizeof rss, s->rss_bytes),
            s->limit ? fmt_bytes(lim, sizeof lim, s->limit) : "none",
        };
        table_add(&t, cells);
    }
    int rc = table_print(&t, stdout);
    table_free(&t);
    return rc;
}

static int text_metrics(const Memtrain__MetricsResponse *mr, int steps, int memory)
{
    enum { NBASE = 9 };
    static const char *const base[NBASE] = {"EPOCH", "LOSS", "TRAIN", "TEST", "SECONDS",
                                            "SAMPLES/S", "LR", "PEAK", "RSS-PEAK"};
    struct metric_cols mc;
    metric_cols_of(&mc, mr);
    const char *ehead[NBASE + MAX_METRIC_COLS];
    char right[NBASE + MAX_METRIC_COLS + 1];
    for (int c = 0; c < NBASE + mc.n; c++) {
        ehead[c] = c < NBASE ? base[c] : mc.name[c - NBASE];
        right[c] = 'r';
    }
    right[NBASE + mc.n] = '\0';
    struct table t;
    int rc = 0;
    table_init(&t, NBASE + mc.n, ehead, right);
    for (size_t i = 0; i < mr->n_epochs; i++) {
        const Memtrain__EpochProgress *e = mr->epochs[i];
        char ep[16], loss[32], tr[16], te[16], sec[32], sps[32], lr[32], pk[32], rss[32];
        snprintf(ep, sizeof ep, "%u", e->epoch);
        snprintf(loss, sizeof loss, "%.4f", e->loss);
        snprintf(sec, sizeof sec, "%.1f", e->seconds);
        snprintf(sps, sizeof sps, "%.0f", e->samples_per_second);
        fmt_lr(lr, sizeof lr, e->lr);
        char val[MAX_METRIC_COLS][32];
        const char *cells[NBASE + MAX_METRIC_COLS] = {
            ep, loss, fmt_percent(tr, sizeof tr, e->train_accuracy),
            fmt_percent(te, sizeof te, e->test_accuracy), sec, sps, lr,
            e->memory ? fmt_bytes(pk, sizeof pk, e->memory->peak_total) : "-",
            e->memory ? fmt_bytes(rss, sizeof rss, e->memory->rss_peak_bytes) : "-",
        };
        for (int c = 0; c < mc.n; c++) {
            const Memtrain__RuleMetric *rm = metric_find(e, mc.name[c]);
            if (rm)
                snprintf(val[c], sizeof val[c], "%.4g", rm->value);
            cells[NBASE + c] = rm ? val[c] : NULL;   /* "-" */
        }
        table_add(&t, cells);
    }
    rc |= table_print(&t, stdout);
    table_free(&t);
    if (steps) {
        static const char *const shead[] = {"STEP", "EPOCH", "LOSS"};
        printf("\n");
        table_init(&t, 3, shead, "rrr");
        for (size_t i = 0; i < mr->n_steps; i++) {
            char st[24], ep[16], loss[32];
            snprintf(st, sizeof st, "%llu", (unsigned long long)mr->steps[i]->step);
            snprintf(ep, sizeof ep, "%u", mr->steps[i]->epoch);
            snprintf(loss, sizeof loss, "%.4f", mr->steps[i]->loss);
            const char *cells[] = {st, ep, loss};
            table_add(&t, cells);
        }
        rc |= table_print(&t, stdout);
        table_free(&t);
    }
    if (memory)
        rc |= text_memory(mr);
    return rc;
}

int cmd_metrics(struct mtctl *c, int argc, char **argv)
{
    enum { OPT_CSV = 0x2001, OPT_STEPS, OPT_MEMORY };
    static const struct option longopts[] = {
        {"csv", no_argument, NULL, OPT_CSV},
        {"steps", no_argument, NULL, OPT_STEPS},
        {"memory", no_argument, NULL, OPT_MEMORY},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int opt, rc, csv = 0, steps = 0, memory = 0;
    uint64_t id;
    mtctl_getopt_reset(c, argv, "metrics");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_CSV: csv = 1; break;
        case OPT_STEPS: steps = 1; break;
        case OPT_MEMORY: memory = 1; break;
        MTCTL_OPT_DEFAULT(c, opt, metrics_help)
        }
    }
    if (argc - optind != 1)
        return mtctl_usage_error(c, "expected one job ID");
    if ((rc = mtctl_parse_id(c, argv[optind], &id)))
        return rc;
    if (c->output == MTCTL_OUT_CSV)
        csv = 1;
    if (csv && c->json)
        return mtctl_usage_error(c, "--csv and --json exclude each other");
    if (csv && steps && memory)
        return mtctl_usage_error(c, "--csv prints one table: choose --steps or --memory");

    Memtrain__MetricsRequest mq = MEMTRAIN__METRICS_REQUEST__INIT;
    mq.job_id = id;
    mq.steps = steps;
    mq.memory = memory;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_METRICS;
    req.metrics = &mq;
    Memtrain__Response *resp;
    struct mt_err err = {0};
    if (conn_call(c, &req, MEMTRAIN__RESPONSE__BODY_METRICS, &resp, &err)) {
        conn_job_err(&err, id);
        return mtctl_fail(c, &err);
    }
    const Memtrain__MetricsResponse *mr = resp->metrics;
    rc = MTCTL_EXIT_OK;
    if (c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_u64(&j, "job_id", id);
        json_arr(&j, "epochs");
        for (size_t i = 0; i < mr->n_epochs; i++)
            json_epoch(&j, NULL, mr->epochs[i]);
        json_arr_end(&j);
        if (steps) {
            json_arr(&j, "steps");
            for (size_t i = 0; i < mr->n_steps; i++)
                json_step(&j, NULL, mr->steps[i]);
            json_arr_end(&j);
        }
        if (memory) {
            json_arr(&j, "memory");
            for (size_t i = 0; i < mr->n_memory; i++)
                json_memory_sample(&j, NULL, mr->memory[i]);
            json_arr_end(&j);
        }
        json_end(&j);
    } else if (csv) {
        if (steps)
            csv_steps(mr);
        else if (memory)
            csv_memory(mr);
        else
            csv_epochs(mr);
    } else if (text_metrics(mr, steps, memory)) {
        mt_err_set(&err, MT_E_NOMEM, "out of memory formatting the table");
        rc = mtctl_fail(c, &err);
    }
    memtrain__response__free_unpacked(resp, NULL);
    return rc;
}

/* -------------------------------------------------------------------- ckpt */

static const char ckpt_help[] =
    "Usage: mtctl ckpt ls [OPTIONS] ID\n"
    "       mtctl ckpt export [OPTIONS] ID -O FILE.npz\n"
    "       mtctl ckpt rm [OPTIONS] ID [EPOCH...]\n"
    "\n"
    "rm removes checkpoints (`mtctl ckpt rm --help`).\n"
    "\n"
    "ls lists job ID's checkpoints, oldest first: EPOCH, SIZE, CREATED.\n"
    "\n"
    "export fetches a checkpoint and writes its weights as a NumPy .npz file:\n"
    "one float32 array per tensor, named W1, b1, W2, b2, ... in layer order, W_l\n"
    "with shape (n_l, n_{l-1}) (numpy.load(FILE)['W1']), and memtrain.json, the\n"
    "model's description (share/memtrain/memtrain_load.py builds a PyTorch module\n"
    "or a NumPy forward from the file; docs/export.md). Tensors inference does\n"
    "not read (ff's output layer) are left out. The file is written to\n"
    "FILE.tmp and renamed, so FILE is whole or untouched. An .npz that would pass\n"
    "4 GiB is refused (zip64 is not written). It names the epoch it wrote; when\n"
    "that is older than the last epoch of a COMPLETED job (its last checkpoint\n"
    "could not be stored, e.g. on a full disk: `mtctl show` says why), it warns on\n"
    "stderr and still exits 0 (the JSON has \"job_epochs\" and \"warning\").\n"
    "\n"
    "Options of export:\n"
    "  -O, --out FILE         the .npz to write (required; -o is the output\n"
    "                         format, as for every command)\n"
    "  -e, --epoch N          the checkpoint written after epoch N (default: the\n"
    "                         latest)\n"
    "      --optimizer        also the optimizer's state tensors (adam.m, adam.v,\n"
    "                         momentum: flat over all parameters)\n"
    "\n"
    "Options of both:\n"
    "  -o json, --json        one JSON document: (ls) with \"checkpoints\", (export)\n"
    "                         describing the written file\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n";

static int ckpt_ls(struct mtctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {MTCTL_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    int opt, rc;
    uint64_t id;
    mtctl_getopt_reset(c, argv, "ckpt ls");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (opt) {
        MTCTL_OPT_DEFAULT(c, opt, ckpt_help)
        }
    }
    if (argc - optind != 1)
        return mtctl_usage_error(c, "expected one job ID");
    if ((rc = mtctl_parse_id(c, argv[optind], &id)))
        return rc;
    Memtrain__CheckpointsRequest cq = MEMTRAIN__CHECKPOINTS_REQUEST__INIT;
    cq.job_id = id;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_CHECKPOINTS;
    req.checkpoints = &cq;
    Memtrain__Response *resp;
    struct mt_err err = {0};
    if (conn_call(c, &req, MEMTRAIN__RESPONSE__BODY_CHECKPOINTS, &resp, &err)) {
        conn_job_err(&err, id);
        return mtctl_fail(c, &err);
    }
    const Memtrain__CheckpointsResponse *cr = resp->checkpoints;
    if (c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_u64(&j, "job_id", id);
        json_arr(&j, "checkpoints");
        for (size_t i = 0; i < cr->n_checkpoints; i++)
            json_checkpoint(&j, NULL, cr->checkpoints[i]);
        json_end(&j);
    } else {
        int paths = 0;
        for (size_t i = 0; i < cr->n_checkpoints; i++)
            paths |= cr->checkpoints[i]->path[0] != '\0';
        static const char *const head[] = {"EPOCH", "SIZE", "CREATED", "PATH"};
        struct table t;
        table_init(&t, paths ? 4 : 3, head, "rr..");
        for (size_t i = 0; i < cr->n_checkpoints; i++) {
            const Memtrain__Checkpoint *ck = cr->checkpoints[i];
            char ep[16], size[32], tm[32];
            snprintf(ep, sizeof ep, "%u", ck->epoch);
            const char *cells[] = {ep, fmt_bytes(size, sizeof size, ck->bytes),
                                   fmt_time(tm, sizeof tm, ck->created_at), ck->path};
            table_add(&t, cells);
        }
        table_print(&t, stdout);
        table_free(&t);
    }
    memtrain__response__free_unpacked(resp, NULL);
    return MTCTL_EXIT_OK;
}

/* Fetch one checkpoint's CheckpointData bytes (a stream of chunks) into a
 * malloc'd *blob. */
static int fetch_checkpoint(struct mtctl *c, uint64_t id, uint32_t epoch, uint8_t **blob,
                            size_t *len, struct mt_err *err)
{
    Memtrain__CheckpointsRequest cq = MEMTRAIN__CHECKPOINTS_REQUEST__INIT;
    cq.job_id = id;
    cq.fetch = 1;
    cq.epoch = epoch;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_CHECKPOINTS;
    req.checkpoints = &cq;
    uint8_t *buf = NULL;
    uint64_t total = 0, got = 0;
    int rc = conn_send(c, &req, err), started = 0;
    while (!rc) {
        Memtrain__Response *r;
        if ((rc = conn_recv(c, &r, err)))
            break;
        const Memtrain__CheckpointChunk *ch = r->body_case == MEMTRAIN__RESPONSE__BODY_CHUNK ? r->chunk : NULL;
        int end = r->end;
        if (!ch) {
            rc = mt_err_set(err, MT_E_PROTO, "memtraind answered a checkpoint fetch without data");
        } else if (!started) {
            total = ch->total;
            started = 1;
            if (total > SIZE_MAX / 2 || !(buf = malloc(total ? total : 1)))
                rc = mt_err_set(err, MT_E_NOMEM, "no memory for a %llu-byte checkpoint",
                                (unsigned long long)total);
        }
        if (!rc && (ch->total != total || ch->offset != got || ch->data.len > total - got))
            rc = mt_err_set(err, MT_E_PROTO, "checkpoint chunk at %llu (+%zu of %llu) does not "
                            "follow the %llu bytes received", (unsigned long long)ch->offset,
                            ch->data.len, (unsigned long long)ch->total, (unsigned long long)got);
        if (!rc) {
            if (ch->data.len)
                memcpy(buf + got, ch->data.data, ch->data.len);
            got += ch->data.len;
            if (end && got != total)
                rc = mt_err_set(err, MT_E_PROTO, "checkpoint ended after %llu of %llu bytes",
                                (unsigned long long)got, (unsigned long long)total);
        }
        memtrain__response__free_unpacked(r, NULL);
        if (end)
            break;
    }
    if (rc) {
        free(buf);
        return rc;
    }
    *blob = buf;
    *len = (size_t)total;
    return 0;
}

/* Whether the checkpoint marks tensor `name` as one inference never reads. */
static int unused_tensor(const Memtrain__CheckpointData *cd, const char *name)
{
    for (size_t k = 0; k < cd->n_unused; k++)
        if (strcmp(cd->unused[k], name) == 0)
            return 1;
    return 0;
}

/* One .npz member per tensor but the unused ones; shapes and data point into `cd`. */
static int add_tensors(struct npz_entry *out, size_t *n, const Memtrain__CheckpointData *cd,
                       Memtrain__Tensor **t, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (unused_tensor(cd, t[i]->name))
            continue;
        out[*n].name = t[i]->name;
        out[*n].shape = t[i]->shape;
        out[*n].ndim = t[i]->n_shape;
        out[*n].data = t[i]->data.data;
        out[*n].bytes = t[i]->data.len;
        (*n)++;
    }
    return 0;
}

/* The last epoch of a COMPLETED job, 0 for any other (or when the daemon
 * cannot say): a newest checkpoint older than that lost the last one. */
static uint32_t completed_epochs(struct mtctl *c, uint64_t id)
{
    Memtrain__Response *resp;
    struct mt_err err = {0};
    if (conn_show(c, id, &resp, &err)) {
        fprintf(stderr, "mtctl: warning: could not check that this is job %llu's last "
                "epoch: %s\n", (unsigned long long)id, err.msg);
        return 0;
    }
    uint32_t n = resp->show->job && resp->show->job->state == MEMTRAIN__JOB_STATE__COMPLETED
                 ? resp->show->job->epochs_done : 0;
    memtrain__response__free_unpacked(resp, NULL);
    return n;
}

static void export_report(struct mtctl *c, const char *path, uint64_t id,
                          const Memtrain__CheckpointData *cd, const struct npz_entry *e, size_t n,
                          uint32_t job_epochs)
{
    char warn[200] = "";
    if (job_epochs > cd->epoch) {
        snprintf(warn, sizeof warn, "job %llu completed %u epoch%s but its newest stored "
                 "checkpoint is epoch %u: the last one was not stored (see mtctl show %llu)",
                 (unsigned long long)id, job_epochs, mt_plural(job_epochs), cd->epoch,
                 (unsigned long long)id);
        fprintf(stderr, "mtctl: warning: %s\n", warn);
    }
    if (c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_u64(&j, "job_id", id);
        json_u64(&j, "epoch", cd->epoch);
        if (job_epochs)
            json_u64(&j, "job_epochs", job_epochs);
        if (warn[0])
            json_str(&j, "warning", warn);
        json_str(&j, "path", path);
        if (n && e[n - 1].raw)
            json_str(&j, "description", e[n - 1].name);
        for (size_t k = 0; k < cd->n_unused; k++) {
            if (k == 0)
                json_arr(&j, "left_out");
            json_str(&j, NULL, cd->unused[k]);
            if (k + 1 == cd->n_unused)
                json_arr_end(&j);
        }
        json_arr(&j, "arrays");
        for (size_t i = 0; i < n; i++) {
            if (e[i].raw)
                continue;
            json_obj(&j, NULL);
            json_str(&j, "name", e[i].name);
            json_arr(&j, "shape");
            for (size_t d = 0; d < e[i].ndim; d++)
                json_u64(&j, NULL, e[i].shape[d]);
            json_arr_end(&j);
            json_str(&j, "dtype", "<f4");
            json_obj_end(&j);
        }
        json_end(&j);
        return;
    }
    uint64_t bytes = 0;
    size_t arrays = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += e[i].bytes;
        arrays += !e[i].raw;
    }
    char b[32];
    printf("wrote %s: job %llu epoch %u, %zu arrays, %s\n", path, (unsigned long long)id,
           cd->epoch, arrays, fmt_bytes(b, sizeof b, bytes));
    for (size_t k = 0; k < cd->n_unused; k++)
        printf("  %-12s left out: inference does not read it\n", cd->unused[k]);
    for (size_t i = 0; i < n; i++) {
        if (e[i].raw) {
            printf("  %-12s the model's description (JSON; memtrain_load.py reads it)\n",
                   e[i].name);
            continue;
        }
        printf("  %-12s (", e[i].name);
        for (size_t d = 0; d < e[i].ndim; d++)
            printf("%s%llu", d ? ", " : "", (unsigned long long)e[i].shape[d]);
        printf("%s)\n", e[i].ndim == 1 ? "," : "");
    }
}

static int ckpt_export(struct mtctl *c, int argc, char **argv)
{
    enum { OPT_OPTIMIZER = 0x2001 };
    static const struct option longopts[] = {
        {"epoch", required_argument, NULL, 'e'},
        {"out", required_argument, NULL, 'O'},
        {"optimizer", no_argument, NULL, OPT_OPTIMIZER},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int opt, rc, optimizer = 0;
    unsigned long epoch = 0;
    const char *out = NULL;
    uint64_t id;
    char *end;
    mtctl_getopt_reset(c, argv, "ckpt export");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS "e:O:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'O':
            out = optarg;
            break;
        case 'o':  /* the output format, as everywhere; say so to the old -o FILE */
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0)
                return mtctl_usage_error(c, "-o is the output format (json or text); the .npz "
                                         "to write is -O FILE (--out FILE)");
            if ((rc = mtctl_opt(c, opt, optarg, ckpt_help)))
                return rc;
            break;
        case 'e':
            epoch = strtoul(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end || epoch == 0 || epoch > UINT32_MAX)
                return mtctl_usage_error(c, "--epoch '%s' is not an epoch number (1, 2, ...)",
                                         optarg);
            break;
        case OPT_OPTIMIZER:
            optimizer = 1;
            break;
        MTCTL_OPT_DEFAULT(c, opt, ckpt_help)
        }
    }
    if (argc - optind != 1)
        return mtctl_usage_error(c, "expected one job ID");
    if ((rc = mtctl_parse_id(c, argv[optind], &id)))
        return rc;
    if (!out || !out[0])
        return mtctl_usage_error(c, "no output file: give -O FILE.npz");

    struct mt_err err = {0};
    uint8_t *blob;
    size_t len;
    if (fetch_checkpoint(c, id, (uint32_t)epoch, &blob, &len, &err)) {
        conn_job_err(&err, id);
        return mtctl_fail(c, &err);
    }
    Memtrain__CheckpointData *cd = memtrain__checkpoint_data__unpack(NULL, len, blob);
    free(blob);
    if (!cd) {
        mt_err_set(&err, MT_E_FORMAT, "job %llu: the checkpoint (%zu bytes) is not a "
                   "CheckpointData message", (unsigned long long)id, len);
        return mtctl_fail(c, &err);
    }
    if (cd->format != 1) {
        mt_err_set(&err, MT_E_FORMAT, "job %llu: checkpoint format %u; this mtctl reads format 1",
                   (unsigned long long)id, cd->format);
        memtrain__checkpoint_data__free_unpacked(cd, NULL);
        return mtctl_fail(c, &err);
    }
    size_t cap = cd->n_weights + (optimizer ? cd->n_optimizer : 0) + 1, n = 0;
    struct npz_entry *e = calloc(cap ? cap : 1, sizeof *e);
    if (!e) {
        memtrain__checkpoint_data__free_unpacked(cd, NULL);
        mt_err_set(&err, MT_E_NOMEM, "out of memory");
        return mtctl_fail(c, &err);
    }
    add_tensors(e, &n, cd, cd->weights, cd->n_weights);
    if (optimizer)
        add_tensors(e, &n, cd, cd->optimizer, cd->n_optimizer);
    if (cd->description && cd->description[0]) {   /* "" from a worker before format 1's */
        e[n].name = EXPORT_DESCRIPTION;
        e[n].data = cd->description;
        e[n].bytes = strlen(cd->description);
        e[n].raw = 1;
        n++;
    }
    rc = npz_write(out, e, n, &err);
    if (rc) {
        rc = mtctl_fail(c, &err);
    } else {
        export_report(c, out, id, cd, e, n, epoch ? 0 : completed_epochs(c, id));
        rc = MTCTL_EXIT_OK;
    }
    free(e);
    memtrain__checkpoint_data__free_unpacked(cd, NULL);
    return rc;
}

int cmd_ckpt(struct mtctl *c, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "ls") == 0)
        return ckpt_ls(c, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "export") == 0)
        return ckpt_export(c, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "rm") == 0)
        return ckpt_rm(c, argc - 1, argv + 1);   /* tidy.c */
    mtctl_getopt_reset(c, argv, "ckpt");
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(ckpt_help, stdout);
        return MTCTL_EXIT_OK;
    }
    if (argc >= 2)
        return mtctl_usage_error(c, "unknown subcommand '%s' (expected ls, export or rm)",
                                 argv[1]);
    return mtctl_usage_error(c, "expected a subcommand: ls, export or rm");
}
