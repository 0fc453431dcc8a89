/* planlayers.h: a plan reply's layer table (PlanResponse.layers,
 * layer_rules, layer_refused) for a layer-list spec. */
#ifndef MEMTRAIND_PLANLAYERS_H
#define MEMTRAIND_PLANLAYERS_H

#include "memtrain.pb-c.h"
#include "spec.h"

/* Fill pr's layer fields: the rows from s (finished, its dataset's shape
 * known), the rules' columns from `parsed` (the same spec as given) under
 * each rule that trains layer lists. Nothing for an MLP. Everything added
 * is freed by plan_layers_free. */
int plan_layers_add(Memtrain__PlanResponse *pr, const struct mt_spec *s,
                    const struct mt_spec *parsed, struct mt_err *err);
void plan_layers_free(Memtrain__PlanResponse *pr);

#endif
