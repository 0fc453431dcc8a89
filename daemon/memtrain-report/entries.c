/* entries.c: memtrain-report's rows, the rules of the TinyFoA table and
 * the others on the same network, and the spec each trains (spec 7.1:
 * MNIST, 784-2000x4-10 ReLU, batch 100; PEPITA on 3 hidden layers as in
 * the paper, approxbp on GELU with layer-norm). */
#include <stdio.h>
#include <string.h>

#include "memtrain-report.h"

const struct entry entries[] = {   /* as many as NENTRIES: the header's declaration checks */
    {"bp", "bp", 1, 0, 4, MT_ACT_RELU, MT_NK_NONE, 1, 0},
    {"bp+bw+ba", "bp", 1, 1, 4, MT_ACT_RELU, MT_NK_NONE, 1, 0},
    {"ff", "ff", 1, 0, 4, MT_ACT_RELU, MT_NK_NONE, 0, 0},
    {"pepita", "pepita", 1, 0, 3, MT_ACT_RELU, MT_NK_NONE, 0, 0},
    {"tinyfoa", "tinyfoa", 1, 0, 4, MT_ACT_RELU, MT_NK_NONE, 1, 1},
    {"ckpt", "ckpt", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 1, 0},
    {"asa", "asa", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 1, 0},
    {"approx8", "approx8", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 1, 0},
    {"approx4", "approx4", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 1, 0},
    {"approxbp", "approxbp", 2, 0, 4, MT_ACT_GELU, MT_NK_LAYER, 1, 0},
    {"fa", "fa", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 0, 0},
    {"dfa", "dfa", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 0, 0},
    {"memdfa", "memdfa", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 0, 0},
    {"mezo", "mezo", 2, 0, 4, MT_ACT_RELU, MT_NK_NONE, 0, 0},
};

int entry_index(const char *label)
{
    if (strcmp(label, "bpbin") == 0)
        label = "bp+bw+ba";
    for (int i = 0; i < NENTRIES; i++)
        if (strcmp(entries[i].label, label) == 0)
            return i;
    return -1;
}

void entry_spec(struct mt_spec *s, const struct entry *e, const struct opts *o, int epochs)
{
    spec_init(s);
    snprintf(s->name, sizeof s->name, "report-%s", e->label);
    snprintf(s->rule.name, sizeof s->rule.name, "%s", e->rule);
    if (e->binary)
        s->rule.binary = 1;
    s->data.kind = MT_DATA_MNIST;
    snprintf(s->data.dir, sizeof s->data.dir, "%s", o->data_dir);
    s->data.train_limit = o->train_limit;
    s->data.test_limit = o->test_limit;
    s->model.n_layers = e->hidden + 1;
    s->model.width[0] = 784;
    for (int l = 1; l <= e->hidden; l++) {
        s->model.width[l] = o->width;
        s->model.act[l] = e->act;
        s->model.norm[l] = e->norm;
    }
    s->model.width[e->hidden + 1] = 10;
    s->batch = 100;
    s->epochs = epochs;
    s->seed = o->seed;
    s->threads = o->threads;
    if (e->paper_optim) {
        s->optim.kind = MT_OPT_ADAM;
        s->optim.lr = 1e-4f;
        s->sched.kind = MT_SCHED_CONSTANT;
    }
}

void entry_describe_optim(char *buf, size_t len, const struct mt_spec *s)
{
    const struct mt_optim_spec *op = &s->optim;
    int n = snprintf(buf, len, "%s lr %g", optim_kind_name(op->kind), (double)op->lr);
    if (op->kind == MT_OPT_SGD && op->momentum > 0 && n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " mom %g", (double)op->momentum);
    if (op->weight_decay > 0 && n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " wd %g", (double)op->weight_decay);
    if (n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, ", %s", optim_sched_kind_name(s->sched.kind));
}

static void describe_net(char *buf, size_t len, const struct mt_spec *s)
{
    const struct mt_model_desc *m = &s->model;
    int L = m->n_layers;
    const char *extra = m->norm[1] == MT_NK_LAYER ? " + layer-norm"
                        : m->norm[1] == MT_NK_BATCH ? " + batch-norm" : "";
    snprintf(buf, len, "%d-%dx%d-%d %s%s", m->width[0], m->width[1], L - 1, m->width[L],
             act_name(m->act[1]), extra);
}

void entry_row(const struct entry *e, const struct mt_spec *s, struct report_row *row)
{
    snprintf(row->label, sizeof row->label, "%s", e->label);
    snprintf(row->rule, sizeof row->rule, "%s", e->rule);
    row->table = e->table;
    describe_net(row->network, sizeof row->network, s);
    row->paper = e->table == 1 ? papermem_paper_row(e->rule, e->binary) : NULL;
    if (row->paper)
        row->paper_error_pct = row->paper->mnist_err;
}
