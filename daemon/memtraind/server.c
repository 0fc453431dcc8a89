/* server.c: listening on the Unix socket and accepting clients (server.h). */
#define _GNU_SOURCE
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"

/* Is a daemon answering on path? */
static int socket_is_live(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    int live = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return live;
}

static void peer_creds(struct conn *c)
{
    uv_os_fd_t fd;
    struct ucred cr;
    socklen_t len = sizeof cr;
    c->uid = (uid_t)-1;
    c->gid = (gid_t)-1;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0) {
        c->uid = cr.uid;
        c->gid = cr.gid;
        c->pid = cr.pid;
    }
}

static void close_free(uv_handle_t *h)
{
    free(h);
}

/* Over the connection limit: accept and close at once, allocating no conn. */
static void turn_away(struct daemon *d, uv_stream_t *server)
{
    uv_pipe_t *p = malloc(sizeof *p);
    if (!p)
        return;
    uv_pipe_init(d->loop, p, 0);
    if (uv_accept(server, (uv_stream_t *)p) == 0)
        log_warn("connection limit (%u) reached; refusing a client", d->cfg.max_connections);
    uv_close((uv_handle_t *)p, close_free);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct daemon *d = server->data;
    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    if ((uint32_t)d->n_conns >= d->cfg.max_connections || d->stopping) {
        turn_away(d, server);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        turn_away(d, server);
        return;
    }
    c->d = d;
    uv_pipe_init(d->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    d->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
        conn_close(c);
        return;
    }
    peer_creds(c);
    if (conn_start(c) < 0)
        conn_close(c);
}

int server_listen(struct daemon *d, struct mt_err *err)
{
    const char *path = d->cfg.socket_path;
    struct sockaddr_un probe;
    if (strlen(path) >= sizeof probe.sun_path)
        return mt_err_set(err, MT_E_INVAL, "socket path %s is longer than %zu bytes", path,
                          sizeof probe.sun_path - 1);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int rc = config_ensure_dir(dir, 0750, err);
        if (rc)
            return rc;
    }
    if (access(path, F_OK) == 0) {
        if (socket_is_live(path))
            return mt_err_set(err, MT_E_BUSY, "another memtraind is listening on %s", path);
        unlink(path);
    }
    uv_pipe_init(d->loop, &d->listener, 0);
    d->listener.data = d;
    d->listening = 1;
    mode_t old = umask(0117); /* the socket is created 0660 */
    int rc = uv_pipe_bind(&d->listener, path);
    umask(old);
    if (rc < 0)
        return mt_err_set(err, MT_E_IO, "cannot bind %s: %s", path, uv_strerror(rc));
    chmod(path, 0660);
    if ((rc = uv_listen((uv_stream_t *)&d->listener, 128, on_connection)) < 0)
        return mt_err_set(err, MT_E_IO, "cannot listen on %s: %s", path, uv_strerror(rc));
    return 0;
}

void server_stop(struct daemon *d)
{
    if (d->listening && !uv_is_closing((uv_handle_t *)&d->listener)) {
        uv_close((uv_handle_t *)&d->listener, NULL);
        unlink(d->cfg.socket_path);
    }
}
