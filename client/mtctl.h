/* mtctl.h: what the files of mtctl share.
 *
 * mtctl is memtraind's command-line client. main.c parses the global
 * options and dispatches to one cmd_* function per command; conn.c talks to
 * the daemon (one Unix stream socket, wire.h framing, proto/memtrain.proto);
 * fmt.c and jsonmsg.c format for people and for programs. The client parses
 * no JSON and no YAML: spec files go to the daemon as text.
 *
 * A command returns the process exit status (MTCTL_EXIT_*); it prints its
 * own errors through mtctl_fail(). Only main() calls exit. */
#ifndef MTCTL_H
#define MTCTL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "memtrain.pb-c.h"
#include "memtrain/err.h"

/* Exit statuses, documented in `mtctl --help` and mtctl(1). */
enum {
    MTCTL_EXIT_OK = 0,
    MTCTL_EXIT_ERROR = 1,
    MTCTL_EXIT_USAGE = 2,
    MTCTL_EXIT_UNREACHABLE = 3,
    MTCTL_EXIT_NOTFOUND = 4,
    MTCTL_EXIT_PERM = 5,
    /* wait, watch and submit --follow: the job's final state */
    MTCTL_EXIT_FAILED = 10,
    MTCTL_EXIT_CANCELLED = 11,
    MTCTL_EXIT_OOM = 12,
    MTCTL_EXIT_INTERRUPTED = 13,
    /* wait --timeout passed before the job ended (as timeout(1)) */
    MTCTL_EXIT_TIMEOUT = 124,
    /* Ctrl-C stopped wait, watch or submit --follow; the job goes on */
    MTCTL_EXIT_SIGINT = 130,
};

#define MTCTL_SCHEMA_VERSION 1

/* Global options and the one connection of this run. */
struct mtctl {
    const char *socket_path;  /* never NULL after main's setup */
    const char *socket_hint;  /* the default socket was not found: what was
                                 (mt_socket_choose); NULL or "" otherwise */
    int json;                 /* -o json / --json: JSON documents on stdout */
    int tty;                  /* stdout is a terminal */
    int fd;                   /* -1 until conn_open */
    uint64_t next_id;         /* the id of the next Request */
    const char *cmd;          /* "mtctl ls": the prefix of usage messages */
    int status;               /* Status of the last refused request; -1 if none */
    int output;               /* MTCTL_OUT_*: -o's value (json also sets json) */
};

/* -o values beyond json and text, for the commands that list things (see
 * mtctl_output_ok): wide adds columns, name prints ids one a line, csv is a
 * table with a header row. */
enum { MTCTL_OUT_TEXT, MTCTL_OUT_JSON, MTCTL_OUT_WIDE, MTCTL_OUT_NAME, MTCTL_OUT_CSV };

/* Whether command `cmd` ("ls") prints -o `output`; json and text always. */
int mtctl_output_ok(const char *cmd, int output);

/* ---- main.c: shared option handling for the commands */

/* Reset getopt for a command's argv and set argv[0] to "mtctl NAME"
 * (NAME: "ls", "ckpt export") so that getopt's own messages name it. */
void mtctl_getopt_reset(struct mtctl *c, char **argv, const char *name);

/* Handle an option every command takes: -h/--help (prints `help`), --json,
 * -o json|text, --socket PATH; anything else is a usage error (getopt has
 * printed it). Returns 0 to go on, MTCTL_DONE after --help, or
 * MTCTL_EXIT_USAGE. */
#define MTCTL_DONE (-1)
int mtctl_opt(struct mtctl *c, int opt, const char *arg, const char *help);

/* The default branch of a command's option switch. */
#define MTCTL_OPT_DEFAULT(c, opt, help)                          \
    default: {                                                    \
        int r_ = mtctl_opt((c), (opt), optarg, (help));           \
        if (r_)                                                   \
            return r_ == MTCTL_DONE ? MTCTL_EXIT_OK : r_;         \
        break;                                                    \
    }

/* Print "mtctl CMD: <msg>" plus the --help hint on stderr; returns
 * MTCTL_EXIT_USAGE. */
int mtctl_usage_error(struct mtctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print err's message as "mtctl: <msg>" on stderr (and, with --json, an
 * error document on stdout); returns the exit status for err->code. */
int mtctl_fail(struct mtctl *c, const struct mt_err *err);

/* The exit status for a negative MT_E_* code. */
int mtctl_exit_code(int code);

/* The --label / -l arguments of a command, for a request's labels. */
#define MTCTL_LABELS_MAX 16
struct mtctl_labels {
    Memtrain__Label items[MTCTL_LABELS_MAX];
    Memtrain__Label *ptrs[MTCTL_LABELS_MAX];
    size_t n;
};
/* Add "KEY=VALUE" (arg, which is modified and pointed into) to ls; prints a
 * usage error. The daemon checks the characters and sizes. */
int mtctl_parse_label(struct mtctl *c, char *arg, struct mtctl_labels *ls);

/* Parse a job id argument (a positive integer); prints a usage error. */
int mtctl_parse_id(struct mtctl *c, const char *arg, uint64_t *id);

/* The long options every command accepts, and the getopt codes for them. */
#define MTCTL_OPT_JSON 0x1001
#define MTCTL_OPT_SOCKET 0x1002
#define MTCTL_COMMON_LONGOPTS                                        \
    {"help", no_argument, NULL, 'h'},                                 \
    {"json", no_argument, NULL, MTCTL_OPT_JSON},                      \
    {"output", required_argument, NULL, 'o'},                         \
    {"socket", required_argument, NULL, MTCTL_OPT_SOCKET}
/* The short options to put in every command's optstring. */
#define MTCTL_COMMON_SHORTOPTS "ho:"

/* ---- conn.c: the daemon connection */

/* Connect to c->socket_path. MT_E_UNREACHABLE with "cannot reach memtraind
 * at PATH: <errno text> (is it running?)" when nobody listens. */
int conn_open(struct mtctl *c, struct mt_err *err);
void conn_close(struct mtctl *c);

/* Stamp version and a fresh id on `req` and send it (connecting first if
 * needed). */
int conn_send(struct mtctl *c, Memtrain__Request *req, struct mt_err *err);

/* Read the next Response for the last request sent. On success *resp is
 * the caller's (memtrain__response__free_unpacked). A Response whose status
 * is not OK is freed and turned into an error carrying the daemon's message
 * and the MT_E_* code for its status (NOT_FOUND -> MT_E_NOTFOUND,
 * PERMISSION_DENIED -> MT_E_PERM, INVALID -> MT_E_INVAL, OVER_LIMIT ->
 * MT_E_LIMIT, UNAVAILABLE -> MT_E_BUSY, others MT_E_IO); c->status keeps
 * the Status. A lost connection is MT_E_EOF or MT_E_TRUNCATED. */
int conn_recv(struct mtctl *c, Memtrain__Response **resp, struct mt_err *err);

/* conn_send + conn_recv, then a check that the body is `body_case`. */
int conn_call(struct mtctl *c, Memtrain__Request *req, int body_case,
              Memtrain__Response **resp, struct mt_err *err);

/* A Show request for job_id through conn_call. */
int conn_show(struct mtctl *c, uint64_t job_id, Memtrain__Response **resp, struct mt_err *err);
/* A Metrics request for job_id (its epochs only) through conn_call. */
int conn_epochs(struct mtctl *c, uint64_t job_id, Memtrain__Response **resp, struct mt_err *err);
/* A Cancel request for job_id through conn_call. */
int conn_cancel(struct mtctl *c, uint64_t job_id, Memtrain__Response **resp, struct mt_err *err);

/* Prefix err's message with "job N: " unless the daemon already named the
 * job; returns err->code. */
int conn_job_err(struct mt_err *err, uint64_t job_id);

/* The name of a Status ("NOT_FOUND"). */
const char *conn_status_name(int status);

/* ---- the commands: each returns an exit status */
int cmd_submit(struct mtctl *c, int argc, char **argv);  /* submit.c */
int cmd_resubmit(struct mtctl *c, int argc, char **argv);
int cmd_ls(struct mtctl *c, int argc, char **argv);      /* jobs.c */
int cmd_show(struct mtctl *c, int argc, char **argv);
int cmd_cancel(struct mtctl *c, int argc, char **argv);
int cmd_wait(struct mtctl *c, int argc, char **argv);
int cmd_watch(struct mtctl *c, int argc, char **argv);   /* watch.c */
int cmd_logs(struct mtctl *c, int argc, char **argv);
int cmd_metrics(struct mtctl *c, int argc, char **argv); /* export.c */
int cmd_ckpt(struct mtctl *c, int argc, char **argv);
int cmd_plan(struct mtctl *c, int argc, char **argv);    /* plan.c */
int cmd_ping(struct mtctl *c, int argc, char **argv);
int cmd_rm(struct mtctl *c, int argc, char **argv);      /* tidy.c */
int cmd_prune(struct mtctl *c, int argc, char **argv);
int cmd_df(struct mtctl *c, int argc, char **argv);
/* `mtctl ckpt rm` (argv[0] is "rm"), called by cmd_ckpt. */
int ckpt_rm(struct mtctl *c, int argc, char **argv);

/* jobs.c: "running,queued" into states[] (at most max); the count, or -1
 * with *bad the name not understood. */
int parse_states(const char *list, Memtrain__JobState *states, int max, const char **bad);
int cmd_completion(struct mtctl *c, int argc, char **argv); /* completion.c */

/* main.c's command table, for completion.c: every command mtctl runs. */
struct mtctl_command {
    const char *name;
    int (*run)(struct mtctl *c, int argc, char **argv);
};
/* The table and its length. */
const struct mtctl_command *mtctl_commands(size_t *n);

/* Every command's getopt_long goes through completion.c, which notes the
 * option table while `mtctl completion` asks the command for its --help:
 * the completion script's flags come from the very tables that parse them. */
struct option;
int mtctl_getopt_long(int argc, char *const argv[], const char *shortopts,
                      const struct option *longopts, int *longindex);
#define getopt_long mtctl_getopt_long
int cmd_top(struct mtctl *c, int argc, char **argv);     /* top.c */

/* jobs.c: every job a List request selects, a page (Response) at a time;
 * limit 0 = all. The pages are the caller's (jobs_pages_free). */
struct job_pages {
    Memtrain__Response **pages;
    size_t n_pages, n_jobs;
};
int jobs_fetch(struct mtctl *c, Memtrain__ListRequest *lq, unsigned long limit,
               struct job_pages *out, struct mt_err *err);
void jobs_pages_free(struct job_pages *p);
/* ls and top's --state S[,S...] (at most 16) and --limit N; usage errors. */
int jobs_opt_states(struct mtctl *c, const char *arg, Memtrain__JobState *states, int *n);
int jobs_opt_limit(struct mtctl *c, const char *arg, unsigned long *limit);

/* watch.c: follow job `id` until it ends (watch, submit --follow, wait).
 * Returns the exit status of the final state, MTCTL_EXIT_TIMEOUT, or an
 * error status; Ctrl-C says the job goes on and exits MTCTL_EXIT_SIGINT. */
struct follow_opts {
    int steps;       /* a line per reported training step */
    int quiet;       /* print only the final state line (wait) */
    int reconnect;   /* when memtraind stops, wait for it to start again:
                        the job resumes, INTERRUPTED is not its end */
    double timeout;  /* seconds; 0 = none */
};
int watch_job(struct mtctl *c, uint64_t id, const struct follow_opts *o);

#endif
