/* promfile.h: the Prometheus text file for node_exporter's textfile
 * collector (memtraind has no TCP listener of its own).
 *
 * With `metrics_textfile` set, memtraind rewrites that file every
 * `metrics_interval` and soon after a job changes state (at most once a
 * second): jobs by state, the queue's length, the memory budget and what
 * running jobs reserve of it, and each running job's memory by category
 * (labels job, owner, rule). The loop takes a snapshot of the figures;
 * formatting, user names and the write (a temporary file in the same
 * directory, renamed over the old one, so a reader sees one whole file)
 * run on libuv's thread pool, never on the loop. A clean stop removes the
 * file: a stopped daemon leaves no figures that look current. */
#ifndef MT_PROMFILE_H
#define MT_PROMFILE_H

#include "daemon.h"

/* Start the timer when d->cfg.metrics_textfile is set (else nothing);
 * the first file is written at once. */
int promfile_start(struct daemon *d, struct mt_err *err);

/* A job changed state or figures: write the file again soon. */
void promfile_kick(struct daemon *d);

/* Stop the timers and remove the file (after a write in flight ends). */
void promfile_stop(struct daemon *d);

/* Free what is left once the loop has ended. */
void promfile_free(struct daemon *d);

#endif
