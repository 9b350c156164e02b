/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for src/meta.h: xattrs and chmod of the inode
 * behind an O_PATH fd.
 *
 * The rules under test:
 *  - every call reaches the pinned inode, never the path it was opened by
 *    (a rename or a new file under the old name changes nothing);
 *  - vp_fd_getxattr: the exact value, whatever its size (the small-value
 *    read and the sized one); an empty value is present (non-NULL, 0);
 *    absent is 0 with NULL; vp_fd_setxattr(NULL) removes, absent is fine;
 *  - vp_xattrs_read: the ACLs (and only those volperm reads), with a name
 *    list longer than the first buffer;
 *  - the walk's reads into a buffer: vp_getxattr_at (one name in a
 *    directory fd, a symlink not followed) and vp_fd_getxattr_buf (a read
 *    fd or an O_PATH fd): the value, its size alone, -ERANGE, -ENODATA,
 *    -ENOENT;
 *  - vp_fd_chmod / vp_fd_chmod_type: the exact mode, -ELOOP for a symlink,
 *    whose mode stays;
 *  - several threads at once on the first call (the one-time setup);
 *  - a forked child reaches its own fd N, not the parent's;
 *  - both ways give the same answers: the fast calls (getxattrat & co.,
 *    fchmodat2) and the by-path fallback. The modes (argv[1]) run the same
 *    checks under a seccomp filter:
 *      (none)    whatever the kernel has; last, the fast calls start
 *                failing with ENOSYS in the middle of the run;
 *      fast      the by-path calls fail with EPERM: only the fast calls
 *                can pass (exit 77, skipped, on kernels before 6.13);
 *      fallback  the fast calls fail with ENOSYS from the start.
 * Needs a filesystem with user.* xattrs and POSIX ACLs for the current
 * directory or TMPDIR (ext4, xfs, btrfs, tmpfs >= 6.6): skipped otherwise. */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "meta.h"

static char dir[4096];

static void path_of(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", dir, name);
}

/* A fresh regular file NAME (mode 0644) and an O_PATH fd on it. */
static int mkfile(const char *name)
{
	char p[4200];
	int fd;

	path_of(p, sizeof(p), name);
	unlink(p);
	fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	close(fd);
	fd = open(p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static mode_t mode_of(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_mode;
}

static void check_xattr(int fd, const char *name, const void *want, size_t want_len)
{
	void *v = (void *)1;
	size_t len = 99;

	assert_int_equal(vp_fd_getxattr(fd, name, &v, &len), 0);
	if (!want) {
		assert_null(v);
		assert_int_equal(len, 0);
		return;
	}
	assert_non_null(v);
	assert_int_equal(len, want_len);
	assert_memory_equal(v, want, want_len);
	free(v);
}

static void test_get_set_remove(void **state)
{
	(void)state;
	int fd = mkfile("f");

	check_xattr(fd, "user.vp", NULL, 0);
	assert_int_equal(vp_fd_setxattr(fd, "user.vp", "hello", 5), 0);
	check_xattr(fd, "user.vp", "hello", 5);
	/* empty: present */
	assert_int_equal(vp_fd_setxattr(fd, "user.empty", "", 0), 0);
	check_xattr(fd, "user.empty", "", 0);
	assert_int_equal(vp_fd_setxattr(fd, "user.vp", NULL, 0), 0);
	check_xattr(fd, "user.vp", NULL, 0);
	/* removing what is absent is fine */
	assert_int_equal(vp_fd_setxattr(fd, "user.vp", NULL, 0), 0);
	/* a real error comes back */
	assert_int_equal(vp_fd_setxattr(fd, "nonamespace", "x", 1), -EOPNOTSUPP);
	close(fd);
}

static void test_large_values(void **state)
{
	(void)state;
	int fd = mkfile("big");
	size_t sizes[] = { 255, 256, 257, 3000 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		char *v = malloc(sizes[i]);
		assert_non_null(v);
		for (size_t j = 0; j < sizes[i]; j++)
			v[j] = (char)(j * 7 + i);
		assert_int_equal(vp_fd_setxattr(fd, "user.big", v, sizes[i]), 0);
		check_xattr(fd, "user.big", v, sizes[i]);
		free(v);
	}
	close(fd);
}

/* The kernel's xattr form of u::rw-,u:2000:rw-,g::r--,m::rw-,o::r--. */
static const unsigned char acl_bytes[] = {
	2, 0, 0, 0,
	0x01, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
	0x02, 0, 6, 0, 0xd0, 0x07, 0, 0,
	0x04, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
	0x10, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
	0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
};

static void test_xattrs_read(void **state)
{
	(void)state;
	int fd = mkfile("acl");
	struct vp_xattrs x;
	char name[64];

	assert_int_equal(vp_xattrs_read(fd, mode_of(fd), &x), 0);
	assert_null(x.acl_access);
	assert_null(x.acl_default);
	assert_null(x.caps);
	assert_int_equal(vp_fd_setxattr(fd, VP_XATTR_ACL_ACCESS, acl_bytes, sizeof(acl_bytes)), 0);
	/* a name list longer than the first 512-byte buffer */
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "user.a-rather-long-attribute-name-%02d", i);
		assert_int_equal(vp_fd_setxattr(fd, name, "v", 1), 0);
	}
	assert_int_equal(vp_xattrs_read(fd, mode_of(fd), &x), 0);
	assert_non_null(x.acl_access);
	assert_int_equal(x.acl_access_len, sizeof(acl_bytes));
	assert_memory_equal(x.acl_access, acl_bytes, sizeof(acl_bytes));
	assert_null(x.acl_default);
	assert_null(x.caps);
	vp_xattrs_free(&x);
	assert_null(x.acl_access);
	/* not a regular file or directory: nothing read */
	assert_int_equal(vp_xattrs_read(fd, S_IFIFO | 0644, &x), 0);
	assert_null(x.acl_access);
	close(fd);
}

/* The walk's reads: by name from the directory fd, and through an fd of the
 * entry itself (a read fd, an O_PATH fd). */
static void test_walk_reads(void **state)
{
	(void)state;
	char buf[64], lnk[4200];
	int fd = mkfile("wr"), dfd, rfd;

	assert_int_equal(vp_fd_setxattr(fd, "user.vp", "value", 5), 0);
	path_of(lnk, sizeof(lnk), "wr.link");
	unlink(lnk);
	assert_int_equal(symlink("wr", lnk), 0);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);

	memset(buf, 0, sizeof(buf));
	assert_int_equal(vp_getxattr_at(dfd, "wr", "user.vp", buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "value", 5);
	assert_int_equal(vp_getxattr_at(dfd, "wr", "user.vp", NULL, 0), 5);
	assert_int_equal(vp_getxattr_at(dfd, "wr", "user.vp", buf, 2), -ERANGE);
	assert_int_equal(vp_getxattr_at(dfd, "wr", "user.none", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(vp_getxattr_at(dfd, "no-such-entry", "user.vp", buf, sizeof(buf)), -ENOENT);
	/* The symlink itself, never its target (a symlink has no user.*). */
	assert_int_equal(vp_getxattr_at(dfd, "wr.link", "user.vp", buf, sizeof(buf)), -ENODATA);

	memset(buf, 0, sizeof(buf));
	assert_int_equal(vp_fd_getxattr_buf(fd, "user.vp", buf, sizeof(buf)), 5); /* O_PATH */
	assert_memory_equal(buf, "value", 5);
	assert_int_equal(vp_fd_getxattr_buf(fd, "user.vp", NULL, 0), 5);
	assert_int_equal(vp_fd_getxattr_buf(fd, "user.vp", buf, 2), -ERANGE);
	assert_int_equal(vp_fd_getxattr_buf(fd, "user.none", buf, sizeof(buf)), -ENODATA);
	rfd = openat(dfd, "wr", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	assert_true(rfd >= 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(vp_fd_getxattr_buf(rfd, "user.vp", buf, sizeof(buf)), 5); /* read fd */
	assert_memory_equal(buf, "value", 5);
	/* A directory's read fd, as the walk holds. */
	assert_int_equal(vp_fd_getxattr_buf(dfd, "user.none", buf, sizeof(buf)), -ENODATA);
	close(rfd);
	close(dfd);
	close(fd);
	unlink(lnk);
}

/* Rename the file away and put a new one under its name: the fd still
 * reaches the old inode, and only it. */
static void test_pinned_inode(void **state)
{
	(void)state;
	char a[4200], b[4200];
	int fd = mkfile("pinned"), other;

	path_of(a, sizeof(a), "pinned");
	path_of(b, sizeof(b), "pinned.moved");
	assert_int_equal(rename(a, b), 0);
	other = mkfile("pinned");
	assert_int_equal(vp_fd_setxattr(fd, "user.who", "old", 3), 0);
	assert_int_equal(vp_fd_chmod(fd, 0600), 0);
	assert_int_equal(vp_fd_chmod_type(fd, S_IFREG, 0640), 0);
	check_xattr(fd, "user.who", "old", 3);
	check_xattr(other, "user.who", NULL, 0);
	assert_int_equal(mode_of(fd) & 07777, 0640);
	assert_int_equal(mode_of(other) & 07777, 0644);
	/* by the new name, without the code under test */
	int rfd = open(b, O_RDONLY | O_CLOEXEC);
	assert_true(rfd >= 0);
	assert_int_equal(fgetxattr(rfd, "user.who", a, sizeof(a)), 3);
	assert_memory_equal(a, "old", 3);
	close(rfd);
	close(other);
	close(fd);
}

static void test_chmod(void **state)
{
	(void)state;
	char p[4200], l[4200];
	struct stat st;
	int fd = mkfile("m"), lfd;

	assert_int_equal(vp_fd_chmod(fd, 04751), 0);
	assert_int_equal(mode_of(fd), S_IFREG | 04751);
	assert_int_equal(vp_fd_chmod(fd, S_IFDIR | 0600), 0); /* only 07777 is used */
	assert_int_equal(mode_of(fd), S_IFREG | 0600);
	assert_int_equal(vp_fd_chmod_type(fd, S_IFREG | 0777, 02644), 0);
	assert_int_equal(mode_of(fd), S_IFREG | 02644);
	/* a symlink: -ELOOP, and neither it nor its target changes */
	path_of(p, sizeof(p), "m");
	path_of(l, sizeof(l), "m.link");
	unlink(l);
	assert_int_equal(symlink(p, l), 0);
	lfd = open(l, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	assert_true(lfd >= 0);
	assert_int_equal(vp_fd_chmod(lfd, 0600), -ELOOP);
	assert_int_equal(vp_fd_chmod_type(lfd, S_IFLNK | 0777, 0600), -ELOOP);
	assert_int_equal(lstat(l, &st), 0);
	assert_int_equal(st.st_mode, S_IFLNK | 0777);
	assert_int_equal(mode_of(fd), S_IFREG | 02644);
	close(lfd);
	close(fd);
}

/* ---- threads: the first calls of the process come from several at once --- */

#define THREADS 4
static pthread_barrier_t barrier;

static void *thread_main(void *arg)
{
	int fd = *(int *)arg, bad = 0;
	char want[16];

	pthread_barrier_wait(&barrier);
	for (int i = 0; i < 300; i++) {
		void *v = NULL;
		size_t len = 0;
		int n = snprintf(want, sizeof(want), "%d:%d", fd, i);

		if (vp_fd_setxattr(fd, "user.t", want, (size_t)n) != 0 ||
		    vp_fd_getxattr(fd, "user.t", &v, &len) != 0 || len != (size_t)n ||
		    memcmp(v, want, len) != 0 || vp_fd_chmod(fd, i & 1 ? 0600 : 0640) != 0)
			bad++;
		free(v);
	}
	return (void *)(intptr_t)bad;
}

static void test_threads(void **state)
{
	(void)state;
	pthread_t t[THREADS];
	int fds[THREADS];
	char name[16];

	assert_int_equal(pthread_barrier_init(&barrier, NULL, THREADS), 0);
	for (int i = 0; i < THREADS; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		fds[i] = mkfile(name);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, &fds[i]), 0);
	for (int i = 0; i < THREADS; i++) {
		void *bad;
		assert_int_equal(pthread_join(t[i], &bad), 0);
		assert_int_equal((intptr_t)bad, 0);
		assert_int_equal(mode_of(fds[i]) & 07777, 0600);
		close(fds[i]);
	}
	pthread_barrier_destroy(&barrier);
}

/* In a forked child, fd N is the child's: same number, another file. */
static void test_fork(void **state)
{
	(void)state;
	int fd = mkfile("parent"), other = mkfile("child"), status;
	pid_t pid;

	assert_int_equal(vp_fd_setxattr(fd, "user.who", "parent", 6), 0);
	assert_int_equal(vp_fd_setxattr(other, "user.who", "child", 5), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		void *v = NULL;
		size_t len = 0;

		if (dup3(other, fd, O_CLOEXEC) != fd)
			_exit(2);
		if (vp_fd_getxattr(fd, "user.who", &v, &len) != 0 || len != 5 ||
		    memcmp(v, "child", 5) != 0)
			_exit(3);
		if (vp_fd_setxattr(fd, "user.set", "c", 1) != 0)
			_exit(4);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	check_xattr(other, "user.set", "c", 1);
	check_xattr(fd, "user.set", NULL, 0);
	close(other);
	close(fd);
}

/* ---- seccomp ------------------------------------------------------------- */

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
static const long fast_calls[] = { SYS_fchmodat2, 463, 464, 465, 466 };
static const long path_calls[] = {
#ifdef SYS_chmod
	SYS_chmod,
#endif
	SYS_fchmodat, SYS_getxattr, SYS_lgetxattr, SYS_listxattr, SYS_llistxattr,
	SYS_setxattr, SYS_lsetxattr, SYS_removexattr, SYS_lremovexattr,
};

/* From now on, the calls in nr[] fail with err. */
static void deny(const long *nr, size_t n, int err)
{
	struct sock_filter f[32];
	size_t k = 0;

	assert_true(n + 3 <= sizeof(f) / sizeof(*f));
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
	                                      offsetof(struct seccomp_data, nr));
	for (size_t i = 0; i < n; i++)
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr[i],
		                                      (uint8_t)(n - i), 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
	                                      SECCOMP_RET_ERRNO | ((uint32_t)err & SECCOMP_RET_DATA));
	struct sock_fprog prog = { .len = (unsigned short)k, .filter = f };
	assert_int_equal(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	assert_int_equal(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

/* Last in the default mode: the fast calls disappear in the middle of a run
 * (after the one-time setup found them); everything still works. */
static void test_fast_calls_vanish(void **state)
{
	(void)state;
	deny(fast_calls, sizeof(fast_calls) / sizeof(*fast_calls), ENOSYS);
	test_get_set_remove(state);
	test_large_values(state);
	test_xattrs_read(state);
	test_walk_reads(state);
	test_pinned_inode(state);
	test_chmod(state);
	test_threads(state);
}

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)type, (void)ftw;
	if (remove(p) < 0)
		fprintf(stderr, "could not remove %s: %s\n", p, strerror(errno));
	return 0;
}

static void teardown_dir(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	const char *tmp = getenv("TMPDIR");
	char probe[4300];
	int fd, rc;

	snprintf(dir, sizeof(dir), "%s/test_meta.XXXXXX", tmp && *tmp ? tmp : ".");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(probe, sizeof(probe), "%s/probe", dir);
	fd = open(probe, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0 || fsetxattr(fd, "user.probe", "1", 1, 0) < 0 ||
	    fsetxattr(fd, VP_XATTR_ACL_ACCESS, acl_bytes, sizeof(acl_bytes), 0) < 0) {
		printf("skipped: %s has no user xattrs or POSIX ACLs\n", dir);
		teardown_dir();
		return 77;
	}
	close(fd);

	if (strcmp(mode, "fast") == 0) {
		/* Only a kernel with every fast call can pass this mode. */
		struct { uint64_t v; uint32_t s, f; } args = { 0 };
		errno = 0;
		if (syscall(SYS_fchmodat2, -1, "", 0, ~0u) == 0 || errno != EINVAL ||
		    syscall(464, -1, "", 0, "user.x", &args, (size_t)1) == 0 || errno != EINVAL) {
			printf("skipped: no fchmodat2 or getxattrat (Linux < 6.13)\n");
			teardown_dir();
			return 77;
		}
		deny(path_calls, sizeof(path_calls) / sizeof(*path_calls), EPERM);
	} else if (strcmp(mode, "fallback") == 0) {
		deny(fast_calls, sizeof(fast_calls) / sizeof(*fast_calls), ENOSYS);
	} else if (*mode) {
		fprintf(stderr, "usage: test_meta [fast|fallback]\n");
		return 2;
	}

	struct CMUnitTest tests[9];
	size_t n = 0;
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_threads); /* the one-time setup */
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_get_set_remove);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_large_values);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_xattrs_read);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_walk_reads);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_pinned_inode);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_chmod);
	/* A forked child takes the by-path calls, which "fast" refuses. */
	if (strcmp(mode, "fast") != 0)
		tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_fork);
	/* It installs its own filter. */
	if (!*mode)
		tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_fast_calls_vanish);
	rc = _cmocka_run_group_tests(*mode ? mode : "meta", tests, n, NULL, NULL);
	teardown_dir();
	return rc;
}
