/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Metadata access through pinned O_PATH fds (see meta.h).
 *
 * Two ways to reach the pinned inode, both through its fd, never a path
 * that could be swapped:
 *  - fast (Linux >= 6.13 for the *xattrat calls, >= 6.6 for fchmodat2):
 *    getxattrat/listxattrat/setxattrat/removexattrat(procfd, "N", 0, ...)
 *    with procfd an O_PATH fd on our own /proc/<pid>/fd, opened once: the
 *    lookup of "N" is the magic link, as for /proc/self/fd/N, without
 *    resolving "/proc/self/fd" again on every call; and
 *    fchmodat2(fd, "", mode, AT_EMPTY_PATH), which works on O_PATH fds.
 *  - fallback: the same calls by /proc/self/fd/N path (older kernels, a
 *    seccomp filter that does not know the new calls, a forked child).
 * glibc 2.36 has no wrappers for the new calls: syscall(2). */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "meta.h"

/* Same numbers on every architecture (the generic syscall table). */
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif
#ifndef SYS_removexattrat
#define SYS_removexattrat 466
#endif
#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

/* <linux/xattr.h>'s struct xattr_args (the headers here predate it). */
struct xattr_args_v0 {
	uint64_t value;
	uint32_t size;
	uint32_t flags;
};

#define FDPATH_MAX 32
#define FDNAME_MAX 12

/* Decimal fd number (fds are >= 0). */
static void fdname(int fd, char buf[FDNAME_MAX])
{
	char t[FDNAME_MAX];
	unsigned v = (unsigned)fd;
	int n = 0, i = 0;

	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < FDNAME_MAX - 1);
	while (n)
		buf[i++] = t[--n];
	buf[i] = 0;
}

static void fdpath(int fd, char buf[FDPATH_MAX])
{
	memcpy(buf, "/proc/self/fd/", 14);
	fdname(fd, buf + 14);
}

/* ---- the fast paths' state -------------------------------------------------
 * Set up once (pthread_once: the engine calls us from several threads).
 * proc_dir is never closed nor changed afterwards, except in a forked child,
 * where it would name the parent's fd table: the child handler turns the
 * xattr fast path off before the child runs anything (the fallback path says
 * /proc/self, which is the child). The flags are atomics because a call that
 * finds a fast syscall missing (ENOSYS) turns it off for everybody. */
static pthread_once_t fast_once = PTHREAD_ONCE_INIT;
static int proc_dir = -1;
static atomic_bool xattrat_ok, fchmodat2_ok;

/* A probe with an invalid argument: EINVAL means the kernel has the call and
 * checked the argument; ENOSYS (or the EPERM of a seccomp filter) that it is
 * not ours to use. */
static bool has_syscall(long r)
{
	return r < 0 && errno == EINVAL;
}

static void fast_forked_child(void)
{
	atomic_store(&xattrat_ok, false);
	if (proc_dir >= 0)
		close(proc_dir);
	proc_dir = -1;
}

static void fast_init(void)
{
	int saved = errno;
	struct statfs sf;
	struct stat a, b;
	char n[FDNAME_MAX];
	struct xattr_args_v0 args = { 0 };
	int d;

	atomic_store(&fchmodat2_ok, has_syscall(syscall(SYS_fchmodat2, -1, "", 0, ~0u)));
	/* All four *xattrat calls, or none: a filter may allow some only. The
	 * probes: a struct size below the first version, unknown at_flags. */
	if (!has_syscall(syscall(SYS_getxattrat, -1, "", 0, "user.x", &args, (size_t)1)) ||
	    !has_syscall(syscall(SYS_setxattrat, -1, "", 0, "user.x", &args, (size_t)1)) ||
	    !has_syscall(syscall(SYS_listxattrat, -1, "", ~0u, NULL, (size_t)0)) ||
	    !has_syscall(syscall(SYS_removexattrat, -1, "", ~0u, "user.x")))
		goto out;
	d = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		goto out;
	/* procfs, and our own fd table: its entry for d is d itself. */
	fdname(d, n);
	if (fstatfs(d, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC || fstat(d, &a) < 0 ||
	    fstatat(d, n, &b, 0) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino ||
	    pthread_atfork(NULL, NULL, fast_forked_child) != 0) {
		close(d);
		goto out;
	}
	proc_dir = d;
	atomic_store(&xattrat_ok, true);
out:
	errno = saved;
}

static bool use_xattrat(void)
{
	pthread_once(&fast_once, fast_init);
	return atomic_load_explicit(&xattrat_ok, memory_order_relaxed);
}

/* r < 0 with ENOSYS: the call went away (a seccomp filter installed later);
 * use the fallback from now on. Returns true when r is the answer. */
static bool fast_answered(long r, atomic_bool *ok)
{
	if (r < 0 && errno == ENOSYS) {
		atomic_store(ok, false);
		return false;
	}
	return true;
}

/* getxattrat(dirfd, path, at_flags) when this process can use it: the
 * value's size, or -errno; -ENOSYS when the call is not available (older
 * kernel, a seccomp filter), and the caller falls back. */
static long getxattrat_fast(int dirfd, const char *path, unsigned at_flags, const char *name,
                            void *buf, size_t size)
{
	struct xattr_args_v0 a = { .value = (uintptr_t)buf, .size = (uint32_t)size };
	long r;

	if (!use_xattrat())
		return -ENOSYS;
	r = syscall(SYS_getxattrat, dirfd, path, at_flags, name, &a, sizeof(a));
	if (!fast_answered(r, &xattrat_ok))
		return -ENOSYS;
	return r < 0 ? -errno : r;
}

/* ---- the four xattr calls on a pinned fd: value or -1 with errno ---------- */

static ssize_t x_get(int fd, const char *name, void *buf, size_t size)
{
	char p[FDPATH_MAX];

	if (use_xattrat()) {
		struct xattr_args_v0 a = { .value = (uintptr_t)buf, .size = (uint32_t)size };
		char n[FDNAME_MAX];
		long r;

		fdname(fd, n);
		r = syscall(SYS_getxattrat, proc_dir, n, 0, name, &a, sizeof(a));
		if (fast_answered(r, &xattrat_ok))
			return (ssize_t)r;
	}
	fdpath(fd, p);
	return getxattr(p, name, buf, size);
}

static ssize_t x_list(int fd, char *buf, size_t size)
{
	char p[FDPATH_MAX];

	if (use_xattrat()) {
		char n[FDNAME_MAX];
		long r;

		fdname(fd, n);
		r = syscall(SYS_listxattrat, proc_dir, n, 0, buf, size);
		if (fast_answered(r, &xattrat_ok))
			return (ssize_t)r;
	}
	fdpath(fd, p);
	return listxattr(p, buf, size);
}

static int x_set(int fd, const char *name, const void *val, size_t len)
{
	char p[FDPATH_MAX];

	if (use_xattrat()) {
		struct xattr_args_v0 a = { .value = (uintptr_t)val, .size = (uint32_t)len };
		char n[FDNAME_MAX];
		long r;

		fdname(fd, n);
		r = syscall(SYS_setxattrat, proc_dir, n, 0, name, &a, sizeof(a));
		if (fast_answered(r, &xattrat_ok))
			return (int)r;
	}
	fdpath(fd, p);
	return setxattr(p, name, val, len, 0);
}

static int x_remove(int fd, const char *name)
{
	char p[FDPATH_MAX];

	if (use_xattrat()) {
		char n[FDNAME_MAX];
		long r;

		fdname(fd, n);
		r = syscall(SYS_removexattrat, proc_dir, n, 0, name);
		if (fast_answered(r, &xattrat_ok))
			return (int)r;
	}
	fdpath(fd, p);
	return removexattr(p, name);
}

/* ---- the interface ---------------------------------------------------------- */

long vp_fd_getxattr_buf(int fd, const char *name, void *buf, size_t size)
{
	/* A read fd (the walk's directories) answers fgetxattr() at once; an
	 * O_PATH fd refuses it with EBADF and goes through its magic link. */
	ssize_t n = fgetxattr(fd, name, buf, size);

	if (n < 0 && errno == EBADF)
		n = x_get(fd, name, buf, size);
	return n < 0 ? -errno : n;
}

long vp_getxattr_at(int dirfd, const char *entry, const char *name, void *buf, size_t size)
{
	char p[FDPATH_MAX];
	long n = getxattrat_fast(dirfd, entry, AT_SYMLINK_NOFOLLOW, name, buf, size);

	if (n != -ENOSYS)
		return n;
	/* Older kernels: the same single-component lookup, spelled as a path
	 * through the directory's magic link; lgetxattr() does not follow
	 * the entry if it is a symlink (only the magic link is followed). */
	fdpath(dirfd, p);
	size_t pl = strlen(p), el = strlen(entry);
	char *full = malloc(pl + 1 + el + 1);
	if (!full)
		return -ENOMEM;
	memcpy(full, p, pl);
	full[pl] = '/';
	memcpy(full + pl + 1, entry, el + 1);
	n = lgetxattr(full, name, buf, size);
	if (n < 0)
		n = -errno;
	free(full);
	return n;
}

/* Values volperm reads are small (an ACL is 4 + 8 bytes per entry, a
 * capability 20 or 24): one call into a stack buffer reads most of them;
 * larger ones are sized first. */
#define SMALL_VALUE 256

int vp_fd_getxattr(int fd, const char *name, void **ret, size_t *len)
{
	char small[SMALL_VALUE];
	ssize_t n = x_get(fd, name, small, sizeof(small));

	if (n >= 0) {
		void *buf = malloc(n ? (size_t)n : 1);
		if (!buf)
			return -ENOMEM;
		memcpy(buf, small, (size_t)n);
		*ret = buf;
		*len = (size_t)n;
		return 0;
	}
	if (errno != ERANGE)
		goto absent_or_error;
	/* Larger: size it, then read it. Retry when the value grew between
	 * the two (ERANGE). */
	for (int tries = 0; tries < 8; tries++) {
		ssize_t m;
		void *buf;

		n = x_get(fd, name, NULL, 0);
		if (n < 0)
			goto absent_or_error;
		buf = malloc(n ? (size_t)n : 1);
		if (!buf)
			return -ENOMEM;
		m = x_get(fd, name, buf, (size_t)n);
		if (m >= 0) {
			*ret = buf;
			*len = (size_t)m;
			return 0;
		}
		free(buf);
		if (errno == ERANGE)
			continue;
		goto absent_or_error;
	}
	return -EAGAIN;
absent_or_error:
	if (errno != ENODATA && errno != ENOTSUP)
		return -errno;
	*ret = NULL;
	*len = 0;
	return 0;
}

int vp_fd_setxattr(int fd, const char *name, const void *val, size_t len)
{
	if (!val) {
		if (x_remove(fd, name) < 0 && errno != ENODATA && errno != ENOTSUP)
			return -errno;
		return 0;
	}
	return x_set(fd, name, val, len) < 0 ? -errno : 0;
}

static bool has_name(const char *list, ssize_t n, const char *name)
{
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
		if (strcmp(list + i, name) == 0)
			return true;
	return false;
}

int vp_xattrs_read(int fd, mode_t mode, struct vp_xattrs *x)
{
	char small[512], *list = small;
	struct vp_xattrs t = { 0 };
	ssize_t n;
	int r = 0;

	memset(x, 0, sizeof(*x));
	if (!S_ISREG(mode) && !S_ISDIR(mode))
		return 0;
	/* One listxattr() usually tells that there is nothing to read, which is
	 * the common case; only present names cost a getxattr(). */
	n = x_list(fd, small, sizeof(small));
	if (n < 0 && errno == ERANGE) {
		n = x_list(fd, NULL, 0);
		if (n < 0)
			return -errno;
		list = malloc((size_t)n + 1);
		if (!list)
			return -ENOMEM;
		n = x_list(fd, list, (size_t)n);
	}
	if (n < 0) {
		r = errno == ENOTSUP ? 0 : -errno;
		goto out;
	}
	if (has_name(list, n, VP_XATTR_ACL_ACCESS))
		r = vp_fd_getxattr(fd, VP_XATTR_ACL_ACCESS, &t.acl_access, &t.acl_access_len);
	if (r == 0 && S_ISDIR(mode) && has_name(list, n, VP_XATTR_ACL_DEFAULT))
		r = vp_fd_getxattr(fd, VP_XATTR_ACL_DEFAULT, &t.acl_default, &t.acl_default_len);
	if (r == 0 && S_ISREG(mode) && has_name(list, n, VP_XATTR_CAPS))
		r = vp_fd_getxattr(fd, VP_XATTR_CAPS, &t.caps, &t.caps_len);
	if (r < 0)
		vp_xattrs_free(&t);
	else
		*x = t;
out:
	if (list != small)
		free(list);
	return r;
}

void vp_xattrs_free(struct vp_xattrs *x)
{
	free(x->acl_access);
	free(x->acl_default);
	free(x->caps);
	memset(x, 0, sizeof(*x));
}

int vp_fd_chown(int fd, uid_t uid, gid_t gid)
{
	return fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

int vp_fd_chmod_type(int fd, mode_t type, mode_t mode)
{
	char p[FDPATH_MAX];

	if (S_ISLNK(type))
		return -ELOOP;
	/* AT_EMPTY_PATH: the fd's own inode, nothing is looked up. */
	pthread_once(&fast_once, fast_init);
	if (atomic_load_explicit(&fchmodat2_ok, memory_order_relaxed)) {
		long r = syscall(SYS_fchmodat2, fd, "", mode & 07777, AT_EMPTY_PATH);
		if (fast_answered(r, &fchmodat2_ok))
			return r < 0 ? -errno : 0;
	}
	fdpath(fd, p);
	return chmod(p, mode & 07777) < 0 ? -errno : 0;
}

int vp_fd_chmod(int fd, mode_t mode)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	return vp_fd_chmod_type(fd, st.st_mode, mode);
}

int vp_proc_fd_usable(void)
{
	struct stat a, b;
	char p[FDPATH_MAX];
	int fd = open("/", O_PATH | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	fdpath(fd, p);
	if (stat(p, &a) < 0 || fstat(fd, &b) < 0)
		r = -ENOENT;
	else if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		r = -ENOENT;
	close(fd);
	return r;
}
