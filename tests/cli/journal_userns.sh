#!/usr/bin/env bash
# Journals know the user namespace they were written in (issue 13, point 4).
# An apply run inside a user namespace whose map is not the identity
# (nsexec.py: "0 0 1,1 100001 65535", the rootless layout: container 0 is
# the user, here host root so that one journal directory serves both sides,
# container 1.. the subordinate range) records the namespace's ids. Then,
# on the host:
#   - journal show prints the uid and gid map, journal list --json carries
#     them;
#   - journal export prints host ids (owner, group, ACL qualifiers), and
#     setfacl --restore of that export on a copy of the changed tree gives
#     back exactly the tree before the apply;
#   - rollback refuses (exit 2, one line naming the journal), and changes
#     nothing; rollback --force translates and restores exactly;
#   - recover (and recover --forward) of a hot one refuses, changing nothing;
# and inside the same kind of namespace: rollback and recover restore
# exactly, export prints the namespace's own ids. A journal written on the host without
# --userns is still version 2 and shows "initial namespace"; --uid-map is
# recorded and shown. An id the recorded map cannot translate (an ACL
# qualifier that `unshare --map-root-user` cannot map) makes export refuse,
# naming the id and the journal, and rollback --force refuse before any
# change. Skips (77) only when user namespaces are unavailable.
. "$(dirname "$0")/lib.sh"
setup
need_cmd getfacl setfacl cp od

NSEXEC=$REPO/tests/security/nsexec.py
M="0 0 1,1 100001 65535"
if ! python3 "$NSEXEC" "$M" "$M" true 2>"$W/ns.err"; then
	skip "user namespaces are not available here ($(head -c 200 "$W/ns.err")): journals written in one cannot be tested"
fi
# inns ARGS...: volperm inside the namespace, like vp.
inns() {
	NRUN=$((NRUN + 1))
	OUT=$W/run$NRUN.out
	ERR=$W/run$NRUN.err
	python3 "$NSEXEC" "$M" "$M" "$VP" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	say "+ [${SECONDS}s] (in namespace $M) volperm $(printf '%q ' "$@")-> exit $RC"
	_sanitizer_check
}
one_line_err() {
	assert_eq "$(wc -l <"$ERR")" 1 "$1: one line on stderr"
}

# A tree whose ids are all mapped in the namespace: host 100007:100008 is
# 7:8 there; a named user ACL entry (host 100005 = 5) and a default group
# entry (host 100006 = 6); a setgid directory.
J=$(new_jdir)
V=$W/vol
mkdir -p "$V/d/e" "$V/s"
printf x >"$V/a"
printf y >"$V/d/b"
printf z >"$V/d/e/c"
chmod 2775 "$V/s"
chown -R 100007:100008 "$V"
setfacl -m u:100005:r "$V/a"
setfacl -d -m g:100006:rx "$V/d"
snap "$V" "$W/s0"

# --- apply inside the namespace ----------------------------------------------------
inns apply -q --owner 1001:1001 --grant u:1002:rwX --journal-dir "$J" "$V"
expect_rc 0 "apply inside the namespace"
assert_eq "$(owner_of "$V/d/b")" "101001:101001" "on disk: container 1001 is host 101001"
snap "$V" "$W/s1"
JF=$(newest_journal "$J")
assert_eq "$(od -An -tu4 -j8 -N4 "$JF" | tr -d ' ')" 3 "a journal with a map is version 3"

# --- on the host: show, list --json, export ---------------------------------------
vp_expect 0 "journal show on the host" journal show --journal-dir "$J" "$V"
assert_file_match '^uid map: +0 0 1, 1 100001 65535$' "$OUT" "show prints the uid map"
assert_file_match '^gid map: +0 0 1, 1 100001 65535$' "$OUT" "show prints the gid map"
assert_file_match '^userns: +none' "$OUT" "show: no --userns was given"
assert_file_match ' 7:8->1001:1001 ' "$OUT" "show lists the namespace's ids, as recorded"
vp_expect 0 "journal list --json" journal list --json --journal-dir "$J" "$V"
if python3 - "$OUT" <<'PY'
import json, sys
o = [json.loads(l) for l in open(sys.argv[1])]
want = [[0, 0, 1], [1, 100001, 65535]]
sys.exit(0 if len(o) == 1 and o[0]["uid_map"] == want and o[0]["gid_map"] == want and o[0]["userns"] is None else 1)
PY
then pass "list --json carries uid_map and gid_map"; else fail "list --json: $(head -c 400 "$OUT")"; fi

vp_expect 0 "journal export on the host" journal export --journal-dir "$J" "$V"
cp "$OUT" "$W/export.facl"
assert_file_match '^# owner: 100007$' "$OUT" "export: the owner is the host uid (100007, not 7)"
assert_file_match '^# group: 100008$' "$OUT" "export: the group is the host gid"
assert_file_match '^user:100005:r--$' "$OUT" "export: the ACL qualifier is the host uid"
assert_file_match '^default:group:100006:r-x$' "$OUT" "export: the default ACL qualifier is the host gid"
assert_file_nomatch '^# (owner|group): [0-9]{1,4}$' "$OUT" "export: no namespace-relative id left"
assert_file_match '^# ids: host ids' "$OUT" "export says its ids are host ids"
# The proof: setfacl --restore of the export, on a copy of the changed tree.
cp -a "$V" "$W/copy"
(cd "$W/copy" && setfacl --restore="$W/export.facl") 2>"$W/setfacl.err"
assert_eq "$?" 0 "setfacl --restore of the export"
snap "$W/copy" "$W/scopy"
snap_eq "$W/s0" "$W/scopy" "setfacl --restore of the host export gives back the tree before the apply"
vp_expect 0 "journal export --format json on the host" journal export --format json --journal-dir "$J" "$V"
if python3 - "$OUT" <<'PY'
import json, sys
o = [json.loads(l) for l in open(sys.argv[1])]
h, e = o[0], o[1:]
ok = h["ids"] == "host" and h["uid_map"] == [[0, 0, 1], [1, 100001, 65535]]
ok &= len(e) > 0 and all(x["uid"] == 100007 and x["gid"] == 100008 and x["new_uid"] == 101001 for x in e)
sys.exit(0 if ok else 1)
PY
then pass "export --format json: host ids, the maps in the header record"; else fail "export json: $(head -c 600 "$OUT")"; fi

# --- rollback on the host: refused, then --force -----------------------------------
vp rollback --journal-dir "$J" "$V"
expect_rc 2 "rollback on the host of a journal written in the namespace"
one_line_err "rollback refusal"
assert_file_match 'written in a user namespace with a different id map.*run the rollback there.*--force' "$ERR" "the refusal says why and what to do"
assert_file_match "$(basename "$JF")" "$ERR" "the refusal names the journal"
snap "$V" "$W/s2"
snap_eq "$W/s1" "$W/s2" "the refused rollback changed nothing"
vp rollback --journal "$JF" "$V"
expect_rc 2 "rollback --journal FILE on the host: refused too"
vp rollback --force --journal-dir "$J" "$V"
expect_rc 0 "rollback --force on the host translates the journal's ids"
snap "$V" "$W/s3"
snap_eq "$W/s0" "$W/s3" "rollback --force restored the tree exactly"

# --- the same kind of namespace: rollback there, export there ----------------------
inns apply -q --owner 1001:1001 --chmod g+w --journal-dir "$J" "$V"
expect_rc 0 "second apply inside the namespace"
snap "$V" "$W/s4"
snap_ne "$W/s0" "$W/s4" "the second apply changed the tree"
inns journal export --journal-dir "$J" "$V"
expect_rc 0 "export inside the same namespace"
assert_file_match '^# owner: 7$' "$OUT" "export inside: the namespace's own ids (right for a restore there)"
inns rollback --journal-dir "$J" "$V"
expect_rc 0 "rollback inside the same kind of namespace"
snap "$V" "$W/s5"
snap_eq "$W/s0" "$W/s5" "rollback inside the namespace restored the tree exactly"

# --- recover: a hot journal written in the namespace ------------------------------
# Cut the COMMIT mark (the last 32 bytes): the journal is active and nobody
# holds it, i.e. hot, as after a crash of the apply.
inns apply -q --owner 1001:1001 --journal-dir "$J" "$V"
expect_rc 0 "third apply inside the namespace"
snap "$V" "$W/s7"
JF3=$(newest_journal "$J")
truncate -s -32 "$JF3"
vp recover --journal-dir "$J" "$V"
expect_rc 2 "recover on the host of a hot journal written in the namespace"
one_line_err "recover refusal"
assert_file_match 'different id map.*--force' "$ERR" "recover: the refusal says where to run it"
vp recover --forward --journal-dir "$J" "$V"
expect_rc 2 "recover --forward on the host: refused too"
one_line_err "recover --forward refusal"
snap "$V" "$W/s8"
snap_eq "$W/s7" "$W/s8" "the refused recoveries changed nothing"
inns recover --journal-dir "$J" "$V"
expect_rc 0 "recover inside the same kind of namespace"
snap "$V" "$W/s9"
snap_eq "$W/s0" "$W/s9" "recover inside the namespace restored the tree exactly"

# --- the host itself: version 2, initial namespace; --uid-map recorded -------------
J2=$(new_jdir)
vp_expect 0 "apply on the host" apply -q --owner 100007:100008 --chmod g+w --journal-dir "$J2" "$V"
JF2=$(newest_journal "$J2")
assert_eq "$(od -An -tu4 -j8 -N4 "$JF2" | tr -d ' ')" 2 "a host journal without --userns is still version 2"
vp_expect 0 "journal show of the host journal" journal show --journal-dir "$J2" "$V"
assert_file_match '^uid map: +initial namespace$' "$OUT" "show: initial namespace"
vp_expect 0 "rollback of the host journal" rollback -q --journal-dir "$J2" "$V"
vp_expect 0 "apply --uid-map on the host" apply -q --uid-map 0:100001:65535 --owner 1001:1001 --journal-dir "$J2" "$V"
assert_eq "$(owner_of "$V/d/b")" "101002:101002" "--uid-map 0:100001:65535: container 1001 is host 101002"
vp_expect 0 "journal show" journal show --journal-dir "$J2" "$V"
assert_file_match '^userns: +--uid-map \(uid 0:100001:65535; gid 0:100001:65535\)$' "$OUT" "show prints the --uid-map translation"
assert_file_match '^uid map: +initial namespace$' "$OUT" "written on the host: initial namespace"
vp_expect 0 "rollback on the host of the --uid-map journal (same namespace)" rollback -q --journal-dir "$J2" "$V"
snap "$V" "$W/s6"
snap_eq "$W/s0" "$W/s6" "tree as before"

# --- an id the recorded map cannot translate --------------------------------------
# `unshare --map-root-user` as root maps 0 to 0 only. A root-owned file
# with a named ACL entry for host uid 5000 reads there with an id that has
# no host id (the kernel gives it as 4294967295 in the ACL value; an owner
# it cannot map shows as 65534). A chmod there journals that ACL.
V3=$W/vol3
J3=$(new_jdir)
mkdir -p "$V3/d"
printf a >"$V3/a"
setfacl -m u:5000:r "$V3/a"
snap "$V3" "$W/s10"
NRUN=$((NRUN + 1))
unshare --user --map-root-user "$VP" apply -q --chmod g+w --journal-dir "$J3" "$V3" >"$W/u.out" 2>"$W/u.err"
say "+ (unshare --user --map-root-user) volperm apply --chmod g+w: exit $?"
if [ "$(count_journals "$J3")" = 1 ]; then
	JF4=$(newest_journal "$J3")
	snap "$V3" "$W/s11"
	vp journal export --journal-dir "$J3" "$V3"
	expect_rc 2 "export of a journal with an id the recorded map cannot translate"
	one_line_err "export refusal"
	assert_file_match 'records uid (65534|4294967295), which the id map of the user namespace it was written in does not map to a host id' "$ERR" "the refusal names the id"
	assert_file_match "$(basename "$JF4")" "$ERR" "the refusal names the journal"
	assert_eq "$(wc -c <"$OUT")" 0 "nothing on stdout: no half export"
	vp rollback --force --journal "$JF4" "$V3"
	expect_rc 2 "rollback --force of a journal with an id that has none here"
	one_line_err "rollback --force refusal"
	assert_file_match 'records uid (65534|4294967295), which has no id in this user namespace' "$ERR" "rollback --force names the id"
	snap "$V3" "$W/s12"
	snap_eq "$W/s11" "$W/s12" "the refused rollback --force changed nothing"
	NRUN=$((NRUN + 1))
	unshare --user --map-root-user "$VP" rollback -q --journal-dir "$J3" "$V3" >"$W/u2.out" 2>"$W/u2.err"
	RC=$?
	expect_rc 0 "rollback inside unshare --map-root-user"
	snap "$V3" "$W/s13"
	snap_eq "$W/s10" "$W/s13" "rollback inside unshare --map-root-user restored the tree exactly"
else
	say "# the apply under --map-root-user wrote no journal ($(head -c 200 "$W/u.err")): the untranslatable-id refusal is covered by the unit tests only"
fi
finish
