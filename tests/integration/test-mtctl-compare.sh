#!/bin/sh
# test-mtctl-compare.sh: jobs side by side through a real memtraind and
# mtctl: three tiny MLP jobs under bp, dfa and memdfa and a layer-list (conv)
# job. `compare` sorts them by peak memory, marks exactly the Pareto front
# (recomputed here from its JSON), fits 100 columns (on a terminal too,
# with a sparkline per job); `plot` writes SVG that parses, with one
# accuracy line per job, and PNG of the right size; `report --html` is one
# page with the tables and the pictures inline and nothing to fetch; the
# live view draws the accuracy and memory sparklines; groups (gN) made by
# `submit --rules`. Exit status is the verdict.
set -eu
. "$(dirname "$0")/mtctl-daemon.sh"
py=/usr/bin/python3
command -v xmllint >/dev/null || fail "xmllint is missing (Debian package libxml2-utils)"

cat >"$dir/m.yaml" <<YAML
name: cmp
dataset: {name: synthetic, synthetic_train: 512, synthetic_test: 256}
model: {input: 32, hidden: [48], classes: 8}
optimizer: {name: sgd, lr: 0.01}
batch: 32
epochs: 16
threads: 1
YAML
cat >"$dir/c.yaml" <<YAML
name: cmpconv
dataset: {name: synthetic, synthetic_train: 256, synthetic_test: 128}
model:
  input: [1, 8, 8]
  classes: 4
  layers:
    - conv: {channels: 4, kernel: 3, padding: 1}
    - relu
    - maxpool: 2
    - flatten
    - dense: 4
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
batch: 32
epochs: 2
threads: 1
YAML

ids=""
for r in bp dfa memdfa; do
    out=$(mt submit --rule $r "$dir/m.yaml") || fail "submit --rule $r: $out"
    ids="$ids ${out##* }"
done
out=$(mt submit "$dir/c.yaml") || fail "submit conv: $out"
ids="$ids ${out##* }"
for id in $ids; do mt wait "$id" >/dev/null || fail "job $id did not complete"; done

# ---- compare: text, JSON, terminal
mt compare $ids >"$dir/cmp.txt" || fail "compare exited $?: $(cat "$dir/cmp.txt")"
mt -o json compare $ids >"$dir/cmp.json" || fail "compare -o json"
$py - "$dir/cmp.txt" "$dir/cmp.json" $ids <<'PY' || fail "compare: $(cat "$dir/cmp.txt")"
import json, sys
text = open(sys.argv[1], encoding="utf-8").read().splitlines()
doc = json.load(open(sys.argv[2]))
ids = sorted(int(i) for i in sys.argv[3:])
jobs = doc["jobs"]
assert doc["schema_version"] == 1
assert sorted(j["job_id"] for j in jobs) == ids, jobs
peaks = [j["peak_total_bytes"] for j in jobs]
assert all(p and p > 0 for p in peaks) and peaks == sorted(peaks), peaks
for j in jobs:
    assert j["state"] == "COMPLETED" and len(j["test_accuracy"]) == j["epochs_done"] == j["epochs"]
    assert j["best_test_accuracy"] == max(j["test_accuracy"])
    assert j["last_test_accuracy"] == j["test_accuracy"][-1]
    assert j["kept_activations_bytes"] > 0 and j["seconds_per_epoch"] > 0
    # the Pareto front, recomputed: no other job at least as accurate with
    # at most as much memory, better in one
    dom = any(k is not j and k["best_test_accuracy"] >= j["best_test_accuracy"]
              and k["peak_total_bytes"] <= j["peak_total_bytes"]
              and (k["best_test_accuracy"] > j["best_test_accuracy"]
                   or k["peak_total_bytes"] < j["peak_total_bytes"]) for k in jobs)
    assert j["pareto_front"] == (not dom), (j, jobs)
assert any(j["pareto_front"] for j in jobs)
# the table: a header, then one row per job in the JSON's order, '*' on the front
assert text[0].split()[:3] == ["JOB", "RULE", "STATE"], text[0]
rows = text[1:1 + len(jobs)]
for j, row in zip(jobs, rows):
    star = row.startswith("*")
    cells = row.lstrip("*").split()
    assert int(cells[0]) == j["job_id"] and cells[1] == j["rule"], (row, j)
    assert star == j["pareto_front"], (row, j)
    assert "%.2f%%" % (100 * j["best_test_accuracy"]) in row, row
assert text[1 + len(jobs)] == "", text
for line in text:
    assert len(line) <= 100, line
PY

if command -v script >/dev/null 2>&1; then
    script -qec "stty cols 200; \"$MTCTL\" --socket \"$sock\" compare $ids" /dev/null \
        >"$dir/cmp-tty.txt" 2>&1 || fail "compare on a terminal: $(cat "$dir/cmp-tty.txt")"
    $py - "$dir/cmp-tty.txt" "$dir/cmp.json" <<'PY' || fail "compare on a terminal: $(cat "$dir/cmp-tty.txt")"
import json, sys
text = open(sys.argv[1], encoding="utf-8").read().replace("\r", "").splitlines()
jobs = json.load(open(sys.argv[2]))["jobs"]
assert text[0].rstrip().endswith("ACCURACY"), text[0]
blocks = set("\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588")
# 16 epochs would take the widest row past 100 columns: fewer cells, the
# same number in every row with 16 epochs; 2 for the 2-epoch job
cells = set()
for j, row in zip(jobs, text[1:]):
    spark = row.split()[-1]
    assert set(spark) <= blocks and 1 <= len(spark) <= len(j["test_accuracy"]), (row, j)
    if len(j["test_accuracy"]) == 16:
        cells.add(len(spark))
    else:
        assert len(spark) == len(j["test_accuracy"]), (row, j)
assert len(cells) == 1 and 4 <= cells.pop() < 16, text
for line in text:
    assert len(line) <= 100, line
PY
else
    echo "no script(1): the terminal view of compare is not checked"
fi

# ---- plot: SVG with one accuracy line per job, PNG of the stacked size
mt plot $ids --kind accuracy -o "$dir/acc.svg" >"$dir/plot.txt" || fail "plot svg: $(cat "$dir/plot.txt")"
xmllint --noout "$dir/acc.svg" || fail "acc.svg is not well-formed XML"
grep -q "<svg" "$dir/acc.svg" || fail "acc.svg has no <svg>"
# the only strokes 2.5 wide are the jobs' accuracy lines (plot.c)
n=$(grep -o 'stroke-width:2.5;' "$dir/acc.svg" | wc -l)
[ "$n" -eq 4 ] || fail "acc.svg has $n accuracy lines, not 4"
mt -o json plot $ids -o "$dir/all.png" >"$dir/plot.json" || fail "plot png: $(cat "$dir/plot.json")"
$py - "$dir/all.png" "$dir/plot.json" <<'PY' || fail "all.png or its summary is wrong: $(cat "$dir/plot.json")"
import json, struct, sys
png = open(sys.argv[1], "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR", png[:16]
w, h = struct.unpack(">II", png[16:24])
assert (w, h) == (960, 1620), (w, h)
doc = json.load(open(sys.argv[2]))
assert doc["kind"] == "all" and doc["format"] == "png" and len(doc["job_ids"]) == 4, doc
assert (doc["accuracy_lines"], doc["memory_bars"], doc["pareto_points"]) == (4, 8, 4), doc
assert doc["pareto_front"] >= 1, doc
PY
for k in memory pareto; do
    mt plot $ids --kind $k -o "$dir/$k.svg" >/dev/null || fail "plot --kind $k"
    xmllint --noout "$dir/$k.svg" || fail "$k.svg is not well-formed XML"
done
# -o names the picture; -o json stays the output format; anything else is refused
rc=0; mt plot $ids -o "$dir/x.pdf" 2>"$dir/err.txt" || rc=$?
[ $rc -eq 2 ] || fail "plot -o x.pdf exited $rc"
grep -q "must end in .svg or .png" "$dir/err.txt" || fail "plot -o x.pdf: $(cat "$dir/err.txt")"
rc=0; mt plot $ids -o json 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "plot without a file exited $rc"
[ ! -e json ] || fail "plot wrote a file named json"
rc=0; mt plot -o "$dir/y.svg" 999 2>/dev/null || rc=$?
[ $rc -eq 4 ] || fail "plot of a job that does not exist exited $rc"

# ---- report (its jobs are fetched as compare's are): every job, as text and JSON
mt report $ids >"$dir/report.txt" || fail "report: $(cat "$dir/report.txt")"
mt -o json report $ids >"$dir/report.json" || fail "report -o json"
$py - "$dir/report.txt" "$dir/report.json" $ids <<'PY' || fail "report: $(cat "$dir/report.txt")"
import json, sys
text = open(sys.argv[1], encoding="utf-8").read().splitlines()
ids = sorted(int(i) for i in sys.argv[3:])
jobs = json.load(open(sys.argv[2]))["jobs"]
assert [j["job_id"] for j in jobs] == ids, jobs
assert [int(l.split()[0]) for l in text[1:1 + len(ids)]] == ids, text
for j in jobs:
    assert len(j["curve"]) == j["epochs_done"] and j["best_error_pct"] is not None, j
PY

# ---- report --html: one page, tables and pictures inline, nothing to fetch
mt report --html "$dir/r.html" $ids >"$dir/html.txt" || fail "report --html: $(cat "$dir/html.txt")"
[ "$(grep -c '<svg' "$dir/r.html")" -eq 1 ] || fail "the page should hold one inline SVG"
[ "$(grep -c '<table' "$dir/r.html")" -eq 2 ] || fail "the page should hold two tables"
if grep -Eq '<script|<link|<img|src=' "$dir/r.html"; then fail "the page fetches something"; fi
sed -n '/<svg/,/<\/svg>/p' "$dir/r.html" >"$dir/inline.svg"
xmllint --noout "$dir/inline.svg" || fail "the page's SVG is not well-formed"
[ "$(grep -o 'stroke-width:2.5;' "$dir/inline.svg" | wc -l)" -eq 4 ] ||
    fail "the page's SVG lacks the 4 accuracy lines"
for id in $ids; do
    grep -q "<td>$id</td>" "$dir/r.html" || fail "the page lacks job $id"
done

# ---- the live view's sparklines (a finished job: its epochs from Metrics)
if command -v script >/dev/null 2>&1; then
    last=${ids##* }
    script -qec "stty cols 160; \"$MTCTL\" --socket \"$sock\" watch $last" /dev/null \
        >"$dir/watch.txt" 2>&1 || fail "watch on a terminal: $(cat "$dir/watch.txt")"
    tr -d '\r' <"$dir/watch.txt" | grep -q "^trend  test [▁▂▃▄▅▆▇█][▁▂▃▄▅▆▇█] " ||
        fail "watch draws no accuracy trend: $(cat "$dir/watch.txt")"
fi

# ---- groups: every job one `submit --rules` made
out=$(mt submit --rules bp,dfa "$dir/m.yaml") || fail "submit --rules: $out"
first=$(echo "$out" | sed -n 's/^submitted job \([0-9]*\).*/\1/p' | head -n 1)
for id in $(echo "$out" | sed -n 's/^submitted job \([0-9]*\).*/\1/p'); do
    mt wait "$id" >/dev/null || fail "job $id did not complete"
done
g=$(mt -o json compare "$first" | $py -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["group_id"] or "")')
[ -n "$g" ] || fail "job $first has no group id"
mt -o json compare "g$g" >"$dir/group.json" || fail "compare g$g"
mt -o json compare "group:$g" | cmp -s - "$dir/group.json" || fail "group:$g differs from g$g"
$py - "$dir/group.json" "$g" <<'PY' || fail "compare g$g: $(cat "$dir/group.json")"
import json, sys
jobs = json.load(open(sys.argv[1]))["jobs"]
assert sorted(j["rule"] for j in jobs) == ["bp", "dfa"], jobs
PY
rc=0; mt compare g99999 2>"$dir/err.txt" || rc=$?
[ $rc -eq 4 ] || fail "compare of an unknown group exited $rc"
grep -q "group 99999" "$dir/err.txt" || fail "unknown group: $(cat "$dir/err.txt")"
echo "compare, plot and report --html: ok"
