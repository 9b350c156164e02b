#!/usr/bin/env bash
# tests/e2e/podman.sh: the container scenarios (tests/e2e/lib.sh) against
# rootful podman, with its own storage (vfs), run root, tmp dir and network
# config under a temporary directory. Here crun fails on the hybrid cgroup
# layout and the default rlimits are refused, so CONTAINERS_CONF points at a
# file with runtime = "runc" and default_ulimits of 1024. For the compose
# scenarios, `podman system service` serves the Docker API on a socket of its
# own, which docker-compose uses; it is stopped by its PID on exit.
#
# Needs root and the Debian packages podman, runc, docker-compose,
# busybox-static, acl (tests/e2e/run.sh installs them). If podman cannot run
# a container, every scenario is reported as SKIPPED, loudly, with the reason.
# Last line: `N passed, N failed, N skipped`; exit 1 if any failed.
#
# VOLPERM_STATIC_BIN  the static binary for the image (default build-static/volperm)
# VOLPERM_E2E_KEEP=1  keep the temporary directory
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RUNTIME=podman

if [ "$(id -u)" != 0 ]; then
	skip_all "needs root (rootful podman)" build "${SCENARIOS[@]}"
	e2e_summary
	exit
fi
PODMAN=$(command -v podman) || {
	skip_all "podman is not installed (apt-get install podman runc)" build "${SCENARIOS[@]}"
	e2e_summary
	exit
}

WORK=$(mktemp -d /tmp/vpe2e-podman.XXXXXX)
chmod 0755 "$WORK"
SERVICE_PID=
SOCK=$WORK/podman.sock
mkdir -p "$WORK/bin" "$WORK/tmp" "$WORK/networks"

cat >"$WORK/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$WORK/tmp"

[network]
network_config_dir = "$WORK/networks"
CONF
cat >"$WORK/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
CONF
cat >"$WORK/bin/podman" <<WRAP
#!/bin/sh
export CONTAINERS_CONF=$WORK/containers.conf CONTAINERS_STORAGE_CONF=$WORK/storage.conf
exec $PODMAN "\$@"
WRAP
chmod +x "$WORK/bin/podman"
RT=$WORK/bin/podman

cleanup() {
	if [ -n "$SERVICE_PID" ]; then
		kill -TERM "$SERVICE_PID" 2>/dev/null
		for _ in $(seq 1 20); do
			kill -0 "$SERVICE_PID" 2>/dev/null || break
			sleep 0.5
		done
		kill -0 "$SERVICE_PID" 2>/dev/null && kill -KILL "$SERVICE_PID" 2>/dev/null
		wait "$SERVICE_PID" 2>/dev/null
	fi
	"$RT" rm -a -f -t 0 >/dev/null 2>&1
	"$RT" volume rm -a -f >/dev/null 2>&1
	remove_work podman.sh
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "podman.sh: $("$PODMAN" --version), runtime $(command -v runc || echo 'runc: missing'), storage $WORK"
if ! "$RT" info >"$WORK/info.log" 2>&1; then
	echo "podman.sh: podman info failed:"
	tail -n 20 "$WORK/info.log" | sed 's/^/    /'
	skip_all "podman does not work here: $(grep -i -m1 -E 'error|fail' "$WORK/info.log")" build "${SCENARIOS[@]}"
	e2e_summary
	exit
fi

DC=
if command -v docker-compose >/dev/null 2>&1; then
	"$RT" system service --time=0 "unix://$SOCK" >"$WORK/service.log" 2>&1 &
	SERVICE_PID=$!
	for _ in $(seq 1 40); do
		[ -S "$SOCK" ] && break
		kill -0 "$SERVICE_PID" 2>/dev/null || break
		sleep 0.25
	done
	if [ -S "$SOCK" ]; then
		DC="env DOCKER_HOST=unix://$SOCK docker-compose --ansi never"
		echo "podman.sh: podman system service (pid $SERVICE_PID) serves docker-compose $(docker-compose version --short 2>/dev/null | head -n 1)"
	else
		echo "podman.sh: podman system service did not start; the compose scenarios are skipped:"
		tail -n 10 "$WORK/service.log" | sed 's/^/    /'
	fi
else
	echo "podman.sh: docker-compose is not installed: the compose scenarios are skipped"
fi

# Can podman run a container at all (runc, cgroups, rlimits)? If not, skip
# everything, loudly: podman cannot start here.
sc_build() { e2e_build_images || exit 1; }
run_scenario build
if [ "$FAILED" -gt 0 ]; then
	skip_all "the images could not be built (the failure is counted above)" "${SCENARIOS[@]}"
elif ! "$RT" run --rm --network none "$VP_IMG" --version >"$WORK/smoke.log" 2>&1; then
	echo "podman.sh: podman cannot run a container:"
	tail -n 20 "$WORK/smoke.log" | sed 's/^/    /'
	skip_all "podman cannot start a container here: $(grep -i -m1 -E 'error|fail' "$WORK/smoke.log")" "${SCENARIOS[@]}"
else
	for s in "${SCENARIOS[@]}"; do
		run_scenario "$s"
	done
fi
e2e_summary
