/* bench-conv.c: memtrain-bench's conv parts (tests/bench/README.md, "Conv
 * nets"). It prints figures; it asserts nothing about speed.
 *
 *   conv-depth  kept activations per rule, measured over two training steps
 *               on generated data and printed beside the plan's figure, on
 *               conv stacks of 2, 4, 8, 16 conv layers (batch 32) and on
 *               pre-activation ResNets of 1, 2, 4, 8 blocks per stage
 *               (batch 128); ratios to BP, spread across depths.
 *   torch-conv  side by side with PyTorch CPU (torch_conv.py) on LeNet
 *               (MNIST) or the 1-block ResNet (Fashion-MNIST), as `torch`
 *               does for the MLPs (bench-engine.c, side_by_side).
 * The networks are written as layer-list YAML, the same text for the
 * depth sweep, for memtrain-run and for the in-process parameter count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "rules/rules.h"

/* ------------------------------------------------------------- networks */

/* Each writes the entries of model.layers for a 1x28x28 input, 10 classes. */
typedef void (*layers_fn)(FILE *f, int depth);

/* depth x (conv 32 3x3 padding 1, ReLU), global average pool, dense 10. */
static void conv_stack_layers(FILE *f, int depth)
{
    for (int i = 0; i < depth; i++)
        fputs("    - conv: {channels: 32, kernel: 3, padding: 1}\n    - relu\n", f);
    fputs("    - globalavgpool\n    - dense: 10\n", f);
}

/* torch_conv.py's pre-activation ResNet with `depth` blocks per stage: conv
 * 16 3x3 padding 1 (no bias, as PyTorch's), stages of 16/32/64 channels
 * (stride 2 in the first block of stages 2 and 3), BN, ReLU, global average
 * pool, dense 10. */
static void resnet_layers(FILE *f, int depth)
{
    static const int channels[3] = {16, 32, 64};
    fputs("    - conv: {channels: 16, kernel: 3, padding: 1, bias: false}\n", f);
    for (int st = 0; st < 3; st++)
        for (int b = 0; b < depth; b++)
            fprintf(f, "    - residual: {channels: %d, stride: %d}\n", channels[st],
                    st > 0 && b == 0 ? 2 : 1);
    fputs("    - batchnorm\n    - relu\n    - globalavgpool\n    - dense: 10\n", f);
}

/* The MEM-DFA paper's 20c5-maxpool2-50c5-maxpool2-500-10, ReLU (depth unused). */
static void lenet_layers(FILE *f, int depth)
{
    (void)depth;
    fputs("    - conv: {channels: 20, kernel: 5}\n    - relu\n    - maxpool: 2\n"
          "    - conv: {channels: 50, kernel: 5}\n    - relu\n    - maxpool: 2\n"
          "    - flatten\n    - dense: 500\n    - relu\n    - dense: 10\n", f);
}

/* A job's YAML: the dataset text, the layer list, then `tail` (rule,
 * optimizer, batch...). malloc'd; NULL when out of memory. */
static char *net_yaml(const char *dataset, layers_fn layers, int depth, const char *tail)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "name: bench-conv\n%smodel:\n  input: [1, 28, 28]\n  classes: 10\n  layers:\n",
            dataset);
    layers(f, depth);
    fputs(tail, f);
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ----------------------------------------------------------- conv-depth */

#define NDEPTH 4

struct family {
    const char *title, *depth_name;
    layers_fn layers;
    int batch;
    int depth[NDEPTH];
};

/* Kept activations of one rule on one net of the family, two steps of
 * generated data. */
static int depth_cell(const struct bench_opts *o, const struct family *fam, const char *rule,
                      int depth, struct kept_acts *k, struct mt_err *err)
{
    char data[128], tail[160];
    snprintf(data, sizeof data, "dataset: {name: synthetic, synthetic_train: %d, "
             "synthetic_test: %d}\n", 2 * fam->batch, fam->batch);
    snprintf(tail, sizeof tail, "rule: %s\nbatch: %d\nepochs: 1\nseed: 1\nthreads: %d\n", rule,
             fam->batch, o->threads);
    char *yaml = net_yaml(data, fam->layers, depth, tail);
    if (!yaml)
        return mt_err_set(err, MT_E_NOMEM, "out of memory writing the spec");
    struct mt_spec s;
    spec_init(&s);
    int rc = spec_parse_string(yaml, strlen(yaml), "bench-conv.yaml", &s, err);
    free(yaml);
    return rc ? rc : kept_acts_run(&s, k, err);
}

/* (max - min) / min over the depths, in %. */
static double spread_pct(const struct kept_acts *k)
{
    size_t lo = k[0].measured, hi = k[0].measured;
    for (int d = 1; d < NDEPTH; d++) {
        lo = k[d].measured < lo ? k[d].measured : lo;
        hi = k[d].measured > hi ? k[d].measured : hi;
    }
    return lo ? 100.0 * (double)(hi - lo) / (double)lo : 0.0;
}

struct rule_row {
    const char *name;
    int ran;
    char why[MT_ERR_LEN];      /* the refusal, when !ran */
    struct kept_acts k[NDEPTH];
};

/* A table's heading: rule, one column per depth (two with the plan's), `last`. */
static void table_head(const struct family *fam, int with_plan, const char *last)
{
    printf("| rule |");
    for (int d = 0; d < NDEPTH; d++)
        printf(" %s=%d%s |", fam->depth_name, fam->depth[d], with_plan ? " measured | plan" : "");
    printf(" %s |\n|---|", last);
    for (int d = 0; d < NDEPTH; d++)
        printf(with_plan ? "---|---|" : "---|");
    printf("---|\n");
}

static void print_bytes_table(const struct family *fam, const struct rule_row *rows, int n)
{
    printf("Kept activations (bytes; the arena's activations category over two steps, then "
           "the plan's figure):\n\n");
    table_head(fam, 1, "spread across depths");
    for (int r = 0; r < n; r++) {
        printf("| %s |", rows[r].name);
        for (int d = 0; d < NDEPTH; d++) {
            const struct kept_acts *k = &rows[r].k[d];
            if (!rows[r].ran)
                printf(" n/a | n/a |");
            else
                printf(" %zu%s | %zu |", k->measured,
                       k->measured != k->planned || k->total_measured != k->total_planned
                           ? " **≠ plan**" : "", k->planned);
        }
        if (rows[r].ran)
            printf(" %.2f %% |\n", spread_pct(rows[r].k));
        else
            printf(" n/a |\n");
    }
}

static void print_ratio_table(const struct family *fam, const struct rule_row *rows, int n)
{
    const struct rule_row *bp = NULL;
    for (int r = 0; r < n; r++)
        if (rows[r].ran && strcmp(rows[r].name, "bp") == 0)
            bp = &rows[r];
    printf("\nRatio to BP's kept activations at the same depth, and each rule's growth from the "
           "shallowest to the deepest net (%s %d -> %d: linear %.2fx, square root %.2fx):\n\n",
           fam->depth_name, fam->depth[0], fam->depth[NDEPTH - 1],
           (double)fam->depth[NDEPTH - 1] / fam->depth[0],
           sqrt((double)fam->depth[NDEPTH - 1] / fam->depth[0]));
    table_head(fam, 0, "deepest / shallowest");
    for (int r = 0; r < n; r++) {
        const struct kept_acts *k = rows[r].k;
        printf("| %s |", rows[r].name);
        for (int d = 0; d < NDEPTH; d++) {
            char ratio[32] = "n/a";
            if (rows[r].ran && bp)
                format_ratio(ratio, sizeof ratio, k[d].measured, bp->k[d].measured);
            printf(" %s |", ratio);
        }
        if (rows[r].ran && k[0].measured)
            printf(" %.2fx |\n", (double)k[NDEPTH - 1].measured / (double)k[0].measured);
        else
            printf(" n/a |\n");
    }
}

/* A rule's growth from each depth to the next (issue 12 wants ckpt's
 * O(sqrt(L)): sqrt(2) = 1.41x per doubling, where BP's is 2x). */
static void print_growth(const struct family *fam, const struct rule_row *row)
{
    printf("- %s: %.2fx from %s=%d to %s=%d (issue 12: O(sqrt(L)), %.2fx); step by step", row->name,
           (double)row->k[NDEPTH - 1].measured / (double)row->k[0].measured, fam->depth_name,
           fam->depth[0], fam->depth_name, fam->depth[NDEPTH - 1],
           sqrt((double)fam->depth[NDEPTH - 1] / fam->depth[0]));
    for (int d = 1; d < NDEPTH; d++)
        printf("%s %.2fx (sqrt %.2fx)", d > 1 ? "," : "",
               (double)row->k[d].measured / (double)row->k[d - 1].measured,
               sqrt((double)fam->depth[d] / fam->depth[d - 1]));
    printf("\n");
}

/* Every rule of the table (or o->rule) on every depth of the family; the
 * number of cells whose measured figures differ from the plan, or -1 when
 * a rule that trains layer lists failed. */
static int depth_family(const struct bench_opts *o, const struct family *fam)
{
    struct rule_row rows[32];
    int n = 0, mismatches = 0, failed = 0;
    printf("### %s\n\n", fam->title);
    fflush(stdout);
    for (const struct mt_rule *const *r = rule_list(); *r && n < 32; r++) {
        if (o->rule && strcmp(o->rule, (*r)->name))
            continue;
        struct rule_row *row = &rows[n++];
        memset(row, 0, sizeof *row);
        row->name = (*r)->name;
        row->ran = 1;
        for (int d = 0; d < NDEPTH && row->ran; d++) {
            struct mt_err err = {0};
            if (depth_cell(o, fam, row->name, fam->depth[d], &row->k[d], &err)) {
                row->ran = 0;
                snprintf(row->why, sizeof row->why, "%s", err.msg);
                failed |= ((*r)->flags & MT_RULE_LAYERS) != 0;
            } else if (row->k[d].measured != row->k[d].planned ||
                       row->k[d].total_measured != row->k[d].total_planned) {
                mismatches++;
            }
        }
    }
    print_bytes_table(fam, rows, n);
    print_ratio_table(fam, rows, n);
    printf("\n");
    for (int r = 0; r < n; r++) {
        if (!rows[r].ran)
            printf("- %s: n/a: %s\n", rows[r].name, rows[r].why);
        else if (strcmp(rows[r].name, "memdfa") == 0)
            printf("- memdfa: kept activations spread %.2f %% across depths (issue 12: within "
                   "1 %% on the conv stack)\n", spread_pct(rows[r].k));
        else if (strcmp(rows[r].name, "ckpt") == 0)
            print_growth(fam, &rows[r]);
    }
    printf("- plan = measured (activations and peak total) in %s\n\n",
           mismatches ? "all but the cells marked" : "every cell");
    fflush(stdout);
    return failed ? -1 : mismatches;
}

int bench_conv_depth(const struct bench_opts *o)
{
    static const struct family fams[] = {
        {"conv stacks: L x (conv 32 3x3 padding 1, ReLU) on 1x28x28, global average pool, "
         "dense 10; batch 32", "L", conv_stack_layers, 32, {2, 4, 8, 16}},
        {"pre-activation ResNets: conv 16 3x3 stem, N blocks per stage of 16/32/64 channels, "
         "BN, ReLU, global average pool, dense 10 (torch_conv.py --blocks N); batch 128", "N",
         resnet_layers, 128, {1, 2, 4, 8}},
    };
    int rc = 0;
    printf("## conv depth sweep: kept activations per rule, two steps of generated data, each "
           "rule with its defaults\n\n");
    for (size_t i = 0; i < sizeof fams / sizeof *fams; i++) {
        int m = depth_family(o, &fams[i]);
        if (m) {
            fprintf(stderr, "memtrain-bench: conv-depth: %s\n",
                    m < 0 ? "a rule that trains layer lists failed" : "plan and measurement "
                    "differ");
            rc = 1;
        }
    }
    return rc;
}

/* ----------------------------------------------------------- torch-conv */

/* Does dir hold MNIST-format training images (raw or .gz)? */
static int holds_images(const char *dir)
{
    char p[MT_PATH_LEN + 64];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
    if (access(p, R_OK) == 0)
        return 1;
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    return access(p, R_OK) == 0;
}

/* Fashion-MNIST's directory: o->fashion_dir, or the first of the engine's
 * places for it ($MEMTRAIN_DATA_DIR/fashion-mnist, then
 * /usr/share/datasets/fashion-mnist) that holds the training images. */
static int fashion_dir(const struct bench_opts *o, char dir[MT_PATH_LEN])
{
    const char *env = getenv("MEMTRAIN_DATA_DIR");
    if (o->fashion_dir[0]) {
        snprintf(dir, MT_PATH_LEN, "%s", o->fashion_dir);
        return 0;
    }
    if (env && *env) {
        snprintf(dir, MT_PATH_LEN, "%s/fashion-mnist", env);
        if (holds_images(dir))
            return 0;
    }
    snprintf(dir, MT_PATH_LEN, "/usr/share/datasets/fashion-mnist");
    return holds_images(dir) ? 0 : -1;
}

struct conv_net {
    const char *name, *title, *dataset;
    layers_fn layers;
    int depth, batch;
    const char *sgd_lr;        /* torch_conv.py's defaults */
};

static const struct conv_net conv_nets[] = {
    {"lenet", "20c5-maxpool2-50c5-maxpool2-500-10, ReLU, MNIST, batch 100", "mnist",
     lenet_layers, 0, 100, "0.01"},
    {"resnet", "pre-activation ResNet, 1 block per stage (16/32/64), Fashion-MNIST, batch 128",
     "fashion-mnist", resnet_layers, 1, 128, "0.1"},
};

/* Test samples both sides evaluate after a run of a few steps (the
 * accuracy only shows that both trained; a whole epoch uses all of them). */
#define STEPS_TEST_LIMIT 1000

/* One net with one optimizer ("sgd": momentum 0.9, the net's lr; "adam":
 * lr 0.001), `steps` steps (0 = one epoch) on both sides. */
static int torch_conv_run(const struct bench_opts *o, const struct conv_net *net, const char *opt,
                          long steps)
{
    char dir[MT_PATH_LEN] = "", data[MT_PATH_LEN + 128], tail[256], limit[96] = "";
    const char *lr = strcmp(opt, "sgd") == 0 ? net->sgd_lr : "0.001";
    if (strcmp(net->dataset, "mnist") == 0)
        snprintf(dir, sizeof dir, "%s", o->data_dir);
    else if (fashion_dir(o, dir)) {
        printf("### %s: skipped: no Fashion-MNIST found ($MEMTRAIN_DATA_DIR/fashion-mnist, "
               "/usr/share/datasets/fashion-mnist); give --fashion-dir\n\n", net->name);
        return 0;
    }
    if (steps > 0)
        snprintf(limit, sizeof limit, ", train_limit: %ld, test_limit: %d", steps * net->batch,
                 STEPS_TEST_LIMIT);
    snprintf(data, sizeof data, "dataset: {name: %s%s%s%s}\n", net->dataset,
             dir[0] ? ", dir: " : "", dir, limit);
    snprintf(tail, sizeof tail, "rule: bp\noptimizer: {name: %s, lr: %s%s}\nbatch: %d\n"
             "epochs: 1\nseed: 1\nthreads: %d\n", opt, lr,
             strcmp(opt, "sgd") == 0 ? ", momentum: 0.9" : "", net->batch, o->threads);
    char *yaml = net_yaml(data, net->layers, net->depth, tail);
    if (!yaml) {
        fprintf(stderr, "memtrain-bench: out of memory\n");
        return 1;
    }
    char threads[16], batch[16], steps_s[32], blocks[16], test_limit[16];
    snprintf(threads, sizeof threads, "%d", o->threads);
    snprintf(batch, sizeof batch, "%d", net->batch);
    snprintf(steps_s, sizeof steps_s, "%ld", steps);
    snprintf(blocks, sizeof blocks, "%d", net->depth ? net->depth : 1);
    snprintf(test_limit, sizeof test_limit, "%d", steps > 0 ? STEPS_TEST_LIMIT : 0);
    char *argv[32] = {(char *)o->python, (char *)o->torch_conv_script, "--json", "--net",
                      (char *)net->name, "--blocks", blocks, "--batch", batch, "--optimizer",
                      (char *)opt, "--lr", (char *)lr, "--momentum", "0.9", "--steps", steps_s,
                      "--test-limit", test_limit, "--threads", threads, "--seed", "1"};
    int k = 0;
    while (argv[k])
        k++;
    if (dir[0]) {
        argv[k++] = "--data-dir";
        argv[k++] = dir;
    }
    argv[k] = NULL;
    printf("### %s: %s; %s, lr %s; ", net->name, net->title,
           strcmp(opt, "sgd") == 0 ? "SGD momentum 0.9" : "Adam", lr);
    if (steps > 0)
        printf("%ld steps, test accuracy on the first %d test images (memtrain: train_limit "
               "%ld, so it holds %ld training images where PyTorch holds the whole set: "
               "PyTorch's peak RSS counts the data)\n\n", steps, STEPS_TEST_LIMIT,
               steps * net->batch, steps * net->batch);
    else
        printf("one epoch\n\n");
    fflush(stdout);
    int rc = side_by_side(o, yaml, argv);
    free(yaml);
    return rc;
}

int bench_torch_conv(const struct bench_opts *o)
{
    static const char *const opts[] = {"sgd", "adam"};
    if (o->net && strcmp(o->net, "lenet") && strcmp(o->net, "resnet")) {
        fprintf(stderr, "memtrain-bench: torch-conv: --net must be lenet or resnet, got '%s'\n",
                o->net);
        return 2;
    }
    if (o->optimizer && strcmp(o->optimizer, "sgd") && strcmp(o->optimizer, "adam")) {
        fprintf(stderr, "memtrain-bench: torch-conv: --optimizer must be sgd or adam, got "
                "'%s'\n", o->optimizer);
        return 2;
    }
    if (!torch_section(o, "conv nets versus PyTorch CPU (torch_conv.py), BP"))
        return 0;
    long steps = o->steps_arg >= 0 ? o->steps_arg : 100;
    int rc = 0;
    for (size_t i = 0; i < sizeof conv_nets / sizeof *conv_nets; i++)
        for (int j = 0; j < 2; j++) {
            if (o->net && strcmp(o->net, conv_nets[i].name))
                continue;
            if (o->optimizer && strcmp(o->optimizer, opts[j]))
                continue;
            rc |= torch_conv_run(o, &conv_nets[i], opts[j], steps);
        }
    return rc;
}
