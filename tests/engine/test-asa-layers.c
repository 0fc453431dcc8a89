/* test-asa-layers.c: the asa rule over layer lists (asa_layers.c, spec 5 and
 * 0.2a). An MLP written as a layer list trains to asa's MLP weights bit for
 * bit, with the same test loss (the evaluation carries the sign term) and
 * learning indicators; the plan equals the measured peaks on a LeNet-like
 * net and a pre-activation ResNet; every conv input is kept as one bit, and
 * the kept activations are <= 1/20 of BP's on the LeNet net and <= 1/2 on
 * the ResNet; the ReLU masks asa derives from batch-norm are the forward's
 * bits, and the weight layers reading them get the forward's input exactly
 * (or kappa eps S with recompute_inputs: false); asa learns a generated
 * image problem. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "graph.h"
#include "pack.h"
#include "rules/rules.h"
#include "testutil.h"

static void parse(const char *yaml, struct mt_spec *s)
{
    struct mt_err err = {0};
    spec_init(s);
    assert_ok(spec_parse_string(yaml, strlen(yaml), "test.yaml", s, &err), err);
    assert_ok(spec_finish(s, &err), err);
}

#define DATA "dataset: {name: synthetic, synthetic_train: 130, synthetic_test: 40}\n"

/* Train s for its epochs: the parameters (malloc'd) and the last report. */
static float *train(const struct mt_spec *s, size_t *n, struct mt_epoch_report *r)
{
    struct mt_trainer t;
    struct mt_err err = {0};
    assert_ok(trainer_init(&t, s, &err), err);
    for (int e = 0; e < s->epochs; e++)
        assert_ok(trainer_run_epoch(&t, NULL, NULL, r, &err), err);
    *n = model_param_count(&t.net.d);
    float *p = malloc(*n * sizeof *p);
    memcpy(p, t.net.params, *n * sizeof *p);
    trainer_fini(&t);
    return p;
}

static void test_mlp_layer_list_same_bits(void **state)
{
    (void)state;
    static const char *const head =
        DATA "batch: 16\nepochs: 2\nseed: 9\nthreads: 1\nrule: asa\n"
        "optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n";
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%smodel: {input: 24, hidden: [20, 12], classes: 4}\n", head);
    snprintf(b, sizeof b, "%smodel:\n  input: 24\n  classes: 4\n  layers: [{dense: 20}, relu, "
             "{dense: 12}, relu, {dense: 4}]\n", head);
    struct mt_spec sa, sb;
    parse(a, &sa);
    parse(b, &sb);
    size_t na, nb;
    struct mt_epoch_report ra, rb;
    float *pa = train(&sa, &na, &ra), *pb = train(&sb, &nb, &rb);
    assert_int_equal(na, nb);
    assert_same_params(pa, pb, na);
    /* The evaluation's forward carries the sign term in both forms. */
    assert_true(ra.test_loss == rb.test_loss);
    assert_true(ra.loss == rb.loss);
    assert_int_equal(ra.n_metrics, 2);
    assert_int_equal(rb.n_metrics, 2);
    for (int k = 0; k < 2; k++) {
        assert_string_equal(ra.metrics[k].name, rb.metrics[k].name);
        assert_true(ra.metrics[k].value == rb.metrics[k].value);
        assert_true(ra.metrics[k].value > 0 && ra.metrics[k].value < 1);
    }
}

/* A LeNet-like net and a pre-activation ResNet on small images. */
#define LENET_SMALL                                                                         \
    "model:\n  input: [1, 12, 12]\n  classes: 4\n  layers:\n"                               \
    "    - conv: {channels: 4, kernel: 3}\n    - relu\n    - maxpool: 2\n"                  \
    "    - conv: {channels: 6, kernel: 2}\n    - relu\n    - maxpool: 2\n    - flatten\n"   \
    "    - dense: 16\n    - relu\n    - dense: 4\n"
#define RESNET_SMALL                                                                        \
    "model:\n  input: [2, 8, 8]\n  classes: 4\n  layers:\n"                                 \
    "    - conv: {channels: 4, kernel: 3, padding: 1}\n    - residual: 4\n"                 \
    "    - residual: {channels: 8, stride: 2}\n    - batchnorm\n    - relu\n"               \
    "    - globalavgpool\n    - dense: 4\n"

static void test_plan_equals_measured(void **state)
{
    (void)state;
    static const int batches[] = {5, 16};
    static const char *const models[] = {LENET_SMALL, RESNET_SMALL};
    for (size_t m = 0; m < 2; m++)
        for (size_t b = 0; b < 2; b++) {
            char yaml[2048];
            struct mt_spec s;
            struct mt_mem_stats st;
            struct mt_mem_plan plan;
            snprintf(yaml, sizeof yaml, DATA "batch: %d\nepochs: 1\nseed: 2\nthreads: 1\n"
                     "rule: asa\n%s", batches[b], models[m]);
            parse(yaml, &s);
            assert_plan_matches(&s, &st, &plan);
        }
}

/* The nets of the acceptance, on MNIST's shape (planned only). */
#define LENET                                                                               \
    "model:\n  input: [1, 28, 28]\n  classes: 10\n  layers:\n"                              \
    "    - conv: {channels: 20, kernel: 5}\n    - relu\n    - maxpool: 2\n"                 \
    "    - conv: {channels: 50, kernel: 5}\n    - relu\n    - maxpool: 2\n    - flatten\n"  \
    "    - dense: 500\n    - relu\n    - dense: 10\n"
#define RESNET                                                                              \
    "model:\n  input: [1, 28, 28]\n  classes: 10\n  layers:\n"                              \
    "    - conv: {channels: 16, kernel: 3, padding: 1}\n    - residual: 16\n"               \
    "    - residual: {channels: 32, stride: 2}\n    - residual: {channels: 64, stride: 2}\n" \
    "    - batchnorm\n    - relu\n    - globalavgpool\n    - dense: 10\n"

static size_t planned_acts(const char *rule, const char *model, struct mt_spec *s)
{
    char yaml[2048];
    struct mt_mem_plan p;
    snprintf(yaml, sizeof yaml, DATA "batch: 100\nepochs: 1\nrule: %s\n%s", rule, model);
    parse(yaml, s);
    rule_find(rule)->plan(s, &p);
    return p.cat[MT_MEM_ACTS];
}

/* Every conv input but the data is kept as its 1-bit code (or derived from
 * what is kept, 0 bytes), never in FP32. */
static void assert_conv_inputs_one_bit(const struct mt_spec *s)
{
    const struct mt_model_desc *d = &s->model;
    struct graph_mem m;
    graph_mem_plan(d, s->batch, rule_find("asa")->keep, s, &m);
    for (int i = 0; i < d->n_nodes; i++) {
        int t = d->node[i].src + 1;
        if (d->node[i].s.kind != MT_LK_CONV || t == 0)
            continue;
        if (!m.coded[t] || m.kept[t] ||
            m.code_bytes[t] > pack_bytes((size_t)s->batch * graph_tensor_count(d, t), 1))
            fail_msg("conv node %d: its input (tensor %d) is not kept at one bit", i, t);
    }
}

static void test_kept_bytes_against_bp(void **state)
{
    (void)state;
    struct mt_spec s;
    size_t bp = planned_acts("bp", LENET, &s), asa = planned_acts("asa", LENET, &s);
    print_message("LeNet-like, batch 100: bp keeps %zu bytes, asa %zu (%.4f)\n", bp, asa,
                  (double)asa / (double)bp);
    assert_true(20 * asa <= bp);
    assert_conv_inputs_one_bit(&s);
    bp = planned_acts("bp", RESNET, &s);
    asa = planned_acts("asa", RESNET, &s);
    print_message("pre-activation ResNet, batch 100: bp keeps %zu bytes, asa %zu (%.4f)\n", bp,
                  asa, (double)asa / (double)bp);
    assert_true(2 * asa <= bp);
    assert_conv_inputs_one_bit(&s);
}

/* Generated images: the loss falls clearly and the test accuracy beats
 * chance by far on both nets. */
static void test_asa_learns_images(void **state)
{
    (void)state;
    static const char *const models[] = {LENET_SMALL, RESNET_SMALL};
    for (size_t m = 0; m < 2; m++) {
        char yaml[2048];
        struct mt_spec s;
        struct mt_trainer t;
        struct mt_err err = {0};
        struct mt_epoch_report r;
        snprintf(yaml, sizeof yaml,
                 "dataset: {name: synthetic, synthetic_train: 800, synthetic_test: 200}\n"
                 "batch: 20\nepochs: 6\nseed: 4\nthreads: 1\nrule: asa\n"
                 "optimizer: {name: sgd, lr: 0.02, momentum: 0.9}\n%s", models[m]);
        parse(yaml, &s);
        assert_ok(trainer_init(&t, &s, &err), err);
        double first = 0;
        for (int e = 0; e < s.epochs; e++) {
            assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
            if (e == 0)
                first = r.loss;
        }
        print_message("model %zu: loss %.4f -> %.4f, test accuracy %.3f\n", m, first, r.loss,
                      r.test_accuracy);
        assert_true(r.loss < 0.5 * first);
        assert_true(r.test_accuracy > 0.8);
        trainer_fini(&t);
    }
}

/* The bits asa derives from batch-norm (0 bytes kept) and the bits it packs
 * are the forward's own [t > 0], for every backward that reads them: a keep
 * that records [t > 0] as each tensor is made wraps asa's and checks every
 * decode for a ReLU's mask against the record. The classifier reading the
 * global average pool gets that tensor's forward values exactly (recomputed
 * from batch-norm's kept input), not its all-ones sign code, and so does a
 * conv reading a ReLU of batch-norm: the forward's x + eps S, bit for bit
 * (rule.recompute_inputs, default true). */
static uint8_t *g_rec[GRAPH_T];
static float *g_recf[GRAPH_T];   /* the forward's values of a globally pooled tensor */
static float *g_recw[GRAPH_T];   /* the weight input x + eps S the forward made of t */
static long g_checked, g_derived, g_wrong, g_pooled, g_exact;
static int g_recompute;          /* rule.recompute_inputs of the run */
static const struct mt_model_desc *g_d;

static void rec_encode(void *ud, int t, const float *x, int B, void *code,
                       const struct graph_step *s)
{
    size_t n = (size_t)B * graph_tensor_count(g_d, t);
    g_rec[t] = malloc(pack_bytes(n, 1));
    pack_sign(g_rec[t], x, n);
    if (g_d->node[t - 1].s.kind == MT_LK_GAP) {
        g_recf[t] = malloc(n * sizeof *x);
        memcpy(g_recf[t], x, n * sizeof *x);
    }
    rule_find("asa")->keep->encode(ud, t, x, B, code, s);
}

static void rec_decode(void *ud, int t, int reader, int B, float *out, const struct graph_step *s)
{
    rule_find("asa")->keep->decode(ud, t, reader, B, out, s);
    size_t cnt = (size_t)B * graph_tensor_count(g_d, t);
    if (g_recf[t]) { /* the classifier reads the pooled map exactly, no sign code */
        g_pooled++;
        for (size_t i = 0; i < cnt; i++)
            if (memcmp(&out[i], &g_recf[t][i], sizeof *out))
                fail_msg("pooled tensor %d, value %zu: decoded %.9g, forward %.9g", t, i,
                         out[i], g_recf[t][i]);
        return;
    }
    if (layer_flags(&g_d->node[reader]) & MT_LAYER_WEIGHTS) {
        if (s->code[t] || s->t[t])
            return; /* the sign code */
        assert_non_null(g_recw[t]); /* derived from batch-norm */
        g_exact++;
        for (size_t i = 0; i < cnt; i++) { /* the forward's input exactly, or kappa eps S */
            float want = g_recompute ? g_recw[t][i] : pack_get(g_rec[t], i, 1) ? 1.0f : 0.0f;
            if (memcmp(&out[i], &want, sizeof *out))
                fail_msg("tensor %d, value %zu: weight input %.9g, want %.9g", t, i, out[i],
                         want);
        }
        return;
    }
    size_t n = (size_t)B * graph_tensor_count(g_d, t);
    g_derived += s->code[t] == NULL;
    for (size_t i = 0; i < n; i++, g_checked++)
        g_wrong += (out[i] > 0) != (int)pack_get(g_rec[t], i, 1);
}

static const float *rec_weight_input(void *ud, int node, const float *x, int B, float *ws)
{
    const float *in = rule_find("asa")->keep->weight_input(ud, node, x, B, ws);
    int t = g_d->node[node].src + 1;
    size_t n = (size_t)B * graph_tensor_count(g_d, t);
    if (t > 0 && !g_recw[t]) {
        g_recw[t] = malloc(n * sizeof *in);
        memcpy(g_recw[t], in, n * sizeof *in);
    }
    return in;
}

static float g_sinkbuf[1 << 16];
static float *rec_dp(void *ud, int node, float *beta)
{
    (void)ud;
    (void)node;
    *beta = 0.0f;
    return g_sinkbuf;
}

static void check_derived(int recompute)
{
    const struct graph_keep *asa = rule_find("asa")->keep;
    struct graph_keep rec = *asa;
    rec.encode = rec_encode;
    rec.decode = rec_decode;
    rec.weight_input = rec_weight_input;
    char yaml[2048];
    struct mt_spec s;
    snprintf(yaml, sizeof yaml,
             DATA "batch: 16\nepochs: 1\nseed: 2\nthreads: 1\n"
                  "rule: {name: asa, recompute_inputs: %s}\n%s",
             recompute ? "true" : "false", RESNET_SMALL);
    g_recompute = recompute;
    g_checked = g_derived = g_wrong = g_pooled = g_exact = 0;
    parse(yaml, &s);
    struct mt_trainer t;
    struct mt_err err = {0};
    assert_ok(trainer_init(&t, &s, &err), err);
    struct mt_epoch_report r;
    assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err); /* BN statistics move */
    const struct mt_model_desc *d = &t.net.d;
    g_d = d;
    int B = 16;
    struct graph_mem m;
    graph_mem_plan(d, B, &rec, &s, &m);
    size_t nx = (size_t)B * graph_tensor_count(d, 0);
    float *x = malloc(nx * sizeof *x);
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)((i * 7919) % 113) / 50.0f - 1.0f;
    struct graph_step st;
    size_t mark = arena_mark(t.arena);
    assert_ok(graph_train_forward(d, &m, t.net.params, t.net.stats, x, B, &t, t.arena, &st,
                                  &err), err);
    struct graph_grad_sink sink = {rec_dp, NULL, NULL, 0, NULL};
    assert_ok(graph_backward(d, &m, t.net.params, &st, B, &sink, &t, t.arena, &err), err);
    arena_pop(t.arena, mark);
    print_message("ReLU masks checked: %ld values, %ld decodes derived from batch-norm\n",
                  g_checked, g_derived);
    assert_true(g_derived >= 3);
    assert_int_equal(g_wrong, 0);
    assert_int_equal(g_pooled, 1);
    print_message("weight-layer inputs derived from batch-norm: %ld (recompute_inputs %d)\n",
                  g_exact, recompute);
    assert_true(g_exact >= 3);
    for (int u = 0; u < GRAPH_T; u++) {
        free(g_rec[u]);
        free(g_recf[u]);
        free(g_recw[u]);
        g_rec[u] = NULL;
        g_recf[u] = NULL;
        g_recw[u] = NULL;
    }
    free(x);
    trainer_fini(&t);
}

static void test_derived_bits_are_the_forwards(void **state)
{
    (void)state;
    check_derived(1);
}

/* recompute_inputs: false: the convs reading a ReLU of batch-norm take the
 * sign code's kappa eps S (kappa eps = 1 here), as Conv2d_ASA does. */
static void test_sign_codes_when_not_recomputed(void **state)
{
    (void)state;
    check_derived(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_layer_list_same_bits),
        cmocka_unit_test(test_plan_equals_measured),
        cmocka_unit_test(test_kept_bytes_against_bp),
        cmocka_unit_test(test_asa_learns_images),
        cmocka_unit_test(test_derived_bits_are_the_forwards),
        cmocka_unit_test(test_sign_codes_when_not_recomputed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
