/* config.c: memtraind's settings: defaults from the environment and the
 * machine, memtraind.yaml (a flat mapping read with libyaml's event parser),
 * size and duration parsing, SIGHUP reload and directory creation.
 *
 * Not here: command-line parsing (the daemon's main) and acting on a change
 * (the job scheduler reads the live struct each time it starts a job). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

#include "memtrain/age.h"
#include "memtrain/bytesize.h"
#include "memtrain/sockpath.h"
#include "memtrain/yamlwalk.h"

#ifndef MT_LIBEXECDIR
#define MT_LIBEXECDIR "/usr/local/libexec"
#endif

#define WORKER_NAME "memtrain-worker"

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *dup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* A set, non-empty environment variable; for systemd's directory variables
 * (which may list several paths separated by ':') only the first entry. */
static char *env_first(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return NULL;
    size_t n = strcspn(v, ":");
    if (n == 0)
        return NULL;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, v, n);
        s[n] = '\0';
    }
    return s;
}

unsigned config_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : (unsigned)n;
}

/* MemTotal from /proc/meminfo; sysinfo() when /proc is hidden (ProcSubset=pid). */
static uint64_t mem_total(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        unsigned long long kb = 0;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
                break;
        fclose(f);
        if (kb > 0)
            return (uint64_t)kb * 1024u;
    }
    struct sysinfo si;
    if (sysinfo(&si) == 0 && si.totalram > 0)
        return (uint64_t)si.totalram * (si.mem_unit ? si.mem_unit : 1);
    return (uint64_t)1 << 30;   /* nothing to go on: 1 GiB keeps the daemon usable */
}

static int is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* memtrain-worker beside /proc/self/exe (the build tree, or bindir when both
 * are installed there); NULL when there is none. */
static char *worker_beside_self(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    char *p = dup_printf("%s/%s", self, WORKER_NAME);
    if (p && !is_executable(p)) {
        free(p);
        p = NULL;
    }
    return p;
}

static char *default_socket(void)
{
    char *d = env_first("RUNTIME_DIRECTORY");
    if (d) {
        char *p = dup_printf("%s/memtraind.sock", d);
        free(d);
        return p;
    }
    char p[MT_SOCKET_PATH_LEN];
    mt_socket_user_default(p, sizeof p);   /* the list mtctl looks in */
    return strdup(p);
}

/* NULL with *oom = 0 when no home directory can be found. */
static char *default_db(int *oom)
{
    char *p = NULL;
    *oom = 0;
    char *d = env_first("STATE_DIRECTORY");
    if (d) {
        p = dup_printf("%s/memtrain.db", d);
        free(d);
    } else if (getenv("XDG_STATE_HOME") && *getenv("XDG_STATE_HOME")) {
        p = dup_printf("%s/memtrain/memtrain.db", getenv("XDG_STATE_HOME"));
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            struct passwd *pw = getpwuid(geteuid());
            home = pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
        }
        if (!home)
            return NULL;
        p = dup_printf("%s/.local/state/memtrain/memtrain.db", home);
    }
    *oom = p == NULL;
    return p;
}

static char *default_file(void)
{
    char *d = env_first("CONFIGURATION_DIRECTORY");
    char *p = d ? dup_printf("%s/memtraind.yaml", d) : strdup(CONFIG_DEFAULT_FILE);
    free(d);
    return p;
}

/* ------------------------------------------------------------------------ */
/* Defaults, finish, free                                                   */

void config_free(struct mt_config *c)
{
    if (!c)
        return;
    free(c->config_path);
    free(c->socket_path);
    free(c->db_path);
    free(c->worker_path);
    free(c->metrics_textfile);
    memset(c, 0, sizeof *c);
}

static unsigned auto_threads(uint32_t slots)
{
    unsigned t = config_online_cpus() / (slots ? slots : 1);
    return t ? t : 1;
}

int config_defaults(struct mt_config *c)
{
    memset(c, 0, sizeof *c);
    c->slots = 1;
    c->threads_auto = 1;
    c->threads_per_job = auto_threads(1);
    c->memory_budget = mem_total() / 10 * 8;
    c->hard_limit_margin = (uint64_t)256 << 20;
    c->frame_max = (uint64_t)16 << 20;
    c->max_connections = 256;
    c->output_buffer_max = (uint64_t)64 << 20;
    c->idle_timeout_ms = 10 * 60 * 1000;
    c->frame_timeout_ms = 30 * 1000;
    c->cancel_grace_ms = 10000;
    c->step_every = 10;
    c->memory_sample_ms = 1000;
    c->keep_checkpoints = 3;
    c->checkpoint_every = 0;
    c->share_results = MT_SHARE_OWNER;
    c->retention_keep_checkpoints = -1;
    c->retention_interval_ms = 24ull * 3600 * 1000;
    c->metrics_interval_ms = 15000;

    int db_oom = 0;
    c->socket_path = default_socket();
    c->db_path = default_db(&db_oom);
    c->config_path = default_file();
    char *w = env_first("MEMTRAIN_WORKER");
    if (!w)
        w = worker_beside_self();
    if (!w)
        w = strdup(MT_LIBEXECDIR "/" WORKER_NAME);
    c->worker_path = w;
    if (!c->socket_path || db_oom || !c->config_path || !c->worker_path) {
        config_free(c);
        return MT_E_NOMEM;
    }
    if (access(c->config_path, F_OK) != 0) {
        free(c->config_path);
        c->config_path = NULL;
    }
    return 0;
}

int config_finish(struct mt_config *c, struct mt_err *err)
{
    char a[32], b[32];
    if (c->threads_auto)
        c->threads_per_job = auto_threads(c->slots);
    if (!c->socket_path || !*c->socket_path)
        return mt_err_set(err, MT_E_INVAL, "socket_path: not set");
    if (strlen(c->socket_path) >= sizeof ((struct sockaddr_un *)0)->sun_path)
        return mt_err_set(err, MT_E_INVAL, "socket_path: %zu bytes is longer than the %zu an "
                          "AF_UNIX address holds: %s", strlen(c->socket_path),
                          sizeof ((struct sockaddr_un *)0)->sun_path - 1, c->socket_path);
    if (!c->db_path || !*c->db_path)
        return mt_err_set(err, MT_E_INVAL, "db_path: no default (neither $STATE_DIRECTORY, "
                          "$XDG_STATE_HOME nor a home directory); set db_path");
    if (!c->worker_path || !*c->worker_path)
        return mt_err_set(err, MT_E_INVAL, "worker_path: not set");
    if (c->memory_budget == 0)
        return mt_err_set(err, MT_E_INVAL, "memory_budget: must be above 0");
    if (c->max_job_memory > c->memory_budget)
        return mt_err_set(err, MT_E_INVAL, "max_job_memory: %s is above memory_budget %s",
                          mt_fmt_bytes(a, sizeof a, (double)c->max_job_memory),
                          mt_fmt_bytes(b, sizeof b, (double)c->memory_budget));
    const char *key;
    uint64_t cap = config_job_cap(c, &key);
    if (c->default_job_memory_limit > cap)
        return mt_err_set(err, MT_E_INVAL, "default_job_memory_limit: %s is above %s %s",
                          mt_fmt_bytes(a, sizeof a, (double)c->default_job_memory_limit), key,
                          mt_fmt_bytes(b, sizeof b, (double)cap));
    return 0;
}

uint64_t config_job_cap(const struct mt_config *c, const char **key)
{
    if (key)
        *key = c->max_job_memory ? "max_job_memory" : "memory_budget";
    return c->max_job_memory ? c->max_job_memory : c->memory_budget;
}

uint64_t config_job_default_limit(const struct mt_config *c)
{
    return c->default_job_memory_limit ? c->default_job_memory_limit : c->max_job_memory;
}

/* ------------------------------------------------------------------------ */
/* Sizes and durations                                                      */

int config_parse_duration(const char *text, uint64_t *ms)
{
    static const struct mt_unit units[] = {   /* in milliseconds */
        {"", 1}, {"ms", 1}, {"s", 1000}, {"sec", 1000}, {"m", 60000}, {"min", 60000},
        {"h", 3600000},
    };
    return mt_unit_parse(text, units, sizeof units / sizeof units[0], UINT32_MAX, ms)
               ? MT_E_INVAL : 0;
}

/* ------------------------------------------------------------------------ */
/* The key table                                                            */

enum ktype {
    K_PATH,      /* a non-empty string */
    K_SIZE,      /* bytes, mt_bytesize_parse */
    K_DURATION,  /* milliseconds into a uint32_t */
    K_COUNT,     /* an integer in [min, max] into a uint32_t */
    K_THREADS,   /* K_COUNT or "auto" */
    K_SHARE,     /* share_results: owner | group, into a uint32_t (enum mt_share) */
    K_AGE,       /* milliseconds into a uint64_t, memtrain/age.h (30d, 12h) */
    K_KEEP,      /* a count or "all" (-1) into an int32_t */
    K_SECTION,   /* a mapping of its own keys (retention: retention_keys) */
};

struct key {
    const char *name;
    enum ktype type;
    size_t offset;
    uint64_t min, max;   /* bounds for sizes, durations and counts */
};

#define F(field) offsetof(struct mt_config, field)
#define GiB (1ull << 30)

static const struct key retention_keys[] = {
    {"finished_keep_checkpoints", K_KEEP, F(retention_keep_checkpoints), 0, 10000},
    {"checkpoints_max_age", K_AGE, F(retention_checkpoints_max_age_ms), 0, UINT64_MAX},
    {"jobs_max_age", K_AGE, F(retention_jobs_max_age_ms), 0, UINT64_MAX},
    {"interval", K_AGE, F(retention_interval_ms), 1000, UINT64_MAX},
};

static const struct key keys[] = {
    {"socket_path", K_PATH, F(socket_path), 0, 0},
    {"db_path", K_PATH, F(db_path), 0, 0},
    {"worker_path", K_PATH, F(worker_path), 0, 0},
    {"slots", K_COUNT, F(slots), 1, 1024},
    {"threads_per_job", K_THREADS, F(threads_per_job), 1, 4096},
    {"memory_budget", K_SIZE, F(memory_budget), 1, (uint64_t)INT64_MAX},
    {"max_job_memory", K_SIZE, F(max_job_memory), 0, (uint64_t)INT64_MAX},
    {"default_job_memory_limit", K_SIZE, F(default_job_memory_limit), 0, (uint64_t)INT64_MAX},
    {"hard_limit_margin", K_SIZE, F(hard_limit_margin), 0, (uint64_t)INT64_MAX},
    {"frame_max", K_SIZE, F(frame_max), 1024, GiB},
    {"max_connections", K_COUNT, F(max_connections), 1, 65536},
    {"output_buffer_max", K_SIZE, F(output_buffer_max), 1 << 20, (uint64_t)INT64_MAX},
    {"idle_timeout", K_DURATION, F(idle_timeout_ms), 100, UINT32_MAX},
    {"frame_timeout", K_DURATION, F(frame_timeout_ms), 100, UINT32_MAX},
    {"cancel_grace_ms", K_DURATION, F(cancel_grace_ms), 0, UINT32_MAX},
    {"step_every", K_COUNT, F(step_every), 0, UINT32_MAX},
    {"memory_sample_ms", K_DURATION, F(memory_sample_ms), 10, UINT32_MAX},
    {"keep_checkpoints", K_COUNT, F(keep_checkpoints), 1, 10000},
    {"checkpoint_every", K_COUNT, F(checkpoint_every), 0, UINT32_MAX},
    {"share_results", K_SHARE, F(share_results), 0, 0},
    {"retention", K_SECTION, 0, 0, 0},   /* retention_keys */
    {"metrics_textfile", K_PATH, F(metrics_textfile), 0, 0},
    {"metrics_interval", K_DURATION, F(metrics_interval_ms), 100, UINT32_MAX},
};

#define NKEYS (sizeof keys / sizeof keys[0])
#define NRETENTION_KEYS (sizeof retention_keys / sizeof retention_keys[0])

/* ------------------------------------------------------------------------ */
/* Reading the file                                                         */

static const char *expected(const struct key *k)
{
    switch (k->type) {
    case K_PATH: return "a path";
    case K_SIZE: return MT_BYTESIZE_FORMS;
    case K_DURATION: return "a duration such as 10s, 500ms or a number of milliseconds";
    case K_THREADS: return "a positive integer or auto";
    case K_COUNT: return k->min > 0 ? "a positive integer" : "a non-negative integer";
    case K_SHARE: return "owner or group";
    case K_AGE: return MT_AGE_FORMS;
    case K_KEEP: return "a non-negative integer or all";
    case K_SECTION: return "a mapping";
    }
    return "a value";
}

/* Whole decimal digits only (no sign, no exponent) into *out. */
static int parse_count(const char *t, uint64_t *out)
{
    if (!*t || strspn(t, "0123456789") != strlen(t))
        return MT_E_INVAL;
    errno = 0;
    unsigned long long v = strtoull(t, NULL, 10);
    if (errno)
        return MT_E_INVAL;
    *out = v;
    return 0;
}

static int parse_mapping(struct mt_yaml *y, struct mt_config *c, const struct key *table,
                         size_t n);

/* Store the current value in the field `k` names; `line` is the key's. */
static int set_value(struct mt_yaml *y, struct mt_config *c, const struct key *k, size_t line)
{
    if (k->type == K_SECTION) {
        if (y->ev.type != YAML_MAPPING_START_EVENT)
            return mt_yaml_fail(y, line, "expected a mapping, got %s", mt_yaml_kind(y));
        return parse_mapping(y, c, retention_keys, NRETENTION_KEYS);
    }
    char shown[MT_SHOW_LEN + 4];
    const char *t;
    size_t len;
    int rc = mt_yaml_scalar(y, expected(k), &t, &len);
    if (rc)
        return rc;
    mt_err_show(shown, sizeof shown, t, len);
    if (len == 0 && y->ev.data.scalar.plain_implicit)
        return mt_yaml_fail(y, line, "expected %s, got nothing", expected(k));
    char *field = (char *)c + k->offset;
    uint64_t v = 0;
    char a[32], b[32];
    struct mt_err perr;
    switch (k->type) {
    case K_PATH: {
        if (len == 0)
            return mt_yaml_fail(y, line, "expected %s, got ''", expected(k));
        char *s = strdup(t);
        if (!s)
            return mt_err_set(y->err, MT_E_NOMEM, "%s: out of memory", y->file);
        char **dst = (char **)(void *)field;
        free(*dst);
        *dst = s;
        return 0;
    }
    case K_SIZE:
        if (mt_bytesize_parse(t, &v, &perr) != 0)
            return mt_yaml_fail(y, line, "%s", perr.msg);
        if (v < k->min || v > k->max)
            return mt_yaml_fail(y, line, "%s is outside %s to %s", shown,
                        mt_fmt_bytes(a, sizeof a, (double)k->min),
                        mt_fmt_bytes(b, sizeof b, (double)k->max));
        *(uint64_t *)(void *)field = v;
        return 0;
    case K_DURATION:
        if (config_parse_duration(t, &v) != 0)
            return mt_yaml_fail(y, line, "expected %s, got '%s'", expected(k), shown);
        if (v < k->min || v > k->max)
            return mt_yaml_fail(y, line, "%s is outside %llu ms to %llu ms", shown,
                        (unsigned long long)k->min, (unsigned long long)k->max);
        *(uint32_t *)(void *)field = (uint32_t)v;
        return 0;
    case K_AGE:
        if (mt_age_parse(t, &v, &perr) != 0)
            return mt_yaml_fail(y, line, "%s", perr.msg);
        if (v < k->min)
            return mt_yaml_fail(y, line, "%s is shorter than %llu ms", shown,
                                (unsigned long long)k->min);
        *(uint64_t *)(void *)field = v;
        return 0;
    case K_KEEP:
        if (strcmp(t, "all") == 0) {
            *(int32_t *)(void *)field = -1;
            return 0;
        }
        if (parse_count(t, &v) != 0 || v > k->max)
            return mt_yaml_fail(y, line, "expected %s up to %llu, got '%s'", expected(k),
                                (unsigned long long)k->max, shown);
        *(int32_t *)(void *)field = (int32_t)v;
        return 0;
    case K_SECTION:
        return MT_E_INVAL;   /* handled above */
    case K_SHARE:
        if (strcmp(t, "owner") == 0)
            *(uint32_t *)(void *)field = MT_SHARE_OWNER;
        else if (strcmp(t, "group") == 0)
            *(uint32_t *)(void *)field = MT_SHARE_GROUP;
        else
            return mt_yaml_fail(y, line, "expected %s, got '%s'", expected(k), shown);
        return 0;
    case K_THREADS:
    case K_COUNT:
        if (k->type == K_THREADS && strcmp(t, "auto") == 0) {
            c->threads_auto = 1;
            return 0;
        }
        if (parse_count(t, &v) != 0 || (k->min > 0 && v == 0))
            return mt_yaml_fail(y, line, "expected %s, got '%s'", expected(k), shown);
        if (v < k->min || v > k->max)
            return mt_yaml_fail(y, line, "%s is outside %llu to %llu", shown,
                        (unsigned long long)k->min, (unsigned long long)k->max);
        *(uint32_t *)(void *)field = (uint32_t)v;
        if (k->type == K_THREADS)
            c->threads_auto = 0;
        return 0;
    }
    return MT_E_INVAL;
}

/* A mapping of `table`'s keys (the top level, or a section's): key, value,
 * key, value, ... */
static int parse_mapping(struct mt_yaml *y, struct mt_config *c, const struct key *table,
                         size_t n)
{
    struct mt_yaml_map m;
    int rc;
    mt_yaml_map_begin(&m, table, n, sizeof table[0]);
    while ((rc = mt_yaml_map_next(y, &m)) == 1)
        if ((rc = set_value(y, c, &table[m.index], m.line)))
            return rc;
    return rc;
}

static int parse_stream(struct mt_yaml *y, struct mt_config *c)
{
    int rc, empty;
    if ((rc = mt_yaml_doc_begin(y, &empty)))
        return rc;
    if (empty)
        return 0;   /* an empty file, or only comments */
    if (y->ev.type == YAML_SCALAR_EVENT && y->ev.data.scalar.length == 0
        && y->ev.data.scalar.plain_implicit) {
        /* "---" alone: an empty document */
    } else if (y->ev.type != YAML_MAPPING_START_EVENT) {
        return mt_yaml_fail(y, mt_yaml_line(y), "expected a mapping of settings, got %s",
                            mt_yaml_kind(y));
    } else if ((rc = parse_mapping(y, c, keys, NKEYS))) {
        return rc;
    }
    return mt_yaml_doc_end(y);
}

int config_load_file(struct mt_config *c, const char *path, struct mt_err *err)
{
    if (path && (!c->config_path || strcmp(path, c->config_path) != 0)) {
        char *p = strdup(path);
        if (!p)
            return mt_err_set(err, MT_E_NOMEM, "%s: out of memory", path);
        free(c->config_path);
        c->config_path = p;
        c->config_required = 1;
    }
    if (!c->config_path)
        return config_finish(c, err);
    const char *file = c->config_path;

    FILE *f = fopen(file, "rb");
    if (!f) {
        if (errno == ENOENT && !c->config_required)
            return config_finish(c, err);
        return mt_err_set(err, MT_E_IO, "%s: %s", file, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return mt_err_set(err, MT_E_IO, "%s: not a regular file", file);
    }
    struct mt_yaml y;
    int rc = mt_yaml_init_file(&y, file, f, err);
    if (rc) {
        fclose(f);
        return rc;
    }
    rc = parse_stream(&y, c);
    mt_yaml_deinit(&y);
    if (ferror(f) && rc == 0)
        rc = mt_err_set(err, MT_E_IO, "%s: read error", file);
    fclose(f);
    if (rc)
        return rc;
    rc = config_finish(c, err);
    if (rc)
        mt_err_prefix(err, "%s: ", file);
    return rc;
}

const char *config_share_name(uint32_t share)
{
    return share == MT_SHARE_GROUP ? "group" : "owner";
}

/* ------------------------------------------------------------------------ */
/* Reload                                                                   */

int config_reload_file(const struct mt_config *live, struct mt_config *fresh,
                       struct mt_err *err)
{
    if (config_defaults(fresh) != 0)
        return mt_err_set(err, MT_E_NOMEM, "reload: out of memory");
    int rc = config_load_file(fresh, live->config_required ? live->config_path : NULL, err);
    if (rc)
        config_free(fresh);
    return rc;
}

struct summary {
    char *buf;
    size_t len, used;
    int changes;
};

static void say(struct summary *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct summary *s, const char *fmt, ...)
{
    if (!s->buf || s->len == 0 || s->used >= s->len - 1)
        return;
    if (s->used > 0) {
        int n = snprintf(s->buf + s->used, s->len - s->used, "; ");
        s->used += (size_t)n < s->len - s->used ? (size_t)n : s->len - s->used - 1;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->buf + s->used, s->len - s->used, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->used += (size_t)n < s->len - s->used ? (size_t)n : s->len - s->used - 1;
}

static void live_u32(struct summary *s, const char *name, uint32_t *dst, uint32_t v)
{
    if (*dst == v)
        return;
    say(s, "%s %lu -> %lu", name, (unsigned long)*dst, (unsigned long)v);
    *dst = v;
    s->changes++;
}

static void live_u64(struct summary *s, const char *name, uint64_t *dst, uint64_t v)
{
    if (*dst == v)
        return;
    say(s, "%s %llu -> %llu", name, (unsigned long long)*dst, (unsigned long long)v);
    *dst = v;
    s->changes++;
}

/* A count where -1 means "all". */
static void live_keep(struct summary *s, const char *name, int32_t *dst, int32_t v)
{
    if (*dst == v)
        return;
    char a[16], b[16];
    snprintf(a, sizeof a, "%ld", (long)*dst);
    snprintf(b, sizeof b, "%ld", (long)v);
    say(s, "%s %s -> %s", name, *dst < 0 ? "all" : a, v < 0 ? "all" : b);
    *dst = v;
    s->changes++;
}

static void live_size(struct summary *s, const char *name, uint64_t *dst, uint64_t v)
{
    if (*dst == v)
        return;
    char a[32], b[32];
    say(s, "%s %s -> %s", name, *dst ? mt_fmt_bytes(a, sizeof a, (double)*dst) : "0",
        v ? mt_fmt_bytes(b, sizeof b, (double)v) : "0");
    *dst = v;
    s->changes++;
}

static void fixed_str(struct summary *s, const char *name, const char *now, const char *next)
{
    if ((now == NULL) != (next == NULL) || (now && strcmp(now, next) != 0))
        say(s, "%s differs but needs a restart", name);
}

static void fixed_num(struct summary *s, const char *name, uint64_t now, uint64_t next)
{
    if (now != next)
        say(s, "%s differs but needs a restart", name);
}

int config_apply_reload(struct mt_config *live, const struct mt_config *fresh,
                        char *changed, size_t len)
{
    struct summary s = {.buf = changed, .len = len};
    if (changed && len)
        changed[0] = '\0';
    live_u32(&s, "slots", &live->slots, fresh->slots);
    live_u32(&s, "threads_per_job", &live->threads_per_job, fresh->threads_per_job);
    live->threads_auto = fresh->threads_auto;
    live_size(&s, "memory_budget", &live->memory_budget, fresh->memory_budget);
    live_size(&s, "max_job_memory", &live->max_job_memory, fresh->max_job_memory);
    live_size(&s, "default_job_memory_limit", &live->default_job_memory_limit,
              fresh->default_job_memory_limit);
    live_size(&s, "hard_limit_margin", &live->hard_limit_margin, fresh->hard_limit_margin);
    live_u32(&s, "cancel_grace_ms", &live->cancel_grace_ms, fresh->cancel_grace_ms);
    live_u32(&s, "step_every", &live->step_every, fresh->step_every);
    live_u32(&s, "memory_sample_ms", &live->memory_sample_ms, fresh->memory_sample_ms);
    live_u32(&s, "keep_checkpoints", &live->keep_checkpoints, fresh->keep_checkpoints);
    live_u32(&s, "checkpoint_every", &live->checkpoint_every, fresh->checkpoint_every);
    live_keep(&s, "retention.finished_keep_checkpoints", &live->retention_keep_checkpoints,
             fresh->retention_keep_checkpoints);
    live_u64(&s, "retention.checkpoints_max_age (ms)", &live->retention_checkpoints_max_age_ms,
             fresh->retention_checkpoints_max_age_ms);
    live_u64(&s, "retention.jobs_max_age (ms)", &live->retention_jobs_max_age_ms,
             fresh->retention_jobs_max_age_ms);
    live_u64(&s, "retention.interval (ms)", &live->retention_interval_ms,
             fresh->retention_interval_ms);
    if (live->share_results != fresh->share_results) {
        say(&s, "share_results %s -> %s", config_share_name(live->share_results),
            config_share_name(fresh->share_results));
        live->share_results = fresh->share_results;
        s.changes++;
    }
    fixed_str(&s, "socket_path", live->socket_path, fresh->socket_path);
    fixed_str(&s, "db_path", live->db_path, fresh->db_path);
    fixed_str(&s, "worker_path", live->worker_path, fresh->worker_path);
    fixed_num(&s, "frame_max", live->frame_max, fresh->frame_max);
    fixed_num(&s, "max_connections", live->max_connections, fresh->max_connections);
    fixed_num(&s, "output_buffer_max", live->output_buffer_max, fresh->output_buffer_max);
    fixed_num(&s, "idle_timeout", live->idle_timeout_ms, fresh->idle_timeout_ms);
    fixed_num(&s, "frame_timeout", live->frame_timeout_ms, fresh->frame_timeout_ms);
    fixed_str(&s, "metrics_textfile", live->metrics_textfile, fresh->metrics_textfile);
    fixed_num(&s, "metrics_interval", live->metrics_interval_ms, fresh->metrics_interval_ms);
    if (s.used == 0)
        say(&s, "no change");
    return s.changes;
}

/* ------------------------------------------------------------------------ */
/* Directories                                                              */

/* The last component exists: is it a directory we can trust with a socket
 * or a database? */
static int check_dir(const char *dir, struct mt_err *err)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return mt_err_set(err, MT_E_IO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return mt_err_set(err, MT_E_IO, "%s: exists and is not a directory", dir);
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return mt_err_set(err, MT_E_PERM, "%s: owned by uid %lu, not by us (uid %lu); remove it "
                          "or choose another path", dir, (unsigned long)st.st_uid,
                          (unsigned long)geteuid());
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
        return mt_err_set(err, MT_E_PERM, "%s: writable by %s (mode %04o); others could replace "
                          "what we put there", dir, st.st_mode & S_IWOTH ? "everyone" : "its group",
                          (unsigned)(st.st_mode & 07777));
    return 0;
}

int config_ensure_dir(const char *dir, mode_t mode, struct mt_err *err)
{
    if (!dir || !*dir)
        return mt_err_set(err, MT_E_INVAL, "empty directory path");
    size_t n = strlen(dir);
    char *p = strdup(dir);
    if (!p)
        return mt_err_set(err, MT_E_NOMEM, "%s: out of memory", dir);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    int rc = 0;
    /* Parents, left to right: each slash after the first character ends one. */
    for (char *s = strchr(p + 1, '/'); s && rc == 0; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            rc = mt_err_set(err, MT_E_IO, "%s: cannot create: %s", p, strerror(errno));
        *s = '/';
    }
    if (rc == 0) {
        if (mkdir(p, mode) == 0) {
            if (chmod(p, mode) != 0)   /* the umask trimmed it */
                rc = mt_err_set(err, MT_E_IO, "%s: chmod %04o: %s", p, (unsigned)mode,
                                strerror(errno));
        } else if (errno != EEXIST) {
            rc = mt_err_set(err, MT_E_IO, "%s: cannot create: %s", p, strerror(errno));
        } else {
            rc = check_dir(p, err);
        }
    }
    free(p);
    return rc;
}

int config_ensure_parent_dir(const char *file, mode_t mode, struct mt_err *err)
{
    if (!file || !*file)
        return mt_err_set(err, MT_E_INVAL, "empty file path");
    const char *slash = strrchr(file, '/');
    if (!slash)
        return config_ensure_dir(".", mode, err);
    if (slash == file)
        return config_ensure_dir("/", mode, err);
    char *dir = strndup(file, (size_t)(slash - file));
    if (!dir)
        return mt_err_set(err, MT_E_NOMEM, "%s: out of memory", file);
    int rc = config_ensure_dir(dir, mode, err);
    free(dir);
    return rc;
}
