/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for src/decide.h: the one pure decision function.
 *
 * Rules under test (decide.h, contract.md):
 *  - uid: a --map whose OLD is the entry's current uid wins; else the --owner
 *    uid; else unchanged. Same for gid with --map-gid / owner gid.
 *  - a chown on a non-directory clears setuid, and setgid when g+x is set;
 *    directories keep both. d->mode is the mode after the change, incl. type.
 *  - compliant entries: changes == 0, uid/gid/mode as they are.
 *  - VP_CH_DROP_CAPS is the caller's business: vp_decide never sets it. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "decide.h"
#include "volperm/policy.h"

struct pspec {
	bool has_uid, has_gid;
	uid_t uid;
	gid_t gid;
	size_t n_umaps, n_gmaps;
	struct vp_idmap umaps[3], gmaps[3];
};

struct dcase {
	const char *what;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct pspec pol;
	unsigned want_changes;
	uid_t want_uid;
	gid_t want_gid;
	mode_t want_mode;
};

#define OWNER(u, g) { .has_uid = true, .has_gid = true, .uid = (u), .gid = (g) }
#define OWNER_U(u) { .has_uid = true, .uid = (u) }
#define OWNER_G(g) { .has_gid = true, .gid = (g) }

#define F(m) (S_IFREG | (m))
#define D(m) (S_IFDIR | (m))
#define L (S_IFLNK | 0777)

enum { U = VP_CH_UID, G = VP_CH_GID, DSU = VP_CH_DROP_SUID, DSG = VP_CH_DROP_SGID };

static const struct dcase cases[] = {
	/* --- owner / group --- */
	{ "owner only", F(0644), 1000, 1000, OWNER_U(1001), U, 1001, 1000, F(0644) },
	{ "group only", F(0644), 1000, 1000, OWNER_G(1002), G, 1000, 1002, F(0644) },
	{ "both", F(0644), 1000, 1000, OWNER(1001, 1002), U | G, 1001, 1002, F(0644) },
	{ "owner matches, group differs", F(0644), 1000, 1000, OWNER(1000, 1002), G, 1000, 1002,
	  F(0644) },
	{ "group matches, owner differs", F(0600), 1000, 1002, OWNER(1001, 1002), U, 1001, 1002,
	  F(0600) },
	{ "compliant file", F(0644), 1001, 1002, OWNER(1001, 1002), 0, 1001, 1002, F(0644) },
	{ "compliant uid-only policy", F(0644), 1001, 5, OWNER_U(1001), 0, 1001, 5, F(0644) },
	{ "compliant gid-only policy", F(0644), 7, 1002, OWNER_G(1002), 0, 7, 1002, F(0644) },
	{ "empty policy", F(04755), 1, 2, { 0 }, 0, 1, 2, F(04755) },
	{ "to root", F(0644), 1000, 1000, OWNER(0, 0), U | G, 0, 0, F(0644) },
	{ "from root", F(0644), 0, 0, OWNER(1000, 1000), U | G, 1000, 1000, F(0644) },
	{ "max id", F(0644), 0, 0, OWNER(4294967294u, 4294967294u), U | G, 4294967294u,
	  4294967294u, F(0644) },

	/* --- uid maps --- */
	{ "map matches (no owner)", F(0644), 1000, 1000,
	  { .n_umaps = 1, .umaps = { { 1000, 2000 } } }, U, 2000, 1000, F(0644) },
	{ "map does not match (no owner)", F(0644), 1000, 1000,
	  { .n_umaps = 1, .umaps = { { 500, 2000 } } }, 0, 1000, 1000, F(0644) },
	{ "map beats owner", F(0644), 1000, 1000,
	  { .has_uid = true, .uid = 1001, .n_umaps = 1, .umaps = { { 1000, 2000 } } }, U, 2000,
	  1000, F(0644) },
	{ "map misses, owner applies", F(0644), 1000, 1000,
	  { .has_uid = true, .uid = 1001, .n_umaps = 1, .umaps = { { 500, 2000 } } }, U, 1001,
	  1000, F(0644) },
	{ "identity map beats owner: unchanged", F(0644), 1000, 1000,
	  { .has_uid = true, .uid = 1001, .n_umaps = 1, .umaps = { { 1000, 1000 } } }, 0, 1000,
	  1000, F(0644) },
	{ "second of three maps", F(0644), 1001, 1000,
	  { .n_umaps = 3, .umaps = { { 1000, 2000 }, { 1001, 2001 }, { 1002, 2002 } } }, U, 2001,
	  1000, F(0644) },
	{ "uid map never touches the gid", F(0644), 1000, 1000,
	  { .n_umaps = 1, .umaps = { { 1000, 2000 } } }, U, 2000, 1000, F(0644) },
	{ "map to root", F(0644), 1000, 1000, { .n_umaps = 1, .umaps = { { 1000, 0 } } }, U, 0,
	  1000, F(0644) },
	{ "map from root", F(0644), 0, 1000, { .n_umaps = 1, .umaps = { { 0, 1000 } } }, U, 1000,
	  1000, F(0644) },

	/* --- gid maps --- */
	{ "map-gid matches", F(0644), 1000, 1000, { .n_gmaps = 1, .gmaps = { { 1000, 3000 } } },
	  G, 1000, 3000, F(0644) },
	{ "map-gid does not match", F(0644), 1000, 1000,
	  { .n_gmaps = 1, .gmaps = { { 999, 3000 } } }, 0, 1000, 1000, F(0644) },
	{ "map-gid beats owner gid", F(0644), 1000, 1000,
	  { .has_uid = true, .uid = 1001, .has_gid = true, .gid = 1002, .n_gmaps = 1,
	    .gmaps = { { 1000, 3000 } } },
	  U | G, 1001, 3000, F(0644) },
	{ "map-gid misses, owner gid applies", F(0644), 1000, 1000,
	  { .has_gid = true, .gid = 1002, .n_gmaps = 1, .gmaps = { { 999, 3000 } } }, G, 1000,
	  1002, F(0644) },
	{ "gid map never touches the uid", F(0644), 1000, 1000,
	  { .n_gmaps = 1, .gmaps = { { 1000, 3000 } } }, G, 1000, 3000, F(0644) },
	{ "uid map keyed by uid, not by gid", F(0644), 5, 1000,
	  { .n_umaps = 1, .umaps = { { 1000, 2000 } } }, 0, 5, 1000, F(0644) },
	{ "gid map keyed by gid, not by uid", F(0644), 1000, 5,
	  { .n_gmaps = 1, .gmaps = { { 1000, 3000 } } }, 0, 1000, 5, F(0644) },
	{ "both maps", F(0644), 1000, 1000,
	  { .n_umaps = 1, .umaps = { { 1000, 2000 } }, .n_gmaps = 1, .gmaps = { { 1000, 3000 } } },
	  U | G, 2000, 3000, F(0644) },

	/* --- setuid / setgid (kernel chown rule) --- */
	{ "setuid file 04755", F(04755), 1000, 1000, OWNER_U(1001), U | DSU, 1001, 1000, F(0755) },
	{ "setuid file without x 04644", F(04644), 1000, 1000, OWNER_U(1001), U | DSU, 1001, 1000,
	  F(0644) },
	{ "setgid with g+x 02755", F(02755), 1000, 1000, OWNER_U(1001), U | DSG, 1001, 1000,
	  F(0755) },
	{ "setgid with g+x only 02710", F(02710), 1000, 1000, OWNER_G(1002), G | DSG, 1000, 1002,
	  F(0710) },
	{ "setgid without g+x 02644 stays", F(02644), 1000, 1000, OWNER_U(1001), U, 1001, 1000,
	  F(02644) },
	{ "setgid without g+x 02745 stays", F(02745), 1000, 1000, OWNER(1001, 1001), U | G, 1001,
	  1001, F(02745) },
	{ "setuid+setgid 06755", F(06755), 1000, 1000, OWNER(1001, 1001), U | G | DSU | DSG, 1001,
	  1001, F(0755) },
	{ "setuid+setgid without g+x 06745", F(06745), 1000, 1000, OWNER_U(1001), U | DSU, 1001,
	  1000, F(02745) },
	{ "sticky file keeps sticky", F(01755), 1000, 1000, OWNER_U(1001), U, 1001, 1000,
	  F(01755) },
	{ "all special bits 07755", F(07755), 1000, 1000, OWNER_U(1001), U | DSU | DSG, 1001, 1000,
	  F(01755) },
	{ "group-only change still drops setuid", F(04755), 1000, 1000, OWNER_G(1002),
	  G | DSU, 1000, 1002, F(0755) },
	{ "map change drops setuid", F(04755), 1000, 1000,
	  { .n_umaps = 1, .umaps = { { 1000, 2000 } } }, U | DSU, 2000, 1000, F(0755) },
	{ "compliant setuid file keeps setuid", F(04755), 1001, 1000, OWNER_U(1001), 0, 1001, 1000,
	  F(04755) },
	{ "compliant setgid file keeps setgid", F(02755), 1001, 1002, OWNER(1001, 1002), 0, 1001,
	  1002, F(02755) },
	{ "unmatched map keeps setuid", F(04755), 1000, 1000,
	  { .n_umaps = 1, .umaps = { { 5, 6 } } }, 0, 1000, 1000, F(04755) },

	/* --- directories keep setuid/setgid --- */
	{ "dir 0755", D(0755), 1000, 1000, OWNER(1001, 1001), U | G, 1001, 1001, D(0755) },
	{ "dir setgid 02775", D(02775), 1000, 1000, OWNER(1001, 1001), U | G, 1001, 1001,
	  D(02775) },
	{ "dir setuid 04755", D(04755), 1000, 1000, OWNER_U(1001), U, 1001, 1000, D(04755) },
	{ "dir all bits 07777", D(07777), 1000, 1000, OWNER_G(1002), G, 1000, 1002, D(07777) },
	{ "dir compliant", D(0700), 1001, 1001, OWNER(1001, 1001), 0, 1001, 1001, D(0700) },

	/* --- symlinks and others: the entry itself --- */
	{ "symlink", L, 1000, 1000, OWNER(1001, 1002), U | G, 1001, 1002, L },
	{ "symlink compliant", L, 1001, 1002, OWNER(1001, 1002), 0, 1001, 1002, L },
	{ "symlink mapped", L, 1000, 1000, { .n_umaps = 1, .umaps = { { 1000, 2000 } } }, U, 2000,
	  1000, L },
	{ "fifo", S_IFIFO | 0644, 1000, 1000, OWNER_U(1001), U, 1001, 1000, S_IFIFO | 0644 },
	{ "socket", S_IFSOCK | 0755, 1000, 1000, OWNER_G(1002), G, 1000, 1002, S_IFSOCK | 0755 },
	{ "chardev", S_IFCHR | 0660, 0, 0, OWNER(1001, 1001), U | G, 1001, 1001, S_IFCHR | 0660 },
	{ "blockdev", S_IFBLK | 0660, 0, 6, OWNER_U(1001), U, 1001, 6, S_IFBLK | 0660 },
	{ "setgid fifo with g+x (non-dir rule)", S_IFIFO | 02770, 0, 0, OWNER_U(1001), U | DSG,
	  1001, 0, S_IFIFO | 0770 },
};

static void build_policy(const struct pspec *s, struct vp_policy *p)
{
	vp_policy_init(p);
	p->has_uid = s->has_uid;
	p->has_gid = s->has_gid;
	p->uid = s->uid;
	p->gid = s->gid;
	for (size_t i = 0; i < s->n_umaps; i++)
		assert_int_equal(vp_policy_add_uid_map(p, s->umaps[i].from, s->umaps[i].to), 0);
	for (size_t i = 0; i < s->n_gmaps; i++)
		assert_int_equal(vp_policy_add_gid_map(p, s->gmaps[i].from, s->gmaps[i].to), 0);
}

static void test_decide_table(void **state)
{
	(void)state;
	int failures = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct dcase *c = &cases[i];
		struct vp_policy p;
		build_policy(&c->pol, &p);
		struct stat st;
		memset(&st, 0, sizeof st);
		st.st_mode = c->mode;
		st.st_uid = c->uid;
		st.st_gid = c->gid;
		st.st_nlink = S_ISDIR(c->mode) ? 2 : 1;
		st.st_ino = 1000 + i;
		st.st_dev = 42;
		struct vp_decision d;
		memset(&d, 0xA5, sizeof d);
		assert_int_equal(vp_decide(&p, &(struct vp_decide_in){ .st = &st }, &d), 0);
		vp_decision_free(&d);
		if (d.changes != c->want_changes || d.uid != c->want_uid || d.gid != c->want_gid ||
		    d.mode != c->want_mode) {
			print_error("case %zu \"%s\": got changes=%#x uid=%u gid=%u mode=%06o, "
			            "want changes=%#x uid=%u gid=%u mode=%06o\n",
			            i, c->what, d.changes, (unsigned)d.uid, (unsigned)d.gid,
			            (unsigned)d.mode, c->want_changes, (unsigned)c->want_uid,
			            (unsigned)c->want_gid, (unsigned)c->want_mode);
			failures++;
		}
		if (d.changes & VP_CH_DROP_CAPS) {
			print_error("case %zu \"%s\": vp_decide set VP_CH_DROP_CAPS\n", i, c->what);
			failures++;
		}
		vp_policy_free(&p);
	}
	assert_int_equal(failures, 0);
}

/* The decision must not depend on anything but mode/uid/gid: nlink, size,
 * dev, ino, times are irrelevant to what chown does. */
static void test_decide_ignores_other_stat_fields(void **state)
{
	(void)state;
	struct vp_policy p;
	vp_policy_init(&p);
	p.has_uid = true;
	p.uid = 1001;
	struct stat a, b;
	memset(&a, 0, sizeof a);
	a.st_mode = F(04755);
	a.st_uid = 1000;
	a.st_gid = 1000;
	a.st_nlink = 1;
	memset(&b, 0xff, sizeof b);
	b.st_mode = a.st_mode;
	b.st_uid = a.st_uid;
	b.st_gid = a.st_gid;
	struct vp_decision da, db;
	memset(&da, 0, sizeof da);
	memset(&db, 0x5a, sizeof db);
	assert_int_equal(vp_decide(&p, &(struct vp_decide_in){ .st = &a }, &da), 0);
	vp_decision_free(&da);
	assert_int_equal(vp_decide(&p, &(struct vp_decide_in){ .st = &b }, &db), 0);
	vp_decision_free(&db);
	assert_int_equal(da.changes, db.changes);
	assert_int_equal(da.uid, db.uid);
	assert_int_equal(da.gid, db.gid);
	assert_int_equal(da.mode, db.mode);
	assert_int_equal(da.changes, VP_CH_UID | VP_CH_DROP_SUID);
	vp_policy_free(&p);
}

/* The policy is read-only for vp_decide: deciding twice gives the same. */
static void test_decide_policy_untouched(void **state)
{
	(void)state;
	struct vp_policy p;
	vp_policy_init(&p);
	p.has_uid = p.has_gid = true;
	p.uid = 1;
	p.gid = 2;
	assert_int_equal(vp_policy_add_uid_map(&p, 10, 20), 0);
	assert_int_equal(vp_policy_add_gid_map(&p, 30, 40), 0);
	struct stat st;
	memset(&st, 0, sizeof st);
	st.st_mode = F(0644);
	st.st_uid = 10;
	st.st_gid = 30;
	struct vp_decision d1, d2;
	assert_int_equal(vp_decide(&p, &(struct vp_decide_in){ .st = &st }, &d1), 0);
	vp_decision_free(&d1);
	assert_int_equal(vp_decide(&p, &(struct vp_decide_in){ .st = &st }, &d2), 0);
	vp_decision_free(&d2);
	assert_int_equal(d1.uid, 20);
	assert_int_equal(d1.gid, 40);
	assert_int_equal(d1.changes, d2.changes);
	assert_int_equal(d1.uid, d2.uid);
	assert_int_equal(p.uid, 1);
	assert_int_equal(p.gid, 2);
	assert_int_equal(p.n_uid_maps, 1);
	assert_int_equal(p.uid_maps[0].from, 10);
	assert_int_equal(p.uid_maps[0].to, 20);
	assert_int_equal(p.n_gid_maps, 1);
	assert_int_equal(p.gid_maps[0].from, 30);
	assert_int_equal(p.gid_maps[0].to, 40);
	vp_policy_free(&p);
}

/* ---- vp_mode_after_chown ---- */

static void test_mode_after_chown_table(void **state)
{
	(void)state;
	static const struct {
		mode_t in, want;
	} t[] = {
		{ F(0644), F(0644) },
		{ F(0755), F(0755) },
		{ F(0), F(0) },
		{ F(04755), F(0755) },
		{ F(04644), F(0644) },
		{ F(04000), F(0) },
		{ F(02755), F(0755) },
		{ F(02010), F(010) },
		{ F(02745), F(02745) },
		{ F(02644), F(02644) },
		{ F(02000), F(02000) },
		{ F(06755), F(0755) },
		{ F(06745), F(02745) },
		{ F(07755), F(01755) },
		{ F(07777), F(01777) },
		{ F(01755), F(01755) },
		{ D(0755), D(0755) },
		{ D(02775), D(02775) },
		{ D(04755), D(04755) },
		{ D(06755), D(06755) },
		{ D(07777), D(07777) },
		{ L, L },
		{ S_IFIFO | 04644, S_IFIFO | 0644 },
		{ S_IFIFO | 0644, S_IFIFO | 0644 },
		{ S_IFCHR | 02660, S_IFCHR | 02660 },
		{ S_IFBLK | 06670, S_IFBLK | 0670 },
		{ S_IFSOCK | 0755, S_IFSOCK | 0755 },
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		mode_t got = vp_mode_after_chown(t[i].in);
		if (got != t[i].want) {
			print_error("vp_mode_after_chown(%06o) = %06o, want %06o\n", (unsigned)t[i].in,
			            (unsigned)got, (unsigned)t[i].want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* vp_decide's mode and drop bits agree with vp_mode_after_chown for every
 * permission pattern of every type, whenever a change is due. Symlinks are
 * left out: their mode is always 0777 on Linux, so special bits on a
 * symlink are not a case that exists (vp_decide keeps a symlink's mode as
 * is; the table above checks the real 0777 case). */
static void test_decide_consistent_with_mode_after_chown(void **state)
{
	(void)state;
	static const mode_t types[] = { S_IFREG, S_IFDIR, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK };
	struct vp_policy p;
	vp_policy_init(&p);
	p.has_uid = true;
	p.uid = 1001;
	for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
		for (mode_t perm = 0; perm <= 07777; perm++) {
			struct stat st;
			memset(&st, 0, sizeof st);
			st.st_mode = types[ti] | perm;
			st.st_uid = 1000;
			st.st_gid = 1000;
			struct vp_decision d;
			assert_int_equal(vp_decide(&p, &(struct vp_decide_in){ .st = &st }, &d), 0);
			vp_decision_free(&d);
			mode_t after = vp_mode_after_chown(st.st_mode);
			unsigned drops = 0;
			if ((st.st_mode & S_ISUID) && !(after & S_ISUID))
				drops |= VP_CH_DROP_SUID;
			if ((st.st_mode & S_ISGID) && !(after & S_ISGID))
				drops |= VP_CH_DROP_SGID;
			if (d.mode != after || d.changes != (VP_CH_UID | drops) || d.uid != 1001 ||
			    d.gid != 1000)
				fail_msg("mode %06o: decide changes=%#x mode=%06o, after_chown %06o",
				         (unsigned)st.st_mode, d.changes, (unsigned)d.mode,
				         (unsigned)after);
			/* only setuid/setgid may go, nothing is ever added */
			if ((after | S_ISUID | S_ISGID) != (st.st_mode | S_ISUID | S_ISGID) ||
			    (after & ~st.st_mode) != 0)
				fail_msg("mode %06o: after_chown %06o changed more than s-bits",
				         (unsigned)st.st_mode, (unsigned)after);
			if (types[ti] == S_IFDIR && after != st.st_mode)
				fail_msg("dir mode %06o changed to %06o", (unsigned)st.st_mode,
				         (unsigned)after);
			if (types[ti] != S_IFDIR && (after & S_ISUID))
				fail_msg("non-dir mode %06o kept setuid", (unsigned)st.st_mode);
			if (types[ti] != S_IFDIR && (after & S_ISGID) && (perm & S_IXGRP))
				fail_msg("non-dir mode %06o with g+x kept setgid", (unsigned)st.st_mode);
			if (types[ti] != S_IFDIR && (perm & S_ISGID) && !(perm & S_IXGRP) &&
			    !(after & S_ISGID))
				fail_msg("non-dir mode %06o without g+x lost setgid",
				         (unsigned)st.st_mode);
		}
	}
	vp_policy_free(&p);
}

/* ---- vp_type_name ---- */

static void test_type_name(void **state)
{
	(void)state;
	assert_string_equal(vp_type_name(S_IFDIR | 0755), "dir");
	assert_string_equal(vp_type_name(S_IFREG | 0644), "file");
	assert_string_equal(vp_type_name(S_IFLNK | 0777), "symlink");
	assert_string_equal(vp_type_name(S_IFIFO | 0600), "fifo");
	assert_string_equal(vp_type_name(S_IFSOCK | 0755), "socket");
	assert_string_equal(vp_type_name(S_IFCHR | 0666), "chardev");
	assert_string_equal(vp_type_name(S_IFBLK | 0660), "blockdev");
	/* permission bits do not matter */
	assert_string_equal(vp_type_name(S_IFREG | 07777), "file");
	assert_string_equal(vp_type_name(S_IFDIR), "dir");
	assert_string_equal(vp_type_name(S_IFREG), "file");
	/* no type, or an invalid one */
	assert_string_equal(vp_type_name(0), "unknown");
	assert_string_equal(vp_type_name(0644), "unknown");
	assert_string_equal(vp_type_name(0070000), "unknown"); /* not a valid S_IFMT value */
}

/* ======================================================================
 * Policies beyond chown (issue 5): fsGroup, --chmod, --root-mode,
 * --grant/--revoke, and the root check of on-root-mismatch.
 *
 * fsGroup follows the kubelet (pkg/volume/volume_linux.go): every entry
 * gets the group (symlinks too, lchown-style); non-symlinks get bits
 * *added*, never removed: files g+rw (g+r read-only), directories g+rwx
 * (g+rx read-only) plus setgid. Precisely, the kubelet ORs in the masks
 * 0660 (0440 read-only) and, for directories, 0110 and setgid: the owner
 * gains the same bits as the group. One deliberate difference: the kubelet
 * chmods with the mode it read before its lchown and so puts back a
 * setuid bit the lchown cleared; volperm never re-adds what chown cleared
 * (contract: "apply never re-adds them"), and reports the drop.
 * ====================================================================== */

#define FSG 3000u

static struct stat mkst(mode_t mode, uid_t uid, gid_t gid)
{
	struct stat st;
	memset(&st, 0, sizeof st);
	st.st_mode = mode;
	st.st_uid = uid;
	st.st_gid = gid;
	st.st_nlink = S_ISDIR(mode) ? 2 : 1;
	st.st_dev = 42;
	st.st_ino = 4242;
	return st;
}

static void fsgroup_policy(struct vp_policy *p, bool on_root_mismatch, bool readonly)
{
	vp_policy_init(p);
	p->has_fsgroup = true;
	p->fsgroup = FSG;
	p->on_root_mismatch = on_root_mismatch;
	p->fsgroup_readonly = readonly;
}

/* What vp_engine_run does before walking: skip only when the policy asks
 * for the root check and the root passes it. */
static bool engine_walks(const struct vp_policy *p, const struct stat *root)
{
	return !(p->on_root_mismatch && vp_root_complies(p, root));
}

/* The kubelet's own table (TestSkipPermissionChange): policy x group
 * matches x bits match x setgid -> walk or skip. Only on-root-mismatch
 * with all three right skips. */
static void test_fsgroup_root_mismatch_table(void **state)
{
	(void)state;
	int failures = 0;
	for (int orm = 0; orm < 2; orm++)
		for (int ro = 0; ro < 2; ro++)
			for (int gid_ok = 0; gid_ok < 2; gid_ok++)
				for (int bits_ok = 0; bits_ok < 2; bits_ok++)
					for (int sgid = 0; sgid < 2; sgid++) {
						struct vp_policy p;
						fsgroup_policy(&p, orm, ro);
						/* the bits the kubelet wants on the root: 0770
						 * (0550 read-only); "wrong" lacks one of them */
						mode_t bits = ro ? (bits_ok ? 0550 : 0510) : (bits_ok ? 0770 : 0750);
						struct stat st = mkst(S_IFDIR | bits | (sgid ? S_ISGID : 0), 0,
						                      gid_ok ? FSG : 0);
						bool complies = gid_ok && bits_ok && sgid;
						bool want_walk = !(orm && complies);
						if (vp_root_complies(&p, &st) != complies ||
						    engine_walks(&p, &st) != want_walk) {
							print_error("policy=%s%s group=%s bits=%s setgid=%s (root %04o): "
							            "root_complies=%d walk=%d, want %d %d\n",
							            orm ? "on-root-mismatch" : "always",
							            ro ? " read-only" : "", gid_ok ? "match" : "differ",
							            bits_ok ? "match" : "differ", sgid ? "yes" : "no",
							            (unsigned)(st.st_mode & 07777),
							            vp_root_complies(&p, &st), engine_walks(&p, &st),
							            complies, want_walk);
							failures++;
						}
						vp_policy_free(&p);
					}
	assert_int_equal(failures, 0);
}

/* More root cases: a superset of the bits is fine (kubelet: 775 & 770 ==
 * 770); a non-directory root is always walked; read-only needs only r-x. */
static void test_fsgroup_root_more(void **state)
{
	(void)state;
	static const struct {
		const char *what;
		bool ro;
		mode_t mode;
		gid_t gid;
		bool complies;
	} t[] = {
		{ "2775 superset", false, S_IFDIR | 02775, FSG, true },
		{ "2777 superset", false, S_IFDIR | 02777, FSG, true },
		{ "3770 sticky too", false, S_IFDIR | 03770, FSG, true },
		{ "6770 setuid too", false, S_IFDIR | 06770, FSG, true },
		{ "2770 exactly", false, S_IFDIR | 02770, FSG, true },
		{ "2760 no g+x", false, S_IFDIR | 02760, FSG, false },
		{ "2730 no g+r", false, S_IFDIR | 02730, FSG, false },
		{ "2670 no u+x", false, S_IFDIR | 02670, FSG, false },
		{ "2370 no u+r", false, S_IFDIR | 02370, FSG, false },
		{ "0770 no setgid (kubelet rootdir=invalidperm)", false, S_IFDIR | 0770, FSG, false },
		{ "2770 other group", false, S_IFDIR | 02770, FSG + 1, false },
		{ "read-only 2550", true, S_IFDIR | 02550, FSG, true },
		{ "read-only 2770 superset", true, S_IFDIR | 02770, FSG, true },
		{ "read-only 2540 no g+x", true, S_IFDIR | 02540, FSG, false },
		{ "read-only 0550 no setgid", true, S_IFDIR | 0550, FSG, false },
		{ "file root, all right", false, S_IFREG | 02770, FSG, false },
		{ "file root 0660", false, S_IFREG | 0660, FSG, false },
		{ "symlink root", false, S_IFLNK | 0777, FSG, false },
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct vp_policy p;
		fsgroup_policy(&p, true, t[i].ro);
		struct stat st = mkst(t[i].mode, 0, t[i].gid);
		if (vp_root_complies(&p, &st) != t[i].complies) {
			print_error("%s: vp_root_complies = %d, want %d\n", t[i].what,
			            !t[i].complies, t[i].complies);
			failures++;
		}
		/* whenever the root complies, deciding on it changes nothing */
		if (t[i].complies) {
			struct vp_decision d;
			struct vp_decide_in in = { .st = &st, .is_root = true };
			assert_int_equal(vp_decide(&p, &in, &d), 0);
			if (d.changes) {
				print_error("%s: complies, yet vp_decide changes %#x\n", t[i].what, d.changes);
				failures++;
			}
		}
		vp_policy_free(&p);
	}
	assert_int_equal(failures, 0);
}

/* --if-root-mismatch with the other policies: the root must comply with
 * the whole policy; an ACL policy cannot be judged from stat and walks. */
static void test_if_root_mismatch_other_policies(void **state)
{
	(void)state;
	struct vp_policy p;
	struct stat st;

	vp_policy_init(&p);
	p.has_uid = p.has_gid = true;
	p.uid = p.gid = 1001;
	p.on_root_mismatch = true;
	st = mkst(S_IFDIR | 0755, 1001, 1001);
	assert_true(vp_root_complies(&p, &st));
	assert_false(engine_walks(&p, &st));
	st = mkst(S_IFDIR | 0755, 1001, 1000);
	assert_false(vp_root_complies(&p, &st));
	st = mkst(S_IFDIR | 0755, 1000, 1001);
	assert_false(vp_root_complies(&p, &st));
	st = mkst(S_IFREG | 0644, 1001, 1001); /* a file root: walked (one entry) */
	assert_false(vp_root_complies(&p, &st));
	/* without on_root_mismatch the engine always walks */
	p.on_root_mismatch = false;
	st = mkst(S_IFDIR | 0755, 1001, 1001);
	assert_true(engine_walks(&p, &st));

	/* owner + --root-mode: the root's mode counts */
	p.on_root_mismatch = true;
	p.has_root_mode = true;
	p.root_mode = 0700;
	st = mkst(S_IFDIR | 0755, 1001, 1001);
	assert_false(vp_root_complies(&p, &st));
	st = mkst(S_IFDIR | 0700, 1001, 1001);
	assert_true(vp_root_complies(&p, &st));
	vp_policy_free(&p);

	/* --chmod: the root's mode after the chmod must be what it is */
	vp_policy_init(&p);
	p.on_root_mismatch = true;
	assert_int_equal(vp_policy_set_chmod(&p, "go-w"), 0);
	st = mkst(S_IFDIR | 0775, 0, 0);
	assert_false(vp_root_complies(&p, &st));
	st = mkst(S_IFDIR | 0755, 0, 0);
	assert_true(vp_root_complies(&p, &st));
	vp_policy_free(&p);

	/* --grant: needs the root's ACL, so never an O(1) skip */
	vp_policy_init(&p);
	p.on_root_mismatch = true;
	assert_int_equal(vp_policy_add_grants(&p, NULL, "u:1001:rwX", false), 0);
	st = mkst(S_IFDIR | 0775, 0, 0);
	assert_false(vp_root_complies(&p, &st));
	vp_policy_free(&p);
}

struct fcase {
	const char *what;
	bool ro;
	mode_t mode;
	gid_t gid;
	unsigned want_changes;
	mode_t want_mode;
};

enum { MO = VP_CH_MODE };

/* Per entry: group = fsGroup; files g+rw (g+r read-only), dirs g+rwx
 * (g+rx) + setgid; bits only added; symlinks: group only. */
static void test_fsgroup_entries(void **state)
{
	(void)state;
	static const struct fcase t[] = {
		/* files */
		{ "file 0600 other group", false, F(0600), 0, G | MO, F(0660) },
		{ "file 0644 other group", false, F(0644), 0, G | MO, F(0664) },
		{ "file 0664 other group: group only", false, F(0664), 0, G, F(0664) },
		{ "file 0600 right group: mode only", false, F(0600), FSG, MO, F(0660) },
		{ "file 0664 compliant", false, F(0664), FSG, 0, F(0664) },
		{ "file 0666 keeps o+w", false, F(0666), FSG, 0, F(0666) },
		{ "file 0777 keeps all", false, F(0777), 0, G, F(0777) },
		{ "file 0000: the kubelet mask is 0660 (u+rw too)", false, F(0000), FSG, MO, F(0660) },
		{ "file 0060", false, F(0060), FSG, MO, F(0660) },
		{ "file 0604", false, F(0604), FSG, MO, F(0664) },
		{ "file 0610 keeps g+x", false, F(0610), 0, G | MO, F(0670) },
		{ "file 1644 keeps sticky", false, F(01644), 0, G | MO, F(01664) },
		/* read-only */
		{ "ro file 0600", true, F(0600), 0, G | MO, F(0640) },
		{ "ro file 0644 compliant", true, F(0644), FSG, 0, F(0644) },
		{ "ro file 0664 keeps g+w", true, F(0664), FSG, 0, F(0664) },
		{ "ro file 0000: mask 0440", true, F(0000), 0, G | MO, F(0440) },
		/* directories */
		{ "dir 0755 other group", false, D(0755), 0, G | MO, D(02775) },
		{ "dir 0700", false, D(0700), 0, G | MO, D(02770) },
		{ "dir 0000: mask 0770 + setgid", false, D(0000), 0, G | MO, D(02770) },
		{ "ro dir 0000: mask 0550 + setgid", true, D(0000), 0, G | MO, D(02550) },
		{ "dir 2770 compliant", false, D(02770), FSG, 0, D(02770) },
		{ "dir 2775 compliant", false, D(02775), FSG, 0, D(02775) },
		{ "dir 0770 right group (rogue subdir): setgid", false, D(0770), FSG, MO, D(02770) },
		{ "dir 0750 right group", false, D(0750), FSG, MO, D(02770) },
		{ "dir 2750 right group", false, D(02750), FSG, MO, D(02770) },
		{ "dir 0777", false, D(0777), 0, G | MO, D(02777) },
		{ "dir 1777 keeps sticky", false, D(01777), 0, G | MO, D(03777) },
		{ "dir 4700 keeps setuid", false, D(04700), 0, G | MO, D(06770) },
		{ "ro dir 0700", true, D(0700), 0, G | MO, D(02750) },
		{ "ro dir 0770 keeps g+w", true, D(0770), FSG, MO, D(02770) },
		{ "ro dir 2550 compliant", true, D(02550), FSG, 0, D(02550) },
		/* symlinks: the group, never a mode */
		{ "symlink other group", false, L, 0, G, L },
		{ "symlink right group", false, L, FSG, 0, L },
		{ "ro symlink", true, L, 0, G, L },
		/* other types get the bits like files (kubelet chmods all but symlinks) */
		{ "fifo 0600", false, S_IFIFO | 0600, 0, G | MO, S_IFIFO | 0660 },
		{ "socket 0755", false, S_IFSOCK | 0755, 0, G | MO, S_IFSOCK | 0775 },
		/* chown's drops, never put back */
		{ "setuid file 4755 other group: setuid dropped", false, F(04755), 0,
		  G | DSU | MO, F(0775) },
		{ "setuid file 4775 other group", false, F(04775), 0, G | DSU, F(0775) },
		{ "setuid file 4755 right group: chmod keeps it", false, F(04755), FSG, MO, F(04775) },
		{ "setgid file 2755 other group: dropped (g+x)", false, F(02755), 0, G | DSG | MO, F(0775) },
		{ "setgid file 2644 other group: kept (no g+x)", false, F(02644), 0, G | MO, F(02664) },
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		for (int orm = 0; orm < 2; orm++) {
			struct vp_policy p;
			fsgroup_policy(&p, orm, t[i].ro);
			struct stat st = mkst(t[i].mode, 1000, t[i].gid);
			struct vp_decision d;
			memset(&d, 0xA5, sizeof d);
			assert_int_equal(vp_decide(&p, &(struct vp_decide_in){ .st = &st }, &d), 0);
			vp_decision_free(&d);
			if (d.changes != t[i].want_changes || d.mode != t[i].want_mode || d.gid != FSG ||
			    d.uid != 1000) {
				print_error("%s%s: got changes=%#x uid=%u gid=%u mode=%06o, want changes=%#x "
				            "uid=1000 gid=%u mode=%06o\n",
				            t[i].what, orm ? " (on-root-mismatch)" : "", d.changes,
				            (unsigned)d.uid, (unsigned)d.gid, (unsigned)d.mode,
				            t[i].want_changes, FSG, (unsigned)t[i].want_mode);
				failures++;
			}
			/* bits are only ever added, except those chown clears */
			mode_t base = d.changes & (U | G) ? vp_mode_after_chown(t[i].mode) : t[i].mode;
			if ((base & ~d.mode) & 07777) {
				print_error("%s: bits removed: %04o -> %04o\n", t[i].what,
				            (unsigned)(base & 07777), (unsigned)(d.mode & 07777));
				failures++;
			}
			vp_policy_free(&p);
		}
	}
	assert_int_equal(failures, 0);
}

/* Every file/dir mode, both read-only settings: the result always has the
 * fsGroup bits, never loses a bit chown keeps, and deciding again on the
 * result is a no-op (so a second apply changes nothing). */
static void test_fsgroup_exhaustive(void **state)
{
	(void)state;
	for (int ro = 0; ro < 2; ro++) {
		struct vp_policy p;
		fsgroup_policy(&p, false, ro);
		for (int dir = 0; dir < 2; dir++)
			for (mode_t perm = 0; perm <= 07777; perm++)
				for (int gi = 0; gi < 2; gi++) {
					mode_t mode = (dir ? S_IFDIR : S_IFREG) | perm;
					struct stat st = mkst(mode, 5, gi ? FSG : 7);
					struct vp_decision d;
					assert_int_equal(vp_decide(&p, &(struct vp_decide_in){ .st = &st }, &d), 0);
					vp_decision_free(&d);
					mode_t need = (ro ? 0440 : 0660) | (dir ? 0110 | S_ISGID : 0);
					mode_t base = gi ? mode : vp_mode_after_chown(mode);
					if ((d.mode & need) != need || (base & ~d.mode & 07777) ||
					    d.mode != (base | need) || d.gid != FSG)
						fail_msg("%s %06o gid %u -> %06o", ro ? "ro" : "rw", (unsigned)mode,
						         (unsigned)st.st_gid, (unsigned)d.mode);
					struct stat after = mkst(d.mode, d.uid, d.gid);
					struct vp_decision d2;
					assert_int_equal(vp_decide(&p, &(struct vp_decide_in){ .st = &after }, &d2), 0);
					vp_decision_free(&d2);
					if (d2.changes)
						fail_msg("%06o: second decision changes %#x", (unsigned)d.mode,
						         d2.changes);
				}
		vp_policy_free(&p);
	}
}

/* fsGroup with an owner uid: both change; --fsgroup decides the group even
 * when a --map-gid would match. */
static void test_fsgroup_with_owner(void **state)
{
	(void)state;
	struct vp_policy p;
	fsgroup_policy(&p, false, false);
	p.has_uid = true;
	p.uid = 1001;
	assert_int_equal(vp_policy_add_gid_map(&p, 0, 5), 0);
	struct stat st = mkst(F(0644), 0, 0);
	struct vp_decision d;
	assert_int_equal(vp_decide(&p, &(struct vp_decide_in){ .st = &st }, &d), 0);
	vp_decision_free(&d);
	assert_int_equal(d.changes, U | G | MO);
	assert_int_equal(d.uid, 1001);
	assert_int_equal(d.gid, FSG);
	assert_int_equal(d.mode, F(0664));
	vp_policy_free(&p);
}

/* --chmod and --root-mode decisions. */
static void test_chmod_root_mode_entries(void **state)
{
	(void)state;
	static const struct {
		const char *what;
		const char *chmod; /* NULL: none */
		int root_mode;     /* -1: none */
		bool is_root;
		mode_t mode;
		unsigned want_changes;
		mode_t want_mode;
	} t[] = {
		{ "u+rwX,go-w file 0666", "u+rwX,go-w", -1, false, F(0666), MO, F(0644) },
		{ "u+rwX,go-w file 0644: compliant", "u+rwX,go-w", -1, false, F(0644), 0, F(0644) },
		{ "u+rwX,go-w file 0400", "u+rwX,go-w", -1, false, F(0400), MO, F(0600) },
		{ "u+rwX,go-w file 0511", "u+rwX,go-w", -1, false, F(0511), MO, F(0711) },
		{ "u+rwX,go-w dir 0577", "u+rwX,go-w", -1, false, D(0577), MO, D(0755) },
		{ "u+rwX,go-w symlink: never a mode", "u+rwX,go-w", -1, false, L, 0, L },
		{ "0750 file", "0750", -1, false, F(0644), MO, F(0750) },
		{ "0750 dir keeps setgid", "0750", -1, false, D(02755), MO, D(02750) },
		{ "0750 symlink", "0750", -1, false, L, 0, L },
		{ "0750 fifo", "0750", -1, false, S_IFIFO | 0600, MO, S_IFIFO | 0750 },
		{ "root-mode 0700 on the root dir", NULL, 0700, true, D(0755), MO, D(0700) },
		{ "root-mode 0700: exactly, setgid goes", NULL, 0700, true, D(02775), MO, D(0700) },
		{ "root-mode 0700 compliant root", NULL, 0700, true, D(0700), 0, D(0700) },
		{ "root-mode only touches the root", NULL, 0700, false, D(0755), 0, D(0755) },
		{ "root-mode 0750 on a file root", NULL, 0750, true, F(0644), MO, F(0750) },
		{ "root-mode after chmod", "a+rX", 0700, true, D(0700), 0, D(0700) },
		{ "chmod still applies below the root", "a+rX", 0700, false, D(0700), MO, D(0755) },
		{ "root-mode 2770", NULL, 02770, true, D(0755), MO, D(02770) },
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct vp_policy p;
		vp_policy_init(&p);
		if (t[i].chmod)
			assert_int_equal(vp_policy_set_chmod(&p, t[i].chmod), 0);
		if (t[i].root_mode >= 0) {
			p.has_root_mode = true;
			p.root_mode = (mode_t)t[i].root_mode;
		}
		struct stat st = mkst(t[i].mode, 1000, 1000);
		struct vp_decide_in in = { .st = &st, .is_root = t[i].is_root };
		struct vp_decision d;
		memset(&d, 0xA5, sizeof d);
		assert_int_equal(vp_decide(&p, &in, &d), 0);
		if (d.changes != t[i].want_changes || d.mode != t[i].want_mode || d.uid != 1000 ||
		    d.gid != 1000) {
			print_error("%s: got changes=%#x mode=%06o uid=%u gid=%u, want changes=%#x mode=%06o\n",
			            t[i].what, d.changes, (unsigned)d.mode, (unsigned)d.uid,
			            (unsigned)d.gid, t[i].want_changes, (unsigned)t[i].want_mode);
			failures++;
		}
		vp_policy_free(&p);
	}
	assert_int_equal(failures, 0);
}

/* chown first, then the mode: a mode policy never puts back what chown
 * cleared, but may set a bit it names. */
static void test_chmod_after_chown(void **state)
{
	(void)state;
	struct vp_policy p;
	vp_policy_init(&p);
	p.has_uid = true;
	p.uid = 1001;
	assert_int_equal(vp_policy_set_chmod(&p, "go-w"), 0);
	struct stat st = mkst(F(04775), 1000, 1000);
	struct vp_decision d;
	assert_int_equal(vp_decide(&p, &(struct vp_decide_in){ .st = &st }, &d), 0);
	vp_decision_free(&d);
	assert_int_equal(d.changes, U | DSU | MO);
	assert_int_equal(d.mode, F(0755));
	vp_policy_free(&p);
}

/* ---- ACL decisions (--grant / --revoke) ---- */

/* Room for the small ACLs these tests write (16 entries). */
#define XBUF (4 + 8 * 16)

static size_t xattr_of(uint8_t *buf, size_t n, const struct vp_acl_entry *e)
{
	struct vp_acl a = { .n = n, .cap = n, .e = (struct vp_acl_entry *)e };
	size_t len = vp_acl_to_xattr(&a, buf, XBUF);
	assert_true(len <= XBUF);
	return len;
}
#define XATTR(buf, ...)                                                                      \
	xattr_of(buf, sizeof((struct vp_acl_entry[]){ __VA_ARGS__ }) / sizeof(struct vp_acl_entry), \
	         (struct vp_acl_entry[]){ __VA_ARGS__ })
#define NID 0xffffffffu
#define AU VP_ACL_USER_OBJ
#define AN VP_ACL_USER
#define AG VP_ACL_GROUP_OBJ
#define AGN VP_ACL_GROUP
#define AM VP_ACL_MASK
#define AO VP_ACL_OTHER

static void grant_policy(struct vp_policy *p, const char *grants, const char *revokes)
{
	vp_policy_init(p);
	if (grants)
		assert_int_equal(vp_policy_add_grants(p, NULL, grants, false), 0);
	if (revokes)
		assert_int_equal(vp_policy_add_grants(p, NULL, revokes, true), 0);
	assert_true(vp_policy_needs_acls(p));
}

static void assert_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len,
                         const char *what)
{
	if (got_len != want_len || memcmp(got, want, want_len) != 0)
		fail_msg("%s: xattr differs (len %zu, want %zu)", what, got_len, want_len);
}

/* A 0644 file without ACL, grant u:1001:rwX: an access ACL like setfacl's,
 * the mask in the mode's group bits, no default ACL (files have none). */
static void test_grant_file(void **state)
{
	(void)state;
	struct vp_policy p;
	grant_policy(&p, "u:1001:rwX", NULL);
	struct stat st = mkst(F(0644), 1000, 1000);
	struct vp_decide_in in = { .st = &st };
	struct vp_decision d = { 0 };
	assert_int_equal(vp_decide(&p, &in, &d), 0);
	assert_int_equal(d.changes, VP_CH_ACL | MO);
	assert_int_equal(d.uid, 1000);
	assert_int_equal(d.gid, 1000);
	assert_int_equal(d.mode, F(0664));
	uint8_t want[XBUF];
	size_t wl = XATTR(want, { AU, 6, NID }, { AN, 6, 1001 }, { AG, 4, NID }, { AM, 6, NID },
	                  { AO, 4, NID });
	assert_bytes(d.acl_access, d.acl_access_len, want, wl, "file access ACL");
	assert_int_equal(d.acl_default_len, 0);

	/* deciding again on the result changes nothing */
	struct stat st2 = mkst(d.mode, 1000, 1000);
	struct vp_decide_in in2 = { .st = &st2, .acl_access = want, .acl_access_len = wl };
	struct vp_decision d2 = { 0 };
	assert_int_equal(vp_decide(&p, &in2, &d2), 0);
	assert_int_equal(d2.changes, 0);
	vp_decision_free(&d2);

	/* an executable file gets x */
	st = mkst(F(0755), 1000, 1000);
	vp_decision_free(&d);
	assert_int_equal(vp_decide(&p, &in, &d), 0);
	wl = XATTR(want, { AU, 7, NID }, { AN, 7, 1001 }, { AG, 5, NID }, { AM, 7, NID },
	           { AO, 5, NID });
	assert_bytes(d.acl_access, d.acl_access_len, want, wl, "executable file");
	assert_int_equal(d.mode, F(0775));
	vp_decision_free(&d);
	vp_policy_free(&p);
}

/* A 0755 dir without ACLs: access ACL with x, and a default ACL seeded from
 * the access ACL's base entries (user::, group::, other::) plus the grant
 * and a mask: what `setfacl -m u:1001:rwX -m d:u:1001:rwX` gives. */
static void test_grant_dir(void **state)
{
	(void)state;
	struct vp_policy p;
	grant_policy(&p, "u:1001:rwX,u:1000:rwX", NULL);
	struct stat st = mkst(D(0755), 1000, 1000);
	struct vp_decide_in in = { .st = &st };
	struct vp_decision d = { 0 };
	assert_int_equal(vp_decide(&p, &in, &d), 0);
	assert_int_equal(d.changes, VP_CH_ACL | VP_CH_DEFAULT_ACL | MO);
	assert_int_equal(d.mode, D(0775));
	uint8_t wa[XBUF], wd[XBUF];
	size_t la = XATTR(wa, { AU, 7, NID }, { AN, 7, 1000 }, { AN, 7, 1001 }, { AG, 5, NID },
	                  { AM, 7, NID }, { AO, 5, NID });
	size_t ld = XATTR(wd, { AU, 7, NID }, { AN, 7, 1000 }, { AN, 7, 1001 }, { AG, 5, NID },
	                  { AM, 7, NID }, { AO, 5, NID });
	assert_bytes(d.acl_access, d.acl_access_len, wa, la, "dir access ACL");
	assert_bytes(d.acl_default, d.acl_default_len, wd, ld, "dir default ACL");

	/* again on the result: compliant */
	struct stat st2 = mkst(d.mode, 1000, 1000);
	struct vp_decide_in in2 = { .st = &st2, .acl_access = wa, .acl_access_len = la,
		                    .acl_default = wd, .acl_default_len = ld };
	struct vp_decision d2 = { 0 };
	assert_int_equal(vp_decide(&p, &in2, &d2), 0);
	assert_int_equal(d2.changes, 0);
	vp_decision_free(&d2);
	vp_decision_free(&d);
	vp_policy_free(&p);
}

/* The default ACL is seeded from the access ACL's group:: entry, not from
 * the mask (setfacl copies the base entries); an existing default ACL is
 * added to, its other entries kept. */
static void test_grant_dir_existing_acls(void **state)
{
	(void)state;
	struct vp_policy p;
	grant_policy(&p, "u:1001:rwX", NULL);
	/* access: u::rwx u:2000:rwx g::r-x m::rwx o::--- (mode 0770), no default */
	uint8_t acc[XBUF], def[XBUF];
	size_t al = XATTR(acc, { AU, 7, NID }, { AN, 7, 2000 }, { AG, 5, NID }, { AM, 7, NID },
	                  { AO, 0, NID });
	struct stat st = mkst(D(0770), 0, 0);
	struct vp_decide_in in = { .st = &st, .acl_access = acc, .acl_access_len = al };
	struct vp_decision d = { 0 };
	assert_int_equal(vp_decide(&p, &in, &d), 0);
	assert_int_equal(d.changes, VP_CH_ACL | VP_CH_DEFAULT_ACL);
	uint8_t w[XBUF];
	size_t wl = XATTR(w, { AU, 7, NID }, { AN, 7, 1001 }, { AN, 7, 2000 }, { AG, 5, NID },
	                  { AM, 7, NID }, { AO, 0, NID });
	assert_bytes(d.acl_access, d.acl_access_len, w, wl, "access ACL, entry added");
	wl = XATTR(w, { AU, 7, NID }, { AN, 7, 1001 }, { AG, 5, NID }, { AM, 7, NID },
	           { AO, 0, NID });
	assert_bytes(d.acl_default, d.acl_default_len, w, wl,
	             "default ACL seeded from user::, group:: (r-x, not the mask), other::");
	assert_int_equal(d.mode, D(0770));

	/* an existing default ACL keeps its entries */
	size_t dl = XATTR(def, { AU, 7, NID }, { AGN, 5, 3000 }, { AG, 0, NID }, { AM, 5, NID },
	                  { AO, 0, NID });
	in.acl_default = def;
	in.acl_default_len = dl;
	/* (canonical order: group:: before group:ID) */
	dl = XATTR(def, { AU, 7, NID }, { AG, 0, NID }, { AGN, 5, 3000 }, { AM, 5, NID },
	           { AO, 0, NID });
	vp_decision_free(&d);
	assert_int_equal(vp_decide(&p, &in, &d), 0);
	wl = XATTR(w, { AU, 7, NID }, { AN, 7, 1001 }, { AG, 0, NID }, { AGN, 5, 3000 },
	           { AM, 7, NID }, { AO, 0, NID });
	assert_bytes(d.acl_default, d.acl_default_len, w, wl, "existing default ACL added to");
	vp_decision_free(&d);
	vp_policy_free(&p);
}

/* Revoke: named entries go from the access and the default ACL; the mask
 * stays, recomputed (setfacl -x); nothing to revoke: no change. */
static void test_revoke_decisions(void **state)
{
	(void)state;
	struct vp_policy p;
	grant_policy(&p, NULL, "u:1001");
	uint8_t acc[XBUF], def[XBUF], w[XBUF];
	size_t al = XATTR(acc, { AU, 7, NID }, { AN, 7, 1001 }, { AG, 5, NID }, { AM, 7, NID },
	                  { AO, 5, NID });
	size_t dl = XATTR(def, { AU, 7, NID }, { AN, 7, 1001 }, { AG, 5, NID }, { AM, 7, NID },
	                  { AO, 5, NID });
	struct stat st = mkst(D(0775), 0, 0);
	struct vp_decide_in in = { .st = &st, .acl_access = acc, .acl_access_len = al,
		                   .acl_default = def, .acl_default_len = dl };
	struct vp_decision d = { 0 };
	assert_int_equal(vp_decide(&p, &in, &d), 0);
	assert_int_equal(d.changes, VP_CH_ACL | VP_CH_DEFAULT_ACL | MO);
	assert_int_equal(d.mode, D(0755));
	size_t wl = XATTR(w, { AU, 7, NID }, { AG, 5, NID }, { AM, 5, NID }, { AO, 5, NID });
	assert_bytes(d.acl_access, d.acl_access_len, w, wl, "access ACL after revoke");
	assert_bytes(d.acl_default, d.acl_default_len, w, wl, "default ACL after revoke");

	/* no ACL at all: nothing to do, and no default ACL is created */
	struct stat s2 = mkst(D(0755), 0, 0);
	struct vp_decide_in in2 = { .st = &s2 };
	vp_decision_free(&d);
	assert_int_equal(vp_decide(&p, &in2, &d), 0);
	assert_int_equal(d.changes, 0);
	struct stat s3 = mkst(F(0644), 0, 0);
	in2.st = &s3;
	vp_decision_free(&d);
	assert_int_equal(vp_decide(&p, &in2, &d), 0);
	assert_int_equal(d.changes, 0);
	vp_decision_free(&d);
	vp_policy_free(&p);
}

/* ACL policies leave symlinks, FIFOs, sockets and devices alone; ownership
 * is never touched by a grant; a damaged ACL is -EBADMSG and no change. */
static void test_grant_other_types_and_errors(void **state)
{
	(void)state;
	struct vp_policy p;
	grant_policy(&p, "u:1001:rwX", NULL);
	static const mode_t types[] = { L, S_IFIFO | 0644, S_IFSOCK | 0755, S_IFCHR | 0660 };
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		struct stat st = mkst(types[i], 1000, 1000);
		struct vp_decide_in in = { .st = &st };
		struct vp_decision d = { 0 };
		assert_int_equal(vp_decide(&p, &in, &d), 0);
		if (d.changes)
			fail_msg("type %06o: changes %#x", (unsigned)types[i], d.changes);
	}
	uint8_t junk[12] = { 1, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff };
	struct stat st = mkst(F(0644), 1000, 1000);
	struct vp_decide_in in = { .st = &st, .acl_access = junk, .acl_access_len = sizeof junk };
	struct vp_decision d = { 0 };
	assert_int_equal(vp_decide(&p, &in, &d), -EBADMSG);
	assert_int_equal(d.changes, 0);
	vp_decision_free(&d);
	vp_policy_free(&p);
}

/* An ACL xattr of n entries in all (user::rwx, n - 4 named users 10000...
 * with r-x, group::r-x, mask::r-x, other::r-x), on the heap. */
static uint8_t *big_acl(size_t n, size_t *len)
{
	struct vp_acl_entry *e = calloc(n, sizeof *e);
	size_t k = 0;
	assert_non_null(e);
	e[k++] = (struct vp_acl_entry){ AU, 7, NID };
	for (size_t i = 0; i + 4 < n; i++)
		e[k++] = (struct vp_acl_entry){ AN, 5, 10000 + (uint32_t)i };
	e[k++] = (struct vp_acl_entry){ AG, 5, NID };
	e[k++] = (struct vp_acl_entry){ AM, 5, NID };
	e[k++] = (struct vp_acl_entry){ AO, 5, NID };
	const struct vp_acl a = { .n = n, .cap = n, .e = e };
	*len = vp_acl_to_xattr(&a, NULL, 0);
	uint8_t *v = malloc(*len);
	assert_non_null(v);
	vp_acl_to_xattr(&a, v, *len);
	free(e);
	return v;
}

/* Large ACLs are decided whole (issue 11): a directory whose access and
 * default ACLs have 64 and 65 entries needs the grant in both (check must
 * say so); at the kernel's 8191 entries a new entry is -E2BIG, no change
 * and no buffers; replacing an existing entry there is fine. */
static void test_grant_large_acls(void **state)
{
	(void)state;
	struct vp_policy p;
	grant_policy(&p, "u:1001:rwX", NULL);
	static const size_t sizes[] = { 63, 64, 65, 500 };
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		size_t n = sizes[k], len;
		uint8_t *v = big_acl(n, &len);
		struct stat st = mkst(D(0755), 0, 0);
		struct vp_decide_in in = { .st = &st, .acl_access = v, .acl_access_len = len,
			                   .acl_default = v, .acl_default_len = len };
		struct vp_decision d = { 0 };
		assert_int_equal(vp_decide(&p, &in, &d), 0);
		if (d.changes != (VP_CH_ACL | VP_CH_DEFAULT_ACL | MO))
			fail_msg("%zu entries: changes %#x, want the access and default ACLs and the mode",
			         n, d.changes);
		assert_int_equal(d.acl_access_len, len + 8);
		assert_int_equal(d.acl_default_len, len + 8);
		assert_int_equal(d.mode, D(0775));

		/* and the result complies */
		struct stat st2 = mkst(d.mode, 0, 0);
		struct vp_decide_in in2 = { .st = &st2, .acl_access = d.acl_access,
			                    .acl_access_len = d.acl_access_len,
			                    .acl_default = d.acl_default,
			                    .acl_default_len = d.acl_default_len };
		struct vp_decision d2 = { 0 };
		assert_int_equal(vp_decide(&p, &in2, &d2), 0);
		assert_int_equal(d2.changes, 0);
		vp_decision_free(&d2);
		vp_decision_free(&d);
		free(v);
	}

	size_t len;
	uint8_t *v = big_acl(8191, &len);
	struct stat st = mkst(F(0755), 0, 0);
	struct vp_decide_in in = { .st = &st, .acl_access = v, .acl_access_len = len };
	struct vp_decision d = { 0 };
	assert_int_equal(vp_decide(&p, &in, &d), -E2BIG);
	assert_int_equal(d.changes, 0);
	assert_null(d.acl_access);
	vp_decision_free(&d);
	vp_policy_free(&p);

	grant_policy(&p, "u:10000:rwx", NULL);
	assert_int_equal(vp_decide(&p, &in, &d), 0);
	assert_int_equal(d.changes, VP_CH_ACL | MO);
	assert_int_equal(d.acl_access_len, len);
	assert_int_equal(d.mode, F(0775));
	vp_decision_free(&d);
	vp_policy_free(&p);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide_table),
		cmocka_unit_test(test_decide_ignores_other_stat_fields),
		cmocka_unit_test(test_decide_policy_untouched),
		cmocka_unit_test(test_mode_after_chown_table),
		cmocka_unit_test(test_decide_consistent_with_mode_after_chown),
		cmocka_unit_test(test_type_name),
		cmocka_unit_test(test_fsgroup_root_mismatch_table),
		cmocka_unit_test(test_fsgroup_root_more),
		cmocka_unit_test(test_if_root_mismatch_other_policies),
		cmocka_unit_test(test_fsgroup_entries),
		cmocka_unit_test(test_fsgroup_exhaustive),
		cmocka_unit_test(test_fsgroup_with_owner),
		cmocka_unit_test(test_chmod_root_mode_entries),
		cmocka_unit_test(test_chmod_after_chown),
		cmocka_unit_test(test_grant_file),
		cmocka_unit_test(test_grant_dir),
		cmocka_unit_test(test_grant_dir_existing_acls),
		cmocka_unit_test(test_revoke_decisions),
		cmocka_unit_test(test_grant_other_types_and_errors),
		cmocka_unit_test(test_grant_large_acls),
	};
	return cmocka_run_group_tests_name("decide", tests, NULL, NULL);
}
