#!/usr/bin/env bash
# Unmapped owners and targets (issue 13, point 5). In a user namespace only
# the ids of its uid_map/gid_map exist:
#   - a target id the namespace does not map (--owner uid or gid, --map,
#     --map-gid, --fsgroup, --grant u:/g:, which directories' default ACLs
#     name too, --revoke u:/g:; with --uid-map the translated host id) is
#     refused by apply: exit 2, exactly one line on stderr, nothing
#     changed, no journal; plan (exit 0) and check (exit 1: changes needed)
#     still answer, with exactly one warning line that apply refuses it;
#   - an entry owned by an unmapped id (shown as the overflow id, 65534) that
#     the run would change: plan (exit 0) and check (exit 1: changes needed,
#     docs/volperm.1) print one warning line with the count and the first
#     path; apply refuses up front, exit 2, one line naming it, nothing
#     changed. An unmapped group blocks only a chown: a chmod of such an entry
#     still applies and rolls back;
#   - a tree of mapped owners still applies and rolls back exactly;
#   - in the initial namespace nothing of this shows.
# Namespaces: `unshare --user --map-root-user` (uid/gid 0 only) and a partial
# identity map 0..999 written by tests/security/nsexec.py (util-linux's
# --map-users goes through newuidmap, which wants /etc/subuid ranges for
# root). Skips (77) only when user namespaces are not available.
. "$(dirname "$0")/lib.sh"
setup
need_cmd unshare
NSEXEC=$REPO/tests/security/nsexec.py
if ! unshare --user --map-root-user true 2>/dev/null; then
	say "#### user namespaces are not available here (unshare --user --map-root-user failed): NOTHING of unmapped.sh was tested"
	skip "user namespaces are not available (unshare --user --map-root-user failed)"
fi
python3 "$NSEXEC" "0 0 1" "0 0 1" true || die "nsexec.py cannot create a user namespace with explicit maps, although unshare can"

# inns KIND ARGS...: volperm inside a namespace; sets OUT ERR RC.
#   root: unshare --map-root-user (0 only); part: 0..999 on both sides.
inns() {
	local kind=$1
	shift
	NRUN=$((NRUN + 1))
	OUT=$W/run$NRUN.out
	ERR=$W/run$NRUN.err
	case $kind in
	root) unshare --user --map-root-user "$VP" "$@" >"$OUT" 2>"$ERR" ;;
	part) python3 "$NSEXEC" "0 0 1000" "0 0 1000" "$VP" "$@" >"$OUT" 2>"$ERR" ;;
	esac
	RC=$?
	say "+ [userns $kind] volperm $(printf '%q ' "$@")-> exit $RC"
	_sanitizer_check
}

# one_line FILE DESC: exactly one line, "volperm: ...".
one_line() {
	if [ "$(wc -l <"$1")" = 1 ] && grep -q '^volperm: ' "$1"; then
		pass "$2: one line: $(cut -c1-160 "$1")"
	else
		fail "$2: expected exactly one 'volperm: ...' line on stderr, got $(wc -l <"$1"):"
		head -n 10 "$1" | cat -v | sed 's/^/    /'
	fi
}
no_journal() {
	if [ -z "$(find "$1" -name '*.vpj' 2>/dev/null)" ]; then pass "$2"; else fail "$2: a journal was written"; fi
}
unchanged() { local s=$W/u.$RANDOM.snap; snap "$1" "$s" --ctime; snap_eq "$2" "$s" "$3"; }

J=$(new_jdir)
# A tree root (and so the namespace's root) owns, one file owned by an id
# neither namespace maps, one whose group only is unmapped in "part".
V=$W/vol
mkdir -p "$V/d/e"
echo a >"$V/a"
echo b >"$V/d/b"
echo f >"$V/d/e/foreign file"
echo g >"$V/d/grp"
chown -R 0:0 "$V"
chown 5000:5000 "$V/d/e/foreign file"
chown 500:5000 "$V/d/grp"
chmod 0640 "$V/a"
snap "$V" "$W/v0.snap" --ctime

# --- unmapped targets: every policy kind, plan/check/apply ----------------------------------
for cmd in plan check apply; do
	for pol in "--owner 1001:1001" "--owner :1001" "--owner 0:1001" "--map 0:1001" "--map-gid 0:1001" \
		"--fsgroup 1001" "--grant u:1001:rwX" "--grant g:1001:rx" "--grant u:0:rwX,g:1001:r" \
		"--revoke u:1001" "--revoke g:1001" "--chmod g+w --revoke u:1001"; do
		# shellcheck disable=SC2086
		inns root $cmd $pol --journal-dir "$J" "$V"
		case $cmd in
		apply)
			expect_rc 2 "map-root-user, apply $pol: unmapped target refused"
			assert_file_match '^volperm: .* is not mapped in this user namespace .*; nothing was changed$' "$ERR" "apply $pol: says why"
			;;
		plan)
			expect_rc 0 "map-root-user, plan $pol: a dry run still answers"
			assert_file_match '^volperm: warning: .* is not mapped in this user namespace .*: apply refuses it$' "$ERR" "plan $pol: warns"
			;;
		check)
			# (a --revoke alone of an id no entry names changes nothing)
			case $pol in --revoke*) want=0 ;; *) want=1 ;; esac
			expect_rc $want "map-root-user, check $pol: still answered"
			assert_file_match '^volperm: warning: .* is not mapped in this user namespace .*: apply refuses it$' "$ERR" "check $pol: warns"
			;;
		esac
		if [ $cmd = apply ]; then
			one_line "$ERR" "map-root-user, apply $pol"
		else
			# (the tree's unmapped owners get their own warning line)
			assert_eq "$(grep -c 'is not mapped in this user namespace (see' "$ERR")" 1 "map-root-user, $cmd $pol: the target warned about once"
		fi
	done
done
unchanged "$V" "$W/v0.snap" "unmapped targets: nothing changed"
no_journal "$J" "unmapped targets: no journal"
inns root apply --grant u:0:rwX,g:1001:r --journal-dir "$J" "$V"
assert_file_match '^volperm: --grant gid 1001 is not mapped in this user namespace \(see /proc/self/gid_map\)' "$ERR" \
	"the first unmapped one, typed: --grant gid 1001"
# The same sentence, once, whatever the output mode and the worker count.
for extra in "--json" "--list" "--keep-going" "--jobs 1" "--jobs 4" "--no-journal" "--quiet"; do
	# shellcheck disable=SC2086
	inns root apply --fsgroup 1001 $extra --journal-dir "$J" "$V"
	expect_rc 2 "apply --fsgroup 1001 $extra: refused"
	one_line "$ERR" "apply --fsgroup 1001 $extra"
done
inns root apply --owner 1001:1001 --json "$V"
expect_rc 2 "apply --json, unmapped target: exit 2"
one_line "$ERR" "apply --json, unmapped target"
assert_match 'is not mapped' "$(jsum "$OUT" message)" "apply --json: the summary's message says it"
assert_eq "$(jsum "$OUT" exit)" 2 "apply --json: the summary's exit is 2"
for cmd in plan check; do
	inns root $cmd --owner 1001:1001 --json "$V"
	assert_eq "$(grep -c '^volperm: warning: --owner uid 1001 is not mapped' "$ERR")" 1 "$cmd --json, unmapped target: the warning on stderr, once"
	json_ok "$OUT" "$cmd --json, unmapped target: stdout is still NDJSON"
	assert_eq "$(jsum "$OUT" exit)" "$RC" "$cmd --json: the summary's exit is the command's ($RC)"
done
# Partial map: the edges.
inns part plan --owner 999:999 --grant u:999:r "$V"
expect_rc 0 "part map: 999 (the last mapped id) is a valid target"
inns part apply --owner 1000:999 "$V"
expect_rc 2 "part map: uid 1000 (the first unmapped) refused"
one_line "$ERR" "part map, --owner 1000:999"
# --uid-map: the translated host id is what must be mapped here.
inns part check --uid-map 0:500:1000 --owner 600:600 "$V"
expect_rc 1 "--uid-map 0:500:1000 --owner 600 (host 1100, unmapped here): check answers, changes needed"
assert_eq "$(grep -c 'is not mapped in this user namespace (see' "$ERR")" 1 "--uid-map, unmapped host id: warned about once"
assert_file_match '^volperm: warning: --owner uid 600 \(host 1100 from --uid-map\) is not mapped' "$ERR" \
	"names the id given and the host id"
inns part apply --uid-map 0:500:1000 --owner 600:600 "$V"
expect_rc 2 "--uid-map 0:500:1000 --owner 600: apply refuses"
assert_file_match '^volperm: --owner uid 600 \(host 1100 from --uid-map\) is not mapped' "$ERR" \
	"apply names the id given and the host id"
unchanged "$V" "$W/v0.snap" "all of the above: nothing changed"
no_journal "$J" "all of the above: no journal"

# --- entries owned by an unmapped id -----------------------------------------------------
inns root plan --chmod g+rwX --journal-dir "$J" "$V"
expect_rc 0 "map-root-user, plan on a tree with unmapped owners: exit 0"
one_line "$ERR" "plan: one warning"
# d/e/foreign file (5000) and d/grp (500) show as 65534 here: two entries;
# which is "the first" is the walk's order.
assert_file_match "^volperm: warning: 2 entries to change, the first ('$V/d/e/foreign file'|$V/d/grp), are owned by an id not mapped in this user namespace \\(shown as uid 65534\\): fix them from the host, or with --userns" "$ERR" \
	"plan: the count, the first path (quoted), the hint"
assert_file_match 'dry run: nothing was changed' "$OUT" "plan: the summary as always"
inns root plan --chmod g+rwX --json --journal-dir "$J" "$V"
expect_rc 0 "plan --json: exit 0"
one_line "$ERR" "plan --json: the warning on stderr"
json_ok "$OUT" "plan --json: stdout is still NDJSON"
inns root check --chmod g+rwX --journal-dir "$J" "$V"
expect_rc 1 "check: changes needed (exit 1, as docs/volperm.1 says)"
one_line "$ERR" "check: one warning"
assert_file_match '^volperm: warning: 2 entries to change' "$ERR" "check: the warning"
for extra in "" "--no-journal" "--jobs 4" "--keep-going --no-journal" "--json"; do
	# shellcheck disable=SC2086
	inns root apply --chmod g+rwX $extra --journal-dir "$J" "$V"
	expect_rc 2 "apply $extra with unmapped owners: refused up front"
	one_line "$ERR" "apply $extra, unmapped owner"
	assert_file_match "^volperm: ('$V/d/e/foreign file'|$V/d/grp) is owned by an id not mapped in this user namespace \\(shown as uid 65534\\), so it cannot be changed from here: fix it from the host, or with --userns; nothing was changed" \
		"$ERR" "apply $extra: names the first such entry"
done
unchanged "$V" "$W/v0.snap" "unmapped owners: nothing changed"
no_journal "$J" "unmapped owners: no journal"
# Only the entries the run changes count: an exclude of both leaves none.
inns root plan --chmod g+rwX --exclude 'foreign file' --exclude grp "$V"
expect_rc 0 "plan excluding them: exit 0"
assert_eq "$(wc -c <"$ERR")" 0 "plan excluding them: no warning"

# An unmapped group ("part": 500 is mapped, 5000 is not) blocks a chown only.
inns part plan --chmod g+rwX --exclude 'foreign file' "$V"
expect_rc 0 "part map: plan --chmod with a group-unmapped entry: exit 0"
assert_eq "$(wc -c <"$ERR")" 0 "part map: a chmod of it needs no mapped group: no warning"
inns part plan --owner :7 --exclude 'foreign file' "$V"
one_line "$ERR" "part map: plan --owner :7: one warning"
assert_file_match "^volperm: warning: 1 entry to change, $V/d/grp, is owned by an id not mapped in this user namespace \\(shown as gid 65534\\)" "$ERR" \
	"part map: the group side named"
inns part apply --owner :7 --exclude 'foreign file' --journal-dir "$J" "$V"
expect_rc 2 "part map: apply --owner :7 refused up front"
one_line "$ERR" "part map: apply --owner :7"
unchanged "$V" "$W/v0.snap" "part map: nothing changed"
no_journal "$J" "part map: no journal"
inns part apply --chmod g+rwX --exclude 'foreign file' --journal-dir "$J" "$V"
expect_rc 0 "part map: apply --chmod g+rwX of a group-unmapped entry works (the kernel allows it)"
assert_eq "$(mode_of "$V/d/grp")" 0664 "part map: chmod applied to d/grp"
inns part rollback --journal-dir "$J" "$V"
expect_rc 0 "part map: rollback"
snap "$V" "$W/v1.snap"
snap_eq "$W/v0.snap" "$W/v1.snap" "part map: rolled back exactly" --ignore-field ctime

# --- a mapped-only tree applies and rolls back exactly ------------------------------------
M=$W/mapped
mkdir -p "$M/d/e"
echo a >"$M/a"
echo c >"$M/d/e/c"
ln -s a "$M/link"
chown -hR 0:0 "$M"
snap "$M" "$W/m0.snap"
inns root apply --chmod g+rwX --grant u:0:rwX --journal-dir "$J" "$M"
expect_rc 0 "map-root-user, mapped-only tree: apply works"
assert_eq "$(wc -c <"$ERR")" 0 "mapped-only tree: no warning"
assert_eq "$(mode_of "$M/d/e")" 0775 "mapped-only tree: changed"
inns root rollback --journal-dir "$J" "$M"
expect_rc 0 "map-root-user: rollback"
snap "$M" "$W/m1.snap"
snap_eq "$W/m0.snap" "$W/m1.snap" "mapped-only tree: rolled back exactly" --ignore-field ctime

# --- the initial namespace: nothing of this -------------------------------------------------
vp plan --chmod g+rwX --journal-dir "$J" "$V"
expect_rc 0 "initial namespace: plan"
assert_eq "$(wc -c <"$ERR")" 0 "initial namespace: no warning (5000 is a real owner here)"
vp plan --owner 4000000000:4000000000 --journal-dir "$J" "$V"
expect_rc 0 "initial namespace: every id is mapped"

finish
