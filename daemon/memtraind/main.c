/* main.c: memtraind's entry point: options, the store, the socket, signals
 * and the loop. Only this file calls exit. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "daemon.h"
#include "dispatch.h"
#include "jobs.h"
#include "log.h"
#include "memtrain/version.h"
#include "memtrain/clock.h"
#include "notify.h"
#include "probe.h"
#include "retention.h"
#include "promfile.h"
#include "server.h"
#include "tidy.h"
#include "watch.h"
#include "memtrain/bytesize.h"

#define TICK_MS 1000


static void usage(FILE *f)
{
    fputs("Usage: memtraind [OPTION]...\n"
          "The memtrain daemon: queues training jobs submitted with mtctl, runs each in a\n"
          "memtrain-worker process with per-job memory accounting and a memory limit, and\n"
          "keeps every job, metric, memory sample and checkpoint in SQLite.\n\n"
          "Options (each overrides the configuration file):\n"
          "  -c, --config FILE     configuration file (default: $CONFIGURATION_DIRECTORY/\n"
          "                        memtraind.yaml, else " CONFIG_DEFAULT_FILE " if present)\n"
          "  -s, --socket PATH     listen here (default: $RUNTIME_DIRECTORY/memtraind.sock,\n"
          "                        else $XDG_RUNTIME_DIR/memtrain/memtraind.sock, else\n"
          "                        /tmp/memtrain-UID/memtraind.sock; mtctl looks there)\n"
          "  -d, --db PATH         the store (default: $STATE_DIRECTORY/memtrain.db, else\n"
          "                        $XDG_STATE_HOME/memtrain/memtrain.db)\n"
          "  -w, --worker PATH     the memtrain-worker executable\n"
          "  -j, --slots N         jobs running at once\n"
          "  -b, --budget SIZE     memory for all running jobs' planned peaks (e.g. 16G)\n"
          "  -v, --verbose         debug messages\n"
          "  -h, --help            this text\n"
          "  -V, --version         the version\n\n"
          "Signals: SIGTERM or SIGINT stop cleanly (running jobs write a checkpoint and are\n"
          "resumed at the next start); SIGHUP reloads the configuration file.\n"
          "Logs go to stderr, in journald's format under systemd.\n",
          f);
}

struct opts {
    const char *config, *socket, *db, *worker, *slots, *budget;
    int verbose;
};

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"socket", required_argument, NULL, 's'},
        {"db", required_argument, NULL, 'd'},     {"worker", required_argument, NULL, 'w'},
        {"slots", required_argument, NULL, 'j'},  {"budget", required_argument, NULL, 'b'},
        {"verbose", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    int ch;
    memset(o, 0, sizeof *o);
    while ((ch = getopt_long(argc, argv, "c:s:d:w:j:b:vhV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': o->config = optarg; break;
        case 's': o->socket = optarg; break;
        case 'd': o->db = optarg; break;
        case 'w': o->worker = optarg; break;
        case 'j': o->slots = optarg; break;
        case 'b': o->budget = optarg; break;
        case 'v': o->verbose = 1; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("memtraind %s\n", MT_VERSION); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "memtraind: unexpected argument '%s'\n", argv[optind]);
        exit(2);
    }
    return 0;
}

static int set_string(char **field, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return MT_E_NOMEM;
    free(*field);
    *field = s;
    return 0;
}

static int load_config(struct daemon *d, const struct opts *o, struct mt_err *err)
{
    int rc = config_defaults(&d->cfg);
    if (rc)
        return mt_err_set(err, rc, "out of memory");
    if ((rc = config_load_file(&d->cfg, o->config, err)))
        return rc;
    if ((o->socket && set_string(&d->cfg.socket_path, o->socket)) ||
        (o->db && set_string(&d->cfg.db_path, o->db)) ||
        (o->worker && set_string(&d->cfg.worker_path, o->worker)))
        return mt_err_set(err, MT_E_NOMEM, "out of memory");
    if (o->slots) {
        char *end;
        long n = strtol(o->slots, &end, 10);
        if (*end || n < 1 || n > 1024)
            return mt_err_set(err, MT_E_INVAL, "--slots: expected 1 to 1024, got '%s'", o->slots);
        d->cfg.slots = (uint32_t)n;
    }
    if (o->budget && mt_bytesize_parse(o->budget, &d->cfg.memory_budget, err))
        return mt_err_prefix(err, "--budget: ");
    return config_finish(&d->cfg, err);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* How long the last replies (the streams' ends) may wait for clients that
 * do not read them: a client that never reads must not keep the daemon up. */
#define DRAIN_MS 2000

/* Every worker is gone: end the streams, let the last replies go out, then
 * close everything; uv_run returns. Called again by the tick until every
 * connection is closed or DRAIN_MS has passed. */
static void finish_shutdown(struct daemon *d)
{
    int64_t now = mt_now_ms();
    if (!d->drain_until_ms) {
        d->drain_until_ms = now + DRAIN_MS;
        watch_end_all(d);
        retention_stop(d);
        tidy_close(d);
        promfile_stop(d);
        close_handle((uv_handle_t *)&d->sig_term);
        close_handle((uv_handle_t *)&d->sig_int);
        close_handle((uv_handle_t *)&d->sig_hup);
    }
    int late = now >= d->drain_until_ms, open = 0;
    for (struct conn *c = d->conns; c; c = c->next) {
        if (c->closing)
            continue;
        c->close_after_write = 1;
        if (c->queued == 0 || late) {
            if (c->queued)
                log_warn("client pid %ld: %zu bytes of replies unread at shutdown; closing",
                         (long)c->pid, c->queued);
            conn_close(c);
        } else {
            open++;
        }
    }
    if (!open)
        close_handle((uv_handle_t *)&d->tick);
}

static void begin_shutdown(struct daemon *d, const char *why)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    log_info("%s: stopping (%d running job%s will checkpoint and stop)", why, d->running,
             d->running == 1 ? "" : "s");
    notify_send("STOPPING=1");
    server_stop(d);
    jobs_shutdown(d);
    if (d->running == 0)
        finish_shutdown(d);
}

static void on_tick(uv_timer_t *t)
{
    struct daemon *d = t->data;
    struct mt_err err = {0};
    if (store_flush(d->store, &err))
        log_err("%s", err.msg);
    if (d->stopping && d->running == 0)
        finish_shutdown(d);
}

static void on_signal(uv_signal_t *s, int sig)
{
    struct daemon *d = s->data;
    if (sig == SIGHUP) {
        struct mt_config fresh;
        struct mt_err err = {0};
        char changed[1024];
        notify_reloading();
        if (config_reload_file(&d->cfg, &fresh, &err)) {
            log_err("reload: %s; keeping the running configuration", err.msg);
        } else {
            config_apply_reload(&d->cfg, &fresh, changed, sizeof changed);
            config_free(&fresh);
            log_info("reload: %s", changed);
            jobs_schedule(d);
            retention_reload(d);
        }
        notify_send("READY=1");
        return;
    }
    begin_shutdown(d, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static int start(struct daemon *d, struct mt_err *err)
{
    int rc;
    /* The first start on a store from before schema 5 rewrites it once
     * (VACUUM, store.c): a store of several GB can take longer than
     * systemd's default start timeout of 90 s. */
    notify_send("EXTEND_TIMEOUT_USEC=1800000000");
    if ((rc = config_ensure_parent_dir(d->cfg.db_path, 0700, err)) ||
        (rc = store_open(&d->store, d->cfg.db_path, err)))
        return rc;
    if (store_opened_empty(d->store))
        log_warn("store: %s was an empty file (0 bytes): initialised as a new store",
                 d->cfg.db_path);
    if (store_opened_vacuum_ms(d->store) >= 0)
        log_info("store: %s rewritten once (VACUUM, %.1f s) to give removed rows' space back "
                 "from now on (auto_vacuum incremental)", d->cfg.db_path,
                 (double)store_opened_vacuum_ms(d->store) / 1000.0);
    if ((rc = jobs_load(d, err)) || (rc = server_listen(d, err)))
        return rc;
    uv_timer_init(d->loop, &d->tick);
    d->tick.data = d;
    uv_timer_start(&d->tick, on_tick, TICK_MS, TICK_MS);
    tidy_init(d);
    retention_start(d);
    uv_signal_t *sigs[] = {&d->sig_term, &d->sig_int, &d->sig_hup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(d->loop, sigs[i]);
        sigs[i]->data = d;
        uv_signal_start(sigs[i], on_signal, nums[i]);
    }
    return promfile_start(d, err);
}

int main(int argc, char **argv)
{
    struct opts o;
    struct daemon d;
    struct mt_err err = {0};
    char a[32];
    parse_args(argc, argv, &o);
    log_init(o.verbose ? LOG_DEBUG : LOG_INFO, 0);
    signal(SIGPIPE, SIG_IGN);
    memset(&d, 0, sizeof d);
    d.loop = uv_default_loop();
    d.conn_handler = &dispatch_conn_handler; /* conn.c knows nothing of dispatch.c */
    d.started_ms = mt_now_ms();
    if (load_config(&d, &o, &err)) {
        log_err("configuration: %s", err.msg);
        config_free(&d.cfg);
        return 1;
    }
    if (start(&d, &err)) {
        log_err("%s", err.msg);
        server_stop(&d);
        jobs_free_all(&d);
        store_close(d.store);
        uv_run(d.loop, UV_RUN_NOWAIT);
        config_free(&d.cfg);
        return 1;
    }
    log_info("memtraind %s listening on %s; store %s (schema %d); %u slot%s, budget %s, worker %s",
             MT_VERSION, d.cfg.socket_path, d.cfg.db_path, store_schema_version(d.store),
             d.cfg.slots, d.cfg.slots == 1 ? "" : "s",
             mt_fmt_bytes(a, sizeof a, (double)d.cfg.memory_budget), d.cfg.worker_path);
    jobs_schedule(&d);
    notify_send("READY=1");
    uv_run(d.loop, UV_RUN_DEFAULT);

    jobs_free_all(&d);
    promfile_free(&d);
    store_close(d.store);
    int rc = uv_loop_close(d.loop);
    if (rc)
        log_err("the loop still had open handles at exit: %s", uv_strerror(rc));
    log_info("stopped");
    config_free(&d.cfg);
    return rc ? 1 : 0;
}
