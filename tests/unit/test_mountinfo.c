/* Unit tests for src/mountinfo.h.
 *
 * The rules under test:
 *  - vp_mountinfo_parse_line reads every field of real lines (proc(5)'s
 *    example, lines of this machine's kind): optional fields (none, one,
 *    several), the root of a bind mount, the kernel's \ooo escapes in paths
 *    (space, tab, newline, backslash; a backslash not followed by three
 *    octal digits stays), and refuses lines with a field missing or
 *    malformed;
 *  - vp_mountinfo_each reads a table file, passes over malformed lines,
 *    stops on the callback's error, and says -ENOENT for a missing file;
 *    this process's own table has "/";
 *  - vp_mounts_load keeps the mount points strictly below the root (not
 *    the root, not a sibling whose name starts with the root's, not one
 *    that does not exist), with the (dev, ino) lstat shows there;
 *  - vp_mounts_nested: another st_dev is a mount; a directory of the table
 *    that is no mount root (a bind mount's source) is not; a real bind
 *    mount is (root only: in a private mount namespace of a child). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "mountinfo.h"

static char base[256];

static void at(char *buf, size_t n, const char *rel)
{
	snprintf(buf, n, "%s/%s", base, rel);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* ---- one line ---- */

static void parse(const char *text, struct vp_mountinfo *m, char *buf, size_t n)
{
	snprintf(buf, n, "%s", text);
	assert_int_equal(vp_mountinfo_parse_line(buf, m), 0);
}

static void test_parse_proc5_example(void **state)
{
	(void)state;
	char buf[512];
	struct vp_mountinfo m;

	parse("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
	      &m, buf, sizeof(buf));
	assert_int_equal(m.id, 36);
	assert_int_equal(m.parent_id, 35);
	assert_int_equal(m.major, 98);
	assert_int_equal(m.minor, 0);
	assert_string_equal(m.root, "/mnt1"); /* a bind mount of /mnt1 */
	assert_string_equal(m.mount_point, "/mnt2");
	assert_string_equal(m.options, "rw,noatime");
	assert_string_equal(m.optional, "master:1");
	assert_string_equal(m.fstype, "ext3");
	assert_string_equal(m.source, "/dev/root");
	assert_string_equal(m.super_options, "rw,errors=continue"); /* no newline */
}

static void test_parse_optional_fields(void **state)
{
	(void)state;
	char buf[512];
	struct vp_mountinfo m;

	parse("22 27 0:21 / /proc rw,relatime - proc proc rw", &m, buf, sizeof(buf));
	assert_string_equal(m.optional, "");
	assert_string_equal(m.mount_point, "/proc");
	assert_string_equal(m.fstype, "proc");
	assert_string_equal(m.super_options, "rw");

	parse("629 28 259:3 /var/lib/data /srv/v rw,nosuid shared:5 master:3 propagate_from:2 "
	      "unbindable - ext4 /dev/nvme0n1p3 rw,seclabel\n", &m, buf, sizeof(buf));
	assert_string_equal(m.optional, "shared:5 master:3 propagate_from:2 unbindable");
	assert_string_equal(m.root, "/var/lib/data");
	assert_string_equal(m.mount_point, "/srv/v");
	assert_int_equal(m.major, 259);
	assert_int_equal(m.minor, 3);
	assert_string_equal(m.fstype, "ext4");
	assert_string_equal(m.source, "/dev/nvme0n1p3");
	assert_string_equal(m.super_options, "rw,seclabel");

	/* Large ids and device numbers. */
	parse("4294967296 1 4095:1048575 / /x rw - tmpfs tmpfs rw", &m, buf, sizeof(buf));
	assert_true(m.id == 4294967296ull);
	assert_int_equal(m.major, 4095);
	assert_int_equal(m.minor, 1048575);
}

static void test_parse_escapes(void **state)
{
	(void)state;
	char buf[512];
	struct vp_mountinfo m;

	parse("40 30 8:1 /src\\040dir /v/with\\040space rw shared:1 - ext4 /dev/sd\\134a rw\n",
	      &m, buf, sizeof(buf));
	assert_string_equal(m.root, "/src dir");
	assert_string_equal(m.mount_point, "/v/with space");
	assert_string_equal(m.source, "/dev/sd\\a");
	parse("41 30 8:1 / /v/tab\\011nl\\012back\\134slash rw - fuse.my\\040fs src rw",
	      &m, buf, sizeof(buf));
	assert_string_equal(m.mount_point, "/v/tab\tnl\nback\\slash");
	assert_string_equal(m.fstype, "fuse.my fs");
	/* Not an escape: kept as it is. */
	parse("42 30 8:1 / /v/a\\9b\\04\\ rw - ext4 /dev/sda1 rw", &m, buf, sizeof(buf));
	assert_string_equal(m.mount_point, "/v/a\\9b\\04\\");
}

static void test_parse_malformed(void **state)
{
	(void)state;
	const char *bad[] = {
		"",
		"\n",
		"36 35 98:0 /mnt1 /mnt2",                                 /* no options */
		"36 35 98:0 /mnt1 /mnt2 rw master:1",                     /* no "-" */
		"36 35 98:0 /mnt1 /mnt2 rw master:1 - ext3",              /* no source */
		"36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root",             /* no super options */
		"x6 35 98:0 / /m rw - ext3 /dev/root rw",                 /* id */
		"-1 35 98:0 / /m rw - ext3 /dev/root rw",
		"36 +35 98:0 / /m rw - ext3 /dev/root rw",                /* parent */
		"36 35 98 / /m rw - ext3 /dev/root rw",                   /* no minor */
		"36 35 98:x / /m rw - ext3 /dev/root rw",
		"36 35 98:0  / /m rw - ext3 /dev/root rw",                /* empty field */
		"36 35 98:0 / /m rw - ext3 /dev/root rw 99999999999999999999999",
	};
	char buf[256];
	struct vp_mountinfo m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(buf, sizeof(buf), "%s", bad[i]);
		int r = vp_mountinfo_parse_line(buf, &m);
		if (i == sizeof(bad) / sizeof(*bad) - 1) {
			/* Fields after the super options are not ours to judge. */
			assert_int_equal(r, 0);
			continue;
		}
		if (r != -EINVAL)
			fail_msg("accepted: \"%s\"", bad[i]);
	}
	snprintf(buf, sizeof(buf), "99999999999999999999999 35 98:0 / /m rw - ext3 /dev/root rw");
	assert_int_equal(vp_mountinfo_parse_line(buf, &m), -EINVAL);
}

/* ---- a table ---- */

struct seen {
	size_t n;
	char points[8][128];
	bool root;
	int stop_at;
};

static int collect(const struct vp_mountinfo *m, void *userdata)
{
	struct seen *s = userdata;

	if (strcmp(m->mount_point, "/") == 0)
		s->root = true;
	if (s->n < 8)
		snprintf(s->points[s->n], sizeof(s->points[s->n]), "%s", m->mount_point);
	s->n++;
	if (s->stop_at && (int)s->n == s->stop_at)
		return -ECANCELED;
	return 0;
}

static void test_each_fixture(void **state)
{
	(void)state;
	char path[300];
	struct seen s = { 0 };

	at(path, sizeof(path), "table");
	write_file(path,
	           "21 1 0:20 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	           "this line is not a mount\n"
	           "22 21 0:21 / /proc rw,nosuid - proc proc rw\n"
	           "\n"
	           "23 21 0:20 /srv/a\\040b /mnt/a\\040b rw - ext4 /dev/vda rw\n"
	           "24 21 0:22 / /no-newline-at-the-end rw - tmpfs tmpfs rw");
	assert_int_equal(vp_mountinfo_each(path, collect, &s), 0);
	assert_int_equal(s.n, 4);
	assert_true(s.root);
	assert_string_equal(s.points[0], "/");
	assert_string_equal(s.points[1], "/proc");
	assert_string_equal(s.points[2], "/mnt/a b");
	assert_string_equal(s.points[3], "/no-newline-at-the-end");

	/* The callback's error stops the reading and comes back. */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	assert_int_equal(vp_mountinfo_each(path, collect, &s), -ECANCELED);
	assert_int_equal(s.n, 2);

	/* An empty table is no error. */
	write_file(path, "");
	memset(&s, 0, sizeof(s));
	assert_int_equal(vp_mountinfo_each(path, collect, &s), 0);
	assert_int_equal(s.n, 0);
	unlink(path);
}

static void test_each_missing(void **state)
{
	(void)state;
	char path[300];
	struct seen s = { 0 };
	struct vp_mounts m = { (void *)1, 99 };

	at(path, sizeof(path), "no-such-table");
	assert_int_equal(vp_mountinfo_each(path, collect, &s), -ENOENT);
	assert_int_equal(s.n, 0);
	assert_int_equal(vp_mounts_load(&m, path, base), -ENOENT);
	assert_null(m.v);
	assert_int_equal(m.n, 0);
	vp_mounts_free(&m);
}

static void test_each_live(void **state)
{
	(void)state;
	struct seen s = { 0 };

	assert_int_equal(vp_mountinfo_each(NULL, collect, &s), 0);
	assert_true(s.n >= 1);
	assert_true(s.root);
}

/* ---- the mount points below a root ---- */

static bool has_key(const struct vp_mounts *m, const struct stat *st)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].dev == st->st_dev && m->v[i].ino == st->st_ino)
			return true;
	return false;
}

static void test_load_below_root(void **state)
{
	(void)state;
	char v[300], table[300], p[400], text[4096];
	const char *dirs[] = { "v", "v/m1", "v/a b", "v/sub", "v/sub/m2", "vx", "vx/m3" };
	struct vp_mounts m;
	struct stat st;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
		at(p, sizeof(p), dirs[i]);
		assert_int_equal(mkdir(p, 0755), 0);
	}
	at(v, sizeof(v), "v");
	at(table, sizeof(table), "table-v");
	/* The root itself, three below it (one with an escaped space, one a
	 * bind mount of another directory), a sibling sharing the root's
	 * prefix, and one that is gone. */
	snprintf(text, sizeof(text),
	         "21 1 0:20 / / rw - ext4 /dev/vda rw\n"
	         "30 21 0:20 / %s rw - ext4 /dev/vda rw\n"
	         "31 30 0:30 / %s/m1 rw - tmpfs tmpfs rw\n"
	         "32 30 0:20 / %s/a\\040b rw shared:7 - ext4 /dev/vda rw\n"
	         "33 30 0:20 /elsewhere %s/sub/m2 rw - ext4 /dev/vda rw\n"
	         "34 21 0:20 / %sx/m3 rw - ext4 /dev/vda rw\n"
	         "35 30 0:20 / %s/gone rw - ext4 /dev/vda rw\n",
	         v, v, v, v, base, v);
	write_file(table, text);
	assert_int_equal(vp_mounts_load(&m, table, v), 0);
	assert_int_equal(m.n, 3);
	at(p, sizeof(p), "v/m1");
	assert_int_equal(lstat(p, &st), 0);
	assert_true(has_key(&m, &st));
	at(p, sizeof(p), "v/a b");
	assert_int_equal(lstat(p, &st), 0);
	assert_true(has_key(&m, &st));
	at(p, sizeof(p), "v/sub/m2");
	assert_int_equal(lstat(p, &st), 0);
	assert_true(has_key(&m, &st));
	assert_int_equal(lstat(v, &st), 0);
	assert_false(has_key(&m, &st)); /* the root is the volume */
	at(p, sizeof(p), "vx/m3");
	assert_int_equal(lstat(p, &st), 0);
	assert_false(has_key(&m, &st)); /* a sibling, not below */
	vp_mounts_free(&m);
	assert_null(m.v);
	assert_int_equal(m.n, 0);

	/* Root "/": everything but "/" itself is below it. */
	snprintf(text, sizeof(text),
	         "21 1 0:20 / / rw - ext4 /dev/vda rw\n"
	         "31 21 0:30 / %s/m1 rw - tmpfs tmpfs rw\n",
	         v);
	write_file(table, text);
	assert_int_equal(vp_mounts_load(&m, table, "/"), 0);
	assert_int_equal(m.n, 1);
	vp_mounts_free(&m);
	unlink(table);
}

/* ---- mount points as the walk meets them ---- */

static void test_nested(void **state)
{
	(void)state;
	char p[400];
	struct vp_mounts none = { 0 }, one;
	struct vp_mount_key key;
	struct stat vst, st;
	int dirfd, rootfd;

	at(p, sizeof(p), "n");
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(lstat(p, &vst), 0);
	dirfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	at(p, sizeof(p), "n/plain");
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(lstat(p, &st), 0);

	/* Not in the table, same st_dev: part of the volume. */
	assert_int_equal(vp_mounts_nested(&none, &st, vst.st_dev, dirfd, "plain"), VP_NESTED_NONE);
	/* In the table (as a bind mount's source is) but no mount root. */
	key = (struct vp_mount_key){ st.st_dev, st.st_ino };
	one = (struct vp_mounts){ &key, 1 };
	assert_int_equal(vp_mounts_nested(&one, &st, vst.st_dev, dirfd, "plain"), VP_NESTED_NONE);
	/* Another st_dev: /proc, a mount root, is a mount. */
	rootfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(rootfd >= 0);
	assert_int_equal(lstat("/proc", &st), 0);
	if (st.st_dev != vst.st_dev)
		assert_int_equal(vp_mounts_nested(&none, &st, vst.st_dev, rootfd, "proc"),
		                 VP_NESTED_MOUNT);
	close(rootfd);
	close(dirfd);
}

/* In a child with a mount namespace of its own (gone with it): a bind mount
 * of n2/src at n2/dst, found through the live table. The exit code says
 * which check failed. */
static int bind_child(void)
{
	char v[300], src[400], dst[400];
	struct vp_mounts m;
	struct stat vst, sst, dst_st;
	int dirfd;

	at(v, sizeof(v), "n2");
	snprintf(src, sizeof(src), "%s/src", v);
	snprintf(dst, sizeof(dst), "%s/dst", v);
	if (unshare(CLONE_NEWNS) < 0)
		return 77;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 10;
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
		return 11;
	if (vp_mounts_load(&m, NULL, v) < 0)
		return 12;
	if (lstat(v, &vst) < 0 || lstat(src, &sst) < 0 || lstat(dst, &dst_st) < 0)
		return 13;
	/* Same filesystem, same (dev, ino): st_dev alone cannot tell. */
	if (dst_st.st_dev != vst.st_dev || dst_st.st_ino != sst.st_ino || m.n != 1)
		return 14;
	dirfd = open(v, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return 15;
	if (vp_mounts_nested(&m, &dst_st, vst.st_dev, dirfd, "dst") != VP_NESTED_MOUNT)
		return 16;
	if (vp_mounts_nested(&m, &sst, vst.st_dev, dirfd, "src") != VP_NESTED_NONE)
		return 17;
	close(dirfd);
	vp_mounts_free(&m);
	return 0;
}

static void test_nested_bind_mount(void **state)
{
	(void)state;
	char p[400];
	int status;
	pid_t pid;

	if (geteuid() != 0)
		skip();
	at(p, sizeof(p), "n2");
	assert_int_equal(mkdir(p, 0755), 0);
	at(p, sizeof(p), "n2/src");
	assert_int_equal(mkdir(p, 0755), 0);
	at(p, sizeof(p), "n2/dst");
	assert_int_equal(mkdir(p, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(bind_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip(); /* no mount namespaces here (a container) */
	assert_int_equal(WEXITSTATUS(status), 0);
}

static int setup(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	if (!tmp || strlen(tmp) > 200)
		tmp = "/tmp";
	snprintf(base, sizeof(base), "%s/vp-test-mountinfo.XXXXXX", tmp);
	return mkdtemp(base) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[sizeof(base) + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_proc5_example),
		cmocka_unit_test(test_parse_optional_fields),
		cmocka_unit_test(test_parse_escapes),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_each_fixture),
		cmocka_unit_test(test_each_missing),
		cmocka_unit_test(test_each_live),
		cmocka_unit_test(test_load_below_root),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_nested_bind_mount),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
