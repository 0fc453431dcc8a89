/* usercreds.c: a user's file rights, for one thread or the whole process
 * (usercreds.h).
 *
 * Linux keeps credentials per thread; glibc's setgroups and setuid apply
 * them to every thread of the process. mt_creds_enter_thread therefore
 * makes the system calls itself, so one pool thread acts as the user while
 * the loop and the other threads keep root's rights. setfsuid to a non-zero
 * id also drops the thread's file capabilities (DAC override), and setfsuid
 * back to 0 restores them; CAP_SETUID/CAP_SETGID are kept throughout. */
#define _GNU_SOURCE
#include "memtrain/usercreds.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

int mt_creds_lookup(uid_t uid, struct mt_creds *out, struct mt_err *err)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    *out = (struct mt_creds){.uid = uid, .gid = MT_CREDS_NOGROUP};
    int e = getpwuid_r(uid, &pw, buf, sizeof buf, &res);
    if (e && e != ENOENT && e != ESRCH)
        return mt_err_set(err, MT_E_IO, "user database: uid %u: %s", (unsigned)uid, strerror(e));
    if (!res)
        return 0;
    out->gid = pw.pw_gid;
    int n = MT_CREDS_MAX_GROUPS;
    if (getgrouplist(pw.pw_name, pw.pw_gid, out->groups, &n) < 0)
        n = MT_CREDS_MAX_GROUPS;   /* more than we keep: the first ones */
    out->n_groups = n;
    return 0;
}

int mt_creds_enter_thread(const struct mt_creds *c, struct mt_creds *saved, struct mt_err *err)
{
    if (geteuid() != 0)
        return mt_err_set(err, MT_E_PERM, "only root can read files as uid %u", (unsigned)c->uid);
    int n = (int)syscall(SYS_getgroups, MT_CREDS_MAX_GROUPS, saved->groups);
    if (n < 0)
        return mt_err_set(err, MT_E_PERM, "getgroups: %s", strerror(errno));
    saved->n_groups = n;
    saved->uid = (uid_t)setfsuid((uid_t)-1);
    saved->gid = (gid_t)setfsgid((gid_t)-1);
    if (syscall(SYS_setgroups, (size_t)c->n_groups, c->groups) != 0)
        return mt_err_set(err, MT_E_PERM, "setgroups for uid %u: %s", (unsigned)c->uid,
                          strerror(errno));
    setfsgid(c->gid);
    setfsuid(c->uid);
    if ((uid_t)setfsuid((uid_t)-1) != c->uid || (gid_t)setfsgid((gid_t)-1) != c->gid) {
        mt_creds_leave_thread(saved);
        return mt_err_set(err, MT_E_PERM, "cannot take uid %u's file rights", (unsigned)c->uid);
    }
    return 0;
}

void mt_creds_leave_thread(const struct mt_creds *saved)
{
    setfsuid(saved->uid);
    setfsgid(saved->gid);
    if ((uid_t)setfsuid((uid_t)-1) != saved->uid || (gid_t)setfsgid((gid_t)-1) != saved->gid ||
        syscall(SYS_setgroups, (size_t)saved->n_groups, saved->groups) != 0)
        abort();
}

int mt_creds_drop_process(const struct mt_creds *c, struct mt_err *err)
{
    if (setgroups((size_t)c->n_groups, c->groups) != 0 || setgid(c->gid) != 0 ||
        setuid(c->uid) != 0)
        return mt_err_set(err, MT_E_PERM, "cannot become uid %u gid %u: %s", (unsigned)c->uid,
                          (unsigned)c->gid, strerror(errno));
    if (c->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
        return mt_err_set(err, MT_E_PERM, "uid %u could regain root", (unsigned)c->uid);
    return 0;
}
