/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The journal directory (see jdir.h). Journals are only as trustworthy as
 * the directory they live in: a directory that someone else can write lets
 * them plant a symlink or a forged journal, so we refuse it (invariant 6). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <pwd.h>
#include <unistd.h>

#include "volperm/jdir.h"
#include "volperm/shard.h"
#include "volperm/userns.h"

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
		return -EEXIST; /* distinct from open()'s EACCES */
	return 0;
}

/* mkdir -p of the parents of path (not of path itself), each 0700: a
 * user's ~/.local/state may not exist yet. Symlinks among the parents are
 * followed, as by mkdir -p; the journal directory itself never is. */
static int make_parents(char *path, char *tried, size_t tried_size)
{
	for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = 0;
		int r = mkdir(path, 0700) < 0 && errno != EEXIST ? -errno : 0;
		if (r < 0 && tried)
			snprintf(tried, tried_size, "%s", path);
		*p = '/';
		if (r < 0)
			return r;
	}
	return 0;
}

int vp_jdir_open_ex(const char *path_in, bool create, int *ret_fd, char *tried, size_t tried_size)
{
	char path[PATH_MAX];
	size_t len = strlen(path_in);
	int fd, r;

	if (tried && tried_size)
		snprintf(tried, tried_size, "%s", path_in);
	/* "link/" would make open() follow the symlink despite O_NOFOLLOW. */
	if (len == 0 || len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, path_in, len + 1);
	while (len > 1 && path[len - 1] == '/')
		path[--len] = 0;

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
		if (mkdir(path, 0700) < 0) {
			r = -errno;
			if (r == -ENOENT) {
				r = make_parents(path, tried, tried_size);
				if (r < 0)
					return r;
				r = mkdir(path, 0700) < 0 ? -errno : 0;
			}
			if (r < 0 && r != -EEXIST)
				return r;
		}
	}
	r = check_dir(fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int vp_jdir_open(const char *path, bool create, int *ret_fd)
{
	return vp_jdir_open_ex(path, create, ret_fd, NULL, 0);
}

int vp_jdir_default(char **ret)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char *s = NULL;

	if (geteuid() == 0 && vp_userns_is_initial() != 0) {
		/* (a /proc that cannot tell: root as before) */
		s = strdup(VP_JOURNAL_DIR_DEFAULT);
		if (!s)
			return -ENOMEM;
		*ret = s;
		return 0;
	}
	if (xdg && xdg[0] == '/') {
		if (asprintf(&s, "%s/volperm", xdg) < 0)
			return -ENOMEM;
	} else {
		struct passwd pw, *res = NULL;
		char buf[4096];
		if (!home || home[0] != '/') {
			if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) != 0 || !res ||
			    res->pw_dir[0] != '/')
				return -ENOENT;
			home = res->pw_dir;
		}
		if (asprintf(&s, "%s%s.local/state/volperm", home,
		             home[strlen(home) - 1] == '/' ? "" : "/") < 0)
			return -ENOMEM;
	}
	*ret = s;
	return 0;
}

/* The path of fd inside its filesystem (not inside the mount namespace):
 * the mount's root field from mountinfo, plus the path below the mount
 * point. Two paths of the same filesystem compare meaningfully even when
 * one is reached through a bind mount. */
static int fs_path(int fd, char *buf, size_t size)
{
	char link[64], real[PATH_MAX], *line = NULL;
	size_t cap = 0, best = 0;
	struct statx sx;
	FILE *f;
	int r = -ENOENT;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) < 0 || !(sx.stx_mask & STATX_MNT_ID))
		return -ENOTSUP;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, real, sizeof(real) - 1);
	if (n < 0)
		return -errno;
	real[n] = 0;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		unsigned long long id;
		char mroot[PATH_MAX], mpoint[PATH_MAX];
		if (sscanf(line, "%llu %*u %*s %4095s %4095s", &id, mroot, mpoint) != 3 ||
		    id != sx.stx_mnt_id)
			continue;
		size_t ml = strlen(mpoint);
		if (strncmp(real, mpoint, ml) != 0 || (real[ml] != '/' && real[ml] && ml > 1))
			continue;
		if (ml < best)
			continue;
		best = ml;
		const char *rest = ml > 1 ? real + ml : real;
		int w = snprintf(buf, size, "%s%s", strcmp(mroot, "/") ? mroot : "", rest);
		r = w < 0 || (size_t)w >= size ? -ENAMETOOLONG : 0;
		if (r == 0 && !*buf)
			snprintf(buf, size, "/");
	}
	free(line);
	fclose(f);
	return r;
}

int vp_jdir_inside_fs(int jdir_fd, int root_fd)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct stat sa, sb;

	if (fstat(jdir_fd, &sa) < 0 || fstat(root_fd, &sb) < 0)
		return -errno;
	if (sa.st_dev != sb.st_dev)
		return 0;
	if (fs_path(jdir_fd, a, sizeof(a)) < 0 || fs_path(root_fd, b, sizeof(b)) < 0)
		return 0; /* cannot tell: the walk still refuses to enter it */
	size_t bl = strlen(b);
	if (strcmp(b, "/") == 0)
		return 1;
	return strncmp(a, b, bl) == 0 && (a[bl] == '/' || a[bl] == 0);
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

void vp_jdir_lock_name(char buf[VP_JNAME_MAX], uint64_t dev, uint64_t ino)
{
	snprintf(buf, VP_JNAME_MAX, "vp-%016" PRIx64 "-%016" PRIx64 ".lock", dev, ino);
}

int vp_jdir_lock_file(int jdir_fd, const char *name, int how, int *ret_fd)
{
	struct stat st;
	int fd = openat(jdir_fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
	                0600);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (flock(fd, how | LOCK_NB) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int vp_jdir_lock(int jdir_fd, uint64_t dev, uint64_t ino, int *ret_fd)
{
	char name[VP_JNAME_MAX];

	vp_jdir_lock_name(name, dev, ino);
	return vp_jdir_lock_file(jdir_fd, name, LOCK_EX, ret_fd);
}

/* A plain journal's name, or a shard journal's (the run id and K go to
 * info; shard.c parses those strictly). */
static bool parse_name(const char *n, uint64_t *dev, uint64_t *ino, uint64_t *created,
                       struct vp_jinfo *info)
{
	char tail[8];
	size_t len = strlen(n);
	struct vp_run_id id;

	if (vp_shard_journal_parse(n, dev, ino, created, &id, &info->shard)) {
		_Static_assert(sizeof(info->run_id) == sizeof(id.b), "run id size");
		memcpy(info->run_id, id.b, sizeof(id.b));
		info->is_shard = true;
		return true;
	}
	if (len != 3 + 16 + 1 + 16 + 1 + 16 + 4)
		return false;
	return sscanf(n, "vp-%16" SCNx64 "-%16" SCNx64 "-%16" SCNx64 "%7s", dev, ino, created, tail) == 4 &&
	       strcmp(tail, VP_JOURNAL_SUFFIX) == 0;
}

/* Oldest first: by sequence (journal invariant: the creation time comes
 * from a clock that can go back, the sequence cannot), then, for version 1
 * journals (sequence 0), by creation time, then by name. A file whose
 * header cannot be read has no sequence we could trust: it sorts last, as
 * if it were the newest, so that "the newest journal" is never silently
 * another one (a file planted under a journal name is refused, not
 * skipped). */
static int cmp_info(const void *a, const void *b)
{
	const struct vp_jinfo *x = a, *y = b;

	if (x->unreadable != y->unreadable)
		return x->unreadable ? 1 : -1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	if (x->created_ns != y->created_ns)
		return x->created_ns < y->created_ns ? -1 : 1;
	return strcmp(x->name, y->name);
}

void vp_jdir_list_free(struct vp_jinfo *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].root);
	free(v);
}

int vp_jdir_next_seq(int jdir_fd, uint64_t dev, uint64_t ino, uint64_t *seq)
{
	struct vp_jinfo *v = NULL;
	size_t n = 0;
	uint64_t max = 0;
	int r = vp_jdir_list(jdir_fd, false, dev, ino, &v, &n);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (v[i].seq > max)
			max = v[i].seq;
	vp_jdir_list_free(v, n);
	*seq = max + 1;
	return 0;
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
		if (!parse_name(de->d_name, &info.dev, &info.ino, &info.created_ns, &info))
			continue;
		if (!all && (info.dev != dev || info.ino != ino))
			continue;
		memcpy(info.name, de->d_name, strlen(de->d_name) + 1); /* length checked by parse_name */
		struct vp_jheader h;
		int r = vp_jr_peek(jdir_fd, info.name, &info.state, &info.live, &h);
		if (r == 0) {
			info.seq = h.seq;
			info.root = h.root; /* handed over */
			h.root = NULL;
			/* A header of another root under this root's name: a file
			 * copied or planted here. Its sequence means nothing in this
			 * root's order; like an unreadable one, it sorts as newest,
			 * so that rollback meets it and refuses it (invariant 3). */
			if (h.root_dev != info.dev || h.root_ino != info.ino)
				r = -EXDEV;
			vp_jheader_free(&h);
		}
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
			free(info.root);
			vp_jdir_list_free(v, cnt);
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
