/* optim.c: SGD (momentum, Nesterov), Adam, AdamW over flat arrays, and the
 * learning-rate schedules (optim.h). Each update is one pass over w, g and
 * the state, compiled for AVX-512, AVX2 and plain x86-64 and picked at load
 * time: the step is bandwidth-bound, so one pass matters more than flops. */
#include "optim.h"

#include <math.h>
#include <string.h>

#include "blas.h"
#include "simd.h"

static const char *opt_names[] = {"sgd", "adam", "adamw"};
static const char *sched_names[] = {"constant", "step", "cosine"};

const char *optim_kind_name(enum mt_optim_kind k)
{
    return (unsigned)k < 3 ? opt_names[k] : "default";
}

int optim_kind_from_name(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, opt_names[i]) == 0)
            return i;
    return -1;
}

const char *optim_sched_kind_name(enum mt_sched_kind k)
{
    return (unsigned)k < 3 ? sched_names[k] : "?";
}

int optim_sched_kind_from_name(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, sched_names[i]) == 0)
            return i;
    return -1;
}

static int uses_momentum(const struct mt_optim_spec *s)
{
    return s->kind == MT_OPT_SGD && s->momentum != 0.0f;
}

size_t optim_state_bytes(const struct mt_optim_spec *s, size_t n)
{
    if (s->kind == MT_OPT_ADAM || s->kind == MT_OPT_ADAMW)
        return 2 * n * sizeof(float);
    return uses_momentum(s) ? n * sizeof(float) : 0;
}

int optim_init(struct mt_optim *o, const struct mt_optim_spec *s, size_t n, struct mt_arena *a,
               struct mt_err *err)
{
    memset(o, 0, sizeof *o);
    o->s = *s;
    o->n = n;
    if (s->kind == MT_OPT_ADAM || s->kind == MT_OPT_ADAMW || uses_momentum(s)) {
        o->m = arena_alloc(a, MT_MEM_OPTIM, n * sizeof(float), err);
        if (!o->m)
            return arena_error(a);
    }
    if (s->kind == MT_OPT_ADAM || s->kind == MT_OPT_ADAMW) {
        o->v = arena_alloc(a, MT_MEM_OPTIM, n * sizeof(float), err);
        if (!o->v) {
            arena_release(a, o->m);
            o->m = NULL;
            return arena_error(a);
        }
    }
    return 0;
}

void optim_begin_step(struct mt_optim *o)
{
    o->t++;
}

MT_CLONES
static void sgd_plain(float *restrict w, const float *restrict g, size_t n, float lr, float wd)
{
    for (size_t i = 0; i < n; i++)
        w[i] -= lr * (g[i] + wd * w[i]);
}

MT_CLONES
static void sgd_momentum(float *restrict w, const float *restrict g, float *restrict m, size_t n,
                         float lr, float mu, float wd, int nesterov)
{
    if (nesterov) {
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * w[i];
            float mi = mu * m[i] + gi;
            m[i] = mi;
            w[i] -= lr * (gi + mu * mi);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float mi = mu * m[i] + g[i] + wd * w[i];
            m[i] = mi;
            w[i] -= lr * mi;
        }
    }
}

/* Adam with bias correction folded into step and denominator (as PyTorch):
 * w -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). `l2` is added to the
 * gradient (Adam), `decay` shrinks w first (AdamW). */
MT_CLONES
static void adam(float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
                 size_t n, float step, float inv_sqrt_bc2, float b1, float b2, float eps, float l2,
                 float decay)
{
    for (size_t i = 0; i < n; i++) {
        float wi = w[i] * decay;
        float gi = g[i] + l2 * wi;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}

void optim_update(struct mt_optim *o, float lr, float *w, const float *g, size_t off, size_t n)
{
    const struct mt_optim_spec *s = &o->s;
    switch (s->kind) {
    case MT_OPT_ADAM:
    case MT_OPT_ADAMW: {
        double bc1 = 1.0 - pow(s->beta1, (double)o->t);
        double bc2 = 1.0 - pow(s->beta2, (double)o->t);
        int decoupled = s->kind == MT_OPT_ADAMW;
        adam(w, g, o->m + off, o->v + off, n, (float)(lr / bc1), (float)(1.0 / sqrt(bc2)),
             s->beta1, s->beta2, s->eps, decoupled ? 0.0f : s->weight_decay,
             decoupled ? 1.0f - lr * s->weight_decay : 1.0f);
        break;
    }
    default:
        if (o->m)
            sgd_momentum(w, g, o->m + off, n, lr, s->momentum, s->weight_decay, s->nesterov);
        else
            sgd_plain(w, g, n, lr, s->weight_decay);
    }
}

int optim_accumulates(const struct mt_optim_spec *s)
{
    return uses_momentum(s) && s->nesterov != 1;
}

float *optim_accum_target(const struct mt_optim *o, size_t off)
{
    return o->m + off;
}

float optim_accum_beta(const struct mt_optim *o)
{
    return o->s.momentum;
}

/* Two passes OpenBLAS splits over its threads: the update is bandwidth-bound
 * and would otherwise run on one core while the other waits. */
void optim_update_accumulated(struct mt_optim *o, float lr, float *w, size_t off, size_t n)
{
    if (o->s.weight_decay != 0.0f)
        blas_axpy(n, o->s.weight_decay, w, o->m + off);
    blas_axpy(n, -lr, o->m + off, w);
}

float optim_sched_lr(const struct mt_sched_spec *s, float base_lr, long step, long steps_per_epoch,
               int epochs)
{
    long warm = (long)(s->warmup_epochs * (float)steps_per_epoch);
    if (warm > 0 && step < warm)
        return base_lr * (float)(step + 1) / (float)warm;
    switch (s->kind) {
    case MT_SCHED_STEP: {
        int period = s->step_epochs > 0 ? s->step_epochs : 1;
        long epoch = step / steps_per_epoch;
        return base_lr * powf(s->gamma, (float)(epoch / period));
    }
    case MT_SCHED_COSINE: {
        long total = (long)epochs * steps_per_epoch;
        double p = total > warm ? (double)(step - warm) / (double)(total - warm) : 1.0;
        if (p > 1.0)
            p = 1.0;
        return s->min_lr + (base_lr - s->min_lr) * (float)(0.5 * (1.0 + cos(M_PI * p)));
    }
    default:
        return base_lr;
    }
}
