#!/bin/sh
# test-promfile.sh: memtraind's metrics_textfile through a real daemon. The
# interval is an hour, so every rewrite after the first comes from a state
# change. Checks that the file appears, parses as Prometheus's text
# exposition format (a small parser below: HELP/TYPE lines, names, labels,
# values, no series twice), that its figures match `mtctl ls -o json` (jobs
# by state, the queue, the budget used, the running job's memory by
# category, owner and rule; the job is a conv layer list), that it follows
# a cancel, and that a clean stop removes it.
set -eu
tf=$(mktemp -d /tmp/memtrain-promfile.XXXXXX)
prom=$tf/textfile/memtrain.prom
mkdir "$tf/textfile"
daemon_config=$tf/memtraind.yaml
cat >"$daemon_config" <<YAML
metrics_textfile: $prom
metrics_interval: 1h
YAML
. "$(dirname "$0")/mtctl-daemon.sh"
trap 'cleanup; rm -rf "$tf"' EXIT

i=0
until [ -f "$prom" ]; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "$prom was not written at start"; sleep 0.05
done

# A layer-list (conv) model under DFA: the file's categories are the arena's,
# whatever the model.
cat >"$dir/a.yaml" <<YAML
name: long
dataset: {name: synthetic, synthetic_train: 4096, synthetic_test: 256}
model:
  input: [1, 8, 8]
  classes: 4
  layers: [{conv: {channels: 4, kernel: 3, padding: 1}}, relu, {maxpool: 2}, flatten, {dense: 4}]
rule: dfa
batch: 32
epochs: 500
threads: 1
YAML
a=$(mt submit "$dir/a.yaml" | sed -n 's/^submitted job \([0-9]*\).*/\1/p')
b=$(mt submit "$dir/a.yaml" | sed -n 's/^submitted job \([0-9]*\).*/\1/p')
[ -n "$a" ] && [ -n "$b" ] || fail "submit gave no job ids"

# check.py PROM LS.json [WANT]: parse the file, compare with the listing;
# WANT "running" also needs job a's memory lines (a sample has arrived).
cat >"$tf/check.py" <<'PY'
import json, math, pwd, re, sys
text = open(sys.argv[1]).read()
ls = json.load(open(sys.argv[2]))
want = sys.argv[3] if len(sys.argv) > 3 else ""
name_re = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
typed, series, samples = {}, set(), {}
assert text.endswith("\n"), "no final newline"
for n, line in enumerate(text.split("\n")[:-1], 1):
    where = "line %d: %r" % (n, line)
    if line.startswith("#"):
        parts = line.split(" ", 3)
        assert parts[1] in ("HELP", "TYPE"), where
        assert name_re.match(parts[2]), where
        if parts[1] == "TYPE":
            assert parts[3] in ("gauge", "counter", "untyped"), where
            assert parts[2] not in typed, "TYPE twice: " + where
            typed[parts[2]] = parts[3]
        continue
    m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
    assert m, where
    name, labels = m.group(1), {}
    if m.group(3):
        body = m.group(3)
        pos = 0
        while pos < len(body):
            lm = label_re.match(body, pos)
            assert lm, where
            assert lm.group(1) not in labels, where
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
            if pos < len(body):
                assert body[pos] == ",", where
                pos += 1
    assert name in typed, "sample before its TYPE: " + where
    value = float(m.group(4))
    assert not math.isnan(value), where
    key = (name, tuple(sorted(labels.items())))
    assert key not in series, "series twice: " + where
    series.add(key)
    samples[key] = value

def get(name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))

jobs = ls["jobs"]
states = ["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "OUT_OF_MEMORY", "INTERRUPTED"]
for s in states:
    n = sum(1 for j in jobs if j["state"] == s)
    assert get("memtrain_jobs", state=s) == n, "%s: file %s, ls %d" % (s, get("memtrain_jobs", state=s), n)
queued = sum(1 for j in jobs if j["state"] == "QUEUED")
assert get("memtrain_queue_length") == queued, "queue length"
running = [j for j in jobs if j["state"] == "RUNNING"]
used = sum(j["planned"]["peak_total"] for j in running)
assert get("memtrain_memory_budget_used_bytes") == used, "budget used %s, ls %d" % (
    get("memtrain_memory_budget_used_bytes"), used)
assert get("memtrain_memory_budget_bytes") > 0
for j in running:
    lab = dict(job=str(j["id"]), owner=pwd.getpwuid(j["owner_uid"]).pw_name, rule=j["rule"])
    assert get("memtrain_job_planned_bytes", **lab) == j["planned"]["peak_total"], lab
    assert get("memtrain_job_epochs", **lab) == j["epochs"], lab
    if want == "running":
        cur = j["memory"]["current"]
        for cat in ("params", "grads", "optimizer", "data"):   # constant while it trains
            got = get("memtrain_job_memory_bytes", category=cat, **lab)
            assert got == cur[cat], "%s: file %s, ls %d" % (cat, got, cur[cat])
        assert get("memtrain_job_memory_step_peak_bytes", category="activations", **lab) > 0
        assert get("memtrain_job_memory_limit_bytes", **lab) == j["memory_limit"]
jobs_in_file = {dict(k[1]).get("job") for k in series if k[0].startswith("memtrain_job_")}
assert jobs_in_file == {str(j["id"]) for j in running}, jobs_in_file
print("ok: %d series, %d jobs running" % (len(series), len(running)))
PY

# check WANT: until the file agrees with the listing (a state change is
# written within about a second), at most 10 s.
check() {
    i=0
    while :; do
        cp "$prom" "$tf/copy.prom" 2>/dev/null || true
        mt ls -a -o json >"$tf/ls.json" || fail "ls -o json"
        if /usr/bin/python3 "$tf/check.py" "$tf/copy.prom" "$tf/ls.json" "$1" >"$tf/out" 2>&1; then
            cat "$tf/out"; return 0
        fi
        i=$((i + 1))
        [ $i -lt 50 ] || { cat "$tf/copy.prom" >&2; cat "$tf/out" >&2; fail "the file does not match mtctl ls"; }
        sleep 0.2
    done
}

check running
grep -q "memtrain_jobs{state=\"QUEUED\"} 1" "$tf/copy.prom" || fail "job $b not counted QUEUED"
grep -q "rule=\"dfa\",category=\"activations\"" "$tf/copy.prom" || fail "no per-category line of job $a"
mt cancel "$b" >/dev/null || fail "cancel $b"
check ""
grep -q "memtrain_jobs{state=\"CANCELLED\"} 1" "$tf/copy.prom" || fail "cancel of $b not in the file"
grep -q "memtrain_queue_length 0" "$tf/copy.prom" || fail "queue length after the cancel"

# Only *.prom files are read by the collector; no temporary is left behind.
[ "$(ls -A "$tf/textfile")" = "memtrain.prom" ] || fail "stray files: $(ls -A "$tf/textfile")"
kill -TERM $daemon; wait $daemon || true
[ ! -e "$prom" ] || fail "the file is still there after a clean stop"
echo "promfile ok"
