#!/usr/bin/env bash
# Names from the app image: --owner NAME[:GROUP] (and --fsgroup, --grant,
# --map) resolve through --passwd FILE / --group-file FILE, files copied out
# of the image, whose ids need not match the host's; without them, through
# the local database. A name that does not resolve is exit 2 with a clear
# message, and nothing changes. Numeric ids never need a database: they work
# with unreadable image files and with an empty host /etc/passwd.
#
# When a file is given it is the only source for that kind of name: an
# image user is never silently swapped for a host user of the same name
# (whose id may differ).
. "$(dirname "$0")/../cli/lib.sh"
setup
need_cmd getfacl

J=$(new_jdir)
IMG=$W/image/etc
mkdir -p "$IMG"
# The image's files: ids unlike the host's, a name the host also has
# (daemon: host uid 1) with another id, comments and a blank line as
# some images carry.
cat >"$IMG/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:7777:7777:image daemon:/:/sbin/nologin
app:x:1234:4321:the app:/home/app:/bin/sh
postgres:x:70:70:PostgreSQL:/var/lib/postgresql:/bin/sh
EOF
cat >"$IMG/group" <<'EOF'
root:x:0:
daemon:x:7777:
app:x:4321:
web:x:5555:app
postgres:x:70:
EOF
P=(--passwd "$IMG/passwd" --group-file "$IMG/group")

mkvol() { # mkvol DIR: a small tree owned by 0:0
	mkdir -p "$1/d/e"
	printf 'a\n' >"$1/f"
	printf 'b\n' >"$1/d/e/g"
	chown -R 0:0 "$1"
}
owners() { find "$1" -printf '%U:%G\n' | sort -u | tr '\n' ' '; }

# ---------------------------------------------------------------------------
# names resolved in the image files
# ---------------------------------------------------------------------------
V=$W/v1
mkvol "$V"
vp_expect 0 "plan --owner app:web" plan --owner app:web "${P[@]}" "$V"
assert_file_match "^target: +owner 1234:5555" "$OUT" "plan shows the numeric target 1234:5555"
vp_expect 0 "apply --owner app:web --passwd --group-file" apply --owner app:web "${P[@]}" --journal-dir "$J" "$V"
assert_eq "$(owners "$V")" "1234:5555 " "every entry 1234:5555 (from the image files)"
jf=$(newest_journal "$J")
vp_expect 0 "journal show" journal show --journal-dir "$J" "$jf"
assert_file_match "1234" "$OUT" "the journal's policy holds the numeric uid (recover --forward needs no image files)"
vp_expect 0 "check --owner 1234:5555 (numeric): compliant" check --owner 1234:5555 "$V"
vp_expect 0 "rollback" rollback --journal-dir "$J" "$V"
assert_eq "$(owners "$V")" "0:0 " "rollback restored 0:0"

vp_expect 0 "--owner app (no group): uid only" apply --owner app "${P[@]}" --journal-dir "$J" "$V"
assert_eq "$(owners "$V")" "1234:0 " "uid 1234, group untouched (no login group guessed)"
vp_expect 0 "--owner :web: gid only" apply --owner :web "${P[@]}" --journal-dir "$J" "$V"
assert_eq "$(owners "$V")" "1234:5555 " "gid 5555"
vp_expect 0 "--owner postgres:postgres, flags after PATH order-independent" apply --journal-dir "$J" "$V" --owner postgres:postgres --group-file "$IMG/group" --passwd "$IMG/passwd"
assert_eq "$(owners "$V")" "70:70 " "postgres 70:70 (--passwd given after --owner works)"

# The image's daemon (7777), not the host's (uid 1).
V=$W/v2
mkvol "$V"
vp_expect 0 "--owner daemon:daemon with image files" apply --owner daemon:daemon "${P[@]}" --journal-dir "$J" "$V"
assert_eq "$(owners "$V")" "7777:7777 " "image daemon 7777:7777, not the host's $(id -u daemon 2>/dev/null):$(id -g daemon 2>/dev/null)"

# Names in the other options.
V=$W/v3
mkvol "$V"
vp_expect 0 "--fsgroup web --group-file" apply --fsgroup web --group-file "$IMG/group" --journal-dir "$J" "$V"
assert_eq "$(stat -c %g "$V/d/e/g")" 5555 "--fsgroup web -> 5555"
vp_expect 0 "(setup: owner app)" apply --owner app --passwd "$IMG/passwd" --journal-dir "$J" "$V"
vp_expect 0 "--map app:postgres" apply --map app:postgres --passwd "$IMG/passwd" --journal-dir "$J" "$V"
assert_eq "$(stat -c %u "$V/f")" 70 "--map app:postgres -> uid 70"
vp_expect 0 "--grant u:app:rwX,g:web:rX" apply --grant u:app:rwX,g:web:rX "${P[@]}" --journal-dir "$J" "$V"
assert_eq "$(getfacl -n -P "$V/f" 2>/dev/null | grep -cE '^(user:1234:rw-|group:5555:r--)$')" 2 "--grant names -> user:1234, group:5555"

# The local database without --passwd: the host's names.
V=$W/v4
mkvol "$V"
vp_expect 0 "--owner daemon:daemon, local database" apply --owner daemon:daemon --journal-dir "$J" "$V"
assert_eq "$(owners "$V")" "$(id -u daemon):$(getent group daemon | cut -d: -f3) " "host daemon ids from the local database"

# ---------------------------------------------------------------------------
# names that do not resolve: exit 2, a clear message naming them, nothing changed
# ---------------------------------------------------------------------------
V=$W/v5
mkvol "$V"
snap "$V" "$W/v5.snap" --ctime
unresolved() { # unresolved NAME-IN-MESSAGE DESC ARGS...
	local name=$1 desc=$2
	shift 2
	vp_expect 2 "$desc" apply "$@" --journal-dir "$J" "$V"
	assert_file_match "$name" "$ERR" "$desc: the message names '$name'"
	assert_eq "$(wc -c <"$OUT")" 0 "$desc: nothing on stdout"
}
unresolved nosuchuser "unknown user in the image passwd" --owner nosuchuser "${P[@]}"
unresolved nosuchgroup "unknown group in the image group file" --owner app:nosuchgroup "${P[@]}"
unresolved nosuchgroup "unknown --fsgroup name" --fsgroup nosuchgroup "${P[@]}"
unresolved nosuchuser "unknown --grant user" --grant u:nosuchuser:rw "${P[@]}"
unresolved nosuchuser "unknown --map name" --map nosuchuser:app "${P[@]}"
# an image file is the only source: no fallback to the host's users
unresolved bin "host-only user 'bin' with an image passwd" --owner bin "${P[@]}"
unresolved volperm-no-such-user "unknown user, local database" --owner volperm-no-such-user
unresolved volperm-no-such-group "unknown group, local database" --owner 0:volperm-no-such-group
# an unreadable image file: say which file and why
vp_expect 2 "--passwd of a missing file" apply --owner app --passwd "$W/image/missing-passwd" --journal-dir "$J" "$V"
assert_file_match "missing-passwd" "$ERR" "missing --passwd file: the message names the file"
assert_file_match "no such file|cannot|can't|unable|not found" "$ERR" "missing --passwd file: the message says it cannot be read"
vp_expect 2 "--group-file of a directory" apply --owner :web --group-file "$W/image" --journal-dir "$J" "$V"
assert_file_match "$W/image" "$ERR" "--group-file that is a directory: the message names it"
snap "$V" "$W/v5b.snap" --ctime
snap_eq "$W/v5.snap" "$W/v5b.snap" "no refused run changed anything"

# ---------------------------------------------------------------------------
# numeric ids need no database
# ---------------------------------------------------------------------------
V=$W/v6
mkvol "$V"
vp_expect 0 "numeric ids with missing image files" apply --owner 4242:4343 --passwd "$W/nope/passwd" --group-file "$W/nope/group" --journal-dir "$J" "$V"
assert_eq "$(owners "$V")" "4242:4343 " "ids that exist nowhere work"
vp_expect 0 "numeric --fsgroup/--grant with missing image files" apply --fsgroup 4545 --grant u:4646:r --passwd "$W/nope/passwd" --group-file "$W/nope/group" --journal-dir "$J" "$V"
assert_eq "$(stat -c %g "$V/f")" 4545 "numeric --fsgroup"

# With an empty host /etc/passwd and /etc/group (a private mount namespace):
# numeric ids still work, a name does not resolve.
if command -v unshare >/dev/null 2>&1 && unshare --mount --propagation private true 2>/dev/null; then
	: >"$W/empty"
	V=$W/v7
	mkvol "$V"
	unshare --mount --propagation private sh -c '
		mount --bind "$1" /etc/passwd && mount --bind "$1" /etc/group || exit 99
		"$2" apply --owner 4747:4848 --journal-dir "$3" "$4" >"$5.num.out" 2>"$5.num.err"; echo $? >"$5.num.rc"
		"$2" apply --owner daemon --journal-dir "$3" "$4" >"$5.name.out" 2>"$5.name.err"; echo $? >"$5.name.rc"
	' sh "$W/empty" "$VP" "$J" "$V" "$W/ns"
	assert_eq "$(cat "$W/ns.num.rc" 2>/dev/null)" 0 "empty /etc/passwd and /etc/group: numeric --owner works"
	assert_eq "$(owners "$V")" "4747:4848 " "empty host databases: 4747:4848 applied"
	assert_eq "$(cat "$W/ns.name.rc" 2>/dev/null)" 2 "empty host databases: a name is exit 2"
	assert_file_match "daemon" "$W/ns.name.err" "empty host databases: the message names the user"
else
	say "note: unshare --mount not available; the empty-database case was not run"
fi

finish
