/* promfile.c: the Prometheus text file (promfile.h). */
#include "promfile.h"

#include <errno.h>
#include <stddef.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs.h"
#include "log.h"
#include "memtrain/category.h"
#include "memtrain/clock.h"

#define KICK_GAP_MS 1000   /* at most one write a second for state changes */
#define N_STATE_SLOTS 8    /* Memtrain__JobState values 0..7 */

/* One running job's figures, copied on the loop. */
struct prom_job {
    uint64_t id;
    uint32_t owner_uid;
    char rule[32];
    uint64_t limit, planned, rss;
    uint32_t epochs_done, epochs;
    int has_sample;
    uint64_t current[MT_MEM_NCAT], step_peak[MT_MEM_NCAT], peak[MT_MEM_NCAT];
    uint64_t current_total, peak_total;
};

/* Everything one write needs; owned by the work request while it runs. */
struct prom_snap {
    char *path;
    uint64_t counts[N_STATE_SLOTS];
    uint64_t queued, budget, reserved;
    uint32_t slots;
    size_t n;
    struct prom_job *jobs;
    int rc;                 /* the write's outcome: 0 or MT_E_* */
    char why[320];
};

struct promfile {
    struct daemon *d;
    uv_timer_t tick, kick;
    uv_work_t work;
    struct prom_snap *snap;  /* the write in flight; NULL when idle */
    int dirty;               /* a change came while a write was in flight */
    int kick_armed;
    int stopping;
    int failing;             /* the last write failed (logged once until one works) */
    int64_t last_ms;
    int handles_open;
};

/* ---------------------------------------------------------- the snapshot */

static void stats_into(uint64_t *out, uint64_t *total, const Memtrain__MemoryStats *m)
{
    if (!m)
        return;
    out[MT_MEM_PARAMS] = m->params;
    out[MT_MEM_GRADS] = m->grads;
    out[MT_MEM_OPTIM] = m->optimizer;
    out[MT_MEM_ACTS] = m->activations;
    out[MT_MEM_WORKSPACE] = m->workspace;
    out[MT_MEM_DATA] = m->data;
    if (total)
        *total = m->peak_total;
}

static void snap_free(struct prom_snap *s)
{
    if (!s)
        return;
    free(s->path);
    free(s->jobs);
    free(s);
}

static struct prom_snap *snap_take(struct daemon *d)
{
    struct prom_snap *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->path = strdup(d->cfg.metrics_textfile);
    size_t n = 0;
    for (struct job *j = d->jobs; j; j = j->next)
        n++;
    s->jobs = calloc(n ? n : 1, sizeof *s->jobs);
    if (!s->path || !s->jobs) {
        snap_free(s);
        return NULL;
    }
    struct mt_err err = {0};
    if (store_jobs_count(d->store, s->counts, N_STATE_SLOTS, &err)) {
        s->rc = err.code;
        snprintf(s->why, sizeof s->why, "%.300s", err.msg);
    }
    s->budget = d->cfg.memory_budget;
    s->slots = d->cfg.slots;
    for (struct job *j = d->jobs; j; j = j->next) {
        if (j->row.state == MEMTRAIN__JOB_STATE__QUEUED)
            s->queued++;
        if (j->row.state != MEMTRAIN__JOB_STATE__RUNNING)
            continue;
        s->reserved += j->planned_total;
        struct prom_job *p = &s->jobs[s->n++];
        p->id = j->row.id;
        p->owner_uid = j->row.owner_uid;
        snprintf(p->rule, sizeof p->rule, "%s", j->row.rule ? j->row.rule : "");
        p->limit = j->row.memory_limit;
        p->planned = j->planned_total;
        p->epochs_done = j->row.epochs_done;
        p->epochs = j->row.epochs;
        if (j->sample) {
            p->has_sample = 1;
            p->rss = j->sample->rss_bytes;
            stats_into(p->current, &p->current_total, j->sample->current);
            stats_into(p->step_peak, NULL, j->sample->interval_peak);
            stats_into(p->peak, &p->peak_total, j->sample->peak);
        }
    }
    return s;
}

/* ------------------------------------------- formatting, on the thread pool */

/* A label value with \, " and newline escaped (exposition format). */
static void put_label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f);
        if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void put_head(FILE *f, const char *name, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* The owner's user name, else the uid in decimal. */
static void owner_name(uint32_t uid, char *out, size_t cap)
{
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found && found->pw_name)
        snprintf(out, cap, "%s", found->pw_name);
    else
        snprintf(out, cap, "%lu", (unsigned long)uid);
}

/* {job="12",owner="alice",rule="dfa" and, when cat >= 0, ,category="..."} */
static void put_job_labels(FILE *f, const struct prom_job *p, const char *owner, int cat)
{
    fprintf(f, "{job=\"%llu\",owner=\"", (unsigned long long)p->id);
    put_label(f, owner);
    fputs("\",rule=\"", f);
    put_label(f, p->rule);
    fputc('"', f);
    if (cat >= 0)
        fprintf(f, ",category=\"%s\"", mt_mem_cat_name((enum mt_mem_cat)cat));
    fputc('}', f);
}

/* One per-job metric: by category (field picks the array), or one value. */
enum job_field {
    JF_CURRENT, JF_STEP_PEAK, JF_PEAK,                       /* by category */
    JF_CURRENT_TOTAL, JF_PEAK_TOTAL, JF_LIMIT, JF_PLANNED, JF_RSS, JF_EPOCHS_DONE, JF_EPOCHS,
};

static const struct {
    const char *name, *help;
    enum job_field field;
    int needs_sample;
} job_metrics[] = {
    {"memtrain_job_memory_bytes", "A running job's arena bytes in use now, by category "
     "(sampled between training steps).", JF_CURRENT, 1},
    {"memtrain_job_memory_step_peak_bytes", "A running job's arena peak by category over the "
     "training steps since the previous sample (activations and workspace show here).",
     JF_STEP_PEAK, 1},
    {"memtrain_job_memory_peak_bytes", "A running job's arena peak by category since it "
     "started.", JF_PEAK, 1},
    {"memtrain_job_memory_total_bytes", "A running job's arena bytes in use now, all "
     "categories.", JF_CURRENT_TOTAL, 1},
    {"memtrain_job_memory_peak_total_bytes", "A running job's peak of the arena's total.",
     JF_PEAK_TOTAL, 1},
    {"memtrain_job_rss_bytes", "A running job's worker resident set size.", JF_RSS, 1},
    {"memtrain_job_memory_limit_bytes", "A running job's memory limit (0: none).", JF_LIMIT, 0},
    {"memtrain_job_planned_bytes", "A running job's planned peak, reserved of the budget.",
     JF_PLANNED, 0},
    {"memtrain_job_epochs_done", "A running job's finished epochs.", JF_EPOCHS_DONE, 0},
    {"memtrain_job_epochs", "A running job's epochs in all.", JF_EPOCHS, 0},
};

static uint64_t job_value(const struct prom_job *p, enum job_field f)
{
    switch (f) {
    case JF_CURRENT_TOTAL: return p->current_total;
    case JF_PEAK_TOTAL: return p->peak_total;
    case JF_LIMIT: return p->limit;
    case JF_PLANNED: return p->planned;
    case JF_RSS: return p->rss;
    case JF_EPOCHS_DONE: return p->epochs_done;
    case JF_EPOCHS: return p->epochs;
    default: return 0;
    }
}

static void put_jobs(FILE *f, const struct prom_snap *s, char (*owners)[64])
{
    for (size_t m = 0; m < sizeof job_metrics / sizeof job_metrics[0]; m++) {
        put_head(f, job_metrics[m].name, job_metrics[m].help);
        enum job_field fld = job_metrics[m].field;
        for (size_t i = 0; i < s->n; i++) {
            const struct prom_job *p = &s->jobs[i];
            if (job_metrics[m].needs_sample && !p->has_sample)
                continue;
            if (fld <= JF_PEAK) {
                const uint64_t *v = fld == JF_CURRENT ? p->current
                                    : fld == JF_STEP_PEAK ? p->step_peak : p->peak;
                for (int c = 0; c < MT_MEM_NCAT; c++) {
                    fputs(job_metrics[m].name, f);
                    put_job_labels(f, p, owners[i], c);
                    fprintf(f, " %llu\n", (unsigned long long)v[c]);
                }
            } else {
                fputs(job_metrics[m].name, f);
                put_job_labels(f, p, owners[i], -1);
                fprintf(f, " %llu\n", (unsigned long long)job_value(p, fld));
            }
        }
    }
}

static void put_all(FILE *f, const struct prom_snap *s, char (*owners)[64])
{
    put_head(f, "memtrain_jobs", "Jobs in memtraind's store by state.");
    for (int st = MEMTRAIN__JOB_STATE__QUEUED; st < N_STATE_SLOTS; st++)
        fprintf(f, "memtrain_jobs{state=\"%s\"} %llu\n", job_state_name(st),
                (unsigned long long)s->counts[st]);
    put_head(f, "memtrain_queue_length", "Jobs waiting to start.");
    fprintf(f, "memtrain_queue_length %llu\n", (unsigned long long)s->queued);
    put_head(f, "memtrain_slots", "Jobs that may run at once.");
    fprintf(f, "memtrain_slots %u\n", s->slots);
    put_head(f, "memtrain_memory_budget_bytes", "Bytes for all running jobs' planned peaks.");
    fprintf(f, "memtrain_memory_budget_bytes %llu\n", (unsigned long long)s->budget);
    put_head(f, "memtrain_memory_budget_used_bytes",
             "The planned peaks of the running jobs, reserved of the budget.");
    fprintf(f, "memtrain_memory_budget_used_bytes %llu\n", (unsigned long long)s->reserved);
    put_jobs(f, s, owners);
}

/* Write the text to a temporary file beside path, then rename it over path
 * (the textfile collector reads only *.prom, so the temporary is not read). */
static int write_atomically(struct prom_snap *s, const char *text, size_t len)
{
    char *tmp = malloc(strlen(s->path) + 16);
    if (!tmp)
        return MT_E_NOMEM;
    const char *slash = strrchr(s->path, '/');
    size_t dirlen = slash ? (size_t)(slash - s->path + 1) : 0;
    sprintf(tmp, "%.*s.%s.XXXXXX", (int)dirlen, s->path, s->path + dirlen);
    int fd = mkstemp(tmp);
    int rc = 0;
    if (fd < 0) {
        snprintf(s->why, sizeof s->why, "%s: cannot create a temporary file beside it: %s",
                 s->path, strerror(errno));
        free(tmp);
        return MT_E_IO;
    }
    size_t done = 0;
    while (done < len && !rc) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            rc = MT_E_IO;
        else
            done += (size_t)w;
    }
    /* node_exporter runs as another user: the file is readable by all */
    if (!rc && fchmod(fd, 0644) != 0)
        rc = MT_E_IO;
    if (close(fd) != 0 && !rc)
        rc = MT_E_IO;
    if (!rc && rename(tmp, s->path) != 0)
        rc = MT_E_IO;
    if (rc) {
        snprintf(s->why, sizeof s->why, "%s: %s", s->path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

static void on_work(uv_work_t *req)
{
    struct prom_snap *s = req->data;
    if (s->rc)
        return;   /* the store could not count: leave the old file */
    char (*owners)[64] = calloc(s->n ? s->n : 1, sizeof *owners);
    char *text = NULL;
    size_t len = 0;
    FILE *f = owners ? open_memstream(&text, &len) : NULL;
    if (!f) {
        free(owners);
        s->rc = MT_E_NOMEM;
        snprintf(s->why, sizeof s->why, "out of memory");
        return;
    }
    for (size_t i = 0; i < s->n; i++)
        owner_name(s->jobs[i].owner_uid, owners[i], sizeof owners[i]);
    put_all(f, s, owners);
    if (fclose(f) != 0 || !text) {
        s->rc = MT_E_NOMEM;
        snprintf(s->why, sizeof s->why, "out of memory");
    } else {
        s->rc = write_atomically(s, text, len);
    }
    free(text);
    free(owners);
}

/* ------------------------------------------------------------ on the loop */

static void start_write(struct daemon *d);

static void after_work(uv_work_t *req, int status)
{
    struct promfile *p = (struct promfile *)((char *)req - offsetof(struct promfile, work));
    struct daemon *d = p->d;
    struct prom_snap *s = req->data;
    if (status == 0 && s->rc && !p->failing) {
        log_err("metrics_textfile: %s (retrying every %u ms; logged once)", s->why,
                d->cfg.metrics_interval_ms);
        p->failing = 1;
    } else if (status == 0 && !s->rc && p->failing) {
        log_info("metrics_textfile: %s written again", s->path);
        p->failing = 0;
    }
    snap_free(s);
    p->snap = NULL;
    p->last_ms = mt_now_ms();
    if (p->stopping) {
        unlink(d->cfg.metrics_textfile);
        return;
    }
    if (p->dirty) {
        p->dirty = 0;
        promfile_kick(d);
    }
}

static void start_write(struct daemon *d)
{
    struct promfile *p = d->prom;
    if (p->snap) {
        p->dirty = 1;
        return;
    }
    struct prom_snap *s = snap_take(d);
    if (!s) {
        log_err("metrics_textfile: out of memory");
        return;
    }
    p->snap = s;
    p->work.data = s;
    int rc = uv_queue_work(d->loop, &p->work, on_work, after_work);
    if (rc) {
        log_err("metrics_textfile: %s", uv_strerror(rc));
        snap_free(s);
        p->snap = NULL;
    }
}

static void on_tick(uv_timer_t *t)
{
    start_write(t->data);
}

static void on_kick(uv_timer_t *t)
{
    struct daemon *d = t->data;
    d->prom->kick_armed = 0;
    start_write(d);
}

int promfile_start(struct daemon *d, struct mt_err *err)
{
    if (!d->cfg.metrics_textfile || !*d->cfg.metrics_textfile)
        return 0;
    struct promfile *p = calloc(1, sizeof *p);
    if (!p)
        return mt_err_set(err, MT_E_NOMEM, "metrics_textfile: out of memory");
    d->prom = p;
    p->d = d;
    uv_timer_init(d->loop, &p->tick);
    uv_timer_init(d->loop, &p->kick);
    p->tick.data = p->kick.data = d;
    p->handles_open = 1;
    uint64_t every = d->cfg.metrics_interval_ms;
    uv_timer_start(&p->tick, on_tick, 0, every);
    return 0;
}

void promfile_kick(struct daemon *d)
{
    struct promfile *p = d->prom;
    if (!p || p->stopping)
        return;
    if (p->snap) {
        p->dirty = 1;
        return;
    }
    if (p->kick_armed)
        return;
    int64_t wait = p->last_ms + KICK_GAP_MS - mt_now_ms();
    p->kick_armed = 1;
    uv_timer_start(&p->kick, on_kick, wait > 0 ? (uint64_t)wait : 0, 0);
}

void promfile_stop(struct daemon *d)
{
    struct promfile *p = d->prom;
    if (!p || p->stopping)
        return;
    p->stopping = 1;
    if (p->handles_open) {
        uv_close((uv_handle_t *)&p->tick, NULL);
        uv_close((uv_handle_t *)&p->kick, NULL);
        p->handles_open = 0;
    }
    if (!p->snap)
        unlink(d->cfg.metrics_textfile);
}

void promfile_free(struct daemon *d)
{
    free(d->prom);
    d->prom = NULL;
}
