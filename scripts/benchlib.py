#!/usr/bin/env python3
"""The statistics and the reports of scripts/bench.

scripts/bench mounts, copies and times commands (shell); every figure it
prints after that comes from here: medians, ratios against the baselines,
the issues' targets marked met or NOT met, slowfs request counts per entry,
syscalls per entry. Run by scripts/bench as

  benchlib.py local RESULTS SIZES JOURNAL_SIZES   the local and FUSE tables, peak
                                                  RSS, scaling, the targets
  benchlib.py depth RESULTS DEPTH                 deep chain vs flat directory
  benchlib.py slowfs RESULTS REQUESTS             the slowfs table, issue 14's targets
  benchlib.py idmap RESULTS                       idmapped mount vs chown -R (issue 16)
  benchlib.py profile DIR ENTRIES                 strace -c -f counts per entry
  benchlib.py per-entry COUNT ENTRIES             COUNT / ENTRIES, 2 decimals
  benchlib.py markdown RESULTS [TREE...]          medians as a Markdown table (for
                                                  docs/benchmarks.md)
  benchlib.py depth-tree DIR COUNT deep|flat      build the depth section's tree

RESULTS is the bench's TSV, one line a timed command (RESULTS_FIELDS; older
files may lack the last columns); JOURNAL_SIZES lines are `TREE RUN BYTES`;
REQUESTS lines are `ROW<TAB>RUN<TAB>REQUESTS`. Unit test:
tests/tools/test_benchlib.py (CTest unit/py_benchlib). Importable: nothing
runs at import time.
"""
import os
import re
import statistics
import sys
from collections import defaultdict

RESULTS_FIELDS = ["tree", "entries", "row", "run", "seconds", "maxrss_kib", "exit",
                  "cpu_seconds", "load1", "server_cpu_seconds"]


# ---- statistics ----

def median(v):
    """The median of a list, or None for an empty one (a row that did not run)."""
    return statistics.median(v) if v else None


def ratio(num, den):
    """num / den, or None when either is missing or den is 0."""
    if num is None or not den:
        return None
    return num / den


def per_entry(count, entries):
    """A count per entry, as the bench prints it ("%.2f")."""
    return "%.2f" % (count / entries) if entries else "-"


def target_factor(x):
    """A target factor as the tables write it: 1.0, 1.5, 0.25."""
    return "%.1f" % x if round(x, 1) == x else "%.2f" % x


def fmt(x, w=8):
    """A number of seconds in a column of width w; "n/a" for None."""
    return ("%*.2f" % (w, x)) if x is not None else " " * (w - 3) + "n/a"


class Runs:
    """The timed runs of one RESULTS file, by (tree, row):
    secs, cpu (CPU seconds), rss (KiB), server (FUSE server CPU seconds),
    exits (the set of exit codes, strings); order[tree] is the rows in
    the order they first ran, trees the trees in that order, entries[tree]
    the tree's entries (with its root), load every 1-minute load average."""

    def __init__(self):
        self.secs = defaultdict(list)
        self.cpu = defaultdict(list)
        self.rss = defaultdict(list)
        self.server = defaultdict(list)
        self.exits = defaultdict(set)
        self.order = defaultdict(list)
        self.trees = []
        self.entries = {}
        self.load = []

    def add(self, f):
        """One RESULTS line, split on tabs."""
        tree, n, row, _run, sec, rss, rc = f[:7]
        if len(f) >= 9:
            self.cpu[tree, row].append(float(f[7]))
            self.load.append(float(f[8]))
        if len(f) >= 10 and tree.startswith("fuse-"):
            self.server[tree, row].append(float(f[9]))
        if row not in self.order[tree]:
            self.order[tree].append(row)
        if tree not in self.trees:
            self.trees.append(tree)
        self.entries[tree] = int(n)
        self.secs[tree, row].append(float(sec))
        self.rss[tree, row].append(int(rss or 0))
        self.exits[tree, row].add(rc)

    def med(self, tree, row):
        return median(self.secs.get((tree, row)))

    def cmed(self, tree, row):
        return median(self.cpu.get((tree, row)))

    def combine(self, tree, a, b, name):
        """Row name = rows a + b of the same run (chown -R, then its sync)."""
        sa, sb = self.secs.get((tree, a)), self.secs.get((tree, b))
        if not (sa and sb):
            return
        self.secs[tree, name] = [x + y for x, y in zip(sa, sb)]
        ca, cb = self.cpu.get((tree, a)), self.cpu.get((tree, b))
        if ca and cb:
            self.cpu[tree, name] = [x + y for x, y in zip(ca, cb)]
        self.rss[tree, name] = self.rss[tree, a]
        self.exits[tree, name] = self.exits[tree, a] | self.exits[tree, b]


def read_results(path, keep=lambda tree: True):
    """A RESULTS file (header line first) as Runs; only the trees keep(tree)."""
    runs = Runs()
    with open(path) as fh:
        for i, line in enumerate(fh):
            if i == 0:
                continue
            f = line.rstrip("\n").split("\t")
            if len(f) < 7 or not keep(f[0]):
                continue
            runs.add(f)
    return runs


# ---- the local and FUSE tables ----

# (label, row key, (baseline row, target factor or None, baseline's short name))
LOCAL_ROWS = [
    ("find T -uid U", "find -uid", None),
    ("chown -R -h U:G (fresh)", "chown -R fresh", None),
    ("chown -R -h U:G (fresh) + sync -f", "chown -R fresh + sync", None),
    ("chown -R -h U:G (already correct)", "chown -R correct", None),
    ("find ! -user/! -group -exec chown -h {} +", "find -exec chown", None),
    ("setfacl -R -P -m u:U:rwX", "setfacl -R -m", None),
    ("volperm plan", "volperm plan", ("find -uid", 1.0, "find -uid")),
    ("volperm apply (fresh, journaled, durable)", "volperm apply", ("chown -R fresh", 1.0, "chown -R fresh")),
    ("volperm re-apply (already compliant)", "volperm re-apply", ("chown -R correct", 0.7, "chown -R correct")),
    ("volperm rollback", "volperm rollback", ("volperm apply", 1.5, "apply")),
    ("volperm apply --grant u:U:rwX (journaled)", "volperm grant", ("setfacl -R -m", 0.5, "setfacl")),
    ("volperm --grant re-apply (already granted)", "volperm grant re-apply", ("setfacl -R -m", None, "setfacl")),
    ("volperm rollback of the --grant", "volperm grant rollback", ("volperm grant", 1.5, "grant")),
]
FUSE_ROWS = [
    ("find M -uid U (through bindfs)", "find -uid", None),
    ("chown -R -h U:G M (fresh, through bindfs)", "chown -R fresh", None),
]
STATIC_ROWS = {key for _, key, _ in LOCAL_ROWS} | {"sync after chown -R", "chown -R fresh + sync"}
VOLPERM_KEYS = ("volperm plan", "volperm apply", "volperm re-apply", "volperm rollback",
                "volperm grant", "volperm grant re-apply", "volperm grant rollback")
SCALING_KEYS = ("find -uid", "chown -R fresh", "chown -R correct", "find -exec chown",
                "setfacl -R -m") + VOLPERM_KEYS
RSS_TARGET_MIB = 32


def jobs_rows(runs, tree, fuse):
    """The rows of the --jobs runs (and the FUSE section's plan, apply and
    rollback), in the order they ran, with their baselines and targets."""
    out = []
    apply_max = 0.25 if fuse else 1.0
    for key in runs.order[tree]:
        if key in STATIC_ROWS and not fuse:
            continue
        m = re.search(r"--jobs (\d+)$", key)
        jobs = m.group(1) if m else None
        if key.startswith("volperm plan"):
            out.append((key, key, ("find -uid", 1.0, "find -uid")))
        elif key.startswith("volperm apply"):
            out.append((key + ("" if jobs or not fuse else " (no --jobs)"), key,
                        ("chown -R fresh", apply_max, "chown -R")))
        elif key.startswith("volperm rollback"):
            out.append((key, key, ("volperm apply --jobs %s" % jobs if jobs else "volperm apply", 1.5, "apply")))
    return out


def read_journal_sizes(path):
    """tree -> [journal bytes after each apply]; {} without the file."""
    sizes = defaultdict(list)
    try:
        with open(path) as fh:
            for line in fh:
                t, _r, b = line.split()
                sizes[t].append(int(b))
    except OSError:
        pass
    return sizes


def local_report(results, sizes, journal_sizes, ncpu=None, out=sys.stdout):
    """The local and FUSE tables, peak RSS, scaling and the targets; returns
    the verdicts [(tree, what, verdict)]."""
    def p(s=""):
        print(s, file=out)

    runs = read_results(results, keep=lambda t: not t.startswith(("deep-", "flat-")))
    for tree in runs.trees:
        runs.combine(tree, "chown -R fresh", "sync after chown -R", "chown -R fresh + sync")
    J = read_journal_sizes(journal_sizes)
    ncpu = ncpu or os.cpu_count() or 1
    T, R, N = runs.secs, runs.rss, runs.entries
    if runs.load:
        L = runs.load
        p("1-minute load average before the timed commands: min %.2f, median %.2f, max %.2f (%d CPUs)%s" %
          (min(L), statistics.median(L), max(L), ncpu,
           "\n  WARNING: other work was running on this machine; wall times are inflated and noisy,"
           "\n  compare min/max and the CPU times, and re-run on a quiet machine before judging margins"
           if max(L) > 0.75 * ncpu else ""))
        p()

    verdicts = []
    for tree in runs.trees:
        n = N[tree]
        fuse = tree.startswith("fuse-")
        p("== %s: %d entries (incl. root), median of %d run(s) ==" %
          (tree, n, len(T[tree, "find -uid"]) or len(T[tree, "volperm apply"])))
        if fuse:
            p("bindfs --multithreaded mirror; \"bindfs cpu\" is the FUSE server's CPU time during the command;"
              " target for apply: >= 4x faster than chown -R (ratio <= 0.25x)")
        p("%-44s %8s %8s %8s %8s %9s %8s  %-30s %-8s %s%s" %
          ("row", "median s", "min s", "max s", "cpu s", "peak RSS", "us/entry", "ratio of medians (target)",
           "target", "cpu ratio", "  bindfs cpu  cpu floor s" if fuse else ""))
        rows = (FUSE_ROWS if fuse else LOCAL_ROWS) + jobs_rows(runs, tree, fuse)
        for label, key, tgt in rows:
            if key == "volperm grant" and not T.get((tree, key)) and not fuse:
                b = runs.med(tree, tgt[0])
                p("%-44s %s  %s" % (label, "not implemented (no --grant yet)",
                                     "baseline setfacl %.2f s; target <= %.1fx" % (b, tgt[1]) if b else ""))
                verdicts.append((tree, "grant <= 0.5x setfacl -R -m", "not implemented"))
                continue
            v = T.get((tree, key))
            if not v:
                continue
            m = statistics.median(v)
            rss = max(R[tree, key]) / 1024.0
            shown_ratio, verdict, cratio = "", "", ""
            if tgt:
                b = runs.med(tree, tgt[0])
                cb, cm = runs.cmed(tree, tgt[0]), runs.cmed(tree, key)
                if cb and cm:
                    cratio = "%.2fx" % (cm / cb)
                if b and tgt[1] is None:  # a ratio for information, not a target
                    shown_ratio = "%.2fx %s" % (m / b, tgt[2])
                elif b:
                    q = m / b
                    shown_ratio = "%.2fx %s (<= %sx)" % (q, tgt[2], target_factor(tgt[1]))
                    verdict = "met" if q <= tgt[1] else "NOT MET"
                    verdicts.append((tree, "%s <= %sx %s" % (key, target_factor(tgt[1]), tgt[2]),
                                     "%s (%.2fx)" % (verdict, q)))
            bad = runs.exits[tree, key] - {"0"}
            extra = ("  exit %s!" % ",".join(sorted(bad))) if bad else ""
            if fuse and runs.server.get((tree, key)):
                # what no parallelism can beat on this machine: the client's and
                # bindfs's CPU time together, spread over every CPU
                sc = statistics.median(runs.server[tree, key])
                floor = ((runs.cmed(tree, key) or 0) + sc) / ncpu
                extra = "  %11.2f  %11.2f" % (sc, floor) + extra
            p("%-44s %s %s %s %s %7.1f M %8.2f  %-30s %-8s %-9s%s" %
              (label, fmt(m), fmt(min(v)), fmt(max(v)), fmt(runs.cmed(tree, key)), rss, m / n * 1e6,
               shown_ratio, verdict, cratio, extra))
        if J[tree]:
            p("volperm journal after apply: %.1f MiB (%.0f bytes/entry)" %
              (max(J[tree]) / 1048576.0, max(J[tree]) / n))
        p()

    # Peak RSS at the largest size and scaling smallest -> largest.
    main = ["t%d" % s for s in sizes if "t%d" % s in runs.trees]
    if main:
        big = main[-1]
        p("== peak RSS at %s (%d entries): target <= %d MiB ==" % (big, N[big], RSS_TARGET_MIB))
        for key in VOLPERM_KEYS:
            if (big, key) in R:
                mib = max(R[big, key]) / 1024.0
                ok = "met" if mib <= RSS_TARGET_MIB else "NOT MET"
                p("  %-20s %6.1f MiB  %s" % (key, mib, ok))
                verdicts.append((big, "%s peak RSS <= %d MiB" % (key, RSS_TARGET_MIB), "%s (%.1f MiB)" % (ok, mib)))
        p()
    if len(main) >= 2:
        small, big = main[0], main[-1]
        k = N[big] / N[small]
        lim = 1.1 * k
        p("== scaling %s -> %s (%.2fx the entries): target time ratio <= %.2fx ==" % (small, big, k, lim))
        for key in SCALING_KEYS:
            a, b = runs.med(small, key), runs.med(big, key)
            if a and b:
                q = b / a
                if key.startswith("volperm"):
                    ok = "met" if q <= lim else "NOT MET"
                    verdicts.append(("%s->%s" % (small, big), "%s time ratio <= %.2fx" % (key, lim),
                                     "%s (%.2fx)" % (ok, q)))
                else:
                    ok = "(baseline)"
                p("  %-20s %8.2f s -> %8.2f s  %5.2fx  %s" % (key, a, b, q, ok))
        p()
    p("== targets ==")
    for tree, what, v in verdicts:
        p("  %-22s %-44s %s" % (tree, what, v))
    return verdicts


# ---- the depth section ----

def depth_report(results, depth, out=sys.stdout):
    """Apply and rollback of a chain of DEPTH directories against DEPTH
    directories in one; returns {row: deep/flat time ratio}."""
    def p(s=""):
        print(s, file=out)

    names = ("deep-%d" % depth, "flat-%d" % depth)
    runs = read_results(results, keep=lambda t: t in names)
    deep, flat = names

    def cm(tree, row):
        v = runs.cmed(tree, row)
        return v if v is not None else float("nan")

    p("== depth: a chain of %d nested directories (20-character names) vs %d directories in one, median of %d run(s) =="
      % (depth, depth, len(runs.secs[deep, "volperm apply"])))
    p("%-18s %9s %9s %9s %9s %10s %10s  %s" % ("row", "deep s", "flat s", "deep cpu", "flat cpu",
                                              "deep RSS", "flat RSS", "deep/flat time"))
    ratios = {}
    for row in ("volperm apply", "volperm rollback"):
        md, mf = runs.med(deep, row), runs.med(flat, row)
        if md is None or mf is None:
            continue
        bad = (runs.exits[deep, row] | runs.exits[flat, row]) - {"0"}
        q = md / mf if mf else float("nan")
        ratios[row] = q
        p("%-18s %9.2f %9.2f %9.2f %9.2f %8.1f M %8.1f M  %.2fx%s" % (
            row, md, mf, cm(deep, row), cm(flat, row), max(runs.rss[deep, row]) / 1024.0,
            max(runs.rss[flat, row]) / 1024.0, q, ("  exit %s!" % ",".join(sorted(bad))) if bad else ""))
    return ratios


def depth_tree(root, n, shape):
    """N directories with 20-character names under ROOT (made here), nested
    in a chain (deep) or all in one (flat). openat relative to the parent:
    mkdir -p cannot go past PATH_MAX, and neither can cp -a."""
    os.mkdir(root)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for i in range(n):
        name = "d%019d" % i
        os.mkdir(name, 0o755, dir_fd=fd)
        if shape == "deep":
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = sub
    os.close(fd)


# ---- the slowfs section ----

# issue 14's targets: (what, best row of, baseline row, at least this many times faster)
SLOWFS_TARGETS = [
    ("apply >= 20x faster than chown -R -h", "volperm apply", "chown -R -h", 20),
    ("apply >= 3x faster than xargs -P 16 chown -h", "volperm apply", "xargs -P 16 chown -h", 3),
    ("plan >= 20x faster than find -uid", "volperm plan", "find -uid", 20),
    ("rollback >= 15x faster than chown -R -h", "volperm rollback", "chown -R -h", 15),
]
SLOWFS_REQUESTS_MAX = 1.5  # apply's requests per entry, times chown -R's


def read_requests(path):
    """row -> [requests slowfs served for it, one a run]."""
    q = defaultdict(list)
    with open(path) as fh:
        for line in fh:
            row, _, n = line.rstrip("\n").split("\t")
            q[row].append(int(n))
    return q


def slowfs_report(results, requests, out=sys.stdout):
    """The slowfs table and issue 14's targets; returns the verdicts
    [(what, factor or None, "met"/"NOT met"/"no data")]."""
    def p(s=""):
        print(s, file=out)

    runs = read_results(results)
    tree = runs.trees[0] if runs.trees else None
    order = runs.order[tree] if tree else []
    n = runs.entries.get(tree, 0)
    med = {r: statistics.median(runs.secs[tree, r]) for r in order}
    req = {r: statistics.median(v) for r, v in read_requests(requests).items()}
    chown = med.get("chown -R -h")
    creq = req.get("chown -R -h")
    p("%-40s %9s %9s %11s %10s %12s %5s" % ("row", "median s", "runs", "x chown -R", "requests",
                                            "req/entry", "exit"))
    for r in order:
        shown = "%.2fx" % (chown / med[r]) if chown and med[r] > 0 else "-"
        q = req.get(r)
        p("%-40s %9.2f %9d %11s %10s %12s %5s" % (r, med[r], len(runs.secs[tree, r]), shown,
          "%d" % q if q is not None else "-", per_entry(q, n) if q is not None else "-",
          ",".join(sorted(runs.exits[tree, r]))))
    p("(x chown -R: how many times faster than chown -R -h through slowfs; entries %d, every one changes;"
      " req/entry = requests slowfs served / entries)" % n)

    def best(prefix):
        # The default, --jobs auto, is what users get: judge it when it was
        # run; else (an older volperm) the best --jobs row stands for it.
        c = [r for r in order if r.startswith(prefix)]
        auto = [r for r in c if r.endswith("--jobs auto")]
        if auto:
            return auto[0]
        return min(c, key=lambda r: med[r]) if c else None

    p()
    p("issue 14 targets (1 ms a request, 20k entries; medians of this run; volperm's --jobs auto row,"
      " or without one its best --jobs row):")
    verdicts = []
    for desc, prefix, den, want in SLOWFS_TARGETS:
        num = best(prefix)
        if not num or num not in med or den not in med:
            p("  %-58s no data" % desc)
            verdicts.append((desc, None, "no data"))
            continue
        v = med[den] / med[num]
        ok = "met" if v >= want else "NOT met"
        p("  %-58s %6.2fx (%s)  %s" % (desc, v, num, ok))
        verdicts.append((desc, v, ok))
    a = best("volperm apply")
    if a and a in req and creq:
        v = req[a] / creq
        ok = "met" if v <= SLOWFS_REQUESTS_MAX else "NOT met"
        desc = "apply requests per entry within %sx of chown -R's" % target_factor(SLOWFS_REQUESTS_MAX)
        p("  %-58s %6.2fx (%.2f vs %.2f)  %s" % (desc, v, req[a] / n, creq / n, ok))
        verdicts.append((desc, v, ok))
    return verdicts


# ---- the idmap section ----

# (label, row key) in table order; "volperm idmap + --undo" is made per run.
IDMAP_ROWS = [
    ("volperm idmap --dry-run (walk + probe)", "volperm idmap --dry-run"),
    ("volperm idmap (the mount)", "volperm idmap"),
    ("volperm idmap --undo", "volperm idmap --undo"),
    ("volperm idmap + --undo", "volperm idmap + undo"),
    ("chown -R -h U:G", "chown -R -h"),
    ("chown -R -h U:G + sync -f", "chown -R -h + sync"),
    ("volperm apply --map --map-gid (journaled)", "volperm apply --map"),
]
# what each is compared with: (row, against)
IDMAP_VS = [("chown -R -h + sync", "volperm idmap"), ("chown -R -h + sync", "volperm idmap + undo"),
            ("volperm apply --map", "volperm idmap")]


def idmap_report(results, out=sys.stdout):
    """The idmap table (one tree): each row's median, min, max, CPU and
    peak RSS, then how many times longer chown -R -h (with its sync) and
    apply --map take than the mount; returns {(row, against): factor}."""
    def p(s=""):
        print(s, file=out)

    runs = read_results(results)
    tree = runs.trees[0] if runs.trees else None
    if tree is None:
        p("idmap: no runs")
        return {}
    runs.combine(tree, "chown -R -h", "sync after chown -R", "chown -R -h + sync")
    runs.combine(tree, "volperm idmap", "volperm idmap --undo", "volperm idmap + undo")
    n = runs.entries[tree]
    p("== %s: %d entries (incl. root), median of %d run(s) ==" %
      (tree, n, max(len(v) for (t, _), v in runs.secs.items() if t == tree)))
    p("%-42s %9s %9s %9s %9s %9s %9s" % ("row", "median s", "min s", "max s", "cpu s", "peak RSS",
                                           "us/entry"))
    for label, key in IDMAP_ROWS:
        v = runs.secs.get((tree, key))
        if not v:
            continue
        m = statistics.median(v)
        bad = runs.exits[tree, key] - {"0"}
        p("%-42s %9.3f %9.3f %9.3f %9s %7.1f M %9.3f%s" % (
            label, m, min(v), max(v), "%.3f" % runs.cmed(tree, key) if runs.cmed(tree, key) is not None else "n/a",
            max(runs.rss[tree, key]) / 1024.0, m / n * 1e6,
            ("  exit %s!" % ",".join(sorted(bad))) if bad else ""))
    p()
    factors = {}
    for key, against in IDMAP_VS:
        a, b = runs.med(tree, key), runs.med(tree, against)
        if a is None or not b:
            continue
        factors[key, against] = a / b
        p("  %-22s takes %10.1fx the time of %s (%.3f s vs %.3f s)" % (key, a / b, against, a, b))
    return factors


# ---- the profile ----

PROFILE_CMDS = ["find -uid", "volperm plan", "chown -R fresh", "chown -R correct",
                "volperm apply", "volperm re-apply", "volperm rollback", "setfacl", "volperm grant"]
PROFILE_SHORT = {"find -uid": "find-uid", "volperm plan": "vp-plan", "chown -R fresh": "chown-fresh",
                 "chown -R correct": "chown-again", "volperm apply": "vp-apply",
                 "volperm re-apply": "vp-reapply", "volperm rollback": "vp-rollback",
                 "setfacl": "setfacl", "volperm grant": "vp-grant"}
# shown whatever their count: the durability and journal I/O
PROFILE_ALWAYS = ("fdatasync", "fsync", "syncfs", "pwrite64", "pread64", "write", "read")


def parse_strace_c(text):
    """strace -c -f -w's table: ({syscall: calls}, {syscall: seconds})."""
    calls, secs = {}, {}
    for line in text.splitlines():
        f = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(f) >= 5 and re.match(r"^[0-9.]+$", f[0]) and f[-1] != "total":
            calls[f[-1]] = int(f[3])
            secs[f[-1]] = float(f[1])
    return calls, secs


def profile_report(pdir, n, out=sys.stdout):
    """Syscalls per entry of each profiled command (PDIR/NAME.strace)."""
    def p(s=""):
        print(s, file=out)

    cmds = [c for c in PROFILE_CMDS if os.path.exists(os.path.join(pdir, c + ".strace"))]
    calls, secs = {}, {}
    for c in cmds:
        try:
            with open(os.path.join(pdir, c + ".strace")) as fh:
                calls[c], secs[c] = parse_strace_c(fh.read())
        except OSError:
            calls[c], secs[c] = {}, {}
    # the most frequent first; ties by name, so that the table is the same
    # from one run of this script to the next
    names = sorted({s for c in cmds for s in calls[c]},
                   key=lambda s: (-max(calls[c].get(s, 0) for c in cmds), s))
    p("syscalls per entry (strace -c -f; %d entries):" % n)
    p("%-14s" % "syscall" + "".join("%12s" % PROFILE_SHORT[c] for c in cmds))
    for s in names:
        top = max(calls[c].get(s, 0) for c in cmds)
        if top < n / 200 and s not in PROFILE_ALWAYS:
            continue  # fewer than 1 per 200 entries anywhere: start-up noise
        if top == 0:
            continue
        p("%-14s" % s + "".join("%12.4f" % (calls[c].get(s, 0) / n) for c in cmds))
    p("%-14s" % "total" + "".join("%12.4f" % (sum(calls[c].values()) / n) for c in cmds))
    p()
    p("wall time inside syscalls, seconds (strace -w; strace itself slows every call):")
    for c in cmds:
        top = sorted(secs[c].items(), key=lambda kv: -kv[1])[:6]
        dur = sum(secs[c].get(s, 0) for s in ("fdatasync", "fsync", "syncfs"))
        p("  %-17s total %7.2f: %s; fdatasync+fsync+syncfs %.2f" % (c, sum(secs[c].values()),
          ", ".join("%s %.2f" % kv for kv in top), dur))


# ---- a Markdown table for docs/benchmarks.md ----

def markdown_table(headers, rows, align=None):
    """A GitHub Markdown table: headers, then rows (strings); align a string
    of 'l'/'r' per column (default: the first column left, the rest right)."""
    align = align or "l" + "r" * (len(headers) - 1)

    def esc(s):
        return str(s).replace("|", "\\|")

    out = ["| " + " | ".join(esc(h) for h in headers) + " |",
           "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"]
    for r in rows:
        out.append("| " + " | ".join(esc(c) for c in r) + " |")
    return "\n".join(out)


def markdown_report(results, trees=None, out=sys.stdout):
    """One table a tree: each row's median, min and max seconds, median CPU
    seconds and peak RSS, in the order the rows ran."""
    runs = read_results(results)
    for tree in trees or runs.trees:
        if tree not in runs.trees:
            continue
        rows = []
        for row in runs.order[tree]:
            v = runs.secs[tree, row]
            c = runs.cmed(tree, row)
            rows.append([row, "%.2f" % statistics.median(v), "%.2f" % min(v), "%.2f" % max(v),
                         "%.2f" % c if c is not None else "n/a",
                         "%.1f MiB" % (max(runs.rss[tree, row]) / 1024.0), str(len(v))])
        print("%s (%d entries incl. root)\n" % (tree, runs.entries[tree]), file=out)
        print(markdown_table(["row", "median s", "min s", "max s", "cpu s", "peak RSS", "runs"], rows),
              file=out)
        print(file=out)


# ---- command line ----

USAGE = "usage:\n" + __doc__.split("\n\n")[2]


def main(argv):
    if not argv:
        sys.stderr.write(USAGE + "\n")
        return 2
    cmd, a = argv[0], argv[1:]
    try:
        if cmd == "local" and len(a) == 3:
            local_report(a[0], [int(x) for x in a[1].split()], a[2])
        elif cmd == "depth" and len(a) == 2:
            depth_report(a[0], int(a[1]))
        elif cmd == "slowfs" and len(a) == 2:
            slowfs_report(a[0], a[1])
        elif cmd == "idmap" and len(a) == 1:
            idmap_report(a[0])
        elif cmd == "profile" and len(a) == 2:
            profile_report(a[0], int(a[1]))
        elif cmd == "per-entry" and len(a) == 2:
            print(per_entry(float(a[0]), float(a[1])))
        elif cmd == "markdown" and len(a) >= 1:
            markdown_report(a[0], a[1:] or None)
        elif cmd == "depth-tree" and len(a) == 3 and a[2] in ("deep", "flat"):
            depth_tree(a[0], int(a[1]), a[2])
        else:
            sys.stderr.write(USAGE + "\n")
            return 2
    except (OSError, ValueError) as e:
        sys.stderr.write("benchlib.py %s: %s\n" % (cmd, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
