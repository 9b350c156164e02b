#!/usr/bin/env bash
# Fault injection at every mutating step of a rollback, and of a recover.
#
# Same 60-entry tree as fault_apply.sh (symlinks, hard links, ACLs, default
# ACLs, setuid/setgid, capabilities). A rollback's steps are: the
# ROLLBACK_BEGIN mark (journal write + fdatasync), per entry a chown, a
# chmod (not for symlinks) and a setxattr (files whose capability chown
# dropped), the syncfs of the volume, the ROLLED_BACK mark (write +
# fdatasync).
#
# 1. committed journal: for every N, a fresh copy is applied (release
#    build; --owner 1001:1001, and a policy that also sets ACLs and modes:
#    --owner 1001 --fsgroup 3001 --chmod g-w,o-rwx --grant u:2001:rwX),
#    `rollback` (fault build) is SIGKILLed after step N; then plan
#    exits 4 (hot rolling-back journal) and a re-run of `rollback` (release)
#    gives exactly the pre-apply snapshot. Once the ROLLED_BACK mark is in
#    the file, the re-run finds nothing to roll back (exit 2) and the tree
#    is already the pre-apply one. For every 4th N the re-run is itself
#    killed half way (a second crash) before a third run finishes.
# 2. hot journal: an apply killed half way (fault build) leaves a hot
#    journal; `recover` (fault build) is SIGKILLed after each of its steps
#    N; a re-run of `recover` (release) gives the pre-apply snapshot.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/crashlib.sh"
setup
need_cmd cp setfacl getfacl setcap
need_fault
# CRASH_FAULT_EVERY=K (default 1): every K-th step only, and the last three
# (fault_point in crashlib.sh), for a shorter run (the @slowfs CI entry).
#
# Step numbers must be reproducible (recover --forward runs the engine): one
# worker. fault_apply.sh has the parallel crash points.
export VOLPERM_JOBS=1
snapd_start
crash_fs 256

P=$FSDIR/pristine
mktree "$P" "${FAULT_TREE_ARGS[@]}"
fsnap "$P" "$W/pre.snap"
fresh_copy "$P" "$FSDIR/clean"
vp_expect 0 "clean apply (release build)" apply -q -o 1001:1001 --journal-dir "$(fs_jdir)" "$FSDIR/clean"
fsnap "$FSDIR/clean" "$W/post.snap"
rm -rf "$FSDIR/clean"

V=$FSDIR/v J=$FSDIR/j
points=0

# ---- 1. rollback of a committed journal ----
# configurations: the chown-only policy, and one that also writes ACLs and
# modes (rollback then restores owner, mode, ACLs and capabilities)
ALL_CONFIGS=(
	"owner|-o 1001:1001"
	"multi|-o 1001 --fsgroup 3001 --chmod g-w,o-rwx --grant u:2001:rwX"
)
want=" ${CRASH_FAULT_CONFIGS:-owner owner-b4 multi} "
for c in "${ALL_CONFIGS[@]}"; do
	IFS='|' read -r cfg policy <<<"$c"
	case $want in *" $cfg "*) ;; *) continue ;; esac
	read -r -a POL <<<"$policy"
	fresh_copy "$P" "$V"
	fresh_jdir "$J"
	vp_expect 0 "[$cfg] apply" apply -q "${POL[@]}" --journal-dir "$J" "$V"
	VOLPERM_FAULT_TRACE=1 "$VPF" rollback --journal-dir "$J" "$V" >/dev/null 2>"$W/trace.rollback"
	assert_eq "$?" 0 "[$cfg] traced full rollback (fault build) exits 0"
	fcheck "$V" "$W/pre.snap" "[$cfg] fault build rollback without a fault == pre-apply snapshot"
	snapd_req order "$W/trace.rollback" rollback
	if [ "$SNAPD_STATUS" = ok ]; then
		pass "[$cfg] rollback step order: ROLLBACK_BEGIN synced before the first restore, syncfs before ROLLED_BACK"
	else
		fail "[$cfg] rollback step order:"
		_snapd_show
	fi
	mapfile -t STEP < <(trace_steps "$W/trace.rollback")
	STEP=("" "${STEP[@]}")
	total=$((${#STEP[@]} - 1))
	done_mark=0 # the ROLLED_BACK mark's journal-write: the journal is rolled-back from here on
	for ((i = 1; i <= total; i++)); do
		[ "${STEP[$i]}" = rollback-syncfs ] && done_mark=$((i + 1))
	done
	[ "$done_mark" -gt 0 ] || die "[$cfg] no rollback-syncfs step in the trace"
	say "# [$cfg] rollback: $total steps: $(trace_steps "$W/trace.rollback" | sort | uniq -c | awk '{ printf "%s %s, ", $1, $2 }')rolled-back mark at step $done_mark"
	for kind in rollback-chown rollback-chmod rollback-setxattr; do
		assert_true "[$cfg] the rollback has $kind steps" grep -q " $kind\$" "$W/trace.rollback"
	done

	bad=0 double=0 s0=$FAULT_SKIPPED
	for ((n = 1; n <= total; n++)); do
		fault_point "$n" "$total" || continue
		what="[$cfg] rollback killed after step $n/$total (${STEP[$n]})"
		fresh_copy "$P" "$V"
		fresh_jdir "$J"
		"$VP" apply -q "${POL[@]}" --journal-dir "$J" "$V" >/dev/null 2>&1 || die "apply failed"
		{ VOLPERM_FAULT_AFTER=$n "$VPF" rollback --journal-dir "$J" "$V"; } >/dev/null 2>"$W/fault.err"
		rc=$?
		f0=$FAILS
		if [ $rc -ne 137 ]; then
			fail "$what: the fault build exited $rc, expected 137 (SIGKILL)"
			bad=$((bad + 1))
			continue
		fi
		if [ "$n" -lt "$done_mark" ]; then
			assert_eq "$(journal_state "$J")" rolling-back "$what: journal is rolling-back"
			vp_expect 4 "$what: plan refuses (hot journal)" plan "${POL[@]}" --journal-dir "$J" "$V"
			if [ $((n % 4)) -eq 0 ]; then
				# a second crash: the re-run is killed half way through what is left
				m=$(((total - n) / 2))
				[ $m -ge 1 ] || m=1
				{ VOLPERM_FAULT_AFTER=$m "$VPF" rollback --journal-dir "$J" "$V"; } >/dev/null 2>"$W/fault2.err"
				rc=$?
				if [ $rc -eq 137 ]; then
					double=$((double + 1))
					assert_eq "$(journal_state "$J")" rolling-back "$what: second crash (re-run killed after its step $m): still rolling-back"
				else
					assert_eq "$rc" 0 "$what: re-run (fault build) finished before its step $m"
				fi
			fi
			vp_expect 0 "$what: rollback re-run" rollback --journal-dir "$J" "$V"
			fcheck "$V" "$W/pre.snap" "$what: re-run == pre-apply snapshot"
		else
			assert_eq "$(journal_state "$J")" rolled-back "$what: journal is rolled-back"
			vp_expect 2 "$what: rollback re-run: no journal to roll back" rollback --journal-dir "$J" "$V"
			assert_file_match "no journal to roll back" "$ERR" "$what: says no journal to roll back"
			fcheck "$V" "$W/pre.snap" "$what: tree == pre-apply snapshot"
		fi
		assert_eq "$(journal_state "$J")" rolled-back "$what: journal ends rolled-back"
		[ $FAILS -gt $f0 ] && bad=$((bad + 1))
	done
	points=$((points + total))
	say "# [$cfg] rollback: $((total - FAULT_SKIPPED + s0)) crash points ($double of them with a second crash during the re-run), $bad with a failure"
done

# ---- 2. recover (back and forward) of a hot journal ----
# The apply is killed in the middle of its chowns (default batch: one batch
# of before-images, then the chowns), so about half of the tree is changed.
fresh_copy "$P" "$V"
fresh_jdir "$J"
VOLPERM_FAULT_TRACE=1 "$VPF" apply -q -o 1001:1001 --journal-dir "$J" "$V" >/dev/null 2>"$W/trace.apply"
mapfile -t chowns < <(awk '$1 == "fault-step" && $3 == "chown" { print $2 }' "$W/trace.apply")
[ ${#chowns[@]} -gt 2 ] || die "the traced apply made ${#chowns[@]} chowns"
K=${chowns[$((${#chowns[@]} / 2))]}
say "# apply killed after step $K (chown $((${#chowns[@]} / 2 + 1)) of ${#chowns[@]}) to make a hot journal"

hot_copy() {
	fresh_copy "$P" "$V"
	fresh_jdir "$J"
	{ VOLPERM_FAULT_AFTER=$K "$VPF" apply -q -o 1001:1001 --journal-dir "$J" "$V"; } >/dev/null 2>&1
	[ $? -eq 137 ] || die "apply with VOLPERM_FAULT_AFTER=$K was not killed"
}

for dir in back forward; do
	fwd=()
	[ $dir = forward ] && fwd=(--forward)
	hot_copy
	VOLPERM_FAULT_TRACE=1 "$VPF" recover "${fwd[@]}" --journal-dir "$J" "$V" >/dev/null 2>"$W/trace.recover-$dir"
	assert_eq "$?" 0 "traced recover ${fwd[*]} (fault build) exits 0"
	if [ $dir = back ]; then
		want=$W/pre.snap final=rolled-back
	else
		want=$W/post.snap final=committed
	fi
	fcheck "$V" "$want" "fault build recover ${fwd[*]} without a fault == $(basename "$want" .snap)-apply snapshot"
	mapfile -t STEP < <(trace_steps "$W/trace.recover-$dir")
	STEP=("" "${STEP[@]}")
	total=$((${#STEP[@]} - 1))
	sync_step=rollback-syncfs
	[ $dir = forward ] && sync_step=syncfs
	mark=0
	for ((i = 1; i <= total; i++)); do
		[ "${STEP[$i]}" = $sync_step ] && mark=$((i + 1))
	done
	[ "$mark" -gt 0 ] || die "no $sync_step step in the recover trace"
	say "# recover ${fwd[*]}: $total steps: $(trace_steps "$W/trace.recover-$dir" | sort | uniq -c | awk '{ printf "%s %s, ", $1, $2 }')final mark at step $mark"
	bad=0
	s0=$FAULT_SKIPPED
	for ((n = 1; n <= total; n++)); do
		fault_point "$n" "$total" || continue
		what="recover ${fwd[*]} killed after step $n/$total (${STEP[$n]})"
		hot_copy
		{ VOLPERM_FAULT_AFTER=$n "$VPF" recover "${fwd[@]}" --journal-dir "$J" "$V"; } >/dev/null 2>"$W/fault.err"
		rc=$?
		f0=$FAILS
		if [ $rc -ne 137 ]; then
			fail "$what: the fault build exited $rc, expected 137 (SIGKILL)"
			bad=$((bad + 1))
			continue
		fi
		rolled=0
		if [ "$n" -lt "$mark" ]; then
			vp_expect 4 "$what: plan refuses (hot journal)" plan -o 1001:1001 --journal-dir "$J" "$V"
			if [ $dir = forward ] && [ $((n % 2)) -eq 0 ]; then
				# finish the other way: a killed recover --forward can still be rolled back
				vp_expect 0 "$what: recover (roll back instead)" recover --journal-dir "$J" "$V"
				fcheck "$V" "$W/pre.snap" "$what: recover == pre-apply snapshot"
				assert_eq "$(journal_state "$J")" rolled-back "$what: journal ends rolled-back"
				rolled=1
			else
				vp_expect 0 "$what: recover ${fwd[*]} re-run" recover "${fwd[@]}" --journal-dir "$J" "$V"
				fcheck "$V" "$want" "$what: re-run == $(basename "$want" .snap)-apply snapshot"
				assert_eq "$(journal_state "$J")" $final "$what: journal ends $final"
			fi
		else
			assert_eq "$(journal_state "$J")" $final "$what: journal is $final"
			vp_expect 0 "$what: recover re-run (nothing to do)" recover "${fwd[@]}" --journal-dir "$J" "$V"
			assert_file_match "nothing.*to recover" "$OUT" "$what: says nothing to recover"
			fcheck "$V" "$want" "$what: tree == $(basename "$want" .snap)-apply snapshot"
		fi
		if [ $dir = forward ] && [ $rolled = 0 ]; then
			# the journal recover --forward completed undoes the whole apply
			vp_expect 0 "$what: final rollback" rollback --journal-dir "$J" "$V"
			fcheck "$V" "$W/pre.snap" "$what: final rollback == pre-apply snapshot"
		fi
		[ $FAILS -gt $f0 ] && bad=$((bad + 1))
	done
	points=$((points + total))
	say "# recover ${fwd[*]}: $((total - FAULT_SKIPPED + s0)) crash points, $bad with a failure"
done
say "# fault_rollback: $((points - FAULT_SKIPPED)) crash points covered"
[ "$FAULT_SKIPPED" = 0 ] || say "# fault_rollback: CRASH_FAULT_EVERY=$CRASH_FAULT_EVERY: $FAULT_SKIPPED of them left out"

finish
