/* bench-robust.c: memtrain-bench robust. Every rule of rule_list() with its
 * own defaults (no optimizer, lr, schedule, init or feedback given) on a
 * grid of ReLU MLPs and conv nets on Fashion-MNIST: final test accuracy,
 * whether the training loss fell (last epoch's mean below the first's) and
 * the gap to BP on the same network. Networks are rows of `grid`; add one
 * there. A conv row is a YAML `model:` section read by the spec parser;
 * rules without layer-list support (no MT_RULE_LAYERS) print as refused. */
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
    const char *model;      /* a layer-list net's YAML `model:` section; NULL = MLP */
};

/* examples/mnist-lenet-bp.yaml's net (Chu et al.): 20c5-maxpool2-50c5-maxpool2-500-10. */
#define LENET_YAML                                                                     \
    "model:\n"                                                                          \
    "  input: [1, 28, 28]\n"                                                            \
    "  layers: [{conv: {channels: 20, kernel: 5}}, relu, {maxpool: 2},\n"               \
    "           {conv: {channels: 50, kernel: 5}}, relu, {maxpool: 2},\n"               \
    "           flatten, {dense: 500}, relu, {dense: 10}]\n"

/* Liao et al.'s CIFAR net on 1x28x28: 32c5p2-relu-maxpool3/2-64c5p2-relu-
 * avgpool3/2-64c5p2-relu-avgpool3/2-128-10. Unpadded 3/2 pools take the maps
 * 28 -> 13 -> 6 -> 2 (the last pool drops the 6x6 map's last row and column),
 * so the dense layer reads 64x2x2 = 256. */
#define LIAO_YAML                                                                      \
    "model:\n"                                                                          \
    "  input: [1, 28, 28]\n"                                                            \
    "  layers: [{conv: {channels: 32, kernel: 5, padding: 2}}, relu,\n"                 \
    "           {maxpool: {kernel: 3, stride: 2}},\n"                                  \
    "           {conv: {channels: 64, kernel: 5, padding: 2}}, relu,\n"                 \
    "           {avgpool: {kernel: 3, stride: 2}},\n"                                  \
    "           {conv: {channels: 64, kernel: 5, padding: 2}}, relu,\n"                 \
    "           {avgpool: {kernel: 3, stride: 2}},\n"                                  \
    "           flatten, {dense: 128}, relu, {dense: 10}]\n"

/* examples/fashion-resnet-bp.yaml's model (without its augmentation): a 3x3
 * stem, pre-activation blocks of 16, 32 and 64 channels, global average pool. */
#define RESNET_YAML                                                                    \
    "model:\n"                                                                          \
    "  input: [1, 28, 28]\n"                                                            \
    "  layers: [{conv: {channels: 16, kernel: 3, padding: 1, bias: false}},\n"         \
    "           {residual: 16}, {residual: {channels: 32, stride: 2}},\n"               \
    "           {residual: {channels: 64, stride: 2}},\n"                               \
    "           batchnorm, relu, globalavgpool, {dense: 10}]\n"

/* Widths 128 to 2000, 1 to 8 hidden layers (2 to 9 weight layers), never
 * widening, batch 32 to 256. */
static const struct robust_net grid[] = {
    {"784-128-10", {128}, 1, 32, NULL},
    {"784-2000-10", {2000}, 1, 128, NULL},
    {"784-512-256-256-128-10", {512, 256, 256, 128}, 4, 64, NULL},
    {"784-1000x3-10", {1000, 1000, 1000}, 3, 128, NULL},
    {"784-2000x4-10", {2000, 2000, 2000, 2000}, 4, 100, NULL},
    {"784-256x8-10", {256, 256, 256, 256, 256, 256, 256, 256}, 8, 256, NULL},
    {"784-1024-512-256-128-64-10", {1024, 512, 256, 128, 64}, 5, 64, NULL},
    {"784-128x4-10", {128, 128, 128, 128}, 4, 32, NULL},
    /* Conv nets (issue 12); `--net conv` selects them, `--net mlp` the rest. */
    {"conv-lenet", {0}, 0, 100, LENET_YAML},
    {"conv-liao", {0}, 0, 100, LIAO_YAML},
    {"conv-resnet", {0}, 0, 128, RESNET_YAML},
};
#define N_NETS (int)(sizeof grid / sizeof grid[0])

struct robust_result {
    int ok;                 /* trained every epoch */
    int refused;            /* a layer-list net under a rule without layer lists */
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

/* The spec of one run: the row's model, then the grid's settings over it. */
static int robust_spec(struct mt_spec *s, const struct robust_opts *o, const char *rule,
                       const struct robust_net *n, struct mt_err *err)
{
    spec_init(s);
    if (n->model) {
        /* The parser wants a whole spec; the keys it requires besides the model. */
        char yaml[2048];
        int len = snprintf(yaml, sizeof yaml, "dataset: fashion-mnist\nbatch: %d\nepochs: %d\n%s",
                           n->batch, o->epochs, n->model);
        if (spec_parse_string(yaml, (size_t)len, n->name, s, err))
            return -1;
    }
    snprintf(s->name, sizeof s->name, "robust-%s", rule);
    snprintf(s->rule.name, sizeof s->rule.name, "%s", rule);
    s->data.kind = MT_DATA_FASHION;
    snprintf(s->data.dir, sizeof s->data.dir, "%s", o->data_dir);
    s->data.train_limit = o->train_samples;
    if (!n->model) {
        s->model.n_layers = n->nh + 1;
        s->model.width[0] = 784;
        for (int l = 1; l <= n->nh; l++) {
            s->model.width[l] = n->hidden[l - 1];
            s->model.act[l] = MT_ACT_RELU;
        }
        s->model.width[n->nh + 1] = 10;
    }
    s->batch = n->batch;
    s->epochs = o->epochs;
    if (!strcmp(rule, "tinyfoa") && n->nh > 0)
        s->epochs *= n->nh; /* one stage per hidden layer, `epochs` each */
    s->seed = 7;
    s->threads = o->threads;
    return 0;
}

static void robust_run(const struct robust_opts *o, const char *rule, const struct robust_net *n,
                       struct robust_result *res)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    memset(res, 0, sizeof *res);
    res->first_loss = res->last_loss = res->test_acc = NAN;
    double t0 = now_s();
    if (robust_spec(&s, o, rule, n, &err) || trainer_init(&t, &s, &err)) {
        const struct mt_rule *r = rule_find(rule);
        res->refused = n->model && r && !(r->flags & MT_RULE_LAYERS);
        snprintf(res->why, sizeof res->why, "%s", err.msg);
        res->epochs = s.epochs;
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

/* Whether row `n` is selected by --net: its name contains the text, or the
 * text is "conv" / "mlp" and the row is a layer-list net / an MLP. */
static int net_selected(const char *net, const struct robust_net *n)
{
    if (!net)
        return 1;
    if (!strcmp(net, "mlp"))
        return !n->model;
    if (!strcmp(net, "conv"))
        return n->model != NULL;
    return strstr(n->name, net) != NULL;
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
            printf("\"%s\":\"%s\",", r->refused ? "refused" : "error",
               r->why); /* engine messages hold no quotes */
        if (r->ok && !isnan(bp_acc))
            printf("\"gap_to_bp\":%.2f,", gap);
        printf("\"epochs\":%d,\"seconds\":%.1f}\n", r->epochs, r->seconds);
    } else if (!r->ok) {
        printf("| %s | %d | %s | — | — | no | — | %.0f | %s%s |\n", n->name, n->batch, rule,
               r->seconds, r->refused ? "refused: " : "", r->why);
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
        if (!net_selected(o->net, n))
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
            failed |= !res.ok && !res.refused;
        }
    }
    return failed;
}
