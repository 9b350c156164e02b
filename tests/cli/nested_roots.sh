#!/usr/bin/env bash
# Trees that overlap exclude each other. An apply on V and one on V/sub
# change the same entries: they must not run at once (either one first),
# with the same or with different journal dirs; runs on siblings V/a and
# V/b may. A crashed apply on V/sub leaves V half changed: check, plan and
# apply on V see its hot journal (exit 4, naming it), journal list V shows
# it, recover on V/sub clears it.
# Each "running" apply is held mid-way without timing: its --list output
# goes into a FIFO that the test stops reading.
. "$(dirname "$0")/lib.sh"
setup
need_cmd mkfifo
export VOLPERM_JOBS=1

V=$W/vol
mktree "$V/sub" 20000 --seed 11
mktree "$V/a" 20000 --seed 12
mkdir -p "$V/b"
echo x >"$V/b/f"
J=$(new_jdir)
J2=$(new_jdir)

# hold ARGS...: start `volperm apply --list ARGS` writing into a FIFO and
# read 64 KiB of it: it is then blocked mid-apply. release: read the rest.
hold() {
	rm -f "$W/fifo"
	mkfifo "$W/fifo" || die "mkfifo"
	"$VP" apply --list "$@" >"$W/fifo" 2>"$W/held.err" &
	HPID=$!
	exec 7<"$W/fifo"
	head -c 65536 <&7 >/dev/null
}
release() {
	cat <&7 >/dev/null
	exec 7<&-
	wait "$HPID"
	HRC=$?
}

# --- 1. V running: V/sub is refused, both ways of asking ---------------------------
hold -o 1001:1001 --journal-dir "$J" "$V"
vp apply -o 2002:2002 --journal-dir "$J" "$V/sub"
expect_rc 4 "V running: apply on V/sub refused"
assert_file_match "another volperm is working on .*vol, which contains .*vol/sub" "$ERR" "... naming V as the tree that contains it"
vp apply -o 2002:2002 --journal-dir "$J2" "$V/sub"
expect_rc 4 "V running: apply on V/sub with another journal dir refused too"
vp check -o 2002:2002 --journal-dir "$J" "$V/sub"
expect_rc 4 "V running: check on V/sub sees the running apply (exit 4)"
vp apply -o 2002:2002 --journal-dir "$J" "$V/b"
expect_rc 4 "V running: apply on V/b (inside V too) refused"
release
assert_eq "$HRC" 0 "the apply on V finished (exit 0)"
assert_eq "$(find "$V" ! -uid 1001 | wc -l)" 0 "V is compliant: every entry is 1001"

# --- 2. V/sub running: V is refused; a sibling is not -------------------------------
hold -o 3003:3003 --journal-dir "$J" "$V/sub"
vp apply -o 1001:1001 --journal-dir "$J" "$V"
expect_rc 4 "V/sub running: apply on V refused"
assert_file_match "another volperm is working on .*vol or on a tree inside it" "$ERR" "... saying a tree inside it is busy"
vp apply -o 1001:1001 --journal-dir "$J2" "$V"
expect_rc 4 "V/sub running: apply on V with another journal dir refused too"
vp check -o 1001:1001 --journal-dir "$J" "$V"
expect_rc 4 "V/sub running: check on V sees it (exit 4)"
assert_file_match "another volperm is changing .*vol/sub right now .*, which is inside .*vol" "$ERR" "... naming V/sub"
vp_expect 0 "V/sub running: apply on V/b (a sibling) runs" apply -q -o 4004:4004 --journal-dir "$J" "$V/b"
assert_eq "$(owner_of "$V/b/f")" 4004:4004 "... and changed V/b"
release
assert_eq "$HRC" 0 "the apply on V/sub finished (exit 0)"

# --- 3. a crashed apply on V/sub blocks V until recover ------------------------------
snap "$V" "$W/before3"
hold -o 5005:5005 --journal-dir "$J" "$V/sub"
kill -KILL "$HPID"
wait "$HPID" 2>/dev/null
exec 7<&-
vp check -o 1001:1001 --journal-dir "$J" "$V"
expect_rc 4 "hot journal of V/sub: check on V exits 4"
assert_file_match "an interrupted apply left .*vol/sub half changed .*, and it is inside .*vol; run 'volperm recover .*vol/sub' first" "$ERR" \
	"... naming V/sub and how to recover it"
vp plan -o 1001:1001 --journal-dir "$J" "$V"
expect_rc 4 "hot journal of V/sub: plan on V exits 4"
vp apply -o 1001:1001 --journal-dir "$J" "$V"
expect_rc 4 "hot journal of V/sub: apply on V exits 4"
vp apply --recover -o 1001:1001 --journal-dir "$J" "$V"
expect_rc 4 "hot journal of V/sub: apply --recover on V does not recover another root's journal"
vp_expect 0 "journal list V" journal list --journal-dir "$J" "$V"
assert_file_match "hot .*vol/sub" "$OUT" "journal list V shows V/sub's hot journal"
vp_expect 0 "recover V/sub" recover -q --journal-dir "$J" "$V/sub"
snap "$V" "$W/after3"
snap_eq "$W/before3" "$W/after3" "recover V/sub restores it"
vp_expect 0 "then apply on V runs" apply -q -o 1001:1001 --journal-dir "$J" "$V"
finish
