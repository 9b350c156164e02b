#!/usr/bin/env python3
"""Run a command in a new user namespace with the given id maps.

usage: nsexec.py UID_MAP GID_MAP CMD [ARG...]

UID_MAP and GID_MAP are /proc/PID/uid_map lines, several separated by ','
("0 100000 65536", "0 0 2000"). Needs root in the initial namespace (it
writes the maps itself, so no newuidmap is needed). The command runs as the
namespace's uid/gid 0, with all capabilities in the namespace. Exits with the command's
status (128+N if it died of signal N).
"""
import ctypes
import os
import sys

CLONE_NEWUSER = 0x10000000


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    umap, gmap, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    r1, w1 = os.pipe()  # child -> parent: unshared
    r2, w2 = os.pipe()  # parent -> child: maps written
    pid = os.fork()
    if pid == 0:
        os.close(r1)
        os.close(w2)
        if libc.unshare(CLONE_NEWUSER) != 0:
            e = ctypes.get_errno()
            sys.stderr.write("nsexec.py: unshare(CLONE_NEWUSER): %s\n" % os.strerror(e))
            os._exit(125)
        os.write(w1, b"u")
        os.close(w1)
        if os.read(r2, 1) != b"m":
            os._exit(125)
        try:
            # become the namespace's root (it may map to another outside id
            # than the one we came in with)
            os.setgroups([])
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        except OSError as e:
            sys.stderr.write("nsexec.py: becoming root in the namespace: %s\n" % e)
            os._exit(125)
        try:
            os.execvp(cmd[0], cmd)
        except OSError as e:
            sys.stderr.write("nsexec.py: %s: %s\n" % (cmd[0], e))
            os._exit(127)
    os.close(w1)
    os.close(r2)
    if os.read(r1, 1) != b"u":
        _, st = os.waitpid(pid, 0)
        sys.exit(125)
    try:
        with open("/proc/%d/uid_map" % pid, "w") as f:
            f.write(umap.replace(",", "\n") + "\n")
        with open("/proc/%d/gid_map" % pid, "w") as f:
            f.write(gmap.replace(",", "\n") + "\n")
    except OSError as e:
        sys.stderr.write("nsexec.py: writing the id maps: %s\n" % e)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        sys.exit(125)
    os.write(w2, b"m")
    os.close(w2)
    _, st = os.waitpid(pid, 0)
    if os.WIFSIGNALED(st):
        sys.exit(128 + os.WTERMSIG(st))
    sys.exit(os.WEXITSTATUS(st))


if __name__ == "__main__":
    main()
