/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_META_H
#define VOLPERM_META_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Metadata of one pinned entry: reading its before-image xattrs and changing
 * it, always through an O_PATH fd. O_PATH fds refuse f*xattr() and fchmod(),
 * so those go through the fd's /proc/self/fd/N magic link, which names
 * exactly the pinned inode (it cannot be redirected by a rename): on Linux
 * >= 6.13 as getxattrat() & co. on "N" below one /proc/self/fd fd opened
 * once, else by path; chmod is fchmodat2(fd, "", AT_EMPTY_PATH) on Linux
 * >= 6.6, else chmod() by path. Every function is thread-safe.
 *
 * The walk's xattr reads (before anything is pinned) are here too, so that
 * every way of reaching an inode's xattrs, and its fallback, is in one
 * place. */

#define VP_XATTR_ACL_ACCESS "system.posix_acl_access"
#define VP_XATTR_ACL_DEFAULT "system.posix_acl_default"
#define VP_XATTR_CAPS "security.capability"

struct vp_xattrs {
	void *acl_access;  size_t acl_access_len;
	void *acl_default; size_t acl_default_len;
	void *caps;        size_t caps_len;
};

/* Read the three xattrs of a regular file or directory (others have none
 * that matter and are not touched). Absent ones stay NULL/0. */
int vp_xattrs_read(int fd, mode_t mode, struct vp_xattrs *x);
void vp_xattrs_free(struct vp_xattrs *x);

/* One xattr into a caller's buffer (size 0: its size only), as getxattr(2):
 * the value's size, or -errno (-ENODATA: absent; -ERANGE: buf too small).
 * These two are the walk's reads, before anything is pinned: */
/* ... of fd's own inode: any fd, a read fd or an O_PATH fd. */
long vp_fd_getxattr_buf(int fd, const char *name, void *buf, size_t size);
/* ... of the entry `entry` (one name, no slash) of directory dirfd, without
 * following it if it is a symlink: getxattrat(2) (Linux 6.13) when this
 * process can use it, else lgetxattr() of /proc/self/fd/<dirfd>/<entry>. */
long vp_getxattr_at(int dirfd, const char *entry, const char *name, void *buf, size_t size);

/* Read one xattr; *ret malloc()ed. Returns 0 with *ret NULL if absent. */
int vp_fd_getxattr(int fd, const char *name, void **ret, size_t *len);
/* Set, or with val NULL remove (absent is fine). */
int vp_fd_setxattr(int fd, const char *name, const void *val, size_t len);

/* fchownat(fd, "", uid, gid, AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW). */
int vp_fd_chown(int fd, uid_t uid, gid_t gid);
/* chmod of the pinned inode; -ELOOP for symlinks (never chmod those).
 * Costs an fstat() to tell; vp_fd_chmod_type() does not. */
int vp_fd_chmod(int fd, mode_t mode);
/* Same, for a caller that has the fd's st_mode already (the pin's fstat;
 * an inode's file type never changes): type's S_IFMT bits say whether it
 * is a symlink. */
int vp_fd_chmod_type(int fd, mode_t type, mode_t mode);

/* Check that /proc/self/fd works (a container without /proc mounted). */
int vp_proc_fd_usable(void);

#endif
