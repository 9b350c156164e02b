#!/usr/bin/env bash
# Case 4 (CVE-2017-18078): hard links to root-owned files outside the tree,
# planted by the app's own uid with fs.protected_hardlinks=0 (and refused by
# the kernel with =1, then planted anyway as if the attacker had found
# another way): never changed, reported (skip external-hardlink, exit 5),
# whatever other option is given; --allow-external-links is the only way,
# and is documented. Links fully inside the tree: changed once. Links in an
# excluded dir count as outside. A nested bind mount (--cross-mounts) must
# not make one link count twice.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup
need_cmd setpriv sysctl

J=$(new_jdir)
E=$W/etc
make_decoy "$E"
chmod 0755 "$W" # the app's uid must reach $E to try its link

orig_ph=$(sysctl -n fs.protected_hardlinks) || skip "cannot read fs.protected_hardlinks"
on_exit "sysctl -q -w fs.protected_hardlinks=$orig_ph"
as_app() { setpriv --reuid 1000 --regid 1000 --clear-groups -- "$@"; }

for ph in 0 1; do
	sysctl -q -w fs.protected_hardlinks=$ph || { fail "sysctl -w fs.protected_hardlinks=$ph"; continue; }
	V=$W/vol-ph$ph
	mkdir -p "$V/data"
	echo mine >"$V/data/file"
	chown -R 1000:1000 "$V"
	# The app (uid 1000, owner of the volume) tries to link root's files in.
	as_app ln "$E/shadow" "$V/shadow" 2>/dev/null
	lr1=$?
	as_app ln "$E/sudo" "$V/data/sudo" 2>/dev/null
	lr2=$?
	if [ "$ph" = 1 ]; then
		assert_true "protected_hardlinks=1: the kernel refused the app's links" test "$lr1" != 0 -a "$lr2" != 0
		# an attacker who got them in some other way (an older kernel, a
		# setgid helper): plant them as root
		ln "$E/shadow" "$V/shadow"
		ln "$E/sudo" "$V/data/sudo"
	else
		assert_true "protected_hardlinks=0: the app planted links to root's files" test "$lr1" = 0 -a "$lr2" = 0
	fi
	# two links inside to one outside file: 2 of 3 found
	ln "$E/passwd" "$V/p1"
	ln "$E/passwd" "$V/data/p2"
	decoy_snap "$E" "$W/decoy.snap" # after the links (they change ctime)
	snap "$V" "$W/v0.snap"

	vp_expect 1 "ph=$ph: check: safety skips mean not compliant (exit 1)" check --owner 1001:1001 --journal-dir "$J" "$V"
	for cmd in plan apply; do
		vp_expect 5 "ph=$ph: $cmd --json reports the external links (exit 5)" $cmd --owner 1001:1001 --json --journal-dir "$J" "$V"
		json_ok "$OUT" "ph=$ph: $cmd NDJSON valid"
		# one skip per outside inode, named by any of its links
		jp=$(jpaths "$OUT" skip "$V" reason=external-hardlink | tr '\n' ' ')
		case $jp in
		"data/sudo p1 shadow " | "data/p2 data/sudo shadow ") pass "ph=$ph: $cmd: one skip event per external inode ($jp)" ;;
		*) fail "ph=$ph: $cmd: skip external-hardlink events: got '$jp', want data/sudo, shadow, and p1 or data/p2" ;;
		esac
	done
	assert_eq "$(jsum "$OUT" skip_reasons.external-hardlink)" 3 "ph=$ph: summary: 3 external-hardlink skips"
	assert_eq "$(jcount "$OUT" change)" 3 "ph=$ph: apply: changed only the 3 entries of the app (root, data, data/file)"
	decoy_same "$E" "$W/decoy.snap" "ph=$ph: decoy untouched (shadow 0:42 0640, sudo 4755, passwd)"
	assert_eq "$(owner_of "$V/data/file")" 1001:1001 "ph=$ph: the app's own file changed"
	for o in --keep-going --no-journal --cross-mounts --include-devices; do
		vp "apply" --owner 1002:1002 "$o" --quiet --journal-dir "$J" "$V"
		expect_rc_in "5" "ph=$ph: apply $o: still skipped"
		decoy_same "$E" "$W/decoy.snap" "ph=$ph: apply $o does not change an external link either"
	done
	sysctl -q -w fs.protected_hardlinks="$orig_ph"
done

# --- --allow-external-links: the only way, documented, rolled back exactly --
V=$W/vol-ph0
vp_expect 0 "--help lists --allow-external-links" --help
assert_file_match 'allow-external-links' "$OUT" "--help documents --allow-external-links"
assert_true "the man page documents --allow-external-links" grep -qE 'allow\\?-external\\?-links' "$REPO/docs/volperm.1"
vp_expect 0 "apply --allow-external-links (the admin's explicit choice)" \
	apply --owner 1003:1003 --allow-external-links --journal-dir "$J" "$V"
assert_eq "$(owner_of "$E/shadow")" 1003:1003 "--allow-external-links changed the outside file (documented)"
vp_expect 0 "rollback of --allow-external-links" rollback --journal-dir "$J" "$V"
snap "$E" "$W/decoy2.snap"
snap_eq "$W/decoy.snap" "$W/decoy2.snap" "rollback restored the outside files exactly (owner, 4755, caps)" --ignore-field ctime

# --- links fully inside: changed once -------------------------------------------
V=$W/inside
mkdir -p "$V/a" "$V/b/c"
echo x >"$V/a/f"
ln "$V/a/f" "$V/b/f2"
ln "$V/a/f" "$V/b/c/f3"
chown -R 1000:1000 "$V"
chmod 4755 "$V/a/f"
snap "$V" "$W/in0.snap"
vp_expect 0 "inside links: apply --json" apply --owner 1001:1001 --json --journal-dir "$J" "$V"
n=$(python3 - "$OUT" "$V" <<'PY'
import json, os, sys
st = os.lstat(os.path.join(sys.argv[2], "a/f"))
n = 0
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o["event"] == "change" and o["type"] == "file":
        n += 1
print(n)
PY
)
assert_eq "$n" 1 "inside links: the 3-link inode changed once (one change event)"
assert_eq "$(owner_of "$V/a/f") $(owner_of "$V/b/f2") $(owner_of "$V/b/c/f3")" "1001:1001 1001:1001 1001:1001" "inside links: all three paths show the new owner"
assert_eq "$(mode_of "$V/b/f2")" 0755 "inside links: setuid cleared once"
jf=$(newest_journal "$J")
vp_expect 0 "inside links: journal show" journal show --journal-dir "$J" "$jf"
nrec=$(grep -cE '(^|[[:space:]])file([[:space:]]|$)' "$OUT")
assert_eq "$nrec" 1 "inside links: one journal record for the inode"
vp_expect 0 "inside links: rollback" rollback --journal-dir "$J" "$V"
snap "$V" "$W/in1.snap"
snap_eq "$W/in0.snap" "$W/in1.snap" "inside links: rolled back exactly (4755 back)"

# --- a link in an excluded dir counts as outside ----------------------------------
vp_expect 5 "link in an excluded dir: apply --exclude c (exit 5)" \
	apply --owner 1001:1001 --exclude c --json --journal-dir "$J" "$V"
assert_eq "$(jcount "$OUT" skip reason=external-hardlink)" 1 "excluded link: the inode skipped as external-hardlink"
assert_eq "$(owner_of "$V/a/f")" 1000:1000 "excluded link: the inode untouched"
vp_expect 0 "rollback" rollback --journal-dir "$J" "$V"

# --- a nested bind mount must not make one link count twice ------------------------
V=$W/bind
mkdir -p "$V/a" "$V/b"
rm -rf "$E"
make_decoy "$E"
ln "$E/shadow" "$V/a/x" # 1 link inside, 1 outside
chown 1000:1000 "$V" "$V/a" "$V/b"
if mount --bind "$V/a" "$V/b"; then
	decoy_snap "$E" "$W/decoy3.snap"
	vp "apply" --owner 1001:1001 --cross-mounts --json --journal-dir "$J" "$V"
	expect_rc 5 "bind mount of a/ at b/, --cross-mounts: a/x (= b/x) is still external (exit 5)"
	assert_eq "$(jcount "$OUT" skip reason=external-hardlink)" 1 "bind mount: skip external-hardlink for x"
	decoy_same "$E" "$W/decoy3.snap" "bind mount: the outside file untouched (one link seen twice is not two links)"
	umount "$V/b"
	vp "rollback" --journal-dir "$J" "$V"
else
	fail "mount --bind failed (root in CI should be able to bind mount)"
fi

finish
