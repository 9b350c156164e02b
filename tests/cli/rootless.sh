#!/usr/bin/env bash
# Rootless use (issue 13). As a plain user (created here if missing; run
# through setpriv --reuid/--regid --init-groups, so without any capability):
#   - chmod g+rwX, --grant and a group change to one of the user's groups
#     work on the user's own files, with and without a journal, and rollback
#     restores them exactly (stat and getfacl -R before/after);
#   - the default journal directory is $XDG_STATE_HOME/volperm, else
#     ~/.local/state/volperm, made like mkdir -p with mode 0700;
#   - a foreign-owned entry is refused up front, naming it and the
#     capability: exit 2, one line, nothing changed, no journal.
# As root: --userns user:NAME with fixture subuid/subgid files translates
# --owner 1001:1001 to the subordinate range and refuses an id outside it;
# --userns pid:PID and /proc/PID/ns/user read a running namespace's maps
# (a shifted map made by nsexec.py, and `unshare --user --map-root-user` run
# by the user). Skips (77) only when user namespaces are unavailable, for
# the parts that need them.
. "$(dirname "$0")/lib.sh"
setup
need_cmd setpriv getfacl setfacl useradd groupadd

U=vp-rootless
G2=vp-rootless2
# Fixed ids that no other test uses as an owner: suites run in parallel,
# and one that compares `find -printf %u` output (security/cycles_deep,
# --owner 1001) sees a name instead of a number while a passwd entry for its
# id exists. (useradd's next free id would be 1001 on a fresh machine.)
RUID=6543
RGID2=6544
if ! getent group "$G2" >/dev/null; then
	! getent group "$RGID2" >/dev/null || die "gid $RGID2 is taken; this test needs it free"
	groupadd -g "$RGID2" "$G2" || die "groupadd $G2"
	on_exit "groupdel $G2"
fi
if ! id "$U" >/dev/null 2>&1; then
	! getent passwd "$RUID" >/dev/null || die "uid $RUID is taken; this test needs it free"
	! getent group "$RUID" >/dev/null || die "gid $RUID is taken; this test needs it free"
	useradd -M -d /nonexistent -s /usr/sbin/nologin -u "$RUID" -U -G "$G2" "$U" ||
		die "useradd $U"
	on_exit "userdel $U"
else
	usermod -a -G "$G2" "$U" || die "usermod -a -G $G2 $U"
fi
UID_=$(id -u "$U")
GID_=$(id -g "$U")
GID2=$(getent group "$G2" | cut -d: -f3)

# The binary where the user can run it.
mkdir -p "$W/bin"
cp "$VP" "$W/bin/volperm"
chmod 0755 "$W/bin" "$W/bin/volperm"
UVP=$W/bin/volperm
H=$W/home
mkdir -p "$H"
chown "$U:$GID_" "$H"

# asuser ARGS...: volperm as the user (no capabilities); sets OUT ERR RC.
asuser() {
	NRUN=$((NRUN + 1))
	OUT=$W/run$NRUN.out
	ERR=$W/run$NRUN.err
	setpriv --reuid="$UID_" --regid="$GID_" --init-groups -- \
		env -i PATH=/usr/bin:/bin HOME="$H" ${XDG:+XDG_STATE_HOME=$XDG} "$UVP" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	say "+ [as $U${XDG:+, XDG_STATE_HOME=$XDG}] volperm $(printf '%q ' "$@")-> exit $RC"
	_sanitizer_check
}
XDG=

# one_line_err FILE DESC: stderr is exactly one line, starting "volperm: ".
one_line_err() {
	if [ "$(wc -l <"$1")" = 1 ] && grep -q '^volperm: ' "$1"; then
		pass "$2: one line: $(cut -c1-200 "$1")"
	else
		fail "$2: expected exactly one 'volperm: ...' line on stderr:"
		head -n 10 "$1" | cat -v | sed 's/^/    /'
	fi
}

# state DIR FILE: owners, modes and ACLs of a tree, for exact comparisons.
state() {
	(cd "$1" && find . -printf '%p %U:%G %m %y\n' | sort && getfacl -Rpn . 2>/dev/null) >"$2"
}

# A tree of the user's own.
mkvol() {
	rm -rf "$1"
	mkdir -p "$1/d/e"
	echo a >"$1/a"
	echo b >"$1/d/b"
	echo c >"$1/d/e/c"
	chmod 0700 "$1/d/e"
	chmod 0600 "$1/a"
	ln -s a "$1/link"
	chown -hR "$U:$GID_" "$1"
}

V=$W/vol
mkvol "$V"
state "$V" "$W/s0"

# --- chmod and grant on own files, journaled; default journal dir ------------------
asuser apply --chmod g+rwX --grant "u:1001:rwX" "$V"
expect_rc 0 "as $U: apply --chmod g+rwX --grant on own files"
assert_eq "$(mode_of "$V/d/e")" 0770 "chmod g+rwX applied (dir)"
assert_file_match 'user:1001:rw' <(getfacl -pn "$V/a" 2>/dev/null) "--grant applied (file ACL)"
JD=$H/.local/state/volperm
assert_true "journal in ~/.local/state/volperm" test -n "$(find "$JD" -name '*.vpj' 2>/dev/null)"
assert_file_match "journal: .*$JD/vp-" "$OUT" "the summary names the journal in ~/.local/state/volperm"
for d in "$H/.local" "$H/.local/state" "$JD"; do
	assert_eq "$(stat -c '%a %U' "$d")" "700 $U" "made like mkdir -p, 0700, owned by the user: $d"
done
asuser rollback "$V"
expect_rc 0 "as $U: rollback"
state "$V" "$W/s1"
assert_true "rollback restored modes and ACLs exactly" cmp -s "$W/s0" "$W/s1"

# --- the same without a journal ---------------------------------------------------
asuser apply --chmod g+rwX --grant "u:1001:rwX" --no-journal --quiet "$V"
expect_rc 0 "as $U: apply --no-journal"
cp -a "$W/vol" "$W/ref"
mkvol "$W/ref"
setpriv --reuid="$UID_" --regid="$GID_" --init-groups -- sh -c \
	"chmod -R g+rwX '$W/ref' && setfacl -R -m u:1001:rwX '$W/ref' && find '$W/ref' -type d -exec setfacl -m d:u:1001:rwX,d:u::rwx,d:g::rwx,d:o::r-x {} +" ||
	fail "reference chmod -R/setfacl -R as $U"
state "$V" "$W/s2"
state "$W/ref" "$W/s2ref"
# (the default ACL's exact entries are volperm's own rule: compare the access side)
assert_eq "$(grep -v '^default:' "$W/s2" | md5sum)" "$(grep -v '^default:' "$W/s2ref" | md5sum)" \
	"--no-journal: the same modes and access ACLs as chmod -R g+rwX and setfacl -R -m u:1001:rwX"
mkvol "$V"

# --- group change to one of the user's groups, XDG_STATE_HOME ------------------------
XDG=$W/xdg/state
mkdir -p "$W/xdg"
chown "$U" "$W/xdg"
asuser apply --owner ":$GID2" "$V"
expect_rc 0 "as $U: chgrp of own files to a supplementary group"
assert_eq "$(stat -c %g "$V/d/e/c")" "$GID2" "group changed"
assert_true "journal in \$XDG_STATE_HOME/volperm" test -n "$(find "$XDG/volperm" -name '*.vpj' 2>/dev/null)"
assert_eq "$(stat -c '%a' "$XDG" "$XDG/volperm" | tr '\n' ' ')" "700 700 " "XDG_STATE_HOME and volperm/ made 0700"
asuser rollback "$V"
expect_rc 0 "as $U: rollback of the group change"
state "$V" "$W/s3"
assert_true "group change rolled back exactly" cmp -s "$W/s0" "$W/s3"
XDG=

# --- what needs a capability: refused up front, naming the entry ------------------
chown 0:0 "$V/d/b"
state "$V" "$W/s4"
for pol in "--chmod g+rwX" "--grant u:1001:rwX" "--owner :$GID2"; do
	# shellcheck disable=SC2086
	asuser apply $pol "$V"
	expect_rc 2 "as $U: apply $pol with a root-owned entry: refused"
	one_line_err "$ERR" "as $U: apply $pol, root-owned entry"
	assert_file_match "'?$V/d/b'? " "$ERR" "apply $pol: the sentence names the entry"
	case $pol in
	--owner*) assert_file_match CAP_CHOWN "$ERR" "apply $pol: names CAP_CHOWN" ;;
	*) assert_file_match CAP_FOWNER "$ERR" "apply $pol: names CAP_FOWNER" ;;
	esac
	state "$V" "$W/s5"
	assert_true "apply $pol: nothing changed" cmp -s "$W/s4" "$W/s5"
done
asuser apply --owner 4242 --no-journal "$V"
expect_rc 2 "as $U: a new owner needs CAP_CHOWN even on own files"
assert_file_match CAP_CHOWN "$ERR" "--owner: names CAP_CHOWN"
asuser apply --owner ":0" "$V"
expect_rc 2 "as $U: a group the user is not in needs CAP_CHOWN"
n=$(find "$JD" -name '*.vpj' | wc -l)
asuser plan --chmod g+rwX "$V"
expect_rc 0 "as $U: plan (a dry run) with a root-owned entry: fine"
assert_eq "$(find "$JD" -name '*.vpj' | wc -l)" "$n" "refusals and plans wrote no journal"
chown "$U:$GID_" "$V/d/b"

# --- --userns user:NAME ---------------------------------------------------------
printf '# fixture\nsomeone:500000:65536\n%s:200000:65536\n' "$U" >"$W/subuid"
printf '%s:300000:65536\n' "$U" >"$W/subgid"
export VOLPERM_SUBUID_FILE=$W/subuid VOLPERM_SUBGID_FILE=$W/subgid
J=$(new_jdir)
V2=$W/vol2
mkvol "$V2"
vp plan --userns "user:$U" --owner 1001:1001 --list --journal-dir "$J" "$V2"
expect_rc 0 "plan --userns user:$U"
assert_file_match '^target: +owner 1001:1001 \(host 201000:301000\)$' "$OUT" "the plan shows both ids"
assert_file_match "^chown $UID_:$GID_->201000:301000 \\(container 0:0->1001:1001\\) " "$OUT" "--list carries both"
vp plan --userns "user:$U" --owner 1001:1001 --json --journal-dir "$J" "$V2"
assert_eq "$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["event"] == "change":
        print(e["new_uid"], e["new_container_uid"], e["container_uid"]); break' "$OUT")" "201000 1001 0" "--json carries both"
vp apply --userns "user:$U" --owner 1001:1001 --journal-dir "$J" "$V2"
expect_rc 0 "apply --userns user:$U --owner 1001:1001"
assert_eq "$(stat -c '%u:%g' "$V2/d/e/c")" "201000:301000" "on disk: subuid start + 1000"
vp rollback --journal-dir "$J" "$V2"
expect_rc 0 "rollback"
assert_eq "$(stat -c '%u:%g' "$V2/d/e/c")" "$UID_:$GID_" "rolled back"
state "$V2" "$W/u0"
for pol in "--owner 65537" "--owner 1001:65537" "--map 0:65537" "--fsgroup 70000" "--grant u:65537:rx" \
	"--revoke g:4294967294"; do
	# shellcheck disable=SC2086
	vp apply --userns "user:$U" $pol --journal-dir "$J" "$V2"
	expect_rc 2 "--userns user:$U $pol: outside the range, refused"
	one_line_err "$ERR" "--userns $pol"
	assert_file_match 'is outside the user namespace map' "$ERR" "--userns $pol: says why"
done
vp apply --userns "user:$U" --owner 4294967295 --journal-dir "$J" "$V2"
expect_rc 2 "--owner 4294967295 refused with --userns too"
vp apply --uid-map 0:1000:1 --uid-map 1:100000:65536 --owner 65536 --journal-dir "$J" "$V2"
expect_rc 0 "--uid-map: the last id of a range is in it"
assert_eq "$(stat -c '%u:%g' "$V2/a")" "165535:$GID_" "--uid-map 1:100000:65536: container 65536 is host 165535"
vp rollback --journal-dir "$J" "$V2"
state "$V2" "$W/u1"
assert_true "nothing changed by the refusals; rollback exact" cmp -s "$W/u0" "$W/u1"
vp plan --userns "user:nobody-here-$$" --owner 1 "$V2"
expect_rc 2 "--userns of an unknown user"
one_line_err "$ERR" "--userns unknown user"
vp plan --userns "user:$U" --uid-map 0:0:1 --owner 1 "$V2"
expect_rc 2 "--userns with --uid-map refused"
unset VOLPERM_SUBUID_FILE VOLPERM_SUBGID_FILE

# --- pid:PID and /proc/PID/ns/user ----------------------------------------------
NSEXEC=$REPO/tests/security/nsexec.py
if ! python3 "$NSEXEC" "0 100000 65536" "0 100000 65536" true 2>/dev/null; then
	say "SKIP: user namespaces are not available: the pid:PID part is not tested"
	finish
fi
python3 "$NSEXEC" "0 100000 65536" "0 100000 65536" sleep 60 &
NSPID=$!
on_exit "kill $NSPID; wait $NSPID"
for _ in $(seq 50); do
	CPID=$(pgrep -P "$NSPID" sleep || true)
	[ -z "$CPID" ] && [ "$(readlink /proc/$NSPID/ns/user)" != "$(readlink /proc/self/ns/user)" ] && CPID=$NSPID
	[ -n "$CPID" ] && [ "$(readlink /proc/$CPID/ns/user)" != "$(readlink /proc/self/ns/user)" ] && break
	CPID=
	sleep 0.1
done
[ -n "$CPID" ] || die "the namespaced sleep did not start"
# (nsexec.py forks: its child must be gone before userdel, which counts a
# process whose uid is in the user's subordinate range as the user's)
on_exit "kill $CPID; for _ in \$(seq 50); do kill -0 $CPID || break; sleep 0.1; done"
for spec in "pid:$CPID" "/proc/$CPID/ns/user"; do
	vp plan --userns "$spec" --owner 1001:1001 --journal-dir "$J" "$V2"
	expect_rc 0 "plan --userns $spec"
	assert_file_match '\(host 101001:101001\)' "$OUT" "--userns $spec: 1001 is host 101001 (map 0 100000 65536)"
	vp plan --userns "$spec" --owner 65536 --journal-dir "$J" "$V2"
	expect_rc 2 "--userns $spec: 65536 is outside 0..65535"
done
vp apply --userns "pid:$CPID" --owner 1001:1001 --journal-dir "$J" "$V2"
expect_rc 0 "apply --userns pid:PID"
assert_eq "$(stat -c '%u:%g' "$V2/d/b")" "101001:101001" "apply --userns pid: host ids on disk"
vp rollback --journal-dir "$J" "$V2"
expect_rc 0 "rollback after --userns pid:"
vp plan --userns "/proc/self/ns/mnt" --owner 1 "$V2"
expect_rc 2 "--userns of a file that is no user namespace"
one_line_err "$ERR" "--userns mnt namespace"

# The user's own `unshare --user --map-root-user`: container 0 is the user.
if setpriv --reuid="$UID_" --regid="$GID_" --init-groups -- unshare --user --map-root-user true 2>/dev/null; then
	setpriv --reuid="$UID_" --regid="$GID_" --init-groups -- unshare --user --map-root-user sleep 60 &
	UPID=$!
	on_exit "kill $UPID; wait $UPID"
	for _ in $(seq 50); do
		[ "$(readlink /proc/$UPID/ns/user 2>/dev/null)" != "$(readlink /proc/self/ns/user)" ] && break
		sleep 0.1
	done
	vp apply --userns "pid:$UPID" --owner 0:0 --journal-dir "$J" "$W/vol"
	expect_rc 0 "--userns pid: of the user's unshare --map-root-user: apply --owner 0:0"
	assert_eq "$(stat -c '%u:%g' "$W/vol/a")" "$UID_:$GID_" "container 0 is the user (already compliant)"
	vp plan --userns "pid:$UPID" --owner 1 --journal-dir "$J" "$W/vol"
	expect_rc 2 "--map-root-user maps only 0: --owner 1 refused"
else
	say "# unprivileged unshare --user is not allowed here: that part is not tested"
fi

finish
