/* access.h: who may read and who may control a job.
 *
 * The model (README "Who may see what"):
 *   - A job's owner (the uid that submitted it) and root may read it and
 *     control it.
 *   - With `share_results: group` in memtraind.yaml, every member of the
 *     daemon's group may also READ it: ls --all, show, watch, metrics, logs,
 *     ckpt ls / export. "The daemon's group" is its effective gid (Group= of
 *     the systemd unit, which is also the group of its 0660 socket); a peer is
 *     a member when SO_PEERCRED's gid is that group or getgrouplist of the
 *     peer's user name holds it (asked once per connection, then cached).
 *   - Control (cancel, and every later verb that changes a job) stays with the
 *     owner and root whatever share_results says.
 * Readers are all-or-own: a peer may read either every job or only its own,
 * so `ls --all` is simply "every job" or "mine". */
#ifndef MT_ACCESS_H
#define MT_ACCESS_H

#include <sys/types.h>

struct conn;

/* 1 when c's peer may read a job owned by `owner`, else 0. */
int access_may_read(struct conn *c, uid_t owner);
/* 1 when c's peer may read every user's jobs (root, or a group member with
 * share_results: group). */
int access_may_read_all(struct conn *c);
/* 1 when c's peer may cancel (or otherwise change) a job owned by `owner`. */
int access_may_control(const struct conn *c, uid_t owner);

#endif
