/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_ACL_H
#define VOLPERM_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* POSIX ACLs as the kernel stores them in system.posix_acl_access/default
 * (a le32 version 2, then le16 tag, le16 perm, le32 id per entry), and the
 * pure edits --grant and --revoke make, with setfacl -m / -x semantics:
 * named entries added or replaced, the mask recomputed as the union of the
 * group class, a missing default ACL seeded from the file's mode. */

enum {
	VP_ACL_USER_OBJ = 0x01, VP_ACL_USER = 0x02, VP_ACL_GROUP_OBJ = 0x04,
	VP_ACL_GROUP = 0x08, VP_ACL_MASK = 0x10, VP_ACL_OTHER = 0x20,
};

#define VP_ACL_MAX 64

struct vp_acl_entry {
	uint16_t tag, perm;
	uint32_t id;
};

struct vp_acl {
	size_t n;
	struct vp_acl_entry e[VP_ACL_MAX];
};

/* A grant or revoke: u:ID:PERMS / g:ID:PERMS (PERMS of rwxX), or u:ID / g:ID
 * for a revoke. */
struct vp_grant {
	uint16_t tag;      /* VP_ACL_USER or VP_ACL_GROUP */
	uint32_t id;
	uint16_t perm;     /* rwx as 4/2/1 */
	bool cond_x;       /* X */
};

struct vp_iddb;
/* Parse a comma list of grants ("u:1001:rwX,g:1001:rx") or, with revoke,
 * of "u:1001,g:1001"; names are looked up in db (NULL: local database).
 * Appends to *v (realloc). 0 or -EINVAL. */
int vp_parse_grants(const struct vp_iddb *db, const char *s, bool revoke, struct vp_grant **v,
                    size_t *n);

int vp_acl_from_xattr(const void *val, size_t len, struct vp_acl *a);
/* Encode in the kernel's canonical order. Returns the size (4 + 8n). */
size_t vp_acl_to_xattr(const struct vp_acl *a, uint8_t *buf, size_t cap);
/* The three base entries of a mode. */
void vp_acl_from_mode(mode_t mode, struct vp_acl *a);
/* Sort canonically; recompute the mask as the union of the group class when
 * the ACL has named entries (adding a mask if missing). */
void vp_acl_normalize(struct vp_acl *a);
/* The mode the file has with this access ACL: group bits = mask (or group
 * object without a mask), user/other from their entries. */
mode_t vp_acl_mode(const struct vp_acl *a, mode_t mode);
bool vp_acl_equal(const struct vp_acl *a, const struct vp_acl *b);
/* True when the ACL carries nothing beyond the mode (no named entries,
 * no mask): the kernel stores no xattr for it. */
bool vp_acl_is_minimal(const struct vp_acl *a);

/* Check an ACL with libacl's acl_valid(): exactly one of each base entry,
 * unique named entries, a mask when there are named entries. Every ACL we
 * are about to write passes through here. 0 or -EINVAL. */
int vp_acl_check(const struct vp_acl *a);

/* Apply grants/revokes to an ACL (access: X from is_dir or any x in mode). */
void vp_acl_apply(struct vp_acl *a, const struct vp_grant *g, size_t ng,
                  const struct vp_grant *r, size_t nr, bool is_dir, mode_t mode);

#endif
