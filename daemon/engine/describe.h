/* describe.h: a trained model described for inference elsewhere.
 *
 * describe_model writes one JSON document (docs/export.md, "memtrain.json")
 * that, with the checkpoint's tensors, is everything a forward pass outside
 * memtrain needs to give memtrain's test figures: the input's shape and the
 * normalisation constants the trainer fitted, the layers (the MLP form or
 * the resolved layer list, each weight tensor by its checkpoint name), the
 * activations and norm layers, and the rule's inference path (ASA's sign
 * term, the binary forward of TinyFoA and BP+BW+BA, Forward-Forward's
 * goodness classifier). share/memtrain/memtrain_load.py reads it. */
#ifndef MT_DESCRIBE_H
#define MT_DESCRIBE_H

#include "memtrain/err.h"

struct mt_trainer;

#define DESCRIBE_FORMAT 1

/* The JSON document, malloc'd and NUL-terminated, into *out (the caller
 * frees it). MT_E_NOMEM is the only failure. */
int describe_model(const struct mt_trainer *t, char **out, struct mt_err *err);

/* Whether inference reads the checkpoint tensor `name` (W1, b1, ...,
 * layers.0.conv.weight, ...): 0 for Forward-Forward's output layer, which
 * the rule neither trains nor reads. An export leaves such tensors out. */
int describe_tensor_used(const struct mt_trainer *t, const char *name);

#endif
