/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Idmapped mounts (see idmap.h): the O(1) alternative to chown. The whole
 * sequence is open_tree(OPEN_TREE_CLONE) on SRC, a user namespace that only
 * exists to carry the mapping, mount_setattr(MOUNT_ATTR_IDMAP) on the still
 * detached clone, and move_mount onto DST: until move_mount nothing is
 * visible anywhere, and a failure at any step leaves nothing mounted (the
 * detached clone dies with its fd).
 *
 * glibc 2.36 declares open_tree/move_mount/mount_setattr in <sys/mount.h>,
 * but that header cannot be combined with <linux/mount.h> (which has
 * struct mount_attr) there, and older glibc has neither: syscall(2) it is. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "volperm/acl.h"
#include "volperm/idmap.h"
#include "volperm/volume.h"

#define ID_MAX 4294967294u  /* 4294967295 is (uid_t)-1: never a real id */
#define OVERFLOW_ID 65534u  /* what the kernel shows for an unmapped id */
#define MAP_LINES_MAX 340   /* kernel 4.15+; older kernels take 5 */

int vp_idmap_check(const struct vp_idmap *m, size_t n, uint32_t *bad_a, uint32_t *bad_b)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++) {
			bool same_from = m[i].from == m[j].from, same_to = m[i].to == m[j].to;
			if (same_from != same_to) {
				*bad_a = m[j].from;
				*bad_b = m[i].from;
				return -EINVAL;
			}
		}
	return 0;
}

static bool named(const struct vp_idmap *m, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].from == id || m[i].to == id)
			return true;
	return false;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int vp_idmap_format(const struct vp_idmap *m, size_t n, char *buf, size_t len)
{
	uint32_t *ids = malloc((2 * n + 1) * sizeof(*ids));
	size_t nids = 0, used = 0, lines = 0;
	int r = 0;

	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		ids[nids++] = m[i].from;
		ids[nids++] = m[i].to;
	}
	qsort(ids, nids, sizeof(*ids), cmp_u32);
	if (len)
		buf[0] = '\0';
	/* Identity over the gaps between the named ids (each named id once,
	 * whichever side it is on), then the pairs. The same pair given twice
	 * is written once: the kernel refuses overlapping lines. */
	uint64_t next = 0;
	for (size_t i = 0; i <= nids && r == 0; i++) {
		uint64_t end = i < nids ? ids[i] : (uint64_t)ID_MAX + 1;
		if (end > next) {
			int k = snprintf(buf + used, len - used, "%llu %llu %llu\n", (unsigned long long)next,
			                 (unsigned long long)next, (unsigned long long)(end - next));
			if (k < 0 || (size_t)k >= len - used)
				r = -E2BIG;
			else
				used += (size_t)k, lines++;
		}
		if (i < nids && end + 1 > next)
			next = end + 1;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		bool dup = false;
		for (size_t j = 0; j < i; j++)
			dup |= m[j].from == m[i].from;
		if (dup)
			continue;
		int k = snprintf(buf + used, len - used, "%u %u 1\n", m[i].from, m[i].to);
		if (k < 0 || (size_t)k >= len - used)
			r = -E2BIG;
		else
			used += (size_t)k, lines++;
	}
	free(ids);
	if (r == 0 && (lines > MAP_LINES_MAX || used >= VP_IDMAP_TEXT_MAX))
		r = -E2BIG;
	return r;
}

bool vp_idmap_show(const struct vp_idmap *m, size_t n, uint32_t id, uint32_t *shown)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].from == id) {
			*shown = m[i].to;
			return true;
		}
	if (named(m, n, id)) {
		*shown = OVERFLOW_ID;
		return false;
	}
	*shown = id;
	return true;
}

static int write_map(pid_t pid, const char *which, const char *text)
{
	char path[64];
	size_t len = strlen(text);

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, which);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* The kernel takes the whole map in one write or not at all. */
	ssize_t k = write(fd, text, len);
	int e = k < 0 ? errno : (size_t)k != len ? EIO : 0;
	close(fd);
	return -e;
}

int vp_idmap_userns(const char *uid_map, const char *gid_map)
{
	int ready[2], hold[2], r;
	pid_t pid;

	if (pipe2(ready, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(hold, O_CLOEXEC) < 0) {
		r = -errno;
		close(ready[0]);
		close(ready[1]);
		return r;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto out_pipes;
	}
	if (pid == 0) {
		/* The child: only async-signal-safe calls. It tells the parent
		 * whether unshare worked, then lives until the parent closes
		 * (or, dying, drops) the hold pipe: its namespace must exist
		 * while the parent writes the maps and opens ns/user. */
		int e = unshare(CLONE_NEWUSER) < 0 ? errno : 0;
		char c;
		close(ready[0]);
		close(hold[1]);
		if (write(ready[1], &e, sizeof(e)) != sizeof(e))
			_exit(1);
		while (read(hold[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	ready[1] = hold[0] = -1;

	int e = 0;
	ssize_t k;
	while ((k = read(ready[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	if (k != sizeof(e))
		r = -ECHILD;
	else if (e)
		r = -e;
	else if ((r = write_map(pid, "uid_map", uid_map)) == 0 &&
	         (r = write_map(pid, "gid_map", gid_map)) == 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		r = open(path, O_RDONLY | O_CLOEXEC);
		if (r < 0)
			r = -errno;
	}
	/* The namespace lives on in the fd; the child is not needed. It is
	 * still unreaped, so the pid in /proc above could not be reused. */
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
out_pipes:
	for (int i = 0; i < 2; i++) {
		if (ready[i] >= 0)
			close(ready[i]);
		if (hold[i] >= 0)
			close(hold[i]);
	}
	return r;
}

int vp_idmap_clone(int src_fd, bool recursive, int userns_fd, bool rdonly)
{
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_IDMAP | (rdonly ? MOUNT_ATTR_RDONLY : 0),
		.userns_fd = (uint64_t)userns_fd,
	};
	long tree = syscall(SYS_open_tree, src_fd, "",
	                    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH |
	                    (recursive ? AT_RECURSIVE : 0));
	if (tree < 0)
		return -errno;
	if (syscall(SYS_mount_setattr, (int)tree, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0),
	            &attr, sizeof(attr)) < 0) {
		int e = errno;
		close((int)tree);
		return -e;
	}
	return (int)tree;
}

int vp_idmap_attach(int tree_fd, int dst_fd)
{
	if (syscall(SYS_move_mount, tree_fd, "", dst_fd, "",
	            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return -errno;
	return 0;
}

/* Does the per-mount option field of mount mnt_id's line hold "idmapped"? */
static int mountinfo_idmapped(uint64_t mnt_id)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		unsigned long long id;
		char opts[4096];
		/* id parent major:minor root mountpoint options ... */
		if (sscanf(line, "%llu %*u %*u:%*u %*s %*s %4095s", &id, opts) != 2 || id != mnt_id)
			continue;
		r = -EMEDIUMTYPE;
		for (char *save = NULL, *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save))
			if (!strcmp(o, "idmapped"))
				r = 0;
		break;
	}
	free(line);
	fclose(f);
	return r;
}

int vp_idmap_is_idmapped_root(int dst_fd)
{
	struct statx sx;

	if (statx(dst_fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) < 0)
		return -errno;
	if (!(sx.stx_mask & STATX_MNT_ID) || !(sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
		return -ENOSYS; /* kernel < 5.8: cannot tell safely */
	if (!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
		return -ENOTCONN;
	return mountinfo_idmapped(sx.stx_mnt_id);
}

int vp_idmap_detach(int dst_fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", dst_fd);
	return umount2(path, MNT_DETACH) < 0 ? -errno : 0;
}

/* ---- census (idmap --dry-run) ---- */

/* Owners are few in a volume (a handful of ids), so a sorted array with a
 * binary search is enough; a tree with an owner per file costs an insertion
 * per new id, still far below the walk's own cost for a dry run. */
static int count_id(struct vp_idcount **v, size_t *n, uint32_t id)
{
	size_t lo = 0, hi = *n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if ((*v)[mid].id == id) {
			(*v)[mid].n++;
			return 0;
		}
		if ((*v)[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	struct vp_idcount *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	memmove(nv + lo + 1, nv + lo, (*n - lo) * sizeof(*nv));
	nv[lo] = (struct vp_idcount){ id, 1 };
	*v = nv;
	(*n)++;
	return 0;
}

static int count_pair(struct vp_idpair **v, size_t *n, uint32_t uid, uint32_t gid)
{
	uint64_t key = (uint64_t)uid << 32 | gid;
	size_t lo = 0, hi = *n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t k = (uint64_t)(*v)[mid].uid << 32 | (*v)[mid].gid;
		if (k == key) {
			(*v)[mid].n++;
			return 0;
		}
		if (k < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	struct vp_idpair *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	memmove(nv + lo + 1, nv + lo, (*n - lo) * sizeof(*nv));
	nv[lo] = (struct vp_idpair){ uid, gid, 1 };
	*v = nv;
	(*n)++;
	return 0;
}

/* Count the named entries of one ACL xattr of e. 0 (none there
 * included), a positive errno for an ACL that could not be read (counted
 * by the caller), or -ENOMEM. */
static int count_acl(struct vp_idcensus *c, const FTSENT *e, const char *name)
{
	uint8_t buf[VP_ACL_XATTR_MAX];
	struct vp_acl a = VP_ACL_INIT;
	int r = 0;

	/* The root's path is the magic link /proc/self/fd/N: follow it (it
	 * is the pinned directory). Below it, never follow. */
	ssize_t len = e->fts_level == FTS_ROOTLEVEL ? getxattr(e->fts_accpath, name, buf, sizeof(buf))
	                                            : lgetxattr(e->fts_accpath, name, buf, sizeof(buf));
	if (len < 0)
		/* No ACL, or none on this filesystem (with --cross-mounts, the
		 * next mount may have them: ask every entry). */
		return errno == ENODATA || errno == ENOTSUP ? 0 : errno;
	if (vp_acl_from_xattr(buf, (size_t)len, &a) < 0)
		return EINVAL;
	for (size_t i = 0; i < a.n && r == 0; i++)
		if (a.e[i].tag == VP_ACL_USER)
			r = count_id(&c->acl_uids, &c->n_acl_uids, a.e[i].id);
		else if (a.e[i].tag == VP_ACL_GROUP)
			r = count_id(&c->acl_gids, &c->n_acl_gids, a.e[i].id);
	vp_acl_free(&a);
	return r;
}

void vp_idcensus_free(struct vp_idcensus *c)
{
	free(c->uids);
	free(c->gids);
	free(c->pairs);
	free(c->acl_uids);
	free(c->acl_gids);
	*c = (struct vp_idcensus){ 0 };
}

int vp_idmap_census(int src_fd, bool cross_mounts, struct vp_idcensus *c)
{
	char root[64];
	char *const paths[] = { root, NULL };
	FTSENT *e;
	int r = 0;

	*c = (struct vp_idcensus){ 0 };
	/* fts on the pinned fd's magic link: the walk starts at the directory
	 * that was checked, whatever SRC's path names now. FTS_PHYSICAL never
	 * follows a symlink below it; FTS_NOCHDIR keeps the process's cwd. */
	snprintf(root, sizeof(root), "/proc/self/fd/%d", src_fd);
	FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_COMFOLLOW | FTS_NOCHDIR |
	                    (cross_mounts ? 0 : FTS_XDEV), NULL);
	if (!fts)
		return -errno;
	while (r == 0 && (errno = 0, e = fts_read(fts))) {
		switch (e->fts_info) {
		case FTS_DP:
			continue; /* the postorder visit of a directory already counted */
		case FTS_DNR:
		case FTS_ERR:
		case FTS_NS:
			if (!c->errors++)
				c->first_error = e->fts_errno;
			if (e->fts_info != FTS_DNR)
				continue;
			break; /* an unreadable directory was still stat()ed: count it */
		default:
			break;
		}
		c->entries++;
		r = count_id(&c->uids, &c->n_uids, e->fts_statp->st_uid);
		if (r == 0)
			r = count_id(&c->gids, &c->n_gids, e->fts_statp->st_gid);
		if (r == 0)
			r = count_pair(&c->pairs, &c->n_pairs, e->fts_statp->st_uid, e->fts_statp->st_gid);
		/* Symlinks carry no ACL; only directories have a default ACL.
		 * With FTS_NOCHDIR, fts_accpath is the whole path from the
		 * pinned root's magic link. */
		if (r == 0 && !S_ISLNK(e->fts_statp->st_mode)) {
			int k = count_acl(c, e, "system.posix_acl_access");
			if (k == 0 && S_ISDIR(e->fts_statp->st_mode))
				k = count_acl(c, e, "system.posix_acl_default");
			if (k < 0)
				r = k;
			else if (k > 0 && !c->errors++)
				c->first_error = k;
		}
	}
	if (r == 0 && !e && errno)
		r = -errno;
	fts_close(fts);
	if (r < 0)
		vp_idcensus_free(c);
	return r;
}

/* ---- what an --owner policy is, and what chown would cost ---- */

size_t vp_idcount_top(const struct vp_idcount *v, size_t n, struct vp_idcount *top, size_t k)
{
	size_t got = 0;

	/* Insertion into a k-long list: k is a handful (the message's "top
	 * few"), n the ids of one volume. v is sorted by id, so on a tie the
	 * id seen first, the lower, stays ahead. */
	for (size_t i = 0; i < n; i++) {
		size_t at = got;
		while (at > 0 && top[at - 1].n < v[i].n)
			at--;
		if (at >= k)
			continue;
		size_t keep = got < k ? got : k - 1;
		memmove(top + at + 1, top + at, (keep - at) * sizeof(*top));
		top[at] = v[i];
		if (got < k)
			got++;
	}
	return got;
}

int vp_idmap_owner(const struct vp_idcensus *c, bool has_uid, uint32_t uid, bool has_gid,
                   uint32_t gid, struct vp_idmap_owner *out)
{
	struct vp_idcount top;

	*out = (struct vp_idmap_owner){ 0 };
	if (!has_uid && !has_gid)
		return -EINVAL;
	if (!c->entries || !c->n_uids || !c->n_gids)
		return -ENODATA;
	if (has_uid) {
		out->many_uids = c->n_uids > 1;
		vp_idcount_top(c->uids, c->n_uids, &top, 1);
		out->uid_map = (struct vp_idmap){ top.id, uid };
		out->n_uid_maps = 1;
	}
	if (has_gid) {
		out->many_gids = c->n_gids > 1;
		vp_idcount_top(c->gids, c->n_gids, &top, 1);
		out->gid_map = (struct vp_idmap){ top.id, gid };
		out->n_gid_maps = 1;
	}
	/* An entry that could not be stat()ed may have any owner: one owner
	 * among those read proves nothing about it. */
	out->unknown = c->errors > 0;
	out->expressible = !out->many_uids && !out->many_gids && !out->unknown;
	return 0;
}

static uint32_t chown_id(const struct vp_idmap *m, size_t n, uint32_t id, bool has_default,
                         uint32_t def)
{
	/* As decide.c does: a map first, then the owner given. */
	for (size_t i = 0; i < n; i++)
		if (m[i].from == id)
			return m[i].to;
	return has_default ? def : id;
}

uint64_t vp_idmap_chown_cost(const struct vp_idcensus *c, const struct vp_policy *p)
{
	uint64_t n = 0;

	for (size_t i = 0; i < c->n_pairs; i++) {
		const struct vp_idpair *e = &c->pairs[i];
		if (chown_id(p->uid_maps, p->n_uid_maps, e->uid, p->has_uid, p->uid) != e->uid ||
		    chown_id(p->gid_maps, p->n_gid_maps, e->gid, p->has_gid, p->gid) != e->gid)
			n += e->n;
	}
	return n;
}

/* ---- fstab (util-linux 2.39+ X-mount.idmap) ---- */

#define FSTAB_IDMAP "X-mount.idmap="

/* One kernel map text ("INSIDE OUTSIDE COUNT\n" lines) as X-mount.idmap
 * tokens. libmount (hook_idmap.c) writes each token's id-mount:id-host:
 * id-range into the new namespace's map as "id-mount id-host id-range",
 * that is inside, outside, count: the very line vp_idmap_format() made, so
 * the token is the line's three numbers in order (on-disk id first, the id
 * it appears as second). */
static int fstab_tokens(char type, const char *text, char *buf, size_t len, size_t *used)
{
	const char *p = text;

	while (*p) {
		unsigned long long a, b, n;
		int k, consumed = 0;
		if (sscanf(p, "%llu %llu %llu%n", &a, &b, &n, &consumed) != 3 || p[consumed] != '\n')
			return -EINVAL;
		p += consumed + 1;
		k = snprintf(buf + *used, len - *used, "%s%c:%llu:%llu:%llu",
		             *used > strlen(FSTAB_IDMAP) ? "\\040" : "", type, a, b, n);
		if (k < 0 || (size_t)k >= len - *used)
			return -E2BIG;
		*used += (size_t)k;
	}
	return 0;
}

int vp_idmap_fstab_option(const char *uid_map, const char *gid_map, char *buf, size_t len)
{
	size_t used;
	int r;

	used = (size_t)snprintf(buf, len, "%s", FSTAB_IDMAP);
	if (used >= len)
		return -E2BIG;
	r = fstab_tokens('u', uid_map, buf, len, &used);
	if (r == 0)
		r = fstab_tokens('g', gid_map, buf, len, &used);
	return r;
}

int vp_idmap_mount_takes_idmap(const char *text, unsigned *major, unsigned *minor)
{
	const char *p = strstr(text, "util-linux ");
	unsigned a, b;

	/* "mount from util-linux 2.38.1 (libmount 2.38.1: ...)"; older ones
	 * say "mount from util-linux 2.33.1 (libmount ...)" too. */
	if (!p || sscanf(p + strlen("util-linux "), "%u.%u", &a, &b) != 2)
		return -EINVAL;
	*major = a;
	*minor = b;
	return a > 2 || (a == 2 && b >= 39);
}

/* ---- SRC, DST and the host's mount(8) ---- */

int vp_idmap_dir_open(const char *path, bool allow_system, int *fd, char **resolved)
{
	struct stat st;
	char self[64];

	*resolved = NULL;
	*fd = open(path, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0) {
		int e = errno;
		/* O_NOFOLLOW|O_DIRECTORY on a symlink says ENOTDIR (or ELOOP):
		 * lstat tells which it really is. */
		if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
			return -ELOOP;
		if (e == ENOTDIR && lstat(path, &st) == 0)
			return -ENOTDIR;
		return -e;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", *fd);
	*resolved = realpath(self, NULL);
	if (!*resolved) {
		int e = errno;
		close(*fd);
		*fd = -1;
		return -e;
	}
	if (!allow_system && vp_is_system_path(*resolved)) {
		close(*fd);
		*fd = -1;
		return -EPERM;
	}
	return 0;
}

int vp_idmap_dst_empty(int dst_fd)
{
	int d = openat(dst_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = d < 0 ? NULL : fdopendir(d);
	struct dirent *de;
	int r = 0;

	if (!dir) {
		r = -errno;
		if (d >= 0)
			close(d);
		return r;
	}
	errno = 0;
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			r = -ENOTEMPTY;
			break;
		}
	if (!de && errno)
		r = -errno;
	closedir(dir);
	return r;
}

int vp_mount_version(char *buf, size_t len)
{
	static const char *const paths[] = { "/usr/bin/mount", "/bin/mount", "/usr/sbin/mount", "/sbin/mount" };
	extern char **environ;
	int r = -ENOENT;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]) && r == -ENOENT; i++) {
		char *argv[] = { (char *)paths[i], (char *)"--version", NULL };
		posix_spawn_file_actions_t fa;
		int pipefd[2], status;
		pid_t pid;

		if (access(paths[i], X_OK) < 0)
			continue;
		if (pipe2(pipefd, O_CLOEXEC) < 0)
			return -errno;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
		r = -posix_spawn(&pid, paths[i], &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		close(pipefd[1]);
		if (r == 0) {
			size_t used = 0;
			ssize_t k;
			while (used + 1 < len && ((k = read(pipefd[0], buf + used, len - used - 1)) > 0 ||
			                          (k < 0 && errno == EINTR)))
				if (k > 0)
					used += (size_t)k;
			buf[used] = '\0';
			buf[strcspn(buf, "\n")] = '\0';
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			if (!used)
				r = -ENODATA;
		}
		close(pipefd[0]);
	}
	return r;
}

