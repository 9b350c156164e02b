#!/usr/bin/env bash
# tests/e2e/docker.sh: the container scenarios (tests/e2e/lib.sh) against a
# real dockerd that this script starts by hand, in the background, with its
# own data root, exec root, pidfile and socket under a temporary directory
# (vfs storage, no iptables, no bridge), and stops by its PID on exit.
# docker-compose (Debian's 1.29) talks to the same socket.
#
# Needs root and the Debian packages docker.io, docker-compose,
# busybox-static, acl (tests/e2e/run.sh installs them). If dockerd cannot
# start, every scenario is reported as SKIPPED, loudly, with dockerd's log.
# Last line: `N passed, N failed, N skipped`; exit 1 if any failed.
#
# VOLPERM_STATIC_BIN  the static binary for the image (default build-static/volperm)
# VOLPERM_E2E_KEEP=1  keep the temporary directory (and dockerd's log)
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RUNTIME=docker

if [ "$(id -u)" != 0 ]; then
	skip_all "needs root (it starts dockerd)" build "${SCENARIOS[@]}"
	e2e_summary
	exit
fi
DOCKERD=$(command -v dockerd) || {
	skip_all "dockerd is not installed (apt-get install docker.io)" build "${SCENARIOS[@]}"
	e2e_summary
	exit
}
# The client from the docker.io package matches its daemon; another docker
# client earlier in PATH may be newer than this daemon's API.
DOCKER_CLI=/usr/bin/docker
[ -x "$DOCKER_CLI" ] || DOCKER_CLI=$(command -v docker) || {
	skip_all "no docker client" build "${SCENARIOS[@]}"
	e2e_summary
	exit
}

# A short path: unix socket paths are limited to 108 bytes.
WORK=$(mktemp -d /tmp/vpe2e-docker.XXXXXX)
chmod 0755 "$WORK"
DOCKERD_PID=
SOCK=$WORK/docker.sock

stop_dockerd() {
	[ -n "$DOCKERD_PID" ] || return 0
	if kill -0 "$DOCKERD_PID" 2>/dev/null; then
		kill -TERM "$DOCKERD_PID" 2>/dev/null
		for _ in $(seq 1 60); do
			kill -0 "$DOCKERD_PID" 2>/dev/null || break
			sleep 0.5
		done
		kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID" 2>/dev/null
	fi
	wait "$DOCKERD_PID" 2>/dev/null
	DOCKERD_PID=
	# dockerd stops the containerd it started; if it was killed, stop that
	# containerd by the PID it recorded.
	local cpid
	cpid=$(cat "$WORK/exec/containerd/containerd.pid" 2>/dev/null || true)
	if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null &&
		grep -q containerd "/proc/$cpid/comm" 2>/dev/null; then
		kill -TERM "$cpid" 2>/dev/null
		sleep 1
		kill -0 "$cpid" 2>/dev/null && kill -KILL "$cpid" 2>/dev/null
	fi
}

cleanup() {
	stop_dockerd
	remove_work docker.sh
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "docker.sh: starting $DOCKERD ($("$DOCKERD" --version 2>&1)), log $WORK/dockerd.log"
"$DOCKERD" --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
	--host "unix://$SOCK" --storage-driver vfs --iptables=false --bridge=none \
	>"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!

export DOCKER_HOST=unix://$SOCK
up=0
for _ in $(seq 1 60); do
	if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
		break
	fi
	if "$DOCKER_CLI" version >/dev/null 2>&1; then
		up=1
		break
	fi
	sleep 0.5
done
if [ "$up" != 1 ]; then
	echo "docker.sh: dockerd did not start; the end of its log:"
	tail -n 30 "$WORK/dockerd.log" | sed 's/^/    /'
	reason=$(grep -E 'level=(fatal|error)|failed' "$WORK/dockerd.log" | tail -n 1)
	skip_all "dockerd did not start here: ${reason:-see its log above}" build "${SCENARIOS[@]}"
	e2e_summary
	exit
fi
echo "docker.sh: dockerd $("$DOCKER_CLI" version --format '{{.Server.Version}}' 2>/dev/null) is up (pid $DOCKERD_PID)"

mkdir -p "$WORK/bin"
cat >"$WORK/bin/docker" <<WRAP
#!/bin/sh
export DOCKER_HOST=unix://$SOCK DOCKER_BUILDKIT=1
exec $DOCKER_CLI "\$@"
WRAP
chmod +x "$WORK/bin/docker"
RT=$WORK/bin/docker

DC=
if command -v docker-compose >/dev/null 2>&1; then
	DC="env DOCKER_HOST=unix://$SOCK docker-compose --ansi never"
	echo "docker.sh: $(docker-compose version --short 2>/dev/null | head -n 1 | sed 's/^/docker-compose /')"
else
	echo "docker.sh: docker-compose is not installed: the compose scenarios are skipped"
fi

sc_build() { e2e_build_images || exit 1; }
run_scenario build
if [ "$FAILED" -gt 0 ]; then
	skip_all "the images could not be built (the failure is counted above)" "${SCENARIOS[@]}"
else
	for s in "${SCENARIOS[@]}"; do
		run_scenario "$s"
	done
fi
if [ "$FAILED" -gt 0 ]; then
	echo "docker.sh: the end of dockerd's log:"
	tail -n 15 "$WORK/dockerd.log" | sed 's/^/    /'
fi
e2e_summary
