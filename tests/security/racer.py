#!/usr/bin/env python3
"""A hostile process racing volperm: swaps two paths in a tight loop.

usage: racer.py MODE A B [A2 B2 ...] [--max-seconds S] [--pause-us N]

MODE
  exchange  renameat2(A, B, RENAME_EXCHANGE) over and over: A and B trade
            places atomically (e.g. a directory and a symlink to a decoy, so
            that the name A is a directory one instant and a symlink the
            next). Every swap is immediately undone by the next one.
  move      rename(A, B) then rename(B, A): the entry A hops to B and back
            (e.g. a hard link moving between two directories of the tree,
            so that a walk may meet it in both).
  replace   B is a prepared replacement of A (a symlink, a hard link to a
            decoy, another file): rename A to A.racer-orig, rename B to A,
            then back again (A is briefly missing; not atomic).

With several pairs, each cycle swaps every pair in turn.
Prints "started" when running and "swaps=N" at the end. Stops on SIGTERM or
SIGINT, always leaving A and B as they were at the start (an even number of
swaps), or after --max-seconds (default 60) as a safety net.
"""
import argparse
import ctypes
import os
import signal
import sys
import time

RENAME_EXCHANGE = 2
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100

stop = False


def on_signal(signum, frame):
    global stop
    stop = True


def exchange(a, b):
    if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)


def cycle(mode, a, b, pause):
    """One full cycle: out of the original state and back into it."""
    if mode == "exchange":
        exchange(a, b)
        if pause:
            time.sleep(pause)
        exchange(a, b)
    elif mode == "move":
        os.rename(a, b)
        if pause:
            time.sleep(pause)
        os.rename(b, a)
    else:
        orig = a + b".racer-orig"
        os.rename(a, orig)
        os.rename(b, a)
        if pause:
            time.sleep(pause)
        os.rename(a, b)
        os.rename(orig, a)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["exchange", "move", "replace"])
    ap.add_argument("paths", nargs="+", help="pairs A B")
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--pause-us", type=int, default=0)
    o = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if len(o.paths) % 2:
        ap.error("paths come in pairs")
    pairs = [(os.fsencode(o.paths[i]), os.fsencode(o.paths[i + 1]))
             for i in range(0, len(o.paths), 2)]
    pause = o.pause_us / 1e6
    deadline = time.monotonic() + o.max_seconds
    n = 0
    print("started", flush=True)
    while not stop and time.monotonic() < deadline:
        for a, b in pairs:
            cycle(o.mode, a, b, pause)
            n += 2
        if pause:
            time.sleep(pause)
    print("swaps=%d" % n, flush=True)


if __name__ == "__main__":
    sys.exit(main())
