#!/usr/bin/env bash
# Sharded runs (docs/scale-out.md): N local processes as shards (N = 1, 3, 8)
# over one tree, then shard finalize, leave it exactly as one `volperm apply`
# leaves a copy and as `chown -R -h` leaves another (but for the file with a
# hard link outside the tree, which stays unchanged, as on one machine);
# hard links spread over buckets of different shards are changed once, by
# finalize; rollback --run restores the original exactly; shard status says
# each state; a policy given again must be the run's; a plain run on the
# root sees a hot shard journal (exit 4); a shard killed mid-apply (the
# fault build's SIGKILL, at its first and last step and at random ones;
# VOLPERM_SHARD_SEED repeats a run) is recovered with --recover and
# finalized, or the run is rolled back, snapshot for snapshot; so is a run
# whose finalize was killed.
. "$(dirname "$0")/lib.sh"
setup
need_cmd chown cp setfacl

VPF=${VOLPERM_FAULT:-$REPO/build-fault/volperm}
# --shard auto reads these: none is ours (a CI job may run under Slurm or MPI)
unset SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_COUNT SLURM_ARRAY_TASK_MIN SLURM_ARRAY_TASK_MAX \
	SLURM_ARRAY_TASK_STEP SLURM_PROCID SLURM_NTASKS JOB_COMPLETION_INDEX OMPI_COMM_WORLD_RANK \
	OMPI_COMM_WORLD_SIZE PMI_RANK PMI_SIZE
O=$W/orig
mktree "$O" 1500 --seed 15 --acl-every 9 --setid 3 --caps 0 --hardlink-every 40
# Hard links across the top-level directories (buckets of different shards
# with N > 1), one in the root's own files bucket, and one file with a link
# outside the tree.
mkdir -p "$O/xa" "$O/xb/deep" "$O/xc" || die "mkdir"
echo one >"$O/xa/linked" && ln "$O/xa/linked" "$O/xb/deep/linked2" && ln "$O/xa/linked" "$O/xc/linked3" &&
	ln "$O/xa/linked" "$O/top-linked" || die "ln"
echo ext >"$O/xc/external" || die "echo"
snap "$O" "$W/orig.snap"
printf '%s\n' xc/external >"$W/external.ignore"

# copy NAME: a copy of the original, with its own link outside the tree.
copy() {
	rm -rf "${W:?}/$1" "$W/$1.outside"
	cp -a "$O" "$W/$1" || die "cp -a"
	ln "$W/$1/xc/external" "$W/$1.outside" || die "ln outside"
}

# The references: one apply, and chown -R -h.
copy one
J1=$(new_jdir)
vp_expect 5 "a single apply (the outside link skipped: exit 5)" apply --owner 1001:1002 --journal-dir "$J1" "$W/one"
snap "$W/one" "$W/one.snap"
copy chown
chown -R -h 1001:1002 "$W/chown" || die "chown -R -h"
snap "$W/chown" "$W/chown.snap"
snap_eq "$W/chown.snap" "$W/one.snap" "reference: apply == chown -R -h but for the file linked outside" --ignore "$W/external.ignore"
assert_eq "$(owner_of "$W/one/xc/external")" 0:0 "reference: the file linked outside is unchanged"

# run N: plan, N shards in parallel, finalize; compare. Leaves RUN, T, J.
run() {
	local n=$1 k pids=() rc
	T=$W/t$n
	copy "t$n"
	J=$(new_jdir)
	vp_expect 0 "[$n] shard plan --shards $n -q" shard plan --shards "$n" -q --owner 1001:1002 --journal-dir "$J" "$T"
	RUN=$(cat "$OUT")
	assert_match '^[0-9a-f]{32}$' "$RUN" "[$n] -q prints only the run id"
	assert_true "[$n] the manifest is in the journal directory" test -f "$J/run-$RUN.vpm"
	for ((k = 0; k < n; k++)); do
		"$VP" apply -q --run "$RUN" --shard "$k/$n" --journal-dir "$J" "$T" >"$W/s$n-$k.out" 2>&1 &
		pids+=($!)
	done
	rc=0
	for k in "${pids[@]}"; do wait "$k" || rc=$?; done
	assert_eq "$rc" 0 "[$n] every shard exits 0"
	vp_expect 1 "[$n] check --run before finalize: not done" check --run "$RUN" --journal-dir "$J" "$T"
	assert_file_match "is not done: it is ready to finalize" "$ERR" "[$n] check says the run is not finalized"
	vp_expect 1 "[$n] a plain check before finalize" check --owner 1001:1002 --journal-dir "$J" "$T"
	assert_file_match "warning: the sharded run $RUN on .* is not done" "$ERR" "[$n] a plain check says the run is not done"
	assert_eq "$(owner_of "$T")" 0:0 "[$n] the shards left the root to finalize"
	assert_eq "$(owner_of "$T/xb/deep/linked2")" 0:0 "[$n] no shard changed a multiply-linked file"
	vp_expect 5 "[$n] shard finalize (the outside link skipped: exit 5)" shard finalize --run "$RUN" --journal-dir "$J" "$T"
	assert_file_match "external-hardlink 1" "$OUT" "[$n] finalize skips the file linked outside"
	snap "$T" "$W/t$n.snap"
	snap_eq "$W/one.snap" "$W/t$n.snap" "[$n] $n shards + finalize == one apply"
	snap_eq "$W/chown.snap" "$W/t$n.snap" "[$n] $n shards + finalize == chown -R -h" --ignore "$W/external.ignore"
	assert_eq "$(owner_of "$T/xc/external")" 0:0 "[$n] the file linked outside is unchanged"
	vp_expect 1 "[$n] a plain check after finalize" check --owner 1001:1002 --journal-dir "$J" "$T"
	assert_file_nomatch "is not done" "$ERR" "[$n] a plain check after finalize: no warning"
	vp_expect 0 "[$n] shard status" shard status --run "$RUN" --journal-dir "$J"
	assert_file_match "^state: +committed" "$OUT" "[$n] status: committed"
	assert_eq "$(grep -c 'committed, [0-9]* entries' "$OUT")" $((n + 1)) "[$n] status: every shard and finalize committed, with entries"
	# (exit 1, as a plain check of a tree with a file linked outside)
	vp_expect 1 "[$n] check --run after finalize: the tree is checked" check --run "$RUN" --journal-dir "$J" "$T"
	assert_file_nomatch "is not done" "$ERR" "[$n] check --run after finalize: the run is done"
	assert_file_match "changes: +0 entries" "$OUT" "[$n] check --run after finalize: nothing left to change"
}

run 1
run 3
# The rest of the run of 3: rollback, and what a finished run refuses.
vp_expect 2 "a shard of a finalized run does not run again" apply --run "$RUN" --shard 0/3 --journal-dir "$J" "$T"
vp_expect 2 "plain rollback refuses a sharded run's committed journal" rollback --journal-dir "$J" "$T"
assert_file_match "belongs to the sharded run $RUN" "$ERR" "... and names the run"
# The rollback as an array of 3, at once: whichever task comes first undoes
# finalize's journal, the others wait for it, then each undoes its shard.
pids=()
for k in 0 1 2; do
	"$VP" rollback -q --run "$RUN" --shard "$k/3" --journal-dir "$J" "$T" >"$W/rb$k.out" 2>&1 &
	pids+=($!)
done
rc=0
for k in "${pids[@]}"; do wait "$k" || rc=$?; done
assert_eq "$rc" 0 "[3] rollback --run --shard K/3, three at once: every task exits 0"
snap "$T" "$W/t3.back.snap"
snap_eq "$W/orig.snap" "$W/t3.back.snap" "[3] rollback --run as an array restores the original exactly"
vp_expect 0 "shard status after rollback" shard status --run "$RUN" --journal-dir "$J"
assert_file_match "^state: +rolled back" "$OUT" "status: rolled back"
vp_expect 0 "rollback --run again: nothing left to undo" rollback --run "$RUN" --journal-dir "$J" "$T"
run 8

# --- refusals, status states, the policy given again ----------------------
copy p
J=$(new_jdir)
vp_expect 0 "plan a run of 2" shard plan --shards 2 -q --owner 1001:1002 --journal-dir "$J" "$W/p"
RUN=$(cat "$OUT")
vp_expect 0 "status of a planned run" shard status --run "$RUN" --journal-dir "$J"
assert_file_match "^state: +planned" "$OUT" "status: planned"
assert_eq "$(grep -c 'not started' "$OUT")" 3 "status: every shard and finalize not started"
vp_expect 2 "a different policy given again is refused" apply --run "$RUN" --shard 0/2 --owner 1001:1003 --journal-dir "$J" "$W/p"
assert_file_match "not the one run $RUN was planned with" "$ERR" "... in one sentence"
vp_expect 2 "--shard K/N with another N is refused" apply --run "$RUN" --shard 0/3 --journal-dir "$J" "$W/p"
vp_expect 2 "--shard auto without any environment is refused" apply --run "$RUN" --shard auto --journal-dir "$J" "$W/p"
vp_expect 2 "another tree is refused" apply --run "$RUN" --shard 0/2 --journal-dir "$J" "$W/one"
vp_expect 2 "an unknown run is refused" apply --run 0123456789abcdef0123456789abcdef --shard 0/2 --journal-dir "$J" "$W/p"
vp_expect 2 "a bad run id is refused" apply --run xyz --shard 0/2 --journal-dir "$J" "$W/p"
vp_expect 2 "finalize before any shard is refused" shard finalize --run "$RUN" --journal-dir "$J" "$W/p"
vp_expect 0 "the same policy given again is taken" plan --run "$RUN" --shard 0/2 --owner 1001:1002 --journal-dir "$J" "$W/p"
vp_expect 0 "shard 0/2 applies (policy from the manifest)" apply -q --run "$RUN" --shard 0/2 --journal-dir "$J" "$W/p"
vp_expect 0 "shard 0/2 again: already committed, nothing to do" apply --run "$RUN" --shard 0/2 --journal-dir "$J" "$W/p"
assert_file_match "already committed" "$OUT" "... and says so"
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 vp_expect 0 "shard 1/2 from Slurm's environment (--shard auto)" \
	apply -q --run "$RUN" --shard auto --journal-dir "$J" "$W/p"
JOB_COMPLETION_INDEX=1 vp_expect 0 "plan --shard auto from a Kubernetes Indexed Job's index (N from the manifest)" \
	plan --run "$RUN" --shard auto --journal-dir "$J" "$W/p"
OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 \
	vp_expect 2 "--shard auto: two sources naming different shards are refused" \
	plan --run "$RUN" --shard auto --journal-dir "$J" "$W/p"
assert_file_match "two different shards" "$ERR" "... in one sentence naming them"
vp_expect 0 "status" shard status --run "$RUN" --journal-dir "$J"
assert_file_match "^state: +ready to finalize" "$OUT" "status: ready to finalize"
vp_expect 5 "finalize" shard finalize --run "$RUN" --journal-dir "$J" "$W/p"
snap "$W/p" "$W/p.snap"
snap_eq "$W/one.snap" "$W/p.snap" "Slurm-indexed shards + finalize == one apply"

# --- SIGKILL of one shard mid-apply ----------------------------------------
if [ ! -x "$VPF" ]; then
	skip "no fault-injection build at $VPF for the kill test (the rest passed: $CHECKS checks, $FAILS failed)"
fi
# kill_run NAME [STEP]: a run of 3 whose shard 1 is SIGKILLed at fault step
# STEP (default: half way through its changes; the steps are the fault
# build's points: journal writes and syncs, changes, the sightings, the
# volume sync); shards 0 and 2 commit. Leaves RUN, T, J, and STEPS (the
# trace of shard 1's steps on a copy of its own).
kill_run() {
	T=$W/$1
	copy "$1"
	J=$(new_jdir)
	vp_expect 0 "[$1] plan" shard plan --shards 3 -q --owner 1001:1002 --journal-dir "$J" "$T"
	RUN=$(cat "$OUT")
	# shard 1's steps, on a copy of its own
	copy probe
	local JP steps at
	JP=$(new_jdir)
	"$VP" shard plan --shards 3 -q --owner 1001:1002 --journal-dir "$JP" "$W/probe" >"$W/probe.id" || die "probe plan"
	# (--jobs 1: with more threads the steps come in another order, and
	# another number of them, from run to run)
	VOLPERM_FAULT_TRACE=1 "$VPF" apply -q --jobs 1 --run "$(cat "$W/probe.id")" --shard 1/3 --journal-dir "$JP" "$W/probe" 2>"$W/probe.trace" >/dev/null ||
		die "probe apply"
	STEPS=$(grep -c '^fault-step ' "$W/probe.trace")
	steps=$(grep -c '^fault-step .* chown' "$W/probe.trace")
	[ "$steps" -gt 10 ] || die "shard 1 has only $steps changes (test setup)"
	at=${2:-$(grep '^fault-step .* chown' "$W/probe.trace" | sed -n "$((steps / 2))p" | awk '{print $2}')}
	say "# [$1] shard 1/3 killed at step $at of $STEPS ($(awk -v s="$at" '$2 == s { print $3 }' "$W/probe.trace"))"
	VOLPERM_FAULT_AFTER=$at "$VPF" apply -q --jobs 1 --run "$RUN" --shard 1/3 --journal-dir "$J" "$T" >/dev/null 2>&1
	assert_eq "$?" 137 "[$1] shard 1/3 was SIGKILLed at step $at"
	vp_expect 0 "[$1] shard 0/3" apply -q --run "$RUN" --shard 0/3 --journal-dir "$J" "$T"
	vp_expect 0 "[$1] shard 2/3" apply -q --run "$RUN" --shard 2/3 --journal-dir "$J" "$T"
}
kill_run k1
vp_expect 0 "[k1] status" shard status --run "$RUN" --journal-dir "$J"
assert_file_match "^shard 1/3: hot" "$OUT" "[k1] status: shard 1 hot"
assert_file_match "^state: +failed" "$OUT" "[k1] status: the run failed"
vp_expect 4 "a plain apply on the root sees the hot shard journal" apply --owner 1001:1002 --journal-dir "$J" "$T"
vp_expect 4 "a plain plan too" plan --owner 1001:1002 --journal-dir "$J" "$T"
vp_expect 4 "a plain apply --recover does not take it for its own" apply --recover --owner 1001:1002 --journal-dir "$J" "$T"
vp_expect 4 "finalize refuses while shard 1 is hot" shard finalize --run "$RUN" --journal-dir "$J" "$T"
vp_expect 4 "shard 1 restarted without --recover: blocked by its own hot journal" apply --run "$RUN" --shard 1/3 --journal-dir "$J" "$T"
vp_expect 0 "shard 1 restarted with --recover: rolls back its part, applies again" apply -q --recover --run "$RUN" --shard 1/3 --journal-dir "$J" "$T"
vp_expect 5 "finalize" shard finalize --run "$RUN" --journal-dir "$J" "$T"
snap "$T" "$W/k1.snap"
snap_eq "$W/one.snap" "$W/k1.snap" "killed shard, --recover, finalize == one apply"

kill_run k2
vp_expect 0 "rollback --run of the failed run (whole)" rollback --run "$RUN" --journal-dir "$J" "$T"
snap "$T" "$W/k2.snap"
snap_eq "$W/orig.snap" "$W/k2.snap" "killed shard, rollback --run == the original"
vp_expect 0 "status" shard status --run "$RUN" --journal-dir "$J"
assert_file_match "^state: +rolled back" "$OUT" "status: rolled back"

# More points: the first and the last step of shard 1 (before any change;
# its COMMIT), its volume sync and its sightings' commit, and random ones
# (the seed is printed: a failure is a bug at that step, whatever the
# seed). Each ends either way: --recover + finalize == one apply, or
# rollback --run == the original.
SEED=${VOLPERM_SHARD_SEED:-$((RANDOM))}
say "# random kill points: VOLPERM_SHARD_SEED=$SEED"
RANDOM=$SEED
points="1 $STEPS"
for what in syncfs sightings; do
	at=$(awk -v w="$what" '$1 == "fault-step" && $3 == w { print $2; exit }' "$W/probe.trace")
	[ -n "$at" ] || die "no $what step in shard 1's trace (test setup)"
	points+=" $at"
done
for _ in 1 2 3 4; do
	points+=" $((RANDOM % STEPS + 1))"
done
i=0
for at in $points; do
	i=$((i + 1))
	kill_run "p$i" "$at"
	if [ $((i % 2)) = 1 ]; then
		vp_expect 0 "[p$i] shard 1 --recover" apply -q --recover --run "$RUN" --shard 1/3 --journal-dir "$J" "$T"
		vp_expect 5 "[p$i] finalize" shard finalize --run "$RUN" --journal-dir "$J" "$T"
		snap "$T" "$W/p$i.snap"
		snap_eq "$W/one.snap" "$W/p$i.snap" "[p$i] killed at step $at, --recover, finalize == one apply"
	else
		vp_expect 0 "[p$i] rollback --run" rollback --run "$RUN" --journal-dir "$J" "$T"
		snap "$T" "$W/p$i.snap"
		snap_eq "$W/orig.snap" "$W/p$i.snap" "[p$i] killed at step $at, rollback --run == the original"
	fi
done

# finalize killed: at a random step of its own; run again it finishes
# (its hot journal rolled back first), or the run rolls back whole.
for mode in again rollback; do
	T=$W/f$mode
	copy "f$mode"
	J=$(new_jdir)
	vp_expect 0 "[f$mode] plan" shard plan --shards 3 -q --owner 1001:1002 --journal-dir "$J" "$T"
	RUN=$(cat "$OUT")
	for k in 0 1 2; do
		vp_expect 0 "[f$mode] shard $k/3" apply -q --run "$RUN" --shard $k/3 --journal-dir "$J" "$T"
	done
	copy fprobe
	JP=$(new_jdir)
	"$VP" shard plan --shards 3 -q --owner 1001:1002 --journal-dir "$JP" "$W/fprobe" >"$W/fprobe.id" || die "probe plan"
	for k in 0 1 2; do
		"$VP" apply -q --run "$(cat "$W/fprobe.id")" --shard $k/3 --journal-dir "$JP" "$W/fprobe" || die "probe shard $k"
	done
	VOLPERM_FAULT_TRACE=1 "$VPF" shard finalize -q --jobs 1 --run "$(cat "$W/fprobe.id")" --journal-dir "$JP" "$W/fprobe" 2>"$W/fprobe.trace" >/dev/null
	fsteps=$(grep -c '^fault-step ' "$W/fprobe.trace")
	[ "$fsteps" -gt 3 ] || die "finalize has only $fsteps steps (test setup)"
	at=$((RANDOM % fsteps + 1))
	say "# [f$mode] finalize killed at step $at of $fsteps ($(awk -v s="$at" '$2 == s { print $3 }' "$W/fprobe.trace"))"
	VOLPERM_FAULT_AFTER=$at "$VPF" shard finalize -q --jobs 1 --run "$RUN" --journal-dir "$J" "$T" >/dev/null 2>&1
	assert_eq "$?" 137 "[f$mode] finalize was SIGKILLed at step $at"
	# The last two steps write and sync the commit mark: killed after its
	# write (the page cache outlives a SIGKILL) the run is committed, and
	# finalize again says so (exit 0); killed before, it finishes the run.
	commit_at=$(awk '$1 == "fault-step" && $3 == "journal-write" { s = $2 } END { print s }' "$W/fprobe.trace")
	if [ $mode = again ] && [ "$at" -ge "$commit_at" ]; then
		vp_expect 0 "[f$mode] finalize again after the commit mark (step $commit_at)" shard finalize --run "$RUN" --journal-dir "$J" "$T"
		assert_file_match "^run $RUN is already committed\$" "$OUT" "[f$mode] finalize again: the run is already committed"
		snap "$T" "$W/f$mode.snap"
		snap_eq "$W/one.snap" "$W/f$mode.snap" "[f$mode] finalize killed at step $at, run again == one apply"
	elif [ $mode = again ]; then
		vp_expect 5 "[f$mode] finalize again" shard finalize --run "$RUN" --journal-dir "$J" "$T"
		snap "$T" "$W/f$mode.snap"
		snap_eq "$W/one.snap" "$W/f$mode.snap" "[f$mode] finalize killed at step $at, run again == one apply"
	else
		vp_expect 0 "[f$mode] rollback --run" rollback --run "$RUN" --journal-dir "$J" "$T"
		snap "$T" "$W/f$mode.snap"
		snap_eq "$W/orig.snap" "$W/f$mode.snap" "[f$mode] finalize killed at step $at, rollback --run == the original"
	fi
done
finish
