#!/usr/bin/env bash
# tests/e2e/slurm.sh: sharded runs (docs/scale-out.md) on a real single-node
# Slurm, started here: munged (as user munge, its key, socket, seed and log in
# the scratch dir), slurmctld -c and slurmd in the foreground of their own,
# configured by a slurm.conf in the scratch dir (SLURM_CONF): the node is this
# host (`hostname -s`) with CPUs=2, ProctrackType=proctrack/linuxproc (the
# cgroup default fails here and drains the node), TaskPlugin=task/none, no
# accounting, SlurmUser=root, AuthInfo=cred_expire=5 (a requeued job waits
# cred_expire + 1 s before it runs again; the default is 121 s), state and
# spool in the scratch dir. Everything is stopped by its PID at exit, and
# nothing is left outside the scratch dir, which is removed.
#
# Scenarios:
#   cluster  a trivial `sbatch --array=0-3` and an afterok job on it: the
#            cluster works at all (timed), SLURM_ARRAY_TASK_COUNT is set
#   array    shard plan -q --shards 4; an array job of 4 shards (apply --run
#            RUN --shard auto) and a finalize job with --dependency=afterok:
#            ARRAY; every entry as `chown -R -h` leaves a copy, hard links
#            spread across buckets included
#   requeue  one array task is stopped mid-apply (its --list output goes to a
#            pipe that nobody reads, so it blocks with its journal active),
#            scancel'ed (SIGTERM, then SIGKILL after KillWait): its journal
#            is hot, the afterok finalize job can never run (cancelled here),
#            finalize refuses; `scontrol requeue` reruns the task, apply
#            --recover rolls its part back and applies it again, a new
#            finalize job (afterok on each task) commits the run: identical
#            to chown -R -h; then `volperm rollback --run`: identical to the
#            tree before the run
#
# Needs root and the Debian packages slurmctld slurmd slurm-client munge
# (tests/e2e/run.sh installs them). Not installed: every scenario is SKIPPED,
# loudly. Installed but the cluster does not come up: FAILED (it is known to
# work on these machines).
# Last line: `N passed, N failed, N skipped`; exit 1 if any failed.
#
# VOLPERM             the binary under test (default build/volperm)
# VOLPERM_E2E_KEEP=1  keep the scratch directory
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/shardlib.sh"
RUNTIME=slurm
# The daemons are in /usr/sbin (Debian), which CI's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin
SCENARIOS=(cluster array requeue)
if [ -n "${VOLPERM_E2E_SCENARIOS:-}" ]; then
	read -r -a SCENARIOS <<<"$VOLPERM_E2E_SCENARIOS"
fi

if [ "$(id -u)" != 0 ]; then
	skip_all "needs root (munged, slurmd)" "${SCENARIOS[@]}"
	e2e_summary
	exit
fi
for c in munged munge unmunge slurmctld slurmd sbatch squeue scontrol scancel sinfo setpriv; do
	command -v "$c" >/dev/null || {
		skip_all "$c is not installed (apt-get install slurmctld slurmd slurm-client munge)" "${SCENARIOS[@]}"
		e2e_summary
		exit
	}
done
id munge >/dev/null 2>&1 || {
	skip_all "no user munge (the munge package makes it)" "${SCENARIOS[@]}"
	e2e_summary
	exit
}

# 0755: munged (user munge) must reach its directory below it.
WORK=$(mktemp -d /tmp/vpe2e-slurm.XXXXXX)
chmod 0755 "$WORK"
export SLURM_CONF=$WORK/slurm.conf
MUNGED_PID='' SLURMCTLD_PID='' SLURMD_PID=''

# stop_pid PID: SIGTERM, up to 10 s, then SIGKILL (our own children only)
stop_pid() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 1 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.2
	done
	kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

cleanup() {
	if [ -n "$SLURMCTLD_PID" ] && kill -0 "$SLURMCTLD_PID" 2>/dev/null; then
		# Only our own controller answers at $SLURM_CONF's port.
		scancel --full --quiet --user root 2>/dev/null
		for _ in $(seq 1 50); do
			[ -z "$(squeue -h 2>/dev/null)" ] && break
			sleep 0.2
		done
	fi
	stop_pid "$SLURMD_PID"
	stop_pid "$SLURMCTLD_PID"
	stop_pid "$MUNGED_PID"
	remove_work slurm.sh
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# ---- the cluster ------------------------------------------------------------------

# free_ports N: N TCP ports nobody listens on now (for slurmctld, slurmd)
free_ports() {
	python3 -c '
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s:
    x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
}

start_cluster() {
	local m=$WORK/munge host ports t0=$SECONDS state=
	mkdir -p "$m" "$WORK/state" "$WORK/spool" || return 1
	# A key of our own (what mungekey makes: random bytes, 0600, munge's).
	dd if=/dev/urandom of="$m/munge.key" bs=1024 count=1 status=none || return 1
	chown -R munge:munge "$m" && chmod 0755 "$m" && chmod 0600 "$m/munge.key" || return 1
	setpriv --reuid=munge --regid=munge --clear-groups /usr/sbin/munged -F \
		--key-file="$m/munge.key" --socket="$m/munge.socket" --seed-file="$m/munged.seed" \
		--log-file="$m/munged.log" --pid-file="$m/munged.pid" >"$WORK/munged.out" 2>&1 &
	MUNGED_PID=$!
	for _ in $(seq 1 50); do
		[ -S "$m/munge.socket" ] && break
		sleep 0.1
	done
	munge -n -S "$m/munge.socket" | unmunge -S "$m/munge.socket" >/dev/null 2>&1 || {
		echo "munged did not come up:"
		cat "$WORK/munged.out"
		return 1
	}

	host=$(hostname -s)
	read -r -a ports <<<"$(free_ports 2)"
	cat >"$SLURM_CONF" <<-EOF
		ClusterName=vpe2e
		SlurmctldHost=$host
		SlurmUser=root
		SlurmdUser=root
		SlurmctldPort=${ports[0]}
		SlurmdPort=${ports[1]}
		AuthType=auth/munge
		CredType=cred/munge
		AuthInfo=socket=$m/munge.socket,cred_expire=5
		ProctrackType=proctrack/linuxproc
		TaskPlugin=task/none
		JobAcctGatherType=jobacct_gather/none
		AccountingStorageType=accounting_storage/none
		JobCompType=jobcomp/none
		MpiDefault=none
		SchedulerType=sched/builtin
		SchedulerParameters=sched_interval=1
		SelectType=select/cons_tres
		SelectTypeParameters=CR_CPU
		StateSaveLocation=$WORK/state
		SlurmdSpoolDir=$WORK/spool
		SlurmctldPidFile=$WORK/slurmctld.pid
		SlurmdPidFile=$WORK/slurmd.pid
		SlurmctldLogFile=$WORK/slurmctld.log
		SlurmdLogFile=$WORK/slurmd.log
		ReturnToService=2
		KillWait=2
		MinJobAge=600
		NodeName=$host CPUs=2 State=UNKNOWN
		PartitionName=e2e Nodes=$host Default=YES MaxTime=INFINITE State=UP
	EOF
	# -D: in the foreground, so that $! is the daemon; -c: no saved state.
	slurmctld -D -c >"$WORK/slurmctld.out" 2>&1 &
	SLURMCTLD_PID=$!
	slurmd -D >"$WORK/slurmd.out" 2>&1 &
	SLURMD_PID=$!
	for _ in $(seq 1 100); do
		state=$(sinfo -h -N -o %t 2>/dev/null)
		[ "$state" = idle ] && break
		sleep 0.2
	done
	if [ "$state" != idle ]; then
		echo "the node is not idle after 20 s (state: ${state:-none}):"
		tail -n 20 "$WORK/slurmctld.log" "$WORK/slurmd.log" 2>&1
		return 1
	fi
	echo "slurm: $(slurmctld -V), node $host idle $((SECONDS - t0)) s after the start"
}

# ---- job helpers ----------------------------------------------------------------------

# job_field JOB FIELD: a field of `scontrol show job` (JobState, ExitCode,
# Restarts, Reason...)
job_field() {
	scontrol show job "$1" 2>/dev/null | grep -oE "(^| )$2=[^ ]*" | head -n 1 | sed "s/^ *$2=//"
}

# wait_gone SECONDS JOB...: until squeue lists none of the jobs
wait_gone() {
	local limit=$1 t0=$SECONDS ids
	shift
	ids=$(
		IFS=,
		echo "$*"
	)
	while [ -n "$(squeue -h -j "$ids" 2>/dev/null)" ]; do
		# A dependency that failed never runs: no point in waiting.
		if [ $((SECONDS - t0)) -ge "$limit" ] ||
			squeue -h -j "$ids" -o %r 2>/dev/null | grep -q DependencyNeverSatisfied; then
			squeue -j "$ids" -o '%i %T %r'
			scancel "$@" 2>/dev/null # not to hold the node for the next scenario
			fail "jobs $ids still in the queue after $((SECONDS - t0)) s"
		fi
		sleep 0.2
	done
}

# completed JOB LOG: JOB ended COMPLETED with exit 0:0, else its log
completed() {
	local st ec
	st=$(job_field "$1" JobState)
	ec=$(job_field "$1" ExitCode)
	[ "$st" = COMPLETED ] && [ "$ec" = 0:0 ] && return 0
	echo "    job $1: $st, exit $ec; its output ($2):"
	sed 's/^/      | /' "$2" 2>/dev/null
	fail "job $1 did not complete"
}

# ---- scenarios --------------------------------------------------------------------------

sc_cluster() {
	local d=$WORK/cluster t0=$SECONDS array fin k
	mkdir -p "$d"
	array=$(sbatch --parsable --array=0-3 -o "$d/task-%a.out" \
		--wrap 'echo "task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_TASK_COUNT"') || fail "sbatch --array failed"
	fin=$(sbatch --parsable --dependency=afterok:"$array" -o "$d/fin.out" --wrap 'echo after') ||
		fail "sbatch --dependency failed"
	wait_gone 60 "$array"
	for k in 0 1 2 3; do
		completed "${array}_$k" "$d/task-$k.out"
		[ "$(cat "$d/task-$k.out")" = "task $k of 4" ] || fail "task $k printed: $(cat "$d/task-$k.out")"
	done
	wait_gone 60 "$fin"
	completed "$fin" "$d/fin.out"
	echo "    an array of 4 trivial tasks and its afterok job: $((SECONDS - t0)) s"
}

sc_array() {
	need_shard_cli
	local d=$WORK/array T J array fin k
	T=$d/tree J=$d/journal
	mkdir -p "$T" "$J" && chmod 0700 "$J" && cp -a "$WORK/pristine/." "$T/" || fail "cannot copy the tree"
	oracle "$T" "$d/expected.snap" 1001:1002
	plan_run 4 "$T" "$J" --owner 1001:1002
	array=$(sbatch --parsable --array=0-3 --job-name "vp-$RUN" -o "$d/shard-%a.log" \
		--wrap "$VP apply --run $RUN --shard auto --journal-dir $J $T") || fail "sbatch --array failed"
	fin=$(sbatch --parsable --dependency=afterok:"$array" --job-name "vp-$RUN-finalize" -o "$d/finalize.log" \
		--wrap "$VP shard finalize --run $RUN --journal-dir $J $T") || fail "sbatch finalize failed"
	# The tasks first: a failed one is reported with its output.
	wait_gone 90 "$array"
	for k in 0 1 2 3; do
		completed "${array}_$k" "$d/shard-$k.log"
	done
	wait_gone 60 "$fin"
	completed "$fin" "$d/finalize.log"
	# --shard auto took four different shards from the array's environment.
	[ "$(shard_journals "$J" "$RUN" | tr '\n' ' ')" = "00000000 00000001 00000002 00000003 ffffffff " ] ||
		fail "expected the journals of shards 0-3 and finalize's, found: $(shard_journals "$J" "$RUN" | tr '\n' ' ')"
	run_state "$J" "$RUN" committed "shard 0/4: committed" "shard 3/4: committed" "finalize:  committed"
	echo "    shard status:"
	show_out
	snapshot "$T" "$d/actual.snap"
	same_as "$d/expected.snap" "$d/actual.snap" "the run vs chown -R -h"
}

# blocked_writing PATTERN: the process whose command line matches PATTERN
# sleeps in a write to a pipe (its wchan, or its kernel stack where wchan
# says nothing: pipe_write, anon_pipe_write)
blocked_writing() {
	local pid
	pid=$(pgrep -f -- "$1" | head -n 1)
	[ -n "$pid" ] && cat "/proc/$pid/wchan" "/proc/$pid/stack" 2>/dev/null | grep -q pipe_write
}

sc_requeue() {
	need_shard_cli
	local d=$WORK/requeue T J array fin fin2 k hold t0 st
	T=$d/tree J=$d/journal
	mkdir -p "$T" "$J" && chmod 0700 "$J" && cp -a "$WORK/pristine/." "$T/" || fail "cannot copy the tree"
	snapshot "$T" "$d/before.snap"
	oracle "$T" "$d/expected.snap" 1001:1002
	plan_run 4 "$T" "$J" --owner 1001:1002

	# The pipe that task 1's first attempt writes its --list lines into: we
	# hold it open and never read it, and make it one page. With at most 256
	# open files the task's journal batches are of at most 128 entries
	# (half of RLIMIT_NOFILE, docs/architecture.md "Batches"), so the
	# changes of the first batches fill the pipe while the later ones are
	# not made yet: the task blocks mid-apply, its journal active.
	mkfifo "$d/stuck.fifo" || fail "mkfifo"
	exec {hold}<>"$d/stuck.fifo"
	python3 -c 'import fcntl, sys; fcntl.fcntl(int(sys.argv[1]), fcntl.F_SETPIPE_SZ, 4096)' "$hold" ||
		fail "cannot shrink the pipe"
	cat >"$d/task.sh" <<-EOF
		#!/bin/sh
		if [ "\$SLURM_ARRAY_TASK_ID" = 1 ] && mkdir "$d/stuck-once" 2>/dev/null; then
		    ulimit -n 256
		    exec "$VP" apply --recover --list --run $RUN --shard auto --journal-dir "$J" "$T" >"$d/stuck.fifo"
		fi
		exec "$VP" apply --recover --run $RUN --shard auto --journal-dir "$J" "$T"
	EOF
	array=$(sbatch --parsable --array=0-3 --requeue --open-mode=append --job-name "vp-$RUN" \
		-o "$d/shard-%a.log" "$d/task.sh") || fail "sbatch --array failed"
	fin=$(sbatch --parsable --dependency=afterok:"$array" -o "$d/finalize.log" \
		--wrap "$VP shard finalize --run $RUN --journal-dir $J $T") || fail "sbatch finalize failed"

	t0=$SECONDS
	until [ "$(job_field "${array}_1" JobState)" = RUNNING ] && blocked_writing "--list --run $RUN"; do
		[ $((SECONDS - t0)) -lt 60 ] ||
			fail "task 1 did not block in a pipe write within 60 s (state $(job_field "${array}_1" JobState), wchan $(cat /proc/"$(pgrep -f -- "--list --run $RUN" | head -n 1)"/wchan 2>&1))"
		sleep 0.2
	done
	run_state "$J" "$RUN" "in progress" "shard 1/4: running"
	echo "    task 1 blocked mid-apply: $(grep 'shard 1/4' <<<"$OUT")"

	# scancel: SIGTERM (the blocked write goes on), SIGKILL after KillWait.
	scancel "${array}_1" || fail "scancel ${array}_1 failed"
	wait_gone 60 "${array}_0" "${array}_1" "${array}_2" "${array}_3"
	st=$(job_field "${array}_1" JobState)
	[ "$st" = CANCELLED ] || fail "task 1 is $st after scancel, expected CANCELLED"
	for k in 0 2 3; do
		completed "${array}_$k" "$d/shard-$k.log"
	done
	run_state "$J" "$RUN" failed "shard 1/4: hot"
	echo "    after scancel: $(grep 'shard 1/4' <<<"$OUT")"
	# The afterok job waits forever now (docs/scale-out.md): cancel it. It
	# must still be pending; slurmctld marks the dependency as never
	# satisfied only at its next evaluation, so "Dependency" is right too.
	case "$(job_field "$fin" JobState) $(job_field "$fin" Reason)" in
	"PENDING Dependency" | "PENDING DependencyNeverSatisfied") ;;
	*) fail "the finalize job should still wait for its dependency, is $(job_field "$fin" JobState) ($(job_field "$fin" Reason))" ;;
	esac
	scancel "$fin" || fail "scancel $fin failed"
	# Finalize itself refuses while a shard is hot.
	expect fail "$VP" shard finalize --run "$RUN" --journal-dir "$J" "$T"
	echo "    finalize refused: $(head -n 1 <<<"$OUT")"

	# Requeued, the task runs again after cred_expire + 1 s; --recover.
	t0=$SECONDS
	scontrol requeue "${array}_1" || fail "scontrol requeue ${array}_1 failed"
	while [ "$(job_field "${array}_1" JobState)" != COMPLETED ]; do
		case $(job_field "${array}_1" JobState) in
		FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY)
			completed "${array}_1" "$d/shard-1.log" ;;
		esac
		[ $((SECONDS - t0)) -lt 60 ] || fail "the requeued task 1 did not complete within 60 s"
		sleep 0.2
	done
	completed "${array}_1" "$d/shard-1.log"
	[ "$(job_field "${array}_1" Restarts)" = 1 ] || fail "task 1 has Restarts=$(job_field "${array}_1" Restarts), expected 1"
	echo "    requeued task 1 completed $((SECONDS - t0)) s after scontrol requeue"
	# --recover rolled back what the killed attempt had changed (not
	# nothing: it was killed mid-apply), then the shard applied again.
	grep -qE '^restored: +[1-9]' "$d/shard-1.log" ||
		{ sed 's/^/      | /' "$d/shard-1.log"; fail "the requeued task restored nothing"; }
	echo "    task 1's recover: $(grep -E '^(entries|restored):' "$d/shard-1.log" | tr -s ' ' | tr '\n' ' ')"
	# A new finalize job: afterok on the array as a whole never holds again
	# once a task was cancelled, so on each task.
	fin2=$(sbatch --parsable -o "$d/finalize2.log" \
		--dependency=afterok:"${array}_0:${array}_1:${array}_2:${array}_3" \
		--wrap "$VP shard finalize --run $RUN --journal-dir $J $T") || fail "sbatch finalize failed"
	wait_gone 60 "$fin2"
	completed "$fin2" "$d/finalize2.log"
	run_state "$J" "$RUN" committed "shard 1/4: committed" "finalize:  committed"
	snapshot "$T" "$d/actual.snap"
	same_as "$d/expected.snap" "$d/actual.snap" "the run vs chown -R -h"

	# The whole run rolled back: the tree as it was.
	expect 0 "$VP" rollback --run "$RUN" --journal-dir "$J" "$T"
	snapshot "$T" "$d/after-rollback.snap"
	same_as "$d/before.snap" "$d/after-rollback.snap" "after rollback --run vs before the run"
	run_state "$J" "$RUN" "rolled back"
	exec {hold}>&-
}

# ---- main ---------------------------------------------------------------------------------

if ! start_cluster; then
	echo "FAIL: slurm: the single-node cluster did not start (see above)"
	FAILED=$((FAILED + 1))
	skip_all "the cluster did not start" "${SCENARIOS[@]}"
	e2e_summary
	exit
fi
if [[ " ${SCENARIOS[*]} " == *" array "* ]] || [[ " ${SCENARIOS[*]} " == *" requeue "* ]]; then
	t0=$SECONDS
	(make_tree "$WORK/pristine") || { echo "FAIL: cannot make the tree"; FAILED=$((FAILED + 1)); }
	echo "tree: $(find "$WORK/pristine" | wc -l) entries, $((SECONDS - t0)) s"
fi
for s in "${SCENARIOS[@]}"; do
	run_scenario "$s"
done
e2e_summary
