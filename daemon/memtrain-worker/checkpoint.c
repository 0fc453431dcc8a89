/* checkpoint.c: struct mt_trainer <-> protobuf CheckpointData (checkpoint.h).
 *
 * Going out, one allocation holds the message, its tensors' headers,
 * shapes and names; the tensors' bytes point into the trainer's arena
 * (floats are stored little-endian, which is this host's order, so a
 * checkpoint of hundreds of megabytes is never copied before packing).
 * Coming in, every tensor is checked against the job's model and optimizer
 * before the first byte is copied. */
#include "checkpoint.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "describe.h"
#include "graphnames.h"
#include "jobspec.h"
#include "memstats.h"
#include "spec.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "checkpoints store float32 little-endian: add byte swapping for this host");

/* Per layer W, b and, for batch-norm layers, gamma, beta and the running
 * mean and variance (a layer list: up to 4 per node, graphnames.h); then
 * the optimizer's two. */
#define MAX_WEIGHTS (4 * MT_MAX_NODES > 6 * MT_MAX_LAYERS ? 4 * MT_MAX_NODES : 6 * MT_MAX_LAYERS)
#define MAX_TENSORS (MAX_WEIGHTS + 2)
#define NAME_LEN GRAPH_NAME_LEN
#define MAX_RANK 4
#define RNG_BYTES 32

struct bundle {
    Memtrain__CheckpointData cd;     /* first: checkpoint_free frees the bundle through it */
    Memtrain__Tensor tensor[MAX_TENSORS];
    Memtrain__Tensor *weight_ptr[MAX_WEIGHTS];
    Memtrain__Tensor *optim_ptr[2];
    uint64_t shape[MAX_TENSORS][MAX_RANK];
    char name[MAX_TENSORS][NAME_LEN];
    uint8_t rng[RNG_BYTES];
    char *description;               /* malloc'd JSON (describe_model) */
    char *unused[MAX_WEIGHTS];       /* names in `name` of weights inference does not read */
};

/* The model's state as named tensors, in checkpoint order: W1, b1 (gamma1,
 * beta1, bn_mean1, bn_var1 for a batch-norm layer), W2, b2, ...; a layer
 * list's as graph_param_tensors names them (layers.0.conv.weight, ...). */
struct wtensor {
    char name[NAME_LEN];
    float *data;
    int rank;
    uint64_t shape[MAX_RANK];
};

static int graph_weight_tensors(const struct mt_net *net, struct wtensor *w)
{
    static struct graph_tensor gt[4 * MT_MAX_NODES];   /* the worker is one thread */
    int n = graph_param_tensors(&net->d, gt);
    for (int k = 0; k < n; k++) {
        memcpy(w[k].name, gt[k].name, NAME_LEN);
        w[k].data = (gt[k].stat ? net->stats : net->params) + gt[k].off;
        w[k].rank = gt[k].rank;
        for (int r = 0; r < MAX_RANK; r++)
            w[k].shape[r] = r < gt[k].rank ? (uint64_t)gt[k].shape[r] : 0;
    }
    return n;
}

static int weight_tensors(const struct mt_net *net, struct wtensor *w)
{
    const struct mt_model_desc *d = &net->d;
    int i = 0;
    if (model_is_graph(d))
        return graph_weight_tensors(net, w);
    for (int l = 1; l <= d->n_layers; l++) {
        uint64_t n = (uint64_t)d->width[l];
        struct { const char *name; float *data; int rank; } parts[] = {
            {"W", net->W[l], 2}, {"b", net->b[l], 1}, {"gamma", net->gamma[l], 1},
            {"beta", net->beta[l], 1}, {"bn_mean", net->run_mean[l], 1},
            {"bn_var", net->run_var[l], 1},
        };
        for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
            if (!parts[k].data)
                continue;
            snprintf(w[i].name, NAME_LEN, "%s%d", parts[k].name, l);
            w[i].data = parts[k].data;
            w[i].rank = parts[k].rank;
            w[i].shape[0] = n;
            w[i].shape[1] = parts[k].rank == 2 ? (uint64_t)d->width[l - 1] : 0;
            i++;
        }
    }
    return i;
}

/* The optimizer's state as named tensors: pointers and names, in order. */
static int optim_tensors(const struct mt_optim *o, float **data, const char **names)
{
    if (o->m && o->v) {
        data[0] = o->m, names[0] = "adam.m";
        data[1] = o->v, names[1] = "adam.v";
        return 2;
    }
    if (o->m) {
        data[0] = o->m, names[0] = "momentum";
        return 1;
    }
    return 0;
}

static uint64_t shape_elems(int rank, const uint64_t *shape)
{
    uint64_t n = 1;
    for (int r = 0; r < rank; r++)
        n *= shape[r];
    return n;
}

static Memtrain__Tensor *tensor_out(struct bundle *b, int i, const char *name, const float *data,
                                    int rank, const uint64_t *shape)
{
    Memtrain__Tensor *tn = &b->tensor[i];
    memtrain__tensor__init(tn);
    snprintf(b->name[i], NAME_LEN, "%.*s", NAME_LEN - 1, name);
    tn->name = b->name[i];
    memcpy(b->shape[i], shape, (size_t)rank * sizeof *shape);
    tn->n_shape = (size_t)rank;
    tn->shape = b->shape[i];
    tn->data.len = (size_t)shape_elems(rank, shape) * sizeof(float);
    tn->data.data = (uint8_t *)data;   /* borrowed; the message is only packed */
    return tn;
}

static void rng_out(uint8_t out[RNG_BYTES], const struct mt_rng *r)
{
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 8; k++)
            out[8 * i + k] = (uint8_t)(r->s[i] >> (8 * k));
}

static void rng_in(struct mt_rng *r, const uint8_t in[RNG_BYTES])
{
    for (int i = 0; i < 4; i++) {
        r->s[i] = 0;
        for (int k = 0; k < 8; k++)
            r->s[i] |= (uint64_t)in[8 * i + k] << (8 * k);
    }
}

int checkpoint_build(const struct mt_trainer *t, uint64_t job_id,
                     Memtrain__EpochProgress **history, size_t n_history,
                     Memtrain__CheckpointData **out, struct mt_err *err)
{
    struct mt_train_pos pos;
    *out = NULL;
    struct bundle *b = calloc(1, sizeof *b);
    if (!b)
        return mt_err_set(err, MT_E_NOMEM, "checkpoint: out of memory");
    Memtrain__CheckpointData *cd = &b->cd;
    memtrain__checkpoint_data__init(cd);
    int rc = jobspec_from_spec(&t->spec, &cd->spec, err);
    if (rc) {
        free(b);
        return mt_err_prefix(err, "checkpoint: ");
    }
    trainer_position(t, &pos);
    cd->format = CHECKPOINT_FORMAT;
    cd->job_id = job_id;
    cd->epoch = (uint32_t)pos.epoch;
    cd->step = (uint64_t)pos.step;
    cd->step_in_epoch = (uint64_t)pos.step_in_epoch;
    cd->partial_loss_sum = pos.loss_sum;
    cd->partial_hits = (uint64_t)pos.hits;
    rng_out(b->rng, &pos.shuffle_rng);
    cd->shuffle_rng.data = b->rng;
    cd->shuffle_rng.len = RNG_BYTES;

    struct wtensor w[MAX_WEIGHTS];
    int i = weight_tensors(&t->net, w);
    for (int k = 0; k < i; k++)
        b->weight_ptr[k] = tensor_out(b, k, w[k].name, w[k].data, w[k].rank, w[k].shape);
    cd->n_weights = (size_t)i;
    cd->weights = b->weight_ptr;
    for (int k = 0; k < i; k++)
        if (!describe_tensor_used(t, b->name[k]))
            b->unused[cd->n_unused++] = b->name[k];
    cd->unused = b->unused;
    if ((rc = describe_model(t, &b->description, err))) {
        checkpoint_free(cd);
        return mt_err_prefix(err, "checkpoint: ");
    }
    cd->description = b->description;

    float *od[2];
    const char *on[2];
    int no = optim_tensors(&t->opt, od, on);
    uint64_t on_shape[1] = {(uint64_t)t->opt.n};
    for (int k = 0; k < no; k++)
        b->optim_ptr[k] = tensor_out(b, i + k, on[k], od[k], 1, on_shape);
    cd->n_optimizer = (size_t)no;
    cd->optimizer = b->optim_ptr;
    cd->optimizer_t = (uint64_t)t->opt.t;

    cd->n_history = n_history;
    cd->history = history;
    *out = cd;
    return 0;
}

void checkpoint_free(Memtrain__CheckpointData *cd)
{
    if (!cd)
        return;
    jobspec_free(cd->spec);
    free(((struct bundle *)cd)->description);
    free(cd);   /* the bundle starts with the message */
}

/* ------------------------------------------------------------------------ */
/* CheckpointData -> trainer                                                */

static int check_model(const struct mt_model_desc *job, const Memtrain__JobSpec *js,
                       struct mt_err *err)
{
    struct mt_spec s;
    struct mt_err e2 = {0};
    spec_init(&s);
    if (!js)
        return mt_err_set(err, MT_E_INVAL, "checkpoint: no job spec");
    if (jobspec_to_spec(js, &s, &e2) || spec_finish(&s, &e2))
        return mt_err_set(err, MT_E_INVAL, "checkpoint: its spec: %.450s", e2.msg);
    const struct mt_model_desc *ck = &s.model;
    if (ck->n_layers != job->n_layers)
        return mt_err_set(err, MT_E_INVAL,
                          "checkpoint: model has %d weight layers, the job's has %d",
                          ck->n_layers, job->n_layers);
    for (int l = 0; l <= job->n_layers; l++) {
        if (ck->width[l] != job->width[l])
            return mt_err_set(err, MT_E_INVAL,
                              "checkpoint: model width %d at layer %d, the job's is %d",
                              ck->width[l], l, job->width[l]);
        if (l > 0 && l < job->n_layers && ck->act[l] != job->act[l])
            return mt_err_set(err, MT_E_INVAL,
                              "checkpoint: layer %d's activation is %s, the job's is %s", l,
                              act_name(ck->act[l]), act_name(job->act[l]));
    }
    return 0;
}

static int check_tensor(const Memtrain__Tensor *tn, const char *group, int index,
                        const char *name, int rank, const uint64_t *shape, struct mt_err *err)
{
    if (!tn || !tn->name || strcmp(tn->name, name) != 0)
        return mt_err_set(err, MT_E_INVAL, "checkpoint: %s[%d] is '%.64s', expected '%s'", group,
                          index, tn && tn->name ? tn->name : "", name);
    uint64_t count = shape_elems(rank, shape);
    int shape_ok = tn->n_shape == (size_t)rank;
    for (int r = 0; shape_ok && r < rank; r++)
        shape_ok = tn->shape[r] == shape[r];
    if (!shape_ok) {
        char want[96];
        size_t o = 0;
        for (int r = 0; r < rank && o < sizeof want; r++)
            o += (size_t)snprintf(want + o, sizeof want - o, "%s%llu", r ? ", " : "",
                                  (unsigned long long)shape[r]);
        return mt_err_set(err, MT_E_INVAL, "checkpoint: %s should have shape (%s)", name, want);
    }
    if (tn->data.len != count * sizeof(float))
        return mt_err_set(err, MT_E_INVAL,
                          "checkpoint: %s has %zu bytes of data, its shape needs %llu", name,
                          tn->data.len, (unsigned long long)(count * sizeof(float)));
    return 0;
}

static int check_tensors(const struct mt_trainer *t, const Memtrain__CheckpointData *cd,
                         struct mt_err *err)
{
    struct wtensor w[MAX_WEIGHTS];
    int nw = weight_tensors(&t->net, w), rc;
    if (cd->n_weights != (size_t)nw)
        return mt_err_set(err, MT_E_INVAL, "checkpoint: %zu weight tensors, the model has %d",
                          cd->n_weights, nw);
    for (int k = 0; k < nw; k++)
        if ((rc = check_tensor(cd->weights[k], "weights", k, w[k].name, w[k].rank, w[k].shape,
                               err)))
            return rc;
    float *od[2];
    const char *on[2];
    int no = optim_tensors(&t->opt, od, on);
    if (cd->n_optimizer != (size_t)no)
        return mt_err_set(err, MT_E_INVAL,
                          "checkpoint: %zu optimizer state tensors, the job's optimizer %s "
                          "keeps %d", cd->n_optimizer, optim_kind_name(t->opt.s.kind), no);
    uint64_t on_shape[1] = {(uint64_t)t->opt.n};
    for (int k = 0; k < no; k++)
        if ((rc = check_tensor(cd->optimizer[k], "optimizer", k, on[k], 1, on_shape, err)))
            return rc;
    return 0;
}

int checkpoint_restore(struct mt_trainer *t, const Memtrain__CheckpointData *cd,
                       struct mt_err *err)
{
    int rc;
    if (cd->format != CHECKPOINT_FORMAT)
        return mt_err_set(err, MT_E_INVAL, "checkpoint: format %u, this worker reads format %d",
                          cd->format, CHECKPOINT_FORMAT);
    if ((rc = check_model(&t->net.d, cd->spec, err)) || (rc = check_tensors(t, cd, err)))
        return rc;
    if (cd->shuffle_rng.len != RNG_BYTES)
        return mt_err_set(err, MT_E_INVAL,
                          "checkpoint: shuffle_rng has %zu bytes, expected %d",
                          cd->shuffle_rng.len, RNG_BYTES);
    if (cd->epoch > INT_MAX || cd->step > LONG_MAX || cd->step_in_epoch > cd->step ||
        cd->partial_hits > (uint64_t)t->train.n)
        return mt_err_set(err, MT_E_INVAL, "checkpoint: step counts out of range");
    struct mt_train_pos pos = {
        .epoch = (int)cd->epoch,
        .step = (long)cd->step,
        .step_in_epoch = (long)cd->step_in_epoch,
        .loss_sum = cd->partial_loss_sum,
        .hits = (long)cd->partial_hits,
    };
    rng_in(&pos.shuffle_rng, cd->shuffle_rng.data);
    if ((rc = trainer_seek(t, &pos, err)))   /* checks first, changes t only on success */
        return mt_err_prefix(err, "checkpoint: ");

    struct wtensor w[MAX_WEIGHTS];
    int nw = weight_tensors(&t->net, w);
    for (int k = 0; k < nw; k++)
        memcpy(w[k].data, cd->weights[k]->data.data, cd->weights[k]->data.len);
    float *od[2];
    const char *on[2];
    int no = optim_tensors(&t->opt, od, on);
    for (int k = 0; k < no; k++)
        memcpy(od[k], cd->optimizer[k]->data.data, cd->optimizer[k]->data.len);
    t->opt.t = (long)cd->optimizer_t;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Progress figures                                                         */

/* Append one metric to out (up to MT_MAX_RULE_METRICS), the name copied. */
static void epoch_metric_add(struct epoch_msg *out, const char *name, size_t max_len,
                             double value)
{
    size_t i = out->ep.n_rule_metrics;
    if (i >= MT_MAX_RULE_METRICS)
        return;
    snprintf(out->name[i], sizeof out->name[i], "%.*s", (int)max_len, name ? name : "");
    memtrain__rule_metric__init(&out->metric[i]);
    out->metric[i].name = out->name[i];
    out->metric[i].value = value;
    out->metric_ptr[i] = &out->metric[i];
    out->ep.n_rule_metrics = i + 1;
    out->ep.rule_metrics = out->metric_ptr;
}

void checkpoint_epoch_progress(struct epoch_msg *out, const struct mt_epoch_report *rep)
{
    Memtrain__EpochProgress *ep = &out->ep;
    memtrain__epoch_progress__init(ep);
    ep->epoch = (uint32_t)rep->epoch;
    ep->loss = rep->loss;
    ep->train_accuracy = rep->train_accuracy;
    ep->test_accuracy = rep->test_accuracy;
    ep->seconds = rep->seconds;
    ep->samples_per_second = rep->samples_per_second;
    ep->lr = rep->lr;
    memstats_from_peaks(&out->mem, &rep->mem, rep->rss_peak);
    ep->memory = &out->mem;
    for (int i = 0; i < rep->n_metrics && i < MT_MAX_RULE_METRICS; i++)
        epoch_metric_add(out, rep->metrics[i].name, sizeof rep->metrics[i].name,
                         rep->metrics[i].value);
}

void checkpoint_epoch_copy(struct epoch_msg *out, const Memtrain__EpochProgress *src)
{
    Memtrain__EpochProgress *ep = &out->ep;
    memtrain__epoch_progress__init(ep);
    ep->epoch = src->epoch;
    ep->loss = src->loss;
    ep->train_accuracy = src->train_accuracy;
    ep->test_accuracy = src->test_accuracy;
    ep->seconds = src->seconds;
    ep->samples_per_second = src->samples_per_second;
    ep->lr = src->lr;
    memstats_copy(&out->mem, src->memory);
    ep->memory = &out->mem;
    for (size_t i = 0; i < src->n_rule_metrics; i++)
        if (src->rule_metrics[i])
            epoch_metric_add(out, src->rule_metrics[i]->name,
                             sizeof ((struct mt_rule_metric *)0)->name,
                             src->rule_metrics[i]->value);
}
