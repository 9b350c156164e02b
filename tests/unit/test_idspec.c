/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for include/volperm/idspec.h: how users type uids and gids.
 *
 * Contract under test (idspec.h): digits only, 0..4294967294; junk, signs,
 * spaces, empty, unknown names -> -EINVAL; 4294967295 and anything larger
 * (including values that overflow 64 bits) -> -ERANGE; out-parameters are
 * left untouched on every failure. Names resolve through the local user and
 * group databases ("root" is 0 on every Linux system this runs on). */

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "volperm/idspec.h"

#define SENTINEL32 0xA5A5A5A5u

/* Failures are printed and counted, so that one run lists every wrong case;
 * each test asserts the count is zero at its end. */
static int failures;
#define report(...) (print_error(__VA_ARGS__), print_error("\n"), failures++)
#define BEGIN() (failures = 0)
#define END() assert_int_equal(failures, 0)

/* ---- vp_parse_id ---- */

static void test_parse_id_valid(void **state)
{
	(void)state;
	BEGIN();
	static const struct {
		const char *in;
		uint32_t want;
	} cases[] = {
		{ "0", 0 },
		{ "1", 1 },
		{ "1000", 1000 },
		{ "65534", 65534 },
		{ "65535", 65535 },
		{ "65536", 65536 },
		{ "2147483647", 2147483647u },
		{ "2147483648", 2147483648u },
		{ "4294967293", 4294967293u },
		{ "4294967294", 4294967294u },
		{ "007", 7 },                            /* leading zeros are still digits */
		{ "00000000000000000000001", 1 },         /* long, but in range */
		{ "0004294967294", 4294967294u },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint32_t v = SENTINEL32;
		int r = vp_parse_id(cases[i].in, &v);
		if (r != 0 || v != cases[i].want)
			report("vp_parse_id(\"%s\"): got r=%d v=%u, want r=0 v=%u", cases[i].in, r,
			         v, cases[i].want);
	}
	assert_int_equal(VP_ID_MAX, 4294967294u);
	END();
}

static void test_parse_id_junk(void **state)
{
	(void)state;
	BEGIN();
	static const char *const junk[] = {
		"", " ", " 1", "1 ", "\t1", "1\t", "1\n", "\n", "+1", "-1", "-0", "+0", "1a", "a1",
		"abc", "0x10", "0X10", "0b1", "1.0", "1,000", "1_000", "1e3", "1 000", "١", /* arabic-indic one */
		"１", /* fullwidth one */ "1:2", ":", "--1", "0-", "−1", /* U+2212 minus */
		"-4294967295", "-99999999999999999999",
	};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		uint32_t v = SENTINEL32;
		int r = vp_parse_id(junk[i], &v);
		if (r != -EINVAL)
			report("vp_parse_id(\"%s\"): got %d, want -EINVAL (%d)", junk[i], r, -EINVAL);
		if (v != SENTINEL32)
			report("vp_parse_id(\"%s\"): out-param changed on failure (%u)", junk[i], v);
	}
	END();
}

static void test_parse_id_range(void **state)
{
	(void)state;
	BEGIN();
	static const char *const big[] = {
		"4294967295",            /* (uid_t)-1: chown's "no change" */
		"4294967296",            /* 2^32 */
		"4294967297",
		"9999999999",
		"42949672940",
		"18446744073709551615",  /* 2^64-1 */
		"18446744073709551616",  /* 2^64: overflows a 64-bit strtoull */
		"18446744073709551617",
		"99999999999999999999",
		"999999999999999999999999999999999999999999999999999999999999",
		"0004294967295",
	};
	for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
		uint32_t v = SENTINEL32;
		int r = vp_parse_id(big[i], &v);
		if (r != -ERANGE)
			report("vp_parse_id(\"%s\"): got %d, want -ERANGE (%d)", big[i], r, -ERANGE);
		if (v != SENTINEL32)
			report("vp_parse_id(\"%s\"): out-param changed on failure (%u)", big[i], v);
	}
	END();
}

/* Neither 64-bit wrap-around nor 32-bit truncation may sneak a small id in:
 * 2^64 + 5 wraps to 5 in a naive accumulator, 2^32 + 1000 truncates to 1000. */
static void test_parse_id_no_wraparound(void **state)
{
	(void)state;
	BEGIN();
	uint32_t v = SENTINEL32;
	assert_int_equal(vp_parse_id("18446744073709551621", &v), -ERANGE);
	assert_int_equal(vp_parse_id("4294968296", &v), -ERANGE);
	assert_int_equal(vp_parse_id("36893488147419103232", &v), -ERANGE); /* 2^65 */
	assert_int_equal(v, SENTINEL32);
	END();
}

/* ---- vp_parse_user / vp_parse_group ---- */

static void test_parse_user_group(void **state)
{
	(void)state;
	BEGIN();
	uid_t u = (uid_t)SENTINEL32;
	gid_t g = (gid_t)SENTINEL32;

	assert_int_equal(vp_parse_user("1000", &u), 0);
	assert_int_equal(u, 1000);
	assert_int_equal(vp_parse_group("1001", &g), 0);
	assert_int_equal(g, 1001);
	assert_int_equal(vp_parse_user("0", &u), 0);
	assert_int_equal(u, 0);
	assert_int_equal(vp_parse_user("4294967294", &u), 0);
	assert_int_equal(u, 4294967294u);

	/* names via the local database */
	struct passwd *pw = getpwnam("root");
	assert_non_null(pw); /* the test environment has a root user */
	u = (uid_t)SENTINEL32;
	assert_int_equal(vp_parse_user("root", &u), 0);
	assert_int_equal(u, 0);
	struct group *gr = getgrnam("root");
	assert_non_null(gr);
	g = (gid_t)SENTINEL32;
	assert_int_equal(vp_parse_group("root", &g), 0);
	assert_int_equal(g, 0);

	/* unknown names, junk, range: failures leave the out-param alone */
	static const char *const bad[] = { "no-such-user-xyz", "", " root", "root ", "+1",
		                           "1a", "0x10", "ro ot", "1:2" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		u = (uid_t)SENTINEL32;
		g = (gid_t)SENTINEL32;
		int ru = vp_parse_user(bad[i], &u);
		int rg = vp_parse_group(bad[i], &g);
		if (ru != -EINVAL || u != (uid_t)SENTINEL32)
			report("vp_parse_user(\"%s\"): r=%d u=%u, want -EINVAL untouched", bad[i], ru,
			         (unsigned)u);
		if (rg != -EINVAL || g != (gid_t)SENTINEL32)
			report("vp_parse_group(\"%s\"): r=%d g=%u, want -EINVAL untouched", bad[i],
			         rg, (unsigned)g);
	}
	assert_null(getgrnam("no-such-group-xyz"));
	g = (gid_t)SENTINEL32;
	assert_int_equal(vp_parse_group("no-such-group-xyz", &g), -EINVAL);
	assert_int_equal(g, (gid_t)SENTINEL32);

	/* a number is a number, never a name lookup: out of range stays -ERANGE */
	u = (uid_t)SENTINEL32;
	g = (gid_t)SENTINEL32;
	assert_int_equal(vp_parse_user("4294967295", &u), -ERANGE);
	assert_int_equal(vp_parse_group("4294967295", &g), -ERANGE);
	assert_int_equal(vp_parse_user("99999999999999999999", &u), -ERANGE);
	/* negative numbers are out of range (chown's -1), never name lookups */
	assert_int_equal(vp_parse_user("-1", &u), -ERANGE);
	assert_int_equal(vp_parse_group("-1", &g), -ERANGE);
	assert_int_equal(vp_parse_user("-5", &u), -ERANGE);
	assert_int_equal(vp_parse_group("99999999999999999999", &g), -ERANGE);
	assert_int_equal(u, (uid_t)SENTINEL32);
	assert_int_equal(g, (gid_t)SENTINEL32);
	END();
}

/* ---- vp_parse_owner ---- */

static void check_owner_ok(const char *in, bool has_uid, uid_t uid, bool has_gid, gid_t gid)
{
	struct vp_owner o;
	memset(&o, 0xA5, sizeof o);
	int r = vp_parse_owner(in, &o);
	if (r != 0)
		report("vp_parse_owner(\"%s\"): got %d, want 0", in, r);
	if (o.has_uid != has_uid || o.has_gid != has_gid)
		report("vp_parse_owner(\"%s\"): has_uid=%d has_gid=%d, want %d %d", in, o.has_uid,
		         o.has_gid, has_uid, has_gid);
	if (has_uid && o.uid != uid)
		report("vp_parse_owner(\"%s\"): uid=%u, want %u", in, (unsigned)o.uid,
		         (unsigned)uid);
	if (has_gid && o.gid != gid)
		report("vp_parse_owner(\"%s\"): gid=%u, want %u", in, (unsigned)o.gid,
		         (unsigned)gid);
}

static void check_owner_fails(const char *in, int want)
{
	struct vp_owner o, before;
	memset(&o, 0xA5, sizeof o);
	memcpy(&before, &o, sizeof o);
	int r = vp_parse_owner(in, &o);
	if (r != want)
		report("vp_parse_owner(\"%s\"): got %d, want %d", in, r, want);
	if (memcmp(&o, &before, sizeof o) != 0)
		report("vp_parse_owner(\"%s\"): out-param changed on failure", in);
}

static void test_parse_owner_valid(void **state)
{
	(void)state;
	BEGIN();
	check_owner_ok("1000", true, 1000, false, 0);
	check_owner_ok("1000:1001", true, 1000, true, 1001);
	check_owner_ok(":1001", false, 0, true, 1001);
	check_owner_ok("0", true, 0, false, 0);
	check_owner_ok("0:0", true, 0, true, 0);
	check_owner_ok(":0", false, 0, true, 0);
	check_owner_ok("4294967294:4294967294", true, 4294967294u, true, 4294967294u);
	check_owner_ok("root", true, 0, false, 0);
	check_owner_ok("root:root", true, 0, true, 0);
	check_owner_ok(":root", false, 0, true, 0);
	check_owner_ok("1000:root", true, 1000, true, 0);
	check_owner_ok("root:1001", true, 0, true, 1001);
	END();
}

static void test_parse_owner_invalid(void **state)
{
	(void)state;
	BEGIN();
	static const char *const einval[] = {
		"", ":", "::", "1000:", "root:", "1:2:3", "1000::1001", ":1001:", "::1001",
		" 1000", "1000 ", "1000: 1001", "1000 :1001", "+1000", "1a", "1000:1a", "0x10", "0x10:0x10", "abc:def", "no-such-user-xyz",
		"no-such-user-xyz:1000", "1000:no-such-group-xyz", ":no-such-group-xyz",
		"1000.1001", /* the obsolete chown "." separator is not accepted */
	};
	for (size_t i = 0; i < sizeof einval / sizeof einval[0]; i++)
		check_owner_fails(einval[i], -EINVAL);

	static const char *const erange[] = {
		"4294967295", "4294967295:1000", "1000:4294967295", ":4294967295",
		"99999999999999999999", "1000:99999999999999999999", ":18446744073709551616",
		"4294967296:4294967296", "-1", "-1:-1", "1000:-1", "-1:1000", ":-1",
	};
	for (size_t i = 0; i < sizeof erange / sizeof erange[0]; i++)
		check_owner_fails(erange[i], -ERANGE);
	END();
}

/* ---- vp_parse_uid_map / vp_parse_gid_map ---- */

typedef int (*map_fn)(const char *, uint32_t *, uint32_t *);

static void check_map_ok(map_fn fn, const char *fname, const char *in, uint32_t from,
                         uint32_t to)
{
	uint32_t f = SENTINEL32, t = SENTINEL32;
	int r = fn(in, &f, &t);
	if (r != 0 || f != from || t != to)
		report("%s(\"%s\"): r=%d %u:%u, want 0 %u:%u", fname, in, r, f, t, from, to);
}

static void check_map_fails(map_fn fn, const char *fname, const char *in, int want)
{
	uint32_t f = SENTINEL32, t = SENTINEL32;
	int r = fn(in, &f, &t);
	if (r != want)
		report("%s(\"%s\"): got %d, want %d", fname, in, r, want);
	if (f != SENTINEL32 || t != SENTINEL32)
		report("%s(\"%s\"): out-params changed on failure (%u:%u)", fname, in, f, t);
}

static void test_parse_maps(void **state)
{
	(void)state;
	BEGIN();
	static const struct {
		map_fn fn;
		const char *name;
	} fns[] = {
		{ vp_parse_uid_map, "vp_parse_uid_map" },
		{ vp_parse_gid_map, "vp_parse_gid_map" },
	};
	for (size_t k = 0; k < 2; k++) {
		map_fn fn = fns[k].fn;
		const char *n = fns[k].name;
		check_map_ok(fn, n, "1000:1001", 1000, 1001);
		check_map_ok(fn, n, "0:65534", 0, 65534);
		check_map_ok(fn, n, "4294967294:0", 4294967294u, 0);
		check_map_ok(fn, n, "0:4294967294", 0, 4294967294u);
		check_map_ok(fn, n, "5:5", 5, 5);
		check_map_ok(fn, n, "root:1000", 0, 1000);
		check_map_ok(fn, n, "1000:root", 1000, 0);

		static const char *const einval[] = {
			"", ":", "1000", "1000:", ":1001", "1:2:3", "1000::1001", " 1000:1001",
			"1000:1001 ", "1000 :1001", "+1:2", "1a:2", "1:2a",
			"0x10:1", "no-such-user-xyz:1", "1:no-such-user-xyz",
		};
		for (size_t i = 0; i < sizeof einval / sizeof einval[0]; i++)
			check_map_fails(fn, n, einval[i], -EINVAL);
		static const char *const erange[] = {
			"4294967295:1", "1:4294967295", "99999999999999999999:1",
			"1:18446744073709551616", "-1:1000", "1000:-1",
		};
		for (size_t i = 0; i < sizeof erange / sizeof erange[0]; i++)
			check_map_fails(fn, n, erange[i], -ERANGE);
	}
	END();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_id_valid),
		cmocka_unit_test(test_parse_id_junk),
		cmocka_unit_test(test_parse_id_range),
		cmocka_unit_test(test_parse_id_no_wraparound),
		cmocka_unit_test(test_parse_user_group),
		cmocka_unit_test(test_parse_owner_valid),
		cmocka_unit_test(test_parse_owner_invalid),
		cmocka_unit_test(test_parse_maps),
	};
	return cmocka_run_group_tests_name("idspec", tests, NULL, NULL);
}
