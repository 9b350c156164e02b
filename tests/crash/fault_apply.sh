#!/usr/bin/env bash
# Fault injection at every mutating step of `volperm apply`.
#
# A 60-entry tree with symlinks, hard links, access and default ACLs,
# setuid/setgid files, a setgid dir and file capabilities. A traced apply
# (fault build, VOLPERM_FAULT_TRACE=1) counts its mutating steps: journal
# header write/fsync, directory fsync, each batch's journal write and
# fdatasync, each entry's chown / ACL setxattr / chmod, the syncfs, and the
# commit mark's write and fdatasync. Then, for every N from 1 to that total,
# on a fresh copy of the tree, the fault build is SIGKILLed right after step
# N, and:
#
#   back:    every changed entry has a journal record (write-ahead) and, for
#            the chown-only policy, every entry is exactly before or after;
#            plan exits 4 (hot journal); `volperm recover` (release build)
#            gives back exactly the pre-apply snapshot. Once the commit mark
#            is in the file the journal is committed instead: recover has
#            nothing to do, the tree is the clean-apply result, and
#            `rollback` gives back the pre-apply snapshot.
#   forward: `volperm recover --forward` gives exactly the snapshot of a
#            clean apply; then `volperm rollback` gives back the pre-apply
#            snapshot (the journal that recover --forward completed is a
#            full undo record).
#
# Configurations (CRASH_FAULT_CONFIGS selects some by name, space-separated):
#   owner        --owner 1001:1001, default batch (one batch for this tree)
#   owner-b4     the same in batches of 4 entries (RLIMIT_NOFILE 40: volperm
#                sizes its batch to half the fd limit minus 16), so that
#                crashes land between batches too
#   multi        --owner 1001 --fsgroup 3001 --chmod g-w,o-rwx
#                --grant u:2001:rwX: up to four steps per entry (chown, access
#                ACL, default ACL, chmod), so crashes land inside one entry's
#                change
#
# CRASH_FAULT_EVERY=K (default 1) kills after every K-th step only (and the
# last three), for a shorter run (the @slowfs CI entry).
#
# Parallel (--jobs 4, chown-only policy, batches of 4 per worker on a
# 600-entry tree): the steps of one run are not those of the next, so a kill
# after step N lands wherever the workers are then, or not at all when that
# run has fewer steps. For N spread over the traced run's steps
# (CRASH_FAULT_PAR_POINTS of them, default 60): a killed run
# recovers back to the pre-apply snapshot and forward to the clean apply; a
# run that finished is the clean apply. Every killed journal is checked for
# write-ahead (every changed entry journaled) first.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/crashlib.sh"
setup
need_cmd cp chown setfacl getfacl setcap
need_fault
# Step numbers must mean the same thing in the traced run and in each
# killed run, which needs one worker: with --jobs N the workers' steps
# interleave differently every time. The parallel path has its own section
# below (and sigkill_torture, enospc, powerloss and concurrency run with the
# default --jobs).
export VOLPERM_JOBS=1
snapd_start
crash_fs 256

P=$FSDIR/pristine
mktree "$P" "${FAULT_TREE_ARGS[@]}"
fsnap "$P" "$W/pre.snap"
# The tree must hold every kind of entry the test claims to cover.
kinds=$(awk -F'\t' '
	$2 == "symlink" { s++ }
	$2 == "file" && $5 ~ /^[4-7]/ { su++ }
	$2 == "file" && $5 ~ /^[2367]/ { sg++ }
	$2 == "dir" && $5 ~ /^[2367]/ { sgd++ }
	$6 != "-" { acl++ }
	$7 != "-" { dacl++ }
	$8 != "-" { caps++ }
	END { printf "symlinks=%d setuid=%d setgid=%d setgid-dirs=%d acl=%d default-acl=%d caps=%d",
	      s, su, sg, sgd, acl, dacl, caps }' "$W/pre.snap")
hardlinks=$(find "$P" -type f -links +1 | wc -l)
say "# tree: $(wc -l <"$W/pre.snap") entries, $kinds hardlinked-files=$hardlinks"
assert_match 'symlinks=[1-9].* setuid=[1-9].* setgid=[1-9].* setgid-dirs=[1-9].* acl=[1-9].* default-acl=[1-9].* caps=[1-9]' \
	"$kinds" "the tree has symlinks, setuid, setgid, a setgid dir, ACLs, default ACLs and capabilities"
assert_ne "$hardlinks" 0 "the tree has hard links"

# name | fd limit (empty: unchanged) | midstate check | policy
ALL_CONFIGS=(
	"owner||strict|-o 1001:1001"
	"owner-b4|40|strict|-o 1001:1001"
	"multi||journal|-o 1001 --fsgroup 3001 --chmod g-w,o-rwx --grant u:2001:rwX"
)
want=" ${CRASH_FAULT_CONFIGS:-owner owner-b4 multi} "

total_points=0
for c in "${ALL_CONFIGS[@]}"; do
	IFS='|' read -r cfg nofile midmode policy <<<"$c"
	case $want in *" $cfg "*) ;; *) continue ;; esac
	read -r -a POL <<<"$policy"
	# the fault-build apply, in a subshell with this config's fd limit
	fapply() {
		if [ -n "$nofile" ]; then
			(ulimit -n "$nofile" && "$VPF" apply -q "${POL[@]}" "$@")
		else
			"$VPF" apply -q "${POL[@]}" "$@"
		fi
	}

	# The reference result: a clean release-build apply (for the chown-only
	# policy cross-checked against chown -R -h, which clears setuid/setgid
	# and capabilities too).
	post=$W/post.$cfg.snap
	fresh_copy "$P" "$FSDIR/clean"
	vp_expect 0 "[$cfg] clean apply (release build)" apply -q "${POL[@]}" --journal-dir "$(fs_jdir)" "$FSDIR/clean"
	fsnap "$FSDIR/clean" "$post"
	snap_ne "$W/pre.snap" "$post" "[$cfg] the apply changes the tree"
	if [ "$policy" = "-o 1001:1001" ]; then
		fresh_copy "$P" "$FSDIR/oracle"
		chown -R -h 1001:1001 "$FSDIR/oracle" || die "chown -R -h"
		fcheck "$FSDIR/oracle" "$post" "[$cfg] clean apply == chown -R -h 1001:1001"
	fi

	V=$FSDIR/v J=$FSDIR/j
	fresh_copy "$P" "$V"
	fresh_jdir "$J"
	VOLPERM_FAULT_TRACE=1 fapply --journal-dir "$J" "$V" >/dev/null 2>"$W/trace.$cfg"
	rc=$?
	assert_eq "$rc" 0 "[$cfg] traced full apply (fault build) exits 0"
	fcheck "$V" "$post" "[$cfg] fault build without a fault == clean apply"
	mapfile -t STEP < <(trace_steps "$W/trace.$cfg")
	STEP=("" "${STEP[@]}") # 1-based, as the trace numbers them
	total=$((${#STEP[@]} - 1))
	snapd_req order "$W/trace.$cfg" apply
	if [ "$SNAPD_STATUS" = ok ]; then
		pass "[$cfg] step order keeps write-ahead: header synced, every change after its batch's fdatasync, syncfs before the commit mark"
	else
		fail "[$cfg] step order:"
		_snapd_show
	fi
	# The commit mark is the journal-write right after syncfs: from that
	# step on, the file holds the mark (a SIGKILL loses no written data).
	commit=0
	for ((i = 1; i <= total; i++)); do
		[ "${STEP[$i]}" = syncfs ] && commit=$((i + 1))
	done
	[ "$commit" -gt 0 ] || die "[$cfg] no syncfs step in the trace"
	say "# [$cfg] $total steps: $(trace_steps "$W/trace.$cfg" | sort | uniq -c | awk '{ printf "%s %s, ", $1, $2 }')commit mark at step $commit"
	[ "$cfg" = owner-b4 ] && { assert_true "[$cfg] several batches ($(grep -c ' journal-fdatasync$' "$W/trace.$cfg") journal syncs)" \
		test "$(grep -c ' journal-fdatasync$' "$W/trace.$cfg")" -gt 4; }

	for mode in back forward; do
		bad=0 s0=$FAULT_SKIPPED
		for ((n = 1; n <= total; n++)); do
			fault_point "$n" "$total" || continue
			what="[$cfg/$mode] killed after step $n/$total (${STEP[$n]})"
			fresh_copy "$P" "$V"
			fresh_jdir "$J"
			{ VOLPERM_FAULT_AFTER=$n fapply --journal-dir "$J" "$V"; } >/dev/null 2>"$W/fault.err"
			rc=$?
			if [ $rc -ne 137 ]; then
				fail "$what: the fault build exited $rc, expected 137 (SIGKILL)"
				bad=$((bad + 1))
				continue
			fi
			f0=$FAILS
			state=$(journal_state "$J")
			if [ "$n" -lt "$commit" ]; then
				[ "$state" = active ] || fail "$what: journal state '$state', expected active"
			else
				[ "$state" = committed ] || fail "$what: journal state '$state', expected committed"
			fi
			if [ $mode = back ]; then
				if [ "$n" -lt "$commit" ]; then
					fmidstate "$V" "$W/pre.snap" "$post" "$(newest_journal "$J")" \
						"$what: every change journaled$([ "$midmode" = strict ] && echo ', every entry before or after')" "$midmode"
					vp_expect 4 "$what: plan refuses (hot journal)" plan "${POL[@]}" --journal-dir "$J" "$V"
					vp_expect 0 "$what: recover" recover --journal-dir "$J" "$V"
					fcheck "$V" "$W/pre.snap" "$what: recover == pre-apply snapshot"
				else
					vp_expect 0 "$what: recover (nothing to do)" recover --journal-dir "$J" "$V"
					assert_file_match "nothing.*to recover" "$OUT" "$what: recover says nothing to recover"
					fcheck "$V" "$post" "$what: committed tree == clean apply"
					vp_expect 0 "$what: rollback of the committed journal" rollback --journal-dir "$J" "$V"
					fcheck "$V" "$W/pre.snap" "$what: rollback == pre-apply snapshot"
				fi
				assert_eq "$(journal_state "$J")" rolled-back "$what: journal ends rolled-back"
			else
				vp_expect 0 "$what: recover --forward" recover --forward --journal-dir "$J" "$V"
				fcheck "$V" "$post" "$what: recover --forward == clean apply snapshot"
				assert_eq "$(journal_state "$J")" committed "$what: journal ends committed"
				vp_expect 0 "$what: rollback after recover --forward" rollback --journal-dir "$J" "$V"
				fcheck "$V" "$W/pre.snap" "$what: ... == pre-apply snapshot"
			fi
			[ $FAILS -gt $f0 ] && bad=$((bad + 1))
		done
		total_points=$((total_points + total))
		say "# [$cfg/$mode] $((total - FAULT_SKIPPED + s0)) crash points, $bad with a failure"
	done
done
rm -rf "$FSDIR/oracle" "$FSDIR/clean"

# --- parallel: --jobs 4 -------------------------------------------------------
PP=$FSDIR/pmaster
mktree "$PP" 600 --seed 33 --setid 3 --caps 2 --hardlink-every 20 --acl-every 7
fsnap "$PP" "$W/ppre.snap"
fresh_copy "$PP" "$FSDIR/pclean"
vp_expect 0 "[jobs 4] clean apply" apply -q --jobs 4 -o 1001:1001 --journal-dir "$(fs_jdir)" "$FSDIR/pclean"
fsnap "$FSDIR/pclean" "$W/ppost.snap"
fresh_copy "$PP" "$FSDIR/poracle"
chown -R -h 1001:1001 "$FSDIR/poracle" || die "chown -R -h"
fcheck "$FSDIR/poracle" "$W/ppost.snap" "[jobs 4] clean apply == chown -R -h 1001:1001"
pfapply() { (ulimit -n 120 && "$VPF" apply -q --jobs 4 -o 1001:1001 "$@"); }
V=$FSDIR/pv J=$FSDIR/pj
fresh_copy "$PP" "$V"
fresh_jdir "$J"
VOLPERM_FAULT_TRACE=1 pfapply --journal-dir "$J" "$V" >/dev/null 2>"$W/trace.par"
assert_eq "$?" 0 "[jobs 4] traced apply (fault build) exits 0"
fcheck "$V" "$W/ppost.snap" "[jobs 4] fault build without a fault == clean apply"
ptotal=$(trace_steps "$W/trace.par" | wc -l)
psyncs=$(grep -c ' journal-fdatasync$' "$W/trace.par")
assert_true "[jobs 4] several journal batches ($psyncs syncs in $ptotal steps)" test "$psyncs" -gt 3
ppoints=${CRASH_FAULT_PAR_POINTS:-60}
stride=$(((ptotal + ppoints - 1) / ppoints))
killed=0 finished=0 bad=0
for ((n = 1; n <= ptotal; n += stride)); do
	mode=$([ $(((n / stride) % 2)) = 0 ] && echo back || echo forward)
	what="[jobs 4/$mode] kill after step $n of about $ptotal"
	fresh_copy "$PP" "$V"
	fresh_jdir "$J"
	{ VOLPERM_FAULT_AFTER=$n pfapply --journal-dir "$J" "$V"; } >/dev/null 2>"$W/fault.err"
	rc=$?
	f0=$FAILS
	if [ $rc -eq 0 ]; then
		finished=$((finished + 1))
		fcheck "$V" "$W/ppost.snap" "$what: not reached, the run finished: == clean apply"
	elif [ $rc -ne 137 ]; then
		fail "$what: the fault build exited $rc"
	else
		killed=$((killed + 1))
		state=$(journal_state "$J")
		if [ "$state" = active ]; then
			fmidstate "$V" "$W/ppre.snap" "$W/ppost.snap" "$(newest_journal "$J")" \
				"$what: every change journaled, every entry before or after" strict
		fi
		if [ $mode = back ]; then
			vp_expect 0 "$what: recover" recover --journal-dir "$J" "$V"
			if [ "$state" = committed ]; then
				fcheck "$V" "$W/ppost.snap" "$what: committed: == clean apply"
				vp_expect 0 "$what: rollback" rollback --journal-dir "$J" "$V"
			fi
			fcheck "$V" "$W/ppre.snap" "$what: back to the pre-apply snapshot"
		else
			if [ "$state" = committed ]; then
				vp_expect 0 "$what: recover --forward (nothing to do)" recover --forward --journal-dir "$J" "$V"
			else
				vp_expect 0 "$what: recover --forward" recover --forward --jobs 4 --journal-dir "$J" "$V"
			fi
			fcheck "$V" "$W/ppost.snap" "$what: forward == clean apply"
			vp_expect 0 "$what: rollback after recover --forward" rollback --journal-dir "$J" "$V"
			fcheck "$V" "$W/ppre.snap" "$what: ... == pre-apply snapshot"
		fi
	fi
	[ $FAILS -gt $f0 ] && bad=$((bad + 1))
done
assert_true "[jobs 4] most kill points were reached ($killed killed, $finished finished)" test "$killed" -gt "$finished"
say "# [jobs 4] $killed crash points, $finished runs finished first, $bad with a failure"
say "# fault_apply: $((total_points - FAULT_SKIPPED)) crash points covered (every step x {back, forward}, configurations:$want)"
[ "$FAULT_SKIPPED" = 0 ] || say "# fault_apply: CRASH_FAULT_EVERY=$CRASH_FAULT_EVERY: $FAULT_SKIPPED of them left out"
finish
