/* plan.c: questions that start no job: `plan` (the memory a spec would
 * need, under its rule and every other) and `ping` (is the daemon there). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fmt.h"
#include "memtrain/version.h"
#include "mtctl.h"
#include "spec.h"

/* -------------------------------------------------------------------- plan */

static const char plan_help[] =
    "Usage: mtctl plan [OPTIONS] SPEC.yaml\n"
    "\n"
    "Ask the daemon what SPEC.yaml (\"-\": standard input) would need, without\n"
    "running it: the planned bytes of the job's memory arena per category\n"
    "(params, grads, optimizer, activations, workspace, data), its peak, and the\n"
    "peak within each phase of a step (forward, gradient, update); then the same\n"
    "model and batch under every learning rule side by side (the spec's rule\n"
    "marked *; n/a where a rule refuses the spec, and why); for a layer list,\n"
    "one row per node (its model.layers entry, output shape, parameters) with\n"
    "the bytes each rule that trains layer lists keeps for it during a step\n"
    "(n/a where the rule refuses the spec); then whether the job fits its\n"
    "memory limit and the daemon's budget. The figures are exact: the arena\n"
    "allocates exactly what the plan says.\n"
    "\n"
    "Options:\n"
    "  -r, --rule NAME        plan with this rule instead of the spec's (as\n"
    "                         `mtctl submit --rule` would run it)\n"
    "  -o json, --json        one JSON document: \"planned\", \"rules\" (those that\n"
    "                         take the spec), \"rules_refused\" (the others: rule ->\n"
    "                         why), \"limit\", \"budget\", \"fits\" and the resolved\n"
    "                         \"spec\"; a layer list adds \"layers\" (node, layer,\n"
    "                         kind, part, output, params, kept per rule, null if\n"
    "                         refused), \"refused\"\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n"
    "\n"
    "Exit status: 0 when the daemon answered (fits or not: see the last line),\n"
    "1 when it refused the spec, 2 usage, 3 daemon unreachable.\n";

/* A layer list's nodes: where each came from, its output shape, parameters
 * and the bytes each rule that trains layer lists keeps for it in a step
 * (the spec's rule marked *; n/a where a rule refuses the spec, and why). */
static int refused(const Memtrain__PlanResponse *p, const char *rule)
{
    for (size_t i = 0; i < p->n_layer_refused; i++)
        if (strcmp(p->layer_refused[i]->rule, rule) == 0)
            return 1;
    return 0;
}

/* Is `rule` among the rules that refuse the spec (all of them, not only
 * the layer-list ones)? */
static const char *refused_why(const Memtrain__PlanResponse *p, const char *rule)
{
    for (size_t i = 0; i < p->n_rules_refused; i++)
        if (strcmp(p->rules_refused[i]->rule, rule) == 0)
            return p->rules_refused[i]->reason;
    return NULL;
}

static void print_layers(const Memtrain__PlanResponse *p, const char *rule)
{
    size_t nc = 4 + p->n_layer_rules;
    const char **hd = calloc(nc, sizeof *hd), **cells = calloc(nc, sizeof *cells);
    char (*cell)[48] = calloc(nc, sizeof *cell), (*names)[48] = calloc(nc, sizeof *names);
    char *align = calloc(nc + 1, 1);
    if (hd && cells && cell && names && align) {
        hd[0] = "  NODE", hd[1] = "LAYER", hd[2] = "OUTPUT", hd[3] = "PARAMS";
        memcpy(align, "r..r", 4);
        for (size_t r = 0; r < p->n_layer_rules; r++) {
            snprintf(names[r], sizeof names[r], "KEPT %s%s", p->layer_rules[r],
                     strcmp(p->layer_rules[r], rule) == 0 ? "*" : "");
            hd[4 + r] = names[r];
            align[4 + r] = 'r';
        }
        struct table t;
        table_init(&t, (int)nc, hd, align);
        for (size_t i = 0; i < p->n_layers; i++) {
            const Memtrain__LayerPlan *l = p->layers[i];
            snprintf(cell[0], sizeof cell[0], "%u", l->node);
            snprintf(cell[1], sizeof cell[1], "[%u] %s%s", l->layer,
                     l->in_block ? "residual: " : "", l->part);
            if (l->n_output == 3)
                snprintf(cell[2], sizeof cell[2], "%ux%ux%u", l->output[0], l->output[1],
                         l->output[2]);
            else
                snprintf(cell[2], sizeof cell[2], "?");
            snprintf(cell[3], sizeof cell[3], "%llu", (unsigned long long)l->params);
            for (size_t r = 0; r < p->n_layer_rules; r++) {
                if (refused(p, p->layer_rules[r]) || r >= l->n_kept)
                    snprintf(cell[4 + r], sizeof cell[4 + r], "n/a");
                else
                    fmt_bytes(cell[4 + r], sizeof cell[4 + r], l->kept[r]);
            }
            for (size_t k = 0; k < nc; k++)
                cells[k] = cell[k];
            table_add(&t, cells);
        }
        printf("\n");
        table_print(&t, stdout);
        table_free(&t);
        for (size_t i = 0; i < p->n_layer_refused; i++)   /* unless said above the table */
            if (!refused_why(p, p->layer_refused[i]->rule))
                printf("  n/a %s: %s\n", p->layer_refused[i]->rule, p->layer_refused[i]->reason);
    }
    free(hd);
    free(cells);
    free(cell);
    free(names);
    free(align);
}

static void json_layers(struct json *j, const Memtrain__PlanResponse *p)
{
    json_arr(j, "layers");
    for (size_t i = 0; i < p->n_layers; i++) {
        const Memtrain__LayerPlan *l = p->layers[i];
        json_obj(j, NULL);
        json_u64(j, "node", l->node);
        json_u64(j, "layer", l->layer);
        json_str(j, "kind", l->kind);
        json_str(j, "part", l->part);
        json_bool(j, "in_block", l->in_block);
        json_arr(j, "output");
        for (size_t k = 0; k < l->n_output; k++)
            json_u64(j, NULL, l->output[k]);
        json_arr_end(j);
        json_u64(j, "params", l->params);
        json_obj(j, "kept");
        for (size_t r = 0; r < p->n_layer_rules; r++) {
            if (refused(p, p->layer_rules[r]) || r >= l->n_kept)
                json_null(j, p->layer_rules[r]);
            else
                json_u64(j, p->layer_rules[r], l->kept[r]);
        }
        json_obj_end(j);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj(j, "refused");
    for (size_t i = 0; i < p->n_layer_refused; i++)
        json_str(j, p->layer_refused[i]->rule, p->layer_refused[i]->reason);
    json_obj_end(j);
}

/* Every rule side by side, one column each (the spec's rule marked *): the
 * planned ones, then those that refuse the spec, n/a, with why below. */
static void print_rules(const Memtrain__PlanResponse *p, const char *rule)
{
    size_t nr = p->n_rules + p->n_rules_refused, nc = nr + 1;
    const char **hd = calloc(nc, sizeof *hd);
    char (*names)[40] = calloc(nc, sizeof *names);
    char *align = calloc(nc + 1, 1);
    char (*cell)[32] = calloc(nc, sizeof *cell);
    const char **cells = calloc(nc, sizeof *cells);
    if (hd && names && align && cell && cells) {
        hd[0] = "";
        align[0] = '.';
        for (size_t r = 0; r < nr; r++) {
            const char *name = r < p->n_rules ? p->rules[r]->rule
                                              : p->rules_refused[r - p->n_rules]->rule;
            snprintf(names[r + 1], sizeof names[r + 1], "%s%s", name,
                     strcmp(name, rule) == 0 ? "*" : "");
            hd[r + 1] = names[r + 1];
            align[r + 1] = 'r';
        }
        printf("\n");
        struct table t;
        table_init(&t, (int)nc, hd, align);
        for (size_t i = 0; i < FMT_MEM_ROWS; i++) {
            snprintf(cell[0], sizeof cell[0], "  %s", fmt_mem_label(i));
            cells[0] = cell[0];
            for (size_t r = 0; r < nr; r++)
                cells[r + 1] = r < p->n_rules
                    ? fmt_bytes(cell[r + 1], sizeof cell[r + 1], fmt_mem_at(p->rules[r]->planned, i))
                    : "n/a";
            table_add(&t, cells);
        }
        table_print(&t, stdout);
        table_free(&t);
        for (size_t i = 0; i < p->n_rules_refused; i++)
            printf("  n/a %s: %s\n", p->rules_refused[i]->rule, p->rules_refused[i]->reason);
    }
    free(hd);
    free(names);
    free(align);
    free(cell);
    free(cells);
}

static void print_plan(const char *path, const Memtrain__PlanResponse *p)
{
    const Memtrain__JobSpec *s = p->spec;
    const char *rule = s && s->rule && s->rule->name[0] ? s->rule->name : "";
    char buf[512], a[32], b[32], c[32];
    printf("plan for %s", path);
    if (s)
        printf(": rule %s, batch %u", rule[0] ? rule : "bp", s->batch);
    if (s && s->model)
        printf(", model %s", fmt_model(buf, sizeof buf, s->model));
    printf("\n");

    static const char *const head[] = {"", "PLANNED", "BYTES"};
    struct table t;
    table_init(&t, 3, head, ".rr");
    for (size_t i = 0; i < FMT_MEM_ROWS; i++) {
        char label[32], exact[32];
        snprintf(label, sizeof label, "  %s", fmt_mem_label(i));
        snprintf(exact, sizeof exact, "%llu", (unsigned long long)fmt_mem_at(p->planned, i));
        const char *cells[] = {label, fmt_bytes(a, sizeof a, fmt_mem_at(p->planned, i)), exact};
        table_add(&t, cells);
    }
    table_print(&t, stdout);
    table_free(&t);

    if (p->n_rules + p->n_rules_refused > 0)
        print_rules(p, rule[0] ? rule : "bp");

    if (p->n_layers)
        print_layers(p, rule[0] ? rule : "bp");

    uint64_t peak = p->planned ? p->planned->peak_total : 0;
    printf("\nfits: %s: peak %s, limit %s, daemon budget %s\n", p->fits ? "yes" : "NO",
           fmt_bytes(a, sizeof a, peak), p->limit ? fmt_bytes(b, sizeof b, p->limit) : "none",
           p->budget ? fmt_bytes(c, sizeof c, p->budget) : "none");
}

int cmd_plan(struct mtctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"rule", required_argument, NULL, 'r'},
        MTCTL_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int opt;
    const char *rule = NULL;
    mtctl_getopt_reset(c, argv, "plan");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS "r:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            rule = optarg;
            break;
        MTCTL_OPT_DEFAULT(c, opt, plan_help)
        }
    }
    char *yaml;
    const char *yaml_name;
    int bad = spec_arg(c, argc, argv, &yaml, &yaml_name);
    if (bad)
        return bad;
    struct mt_err err = {0};
    Memtrain__PlanRequest pq = MEMTRAIN__PLAN_REQUEST__INIT;
    pq.spec_case = MEMTRAIN__PLAN_REQUEST__SPEC_YAML;
    pq.yaml = yaml;
    pq.yaml_name = (char *)yaml_name;
    pq.rule = (char *)(rule ? rule : "");
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_PLAN;
    req.plan = &pq;
    Memtrain__Response *resp;
    int rc = conn_call(c, &req, MEMTRAIN__RESPONSE__BODY_PLAN, &resp, &err);
    free(yaml);
    if (rc)
        return mtctl_fail(c, &err);
    const Memtrain__PlanResponse *p = resp->plan;
    const char *planned_rule = p->spec && p->spec->rule ? p->spec->rule->name : "";
    if (rule && strcmp(planned_rule[0] ? planned_rule : "bp", rule) != 0) {
        mt_err_set(&err, MT_E_PROTO, "memtraind ignored --rule %s (it predates the option) and "
                   "planned rule %s", rule, planned_rule[0] ? planned_rule : "bp");
        memtrain__response__free_unpacked(resp, NULL);
        return mtctl_fail(c, &err);
    }
    if (c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_str(&j, "spec_file", pq.yaml_name);
        json_memory_stats(&j, "planned", p->planned);
        json_arr(&j, "rules");
        for (size_t i = 0; i < p->n_rules; i++) {
            json_obj(&j, NULL);
            json_str(&j, "rule", p->rules[i]->rule);
            json_memory_stats(&j, "planned", p->rules[i]->planned);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj(&j, "rules_refused");   /* {"mezo": "why"}: the rules not in "rules" */
        for (size_t i = 0; i < p->n_rules_refused; i++)
            json_str(&j, p->rules_refused[i]->rule, p->rules_refused[i]->reason);
        json_obj_end(&j);
        json_u64(&j, "limit", p->limit);
        json_u64(&j, "budget", p->budget);
        json_bool(&j, "fits", p->fits);
        json_spec(&j, "spec", p->spec);
        if (p->n_layers)
            json_layers(&j, p);
        json_end(&j);
    } else {
        print_plan(pq.yaml_name, p);
    }
    memtrain__response__free_unpacked(resp, NULL);
    return MTCTL_EXIT_OK;
}

/* -------------------------------------------------------------------- ping */

static const char ping_help[] =
    "Usage: mtctl ping [OPTIONS]\n"
    "\n"
    "Ask memtraind for its version and uptime, and measure the round trip of\n"
    "the request (connecting excluded):\n"
    "  memtraind " MT_VERSION " at /run/user/1000/memtrain/memtraind.sock: up 3h12m,\n"
    "  round trip 0.18 ms\n"
    "\n"
    "Options:\n"
    "  -o json, --json        one JSON document: version, uptime_seconds,\n"
    "                         rtt_ms, socket\n"
    "      --socket PATH      the daemon's socket\n"
    "  -h, --help             this text\n"
    "\n"
    "Exit status: 0 the daemon answered, 3 unreachable, 1 any other failure.\n";

int cmd_ping(struct mtctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {MTCTL_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    int opt;
    mtctl_getopt_reset(c, argv, "ping");
    while ((opt = getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (opt) {
        MTCTL_OPT_DEFAULT(c, opt, ping_help)
        }
    }
    if (optind < argc)
        return mtctl_usage_error(c, "unexpected argument '%s'", argv[optind]);
    struct mt_err err = {0};
    if (conn_open(c, &err))
        return mtctl_fail(c, &err);
    Memtrain__PingRequest pq = MEMTRAIN__PING_REQUEST__INIT;
    Memtrain__Request req = MEMTRAIN__REQUEST__INIT;
    req.body_case = MEMTRAIN__REQUEST__BODY_PING;
    req.ping = &pq;
    Memtrain__Response *resp;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (conn_call(c, &req, MEMTRAIN__RESPONSE__BODY_PING, &resp, &err))
        return mtctl_fail(c, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6;
    const Memtrain__PingResponse *p = resp->ping;
    if (c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_str(&j, "version", p->version);
        json_u64(&j, "uptime_seconds", p->uptime_seconds);
        json_double(&j, "rtt_ms", ms);
        json_str(&j, "socket", c->socket_path);
        json_end(&j);
    } else {
        char up[32];
        printf("memtraind %s at %s: up %s, round trip %.2f ms\n", p->version, c->socket_path,
               fmt_duration(up, sizeof up, (double)p->uptime_seconds), ms);
    }
    memtrain__response__free_unpacked(resp, NULL);
    return MTCTL_EXIT_OK;
}
