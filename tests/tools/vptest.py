"""Helpers shared by volperm's Python test tools.

Imported by tests/tools/*.py (they run as scripts, so their own directory
is on sys.path), tests/crash/crashlib.py and the jlines helper of
tests/security/seclib.bash. One copy of the path escaping on purpose: the
tests compare the output of one tool with another's (a snapshot with a
--list or --json decoding, a manifest with a snapshot), which only works
while every tool escapes a path the same way.
"""
import base64


def esc(b):
    """Printable, unambiguous form of a byte path: bytes outside 0x21..0x7e,
    and the backslash, are written \\xHH (so a name with a space, a tab or a
    newline stays one field of a tab-separated line)."""
    return "".join(chr(c) if 0x21 <= c <= 0x7E and c != 0x5C else "\\x%02x" % c for c in b)


def unesc(s):
    """Inverse of esc: escaped path -> bytes."""
    out = bytearray()
    i = 0
    while i < len(s):
        if s[i] == "\\" and s[i + 1:i + 2] == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        else:
            out.append(ord(s[i]))
            i += 1
    return bytes(out)


def rel(p, root):
    """A byte path as the tests name it: "." for root, the escaped path
    relative to root below it, "OUTSIDE:" + the escaped path elsewhere (a
    path volperm should never have named). root: bytes, no trailing slash."""
    if p == root:
        return "."
    if p.startswith(root + b"/"):
        return esc(p[len(root) + 1:])
    return "OUTSIDE:" + esc(p)


def event_path(o):
    """The path of a --json event as bytes: path_b64 when volperm gave it
    (the name is not UTF-8), else path."""
    if o.get("path_b64") is not None:
        return base64.b64decode(o["path_b64"])
    return o.get("path", "").encode("utf-8")
