#!/usr/bin/env bash
# tests/e2e/rootless.sh: volperm and rootless containers (issue 13), with a
# real rootless Podman and, where it starts, a real rootless Docker. As root
# it creates a user vprootless (home under a temporary directory, a
# subordinate id range in /etc/subuid and /etc/subgid) and runs the engines
# as that user: setpriv (no capability), XDG_RUNTIME_DIR a 0700 directory of
# the user's, Podman with the user's own containers.conf/storage.conf (vfs,
# runc, cgroupfs, events to a file, the rlimits podman.sh needs here), no
# network (--network none), images from a static busybox (no registry).
#
#   podman_userns_user  host: volperm apply --userns user:vprootless
#                       --owner 1001:1001 DIR makes DIR writable to
#                       --user 1001:1001 in the rootless container, the
#                       files are subuid start + 1000 on disk; the negative
#                       control (no --userns) is denied; rollback restores
#                       exactly and the write is denied again
#   podman_unshare      as the user: podman unshare volperm apply --owner
#                       1001:1001 ~/data (journal in ~/.local/state/volperm),
#                       the write works, podman unshare volperm rollback
#   podman_userns_pid   host: --userns pid:PID (and /proc/PID/ns/user) of a
#                       running rootless container, podman exec writes
#   podman_keep_id      --userns=keep-id: container uid = the user's uid;
#                       --userns pid:PID reads that layout (user:NAME
#                       assumes the default one and is off by one below it)
#   out_of_range        an id outside the user's range: exit 2, one
#                       sentence, nothing changed, no journal
#   docker_userns_user  rootless Docker (dockerd-rootless.sh, rootlesskit
#                       --net=host: the containers use --network none, and
#                       slirp4netns would need /dev/net/tun): the same as
#                       podman_userns_user on a bind mount and on a named
#                       volume with :nocopy (and, without it, the copy-up
#                       that gives the volume's root back to container root)
#
# The user, its subordinate ranges and every process it ran are removed on
# exit (the engines' processes by their PIDs). Needs root and the Debian
# packages podman, runc, uidmap, busybox-static, acl, python3, and for the
# Docker part docker.io and rootlesskit (tests/e2e/run.sh installs them).
# An engine that cannot run a container is reported SKIPPED, loudly, with
# its exact error. Last line: `N passed, N failed, N skipped`.
#
# VOLPERM_STATIC_BIN      the static binary (default build-static/volperm)
# VOLPERM_E2E_SCENARIOS   only these scenarios
# VOLPERM_E2E_KEEP=1      keep the temporary directory (the user is removed)
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RUNTIME=rootless

ALL=(podman_userns_user podman_unshare podman_userns_pid podman_keep_id out_of_range docker_userns_user)
PODMAN_SC=(podman_userns_user podman_unshare podman_userns_pid podman_keep_id out_of_range)
DOCKER_SC=(docker_userns_user)
if [ -n "${VOLPERM_E2E_SCENARIOS:-}" ]; then
	read -r -a want <<<"$VOLPERM_E2E_SCENARIOS"
	sel() { # sel NAMES...: those of NAMES that VOLPERM_E2E_SCENARIOS names
		local s w out=()
		for s in "$@"; do
			for w in "${want[@]}"; do
				[ "$s" = "$w" ] && out+=("$s")
			done
		done
		echo "${out[*]}"
	}
	read -r -a PODMAN_SC <<<"$(sel "${PODMAN_SC[@]}")"
	read -r -a DOCKER_SC <<<"$(sel "${DOCKER_SC[@]}")"
fi

if [ "$(id -u)" != 0 ]; then
	skip_all "needs root (it creates a user and its subordinate ids)" build "${ALL[@]}"
	e2e_summary
	exit
fi
for c in newuidmap newgidmap useradd usermod userdel setpriv python3; do
	command -v "$c" >/dev/null 2>&1 && continue
	skip_all "$c is missing (apt-get install uidmap passwd util-linux python3)" build "${ALL[@]}"
	e2e_summary
	exit
done
PODMAN=$(command -v podman) || {
	skip_all "podman is not installed (apt-get install podman runc)" build "${ALL[@]}"
	e2e_summary
	exit
}
[ -x "$VOLPERM_STATIC_BIN" ] || {
	echo "rootless.sh: no static binary at $VOLPERM_STATIC_BIN"
	FAILED=$((FAILED + 1))
	e2e_summary
	exit
}
VP=$VOLPERM_STATIC_BIN

U=vprootless
# A fixed uid far from the ids the scenarios use as owners (1001 on the host
# is the negative control's owner).
UIDN=6660
APP=localhost/vp-rootless-app:latest
WORK=$(mktemp -d /tmp/vpe2e-rootless.XXXXXX)
chmod 0755 "$WORK"
UHOME=$WORK/home
URUN=$WORK/run
JD=$WORK/journal
DOCKERD_LAUNCH_PID=
SUBUID_EXISTED=0 SUBGID_EXISTED=0
[ -e /etc/subuid ] && SUBUID_EXISTED=1
[ -e /etc/subgid ] && SUBGID_EXISTED=1
SUBUID_BACKUP_EXISTED=0 SUBGID_BACKUP_EXISTED=0
[ -e /etc/subuid- ] && SUBUID_BACKUP_EXISTED=1
[ -e /etc/subgid- ] && SUBGID_BACKUP_EXISTED=1

# asu CMD...: CMD as the user, without any capability, in its home, with a
# clean environment (what a login would give, plus XDG_RUNTIME_DIR).
asu() {
	(cd "$UHOME" && exec setpriv --reuid="$UIDN" --regid="$GIDN" --init-groups -- \
		env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$UHOME" USER="$U" \
		LOGNAME="$U" XDG_RUNTIME_DIR="$URUN" "$@")
}
upodman() { asu podman "$@"; }
DOCKER_CLI=/usr/bin/docker # the client of the docker.io package, which matches its daemon
udocker() { asu env DOCKER_HOST="unix://$URUN/docker.sock" "$DOCKER_CLI" "$@"; }

remove_user() {
	if id "$U" >/dev/null 2>&1; then
		# -f: a zombie of the user's (a podman pause process whose parent
		# is gone) must not keep the account.
		userdel -f "$U" >/dev/null 2>&1 || echo "rootless.sh: userdel $U failed"
	fi
	getent group "$U" >/dev/null 2>&1 && groupdel "$U" >/dev/null 2>&1
	# userdel removes the subordinate ranges; make sure, and leave the
	# files as they were when they did not exist before.
	local f
	for f in /etc/subuid /etc/subgid; do
		[ -f "$f" ] && sed -i "/^$U:/d;/^$UIDN:/d" "$f"
	done
	[ "$SUBUID_EXISTED" = 0 ] && [ ! -s /etc/subuid ] && rm -f /etc/subuid
	[ "$SUBGID_EXISTED" = 0 ] && [ ! -s /etc/subgid ] && rm -f /etc/subgid
	# usermod's and userdel's backups, unless there were some before.
	[ "$SUBUID_BACKUP_EXISTED" = 0 ] && rm -f /etc/subuid-
	[ "$SUBGID_BACKUP_EXISTED" = 0 ] && rm -f /etc/subgid-
}

stop_docker() {
	[ -n "$DOCKERD_LAUNCH_PID" ] || return 0
	local dpid
	dpid=$(cat "$URUN/docker.pid" 2>/dev/null || true)
	# dockerd (inside rootlesskit's namespaces, but in the host's PID
	# namespace) stops its containerd; rootlesskit then exits.
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null
	for _ in $(seq 1 40); do
		kill -0 "$DOCKERD_LAUNCH_PID" 2>/dev/null || break
		sleep 0.25
	done
	kill -0 "$DOCKERD_LAUNCH_PID" 2>/dev/null && kill -TERM "$DOCKERD_LAUNCH_PID" 2>/dev/null
	wait "$DOCKERD_LAUNCH_PID" 2>/dev/null
	DOCKERD_LAUNCH_PID=
}

cleanup() {
	stop_docker
	if id "$U" >/dev/null 2>&1 && [ -d "$URUN" ]; then
		upodman rm -a -f -t 0 >/dev/null 2>&1
		# The pause process that holds the user's namespace, by its PID.
		local p
		p=$(cat "$URUN/libpod/tmp/pause.pid" 2>/dev/null || true)
		[ -n "$p" ] && kill -TERM "$p" 2>/dev/null
	fi
	remove_user
	remove_work rootless.sh
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the user ---------------------------------------------------------------------------

# A stale user from a killed run: ours by name, start afresh (the
# assignments hold for this call only: keep the files here).
if id "$U" >/dev/null 2>&1; then
	echo "rootless.sh: removing $U, left by an earlier run"
	SUBUID_EXISTED=1 SUBGID_EXISTED=1 remove_user
fi
if getent passwd "$UIDN" >/dev/null || getent group "$UIDN" >/dev/null; then
	echo "rootless.sh: uid/gid $UIDN is taken; this test needs it free"
	FAILED=$((FAILED + 1))
	e2e_summary
	exit
fi
# No automatic range (login.defs' SUB_UID_COUNT): the test gives one itself,
# 65536 ids above every range already given, with usermod, which needs the
# files to exist.
useradd -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 -m -d "$UHOME" -u "$UIDN" -U -s /bin/sh "$U" || {
	echo "rootless.sh: useradd $U failed"
	FAILED=$((FAILED + 1))
	e2e_summary
	exit
}
GIDN=$(id -g "$U")
range_of() { awk -F: -v u="$U" -v n="$UIDN" '($1 == u || $1 == n) { print $2; exit }' "$1" 2>/dev/null; }
next_free() { awk -F: 'BEGIN { m = 100000 } NF >= 3 && $2 + $3 > m { m = $2 + $3 } END { print m }' "$1"; }
for f in /etc/subuid /etc/subgid; do
	[ -e "$f" ] || install -m 0644 /dev/null "$f"
done
if [ -z "$(range_of /etc/subuid)" ]; then
	s=$(next_free /etc/subuid)
	usermod --add-subuids "$s-$((s + 65535))" "$U" || echo "rootless.sh: usermod --add-subuids failed"
fi
if [ -z "$(range_of /etc/subgid)" ]; then
	s=$(next_free /etc/subgid)
	usermod --add-subgids "$s-$((s + 65535))" "$U" || echo "rootless.sh: usermod --add-subgids failed"
fi
SUBUID=$(range_of /etc/subuid)
SUBGID=$(range_of /etc/subgid)
if [ -z "$SUBUID" ] || [ -z "$SUBGID" ]; then
	skip_all "no subordinate id range for $U in /etc/subuid and /etc/subgid" build "${ALL[@]}"
	e2e_summary
	exit
fi
# Container id 1001 on disk: the range starts at container id 1.
H1001=$((SUBUID + 1000))
G1001=$((SUBGID + 1000))
chmod 0700 "$UHOME"
mkdir -p "$URUN" "$UHOME/.config/containers" "$WORK/bin" "$WORK/vol" "$JD"
chmod 0700 "$URUN" "$JD"
chmod 0755 "$WORK/bin" "$WORK/vol"
cat >"$UHOME/.config/containers/containers.conf" <<CONF
# As podman.sh: crun fails on this hybrid cgroup layout and the default
# rlimits are refused, so runc and rlimits of 1024.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cat >"$UHOME/.config/containers/storage.conf" <<CONF
[storage]
driver = "vfs"
CONF
chown -R "$UIDN:$GIDN" "$URUN" "$UHOME/.config"
# The static binary where the user can run it.
cp "$VP" "$WORK/bin/volperm"
chmod 0755 "$WORK/bin/volperm"
UVP=$WORK/bin/volperm

echo "rootless.sh: user $U ($UIDN:$GIDN), subuid $SUBUID, subgid $SUBGID: container 1001:1001 is $H1001:$G1001 on the host"
echo "rootless.sh: $("$PODMAN" --version), newuidmap $(stat -c '%A %U' "$(command -v newuidmap)"), $(uname -r), cgroup fs $(stat -fc %T /sys/fs/cgroup)"

# ---- helpers --------------------------------------------------------------------------

# mkvol DIR: a small tree of the user's (as a rootless engine leaves a bind
# mounted directory it created), modes that keep others out of writing.
mkvol() {
	rm -rf "$1"
	mkdir -p "$1/sub/deeper"
	echo top >"$1/top"
	echo f >"$1/sub/f"
	echo g >"$1/sub/deeper/g"
	chmod 0755 "$1" "$1/sub" "$1/sub/deeper"
	chmod 0644 "$1/top" "$1/sub/f" "$1/sub/deeper/g"
	chown -R "$UIDN:$GIDN" "$1"
}

snap() { python3 "$REPO/tests/tools/snapshot.py" -o "$2" "$1" || fail "snapshot of $1 failed"; }
same() { # same BEFORE AFTER WHAT
	local d
	d=$(python3 "$REPO/tests/tools/snapshot.py" --diff "$1" "$2") || {
		OUT=$d
		show_out
		fail "$3: the tree differs from before (above)"
	}
	echo "    $3: owners, modes and ACLs exactly as before"
}

# app_denied ENGINE DIR [VOLOPT]: the app, --user 1001:1001, cannot create
# a file in DIR (a bind mount, or a named volume with VOLOPT).
app_denied() {
	expect fail "$1" run --rm --network none --user 1001:1001 -v "$2:/data${3:-}" "$APP" touch /data/x
	has "Permission denied"
	echo "    ${1#u} --user 1001:1001: $(grep -m1 'Permission denied' <<<"$OUT")"
}
# app_writes ENGINE DIR HOSTDIR [VOLOPT]: it can (a new file, and in a tree
# made by mkvol an existing file and a deep directory), the file it made is
# subuid start + 1000 on the host; the file is removed again (as root) so
# that a rollback can restore the tree exactly.
app_writes() {
	expect 0 "$1" run --rm --network none --user 1001:1001 -v "$2:/data${4:-}" "$APP" sh -c \
		'touch /data/x && stat -c "in the container: %u:%g" /data/x &&
		 if [ -e /data/top ]; then echo more >>/data/top && touch /data/sub/deeper/new; fi'
	has "in the container: 1001:1001"
	[ "$(stat -c %u:%g "$3/x")" = "$H1001:$G1001" ] ||
		fail "the app's file should be $H1001:$G1001 on the host, is $(stat -c %u:%g "$3/x")"
	echo "    ${1#u} --user 1001:1001 wrote; on the host: $(stat -c '%n %u:%g' "$3/x")"
	rm -f "$3/x" "$3/sub/deeper/new"
}

# ---- images --------------------------------------------------------------------------

# The app: a static busybox, `app` 1001:1001, /data root 0755 in the image.
make_rootfs() {
	local r=$WORK/app/rootfs busybox
	busybox=$(command -v busybox) || { echo "busybox (busybox-static) is missing" >&2; return 1; }
	if ldd "$busybox" >/dev/null 2>&1; then
		echo "$busybox is not static: install busybox-static" >&2
		return 1
	fi
	mkdir -p "$r/bin" "$r/etc" "$r/data" "$r/tmp"
	cp "$busybox" "$r/bin/busybox"
	for a in sh id touch ls stat cat echo sleep rm true; do
		ln -s busybox "$r/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1001:1001:app:/:/bin/sh\n' >"$r/etc/passwd"
	printf 'root:x:0:\napp:x:1001:\n' >"$r/etc/group"
	chmod 0755 "$r/data"
	chmod 1777 "$r/tmp"
	printf 'FROM scratch\nCOPY rootfs/ /\nUSER 1001:1001\nCMD ["sh"]\n' >"$WORK/app/Containerfile"
	chmod -R a+rX "$WORK/app"
}

sc_build() {
	make_rootfs || exit 1
	expect 0 upodman build -q -t "$APP" -f "$WORK/app/Containerfile" "$WORK/app"
	expect 0 upodman run --rm --network none "$APP" sh -c 'echo "as $(id -u):$(id -g)"'
	has "as 1001:1001"
}

# ---- podman scenarios --------------------------------------------------------------------

sc_podman_userns_user() {
	local d=$WORK/vol/data c=$WORK/vol/copy
	mkvol "$d"
	cp -a "$d" "$c"
	snap "$d" "$WORK/data.before"
	snap "$c" "$WORK/copy.before"
	app_denied upodman "$d"
	expect 0 "$VP" apply --userns "user:$U" --owner 1001:1001 --journal-dir "$JD" "$d"
	has "owner 1001:1001 (host $H1001:$G1001)"
	owners "$d" "$H1001:$G1001"
	app_writes upodman "$d" "$d"
	# The negative control: the same ids without --userns are host ids,
	# nobody in the container.
	expect 0 "$VP" apply --owner 1001:1001 --journal-dir "$JD" "$c"
	owners "$c" 1001:1001
	app_denied upodman "$c"
	expect 0 "$VP" rollback --journal-dir "$JD" "$c"
	snap "$c" "$WORK/copy.after"
	same "$WORK/copy.before" "$WORK/copy.after" "rollback of the negative control"
	expect 0 "$VP" rollback --journal-dir "$JD" "$d"
	snap "$d" "$WORK/data.after"
	same "$WORK/data.before" "$WORK/data.after" "rollback"
	app_denied upodman "$d"
}

sc_podman_unshare() {
	local d=$UHOME/data j=$UHOME/.local/state/volperm
	mkvol "$d"
	snap "$d" "$WORK/unshare.before"
	app_denied upodman "$d"
	expect 0 upodman unshare "$UVP" apply --owner 1001:1001 "$d"
	has "journal:   $j/vp-"
	owners "$d" "$H1001:$G1001"
	[ "$(stat -c '%a %u' "$UHOME/.local/state" "$j" | tr '\n' ' ')" = "700 $UIDN 700 $UIDN " ] ||
		fail "the journal directory should be made 0700 and the user's: $(stat -c '%n %a %u' "$UHOME/.local/state" "$j")"
	[ "$(find "$j" -name '*.vpj' | wc -l)" = 1 ] || fail "expected one journal in $j"
	app_writes upodman "$d" "$d"
	expect 0 upodman unshare "$UVP" rollback "$d"
	snap "$d" "$WORK/unshare.after"
	same "$WORK/unshare.before" "$WORK/unshare.after" "podman unshare volperm rollback"
	expect 0 upodman unshare "$UVP" journal list
	has "rolled-back"
	app_denied upodman "$d"
}

sc_podman_userns_pid() {
	local d=$WORK/vol/pid pid
	mkvol "$d"
	snap "$d" "$WORK/pid.before"
	upodman rm -f -t 0 vp-sleeper >/dev/null 2>&1
	expect 0 upodman run -d --name vp-sleeper --network none -v "$d:/data" "$APP" sleep 60
	pid=$(upodman inspect -f '{{.State.Pid}}' vp-sleeper) || fail "podman inspect failed"
	[ "${pid:-0}" -gt 0 ] 2>/dev/null || fail "no PID for the running container: '$pid'"
	echo "    container vp-sleeper: pid $pid, uid_map: $(tr -s ' ' <"/proc/$pid/uid_map" | tr '\n' ';')"
	expect 0 "$VP" plan --userns "/proc/$pid/ns/user" --owner 1001:1001 "$d"
	has "owner 1001:1001 (host $H1001:$G1001)"
	expect fail upodman exec vp-sleeper touch /data/x
	has "Permission denied"
	expect 0 "$VP" apply --userns "pid:$pid" --owner 1001:1001 --journal-dir "$JD" "$d"
	has "owner 1001:1001 (host $H1001:$G1001)"
	owners "$d" "$H1001:$G1001"
	expect 0 upodman exec vp-sleeper sh -c 'touch /data/x && stat -c "in the container: %u:%g" /data/x && id -u'
	has "in the container: 1001:1001"
	[ "$(stat -c %u:%g "$d/x")" = "$H1001:$G1001" ] || fail "the file the running app made is $(stat -c %u:%g "$d/x") on the host"
	echo "    podman exec wrote; on the host: $(stat -c '%n %u:%g' "$d/x")"
	upodman rm -f -t 0 vp-sleeper >/dev/null 2>&1
	rm -f "$d/x"
	expect 0 "$VP" rollback --journal-dir "$JD" "$d"
	snap "$d" "$WORK/pid.after"
	same "$WORK/pid.before" "$WORK/pid.after" "rollback"
}

# podman run --userns=keep-id: the user's own uid and gid are the same ids in
# the container (the app runs as them: --user, as the image names 1001); the other container ids take
# the subordinate range in order, around that hole. The maps of the running
# container are what volperm must use: --userns pid:PID. (user:NAME assumes
# the default layout, container 0 = the user: for keep-id it is wrong.)
sc_podman_keep_id() {
	local d=$WORK/vol/keepid pid
	mkvol "$d"
	chown -R "$H1001:$G1001" "$d" # the default layout's container 1001, say
	snap "$d" "$WORK/keepid.before"
	upodman rm -f -t 0 vp-keepid >/dev/null 2>&1
	expect 0 upodman run -d --name vp-keepid --userns=keep-id --user "$UIDN:$GIDN" --network none -v "$d:/data" "$APP" sleep 60
	pid=$(upodman inspect -f '{{.State.Pid}}' vp-keepid) || fail "podman inspect failed"
	[ "${pid:-0}" -gt 0 ] 2>/dev/null || fail "no PID for the running container: '$pid'"
	echo "    keep-id container: pid $pid, uid_map: $(tr -s ' ' <"/proc/$pid/uid_map" | tr '\n' ';')"
	expect 0 upodman exec vp-keepid id -u
	has "$UIDN"
	expect fail upodman exec vp-keepid touch /data/x
	has "Permission denied"
	expect 0 "$VP" plan --userns "pid:$pid" --owner 0:0 "$d"
	has "owner 0:0 (host $SUBUID:$SUBGID)"
	# above the user's own id: the range goes on one lower
	expect 0 "$VP" plan --userns "pid:$pid" --owner "$((UIDN + 1)):$((GIDN + 1))" "$d"
	has "owner $((UIDN + 1)):$((GIDN + 1)) (host $((SUBUID + UIDN)):$((SUBGID + GIDN)))"
	expect 0 "$VP" apply --userns "pid:$pid" --owner "$UIDN:$GIDN" --journal-dir "$JD" "$d"
	has "owner $UIDN:$GIDN (host $UIDN:$GIDN)"
	owners "$d" "$UIDN:$GIDN"
	expect 0 upodman exec vp-keepid sh -c 'touch /data/x && stat -c "in the container: %u:%g" /data/x'
	has "in the container: $UIDN:$GIDN"
	[ "$(stat -c %u:%g "$d/x")" = "$UIDN:$GIDN" ] || fail "the keep-id app's file is $(stat -c %u:%g "$d/x") on the host"
	echo "    keep-id: the app ($UIDN in the container) wrote; on the host: $(stat -c '%n %u:%g' "$d/x")"
	# user:NAME's arithmetic for the same container id: another host id.
	expect 0 "$VP" plan --userns "user:$U" --owner "$UIDN:$GIDN" "$d"
	has "owner $UIDN:$GIDN (host $((SUBUID + UIDN - 1)):$((SUBGID + GIDN - 1)))"
	upodman rm -f -t 0 vp-keepid >/dev/null 2>&1
	rm -f "$d/x"
	expect 0 "$VP" rollback --journal-dir "$JD" "$d"
	snap "$d" "$WORK/keepid.after"
	same "$WORK/keepid.before" "$WORK/keepid.after" "rollback"
}

# The user's range is container ids 1..65536: 65536 is the last one in it.
sc_out_of_range() {
	local d=$WORK/vol/range j=$WORK/journal-range o rc
	mkvol "$d"
	mkdir -p "$j"
	chmod 0700 "$j"
	snap "$d" "$WORK/range.before"
	expect 0 "$VP" plan --userns "user:$U" --owner 65536:65536 "$d"
	has "owner 65536:65536 (host $((SUBUID + 65535)):$((SUBGID + 65535)))"
	for o in 65537:65537 1001:65537 65537; do
		"$VP" apply --userns "user:$U" --owner "$o" --journal-dir "$j" "$d" >"$WORK/range.out" 2>"$WORK/range.err"
		rc=$?
		[ "$rc" = 2 ] || { cat "$WORK/range.out" "$WORK/range.err"; fail "--owner $o: expected exit 2, got $rc"; }
		[ "$(wc -l <"$WORK/range.err")" = 1 ] && grep -q '^volperm: ' "$WORK/range.err" ||
			{ cat "$WORK/range.err"; fail "--owner $o: expected one 'volperm: ' sentence on stderr"; }
		echo "    --owner $o: exit 2: $(cat "$WORK/range.err")"
		snap "$d" "$WORK/range.after"
		same "$WORK/range.before" "$WORK/range.after" "--owner $o"
		[ -z "$(find "$j" -name '*.vpj' -print -quit)" ] || fail "--owner $o: a journal was written"
	done
}

# ---- rootless docker ---------------------------------------------------------------------

# start_docker: dockerd-rootless.sh as the user, in the background; 0 when
# its socket answers, else the reason in DOCKER_WHY.
DOCKER_WHY=
start_docker() {
	local script
	script=$(command -v dockerd-rootless.sh || echo /usr/share/docker.io/contrib/dockerd-rootless.sh)
	if ! command -v dockerd >/dev/null 2>&1; then
		DOCKER_WHY="dockerd is not installed (apt-get install docker.io)"
		return 1
	fi
	[ -x "$DOCKER_CLI" ] || DOCKER_CLI=$(command -v docker) || {
		DOCKER_WHY="no docker client"
		return 1
	}
	if [ ! -f "$script" ]; then
		DOCKER_WHY="no dockerd-rootless.sh (docker.io's contrib)"
		return 1
	fi
	if ! command -v rootlesskit >/dev/null 2>&1; then
		DOCKER_WHY="rootlesskit is not installed (apt-get install rootlesskit)"
		return 1
	fi
	# cgroupfs: on a cgroup v2 host running systemd, dockerd would pick the
	# systemd driver, which needs the user's own systemd (a login session);
	# on cgroup v1 rootless dockerd uses no cgroups at all.
	asu env DOCKERD_ROOTLESS_ROOTLESSKIT_NET=host DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=none \
		sh "$script" --storage-driver vfs --iptables=false --bridge=none \
		--exec-opt native.cgroupdriver=cgroupfs >"$WORK/dockerd.log" 2>&1 &
	DOCKERD_LAUNCH_PID=$!
	for _ in $(seq 1 120); do
		udocker version >/dev/null 2>&1 && return 0
		kill -0 "$DOCKERD_LAUNCH_PID" 2>/dev/null || break
		sleep 0.25
	done
	# the first error that is not a warning (rootlesskit warns about
	# propagation and the MTU with --net=host)
	DOCKER_WHY=$(grep -v -e '^+' -e 'level=warning' "$WORK/dockerd.log" |
		grep -i -m1 -E 'error|fail|denied|unknown|cannot|not found|not supported' ||
		tail -n 1 "$WORK/dockerd.log")
	[ -n "$DOCKER_WHY" ] || DOCKER_WHY="dockerd-rootless.sh did not answer within 30 s"
	echo "rootless.sh: dockerd-rootless.sh did not start; its log:"
	grep -v '^+' "$WORK/dockerd.log" | tail -n 20 | sed 's/^/    /'
	stop_docker
	return 1
}

# The same as podman_userns_user with rootless Docker: a bind mount, and a
# named volume (in the user's data root) that the app mounts with :nocopy;
# without :nocopy, Docker's copy-up on the first mount of an empty volume
# gives its root back to container root (the image's /data) and the app is
# denied: docs/containers.md's "copy-up gotcha", rootless as rootful.
sc_docker_userns_user() {
	local d=$WORK/vol/docker p
	tar -C "$WORK/app/rootfs" -c . | udocker import -c 'USER 1001:1001' -c 'CMD ["sh"]' - "$APP" >"$WORK/import.log" 2>&1 ||
		{ cat "$WORK/import.log"; fail "docker import of the app image failed"; }
	expect 0 udocker info --format '{{.SecurityOptions}}'
	has "rootless"
	mkvol "$d"
	snap "$d" "$WORK/docker.before"
	app_denied udocker "$d"
	expect 0 "$VP" apply --userns "user:$U" --owner 1001:1001 --journal-dir "$JD" "$d"
	has "owner 1001:1001 (host $H1001:$G1001)"
	owners "$d" "$H1001:$G1001"
	app_writes udocker "$d" "$d"
	expect 0 "$VP" rollback --journal-dir "$JD" "$d"
	snap "$d" "$WORK/docker.after"
	same "$WORK/docker.before" "$WORK/docker.after" "rollback"
	app_denied udocker "$d"

	# A named volume: fresh, empty, the user's (container root) on the host.
	expect 0 udocker volume create vp-rootless-vol
	p=$(udocker volume inspect -f '{{.Mountpoint}}' vp-rootless-vol) || fail "docker volume inspect failed"
	[ -d "$p" ] || fail "the volume's mount point $p is not a directory on the host"
	echo "    volume vp-rootless-vol on the host: $p ($(stat -c %u:%g "$p"))"
	expect 0 "$VP" apply --userns "user:$U" --owner 1001:1001 --journal-dir "$JD" "$p"
	owners "$p" "$H1001:$G1001"
	app_writes udocker vp-rootless-vol "$p" :nocopy
	expect 0 "$VP" rollback --journal-dir "$JD" "$p"
	[ "$(stat -c %u:%g "$p")" = "$UIDN:$GIDN" ] || fail "rollback: the volume root is $(stat -c %u:%g "$p")"
	# Without :nocopy, on a volume still empty: copy-up undoes the change.
	expect 0 "$VP" apply --userns "user:$U" --owner 1001:1001 --no-journal "$p"
	expect fail udocker run --rm --network none --user 1001:1001 -v vp-rootless-vol:/data "$APP" touch /data/x
	has "Permission denied"
	[ "$(stat -c %u:%g "$p")" = "$UIDN:$GIDN" ] ||
		fail "expected copy-up to give the volume root back to container root ($UIDN:$GIDN), got $(stat -c %u:%g "$p")"
	echo "    without :nocopy: copy-up reset the volume root to container root ($UIDN:$GIDN on the host), the app is denied"
	udocker volume rm -f vp-rootless-vol >/dev/null 2>&1
}

# ---- run ------------------------------------------------------------------------------------

if ! upodman info >"$WORK/info.log" 2>&1; then
	echo "rootless.sh: podman info as $U failed:"
	tail -n 20 "$WORK/info.log" | sed 's/^/    /'
	skip_all "rootless podman does not work here: $(grep -i -m1 -E 'error|fail' "$WORK/info.log")" build "${ALL[@]}"
	e2e_summary
	exit
fi
echo "rootless.sh: podman as $U: $(grep -A7 -m1 'uidmap:' "$WORK/info.log" | grep -E 'host_id|size' | tr -s ' \n' ' ')"

run_scenario build
if [ "$FAILED" -gt 0 ]; then
	skip_all "rootless podman cannot build or run the app image (the failure is counted above)" "${ALL[@]}"
	e2e_summary
	exit
fi
for s in "${PODMAN_SC[@]}"; do
	run_scenario "$s"
done
if [ ${#DOCKER_SC[@]} -gt 0 ]; then
	if start_docker; then
		echo "rootless.sh: dockerd-rootless.sh as $U (pid $DOCKERD_LAUNCH_PID): $(udocker version --format '{{.Server.Version}}' 2>/dev/null)"
		for s in "${DOCKER_SC[@]}"; do
			run_scenario "$s"
		done
		stop_docker
	else
		RUNTIME="rootless Docker" skip_all "dockerd-rootless.sh does not start here: $DOCKER_WHY" "${DOCKER_SC[@]}"
	fi
fi
e2e_summary
