#!/usr/bin/env python3
"""Unit test of scripts/benchlib.py, the statistics and reports of
scripts/bench (CTest: unit/py_benchlib; by hand: python3
tests/tools/test_benchlib.py). No benchmark runs here: the inputs are small
TSV files written by the test, in the format scripts/bench writes.
"""
import io
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import benchlib  # noqa: E402

HEADER = "\t".join(benchlib.RESULTS_FIELDS) + "\n"


def line(tree, n, row, run, secs, rss=4096, rc=0, cpu=None, load=0.1, server=0):
    """One RESULTS line; cpu defaults to the wall time."""
    return "\t".join(str(x) for x in (tree, n, row, run, secs, rss, rc,
                                      secs if cpu is None else cpu, load, server)) + "\n"


class Tmp(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def write(self, name, text):
        p = os.path.join(self.dir.name, name)
        with open(p, "w") as f:
            f.write(text)
        return p


class Stats(unittest.TestCase):
    def test_median(self):
        self.assertEqual(benchlib.median([3.0, 1.0, 2.0]), 2.0)
        self.assertEqual(benchlib.median([1.0, 4.0]), 2.5)
        self.assertIsNone(benchlib.median([]))

    def test_ratio(self):
        self.assertEqual(benchlib.ratio(1.0, 4.0), 0.25)
        self.assertIsNone(benchlib.ratio(1.0, 0))
        self.assertIsNone(benchlib.ratio(None, 2.0))

    def test_per_entry(self):
        self.assertEqual(benchlib.per_entry(301, 100), "3.01")
        self.assertEqual(benchlib.per_entry(5, 0), "-")

    def test_formats(self):
        self.assertEqual(benchlib.target_factor(1.0), "1.0")
        self.assertEqual(benchlib.target_factor(0.25), "0.25")
        self.assertEqual(benchlib.fmt(1.5), "    1.50")
        self.assertEqual(benchlib.fmt(None), "     n/a")


class Results(Tmp):
    def test_read_and_combine(self):
        p = self.write("r.tsv", HEADER +
                       line("t10", 11, "chown -R fresh", 1, 1.0) +
                       line("t10", 11, "sync after chown -R", 1, 0.5) +
                       line("t10", 11, "chown -R fresh", 2, 3.0, rc=1) +
                       line("t10", 11, "sync after chown -R", 2, 0.5) +
                       "short\tline\n")
        runs = benchlib.read_results(p)
        self.assertEqual(runs.trees, ["t10"])
        self.assertEqual(runs.entries["t10"], 11)
        self.assertEqual(runs.order["t10"], ["chown -R fresh", "sync after chown -R"])
        self.assertEqual(runs.med("t10", "chown -R fresh"), 2.0)
        self.assertEqual(runs.exits["t10", "chown -R fresh"], {"0", "1"})
        runs.combine("t10", "chown -R fresh", "sync after chown -R", "both")
        self.assertEqual(runs.secs["t10", "both"], [1.5, 3.5])

    def test_old_files_without_cpu_columns(self):
        p = self.write("r.tsv", HEADER + "t10\t11\tfind -uid\t1\t0.5\t100\t0\n")
        runs = benchlib.read_results(p)
        self.assertEqual(runs.med("t10", "find -uid"), 0.5)
        self.assertIsNone(runs.cmed("t10", "find -uid"))
        self.assertEqual(runs.load, [])


class Local(Tmp):
    def report(self, rows, sizes=(10,)):
        p = self.write("r.tsv", HEADER + "".join(rows))
        out = io.StringIO()
        verdicts = benchlib.local_report(p, list(sizes), os.path.join(self.dir.name, "none"),
                                         ncpu=2, out=out)
        return out.getvalue(), {(t, w): v for t, w, v in verdicts}

    def test_targets(self):
        rows = []
        for r in (1, 2, 3):
            rows += [line("t10", 11, "find -uid", r, 1.0),
                     line("t10", 11, "volperm plan", r, 0.5),
                     line("t10", 11, "chown -R fresh", r, 2.0),
                     line("t10", 11, "volperm apply", r, 3.0 if r != 2 else 100.0)]
        text, v = self.report(rows)
        # medians: plan 0.5 / find 1.0 = 0.5x, met; apply 3.0 / chown 2.0 = 1.5x, not
        self.assertEqual(v["t10", "volperm plan <= 1.0x find -uid"], "met (0.50x)")
        self.assertEqual(v["t10", "volperm apply <= 1.0x chown -R fresh"], "NOT MET (1.50x)")
        self.assertIn("== t10: 11 entries (incl. root), median of 3 run(s) ==", text)
        self.assertIn("== targets ==", text)
        # the outlier run shows as max, not in the median
        apply = [l for l in text.splitlines() if l.startswith("volperm apply (fresh")][0]
        self.assertIn("100.00", apply)
        self.assertIn("    3.00", apply)

    def test_scaling_and_rss(self):
        rows = [line("t10", 10, "volperm apply", 1, 1.0, rss=40 * 1024),
                line("t100", 100, "volperm apply", 1, 12.0, rss=8 * 1024)]
        text, v = self.report(rows, sizes=(10, 100))
        # 10x the entries: the limit is 11x; 12x is not met
        self.assertEqual(v["t10->t100", "volperm apply time ratio <= 11.00x"], "NOT MET (12.00x)")
        self.assertEqual(v["t100", "volperm apply peak RSS <= 32 MiB"], "met (8.0 MiB)")

    def test_failed_exit_is_flagged(self):
        text, _ = self.report([line("t10", 11, "volperm plan", 1, 1.0, rc=4)])
        self.assertIn("exit 4!", text)

    def test_load_warning(self):
        text, _ = self.report([line("t10", 11, "find -uid", 1, 1.0, load=1.9)])
        self.assertIn("WARNING: other work was running", text)
        text, _ = self.report([line("t10", 11, "find -uid", 1, 1.0, load=0.2)])
        self.assertNotIn("WARNING", text)

    def test_jobs_rows(self):
        rows = [line("t10", 11, "chown -R fresh", 1, 4.0),
                line("t10", 11, "volperm apply", 1, 4.0),
                line("t10", 11, "volperm apply --jobs 2", 1, 2.0),
                line("t10", 11, "volperm rollback --jobs 2", 1, 3.0)]
        _, v = self.report(rows)
        self.assertEqual(v["t10", "volperm apply --jobs 2 <= 1.0x chown -R"], "met (0.50x)")
        self.assertEqual(v["t10", "volperm rollback --jobs 2 <= 1.5x apply"], "met (1.50x)")


class Slowfs(Tmp):
    def test_targets_and_requests(self):
        rows = [line("slowfs-t100", 101, "find -uid", 1, 10.0),
                line("slowfs-t100", 101, "volperm plan --jobs 8", 1, 0.4),
                line("slowfs-t100", 101, "chown -R -h", 1, 30.0),
                line("slowfs-t100", 101, "xargs -P 16 chown -h", 1, 3.0),
                line("slowfs-t100", 101, "volperm apply --jobs 1", 1, 20.0),
                line("slowfs-t100", 101, "volperm apply --jobs 8", 1, 1.0),
                line("slowfs-t100", 101, "volperm rollback --jobs 8", 1, 2.5)]
        res = self.write("s.tsv", HEADER + "".join(rows))
        req = self.write("q.tsv", "chown -R -h\t1\t404\nvolperm apply --jobs 8\t1\t707\n")
        out = io.StringIO()
        v = {d: (round(f, 2) if f else f, ok) for d, f, ok in benchlib.slowfs_report(res, req, out=out)}
        self.assertEqual(v["apply >= 20x faster than chown -R -h"], (30.0, "met"))
        self.assertEqual(v["apply >= 3x faster than xargs -P 16 chown -h"], (3.0, "met"))
        self.assertEqual(v["plan >= 20x faster than find -uid"], (25.0, "met"))
        self.assertEqual(v["rollback >= 15x faster than chown -R -h"], (12.0, "NOT met"))
        self.assertEqual(v["apply requests per entry within 1.5x of chown -R's"], (1.75, "NOT met"))
        text = out.getvalue()
        self.assertRegex(text, r"volperm apply --jobs 8 +1\.00 +1 +30\.00x +707 +7\.00 +0")

    def test_no_data(self):
        res = self.write("s.tsv", HEADER + line("slowfs-t1", 2, "find -uid", 1, 1.0))
        req = self.write("q.tsv", "")
        v = benchlib.slowfs_report(res, req, out=io.StringIO())
        self.assertTrue(all(ok == "no data" for _, _, ok in v))


class Profile(Tmp):
    STRACE = """% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 60.00    0.600000          60     10000           fchownat
 30.00    0.300000          30     10000        12 newfstatat
 10.00    0.100000       10000        10           fdatasync
------ ----------- ----------- --------- --------- ----------------
100.00    1.000000          50     20010        12 total
"""

    def test_parse(self):
        calls, secs = benchlib.parse_strace_c(self.STRACE)
        self.assertEqual(calls, {"fchownat": 10000, "newfstatat": 10000, "fdatasync": 10})
        self.assertEqual(secs["fdatasync"], 0.1)

    def test_report(self):
        self.write("volperm apply.strace", self.STRACE)
        out = io.StringIO()
        benchlib.profile_report(self.dir.name, 10000, out=out)
        text = out.getvalue().splitlines()
        self.assertEqual(text[1].split(), ["syscall", "vp-apply"])
        # ties sorted by name; fdatasync (1 in 1000 entries) still shown
        self.assertEqual([l.split()[0] for l in text[2:5]], ["fchownat", "newfstatat", "fdatasync"])
        self.assertEqual(text[5].split(), ["total", "2.0010"])


class Markdown(Tmp):
    def test_table(self):
        t = benchlib.markdown_table(["row", "s"], [["a|b", "1.00"]])
        self.assertEqual(t, "| row | s |\n|:---|---:|\n| a\\|b | 1.00 |")

    def test_report(self):
        p = self.write("r.tsv", HEADER + line("t10", 11, "find -uid", 1, 1.0) +
                       line("t10", 11, "find -uid", 2, 3.0))
        out = io.StringIO()
        benchlib.markdown_report(p, out=out)
        self.assertIn("| find -uid | 2.00 | 1.00 | 3.00 | 2.00 | 4.0 MiB | 2 |", out.getvalue())


class DepthTree(Tmp):
    def test_shapes(self):
        deep = os.path.join(self.dir.name, "deep")
        flat = os.path.join(self.dir.name, "flat")
        benchlib.depth_tree(deep, 5, "deep")
        benchlib.depth_tree(flat, 5, "flat")
        self.assertEqual(len(os.listdir(flat)), 5)
        depth, d = 0, deep
        while os.listdir(d):
            (name,) = os.listdir(d)
            self.assertEqual(len(name), 20)
            d, depth = os.path.join(d, name), depth + 1
        self.assertEqual(depth, 5)

    def test_depth_report(self):
        rows = [line("deep-5", 6, "volperm apply", 1, 2.0), line("flat-5", 6, "volperm apply", 1, 1.0),
                line("t10", 11, "volperm apply", 1, 9.0)]
        p = self.write("r.tsv", HEADER + "".join(rows))
        out = io.StringIO()
        self.assertEqual(benchlib.depth_report(p, 5, out=out), {"volperm apply": 2.0})
        self.assertIn("2.00x", out.getvalue())


class Idmap(Tmp):
    def test_report(self):
        rows = []
        for r, (dry, mount, undo, chown, sync, apply) in enumerate(
                [(1.0, 0.010, 0.004, 10.0, 1.0, 30.0),
                 (1.2, 0.030, 0.006, 12.0, 2.0, 20.0),
                 (0.8, 0.020, 0.005, 11.0, 1.0, 25.0)], 1):
            rows += [line("idmap-100", 101, "volperm idmap --dry-run", r, dry),
                     line("idmap-100", 101, "volperm idmap", r, mount),
                     line("idmap-100", 101, "volperm idmap --undo", r, undo),
                     line("idmap-100", 101, "chown -R -h", r, chown),
                     line("idmap-100", 101, "sync after chown -R", r, sync),
                     line("idmap-100", 101, "volperm apply --map", r, apply, rc=0 if r != 2 else 1)]
        p = self.write("i.tsv", HEADER + "".join(rows))
        out = io.StringIO()
        f = benchlib.idmap_report(p, out=out)
        # medians: mount 0.020, mount + undo (per run) 0.025, chown + sync 12.0, apply 25.0
        self.assertAlmostEqual(f["chown -R -h + sync", "volperm idmap"], 600.0)
        self.assertAlmostEqual(f["chown -R -h + sync", "volperm idmap + undo"], 480.0)
        self.assertAlmostEqual(f["volperm apply --map", "volperm idmap"], 1250.0)
        text = out.getvalue()
        self.assertIn("== idmap-100: 101 entries (incl. root), median of 3 run(s) ==", text)
        self.assertRegex(text, r"volperm idmap \(the mount\) +0\.020 +0\.010 +0\.030 ")
        self.assertRegex(text, r"volperm idmap \+ --undo +0\.025 ")
        self.assertRegex(text, r"chown -R -h U:G \+ sync -f +12\.000 +11\.000 +14\.000 ")
        apply = [l for l in text.splitlines() if l.startswith("volperm apply --map")][0]
        self.assertIn("exit 1!", apply)

    def test_no_runs(self):
        p = self.write("i.tsv", HEADER)
        out = io.StringIO()
        self.assertEqual(benchlib.idmap_report(p, out=out), {})
        self.assertIn("no runs", out.getvalue())


class Cli(unittest.TestCase):
    def test_usage(self):
        err = io.StringIO()
        old, sys.stderr = sys.stderr, err
        try:
            self.assertEqual(benchlib.main([]), 2)
            self.assertEqual(benchlib.main(["nope"]), 2)
        finally:
            sys.stderr = old
        self.assertIn("benchlib.py local", err.getvalue())


if __name__ == "__main__":
    unittest.main(verbosity=2)
