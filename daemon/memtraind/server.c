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
#include "frame.h"
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

/* Over the connection limit (or stopping): accept, write one Response that
 * says why, and close, allocating no conn. The reply fits an empty socket
 * buffer, so one non-blocking write sends it. */
static void turn_away(struct daemon *d, uv_stream_t *server)
{
    uv_pipe_t *p = malloc(sizeof *p);
    if (!p)
        return;
    uv_pipe_init(d->loop, p, 0);
    if (uv_accept(server, (uv_stream_t *)p) == 0) {
        char msg[128];
        if (d->stopping)
            snprintf(msg, sizeof msg, "memtraind is stopping");
        else
            snprintf(msg, sizeof msg, "memtraind is at its connection limit (%u)",
                     d->cfg.max_connections);
        log_warn("%s; refusing a client", msg);
        Memtrain__Response r = MEMTRAIN__RESPONSE__INIT;
        r.status = MEMTRAIN__STATUS__UNAVAILABLE;
        r.message = msg;
        size_t len;
        uint8_t *buf = frame_pack(&r.base, &len);
        if (buf) {
            uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
            uv_try_write((uv_stream_t *)p, &b, 1);
            free(buf);
        }
    }
    uv_close((uv_handle_t *)p, close_free);
}

static void on_sweep(uv_timer_t *t)
{
    struct daemon *d = t->data;
    conn_sweep(d, (int64_t)uv_now(d->loop));
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
    uint32_t least = d->cfg.frame_timeout_ms < d->cfg.idle_timeout_ms ? d->cfg.frame_timeout_ms
                                                                      : d->cfg.idle_timeout_ms;
    uint64_t every = least / 4 < 250 ? least / 4 : 250;
    uv_timer_init(d->loop, &d->sweep);
    d->sweep.data = d;
    d->sweeping = 1;
    uv_timer_start(&d->sweep, on_sweep, every ? every : 1, every ? every : 1);
    return 0;
}

void server_stop(struct daemon *d)
{
    if (d->sweeping && !uv_is_closing((uv_handle_t *)&d->sweep))
        uv_close((uv_handle_t *)&d->sweep, NULL);
    if (d->listening && !uv_is_closing((uv_handle_t *)&d->listener)) {
        uv_close((uv_handle_t *)&d->listener, NULL);
        unlink(d->cfg.socket_path);
    }
}
