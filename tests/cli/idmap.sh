#!/usr/bin/env bash
# volperm idmap: an idmapped mount of SRC on DST, on each real filesystem
# this machine can make (tmpfs, ext4 / xfs / btrfs loop mounts). Through DST
# owners and ACL entries appear remapped (1000 -> 1001), a process running
# as 1001 writes there and its file lands as 1000 in SRC, root still
# creates files (the ids not named map to themselves), SRC's inodes are not
# touched (snapshot with ctimes), and --undo removes exactly that mount.
# Then the refusals: --undo of a plain bind mount or through a symlink, a
# map that is not one-to-one, a non-empty DST, FUSE and overlayfs (one
# sentence, exit 2, nothing mounted). Last, a measurement (reported, never
# asserted): the idmapped mount against chown -R on a 100k-entry tree.
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
