/* test-graph.c: layer-list models (graph.h). An MLP written as a layer list
 * trains to the same bits as the same MLP in the hidden form; the graph's
 * backward matches finite differences through every layer kind; the plan
 * equals the arena's measured peaks; bad layer lists are refused with the
 * documented messages. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "graph.h"
#include "par.h"
#include "loss.h"
#include "rng.h"
#include "testutil.h"
#include "rules/common.h"

static void parse(const char *yaml, struct mt_spec *s)
{
    struct mt_err err = {0};
    spec_init(s);
    assert_ok(spec_parse_string(yaml, strlen(yaml), "test.yaml", s, &err), err);
    assert_ok(spec_finish(s, &err), err);
}

static int parse_fails(const char *yaml, const char *want)
{
    struct mt_spec s;
    struct mt_err err = {0};
    spec_init(&s);
    int rc = spec_parse_string(yaml, strlen(yaml), "test.yaml", &s, &err);
    if (rc == 0)
        rc = spec_finish(&s, &err);
    if (rc == 0)
        fail_msg("accepted: %s", yaml);
    if (!strstr(err.msg, want))
        fail_msg("message '%s' lacks '%s'", err.msg, want);
    return rc;
}

#define DATA "dataset: {name: synthetic, synthetic_train: 130, synthetic_test: 40}\n"
#define SYNTH_IMG "dataset: {name: synthetic, synthetic_train: 200, synthetic_test: 40}\n"
#define CONV_NET "model:\n  input: [2, 8, 8]\n  classes: 3\n  layers:\n" \
    "    - conv: {channels: 4, kernel: 3}\n    - relu\n    - maxpool: 2\n" \
    "    - conv: {channels: 6, kernel: 2, padding: 1}\n    - relu\n    - flatten\n" \
    "    - dense: 8\n    - relu\n    - dense: 3\n"
#define RES_NET "model:\n  input: [2, 8, 8]\n  classes: 3\n  layers:\n" \
    "    - conv: {channels: 4, kernel: 3, padding: 1}\n    - residual: 4\n" \
    "    - residual: {channels: 6, stride: 2}\n    - residual: 6\n    - batchnorm\n" \
    "    - relu\n    - globalavgpool\n    - dense: 3\n"


/* Train s for its epochs; return the parameter block (malloc'd). */
static float *train(const struct mt_spec *s, size_t *n)
{
    struct mt_trainer t;
    struct mt_err err = {0};
    assert_ok(trainer_init(&t, s, &err), err);
    for (int e = 0; e < s->epochs; e++) {
        struct mt_epoch_report r;
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
    }
    *n = model_param_count(&t.net.d);
    float *p = malloc(*n * sizeof *p);
    memcpy(p, t.net.params, *n * sizeof *p);
    trainer_fini(&t);
    return p;
}

static void same_bits(const char *hidden_yaml, const char *layers_yaml)
{
    struct mt_spec a, b;
    parse(hidden_yaml, &a);
    parse(layers_yaml, &b);
    size_t na, nb;
    float *pa = train(&a, &na), *pb = train(&b, &nb);
    assert_int_equal(na, nb);
    assert_same_params(pa, pb, na);
}

static void test_layer_list_mlp_trains_to_the_same_bits(void **state)
{
    static const char *const forms[][2] = {
        {"model: {input: 24, hidden: [20, 12], classes: 4}\n"
         "optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n",
         "model:\n  input: 24\n  classes: 4\n  layers: [{dense: 20}, relu, {dense: 12}, relu, "
         "{dense: 4}]\noptimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n"},
        {"model: {input: 24, hidden: [20, 12], classes: 4, activation: gelu, norm: batchnorm}\n"
         "optimizer: {name: adam, lr: 0.003}\n",
         "model:\n  input: [2, 3, 4]\n  classes: 4\n  layers: [flatten, {dense: 20}, batchnorm, "
         "gelu, {dense: 12}, batchnorm, gelu, {dense: 4}]\noptimizer: {name: adam, lr: 0.003}\n"},
        {"model: {input: 24, hidden: [16], classes: 4, activation: tanh, norm: layernorm}\n"
         "optimizer: {name: adam, lr: 0.003}\n",
         "model:\n  input: 24\n  classes: 4\n  layers: [{dense: 16}, tanh, layernorm, "
         "{dense: 4}]\noptimizer: {name: adam, lr: 0.003}\n"},
    };
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        char a[1024], b[1024];
        snprintf(a, sizeof a, DATA "batch: 16\nepochs: 2\nseed: 9\nthreads: 1\n%s", forms[i][0]);
        snprintf(b, sizeof b, DATA "batch: 16\nepochs: 2\nseed: 9\nthreads: 1\n%s", forms[i][1]);
        same_bits(a, b);
    }
    /* FA and DFA: the same matrices, the same updates. */
    static const char *const rules[] = {"fa", "dfa"};
    static const char *const acts[] = {"relu", "gelu", "tanh"};
    for (size_t r = 0; r < 2; r++)
        for (size_t k = 0; k < 3; k++) {
            char a[1024], b[1024];
            snprintf(a, sizeof a, DATA "batch: 16\nepochs: 2\nseed: 9\nthreads: 1\nrule: %s\n"
                     "model: {input: 24, hidden: [20, 12, 8], classes: 4, activation: %s}\n",
                     rules[r], acts[k]);
            snprintf(b, sizeof b, DATA "batch: 16\nepochs: 2\nseed: 9\nthreads: 1\nrule: %s\n"
                     "model:\n  input: 24\n  classes: 4\n  layers: [{dense: 20}, %s, "
                     "{dense: 12}, %s, {dense: 8}, %s, {dense: 4}]\n", rules[r], acts[k],
                     acts[k], acts[k]);
            same_bits(a, b);
        }
}

/* MEM-DFA over layers gives DFA's weights, with and without norm layers. */
static void test_memdfa_equals_dfa_on_layer_lists(void **state)
{
    static const char *const models[] = {
        "  layers: [{dense: 20}, relu, {dense: 12}, tanh, {dense: 8}, gelu, {dense: 4}]\n",
        "  layers: [flatten, {dense: 20}, batchnorm, relu, {dense: 12}, relu, layernorm, "
        "{dense: 4}]\n",
    };
    for (size_t m = 0; m < sizeof models / sizeof *models; m++) {
        char a[1024], b[1024];
        snprintf(a, sizeof a, DATA "batch: 16\nepochs: 2\nseed: 9\nthreads: 1\nrule: dfa\n"
                 "model:\n  input: [2, 3, 4]\n  classes: 4\n%s", models[m]);
        snprintf(b, sizeof b, DATA "batch: 16\nepochs: 2\nseed: 9\nthreads: 1\nrule: memdfa\n"
                 "model:\n  input: [2, 3, 4]\n  classes: 4\n%s", models[m]);
        same_bits(a, b);
    }
}

/* DFA's D_l on a net of three convs without batch-norm: each conv's matrix
 * is drawn at the rule's scale times 1/sqrt(h w) of the tensor it reaches;
 * the dense layers', and every matrix of a two-conv net or of a net with
 * batch-norm, at the rule's scale. */
#define DEEP_CONV(norm) "model:\n  input: [1, 12, 12]\n  classes: 3\n  layers:\n" \
    "    - conv: {channels: 4, kernel: 3, padding: 1}\n" norm "    - relu\n    - maxpool: 2\n" \
    "    - conv: {channels: 4, kernel: 3, padding: 1}\n    - relu\n" \
    "    - conv: {channels: 5, kernel: 3}\n    - relu\n    - flatten\n" \
    "    - dense: 8\n    - relu\n    - dense: 3\n"
static void check_dfa_gains(const char *yaml, int deep)
{
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    parse(yaml, &s);
    assert_ok(trainer_init(&t, &s, &err), err);
    const struct mt_model_desc *d = &t.net.d;
    int C = d->width[d->n_layers], seen = 0;
    for (int u = 1; u <= d->n_nodes; u++) {
        int l = rule_graph_seed_layer(d, u);
        if (l < 1)
            continue;
        struct mt_shape sh = graph_tensor_shape(d, u);
        int conv = d->node[graph_weight_node(d, l)].s.kind == MT_LK_CONV;
        float want = deep && conv ? 1.0f / sqrtf((float)(sh.h * sh.w)) : 1.0f;
        assert_true(rule_graph_dfa_feedback_gain(d, l, u) == want);
        size_t n = (size_t)C * graph_tensor_count(d, u);
        float top = 0.0f, bound = t.spec.rule.feedback_scale * want;
        for (size_t i = 0; i < n; i++)
            top = fmaxf(top, fabsf(t.rs.fb[l][i]));
        assert_true(top <= bound && top > 0.7f * bound);
        seen += conv;
    }
    assert_int_equal(seen, 3);
    trainer_fini(&t);
}

static void test_dfa_feedback_on_deep_conv_nets(void **state)
{
    (void)state;
    check_dfa_gains(SYNTH_IMG "batch: 8\nepochs: 1\nrule: dfa\n" DEEP_CONV(""), 1);
    check_dfa_gains(SYNTH_IMG "batch: 8\nepochs: 1\nrule: memdfa\n" DEEP_CONV(""), 1);
    check_dfa_gains(SYNTH_IMG "batch: 8\nepochs: 1\nrule: dfa\n" DEEP_CONV("    - batchnorm\n"), 0);
}

/* On a conv net and a residual net (with identity and projection
 * shortcuts), MEM-DFA's weights are DFA's and checkpointing's are BP's, bit
 * for bit after 50 steps (two epochs of 25 batches of 8) on one thread. */
static void test_conv_and_residual_nets_same_bits(void **state)
{
    static const char *const nets[] = {CONV_NET, RES_NET};
    static const char *const pairs[][2] = {{"dfa", "memdfa"},
                                           {"bp", "{name: ckpt, segments: 2}"},
                                           {"bp", "{name: ckpt, segments: 3}"}};
    for (size_t n = 0; n < 2; n++)
        for (size_t k = 0; k < 3; k++) {
            char a[1024], b[1024];
            snprintf(a, sizeof a, SYNTH_IMG "batch: 8\nepochs: 2\nseed: 4\nthreads: 1\n"
                     "rule: %s\n%s", pairs[k][0], nets[n]);
            snprintf(b, sizeof b, SYNTH_IMG "batch: 8\nepochs: 2\nseed: 4\nthreads: 1\n"
                     "rule: %s\n%s", pairs[k][1], nets[n]);
            same_bits(a, b);
        }
}

/* The engine's workers (par.h) split every kernel of a layer-list model
 * (images, channels, columns of a product, runs of planes). A split can
 * move the last bits of a product (OpenBLAS picks its small-matrix kernel
 * by size), never what it computes: two and three workers train the same
 * bits run after run, and stay within float rounding of one worker over
 * three steps (batch-norm over small batches amplifies rounding, so longer
 * runs drift further apart, as any two BLAS builds do). */
#define POOL_NET "model:\n  input: [3, 9, 9]\n  classes: 3\n  layers:\n" \
    "    - conv: {channels: 5, kernel: 3, padding: 1}\n    - batchnorm\n    - relu\n" \
    "    - maxpool: 2\n    - conv: {channels: 7, kernel: 3, padding: 1}\n    - tanh\n" \
    "    - avgpool: {kernel: 3, stride: 2}\n    - flatten\n    - dense: {units: 40}\n" \
    "    - relu\n    - dense: 3\n"
#define WORKER_DATA "dataset: {name: synthetic, synthetic_train: 39, synthetic_test: 10}\n"
static void test_workers_train_alike(void **state)
{
    static const char *const nets[] = {CONV_NET, RES_NET, POOL_NET};
    static const char *const rules[] = {"bp", "dfa"};
    for (size_t n = 0; n < 3; n++)
        for (size_t r = 0; r < 2; r++) {
            struct mt_spec one;
            char y[1024];
            snprintf(y, sizeof y, WORKER_DATA "batch: 13\nepochs: 1\nseed: 4\nthreads: 1\n"
                     "rule: %s\n%s", rules[r], nets[n]);
            parse(y, &one);
            size_t n1;
            float *p1 = train(&one, &n1);
            for (int threads = 2; threads <= 3; threads++) {
                struct mt_spec s;
                snprintf(y, sizeof y, WORKER_DATA "batch: 13\nepochs: 1\nseed: 4\nthreads: %d\n"
                         "rule: %s\n%s", threads, rules[r], nets[n]);
                parse(y, &s);
                size_t na, nb;
                float *pa = train(&s, &na), *pb = train(&s, &nb);
                assert_int_equal(na, n1);
                double scale = 0, worst = 0;
                for (size_t i = 0; i < n1; i++) {
                    scale = fmax(scale, fabs(p1[i]));
                    worst = fmax(worst, fabs((double)pa[i] - p1[i]));
                }
                if (worst > 1e-4 * scale)
                    fail_msg("net %zu, %s, %d workers: a parameter moved %.3g from one "
                             "worker's (largest %.3g)", n, rules[r], threads, worst, scale);
                assert_same_params(pa, pb, na);
            }
            free(p1);
        }
}

/* Checkpointing over layers gives BP's weights, at every segment count. */
static void test_ckpt_equals_bp_on_layer_lists(void **state)
{
    static const char *const models[] = {
        "  layers: [{dense: 20}, relu, {dense: 12}, tanh, {dense: 8}, gelu, {dense: 4}]\n"
        "optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n",
        "  layers: [flatten, {dense: 20}, batchnorm, relu, {dense: 12}, relu, layernorm, "
        "{dense: 4}]\n",
    };
    for (size_t m = 0; m < sizeof models / sizeof *models; m++)
        for (int k = 1; k <= 4; k++) {
            char a[1024], b[1024];
            snprintf(a, sizeof a, DATA "batch: 16\nepochs: 2\nseed: 9\nthreads: 1\nrule: bp\n"
                     "model:\n  input: [2, 3, 4]\n  classes: 4\n%s", models[m]);
            snprintf(b, sizeof b, DATA "batch: 16\nepochs: 2\nseed: 9\nthreads: 1\n"
                     "rule: {name: ckpt, segments: %d}\n"
                     "model:\n  input: [2, 3, 4]\n  classes: 4\n%s", k, models[m]);
            same_bits(a, b);
        }
}

/* ---- finite differences through the graph ------------------------------ */

struct fd {
    struct mt_model_desc d;
    struct mt_arena *a;
    struct graph_mem m;
    float *params, *stats, *x;
    uint8_t y[8];
    int B;
};

static double fd_loss(struct fd *f)
{
    struct graph_step st;
    struct mt_err err = {0};
    size_t mark = arena_mark(f->a);
    assert_ok(graph_train_forward(&f->d, &f->m, f->params, f->stats, f->x, f->B, NULL, f->a, &st,
                                  &err),
              err);
    int correct;
    int C = f->d.width[f->d.n_layers];
    double l = loss_softmax_xent(st.t[f->d.n_nodes], f->y, f->B, C, &correct);
    arena_pop(f->a, mark);
    return l;
}

static float *g_grads;
static float *sink_grads(void *ud, int node, float *beta)
{
    struct fd *f = ud;
    *beta = 0.0f;
    return g_grads + f->d.node[node].param_off;
}

/* Build a model from a layer list and check every parameter's gradient
 * (and so, through the chain, every layer's input gradient) against
 * central differences of the mean cross-entropy. */
static void fd_check(const char *model_yaml, int B)
{
    char yaml[2048];
    struct mt_spec s;
    snprintf(yaml, sizeof yaml, DATA "batch: %d\nepochs: 1\nseed: 4\n%s", B, model_yaml);
    parse(yaml, &s);
    struct fd f = {.d = s.model, .B = B};
    struct mt_err err = {0};
    f.a = arena_new(0);
    graph_mem_plan(&f.d, B, NULL, NULL, &f.m);
    size_t P = graph_param_count(&f.d), S = graph_stat_count(&f.d);
    size_t n0 = (size_t)f.d.width[0];
    f.params = arena_alloc(f.a, MT_MEM_PARAMS, P * 4, &err);
    f.stats = S ? arena_alloc(f.a, MT_MEM_PARAMS, S * 4, &err) : NULL;
    f.x = arena_alloc(f.a, MT_MEM_DATA, (size_t)B * n0 * 4, &err);
    g_grads = arena_alloc(f.a, MT_MEM_GRADS, P * 4, &err);
    struct mt_rng rng;
    rng_seed(&rng, 11);
    graph_init_params(&f.d, f.params, f.stats, &rng);
    for (size_t i = 0; i < P; i++) /* move biases, gammas and betas off their init */
        f.params[i] += 0.1f * rng_uniform_range(&rng, -1.0f, 1.0f);
    for (size_t i = 0; i < (size_t)B * n0; i++)
        f.x[i] = rng_uniform_range(&rng, -1.0f, 1.0f);
    int C = f.d.width[f.d.n_layers];
    for (int i = 0; i < B; i++)
        f.y[i] = (uint8_t)(i % C);

    /* The analytic gradient. */
    struct graph_step st;
    size_t mark = arena_mark(f.a);
    assert_ok(graph_train_forward(&f.d, &f.m, f.params, f.stats, f.x, B, NULL, f.a, &st, &err), err);
    int correct;
    loss_softmax_xent_backward(st.t[f.d.n_nodes], f.y, B, C, &correct);
    struct graph_grad_sink sink = {.dp = sink_grads, .ud = &f};
    assert_ok(graph_backward(&f.d, &f.m, f.params, &st, B, &sink, NULL, f.a, &err), err);
    arena_pop(f.a, mark);

    /* Central differences on a sample of parameters of every node. */
    double worst = 0;
    for (int i = 0; i < f.d.n_nodes; i++) {
        const struct mt_layer *L = &f.d.node[i];
        size_t n = layer_n_params(L);
        for (size_t k = 0; k < n; k += 1 + n / 23) {
            float *p = &f.params[L->param_off + k], keep = *p;
            const float h = 2e-3f;
            *p = keep + h;
            double lp = fd_loss(&f);
            *p = keep - h;
            double lm = fd_loss(&f);
            *p = keep;
            double num = (lp - lm) / (2.0 * h), ana = g_grads[L->param_off + k];
            double diff = fabs(num - ana) / (fabs(num) + fabs(ana) + 1e-3);
            if (diff > worst)
                worst = diff;
            if (diff > 3e-2)
                fail_msg("%s: node %d (%s) parameter %zu: analytic %.6g, numeric %.6g",
                         model_yaml, i, layer_kind_name(L->s.kind), k, ana, num);
        }
    }
    arena_free(f.a);
    (void)worst;
}

static void test_graph_gradients_match_finite_differences(void **state)
{
    fd_check("model:\n  input: 12\n  classes: 3\n  layers: [{dense: 7}, relu, {dense: 3}]\n", 5);
    fd_check("model:\n  input: [3, 2, 2]\n  classes: 3\n  layers: [flatten, {dense: 6}, "
             "batchnorm, tanh, {dense: {units: 5, bias: false}}, gelu, layernorm, {dense: 3}]\n", 6);
    /* conv: stride, padding, bias, odd shapes; both pools; per-channel batch-norm */
    fd_check("model:\n  input: [3, 7, 5]\n  classes: 3\n  layers:\n"
             "    - conv: {channels: 4, kernel: [3, 2], stride: 2, padding: 1}\n"
             "    - tanh\n    - conv: {channels: 3, kernel: 2, bias: false}\n    - batchnorm\n"
             "    - tanh\n    - flatten\n    - {dense: 3}\n", 4);
    fd_check("model:\n  input: [2, 8, 7]\n  classes: 3\n  layers:\n"
             "    - conv: {channels: 3, kernel: 3, padding: 1}\n    - maxpool: 2\n    - tanh\n"
             "    - conv: {channels: 4, kernel: 1}\n    - avgpool: {kernel: 2, stride: 1}\n"
             "    - globalavgpool\n    - {dense: 3}\n", 3);
    /* the residual block, with an identity and with a projection shortcut */
    fd_check("model:\n  input: [2, 6, 6]\n  classes: 3\n  layers:\n"
             "    - conv: {channels: 3, kernel: 3, padding: 1}\n"
             "    - residual: {channels: 3, activation: tanh}\n"
             "    - residual: {channels: 4, stride: 2, activation: tanh}\n"
             "    - batchnorm\n    - tanh\n    - globalavgpool\n    - {dense: 3}\n", 4);
}

/* ---- conv against a naive direct convolution -------------------------- */

static void naive_conv(const struct mt_layer *L, const float *x, const float *W, const float *bias,
                       float *y, int B)
{
    int C = L->in.c, H = L->in.h, Wd = L->in.w, M = L->s.units, kh = L->s.kh, kw = L->s.kw;
    int S = L->s.stride, pad = L->s.pad, Ho = L->out.h, Wo = L->out.w;
    for (int b = 0; b < B; b++)
        for (int m = 0; m < M; m++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double s = bias ? bias[m] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int i = 0; i < kh; i++)
                            for (int j = 0; j < kw; j++) {
                                int yy = oy * S - pad + i, xx = ox * S - pad + j;
                                if (yy < 0 || yy >= H || xx < 0 || xx >= Wd)
                                    continue;
                                s += (double)W[((m * C + c) * kh + i) * kw + j] *
                                     x[((b * C + c) * H + yy) * Wd + xx];
                            }
                    y[((b * M + m) * Ho + oy) * Wo + ox] = (float)s;
                }
}

static void test_conv_matches_naive_convolution(void **state)
{
    static const int cases[][6] = {/* c_in, h, w, c_out, kh, kw */
        {3, 7, 5, 4, 3, 2}, {1, 9, 9, 2, 5, 5}, {2, 5, 6, 3, 1, 1}, {4, 6, 6, 5, 3, 3},
        /* stride 1, output as wide as the input (the shifted-plane im2col) */
        {3, 6, 5, 4, 3, 3}, {2, 7, 8, 3, 5, 5}, {2, 4, 3, 2, 3, 1}, {1, 3, 3, 2, 3, 3}};
    static const int sp[][2] = {{2, 1}, {1, 0}, {1, 0}, {2, 1}, {1, 1}, {1, 2}, {1, 0}, {1, 1}};
    /* each case on one, two and three workers (par.h) */
    for (int run = 0; run < 3 * 8; run++) {
        int k = run % 8;
        par_set_threads(1 + run / 8);
        struct mt_layer L = {.s = {.kind = MT_LK_CONV, .units = cases[k][3], .kh = cases[k][4],
                                   .kw = cases[k][5], .stride = sp[k][0], .pad = sp[k][1],
                                   .bias = 1},
                             .in = {cases[k][0], cases[k][1], cases[k][2]}};
        struct mt_err err = {0};
        const struct mt_layer_ops *o = layer_ops(MT_LK_CONV);
        assert_ok(o->shape(&L, &err), err);
        int B = 3;
        size_t nin = B * shape_count(L.in), nout = B * shape_count(L.out);
        size_t np = layer_n_params(&L), nw = layer_n_weights(&L);
        float *x = malloc(nin * 4), *p = malloc(np * 4), *y = malloc(nout * 4);
        float *ref = malloc(nout * 4), *ws = malloc((layer_ws_floats(&L, B) + 1) * 4);
        struct mt_rng rng;
        rng_seed(&rng, 3 + k);
        for (size_t i = 0; i < nin; i++)
            x[i] = rng_uniform_range(&rng, -1, 1);
        for (size_t i = 0; i < np; i++)
            p[i] = rng_uniform_range(&rng, -1, 1);
        struct mt_layer_fwd f = {.x = x, .y = y, .p = p, .ws = ws, .B = B, .train = 1};
        o->forward(&L, &f);
        naive_conv(&L, x, p, p + nw, ref, B);
        for (size_t i = 0; i < nout; i++)
            assert_float_equal(y[i], ref[i], 1e-4);
        /* The backward against the forward's linearity: for R random,
         * sum(R * Y) = sum over W, b and x of their gradients times themselves
         * (Y is bilinear in (W, b) and x). */
        float *R = malloc(nout * 4), *dx = malloc(nin * 4), *dp = malloc(np * 4);
        for (size_t i = 0; i < nout; i++)
            R[i] = rng_uniform_range(&rng, -1, 1);
        struct mt_layer_bwd bw = {.x = x, .dy = R, .dx = dx, .dp = dp, .p = p, .back = p,
                                  .ws = ws, .B = B};
        o->backward(&L, &bw);
        double sy = 0, sw = 0, sx = 0, sb = 0;
        for (size_t i = 0; i < nout; i++)
            sy += (double)R[i] * ref[i];
        for (size_t i = 0; i < nw; i++)
            sw += (double)dp[i] * p[i];
        for (size_t i = nw; i < np; i++)
            sb += (double)dp[i] * p[i];
        for (size_t i = 0; i < nin; i++)
            sx += (double)dx[i] * x[i];
        /* Y = conv(W, x) + b: <R, Y> = <dW, W> + <db, b> = <dx, x> + <db, b> */
        if (fabs(sy - sw - sb) > 1e-3 * (1 + fabs(sy)) || fabs(sy - sx - sb) > 1e-3 * (1 + fabs(sy)))
            fail_msg("case %d (%d workers): <R,Y> %.6g, <dW,W>+<db,b> %.6g, <dx,x>+<db,b> %.6g", k, par_threads(),
                     sy, sw + sb, sx + sb);
        free(x), free(p), free(y), free(ref), free(ws), free(R), free(dx), free(dp);
    }
    par_set_threads(1);
}

/* ---- the workers' splits, layer by layer ------------------------------ */

/* One layer's forward (training) and backward on B samples with `workers`
 * workers; outputs, aux, statistics and gradients into out (malloc'd). */
static float *run_layer(const struct mt_layer *L, int B, int workers, size_t *n)
{
    par_set_threads(workers);
    size_t nin = B * shape_count(L->in), nout = B * shape_count(L->out);
    size_t np = layer_n_params(L), ns = layer_n_stats(L), na = layer_aux_floats(L, B);
    size_t nws = layer_ws_floats(L, B);
    *n = nout + na + ns + np + 2 * nin;
    float *o = calloc(*n, 4), *x = malloc(nin * 4), *x2 = malloc(nin * 4), *p = malloc(np * 4 + 4);
    float *dy = malloc(nout * 4), *ws = malloc(nws * 4 + 4);
    float *y = o, *aux = y + nout, *st = aux + na, *dp = st + ns, *dx = dp + np, *dx2 = dx + nin;
    struct mt_rng rng;
    rng_seed(&rng, 11);
    for (size_t i = 0; i < nin; i++)
        x[i] = rng_uniform_range(&rng, -1, 1), x2[i] = rng_uniform_range(&rng, -1, 1);
    for (size_t i = 0; i < np; i++)
        p[i] = rng_uniform_range(&rng, 0.5f, 1.5f);
    for (size_t i = 0; i < ns; i++)
        st[i] = 0.5f;
    for (size_t i = 0; i < nout; i++)
        dy[i] = rng_uniform_range(&rng, -1, 1);
    const struct mt_layer_ops *ops = layer_ops(L->s.kind);
    ops->forward(L, &(struct mt_layer_fwd){.x = x, .x2 = x2, .y = y, .p = p, .stats = ns ? st : NULL,
                                          .aux = na ? aux : NULL, .ws = ws, .B = B, .train = 1});
    ops->backward(L, &(struct mt_layer_bwd){.x = x, .y = y, .aux = na ? aux : NULL, .dy = dy,
                                           .dx = dx, .dx2 = dx2, .dp = np ? dp : NULL,
                                           .p = p, .back = p, .ws = ws, .B = B});
    free(x), free(x2), free(p), free(dy), free(ws);
    par_set_threads(1);
    return o;
}

/* Kinds whose items are independent split without changing a bit; conv and
 * dense split products, which stay within float rounding. */
static void test_workers_split_each_kind(void **state)
{
    static const struct mt_layer_spec kinds[] = {
        {.kind = MT_LK_BATCHNORM}, {.kind = MT_LK_ACT, .act = MT_ACT_RELU},
        {.kind = MT_LK_ACT, .act = MT_ACT_GELU}, {.kind = MT_LK_ADD},
        {.kind = MT_LK_MAXPOOL, .kh = 2, .kw = 2, .stride = 2},
        {.kind = MT_LK_MAXPOOL, .kh = 3, .kw = 3, .stride = 2},
        {.kind = MT_LK_AVGPOOL, .kh = 3, .kw = 3, .stride = 2}, {.kind = MT_LK_GAP},
        {.kind = MT_LK_CONV, .units = 6, .kh = 3, .kw = 3, .stride = 1, .pad = 1, .bias = 1},
        {.kind = MT_LK_CONV, .units = 5, .kh = 3, .kw = 3, .stride = 2, .pad = 1, .bias = 1},
        {.kind = MT_LK_CONV, .units = 4, .kh = 1, .kw = 1, .stride = 1, .bias = 0},
        {.kind = MT_LK_DENSE, .units = 37, .bias = 1},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        struct mt_layer L = {.s = kinds[k], .in = {3, 7, 9}};
        struct mt_err err = {0};
        assert_ok(layer_ops(L.s.kind)->shape(&L, &err), err);
        int B = 11; /* 33 planes: not a multiple of the maxpool's runs of 8 */
        size_t n1, n;
        float *one = run_layer(&L, B, 1, &n1);
        for (int w = 2; w <= 3; w++) {
            float *more = run_layer(&L, B, w, &n);
            assert_int_equal(n, n1);
            int products = L.s.kind == MT_LK_CONV || L.s.kind == MT_LK_DENSE;
            for (size_t i = 0; i < n; i++)
                if (products ? fabsf(more[i] - one[i]) > 1e-5f * (1 + fabsf(one[i]))
                             : memcmp(&more[i], &one[i], 4) != 0)
                    fail_msg("%s, %d workers: value %zu of %zu is %.9g, one worker's %.9g",
                             layer_kind_name(L.s.kind), w, i, n, more[i], one[i]);
            free(more);
        }
        free(one);
    }
}

/* ---- codes in place of kept tensors ----------------------------------- */

/* A keep policy that stores every tensor it may as an exact copy, and
 * feeds weight layers their input times one: the gradients must be BP's,
 * bit for bit, through the code, decode and input-transform paths. */
static int copy_coded(const void *ctx, const struct mt_model_desc *d, int t, int B, size_t *bytes)
{
    (void)ctx;
    *bytes = (size_t)B * graph_tensor_count(d, t) * sizeof(float);
    return 1;
}

static const struct mt_model_desc *copy_d;
static int copy_decodes;

static void copy_encode(void *ud, int t, const float *x, int B, void *code,
                        const struct graph_step *s)
{
    (void)ud, (void)s;
    memcpy(code, x, (size_t)B * graph_tensor_count(copy_d, t) * sizeof(float));
}

static void copy_decode(void *ud, int t, int reader, int B, float *out, const struct graph_step *s)
{
    (void)ud, (void)reader;
    memcpy(out, s->code[t], (size_t)B * graph_tensor_count(copy_d, t) * sizeof(float));
    copy_decodes++;
}

static const float *copy_input(void *ud, int node, const float *x, int B, float *ws)
{
    (void)ud;
    size_t n = (size_t)B * shape_count(copy_d->node[node].in);
    for (size_t i = 0; i < n; i++)
        ws[i] = x[i] * 1.0f;
    return ws;
}

static const struct graph_keep copy_keep = {copy_coded, copy_encode, copy_decode, copy_input, 1, 0};

/* FA's path: the input gradient through a matrix given per weight layer
 * (here a copy of the forward weights, so FA must give BP's gradients). */
static const float *copy_params;
static const struct mt_model_desc *back_d;
static const float *back_copy(void *ud, int node)
{
    (void)ud;
    return copy_params + back_d->node[node].param_off;
}

static void grads_with_back(const struct mt_model_desc *d, const struct graph_keep *keep, int B,
                            float *grads, size_t *kept, int fa);

static void grads_with(const struct mt_model_desc *d, const struct graph_keep *keep, int B,
                       float *grads, size_t *kept)
{
    grads_with_back(d, keep, B, grads, kept, 0);
}

static void grads_with_back(const struct mt_model_desc *d, const struct graph_keep *keep, int B,
                            float *grads, size_t *kept, int fa)
{
    struct mt_err err = {0};
    struct mt_arena *a = arena_new(0);
    struct graph_mem m;
    graph_mem_plan(d, B, keep, NULL, &m);
    *kept = m.kept_bytes;
    size_t P = graph_param_count(d), S = graph_stat_count(d), n0 = (size_t)d->width[0];
    float *params = arena_alloc(a, MT_MEM_PARAMS, P * 4, &err);
    float *stats = S ? arena_alloc(a, MT_MEM_PARAMS, S * 4, &err) : NULL;
    float *x = arena_alloc(a, MT_MEM_DATA, (size_t)B * n0 * 4, &err);
    uint8_t y[16];
    struct mt_rng rng;
    rng_seed(&rng, 5);
    graph_init_params(d, params, stats, &rng);
    for (size_t i = 0; i < (size_t)B * n0; i++)
        x[i] = rng_uniform_range(&rng, -1.0f, 1.0f);
    int C = d->width[d->n_layers], correct;
    for (int i = 0; i < B; i++)
        y[i] = (uint8_t)(i % C);
    g_grads = grads;
    struct fd f = {.d = *d};
    struct graph_step st;
    struct graph_grad_sink sink = {.dp = sink_grads, .ud = &f};
    float *copy = NULL;
    if (fa) {
        copy = malloc(P * sizeof *copy);
        for (size_t i = 0; i < P; i++)
            copy[i] = params[i] * (float)fa; /* fa 2: not the forward weights */
        copy_params = copy;
        back_d = d;
        sink.back = back_copy;
    }
    assert_ok(graph_train_forward(d, &m, params, stats, x, B, NULL, a, &st, &err), err);
    loss_softmax_xent_backward(st.t[d->n_nodes], y, B, C, &correct);
    assert_ok(graph_backward(d, &m, params, &st, B, &sink, NULL, a, &err), err);
    free(copy);
    arena_free(a);
}

/* FA with its fixed matrices equal to the forward weights is BP, on a conv
 * net and a residual net. */
static void test_fa_with_forward_weights_is_bp(void **state)
{
    static const char *const nets[] = {CONV_NET, RES_NET};
    for (size_t n = 0; n < 2; n++) {
        char yaml[1024];
        struct mt_spec s;
        snprintf(yaml, sizeof yaml, SYNTH_IMG "batch: 5\nepochs: 1\nrule: fa\n%s", nets[n]);
        parse(yaml, &s);
        size_t P = graph_param_count(&s.model), k0, k1;
        float *g0 = calloc(P, 4), *g1 = calloc(P, 4);
        grads_with_back(&s.model, NULL, 5, g0, &k0, 0);
        grads_with_back(&s.model, NULL, 5, g1, &k1, 1);
        assert_memory_equal(g0, g1, P * 4);
        /* and the matrices are what the input gradient goes through */
        grads_with_back(&s.model, NULL, 5, g1, &k1, 2);
        assert_true(memcmp(g0, g1, P * 4) != 0);
        free(g0);
        free(g1);
    }
}

static void test_codes_replace_kept_tensors(void **state)
{
    struct mt_spec s;
    parse(DATA "batch: 6\nepochs: 1\nmodel:\n  input: [3, 2, 2]\n  classes: 3\n"
          "  layers: [flatten, {dense: 6}, batchnorm, gelu, {dense: 5}, relu, layernorm, "
          "{dense: 3}]\n", &s);
    size_t P = graph_param_count(&s.model), k0, k1;
    float *g0 = calloc(P, 4), *g1 = calloc(P, 4);
    copy_d = &s.model;
    copy_decodes = 0;
    grads_with(&s.model, NULL, 6, g0, &k0);
    grads_with(&s.model, &copy_keep, 6, g1, &k1);
    assert_memory_equal(g0, g1, P * 4);
    assert_true(copy_decodes >= 4); /* BN, GELU, ReLU, LN and both dense inputs read codes */
    assert_true(k1 >= k0);
    free(g0);
    free(g1);
}

/* ---- plan = measured ----------------------------------------------------- */

/* Plan = measured for every rule that trains layer lists. */
static void plan_matches_every_rule(const char *data, int batch, const char *model)
{
    static const char *const rules[] = {"bp", "fa", "dfa", "memdfa", "ckpt"};
    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
        char yaml[1024];
        struct mt_spec s;
        struct mt_mem_stats st;
        struct mt_mem_plan plan;
        snprintf(yaml, sizeof yaml, "%sbatch: %d\nepochs: 1\nseed: 2\nthreads: 1\nrule: %s\n%s",
                 data, batch, rules[r], model);
        parse(yaml, &s);
        assert_plan_matches(&s, &st, &plan);
    }
}

static void test_graph_plan_equals_measured(void **state)
{
    static const int batches[] = {1, 16, 33};
    static const char *const models[] = {
        "model:\n  input: 24\n  classes: 4\n  layers: [{dense: 20}, relu, {dense: 4}]\n"
        "optimizer: {name: sgd, lr: 0.01, momentum: 0.9}\n",
        "model:\n  input: [2, 3, 4]\n  classes: 4\n  layers: [flatten, {dense: 20}, batchnorm, "
        "silu, {dense: 12}, relu, layernorm, {dense: 4}]\n",
    };
    static const char *const nets[] = {CONV_NET, RES_NET};
    for (size_t n = 0; n < 2; n++)
        for (size_t b = 0; b < 2; b++)
            plan_matches_every_rule(SYNTH_IMG, b ? 16 : 7, nets[n]);
    for (size_t m = 0; m < sizeof models / sizeof *models; m++)
        for (size_t b = 0; b < 3; b++)
            plan_matches_every_rule(DATA, batches[b], models[m]);
}

/* ---- refusals ----------------------------------------------------------- */

static void test_bad_layer_lists_are_refused(void **state)
{
#define M(body) DATA "batch: 8\nepochs: 1\nmodel:\n  input: 12\n  classes: 3\n" body
    parse_fails("dataset: mnist\nbatch: 8\nepochs: 1\nmodel:\n  layers: [{conv: {channels: 20, "
                "kernel: 5}}, {maxpool: 2}, {conv: {channels: 50, kernel: 5}}, {maxpool: 2}, "
                "{conv: {channels: 50, kernel: 5}}, flatten, {dense: 10}]\n",
                "model.layers[4] (conv): input 50x4x4: smaller than its 5x5 kernel (padding 0)");
    parse_fails(M("  layers: [{dense: 5}, {pool: 2}, {dense: 3}]\n"),
                "test.yaml:7: model.layers[1]: unknown layer kind 'pool' (expected dense, conv");
    parse_fails(M("  layers: [{dense: {bias: false}}, {dense: 3}]\n"),
                "dense: missing required key 'units'");
    parse_fails(M("  layers: [{dense: 5}, relu]\n"), "model.layers[1] (act): gives 5x1x1 per "
                "sample; the loss needs one value per class (3): end with a dense layer of 3");
    parse_fails(M("  layers: [{dense: 5}, {dense: 4}]\n"), "model.layers[1] (dense): gives 4x1x1");
    parse_fails(M("  hidden: [4]\n  layers: [{dense: 3}]\n"), "give either hidden");
    parse_fails(M("  layers: [flatten: 3, {dense: 3}]\n"), "takes no settings");
    parse_fails(M("  layers: [{dense: 3, relu: 1}]\n"), "one layer per list entry");
    parse_fails("dataset: mnist\nbatch: 8\nepochs: 1\nmodel:\n  input: [2, 2, 2]\n"
                "  layers: [{dense: 10}]\n", "model.input: 8 does not match dataset 'mnist'");
#undef M
}

/* The MLP form's defaults do not apply to a layer list; a residual join is
 * no entry of its own. */
static void test_layer_list_refuses_mlp_keys_and_add(void **state)
{
#define M(body) DATA "batch: 8\nepochs: 1\nmodel:\n  input: 12\n  classes: 3\n" body
    parse_fails(M("  activation: tanh\n  layers: [{dense: 5}, act, {dense: 3}]\n"),
                "test.yaml:7: model.activation: applies to model.hidden only; in a layer list "
                "each activation is an entry of model.layers");
    parse_fails(M("  layers: [{dense: 5}, relu, {dense: 3}]\n  norm: batchnorm\n"),
                "test.yaml:8: model.norm: applies to model.hidden only");
    parse_fails(M("  layers: [{dense: 12}, add, {dense: 3}]\n"),
                "model.layers[1]: unknown layer kind 'add'");
#undef M
}

/* Rules their papers define for fully connected layers refuse a layer
 * list at submit, each saying why; the same rule takes the MLP form. */
static void test_fc_only_rules_refuse_layer_lists(void **state)
{
    static const char *const rules[][2] = {
        {"ff", "rule 'ff' (Forward-Forward) is defined for fully connected layers"},
        {"pepita", "rule 'pepita' (PEPITA) is defined for fully connected layers"},
        {"tinyfoa", "rule 'tinyfoa' (TinyFoA) is defined for fully connected layers"},
        {"{name: bp, binary: true}", "rule bp with binary: true (BP+BW+BA, spec 7.3) is "
         "defined for fully connected layers"},
    };
    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
        char yaml[1024];
        struct mt_spec s;
        snprintf(yaml, sizeof yaml, DATA "batch: 8\nepochs: 1\nrule: %s\nmodel:\n"
                 "  input: [1, 4, 4]\n  classes: 3\n  layers: [{conv: {channels: 2, kernel: 3}},"
                 " relu, flatten, {dense: 3}]\n", rules[r][0]);
        parse_fails(yaml, rules[r][1]);
        parse_fails(yaml, "it does not train conv or layer-list models (model.layers): use an "
                    "MLP (model.hidden)");
        snprintf(yaml, sizeof yaml, DATA "batch: 8\nepochs: 1\nrule: %s\nmodel:\n"
                 "  input: 16\n  classes: 3\n  hidden: [8]\n", rules[r][0]);
        parse(yaml, &s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layer_list_mlp_trains_to_the_same_bits),
        cmocka_unit_test(test_memdfa_equals_dfa_on_layer_lists),
        cmocka_unit_test(test_ckpt_equals_bp_on_layer_lists),
        cmocka_unit_test(test_dfa_feedback_on_deep_conv_nets),
        cmocka_unit_test(test_conv_and_residual_nets_same_bits),
        cmocka_unit_test(test_workers_train_alike),
        cmocka_unit_test(test_workers_split_each_kind),
        cmocka_unit_test(test_graph_gradients_match_finite_differences),
        cmocka_unit_test(test_conv_matches_naive_convolution),
        cmocka_unit_test(test_codes_replace_kept_tensors),
        cmocka_unit_test(test_fa_with_forward_weights_is_bp),
        cmocka_unit_test(test_graph_plan_equals_measured),
        cmocka_unit_test(test_bad_layer_lists_are_refused),
        cmocka_unit_test(test_fc_only_rules_refuse_layer_lists),
        cmocka_unit_test(test_layer_list_refuses_mlp_keys_and_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
