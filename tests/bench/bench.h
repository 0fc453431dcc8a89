/* bench.h: what memtrain-bench's parts share: the options, the measured
 * kept activations of a few training steps against the plan (the depth
 * sweeps), and the side-by-side runs against PyTorch (tests/bench/README.md). */
#ifndef MT_BENCH_H
#define MT_BENCH_H

#include <stddef.h>

#include "spec.h"
#include "memtrain/err.h"

struct bench_opts {
    const char *data_dir;      /* "" = default search */
    const char *fashion_dir;   /* torch-conv resnet: Fashion-MNIST; "" = the engine's places */
    const char *run_path;      /* memtrain-run, for the torch comparison */
    const char *torch_script;  /* torch_mlp.py */
    const char *torch_conv_script;
    const char *python;
    const char *rule;
    const char *net;           /* robust: network filter; torch-conv: lenet or resnet */
    const char *optimizer;     /* torch-conv: sgd or adam; NULL = both */
    int threads, epochs, reps;
    int epochs_given, json;
    long max_steps;            /* speed: steps (0 was turned into one epoch) */
    long steps_arg;            /* -s as given; -1 = not given */
    long train_samples;        /* robust: training-set subset */
};

/* Kept activations (the arena's activations category) and the peak total
 * of one epoch of a spec, measured and as planned. */
struct kept_acts {
    size_t measured, planned;
    size_t total_measured, total_planned;
};

/* Train one epoch of s (give it a small training set: a few steps are
 * enough) and fill k; an error (the rule refuses the spec, ...) says why. */
int kept_acts_run(const struct mt_spec *s, struct kept_acts *k, struct mt_err *err);

/* "1/7.96" when part is below whole, else "1.25x"; "0" for none, "—"
 * without a whole. */
void format_ratio(char *buf, size_t len, size_t part, size_t whole);

/* The heading of a comparison with PyTorch ("## title (OpenBLAS core,
 * threads)"), and 1; or, when o->python cannot import torch, a "skipped"
 * heading and 0. */
int torch_section(const struct bench_opts *o, const char *title);

/* memtrain-run on the spec `yaml` against the process torch_argv (a PyTorch
 * script printing JSON lines), o->reps times, the order flipping each run:
 * per-run samples/s, ratio, GEMM-only ceiling (BP's sgemm calls of one step
 * of the same spec, timed in this process) and peak RSS, then the medians.
 * 0, or 1 when a run failed (said on stderr). */
int side_by_side(const struct bench_opts *o, const char *yaml, char *const torch_argv[]);

/* bench-conv.c: memtrain-bench conv-depth and torch-conv. */
int bench_conv_depth(const struct bench_opts *o);
int bench_torch_conv(const struct bench_opts *o);

#endif
