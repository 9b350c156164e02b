/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for include/volperm/acl.h: POSIX ACL arithmetic for --grant
 * and --revoke.
 *
 * The rules under test (acl.h, issue 5):
 *  - the kernel's xattr form: le32 version 2, then per entry le16 tag, le16
 *    perm, le32 id (0xffffffff for the entries without a qualifier), in the
 *    canonical order user::, user:ID (by id), group::, group:ID (by id),
 *    mask::, other::. Anything else is -EBADMSG.
 *  - vp_acl_apply has setfacl -m / -x semantics: a named entry is added or
 *    replaced, revoked entries go, the mask becomes the union of the group
 *    class (group::, named users and groups) whenever the ACL has named
 *    entries or a mask. X is setfacl's: execute when the file is a
 *    directory or "already has execute permission for some user"
 *    (setfacl(1)), which setfacl decides on the ACL as edited so far
 *    (acl 2.3.1: `setfacl -m u:2000:rwx,u:1000:rwX f` on a 0644 file gives
 *    user:1000:rwx, `-m u:1000:rwX,u:2000:rwx` gives user:1000:rw-).
 *  - vp_parse_grants: u:ID:PERMS / g:ID:PERMS (PERMS of rwxX-), comma
 *    separated, ids numeric or names from the iddb; revoke lists are u:ID /
 *    g:ID. Everything else -EINVAL (or -ERANGE for an out-of-range id).
 * tests/policy/grant.sh compares whole trees with setfacl -R. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "volperm/acl.h"
#include "volperm/idspec.h"

#define UO VP_ACL_USER_OBJ
#define UN VP_ACL_USER
#define GO VP_ACL_GROUP_OBJ
#define GN VP_ACL_GROUP
#define MK VP_ACL_MASK
#define OT VP_ACL_OTHER
#define NOID 0xffffffffu

/* ---- helpers ---- */

/* ACLs own heap memory: locals are AUTO (freed when they go out of scope),
 * and copies are deep (acl_dup, vp_acl_copy). */
#define AUTO __attribute__((cleanup(vp_acl_free)))

static struct vp_acl mkacl(size_t n, const struct vp_acl_entry *e)
{
	struct vp_acl a = VP_ACL_INIT;
	const struct vp_acl src = { .n = n, .cap = n, .e = (struct vp_acl_entry *)e };
	assert_int_equal(vp_acl_copy(&a, &src), 0);
	return a;
}

static struct vp_acl acl_dup(const struct vp_acl *src)
{
	struct vp_acl a = VP_ACL_INIT;
	assert_int_equal(vp_acl_copy(&a, src), 0);
	return a;
}
#define ACL(...)                                                                      \
	mkacl(sizeof((struct vp_acl_entry[]){ __VA_ARGS__ }) / sizeof(struct vp_acl_entry), \
	      (struct vp_acl_entry[]){ __VA_ARGS__ })

static void acl_text(const struct vp_acl *a, char *buf, size_t cap)
{
	size_t off = 0;
	buf[0] = 0;
	for (size_t i = 0; i < a->n && off < cap; i++) {
		const struct vp_acl_entry *e = &a->e[i];
		const char *nm = e->tag == UO || e->tag == UN   ? "user"
		                 : e->tag == GO || e->tag == GN ? "group"
		                 : e->tag == MK                 ? "mask"
		                 : e->tag == OT                 ? "other"
		                                                : "?";
		char id[16] = "";
		if (e->tag == UN || e->tag == GN)
			snprintf(id, sizeof id, "%u", e->id);
		int k = snprintf(buf + off, cap - off, "%s%s:%s:%c%c%c", i ? "," : "", nm, id,
		                 e->perm & 4 ? 'r' : '-', e->perm & 2 ? 'w' : '-',
		                 e->perm & 1 ? 'x' : '-');
		if (k < 0)
			break;
		off += (size_t)k;
	}
}

/* Compare tag, id (of named entries) and perm, entry by entry, in order. */
static void assert_acl_is(const struct vp_acl *got, const struct vp_acl *want, const char *what)
{
	bool same = got->n == want->n;
	for (size_t i = 0; same && i < got->n; i++) {
		const struct vp_acl_entry *g = &got->e[i], *w = &want->e[i];
		same = g->tag == w->tag && g->perm == w->perm &&
		       (!(g->tag == UN || g->tag == GN) || g->id == w->id);
	}
	if (!same) {
		char a[512], b[512];
		acl_text(got, a, sizeof a);
		acl_text(want, b, sizeof b);
		fail_msg("%s:\n   got  %s\n   want %s", what, a, b);
	}
}

static struct vp_grant grant(uint16_t tag, uint32_t id, const char *perms)
{
	struct vp_grant g = { .tag = tag, .id = id };
	for (const char *p = perms; *p; p++) {
		if (*p == 'r')
			g.perm |= 4;
		else if (*p == 'w')
			g.perm |= 2;
		else if (*p == 'x')
			g.perm |= 1;
		else if (*p == 'X')
			g.cond_x = true;
	}
	return g;
}

static void put_entry(uint8_t *q, uint16_t tag, uint16_t perm, uint32_t id)
{
	q[0] = (uint8_t)tag;
	q[1] = (uint8_t)(tag >> 8);
	q[2] = (uint8_t)perm;
	q[3] = (uint8_t)(perm >> 8);
	q[4] = (uint8_t)id;
	q[5] = (uint8_t)(id >> 8);
	q[6] = (uint8_t)(id >> 16);
	q[7] = (uint8_t)(id >> 24);
}

/* ---- xattr form ---- */

/* What `setfacl -m u:1001:rw-,g:3000:r-x f` on a 0640 file leaves in
 * system.posix_acl_access (checked with getfattr -e hex on ext4). */
static const uint8_t REAL_XATTR[] = {
	0x02, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x06, 0x00, 0xff, 0xff, 0xff, 0xff, /* user::rw- */
	0x02, 0x00, 0x06, 0x00, 0xe9, 0x03, 0x00, 0x00, /* user:1001:rw- */
	0x04, 0x00, 0x04, 0x00, 0xff, 0xff, 0xff, 0xff, /* group::r-- */
	0x08, 0x00, 0x05, 0x00, 0xb8, 0x0b, 0x00, 0x00, /* group:3000:r-x */
	0x10, 0x00, 0x07, 0x00, 0xff, 0xff, 0xff, 0xff, /* mask::rwx */
	0x20, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, /* other::--- */
};

static void test_xattr_parse_real(void **state)
{
	(void)state;
	AUTO struct vp_acl a = VP_ACL_INIT;
	assert_int_equal(vp_acl_from_xattr(REAL_XATTR, sizeof REAL_XATTR, &a), 0);
	AUTO struct vp_acl want = ACL({ UO, 6, NOID }, { UN, 6, 1001 }, { GO, 4, NOID },
	                         { GN, 5, 3000 }, { MK, 7, NOID }, { OT, 0, NOID });
	assert_acl_is(&a, &want, "parsed xattr");
	/* and back to the same bytes */
	uint8_t buf[256];
	assert_int_equal(vp_acl_to_xattr(&a, buf, sizeof buf), sizeof REAL_XATTR);
	assert_memory_equal(buf, REAL_XATTR, sizeof REAL_XATTR);
}

static void test_xattr_encode(void **state)
{
	(void)state;
	/* Non-named entries are written with id 0xffffffff whatever the
	 * struct holds; named ones with their id, little-endian. */
	AUTO struct vp_acl a = ACL({ UO, 7, 0 }, { UN, 5, 0x01020304u }, { GO, 5, 12 }, { MK, 7, 0 },
	                      { OT, 1, 99 });
	uint8_t buf[64], want[4 + 5 * 8];
	memset(buf, 0xee, sizeof buf);
	want[0] = 2, want[1] = want[2] = want[3] = 0;
	put_entry(want + 4, UO, 7, NOID);
	put_entry(want + 12, UN, 5, 0x01020304u);
	put_entry(want + 20, GO, 5, NOID);
	put_entry(want + 28, MK, 7, NOID);
	put_entry(want + 36, OT, 1, NOID);
	assert_int_equal(vp_acl_to_xattr(&a, buf, sizeof buf), sizeof want);
	assert_memory_equal(buf, want, sizeof want);
	assert_int_equal(buf[sizeof want], 0xee); /* nothing written past the end */

	/* too small a buffer: the size needed, nothing written */
	uint8_t small[8];
	memset(small, 0xee, sizeof small);
	assert_int_equal(vp_acl_to_xattr(&a, small, sizeof small), sizeof want);
	for (size_t i = 0; i < sizeof small; i++)
		assert_int_equal(small[i], 0xee);

	/* empty ACL: just the header */
	struct vp_acl e = { 0 };
	assert_int_equal(vp_acl_to_xattr(&e, buf, sizeof buf), 4);
	assert_int_equal(buf[0], 2);
}

static void test_xattr_parse_bad(void **state)
{
	(void)state;
	uint8_t *v = malloc(4 + 8 * (VP_ACL_MAX + 1));
	AUTO struct vp_acl a = VP_ACL_INIT;
	assert_non_null(v);
	memcpy(v, REAL_XATTR, sizeof REAL_XATTR);
	assert_int_equal(vp_acl_from_xattr(v, 0, &a), -EBADMSG);
	assert_int_equal(vp_acl_from_xattr(v, 3, &a), -EBADMSG);
	assert_int_equal(vp_acl_from_xattr(v, sizeof REAL_XATTR - 1, &a), -EBADMSG);
	assert_int_equal(vp_acl_from_xattr(v, sizeof REAL_XATTR - 8 + 3, &a), -EBADMSG);
	v[0] = 1; /* version 1 */
	assert_int_equal(vp_acl_from_xattr(v, sizeof REAL_XATTR, &a), -EBADMSG);
	v[0] = 2;
	v[3] = 1; /* version 0x01000002 */
	assert_int_equal(vp_acl_from_xattr(v, sizeof REAL_XATTR, &a), -EBADMSG);
	/* more entries than the kernel stores (XATTR_SIZE_MAX): no kernel
	 * returns such a value */
	v[0] = 2, v[1] = v[2] = v[3] = 0;
	for (size_t i = 0; i < VP_ACL_MAX + 1; i++)
		put_entry(v + 4 + 8 * i, UN, 7, (uint32_t)i);
	assert_int_equal(vp_acl_from_xattr(v, 4 + 8 * (VP_ACL_MAX + 1), &a), -EBADMSG);
	/* exactly VP_ACL_MAX is fine */
	assert_int_equal(vp_acl_from_xattr(v, 4 + 8 * VP_ACL_MAX, &a), 0);
	assert_int_equal(a.n, VP_ACL_MAX);
	/* header only: a valid, empty ACL */
	assert_int_equal(vp_acl_from_xattr(v, 4, &a), 0);
	assert_int_equal(a.n, 0);
	free(v);
}

/* ---- base entries, mode, normalize ---- */

static void test_from_mode(void **state)
{
	(void)state;
	AUTO struct vp_acl a = VP_ACL_INIT;
	assert_int_equal(vp_acl_from_mode(S_IFREG | 0640, &a), 0);
	AUTO struct vp_acl w1 = ACL({ UO, 6, NOID }, { GO, 4, NOID }, { OT, 0, NOID });
	assert_acl_is(&a, &w1, "0640");
	assert_int_equal(vp_acl_from_mode(S_IFDIR | 02751, &a), 0);
	AUTO struct vp_acl w2 = ACL({ UO, 7, NOID }, { GO, 5, NOID }, { OT, 1, NOID });
	assert_acl_is(&a, &w2, "02751 (special bits are not ACL entries)");
	assert_true(vp_acl_is_minimal(&a));
	assert_int_equal(vp_acl_mode(&a, S_IFDIR | 02000), S_IFDIR | 02751);
}

static void test_normalize(void **state)
{
	(void)state;
	/* sorted canonically; a mask is added: the union of the group class */
	AUTO struct vp_acl a = ACL({ OT, 4, NOID }, { GN, 1, 20 }, { UN, 2, 9 }, { GO, 4, NOID },
	                      { UN, 4, 3 }, { UO, 6, NOID }, { GN, 0, 5 });
	assert_int_equal(vp_acl_normalize(&a), 0);
	AUTO struct vp_acl w = ACL({ UO, 6, NOID }, { UN, 4, 3 }, { UN, 2, 9 }, { GO, 4, NOID },
	                      { GN, 0, 5 }, { GN, 1, 20 }, { MK, 7, NOID }, { OT, 4, NOID });
	assert_acl_is(&a, &w, "normalize adds mask = r|w|x of the group class");

	/* an existing mask is recomputed (down as well as up) */
	AUTO struct vp_acl b = ACL({ UO, 7, NOID }, { UN, 4, 1001 }, { GO, 0, NOID }, { MK, 7, NOID },
	                      { OT, 0, NOID });
	assert_int_equal(vp_acl_normalize(&b), 0);
	AUTO struct vp_acl wb = ACL({ UO, 7, NOID }, { UN, 4, 1001 }, { GO, 0, NOID }, { MK, 4, NOID },
	                       { OT, 0, NOID });
	assert_acl_is(&b, &wb, "mask recomputed down");

	/* the owner and other entries do not count toward the mask */
	AUTO struct vp_acl c = ACL({ UO, 7, NOID }, { UN, 0, 1001 }, { GO, 0, NOID }, { OT, 7, NOID });
	assert_int_equal(vp_acl_normalize(&c), 0);
	AUTO struct vp_acl wc = ACL({ UO, 7, NOID }, { UN, 0, 1001 }, { GO, 0, NOID }, { MK, 0, NOID },
	                       { OT, 7, NOID });
	assert_acl_is(&c, &wc, "mask from group class only");

	/* no named entries and no mask: no mask added */
	AUTO struct vp_acl d = ACL({ OT, 5, NOID }, { GO, 5, NOID }, { UO, 7, NOID });
	assert_int_equal(vp_acl_normalize(&d), 0);
	AUTO struct vp_acl wd = ACL({ UO, 7, NOID }, { GO, 5, NOID }, { OT, 5, NOID });
	assert_acl_is(&d, &wd, "minimal ACL stays minimal");
	assert_true(vp_acl_is_minimal(&d));

	/* a mask without named entries (what setfacl -x of the last named
	 * entry leaves) is kept and recomputed to group:: */
	AUTO struct vp_acl e = ACL({ UO, 6, NOID }, { GO, 4, NOID }, { MK, 6, NOID }, { OT, 4, NOID });
	assert_int_equal(vp_acl_normalize(&e), 0);
	AUTO struct vp_acl we = ACL({ UO, 6, NOID }, { GO, 4, NOID }, { MK, 4, NOID }, { OT, 4, NOID });
	assert_acl_is(&e, &we, "lone mask recomputed");
	assert_false(vp_acl_is_minimal(&e));
}

static void test_acl_mode(void **state)
{
	(void)state;
	/* group bits come from the mask when there is one */
	AUTO struct vp_acl a = ACL({ UO, 6, NOID }, { UN, 7, 1001 }, { GO, 4, NOID }, { MK, 7, NOID },
	                      { OT, 0, NOID });
	assert_int_equal(vp_acl_mode(&a, S_IFREG | 04644), S_IFREG | 04670);
	/* from group:: without one */
	AUTO struct vp_acl b = ACL({ UO, 5, NOID }, { GO, 1, NOID }, { OT, 2, NOID });
	assert_int_equal(vp_acl_mode(&b, S_IFDIR | 01777), S_IFDIR | 01512);
	/* and mode's type and special bits are kept */
	assert_int_equal(vp_acl_mode(&b, S_IFDIR | 06000), S_IFDIR | 06512);
}

static void test_equal_and_minimal(void **state)
{
	(void)state;
	AUTO struct vp_acl a = ACL({ UO, 6, NOID }, { UN, 6, 1001 }, { GO, 4, NOID }, { MK, 6, NOID },
	                      { OT, 4, NOID });
	AUTO struct vp_acl b = acl_dup(&a);
	assert_true(vp_acl_equal(&a, &b));
	/* ids of non-named entries are not compared */
	b.e[0].id = 0;
	b.e[2].id = 7;
	assert_true(vp_acl_equal(&a, &b));
	b.e[1].id = 1002;
	assert_false(vp_acl_equal(&a, &b));
	assert_int_equal(vp_acl_copy(&b, &a), 0);
	b.e[3].perm = 7;
	assert_false(vp_acl_equal(&a, &b));
	assert_int_equal(vp_acl_copy(&b, &a), 0);
	b.n--;
	assert_false(vp_acl_equal(&a, &b));
	assert_false(vp_acl_is_minimal(&a));
	AUTO struct vp_acl g = ACL({ UO, 6, NOID }, { GO, 4, NOID }, { GN, 4, 5 }, { MK, 4, NOID },
	                      { OT, 4, NOID });
	assert_false(vp_acl_is_minimal(&g));
}

/* ---- vp_acl_apply: setfacl -m / -x ---- */

struct applycase {
	const char *what;
	mode_t mode;
	bool is_dir;
	struct vp_acl in, want;
	size_t ng, nr;
	struct vp_grant g[3], r[3];
};

static void run_apply(const struct applycase *c)
{
	AUTO struct vp_acl a = acl_dup(&c->in);
	assert_int_equal(vp_acl_apply(&a, c->g, c->ng, c->r, c->nr, c->is_dir, c->mode), 0);
	assert_acl_is(&a, &c->want, c->what);
}

static void run_apply_cases(struct applycase *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		run_apply(&cases[i]);
	for (size_t i = 0; i < n; i++) {
		vp_acl_free(&cases[i].in);
		vp_acl_free(&cases[i].want);
	}
}

static void test_apply_grants(void **state)
{
	(void)state;
	AUTO struct vp_acl f0644 = VP_ACL_INIT, d0755 = VP_ACL_INIT;
	assert_int_equal(vp_acl_from_mode(0644, &f0644), 0);
	assert_int_equal(vp_acl_from_mode(0755, &d0755), 0);
	struct applycase cases[] = {
		{ "rwX on a 0644 file: no x", 0644, false, acl_dup(&f0644),
		  ACL({ UO, 6, NOID }, { UN, 6, 1001 }, { GO, 4, NOID }, { MK, 6, NOID }, { OT, 4, NOID }),
		  1, 0, { grant(UN, 1001, "rwX") } },
		{ "rwX on a 0744 file: x", 0744, false, ACL({ UO, 7, NOID }, { GO, 4, NOID }, { OT, 4, NOID }),
		  ACL({ UO, 7, NOID }, { UN, 7, 1001 }, { GO, 4, NOID }, { MK, 7, NOID }, { OT, 4, NOID }),
		  1, 0, { grant(UN, 1001, "rwX") } },
		{ "rwX on a 0641 file: x (other's x counts)", 0641, false,
		  ACL({ UO, 6, NOID }, { GO, 4, NOID }, { OT, 1, NOID }),
		  ACL({ UO, 6, NOID }, { UN, 7, 1001 }, { GO, 4, NOID }, { MK, 7, NOID }, { OT, 1, NOID }),
		  1, 0, { grant(UN, 1001, "rwX") } },
		{ "rwX on a dir: x", 0755, true, acl_dup(&d0755),
		  ACL({ UO, 7, NOID }, { UN, 7, 1001 }, { GO, 5, NOID }, { MK, 7, NOID }, { OT, 5, NOID }),
		  1, 0, { grant(UN, 1001, "rwX") } },
		{ "r on a dir: no X, no x", 0755, true, acl_dup(&d0755),
		  ACL({ UO, 7, NOID }, { UN, 4, 1001 }, { GO, 5, NOID }, { MK, 5, NOID }, { OT, 5, NOID }),
		  1, 0, { grant(UN, 1001, "r") } },
		{ "two users and a group, sorted", 0644, false, acl_dup(&f0644),
		  ACL({ UO, 6, NOID }, { UN, 6, 1000 }, { UN, 4, 1001 }, { GO, 4, NOID }, { GN, 7, 50 },
		      { MK, 7, NOID }, { OT, 4, NOID }),
		  3, 0, { grant(UN, 1001, "r"), grant(GN, 50, "rwx"), grant(UN, 1000, "rw") } },
		{ "replace an existing entry (down)", 0644, false,
		  ACL({ UO, 6, NOID }, { UN, 7, 1001 }, { GO, 4, NOID }, { MK, 7, NOID }, { OT, 4, NOID }),
		  ACL({ UO, 6, NOID }, { UN, 4, 1001 }, { GO, 4, NOID }, { MK, 4, NOID }, { OT, 4, NOID }),
		  1, 0, { grant(UN, 1001, "r") } },
		{ "the same id as user and as group are two entries", 0644, false, acl_dup(&f0644),
		  ACL({ UO, 6, NOID }, { UN, 6, 1001 }, { GO, 4, NOID }, { GN, 4, 1001 }, { MK, 6, NOID },
		      { OT, 4, NOID }),
		  2, 0, { grant(UN, 1001, "rw"), grant(GN, 1001, "r") } },
		{ "grant of no permissions ('-')", 0644, false, acl_dup(&f0644),
		  ACL({ UO, 6, NOID }, { UN, 0, 1001 }, { GO, 4, NOID }, { MK, 4, NOID }, { OT, 4, NOID }),
		  1, 0, { grant(UN, 1001, "-") } },
		{ "mask raised over a low group:: (0600 file)", 0600, false,
		  ACL({ UO, 6, NOID }, { GO, 0, NOID }, { OT, 0, NOID }),
		  ACL({ UO, 6, NOID }, { UN, 6, 1001 }, { GO, 0, NOID }, { MK, 6, NOID }, { OT, 0, NOID }),
		  1, 0, { grant(UN, 1001, "rwX") } },
		{ "existing named entries are kept", 0640, false,
		  ACL({ UO, 6, NOID }, { UN, 6, 2000 }, { GO, 4, NOID }, { GN, 4, 3000 }, { MK, 6, NOID },
		      { OT, 0, NOID }),
		  ACL({ UO, 6, NOID }, { UN, 6, 1001 }, { UN, 6, 2000 }, { GO, 4, NOID }, { GN, 4, 3000 },
		      { MK, 6, NOID }, { OT, 0, NOID }),
		  1, 0, { grant(UN, 1001, "rwX") } },
	};
	run_apply_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_apply_revokes(void **state)
{
	(void)state;
	AUTO struct vp_acl f0644 = VP_ACL_INIT;
	assert_int_equal(vp_acl_from_mode(0644, &f0644), 0);
	struct applycase cases[] = {
		{ "revoke one of two users: mask recomputed", 0664, false,
		  ACL({ UO, 6, NOID }, { UN, 6, 1000 }, { UN, 7, 1001 }, { GO, 4, NOID }, { MK, 7, NOID },
		      { OT, 4, NOID }),
		  ACL({ UO, 6, NOID }, { UN, 6, 1000 }, { GO, 4, NOID }, { MK, 6, NOID }, { OT, 4, NOID }),
		  0, 1, { { 0 } }, { { .tag = UN, .id = 1001 } } },
		{ "revoke the last named entry: the mask stays (setfacl -x)", 0664, false,
		  ACL({ UO, 6, NOID }, { UN, 6, 1001 }, { GO, 4, NOID }, { MK, 6, NOID }, { OT, 4, NOID }),
		  ACL({ UO, 6, NOID }, { GO, 4, NOID }, { MK, 4, NOID }, { OT, 4, NOID }),
		  0, 1, { { 0 } }, { { .tag = UN, .id = 1001 } } },
		{ "revoke a missing entry: no-op", 0644, false, acl_dup(&f0644), acl_dup(&f0644),
		  0, 1, { { 0 } }, { { .tag = UN, .id = 1001 } } },
		{ "revoke u:ID leaves g:ID", 0664, false,
		  ACL({ UO, 6, NOID }, { UN, 6, 1001 }, { GO, 4, NOID }, { GN, 4, 1001 }, { MK, 6, NOID },
		      { OT, 4, NOID }),
		  ACL({ UO, 6, NOID }, { GO, 4, NOID }, { GN, 4, 1001 }, { MK, 4, NOID }, { OT, 4, NOID }),
		  0, 1, { { 0 } }, { { .tag = UN, .id = 1001 } } },
		{ "revoke a group and a user", 0674, false,
		  ACL({ UO, 6, NOID }, { UN, 6, 5 }, { UN, 7, 6 }, { GO, 4, NOID }, { GN, 2, 7 },
		      { GN, 1, 8 }, { MK, 7, NOID }, { OT, 4, NOID }),
		  ACL({ UO, 6, NOID }, { UN, 6, 5 }, { GO, 4, NOID }, { GN, 1, 8 }, { MK, 7, NOID },
		      { OT, 4, NOID }),
		  0, 2, { { 0 } }, { { .tag = GN, .id = 7 }, { .tag = UN, .id = 6 } } },
		{ "revoke then grant (grants win)", 0644, false,
		  ACL({ UO, 6, NOID }, { UN, 7, 1001 }, { GO, 4, NOID }, { MK, 7, NOID }, { OT, 4, NOID }),
		  ACL({ UO, 6, NOID }, { UN, 4, 1001 }, { GO, 4, NOID }, { MK, 4, NOID }, { OT, 4, NOID }),
		  1, 1, { grant(UN, 1001, "r") }, { { .tag = UN, .id = 1001 } } },
	};
	run_apply_cases(cases, sizeof cases / sizeof cases[0]);
}

/* setfacl's X: "execute only if the file is a directory or already has
 * execute permission for some user" — some user of the ACL, not only of
 * the mode's three classes. A file whose named entry has x while the mask
 * hides it (setfacl -m u:2000:rwx f; chmod g=r f) gets x for a new rwX
 * entry from setfacl (acl 2.3.1, checked on ext4). */
static void test_apply_x_sees_acl_entries(void **state)
{
	(void)state;
	AUTO struct vp_acl a = ACL({ UO, 6, NOID }, { UN, 7, 2000 }, { GO, 4, NOID }, { MK, 4, NOID },
	                      { OT, 4, NOID });
	struct vp_grant g = grant(UN, 1001, "rwX");
	assert_int_equal(vp_acl_apply(&a, &g, 1, NULL, 0, false, S_IFREG | 0644), 0);
	AUTO struct vp_acl want = ACL({ UO, 6, NOID }, { UN, 7, 1001 }, { UN, 7, 2000 }, { GO, 4, NOID },
	                         { MK, 7, NOID }, { OT, 4, NOID });
	assert_acl_is(&a, &want, "X on a file whose ACL has an x entry (setfacl gives x)");
}

/* setfacl decides X on the ACL as edited so far: in "u:2000:rwx,u:1000:rwX"
 * the first grant gives the file an x entry, so the second gets x too; in
 * the other order it does not. */
static void test_apply_x_after_earlier_grant(void **state)
{
	(void)state;
	AUTO struct vp_acl a = VP_ACL_INIT;
	assert_int_equal(vp_acl_from_mode(0644, &a), 0);
	AUTO struct vp_acl b = acl_dup(&a);
	struct vp_grant g1[] = { grant(UN, 2000, "rwx"), grant(UN, 1000, "rwX") };
	assert_int_equal(vp_acl_apply(&a, g1, 2, NULL, 0, false, S_IFREG | 0644), 0);
	AUTO struct vp_acl w1 = ACL({ UO, 6, NOID }, { UN, 7, 1000 }, { UN, 7, 2000 }, { GO, 4, NOID },
	                       { MK, 7, NOID }, { OT, 4, NOID });
	struct vp_grant g2[] = { grant(UN, 1000, "rwX"), grant(UN, 2000, "rwx") };
	assert_int_equal(vp_acl_apply(&b, g2, 2, NULL, 0, false, S_IFREG | 0644), 0);
	AUTO struct vp_acl w2 = ACL({ UO, 6, NOID }, { UN, 6, 1000 }, { UN, 7, 2000 }, { GO, 4, NOID },
	                       { MK, 7, NOID }, { OT, 4, NOID });
	assert_acl_is(&b, &w2, "u:1000:rwX,u:2000:rwx (X before any x: no x)");
	assert_acl_is(&a, &w1, "u:2000:rwx,u:1000:rwX (X after an x entry: x, as setfacl)");
}

/* Applying the same grants twice changes nothing the second time, for any
 * starting mode, when every grant uses X (not x). (With an explicit x next
 * to an X, as with setfacl, the x entry makes the next run's X give x:
 * a second run may add it. The docs say so.) */
static void test_apply_idempotent(void **state)
{
	(void)state;
	struct vp_grant g[] = { grant(UN, 1001, "rwX"), grant(UN, 1000, "rwX"), grant(GN, 9, "rX") };
	for (int dir = 0; dir < 2; dir++) {
		for (mode_t m = 0; m <= 0777; m += 011) {
			AUTO struct vp_acl a = VP_ACL_INIT;
			assert_int_equal(vp_acl_from_mode(m, &a), 0);
			assert_int_equal(vp_acl_apply(&a, g, 3, NULL, 0, dir, m), 0);
			AUTO struct vp_acl b = acl_dup(&a);
			assert_int_equal(vp_acl_apply(&b, g, 3, NULL, 0, dir, vp_acl_mode(&a, m)), 0);
			assert_acl_is(&b, &a, "second apply");
			/* and the mask always is the union of the group class */
			uint16_t u = 0, mask = 0xffff;
			for (size_t i = 0; i < a.n; i++) {
				if (a.e[i].tag == UN || a.e[i].tag == GN || a.e[i].tag == GO)
					u |= a.e[i].perm;
				if (a.e[i].tag == MK)
					mask = a.e[i].perm;
			}
			assert_int_equal(mask, u);
		}
	}
}

/* ---- ACLs of any size the kernel stores (issue 11) ----
 * A fixed cap of 64 entries once dropped a grant on a 64-entry ACL without
 * a word and refused larger ones. The only bound is the kernel's: an xattr
 * value is at most 64 KiB, 8191 entries. */

/* The xattr of an ACL of n entries in all: user::rw-, n - 4 named users
 * (ids 10000, 10001, ...) with r--, group::r--, mask::r--, other::r--. */
static uint8_t *big_xattr(size_t n, size_t *len)
{
	uint8_t *v = malloc(4 + 8 * n), *q;
	assert_non_null(v);
	v[0] = 2, v[1] = v[2] = v[3] = 0;
	q = v + 4;
	put_entry(q, UO, 6, NOID), q += 8;
	for (size_t i = 0; i + 4 < n; i++)
		put_entry(q, UN, 4, 10000 + (uint32_t)i), q += 8;
	put_entry(q, GO, 4, NOID), q += 8;
	put_entry(q, MK, 4, NOID), q += 8;
	put_entry(q, OT, 4, NOID);
	*len = 4 + 8 * n;
	return v;
}

static const struct vp_acl_entry *entry_of(const struct vp_acl *a, uint16_t tag, uint32_t id)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->e[i].tag == tag && (a->e[i].id == id || (tag != UN && tag != GN)))
			return &a->e[i];
	return NULL;
}

/* Every size up to one below the bound: parsed whole, written back to the
 * same bytes, and a grant of a new user is there afterwards, one entry
 * more, with the mask raised. */
static void test_large_grant(void **state)
{
	(void)state;
	static const size_t sizes[] = { 63, 64, 65, 100, 500, 5461, VP_ACL_MAX - 1 };
	const struct vp_grant g = grant(UN, 1001, "rw");
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		size_t n = sizes[k], len;
		uint8_t *v = big_xattr(n, &len), *back = malloc(len + 8);
		AUTO struct vp_acl a = VP_ACL_INIT;
		assert_non_null(back);
		assert_int_equal(vp_acl_from_xattr(v, len, &a), 0);
		assert_int_equal(a.n, n);
		assert_int_equal(vp_acl_to_xattr(&a, back, len), len);
		assert_memory_equal(back, v, len);
		assert_int_equal(vp_acl_check(&a), 0);

		assert_int_equal(vp_acl_apply(&a, &g, 1, NULL, 0, false, S_IFREG | 0644), 0);
		if (a.n != n + 1 || !entry_of(&a, UN, 1001) || entry_of(&a, UN, 1001)->perm != 6)
			fail_msg("%zu entries: the grant of user:1001:rw- is not in the result (%zu entries)",
			         n, a.n);
		assert_int_equal(entry_of(&a, MK, 0)->perm, 6);
		assert_int_equal(vp_acl_check(&a), 0);
		assert_int_equal(vp_acl_to_xattr(&a, back, len + 8), len + 8);
		free(back);
		free(v);
	}
}

/* At 8191 entries: a grant of a new user would need 8192, which the kernel
 * refuses on every filesystem: -E2BIG, not a silently shorter ACL. Edits
 * that keep within the bound (replacing an entry, revoking, revoking one to
 * grant another) work. */
static void test_large_at_kernel_bound(void **state)
{
	(void)state;
	size_t len;
	uint8_t *v = big_xattr(VP_ACL_MAX, &len);
	AUTO struct vp_acl a = VP_ACL_INIT;
	const struct vp_grant g_new = grant(UN, 1001, "rw"), g_old = grant(UN, 10000, "rwx");
	const struct vp_grant r_old = { .tag = UN, .id = 10000 };

	assert_int_equal(len, VP_ACL_XATTR_MAX - 4); /* 65532: the largest value possible */
	assert_int_equal(vp_acl_from_xattr(v, len, &a), 0);
	assert_int_equal(a.n, 8191);
	assert_int_equal(vp_acl_apply(&a, &g_new, 1, NULL, 0, false, S_IFREG | 0644), -E2BIG);

	assert_int_equal(vp_acl_from_xattr(v, len, &a), 0);
	assert_int_equal(vp_acl_apply(&a, &g_old, 1, NULL, 0, false, S_IFREG | 0644), 0);
	assert_int_equal(a.n, 8191);
	assert_int_equal(entry_of(&a, UN, 10000)->perm, 7);
	assert_int_equal(entry_of(&a, MK, 0)->perm, 7);

	assert_int_equal(vp_acl_from_xattr(v, len, &a), 0);
	assert_int_equal(vp_acl_apply(&a, NULL, 0, &r_old, 1, false, S_IFREG | 0644), 0);
	assert_int_equal(a.n, 8190);
	assert_null(entry_of(&a, UN, 10000));

	/* revokes come first, so revoking one makes room for a grant */
	assert_int_equal(vp_acl_from_xattr(v, len, &a), 0);
	assert_int_equal(vp_acl_apply(&a, &g_new, 1, &r_old, 1, false, S_IFREG | 0644), 0);
	assert_int_equal(a.n, 8191);
	assert_non_null(entry_of(&a, UN, 1001));
	assert_int_equal(vp_acl_check(&a), 0);
	free(v);

	/* 8190 entries: one new grant fits exactly, two do not */
	const struct vp_grant two[] = { grant(UN, 1001, "r"), grant(GN, 1001, "r") };
	v = big_xattr(VP_ACL_MAX - 1, &len);
	assert_int_equal(vp_acl_from_xattr(v, len, &a), 0);
	assert_int_equal(vp_acl_apply(&a, two, 1, NULL, 0, false, S_IFREG | 0644), 0);
	assert_int_equal(a.n, VP_ACL_MAX);
	assert_int_equal(vp_acl_to_xattr(&a, NULL, 0), VP_ACL_XATTR_MAX - 4);
	assert_int_equal(vp_acl_from_xattr(v, len, &a), 0);
	assert_int_equal(vp_acl_apply(&a, two, 2, NULL, 0, false, S_IFREG | 0644), -E2BIG);

	/* a minimal ACL grown to the bound through a mask it did not have:
	 * 8188 new named entries + the three base entries + the mask */
	size_t ng = VP_ACL_MAX - 4;
	struct vp_grant *many = calloc(ng + 1, sizeof *many);
	assert_non_null(many);
	for (size_t i = 0; i <= ng; i++)
		many[i] = grant(UN, 20000 + (uint32_t)i, "r");
	assert_int_equal(vp_acl_from_mode(0644, &a), 0);
	assert_int_equal(vp_acl_apply(&a, many, ng, NULL, 0, false, S_IFREG | 0644), 0);
	assert_int_equal(a.n, VP_ACL_MAX);
	assert_int_equal(vp_acl_check(&a), 0);
	assert_int_equal(vp_acl_from_mode(0644, &a), 0);
	assert_int_equal(vp_acl_apply(&a, many, ng + 1, NULL, 0, false, S_IFREG | 0644), -E2BIG);
	free(many);
	free(v);
}

/* ---- vp_parse_grants ---- */

static void test_parse_grants_valid(void **state)
{
	(void)state;
	struct vp_grant *v = NULL;
	size_t n = 0;
	assert_int_equal(vp_parse_grants(NULL, "u:1001:rwX,g:1001:rx", false, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].tag, VP_ACL_USER);
	assert_int_equal(v[0].id, 1001);
	assert_int_equal(v[0].perm, 6);
	assert_true(v[0].cond_x);
	assert_int_equal(v[1].tag, VP_ACL_GROUP);
	assert_int_equal(v[1].id, 1001);
	assert_int_equal(v[1].perm, 5);
	assert_false(v[1].cond_x);
	/* appends */
	assert_int_equal(vp_parse_grants(NULL, "u:0:x", false, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[2].id, 0);
	assert_int_equal(v[2].perm, 1);
	assert_int_equal(vp_parse_grants(NULL, "u:4294967294:-", false, &v, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(v[3].id, 4294967294u);
	assert_int_equal(v[3].perm, 0);
	assert_int_equal(vp_parse_grants(NULL, "g:7:xwr", false, &v, &n), 0);
	assert_int_equal(v[4].perm, 7);
	/* a trailing comma, as setfacl -m accepts */
	assert_int_equal(vp_parse_grants(NULL, "u:8:r,", false, &v, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(v[5].id, 8);
	free(v);

	v = NULL;
	n = 0;
	assert_int_equal(vp_parse_grants(NULL, "u:1001,g:50", true, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].tag, VP_ACL_USER);
	assert_int_equal(v[0].id, 1001);
	assert_int_equal(v[1].tag, VP_ACL_GROUP);
	assert_int_equal(v[1].id, 50);
	free(v);
}

/* As setfacl -m / -x: a trailing comma is accepted; an empty item
 * anywhere else (",", ",u:1:r", "u:1:r,,g:2:r") is an error, so that a
 * typo never silently grants or revokes less than was asked. */
static void test_parse_grants_invalid(void **state)
{
	(void)state;
	static const char *const bad_grants[] = {
		"", ",", "u:1001", "u:1001:", "u::rw", "u:1001:rwq", "x:1001:rw", "user:1001:rw",
		"U:1001:rw", "u:-1:rw", "u:4294967295:rw", "u:99999999999:rw", "u: 1001:rw",
		",u:1001:rw", "u:1001:rw,,g:5:r", "u:1001:rw:x", "u:1001:r w",
		"u:nosuchuser-volperm:rw", "g:nosuchgroup-volperm:rw", "u:1001:rw,g:5",
	};
	static const char *const bad_revokes[] = {
		"", ",", "u:1001:rw", "u:", "u", "g:", "x:5", "u:-1", ",u:1001", "u:1001,,g:5",
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof bad_grants / sizeof bad_grants[0]; i++) {
		struct vp_grant *v = NULL;
		size_t n = 0;
		int r = vp_parse_grants(NULL, bad_grants[i], false, &v, &n);
		if (r >= 0) {
			print_error("vp_parse_grants(\"%s\") = %d (n=%zu), want an error\n", bad_grants[i], r, n);
			failures++;
		}
		free(v);
	}
	for (size_t i = 0; i < sizeof bad_revokes / sizeof bad_revokes[0]; i++) {
		struct vp_grant *v = NULL;
		size_t n = 0;
		int r = vp_parse_grants(NULL, bad_revokes[i], true, &v, &n);
		if (r >= 0) {
			print_error("vp_parse_grants(\"%s\", revoke) = %d (n=%zu), want an error\n",
			            bad_revokes[i], r, n);
			failures++;
		}
		free(v);
	}
	assert_int_equal(failures, 0);
}

/* Names resolve through the iddb's files (the app image's), not the host's. */
static void test_parse_grants_names(void **state)
{
	(void)state;
	char pw[] = "/tmp/vp-test-passwd.XXXXXX", gr[] = "/tmp/vp-test-group.XXXXXX";
	int fp = mkstemp(pw), fg = mkstemp(gr);
	assert_true(fp >= 0 && fg >= 0);
	FILE *f = fdopen(fp, "w");
	fputs("root:x:0:0:root:/root:/bin/sh\nappuser:x:1234:4321::/app:/bin/sh\n", f);
	fclose(f);
	f = fdopen(fg, "w");
	fputs("root:x:0:\nappgroup:x:4321:\n", f);
	fclose(f);
	struct vp_iddb db = { pw, gr };
	struct vp_grant *v = NULL;
	size_t n = 0;
	assert_int_equal(vp_parse_grants(&db, "u:appuser:rwX,g:appgroup:rx", false, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].id, 1234);
	assert_int_equal(v[1].id, 4321);
	assert_int_equal(vp_parse_grants(&db, "u:appuser,g:appgroup", true, &v, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(v[2].id, 1234);
	assert_int_equal(v[3].id, 4321);
	/* a name that is not in the file does not fall back to the host */
	assert_true(vp_parse_grants(&db, "u:root:r,u:nobody:r", false, &v, &n) < 0);
	assert_true(vp_parse_grants(&db, "g:appuser:r", false, &v, &n) < 0);
	free(v);
	unlink(pw);
	unlink(gr);
}

/* ---- vp_acl_check (libacl's acl_valid) ---- */

static void test_acl_check(void **state)
{
	(void)state;
	struct vp_acl ok[] = {
		ACL({ UO, 6, NOID }, { GO, 4, NOID }, { OT, 4, NOID }),
		ACL({ UO, 6, NOID }, { UN, 6, 1001 }, { GO, 4, NOID }, { MK, 6, NOID }, { OT, 4, NOID }),
		ACL({ UO, 7, NOID }, { UN, 7, 1 }, { UN, 5, 2 }, { GO, 5, NOID }, { GN, 5, 1 },
		    { MK, 7, NOID }, { OT, 0, NOID }),
		/* a mask without named entries is valid (what setfacl -x leaves) */
		ACL({ UO, 6, NOID }, { GO, 4, NOID }, { MK, 4, NOID }, { OT, 4, NOID }),
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (vp_acl_check(&ok[i]) != 0)
			fail_msg("valid ACL %zu refused", i);
	struct vp_acl bad[] = {
		ACL({ GO, 4, NOID }, { OT, 4, NOID }),                               /* no user:: */
		ACL({ UO, 6, NOID }, { OT, 4, NOID }),                               /* no group:: */
		ACL({ UO, 6, NOID }, { GO, 4, NOID }),                               /* no other:: */
		ACL({ UO, 6, NOID }, { UO, 6, NOID }, { GO, 4, NOID }, { OT, 4, NOID }), /* two user:: */
		ACL({ UO, 6, NOID }, { UN, 6, 5 }, { GO, 4, NOID }, { OT, 4, NOID }),   /* named, no mask */
		ACL({ UO, 6, NOID }, { UN, 6, 5 }, { UN, 4, 5 }, { GO, 4, NOID }, { MK, 6, NOID },
		    { OT, 4, NOID }),                                                /* user:5 twice */
		ACL({ UO, 6, NOID }, { GO, 4, NOID }, { GN, 4, 9 }, { GN, 4, 9 }, { MK, 4, NOID },
		    { OT, 4, NOID }),                                                /* group:9 twice */
		ACL({ UO, 6, NOID }, { GO, 4, NOID }, { MK, 4, NOID }, { MK, 4, NOID }, { OT, 4, NOID }),
		ACL({ UO, 6, NOID }, { 0x40, 4, NOID }, { GO, 4, NOID }, { OT, 4, NOID }), /* unknown tag */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (vp_acl_check(&bad[i]) != -EINVAL)
			fail_msg("invalid ACL %zu accepted", i);

	/* whatever vp_acl_apply makes from a valid ACL is valid */
	struct vp_grant g[] = { grant(UN, 1001, "rwX"), grant(GN, 7, "r"), grant(UN, 0, "x") };
	struct vp_grant r[] = { { .tag = UN, .id = 2000 } };
	for (mode_t m = 0; m <= 0777; m += 013) {
		AUTO struct vp_acl a = VP_ACL_INIT;
		assert_int_equal(vp_acl_from_mode(m, &a), 0);
		assert_int_equal(vp_acl_apply(&a, g, 3, NULL, 0, m & 1, m), 0);
		assert_int_equal(vp_acl_check(&a), 0);
		assert_int_equal(vp_acl_apply(&a, NULL, 0, r, 1, m & 1, m), 0);
		assert_int_equal(vp_acl_check(&a), 0);
		struct vp_grant rr[] = { { .tag = UN, .id = 1001 }, { .tag = GN, .id = 7 }, { .tag = UN, .id = 0 } };
		assert_int_equal(vp_acl_apply(&a, NULL, 0, rr, 3, m & 1, m), 0);
		assert_int_equal(vp_acl_check(&a), 0);
	}
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		vp_acl_free(&ok[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		vp_acl_free(&bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xattr_parse_real),
		cmocka_unit_test(test_xattr_encode),
		cmocka_unit_test(test_xattr_parse_bad),
		cmocka_unit_test(test_from_mode),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_acl_mode),
		cmocka_unit_test(test_equal_and_minimal),
		cmocka_unit_test(test_acl_check),
		cmocka_unit_test(test_apply_grants),
		cmocka_unit_test(test_apply_revokes),
		cmocka_unit_test(test_apply_x_sees_acl_entries),
		cmocka_unit_test(test_apply_x_after_earlier_grant),
		cmocka_unit_test(test_apply_idempotent),
		cmocka_unit_test(test_large_grant),
		cmocka_unit_test(test_large_at_kernel_bound),
		cmocka_unit_test(test_parse_grants_valid),
		cmocka_unit_test(test_parse_grants_invalid),
		cmocka_unit_test(test_parse_grants_names),
	};
	return cmocka_run_group_tests_name("acl", tests, NULL, NULL);
}
