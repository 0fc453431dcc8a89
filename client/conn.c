/* conn.c: mtctl's connection to memtraind.
 *
 * One blocking Unix stream socket per run. A request is one frame (wire.h)
 * holding a Request; the daemon answers with one Response, or with several
 * carrying the same id for a stream (watch, logs -f, checkpoint fetch), the
 * last with `end` set. Requests go one at a time: the client waits for the
 * answer (or the end of the stream) before sending the next. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "memtrain/sockpath.h"
#include "memtrain/wire.h"
#include "mtctl.h"

/* Why connect failed: for EACCES the part of the path closed to this user
 * and the group it needs; for a default socket not found, where mtctl
 * looked (the shared list, memtrain/sockpath.h). */
static int unreachable(struct mtctl *c, int e, struct mt_err *err)
{
    char hint[MT_SOCKET_HINT_LEN];
    if (e == EACCES && mt_socket_access_hint(c->socket_path, hint, sizeof hint)[0])
        return mt_err_set(err, MT_E_UNREACHABLE, "cannot reach memtraind: %s", hint);
    if (e == ENOENT && c->socket_hint && c->socket_hint[0])
        return mt_err_set(err, MT_E_UNREACHABLE, "cannot reach memtraind: %s (is it running?)",
                          c->socket_hint);
    return mt_err_set(err, MT_E_UNREACHABLE, "cannot reach memtraind at %s: %s (%s)",
                      c->socket_path, strerror(e),
                      e == EACCES ? "is your user in the daemon's group?" : "is it running?");
}

int conn_open(struct mtctl *c, struct mt_err *err)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(c->socket_path);
    if (n == 0 || n >= sizeof sa.sun_path)
        return mt_err_set(err, MT_E_INVAL, "socket path '%s' is %s (at most %zu bytes)",
                          c->socket_path, n ? "too long" : "empty", sizeof sa.sun_path - 1);
    memcpy(sa.sun_path, c->socket_path, n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mt_err_set(err, MT_E_IO, "socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        return unreachable(c, e, err);
    }
    c->fd = fd;
    return 0;
}

void conn_close(struct mtctl *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

int conn_send(struct mtctl *c, Memtrain__Request *req, struct mt_err *err)
{
    int rc;
    if (c->fd < 0 && (rc = conn_open(c, err)))
        return rc;
    req->version = MT_PROTOCOL_VERSION;
    req->id = ++c->next_id;
    size_t n = memtrain__request__get_packed_size(req);
    if (n > MT_FRAME_MAX_DEFAULT)
        return mt_err_set(err, MT_E_TOOBIG,
                          "request of %zu bytes is over the daemon's %u-byte frame limit", n,
                          MT_FRAME_MAX_DEFAULT);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return mt_err_set(err, MT_E_NOMEM, "out of memory for a %zu-byte request", n);
    memtrain__request__pack(req, buf);
    rc = wire_write_frame(c->fd, buf, n, err);
    free(buf);
    if (rc) {
        /* A daemon that turned us away (its connection limit) wrote why
         * before closing: say that rather than "Broken pipe". */
        Memtrain__Response *why = NULL;
        struct mt_err rerr = {0};
        c->status = -1;
        int rrc = conn_recv(c, &why, &rerr);
        if (why)
            memtrain__response__free_unpacked(why, NULL);
        if (rrc && c->status > 0) {
            *err = rerr;
            return rrc;
        }
        return mt_err_prefix(err, "sending to memtraind at %s: ", c->socket_path);
    }
    return 0;
}

const char *conn_status_name(int status)
{
    switch (status) {
    case MEMTRAIN__STATUS__OK: return "OK";
    case MEMTRAIN__STATUS__ERROR: return "ERROR";
    case MEMTRAIN__STATUS__NOT_FOUND: return "NOT_FOUND";
    case MEMTRAIN__STATUS__PERMISSION_DENIED: return "PERMISSION_DENIED";
    case MEMTRAIN__STATUS__INVALID: return "INVALID";
    case MEMTRAIN__STATUS__UNAVAILABLE: return "UNAVAILABLE";
    case MEMTRAIN__STATUS__OVER_LIMIT: return "OVER_LIMIT";
    case MEMTRAIN__STATUS__UNSUPPORTED_VERSION: return "UNSUPPORTED_VERSION";
    }
    return "UNKNOWN";
}

/* The MT_E_* code and a fallback text for a refusal without a message. */
static int status_code(int status, const char **text)
{
    switch (status) {
    case MEMTRAIN__STATUS__NOT_FOUND: *text = "not found"; return MT_E_NOTFOUND;
    case MEMTRAIN__STATUS__PERMISSION_DENIED: *text = "permission denied"; return MT_E_PERM;
    case MEMTRAIN__STATUS__INVALID: *text = "invalid request"; return MT_E_INVAL;
    case MEMTRAIN__STATUS__UNAVAILABLE: *text = "memtraind is unavailable"; return MT_E_BUSY;
    case MEMTRAIN__STATUS__OVER_LIMIT: *text = "over the memory limit"; return MT_E_LIMIT;
    case MEMTRAIN__STATUS__UNSUPPORTED_VERSION:
        *text = "memtraind does not speak this client's protocol version";
        return MT_E_PROTO;
    }
    *text = "memtraind failed";
    return MT_E_IO;
}

int conn_recv(struct mtctl *c, Memtrain__Response **out, struct mt_err *err)
{
    uint8_t *buf;
    size_t len;
    *out = NULL;
    int rc = wire_read_frame(c->fd, &buf, &len, MT_FRAME_MAX_DEFAULT, err);
    if (rc == MT_E_EOF)
        return mt_err_set(err, MT_E_EOF, "memtraind at %s closed the connection",
                          c->socket_path);
    if (rc)
        return mt_err_prefix(err, "reading from memtraind at %s: ", c->socket_path);
    Memtrain__Response *resp = memtrain__response__unpack(NULL, len, buf);
    free(buf);
    if (!resp)
        return mt_err_set(err, MT_E_PROTO, "memtraind sent a malformed response (%zu bytes)", len);
    if (resp->status != MEMTRAIN__STATUS__OK) {
        /* a refusal of a frame the daemon could not read may carry id 0 */
        const char *text;
        rc = status_code(resp->status, &text);
        c->status = resp->status;
        mt_err_set(err, rc, "%s", resp->message[0] ? resp->message : text);
        memtrain__response__free_unpacked(resp, NULL);
        return rc;
    }
    if (resp->id != c->next_id) {
        uint64_t id = resp->id;
        memtrain__response__free_unpacked(resp, NULL);
        return mt_err_set(err, MT_E_PROTO, "memtraind answered request %llu while request %llu "
                          "was waiting", (unsigned long long)id,
                          (unsigned long long)c->next_id);
    }
    *out = resp;
    return 0;
}

int conn_call(struct mtctl *c, Memtrain__Request *req, int body_case,
              Memtrain__Response **resp, struct mt_err *err)
{
    int rc = conn_send(c, req, err);
    if (rc || (rc = conn_recv(c, resp, err)))
        return rc;
    if ((int)(*resp)->body_case != body_case) {
        int got = (int)(*resp)->body_case;
        memtrain__response__free_unpacked(*resp, NULL);
        *resp = NULL;
        return mt_err_set(err, MT_E_PROTO, "memtraind answered with message %d, expected %d",
                          got, body_case);
    }
    return 0;
}

int conn_show(struct mtctl *c, uint64_t job_id, Memtrain__Response **resp, struct mt_err *err)
{
    Memtrain__ShowRequest sq = MEMTRAIN__SHOW_REQUEST__INIT;
    sq.job_id = job_id;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_SHOW;
    req.show = &sq;
    return conn_call(c, &req, MEMTRAIN__RESPONSE__BODY_SHOW, resp, err);
}

int conn_epochs(struct mtctl *c, uint64_t job_id, Memtrain__Response **resp, struct mt_err *err)
{
    Memtrain__MetricsRequest mq = MEMTRAIN__METRICS_REQUEST__INIT;
    mq.job_id = job_id;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_METRICS;
    req.metrics = &mq;
    return conn_call(c, &req, MEMTRAIN__RESPONSE__BODY_METRICS, resp, err);
}

int conn_cancel(struct mtctl *c, uint64_t job_id, Memtrain__Response **resp, struct mt_err *err)
{
    Memtrain__CancelRequest cq = MEMTRAIN__CANCEL_REQUEST__INIT;
    cq.job_id = job_id;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_CANCEL;
    req.cancel = &cq;
    return conn_call(c, &req, MEMTRAIN__RESPONSE__BODY_CANCEL, resp, err);
}

int conn_job_err(struct mt_err *err, uint64_t job_id)
{
    char name[40];
    snprintf(name, sizeof name, "job %llu", (unsigned long long)job_id);
    size_t n = strlen(name);
    /* "job 4" must not count as naming job 42 */
    const char *p = err->msg;
    while ((p = strstr(p, name)) != NULL) {
        if (p[n] < '0' || p[n] > '9')
            return err->code;
        p += n;
    }
    return mt_err_prefix(err, "%s: ", name);
}
