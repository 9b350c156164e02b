/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Overlapping trees (see volume.h). Two volperm runs must never change the
 * same entries at once, and an interrupted apply anywhere in a tree blocks
 * every run that would touch it. The per-root lock file and a lock on the
 * root itself only see runs on the very same root; runs on V and on V/sub
 * both passed them, both exited 0, and V was not compliant afterwards.
 * Directory flocks up the tree (exclusive on the root, shared above) make
 * the relation visible from both sides, without any path strings. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "volperm/volume.h"

static const char *const system_paths[] = {
	"/", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot",
	"/proc", "/sys", "/dev", "/var", "/home", "/root",
	/* merged-/usr systems: /bin is /usr/bin and so on */
	"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32", NULL,
};

bool vp_is_system_path(const char *resolved)
{
	for (const char *const *s = system_paths; *s; s++)
		if (strcmp(resolved, *s) == 0)
			return true;
	return false;
}

void vp_path_up(const char *path, size_t k, char *buf, size_t size)
{
	snprintf(buf, size, "%s", path);
	while (k-- > 0) {
		char *slash = strrchr(buf, '/');
		if (!slash)
			break;
		if (slash == buf)
			slash[1] = 0;
		else
			*slash = 0;
	}
}

int vp_root_open(const char *path, bool allow_system, struct vp_root *r)
{
	*r = (struct vp_root)VP_ROOT_INIT;
	r->path = realpath(path, NULL);
	if (!r->path)
		return -errno;
	if (!allow_system && vp_is_system_path(r->path))
		return -EPERM;
	r->fd = open(r->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (r->fd < 0 || fstat(r->fd, &r->st) < 0)
		return -errno;
	if (!S_ISDIR(r->st.st_mode)) {
		char dir[PATH_MAX];
		vp_path_up(r->path, 1, dir, sizeof(dir));
		/* Not having it only makes the lock and the hot-journal
		 * check see less above the root (volume.h); not an error. */
		r->parent_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	return 0;
}

void vp_root_close(struct vp_root *r)
{
	if (r->fd >= 0)
		close(r->fd);
	if (r->parent_fd >= 0)
		close(r->parent_fd);
	free(r->path);
	*r = (struct vp_root)VP_ROOT_INIT;
}

int vp_root_refresh(struct vp_root *r)
{
	return fstat(r->fd, &r->st) < 0 ? -errno : 0;
}

uint64_t vp_root_used_inodes(const struct vp_root *r)
{
	struct statfs sfs;
	if (fstatfs(r->fd, &sfs) < 0 || sfs.f_files == 0 || sfs.f_ffree > sfs.f_files)
		return 0;
	return (uint64_t)(sfs.f_files - sfs.f_ffree);
}

/* More levels than any real path has (PATH_MAX / 2); a bound, so that a
 * loop of bind mounts could not keep us climbing. */
#define CLIMB_MAX 4096

/* Call visit for the directory dir_fd and for each directory above it, up
 * to "/", through "..", until visit returns non-zero (which climb returns)
 * or "/" is done (0). -errno if a step up fails. */
static int climb(int dir_fd, int (*visit)(int fd, const struct stat *st, void *arg), void *arg)
{
	struct stat st, up_st;
	int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3), r = 0;

	if (fd < 0)
		return -errno;
	for (int depth = 0; depth < CLIMB_MAX; depth++) {
		if (fstat(fd, &st) < 0) {
			r = -errno;
			break;
		}
		r = visit(fd, &st, arg);
		if (r)
			break;
		int up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (up < 0 || fstat(up, &up_st) < 0) {
			r = -errno;
			if (up >= 0)
				close(up);
			break;
		}
		close(fd);
		fd = up;
		if (up_st.st_dev == st.st_dev && up_st.st_ino == st.st_ino)
			break; /* "/" is its own parent */
	}
	close(fd);
	return r;
}

static int add(int fd, const struct stat *st, void *arg)
{
	struct vp_ancestry *a = arg;
	struct vp_devino *nv = realloc(a->v, (a->n + 1) * sizeof(*nv));

	(void)fd;
	if (!nv)
		return -ENOMEM;
	a->v = nv;
	a->v[a->n++] = (struct vp_devino){ (uint64_t)st->st_dev, (uint64_t)st->st_ino };
	return 0;
}

int vp_ancestry_get(int dir_fd, struct vp_ancestry *ret)
{
	struct vp_ancestry a = { 0 };
	int r = climb(dir_fd, add, &a);

	if (r < 0) {
		vp_ancestry_free(&a);
		return r;
	}
	*ret = a;
	return 0;
}

void vp_ancestry_free(struct vp_ancestry *a)
{
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

bool vp_ancestry_has(const struct vp_ancestry *a, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].dev == dev && a->v[i].ino == ino)
			return true;
	return false;
}

/* A readable fd of the directory that fd (O_PATH) names: flock needs an
 * open file, and an O_PATH fd has none to lock. Reopened through its
 * /proc/self/fd link: the same inode, no path to swap. */
static int reopen_dir(int fd)
{
	char p[32];
	struct stat a, b;
	int r;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	r = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (r < 0)
		return -errno;
	if (fstat(r, &a) < 0 || fstat(fd, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		close(r);
		return -ESTALE;
	}
	return r;
}

void vp_tree_unlock(struct vp_tree_lock *l)
{
	if (l->jlock >= 0)
		close(l->jlock);
	if (l->root >= 0)
		close(l->root);
	for (size_t i = 0; i < l->n_up; i++)
		close(l->up[i]);
	free(l->up);
	l->jlock = l->root = -1;
	l->up = NULL;
	l->n_up = 0;
}

/* LOCK_SH on one directory, kept in l->up; a directory we may not read is
 * left out (see volume.h). */
static int lock_shared(int fd, const struct stat *st, void *arg)
{
	struct vp_tree_lock *l = arg;
	int lk = reopen_dir(fd);

	(void)st;
	l->climbed++;
	if (lk < 0)
		return 0;
	int *nv = realloc(l->up, (l->n_up + 1) * sizeof(*nv));
	if (!nv) {
		close(lk);
		return -ENOMEM;
	}
	l->up = nv;
	l->up[l->n_up++] = lk;
	if (flock(lk, LOCK_SH | LOCK_NB) < 0) {
		l->busy_level = l->climbed;
		return -errno;
	}
	return 0;
}

int vp_tree_lock(int root_fd, int parent_fd, int jdir_fd, uint64_t dev, uint64_t ino,
                 struct vp_tree_lock *l)
{
	struct stat st;
	int r = 0;

	*l = (struct vp_tree_lock)VP_TREE_LOCK_INIT;
	if (jdir_fd >= 0) {
		r = vp_jdir_lock(jdir_fd, dev, ino, &l->jlock);
		if (r < 0)
			goto fail;
	}
	if (fstat(root_fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		l->root = reopen_dir(root_fd);
		if (l->root >= 0 && flock(l->root, LOCK_EX | LOCK_NB) < 0) {
			r = -errno;
			goto fail;
		}
		/* The root's parent and up: openat("..") from the root itself. */
		int up = openat(root_fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (up < 0) {
			r = -errno;
			goto fail;
		}
		struct stat ust;
		if (fstat(up, &ust) == 0 && (ust.st_dev != st.st_dev || ust.st_ino != st.st_ino))
			r = climb(up, lock_shared, l); /* (the root is not "/" itself) */
		close(up);
	} else if (parent_fd >= 0) {
		r = climb(parent_fd, lock_shared, l);
	}
	if (r < 0)
		goto fail;
	return 0;
fail:
	vp_tree_unlock(l);
	return r == -EAGAIN ? -EWOULDBLOCK : r;
}

int vp_tree_overlap(uint64_t root_dev, uint64_t root_ino, const struct vp_ancestry *anc,
                    const struct vp_jinfo *j)
{
	struct vp_ancestry ja;
	struct stat st;
	int fd, r = 0;

	if (j->dev == root_dev && j->ino == root_ino)
		return 1;
	for (size_t i = 1; i < anc->n; i++)
		if (anc->v[i].dev == j->dev && anc->v[i].ino == j->ino)
			return 2;
	if (!j->root)
		return 0;
	/* Inside us? Its recorded path leads to its root only while nobody
	 * moved it: check dev/ino, then climb from there. */
	fd = open(j->root, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_dev == j->dev && (uint64_t)st.st_ino == j->ino &&
	    vp_ancestry_get(fd, &ja) == 0) {
		for (size_t i = 1; i < ja.n; i++)
			if (ja.v[i].dev == root_dev && ja.v[i].ino == root_ino)
				r = 3;
		vp_ancestry_free(&ja);
	}
	close(fd);
	return r;
}
