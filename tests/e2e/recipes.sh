#!/usr/bin/env bash
# tests/e2e/recipes.sh: the recipes that no runtime here can run whole.
#   kubernetes  docs/examples/kubernetes.yaml is valid YAML with the minimal
#               capabilities for the init container and a restricted app
#               container; the init container's args run with the static
#               binary, under uid 0 with only CHOWN and FOWNER, on a scratch
#               tree standing in for /data
#   compose     docs/examples/compose.yaml has the fields the docs promise,
#               and docker-compose accepts it (`config`)
#   shell       docs/examples/docker-run.sh parses (sh -n)
# (docker.sh and podman.sh run compose.yaml, docker-run.sh and
# exec.Containerfile for real; install.sh the systemd unit.)
# Last line: `N passed, N failed, N skipped`; exit 1 if any failed.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RUNTIME=recipes
WORK=$(mktemp -d /tmp/vpe2e-recipes.XXXXXX)
chmod 0755 "$WORK"
trap 'rm -rf "$WORK"' EXIT

have_yaml() { python3 -c "import yaml" 2>/dev/null; }

sc_kubernetes() {
	if ! have_yaml; then
		echo "    python3 yaml (python3-yaml) is missing"
		exit 77
	fi
	expect 0 python3 - "$EXAMPLES/kubernetes.yaml" <<-'PY'
		import sys, yaml
		docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
		kinds = [d["kind"] for d in docs]
		assert "Deployment" in kinds, kinds
		dep = next(d for d in docs if d["kind"] == "Deployment")
		spec = dep["spec"]["template"]["spec"]
		init = spec["initContainers"][0]
		sc = init["securityContext"]
		assert sc["runAsUser"] == 0 and sc["allowPrivilegeEscalation"] is False, sc
		assert sc["readOnlyRootFilesystem"] is True, sc
		assert sc["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN", "FOWNER"]}, sc
		mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
		assert "/data" in mounts and "/var/lib/volperm" in mounts, mounts
		app = spec["containers"][0]
		asc = app["securityContext"]
		assert asc["runAsNonRoot"] is True and asc["runAsUser"] == 1001, asc
		assert asc["allowPrivilegeEscalation"] is False, asc
		assert asc["capabilities"] == {"drop": ["ALL"]}, asc
		assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
		vols = {v["name"] for v in spec["volumes"]}
		assert set(mounts.values()) <= vols, (mounts, vols)
		assert init["args"][-1] == "/data", init["args"]
		print("\n".join(init["args"]))
	PY
	local -a args
	mapfile -t args <<<"$OUT"
	args[${#args[@]} - 1]=$WORK/data
	mkdir -p "$WORK/data/sub"
	echo x >"$WORK/data/sub/f"
	chown -R 1000:1000 "$WORK/data"
	command -v setpriv >/dev/null || fail "setpriv (util-linux) is missing"
	# uid 0 with a bounding set of CHOWN and FOWNER: what the init container has.
	expect 0 env VOLPERM_JOURNAL_DIR="$WORK/journal" \
		setpriv --bounding-set=-all,+chown,+fowner -- "$VOLPERM_STATIC_BIN" "${args[@]}"
	has "changes:   3 entries"
	owners "$WORK/data" 1001:1001
	expect 0 env VOLPERM_JOURNAL_DIR="$WORK/journal" \
		setpriv --bounding-set=-all,+chown,+fowner -- "$VOLPERM_STATIC_BIN" "${args[@]}"
}

sc_compose() {
	if ! have_yaml; then
		echo "    python3 yaml (python3-yaml) is missing"
		exit 77
	fi
	expect 0 python3 - "$EXAMPLES/compose.yaml" <<-'PY'
		import sys, yaml
		doc = yaml.safe_load(open(sys.argv[1]))
		init, app = doc["services"]["init"], doc["services"]["app"]
		assert init["user"] == "0:0", init["user"]
		assert init["cap_drop"] == ["ALL"], init["cap_drop"]
		assert init["cap_add"] == ["CHOWN", "FOWNER"], init["cap_add"]
		assert init["network_mode"] == "none" and init["read_only"] is True
		assert app["user"] == "1001:1001", app["user"]
		assert app["depends_on"] == {"init": {"condition": "service_completed_successfully"}}
		for svc in (init, app):
		    for m in svc["volumes"]:
		        if m["source"] == "app-data":
		            assert m["volume"]["nocopy"] is True, m
		assert any(m["target"] == "/var/lib/volperm" for m in init["volumes"])
	PY
	if command -v docker-compose >/dev/null 2>&1; then
		expect 0 docker-compose -f "$EXAMPLES/compose.yaml" config -q
	fi
}

sc_shell() {
	expect 0 sh -n "$EXAMPLES/docker-run.sh"
	[ -x "$EXAMPLES/docker-run.sh" ] || fail "docs/examples/docker-run.sh is not executable"
	if command -v shellcheck >/dev/null 2>&1; then
		expect 0 shellcheck -s sh "$EXAMPLES/docker-run.sh"
	fi
}

if [ ! -x "$VOLPERM_STATIC_BIN" ]; then
	echo "recipes.sh: no static binary at $VOLPERM_STATIC_BIN"
	FAILED=$((FAILED + 1))
fi
for s in kubernetes compose shell; do
	run_scenario "$s"
done
e2e_summary
