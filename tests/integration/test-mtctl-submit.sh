#!/bin/sh
# test-mtctl-submit.sh: one spec under several rules and changed keys,
# through a real memtraind and mtctl: `submit --set` stores the key the
# daemon read (and refuses a wrong key or value naming it), `submit --rules`
# makes one job per rule in one group (a refused rule said and skipped,
# exit 1), `ls --group` lists exactly that group, `resubmit` takes a stored
# job's spec with its own --set. Exit status is the verdict.
set -eu
. "$(dirname "$0")/mtctl-daemon.sh"
py=/usr/bin/python3

cat >"$dir/s.yaml" <<YAML
name: sub
dataset: {name: synthetic, synthetic_train: 256, synthetic_test: 64}
model: {input: 16, hidden: [24], classes: 4}
optimizer: {name: sgd, lr: 0.01}
batch: 32
epochs: 1
threads: 1
YAML
# the value of a dotted key in a job's stored spec (show -o json)
spec_key() {
    mt -o json show "$1" | $py -c 'import json,sys
v = json.load(sys.stdin)["spec"]
for k in sys.argv[1].split("."): v = v[k]
print(v)' "$2"
}

# ---- --set: the daemon reads the value as the file's
id=$(mt submit "$dir/s.yaml" --set optimizer.lr=0.05 --set epochs=2 --set optimizer.momentum=0.9 |
     sed -n 's/^submitted job //p')
[ "$(spec_key "$id" optimizer.lr)" = 0.05 ] || fail "--set optimizer.lr: $(spec_key "$id" optimizer.lr)"
[ "$(spec_key "$id" epochs)" = 2 ] || fail "--set epochs: $(spec_key "$id" epochs)"
[ "$(spec_key "$id" optimizer.momentum)" = 0.9 ] || fail "--set optimizer.momentum"
mt wait "$id" >/dev/null || fail "job $id did not complete"
for bad in "optimizer.lr=fast|optimizer.lr: expected a positive number" \
           "optimiser.lr=1|unknown key 'optimiser'" \
           "model.hidden=[8]|the model's structure is not set" \
           "epochs|expected KEY=VALUE"; do
    kv=${bad%%|*}; want=${bad#*|}
    rc=0; mt submit "$dir/s.yaml" --set "$kv" >/dev/null 2>"$dir/err" || rc=$?
    [ $rc -ne 0 ] || fail "--set $kv was accepted"
    grep -qF -- "$want" "$dir/err" || fail "--set $kv: $(cat "$dir/err")"
done

# ---- --rules: one job per rule, one group; mezo refuses momentum (said, skipped)
rc=0
mt submit "$dir/s.yaml" --set optimizer.momentum=0.9 --rules bp,mezo,dfa,memdfa \
    >"$dir/rules.txt" 2>"$dir/rules.err" || rc=$?
[ $rc -eq 1 ] || fail "--rules with a refused rule exited $rc: $(cat "$dir/rules.txt" "$dir/rules.err")"
grep -q "rule mezo not submitted" "$dir/rules.err" || fail "mezo's refusal: $(cat "$dir/rules.err")"
ids=$(sed -n 's/^submitted job \([0-9]*\) (.*/\1/p' "$dir/rules.txt" | tr '\n' ' ')
first=${ids%% *}
[ "$(echo $ids | wc -w)" -eq 3 ] || fail "--rules made jobs '$ids'"
grep -q "^group g$first: 3 jobs" "$dir/rules.txt" || fail "group line: $(cat "$dir/rules.txt")"
for j in $ids; do
    [ "$(mt -o json show "$j" | $py -c 'import json,sys; print(json.load(sys.stdin)["job"].get("group_id"))')" = "$first" ] ||
        fail "job $j is not in group $first"
done
got=$(mt ls --group "g$first" -o name | sort -n | tr '\n' ' ')
[ "$got" = "$(echo $ids | tr ' ' '\n' | sort -n | tr '\n' ' ')" ] || fail "ls --group: '$got', want '$ids'"
mt ls -o wide | grep -q " g$first *$" || fail "ls -o wide has no GROUP g$first: $(mt ls -o wide)"
[ -z "$(mt ls --group "$id" -o name)" ] || fail "job $id (no group) listed as a group"
rules=$(for j in $ids; do mt -o json show "$j"; done | $py -c 'import json,sys
d = json.JSONDecoder(); s = sys.stdin.read(); i = 0; out = []
while i < len(s.strip()):
    o, i = d.raw_decode(s, i); out.append(o["job"]["rule"]); i += len(s[i:]) - len(s[i:].lstrip())
print(",".join(out))')
[ "$rules" = "bp,dfa,memdfa" ] || fail "the group's rules: $rules"
rc=0; mt submit "$dir/s.yaml" --rule bp --rules bp,dfa 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "--rule with --rules exited $rc"

# ---- resubmit: the stored spec again, with its own --set
new=$(mt resubmit "$id" --set epochs=3 --rule dfa | sed -n 's/^submitted job //p')
[ -n "$new" ] || fail "resubmit $id printed no job"
[ "$(spec_key "$new" epochs)" = 3 ] || fail "resubmit --set epochs"
[ "$(spec_key "$new" optimizer.lr)" = 0.05 ] || fail "resubmit lost job $id's lr: $(spec_key "$new" optimizer.lr)"
[ "$(spec_key "$new" rule.name)" = dfa ] || fail "resubmit --rule dfa"
rc=0; mt resubmit 99999 2>"$dir/err" || rc=$?
[ $rc -eq 4 ] || fail "resubmit of a missing job exited $rc: $(cat "$dir/err")"
for j in $ids $new; do mt cancel "$j" >/dev/null 2>&1 || true; done
echo "submit --set, --rules, ls --group, resubmit: ok"
