/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_LINKS_H
#define VOLPERM_LINKS_H

#include <stdint.h>
#include <sys/types.h>

/* Hard-link accounting for non-directories with st_nlink > 1. A file is
 * changed only when every one of its links was found inside the tree (a link
 * that leads outside is how CVE-2017-18078 turned a recursive chown into a
 * chown of /etc/shadow). Memory is proportional to the number of multiply
 * linked inodes only. */

struct vp_links;

int vp_links_new(struct vp_links **ret);
void vp_links_free(struct vp_links *l);

/* Count one more link of (dev, ino). Returns the number of links seen so far
 * (1 on first sight), or -ENOMEM. The first path seen is kept for reports. */
long vp_links_see(struct vp_links *l, dev_t dev, ino_t ino, nlink_t nlink, const char *relpath);

/* Mark (dev, ino) as handled (changed, or decided) so later sightings and
 * the final report skip it. */
void vp_links_done(struct vp_links *l, dev_t dev, ino_t ino);

/* Call fn for every inode that was never completed: its links were not all
 * found. fn gets the first path seen, the links seen and st_nlink. */
typedef void (*vp_links_fn)(const char *relpath, nlink_t seen, nlink_t nlink, void *userdata);
void vp_links_each_incomplete(const struct vp_links *l, vp_links_fn fn, void *userdata);

#endif
