#!/usr/bin/env bash
# --if-root-mismatch / --fsgroup-policy on-root-mismatch after volperm's own
# interrupted runs: a SIGKILL at any point before the end leaves the root
# non-compliant (the root is changed last), so the next on-root-mismatch
# run walks the tree and finishes the job. Needs a fault-injection build
# (VOLPERM_FAULT, default build-fault/volperm; cmake
# -DVOLPERM_FAULT_INJECTION=ON), which SIGKILLs itself after mutating step
# VOLPERM_FAULT_AFTER=N; skipped without one.
. "$(dirname "$0")/../cli/lib.sh"
setup
# Every step N counted in a traced run must exist in the killed run: one
# worker (with --jobs N the number of journal syncs varies from run to run).
export VOLPERM_JOBS=1

VPF=${VOLPERM_FAULT:-$REPO/build-fault/volperm}
case $VPF in /*) ;; *) VPF=$PWD/$VPF ;; esac
[ -x "$VPF" ] || skip "no fault-injection build at $VPF (cmake -DVOLPERM_FAULT_INJECTION=ON; set VOLPERM_FAULT)"
probe=$W/probe
mkdir -p "$probe/t" "$probe/j" && chmod 0700 "$probe/j" && : >"$probe/t/f"
VOLPERM_FAULT_TRACE=1 "$VPF" apply -q -o 4242:4242 --no-journal "$probe/t" >/dev/null 2>"$probe/err"
grep -q '^fault-step 1 ' "$probe/err" || skip "$VPF is not a fault-injection build (no fault-step trace)"
"$VPF" --help 2>&1 | grep -q -- --if-root-mismatch || skip "$VPF predates --if-root-mismatch (rebuild it)"

J=$(new_jdir)
mktree "$W/master" 120 --seed 31 --uid 0 --gid 0 --mixed 0.3 --hardlink-every 30 --symlink-every 15

# steps POLICY...: the mutating steps of a full run (fault trace on a copy).
steps() {
	rm -rf "$W/count"
	cp -a "$W/master" "$W/count"
	VOLPERM_FAULT_TRACE=1 "$VPF" apply -q "$@" "$W/count" 2>&1 >/dev/null | grep -c '^fault-step '
}

# Root checks after a crash. With a journal the crash leaves it hot: every
# plan/check/apply refuses (exit 4) until it is recovered.
owner_not_done() { [ "$(owner_of "$1")" != 1001:1001 ]; }
fsgroup_not_done() {
	[ "$(stat -c %g "$1")" != 3000 ] || [ $((8#$(stat -c %a "$1") & 8#2770)) -ne $((8#2770)) ]
}
hot() { "$VP" check --owner 1001:1001 --journal-dir "$J" "$1" >/dev/null 2>&1; [ $? = 4 ]; }

# crash_then_redo NAME K ROOTCHECK -- APPLY-ARGS...: kill the fault build
# after step K; ROOTCHECK (a function of the tree) must hold: the root is
# not done yet, or the journal is hot. Then one on-root-mismatch run of the
# release build (with $REDO, e.g. --recover) must walk and finish, a full
# check agree, and the run after that skip.
crash_then_redo() {
	local name=$1 k=$2 rootcheck=$3
	shift 4
	local T=$W/t-$name-$k
	rm -rf "$T"
	cp -a "$W/master" "$T"
	local rc
	rc=$({ VOLPERM_FAULT_AFTER=$k "$VPF" apply -q "$@" "$T" >/dev/null 2>&1; echo $?; } 2>/dev/null)
	assert_eq "$rc" 137 "[$name K=$k] the fault build was SIGKILLed"
	assert_true "[$name K=$k] after the crash: $rootcheck" "$rootcheck" "$T"
	vp_expect 0 "[$name K=$k] on-root-mismatch run after the crash" apply "$@" $REDO --json "$T"
	assert_eq "$(jsum "$OUT" root_complies)" false "[$name K=$k] root_complies false: the crash is noticed"
	assert_true "[$name K=$k] the tree was walked" [ "$(jsum "$OUT" scanned)" -gt 0 ]
	vp_expect 0 "[$name K=$k] a full check agrees the tree is done" check $FULLCHECK --journal-dir "$J" "$T"
	vp_expect 0 "[$name K=$k] the next on-root-mismatch run" apply "$@" --json "$T"
	assert_eq "$(jsum "$OUT" scanned)" 0 "[$name K=$k] next run skips (scanned 0)"
}

# --owner --if-root-mismatch, without a journal (nothing hot is left).
REDO='' FULLCHECK="--owner 1001:1001"
# The trace of a full run ends: ..., chown of the root, syncfs.
n=$(steps --owner 1001:1001 --no-journal)
assert_true "owner, no journal: the run has several steps ($n)" [ "$n" -gt 10 ]
for k in 1 $((n / 2)) $((n - 2)); do
	crash_then_redo owner-nojournal "$k" owner_not_done -- --owner 1001:1001 --if-root-mismatch --no-journal
done

# --owner --if-root-mismatch with a journal: the crash leaves it hot, also
# when it comes after the root's own change and before the commit (the
# trace ends: chown of the root, syncfs, journal-write, journal-fdatasync);
# apply --recover rolls it back, and then the root no longer complies, so
# the tree must be walked and applied.
REDO=--recover
n=$(steps --owner 1001:1001 --journal-dir "$J")
for k in 1 $((n / 3)) $((n - 3)) $((n - 2)); do
	crash_then_redo owner-journal "$k" hot -- --owner 1001:1001 --if-root-mismatch --journal-dir "$J"
done

# --fsgroup on-root-mismatch, without a journal. The trace ends: chown of
# the root, chmod of the root, syncfs. A crash between the root's chown and
# chmod leaves it with the group but without the bits: still not compliant.
REDO='' FULLCHECK="--fsgroup 3000"
n=$(steps --fsgroup 3000 --no-journal)
for k in 2 $((n / 2)) $((n - 3)) $((n - 2)); do
	crash_then_redo fsgroup "$k" fsgroup_not_done -- --fsgroup 3000 --fsgroup-policy on-root-mismatch --no-journal
done

finish
