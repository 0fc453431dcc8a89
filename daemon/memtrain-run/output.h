/* output.h: how memtrain-run prints epochs and plans, for people and as JSON. */
#ifndef MT_RUN_OUTPUT_H
#define MT_RUN_OUTPUT_H

#include <stdio.h>

#include "train.h"

/* One JSON object (one line) for an epoch; keys documented in README. */
void output_epoch_json(FILE *f, const struct mt_trainer *t, const struct mt_epoch_report *r);
/* One readable line for an epoch. */
void output_epoch_text(FILE *f, const struct mt_trainer *t, const struct mt_epoch_report *r);
/* The plan as a table, or as one JSON object. */
void output_plan_text(FILE *f, const struct mt_spec *s, const struct mt_mem_plan *p);
void output_layers_text(FILE *f, const struct mt_spec *s);
void output_plan_json(FILE *f, const struct mt_spec *s, const struct mt_mem_plan *p);
/* "784-2000-2000-10" */
void output_model_string(char *buf, size_t len, const struct mt_model_desc *d);

#endif
