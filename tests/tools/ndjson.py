#!/usr/bin/env python3
"""Check and query volperm's --json output (NDJSON: one object per line).

usage:
  ndjson.py validate FILE          every line is a JSON object with "event";
                                   exactly one "summary" event, the last line
  ndjson.py summary FILE KEY       print summary[KEY] (dotted: skip_reasons.device)
  ndjson.py count FILE EVENT [K=V] number of EVENT events (optionally with field K == V)
  ndjson.py paths FILE EVENT ROOT [K=V]
                                   the paths of EVENT events, relative to ROOT,
                                   escaped like snapshot.py (uses path_b64 when
                                   present), sorted, one a line
Exits 1 with a message on stderr when FILE is not valid NDJSON.
"""
import json
import os
import sys

from vptest import event_path, rel


def load(path):
    evs = []
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        die("%s: last line is not terminated by a newline" % path)
    for i, raw in enumerate(data.split(b"\n")[:-1] if data else [], 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            die("%s:%d: not UTF-8: %s" % (path, i, e))
        try:
            o = json.loads(line)
        except ValueError as e:
            die("%s:%d: not JSON: %s: %r" % (path, i, e, line[:200]))
        if not isinstance(o, dict) or not isinstance(o.get("event"), str):
            die("%s:%d: not an object with an \"event\" string: %r" % (path, i, line[:200]))
        evs.append(o)
    return evs


def die(msg):
    sys.stderr.write("ndjson.py: %s\n" % msg)
    sys.exit(1)


def match(o, kvs):
    for kv in kvs:
        k, _, v = kv.partition("=")
        if str(o.get(k)) != v:
            return False
    return True


def main():
    if len(sys.argv) < 3:
        die(__doc__)
    cmd, path = sys.argv[1], sys.argv[2]
    evs = load(path)
    if cmd == "validate":
        sums = [i for i, o in enumerate(evs) if o["event"] == "summary"]
        if len(sums) != 1:
            die("%s: %d summary events, expected 1" % (path, len(sums)))
        if sums[0] != len(evs) - 1:
            die("%s: the summary event is not the last line" % path)
        return
    if cmd == "summary":
        s = [o for o in evs if o["event"] == "summary"]
        if not s:
            die("%s: no summary event" % path)
        v = s[-1]
        for k in sys.argv[3].split("."):
            if not isinstance(v, dict) or k not in v:
                die("%s: summary has no %s" % (path, sys.argv[3]))
            v = v[k]
        print(json.dumps(v) if not isinstance(v, str) else v)
        return
    if cmd == "count":
        print(sum(1 for o in evs if o["event"] == sys.argv[3] and match(o, sys.argv[4:])))
        return
    if cmd == "paths":
        root = os.fsencode(sys.argv[4]).rstrip(b"/")
        out = []
        for o in evs:
            if o["event"] != sys.argv[3] or not match(o, sys.argv[5:]):
                continue
            out.append(rel(event_path(o), root))
        for p in sorted(out):
            print(p)
        return
    die("unknown command %s" % cmd)


if __name__ == "__main__":
    main()
