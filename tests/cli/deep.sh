#!/usr/bin/env bash
# Depth must not make an entry dearer (issue 11, item 5). On a tmpfs, a chain
# of 3,000 nested directories with 20-character names (paths of 63 kB, far
# beyond PATH_MAX, built with openat relative to the parent since mkdir -p
# cannot go there) and a file in every 10th level: apply, then rollback,
# each under strace -f -c. Then a chain of 3,000 with a file in every level
# created after the subdirectory, applied with --jobs 2: each level's listing
# has two names, so the walk splits it between the workers and the
# directories above a split are delivered late, without a parent fd (they
# used to be pinned from the root: 1.86 million opens for 2,000 levels; and
# each kept its own copy of its path: 100 MB for 3,000 levels).
# Checked:
#   - the open calls (openat, openat2, open) per entry stay below 8: the old
#     pinning resolved every entry from the root, one openat per component
#     beyond PATH_MAX (about 1,500 per entry here);
#   - every entry is 1001:1001 after apply and back to its before-state
#     (owner, mode; setuid files included) after rollback, read with an
#     os.stat walk through directory fds (paths that long cannot be stat'ed);
#   - peak RSS of apply and rollback of each 3,000-level chain stays below
#     40 MB (a batch used to keep every pending record's full path twice:
#     59 MB on this chain, 218 MB on 5,000 levels); not checked under ASan, whose
#     shadow memory dominates.
. "$(dirname "$0")/lib.sh"
setup
need_cmd strace mount umount /usr/bin/time
strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here (no ptrace)"

DEPTH=3000
rss() { awk '/Maximum resident set size/ { print $NF }' "$1"; }
# (ldd's output whole: `ldd | grep -q` fails under pipefail when grep quits first.)
ASAN=0
case $(ldd "$VP" 2>/dev/null) in *libasan*) ASAN=1 ;; esac
NOLSAN="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
J=$(new_jdir)
V=$W/t/vol
mkdir "$W/t"
mount -t tmpfs -o size=256m,mode=0755 vp-deep "$W/t" || skip "cannot mount a tmpfs"
on_exit "umount -l '$W/t'"

# chain ROOT LEVELS EVERY FIRST: LEVELS nested directories, a file in every
# EVERY-th level, made before the subdirectory (FIRST=file) or after it.
chain() {
	python3 - "$@" <<'PY' || die "building the chain $1"
import os, sys
root, depth, every, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
os.mkdir(root)
os.chown(root, 1000, 1000)
fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
for i in range(depth):
    name = "dir-%016d" % i
    def mkdir():
        os.mkdir(name, 0o750, dir_fd=fd)
        os.chown(name, 1000, 1000, dir_fd=fd)
    if first != "file":
        mkdir()
    if i % every == 0:
        f = "file-%015d" % i
        os.close(os.open(f, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
        os.chown(f, 1000, 1000, dir_fd=fd)
        if i % 500 == 0:
            os.chmod(f, 0o4755, dir_fd=fd)  # after chown, which clears it
    if first == "file":
        mkdir()
    nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
os.close(fd)
PY
}
chain "$V" "$DEPTH" 10 file

# snapshot FILE [ROOT]: one line per entry (depth, name, uid:gid, mode),
# walked through directory fds.
snapshot() {
	python3 - "${2:-$V}" >"$1" <<'PY'
import os, stat, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
st = os.fstat(fd)
print(0, ".", "%d:%d" % (st.st_uid, st.st_gid), oct(st.st_mode))
level = 1
while fd is not None:
    sub = None
    for name in sorted(os.listdir(fd)):
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        print(level, name, "%d:%d" % (st.st_uid, st.st_gid), oct(st.st_mode))
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
    os.close(fd)
    fd = sub
    level += 1
PY
}

# opens FILE: the calls of the total line of strace -c's table.
opens() { awk '$NF == "total" { print $4 }' "$1"; }

# traced LABEL ARGS...: run volperm under strace -c; sets RC, OUT, ERR, N_OPEN.
traced() {
	local label=$1
	shift
	NRUN=$((NRUN + 1))
	OUT=$W/run$NRUN.out
	ERR=$W/run$NRUN.err
	env "$NOLSAN" timeout -k 5 900 strace -f -qq -c -o "$W/strace.$label" \
		-e trace=openat,openat2,open "$VP" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	N_OPEN=$(opens "$W/strace.$label")
	say "+ [${SECONDS}s] strace -c volperm $(printf '%q ' "$@")-> exit $RC, ${N_OPEN:-?} opens"
	_sanitizer_check
}

snapshot "$W/before"
n=$(wc -l <"$W/before")
plen=$(python3 -c "print(len('/'.join(['dir-%016d' % 0] * $DEPTH)))")
say "# chain of $DEPTH directories, $n entries, deepest path about $plen bytes"
assert_eq "$n" "$((DEPTH + DEPTH / 10 + 1))" "the chain is built to the bottom"
assert_true "its paths are longer than PATH_MAX" test "$plen" -gt 4096

traced apply apply --owner 1001:1001 --journal-dir "$J" "$V"
expect_rc 0 "apply on the $DEPTH-level chain"
assert_true "apply: fewer than 8 opens per entry (${N_OPEN:-?} for $n entries)" \
	test "${N_OPEN:-999999999}" -lt $((8 * n))
snapshot "$W/applied"
assert_eq "$(awk '$3 != "1001:1001"' "$W/applied" | head -n 3)" "" "apply: every entry 1001:1001, down to the bottom"
assert_eq "$(wc -l <"$W/applied")" "$n" "apply: no entry lost"
assert_eq "$(awk '$4 ~ /4[0-7][0-7][0-7]$/' "$W/applied" | head -n 3)" "" "apply: setuid cleared at every level"

traced rollback rollback --journal-dir "$J" "$V"
expect_rc 0 "rollback of the chain"
assert_true "rollback: fewer than 8 opens per entry (${N_OPEN:-?} for $n entries)" \
	test "${N_OPEN:-999999999}" -lt $((8 * n))
snapshot "$W/rolled"
if cmp -s "$W/before" "$W/rolled"; then
	pass "rollback restored every entry (owners, modes, setuid)"
else
	fail "rollback differs: $(diff "$W/before" "$W/rolled" | grep -c '^>') entries"
	diff "$W/before" "$W/rolled" | head -n 6 | cut -c1-160 | sed 's/^/    /'
fi

# Peak memory, without strace in the way.
if [ $ASAN = 1 ]; then
	say "# ASan build: peak RSS not checked"
else
	NRUN=$((NRUN + 1))
	/usr/bin/time -v -o "$W/time.apply" "$VP" apply --owner 1001:1001 --quiet --journal-dir "$J" "$V" >"$W/run$NRUN.out" 2>&1
	RC=$?
	expect_rc 0 "apply again"
	kb=$(rss "$W/time.apply")
	assert_true "apply: peak RSS ${kb:-?} kB < 40 MB" test "${kb:-999999999}" -lt 40960
	NRUN=$((NRUN + 1))
	/usr/bin/time -v -o "$W/time.rollback" "$VP" rollback --quiet --journal-dir "$J" "$V" >"$W/run$NRUN.out" 2>&1
	RC=$?
	expect_rc 0 "rollback again"
	kb=$(rss "$W/time.rollback")
	assert_true "rollback: peak RSS ${kb:-?} kB < 40 MB" test "${kb:-999999999}" -lt 40960
	snapshot "$W/rolled-again"
	assert_true "the second rollback restored every entry too" cmp -s "$W/before" "$W/rolled-again"
fi

# --- --jobs 2, every directory split: delivered late, without a parent fd ---
V2=$W/t/vol2
chain "$V2" "$DEPTH" 1 dir
snapshot "$W/before2" "$V2"
n2=$(wc -l <"$W/before2")
traced apply2 apply --jobs 2 --owner 1001:1001 --journal-dir "$J" "$V2"
expect_rc 0 "apply --jobs 2 on the split chain"
assert_true "apply --jobs 2: fewer than 8 opens per entry (${N_OPEN:-?} for $n2 entries)" \
	test "${N_OPEN:-999999999}" -lt $((8 * n2))
snapshot "$W/applied2" "$V2"
assert_eq "$(awk '$3 != "1001:1001"' "$W/applied2" | head -n 3)" "" "apply --jobs 2: every entry 1001:1001"
traced rollback2 rollback --journal-dir "$J" "$V2"
expect_rc 0 "rollback of the split chain"
assert_true "rollback: fewer than 8 opens per entry (${N_OPEN:-?} for $n2 entries)" \
	test "${N_OPEN:-999999999}" -lt $((8 * n2))
snapshot "$W/rolled2" "$V2"
assert_true "rollback restored every entry of the split chain" cmp -s "$W/before2" "$W/rolled2"
if [ $ASAN = 0 ]; then
	NRUN=$((NRUN + 1))
	/usr/bin/time -v -o "$W/time.apply2" "$VP" apply --jobs 2 --owner 1001:1001 --quiet --journal-dir "$J" "$V2" >"$W/run$NRUN.out" 2>&1
	RC=$?
	expect_rc 0 "apply --jobs 2 of the split chain again"
	kb=$(rss "$W/time.apply2")
	assert_true "apply --jobs 2: peak RSS ${kb:-?} kB < 40 MB" test "${kb:-999999999}" -lt 40960
	vp_expect 0 "and its rollback" rollback --quiet --journal-dir "$J" "$V2"
	snapshot "$W/rolled2-again" "$V2"
	assert_true "that rollback restored every entry too" cmp -s "$W/before2" "$W/rolled2-again"
fi

finish
