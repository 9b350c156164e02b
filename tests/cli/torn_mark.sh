#!/usr/bin/env bash
# A rollback that crashes while it writes its first mark leaves a committed
# journal with a torn record after the COMMIT. The quick look at the
# journal's last record reads that as an interrupted apply (hot), and
# `recover --forward` used to finish it forward: it appended entries after
# the COMMIT, so the journal became corrupt and nothing could be rolled back
# any more. What the records really end in decides now: a rollback had begun,
# so recovering (with or without --forward) finishes that rollback, and the
# journal stays readable.
. "$(dirname "$0")/lib.sh"
setup
need_cmd head tail

V=$W/vol
mktree "$V" 300 --seed 7 --acl-every 9
snap "$V" "$W/pristine.snap"

# torn_after_commit: apply, then append what a crash leaves of a mark frame
# (its first 13 of 32 bytes: no record can be decoded from it).
torn_after_commit() {
	J=$(new_jdir)
	vp_expect 0 "apply" apply --owner 1001:1001 --journal-dir "$J" "$V"
	JF=$(ls "$J"/*.vpj)
	tail -c 32 "$JF" | head -c 13 >>"$JF"
	# A file made after the apply that the policy would change: finishing
	# the apply forward would journal and chown it.
	: >"$V/late"
	chown 0:0 "$V/late"
}

for fwd in --forward ""; do
	torn_after_commit
	vp_expect 4 "plan sees the journal with the torn tail as hot" plan --owner 1001:1001 --journal-dir "$J" "$V"
	# shellcheck disable=SC2086
	vp_expect 0 "recover $fwd on a committed journal with a torn mark" recover $fwd --journal-dir "$J" "$V"
	vp_expect 0 "journal show reads the journal afterwards (not corrupt)" journal show "$JF"
	vp journal list --journal-dir "$J"
	assert_match 'rolled-back' "$(cat "$OUT")" "recover $fwd finished the rollback that had begun"
	assert_eq "$(stat -c %u:%g "$V/late")" "0:0" "recover $fwd did not finish the apply forward (late file untouched)"
	rm -f "$V/late"
	snap "$V" "$W/after.snap"
	snap_eq "$W/pristine.snap" "$W/after.snap" "recover $fwd gives back the pre-apply tree"
	vp_expect 0 "plan: no hot journal left" plan --owner 1001:1001 --journal-dir "$J" "$V"
done

finish
