#!/usr/bin/env bash
# Case 14: user namespaces. Inside `unshare --user --map-root-user` only
# uid/gid 0 are mapped: a target uid, gid, --map, --fsgroup, --grant or
# --revoke id that is not mapped gives one clear sentence before any change
# (exit 2, no journal, nothing changed; plan and check answer with one warning line). Mapped ids work: with an identity map of 0..1999 and with a
# shifted map (inside 0..65535 = outside 100000..165535, as rootless
# containers have), apply changes the tree to the right outside ids and
# rollback restores it. A file whose owner is not mapped cannot be changed:
# the apply stops and rolls back (exit 3), nothing changed.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup
need_cmd unshare
unshare --user --map-root-user true 2>/dev/null || skip "user namespaces are not available (unshare --user --map-root-user failed)"
NSEXEC=$SEC/nsexec.py
python3 "$NSEXEC" "0 0 1" "0 0 1" true || skip "cannot create a user namespace with explicit maps"

J=$(new_jdir)
V=$W/vol
mkdir -p "$V/d"
echo a >"$V/d/a"
echo b >"$V/b"
chown -R 0:0 "$V"
chmod 4755 "$V/b"
snap "$V" "$W/v0.snap" --ctime
unchanged() { local s=$W/u.$RANDOM.snap; snap "$1" "$s" --ctime; snap_eq "$2" "$s" "$3"; }

# inns KIND ARGS...: volperm inside a namespace; sets OUT ERR RC.
inns() {
	local kind=$1
	shift
	NRUN=$((NRUN + 1))
	OUT=$W/run$NRUN.out
	ERR=$W/run$NRUN.err
	case $kind in
	root) unshare --user --map-root-user "$VP" "$@" >"$OUT" 2>"$ERR" ;;
	ident) python3 "$NSEXEC" "0 0 2000" "0 0 2000" "$VP" "$@" >"$OUT" 2>"$ERR" ;;
	shift) python3 "$NSEXEC" "0 100000 65536" "0 100000 65536" "$VP" "$@" >"$OUT" 2>"$ERR" ;;
	esac
	RC=$?
	say "+ [userns $kind] volperm $(printf '%q ' "$@")-> exit $RC"
	_sanitizer_check
}

# --- --map-root-user: only 0 mapped --------------------------------------------------
for pol in "--owner 1001:1001" "--owner 0:1001" "--owner :1001" "--map 0:1001" "--map-gid 0:1001" "--owner 1001" \
	"--fsgroup 1001" "--grant u:1001:rwX" "--grant g:1001:rx" "--chmod o-r --revoke u:1001"; do
	# shellcheck disable=SC2086
	inns root apply $pol --journal-dir "$J" "$V"
	expect_rc 2 "map-root-user, apply $pol: unmapped target id refused"
	one_line_err "$ERR" "map-root-user, apply $pol"
	assert_file_match 'not mapped' "$ERR" "map-root-user, apply $pol: says 'not mapped'"
	unchanged "$V" "$W/v0.snap" "map-root-user, apply $pol: nothing changed"
	no_journal_files "$J" "map-root-user, apply $pol: no journal"
done
inns root apply --owner 1001:1001 --json --journal-dir "$J" "$V"
expect_rc 2 "map-root-user, apply --json: exit 2"
assert_match 'not mapped' "$(jsum "$OUT" message)" "map-root-user, --json summary.message says 'not mapped'"
# plan and check warn (issue 13): a dry run still answers, and says apply refuses it.
inns root plan --owner 1001:1001 --journal-dir "$J" "$V"
expect_rc 0 "map-root-user: plan (a dry run) still works"
one_line_err "$ERR" "map-root-user, plan --owner 1001:1001"
assert_file_match '^volperm: warning: .*not mapped.*: apply refuses it$' "$ERR" "map-root-user, plan: warns that apply refuses it"
inns root apply --owner 0:0 --journal-dir "$J" "$V"
expect_rc 0 "map-root-user: --owner 0:0 (mapped) on a 0:0 tree: compliant, exit 0"

# --- identity map 0..1999: mapped ids work ---------------------------------------------------
inns ident apply --owner 1001:1001 --journal-dir "$J" "$V"
expect_rc 0 "identity map 0..1999: apply --owner 1001:1001 works"
assert_eq "$(owner_of "$V/d/a") $(owner_of "$V")" "1001:1001 1001:1001" "identity map: changed to 1001:1001 outside"
assert_eq "$(mode_of "$V/b")" 0755 "identity map: setuid cleared"
inns ident apply --owner 1999:5000 --journal-dir "$J" "$V"
expect_rc 2 "identity map: gid 5000 (unmapped) refused"
inns ident rollback --journal-dir "$J" "$V"
expect_rc 0 "identity map: rollback inside the namespace"
s=$W/r.snap
snap "$V" "$s"
snap_eq "$W/v0.snap" "$s" "identity map: rolled back exactly (4755 back)" --ignore-field ctime

# --- shifted map (rootless-container style) ------------------------------------------------------
VS=$W/shifted
mkdir -p "$VS/d"
echo x >"$VS/d/x"
chown -R 101000:101000 "$VS"          # the app's 1000 inside
JS=$W/jshift
mkdir -m 0700 "$JS"
chown 100000:100000 "$JS"             # root inside
chmod 0711 "$W"
inns shift apply --owner 1001:1001 --journal-dir "$JS" "$VS"
expect_rc 0 "shifted map: apply --owner 1001:1001 inside"
assert_eq "$(owner_of "$VS/d/x") $(owner_of "$VS")" "101001:101001 101001:101001" "shifted map: outside owner is 100000+1001"
inns shift apply --owner 70000:70000 --journal-dir "$JS" "$VS"
expect_rc 2 "shifted map: 70000 (beyond the 65536 mapped) refused"
inns shift rollback --journal-dir "$JS" "$VS"
expect_rc 0 "shifted map: rollback inside"
assert_eq "$(owner_of "$VS/d/x")" 101000:101000 "shifted map: rolled back"

# --- a file owned by an unmapped id: cannot be changed; all-or-nothing -------------------------------
echo y >"$VS/d/y"
chown 5:5 "$VS/d/y"                   # outer 5: not in 100000..165535
snap "$VS" "$W/s0.snap"
inns shift apply --owner 1001:1001 --journal-dir "$JS" "$VS"
expect_rc_in "2 3" "shifted map, an entry owned by an unmapped id: refused or rolled back"
snap "$VS" "$W/s1.snap"
snap_eq "$W/s0.snap" "$W/s1.snap" "unmapped owner: nothing changed (all or nothing)"
assert_true "unmapped owner: a few lines on stderr, not one per entry" test "$(wc -l <"$ERR")" -le 3

finish
