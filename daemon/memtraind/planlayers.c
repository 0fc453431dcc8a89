/* planlayers.c: a plan reply's per-node table for layer lists: node,
 * model.layers entry and part, output shape, parameters, and each layer-list
 * rule's kept bytes (rule_node_kept_as), or why the rule refuses. */
#include "planlayers.h"

#include <stdlib.h>
#include <string.h>

#include "graphnames.h"
#include "layer.h"
#include "rules/rules.h"

/* One allocation per node: the message, its output shape and kept column. */
struct layer_row {
    Memtrain__LayerPlan lp;   /* first: plan_layers_free frees the row through it */
    uint32_t output[3];
    uint64_t kept[];
};

static int add_rows(Memtrain__PlanResponse *pr, const struct mt_model_desc *d, size_t nr)
{
    pr->layers = calloc((size_t)d->n_nodes, sizeof *pr->layers);
    if (!pr->layers)
        return -1;
    for (int i = 0; i < d->n_nodes; i++) {
        const struct mt_layer *L = &d->node[i];
        struct layer_row *r = calloc(1, sizeof *r + nr * sizeof r->kept[0]);
        if (!r)
            return -1;
        memtrain__layer_plan__init(&r->lp);
        pr->layers[pr->n_layers++] = &r->lp;
        r->lp.node = (uint32_t)i;
        r->lp.layer = (uint32_t)L->origin;
        r->lp.kind = (char *)layer_kind_name(L->s.kind);
        r->lp.part = (char *)graph_node_part(d, i);
        r->lp.in_block = d->spec_layer[L->origin].kind == MT_LK_RESIDUAL;
        r->output[0] = (uint32_t)L->out.c;
        r->output[1] = (uint32_t)L->out.h;
        r->output[2] = (uint32_t)L->out.w;
        r->lp.output = r->output;
        r->lp.n_output = 3;
        r->lp.params = layer_n_params(L);
        r->lp.kept = r->kept;
        r->lp.n_kept = nr;
    }
    return 0;
}

static int add_refusal(Memtrain__PlanResponse *pr, const char *rule, const char *why)
{
    Memtrain__RuleRefusal *rr = malloc(sizeof *rr);
    char *reason = strdup(why);
    if (!rr || !reason) {
        free(rr);
        free(reason);
        return -1;
    }
    memtrain__rule_refusal__init(rr);
    rr->rule = (char *)rule;
    rr->reason = reason;
    pr->layer_refused[pr->n_layer_refused++] = rr;
    return 0;
}

int plan_layers_add(Memtrain__PlanResponse *pr, const struct mt_spec *s,
                    const struct mt_spec *parsed, struct mt_err *err)
{
    const struct mt_model_desc *d = &s->model;
    if (!model_is_graph(d))
        return 0;
    const struct mt_rule *const *rules = rule_list();
    size_t nr = 0;
    for (size_t i = 0; rules[i]; i++)
        nr += (rules[i]->flags & MT_RULE_LAYERS) != 0;
    size_t *kept = malloc((size_t)d->n_nodes * sizeof *kept);
    pr->layer_rules = calloc(nr ? nr : 1, sizeof *pr->layer_rules);
    pr->layer_refused = calloc(nr ? nr : 1, sizeof *pr->layer_refused);
    if (!kept || !pr->layer_rules || !pr->layer_refused || add_rows(pr, d, nr)) {
        free(kept);
        return mt_err_set(err, MT_E_NOMEM, "out of memory for the layer plan");
    }
    for (size_t i = 0, k = 0; rules[i]; i++) {
        if (!(rules[i]->flags & MT_RULE_LAYERS))
            continue;
        struct mt_err e = {0};
        pr->layer_rules[pr->n_layer_rules++] = (char *)rules[i]->name;
        if (rule_node_kept_as(parsed, rules[i]->name, kept, &e)) {
            if (add_refusal(pr, rules[i]->name, e.msg)) {
                free(kept);
                return mt_err_set(err, MT_E_NOMEM, "out of memory for the layer plan");
            }
        } else {
            for (int n = 0; n < d->n_nodes; n++)
                pr->layers[n]->kept[k] = kept[n];
        }
        k++;
    }
    free(kept);
    return 0;
}

void plan_layers_free(Memtrain__PlanResponse *pr)
{
    for (size_t i = 0; i < pr->n_layers; i++)
        free(pr->layers[i]);
    for (size_t i = 0; i < pr->n_layer_refused; i++) {
        free(pr->layer_refused[i]->reason);
        free(pr->layer_refused[i]);
    }
    free(pr->layers);
    free(pr->layer_rules);
    free(pr->layer_refused);
    pr->layers = NULL;
    pr->layer_rules = NULL;
    pr->layer_refused = NULL;
    pr->n_layers = pr->n_layer_rules = pr->n_layer_refused = 0;
}
