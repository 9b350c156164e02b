#!/usr/bin/env bash
# The differential oracle and the exact rollback on each real filesystem
# this machine can make: tmpfs, and ext4 / xfs / btrfs on loop devices
# (each needs its mkfs tool; a missing one is reported and left out). The
# journal dir lives on the same filesystem, outside the volume.
. "$(dirname "$0")/lib.sh"
setup
need_cmd mount umount truncate setfacl setcap

tested=() missing=()
for fs in tmpfs ext4 xfs btrfs; do
	M=$W/mnt-$fs
	mount_fs "$fs" "$M" 512 || {
		missing+=("$MOUNT_FS_WHY")
		continue
	}
	say "# --- $fs ($(stat -f -c %T "$M"))"
	V=$M/vol
	J=$M/journal
	mkdir -m 0700 "$J"
	if ! python3 "$TOOLS/mktree.py" --quiet "$V" 3000 --seed 101 --acl-every 7 --default-acl-every 5 \
		--setid 5 --caps 3 --hostile --hardlink-every 50 2>"$W/mktree.err"; then
		fail "$fs: mktree.py (ACLs, caps) failed here: $(tail -n 1 "$W/mktree.err")"
		umount "$M"
		continue
	fi
	tested+=("$fs")
	cp -a "$V" "$M/oracle" || die "cp -a"
	snap "$V" "$W/$fs.before"
	snap "$M/oracle" "$W/$fs.oracle0"
	python3 "$TOOLS/snapshot.py" --diff "$W/$fs.before" "$W/$fs.oracle0" >/dev/null ||
		die "$fs: cp -a did not make an identical copy (test setup)"
	vp_expect 0 "$fs: apply --owner 1001:1002" apply --owner 1001:1002 --json --journal-dir "$J" "$V"
	jpaths "$OUT" skip "$V" >"$W/$fs.skipped"
	assert_eq "$(wc -l <"$W/$fs.skipped")" 0 "$fs: nothing skipped"
	chown -R -h 1001:1002 "$M/oracle"
	snap "$V" "$W/$fs.applied"
	snap "$M/oracle" "$W/$fs.oracle"
	snap_eq "$W/$fs.oracle" "$W/$fs.applied" "$fs: volperm apply == chown -R -h"
	vp_expect 0 "$fs: check after apply" check --owner 1001:1002 --journal-dir "$J" "$V"
	vp_expect 0 "$fs: rollback" rollback --journal-dir "$J" "$V"
	snap "$V" "$W/$fs.rolled"
	snap_eq "$W/$fs.before" "$W/$fs.rolled" "$fs: rollback restored everything (owners, modes, ACLs, default ACLs, caps)"
	umount "$M" || umount -l "$M"
	rm -f "$W/$fs.img"
done
say "# tested: ${tested[*]:-none}; not available: ${missing[*]:-none}"
for m in "${missing[@]}"; do
	say "SKIP-PART: $m"
done
[ ${#tested[@]} -gt 0 ] || skip "no filesystem could be made here: ${missing[*]}"

finish
