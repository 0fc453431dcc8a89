/* tidy.c: the commands that keep the store tidy: rm, prune, ckpt rm (from
 * cmd_ckpt) and df. The daemon removes and measures; this file asks and
 * prints. */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "memtrain/age.h"
#include "mtctl.h"

/* ------------------------------------------------------ what was removed */

static void json_tidy(const Memtrain__TidyResponse *t)
{
    struct json j;
    json_begin(&j, stdout);
    json_bool(&j, "dry_run", t->dry_run);
    json_arr(&j, "jobs");
    for (size_t i = 0; i < t->n_jobs; i++) {
        const Memtrain__TidyJob *x = t->jobs[i];
        json_obj(&j, NULL);
        json_u64(&j, "job_id", x->job_id);
        json_str(&j, "name", x->name);
        json_u64(&j, "owner_uid", x->owner_uid);
        json_str(&j, "state", fmt_state(x->state));
        json_bool(&j, "job_removed", x->job_removed);
        json_arr(&j, "checkpoint_epochs");
        for (size_t k = 0; k < x->n_checkpoint_epochs; k++)
            json_u64(&j, NULL, x->checkpoint_epochs[k]);
        json_arr_end(&j);
        json_u64(&j, "bytes", x->bytes);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_u64(&j, "bytes_removed", t->bytes_removed);
    json_u64(&j, "store_bytes_before", t->store_bytes_before);
    json_u64(&j, "store_bytes_after", t->store_bytes_after);
    json_u64(&j, "bytes_freed", t->bytes_freed);
    json_u64(&j, "file_bytes_before", t->file_bytes_before);
    json_u64(&j, "file_bytes_after", t->file_bytes_after);
    json_end(&j);
}

/* "1, 2, 5" into buf. */
static const char *epoch_list(char *buf, size_t len, const Memtrain__TidyJob *x)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < x->n_checkpoint_epochs && n < len; k++)
        n += (size_t)snprintf(buf + n, len - n, "%s%u", k ? ", " : "", x->checkpoint_epochs[k]);
    return buf;
}

static void print_tidy(const Memtrain__TidyResponse *t, const char *nothing)
{
    char a[32], b[32], c[32], ep[256];
    const char *verb = t->dry_run ? "would remove" : "removed";
    for (size_t i = 0; i < t->n_jobs; i++) {
        const Memtrain__TidyJob *x = t->jobs[i];
        if (x->job_removed)
            printf("%s job %llu (%s, %s): %s stored\n", verb, (unsigned long long)x->job_id,
                   x->name[0] ? x->name : "-", fmt_state(x->state),
                   fmt_bytes(a, sizeof a, x->bytes));
        else
            printf("%s %zu checkpoint%s of job %llu (epoch%s %s): %s\n", verb,
                   x->n_checkpoint_epochs, x->n_checkpoint_epochs == 1 ? "" : "s",
                   (unsigned long long)x->job_id, x->n_checkpoint_epochs == 1 ? "" : "s",
                   epoch_list(ep, sizeof ep, x), fmt_bytes(a, sizeof a, x->bytes));
    }
    if (t->n_jobs == 0) {
        printf("%s\n", nothing);
        return;
    }
    if (t->dry_run)
        printf("nothing removed (--dry-run): %s stored would go; the database is %s\n",
               fmt_bytes(a, sizeof a, t->bytes_removed),
               fmt_bytes(b, sizeof b, t->store_bytes_before));
    else
        printf("%s freed: the database went from %s to %s\n",
               fmt_bytes(a, sizeof a, t->bytes_freed),
               fmt_bytes(b, sizeof b, t->store_bytes_before),
               fmt_bytes(c, sizeof c, t->store_bytes_after));
}

/* Send req, wait for the TidyResponse (the daemon answers when the removal
 * is done) and print it. */
static int tidy_call(struct mtctl *c, Memtrain__Request *req, uint64_t job_id, const char *nothing)
{
    Memtrain__Response *resp;
    struct mt_err err = {0};
    if (conn_call(c, req, MEMTRAIN__RESPONSE__BODY_TIDY, &resp, &err)) {
        if (job_id)
            conn_job_err(&err, job_id);
        return mtctl_fail(c, &err);
    }
    if (c->json)
        json_tidy(resp->tidy);
    else
        print_tidy(resp->tidy, nothing);
    memtrain__response__free_unpacked(resp, NULL);
    return MTCTL_EXIT_OK;
}

/* ---------------------------------------------------------------------- rm */

static const char rm_help[] =
    "Usage: mtctl rm [OPTIONS] ID...\n"
    "\n"
    "Remove jobs and everything the daemon stored for them (metrics, memory\n"
    "samples, logs, checkpoints), then give the space back: prints what each job\n"
    "held and how far the store's file shrank. Only a job's owner (or root) may\n"
    "remove it. All or nothing: one ID that does not exist, is not yours, or is\n"
    "queued or running (without --force) removes none.\n"
    "\n"
    "Options:\n"
    "  -f, --force            cancel a queued or running job first, then remove it\n"
    "  -n, --dry-run          say what would be removed, remove nothing\n"
    "  -o json, --json        one JSON document (docs/store.md)\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n";

int cmd_rm(struct mtctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"force", no_argument, NULL, 'f'},
        {"dry-run", no_argument, NULL, 'n'},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    Memtrain__RemoveRequest rq = MEMTRAIN__REMOVE_REQUEST__INIT;
    int opt, rc;
    mtctl_getopt_reset(c, argv, "rm");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS "fn", longopts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            rq.force = 1;
            break;
        case 'n':
            rq.dry_run = 1;
            break;
        MTCTL_OPT_DEFAULT(c, opt, rm_help)
        }
    }
    if (optind >= argc)
        return mtctl_usage_error(c, "expected one or more job IDs");
    size_t n = (size_t)(argc - optind);
    uint64_t *ids = calloc(n, sizeof *ids);
    if (!ids) {
        struct mt_err err;
        mt_err_set(&err, MT_E_NOMEM, "out of memory");
        return mtctl_fail(c, &err);
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = mtctl_parse_id(c, argv[optind + (int)i], &ids[i]))) {
            free(ids);
            return rc;
        }
    rq.n_job_ids = n;
    rq.job_ids = ids;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_RM;
    req.rm = &rq;
    rc = tidy_call(c, &req, n == 1 ? ids[0] : 0, "nothing removed");
    free(ids);
    return rc;
}

/* ------------------------------------------------------------------- prune */

static const char prune_help[] =
    "Usage: mtctl prune [OPTIONS]\n"
    "\n"
    "Remove your ended jobs (COMPLETED, FAILED, CANCELLED, OUT_OF_MEMORY) with\n"
    "everything stored for them, or with --keep-checkpoints only their older\n"
    "checkpoints; then give the space back and print how far the store's file\n"
    "shrank. Queued and running jobs are never touched.\n"
    "\n"
    "Options:\n"
    "  -s, --state S[,S...]     only jobs in these states: completed, failed,\n"
    "                           cancelled, out-of-memory (oom)\n"
    "  -t, --older-than AGE     only jobs that ended at least AGE ago: 30d, 12h,\n"
    "                           90min, 2w\n"
    "  -k, --keep-checkpoints N keep the jobs; remove all but their newest N\n"
    "                           checkpoints (0: all of them)\n"
    "  -a, --all                every user's jobs (root only)\n"
    "  -n, --dry-run            say what would be removed, remove nothing\n"
    "  -o json, --json          one JSON document (docs/store.md)\n"
    "      --socket PATH        the daemon's socket\n"
    "  -h, --help               this text\n"
    "\n"
    "The daemon can do this by itself: see `retention` in memtraind.yaml.\n";

int cmd_prune(struct mtctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"state", required_argument, NULL, 's'},
        {"older-than", required_argument, NULL, 't'},
        {"keep-checkpoints", required_argument, NULL, 'k'},
        {"all", no_argument, NULL, 'a'},
        {"dry-run", no_argument, NULL, 'n'},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    Memtrain__PruneRequest pq = MEMTRAIN__PRUNE_REQUEST__INIT;
    Memtrain__JobState states[16];
    struct mt_err perr;
    const char *bad;
    char *end;
    int opt, n_states = 0;
    mtctl_getopt_reset(c, argv, "prune");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS "s:t:k:an", longopts,
                              NULL)) != -1) {
        switch (opt) {
        case 's':
            if ((n_states = parse_states(optarg, states, 16, &bad)) < 0)
                return mtctl_usage_error(c, "unknown state '%s' (expected completed, failed, "
                                         "cancelled or out-of-memory)", bad);
            break;
        case 't':
            if (mt_age_parse(optarg, &pq.older_than_ms, &perr))
                return mtctl_usage_error(c, "--older-than: %s", perr.msg);
            break;
        case 'k': {
            unsigned long k = strtoul(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end || k > UINT32_MAX)
                return mtctl_usage_error(c, "--keep-checkpoints '%s' is not a count", optarg);
            pq.opt_keep_checkpoints_case =
                MEMTRAIN__PRUNE_REQUEST__OPT_KEEP_CHECKPOINTS_KEEP_CHECKPOINTS;
            pq.keep_checkpoints = (uint32_t)k;
            break;
        }
        case 'a':
            pq.all_users = 1;
            break;
        case 'n':
            pq.dry_run = 1;
            break;
        MTCTL_OPT_DEFAULT(c, opt, prune_help)
        }
    }
    if (optind < argc)
        return mtctl_usage_error(c, "unexpected argument '%s'", argv[optind]);
    pq.n_states = (size_t)n_states;
    pq.states = states;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_PRUNE;
    req.prune = &pq;
    return tidy_call(c, &req, 0, "nothing to prune");
}

/* ----------------------------------------------------------------- ckpt rm */

static const char ckpt_rm_help[] =
    "Usage: mtctl ckpt rm [OPTIONS] ID [EPOCH...]\n"
    "\n"
    "Remove job ID's checkpoints of the epochs given (`mtctl ckpt ls ID` lists\n"
    "them), or all of them, then give the space back and print how far the\n"
    "store's file shrank. The job's metrics and logs stay. A queued or running\n"
    "job's are refused (it resumes from them).\n"
    "\n"
    "Options:\n"
    "  -n, --dry-run          say what would be removed, remove nothing\n"
    "  -o json, --json        one JSON document (docs/store.md)\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n";

int ckpt_rm(struct mtctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dry-run", no_argument, NULL, 'n'},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    Memtrain__CheckpointRemoveRequest cq = MEMTRAIN__CHECKPOINT_REMOVE_REQUEST__INIT;
    int opt, rc;
    char *end;
    mtctl_getopt_reset(c, argv, "ckpt rm");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS "n", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            cq.dry_run = 1;
            break;
        MTCTL_OPT_DEFAULT(c, opt, ckpt_rm_help)
        }
    }
    if (optind >= argc)
        return mtctl_usage_error(c, "expected a job ID, then epochs (none: every checkpoint)");
    if ((rc = mtctl_parse_id(c, argv[optind], &cq.job_id)))
        return rc;
    size_t n = (size_t)(argc - optind - 1);
    uint32_t *epochs = calloc(n ? n : 1, sizeof *epochs);
    if (!epochs) {
        struct mt_err err;
        mt_err_set(&err, MT_E_NOMEM, "out of memory");
        return mtctl_fail(c, &err);
    }
    for (size_t i = 0; i < n; i++) {
        const char *a = argv[optind + 1 + (int)i];
        unsigned long e = strtoul(a, &end, 10);
        if (a[0] < '0' || a[0] > '9' || *end || e == 0 || e > UINT32_MAX) {
            free(epochs);
            return mtctl_usage_error(c, "'%s' is not an epoch number (1, 2, ...)", a);
        }
        epochs[i] = (uint32_t)e;
    }
    cq.n_epochs = n;
    cq.epochs = epochs;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_CKPT_RM;
    req.ckpt_rm = &cq;
    rc = tidy_call(c, &req, cq.job_id, "no checkpoint to remove");
    free(epochs);
    return rc;
}

/* ---------------------------------------------------------------------- df */

static const char df_help[] =
    "Usage: mtctl df [OPTIONS]\n"
    "\n"
    "The daemon's store by job and by kind: the bytes of each of your jobs'\n"
    "metrics (epochs, rule figures, step losses), memory samples, checkpoints,\n"
    "logs and its own record, other users' jobs as one line, then the whole\n"
    "store by kind, the free pages SQLite holds, and the file's size. A kind's\n"
    "bytes are SQLite's pages for its tables and indexes; a job's share is in\n"
    "proportion to its rows and their contents, so it is close, not exact.\n"
    "\n"
    "Options:\n"
    "  -a, --all              every job you may read (as ls --all)\n"
    "  -o json, --json        one JSON document (docs/store.md)\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n";

static void json_kinds(struct json *j, const char *key, const Memtrain__UsageKinds *k)
{
    static const Memtrain__UsageKinds zero = MEMTRAIN__USAGE_KINDS__INIT;
    if (!k)
        k = &zero;
    json_obj(j, key);
    json_u64(j, "jobs", k->jobs);
    json_u64(j, "metrics", k->metrics);
    json_u64(j, "memory_samples", k->memory_samples);
    json_u64(j, "checkpoints", k->checkpoints);
    json_u64(j, "logs", k->logs);
    json_u64(j, "total", k->total);
    json_obj_end(j);
}

static void json_df(const Memtrain__DiskUsageResponse *d)
{
    struct json j;
    json_begin(&j, stdout);
    json_arr(&j, "jobs");
    for (size_t i = 0; i < d->n_jobs; i++) {
        const Memtrain__JobUsage *u = d->jobs[i];
        json_obj(&j, NULL);
        json_u64(&j, "job_id", u->job_id);
        json_str(&j, "name", u->name);
        json_u64(&j, "owner_uid", u->owner_uid);
        json_str(&j, "state", fmt_state(u->state));
        json_kinds(&j, "bytes", u->bytes);
        json_u64(&j, "checkpoints", u->checkpoints);
        json_u64(&j, "memory_samples", u->memory_samples);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_kinds(&j, "others", d->others);
    json_kinds(&j, "by_kind", d->by_kind);
    json_u64(&j, "free_bytes", d->free_bytes);
    json_u64(&j, "file_bytes", d->file_bytes);
    json_u64(&j, "wal_bytes", d->wal_bytes);
    json_str(&j, "path", d->path[0] ? d->path : NULL);
    json_end(&j);
}

/* The six byte columns of a UsageKinds into cells[0..5]. */
static void kind_cells(char cells[6][32], const Memtrain__UsageKinds *k)
{
    static const Memtrain__UsageKinds zero = MEMTRAIN__USAGE_KINDS__INIT;
    if (!k)
        k = &zero;
    const uint64_t v[6] = {k->metrics, k->memory_samples, k->checkpoints, k->logs, k->jobs,
                           k->total};
    for (int i = 0; i < 6; i++)
        fmt_bytes(cells[i], 32, v[i]);
}

static void print_df(const Memtrain__DiskUsageResponse *d)
{
    static const char *const head[] = {"ID", "NAME", "OWNER", "STATE", "METRICS", "MEMORY",
                                       "CKPTS", "LOGS", "RECORD", "TOTAL"};
    struct table t;
    table_init(&t, 10, head, "r...rrrrrr");
    char k[6][32], id[24], user[64];
    for (size_t i = 0; i < d->n_jobs; i++) {
        const Memtrain__JobUsage *u = d->jobs[i];
        snprintf(id, sizeof id, "%llu", (unsigned long long)u->job_id);
        kind_cells(k, u->bytes);
        const char *cells[] = {id, u->name[0] ? u->name : "-",
                               fmt_user(u->owner_uid, user, sizeof user), fmt_state(u->state),
                               k[0], k[1], k[2], k[3], k[4], k[5]};
        table_add(&t, cells);
    }
    if (d->others && d->others->total) {
        kind_cells(k, d->others);
        const char *cells[] = {"-", "(other users' jobs)", "-", "-", k[0], k[1], k[2], k[3],
                               k[4], k[5]};
        table_add(&t, cells);
    }
    kind_cells(k, d->by_kind);
    const char *total[] = {"", "total", "", "", k[0], k[1], k[2], k[3], k[4], k[5]};
    table_add(&t, total);
    table_print(&t, stdout);
    table_free(&t);
    char a[32], b[32], c[32], f[32];
    printf("\nstore file %s (write-ahead log %s) holds %s in use and %s of free pages",
           fmt_bytes(a, sizeof a, d->file_bytes), fmt_bytes(b, sizeof b, d->wal_bytes),
           fmt_bytes(c, sizeof c, d->by_kind ? d->by_kind->total : 0),
           fmt_bytes(f, sizeof f, d->free_bytes));
    if (d->path[0])
        printf(": %s", d->path);
    putchar('\n');
}

int cmd_df(struct mtctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"all", no_argument, NULL, 'a'},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    Memtrain__DiskUsageRequest dq = MEMTRAIN__DISK_USAGE_REQUEST__INIT;
    int opt;
    mtctl_getopt_reset(c, argv, "df");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS "a", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a':
            dq.all_users = 1;
            break;
        MTCTL_OPT_DEFAULT(c, opt, df_help)
        }
    }
    if (optind < argc)
        return mtctl_usage_error(c, "unexpected argument '%s'", argv[optind]);
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_DF;
    req.df = &dq;
    Memtrain__Response *resp;
    struct mt_err err = {0};
    if (conn_call(c, &req, MEMTRAIN__RESPONSE__BODY_DF, &resp, &err))
        return mtctl_fail(c, &err);
    if (c->json)
        json_df(resp->df);
    else
        print_df(resp->df);
    memtrain__response__free_unpacked(resp, NULL);
    return MTCTL_EXIT_OK;
}
