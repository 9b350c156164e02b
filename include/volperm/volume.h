/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_VOLUME_H
#define VOLPERM_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "volperm/jdir.h"

/* What ties a volume's tree to the other volperm runs and journals that
 * touch it. Two trees overlap when one is the other, or lies inside it:
 * an apply on V and one on V/sub change the same entries, so they must not
 * run at once, and a crashed apply on V/sub leaves V half changed too. */

/* The root of a run: PATH resolved, pinned O_PATH, and its stat. */
struct vp_root {
	char *path;       /* realpath(3) of PATH, malloc()ed */
	int fd;           /* O_PATH|O_NOFOLLOW|O_CLOEXEC */
	struct stat st;   /* fstat(fd) */
	/* A root that is not a directory (a volume of one file) has no ".."
	 * to climb from: its parent directory, O_PATH, opened once here for
	 * both the hot-journal check and the tree lock; -1 for a directory,
	 * or when the parent cannot be opened. */
	int parent_fd;
};
#define VP_ROOT_INIT { .fd = -1, .parent_fd = -1 }

/* Is this resolved path one of the system directories volperm refuses as a
 * PATH unless asked (--allow-system-path)? /, /etc, /usr, /var, /home ...:
 * a recursive change of owners there breaks the host. */
bool vp_is_system_path(const char *resolved);

/* Resolve PATH and pin it. Returns 0; -EPERM when it resolves to a system
 * path and !allow_system (r->path is then set, so the caller can name it);
 * or -errno, with r->path NULL when the resolution itself failed. Free with
 * vp_root_close() in every case. */
int vp_root_open(const char *path, bool allow_system, struct vp_root *r);
void vp_root_close(struct vp_root *r);
/* fstat the root again (a rollback changed it). 0 or -errno. */
int vp_root_refresh(struct vp_root *r);
/* The used inodes of the root's filesystem, a bound on the entries a walk
 * meets (the progress ETA's denominator); 0 when unknown. */
uint64_t vp_root_used_inodes(const struct vp_root *r);

/* The directory k levels above the absolute path ("/" at the top), in buf
 * (truncated to size): the lock names the run that holds it this way. */
void vp_path_up(const char *path, size_t k, char *buf, size_t size);

/* The directories from a root up to "/" (the root first), by dev/ino. */
struct vp_ancestry {
	size_t n;
	struct vp_devino { uint64_t dev, ino; } *v;
};

/* Climb from the directory fd dir_fd (or, for a root that is not a
 * directory, from its parent, given as parent_fd) up to "/" through "..".
 * No path strings: bind mounts and symlinked spellings cannot hide the
 * relation. 0 or -errno; free with vp_ancestry_free(). */
int vp_ancestry_get(int dir_fd, struct vp_ancestry *a);
void vp_ancestry_free(struct vp_ancestry *a);
bool vp_ancestry_has(const struct vp_ancestry *a, uint64_t dev, uint64_t ino);

/* The locks of one run on a tree. */
struct vp_tree_lock {
	int jlock;        /* the per-root lock file in the journal directory, or -1 */
	int root;         /* LOCK_EX on the root directory itself, or -1 */
	int *up;          /* LOCK_SH on each directory above it, up to "/" */
	size_t n_up;
	size_t climbed;   /* directories above visited so far (internal) */
	size_t busy_level;/* out, on -EWOULDBLOCK: 0 the root (or its lock file),
	                   * k the k-th directory up */
};
#define VP_TREE_LOCK_INIT { .jlock = -1, .root = -1 }

/* Keep every other volperm off overlapping trees: the per-root lock file
 * in the journal directory (jdir_fd >= 0), LOCK_EX on the root directory,
 * and LOCK_SH on every directory above it up to "/". A run on V holds V
 * exclusively; a run on V/sub holds V shared: so they exclude each other
 * in both directions, while runs on V/a and V/b share V. All locks are
 * LOCK_NB. A root that is not a directory gets its parent and those above
 * it shared (parent_fd: an fd of the parent directory, -1 if none).
 * Directories above that cannot be opened (no read permission) are left
 * out: such a run is not seen through them.
 * Returns 0, -EWOULDBLOCK (l->busy_level says where: 0 the root itself,
 * k >= 1 the k-th directory up: a run on a tree that contains it), or
 * -errno. On failure nothing stays locked. */
int vp_tree_lock(int root_fd, int parent_fd, int jdir_fd, uint64_t dev, uint64_t ino,
                 struct vp_tree_lock *l);
void vp_tree_unlock(struct vp_tree_lock *l);

/* Does the tree of journal j (its root's dev/ino, and the path its header
 * records) overlap the tree whose root is root_dev/root_ino with ancestry
 * anc? 1: j's root is the root itself; 2: j's root contains it; 3: j's root
 * lies inside it (its recorded path is opened and checked by dev/ino, then
 * climbed); 0: no overlap (or j's root cannot be found any more). */
int vp_tree_overlap(uint64_t root_dev, uint64_t root_ino, const struct vp_ancestry *anc,
                    const struct vp_jinfo *j);

#endif
