#!/bin/sh
# test-install.sh MESON BUILDDIR SOURCEDIR: `meson install --destdir` into a
# temporary directory, then every man page renders without a warning
# (groff -ww -z -man, and man -l as a reader would see it), the spec
# reference and the completion scripts are in place. Skipped (77) without
# groff or man (deploy/setup-debian.sh test installs groff-base and man-db).
set -eu
meson=$1 build=$2 src=$3
command -v groff >/dev/null || { echo "groff is not installed (groff-base)"; exit 77; }
command -v man >/dev/null || { echo "man is not installed (man-db)"; exit 77; }
dest=$(mktemp -d /tmp/memtrain-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$meson" install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$dest.log" 2>&1 ||
    { cat "$dest.log" >&2; rm -f "$dest.log"; fail "meson install"; }
rm -f "$dest.log"

# find1 PATTERN: the one installed file whose path ends in PATTERN
find1() {
    f=$(find "$dest" -path "*/$1" -type f)
    [ -n "$f" ] && [ "$(echo "$f" | wc -l)" -eq 1 ] || fail "not installed once: $1 (found: $f)"
    echo "$f"
}

for page in man1/mtctl.1 man1/memtrain-run.1 man8/memtraind.8 man5/memtraind.yaml.5 \
            man5/memtrain-spec.5; do
    f=$(find1 "share/man/$page")
    warn=$(groff -ww -z -man "$f" 2>&1) || fail "groff failed on $page: $warn"
    [ -z "$warn" ] || fail "groff warns on $page: $warn"
    out=$(MANWIDTH=80 man -l "$f" 2>"$dest/man.err") || fail "man -l $page: $(cat "$dest/man.err")"
    [ ! -s "$dest/man.err" ] || fail "man -l $page says: $(cat "$dest/man.err")"
    name=$(basename "$page" | sed 's/\.[0-9]$//')
    echo "$out" | grep -q "^NAME" || fail "$page has no NAME section"
    # a request that ended up as text (two macros on one line, a lost newline)
    bad=$(echo "$out" | grep -E '\.(BR|BI|IR|RB|TP|TQ|PP|IP|SH|SS|RS|RE)') &&
        fail "$page shows roff requests as text: $bad"
    echo "$out" | grep -q "$name" || fail "$page does not name $name"
    echo "$page: $(echo "$out" | wc -l) lines"
done

# The generated pages carry what they are made from.
spec=$(find1 share/man/man5/memtrain-spec.5)
MANWIDTH=200 man -l "$spec" 2>/dev/null | grep -q "keep_checkpoints" || fail "memtrain-spec(5) lacks keep_checkpoints"
conf=$(find1 share/man/man5/memtraind.yaml.5)
MANWIDTH=200 man -l "$conf" 2>/dev/null | grep -q "metrics_textfile" || fail "memtraind.yaml(5) lacks metrics_textfile"

cmp -s "$(find1 share/doc/memtrain/spec-reference.md)" "$src/docs/spec-reference.md" ||
    fail "share/doc/memtrain/spec-reference.md differs from docs/spec-reference.md"
find1 share/doc/memtrain/rules/asa.md >/dev/null
grep -q "complete -o filenames -F _mtctl mtctl" "$(find1 share/bash-completion/completions/mtctl.bash)" ||
    fail "the bash completion script is not mtctl's"
head -1 "$(find1 share/zsh/site-functions/_mtctl)" | grep -q "^#compdef mtctl" ||
    fail "the zsh completion script is not mtctl's"
echo "install ok"
