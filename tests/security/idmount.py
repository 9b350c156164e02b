#!/usr/bin/env python3
"""Make an idmapped bind mount (mount_setattr MOUNT_ATTR_IDMAP).

usage: idmount.py SOURCE TARGET MAP

MAP is a uid_map/gid_map line, several separated by ',' ("0 100000 65536":
files owned by N (N < 65536) on SOURCE show as 100000+N at TARGET, a chown
to 100000+N at TARGET writes N, and ids outside the map cannot be written:
EOVERFLOW). The same map is used for uids and gids. Needs
root, Linux >= 5.12 and a filesystem that supports idmapped mounts. Exits 0
when mounted, 2 when the kernel or filesystem cannot do it (with a reason).
"""
import ctypes
import os
import sys

SYS_open_tree, SYS_move_mount, SYS_mount_setattr = 428, 429, 442  # x86_64 and most others
OPEN_TREE_CLONE = 1
AT_RECURSIVE = 0x8000
AT_FDCWD = -100
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_IDMAP = 0x00100000
CLONE_NEWUSER = 0x10000000


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def userns_fd(mapping):
    """A user namespace with the map, held by a child that waits."""
    libc = ctypes.CDLL(None, use_errno=True)
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.close(w2)
        ok = libc.unshare(CLONE_NEWUSER) == 0
        os.write(w, b"u" if ok else b"e")
        os.read(r2, 1)
        os._exit(0)
    os.close(w)
    os.close(r2)
    if os.read(r, 1) != b"u":
        os.waitpid(pid, 0)
        raise OSError("unshare(CLONE_NEWUSER) failed")
    for f in ("uid_map", "gid_map"):
        with open("/proc/%d/%s" % (pid, f), "w") as fh:
            fh.write(mapping.replace(",", "\n") + "\n")
    fd = os.open("/proc/%d/ns/user" % pid, os.O_RDONLY | os.O_CLOEXEC)
    os.write(w2, b"x")
    os.close(w2)
    os.waitpid(pid, 0)
    return fd


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, dst, mapping = sys.argv[1:]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def sc(*a):
        r = libc.syscall(*a)
        if r < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return r

    try:
        ns = userns_fd(mapping)
        tree = sc(SYS_open_tree, AT_FDCWD, os.fsencode(src),
                  OPEN_TREE_CLONE | os.O_CLOEXEC | AT_RECURSIVE)
        attr = MountAttr(MOUNT_ATTR_IDMAP, 0, 0, ns)
        sc(SYS_mount_setattr, tree, b"", 0x1000 | AT_RECURSIVE,  # AT_EMPTY_PATH
           ctypes.byref(attr), ctypes.sizeof(attr))
        sc(SYS_move_mount, tree, b"", AT_FDCWD, os.fsencode(dst), MOVE_MOUNT_F_EMPTY_PATH)
    except OSError as e:
        sys.stderr.write("idmount.py: cannot make an idmapped mount: %s\n" % e)
        sys.exit(2)


if __name__ == "__main__":
    main()
