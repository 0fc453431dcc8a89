/* test-access.c: who may read and control a job (daemon/memtraind/access.h),
 * through the real socket. root submits; a forked child that has dropped to
 * uid 65534 ("nobody") asks. The socket's directory and mode are opened to
 * everyone here so that child can connect at all (the daemon itself makes
 * them 0750 and 0660). Needs root; skipped with a message otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemonproc.h"

#define OTHER_UID 65534
#define OTHER_GID 65534

static struct daemonproc dp;
static char cfg_path[64];
static uint64_t done_id, running_id, group_id;  /* group_id: a group root leads */

static const char *short_job =
    "name: mine\ndataset: {name: synthetic, synthetic_train: 512, synthetic_test: 64}\n"
    "model: {input: 16, hidden: [16], classes: 4}\nbatch: 32\nepochs: 1\nthreads: 1\n";
static const char *long_job =
    "name: long\ndataset: {name: synthetic, synthetic_train: 20000, synthetic_test: 500}\n"
    "model: {input: 64, hidden: [256, 256], classes: 4}\nbatch: 32\nepochs: 50\nthreads: 1\n";

static void write_config(const char *share)
{
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fprintf(f, "share_results: %s\n", share);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0)
        return 0;
    snprintf(cfg_path, sizeof cfg_path, "/tmp/mt-access-XXXXXX");
    int fd = mkstemp(cfg_path);
    if (fd < 0)
        return -1;
    close(fd);
    write_config("owner");
    const char *args[] = {"--config", cfg_path, NULL};
    if (daemonproc_start(&dp, args) != 0)
        return -1;
    /* Let the second user reach the socket (test only). */
    if (chmod(dp.dir, 0755) != 0 || chmod(dp.sock, 0666) != 0)
        return -1;
    int c = client_connect(dp.sock);
    int st;
    done_id = client_submit_id(c, short_job, "access.yaml", &st);
    running_id = client_submit_id(c, long_job, "access.yaml", &st);
    Memtrain__SubmitRequest su = MEMTRAIN__SUBMIT_REQUEST__INIT;
    su.spec_case = MEMTRAIN__SUBMIT_REQUEST__SPEC_YAML;
    su.yaml = (char *)short_job;
    su.start_group = 1;
    Memtrain__Request rq = MEMTRAIN__REQUEST__INIT;
    rq.body_case = MEMTRAIN__REQUEST__BODY_SUBMIT;
    rq.submit = &su;
    Memtrain__Response *r = client_call(c, &rq);
    if (r && r->body_case == MEMTRAIN__RESPONSE__BODY_SUBMIT && r->submit->job &&
        r->submit->job->group_id == r->submit->job->id)   /* a leader is its own group */
        group_id = r->submit->job->id;
    if (r)
        memtrain__response__free_unpacked(r, NULL);
    if (!group_id)
        return -1;
    if (!done_id || !running_id || client_watch(c, done_id, 0) != 0)
        return -1;
    struct watch_seen seen;
    int rc = client_follow(c, 0, &seen);
    close(c);
    return rc == 0 && seen.state == MEMTRAIN__JOB_STATE__COMPLETED ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (geteuid() != 0)
        return 0;
    unlink(cfg_path);
    return daemonproc_stop(&dp, 0) == 0 ? 0 : -1;
}

/* What the child saw: the first response's status and message, and for a
 * list the jobs it held. */
struct answer {
    int status;                   /* -1: no response */
    int n_jobs;
    int64_t owner;                /* a submit's new job's owner; -1 */
    char message[256];
};

/* Send req as uid OTHER_UID with primary group gid (no supplementary
 * groups), from a forked child. */
static struct answer ask_as(gid_t gid, Memtrain__Request *req)
{
    struct answer a = {.status = -1, .owner = -1};
    Memtrain__Response *r = client_call_as(dp.sock, OTHER_UID, gid, req);
    if (r) {
        a.status = r->status;
        if (r->body_case == MEMTRAIN__RESPONSE__BODY_SUBMIT && r->submit->job)
            a.owner = r->submit->job->owner_uid;
        a.n_jobs = r->body_case == MEMTRAIN__RESPONSE__BODY_LIST ? (int)r->list->n_jobs : 0;
        snprintf(a.message, sizeof a.message, "%s", r->message);
        memtrain__response__free_unpacked(r, NULL);
    } else {
        snprintf(a.message, sizeof a.message, "no answer");
    }
    return a;
}

enum verb { V_SHOW, V_WATCH, V_METRICS, V_LOGS, V_CKPT_LS, V_CKPT_EXPORT, V_CANCEL, V_LIST_ALL,
            V_RESUBMIT, V_JOIN_GROUP };
static const char *verb_names[] = {"show", "watch", "metrics", "logs", "ckpt ls", "ckpt export",
                                   "cancel", "ls --all", "resubmit", "join group"};

static struct answer ask(gid_t gid, enum verb v, uint64_t job)
{
    static char set_epochs[] = "epochs=1", *epochs_1[] = {set_epochs};
    Memtrain__Request q = MEMTRAIN__REQUEST__INIT;
    Memtrain__ShowRequest sh = MEMTRAIN__SHOW_REQUEST__INIT;
    Memtrain__WatchRequest wa = MEMTRAIN__WATCH_REQUEST__INIT;
    Memtrain__MetricsRequest me = MEMTRAIN__METRICS_REQUEST__INIT;
    Memtrain__LogsRequest lo = MEMTRAIN__LOGS_REQUEST__INIT;
    Memtrain__CheckpointsRequest ck = MEMTRAIN__CHECKPOINTS_REQUEST__INIT;
    Memtrain__CancelRequest ca = MEMTRAIN__CANCEL_REQUEST__INIT;
    Memtrain__ListRequest li = MEMTRAIN__LIST_REQUEST__INIT;
    Memtrain__SubmitRequest su = MEMTRAIN__SUBMIT_REQUEST__INIT;
    sh.job_id = wa.job_id = me.job_id = lo.job_id = ck.job_id = ca.job_id = job;
    switch (v) {
    case V_SHOW: q.body_case = MEMTRAIN__REQUEST__BODY_SHOW; q.show = &sh; break;
    case V_WATCH: q.body_case = MEMTRAIN__REQUEST__BODY_WATCH; q.watch = &wa; break;
    case V_METRICS: q.body_case = MEMTRAIN__REQUEST__BODY_METRICS; q.metrics = &me; break;
    case V_LOGS: q.body_case = MEMTRAIN__REQUEST__BODY_LOGS; q.logs = &lo; break;
    case V_CKPT_EXPORT: ck.fetch = 1; /* fall through */
    case V_CKPT_LS: q.body_case = MEMTRAIN__REQUEST__BODY_CHECKPOINTS; q.checkpoints = &ck; break;
    case V_CANCEL: q.body_case = MEMTRAIN__REQUEST__BODY_CANCEL; q.cancel = &ca; break;
    case V_LIST_ALL:
        li.all_users = 1;
        q.body_case = MEMTRAIN__REQUEST__BODY_LIST;
        q.list = &li;
        break;
    case V_RESUBMIT:   /* mtctl resubmit JOB --set epochs=1 */
        su.resubmit_of = job;
        su.n_set = 1;
        su.set = epochs_1;
        q.body_case = MEMTRAIN__REQUEST__BODY_SUBMIT;
        q.submit = &su;
        break;
    case V_JOIN_GROUP:   /* mtctl submit --rules ... joining the group JOB leads */
        su.spec_case = MEMTRAIN__SUBMIT_REQUEST__SPEC_YAML;
        su.yaml = (char *)short_job;
        su.group_id = job;
        q.body_case = MEMTRAIN__REQUEST__BODY_SUBMIT;
        q.submit = &su;
        break;
    }
    struct answer a = ask_as(gid, &q);
    printf("uid %d gid %d: %-11s job %llu -> status %d, %d jobs: %s\n", OTHER_UID, (int)gid,
           verb_names[v], (unsigned long long)job, a.status, a.n_jobs, a.message);
    return a;
}

static void reload(const char *share)
{
    char text[64];
    snprintf(text, sizeof text, "share_results: %s\n", share);
    assert_int_equal(daemonproc_reconfigure(&dp, cfg_path, text), 0);
}

/* share_results: owner (the default): another user reads nothing of root's
 * jobs, and cannot tell them from missing ones. */
static void test_owner_only_hides_jobs(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    static const enum verb reads[] = {V_SHOW, V_WATCH, V_METRICS, V_LOGS, V_CKPT_LS,
                                      V_CKPT_EXPORT};
    struct answer missing = ask(OTHER_GID, V_SHOW, 999999);
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        struct answer a = ask(OTHER_GID, reads[i], done_id);
        assert_int_equal(a.status, MEMTRAIN__STATUS__NOT_FOUND);
        assert_non_null(strstr(a.message, "not yours"));
    }
    /* the same words as for an id that does not exist */
    struct answer a = ask(OTHER_GID, V_SHOW, done_id);
    assert_int_equal(missing.status, a.status);
    assert_non_null(strstr(missing.message, "not yours"));
    a = ask(OTHER_GID, V_CANCEL, running_id);
    assert_int_equal(a.status, MEMTRAIN__STATUS__NOT_FOUND);
    /* nor resubmit root's job (its spec is root's to read), nor join root's group */
    a = ask(OTHER_GID, V_RESUBMIT, done_id);
    assert_int_equal(a.status, MEMTRAIN__STATUS__NOT_FOUND);
    assert_non_null(strstr(a.message, "not yours"));
    a = ask(OTHER_GID, V_JOIN_GROUP, group_id);
    assert_int_equal(a.status, MEMTRAIN__STATUS__INVALID);
    assert_non_null(strstr(a.message, "no such group of yours"));
    a = ask(OTHER_GID, V_LIST_ALL, 0);
    assert_int_equal(a.status, MEMTRAIN__STATUS__OK);
    assert_int_equal(a.n_jobs, 0);
    /* the running job is still running */
    a = ask(0, V_SHOW, running_id); /* gid 0, but share_results is owner */
    assert_int_equal(a.status, MEMTRAIN__STATUS__NOT_FOUND);
}

/* share_results: group (after a reload): a member of the daemon's group
 * (gid 0 here, the test daemon's) reads every verb, but still cannot cancel;
 * a user outside the group still reads nothing. */
static void test_group_reads_but_cannot_cancel(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    reload("group");
    static const enum verb reads[] = {V_SHOW, V_WATCH, V_METRICS, V_LOGS, V_CKPT_LS,
                                      V_CKPT_EXPORT};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        struct answer a = ask(0, reads[i], done_id);
        assert_int_equal(a.status, MEMTRAIN__STATUS__OK);
    }
    struct answer a = ask(0, V_LIST_ALL, 0);
    assert_int_equal(a.status, MEMTRAIN__STATUS__OK);
    assert_int_equal(a.n_jobs, 3);
    a = ask(0, V_CANCEL, running_id);
    assert_int_equal(a.status, MEMTRAIN__STATUS__PERMISSION_DENIED);
    assert_non_null(strstr(a.message, "only its owner or root"));
    a = ask(OTHER_GID, V_SHOW, done_id);
    assert_int_equal(a.status, MEMTRAIN__STATUS__NOT_FOUND);
    a = ask(OTHER_GID, V_LIST_ALL, 0);
    assert_int_equal(a.n_jobs, 0);
    /* a member may resubmit a job it reads: the new job is the member's */
    a = ask(0, V_RESUBMIT, done_id);
    assert_int_equal(a.status, MEMTRAIN__STATUS__OK);
    assert_int_equal(a.owner, OTHER_UID);
    /* and back: a reload to owner closes reading again */
    reload("owner");
    a = ask(0, V_SHOW, done_id);
    assert_int_equal(a.status, MEMTRAIN__STATUS__NOT_FOUND);
}

int main(void)
{
    if (geteuid() != 0)
        printf("test-access: not root, so no second user can be made; skipping\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owner_only_hides_jobs),
        cmocka_unit_test(test_group_reads_but_cannot_cancel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
