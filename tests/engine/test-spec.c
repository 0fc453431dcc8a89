/* test-spec.c: the YAML job spec parser (daemon/engine/spec.c).
 *
 * A full spec must come out as exact struct values; each kind of mistake
 * must give MT_E_INVAL with a message naming the file, the line and the key
 * path; and no input, however broken, may crash the parser (it will read
 * spec text from clients). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rules/rules.h"
#include "spec.h"
#include "specfield.h"

#define FILE_NAME "spec.yaml"

static const char full_yaml[] =
    "name: full-test\n"                          /* 1 */
    "dataset:\n"                                 /* 2 */
    "  name: idx\n"                              /* 3 */
    "  dir: /data\n"                             /* 4 */
    "  train_images: /d/train-images\n"          /* 5 */
    "  train_labels: /d/train-labels\n"          /* 6 */
    "  test_images: /d/test-images\n"            /* 7 */
    "  test_labels: /d/test-labels\n"            /* 8 */
    "  normalize: scale\n"                       /* 9 */
    "  train_limit: 1000\n"                      /* 10 */
    "  test_limit: 200\n"                        /* 11 */
    "  synthetic_train: 300\n"                   /* 12 */
    "  synthetic_test: 40\n"                     /* 13 */
    "  synthetic_seed: 77\n"                     /* 14 */
    "model:\n"                                   /* 15 */
    "  input: 784\n"                             /* 16 */
    "  hidden:\n"                                /* 17 */
    "    - 2000\n"                               /* 18 */
    "    - {width: 1000, activation: tanh}\n"    /* 19 */
    "    - width: 30\n"                          /* 20 */
    "    - 7\n"                                  /* 21 */
    "  activation: gelu\n"                       /* 22 */
    "  classes: 12\n"                            /* 23 */
    "  init: xavier\n"                           /* 24 */
    "rule:\n"                                    /* 25 */
    "  name: dfa\n"                              /* 26 */
    "  feedback_init: normal\n"                  /* 27 */
    "  feedback_scale: 0.02\n"                   /* 28 */
    "optimizer:\n"                               /* 29 */
    "  name: sgd\n"                              /* 30 */
    "  lr: 1e-4\n"                               /* 31 */
    "  momentum: 0.9\n"                          /* 32 */
    "  nesterov: true\n"                         /* 33 */
    "  beta1: 0.8\n"                             /* 34 */
    "  beta2: 0.99\n"                            /* 35 */
    "  eps: 1e-6\n"                              /* 36 */
    "  weight_decay: 5e-4\n"                     /* 37 */
    "schedule:\n"                                /* 38 */
    "  name: step\n"                             /* 39 */
    "  warmup_epochs: 1.5\n"                     /* 40 */
    "  step_epochs: 4\n"                         /* 41 */
    "  gamma: 0.5\n"                             /* 42 */
    "  min_lr: 1e-6\n"                           /* 43 */
    "batch: 100\n"                               /* 44 */
    "epochs: 20\n"                               /* 45 */
    "seed: 18446744073709551615\n"               /* 46 */
    "threads: 2\n"                               /* 47 */
    "memory_limit: 512MiB\n"                     /* 48 */
    "checkpoint_every: 5\n"                      /* 49 */
    "keep_checkpoints: 4\n";                     /* 50 */

/* A small valid spec the error cases edit; line numbers as commented. */
static const char small_yaml[] =
    "dataset: mnist\n"                           /* 1 */
    "model:\n"                                   /* 2 */
    "  hidden: [64, 32]\n"                       /* 3 */
    "batch: 10\n"                                /* 4 */
    "epochs: 2\n";                               /* 5 */

static int parse(const char *yaml, struct mt_spec *s, struct mt_err *err)
{
    memset(err, 0, sizeof *err);
    return spec_parse_string(yaml, strlen(yaml), FILE_NAME, s, err);
}

/* Parse must fail with MT_E_INVAL and exactly this message. */
static void expect_error(const char *yaml, const char *msg)
{
    struct mt_spec s;
    struct mt_err err;
    int rc = parse(yaml, &s, &err);
    if (rc == 0)
        fail_msg("parsed, expected: %s", msg);
    assert_int_equal(rc, MT_E_INVAL);
    assert_int_equal(err.code, MT_E_INVAL);
    assert_string_equal(err.msg, msg);
}

/* Parse must fail with MT_E_INVAL and a message starting with `prefix`. */
static void expect_error_prefix(const char *yaml, const char *prefix)
{
    struct mt_spec s;
    struct mt_err err;
    int rc = parse(yaml, &s, &err);
    assert_int_equal(rc, MT_E_INVAL);
    if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
        fail_msg("message '%s' does not start with '%s'", err.msg, prefix);
}

static int same_float(float a, float b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

/* ------------------------------------------------------------------------ */

static void test_full_spec_parses_exact_values(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_err err;
    assert_int_equal(parse(full_yaml, &s, &err), 0);

    assert_string_equal(s.name, "full-test");
    assert_int_equal(s.data.kind, MT_DATA_IDX);
    assert_string_equal(s.data.dir, "/data");
    assert_string_equal(s.data.train_images, "/d/train-images");
    assert_string_equal(s.data.train_labels, "/d/train-labels");
    assert_string_equal(s.data.test_images, "/d/test-images");
    assert_string_equal(s.data.test_labels, "/d/test-labels");
    assert_int_equal(s.data.normalize, MT_NORM_SCALE);
    assert_int_equal(s.data.train_limit, 1000);
    assert_int_equal(s.data.test_limit, 200);
    assert_int_equal(s.data.synthetic_train, 300);
    assert_int_equal(s.data.synthetic_test, 40);
    assert_int_equal(s.data.synthetic_seed, 77);

    assert_int_equal(s.model.n_layers, 5);
    static const int width[] = {784, 2000, 1000, 30, 7, 12};
    for (int l = 0; l <= 5; l++)
        assert_int_equal(s.model.width[l], width[l]);
    assert_int_equal(s.model.act[1], MT_ACT_GELU);   /* the model default */
    assert_int_equal(s.model.act[2], MT_ACT_TANH);   /* its own */
    assert_int_equal(s.model.act[3], MT_ACT_GELU);
    assert_int_equal(s.model.act[4], MT_ACT_GELU);
    assert_int_equal(s.model.act[5], MT_ACT_IDENTITY);
    assert_int_equal(s.model.init, MT_INIT_XAVIER);

    assert_string_equal(s.rule.name, "dfa");
    assert_int_equal(s.rule.feedback_init, MT_FB_NORMAL);
    assert_true(s.rule.feedback_scale == 0.02f);

    assert_int_equal(s.optim.kind, MT_OPT_SGD);
    assert_true(s.optim.lr == 1e-4f);
    assert_true(s.optim.momentum == 0.9f);
    assert_int_equal(s.optim.nesterov, 1);
    assert_true(s.optim.beta1 == 0.8f);
    assert_true(s.optim.beta2 == 0.99f);
    assert_true(s.optim.eps == 1e-6f);
    assert_true(s.optim.weight_decay == 5e-4f);

    assert_int_equal(s.sched.kind, MT_SCHED_STEP);
    assert_true(s.sched.warmup_epochs == 1.5f);
    assert_int_equal(s.sched.step_epochs, 4);
    assert_true(s.sched.gamma == 0.5f);
    assert_true(s.sched.min_lr == 1e-6f);

    assert_int_equal(s.batch, 100);
    assert_int_equal(s.epochs, 20);
    assert_true(s.seed == UINT64_MAX);
    assert_int_equal(s.threads, 2);
    assert_true(s.memory_limit == (size_t)512 << 20);
    assert_int_equal(s.checkpoint_every, 5);
    assert_int_equal(s.keep_checkpoints, 4);
}

static void test_hidden_list_both_forms(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_err err;
    /* activation after hidden still applies to the integer items */
    const char *yaml =
        "dataset: {name: mnist}\n"
        "model:\n"
        "  hidden:\n"
        "    - {width: 50, activation: sigmoid}\n"
        "    - 40\n"
        "    - width: 30\n"
        "      activation: leaky_relu\n"
        "    - {width: 20}\n"
        "  activation: tanh\n"
        "batch: 1\n"
        "epochs: 1\n";
    assert_int_equal(parse(yaml, &s, &err), 0);
    assert_int_equal(s.model.n_layers, 5);
    static const int width[] = {0, 50, 40, 30, 20, 0};  /* input, classes: from the dataset */
    static const enum mt_act act[] = {0, MT_ACT_SIGMOID, MT_ACT_TANH, MT_ACT_LEAKY_RELU,
                                      MT_ACT_TANH};
    for (int l = 0; l <= 5; l++)
        assert_int_equal(s.model.width[l], width[l]);
    for (int l = 1; l <= 4; l++)
        assert_int_equal(s.model.act[l], act[l]);

    /* without model.activation, integer items are relu; flow list form */
    assert_int_equal(parse(small_yaml, &s, &err), 0);
    assert_int_equal(s.model.n_layers, 3);
    assert_int_equal(s.model.width[1], 64);
    assert_int_equal(s.model.width[2], 32);
    assert_int_equal(s.model.act[1], MT_ACT_RELU);
    assert_int_equal(s.model.act[2], MT_ACT_RELU);
    assert_int_equal(s.model.init, MT_INIT_KAIMING);
}

static void test_section_shorthands(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_err err;
    const char *yaml =
        "dataset: cifar10\n"
        "model: {hidden: [8]}\n"
        "rule: memdfa\n"
        "optimizer: adamw\n"
        "schedule: cosine\n"
        "batch: 1\n"
        "epochs: 1\n";
    assert_int_equal(parse(yaml, &s, &err), 0);
    assert_int_equal(s.data.kind, MT_DATA_CIFAR10);
    assert_string_equal(s.rule.name, "memdfa");
    assert_int_equal(s.optim.kind, MT_OPT_ADAMW);
    assert_int_equal(s.sched.kind, MT_SCHED_COSINE);
    assert_true(isnan(s.optim.lr));
    assert_int_equal(s.rule.feedback_init, MT_FB_DEFAULT);
}

static void test_defaults_before_finish(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_err err;
    assert_int_equal(parse(small_yaml, &s, &err), 0);
    assert_string_equal(s.name, "spec");          /* spec.yaml without its extension */
    assert_int_equal(s.data.normalize, MT_NORM_STANDARD);
    assert_int_equal(s.data.train_limit, 0);
    assert_string_equal(s.data.dir, "");
    assert_string_equal(s.rule.name, "bp");
    assert_int_equal(s.rule.feedback_init, MT_FB_DEFAULT);
    assert_true(isnan(s.rule.feedback_scale));
    assert_int_equal(s.optim.kind, MT_OPT_DEFAULT);
    assert_true(isnan(s.optim.lr) && isnan(s.optim.momentum) && isnan(s.optim.beta1)
                && isnan(s.optim.beta2) && isnan(s.optim.eps) && isnan(s.optim.weight_decay));
    assert_int_equal(s.optim.nesterov, -1);
    assert_int_equal(s.sched.kind, MT_SCHED_CONSTANT);
    assert_int_equal(s.sched.step_epochs, 10);
    assert_true(s.sched.gamma == 0.1f);
    assert_true(s.sched.warmup_epochs == 0.0f && s.sched.min_lr == 0.0f);
    assert_true(s.seed == 1);
    assert_int_equal(s.threads, 0);
    assert_true(s.memory_limit == 0);
    assert_int_equal(s.checkpoint_every, 0);
    assert_int_equal(s.keep_checkpoints, 3);

    /* spec_init alone gives the same defaults */
    struct mt_spec d;
    spec_init(&d);
    assert_string_equal(d.rule.name, "bp");
    assert_true(d.seed == 1 && d.keep_checkpoints == 3 && d.sched.step_epochs == 10);
    assert_int_equal(d.optim.kind, MT_OPT_DEFAULT);

    /* the default name drops directories and the extension */
    assert_int_equal(spec_parse_string(small_yaml, strlen(small_yaml), "/x/y/my-job.v2.yml", &s,
                                       &err), 0);
    assert_string_equal(s.name, "my-job.v2");
}

static void test_memory_limit_forms(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        size_t bytes;
    } cases[] = {{"0", 0}, {"1GiB", (size_t)1 << 30}, {"\"250MB\"", 250000000}, {"4096", 4096},
                 {"2G", (size_t)2 << 30}, {"2g", (size_t)2 << 30}, {"1e9", 1000000000}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[256];
        struct mt_spec s;
        struct mt_err err;
        snprintf(yaml, sizeof yaml, "%smemory_limit: %s\n", small_yaml, cases[i].value);
        assert_int_equal(parse(yaml, &s, &err), 0);
        assert_true(s.memory_limit == cases[i].bytes);
    }
    expect_error("dataset: mnist\nmemory_limit: 12 parsecs\n",
                 "spec.yaml:2: memory_limit: expected a byte count such as 512MiB, 2G or 1e9, "
                 "got '12 parsecs'");
    expect_error("dataset: mnist\nmemory_limit: 20EiB\n",
                 "spec.yaml:2: memory_limit: '20EiB' is too large (at most 9223372036854775807 "
                 "bytes)");
}

/* --set key=value (mtctl submit/resubmit): a dotted key, its value read
 * as the file's would be, the same messages; a failed set leaves the spec
 * as it was; a new rule drops the settings it does not read. */
static void set_ok(struct mt_spec *s, const char *key, const char *value)
{
    struct mt_err err = {0};
    if (spec_set_key(s, key, value, &err) != 0)
        fail_msg("--set %s=%s: %s", key, value, err.msg);
}

static void test_set_key(void **state)
{
    (void)state;
    struct mt_spec s, before;
    struct mt_err err = {0};
    assert_int_equal(parse(small_yaml, &s, &err), 0);
    set_ok(&s, "optimizer.lr", "0.01");
    set_ok(&s, "epochs", "3");
    set_ok(&s, "dataset.augment.crop", "2");
    set_ok(&s, "optimizer.name", "adam");
    set_ok(&s, "model.init", "xavier");
    assert_true(s.optim.lr == 0.01f);
    assert_int_equal(s.epochs, 3);
    assert_int_equal(s.data.augment.crop, 2);
    assert_int_equal(s.optim.kind, MT_OPT_ADAM);
    assert_int_equal(s.model.init, MT_INIT_XAVIER);
    set_ok(&s, "rule.name", "dfa");
    set_ok(&s, "rule.feedback_scale", "0.3");
    assert_true(s.rule.feedback_scale == 0.3f);
    if (spec_finish(&s, &err) != 0)
        fail_msg("finish: %s", err.msg);
    set_ok(&s, "rule", "bp");   /* a section by its name */
    assert_string_equal(s.rule.name, "bp");
    assert_true(isnan(s.rule.feedback_scale));
    assert_false(s.resolved);

    before = s;
    static const char *const bad[][3] = {
        {"optimizer.lr", "fast", "--set:1: optimizer.lr: expected a positive number, got 'fast'"},
        {"epochs", "0", "--set:1: epochs: expected a positive integer, got '0'"},
        {"optimiser.lr", "1", "--set optimiser.lr: unknown key 'optimiser' in the spec"},
        {"optimizer.rate", "1", "--set optimizer.rate: unknown key 'rate' in optimizer"},
        {"epochs.x", "1", "--set epochs.x: 'epochs' is not a section"},
        {"model.hidden", "[8]", "--set model.hidden: the model's structure is not set"},
        {"model", "{hidden: [8]}", "--set model: the model's structure is not set"},
        {"", "1", "--set : not a spec key"},
        {"epochs", "3\n---\n4", "--set:2: epochs: more than one YAML document"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(spec_set_key(&s, bad[i][0], bad[i][1], &err), MT_E_INVAL);
        if (strncmp(err.msg, bad[i][2], strlen(bad[i][2])) != 0)
            fail_msg("--set %s=%s: got \"%s\"", bad[i][0], bad[i][1], err.msg);
        assert_memory_equal(&s, &before, sizeof s);
    }
    /* a setting the rule does not read is refused when the spec is finished */
    set_ok(&s, "rule.feedback_scale", "0.3");
    assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
}

/* spec_finish is the one step that resolves a spec and says so: the
 * trainer then takes the spec as it is. Changing the rule, or a failed
 * finish, leaves it unresolved. */
static void test_finish_marks_resolved(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_err err;
    assert_int_equal(parse(small_yaml, &s, &err), 0);
    assert_false(s.resolved);
    assert_int_equal(spec_finish(&s, &err), 0);
    assert_true(s.resolved);
    spec_set_rule(&s, "dfa");
    assert_false(s.resolved);
    assert_int_equal(spec_finish(&s, &err), 0);
    assert_true(s.resolved);
    s.batch = 0;
    assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
    assert_false(s.resolved);
}

/* The feedback rules' recipe (docs/spec-reference.md, "Rule defaults"):
 * SGD momentum 0.9, lr 0.01 (DFA: times B / 64 below batch 64), cosine
 * when no optimizer is named; a named
 * optimizer keeps the common lr defaults and momentum 0; BP keeps Adam 1e-4. */
static void test_feedback_rules_default_to_sgd(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_err err;
    const char *rules[] = {"fa", "dfa", "memdfa"};
    for (int i = 0; i < 3; i++) {
        char yaml[320];
        snprintf(yaml, sizeof yaml, "%srule: %s\n", small_yaml, rules[i]);
        assert_int_equal(parse(yaml, &s, &err), 0);
        assert_int_equal(spec_finish(&s, &err), 0);
        assert_int_equal(s.optim.kind, MT_OPT_SGD);
        /* DFA's 0.01 falls as B / 64 below batch 64 (here 10). */
        assert_true(s.optim.lr == (i == 0 ? 0.01f : 0.01f * 10.0f / 64.0f));
        assert_true(s.optim.momentum == 0.9f);
        assert_int_equal(s.sched.kind, MT_SCHED_COSINE);
        assert_true(s.rule.feedback_scale == (i == 0 ? 0.5f : 1.0f / sqrtf(64.0f)));
        snprintf(yaml, sizeof yaml, "%srule: %s\noptimizer: sgd\n", small_yaml, rules[i]);
        assert_int_equal(parse(yaml, &s, &err), 0);
        assert_int_equal(spec_finish(&s, &err), 0);
        assert_true(s.optim.lr == 0.01f && s.optim.momentum == 0.0f);
        assert_int_equal(s.sched.kind, MT_SCHED_CONSTANT);
        snprintf(yaml, sizeof yaml, "%srule: %s\noptimizer: adam\n", small_yaml, rules[i]);
        assert_int_equal(parse(yaml, &s, &err), 0);
        assert_int_equal(spec_finish(&s, &err), 0);
        assert_true(s.optim.lr == 1e-4f);
    }
    assert_int_equal(parse(small_yaml, &s, &err), 0);
    assert_int_equal(spec_finish(&s, &err), 0);
    assert_int_equal(s.optim.kind, MT_OPT_ADAM);
    assert_true(s.optim.lr == 1e-4f);
    assert_int_equal(s.sched.kind, MT_SCHED_COSINE);
}

/* On conv nets (docs/spec-reference.md, "Rule defaults"): with batch-norm,
 * FA, DFA and MEM-DFA take lr 0.05 when the spec names no optimizer and no
 * lr; without, FA's feedback scale is 0.1. A named lr or scale wins. */
static void test_feedback_rules_conv_defaults(void **state)
{
    (void)state;
    static const char *const data =
        "dataset: {name: synthetic, synthetic_train: 64, synthetic_test: 16}\n"
        "batch: 64\nepochs: 1\n";
    static const char *const conv =
        "model:\n  input: [1, 8, 8]\n  classes: 3\n  layers:\n    - conv: {channels: 4, kernel: 3}\n"
        "    - relu\n    - flatten\n    - dense: 3\n";
    static const char *const conv_bn =
        "model:\n  input: [1, 8, 8]\n  classes: 3\n  layers:\n    - conv: {channels: 4, kernel: 3}\n"
        "    - batchnorm\n    - relu\n    - flatten\n    - dense: 3\n";
    const char *rules[] = {"fa", "dfa", "memdfa"};
    struct mt_spec s;
    struct mt_err err;
    for (int i = 0; i < 3; i++) {
        char yaml[640];
        snprintf(yaml, sizeof yaml, "%s%srule: %s\n", data, conv, rules[i]);
        assert_int_equal(parse(yaml, &s, &err), 0);
        assert_int_equal(spec_finish(&s, &err), 0);
        assert_true(s.optim.lr == 0.01f);
        if (i == 0)
            assert_true(s.rule.feedback_scale == 0.3f);
        snprintf(yaml, sizeof yaml, "%s%srule: %s\n", data, conv_bn, rules[i]);
        assert_int_equal(parse(yaml, &s, &err), 0);
        assert_int_equal(spec_finish(&s, &err), 0);
        assert_true(s.optim.lr == 0.05f);
        assert_int_equal(s.optim.kind, MT_OPT_SGD);
        if (i == 0)
            assert_true(s.rule.feedback_scale == 0.5f);
        snprintf(yaml, sizeof yaml, "%s%srule: {name: %s, feedback_scale: 0.25}\n"
                 "optimizer: {lr: 0.02}\n", data, conv_bn, rules[i]);
        assert_int_equal(parse(yaml, &s, &err), 0);
        assert_int_equal(spec_finish(&s, &err), 0);
        assert_true(s.optim.lr == 0.02f && s.rule.feedback_scale == 0.25f);
    }
}

static void test_finish_fills_rule_defaults(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_err err;
    const char *rules[] = {"bp", "fa", "dfa", "memdfa"};
    for (int i = 0; i < 4; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "%srule: %s\n", small_yaml, rules[i]);
        assert_int_equal(parse(yaml, &s, &err), 0);
        assert_int_equal(spec_finish(&s, &err), 0);
        assert_true(s.optim.kind >= 0 && s.optim.kind <= MT_OPT_ADAMW);
        assert_false(isnan(s.optim.lr) || isnan(s.optim.momentum) || isnan(s.optim.beta1)
                     || isnan(s.optim.beta2) || isnan(s.optim.eps)
                     || isnan(s.optim.weight_decay));
        assert_true(s.optim.lr > 0);
        assert_true(s.optim.nesterov == 0 || s.optim.nesterov == 1);
        /* a second finish changes nothing */
        struct mt_spec again = s;
        assert_int_equal(spec_finish(&again, &err), 0);
        assert_true(same_float(again.optim.lr, s.optim.lr));
        assert_int_equal(again.optim.kind, s.optim.kind);
    }
    /* what the user gave survives the rule's defaults */
    const char *given = "dataset: mnist\nmodel: {hidden: [4]}\nbatch: 1\nepochs: 1\n"
                        "optimizer: {name: sgd, lr: 0.25, momentum: 0, weight_decay: 0.5}\n";
    assert_int_equal(parse(given, &s, &err), 0);
    assert_int_equal(spec_finish(&s, &err), 0);
    assert_int_equal(s.optim.kind, MT_OPT_SGD);
    assert_true(s.optim.lr == 0.25f);
    assert_true(s.optim.momentum == 0.0f);
    assert_true(s.optim.weight_decay == 0.5f);
}

static void test_finish_dataset_sizes(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_err err;
    assert_int_equal(parse(small_yaml, &s, &err), 0);
    assert_int_equal(spec_finish(&s, &err), 0);
    assert_int_equal(s.model.width[0], 784);
    assert_int_equal(s.model.width[3], 10);

    assert_int_equal(parse("dataset: cifar10\nmodel: {hidden: [5]}\nbatch: 1\nepochs: 1\n", &s,
                           &err), 0);
    assert_int_equal(spec_finish(&s, &err), 0);
    assert_int_equal(s.model.width[0], 3072);
    assert_int_equal(s.model.width[2], 10);

    const char *synth = "dataset: {name: synthetic, synthetic_train: 64}\n"
                        "model: {input: 20, hidden: [8], classes: 3}\nbatch: 4\nepochs: 1\n";
    assert_int_equal(parse(synth, &s, &err), 0);
    assert_int_equal(s.data.synthetic_dim, 0);
    assert_int_equal(spec_finish(&s, &err), 0);
    assert_int_equal(s.data.synthetic_dim, 20);
    assert_int_equal(s.data.synthetic_classes, 3);
    assert_int_equal(s.data.synthetic_train, 64);

    /* a named set's input must match it */
    expect_error("dataset: mnist\nmodel: {input: 100, hidden: [5]}\nbatch: 1\nepochs: 1\n",
                 "spec.yaml:2: model.input: 100 does not match dataset 'mnist' "
                 "(784 values per sample)");
}

static void test_finish_checks_built_specs(void **state)
{
    (void)state;
    struct mt_spec s, good;
    struct mt_err err;
    assert_int_equal(parse(small_yaml, &good, &err), 0);

    s = good;
    s.threads = -1;
    assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "threads: expected a non-negative integer, got -1");

    s = good;
    s.batch = 0;
    assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "batch: expected a positive integer, got 0");

    s = good;
    s.optim.lr = -1.0f;
    assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "optimizer.lr: expected a positive number, got -1");

    s = good;
    s.model.width[2] = 0;
    assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "model.hidden[1]: expected a positive width, got 0");

    s = good;
    snprintf(s.rule.name, sizeof s.rule.name, "nope");
    assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "rule.name: unknown rule 'nope'");

    s = good;
    s.data.kind = MT_DATA_IDX;
    s.model.width[0] = 5;
    s.model.width[3] = 2;
    assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "dataset.train_images: required for dataset 'idx'");

    s = good;
    s.model.n_layers = 0;
    assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "model.hidden"));
}


/* ------------------------------------------------------------------------ */
/* Rule settings and norm layers: accepted only by the rules that use them   */

/* The rule flags are set by each rule's file, so these tests read them from
 * the table rather than assuming which rule takes what. */

/* The first rule whose flags include `flag` (want 1) or lack it (want 0). */
static const char *rule_with(unsigned flag, int want)
{
    const struct mt_rule *const *list = rule_list();
    for (int i = 0; list[i]; i++)
        if (((list[i]->flags & flag) != 0) == want)
            return list[i]->name;
    return NULL;
}

/* The list the messages end with: "rules that do: a, b" or "no rule does". */
static void expected_rules(char *out, size_t cap, unsigned flag)
{
    const struct mt_rule *const *list = rule_list();
    size_t used = (size_t)snprintf(out, cap, "rules that do:");
    int n = 0;
    for (int i = 0; list[i]; i++)
        if (list[i]->flags & flag)
            used += (size_t)snprintf(out + used, cap - used, "%s %s", n++ ? "," : "",
                                     list[i]->name);
    if (n == 0)
        snprintf(out, cap, "no rule does");
}

static const struct {
    const char *key, *value;
    unsigned flag;
} rule_settings[] = {
    {"feedback_init", "normal", MT_RULE_FEEDBACK},
    {"feedback_scale", "0.25", MT_RULE_FEEDBACK},
    {"binary", "true", MT_RULE_BINARY},
    {"epsilon", "0.125", MT_RULE_EPSILON},
    {"kappa", "8", MT_RULE_KAPPA},
    {"groups", "4", MT_RULE_GROUPS},
    {"segments", "3", MT_RULE_SEGMENTS},
    {"samples", "5", MT_RULE_SAMPLES},
    {"recompute_inputs", "false", MT_RULE_RECOMPUTE},
};

/* The value a rule_settings entry must parse to, read back from the spec. */
static void assert_setting(const struct mt_spec *s, size_t i)
{
    switch (i) {
    case 0: assert_int_equal(s->rule.feedback_init, MT_FB_NORMAL); break;
    case 1: assert_true(s->rule.feedback_scale == 0.25f); break;
    case 2: assert_int_equal(s->rule.binary, 1); break;
    case 3: assert_true(s->rule.epsilon == 0.125f); break;
    case 4: assert_true(s->rule.kappa == 8.0f); break;
    case 5: assert_int_equal(s->rule.groups, 4); break;
    case 6: assert_int_equal(s->rule.segments, 3); break;
    case 7: assert_int_equal(s->rule.samples, 5); break;
    case 8: assert_int_equal(s->rule.recompute_inputs, 0); break;
    default: fail();
    }
}

static void test_rule_settings_unset_by_default(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_err err;
    assert_int_equal(parse(small_yaml, &s, &err), 0);
    assert_int_equal(s.rule.binary, -1);
    assert_true(isnan(s.rule.epsilon) && isnan(s.rule.kappa));
    assert_int_equal(s.rule.groups, -1);
    assert_int_equal(s.rule.segments, -1);
    assert_int_equal(s.rule.samples, -1);
    assert_int_equal(s.rule.recompute_inputs, -1);
    for (int l = 0; l <= MT_MAX_LAYERS; l++)
        assert_int_equal(s.model.norm[l], MT_NK_NONE);
}

/* Each setting parses to its value under a rule that reads it, and is
 * refused, naming the key, the rule and the rules that take it, under one
 * that does not. */
static void test_rule_settings_by_rule(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rule_settings / sizeof rule_settings[0]; i++) {
        char yaml[512], want[512], rules[256];
        struct mt_spec s;
        struct mt_err err;
        const char *taker = rule_with(rule_settings[i].flag, 1);
        const char *other = rule_with(rule_settings[i].flag, 0);
        expected_rules(rules, sizeof rules, rule_settings[i].flag);
        if (taker) {
            snprintf(yaml, sizeof yaml, "%srule:\n  name: %s\n  %s: %s\n", small_yaml, taker,
                     rule_settings[i].key, rule_settings[i].value);
            if (parse(yaml, &s, &err) != 0)
                fail_msg("%s", err.msg);
            assert_setting(&s, i);
            if (spec_finish(&s, &err) != 0)
                fail_msg("%s", err.msg);
            assert_setting(&s, i);   /* the rule's defaults keep what was given */
        } else {
            print_message("no rule reads rule.%s yet\n", rule_settings[i].key);
        }
        assert_non_null(other);
        /* the setting may come before the name: line 7 either way */
        snprintf(yaml, sizeof yaml, "%srule:\n  %s: %s\n  name: %s\n", small_yaml,
                 rule_settings[i].key, rule_settings[i].value, other);
        snprintf(want, sizeof want,
                 "spec.yaml:7: rule.%s: rule '%s' does not take this setting (%s)",
                 rule_settings[i].key, other, rules);
        expect_error(yaml, want);
    }
}

/* The two cases that do not depend on other rules' flags: FA never reads
 * epsilon and DFA never trains norm layers. */
static void test_rule_settings_fixed_refusals(void **state)
{
    (void)state;
    char want[512], rules[256];
    expected_rules(rules, sizeof rules, MT_RULE_EPSILON);
    assert_null(strstr(rules, " fa,"));
    snprintf(want, sizeof want,
             "spec.yaml:6: rule.epsilon: rule 'fa' does not take this setting (%s)", rules);
    expect_error("dataset: mnist\nmodel: {hidden: [8]}\nbatch: 1\nepochs: 1\n"
                 "rule: {name: fa,\n  epsilon: 0.1}\n", want);

    expected_rules(rules, sizeof rules, MT_RULE_NORMS);
    snprintf(want, sizeof want,
             "spec.yaml:5: model.hidden[1].norm: rule 'dfa' does not support norm layers (%s)",
             rules);
    expect_error("dataset: mnist\nmodel:\n  hidden:\n    - 8\n    - {width: 4, norm: layernorm}\n"
                 "batch: 1\nepochs: 1\nrule: dfa\n", want);
    /* from the model's default: the message names model.norm and its line */
    snprintf(want, sizeof want,
             "spec.yaml:3: model.norm: rule 'dfa' does not support norm layers (%s)", rules);
    expect_error("dataset: mnist\nmodel:\n  norm: batchnorm\n  hidden: [8, 4]\n"
                 "batch: 1\nepochs: 1\nrule: dfa\n", want);
    /* norm: none is no norm layer */
    struct mt_spec s;
    struct mt_err err;
    assert_int_equal(parse("dataset: mnist\nmodel:\n  norm: none\n  hidden: [8, {width: 4, "
                           "norm: none}]\nbatch: 1\nepochs: 1\nrule: dfa\n", &s, &err), 0);
    assert_int_equal(s.model.norm[1], MT_NK_NONE);
    assert_int_equal(s.model.norm[2], MT_NK_NONE);
}

/* A spec built in code meets the same checks in spec_finish, without lines. */
static void test_rule_settings_finish_checks(void **state)
{
    (void)state;
    struct mt_spec s, good;
    struct mt_err err;
    char want[512], rules[256];
    assert_int_equal(parse(small_yaml, &good, &err), 0);

    s = good;
    snprintf(s.rule.name, sizeof s.rule.name, "fa");
    s.rule.epsilon = 0.1f;
    expected_rules(rules, sizeof rules, MT_RULE_EPSILON);
    snprintf(want, sizeof want, "rule.epsilon: rule 'fa' does not take this setting (%s)", rules);
    assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
    assert_string_equal(err.msg, want);

    s = good;
    snprintf(s.rule.name, sizeof s.rule.name, "dfa");
    s.model.norm[2] = MT_NK_BATCH;
    expected_rules(rules, sizeof rules, MT_RULE_NORMS);
    snprintf(want, sizeof want,
             "model.hidden[1].norm: rule 'dfa' does not support norm layers (%s)", rules);
    assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
    assert_string_equal(err.msg, want);

    /* a norm past the hidden layers is not a layer */
    s = good;
    snprintf(s.rule.name, sizeof s.rule.name, "dfa");
    s.model.norm[3] = MT_NK_BATCH;
    assert_int_equal(spec_finish(&s, &err), 0);

    s = good;
    s.model.norm[1] = (enum mt_normkind)7;
    assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "model.hidden[0]: invalid norm 7");

    static const struct {
        int field;
        const char *msg;
    } bad[] = {
        {0, "rule.binary: invalid value 2"},
        {1, "rule.epsilon: expected a positive number, got -1"},
        {2, "rule.kappa: expected a positive number, got 0"},
        {3, "rule.groups: expected a positive integer, got 0"},
        {4, "rule.segments: expected a positive integer, got -2"},
        {5, "rule.samples: expected a positive integer, got 0"},
        {6, "rule.epsilon: expected a positive number, got inf"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = good;
        switch (bad[i].field) {
        case 0: s.rule.binary = 2; break;
        case 1: s.rule.epsilon = -1.0f; break;
        case 2: s.rule.kappa = 0.0f; break;
        case 3: s.rule.groups = 0; break;
        case 4: s.rule.segments = -2; break;
        case 5: s.rule.samples = 0; break;
        case 6: s.rule.epsilon = INFINITY; break;
        }
        assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
        assert_string_equal(err.msg, bad[i].msg);
    }
}

/* What each rule needs of the spec fails spec_finish (so the daemon refuses
 * the job at submit), with the rule's own message; the same spec with the
 * need met finishes. */
static void test_rule_checks_run_at_finish(void **state)
{
    (void)state;
    struct mt_spec good, s;
    struct mt_err err;
    assert_int_equal(parse(small_yaml, &good, &err), 0);   /* 2 hidden relu layers, 2 epochs */
    static const struct {
        const char *rule;
        int change;
        const char *needle;
    } cases[] = {
        {"asa", 0, "asa needs relu on every hidden layer"},
        {"approx8", 0, "approximate activations need ReLU"},
        {"approx4", 1, "approximate activations support batchnorm"},
        {"approxbp", 2, "approxbp does not support"},
        {"tinyfoa", 3, "epochs (1) must be at least the number of hidden layers (2)"},
        {"tinyfoa", 0, "binary activations are ReLU"},
        {"mezo", 4, "optimizer must be sgd without momentum, got adam"},
        {"mezo", 5, "optimizer.weight_decay must be 0"},
        {"ff", 0, "ff trains relu layers only"},
        {"bp", 6, "binary BP takes no norm layers"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        s = good;
        snprintf(s.rule.name, sizeof s.rule.name, "%s", cases[i].rule);
        assert_int_equal(spec_finish(&s, &err), 0);   /* as it stands: fine */
        s = good;
        snprintf(s.rule.name, sizeof s.rule.name, "%s", cases[i].rule);
        switch (cases[i].change) {
        case 0: s.model.act[2] = MT_ACT_TANH; break;
        case 1: s.model.norm[1] = MT_NK_LAYER; break;
        case 2: s.model.norm[1] = MT_NK_BATCH; break;
        case 3: s.epochs = 1; break;
        case 4: s.optim.kind = MT_OPT_ADAM; break;
        case 5: s.optim.kind = MT_OPT_SGD; s.optim.lr = 1e-3f; s.optim.weight_decay = 1e-4f; break;
        case 6: s.rule.binary = 1; s.model.norm[2] = MT_NK_LAYER; break;
        }
        int rc = spec_finish(&s, &err);
        if (rc != MT_E_INVAL || !strstr(err.msg, cases[i].needle))
            fail_msg("%s, change %d: rc %d, \"%s\" (wanted \"%s\")", cases[i].rule,
                     cases[i].change, rc, rc ? err.msg : "", cases[i].needle);
    }
}

static void test_rule_settings_bad_values(void **state)
{
    (void)state;
    expect_error("dataset: mnist\nrule: {epsilon: 0}\n",
                 "spec.yaml:2: rule.epsilon: expected a positive number, got '0'");
    expect_error("dataset: mnist\nrule:\n  kappa: -1\n",
                 "spec.yaml:3: rule.kappa: expected a positive number, got '-1'");
    expect_error("dataset: mnist\nrule:\n  groups: 0\n",
                 "spec.yaml:3: rule.groups: expected a positive integer, got '0'");
    expect_error("dataset: mnist\nrule:\n  segments: 1.5\n",
                 "spec.yaml:3: rule.segments: expected a positive integer, got '1.5'");
    expect_error("dataset: mnist\nrule:\n  samples: many\n",
                 "spec.yaml:3: rule.samples: expected a positive integer, got 'many'");
    expect_error("dataset: mnist\nrule:\n  samples: 3000000000\n",
                 "spec.yaml:3: rule.samples: expected a positive integer, got '3000000000'");
    expect_error("dataset: mnist\nrule: {binary: maybe}\n",
                 "spec.yaml:2: rule.binary: expected true or false, got 'maybe'");
    expect_error("dataset: mnist\nrule: {name: bp, binary: true, binary: false}\n",
                 "spec.yaml:2: rule.binary: given twice (first at line 2)");
    expect_error("dataset: mnist\nrule: {eps: 1}\n",
                 "spec.yaml:2: rule.eps: unknown key (expected one of: name, feedback_init, "
                 "feedback_scale, binary, epsilon, kappa, recompute_inputs, groups, segments, "
                 "samples)");
}

static void test_norm_layers_parse(void **state)
{
    (void)state;
    expect_error("dataset: mnist\nmodel:\n  hidden:\n    - {width: 3, norm: groupnorm}\n",
                 "spec.yaml:4: model.hidden[0].norm: unknown value 'groupnorm' (expected one "
                 "of: batchnorm, layernorm, none)");
    expect_error("dataset: mnist\nmodel:\n  hidden: [3]\n  norm: BatchNorm\n",
                 "spec.yaml:4: model.norm: unknown value 'BatchNorm' (expected one of: "
                 "batchnorm, layernorm, none)");
    expect_error("dataset: mnist\nmodel:\n  hidden:\n    - {width: 3, norm: [a]}\n",
                 "spec.yaml:4: model.hidden[0].norm: expected one of: batchnorm, layernorm, "
                 "none, got a list");

    const char *taker = rule_with(MT_RULE_NORMS, 1);
    if (!taker) {
        print_message("no rule supports norm layers yet\n");
        return;
    }
    /* model.norm is the default (before or after hidden); a layer's own wins */
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "dataset: mnist\n"
             "model:\n"
             "  hidden:\n"
             "    - 16\n"
             "    - {width: 8, norm: layernorm}\n"
             "    - {width: 8, norm: none, activation: tanh}\n"
             "    - {width: 4}\n"
             "  norm: batchnorm\n"
             "rule: %s\n"
             "batch: 2\n"
             "epochs: 1\n", taker);
    struct mt_spec s;
    struct mt_err err;
    if (parse(yaml, &s, &err) != 0)
        fail_msg("%s", err.msg);
    static const enum mt_normkind want[] = {MT_NK_NONE, MT_NK_BATCH, MT_NK_LAYER, MT_NK_NONE,
                                            MT_NK_BATCH, MT_NK_NONE};
    for (int l = 0; l <= 5; l++)
        assert_int_equal(s.model.norm[l], want[l]);
    if (spec_finish(&s, &err) != 0)
        fail_msg("%s", err.msg);
    for (int l = 0; l <= 5; l++)
        assert_int_equal(s.model.norm[l], want[l]);
}

/* ------------------------------------------------------------------------ */
/* Errors: code, file, line and key path                                    */

static void test_error_unknown_key(void **state)
{
    (void)state;
    expect_error_prefix("dataset:\n  nmae: mnist\n",
                        "spec.yaml:2: dataset.nmae: unknown key (expected one of: name, dir, "
                        "train_images, train_labels, test_images, test_labels, normalize,");
    expect_error_prefix("dataset: mnist\nBatch: 3\n",   /* keys are case-sensitive */
                        "spec.yaml:2: Batch: unknown key (expected one of: name, dataset, model,");
    expect_error_prefix("dataset: mnist\nmodel:\n  hidden:\n    - {width: 3, act: tanh}\n",
                        "spec.yaml:4: model.hidden[0].act: unknown key (expected one of: "
                        "width, activation, norm)");
}

static void test_error_bad_width(void **state)
{
    (void)state;
    const char *yaml =
        "dataset: mnist\n"
        "model:\n"
        "  hidden:\n"
        "    - 10\n"
        "    - {width: abc}\n";
    expect_error(yaml,
                 "spec.yaml:5: model.hidden[1].width: expected a positive integer, got 'abc'");
    expect_error("dataset: mnist\nmodel:\n  hidden: [10, 0]\n",
                 "spec.yaml:3: model.hidden[1]: expected a positive integer, got '0'");
    expect_error("dataset: mnist\nmodel:\n  hidden: [-4]\n",
                 "spec.yaml:3: model.hidden[0]: expected a positive integer, got '-4'");
    expect_error("dataset: mnist\nmodel:\n  hidden: [99999999999]\n",
                 "spec.yaml:3: model.hidden[0]: expected a positive integer, got '99999999999'");
    expect_error("dataset: mnist\nmodel:\n  hidden:\n    - activation: relu\n",
                 "spec.yaml:4: missing required key 'model.hidden[0].width'");
}

static void test_error_unknown_activation(void **state)
{
    (void)state;
    expect_error("dataset: mnist\nmodel:\n  hidden:\n    - {width: 3, activation: swish}\n",
                 "spec.yaml:4: model.hidden[0].activation: unknown value 'swish' (expected one "
                 "of: relu, leaky_relu, tanh, sigmoid, gelu, identity, silu)");
    expect_error("dataset: mnist\nmodel:\n  hidden: [3]\n  activation: ReLU\n",
                 "spec.yaml:4: model.activation: unknown value 'ReLU' (expected one of: relu, "
                 "leaky_relu, tanh, sigmoid, gelu, identity, silu)");
}

static void test_error_bad_numbers(void **state)
{
    (void)state;
    expect_error("dataset: mnist\nmodel: {hidden: [3]}\nbatch: 0\n",
                 "spec.yaml:3: batch: expected a positive integer, got '0'");
    expect_error("dataset: mnist\nbatch: -5\n",
                 "spec.yaml:2: batch: expected a positive integer, got '-5'");
    expect_error("dataset: mnist\nepochs: 0\n",
                 "spec.yaml:2: epochs: expected a positive integer, got '0'");
    expect_error("dataset: mnist\nthreads: 1.5\n",
                 "spec.yaml:2: threads: expected a non-negative integer, got '1.5'");
    expect_error("dataset: mnist\noptimizer:\n  lr: abc\n",
                 "spec.yaml:3: optimizer.lr: expected a positive number, got 'abc'");
    expect_error("dataset: mnist\noptimizer:\n  momentum: 1\n",
                 "spec.yaml:3: optimizer.momentum: expected a number in [0, 1), got '1'");
    expect_error("dataset: mnist\noptimizer:\n  lr: .inf\n",
                 "spec.yaml:3: optimizer.lr: expected a positive number, got '.inf'");
    expect_error("dataset: mnist\noptimizer: {lr: 1e-50}\n",
                 "spec.yaml:2: optimizer.lr: expected a positive number, got '1e-50'");
    expect_error("dataset: mnist\noptimizer: {nesterov: maybe}\n",
                 "spec.yaml:2: optimizer.nesterov: expected true or false, got 'maybe'");
    expect_error("dataset: mnist\nseed: -1\n",
                 "spec.yaml:2: seed: expected a non-negative integer, got '-1'");
    expect_error("dataset: mnist\noptimizer: adamx\n",
                 "spec.yaml:2: optimizer: unknown value 'adamx' (expected one of: sgd, adam, "
                 "adamw)");
    expect_error("dataset:\n  name: mnist\n  normalize: zscore\n",
                 "spec.yaml:3: dataset.normalize: unknown value 'zscore' (expected one of: "
                 "standard, scale, none)");
    expect_error("dataset: imagenet\n",
                 "spec.yaml:1: dataset: unknown value 'imagenet' (expected one of: mnist, "
                 "fashion-mnist, cifar10, idx, synthetic)");
}

static void test_error_unknown_rule(void **state)
{
    (void)state;
    expect_error("dataset: mnist\nrule: hebbian\n",
                 "spec.yaml:2: rule: unknown rule 'hebbian' (expected one of: bp, fa, dfa, "
                 "memdfa, ckpt, asa, approx8, approx4, approxbp, tinyfoa, pepita, ff, mezo)");
    expect_error("dataset: mnist\nrule:\n  name: DFA\n",
                 "spec.yaml:3: rule.name: unknown rule 'DFA' (expected one of: bp, fa, dfa, "
                 "memdfa, ckpt, asa, approx8, approx4, approxbp, tinyfoa, pepita, ff, mezo)");
}

static void test_error_missing_required(void **state)
{
    (void)state;
    expect_error("dataset: mnist\nmodel: {hidden: [3]}\nepochs: 1\n",
                 "spec.yaml: missing required key 'batch'");
    expect_error("model: {hidden: [3]}\nbatch: 1\nepochs: 1\n",
                 "spec.yaml: missing required key 'dataset'");
    expect_error("dataset: mnist\nmodel:\n  input: 784\nbatch: 1\nepochs: 1\n",
                 "spec.yaml:2: missing required key 'model.hidden' (an MLP) or 'model.layers' (a layer list)");
    expect_error("batch: 1\ndataset:\n  dir: /x\nmodel: {hidden: [3]}\n",
                 "spec.yaml:2: missing required key 'dataset.name'");
    expect_error("dataset: mnist\nmodel: {hidden: [3]}\nbatch: 1\n",
                 "spec.yaml: missing required key 'epochs'");
}

static void test_error_yaml_syntax(void **state)
{
    (void)state;
    expect_error("dataset: mnist\nmodel:\n  hidden: [1]\n batch: 1\n",
                 "spec.yaml:4: YAML syntax error: did not find expected key "
                 "(while parsing a block mapping at line 1)");
    expect_error("dataset: mnist\nmodel: {hidden: [1}\nbatch: 1\n",
                 "spec.yaml:2: YAML syntax error: did not find expected ',' or ']' "
                 "(while parsing a flow sequence at line 2)");
    expect_error_prefix("dataset: 'mnist\n", "spec.yaml:2: YAML syntax error: found unexpected "
                        "end of stream");
    expect_error_prefix("dataset: mnist\n\tmodel: 1\n",
                        "spec.yaml:2: YAML syntax error: found a tab character");
}

static void test_error_map_where_scalar_expected(void **state)
{
    (void)state;
    expect_error("dataset: mnist\nbatch: {size: 10}\n",
                 "spec.yaml:2: batch: expected a positive integer, got a mapping");
    expect_error("dataset:\n  name: mnist\n  dir: [a, b]\n",
                 "spec.yaml:3: dataset.dir: expected a string, got a list");
    expect_error("dataset: [mnist]\n",
                 "spec.yaml:1: dataset: expected a name or a mapping, got a list");
    expect_error("dataset: mnist\nmodel:\n  hidden: 100\n",
                 "spec.yaml:3: model.hidden: expected a list of layers, got a scalar");
    expect_error("dataset: mnist\nmodel:\n  hidden: [[1]]\n",
                 "spec.yaml:3: model.hidden[0]: expected a width or a mapping {width, "
                 "activation, norm}, got a list");
    expect_error("- 1\n- 2\n",
                 "spec.yaml:1: expected a mapping of keys at the top level, got a list");
    expect_error("dataset: mnist\n? [a]\n: 1\n", "spec.yaml:2: expected a key, got a list");
}

static void test_error_too_long_string(void **state)
{
    (void)state;
    size_t n = 2000;
    char *yaml = malloc(n + 64);
    assert_non_null(yaml);
    int k = snprintf(yaml, n + 64, "dataset:\n  name: mnist\n  dir: ");
    memset(yaml + k, 'a', n);
    strcpy(yaml + k + n, "\n");
    expect_error(yaml, "spec.yaml:3: dataset.dir: too long (2000 bytes, at most 1023)");

    /* the spec name's buffer is smaller */
    memset(yaml, 0, n + 64);
    k = snprintf(yaml, n + 64, "name: ");
    memset(yaml + k, 'n', MT_NAME_LEN);
    strcpy(yaml + k + MT_NAME_LEN, "\n");
    expect_error(yaml, "spec.yaml:1: name: too long (128 bytes, at most 127)");
    free(yaml);

    /* a long bad value is shortened in the message */
    char big[300] = "batch: ";
    memset(big + 7, '7', 100);
    strcpy(big + 107, "x\n");
    expect_error(big, "spec.yaml:1: batch: expected a positive integer, got "
                      "'777777777777777777777777777777777777777777777777...'");

    expect_error("name: \"a\\tb\"\n", "spec.yaml:1: name: contains a control character");
    expect_error("name: \"a\\0b\"\n",
                 "spec.yaml:1: name: expected a non-empty string, got a value with a NUL byte");
}

static void test_error_idx_missing_paths(void **state)
{
    (void)state;
    const char *yaml =
        "dataset:\n"
        "  name: idx\n"
        "  train_images: a\n"
        "  train_labels: b\n"
        "  test_images: c\n"
        "model: {input: 4, hidden: [3], classes: 2}\n"
        "batch: 1\n"
        "epochs: 1\n";
    expect_error(yaml, "spec.yaml:1: dataset.test_labels: required for dataset 'idx'");
    expect_error("dataset: {name: mnist, train_images: x}\nmodel: {hidden: [3]}\n"
                 "batch: 1\nepochs: 1\n",
                 "spec.yaml:1: dataset.train_images: only used with dataset 'idx', not 'mnist'");
    expect_error("dataset: {name: idx, train_images: a, train_labels: b, test_images: c, "
                 "test_labels: d}\nmodel: {hidden: [3], classes: 2}\nbatch: 1\nepochs: 1\n",
                 "spec.yaml:2: model.input: required for dataset 'idx'");
    expect_error("dataset: synthetic\nmodel: {input: 3, hidden: [3]}\nbatch: 1\nepochs: 1\n",
                 "spec.yaml:2: model.classes: required for dataset 'synthetic'");
}

static void test_error_structure(void **state)
{
    (void)state;
    expect_error("dataset: mnist\nbatch: 1\nbatch: 2\n", "spec.yaml:3: batch: given twice (first at line 2)");
    expect_error("dataset: &d mnist\nname: *d\n", "spec.yaml:2: name: aliases are not supported");
    expect_error("", "spec.yaml: empty spec");
    expect_error("dataset: mnist\nmodel: {hidden: [3]}\nbatch: 1\nepochs: 1\n---\nbatch: 2\n",
                 "spec.yaml:5: more than one YAML document");

    char yaml[1024] = "dataset: mnist\nmodel:\n  hidden: [";
    for (int i = 0; i < MT_MAX_LAYERS; i++)
        strcat(yaml, i ? ", 2" : "2");
    strcat(yaml, "]\n");
    expect_error(yaml, "spec.yaml:3: model.hidden: more than 63 hidden layers");
}

static void test_error_keeps_spec_untouched(void **state)
{
    (void)state;
    struct mt_spec s, before;
    struct mt_err err;
    assert_int_equal(parse(full_yaml, &s, &err), 0);
    before = s;
    assert_int_equal(parse("dataset: mnist\nbatch: 0\n", &s, &err), MT_E_INVAL);
    assert_int_equal(memcmp(&s, &before, sizeof s), 0);
    assert_int_equal(spec_parse_string(NULL, 5, FILE_NAME, &s, &err), MT_E_INVAL);
    /* err may be NULL */
    assert_int_equal(spec_parse_string("batch: x", 8, FILE_NAME, &s, NULL), MT_E_INVAL);
}

static void test_parse_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test-spec-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    const char *yaml = "dataset: mnist\nmodel: {hidden: [3]}\nbatch: 1\nepochs: oops\n";
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);

    struct mt_spec s;
    struct mt_err err;
    char want[512];
    assert_int_equal(spec_parse_file(path, &s, &err), MT_E_INVAL);
    snprintf(want, sizeof want, "%s:4: epochs: expected a positive integer, got 'oops'", path);
    assert_string_equal(err.msg, want);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(small_yaml, f);
    fclose(f);
    assert_int_equal(spec_parse_file(path, &s, &err), 0);
    char base[64];
    snprintf(base, sizeof base, "%.*s", (int)(strlen(path) - 5 - 5), path + 5);
    assert_string_equal(s.name, base);   /* file name without directory and extension */
    unlink(path);

    assert_int_equal(spec_parse_file(path, &s, &err), MT_E_IO);
    assert_int_equal(err.code, MT_E_IO);
    snprintf(want, sizeof want, "%s: %s", path, strerror(ENOENT));
    assert_string_equal(err.msg, want);

    assert_int_equal(spec_parse_file("/tmp", &s, &err), MT_E_IO);
    snprintf(want, sizeof want, "/tmp: %s", strerror(EISDIR));
    assert_string_equal(err.msg, want);
}

/* The example specs shipped in examples/ parse and finish. */
static void test_example_files(void **state)
{
    (void)state;
    /* MEMTRAIN_TEST_DATA is <source>/tests/data; the examples sit in <source>/examples */
    const char *data = getenv("MEMTRAIN_TEST_DATA");
    size_t n = data ? strlen(data) : 0;
    if (n < 11 || strcmp(data + n - 11, "/tests/data") != 0)
        skip();
    static const struct {
        const char *file;
        int layers, width1, batch, epochs;
        float lr;
    } ex[] = {
        {"mnist-bp.yaml", 5, 2000, 100, 20, 1e-4f},
        {"mnist-quick.yaml", 3, 256, 128, 3, 1e-3f},
    };
    for (int i = 0; i < 2; i++) {
        char path[1024];
        struct mt_spec s;
        struct mt_err err;
        snprintf(path, sizeof path, "%.*s/examples/%s", (int)(n - 11), data, ex[i].file);
        if (spec_parse_file(path, &s, &err) != 0)
            fail_msg("%s", err.msg);
        assert_int_equal(spec_finish(&s, &err), 0);
        assert_int_equal(s.model.n_layers, ex[i].layers);
        assert_int_equal(s.model.width[1], ex[i].width1);
        assert_int_equal(s.model.width[0], 784);
        assert_int_equal(s.model.width[ex[i].layers], 10);
        assert_int_equal(s.batch, ex[i].batch);
        assert_int_equal(s.epochs, ex[i].epochs);
        assert_int_equal(s.optim.kind, MT_OPT_ADAM);
        assert_true(s.optim.lr == ex[i].lr);
        assert_string_equal(s.rule.name, "bp");
        assert_int_equal(s.threads, 2);
    }
    /* and every other example parses and finishes, layer lists included */
    char dir[1024];
    snprintf(dir, sizeof dir, "%.*s/examples", (int)(n - 11), data);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int seen = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
            continue;
        char path[2048];
        struct mt_spec s;
        struct mt_err err = {0};
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (spec_parse_file(path, &s, &err) != 0 || spec_finish(&s, &err) != 0)
            fail_msg("%s: %s", e->d_name, err.msg);
        seen++;
    }
    closedir(d);
    assert_true(seen >= 11);
}

/* ------------------------------------------------------------------------ */
/* Robustness                                                               */

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Any input gives success or a clean, printable MT_E_INVAL message. */
static void check_outcome(const char *text, size_t len)
{
    struct mt_spec s;
    struct mt_err err;
    memset(&err, 0, sizeof err);
    int rc = spec_parse_string(text, len, "fuzz.yaml", &s, &err);
    if (rc == 0) {
        rc = spec_finish(&s, &err);
        assert_true(rc == 0 || rc == MT_E_INVAL);
        if (rc == 0)
            assert_true(s.model.n_layers >= 1 && s.model.n_layers <= MT_MAX_LAYERS);
        return;
    }
    assert_int_equal(rc, MT_E_INVAL);
    assert_int_equal(err.code, MT_E_INVAL);
    size_t n = strnlen(err.msg, sizeof err.msg);
    assert_true(n > 0 && n < sizeof err.msg);
    assert_int_equal(strncmp(err.msg, "fuzz.yaml", 9), 0);
    for (size_t i = 0; i < n; i++)
        assert_true((unsigned char)err.msg[i] >= 0x20 && err.msg[i] != 0x7f);
}

static void test_random_bytes_never_crash(void **state)
{
    (void)state;
    static const char yamlish[] = "abcdez019-.:,[]{}#&*!|>'\"\\%@` \n\t?~";
    char buf[512];
    rng_state = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 400; i++) {
        size_t len = rnd() % sizeof buf;
        for (size_t j = 0; j < len; j++)
            buf[j] = (i & 1) ? (char)(rnd() & 0xff) : yamlish[rnd() % (sizeof yamlish - 1)];
        check_outcome(buf, len);
    }
}

static void test_mutated_specs_never_crash(void **state)
{
    (void)state;
    static const char tokens[][16] = {"\n", ": ", "- ", "[", "]", "{", "}", ",", "#", "&a ",
                                      "*a", "!!int ", "'", "\"", "  ", "\t", "0", "-1",
                                      "1e999", "hidden", "width", "\\x00", "? ", "|\n", "\xc3"};
    const size_t cap = sizeof full_yaml + 4096;
    char *buf = malloc(cap);
    assert_non_null(buf);
    rng_state = 12345;
    for (int i = 0; i < 600; i++) {
        size_t len = sizeof full_yaml - 1;
        memcpy(buf, full_yaml, len);
        int edits = 1 + (int)(rnd() % 6);
        for (int e = 0; e < edits && len > 0; e++) {
            size_t at = rnd() % len;
            switch (rnd() % 4) {
            case 0:                     /* replace a byte */
                buf[at] = (char)(rnd() & 0xff);
                break;
            case 1: {                   /* delete a run */
                size_t n = 1 + rnd() % 40;
                if (n > len - at)
                    n = len - at;
                memmove(buf + at, buf + at + n, len - at - n);
                len -= n;
                break;
            }
            case 2: {                   /* insert a token */
                const char *t = tokens[rnd() % (sizeof tokens / sizeof tokens[0])];
                size_t n = strlen(t);
                if (len + n < cap) {
                    memmove(buf + at + n, buf + at, len - at);
                    memcpy(buf + at, t, n);
                    len += n;
                }
                break;
            }
            default: {                  /* duplicate a chunk */
                size_t n = 1 + rnd() % 80;
                if (n > len - at)
                    n = len - at;
                if (len + n < cap) {
                    memmove(buf + at + n, buf + at, len - at);
                    len += n;
                }
                break;
            }
            }
        }
        check_outcome(buf, len);
    }
    free(buf);
}

/* The registry's enum rows list their names in value order (the JobSpec
 * bridge writes names from the list), each name reads back as its value,
 * and every section row's table is walked. */
static void check_enum_rows(const struct spec_section *sec, int *n_enums)
{
    for (size_t i = 0; i < sec->n; i++) {
        const struct spec_key *k = &sec->keys[i];
        if (k->sub)
            check_enum_rows(k->sub, n_enums);
        if (k->type != SK_ENUM)
            continue;
        ++*n_enums;
        char name[32];
        for (int v = 0; v < k->n_values; v++) {
            if (!spec_key_enum_name(k, v, name, sizeof name))
                fail_msg("%s.%s: no name for value %d", sec->path, k->name, v);
            if (k->from_name(name) != v)
                fail_msg("%s.%s: '%s' reads as %d, not %d", sec->path, k->name, name,
                         k->from_name(name), v);
        }
        assert_null(spec_key_enum_name(k, k->n_values, name, sizeof name));
        assert_null(spec_key_enum_name(k, -1, name, sizeof name));
    }
}

static void test_registry_enum_names_in_value_order(void **state)
{
    (void)state;
    int n = 0;
    check_enum_rows(&spec_fields, &n);
    assert_int_equal(n, 6);   /* dataset name, normalize; model init; feedback_init; optimizer,
                                 schedule names */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_spec_parses_exact_values),
        cmocka_unit_test(test_hidden_list_both_forms),
        cmocka_unit_test(test_section_shorthands),
        cmocka_unit_test(test_defaults_before_finish),
        cmocka_unit_test(test_memory_limit_forms),
        cmocka_unit_test(test_finish_fills_rule_defaults),
        cmocka_unit_test(test_feedback_rules_default_to_sgd),
        cmocka_unit_test(test_feedback_rules_conv_defaults),
        cmocka_unit_test(test_finish_marks_resolved),
        cmocka_unit_test(test_set_key),
        cmocka_unit_test(test_finish_dataset_sizes),
        cmocka_unit_test(test_finish_checks_built_specs),
        cmocka_unit_test(test_rule_settings_unset_by_default),
        cmocka_unit_test(test_rule_settings_by_rule),
        cmocka_unit_test(test_rule_settings_fixed_refusals),
        cmocka_unit_test(test_rule_settings_finish_checks),
        cmocka_unit_test(test_rule_checks_run_at_finish),
        cmocka_unit_test(test_rule_settings_bad_values),
        cmocka_unit_test(test_norm_layers_parse),
        cmocka_unit_test(test_error_unknown_key),
        cmocka_unit_test(test_error_bad_width),
        cmocka_unit_test(test_error_unknown_activation),
        cmocka_unit_test(test_error_bad_numbers),
        cmocka_unit_test(test_error_unknown_rule),
        cmocka_unit_test(test_error_missing_required),
        cmocka_unit_test(test_error_yaml_syntax),
        cmocka_unit_test(test_registry_enum_names_in_value_order),
        cmocka_unit_test(test_error_map_where_scalar_expected),
        cmocka_unit_test(test_error_too_long_string),
        cmocka_unit_test(test_error_idx_missing_paths),
        cmocka_unit_test(test_error_structure),
        cmocka_unit_test(test_error_keeps_spec_untouched),
        cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_example_files),
        cmocka_unit_test(test_random_bytes_never_crash),
        cmocka_unit_test(test_mutated_specs_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
