#!/usr/bin/env bash
# --if-root-mismatch with --owner: the kubelet's OnRootMismatch as an O(1)
# fast path for any policy. When the root already complies, nothing is
# walked (JSON summary: root_complies true, scanned 0); otherwise the
# whole tree is walked as without the option.
#
# The trade-off, shown here on purpose: the root is trusted. volperm
# changes the root last, so its own interrupted runs leave the root
# non-compliant and are redone; but a change someone else makes below a
# compliant root is not seen until a run without the option.
. "$(dirname "$0")/../cli/lib.sh"
setup

J=$(new_jdir)
V=$W/vol
mktree "$V" 2000 --seed 17 --uid 0 --gid 0 --mixed 0.5 --hardlink-every 100 --symlink-every 40
total=$(entries "$V")
snap "$V" "$W/v0.snap"

# 1. first run: the root does not comply, so everything is walked.
vp_expect 1 "check --if-root-mismatch before: changes needed" check --owner 1001:1001 --if-root-mismatch "$V"
vp_expect 0 "first apply --if-root-mismatch" apply --owner 1001:1001 --if-root-mismatch --journal-dir "$J" --json "$V"
json_ok "$OUT" "first run: valid NDJSON"
assert_eq "$(jsum "$OUT" root_complies)" false "first run: root_complies false"
assert_eq "$(jsum "$OUT" scanned)" "$total" "first run: the whole tree walked ($total entries)"
assert_eq "$(find "$V" \( ! -user 1001 -o ! -group 1001 \) -printf x | wc -c)" 0 "first run: every entry 1001:1001"
# the root is changed last: the last change event is the root
last=$(python3 -c 'import json,sys
evs=[json.loads(l) for l in open(sys.argv[1])]
print([e["path"] for e in evs if e["event"]=="change"][-1])' "$OUT")
assert_eq "$last" "$V" "the root is the last entry changed"
nj=$(count_journals "$J")

# 2. second run: the root complies: nothing is walked.
vp_expect 0 "second apply --if-root-mismatch" apply --owner 1001:1001 --if-root-mismatch --journal-dir "$J" --json "$V"
json_ok "$OUT" "second run: valid NDJSON"
assert_eq "$(jsum "$OUT" root_complies)" true "second run: root_complies true"
assert_eq "$(jsum "$OUT" scanned)" 0 "second run: scanned 0"
assert_eq "$(jsum "$OUT" changes)" 0 "second run: changes 0"
assert_eq "$(jsum "$OUT" journal)" null "second run: no journal"
assert_eq "$(count_journals "$J")" "$nj" "second run: no journal file"
assert_eq "$(grep -c '"event":"start"' "$OUT")" 1 "second run: one start event"
vp_expect 0 "check --if-root-mismatch: compliant" check --owner 1001:1001 --if-root-mismatch "$V"
assert_file_match "^root: .*complies.*skipped" "$OUT" "check names the skip"
vp_expect 0 "plan --if-root-mismatch --list: nothing listed" plan --owner 1001:1001 --if-root-mismatch --list "$V"
assert_file_nomatch "^(chown|change|skip) " "$OUT" "plan --list lists no entry"
# It is really O(1): an unreadable subtree is not even opened.
mkdir -m 0 "$V/locked-out"
chown 1001:1001 "$V/locked-out"
vp_expect 0 "a run that walks nothing cannot trip over anything" apply --owner 1001:1001 --if-root-mismatch --journal-dir "$J" --json "$V"
assert_eq "$(jsum "$OUT" scanned)" 0 "still scanned 0"
rmdir "$V/locked-out"

# 3. the trade-off: a change below a compliant root is not detected.
victim=$(find "$V" -mindepth 2 -type f | sort | head -n 1)
chown 0:0 "$victim"
vp_expect 0 "child changed by someone else, root compliant: --if-root-mismatch says compliant" check --owner 1001:1001 --if-root-mismatch "$V"
vp_expect 1 "the same check without --if-root-mismatch finds it" check --owner 1001:1001 "$V"
vp_expect 0 "apply without the option repairs it" apply --owner 1001:1001 --journal-dir "$J" "$V"
assert_eq "$(owner_of "$victim")" 1001:1001 "the child is 1001:1001 again"

# 4. a partial run that changed children but not the root (what an
#    interrupted volperm leaves, the root being changed last): the root
#    does not comply, so the next run walks and finishes.
P=$W/partial
mktree "$P" 300 --seed 3 --uid 0 --gid 0 --mixed 0
find "$P" -mindepth 1 -path "$P/e0_0*" -exec chown -h 1001:1001 {} +
assert_eq "$(owner_of "$P")" 0:0 "partial: the root was left as it was"
vp_expect 0 "partial: apply --if-root-mismatch" apply --owner 1001:1001 --if-root-mismatch --journal-dir "$J" --json "$P"
assert_eq "$(jsum "$OUT" root_complies)" false "partial: root_complies false"
assert_eq "$(jsum "$OUT" scanned)" "$(entries "$P")" "partial: walked everything"
assert_eq "$(find "$P" \( ! -user 1001 -o ! -group 1001 \) -printf x | wc -c)" 0 "partial: finished, every entry 1001:1001"

# 5. what the root must have: owner and group of --owner, and for a uid-only
#    owner just the uid; a root that is a file is always walked.
U=$W/uidonly
mkdir -p "$U/sub"
chown 1001:0 "$U"
chown 0:0 "$U/sub"
vp_expect 0 "uid-only owner, root has the uid: skip" apply --owner 1001 --if-root-mismatch --journal-dir "$J" --json "$U"
assert_eq "$(jsum "$OUT" scanned)" 0 "uid-only: root 1001:0 complies with --owner 1001"
vp_expect 0 "owner 1001:1001, root 1001:0: walk" apply --owner 1001:1001 --if-root-mismatch --journal-dir "$J" --json "$U"
assert_eq "$(jsum "$OUT" scanned)" 2 "group mismatch: walked"
assert_eq "$(owner_of "$U/sub")" 1001:1001 "sub fixed"
F=$W/file-root
printf 'x\n' >"$F"
chown 1001:1001 "$F"
vp_expect 0 "file root: walked" apply --owner 1001:1001 --if-root-mismatch --journal-dir "$J" --json "$F"
assert_eq "$(jsum "$OUT" root_complies)" false "file root: never an O(1) skip"
assert_eq "$(jsum "$OUT" scanned)" 1 "file root: 1 entry scanned"

# 6. rollback after --if-root-mismatch runs: the journal of the first
#    (walking) run restores the tree exactly.
R=$W/rb
mktree "$R" 500 --seed 23 --setid 3
snap "$R" "$W/rb0.snap"
vp_expect 0 "apply --if-root-mismatch (walks)" apply --owner 1001:1001 --if-root-mismatch --journal-dir "$J" "$R"
vp_expect 0 "apply --if-root-mismatch (skips)" apply --owner 1001:1001 --if-root-mismatch --journal-dir "$J" "$R"
vp_expect 0 "rollback" rollback --journal-dir "$J" "$R"
snap "$R" "$W/rb1.snap"
snap_eq "$W/rb0.snap" "$W/rb1.snap" "rollback restored the tree exactly"

finish
