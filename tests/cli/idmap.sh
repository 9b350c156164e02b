#!/usr/bin/env bash
# volperm idmap: an idmapped mount of SRC on DST, on each real filesystem
# this machine can make (tmpfs, ext4 / xfs / btrfs loop mounts). Through DST
# owners and ACL entries appear remapped (1000 -> 1001), a process running
# as 1001 writes there and its file lands as 1000 in SRC, root still
# creates files (the ids not named map to themselves), SRC's inodes are not
# touched (snapshot with ctimes), and --undo removes exactly that mount.
# Then the refusals: --undo of a plain bind mount or through a symlink, a
# map that is not one-to-one, a non-empty DST, FUSE and overlayfs (one
# sentence, exit 2, nothing mounted; plan --idmap says "not supported").
# --owner: a tree with one owner mounts with the map it stands for; a tree
# with two is refused with the counts and the most common owner's maps, and
# nothing is mounted. plan --idmap reports without a DST; --print-unit's
# fstab line parses. Last, a measurement (reported, never asserted): the
# idmapped mount against chown -R on a 100k-entry tree.
. "$(dirname "$0")/lib.sh"
setup
need_cmd mount umount truncate setfacl getfacl setpriv findmnt

MAP=(--map 1000:1001 --map-gid 1000:1001)

# is_mount PATH: is PATH a mount point (by mountinfo, not by guessing)?
is_mount() { findmnt -rn --mountpoint "$1" >/dev/null 2>&1; }

# mk_src S: a small tree owned by 1000:1000 with an ACL entry for u:1000,
# a root-owned file and a directory 1001 may write to through DST.
mk_src() {
	local s=$1
	mkdir -p "$s/dir" "$s/sub/deeper"
	printf 'data\n' >"$s/file"
	printf 'acl\n' >"$s/aclfile"
	printf 'root\n' >"$s/rootfile"
	touch "$s/sub/deeper/leaf"
	chown -R 1000:1000 "$s"
	chown 0:0 "$s/rootfile"
	chmod 0775 "$s/dir"
	chmod 0755 "$s"
	setfacl -m u:1000:rwx,g:1000:r-x "$s/aclfile" || die "setfacl"
}

tested=() missing=()
for fs in tmpfs ext4 xfs btrfs; do
	M=$W/mnt-$fs
	mkdir "$M"
	case $fs in
	tmpfs)
		mount -t tmpfs -o size=64m,mode=0755 tmpfs "$M" 2>"$W/mount.err" || {
			missing+=("tmpfs (mount: $(cat "$W/mount.err"))")
			continue
		}
		;;
	*)
		command -v "mkfs.$fs" >/dev/null 2>&1 || {
			missing+=("$fs (no mkfs.$fs)")
			continue
		}
		truncate -s 512M "$W/$fs.img"
		case $fs in
		ext4) mkfs.ext4 -q -F "$W/$fs.img" ;;
		*) "mkfs.$fs" -q -f "$W/$fs.img" ;;
		esac >"$W/mkfs.log" 2>&1 || {
			missing+=("$fs (mkfs failed)")
			continue
		}
		mount -o loop "$W/$fs.img" "$M" 2>"$W/mount.err" || {
			missing+=("$fs (mount -o loop: $(cat "$W/mount.err"))")
			continue
		}
		;;
	esac
	chmod 0755 "$M"
	say "# --- $fs"
	S=$M/src D=$M/dst
	mk_src "$S"
	mkdir "$D"
	tested+=("$fs")
	snap "$S" "$W/$fs.before" --ctime

	vp_expect 0 "$fs: idmap ${MAP[*]}" idmap "${MAP[@]}" "$S" "$D"
	if ! is_mount "$D"; then
		fail "$fs: DST is not a mount point after idmap"
		continue
	fi
	assert_match '(^|,)idmapped(,|$)' "$(findmnt -rn -o VFS-OPTIONS --mountpoint "$D")" \
		"$fs: DST's mount is idmapped"
	assert_eq "$(owner_of "$D/file")" "1001:1001" "$fs: 1000:1000 shows as 1001:1001 through DST"
	assert_eq "$(owner_of "$D/sub/deeper/leaf")" "1001:1001" "$fs: deep entries too"
	assert_eq "$(owner_of "$D/rootfile")" "0:0" "$fs: root's file shows as 0:0 (ids not named map to themselves)"
	acl=$(getfacl -n --omit-header "$D/aclfile" 2>/dev/null)
	assert_match '^user:1001:rwx' "$acl" "$fs: ACL entry u:1000 shows as u:1001 through DST"
	assert_match '^group:1001:r-x' "$acl" "$fs: ACL entry g:1000 shows as g:1001 through DST"
	assert_match '^user:1000:rwx' "$(getfacl -n --omit-header "$S/aclfile" 2>/dev/null)" \
		"$fs: ... and still u:1000 in SRC"
	# Reading through DST changed nothing in SRC: no chown happened.
	snap "$S" "$W/$fs.after" --ctime
	snap_eq "$W/$fs.before" "$W/$fs.after" "$fs: SRC's inodes unchanged (owners, modes, ACLs, ctimes)"

	if setpriv --reuid 1001 --regid 1001 --clear-groups sh -c 'printf x >"$1/dir/by1001"' sh "$D" 2>"$W/setpriv.err"; then
		pass "$fs: uid 1001 creates a file through DST"
	else
		fail "$fs: uid 1001 cannot create a file through DST: $(cat "$W/setpriv.err")"
	fi
	assert_eq "$(owner_of "$D/dir/by1001")" "1001:1001" "$fs: the new file shows as 1001:1001 through DST"
	assert_eq "$(owner_of "$S/dir/by1001")" "1000:1000" "$fs: ... and is stored as 1000:1000 in SRC"
	if setpriv --reuid 1001 --regid 1001 --clear-groups sh -c 'printf x >"$1/by1001"' sh "$S" 2>/dev/null; then
		fail "$fs: uid 1001 could write to SRC directly (test setup wrong)"
	else
		pass "$fs: uid 1001 cannot write to SRC itself (only through DST)"
	fi
	if printf x >"$D/byroot" 2>"$W/root.err"; then
		pass "$fs: root creates a file through DST"
	else
		fail "$fs: root cannot create a file through DST: $(cat "$W/root.err")"
	fi
	assert_eq "$(owner_of "$S/byroot")" "0:0" "$fs: root's new file is 0:0 in SRC"

	vp_expect 0 "$fs: idmap --undo" idmap --undo "$D"
	if is_mount "$D"; then fail "$fs: DST still mounted after --undo"; else pass "$fs: --undo unmounted DST"; fi
	assert_eq "$(find "$D" -mindepth 1 | wc -l)" "0" "$fs: DST is the empty directory again"
	vp_expect 2 "$fs: --undo of a directory that is no mount" idmap --undo "$D"
	assert_file_match 'not a mount point' "$ERR" "$fs: ... says so"
	umount "$M" || umount -l "$M"
done
say "# tested: ${tested[*]:-none}"
[ ${#missing[@]} -eq 0 ] || say "# NOT tested: ${missing[*]}"
[ ${#tested[@]} -gt 0 ] || die "no filesystem could be tested"

say "# --- refusals (on $W's filesystem)"
S=$W/src D=$W/dst
mk_src "$S"
mkdir "$D"

# --undo refuses a plain bind mount and leaves it mounted.
mkdir "$W/bind"
mount --bind "$S" "$W/bind" || die "mount --bind"
vp_expect 2 "--undo refuses a plain bind mount" idmap --undo "$W/bind"
assert_file_match 'not an idmapped' "$ERR" "... with a sentence saying why"
assert_true "... which stays mounted" is_mount "$W/bind"
umount "$W/bind"

# --undo refuses a symlink to an idmapped DST, which stays mounted.
vp_expect 0 "idmap for the symlink check" idmap "${MAP[@]}" "$S" "$D"
ln -s "$D" "$W/dstlink"
vp_expect 2 "--undo refuses a symlinked DST" idmap --undo "$W/dstlink"
assert_file_match 'symbolic link' "$ERR" "... saying it is a symbolic link"
assert_true "... and the mount stays" is_mount "$D"
vp_expect 0 "--undo of the real DST" idmap --undo "$D"
vp_expect 2 "idmap refuses a symlinked DST" idmap "${MAP[@]}" "$S" "$W/dstlink"
ln -s "$S" "$W/srclink"
vp_expect 2 "idmap refuses a symlinked SRC" idmap "${MAP[@]}" "$W/srclink" "$D"
assert_true "nothing mounted on DST" bash -c "! findmnt -rn --mountpoint '$D' >/dev/null"

# Not one-to-one: two OLDs to one NEW, one OLD to two NEWs.
vp_expect 2 "two uids mapped to one is refused" idmap --map 1000:1001 --map 1002:1001 "$S" "$D"
assert_file_match 'one-to-one' "$ERR" "... as not one-to-one"
assert_eq "$(wc -l <"$ERR")" "1" "... in one sentence"
vp_expect 2 "one gid mapped to two is refused" idmap --map-gid 1000:1001 --map-gid 1000:1002 "$S" "$D"
assert_true "nothing mounted on DST" bash -c "! findmnt -rn --mountpoint '$D' >/dev/null"

# DST must be empty; a system path is refused.
touch "$W/full"
mkdir "$W/nonempty" && touch "$W/nonempty/x"
vp_expect 2 "a non-empty DST is refused" idmap "${MAP[@]}" "$S" "$W/nonempty"
assert_file_match 'not empty' "$ERR" "... saying it is not empty"
vp_expect 2 "a system path as DST is refused" idmap "${MAP[@]}" "$S" /usr
assert_true "/usr is not an idmapped mount" bash -c "! findmnt -rn --mountpoint /usr -o VFS-OPTIONS | grep -q idmapped"

# Filesystems without idmap support: FUSE (bindfs, fuse-overlayfs) and
# overlayfs. One sentence, exit 2, nothing mounted.
unsup=()
mkdir "$W/lower" "$W/upper" "$W/work" "$W/ovl" "$W/fuse1" "$W/fuse2"
touch "$W/lower/f"
if mount -t overlay overlay -o "lowerdir=$W/lower,upperdir=$W/upper,workdir=$W/work" "$W/ovl" 2>/dev/null; then
	unsup+=("overlayfs:$W/ovl")
fi
if command -v bindfs >/dev/null && bindfs "$W/lower" "$W/fuse1" 2>/dev/null; then
	unsup+=("bindfs:$W/fuse1")
fi
mkdir "$W/fupper" "$W/fwork"
if command -v fuse-overlayfs >/dev/null &&
	fuse-overlayfs -o "lowerdir=$W/lower,upperdir=$W/fupper,workdir=$W/fwork" "$W/fuse2" 2>/dev/null; then
	unsup+=("fuse-overlayfs:$W/fuse2")
fi
[ ${#unsup[@]} -gt 0 ] || fail "no overlayfs or FUSE mount could be made for the unsupported case"
for u in "${unsup[@]}"; do
	name=${u%%:*} path=${u#*:}
	vp_expect 2 "$name: idmap is refused" idmap "${MAP[@]}" "$path" "$D"
	assert_file_match 'does not support idmapped mounts' "$ERR" "$name: ... saying the filesystem does not support it"
	assert_eq "$(wc -l <"$ERR")" "1" "$name: ... in one sentence"
	assert_true "$name: nothing mounted on DST" bash -c "! findmnt -rn --mountpoint '$D' >/dev/null"
	vp_expect 2 "$name: --dry-run says it is not supported" idmap --dry-run "${MAP[@]}" "$path" "$D"
	assert_file_match 'NOT supported' "$OUT" "$name: ... in the plan"
	vp_expect 2 "$name: plan --idmap" plan --idmap "${MAP[@]}" "$path"
	assert_match '^chown: [0-9]+ entries to write; idmap: one mount \(not supported: the filesystem does not support idmapped mounts\)$' \
		"$(tail -n 1 "$OUT")" "$name: plan --idmap's last line says an idmapped mount is not supported there"
	assert_file_match 'does not support idmapped mounts' "$ERR" "$name: ... and stderr says why"
	umount "$path" 2>/dev/null || fusermount3 -u "$path" 2>/dev/null || umount -l "$path"
done

say "# --- nested mounts: only with --cross-mounts"
mkdir -p "$S/nested"
mount -t tmpfs -o size=8m,mode=0755 tmpfs "$S/nested" || die "mount nested tmpfs"
touch "$S/nested/inner" && chown 1000:1000 "$S/nested/inner"
vp_expect 0 "idmap without --cross-mounts" idmap "${MAP[@]}" "$S" "$D"
assert_eq "$(find "$D/nested" -mindepth 1 | wc -l)" "0" "the nested mount is not in DST (an empty directory there)"
vp_expect 0 "--undo" idmap --undo "$D"
vp_expect 0 "idmap --cross-mounts" idmap --cross-mounts "${MAP[@]}" "$S" "$D"
assert_eq "$(owner_of "$D/nested/inner")" "1001:1001" "the nested mount is in DST, idmapped too"
vp_expect 0 "--undo of the recursive mount" idmap --undo "$D"
assert_true "DST and its nested mount are gone" bash -c "! findmnt -rn -o TARGET | grep -qF '$D'"
umount "$S/nested"

say "# --- dry run and unit"
mkdir "$W/plan"
touch "$W/plan/a" "$W/plan/b" "$W/plan/c" "$W/plan/d"
chown 1000:1000 "$W/plan" "$W/plan/a" "$W/plan/b"
chown 1001:1001 "$W/plan/c"
chown 33:33 "$W/plan/d"
snap "$W/plan" "$W/plan.before" --ctime
vp_expect 0 "--dry-run" idmap --dry-run "${MAP[@]}" "$W/plan" "$D"
assert_file_match '^uid 1000 -> 1001: 3 entries$' "$OUT" "dry run: 3 entries of uid 1000 appear as 1001"
assert_file_match '^uid 1001 -> 65534: 1 entry \(unmapped' "$OUT" "dry run: the one of uid 1001 (a NEW) would be unmapped"
assert_file_match '^uid 33 -> 33: 1 entry \(as on disk\)' "$OUT" "dry run: uid 33 is left as on disk"
assert_file_match '^entries: 5; uids left as on disk: 1, gids: 1; unmapped \(show as 65534\): 1 uids, 1 gids$' "$OUT" \
	"dry run: the totals"
assert_file_match '^idmapped mount: supported' "$OUT" "dry run: support was probed"
assert_true "dry run: nothing mounted" bash -c "! findmnt -rn --mountpoint '$D' >/dev/null"
snap "$W/plan" "$W/plan.after" --ctime
snap_eq "$W/plan.before" "$W/plan.after" "dry run: SRC unchanged"

vp_expect 0 "--print-unit" idmap --print-unit "${MAP[@]}" --read-only "$W/plan" "$D"
assert_file_match "^ExecStart=\".*\" idmap --map 1000:1001 --map-gid 1000:1001 --read-only \"$W/plan\" \"$D\"\$" "$OUT" \
	"unit: ExecStart makes the mount"
assert_file_match "^ExecStop=\".*\" idmap --undo \"$D\"\$" "$OUT" "unit: ExecStop undoes it"
assert_true "unit: nothing mounted" bash -c "! findmnt -rn --mountpoint '$D' >/dev/null"
if command -v systemd-analyze >/dev/null; then
	cp "$OUT" "$W/volperm-idmap-test.service"
	if systemd-analyze verify "$W/volperm-idmap-test.service" >"$W/verify.log" 2>&1; then
		pass "unit: systemd-analyze verify accepts it"
	else
		grep -v -e 'docker.service' -e 'podman.service' -e 'containerd.service' "$W/verify.log" >"$W/verify.rest" || true
		if [ -s "$W/verify.rest" ]; then fail "unit: systemd-analyze verify: $(head -c 600 "$W/verify.rest")"; else pass "unit: systemd-analyze verify (only the optional Before= units missing)"; fi
	fi
fi

say "# --- plan --idmap: the dry run's report without a DST"
setfacl -m u:1000:rw,u:33:r "$W/plan/a" || die "setfacl"
snap "$W/plan" "$W/plan.acl" --ctime
vp_expect 0 "plan --idmap ${MAP[*]}" plan --idmap "${MAP[@]}" "$W/plan"
assert_eq "$(head -n 1 "$OUT")" "idmap plan: $W/plan" "plan --idmap: names PATH, no DST"
assert_file_match '^uid 1000 -> 1001: 3 entries$' "$OUT" "plan --idmap: the owners, as the dry run shows them"
assert_file_match '^uid 1001 -> 65534: 1 entry \(unmapped' "$OUT" "plan --idmap: the unmapped owner"
assert_file_match '^acl user 1000 -> 1001: 1 entry$' "$OUT" "plan --idmap: the ACL entry of u:1000 appears mapped"
assert_file_match '^acl user 33 -> 33: 1 entry \(as on disk\)$' "$OUT" "plan --idmap: ... u:33 as on disk"
assert_file_match '^named ACL entries: 2; appear mapped: 1; left as on disk: 1; unmapped \(show as 65534\): 0$' "$OUT" \
	"plan --idmap: the ACL totals"
assert_eq "$(tail -n 1 "$OUT")" "chown: 3 entries to write; idmap: one mount (supported)" \
	"plan --idmap: the last line compares the costs (root, a and b would be chowned)"
vp_expect 0 "idmap --dry-run ends with the same line" idmap --dry-run "${MAP[@]}" "$W/plan" "$D"
assert_eq "$(tail -n 1 "$OUT")" "chown: 3 entries to write; idmap: one mount (supported)" "dry run: the same last line"
vp_expect 2 "plan --idmap takes no DST" plan --idmap "${MAP[@]}" "$W/plan" "$D"
vp_expect 2 "plan --idmap does not take --chmod" plan --idmap --chmod go-w "$W/plan"
vp_expect 2 "--idmap goes with plan only" apply --idmap "${MAP[@]}" "$W/plan"
vp_expect 2 "--owner and --map do not go together in idmap" idmap --owner 1001:1001 --map 1000:1001 "$W/plan" "$D"
assert_file_match '^volperm: --owner stands for a map of its own' "$ERR" "... saying why"
snap "$W/plan" "$W/plan.after2" --ctime
snap_eq "$W/plan.acl" "$W/plan.after2" "plan --idmap: SRC unchanged"
assert_true "plan --idmap: nothing mounted" bash -c "! findmnt -rn --mountpoint '$D' >/dev/null"

say "# --- --owner: a map only when the tree has one owner"
O=$W/own
mkdir -p "$O/sub"
touch "$O/f1" "$O/sub/f2"
chown -R 1000:1000 "$O"
vp_expect 0 "plan --idmap --owner on a one-owner tree" plan --idmap --owner 1001:1001 "$O"
assert_file_match '^--owner 1001:1001 stands for --map 1000:1001 --map-gid 1000:1001 on ' "$OUT" \
	"plan --idmap --owner: prints the map it stands for"
assert_eq "$(tail -n 1 "$OUT")" "chown: 4 entries to write; idmap: one mount (supported)" "plan --idmap --owner: the costs"
vp_expect 0 "idmap --owner 1001:1001 on a one-owner tree" idmap --owner 1001:1001 "$O" "$D"
assert_file_match '^--owner 1001:1001 stands for --map 1000:1001 --map-gid 1000:1001 on ' "$OUT" \
	"idmap --owner: prints the map it stands for"
assert_true "idmap --owner: DST is mounted" is_mount "$D"
assert_eq "$(owner_of "$D/sub/f2")" "1001:1001" "idmap --owner: entries show as 1001:1001 through DST"
assert_eq "$(owner_of "$O/sub/f2")" "1000:1000" "idmap --owner: ... and stay 1000:1000 on disk"
vp_expect 0 "--undo" idmap --undo "$D"
vp_expect 0 "--print-unit --owner writes the maps" idmap --print-unit --owner 1001:1001 "$O" "$D"
assert_file_match "^ExecStart=\".*\" idmap --map 1000:1001 --map-gid 1000:1001 \"$O\" \"$D\"\$" "$OUT" \
	"unit: --owner became --map/--map-gid in ExecStart (no walk at boot)"
assert_file_match '^# --owner 1001:1001 stands for' "$OUT" "unit: ... saying so in a comment"

chown 1002:1002 "$O/sub/f2"
touch "$O/f3" && chown 1002:1002 "$O/f3"
touch "$O/f4" && chown 1000:1000 "$O/f4"
vp_expect 2 "idmap --owner on a two-owner tree is refused" idmap --owner 1001:1001 "$O" "$D"
assert_eq "$(wc -l <"$ERR")" "1" "... in one sentence"
assert_file_match 'has 2 owners \(uid 1000: 4 entries, uid 1002: 2 entries\)' "$ERR" "... naming how many owners, with counts"
assert_file_match 'most common owner and group it would be --map 1000:1001 --map-gid 1000:1001' "$ERR" \
	"... and proposing the most common owner's maps"
assert_file_match 'nothing was mounted' "$ERR" "... saying nothing was mounted"
assert_true "... and nothing is mounted" bash -c "! findmnt -rn --mountpoint '$D' >/dev/null"
assert_eq "$(wc -c <"$OUT")" "0" "... and no map is printed as if it applied"
vp_expect 2 "idmap --dry-run --owner on a two-owner tree" idmap --dry-run --owner 1001:1001 "$O" "$D"
assert_file_match '^--owner 1001:1001: no idmapped mount, more than one owner on disk; below, the maps for the most common: --map 1000:1001 --map-gid 1000:1001$' \
	"$OUT" "dry run: says --owner is no map here, and shows the proposal"
assert_file_match '^uid 1002 -> 1002: 2 entries \(as on disk\)' "$OUT" "dry run: the other owner would show as itself"
assert_eq "$(tail -n 1 "$OUT")" "chown: 6 entries to write; idmap: one mount (not supported: --owner needs one owner on disk, there are more)" \
	"dry run: the last line says why not"
vp_expect 2 "plan --idmap --owner on a two-owner tree" plan --idmap --owner 1001:1001 "$O"
vp_expect 2 "--print-unit --owner on a two-owner tree prints no unit" idmap --print-unit --owner 1001:1001 "$O" "$D"
assert_true "... none at all" bash -c "! grep -q ExecStart '$OUT'"
mkdir "$O/one" && touch "$O/one/x"
chown 1002:1000 "$O/one" && chown 1002:1002 "$O/one/x"
vp_expect 0 "--owner UID alone needs one owner, not one group" idmap --dry-run --owner 1003 "$O/one" "$D"
assert_file_match '^--owner 1003 stands for --map 1002:1003 on ' "$OUT" "... and stands for a uid map only"
vp_expect 2 "--owner UID:GID needs one group too" idmap --dry-run --owner 1003:1003 "$O/one" "$D"
assert_file_match 'has 2 groups \(gid 1000: 1 entry, gid 1002: 1 entry\)' "$ERR" "... naming the groups"

say "# --- --print-unit's fstab line"
vp_expect 0 "--print-unit" idmap --print-unit "${MAP[@]}" --read-only "$W/plan" "$D"
fline=$(grep -A1 '^# The same mount as an /etc/fstab line' "$OUT" | tail -n 1)
assert_match '^# /' "$fline" "unit: the fstab line follows, as a comment"
printf '%s\n' "${fline#\# }" >"$W/fstab"
read -r -a fields <"$W/fstab"
assert_eq "${#fields[@]}" "6" "fstab: six fields"
assert_eq "${fields[0]} ${fields[1]} ${fields[2]} ${fields[4]} ${fields[5]}" "$W/plan $D none 0 0" "fstab: SRC DST none ... 0 0"
IFS=, read -r -a fopts <<<"${fields[3]}"
assert_eq "${fopts[0]},${fopts[1]}" "bind,ro" "fstab: a bind mount, read-only"
idm=${fopts[2]#X-mount.idmap=}
assert_ne "$idm" "${fopts[2]}" "fstab: X-mount.idmap= is the third option"
assert_eq "${#fopts[@]}" "3" "fstab: no other option"
bad=0 usum=0 gsum=0
for tok in ${idm//\\040/ }; do
	if [[ $tok =~ ^([ug]):([0-9]+):([0-9]+):([0-9]+)$ ]]; then
		if [ "${BASH_REMATCH[1]}" = u ]; then usum=$((usum + BASH_REMATCH[4])); else gsum=$((gsum + BASH_REMATCH[4])); fi
	else
		bad=1
	fi
done
assert_eq "$bad" "0" "fstab: every X-mount.idmap token is u|g:ID-MOUNT:ID-HOST:RANGE, separated by \\040"
# Every id but 1001, another's NEW: identity for the ids not named.
assert_eq "$usum $gsum" "4294967294 4294967294" "fstab: the uid and gid maps cover every id but 1001"
assert_match '(^|\\040)u:1000:1001:1(\\040|$)' "$idm" "fstab: uid 1000 appears as 1001"
assert_match '(^|\\040)g:1000:1001:1(\\040|$)' "$idm" "fstab: gid 1000 appears as 1001"
# libmount itself reads the line back (unmangling \040 into blanks).
if parsed=$(findmnt --tab-file "$W/fstab" -n -o TARGET,OPTIONS 2>&1); then
	assert_match "^$D +bind,ro,X-mount.idmap=u:0:0:1000 u:1002:1002:" "$parsed" "fstab: findmnt --tab-file parses it"
else
	fail "fstab: findmnt --tab-file cannot parse it: $parsed"
fi
mver=$(mount --version | sed -n 's/.*util-linux \([0-9]*\.[0-9]*\).*/\1/p')
case $mver in
2.3[0-8] | 2.[12][0-9] | 2.[0-9]) want="which has no X-mount.idmap" ;;
*) want="which takes it" ;;
esac
assert_file_match "^# This host's mount\(8\) is util-linux $mver, $want" "$OUT" "unit: says whether this host's mount ($mver) takes it"

say "# --- --uid-map/--gid-map (or --userns): --map and --owner ids are the container's"
# A rootless container's id 1000 is host 101000 (container 0 = host 100000):
# on disk the tree is 101000's, and through DST it must show as host 101001,
# the container's 1001. The mount's own map says so too.
U=$W/userns
mkdir -p "$U/src" "$U/dst"
printf 'x\n' >"$U/src/f"
chown -R 101000:101000 "$U/src"
UMAP=(--uid-map 0:100000:65536 --gid-map 0:100000:65536)
vp_expect 0 "idmap --uid-map 0:100000:65536 --map 1000:1001" idmap "${UMAP[@]}" "${MAP[@]}" "$U/src" "$U/dst"
if is_mount "$U/dst"; then
	assert_eq "$(stat -c %u:%g "$U/dst/f")" "101001:101001" "through DST the container's 1000 (host 101000) shows as its 1001 (host 101001)"
	assert_eq "$(stat -c %u:%g "$U/src/f")" "101000:101000" "on disk it stays host 101000"
	vp_expect 0 "--undo of it" idmap --undo "$U/dst"
else
	fail "idmap with --uid-map mounted nothing on DST"
fi
vp_expect 2 "an id outside the map is refused" idmap --uid-map 0:100000:65536 --gid-map 0:100000:65536 --map 70000:1001 "$U/src" "$U/dst"
assert_eq "$(grep -c . "$ERR")" "1" "... in one line"
is_mount "$U/dst" && fail "a refused idmap mounted something" || pass "nothing mounted after the refusal"
vp_expect 2 "idmap --undo takes no --uid-map (no ids to translate)" idmap --undo --uid-map 0:100000:65536 --gid-map 0:100000:65536 "$U/dst"
vp_expect 0 "--print-unit with --uid-map writes host ids" idmap --print-unit "${UMAP[@]}" "${MAP[@]}" "$U/src" "$U/dst"
assert_file_match '^ExecStart=.* --map 101000:101001 ' "$OUT" "the unit's ExecStart maps host 101000 to 101001 (no namespace needed at boot)"

say "# --- measurement: idmapped mount vs chown -R, 100k entries (reported, not asserted)"
B=$W/bench
mkdir -p "$B/tree" "$B/dst"
python3 - "$B/tree" <<'EOF'
import os, sys
root = sys.argv[1]
for d in range(100):
    p = os.path.join(root, "d%03d" % d)
    os.mkdir(p)
    for f in range(999):
        os.close(os.open(os.path.join(p, "f%03d" % f), os.O_CREAT | os.O_WRONLY, 0o644))
EOF
chown -R 1000:1000 "$B/tree"
n=$(entries "$B/tree")
t0=$(date +%s%N)
vp idmap "${MAP[@]}" "$B/tree" "$B/dst"
t1=$(date +%s%N)
expect_rc 0 "bench: idmap of the $n-entry tree"
vp_expect 0 "bench: --undo" idmap --undo "$B/dst"
t2=$(date +%s%N)
chown -R 1001:1001 "$B/tree"
t3=$(date +%s%N)
say "# measured on $(stat -f -c %T "$B/tree"), $n entries: idmap mount $(((t1 - t0) / 1000000)) ms (whole volperm run), chown -R $(((t3 - t2) / 1000000)) ms"

finish
