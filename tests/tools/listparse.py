#!/usr/bin/env python3
"""Parse volperm's --list output and print the paths it names.

usage: listparse.py FILE ROOT [KIND]

Lines of the form
    chown A:B->C:D [mode M->N] [caps-dropped] PATH
    skip REASON PATH
are decoded (PATH is shell-quoted when needed: '...', $'...' with \\n, \\t,
\\xHH, \\ooo escapes, "...", or bare with backslash escapes) and printed as
"KIND<TAB>escaped path relative to ROOT" (escaping as snapshot.py; KIND is
chown or skip:REASON), sorted. Other lines (the summary) are ignored. A
chown/skip line that does not decode exits 1 with a message: that is a
quoting bug. With KIND, only lines of that kind are printed (no KIND column).
"""
import os
import re
import sys

from vptest import rel

PREFIX = re.compile(rb"^(?:chown [0-9]+:[0-9]+->[0-9]+:[0-9]+ (?:mode [0-7]+->[0-7]+ )?(?:caps-dropped )?"
                    rb"|skip ([a-z-]+) )")

ANSI = {"n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "e": 27, "E": 27, "f": 12, "v": 11,
        "\\": 92, "'": 39, '"': 34, "?": 63}


def tokens(s):
    """Split a shell-quoted line (bytes) into words (bytes)."""
    out, cur, i, n, have = [], bytearray(), 0, len(s), False
    while i < n:
        c = s[i]
        if c in b" ":
            if have:
                out.append(bytes(cur))
                cur, have = bytearray(), False
            i += 1
        elif c == 0x27:  # '
            j = s.index(b"'", i + 1)
            cur += s[i + 1:j]
            i, have = j + 1, True
        elif c == 0x24 and s[i + 1:i + 2] == b"'":  # $'
            i += 2
            while True:
                if i >= n:
                    raise ValueError("unterminated $'")
                c = s[i]
                if c == 0x27:
                    i += 1
                    break
                if c == 0x5C:
                    e = chr(s[i + 1])
                    if e == "x":
                        h = s[i + 2:i + 4]
                        k = 2 if len(h) == 2 and all(chr(x) in "0123456789abcdefABCDEF" for x in h) else 1
                        cur.append(int(s[i + 2:i + 2 + k], 16))
                        i += 2 + k
                    elif e in "01234567":
                        k = 1
                        while k < 3 and i + 1 + k < n and chr(s[i + 1 + k]) in "01234567":
                            k += 1
                        cur.append(int(s[i + 1:i + 1 + k], 8) & 0xFF)
                        i += 1 + k
                    elif e in ANSI:
                        cur.append(ANSI[e])
                        i += 2
                    else:
                        raise ValueError("unknown escape \\%s" % e)
                else:
                    cur.append(c)
                    i += 1
            have = True
        elif c == 0x22:  # "
            i += 1
            while True:
                if i >= n:
                    raise ValueError('unterminated "')
                c = s[i]
                if c == 0x22:
                    i += 1
                    break
                if c == 0x5C and i + 1 < n and s[i + 1] in b'\\"$`':
                    cur.append(s[i + 1])
                    i += 2
                elif c in b"$`":
                    raise ValueError("unescaped %s in double quotes" % chr(c))
                else:
                    cur.append(c)
                    i += 1
            have = True
        elif c == 0x5C:
            if i + 1 >= n:
                raise ValueError("trailing backslash")
            cur.append(s[i + 1])
            i, have = i + 2, True
        elif c in b";&|<>()`$*?[" or (c in b"#~" and not have):
            raise ValueError("unquoted shell special byte %r" % chr(c))
        elif c < 0x20 or c >= 0x7F:
            raise ValueError("unquoted byte 0x%02x" % c)
        else:
            cur.append(c)
            i, have = i + 1, True
    if have:
        out.append(bytes(cur))
    return out


def main():
    path, root = sys.argv[1], os.fsencode(sys.argv[2]).rstrip(b"/")
    want = sys.argv[3] if len(sys.argv) > 3 else None
    res = []
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    for no, line in enumerate(lines, 1):
        if not (line.startswith(b"chown ") or line.startswith(b"skip ")):
            continue
        m = PREFIX.match(line)
        if not m:
            sys.exit("listparse.py: line %d is not a well-formed chown/skip line: %r" % (no, line))
        kind = "chown" if line.startswith(b"chown ") else "skip:" + m.group(1).decode("ascii", "replace")
        try:
            w = tokens(line[m.end():])
        except (ValueError, IndexError) as e:
            sys.exit("listparse.py: line %d: the path does not decode (%s): %r" % (no, e, line))
        if len(w) != 1:
            sys.exit("listparse.py: line %d: the path is %d shell words, not 1: %r" % (no, len(w), line))
        p = w[-1]
        r = rel(p, root)
        if not os.path.lexists(p):
            sys.exit("listparse.py: line %d names a path that does not exist: %r -> %r" % (no, line, p))
        if want is None:
            res.append("%s\t%s" % (kind, r))
        elif want == kind:
            res.append(r)
    for r in sorted(res):
        print(r)


if __name__ == "__main__":
    main()
