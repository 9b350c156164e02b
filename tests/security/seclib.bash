# shellcheck shell=bash
# Helpers shared by the security tests (tests/security/*.sh). Source it after
# ../cli/lib.sh:
#
#   . "$(dirname "$0")/../cli/lib.sh"
#   . "$(dirname "$0")/seclib.bash"
#
# (Its name does not end in .sh, so run.sh does not take it for a test.)
#
# The attacks aim at a decoy: an "/etc-like" directory made by make_decoy
# OUTSIDE the volume, on the same filesystem (so that hard links and renames
# can reach it). The real /etc is never a target of any apply. Every test
# snapshots the decoy with ctime before the attack and compares afterwards: a
# chown or chmod, even one that writes the same values back, changes ctime.

SEC=$REPO/tests/security

# Every check runs a few small Python helpers; on some hosts (pyenv shims,
# many .pth files) starting python3 costs far more than volperm itself. Run
# the resolved interpreter without site-packages: the helpers use only the
# standard library. (A function, so lib.sh's helpers use it too.)
PY3=$(command python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
if [ -n "$PY3" ] && [ -x "$PY3" ] && "$PY3" -S -c 'import json, base64, ctypes, argparse' 2>/dev/null; then
	python3() { "$PY3" -S "$@"; }
fi

# make_decoy DIR: root-owned files shaped like /etc (passwd, shadow, a setuid
# binary, a capability binary, a sudoers.d dir, a private key, an ACL).
make_decoy() {
	local d=$1
	mkdir -p "$d/sudoers.d" "$d/ssl/private" "$d/sub/deeper"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$d/passwd"
	printf 'root:*:19000:0:99999:7:::\n' >"$d/shadow"
	printf '#!/bin/sh\n' >"$d/sudo"
	printf '\177ELF-not-really\n' >"$d/ping"
	printf 'app ALL=(ALL) NOPASSWD: ALL\n' >"$d/sudoers.d/app"
	printf 'KEY\n' >"$d/ssl/private/key"
	printf 'x\n' >"$d/sub/deeper/file"
	chown -R 0:0 "$d"
	chown 0:42 "$d/shadow"
	chmod 0755 "$d" "$d/sub" "$d/sub/deeper"
	chmod 0644 "$d/passwd" "$d/sub/deeper/file"
	chmod 0640 "$d/shadow"
	chmod 4755 "$d/sudo"
	chmod 0755 "$d/ping"
	chmod 0750 "$d/sudoers.d"
	chmod 0440 "$d/sudoers.d/app"
	chmod 0700 "$d/ssl/private"
	chmod 0600 "$d/ssl/private/key"
	command -v setcap >/dev/null 2>&1 && setcap cap_net_raw+ep "$d/ping" 2>/dev/null
	command -v setfacl >/dev/null 2>&1 && setfacl -m u:2000:r "$d/passwd" 2>/dev/null
	return 0
}

# decoy_snap DIR FILE: snapshot of the decoy, with ctime, plus the decoy
# dir's parent entry itself.
decoy_snap() {
	snap "$1" "$2" --ctime
}

# decoy_same DIR BEFORE DESC [snapshot.py --diff options]: the decoy is
# byte-identical to BEFORE (owners, modes, ACLs, capabilities, ctime).
decoy_same() {
	local d=$1 before=$2 desc=$3 now=$W/decoy-now.$RANDOM.snap
	shift 3
	snap "$d" "$now" --ctime
	snap_eq "$before" "$now" "$desc" "$@"
}

# LeakSanitizer cannot run under ptrace: runs under strace use this env.
NOLSAN="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

# --- racing helper (tests/security/racer.py) ---------------------------------
RACER_PID=
RACER_OUT=

# start_racer MODE A B [racer options]: swap A and B in a tight loop in the
# background until stop_racer.
start_racer() {
	RACER_OUT=$W/racer.$RANDOM.out
	# the interpreter itself, not the python3 function: $! must be its pid
	if [ -n "$PY3" ]; then
		"$PY3" -S "$SEC/racer.py" "$@" >"$RACER_OUT" 2>&1 &
	else
		command python3 "$SEC/racer.py" "$@" >"$RACER_OUT" 2>&1 &
	fi
	RACER_PID=$!
	on_exit "kill -TERM $RACER_PID; wait $RACER_PID"
	# Wait until it runs (it prints "started" first).
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q started "$RACER_OUT" 2>/dev/null && return 0
		sleep 0.05
	done
	die "racer did not start: $(cat "$RACER_OUT")"
}

# stop_racer: stop it (it finishes in the original orientation); sets
# RACER_SWAPS to the number of swaps it made. Not in a subshell: it waits.
RACER_SWAPS=0
stop_racer() {
	RACER_SWAPS=0
	[ -n "$RACER_PID" ] || return 0
	kill -TERM "$RACER_PID" 2>/dev/null
	wait "$RACER_PID" 2>/dev/null
	RACER_PID=
	RACER_SWAPS=$(sed -n 's/^swaps=//p' "$RACER_OUT" | tail -n 1)
	[ -n "$RACER_SWAPS" ] || { say "racer output: $(cat "$RACER_OUT")"; RACER_SWAPS=0; }
}

# rc_in RC LIST DESC: RC is one of the space-separated LIST.
rc_in() {
	case " $2 " in
	*" $1 "*) return 0 ;;
	esac
	return 1
}

# one_line_err FILE DESC: stderr is exactly one line, starting "volperm: ".
one_line_err() {
	local n
	n=$(wc -l <"$1")
	if [ "$n" = 1 ] && grep -q '^volperm: ' "$1"; then
		pass "$2: one line: $(cut -c1-160 "$1")"
	else
		fail "$2: expected exactly one 'volperm: ...' line on stderr, got $n:"
		head -n 10 "$1" | cat -v | sed 's/^/    /'
	fi
}

# no_journal_files JDIR DESC: no *.vpj in JDIR (or JDIR missing).
no_journal_files() {
	local n=0
	[ -d "$1" ] && n=$(count_journals "$1")
	assert_eq "$n" 0 "$2"
}

# jlines FILE ROOT: one line per --json event (summary excluded), tab-separated:
#   EVENT  RELPATH(escaped like snapshot.py; "." = root)  TYPE  REASON-or-OP  DROPS(comma)
# so that tests can grep: e.g. "^skip\tf\tfile\tchanged".
jlines() {
	python3 - "$1" "$2" "$TOOLS" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[3])
from vptest import event_path, rel
root = sys.argv[2].encode().rstrip(b"/")
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    if o.get("event") in ("summary", "start"):
        continue
    r = rel(event_path(o), root)
    why = o.get("reason") or o.get("op") or ""
    print("\t".join([o["event"], r, str(o.get("type", "")), str(why), ",".join(o.get("drops") or [])]))
PY
}

# expect_rc_in LIST DESC: the last run's exit status is one of LIST.
expect_rc_in() {
	if rc_in "$RC" "$1"; then
		pass "$2 (exit $RC)"
	else
		fail "$2: expected exit in {$1}, got $RC"
		show_run
	fi
}
