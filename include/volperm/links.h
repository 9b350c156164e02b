/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_LINKS_H
#define VOLPERM_LINKS_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Hard-link accounting for non-directories with st_nlink > 1. A file is
 * changed only when every one of its links was found inside the tree (a link
 * that leads outside is how CVE-2017-18078 turned a recursive chown into a
 * chown of /etc/shadow). Two ways to fake "all links found" are closed here:
 *   - one link seen twice (a bind mount inside the volume, or a link renamed
 *     back and forth during the walk) counts once: links are told apart by
 *     their parent directory's (dev, ino) and their name;
 *   - an inode whose ctime moves between sightings (every rename, link or
 *     unlink touches it) is reported unstable and never changed.
 * Memory is proportional to the links of multiply linked inodes only. */

struct vp_links;

int vp_links_new(struct vp_links **ret);
void vp_links_free(struct vp_links *l);

/* One sighting of the inode st describes, as `name` in the directory whose
 * stat is parent. Returns the number of distinct links seen so far (1 on
 * first sight), 0 when the inode was already marked done, -ESTALE when the inode changed (ctime) since its first
 * sighting, or -ENOMEM. The first path is kept for reports. */
long vp_links_see(struct vp_links *l, const struct stat *st, const struct stat *parent,
                  const char *name, const char *relpath);

/* Mark the inode as handled (changed, or decided) so the final report skips
 * it. */
void vp_links_done(struct vp_links *l, dev_t dev, ino_t ino);

/* Call fn for every inode that was never completed: its links were not all
 * found. fn gets the first path seen, the links seen and st_nlink. */
typedef void (*vp_links_fn)(const char *relpath, nlink_t seen, nlink_t nlink, void *userdata);
void vp_links_each_incomplete(const struct vp_links *l, vp_links_fn fn, void *userdata);

#endif
