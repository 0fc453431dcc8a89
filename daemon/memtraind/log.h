/* log.h: memtraind's log lines on stderr, in the form journald understands.
 *
 * Under systemd stderr is a stream to journald ($JOURNAL_STREAM names its
 * device and inode); each line then starts with "<N>", N the syslog priority
 * (sd-daemon.h: <3> err, <4> warning, <5> notice, <6> info, <7> debug), and
 * journald files the line under that priority. Anywhere else a line reads
 *     2026-11-23T10:00:00.123 memtraind[4242]: warning: slot 2: worker exited
 * (local time, milliseconds). A message with embedded newlines becomes one
 * line per piece, each with the full prefix, so journald never files a
 * continuation line at the default priority. A message is written with one
 * write(2), so concurrent writers do not interleave inside it.
 *
 * The priorities are syslog.h's LOG_ERR ... LOG_DEBUG. log_msg keeps errno.
 * Before log_init the level is LOG_INFO and the format auto-detected. */
#ifndef MT_LOG_H
#define MT_LOG_H

#include <stdarg.h>
#include <syslog.h>

/* Show messages of priority <= level (LOG_ERR ... LOG_DEBUG). force_prefix
 * 1: always the "<N>" journal format (for tests, or a journal reached some
 * other way); 0: the journal format when stderr is $JOURNAL_STREAM, the
 * readable one otherwise. Call again to change either (e.g. after dup2 onto
 * fd 2). The name in readable lines is the program's short name. */
void log_init(int level, int force_prefix);

/* 1 when a message of priority prio would be written (skip costly work). */
int log_enabled(int prio);

/* 1 when lines carry the "<N>" prefix. */
int log_journal_format(void);

void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int prio, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
