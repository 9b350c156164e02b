#!/usr/bin/env python3
"""Snapshot server and checks for volperm's crash tests (tests/crash/).

The crash tests take hundreds of metadata snapshots. Starting Python for
each one costs more than the volperm run being checked, so crashlib.sh
starts this script once as a bash coprocess and talks to it line by line.
Snapshots are tests/tools/snapshot.py's own (imported, not copied): same
format, same fields, same escaping.

Protocol: one request per line, fields separated by TABs (the test paths
are mktemp paths: no TAB, no newline). Every reply is one line
"STATUS COUNT [WORDS...]" followed by exactly COUNT detail lines.

  snap DIR OUT                  write DIR's snapshot to OUT      -> ok 0 ENTRIES
  check DIR EXPECTED            DIR's snapshot == file EXPECTED  -> ok 0 ENTRIES
                                                                  | diff K TOTAL
  same A B                      two snapshot files are equal     -> ok 0 | diff K TOTAL
  midstate DIR PRE POST JSON [MODE]   (strict, strict-killpriv or journal)
                                the state of a tree after a crash mid-apply:
                                every entry that is not in its PRE state has a
                                record in the journal (JSON: `volperm journal
                                export --format json`), found by dev/ino; and
                                with MODE "strict" (the default; for policies
                                that make one change per entry, a chown) every
                                entry is exactly in its PRE or its POST state.
                                MODE "journal": the first check only (a policy
                                that chowns, writes ACLs and chmods an entry
                                can be stopped between those steps). MODE
                                "strict-killpriv" (on FUSE): strict, but an
                                entry may also be its PRE state without its
                                capability (killpriv_only below)
                                                               -> ok 0 CHANGED JOURNALED | bad K
  order TRACE KIND              the fault-step trace (VOLPERM_FAULT_TRACE=1
                                output) of a complete apply or rollback
                                (KIND) keeps the write-ahead ordering
                                                               -> ok 0 STEPS | bad K
  quit

It can also be run once from the command line with the same words, e.g.
`crashlib.py check DIR EXPECTED`; it then prints the reply and exits 0 for
"ok", 1 otherwise.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import snapshot  # noqa: E402 (after the path)
from vptest import unesc  # noqa: E402

MAXLINES = 25


def snap_lines(d):
    return snapshot.snapshot(d, False, False)


def as_dict(lines):
    out = {}
    for line in lines:
        cols = line.split("\t")
        out[cols[0]] = cols[1:]
    return out


compare = snapshot.differences


def reply_diff(diffs, words=()):
    if not diffs:
        return ["ok 0 " + " ".join(str(w) for w in words)]
    shown = diffs[:MAXLINES]
    return ["diff %d %d" % (len(shown), len(diffs))] + shown


def killpriv_only(now, before):
    """Through FUSE a chown is two requests: the kernel removes
    security.capability (REMOVEXATTR, setattr_prepare's killpriv) before it
    sends the chown (SETATTR), and a SIGKILL between them ends the syscall.
    The entry then has its before state without the capability."""
    caps = snapshot.FIELDS.index("caps")  # (the values after the path)
    return (now is not None and before is not None and len(now) == len(before) and
            now[caps] == "-" and before[caps] != "-" and
            now[:caps] == before[:caps] and now[caps + 1:] == before[caps + 1:])


def midstate(d, pre, post, js, strict="strict"):
    P, O = snapshot.load(pre), snapshot.load(post)
    S = as_dict(snap_lines(d))
    journaled = set()
    with open(js, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            if rec.get("record") == "entry":
                journaled.add((rec["dev"], rec["ino"]))
    bad = []
    changed = 0
    root = os.fsencode(d)
    for k in sorted(set(P) | set(S)):
        now, before, after = S.get(k), P.get(k), O.get(k)
        if (strict in ("strict", "strict-killpriv") and now != before and now != after and
                not (strict == "strict-killpriv" and killpriv_only(now, before))):
            bad.append("%s: in neither state: now %s, before %s, after %s" %
                       (k, now and "\t".join(now), before and "\t".join(before),
                        after and "\t".join(after)))
            continue
        if now == before:
            continue
        if now is None:
            bad.append("%s: gone" % k)
            continue
        changed += 1
        p = root if k == "." else os.path.join(root, unesc(k))
        st = os.lstat(p)
        if (st.st_dev, st.st_ino) not in journaled:
            bad.append("%s: changed (now %s) but no journal record for dev %d ino %d "
                       "(write-ahead violated)" % (k, "\t".join(now), st.st_dev, st.st_ino))
    if bad:
        return ["bad %d %d" % (min(len(bad), MAXLINES), len(bad))] + bad[:MAXLINES]
    return ["ok 0 %d %d" % (changed, len(journaled))]


APPLY_CHANGES = ("chown", "setxattr", "chmod")
ROLLBACK_CHANGES = ("rollback-chown", "rollback-chmod", "rollback-setxattr")
APPLY_NAMES = {"journal-header-write", "journal-header-fsync", "journal-dir-fsync",
               "journal-write", "journal-fdatasync", "syncfs"} | set(APPLY_CHANGES)
ROLLBACK_NAMES = {"journal-write", "journal-fdatasync", "rollback-chown", "rollback-chmod",
                  "rollback-setxattr", "rollback-syncfs"}


def order(trace, kind):
    steps = []
    with open(trace, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "fault-step":
                steps.append((int(parts[1]), parts[2]))
    bad = []
    names = [n for _, n in steps]
    if [i for i, _ in steps] != list(range(1, len(steps) + 1)):
        bad.append("step numbers are not 1..%d in order" % len(steps))
    known = APPLY_NAMES if kind == "apply" else ROLLBACK_NAMES
    for i, n in enumerate(names):
        if n not in known:
            bad.append("step %d: unexpected step %s in a %s" % (i + 1, n, kind))
    # A change is made only when every journal write before it has been
    # synced: never between a journal-write and its fdatasync.
    change = APPLY_CHANGES if kind == "apply" else ROLLBACK_CHANGES
    unsynced = False
    seen_journal = False
    for i, n in enumerate(names):
        if n in ("journal-write", "journal-header-write"):
            unsynced = True
            seen_journal = True
        elif n in ("journal-fdatasync", "journal-dir-fsync"):
            unsynced = False
        elif n == "journal-header-fsync":
            pass
        elif n in change:
            if not seen_journal:
                bad.append("step %d: %s before any journal write" % (i + 1, n))
            if unsynced:
                bad.append("step %d: %s after a journal write that was not synced yet" % (i + 1, n))
    if kind == "apply":
        want = ["journal-header-write", "journal-header-fsync", "journal-dir-fsync"]
        if names[:3] != want:
            bad.append("the first steps are %s, expected %s" % (names[:3], want))
        # ... then batches: journal-write, journal-fdatasync, chown...
        # and the end: syncfs, then the COMMIT mark written and synced.
        if names[-3:] != ["syncfs", "journal-write", "journal-fdatasync"]:
            bad.append("the last steps are %s, expected syncfs, journal-write, "
                       "journal-fdatasync (commit mark after the volume sync)" % names[-3:])
        changes = [i for i, n in enumerate(names) if n in change]
        if "syncfs" not in names:
            bad.append("no syncfs before the commit mark")
        elif changes and names.index("syncfs") < changes[-1]:
            bad.append("a change after the syncfs that precedes the commit")
    else:
        # ROLLBACK_BEGIN synced before the first restore; the volume synced
        # before the ROLLED_BACK mark.
        if names[:2] != ["journal-write", "journal-fdatasync"]:
            bad.append("a rollback must start with its ROLLBACK_BEGIN mark written and "
                       "synced, got %s" % names[:2])
        if names[-3:] != ["rollback-syncfs", "journal-write", "journal-fdatasync"]:
            bad.append("the last steps are %s, expected rollback-syncfs, journal-write, "
                       "journal-fdatasync (rolled-back mark after the volume sync)" % names[-3:])
        last_change = max([i for i, n in enumerate(names) if n in change] or [-1])
        if "rollback-syncfs" in names and last_change > names.index("rollback-syncfs"):
            bad.append("a restore after the rollback's syncfs")
    if bad:
        return ["bad %d %d" % (min(len(bad), MAXLINES), len(bad))] + bad[:MAXLINES]
    return ["ok 0 %d" % len(steps)]


def handle(words):
    cmd = words[0]
    if cmd == "snap":
        lines = snap_lines(words[1])
        with open(words[2], "w", encoding="ascii") as f:
            f.write("".join(l + "\n" for l in lines))
        return ["ok 0 %d" % len(lines)]
    if cmd == "check":
        lines = snap_lines(words[1])
        return reply_diff(compare(snapshot.load(words[2]), as_dict(lines)), [len(lines)])
    if cmd == "same":
        return reply_diff(compare(snapshot.load(words[1]), snapshot.load(words[2])))
    if cmd == "midstate":
        return midstate(*words[1:6])
    if cmd == "order":
        return order(words[1], words[2])
    return ["error 0 unknown-request"]


def serve():
    for line in sys.stdin:
        words = line.rstrip("\n").split("\t")
        if words == ["quit"]:
            break
        try:
            out = handle(words)
        except Exception as e:  # report, keep serving
            msg = ("%s: %s" % (type(e).__name__, e)).replace("\n", " ")
            out = ["error 1 exception", msg]
        sys.stdout.write("".join(l.replace("\n", " ") + "\n" for l in out))
        sys.stdout.flush()


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "serve":
        serve()
        return
    out = handle(sys.argv[1:])
    print("\n".join(out))
    sys.exit(0 if out[0].startswith("ok") else 1)


if __name__ == "__main__":
    main()
