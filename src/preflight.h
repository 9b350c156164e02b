/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_PREFLIGHT_H
#define VOLPERM_PREFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>


/* Which changes need which capability, entry by entry, so that a user
 * without privilege can do what the kernel lets them do (chmod and ACLs on
 * their own files, chgrp of their own files to one of their groups), and a
 * run that needs more is refused before its first change, naming the entry.
 *
 * The kernel's rules (fs/attr.c setattr_prepare, chown_ok, chgrp_ok;
 * fs/posix_acl.c):
 *   - a new owner needs CAP_CHOWN;
 *   - a new group needs CAP_CHOWN unless the caller owns the file and is a
 *     member of the group (egid or a supplementary group);
 *   - a mode or ACL change needs CAP_FOWNER unless the caller owns the file
 *     (after the chown, when the change comes after one);
 *   - a chown that clears setuid/setgid is such a mode change, checked on
 *     the owner before the chown. */

struct vp_creds {
	uid_t uid;                 /* fsuid (the euid: volperm never sets it apart) */
	gid_t *groups;             /* egid and the supplementary groups */
	size_t n_groups;
	bool cap_chown, cap_fowner; /* in the effective set */
};

/* The caller's. 0 or -errno; free with vp_creds_free(). */
int vp_creds_get(struct vp_creds *c);
void vp_creds_free(struct vp_creds *c);

/* One change: before and after (what volperm sets), VP_CH_* flags. */
struct vp_change {
	uint32_t uid, gid, mode;
	uint32_t new_uid, new_gid, new_mode;
	unsigned changes;
};

/* The capability (CAP_CHOWN or CAP_FOWNER) that making the change
 * (reverse=false), or undoing it as rollback does (reverse=true), needs and
 * c lacks; -1 when c may make it. *what gets a few words saying which step
 * needs it ("give it to uid 1001"). */
/* The `what` of a chown that clears setuid/setgid (CAP_FOWNER needed): the
 * engine words that refusal apart. */
extern const char vp_what_clears_setid[];

int vp_change_missing_cap(const struct vp_creds *c, const struct vp_change *ch, bool reverse,
                          const char **what);

/* The other per-entry rule of the same walk, vp_owner_unmapped() (an entry
 * owned by an id this user namespace does not map cannot be changed at
 * all), is implemented in preflight.c too; it is declared in
 * include/volperm/caps.h because plan and check in the CLI use it. */


#endif
