#!/usr/bin/env bash
# tests/e2e/mpi.sh: sharded runs (docs/scale-out.md, "MPI") under Open MPI's
# mpirun on this host: each rank is an independent volperm that reads its
# shard from OMPI_COMM_WORLD_RANK/_SIZE (volperm links no MPI).
#
# Scenarios:
#   launch  `mpirun --allow-run-as-root --oversubscribe -n 4` starts 4 ranks
#           that see OMPI_COMM_WORLD_RANK 0-3 of 4 (timed)
#   shards  shard plan -q --shards 4 --map 1000:2000 --map-gid 1000:2001;
#           mpirun -n 4 volperm apply --run RUN --shard auto; shard finalize:
#           every entry as `chown -R -h --from=1000:1000 2000:2001` leaves a
#           copy, hard links spread across buckets included; then rollback
#           --run: the tree as before
#
# Needs root and the Debian package openmpi-bin (tests/e2e/run.sh installs
# it); without mpirun every scenario is SKIPPED, loudly.
# Last line: `N passed, N failed, N skipped`; exit 1 if any failed.
#
# VOLPERM             the binary under test (default build/volperm)
# VOLPERM_E2E_KEEP=1  keep the scratch directory
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/shardlib.sh"
RUNTIME=mpi
SCENARIOS=(launch shards)
if [ -n "${VOLPERM_E2E_SCENARIOS:-}" ]; then
	read -r -a SCENARIOS <<<"$VOLPERM_E2E_SCENARIOS"
fi

if [ "$(id -u)" != 0 ]; then
	skip_all "needs root (volperm changes owners)" "${SCENARIOS[@]}"
	e2e_summary
	exit
fi
MPIRUN=$(command -v mpirun) || {
	skip_all "mpirun is not installed (apt-get install openmpi-bin)" "${SCENARIOS[@]}"
	e2e_summary
	exit
}

WORK=$(mktemp -d /tmp/vpe2e-mpi.XXXXXX)
trap 'remove_work mpi.sh' EXIT
trap 'exit 143' TERM INT

# mpi N CMD...: CMD as N ranks on this host. As root Open MPI wants
# --allow-run-as-root; --oversubscribe: more ranks than the 2 CPUs. The
# scratch dir as TMPDIR keeps Open MPI's session directory in it, and no
# Slurm variables leak into the ranks (mpirun would take them for a Slurm
# allocation, and --shard auto for a second source).
mpi() {
	local n=$1
	shift
	env -u SLURM_JOB_ID -u SLURM_JOBID -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_COUNT \
		-u SLURM_PROCID -u SLURM_NTASKS TMPDIR="$WORK" \
		"$MPIRUN" --allow-run-as-root --oversubscribe -n "$n" "$@"
}

sc_launch() {
	local t0 ms
	t0=$(date +%s%N)
	expect 0 mpi 4 sh -c 'echo "rank $OMPI_COMM_WORLD_RANK of $OMPI_COMM_WORLD_SIZE on $(hostname -s)"'
	ms=$((($(date +%s%N) - t0) / 1000000))
	for k in 0 1 2 3; do has "rank $k of 4 on $(hostname -s)"; done
	[ "$(grep -c '^rank ' <<<"$OUT")" = 4 ] || { show_out; fail "expected 4 ranks"; }
	echo "    mpirun -n 4: $ms ms"
}

sc_shards() {
	need_shard_cli
	local d=$WORK/shards T J t0=$SECONDS
	T=$d/tree J=$d/journal
	mkdir -p "$T" "$J" && chmod 0700 "$J" && cp -a "$WORK/pristine/." "$T/" || fail "cannot copy the tree"
	snapshot "$T" "$d/before.snap"
	# mktree gives entries 0:0 or 1000:1000, so the uid and gid maps select
	# the entries chown --from=1000:1000 selects.
	oracle "$T" "$d/expected.snap" --from=1000:1000 2000:2001
	plan_run 4 "$T" "$J" --map 1000:2000 --map-gid 1000:2001
	expect 0 mpi 4 "$VP" apply --run "$RUN" --shard auto --journal-dir "$J" "$T"
	[ "$(shard_journals "$J" "$RUN" | tr '\n' ' ')" = "00000000 00000001 00000002 00000003 " ] ||
		fail "expected the journals of shards 0-3, found: $(shard_journals "$J" "$RUN" | tr '\n' ' ')"
	run_state "$J" "$RUN" "ready to finalize" "shard 0/4: committed" "shard 3/4: committed"
	expect 0 "$VP" shard finalize --run "$RUN" --journal-dir "$J" "$T"
	run_state "$J" "$RUN" committed "finalize:  committed"
	echo "    shard status:"
	show_out
	snapshot "$T" "$d/actual.snap"
	same_as "$d/expected.snap" "$d/actual.snap" "the run vs chown -R -h --from"
	echo "    plan, 4 ranks, finalize: $((SECONDS - t0)) s"

	expect 0 "$VP" rollback --run "$RUN" --journal-dir "$J" "$T"
	snapshot "$T" "$d/after-rollback.snap"
	same_as "$d/before.snap" "$d/after-rollback.snap" "after rollback --run vs before the run"
	run_state "$J" "$RUN" "rolled back"
}

if [[ " ${SCENARIOS[*]} " == *" shards "* ]]; then
	t0=$SECONDS
	(make_tree "$WORK/pristine") || { echo "FAIL: cannot make the tree"; FAILED=$((FAILED + 1)); }
	echo "tree: $(find "$WORK/pristine" | wc -l) entries, $((SECONDS - t0)) s"
fi
for s in "${SCENARIOS[@]}"; do
	run_scenario "$s"
done
e2e_summary
