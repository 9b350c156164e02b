/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_PIN_H
#define VOLPERM_PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* Pinning: get an O_PATH fd for an entry that cannot be swapped between the
 * check and the change.
 *
 * path is resolved beneath at_fd with openat2()
 * RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV|RESOLVE_NO_MAGICLINKS
 * (component by component with O_NOFOLLOW where openat2 is missing or the
 * path is PATH_MAX or longer). at_fd is the volume root with a relative path
 * from it, or a directory already pinned and checked with the one name in
 * it: apply pins from the directory fd the walk holds, so that the cost of an
 * entry does not grow with its depth. "." pins at_fd itself. The last
 * component is opened O_NOFOLLOW, so a symlink is pinned as itself. One
 * statx() gives *st (and the birth time, when btime is not NULL: 0 when the
 * filesystem records none), and the fd must be the (dev, ino) the caller
 * expects. flags: VP_PIN_XDEV allows crossing mounts (--cross-mounts).
 *
 * Returns the fd (>= 0, O_CLOEXEC, owned by the caller) with *st filled, or:
 *   -ESTALE  it is another inode now (the tree changed under us)
 *   -ELOOP / -EXDEV  a symlink or mount now sits on the path
 *   -EINVAL  an empty, "." or ".." component
 *   -errno   from the opens */
#define VP_PIN_XDEV 1u
int vp_pin(int at_fd, const char *path, uint64_t dev, uint64_t ino, struct stat *st,
           uint64_t *btime, unsigned flags);

/* As vp_pin(), whatever inode it finds: the fd with *st (and *btime)
 * filled, for a caller that checks the identity itself (the walk, which pins
 * each name of a listing as it first stats it: walk.h, cfg->pin). */
int vp_pin_open(int at_fd, const char *path, unsigned flags, struct stat *st, uint64_t *btime);

/* Has directory dirfd's ctime moved away from was's? A rename of it, or an
 * entry created or removed in it, sets a new one (tmpfs, ext4, xfs, btrfs,
 * and what FUSE and NFS servers report). false also when it cannot be told
 * (no ctime from statx): callers' own identity checks stand then. */
bool vp_dir_changed(int dirfd, const struct stat *was);

/* Does a pin's error r say that the tree changed under us (the entry is
 * not where, or not what, it was: a conflict or a skip), rather than that
 * the pin could not be made (out of fds or memory, I/O, permission: an
 * error, which a later run may not meet)? */
bool vp_pin_tree_changed(int r);

/* The inode's birth time (statx STATX_BTIME) in ns, or 0 when the
 * filesystem does not record one. An inode number can be reused as soon as
 * a file is deleted; a reused inode has a new birth time. */
uint64_t vp_fd_btime(int fd);

/* Pinning many paths of one tree from its root, as rollback does: it keeps
 * the directories it went through on the current path (their dev/ino and
 * the prefix each stands for; fds for the newest VP_PIN_CACHE_FDS of them)
 * and resolves each path from its deepest cached ancestor, with vp_pin's
 * rules on every step. A directory whose fd was closed is reopened through
 * ".." of a deeper one, or from a shallower one, and must be the dev/ino it
 * had. Paths given in preorder (rollback: the journal read backwards) cost
 * O(1) syscalls each, whatever their depth. Single-threaded. */
#define VP_PIN_CACHE_FDS 16
struct vp_pin_cache;

/* root_fd is borrowed and must outlive the cache. Returns 0 or -ENOMEM. */
int vp_pin_cache_new(int root_fd, unsigned flags, struct vp_pin_cache **ret);
void vp_pin_cache_free(struct vp_pin_cache *c);
/* As vp_pin(root_fd, path, ...), path of len bytes (no NUL needed). */
int vp_pin_cached(struct vp_pin_cache *c, const char *path, size_t len, uint64_t dev,
                  uint64_t ino, struct stat *st, uint64_t *btime);

#endif
