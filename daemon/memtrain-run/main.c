/* memtrain-run: train one job in the foreground, from a YAML spec.
 *
 * The daemon's workers run the same engine; this is the way to try a spec,
 * reproduce a result or benchmark a rule without the daemon. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "augment.h"
#include "blas.h"
#include "memtrain/version.h"
#include "output.h"
#include "rules/rules.h"
#include "spec.h"
#include "par.h"
#include "train.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* The rule table's names after `lead`, wrapped under the option texts. */
static void rule_names(FILE *f, const char *lead)
{
    const struct mt_rule *const *list = rule_list();
    int col = fprintf(f, "%s", lead);
    for (int i = 0; list[i]; i++) {
        int len = (int)strlen(list[i]->name) + 2;   /* and ", " or ")" */
        if (i > 0 && col + len > 79)
            col = fprintf(f, ",\n%22s", "") - 2;
        else if (i > 0)
            col += fprintf(f, ", ");
        col += fprintf(f, "%s", list[i]->name);
    }
    fputs(")\n", f);
}

static void usage(FILE *f)
{
    fputs("Usage: memtrain-run [OPTION]... SPEC.yaml\n"
          "Train the job SPEC.yaml describes in the foreground, printing one line per epoch\n"
          "with loss, accuracy, speed and memory (exact arena peaks per category, and the\n"
          "kernel's peak RSS), and the rule's own figures when it reports any.\n"
          "\n"
          "Options:\n"
          "  -j, --json          print one JSON object per epoch on stdout (keys: epoch, loss,\n"
          "                      train_accuracy, test_accuracy, seconds, samples_per_second,\n"
          "                      memory{params,grads,optimizer,activations,workspace,data,\n"
          "                      peak_total,phase_peak{forward,gradient,update}}, rss_peak,\n"
          "                      rule_metrics{NAME: value}, ...)\n"
          "  -p, --plan          print the planned bytes per category and phase; do not train\n"
          "  -e, --epochs N      override the spec's epochs\n"
          "  -t, --threads N     override the spec's OpenBLAS threads (0 = all cores)\n",
          f);
    rule_names(f, "  -r, --rule NAME     override the spec's rule (");
    fputs("  -q, --quiet         no progress bar\n"
          "  -h, --help          show this help\n"
          "  -V, --version       show the version\n"
          "\n"
          "Exit status: 0 trained, 1 training failed, 2 bad usage or spec, 3 memory limit\n"
          "exceeded, 130 interrupted.\n"
          "The environment variable OPENBLAS_CORETYPE changes the sgemm kernel; the core in\n"
          "use is printed with every run.\n",
          f);
}

struct run_opts {
    int json, plan, quiet, epochs, threads;
    const char *rule, *path;
};

static int parse_args(int argc, char **argv, struct run_opts *o)
{
    static const struct option longopts[] = {
        {"json", no_argument, 0, 'j'},       {"plan", no_argument, 0, 'p'},
        {"epochs", required_argument, 0, 'e'}, {"threads", required_argument, 0, 't'},
        {"rule", required_argument, 0, 'r'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},       {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    o->epochs = o->threads = -1;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "jpe:t:r:qhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': o->json = 1; break;
        case 'p': o->plan = 1; break;
        case 'q': o->quiet = 1; break;
        case 'r': o->rule = optarg; break;
        case 'e':
        case 't': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 1000000 || (c == 'e' && v == 0)) {
                fprintf(stderr, "memtrain-run: --%s: bad number '%s'\n",
                        c == 'e' ? "epochs" : "threads", optarg);
                return 2;
            }
            *(c == 'e' ? &o->epochs : &o->threads) = (int)v;
            break;
        }
        case 'h': usage(stdout); exit(0);
        case 'V': printf("memtrain-run %s\n", MT_VERSION); exit(0);
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "memtrain-run: expected one SPEC.yaml (try --help)\n");
        return 2;
    }
    o->path = argv[optind];
    return 0;
}

struct bar {
    int on;
    int epoch, epochs;
};

static int progress(void *ud, long k, long steps, double loss)
{
    struct bar *b = ud;
    if (b->on) {
        int width = 30, fill = (int)(width * k / steps);
        fprintf(stderr, "\repoch %d/%d [%.*s%*s] %3ld%%  loss %.4f ", b->epoch, b->epochs, fill,
                "==============================", width - fill, "", 100 * k / steps, loss);
        if (k == steps)
            fputs("\r\033[K", stderr);
    }
    return interrupted;
}

static int load_spec(const struct run_opts *o, struct mt_spec *s, struct mt_err *err)
{
    int rc = spec_parse_file(o->path, s, err);
    if (rc)
        return rc;
    if (o->epochs > 0)
        s->epochs = o->epochs;
    if (o->threads >= 0)
        s->threads = o->threads;
    if (o->rule) {
        if (!rule_find(o->rule))
            return mt_err_set(err, MT_E_INVAL, "--rule: unknown rule '%s'", o->rule);
        spec_set_rule(s, o->rule);
    }
    return spec_finish(s, err);
}

static int train(const struct run_opts *o, const struct mt_spec *s)
{
    struct mt_trainer t;
    struct mt_err err = {0};
    char model[256], aug[48];
    if (trainer_init(&t, s, &err)) {
        fprintf(stderr, "memtrain-run: %s\n", err.msg);
        return err.code == MT_E_LIMIT ? 3 : err.code == MT_E_INVAL ? 2 : 1;
    }
    output_model_string(model, sizeof model, &s->model);
    augment_describe(aug, sizeof aug, &s->data.augment);
    fprintf(stderr,
            "memtrain-run: %s: rule %s, model %s (%zu parameters), batch %d, %d epochs, "
            "%s lr %g; %ld training and %ld test samples%s%s; OpenBLAS core %s, %d threads\n",
            s->name, s->rule.name, model, model_param_count(&s->model), s->batch, s->epochs,
            optim_kind_name(t.spec.optim.kind), (double)t.spec.optim.lr, t.train.n, t.test.n,
            augment_on(&s->data.augment) ? ", augmented: " : "",
            augment_on(&s->data.augment) ? aug : "", blas_corename(), par_job_threads());
    struct bar bar = {.on = !o->quiet && isatty(2), .epochs = s->epochs};
    int rc = 0;
    for (int e = 0; e < s->epochs; e++) {
        struct mt_epoch_report rep;
        bar.epoch = e + 1;
        if (trainer_run_epoch(&t, progress, &bar, &rep, &err)) {
            if (bar.on)
                fputs("\r\033[K", stderr);
            fprintf(stderr, "memtrain-run: %s\n", err.msg);
            rc = err.code == MT_E_CANCELLED ? 130 : err.code == MT_E_LIMIT ? 3 : 1;
            break;
        }
        if (o->json)
            output_epoch_json(stdout, &t, &rep);
        else
            output_epoch_text(stdout, &t, &rep);
    }
    trainer_fini(&t);
    return rc;
}

int main(int argc, char **argv)
{
    struct run_opts o;
    struct mt_spec s;
    struct mt_err err = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    if (load_spec(&o, &s, &err)) {
        fprintf(stderr, "memtrain-run: %s\n", err.msg);
        return err.code == MT_E_IO ? 1 : 2;
    }
    if (o.plan) {
        struct mt_mem_plan plan;
        if (trainer_plan(&s, &plan, &err)) {
            fprintf(stderr, "memtrain-run: %s\n", err.msg);
            return 1;
        }
        if (o.json)
            output_plan_json(stdout, &s, &plan);
        else {
            output_plan_text(stdout, &s, &plan);
            output_layers_text(stdout, &s);
        }
        return 0;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    return train(&o, &s);
}
