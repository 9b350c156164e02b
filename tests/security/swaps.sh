#!/usr/bin/env bash
# Case 3, deterministic: an entry swapped between the walk's stat and the
# change. strace(1) holds volperm inside one chosen syscall (fault injection
# "delay_enter" on the openat2 that pins the entry, or on the open of
# /proc/self/mountinfo just before the walk) while the test swaps the entry:
#   f -> symlink to a decoy file       f -> another file (new inode)
#   f -> hard link to a decoy file     f -> FIFO (must not hang)
#   d (a middle component of d/g) -> symlink to a decoy dir with a "g"
#   the root itself -> symlink to the decoy (between open and walk)
#   during rollback: f -> symlink to a decoy file
# Each: dev/ino verification catches it; skipped as "changed" (exit 5), or a
# conflict on rollback (exit 6); reported in --json; the decoy and the
# swapped-in entry untouched.
#
# On slowfs (VOLPERM_TEST_FS=slowfs, a FUSE mount) apply pins each name in
# the walk instead (walk.h, cfg->pin): the walk's stat is the pin's, so no
# window is left between them to race. The window left is between the pin
# and the one look at the directory's ctime that vouches for a run of pins
# (vp_dir_changed). So there the entries sit in a subdirectory s (the
# root's own entries have no directory to look at, in either way), every
# statx of s is held, and the swap lands once the ctime look has begun
# (strace printed its STATX_CTIME); the look must see the swap and leave the
# entries to apply, which pins them again and finds another inode. --jobs 1,
# so that f's run is one run of one worker.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup
need_cmd strace mkfifo
strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here (no ptrace)"
strace -f -qq -o /dev/null -e trace=getpid -e inject=getpid:delay_enter=1000 true 2>/dev/null ||
	skip "this strace has no syscall delay injection"

E=$W/etc
make_decoy "$E"
mkdir -p "$E/dmirror"
echo mirror >"$E/dmirror/g"
decoy_snap "$E" "$W/decoy0.snap"

# held_run SYSCALL WHEN SIGNAL ACTION ARGS...: run volperm with its WHEN-th
# SYSCALL (strace syntax: "1", or "1+" for every one) held for 1.5 s; once
# SIGNAL (a shell test, eval'd) is true, eval ACTION, which must land while
# volperm is still held. Sets OUT, ERR, RC.
# HELD_PATH=P: count only the SYSCALLs on path P (strace -P).
# STRACE_OUT: strace's output of the run (a syscall held on entry is
# printed up to its arguments before the hold), for SIGNAL to look at.
HELD_PATH=
held_run() {
	local sc=$1 when=$2 signal=$3 action=$4 pid i landed=0
	shift 4
	NRUN=$((NRUN + 1))
	OUT=$W/run$NRUN.out
	ERR=$W/run$NRUN.err
	STRACE_OUT=$W/run$NRUN.strace
	# shellcheck disable=SC2086
	env "$NOLSAN" strace -f -qq -o "$STRACE_OUT" ${HELD_PATH:+-P "$HELD_PATH"} -e trace="$sc" -e inject="$sc:delay_enter=1500000:when=$when" \
		"$VP" "$@" >"$OUT" 2>"$ERR" &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		if eval "$signal"; then
			eval "$action"
			kill -0 "$pid" 2>/dev/null && landed=1
			break
		fi
		sleep 0.02
	done
	wait "$pid"
	RC=$?
	say "+ [held at $sc #$when] volperm $(printf '%q ' "$@")-> exit $RC"
	_sanitizer_check
	if [ "$landed" = 1 ]; then
		pass "the swap landed while volperm was held"
	else
		fail "the swap did not land inside the window (signal '$signal' never true, or volperm had finished)"
	fi
}

# fresh NAME: a volume with one 1000-owned file f, and a new journal dir.
# S: the directory f is in (the root, or s on slowfs), R: its relpath
# prefix ("" or "s/").
fresh() {
	V=$W/$1
	J=$(new_jdir)
	mkdir "$V"
	S=$V R=
	if [ "$PINWALK" = 1 ]; then
		S=$V/s R=s/
		mkdir "$S"
	fi
	echo mine >"$S/f"
	chown 1000:1000 "$V" "$S" "$S/f"
	chmod 4755 "$S/f"
}
journal_exists='compgen -G "$J/*.vpj" >/dev/null'
PINWALK=0
[ "${VOLPERM_TEST_FS:-}" = slowfs ] && PINWALK=1
# held_apply SWAP ARGS...: apply held where a swap must be caught (above)
held_apply() {
	local swap=$1
	shift
	if [ "$PINWALK" = 1 ]; then
		HELD_PATH=$S held_run statx 1+ 'grep -q STATX_CTIME "$STRACE_OUT"' "$swap" \
			apply --jobs 1 "$@"
	else
		held_run openat2 1 "$journal_exists" "$swap" apply "$@"
	fi
}

# check_skip_changed WHAT PATH: exit 5, one skip "changed" event for PATH.
check_skip_changed() {
	expect_rc 5 "$1: safety skip (exit 5)"
	json_ok "$OUT" "$1: NDJSON valid"
	assert_eq "$(jpaths "$OUT" skip "$V" reason=changed | tr '\n' ' ')" "$2" "$1: skip event, reason changed, for: $2"
	assert_eq "$(jsum "$OUT" skip_reasons.changed)" "$(printf '%s' "$2" | wc -w)" "$1: summary counts the changed skip"
}

# --- f -> symlink to a decoy file ------------------------------------------
fresh sym
held_apply 'mv "$S/f" "$S/f.real"; ln -s "$E/passwd" "$S/f"' \
	--owner 1001:1001 --json --journal-dir "$J" "$V"
check_skip_changed "f -> symlink" "${R}f "
decoy_same "$E" "$W/decoy0.snap" "f -> symlink: decoy untouched"
assert_eq "$(owner_of "$S/f")" 0:0 "f -> symlink: the swapped-in link itself untouched"
assert_eq "$(owner_of "$S/f.real") $(mode_of "$S/f.real")" "1000:1000 4755" "f -> symlink: the original inode untouched"
assert_eq "$(owner_of "$V")" 1001:1001 "f -> symlink: the rest (the root) changed"
vp_expect 0 "f -> symlink: rollback" rollback --journal-dir "$J" "$V"
assert_eq "$(owner_of "$V")" 1000:1000 "f -> symlink: rollback restored the root"
decoy_same "$E" "$W/decoy0.snap" "f -> symlink: decoy untouched by rollback"

# --- f -> another file --------------------------------------------------------
fresh other
echo other >"$S/g"
chown 1000:1000 "$S/g"
held_apply 'mv "$S/f" "$S/f.real"; ln "$S/g" "$S/f"' \
	--owner 1001:1001 --list --journal-dir "$J" "$V"
expect_rc 5 "f -> another file (g's inode): safety skip (exit 5)"
assert_file_match "^skip changed $S/f\$" "$OUT" "f -> other: --list says 'skip changed PATH'"
assert_file_match "^volperm: $S/f: .*(changed|replaced|moved)" "$ERR" "f -> other: the safety skip is said on stderr too"
assert_eq "$(owner_of "$S/f.real") $(mode_of "$S/f.real")" "1000:1000 4755" "f -> other: the original inode untouched"

# --- f -> hard link to a decoy file --------------------------------------------
fresh hard
held_apply 'mv "$S/f" "$S/f.real"; ln "$E/shadow" "$S/f"' \
	--owner 1001:1001 --json --journal-dir "$J" "$V"
check_skip_changed "f -> hard link to decoy" "${R}f "
decoy_same "$E" "$W/decoy0.snap" "f -> hard link: decoy untouched" --ignore-field ctime
assert_eq "$(stat -c '%u:%g %a' "$E/shadow")" "0:42 640" "f -> hard link: decoy shadow still 0:42 0640"
rm -f "$S/f"
decoy_snap "$E" "$W/decoy0.snap" # the link changed its ctime

# --- f -> FIFO (walk saw a file): never opened, no hang -------------------------
fresh fifo
held_apply 'mv "$S/f" "$S/f.real"; mkfifo "$S/f"' \
	--owner 1001:1001 --json --journal-dir "$J" "$V"
check_skip_changed "f -> FIFO" "${R}f "
assert_eq "$(owner_of "$S/f")" 0:0 "f -> FIFO: the FIFO untouched"

# --- middle component: d (of d/g) -> symlink to a decoy dir with a g -------------
# (on slowfs: d's own statx are held, its ctime look sees d renamed)
fresh middle
rm "$S/f"
mkdir "$V/d"
echo in >"$V/d/g"
chown 1000:1000 "$V/d" "$V/d/g"
S=$V/d
held_apply 'mv "$V/d" "$V/d.real"; ln -s "$E/dmirror" "$V/d"' \
	--owner 1001:1001 --json --journal-dir "$J" "$V"
check_skip_changed "d -> symlink (middle component)" "d d/g "
decoy_same "$E" "$W/decoy0.snap" "d -> symlink: decoy (with d/g mirrored) untouched"
assert_eq "$(owner_of "$V/d.real") $(owner_of "$V/d.real/g")" "1000:1000 1000:1000" "d -> symlink: the real d and d/g untouched"
vp_expect 0 "d -> symlink: rollback" rollback --journal-dir "$J" "$V"
decoy_same "$E" "$W/decoy0.snap" "d -> symlink: decoy untouched by rollback"

# --- the root itself swapped for a symlink between open and walk ----------------
fresh root
mkdir "$V/sub"
chown 1000:1000 "$V/sub"
# the 3rd open of /proc/self/mountinfo comes right before fts_open(PATH): the
# first two are the journal-dir-inside-the-volume check (journal dir and
# volume on one filesystem here), the 3rd is the walk's mount table
HELD_PATH=/proc/self/mountinfo held_run openat 3 'compgen -G "$J/vp-*.lock" >/dev/null' \
	'mv "$V" "$V.real"; ln -s "$E" "$V"' apply --owner 1001:1001 --json --journal-dir "$J" "$V"
decoy_same "$E" "$W/decoy0.snap" "root -> symlink: decoy untouched"
expect_rc_in "2 3 5" "root -> symlink: refused or skipped"
rm -f "$V"
mv "$V.real" "$V"

# --- rollback: f swapped for a symlink to the decoy before its restore -------------
fresh rb
vp_expect 0 "rollback case: apply" apply --owner 1001:1001 --journal-dir "$J" "$V"
jf=$(newest_journal "$J")
size0=$(stat -c %s "$jf")
# Hold every pin of the rollback (whether the root is pinned again or not),
# and swap f once the ROLLBACK_BEGIN mark has grown the journal.
held_run openat2 1+ '[ "$(stat -c %s "$jf")" != "$size0" ]' 'mv "$S/f" "$S/f.real"; ln -s "$E/passwd" "$S/f"' \
	rollback --json --journal-dir "$J" "$V"
expect_rc 6 "rollback with f swapped: conflicts (exit 6)"
assert_eq "$(jpaths "$OUT" conflict "$V" | tr '\n' ' ')" "${R}f " "rollback: conflict event for f"
decoy_same "$E" "$W/decoy0.snap" "rollback with f swapped: decoy untouched"
assert_eq "$(owner_of "$S/f") $(owner_of "$S/f.real")" "0:0 1001:1001" "rollback: the link and the moved inode left alone"
assert_eq "$(owner_of "$V")" 1000:1000 "rollback: the root restored"

finish
