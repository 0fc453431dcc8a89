/* notify.c: sd_notify's datagram, sent by hand (see notify.h). The protocol
 * is small and stable (sd_notify(3), "Notification socket"): one datagram of
 * newline-separated VAR=value assignments to the socket in $NOTIFY_SOCKET. */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int notify_send(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    if (!state)
        return -EINVAL;

    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (strncmp(path, "vsock:", 6) == 0)
        return -EAFNOSUPPORT;   /* systemd 254's VM notification: not for us */
    if (path[0] != '/' && path[0] != '@')
        return -EINVAL;
    if (n < 2 || n > sizeof sa.sun_path - (path[0] == '/'))
        return -EINVAL;
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';  /* abstract: no terminating NUL in the length */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n
                                  + (path[0] == '/'));

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    ssize_t w;
    do
        w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        rc = -errno;
    else if ((size_t)w != strlen(state))
        rc = -EMSGSIZE;
    close(fd);
    return rc;
}

int notify_sendf(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        return -EMSGSIZE;
    return notify_send(buf);
}

int notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return notify_sendf("RELOADING=1\nMONOTONIC_USEC=%llu",
                        (unsigned long long)ts.tv_sec * 1000000ull
                            + (unsigned long long)ts.tv_nsec / 1000u);
}
