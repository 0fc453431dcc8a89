/* test-jobspec.c: struct mt_spec <-> protobuf JobSpec (daemon/bridge/jobspec.c).
 *
 * A spec must survive YAML -> mt_spec -> JobSpec -> bytes -> JobSpec ->
 * mt_spec unchanged, unset settings included (NAN and -1 stay unset, an
 * explicit 0 stays 0); a bad field from a client is MT_E_INVAL naming the
 * field; garbage bytes are an error, never a crash. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobspec.h"
#include "spec.h"

/* Every key set, some to 0 where 0 differs from "not given". */
static const char full_yaml[] =
    "name: round-trip\n"
    "dataset:\n"
    "  name: idx\n"
    "  dir: /data\n"
    "  train_images: /d/train-images\n"
    "  train_labels: /d/train-labels\n"
    "  test_images: /d/test-images\n"
    "  test_labels: /d/test-labels\n"
    "  normalize: none\n"
    "  train_limit: 1000\n"
    "  test_limit: 200\n"
    "  synthetic_train: 300\n"
    "  synthetic_test: 40\n"
    "  synthetic_seed: 0\n"
    "  augment: {crop: 3, flip: true}\n"
    "model:\n"
    "  input: 100\n"
    "  hidden:\n"
    "    - 64\n"
    "    - {width: 32, activation: tanh}\n"
    "    - {width: 16, activation: gelu}\n"
    "  activation: leaky_relu\n"
    "  classes: 7\n"
    "  init: xavier\n"
    "rule:\n"
    "  name: memdfa\n"
    "  feedback_init: kaiming\n"
    "  feedback_scale: 0.125\n"
    "optimizer:\n"
    "  name: sgd\n"
    "  lr: 3e-4\n"
    "  momentum: 0\n"
    "  nesterov: false\n"
    "  beta1: 0.85\n"
    "  beta2: 0.995\n"
    "  eps: 1e-7\n"
    "  weight_decay: 0\n"
    "schedule:\n"
    "  name: cosine\n"
    "  warmup_epochs: 0.5\n"
    "  step_epochs: 3\n"
    "  gamma: 0.25\n"
    "  min_lr: 1e-5\n"
    "batch: 32\n"
    "epochs: 9\n"
    "seed: 0\n"
    "threads: 3\n"
    "memory_limit: 3GiB\n"
    "checkpoint_every: 2\n"
    "keep_checkpoints: 1\n";

/* Only what is required: the optimizer and feedback stay unset. */
static const char small_yaml[] =
    "dataset: synthetic\n"
    "model: {input: 12, hidden: [8, 6], classes: 3}\n"
    "rule: dfa\n"
    "batch: 4\n"
    "epochs: 2\n";

static void parse_yaml(const char *yaml, struct mt_spec *s)
{
    struct mt_err err = {0};
    if (spec_parse_string(yaml, strlen(yaml), "spec.yaml", s, &err) != 0)
        fail_msg("%s", err.msg);
}

/* full_yaml plus every rule setting and norm layers. No one rule reads all
 * of them (spec_finish would refuse the mix), but the bridge carries any
 * combination: the fields are set here, past the YAML parser's rule check. */
static void full_spec(struct mt_spec *s)
{
    parse_yaml(full_yaml, s);
    s->rule.binary = 0;           /* an explicit false, not "unset" */
    s->rule.epsilon = 0.5f;
    s->rule.kappa = 2.0f;
    s->rule.recompute_inputs = 0; /* an explicit false */
    s->rule.groups = 3;
    s->rule.segments = 4;
    s->rule.samples = 1;
    s->model.norm[1] = MT_NK_BATCH;
    s->model.norm[2] = MT_NK_LAYER;
    s->model.norm[3] = MT_NK_NONE;
}

static int same_float(float a, float b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

#define ASSERT_SAME_FLOAT(a, b) \
    do { if (!same_float((a), (b))) fail_msg("%s: %g != %g", #a, (double)(a), (double)(b)); } \
    while (0)

static void assert_same_spec(const struct mt_spec *a, const struct mt_spec *b)
{
    assert_string_equal(a->name, b->name);

    const struct mt_data_spec *da = &a->data, *db = &b->data;
    assert_int_equal(da->kind, db->kind);
    assert_string_equal(da->dir, db->dir);
    assert_string_equal(da->train_images, db->train_images);
    assert_string_equal(da->train_labels, db->train_labels);
    assert_string_equal(da->test_images, db->test_images);
    assert_string_equal(da->test_labels, db->test_labels);
    assert_int_equal(da->normalize, db->normalize);
    assert_int_equal(da->train_limit, db->train_limit);
    assert_int_equal(da->test_limit, db->test_limit);
    assert_int_equal(da->synthetic_train, db->synthetic_train);
    assert_int_equal(da->synthetic_test, db->synthetic_test);
    assert_int_equal(da->synthetic_dim, db->synthetic_dim);
    assert_int_equal(da->synthetic_classes, db->synthetic_classes);
    assert_true(da->synthetic_seed == db->synthetic_seed);
    assert_int_equal(da->augment.crop, db->augment.crop);
    assert_int_equal(da->augment.flip, db->augment.flip);

    const struct mt_model_desc *ma = &a->model, *mb = &b->model;
    assert_int_equal(ma->n_layers, mb->n_layers);
    for (int l = 0; l <= ma->n_layers; l++)
        assert_int_equal(ma->width[l], mb->width[l]);
    for (int l = 1; l <= ma->n_layers; l++)
        assert_int_equal(ma->act[l], mb->act[l]);
    for (int l = 1; l < ma->n_layers; l++)
        assert_int_equal(ma->norm[l], mb->norm[l]);
    assert_int_equal(ma->init, mb->init);

    assert_string_equal(a->rule.name, b->rule.name);
    assert_int_equal(a->rule.feedback_init, b->rule.feedback_init);
    ASSERT_SAME_FLOAT(a->rule.feedback_scale, b->rule.feedback_scale);
    assert_int_equal(a->rule.binary, b->rule.binary);
    ASSERT_SAME_FLOAT(a->rule.epsilon, b->rule.epsilon);
    ASSERT_SAME_FLOAT(a->rule.kappa, b->rule.kappa);
    assert_int_equal(a->rule.recompute_inputs, b->rule.recompute_inputs);
    assert_int_equal(a->rule.groups, b->rule.groups);
    assert_int_equal(a->rule.segments, b->rule.segments);
    assert_int_equal(a->rule.samples, b->rule.samples);

    const struct mt_optim_spec *oa = &a->optim, *ob = &b->optim;
    assert_int_equal(oa->kind, ob->kind);
    ASSERT_SAME_FLOAT(oa->lr, ob->lr);
    ASSERT_SAME_FLOAT(oa->momentum, ob->momentum);
    assert_int_equal(oa->nesterov, ob->nesterov);
    ASSERT_SAME_FLOAT(oa->beta1, ob->beta1);
    ASSERT_SAME_FLOAT(oa->beta2, ob->beta2);
    ASSERT_SAME_FLOAT(oa->eps, ob->eps);
    ASSERT_SAME_FLOAT(oa->weight_decay, ob->weight_decay);

    assert_int_equal(a->sched.kind, b->sched.kind);
    ASSERT_SAME_FLOAT(a->sched.warmup_epochs, b->sched.warmup_epochs);
    assert_int_equal(a->sched.step_epochs, b->sched.step_epochs);
    ASSERT_SAME_FLOAT(a->sched.gamma, b->sched.gamma);
    ASSERT_SAME_FLOAT(a->sched.min_lr, b->sched.min_lr);

    assert_int_equal(a->batch, b->batch);
    assert_int_equal(a->epochs, b->epochs);
    assert_true(a->seed == b->seed);
    assert_int_equal(a->threads, b->threads);
    assert_true(a->memory_limit == b->memory_limit);
    assert_int_equal(a->checkpoint_every, b->checkpoint_every);
    assert_int_equal(a->keep_checkpoints, b->keep_checkpoints);
}

/* mt_spec -> JobSpec -> bytes -> JobSpec -> mt_spec, step by step. */
static void round_trip(const struct mt_spec *in, struct mt_spec *out)
{
    struct mt_err err = {0};
    Memtrain__JobSpec *js = NULL;
    assert_int_equal(jobspec_from_spec(in, &js, &err), 0);
    size_t len = memtrain__job_spec__get_packed_size(js);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(memtrain__job_spec__pack(js, buf), len);
    jobspec_free(js);
    Memtrain__JobSpec *back = memtrain__job_spec__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(back);
    int rc = jobspec_to_spec(back, out, &err);
    memtrain__job_spec__free_unpacked(back, NULL);
    if (rc)
        fail_msg("%s", err.msg);
}

static void test_roundtrip_full_spec(void **state)
{
    (void)state;
    struct mt_spec in, out;
    full_spec(&in);
    round_trip(&in, &out);
    assert_same_spec(&in, &out);
    assert_int_equal(out.rule.binary, 0);
    assert_true(out.rule.epsilon == 0.5f && out.rule.kappa == 2.0f);
    assert_int_equal(out.rule.recompute_inputs, 0);
    assert_int_equal(out.rule.groups, 3);
    assert_int_equal(out.rule.segments, 4);
    assert_int_equal(out.rule.samples, 1);
    assert_int_equal(out.model.norm[1], MT_NK_BATCH);
    assert_int_equal(out.model.norm[2], MT_NK_LAYER);
    assert_int_equal(out.model.norm[3], MT_NK_NONE);
    /* binary true too */
    in.rule.binary = 1;
    round_trip(&in, &out);
    assert_int_equal(out.rule.binary, 1);
    in.rule.binary = 0;
    /* explicit zeros stay zeros, not "unset" */
    assert_true(out.optim.momentum == 0.0f && out.optim.weight_decay == 0.0f);
    assert_int_equal(out.optim.nesterov, 0);
    assert_true(out.seed == 0 && out.data.synthetic_seed == 0);
    assert_int_equal(out.model.act[1], MT_ACT_LEAKY_RELU);
    assert_int_equal(out.model.act[2], MT_ACT_TANH);

    /* the same through jobspec_pack / jobspec_unpack */
    struct mt_err err = {0};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(jobspec_pack(&in, &buf, &len, &err), 0);
    assert_true(len > 0);
    memset(&out, 0xa5, sizeof out);
    assert_int_equal(jobspec_unpack(buf, len, &out, &err), 0);
    free(buf);
    assert_same_spec(&in, &out);
}

/* A layer list travels whole: input shape, every kind and setting. */
/* dataset.augment crosses as AugmentSpec, each half alone too; a JobSpec
 * without one (an older client) means off, and a crop past INT_MAX is
 * refused, not wrapped. */
static void test_roundtrip_keeps_augment(void **state)
{
    (void)state;
    static const struct mt_augment cases[] = {{3, 1}, {2, 0}, {0, 1}, {0, 0}};
    struct mt_spec in, out;
    struct mt_err err = {0};
    parse_yaml(small_yaml, &in);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        in.data.augment = cases[i];
        round_trip(&in, &out);
        assert_int_equal(out.data.augment.crop, cases[i].crop);
        assert_int_equal(out.data.augment.flip, cases[i].flip);
    }
    parse_yaml(full_yaml, &in);
    assert_int_equal(in.data.augment.crop, 3);
    assert_int_equal(in.data.augment.flip, 1);
    Memtrain__JobSpec *js = NULL;
    assert_int_equal(jobspec_from_spec(&in, &js, &err), 0);
    assert_non_null(js->dataset->augment);
    assert_int_equal(js->dataset->augment->crop, 3);
    assert_true(js->dataset->augment->flip);
    js->dataset->augment = NULL;
    assert_int_equal(jobspec_to_spec(js, &out, &err), 0);
    assert_int_equal(out.data.augment.crop, 0);
    assert_int_equal(out.data.augment.flip, 0);
    Memtrain__AugmentSpec big = MEMTRAIN__AUGMENT_SPEC__INIT;
    big.crop = 0x80000000u;
    js->dataset->augment = &big;
    assert_int_not_equal(jobspec_to_spec(js, &out, &err), 0);
    assert_non_null(strstr(err.msg, "dataset.augment.crop"));
    jobspec_free(js);
}

static void test_roundtrip_layer_list(void **state)
{
    (void)state;
    static const char yaml[] =
        "dataset: {name: synthetic, synthetic_train: 64, synthetic_test: 16}\n"
        "batch: 8\nepochs: 1\n"
        "model:\n  input: [3, 8, 6]\n  classes: 5\n  layers:\n"
        "    - conv: {channels: 4, kernel: [3, 2], stride: 2, padding: 1, bias: false}\n"
        "    - {act: gelu}\n    - maxpool: 2\n    - {avgpool: {kernel: 1, stride: 1}}\n"
        "    - residual: {channels: 6, stride: 1, activation: silu}\n    - batchnorm\n"
        "    - globalavgpool\n    - flatten\n    - layernorm\n    - dense: 5\n";
    struct mt_spec in, out;
    struct mt_err err = {0};
    spec_init(&in);
    if (spec_parse_string(yaml, sizeof yaml - 1, "t.yaml", &in, &err))
        fail_msg("%s", err.msg);
    round_trip(&in, &out);
    assert_same_spec(&in, &out);
    assert_int_equal(out.model.n_spec, 10);
    assert_int_equal(out.model.input.c, 3);
    assert_int_equal(out.model.input.h, 8);
    assert_int_equal(out.model.input.w, 6);
    assert_int_equal(out.model.width[0], 144);
    for (int i = 0; i < in.model.n_spec; i++)
        assert_memory_equal(&in.model.spec_layer[i], &out.model.spec_layer[i],
                            sizeof in.model.spec_layer[i]);
    assert_int_equal(out.model.spec_layer[0].kh, 3);
    assert_int_equal(out.model.spec_layer[0].kw, 2);
    assert_int_equal(out.model.spec_layer[0].bias, 0);
    assert_int_equal(out.model.spec_layer[2].stride, 2);
    assert_int_equal(out.model.spec_layer[4].act, MT_ACT_SILU);
}

static void test_roundtrip_keeps_unset(void **state)
{
    (void)state;
    struct mt_spec in, out;
    struct mt_err err = {0};
    parse_yaml(small_yaml, &in);
    assert_true(isnan(in.optim.lr));

    Memtrain__JobSpec *js = NULL;
    assert_int_equal(jobspec_from_spec(&in, &js, &err), 0);
    assert_int_equal(js->optimizer->opt_lr_case, MEMTRAIN__OPTIMIZER_SPEC__OPT_LR__NOT_SET);
    assert_int_equal(js->optimizer->opt_nesterov_case,
                     MEMTRAIN__OPTIMIZER_SPEC__OPT_NESTEROV__NOT_SET);
    assert_int_equal(js->rule->opt_feedback_scale_case,
                     MEMTRAIN__RULE_SPEC__OPT_FEEDBACK_SCALE__NOT_SET);
    assert_string_equal(js->optimizer->name, "");
    assert_string_equal(js->rule->feedback_init, "");
    assert_int_equal(js->rule->opt_binary_case, MEMTRAIN__RULE_SPEC__OPT_BINARY__NOT_SET);
    assert_int_equal(js->rule->opt_epsilon_case, MEMTRAIN__RULE_SPEC__OPT_EPSILON__NOT_SET);
    assert_int_equal(js->rule->opt_kappa_case, MEMTRAIN__RULE_SPEC__OPT_KAPPA__NOT_SET);
    assert_int_equal(js->rule->opt_groups_case, MEMTRAIN__RULE_SPEC__OPT_GROUPS__NOT_SET);
    assert_int_equal(js->rule->opt_segments_case, MEMTRAIN__RULE_SPEC__OPT_SEGMENTS__NOT_SET);
    assert_int_equal(js->rule->opt_samples_case, MEMTRAIN__RULE_SPEC__OPT_SAMPLES__NOT_SET);
    assert_string_equal(js->model->norm, "");
    assert_string_equal(js->model->hidden[0]->norm, "");
    assert_string_equal(js->model->hidden[1]->norm, "");
    jobspec_free(js);

    round_trip(&in, &out);
    assert_same_spec(&in, &out);
    assert_int_equal(out.optim.kind, MT_OPT_DEFAULT);
    assert_true(isnan(out.optim.lr) && isnan(out.optim.momentum) && isnan(out.optim.beta1)
                && isnan(out.optim.beta2) && isnan(out.optim.eps)
                && isnan(out.optim.weight_decay));
    assert_int_equal(out.optim.nesterov, -1);
    assert_int_equal(out.rule.feedback_init, MT_FB_DEFAULT);
    assert_true(isnan(out.rule.feedback_scale));
    assert_int_equal(out.rule.binary, -1);
    assert_true(isnan(out.rule.epsilon) && isnan(out.rule.kappa));
    assert_true(out.rule.groups == -1 && out.rule.segments == -1 && out.rule.samples == -1);
    assert_true(out.model.norm[1] == MT_NK_NONE && out.model.norm[2] == MT_NK_NONE);
}

static void test_roundtrip_after_finish(void **state)
{
    (void)state;
    struct mt_spec in, out;
    struct mt_err err = {0};
    parse_yaml(small_yaml, &in);
    assert_int_equal(spec_finish(&in, &err), 0);
    round_trip(&in, &out);
    /* the synthetic set's sizes are derived, not carried */
    assert_int_equal(out.data.synthetic_dim, 0);
    assert_int_equal(spec_finish(&out, &err), 0);
    assert_same_spec(&in, &out);
    assert_int_equal(out.data.synthetic_dim, 12);
    assert_int_equal(out.data.synthetic_classes, 3);
    assert_false(isnan(out.optim.lr));
}

static void test_message_fields(void **state)
{
    (void)state;
    struct mt_spec in;
    struct mt_err err = {0};
    full_spec(&in);
    Memtrain__JobSpec *js = NULL;
    assert_int_equal(jobspec_from_spec(&in, &js, &err), 0);
    assert_string_equal(js->name, "round-trip");
    assert_string_equal(js->dataset->name, "idx");
    assert_string_equal(js->dataset->normalize, "none");
    assert_int_equal(js->model->input, 100);
    assert_int_equal(js->model->n_hidden, 3);
    assert_int_equal(js->model->hidden[0]->width, 64);
    assert_string_equal(js->model->hidden[0]->activation, "leaky_relu");
    assert_string_equal(js->model->hidden[2]->activation, "gelu");
    assert_int_equal(js->model->classes, 7);
    assert_string_equal(js->model->init, "xavier");
    assert_string_equal(js->rule->name, "memdfa");
    assert_string_equal(js->rule->feedback_init, "kaiming");
    assert_int_equal(js->rule->opt_binary_case, MEMTRAIN__RULE_SPEC__OPT_BINARY_BINARY);
    assert_false(js->rule->binary);
    assert_int_equal(js->rule->opt_epsilon_case, MEMTRAIN__RULE_SPEC__OPT_EPSILON_EPSILON);
    assert_true(js->rule->epsilon == 0.5f);
    assert_int_equal(js->rule->opt_kappa_case, MEMTRAIN__RULE_SPEC__OPT_KAPPA_KAPPA);
    assert_true(js->rule->kappa == 2.0f);
    assert_int_equal(js->rule->opt_groups_case, MEMTRAIN__RULE_SPEC__OPT_GROUPS_GROUPS);
    assert_int_equal(js->rule->groups, 3);
    assert_int_equal(js->rule->opt_segments_case, MEMTRAIN__RULE_SPEC__OPT_SEGMENTS_SEGMENTS);
    assert_int_equal(js->rule->segments, 4);
    assert_int_equal(js->rule->opt_samples_case, MEMTRAIN__RULE_SPEC__OPT_SAMPLES_SAMPLES);
    assert_int_equal(js->rule->samples, 1);
    assert_string_equal(js->model->hidden[0]->norm, "batchnorm");
    assert_string_equal(js->model->hidden[1]->norm, "layernorm");
    assert_string_equal(js->model->hidden[2]->norm, "");       /* none */
    assert_string_equal(js->model->norm, "");                  /* per layer, always */
    assert_string_equal(js->optimizer->name, "sgd");
    assert_int_equal(js->optimizer->opt_momentum_case,
                     MEMTRAIN__OPTIMIZER_SPEC__OPT_MOMENTUM_MOMENTUM);
    assert_true(js->optimizer->momentum == 0.0f);
    assert_string_equal(js->schedule->name, "cosine");
    assert_int_equal(js->batch, 32);
    assert_true(js->memory_limit == 3ull << 30);
    assert_int_equal(js->keep_checkpoints, 1);
    jobspec_free(js);
    jobspec_free(NULL);

    /* a spec that cannot be expressed */
    struct mt_spec bad = in;
    bad.model.n_layers = 0;
    assert_int_equal(jobspec_from_spec(&bad, &js, &err), MT_E_INVAL);
    bad = in;
    bad.model.act[2] = (enum mt_act)MT_ACT_N;
    assert_int_equal(jobspec_from_spec(&bad, &js, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "JobSpec: model.hidden: invalid layer 2");
    bad = in;
    bad.model.norm[3] = (enum mt_normkind)MT_NK_N;
    assert_int_equal(jobspec_from_spec(&bad, &js, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "JobSpec: model.hidden: invalid layer 3");
    bad = in;
    bad.rule.binary = 2;
    assert_int_equal(jobspec_from_spec(&bad, &js, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "JobSpec: rule.binary: invalid value 2");
    bad = in;
    bad.rule.segments = -3;
    assert_int_equal(jobspec_from_spec(&bad, &js, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "JobSpec: rule.segments: expected a positive integer, got -3");
}

/* Every row of the spec's field registry names a JobSpec field of a fitting
 * type, so the table-driven mapping copies every setting. */
static void test_registry_matches_proto(void **state)
{
    (void)state;
    struct mt_err err = {0};
    if (jobspec_check_registry(&err) != 0)
        fail_msg("%s", err.msg);
}

/* Absent parts of a client's JobSpec take the same defaults as a YAML file. */
static void test_to_spec_applies_defaults(void **state)
{
    (void)state;
    struct mt_spec in, out;
    struct mt_err err = {0};
    full_spec(&in);
    Memtrain__JobSpec *js = NULL;
    assert_int_equal(jobspec_from_spec(&in, &js, &err), 0);
    js->model->norm = (char *)"layernorm";
    js->model->hidden[0]->norm = (char *)"";       /* takes the model's */
    js->model->hidden[1]->norm = (char *)"none";   /* its own */
    js->model->hidden[2]->norm = (char *)"batchnorm";
    js->model->activation = (char *)"sigmoid";
    js->model->hidden[0]->activation = (char *)"";
    js->model->init = (char *)"";
    js->rule = NULL;
    js->optimizer = NULL;
    js->schedule->name = (char *)"";
    js->schedule->opt_gamma_case = MEMTRAIN__SCHEDULE_SPEC__OPT_GAMMA__NOT_SET;
    js->opt_seed_case = MEMTRAIN__JOB_SPEC__OPT_SEED__NOT_SET;
    js->opt_keep_checkpoints_case = MEMTRAIN__JOB_SPEC__OPT_KEEP_CHECKPOINTS__NOT_SET;
    js->dataset->opt_synthetic_train_case = MEMTRAIN__DATASET_SPEC__OPT_SYNTHETIC_TRAIN__NOT_SET;
    js->name = (char *)"";
    assert_int_equal(jobspec_to_spec(js, &out, &err), 0);
    jobspec_free(js);

    struct mt_spec def;
    spec_init(&def);
    assert_string_equal(out.name, def.name);
    assert_int_equal(out.model.act[1], MT_ACT_SIGMOID);   /* the model's default */
    assert_int_equal(out.model.act[2], MT_ACT_TANH);      /* its own */
    assert_int_equal(out.model.init, MT_INIT_KAIMING);
    assert_int_equal(out.model.norm[1], MT_NK_LAYER);
    assert_int_equal(out.model.norm[2], MT_NK_NONE);
    assert_int_equal(out.model.norm[3], MT_NK_BATCH);
    assert_string_equal(out.rule.name, "bp");
    assert_int_equal(out.rule.feedback_init, MT_FB_DEFAULT);
    assert_true(isnan(out.rule.feedback_scale));
    assert_true(out.rule.binary == -1 && isnan(out.rule.epsilon) && out.rule.samples == -1);
    assert_int_equal(out.optim.kind, MT_OPT_DEFAULT);
    assert_true(isnan(out.optim.lr));
    assert_int_equal(out.optim.nesterov, -1);
    assert_int_equal(out.sched.kind, MT_SCHED_CONSTANT);
    assert_true(out.sched.gamma == def.sched.gamma);
    assert_true(out.sched.min_lr == in.sched.min_lr);      /* still given */
    assert_true(out.seed == def.seed);
    assert_int_equal(out.keep_checkpoints, def.keep_checkpoints);
    assert_int_equal(out.data.synthetic_train, def.data.synthetic_train);
    assert_int_equal(out.data.synthetic_test, 40);
}

/* Build a valid message, break one field, expect this message. */
typedef void (*breaker)(Memtrain__JobSpec *js);

static void expect_to_spec_error(breaker brk, const char *msg)
{
    struct mt_spec in, out, before;
    struct mt_err err = {0};
    full_spec(&in);
    Memtrain__JobSpec *js = NULL;
    assert_int_equal(jobspec_from_spec(&in, &js, &err), 0);
    brk(js);
    parse_yaml(small_yaml, &out);
    before = out;
    int rc = jobspec_to_spec(js, &out, &err);
    jobspec_free(js);
    if (rc == 0)
        fail_msg("accepted, expected: %s", msg);
    assert_int_equal(rc, MT_E_INVAL);
    assert_int_equal(err.code, MT_E_INVAL);
    assert_string_equal(err.msg, msg);
    assert_int_equal(memcmp(&out, &before, sizeof out), 0);   /* untouched */
}

static char long_name[200];
static char bad_dir[] = "/data\nrm";

static void zero_width(Memtrain__JobSpec *js) { js->model->hidden[1]->width = 0; }
static void bad_act(Memtrain__JobSpec *js) { js->model->hidden[0]->activation = (char *)"swish"; }
static void zero_batch(Memtrain__JobSpec *js) { js->batch = 0; }
static void huge_epochs(Memtrain__JobSpec *js) { js->epochs = 3000000000u; }
static void nan_lr(Memtrain__JobSpec *js) { js->optimizer->lr = NAN; }
static void unit_momentum(Memtrain__JobSpec *js) { js->optimizer->momentum = 1.0f; }
static void bad_rule(Memtrain__JobSpec *js) { js->rule->name = (char *)"hebbian"; }
static void no_dataset(Memtrain__JobSpec *js) { js->dataset = NULL; }
static void bad_kind(Memtrain__JobSpec *js) { js->dataset->name = (char *)"imagenet"; }
static void too_long(Memtrain__JobSpec *js) { js->name = long_name; }
static void control_dir(Memtrain__JobSpec *js) { js->dataset->dir = bad_dir; }
static void many_layers(Memtrain__JobSpec *js) { js->model->n_hidden = MT_MAX_LAYERS; }
static void no_model(Memtrain__JobSpec *js) { js->model = NULL; }
static void zero_step(Memtrain__JobSpec *js) { js->schedule->step_epochs = 0; }
static void zero_keep(Memtrain__JobSpec *js) { js->keep_checkpoints = 0; }
static void bad_fb(Memtrain__JobSpec *js) { js->rule->feedback_init = (char *)"orthogonal"; }
static void neg_scale(Memtrain__JobSpec *js) { js->rule->feedback_scale = -0.5f; }
static void bad_norm(Memtrain__JobSpec *js) { js->model->hidden[1]->norm = (char *)"groupnorm"; }
static void bad_model_norm(Memtrain__JobSpec *js) { js->model->norm = (char *)"LayerNorm"; }
static void zero_epsilon(Memtrain__JobSpec *js) { js->rule->epsilon = 0.0f; }
static void nan_kappa(Memtrain__JobSpec *js) { js->rule->kappa = NAN; }
static void zero_groups(Memtrain__JobSpec *js) { js->rule->groups = 0; }
static void zero_segments(Memtrain__JobSpec *js) { js->rule->segments = 0; }
static void huge_samples(Memtrain__JobSpec *js) { js->rule->samples = 3000000000u; }

static void test_to_spec_rejects_bad_fields(void **state)
{
    (void)state;
    memset(long_name, 'x', sizeof long_name - 1);
    expect_to_spec_error(zero_width,
                         "JobSpec: model.hidden[1].width: expected a positive integer, got 0");
    expect_to_spec_error(bad_act, "JobSpec: model.hidden[0].activation: unknown value 'swish' "
                         "(expected one of: relu, leaky_relu, tanh, sigmoid, gelu, identity, silu)");
    expect_to_spec_error(zero_batch, "JobSpec: batch: expected a positive integer, got 0");
    expect_to_spec_error(huge_epochs,
                         "JobSpec: epochs: expected a positive integer, got 3000000000");
    expect_to_spec_error(nan_lr, "JobSpec: optimizer.lr: expected a positive number, got nan");
    expect_to_spec_error(unit_momentum,
                         "JobSpec: optimizer.momentum: expected a number in [0, 1), got 1");
    expect_to_spec_error(bad_rule, "JobSpec: rule.name: unknown rule 'hebbian'");
    expect_to_spec_error(no_dataset, "JobSpec: dataset.name: missing");
    expect_to_spec_error(bad_kind, "JobSpec: dataset.name: unknown value 'imagenet' (expected "
                         "one of: mnist, fashion-mnist, cifar10, idx, synthetic)");
    expect_to_spec_error(too_long, "JobSpec: name: too long (199 bytes, at most 127)");
    expect_to_spec_error(control_dir, "JobSpec: dataset.dir: contains a control character");
    expect_to_spec_error(many_layers, "JobSpec: model.hidden: more than 63 hidden layers");
    expect_to_spec_error(no_model, "JobSpec: model: missing");
    expect_to_spec_error(zero_step,
                         "JobSpec: schedule.step_epochs: expected a positive integer, got 0");
    expect_to_spec_error(zero_keep,
                         "JobSpec: keep_checkpoints: expected a positive integer, got 0");
    expect_to_spec_error(bad_fb, "JobSpec: rule.feedback_init: unknown value 'orthogonal' "
                         "(expected one of: uniform, normal, kaiming)");
    expect_to_spec_error(neg_scale,
                         "JobSpec: rule.feedback_scale: expected a positive number, got -0.5");
    expect_to_spec_error(bad_norm, "JobSpec: model.hidden[1].norm: unknown value 'groupnorm' "
                         "(expected one of: batchnorm, layernorm, none)");
    expect_to_spec_error(bad_model_norm, "JobSpec: model.norm: unknown value 'LayerNorm' "
                         "(expected one of: batchnorm, layernorm, none)");
    expect_to_spec_error(zero_epsilon,
                         "JobSpec: rule.epsilon: expected a positive number, got 0");
    expect_to_spec_error(nan_kappa, "JobSpec: rule.kappa: expected a positive number, got nan");
    expect_to_spec_error(zero_groups,
                         "JobSpec: rule.groups: expected a positive integer, got 0");
    expect_to_spec_error(zero_segments,
                         "JobSpec: rule.segments: expected a positive integer, got 0");
    expect_to_spec_error(huge_samples,
                         "JobSpec: rule.samples: expected a positive integer, got 3000000000");
}

/* The bridge carries any setting; spec_finish then refuses one the rule
 * does not read, as it does for a YAML file. */
static void test_finish_refuses_unread_setting(void **state)
{
    (void)state;
    struct mt_spec in, out;
    struct mt_err err = {0};
    parse_yaml(full_yaml, &in);
    snprintf(in.rule.name, sizeof in.rule.name, "fa");   /* never reads epsilon */
    in.rule.epsilon = 0.25f;
    round_trip(&in, &out);
    assert_true(out.rule.epsilon == 0.25f);
    assert_int_equal(spec_finish(&out, &err), MT_E_INVAL);
    const char *want = "rule.epsilon: rule 'fa' does not take this setting (";
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("'%s' does not start with '%s'", err.msg, want);

    parse_yaml(full_yaml, &in);
    snprintf(in.rule.name, sizeof in.rule.name, "dfa");  /* never trains norm layers */
    in.model.norm[2] = MT_NK_LAYER;
    round_trip(&in, &out);
    assert_int_equal(spec_finish(&out, &err), MT_E_INVAL);
    want = "model.hidden[1].norm: rule 'dfa' does not support norm layers (";
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("'%s' does not start with '%s'", err.msg, want);
}

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void check_unpack(const uint8_t *buf, size_t len)
{
    struct mt_spec s;
    struct mt_err err = {0};
    int rc = jobspec_unpack(buf, len, &s, &err);
    if (rc == 0) {
        rc = spec_finish(&s, &err);
        assert_true(rc == 0 || rc == MT_E_INVAL);
        return;
    }
    assert_int_equal(rc, MT_E_INVAL);
    assert_int_equal(strncmp(err.msg, "JobSpec: ", 9), 0);
}

static void test_garbage_bytes_rejected(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_err err = {0};
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(jobspec_unpack(junk, sizeof junk, &s, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "JobSpec: malformed protobuf (10 bytes)");
    /* a string field claiming more bytes than there are */
    static const uint8_t short_string[] = {0x0a, 0x40, 'a', 'b'};
    assert_int_equal(jobspec_unpack(short_string, sizeof short_string, &s, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "JobSpec: malformed protobuf (4 bytes)");
    /* an empty message is well-formed but has no dataset */
    assert_int_equal(jobspec_unpack((const uint8_t *)"", 0, &s, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "JobSpec: dataset.name: missing");
    assert_int_equal(jobspec_unpack(NULL, 3, &s, &err), MT_E_INVAL);

    uint8_t buf[600];
    rng_state = 0x2545f4914f6cdd1dull;
    for (int i = 0; i < 1000; i++) {
        size_t len = rnd() % sizeof buf;
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)rnd();
        check_unpack(buf, len);
    }

    /* valid bytes with a few bytes changed, cut or both */
    struct mt_spec in;
    uint8_t *good = NULL;
    size_t good_len = 0;
    full_spec(&in);
    assert_int_equal(jobspec_pack(&in, &good, &good_len, &err), 0);
    assert_true(good_len < sizeof buf);
    for (int i = 0; i < 2000; i++) {
        size_t len = good_len;
        memcpy(buf, good, len);
        for (int e = 1 + (int)(rnd() % 4); e > 0; e--)
            buf[rnd() % len] = (uint8_t)rnd();
        if (rnd() % 3 == 0)
            len = rnd() % (len + 1);
        check_unpack(buf, len);
    }
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_full_spec),
        cmocka_unit_test(test_roundtrip_keeps_unset),
        cmocka_unit_test(test_roundtrip_layer_list),
        cmocka_unit_test(test_roundtrip_keeps_augment),
        cmocka_unit_test(test_roundtrip_after_finish),
        cmocka_unit_test(test_message_fields),
        cmocka_unit_test(test_registry_matches_proto),
        cmocka_unit_test(test_to_spec_applies_defaults),
        cmocka_unit_test(test_to_spec_rejects_bad_fields),
        cmocka_unit_test(test_finish_refuses_unread_setting),
        cmocka_unit_test(test_garbage_bytes_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
