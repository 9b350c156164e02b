#!/usr/bin/env bash
# Differential oracle: `volperm apply` must leave a tree exactly as
# `chown -R -h` leaves a copy of it (owners, modes incl. cleared setuid/setgid,
# ACLs, capabilities), except for entries volperm reports as skipped.
. "$(dirname "$0")/lib.sh"
setup
need_cmd chown cp setfacl setcap

J=$(new_jdir)
V=$W/vol
O=$W/oracle
mktree "$V" 5000 --seed 11 --acl-every 11 --setid 5 --caps 3 --hostile --hardlink-every 100
cp -a "$V" "$O" || die "cp -a"
snap "$V" "$W/v0.snap"
snap "$O" "$W/o0.snap"
python3 "$TOOLS/snapshot.py" --diff "$W/v0.snap" "$W/o0.snap" >/dev/null ||
	die "cp -a did not make an identical copy (test setup)"

# --- apply --owner 1001:1002 vs chown -R -h 1001:1002 --------------------
vp_expect 0 "apply --owner 1001:1002 --json" apply --owner 1001:1002 --json --journal-dir "$J" "$V"
json_ok "$OUT" "apply --json is valid NDJSON"
cp "$OUT" "$W/apply.json"
jpaths "$W/apply.json" skip "$V" >"$W/skipped" || die "ndjson paths"
assert_eq "$(wc -l <"$W/skipped")" 0 "nothing skipped (all hard links are inside the tree)"
assert_eq "$(jsum "$W/apply.json" command)" apply "summary.command = apply"
assert_eq "$(jsum "$W/apply.json" errors)" 0 "summary.errors = 0"
assert_eq "$(jsum "$W/apply.json" exit)" 0 "summary.exit = 0"
jn=$(jsum "$W/apply.json" journal)
assert_match "^$J/vp-[0-9a-f]{16}-[0-9a-f]{16}-[0-9a-f]{16}\.vpj$" "$jn" "summary.journal names the journal file"
[ -n "$jn" ] && [ -f "$jn" ] && assert_eq "$(stat -c '%a %u' "$jn")" "600 0" "journal file is mode 0600, owned by root"

expect_counts "$O" 1001:1002 "$W/exp.json"
chown -R -h 1001:1002 "$O" || die "chown -R -h"
snap "$V" "$W/v1.snap"
snap "$O" "$W/o1.snap"
snap_eq "$W/o1.snap" "$W/v1.snap" "volperm apply == chown -R -h (uid, gid, mode, ACLs, caps)" --ignore "$W/skipped"
assert_eq "$(owner_of "$V")" 1001:1002 "the root itself changed"
assert_eq "$(mode_of "$V/special/setid0")" 0755 "setuid cleared on a changed file (4755 -> 0755)"
assert_eq "$(mode_of "$V/special/setid1")" 0755 "setgid cleared on a changed g+x file (2755 -> 0755)"
assert_eq "$(mode_of "$V/special/setid3")" 2745 "setgid kept without group-execute (2745)"
assert_eq "$(mode_of "$V/special/setgid-dir")" 2775 "setgid kept on a directory"
assert_eq "$(getcap "$V/special/cap0" 2>/dev/null)" "" "file capability dropped by the chown"
assert_eq "$(owner_of /etc/passwd)" 0:0 "symlink target /etc/passwd untouched"
n=$(jcount "$W/apply.json" change)
if [ "$n" = "$(jget "$W/exp.json" changes)" ] || [ "$n" = "$(jget "$W/exp.json" changes_inodes)" ]; then
	pass "one change event per changed entry ($n)"
else
	fail "$n change events, expected $(jget "$W/exp.json" changes) (paths) or $(jget "$W/exp.json" changes_inodes) (inodes)"
fi
assert_eq "$(jsum "$W/apply.json" changes)" "$n" "summary.changes = number of change events"

# --- --map / --map-gid vs chown --from ------------------------------------
V2=$W/vol2
O2=$W/oracle2
mktree "$V2" 3000 --seed 12 --acl-every 7 --setid 5 --caps 3 --hardlink-every 100
cp -a "$V2" "$O2" || die "cp -a"
vp_expect 0 "apply --map 1000:2000 --map-gid 1000:2001" apply --map 1000:2000 --map-gid 1000:2001 \
	--json --journal-dir "$J" "$V2"
cp "$OUT" "$W/apply2.json"
jpaths "$W/apply2.json" skip "$V2" >"$W/skipped2" || die "ndjson paths"
assert_eq "$(wc -l <"$W/skipped2")" 0 "nothing skipped"
# The generator gives entries either 0:0 or 1000:1000, so uid and gid maps
# select the same entries as chown --from=1000:1000.
chown -R -h --from=1000:1000 2000:2001 "$O2" || die "chown --from"
snap "$V2" "$W/v2.snap"
snap "$O2" "$W/o2.snap"
snap_eq "$W/o2.snap" "$W/v2.snap" "volperm --map/--map-gid == chown -R -h --from=1000:1000 2000:2001" --ignore "$W/skipped2"
assert_eq "$(grep -c $'\t0\t0\t' "$W/v2.snap")" "$(grep -c $'\t0\t0\t' "$W/o2.snap")" "entries owned by 0:0 untouched"

finish
