/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_PIN_H
#define VOLPERM_PIN_H

#include <stdint.h>
#include <sys/stat.h>

/* Pinning: get an O_PATH fd for an entry that cannot be swapped between the
 * check and the change. relpath is resolved from root_fd with openat2()
 * RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV|RESOLVE_NO_MAGICLINKS
 * (component by component with O_NOFOLLOW where openat2 is missing or the
 * path is longer than PATH_MAX). The last component is opened O_NOFOLLOW,
 * so a symlink is pinned as itself. The fd is fstat()ed and must be the
 * (dev, ino) the caller expects.
 *
 * Returns the fd (>= 0, O_CLOEXEC, owned by the caller) with *st filled, or:
 *   -ESTALE  it is another inode now (the tree changed under us)
 *   -ELOOP / -EXDEV  a symlink or mount now sits on the path
 *   -errno   from the opens */
int vp_pin(int root_fd, const char *relpath, uint64_t dev, uint64_t ino, struct stat *st);

/* The inode's birth time (statx STATX_BTIME) in ns, or 0 when the
 * filesystem does not record one. An inode number can be reused as soon as
 * a file is deleted; a reused inode has a new birth time. */
uint64_t vp_fd_btime(int fd);

/* Same, and with btime non-NULL the birth time too (as vp_fd_btime, from the
 * same statx call), and allow_xdev: allow crossing mounts (--cross-mounts). */
int vp_pin_ex(int root_fd, const char *relpath, uint64_t dev, uint64_t ino, struct stat *st,
              uint64_t *btime, int allow_xdev);

#endif
