/* jsonmsg.c: protocol messages as JSON objects for `mtctl --json`.
 *
 * Member names are the .proto field names; states are their names
 * ("RUNNING"); times are Unix milliseconds and sizes bytes, as on the wire.
 * A oneof-wrapped setting that was not given is written as null. */
#include "fmt.h"

void json_memory_stats(struct json *j, const char *key, const Memtrain__MemoryStats *m)
{
    if (!m) {
        json_null(j, key);
        return;
    }
    json_obj(j, key);
    json_u64(j, "params", m->params);
    json_u64(j, "grads", m->grads);
    json_u64(j, "optimizer", m->optimizer);
    json_u64(j, "activations", m->activations);
    json_u64(j, "workspace", m->workspace);
    json_u64(j, "data", m->data);
    json_u64(j, "peak_total", m->peak_total);
    json_u64(j, "phase_peak_forward", m->phase_peak_forward);
    json_u64(j, "phase_peak_gradient", m->phase_peak_gradient);
    json_u64(j, "phase_peak_update", m->phase_peak_update);
    json_u64(j, "rss_peak_bytes", m->rss_peak_bytes);
    json_obj_end(j);
}

void json_memory_sample(struct json *j, const char *key, const Memtrain__MemorySample *s)
{
    if (!s) {
        json_null(j, key);
        return;
    }
    json_obj(j, key);
    json_i64(j, "time", s->time);
    json_memory_stats(j, "current", s->current);
    json_memory_stats(j, "peak", s->peak);
    json_u64(j, "rss_bytes", s->rss_bytes);
    json_u64(j, "hwm_bytes", s->hwm_bytes);
    json_u64(j, "limit", s->limit);
    json_memory_stats(j, "interval_peak", s->interval_peak);  /* null from older daemons */
    json_u64(j, "interval_steps", s->interval_steps);
    json_obj_end(j);
}

void json_epoch(struct json *j, const char *key, const Memtrain__EpochProgress *e)
{
    if (!e) {
        json_null(j, key);
        return;
    }
    json_obj(j, key);
    json_u64(j, "epoch", e->epoch);
    json_double(j, "loss", e->loss);
    json_double(j, "train_accuracy", e->train_accuracy);
    json_double(j, "test_accuracy", e->test_accuracy);
    json_double(j, "seconds", e->seconds);
    json_double(j, "samples_per_second", e->samples_per_second);
    json_float(j, "lr", e->lr);
    json_memory_stats(j, "memory", e->memory);
    json_obj(j, "rule_metrics");   /* {"li.2": 0.031, ...}; {} when the rule reports none */
    for (size_t i = 0; i < e->n_rule_metrics; i++)
        if (e->rule_metrics[i])
            json_double(j, e->rule_metrics[i]->name ? e->rule_metrics[i]->name : "",
                        e->rule_metrics[i]->value);
    json_obj_end(j);
    json_obj_end(j);
}

void json_step(struct json *j, const char *key, const Memtrain__StepProgress *s)
{
    if (!s) {
        json_null(j, key);
        return;
    }
    json_obj(j, key);
    json_u64(j, "step", s->step);
    json_u64(j, "epoch", s->epoch);
    json_double(j, "loss", s->loss);
    json_obj_end(j);
}

void json_job(struct json *j, const char *key, const Memtrain__Job *job)
{
    if (!job) {
        json_null(j, key);
        return;
    }
    char user[64];
    json_obj(j, key);
    json_u64(j, "id", job->id);
    json_str(j, "name", job->name);
    json_u64(j, "owner_uid", job->owner_uid);
    json_str(j, "owner", fmt_user(job->owner_uid, user, sizeof user));
    json_str(j, "state", fmt_state(job->state));
    json_str(j, "reason", job->reason);
    json_str(j, "waiting", job->waiting);
    json_i64(j, "submitted_at", job->submitted_at);
    json_i64(j, "started_at", job->started_at);
    json_i64(j, "finished_at", job->finished_at);
    json_str(j, "rule", job->rule);
    json_u64(j, "epochs_done", job->epochs_done);
    json_u64(j, "epochs", job->epochs);
    json_i64(j, "priority", job->priority);
    json_u64(j, "memory_limit", job->memory_limit);
    json_i64(j, "exit_code", job->exit_code);
    if (job->group_id)   /* its `submit --rules` group */
        json_u64(j, "group_id", job->group_id);
    json_obj(j, "labels");  /* {"k": "v"}, in submit order */
    for (size_t i = 0; i < job->n_labels; i++)
        if (job->labels[i])
            json_str(j, job->labels[i]->key, job->labels[i]->value);
    json_obj_end(j);
    json_memory_stats(j, "planned", job->planned);
    json_memory_stats(j, "measured", job->measured);
    json_epoch(j, "last_epoch", job->last_epoch);
    json_memory_sample(j, "memory", job->memory);
    json_obj_end(j);
}

static void json_dataset(struct json *j, const char *key, const Memtrain__DatasetSpec *d)
{
    if (!d) {
        json_null(j, key);
        return;
    }
    json_obj(j, key);
    json_str(j, "name", d->name);
    json_str(j, "dir", d->dir);
    json_str(j, "train_images", d->train_images);
    json_str(j, "train_labels", d->train_labels);
    json_str(j, "test_images", d->test_images);
    json_str(j, "test_labels", d->test_labels);
    json_str(j, "normalize", d->normalize);
    json_u64(j, "train_limit", d->train_limit);
    json_u64(j, "test_limit", d->test_limit);
    if (d->opt_synthetic_train_case)
        json_u64(j, "synthetic_train", d->synthetic_train);
    else
        json_null(j, "synthetic_train");
    if (d->opt_synthetic_test_case)
        json_u64(j, "synthetic_test", d->synthetic_test);
    else
        json_null(j, "synthetic_test");
    if (d->opt_synthetic_seed_case)
        json_u64(j, "synthetic_seed", d->synthetic_seed);
    else
        json_null(j, "synthetic_seed");
    json_obj(j, "augment");   /* {"crop": 0, "flip": false} = off */
    json_u64(j, "crop", d->augment ? d->augment->crop : 0);
    json_bool(j, "flip", d->augment && d->augment->flip);
    json_obj_end(j);
    json_obj_end(j);
}

static void json_model(struct json *j, const char *key, const Memtrain__ModelSpec *m)
{
    if (!m) {
        json_null(j, key);
        return;
    }
    json_obj(j, key);
    json_u64(j, "input", m->input);
    json_arr(j, "hidden");
    for (size_t i = 0; i < m->n_hidden; i++) {
        json_obj(j, NULL);
        json_u64(j, "width", m->hidden[i]->width);
        json_str(j, "activation", m->hidden[i]->activation);
        json_str(j, "norm", m->hidden[i]->norm);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_str(j, "activation", m->activation);
    json_str(j, "norm", m->norm);
    json_u64(j, "classes", m->classes);
    json_str(j, "init", m->init);
    if (m->n_layers) {   /* a layer list */
        json_arr(j, "input_shape");
        for (size_t i = 0; i < m->n_input_shape; i++)
            json_u64(j, NULL, m->input_shape[i]);
        json_arr_end(j);
        json_arr(j, "layers");
        for (size_t i = 0; i < m->n_layers; i++) {
            const Memtrain__LayerNode *l = m->layers[i];
            json_obj(j, NULL);
            json_str(j, "kind", l->kind);
            json_u64(j, "units", l->units);
            json_u64(j, "kernel_h", l->kernel_h);
            json_u64(j, "kernel_w", l->kernel_w);
            json_u64(j, "stride", l->stride);
            json_u64(j, "padding", l->padding);
            json_bool(j, "bias", !l->no_bias);
            json_str(j, "activation", l->activation);
            json_obj_end(j);
        }
        json_arr_end(j);
    }
    json_obj_end(j);
}

/* A float setting in a oneof: its value, or null when not given. */
static void json_opt_float(struct json *j, const char *key, int given, float v)
{
    if (given)
        json_float(j, key, v);
    else
        json_null(j, key);
}

/* The same for a count. */
static void json_opt_u64(struct json *j, const char *key, int given, uint64_t v)
{
    if (given)
        json_u64(j, key, v);
    else
        json_null(j, key);
}

static void json_rule(struct json *j, const char *key, const Memtrain__RuleSpec *r)
{
    if (!r) {
        json_null(j, key);
        return;
    }
    json_obj(j, key);
    json_str(j, "name", r->name);
    json_str(j, "feedback_init", r->feedback_init);
    json_opt_float(j, "feedback_scale", r->opt_feedback_scale_case, r->feedback_scale);
    if (r->opt_binary_case)
        json_bool(j, "binary", r->binary);
    else
        json_null(j, "binary");
    json_opt_float(j, "epsilon", r->opt_epsilon_case, r->epsilon);
    json_opt_float(j, "kappa", r->opt_kappa_case, r->kappa);
    if (r->opt_recompute_inputs_case)
        json_bool(j, "recompute_inputs", r->recompute_inputs);
    else
        json_null(j, "recompute_inputs");
    json_opt_u64(j, "groups", r->opt_groups_case, r->groups);
    json_opt_u64(j, "segments", r->opt_segments_case, r->segments);
    json_opt_u64(j, "samples", r->opt_samples_case, r->samples);
    json_obj_end(j);
}

static void json_optimizer(struct json *j, const char *key, const Memtrain__OptimizerSpec *o)
{
    if (!o) {
        json_null(j, key);
        return;
    }
    json_obj(j, key);
    json_str(j, "name", o->name);
    json_opt_float(j, "lr", o->opt_lr_case, o->lr);
    json_opt_float(j, "momentum", o->opt_momentum_case, o->momentum);
    if (o->opt_nesterov_case)
        json_bool(j, "nesterov", o->nesterov);
    else
        json_null(j, "nesterov");
    json_opt_float(j, "beta1", o->opt_beta1_case, o->beta1);
    json_opt_float(j, "beta2", o->opt_beta2_case, o->beta2);
    json_opt_float(j, "eps", o->opt_eps_case, o->eps);
    json_opt_float(j, "weight_decay", o->opt_weight_decay_case, o->weight_decay);
    json_obj_end(j);
}

static void json_schedule(struct json *j, const char *key, const Memtrain__ScheduleSpec *s)
{
    if (!s) {
        json_null(j, key);
        return;
    }
    json_obj(j, key);
    json_str(j, "name", s->name);
    json_opt_float(j, "warmup_epochs", s->opt_warmup_epochs_case, s->warmup_epochs);
    if (s->opt_step_epochs_case)
        json_u64(j, "step_epochs", s->step_epochs);
    else
        json_null(j, "step_epochs");
    json_opt_float(j, "gamma", s->opt_gamma_case, s->gamma);
    json_opt_float(j, "min_lr", s->opt_min_lr_case, s->min_lr);
    json_obj_end(j);
}

void json_spec(struct json *j, const char *key, const Memtrain__JobSpec *s)
{
    if (!s) {
        json_null(j, key);
        return;
    }
    json_obj(j, key);
    json_str(j, "name", s->name);
    json_dataset(j, "dataset", s->dataset);
    json_model(j, "model", s->model);
    json_rule(j, "rule", s->rule);
    json_optimizer(j, "optimizer", s->optimizer);
    json_schedule(j, "schedule", s->schedule);
    json_u64(j, "batch", s->batch);
    json_u64(j, "epochs", s->epochs);
    if (s->opt_seed_case)
        json_u64(j, "seed", s->seed);
    else
        json_null(j, "seed");
    json_u64(j, "threads", s->threads);
    json_u64(j, "memory_limit", s->memory_limit);
    json_u64(j, "checkpoint_every", s->checkpoint_every);
    if (s->opt_keep_checkpoints_case)
        json_u64(j, "keep_checkpoints", s->keep_checkpoints);
    else
        json_null(j, "keep_checkpoints");
    json_obj_end(j);
}

void json_checkpoint(struct json *j, const char *key, const Memtrain__Checkpoint *ck)
{
    if (!ck) {
        json_null(j, key);
        return;
    }
    json_obj(j, key);
    json_u64(j, "epoch", ck->epoch);
    json_str(j, "path", ck->path);
    json_u64(j, "bytes", ck->bytes);
    json_i64(j, "created_at", ck->created_at);
    json_obj_end(j);
}
