#!/usr/bin/env bash
# rollback --jobs N: several threads restore a journal (src/rollback.c).
# Two identical trees get the same apply and the same later edits (which
# the rollback must leave alone as conflicts); one is rolled back by one
# thread, the other by 16. Both must end identical to each other, equal to
# the pristine tree except the edited entries, with the same counts. The
# threads are real (strace counts the clones), and without
# CAP_DAC_READ_SEARCH and CAP_DAC_OVERRIDE the rollback keeps to one thread:
# the newest-first order is then what lets it reach every directory.
. "$(dirname "$0")/lib.sh"
setup
need_root
need_cmd setfacl setcap strace capsh

GEN=(--seed 77 --acl-every 7 --default-acl-every 5 --setid 5 --caps 3 --hostile --hardlink-every 40)
mktree "$W/a" 2500 "${GEN[@]}"
mktree "$W/b" 2500 "${GEN[@]}"
snap "$W/a" "$W/pristine.snap"
snap "$W/b" "$W/pristine_b.snap"
snap_eq "$W/pristine.snap" "$W/pristine_b.snap" "the two trees are identical (test setup)"

# edit TREE: the same later changes in both trees (conflicts for rollback:
# an owner or a mode that is neither the journal's before nor its after).
# The edited paths (files of one link), relative, go to $W/edited.list.
edit() {
	local t=$1 n=0 f
	(cd "$t" && find . -type f -links 1 -name '*7*' | LC_ALL=C sort | head -n 30 | cut -c3-) >"$W/edited.list"
	while IFS= read -r f; do
		n=$((n + 1))
		case $((n % 2)) in
		0) chown -h 7777:7777 "$t/$f" ;;
		1) chmod 0604 "$t/$f" ;;
		esac
	done <"$W/edited.list"
}

for t in a b; do
	J=$W/j$t
	mkdir -m 0700 "$J"
	vp_expect 0 "apply --owner 1001:1001 --chmod g+rwX on $t" \
		apply --owner 1001:1001 --chmod g+rwX --jobs 8 --journal-dir "$J" "$W/$t"
	edit "$W/$t"
done
snap "$W/a" "$W/edited.snap"
snap "$W/b" "$W/edited_b.snap"
snap_eq "$W/edited.snap" "$W/edited_b.snap" "the two trees are identical after the edits (test setup)"

vp rollback --jobs 1 --json --journal-dir "$W/ja" "$W/a"
rc1=$RC
out1=$OUT
expect_rc 6 "rollback --jobs 1: the edited entries are conflicts (exit 6)"
NRUN=$((NRUN + 1))
out16=$W/run$NRUN.out
# (LeakSanitizer cannot run under ptrace: off for the runs under strace.)
NOLEAK="ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0"
env "$NOLEAK" strace -f -qq -e trace=clone,clone3 -o "$W/strace16" \
	"$VP" rollback --jobs 16 --json --journal-dir "$W/jb" "$W/b" >"$out16" 2>"$W/run$NRUN.err"
rc16=$?
say "+ volperm rollback --jobs 16 (under strace) -> exit $rc16"
assert_eq "$rc16" "$rc1" "rollback --jobs 16 exits as --jobs 1 does"
clones=$(grep -c 'clone' "$W/strace16" || true)
assert_true "rollback --jobs 16 started threads ($clones clones)" [ "$clones" -ge 15 ]
for k in restored already conflicts errors; do
	assert_eq "$(jsum "$out16" "$k")" "$(jsum "$out1" "$k")" "--jobs 16 and --jobs 1: the same $k count ($(jsum "$out1" "$k"))"
done
assert_true "the rollback restored entries" [ "$(jsum "$out1" restored)" -gt 2000 ]
assert_eq "$(jsum "$out1" conflicts)" 30 "the 30 edited entries are conflicts"
snap "$W/a" "$W/rolled1.snap"
snap "$W/b" "$W/rolled16.snap"
snap_eq "$W/rolled1.snap" "$W/rolled16.snap" "--jobs 16 leaves the tree exactly as --jobs 1 does"
# Against the pristine tree, only the edited entries may differ.
python3 - "$W/pristine.snap" "$W/edited.snap" "$W/rolled16.snap" "$W/edited.list" <<'PY' && pass "--jobs 16: every entry not edited is back to pristine; every edited one kept its edit" || fail "--jobs 16: rollback result differs from the expected one"
import sys
def load(p):
    return {l.split("\t", 1)[0]: "\t".join(l.rstrip("\n").split("\t")[:8]) for l in open(p)}
P, E, R = (load(p) for p in sys.argv[1:4])
edited = {l.rstrip("\n") for l in open(sys.argv[4])}
bad = [k for k in set(P) | set(R) if (R.get(k) != E.get(k) if k in edited else R.get(k) != P.get(k))]
for k in sorted(bad)[:10]:
    print("    %s: now %r, pristine %r, edited %r" % (k, R.get(k), P.get(k), E.get(k)))
sys.exit(1 if bad or len(edited) != 30 else 0)
PY

# --force restores the conflicts too, with threads as without.
vp_expect 0 "rollback --force --jobs 16 of that journal" rollback --force --jobs 16 --journal "$(newest_journal "$W/jb")" "$W/b"
snap "$W/b" "$W/forced.snap"
snap_eq "$W/pristine.snap" "$W/forced.snap" "rollback --force --jobs 16 restores everything"

# Without CAP_DAC_READ_SEARCH and CAP_DAC_OVERRIDE: one thread, newest first, still exact.
vp_expect 0 "apply again" apply --owner 1002:1002 --jobs 8 --journal-dir "$W/jb" "$W/b"
NRUN=$((NRUN + 1))
env "$NOLEAK" strace -f -qq -e trace=clone,clone3 -o "$W/strace_nocap" \
	capsh --drop=cap_dac_read_search,cap_dac_override -- -c "exec '$VP' rollback --jobs 16 --journal-dir '$W/jb' '$W/b'" \
	>"$W/run$NRUN.out" 2>"$W/run$NRUN.err"
RC=$?
say "+ capsh --drop=cap_dac_read_search,cap_dac_override -- volperm rollback --jobs 16 -> exit $RC"
expect_rc 0 "rollback --jobs 16 without CAP_DAC_READ_SEARCH and CAP_DAC_OVERRIDE"
# capsh forks once to run the shell; volperm itself must not clone.
clones=$(grep -c 'clone' "$W/strace_nocap" || true)
assert_true "without them the rollback uses one thread ($clones clones: capsh's own)" [ "$clones" -le 1 ]
snap "$W/b" "$W/nocap.snap"
snap_eq "$W/pristine.snap" "$W/nocap.snap" "one-thread rollback without them restores everything"

# Under a low open-file limit: --jobs 64 ran 39 threads whose pin caches
# met EMFILE; each such entry was reported as a conflict ("gone or
# moved"), the journal marked rolled back, and ~2/3 of the tree stayed
# changed. The threads must fit the limit, and a pin that fails for want
# of fds must never be a final conflict.
vp_expect 0 "apply again" apply --owner 1002:1002 --jobs 8 --journal-dir "$W/jb" "$W/b"
NRUN=$((NRUN + 1))
(ulimit -n 48 && exec env "$NOLEAK" "$VP" rollback --jobs 64 --journal-dir "$W/jb" "$W/b") \
	>"$W/run$NRUN.out" 2>"$W/run$NRUN.err"
RC=$?
say "+ (ulimit -n 48) volperm rollback --jobs 64 -> exit $RC"
expect_rc 0 "rollback --jobs 64 under ulimit -n 48"
assert_eq "$(grep -c 'gone or moved' "$W/run$NRUN.err")" 0 "under ulimit -n 48: no entry called gone or moved"
snap "$W/b" "$W/fdlimit.snap"
snap_eq "$W/pristine.snap" "$W/fdlimit.snap" "rollback --jobs 64 under ulimit -n 48 restores everything"
finish
