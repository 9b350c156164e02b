/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_IDMAP_H
#define VOLPERM_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volperm/policy.h" /* struct vp_idmap: one OLD:NEW pair */

/* Idmapped mounts (`volperm idmap`, docs/volperm.1): instead of writing new
 * owners into every inode, mount a clone of SRC on DST through a user
 * namespace whose uid_map/gid_map say "on-disk OLD appears as NEW". Nothing
 * on disk changes; the mapping lasts as long as the mount.
 *
 * The namespace maps every id the user did not name to itself, so a remap
 * changes only what was asked: root keeps creating files as 0 through DST
 * (without identity, the kernel refuses with EOVERFLOW), an entry owned by
 * 33 still shows as 33. The identity is split around every id named on
 * either side: an on-disk id that is some NEW but no OLD has nothing left to
 * map to (NEW is taken by its OLD), so it appears as the overflow id 65534
 * and cannot be written through DST. vp_idmap_show() says which. */

/* The largest uid_map/gid_map text the kernel takes: one write(2) of less
 * than a page (kernel/user_namespace.c, map_write). */
#define VP_IDMAP_TEXT_MAX 4096

/* Check that n pairs form a one-to-one map. The same pair twice is
 * accepted. Returns 0, or -EINVAL with *bad_a / *bad_b set to the two OLD
 * ids that collide (same OLD to two NEWs: *bad_a == *bad_b; two OLDs to one
 * NEW: they differ). */
int vp_idmap_check(const struct vp_idmap *m, size_t n, uint32_t *bad_a, uint32_t *bad_b);

/* The /proc/PID/uid_map text for a checked map: the pairs, and identity for
 * the rest of 0..4294967294 split around every named id. Returns 0, or
 * -E2BIG when the text would not fit the kernel's limits (too many pairs). */
int vp_idmap_format(const struct vp_idmap *m, size_t n, char *buf, size_t len);

/* What an on-disk id appears as through the mount: *shown = NEW for an OLD,
 * the id itself for an id not named. Returns false (and *shown = 65534, the
 * kernel's overflow id) for an id that is a NEW but no OLD. */
bool vp_idmap_show(const struct vp_idmap *m, size_t n, uint32_t id, uint32_t *shown);

/* A user namespace fd (O_CLOEXEC, owned by the caller) whose maps are the
 * given texts: a child unshares CLONE_NEWUSER and waits on a pipe while we
 * write its maps as a privileged parent (no "setgroups deny" needed then),
 * open /proc/CHILD/ns/user, and kill and reap it. Returns the fd or -errno
 * (-EPERM without CAP_SETUID/CAP_SETGID/CAP_SYS_ADMIN). */
int vp_idmap_userns(const char *uid_map, const char *gid_map);

/* A detached clone of the tree at src_fd (recursive: nested mounts too),
 * idmapped through userns_fd, read-only on request. Returns the tree fd
 * (O_CLOEXEC, owned by the caller; closing it without attaching it drops
 * the clone) or -errno: -EINVAL from mount_setattr means the filesystem
 * does not support idmapped mounts (FUSE without opt-in, overlayfs as a
 * whole, NFS), -EPERM without CAP_SYS_ADMIN. */
int vp_idmap_clone(int src_fd, bool recursive, int userns_fd, bool rdonly);

/* Attach a clone made by vp_idmap_clone() on the directory dst_fd. */
int vp_idmap_attach(int tree_fd, int dst_fd);

/* Is dst_fd (O_PATH, opened O_NOFOLLOW) the root of an idmapped mount?
 * 0 when it is; -ENOTCONN when it is no mount root (a plain directory, or a
 * subdirectory of a mount); -EMEDIUMTYPE when it is a mount root but not
 * idmapped (a plain bind mount, a filesystem). volperm cannot tell its own
 * idmapped mounts from another tool's: both carry "idmapped" in
 * /proc/self/mountinfo and nothing else. */
int vp_idmap_is_idmapped_root(int dst_fd);

/* Unmount the mount whose root dst_fd is, through /proc/self/fd/N, so that
 * what is unmounted is the very mount that was checked and not whatever
 * DST's path names by then. Lazy (MNT_DETACH): our own fd keeps the mount
 * busy, and processes with files open through it keep them until closed. */
int vp_idmap_detach(int dst_fd);

/* The owners found under SRC, for `idmap --dry-run` and `plan --idmap`: how
 * many entries have each on-disk uid and gid. */
struct vp_idcount {
	uint32_t id;
	uint64_t n;
};

/* Entries with one (uid, gid) pair: what a chown policy would write is a
 * question about both ids of an entry at once. */
struct vp_idpair {
	uint32_t uid, gid;
	uint64_t n;
};

struct vp_idcensus {
	struct vp_idcount *uids, *gids; /* sorted by id */
	size_t n_uids, n_gids;
	struct vp_idpair *pairs;        /* sorted by uid, then gid */
	size_t n_pairs;
	/* Named ACL entries (access and default ACLs), by the id they name:
	 * through an idmapped mount they appear mapped too. */
	struct vp_idcount *acl_uids, *acl_gids;
	size_t n_acl_uids, n_acl_gids;
	uint64_t entries;  /* SRC included */
	uint64_t errors;   /* entries that could not be read (stat or ACL) */
	int first_error;   /* its errno */
};

/* Walk the tree at src_fd (physical; staying on its filesystem unless
 * cross_mounts) and count owners, groups and named ACL entries. Returns 0
 * or -errno (the census is then empty); entries that cannot be read are
 * counted, not fatal. Free with vp_idcensus_free(). */
int vp_idmap_census(int src_fd, bool cross_mounts, struct vp_idcensus *c);
void vp_idcensus_free(struct vp_idcensus *c);

/* The k ids of v with the most entries (ties: the lower id first), most
 * first, into top. Returns how many were written: min(n, k). */
size_t vp_idcount_top(const struct vp_idcount *v, size_t n, struct vp_idcount *top, size_t k);

/* An `--owner UID[:GID]` policy as an idmapped mount. A map is one-to-one,
 * so "every entry to UID" is a map only when every entry has one owner on
 * disk (OLD:UID), and likewise for the group when GID is given. */
struct vp_idmap_owner {
	bool expressible;
	bool many_uids, many_gids; /* why not: more than one owner / group on disk */
	bool unknown;              /* why not: entries could not be read, their owners are unknown */
	/* The maps --owner stands for (when expressible), else those for the
	 * most common owner and group: a proposal. 0 or 1 pair each; none for
	 * the side --owner does not set. */
	size_t n_uid_maps, n_gid_maps;
	struct vp_idmap uid_map, gid_map;
};

/* Decide from the census c. Returns 0 (the answer in *out), -EINVAL when
 * neither has_uid nor has_gid, -ENODATA when the census counted nothing. */
int vp_idmap_owner(const struct vp_idcensus *c, bool has_uid, uint32_t uid, bool has_gid,
                   uint32_t gid, struct vp_idmap_owner *out);

/* What chown (`volperm apply`) would cost instead, from the census: the
 * entries whose owner or group the policy p (--owner, --map, --map-gid;
 * a map first, then the owner, as apply decides) would change. */
uint64_t vp_idmap_chown_cost(const struct vp_idcensus *c, const struct vp_policy *p);

/* The fstab mount option of util-linux 2.39 and later that makes the same
 * mapping: "X-mount.idmap=u:A:B:N g:A:B:N ..." with one u: (g:) token per
 * line of the uid_map (gid_map) text from vp_idmap_format(), the spaces
 * written as \040 (fstab(5) separates fields with blanks). 0, or -E2BIG
 * when it does not fit len, -EINVAL for a malformed map text. */
int vp_idmap_fstab_option(const char *uid_map, const char *gid_map, char *buf, size_t len);

/* Does the mount(8) whose `mount --version` output is text take
 * X-mount.idmap (util-linux 2.39 and later)? 1 or 0, with its version in
 * *major and *minor; -EINVAL when text is no util-linux version line. */
int vp_idmap_mount_takes_idmap(const char *text, unsigned *major, unsigned *minor);

/* SRC or DST of idmap (or PATH of plan --idmap): a directory named by no
 * symlink, and no system path unless allowed (an idmapped mount on /usr
 * would shadow it). Pinned O_PATH in *fd; *resolved is the path of the fd
 * (of what was checked), malloc()ed. 0; -ELOOP a symlink; -ENOTDIR not a
 * directory; -EPERM a system path (*resolved set, for the message); -errno.
 * On failure *fd is -1; free *resolved in every case. */
int vp_idmap_dir_open(const char *path, bool allow_system, int *fd, char **resolved);
/* DST must be empty: an idmapped mount over files would hide them. 0 empty,
 * -ENOTEMPTY, or -errno. */
int vp_idmap_dst_empty(int dst_fd);
/* `mount --version` of this host (which fstab syntax applies): 0 and its
 * first line in buf, or -errno. Only fixed paths (/usr/bin, /bin, /usr/sbin,
 * /sbin): we run as root, and a `mount` found through PATH is not ours to
 * trust. */
int vp_mount_version(char *buf, size_t len);

#endif
