#!/usr/bin/env bash
# apply then rollback restores the tree exactly: uid, gid, mode incl.
# setuid/setgid, access and default ACLs, file capabilities, on files,
# dirs, symlinks, hard links and hostile names. A second rollback finds
# nothing to roll back (exit 2); apply + rollback works again after that.
. "$(dirname "$0")/lib.sh"
setup
need_cmd setfacl getfacl setcap getcap

J=$(new_jdir)
V=$W/vol
mktree "$V" 3000 --seed 21 --acl-every 5 --default-acl-every 4 --setid 5 --caps 4 --hostile --hardlink-every 60
snap "$V" "$W/before.snap"
# A second, independent oracle: getfacl's own dump (owner, group, flags, ACLs).
getfacl_dump() { (cd "$1" && getfacl -R -P -n . 2>/dev/null) >"$2"; }
getfacl_dump "$V" "$W/before.facl"
caps_before=$(getcap -r "$V" 2>/dev/null | sort)
[ "$(printf '%s\n' "$caps_before" | grep -c cap_net_raw)" = 4 ] || die "setcap did not give 4 files capabilities"
grep -q 'default:user:2000' "$W/before.facl" || die "no default ACLs in the tree (test setup)"

cycle() { # cycle N ROLLBACK-ARGS...: apply, check it changed, roll back, compare
	local n=$1
	shift
	vp_expect 0 "[$n] apply --owner 1001:1001" apply --owner 1001:1001 --journal-dir "$J" "$V"
	assert_file_match "journal: .*\.vpj.*committed" "$OUT" "[$n] apply names its journal, committed"
	snap "$V" "$W/applied$n.snap"
	snap_ne "$W/before.snap" "$W/applied$n.snap" "[$n] apply changed the tree"
	assert_eq "$(owner_of "$V/special/setid0")" 1001:1001 "[$n] setid0 chowned"
	assert_eq "$(mode_of "$V/special/setid0")" 0755 "[$n] setid0 lost setuid"
	assert_eq "$(getcap "$V/special/cap0")" "" "[$n] cap0 lost its capability"
	vp_expect 0 "[$n] rollback $*" rollback "$@"
	snap "$V" "$W/rolled$n.snap"
	snap_eq "$W/before.snap" "$W/rolled$n.snap" "[$n] rollback restored uid/gid/mode/ACLs/default ACLs/caps exactly"
	getfacl_dump "$V" "$W/rolled$n.facl"
	if cmp -s "$W/before.facl" "$W/rolled$n.facl"; then
		pass "[$n] getfacl -R dump identical after rollback"
	else
		fail "[$n] getfacl -R dump differs after rollback:"
		diff "$W/before.facl" "$W/rolled$n.facl" | head -n 20 | cat -v | sed 's/^/    /'
	fi
	assert_eq "$(getcap -r "$V" 2>/dev/null | sort)" "$caps_before" "[$n] getcap -r: capabilities restored"
	assert_eq "$(mode_of "$V/special/setid2")" 6755 "[$n] setuid+setgid restored (6755)"
}

cycle 1 --journal-dir "$J" "$V"
assert_eq "$(count_journals "$J")" 1 "one journal after one apply"

# Nothing left to roll back: exit 2 and nothing changes.
snap "$V" "$W/pre2.snap" --ctime
vp_expect 2 "second rollback: no journal to roll back" rollback --journal-dir "$J" "$V"
assert_nonempty "$ERR" "second rollback says why on stderr"
snap "$V" "$W/post2.snap" --ctime
snap_eq "$W/pre2.snap" "$W/post2.snap" "second rollback changed nothing (incl. ctime)"

# journal list shows the journal.
vp_expect 0 "journal list" journal list --journal-dir "$J" "$V"
assert_file_match "$(basename "$(newest_journal "$J")" .vpj)" "$OUT" "journal list names the journal"

# Re-apply after a rollback, roll back again (by PATH).
cycle 2 --journal-dir "$J" "$V"
# And once more, naming the journal file explicitly.
vp_expect 0 "[3] apply" apply --owner 1001:1001 --journal-dir "$J" "$V"
jf=$(newest_journal "$J")
vp_expect 0 "[3] rollback --journal FILE PATH" rollback --journal "$jf" "$V"
snap "$V" "$W/rolled3.snap"
snap_eq "$W/before.snap" "$W/rolled3.snap" "[3] rollback --journal FILE restored the tree exactly"
vp_expect 2 "[3] the same journal is not rolled back twice" rollback --journal "$jf" "$V"

# rollback with the journal dir from the environment.
VOLPERM_JOURNAL_DIR=$J vp_expect 0 "[4] apply (VOLPERM_JOURNAL_DIR)" apply --owner 1001:1001 "$V"
VOLPERM_JOURNAL_DIR=$J vp_expect 0 "[4] rollback (VOLPERM_JOURNAL_DIR)" rollback "$V"
snap "$V" "$W/rolled4.snap"
snap_eq "$W/before.snap" "$W/rolled4.snap" "[4] rollback restored the tree exactly"

finish
