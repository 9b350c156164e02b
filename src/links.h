/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_LINKS_H
#define VOLPERM_LINKS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Hard-link accounting for non-directories with st_nlink > 1. A file is
 * changed only when every one of its links was found inside the tree (a link
 * that leads outside is how CVE-2017-18078 turned a recursive chown into a
 * chown of /etc/shadow). The walk meets the links one at a time, so "all
 * found" can be faked by moving one link around while it walks; closed here:
 *   - one link seen twice (a bind mount inside the volume, or a link renamed
 *     back and forth) counts once: links are told apart by their parent
 *     directory's (dev, ino) and their name;
 *   - an inode any of whose names is renamed, linked or unlinked between its
 *     first counted sighting and the decision is never changed: an inotify
 *     watch sees that (watch.h), and a moving ctime too.
 * The verdict is given by the sighting that finds the last link; every
 * sighting that counts is a fresh lookup made after the watch was set.
 * Memory is proportional to the links of multiply linked inodes only.
 * vp_links_see() may be called from several threads at once (it locks the
 * table, and does its lookups outside the lock); the others may not. */

struct vp_links;

int vp_links_new(struct vp_links **ret);
void vp_links_free(struct vp_links *l);

enum vp_links_verdict {
	VP_LINKS_WAIT,     /* not every link found yet */
	VP_LINKS_DUE,      /* every link found (or the first, with external
	                    * links allowed): change the inode now */
	VP_LINKS_DONE,     /* decided before: nothing to do */
	VP_LINKS_UNSTABLE, /* its names changed during the walk: leave it */
};

/* One sighting of the inode the walk saw as *st, as `name` in the directory
 * dirfd (an O_RDONLY fd, or -1 for the root) whose stat is parent (NULL for
 * the root). *now gets the stat of the sighting that counted (the walk's
 * own stat came before the watch). Returns a verdict, or -errno: -ENOMEM,
 * or why the inode could not be watched (see vp_watch_add), after which it
 * is left alone like an unstable one. The first path is kept for reports. */
int vp_links_see(struct vp_links *l, int dirfd, const char *name, const struct stat *parent,
                 const struct stat *st, const char *relpath, bool allow_external,
                 struct stat *now);

/* Call fn for every inode that was never decided: its links were not all
 * found. fn gets the first path seen, the links seen and st_nlink. */
typedef void (*vp_links_fn)(const char *relpath, nlink_t seen, nlink_t nlink, void *userdata);
void vp_links_each_incomplete(const struct vp_links *l, vp_links_fn fn, void *userdata);

/* Has any link of (dev, ino) been counted yet? (The engine's overlayfs
 * copy-up probe runs on an inode's first sighting only.) Thread-safe. */
bool vp_links_known(struct vp_links *l, dev_t dev, ino_t ino);

#endif
