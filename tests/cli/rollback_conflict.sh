#!/usr/bin/env bash
# Rollback is fd-safe and careful: an entry changed since by someone else is
# a conflict (reported, left alone, exit 6) unless --force; an entry replaced
# by another inode, or a directory swapped for a symlink to outside the
# tree, is never touched (dev/ino verified, symlinks never followed); and a
# rollback can be re-run (already-restored entries are skipped).
. "$(dirname "$0")/lib.sh"
setup

J=$(new_jdir)
OUTSIDE=$W/outside
mkdir -p "$OUTSIDE/sub"
echo keep >"$OUTSIDE/f"
echo keep >"$OUTSIDE/sub/g"
chown 7777:7777 "$OUTSIDE" "$OUTSIDE/f" "$OUTSIDE/sub" "$OUTSIDE/sub/g"
before_out=$(cd "$OUTSIDE" && stat -c '%n %u:%g %a %Z' . f sub sub/g)

V=$W/vol
mktree "$V" 500 --seed 91 --hardlink-every 0 --symlink-every 0
mkdir "$V/swap" "$V/swap/sub"
echo a >"$V/swap/f"
echo b >"$V/swap/sub/g"
chown 1000:1000 "$V/swap" "$V/swap/f" "$V/swap/sub" "$V/swap/sub/g"
echo c >"$V/conflict"
echo d >"$V/replaced"
chown 1000:1000 "$V/conflict" "$V/replaced"
snap "$V" "$W/before.snap"

vp_expect 0 "apply" apply --owner 1001:1001 --journal-dir "$J" "$V"

# 1. someone else changes one entry's owner after the apply
chown 5555:5555 "$V/conflict"
# 2. one file is replaced by a new inode (same name)
rm "$V/replaced"
echo new >"$V/replaced"
chown 4444:4444 "$V/replaced"
# 3. a directory is swapped for a symlink to a directory outside the tree
#    that has the same shape (f, sub/g)
mv "$V/swap" "$W/swap.moved"
ln -s "$OUTSIDE" "$V/swap"

vp_expect 6 "rollback with conflicts: exit 6" rollback --json --journal-dir "$J" "$V"
json_ok "$OUT" "rollback --json is valid NDJSON"
cp "$OUT" "$W/rb1.json"
cp "$ERR" "$W/rb1.err"
assert_true "conflict event for the entry changed since" grep -q '"event":"conflict".*"path":"'"$V"'/conflict"' "$W/rb1.json"
assert_eq "$(owner_of "$V/conflict")" 5555:5555 "the conflicting entry is left alone"
assert_eq "$(owner_of "$V/replaced")" 4444:4444 "a replaced file (new inode) is not touched"
assert_eq "$(cd "$OUTSIDE" && stat -c '%n %u:%g %a %Z' . f sub sub/g)" "$before_out" \
	"nothing outside the tree was touched through the swapped-in symlink"
assert_eq "$(owner_of "$V/swap")" 0:0 "the swapped-in symlink itself was not touched"
snap "$V" "$W/after1.snap"
printf '%s\n' conflict replaced swap swap/f swap/sub swap/sub/g >"$W/ignore"
snap_eq "$W/before.snap" "$W/after1.snap" "every other entry restored" --ignore "$W/ignore"

# Re-running is idempotent: restored entries are skipped, the conflict stays.
vp rollback --journal-dir "$J" "$V"
if [ "$RC" = 6 ] || [ "$RC" = 2 ]; then
	pass "re-running rollback (exit $RC: the conflict remains, or nothing left to roll back)"
else
	fail "re-running rollback: expected exit 6 (conflict remains) or 2, got $RC"
	show_run
fi
assert_eq "$(owner_of "$V/conflict")" 5555:5555 "conflict still left alone without --force"
snap "$V" "$W/after2.snap"
snap_eq "$W/after1.snap" "$W/after2.snap" "re-running changed nothing"

# --force restores the conflicting entry, never the replaced or swapped ones.
# (The journal is marked rolled back after the first pass: --force names it,
# as the first rollback's message says.)
jf=$(newest_journal "$J")
assert_file_match "rollback --force --journal $jf" "$W/rb1.err" "the exit-6 message tells how to force the rest"
# Still exit 6: the replaced file and the swapped dir cannot be restored.
vp_expect 6 "rollback --force --journal FILE (replaced entries still unrestorable)" rollback --force --journal "$jf" "$V"
assert_eq "$(owner_of "$V/conflict")" 1000:1000 "--force restored the conflicting entry"
assert_eq "$(owner_of "$V/replaced")" 4444:4444 "--force still leaves a replaced inode alone"
assert_eq "$(cd "$OUTSIDE" && stat -c '%n %u:%g %a %Z' . f sub sub/g)" "$before_out" \
	"--force touched nothing outside the tree"
snap "$V" "$W/after3.snap"
printf '%s\n' replaced swap swap/f swap/sub swap/sub/g >"$W/ignore"
snap_eq "$W/before.snap" "$W/after3.snap" "after --force every other entry is as before" --ignore "$W/ignore"

finish
