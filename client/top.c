/* top.c: `mtctl top`, every visible job in one table, refreshed.
 *
 * Each refresh is one List (all pages) of the jobs the caller may read. On
 * a terminal the table is redrawn in place (cursor home, erase), cut to the
 * window; piped, each refresh prints the table again after a blank line;
 * with -o json each refresh is one JSON line. --once prints one table.
 *
 * A job's figures come from its List record: progress is epochs done of
 * epochs; the ETA extrapolates the run so far (elapsed / epochs done x
 * epochs left, so it includes start-up and checkpoints); memory is the arena's
 * measured peak against the job's limit; the rate is the last epoch's
 * samples per second. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "memtrain/clock.h"
#include "mtctl.h"

static const char top_help[] =
    "Usage: mtctl top [OPTIONS]\n"
    "\n"
    "Every job you may read in one table, refreshed until interrupted: ID, NAME,\n"
    "STATE, EPOCH (done of total), PROGRESS (a bar of the epochs done), ETA (the\n"
    "run so far extrapolated over the epochs left), TEST-ACC (the last epoch's),\n"
    "MEMORY (the arena's measured peak against the job's limit) and RATE (the\n"
    "last epoch's samples per second). Running jobs first, then queued, then the\n"
    "rest, newest first. On a terminal the table is redrawn in place; piped, it\n"
    "is printed again after a blank line at each refresh.\n"
    "\n"
    "Options:\n"
    "      --once             print the table once and exit\n"
    "  -d, --interval SECS    seconds between refreshes (default 2, 0.2 to 3600)\n"
    "  -s, --state S[,S...]   only jobs in these states (as `mtctl ls --state`)\n"
    "  -n, --limit N          at most N jobs (the most recent)\n"
    "  -l, --label KEY=VALUE  only jobs with this label (repeatable: all of them)\n"
    "      --no-headers       no header row\n"
    "  -o wide                also RULE, OWNER and ELAPSED\n"
    "  -o name                the job ids only\n"
    "  -o csv                 the table as CSV (the wide columns)\n"
    "  -o json, --json        one JSON line per refresh: {\"time\": ms, \"jobs\":\n"
    "                         [{\"id\", \"name\", \"state\", \"epochs_done\", \"epochs\",\n"
    "                         \"progress\", \"eta_seconds\", \"test_accuracy\",\n"
    "                         \"peak_bytes\", \"memory_limit\", \"samples_per_second\"}]}\n"
    "                         (null where a figure is not known yet)\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n";

/* The figures of one row, derived from its Job. */
struct top_row {
    const Memtrain__Job *job;
    double progress;   /* 0..1 */
    double eta;        /* seconds; < 0 = unknown */
    double elapsed;    /* seconds run; < 0 = never started */
};

static int running_first(int state)
{
    return state == MEMTRAIN__JOB_STATE__RUNNING ? 0 : state == MEMTRAIN__JOB_STATE__QUEUED ? 1 : 2;
}

static int row_order(const void *a, const void *b)
{
    const struct top_row *x = a, *y = b;
    int kx = running_first(x->job->state), ky = running_first(y->job->state);
    if (kx != ky)
        return kx - ky;
    return x->job->id < y->job->id ? 1 : x->job->id > y->job->id ? -1 : 0;
}

static void derive(struct top_row *r, const Memtrain__Job *job, int64_t now)
{
    r->job = job;
    r->progress = job->epochs ? (double)job->epochs_done / job->epochs : 0;
    if (job->state == MEMTRAIN__JOB_STATE__COMPLETED)
        r->progress = 1;
    r->elapsed = -1;
    if (job->started_at > 0)
        r->elapsed = (double)((job->finished_at > 0 ? job->finished_at : now) - job->started_at) / 1000.0;
    r->eta = -1;
    if (job->state == MEMTRAIN__JOB_STATE__RUNNING && job->epochs_done > 0 && r->elapsed >= 0 &&
        job->epochs >= job->epochs_done)
        r->eta = fmax(0, r->elapsed / job->epochs_done * job->epochs - r->elapsed);
    else if (fmt_state_final(job->state))
        r->eta = 0;
}

static void progress_bar(char *buf, size_t len, double frac)
{
    int width = 10, full = (int)(fmin(fmax(frac, 0), 1) * width + 0.5);
    size_t n = 0;
    for (int i = 0; i < width && n + 1 < len; i++)
        buf[n++] = i < full ? '#' : '-';
    snprintf(buf + n, len - n, " %3.0f%%", fmin(fmax(frac, 0), 1) * 100);
}

static void add_row(struct table *t, const struct top_row *r, int wide)
{
    const Memtrain__Job *job = r->job;
    char id[24], epoch[32], prog[32], eta[32], acc[16], mem[64], rate[32], el[32], user[64];
    snprintf(id, sizeof id, "%llu", (unsigned long long)job->id);
    snprintf(epoch, sizeof epoch, "%u/%u", job->epochs_done, job->epochs);
    progress_bar(prog, sizeof prog, r->progress);
    if (r->eta < 0)
        snprintf(eta, sizeof eta, "-");
    else
        fmt_duration(eta, sizeof eta, r->eta);
    const Memtrain__EpochProgress *e = job->epochs_done > 0 ? job->last_epoch : NULL;
    if (e)
        fmt_percent(acc, sizeof acc, e->test_accuracy);
    else
        snprintf(acc, sizeof acc, "-");
    uint64_t peak = job->measured ? job->measured->peak_total : 0;
    char a[32], b[32];
    if (job->memory_limit)
        snprintf(mem, sizeof mem, "%s / %s", peak ? fmt_bytes(a, sizeof a, peak) : "-",
                 fmt_bytes(b, sizeof b, job->memory_limit));
    else
        snprintf(mem, sizeof mem, "%s", peak ? fmt_bytes(a, sizeof a, peak) : "-");
    if (e && e->samples_per_second > 0)
        snprintf(rate, sizeof rate, "%.0f/s", e->samples_per_second);
    else
        snprintf(rate, sizeof rate, "-");
    fmt_elapsed(el, sizeof el, job, mt_now_ms());
    const char *name = job->name[0] ? job->name : "-";
    if (wide) {
        const char *cells[] = {id, name, fmt_state(job->state), job->rule[0] ? job->rule : "-",
                               fmt_user(job->owner_uid, user, sizeof user), epoch, prog, el,
                               eta, acc, mem, rate};
        table_add(t, cells);
    } else {
        const char *cells[] = {id, name, fmt_state(job->state), epoch, prog, eta, acc, mem, rate};
        table_add(t, cells);
    }
}

static void json_rows(const struct top_row *rows, size_t n)
{
    struct json j;
    json_begin(&j, stdout);
    json_i64(&j, "time", mt_now_ms());
    json_arr(&j, "jobs");
    for (size_t i = 0; i < n; i++) {
        const Memtrain__Job *job = rows[i].job;
        const Memtrain__EpochProgress *e = job->epochs_done > 0 ? job->last_epoch : NULL;
        json_obj(&j, NULL);
        json_u64(&j, "id", job->id);
        json_str(&j, "name", job->name);
        json_str(&j, "state", fmt_state(job->state));
        json_str(&j, "rule", job->rule);
        json_u64(&j, "owner_uid", job->owner_uid);
        json_u64(&j, "epochs_done", job->epochs_done);
        json_u64(&j, "epochs", job->epochs);
        json_double(&j, "progress", rows[i].progress);
        if (rows[i].eta < 0)
            json_null(&j, "eta_seconds");
        else
            json_double(&j, "eta_seconds", rows[i].eta);
        if (rows[i].elapsed < 0)
            json_null(&j, "elapsed_seconds");
        else
            json_double(&j, "elapsed_seconds", rows[i].elapsed);
        if (e)
            json_double(&j, "test_accuracy", e->test_accuracy);
        else
            json_null(&j, "test_accuracy");
        json_u64(&j, "peak_bytes", job->measured ? job->measured->peak_total : 0);
        json_u64(&j, "memory_limit", job->memory_limit);
        if (e)
            json_double(&j, "samples_per_second", e->samples_per_second);
        else
            json_null(&j, "samples_per_second");
        json_obj_end(&j);
    }
    json_end(&j);
}

/* One refresh: fetch, then print the frame as the mode wants. */
static int frame(struct mtctl *c, Memtrain__ListRequest *lq, unsigned long limit, int live,
                 int no_headers)
{
    struct job_pages jp;
    struct mt_err err = {0};
    if (jobs_fetch(c, lq, limit, &jp, &err))
        return mtctl_fail(c, &err);
    struct top_row *rows = calloc(jp.n_jobs ? jp.n_jobs : 1, sizeof *rows);
    if (!rows) {
        jobs_pages_free(&jp);
        mt_err_set(&err, MT_E_NOMEM, "out of memory for %zu jobs", jp.n_jobs);
        return mtctl_fail(c, &err);
    }
    size_t n = 0;
    int64_t now = mt_now_ms();
    int counts[3] = {0};
    for (size_t p = 0; p < jp.n_pages; p++)
        for (size_t i = 0; i < jp.pages[p]->list->n_jobs; i++) {
            derive(&rows[n], jp.pages[p]->list->jobs[i], now);
            counts[running_first(rows[n++].job->state)]++;
        }
    qsort(rows, n, sizeof *rows, row_order);
    int rc = MTCTL_EXIT_OK;
    if (c->json) {
        json_rows(rows, n);
    } else if (c->output == MTCTL_OUT_NAME) {
        for (size_t i = 0; i < n; i++)
            printf("%llu\n", (unsigned long long)rows[i].job->id);
    } else {
        static const char *const head[] = {"ID", "NAME", "STATE", "EPOCH", "PROGRESS", "ETA",
                                           "TEST-ACC", "MEMORY", "RATE"};
        static const char *const whead[] = {"ID", "NAME", "STATE", "RULE", "OWNER", "EPOCH",
                                            "PROGRESS", "ELAPSED", "ETA", "TEST-ACC", "MEMORY",
                                            "RATE"};
        int wide = c->output == MTCTL_OUT_WIDE || c->output == MTCTL_OUT_CSV;
        size_t shown = n;
        struct winsize ws;
        if (live && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 3 &&
            shown > (size_t)ws.ws_row - 3)
            shown = (size_t)ws.ws_row - 3;  /* the summary, the header, the cursor's line */
        struct table t;
        table_init(&t, wide ? 12 : 9, no_headers ? NULL : wide ? whead : head,
                   wide ? "r.....rrrrrr" : "r..rrrrrr");
        for (size_t i = 0; i < shown; i++)
            add_row(&t, &rows[i], wide);
        if (live)
            fputs("\033[H", stdout);
        if (c->output != MTCTL_OUT_CSV && (live || !no_headers)) {
            char tm[32];
            printf("%s  %zu jobs: %d running, %d queued, %d finished%s%s\n",
                   fmt_time(tm, sizeof tm, now), n, counts[0], counts[1], counts[2],
                   shown < n ? "; window shows " : "", shown < n ? "the first rows" : "");
        }
        if (live)
            fputs("\033[J", stdout);
        if (c->output == MTCTL_OUT_CSV ? table_print_csv(&t, stdout) : table_print(&t, stdout)) {
            mt_err_set(&err, MT_E_NOMEM, "out of memory for %zu jobs", n);
            rc = mtctl_fail(c, &err);
        }
        table_free(&t);
    }
    free(rows);
    jobs_pages_free(&jp);
    return rc;
}

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* Sleep `secs`, waking early on a signal. */
static void pause_for(double secs)
{
    struct timespec ts = {(time_t)secs, (long)((secs - floor(secs)) * 1e9)};
    while (!stop && nanosleep(&ts, &ts) != 0)
        ;
}

int cmd_top(struct mtctl *c, int argc, char **argv)
{
    enum { OPT_ONCE = 0x2001, OPT_NO_HEADERS };
    static const struct option longopts[] = {
        {"once", no_argument, NULL, OPT_ONCE},
        {"interval", required_argument, NULL, 'd'},
        {"state", required_argument, NULL, 's'},
        {"limit", required_argument, NULL, 'n'},
        {"no-headers", no_argument, NULL, OPT_NO_HEADERS},
        {"label", required_argument, NULL, 'l'},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    Memtrain__JobState states[16];
    struct mtctl_labels labels = {.n = 0};
    int n_states = 0, once = 0, no_headers = 0, opt;
    double interval = 2;
    unsigned long limit = 0;
    char *end;
    mtctl_getopt_reset(c, argv, "top");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS "d:s:n:l:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            if (mtctl_parse_label(c, optarg, &labels))
                return MTCTL_EXIT_USAGE;
            break;
        case OPT_ONCE:
            once = 1;
            break;
        case OPT_NO_HEADERS:
            no_headers = 1;
            break;
        case 'd':
            interval = strtod(optarg, &end);
            if (!*optarg || *end || !(interval >= 0.2 && interval <= 3600))
                return mtctl_usage_error(c, "--interval '%s': expected seconds from 0.2 to 3600",
                                         optarg);
            break;
        case 's':
            if (jobs_opt_states(c, optarg, states, &n_states))
                return MTCTL_EXIT_USAGE;
            break;
        case 'n':
            if (jobs_opt_limit(c, optarg, &limit))
                return MTCTL_EXIT_USAGE;
            break;
        MTCTL_OPT_DEFAULT(c, opt, top_help)
        }
    }
    if (optind < argc)
        return mtctl_usage_error(c, "unexpected argument '%s'", argv[optind]);
    Memtrain__ListRequest lq = MEMTRAIN__LIST_REQUEST__INIT;
    lq.all_users = 1;  /* every job the daemon lets this user read */
    lq.n_states = (size_t)n_states;
    lq.states = states;
    lq.n_labels = labels.n;
    lq.labels = labels.ptrs;
    int live = c->tty && !c->json && c->output != MTCTL_OUT_CSV && c->output != MTCTL_OUT_NAME &&
               !once;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (live)
        fputs("\033[H\033[2J", stdout);
    for (int first = 1;; first = 0) {
        if (!first && !live && !c->json && c->output != MTCTL_OUT_NAME)
            putchar('\n');
        int rc = frame(c, &lq, limit, live, no_headers);
        if (rc)
            return rc;
        if (fflush(stdout) != 0 || ferror(stdout))
            return MTCTL_EXIT_ERROR;  /* the reader went away: main says so */
        if (once || stop)
            return MTCTL_EXIT_OK;
        pause_for(interval);
        if (stop)
            return MTCTL_EXIT_OK;
    }
}
