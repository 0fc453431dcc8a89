/* sockpath.h: where memtraind listens by default and where mtctl looks for
 * it: one list for both.
 *
 * The candidates, in order:
 *   1. $XDG_RUNTIME_DIR/memtrain/memtraind.sock  a per-user daemon started in a
 *                                               login session (skipped when
 *                                               XDG_RUNTIME_DIR is unset or empty)
 *   2. /tmp/memtrain-<euid>/memtraind.sock       a per-user daemon started without
 *                                               one (su, sudo -i, cron, ssh -T)
 *   3. /run/memtraind/memtraind.sock            the system service (the unit's
 *                                               RuntimeDirectory)
 * memtraind run by hand listens at the first entry (1, else 2); under systemd
 * it listens at $RUNTIME_DIRECTORY/memtraind.sock, which is entry 3. mtctl
 * connects to the first entry whose socket exists (mt_socket_choose). */
#ifndef MEMTRAIN_SOCKPATH_H
#define MEMTRAIN_SOCKPATH_H

#include <stddef.h>

#define MT_SOCKET_SYSTEM "/run/memtraind/memtraind.sock"
#define MT_SOCKET_CANDIDATES 3
#define MT_SOCKET_PATH_LEN 4096
#define MT_SOCKET_HINT_LEN 1024

struct mt_socket_list {
    int n;                                               /* entries in path[] */
    char path[MT_SOCKET_CANDIDATES][MT_SOCKET_PATH_LEN];
};

/* The candidates above from the environment and the effective uid. */
void mt_socket_candidates(struct mt_socket_list *l);

/* The per-user daemon's default socket: the list's first entry. */
void mt_socket_user_default(char *path, size_t len);

/* mtctl's choice among l's entries: the first whose socket exists. A
 * /tmp/memtrain-<uid> directory counts only when it is the user's own and
 * nobody else may write to it (anyone can create that name first).
 * When none exists, `path` is the entry that exists but cannot be reached
 * (its directory or socket is closed to this user, as the system socket's
 * 0750 directory is to a user outside its group), else the last entry.
 * `hint` says why it may fail, for the message of a failed connect: which
 * group must have the user, or the places looked at; "" when the socket
 * was found. */
struct mt_socket_choice {
    char path[MT_SOCKET_PATH_LEN];
    char hint[MT_SOCKET_HINT_LEN];
};
void mt_socket_choose(const struct mt_socket_list *l, struct mt_socket_choice *out);

/* Why `path` (a socket whose stat or connect gave EACCES) is closed to this
 * user, in one sentence: the directory or the socket not open to them, its
 * mode and group, and that the user must be in that group (or log in again
 * when the user database already has them in it). Writes "" when no part
 * of the path is closed to the user. Returns buf. */
char *mt_socket_access_hint(const char *path, char *buf, size_t len);

#endif
