/* log.c: stderr log lines, journald's "<N>" prefix or a readable timestamped
 * form (see log.h). No syslog(3), no libsystemd: systemd connects stderr to
 * the journal, and everywhere else stderr is what a user reads. */
#define _GNU_SOURCE   /* program_invocation_short_name */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int log_level = LOG_INFO;
static int journal = -1;   /* -1: not yet decided */

/* Is fd 2 the stream systemd set up ($JOURNAL_STREAM = "<dev>:<inode>")? */
static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return 0;
    if (fstat(STDERR_FILENO, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(int level, int force_prefix)
{
    if (level < LOG_EMERG)
        level = LOG_EMERG;
    if (level > LOG_DEBUG)
        level = LOG_DEBUG;
    log_level = level;
    journal = force_prefix ? 1 : stderr_is_journal();
}

int log_enabled(int prio)
{
    return prio <= log_level;
}

int log_journal_format(void)
{
    if (journal < 0)
        journal = stderr_is_journal();
    return journal;
}

static const char *prio_name(int prio)
{
    switch (prio) {
    case LOG_EMERG: return "emergency";
    case LOG_ALERT: return "alert";
    case LOG_CRIT: return "critical";
    case LOG_ERR: return "error";
    case LOG_WARNING: return "warning";
    case LOG_NOTICE: return "notice";
    case LOG_INFO: return "info";
    default: return "debug";
    }
}

/* The prefix of every line of one message, into buf. */
static size_t make_prefix(char *buf, size_t len, int prio)
{
    int n;
    if (log_journal_format()) {
        n = snprintf(buf, len, "<%d>", prio);
    } else {
        struct timespec ts;
        struct tm tm;
        char when[32] = "";
        clock_gettime(CLOCK_REALTIME, &ts);
        if (localtime_r(&ts.tv_sec, &tm))
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(buf, len, "%s.%03ld %s[%ld]: %s: ", when, ts.tv_nsec / 1000000L,
                     program_invocation_short_name, (long)getpid(), prio_name(prio));
    }
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;   /* nowhere left to report it */
        p += w;
        n -= (size_t)w;
    }
}

void log_vmsg(int prio, const char *fmt, va_list ap)
{
    if (!log_enabled(prio))
        return;
    int saved = errno;
    if (prio < LOG_EMERG || prio > LOG_DEBUG)
        prio = LOG_DEBUG;

    char small[1024], *text = small;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        n = 0;
        small[0] = '\0';
    } else if ((size_t)n >= sizeof small) {
        text = malloc((size_t)n + 1);
        if (text)
            vsnprintf(text, (size_t)n + 1, fmt, ap2);
        else {
            text = small;   /* truncated beats lost */
            n = (int)sizeof small - 1;
        }
    }
    va_end(ap2);

    char prefix[128];
    size_t plen = make_prefix(prefix, sizeof prefix, prio);
    size_t len = (size_t)n;
    if (len > 0 && text[len - 1] == '\n')
        len--;   /* a trailing newline ends the message, it is not an empty line */
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';

    /* One buffer and one write; without memory for it, a write per piece. */
    size_t cap = len + lines * (plen + 1);
    char stackout[2048], *out = cap <= sizeof stackout ? stackout : malloc(cap);
    size_t o = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '\n')
            continue;
        if (out) {
            memcpy(out + o, prefix, plen);
            o += plen;
            memcpy(out + o, text + start, i - start);
            o += i - start;
            out[o++] = '\n';
        } else {
            write_all(prefix, plen);
            write_all(text + start, i - start);
            write_all("\n", 1);
        }
        start = i + 1;
    }
    if (out)
        write_all(out, o);
    if (out && out != stackout)
        free(out);
    if (text != small)
        free(text);
    errno = saved;
}

void log_msg(int prio, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(prio, fmt, ap);
    va_end(ap);
}
