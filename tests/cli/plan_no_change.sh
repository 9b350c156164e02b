#!/usr/bin/env bash
# plan and check change nothing (full snapshot incl. ctime identical), report
# counts consistent with the tree, and --json is valid NDJSON with a summary.
. "$(dirname "$0")/lib.sh"
setup
need_cmd setfacl setcap

J=$(new_jdir)

# --- tree 1: no hard links, so every counter has one right value ---------
V=$W/vol
mktree "$V" 3000 --seed 7 --acl-every 9 --setid 5 --caps 3 --hardlink-every 0
expect_counts "$V" 1000:1000 "$W/exp1.json"
ex() { jget "$W/exp1.json" "$1"; }
say "# expected: $(cat "$W/exp1.json")"
snap "$V" "$W/before.snap" --ctime

# Human output (the contract's summary lines).
vp_expect 0 "plan (human) exits 0" plan --owner 1000:1000 --journal-dir "$J" "$V"
assert_file_match "^scanned: +$(ex scanned) entries" "$OUT" "human summary: scanned = $(ex scanned)"
assert_file_match "^changes: +$(ex changes) entries" "$OUT" "human summary: changes = $(ex changes)"
assert_file_match "^unchanged: +$(ex unchanged)\b" "$OUT" "human summary: unchanged = $(ex unchanged)"
assert_file_match "dry run" "$OUT" "human output says it is a dry run"

# --json
vp_expect 0 "plan --json exits 0" plan --owner 1000:1000 --json --journal-dir "$J" "$V"
json_ok "$OUT" "plan --json is valid NDJSON with one summary event, last"
assert_eq "$(jcount "$OUT" start)" 1 "plan --json has one start event"
assert_eq "$(jsum "$OUT" command)" plan "summary.command = plan"
for k in scanned dirs files symlinks other changes owner group setuid_cleared \
	setgid_cleared caps_dropped unchanged skipped; do
	assert_eq "$(jsum "$OUT" "$k")" "$(ex "$k")" "summary.$k"
done
assert_eq "$(jsum "$OUT" errors)" 0 "summary.errors = 0"
assert_eq "$(jsum "$OUT" exit)" 0 "summary.exit = 0"
assert_eq "$(jsum "$OUT" journal)" null "summary.journal = null for plan"
assert_eq "$(jcount "$OUT" change)" "$(ex changes)" "one change event per changed entry"
assert_eq "$(jcount "$OUT" change type=symlink)" \
	"$(python3 - "$V" <<'PY'
import os, sys
n = 0
for d, ds, fs in os.walk(sys.argv[1]):
    for x in ds + fs:
        p = os.path.join(d, x)
        st = os.lstat(p)
        if os.path.islink(p) and (st.st_uid, st.st_gid) != (1000, 1000):
            n += 1
print(n)
PY
)" "change events for symlinks (lchown semantics, not skipped)"
cp "$OUT" "$W/plan1.json"
# Each change event carries the entry's current and new ids.
python3 - "$W/plan1.json" <<'PY' && pass "change events: uid/gid/new_uid/new_gid/mode/new_mode/drops are consistent" || fail "change events are inconsistent (see above)"
import json, sys
bad = 0
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o["event"] != "change":
        continue
    try:
        ok = (o["new_uid"] == 1000 and o["new_gid"] == 1000
              and (o["uid"] != 1000 or o["gid"] != 1000)
              and isinstance(o["drops"], list)
              and int(o["mode"], 8) >= 0 and int(o["new_mode"], 8) >= 0
              and "path" in o and "type" in o)
    except (KeyError, ValueError, TypeError) as e:
        ok = False
    if not ok:
        bad += 1
        if bad <= 5:
            print("    bad change event:", line.strip())
sys.exit(1 if bad else 0)
PY

# The command word is optional: plain `volperm OPTIONS PATH` is a plan.
vp_expect 0 "volperm without a command word is a plan" --owner 1000:1000 --json --journal-dir "$J" "$V"
assert_eq "$(jsum "$OUT" command)" plan "default command is plan"

# --list: one line per change.
vp_expect 0 "plan --list exits 0" plan --owner 1000:1000 --list --journal-dir "$J" "$V"
assert_eq "$(grep -c '^chown ' "$OUT")" "$(ex changes)" "--list has one chown line per change"

# check: changes are needed.
vp_expect 1 "check exits 1 when changes are needed" check --owner 1000:1000 --journal-dir "$J" "$V"
vp_expect 1 "check --json exits 1" check --owner 1000:1000 --json --journal-dir "$J" "$V"
json_ok "$OUT" "check --json is valid NDJSON"
assert_eq "$(jsum "$OUT" changes)" "$(ex changes)" "check summary.changes"

# A target that nothing needs: owner 0 for entries... use --map of an unused uid.
vp_expect 0 "check exits 0 when nothing needs a change" check --map 4242:4243 --journal-dir "$J" "$V"

snap "$V" "$W/after.snap" --ctime
snap_eq "$W/before.snap" "$W/after.snap" "plan/check changed nothing (uid, gid, mode, ACLs, caps, ctime)"
assert_eq "$(count_journals "$J")" 0 "plan/check created no journal"

# --- tree 2: with hard links --------------------------------------------
V2=$W/vol2
mktree "$V2" 2000 --seed 8 --hardlink-every 40 --acl-every 13
expect_counts "$V2" 1001:1001 "$W/exp2.json"
ex2() { jget "$W/exp2.json" "$1"; }
say "# expected: $(cat "$W/exp2.json")"
[ "$(ex2 dup_links)" -gt 5 ] || die "tree 2 has too few hard links"
snap "$V2" "$W/before2.snap" --ctime
vp_expect 0 "plan --json on a tree with hard links" plan --owner 1001:1001 --json --journal-dir "$J" "$V2"
json_ok "$OUT" "valid NDJSON"
for k in scanned dirs files symlinks other; do
	assert_eq "$(jsum "$OUT" "$k")" "$(ex2 "$k")" "summary.$k (per path)"
done
ch=$(jsum "$OUT" changes)
if [ -n "$ch" ] && { [ "$ch" = "$(ex2 changes)" ] || [ "$ch" = "$(ex2 changes_inodes)" ]; }; then
	pass "summary.changes $ch counts paths ($(ex2 changes)) or inodes ($(ex2 changes_inodes))"
else
	fail "summary.changes '$ch' is neither the path count $(ex2 changes) nor the inode count $(ex2 changes_inodes)"
fi
un=$(jsum "$OUT" unchanged)
sk=$(jsum "$OUT" skipped)
assert_eq "$(jcount "$OUT" change)" "$ch" "change events = summary.changes"
assert_eq "$sk" 0 "nothing skipped (all hard links are inside the tree)"
tot=$((${ch:-0} + ${un:-0} + ${sk:-0}))
if [ "$tot" = "$(ex2 scanned)" ] || [ "$tot" = "$(($(ex2 scanned) - $(ex2 dup_links)))" ]; then
	pass "changes + unchanged + skipped ($tot) adds up to the scanned entries"
else
	fail "changes $ch + unchanged $un + skipped $sk = $tot, expected $(ex2 scanned) (or $(($(ex2 scanned) - $(ex2 dup_links))) counting inodes)"
fi
vp_expect 1 "check on tree 2 exits 1" check --owner 1001:1001 --journal-dir "$J" "$V2"
snap "$V2" "$W/after2.snap" --ctime
snap_eq "$W/before2.snap" "$W/after2.snap" "plan/check on tree 2 changed nothing (incl. ctime)"
assert_eq "$(count_journals "$J")" 0 "still no journal"

finish
