/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for include/volperm/idmap.h: the pure parts of `volperm idmap`
 * (the mount itself is tested on real filesystems by tests/cli/idmap.sh).
 *
 * Contract under test: a map is one-to-one or refused with the two colliding
 * OLD ids; the kernel map text is the pairs plus identity for every id not
 * named on either side, over 0..4294967294, without overlaps; an on-disk id
 * that is a NEW but no OLD shows as 65534. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_format_identity),
		cmocka_unit_test(test_format_remap),
		cmocka_unit_test(test_format_chain_and_dup),
		cmocka_unit_test(test_format_too_big),
		cmocka_unit_test(test_show),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
