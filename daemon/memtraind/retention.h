/* retention.h: the store's retention policy (memtraind.yaml's `retention:`
 * mapping): what ended jobs keep as they age. Applied when the daemon
 * starts and then every retention.interval (a day by default), as one tidy
 * task (tidy.h) over every user's ended jobs, in this order:
 *   jobs_max_age               jobs that ended longer ago are removed whole;
 *   checkpoints_max_age        of the others, those that ended longer ago
 *                              lose all their checkpoints;
 *   finished_keep_checkpoints  the remaining ended jobs keep their newest N.
 * Every setting is off by default (everything is kept). A reload (SIGHUP)
 * takes new settings at once and restarts the interval. */
#ifndef MT_RETENTION_H
#define MT_RETENTION_H

#include "daemon.h"

/* Apply the policy now and start the timer (after tidy_init). */
void retention_start(struct daemon *d);
/* The settings changed: apply them now and restart the interval. */
void retention_reload(struct daemon *d);
/* Stop the timer and close it (at shutdown). */
void retention_stop(struct daemon *d);

#endif
