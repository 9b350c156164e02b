/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Pinning entries before changing them (see pin.h). This closes the classic
 * recursive-chown races: a directory swapped for a symlink between the walk
 * and the change (CVE-2018-6954 style) makes the resolution fail with ELOOP,
 * a file swapped for another inode fails the dev/ino check.
 *
 * Depth. Resolving every entry from the volume root costs O(depth) in the
 * kernel (openat2) or in syscalls (one openat per component beyond
 * PATH_MAX), so a tree of D nested directories cost O(D^2): 5,000 levels
 * took 55 s to apply and 48 s to roll back (issue 11). An app can build such
 * a tree in its own volume and stall every start of its init container. So
 * nobody resolves long paths any more: apply pins from the directory fd the
 * walk holds (one component), and rollback through vp_pin_cache, which
 * resolves each journal path from its deepest ancestor pinned before.
 *
 * Why resolving from a pinned directory is as safe as from the root: what
 * the root resolution proves is that at one moment the inode was reachable
 * from the root through directories only, without a symlink, a mount
 * crossing or "..", and that it is the inode expected (dev/ino, and the
 * birth time in rollback). A directory fd names one inode for as long as it
 * is open. The fds we resolve from were themselves reached that way (the
 * walk opens every directory O_NOFOLLOW from its parent's fd and checks its
 * dev/ino; the cache pins each level with these same rules) and still name
 * those inodes, so the last step from them proves the same about the entry.
 * Neither way proves that the entry is still in the tree when it changes: a
 * pinned fd follows its inode wherever it is renamed, from the root or not,
 * and the identity check is what says that the inode changed is the one the
 * walk decided on (or the journal recorded). Hard links keep their own rule
 * (links.c): the sighting that completes a count is a lookup of this very
 * name in this very directory fd, which is what apply then pins. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "pin.h"

static int open_beneath(int at_fd, const char *path, unsigned flags)
{
	struct open_how how = {
		.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
		           (flags & VP_PIN_XDEV ? 0 : RESOLVE_NO_XDEV),
	};
	long fd = syscall(SYS_openat2, at_fd, path, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

/* A path component: not empty, not "." or "..", no NUL, at most NAME_MAX. */
static bool name_ok(const char *p, size_t n)
{
	return n > 0 && n <= NAME_MAX && !memchr(p, 0, n) && !(n == 1 && p[0] == '.') &&
	       !(n == 2 && p[0] == '.' && p[1] == '.');
}

/* The fallback: one component at a time, each O_NOFOLLOW, directories with
 * O_DIRECTORY, checking st_dev at each step unless crossing is allowed. Used
 * for paths of PATH_MAX or more and kernels without openat2 (< 5.6). The
 * walker never produces "." or ".." components; refuse them anyway. */
static int open_by_components(int at_fd, const char *path, unsigned flags)
{
	struct stat st;
	dev_t dev;
	int dir, r;

	if (fstat(at_fd, &st) < 0)
		return -errno;
	dev = st.st_dev;
	dir = fcntl(at_fd, F_DUPFD_CLOEXEC, 3);
	if (dir < 0)
		return -errno;
	if (strcmp(path, ".") == 0)
		return dir;
	for (const char *p = path; *p;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		char name[NAME_MAX + 1];
		int next;

		if (!name_ok(p, n)) {
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
		if (!(flags & VP_PIN_XDEV) && st.st_dev != dev) {
			close(next);
			return -EXDEV;
		}
		dir = next;
		if (!slash)
			break;
		p = slash + 1;
	}
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

int vp_pin_open(int at_fd, const char *path, unsigned flags, struct stat *st, uint64_t *btime)
{
	int fd = -ENAMETOOLONG, r;

	/* at_fd itself: it is pinned already (and may be a single file, which
	 * openat2 cannot resolve "." against). */
	if (strcmp(path, ".") == 0) {
		fd = fcntl(at_fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			fd = -errno;
	} else if (strlen(path) < PATH_MAX)
		fd = open_beneath(at_fd, path, flags);
	if (fd == -ENAMETOOLONG || fd == -ENOSYS)
		fd = open_by_components(at_fd, path, flags);
	if (fd < 0)
		return fd;
	r = stat_fd(fd, st, btime);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int vp_pin(int at_fd, const char *path, uint64_t dev, uint64_t ino, struct stat *st,
           uint64_t *btime, unsigned flags)
{
	int fd = vp_pin_open(at_fd, path, flags, st, btime);

	if (fd < 0)
		return fd;
	if ((uint64_t)st->st_dev != dev || (uint64_t)st->st_ino != ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

bool vp_pin_tree_changed(int r)
{
	return r == -ESTALE || r == -ELOOP || r == -EXDEV || r == -ENOENT || r == -ENOTDIR;
}

bool vp_dir_changed(int dirfd, const struct stat *was)
{
	struct statx sx;

	if (statx(dirfd, "", AT_EMPTY_PATH, STATX_CTIME, &sx) < 0 || !(sx.stx_mask & STATX_CTIME))
		return false; /* cannot tell: the pin's own checks stand */
	return sx.stx_ctime.tv_sec != was->st_ctim.tv_sec ||
	       sx.stx_ctime.tv_nsec != (uint32_t)was->st_ctim.tv_nsec;
}

uint64_t vp_fd_btime(int fd)
{
	struct statx sx;

	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BTIME, &sx) < 0)
		return 0;
	return btime_of(&sx);
}

/* ---- the cache of pinned ancestors (rollback) ----
 *
 * levels[0..n) are the directories of one path below the root, outermost
 * first: levels[i] stands for path[0, len) of c->path and keeps the dev/ino
 * it was pinned as. Only the newest VP_PIN_CACHE_FDS levels may hold an fd
 * (the fds a rollback holds do not grow with depth; the dev/ino memory
 * does, 32 bytes a level). The root is level -1: root_fd, always open. */

struct level {
	uint64_t dev, ino;
	size_t len;
	int fd; /* -1: closed, reopen by dev/ino */
};

struct vp_pin_cache {
	int root_fd;
	unsigned flags;
	char *path;
	size_t path_cap;
	struct level *lv;
	size_t n, cap;
};

int vp_pin_cache_new(int root_fd, unsigned flags, struct vp_pin_cache **ret)
{
	struct vp_pin_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->root_fd = root_fd;
	c->flags = flags;
	*ret = c;
	return 0;
}

static void truncate_levels(struct vp_pin_cache *c, size_t n)
{
	while (c->n > n) {
		struct level *l = &c->lv[--c->n];
		if (l->fd >= 0)
			close(l->fd);
	}
}

void vp_pin_cache_free(struct vp_pin_cache *c)
{
	if (!c)
		return;
	truncate_levels(c, 0);
	free(c->lv);
	free(c->path);
	free(c);
}

static int level_fd(const struct vp_pin_cache *c, long i)
{
	return i < 0 ? c->root_fd : c->lv[i].fd;
}

/* May level i keep an fd? Only the newest VP_PIN_CACHE_FDS may. */
static bool in_window(const struct vp_pin_cache *c, size_t i)
{
	return i + VP_PIN_CACHE_FDS >= c->n;
}

/* Append the level for path[0, len) (its prefix up to the previous level is
 * c->path already), taking fd. On failure fd is closed. */
static int push_level(struct vp_pin_cache *c, const char *path, size_t len, const struct stat *st,
                      int fd)
{
	size_t from = c->n ? c->lv[c->n - 1].len : 0;

	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		struct level *nl = realloc(c->lv, ncap * sizeof(*nl));
		if (!nl) {
			close(fd);
			return -ENOMEM;
		}
		c->lv = nl;
		c->cap = ncap;
	}
	if (len > c->path_cap) {
		size_t ncap = c->path_cap ? c->path_cap : 256;
		while (ncap < len)
			ncap *= 2;
		char *np = realloc(c->path, ncap);
		if (!np) {
			close(fd);
			return -ENOMEM;
		}
		c->path = np;
		c->path_cap = ncap;
	}
	memcpy(c->path + from, path + from, len - from);
	c->lv[c->n++] = (struct level){ .dev = st->st_dev, .ino = st->st_ino, .len = len, .fd = fd };
	/* The level that just left the window gives its fd back. */
	if (c->n > VP_PIN_CACHE_FDS) {
		struct level *old = &c->lv[c->n - 1 - VP_PIN_CACHE_FDS];
		if (old->fd >= 0) {
			close(old->fd);
			old->fd = -1;
		}
	}
	return 0;
}

static bool same(const struct stat *st, const struct level *l)
{
	return (uint64_t)st->st_dev == l->dev && (uint64_t)st->st_ino == l->ino;
}

/* Give closed level k an fd again: up through ".." from the nearest open
 * level below it on the path (one step per level: we came down through
 * those, so the climb costs no more than the descent did), else down from
 * the nearest open level above it, by name. Each directory on the way must
 * be the dev/ino it was pinned as: ".." of a directory moved away is
 * another directory, and refused. Returns 0 with *k left, or lowered to
 * the deepest level that is still right when the tree changed (the levels
 * below it are dropped), or -errno. */
static int reopen(struct vp_pin_cache *c, long *kp)
{
	struct stat st;
	long j, k = *kp;

	if (k < 0 || c->lv[k].fd >= 0)
		return 0;
	for (j = k + 1; j < (long)c->n && c->lv[j].fd < 0; j++)
		;
	if (j < (long)c->n) {
		int cur = c->lv[j].fd;
		for (long i = j - 1; i >= k; i--) {
			int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (cur != c->lv[j].fd)
				close(cur);
			cur = up;
			if (up < 0)
				break;
			if (fstat(up, &st) < 0 || !same(&st, &c->lv[i])) {
				close(up);
				cur = -1;
				break;
			}
		}
		if (cur >= 0) {
			c->lv[k].fd = cur;
			return 0;
		}
	}
	/* Down by name from the nearest open level above. */
	for (j = k - 1; j >= 0 && c->lv[j].fd < 0; j--)
		;
	for (long i = j + 1; i <= k; i++) {
		size_t from = i ? c->lv[i - 1].len + 1 : 0;
		char name[NAME_MAX + 1];
		size_t n = c->lv[i].len - from;
		int fd;

		memcpy(name, c->path + from, n);
		name[n] = 0;
		fd = vp_pin_open(level_fd(c, i - 1), name, c->flags, &st, NULL);
		if (fd >= 0 && (!S_ISDIR(st.st_mode) || !same(&st, &c->lv[i]))) {
			close(fd);
			fd = -ESTALE;
		}
		if (fd < 0) {
			/* Not the directory it was: forget it and what is below,
			 * and let the caller resolve afresh from the level above. */
			truncate_levels(c, (size_t)i);
			if (fd != -ESTALE && fd != -ENOENT && fd != -ELOOP && fd != -ENOTDIR &&
			    fd != -EXDEV)
				return fd;
			*kp = i - 1;
			return 0;
		}
		c->lv[i].fd = fd;
		/* A level outside the window serves only the next step. */
		if (i - 1 > j && !in_window(c, (size_t)(i - 1))) {
			close(c->lv[i - 1].fd);
			c->lv[i - 1].fd = -1;
		}
	}
	return 0;
}

/* The length of the common prefix of a and b (n bytes each): memcmp() by
 * blocks first, as journal paths of deep trees are 100 kB long. */
static size_t common_prefix(const char *a, const char *b, size_t n)
{
	size_t i = 0;

	while (i + 4096 <= n && memcmp(a + i, b + i, 4096) == 0)
		i += 4096;
	while (i < n && a[i] == b[i])
		i++;
	return i;
}

int vp_pin_cached(struct vp_pin_cache *c, const char *path, size_t len, uint64_t dev,
                  uint64_t ino, struct stat *st, uint64_t *btime)
{
	char name[NAME_MAX + 1];
	size_t common, have = c->n ? c->lv[c->n - 1].len : 0, at;
	long k;
	int fd, r;

	if (len == 1 && path[0] == '.')
		return vp_pin(c->root_fd, ".", dev, ino, st, btime, c->flags);
	/* The deepest level that is an ancestor of path: a prefix of it that
	 * ends where a component does. */
	common = common_prefix(c->path, path, have < len ? have : len);
	for (k = (long)c->n - 1; k >= 0; k--) {
		size_t l = c->lv[k].len;
		if (l <= common && l < len && path[l] == '/')
			break;
	}
	r = reopen(c, &k);
	if (r < 0)
		return r;
	truncate_levels(c, (size_t)(k + 1));
	at = k >= 0 ? c->lv[k].len + 1 : 0;
	/* The directories on the way, each pinned and remembered ... */
	for (;;) {
		const char *slash = memchr(path + at, '/', len - at);
		size_t n = slash ? (size_t)(slash - (path + at)) : len - at;
		struct stat dst;

		if (!name_ok(path + at, n))
			return -EINVAL;
		memcpy(name, path + at, n);
		name[n] = 0;
		if (!slash)
			break;
		fd = vp_pin_open(level_fd(c, (long)c->n - 1), name, c->flags, &dst, NULL);
		if (fd < 0)
			return fd;
		if (!S_ISDIR(dst.st_mode)) {
			close(fd);
			return S_ISLNK(dst.st_mode) ? -ELOOP : -ENOTDIR;
		}
		r = push_level(c, path, at + n, &dst, fd);
		if (r < 0)
			return r;
		at += n + 1;
	}
	/* ... then the entry itself, by the one name left. */
	fd = vp_pin(level_fd(c, (long)c->n - 1), name, dev, ino, st, btime, c->flags);
	if (fd >= 0 && S_ISDIR(st->st_mode)) {
		/* Its descendants come next in preorder: remember it too. */
		int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (dup >= 0)
			(void)push_level(c, path, len, st, dup); /* else a later path resolves it again */
	}
	return fd;
}
