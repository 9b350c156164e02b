/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for include/volperm/idmap.h: the pure parts of `volperm idmap`
 * (the mount itself is tested on real filesystems by tests/cli/idmap.sh).
 *
 * Contract under test: a map is one-to-one or refused with the two colliding
 * OLD ids; the kernel map text is the pairs plus identity for every id not
 * named on either side, over 0..4294967294, without overlaps; an on-disk id
 * that is a NEW but no OLD shows as 65534. An --owner policy is a map only
 * when the census found one owner (and one group, when --owner names one),
 * with the most common one proposed otherwise; the chown cost counts
 * entries, not ids; the fstab option repeats the map's lines in order. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "volperm/idmap.h"

static void test_check(void **state)
{
	(void)state;
	uint32_t a = 7, b = 7;
	const struct vp_idmap ok[] = { { 1000, 1001 }, { 1001, 1002 }, { 1000, 1001 } };
	const struct vp_idmap two_to_one[] = { { 1000, 1001 }, { 1002, 1001 } };
	const struct vp_idmap one_to_two[] = { { 1000, 1001 }, { 1000, 1002 } };

	assert_int_equal(vp_idmap_check(ok, 3, &a, &b), 0);
	assert_int_equal(vp_idmap_check(NULL, 0, &a, &b), 0);
	assert_int_equal(vp_idmap_check(two_to_one, 2, &a, &b), -EINVAL);
	assert_int_equal(a, 1000);
	assert_int_equal(b, 1002);
	assert_int_equal(vp_idmap_check(one_to_two, 2, &a, &b), -EINVAL);
	assert_int_equal(a, 1000);
	assert_int_equal(b, 1000);
}

static void test_format_identity(void **state)
{
	(void)state;
	char buf[VP_IDMAP_TEXT_MAX];

	assert_int_equal(vp_idmap_format(NULL, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "0 0 4294967295\n");
}

static void test_format_remap(void **state)
{
	(void)state;
	char buf[VP_IDMAP_TEXT_MAX];
	const struct vp_idmap m[] = { { 1000, 1001 } };

	assert_int_equal(vp_idmap_format(m, 1, buf, sizeof(buf)), 0);
	/* 1001 is excluded from the identity: it is taken by 1000. */
	assert_string_equal(buf, "0 0 1000\n1002 1002 4294966293\n1000 1001 1\n");
}

static void test_format_chain_and_dup(void **state)
{
	(void)state;
	char buf[VP_IDMAP_TEXT_MAX];
	const struct vp_idmap m[] = { { 5, 0 }, { 0, 5 }, { 5, 0 }, { 4294967294u, 7 } };

	assert_int_equal(vp_idmap_format(m, 4, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1 1 4\n6 6 1\n8 8 4294967286\n5 0 1\n0 5 1\n4294967294 7 1\n");
}

static void test_format_too_big(void **state)
{
	(void)state;
	char buf[VP_IDMAP_TEXT_MAX];
	struct vp_idmap m[200];

	for (uint32_t i = 0; i < 200; i++)
		m[i] = (struct vp_idmap){ 100000 + 10 * i, 200000 + 10 * i };
	assert_int_equal(vp_idmap_format(m, 200, buf, sizeof(buf)), -E2BIG);
}

static void test_show(void **state)
{
	(void)state;
	const struct vp_idmap m[] = { { 1000, 1001 }, { 2000, 2000 } };
	uint32_t s = 0;

	assert_true(vp_idmap_show(m, 2, 1000, &s));
	assert_int_equal(s, 1001);
	assert_true(vp_idmap_show(m, 2, 2000, &s));
	assert_int_equal(s, 2000);
	assert_true(vp_idmap_show(m, 2, 0, &s));
	assert_int_equal(s, 0);
	assert_false(vp_idmap_show(m, 2, 1001, &s));
	assert_int_equal(s, 65534);
}

/* A census by hand: ids are given sorted, as vp_idmap_census keeps them. */
static struct vp_idcount one_uid[] = { { 1000, 5 } };
static struct vp_idcount two_uids[] = { { 33, 2 }, { 1000, 5 }, { 1001, 5 } };
static struct vp_idcount one_gid[] = { { 1000, 12 } };
static struct vp_idcount two_gids[] = { { 0, 3 }, { 1000, 9 } };

static void test_top(void **state)
{
	(void)state;
	struct vp_idcount top[3];
	const struct vp_idcount v[] = { { 1, 4 }, { 2, 9 }, { 3, 4 }, { 4, 1 }, { 5, 9 } };

	assert_int_equal(vp_idcount_top(v, 5, top, 3), 3);
	assert_int_equal(top[0].id, 2); /* 9 entries; 5 has 9 too, but a higher id */
	assert_int_equal(top[1].id, 5);
	assert_int_equal(top[2].id, 1); /* 4 entries, before 3 */
	assert_int_equal(top[2].n, 4);
	assert_int_equal(vp_idcount_top(v, 2, top, 3), 2);
	assert_int_equal(top[0].id, 2);
	assert_int_equal(top[1].id, 1);
	assert_int_equal(vp_idcount_top(v, 0, top, 3), 0);
	assert_int_equal(vp_idcount_top(v, 5, top, 1), 1);
	assert_int_equal(top[0].id, 2);
}

static void test_owner_one(void **state)
{
	(void)state;
	struct vp_idcensus c = { .uids = one_uid, .n_uids = 1, .gids = one_gid, .n_gids = 1, .entries = 5 };
	struct vp_idmap_owner o;

	assert_int_equal(vp_idmap_owner(&c, true, 1001, true, 1002, &o), 0);
	assert_true(o.expressible);
	assert_false(o.many_uids || o.many_gids || o.unknown);
	assert_int_equal(o.n_uid_maps, 1);
	assert_int_equal(o.uid_map.from, 1000);
	assert_int_equal(o.uid_map.to, 1001);
	assert_int_equal(o.n_gid_maps, 1);
	assert_int_equal(o.gid_map.from, 1000);
	assert_int_equal(o.gid_map.to, 1002);

	/* --owner UID alone: no group map, whatever the groups are. */
	c.gids = two_gids;
	c.n_gids = 2;
	assert_int_equal(vp_idmap_owner(&c, true, 1001, false, 0, &o), 0);
	assert_true(o.expressible);
	assert_int_equal(o.n_gid_maps, 0);
	/* ... but with a group, two groups on disk are no map. */
	assert_int_equal(vp_idmap_owner(&c, true, 1001, true, 1001, &o), 0);
	assert_false(o.expressible);
	assert_false(o.many_uids);
	assert_true(o.many_gids);
	assert_int_equal(o.gid_map.from, 1000); /* the most common group */
}

static void test_owner_many(void **state)
{
	(void)state;
	struct vp_idcensus c = { .uids = two_uids, .n_uids = 3, .gids = one_gid, .n_gids = 1, .entries = 12 };
	struct vp_idmap_owner o;

	assert_int_equal(vp_idmap_owner(&c, true, 2000, true, 2000, &o), 0);
	assert_false(o.expressible);
	assert_true(o.many_uids);
	assert_false(o.many_gids);
	/* The proposal: the most common owner (1000 and 1001 tie; the lower). */
	assert_int_equal(o.n_uid_maps, 1);
	assert_int_equal(o.uid_map.from, 1000);
	assert_int_equal(o.uid_map.to, 2000);
	assert_int_equal(o.gid_map.from, 1000);

	/* Unreadable entries: their owners are unknown, so no map is proven. */
	struct vp_idcensus u = { .uids = one_uid, .n_uids = 1, .gids = one_gid, .n_gids = 1,
	                         .entries = 5, .errors = 1, .first_error = EACCES };
	assert_int_equal(vp_idmap_owner(&u, true, 1001, true, 1001, &o), 0);
	assert_false(o.expressible);
	assert_true(o.unknown);
	assert_int_equal(o.uid_map.from, 1000);

	struct vp_idcensus empty = { 0 };
	assert_int_equal(vp_idmap_owner(&c, false, 0, false, 0, &o), -EINVAL);
	assert_int_equal(vp_idmap_owner(&empty, true, 1, true, 1, &o), -ENODATA);
}

static void test_chown_cost(void **state)
{
	(void)state;
	struct vp_idpair pairs[] = { { 0, 0, 1 }, { 1000, 1000, 7 }, { 1000, 1001, 2 }, { 1001, 1001, 4 } };
	struct vp_idcensus c = { .pairs = pairs, .n_pairs = 4, .entries = 14 };
	struct vp_idmap um[] = { { 1000, 1001 } }, gm[] = { { 1000, 1001 } };
	struct vp_policy p = { 0 };

	assert_int_equal(vp_idmap_chown_cost(&c, &p), 0);
	p.has_uid = p.has_gid = true;
	p.uid = p.gid = 1001;
	assert_int_equal(vp_idmap_chown_cost(&c, &p), 10); /* all but the 4 of 1001:1001 */
	p.has_gid = false;
	assert_int_equal(vp_idmap_chown_cost(&c, &p), 10); /* 0:0 and the 9 of uid 1000 */
	p = (struct vp_policy){ .uid_maps = um, .n_uid_maps = 1 };
	assert_int_equal(vp_idmap_chown_cost(&c, &p), 9);
	p.gid_maps = gm;
	p.n_gid_maps = 1;
	assert_int_equal(vp_idmap_chown_cost(&c, &p), 9); /* an entry is written once */
}

static void test_fstab_option(void **state)
{
	(void)state;
	char uid[VP_IDMAP_TEXT_MAX], gid[VP_IDMAP_TEXT_MAX], opt[2 * VP_IDMAP_TEXT_MAX];
	const struct vp_idmap m[] = { { 1000, 1001 } };

	assert_int_equal(vp_idmap_format(m, 1, uid, sizeof(uid)), 0);
	assert_int_equal(vp_idmap_format(NULL, 0, gid, sizeof(gid)), 0);
	assert_int_equal(vp_idmap_fstab_option(uid, gid, opt, sizeof(opt)), 0);
	assert_string_equal(opt, "X-mount.idmap=u:0:0:1000\\040u:1002:1002:4294966293\\040u:1000:1001:1"
	                         "\\040g:0:0:4294967295");
	assert_int_equal(vp_idmap_fstab_option(uid, gid, opt, 20), -E2BIG);
	assert_int_equal(vp_idmap_fstab_option("1 2\n", gid, opt, sizeof(opt)), -EINVAL);
	assert_int_equal(vp_idmap_fstab_option("1 2 3", gid, opt, sizeof(opt)), -EINVAL);
}

static void test_mount_version(void **state)
{
	(void)state;
	unsigned a = 0, b = 0;

	assert_int_equal(vp_idmap_mount_takes_idmap("mount from util-linux 2.38.1 (libmount 2.38.1: selinux, smack, btrfs, verity, namespaces, assert, debug)\n", &a, &b), 0);
	assert_int_equal(a, 2);
	assert_int_equal(b, 38);
	assert_int_equal(vp_idmap_mount_takes_idmap("mount from util-linux 2.39 (libmount 2.39.0: btrfs)\n", &a, &b), 1);
	assert_int_equal(b, 39);
	assert_int_equal(vp_idmap_mount_takes_idmap("mount from util-linux 2.40.2 (libmount 2.40.2)\n", &a, &b), 1);
	assert_int_equal(vp_idmap_mount_takes_idmap("mount from util-linux 3.0\n", &a, &b), 1);
	assert_int_equal(vp_idmap_mount_takes_idmap("mount: BusyBox v1.36\n", &a, &b), -EINVAL);
	assert_int_equal(vp_idmap_mount_takes_idmap("", &a, &b), -EINVAL);
}

/* SRC/DST rules (they moved from the CLI into the core): a real directory
 * only, no symlink, no system path unless allowed; DST empty. */
static void test_dirs(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	char base[PATH_MAX], p[PATH_MAX + 16], *res = NULL;
	int fd = -1;

	snprintf(base, sizeof(base), "%s/vp-test-idmap.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(base));
	assert_int_equal(vp_idmap_dir_open(base, false, &fd, &res), 0);
	assert_true(fd >= 0);
	assert_non_null(res);
	assert_int_equal(vp_idmap_dst_empty(fd), 0);
	snprintf(p, sizeof(p), "%s/f", base);
	int f = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(f >= 0);
	close(f);
	assert_int_equal(vp_idmap_dst_empty(fd), -ENOTEMPTY);
	close(fd);
	free(res);
	assert_int_equal(vp_idmap_dir_open(p, false, &fd, &res), -ENOTDIR);
	assert_int_equal(fd, -1);
	free(res);
	snprintf(p, sizeof(p), "%s/l", base);
	assert_int_equal(symlink(base, p), 0);
	assert_int_equal(vp_idmap_dir_open(p, false, &fd, &res), -ELOOP);
	free(res);
	assert_int_equal(vp_idmap_dir_open("/usr", false, &fd, &res), -EPERM);
	assert_int_equal(fd, -1);
	assert_string_equal(res, "/usr");
	free(res);
	assert_int_equal(vp_idmap_dir_open("/usr", true, &fd, &res), 0);
	close(fd);
	free(res);
	snprintf(p, sizeof(p), "%s/l", base);
	unlink(p);
	snprintf(p, sizeof(p), "%s/f", base);
	unlink(p);
	rmdir(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_format_identity),
		cmocka_unit_test(test_format_remap),
		cmocka_unit_test(test_format_chain_and_dup),
		cmocka_unit_test(test_format_too_big),
		cmocka_unit_test(test_show),
		cmocka_unit_test(test_top),
		cmocka_unit_test(test_owner_one),
		cmocka_unit_test(test_owner_many),
		cmocka_unit_test(test_chown_cost),
		cmocka_unit_test(test_fstab_option),
		cmocka_unit_test(test_mount_version),
		cmocka_unit_test(test_dirs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
