#!/usr/bin/env bash
# Signals and a failing standard output (docs/volperm.1, SIGNALS and EXIT
# STATUS 7 and 8).
#
# The signal always lands in the middle of the work, without a timing
# guess: volperm runs with --list and its stdout is a FIFO that this test
# reads. volperm can only go on as fast as the test reads, so after reading
# N bytes of change lines the run is known to be past N bytes' worth of
# changes and (the tree being far bigger) far from its commit. Then:
#   - SIGTERM, SIGINT, SIGHUP during apply: exit 7, one line on stderr, every
#     change rolled back (snapshot = before, as many restores as changes),
#     journal rolled-back;
#   - a second SIGTERM once the rollback has visibly begun (a "restore" line
#     was read; the rest of the rollback cannot have been written yet): exit
#     6, journal hot, `apply` refuses (4), `recover` finishes (snapshot =
#     before);
#   - --no-journal: exit 7, the changes made stay (their count is said), a
#     re-run converges;
#   - plan and check: exit 7, nothing changed, no journal;
#   - standalone rollback and recover: exit 6 on their first signal, journal
#     hot; the next recover finishes;
#   - `apply --list | head -1` and `apply > /dev/full`: the apply finishes
#     (snapshot = a complete apply, journal committed), exit 8, one stderr
#     line; `check > /dev/full` keeps its own status (1);
#   - exec: the command gets the signal dispositions and mask volperm was
#     started with (SIGPIPE not ignored; an ignored SIGHUP stays ignored).
# SIGINT needs `env --default-signal`: a background job of a script starts
# with SIGINT ignored, and volperm keeps ignored signals ignored.
#
# VOLPERM_SIGNALS_ENTRIES: the tree's size (default 8000). The byte counts
# read before each signal, and the counts of changes a stopped apply must
# have made, were chosen for 8000 entries and scale with it. Reading R bytes
# only says volperm is at least that far: it can be ahead of the reader by
# the pipe's capacity, its stdio buffer and one change a worker. Below the
# size where that slack could take a run to its end, the test refuses to
# run (it says so), and every signalled run checks that it was stopped with
# work still to do: a run that finished first FAILS ("PREMISE FAILED"),
# since the case's other checks would then be about something else.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/crashlib.sh"
setup
need_cmd cp env grep
env --default-signal=INT true 2>/dev/null || skip "env --default-signal (coreutils 8.31 or later) is missing"
snapd_start
crash_fs 384

# The pipe helper: exact reads from the FIFO (bash's read stops at NUL and
# cannot read a byte count reliably).
cat >"$W/pipectl.py" <<'EOF'
import os, sys
fd, act, arg, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], open(sys.argv[4], "ab")
if act == "read":  # exactly ARG bytes
    n = int(arg)
    while n > 0:
        b = os.read(fd, min(n, 65536))
        if not b:
            sys.exit("volperm closed its output after %d bytes too few" % n)
        out.write(b)
        n -= len(b)
else:  # "until": up to the first line that starts with ARG
    pre, tail = arg.encode(), b""
    while True:
        b = os.read(fd, 512)
        if not b:
            sys.exit("volperm closed its output before a line starting with %r" % arg)
        out.write(b)
        lines = (tail + b).split(b"\n")
        if any(l.startswith(pre) for l in lines[:-1]):
            break
        tail = lines[-1]
EOF

ENTRIES=${VOLPERM_SIGNALS_ENTRIES:-8000}
case $ENTRIES in '' | *[!0-9]*) die "VOLPERM_SIGNALS_ENTRIES=$ENTRIES: expected a number of entries" ;; esac
# scaled N: N (a byte count or a count of changes chosen for 8000 entries)
# for this tree
scaled() { echo $(($1 * ENTRIES / 8000)); }

P=$FSDIR/pristine
mktree "$P" "$ENTRIES" --seed 11 --acl-every 60 --setid 5
fsnap "$P" "$W/pre.snap"
V=$FSDIR/v
OWN=4242:4242
# The complete apply, for comparison; its --list output measures what a
# complete run writes.
fresh_copy "$P" "$V"
vp_expect 0 "reference apply" apply --list --no-journal -o $OWN "$V"
fsnap "$V" "$W/post.snap"
TOTAL=$(find "$P" | wc -l)
ALL_CHANGES=$(grep -c '^chown ' "$OUT")
ALL_BYTES=$(grep '^chown ' "$OUT" | wc -c)
# (a restore line is 2 bytes longer than its change line, and a newline)
MAXLINE=$(grep '^chown ' "$OUT" | awk '{ if (length > m) m = length } END { print m + 3 }')
RUN_JOBS=$(awk '$1 == "jobs:" { print $2 }' "$OUT")
say "# tree: $TOTAL entries, $ALL_CHANGES changes, $ALL_BYTES bytes of change lines, at most $MAXLINE bytes a restore line, --jobs $RUN_JOBS"

# How far volperm can be ahead of the reader: what the FIFO holds, its
# stdio buffer (glibc sizes it by st_blksize), one change a worker made but
# not yet printed (they wait for the output lock, the printing one blocked
# on the pipe).
mkfifo "$W/probe" || die "mkfifo"
PIPE_BYTES=$(python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDWR); print(__import__("fcntl").fcntl(fd, 1032))' "$W/probe") ||
	die "F_GETPIPE_SZ"
STDIO_BYTES=$(stat -L -c %o "$W/probe")
rm -f "$W/probe"
slack() { echo $((PIPE_BYTES + STDIO_BYTES + $1 * MAXLINE)); }
# fits DESC BYTES [LIMIT]: BYTES (reads plus slack) must be less than
# LIMIT (default: what a complete run writes), or the run could end before
# its signal: refuse the size.
fits() {
	[ "$2" -lt "${3:-$ALL_BYTES}" ] ||
		die "PREMISE FAILED: VOLPERM_SIGNALS_ENTRIES=$ENTRIES is too small: $1: up to $2 bytes of --list output may be written before the signal, and the run has only ${3:-$ALL_BYTES} to write"
}
READ_APPLY=$(scaled 150000)     # apply (its --jobs), and as PID 1
READ_APPLY1=$(scaled 200000)    # apply --jobs 1, before its two signals
READ_SHORT=$(scaled 100000)     # --no-journal, plan, check, rollback
READ_RECOVER=$(scaled 50000)    # recover after that rollback
fits "apply" $((READ_APPLY + $(slack "$RUN_JOBS")))
fits "apply --jobs 1" $((READ_APPLY1 + $(slack 1)))
# the recover: after a rollback that went up to that far (restore lines
# are longer than change lines: ALL_BYTES is a lower bound of what it writes)
fits "rollback, then recover" $((READ_SHORT + READ_RECOVER + 2 * $(slack "$RUN_JOBS")))
# the second SIGTERM: the rollback of the changes made before the first
# one (at least the change lines read) is signalled after its first restore
# line was read, and may be ahead by the slack
fits "apply --jobs 1, its rollback" $(($(slack 1) + MAXLINE)) "$READ_APPLY1"
say "# reads before the signals: $READ_APPLY, $READ_APPLY1, $READ_SHORT, $READ_RECOVER bytes (pipe $PIPE_BYTES, stdio buffer $STDIO_BYTES)"

BG_OUT=$W/bg.out
BG_ERR=$W/bg.err
# bg_start ARGS...: volperm ARGS in the background, stdout into a FIFO the
# test reads (fd RD), stderr into BG_ERR; PID is its process id.
bg_start() {
	rm -f "$W/fifo" "$BG_OUT" "$BG_ERR"
	mkfifo "$W/fifo" || die "mkfifo"
	: >"$BG_OUT"
	env --default-signal=INT,HUP,TERM "$VP" "$@" >"$W/fifo" 2>"$BG_ERR" &
	PID=$!
	exec {RD}<"$W/fifo"
	say "+ [${SECONDS}s] volperm $(printf '%q ' "$@")& (pid $PID)"
}
# bg_read BYTES / bg_until PREFIX: read that much of its stdout.
bg_read() { python3 "$W/pipectl.py" "$RD" read "$1" "$BG_OUT" || die "reading volperm's output"; }
bg_until() { python3 "$W/pipectl.py" "$RD" until "$1" "$BG_OUT" || die "reading volperm's output"; }
# bg_kill SIG: send it (the process must still be there: it cannot finish
# before its output is read, if the tree is large enough; if it has, the
# premise of the case is gone: abort, loudly).
bg_kill() {
	local st=gone
	[ -r "/proc/$PID/stat" ] && st=$(sed 's/.*) //; s/ .*//' "/proc/$PID/stat" 2>/dev/null)
	case $st in
	'' | gone | Z | X)
		die "PREMISE FAILED: volperm (pid $PID) had already finished when SIG$1 was to be sent, after $(wc -c <"$BG_OUT") bytes of its output were read: VOLPERM_SIGNALS_ENTRIES=$ENTRIES is too small for this test"
		;;
	esac
	kill -s "$1" "$PID" || die "kill -s $1 $PID: volperm is gone"
	say "+ [${SECONDS}s] kill -s $1 $PID ($(wc -c <"$BG_OUT") bytes, $(grep -c '^chown \|^restore ' "$BG_OUT") change or restore lines read)"
}
# bg_end: read the rest, wait; RC, OUT, ERR as after vp.
bg_end() {
	cat <&"$RD" >>"$BG_OUT"
	exec {RD}<&-
	wait "$PID"
	RC=$?
	OUT=$BG_OUT
	ERR=$BG_ERR
	say "+ [${SECONDS}s] pid $PID -> exit $RC"
	_sanitizer_check
}
# one_line ERE DESC: stderr is exactly one line, matching ERE.
one_line() {
	local n
	n=$(wc -l <"$ERR")
	if [ "$n" = 1 ] && grep -qE -- "$1" "$ERR"; then
		pass "$2: $(cat "$ERR")"
	else
		fail "$2: expected one stderr line matching /$1/, got $n:"
		head -n 5 "$ERR" | cat -v | sed 's/^/    /'
	fi
}
count_lines() { grep -c "^$1 " "$OUT"; }
# midrun DESC DONE ALL: the premise of every signal case: the signal
# reached volperm while it still had work to do (DONE of ALL done, fewer)
# and stopped it (exit 6 or 7). A run that finished first would leave the
# case's other checks testing something else: fail, saying why.
midrun() {
	if [ "$2" -lt "$3" ] && { [ "$RC" = 6 ] || [ "$RC" = 7 ]; }; then
		pass "$1: the signal landed mid-run ($2 of $3 done, exit $RC)"
	else
		fail "PREMISE FAILED: $1: the signal did not stop a run in progress ($2 of $3 done, exit $RC): VOLPERM_SIGNALS_ENTRIES=$ENTRIES is too small for this test"
	fi
}
# midrun_restore DESC: midrun for a rollback or recover, from its stderr
# line's "X of Y entries still to restore" (Y - X of Y done)
midrun_restore() {
	local x y
	x=$(sed -n 's/.* with \([0-9][0-9]*\) of [0-9][0-9]* entries still to restore.*/\1/p' "$ERR")
	y=$(sed -n 's/.* with [0-9][0-9]* of \([0-9][0-9]*\) entries still to restore.*/\1/p' "$ERR")
	midrun "$1" "$((${y:-0} - ${x:-0}))" "${y:-0}"
}
# between N MIN END: MIN <= N < END
between() { [ "$1" -ge "$2" ] && [ "$1" -lt "$3" ]; }
jlist_state() { "$VP" journal list --journal-dir "$1" "$V" | awk 'NR == 1 { print $2 }'; }

# ---- apply: SIGTERM, SIGINT, SIGHUP -------------------------------------------
for sig in TERM INT HUP; do
	fresh_copy "$P" "$V"
	J=$(fs_jdir)
	bg_start apply --list -o $OWN --journal-dir "$J" "$V"
	bg_read "$READ_APPLY"
	bg_kill "$sig"
	bg_end
	expect_rc 7 "apply, SIG$sig mid-apply"
	one_line "^volperm: interrupted by SIG$sig; every change was rolled back, nothing changed \\(journal $J/vp-[0-9a-f-]+\\.vpj\\)\$" \
		"apply, SIG$sig: one line"
	fcheck "$V" "$W/pre.snap" "apply, SIG$sig: the tree is as before"
	changed=$(count_lines chown)
	midrun "apply, SIG$sig" "$changed" "$ALL_CHANGES"
	assert_true "apply, SIG$sig: stopped mid-apply ($changed of $TOTAL entries had changed)" \
		between "$changed" "$(scaled 2000)" "$TOTAL"
	assert_eq "$(count_lines restore)" "$changed" "apply, SIG$sig: every change was restored"
	assert_eq "$(journal_state "$J")" rolled-back "apply, SIG$sig: journal rolled back"
done

# ---- as PID 1 of a PID namespace (a container's init, as under docker stop) ------
# The kernel drops a signal to a namespace's init that has no handler: before
# volperm had one, docker stop's SIGTERM did nothing until the SIGKILL.
if command -v unshare >/dev/null && unshare --pid --fork --mount-proc true 2>/dev/null; then
	fresh_copy "$P" "$V"
	J=$(fs_jdir)
	rm -f "$W/fifo" "$BG_OUT" "$BG_ERR"
	mkfifo "$W/fifo" || die "mkfifo"
	: >"$BG_OUT"
	unshare --pid --fork --mount-proc "$VP" apply --list -o $OWN --journal-dir "$J" "$V" >"$W/fifo" 2>"$BG_ERR" &
	PID=$!
	exec {RD}<"$W/fifo"
	bg_read "$READ_APPLY"
	read -r init _ <"/proc/$PID/task/$PID/children"
	assert_eq "$(awk '$1 == "NSpid:" { print $3 }' "/proc/$init/status")" 1 "volperm is PID 1 of its namespace"
	outer=$PID
	PID=$init
	bg_kill TERM
	PID=$outer
	bg_end
	expect_rc 7 "PID 1, SIGTERM from outside its namespace"
	midrun "PID 1, SIGTERM" "$(count_lines chown)" "$ALL_CHANGES"
	one_line "^volperm: interrupted by SIGTERM; every change was rolled back, nothing changed" "PID 1, SIGTERM: one line"
	fcheck "$V" "$W/pre.snap" "PID 1, SIGTERM: the tree is as before"
else
	say "SKIP-PART: unshare --pid does not work here: the PID 1 case is not run"
fi

# ---- a second signal during that rollback -----------------------------------------
fresh_copy "$P" "$V"
J=$(fs_jdir)
bg_start apply --list --jobs 1 -o $OWN --journal-dir "$J" "$V"
bg_read "$READ_APPLY1"
bg_kill TERM
bg_until restore
bg_kill TERM
bg_end
expect_rc 6 "apply, a second SIGTERM during the rollback"
midrun "apply --jobs 1, first SIGTERM" "$(count_lines chown)" "$ALL_CHANGES"
midrun "its rollback, second SIGTERM" "$(count_lines restore)" "$(count_lines chown)"
one_line "^volperm: interrupted by SIGTERM; the rollback was interrupted by SIGTERM with [0-9]+ of [0-9]+ entries still to restore: the journal $J/vp-[0-9a-f-]+\\.vpj is hot, run volperm recover $V\$" \
	"second SIGTERM: one line"
assert_true "second SIGTERM: the rollback stopped early ($(count_lines restore) of $(count_lines chown) restored)" \
	between "$(count_lines restore)" 1 "$(count_lines chown)"
assert_eq "$(jlist_state "$J")" hot "second SIGTERM: the journal is hot"
vp_expect 4 "then apply refuses the hot volume" apply -q -o $OWN --journal-dir "$J" "$V"
vp_expect 0 "then recover finishes" recover --journal-dir "$J" "$V"
fcheck "$V" "$W/pre.snap" "after recover, the tree is as before"
assert_eq "$(journal_state "$J")" rolled-back "after recover, the journal is rolled back"

# ---- --no-journal ------------------------------------------------------------------
fresh_copy "$P" "$V"
bg_start apply --list --no-journal -o $OWN "$V"
bg_read "$READ_SHORT"
bg_kill TERM
bg_end
expect_rc 7 "apply --no-journal, SIGTERM"
changed=$(count_lines chown)
one_line "^volperm: interrupted by SIGTERM; $changed entries were changed and stay changed \\(no journal, nothing to roll back\\): run it again to finish\$" \
	"--no-journal, SIGTERM: one line with the count of changed entries"
midrun "apply --no-journal, SIGTERM" "$changed" "$ALL_CHANGES"
assert_true "--no-journal: stopped mid-apply ($changed changed)" between "$changed" "$(scaled 1000)" "$TOTAL"
vp_expect 0 "--no-journal: the re-run converges" apply -q --no-journal -o $OWN "$V"
fcheck "$V" "$W/post.snap" "--no-journal: after the re-run the tree is as after a complete apply"

# ---- plan and check ----------------------------------------------------------------------
fresh_copy "$P" "$V"
J=$(fs_jdir)
for cmd in plan:TERM check:INT; do
	bg_start "${cmd%%:*}" --list -o $OWN --journal-dir "$J" "$V"
	bg_read "$READ_SHORT"
	bg_kill "${cmd##*:}"
	bg_end
	expect_rc 7 "${cmd%%:*}, SIG${cmd##*:}"
	midrun "${cmd%%:*}, SIG${cmd##*:}" "$(count_lines chown)" "$ALL_CHANGES"
	one_line "^volperm: interrupted by SIG${cmd##*:}; nothing was changed\$" "${cmd%%:*}, SIG${cmd##*:}: one line"
done
fcheck "$V" "$W/pre.snap" "plan and check: nothing changed"
assert_eq "$(count_journals "$J")" 0 "plan and check: no journal"

# ---- standalone rollback and recover --------------------------------------------------
fresh_copy "$P" "$V"
J=$(fs_jdir)
vp_expect 0 "apply to roll back" apply -q -o $OWN --journal-dir "$J" "$V"
bg_start rollback --list --journal-dir "$J" "$V"
bg_read "$READ_SHORT"
bg_kill TERM
bg_end
expect_rc 6 "rollback, SIGTERM"
midrun_restore "rollback, SIGTERM"
one_line "^volperm: interrupted by SIGTERM with [0-9]+ of [0-9]+ entries still to restore; the journal is left rolling-back \\($J/vp-[0-9a-f-]+\\.vpj\\): run volperm recover $V\$" \
	"rollback, SIGTERM: one line"
assert_eq "$(jlist_state "$J")" hot "rollback, SIGTERM: the journal is hot"
bg_start recover --list --journal-dir "$J" "$V"
bg_read "$READ_RECOVER"
bg_kill HUP
bg_end
expect_rc 6 "recover, SIGHUP"
midrun_restore "recover, SIGHUP"
one_line "^volperm: interrupted by SIGHUP with [0-9]+ of [0-9]+ entries still to restore; the journal is left rolling-back \\($J/vp-[0-9a-f-]+\\.vpj\\): run volperm recover $V\$" \
	"recover, SIGHUP: one line"
assert_eq "$(jlist_state "$J")" hot "recover, SIGHUP: the journal is still hot"
vp_expect 0 "the next recover finishes" recover --journal-dir "$J" "$V"
fcheck "$V" "$W/pre.snap" "after rollback, recover, recover: the tree is as before"
assert_eq "$(journal_state "$J")" rolled-back "after recover: the journal is rolled back"

# ---- a closed or failing standard output ---------------------------------------------------
fresh_copy "$P" "$V"
J=$(fs_jdir)
NRUN=$((NRUN + 1))
OUT=$W/run$NRUN.out
ERR=$W/run$NRUN.err
"$VP" apply --list -o $OWN --journal-dir "$J" "$V" 2>"$ERR" | head -n 1 >"$OUT"
RC=${PIPESTATUS[0]}
say "+ [${SECONDS}s] volperm apply --list ... | head -n 1 -> exit $RC"
expect_rc 8 "apply --list | head -1"
one_line "^volperm: cannot write to standard output: Broken pipe; the apply itself finished: [0-9]+ entries changed, journal $J/vp-[0-9a-f-]+\\.vpj \\(committed\\)\$" \
	"apply | head -1: one line"
fcheck "$V" "$W/post.snap" "apply | head -1: the apply is complete"
assert_eq "$(journal_state "$J")" committed "apply | head -1: journal committed"

fresh_copy "$P" "$V"
J=$(fs_jdir)
NRUN=$((NRUN + 1))
OUT=/dev/full
ERR=$W/run$NRUN.err
"$VP" apply -o $OWN --journal-dir "$J" "$V" >/dev/full 2>"$ERR"
RC=$?
say "+ [${SECONDS}s] volperm apply ... >/dev/full -> exit $RC"
expect_rc 8 "apply >/dev/full"
one_line "^volperm: cannot write to standard output: No space left on device; the apply itself finished: [0-9]+ entries changed, journal $J/vp-[0-9a-f-]+\\.vpj \\(committed\\)\$" \
	"apply >/dev/full: one line"
fcheck "$V" "$W/post.snap" "apply >/dev/full: the apply is complete"
assert_eq "$(journal_state "$J")" committed "apply >/dev/full: journal committed"

fresh_copy "$P" "$V"
NRUN=$((NRUN + 1))
ERR=$W/run$NRUN.err
"$VP" check -o $OWN "$V" >/dev/full 2>"$ERR"
RC=$?
expect_rc 1 "check >/dev/full: its own status wins over 8"
one_line "^volperm: cannot write to standard output: No space left on device\$" "check >/dev/full: one line"

# ---- exec: the command gets the signal set-up volperm was given ---------------------------
S=$W/small
mkdir -p "$S/d" && : >"$S/d/f"
want=$(grep -E '^Sig(Ign|Blk):' /proc/self/status | tr '\n' ' ')
vp_expect 0 "exec" exec -q --no-journal -o $OWN --user $OWN "$S" -- grep -E '^Sig(Ign|Blk):' /proc/self/status
got=$(tr '\n' ' ' <"$OUT")
assert_eq "$got" "$want" "exec: the command's ignored and blocked signals are those volperm was started with"
assert_match '^SigIgn:[[:space:]]+[0-9a-f]*[0-9a-f]{3}$' "$(grep SigIgn "$OUT")" "exec: SigIgn read"
ign=$(awk '$1 == "SigIgn:" { print $2 }' "$OUT")
assert_eq "$(((16#$ign >> 12) & 1))" 0 "exec: SIGPIPE is not ignored in the command ($ign)"
# nohup-like: SIGHUP and SIGPIPE ignored by volperm's parent stay ignored.
want=$( (trap '' HUP PIPE; exec grep -E '^SigIgn:' /proc/self/status) )
NRUN=$((NRUN + 1))
OUT=$W/run$NRUN.out
ERR=$W/run$NRUN.err
(trap '' HUP PIPE; exec "$VP" exec -q --no-journal -o $OWN --user $OWN "$S" -- grep -E '^SigIgn:' /proc/self/status) >"$OUT" 2>"$ERR"
RC=$?
expect_rc 0 "exec with SIGHUP and SIGPIPE ignored"
assert_eq "$(cat "$OUT")" "$want" "exec: an inherited ignored SIGHUP stays ignored"

finish
