#!/usr/bin/env bash
# Case 13: missing capabilities. Under capsh --drop (and setpriv
# --bounding-set), an apply without CAP_CHOWN, or without CAP_FOWNER when
# journaled, fails with one clear sentence naming the capability, exit 2,
# before any change (volume snapshot with ctime identical, no journal
# created); a rollback without them likewise, leaving its journal usable. A
# compliant tree and a dry run need no capability; --no-journal needs only
# CAP_CHOWN; the init-container set (uid 0 with only CHOWN and FOWNER) works.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup
need_cmd capsh setpriv

J=$(new_jdir)
V=$W/vol
mkdir -p "$V/d"
for i in 1 2 3; do echo $i >"$V/d/f$i"; done
chown -R 1000:1000 "$V"
chmod 4755 "$V/d/f1"
snap "$V" "$W/v0.snap" --ctime
unchanged() { local s=$W/u.$RANDOM.snap; snap "$V" "$s" --ctime; snap_eq "$W/v0.snap" "$s" "$1"; }

# capped DROPS ARGS...: run volperm under capsh --drop=DROPS.
capped() {
	local drops=$1
	shift
	NRUN=$((NRUN + 1))
	OUT=$W/run$NRUN.out
	ERR=$W/run$NRUN.err
	capsh --drop="$drops" -- -c 'exec "$0" "$@"' "$VP" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	say "+ [capsh --drop=$drops] volperm $(printf '%q ' "$@")-> exit $RC"
	_sanitizer_check
}
capsh --drop=cap_chown -- -c 'grep CapEff /proc/self/status' >"$W/capeff" || skip "capsh --drop does not work here"
[ "$(( 0x$(awk '{print $2}' "$W/capeff") & 1 ))" = 0 ] || skip "capsh --drop did not drop CAP_CHOWN from the effective set"

for drops in cap_chown,cap_fowner cap_chown cap_fowner; do
	capped "$drops" apply --owner 1001:1001 --journal-dir "$J" "$V"
	expect_rc 2 "apply without $drops: exit 2"
	one_line_err "$ERR" "apply without $drops"
	want=CAP_CHOWN
	[ "$drops" = cap_fowner ] && want=CAP_FOWNER
	assert_file_match "$want" "$ERR" "apply without $drops: the sentence names $want"
	unchanged "apply without $drops: nothing changed (owners, 4755, ctime)"
	no_journal_files "$J" "apply without $drops: no journal created"
done
capped cap_chown,cap_fowner apply --owner 1001:1001 --json --journal-dir "$J" "$V"
expect_rc 2 "apply --json without caps: exit 2"
json_ok "$OUT" "apply --json without caps: still valid NDJSON"
assert_match 'CAP_CHOWN' "$(jsum "$OUT" message)" "apply --json: summary.message names CAP_CHOWN"
assert_eq "$(jcount "$OUT" error)" 0 "apply --json: no per-entry error events (one sentence, not one EPERM per file)"

setpriv --bounding-set=-chown,-fowner -- "$VP" apply --owner 1001:1001 --journal-dir "$J" "$V" >"$W/sp.out" 2>"$W/sp.err"
assert_eq "$?" 2 "setpriv --bounding-set=-chown,-fowner: apply exits 2"
one_line_err "$W/sp.err" "setpriv variant"
unchanged "setpriv variant: nothing changed"

# --- what needs no capability ---------------------------------------------------
capped cap_chown,cap_fowner plan --owner 1001:1001 --journal-dir "$J" "$V"
expect_rc 0 "plan without CHOWN/FOWNER: a dry run needs no capability"
capped cap_chown,cap_fowner check --owner 1000:1000 --journal-dir "$J" "$V"
expect_rc 0 "check of a compliant tree without caps: exit 0"
capped cap_chown,cap_fowner apply --owner 1000:1000 --journal-dir "$J" "$V"
expect_rc 0 "apply on a compliant tree without caps: exit 0 (nothing to do)"
no_journal_files "$J" "compliant apply: no journal"
unchanged "dry runs without caps: nothing changed"

# --- --no-journal needs only CHOWN ... ------------------------------------------------
V2=$W/plain
mkdir -p "$V2/d"
echo x >"$V2/d/x"
chown -R 1000:1000 "$V2"
capped cap_fowner apply --owner 1001:1001 --no-journal --quiet "$V2"
expect_rc 0 "apply --no-journal without CAP_FOWNER works (no setuid files)"
assert_eq "$(owner_of "$V2/d/x")" 1001:1001 "--no-journal without FOWNER: changed"
# ... except that the kernel needs CAP_FOWNER (or ownership) to chown a
# setuid file, since that clears the bit: a chmod. One sentence, not an
# EPERM per setuid file; with one thread, before any change (the refusal
# comes when the entry is pinned, and the batch is changed after).
capped cap_fowner apply --owner 1001:1001 --no-journal --jobs 1 "$V"
expect_rc 2 "apply --no-journal --jobs 1 without CAP_FOWNER on a tree with a setuid file: refused up front (exit 2)"
one_line_err "$ERR" "--no-journal, setuid file, no FOWNER"
assert_file_match 'CAP_FOWNER' "$ERR" "--no-journal, setuid file, no FOWNER: names CAP_FOWNER"
unchanged "--no-journal, setuid file, no FOWNER: nothing changed"
# With several threads another one may have changed its entries before the
# refusal, and without a journal nothing takes them back: exit 5, as for
# any failure with --no-journal (volperm(1)). Still one sentence, and the
# setuid file itself is never touched. On a copy: $V must stay as it is.
V3=$W/vol3
cp -a "$V" "$V3"
capped cap_fowner apply --owner 1001:1001 --no-journal --jobs 4 "$V3"
rc_in "$RC" "2 5" && pass "--no-journal --jobs 4, setuid file, no FOWNER: exit $RC (2 or 5)" ||
	fail "--no-journal --jobs 4, setuid file, no FOWNER: exit $RC, want 2 or 5"
one_line_err "$ERR" "--no-journal --jobs 4, setuid file, no FOWNER"
assert_file_match 'CAP_FOWNER' "$ERR" "--no-journal --jobs 4: names CAP_FOWNER"
assert_eq "$(stat -c '%u:%g %a' "$V3/d/f1")" "1000:1000 4755" "--no-journal --jobs 4: the setuid file is untouched"
if [ "$RC" = 2 ]; then
	assert_eq "$(stat -c '%u:%g' "$V3/d/f2" "$V3/d/f3" | sort -u | tr '\n' ' ')" "1000:1000 " "--no-journal --jobs 4, exit 2: nothing changed"
fi

# --- the init-container set: uid 0 with only CHOWN and FOWNER -------------------------
setpriv --bounding-set=-all,+chown,+fowner --inh-caps=-all -- "$VP" apply --owner 1001:1001 --journal-dir "$J" "$V" >"$W/ic.out" 2>"$W/ic.err"
assert_eq "$?" 0 "uid 0 with only CHOWN+FOWNER (init container): apply works"
assert_eq "$(owner_of "$V/d/f3")" 1001:1001 "init container: changed"

# --- rollback without capabilities -------------------------------------------------------
jf=$(newest_journal "$J")
snap "$V" "$W/v1.snap" --ctime
capped cap_chown,cap_fowner rollback --journal-dir "$J" "$V"
expect_rc 2 "rollback without CHOWN/FOWNER: exit 2"
one_line_err "$ERR" "rollback without caps"
assert_file_match 'CAP_CHOWN' "$ERR" "rollback without caps: names CAP_CHOWN"
s=$W/r.snap
snap "$V" "$s" --ctime
snap_eq "$W/v1.snap" "$s" "rollback without caps: nothing changed"
vp "journal" list --journal-dir "$J" "$V"
assert_file_match 'committed' "$OUT" "the journal is still committed (usable)"
setpriv --bounding-set=-all,+chown,+fowner --inh-caps=-all -- "$VP" rollback --journal-dir "$J" "$V" >"$W/icr.out" 2>"$W/icr.err"
assert_eq "$?" 0 "rollback with the init-container set (restores setuid on a root... file: needs only CHOWN+FOWNER here)"
snap "$V" "$s" --ctime
snap_eq "$W/v0.snap" "$s" "rolled back exactly (4755 back)" --ignore-field ctime

# --- an unreadable dir without CAP_DAC_READ_SEARCH: stops, rolls back, exit 3 ----------------
mkdir -m 0700 "$V/private"
echo p >"$V/private/p"
chown -R 1000:1000 "$V/private"
chmod 0700 "$V/private"
snap "$V" "$W/v2.snap"
setpriv --bounding-set=-all,+chown,+fowner --inh-caps=-all -- "$VP" apply --owner 1001:1001 --journal-dir "$J" "$V" >"$W/dr.out" 2>"$W/dr.err"
RC=$? OUT=$W/dr.out ERR=$W/dr.err
expect_rc 3 "unreadable dir without DAC_READ_SEARCH: stops and rolls back"
snap "$V" "$W/v3.snap"
snap_eq "$W/v2.snap" "$W/v3.snap" "unreadable dir: everything rolled back"
assert_true "unreadable dir: a few lines on stderr, not one per entry" test "$(wc -l <"$W/dr.err")" -le 3

finish
