/* labels.c: job labels: checked at submit, kept as "k=v\n" text (labels.h). */
#include "labels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int label_char(char ch, int key)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-' || (key && ch == '/');
}

/* 0, or MT_E_INVAL naming what is wrong with one key or value. */
static int check_part(const char *s, int key, struct mt_err *err)
{
    size_t n = strlen(s);
    const char *what = key ? "key" : "value";
    if (key && n == 0)
        return mt_err_set(err, MT_E_INVAL, "label: an empty key (expected KEY=VALUE)");
    if (n > LABEL_LEN_MAX)
        return mt_err_set(err, MT_E_INVAL, "label %s '%.20s...': %zu characters, at most %d",
                          what, s, n, LABEL_LEN_MAX);
    if (key && !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
                 (s[0] >= '0' && s[0] <= '9')))
        return mt_err_set(err, MT_E_INVAL, "label key '%s': must start with a letter or digit", s);
    for (size_t i = 0; i < n; i++)
        if (!label_char(s[i], key))
            return mt_err_set(err, MT_E_INVAL, "label %s '%s': only letters, digits and %s",
                              what, s, key ? "'.', '_', '-', '/'" : "'.', '_', '-'");
    return 0;
}

int labels_encode(Memtrain__Label *const *labels, size_t n, char **out, struct mt_err *err)
{
    *out = NULL;
    if (n > LABELS_MAX)
        return mt_err_set(err, MT_E_INVAL, "%zu labels: at most %d a job", n, LABELS_MAX);
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        const char *k = labels[i] && labels[i]->key ? labels[i]->key : "";
        const char *v = labels[i] && labels[i]->value ? labels[i]->value : "";
        int rc = check_part(k, 1, err);
        if (!rc)
            rc = check_part(v, 0, err);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(labels[j]->key, k) == 0)
                return mt_err_set(err, MT_E_INVAL, "label key '%s' given twice", k);
        len += strlen(k) + strlen(v) + 2;
    }
    char *s = malloc(len);
    if (!s)
        return mt_err_set(err, MT_E_NOMEM, "out of memory for the labels");
    size_t at = 0;
    s[0] = '\0';
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(s + at, len - at, "%s=%s\n", labels[i]->key,
                               labels[i]->value ? labels[i]->value : "");
    *out = s;
    return 0;
}

/* Whether line-encoded `enc` has the line "k=v". */
static int has_line(const char *enc, const char *k, const char *v)
{
    size_t kl = strlen(k), vl = strlen(v);
    for (const char *p = enc; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        if (ll == kl + 1 + vl && memcmp(p, k, kl) == 0 && p[kl] == '=' &&
            memcmp(p + kl + 1, v, vl) == 0)
            return 1;
        p = nl ? nl + 1 : NULL;
    }
    return 0;
}

int labels_match(const char *enc, Memtrain__Label *const *sel, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sel[i] && !has_line(enc, sel[i]->key ? sel[i]->key : "",
                                sel[i]->value ? sel[i]->value : ""))
            return 0;
    return 1;
}

int labels_decode(const char *enc, struct labels_msg *m)
{
    memset(m, 0, sizeof *m);
    size_t n = 0;
    for (const char *p = enc ? enc : ""; *p; p++)
        n += *p == '\n';
    if (n == 0)
        return 0;
    m->buf = strdup(enc);
    m->items = calloc(n, sizeof *m->items);
    m->ptrs = calloc(n, sizeof *m->ptrs);
    if (!m->buf || !m->items || !m->ptrs) {
        labels_free(m);
        return MT_E_NOMEM;
    }
    char *save = NULL;
    for (char *line = strtok_r(m->buf, "\n", &save); line && m->n < n;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        Memtrain__Label *l = &m->items[m->n];
        memtrain__label__init(l);
        l->key = line;
        l->value = eq + 1;
        m->ptrs[m->n++] = l;
    }
    return 0;
}

void labels_free(struct labels_msg *m)
{
    free(m->buf);
    free(m->items);
    free(m->ptrs);
    memset(m, 0, sizeof *m);
}
