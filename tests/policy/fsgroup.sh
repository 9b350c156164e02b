#!/usr/bin/env bash
# --fsgroup GID, --fsgroup-policy always|on-root-mismatch, --read-only:
# the kubelet's volume ownership change (pkg/volume/volume_linux.go), on
# real trees.
#
#  - the kubelet's own behavioural cases (TestSetVolumeOwnershipMode): a
#    "rogue" subdir without setgid is fixed by `always` and left alone by
#    `on-root-mismatch` when the root is valid; a root with 0770 but no
#    setgid is walked and fixed;
#  - every entry gets the group (symlinks lchown-style, their targets are
#    untouched); non-symlinks get the kubelet's masks ORed in (0660, 0440
#    read-only; directories also 0110 and setgid): bits are only added,
#    except what chown(2) itself clears (setuid, setgid with g+x, file
#    capabilities), which volperm reports and never puts back;
#  - a whole mktree tree (ACLs, setid bits, capabilities, hard links,
#    symlinks, hostile names) checked entry by entry against an independent
#    model of the kubelet's rule; rollback restores it exactly;
#  - with only CAP_CHOWN and CAP_FOWNER (the documented init-container
#    capabilities) the result is still right, or volperm refuses up front.
. "$(dirname "$0")/../cli/lib.sh"
setup
need_cmd setfacl getfacl setcap getcap setpriv

FSG=3000
J=$(new_jdir)

# has_sgid PATH
has_sgid() { [ $((8#$(stat -c %a "$1") & 8#2000)) -ne 0 ]; }
gid_of() { stat -c %g -- "$1"; }

# ---------------------------------------------------------------------------
# 1. kubelet: rootdir=validperm, a rogue subdir without setgid
# ---------------------------------------------------------------------------
mkvalid() { # mkvalid DIR: root 2770 group FSG; roguedir 0750 without setgid; a 0600 file in it
	mkdir -p "$1/roguedir"
	chgrp "$FSG" "$1" "$1/roguedir"
	chmod 2770 "$1"
	chmod 00750 "$1/roguedir"
	printf 'x\n' >"$1/roguedir/data"
	chmod 0600 "$1/roguedir/data"
	chgrp "$FSG" "$1/roguedir/data"
}
V=$W/valid
mkvalid "$V"
[ "$(mode_of "$V/roguedir")" = 0750 ] || die "setup: roguedir is $(mode_of "$V/roguedir")"
snap "$V" "$W/valid0.snap"
snap "$V" "$W/valid0c.snap" --ctime

vp_expect 0 "on-root-mismatch, valid root: check" check --fsgroup $FSG --fsgroup-policy on-root-mismatch "$V"
vp_expect 0 "on-root-mismatch, valid root: apply" apply --fsgroup $FSG --fsgroup-policy on-root-mismatch --journal-dir "$J" --json "$V"
json_ok "$OUT" "apply --json output is valid NDJSON"
assert_eq "$(jsum "$OUT" root_complies)" true "summary root_complies is true"
assert_eq "$(jsum "$OUT" scanned)" 0 "nothing was walked (scanned 0)"
assert_eq "$(jsum "$OUT" journal)" null "no journal for a skipped walk"
assert_eq "$(count_journals "$J")" 0 "no journal file created"
assert_eq "$(mode_of "$V/roguedir")" 0750 "rogue subdir left alone by on-root-mismatch (kubelet: validperm)"
assert_eq "$(mode_of "$V/roguedir/data")" 0600 "file under the rogue subdir left alone"
snap "$V" "$W/valid1c.snap" --ctime
snap_eq "$W/valid0c.snap" "$W/valid1c.snap" "on-root-mismatch with a valid root changed nothing, not even ctime"
vp_expect 0 "human plan says the walk was skipped" plan --fsgroup $FSG --fsgroup-policy on-root-mismatch "$V"
assert_file_match "root: .*complies.*skipped" "$OUT" "plan names the skip"

# The same tree with `always`: the rogue subdir is fixed.
vp_expect 1 "always: check finds the rogue subdir" check --fsgroup $FSG "$V"
vp_expect 0 "always: apply" apply --fsgroup $FSG --fsgroup-policy always --journal-dir "$J" --list "$V"
assert_eq "$(mode_of "$V/roguedir")" 2770 "rogue subdir fixed by always: 2770"
assert_eq "$(mode_of "$V/roguedir/data")" 0660 "its file: 0660"
assert_eq "$(mode_of "$V")" 2770 "root unchanged: 2770"
assert_file_match "^change mode 0750->2770 .*/roguedir$" "$OUT" "--list shows the rogue subdir's mode change"
assert_file_nomatch "^(chown|change) .*/valid$" "$OUT" "--list: the compliant root is not listed"
vp_expect 0 "always: check is now compliant" check --fsgroup $FSG "$V"
vp_expect 0 "always: rollback" rollback --journal-dir "$J" "$V"
snap "$V" "$W/valid2.snap"
snap_eq "$W/valid0.snap" "$W/valid2.snap" "rollback restored the rogue subdir exactly"

# ---------------------------------------------------------------------------
# 2. kubelet: rootdir=invalidperm (0770 without setgid) is walked and fixed
# ---------------------------------------------------------------------------
V=$W/invalid
mkvalid "$V"
chmod 00770 "$V"
snap "$V" "$W/inv0.snap"
vp_expect 1 "root 0770 without setgid: check (on-root-mismatch) says changes" check --fsgroup $FSG --fsgroup-policy on-root-mismatch "$V"
vp_expect 0 "root 0770 without setgid: apply on-root-mismatch" apply --fsgroup $FSG --fsgroup-policy on-root-mismatch --journal-dir "$J" --json "$V"
assert_eq "$(jsum "$OUT" root_complies)" false "summary root_complies false"
assert_eq "$(jsum "$OUT" scanned)" 3 "the whole tree was walked (3 entries)"
assert_eq "$(mode_of "$V")" 2770 "root fixed: 2770"
assert_eq "$(mode_of "$V/roguedir")" 2770 "rogue subdir fixed too: 2770"
assert_eq "$(mode_of "$V/roguedir/data")" 0660 "file: 0660"
vp_expect 0 "second run: root complies now" apply --fsgroup $FSG --fsgroup-policy on-root-mismatch --journal-dir "$J" --json "$V"
assert_eq "$(jsum "$OUT" scanned)" 0 "second run walks nothing"
vp_expect 0 "rollback" rollback --journal-dir "$J" "$V"
snap "$V" "$W/inv1.snap"
snap_eq "$W/inv0.snap" "$W/inv1.snap" "rollback restored root 0770 and the rogue subdir exactly"

# Roots that miss one condition each are walked: other group; bits missing.
for variant in group bits; do
	V=$W/root-$variant
	mkvalid "$V"
	case $variant in
	group) chgrp 0 "$V" ;;
	bits) chmod 2750 "$V" ;;
	esac
	vp_expect 0 "root with wrong $variant: apply on-root-mismatch" apply --fsgroup $FSG --fsgroup-policy on-root-mismatch --journal-dir "$J" --json "$V"
	assert_eq "$(jsum "$OUT" scanned)" 3 "root with wrong $variant: walked"
	assert_eq "$(mode_of "$V/roguedir")" 2770 "root with wrong $variant: rogue subdir fixed"
	assert_eq "$(owner_of "$V")" "0:$FSG" "root with wrong $variant: root group $FSG"
	assert_eq "$(mode_of "$V")" 2770 "root with wrong $variant: root 2770"
done

# A root that is not a directory is always walked (kubelet), even when it
# already has the group and the bits: one entry scanned, nothing changed.
F1=$W/single-file
printf 'y\n' >"$F1"
chgrp $FSG "$F1"
chmod 0660 "$F1"
vp_expect 0 "file root, compliant: apply on-root-mismatch" apply --fsgroup $FSG --fsgroup-policy on-root-mismatch --journal-dir "$J" --json "$F1"
assert_eq "$(jsum "$OUT" root_complies)" false "file root: never an O(1) skip"
assert_eq "$(jsum "$OUT" scanned)" 1 "file root: walked (1 entry)"
assert_eq "$(jsum "$OUT" changes)" 0 "file root: no change"
chgrp 0 "$F1"
chmod 0600 "$F1"
vp_expect 0 "file root, other group and 0600: apply on-root-mismatch" apply --fsgroup $FSG --fsgroup-policy on-root-mismatch --journal-dir "$J" "$F1"
assert_eq "$(stat -c '%g %a' "$F1")" "$FSG 660" "file root: group $FSG, 0660"

# ---------------------------------------------------------------------------
# 3. symlinks get the group; their targets are untouched
# ---------------------------------------------------------------------------
V=$W/links
O=$W/outside
mkdir -p "$V/sub" "$O/dir"
printf 'secret\n' >"$O/target"
chmod 0600 "$O/target"
chmod 0700 "$O/dir"
printf 'in\n' >"$V/sub/inside"
chmod 0644 "$V/sub/inside"
ln -s "$O/target" "$V/abs-out"
ln -s ../../outside/dir "$V/sub/rel-dir-out"
ln -s inside "$V/sub/rel-in"
ln -s /nonexistent/x "$V/dangling"
out_before=$(stat -c '%u:%g %a %Z' "$O/target" "$O/dir")
vp_expect 0 "symlinks: apply --fsgroup" apply --fsgroup $FSG --journal-dir "$J" --list "$V"
for l in abs-out sub/rel-dir-out sub/rel-in dangling; do
	assert_eq "$(stat -c '%g %a %F' "$V/$l")" "$FSG 777 symbolic link" "symlink $l: group $FSG, still a 0777 link"
done
assert_eq "$(stat -c '%u:%g %a %Z' "$O/target" "$O/dir")" "$out_before" "targets outside the tree: owner, mode and ctime untouched"
assert_eq "$(stat -c '%g %a' "$V/sub/inside")" "$FSG 664" "the in-tree target changed as itself (0664)"
assert_file_match "^chown 0:0->0:$FSG .*/abs-out$" "$OUT" "--list: symlink change is a chown without mode"
assert_file_nomatch "mode .*->.* .*/abs-out$" "$OUT" "--list: no mode change for a symlink"

# ---------------------------------------------------------------------------
# 4. --read-only: g+r (and the kubelet's 0440 / 0550+setgid), w never removed
# ---------------------------------------------------------------------------
V=$W/ro
mkdir -p "$V/d0700" "$V/d0770"
printf 'a\n' >"$V/f0600"
printf 'b\n' >"$V/f0664"
printf 'c\n' >"$V/f0000"
chmod 0600 "$V/f0600"
chmod 0664 "$V/f0664"
chmod 0000 "$V/f0000"
chmod 0700 "$V/d0700" "$V"
chmod 0770 "$V/d0770"
snap "$V" "$W/ro0.snap"
vp_expect 0 "--read-only: apply" apply --fsgroup $FSG --read-only --journal-dir "$J" "$V"
assert_eq "$(mode_of "$V/f0600")" 0640 "read-only: file 0600 -> 0640 (g+r)"
assert_eq "$(mode_of "$V/f0664")" 0664 "read-only: file 0664 keeps g+w"
assert_eq "$(mode_of "$V/f0000")" 0440 "read-only: file 0000 -> 0440 (kubelet mask 0440)"
assert_eq "$(mode_of "$V/d0700")" 2750 "read-only: dir 0700 -> 2750"
assert_eq "$(mode_of "$V/d0770")" 2770 "read-only: dir 0770 -> 2770 (g+w kept)"
assert_eq "$(mode_of "$V")" 2750 "read-only: root 0700 -> 2750"
vp_expect 0 "read-only: on-root-mismatch now skips" apply --fsgroup $FSG --read-only --fsgroup-policy on-root-mismatch --journal-dir "$J" --json "$V"
assert_eq "$(jsum "$OUT" root_complies)" true "read-only root 2750 complies (needs r-x + setgid)"
vp_expect 1 "read-only tree is not rw-compliant: check without --read-only" check --fsgroup $FSG "$V"
vp_expect 0 "read-only: rollback" rollback --journal-dir "$J" "$V"
snap "$V" "$W/ro1.snap"
snap_eq "$W/ro0.snap" "$W/ro1.snap" "read-only: rollback exact"

# ---------------------------------------------------------------------------
# 5. a whole tree against a model of the kubelet's rule; rollback exact
# ---------------------------------------------------------------------------
cat >"$W/fsg_model.py" <<'PY'
# usage: fsg_model.py BEFORE.snap AFTER.snap FSGROUP ro|rw
# The kubelet's rule, modelled independently of volperm, applied to each
# entry of BEFORE; prints every field of AFTER that differs; exit 1 if any.
# Rule: gid = FSGROUP; a symlink changes nothing else; for other entries,
# when the group changes, chown(2) clears setuid, setgid when g+x is set
# (non-directories) and security.capability; then the mode gains 0660
# (0440 read-only), directories also 0110 and setgid. chmod(2) rewrites the
# ACL's user::, mask:: (or group:: without a mask) and other:: entries.
import struct, sys

def rd(p):
    d = {}
    for line in open(p, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        d[f[0]] = f
    return d

def acl_chmod(hexv, mode):
    if hexv == "-":
        return hexv
    b = bytearray(bytes.fromhex(hexv))
    ents = [(4 + 8 * i) for i in range((len(b) - 4) // 8)]
    tags = [struct.unpack_from("<H", b, o)[0] for o in ents]
    has_mask = 0x10 in tags
    for o, t in zip(ents, tags):
        if t == 0x01:
            struct.pack_into("<H", b, o + 2, (mode >> 6) & 7)
        elif t == 0x20:
            struct.pack_into("<H", b, o + 2, mode & 7)
        elif t == (0x10 if has_mask else 0x04):
            struct.pack_into("<H", b, o + 2, (mode >> 3) & 7)
    return b.hex()

before, after = rd(sys.argv[1]), rd(sys.argv[2])
fsg, ro = sys.argv[3], sys.argv[4] == "ro"
bad = 0
if sorted(before) != sorted(after):
    print("entry lists differ"); sys.exit(1)
for p, f in sorted(before.items()):
    path, typ, uid, gid, mode, acc, dfl, caps = f[:8]
    m = int(mode, 8)
    want = [path, typ, uid, fsg, mode, acc, dfl, caps]
    if typ != "symlink":
        if gid != fsg and typ != "dir":
            m &= ~0o4000
            if m & 0o2010 == 0o2010:
                m &= ~0o2000
            want[7] = "-"
        m |= 0o440 if ro else 0o660
        if typ == "dir":
            m |= 0o110 | 0o2000
        want[4] = "%04o" % m
        want[5] = acl_chmod(acc, m)
    got = after[p][:8]
    for name, w, g in zip(["path", "type", "uid", "gid", "mode", "acl_access", "acl_default", "caps"], want, got):
        if w != g:
            bad += 1
            if bad <= 30:
                print("%s: %s want %s got %s" % (p, name, w, g))
if bad:
    print("%d differences" % bad)
sys.exit(1 if bad else 0)
PY
model_check() { # model_check BEFORE AFTER ro|rw DESC
	local d
	if d=$(python3 "$W/fsg_model.py" "$1" "$2" $FSG "$3"); then
		pass "$4"
	else
		fail "$4:"
		printf '%s\n' "$d" | head -n 30 | sed 's/^/    /'
	fi
}

V=$W/tree
mktree "$V" 1500 --seed 5 --acl-every 7 --default-acl-every 5 --setid 5 --caps 3 --hostile --hardlink-every 50 --symlink-every 20
snap "$V" "$W/tree0.snap"
vp_expect 0 "tree: plan" plan --fsgroup $FSG --json "$V"
snap "$V" "$W/tree-plan.snap"
snap_eq "$W/tree0.snap" "$W/tree-plan.snap" "tree: plan changed nothing"
assert_true "tree: plan reports setuid drops" [ "$(jsum "$OUT" setuid_cleared)" -gt 0 ]
assert_true "tree: plan reports mode changes" [ "$(jsum "$OUT" mode)" -gt 0 ]
vp_expect 1 "tree: check before" check --fsgroup $FSG "$V"
vp_expect 0 "tree: apply --fsgroup (always)" apply --fsgroup $FSG --journal-dir "$J" "$V"
snap "$V" "$W/tree1.snap"
model_check "$W/tree0.snap" "$W/tree1.snap" rw "tree: every entry as the kubelet rule gives (group, added bits, chown drops, ACL mask)"
vp_expect 0 "tree: check after" check --fsgroup $FSG "$V"
nj=$(count_journals "$J")
vp_expect 0 "tree: second apply" apply --fsgroup $FSG --journal-dir "$J" --json "$V"
assert_eq "$(jsum "$OUT" changes)" 0 "tree: second apply changes nothing"
assert_eq "$(count_journals "$J")" "$nj" "tree: second apply wrote no journal"

# bits never removed: every permission bit set before is still set, except
# setuid/setgid that chown cleared (the model above checks exactly which)
python3 - "$W/tree0.snap" "$W/tree1.snap" >"$W/removed.txt" <<'PY'
import sys
rd = lambda p: {l.split("\t")[0]: l.split("\t") for l in open(p, encoding="utf-8")}
a, b = rd(sys.argv[1]), rd(sys.argv[2])
for p in a:
    lost = int(a[p][4], 8) & ~int(b[p][4], 8) & 0o1777
    if lost:
        print(p, a[p][4], b[p][4])
PY
assert_eq "$(wc -l <"$W/removed.txt")" 0 "tree: no rwx or sticky bit was removed anywhere"

vp_expect 0 "tree: rollback" rollback --journal-dir "$J" "$V"
snap "$V" "$W/tree2.snap"
snap_eq "$W/tree0.snap" "$W/tree2.snap" "tree: rollback restored gid, mode (setuid/setgid), ACLs and capabilities exactly"

vp_expect 0 "tree: apply --read-only" apply --fsgroup $FSG --read-only --journal-dir "$J" "$V"
snap "$V" "$W/tree3.snap"
model_check "$W/tree0.snap" "$W/tree3.snap" ro "tree, read-only: every entry as the kubelet rule gives"
vp_expect 0 "tree, read-only: rollback" rollback --journal-dir "$J" "$V"
snap "$V" "$W/tree4.snap"
snap_eq "$W/tree0.snap" "$W/tree4.snap" "tree, read-only: rollback exact"

# ---------------------------------------------------------------------------
# 6. the init-container capability set: CAP_CHOWN + CAP_FOWNER only
# ---------------------------------------------------------------------------
# chmod(2) by a process that is not in the file's group and lacks
# CAP_FSETID silently drops the setgid bit it asks for. An init container
# with --cap-add CHOWN --cap-add FOWNER (README) must still end with
# setgid directories, or be told up front what it lacks.
V=$W/caps
mkdir -p "$V/a/b"
printf 'z\n' >"$V/a/f"
snap "$V" "$W/caps0.snap"
NRUN=$((NRUN + 1))
OUT=$W/run$NRUN.out
ERR=$W/run$NRUN.err
setpriv --bounding-set=-all,+chown,+fowner --inh-caps=-all -- \
	"$VP" apply --fsgroup $FSG --journal-dir "$J" "$V" >"$OUT" 2>"$ERR"
RC=$?
say "+ setpriv --bounding-set=-all,+chown,+fowner volperm apply --fsgroup $FSG $V -> exit $RC"
case $RC in
0)
	pass "CHOWN+FOWNER only: apply exit 0"
	assert_true "CHOWN+FOWNER only: root has setgid" has_sgid "$V"
	assert_true "CHOWN+FOWNER only: subdir a has setgid" has_sgid "$V/a"
	assert_true "CHOWN+FOWNER only: subdir a/b has setgid" has_sgid "$V/a/b"
	vp_expect 0 "CHOWN+FOWNER only: exit 0 means compliant (check)" check --fsgroup $FSG "$V"
	;;
2)
	pass "CHOWN+FOWNER only: refused up front (exit 2)"
	assert_file_match "FSETID" "$ERR" "CHOWN+FOWNER only: the refusal names CAP_FSETID"
	snap "$V" "$W/caps1.snap"
	snap_eq "$W/caps0.snap" "$W/caps1.snap" "CHOWN+FOWNER only: refused run changed nothing"
	;;
*)
	fail "CHOWN+FOWNER only: expected exit 0 (and a right result) or 2 (refused), got $RC"
	show_run
	;;
esac

# ---------------------------------------------------------------------------
# 7. bad combinations: exit 2, nothing changes
# ---------------------------------------------------------------------------
V=$W/bad
mkdir -p "$V"
snap "$V" "$W/bad0.snap" --ctime
vp_expect 2 "--fsgroup with --owner UID:GID" apply --fsgroup $FSG --owner 1:1 --journal-dir "$J" "$V"
vp_expect 2 "--read-only without --fsgroup" apply --owner 1 --read-only --journal-dir "$J" "$V"
vp_expect 2 "--fsgroup-policy without --fsgroup" apply --owner 1 --fsgroup-policy always --journal-dir "$J" "$V"
vp_expect 2 "--fsgroup-policy bogus" apply --fsgroup $FSG --fsgroup-policy sometimes --journal-dir "$J" "$V"
assert_file_match "sometimes" "$ERR" "bogus policy named in the message"
vp_expect 2 "--fsgroup -1" apply --fsgroup -1 --journal-dir "$J" "$V"
vp_expect 2 "--fsgroup 4294967295" apply --fsgroup 4294967295 --journal-dir "$J" "$V"
vp_expect 2 "--fsgroup junk" apply --fsgroup 12x --journal-dir "$J" "$V"
snap "$V" "$W/bad1.snap" --ctime
snap_eq "$W/bad0.snap" "$W/bad1.snap" "refused runs changed nothing"
vp_expect 0 "--fsgroup with --owner UID (owner + fsGroup)" apply --fsgroup $FSG --owner 1001 --journal-dir "$J" "$V"
assert_eq "$(owner_of "$V"):$(mode_of "$V")" "1001:$FSG:2775" "owner 1001, group $FSG, 2775"

finish
