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
 * group class, a missing default ACL seeded from the file's mode.
 *
 * An ACL is as large as the filesystem lets it be (ext4 about a block's
 * worth, xfs v5 5461 entries, tmpfs 8191), so a struct vp_acl holds its
 * entries on the heap, sized by what was parsed or edited: no fixed cap
 * that could silently drop a grant. Start from VP_ACL_INIT (or all
 * zeroes); every function that fills an ACL reuses and grows a->e; release
 * with vp_acl_free(). Functions that can grow an ACL return 0 or a negative
 * errno; *a stays the caller's to free on failure too. */

enum {
	VP_ACL_USER_OBJ = 0x01, VP_ACL_USER = 0x02, VP_ACL_GROUP_OBJ = 0x04,
	VP_ACL_GROUP = 0x08, VP_ACL_MASK = 0x10, VP_ACL_OTHER = 0x20,
};

/* The kernel refuses xattr values over XATTR_SIZE_MAX (64 KiB, in
 * <linux/limits.h>) on every filesystem, so no ACL can hold more than
 * (65536 - 4) / 8 = 8191 entries: larger values cannot have come from the
 * kernel, and a larger edit could never be written. */
#define VP_ACL_XATTR_MAX 65536u
#define VP_ACL_MAX ((VP_ACL_XATTR_MAX - 4) / 8)

struct vp_acl_entry {
	uint16_t tag, perm;
	uint32_t id;
};

struct vp_acl {
	size_t n;                 /* entries in use */
	size_t cap;               /* entries allocated at e */
	struct vp_acl_entry *e;   /* malloc()ed; NULL while cap == 0 */
};
#define VP_ACL_INIT { 0, 0, NULL }

/* Release a->e and reset *a to VP_ACL_INIT (its signature suits
 * __attribute__((cleanup))). */
void vp_acl_free(struct vp_acl *a);
/* Make *dst a deep copy of *src. 0 or -ENOMEM (dst unchanged). */
int vp_acl_copy(struct vp_acl *dst, const struct vp_acl *src);

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

/* Parse a raw xattr value into *a. -EBADMSG when it is not a version 2 ACL
 * or has more than VP_ACL_MAX entries (a value no kernel returns); -ENOMEM. */
int vp_acl_from_xattr(const void *val, size_t len, struct vp_acl *a);
/* Encode in the kernel's canonical order. Returns the size (4 + 8n); when
 * that is more than cap, nothing is written. */
size_t vp_acl_to_xattr(const struct vp_acl *a, uint8_t *buf, size_t cap);
/* The three base entries of a mode. 0 or -ENOMEM. */
int vp_acl_from_mode(mode_t mode, struct vp_acl *a);
/* Sort canonically; recompute the mask as the union of the group class when
 * the ACL has named entries (adding a mask if missing). 0 or -ENOMEM. */
int vp_acl_normalize(struct vp_acl *a);
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

/* Apply grants/revokes to an ACL (access: X from is_dir or any x in mode).
 * 0; -E2BIG when the result would have more than VP_ACL_MAX entries (no
 * filesystem could store it: an error, never a grant silently left out);
 * -ENOMEM. On an error *a is half edited: free it, do not use it. */
int vp_acl_apply(struct vp_acl *a, const struct vp_grant *g, size_t ng,
                 const struct vp_grant *r, size_t nr, bool is_dir, mode_t mode);

#endif
