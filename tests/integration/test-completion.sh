#!/bin/sh
# test-completion.sh: `mtctl completion bash` sourced in bash, and COMPREPLY
# checked as bash's TAB would fill it: commands, flags (from mtctl's option
# tables), a flag's values (the engine's rule names, the states, after a
# comma too), subcommands, spec files, and job ids asked of a real memtraind.
# zsh's script is parsed and its completion function run when zsh is
# installed.
set -eu
. "$(dirname "$0")/mtctl-daemon.sh"

cat >"$dir/a.yaml" <<YAML
name: tiny
dataset: {name: synthetic, synthetic_train: 256, synthetic_test: 64}
model: {input: 32, hidden: [16], classes: 4}
batch: 32
epochs: 1
threads: 1
YAML
out=$(mt submit "$dir/a.yaml") || fail "submit: $out"
id=$(echo "$out" | sed -n 's/^submitted job \([0-9]*\).*/\1/p')
[ -n "$id" ] || fail "no job id in: $out"

mt completion bash >"$dir/mtctl.bash" || fail "completion bash exited $?"
mkdir "$dir/specs" && touch "$dir/specs/one.yaml" "$dir/specs/two.yaml"

# comp WORD...: the completions of the last word (empty quotes: a new word),
# one a line, sorted.
comp() {
    (cd "$dir/specs" && bash -c '
        . "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        _mtctl
        printf "%s\n" "${COMPREPLY[@]}" | sort' sh "$dir/mtctl.bash" "$MTCTL" --socket "$sock" "$@")
}
expect() {  # expect "WANT" WORD...
    want=$1; shift
    got=$(comp "$@" | tr '\n' ' ' | sed 's/ $//')
    [ "$got" = "$want" ] || fail "completing [$*]: got '$got', expected '$want'"
}

expect "submit" su
expect "--version" --vers               # main()'s own options
expect "json" -o j
expect "show" -o json sh
expect "cancel ckpt compare completion" c
expect "--rule --rules" submit --ru
expect "memdfa mezo" submit --rule me
expect "memdfa mezo" plan -r me
expect "running,queued" ls --state running,q
expect "out-of-memory" ls -s ou
expect "export ls rm" ckpt ""
expect "--epoch" ckpt export --ep
expect "$id" show ""
expect "$id" ckpt ls ""
expect "bash zsh" completion ""
expect "--help" completion --he
expect "ping plan plot prune" help p
expect "one.yaml two.yaml" submit ""
expect "one.yaml" submit -n myname o
expect "" submit -n ""
expect "json" ls -o j

if command -v zsh >/dev/null; then
    # zsh runs the same _mtctl_complete (with shwordsplit); its wrapper hands
    # the lines to compadd, which needs a live completion widget: checked
    # here for syntax and the compdef call.
    mt completion zsh >"$dir/_mtctl" || fail "completion zsh exited $?"
    zsh -n "$dir/_mtctl" || fail "the zsh script does not parse"
    head -1 "$dir/_mtctl" | grep -q '^#compdef mtctl' || fail "no #compdef line"
    got=$(zsh -c 'compdef() { echo "compdef $*"; }
        . "$1"; shift
        _mtctl_complete 3 "$@" submit --rule me
        _mtctl_complete 3 "$@" ls --state running,q' zsh "$dir/_mtctl" "$MTCTL" | tr '\n' ' ')
    [ "$got" = "compdef _mtctl mtctl memdfa mezo running,queued " ] ||
        fail "zsh: got '$got'"
    id_z=$(zsh -c '. "$1" 2>/dev/null; _mtctl_complete 4 "$2" --socket "$3" show ""' zsh \
        "$dir/_mtctl" "$MTCTL" "$sock")
    [ "$id_z" = "$id" ] || fail "zsh: job ids '$id_z', expected '$id'"
else
    echo "zsh is not installed: its script was not checked"
fi
rc=0; mt completion fish >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "completion fish exited $rc, expected 2"
echo "completion ok"
