/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The journal directory (see jdir.h). Journals are only as trustworthy as
 * the directory they live in: a directory that someone else can write lets
 * them plant a symlink or a forged journal, so we refuse it (invariant 6). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "volperm/jdir.h"

static int check_dir(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return -EPERM;
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return -EACCES;
	return 0;
}

int vp_jdir_open(const char *path, bool create, int *ret_fd)
{
	int fd, r;

	for (int attempt = 0; attempt < 2; attempt++) {
		/* O_NOFOLLOW: a symlink planted at the journal path would send
		 * our root-owned journal wherever its maker likes. */
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			break;
		r = -errno;
		if (r == -ENOTDIR) {
			struct stat st;
			if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
				return -ELOOP;
			return r;
		}
		if (r != -ENOENT || !create || attempt > 0)
			return r;
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -errno;
	}
	r = check_dir(fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int vp_jdir_inside(int jdir_fd, uint64_t root_dev, uint64_t root_ino)
{
	struct stat st, parent;
	int fd = fcntl(jdir_fd, F_DUPFD_CLOEXEC, 3), r = 0;

	if (fd < 0)
		return -errno;
	/* Climb with ".." until "/" (its own parent): no path strings, so
	 * bind mounts and symlinked spellings cannot hide the relation. */
	for (int depth = 0; depth < 4096; depth++) {
		if (fstat(fd, &st) < 0) {
			r = -errno;
			break;
		}
		if ((uint64_t)st.st_dev == root_dev && (uint64_t)st.st_ino == root_ino) {
			r = 1;
			break;
		}
		int up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (up < 0) {
			r = -errno;
			break;
		}
		if (fstat(up, &parent) < 0) {
			r = -errno;
			close(up);
			break;
		}
		close(fd);
		fd = up;
		if (parent.st_dev == st.st_dev && parent.st_ino == st.st_ino)
			break; /* reached "/" */
	}
	close(fd);
	return r;
}

void vp_jdir_name(char buf[VP_JNAME_MAX], uint64_t dev, uint64_t ino, uint64_t created_ns)
{
	snprintf(buf, VP_JNAME_MAX, "vp-%016" PRIx64 "-%016" PRIx64 "-%016" PRIx64 "%s", dev, ino,
	         created_ns, VP_JOURNAL_SUFFIX);
}

int vp_jdir_lock(int jdir_fd, uint64_t dev, uint64_t ino, int *ret_fd)
{
	char name[VP_JNAME_MAX];
	int fd, r;

	snprintf(name, sizeof(name), "vp-%016" PRIx64 "-%016" PRIx64 ".lock", dev, ino);
	fd = openat(jdir_fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static bool parse_name(const char *n, uint64_t *dev, uint64_t *ino, uint64_t *created)
{
	char tail[8];
	size_t len = strlen(n);

	if (len != 3 + 16 + 1 + 16 + 1 + 16 + 4)
		return false;
	return sscanf(n, "vp-%16" SCNx64 "-%16" SCNx64 "-%16" SCNx64 "%7s", dev, ino, created, tail) == 4 &&
	       strcmp(tail, VP_JOURNAL_SUFFIX) == 0;
}

static int cmp_info(const void *a, const void *b)
{
	return strcmp(((const struct vp_jinfo *)a)->name, ((const struct vp_jinfo *)b)->name);
}

int vp_jdir_list(int jdir_fd, bool all, uint64_t dev, uint64_t ino, struct vp_jinfo **ret,
                 size_t *n)
{
	struct vp_jinfo *v = NULL;
	size_t cnt = 0;
	struct dirent *de;
	DIR *d;
	int fd = openat(jdir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		struct vp_jinfo info = { 0 };
		if (!parse_name(de->d_name, &info.dev, &info.ino, &info.created_ns))
			continue;
		if (!all && (info.dev != dev || info.ino != ino))
			continue;
		memcpy(info.name, de->d_name, strlen(de->d_name) + 1); /* length checked by parse_name */
		int r = vp_jr_peek(jdir_fd, info.name, &info.state, &info.live);
		if (r == -ENODATA) {
			/* Crashed while creating: the header never became durable,
			 * so no entry can have changed. Nothing to recover. */
			continue;
		}
		if (r < 0)
			info.unreadable = true;
		info.hot = !info.unreadable && !info.live &&
		           (info.state == VP_JSTATE_ACTIVE || info.state == VP_JSTATE_ROLLING_BACK);
		struct vp_jinfo *nv = realloc(v, (cnt + 1) * sizeof(*v));
		if (!nv) {
			free(v);
			closedir(d);
			return -ENOMEM;
		}
		v = nv;
		v[cnt++] = info;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_info);
	*ret = v;
	*n = cnt;
	return 0;
}
