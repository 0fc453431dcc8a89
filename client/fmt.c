/* fmt.c: job states, byte counts, durations, tables and the JSON emitter
 * (fmt.h). Output only: mtctl parses no JSON. */
#include "fmt.h"

#include <ctype.h>
#include <math.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "memtrain/err.h"

/* ------------------------------------------------------------------ states */

static const char *const state_names[] = {
    [MEMTRAIN__JOB_STATE__JOB_STATE_UNSPECIFIED] = "UNSPECIFIED",
    [MEMTRAIN__JOB_STATE__QUEUED] = "QUEUED",
    [MEMTRAIN__JOB_STATE__RUNNING] = "RUNNING",
    [MEMTRAIN__JOB_STATE__COMPLETED] = "COMPLETED",
    [MEMTRAIN__JOB_STATE__FAILED] = "FAILED",
    [MEMTRAIN__JOB_STATE__CANCELLED] = "CANCELLED",
    [MEMTRAIN__JOB_STATE__OUT_OF_MEMORY] = "OUT_OF_MEMORY",
    [MEMTRAIN__JOB_STATE__INTERRUPTED] = "INTERRUPTED",
};
#define N_STATES ((int)(sizeof state_names / sizeof state_names[0]))

const char *fmt_state(int state)
{
    return state >= 0 && state < N_STATES ? state_names[state] : "UNKNOWN";
}

int fmt_parse_state(const char *name)
{
    char norm[32];
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof norm)
        return -1;
    for (size_t i = 0; i <= n; i++)
        norm[i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    if (strcmp(norm, "OOM") == 0)
        return MEMTRAIN__JOB_STATE__OUT_OF_MEMORY;
    if (strcmp(norm, "CANCELED") == 0)
        return MEMTRAIN__JOB_STATE__CANCELLED;
    for (int s = MEMTRAIN__JOB_STATE__QUEUED; s < N_STATES; s++)
        if (strcmp(norm, state_names[s]) == 0)
            return s;
    return -1;
}

int fmt_state_final(int state)
{
    return state == MEMTRAIN__JOB_STATE__COMPLETED || state == MEMTRAIN__JOB_STATE__FAILED ||
           state == MEMTRAIN__JOB_STATE__CANCELLED || state == MEMTRAIN__JOB_STATE__OUT_OF_MEMORY;
}

int fmt_state_exit(int state)
{
    switch (state) {
    case MEMTRAIN__JOB_STATE__COMPLETED: return 0;
    case MEMTRAIN__JOB_STATE__FAILED: return 10;
    case MEMTRAIN__JOB_STATE__CANCELLED: return 11;
    case MEMTRAIN__JOB_STATE__OUT_OF_MEMORY: return 12;
    case MEMTRAIN__JOB_STATE__INTERRUPTED: return 13;
    }
    return 1;
}

const char *fmt_reason(const Memtrain__Job *job)
{
    /* "CANCELLED: cancelled" says nothing twice */
    return strcasecmp(job->reason, fmt_state(job->state)) == 0 ? "" : job->reason;
}

/* ------------------------------------------------------- numbers and times */

char *fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
    return mt_fmt_bytes(buf, len, (double)bytes);
}

char *fmt_duration(char *buf, size_t len, double seconds)
{
    long s = seconds > 0 && seconds < 1e12 ? (long)seconds : 0;
    if (s < 60)
        snprintf(buf, len, "%lds", s);
    else if (s < 3600)
        snprintf(buf, len, "%ldm%02lds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%ldh%02ldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
    return buf;
}

char *fmt_time(char *buf, size_t len, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !localtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
        snprintf(buf, len, "-");
    return buf;
}

char *fmt_lr(char *buf, size_t len, double lr)
{
    snprintf(buf, len, "%.4g", lr);
    return buf;
}

char *fmt_bar(char *buf, size_t len, double fraction)
{
    double f = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
    int full = (int)(f * FMT_BAR_WIDTH + 0.5);
    size_t n = 0;
    if (len < FMT_BAR_WIDTH + 8) {
        snprintf(buf, len, "%.0f%%", fraction * 100);
        return buf;
    }
    buf[n++] = '[';
    for (int i = 0; i < FMT_BAR_WIDTH; i++)
        buf[n++] = i < full ? '#' : '-';
    snprintf(buf + n, len - n, "] %3.0f%%", fraction * 100);
    return buf;
}

char *fmt_percent(char *buf, size_t len, double fraction)
{
    snprintf(buf, len, "%.2f%%", fraction * 100.0);
    return buf;
}

const char *fmt_user(uint32_t uid, char *buf, size_t len)
{
    static struct {
        uint32_t uid;
        char name[64];
    } cache[16];
    static int n_cache;
    for (int i = 0; i < n_cache; i++)
        if (cache[i].uid == uid) {
            snprintf(buf, len, "%s", cache[i].name);
            return buf;
        }
    struct passwd pw, *res = NULL;
    char tmp[4096];
    if (getpwuid_r((uid_t)uid, &pw, tmp, sizeof tmp, &res) == 0 && res && res->pw_name)
        snprintf(buf, len, "%s", res->pw_name);
    else
        snprintf(buf, len, "%u", uid);
    if (n_cache < (int)(sizeof cache / sizeof cache[0])) {
        cache[n_cache].uid = uid;
        snprintf(cache[n_cache].name, sizeof cache[n_cache].name, "%s", buf);
        n_cache++;
    }
    return buf;
}

/* "784-256-256-10 relu, kaiming init"; per-layer activations in brackets. */
/* One layer-list entry, compact: conv20k5, conv64k3s2p1, maxpool2, res128s2,
 * dense10, relu, bn, gap. */
static int fmt_layer_node(char *buf, size_t len, const Memtrain__LayerNode *l)
{
    const char *k = l->kind;
    char sz[32] = "", st[16] = "", pd[16] = "";
    if (l->kernel_h && l->kernel_h == l->kernel_w)
        snprintf(sz, sizeof sz, "%u", l->kernel_h);
    else if (l->kernel_h)
        snprintf(sz, sizeof sz, "%ux%u", l->kernel_h, l->kernel_w);
    if (l->stride > 1 && !(strstr(k, "pool") && l->stride == l->kernel_h))
        snprintf(st, sizeof st, "s%u", l->stride);
    if (l->padding)
        snprintf(pd, sizeof pd, "p%u", l->padding);
    if (strcmp(k, "conv") == 0)
        return snprintf(buf, len, "conv%uk%s%s%s%s", l->units, sz, st, pd, l->no_bias ? "nb" : "");
    if (strcmp(k, "dense") == 0)
        return snprintf(buf, len, "dense%u%s", l->units, l->no_bias ? "nb" : "");
    if (strcmp(k, "maxpool") == 0 || strcmp(k, "avgpool") == 0)
        return snprintf(buf, len, "%s%s%s", k, sz, st);
    if (strcmp(k, "residual") == 0)
        return snprintf(buf, len, "res%u%s%s%s", l->units, st,
                        l->activation[0] && strcmp(l->activation, "relu") ? "-" : "",
                        l->activation[0] && strcmp(l->activation, "relu") ? l->activation : "");
    if (strcmp(k, "act") == 0)
        return snprintf(buf, len, "%s", l->activation[0] ? l->activation : "relu");
    if (strcmp(k, "batchnorm") == 0)
        return snprintf(buf, len, "bn");
    if (strcmp(k, "layernorm") == 0)
        return snprintf(buf, len, "ln");
    if (strcmp(k, "globalavgpool") == 0)
        return snprintf(buf, len, "gap");
    return snprintf(buf, len, "%s", k);
}

/* A layer list: "1x28x28 conv20k5 relu maxpool2 ... dense10, kaiming init". */
static char *fmt_layer_list(char *buf, size_t len, const Memtrain__ModelSpec *m)
{
    size_t n = 0;
    if (m->n_input_shape == 3)
        n += (size_t)snprintf(buf, len, "%ux%ux%u", m->input_shape[0], m->input_shape[1],
                              m->input_shape[2]);
    else
        n += (size_t)snprintf(buf, len, "in");
    for (size_t i = 0; i < m->n_layers && n + 1 < len; i++) {
        buf[n++] = ' ';
        n += (size_t)fmt_layer_node(buf + n, len - n, m->layers[i]);
    }
    if (n < len)
        snprintf(buf + n, len - n, ", %s init", m->init[0] ? m->init : "kaiming");
    return buf;
}

char *fmt_model(char *buf, size_t len, const Memtrain__ModelSpec *m)
{
    const char *act = m->activation[0] ? m->activation : "relu";
    size_t n = 0;
    if (m->n_layers)
        return fmt_layer_list(buf, len, m);
    if (m->input)
        n += (size_t)snprintf(buf + n, len - n, "%u", m->input);
    else
        n += (size_t)snprintf(buf + n, len - n, "in");
    for (size_t i = 0; i < m->n_hidden && n < len; i++) {
        const char *a = m->hidden[i]->activation;
        n += (size_t)snprintf(buf + n, len - n, "-%u", m->hidden[i]->width);
        if (a[0] && strcmp(a, act) != 0 && n < len)
            n += (size_t)snprintf(buf + n, len - n, "(%s)", a);
    }
    if (n < len) {
        if (m->classes)
            n += (size_t)snprintf(buf + n, len - n, "-%u", m->classes);
        else
            n += (size_t)snprintf(buf + n, len - n, "-out");
    }
    if (n < len)
        snprintf(buf + n, len - n, " %s, %s init", act, m->init[0] ? m->init : "kaiming");
    return buf;
}

/* ------------------------------------------------------------------ tables */

void table_init(struct table *t, int ncols, const char *const *head, const char *right)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->head = head;
    t->right = right;
}

void table_add(struct table *t, const char *const *cells)
{
    if (t->oom)
        return;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **p = realloc(t->cells, cap * (size_t)t->ncols * sizeof *p);
        if (!p) {
            t->oom = 1;
            return;
        }
        t->cells = p;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * (size_t)t->ncols;
    for (int i = 0; i < t->ncols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "-");
        if (!row[i]) {
            while (i-- > 0)
                free(row[i]);
            t->oom = 1;
            return;
        }
    }
    t->nrows++;
}

/* Display width of UTF-8 text: one column per code point. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

static void print_cell(FILE *f, const char *s, size_t width, int right, int last)
{
    size_t w = text_width(s), pad = width > w ? width - w : 0;
    if (right)
        fprintf(f, "%*s", (int)pad, "");
    fputs(s, f);
    if (!right && !last)
        fprintf(f, "%*s", (int)pad, "");
}

int table_print(const struct table *t, FILE *f)
{
    size_t width[64] = {0};
    int nc = t->ncols < 64 ? t->ncols : 64;
    for (int c = 0; c < nc; c++) {
        if (t->head)
            width[c] = text_width(t->head[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t w = text_width(t->cells[r * (size_t)t->ncols + (size_t)c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (long r = t->head ? -1 : 0; r < (long)t->nrows; r++) {
        const char *const *row = r < 0 ? (const char *const *)t->head
                                       : (const char *const *)t->cells + (size_t)r * (size_t)t->ncols;
        int last = nc - 1;  /* trailing empty cells print nothing, not spaces */
        while (last > 0 && row[last][0] == '\0')
            last--;
        for (int c = 0; c <= last; c++) {
            int right = t->right && t->right[c] == 'r';
            print_cell(f, row[c], width[c], right, c == last);
            if (c < last)
                fputs("  ", f);
        }
        fputc('\n', f);
    }
    return t->oom ? -1 : 0;
}

/* How long the job has run: to its end, or to now while it runs; "-" when
 * it never started. */
char *fmt_elapsed(char *buf, size_t len, const Memtrain__Job *job, int64_t now)
{
    if (job->started_at <= 0)
        return snprintf(buf, len, "-"), buf;
    int64_t end = job->finished_at > 0 ? job->finished_at : now;
    return fmt_duration(buf, len, (double)(end - job->started_at) / 1000.0);
}

void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int table_print_csv(const struct table *t, FILE *f)
{
    for (long r = t->head ? -1 : 0; r < (long)t->nrows; r++) {
        const char *const *row = r < 0 ? (const char *const *)t->head
                                       : (const char *const *)t->cells + (size_t)r * (size_t)t->ncols;
        for (int c = 0; c < t->ncols; c++) {
            if (c)
                fputc(',', f);
            csv_field(f, row[c]);
        }
        fputc('\n', f);
    }
    return t->oom ? -1 : 0;
}

void table_free(struct table *t)
{
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

/* -------------------------------------------------------------------- JSON */

void json_write_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* The comma and the member name before a value. */
static void json_sep(struct json *j, const char *key)
{
    if (j->depth > 0) {
        if (!j->first[j->depth - 1])
            fputc(',', j->f);
        j->first[j->depth - 1] = 0;
    }
    if (key) {
        json_write_string(j->f, key);
        fputc(':', j->f);
    }
}

static void json_open(struct json *j, const char *key, char c)
{
    json_sep(j, key);
    fputc(c, j->f);
    if (j->depth < JSON_MAX_DEPTH) {
        j->first[j->depth] = 1;
        j->close[j->depth] = c == '{' ? '}' : ']';
        j->depth++;
    }
}

static void json_close(struct json *j)
{
    if (j->depth > 0) {
        j->depth--;
        fputc(j->close[j->depth], j->f);
    }
}

void json_begin(struct json *j, FILE *f)
{
    j->f = f;
    j->depth = 0;
    json_open(j, NULL, '{');
    json_u64(j, "schema_version", 1);
}

void json_end(struct json *j)
{
    while (j->depth > 0)
        json_close(j);
    fputc('\n', j->f);
    fflush(j->f);
}

void json_obj(struct json *j, const char *key) { json_open(j, key, '{'); }
void json_obj_end(struct json *j) { json_close(j); }
void json_arr(struct json *j, const char *key) { json_open(j, key, '['); }
void json_arr_end(struct json *j) { json_close(j); }

void json_str(struct json *j, const char *key, const char *s)
{
    json_sep(j, key);
    if (s)
        json_write_string(j->f, s);
    else
        fputs("null", j->f);
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
    json_sep(j, key);
    fprintf(j->f, "%llu", (unsigned long long)v);
}

void json_i64(struct json *j, const char *key, int64_t v)
{
    json_sep(j, key);
    fprintf(j->f, "%lld", (long long)v);
}

void json_double(struct json *j, const char *key, double v)
{
    json_sep(j, key);
    if (isfinite(v))
        fprintf(j->f, "%.15g", v);
    else
        fputs("null", j->f);
}

void json_float(struct json *j, const char *key, float v)
{
    json_sep(j, key);
    if (isfinite(v))
        fprintf(j->f, "%.7g", (double)v);
    else
        fputs("null", j->f);
}

void json_bool(struct json *j, const char *key, int v)
{
    json_sep(j, key);
    fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j, const char *key)
{
    json_sep(j, key);
    fputs("null", j->f);
}

const char *fmt_mem_label(size_t i)
{
    static const char *const more[FMT_MEM_ROWS - FMT_MEM_CATEGORIES] = {
        "peak total", "phase forward", "phase gradient", "phase update",
    };
    if (i < FMT_MEM_CATEGORIES)
        return mt_mem_cat_name((enum mt_mem_cat)i);
    return i < FMT_MEM_ROWS ? more[i - FMT_MEM_CATEGORIES] : "?";
}

uint64_t fmt_mem_at(const Memtrain__MemoryStats *m, size_t i)
{
    if (!m)
        return 0;
    const uint64_t v[FMT_MEM_ROWS] = {
        m->params, m->grads, m->optimizer, m->activations, m->workspace, m->data,
        m->peak_total, m->phase_peak_forward, m->phase_peak_gradient, m->phase_peak_update,
    };
    return i < FMT_MEM_ROWS ? v[i] : 0;
}
