/* main.c: mtctl's entry point: global options, the default socket, the
 * command table, and the mapping from errors to exit statuses. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compare.h"
#include "fmt.h"
#include "mtctl.h"
#include "memtrain/sockpath.h"
#include "memtrain/version.h"
#include "memtrain/wire.h"
#include "plot.h"
#include "report.h"

static const char help_text[] =
    "Usage: mtctl [--socket PATH] [-o json|--json] COMMAND [ARGS...]\n"
    "\n"
    "mtctl is the client of memtraind, the memtrain training daemon: it submits\n"
    "training jobs, follows them live, and fetches their metrics and checkpoints.\n"
    "\n"
    "Commands:\n"
    "  submit SPEC.yaml     submit a training job and print its id\n"
    "  ls                   list jobs\n"
    "  show ID              everything about one job\n"
    "  watch ID             follow a job live until it ends\n"
    "  wait ID              block until a job ends; exit with its state's status\n"
    "  cancel ID            stop a queued or running job\n"
    "  logs ID              print a job's log (-f: keep following)\n"
    "  metrics ID           a job's epoch history as a table, CSV or JSON\n"
    "  report ID...         error and memory of jobs side by side, with the TinyFoA\n"
    "                       paper's counting and figures (--html FILE: one page)\n"
    "  compare ID|GROUP...  jobs side by side by accuracy and memory, the Pareto\n"
    "                       front marked\n"
    "  plot ID|GROUP... -o FILE.svg|FILE.png\n"
    "                       accuracy per epoch, memory by category, accuracy\n"
    "                       against peak memory, drawn\n"
    "  ckpt ls ID           list a job's checkpoints\n"
    "  ckpt export ID       write a checkpoint's weights as a NumPy .npz file\n"
    "  ckpt rm ID [EPOCH]   remove a job's checkpoints (all, or those epochs)\n"
    "  rm ID...             remove jobs and everything stored for them\n"
    "  prune                remove your ended jobs (--state, --older-than), or only\n"
    "                       their older checkpoints (--keep-checkpoints N)\n"
    "  df                   the store's size by job and by kind\n"
    "  plan SPEC.yaml       the memory a spec would need, under every rule\n"
    "  ping                 the daemon's version, uptime and round-trip time\n"
    "  completion bash|zsh  print a shell completion script\n"
    "  help [COMMAND]       this text, or a command's\n"
    "\n"
    "Other tools' names work too: list and ps (ls), get (ls; with an ID, show),\n"
    "describe (show), kill and stop (cancel), log (logs). A mistyped command\n"
    "gets a \"did you mean\".\n"
    "\n"
    "Global options (every command also takes them after its name):\n"
    "  --socket PATH        the daemon's socket; default $MEMTRAIN_SOCKET, else the\n"
    "                       first that exists of $XDG_RUNTIME_DIR/memtrain/memtraind.sock,\n"
    "                       /tmp/memtrain-UID/memtraind.sock (a daemon started by hand)\n"
    "                       and " MT_SOCKET_SYSTEM " (the service)\n"
    "  -o json, --json      output for programs: one JSON document, or one JSON\n"
    "                       object per line for streams (watch, logs -f, submit\n"
    "                       --follow); each has \"schema_version\": 1\n"
    "                       usage errors too are a JSON {\"error\": ...} document\n"
    "  -o wide|name|csv     for ls and top: more columns, ids only, CSV; name also\n"
    "                       for show and cancel, csv for metrics\n"
    "  -h, --help           this text; `mtctl COMMAND --help` describes a command\n"
    "  -V, --version        print mtctl's version\n"
    "\n"
    "Exit status:\n"
    "  0    success\n"
    "  1    error (the daemon's message is printed on stderr)\n"
    "  2    usage error\n"
    "  3    memtraind unreachable (nothing listens on the socket)\n"
    "  4    job or checkpoint not found\n"
    "  5    permission denied\n"
    "  wait, watch and submit --follow exit with the job's final state:\n"
    "  0 COMPLETED, 10 FAILED, 11 CANCELLED, 12 OUT_OF_MEMORY, 13 INTERRUPTED\n"
    "  124  wait --timeout passed (the job goes on)\n"
    "  130  Ctrl-C stopped wait, watch or submit --follow (the job goes on)\n"
    "\n"
    "See mtctl(1).\n";

static const struct mtctl_command commands[] = {
    {"submit", cmd_submit},   {"ls", cmd_ls},       {"show", cmd_show},
    {"watch", cmd_watch},     {"wait", cmd_wait},   {"cancel", cmd_cancel},
    {"logs", cmd_logs},       {"metrics", cmd_metrics}, {"ckpt", cmd_ckpt},
    {"plan", cmd_plan},       {"ping", cmd_ping},       {"report", cmd_report},
    {"resubmit", cmd_resubmit},
    {"rm", cmd_rm},
    {"prune", cmd_prune},
    {"df", cmd_df},
    {"compare", cmd_compare},
    {"plot", cmd_plot},
    {"completion", cmd_completion},
    {"top", cmd_top},
};

/* The names people type from other tools (kubectl, docker, Slurm): each maps
 * to a command of ours; `get` is ls without an argument and show with one.
 * `delete` is rm when this mtctl has it; otherwise the hint says what does
 * exist. */
static const struct alias {
    const char *name, *to, *to_with_arg, *hint;
} aliases[] = {
    {"list", "ls", NULL, NULL},
    {"ps", "ls", NULL, NULL},
    {"get", "ls", "show", NULL},
    {"describe", "show", NULL, NULL},
    {"delete", "rm", NULL, "did you mean 'mtctl cancel'? (it stops a job; stored jobs stay)"},
    {"kill", "cancel", NULL, NULL},
    {"stop", "cancel", NULL, NULL},
    {"log", "logs", NULL, NULL},
};

const struct mtctl_command *mtctl_commands(size_t *n)
{
    *n = sizeof commands / sizeof commands[0];
    return commands;
}

static const struct mtctl_command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}


/* Levenshtein distance of a and b, both short (command names). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[32];
    if (la >= 32 || lb >= 32)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* An unknown command: a usage error, with the nearest command (at most two
 * edits away) or the alias's hint as "did you mean". */
static int unknown_command(struct mtctl *c, const char *name, const char *hint)
{
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; !hint && i < sizeof commands / sizeof commands[0]; i++) {
        size_t d = edit_distance(name, commands[i].name);
        if (d < bd)
            bd = d, best = commands[i].name;
    }
    char buf[160];
    if (best)
        snprintf(buf, sizeof buf, "did you mean 'mtctl %s'?", best);
    c->cmd = "mtctl";
    return mtctl_usage_error(c, "unknown command '%s'%s%s", name, hint || best ? "; " : "",
                             hint ? hint : best ? buf : "");
}

/* The command `name` runs: its own, or an alias's (NULL with *hint set when
 * the alias's target is missing from this build). */
static const struct mtctl_command *resolve_command(const char *name, int has_arg, const char **hint)
{
    const struct mtctl_command *cmd = find_command(name);
    *hint = NULL;
    for (size_t i = 0; !cmd && i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcmp(aliases[i].name, name) != 0)
            continue;
        cmd = find_command(has_arg && aliases[i].to_with_arg ? aliases[i].to_with_arg
                                                             : aliases[i].to);
        if (!cmd)
            *hint = aliases[i].hint;
    }
    return cmd;
}

int mtctl_output_ok(const char *cmd, int output)
{
    static const struct {
        const char *cmd;
        unsigned mask;
    } extra[] = {
        {"ls", 1u << MTCTL_OUT_WIDE | 1u << MTCTL_OUT_NAME | 1u << MTCTL_OUT_CSV},
        {"top", 1u << MTCTL_OUT_WIDE | 1u << MTCTL_OUT_NAME | 1u << MTCTL_OUT_CSV},
        {"show", 1u << MTCTL_OUT_NAME},
        {"metrics", 1u << MTCTL_OUT_CSV},
        {"cancel", 1u << MTCTL_OUT_NAME},
    };
    if (output == MTCTL_OUT_TEXT || output == MTCTL_OUT_JSON)
        return 1;
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        if (strcmp(extra[i].cmd, cmd) == 0)
            return (extra[i].mask >> output) & 1;
    return 0;
}

static const char *const output_names[] = {"text", "json", "wide", "name", "csv"};

/* c->cmd is "mtctl ls": the command's name follows "mtctl ". */
static int check_output(struct mtctl *c)
{
    const char *name = strncmp(c->cmd, "mtctl ", 6) == 0 ? c->cmd + 6 : c->cmd;
    if (mtctl_output_ok(name, c->output))
        return 0;
    return mtctl_usage_error(c, "-o %s: this command prints json or text", output_names[c->output]);
}

void mtctl_getopt_reset(struct mtctl *c, char **argv, const char *name)
{
    static char prog[64];
    snprintf(prog, sizeof prog, "mtctl %s", name);
    argv[0] = prog;
    c->cmd = prog;
    optind = 0;  /* glibc: start afresh, with the default (permuting) order */
    opterr = 1;
}

int mtctl_usage_error(struct mtctl *c, const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: ", c->cmd);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    fprintf(stderr, "Try '%s --help'.\n", c->cmd);
    if (c->json) {  /* a program reading JSON gets its error as JSON too */
        char msg[512];
        snprintf(msg, sizeof msg, "invalid usage (see '%s --help')", c->cmd);
        if (fmt) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(msg, sizeof msg, fmt, ap);
            va_end(ap);
        }
        struct json j;
        json_begin(&j, stdout);
        json_obj(&j, "error");
        json_str(&j, "status", "USAGE");
        json_str(&j, "message", msg);
        json_i64(&j, "exit_code", MTCTL_EXIT_USAGE);
        json_obj_end(&j);
        json_end(&j);
    }
    return MTCTL_EXIT_USAGE;
}

int mtctl_opt(struct mtctl *c, int opt, const char *arg, const char *help)
{
    switch (opt) {
    case 'h':
        fputs(help, stdout);
        return MTCTL_DONE;
    case MTCTL_OPT_JSON:
        c->json = 1;
        c->output = MTCTL_OUT_JSON;
        return 0;
    case 'o':
        for (size_t i = 0; i < sizeof output_names / sizeof output_names[0]; i++)
            if (strcmp(arg, output_names[i]) == 0) {
                c->output = (int)i;
                c->json = c->output == MTCTL_OUT_JSON;
                return check_output(c);
            }
        return mtctl_usage_error(c, "unknown output format '%s' (expected json, text, wide, "
                                 "name or csv)", arg);
    case MTCTL_OPT_SOCKET:
        c->socket_path = arg;
        return 0;
    }
    return mtctl_usage_error(c, NULL);  /* getopt printed what was wrong */
}

int mtctl_exit_code(int code)
{
    switch (code) {
    case 0: return MTCTL_EXIT_OK;
    case MT_E_UNREACHABLE: return MTCTL_EXIT_UNREACHABLE;
    case MT_E_NOTFOUND: return MTCTL_EXIT_NOTFOUND;
    case MT_E_PERM: return MTCTL_EXIT_PERM;
    }
    return MTCTL_EXIT_ERROR;
}

int mtctl_fail(struct mtctl *c, const struct mt_err *err)
{
    int status = mtctl_exit_code(err->code);
    fflush(stdout);
    fprintf(stderr, "mtctl: %s\n", err->msg[0] ? err->msg : mt_strerror(err->code));
    if (c->json) {
        struct json j;
        json_begin(&j, stdout);
        json_obj(&j, "error");
        json_str(&j, "status", c->status >= 0 ? conn_status_name(c->status) : NULL);
        json_str(&j, "message", err->msg[0] ? err->msg : mt_strerror(err->code));
        json_i64(&j, "exit_code", status);
        json_obj_end(&j);
        json_end(&j);
    }
    return status;
}

int mtctl_parse_label(struct mtctl *c, char *arg, struct mtctl_labels *ls)
{
    char *eq = strchr(arg, '=');
    if (ls->n == MTCTL_LABELS_MAX)
        return mtctl_usage_error(c, "at most %d labels", MTCTL_LABELS_MAX);
    if (!eq || eq == arg)
        return mtctl_usage_error(c, "label '%s': expected KEY=VALUE", arg);
    *eq = '\0';
    Memtrain__Label *l = &ls->items[ls->n];
    memtrain__label__init(l);
    l->key = arg;
    l->value = eq + 1;
    ls->ptrs[ls->n++] = l;
    return 0;
}

int mtctl_parse_id(struct mtctl *c, const char *arg, uint64_t *id)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (arg[0] < '0' || arg[0] > '9' || *end || errno || v == 0)
        return mtctl_usage_error(c, "'%s' is not a job id (a positive integer)", arg);
    *id = v;
    return 0;
}

/* $MEMTRAIN_SOCKET, else the first socket of the shared list that exists
 * (memtrain/sockpath.h); c->socket_hint says what was found otherwise. */
static void default_socket(struct mtctl *c)
{
    static struct mt_socket_choice choice;
    const char *env = getenv("MEMTRAIN_SOCKET");
    if (env && *env) {
        c->socket_path = env;
        return;
    }
    struct mt_socket_list l;
    mt_socket_candidates(&l);
    mt_socket_choose(&l, &choice);
    c->socket_path = choice.path;
    c->socket_hint = choice.hint;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, MTCTL_OPT_SOCKET},
        {"json", no_argument, NULL, MTCTL_OPT_JSON},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct mtctl c = {.fd = -1, .status = -1, .cmd = "mtctl"};
    int opt, rc;

    /* A usage error found before -o json is read is still a JSON error. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-ojson") == 0 ||
            strcmp(argv[i], "--output=json") == 0 ||
            ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc &&
             strcmp(argv[i + 1], "json") == 0))
            c.json = 1;
    /* a daemon that goes away must give EPIPE, not kill us */
    signal(SIGPIPE, SIG_IGN);
    c.tty = isatty(STDOUT_FILENO);
    while ((opt = getopt_long(argc, argv, "+ho:V", longopts, NULL)) != -1) {
        switch (opt) {
        case 'V':
            printf("mtctl %s (protocol %d)\n", MT_VERSION, MT_PROTOCOL_VERSION);
            return MTCTL_EXIT_OK;
        default:
            if ((rc = mtctl_opt(&c, opt, optarg, help_text)))
                return rc == MTCTL_DONE ? MTCTL_EXIT_OK : rc;
        }
    }
    if (optind >= argc) {
        fputs(help_text, stderr);
        return MTCTL_EXIT_USAGE;
    }
    if (!c.socket_path)
        default_socket(&c);

    char **cargv = argv + optind;
    int cargc = argc - optind;
    if (strcmp(cargv[0], "help") == 0) {
        if (cargc < 2) {
            fputs(help_text, stdout);
            return MTCTL_EXIT_OK;
        }
        /* `mtctl help ls` is `mtctl ls --help` */
        char *hargv[] = {cargv[1], (char *)"--help", NULL};
        const char *hint;
        const struct mtctl_command *cmd = resolve_command(cargv[1], 0, &hint);
        if (!cmd)
            return unknown_command(&c, cargv[1], hint);
        return cmd->run(&c, 2, hargv);
    }
    /* `get 12`: an argument that is not an option picks the alias's second form */
    static const char *const valued[] = {"-o", "--output", "-s", "--state", "-n", "--limit",
                                         "-l", "--label", "--socket"};
    int has_arg = 0;
    for (int i = 1; i < cargc; i++) {
        int value = 0;  /* the value of the option before it */
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            value |= strcmp(cargv[i - 1], valued[k]) == 0;
        if (cargv[i][0] != '-' && !value)
            has_arg = 1;
    }
    const char *hint;
    const struct mtctl_command *cmd = resolve_command(cargv[0], has_arg, &hint);
    if (!cmd)
        return unknown_command(&c, cargv[0], hint);
    c.cmd = cmd->name;
    if ((rc = check_output(&c)))
        return rc;
    rc = cmd->run(&c, cargc, cargv);
    conn_close(&c);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        /* a reader that stopped reading (| head) needs no message */
        if (errno != EPIPE)
            fprintf(stderr, "mtctl: writing output: %s\n", strerror(errno));
        return rc ? rc : MTCTL_EXIT_ERROR;
    }
    return rc;
}
