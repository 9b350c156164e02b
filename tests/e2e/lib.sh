# tests/e2e/lib.sh: sourced by docker.sh and podman.sh. The scenarios run the
# recipes in docs/examples/ themselves (docker-run.sh, compose.yaml,
# exec.Containerfile) and the repo's Containerfile, against a real runtime.
#
# The sourcing script sets:
#   RUNTIME   docker | podman (a few documented behaviours differ)
#   RT        an executable that runs the runtime's CLI against its private
#             daemon or storage (used as DOCKER= for docs/examples/docker-run.sh)
#   DC        a docker-compose command talking to that runtime, or empty
#   WORK      a scratch directory (mode 0755: host uid 1000 must traverse it)
# and calls e2e_build_images, then run_scenario NAME for each sc_NAME below,
# then e2e_summary.

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_DIR/../.." && pwd)
EXAMPLES=$REPO/docs/examples
VOLPERM_STATIC_BIN=${VOLPERM_STATIC_BIN:-$REPO/build-static/volperm}

VP_IMG=volperm-e2e:latest      # the repo's Containerfile, prebuilt binary
APP_IMG=volperm-e2e-app:latest # busybox-static, /data owned by root in the image
EXEC_IMG=volperm-e2e-exec:latest # docs/examples/exec.Containerfile on APP_IMG

PASSED=0 FAILED=0 SKIPPED=0
# Caps of the init container, as in the recipes.
INIT_CAPS=(--user 0:0 --cap-drop ALL --cap-add CHOWN --cap-add FOWNER --network none --read-only)

# ---- reporting ------------------------------------------------------------------

# run_scenario NAME: run sc_NAME in a subshell; exit 0 passes, 77 skips.
# remove_work NAME: at exit, unmount what is left under $WORK (container
# shm, netns; innermost first) and remove it, or keep it with
# VOLPERM_E2E_KEEP=1 (NAME says which script kept it).
remove_work() {
	[ -n "${WORK:-}" ] || return 0 # (an empty prefix would match every mount)
	awk -v w="$WORK" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	if [ -n "${VOLPERM_E2E_KEEP:-}" ]; then
		echo "$1: kept $WORK"
	else
		rm -rf --one-file-system "$WORK"
	fi
}

run_scenario() {
	local name=$1 rc t0=$SECONDS
	echo "--- $RUNTIME $name"
	("sc_$name")
	rc=$?
	case $rc in
	0)
		PASSED=$((PASSED + 1))
		echo "PASS: $RUNTIME $name ($((SECONDS - t0)) s)"
		;;
	77)
		SKIPPED=$((SKIPPED + 1))
		echo "SKIP: $RUNTIME $name"
		;;
	*)
		FAILED=$((FAILED + 1))
		echo "FAIL: $RUNTIME $name ($((SECONDS - t0)) s)"
		;;
	esac
}

# skip_all REASON NAMES...: a runtime that cannot start; loud, never a pass.
skip_all() {
	local reason=$1
	shift
	echo
	echo "################################################################"
	echo "SKIP: $RUNTIME end-to-end tests NOT RUN: $reason"
	echo "################################################################"
	for n in "$@"; do
		echo "SKIP: $RUNTIME $n ($reason)"
		SKIPPED=$((SKIPPED + 1))
	done
}

e2e_summary() {
	echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
	[ "$FAILED" -eq 0 ]
}

# ---- assertions (inside a scenario's subshell) -------------------------------------

fail() {
	echo "    FAILED: $*"
	exit 1
}

show_out() { sed 's/^/      | /' <<<"$OUT"; }

# expect WANT CMD...: run CMD, keep its stdout+stderr in OUT, check the exit
# status: WANT is a number, or "fail" for any non-zero.
expect() {
	local want=$1 rc
	shift
	OUT=$("$@" 2>&1)
	rc=$?
	if { [ "$want" = fail ] && [ "$rc" -eq 0 ]; } || { [ "$want" != fail ] && [ "$rc" -ne "$want" ]; }; then
		echo "    command:  $*"
		echo "    expected: exit $want"
		echo "    got:      exit $rc, output:"
		show_out
		exit 1
	fi
}

# has TEXT / hasnt TEXT: about OUT, the output of the last expect.
has() {
	grep -qF -- "$1" <<<"$OUT" && return 0
	echo "    expected the output to contain: $1"
	echo "    got:"
	show_out
	exit 1
}
hasnt() {
	grep -qF -- "$1" <<<"$OUT" || return 0
	echo "    expected the output NOT to contain: $1"
	show_out
	exit 1
}

# owners DIR WANT: every entry of DIR (host side) is owned by WANT (uid:gid)
owners() {
	local bad
	bad=$(find "$1" \! -user "${2%%:*}" -printf '%U:%G %p\n' -o \! -group "${2##*:}" -printf '%U:%G %p\n')
	[ -z "$bad" ] && return 0
	echo "    expected every entry of $1 to be owned by $2; these are not:"
	sed 's/^/      | /' <<<"$bad"
	exit 1
}

# ---- runtime helpers ---------------------------------------------------------------

vol_path() { "$RT" volume inspect --format '{{.Mountpoint}}' "$1"; }

# new_volume NAME: a fresh named volume holding a small tree owned by
# 1000:1000 (as an app's data left by a previous image version), made through
# a container so that the runtime's own first-mount handling is over.
new_volume() {
	"$RT" volume rm -f "$1" >/dev/null 2>&1
	"$RT" volume create "$1" >/dev/null || fail "cannot create volume $1"
	"$RT" run --rm --user 0:0 --network none -v "$1":/data:nocopy "$APP_IMG" sh -c \
		'mkdir -p /data/sub/deeper && echo hi >/data/sub/f && echo top >/data/top &&
		 echo d >/data/sub/deeper/g && chown -R 1000:1000 /data && chmod 0755 /data' ||
		fail "cannot populate volume $1"
	owners "$(vol_path "$1")" 1000:1000
}

# app_cannot_write VOLUME: the app (1001:1001) is refused
app_cannot_write() {
	expect fail "$RT" run --rm --user 1001:1001 --network none -v "$1":/data:nocopy "$APP_IMG" \
		touch /data/written-by-app
	has "Permission denied"
}

app_can_write() {
	expect 0 "$RT" run --rm --user 1001:1001 --network none -v "$1":/data:nocopy "$APP_IMG" \
		sh -c 'touch /data/written-by-app && echo more >>/data/top && touch /data/sub/deeper/new'
}

# ---- images -------------------------------------------------------------------------

# e2e_build_images: the volperm image from the repo's Containerfile (the
# prebuilt-binary stage: no registry here), the app image from busybox-static,
# and the volperm exec image from docs/examples/exec.Containerfile.
e2e_build_images() {
	local ctx rel app=$WORK/app-image
	if [ ! -x "$VOLPERM_STATIC_BIN" ]; then
		echo "no static binary at $VOLPERM_STATIC_BIN" >&2
		return 1
	fi
	case $VOLPERM_STATIC_BIN in
	"$REPO"/*)
		ctx=$REPO
		rel=${VOLPERM_STATIC_BIN#"$REPO"/}
		;;
	*)
		ctx=$WORK/volperm-ctx
		mkdir -p "$ctx"
		cp "$VOLPERM_STATIC_BIN" "$ctx/volperm"
		rel=volperm
		;;
	esac
	"$RT" build -q --target prebuilt --build-arg VOLPERM_PREBUILT="$rel" \
		-t "$VP_IMG" -f "$REPO/Containerfile" "$ctx" >"$WORK/build-volperm.log" 2>&1 || {
		echo "building the volperm image failed:" >&2
		cat "$WORK/build-volperm.log" >&2
		return 1
	}

	# The app: a static busybox, applets as symlinks, a passwd with `app`
	# (1001, also in group 2000), and /data in the image owned by root 0755,
	# as many images have it (which is what Docker's copy-up copies).
	local busybox
	busybox=$(command -v busybox) || { echo "busybox (busybox-static) is missing" >&2; return 1; }
	if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked' &&
		ldd "$busybox" >/dev/null 2>&1; then
		echo "$busybox is not static: install busybox-static" >&2
		return 1
	fi
	rm -rf "$app"
	mkdir -p "$app/rootfs/bin" "$app/rootfs/etc" "$app/rootfs/data" "$app/rootfs/home/app" "$app/rootfs/tmp"
	cp "$busybox" "$app/rootfs/bin/busybox"
	for a in sh id touch ls stat cat mkdir chown chmod echo grep test env sleep rm true false; do
		ln -s busybox "$app/rootfs/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1001:1001:app:/home/app:/bin/sh\n' >"$app/rootfs/etc/passwd"
	printf 'root:x:0:\napp:x:1001:\nextra:x:2000:app\n' >"$app/rootfs/etc/group"
	chmod 0755 "$app/rootfs/data"
	chmod 1777 "$app/rootfs/tmp"
	printf 'FROM scratch\nCOPY rootfs/ /\nUSER 1001:1001\nCMD ["sh"]\n' >"$app/Containerfile"
	"$RT" build -q -t "$APP_IMG" -f "$app/Containerfile" "$app" >"$WORK/build-app.log" 2>&1 || {
		echo "building the app image failed:" >&2
		cat "$WORK/build-app.log" >&2
		return 1
	}

	"$RT" build -q --build-arg VOLPERM_IMAGE="$VP_IMG" --build-arg APP_IMAGE="$APP_IMG" \
		-t "$EXEC_IMG" -f "$EXAMPLES/exec.Containerfile" "$EXAMPLES" >"$WORK/build-exec.log" 2>&1 || {
		echo "building the exec image failed:" >&2
		cat "$WORK/build-exec.log" >&2
		return 1
	}
}

# ---- scenarios --------------------------------------------------------------------------

SCENARIOS=(image docker_run_recipe journal_on_volume no_journal_chown_only no_caps
	recipe_stops_app bind_grant exec_entrypoint copy_up stop_rolls_back
	idmap compose compose_fresh_volume compose_no_caps compose_idmap)
# VOLPERM_E2E_FULL_BUILD=1: also build the Containerfile's debian:12 builder
# stage, from a debian:12 made here with debootstrap (about 3 minutes).
if [ -n "${VOLPERM_E2E_FULL_BUILD:-}" ]; then
	SCENARIOS+=(full_build)
fi
# VOLPERM_E2E_SCENARIOS="a b": run only these (for debugging)
if [ -n "${VOLPERM_E2E_SCENARIOS:-}" ]; then
	read -r -a SCENARIOS <<<"$VOLPERM_E2E_SCENARIOS"
fi

# The image: FROM scratch, the binary and nothing else, well under 5 MB,
# numeric user 0, the labels that document the capabilities.
sc_image() {
	local size d=$WORK/image-save
	size=$("$RT" image inspect --format '{{.Size}}' "$VP_IMG") || fail "cannot inspect $VP_IMG"
	[ "$size" -lt $((5 * 1024 * 1024)) ] || fail "image is $size bytes, not under 5 MB"
	echo "    image size: $size bytes"
	expect 0 "$RT" image inspect --format '{{.Config.User}}|{{index .Config.Labels "io.volperm.capabilities.required"}}' "$VP_IMG"
	has "0:0|CHOWN FOWNER"
	rm -rf "$d"
	mkdir -p "$d"
	"$RT" save -o "$d/image.tar" "$VP_IMG" >"$d/save.log" 2>&1 || { cat "$d/save.log"; fail "cannot save $VP_IMG"; }
	tar -xf "$d/image.tar" -C "$d" || fail "cannot unpack the saved image"
	local files="" layer
	while IFS= read -r layer; do
		files+=$(tar -tf "$layer")$'\n'
	done < <(find "$d" -name '*.tar' ! -path "$d/image.tar")
	files=$(grep -v '^$' <<<"$files" | sort -u)
	[ "$files" = volperm ] || fail "the image should hold only /volperm; its layers hold: $(tr '\n' ' ' <<<"$files")"
	expect 0 "$RT" run --rm --network none "$VP_IMG" --version
	has "volperm "
	expect 0 "$RT" run --rm --network none "$VP_IMG" # CMD ["--help"]
	has "volperm exec"
}

# The Containerfile as a user with a registry builds it: the debian:12 builder
# stage compiles the static binary. No registry here: debian:12 is made with
# debootstrap from Debian's archive (VOLPERM_E2E_DEBIAN_ROOTFS: reuse one),
# and the builder's apt-get needs --network host.
sc_full_build() {
	local rootfs=${VOLPERM_E2E_DEBIAN_ROOTFS:-$WORK/debian12}
	if [ ! -x "$rootfs/bin/sh" ]; then
		command -v debootstrap >/dev/null || fail "debootstrap is missing (apt-get install debootstrap)"
		expect 0 debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian
	fi
	expect 0 bash -c "tar -C '$rootfs' -c . | '$RT' import - docker.io/library/debian:12"
	expect 0 "$RT" build --network host -t volperm-e2e-full:latest -f "$REPO/Containerfile" "$REPO"
	expect 0 "$RT" run --rm --network none volperm-e2e-full:latest --version
	has "volperm "
	local size
	size=$("$RT" image inspect --format '{{.Size}}' volperm-e2e-full:latest)
	echo "    image built from source: $size bytes"
	[ "$size" -lt $((5 * 1024 * 1024)) ] || fail "image is $size bytes, not under 5 MB"
}

# docs/examples/docker-run.sh itself: the app (1001) cannot write to a volume
# owned by 1000 before, and can after the init container ran with only
# CHOWN and FOWNER; the journal is on its own volume.
sc_docker_run_recipe() {
	new_volume e2e-recipe
	app_cannot_write e2e-recipe
	expect 0 env DOCKER="$RT" VOLPERM_IMAGE="$VP_IMG" APP_IMAGE="$APP_IMG" APP_DATA=e2e-recipe \
		JOURNAL=e2e-recipe-journal sh "$EXAMPLES/docker-run.sh" \
		sh -c 'touch /data/written-by-app /data/sub/deeper/new && echo app-ran-as=$(id -u):$(id -g)'
	has "changes:   6 entries"
	has "journal:   /var/lib/volperm/vp-"
	has "app-ran-as=1001:1001"
	owners "$(vol_path e2e-recipe)" 1001:1001
	app_can_write e2e-recipe
	# No journal inside the volume.
	[ -z "$(find "$(vol_path e2e-recipe)" -name '*.vpj' -o -name 'vp-*.lock')" ] || fail "a journal file is inside the volume"
	# Every later start: nothing to do, no new journal.
	expect 0 env DOCKER="$RT" VOLPERM_IMAGE="$VP_IMG" APP_IMAGE="$APP_IMG" APP_DATA=e2e-recipe \
		JOURNAL=e2e-recipe-journal sh "$EXAMPLES/docker-run.sh" true
	has "changes:   0 entries"
	hasnt "journal:"
}

# The journal volume outlives the init container: list it, roll back through
# it (the volume is 1000's again), lose it and re-run (converges).
sc_journal_on_volume() {
	local jv=e2e-jv-journal
	new_volume e2e-jv
	"$RT" volume rm -f "$jv" >/dev/null 2>&1
	run_vp() {
		"$RT" run --rm "${INIT_CAPS[@]}" -v e2e-jv:/data:nocopy -v "$jv":/var/lib/volperm "$VP_IMG" "$@"
	}
	expect 0 run_vp apply --recover --owner 1001:1001 /data
	has "changes:   6 entries"
	owners "$(vol_path e2e-jv)" 1001:1001
	expect 0 run_vp journal list /data
	has "committed"
	[ "$(find "$(vol_path "$jv")" -name '*.vpj' | wc -l)" -eq 1 ] || fail "expected one journal file on the journal volume"
	expect 0 run_vp rollback /data
	owners "$(vol_path e2e-jv)" 1000:1000
	app_cannot_write e2e-jv
	expect 0 run_vp journal list /data
	has "rolled-back"
	expect 0 run_vp apply --recover --owner 1001:1001 /data
	owners "$(vol_path e2e-jv)" 1001:1001
	# The journal volume is lost: the next run starts a new one and converges.
	"$RT" volume rm -f "$jv" >/dev/null || fail "cannot remove the journal volume"
	expect 0 run_vp apply --recover --owner 1001:1001 /data
	has "changes:   0 entries"
	owners "$(vol_path e2e-jv)" 1001:1001
	app_can_write e2e-jv
}

# --no-journal: CHOWN alone is enough for a plain --owner.
sc_no_journal_chown_only() {
	new_volume e2e-nj
	expect 0 "$RT" run --rm --user 0:0 --cap-drop ALL --cap-add CHOWN --network none --read-only \
		-v e2e-nj:/data:nocopy "$VP_IMG" apply --no-journal --owner 1001:1001 /data
	has "changes:   6 entries"
	owners "$(vol_path e2e-nj)" 1001:1001
	app_can_write e2e-nj
}

# --cap-drop ALL and nothing added: volperm's one-sentence capability error,
# exit 2, nothing changed, no journal written.
sc_no_caps() {
	new_volume e2e-nocaps
	"$RT" volume rm -f e2e-nocaps-journal >/dev/null 2>&1
	expect 2 "$RT" run --rm --user 0:0 --cap-drop ALL --network none --read-only \
		-v e2e-nocaps:/data:nocopy -v e2e-nocaps-journal:/var/lib/volperm \
		"$VP_IMG" apply --recover --owner 1001:1001 /data
	has "needs the CAP_CHOWN capability"
	has "nothing was changed"
	# One sentence, not an error per entry (the summary's header may precede it).
	[ "$(grep -c . <<<"$OUT")" -le 4 ] || { show_out; fail "expected a short error, got $(grep -c . <<<"$OUT") lines"; }
	hasnt "Operation not permitted"
	owners "$(vol_path e2e-nocaps)" 1000:1000
	[ -z "$(find "$(vol_path e2e-nocaps-journal)" -name '*.vpj')" ] || fail "a journal was written"
	# CHOWN without FOWNER: the FOWNER sentence for a mode change of files
	# root does not own. (A plain chown of them, journal included, needs only
	# CHOWN since issue 13: its rollback restores no mode.)
	expect 2 "$RT" run --rm --user 0:0 --cap-drop ALL --cap-add CHOWN --network none --read-only \
		-v e2e-nocaps:/data:nocopy -v e2e-nocaps-journal:/var/lib/volperm \
		"$VP_IMG" apply --recover --owner 1001:1001 --chmod g+w /data
	has "needs the CAP_FOWNER capability"
	owners "$(vol_path e2e-nocaps)" 1000:1000
	# And with --no-journal and nothing added.
	expect 2 "$RT" run --rm --user 0:0 --cap-drop ALL --network none --read-only \
		-v e2e-nocaps:/data:nocopy "$VP_IMG" apply --no-journal --owner 1001:1001 /data
	has "needs the CAP_CHOWN capability"
	owners "$(vol_path e2e-nocaps)" 1000:1000
	app_cannot_write e2e-nocaps
}

# The docker run recipe when init fails (here: a journal volume writable by
# others, which volperm refuses): exit non-zero and the app never runs.
sc_recipe_stops_app() {
	new_volume e2e-stop
	"$RT" volume rm -f e2e-stop-journal >/dev/null 2>&1
	"$RT" volume create e2e-stop-journal >/dev/null || fail "cannot create the journal volume"
	chmod 0777 "$(vol_path e2e-stop-journal)"
	expect fail env DOCKER="$RT" VOLPERM_IMAGE="$VP_IMG" APP_IMAGE="$APP_IMG" APP_DATA=e2e-stop \
		JOURNAL=e2e-stop-journal sh "$EXAMPLES/docker-run.sh" sh -c 'echo APP-STARTED; touch /data/app-started'
	has "writable by group or others"
	hasnt "APP-STARTED"
	[ ! -e "$(vol_path e2e-stop)/app-started" ] || fail "the app ran although init failed"
	owners "$(vol_path e2e-stop)" 1000:1000
}

# A host bind mount with --grant: the host user 1000 keeps owning every file,
# the app (1001) can write, and what the app creates stays editable by 1000
# through the directories' default ACLs. --grant needs FOWNER, not CHOWN.
sc_bind_grant() {
	local b=$WORK/bind-src
	rm -rf "$b"
	mkdir -p "$b/sub"
	echo top >"$b/top"
	echo f >"$b/sub/f"
	chown -R 1000:1000 "$b"
	chmod 0755 "$b" "$b/sub"
	chmod 0644 "$b/top" "$b/sub/f"
	expect fail "$RT" run --rm --user 1001:1001 --network none -v "$b":/data "$APP_IMG" touch /data/new
	"$RT" volume rm -f e2e-bind-journal >/dev/null 2>&1
	expect 0 "$RT" run --rm --user 0:0 --cap-drop ALL --cap-add FOWNER --network none --read-only \
		-v "$b":/data -v e2e-bind-journal:/var/lib/volperm \
		"$VP_IMG" apply --recover --grant u:1001:rwX,u:1000:rwX /data
	owners "$b" 1000:1000
	command -v getfacl >/dev/null || fail "getfacl (package acl) is missing"
	OUT=$(getfacl -pn "$b/sub")
	has "user:1001:rwx"
	has "default:user:1001:rwx"
	has "default:user:1000:rwx"
	OUT=$(getfacl -pn "$b/top")
	has "user:1001:rw-"
	expect 0 "$RT" run --rm --user 1001:1001 --network none -v "$b":/data "$APP_IMG" \
		sh -c 'echo app >>/data/top && mkdir /data/sub/made && echo new >/data/sub/made/file'
	owners "$b/top" 1000:1000
	[ "$(stat -c %u "$b/sub/made/file")" = 1001 ] || fail "the app's new file should be the app's"
	# The host user edits what the app created.
	command -v setpriv >/dev/null || fail "setpriv (util-linux) is missing"
	expect 0 setpriv --reuid 1000 --regid 1000 --clear-groups sh -c "echo host >>'$b/sub/made/file'"
	grep -q host "$b/sub/made/file" || fail "the host user's write is missing"
}

# docs/examples/exec.Containerfile: volperm exec as the image's entrypoint
# fixes /data, becomes app:app (supplementary group 2000 from /etc/group,
# HOME from /etc/passwd), keeps the environment, drops every capability, sets
# no_new_privs, and passes the command's exit status through.
sc_exec_entrypoint() {
	local caps=(--cap-drop ALL --cap-add CHOWN --cap-add SETUID --cap-add SETGID --network none)
	new_volume e2e-exec
	expect 0 "$RT" run --rm "${caps[@]}" -e GREETING=hello -v e2e-exec:/data:nocopy "$EXEC_IMG" \
		sh -c 'echo "ids=$(id -u):$(id -g) groups=$(id -G) home=$HOME greeting=$GREETING";
		       grep -E "^(CapPrm|CapEff|CapAmb|NoNewPrivs):" /proc/self/status;
		       touch /data/written-by-app'
	has "ids=1001:1001 groups=1001 2000 home=/home/app greeting=hello"
	has "CapPrm:	0000000000000000"
	has "CapEff:	0000000000000000"
	has "CapAmb:	0000000000000000"
	has "NoNewPrivs:	1"
	owners "$(vol_path e2e-exec)" 1001:1001
	expect 7 "$RT" run --rm "${caps[@]}" -v e2e-exec:/data:nocopy "$EXEC_IMG" sh -c 'exit 7'
	expect 127 "$RT" run --rm "${caps[@]}" -v e2e-exec:/data:nocopy "$EXEC_IMG" no-such-command
	has "no-such-command"
	# Root is refused unless asked for.
	expect 2 "$RT" run --rm "${caps[@]}" -v e2e-exec:/data:nocopy --entrypoint /usr/local/bin/volperm \
		"$EXEC_IMG" exec --no-journal --owner 1001:1001 --user 0:0 /data -- id
	has "refuses to run the command as root"
	# Without SETUID/SETGID volperm cannot become the user: it says so before
	# changing anything, and the command does not run as root instead.
	expect fail "$RT" run --rm --cap-drop ALL --cap-add CHOWN --network none -v e2e-exec:/data:nocopy \
		"$EXEC_IMG" sh -c 'echo RAN-AS-$(id -u)'
	has "needs the CAP_SETUID and CAP_SETGID capabilities"
	has "nothing was changed"
	hasnt "RAN-AS-"
}

# Docker's copy-up: when an empty named volume is mounted over a directory
# that exists in the image (/data, root 0755 in APP_IMG), Docker copies that
# directory's owner and mode onto the volume when the container is created,
# every time the volume is still empty. Podman does it once, on the first
# mount of a new volume, nocopy or not. The recipes mount with nocopy and run
# init first, which is immune on both.
sc_copy_up() {
	local v=e2e-copyup p
	"$RT" volume rm -f $v >/dev/null 2>&1
	# README's plain init (no nocopy on init: its image has no /data).
	expect 0 "$RT" run --rm --user 0:0 --cap-drop ALL --cap-add CHOWN --network none --read-only \
		-v $v:/data "$VP_IMG" apply --no-journal --owner 1001:1001 /data
	p=$(vol_path $v)
	[ "$(stat -c %u:%g "$p")" = 1001:1001 ] || fail "init did not give the volume root to 1001"
	if [ "$RUNTIME" = docker ]; then
		# The gotcha: the app's container without nocopy undoes init's work.
		expect fail "$RT" run --rm --user 1001:1001 --network none -v $v:/data "$APP_IMG" touch /data/x
		has "Permission denied"
		[ "$(stat -c %u:%g "$p")" = 0:0 ] || fail "expected copy-up to reset the volume root to 0:0, got $(stat -c %u:%g "$p")"
		echo "    docker: copy-up reproduced (volume root reset to 0:0 by the app's mount)"
		# And again, for as long as the volume is empty.
		expect 0 "$RT" run --rm --user 0:0 --cap-drop ALL --cap-add CHOWN --network none --read-only \
			-v $v:/data:nocopy "$VP_IMG" apply --no-journal --owner 1001:1001 /data
		expect fail "$RT" run --rm --user 1001:1001 --network none -v $v:/data "$APP_IMG" touch /data/x
		[ "$(stat -c %u:%g "$p")" = 0:0 ] || fail "expected copy-up to reset the volume root again"
		expect 0 "$RT" run --rm --user 0:0 --cap-drop ALL --cap-add CHOWN --network none --read-only \
			-v $v:/data:nocopy "$VP_IMG" apply --no-journal --owner 1001:1001 /data
	else
		# Podman: the first mount (init's) was the only copy-up.
		expect 0 "$RT" run --rm --user 1001:1001 --network none -v $v:/data "$APP_IMG" touch /data/x
		"$RT" run --rm --user 0:0 --network none -v $v:/data "$APP_IMG" rm /data/x || fail "cannot empty the volume"
		echo "    podman: no copy-up after the first mount, with or without nocopy"
		# Podman's own gotcha: the first mount of a new volume, here the
		# app's with nocopy, gives the volume root the image's owner.
		local v2=e2e-copyup-first
		"$RT" volume rm -f $v2 >/dev/null 2>&1
		"$RT" volume create $v2 >/dev/null
		chown 1001:1001 "$(vol_path $v2)"
		expect fail "$RT" run --rm --user 1001:1001 --network none -v $v2:/data:nocopy "$APP_IMG" touch /data/x
		[ "$(stat -c %u:%g "$(vol_path $v2)")" = 0:0 ] || fail "expected podman's first mount to reset the root to 0:0"
		echo "    podman: the first mount of a new volume takes the image's owner, even with nocopy"
		# After init, that volume stays fixed.
		expect 0 "$RT" run --rm --user 0:0 --cap-drop ALL --cap-add CHOWN --network none --read-only \
			-v $v2:/data:nocopy "$VP_IMG" apply --no-journal --owner 1001:1001 /data
		expect 0 "$RT" run --rm --user 1001:1001 --network none -v $v2:/data "$APP_IMG" touch /data/x
	fi
	# The recipe's way: nocopy, on a volume that is still empty.
	expect 0 "$RT" run --rm --user 1001:1001 --network none -v $v:/data:nocopy "$APP_IMG" \
		sh -c 'touch /data/x && ls -lnd /data'
	[ "$(stat -c %u:%g "$p")" = 1001:1001 ] || fail "nocopy: the volume root should stay 1001:1001"
}

# `docker stop -t 30` (SIGTERM to the container's PID 1, volperm itself)
# in the middle of an init container's apply on a 20000-entry volume: exit 7
# within the grace period, the volume exactly as before, the journal rolled
# back. Not a race: the volperm process is frozen from the host (SIGSTOP
# reaches a container's init) once its journal exists and while the journal
# is still live; the runtime's SIGTERM then waits, pending, until SIGCONT.
# (Before volperm handled SIGTERM, PID 1 ignored it: SIGKILL after 30 s, 137.)
sc_stop_rolls_back() {
	local v=e2e-stopbig jv=e2e-stopbig-journal p jp cid pid i state stop_pid rc pend
	"$RT" volume rm -f $v $jv >/dev/null 2>&1
	"$RT" volume create $v >/dev/null && "$RT" volume create $jv >/dev/null ||
		fail "cannot create the volumes"
	p=$(vol_path $v)
	jp=$(vol_path $jv)
	python3 "$REPO/tests/tools/mktree.py" --quiet "$p/tree" 20000 --seed 4 --uid 1000 --gid 1000 ||
		fail "mktree.py failed"
	# Podman gives a new volume the owner of the image's mount point on its
	# first mount, even with nocopy (docs/containers.md): mount it once
	# before the before-snapshot, so that only volperm's changes count.
	"$RT" run --rm -v $v:/data:nocopy "$VP_IMG" --version >/dev/null 2>&1 ||
		fail "cannot mount the volume once"
	chown 1000:1000 "$p"
	python3 "$REPO/tests/tools/snapshot.py" -o "$WORK/stop.before" "$p" || fail "snapshot failed"
	cid=$("$RT" run -d "${INIT_CAPS[@]}" -v $v:/data:nocopy -v $jv:/var/lib/volperm \
		"$VP_IMG" apply --owner 1001:1001 /data) || fail "cannot start the init container"
	pid=$("$RT" inspect --format '{{.State.Pid}}' "$cid")
	for i in $(seq 1 600); do
		[ -n "$(find "$jp" -name '*.vpj' 2>/dev/null)" ] && break
		sleep 0.05
	done
	kill -STOP "$pid" 2>/dev/null || fail "volperm (pid $pid) ended before its journal was seen"
	state=$("$VOLPERM_STATIC_BIN" journal list --journal-dir "$jp" | awk 'NR == 1 { print $2 }')
	if [ "$state" != running ]; then
		kill -CONT "$pid"
		"$RT" rm -f "$cid" >/dev/null 2>&1
		echo "    the apply was already $state when it was frozen: make the volume bigger"
		exit 77
	fi
	echo "    volperm (host pid $pid) frozen mid-apply, journal $state"
	"$RT" stop -t 30 "$cid" >/dev/null 2>&1 &
	stop_pid=$!
	# Wait (bounded) until SIGTERM is pending on the frozen process.
	for i in $(seq 1 200); do
		pend=$(awk '$1 == "ShdPnd:" || $1 == "SigPnd:" { print $2 }' "/proc/$pid/status" 2>/dev/null |
			while read -r m; do echo $(((16#$m >> 14) & 1)); done | sort -r | head -n 1)
		[ "$pend" = 1 ] && break
		sleep 0.05
	done
	echo "    SIGTERM pending: ${pend:-no}; SIGCONT"
	kill -CONT "$pid"
	wait "$stop_pid"
	rc=$("$RT" inspect --format '{{.State.ExitCode}}' "$cid")
	OUT=$("$RT" logs "$cid" 2>&1)
	"$RT" rm -f "$cid" >/dev/null 2>&1
	[ "$rc" = 7 ] || { show_out; fail "expected exit 7 after docker stop, got $rc"; }
	has "volperm: interrupted by SIGTERM; every change was rolled back, nothing changed"
	python3 "$REPO/tests/tools/snapshot.py" -o "$WORK/stop.after" "$p" || fail "snapshot failed"
	python3 "$REPO/tests/tools/snapshot.py" --diff "$WORK/stop.before" "$WORK/stop.after" >"$WORK/stop.diff" ||
		{ head -n 20 "$WORK/stop.diff"; fail "the volume changed"; }
	expect 0 "$VOLPERM_STATIC_BIN" journal list --journal-dir "$jp"
	has "rolled-back"
	"$RT" volume rm -f $v $jv >/dev/null 2>&1
}

# ---- idmapped mounts (volperm idmap) -----------------------------------------------------

# idmap_base DIR: make DIR on a filesystem that takes idmapped mounts: WORK's
# own when `volperm idmap --dry-run` probes it supported (ext4, xfs, btrfs;
# tmpfs from 6.3), else a small ext4 loop image mounted on DIR (the runtime
# scripts' cleanup unmounts whatever is mounted below WORK).
idmap_base() {
	local b=$1
	rm -rf "$b"
	mkdir -p "$b/probe" "$b/probe-dst"
	if "$VOLPERM_STATIC_BIN" idmap --dry-run --map 1000:1001 "$b/probe" "$b/probe-dst" >/dev/null 2>&1; then
		rmdir "$b/probe" "$b/probe-dst"
		echo "    SRC on $(findmnt -n -o FSTYPE -T "$b") ($b)"
		return 0
	fi
	rmdir "$b/probe" "$b/probe-dst"
	command -v mkfs.ext4 >/dev/null || fail "$(findmnt -n -o FSTYPE -T "$b") does not take idmapped mounts and mkfs.ext4 is missing"
	truncate -s 64M "$b.img" && mkfs.ext4 -q -F "$b.img" >/dev/null 2>&1 && mount -o loop "$b.img" "$b" ||
		fail "cannot make an ext4 loop mount on $b"
	rm -f "$b.img" # the loop device keeps it until the unmount
	chmod 0755 "$b"
	echo "    SRC on an ext4 loop mount ($(findmnt -n -o FSTYPE -T "$(dirname "$b")") does not take idmapped mounts)"
}

# volperm idmap (docs/volperm.1, docs/policies.md "chown or idmap?") on the
# host, then the app container over a bind mount of DST: SRC's files stay
# 1000:1000 on disk and the app, as 1001:1001, owns them through DST. No
# chown anywhere: SRC's inodes (owners, modes, ACL xattrs, ctimes) are the
# same before and after but for the two files the app wrote and the
# directory it created one in. Then what the map does with other callers:
# root (an id not named maps to itself) creates files, stored as 0:0; an
# entry owned by 1001 on disk (a NEW that is no OLD) shows as 65534, and
# root can neither chmod nor write it (but can chown it to a mapped id); uid
# 1000 (an OLD that is no NEW) has no id through DST and cannot create files
# there. Last, --undo: DST is an empty directory.
sc_idmap() {
	local b=$WORK/idmap S D diff rest
	local map=(--map 1000:1001 --map-gid 1000:1001)
	command -v getfacl >/dev/null && command -v setfacl >/dev/null || fail "getfacl/setfacl (package acl) are missing"
	command -v findmnt >/dev/null || fail "findmnt (util-linux) is missing"
	findmnt -rn --mountpoint "$b/dst" >/dev/null 2>&1 && umount "$b/dst"
	findmnt -rn --mountpoint "$b" >/dev/null 2>&1 && umount "$b"
	idmap_base "$b"
	S=$b/src D=$b/dst
	mkdir -p "$S/sub" "$S/open" "$D"
	echo top >"$S/top"
	echo f >"$S/sub/f"
	echo acl >"$S/aclfile"
	echo theirs >"$S/by1001"
	echo root >"$S/byroot"
	chown -R 1000:1000 "$S"
	chown 1001:1001 "$S/by1001"
	chown 0:0 "$S/byroot"
	chmod 0755 "$S" "$S/sub"
	chmod 0777 "$S/open"
	chmod 0644 "$S/top" "$S/sub/f" "$S/aclfile" "$S/by1001" "$S/byroot"
	# Named ACL entries for user 1000: a file's, and a directory's access and
	# default ACL (what the app creates there inherits u:1000 on disk).
	setfacl -m u:1000:rw- "$S/aclfile" && setfacl -m u:1000:rwx,d:u:1000:rwx "$S/sub" ||
		fail "setfacl on $S failed"
	python3 "$REPO/tests/tools/snapshot.py" --ctime -o "$WORK/idmap.before" "$S" || fail "snapshot failed"

	expect 0 "$VOLPERM_STATIC_BIN" idmap "${map[@]}" "$S" "$D"
	OUT=$(findmnt -rn -o VFS-OPTIONS --mountpoint "$D")
	has "idmapped"
	OUT=$(getfacl -pn --omit-header "$D/aclfile" "$D/sub" 2>&1)
	has "user:1001:rw-"
	has "default:user:1001:rwx"
	hasnt "user:1000:"

	# The app, 1001:1001, over a bind mount of DST: it sees its own ids and
	# writes a new file and an existing one.
	expect 0 "$RT" run --rm --user 1001:1001 --network none -v "$D":/data "$APP_IMG" sh -c \
		'stat -c "%n %u:%g" /data /data/top /data/sub /data/sub/f /data/aclfile /data/byroot /data/by1001 &&
		 echo app >>/data/top && echo new >/data/sub/made-by-app &&
		 stat -c "%n %u:%g" /data/sub/made-by-app && echo "app-ran-as=$(id -u):$(id -g)"'
	has "app-ran-as=1001:1001"
	has "/data 1001:1001"
	has "/data/top 1001:1001"
	has "/data/sub 1001:1001"
	has "/data/sub/f 1001:1001"
	has "/data/aclfile 1001:1001"
	has "/data/byroot 0:0"
	has "/data/by1001 65534:65534"
	has "/data/sub/made-by-app 1001:1001"
	# On the host: what the app wrote is 1000's on disk, its inherited ACL
	# entry names 1000 on disk and 1001 through DST.
	[ "$(stat -c %u:%g "$S/sub/made-by-app")" = 1000:1000 ] ||
		fail "the app's new file should be 1000:1000 on disk, is $(stat -c %u:%g "$S/sub/made-by-app")"
	[ "$(tail -n 1 "$S/top")" = app ] || fail "the app's write to top is not in SRC"
	OUT=$(getfacl -pn --omit-header "$S/sub/made-by-app")
	has "user:1000:rwx"
	OUT=$(getfacl -pn --omit-header "$D/sub/made-by-app")
	has "user:1001:rwx"

	# SRC's inodes: only top (written), sub (a new entry) and the new file.
	python3 "$REPO/tests/tools/snapshot.py" --ctime -o "$WORK/idmap.after" "$S" || fail "snapshot failed"
	diff=$(python3 "$REPO/tests/tools/snapshot.py" --diff --max 1000 "$WORK/idmap.before" "$WORK/idmap.after")
	OUT=$diff
	has "+ sub/made-by-app	file	1000	1000	"
	has "~ top: ctime "
	rest=$(grep -v -e '^+ sub/made-by-app	file	1000	1000	' -e '^~ top: ctime ' -e '^~ sub: ctime ' <<<"$diff")
	[ -z "$rest" ] || { OUT=$rest; show_out; fail "SRC changed beyond what the app wrote (above)"; }
	echo "    SRC unchanged but for the app's writes ($(wc -l <<<"$diff") differences, all expected)"

	# Root, an id not named in the map, maps to itself (docs/volperm.1:
	# "root can still create files through dst"): no EOVERFLOW, stored 0:0.
	expect 0 "$RT" run --rm --user 0:0 --network none -v "$D":/data "$APP_IMG" sh -c \
		'echo root >/data/sub/by-root && stat -c "%n %u:%g" /data/sub/by-root'
	has "/data/sub/by-root 0:0"
	[ "$(stat -c %u:%g "$S/sub/by-root")" = 0:0 ] || fail "root's file should be 0:0 on disk"
	# An entry of 1001 on disk (a NEW that is no OLD) is unmapped through DST:
	# 65534; its mode cannot be changed there nor its data written, not even
	# by root.
	expect fail "$RT" run --rm --user 0:0 --network none -v "$D":/data "$APP_IMG" chmod 0600 /data/by1001
	has "Value too large"
	expect fail "$RT" run --rm --user 0:0 --network none -v "$D":/data "$APP_IMG" sh -c 'echo root >>/data/by1001'
	has "Permission denied"
	[ "$(cat "$S/by1001")" = theirs ] || fail "root wrote to by1001 through DST"
	[ "$(stat -c %u:%g:%a "$S/by1001")" = 1001:1001:644 ] || fail "by1001 changed on disk: $(stat -c %u:%g:%a "$S/by1001")"
	# ...but root with CAP_CHOWN can give it a mapped owner (the kernel lets
	# a chown make an unmapped id valid; docs/volperm.1 says such entries
	# "cannot be changed through dst", which holds for everything else).
	cp -p "$S/by1001" "$S/by1001-chown"
	expect 0 "$RT" run --rm --user 0:0 --network none -v "$D":/data "$APP_IMG" chown 1001:1001 /data/by1001-chown
	[ "$(stat -c %u:%g "$S/by1001-chown")" = 1000:1000 ] ||
		fail "root's chown to 1001 through DST should store 1000:1000, got $(stat -c %u:%g "$S/by1001-chown")"
	# uid 1000, an OLD that is no NEW, has no id through DST: it cannot
	# create files there even in a directory open to all (EOVERFLOW).
	expect fail "$RT" run --rm --user 1000:1000 --network none -v "$D":/data "$APP_IMG" touch /data/open/by1000
	has "Value too large"
	[ ! -e "$S/open/by1000" ] || fail "uid 1000 created a file through DST"

	# --undo: the mount goes, DST is an empty directory again, SRC stays.
	expect 0 "$VOLPERM_STATIC_BIN" idmap --undo "$D"
	! findmnt -rn --mountpoint "$D" >/dev/null 2>&1 || fail "DST is still a mount point after --undo"
	[ -d "$D" ] && [ -z "$(find "$D" -mindepth 1 -print -quit)" ] || fail "DST is not an empty directory after --undo"
	[ "$(stat -c %u:%g "$S/sub/made-by-app")" = 1000:1000 ] || fail "SRC changed at --undo"
	expect 2 "$VOLPERM_STATIC_BIN" idmap --undo "$D"
	has "not a mount point"
	findmnt -rn --mountpoint "$b" >/dev/null 2>&1 && umount "$b"
	rm -rf "$b"
}

# docs/examples/compose-idmap.yaml with the host unit of docs/containers.md:
# `volperm idmap --print-unit` (accepted by systemd-analyze verify when it
# is installed), its ExecStart= run as the unit would, then compose's app
# (1001) over DST, then ExecStop=. And the rootless note: without root on the
# host (here: the volperm image in a container, no CAP_SYS_ADMIN) no
# idmapped mount can be made: exit 2, one sentence, nothing mounted.
sc_compose_idmap() {
	need_compose
	local f=$EXAMPLES/compose-idmap.yaml p=e2eidmap b=$WORK/idmap-compose S D unit line
	findmnt -rn --mountpoint "$b/dst" >/dev/null 2>&1 && umount "$b/dst"
	findmnt -rn --mountpoint "$b" >/dev/null 2>&1 && umount "$b"
	idmap_base "$b"
	S=$b/src D=$b/dst
	mkdir -p "$S/sub" "$D"
	echo top >"$S/top"
	chown -R 1000:1000 "$S"
	chmod 0755 "$S" "$S/sub"
	unit=$WORK/app-data-idmap.service
	"$VOLPERM_STATIC_BIN" idmap --print-unit --map 1000:1001 --map-gid 1000:1001 "$S" "$D" >"$unit" ||
		fail "idmap --print-unit failed"
	! findmnt -rn --mountpoint "$D" >/dev/null 2>&1 || fail "--print-unit mounted something"
	if command -v systemd-analyze >/dev/null; then
		# (the engines' units named in Before= do not exist here)
		OUT=$(systemd-analyze verify "$unit" 2>&1 | grep -v -e 'docker.service' -e 'podman.service' -e 'containerd.service')
		[ -z "$OUT" ] || { show_out; fail "systemd-analyze verify complains about the unit"; }
	fi
	# The unit's Exec lines, run as systemd would (the words are quoted in a
	# way the shell reads the same for these paths).
	line=$(sed -n 's/^ExecStart=//p' "$unit")
	[ -n "$line" ] || fail "the unit has no ExecStart="
	expect 0 eval "$line"
	OUT=$(findmnt -rn -o VFS-OPTIONS --mountpoint "$D")
	has "idmapped"
	dc_cleanup $p "$f"
	APP_DATA=$D expect 0 dc $p "$f" run --rm app sh -c \
		'echo app >>/data/top && mkdir /data/sub/made && stat -c "%n %u:%g" /data/top /data/sub/made'
	has "/data/top 1001:1001"
	has "/data/sub/made 1001:1001"
	[ "$(stat -c %u:%g "$S/sub/made")" = 1000:1000 ] || fail "the app's directory should be 1000:1000 on disk"
	owners "$S" 1000:1000
	APP_DATA=$D dc_cleanup $p "$f"
	# No root on the host, no idmapped mount: volperm in a container.
	mkdir -p "$b/dst2"
	expect 2 "$RT" run --rm --user 0:0 --network none -v "$b":/w "$VP_IMG" \
		idmap --map 1000:1001 --map-gid 1000:1001 /w/src /w/dst2
	has "Operation not permitted"
	echo "    in a container: $OUT"
	[ "$(wc -l <<<"$OUT")" = 1 ] || fail "expected one sentence"
	! findmnt -rn --mountpoint "$b/dst2" >/dev/null 2>&1 || fail "something was mounted on dst2"
	line=$(sed -n 's/^ExecStop=//p' "$unit")
	expect 0 eval "$line"
	! findmnt -rn --mountpoint "$D" >/dev/null 2>&1 || fail "ExecStop= left DST mounted"
	[ -z "$(find "$D" -mindepth 1 -print -quit)" ] || fail "DST is not empty after ExecStop="
	findmnt -rn --mountpoint "$b" >/dev/null 2>&1 && umount "$b"
	rm -rf "$b"
}

# ---- compose ------------------------------------------------------------------------------

need_compose() {
	if [ -z "${DC:-}" ]; then
		echo "    docker-compose is not usable with $RUNTIME here (see above)"
		exit 77
	fi
}

# dc PROJECT FILE ARGS...: docker-compose on a project, with the test images
dc() {
	local project=$1 file=$2
	shift 2
	VOLPERM_IMAGE=$VP_IMG APP_IMAGE=$APP_IMG $DC -p "$project" -f "$file" "$@"
}

dc_cleanup() { dc "$1" "$2" down -v --remove-orphans >/dev/null 2>&1; }

# docs/examples/compose.yaml on a volume owned by 1000: the app cannot write
# before; `run --rm app` starts init first (depends_on, condition
# service_completed_successfully), then the app can.
sc_compose() {
	need_compose
	local f=$EXAMPLES/compose.yaml p=e2ecompose
	dc_cleanup $p "$f"
	expect 0 dc $p "$f" run --rm --no-deps -u 0:0 app sh -c \
		'mkdir -p /data/sub && echo hi >/data/sub/f && chown -R 1000:1000 /data && chmod 0755 /data'
	owners "$(vol_path ${p}_app-data)" 1000:1000
	expect fail dc $p "$f" run --rm --no-deps app touch /data/written-by-app
	has "Permission denied"
	expect 0 dc $p "$f" run --rm app sh -c 'touch /data/written-by-app && echo app-ran-as=$(id -u):$(id -g)'
	has "app-ran-as=1001:1001"
	owners "$(vol_path ${p}_app-data)" 1001:1001
	expect 0 dc $p "$f" logs --no-color init
	has "changes:   3 entries"
	has "journal:   /var/lib/volperm/vp-"
	[ "$(find "$(vol_path ${p}_volperm-journal)" -name '*.vpj' | wc -l)" -eq 1 ] || fail "expected one journal on the journal volume"
	dc_cleanup $p "$f"
}

# The compose recipe on brand-new volumes: nocopy keeps init's work. With
# nocopy removed (a derived file), Docker's copy-up undoes it.
sc_compose_fresh_volume() {
	need_compose
	local f=$EXAMPLES/compose.yaml p=e2efresh d=$WORK/compose-copy
	dc_cleanup $p "$f"
	expect 0 dc $p "$f" run --rm app sh -c 'touch /data/written-by-app && ls -lnd /data'
	owners "$(vol_path ${p}_app-data)" 1001:1001
	dc_cleanup $p "$f"
	mkdir -p "$d"
	python3 - "$f" "$d/compose.yaml" <<-'EOF' || fail "cannot derive the compose file without nocopy"
		import sys, yaml
		doc = yaml.safe_load(open(sys.argv[1]))
		for m in doc["services"]["app"]["volumes"]:
		    m.pop("volume", None)
		yaml.safe_dump(doc, open(sys.argv[2], "w"))
	EOF
	dc_cleanup $p "$d/compose.yaml"
	if [ "$RUNTIME" = docker ]; then
		expect fail dc $p "$d/compose.yaml" run --rm app touch /data/written-by-app
		has "Permission denied"
		echo "    docker: without nocopy the fresh volume's root is reset by copy-up, as documented"
	else
		expect 0 dc $p "$d/compose.yaml" run --rm app touch /data/written-by-app
		echo "    podman: no copy-up after init's first mount, nocopy or not"
	fi
	dc_cleanup $p "$d/compose.yaml"
}

# The same init service with cap_add emptied (a derived file): init exits 2
# with the capability sentence, and compose does not start the app.
sc_compose_no_caps() {
	need_compose
	local f=$EXAMPLES/compose.yaml p=e2enocaps d=$WORK/compose-nocaps
	mkdir -p "$d"
	grep -q '^    cap_add: \[CHOWN, FOWNER\]$' "$f" || fail "compose.yaml has no 'cap_add: [CHOWN, FOWNER]' line to empty"
	sed 's/^    cap_add: \[CHOWN, FOWNER\]$/    cap_add: []/' "$f" >"$d/compose.yaml"
	dc_cleanup $p "$d/compose.yaml"
	expect 0 dc $p "$d/compose.yaml" run --rm --no-deps -u 0:0 app sh -c \
		'mkdir -p /data/sub && echo hi >/data/sub/f && chown -R 1000:1000 /data'
	expect fail dc $p "$d/compose.yaml" run --rm app sh -c 'echo APP-STARTED; touch /data/app-started'
	hasnt "APP-STARTED"
	echo "    compose said: $(grep -v -E '^(Creating|Starting|Attaching)' <<<"$OUT" | grep -i -m1 -E 'init|exit|error')"
	[ ! -e "$(vol_path ${p}_app-data)/app-started" ] || fail "the app ran although init failed"
	owners "$(vol_path ${p}_app-data)" 1000:1000
	expect 0 dc $p "$d/compose.yaml" logs --no-color init
	has "needs the CAP_CHOWN capability"
	dc_cleanup $p "$d/compose.yaml"
}
