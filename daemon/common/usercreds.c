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
#include <limits.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
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

static int in_groups(const struct mt_creds *c, gid_t g)
{
    if (g == c->gid)
        return 1;
    for (int i = 0; i < c->n_groups; i++)
        if (c->groups[i] == g)
            return 1;
    return 0;
}

/* Does st grant c the permission bits `bit` (4 read, 1 search)? */
static int grants(const struct mt_creds *c, const struct stat *st, unsigned bit)
{
    if (c->uid == 0)
        return 1;
    if (st->st_uid == c->uid)
        return (st->st_mode >> 6 & bit) == bit;
    if (in_groups(c, st->st_gid))
        return (st->st_mode >> 3 & bit) == bit;
    return (st->st_mode & bit) == bit;
}

/* Every directory above path's last component (path as written, "/"
 * included for absolute ones) is a directory c may search. */
static int dirs_searchable(const struct mt_creds *c, const char *path)
{
    char buf[PATH_MAX];
    struct stat st;
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, path, len + 1);
    if (path[0] == '/' && (stat("/", &st) != 0 || !grants(c, &st, 1)))
        return 0;
    for (char *p = buf + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        int ok = stat(buf, &st) == 0 && S_ISDIR(st.st_mode) && grants(c, &st, 1);
        *p = '/';
        if (!ok)
            return 0;
    }
    return 1;
}

int mt_creds_may_open(const struct mt_creds *c, const char *path, int dir, struct mt_err *err)
{
    char real[PATH_MAX];
    struct stat st;
    int ok = dirs_searchable(c, path) && realpath(path, real) && dirs_searchable(c, real) &&
             stat(real, &st) == 0 &&
             (dir ? S_ISDIR(st.st_mode) && grants(c, &st, 1) : grants(c, &st, 4));
    if (ok)
        return 0;
    return mt_err_set(err, MT_E_PERM, "%s: Permission denied (uid %u may not %s it, or it does "
                      "not exist)", path, (unsigned)c->uid, dir ? "search" : "read");
}
