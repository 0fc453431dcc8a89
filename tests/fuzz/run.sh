#!/bin/bash
# run.sh TARGET CORPUS: run one libFuzzer target for MT_FUZZ_SECONDS
# (default 60) on a temporary copy of its seed corpus (the committed one is
# never written to), one job, no leak, crash or timeout allowed. A crash
# leaves its input in $MT_FUZZ_ARTIFACTS (default: the build's meson-logs).
# Ends with libFuzzer's final stats (stat::number_of_executed_units ...).
set -euo pipefail
target=$1
corpus=$2
seconds=${MT_FUZZ_SECONDS:-60}
artifacts=${MT_FUZZ_ARTIFACTS:-$PWD/meson-logs}
work=$(mktemp -d /tmp/mt-fuzz-corpus.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$corpus"/. "$work"/
mkdir -p "$artifacts"
"$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$(basename "$target")-" "$work"
