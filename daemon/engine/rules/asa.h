/* asa.h: auxiliary sign activation (spec section 5): the state the MLP form
 * (asa.c) and the layer-list form (asa_layers.c) share. */
#ifndef MT_RULES_ASA_H
#define MT_RULES_ASA_H

#include "common.h"

struct graph_keep;

/* The rule's bookkeeping, in t->rs.priv. */
struct asa_state {
    float eps, kappa;
    int recompute;                      /* rule.recompute_inputs (asa_layers.c) */
    int in_step;                        /* layer lists: a training forward is running (LI) */
    double li_sum[MT_MAX_LAYERS + 1];   /* sum of per-sample LI of layer l's input, l >= 2 */
    long li_n[MT_MAX_LAYERS + 1];       /* samples summed */
};

/* out (B, n) = h + eps S with S = [h > 0] when `relu`, else +1 / -1 (h > 0 /
 * h <= 0); out may be h. With li_sum, each row's LI = 1 - |h|^2 / |h + a|^2
 * is added (rows with |h + a| = 0 are skipped). */
void asa_sign_term(float *out, const float *h, int B, size_t n, float eps, int relu,
                   double *li_sum, long *li_n);

/* Layer lists (asa_layers.c): how ASA keeps what the graph's backward reads
 * (rule_asa.keep), and its step. */
extern const struct graph_keep asa_layers_keep;

/* What weight node `node` of a layer list reads at inference (and in
 * training), as asa_weight_input forms it: ASA_INPUT_EXACT (the data, or a
 * globally pooled map), ASA_INPUT_RELU (x + eps [x > 0]: x >= 0 by
 * construction) or ASA_INPUT_SIGN (x + eps where x > 0, x - eps elsewhere).
 * For describing a model (describe.c). */
enum { ASA_INPUT_EXACT, ASA_INPUT_RELU, ASA_INPUT_SIGN };
int asa_input_form(const struct mt_model_desc *d, int node);
int asa_layers_step(struct mt_trainer *t, const float *x, const uint8_t *y, int B,
                    struct mt_step_result *r, struct mt_err *err);

#endif
