#!/usr/bin/env bash
# A second apply on a compliant tree is a no-op: 0 changes, no new journal,
# no ctime changed. check exits 1 before the first apply and 0 after it.
. "$(dirname "$0")/lib.sh"
setup
need_cmd setfacl setcap

J=$(new_jdir)
V=$W/vol
mktree "$V" 4000 --seed 31 --acl-every 10 --setid 5 --caps 2 --hostile --hardlink-every 100

vp_expect 1 "check before apply: changes needed" check --owner 1001:1001 --journal-dir "$J" "$V"
assert_eq "$(count_journals "$J")" 0 "check created no journal"
vp_expect 0 "first apply" apply --owner 1001:1001 --journal-dir "$J" "$V"
assert_eq "$(count_journals "$J")" 1 "first apply created one journal"
vp_expect 0 "check after apply: compliant" check --owner 1001:1001 --journal-dir "$J" "$V"
vp_expect 0 "check --json after apply" check --owner 1001:1001 --json --journal-dir "$J" "$V"
assert_eq "$(jsum "$OUT" changes)" 0 "check --json: 0 changes"

ls -l --time-style=+%s.%N "$J"/*.vpj >"$W/jdir.before"
snap "$V" "$W/before.snap" --ctime
vp_expect 0 "second apply" apply --owner 1001:1001 --json --journal-dir "$J" "$V"
json_ok "$OUT" "second apply --json is valid NDJSON"
assert_eq "$(jsum "$OUT" changes)" 0 "second apply: 0 changes"
assert_eq "$(jcount "$OUT" change)" 0 "second apply: no change events"
assert_eq "$(jsum "$OUT" journal)" null "second apply: summary.journal = null"
assert_eq "$(count_journals "$J")" 1 "second apply created no new journal"
snap "$V" "$W/after.snap" --ctime
snap_eq "$W/before.snap" "$W/after.snap" "second apply changed no ctime, owner, mode, ACL or capability"

vp_expect 0 "third apply (human output)" apply --owner 1001:1001 --journal-dir "$J" "$V"
assert_file_match "^changes: +0 entries" "$OUT" "human summary says 0 changes"
assert_eq "$(count_journals "$J")" 1 "still one journal"
ls -l --time-style=+%s.%N "$J"/*.vpj >"$W/jdir.after"
if cmp -s "$W/jdir.before" "$W/jdir.after"; then
	pass "journal files (names, sizes, times) unchanged by the no-op applies"
else
	fail "journal dir changed by no-op applies:"
	diff "$W/jdir.before" "$W/jdir.after" | sed 's/^/    /'
fi
snap "$V" "$W/after3.snap" --ctime
snap_eq "$W/before.snap" "$W/after3.snap" "third apply changed nothing either"

# The rollback of the (single) real apply still works after the no-ops.
vp_expect 0 "rollback after no-op applies" rollback --journal-dir "$J" "$V"
vp_expect 1 "check after rollback: changes needed again" check --owner 1001:1001 --journal-dir "$J" "$V"

finish
