/* test-asa.c: the asa rule (spec section 5) computes what the spec says.
 * A step's gradients equal a naive double-precision reference written from
 * the equations; the bias gradients and layer 1's weight gradient are the
 * exact gradients of the ASA model (finite differences through `infer`),
 * so the error reaching lower layers is exact BP's; the kept activations
 * are 1 bit per hidden element plus the logits, and the plan equals the
 * measured peaks; the learning indicator is the spec's; and the rule
 * learns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "pack.h"
#include "rules/common.h"
#include "testutil.h"

/* ------------------------------------------------------------ reference */

/* The ASA model and its gradients by plain loops in double (spec 5(a)):
 * in_1 = X, in_l = H_{l-1} + eps [H_{l-1} > 0]; Z_l = in_l W_l^T + b_l;
 * H_l = relu(Z_l); E = (softmax(Z_L) - Y) / B; Delta_L = E;
 * G_l = kappa eps Delta_l^T [H_{l-1} > 0] (l >= 2), G_1 = Delta_1^T X;
 * g_l = 1^T Delta_l; Delta_{l-1} = (Delta_l W_l) * [H_{l-1} > 0]. */
struct ref {
    int L, B, n[MT_MAX_LAYERS + 1];
    double *in[MT_MAX_LAYERS + 1];   /* (B, n_{l-1}) layer l's input */
    double *H[MT_MAX_LAYERS + 1];    /* (B, n_l); H[L] = logits */
    double *G;                       /* (P) in the model's layout */
    double *G_true;                  /* (P) Delta_l^T in_l: the ASA model's exact gradient */
    double loss;
    double li[MT_MAX_LAYERS + 1];    /* mean LI of layer l's input, l >= 2 */
};

static void ref_run(struct ref *r, const struct mt_model_desc *d, const double *theta,
                    const float *x, const uint8_t *y, int B, double eps, double kappa)
{
    int L = d->n_layers;
    memset(r, 0, sizeof *r);
    r->L = L;
    r->B = B;
    for (int l = 0; l <= L; l++)
        r->n[l] = d->width[l];
    for (int l = 1; l <= L; l++) {
        r->in[l] = calloc((size_t)B * r->n[l - 1], sizeof(double));
        r->H[l] = calloc((size_t)B * r->n[l], sizeof(double));
    }
    for (int i = 0; i < B * r->n[0]; i++)
        r->in[1][i] = x[i];
    for (int l = 1; l <= L; l++) {
        int ni = r->n[l - 1], no = r->n[l];
        const double *W = theta + model_layer_offset(d, l), *b = W + (size_t)no * ni;
        if (l >= 2) {
            double sum = 0;
            for (int s = 0; s < B; s++) {
                double hh = 0, aa = 0;
                for (int j = 0; j < ni; j++) {
                    double h = r->H[l - 1][s * ni + j], a = h > 0 ? eps : 0;
                    r->in[l][s * ni + j] = h + a;
                    hh += h * h;
                    aa += (h + a) * (h + a);
                }
                sum += 1 - hh / aa;
            }
            r->li[l] = sum / B;
        }
        for (int s = 0; s < B; s++)
            for (int o = 0; o < no; o++) {
                double z = b[o];
                for (int j = 0; j < ni; j++)
                    z += r->in[l][s * ni + j] * W[o * ni + j];
                r->H[l][s * no + o] = l < L && z <= 0 ? 0 : z;
            }
    }
    /* E and the loss. */
    int C = r->n[L];
    double *delta = calloc((size_t)B * C, sizeof(double));
    for (int s = 0; s < B; s++) {
        double m = -INFINITY, z = 0;
        for (int c = 0; c < C; c++)
            m = fmax(m, r->H[L][s * C + c]);
        for (int c = 0; c < C; c++)
            z += exp(r->H[L][s * C + c] - m);
        r->loss += (log(z) + m - r->H[L][s * C + y[s]]) / B;
        for (int c = 0; c < C; c++)
            delta[s * C + c] = (exp(r->H[L][s * C + c] - m) / z - (c == y[s])) / B;
    }
    size_t P = model_param_count(d);
    r->G = calloc(P, sizeof(double));
    r->G_true = calloc(P, sizeof(double));
    for (int l = L; l >= 1; l--) {
        int ni = r->n[l - 1], no = r->n[l];
        double *gw = r->G + model_layer_offset(d, l), *gb = gw + (size_t)no * ni;
        double *tw = r->G_true + model_layer_offset(d, l), *tb = tw + (size_t)no * ni;
        for (int o = 0; o < no; o++) {
            for (int j = 0; j < ni; j++) {
                double s = 0, t = 0;
                for (int b = 0; b < B; b++) {
                    double in = r->in[l][b * ni + j];
                    double code = l == 1 ? in : kappa * eps * (r->H[l - 1][b * ni + j] > 0);
                    s += delta[b * no + o] * code;
                    t += delta[b * no + o] * in;
                }
                gw[o * ni + j] = s;
                tw[o * ni + j] = t;
            }
            double s = 0;
            for (int b = 0; b < B; b++)
                s += delta[b * no + o];
            gb[o] = tb[o] = s;
        }
        if (l == 1)
            break;
        const double *W = theta + model_layer_offset(d, l);
        double *prev = calloc((size_t)B * ni, sizeof(double));
        for (int b = 0; b < B; b++)
            for (int j = 0; j < ni; j++) {
                double s = 0;
                for (int o = 0; o < no; o++)
                    s += delta[b * no + o] * W[o * ni + j];
                prev[b * ni + j] = r->H[l - 1][b * ni + j] > 0 ? s : 0;
            }
        free(delta);
        delta = prev;
    }
    free(delta);
}

static void ref_free(struct ref *r)
{
    for (int l = 1; l <= r->L; l++) {
        free(r->in[l]);
        free(r->H[l]);
    }
    free(r->G);
    free(r->G_true);
}

/* The net's parameters in double, for the reference (caller frees). */
static double *params_double(const struct mt_net *net)
{
    size_t P = model_param_count(&net->d);
    double *theta = malloc(P * sizeof(double));
    for (size_t i = 0; i < P; i++)
        theta[i] = net->params[i];
    return theta;
}

/* A batch of B samples (n_0 values each) and labels below C. */
static void random_batch(float *x, uint8_t *y, int B, int n0, int C, uint64_t seed)
{
    struct mt_rng rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < B * n0; i++)
        x[i] = rng_normal(&rng);
    for (int i = 0; i < B; i++)
        y[i] = (uint8_t)rng_below(&rng, (uint32_t)C);
}

/* A 32-13-9-7-4 ReLU net: no width is a multiple of 8. */
static void odd_spec(struct mt_spec *s, int batch, float eps, float kappa)
{
    test_spec(s, "asa", 3, 13, MT_ACT_RELU, batch, 3 * batch);
    s->model.width[2] = 9;
    s->model.width[3] = 7;
    s->optim.kind = MT_OPT_SGD;
    s->optim.lr = 0.1f;
    s->rule.epsilon = eps;
    s->rule.kappa = kappa;
}

static int close_enough(double got, double want, double abs_tol, double rel_tol)
{
    return fabs(got - want) <= abs_tol + rel_tol * fabs(want);
}

/* ------------------------------------------------------------ gradients */

static void check_step_matches_reference(float eps, float kappa)
{
    enum { B = 5 };
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    odd_spec(&s, B, eps, kappa);
    assert_ok(trainer_init(&t, &s, &err), err);
    const struct mt_model_desc *d = &t.net.d;
    int L = d->n_layers, C = d->width[L];
    float x[B * 32], xc[B * 32];
    uint8_t y[B];
    random_batch(x, y, B, d->width[0], C, 11);

    struct ref ref;
    double *theta = params_double(&t.net);
    ref_run(&ref, d, theta, x, y, B, eps, kappa);

    /* infer is the same model, sign term included. */
    int w = model_max_width(d);
    float *b0 = calloc((size_t)B * w, sizeof(float)), *b1 = calloc((size_t)B * w, sizeof(float));
    memcpy(xc, x, sizeof x);
    const float *logits = t.rule->infer(&t, xc, B, b0, b1);
    for (int i = 0; i < B * C; i++)
        if (!close_enough(logits[i], ref.H[L][i], 1e-5, 1e-4))
            fail_msg("infer logit %d: %g, reference %g", i, (double)logits[i], ref.H[L][i]);

    struct mt_step_result r;
    assert_ok(t.rule->step(&t, x, y, B, &r, &err), err);
    assert_true(close_enough(r.loss, ref.loss, 1e-6, 1e-5));
    size_t P = model_param_count(d);
    int differs = 0;
    for (size_t i = 0; i < P; i++) {
        if (!close_enough(t.rs.grads[i], ref.G[i], 1e-6, 1e-4))
            fail_msg("eps %g kappa %g: gradient %zu is %g, reference %g", (double)eps,
                     (double)kappa, i, (double)t.rs.grads[i], ref.G[i]);
        if (!close_enough(ref.G[i], ref.G_true[i], 1e-6, 1e-4))
            differs++;
    }
    /* The comparison has teeth: ASA's weight gradients are not BP's. */
    assert_true(differs > 0);
    ref_free(&ref);
    free(theta);
    free(b0);
    free(b1);
    trainer_fini(&t);
}

static void test_step_gradients_equal_naive_reference(void **state)
{
    (void)state;
    check_step_matches_reference(0.01f, 100.0f);   /* the defaults */
    check_step_matches_reference(0.25f, 3.0f);     /* kappa != 1/eps: the gain is kappa eps */
}

/* Central difference of the ASA model's loss in parameter i, in double
 * through the reference forward (itself checked against `infer` above). A
 * float difference would need h ~ 1e-3, where the sign term's jumps (eps W
 * when a unit crosses zero) show up; in double h = 1e-6 sees none. */
static double fd_loss(const struct mt_model_desc *d, double *theta, size_t i, const float *x,
                      const uint8_t *y, int B, double h)
{
    struct ref r;
    double keep = theta[i], lp, lm;
    theta[i] = keep + h;
    ref_run(&r, d, theta, x, y, B, 0.01, 100.0);
    lp = r.loss;
    ref_free(&r);
    theta[i] = keep - h;
    ref_run(&r, d, theta, x, y, B, 0.01, 100.0);
    lm = r.loss;
    ref_free(&r);
    theta[i] = keep;
    return (lp - lm) / (2.0 * h);
}

static void test_bias_and_first_layer_gradients_are_exact(void **state)
{
    (void)state;
    enum { B = 4 };
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    odd_spec(&s, B, 0.01f, 100.0f);
    assert_ok(trainer_init(&t, &s, &err), err);
    const struct mt_model_desc *d = &t.net.d;
    int L = d->n_layers;
    float x[B * 32];
    uint8_t y[B];
    random_batch(x, y, B, d->width[0], d->width[L], 12);
    double *theta = params_double(&t.net);
    struct mt_step_result r;
    assert_ok(t.rule->step(&t, x, y, B, &r, &err), err);

    /* Every g_l = 1^T Delta_l is the exact gradient: so each Delta_l is. */
    for (int l = 1; l <= L; l++) {
        size_t off = model_layer_offset(d, l) + (size_t)d->width[l] * d->width[l - 1];
        for (int o = 0; o < d->width[l]; o++) {
            double fd = fd_loss(d, theta, off + o, x, y, B, 1e-6);
            double g = rule_grad_b(&t, l)[o];
            if (!close_enough(g, fd, 1e-6, 1e-3))
                fail_msg("layer %d bias %d: step gives %g, finite difference %g", l, o, g, fd);
        }
    }
    /* G_1 = Delta_1^T X is exact too (layer 1 has no sign term). */
    for (int i = 0; i < d->width[1] * d->width[0]; i++) {
        double fd = fd_loss(d, theta, model_layer_offset(d, 1) + i, x, y, B, 1e-6);
        double g = rule_grad_w(&t, 1)[i];
        if (!close_enough(g, fd, 1e-6, 1e-3))
            fail_msg("W_1[%d]: step gives %g, finite difference %g", i, g, fd);
    }
    /* Layer 2's weights are where ASA departs from the exact gradient. */
    int differs = 0;
    for (int i = 0; i < d->width[2] * d->width[1]; i++) {
        double fd = fd_loss(d, theta, model_layer_offset(d, 2) + i, x, y, B, 1e-6);
        differs += !close_enough(rule_grad_w(&t, 2)[i], fd, 1e-6, 1e-3);
    }
    assert_true(differs > 0);
    free(theta);
    trainer_fini(&t);
}

/* ------------------------------------------------------------ memory */

/* spec 5(b), section 9: sum_{l<L} ceil(B n_l / 8) + 4 B C, computed here
 * from the formula, not from the rule. */
static size_t formula_kept(const struct mt_model_desc *d, int B)
{
    size_t n = 0;
    for (int l = 1; l < d->n_layers; l++)
        n += ((size_t)B * d->width[l] + 7) / 8;
    return n + 4 * (size_t)B * d->width[d->n_layers];
}

static void test_plan_equals_measured_and_kept_equals_formula(void **state)
{
    (void)state;
    static const int depths[] = {0, 1, 2, 4}, batches[] = {1, 8, 33};
    for (size_t i = 0; i < sizeof depths / sizeof *depths; i++)
        for (size_t j = 0; j < sizeof batches / sizeof *batches; j++) {
            struct mt_spec s;
            struct mt_mem_stats st;
            struct mt_mem_plan plan;
            int B = batches[j];
            test_spec(&s, "asa", depths[i], 13, MT_ACT_RELU, B, 3 * B + 5);
            if (depths[i] >= 2)
                s.model.width[2] = 21;
            assert_plan_matches(&s, &st, &plan);
            if (st.peak[MT_MEM_ACTS] != formula_kept(&s.model, B))
                fail_msg("depth %d batch %d: kept %zu bytes, formula %zu", depths[i], B,
                         st.peak[MT_MEM_ACTS], formula_kept(&s.model, B));
        }
}

static void test_kept_is_under_a_25th_of_bp_on_4x2000(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_mem_plan asa, bp;
    struct mt_err err = {0};
    test_spec(&s, "asa", 4, 2000, MT_ACT_RELU, 100, 1000);
    s.model.width[0] = 784;
    s.model.width[5] = 10;
    assert_ok(spec_finish(&s, &err), err);
    rule_find("asa")->plan(&s, &asa);
    rule_find("bp")->plan(&s, &bp);
    assert_int_equal(asa.cat[MT_MEM_ACTS], formula_kept(&s.model, 100));
    assert_int_equal(asa.cat[MT_MEM_ACTS], 4 * 25000 + 4 * 100 * 10);
    double ratio = (double)asa.cat[MT_MEM_ACTS] / (double)bp.cat[MT_MEM_ACTS];
    print_message("784-2000x4-10, batch 100: kept asa %zu B, bp %zu B, ratio %.5f (1/%.1f)\n",
                  asa.cat[MT_MEM_ACTS], bp.cat[MT_MEM_ACTS], ratio, 1.0 / ratio);
    assert_true(ratio <= 1.0 / 25.0);
}

/* Failing each allocation in turn (setup, then a step) ends in a clean
 * error with nothing leaked and the step's transients released; a limit
 * at the plan trains and one byte below it does not. */
static void test_faults_end_clean(void **state)
{
    (void)state;
    struct mt_spec s;
    test_spec(&s, "asa", 3, 16, MT_ACT_RELU, 8, 8);
    /* L-1 bit buffers, the logits, the workspace */
    assert_true(assert_faults_end_clean(&s) >= 4);
}

/* ------------------------------------------------------------ learning indicator */

static void test_learning_indicator_is_the_spec_value(void **state)
{
    (void)state;
    enum { B = 6 };
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    struct mt_rule_metric m[MT_MAX_RULE_METRICS];
    odd_spec(&s, B, 0.01f, 100.0f);
    assert_ok(trainer_init(&t, &s, &err), err);
    const struct mt_model_desc *d = &t.net.d;
    int L = d->n_layers;
    float x[B * 32];
    uint8_t y[B];
    random_batch(x, y, B, d->width[0], d->width[L], 13);
    struct ref ref;
    double *theta = params_double(&t.net);
    ref_run(&ref, d, theta, x, y, B, 0.01, 100.0);
    free(theta);
    struct mt_step_result r;
    assert_ok(t.rule->step(&t, x, y, B, &r, &err), err);
    int n = t.rule->epoch_metrics(&t, m, MT_MAX_RULE_METRICS);
    assert_int_equal(n, L - 1);
    for (int l = 2; l <= L; l++) {
        char name[24];
        snprintf(name, sizeof name, "li.%d", l);
        assert_string_equal(m[l - 2].name, name);
        print_message("%s = %.6f (reference %.6f)\n", name, m[l - 2].value, ref.li[l]);
        assert_true(m[l - 2].value > 0 && m[l - 2].value < 1);
        assert_true(close_enough(m[l - 2].value, ref.li[l], 1e-9, 1e-5));
    }
    /* Reset at each epoch's end: nothing accumulated since. */
    assert_int_equal(t.rule->epoch_metrics(&t, m, MT_MAX_RULE_METRICS), 0);

    /* A case by hand: W_1 = 0, b_1 = -1 kills layer 1 (LI undefined, not
     * reported); W_2 = 0, b_2 = 1 makes H_2 = 1 everywhere, so
     * LI = 1 - n/(n (1 + eps)^2) for layer 3's input. */
    memset(t.net.W[1], 0, sizeof(float) * d->width[1] * d->width[0]);
    memset(t.net.W[2], 0, sizeof(float) * d->width[2] * d->width[1]);
    for (int o = 0; o < d->width[1]; o++)
        t.net.b[1][o] = -1.0f;
    for (int o = 0; o < d->width[2]; o++)
        t.net.b[2][o] = 1.0f;
    assert_ok(t.rule->step(&t, x, y, B, &r, &err), err);
    n = t.rule->epoch_metrics(&t, m, MT_MAX_RULE_METRICS);
    assert_true(n >= 1);
    assert_string_equal(m[0].name, "li.3");
    assert_true(close_enough(m[0].value, 1.0 - 1.0 / (1.01 * 1.01), 1e-7, 1e-5));
    ref_free(&ref);
    trainer_fini(&t);
}

static void test_epoch_reports_li_per_layer(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    struct mt_epoch_report rep;
    test_spec(&s, "asa", 3, 16, MT_ACT_RELU, 16, 100);
    assert_ok(trainer_init(&t, &s, &err), err);
    assert_ok(trainer_run_epoch(&t, NULL, NULL, &rep, &err), err);
    assert_int_equal(rep.n_metrics, 3);
    for (int i = 0; i < 3; i++) {
        char name[24];
        snprintf(name, sizeof name, "li.%d", i + 2);
        assert_string_equal(rep.metrics[i].name, name);
        assert_true(rep.metrics[i].value > 0 && rep.metrics[i].value < 1);
    }
    trainer_fini(&t);
}

/* ------------------------------------------------------------ settings */

static void test_defaults_are_the_authors(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_err err = {0};
    test_spec(&s, "asa", 2, 8, MT_ACT_RELU, 4, 20);
    assert_ok(spec_finish(&s, &err), err);
    assert_true(s.rule.epsilon == 0.01f);
    assert_true(s.rule.kappa == 1.0f / 0.01f);
    test_spec(&s, "asa", 2, 8, MT_ACT_RELU, 4, 20);
    s.rule.epsilon = 0.5f;
    assert_ok(spec_finish(&s, &err), err);
    assert_true(s.rule.kappa == 2.0f);
}

static void test_refuses_what_it_cannot_train(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    test_spec(&s, "asa", 3, 8, MT_ACT_RELU, 4, 20);
    s.model.act[2] = MT_ACT_TANH;
    assert_int_equal(trainer_init(&t, &s, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "hidden layer 2"));
    assert_non_null(strstr(err.msg, "tanh"));
    test_spec(&s, "asa", 3, 8, MT_ACT_RELU, 4, 20);
    s.rule.epsilon = -0.1f;
    assert_int_equal(trainer_init(&t, &s, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "epsilon"));
    test_spec(&s, "asa", 3, 8, MT_ACT_RELU, 4, 20);
    s.rule.kappa = 0.0f;
    assert_int_equal(trainer_init(&t, &s, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "kappa"));
}

/* ------------------------------------------------------------ learning */

static void test_learns_with_tiny_epsilon(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_trainer t;
    struct mt_err err = {0};
    struct mt_epoch_report first, r;
    test_spec(&s, "asa", 2, 64, MT_ACT_RELU, 32, 2000);
    s.epochs = 4;
    s.optim.kind = MT_OPT_ADAM;
    s.optim.lr = 1e-3f;
    s.rule.epsilon = 1e-4f;
    s.rule.kappa = 1e4f;
    assert_ok(trainer_init(&t, &s, &err), err);
    for (int e = 0; e < s.epochs; e++) {
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
        if (e == 0)
            first = r;
    }
    print_message("asa eps 1e-4: loss %.4f -> %.4f, train accuracy %.3f, test %.3f, li.2 %.2e\n",
                  first.loss, r.loss, r.train_accuracy, r.test_accuracy, r.metrics[0].value);
    assert_true(r.loss < first.loss);
    assert_true(r.train_accuracy > 0.9); /* 4 classes: chance is 0.25 */
    assert_true(r.test_accuracy > 0.8);
    trainer_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_gradients_equal_naive_reference),
        cmocka_unit_test(test_bias_and_first_layer_gradients_are_exact),
        cmocka_unit_test(test_plan_equals_measured_and_kept_equals_formula),
        cmocka_unit_test(test_kept_is_under_a_25th_of_bp_on_4x2000),
        cmocka_unit_test(test_faults_end_clean),
        cmocka_unit_test(test_learning_indicator_is_the_spec_value),
        cmocka_unit_test(test_epoch_reports_li_per_layer),
        cmocka_unit_test(test_defaults_are_the_authors),
        cmocka_unit_test(test_refuses_what_it_cannot_train),
        cmocka_unit_test(test_learns_with_tiny_epsilon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
