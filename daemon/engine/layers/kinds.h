/* kinds.h: the layer kinds (one file each), for the table in layer.c. */
#ifndef MT_LAYER_KINDS_H
#define MT_LAYER_KINDS_H

#include "../layer.h"

extern const struct mt_layer_ops layer_dense;
extern const struct mt_layer_ops layer_conv;
extern const struct mt_layer_ops layer_maxpool;
extern const struct mt_layer_ops layer_avgpool;
extern const struct mt_layer_ops layer_gap;
extern const struct mt_layer_ops layer_flatten;
extern const struct mt_layer_ops layer_batchnorm;
extern const struct mt_layer_ops layer_layernorm;
extern const struct mt_layer_ops layer_act;
extern const struct mt_layer_ops layer_add;

#endif
