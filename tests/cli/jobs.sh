#!/usr/bin/env bash
# --jobs N: the parallel walk changes exactly what one thread changes, and
# keeps the ordering rules across threads. For N in 1 2 3 8, on a tree whose
# hard links are spread over many directories (so different workers see the
# links of one inode):
#   - apply == chown -R -h on a copy (snapshot of uid/gid/mode/ACLs/caps);
#   - the journal holds one record per changed inode (no inode twice: one
#     hard-link decision across workers), the same (dev, ino) set for every N;
#   - postorder in the journal: no directory's record comes before a record
#     of anything below it, and the root's record is last;
#   - rollback restores the tree exactly;
#   - plan --json reports the same paths for every N (hard-linked files: the
#     same number; which link is named depends on the order).
# Also: --jobs is parsed strictly, VOLPERM_JOBS is its default, and a tree
# deeper than the walker's 16 kept directory fds (and than PATH_MAX) works.
. "$(dirname "$0")/lib.sh"
setup
need_cmd setfacl getfacl setcap

J=$(new_jdir)
V=$W/vol
mktree "$W/master" 6000 --seed 77 --acl-every 9 --setid 4 --caps 3 --hostile --hardlink-every 25
# More hard links, each inode linked from three far-apart directories.
i=0
for f in $(cd "$W/master" && find . -type f -name 'e*' | sort | awk 'NR % 97 == 0' | head -n 30); do
	d1=$(cd "$W/master" && find . -mindepth 1 -maxdepth 1 -type d | sort | sed -n "$((i % 7 + 1))p")
	d2=$(cd "$W/master" && find . -mindepth 2 -maxdepth 3 -type d | sort | sed -n "$((i * 5 % 40 + 1))p")
	ln "$W/master/$f" "$W/master/$d1/xlink$i" && ln "$W/master/$f" "$W/master/$d2/xlink$i" ||
		die "could not make cross-directory hard links"
	i=$((i + 1))
done
[ "$i" -ge 20 ] || die "test setup: only $i cross-directory hard-link sets"

cp -a "$W/master" "$W/oracle"
chown -R -h 1001:1002 "$W/oracle"
snap "$W/oracle" "$W/oracle.snap"
snap "$W/master" "$W/master.snap"

# check_journal FILE LABEL: postorder and uniqueness, from the JSON export.
check_journal() {
	python3 - "$1" >"$W/jcheck.out" 2>&1 <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ents = [r for r in recs if r.get("record") == "entry"]
if not ents:
    print("no entries"); sys.exit(1)
bad = 0
pos = {}
for i, e in enumerate(ents):
    pos.setdefault(e["path"], i)
inodes = [(e["dev"], e["ino"]) for e in ents]
if len(set(inodes)) != len(inodes):
    print("an inode is journaled twice"); bad += 1
if ents[-1]["path"] != ".":
    print("the root is not the last record:", ents[-1]["path"]); bad += 1
for i, e in enumerate(ents):
    p = e["path"]
    if p == ".":
        continue
    parts = p.split("/")
    for k in range(len(parts) - 1, -1, -1):
        anc = "/".join(parts[:k]) if k else "."
        j = pos.get(anc)
        if j is not None and j < i:
            print("ancestor %r (record %d) before %r (record %d)" % (anc, j, p, i)); bad += 1
            break
for e in ents:
    print("INODE %d %d" % (e["dev"], e["ino"]))
sys.exit(1 if bad else 0)
EOF
}

for n in 1 2 3 8; do
	rm -rf "$V"
	cp -a "$W/master" "$V"
	vp_expect 0 "[jobs $n] plan --json" plan --jobs "$n" --json --owner 1001:1002 "$V"
	# A hard-linked file is reported at whichever of its links completes the
	# count, which depends on the order: compare single-link paths, and
	# the number of multi-link reports.
	jpaths "$OUT" change "$V" | sort | python3 -c '
import codecs, os, sys
root = os.fsencode(sys.argv[1])
multi = 0
for line in sys.stdin:
    p = line.rstrip("\n")
    # ndjson.py prints names with Python backslash escapes: undo them.
    raw = codecs.escape_decode(p.encode())[0]
    full = root if p == "." else os.path.join(root, raw)
    st = os.lstat(full)
    if st.st_nlink > 1 and not os.path.isdir(full):
        multi += 1
    else:
        print(p)
print("multi-link reports:", multi)
' "$V" >"$W/plan$n.paths"
	vp_expect 0 "[jobs $n] apply --owner 1001:1002" apply --jobs "$n" --owner 1001:1002 --journal-dir "$J" "$V"
	snap "$V" "$W/applied$n.snap"
	snap_eq "$W/oracle.snap" "$W/applied$n.snap" "[jobs $n] apply == chown -R -h"
	jf=$(newest_journal "$J")
	vp_expect 0 "[jobs $n] journal export --format json" journal export --format json "$jf"
	cp "$OUT" "$W/journal$n.json"
	if check_journal "$W/journal$n.json"; then
		pass "[jobs $n] journal: postorder across threads, root last, every inode once"
	else
		fail "[jobs $n] journal order/uniqueness:"
		grep -v '^INODE' "$W/jcheck.out" | head -n 10 | sed 's/^/    /'
	fi
	grep '^INODE' "$W/jcheck.out" | sort >"$W/inodes$n"
	vp_expect 0 "[jobs $n] rollback" rollback --journal-dir "$J" "$V"
	snap "$V" "$W/rolled$n.snap"
	# Inode numbers differ between copies: compare with the master by content.
	snap_eq "$W/master.snap" "$W/rolled$n.snap" "[jobs $n] rollback restores the tree exactly"
	rm -f "$jf"
	# The journal's inode set, as paths of the first link: copies have other
	# inode numbers, so compare the count per run and the path sets.
	wc -l <"$W/inodes$n" >"$W/count$n"
done
for n in 2 3 8; do
	assert_eq "$(cat "$W/count$n")" "$(cat "$W/count1")" "[jobs $n] as many journal records as --jobs 1"
	if cmp -s "$W/plan1.paths" "$W/plan$n.paths"; then
		pass "[jobs $n] plan reports the same paths as --jobs 1"
	else
		fail "[jobs $n] plan paths differ from --jobs 1:"
		diff "$W/plan1.paths" "$W/plan$n.paths" | head -n 10 | sed 's/^/    /'
	fi
done

# Parsing: strict, with VOLPERM_JOBS as the default.
for bad in 0 -1 257 x 2x "" auto2 AUTO 99999999999999999999; do
	vp_expect 2 "--jobs '$bad' refused" plan --jobs "$bad" --owner 1:1 "$V"
	assert_file_match "invalid --jobs" "$ERR" "--jobs '$bad': says what is wrong"
done
VOLPERM_JOBS=0 vp_expect 2 "VOLPERM_JOBS=0 refused" plan --owner 1:1 "$V"
assert_file_match "invalid VOLPERM_JOBS" "$ERR" "VOLPERM_JOBS=0: names the variable"
VOLPERM_JOBS=0 vp_expect 0 "--jobs overrides VOLPERM_JOBS" plan --jobs 2 --owner 1:1 "$V"
VOLPERM_JOBS=3 vp_expect 0 "VOLPERM_JOBS=3 accepted" plan --owner 1:1 "$V"
assert_file_match "^jobs: +3 \(VOLPERM_JOBS\)$" "$OUT" "the summary says 3 jobs came from VOLPERM_JOBS"
vp_expect 0 "--jobs 256 accepted (the most)" plan --jobs 256 --owner 1:1 "$V"
assert_file_match "^jobs: +256 \(--jobs\)$" "$OUT" "the summary says --jobs 256"
# auto (the default) on a local filesystem: the CPUs, at most 8, and the
# filesystem named (the test volume is on the machine's local disk or tmpfs).
cpus=$(nproc)
[ "$cpus" -gt 8 ] && cpus=8
for how in "--jobs auto" "" "VOLPERM_JOBS=auto"; do
	case $how in
	VOLPERM_JOBS=*) VOLPERM_JOBS=auto vp_expect 0 "VOLPERM_JOBS=auto accepted" plan --owner 1:1 "$V" ;;
	"")
		# The default: neither --jobs nor VOLPERM_JOBS (which a caller,
		# such as scripts/test's sanitizer pass, may have exported).
		had_jobs=${VOLPERM_JOBS+x} saved_jobs=${VOLPERM_JOBS-}
		unset VOLPERM_JOBS
		vp_expect 0 "no --jobs: auto" plan --owner 1:1 "$V"
		[ -n "$had_jobs" ] && export VOLPERM_JOBS=$saved_jobs
		;;
	*) vp_expect 0 "--jobs auto accepted" plan --jobs auto --owner 1:1 "$V" ;;
	esac
	fstype=$(stat -f -c %T "$V")
	assert_file_match "^jobs: +$cpus \(auto: [a-z0-9]+, $cpus CPUs?\)$" "$OUT" "[${how:-default}] auto on $fstype: $cpus jobs, the filesystem and the CPUs named"
done
vp_expect 0 "--json carries the choice" plan --jobs auto --json --owner 1:1 "$V"
tail -n 1 "$OUT" | python3 -c '
import json, sys
s = json.loads(sys.stdin.read())
sys.exit(0 if s["event"] == "summary" and isinstance(s["jobs"], int) and s["jobs_why"].startswith("auto: ") else 1)' &&
	pass "the JSON summary has jobs and jobs_why" || fail "the JSON summary lacks jobs/jobs_why: $(tail -n 1 "$OUT")"
vp_expect 2 "journal list does not take --jobs" journal list --jobs 2 --journal-dir "$J" "$V"
assert_file_match "--jobs goes with plan, check, apply, rollback and recover" "$ERR" "journal --jobs: says which commands take it"

# Deep: 300 levels (beyond the 16 directory fds a worker keeps, and with
# 20-byte names beyond PATH_MAX), plus side branches for the other workers.
D=$W/deep
mkdir -p "$D"
python3 - "$D" <<'EOF'
import os, sys
root = sys.argv[1]
fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
for level in range(300):
    for b in range(3):
        side = "side%02d_%d" % (level % 100, b)
        os.mkdir(side, dir_fd=fd)
        open(os.path.join("/proc/self/fd/%d" % fd, side, "f"), "w").close()
    name = "d%019d" % level
    os.mkdir(name, dir_fd=fd)
    nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
open("/proc/self/fd/%d/leaf" % fd, "w").close()
os.close(fd)
EOF
total=$(find "$D" | wc -l)
vp_expect 0 "deep tree: apply --jobs 4" apply --jobs 4 --owner 1001:1002 --journal-dir "$J" "$D"
assert_eq "$(find "$D" ! -uid 1001 | wc -l)" 0 "deep tree: every entry changed ($total entries)"
jf=$(newest_journal "$J")
vp_expect 0 "deep tree: journal export" journal export --format json "$jf"
if check_journal "$OUT"; then
	pass "deep tree: journal in postorder, root last"
else
	fail "deep tree: journal order:"
	grep -v '^INODE' "$W/jcheck.out" | head -n 5 | sed 's/^/    /'
fi
vp_expect 0 "deep tree: rollback" rollback --journal-dir "$J" "$D"
assert_eq "$(find "$D" -uid 1001 | wc -l)" 0 "deep tree: rollback restored every entry"
finish
