/* test-describe.c: the model's description for exports (describe.c): the
 * normalisation constants round-trip as float32, ASA's sign-term forms per
 * weight node, each rule's inference kind, Forward-Forward's unused output
 * layer, TinyFoA's stage. The end-to-end check (a loaded export gives
 * memtrain's accuracy) is tests/integration/test-export-load.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "describe.h"
#include "train.h"
#include "testutil.h"

#define DATA "dataset: {name: synthetic, synthetic_train: 64, synthetic_test: 16}\n"

/* A trainer for `yaml` and its description (malloc'd). */
static char *describe(const char *yaml, struct mt_trainer *t)
{
    struct mt_spec s;
    struct mt_err err = {0};
    char *json;
    spec_init(&s);
    assert_ok(spec_parse_string(yaml, strlen(yaml), "test.yaml", &s, &err), err);
    assert_ok(spec_finish(&s, &err), err);
    assert_ok(trainer_init(t, &s, &err), err);
    assert_ok(describe_model(t, &json, &err), err);
    return json;
}

/* The number after "key": in json, as float32. */
static float number_after(const char *json, const char *key)
{
    const char *p = strstr(json, key);
    assert_non_null(p);
    return strtof(p + strlen(key), NULL);
}

static void test_normalisation_constants_round_trip(void **state)
{
    (void)state;
    struct mt_trainer t;
    char *json = describe(DATA "model: {input: 20, hidden: [8], classes: 3}\nbatch: 8\nepochs: 1\n",
                          &t);
    assert_non_null(strstr(json, "\"normalize\": \"standard\""));
    float scale = number_after(json, "\"scale\": "), shift = number_after(json, "\"shift\": ");
    assert_memory_equal(&scale, &t.norm.scale, sizeof scale);   /* bit for bit */
    assert_memory_equal(&shift, &t.norm.shift, sizeof shift);
    assert_true(shift != 0.0f);
    assert_non_null(strstr(json, "\"form\": \"mlp\""));
    assert_non_null(strstr(json, "\"kind\": \"forward\""));
    assert_non_null(strstr(json, "{\"weight\": \"W2\", \"bias\": \"b2\", \"in\": 8, \"out\": 3, "
                                 "\"activation\": \"identity\", \"norm\": \"none\"}"));
    assert_true(describe_tensor_used(&t, "W2"));
    free(json);
    trainer_fini(&t);
}

/* Conv reads the data (exact), the second conv a pooled ReLU map
 * (x + eps [x > 0]), the dense layer a batch-norm output (x + eps sign x). */
static void test_asa_sign_terms_per_weight_node(void **state)
{
    (void)state;
    struct mt_trainer t;
    char *json = describe(DATA "model:\n  input: [1, 4, 5]\n  classes: 3\n  layers:\n"
                          "    - conv: {channels: 2, kernel: 3, padding: 1}\n    - batchnorm\n"
                          "    - relu\n    - maxpool: 2\n"
                          "    - conv: {channels: 2, kernel: 1}\n    - batchnorm\n"
                          "    - flatten\n    - dense: 3\n"
                          "rule: {name: asa, epsilon: 0.25}\nbatch: 8\nepochs: 1\n", &t);
    assert_non_null(strstr(json, "\"inference\": {\"kind\": \"asa\", \"epsilon\": 0.25}"));
    const char *c0 = strstr(json, "\"name\": \"layers.0.conv\"");
    const char *c1 = strstr(json, "\"name\": \"layers.4.conv\"");
    const char *d = strstr(json, "\"name\": \"layers.7.dense\"");
    assert_non_null(c0);
    assert_non_null(c1);
    assert_non_null(d);
    assert_true(strstr(c0, "\"sign_term\": \"none\"") < c1);
    assert_true(strstr(c1, "\"sign_term\": \"relu\"") < d);
    assert_non_null(strstr(d, "\"sign_term\": \"sign\""));
    assert_non_null(strstr(c0, "\"weight\": \"layers.0.conv.weight\", \"bias\": "
                               "\"layers.0.conv.bias\""));
    assert_non_null(strstr(json, "\"running_var\": \"layers.1.batchnorm.running_var\""));
    assert_non_null(strstr(json, "\"in_shape\": [2, 2, 2], \"out_shape\": [8, 1, 1]"));
    free(json);
    trainer_fini(&t);
}

static void test_ff_output_layer_unused(void **state)
{
    (void)state;
    struct mt_trainer t;
    char *json = describe(DATA "model: {input: 20, hidden: [8, 6], classes: 3}\nrule: ff\n"
                          "batch: 8\nepochs: 1\n", &t);
    assert_false(describe_tensor_used(&t, "W3"));
    assert_false(describe_tensor_used(&t, "b3"));
    assert_true(describe_tensor_used(&t, "W2"));
    assert_true(describe_tensor_used(&t, "b1"));
    const char *w3 = strstr(json, "\"weight\": \"W3\""), *u = strstr(json, "\"unused\": true");
    assert_non_null(w3);
    assert_non_null(u);
    assert_true(u > w3);                           /* the output layer only */
    assert_null(strstr(u + 1, "\"unused\""));
    assert_non_null(strstr(json, "\"goodness_layers\": [2]"));
    float lo = number_after(json, "\"label_off\": "), hi = number_after(json, "\"label_on\": ");
    assert_true(lo == t.norm.shift);
    assert_true(hi == 255.0f * t.norm.scale + t.norm.shift);
    free(json);
    trainer_fini(&t);
}

static void test_binary_rules_and_tinyfoa_stage(void **state)
{
    (void)state;
    struct mt_trainer t;
    char *json = describe(DATA "model: {input: 20, hidden: [8], classes: 3}\n"
                          "rule: {name: bp, binary: true}\nbatch: 8\nepochs: 1\n", &t);
    assert_non_null(strstr(json, "\"kind\": \"binary\""));
    assert_non_null(strstr(json, "\"evaluation\": {\"batch\": 8, \"epoch\": 0}"));
    free(json);
    trainer_fini(&t);
    json = describe(DATA "model: {input: 20, hidden: [8, 8], classes: 3}\nrule: tinyfoa\n"
                    "batch: 8\nepochs: 2\n", &t);
    assert_non_null(strstr(json, "\"kind\": \"tinyfoa\", \"stage\": 1, \"stages\": 2"));
    struct mt_epoch_report r;
    struct mt_err err = {0};
    /* After epoch 1 the evaluation ran stage 1 (stage 2 is next). */
    assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
    free(json);
    assert_ok(describe_model(&t, &json, &err), err);
    assert_non_null(strstr(json, "\"kind\": \"tinyfoa\", \"stage\": 1, \"stages\": 2"));
    assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
    free(json);
    assert_ok(describe_model(&t, &json, &err), err);
    assert_non_null(strstr(json, "\"kind\": \"tinyfoa\", \"stage\": 2, \"stages\": 2"));
    free(json);
    trainer_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalisation_constants_round_trip),
        cmocka_unit_test(test_asa_sign_terms_per_weight_node),
        cmocka_unit_test(test_ff_output_layer_unused),
        cmocka_unit_test(test_binary_rules_and_tinyfoa_stage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
