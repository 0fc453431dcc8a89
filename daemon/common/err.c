/* err.c: the error struct's helpers and code names (see include/memtrain/err.h). */
#include "memtrain/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mt_err_set(struct mt_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int mt_err_prefix(struct mt_err *err, const char *fmt, ...)
{
    if (!err)
        return MT_E_INVAL;
    char head[MT_ERR_LEN], tail[MT_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(tail, err->msg, sizeof tail);
    size_t n = strlen(head);
    if (n >= sizeof err->msg)
        n = sizeof err->msg - 1;
    memcpy(err->msg, head, n);
    size_t m = strlen(tail);
    if (m > sizeof err->msg - 1 - n)
        m = sizeof err->msg - 1 - n;
    memcpy(err->msg + n, tail, m);
    err->msg[n + m] = '\0';
    return err->code;
}

void mt_err_clear(struct mt_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

const char *mt_strerror(int code)
{
    switch (code) {
    case MT_OK: return "ok";
    case MT_E_NOMEM: return "out of system memory";
    case MT_E_LIMIT: return "memory limit exceeded";
    case MT_E_INVAL: return "invalid argument";
    case MT_E_IO: return "input/output error";
    case MT_E_FORMAT: return "bad file format";
    case MT_E_CANCELLED: return "cancelled";
    case MT_E_NOTFOUND: return "not found";
    case MT_E_INJECTED: return "injected fault";
    case MT_E_PERM: return "permission denied";
    case MT_E_BUSY: return "not possible in this state";
    case MT_E_EOF: return "connection closed";
    case MT_E_TOOBIG: return "frame too big";
    case MT_E_TRUNCATED: return "truncated frame";
    case MT_E_PROTO: return "malformed message";
    case MT_E_UNREACHABLE: return "daemon unreachable";
    }
    return "unknown error";
}

char *mt_fmt_bytes(char *buf, size_t len, double bytes)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%.0f B", bytes);
    else
        snprintf(buf, len, "%.2f %s", bytes, unit[u]);
    return buf;
}

char *mt_err_show(char *out, size_t cap, const char *text, size_t len)
{
    size_t n = 0, i;
    for (i = 0; i < len && n < MT_SHOW_LEN && n + 4 < cap; i++) {
        unsigned char c = (unsigned char)text[i];
        out[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (i < len) {
        while (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
            n--;
        if (n > 0 && (unsigned char)out[n - 1] >= 0xc0)
            n--;
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}
