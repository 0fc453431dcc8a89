/* bench-robust.h: memtrain-bench robust, every rule with its defaults on a
 * grid of networks (tests/bench/README.md, "Robustness grid"). */
#ifndef MT_BENCH_ROBUST_H
#define MT_BENCH_ROBUST_H

struct robust_opts {
    const char *data_dir;   /* Fashion-MNIST directory; "" = the engine's search */
    const char *rule;       /* only this rule; NULL = every rule in rule_list() */
    const char *net;        /* only networks whose name contains this; NULL = all */
    int threads, epochs;
    long train_samples;     /* training-set subset; 0 = the whole set */
    int json;               /* one JSON object per run instead of the table */
};

/* Train every (rule, network) pair and print the table; 0, or 1 when a run
 * failed to start or stopped with an error (the row says which). */
int bench_robust(const struct robust_opts *o);

#endif
