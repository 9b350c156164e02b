/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_DECIDE_H
#define VOLPERM_DECIDE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
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
	VP_CH_MODE = 1u << 5,       /* permission bits change (fsgroup, --chmod, --root-mode, ACL mask) */
	VP_CH_ACL = 1u << 6,        /* the access ACL changes (--grant, --revoke) */
	VP_CH_DEFAULT_ACL = 1u << 7,/* the default ACL of a directory changes */
};

struct vp_decision {
	unsigned changes;  /* VP_CH_* */
	uid_t uid;         /* target owner (== st_uid if unchanged) */
	gid_t gid;         /* target group */
	mode_t mode;       /* the mode the entry will have after the change, incl. type */
	/* With VP_CH_ACL / VP_CH_DEFAULT_ACL: the new raw xattr values (length 0
	 * means "no such xattr": remove it). malloc()ed, as large as the ACL
	 * is (up to the kernel's 64 KiB), when an ACL policy was decided;
	 * NULL otherwise. Release with vp_decision_free(). */
	size_t acl_access_len, acl_default_len;
	uint8_t *acl_access;
	uint8_t *acl_default;
};

/* What the decision needs to know about one entry. The ACL values are the
 * entry's current raw xattrs, needed only when vp_policy_needs_acls(). */
struct vp_decide_in {
	const struct stat *st;
	bool is_root;
	const void *acl_access;
	size_t acl_access_len;
	const void *acl_default;
	size_t acl_default_len;
};

/* Fill *d (whatever it held before: release an earlier decision's buffers
 * with vp_decision_free() before deciding into it again). d->changes == 0
 * means compliant. Returns 0, or (with d->changes 0: the entry is left
 * alone, as one error for it)
 *   -EBADMSG  a current ACL xattr cannot be parsed, or the result would not
 *             be a valid ACL;
 *   -E2BIG    the edited ACL would have more than VP_ACL_MAX entries, more
 *             than the kernel stores on any filesystem;
 *   -ENOMEM.
 * Call vp_decision_free(d) afterwards in every case. */
int vp_decide(const struct vp_policy *p, const struct vp_decide_in *in, struct vp_decision *d);

/* Free the ACL buffers of a decision vp_decide filled (whatever it
 * returned); the decision keeps its other fields, with no ACL values. */
void vp_decision_free(struct vp_decision *d);

/* Does the root already comply with the parts of the policy that
 * --if-root-mismatch / --fsgroup-policy on-root-mismatch look at (kubelet:
 * a directory with the group, the fsGroup bits and setgid)? */
bool vp_root_complies(const struct vp_policy *p, const struct stat *root_st);

/* The mode a chown(2) leaves behind on Linux: for non-directories, setuid is
 * cleared, and setgid is cleared when group-execute is set (without group
 * execute it marks mandatory locking and stays). Directories keep both. */
mode_t vp_mode_after_chown(mode_t mode);

/* Short name of the file type: "dir", "file", "symlink", "fifo", "socket",
 * "chardev", "blockdev", "unknown". */
const char *vp_type_name(mode_t mode);

#endif
