/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_MOUNTINFO_H
#define VOLPERM_MOUNTINFO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* /proc/self/mountinfo, and the walk's mount-point decisions built on it.
 *
 * A bind mount of a directory of the same filesystem has the st_dev of its
 * surroundings, so st_dev alone cannot see it; the mount table can. */

/* One line (proc(5)):
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 * The strings point into the line given to vp_mountinfo_parse_line, with
 * the kernel's octal escapes (\040 space, \011 tab, \012 newline, \134
 * backslash) undone in root, mount_point, fstype and source. */
struct vp_mountinfo {
	uint64_t id, parent_id;
	unsigned major, minor;
	const char *root;          /* the mount's root inside its filesystem:
	                            * not "/" for a bind mount of a directory */
	const char *mount_point;   /* in this process's mount namespace */
	const char *options;       /* per-mount options */
	const char *optional;      /* "shared:1 master:2", "" when none */
	const char *fstype;
	const char *source;
	const char *super_options;
};

/* Parse one line in place (a trailing newline is ignored). Returns 0, or
 * -EINVAL when a field is missing or malformed (then *m is unspecified). */
int vp_mountinfo_parse_line(char *line, struct vp_mountinfo *m);

/* Return 0 to go on, or a negative errno to stop with it. */
typedef int (*vp_mountinfo_fn)(const struct vp_mountinfo *m, void *userdata);

/* Call fn for each line of the table at path (NULL: /proc/self/mountinfo)
 * that parses; a malformed line names no mount we could use and is passed
 * over. Returns 0, fn's negative return, -EIO on a read error, or fopen's
 * -errno (-ENOENT: no such file, no /proc mounted). */
int vp_mountinfo_each(const char *path, vp_mountinfo_fn fn, void *userdata);

/* The mount points strictly below a root, as the (dev, ino) lstat shows at
 * each of them (what the walk sees when it meets one). */
struct vp_mount_key {
	dev_t dev;
	ino_t ino;
};
struct vp_mounts {
	struct vp_mount_key *v;
	size_t n;
};

/* Load the mount points below root (an absolute path without a trailing
 * slash, "/" itself allowed) from the table at path (NULL:
 * /proc/self/mountinfo). A mount point that cannot be lstat'ed (gone, or
 * hidden by a later mount) is left out: the walk cannot meet it either.
 * Returns 0, or -errno with an empty table: -ENOMEM, -EIO (a read error),
 * or fopen's (-ENOENT: there is no table). vp_mounts_free() in either
 * case. */
int vp_mounts_load(struct vp_mounts *m, const char *path, const char *root);
void vp_mounts_free(struct vp_mounts *m);

enum vp_nested {
	VP_NESTED_NONE = 0,   /* part of the volume's filesystem tree */
	VP_NESTED_MOUNT,      /* a mount point: not to be entered */
	VP_NESTED_SUBVOLUME,  /* a btrfs subvolume: its own st_dev, no mount */
};

/* Is the entry `name` of dirfd, whose lstat is *st, a mount point or a
 * subvolume of a volume on root_dev? A different st_dev says "another
 * filesystem tree" at once, and statx's STATX_ATTR_MOUNT_ROOT tells a mount
 * from a subvolume. A match in the table is confirmed with
 * STATX_ATTR_MOUNT_ROOT too (a bind mount has the (dev, ino) of its source,
 * an ordinary directory of the volume), and is a mount when that cannot be
 * told. */
enum vp_nested vp_mounts_nested(const struct vp_mounts *m, const struct stat *st, dev_t root_dev,
                                int dirfd, const char *name);

#endif
