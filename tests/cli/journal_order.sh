#!/usr/bin/env bash
# "The newest journal" comes from the journals themselves, not from the
# clock. Apply A at the right time, then apply B with the clock set back a
# day (an NTP step, a VM restored from a snapshot: faketime makes volperm see
# it; the journal name, which carries the creation time, then sorts first).
# rollback PATH must undo B (the newest by its sequence), then A; journal
# list and show give the sequence order.
. "$(dirname "$0")/lib.sh"
setup
need_cmd faketime
faketime -f '-1d' date >/dev/null 2>&1 || skip "faketime does not work here"
ldd "$VP" 2>/dev/null | grep -q 'not a dynamic' && skip "$VP is static: faketime (LD_PRELOAD) cannot set its clock back"

J=$(new_jdir)
V=$W/vol
mktree "$V" 200 --seed 8
snap "$V" "$W/s0"
vp_expect 0 "apply A: --owner 1001:1001" apply -q --owner 1001:1001 --journal-dir "$J" "$V"
snap "$V" "$W/sA"
NRUN=$((NRUN + 1)) OUT=$W/run$NRUN.out ERR=$W/run$NRUN.err
faketime -f '-1d' "$VP" apply -q --owner 2002:2002 --journal-dir "$J" "$V" >"$OUT" 2>"$ERR"
RC=$?
expect_rc 0 "apply B, with the clock a day behind: --owner 2002:2002"
assert_eq "$(owner_of "$V")" 2002:2002 "B applied"
mapfile -t names < <(cd "$J" && ls -1 vp-*.vpj | sort)
assert_eq "${#names[@]}" 2 "two journals"
assert_true "B's name sorts before A's (its creation time is a day earlier)" \
	test "$("$VP" journal show "$J/${names[0]}" | awk '$1 == "sequence:" { print $2 }')" = 2

vp_expect 0 "journal list" journal list --journal-dir "$J" "$V"
assert_eq "$(awk '{ print $1 }' "$OUT" | xargs -n1 basename | tr '\n' ' ')" "${names[1]} ${names[0]} " \
	"journal list: oldest first by sequence (A, then B)"
vp_expect 0 "journal show of A: sequence 1" journal show "$J/${names[1]}"
assert_file_match "^sequence: 1 " "$OUT" "A has sequence 1"

vp_expect 0 "rollback PATH: undoes the newest, B" rollback -q --journal-dir "$J" "$V"
snap "$V" "$W/s1"
snap_eq "$W/sA" "$W/s1" "after one rollback the tree is as A left it (B undone, not A)"
vp_expect 0 "rollback PATH again: undoes A" rollback -q --journal-dir "$J" "$V"
snap "$V" "$W/s2"
snap_eq "$W/s0" "$W/s2" "after two rollbacks the tree is as before A"
vp rollback -q --journal-dir "$J" "$V"
expect_rc 2 "a third rollback: nothing left to roll back"
finish
