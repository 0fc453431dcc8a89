/* retention.c: the retention policy's runs (retention.h). */
#include "retention.h"

#include "log.h"
#include "memtrain/clock.h"
#include "tidy.h"

/* One run: select what the policy removes, and queue it. */
static void retention_run(struct daemon *d)
{
    const struct mt_config *cfg = &d->cfg;
    if (cfg->retention_keep_checkpoints < 0 && !cfg->retention_checkpoints_max_age_ms &&
        !cfg->retention_jobs_max_age_ms)
        return;
    struct tidy_task *t = tidy_task_new(NULL, 0, "retention");
    struct mt_err err = {0};
    int64_t now = mt_now_ms();
    int rc = t ? 0 : mt_err_set(&err, MT_E_NOMEM, "out of memory");
    struct tidy_filter f = {.owner = -1, .state_mask = TIDY_ENDED_STATES};
    if (!rc && cfg->retention_jobs_max_age_ms) {
        f.finished_before_ms = now - (int64_t)cfg->retention_jobs_max_age_ms;
        f.keep_checkpoints = -1;
        rc = tidy_task_select(d, t, &f, &err);
    }
    if (!rc && cfg->retention_checkpoints_max_age_ms) {
        f.finished_before_ms = now - (int64_t)cfg->retention_checkpoints_max_age_ms;
        f.keep_checkpoints = 0;
        rc = tidy_task_select(d, t, &f, &err);
    }
    if (!rc && cfg->retention_keep_checkpoints >= 0) {
        f.finished_before_ms = 0;
        f.keep_checkpoints = cfg->retention_keep_checkpoints;
        rc = tidy_task_select(d, t, &f, &err);
    }
    if (rc) {
        log_err("retention: %s", err.msg);
        tidy_task_free(t);
    } else if (tidy_task_jobs(t) == 0) {
        log_debug("retention: nothing to remove");
        tidy_task_free(t);
    } else {
        log_info("retention: removing from %zu ended job%s", tidy_task_jobs(t),
                 tidy_task_jobs(t) == 1 ? "" : "s");
        tidy_task_run(d, t);
    }
}

static void on_retention(uv_timer_t *h)
{
    retention_run(h->data);
}

void retention_start(struct daemon *d)
{
    uv_timer_init(d->loop, &d->retention);
    d->retention.data = d;
    d->retention_on = 1;
    retention_reload(d);
}

void retention_reload(struct daemon *d)
{
    if (!d->retention_on)
        return;
    retention_run(d);
    uint64_t every = d->cfg.retention_interval_ms ? d->cfg.retention_interval_ms : 1000;
    uv_timer_start(&d->retention, on_retention, every, every);
}

void retention_stop(struct daemon *d)
{
    if (!d->retention_on)
        return;
    d->retention_on = 0;
    uv_close((uv_handle_t *)&d->retention, NULL);
}
