/* sockpath.c: the default sockets of memtraind and mtctl, and why one is
 * closed to a user (sockpath.h). */
#define _GNU_SOURCE
#include "memtrain/sockpath.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memtrain/usercreds.h"

#define TMP_PREFIX "/tmp/memtrain-"

void mt_socket_candidates(struct mt_socket_list *l)
{
    l->n = 0;
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg)
        snprintf(l->path[l->n++], MT_SOCKET_PATH_LEN, "%s/memtrain/memtraind.sock", xdg);
    snprintf(l->path[l->n++], MT_SOCKET_PATH_LEN, TMP_PREFIX "%lu/memtraind.sock",
             (unsigned long)geteuid());
    snprintf(l->path[l->n++], MT_SOCKET_PATH_LEN, "%s", MT_SOCKET_SYSTEM);
}

void mt_socket_user_default(char *path, size_t len)
{
    struct mt_socket_list l;
    mt_socket_candidates(&l);
    snprintf(path, len, "%s", l.path[0]);
}

/* The directory part of `path` into dir ("/" for "/x", "." for "x"). */
static void dir_of(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, len, ".");
    else if (slash == path)
        snprintf(dir, len, "/");
    else
        snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/* A /tmp/memtrain-<uid> directory anyone could have made first is used only
 * when it is ours and closed to writers but us. */
static int trusted_dir(const char *sock)
{
    if (strncmp(sock, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
        return 1;
    char dir[MT_SOCKET_PATH_LEN];
    struct stat st;
    dir_of(sock, dir, sizeof dir);
    return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
           !(st.st_mode & (S_IWGRP | S_IWOTH));
}

void mt_socket_choose(const struct mt_socket_list *l, struct mt_socket_choice *out)
{
    int closed = -1, untrusted = -1;
    out->hint[0] = '\0';
    for (int i = 0; i < l->n; i++) {
        struct stat st;
        if (stat(l->path[i], &st) == 0) {
            if (S_ISSOCK(st.st_mode) && trusted_dir(l->path[i])) {
                snprintf(out->path, sizeof out->path, "%s", l->path[i]);
                return;
            }
            if (S_ISSOCK(st.st_mode) && untrusted < 0)
                untrusted = i;
        } else if (errno == EACCES && closed < 0) {
            closed = i;
        }
    }
    if (closed >= 0) {
        snprintf(out->path, sizeof out->path, "%s", l->path[closed]);
        mt_socket_access_hint(out->path, out->hint, sizeof out->hint);
        return;
    }
    /* Nothing to connect to: the last entry, which exists nowhere here
     * (never an untrusted one). */
    snprintf(out->path, sizeof out->path, "%s", l->path[l->n - 1]);
    size_t n = (size_t)snprintf(out->hint, sizeof out->hint, "no memtraind socket at ");
    for (int i = 0; i < l->n && n < sizeof out->hint; i++)
        n += (size_t)snprintf(out->hint + n, sizeof out->hint - n, "%s%s",
                              i == 0 ? "" : i + 1 < l->n ? ", " : " or ", l->path[i]);
    if (untrusted >= 0 && n < sizeof out->hint)
        snprintf(out->hint + n, sizeof out->hint - n, " (%s was not used: its directory is not "
                 "yours alone)", l->path[untrusted]);
}

/* The name of gid, or "gid N". */
static void group_name(gid_t gid, char *buf, size_t len)
{
    struct group gr, *res = NULL;
    char tmp[4096];
    if (getgrgid_r(gid, &gr, tmp, sizeof tmp, &res) == 0 && res)
        snprintf(buf, len, "%s", gr.gr_name);
    else
        snprintf(buf, len, "gid %u", (unsigned)gid);
}

/* Whether the user database puts this user in gid (a login would get it). */
static int user_db_has_group(gid_t gid)
{
    struct mt_creds c;
    if (mt_creds_lookup(getuid(), &c, NULL) != 0)
        return 0;
    if (c.gid == gid)
        return 1;
    for (int i = 0; i < c.n_groups; i++)
        if (c.groups[i] == gid)
            return 1;
    return 0;
}

/* The first part of path that is closed to this user: a directory it may
 * not enter, else the socket it may not write. 0 and its stat, or -1. */
static int closed_part(const char *path, char *part, size_t len, struct stat *st)
{
    snprintf(part, len, "%s", path);
    for (char *s = strchr(part + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (access(part, X_OK) != 0 && errno == EACCES && stat(part, st) == 0)
            return 0;
        *s = '/';
    }
    if (access(part, W_OK) != 0 && errno == EACCES && stat(part, st) == 0)
        return 0;
    return -1;
}

char *mt_socket_access_hint(const char *path, char *buf, size_t len)
{
    char part[MT_SOCKET_PATH_LEN], group[256], user[256];
    struct stat st;
    buf[0] = '\0';
    if (closed_part(path, part, sizeof part, &st) != 0)
        return buf;
    int is_dir = S_ISDIR(st.st_mode);
    group_name(st.st_gid, group, sizeof group);
    struct passwd *pw = getpwuid(getuid());
    snprintf(user, sizeof user, "%s", pw ? pw->pw_name : "USER");
    size_t n;
    if (is_dir)
        n = (size_t)snprintf(buf, len, "the socket %s exists, but its directory %s (mode %04o, "
                             "group %s) is closed to you", path, part,
                             (unsigned)(st.st_mode & 07777), group);
    else
        n = (size_t)snprintf(buf, len, "the socket %s (mode %04o, group %s) is closed to you",
                             path, (unsigned)(st.st_mode & 07777), group);
    if (n >= len)
        return buf;
    if (!(st.st_mode & (is_dir ? S_IXGRP : S_IWGRP)))
        snprintf(buf + n, len - n, "; only its owner may use it");
    else if (user_db_has_group(st.st_gid))
        snprintf(buf + n, len - n, "; your user %s is in the group %s, but this login session "
                 "is not yet: log in again (or run `newgrp %s`)", user, group, group);
    else
        snprintf(buf + n, len - n, "; your user must be in the group %s (sudo usermod -aG %s "
                 "%s), then log in again", group, group, user);
    return buf;
}
