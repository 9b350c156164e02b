#!/usr/bin/env bash
# --grant u:UID:PERMS,g:GID:PERMS and --revoke u:UID,g:GID: named ACL
# entries with setfacl -m / -x semantics, on real trees, with getfacl and
# setfacl as the oracles.
#
# The story (issue 5): a host bind mount. The developer (uid 1000) owns the
# source tree (dirs 0755, files 0644) and keeps owning it; the container
# runs as uid 1001 and must write to it; what the container creates must
# stay readable and writable by the developer. `chown -R 1001` would take
# the tree away from the developer; a grant does not touch ownership.
#
# Why the grant names both users: the default ACL is what new files
# inherit. With only u:1001 in it, a file the container creates is owned
# by 1001:1001 and inherits user:1001 but nothing for 1000, who falls into
# "other" (r-- at best) and cannot modify it. With u:1000 in the default ACL
# too, every new file carries user:1000:rw- (the umask does not apply when a
# default ACL exists), so the developer can edit what the container wrote.
# Section 3 shows both sides with real processes.
. "$(dirname "$0")/../cli/lib.sh"
setup
need_cmd setfacl getfacl setpriv cp

J=$(new_jdir)
HOST=1000
CTR=1001

# facl DIR FILE: getfacl's recursive dump, numeric, physical, relative paths.
facl() { (cd "$1" && getfacl -R -P -n . 2>/dev/null) >"$2"; }
# facl_eq A B DESC
facl_eq() {
	if cmp -s "$1" "$2"; then
		pass "$3"
	else
		fail "$3: getfacl dumps differ (< volperm, > setfacl):"
		diff "$1" "$2" | head -n 30 | cat -v | sed 's/^/    /'
	fi
}
# as UID CMD...: run a shell snippet as UID:UID with no supplementary groups.
as() {
	local u=$1
	shift
	setpriv --reuid "$u" --regid "$u" --clear-groups -- sh -c "$*"
}

# The developer's source tree: 1000:1000, dirs 0755, files 0644, one
# executable script 0755, a symlink.
mksrc() {
	mkdir -p "$1/src/lib/deep" "$1/docs" "$1/build"
	printf 'int main(void) { return 0; }\n' >"$1/src/main.c"
	printf 'void f(void);\n' >"$1/src/lib/f.h"
	printf 'deep\n' >"$1/src/lib/deep/data.txt"
	printf '# readme\n' >"$1/docs/README.md"
	printf '#!/bin/sh\necho built\n' >"$1/build.sh"
	ln -s src/main.c "$1/main-link"
	chown -hR $HOST:$HOST "$1"
	find "$1" -type d -exec chmod 0755 {} +
	find "$1" -type f -exec chmod 0644 {} +
	chmod 0755 "$1/build.sh"
}

# ---------------------------------------------------------------------------
# 1. the grant, compared with setfacl -R on a copy
# ---------------------------------------------------------------------------
V=$W/vol
mksrc "$V"
cp -a "$V" "$W/copy"
snap "$V" "$W/v0.snap"
facl "$V" "$W/v0.facl"

# Before any grant the container user cannot write.
if as $CTR "touch '$V/src/denied'" 2>/dev/null; then
	fail "setup: uid $CTR could write before the grant"
else
	pass "before the grant, uid $CTR cannot create files"
fi

vp_expect 0 "plan --grant" plan --grant u:$CTR:rwX,u:$HOST:rwX --list "$V"
assert_file_match "acl default-acl .*/src/lib$" "$OUT" "plan --list marks ACL and default-ACL changes"
assert_file_match "^change mode 0644->0664 acl $V/src/main.c$" "$OUT" "plan --list: 'change mode 0644->0664 acl PATH' for a file"
# An ACL-only change (the mode's group bits already equal the new mask):
# one space between words, like every other --list line.
mkdir -p "$W/acl-only"
printf 'a\n' >"$W/acl-only/f"
chmod 0664 "$W/acl-only/f"
vp_expect 0 "plan --grant u:$CTR:rw --list (ACL-only change)" plan --grant u:$CTR:rw --list "$W/acl-only/f"
assert_file_match "^change acl $W/acl-only/f$" "$OUT" "--list: 'change acl PATH' (single-spaced)"
snap "$V" "$W/v-plan.snap"
snap_eq "$W/v0.snap" "$W/v-plan.snap" "plan changed nothing"
vp_expect 1 "check before the grant" check --grant u:$CTR:rwX,u:$HOST:rwX "$V"
vp_expect 0 "apply --grant u:$CTR:rwX,u:$HOST:rwX" apply --grant u:$CTR:rwX,u:$HOST:rwX --journal-dir "$J" --json "$V"
json_ok "$OUT" "apply --json is valid NDJSON"
assert_eq "$(jcount "$OUT" change acl=True)" "$(entries "$V" ! -type l)" "every file and dir changes its ACL (acl true), the symlink does not"
assert_eq "$(jsum "$OUT" owner)" 0 "no owner change"
assert_eq "$(jsum "$OUT" group)" 0 "no group change"
assert_eq "$(find "$V" ! -user $HOST -o ! -group $HOST | wc -l)" 0 "ownership untouched: everything still $HOST:$HOST"
vp_expect 0 "check after the grant: compliant" check --grant u:$CTR:rwX,u:$HOST:rwX "$V"
n=$(count_journals "$J")
vp_expect 0 "second apply" apply --grant u:$CTR:rwX,u:$HOST:rwX --journal-dir "$J" "$V"
assert_eq "$(count_journals "$J")" "$n" "second apply: nothing to do, no journal"

(cd "$W/copy" && setfacl -R -P -m u:$CTR:rwX -m d:u:$CTR:rwX -m u:$HOST:rwX -m d:u:$HOST:rwX .) ||
	die "setfacl on the copy failed"
facl "$V" "$W/v1.facl"
facl "$W/copy" "$W/c1.facl"
facl_eq "$W/v1.facl" "$W/c1.facl" "getfacl -R: volperm --grant == setfacl -R -m u:$CTR:rwX -m d:u:$CTR:rwX -m u:$HOST:rwX -m d:u:$HOST:rwX"
snap "$V" "$W/v1.snap"
snap "$W/copy" "$W/c1.snap"
snap_eq "$W/v1.snap" "$W/c1.snap" "raw xattrs and modes identical to setfacl's"
assert_file_match "^default:user:$HOST:rwx" "$W/v1.facl" "dirs have default:user:$HOST:rwx"
assert_file_match "^default:mask::rwx" "$W/v1.facl" "dirs have a default mask"
assert_eq "$(getfacl -n -P "$V/src/main.c" 2>/dev/null | grep -c '^user:1001:rw-$')" 1 "0644 file: user:1001:rw- (X gives no x)"
assert_eq "$(getfacl -n -P "$V/build.sh" 2>/dev/null | grep -c '^user:1001:rwx$')" 1 "0755 script: user:1001:rwx (X gives x)"
assert_eq "$(stat -c %a "$V/main-link")" 777 "the symlink itself is unchanged"

# ---------------------------------------------------------------------------
# 2. real processes: the container writes, the developer edits
# ---------------------------------------------------------------------------
ok_as() { # ok_as UID DESC SNIPPET
	local u=$1 d=$2 out
	shift 2
	if out=$(as "$u" "$*" 2>&1); then
		pass "uid $u: $d"
	else
		fail "uid $u: $d: $out"
	fi
}
ok_as $CTR "creates a file (umask 022)" "umask 022; echo from-container >'$V/src/new.txt'"
ok_as $CTR "creates a file with umask 077" "umask 077; echo private-umask >'$V/src/umask77.txt'"
ok_as $CTR "creates a dir and files in it" "umask 022; mkdir '$V/out' && echo obj >'$V/out/a.o' && mkdir -p '$V/out/x/y' && echo z >'$V/out/x/y/z.bin'"
ok_as $CTR "modifies an existing file" "echo '// patched' >>'$V/src/main.c'"
ok_as $CTR "writes in an existing deep dir" "echo gen >'$V/src/lib/deep/gen.txt'"
ok_as $CTR "renames and deletes the developer's files" "mv '$V/docs/README.md' '$V/docs/README.old' && rm '$V/docs/README.old'"
ok_as $CTR "runs the script (X gave x)" "'$V/build.sh' >/dev/null"
assert_eq "$(stat -c %u:%g "$V/src/new.txt")" "$CTR:$CTR" "new file is owned by the container user"
assert_eq "$(getfacl -n -P "$V/src/umask77.txt" 2>/dev/null | grep -c "^user:$HOST:rw")" 1 "file created with umask 077 still has user:$HOST:rw (inherited; umask not applied)"
assert_eq "$(getfacl -n -P "$V/out/x/y" 2>/dev/null | grep -c "^default:user:$HOST:rwx")" 1 "dirs the container creates inherit the default ACL"

ok_as $HOST "reads what the container wrote" "cat '$V/src/new.txt' '$V/src/umask77.txt' '$V/out/x/y/z.bin' >/dev/null"
ok_as $HOST "modifies what the container wrote" "echo host-edit >>'$V/src/new.txt' && echo host-edit >>'$V/src/umask77.txt' && echo e >>'$V/out/a.o'"
ok_as $HOST "creates files in dirs the container made" "echo h >'$V/out/x/y/host.txt' && mkdir '$V/out/x/hostdir'"
ok_as $HOST "deletes what the container made" "rm '$V/out/x/y/z.bin' && rm -r '$V/out/x/hostdir'"
ok_as $HOST "still owns and can chmod its own file" "chmod 0640 '$V/src/lib/f.h' && chmod 0644 '$V/src/lib/f.h'"
assert_eq "$(tail -n 1 "$V/src/new.txt")" host-edit "the developer's edit landed"

# ---------------------------------------------------------------------------
# 3. why u:$HOST is in the grant: without it the developer cannot edit
# ---------------------------------------------------------------------------
V2=$W/only-ctr
mksrc "$V2"
vp_expect 0 "apply --grant u:$CTR:rwX only" apply --grant u:$CTR:rwX --journal-dir "$J" "$V2"
ok_as $CTR "creates a file (grant u:$CTR only)" "umask 022; echo c >'$V2/src/c.txt'"
ok_as $HOST "can read it (other r--)" "cat '$V2/src/c.txt' >/dev/null"
if as $HOST "echo h >>'$V2/src/c.txt'" 2>/dev/null; then
	fail "grant u:$CTR only: uid $HOST could modify the container's file (expected EACCES)"
else
	pass "grant u:$CTR only: uid $HOST cannot modify the container's file (so the story grants both)"
fi

# ---------------------------------------------------------------------------
# 4. --revoke, compared with setfacl -x on a copy; rollback of the revoke
# ---------------------------------------------------------------------------
rm -rf "$W/copy2"
cp -a "$V" "$W/copy2"
snap "$V" "$W/v2.snap"
vp_expect 0 "apply --revoke u:$CTR" apply --revoke u:$CTR --journal-dir "$J" "$V"
(cd "$W/copy2" && setfacl -R -P -x u:$CTR -x d:u:$CTR .) || die "setfacl -x on the copy failed"
facl "$V" "$W/v3.facl"
facl "$W/copy2" "$W/c3.facl"
facl_eq "$W/v3.facl" "$W/c3.facl" "getfacl -R: volperm --revoke u:$CTR == setfacl -R -x u:$CTR -x d:u:$CTR"
snap "$V" "$W/v3.snap"
snap "$W/copy2" "$W/c3.snap"
snap_eq "$W/v3.snap" "$W/c3.snap" "revoke: raw xattrs and modes identical to setfacl's"
assert_file_nomatch "user:$CTR:" "$W/v3.facl" "no user:$CTR entry left anywhere"
if as $CTR "touch '$V/src/after-revoke'" 2>/dev/null; then
	fail "after the revoke uid $CTR can still create files in src/"
else
	pass "after the revoke uid $CTR cannot create files in src/"
fi
vp_expect 0 "revoke again: nothing to do" check --revoke u:$CTR "$V"
vp_expect 0 "rollback the revoke" rollback --journal-dir "$J" "$V"
snap "$V" "$W/v4.snap"
snap_eq "$W/v2.snap" "$W/v4.snap" "rollback of --revoke restored every ACL exactly"

# ---------------------------------------------------------------------------
# 5. rollback of a grant is exact (ACLs, default ACLs, modes: snapshot.py
#    reads the raw xattrs); and on a tree with ACLs, setid bits and caps
# ---------------------------------------------------------------------------
V3=$W/fresh
mksrc "$V3"
snap "$V3" "$W/f0.snap"
facl "$V3" "$W/f0.facl"
vp_expect 0 "fresh: apply --grant" apply --grant u:$CTR:rwX,u:$HOST:rwX --journal-dir "$J" "$V3"
vp_expect 0 "fresh: rollback" rollback --journal-dir "$J" "$V3"
snap "$V3" "$W/f1.snap"
snap_eq "$W/f0.snap" "$W/f1.snap" "rollback of --grant: no ACL xattr left, modes exact"
facl "$V3" "$W/f1.facl"
facl_eq "$W/f1.facl" "$W/f0.facl" "rollback of --grant: getfacl dump as before"

T=$W/mk
mktree "$T" 1200 --seed 11 --acl-every 4 --default-acl-every 3 --setid 5 --caps 3 --hostile --hardlink-every 40 --symlink-every 25
cp -a "$T" "$W/mkcopy"
snap "$T" "$W/m0.snap"
vp_expect 0 "mktree: apply --grant u:$CTR:rwX,g:2001:rX,u:2000:r" apply --grant u:$CTR:rwX,g:2001:rX,u:2000:r --journal-dir "$J" "$T"
(cd "$W/mkcopy" && setfacl -R -P -m u:$CTR:rwX,g:2001:rX,u:2000:r -m d:u:$CTR:rwX,d:g:2001:rX,d:u:2000:r .) ||
	die "setfacl on the mktree copy failed"
facl "$T" "$W/m1.facl"
facl "$W/mkcopy" "$W/mc1.facl"
facl_eq "$W/m1.facl" "$W/mc1.facl" "mktree (existing ACLs, u:2000 replaced): getfacl -R identical to setfacl's"
snap "$T" "$W/m1.snap"
snap "$W/mkcopy" "$W/mc1.snap"
snap_eq "$W/m1.snap" "$W/mc1.snap" "mktree: raw xattrs, modes, caps identical to setfacl's"
vp_expect 0 "mktree: apply --revoke u:2000,g:3000" apply --revoke u:2000,g:3000 --journal-dir "$J" "$T"
(cd "$W/mkcopy" && setfacl -R -P -x u:2000,g:3000 -x d:u:2000,d:g:3000 .) || die "setfacl -x on the mktree copy failed"
facl "$T" "$W/m2.facl"
facl "$W/mkcopy" "$W/mc2.facl"
facl_eq "$W/m2.facl" "$W/mc2.facl" "mktree: --revoke u:2000,g:3000 identical to setfacl -x"
vp_expect 0 "mktree: rollback the revoke" rollback --journal-dir "$J" "$T"
vp_expect 0 "mktree: rollback the grant" rollback --journal-dir "$J" "$T"
snap "$T" "$W/m3.snap"
snap_eq "$W/m0.snap" "$W/m3.snap" "mktree: two rollbacks restored ACLs, default ACLs, setid bits and caps exactly"

# ---------------------------------------------------------------------------
# 6. setfacl's X in the corners: X means "a directory, or execute
#    permission for some user" and setfacl judges it on the ACL as edited
#    so far (acl 2.3.1). volperm must give what setfacl gives.
# ---------------------------------------------------------------------------
X=$W/xcorner
mkdir -p "$X"
printf 'a\n' >"$X/masked-x"      # user:2000 has x, hidden by the mask
chmod 0644 "$X/masked-x"
setfacl -m u:2000:rwx "$X/masked-x"
chmod g=r "$X/masked-x"
printf 'b\n' >"$X/plain"         # 0644, no ACL
chmod 0644 "$X/plain"
cp -a "$X" "$W/xcopy"
vp_expect 0 "X corners: apply --grant u:2001:rwx,u:$CTR:rwX" apply --grant u:2001:rwx,u:$CTR:rwX --journal-dir "$J" "$X"
(cd "$W/xcopy" && setfacl -R -P -m u:2001:rwx,u:$CTR:rwX,d:u:2001:rwx,d:u:$CTR:rwX .) || die "setfacl on the X copy failed"
facl "$X" "$W/x1.facl"
facl "$W/xcopy" "$W/xc1.facl"
facl_eq "$W/x1.facl" "$W/xc1.facl" "X after an x entry, and X on a file whose ACL has x behind the mask: as setfacl"

# ---------------------------------------------------------------------------
# 7. bad grants: exit 2, nothing changes
# ---------------------------------------------------------------------------
bad_case() { # bad_case OPTION VALUE: exit 2 and the tree untouched (ctime included)
	snap "$V3" "$W/b0.snap" --ctime
	vp_expect 2 "$1 '$2' refused" apply "$1" "$2" --journal-dir "$J" "$V3"
	snap "$V3" "$W/b1.snap" --ctime
	snap_eq "$W/b0.snap" "$W/b1.snap" "$1 '$2': nothing changed"
	if [ "$RC" = 0 ]; then
		"$VP" rollback --journal-dir "$J" "$V3" >/dev/null 2>&1 || die "could not undo the wrongly accepted $1 '$2'"
	fi
}
for g in u:1001 u:1001:rwq x:1001:rw u::rw u:-1:rw u:4294967295:rw u:1001:rw,,g:5:r "," ,u:1001:rw u:nosuch-volperm-user:rw; do
	bad_case --grant "$g"
done
vp_expect 2 "--grant junk: message" apply --grant u:1001:rwq --journal-dir "$J" "$V3"
assert_file_match "invalid --grant 'u:1001:rwq'" "$ERR" "the message names --grant and the value"
for r in u:1001:rw u: "," g:x; do
	bad_case --revoke "$r"
done

finish
