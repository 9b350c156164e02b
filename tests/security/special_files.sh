#!/usr/bin/env bash
# Case 8: device nodes, FIFOs and sockets. No device, FIFO or socket is ever
# opened (other than O_PATH) by plan, check, apply or rollback: every run is
# traced with strace -y and every open that returns an fd on one of them is
# checked; a FIFO with no writer must not hang anything (timeouts). Device
# nodes are skipped by default (skip device, exit 0) and changed, not
# opened, with --include-devices; FIFOs and sockets are changed like files.
# Also with a special file as PATH itself.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup
need_cmd mkfifo mknod strace
strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here (no ptrace)"

J=$(new_jdir)
V=$W/vol
mkdir -p "$V/dev" "$V/run"
mkfifo "$V/run/fifo"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$V/run/sock"
mknod "$V/dev/null" c 1 3 || die "mknod"
mknod "$V/dev/zero" c 1 5 || die "mknod"
mknod "$V/dev/loop250" b 7 250 || die "mknod"
echo f >"$V/file"
chown -R 1000:1000 "$V"
real_null=$(statline /dev/null)
SPECIAL=("$V/run/fifo" "$V/run/sock" "$V/dev/null" "$V/dev/zero" "$V/dev/loop250")

# traced ARGS...: run volperm under strace (opens only) and timeout 20; sets
# OUT, ERR, RC; then checks that no special file was opened (except O_PATH).
traced() {
	NRUN=$((NRUN + 1))
	OUT=$W/run$NRUN.out
	ERR=$W/run$NRUN.err
	local log=$W/run$NRUN.strace
	# -ff: one file per thread, so that with --jobs no call is split into
	# "unfinished" and "resumed" halves (the flags and the result must be on
	# one line for the check below).
	env "$NOLSAN" strace -ff -y -qq -e trace=open,openat,openat2,creat -o "$log" timeout -k 5 20 "$VP" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	cat "$log".* >"$log" 2>/dev/null
	rm -f "$log".*
	say "+ [traced] volperm $(printf '%q ' "$@")-> exit $RC"
	_sanitizer_check
	local bad
	bad=$(python3 - "$log" "${SPECIAL[@]}" <<'PY'
import re, sys
special = set(sys.argv[2:])
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"= (\d+)<(.*)>$", line.rstrip())
    if m and m.group(2) in special and "O_PATH" not in line:
        print(line.strip()[:300])
PY
)
	if [ -z "$bad" ]; then
		pass "$1: no device, FIFO or socket opened (strace)"
	else
		fail "$1: opened a special file for I/O:"
		printf '%s\n' "$bad" | head -n 5 | sed 's/^/    /'
	fi
}

traced plan --owner 1001:1001 --json --journal-dir "$J" "$V"
expect_rc 0 "plan: exit 0 (device skips are rule skips), no hang on the FIFO"
assert_eq "$(jpaths "$OUT" skip "$V" reason=device | tr '\n' ' ')" "dev/loop250 dev/null dev/zero " "plan: device nodes skipped (reason device)"
traced check --owner 1001:1001 --journal-dir "$J" "$V"
expect_rc 1 "check: changes needed (exit 1), no hang"
traced apply --owner 1001:1001 --json --journal-dir "$J" "$V"
expect_rc 0 "apply: exit 0, no hang"
assert_eq "$(jpaths "$OUT" skip "$V" reason=device | tr '\n' ' ')" "dev/loop250 dev/null dev/zero " "apply: device nodes skipped"
assert_eq "$(jsum "$OUT" skip_reasons.device)" 3 "summary: 3 device skips"
assert_eq "$(owner_of "$V/run/fifo") $(owner_of "$V/run/sock")" "1001:1001 1001:1001" "FIFO and socket changed"
assert_eq "$(owner_of "$V/dev/null") $(owner_of "$V/dev/loop250")" "1000:1000 1000:1000" "device nodes untouched by default"
traced rollback --journal-dir "$J" "$V"
expect_rc 0 "rollback: exit 0, no hang"
assert_eq "$(owner_of "$V/run/fifo")" 1000:1000 "FIFO restored"

traced apply --owner 1002:1002 --include-devices --json --journal-dir "$J" "$V"
expect_rc 0 "apply --include-devices"
assert_eq "$(owner_of "$V/dev/null") $(owner_of "$V/dev/zero") $(owner_of "$V/dev/loop250")" "1002:1002 1002:1002 1002:1002" \
	"--include-devices: the nodes themselves changed"
assert_eq "$(statline /dev/null)" "$real_null" "the real /dev/null (same device numbers) untouched"
traced rollback --journal-dir "$J" "$V"
expect_rc 0 "rollback of --include-devices"
assert_eq "$(owner_of "$V/dev/null")" 1000:1000 "device node restored"

# --- a special file as PATH -----------------------------------------------------
traced apply --owner 1003:1003 --journal-dir "$J" "$V/run/fifo"
expect_rc 0 "PATH = a FIFO with no writer: apply, no hang"
assert_eq "$(owner_of "$V/run/fifo")" 1003:1003 "PATH = FIFO: changed"
traced apply --owner 1003:1003 --include-devices --journal-dir "$J" "$V/dev/zero"
expect_rc 0 "PATH = a char device, --include-devices"
assert_eq "$(owner_of "$V/dev/zero")" 1003:1003 "PATH = char device: changed"
traced apply --owner 1003:1003 --journal-dir "$J" "$V/dev/null"
expect_rc 0 "PATH = a char device without --include-devices: skipped (rule skip, exit 0)"
assert_eq "$(owner_of "$V/dev/null")" 1000:1000 "PATH = char device: untouched by default"

finish
