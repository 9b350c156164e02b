#!/usr/bin/env bash
# tests/e2e/k8s.sh: the Kubernetes manifests under docs/, validated offline
# against the Kubernetes API schemas (tests/tools/k8s_validate.js, with the
# npm packages kubernetes-models and yaml). No cluster runs here: what the
# manifests would do is not tested, only that the API would take them.
#
# Scenarios:
#   docs       every manifest under docs/ (YAML files, and ```yaml blocks of
#              the Markdown pages) is valid, docs/examples/kubernetes-shards.yaml
#              among them
#   rejects    the validator can fail: broken copies of kubernetes-shards.yaml
#              (a wrong type, an unknown field, a list given as a map, a
#              missing required field, an unknown kind, a duplicate key) are
#              each refused with the reason
#   shards     kubernetes-shards.yaml is docs/scale-out.md's recipe (the same
#              documents) and has what the recipe relies on: an Indexed Job of
#              N completions with backoffLimitPerIndex and restartPolicy Never,
#              `apply --recover --run $(RUN_ID) --shard auto`, then finalize
#
# Needs node and npm (Debian's nodejs npm; tests/e2e/run.sh installs them):
# without them every scenario is SKIPPED, loudly. The npm packages are
# installed by this test into a temporary directory (removed at exit), from
# the npm registry, unless VOLPERM_K8S_NODE_MODULES names a node_modules
# directory that has them (then it is used as it is).
# Last line: `N passed, N failed, N skipped`; exit 1 if any failed.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RUNTIME=k8s
SCENARIOS=(docs rejects shards)
VALIDATE=$REPO/tests/tools/k8s_validate.js
SHARDS_YAML=$EXAMPLES/kubernetes-shards.yaml
# kubernetes-models 4.x runs on Debian 12's node 18 (5.x wants node 22).
NPM_PKGS=(kubernetes-models@4.5.1 yaml@2)

for c in node npm; do
	command -v "$c" >/dev/null || {
		skip_all "$c is not installed (apt-get install nodejs npm)" "${SCENARIOS[@]}"
		e2e_summary
		exit
	}
done

WORK=$(mktemp -d /tmp/vpe2e-k8s.XXXXXX)
trap 'remove_work k8s.sh' EXIT
trap 'exit 143' TERM INT

if [ -n "${VOLPERM_K8S_NODE_MODULES:-}" ]; then
	export NODE_PATH=$VOLPERM_K8S_NODE_MODULES
else
	t0=$SECONDS
	mkdir -p "$WORK/npm"
	if ! (cd "$WORK/npm" && npm install --no-audit --no-fund --no-save --loglevel=error \
		--cache "$WORK/npm-cache" "${NPM_PKGS[@]}") >"$WORK/npm.log" 2>&1; then
		echo "FAIL: npm install ${NPM_PKGS[*]} failed:"
		tail -n 20 "$WORK/npm.log"
		FAILED=$((FAILED + 1))
		skip_all "the npm packages could not be installed" "${SCENARIOS[@]}"
		e2e_summary
		exit
	fi
	export NODE_PATH=$WORK/npm/node_modules
	echo "npm: ${NPM_PKGS[*]} installed in $((SECONDS - t0)) s"
fi

sc_docs() {
	expect 0 node "$VALIDATE" "$REPO/docs"
	show_out
	has "ok $SHARDS_YAML#1 batch/v1 Job volperm-shards"
	has "ok $SHARDS_YAML#2 batch/v1 Job volperm-finalize"
	has "ok $EXAMPLES/kubernetes.yaml#2 apps/v1 Deployment my-app"
	has "ok $REPO/docs/scale-out.md:"
	has " 0 invalid"
}

# broken NAME FROM TO WANT: a copy of kubernetes-shards.yaml with the first
# FROM replaced by TO, to be refused saying WANT (checked by check_broken,
# one validator run for all: each run loads the schemas)
BROKEN=()
broken() {
	local f=$WORK/bad/$1.yaml
	mkdir -p "$WORK/bad"
	python3 - "$SHARDS_YAML" "$f" "$2" "$3" <<-'PY' || fail "cannot derive $1.yaml (is '$2' still in the manifest?)"
		import sys
		src = open(sys.argv[1]).read()
		if sys.argv[3] not in src:
		    sys.exit(1)
		open(sys.argv[2], "w").write(src.replace(sys.argv[3], sys.argv[4], 1))
	PY
	BROKEN+=("$1" "$4")
}
check_broken() {
	local i line
	expect 1 node "$VALIDATE" "$WORK/bad"
	for ((i = 0; i < ${#BROKEN[@]}; i += 2)); do
		line=$(grep -F "FAIL $WORK/bad/${BROKEN[i]}.yaml#1" <<<"$OUT" | head -n 1)
		[ -n "$line" ] || { show_out; fail "${BROKEN[i]}.yaml was not refused"; }
		grep -qF -- "${BROKEN[i + 1]}" <<<"$line" || { show_out; fail "${BROKEN[i]}.yaml: expected '${BROKEN[i + 1]}'"; }
		echo "    ${BROKEN[i]}: ${line#*"$WORK/bad/"}"
	done
	# the intact second document of each file still passes
	[ "$(grep -c '^ok .*#2 batch/v1 Job volperm-finalize$' <<<"$OUT")" = $((${#BROKEN[@]} / 2)) ] ||
		{ show_out; fail "expected every copy's finalize Job to pass"; }
}

sc_rejects() {
	broken wrong-type "completions: 8" "completions: \"8\"" "spec/completions must be integer"
	broken unknown-field "backoffLimitPerIndex: 2" "backoffLimitPerIdx: 2" \
		"unknown field spec.backoffLimitPerIdx"
	broken unknown-nested "readOnlyRootFilesystem: true" "readOnlyRootFileSystem: true" \
		"unknown field spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem"
	broken list-as-map "          env:
            - name: RUN_ID
              valueFrom: {configMapKeyRef: {name: volperm-run, key: id}}" "          env:
            RUN_ID: {configMapKeyRef: {name: volperm-run, key: id}}" "containers/0/env must be array"
	broken missing-required "        - name: volperm
          image:" "        - image:" "containers/0 must have required property"
	broken bad-enum "restartPolicy: Never     #" "restartPolicy: Sometimes     #" "restartPolicy must be equal to one of the allowed values"
	broken unknown-kind "kind: Job" "kind: IndexedJob" 'no schema for apiVersion "batch/v1", kind "IndexedJob"'
	broken duplicate-key "  parallelism: 8" "  parallelism: 8
  parallelism: 4" "YAML: Map keys must be unique"
	check_broken
	# and no manifest at all is an error, not a pass
	mkdir -p "$WORK/empty"
	printf 'services:\n  app: {image: x}\n' >"$WORK/empty/compose.yaml"
	expect 1 node "$VALIDATE" "$WORK/empty"
	has "no Kubernetes manifest found"
}

sc_shards() {
	expect 0 node - "$SHARDS_YAML" "$REPO/docs/scale-out.md" <<-'JS'
		const fs = require("fs"), YAML = require("yaml"), assert = require("assert");
		const docs = (t) => YAML.parseAllDocuments(t).map((d) => d.toJS()).filter((d) => d);
		const ex = docs(fs.readFileSync(process.argv[2], "utf8"));
		const md = fs.readFileSync(process.argv[3], "utf8");
		const blocks = [...md.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => docs(m[1]));
		assert(blocks.some((b) => JSON.stringify(b) === JSON.stringify(ex)),
		       "docs/scale-out.md has no yaml block with the documents of kubernetes-shards.yaml");
		const [shards, fin] = ex;
		assert.equal(shards.kind, "Job");
		assert.equal(fin.kind, "Job");
		const s = shards.spec, c = s.template.spec.containers[0];
		assert.equal(s.completionMode, "Indexed");
		assert.equal(s.completions, s.parallelism);
		assert(s.backoffLimitPerIndex >= 1);
		assert.equal(s.maxFailedIndexes, 0);
		assert.equal(s.template.spec.restartPolicy, "Never");
		const a = c.args.join(" ");
		assert.match(a, /^apply --recover --run \$\(RUN_ID\) --shard auto --journal-dir \/journal \/data$/);
		const f = fin.spec.template.spec.containers[0].args.join(" ");
		assert.match(f, /^shard finalize --run \$\(RUN_ID\) --journal-dir \/journal \/data$/);
		for (const j of ex) {
		  const k = j.spec.template.spec.containers[0];
		  assert.deepEqual(k.securityContext.capabilities,
		                   {drop: ["ALL"], add: ["CHOWN", "FOWNER", "DAC_READ_SEARCH"]});
		  assert.equal(k.securityContext.allowPrivilegeEscalation, false);
		  assert.deepEqual(k.volumeMounts.map((m) => m.mountPath), ["/data", "/journal"]);
		}
		console.log("shards: " + a + "\nfinalize: " + f);
	JS
	show_out
}

for s in "${SCENARIOS[@]}"; do
	run_scenario "$s"
done
e2e_summary
