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
	say "# $TEST_NAME: binary $VP, work dir $W ($(stat -f -c %T "$W"))"
}

# mount_fs FS DIR SIZE_MB: mount a fresh FS (tmpfs, or ext4 / xfs / btrfs on
# a loop image in $W, ext4 with 4 KiB blocks as on a real volume) at DIR,
# which is created. Returns 1 with the reason in MOUNT_FS_WHY when this
# machine cannot (no mkfs, no loop devices): the caller reports it.
mount_fs() {
	local fs=$1 m=$2 mb=$3 img=$W/$1.img
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
	python3 "$TOOLS/mktree.py" --quiet "$@" || die "mktree.py $* failed"
}

# snap DIR FILE [--ctime]: metadata snapshot (tests/tools/snapshot.py).
snap() {
	local d=$1 f=$2
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
