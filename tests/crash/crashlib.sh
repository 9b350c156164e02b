# shellcheck shell=bash
# Helpers for the crash tests (tests/crash/*.sh). Source it right after the
# CLI tests' library:
#
#   . "$(dirname "$0")/../cli/lib.sh"
#   . "$(dirname "$0")/crashlib.sh"
#
# Environment:
#   VOLPERM        the release binary (lib.sh: $VP; default build/volperm)
#   VOLPERM_FAULT  a build configured with -DVOLPERM_FAULT_INJECTION=ON
#                  ($VPF; default build-fault/volperm). With
#                  VOLPERM_FAULT_AFTER=N it SIGKILLs itself right after
#                  mutating step N; with VOLPERM_FAULT_TRACE=1 it prints
#                  "fault-step N what" on stderr for every step.
#
# Snapshots go through one long-lived Python process (crashlib.py serve, a
# bash coprocess) that uses tests/tools/snapshot.py's own code: hundreds of
# snapshots per test would otherwise cost more in Python start-up than the
# volperm runs they check.

CRASH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VPF=${VOLPERM_FAULT:-$REPO/build-fault/volperm}
case $VPF in /*) ;; *) VPF=$PWD/$VPF ;; esac

# The tree every fault-injection test uses: 60 entries with every kind of
# metadata chown touches. Deterministic (same arguments, same tree).
# shellcheck disable=SC2034 # used by the scripts that source this file
FAULT_TREE_ARGS=(60 --seed 7 --acl-every 5 --default-acl-every 3 --setid 5 --caps 3
	--hardlink-every 10 --symlink-every 8)

# need_fault: skip unless $VPF is an executable fault-injection build.
need_fault() {
	[ -x "$VPF" ] || skip "no fault-injection build at $VPF (cmake -DVOLPERM_FAULT_INJECTION=ON; set VOLPERM_FAULT)"
	local d
	d=$(mktemp -d "$W/faultprobe.XXXXXX") || die "mktemp"
	mkdir "$d/t" "$d/j" && chmod 0700 "$d/j" && : >"$d/t/f"
	VOLPERM_FAULT_TRACE=1 "$VPF" apply -q -o 4242:4242 --journal-dir "$d/j" "$d/t" >/dev/null 2>"$d/err"
	grep -q '^fault-step 1 ' "$d/err" ||
		skip "$VPF is not a fault-injection build (no fault-step trace; configure with -DVOLPERM_FAULT_INJECTION=ON)"
	rm -rf "$d"
}

# ---- the snapshot server ----

snapd_start() {
	coproc SNAPD { exec python3 "$CRASH_DIR/crashlib.py" serve; }
	# shellcheck disable=SC2154
	SNAPD_IN=${SNAPD[1]}
	SNAPD_OUT=${SNAPD[0]}
	on_exit "kill $SNAPD_PID"
}

# snapd_send WORDS...: send one request (do not wait for the reply).
snapd_send() {
	local IFS=$'\t'
	printf '%s\n' "$*" >&"$SNAPD_IN" || die "snapshot server is gone"
}

# snapd_recv: read one reply: SNAPD_STATUS, SNAPD_WORDS (array: the words
# after the status and count) and SNAPD_LINES (array: the detail lines).
snapd_recv() {
	local line n i
	read -r -u "$SNAPD_OUT" line || die "snapshot server is gone"
	SNAPD_STATUS=${line%% *}
	read -r -a SNAPD_WORDS <<<"${line#* }"
	n=${SNAPD_WORDS[0]}
	SNAPD_WORDS=("${SNAPD_WORDS[@]:1}")
	SNAPD_LINES=()
	for ((i = 0; i < n; i++)); do
		read -r -u "$SNAPD_OUT" line || die "snapshot server is gone"
		SNAPD_LINES+=("$line")
	done
}

# Asynchronous checks (fcheck_async) are answered in order; a synchronous
# request first collects the answers still pending.
SNAPD_PEND_DIR=()
SNAPD_PEND_DESC=()

# snapd_drain [DIR]: collect pending check answers, in order: all of them,
# or only as far as the last one for DIR.
# shellcheck disable=SC2120 # DIR is optional
snapd_drain() {
	local upto=-1 i
	if [ $# -gt 0 ]; then
		for i in "${!SNAPD_PEND_DIR[@]}"; do
			[ "${SNAPD_PEND_DIR[$i]}" = "$1" ] && upto=$i
		done
	else
		upto=$((${#SNAPD_PEND_DIR[@]} - 1))
	fi
	for ((i = 0; i <= upto; i++)); do
		snapd_recv
		fcheck_result "${SNAPD_PEND_DESC[$i]}"
	done
	SNAPD_PEND_DIR=("${SNAPD_PEND_DIR[@]:upto+1}")
	SNAPD_PEND_DESC=("${SNAPD_PEND_DESC[@]:upto+1}")
}

snapd_req() {
	snapd_drain
	snapd_send "$@"
	snapd_recv
}

_snapd_show() {
	local l
	for l in "${SNAPD_LINES[@]}"; do printf '    %s\n' "$l"; done
}

# fsnap DIR FILE: snapshot (snapshot.py format) of DIR into FILE.
fsnap() {
	snapd_req snap "$(fixture_path "$1")" "$2"
	[ "$SNAPD_STATUS" = ok ] || die "snapshot of $1 failed: ${SNAPD_LINES[*]}"
}

# fcheck DIR EXPECTED.snap DESC: DIR's snapshot equals EXPECTED.
fcheck() {
	snapd_req check "$(fixture_path "$1")" "$2"
	fcheck_result "$3"
}

# fcheck_async DIR EXPECTED.snap DESC: the same check, answered later (by
# snapd_drain, or the next synchronous request): the snapshot is taken
# while the test goes on with something else. DIR must not change before
# `snapd_drain DIR`.
fcheck_async() {
	snapd_send check "$(fixture_path "$1")" "$2"
	SNAPD_PEND_DIR+=("$1")
	SNAPD_PEND_DESC+=("$3")
}

# fcheck_result DESC: pass/fail from the last answer to a check.
fcheck_result() {
	case $SNAPD_STATUS in
	ok) pass "$1" ;;
	diff)
		fail "$1: snapshots differ (${SNAPD_WORDS[0]} differences):"
		_snapd_show
		;;
	*)
		fail "$1: snapshot failed:"
		_snapd_show
		;;
	esac
}

# fmidstate DIR PRE.snap POST.snap JOURNAL DESC [strict|journal]: after a
# crash in the middle of an apply, every changed entry has a journal record
# and (strict, the default) every entry is in its before or its after
# state. Sets MID_CHANGED, MID_JOURNALED.
fmidstate() {
	local js=$W/midstate.json mode=${6:-strict}
	"$VP" journal export --format json "$4" >"$js" 2>"$W/midstate.err" ||
		{ fail "$5: journal export of $4 failed: $(head -c 300 "$W/midstate.err")"; return; }
	# (through $1 itself, never fixture_path: the journal's records name
	# the st_dev volperm saw)
	# On FUSE a chown is two requests, the kernel's REMOVEXATTR of
	# security.capability (killpriv) and then the SETATTR: a SIGKILL
	# between them leaves the entry as before without its capability
	# (journaled all the same; recover puts the capability back).
	[ "$mode" = strict ] && on_slowfs && mode=strict-killpriv
	snapd_req midstate "$1" "$2" "$3" "$js" "$mode"
	if [ "$SNAPD_STATUS" = ok ]; then
		MID_CHANGED=${SNAPD_WORDS[0]}
		MID_JOURNALED=${SNAPD_WORDS[1]}
		pass "$5 ($MID_CHANGED entries changed, $MID_JOURNALED journaled)"
	else
		fail "$5:"
		_snapd_show
	fi
}

# ---- journals ----

# journal_state JDIR: state of the newest journal in JDIR as `volperm
# journal show` prints it (active, committed, rolling-back, rolled-back), or
# "none".
journal_state() {
	# journal names sort by root, then creation time: the last one is the newest
	local f=("$1"/vp-*-*-*.vpj)
	if [ ! -f "${f[-1]}" ]; then
		echo none
		return
	fi
	"$VP" journal show "${f[-1]}" 2>/dev/null | awk '$1 == "state:" { print $2; exit }'
}

# fresh_jdir PATH: an empty journal dir at PATH (root-owned, 0700).
fresh_jdir() {
	rm -rf -- "$1"
	mkdir -m 0700 -- "$1" || die "mkdir $1"
}

# fresh_copy SRC DST: DST becomes an exact copy (owners, modes, ACLs, caps).
fresh_copy() {
	local src dst
	src=$(fixture_path "$1")
	dst=$(fixture_path "$2")
	rm -rf -- "$dst"
	cp -a -- "$src" "$dst" || die "cp -a $1 $2"
}

# fault_point N TOTAL: whether the fault tests kill after step N of TOTAL:
# every step by default; with CRASH_FAULT_EVERY=K (a shorter run, such as
# the @slowfs CI entries) step 1, every K-th step after it and the last
# three (the syncfs and the commit or final mark), the rest left out and
# counted in FAULT_SKIPPED.
FAULT_SKIPPED=0
fault_point() {
	local k=${CRASH_FAULT_EVERY:-1}
	if [ "$k" -le 1 ] || [ $((($1 - 1) % k)) = 0 ] || [ "$1" -gt $(($2 - 3)) ]; then
		return 0
	fi
	FAULT_SKIPPED=$((FAULT_SKIPPED + 1))
	return 1
}

# trace_steps FILE: the step names of a VOLPERM_FAULT_TRACE=1 run, one a line.
trace_steps() { awk '$1 == "fault-step" { print $3 }' "$1"; }

# stopped PID: wait until PID is in state T (a SIGSTOP lands only when
# the process leaves an uninterruptible sleep, e.g. an fdatasync).
stopped() {
	local i st
	for ((i = 0; i < 500; i++)); do
		st=$(ps -o stat= -p "$1") || return 1
		[ "${st:0:1}" = T ] && return 0
		sleep 0.01
	done
	return 1
}

# rand_delay MAX_SECONDS: a random delay in [0.01, MAX] (bash $RANDOM; seed
# with RANDOM=N for a reproducible sequence).
rand_delay() {
	local r=$(((RANDOM << 15) | RANDOM))
	awk -v m="$1" -v r="$r" 'BEGIN { d = m * r / 1073741824; if (d < 0.01) d = 0.01; printf "%.3f", d }'
}

# elapsed START: seconds since START (date +%s.%N), one decimal.
elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }'; }

# crash_fs [SIZE_MB]: give the test a file system of its own for its trees
# and journal dirs, at FSDIR: a fresh loop-mounted image of type CRASH_FS
# (ext4 by default; xfs and btrfs work too), unmounted and removed at exit.
# The image lives in CRASH_IMG_DIR (default /dev/shm when it has room, else
# $W): on a RAM-backed image the file system code is the real ext4 (its
# journal, fsync, syncfs, xattrs, ACLs) but a sync costs no disk latency and
# waits for this test's own writes only, so every crash point is cheap.
# CRASH_IMG_DIR=$W (or any disk dir) puts the image on a disk instead;
# CRASH_FS=none uses $W itself (also the fallback without loop devices).
# Under VOLPERM_TEST_FS=slowfs (tests/cli/lib.sh) $W is the slowfs mount and
# is used as it is: the trees and journals are what is under test there.
crash_fs() {
	local mb=${1:-256} fs=${CRASH_FS:-ext4} imgdir=${CRASH_IMG_DIR:-} img
	FSDIR=$W
	if on_slowfs; then
		say "# trees and journals on slowfs ($W)"
		return 0
	fi
	if [ "$fs" = none ]; then
		say "# trees and journals on $(stat -f -c %T "$W") ($W)"
		return 0
	fi
	local -a mkfs
	case $fs in
	# ext4 with a fixed UUID and directory hash seed: readdir order, and so
	# the order of the walk and of every crash point, is the same every run
	ext4) mkfs=(mkfs.ext4 -q -F -i 4096 -U "$CRASH_FS_UUID" -E "hash_seed=$CRASH_FS_UUID") ;;
	xfs) mkfs=(mkfs.xfs -q -f) ;;
	btrfs) mkfs=(mkfs.btrfs -q -f) ;;
	*) die "CRASH_FS=$fs: use ext4, xfs, btrfs or none" ;;
	esac
	need_cmd "${mkfs[0]}"
	[ "$fs" = xfs ] && [ "$mb" -lt 320 ] && mb=320 # mkfs.xfs: at least 300 MB
	if [ -z "$imgdir" ]; then
		imgdir=$W
		# room for the whole image plus 1 GiB to spare
		if [ -d /dev/shm ] && [ -w /dev/shm ] &&
			[ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt $(((mb + 1024) * 1024)) ]; then
			imgdir=/dev/shm
		fi
	fi
	img=$(mktemp "$imgdir/vp-crash-$TEST_NAME.XXXXXX.img") || die "mktemp in $imgdir"
	on_exit "rm -f '$img'"
	truncate -s "${mb}M" "$img" || die "truncate"
	"${mkfs[@]}" "$img" >/dev/null 2>&1 || die "${mkfs[*]} failed"
	mkdir "$W/fs"
	if ! mount -o loop "$img" "$W/fs" 2>"$W/fs.err"; then
		say "# note: cannot loop-mount a $fs image ($(head -c 200 "$W/fs.err")); trees and journals on $W"
		rm -f "$img"
		return 0
	fi
	on_exit "umount '$W/fs'"
	FSDIR=$W/fs
	say "# trees and journals on a fresh $fs file system (loop, $mb MiB, image in $imgdir) at $FSDIR"
}

CRASH_FS_UUID=5f6c1e0a-7a1b-4c2d-9e3f-0123456789ab

# fs_jdir: a fresh journal dir (0700) on FSDIR, outside every tree.
fs_jdir() {
	local d
	d=$(mktemp -d "$FSDIR/journal.XXXXXX") || die "mktemp journal dir"
	chmod 0700 "$d"
	printf '%s\n' "$d"
}
