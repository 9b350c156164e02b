#!/usr/bin/env bash
# Safety: symlinks are changed, never followed; hard links leaving the tree
# are skipped; nested mounts are not entered; FIFOs do not hang; device
# nodes are skipped by default; hostile names are quoted and round-trip.
. "$(dirname "$0")/lib.sh"
setup
need_cmd mkfifo mknod mount

J=$(new_jdir)
OUTSIDE=$W/outside
mkdir "$OUTSIDE"
echo secret >"$OUTSIDE/target"
echo ext >"$OUTSIDE/ext"
mkdir "$OUTSIDE/dir"
chown 1000:1000 "$OUTSIDE" "$OUTSIDE/target" "$OUTSIDE/ext" "$OUTSIDE/dir"
chmod 4750 "$OUTSIDE/target"

# --- symlinks pointing outside (absolute, relative, dangling, to a dir) -----
V=$W/links
mkdir "$V"
ln -s "$OUTSIDE/target" "$V/abs"
ln -s ../outside/target "$V/rel"
ln -s ../outside/nothing "$V/dangling"
ln -s "$OUTSIDE/dir" "$V/dirlink"
ln -s / "$V/rootlink"
ln -s /etc/passwd "$V/passwd"
chown -h 1000:1000 "$V" "$V"/*
before_t=$(statline "$OUTSIDE/target")
before_d=$(statline "$OUTSIDE/dir")
before_o=$(statline "$OUTSIDE")
before_p=$(statline /etc/passwd)
vp_expect 0 "apply on a tree of outward symlinks" apply --owner 1001:1001 --journal-dir "$J" "$V"
for l in abs rel dangling dirlink rootlink passwd; do
	assert_eq "$(owner_of "$V/$l")" 1001:1001 "symlink $l itself changed (lchown)"
done
assert_eq "$(statline "$OUTSIDE/target")" "$before_t" "outside target (abs+rel links) untouched: owner, mode 4750, ctime"
assert_eq "$(statline "$OUTSIDE/dir")" "$before_d" "outside dir (dirlink) untouched"
assert_eq "$(statline "$OUTSIDE")" "$before_o" "outside parent untouched"
assert_eq "$(statline /etc/passwd)" "$before_p" "/etc/passwd untouched"
assert_true "dangling target was not created" test ! -e "$OUTSIDE/nothing"
vp_expect 0 "rollback of the symlink tree" rollback --journal-dir "$J" "$V"
assert_eq "$(owner_of "$V/abs") $(owner_of "$V/dangling")" "1000:1000 1000:1000" "symlinks restored"
assert_eq "$(statline "$OUTSIDE/target")" "$before_t" "outside target still untouched after rollback"
# The root given as a symlink: resolved, the target tree is changed, not
# through a path that could be swapped. (The link itself is outside the tree.)
ln -s "$V" "$W/rootlink"
vp_expect 0 "apply with PATH = symlink to the volume" apply --owner 1002:1002 --journal-dir "$J" "$W/rootlink"
assert_eq "$(owner_of "$V")" 1002:1002 "volume behind the symlinked PATH changed"
assert_eq "$(owner_of "$W/rootlink")" 0:0 "the PATH symlink itself (outside the tree) untouched"
assert_eq "$(statline "$OUTSIDE/target")" "$before_t" "outside target untouched"

# --- hard link to a file outside the tree --------------------------------------
V=$W/hardlinks
mkdir "$V"
echo in >"$V/in"
ln "$OUTSIDE/ext" "$V/ext"
echo a >"$V/pair1"
ln "$V/pair1" "$V/pair2"
chown 1000:1000 "$V" "$V/in" "$V/pair1"
before_e=$(statline "$OUTSIDE/ext")
vp_expect 5 "apply with an external hard link: exit 5" apply --owner 1001:1001 --json --journal-dir "$J" "$V"
json_ok "$OUT" "valid NDJSON"
assert_eq "$(jpaths "$OUT" skip "$V" reason=external-hardlink)" ext "skip event: ext, reason external-hardlink"
assert_eq "$(jsum "$OUT" skip_reasons.external-hardlink)" 1 "summary.skip_reasons.external-hardlink = 1"
assert_eq "$(jsum "$OUT" exit)" 5 "summary.exit = 5"
assert_eq "$(statline "$OUTSIDE/ext")" "$before_e" "externally linked file untouched (owner, ctime)"
assert_eq "$(owner_of "$V/in")" 1001:1001 "other files changed"
assert_eq "$(owner_of "$V/pair1") $(owner_of "$V/pair2")" "1001:1001 1001:1001" "internal hard link pair changed"
assert_eq "$(owner_of "$V")" 1001:1001 "root changed"
vp_expect 0 "rollback" rollback --journal-dir "$J" "$V"
assert_eq "$(owner_of "$V/in")" 1000:1000 "rollback restored"
vp_expect 5 "apply --list with an external hard link" apply --owner 1001:1001 --list --journal-dir "$J" "$V"
assert_file_match "^skip external-hardlink $V/ext\$" "$OUT" "--list: skip external-hardlink line"
vp_expect 0 "rollback" rollback --journal-dir "$J" "$V"
vp_expect 0 "--allow-external-links changes it" apply --owner 1001:1001 --allow-external-links --journal-dir "$J" "$V"
assert_eq "$(owner_of "$OUTSIDE/ext")" 1001:1001 "external hard link changed with --allow-external-links"
vp_expect 0 "rollback --allow-external-links apply" rollback --journal-dir "$J" "$V"
assert_eq "$(owner_of "$OUTSIDE/ext")" 1000:1000 "external hard link restored to its owner"

# --- nested mount inside the volume ------------------------------------------
V=$W/mounts
mkdir -p "$V/sub" "$V/m"
if mount -t tmpfs -o mode=0755 tmpfs "$V/m" 2>/dev/null; then
	echo inner >"$V/m/inner"
	mkdir "$V/m/d"
	chown 1000:1000 "$V" "$V/sub" "$V/m" "$V/m/inner" "$V/m/d"
	before_m=$(statline "$V/m")
	before_i=$(statline "$V/m/inner")
	vp_expect 0 "apply skips a nested mount (rule skip: exit 0)" apply --owner 1001:1001 --json --journal-dir "$J" "$V"
	assert_eq "$(jpaths "$OUT" skip "$V" reason=mount-point)" m "skip event: m, reason mount-point"
	assert_eq "$(jsum "$OUT" skip_reasons.mount-point)" 1 "summary.skip_reasons.mount-point = 1"
	assert_eq "$(statline "$V/m")" "$before_m" "mount point unchanged"
	assert_eq "$(statline "$V/m/inner")" "$before_i" "file inside the mount unchanged (not entered)"
	assert_eq "$(owner_of "$V/sub")" 1001:1001 "sibling dir changed"
	vp_expect 0 "apply --cross-mounts enters it" apply --owner 1001:1001 --cross-mounts --journal-dir "$J" "$V"
	assert_eq "$(owner_of "$V/m") $(owner_of "$V/m/inner") $(owner_of "$V/m/d")" \
		"1001:1001 1001:1001 1001:1001" "--cross-mounts changed the mount point and its contents"
	vp_expect 0 "rollback of --cross-mounts apply" rollback --journal-dir "$J" "$V"
	assert_eq "$(owner_of "$V/m/inner")" 1000:1000 "rollback restored inside the mount"
	umount "$V/m"
else
	say "SKIP-PART: cannot mount tmpfs: nested mount not tested"
	fail "mount -t tmpfs failed (root in CI should be able to mount)"
fi

# --- FIFO without a writer, socket -----------------------------------------------
V=$W/fifo
mkdir "$V"
mkfifo "$V/pipe"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$V/sock"
chown 1000:1000 "$V" "$V/pipe" "$V/sock"
vpt 20 plan --owner 1001:1001 --journal-dir "$J" "$V"
expect_rc 0 "plan with a FIFO does not hang"
vpt 20 apply --owner 1001:1001 --journal-dir "$J" "$V"
expect_rc 0 "apply with a FIFO (no writer) does not hang"
assert_eq "$(owner_of "$V/pipe")" 1001:1001 "FIFO chowned"
assert_eq "$(owner_of "$V/sock")" 1001:1001 "socket chowned"
vpt 20 rollback --journal-dir "$J" "$V"
expect_rc 0 "rollback with a FIFO does not hang"
assert_eq "$(owner_of "$V/pipe")" 1000:1000 "FIFO restored"

# --- device nodes ---------------------------------------------------------------
V=$W/devices
mkdir "$V"
if mknod "$V/null" c 1 3 && mknod "$V/loop" b 7 250; then
	chown 1000:1000 "$V" "$V/null" "$V/loop"
	before_n=$(statline "$V/null")
	vp_expect 0 "apply skips device nodes (rule skip: exit 0)" apply --owner 1001:1001 --json --journal-dir "$J" "$V"
	assert_eq "$(jpaths "$OUT" skip "$V" reason=device | tr '\n' ' ')" "loop null " "skip events: both device nodes, reason device"
	assert_eq "$(jsum "$OUT" skip_reasons.device)" 2 "summary.skip_reasons.device = 2"
	assert_eq "$(statline "$V/null")" "$before_n" "char device unchanged"
	assert_eq "$(owner_of "$V")" 1001:1001 "its dir changed"
	vp_expect 0 "apply --include-devices" apply --owner 1001:1001 --include-devices --journal-dir "$J" "$V"
	assert_eq "$(owner_of "$V/null") $(owner_of "$V/loop")" "1001:1001 1001:1001" "device nodes changed with --include-devices"
else
	fail "mknod failed (root should be able to mknod)"
fi

# --- hostile names ------------------------------------------------------------------
V=$W/hostile
mktree "$V" 60 --seed 61 --hostile --symlink-every 0 --hardlink-every 0
snap "$V" "$W/h0.snap"
# expected changes: every entry not already 1001:1001 (all of them)
cut -f1 "$W/h0.snap" | LC_ALL=C sort >"$W/h.all"
vp_expect 0 "plan --json with hostile names" plan --owner 1001:1001 --json --journal-dir "$J" "$V"
json_ok "$OUT" "NDJSON valid with hostile names"
jpaths "$OUT" change "$V" >"$W/h.json-paths"
if cmp -s "$W/h.all" "$W/h.json-paths"; then
	pass "--json change paths (path / path_b64) round-trip every hostile name exactly"
else
	fail "--json change paths differ from the tree:"
	diff "$W/h.all" "$W/h.json-paths" | head -n 20 | sed 's/^/    /'
fi
vp_expect 0 "apply --list with hostile names" apply --owner 1001:1001 --list --journal-dir "$J" "$V"
cp "$OUT" "$W/h.list"
# Human output: valid UTF-8 names may stay as they are, but no control
# byte (tab, newline inside a name, ESC, ...) and no invalid UTF-8 (0xff).
if python3 - "$W/h.list" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
try:
    text = data.decode("utf-8")
except UnicodeDecodeError as e:
    print("    invalid UTF-8 in --list output: %s" % e)
    sys.exit(1)
bad = [l for l in text.split("\n") if any(ord(c) < 0x20 or ord(c) == 0x7f for c in l)]
for l in bad[:5]:
    print("    raw control character in: %r" % l)
sys.exit(1 if bad else 0)
PY
then
	pass "--list output is valid UTF-8 without raw control bytes (tab, newline, 0x01, 0xff quoted)"
else
	fail "--list output has raw control bytes or invalid UTF-8"
fi
if python3 "$TOOLS/listparse.py" "$W/h.list" "$V" chown >"$W/h.list-paths" 2>"$W/lp.err"; then
	pass "every --list chown line decodes to one existing path"
else
	fail "--list output does not decode: $(cat "$W/lp.err")"
fi
if cmp -s "$W/h.all" "$W/h.list-paths"; then
	pass "--list: one chown line per entry, each hostile name quoted on one line"
else
	fail "--list paths differ from the tree:"
	diff "$W/h.all" "$W/h.list-paths" | head -n 20 | sed 's/^/    /'
fi
assert_eq "$(grep -c '^chown ' "$W/h.list")" "$(wc -l <"$W/h.all")" "--list: number of chown lines = number of entries"
snap "$V" "$W/h1.snap"
assert_eq "$(cut -f3,4 "$W/h1.snap" | sort -u | tr '\t' :)" 1001:1001 "every hostile entry changed"
jf=$(newest_journal "$J")
vp_expect 0 "journal export --format json FILE with hostile names" journal export --format json --journal-dir "$J" "$jf"
json_export_ok() {
	if python3 - "$OUT" "$W/h0.snap" "$TOOLS" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from vptest import json_paths
paths = json_paths(sys.argv[1])
want = {l.split("\t", 1)[0] for l in open(sys.argv[2])}
missing = want - paths
for m in sorted(missing)[:5]:
    print("    not in the export:", m)
sys.exit(1 if missing else 0)
PY
	then
		pass "$1: valid NDJSON naming every hostile entry exactly"
	else
		fail "$1: invalid NDJSON or names lost"
	fi
}
json_export_ok "journal export --format json FILE"
vp_expect 0 "rollback with hostile names" rollback --journal-dir "$J" "$V"
snap "$V" "$W/h2.snap"
snap_eq "$W/h0.snap" "$W/h2.snap" "hostile names rolled back exactly"
vp_expect 0 "journal export --format json PATH (newest journal of that root, rolled back)" \
	journal export --format json --journal-dir "$J" "$V"
[ "$RC" = 0 ] && json_export_ok "journal export --format json PATH"

finish
