#!/bin/bash
# run.sh TARGET CORPUS ARTIFACTS: run one libFuzzer target for
# MT_FUZZ_SECONDS (default 60) on a temporary copy of its seed corpus (the
# committed one is never written to) with its dictionary, one job; a leak,
# crash or timeout (10 s for one input) fails, leaving the input that did it
# in the ARTIFACTS directory (meson passes the build's meson-logs).
# libFuzzer reports errors with exit 77 by default, which meson counts as a
# skip: -error_exitcode=1 makes a crash or leak a failure.
# Ends with libFuzzer's final stats (stat::number_of_executed_units ...).
set -euo pipefail
target=$1
corpus=$2
seconds=${MT_FUZZ_SECONDS:-60}
artifacts=$3
work=$(mktemp -d /tmp/mt-fuzz-corpus.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$corpus"/. "$work"/
mkdir -p "$artifacts"
# tests/fuzz/<target>.dict, when there is one: the keys and words the reader knows.
dict=$(dirname "$(dirname "$corpus")")/$(basename "$corpus").dict
dictarg=()
[ -f "$dict" ] && dictarg=(-dict="$dict")
"$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -error_exitcode=1 \
    "${dictarg[@]}" -artifact_prefix="$artifacts/$(basename "$target")-" "$work"
