/* access.c: the job access rule (access.h). */
#include "access.h"

#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"

/* Is the peer a member of the daemon's group? Asked once per connection. */
static int peer_in_group(struct conn *c)
{
    if (c->in_group)
        return c->in_group > 0;
    gid_t group = getegid();
    int yes = c->gid == group;
    struct passwd pw, *found = NULL;
    char buf[4096];
    if (!yes && c->uid != (uid_t)-1 && getpwuid_r(c->uid, &pw, buf, sizeof buf, &found) == 0 &&
        found) {
        int n = 64;
        for (int tries = 0; tries < 4 && !yes; tries++) {
            gid_t *g = malloc((size_t)n * sizeof *g);
            if (!g)
                break;
            int got = n;
            int rc = getgrouplist(found->pw_name, found->pw_gid, g, &got);
            for (int i = 0; rc >= 0 && i < got; i++)
                yes |= g[i] == group;
            free(g);
            if (rc >= 0)
                break;
            n = got > n ? got : 2 * n;
        }
    }
    c->in_group = yes ? 1 : -1;
    return yes;
}

int access_may_control(const struct conn *c, uid_t owner)
{
    return c->uid == 0 || c->uid == owner;
}

int access_may_read_all(struct conn *c)
{
    if (c->uid == 0)
        return 1;
    return c->d->cfg.share_results == MT_SHARE_GROUP && peer_in_group(c);
}

int access_may_read(struct conn *c, uid_t owner)
{
    return access_may_control(c, owner) || access_may_read_all(c);
}
