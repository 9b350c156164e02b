#!/usr/bin/env bash
# Power loss, simulated with a block-device snapshot taken mid-apply.
#
# A SIGKILL loses nothing that was written: the page cache survives the
# process. Power loss loses everything that was not yet on the device. To
# test the power-loss ordering (docs/journal-format.md, "Power-loss
# ordering"), the tree and the journal dir live on an ext4 file system on
# a loop device; at the crash moment the loop device's backing file is
# copied WITHOUT any sync: the copy holds exactly what had reached the
# "disk" (what fsync/fdatasync/syncfs forced out, plus whatever writeback
# happened to write), not the dirty page cache. The copy is then attached
# to the same loop device (same st_dev, same inode numbers: the journal's
# identity check still matches), mounted (ext4 replays its own journal),
# and checked:
#   - every entry is in its before or its after state, and every entry that
#     is not in its before state has a durable journal record (write-ahead
#     on disk, not only in the page cache);
#   - the journal is committed only if the whole tree reached the after
#     state on disk (commit after syncfs);
#   - `volperm recover` gives back the pre-apply snapshot (committed:
#     `rollback` does), `recover --forward` (every other crash point) the
#     clean-apply snapshot.
#
# 1. Every mutating step N of an apply in batches of 4 (fault build, --jobs 1
#    so that step N is the same step in every run,
#    VOLPERM_FAULT_AFTER=N; the image is copied after the SIGKILL).
# 2. CRASH_POWERLOSS_ROUNDS (default 8) random moments of a release-build
#    apply on a bigger tree: the process is frozen (SIGSTOP), the image
#    copied, the process killed.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/crashlib.sh"
setup
need_cmd cp losetup mount umount mkfs.ext4 setfacl setcap
need_fault
snapd_start

ROUNDS=${CRASH_POWERLOSS_ROUNDS:-8}
IMGDIR=${CRASH_IMG_DIR:-$W}
if [ -z "${CRASH_IMG_DIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] &&
	[ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt $((2 * 1024 * 1024)) ]; then
	IMGDIR=/dev/shm
fi
IMG=$(mktemp "$IMGDIR/vp-crash-powerloss.XXXXXX") || die "mktemp"
on_exit "rm -f '$IMG' '$IMG.golden' '$IMG.crash'"
M=$W/m
mkdir "$M"
truncate -s 64M "$IMG" || die "truncate"
# no lazy inode-table or journal initialisation: no kernel thread writes to
# the device behind the test's back while an image is being copied
mkfs.ext4 -q -F -i 4096 -U "$CRASH_FS_UUID" \
	-E "lazy_itable_init=0,lazy_journal_init=0,hash_seed=$CRASH_FS_UUID" "$IMG" >/dev/null 2>&1 ||
	die "mkfs.ext4"
DEV=$(losetup -f --show "$IMG" 2>"$W/losetup.err") || skip "no loop device: $(head -c 200 "$W/losetup.err")"
on_exit "umount '$M' 2>/dev/null; losetup -d '$DEV' 2>/dev/null"
# commit=600: ext4 commits its own journal only when volperm syncs (or in
# 10 minutes), so nothing reaches the disk unless volperm made it durable:
# the harshest power loss, and no background write during a copy
MOPT=commit=600
mount -o $MOPT "$DEV" "$M" || die "mount $DEV"
say "# ext4 (mounted -o $MOPT) on $DEV, image in $IMGDIR"

# attach FILE: mount FILE's file system at $M through the same loop device
attach() {
	umount "$M" 2>/dev/null
	losetup -d "$DEV" || die "losetup -d $DEV"
	losetup "$DEV" "$1" 2>"$W/losetup.err" ||
		die "could not re-attach $DEV (taken by someone else?): $(head -c 200 "$W/losetup.err")"
	mount -o $MOPT "$DEV" "$M" || die "mount $DEV ($1)"
}
# crash_copy: the device's content right now, without any sync, becomes
# the file system at $M (power loss at this instant).
crash_copy() {
	cp --sparse=always "$IMG" "$IMG.crash" || die "cp image"
	attach "$IMG.crash"
}
# golden: back to the saved pre-apply file system.
golden() {
	umount "$M" 2>/dev/null
	cp --sparse=always "$IMG.golden" "$IMG" || die "cp golden"
	attach "$IMG"
}

# make_golden TREE_ARGS...: a pristine tree at $M/t, an empty journal dir
# $M/j; saves the image as the golden one; pre.snap and, after a clean
# apply with POL, post.snap.
make_golden() {
	rm -rf "${M:?}/t" "$M/j"
	mktree "$M/t" "$@"
	mkdir -m 0700 "$M/j"
	umount "$M" || die "umount"
	cp --sparse=always "$IMG" "$IMG.golden" || die "cp"
	attach "$IMG"
	fsnap "$M/t" "$W/pre.snap"
	vp_expect 0 "clean apply" apply -q "${POL[@]}" --journal-dir "$M/j" "$M/t"
	fsnap "$M/t" "$W/post.snap"
	golden
	fcheck "$M/t" "$W/pre.snap" "golden image == pre-apply snapshot"
}

# check_crashed WHAT N: the checks on the power-loss state at $M
check_crashed() {
	local what=$1 n=$2 state
	state=$(journal_state "$M/j")
	case $state in
	none)
		# the journal never reached the disk: then no change did either
		fcheck "$M/t" "$W/pre.snap" "$what: no durable journal, tree == pre-apply snapshot"
		NONE=$((NONE + 1))
		return
		;;
	committed)
		fcheck "$M/t" "$W/post.snap" "$what: durable commit mark, tree == clean apply (changes synced first)"
		COMMITTED=$((COMMITTED + 1))
		vp_expect 0 "$what: rollback" rollback -q --journal-dir "$M/j" "$M/t"
		fcheck "$M/t" "$W/pre.snap" "$what: rollback == pre-apply snapshot"
		return
		;;
	active) ;;
	*) fail "$what: journal state '$state' on disk" ;;
	esac
	HOT=$((HOT + 1))
	fmidstate "$M/t" "$W/pre.snap" "$W/post.snap" "$(newest_journal "$M/j")" \
		"$what: on disk every entry before or after, every change has a durable record"
	LOST=$((LOST + ${MID_JOURNALED:-0} - ${MID_CHANGED:-0}))
	vp_expect 4 "$what: plan refuses (hot journal)" plan "${POL[@]}" --journal-dir "$M/j" "$M/t"
	if [ $((n % 2)) -eq 1 ]; then
		vp_expect 0 "$what: recover" recover -q --journal-dir "$M/j" "$M/t"
		fcheck "$M/t" "$W/pre.snap" "$what: recover == pre-apply snapshot"
	else
		vp_expect 0 "$what: recover --forward" recover --forward -q --journal-dir "$M/j" "$M/t"
		fcheck "$M/t" "$W/post.snap" "$what: recover --forward == clean apply snapshot"
		vp_expect 0 "$what: rollback" rollback -q --journal-dir "$M/j" "$M/t"
		fcheck "$M/t" "$W/pre.snap" "$what: rollback == pre-apply snapshot"
	fi
}

# ---- 1. every step of a fault-build apply, batches of 4 ----
POL=(-o 1001:1001)
make_golden "${FAULT_TREE_ARGS[@]}"
VOLPERM_FAULT_TRACE=1 bash -c 'ulimit -n 40 && exec "$0" apply -q --jobs 1 "$@"' "$VPF" "${POL[@]}" \
	--journal-dir "$M/j" "$M/t" >/dev/null 2>"$W/trace"
mapfile -t STEP < <(trace_steps "$W/trace")
STEP=("" "${STEP[@]}")
total=$((${#STEP[@]} - 1))
say "# fault build, batches of 4: $total steps"
golden
HOT=0 COMMITTED=0 NONE=0 LOST=0
for ((n = 1; n <= total; n++)); do
	what="power loss after step $n/$total (${STEP[$n]})"
	{ VOLPERM_FAULT_AFTER=$n bash -c 'ulimit -n 40 && exec "$0" apply -q --jobs 1 "$@"' "$VPF" "${POL[@]}" \
		--journal-dir "$M/j" "$M/t"; } >/dev/null 2>&1
	rc=$?
	[ $rc -eq 137 ] || fail "$what: the fault build exited $rc, expected 137"
	crash_copy
	check_crashed "$what" "$n"
	golden
done
say "# fault build: $total power-loss points: $HOT hot journals on disk, $COMMITTED committed, $NONE without a durable journal; $LOST journaled entries whose change had not reached the disk"

# ---- 2. random moments of a release-build apply ----
make_golden 3000 --seed 13 --acl-every 30 --setid 5 --caps 2
t1=$(date +%s.%N)
"$VP" apply -q "${POL[@]}" --journal-dir "$M/j" "$M/t" >/dev/null 2>&1
T=$(elapsed "$t1")
golden
HOT=0 COMMITTED=0 NONE=0 LOST=0
for ((i = 1; i <= ROUNDS; i++)); do
	d=$(rand_delay "$T")
	"$VP" apply -q "${POL[@]}" --journal-dir "$M/j" "$M/t" >/dev/null 2>&1 &
	pid=$!
	sleep "$d"
	kill -STOP $pid 2>/dev/null
	# frozen (out of any fsync: a stop lands when the syscall returns) or
	# finished: the device content now is the power-loss state
	st=$(ps -o stat= -p $pid)
	case $st in Z* | '') ;; *) stopped $pid || die "could not freeze the apply (state $st)" ;; esac
	cp --sparse=always "$IMG" "$IMG.crash" || die "cp image"
	kill -KILL $pid 2>/dev/null
	{ wait $pid; } 2>/dev/null
	attach "$IMG.crash"
	check_crashed "release apply frozen at ${d}s, power loss" "$i"
	golden
done
say "# release build: $ROUNDS power-loss snapshots (apply ${T}s): $HOT hot, $COMMITTED committed, $NONE without a durable journal; $LOST journaled entries whose change had not reached the disk"
finish
