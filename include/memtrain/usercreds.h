/* usercreds.h: the file rights of a user, for reading a dataset as them.
 *
 * memtraind running as root reads a job's dataset with its submitter's
 * rights: the probe at submit (a threadpool thread, per-thread fs ids) and
 * the worker (the whole process, before it opens any file). Both take the
 * rights from the user database, as a login would (initgroups): the
 * primary group and every supplementary group of the user. A uid with no
 * entry gets the group nogroup (65534) and no supplementary groups. */
#ifndef MT_USERCREDS_H
#define MT_USERCREDS_H

#include <sys/types.h>

#include "memtrain/err.h"

#define MT_CREDS_MAX_GROUPS 256
#define MT_CREDS_NOGROUP 65534

struct mt_creds {
    uid_t uid;
    gid_t gid;
    int n_groups;                         /* supplementary groups in groups[] */
    gid_t groups[MT_CREDS_MAX_GROUPS];
};

/* Look up uid's primary and supplementary groups (thread-safe). 0, or
 * MT_E_IO when the user database cannot be read. */
int mt_creds_lookup(uid_t uid, struct mt_creds *out, struct mt_err *err);

/* The calling thread's file-system ids and supplementary groups become
 * c's (raw setgroups, setfsgid, setfsuid: this thread only), the thread's
 * own saved in *saved. Needs root. 0, or MT_E_PERM with nothing changed. */
int mt_creds_enter_thread(const struct mt_creds *c, struct mt_creds *saved, struct mt_err *err);
/* Back to the ids and groups enter saved; aborts if that fails (a pool
 * thread must never keep another user's rights). */
void mt_creds_leave_thread(const struct mt_creds *saved);

/* The whole process becomes c's user for good (setgroups, setgid, setuid,
 * then a check that root cannot be regained). Needs root. 0, or MT_E_PERM. */
int mt_creds_drop_process(const struct mt_creds *c, struct mt_err *err);

/* Could c's user open path (a regular file to read, or with dir set a
 * directory to search), judged by the owner, group and mode bits of the
 * file and of every directory on the way, as given and as resolved? For a
 * process that cannot take c's rights (memtraind not running as root).
 * ACLs are not read. 0, or MT_E_PERM with one message for a missing and an
 * unreadable path, so nothing is learnt about places c cannot search. */
int mt_creds_may_open(const struct mt_creds *c, const char *path, int dir, struct mt_err *err);

#endif
