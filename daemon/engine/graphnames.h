/* graphnames.h: a layer list's nodes and parameter tensors by name, for
 * checkpoints, exports and plan tables: "layers.3.batchnorm.weight",
 * a residual block's parts "layers.2.conv1.weight", "layers.2.shortcut...". */
#ifndef MT_GRAPHNAMES_H
#define MT_GRAPHNAMES_H

#include <stddef.h>

#include "model.h"

#define GRAPH_NAME_LEN 48

/* Node i's part name: its kind ("conv", "batchnorm", "relu" for an act
 * layer), or within a residual block bn1 act1 conv1 bn2 act2 conv2
 * shortcut add. */
const char *graph_node_part(const struct mt_model_desc *d, int i);

/* One named tensor of the parameter block (stat = 0) or of the statistics
 * block (stat = 1): floats off..off+count. Shapes in PyTorch's order:
 * conv weight (out, in, kh, kw), dense weight (out, in), bias (out),
 * batch-norm weight (gamma), bias (beta), running_mean, running_var (c). */
struct graph_tensor {
    char name[GRAPH_NAME_LEN];
    int rank;
    size_t shape[4];
    size_t off, count;
    int stat;
    int node;
};

/* Every parameter and statistics tensor, in node order and within a node
 * weights, bias, then statistics (mean, var); returns how many (at most
 * 4 per node). `out` holds 4 * d->n_nodes entries. */
int graph_param_tensors(const struct mt_model_desc *d, struct graph_tensor *out);

/* The layer list in one line: "1x28x28 conv20k5 relu maxpool2 conv50k5 relu
 * maxpool2 flatten dense500 relu dense10" (mtctl show prints the same). */
void graph_model_string(char *buf, size_t len, const struct mt_model_desc *d);

#endif
