/* test-approx-layers.c: approx8 / approx4 on layer-list models
 * (approx_layers.c; spec 6 and 0.2a). The shared code decodes back to the
 * batch-norm input z and the ReLU output a within the quantisation bound,
 * with the ReLU mask exact; the plan equals the arena's measured peaks on a
 * ResNet-like and a LeNet-like list at two batch sizes; on the issue's
 * pre-activation ResNet the kept bytes are the written-out sets and meet
 * the ratios (approx8 <= 1/3.5 of BP's, approx4 <= 1/6); approx8 learns a
 * generated problem and its weights stay close to BP's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "layer.h"
#include "rng.h"
#include "rules/approx.h"
#include "testutil.h"

static void parse(const char *yaml, struct mt_spec *s)
{
    struct mt_err err = {0};
    spec_init(s);
    assert_ok(spec_parse_string(yaml, strlen(yaml), "test.yaml", s, &err), err);
    assert_ok(spec_finish(s, &err), err);
}

#define DATA "dataset: {name: synthetic, synthetic_train: 100, synthetic_test: 40}\n"

/* A pre-activation ResNet and a LeNet, both small. */
#define RESNET_SMALL                                                                       \
    "model:\n  input: [2, 8, 8]\n  classes: 4\n  layers:\n"                                \
    "    - conv: {channels: 6, kernel: 3, padding: 1}\n    - residual: 6\n"                \
    "    - residual: {channels: 8, stride: 2}\n    - batchnorm\n    - relu\n"              \
    "    - globalavgpool\n    - dense: 4\n"
#define LENET_SMALL                                                                        \
    "model:\n  input: [1, 12, 12]\n  classes: 4\n  layers:\n"                              \
    "    - conv: {channels: 4, kernel: 3}\n    - relu\n    - maxpool: 2\n"                 \
    "    - conv: {channels: 6, kernel: 3}\n    - relu\n    - maxpool: 2\n    - flatten\n"  \
    "    - dense: 16\n    - relu\n    - dense: 12\n    - relu\n    - dense: 4\n"

/* ---- decoding the shared code ------------------------------------------- */

/* Channel c of a (B, C, hw) map: N(mu_c, sd_c), means swept across. */
static void fill_map(float *x, int B, int C, size_t hw, struct mt_rng *rng)
{
    for (int c = 0; c < C; c++) {
        float sd = 0.2f + 2.0f * rng_uniform(rng);
        float mu = sd * (-2.0f + 4.0f * (float)c / (float)(C - 1));
        for (int b = 0; b < B; b++)
            for (size_t j = 0; j < hw; j++)
                x[((size_t)b * C + c) * hw + j] = mu + sd * rng_normal(rng);
    }
}

/* z -> batch-norm -> y -> ReLU -> a (tensors zt, zt + 1, zt + 2) and the
 * stats site s (a conv output feeding a ReLU): encode each site's exact
 * values, decode z and a from the one code, compare with the exact values. */
static void check_decode(int bits)
{
    struct mt_spec s;
    parse(DATA "batch: 8\nepochs: 1\nmodel:\n  input: [3, 5, 5]\n  classes: 3\n  layers:\n"
          "    - conv: {channels: 5, kernel: 3, padding: 1}\n    - batchnorm\n    - relu\n"
          "    - conv: {channels: 4, kernel: 3, padding: 1}\n    - relu\n    - maxpool: 2\n"
          "    - flatten\n    - dense: 3\n", &s);
    const struct mt_model_desc *d = &s.model;
    /* tensors: 1 conv, 2 batch-norm (site), 3 relu, 4 conv (site), 5 relu, ... */
    for (int t = 1; t < d->n_nodes; t++)
        assert_int_equal(approx_layers_site(d, t), t == 2 || t == 4);
    enum { B = 24, C = 5, HW = 25, C2 = 4 };
    int N = 1 << bits;
    size_t n = (size_t)B * C * HW, P = graph_param_count(d);
    float *params = calloc(P, 4), *z = malloc(n * 4), *y = malloc(n * 4), *dec = malloc(n * 4);
    float aux[2 * C];
    struct mt_rng rng;
    rng_seed(&rng, 21 + (uint64_t)bits);
    /* gamma of both signs and sizes, beta shifting the window (one channel's
     * zero at the window's edge) */
    const struct mt_layer *bn = &d->node[1];
    float *gamma = params + bn->param_off, *beta = gamma + C;
    static const float g0[C] = {1.0f, -0.7f, 0.05f, 2.5f, 0.3f};
    static const float b0[C] = {0.0f, 0.4f, -0.02f, 1.0f, -1.1f};
    memcpy(gamma, g0, sizeof g0);
    memcpy(beta, b0, sizeof b0);
    fill_map(z, B, C, HW, &rng);
    struct mt_layer_fwd f = {.x = z, .y = y, .p = gamma, .aux = aux, .B = B, .train = 1};
    layer_ops(MT_LK_BATCHNORM)->forward(bn, &f);

    struct graph_step st;
    memset(&st, 0, sizeof st);
    st.aux[1] = aux;
    st.code[2] = malloc(approx_layers_code_bytes(d, 2, B, bits));
    size_t clipped = approx_layers_encode(d, params, 2, bits, y, B, st.code[2]);

    /* z: within half a step of u = y / |gamma|, i.e. (3 / N) sigma_c, for
     * every value inside the window; a: within (3 / N) |gamma_c|; the mask
     * exact for every value. */
    double worst_z = 0, worst_a = 0;
    size_t outside = 0;
    approx_layers_decode(d, params, 1, bits, &st, B, dec);
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i / HW % C);
        double sigma = 1.0 / aux[C + c], e = fabs(dec[i] - z[i]) / (3.0 / N * sigma);
        if (e > 1 + 1e-3)
            outside++;
        else if (e > worst_z)
            worst_z = e;
    }
    approx_layers_decode(d, params, 3, bits, &st, B, dec);
    size_t outside_a = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i / HW % C);
        float a = y[i] > 0 ? y[i] : 0.0f;
        if ((dec[i] > 0) != (a > 0))
            fail_msg("%d-bit: element %zu: ReLU mask from the code %d, exact %d", bits, i,
                     dec[i] > 0, a > 0);
        double e = fabs(dec[i] - a) / (3.0 / N * fabs(gamma[c]));
        if (e > 1 + 1e-3)
            outside_a++;
        else if (e > worst_a)
            worst_a = e;
    }
    print_message("%d-bit batch-norm site: z within %.4f, a within %.4f of the bound; %zu / %zu "
                  "clipped (%zu, %zu beyond the bound)\n",
                  bits, worst_z, worst_a, clipped, n, outside, outside_a);
    /* only clipped values may lie beyond the bound, and +-3 sigma holds most */
    assert_true(outside <= clipped && outside_a <= clipped);
    assert_true(clipped <= n / 50);
    assert_true(worst_z > 0.3 && worst_a > 0.3); /* the bound is not loose */

    /* The stats site: conv output (B, C2, 25) feeding a ReLU. */
    size_t n2 = (size_t)B * C2 * HW;
    fill_map(y, B, C2, HW, &rng);
    free(st.code[2]);
    st.code[2] = NULL;
    st.code[4] = malloc(approx_layers_code_bytes(d, 4, B, bits));
    clipped = approx_layers_encode(d, params, 4, bits, y, B, st.code[4]);
    approx_layers_decode(d, params, 5, bits, &st, B, dec);
    const float *step = st.code[4]; /* the code starts with step_c */
    worst_a = 0;
    outside_a = 0;
    for (size_t i = 0; i < n2; i++) {
        int c = (int)(i / HW % C2);
        float a = y[i] > 0 ? y[i] : 0.0f;
        assert_int_equal(dec[i] > 0, a > 0);
        double mu = 0, var = 0;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < HW; j++)
                mu += y[((size_t)b * C2 + c) * HW + j];
        mu /= B * HW;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < HW; j++) {
                double v = y[((size_t)b * C2 + c) * HW + j] - mu;
                var += v * v;
            }
        double sd = sqrt(var / (B * HW));
        assert_true(fabs(step[c] - 6 * sd / N) <= 1e-5 * sd); /* the 6-sigma window */
        double e = fabs(dec[i] - a) / (3.0 / N * sd);
        if (e > 1 + 1e-3)
            outside_a++;
        else if (e > worst_a)
            worst_a = e;
    }
    print_message("%d-bit stats site: a within %.4f of the bound; %zu / %zu clipped\n", bits,
                  worst_a, clipped, n2);
    assert_true(outside_a <= clipped && clipped <= n2 / 50);
    free(st.code[4]);
    free(params), free(z), free(y), free(dec);
}

static void test_shared_code_decodes_z_and_a_8bit(void **state) { check_decode(8); }
static void test_shared_code_decodes_z_and_a_4bit(void **state) { check_decode(4); }

/* ---- plan = measured ----------------------------------------------------- */

static void test_plan_equals_measured(void **state)
{
    static const int batches[] = {16, 24}; /* 100 samples: a short last batch each */
    static const char *const models[] = {RESNET_SMALL, LENET_SMALL};
    static const char *const rules[] = {"approx8", "approx4"};
    for (size_t m = 0; m < 2; m++)
        for (size_t b = 0; b < 2; b++)
            for (size_t r = 0; r < 2; r++) {
                char yaml[1024];
                struct mt_spec s;
                struct mt_mem_stats st;
                struct mt_mem_plan plan, bp;
                /* SGD with momentum takes gradients straight into its buffer
                 * without batch-norm (as BP over layers); the default keeps them */
                snprintf(yaml, sizeof yaml, DATA "batch: %d\nepochs: 1\nseed: 2\nthreads: 1\n"
                         "rule: %s\n%s%s", batches[b], rules[r], models[m],
                         b ? "" : "optimizer: {name: sgd, lr: 0.01, momentum: 0.9}\n");
                parse(yaml, &s);
                assert_plan_matches(&s, &st, &plan);
                snprintf(s.rule.name, sizeof s.rule.name, "bp");
                struct mt_err err = {0};
                assert_ok(trainer_plan(&s, &bp, &err), err);
                assert_true(plan.cat[MT_MEM_ACTS] < bp.cat[MT_MEM_ACTS]);
            }
}

/* ---- the ResNet: what is kept, and the ratios -------------------- */

static size_t plan_acts(const char *rule, int B)
{
    char yaml[1024];
    struct mt_spec s;
    struct mt_mem_plan p;
    struct mt_err err = {0};
    snprintf(yaml, sizeof yaml,
             "dataset: {name: synthetic, synthetic_train: 256, synthetic_test: 64}\n"
             "batch: %d\nepochs: 1\nrule: %s\nmodel:\n  input: [1, 28, 28]\n  classes: 10\n"
             "  layers:\n    - conv: {channels: 16, kernel: 3, padding: 1}\n"
             "    - residual: 16\n    - residual: {channels: 32, stride: 2}\n"
             "    - residual: {channels: 64, stride: 2}\n    - batchnorm\n    - relu\n"
             "    - globalavgpool\n    - dense: 10\n", B, rule);
    parse(yaml, &s);
    assert_ok(trainer_plan(&s, &p, &err), err);
    return p.cat[MT_MEM_ACTS];
}

static void test_resnet_kept_bytes_and_ratios(void **state)
{
    enum { B = 128 };
    const size_t m28 = 16 * 28 * 28, m14 = 32 * 14 * 14, m7 = 64 * 7 * 7;
    /* batch-norm aux: mean and 1/sigma of 7 batch-norms, 240 channels */
    const size_t aux = 2 * 240 * 4, tail = (64 + 10) * 4 * (size_t)B; /* pooled, logits */
    /* BP: each block's input, both ReLU outputs and the first conv's output
     * (the second batch-norm's input); the last batch-norm's input and ReLU */
    size_t bp = 4 * (size_t)B * (4 * m28 + (2 * m28 + 2 * m14) + (2 * m14 + 2 * m7) + 2 * m7)
                + aux + tail;
    /* approx: one code per batch-norm (all 7 feed a ReLU): K bits a value
     * and s_c a channel */
    size_t coded = 3 * m28 + m14 + m14 + m7 + m7;
    size_t a8 = (size_t)B * coded + 240 + aux + tail;
    size_t a4 = (size_t)B * coded / 2 + 240 + aux + tail;
    size_t pb = plan_acts("bp", B), p8 = plan_acts("approx8", B), p4 = plan_acts("approx4", B);
    print_message("kept at batch %d: bp %zu, approx8 %zu (1/%.2f), approx4 %zu (1/%.2f)\n", B,
                  pb, p8, (double)pb / p8, p4, (double)pb / p4);
    assert_int_equal(pb, bp);
    assert_int_equal(p8, a8);
    assert_int_equal(p4, a4);
    assert_true(3.5 * (double)p8 <= (double)pb);
    assert_true(6.0 * (double)p4 <= (double)pb);
}

/* ---- training ------------------------------------------------------------ */

struct run {
    float *params;        /* after training (malloc'd) */
    float *init;
    size_t n;
    double loss[8];
};

static void train(const char *rule, const char *model, int epochs, double lr, struct run *out)
{
    char yaml[2048];
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    snprintf(yaml, sizeof yaml,
             "dataset: {name: synthetic, synthetic_train: 256, synthetic_test: 64}\n"
             "batch: 32\nepochs: %d\nseed: 5\nthreads: 1\nrule: %s\n"
             "optimizer: {name: sgd, lr: %g, momentum: 0.9}\n%s", epochs, rule, lr, model);
    parse(yaml, &s);
    assert_ok(trainer_init(&t, &s, &err), err);
    out->n = model_param_count(&t.net.d);
    out->init = malloc(out->n * 4);
    out->params = malloc(out->n * 4);
    memcpy(out->init, t.net.params, out->n * 4);
    for (int e = 0; e < epochs; e++) {
        struct mt_epoch_report r;
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
        out->loss[e] = r.loss;
    }
    memcpy(out->params, t.net.params, out->n * 4);
    trainer_fini(&t);
}

static void run_free(struct run *r)
{
    free(r->params);
    free(r->init);
}

/* ||W_rule - W_bp|| / ||W_bp - W_0||: how far the rule's weights are from
 * BP's, relative to how far BP moved them. */
static double distance_to_bp(const struct run *r, const struct run *bp)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < bp->n; i++) {
        double a = (double)r->params[i] - bp->params[i], b = (double)bp->params[i] - bp->init[i];
        num += a * a;
        den += b * b;
    }
    return sqrt(num / den);
}

static void test_learns_and_stays_close_to_bp(void **state)
{
    static const char *const models[] = {RESNET_SMALL, LENET_SMALL};
    for (int m = 0; m < 2; m++) {
        struct run bp, a8, a4;
        /* 8 steps: BP's weights move well away from the start; the rules
         * see the same batches */
        train("bp", models[m], 1, 0.05, &bp);
        train("approx8", models[m], 1, 0.05, &a8);
        train("approx4", models[m], 1, 0.05, &a4);
        double d8 = distance_to_bp(&a8, &bp), d4 = distance_to_bp(&a4, &bp);
        print_message("%s after 8 steps: approx8 %.5f, approx4 %.5f of BP's movement\n",
                      m ? "lenet" : "resnet", d8, d4);
        /* Tolerance. 8-bit rounding alone moves the weights ~0.05 % of BP's
         * movement here (measured with the window widened to +-8 sigma);
         * the paper's +-3 sigma window clips ~0.4 % of the values (the
         * "clip" metric), and those errors dominate: 1.8 % (ResNet) and
         * 4.2 % (LeNet, whose conv outputs have heavier tails) measured.
         * 8 % is twice the worst; a wrong decode (z without its mean, the
         * ReLU output without its offset, a window off by a bin) lands far
         * beyond it. 4 bits: 16x the rounding, same clipping. */
        assert_true(d8 > 0);
        assert_true(d8 < 0.08);
        assert_true(d4 < 0.25);
        assert_true(d8 < d4);
        run_free(&bp), run_free(&a8), run_free(&a4);
    }
    /* Learns: on the ResNet the loss falls epoch over epoch as BP's does (the
     * LeNet learns these blobs slowly under either rule). */
    struct run l, b;
    train("approx8", RESNET_SMALL, 4, 0.05, &l);
    train("bp", RESNET_SMALL, 4, 0.05, &b);
    print_message("resnet loss by epoch: approx8 %.4f %.4f %.4f %.4f, bp %.4f %.4f %.4f %.4f\n",
                  l.loss[0], l.loss[1], l.loss[2], l.loss[3], b.loss[0], b.loss[1], b.loss[2],
                  b.loss[3]);
    for (int e = 1; e < 4; e++)
        assert_true(l.loss[e] < l.loss[e - 1]);
    assert_true(l.loss[3] < 0.6 * l.loss[0]);
    assert_true(fabs(l.loss[3] - b.loss[3]) < 0.1 * b.loss[3]);
    run_free(&l), run_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_code_decodes_z_and_a_8bit),
        cmocka_unit_test(test_shared_code_decodes_z_and_a_4bit),
        cmocka_unit_test(test_plan_equals_measured),
        cmocka_unit_test(test_resnet_kept_bytes_and_ratios),
        cmocka_unit_test(test_learns_and_stays_close_to_bp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
