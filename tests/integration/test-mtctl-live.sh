#!/bin/sh
# test-mtctl-live.sh: a layer-list job (a tiny conv net on generated data)
# followed live through a real memtraind and mtctl. Memory is sampled
# between steps, when a step's activations and workspace are gone; each
# sample also carries the peaks of the steps since the sample before, and
# those must equal the plan's bytes per category in the live events
# (`submit --follow --json`), the terminal view, `metrics --memory` (JSON,
# CSV and text) and `show`. Then `plan` puts every rule side by side, the
# ones that refuse the spec as n/a with their reasons. Exit status is the
# verdict.
set -eu
. "$(dirname "$0")/mtctl-daemon.sh"

cat >"$dir/c.yaml" <<YAML
name: live
dataset: {name: synthetic, synthetic_train: 1024, synthetic_test: 128}
model:
  input: [1, 8, 8]
  classes: 4
  layers:
    - conv: {channels: 4, kernel: 3, padding: 1}
    - batchnorm
    - relu
    - maxpool: 2
    - flatten
    - dense: 4
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
batch: 32
epochs: 2
threads: 1
YAML

# A job followed from its submission must not start before the watch is
# there: with one slot, it waits behind this one.
block() { mt submit "$dir/c.yaml" >/dev/null || fail "submit"; }

mt --json plan "$dir/c.yaml" >"$dir/plan.json" || fail "plan --json: $(cat "$dir/plan.json")"
block
mt --json submit --follow "$dir/c.yaml" >"$dir/follow.jsonl" ||
    fail "submit --follow exited $?: $(cat "$dir/follow.jsonl")"
id=$(sed -n 's/.*"event":"submitted","job":{"id":\([0-9]*\),.*/\1/p' "$dir/follow.jsonl")
[ -n "$id" ] || fail "no submitted event: $(head -c 600 "$dir/follow.jsonl")"
mt --json metrics --memory "$id" >"$dir/metrics.json" || fail "metrics --memory --json"
mt metrics --memory --csv "$id" >"$dir/metrics.csv" || fail "metrics --memory --csv"
mt metrics --memory "$id" >"$dir/metrics.txt" || fail "metrics --memory"
mt --json show "$id" >"$dir/show.json" || fail "show --json"

/usr/bin/python3 - "$dir" <<'PY' || fail "the memory figures are wrong"
import csv, json, sys
d = sys.argv[1]
plan = json.load(open(d + "/plan.json"))["planned"]
assert plan["activations"] > 0 and plan["workspace"] > 0, plan
cats = ["params", "grads", "optimizer", "activations", "workspace", "data"]

def check(samples, where):
    """The samples' interval peaks reach the plan in every category (the
    plan is exact), never exceed it, and the current bytes hold no step's
    activations: the interval is what shows them."""
    with_iv = [s for s in samples if s.get("interval_peak")]
    assert with_iv, where + ": no sample has interval peaks"
    for c in cats:
        top = max(s["interval_peak"][c] for s in with_iv)
        assert top == plan[c], (where, c, top, plan[c])
    top = max(s["interval_peak"]["peak_total"] for s in with_iv)
    assert top == plan["peak_total"], (where, "total", top, plan["peak_total"])
    assert all(s["current"]["activations"] == 0 for s in samples), where
    return with_iv

events = [json.loads(l) for l in open(d + "/follow.jsonl")]
check([e["memory"] for e in events if e.get("event") == "memory"], "submit --follow --json")
stored = check(json.load(open(d + "/metrics.json"))["memory"], "metrics --memory --json")
# The store keeps every sample (a watcher far behind may miss some): their
# intervals cover the job's steps, 2 epochs of 32.
assert sum(s["interval_steps"] for s in stored) == 2 * 32, [s["interval_steps"] for s in stored]

rows = list(csv.DictReader(open(d + "/metrics.csv")))
top = max(int(r["interval_activations"]) for r in rows if r["interval_activations"])
assert top == plan["activations"], ("csv", top)

job = json.load(open(d + "/show.json"))["job"]
for c in cats:
    assert job["measured"][c] == plan[c], ("show measured", c)
print("memory ok: activations", plan["activations"], "workspace", plan["workspace"])
PY

# The text table's ACTIVATIONS column (the interval's) shows the plan's bytes.
acts=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["planned"]["activations"])' \
    "$dir/plan.json")
want=$(mt plan "$dir/c.yaml" | awk '$1 == "activations" { print $2, $3; exit }')
grep -q "ACTIVATIONS" "$dir/metrics.txt" || fail "metrics --memory has no ACTIVATIONS: $(cat "$dir/metrics.txt")"
grep -q " $want " "$dir/metrics.txt" ||
    fail "metrics --memory never shows $want ($acts bytes) of activations: $(cat "$dir/metrics.txt")"

# The terminal view of `submit --follow` (through script(1), when there is
# one): the activations row's interval, peak and planned columns are the
# plan's bytes, its current column what is in use between two steps.
if command -v script >/dev/null 2>&1; then
    block
    script -qec "stty cols 120; \"$MTCTL\" --socket \"$sock\" submit --follow \"$dir/c.yaml\"" \
        /dev/null >"$dir/tty.txt" 2>&1 || fail "submit --follow on a terminal: $(cat "$dir/tty.txt")"
    row=$(tr -d '\r' <"$dir/tty.txt" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' |
        grep '^  activations ' | tail -1)
    echo "$row" | grep -q "^  activations  *[0-9.]* [KMG]*i*B  *$want  *$want  *$want *$" ||
        fail "live view's activations row is not 'current, $want x3': '$row'"
fi

# plan: every rule appears, those that refuse the spec as n/a with why.
mt plan "$dir/c.yaml" >"$dir/plan.txt" || fail "plan: $(cat "$dir/plan.txt")"
head=$(grep -m1 '^  *bp\*\? ' "$dir/plan.txt") || fail "plan has no rule columns: $(cat "$dir/plan.txt")"
for r in bp fa dfa memdfa ckpt asa approx8 approx4 approxbp tinyfoa pepita ff mezo; do
    echo " $head " | grep -q " $r\*\? " || fail "plan lacks rule $r: $head"
done
for r in tinyfoa pepita ff mezo; do
    grep -q "^  n/a $r: ..*" "$dir/plan.txt" || fail "plan gives no reason for $r: $(cat "$dir/plan.txt")"
done
grep -q "^  activations .* n/a  *n/a  *n/a  *n/a *$" "$dir/plan.txt" ||
    fail "refused rules are not n/a: $(grep activations "$dir/plan.txt")"
/usr/bin/python3 - "$dir/plan.json" <<'PY' || fail "plan --json does not name every rule"
import json, sys
p = json.load(open(sys.argv[1]))
planned = [r["rule"] for r in p["rules"]]
refused = p["rules_refused"]
assert sorted(planned + list(refused)) == sorted(
    "bp fa dfa memdfa ckpt asa approx8 approx4 approxbp tinyfoa pepita ff mezo".split()), (planned, refused)
assert set(refused) == {"tinyfoa", "pepita", "ff", "mezo"}, refused
assert "momentum" in refused["mezo"] and "layer-list" in refused["ff"], refused
PY
# --rule plans (and submits) the spec under another rule: its plan is that
# rule's column of the side-by-side table; a rule that refuses says why.
mt --json plan --rule dfa "$dir/c.yaml" >"$dir/dfa.json" || fail "plan --rule dfa"
/usr/bin/python3 - "$dir/plan.json" "$dir/dfa.json" <<'PY' || fail "plan --rule dfa is not dfa's column"
import json, sys
side = {r["rule"]: r["planned"] for r in json.load(open(sys.argv[1]))["rules"]}
dfa = json.load(open(sys.argv[2]))
assert dfa["spec"]["rule"]["name"] == "dfa", dfa["spec"]["rule"]
assert dfa["planned"] == side["dfa"] != side["bp"], (dfa["planned"], side["dfa"])
PY
if out=$(mt plan -r ff "$dir/c.yaml" 2>&1); then fail "plan -r ff was not refused: $out"; fi
echo "$out" | grep -q "layer-list" || fail "plan -r ff does not say why: $out"
out=$(mt submit -r dfa "$dir/c.yaml") || fail "submit -r dfa: $out"
dfa_id=$(echo "$out" | sed -n 's/^submitted job \([0-9]*\).*/\1/p')
mt --json show "$dfa_id" | grep -q '"rule": *"dfa"' || fail "submit -r dfa: $(mt show "$dfa_id")"
mt wait "$dfa_id" >/dev/null || fail "the dfa job did not complete"

echo "mtctl live memory and plan: ok (job $id)"
