/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_WATCH_H
#define VOLPERM_WATCH_H

#include <stdbool.h>
#include <sys/stat.h>

/* Did any name of an inode change between two moments? The hard-link rule
 * (links.h) counts an inode's links as the walk meets them, one at a time;
 * the count means something only if no link of the inode was renamed,
 * added or removed in between, or one link hopping from name to name (two
 * names trading places) is counted twice.
 *
 * The inode's ctime cannot tell. Without multigrain timestamps (every
 * kernel before 6.13, and ext2, FUSE, NFS still) it has the granularity of
 * a clock tick, and a tight rename loop makes hundreds of renames per tick;
 * with them, the file system still sets it before the new name is visible
 * in the dcache, so two lookups on two CPUs can see the same ctime on both
 * sides of one rename.
 *
 * An inotify watch on the inode itself can tell: every rename (IN_MOVE_SELF),
 * link and unlink (IN_ATTRIB, the link count) of any of its names queues an
 * event. The kernel queues it before it unlocks the directories involved,
 * so once vp_watch_sync_dir() returned on a directory, every change of a
 * name in that directory that a lookup before it could have seen has its
 * event in the queue. Hence the protocol:
 *   1. vp_watch_add() before the first sighting that counts;
 *   2. each sighting: a lookup, then vp_watch_sync_dir() on its directory;
 *   3. vp_watch_changed() after the last one.
 * If 3 says no, every name was seen while all of them existed at once.
 *
 * Renames that do not go through this kernel's VFS (on an NFS server, in a
 * FUSE daemon's backing directory) make no event; the ctime check that
 * links.c keeps besides is all that sees those.
 *
 * vp_watch_begin(), vp_watch_changed() and vp_watch_free() need the caller
 * to serialize them; vp_watch_add(), vp_watch_remove() and
 * vp_watch_sync_dir() are plain syscalls and may run on any thread at any
 * time after vp_watch_begin(), so that the lookups stay out of the caller's
 * lock. */

struct vp_watch;

struct vp_watch_token {
	int wd;              /* inotify watch descriptor, -1 when none */
	unsigned long epoch; /* queue overflows before the watch was added */
};

int vp_watch_new(struct vp_watch **ret);
void vp_watch_free(struct vp_watch *w);

/* Before a watch: makes the inotify instance on first use, and notes in tok
 * the overflows so far (one after this point voids tok). Returns 0 or
 * -errno (-EMFILE: fs.inotify.max_user_instances). */
int vp_watch_begin(struct vp_watch *w, struct vp_watch_token *tok);

/* Watch the inode that `name` in dirfd is, which must be st's (dev, ino):
 * opened O_PATH|O_NOFOLLOW (a symlink is watched as itself), checked, and
 * watched through /proc/self/fd. Sets tok->wd. One inode watched twice has
 * one watch descriptor. Returns 0, -ESTALE when the name is another inode
 * now, or -errno: -ENOSPC (fs.inotify.max_user_watches), -ENOENT (no
 * /proc). */
int vp_watch_add(const struct vp_watch *w, int dirfd, const char *name, const struct stat *st,
                 struct vp_watch_token *tok);

/* Stop watching (the inode was decided). */
void vp_watch_remove(const struct vp_watch *w, struct vp_watch_token *tok);

/* Wait for every rename, link and unlink in progress in the directory dirfd
 * (an O_RDONLY fd) to finish: getdents() takes the directory's lock, which
 * they hold until their events are queued. Returns 0 or -errno. */
int vp_watch_sync_dir(int dirfd);

/* Has tok's inode had an event since vp_watch_begin()? Reads the queue
 * first. Returns 1 (yes, or events were lost to a queue overflow since, or
 * tok has no watch), 0 (no), or -errno. */
int vp_watch_changed(struct vp_watch *w, const struct vp_watch_token *tok);

#endif
