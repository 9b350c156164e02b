#!/usr/bin/env bash
# tests/e2e/run.sh: volperm end to end, with real container runtimes and a
# real package install. As root on Debian it first installs what is missing
# (docker.io docker-compose podman runc busybox-static acl python3-yaml, for
# rootless uidmap and rootlesskit, and the build dependencies) with apt-get,
# builds the static binary into
# build-static/ (incremental), then runs:
#   recipes.sh  kubernetes.yaml, compose.yaml and docker-run.sh checks
#   install.sh  cmake --install, bash completion, cpack -G DEB, dpkg -i/-r,
#               the systemd unit
#   docker.sh   a private dockerd (+ docker-compose): the container scenarios
#   podman.sh   rootful podman (+ docker-compose on podman's API service)
#   rootless.sh rootless podman and rootless docker (dockerd-rootless.sh) as a
#               user with a subuid range: --userns, podman unshare volperm
#   slurm.sh    sharded runs on a single-node Slurm started by the test
#               (munge, slurmctld, slurmd): an array job and a finalize job,
#               a task killed mid-apply and requeued, rollback --run
#   mpi.sh      sharded runs as mpirun -n 4 ranks (Open MPI)
#   k8s.sh      every Kubernetes manifest under docs/ validated offline
#               against the API schemas (tests/tools/k8s_validate.js, npm's
#               kubernetes-models); no cluster runs here
# A runtime that cannot start here is reported loudly and its scenarios are
# counted as skipped, never as passed.
#
#   tests/e2e/run.sh [recipes] [install] [docker] [podman] [rootless] [slurm] [mpi] [k8s]
#                                                            (default: all)
#
# CTest runs each part as `tests/e2e/run.sh PART` (a test e2e/PART for every
# tests/e2e/*.sh but lib.sh and this file; `ctest -L e2e`), so a new part
# needs no edit here.
#
# Environment:
#   VOLPERM_STATIC_BIN       use this static binary instead of building build-static/
#   VOLPERM                  the binary slurm.sh and mpi.sh run (default build/volperm;
#                            they need no static binary)
#   VOLPERM_E2E_NO_INSTALL=1 never run apt-get
#   VOLPERM_E2E_SCENARIOS    only these container scenarios (see lib.sh)
#   VOLPERM_E2E_KEEP=1       keep the temporary directories
# Last line: `N passed, N failed, N skipped`; exit 1 if anything failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD
E2E=$REPO/tests/e2e

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(recipes install docker podman rootless slurm mpi k8s)
for p in "${parts[@]}"; do
	case $p in run | lib) p= ;; esac
	[ -n "$p" ] && [ -f "$E2E/$p.sh" ] || { echo "e2e: no part ${p:-run/lib}" >&2; exit 2; }
done
wants() {
	local p
	for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done
	return 1
}

passed=0 failed=0 skipped=0

# --- dependencies ----------------------------------------------------------------------
have_yaml() { python3 -c 'import yaml' 2>/dev/null || /usr/bin/python3 -c 'import yaml' 2>/dev/null; }
busybox_static() {
	local b
	b=$(command -v busybox) || return 1
	! ldd "$b" >/dev/null 2>&1
}
missing=()
need() { # need PACKAGE TEST...
	local pkg=$1
	shift
	"$@" >/dev/null 2>&1 || missing+=("$pkg")
}
need cmake command -v cmake
need gcc command -v gcc
need make command -v make
need pkg-config command -v pkg-config
need libacl1-dev pkg-config --exists libacl
need libpopt-dev pkg-config --exists popt
need acl command -v getfacl
need util-linux command -v setpriv
need python3-yaml have_yaml
if wants docker || wants podman; then
	need busybox-static busybox_static
	need docker-compose command -v docker-compose
fi
if wants docker; then
	need docker.io command -v dockerd
fi
if wants podman; then
	need podman command -v podman
	need runc command -v runc
fi
if wants rootless; then
	# rootless podman: newuidmap/newgidmap (setuid) from uidmap; vfs storage
	# and --network none, so neither fuse-overlayfs nor slirp4netns. Rootless
	# docker: docker.io's contrib/dockerd-rootless.sh runs under rootlesskit
	# (--net=host: no slirp4netns either).
	need busybox-static busybox_static
	need podman command -v podman
	need runc command -v runc
	need uidmap command -v newuidmap
	need docker.io command -v dockerd
	need rootlesskit command -v rootlesskit
fi
if wants slurm; then
	# (daemons: in /usr/sbin, which a non-root PATH may lack)
	need munge test -x /usr/sbin/munged
	need slurmctld test -x /usr/sbin/slurmctld
	need slurmd test -x /usr/sbin/slurmd
	need slurm-client command -v sbatch
fi
if wants mpi; then
	need openmpi-bin command -v mpirun
fi
if wants k8s; then
	need nodejs command -v node
	need npm command -v npm
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "e2e: missing: ${missing[*]}"
	if [ -z "${VOLPERM_E2E_NO_INSTALL:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q >/dev/null
		apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/volperm-e2e-apt.log 2>&1 ||
			{ echo "e2e: apt-get install failed:"; tail -n 20 /tmp/volperm-e2e-apt.log; }
	else
		echo "e2e: not installing them (not root, no apt-get, or VOLPERM_E2E_NO_INSTALL)"
	fi
fi
# python3 may be one without yaml while Debian's has it.
if ! python3 -c 'import yaml' 2>/dev/null && /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
	mkdir -p "${TMPDIR:-/tmp}/volperm-e2e-py"
	ln -sf /usr/bin/python3 "${TMPDIR:-/tmp}/volperm-e2e-py/python3"
	export PATH="${TMPDIR:-/tmp}/volperm-e2e-py:$PATH"
fi

# --- the static binary ----------------------------------------------------------------------
static_ok=1
# (the container parts run the static binary; install, slurm, mpi and k8s do not)
needs_static() {
	case $1 in install | slurm | mpi | k8s) return 1 ;; esac
}
want_static=0
for p in "${parts[@]}"; do needs_static "$p" && want_static=1; done
if [ -z "${VOLPERM_STATIC_BIN:-}" ] && [ "$want_static" = 1 ]; then
	echo "e2e: building the static binary in build-static/"
	if { [ -f build-static/CMakeCache.txt ] ||
		cmake -S . -B build-static -G "Unix Makefiles" -DVOLPERM_STATIC=ON -DVOLPERM_TESTS=OFF \
			-DCMAKE_BUILD_TYPE=Release >/tmp/volperm-e2e-static.log 2>&1; } &&
		make -C build-static -j"$(nproc 2>/dev/null || echo 2)" >>/tmp/volperm-e2e-static.log 2>&1; then
		export VOLPERM_STATIC_BIN=$REPO/build-static/volperm
		echo "e2e: $("$VOLPERM_STATIC_BIN" --version), $(stat -c %s "$VOLPERM_STATIC_BIN") bytes"
	else
		echo "FAIL: the static build failed:"
		tail -n 30 /tmp/volperm-e2e-static.log
		failed=$((failed + 1))
		static_ok=0
	fi
fi

# --- the parts ----------------------------------------------------------------------------------
run_part() { # run_part NAME: run NAME.sh, add its counts
	local name=$1 log line t0=$SECONDS
	log=$(mktemp "${TMPDIR:-/tmp}/volperm-e2e-$name.XXXXXX")
	echo
	echo "=== e2e $name"
	bash "$E2E/$name.sh" 2>&1 | tee "$log"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -n 1)
	rm -f "$log"
	if [ -z "$line" ]; then
		echo "FAIL: $name.sh ended without its summary line"
		failed=$((failed + 1))
		return
	fi
	set -- $line
	passed=$((passed + $1)) failed=$((failed + $3)) skipped=$((skipped + $5))
	echo "=== e2e $name: $line ($((SECONDS - t0)) s)"
}

for p in "${parts[@]}"; do
	if [ "$static_ok" = 0 ] && needs_static "$p"; then
		echo "SKIP: e2e $p: no static binary (the build failure is counted)"
		skipped=$((skipped + 1))
		continue
	fi
	run_part "$p"
done

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
