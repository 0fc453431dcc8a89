/* yamlwalk.c: the libyaml event walk shared by the job spec reader and
 * memtraind.yaml (see include/memtrain/yamlwalk.h). */
#include "memtrain/yamlwalk.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Keep the file name for messages, control characters replaced. */
static void init_common(struct mt_yaml *y, const char *file, struct mt_err *err)
{
    memset(y, 0, sizeof *y);
    size_t n = 0;
    for (; file && file[n] && n + 1 < sizeof y->file; n++)
        y->file[n] = ((unsigned char)file[n] < 0x20 || file[n] == 0x7f) ? '?' : file[n];
    y->file[n] = '\0';
    y->err = err;
}

int mt_yaml_init_string(struct mt_yaml *y, const char *file, const char *text, size_t len,
                        struct mt_err *err)
{
    init_common(y, file, err);
    if (!yaml_parser_initialize(&y->parser))
        return mt_err_set(err, MT_E_NOMEM, "%s: out of memory", y->file);
    yaml_parser_set_input_string(&y->parser, (const unsigned char *)(text ? text : ""), len);
    return 0;
}

int mt_yaml_init_file(struct mt_yaml *y, const char *file, FILE *f, struct mt_err *err)
{
    init_common(y, file, err);
    if (!yaml_parser_initialize(&y->parser))
        return mt_err_set(err, MT_E_NOMEM, "%s: out of memory", y->file);
    yaml_parser_set_input_file(&y->parser, f);
    return 0;
}

void mt_yaml_deinit(struct mt_yaml *y)
{
    if (y->have_ev)
        yaml_event_delete(&y->ev);
    y->have_ev = 0;
    yaml_parser_delete(&y->parser);
}

size_t mt_yaml_line(const struct mt_yaml *y)
{
    return y->ev.start_mark.line + 1;
}

const char *mt_yaml_kind(const struct mt_yaml *y)
{
    switch (y->ev.type) {
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_SCALAR_EVENT: return "a scalar";
    default: return "nothing";
    }
}

int mt_yaml_fail(struct mt_yaml *y, size_t line, const char *fmt, ...)
{
    char text[MT_ERR_LEN], where[MT_YAML_FILE_LEN + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (line)
        snprintf(where, sizeof where, "%s:%zu", y->file, line);
    else
        snprintf(where, sizeof where, "%s", y->file);
    if (y->plen)
        mt_err_set(y->err, MT_E_INVAL, "%s: %s: %.400s", where, y->path, text);
    else
        mt_err_set(y->err, MT_E_INVAL, "%s: %.400s", where, text);
    return MT_E_INVAL;   /* a constant, so the compiler sees that callers return early */
}

static int syntax_error(struct mt_yaml *y)
{
    const yaml_parser_t *p = &y->parser;
    const char *problem = p->problem ? p->problem : "unknown problem";
    if (p->error == YAML_MEMORY_ERROR)
        return mt_err_set(y->err, MT_E_NOMEM, "%s: out of memory while parsing", y->file);
    if (p->error == YAML_READER_ERROR)
        return mt_err_set(y->err, MT_E_INVAL, "%s: YAML error: %s at byte %zu", y->file,
                          problem, p->problem_offset);
    if (p->context)
        return mt_err_set(y->err, MT_E_INVAL, "%s:%zu: YAML syntax error: %s (%s at line %zu)",
                          y->file, p->problem_mark.line + 1, problem, p->context,
                          p->context_mark.line + 1);
    return mt_err_set(y->err, MT_E_INVAL, "%s:%zu: YAML syntax error: %s", y->file,
                      p->problem_mark.line + 1, problem);
}

int mt_yaml_next(struct mt_yaml *y)
{
    if (y->have_ev) {
        yaml_event_delete(&y->ev);
        y->have_ev = 0;
    }
    if (!yaml_parser_parse(&y->parser, &y->ev))
        return syntax_error(y);
    y->have_ev = 1;
    if (y->ev.type == YAML_ALIAS_EVENT)
        return mt_yaml_fail(y, mt_yaml_line(y), "aliases are not supported");
    return 0;
}

int mt_yaml_doc_begin(struct mt_yaml *y, int *empty)
{
    int rc;
    *empty = 0;
    if ((rc = mt_yaml_next(y)) || (rc = mt_yaml_next(y)))   /* stream start, document start */
        return rc;
    if (y->ev.type == YAML_STREAM_END_EVENT) {
        *empty = 1;
        return 0;
    }
    return mt_yaml_next(y);
}

int mt_yaml_doc_end(struct mt_yaml *y)
{
    int rc;
    if ((rc = mt_yaml_next(y)) || (rc = mt_yaml_next(y)))   /* document end, stream end */
        return rc;
    if (y->ev.type != YAML_STREAM_END_EVENT)
        return mt_yaml_fail(y, mt_yaml_line(y), "more than one YAML document");
    return 0;
}

int mt_yaml_scalar(struct mt_yaml *y, const char *what, const char **text, size_t *len)
{
    *text = "";
    *len = 0;
    if (y->ev.type != YAML_SCALAR_EVENT)
        return mt_yaml_fail(y, mt_yaml_line(y), "expected %s, got %s", what, mt_yaml_kind(y));
    *text = (const char *)y->ev.data.scalar.value;
    *len = y->ev.data.scalar.length;
    if (memchr(*text, '\0', *len))
        return mt_yaml_fail(y, mt_yaml_line(y), "expected %s, got a value with a NUL byte", what);
    return 0;
}

int mt_yaml_is_null(const struct mt_yaml *y)
{
    const char *t = (const char *)y->ev.data.scalar.value;
    return y->ev.type == YAML_SCALAR_EVENT && y->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE
        && (t[0] == '\0' || strcmp(t, "~") == 0 || strcasecmp(t, "null") == 0);
}

int mt_yaml_bad_value(struct mt_yaml *y, const char *what, const char *text, size_t len)
{
    char shown[MT_SHOW_LEN + 4];
    mt_err_show(shown, sizeof shown, text, len);
    return mt_yaml_fail(y, mt_yaml_line(y), "expected %s, got '%s'", what, shown);
}

static size_t path_push(struct mt_yaml *y, const char *key, size_t len)
{
    size_t old = y->plen;
    char shown[MT_SHOW_LEN + 4];
    mt_err_show(shown, sizeof shown, key, len);
    snprintf(y->path + old, sizeof y->path - old, "%s%s", old ? "." : "", shown);
    y->plen = strlen(y->path);
    return old;
}

size_t mt_yaml_path_index(struct mt_yaml *y, int i)
{
    size_t old = y->plen;
    snprintf(y->path + old, sizeof y->path - old, "[%d]", i);
    y->plen = strlen(y->path);
    return old;
}

void mt_yaml_path_pop(struct mt_yaml *y, size_t old)
{
    y->plen = old;
    y->path[old] = '\0';
}

void mt_yaml_map_begin(struct mt_yaml_map *m, const void *keys, size_t n_keys, size_t stride)
{
    memset(m, 0, sizeof *m);
    m->keys = keys;
    m->n_keys = n_keys < MT_YAML_MAX_KEYS ? n_keys : MT_YAML_MAX_KEYS;
    m->stride = stride;
}

static const char *key_name(const struct mt_yaml_map *m, size_t i)
{
    const char *const *name = (const char *const *)(const void *)
        ((const char *)m->keys + i * m->stride);
    return *name;
}

static int unknown_key(struct mt_yaml *y, const struct mt_yaml_map *m, size_t line)
{
    char list[400];
    size_t n = 0;
    list[0] = '\0';
    for (size_t i = 0; i < m->n_keys && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", key_name(m, i));
    return mt_yaml_fail(y, line, "unknown key (expected one of: %s)", list);
}

int mt_yaml_map_next(struct mt_yaml *y, struct mt_yaml_map *m)
{
    if (m->in_key) {
        mt_yaml_path_pop(y, m->plen);
        m->in_key = 0;
    }
    int rc = mt_yaml_next(y);
    if (rc)
        return rc;
    if (y->ev.type == YAML_MAPPING_END_EVENT)
        return 0;
    size_t line = mt_yaml_line(y);
    if (y->ev.type != YAML_SCALAR_EVENT)
        return mt_yaml_fail(y, line, "expected a key, got %s", mt_yaml_kind(y));
    const char *name = (const char *)y->ev.data.scalar.value;
    size_t len = y->ev.data.scalar.length, i;
    for (i = 0; i < m->n_keys; i++)
        if (strlen(key_name(m, i)) == len && memcmp(key_name(m, i), name, len) == 0)
            break;
    m->plen = path_push(y, name, len);
    m->in_key = 1;
    if (i == m->n_keys)
        return unknown_key(y, m, line);
    if (m->seen[i])
        return mt_yaml_fail(y, line, "given twice (first at line %zu)", m->seen[i]);
    m->seen[i] = line;
    m->index = i;
    m->line = line;
    if ((rc = mt_yaml_next(y)))
        return rc;
    return 1;
}
