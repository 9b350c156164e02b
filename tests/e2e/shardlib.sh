# shellcheck shell=bash
# tests/e2e/shardlib.sh: sourced by slurm.sh and mpi.sh, after lib.sh (its
# run_scenario, expect, has, fail, skip_all and e2e_summary). The sharded
# runs of issue 15 (docs/scale-out.md) on real engines: a tree with hard
# links spread over several top-level directories (so over several buckets
# and shards), `volperm shard plan -q`, the engine's shards, `volperm shard
# finalize`, and every entry's metadata compared with what `chown -R -h` (or
# `chown -R -h --from`) makes of a copy.
#
# The sourcing script sets WORK (a scratch directory) before calling these.

# The binary under test: CTest's VOLPERM (this build's), else
# build/volperm of the source tree. Engines start it by its absolute
# path: a Slurm job or an MPI rank has its own PATH.
VP=${VOLPERM:-$REPO/build/volperm}
case $VP in /*) ;; *) VP=$PWD/$VP ;; esac

# need_shard_cli: the scenario fails (not skips) when the binary has no
# `shard` command: the tests are written against docs/scale-out.md's
# command line, and a binary without it is exactly what they must catch.
need_shard_cli() {
	[ -x "$VP" ] || fail "no volperm binary at $VP (set VOLPERM)"
	local out
	out=$("$VP" shard --help 2>&1)
	case $out in
	*"shard plan"* | *finalize*) ;;
	*) fail "$VP has no 'shard' command (docs/scale-out.md's CLI): $(head -n 1 <<<"$out")" ;;
	esac
}

# make_tree DIR: about 3000 entries from tests/tools/mktree.py (setuid and
# setgid files, file capabilities, ACLs, symlinks, hard links inside a
# directory), half owned by 1000:1000, half by root, plus hard links across
# top-level directories: those end in different buckets, so different shards
# see links of one inode and only finalize may decide (docs/scale-out.md,
# "Hard links across shards"). A file linked from the root itself is in the
# root's files bucket.
make_tree() {
	local d=$1 i n=0 t
	python3 "$REPO/tests/tools/mktree.py" --quiet --seed 15 --mixed 0.5 --acl-every 13 \
		--hardlink-every 80 "$d" 3000 || fail "mktree.py failed"
	mkdir -p "$d/xa/deep" "$d/xb" "$d/xc/deeper/still" || fail "mkdir in $d"
	for i in 0 1 2 3 4 5; do
		echo "shared $i" >"$d/xa/deep/shared$i"
		ln "$d/xa/deep/shared$i" "$d/xb/link$i" &&
			ln "$d/xa/deep/shared$i" "$d/xc/deeper/still/link$i" || fail "ln in $d"
	done
	# and one link in every other top-level directory of mktree's
	while read -r t; do
		ln "$d/xa/deep/shared$((n % 6))" "$t/xlink" || fail "ln in $t"
		n=$((n + 1))
	done < <(find "$d" -mindepth 1 -maxdepth 1 -type d ! -name 'x[abc]' | sort)
	ln "$d/xa/deep/shared0" "$d/rootlink0" || fail "ln in $d"
	chown -R 1000:1000 "$d/xa" "$d/xb" "$d/xc" || fail "chown in $d"
	chmod 4755 "$d/xa/deep/shared1" || fail "chmod in $d"
}

# snapshot DIR FILE: every entry's type, owner, mode, ACLs, capabilities
snapshot() {
	python3 "$REPO/tests/tools/snapshot.py" -o "$2" "$1" || fail "snapshot of $1 failed"
}

# same_as A B WHAT: two snapshot files are equal, else the first differences
same_as() {
	local diff
	if diff=$(python3 "$REPO/tests/tools/snapshot.py" --diff --max 20 "$1" "$2"); then
		echo "    $3: identical ($(wc -l <"$1") entries)"
		return 0
	fi
	echo "    $3: they differ:"
	sed 's/^/      | /' <<<"$diff"
	exit 1
}

# oracle TREE OUT CHOWN-ARGS...: OUT is the snapshot of a copy of TREE after
# `chown -R -h CHOWN-ARGS` (cp -a keeps the hard links)
oracle() {
	local tree=$1 out=$2 copy
	shift 2
	copy=$(mktemp -d "$WORK/oracle.XXXXXX") || fail "mktemp"
	cp -a "$tree/." "$copy/" || fail "cp -a $tree"
	chown -R -h "$@" "$copy" || fail "chown -R -h $*"
	snapshot "$copy" "$out"
	rm -rf "$copy"
}

# shard_journals J RUN: the names of the run's journals in J, one a line
# (vp-<dev>-<ino>-<ns>-run<RUN>-<K>.vpj, K in 8 hex digits, ffffffff for
# finalize: docs/scale-out.md, "Journals and run state")
shard_journals() {
	find "$1" -maxdepth 1 -name "vp-*-run$2-*.vpj" -printf '%f\n' | sed -E 's/.*-([0-9a-f]{8})\.vpj$/\1/' | sort -u
}

# plan_run N TREE J POLICY...: `volperm shard plan -q`; sets RUN
plan_run() {
	local n=$1 tree=$2 j=$3
	shift 3
	# stdout alone: what a script captures with $(...)
	RUN=$("$VP" shard plan -q --shards "$n" --journal-dir "$j" "$@" "$tree" 2>"$WORK/plan.err") || {
		cat "$WORK/plan.err"
		fail "shard plan failed"
	}
	[[ $RUN =~ ^[0-9a-f]{32}$ ]] || fail "shard plan -q should print only the run id (32 hex digits), printed: $RUN"
	[ -f "$j/run-$RUN.vpm" ] || fail "no run manifest $j/run-$RUN.vpm"
	echo "    run $RUN planned over $n shards"
}

# run_state J RUN STATE [TEXT...]: `volperm shard status` says the run is in
# STATE (vp_run_state_name(): planned, in progress, failed, ready to
# finalize, finalizing, committed, rolled back) and prints each TEXT
# (e.g. "shard 1/4: hot")
run_state() {
	local j=$1 run=$2 want=$3 w
	shift 3
	expect 0 "$VP" shard status --run "$run" --journal-dir "$j"
	grep -qE "^state: +$want\$" <<<"$OUT" || { show_out; fail "shard status: expected the run to be $want"; }
	for w in "$@"; do has "$w"; done
}
