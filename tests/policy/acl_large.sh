#!/usr/bin/env bash
# --grant / --revoke on ACLs of any size the filesystem stores (issue 11,
# item 2), on tmpfs and on ext4, xfs and btrfs loop mounts (a filesystem
# this machine cannot make is reported and left out).
#
# volperm once read ACLs into buffers of 64 entries: on a 64-entry ACL the
# grant was dropped without a word (check and apply exited 0 on a volume
# that did not comply), and a larger ACL failed with "getxattr: Numerical
# result out of range". The only bound now is the kernel's: an xattr value
# is at most 64 KiB, 8191 entries; each filesystem has its own below that
# (ext4 with 4 KiB blocks: about 500 on a file, half that each for a
# directory's access and default ACLs, which share the block; xfs v5 5461;
# btrfs about 2000; tmpfs 8191). The test finds them by trying with setfacl.
#
# On each filesystem:
#  1. files and directories (access and default ACL) of 63, 64, 65, 100 and
#     500 entries, where the filesystem holds one entry more: check --grant
#     exits 1 for each of them alone and for the volume; apply --grant and
#     apply --revoke give what setfacl -m / -x give on a cp -a copy
#     (getfacl and the raw xattr bytes); journal export --format getfacl of
#     the grant is accepted by setfacl --restore and gives back the original
#     ACLs; two rollbacks restore every xattr byte for byte (getfattr -e hex).
#  2. a file and a directory with the largest ACL the filesystem accepts: a
#     grant that needs one entry more is one clear error for the entry and
#     nothing changes (setfacl fails on the copy too); a grant that replaces
#     an entry and a revoke work as setfacl's do; export/restore and
#     rollback as above.
. "$(dirname "$0")/../cli/lib.sh"
setup
need_cmd mount umount truncate setfacl getfacl getfattr setfattr cp awk

NEW=1001   # the granted user: in no ACL made here
OLD=10000  # the first named user of every ACL made here
SIZES="63 64 65 100 500"

# acl_spec N [PREFIX]: setfacl -M input for an ACL of N entries in all:
# user::, group::, mask::, other:: and N - 4 named entries, users and groups
# alternating, ids from $OLD (PREFIX d: for the default ACL).
acl_spec() {
	awk -v n="$1" -v p="${2:-}" -v base="$OLD" 'BEGIN {
		printf "%suser::rw-\n%sgroup::r--\n%smask::rwx\n%sother::r--\n", p, p, p, p
		for (i = 0; i < n - 4; i++)
			printf "%s%s:%d:%s\n", p, i % 2 ? "group" : "user", base + i, i % 2 ? "r-x" : "rw-"
	}'
}
# set_acl PATH N [DEFAULT_N]: give PATH an access ACL of N entries (and a
# default ACL of DEFAULT_N); fails when the filesystem refuses.
set_acl() {
	{
		acl_spec "$2"
		if [ -n "${3:-}" ]; then acl_spec "$3" d:; fi
	} | setfacl -M - "$1" 2>/dev/null
}
# acl_hex N: the raw xattr value of the ACL acl_spec N makes, in the
# kernel's canonical order (le32 version 2; le16 tag, le16 perm, le32 id).
acl_hex() {
	awk -v n="$1" -v base="$OLD" '
	function le(v, bytes,   s, i) { s = ""; for (i = 0; i < bytes; i++) { s = s sprintf("%02x", v % 256); v = int(v / 256) } return s }
	function ent(tag, perm, id) { printf "%s%s%s", le(tag, 2), le(perm, 2), id < 0 ? "ffffffff" : le(id, 4) }
	BEGIN {
		printf "0x02000000"
		ent(1, 6, -1)
		for (i = 0; i < n - 4; i += 2) ent(2, 6, base + i)
		ent(4, 4, -1)
		for (i = 1; i < n - 4; i += 2) ent(8, 5, base + i)
		ent(16, 7, -1)
		ent(32, 4, -1)
		print ""
	}'
}
# try KIND DIR N [raw]: does the filesystem of DIR accept an ACL of N
# entries on a new file (KIND f), or as both the access and the default
# ACL of a new directory (KIND d)? With raw, written as xattrs with
# setfattr (fast), else with setfacl.
try() {
	local p=$2/try.$1 ok=1
	rm -rf "$p"
	if [ "$1" = f ]; then : >"$p"; else mkdir "$p"; fi
	if [ "${4:-}" = raw ]; then
		{
			printf '# file: %s\nsystem.posix_acl_access=%s\n' "$p" "$(acl_hex "$3")"
			[ "$1" = f ] || printf 'system.posix_acl_default=%s\n' "$(acl_hex "$3")"
		} >"$2/try.restore"
		setfattr --restore="$2/try.restore" 2>/dev/null || ok=0
	elif [ "$1" = f ]; then
		set_acl "$p" "$3" || ok=0
	else
		set_acl "$p" "$3" "$3" || ok=0
	fi
	rm -rf "$p" "$2/try.restore"
	[ "$ok" = 1 ]
}
# largest KIND DIR: the largest such N: bisection with raw xattrs (setfacl
# takes seconds on an ACL of thousands of entries), then setfacl must
# accept that N and refuse N + 1.
largest() {
	local lo=4 hi=8191 mid
	while [ "$lo" -lt "$hi" ]; do
		mid=$(((lo + hi + 1) / 2))
		if try "$1" "$2" "$mid" raw; then lo=$mid; else hi=$((mid - 1)); fi
	done
	try "$1" "$2" "$lo" || die "setfacl refuses an ACL of $lo entries ($1) that setfattr wrote"
	[ "$lo" = 8191 ] || ! try "$1" "$2" $((lo + 1)) ||
		die "setfacl accepts an ACL of $((lo + 1)) entries ($1) that setfattr could not write"
	echo "$lo"
}
# facls DIR FILE: getfacl of every entry, in sorted path order (cp -a and
# readdir orders differ on tmpfs), numeric, physical.
facls() {
	(cd "$1" && find . | LC_ALL=C sort | while read -r e; do getfacl -n -P -- "$e" 2>&1; done) >"$2"
}
# xattr_hex DIR FILE: the raw ACL xattrs of every entry, getfattr -e hex.
xattr_hex() {
	(cd "$1" && find . | LC_ALL=C sort | while read -r e; do
		printf '# %s\n' "$e"
		for n in system.posix_acl_access system.posix_acl_default; do
			getfattr -P -e hex -n "$n" -- "$e" 2>/dev/null | grep -v '^#' || echo "$n: none"
		done
	done) >"$2"
}
same() { # same A B DESC
	if cmp -s "$1" "$2"; then
		pass "$3"
	else
		fail "$3: $(basename "$1") and $(basename "$2") differ:"
		diff "$1" "$2" | head -n 12 | cut -c1-160 | sed 's/^/    /'
	fi
}
# setfacl_tree DIR ARGS...: setfacl -R -P ARGS on DIR (the oracle).
setfacl_tree() {
	local d=$1
	shift
	(cd "$d" && setfacl -R -P "$@" .)
}

tested=() missing=()
for fs in tmpfs ext4 xfs btrfs; do
	M=$W/mnt-$fs
	mount_fs "$fs" "$M" 300 || {
		missing+=("$MOUNT_FS_WHY")
		continue
	}
	tested+=("$fs")
	J=$M/journal
	mkdir -m 0700 "$J" "$M/journal-fail"
	maxf=$(largest f "$M")
	maxd=$(largest d "$M")
	say "# [${SECONDS}s] --- $fs ($(stat -f -c %T "$M")): largest ACL on a file $maxf entries, on a directory $maxd (access) + $maxd (default)"
	[ "$maxf" -le 8191 ] && [ "$maxf" -ge 63 ] || die "$fs: setfacl found a largest ACL of $maxf entries"

	# -----------------------------------------------------------------
	# 1. 63, 64, 65, 100, 500 entries
	# -----------------------------------------------------------------
	V=$M/vol
	mkdir "$V"
	made=()
	for n in $SIZES; do
		# one entry more must fit: the grant adds one
		if try f "$M" $((n + 1)); then
			: >"$V/f$n"
			chmod 0644 "$V/f$n"
			set_acl "$V/f$n" "$n" || die "$fs: setfacl of $n entries on f$n"
			made+=("f$n")
		else
			say "# $fs: a file does not hold $((n + 1)) entries: no f$n"
		fi
		if try d "$M" $((n + 1)); then
			mkdir -m 0755 "$V/d$n"
			set_acl "$V/d$n" "$n" "$n" || die "$fs: setfacl of $n + $n entries on d$n"
			: >"$V/d$n/inside"
			made+=("d$n")
		else
			say "# $fs: a directory does not hold $((n + 1)) + $((n + 1)) entries: no d$n"
		fi
	done
	say "# $fs: entries with large ACLs: ${made[*]}"
	[ "${#made[@]}" -ge 6 ] || fail "$fs: fewer than 6 large-ACL entries could be made (${made[*]})"
	assert_eq "$(getfacl -n -P "$V/f64" 2>/dev/null | grep -cE '^(user|group):[0-9]+:')" 60 "$fs: f64 has 60 named entries (64 in all)"
	cp -a "$V" "$M/copy" || die "cp -a"
	snap "$V" "$W/$fs.v0.snap"
	facls "$V" "$W/$fs.v0.facl"
	xattr_hex "$V" "$W/$fs.v0.hex"

	for e in "${made[@]}"; do
		vp_expect 1 "$fs: check --grant u:$NEW:rwX on $e alone: the grant is missing" \
			check --grant u:$NEW:rwX "$V/$e"
	done
	vp_expect 1 "$fs: check --grant u:$NEW:rwX on the volume" check --grant u:$NEW:rwX "$V"
	vp_expect 0 "$fs: apply --grant u:$NEW:rwX" apply --grant u:$NEW:rwX --journal-dir "$J" "$V"
	grant_journal=$(newest_journal "$J")
	vp_expect 0 "$fs: check after the grant: compliant" check --grant u:$NEW:rwX "$V"
	setfacl_tree "$M/copy" -m u:$NEW:rwX -m d:u:$NEW:rwX || fail "$fs: setfacl -m on the copy failed"
	facls "$V" "$W/$fs.v1.facl"
	facls "$M/copy" "$W/$fs.c1.facl"
	same "$W/$fs.v1.facl" "$W/$fs.c1.facl" "$fs: getfacl after --grant == after setfacl -R -m u:$NEW:rwX -m d:u:$NEW:rwX"
	xattr_hex "$V" "$W/$fs.v1.hex"
	xattr_hex "$M/copy" "$W/$fs.c1.hex"
	same "$W/$fs.v1.hex" "$W/$fs.c1.hex" "$fs: raw ACL xattrs after --grant == setfacl's"
	for e in "${made[@]}"; do
		assert_eq "$(getfacl -n -P "$V/$e" 2>/dev/null | grep -c "^user:$NEW:")" 1 "$fs: $e has user:$NEW"
	done

	vp_expect 0 "$fs: apply --revoke u:$NEW,u:$OLD" apply --revoke u:$NEW,u:$OLD --journal-dir "$J" "$V"
	setfacl_tree "$M/copy" -x u:$NEW,u:$OLD -x d:u:$NEW,d:u:$OLD || fail "$fs: setfacl -x on the copy failed"
	facls "$V" "$W/$fs.v2.facl"
	facls "$M/copy" "$W/$fs.c2.facl"
	same "$W/$fs.v2.facl" "$W/$fs.c2.facl" "$fs: getfacl after --revoke == after setfacl -R -x"
	xattr_hex "$V" "$W/$fs.v2.hex"
	xattr_hex "$M/copy" "$W/$fs.c2.hex"
	same "$W/$fs.v2.hex" "$W/$fs.c2.hex" "$fs: raw ACL xattrs after --revoke == setfacl's"

	# The grant's before-images, as setfacl --restore input, on the copy.
	vp_expect 0 "$fs: journal export --format getfacl of the grant" journal export --format getfacl "$grant_journal"
	cp "$OUT" "$W/$fs.export"
	if (cd "$M/copy" && setfacl --restore="$W/$fs.export") 2>"$W/$fs.restore.err"; then
		pass "$fs: setfacl --restore accepts the export"
	else
		fail "$fs: setfacl --restore refused the export: $(head -c 300 "$W/$fs.restore.err")"
	fi
	facls "$M/copy" "$W/$fs.c3.facl"
	same "$W/$fs.v0.facl" "$W/$fs.c3.facl" "$fs: setfacl --restore of the export gives back the original ACLs"
	xattr_hex "$M/copy" "$W/$fs.c3.hex"
	same "$W/$fs.v0.hex" "$W/$fs.c3.hex" "$fs: ... byte for byte"

	vp_expect 0 "$fs: rollback the revoke" rollback --journal-dir "$J" "$V"
	vp_expect 0 "$fs: rollback the grant" rollback --journal-dir "$J" "$V"
	xattr_hex "$V" "$W/$fs.v3.hex"
	same "$W/$fs.v0.hex" "$W/$fs.v3.hex" "$fs: two rollbacks restored every ACL xattr byte for byte (getfattr -e hex)"
	snap "$V" "$W/$fs.v3.snap"
	snap_eq "$W/$fs.v0.snap" "$W/$fs.v3.snap" "$fs: ... and every mode"

	# -----------------------------------------------------------------
	# 2. the largest ACL the filesystem accepts
	# -----------------------------------------------------------------
	F=$M/full
	mkdir "$F"
	: >"$F/fmax"
	chmod 0644 "$F/fmax"
	set_acl "$F/fmax" "$maxf" || die "$fs: setfacl of $maxf entries on fmax"
	mkdir -m 0755 "$F/dmax"
	set_acl "$F/dmax" "$maxd" "$maxd" || die "$fs: setfacl of $maxd + $maxd entries on dmax"
	rm -rf "$M/fcopy"
	cp -a "$F" "$M/fcopy" || die "cp -a"
	snap "$F" "$W/$fs.f0.snap"
	facls "$F" "$W/$fs.f0.facl"
	xattr_hex "$F" "$W/$fs.f0.hex"

	# One entry more does not fit. Up to 8191 volperm can only learn that
	# from the filesystem (apply fails on the entry and rolls back); at
	# 8191 it knows that no filesystem stores it: an error on the entry
	# from check as well.
	if [ "$maxf" -lt 8191 ]; then
		vp_expect 1 "$fs: check --grant u:$NEW:rwX on fmax ($maxf entries): the grant is missing" \
			check --grant u:$NEW:rwX "$F/fmax"
	else
		vp_expect 5 "$fs: check --grant u:$NEW:rwX on fmax (8191 entries): an error for the entry" \
			check --grant u:$NEW:rwX "$F/fmax"
		assert_file_match "fmax: edit ACL: Argument list too long: the ACL would have more than 8191 entries" "$ERR" \
			"$fs: the error says why"
	fi
	for e in fmax dmax; do
		vp_expect 3 "$fs: apply --grant u:$NEW:rwX on $e: needs one entry more than the filesystem holds" \
			apply --grant u:$NEW:rwX --journal-dir "$M/journal-fail" "$F/$e"
		assert_file_match "^volperm: $F/$e: " "$ERR" "$fs: one error, naming $e"
		# The oracle on a scratch copy: setfacl may set the access ACL
		# and then fail on the default ACL.
		rm -rf "$M/scratch"
		cp -a "$F/$e" "$M/scratch" || die "cp -a $e"
		if setfacl -P -m u:$NEW:rwX,d:u:$NEW:rwX "$M/scratch" 2>/dev/null; then
			fail "$fs: setfacl -m u:$NEW:rwX,d:u:$NEW:rwX succeeds on a copy of $e: not the largest ACL"
		else
			pass "$fs: setfacl -m u:$NEW:rwX,d:u:$NEW:rwX fails on a copy of $e as well"
		fi
		rm -rf "$M/scratch"
	done
	xattr_hex "$F" "$W/$fs.f1.hex"
	same "$W/$fs.f0.hex" "$W/$fs.f1.hex" "$fs: the refused grants changed no xattr byte"
	snap "$F" "$W/$fs.f1.snap"
	snap_eq "$W/$fs.f0.snap" "$W/$fs.f1.snap" "$fs: ... and no mode"

	# Replacing an entry and revoking keep within the bound.
	vp_expect 0 "$fs: apply --grant u:$OLD:rwx (replaces an entry)" apply --grant u:$OLD:rwx --journal-dir "$J" "$F"
	grant_journal=$(newest_journal "$J")
	setfacl_tree "$M/fcopy" -m u:$OLD:rwx -m d:u:$OLD:rwx || fail "$fs: setfacl -m u:$OLD:rwx on the copy failed"
	facls "$F" "$W/$fs.f2.facl"
	facls "$M/fcopy" "$W/$fs.fc2.facl"
	same "$W/$fs.f2.facl" "$W/$fs.fc2.facl" "$fs: largest ACLs: --grant u:$OLD:rwx == setfacl -m"
	xattr_hex "$F" "$W/$fs.f2.hex"
	xattr_hex "$M/fcopy" "$W/$fs.fc2.hex"
	same "$W/$fs.f2.hex" "$W/$fs.fc2.hex" "$fs: largest ACLs: raw xattrs == setfacl's"
	vp_expect 0 "$fs: largest ACLs: check --grant u:$OLD:rwx after it" check --grant u:$OLD:rwx "$F"
	vp_expect 0 "$fs: apply --revoke u:$OLD" apply --revoke u:$OLD --journal-dir "$J" "$F"
	setfacl_tree "$M/fcopy" -x u:$OLD -x d:u:$OLD || fail "$fs: setfacl -x u:$OLD on the copy failed"
	facls "$F" "$W/$fs.f3.facl"
	facls "$M/fcopy" "$W/$fs.fc3.facl"
	same "$W/$fs.f3.facl" "$W/$fs.fc3.facl" "$fs: largest ACLs: --revoke u:$OLD == setfacl -x"

	vp_expect 0 "$fs: largest ACLs: journal export --format getfacl" journal export --format getfacl "$grant_journal"
	cp "$OUT" "$W/$fs.fexport"
	if (cd "$M/fcopy" && setfacl --restore="$W/$fs.fexport") 2>"$W/$fs.frestore.err"; then
		pass "$fs: largest ACLs: setfacl --restore accepts the export"
	else
		fail "$fs: largest ACLs: setfacl --restore refused the export: $(head -c 300 "$W/$fs.frestore.err")"
	fi
	xattr_hex "$M/fcopy" "$W/$fs.fc4.hex"
	same "$W/$fs.f0.hex" "$W/$fs.fc4.hex" "$fs: largest ACLs: the restored export is the original, byte for byte"

	vp_expect 0 "$fs: largest ACLs: rollback the revoke" rollback --journal-dir "$J" "$F"
	vp_expect 0 "$fs: largest ACLs: rollback the grant" rollback --journal-dir "$J" "$F"
	xattr_hex "$F" "$W/$fs.f4.hex"
	same "$W/$fs.f0.hex" "$W/$fs.f4.hex" "$fs: largest ACLs: rollbacks restored every xattr byte (getfattr -e hex)"
	snap "$F" "$W/$fs.f4.snap"
	snap_eq "$W/$fs.f0.snap" "$W/$fs.f4.snap" "$fs: largest ACLs: ... and every mode"

	umount "$M" || umount -l "$M"
	rm -f "$W/$fs.img"
done
say "# tested: ${tested[*]:-none}; not available: ${missing[*]:-none}"
for m in "${missing[@]}"; do
	say "SKIP-PART: $m"
done
[ "${#tested[@]}" -gt 0 ] || skip "no filesystem could be made here: ${missing[*]}"
finish
