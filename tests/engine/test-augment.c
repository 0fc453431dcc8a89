/* test-augment.c: dataset.augment (augment.h). An augmented batch equals a
 * naive pad, crop and flip of the bytes followed by data_batch; the draws
 * are a pure function of (seed, epoch, sample) and change with the epoch
 * and the seed; a job stopped and resumed in a fresh trainer (at an epoch's
 * end and inside one) ends in the same bits as one run straight through;
 * evaluation is never augmented; the plan still equals the measured peaks;
 * bad settings are refused with the documented messages. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <unistd.h>

#include "augment.h"
#include "rng.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* The naive reference                                                      */

/* A dataset of n random samples of c x h x w bytes (malloc'd; free with
 * free_dataset). */
static void make_dataset(struct mt_dataset *d, long n, int c, int h, int w, uint64_t seed)
{
    struct mt_rng r;
    rng_seed(&r, seed);
    *d = (struct mt_dataset){.n = n, .dim = c * h * w, .c = c, .h = h, .w = w, .classes = 10};
    d->images = malloc((size_t)n * (size_t)d->dim);
    d->labels = malloc((size_t)n);
    assert_non_null(d->images);
    assert_non_null(d->labels);
    for (size_t k = 0; k < (size_t)n * (size_t)d->dim; k++)
        d->images[k] = (uint8_t)(1 + rng_below(&r, 255)); /* no zeros: padding shows */
    for (long i = 0; i < n; i++)
        d->labels[i] = (uint8_t)rng_below(&r, 10);
}

static void free_dataset(struct mt_dataset *d)
{
    free(d->images);
    free(d->labels);
}

/* out (c, h, w) = sample src padded with p zero pixels on each side
 * (c, h+2p, w+2p), cropped at (dy, dx) back to h x w, then mirrored left to
 * right when flip: three plain steps, each on its own buffer. */
static void reference_image(uint8_t *out, const uint8_t *src, int c, int h, int w, int p,
                            struct mt_aug_draw d)
{
    int ph = h + 2 * p, pw = w + 2 * p;
    uint8_t *padded = calloc((size_t)c * ph * pw, 1), *crop = malloc((size_t)c * h * w);
    assert_non_null(padded);
    assert_non_null(crop);
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                padded[((size_t)ch * ph + i + p) * pw + j + p] = src[((size_t)ch * h + i) * w + j];
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                crop[((size_t)ch * h + i) * w + j] = padded[((size_t)ch * ph + i + d.dy) * pw + j + d.dx];
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                out[((size_t)ch * h + i) * w + j] = crop[((size_t)ch * h + i) * w
                                                         + (d.flip ? w - 1 - j : j)];
    free(padded);
    free(crop);
}

/* augment_batch of idx equals, sample by sample, data_batch of the
 * reference image at the same draw; returns how many samples were flipped
 * and which offsets were seen (seen[dy] |= 1, seen[dx] |= 2). */
static int assert_batch_matches_reference(const struct mt_dataset *d, const struct mt_norm *norm,
                                          const struct mt_augment *a, uint64_t key,
                                          const uint32_t *idx, int B, unsigned char *seen)
{
    size_t dim = (size_t)d->dim;
    float *x = malloc((size_t)B * dim * sizeof *x), *want = malloc(dim * sizeof *want);
    uint8_t *y = malloc((size_t)B), *img = malloc(dim), ylab;
    assert_true(x && want && y && img);
    augment_batch(d, norm, a, key, idx, B, x, y);
    int flips = 0;
    for (int i = 0; i < B; i++) {
        struct mt_aug_draw dr = augment_draw(a, key, idx[i]);
        reference_image(img, d->images + (size_t)idx[i] * dim, d->c, d->h, d->w, a->crop, dr);
        struct mt_dataset one = *d;
        one.n = 1;
        one.images = img;
        one.labels = d->labels + idx[i];
        uint32_t zero = 0;
        data_batch(&one, norm, &zero, 1, want, &ylab);
        if (memcmp(x + (size_t)i * dim, want, dim * sizeof *want) != 0)
            fail_msg("crop %d flip %d: sample %u (dy %d, dx %d, flip %d) differs from the "
                     "reference", a->crop, a->flip, idx[i], dr.dy, dr.dx, dr.flip);
        assert_int_equal(y[i], ylab);
        flips += dr.flip;
        seen[dr.dy] |= 1;
        seen[dr.dx] |= 2;
    }
    free(x);
    free(want);
    free(y);
    free(img);
    return flips;
}

/* Every setting on a 2x5x4 image (crop up to 3 < 4), standard-normalised
 * (so the padding is pixel 0's value, not 0.0): the batch is the
 * reference's, every offset 0..2*crop occurs, and flips happen when asked
 * and only then. */
static void test_batch_equals_naive_pad_crop_flip(void **state)
{
    (void)state;
    static const struct mt_augment cases[] = {{1, 0}, {0, 1}, {2, 1}, {3, 1}, {3, 0}};
    struct mt_dataset d;
    struct mt_norm norm;
    const int B = 96;
    make_dataset(&d, B, 2, 5, 4, 11);
    data_norm_fit(&d, MT_NORM_STANDARD, &norm);
    assert_true(norm.shift != 0.0f);
    uint32_t idx[96];
    for (int i = 0; i < B; i++)
        idx[i] = (uint32_t)((i * 37) % B); /* out of order */
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        unsigned char seen[8] = {0};
        const struct mt_augment *a = &cases[k];
        int flips = assert_batch_matches_reference(&d, &norm, a, augment_epoch_key(5, (int)k),
                                                   idx, B, seen);
        if (a->flip)
            assert_in_range(flips, B / 4, 3 * B / 4);
        else
            assert_int_equal(flips, 0);
        for (int o = 0; o <= 2 * a->crop; o++)
            if (seen[o] != 3)
                fail_msg("crop %d: offset %d never drawn (%d)", a->crop, o, seen[o]);
    }
    free_dataset(&d);
}

/* ------------------------------------------------------------------------ */
/* The draws                                                                */

static int same_draw(struct mt_aug_draw a, struct mt_aug_draw b)
{
    return a.dy == b.dy && a.dx == b.dx && a.flip == b.flip;
}

/* How many of samples 0..n-1 draw differently under the two keys. */
static int draws_differing(const struct mt_augment *a, uint64_t k1, uint64_t k2, int n)
{
    int diff = 0;
    for (int i = 0; i < n; i++)
        diff += !same_draw(augment_draw(a, k1, (uint32_t)i), augment_draw(a, k2, (uint32_t)i));
    return diff;
}

/* The same (seed, epoch, sample) draws the same whenever it is asked and
 * whatever was drawn before; another epoch or another seed draws anew (with
 * 5 x 5 offsets and a flip, two draws agree by chance 1 time in 50). */
static void test_draws_are_a_function_of_seed_epoch_sample(void **state)
{
    (void)state;
    const struct mt_augment a = {2, 1};
    const int n = 400;
    uint64_t k = augment_epoch_key(42, 3);
    assert_true(k == augment_epoch_key(42, 3));
    struct mt_aug_draw first[400];
    for (int i = 0; i < n; i++)
        first[i] = augment_draw(&a, k, (uint32_t)i);
    for (int i = n - 1; i >= 0; i--) { /* backwards, after draws of another key */
        (void)augment_draw(&a, augment_epoch_key(7, 0), (uint32_t)i);
        if (!same_draw(first[i], augment_draw(&a, augment_epoch_key(42, 3), (uint32_t)i)))
            fail_msg("sample %d drew differently the second time", i);
    }
    assert_in_range(draws_differing(&a, k, augment_epoch_key(42, 4), n), n * 9 / 10, n);
    assert_in_range(draws_differing(&a, k, augment_epoch_key(42, 0), n), n * 9 / 10, n);
    assert_in_range(draws_differing(&a, k, augment_epoch_key(43, 3), n), n * 9 / 10, n);
    /* whole epochs' keys are all distinct */
    for (int e = 0; e < 64; e++)
        for (int f = e + 1; f < 64; f++)
            assert_true(augment_epoch_key(42, e) != augment_epoch_key(42, f));
    /* flip alone: offsets stay at crop (0), flips near half */
    const struct mt_augment flip = {0, 1};
    int flips = 0;
    for (int i = 0; i < n; i++) {
        struct mt_aug_draw d = augment_draw(&flip, k, (uint32_t)i);
        assert_true(d.dy == 0 && d.dx == 0);
        flips += d.flip;
    }
    assert_in_range(flips, n * 4 / 10, n * 6 / 10);
}

/* ------------------------------------------------------------------------ */
/* Training                                                                 */

/* A tiny conv net on 1x6x6 synthetic images (6 steps an epoch), plain SGD
 * so that only the weights carry over a checkpoint. */
static const char net_yaml[] =
    "name: aug-resume\n"
    "dataset: {name: synthetic, synthetic_train: 96, synthetic_test: 32,\n"
    "          augment: {crop: 2, flip: true}}\n"
    "model:\n"
    "  input: [1, 6, 6]\n"
    "  classes: 4\n"
    "  layers: [{conv: {channels: 3, kernel: 3}}, relu, flatten, {dense: 4}]\n"
    "rule: bp\n"
    "optimizer: {name: sgd, lr: 0.05}\n"
    "batch: 16\n"
    "epochs: 2\n"
    "seed: 5\n"
    "threads: 1\n";

static int stop_at(void *ud, const struct mt_trainer *t, const struct mt_step_result *r)
{
    (void)r;
    return t->step == *(const long *)ud;
}

/* Train s from the start, stopping after `stop` steps, then go on in a
 * fresh trainer (as a worker resumed from that checkpoint: position and
 * weights) to the end; the weights (malloc'd) and the last epoch's loss. */
static float *train_resumed(const struct mt_spec *s, long stop, double *loss)
{
    struct mt_trainer a, b;
    struct mt_err err = {0};
    struct mt_epoch_report r;
    struct mt_train_pos pos;
    assert_ok(trainer_init(&a, s, &err), err);
    trainer_set_step_fn(&a, stop_at, &stop);
    int rc;
    while ((rc = trainer_run_epoch(&a, NULL, NULL, &r, &err)) == 0)
        ;
    assert_int_equal(rc, MT_E_CANCELLED);
    trainer_position(&a, &pos);
    assert_int_equal(pos.step, stop);
    size_t P = model_param_count(&a.net.d);
    assert_ok(trainer_init(&b, s, &err), err);
    memcpy(b.net.params, a.net.params, P * sizeof(float));
    trainer_fini(&a);
    assert_ok(trainer_seek(&b, &pos, &err), err);
    while (b.epoch < s->epochs)
        assert_ok(trainer_run_epoch(&b, NULL, NULL, &r, &err), err);
    float *w = malloc(P * sizeof *w);
    assert_non_null(w);
    memcpy(w, b.net.params, P * sizeof *w);
    *loss = r.loss;
    trainer_fini(&b);
    return w;
}

static float *train_straight(const struct mt_spec *s, double *loss)
{
    struct mt_trainer t;
    struct mt_err err = {0};
    struct mt_epoch_report r;
    assert_ok(trainer_init(&t, s, &err), err);
    for (int e = 0; e < s->epochs; e++)
        assert_ok(trainer_run_epoch(&t, NULL, NULL, &r, &err), err);
    size_t P = model_param_count(&t.net.d);
    float *w = malloc(P * sizeof *w);
    assert_non_null(w);
    memcpy(w, t.net.params, P * sizeof *w);
    *loss = r.loss;
    trainer_fini(&t);
    return w;
}

/* s trained straight through, and stopped after each of stops[0..n-1]
 * steps then resumed in a fresh trainer, ends in the same weights and last
 * epoch loss, bit for bit; and the augmentation is really on: without it
 * the weights differ. */
static void assert_resumes_exactly(const struct mt_spec *s, const long *stops, int n)
{
    struct mt_spec off = *s;
    size_t P = model_param_count(&s->model);
    double l_straight, l_resumed, l_off;
    float *straight = train_straight(s, &l_straight);
    for (int i = 0; i < n; i++) {
        float *resumed = train_resumed(s, stops[i], &l_resumed);
        if (memcmp(straight, resumed, P * sizeof(float)) != 0)
            fail_msg("resumed after %ld steps: other weights than straight through", stops[i]);
        assert_memory_equal(&l_straight, &l_resumed, sizeof l_straight);
        free(resumed);
    }
    off.data.augment = (struct mt_augment){0};
    float *plain = train_straight(&off, &l_off);
    assert_true(memcmp(straight, plain, P * sizeof(float)) != 0);
    free(straight);
    free(plain);
}

/* Two epochs straight, and one epoch + checkpoint + one more in a fresh
 * trainer (and a stop 2 steps into the second epoch), end in the same
 * bits. */
static void test_resume_sees_the_same_augmentation(void **state)
{
    (void)state;
    struct mt_spec s;
    test_parse_spec(net_yaml, &s);
    assert_int_equal(s.data.augment.crop, 2);
    static const long stops[] = {6, 6 + 2};   /* 6 steps an epoch */
    assert_resumes_exactly(&s, stops, 2);
}

/* An IDX file in dir: n images of 1 x h x w random bytes (magic 0x803),
 * or n labels 0..3 (0x801). */
static void write_idx(const char *dir, const char *name, int images, long n, int h, int w,
                      char *path)
{
    struct mt_rng r;
    size_t per = images ? (size_t)h * w : 1, head = images ? 16 : 8;
    size_t len = head + (size_t)n * per;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    uint32_t words[] = {images ? 0x803u : 0x801u, (uint32_t)n, (uint32_t)h, (uint32_t)w};
    for (size_t k = 0; k < head / 4; k++)
        for (int b = 0; b < 4; b++)
            buf[4 * k + (size_t)b] = (uint8_t)(words[k] >> (24 - 8 * b));
    rng_seed(&r, (uint64_t)len);
    for (size_t k = head; k < len; k++)
        buf[k] = (uint8_t)(images ? rng_below(&r, 256) : rng_below(&r, 4));
    snprintf(path, MT_PATH_LEN, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(buf);
}

/* The MLP form sees the image as its 36 values: a 1-hidden-layer MLP on
 * 1x6x6 IDX images (48 training samples, 3 steps an epoch) trains to the
 * same bits as the same MLP written as a layer list, both augmented; it
 * resumes in a fresh trainer inside epoch 2 in the same bits as straight
 * through; without the augmentation its weights differ. */
static void test_mlp_form_is_augmented_and_resumes(void **state)
{
    (void)state;
    char dir[] = "/tmp/mt-test-augment-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct mt_spec h, g;
    test_spec(&h, "bp", 1, 12, MT_ACT_RELU, 16, 48);
    h.data.kind = MT_DATA_IDX;
    write_idx(dir, "train-img", 1, 48, 6, 6, h.data.train_images);
    write_idx(dir, "train-lbl", 0, 48, 6, 6, h.data.train_labels);
    write_idx(dir, "test-img", 1, 16, 6, 6, h.data.test_images);
    write_idx(dir, "test-lbl", 0, 16, 6, 6, h.data.test_labels);
    h.model.width[0] = 36;
    h.optim.kind = MT_OPT_SGD;
    h.optim.lr = 0.05f;
    h.data.augment = (struct mt_augment){2, 1};
    g = h;
    test_as_layer_list(&g);   /* input 36x1x1; the crop follows the data's 1x6x6 */
    assert_train_identically(&h, &g, 3, NULL, NULL);
    h.epochs = 2;
    static const long stops[] = {3 + 1};   /* 3 steps an epoch */
    assert_resumes_exactly(&h, stops, 1);
    static const char *const names[] = {"train-img", "train-lbl", "test-img", "test-lbl"};
    for (int i = 0; i < 4; i++) {
        char p[MT_PATH_LEN];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        assert_int_equal(unlink(p), 0);
    }
    assert_int_equal(rmdir(dir), 0);
}

/* Evaluation sees the test images as they are: the same weights give the
 * same test loss with augmentation on and off. */
static void test_evaluation_is_not_augmented(void **state)
{
    (void)state;
    struct mt_spec s, off;
    struct mt_trainer a, b;
    struct mt_err err = {0};
    double la, lb, acc_a, acc_b;
    test_parse_spec(net_yaml, &s);
    off = s;
    off.data.augment = (struct mt_augment){0};
    assert_ok(trainer_init(&a, &s, &err), err);
    assert_ok(trainer_init(&b, &off, &err), err);
    assert_ok(trainer_evaluate(&a, &a.test, &la, &acc_a, &err), err);
    assert_ok(trainer_evaluate(&b, &b.test, &lb, &acc_b, &err), err);
    assert_memory_equal(&la, &lb, sizeof la);
    assert_memory_equal(&acc_a, &acc_b, sizeof acc_a);
    trainer_fini(&a);
    trainer_fini(&b);
}

/* With augmentation on, MLP and layer list alike, the data category and
 * every phase are what the plan says: the crop needs no buffer. */
static void test_plan_matches_with_augmentation(void **state)
{
    (void)state;
    struct mt_spec s;
    struct mt_mem_stats st;
    struct mt_mem_plan plan;
    test_parse_spec(net_yaml, &s);
    assert_plan_matches(&s, &st, &plan);
    test_parse_spec("dataset: {name: synthetic, synthetic_train: 64, synthetic_test: 16,\n"
                    "          augment: {crop: 1, flip: true}}\n"
                    "model: {input: [1, 4, 8], layers: [flatten, {dense: 8}, relu, {dense: 3}],"
                    " classes: 3}\n"
                    "optimizer: {name: adam, lr: 0.01}\n"
                    "batch: 10\nepochs: 1\nthreads: 1\n", &s);
    assert_plan_matches(&s, &st, &plan);
}

/* ------------------------------------------------------------------------ */
/* Settings and refusals                                                    */

/* YAML: a mapping, `none`, an empty value or no key at all. */
static void test_yaml_forms(void **state)
{
    (void)state;
    struct mt_spec s;
    test_parse_spec(net_yaml, &s);
    assert_true(s.data.augment.crop == 2 && s.data.augment.flip == 1);
    static const char *const off[] = {"augment: none", "augment:", "augment: {}",
                                      "augment: {crop: 0, flip: false}", "normalize: standard"};
    for (size_t i = 0; i < sizeof off / sizeof *off; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, "dataset:\n  name: mnist\n  %s\nmodel: {hidden: [8]}\n"
                 "batch: 4\nepochs: 1\n", off[i]);
        test_parse_spec(yaml, &s);
        assert_false(augment_on(&s.data.augment));
    }
    test_parse_spec("dataset: {name: mnist, augment: {flip: yes}}\nmodel: {hidden: [8]}\n"
                    "batch: 4\nepochs: 1\n", &s);
    assert_true(s.data.augment.crop == 0 && s.data.augment.flip == 1);
}

/* The message of spec text that fails to parse, finish or plan (with the
 * image shape given as memtraind's probe gives it). */
static void assert_refused(const char *yaml, const struct mt_data_shape *shape, const char *want)
{
    struct mt_spec s;
    struct mt_err err = {0};
    struct mt_mem_plan plan;
    spec_init(&s);
    int rc = spec_parse_string(yaml, strlen(yaml), "test.yaml", &s, &err);
    if (!rc)
        rc = spec_finish(&s, &err);
    if (!rc && shape) {
        s.data.has_shape = 1;
        s.data.shape = *shape;
    }
    if (!rc)
        rc = trainer_plan(&s, &plan, &err);
    if (!rc)
        fail_msg("accepted: %s", yaml);
    assert_int_equal(rc, MT_E_INVAL);
    if (strcmp(err.msg, want) != 0)
        fail_msg("message\n  '%s'\nnot\n  '%s'", err.msg, want);
}

static void test_refusals_name_the_key(void **state)
{
    (void)state;
    const struct mt_data_shape fashion = {.train_n = 60000, .test_n = 10000, .dim = 784,
                                          .c = 1, .h = 28, .w = 28};
    assert_refused("dataset: {name: fashion-mnist, augment: {crop: -1}}\n"
                   "model: {hidden: [8]}\nbatch: 4\nepochs: 1\n", NULL,
                   "test.yaml:1: dataset.augment.crop: expected a non-negative integer, got '-1'");
    assert_refused("dataset: {name: fashion-mnist, augment: {crop: 28, flip: true}}\n"
                   "model: {hidden: [8]}\nbatch: 4\nepochs: 1\n", &fashion,
                   "dataset.augment.crop: must be at least 0 and less than the image's height "
                   "and width (dataset 'fashion-mnist': 28x28), got 28");
    assert_refused("dataset: {name: synthetic, augment: {flip: true}}\n"
                   "model: {input: 32, hidden: [8], classes: 4}\nbatch: 4\nepochs: 1\n", NULL,
                   "dataset.augment: the samples of dataset 'synthetic' are 1x1x32, not images: "
                   "crop and flip need a height and width of at least 2 (synthetic data are "
                   "images only for a layer list's model.input [c, h, w])");
    assert_refused("dataset: {name: synthetic, augment: {crop: 3}}\n"
                   "model: {input: [1, 3, 8], layers: [flatten, {dense: 4}], classes: 4}\n"
                   "batch: 4\nepochs: 1\n", NULL,
                   "dataset.augment.crop: must be at least 0 and less than the image's height "
                   "and width (dataset 'synthetic': 3x8), got 3");
    assert_refused("dataset: {name: mnist, augment: yes}\nmodel: {hidden: [8]}\n"
                   "batch: 4\nepochs: 1\n", NULL,
                   "test.yaml:1: dataset.augment: expected none or a mapping {crop, flip}, "
                   "got 'yes'");
    assert_refused("dataset: {name: mnist, augment: {crop: 1, mirror: true}}\n"
                   "model: {hidden: [8]}\nbatch: 4\nepochs: 1\n", NULL,
                   "test.yaml:1: dataset.augment.mirror: unknown key (expected one of: "
                   "crop, flip)");
    /* a spec built in code meets the same bounds in spec_finish */
    struct mt_spec s;
    struct mt_err err = {0};
    test_spec(&s, "bp", 1, 8, MT_ACT_RELU, 4, 40);
    s.data.augment.crop = -2;
    assert_int_equal(spec_finish(&s, &err), MT_E_INVAL);
    assert_string_equal(err.msg, "dataset.augment.crop: expected a non-negative integer, got -2");
    /* and trainer_init refuses what trainer_plan would */
    struct mt_trainer t;
    test_spec(&s, "bp", 1, 8, MT_ACT_RELU, 4, 40);
    s.data.augment.flip = 1;
    assert_int_equal(trainer_init(&t, &s, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "dataset.augment: the samples of dataset 'synthetic' are "
                                    "1x1x32, not images"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_equals_naive_pad_crop_flip),
        cmocka_unit_test(test_draws_are_a_function_of_seed_epoch_sample),
        cmocka_unit_test(test_resume_sees_the_same_augmentation),
        cmocka_unit_test(test_mlp_form_is_augmented_and_resumes),
        cmocka_unit_test(test_evaluation_is_not_augmented),
        cmocka_unit_test(test_plan_matches_with_augmentation),
        cmocka_unit_test(test_yaml_forms),
        cmocka_unit_test(test_refusals_name_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
