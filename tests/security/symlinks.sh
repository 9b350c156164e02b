#!/usr/bin/env bash
# Case 1: leaf symlinks to files and dirs outside the tree (absolute,
# relative, dangling, chained, looping, to "/", to ".."): only the link itself
# changes (lchown), its target never; rollback puts the links back and still
# does not touch the targets. Attacker policy variants: --owner, and --map of
# the owner of the targets (root), so a followed link would match.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup

J=$(new_jdir)
E=$W/etc
make_decoy "$E"
V=$W/vol
mkdir -p "$V/sub/deeper" "$V/rootowned"
echo data >"$V/file"
echo data >"$V/sub/file"
cd "$V" || die "cd"
ln -s "$E/passwd" abs
ln -s "$E/sudo" abs-setuid
ln -s "$E/ping" abs-caps
ln -s ../etc/shadow rel
ln -s ../../etc/ssl/private/key sub/rel-deep
ln -s ../../../etc/sudoers.d/app sub/deeper/rel-deeper
ln -s "$E/nothing" dangling-abs
ln -s ../etc/missing dangling-rel
ln -s "$E" dirlink
ln -s ../etc/sudoers.d dirlink-rel
ln -s c2 c1
ln -s "$E/passwd" c2
ln -s loopb loopa
ln -s loopa loopb
ln -s / to-root
ln -s .. up
ln -s ../.. sub/up2
ln -s /etc/passwd real-passwd
ln -s "$E/passwd" rootowned/abs
cd / || die "cd /"
chown -h 1000:1000 "$V" "$V/file" "$V/sub" "$V/sub/file" "$V/sub/deeper"
find "$V" -type l -exec chown -h 1000:1000 {} +
chown -h 0:0 "$V/rootowned" "$V/rootowned/abs"
nlinks=$(find "$V" -type l | wc -l)
nall=$(entries "$V")
find "$V" -type l -printf '%P\t%l\n' | sort >"$W/targets0"

decoy_snap "$E" "$W/decoy0.snap"
real_before=$(statline /etc/passwd)
snap "$V" "$W/v0.snap"

# --- plan: every link is planned as a symlink change, nothing outside -------
vp_expect 0 "plan --json on a tree of outward symlinks" plan --owner 1001:1001 --json --journal-dir "$J" "$V"
json_ok "$OUT" "plan NDJSON valid"
jlines "$OUT" "$V" >"$W/plan.ev"
assert_eq "$(grep -c '^change' "$W/plan.ev")" "$nall" "plan: one change per entry ($nall, links included)"
assert_eq "$(grep -c "^change	[^	]*	symlink	" "$W/plan.ev")" "$nlinks" "plan: every link planned as type symlink ($nlinks)"
assert_eq "$(grep -c 'OUTSIDE:' "$W/plan.ev")" 0 "plan: no event names a path outside the volume"

# --- apply --owner --------------------------------------------------------
vp_expect 0 "apply --owner 1001:1001 with outward symlinks" apply --owner 1001:1001 --json --journal-dir "$J" "$V"
json_ok "$OUT" "apply NDJSON valid"
jlines "$OUT" "$V" >"$W/apply.ev"
assert_eq "$(grep -c "^change	[^	]*	symlink	" "$W/apply.ev")" "$nlinks" "apply: every link changed as a symlink"
assert_eq "$(grep -c 'OUTSIDE:' "$W/apply.ev")" 0 "apply: no event outside the volume"
assert_eq "$(grep -vc '^change' "$W/apply.ev")" 0 "apply: no skip or error events"
bad=$(find "$V" -type l ! -user 1001 -printf '%P ' ; find "$V" -type l ! -group 1001 -printf '%P ')
assert_eq "$bad" "" "every symlink itself now 1001:1001 (lchown)"
find "$V" -type l -printf '%P\t%l\n' | sort >"$W/targets1"
assert_true "link targets unchanged (readlink)" cmp -s "$W/targets0" "$W/targets1"
decoy_same "$E" "$W/decoy0.snap" "decoy /etc-like dir untouched by apply (owner, mode 4755, caps, ACL, ctime)"
assert_eq "$(statline /etc/passwd)" "$real_before" "real /etc/passwd untouched"
assert_true "dangling absolute target not created" test ! -e "$E/nothing"
assert_true "dangling relative target not created" test ! -e "$E/missing"
assert_eq "$(owner_of "$W")" 0:0 "the volume's parent (target of 'up' and 'sub/up2') untouched"
assert_eq "$(owner_of /)" "$(stat -c %u:%g /)" "/ (target of 'to-root') untouched"
vp_expect 0 "check after apply: compliant" check --owner 1001:1001 --journal-dir "$J" "$V"

# --list: the link path only, never " -> target"
vp_expect 0 "plan --list with another owner" plan --owner 1002:1002 --list --journal-dir "$J" "$V"
assert_file_nomatch ' -> ' "$OUT" "--list never prints a link target"
assert_file_match "^chown 1001:1001->1002:1002 $V/abs\$" "$OUT" "--list names the link itself"

# --- rollback -------------------------------------------------------------
vp_expect 0 "rollback" rollback --journal-dir "$J" "$V"
snap "$V" "$W/v1.snap"
snap_eq "$W/v0.snap" "$W/v1.snap" "rollback restored every link and file exactly"
decoy_same "$E" "$W/decoy0.snap" "decoy untouched by rollback"

# --- --map of the decoy's owner: a followed link would match the target ----
vp_expect 0 "apply --map 0:1001 --map-gid 0:1001 (root-owned targets would match)" \
	apply --map 0:1001 --map-gid 0:1001 --json --journal-dir "$J" "$V"
jlines "$OUT" "$V" >"$W/map.ev"
assert_eq "$(grep '^change' "$W/map.ev" | cut -f2 | sort | tr '\n' ' ')" "rootowned rootowned/abs " \
	"--map 0: only the root-owned entries inside changed (the dir and its own link)"
assert_eq "$(owner_of "$V/rootowned/abs")" 1001:1001 "root-owned link itself mapped"
assert_eq "$(owner_of "$V/abs")" 1000:1000 "1000-owned link left alone by --map 0"
decoy_same "$E" "$W/decoy0.snap" "decoy untouched by --map 0:1001"
vp_expect 0 "rollback of --map apply" rollback --journal-dir "$J" "$V"
decoy_same "$E" "$W/decoy0.snap" "decoy untouched after the second rollback"
snap "$V" "$W/v2.snap"
snap_eq "$W/v0.snap" "$W/v2.snap" "tree back to its first state"

# --- without a journal: the same change path, the same result -------------
vp_expect 0 "apply --no-journal" apply --owner 1003:1003 --no-journal --quiet "$V"
decoy_same "$E" "$W/decoy0.snap" "decoy untouched by --no-journal apply"
assert_eq "$(owner_of "$V/dirlink")" 1003:1003 "dirlink itself changed by --no-journal apply"

finish
