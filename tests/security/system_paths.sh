#!/usr/bin/env bash
# Case 9: system paths. /, /etc, /usr, /bin, /sbin, /lib, /lib32, /lib64,
# /libx32, /boot, /proc, /sys, /dev, /var, /home, /root are refused (exit 2,
# one sentence, nothing walked, no journal) by plan, check and apply, also
# when spelled with "..", "//", "/." or a trailing "/", through a symlink
# made in the work dir, and -- on merged-/usr systems -- as /bin, /sbin,
# /lib* which are themselves symlinks into /usr. --allow-system-path lets a
# dry run through. Never applied to a real system dir: every apply here uses
# --map of an id that owns nothing, so even a wrongly accepted apply would
# change nothing.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup

JP=$W/jdir-never-created
NOID=4294967000:4294967001 # owns nothing: a mis-accepted apply changes nothing

refused() { # DESC PATH
	local desc=$1 p=$2 cmd
	for cmd in plan check apply; do
		vpt 20 "$cmd" --map "$NOID" --journal-dir "$JP" "$p"
		if [ "$RC" != 2 ]; then
			fail "$cmd $desc ($p): expected exit 2 (system path), got $RC; stdout: $(head -n 2 "$OUT" | tr '\n' '|' | cut -c1-160)"
		elif [ "$(wc -l <"$ERR")" = 1 ] && grep -q 'system path' "$ERR" && [ ! -s "$OUT" ]; then
			pass "$cmd $desc: refused (exit 2), one sentence, nothing walked"
		else
			fail "$cmd $desc: exit 2 but not one 'system path' sentence on stderr (or output on stdout):"
			head -n 3 "$ERR" | cut -c1-200 | sed 's/^/    /'
		fi
	done
}

for p in / /etc /usr /bin /sbin /lib /lib32 /lib64 /libx32 /boot /proc /sys /dev /var /home /root; do
	[ -e "$p" ] || [ -L "$p" ] || { say "# $p does not exist here"; continue; }
	if [ -L "$p" ]; then
		refused "$p (a symlink to $(readlink "$p") on this system)" "$p"
	else
		refused "$p" "$p"
	fi
done

# other spellings
mkdir -p "$W/a/b"
refused "/etc/ (trailing slash)" /etc/
refused "//usr" //usr
refused "/usr/." /usr/.
refused "/var/lib/.. (..)" /var/lib/..
refused "work-dir/a/b/../../../../../etc" "$W/a/b/../../../../../../../../etc"
ln -s /etc "$W/etc-link"
ln -s / "$W/root-link"
ln -s ../../../../../../../../../../home "$W/a/home-rel"
ln -s "$W/etc-link" "$W/chain"
refused "a symlink to /etc" "$W/etc-link"
refused "a symlink to /" "$W/root-link"
refused "a relative symlink to /home" "$W/a/home-rel"
refused "a chain of symlinks to /etc" "$W/chain"
refused "a symlink to /etc, with a trailing /." "$W/etc-link/."
assert_true "the journal dir was never created (every apply refused before it)" test ! -e "$JP"
rm -rf "$JP"

# --allow-system-path: a dry run goes through (never applied here)
vpt 30 plan --map "$NOID" --allow-system-path --journal-dir "$JP" /etc
expect_rc_in "0 5" "plan --allow-system-path /etc runs"
vpt 30 plan --map "$NOID" --allow-system-path --journal-dir "$JP" "$W/etc-link"
expect_rc_in "0 5" "plan --allow-system-path via a symlink runs"
assert_true "the journal dir was never created by plans" test ! -e "$JP"

# an ordinary dir below a system dir is not refused (only the dirs themselves)
mkdir -p "$W/srv"
vp_expect 0 "an ordinary dir is accepted" plan --owner 1001:1001 --journal-dir "$JP" "$W/srv"

finish
