/* SPDX-License-Identifier: GPL-2.0-or-later */
/* POSIX ACL arithmetic for --grant / --revoke (see acl.h). We edit the raw
 * xattr form ourselves, so the before-image in the journal and what we write
 * are the same bytes the kernel keeps; libacl's acl_t has no public way in or
 * out of that form. Entries live on the heap, sized by what was parsed: the
 * only bound is the kernel's (VP_ACL_MAX), and going over it is -E2BIG. */
#include <acl/libacl.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/acl.h>
#include <string.h>

#include "volperm/acl.h"
#include "volperm/idspec.h"

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int vp_parse_grants(const struct vp_iddb *db, const char *s, bool revoke, struct vp_grant **v,
                    size_t *n)
{
	char *copy = strdup(s ? s : ""), *save = NULL, *tok;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	/* strtok_r would silently skip empty items; setfacl refuses them (but
	 * accepts one trailing comma). */
	size_t len = strlen(copy);
	if (!len || copy[0] == ',' || strstr(copy, ",,"))
		r = -EINVAL;
	for (tok = strtok_r(copy, ",", &save); tok && r == 0; tok = strtok_r(NULL, ",", &save)) {
		struct vp_grant g = { 0 };
		char *c1 = strchr(tok, ':'), *c2;
		if (!c1 || c1 - tok != 1 || (tok[0] != 'u' && tok[0] != 'g')) {
			r = -EINVAL;
			break;
		}
		g.tag = tok[0] == 'u' ? VP_ACL_USER : VP_ACL_GROUP;
		c2 = strchr(c1 + 1, ':');
		if (revoke != !c2) {
			r = -EINVAL;
			break;
		}
		if (c2)
			*c2 = 0;
		uid_t id;
		r = tok[0] == 'u' ? vp_parse_user_db(db, c1 + 1, &id) : vp_parse_group_db(db, c1 + 1, &id);
		if (r < 0)
			break;
		g.id = id;
		if (c2) {
			if (!c2[1]) {
				r = -EINVAL;
				break;
			}
			for (char *p = c2 + 1; *p && r == 0; p++) {
				switch (*p) {
				case 'r': g.perm |= 4; break;
				case 'w': g.perm |= 2; break;
				case 'x': g.perm |= 1; break;
				case 'X': g.cond_x = true; break;
				case '-': break;
				default: r = -EINVAL;
				}
			}
		}
		struct vp_grant *nv = r ? NULL : realloc(*v, (*n + 1) * sizeof(**v));
		if (!r && !nv)
			r = -ENOMEM;
		if (nv) {
			nv[(*n)++] = g;
			*v = nv;
		}
	}
	free(copy);
	return r;
}

void vp_acl_free(struct vp_acl *a)
{
	free(a->e);
	*a = (struct vp_acl)VP_ACL_INIT;
}

/* Room for n entries. No VP_ACL_MAX check here: an edit may pass through
 * more entries than it ends with (a grant that replaces an entry), so the
 * bound is checked on results, by vp_acl_apply. */
static int reserve(struct vp_acl *a, size_t n)
{
	if (n <= a->cap)
		return 0;
	if (n > SIZE_MAX / sizeof(*a->e))
		return -ENOMEM;
	struct vp_acl_entry *ne = realloc(a->e, n * sizeof(*ne));
	if (!ne)
		return -ENOMEM;
	a->e = ne;
	a->cap = n;
	return 0;
}

int vp_acl_copy(struct vp_acl *dst, const struct vp_acl *src)
{
	int r = reserve(dst, src->n);

	if (r < 0)
		return r;
	if (src->n)
		memcpy(dst->e, src->e, src->n * sizeof(*src->e));
	dst->n = src->n;
	return 0;
}

int vp_acl_from_xattr(const void *val, size_t len, struct vp_acl *a)
{
	const uint8_t *p = val;

	if (len < 4 || (len - 4) % 8 || le32(p) != 2 || (len - 4) / 8 > VP_ACL_MAX)
		return -EBADMSG;
	int r = reserve(a, (len - 4) / 8);
	if (r < 0)
		return r;
	a->n = 0;
	for (size_t off = 4; off < len; off += 8)
		a->e[a->n++] = (struct vp_acl_entry){
			.tag = (uint16_t)(p[off] | p[off + 1] << 8),
			.perm = (uint16_t)(p[off + 2] | p[off + 3] << 8),
			.id = le32(p + off + 4),
		};
	return 0;
}

static int cmp_entry(const void *x, const void *y)
{
	const struct vp_acl_entry *a = x, *b = y;
	if (a->tag != b->tag)
		return a->tag < b->tag ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

size_t vp_acl_to_xattr(const struct vp_acl *a, uint8_t *buf, size_t cap)
{
	size_t need = 4 + 8 * a->n;

	if (cap < need)
		return need;
	buf[0] = 2;
	buf[1] = buf[2] = buf[3] = 0;
	for (size_t i = 0; i < a->n; i++) {
		uint8_t *q = buf + 4 + 8 * i;
		const struct vp_acl_entry *e = &a->e[i];
		uint32_t id = e->tag == VP_ACL_USER || e->tag == VP_ACL_GROUP ? e->id : 0xffffffffu;
		q[0] = (uint8_t)e->tag;
		q[1] = (uint8_t)(e->tag >> 8);
		q[2] = (uint8_t)e->perm;
		q[3] = (uint8_t)(e->perm >> 8);
		q[4] = (uint8_t)id;
		q[5] = (uint8_t)(id >> 8);
		q[6] = (uint8_t)(id >> 16);
		q[7] = (uint8_t)(id >> 24);
	}
	return need;
}

int vp_acl_from_mode(mode_t mode, struct vp_acl *a)
{
	int r = reserve(a, 3);

	if (r < 0)
		return r;
	a->n = 3;
	a->e[0] = (struct vp_acl_entry){ VP_ACL_USER_OBJ, (uint16_t)((mode >> 6) & 7), 0xffffffffu };
	a->e[1] = (struct vp_acl_entry){ VP_ACL_GROUP_OBJ, (uint16_t)((mode >> 3) & 7), 0xffffffffu };
	a->e[2] = (struct vp_acl_entry){ VP_ACL_OTHER, (uint16_t)(mode & 7), 0xffffffffu };
	return 0;
}

static struct vp_acl_entry *find(struct vp_acl *a, uint16_t tag, uint32_t id)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->e[i].tag == tag && (a->e[i].id == id || (tag != VP_ACL_USER && tag != VP_ACL_GROUP)))
			return &a->e[i];
	return NULL;
}

int vp_acl_normalize(struct vp_acl *a)
{
	bool named = false;
	uint16_t mask = 0;

	for (size_t i = 0; i < a->n; i++) {
		uint16_t t = a->e[i].tag;
		if (t == VP_ACL_USER || t == VP_ACL_GROUP)
			named = true;
		if (t == VP_ACL_USER || t == VP_ACL_GROUP || t == VP_ACL_GROUP_OBJ)
			mask |= a->e[i].perm;
	}
	struct vp_acl_entry *m = find(a, VP_ACL_MASK, 0);
	if (m) {
		m->perm = mask;
	} else if (named) {
		int r = reserve(a, a->n + 1);
		if (r < 0)
			return r;
		a->e[a->n++] = (struct vp_acl_entry){ VP_ACL_MASK, mask, 0xffffffffu };
	}
	if (a->n)
		qsort(a->e, a->n, sizeof(a->e[0]), cmp_entry);
	return 0;
}

mode_t vp_acl_mode(const struct vp_acl *a, mode_t mode)
{
	struct vp_acl *w = (struct vp_acl *)a;
	const struct vp_acl_entry *u = find(w, VP_ACL_USER_OBJ, 0), *g = find(w, VP_ACL_GROUP_OBJ, 0),
	                          *o = find(w, VP_ACL_OTHER, 0), *m = find(w, VP_ACL_MASK, 0);
	mode_t r = mode & ~(mode_t)0777;

	if (m)
		g = m;
	r |= (mode_t)((u ? u->perm : 0) << 6 | (g ? g->perm : 0) << 3 | (o ? o->perm : 0));
	return r;
}

bool vp_acl_equal(const struct vp_acl *a, const struct vp_acl *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->e[i].tag != b->e[i].tag || a->e[i].perm != b->e[i].perm ||
		    ((a->e[i].tag == VP_ACL_USER || a->e[i].tag == VP_ACL_GROUP) && a->e[i].id != b->e[i].id))
			return false;
	return true;
}

bool vp_acl_is_minimal(const struct vp_acl *a)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->e[i].tag == VP_ACL_USER || a->e[i].tag == VP_ACL_GROUP || a->e[i].tag == VP_ACL_MASK)
			return false;
	return true;
}

int vp_acl_apply(struct vp_acl *a, const struct vp_grant *g, size_t ng,
                 const struct vp_grant *r, size_t nr, bool is_dir, mode_t mode)
{
	/* Room for every grant as a new entry and a mask, up front: the loop
	 * below then cannot fail half way. */
	if (ng > SIZE_MAX / 2 || reserve(a, a->n + ng + 1) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		struct vp_acl_entry *e = find(a, r[i].tag, r[i].id);
		if (e)
			*e = a->e[--a->n];
	}
	(void)mode; /* the ACL already carries the mode's bits */
	for (size_t i = 0; i < ng; i++) {
		uint16_t perm = g[i].perm;
		/* setfacl's X: execute for directories, and for files where some
		 * entry (but the mask) already has execute, counting the entries
		 * granted before this one. */
		bool any_x = false;
		for (size_t k = 0; k < a->n; k++)
			any_x |= a->e[k].tag != VP_ACL_MASK && (a->e[k].perm & 1);
		if (g[i].cond_x && (is_dir || any_x))
			perm |= 1;
		struct vp_acl_entry *e = find(a, g[i].tag, g[i].id);
		if (e)
			e->perm = perm;
		else
			a->e[a->n++] = (struct vp_acl_entry){ g[i].tag, perm, g[i].id };
	}
	int err = vp_acl_normalize(a);
	if (err < 0)
		return err;
	/* What the kernel could never store is an error for this entry, not
	 * an ACL quietly cut to size. */
	return a->n > VP_ACL_MAX ? -E2BIG : 0;
}

int vp_acl_check(const struct vp_acl *a)
{
	acl_t acl = acl_init((int)a->n);
	int r = 0;

	if (!acl)
		return -errno;
	for (size_t i = 0; i < a->n && r == 0; i++) {
		acl_entry_t ent;
		acl_permset_t ps;
		const struct vp_acl_entry *e = &a->e[i];
		acl_tag_t tag = e->tag == VP_ACL_USER_OBJ ? ACL_USER_OBJ
		                : e->tag == VP_ACL_USER ? ACL_USER
		                : e->tag == VP_ACL_GROUP_OBJ ? ACL_GROUP_OBJ
		                : e->tag == VP_ACL_GROUP ? ACL_GROUP
		                : e->tag == VP_ACL_MASK ? ACL_MASK
		                : e->tag == VP_ACL_OTHER ? ACL_OTHER : ACL_UNDEFINED_TAG;
		if (tag == ACL_UNDEFINED_TAG || acl_create_entry(&acl, &ent) < 0 ||
		    acl_set_tag_type(ent, tag) < 0 || acl_get_permset(ent, &ps) < 0 ||
		    acl_clear_perms(ps) < 0) {
			r = -EINVAL;
			break;
		}
		if (((e->perm & 4) && acl_add_perm(ps, ACL_READ) < 0) ||
		    ((e->perm & 2) && acl_add_perm(ps, ACL_WRITE) < 0) ||
		    ((e->perm & 1) && acl_add_perm(ps, ACL_EXECUTE) < 0) ||
		    acl_set_permset(ent, ps) < 0)
			r = -EINVAL;
		if (r == 0 && (tag == ACL_USER || tag == ACL_GROUP)) {
			id_t id = e->id;
			if (acl_set_qualifier(ent, &id) < 0)
				r = -EINVAL;
		}
	}
	if (r == 0 && acl_valid(acl) != 0)
		r = -EINVAL;
	acl_free(acl);
	return r;
}
