/* submit.c: the commands that make jobs: submit (one spec under one rule,
 * or under several rules as a group) and resubmit (a stored job's spec
 * again). The daemon parses the spec, applies --rule and --set, plans and
 * admits; mtctl only carries the words. */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "memtrain/bytesize.h"
#include "mtctl.h"
#include "spec.h"

#define SUBMIT_SETS_MAX 64
#define SUBMIT_RULES_MAX 16

/* What submit and resubmit take besides the spec. */
struct submit_opts {
    const char *name, *rule;
    const char *rules[SUBMIT_RULES_MAX];   /* --rules, split */
    size_t n_rules;
    char *sets[SUBMIT_SETS_MAX];           /* --set KEY=VALUE, in order */
    size_t n_sets;
    long priority;
    uint64_t limit;
    struct mtctl_labels labels;
    int follow, steps;
    char rules_buf[256];
};

#define SUBMIT_OPTS_HELP                                                                      \
    "  -n, --name NAME        the job's name (instead of the spec's name:)\n"                 \
    "  -r, --rule NAME        the learning rule (instead of the spec's rule:); the\n"         \
    "                         spec's rule settings the rule does not read are\n"              \
    "                         dropped (`mtctl plan` lists the rules)\n"                       \
    "  -R, --rules A,B,...    one job per rule, all in one group named after the\n"           \
    "                         first job (gN: `mtctl compare gN`, `ls --group N`);\n"          \
    "                         a rule the daemon refuses is reported and skipped\n"            \
    "  -s, --set KEY=VALUE    set one spec key, after the rule (repeatable): the\n"           \
    "                         dotted names of docs/spec-reference.md, the value\n"            \
    "                         written as in the file: --set optimizer.lr=0.01,\n"             \
    "                         --set epochs=3, --set rule.feedback_scale=0.5,\n"               \
    "                         --set dataset.augment.crop=2, --set optimizer=adam.\n"          \
    "                         The model's structure is not set this way\n"                    \
    "  -p, --priority N       higher runs first; equal priorities in submit order\n"          \
    "                         (default 0)\n"                                                  \
    "  -m, --mem-limit SIZE   the job's memory limit (instead of memory_limit:);\n"           \
    "                         SIZE is bytes, or a number with K, M, G or T (powers\n"         \
    "                         of 1024, also KiB, MiB, ...) or kB, MB, GB, TB\n"               \
    "                         (powers of 1000): 2G, 512M, 1.5GiB, 1e9, 100000000\n"           \
    "  -f, --follow           then follow the job as `mtctl watch` does and exit\n"           \
    "                         with its final state's status (not with --rules)\n"             \
    "      --steps            with --follow: also show every training step\n"                 \
    "  -l, --label KEY=VALUE  a label stored with the job (repeatable, at most 16;\n"         \
    "                         `mtctl ls -l KEY=VALUE` selects by it). KEY: 1-63 of\n"         \
    "                         letters, digits, '.', '_', '-', '/', starting with a\n"         \
    "                         letter or digit; VALUE: 0-63 of letters, digits, '.',\n"        \
    "                         '_', '-'\n"                                                     \
    "  -o json, --json        print the accepted job as JSON (with --follow, JSON\n"          \
    "                         lines: the job, then the watch events; with --rules,\n"         \
    "                         one document: group_id, jobs, refused)\n"                       \
    "      --socket PATH      the daemon's socket\n"                                          \
    "  -h, --help             this text\n"                                                    \
    "\n"                                                                                      \
    "Exit status: 0 submitted, 1 refused (invalid spec, over the memory limit,\n"             \
    "daemon unavailable; with --rules, any rule refused), 2 usage, 3 daemon\n"                \
    "unreachable; with --follow, the job's final state: 0 COMPLETED, 10 FAILED,\n"            \
    "11 CANCELLED, 12 OUT_OF_MEMORY, 13 INTERRUPTED; 130 Ctrl-C stopped following\n"          \
    "(the job goes on: \"stopped following job N; it keeps running (mtctl cancel N)\").\n"

static const char submit_help[] =
    "Usage: mtctl submit [OPTIONS] SPEC.yaml\n"
    "\n"
    "Submit the training job described by SPEC.yaml (see docs/spec-reference.md;\n"
    "\"-\" reads standard input) and print its id: \"submitted job 12\". The daemon\n"
    "parses the spec, applies --rule and each --set, plans its memory, and refuses\n"
    "a job that cannot fit; its message names the file and line, or the --set key,\n"
    "of a mistake. With --rules, the same spec goes in once per rule:\n"
    "\n"
    "  mtctl submit examples/mnist-bp.yaml --rules bp,dfa,memdfa,asa,approx8\n"
    "  mtctl compare g12\n"
    "\n"
    "Options:\n" SUBMIT_OPTS_HELP;

static const char resubmit_help[] =
    "Usage: mtctl resubmit [OPTIONS] ID\n"
    "\n"
    "Submit a new job with job ID's stored spec, as it ran (the rule's defaults\n"
    "resolved), changed by the options: `mtctl resubmit 7 --set epochs=40`,\n"
    "`mtctl resubmit 7 --rules dfa,memdfa`. Any job you may read will do; the\n"
    "new one is yours. `mtctl show --spec ID` prints the spec as YAML.\n"
    "\n"
    "Options:\n" SUBMIT_OPTS_HELP;

/* Cancel job `id` without printing anything; 0 when the daemon took it. */
static int cancel_job(struct mtctl *c, uint64_t id)
{
    Memtrain__Response *resp;
    struct mt_err err = {0};
    int rc = conn_cancel(c, id, &resp, &err);
    if (!rc)
        memtrain__response__free_unpacked(resp, NULL);
    c->status = -1;   /* the submit's outcome decides the exit status */
    return rc;
}

/* --rules A,B,C into o->rules (pointing into o->rules_buf). */
static int split_rules(struct mtctl *c, const char *arg, struct submit_opts *o)
{
    if (strlen(arg) >= sizeof o->rules_buf)
        return mtctl_usage_error(c, "--rules: the list is too long");
    strcpy(o->rules_buf, arg);
    o->n_rules = 0;
    for (char *save = NULL, *r = strtok_r(o->rules_buf, ",", &save); r;
         r = strtok_r(NULL, ",", &save)) {
        if (o->n_rules == SUBMIT_RULES_MAX)
            return mtctl_usage_error(c, "--rules: at most %d rules", SUBMIT_RULES_MAX);
        for (size_t i = 0; i < o->n_rules; i++)
            if (strcmp(o->rules[i], r) == 0)
                return mtctl_usage_error(c, "--rules: %s is listed twice", r);
        o->rules[o->n_rules++] = r;
    }
    if (o->n_rules == 0)
        return mtctl_usage_error(c, "--rules: expected a list of rules (bp,dfa,memdfa)");
    return 0;
}

/* The options of submit and resubmit; optind is past them after. */
static int parse_submit_opts(struct mtctl *c, int argc, char **argv, const char *help,
                             struct submit_opts *o)
{
    enum { OPT_STEPS = 0x2001 };
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'},
        {"rule", required_argument, NULL, 'r'},
        {"rules", required_argument, NULL, 'R'},
        {"set", required_argument, NULL, 's'},
        {"priority", required_argument, NULL, 'p'},
        {"mem-limit", required_argument, NULL, 'm'},
        {"follow", no_argument, NULL, 'f'},
        {"steps", no_argument, NULL, OPT_STEPS},
        {"label", required_argument, NULL, 'l'},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct mt_err perr;
    char *end;
    int opt, rc;
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS "n:r:R:s:p:m:fl:", longopts,
                              NULL)) != -1) {
        switch (opt) {
        case 'l':
            if (mtctl_parse_label(c, optarg, &o->labels))
                return MTCTL_EXIT_USAGE;
            break;
        case 'n':
            o->name = optarg;
            break;
        case 'r':
            o->rule = optarg;
            break;
        case 'R':
            if ((rc = split_rules(c, optarg, o)))
                return rc;
            break;
        case 's':
            if (!strchr(optarg, '=') || optarg[0] == '=')
                return mtctl_usage_error(c, "--set '%s': expected KEY=VALUE "
                                         "(--set optimizer.lr=0.01)", optarg);
            if (o->n_sets == SUBMIT_SETS_MAX)
                return mtctl_usage_error(c, "--set: at most %d keys", SUBMIT_SETS_MAX);
            o->sets[o->n_sets++] = optarg;
            break;
        case 'p':
            o->priority = strtol(optarg, &end, 10);
            if (!*optarg || *end || o->priority < INT32_MIN || o->priority > INT32_MAX)
                return mtctl_usage_error(c, "--priority '%s' is not an integer", optarg);
            break;
        case 'm':
            if (mt_bytesize_parse(optarg, &o->limit, &perr))
                return mtctl_usage_error(c, "--mem-limit: %s", perr.msg);
            if (o->limit == 0)
                return mtctl_usage_error(c, "--mem-limit: expected more than 0 bytes");
            break;
        case 'f':
            o->follow = 1;
            break;
        case OPT_STEPS:
            o->steps = 1;
            break;
        MTCTL_OPT_DEFAULT(c, opt, help)
        }
    }
    if (o->rule && o->n_rules)
        return mtctl_usage_error(c, "--rule and --rules: give one of them");
    if (o->follow && o->n_rules)
        return mtctl_usage_error(c, "--follow follows one job; with --rules, follow the "
                                 "group with `mtctl top` or compare it when done");
    return 0;
}

/* One Submit request; the accepted job in *resp (the caller frees it). */
static int submit_one(struct mtctl *c, Memtrain__SubmitRequest *sub, const char *rule,
                      Memtrain__Response **resp, struct mt_err *err)
{
    sub->rule = (char *)(rule ? rule : "");
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_SUBMIT;
    req.submit = sub;
    int rc = conn_call(c, &req, MEMTRAIN__RESPONSE__BODY_SUBMIT, resp, err);
    if (rc)
        return rc;
    const Memtrain__Job *job = (*resp)->submit->job;
    if (!job) {
        memtrain__response__free_unpacked(*resp, NULL);
        return mt_err_set(err, MT_E_PROTO, "memtraind accepted the job but did not say which");
    }
    if (rule && strcmp(job->rule, rule) != 0) {
        /* a daemon older than SubmitRequest.rule runs the spec's rule */
        uint64_t id = job->id;
        mt_err_set(err, MT_E_PROTO, "memtraind ignored --rule %s (it predates the option): job "
                   "%llu would train with %s; %s", rule, (unsigned long long)id, job->rule,
                   cancel_job(c, id) ? "cancelling it failed" : "it is cancelled");
        memtrain__response__free_unpacked(*resp, NULL);
        return MT_E_PROTO;
    }
    return 0;
}

/* A single job: print it and follow it if asked. */
static int submit_single(struct mtctl *c, Memtrain__SubmitRequest *sub,
                         const struct submit_opts *o)
{
    Memtrain__Response *resp;
    struct mt_err err = {0};
    if (submit_one(c, sub, o->rule, &resp, &err))
        return mtctl_fail(c, &err);
    uint64_t id = resp->submit->job->id;
    if (c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_str(&j, "event", "submitted");
        json_job(&j, "job", resp->submit->job);
        json_end(&j);
    } else {
        printf("submitted job %llu\n", (unsigned long long)id);
        fflush(stdout);
    }
    memtrain__response__free_unpacked(resp, NULL);
    struct follow_opts fo = {.steps = o->steps};
    return o->follow ? watch_job(c, id, &fo) : MTCTL_EXIT_OK;
}

/* One job per rule of --rules: the first accepted leads the group, the
 * others join it; a refused rule is said and skipped (exit status 1). */
static int submit_group(struct mtctl *c, Memtrain__SubmitRequest *sub,
                        const struct submit_opts *o)
{
    Memtrain__Response *resp[SUBMIT_RULES_MAX] = {0};
    struct mt_err errs[SUBMIT_RULES_MAX];
    uint64_t group = 0;
    int refused = 0, status = MTCTL_EXIT_OK;
    for (size_t i = 0; i < o->n_rules; i++) {
        memset(&errs[i], 0, sizeof errs[i]);
        sub->start_group = group == 0;
        sub->group_id = group;
        int rc = submit_one(c, sub, o->rules[i], &resp[i], &errs[i]);
        if (rc) {
            resp[i] = NULL;
            refused++;
            if (!c->json)
                fprintf(stderr, "mtctl: rule %s not submitted: %s\n", o->rules[i],
                        errs[i].msg);
            int st = mtctl_exit_code(rc);
            if (status == MTCTL_EXIT_OK || st == MTCTL_EXIT_UNREACHABLE)
                status = st;
            if (st == MTCTL_EXIT_UNREACHABLE)
                break;   /* the next ones would not get through either */
            continue;
        }
        const Memtrain__Job *job = resp[i]->submit->job;
        if (!group)
            group = job->group_id ? job->group_id : job->id;
        if (!c->json) {
            printf("submitted job %llu (%s)\n", (unsigned long long)job->id, job->rule);
            fflush(stdout);
        }
    }
    if (c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_str(&j, "event", "submitted");
        if (group)
            json_u64(&j, "group_id", group);
        json_arr(&j, "jobs");
        for (size_t i = 0; i < o->n_rules; i++)
            if (resp[i])
                json_job(&j, NULL, resp[i]->submit->job);
        json_arr_end(&j);
        json_arr(&j, "refused");
        for (size_t i = 0; i < o->n_rules; i++)
            if (!resp[i] && errs[i].msg[0]) {
                json_obj(&j, NULL);
                json_str(&j, "rule", o->rules[i]);
                json_str(&j, "message", errs[i].msg);
                json_obj_end(&j);
            }
        json_arr_end(&j);
        json_end(&j);
    } else if (group) {
        printf("group g%llu: %zu job%s (mtctl compare g%llu, mtctl ls --group %llu)\n",
               (unsigned long long)group, o->n_rules - (size_t)refused,
               o->n_rules - (size_t)refused == 1 ? "" : "s", (unsigned long long)group,
               (unsigned long long)group);
    }
    for (size_t i = 0; i < o->n_rules; i++)
        if (resp[i])
            memtrain__response__free_unpacked(resp[i], NULL);
    return status;
}

/* The request's fields from the options (the spec is the caller's). */
static void fill_request(Memtrain__SubmitRequest *sub, struct submit_opts *o)
{
    sub->priority = (int32_t)o->priority;
    sub->name = (char *)(o->name ? o->name : "");
    sub->memory_limit = o->limit;
    sub->n_labels = o->labels.n;
    sub->labels = o->labels.ptrs;
    sub->n_set = o->n_sets;
    sub->set = o->sets;
}

static int submit_with(struct mtctl *c, Memtrain__SubmitRequest *sub, struct submit_opts *o)
{
    fill_request(sub, o);
    return o->n_rules ? submit_group(c, sub, o) : submit_single(c, sub, o);
}

int cmd_submit(struct mtctl *c, int argc, char **argv)
{
    struct submit_opts o = {.name = NULL};
    mtctl_getopt_reset(c, argv, "submit");
    int rc = parse_submit_opts(c, argc, argv, submit_help, &o);
    if (rc)
        return rc;
    char *yaml;
    const char *yaml_name;
    if ((rc = spec_arg(c, argc, argv, &yaml, &yaml_name)))
        return rc;
    Memtrain__SubmitRequest sub = MEMTRAIN__SUBMIT_REQUEST__INIT;
    sub.spec_case = MEMTRAIN__SUBMIT_REQUEST__SPEC_YAML;
    sub.yaml = yaml;
    sub.yaml_name = (char *)yaml_name;
    rc = submit_with(c, &sub, &o);
    free(yaml);
    return rc;
}

int cmd_resubmit(struct mtctl *c, int argc, char **argv)
{
    struct submit_opts o = {.name = NULL};
    mtctl_getopt_reset(c, argv, "resubmit");
    int rc = parse_submit_opts(c, argc, argv, resubmit_help, &o);
    if (rc)
        return rc;
    if (argc - optind != 1)
        return mtctl_usage_error(c, "expected one job ID");
    uint64_t id;
    if ((rc = mtctl_parse_id(c, argv[optind], &id)))
        return rc;
    Memtrain__SubmitRequest sub = MEMTRAIN__SUBMIT_REQUEST__INIT;
    sub.resubmit_of = id;
    return submit_with(c, &sub, &o);
}
