/* completion.c: `mtctl completion bash|zsh`, the shell completion script.
 *
 * Nothing in the script is a second list to keep up to date. The commands
 * come from main.c's command table; each command's flags from the very
 * getopt table that parses them (every getopt_long call goes through
 * mtctl_getopt_long below, which notes the table while the command answers
 * --help); its subcommands and positional arguments (ID, SPEC.yaml,
 * COMMAND, bash|zsh) from the Usage lines of that --help; the rule names
 * from the engine's rule table (rulenames.h, written at build time); the
 * states from mtctl's own state names. Job ids are asked of the daemon when
 * the user presses TAB (`mtctl ls -a`, first column).
 *
 * The script has one shell function that does the work in the syntax bash
 * and zsh share (_mtctl_complete INDEX WORDS...: the candidates for word
 * INDEX, one a line; "@files" for file names), and a small wrapper per
 * shell that turns its lines into COMPREPLY or compadd. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmt.h"
#include "mtctl.h"
#include "memtrain/version.h"
#include "rulenames.h"

#undef getopt_long

/* ------------------------------------------------------------ getopt tap */

/* The option table of the command running under describe(); NULL until
 * the command calls getopt_long. global: the first table of the process,
 * main()'s global options. */
static struct {
    int on;
    const struct option *longopts;
    const char *shortopts;
    const struct option *global_longopts;
    const char *global_shortopts;
} tap;

int mtctl_getopt_long(int argc, char *const argv[], const char *shortopts,
                      const struct option *longopts, int *longindex)
{
    if (!tap.global_longopts) {
        tap.global_longopts = longopts;
        tap.global_shortopts = shortopts;
    }
    if (tap.on && !tap.longopts) {
        tap.longopts = longopts;
        tap.shortopts = shortopts;
    }
    return getopt_long(argc, argv, shortopts, longopts, longindex);
}

static const char help_text[] =
    "Usage: mtctl completion bash|zsh\n"
    "\n"
    "Print a completion script for bash or zsh: commands, each command's flags,\n"
    "subcommands, job ids (asked of the daemon when you press TAB), rule names\n"
    "and states. Load it in the running shell with\n"
    "  source <(mtctl completion bash)\n"
    "or install it: `meson install` puts both in place\n"
    "(share/bash-completion/completions/mtctl.bash,\n"
    "share/zsh/site-functions/_mtctl).\n"
    "\n"
    "Options:\n"
    "  -h, --help             this text\n";

/* ------------------------------------------------------ what a command is */

/* One command or subcommand, as its --help and option table describe it. */
struct cmdinfo {
    char key[48];          /* "ls", "ckpt_export": the script's name for it */
    char opts[1024];       /* every flag, space separated: "-a --all -s --state ..." */
    char argopts[1024];    /* flags that take a value, each as FLAG:KIND ("--rule:rule") */
    char subs[256];        /* subcommands ("ls export") */
    char pos[128];         /* positional kinds: "id", "file", "command", or words */
};

static void append(char *buf, size_t cap, const char *word)
{
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s%s", n ? " " : "", word);
}

/* The completion a flag's value gets: rule names, states, files, output
 * formats, or nothing (a number, a name). */
static const char *value_kind(const char *longname, int shortname)
{
    if (longname && (strcmp(longname, "rule") == 0 || strcmp(longname, "rules") == 0))
        return "rule";
    if (longname && strcmp(longname, "state") == 0)
        return "state";
    if (longname && (strcmp(longname, "socket") == 0 || strcmp(longname, "out") == 0))
        return "file";
    if ((longname && strcmp(longname, "output") == 0) || shortname == 'o')
        return "output";
    return "";
}

/* The long option whose short form is `ch`, if any. */
static const struct option *long_of(const struct option *lo, int ch)
{
    for (; lo && lo->name; lo++)
        if (lo->val == ch)
            return lo;
    return NULL;
}

static void note_flags(struct cmdinfo *ci, const struct option *lo, const char *so)
{
    char w[64];
    for (const char *p = so ? so : ""; *p; p++) {
        if (*p == ':' || *p == '+' || *p == '-')
            continue;
        snprintf(w, sizeof w, "-%c", *p);
        append(ci->opts, sizeof ci->opts, w);
        if (p[1] == ':') {
            const struct option *l = long_of(lo, *p);
            snprintf(w, sizeof w, "-%c:%s", *p, value_kind(l ? l->name : NULL, *p));
            append(ci->argopts, sizeof ci->argopts, w);
        }
    }
    for (; lo && lo->name; lo++) {
        snprintf(w, sizeof w, "--%s", lo->name);
        append(ci->opts, sizeof ci->opts, w);
        if (lo->has_arg == required_argument) {
            snprintf(w, sizeof w, "--%s:%s", lo->name,
                     value_kind(lo->name, lo->val < 128 ? lo->val : 0));
            append(ci->argopts, sizeof ci->argopts, w);
        }
    }
}

/* A Usage token's positional kind: "ID..." -> id, "SPEC.yaml" -> file,
 * "COMMAND" -> command, "bash|zsh" -> the words; NULL for anything else. */
static const char *positional_kind(char *tok, char *words, size_t cap)
{
    char *t = tok + strspn(tok, "[");
    t[strcspn(t, "]")] = '\0';
    if (strstr(t, "ID") || strstr(t, "GROUP"))
        return "id";
    if (strstr(t, "COMMAND"))
        return "command";
    if (strstr(t, "SPEC") || strstr(t, "FILE") || strstr(t, ".yaml"))
        return "file";
    if (islower((unsigned char)t[0]) && strchr(t, '|')) {
        snprintf(words, cap, "%s", t);
        for (char *p = words; *p; p++)
            if (*p == '|')
                *p = ' ';
        return words;
    }
    return NULL;
}

/* Read the Usage lines of `help` (up to the first blank line): each is
 * "mtctl CMD [SUB] [OPTIONS] ARG... [-o FILE]". Without `sub`, a first
 * lowercase word after CMD is a subcommand (ci->subs); the positional kinds
 * of the lines of CMD (with `sub`: of CMD SUB) go to ci->pos. */
static void note_usage(struct cmdinfo *ci, const char *help, const char *cmd, const char *sub)
{
    char line[256], words[128];
    const char *p = help;
    while (*p && *p != '\n') {
        size_t n = strcspn(p, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
        p += n + (p[n] == '\n');
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        if (tok && strcmp(tok, "Usage:") == 0)
            tok = strtok_r(NULL, " ", &save);
        if (!tok || strcmp(tok, "mtctl") != 0)
            continue;
        tok = strtok_r(NULL, " ", &save);
        if (!tok || strcmp(tok, cmd) != 0)
            continue;
        tok = strtok_r(NULL, " ", &save);
        if (sub) {
            if (!tok || strcmp(tok, sub) != 0)
                continue;
            tok = strtok_r(NULL, " ", &save);
        } else if (tok && islower((unsigned char)tok[0]) && !strchr(tok, '|')) {
            append(ci->subs, sizeof ci->subs, tok);
            continue;
        }
        for (; tok; tok = strtok_r(NULL, " ", &save)) {
            if (tok[0] == '-' || (tok[0] == '[' && tok[1] == '-')) {
                /* a flag in the synopsis, and its value's name */
                if (!strchr(tok, ']'))
                    tok = strtok_r(NULL, " ", &save);
                continue;
            }
            const char *k = positional_kind(tok, words, sizeof words);
            if (k && !strstr(ci->pos, k))
                append(ci->pos, sizeof ci->pos, k);
        }
    }
}

/* Run `words... --help` with stdout in a temporary file and the getopt tap
 * on; fill ci from the option table and the text. */
static int describe(struct mtctl *c, const struct mtctl_command *cmd, const char *sub,
                    struct cmdinfo *ci, struct mt_err *err)
{
    memset(ci, 0, sizeof *ci);
    snprintf(ci->key, sizeof ci->key, "%s%s%s", cmd->name, sub ? "_" : "", sub ? sub : "");
    FILE *tmp = tmpfile();
    if (!tmp)
        return mt_err_set(err, MT_E_IO, "completion: a temporary file: %s", strerror(errno));
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    if (saved < 0 || dup2(fileno(tmp), STDOUT_FILENO) < 0) {
        if (saved >= 0)
            close(saved);
        fclose(tmp);
        return mt_err_set(err, MT_E_IO, "completion: dup: %s", strerror(errno));
    }
    char *argv[4] = {(char *)cmd->name, NULL, NULL, NULL};
    int argc = 1;
    if (sub)
        argv[argc++] = (char *)sub;
    argv[argc++] = (char *)"--help";
    tap.longopts = NULL;
    tap.shortopts = NULL;
    tap.on = 1;
    struct mtctl quiet = *c;
    quiet.json = 0;
    quiet.socket_path = "/nonexistent/memtrain-completion.sock"; /* --help never connects */
    cmd->run(&quiet, argc, argv);
    conn_close(&quiet);
    tap.on = 0;
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);

    char help[8192];
    size_t n = 0;
    rewind(tmp);
    n = fread(help, 1, sizeof help - 1, tmp);
    help[n] = '\0';
    fclose(tmp);
    note_flags(ci, tap.longopts, tap.shortopts);
    note_usage(ci, help, cmd->name, sub);
    return 0;
}

/* ---------------------------------------------------------- the script */

/* The shell function both shells run, in the syntax they share. zsh needs
 * shwordsplit for `for w in $list`. */
static const char core_fn[] =
    "# _mtctl_complete INDEX WORD...: the candidates for word INDEX (0 = the\n"
    "# program) of the command line WORD..., one a line; @files: file names.\n"
    "_mtctl_complete() {\n"
    "    [ -n \"$ZSH_VERSION\" ] && setopt localoptions shwordsplit\n"
    "    local IFS=$' \\t\\n' index=$1; shift\n"
    "    local prog=$1 cur='' prev='' key='' sock='' i=0 w skip=0 npos=0 sub=''\n"
    "    local opts='' argopts='' subs='' pos='' kind=''\n"
    "    for w in \"$@\"; do\n"
    "        if [ $i -eq $index ]; then cur=$w; break; fi\n"
    "        if [ $i -gt 0 ]; then\n"
    "            if [ $skip -eq 1 ]; then\n"
    "                skip=0\n"
    "                [ \"$prev\" = --socket ] && sock=$w\n"
    "            elif [ -z \"$key\" ]; then\n"
    "                case \" $_mtctl_global_argopts \" in\n"
    "                *\" $w:\"*) skip=1 ;;\n"
    "                *) case $w in -*) ;; *) key=$w; _mtctl_spec \"$key\" ;; esac ;;\n"
    "                esac\n"
    "            elif [ -n \"$subs\" ] && [ -z \"$sub\" ] && [ \"${w#-}\" = \"$w\" ]; then\n"
    "                sub=$w; key=${key}_$w; _mtctl_spec \"$key\"\n"
    "            else\n"
    "                case \" $argopts \" in\n"
    "                *\" $w:\"*) skip=1 ;;\n"
    "                *) [ \"${w#-}\" = \"$w\" ] && npos=$((npos + 1)) ;;\n"
    "                esac\n"
    "            fi\n"
    "        fi\n"
    "        prev=$w; i=$((i + 1))\n"
    "    done\n"
    "    if [ $skip -eq 1 ]; then\n"
    "        # the value of the flag before: what kind of value is it?\n"
    "        [ -z \"$key\" ] && argopts=$_mtctl_global_argopts\n"
    "        for w in $argopts; do\n"
    "            [ \"${w%%:*}\" = \"$prev\" ] && kind=${w#*:}\n"
    "        done\n"
    "        _mtctl_values \"$kind\" \"$cur\"\n"
    "        return\n"
    "    fi\n"
    "    if [ -z \"$key\" ]; then\n"
    "        case $cur in\n"
    "        -*) _mtctl_match \"$cur\" $_mtctl_global_opts ;;\n"
    "        *) _mtctl_match \"$cur\" $_mtctl_commands ;;\n"
    "        esac\n"
    "        return\n"
    "    fi\n"
    "    case $cur in\n"
    "    -*) _mtctl_match \"$cur\" $opts; return ;;\n"
    "    esac\n"
    "    if [ -n \"$subs\" ] && [ -z \"$sub\" ]; then\n"
    "        _mtctl_match \"$cur\" $subs\n"
    "        return\n"
    "    fi\n"
    "    for w in $pos; do\n"
    "        case $w in\n"
    "        id) \"$prog\" ${sock:+--socket \"$sock\"} ls -a 2>/dev/null |\n"
    "                awk -v cur=\"$cur\" '$1 ~ /^[0-9]+$/ && index($1, cur) == 1 { print $1 }' ;;\n"
    "        file) echo @files ;;\n"
    "        command) [ $npos -eq 0 ] && _mtctl_match \"$cur\" $_mtctl_commands ;;\n"
    "        *) [ $npos -eq 0 ] && _mtctl_match \"$cur\" $w ;;\n"
    "        esac\n"
    "    done\n"
    "}\n"
    "\n"
    "# _mtctl_match CUR WORD...: the words that begin with CUR.\n"
    "_mtctl_match() {\n"
    "    local cur=$1 w; shift\n"
    "    for w in \"$@\"; do\n"
    "        case $w in \"$cur\"*) echo \"$w\" ;; esac\n"
    "    done\n"
    "}\n"
    "\n"
    "# _mtctl_values KIND CUR: a flag's value; rules and states also after a\n"
    "# comma (--rules bp,dfa).\n"
    "_mtctl_values() {\n"
    "    [ -n \"$ZSH_VERSION\" ] && setopt localoptions shwordsplit\n"
    "    local IFS=$' \\t\\n' kind=$1 cur=$2 head='' w\n"
    "    case $kind in\n"
    "    rule|state)\n"
    "        case $cur in *,*) head=${cur%,*},; cur=${cur##*,} ;; esac\n"
    "        if [ $kind = rule ]; then set -- $_mtctl_rules; else set -- $_mtctl_states; fi\n"
    "        for w in \"$@\"; do\n"
    "            case $w in \"$cur\"*) echo \"$head$w\" ;; esac\n"
    "        done ;;\n"
    "    output) _mtctl_match \"$cur\" $_mtctl_formats; echo @files ;;\n"
    "    file) echo @files ;;\n"
    "    esac\n"
    "}\n";

static const char bash_wrapper[] =
    "_mtctl() {\n"
    "    local IFS=$'\\n' line cur=${COMP_WORDS[COMP_CWORD]}\n"
    "    COMPREPLY=()\n"
    "    for line in $(_mtctl_complete \"$COMP_CWORD\" \"${COMP_WORDS[@]}\"); do\n"
    "        if [ \"$line\" = @files ]; then\n"
    "            COMPREPLY+=($(compgen -f -- \"$cur\"))\n"
    "        else\n"
    "            COMPREPLY+=(\"$line\")\n"
    "        fi\n"
    "    done\n"
    "}\n"
    "complete -o filenames -F _mtctl mtctl\n";

static const char zsh_wrapper[] =
    "_mtctl() {\n"
    "    local -a found\n"
    "    local line files=0\n"
    "    for line in ${(f)\"$(_mtctl_complete $((CURRENT - 1)) \"${words[@]}\")\"}; do\n"
    "        if [[ $line == @files ]]; then files=1; else found+=(\"$line\"); fi\n"
    "    done\n"
    "    (( ${#found} )) && compadd -Q -- \"${found[@]}\"\n"
    "    (( files )) && _files\n"
    "    return 0\n"
    "}\n"
    "if [[ $funcstack[1] == _mtctl ]]; then\n"
    "    _mtctl \"$@\"\n"
    "else\n"
    "    compdef _mtctl mtctl\n"
    "fi\n";

/* A shell word in single quotes (the texts here have no quote in them). */
static void put_list(const char *name, const char *value)
{
    printf("%s='%s'\n", name, value);
}

static void put_spec_case(const struct cmdinfo *ci)
{
    printf("    %s)\n        opts='%s'\n        argopts='%s'\n        subs='%s'\n"
           "        pos='%s' ;;\n",
           ci->key, ci->opts, ci->argopts, ci->subs, ci->pos);
}

static int emit(struct mtctl *c, int zsh, struct mt_err *err)
{
    size_t n;
    const struct mtctl_command *cmds = mtctl_commands(&n);
    char names[1024] = "", rules[512] = "", states[256] = "", w[64];
    for (size_t i = 0; i < n; i++)
        append(names, sizeof names, cmds[i].name);
    append(names, sizeof names, "help");
    for (size_t i = 0; mt_rule_names[i]; i++)
        append(rules, sizeof rules, mt_rule_names[i]);
    for (int s = MEMTRAIN__JOB_STATE__QUEUED; strcmp(fmt_state(s), "UNKNOWN") != 0; s++) {
        snprintf(w, sizeof w, "%s", fmt_state(s));
        for (char *p = w; *p; p++)
            *p = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
        append(states, sizeof states, w);
    }

    /* Describe every command first: describe() redirects stdout. */
    size_t cap = 4 * n + 8;   /* commands and their subcommands */
    struct cmdinfo *infos = calloc(cap + 1, sizeof *infos);
    if (!infos)
        return mt_err_set(err, MT_E_NOMEM, "out of memory");
    size_t k = 0;
    int rc = 0;
    /* main()'s global options, in the slot after the commands' */
    struct cmdinfo *global = &infos[cap];
    note_flags(global, tap.global_longopts, tap.global_shortopts);
    for (size_t i = 0; i < n && !rc && k < cap; i++) {
        size_t top = k;
        rc = describe(c, &cmds[i], NULL, &infos[k++], err);
        char subs[256];
        snprintf(subs, sizeof subs, "%s", rc ? "" : infos[top].subs);
        char *save = NULL;
        for (char *s = strtok_r(subs, " ", &save); s && !rc && k < cap;
             s = strtok_r(NULL, " ", &save))
            rc = describe(c, &cmds[i], s, &infos[k++], err);
    }
    if (!rc) {
        printf("%s# mtctl %s completion for %s, written by `mtctl completion %s`.\n"
               "# Commands, flags and subcommands are mtctl's own (its command and option\n"
               "# tables); rule names the engine's; job ids come from `mtctl ls -a`.\n\n",
               zsh ? "#compdef mtctl\n" : "", MT_VERSION, zsh ? "zsh" : "bash",
               zsh ? "zsh" : "bash");
        put_list("_mtctl_commands", names);
        put_list("_mtctl_rules", rules);
        put_list("_mtctl_states", states);
        put_list("_mtctl_formats", "json text");
        put_list("_mtctl_global_opts", global->opts);
        put_list("_mtctl_global_argopts", global->argopts);
        printf("\n# _mtctl_spec KEY: the flags (opts; argopts: those that take a value,\n"
               "# as FLAG:KIND), subcommands and positional kinds of command KEY.\n"
               "_mtctl_spec() {\n    opts='' argopts='' subs='' pos=''\n    case $1 in\n");
        for (size_t i = 0; i < k; i++)
            put_spec_case(&infos[i]);
        printf("    help)\n        pos='command' ;;\n    esac\n}\n\n%s\n%s", core_fn,
               zsh ? zsh_wrapper : bash_wrapper);
    }
    free(infos);
    return rc;
}

int cmd_completion(struct mtctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {MTCTL_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    int opt;
    mtctl_getopt_reset(c, argv, "completion");
    /* through the tap, as every other command (getopt_long is #undef'd here) */
    while ((opt = mtctl_getopt_long(argc, argv, MTCTL_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (opt) {
        MTCTL_OPT_DEFAULT(c, opt, help_text)
        }
    }
    if (argc - optind != 1)
        return mtctl_usage_error(c, "expected one shell: bash or zsh");
    const char *shell = argv[optind];
    if (strcmp(shell, "bash") != 0 && strcmp(shell, "zsh") != 0)
        return mtctl_usage_error(c, "unknown shell '%s' (expected bash or zsh)", shell);
    struct mt_err err = {0};
    if (emit(c, strcmp(shell, "zsh") == 0, &err))
        return mtctl_fail(c, &err);
    return MTCTL_EXIT_OK;
}
