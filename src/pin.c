/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Pinning entries before changing them (see pin.h). This closes the classic
 * recursive-chown races: a directory swapped for a symlink between the walk
 * and the change (CVE-2018-6954 style) makes the resolution fail with ELOOP,
 * a file swapped for another inode fails the dev/ino check. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "volperm/pin.h"

static int open_beneath(int root_fd, const char *relpath, int allow_xdev)
{
	struct open_how how = {
		.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
		           (allow_xdev ? 0 : RESOLVE_NO_XDEV),
	};
	long fd = syscall(SYS_openat2, root_fd, relpath, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

/* The fallback: one component at a time, each O_NOFOLLOW, directories with
 * O_DIRECTORY, checking st_dev at each step unless crossing is allowed. Used
 * for paths longer than PATH_MAX and kernels without openat2 (< 5.6). The
 * walker never produces "." or ".." components; refuse them anyway. */
static int open_by_components(int root_fd, const char *relpath, int allow_xdev)
{
	struct stat st;
	dev_t dev;
	int dir, r;

	if (fstat(root_fd, &st) < 0)
		return -errno;
	dev = st.st_dev;
	dir = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
	if (dir < 0)
		return -errno;
	if (strcmp(relpath, ".") == 0)
		goto last;
	for (const char *p = relpath; *p;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		char name[NAME_MAX + 1];
		int next;

		if (n == 0 || n > NAME_MAX || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.')) {
			close(dir);
			return -EINVAL;
		}
		memcpy(name, p, n);
		name[n] = 0;
		next = openat(dir, name,
		              O_PATH | O_NOFOLLOW | O_CLOEXEC | (slash ? O_DIRECTORY : 0));
		r = -errno;
		close(dir);
		if (next < 0)
			return r == -ENOTDIR ? -ELOOP : r;
		if (fstat(next, &st) < 0) {
			r = -errno;
			close(next);
			return r;
		}
		if (!allow_xdev && st.st_dev != dev) {
			close(next);
			return -EXDEV;
		}
		dir = next;
		if (!slash)
			return dir;
		p = slash + 1;
	}
last:
	return dir;
}

static uint64_t btime_of(const struct statx *sx)
{
	if (!(sx->stx_mask & STATX_BTIME))
		return 0;
	return (uint64_t)sx->stx_btime.tv_sec * 1000000000ull + sx->stx_btime.tv_nsec;
}

/* fstat() and the birth time in one statx(): one syscall less per changed
 * entry, and apply pins every one. */
static int stat_fd(int fd, struct stat *st, uint64_t *btime)
{
	const unsigned need = STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_UID | STATX_GID |
	                      STATX_INO | STATX_CTIME;
	struct statx sx;

	if (btime)
		*btime = 0;
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME,
	          &sx) < 0 ||
	    (sx.stx_mask & need) != need) {
		/* statx missing or partial (some network file systems) */
		if (fstat(fd, st) < 0)
			return -errno;
		if (btime)
			*btime = vp_fd_btime(fd);
		return 0;
	}
	*st = (struct stat){
		.st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor),
		.st_ino = sx.stx_ino,
		.st_mode = sx.stx_mode,
		.st_nlink = sx.stx_nlink,
		.st_uid = sx.stx_uid,
		.st_gid = sx.stx_gid,
		.st_rdev = makedev(sx.stx_rdev_major, sx.stx_rdev_minor),
		.st_size = (off_t)sx.stx_size,
		.st_blksize = (blksize_t)sx.stx_blksize,
		.st_blocks = (blkcnt_t)sx.stx_blocks,
		.st_atim = { sx.stx_atime.tv_sec, sx.stx_atime.tv_nsec },
		.st_mtim = { sx.stx_mtime.tv_sec, sx.stx_mtime.tv_nsec },
		.st_ctim = { sx.stx_ctime.tv_sec, sx.stx_ctime.tv_nsec },
	};
	if (btime)
		*btime = btime_of(&sx);
	return 0;
}

int vp_pin_ex(int root_fd, const char *relpath, uint64_t dev, uint64_t ino, struct stat *st,
              uint64_t *btime, int allow_xdev)
{
	int fd = -ENAMETOOLONG, r;

	/* The root itself: it is pinned already (and may be a single file, which
	 * openat2 cannot resolve "." against). */
	if (strcmp(relpath, ".") == 0) {
		fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			fd = -errno;
	} else if (strlen(relpath) < PATH_MAX)
		fd = open_beneath(root_fd, relpath, allow_xdev);
	if (fd == -ENAMETOOLONG || fd == -ENOSYS)
		fd = open_by_components(root_fd, relpath, allow_xdev);
	if (fd < 0)
		return fd;
	r = stat_fd(fd, st, btime);
	if (r < 0) {
		close(fd);
		return r;
	}
	if ((uint64_t)st->st_dev != dev || (uint64_t)st->st_ino != ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int vp_pin(int root_fd, const char *relpath, uint64_t dev, uint64_t ino, struct stat *st)
{
	return vp_pin_ex(root_fd, relpath, dev, ino, st, NULL, 0);
}

uint64_t vp_fd_btime(int fd)
{
	struct statx sx;

	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BTIME, &sx) < 0)
		return 0;
	return btime_of(&sx);
}
