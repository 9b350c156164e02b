/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for include/volperm/userns.h: id maps of user namespaces.
 *
 * Contract under test: ranges C:H:N, one-to-one both ways (overlaps on either
 * side refused with -EEXIST), N > 0, no range past 4294967294 (-EINVAL);
 * translation both ways with -ERANGE outside the map, exact at the first and
 * last id of a range; the rootless Podman/Docker layout from subuid/subgid
 * fixture files (several ranges, comments, numeric names, bad lines); the
 * uid_map text of /proc; policies translated all or nothing. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "volperm/userns.h"

static char dir[] = "/tmp/vp-userns-XXXXXX";

static int make_dir(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	char cmd[64];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A fixture file in the test's directory; returns its path (static). */
static const char *fixture(const char *name, const char *text)
{
	static char path[2][128];
	static int which;
	char *p = path[which ^= 1];
	FILE *f;

	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	f = fopen(p, "we");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	return p;
}

static void test_ranges(void **state)
{
	struct vp_userns u = VP_USERNS_INIT;
	uint32_t v = 7;
	(void)state;

	assert_int_equal(vp_userns_add(&u, false, 0, 1000, 1), 0);
	assert_int_equal(vp_userns_add(&u, false, 1, 100000, 65536), 0);
	/* overlaps, container side and host side */
	assert_int_equal(vp_userns_add(&u, false, 65536, 500000, 2), -EEXIST);
	assert_int_equal(vp_userns_add(&u, false, 70000, 165535, 10), -EEXIST);
	assert_int_equal(vp_userns_add(&u, false, 70000, 999, 2), -EEXIST);
	/* count 0, past the top */
	assert_int_equal(vp_userns_add(&u, false, 70000, 0, 0), -EINVAL);
	assert_int_equal(vp_userns_add(&u, false, 4294967294u, 0, 2), -EINVAL);
	assert_int_equal(vp_userns_add(&u, false, 0, 4294967290u, 6), -EINVAL);
	assert_int_equal(u.n_uid, 2);

	/* edges: first and last id of each range, N = 1 */
	assert_int_equal(vp_userns_to_host(&u, false, 0, &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(vp_userns_to_host(&u, false, 1, &v), 0);
	assert_int_equal(v, 100000);
	assert_int_equal(vp_userns_to_host(&u, false, 1001, &v), 0);
	assert_int_equal(v, 101000);
	assert_int_equal(vp_userns_to_host(&u, false, 65536, &v), 0);
	assert_int_equal(v, 165535);
	v = 7;
	assert_int_equal(vp_userns_to_host(&u, false, 65537, &v), -ERANGE);
	assert_int_equal(vp_userns_to_host(&u, false, 4294967295u, &v), -ERANGE);
	assert_int_equal(v, 7);
	assert_int_equal(vp_userns_to_container(&u, false, 165535, &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(vp_userns_to_container(&u, false, 1000, &v), 0);
	assert_int_equal(v, 0);
	v = 7;
	assert_int_equal(vp_userns_to_container(&u, false, 165536, &v), -ERANGE);
	assert_int_equal(vp_userns_to_container(&u, false, 99999, &v), -ERANGE);
	assert_int_equal(vp_userns_to_container(&u, false, 0, &v), -ERANGE);
	assert_int_equal(v, 7);
	/* the gid map is another map */
	assert_int_equal(vp_userns_to_host(&u, true, 0, &v), -ERANGE);
	vp_userns_free(&u);

	/* the whole id space: the initial namespace's map */
	assert_int_equal(vp_userns_add(&u, true, 0, 0, 4294967295u), 0);
	assert_int_equal(vp_userns_to_host(&u, true, 4294967294u, &v), 0);
	assert_int_equal(v, 4294967294u);
	assert_int_equal(vp_userns_to_host(&u, true, 4294967295u, &v), -ERANGE);
	vp_userns_free(&u);
}

static void test_parse_range(void **state)
{
	uint32_t c = 1, h = 2, n = 3;
	(void)state;

	assert_int_equal(vp_userns_parse_range("0:1000:1", &c, &h, &n), 0);
	assert_true(c == 0 && h == 1000 && n == 1);
	assert_int_equal(vp_userns_parse_range("1:100000:65536", &c, &h, &n), 0);
	assert_true(c == 1 && h == 100000 && n == 65536);
	assert_int_equal(vp_userns_parse_range("0:0:4294967295", &c, &h, &n), 0);
	assert_true(n == 4294967295u);
	assert_int_equal(vp_userns_parse_range("4294967294:0:1", &c, &h, &n), 0);
	c = h = n = 9;
	static const char *bad[] = {
		"", "0", "0:0", "0:0:0", "0:0:1:", ":0:1", "0::1", "0:0:-1", "-1:0:1", "+1:0:1",
		" 0:0:1", "0:0:1 ", "0:0:4294967296", "4294967295:0:1", "1:0:4294967295",
		"0:4294967294:2", "99999999999999999999:0:1", "a:b:c", "0x10:0:1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (vp_userns_parse_range(bad[i], &c, &h, &n) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	}
	assert_true(c == 9 && h == 9 && n == 9);
}

static void test_map_text(void **state)
{
	struct vp_userns u = VP_USERNS_INIT;
	uint32_t v;
	(void)state;

	assert_int_equal(vp_userns_add_map_text(&u, false,
	                                        "         0       1000          1\n"
	                                        "         1     100000      65536\n"),
	                 0);
	assert_int_equal(u.n_uid, 2);
	assert_int_equal(vp_userns_to_host(&u, false, 1001, &v), 0);
	assert_int_equal(v, 101000);
	/* a bad line leaves the map as it was */
	assert_int_equal(vp_userns_add_map_text(&u, false, "0 0 1\n"), -EEXIST);
	assert_int_equal(vp_userns_add_map_text(&u, false, "70000 200000 x\n"), -EINVAL);
	assert_int_equal(vp_userns_add_map_text(&u, false, "70000 200000 1 9\n"), -EINVAL);
	assert_int_equal(u.n_uid, 2);
	assert_int_equal(vp_userns_add_map_text(&u, true, "0 0 4294967295\n"), 0);
	assert_int_equal(u.n_gid, 1);
	assert_int_equal(vp_userns_add_map_text(&u, true, ""), 0);
	assert_int_equal(u.n_gid, 1);
	vp_userns_free(&u);
}

static void test_subid(void **state)
{
	struct vp_userns u = VP_USERNS_INIT;
	uint32_t v;
	(void)state;

	const char *su = fixture("subuid",
	                         "# rootless users\n"
	                         "\n"
	                         "bob:165536:65536\n"
	                         "alice:100000:65536\n"
	                         "alice:300000:1000\n"
	                         "1234:400000:10\n"
	                         "broken\n");
	const char *sg = fixture("subgid", "alice:200000:65536\n1234:500000:10\n");

	assert_int_equal(vp_userns_from_subid(&u, "alice", 1000, 1001, su, sg), 0);
	/* container 0 is the user, 1..N the FIRST range */
	assert_int_equal(vp_userns_to_host(&u, false, 0, &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(vp_userns_to_host(&u, false, 1001, &v), 0);
	assert_int_equal(v, 101000);
	assert_int_equal(vp_userns_to_host(&u, false, 65536, &v), 0);
	assert_int_equal(v, 165535);
	assert_int_equal(vp_userns_to_host(&u, false, 65537, &v), -ERANGE);
	assert_int_equal(vp_userns_to_host(&u, true, 0, &v), 0);
	assert_int_equal(v, 1001);
	assert_int_equal(vp_userns_to_host(&u, true, 1001, &v), 0);
	assert_int_equal(v, 201000);
	vp_userns_free(&u);

	/* numeric user names: the line may name the uid */
	assert_int_equal(vp_userns_from_subid(&u, "carol", 1234, 1234, su, sg), 0);
	assert_int_equal(vp_userns_to_host(&u, false, 10, &v), 0);
	assert_int_equal(v, 400009);
	assert_int_equal(vp_userns_to_host(&u, false, 11, &v), -ERANGE);
	vp_userns_free(&u);

	/* no range, missing file, a bad line of the user's */
	assert_int_equal(vp_userns_from_subid(&u, "dave", 2000, 2000, su, sg), -ENOENT);
	assert_int_equal(vp_userns_from_subid(&u, "bob", 2000, 2000, su, sg), -ENOENT); /* no subgid */
	assert_int_equal(vp_userns_from_subid(&u, "alice", 1000, 1000, "/nonexistent/subuid", sg),
	                 -ENOENT);
	const char *badf = fixture("subuid.bad", "alice:100000\n");
	assert_int_equal(vp_userns_from_subid(&u, "alice", 1000, 1000, badf, sg), -EBADMSG);
	badf = fixture("subuid.bad", "alice:4294967290:10\n");
	assert_int_equal(vp_userns_from_subid(&u, "alice", 1000, 1000, badf, sg), -EBADMSG);
	/* the user's own uid inside the subordinate range: overlapping maps */
	badf = fixture("subuid.bad", "alice:1000:10\n");
	assert_int_equal(vp_userns_from_subid(&u, "alice", 1005, 1000, badf, sg), -EEXIST);
	assert_true(vp_userns_empty(&u));

	/* the environment names the files when the arguments do not */
	su = fixture("subuid.env", "erin:600000:5\n");
	sg = fixture("subgid.env", "erin:700000:5\n");
	setenv("VOLPERM_SUBUID_FILE", su, 1);
	setenv("VOLPERM_SUBGID_FILE", sg, 1);
	assert_int_equal(vp_userns_from_subid(&u, "erin", 3000, 3000, NULL, NULL), 0);
	assert_int_equal(vp_userns_to_host(&u, true, 5, &v), 0);
	assert_int_equal(v, 700004);
	unsetenv("VOLPERM_SUBUID_FILE");
	unsetenv("VOLPERM_SUBGID_FILE");
	vp_userns_free(&u);
}

static void test_self(void **state)
{
	struct vp_userns u = VP_USERNS_INIT;
	uint32_t v;
	(void)state;

	if (access("/proc/self/uid_map", R_OK) != 0)
		skip();
	assert_int_equal(vp_userns_self(&u), 0);
	assert_true(u.n_uid >= 1 && u.n_gid >= 1);
	/* our own euid is mapped: its host id is what we are */
	int init = vp_userns_is_initial();
	assert_true(init == 0 || init == 1);
	if (init) {
		assert_int_equal(vp_userns_to_host(&u, false, geteuid(), &v), 0);
		assert_int_equal(v, geteuid());
	}
	vp_userns_free(&u);
	assert_int_equal(vp_userns_from_pid(&u, getpid()), 0);
	vp_userns_free(&u);
	assert_int_equal(vp_userns_from_spec(&u, "pid:1"), 0);
	assert_string_equal(u.spec, "pid:1");
	vp_userns_free(&u);
	/* our own namespace file, joined by a child */
	int r = vp_userns_from_nsfile(&u, "/proc/self/ns/user");
	if (r == 0) {
		struct vp_userns s = VP_USERNS_INIT;
		assert_int_equal(vp_userns_self(&s), 0);
		assert_int_equal(u.n_uid, s.n_uid);
		assert_memory_equal(u.uid, s.uid, s.n_uid * sizeof(*s.uid));
		vp_userns_free(&s);
	} else {
		/* joining one's own user namespace is refused (EINVAL) by
		 * the kernel: setns into the current namespace */
		assert_int_equal(r, -EINVAL);
	}
	vp_userns_free(&u);
	assert_int_equal(vp_userns_from_nsfile(&u, "/proc/self/ns/mnt"), -ENOTTY);
	assert_int_equal(vp_userns_from_spec(&u, "pid:0"), -EINVAL);
	assert_int_equal(vp_userns_from_spec(&u, "pid:x"), -EINVAL);
	assert_int_equal(vp_userns_from_spec(&u, "alice"), -EINVAL);
	assert_int_equal(vp_userns_from_spec(&u, "user:no-such-user-volperm"), -ENOENT);
	assert_true(vp_userns_empty(&u));
}

static void test_policy(void **state)
{
	struct vp_userns u = VP_USERNS_INIT;
	struct vp_policy p;
	char why[512] = "", *d = NULL;
	(void)state;

	assert_int_equal(vp_userns_add(&u, false, 0, 1000, 1), 0);
	assert_int_equal(vp_userns_add(&u, false, 1, 100000, 65536), 0);
	assert_int_equal(vp_userns_add(&u, true, 0, 1000, 1), 0);
	assert_int_equal(vp_userns_add(&u, true, 1, 100000, 65536), 0);

	vp_policy_init(&p);
	p.has_uid = p.has_gid = true;
	p.uid = 1001;
	p.gid = 1001;
	assert_int_equal(vp_policy_add_uid_map(&p, 0, 33), 0);
	assert_int_equal(vp_policy_add_grants(&p, NULL, "u:1001:rwX,g:0:rx", false), 0);
	assert_int_equal(vp_policy_add_grants(&p, NULL, "u:5", true), 0);
	assert_int_equal(vp_userns_translate_policy(&u, &p, why, sizeof(why)), 0);
	assert_int_equal(p.uid, 101000);
	assert_int_equal(p.gid, 101000);
	assert_int_equal(p.uid_maps[0].from, 1000);
	assert_int_equal(p.uid_maps[0].to, 100032);
	assert_int_equal(p.grants[0].id, 101000);
	assert_int_equal(p.grants[1].id, 1000);
	assert_int_equal(p.revokes[0].id, 100004);
	assert_int_equal(vp_userns_describe(&u, &p, &d), 0);
	assert_string_equal(d, "owner 1001:1001 (host 101000:101000), map uid 0 (host 1000)->33 (host 100032), "
	                       "grant u:1001 (host 101000):rwX, grant g:0 (host 1000):rx, revoke u:5 (host 100004)");
	free(d);
	vp_policy_free(&p);

	/* all or nothing: the out-of-range fsgroup leaves the owner alone */
	vp_policy_init(&p);
	p.has_uid = true;
	p.uid = 1001;
	p.has_fsgroup = true;
	p.fsgroup = 65537;
	assert_int_equal(vp_userns_translate_policy(&u, &p, why, sizeof(why)), -ERANGE);
	assert_int_equal(p.uid, 1001);
	assert_int_equal(p.fsgroup, 65537);
	assert_non_null(strstr(why, "--fsgroup gid 65537 is outside"));
	assert_non_null(strstr(why, "0-0,1-65536"));
	vp_policy_free(&p);
	vp_userns_free(&u);
}

/* The map's name in a sentence: a --userns SPEC (maybe a path) quoted, the
 * names of --uid-map/--gid-map maps as they are. */
static void test_name(void **state)
{
	char *um[] = { "0:100000:10" }, *gm[] = { "0:200000:10" }, why[512] = "", buf[64];
	struct vp_userns u = VP_USERNS_INIT;
	struct vp_policy p;
	(void)state;

	assert_string_equal(vp_userns_name(&u, buf, sizeof(buf), "--uid-map"), "--uid-map");
	assert_int_equal(vp_userns_build(&u, NULL, um, 1, NULL, 0, why, sizeof(why)), 0);
	assert_string_equal(vp_userns_name(&u, buf, sizeof(buf), "x"), "--uid-map");
	assert_int_equal(vp_userns_build(&u, NULL, um, 1, gm, 1, why, sizeof(why)), 0);
	assert_string_equal(vp_userns_name(&u, buf, sizeof(buf), "x"), "--uid-map/--gid-map");
	free(u.spec);
	assert_non_null(u.spec = strdup("/run/a'b\nns"));
	assert_string_equal(vp_userns_name(&u, buf, sizeof(buf), "x"), "'/run/a'\\''b'$'\\n''ns'");

	/* and so in translate_policy's refusal */
	vp_policy_init(&p);
	p.has_uid = true;
	p.uid = 10;
	assert_int_equal(vp_userns_translate_policy(&u, &p, why, sizeof(why)), -ERANGE);
	assert_non_null(strstr(why, "map of '/run/a'\\''b'$'\\n''ns' (container uids 0-9)"));
	vp_policy_free(&p);
	vp_userns_free(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_parse_range),
		cmocka_unit_test(test_map_text),
		cmocka_unit_test(test_subid),
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_name),
	};
	return cmocka_run_group_tests_name("userns", tests, make_dir, remove_dir);
}
