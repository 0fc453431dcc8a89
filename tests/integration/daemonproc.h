/* daemonproc.h: start a real memtraind on a temporary socket and database
 * for a test, talk to it with raw frames, and stop it; submit, watch and
 * follow a job the way every integration test and bench-daemon does. */
#ifndef MT_TEST_DAEMONPROC_H
#define MT_TEST_DAEMONPROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memtrain.pb-c.h"

struct daemonproc {
    char dir[256];                /* temporary directory, removed by daemonproc_stop */
    char sock[300], db[300];
    pid_t pid;
};

/* Start memtraind (path from $MEMTRAIN_DAEMON) with extra args; waits until
 * the socket answers a ping. 0 or -1. */
int daemonproc_start(struct daemonproc *p, const char *const *extra_args);
/* The same in an existing directory (a test's own file system). */
int daemonproc_start_at(struct daemonproc *p, const char *dir, const char *const *extra_args);
/* SIGTERM and wait; returns the exit status (or -signal). keep_dir: leave
 * the directory (for a restart on the same database). */
int daemonproc_stop(struct daemonproc *p, int keep_dir);
/* Start again on the same socket and database. */
int daemonproc_restart(struct daemonproc *p, const char *const *extra_args);
void daemonproc_cleanup(struct daemonproc *p);
/* Write `text` into the daemon's configuration file `config`, send SIGHUP
 * and give it 300 ms to reload. 0 or -1. */
int daemonproc_reconfigure(struct daemonproc *p, const char *config, const char *text);
/* The daemon's first child process (its running worker), 0 when none. */
pid_t daemonproc_worker(const struct daemonproc *p);

int client_connect(const char *sock);
/* Send a Request (version 1 set here) and read one Response; NULL on error. */
Memtrain__Response *client_call(int fd, Memtrain__Request *req);
Memtrain__Response *client_read(int fd);
int client_send(int fd, Memtrain__Request *req);
/* Ask for job_id's newest checkpoint (streamed in chunks), request id
 * `id`, without reading the answer. 0 or -1. */
int client_send_ckpt_fetch(int fd, uint64_t job_id, uint64_t id);
/* client_call on a fresh connection to sock from a forked child that has
 * dropped to uid with primary group gid and no supplementary groups (the
 * caller must be root): how another user's request is answered. NULL when
 * unanswered. */
Memtrain__Response *client_call_as(const char *sock, uid_t uid, gid_t gid,
                                   Memtrain__Request *req);
/* Ping on a fresh connection: 0 when answered OK. */
int client_ping(const char *sock);
/* The same, failing when no answer comes within ms milliseconds. */
int client_ping_within(const char *sock, int ms);

/* Submit a YAML spec; yaml_name is the file name the daemon's messages use
 * (NULL: none). The Response (caller frees), or NULL when unanswered. */
Memtrain__Response *client_submit(int fd, const char *yaml, const char *yaml_name);
/* The same, keeping only the new job's id (0 when refused or unanswered) and
 * the status in *status (-1 when unanswered). A refusal's message goes to
 * stderr. */
uint64_t client_submit_id(int fd, const char *yaml, const char *yaml_name, int *status);
/* Ask for job_id's watch events on fd (0: every job's), step events too
 * when steps. The events are then read with client_read or client_follow.
 * 0 or -1. */
int client_watch(int fd, uint64_t job_id, int steps);

/* What a watch stream showed. */
struct watch_seen {
    int epochs;            /* epoch events read */
    int state;             /* the last Job event's state; 0 before any */
    uint32_t epochs_done;  /* that event's epochs done */
    char reason[512];      /* and its reason */
    int ended;             /* the stream's last response (end) was read */
};
/* Read watch responses on fd into *seen (zeroed first) until the stream
 * ends, or until `epochs` epoch events have come (0: until the end). 0, or
 * -1 when a read fails or a response is not OK. */
int client_follow(int fd, int epochs, struct watch_seen *seen);

#endif
