#!/usr/bin/env bash
# overlayfs: a container's root filesystem (Docker's overlay2, Podman), and
# fuse-overlayfs (rootless Podman). The first metadata change of a
# lower-layer entry copies it up: the upper copy keeps the inode number but
# is born then (a new birth time), and a hard link of a lower file is split
# unless the overlay is mounted index=on. Identity checks, the automatic
# rollback of a failed apply, recovery after a crash and rollback must all
# still work. For each base (overlay over ext4, over tmpfs, and
# fuse-overlayfs where it is installed), on a fresh overlay of a pristine
# lower layer each time:
#
#   1. apply --owner == chown -R -h on a plain copy; rollback gives back the
#      pre-apply snapshot (every entry copied up, a new birth time), exit 0;
#      the same for --grant (ACLs copied up) and a failed rollback-able run.
#   2. a failed apply (an immutable file in the upper layer): exit 3, the
#      automatic rollback restores everything (setuid bits included).
#   3. fault injection at every mutating step of an apply (fault build):
#      recover == pre-apply snapshot, recover --forward == clean apply; then
#      SIGKILLs of --jobs 4 applies at spread steps, recovered back.
#   4. hard links in the lower layer: with index=off a copy-up splits them,
#      so each name is copied up and changed on its own (both end up
#      changed, the lower layer untouched); with index=on the link stays
#      whole and is changed once. Rollback is exact both ways.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/crashlib.sh"
setup
need_cmd mount umount cp chown setfacl setcap chattr truncate mkfs.ext4
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null
grep -qw overlay /proc/filesystems || skip "this kernel has no overlayfs"
snapd_start

TREE=(60 --seed 7 --acl-every 5 --default-acl-every 3 --setid 5 --caps 3 --hardlink-every 10 --symlink-every 8)
FUSE_TREE=(60 --seed 7 --acl-every 5 --setid 5 --caps 3 --symlink-every 8)

# ovl_fresh KIND BASE [OPTS]: a fresh overlay of $BASE/lower at $BASE/m, with
# an empty upper layer (kernel overlayfs, or fuse-overlayfs).
ovl_fresh() {
	local kind=$1 base=$2 opts=${3:-}
	ovl_umount "$base"
	rm -rf "$base/u" "$base/w"
	mkdir -p "$base/u" "$base/w" "$base/m"
	local o="lowerdir=$base/lower,upperdir=$base/u,workdir=$base/w${opts:+,$opts}"
	if [ "$kind" = fuse ]; then
		fuse-overlayfs -o "$o" "$base/m" 2>"$W/ovl.err"
	else
		mount -t overlay overlay -o "$o" "$base/m" 2>"$W/ovl.err"
	fi || die "mount $kind overlay on $base/m: $(cat "$W/ovl.err")"
}
ovl_umount() {
	if mountpoint -q "$1/m"; then
		umount "$1/m" 2>/dev/null || fusermount3 -u "$1/m" 2>/dev/null || umount -l "$1/m"
	fi
}

bases=() missing=()
# overlay over ext4: lower, upper and journals on one ext4 loop image
truncate -s 256M "$W/ext4.img"
mkdir "$W/ext4"
if mkfs.ext4 -q -F "$W/ext4.img" >/dev/null 2>&1 && mount -o loop "$W/ext4.img" "$W/ext4" 2>/dev/null; then
	bases+=("kernel:$W/ext4")
else
	missing+=("overlay over ext4 (no loop mount)")
fi
mkdir "$W/tmpfs"
if mount -t tmpfs -o size=256m,mode=0755 tmpfs "$W/tmpfs"; then
	bases+=("kernel:$W/tmpfs")
else
	missing+=("overlay over tmpfs (cannot mount tmpfs)")
fi
if command -v fuse-overlayfs >/dev/null 2>&1 && [ -e /dev/fuse ]; then
	mkdir "$W/fuse"
	bases+=("fuse:$W/fuse")
else
	missing+=("fuse-overlayfs (not installed, or no /dev/fuse)")
fi

for b in "${bases[@]}"; do
	kind=${b%%:*} B=${b#*:}
	tag="$kind/$(stat -f -c %T "$B")"
	say "# --- $tag ---"
	mkdir -p "$B/lower"
	if [ "$kind" = fuse ]; then
		# fuse-overlayfs 1.10 gets two things wrong by itself: a copied-up
		# directory inherits its new upper parent's default ACL (chown -R
		# shows it too: not volperm's change, so not its to restore), and
		# once a copy-up has split a hard link in the upper layer the
		# mount goes on showing one inode under every name (so a change
		# through one name looks like none: docs/containers.md); and its
		# copy-up of a setgid directory drops the setgid bit (mkdir(2)
		# ignores it; chown -R loses it the same way). Its tree has no
		# default ACLs, hard links or setgid directories.
		mktree "$B/lower" "${FUSE_TREE[@]}"
		find "$B/lower" -type f -links +1 -name 'hardlink*' -delete
		find "$B/lower" -type d -perm -2000 -exec chmod g-s {} +
	else
		mktree "$B/lower" "${TREE[@]}"
	fi
	J=$B/j
	fresh_jdir "$J"
	V=$B/m

	# the oracle: chown -R -h on a plain copy of the lower layer
	fresh_copy "$B/lower" "$W/oracle"
	chown -R -h 1001:1001 "$W/oracle" || die "chown -R -h"
	fsnap "$W/oracle" "$W/oracle.snap"

	# ---- 1. apply, rollback ----
	ovl_fresh "$kind" "$B"
	[ "$(stat -f -c %T "$V")" != "$(stat -f -c %T "$B")" ] || die "$tag: $V is not an overlay (test setup)"
	fsnap "$V" "$W/pre.snap"
	vp_expect 0 "[$tag] apply --owner 1001:1001" apply -q -o 1001:1001 --journal-dir "$J" "$V"
	fcheck "$V" "$W/oracle.snap" "[$tag] apply == chown -R -h on a plain copy"
	fsnap "$V" "$W/post.snap"
	vp rollback --journal-dir "$J" "$V"
	expect_rc 0 "[$tag] rollback of the copied-up entries"
	assert_file_nomatch "another file is there now" "$ERR" "[$tag] no copy-up is taken for another file"
	fcheck "$V" "$W/pre.snap" "[$tag] rollback == pre-apply snapshot"

	ovl_fresh "$kind" "$B"
	vp_expect 0 "[$tag] apply --grant u:2001:rwX" apply -q --grant u:2001:rwX --journal-dir "$J" "$V"
	vp_expect 0 "[$tag] rollback of --grant" rollback -q --journal-dir "$J" "$V"
	fcheck "$V" "$W/pre.snap" "[$tag] rollback of --grant == pre-apply snapshot (ACLs)"

	# ---- 2. a failed apply rolls back on its own ----
	ovl_fresh "$kind" "$B"
	sfile=$(awk -F'\t' '$2 == "file" && $5 ~ /^[4-7]/ { print $1; exit }' "$W/pre.snap")
	[ -n "$sfile" ] || die "$tag: no setuid file in the tree (test setup)"
	# a file that lives in the upper layer (written in the container), made
	# immutable there: its chown fails with EPERM
	: >"$V/zz-upper-immutable"
	if chattr +i "$B/u/zz-upper-immutable" 2>"$W/chattr.err"; then
		fsnap "$V" "$W/pre2.snap"
		vp apply -o 1001:1001 --journal-dir "$J" "$V"
		expect_rc 3 "[$tag] apply that fails on an immutable upper file: rolled back"
		assert_file_nomatch "another file is there now" "$ERR" "[$tag] the automatic rollback takes copied-up entries for ours"
		fcheck "$V" "$W/pre2.snap" "[$tag] failed apply: tree == pre-apply snapshot ($sfile keeps its setuid bit)"
		assert_eq "$(journal_state "$J")" rolled-back "[$tag] the journal ends rolled-back"
		chattr -i "$B/u/zz-upper-immutable"
	else
		say "# [$tag] chattr +i in the upper layer is not supported here ($(cat "$W/chattr.err")): failed-apply case left out"
	fi

	# ---- 3. crashes ----
	if [ -x "$VPF" ]; then
		ovl_fresh "$kind" "$B"
		VOLPERM_FAULT_TRACE=1 VOLPERM_JOBS=1 "$VPF" apply -q -o 1001:1001 --journal-dir "$J" "$V" \
			>/dev/null 2>"$W/trace"
		total=$(trace_steps "$W/trace" | wc -l)
		commit=$(trace_steps "$W/trace" | awk '$1 == "syncfs" { print NR + 1 }')
		assert_true "[$tag] traced apply has steps ($total, commit mark at $commit)" test "$total" -gt 10 -a -n "$commit"
		bad=0
		for ((n = 1; n <= total; n++)); do
			for mode in back forward; do
				what="[$tag/$mode] killed after step $n/$total"
				ovl_fresh "$kind" "$B"
				fresh_jdir "$J"
				VOLPERM_FAULT_AFTER=$n VOLPERM_JOBS=1 "$VPF" apply -q -o 1001:1001 --journal-dir "$J" "$V" \
					>/dev/null 2>&1
				rc=$?
				f0=$FAILS
				[ $rc -eq 137 ] || fail "$what: the fault build exited $rc, expected 137 (SIGKILL)"
				if [ $mode = back ]; then
					if [ "$n" -lt "$commit" ]; then
						"$VP" recover -q --journal-dir "$J" "$V" >/dev/null 2>"$W/rec.err" ||
							fail "$what: recover exited $?: $(head -c 300 "$W/rec.err")"
					else
						"$VP" rollback -q --journal-dir "$J" "$V" >/dev/null 2>"$W/rec.err" ||
							fail "$what: rollback exited $?: $(head -c 300 "$W/rec.err")"
					fi
					fcheck "$V" "$W/pre.snap" "$what: recovered == pre-apply snapshot"
				else
					"$VP" recover -q --forward --journal-dir "$J" "$V" >/dev/null 2>"$W/rec.err" ||
						fail "$what: recover --forward exited $?: $(head -c 300 "$W/rec.err")"
					fcheck "$V" "$W/post.snap" "$what: recover --forward == clean apply"
					"$VP" rollback -q --journal-dir "$J" "$V" >/dev/null 2>"$W/rec.err" ||
						fail "$what: rollback after recover --forward exited $?: $(head -c 300 "$W/rec.err")"
					fcheck "$V" "$W/pre.snap" "$what: ... then rollback == pre-apply snapshot"
				fi
				[ $FAILS -gt $f0 ] && bad=$((bad + 1))
			done
		done
		assert_eq "$bad" 0 "[$tag] fault injection at all $total steps, back and forward: every crash recovered exactly"
		# --jobs 4: steps interleave differently each run; kill at spread steps
		ovl_fresh "$kind" "$B"
		fresh_jdir "$J"
		VOLPERM_FAULT_TRACE=1 "$VPF" apply -q --jobs 4 -o 1001:1001 --journal-dir "$J" "$V" \
			>/dev/null 2>"$W/ptrace"
		ptotal=$(trace_steps "$W/ptrace" | wc -l)
		bad=0 killed=0
		for n in $(seq 3 $(((ptotal + 7) / 8)) "$ptotal"); do
			ovl_fresh "$kind" "$B"
			fresh_jdir "$J"
			VOLPERM_FAULT_AFTER=$n "$VPF" apply -q --jobs 4 -o 1001:1001 --journal-dir "$J" "$V" >/dev/null 2>&1
			[ $? -eq 137 ] || continue
			killed=$((killed + 1))
			f0=$FAILS
			if [ "$(journal_state "$J")" = committed ]; then
				"$VP" rollback -q --journal-dir "$J" "$V" >/dev/null 2>&1 || fail "[$tag/jobs 4] rollback after step $n"
			else
				"$VP" recover -q --journal-dir "$J" "$V" >/dev/null 2>&1 || fail "[$tag/jobs 4] recover after step $n"
			fi
			fcheck "$V" "$W/pre.snap" "[$tag/jobs 4] killed after step $n: recovered == pre-apply snapshot"
			[ $FAILS -gt $f0 ] && bad=$((bad + 1))
		done
		assert_true "[$tag/jobs 4] some runs were killed mid-apply ($killed)" test "$killed" -gt 0
		assert_eq "$bad" 0 "[$tag/jobs 4] $killed killed parallel applies all recovered exactly"
	else
		say "# [$tag] no fault-injection build at $VPF: crash section left out"
	fi

	# ---- 4. hard links of the lower layer ----
	if [ "$kind" = kernel ]; then
		mkdir -p "$B/lower/links"
		echo data >"$B/lower/links/a"
		ln "$B/lower/links/a" "$B/lower/links/b"
		chown 1000:1000 "$B/lower/links/a"
		ovl_fresh "$kind" "$B" index=off
		fsnap "$V" "$W/pre4.snap"
		vp_expect 0 "[$tag] index=off: apply (each name is copied up, and so split, on its own)" \
			apply -q -o 1001:1001 --journal-dir "$J" "$V"
		assert_eq "$(stat -c %u "$V/links/a") $(stat -c %u "$V/links/b")" "1001 1001" \
			"[$tag] index=off: both names changed (as chown -R does there), not one"
		assert_eq "$(stat -c %u "$B/lower/links/a")" 1000 "[$tag] index=off: the lower layer is untouched"
		vp_expect 0 "[$tag] index=off: rollback" rollback -q --journal-dir "$J" "$V"
		fcheck "$V" "$W/pre4.snap" "[$tag] index=off: rollback == pre-apply snapshot"
		ovl_fresh "$kind" "$B" index=on
		vp_expect 0 "[$tag] index=on: apply (copy-up keeps the link whole)" apply -q -o 1001:1001 --journal-dir "$J" "$V"
		assert_eq "$(stat -c %u "$V/links/a") $(stat -c %u "$V/links/b")" "1001 1001" "[$tag] index=on: both names changed"
		vp_expect 0 "[$tag] index=on: rollback" rollback -q --journal-dir "$J" "$V"
		fcheck "$V" "$W/pre4.snap" "[$tag] index=on: rollback == pre-apply snapshot"
		rm -rf "$B/lower/links"
	fi
	ovl_umount "$B"
done
[ ${#missing[@]} -eq 0 ] || say "# NOT TESTED here: ${missing[*]}"
[ ${#bases[@]} -gt 0 ] || skip "no overlay could be mounted: ${missing[*]}"
finish
