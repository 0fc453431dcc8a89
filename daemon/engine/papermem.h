/* papermem.h: memory under the TinyFoA paper's own counting (Huang &
 * Aminifar, AAAI 2025, Table 1; spec section 7.5), to print beside the
 * paper's figures.
 *
 * This is not what the arena measures. The paper counts, per phase of a
 * step, only the weights and gradients of the hidden-to-hidden matrices
 * W_l (n_l x n_{l-1}, 2 <= l <= L-1: both sides hidden; the input matrix
 * and the output matrix are left out), without optimizer state, FP32 = 4
 * bytes per element and a binary element = 1 bit packed (pack_bytes(n, 1)).
 * Which matrices count depends on the method:
 *
 *   method      scope   forward        gradient            update
 *   BP          All     4 S            4 S + 4 S           4 S + 4 S
 *   BP+BW+BA    All     S/8 (binary)   4 S + S/8           4 S + 4 S
 *   FF          Max     4 X            4 X                 4 X + 4 X
 *   FF+BW+BA    Max     X/8            4 X                 4 X + 4 X
 *   PEPITA      All     4 S            4 X                 4 X + 4 X
 *   PEPITA+BW+BA All    S/8            4 X                 4 X + 4 X
 *   TinyFoA     Slice   X/8 (binary)   4 K                 4 K + 4 K
 *
 * with S = sum of n_l n_{l-1} over the counted matrices, X = the largest
 * one (one layer: the layer-wise methods train one layer at a time) and
 * K = ceil(n_l/M) ceil(n_{l-1}/M), one block of that layer (M = rule.groups,
 * default 2). Binary terms are pack_bytes(count, 1). On 784-2000x4-10
 * (784-2000x3-10 for PEPITA) these give 48 / 96 / 96 MB (10^6 bytes) for
 * BP, 1.5 / 49.5 / 96 for BP+BW+BA, 16 / 16 / 32 for FF, 32 / 16 / 32 for
 * PEPITA and 0.50 / 4.00 / 8.00 for TinyFoA: the paper's figures less the
 * 0.00-0.06 MB remainders it does not explain (spec 7.5 [U]).
 *
 * Separately, `extra` holds the activation terms spec 7.5's general
 * formula adds, for TinyFoA only (the spec gives none for the others):
 * forward B n_{l-1}/8 + B n_l/8 (the binary input and output of the layer)
 * + 4 B C (the logits); gradient B ceil(n_{l-1}/M)/8 + B ceil(n_l/M)/8 (the
 * binary input slice and the output slice's STE mask); update 0. With them
 * TinyFoA's forward is 0.554 MB, 11 % above the paper's 0.50: the paper
 * evidently does not count the activation bits in its forward figure
 * (its gradient figure 4.01 does fit 4.00 + 0.0125 MB of input slice). So
 * `bytes` is the figure to compare with the paper, `bytes + extra` the
 * general formula.
 *
 * Rules outside the table (fa, dfa, memdfa, ckpt, asa, approx*, mezo)
 * get scope PAPERMEM_NA and zeros. Pure arithmetic on shapes: no
 * allocation, no engine state (built as libmtpapermem with pack.c, which
 * mtctl and the report table link without the rest of the engine). */
#ifndef MT_PAPERMEM_H
#define MT_PAPERMEM_H

#include <stddef.h>

struct mt_spec;

enum papermem_scope {
    PAPERMEM_NA,      /* not a method of the paper's table */
    PAPERMEM_ALL,     /* every counted matrix (BP; PEPITA's forward) */
    PAPERMEM_MAX,     /* the largest counted matrix: one layer (FF; PEPITA's gradient) */
    PAPERMEM_SLICE,   /* one block of the largest matrix (TinyFoA) */
};

/* The phases, in the paper's order. */
enum { PAPERMEM_FORWARD, PAPERMEM_GRADIENT, PAPERMEM_UPDATE, PAPERMEM_NPHASE };

struct papermem {
    enum papermem_scope scope;
    const char *method;          /* "BP", "BP+BW+BA", "FF", "PEPITA", "TinyFoA", ...; NULL when NA */
    int matrices;                /* hidden-to-hidden matrices the network has */
    int layer;                   /* Max/Slice: the layer l whose matrix counts (0 when none) */
    int groups;                  /* Slice: M */
    size_t bytes[PAPERMEM_NPHASE];  /* the paper's counting: weights and gradients */
    size_t extra[PAPERMEM_NPHASE];  /* spec 7.5's activation terms (TinyFoA only) */
};

/* The counting for rule `rule` ("bp", "ff", "pepita", "tinyfoa"; others
 * NA) with binary weights and activations when binary > 0, M = groups
 * (<= 0: 2), batch B and the MLP widths width[0..n_layers] (n_0 input ..
 * n_L classes). A network without hidden-to-hidden matrices counts 0.
 * Never fails: nonsense shapes (n_layers < 1, widths <= 0) give NA. */
void papermem_count(const char *rule, int binary, int groups, int batch, int n_layers,
                    const int *width, struct papermem *out);

/* The same for a resolved spec (spec_finish has run, or at least the
 * model's input and classes are set): rule name, rule.binary (-1 = 0),
 * rule.groups (-1 = 2), batch and model widths. */
void papermem_from_spec(const struct mt_spec *s, struct papermem *out);

/* One row of Table 1 of the paper (spec 7.7), as given to us [P]. */
struct papermem_paper {
    const char *method;          /* "BP", "BP+BW+BA", ... */
    const char *rule;            /* memtrain's rule name */
    int binary;                  /* rule.binary of the row */
    int hidden;                  /* its network: `hidden` layers of 2000 (3 for PEPITA, else 4) */
    double mnist_err;            /* test error, percent */
    double cifar_err;
    double mb[PAPERMEM_NPHASE];  /* forward, gradient, update; MB = 10^6 bytes */
};

/* The paper's row for a rule (binary > 0: the +BW+BA row), or NULL. */
const struct papermem_paper *papermem_paper_row(const char *rule, int binary);

/* 1 when width[0..n_layers] and batch are the row's network: n_0 784
 * (MNIST) or 3072 (CIFAR-10), row->hidden layers of 2000, 10 classes,
 * batch 100; 0 otherwise. */
int papermem_paper_net(const struct papermem_paper *row, int batch, int n_layers,
                       const int *width);

/* "All", "Max", "Slice" or "n/a". */
const char *papermem_scope_name(enum papermem_scope s);

#endif
