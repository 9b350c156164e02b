#!/usr/bin/env python3
"""Unit test of tests/tools/vptest.py, the helpers every Python test tool
shares (CTest: unit/py_vptest; by hand: python3 tests/tools/test_vptest.py).

The tools compare one another's output (a snapshot with a --list decoding,
a --json event with a manifest), so a change of the escaping breaks them
all at once: what is pinned here is the exact form, not just a round trip.
"""
import base64
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vptest  # noqa: E402


class Esc(unittest.TestCase):
    def test_printable_kept(self):
        self.assertEqual(vptest.esc(b"a/b.c~!"), "a/b.c~!")

    def test_exact_form(self):
        # space, tab, newline, DEL, a high byte, the backslash itself
        self.assertEqual(vptest.esc(b"a b\tc\nd\x7f\xff\\"),
                         "a\\x20b\\x09c\\x0ad\\x7f\\xff\\x5c")

    def test_one_field_of_a_tsv_line(self):
        s = vptest.esc(bytes(range(256)))
        self.assertNotIn("\t", s)
        self.assertNotIn("\n", s)
        self.assertNotIn(" ", s)
        self.assertTrue(all(0x21 <= ord(c) <= 0x7E for c in s))

    def test_round_trip(self):
        for b in (b"", b"plain", bytes(range(256)), b"\\x41", b"x\\", "é".encode()):
            self.assertEqual(vptest.unesc(vptest.esc(b)), b)

    def test_unesc_takes_literal_backslash_text(self):
        # "\x41" in the escaped form is the four bytes \ x 4 1 only when the
        # backslash itself was escaped: esc never leaves a bare backslash
        self.assertEqual(vptest.unesc("\\x5cx41"), b"\\x41")
        self.assertEqual(vptest.unesc("\\x41"), b"A")


class Rel(unittest.TestCase):
    def test_root(self):
        self.assertEqual(vptest.rel(b"/v", b"/v"), ".")

    def test_below(self):
        self.assertEqual(vptest.rel(b"/v/a b/c", b"/v"), "a\\x20b/c")

    def test_outside(self):
        self.assertEqual(vptest.rel(b"/etc/shadow", b"/v"), "OUTSIDE:/etc/shadow")
        # a sibling whose name starts with the root's is not below it
        self.assertEqual(vptest.rel(b"/vx/f", b"/v"), "OUTSIDE:/vx/f")


class Json(unittest.TestCase):
    def test_json_bytes_prefers_b64(self):
        raw = b"bad\xffname"
        o = {"path": "bad\ufffdname", "path_b64": base64.b64encode(raw).decode()}
        self.assertEqual(vptest.json_bytes(o, "path"), raw)
        self.assertEqual(vptest.event_path(o), raw)

    def test_json_bytes_plain(self):
        self.assertEqual(vptest.json_bytes({"root": "/v/é"}, "root"), "/v/é".encode())
        self.assertEqual(vptest.json_bytes({}, "root"), b"")

    def test_json_paths(self):
        lines = [
            {"record": "header", "root": "/v"},
            {"record": "entry", "path": "/v/a b"},
            {"record": "entry", "path": "/v/\ufffd", "path_b64": base64.b64encode(b"/v/\xff").decode()},
            {"event": "summary", "changed": 2},
        ]
        with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as f:
            for o in lines:
                f.write(json.dumps(o) + "\n")
        try:
            self.assertEqual(vptest.json_paths(f.name), {"/v/a\\x20b", "/v/\\xff"})
        finally:
            os.unlink(f.name)

    def test_json_paths_rejects_garbage(self):
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write('{"path": "/v"}\nnot json\n')
        try:
            with self.assertRaises(ValueError):
                vptest.json_paths(f.name)
        finally:
            os.unlink(f.name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
