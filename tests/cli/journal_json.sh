#!/usr/bin/env bash
# journal list --json names the journal directory JSON-escaped: a directory
# called a"b (and one with a backslash) must give valid JSON whose
# "journal" member decodes to DIR/NAME exactly, with and without PATH.
. "$(dirname "$0")/lib.sh"
setup

V=$W/vol
mktree "$V" 20 --seed 3
for name in 'a"b' 'c\d"'; do
	J=$W/$name
	mkdir -m 0700 -- "$J"
	vp_expect 0 "apply with --journal-dir $name" apply -q --owner 1001:1001 --journal-dir "$J" "$V"
	for with_path in no yes; do
		if [ $with_path = yes ]; then
			vp_expect 0 "journal list --json --journal-dir $name PATH" journal list --json --journal-dir "$J" "$V"
		else
			vp_expect 0 "journal list --json --journal-dir $name" journal list --json --journal-dir "$J"
		fi
		if python3 - "$OUT" "$J" "$V" <<'PY'
import json, os, sys
lines = open(sys.argv[1], "rb").read().decode("utf-8").splitlines()
objs = [json.loads(l) for l in lines]
ok = len(objs) == 1
for o in objs:
    ok &= os.path.dirname(o["journal"]) == sys.argv[2]
    ok &= os.path.basename(o["journal"]).startswith("vp-")
    ok &= o["root"] == sys.argv[3] and o["state"] == "committed"
sys.exit(0 if ok else 1)
PY
		then pass "journal list --json ($name, PATH: $with_path): valid JSON naming the directory exactly"
		else fail "journal list --json ($name, PATH: $with_path): $(head -c 300 "$OUT" | cat -v)"; fi
	done
	vp_expect 0 "rollback with --journal-dir $name" rollback -q --journal-dir "$J" "$V"
done
finish
