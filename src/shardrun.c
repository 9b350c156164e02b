/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The steps of a sharded run that need the engine (see shardrun.h and
 * docs/scale-out.md). The rules that keep one machine's promises across
 * shards:
 *
 *   - a shard walks only its buckets, and never delivers an above
 *     directory or the root: their change waits for finalize, after every
 *     shard committed, so that whenever any shard touches an entry, every
 *     directory on its path is still in its before-state;
 *   - a shard never decides a multiply-linked inode (engine: defer_links);
 *     finalize looks every recorded link up again and lets the engine's
 *     link table decide, with its watch, as on one machine;
 *   - finalize's journal is written in the order one machine's would be:
 *     the links, then the above directories deepest first, the root last.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "pin.h"
#include "volperm/jdir.h"
#include "volperm/quote.h"
#include "volperm/shardrun.h"

/* ---- helpers ---- */

void vp_host_key(uint8_t key[16])
{
	char buf[64];
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	size_t o = 0;

	memset(key, 0, 16);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx\n": 32 hex digits */
	for (ssize_t i = 0; i < n && o < 32; i++) {
		char c = buf[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			continue;
		key[o / 2] = (uint8_t)(key[o / 2] | (o % 2 ? v : v << 4));
		o++;
	}
}

uint64_t vp_fsid_of(int fd)
{
	struct statfs sfs;
	uint32_t v[2];

	if (fstatfs(fd, &sfs) < 0)
		return 0;
	memcpy(v, &sfs.f_fsid, sizeof(v));
	return (uint64_t)v[0] | (uint64_t)v[1] << 32;
}

/* A read fd of the directory at path below root_fd: pinned by vp_pin's
 * rules (beneath, no symlink, the inode expected), then reopened from its
 * O_PATH fd. -errno (-ESTALE: another inode). */
static int open_dir(int root_fd, const char *path, uint64_t dev, uint64_t ino, unsigned flags,
                    struct stat *st)
{
	uint64_t btime;
	struct stat st2;
	int pfd, fd;

	if (strcmp(path, ".") == 0) {
		fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0)
			return -errno;
		if (fstat(fd, st) < 0 || (uint64_t)st->st_ino != ino || (uint64_t)st->st_dev != dev) {
			close(fd);
			return -ESTALE;
		}
		return fd;
	}
	pfd = vp_pin(root_fd, path, dev, ino, st, &btime, flags);
	if (pfd < 0)
		return pfd;
	fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	int e = errno;
	close(pfd);
	if (fd < 0)
		return -e;
	if (fstat(fd, &st2) < 0 || st2.st_dev != st->st_dev || st2.st_ino != st->st_ino) {
		close(fd);
		return -ESTALE;
	}
	*st = st2;
	return fd;
}

/* The dev a planned directory has on this host: the manifest's own when it
 * was planned on a host that numbers devices as we do (the root's dev
 * agrees), else the root's (without --cross-mounts every planned directory
 * is on the root's filesystem). */
static uint64_t planned_dev(const struct vp_manifest *m, const struct stat *root_st,
                            uint64_t dev)
{
	return m->root_dev == (uint64_t)root_st->st_dev ? dev : (uint64_t)root_st->st_dev;
}

/* ---- a shard's walk ---- */

struct bucket_pin {
	const struct vp_bucket *b;
	int fd;                   /* O_PATH */
	struct stat st;
	char *abs;                /* root/path, for the walk's messages and its check */
};

struct vp_shard_walk {
	const struct vp_manifest *m;
	struct bucket_pin *v;
	size_t n;
};

void vp_shard_walk_free(struct vp_shard_walk *sw)
{
	if (!sw)
		return;
	for (size_t i = 0; i < sw->n; i++) {
		if (sw->v[i].fd >= 0)
			close(sw->v[i].fd);
		free(sw->v[i].abs);
	}
	free(sw->v);
	free(sw);
}

int vp_shard_walk_open(const struct vp_manifest *m, uint32_t k, int root_fd, const char *root,
                       const struct stat *root_st, bool cross_mounts,
                       struct vp_shard_walk **ret, char *why, size_t why_size)
{
	struct vp_shard_walk *sw = calloc(1, sizeof(*sw));
	unsigned flags = cross_mounts ? VP_PIN_XDEV : 0;

	if (!sw)
		return -ENOMEM;
	sw->m = m;
	sw->v = calloc(m->n_buckets ? m->n_buckets : 1, sizeof(*sw->v));
	if (!sw->v) {
		free(sw);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->n_buckets; i++) {
		const struct vp_bucket *b = &m->buckets[i];
		struct bucket_pin *p = &sw->v[sw->n];
		uint64_t btime;
		int fd;

		if (b->shard != k)
			continue;
		*p = (struct bucket_pin){ .b = b, .fd = -1 };
		sw->n++;
		if (strcmp(b->path, ".") == 0) {
			fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
			p->st = *root_st;
			if (fd >= 0 && (uint64_t)root_st->st_ino != b->ino)
				fd = (close(fd), -ESTALE);
			else if (fd < 0)
				fd = -errno;
		} else {
			fd = vp_pin(root_fd, b->path, planned_dev(m, root_st, b->dev), b->ino, &p->st,
			            &btime, flags);
		}
		if (fd < 0 || !S_ISDIR(p->st.st_mode)) {
			char q[512];
			if (fd >= 0)
				close(fd);
			snprintf(why, why_size,
			         "%s is not the directory the plan saw (%s); nothing was changed: plan the run again",
			         vp_quote_path_buf(q, sizeof(q), root, b->path, b->path_len),
			         fd < 0 && fd != -ESTALE ? strerror(-fd) : "it was replaced or moved");
			vp_shard_walk_free(sw);
			return fd == -ENOMEM ? -ENOMEM : -ESTALE;
		}
		p->fd = fd;
		if (strcmp(b->path, ".") == 0)
			p->abs = strdup(root);
		else if (asprintf(&p->abs, "%s%s%s", root, root[strlen(root) - 1] == '/' ? "" : "/",
		                  b->path) < 0)
			p->abs = NULL;
		if (!p->abs) {
			vp_shard_walk_free(sw);
			return -ENOMEM;
		}
	}
	*ret = sw;
	return 0;
}

/* A files bucket of D: the walk's cfg with D's own delivery dropped and
 * D's buckets and above directories pruned. */
struct files_walk {
	const struct vp_walk_cfg *outer;
	const struct vp_manifest *m;
	const char *dir;          /* D: "." or its path */
	size_t dir_len;
};

static int files_fn(const struct vp_walk_entry *e, void *userdata)
{
	const struct files_walk *f = userdata;

	/* D itself is an above directory: finalize changes it. (Anything
	 * else about it, an error or a skip, is the shard's to say.) */
	if (e->kind == VP_WALK_ENTRY && e->relpath_len == f->dir_len &&
	    memcmp(e->relpath, f->dir, f->dir_len) == 0)
		return 0;
	return f->outer->fn(e, f->outer->userdata);
}

static int files_barrier(unsigned worker, void *userdata)
{
	const struct files_walk *f = userdata;
	return f->outer->barrier ? f->outer->barrier(worker, f->outer->userdata) : 0;
}

static bool files_prune(const char *relpath, size_t len, const struct stat *st, void *userdata)
{
	const struct files_walk *f = userdata;
	size_t idx;

	(void)st;
	return vp_manifest_lookup(f->m, relpath, len, &idx) != VP_WHERE_NONE;
}

int vp_shard_walk(const struct vp_walk_cfg *cfg, void *arg)
{
	const struct vp_shard_walk *sw = arg;

	for (size_t i = 0; i < sw->n; i++) {
		const struct bucket_pin *p = &sw->v[i];
		bool top = strcmp(p->b->path, ".") == 0;
		struct files_walk fw = { cfg, sw->m, p->b->path, p->b->path_len };
		struct vp_walk_cfg c = *cfg;
		int r;

		c.root = p->abs;
		c.root_fd = p->fd;
		c.root_st = &p->st;
		c.prefix = top ? NULL : p->b->path;
		if (p->b->kind == VP_BUCKET_FILES) {
			c.fn = files_fn;
			c.barrier = files_barrier;
			c.prune = files_prune;
			c.userdata = &fw;
		}
		r = vp_walk(&c);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- finalize ---- */

struct vp_finalize {
	const struct vp_manifest *m;
	struct vp_sight_merge *merge;
	int root_fd;
	struct stat root_st;
	bool cross_mounts;
	size_t inodes;
	const struct vp_walk_cfg *cfg; /* during the walk */
};

struct count_arg {
	size_t n;
};

static int count_inode(const struct vp_sight_inode *in, void *userdata)
{
	(void)in;
	((struct count_arg *)userdata)->n++;
	return 0;
}

int vp_finalize_open(const struct vp_manifest *m, int jdir_fd, int root_fd,
                     const struct stat *root_st, bool allow_external, bool cross_mounts,
                     struct vp_finalize **ret, char *why, size_t why_size)
{
	struct vp_finalize *f = calloc(1, sizeof(*f));
	struct count_arg ca = { 0 };
	int r;

	if (!f)
		return -ENOMEM;
	*f = (struct vp_finalize){ .m = m, .root_fd = root_fd, .root_st = *root_st,
	                           .cross_mounts = cross_mounts };
	r = vp_sight_merge_new(allow_external, &f->merge);
	for (uint32_t k = 0; r == 0 && k < m->n_shards; k++) {
		r = vp_sight_merge_file(f->merge, jdir_fd, &m->id, k);
		if (r < 0) {
			char name[VP_MANIFEST_NAME_MAX];
			vp_sight_name(name, &m->id, k);
			snprintf(why, why_size, "cannot read the hard links shard %u/%u saw (%s): %s", k,
			         m->n_shards, name,
			         r == -ENOENT ? "missing" : r == -EBADMSG ? "corrupt" : strerror(-r));
		}
	}
	if (r == 0)
		r = vp_sight_merge_each(f->merge, count_inode, &ca);
	if (r < 0) {
		vp_finalize_free(f);
		return r;
	}
	f->inodes = ca.n;
	*ret = f;
	return 0;
}

void vp_finalize_free(struct vp_finalize *f)
{
	if (!f)
		return;
	vp_sight_merge_free(f->merge);
	free(f);
}

size_t vp_finalize_inodes(const struct vp_finalize *f)
{
	return f->inodes;
}

static int deliver(const struct vp_walk_cfg *cfg, const struct vp_walk_entry *e)
{
	return cfg->fn(e, cfg->userdata);
}

static int skip_changed(const struct vp_walk_cfg *cfg, const char *path, size_t len)
{
	const char *slash = memrchr(path, '/', len);
	struct vp_walk_entry e = {
		.kind = VP_WALK_SKIP, .skip = VP_SKIP_CHANGED, .relpath = path, .relpath_len = len,
		.name = slash ? slash + 1 : path, .dirfd = -1, .fd = -1,
	};
	return deliver(cfg, &e);
}

/* One link of a multiply-linked inode: its directory opened afresh
 * (beneath the root, no symlink), its name stat'ed; the engine's link
 * table counts it with its watch. 1 when the link is not what a shard saw
 * (the inode is then skipped as changed), 0 delivered, or -errno. */
static int deliver_link(struct vp_finalize *f, const struct vp_sighting *s)
{
	const struct vp_walk_cfg *cfg = f->cfg;
	char *path = strndup(s->path, s->path_len), *slash;
	struct stat pst, st;
	int dfd, r = 0;

	if (!path)
		return -ENOMEM;
	slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	if (slash)
		*slash = 0;
	uint64_t pdev = f->cross_mounts ? s->parent_dev : (uint64_t)f->root_st.st_dev;
	dfd = open_dir(f->root_fd, slash ? path : ".", pdev, s->parent_ino,
	               f->cross_mounts ? VP_PIN_XDEV : 0, &pst);
	if (slash)
		*slash = '/';
	if (dfd < 0 && dfd != -ENOMEM) {
		free(path);
		return 1;
	}
	if (dfd < 0) {
		free(path);
		return dfd;
	}
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || (uint64_t)st.st_ino != s->ino ||
	    S_ISDIR(st.st_mode)) {
		r = 1;
	} else {
		struct vp_walk_entry e = {
			.kind = VP_WALK_ENTRY, .relpath = path, .relpath_len = s->path_len,
			.name = name, .dirfd = dfd, .fd = -1, .st = &st, .parent_st = &pst,
		};
		r = deliver(cfg, &e);
	}
	close(dfd);
	free(path);
	return r;
}

static int finalize_inode(const struct vp_sight_inode *in, void *userdata)
{
	struct vp_finalize *f = userdata;
	int r;

	/* Seen differently by two shards: it changed between their looks. */
	if (in->verdict == VP_SIGHT_UNSTABLE)
		return skip_changed(f->cfg, in->first->path, in->first->path_len);
	/* Due or not, every link found goes to the link table: it decides
	 * afresh (an inode with links missing is then reported as
	 * external-hardlink after the walk, as on one machine). */
	for (uint64_t i = 0; i < in->links; i++) {
		r = deliver_link(f, in->all[i]);
		if (r == 1)
			return skip_changed(f->cfg, in->all[i]->path, in->all[i]->path_len);
		if (r < 0)
			return r;
	}
	return 0;
}

static int finalize_above(struct vp_finalize *f, const struct vp_above *a)
{
	const struct vp_walk_cfg *cfg = f->cfg;
	uint64_t dev = planned_dev(f->m, &f->root_st, a->dev);
	unsigned flags = f->cross_mounts ? VP_PIN_XDEV : 0;
	struct stat st, pst;
	int fd, pfd = -1, r;

	if (strcmp(a->path, ".") == 0) {
		fd = open_dir(f->root_fd, ".", (uint64_t)f->root_st.st_dev,
		              (uint64_t)f->root_st.st_ino, 0, &st);
		if (fd < 0)
			return fd == -ENOMEM ? fd : skip_changed(cfg, ".", 1);
		struct vp_walk_entry e = {
			.kind = VP_WALK_ENTRY, .relpath = ".", .relpath_len = 1, .name = ".",
			.dirfd = -1, .fd = fd, .st = &st,
		};
		r = deliver(cfg, &e);
		close(fd);
		return r;
	}
	/* Its parent is an above directory too (manifest invariant). */
	const char *slash = strrchr(a->path, '/');
	const char *name = slash ? slash + 1 : a->path;
	char *ppath = slash ? strndup(a->path, (size_t)(slash - a->path)) : strdup(".");
	if (!ppath)
		return -ENOMEM;
	size_t pidx;
	uint64_t pino = (uint64_t)f->root_st.st_ino, pdev = (uint64_t)f->root_st.st_dev;
	if (slash && vp_manifest_lookup(f->m, ppath, strlen(ppath), &pidx) == VP_WHERE_ABOVE) {
		pino = f->m->above[pidx].ino;
		pdev = planned_dev(f->m, &f->root_st, f->m->above[pidx].dev);
	}
	pfd = open_dir(f->root_fd, ppath, pdev, pino, flags, &pst);
	free(ppath);
	if (pfd < 0)
		return pfd == -ENOMEM ? pfd : skip_changed(cfg, a->path, a->path_len);
	fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_ino != a->ino ||
	    (uint64_t)st.st_dev != dev) {
		if (fd >= 0)
			close(fd);
		close(pfd);
		return skip_changed(cfg, a->path, a->path_len);
	}
	struct vp_walk_entry e = {
		.kind = VP_WALK_ENTRY, .relpath = a->path, .relpath_len = a->path_len, .name = name,
		.dirfd = pfd, .fd = fd, .st = &st, .parent_st = &pst,
	};
	r = deliver(cfg, &e);
	close(fd);
	close(pfd);
	return r;
}

int vp_finalize_walk(const struct vp_walk_cfg *cfg, void *arg)
{
	struct vp_finalize *f = arg;
	/* The engine's capability scan may walk the same list from inside
	 * this walk (a nested dry run before the first change). */
	const struct vp_walk_cfg *outer = f->cfg;
	size_t *order = NULL;
	int r;

	f->cfg = cfg;
	r = vp_sight_merge_each(f->merge, finalize_inode, f);
	/* The links' changes are made before any directory above them. */
	if (r == 0 && cfg->barrier)
		r = cfg->barrier(0, cfg->userdata);
	if (r == 0)
		r = vp_manifest_above_order(f->m, &order);
	for (size_t i = 0; r == 0 && i < f->m->n_above; i++)
		r = finalize_above(f, &f->m->above[order[i]]);
	if (r == 0 && cfg->barrier)
		r = cfg->barrier(0, cfg->userdata);
	free(order);
	f->cfg = outer;
	return r;
}

/* ---- locks ---- */

static int add_fd(struct vp_shard_lock *l, int fd)
{
	int *nv = realloc(l->fds, (l->n + 1) * sizeof(*nv));
	if (!nv) {
		close(fd);
		return -ENOMEM;
	}
	l->fds = nv;
	l->fds[l->n++] = fd;
	return 0;
}

static int lock_file(struct vp_shard_lock *l, int jdir_fd, const char *name, int how)
{
	int fd, r = vp_jdir_lock_file(jdir_fd, name, how, &fd);

	return r < 0 ? r : add_fd(l, fd);
}

/* fd: a read fd of a directory, handed over. */
static int lock_dir(struct vp_shard_lock *l, int fd, int how)
{
	if (flock(fd, how | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		return e == EAGAIN ? -EWOULDBLOCK : -e;
	}
	return add_fd(l, fd);
}

int vp_shard_lock(const struct vp_manifest *m, uint32_t k, int root_fd, int jdir_fd,
                  struct vp_shard_lock *l)
{
	char name[VP_SHARD_JNAME_MAX], hex[VP_RUN_ID_HEX];
	struct stat rst, st;
	int r, fd;

	*l = (struct vp_shard_lock)VP_SHARD_LOCK_INIT;
	if (fstat(root_fd, &rst) < 0)
		return -errno;
	/* The per-root lock file, shared (vp_jdir_lock's name). */
	vp_jdir_lock_name(name, (uint64_t)rst.st_dev, (uint64_t)rst.st_ino);
	r = lock_file(l, jdir_fd, name, LOCK_SH);
	vp_run_id_hex(&m->id, hex);
	snprintf(name, sizeof(name), "run-%s-%08" PRIx32 ".lock", hex, k);
	if (r == 0)
		r = lock_file(l, jdir_fd, name, LOCK_EX);
	/* The root and every directory above it, shared. */
	fd = r == 0 ? openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) : -1;
	if (r == 0 && fd < 0)
		r = -errno;
	for (int depth = 0; r == 0 && depth < 4096; depth++) {
		struct stat cur;
		if (fstat(fd, &cur) < 0) {
			r = -errno;
			close(fd);
			break;
		}
		int up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		r = lock_dir(l, fd, LOCK_SH);
		if (up < 0)
			break; /* a directory above we may not read: left out, as vp_tree_lock does */
		if (r < 0 || fstat(up, &st) < 0 || (st.st_dev == cur.st_dev && st.st_ino == cur.st_ino)) {
			close(up);
			break;
		}
		fd = up;
	}
	/* The above directories shared, our subtree buckets exclusive. */
	for (size_t i = 0; r == 0 && i < m->n_above; i++) {
		if (strcmp(m->above[i].path, ".") == 0)
			continue;
		fd = open_dir(root_fd, m->above[i].path, planned_dev(m, &rst, m->above[i].dev),
		              m->above[i].ino, 0, &st);
		if (fd >= 0)
			r = lock_dir(l, fd, LOCK_SH);
	}
	for (size_t i = 0; r == 0 && i < m->n_buckets; i++) {
		const struct vp_bucket *b = &m->buckets[i];
		if (b->shard != k || b->kind != VP_BUCKET_SUBTREE)
			continue;
		fd = open_dir(root_fd, b->path, planned_dev(m, &rst, b->dev), b->ino, 0, &st);
		if (fd >= 0)
			r = lock_dir(l, fd, LOCK_EX);
	}
	/* (A directory that cannot be opened is left out: the walk meets it
	 * and says why.) */
	if (r < 0)
		vp_shard_unlock(l);
	return r;
}

void vp_shard_unlock(struct vp_shard_lock *l)
{
	for (size_t i = 0; i < l->n; i++)
		close(l->fds[i]);
	free(l->fds);
	*l = (struct vp_shard_lock)VP_SHARD_LOCK_INIT;
}

/* ---- the run's journals ---- */

struct jsort {
	uint32_t k;
	uint64_t created;
	char name[VP_SHARD_JNAME_MAX];
};

static int cmp_j(const void *a, const void *b)
{
	const struct jsort *x = a, *y = b;
	/* finalize (K = ffffffff) first, then by shard, newest first */
	if (x->k != y->k)
		return x->k == VP_SHARD_FINALIZE ? -1 : y->k == VP_SHARD_FINALIZE ? 1
		       : x->k < y->k ? -1 : 1;
	if (x->created != y->created)
		return x->created > y->created ? -1 : 1;
	return strcmp(y->name, x->name);
}

int vp_run_journals(int jdir_fd, const struct vp_run_id *id, uint64_t root_ino, uint32_t only,
                    char (**ret)[VP_SHARD_JNAME_MAX], size_t *n_ret)
{
	struct vp_jinfo *v = NULL;
	struct jsort *s = NULL;
	size_t n = 0, cnt = 0;
	int r = vp_jdir_list(jdir_fd, true, 0, 0, &v, &n);

	if (r < 0)
		return r;
	s = calloc(n ? n : 1, sizeof(*s));
	if (!s) {
		vp_jdir_list_free(v, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (!v[i].is_shard || memcmp(v[i].run_id, id->b, 16) || v[i].ino != root_ino)
			continue;
		if (only != VP_SHARD_ALL && v[i].shard != only)
			continue;
		/* Rolled back already: nothing left to undo (an unreadable
		 * one is kept: its rollback refuses it, by name). */
		if (!v[i].unreadable && v[i].state == VP_JSTATE_ROLLED_BACK)
			continue;
		s[cnt].k = v[i].shard;
		s[cnt].created = v[i].created_ns;
		memcpy(s[cnt].name, v[i].name, sizeof(s[cnt].name));
		cnt++;
	}
	vp_jdir_list_free(v, n);
	qsort(s, cnt, sizeof(*s), cmp_j);
	char (*out)[VP_SHARD_JNAME_MAX] = calloc(cnt ? cnt : 1, sizeof(*out));
	if (!out) {
		free(s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cnt; i++)
		memcpy(out[i], s[i].name, VP_SHARD_JNAME_MAX);
	free(s);
	*ret = out;
	*n_ret = cnt;
	return 0;
}
