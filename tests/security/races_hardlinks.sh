#!/usr/bin/env bash
# Case 2/3/4 together (CVE-2017-18078 under a race): a hard link to a
# root-owned decoy file outside the volume is inside the tree, and a hostile
# process moves it around while apply walks, so that the walk can meet the
# same link twice and take an external file for one whose links were all
# found inside:
#   exchange: V/f (the app's own file) and V/.f-evil (a hard link to the
#             decoy's shadow) trade names atomically (RENAME_EXCHANGE) in a
#             tight loop: the decoy's inode has 1 link inside and 1 outside
#             at every instant, but two lstat()s of one directory read can
#             both see it.
#   move:     V/a/x (a hard link to the decoy's passwd) hops between V/a and
#             V/z, so that the walk may list it in both directories.
#   exchange on ext2: the same exchange on a file system whose ctime has
#             clock-tick granularity (ext2 today; every file system before
#             Linux 6.13): hundreds of swaps leave the decoy's ctime equal,
#             so only the inotify watch tells one link seen under two names
#             from two links (before the watch, one apply in about 13 got
#             the decoy chowned here, with one thread). The unit test of the
#             hard-link table (test_links, next to the binary) runs on it too.
# The rule: a file with a link outside the tree is never changed (unless
# --allow-external-links). The decoy's owners, modes, ACLs and capabilities
# must stay identical (not its ctime: a rename of a hard link updates the
# inode's ctime, so the racer itself changes it).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup

BUDGET=${VOLPERM_RACE_SECONDS:-12}
MAXRUNS=${VOLPERM_RACE_RUNS:-200}

J=$(new_jdir)
E=$W/etc
make_decoy "$E"

# race_loop NAME VOLUME: apply with alternating owners until the budget is
# spent; fails (and stops) as soon as the decoy changed.
race_loop() {
	local name=$1 v=$2 runs=0 o end bad=0 before
	before=$(stat -c '%u:%g %a' "$E/shadow" "$E/passwd" | tr '\n' ' ')
	end=$(($(date +%s) + BUDGET))
	while [ "$runs" -lt "$MAXRUNS" ] && [ "$(date +%s)" -lt "$end" ]; do
		runs=$((runs + 1))
		o=$((1001 + runs % 2))
		vpt 20 apply --owner "$o:$o" --json --journal-dir "$J" "$v" >/dev/null
		if ! rc_in "$RC" "0 3 5 6"; then
			fail "$name: apply run $runs: exit $RC"
			show_run
			bad=1
			break
		fi
		if [ "$(stat -c '%u:%g %a' "$E/shadow" "$E/passwd" | tr '\n' ' ')" != "$before" ]; then
			fail "$name: decoy changed by apply run $runs (exit $RC): $(stat -c '%n %u:%g %a' "$E/shadow" "$E/passwd" | tr '\n' ' ')"
			grep -F -e shadow -e '/x"' -e '"x"' "$OUT" | head -n 5 | sed 's/^/    /'
			bad=1
			break
		fi
	done
	stop_racer
	say "# $name: $runs applies against $RACER_SWAPS swaps"
	[ "$bad" = 0 ] && pass "$name: decoy untouched in $runs racing applies"
	assert_true "$name: the racer ran ($RACER_SWAPS swaps)" test "$RACER_SWAPS" -gt 100
}

# exchange_attack VOLUME LABEL: V/f (the app's file) and V/.f-evil (a hard
# link to $E/shadow) trade names in a loop while apply runs over and over;
# the decoy must come out identical.
exchange_attack() {
	local v=$1 label=$2 i
	mkdir "$v"
	for ((i = 0; i < 50; i++)); do : >"$v/pad$i"; done
	echo mine >"$v/f"
	ln "$E/shadow" "$v/.f-evil"
	chown 1000:1000 "$v" "$v"/pad* "$v/f"
	snap "$E" "$W/decoy0.snap"
	start_racer exchange "$v/f" "$v/.f-evil" --max-seconds $((BUDGET + 40))
	race_loop "$label" "$v"
	snap "$E" "$W/decoy1.snap"
	snap_eq "$W/decoy0.snap" "$W/decoy1.snap" "$label: decoy identical (owners, modes, ACLs, caps)" --ignore-field ctime
}

# --- exchange: file <-> hard link to the decoy, in one directory -------------
V=$W/vol1
exchange_attack "$V" "exchange f <-> link to decoy"
# a fresh decoy for the next attack, whatever happened to this one
rm -f "$V/.f-evil"
rm -rf "$E"
make_decoy "$E"

# --- move: one link listed in two directories --------------------------------
V=$W/vol2
mkdir -p "$V/a" "$V/m" "$V/z"
for ((i = 0; i < 100; i++)); do : >"$V/a/p$i"; : >"$V/m/p$i"; : >"$V/z/p$i"; done
ln "$E/passwd" "$V/a/x"
chown -R 1000:1000 "$V"
chown 0:0 "$E/passwd"
snap "$E" "$W/decoy0.snap"
start_racer move "$V/a/x" "$V/z/x" --max-seconds $((BUDGET + 40))
race_loop "move a/x <-> z/x (link to decoy)" "$V"
snap "$E" "$W/decoy1.snap"
snap_eq "$W/decoy0.snap" "$W/decoy1.snap" "move: decoy identical (owners, modes, ACLs, caps)" --ignore-field ctime
rm -rf "$E"
make_decoy "$E"
ln -f "$E/passwd" "$V/a/x"
decoy_snap "$E" "$W/decoy0.snap"

# --- without the race: the same trees are refused cleanly ----------------------
vp_expect 5 "no race: the external link is skipped (exit 5)" apply --owner 1003:1003 --json --journal-dir "$J" "$V"
assert_eq "$(jpaths "$OUT" skip "$V" reason=external-hardlink)" a/x "no race: skip external-hardlink a/x"
decoy_same "$E" "$W/decoy0.snap" "no race: decoy untouched"

# --- exchange on a coarse-ctime file system (ext2) ------------------------------
if ! command -v mkfs.ext2 >/dev/null 2>&1; then
	say "SKIP PART: exchange on ext2: mkfs.ext2 not found"
else
	IMG=$W_REAL/ext2.img # (off slowfs: tests/cli/lib.sh)
	M=$W/ext2
	mkdir "$M"
	truncate -s 32M "$IMG" && mkfs.ext2 -q -F "$IMG" >/dev/null 2>&1 || die "mkfs.ext2 failed"
	if ! mount -t ext2 -o loop "$IMG" "$M" 2>"$W/loop.err"; then
		say "SKIP PART: exchange on ext2: mount -o loop: $(cat "$W/loop.err")"
	else
		on_exit "umount -l '$M'"
		# How coarse: rename back and forth, compare the ctimes.
		: >"$M/probe"
		same=$(python3 -c '
import os, sys
d = sys.argv[1]; a = d + "/probe"; b = d + "/probe2"; same = 0
for i in range(200):
    os.rename(a, b); c1 = os.lstat(b).st_ctime_ns
    os.rename(b, a); c2 = os.lstat(a).st_ctime_ns
    same += c1 == c2
print(same)' "$M")
		say "# ext2: $same of 200 back-and-forth renames left ctime equal"
		E=$M/etc
		make_decoy "$E"
		exchange_attack "$M/vol" "exchange on ext2 (coarse ctime)"
		UNIT=$(dirname "$VP")/test_links
		if [ -x "$UNIT" ]; then
			mkdir "$M/tmp"
			if TMPDIR=$M/tmp "$UNIT" >"$W/unit.out" 2>&1; then
				pass "test_links passes on ext2 (the watch alone catches the renames there)"
			else
				fail "test_links on ext2"
				tail -n 20 "$W/unit.out" | sed 's/^/    /'
			fi
		else
			say "# test_links not built next to $VP: its ext2 run skipped"
		fi
	fi
fi

finish
