/* daemonproc.h: start a real memtraind on a temporary socket and database
 * for a test, talk to it with raw frames, and stop it. */
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
/* SIGTERM and wait; returns the exit status (or -signal). keep_dir: leave
 * the directory (for a restart on the same database). */
int daemonproc_stop(struct daemonproc *p, int keep_dir);
/* Start again on the same socket and database. */
int daemonproc_restart(struct daemonproc *p, const char *const *extra_args);
void daemonproc_cleanup(struct daemonproc *p);

int client_connect(const char *sock);
/* Send a Request (version 1 set here) and read one Response; NULL on error. */
Memtrain__Response *client_call(int fd, Memtrain__Request *req);
Memtrain__Response *client_read(int fd);
int client_send(int fd, Memtrain__Request *req);
/* Ping on a fresh connection: 0 when answered OK. */
int client_ping(const char *sock);

#endif
