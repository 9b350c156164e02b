/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Metadata access through pinned O_PATH fds (see meta.h). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "volperm/meta.h"

#define FDPATH_MAX 32

static void fdpath(int fd, char buf[FDPATH_MAX])
{
	snprintf(buf, FDPATH_MAX, "/proc/self/fd/%d", fd);
}

int vp_fd_getxattr(int fd, const char *name, void **ret, size_t *len)
{
	char p[FDPATH_MAX];

	fdpath(fd, p);
	/* getxattr() follows the magic link to the pinned inode. Retry when
	 * the value grew between sizing and reading it (ERANGE). */
	for (int tries = 0; tries < 8; tries++) {
		ssize_t n = getxattr(p, name, NULL, 0), m;
		void *buf;

		if (n < 0)
			goto absent_or_error;
		buf = malloc(n ? (size_t)n : 1);
		if (!buf)
			return -ENOMEM;
		m = getxattr(p, name, buf, (size_t)n);
		if (m >= 0) {
			*ret = buf;
			*len = (size_t)m;
			return 0;
		}
		free(buf);
		if (errno == ERANGE)
			continue;
absent_or_error:
		if (errno != ENODATA && errno != ENOTSUP)
			return -errno;
		*ret = NULL;
		*len = 0;
		return 0;
	}
	return -EAGAIN;
}

int vp_fd_setxattr(int fd, const char *name, const void *val, size_t len)
{
	char p[FDPATH_MAX];

	fdpath(fd, p);
	if (!val) {
		if (removexattr(p, name) < 0 && errno != ENODATA && errno != ENOTSUP)
			return -errno;
		return 0;
	}
	return setxattr(p, name, val, len, 0) < 0 ? -errno : 0;
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
	char p[FDPATH_MAX], small[512], *list = small;
	struct vp_xattrs t = { 0 };
	ssize_t n;
	int r = 0;

	memset(x, 0, sizeof(*x));
	if (!S_ISREG(mode) && !S_ISDIR(mode))
		return 0;
	fdpath(fd, p);
	/* One listxattr() usually tells that there is nothing to read, which is
	 * the common case; only present names cost a getxattr(). */
	n = listxattr(p, small, sizeof(small));
	if (n < 0 && errno == ERANGE) {
		n = listxattr(p, NULL, 0);
		if (n < 0)
			return -errno;
		list = malloc((size_t)n + 1);
		if (!list)
			return -ENOMEM;
		n = listxattr(p, list, (size_t)n);
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

int vp_fd_chmod(int fd, mode_t mode)
{
	char p[FDPATH_MAX];
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	fdpath(fd, p);
	return chmod(p, mode & 07777) < 0 ? -errno : 0;
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
