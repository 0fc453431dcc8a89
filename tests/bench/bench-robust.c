/* bench-robust.c: memtrain-bench robust. Every rule of rule_list() with its
 * own defaults (no optimizer, lr, schedule, init or feedback given) on a
 * grid of ReLU MLPs on Fashion-MNIST: final test accuracy, whether the
 * training loss fell (last epoch's mean below the first's) and the gap to
 * BP on the same network. Networks are rows of `grid`; add one there. */
#include "bench-robust.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rules/rules.h"
#include "spec.h"
#include "train.h"

#define MAX_HIDDEN 8

struct robust_net {
    const char *name;
    int hidden[MAX_HIDDEN];
    int nh, batch;
};

/* Widths 128 to 2000, 1 to 8 hidden layers (2 to 9 weight layers), never
 * widening, batch 32 to 256. */
static const struct robust_net grid[] = {
    {"784-128-10", {128}, 1, 32},
    {"784-2000-10", {2000}, 1, 128},
    {"784-512-256-256-128-10", {512, 256, 256, 128}, 4, 64},
    {"784-1000x3-10", {1000, 1000, 1000}, 3, 128},
    {"784-2000x4-10", {2000, 2000, 2000, 2000}, 4, 100},
    {"784-256x8-10", {256, 256, 256, 256, 256, 256, 256, 256}, 8, 256},
    {"784-1024-512-256-128-64-10", {1024, 512, 256, 128, 64}, 5, 64},
    {"784-128x4-10", {128, 128, 128, 128}, 4, 32},
};
#define N_NETS (int)(sizeof grid / sizeof grid[0])

struct robust_result {
    int ok;                 /* trained every epoch */
    char why[600];          /* when not: the error */
    double first_loss, last_loss, test_acc, seconds;
    int epochs;             /* trained (tinyfoa: at least one per hidden layer) */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void robust_spec(struct mt_spec *s, const struct robust_opts *o, const char *rule,
                        const struct robust_net *n)
{
    spec_init(s);
    snprintf(s->name, sizeof s->name, "robust-%s", rule);
    snprintf(s->rule.name, sizeof s->rule.name, "%s", rule);
    s->data.kind = MT_DATA_FASHION;
    snprintf(s->data.dir, sizeof s->data.dir, "%s", o->data_dir);
    s->data.train_limit = o->train_samples;
    s->model.n_layers = n->nh + 1;
    s->model.width[0] = 784;
    for (int l = 1; l <= n->nh; l++) {
        s->model.width[l] = n->hidden[l - 1];
        s->model.act[l] = MT_ACT_RELU;
    }
    s->model.width[n->nh + 1] = 10;
    s->batch = n->batch;
    s->epochs = o->epochs;
    if (!strcmp(rule, "tinyfoa"))
        s->epochs *= n->nh; /* one stage per hidden layer, `epochs` each */
    s->seed = 7;
    s->threads = o->threads;
}

static void robust_run(const struct robust_opts *o, const char *rule, const struct robust_net *n,
                       struct robust_result *res)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    memset(res, 0, sizeof *res);
    res->first_loss = res->last_loss = res->test_acc = NAN;
    robust_spec(&s, o, rule, n);
    double t0 = now_s();
    if (trainer_init(&t, &s, &err)) {
        snprintf(res->why, sizeof res->why, "%s", err.msg);
        return;
    }
    int e;
    for (e = 0; e < s.epochs; e++) {
        struct mt_epoch_report rep;
        if (trainer_run_epoch(&t, NULL, NULL, &rep, &err)) {
            snprintf(res->why, sizeof res->why, "epoch %d: %s", e + 1, err.msg);
            break;
        }
        /* TinyFoA: within its last stage (each stage has its own loss). */
        if (e == s.epochs - o->epochs)
            res->first_loss = rep.loss;
        res->last_loss = rep.loss;
        res->test_acc = rep.test_accuracy;
    }
    res->ok = e == s.epochs;
    res->epochs = s.epochs;
    res->seconds = now_s() - t0;
    trainer_fini(&t);
}

/* Whether `name` is in the comma-separated list (NULL = every name). */
static int selected(const char *list, const char *name)
{
    if (!list)
        return 1;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

static int loss_fell(const struct robust_result *r)
{
    return r->ok && r->last_loss < r->first_loss;
}

static void print_row(const struct robust_opts *o, const struct robust_net *n, const char *rule,
                      const struct robust_result *r, double bp_acc)
{
    double gap = 100 * (bp_acc - r->test_acc);
    if (o->json) {
        printf("{\"network\":\"%s\",\"batch\":%d,\"rule\":\"%s\",\"ok\":%s,", n->name, n->batch,
               rule, r->ok ? "true" : "false");
        if (r->ok)
            printf("\"test_accuracy\":%.4f,\"first_loss\":%.6f,\"last_loss\":%.6f,"
                   "\"loss_fell\":%s,",
                   r->test_acc, r->first_loss, r->last_loss, loss_fell(r) ? "true" : "false");
        else
            printf("\"error\":\"%s\",", r->why); /* engine messages hold no quotes */
        if (r->ok && !isnan(bp_acc))
            printf("\"gap_to_bp\":%.2f,", gap);
        printf("\"epochs\":%d,\"seconds\":%.1f}\n", r->epochs, r->seconds);
    } else if (!r->ok) {
        printf("| %s | %d | %s | — | — | no | — | %.0f | %s |\n", n->name, n->batch, rule,
               r->seconds, r->why);
    } else {
        printf("| %s | %d | %s | %.2f %% | %.3f → %.3f | %s | ", n->name, n->batch, rule,
               100 * r->test_acc, r->first_loss, r->last_loss, loss_fell(r) ? "yes" : "**no**");
        if (isnan(bp_acc))
            printf("— |");
        else
            printf("%+.2f |", 0.0 - gap);
        printf(" %.0f | ", r->seconds);
        if (r->epochs != o->epochs)
            printf("%d epochs: %d per hidden layer; loss over the last stage", r->epochs,
                   o->epochs);
        printf(" |\n");
    }
    fflush(stdout);
}

int bench_robust(const struct robust_opts *o)
{
    const struct mt_rule *const *rules = rule_list();
    int failed = 0;
    if (!o->json) {
        printf("## robustness grid: each rule with its defaults on Fashion-MNIST, %d epochs, "
               "seed 7, ", o->epochs);
        if (o->train_samples > 0)
            printf("the first %ld training samples", o->train_samples);
        else
            printf("the whole training set");
        printf(", the whole test set\n\n");
        printf("| network | batch | rule | test acc | train loss first → last | fell | to BP "
               "(points) | s | note |\n|---|---|---|---|---|---|---|---|---|\n");
    }
    for (int i = 0; i < N_NETS; i++) {
        const struct robust_net *n = &grid[i];
        if (o->net && !strstr(n->name, o->net))
            continue;
        double bp_acc = NAN;
        for (int r = 0; rules[r]; r++) {
            if (!selected(o->rule, rules[r]->name))
                continue;
            struct robust_result res;
            robust_run(o, rules[r]->name, n, &res);
            if (!strcmp(rules[r]->name, "bp") && res.ok)
                bp_acc = res.test_acc;
            print_row(o, n, rules[r]->name, &res, bp_acc);
            failed |= !res.ok;
        }
    }
    return failed;
}
