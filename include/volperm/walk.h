/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_WALK_H
#define VOLPERM_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "volperm/policy.h"

/* The walker: fts(3) only, physical, and nothing else. It classifies what it
 * sees and hands every entry to a callback; it never changes anything.
 * Directories are delivered in postorder (after everything below them), so
 * that a directory is changed only when nothing more needs to pass through
 * it: with CAP_CHOWN but no CAP_DAC_READ_SEARCH, a directory handed to its
 * new owner may no longer be searchable by us. */

enum vp_walk_kind {
	VP_WALK_ENTRY,  /* decide on this entry */
	VP_WALK_SKIP,   /* skipped by a rule: see skip */
	VP_WALK_ERROR,  /* could not be read: see err */
	VP_WALK_FORBIDDEN, /* the forbidden directory (the journal dir) is here */
};

enum vp_skip {
	VP_SKIP_NONE = 0,
	VP_SKIP_EXCLUDED,       /* rule: --exclude */
	VP_SKIP_MOUNT,          /* rule: nested mount point, not entered */
	VP_SKIP_DEVICE,         /* rule: device node */
	VP_SKIP_CYCLE,          /* rule: directory cycle */
	VP_SKIP_EXTERNAL_LINK,  /* safety: hard links outside the tree */
	VP_SKIP_CHANGED,        /* safety: the entry changed under us */
	VP_SKIP__MAX,
};
/* "excluded", "mount-point", "device", "fs-cycle", "external-hardlink", "changed" */
const char *vp_skip_name(enum vp_skip s);
/* Safety skips leave the volume possibly non-compliant (exit 5). */
bool vp_skip_is_safety(enum vp_skip s);

struct vp_walk_entry {
	enum vp_walk_kind kind;
	enum vp_skip skip;
	int err;                  /* positive errno for VP_WALK_ERROR */
	const char *path;         /* full path, for messages */
	const char *relpath;      /* relative to the root; "." for the root */
	size_t relpath_len;
	const char *accpath;      /* usable for reads right now (cwd-relative) */
	const struct stat *st;    /* NULL for some errors */
	const struct stat *parent_st; /* the containing directory; NULL for the root */
	const char *name;         /* the last path component */
};

/* Return 0 to go on, or a negative errno to stop the walk with it. */
typedef int (*vp_walk_fn)(const struct vp_walk_entry *e, void *userdata);

/* Walk `root` (an absolute, resolved path) whose lstat is root_st. The root
 * is always delivered (last). A directory with forbid's (dev, ino) is not
 * entered and is delivered as VP_WALK_FORBIDDEN (forbid may be NULL). Returns 0, the callback's error, or -errno when
 * fts itself fails. Uses fts in its default chdir mode (safe against deep
 * trees); it restores the working directory before returning. */
int vp_walk(const char *root, const struct stat *root_st, const struct vp_policy *p,
            const struct stat *forbid, vp_walk_fn fn, void *userdata);

#endif
