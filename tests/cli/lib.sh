# shellcheck shell=bash
# Shared helpers for volperm's CLI tests (tests/cli/*.sh). Source it first:
#
#   . "$(dirname "$0")/lib.sh"
#
# Every test runs as root on real trees in a private work dir $W (mktemp -d
# on the real filesystem; VOLPERM_TEST_TMPDIR picks another parent) that is
# removed at exit, after unmounting whatever the test mounted below it.
# Assertions do not stop the test: they count, and `finish` exits 1 when any
# failed. `skip REASON` prints a loud SKIP line and exits 77 (run-cli.sh
# counts it as skipped, never as passed).
#
# Environment: VOLPERM = the binary under test (default build/volperm).
#
# VOLPERM_TEST_FS=slowfs: $W is a slowfs mount (tests/tools/slowfs, the
# latency-bound FUSE passthrough of issue 14) over a backing dir next to it,
# so that the trees, the decoys and the journal dirs a test makes all live
# on FUSE, every request a round trip (VOLPERM_SLOWFS_DELAY us, default 100;
# no entry or attribute cache), and volperm runs with VOLPERM_JOBS=64
# (VOLPERM_SLOWFS_JOBS) unless the test sets its own. $W_REAL is a dir on
# the real filesystem beside it (= $W otherwise): images of the loop
# filesystems a test builds go there, not through FUSE. SLOWFS = the
# binary (default: slowfs next to $VOLPERM). The test skips, loudly, where
# FUSE cannot run or slowfs was not built. `on_slowfs` tells a test which
# one it runs on; `skip_on_slowfs WHY` is for what FUSE itself cannot do.

set -uo pipefail
umask 022

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=$REPO/tests/tools
VP=${VOLPERM:-$REPO/build/volperm}
case $VP in /*) ;; *) VP=$PWD/$VP ;; esac
TEST_NAME=$(basename "$0" .sh)
FAILS=0
CHECKS=0
NRUN=0
RC=0
OUT=/dev/null
ERR=/dev/null
_CLEANUPS=()

say() { printf '%s\n' "$*"; }
pass() { CHECKS=$((CHECKS + 1)); printf 'ok: %s\n' "$*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); printf 'FAIL: %s\n' "$*"; }
skip() { printf 'SKIP: %s\n' "$*"; exit 77; }
die() { printf 'FAIL: %s (test aborted)\n' "$*"; exit 1; }

finish() {
	if [ "$FAILS" -gt 0 ]; then
		say "$TEST_NAME: $FAILS of $CHECKS checks FAILED"
		exit 1
	fi
	[ "$CHECKS" -gt 0 ] || die "$TEST_NAME made no checks"
	say "$TEST_NAME: all $CHECKS checks passed"
	exit 0
}

# on_exit CMD: run CMD (eval'd) at exit, in reverse order of registration.
on_exit() { _CLEANUPS+=("$1"); }

_at_exit() {
	local rc=$? i m
	for ((i = ${#_CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${_CLEANUPS[$i]}" >/dev/null 2>&1 || true
	done
	if [ -n "${W:-}" ] && [ -d "$W" ]; then
		# Unmount anything still mounted below $W (deepest first), then
		# remove (lifting immutable flags if that is what stops rm).
		while read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done < <(awk -v w="$W/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
		_slowfs_stop
		W=${W_BASE:-$W}
		if ! rm -rf -- "$W" 2>/dev/null; then
			chattr -R -i -a "$W" >/dev/null 2>&1 || true
			rm -rf -- "$W"
		fi
	fi
	exit "$rc"
}
trap _at_exit EXIT
trap 'exit 130' INT TERM

need_root() { [ "$(id -u)" = 0 ] || skip "needs root (chown, mknod, mount)"; }
need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "command '$c' not found"
	done
}

# Make the work dir and check the binary; every test calls this first.
setup() {
	need_root
	need_cmd python3 stat
	[ -x "$VP" ] || die "volperm binary not found or not executable: $VP (set VOLPERM)"
	W=$(mktemp -d "${VOLPERM_TEST_TMPDIR:-${TMPDIR:-/tmp}}/vp-$TEST_NAME.XXXXXX") || die "mktemp"
	chmod 0755 "$W"
	W_REAL=$W
	case ${VOLPERM_TEST_FS:-} in
	'') ;;
	slowfs) _slowfs_setup ;;
	*) die "VOLPERM_TEST_FS=$VOLPERM_TEST_FS: the only one there is is slowfs" ;;
	esac
	say "# $TEST_NAME: binary $VP, work dir $W ($(stat -f -c %T "$W"))"
}

# ---- VOLPERM_TEST_FS=slowfs -------------------------------------------------
SLOWFS_PID=

on_slowfs() { [ -n "$SLOWFS_PID" ]; }

# fixture_path PATH: where the test's own tools reach PATH: on slowfs, for
# a path below $W that no other mount covers, the same entry in the backing
# dir; else PATH. mktree, the snapshots and the crash tests' copies go
# there: slowfs is a passthrough (the same inodes, st_ino included), so
# what they make or see is what volperm meets through FUSE, without paying
# a round trip per request for the fixtures of every check (a 2,500-entry
# mktree is 300,000 requests without an entry cache). What the test checks
# goes through FUSE: every volperm run, and the test's own probes. Not for
# what compares st_dev (the backing dir's is not the mount's: a journal
# records the mount's), only inode contents (snapshot.py has no st_dev). A path
# at, above or below another mount inside $W (a tmpfs, a loop file system,
# a bind mount, an overlay) is left as it is: the backing dir has only the
# empty mount point.
fixture_path() {
	local p=$1
	if [ -z "$SLOWFS_PID" ] || [[ $p != "$W" && $p != "$W"/* ]] ||
		awk -v w="$W" -v p="$p" '
			function under(a, b) { return a == b || index(a, b "/") == 1 }
			$5 != w && index($5, w "/") == 1 && (under($5, p) || under(p, $5)) { found = 1 }
			END { exit !found }' /proc/self/mountinfo; then
		printf '%s\n' "$p"
		return
	fi
	printf '%s\n' "$W_BASE/back${p#"$W"}"
}

# skip_on_slowfs WHY: for a test (or, with a SKIP-PART line, a part) that
# needs what FUSE does not give; WHY names that limit.
skip_on_slowfs() {
	on_slowfs || return 0
	skip "on slowfs: $*"
}

# $W becomes the slowfs mount; the backing dir and $W_REAL are beside it
# in $W_BASE, the dir mktemp made (removed at exit, after the unmount).
_slowfs_setup() {
	local sfs=${SLOWFS:-$(dirname "$VP")/slowfs} i
	local delay=${VOLPERM_SLOWFS_DELAY:-100}
	[ -c /dev/fuse ] || skip "VOLPERM_TEST_FS=slowfs: /dev/fuse is missing (no FUSE in this kernel or container)"
	[ -x "$sfs" ] || skip "VOLPERM_TEST_FS=slowfs: slowfs not built ($sfs): install libfuse3-dev and rebuild"
	need_cmd mountpoint
	W_BASE=$W
	mkdir -m 0755 "$W_BASE/back" "$W_BASE/mnt" "$W_BASE/real" || die "mkdir in $W_BASE"
	# The kernel checks the mode bits (default_permissions) for the
	# non-root processes of a test (the app's uid planting links, a
	# capsh-dropped volperm); no cache, so every lookup and stat is a
	# request; st_ino is the backing inode's (slowfs's use_ino), so the
	# journal's dev/ino hold across runs.
	"$sfs" "$W_BASE/back" "$W_BASE/mnt" -f \
		-o "delay_us=$delay,entry_timeout=0,attr_timeout=0,allow_other,default_permissions" \
		2>"$W_BASE/slowfs.err" &
	SLOWFS_PID=$!
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$W_BASE/mnt" && [ -r "$W_BASE/mnt/.slowfs-stats" ] && break
		kill -0 "$SLOWFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! mountpoint -q "$W_BASE/mnt"; then
		say "$(cat "$W_BASE/slowfs.err")"
		die "slowfs did not mount $W_BASE/back on $W_BASE/mnt"
	fi
	W=$W_BASE/mnt
	W_REAL=$W_BASE/real
	export VOLPERM_JOBS=${VOLPERM_SLOWFS_JOBS:-64}
	say "# VOLPERM_TEST_FS=slowfs: work dir on slowfs (delay ${delay} us, no entry/attr cache), VOLPERM_JOBS=$VOLPERM_JOBS"
}

# At exit, after the mounts below $W are gone: unmount slowfs, wait for it
# (it prints its request counts at unmount).
_slowfs_stop() {
	local i
	[ -n "$SLOWFS_PID" ] || return 0
	umount "$W_BASE/mnt" 2>/dev/null || umount -l "$W_BASE/mnt" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SLOWFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill "$SLOWFS_PID" 2>/dev/null
	wait "$SLOWFS_PID" 2>/dev/null
	say "# slowfs $(tr '\n' ' ' <"$W_BASE/slowfs.err" | sed 's/  */ /g')"
	SLOWFS_PID=
}

# mount_fs FS DIR SIZE_MB: mount a fresh FS (tmpfs, or ext4 / xfs / btrfs on
# a loop image in $W, ext4 with 4 KiB blocks as on a real volume) at DIR,
# which is created. Returns 1 with the reason in MOUNT_FS_WHY when this
# machine cannot (no mkfs, no loop devices): the caller reports it.
mount_fs() {
	local fs=$1 m=$2 mb=$3 img=$W_REAL/$1.img
	MOUNT_FS_WHY=
	mkdir -p "$m"
	if [ "$fs" = tmpfs ]; then
		mount -t tmpfs -o size=${mb}m,mode=0755 tmpfs "$m" 2>"$W/mount.err" && return 0
		MOUNT_FS_WHY="tmpfs (mount: $(cat "$W/mount.err"))"
		return 1
	fi
	command -v "mkfs.$fs" >/dev/null 2>&1 || { MOUNT_FS_WHY="$fs (no mkfs.$fs)"; return 1; }
	truncate -s "${mb}M" "$img"
	case $fs in
	ext4) mkfs.ext4 -q -F -b 4096 "$img" ;;
	*) "mkfs.$fs" -q -f "$img" ;;
	esac >"$W/mkfs.log" 2>&1 || {
		MOUNT_FS_WHY="$fs (mkfs failed: $(head -c 200 "$W/mkfs.log"))"
		return 1
	}
	mount -o loop "$img" "$m" 2>"$W/mount.err" && return 0
	MOUNT_FS_WHY="$fs (mount -o loop: $(cat "$W/mount.err"))"
	rm -f "$img"
	return 1
}

# new_jdir: a fresh journal dir (mode 0700, root-owned, outside any volume).
new_jdir() {
	local d
	d=$(mktemp -d "$W/journal.XXXXXX") || die "mktemp journal dir"
	chmod 0700 "$d"
	printf '%s\n' "$d"
}

# mktree DIR ENTRIES [mktree.py options...]
mktree() {
	local d
	d=$(fixture_path "$1")
	shift
	python3 "$TOOLS/mktree.py" --quiet "$d" "$@" || die "mktree.py $d $* failed"
}

# snap DIR FILE [--ctime]: metadata snapshot (tests/tools/snapshot.py).
snap() {
	local d f=$2
	d=$(fixture_path "$1")
	shift 2
	python3 "$TOOLS/snapshot.py" "$@" -o "$f" "$d" || die "snapshot of $d failed"
}

# snap_eq A B DESC [snapshot.py --diff options...]
snap_eq() {
	local a=$1 b=$2 desc=$3 d
	shift 3
	if d=$(python3 "$TOOLS/snapshot.py" --diff "$@" "$a" "$b"); then
		pass "$desc"
	else
		fail "$desc: snapshots differ:"
		printf '%s\n' "$d" | sed 's/^/    /'
	fi
}

# snap_ne A B DESC: the snapshots must differ (something did change).
snap_ne() {
	if python3 "$TOOLS/snapshot.py" --diff --max 0 "$1" "$2" >/dev/null; then
		fail "$3: snapshots are identical, expected a change"
	else
		pass "$3"
	fi
}

# vp ARGS...: run volperm; stdout in $OUT, stderr in $ERR, exit status in $RC.
vp() {
	NRUN=$((NRUN + 1))
	OUT=$W/run$NRUN.out
	ERR=$W/run$NRUN.err
	"$VP" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	say "+ [${SECONDS}s] volperm $(printf '%q ' "$@")-> exit $RC"
	_sanitizer_check
}

# vpt SECONDS ARGS...: like vp, under timeout(1) (exit 124 on timeout).
vpt() {
	local t=$1
	shift
	NRUN=$((NRUN + 1))
	OUT=$W/run$NRUN.out
	ERR=$W/run$NRUN.err
	timeout -k 5 "$t" "$VP" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	say "+ [${SECONDS}s] timeout $t volperm $(printf '%q ' "$@")-> exit $RC"
	_sanitizer_check
}

_sanitizer_check() {
	if grep -qE 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$ERR"; then
		fail "sanitizer report from volperm run $NRUN:"
		head -n 40 "$ERR" | sed 's/^/    /'
	fi
}

# show_run: print the last run's stdout/stderr (trimmed), for failure context.
show_run() {
	say "    --- stdout (run $NRUN) ---"
	head -c 3000 "$OUT" | head -n 30 | cat -v | sed 's/^/    /'
	say "    --- stderr (run $NRUN) ---"
	head -c 3000 "$ERR" | head -n 30 | cat -v | sed 's/^/    /'
}

# expect_rc WANT DESC: check the last run's exit status.
expect_rc() {
	if [ "$RC" = "$1" ]; then
		pass "$2 (exit $RC)"
	else
		fail "$2: expected exit $1, got $RC"
		show_run
	fi
}

# vp_expect WANT DESC ARGS...: run volperm and check its exit status.
vp_expect() {
	local want=$1 desc=$2
	shift 2
	vp "$@"
	expect_rc "$want" "$desc"
}

assert_eq() {
	if [ "$1" == "$2" ]; then pass "$3"; else fail "$3: expected '$2', got '$1'"; fi
}
assert_ne() {
	if [ "$1" != "$2" ]; then pass "$3"; else fail "$3: got '$1', expected anything else"; fi
}
# assert_match ERE STRING DESC
assert_match() {
	if printf '%s\n' "$2" | grep -qE -- "$1"; then pass "$3"; else fail "$3: '$2' does not match /$1/"; fi
}
# assert_file_match ERE FILE DESC (case-insensitive)
assert_file_match() {
	if grep -qiE -- "$1" "$2"; then
		pass "$3"
	else
		fail "$3: no line matching /$1/ in $(basename "$2"):"
		head -c 2000 "$2" | head -n 20 | cat -v | sed 's/^/    /'
	fi
}
assert_file_nomatch() {
	if ! grep -qiE -- "$1" "$2"; then
		pass "$3"
	else
		fail "$3: unexpected line matching /$1/ in $(basename "$2"):"
		grep -iE -- "$1" "$2" | head -n 10 | cat -v | sed 's/^/    /'
	fi
}
assert_nonempty() {
	if [ -s "$1" ]; then pass "$2"; else fail "$2: $(basename "$1") is empty"; fi
}
# assert_true DESC CMD...
assert_true() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc: '$*' failed"; fi
}

# owner_of PATH: "uid:gid" without following symlinks.
owner_of() { stat -c '%u:%g' -- "$1"; }
# mode_of PATH: octal permission bits incl. setuid/setgid/sticky (4 digits).
mode_of() { stat -c '%04a' -- "$1"; }
# statline PATH: everything chown could touch, plus ctime.
statline() { stat -c '%u:%g %f %Z.%z' -- "$1"; }

# count_journals JDIR: number of journal files.
count_journals() { find "$1" -maxdepth 1 -name '*.vpj' -type f | wc -l; }
# newest_journal JDIR: path of the newest journal file, by the creation time
# in its name (vp-DEV-INO-CREATED.vpj, fixed-width hex).
newest_journal() {
	find "$1" -maxdepth 1 -name 'vp-*-*-*.vpj' -type f -printf '%f\n' |
		sort -t- -k4,4 | tail -n 1 | sed "s|^|$1/|"
}

# json_ok FILE DESC: valid NDJSON with one summary event, last.
json_ok() {
	local m
	if m=$(python3 "$TOOLS/ndjson.py" validate "$1" 2>&1); then
		pass "$2"
	else
		fail "$2: $m"
	fi
}
# jsum FILE KEY: a field of the summary event ("" when missing).
jsum() { python3 "$TOOLS/ndjson.py" summary "$1" "$2" 2>/dev/null || true; }
# jcount FILE EVENT [K=V...]
jcount() { python3 "$TOOLS/ndjson.py" count "$@" 2>/dev/null || echo -1; }
# jpaths FILE EVENT ROOT [K=V...]: escaped relative paths of matching events.
jpaths() { python3 "$TOOLS/ndjson.py" paths "$@"; }

# entries DIR [find tests...]: number of entries (DIR included), no symlink following.
entries() {
	local d=$1
	shift
	find "$d" "$@" -printf x | wc -c
}

# expect_counts DIR UID:GID FILE: independent expected plan counts (tests/tools/expect.py).
expect_counts() { python3 "$TOOLS/expect.py" "$1" "$2" >"$3" || die "expect.py $1 failed"; }
# jget FILE KEY: a field of a one-object JSON file.
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
