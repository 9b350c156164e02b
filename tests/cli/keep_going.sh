#!/usr/bin/env bash
# One entry cannot be changed (chattr +i: chown fails with EPERM even for
# root). Without --keep-going: exit 3 and the tree is exactly as before
# (rolled back). With --keep-going: exit 5, every other entry changed, and
# the journal still rolls everything back.
. "$(dirname "$0")/lib.sh"
setup
need_cmd chattr lsattr setfacl setcap

J=$(new_jdir)
V=$W/vol
mktree "$V" 2000 --seed 71 --acl-every 10 --setid 3 --caps 2 --hardlink-every 200
F=$V/wide/w0000050.dat
[ -f "$F" ] || die "test setup: $F missing"
chown 1000:1000 "$F"
if ! chattr +i "$F" 2>"$W/chattr.err"; then
	skip "chattr +i is not supported on $(stat -f -c %T "$V") ($(cat "$W/chattr.err")): cannot make an unchangeable entry"
fi
on_exit "chattr -i '$F'"
chown 1001:1001 "$F" 2>/dev/null && skip "chown of an immutable file succeeded here: cannot make an unchangeable entry"

snap "$V" "$W/before.snap"
vp_expect 3 "apply with one unchangeable entry: exit 3 (rolled back)" apply --owner 1001:1001 --journal-dir "$J" "$V"
assert_file_match "$F" "$ERR" "stderr names the failing entry"
snap "$V" "$W/after3.snap"
snap_eq "$W/before.snap" "$W/after3.snap" "exit 3: the tree is exactly as before (uid, gid, mode, ACLs, caps)"
vp_expect 1 "check after the rolled-back apply: changes needed (no hot journal)" check --owner 1001:1001 --journal-dir "$J" "$V"
vp_expect 2 "rollback after an auto-rolled-back apply: nothing to roll back" rollback --journal-dir "$J" "$V"

vp_expect 5 "apply --keep-going: exit 5" apply --owner 1001:1001 --keep-going --json --journal-dir "$J" "$V"
json_ok "$OUT" "valid NDJSON"
assert_eq "$(jsum "$OUT" errors)" 1 "summary.errors = 1"
assert_eq "$(jsum "$OUT" exit)" 5 "summary.exit = 5"
assert_eq "$(jpaths "$OUT" error "$V")" wide/w0000050.dat "one error event, for the immutable file"
assert_eq "$(jcount "$OUT" error errno=1)" 1 "the error event has errno 1 (EPERM)"
assert_eq "$(owner_of "$F")" 1000:1000 "the immutable file is unchanged"
snap "$V" "$W/after5.snap"
# Every other entry is now 1001:1001.
others=$(grep -v '^wide/w0000050.dat	' "$W/after5.snap" | awk -F'\t' '$3 != 1001 || $4 != 1001' | head -n 5)
if [ -z "$others" ]; then
	pass "--keep-going: every other entry changed to 1001:1001"
else
	fail "--keep-going: entries left unchanged:"
	printf '%s\n' "$others" | sed 's/^/    /'
fi
vp_expect 0 "rollback of the --keep-going apply" rollback --journal-dir "$J" "$V"
snap "$V" "$W/rolled.snap"
snap_eq "$W/before.snap" "$W/rolled.snap" "rollback after --keep-going restores the tree exactly"

# --no-journal: nothing to roll back, so a failure exits 5; --keep-going goes on.
vp_expect 5 "apply --no-journal --keep-going with a failure: exit 5" apply --owner 1001:1001 --no-journal --keep-going --journal-dir "$J" "$V"
snap "$V" "$W/nj.snap"
others=$(grep -v '^wide/w0000050.dat	' "$W/nj.snap" | awk -F'\t' '$3 != 1001 || $4 != 1001' | head -n 5)
assert_eq "$others" "" "--no-journal --keep-going: every other entry changed"
assert_eq "$(owner_of "$F")" 1000:1000 "the immutable file is unchanged"

chattr -i "$F"
vp_expect 0 "after chattr -i, apply converges" apply --owner 1001:1001 --journal-dir "$J" "$V"
vp_expect 0 "check: compliant" check --owner 1001:1001 --journal-dir "$J" "$V"

finish
