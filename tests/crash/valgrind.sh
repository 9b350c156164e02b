#!/usr/bin/env bash
# Every command on a small tree under valgrind memcheck: no memory errors,
# no definite/indirect/possible leaks (--error-exitcode=99), and the results
# still right (snapshots).
#
# The tree has hostile names, ACLs, default ACLs, setuid/setgid files and
# capabilities. Runs: plan (human, --list, --json), check, apply --list,
# journal list/show/export (getfacl, json), rollback; then a hot journal
# (the fault build SIGKILLed half way, or a SIGKILLed release build when
# there is none) and recover, recover --forward, apply --recover, rollback;
# and a few refusals (bad owner, hot journal, missing path).
#
# Note: valgrind does not know openat2(2) (syscall 437) and fails it with
# ENOSYS, so under valgrind volperm pins entries with its fallback (one
# O_NOFOLLOW openat per path component): this test covers that path too.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/crashlib.sh"
setup
need_cmd valgrind cp setfacl setcap
snapd_start

P=$W/pristine
mktree "$P" 150 --seed 9 --acl-every 6 --default-acl-every 3 --setid 5 --caps 2 \
	--hardlink-every 20 --symlink-every 15 --hostile
fsnap "$P" "$W/pre.snap"
V=$W/v
fresh_copy "$P" "$V"
vp_expect 0 "clean apply (no valgrind)" apply -q -o 1001:1001 --journal-dir "$(new_jdir)" "$V"
fsnap "$V" "$W/post.snap"
fresh_copy "$P" "$V"
J=$(new_jdir)

# shellcheck disable=SC2054 # commas inside valgrind's option values
VG=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible
	--errors-for-leak-kinds=definite,indirect,possible --track-fds=no)
VGRUNS=0
# vg WANT DESC ARGS...: run volperm ARGS under valgrind; exit status WANT
# and a clean valgrind log.
vg() {
	local want=$1 desc=$2 log
	shift 2
	VGRUNS=$((VGRUNS + 1))
	log=$W/valgrind.$VGRUNS.log
	NRUN=$((NRUN + 1))
	OUT=$W/run$NRUN.out
	ERR=$W/run$NRUN.err
	"${VG[@]}" --log-file="$log" "$VP" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	say "+ valgrind volperm $(printf '%q ' "$@")-> exit $RC"
	# valgrind's complaint about openat2 is not a volperm error
	if grep -v -e 'unhandled amd64-linux syscall: 437' -e 'write your own handler' \
		-e 'README_MISSING_SYSCALL_OR_IOCTL' -e 'we consider this a bug' \
		-e 'valgrind.org/support/bug_reports' "$log" | grep -q '^==[0-9]*=='; then
		fail "$desc: valgrind reports:"
		grep '^==[0-9]*==' "$log" | head -n 40 | sed 's/^/    /'
	elif [ $RC = 99 ]; then
		fail "$desc: valgrind error exit 99"
	else
		pass "$desc: valgrind clean"
	fi
	expect_rc "$want" "$desc"
}

vg 0 "plan" plan -o 1001:1001 --journal-dir "$J" "$V"
vg 0 "plan --list" plan --list -o 1001:1001 --journal-dir "$J" "$V"
vg 0 "plan --json" plan --json -o 1001:1001 --journal-dir "$J" "$V"
vg 1 "check" check -o 1001:1001 --journal-dir "$J" "$V"
vg 2 "bad owner" plan -o 4294967295 "$V"
vg 2 "missing path" plan -o 1001:1001 "$W/no-such-dir"
vg 0 "apply --list" apply --list -o 1001:1001 --journal-dir "$J" "$V"
fcheck "$V" "$W/post.snap" "apply under valgrind == clean apply"
vg 0 "journal list" journal list --journal-dir "$J" "$V"
vg 0 "journal show" journal show --journal-dir "$J" "$V"
vg 0 "journal export --format getfacl" journal export --format getfacl --journal-dir "$J" "$V"
vg 0 "journal export --format json" journal export --format json --journal-dir "$J" "$V"
vg 0 "rollback" rollback --journal-dir "$J" "$V"
fcheck "$V" "$W/pre.snap" "rollback under valgrind == pre-apply"

# hot journals
hot() {
	local n d
	fresh_jdir "$J"
	if [ -x "$VPF" ]; then
		# half way through the chowns
		VOLPERM_FAULT_TRACE=1 "$VPF" apply -q -o 1001:1001 --journal-dir "$J" "$V" >/dev/null 2>"$W/tr"
		"$VP" rollback -q --journal-dir "$J" "$V" >/dev/null 2>&1 || die "rollback"
		fresh_jdir "$J"
		n=$(awk '$3 == "chown" { c[++k] = $2 } END { print c[int(k / 2)] }' "$W/tr")
		{ VOLPERM_FAULT_AFTER=$n "$VPF" apply -q -o 1001:1001 --journal-dir "$J" "$V"; } >/dev/null 2>&1
	else
		for d in 0.02 0.01 0.005 0.04; do
			"$VP" apply -q -o 1001:1001 --journal-dir "$J" "$V" >/dev/null 2>&1 &
			sleep $d
			kill -KILL $! 2>/dev/null
			{ wait $!; } 2>/dev/null
			[ "$(journal_state "$J")" = active ] && break
			"$VP" rollback -q --journal-dir "$J" "$V" >/dev/null 2>&1
			fresh_jdir "$J"
		done
	fi
	[ "$(journal_state "$J")" = active ]
}
if hot; then
	vg 4 "plan with a hot journal" plan -o 1001:1001 --journal-dir "$J" "$V"
	vg 0 "journal show (hot)" journal show --journal-dir "$J" "$V"
	vg 0 "recover" recover --journal-dir "$J" "$V"
	fcheck "$V" "$W/pre.snap" "recover under valgrind == pre-apply"
	hot || die "no hot journal"
	vg 0 "recover --forward" recover --forward --journal-dir "$J" "$V"
	fcheck "$V" "$W/post.snap" "recover --forward under valgrind == clean apply"
	vg 0 "rollback after recover --forward" rollback --journal-dir "$J" "$V"
	fcheck "$V" "$W/pre.snap" "... == pre-apply"
	hot || die "no hot journal"
	vg 0 "apply --recover" apply --recover -o 1001:1001 --journal-dir "$J" "$V"
	fcheck "$V" "$W/post.snap" "apply --recover under valgrind == clean apply"
	vg 0 "rollback" rollback --journal-dir "$J" "$V"
	fcheck "$V" "$W/pre.snap" "... == pre-apply"
else
	say "SKIP-PART: could not make a hot journal; recover not run under valgrind"
fi
say "# valgrind: $VGRUNS volperm runs under memcheck"
finish
