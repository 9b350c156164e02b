/* Unit tests for include/volperm/volume.h: the system-path rule, the locks
 * that keep volperm runs off overlapping trees, and the overlap of a
 * journal's tree with a root. Real directories under a temporary one; the
 * "other run" holding a lock is a forked child, as it would be another
 * process (flock locks belong to open files: two in one process would
 * conflict too, but a child is what really happens). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "volperm/volume.h"

static char base[256];

static int setup(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	if (!tmp || strlen(tmp) > 200)
		tmp = "/tmp";
	snprintf(base, sizeof(base), "%s/vp-test-volume.XXXXXX", tmp);
	if (!mkdtemp(base))
		return -1;
	char p[sizeof(base) + 32];
	const char *dirs[] = { "v", "v/sub", "v/sub/deep", "v/a", "v/b", "other" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", base, dirs[i]);
		if (mkdir(p, 0755) < 0)
			return -1;
	}
	snprintf(p, sizeof(p), "%s/v/file", base);
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[sizeof(base) + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

static void at(char *buf, const char *rel)
{
	snprintf(buf, PATH_MAX, "%s/%s", base, rel);
}

static void test_system_paths(void **state)
{
	(void)state;
	const char *refused[] = { "/", "/etc", "/usr", "/usr/bin", "/var", "/home", "/root", "/lib64" };
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		assert_true(vp_is_system_path(refused[i]));
	assert_false(vp_is_system_path("/srv"));
	assert_false(vp_is_system_path("/etc/app"));
	assert_false(vp_is_system_path("/var/lib/app"));

	struct vp_root r;
	/* a spelling that resolves to "/" is "/" */
	char p[PATH_MAX];
	at(p, "v/../../..");
	char *real = realpath(p, NULL);
	assert_non_null(real);
	if (strcmp(real, "/") == 0) {
		assert_int_equal(vp_root_open(p, false, &r), -EPERM);
		assert_non_null(r.path);
		assert_string_equal(r.path, "/");
		assert_int_equal(r.fd, -1);
		vp_root_close(&r);
	}
	free(real);
	assert_int_equal(vp_root_open("/etc", false, &r), -EPERM);
	vp_root_close(&r);
	assert_int_equal(vp_root_open("/etc", true, &r), 0);
	assert_true(r.fd >= 0);
	assert_true(S_ISDIR(r.st.st_mode));
	vp_root_close(&r);
	at(p, "missing");
	assert_int_equal(vp_root_open(p, false, &r), -ENOENT);
	assert_null(r.path);
	vp_root_close(&r);
}

/* Take the tree lock on rel in a child and keep it until told (the pipe
 * closes); returns the child's pid once the lock is held. */
static pid_t hold_in_child(const char *rel, int *release_fd)
{
	int ready[2], go[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char p[PATH_MAX], c;
		close(ready[0]);
		close(go[1]); /* or read(go[0]) never sees the end */
		struct vp_root r;
		struct vp_tree_lock l;
		at(p, rel);
		if (vp_root_open(p, false, &r) < 0 ||
		    vp_tree_lock(r.fd, -1, -1, r.st.st_dev, r.st.st_ino, &l) < 0)
			_exit(1);
		(void)!write(ready[1], "x", 1);
		(void)!read(go[0], &c, 1);
		_exit(0);
	}
	char c;
	close(ready[1]);
	close(go[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*release_fd = go[1];
	return pid;
}

static void release_child(pid_t pid, int fd)
{
	int status;
	close(fd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* 0, or -EWOULDBLOCK with the level, for a lock attempt on rel here. */
static int try_lock(const char *rel, size_t *level)
{
	char p[PATH_MAX];
	struct vp_root r;
	struct vp_tree_lock l;
	at(p, rel);
	assert_int_equal(vp_root_open(p, false, &r), 0);
	int e = vp_tree_lock(r.fd, -1, -1, r.st.st_dev, r.st.st_ino, &l);
	if (level)
		*level = l.busy_level;
	if (e == 0)
		vp_tree_unlock(&l);
	vp_root_close(&r);
	return e;
}

static void test_tree_lock(void **state)
{
	(void)state;
	int rel;
	size_t level = 99;

	/* a run on v: v/sub (inside) is refused, at v, one level up */
	pid_t pid = hold_in_child("v", &rel);
	assert_int_equal(try_lock("v/sub", &level), -EWOULDBLOCK);
	assert_int_equal(level, 1);
	assert_int_equal(try_lock("v/sub/deep", &level), -EWOULDBLOCK);
	assert_int_equal(level, 2);
	assert_int_equal(try_lock("v", &level), -EWOULDBLOCK);
	assert_int_equal(level, 0);
	assert_int_equal(try_lock("other", NULL), 0); /* a tree beside it */
	release_child(pid, rel);
	assert_int_equal(try_lock("v/sub", NULL), 0);

	/* a run on v/sub: v (containing it) is refused at the root itself; a
	 * sibling is not */
	pid = hold_in_child("v/sub", &rel);
	assert_int_equal(try_lock("v", &level), -EWOULDBLOCK);
	assert_int_equal(level, 0);
	assert_int_equal(try_lock("v/a", NULL), 0);
	assert_int_equal(try_lock("v/sub/deep", NULL), -EWOULDBLOCK);
	release_child(pid, rel);
	assert_int_equal(try_lock("v", NULL), 0);

	/* siblings at once */
	pid = hold_in_child("v/a", &rel);
	assert_int_equal(try_lock("v/b", NULL), 0);
	release_child(pid, rel);
}

static void test_overlap(void **state)
{
	(void)state;
	char pv[PATH_MAX], psub[PATH_MAX], pother[PATH_MAX];
	struct stat sv, ssub, sother;
	struct vp_root r;
	struct vp_ancestry anc;

	at(pv, "v");
	at(psub, "v/sub/deep");
	at(pother, "other");
	assert_int_equal(stat(pv, &sv), 0);
	assert_int_equal(stat(psub, &ssub), 0);
	assert_int_equal(stat(pother, &sother), 0);

	/* from v/sub's point of view */
	at(pv, "v/sub");
	assert_int_equal(vp_root_open(pv, false, &r), 0);
	assert_int_equal(vp_ancestry_get(r.fd, &anc), 0);
	assert_true(anc.n >= 3);
	assert_true(vp_ancestry_has(&anc, r.st.st_dev, r.st.st_ino));
	at(pv, "v");
	struct vp_jinfo same = { .dev = r.st.st_dev, .ino = r.st.st_ino };
	struct vp_jinfo up = { .dev = sv.st_dev, .ino = sv.st_ino, .root = pv };
	struct vp_jinfo down = { .dev = ssub.st_dev, .ino = ssub.st_ino, .root = psub };
	struct vp_jinfo beside = { .dev = sother.st_dev, .ino = sother.st_ino, .root = pother };
	struct vp_jinfo moved = { .dev = ssub.st_dev, .ino = ssub.st_ino, .root = pother };
	assert_int_equal(vp_tree_overlap(r.st.st_dev, r.st.st_ino, &anc, &same), 1);
	assert_int_equal(vp_tree_overlap(r.st.st_dev, r.st.st_ino, &anc, &up), 2);
	assert_int_equal(vp_tree_overlap(r.st.st_dev, r.st.st_ino, &anc, &down), 3);
	assert_int_equal(vp_tree_overlap(r.st.st_dev, r.st.st_ino, &anc, &beside), 0);
	/* a recorded path that leads elsewhere now proves nothing */
	assert_int_equal(vp_tree_overlap(r.st.st_dev, r.st.st_ino, &anc, &moved), 0);
	vp_ancestry_free(&anc);
	vp_root_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_system_paths),
		cmocka_unit_test(test_tree_lock),
		cmocka_unit_test(test_overlap),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
