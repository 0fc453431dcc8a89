/* daemonproc.c: a real memtraind for tests (daemonproc.h). */
#define _GNU_SOURCE
#include "daemonproc.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memtrain/wire.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int client_connect(const char *sock)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int client_send(int fd, Memtrain__Request *req)
{
    req->version = MT_PROTOCOL_VERSION;
    size_t n = memtrain__request__get_packed_size(req);
    uint8_t *b = malloc(n ? n : 1);
    memtrain__request__pack(req, b);
    int rc = wire_write_frame(fd, b, n, NULL);
    free(b);
    return rc;
}

Memtrain__Response *client_read(int fd)
{
    uint8_t *b;
    size_t n;
    if (wire_read_frame(fd, &b, &n, MT_FRAME_MAX_WORKER, NULL))
        return NULL;
    Memtrain__Response *r = memtrain__response__unpack(NULL, n, b);
    free(b);
    return r;
}

Memtrain__Response *client_call(int fd, Memtrain__Request *req)
{
    return client_send(fd, req) ? NULL : client_read(fd);
}

int daemonproc_reconfigure(struct daemonproc *p, const char *config, const char *text)
{
    FILE *f = fopen(config, "w");
    if (!f)
        return -1;
    int bad = fputs(text, f) < 0;
    if (fclose(f) != 0 || bad || kill(p->pid, SIGHUP) != 0)
        return -1;
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return 0;
}

/* The child's end: drop to uid/gid, ask, and write the packed Response
 * (or nothing) to fd. */
static void call_as_child(int fd, const char *sock, uid_t uid, gid_t gid, Memtrain__Request *req)
{
    Memtrain__Response *r = NULL;
    if (setgroups(0, NULL) == 0 && setgid(gid) == 0 && setuid(uid) == 0) {
        int c = client_connect(sock);
        r = c >= 0 ? client_call(c, req) : NULL;
    }
    size_t n = r ? memtrain__response__get_packed_size(r) : 0;
    uint8_t *b = malloc(n ? n : 1);
    if (r && b) {
        memtrain__response__pack(r, b);
        (void)!write(fd, b, n);
    }
    _exit(0);
}

Memtrain__Response *client_call_as(const char *sock, uid_t uid, gid_t gid, Memtrain__Request *req)
{
    int p[2];
    if (pipe(p) != 0)
        return NULL;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        call_as_child(p[1], sock, uid, gid, req);
    }
    close(p[1]);
    uint8_t *b = NULL;
    size_t n = 0, cap = 0;
    ssize_t got = 1;
    while (pid > 0 && got > 0) {
        if (n == cap) {
            uint8_t *nb = realloc(b, cap = cap ? 2 * cap : 4096);
            if (!nb)
                break;
            b = nb;
        }
        got = read(p[0], b + n, cap - n);
        if (got > 0)
            n += (size_t)got;
    }
    close(p[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    Memtrain__Response *r = n ? memtrain__response__unpack(NULL, n, b) : NULL;
    free(b);
    return r;
}

int client_ping(const char *sock)
{
    return client_ping_within(sock, 0);
}

int client_ping_within(const char *sock, int ms)
{
    int fd = client_connect(sock);
    if (fd < 0)
        return -1;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (ms > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__PingRequest p = MEMTRAIN__PING_REQUEST__INIT;
    q.body_case = MEMTRAIN__REQUEST__BODY_PING;
    q.ping = &p;
    q.id = 99;
    Memtrain__Response *r = client_call(fd, &q);
    int ok = r && r->status == MEMTRAIN__STATUS__OK && r->id == 99 &&
             r->body_case == MEMTRAIN__RESPONSE__BODY_PING;
    if (r)
        memtrain__response__free_unpacked(r, NULL);
    close(fd);
    return ok ? 0 : -1;
}

Memtrain__Response *client_submit(int fd, const char *yaml, const char *yaml_name)
{
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__SubmitRequest s = MEMTRAIN__SUBMIT_REQUEST__INIT;
    s.spec_case = MEMTRAIN__SUBMIT_REQUEST__SPEC_YAML;
    s.yaml = (char *)yaml;
    s.yaml_name = (char *)yaml_name;
    q.body_case = MEMTRAIN__REQUEST__BODY_SUBMIT;
    q.submit = &s;
    q.id = 1;
    return client_call(fd, &q);
}

uint64_t client_submit_id(int fd, const char *yaml, const char *yaml_name, int *status)
{
    Memtrain__Response *r = client_submit(fd, yaml, yaml_name);
    *status = r ? (int)r->status : -1;
    if (r && r->status != MEMTRAIN__STATUS__OK)
        fprintf(stderr, "submit: %s\n", r->message);
    uint64_t id = r && r->submit && r->submit->job ? r->submit->job->id : 0;
    if (r)
        memtrain__response__free_unpacked(r, NULL);
    return id;
}

int client_watch(int fd, uint64_t job_id, int steps)
{
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__WatchRequest w = MEMTRAIN__WATCH_REQUEST__INIT;
    w.job_id = job_id;
    w.steps = steps != 0;
    q.body_case = MEMTRAIN__REQUEST__BODY_WATCH;
    q.watch = &w;
    q.id = 2;
    return client_send(fd, &q) ? -1 : 0;
}

int client_follow(int fd, int epochs, struct watch_seen *seen)
{
    memset(seen, 0, sizeof *seen);
    for (;;) {
        Memtrain__Response *r = client_read(fd);
        if (!r)
            return -1;
        if (r->status != MEMTRAIN__STATUS__OK) {
            memtrain__response__free_unpacked(r, NULL);
            return -1;
        }
        const Memtrain__WatchEvent *ev = r->watch;
        if (ev && ev->event_case == MEMTRAIN__WATCH_EVENT__EVENT_EPOCH)
            seen->epochs++;
        if (ev && ev->event_case == MEMTRAIN__WATCH_EVENT__EVENT_JOB) {
            seen->state = ev->job->state;
            seen->epochs_done = ev->job->epochs_done;
            snprintf(seen->reason, sizeof seen->reason, "%s", ev->job->reason);
        }
        seen->ended = r->end;
        memtrain__response__free_unpacked(r, NULL);
        if (seen->ended || (epochs && seen->epochs >= epochs))
            return 0;
    }
}

static int spawn(struct daemonproc *p, const char *const *extra)
{
    const char *bin = getenv("MEMTRAIN_DAEMON");
    if (!bin)
        return -1;
    const char *argv[32];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--socket";
    argv[n++] = p->sock;
    argv[n++] = "--db";
    argv[n++] = p->db;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    char logpath[320];
    snprintf(logpath, sizeof logpath, "%s/daemon.log", p->dir);
    p->pid = fork();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0) {
        FILE *f = fopen(logpath, "a");
        if (f) {
            dup2(fileno(f), 2);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) {
        if (client_ping(p->sock) == 0)
            return 0;
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            return -1;
        }
        sleep_ms(20);
    }
    return -1;
}

int daemonproc_start(struct daemonproc *p, const char *const *extra)
{
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/memtrain-test-XXXXXX");
    if (!mkdtemp(p->dir))
        return -1;
    snprintf(p->sock, sizeof p->sock, "%s/d.sock", p->dir);
    snprintf(p->db, sizeof p->db, "%s/state.db", p->dir);
    return spawn(p, extra);
}

int daemonproc_start_at(struct daemonproc *p, const char *dir, const char *const *extra)
{
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "%s", dir);
    snprintf(p->sock, sizeof p->sock, "%s/d.sock", p->dir);
    snprintf(p->db, sizeof p->db, "%s/state.db", p->dir);
    return spawn(p, extra);
}

int daemonproc_restart(struct daemonproc *p, const char *const *extra)
{
    return spawn(p, extra);
}

int daemonproc_stop(struct daemonproc *p, int keep_dir)
{
    int st = 0, rc = 0;
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        waitpid(p->pid, &st, 0);
        rc = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        p->pid = 0;
    }
    if (!keep_dir)
        daemonproc_cleanup(p);
    return rc;
}

pid_t daemonproc_worker(const struct daemonproc *p)
{
    char path[64];
    int c = 0;
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)p->pid, (int)p->pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%d", &c) != 1)
            c = 0;
        fclose(f);
    }
    return c;
}

void daemonproc_cleanup(struct daemonproc *p)
{
    if (!p->dir[0])
        return;
    if (getenv("MEMTRAIN_TEST_KEEP")) {
        fprintf(stderr, "kept %s\n", p->dir);
        return;
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", p->dir);
    p->dir[0] = '\0';
}

int client_send_ckpt_fetch(int fd, uint64_t job_id, uint64_t id)
{
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__CheckpointsRequest c = MEMTRAIN__CHECKPOINTS_REQUEST__INIT;
    c.job_id = job_id;
    c.fetch = 1;
    q.body_case = MEMTRAIN__REQUEST__BODY_CHECKPOINTS;
    q.checkpoints = &c;
    q.id = id;
    return client_send(fd, &q);
}
