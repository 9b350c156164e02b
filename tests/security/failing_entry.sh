#!/usr/bin/env bash
# Case 17: an entry that cannot be changed in the middle of an apply (an
# immutable file, chattr +i; an append-only file, chattr +a). Without
# --keep-going the apply stops, rolls back everything it changed, exits 3,
# and leaves no hot journal; the tree is as before (owners, modes, setuid,
# capabilities, ACLs). With --keep-going it changes everything else, reports
# each failed entry (--json error events), exits 5, and rollback undoes it.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup
need_cmd chattr lsattr setfacl setcap

J=$(new_jdir)
V=$W/vol
mktree "$V" 2500 --seed 17 --uid 0 --gid 0 --setid 5 --caps 2 --acl-every 11
# the entries to freeze: a few files spread over the walk
mapfile -t frozen < <(find "$V" -type f -links 1 -name 'e*' | sort | awk 'NR % 400 == 0' | head -n 4)
[ "${#frozen[@]}" -ge 3 ] || die "not enough files to freeze"
chattr +i "${frozen[0]}" "${frozen[1]}" 2>/dev/null || skip "chattr +i is not supported on $(stat -f -c %T "$V")"
on_exit "chattr -i -a $(printf '%q ' "${frozen[@]}")"
chattr +a "${frozen[2]}"
[ "${#frozen[@]}" -gt 3 ] && chattr +i "${frozen[3]}"
say "# ${#frozen[@]} frozen files among $(entries "$V") entries"
declare -A owner0=()
for f in "${frozen[@]}"; do owner0[$f]=$(owner_of "$f"); done
snap "$V" "$W/s0.snap"

vp "apply" --owner 1001:1001 --json --journal-dir "$J" "$V"
expect_rc 3 "apply with immutable/append-only files: stops, rolls back, exit 3"
json_ok "$OUT" "NDJSON valid"
assert_eq "$(jcount "$OUT" error)" 1 "one error event: the first frozen entry (then it stopped)"
assert_match '^[1-9]' "$(jsum "$OUT" restored)" "summary: entries were restored by the automatic rollback ($(jsum "$OUT" restored))"
assert_match 'Operation not permitted|chown' "$(jsum "$OUT" message)" "summary.message says why"
snap "$V" "$W/s1.snap"
snap_eq "$W/s0.snap" "$W/s1.snap" "after exit 3 the tree is exactly as before (owners, setuid, caps, ACLs)"
vp "plan" --owner 1001:1001 --journal-dir "$J" "$V"
expect_rc_in "0 5" "no hot journal left (plan does not exit 4)"
vp "journal" list --journal-dir "$J" "$V"
assert_file_match 'rolled-back' "$OUT" "the journal says rolled-back"

vp "apply" --owner 1001:1001 --keep-going --json --journal-dir "$J" "$V"
expect_rc 5 "apply --keep-going: finishes the rest, exit 5"
assert_eq "$(jcount "$OUT" error)" "${#frozen[@]}" "--keep-going: one error event per frozen file (${#frozen[@]})"
jpaths "$OUT" error "$V" >"$W/err.paths"
for f in "${frozen[@]}"; do
	if grep -qxF "${f#"$V"/}" "$W/err.paths"; then
		pass "--keep-going: error reported for ${f#"$V"/}"
	else
		fail "--keep-going: no error event for ${f#"$V"/}"
	fi
	assert_eq "$(owner_of "$f")" "${owner0[$f]}" "--keep-going: frozen ${f#"$V"/} unchanged"
done
n_other=$(find "$V" ! -user 1001 | wc -l)
assert_eq "$n_other" "${#frozen[@]}" "--keep-going: everything else is 1001 (only the frozen files are not)"
vp "rollback" --journal-dir "$J" "$V"
expect_rc 0 "rollback of the --keep-going apply"
snap "$V" "$W/s2.snap"
snap_eq "$W/s0.snap" "$W/s2.snap" "rolled back exactly"

finish
