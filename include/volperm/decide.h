/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_DECIDE_H
#define VOLPERM_DECIDE_H

#include <stdbool.h>
#include <sys/stat.h>

#include "volperm/policy.h"

/* The one decision function that plan, check and apply share: pure (no
 * syscalls), from an lstat result and a policy to the change to make. */

enum {
	VP_CH_UID = 1u << 0,        /* owner changes */
	VP_CH_GID = 1u << 1,        /* group changes */
	VP_CH_DROP_SUID = 1u << 2,  /* chown will clear setuid (kernel rule) */
	VP_CH_DROP_SGID = 1u << 3,  /* chown will clear setgid (kernel rule) */
	VP_CH_DROP_CAPS = 1u << 4,  /* chown will drop security.capability (set by caller) */
};

struct vp_decision {
	unsigned changes;  /* VP_CH_* */
	uid_t uid;         /* target owner (== st_uid if unchanged) */
	gid_t gid;         /* target group */
	mode_t mode;       /* the mode the entry will have after the change, incl. type */
};

/* Fill *d for the entry described by st. d->changes == 0 means compliant. */
void vp_decide(const struct vp_policy *p, const struct stat *st, struct vp_decision *d);

/* The mode a chown(2) leaves behind on Linux: for non-directories, setuid is
 * cleared, and setgid is cleared when group-execute is set (without group
 * execute it marks mandatory locking and stays). Directories keep both. */
mode_t vp_mode_after_chown(mode_t mode);

/* Short name of the file type: "dir", "file", "symlink", "fifo", "socket",
 * "chardev", "blockdev", "unknown". */
const char *vp_type_name(mode_t mode);

#endif
