/* train.c: one training job driven epoch by epoch (train.h). */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "augment.h"
#include "blas.h"
#include "par.h"
#include "graph.h"
#include "loss.h"
#include "memtrain/procstat.h"
#include "rules/common.h"

#define F4 sizeof(float)

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Bytes the trainer itself charges to the data category beyond the dataset:
 * the float batch, its labels, the shuffle order and the evaluation indices. */
static size_t batch_bytes(const struct mt_spec *s, long train_n)
{
    size_t B = (size_t)s->batch;
    return B * (size_t)s->model.width[0] * F4 + B + (size_t)train_n * 4 + B * 4;
}

/* The evaluation forward's workspace: the rolling buffers of an MLP, or a
 * layer list's evaluation slots. */
static size_t eval_bytes(const struct mt_spec *s)
{
    if (!model_is_graph(&s->model))
        return rule_rolling_bytes(&s->model, s->batch);
    struct graph_mem m;
    graph_eval_plan(&s->model, s->batch, rule_find(s->rule.name)->keep, &m);
    return graph_eval_floats(&m) * F4;
}

void trainer_plan_shape(const struct mt_spec *s, const struct mt_data_shape *shape,
                        struct mt_mem_plan *plan)
{
    const struct mt_rule *rule = rule_find(s->rule.name);
    struct mt_mem_plan rp;
    memset(plan, 0, sizeof *plan);
    rule->plan(s, &rp);
    size_t P = model_param_count(&s->model);
    size_t eval_ws = eval_bytes(s);

    plan->cat[MT_MEM_PARAMS] = (P + model_stat_count(&s->model)) * F4;
    plan->cat[MT_MEM_OPTIM] = optim_state_bytes(&s->optim, P);
    plan->cat[MT_MEM_DATA] = data_bytes(shape) + batch_bytes(s, shape->train_n);
    size_t base = plan->cat[MT_MEM_PARAMS] + plan->cat[MT_MEM_OPTIM] + plan->cat[MT_MEM_DATA];
    arena_plan_add(plan, &rp);
    plan->cat[MT_MEM_WORKSPACE] =
        rp.cat[MT_MEM_WORKSPACE] > eval_ws ? rp.cat[MT_MEM_WORKSPACE] : eval_ws;
    for (int p = 0; p < MT_PHASE_N; p++)
        plan->phase[p] = base + rp.phase[p];
    plan->phase[MT_PHASE_IDLE] += eval_ws;
    plan->total = 0;
    for (int p = 0; p < MT_PHASE_N; p++)
        if (plan->phase[p] > plan->total)
            plan->total = plan->phase[p];
}

int trainer_plan(const struct mt_spec *spec, struct mt_mem_plan *plan, struct mt_err *err)
{
    struct mt_spec s = *spec;
    struct mt_data_shape shape;
    int rc = s.resolved ? 0 : spec_finish(&s, err);
    if (rc)
        return rc;
    if ((rc = data_probe(&s.data, &shape, err)) ||
        (rc = augment_check(&s.data.augment, &shape, data_kind_name(s.data.kind), err)))
        return rc;
    trainer_plan_shape(&s, &shape, plan);
    return 0;
}

static int check_data(struct mt_trainer *t, struct mt_err *err)
{
    const struct mt_model_desc *d = &t->spec.model;
    int C = d->width[d->n_layers];
    if (t->train.dim != d->width[0])
        return mt_err_set(err, MT_E_INVAL,
                          "%s: samples have %d values but model.input is %d", t->train.source,
                          t->train.dim, d->width[0]);
    if (t->train.classes > C || t->test.classes > C)
        return mt_err_set(err, MT_E_INVAL, "%s: labels go up to %d but model.classes is %d",
                          t->train.source, (t->train.classes > t->test.classes
                                                ? t->train.classes : t->test.classes) - 1, C);
    if (t->train.n < 1 || t->test.n < 1)
        return mt_err_set(err, MT_E_INVAL, "%s: no samples to train or test on",
                          t->train.source);
    struct mt_data_shape shape = data_shape_of(&t->train, &t->test);
    return augment_check(&t->spec.data.augment, &shape, data_kind_name(t->spec.data.kind), err);
}

static int alloc_batch(struct mt_trainer *t, struct mt_err *err)
{
    size_t B = (size_t)t->spec.batch;
    struct mt_arena *a = t->arena;
    if (!(t->x = arena_alloc(a, MT_MEM_DATA, B * t->spec.model.width[0] * F4, err)) ||
        !(t->y = arena_alloc(a, MT_MEM_DATA, B, err)) ||
        !(t->perm = arena_alloc(a, MT_MEM_DATA, (size_t)t->train.n * 4, err)) ||
        !(t->eval_idx = arena_alloc(a, MT_MEM_DATA, B * 4, err)))
        return arena_error(a);
    for (long i = 0; i < t->train.n; i++)
        t->perm[i] = (uint32_t)i;
    return 0;
}

/* Reserve the stack once so no step has to grow it: the plan's largest
 * transient, plus the 64-byte rounding of each push. */
static int reserve_stack(struct mt_trainer *t, struct mt_err *err)
{
    struct mt_mem_stats st;
    size_t total = t->plan_total;
    if (!total) {
        struct mt_data_shape shape = data_shape_of(&t->train, &t->test);
        struct mt_mem_plan plan;
        trainer_plan_shape(&t->spec, &shape, &plan);
        total = plan.total;
    }
    arena_stats(t->arena, &st);
    size_t transient = total > st.total ? total - st.total : 0;
    return arena_reserve_stack(t->arena, transient + 64 * (3 * (size_t)MT_MAX_NODES + 8), err);
}

static int init_parts(struct mt_trainer *t, struct mt_err *err)
{
    int rc;
    struct mt_rng wrng;
    if ((rc = data_load(&t->spec.data, t->arena, &t->train, &t->test, err)))
        return rc;
    if ((rc = check_data(t, err)))
        return rc;
    data_norm_fit(&t->train, t->spec.data.normalize, &t->norm);
    if ((rc = model_net_init(&t->net, &t->spec.model, t->arena, err)))
        return rc;
    rng_derive(&wrng, t->spec.seed, 1);
    model_net_init_weights(&t->net, &wrng);
    if ((rc = optim_init(&t->opt, &t->spec.optim, model_param_count(&t->spec.model), t->arena,
                         err)))
        return rc;
    if ((rc = t->rule->init(t, err)))
        return rc;
    if ((rc = alloc_batch(t, err)))
        return rc;
    return reserve_stack(t, err);
}

int trainer_init(struct mt_trainer *t, const struct mt_spec *spec, struct mt_err *err)
{
    return trainer_init_planned(t, spec, 0, err);
}

/* An MLP's products are wide: OpenBLAS splits each over the job's threads.
 * A layer-list model's kernels split themselves over the engine's workers
 * (par.h), each running OpenBLAS on one thread. */
static void set_threads(const struct mt_spec *spec)
{
    int n = spec->threads > 0 ? spec->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (model_is_graph(&spec->model)) {
        par_set_threads(n);
        blas_set_threads(1);
    } else {
        par_set_threads(1);
        blas_set_threads(n);
    }
}

int trainer_init_planned(struct mt_trainer *t, const struct mt_spec *spec, size_t plan_total,
                         struct mt_err *err)
{
    memset(t, 0, sizeof *t);
    t->spec = *spec;
    t->plan_total = plan_total;
    int rc = t->spec.resolved ? 0 : spec_finish(&t->spec, err);
    if (rc)
        return rc;
    t->rule = rule_find(t->spec.rule.name);
    if (!t->rule)
        return mt_err_set(err, MT_E_INVAL, "unknown rule '%s'", t->spec.rule.name);
    set_threads(&t->spec);
    if (!(t->arena = arena_new(t->spec.memory_limit)))
        return mt_err_set(err, MT_E_NOMEM, "out of system memory creating the arena");
    rng_derive(&t->shuffle_rng, t->spec.seed, 2);
    if ((rc = init_parts(t, err))) {
        trainer_fini(t);
        return rc;
    }
    t->steps_per_epoch = (t->train.n + t->spec.batch - 1) / t->spec.batch;
    return 0;
}

void trainer_fini(struct mt_trainer *t)
{
    if (t->rule && t->rule->fini)
        t->rule->fini(t);
    t->rs.priv = NULL;
    free(t->gm);
    t->gm = NULL;
    arena_free(t->arena);
    t->arena = NULL;
}

int trainer_evaluate(struct mt_trainer *t, const struct mt_dataset *d, double *loss,
                     double *accuracy, struct mt_err *err)
{
    const struct mt_model_desc *md = &t->net.d;
    int B = t->spec.batch, C = md->width[md->n_layers], graph = model_is_graph(md);
    struct graph_mem gm;
    size_t half = eval_bytes(&t->spec) / 2;
    if (graph) {
        graph_eval_plan(md, B, t->rule->keep, &gm);
        half = graph_eval_floats(&gm) * F4; /* one region */
    }
    size_t mark = arena_mark(t->arena);
    arena_set_phase(t->arena, MT_PHASE_IDLE);
    float *b0 = arena_push(t->arena, MT_MEM_WORKSPACE, half, err);
    float *b1 = b0 && !graph ? arena_push(t->arena, MT_MEM_WORKSPACE, half, err) : b0;
    if (!b1) {
        arena_pop(t->arena, mark);
        return arena_error(t->arena);
    }
    double sum = 0;
    long hits = 0;
    for (long start = 0; start < d->n; start += B) {
        int nb = d->n - start < B ? (int)(d->n - start) : B;
        int correct;
        for (int i = 0; i < nb; i++)
            t->eval_idx[i] = (uint32_t)(start + i);
        data_batch(d, &t->norm, t->eval_idx, nb, t->x, t->y);
        const float *logits = t->rule->infer ? t->rule->infer(t, t->x, nb, b0, b1) : NULL;
        if (!logits)
            logits = graph ? graph_forward_eval(md, &gm, t->net.params, t->net.stats, t->x, nb, t, b0)
                           : rule_forward_rolling(&t->net, t->x, nb, b0, b1);
        sum += loss_softmax_xent(logits, t->y, nb, C, &correct) * nb;
        hits += correct;
    }
    arena_pop(t->arena, mark);
    *loss = sum / (double)d->n;
    *accuracy = (double)hits / (double)d->n;
    return 0;
}

void trainer_set_step_fn(struct mt_trainer *t, mt_step_fn fn, void *ud)
{
    t->step_fn = fn;
    t->step_ud = ud;
}

void trainer_position(const struct mt_trainer *t, struct mt_train_pos *pos)
{
    memset(pos, 0, sizeof *pos);
    pos->epoch = t->epoch;
    pos->step = t->step;
    pos->step_in_epoch = t->epoch_step;
    pos->shuffle_rng = t->epoch_step > 0 ? t->epoch_rng : t->shuffle_rng;
    pos->loss_sum = t->epoch_loss_sum;
    pos->hits = t->epoch_hits;
}

/* Advance rng exactly as data_shuffle over n items does, without a perm. */
static void shuffle_draws(struct mt_rng *rng, long n)
{
    for (long i = n - 1; i > 0; i--)
        (void)rng_below(rng, (uint32_t)(i + 1));
}

int trainer_seek(struct mt_trainer *t, const struct mt_train_pos *pos, struct mt_err *err)
{
    long spe = t->steps_per_epoch, n = t->train.n;
    if (pos->epoch < 0 || pos->epoch > t->spec.epochs)
        return mt_err_set(err, MT_E_INVAL, "resume at epoch %d: the job has %d epochs",
                          pos->epoch, t->spec.epochs);
    if (pos->step_in_epoch < 0 || pos->step_in_epoch > spe ||
        (pos->epoch == t->spec.epochs && pos->step_in_epoch > 0))
        return mt_err_set(err, MT_E_INVAL,
                          "resume at step %ld of epoch %d: epochs have %ld steps and the job %d "
                          "epochs", pos->step_in_epoch, pos->epoch + 1, spe, t->spec.epochs);
    if (pos->step != (long)pos->epoch * spe + pos->step_in_epoch)
        return mt_err_set(err, MT_E_INVAL,
                          "resume at step %ld does not match epoch %d, step %ld in it with %ld "
                          "steps an epoch (batch %d)", pos->step, pos->epoch, pos->step_in_epoch,
                          spe, t->spec.batch);
    if (pos->hits < 0 || pos->hits > n || !isfinite(pos->loss_sum))
        return mt_err_set(err, MT_E_INVAL, "resume: bad running sums (loss %g, hits %ld)",
                          pos->loss_sum, pos->hits);
    /* The order carries over between epochs, so it is rebuilt from the
     * seed; the generator's draws do not depend on the order, so the
     * check runs before anything changes. */
    struct mt_rng rng;
    rng_derive(&rng, t->spec.seed, 2);
    for (int e = 0; e < pos->epoch; e++)
        shuffle_draws(&rng, n);
    if (memcmp(&rng, &pos->shuffle_rng, sizeof rng) != 0)
        return mt_err_set(err, MT_E_INVAL,
                          "resume at epoch %d: the saved shuffle generator is not the one this "
                          "job's seed %llu gives", pos->epoch, (unsigned long long)t->spec.seed);
    for (long i = 0; i < n; i++)
        t->perm[i] = (uint32_t)i;
    rng_derive(&t->shuffle_rng, t->spec.seed, 2);
    for (int e = 0; e < pos->epoch; e++)
        data_shuffle(t->perm, n, &t->shuffle_rng);
    t->epoch = pos->epoch;
    t->step = pos->step;
    t->epoch_step = pos->step_in_epoch;
    t->epoch_loss_sum = pos->step_in_epoch > 0 ? pos->loss_sum : 0;
    t->epoch_hits = pos->step_in_epoch > 0 ? pos->hits : 0;
    t->epoch_seconds = 0;
    if (pos->step_in_epoch > 0) {
        t->epoch_rng = t->shuffle_rng;
        data_shuffle(t->perm, n, &t->shuffle_rng);
    }
    t->lr = pos->step > 0 ? optim_sched_lr(&t->spec.sched, t->spec.optim.lr, pos->step - 1, spe,
                                     t->spec.epochs)
                          : 0.0f;
    return 0;
}

int trainer_run_epoch(struct mt_trainer *t, mt_progress_fn progress, void *ud,
                      struct mt_epoch_report *rep, struct mt_err *err)
{
    const struct mt_spec *s = &t->spec;
    int B = s->batch;
    long n = t->train.n, every = t->steps_per_epoch / 100 + 1;
    double t0 = now_seconds();
    long trained = 0;                /* samples trained in this call */
    int rc, stop = 0;

    const struct mt_augment *aug = &s->data.augment;
    uint64_t aug_key = augment_epoch_key(s->seed, t->epoch); /* this epoch's crops and flips */
    memset(rep, 0, sizeof *rep);
    if (t->epoch_step == 0) {
        t->epoch_rng = t->shuffle_rng;
        data_shuffle(t->perm, n, &t->shuffle_rng);
        t->epoch_loss_sum = 0;
        t->epoch_hits = 0;
        t->epoch_seconds = 0;
    }
    for (long k = t->epoch_step; k < t->steps_per_epoch && !stop; k++) {
        int nb = n - k * B < B ? (int)(n - k * B) : B;
        struct mt_step_result r = {0};
        if (augment_on(aug))
            augment_batch(&t->train, &t->norm, aug, aug_key, t->perm + k * B, nb, t->x, t->y);
        else
            data_batch(&t->train, &t->norm, t->perm + k * B, nb, t->x, t->y);
        t->lr = optim_sched_lr(&s->sched, s->optim.lr, t->step, t->steps_per_epoch, s->epochs);
        if ((rc = t->rule->step(t, t->x, t->y, nb, &r, err))) {
            arena_set_phase(t->arena, MT_PHASE_IDLE);
            mt_err_prefix(err, "epoch %d, step %ld: ", t->epoch + 1, k + 1);
            return rc; /* err may be NULL */
        }
        arena_set_phase(t->arena, MT_PHASE_IDLE);
        t->step++;
        t->epoch_step = k + 1;
        t->epoch_loss_sum += r.loss * nb;
        t->epoch_hits += r.correct;
        trained += nb;
        if (t->step_fn && t->step_fn(t->step_ud, t, &r))
            stop = 1;
        if (progress && ((k + 1) % every == 0 || k + 1 == t->steps_per_epoch)) {
            long seen = (k + 1) * B < n ? (k + 1) * B : n;
            if (progress(ud, k + 1, t->steps_per_epoch, t->epoch_loss_sum / (double)seen))
                stop = 1;
        }
    }
    double t1 = now_seconds();
    t->epoch_seconds += t1 - t0;
    if (stop)
        return mt_err_set(err, MT_E_CANCELLED, "cancelled in epoch %d", t->epoch + 1);
    if ((rc = trainer_evaluate(t, &t->test, &rep->test_loss, &rep->test_accuracy, err))) {
        mt_err_prefix(err, "epoch %d, evaluation: ", t->epoch + 1);
        return rc;
    }
    t->epoch++;
    t->epoch_step = 0;
    rep->epoch = t->epoch;
    rep->loss = t->epoch_loss_sum / (double)n;
    rep->train_accuracy = (double)t->epoch_hits / (double)n;
    rep->seconds = t->epoch_seconds;
    rep->eval_seconds = now_seconds() - t1;
    rep->samples_per_second = t1 > t0 ? (double)trained / (t1 - t0) : 0.0;
    rep->lr = t->lr;
    if (t->rule->epoch_metrics)
        rep->n_metrics = t->rule->epoch_metrics(t, rep->metrics, MT_MAX_RULE_METRICS);
    arena_stats(t->arena, &rep->mem);
    struct mt_procstat ps;
    mt_procstat_read(0, &ps, NULL);
    rep->rss_peak = (long)ps.hwm;
    rep->rss_now = (long)ps.rss;
    return 0;
}
