/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The walker (see walk.h): fd-relative, physical, classifying every entry,
 * on one or more threads. It makes no decision about ownership and changes
 * nothing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "meta.h"
#include "mountinfo.h"
#include "pin.h"
#include "volperm/walk.h"

const char *vp_skip_name(enum vp_skip s)
{
	switch (s) {
	case VP_SKIP_NONE: return "none";
	case VP_SKIP_EXCLUDED: return "excluded";
	case VP_SKIP_MOUNT: return "mount-point";
	case VP_SKIP_SUBVOLUME: return "subvolume";
	case VP_SKIP_DEVICE: return "device";
	case VP_SKIP_CYCLE: return "fs-cycle";
	case VP_SKIP_EXTERNAL_LINK: return "external-hardlink";
	case VP_SKIP_CHANGED: return "changed";
	case VP_SKIP__MAX: break;
	}
	return "unknown";
}

bool vp_skip_is_safety(enum vp_skip s)
{
	return s == VP_SKIP_EXTERNAL_LINK || s == VP_SKIP_CHANGED;
}

/* What the mount table says of an entry, as the walk's skip reason. */
static enum vp_skip nested_skip(const struct vp_mounts *m, const struct stat *st, dev_t root_dev,
                                int dirfd, const char *name)
{
	switch (vp_mounts_nested(m, st, root_dev, dirfd, name)) {
	case VP_NESTED_MOUNT: return VP_SKIP_MOUNT;
	case VP_NESTED_SUBVOLUME: return VP_SKIP_SUBVOLUME;
	case VP_NESTED_NONE: break;
	}
	return VP_SKIP_NONE;
}

/* ---- xattr reads relative to the walk's fds ----
 * The ways to reach the inode (and their fallbacks) are meta's; the walk
 * only knows which fd stands for the entry. */

long vp_walk_getxattr(const struct vp_walk_entry *e, const char *name, void *buf, size_t size)
{
	if (e->fd >= 0)
		return vp_fd_getxattr_buf(e->fd, name, buf, size);
	if (e->dirfd < 0)
		return -EBADF;
	return vp_getxattr_at(e->dirfd, e->name, name, buf, size);
}

/* ---- the parallel walk ----
 *
 * A task is a subtree: a checked directory fd and its path. A worker walks
 * its task depth first with a stack of frames, one per open directory. When
 * another worker is idle, a worker hands it the next subdirectory it meets
 * as a new task instead of descending (a split).
 *
 * Postorder across tasks: a directory some of whose subtree went to another
 * worker gets a node counting what is still out (split tasks, and delayed
 * subdirectories). When its own listing is done and the count is not zero,
 * the directory is delayed: the node keeps its fd and path, and whichever
 * worker brings the count to zero delivers it, after its own barrier. The
 * same worker then counts the directory above, and so on up. */

enum { FD_KEEP = 16,        /* open directory fds per worker stack (VP_WALK_FDS_PER_JOB) */
       SPLIT_EVERY = 256,   /* entries a worker walks between two splits */
       NAMES_CHUNK = 32768 };
/* ... or this long, whichever comes first. On a local disk 256 entries take
 * about a millisecond, so the count decides; where each request is a round
 * trip (NFS, FUSE: 0.2-1 ms a request, several requests an entry) 256
 * entries are a second or more, and a count alone starved idle workers: 64
 * workers kept 2-3 requests in flight. Time keeps a latency-bound walk
 * splitting about as often as a local one. */
#define SPLIT_AFTER_NS 2000000L

struct anc {
	dev_t dev;
	ino_t ino;
};

/* A delayed directory's path, shared with the delayed directories above it:
 * each is a prefix of it. A chain of D delayed directories (a --jobs split
 * deep down delays every directory above it; a tree can be made so that
 * each level is split) held D copies of paths of up to D components, memory
 * quadratic in the depth (100 MB for 3,000 levels of 20-character names);
 * now one. A directory is delivered after every delayed directory below it
 * (postorder), so it may end the string at its own length then: those that
 * read further are gone, those still to come read less. */
struct spath {
	atomic_uint refs;
	char s[];
};

static struct spath *spath_new(const char *p, size_t len)
{
	struct spath *sp = malloc(sizeof(*sp) + len + 1);

	if (!sp)
		return NULL;
	atomic_init(&sp->refs, 1);
	memcpy(sp->s, p, len);
	sp->s[len] = 0;
	return sp;
}

static struct spath *spath_get(struct spath *sp)
{
	atomic_fetch_add(&sp->refs, 1);
	return sp;
}

static void spath_put(struct spath *sp)
{
	if (sp && atomic_fetch_sub(&sp->refs, 1) == 1)
		free(sp);
}

struct dnode {
	struct dnode *up;          /* counted in up->pending while delayed */
	struct dnode *prev, *next; /* every live node, for cleanup */
	unsigned pending;
	bool delayed;
	/* what is delivered, once delayed */
	int fd;
	struct stat st, parent_st;
	bool has_parent;
	struct spath *path;        /* its relpath is path->s[0, relpath_len) */
	size_t relpath_len, name_off;
};

struct task {
	struct task *next;
	int fd;
	struct stat st;
	char *relpath;
	size_t relpath_len;
	struct dnode *up;          /* the directory above, whose count includes us */
	struct anc *anc;           /* directories above the task, for cycles */
	size_t n_anc;
	/* A borrowed task is a part of another worker's listing of the
	 * directory fd: those names are ours to visit, the directory itself
	 * stays the other worker's to deliver (up is its node). */
	bool borrowed;
	char *names;
	size_t names_len;
};

struct walker {
	const struct vp_walk_cfg *cfg;
	struct vp_mounts mounts;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct task *queue;
	struct dnode *nodes;
	atomic_ulong splits;
	bool done;
	int err;
	atomic_bool stop;
	atomic_uint idle;
	atomic_bool queued;
};

struct frame {
	int fd;                    /* -1 while closed to save fds (FD_KEEP) */
	struct stat st;
	size_t path_len;           /* its relpath's length in worker.path */
	size_t name_off;
	char *names;               /* the listing: NUL-terminated names */
	size_t names_len, pos;
	struct dnode *node;
	bool borrowed;             /* see struct task */
	struct spath *shared;      /* a delayed subdirectory's path, which ours
	                            * begins (or NULL): for our node if we are
	                            * delayed too */
};

struct worker {
	struct walker *w;
	unsigned id;
	struct task *task;
	struct frame *stack;
	size_t depth, cap;
	char *path;
	size_t path_cap;
	unsigned long since_split;
	struct timespec split_at;  /* CLOCK_MONOTONIC of our last split (or start) */
};

static void set_error(struct walker *w, int r)
{
	pthread_mutex_lock(&w->mu);
	if (!w->err)
		w->err = r;
	atomic_store(&w->stop, true);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static bool stopped(struct walker *w)
{
	return atomic_load_explicit(&w->stop, memory_order_relaxed);
}

static void deliver(struct worker *k, struct vp_walk_entry *e)
{
	int r;

	if (stopped(k->w))
		return;
	e->worker = k->id;
	r = k->w->cfg->fn(e, k->w->cfg->userdata);
	if (r < 0)
		set_error(k->w, r);
}

static void barrier(struct worker *k)
{
	const struct vp_walk_cfg *cfg = k->w->cfg;
	int r;

	if (stopped(k->w) || !cfg->barrier)
		return;
	r = cfg->barrier(k->id, cfg->userdata);
	if (r < 0)
		set_error(k->w, r);
}

/* Read the whole listing (names only: every entry is stat'ed anyway). */
static int read_names(int fd, char **ret, size_t *ret_len)
{
	char buf[NAMES_CHUNK];
	char *names = NULL;
	size_t len = 0, cap = 0;

	for (;;) {
		ssize_t n = getdents64(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int r = -errno;
			free(names);
			return r;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			size_t l = strlen(d->d_name);
			off += d->d_reclen;
			if ((l == 1 && d->d_name[0] == '.') ||
			    (l == 2 && d->d_name[0] == '.' && d->d_name[1] == '.'))
				continue;
			if (len + l + 1 > cap) {
				size_t ncap = cap ? cap * 2 : 4096;
				while (ncap < len + l + 1)
					ncap *= 2;
				char *nn = realloc(names, ncap);
				if (!nn) {
					free(names);
					return -ENOMEM;
				}
				names = nn;
				cap = ncap;
			}
			memcpy(names + len, d->d_name, l + 1);
			len += l + 1;
		}
	}
	*ret = names;
	*ret_len = len;
	return 0;
}

static int path_reserve(struct worker *k, size_t need)
{
	if (need <= k->path_cap)
		return 0;
	size_t ncap = k->path_cap ? k->path_cap : 256;
	while (ncap < need)
		ncap *= 2;
	char *np = realloc(k->path, ncap);
	if (!np)
		return -ENOMEM;
	k->path = np;
	k->path_cap = ncap;
	return 0;
}

/* Append "/name" to the current path (just "name" below the root, whose
 * path is kept empty here and shown as "."). Returns the offset of name, or
 * -ENOMEM. */
static long path_push(struct worker *k, size_t at, const char *name)
{
	size_t l = strlen(name);
	bool root = at == 0;
	size_t off = root ? 0 : at + 1;

	if (path_reserve(k, off + l + 1) < 0)
		return -ENOMEM;
	if (!root)
		k->path[at] = '/';
	memcpy(k->path + off, name, l + 1);
	return (long)off;
}

/* With w->mu held. */
static void node_link_locked(struct walker *w, struct dnode *n)
{
	n->next = w->nodes;
	if (w->nodes)
		w->nodes->prev = n;
	w->nodes = n;
}

static struct dnode *node_alloc(void)
{
	struct dnode *n = calloc(1, sizeof(*n));

	if (n)
		n->fd = -1;
	return n;
}

static struct dnode *node_new(struct walker *w)
{
	struct dnode *n = node_alloc();

	if (!n)
		return NULL;
	pthread_mutex_lock(&w->mu);
	node_link_locked(w, n);
	pthread_mutex_unlock(&w->mu);
	return n;
}

/* With w->mu held. */
static void node_free_locked(struct walker *w, struct dnode *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		w->nodes = n->next;
	if (n->next)
		n->next->prev = n->prev;
	if (n->fd >= 0)
		close(n->fd);
	spath_put(n->path);
	free(n);
}

static void task_free(struct task *t)
{
	if (!t)
		return;
	if (t->fd >= 0)
		close(t->fd);
	free(t->relpath);
	free(t->anc);
	free(t->names);
	free(t);
}

static const struct stat *parent_of(const struct worker *k, size_t i)
{
	/* Frame 0 is the volume root (no parent) or a borrowed listing, which
	 * is never delivered. */
	return i > 0 ? &k->stack[i - 1].st : NULL;
}

/* A subtree (or a delayed directory) below `up` is finished, barrier done.
 * Count it, and deliver every delayed directory that this completes. */
static void complete(struct worker *k, struct dnode *up)
{
	struct walker *w = k->w;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		if (!up) {
			w->done = true; /* the root is delivered: nothing is left */
			pthread_cond_broadcast(&w->cv);
			break;
		}
		if (--up->pending > 0 || !up->delayed)
			break;
		pthread_mutex_unlock(&w->mu);
		up->path->s[up->relpath_len] = 0; /* see struct spath */
		struct vp_walk_entry e = {
			.kind = VP_WALK_ENTRY, .relpath = up->path->s, .relpath_len = up->relpath_len,
			.name = up->path->s + up->name_off, .dirfd = -1, .fd = up->fd, .st = &up->st,
			.parent_st = up->has_parent ? &up->parent_st : NULL,
		};
		deliver(k, &e);
		barrier(k);
		pthread_mutex_lock(&w->mu);
		struct dnode *next = up->up;
		node_free_locked(w, up);
		up = next;
	}
	pthread_mutex_unlock(&w->mu);
}

static bool is_cycle(const struct worker *k, const struct stat *st)
{
	for (size_t i = 0; i < k->depth; i++)
		if (k->stack[i].st.st_dev == st->st_dev && k->stack[i].st.st_ino == st->st_ino)
			return true;
	for (size_t i = 0; i < k->task->n_anc; i++)
		if (k->task->anc[i].dev == st->st_dev && k->task->anc[i].ino == st->st_ino)
			return true;
	return false;
}

/* Push a directory; its listing is read now, unless given (borrowed). */
static int push_frame(struct worker *k, int fd, const struct stat *st, size_t path_len,
                      size_t name_off, char **names, size_t names_len)
{
	struct frame f = { .fd = fd, .st = *st, .path_len = path_len, .name_off = name_off };
	int r = 0;

	if (k->depth == k->cap) {
		size_t ncap = k->cap ? k->cap * 2 : 32;
		struct frame *ns = realloc(k->stack, ncap * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		k->stack = ns;
		k->cap = ncap;
	}
	if (names) {
		f.names = *names;
		f.names_len = names_len;
		f.borrowed = true;
		*names = NULL;
	} else {
		r = read_names(fd, &f.names, &f.names_len);
	}
	if (r < 0)
		return r;
	k->stack[k->depth++] = f;
	/* Deep trees: keep only the newest FD_KEEP directory fds open. */
	if (k->depth > FD_KEEP) {
		struct frame *old = &k->stack[k->depth - 1 - FD_KEEP];
		if (old->fd >= 0) {
			close(old->fd);
			old->fd = -1;
		}
	}
	return 0;
}

/* Is a worker idle with nothing queued, and have we walked enough since our
 * last split? (Every task ends with a journal sync: keep them few.) */
static bool want_split(struct worker *k)
{
	struct walker *w = k->w;

	if (w->cfg->jobs < 2 || atomic_load_explicit(&w->idle, memory_order_relaxed) == 0 ||
	    atomic_load_explicit(&w->queued, memory_order_relaxed))
		return false;
	if (k->since_split >= SPLIT_EVERY ||
	    atomic_load_explicit(&w->splits, memory_order_relaxed) < 4ul * w->cfg->jobs)
		return true;
	/* Only asked while another worker waits: the clock (vDSO) is cheap. */
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - k->split_at.tv_sec) * 1000000000L + (now.tv_nsec - k->split_at.tv_nsec) >=
	       SPLIT_AFTER_NS;
}

/* Hand the second half of the unvisited names of our shallowest directory
 * that has some (the biggest piece of work we know of) to an idle worker. */
static int split(struct worker *k)
{
	struct walker *w = k->w;
	struct frame *f = NULL;
	size_t i, cut = 0;

	for (i = 0; i < k->depth; i++) {
		struct frame *c = &k->stack[i];
		size_t left = c->names_len - c->pos, n = 0;
		if (c->fd < 0 || left == 0)
			continue;
		for (size_t o = c->pos; o < c->names_len; o += strlen(c->names + o) + 1)
			n++;
		if (n < 2)
			continue;
		/* The (n/2)th name from pos starts the part we give away. */
		cut = c->pos;
		for (size_t m = 0; m < n - n / 2; m++)
			cut += strlen(c->names + cut) + 1;
		f = c;
		break;
	}
	if (!f)
		return 0;
	struct task *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 3);
	t->borrowed = true;
	t->names_len = f->names_len - cut;
	t->names = malloc(t->names_len);
	t->relpath = f->path_len ? strndup(k->path, f->path_len) : strdup("");
	t->relpath_len = f->path_len;
	t->n_anc = k->task->n_anc + i;
	t->anc = malloc((t->n_anc ? t->n_anc : 1) * sizeof(*t->anc));
	if (!f->node)
		f->node = node_new(w);
	if (t->fd < 0 || !t->names || !t->relpath || !t->anc || !f->node) {
		task_free(t);
		return -ENOMEM;
	}
	memcpy(t->names, f->names + cut, t->names_len);
	f->names_len = cut;
	if (k->task->n_anc)
		memcpy(t->anc, k->task->anc, k->task->n_anc * sizeof(*t->anc));
	for (size_t j = 0; j < i; j++)
		t->anc[k->task->n_anc + j] = (struct anc){ k->stack[j].st.st_dev, k->stack[j].st.st_ino };
	t->st = f->st;
	t->up = f->node;
	pthread_mutex_lock(&w->mu);
	f->node->pending++;
	t->next = w->queue;
	w->queue = t;
	atomic_fetch_add(&w->splits, 1);
	atomic_store(&w->queued, true);
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	k->since_split = 0;
	clock_gettime(CLOCK_MONOTONIC, &k->split_at);
	return 0;
}

/* Why a non-directory e of the top frame is not to be changed, if it is
 * not: into e->kind and e->skip. */
static void skip_nondir(struct worker *k, struct vp_walk_entry *e)
{
	const struct vp_walk_cfg *cfg = k->w->cfg;
	const struct vp_policy *p = cfg->policy;

	if (vp_policy_excluded(p, e->relpath, e->name)) {
		e->kind = VP_WALK_SKIP;
		e->skip = VP_SKIP_EXCLUDED;
	} else if (!p->cross_mounts &&
	           nested_skip(&k->w->mounts, e->st, cfg->root_st->st_dev, e->dirfd, e->name)) {
		e->kind = VP_WALK_SKIP; /* a bind-mounted file */
		e->skip = VP_SKIP_MOUNT;
	} else if ((S_ISCHR(e->st->st_mode) || S_ISBLK(e->st->st_mode)) && !p->include_devices) {
		e->kind = VP_WALK_SKIP;
		e->skip = VP_SKIP_DEVICE;
	}
}

/* A name visit_run() pinned: fd (-1 once closed: a directory's) and the
 * statx of it. */
struct pinned {
	const char *name;
	int fd;
	struct stat st;
	uint64_t btime;
};

/* One name of the top frame's listing. pre: its pin, when visit_run() has
 * just taken it (its stat is the entry's; vouched: the directory's ctime
 * was checked after it), else NULL (fstatat). */
static void visit(struct worker *k, const char *name, const struct pinned *pre, bool vouched)
{
	const struct vp_walk_cfg *cfg = k->w->cfg;
	const struct vp_policy *p = cfg->policy;
	struct frame *top = &k->stack[k->depth - 1];
	size_t at = top->path_len;
	long off = path_push(k, at, name);
	struct stat st;
	int fd;

	if (off < 0) {
		set_error(k->w, -ENOMEM);
		return;
	}
	struct vp_walk_entry e = {
		.kind = VP_WALK_ENTRY, .relpath = k->path, .relpath_len = (size_t)off + strlen(name),
		.name = k->path + off, .dirfd = top->fd, .fd = -1, .st = &st, .parent_st = &top->st,
	};
	k->since_split++;
	if (pre) {
		st = pre->st;
	} else if (fstatat(top->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		e.kind = VP_WALK_ERROR;
		e.err = errno;
		e.st = NULL;
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		skip_nondir(k, &e);
		if (pre && pre->fd >= 0) {
			e.pin_fd = pre->fd;
			e.pin_btime = pre->btime;
			e.pinned = vouched && e.kind == VP_WALK_ENTRY;
		}
		goto out;
	}
	if (cfg->forbid && st.st_dev == cfg->forbid->st_dev && st.st_ino == cfg->forbid->st_ino) {
		e.kind = VP_WALK_FORBIDDEN;
		goto out;
	}
	if (cfg->prune && cfg->prune(e.relpath, e.relpath_len, &st, cfg->userdata)) {
		k->path[at] = 0;
		return;
	}
	if (vp_policy_excluded(p, e.relpath, e.name)) {
		e.kind = VP_WALK_SKIP;
		e.skip = VP_SKIP_EXCLUDED;
		goto out;
	}
	if (!p->cross_mounts &&
	    (e.skip = nested_skip(&k->w->mounts, &st, cfg->root_st->st_dev, top->fd, name))) {
		e.kind = VP_WALK_SKIP;
		goto out;
	}
	if (is_cycle(k, &st)) {
		e.kind = VP_WALK_SKIP;
		e.skip = VP_SKIP_CYCLE;
		goto out;
	}
	/* Never through a symlink, and it must be the directory we stat'ed. */
	fd = openat(top->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int err = errno;
		if (err == ELOOP || err == ENOTDIR || err == ENOENT) {
			e.kind = VP_WALK_SKIP;
			e.skip = VP_SKIP_CHANGED;
		} else {
			e.kind = VP_WALK_ERROR;
			e.err = err;
		}
		goto out;
	}
	struct stat fst;
	if (fstat(fd, &fst) < 0 || fst.st_dev != st.st_dev || fst.st_ino != st.st_ino) {
		close(fd);
		e.kind = VP_WALK_SKIP;
		e.skip = VP_SKIP_CHANGED;
		goto out;
	}
	int r = push_frame(k, fd, &st, e.relpath_len, (size_t)off, NULL, 0);
	if (r < 0) {
		close(fd);
		e.kind = VP_WALK_ERROR;
		e.err = -r;
		goto out;
	}
	return; /* delivered at its postorder; the path stays extended */
out:
	deliver(k, &e);
	k->path[at] = 0;
}

/* cfg->pin: the next names of the top frame's listing, up to
 * VP_WALK_PIN_RUN of them, each pinned as it is first stat'ed (vp_pin_open:
 * an O_PATH open by pin.h's rules and a statx of the fd, where visit() has
 * one fstatat). Then one look at the directory's ctime covers the whole run:
 * a rename of the directory before that look moves it, so each name pinned
 * before it was reached through the directory its relpath names (the check
 * apply makes after each pin of its own, at one request for the run instead
 * of one for each name). If it moved, the entries go out unpinned and apply
 * pins them itself, from the root where it must. A name that turns out to
 * be a directory ends the run and is visited with the stat its pin took; a
 * name that cannot be pinned (gone, a mount point: EXDEV) ends it too and is
 * visited as without cfg->pin, which stats it again and says what it is.
 * Entries of the volume root have no directory to check (their relpath has
 * no directory in it), as in apply. */
static void visit_run(struct worker *k)
{
	const struct vp_walk_cfg *cfg = k->w->cfg;
	struct frame *top = &k->stack[k->depth - 1];
	struct pinned run[VP_WALK_PIN_RUN];
	const struct pinned *dir = NULL;
	const char *next = NULL;
	size_t n = 0;

	while (n < VP_WALK_PIN_RUN && top->pos < top->names_len) {
		struct pinned *q = &run[n];
		q->name = top->names + top->pos;
		top->pos += strlen(q->name) + 1;
		q->fd = vp_pin_open(top->fd, q->name, cfg->pin_flags, &q->st, &q->btime);
		if (q->fd < 0) {
			next = q->name;
			break;
		}
		if (S_ISDIR(q->st.st_mode)) {
			close(q->fd);
			q->fd = -1;
			next = q->name;
			dir = q;
			break;
		}
		n++;
	}
	bool vouched = n && (top->path_len == 0 || !vp_dir_changed(top->fd, &top->st));
	for (size_t i = 0; i < n; i++) {
		visit(k, run[i].name, &run[i], vouched);
		close(run[i].fd);
	}
	if (next)
		visit(k, next, dir, false);
}

/* ---- leaving a directory: its listing is done ----
 * leave() below, in steps. */

/* The task is finished: its root is delivered (or the error that kept us
 * from reading it), or it was a borrowed part of another worker's listing
 * (whose directory stays that worker's to deliver). What it delivered must
 * be journaled and changed (barrier) before the node above counts it: that
 * count is what lets another worker deliver the directory above. */
static void finish_task(struct worker *k)
{
	barrier(k);
	if (!stopped(k->w))
		complete(k, k->task->up);
}

/* Deep trees keep only the newest FD_KEEP directory fds open (push_frame),
 * so the frame below ours may have lost its fd; it needs one again to go on
 * with its listing, and as the dirfd of the entry we deliver. Reopened
 * through our "..", checked to be the directory we came from: one moved
 * while we were below it stops the walk (we must never go on in another
 * tree). */
static void reopen_parent_fd(struct worker *k, size_t i)
{
	struct frame *f = &k->stack[i], *b = &k->stack[i - 1];
	struct stat st;
	int fd;

	if (b->fd >= 0 || f->fd < 0)
		return;
	fd = openat(f->fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_dev != b->st.st_dev || st.st_ino != b->st.st_ino)) {
		close(fd);
		fd = -1;
		errno = ESTALE;
	}
	if (fd < 0)
		set_error(k->w, -errno);
	b->fd = fd;
}

/* With w->mu held: the directory of frame i waits for parts of its subtree
 * on other workers. The frame is popped now, so its node takes what
 * delivering the directory needs (fd, stats, path): whichever worker
 * finishes the last part delivers it from there (complete()). The path is
 * the one a delayed subdirectory already shares, when there is one (see
 * struct spath). Returns false when out of memory. */
static bool hand_over_to_node_locked(struct worker *k, size_t i)
{
	struct frame *f = &k->stack[i];
	struct dnode *n = f->node;
	const struct stat *ps = parent_of(k, i);

	n->delayed = true;
	n->fd = f->fd;
	f->fd = -1;
	n->st = f->st;
	n->has_parent = ps != NULL;
	if (ps)
		n->parent_st = *ps;
	n->relpath_len = f->path_len ? f->path_len : 1;
	if (f->shared && f->path_len) {
		n->path = f->shared; /* the frame's reference */
		f->shared = NULL;
	} else {
		n->path = spath_new(f->path_len ? k->path : ".", n->relpath_len);
	}
	n->name_off = f->name_off;
	return n->path != NULL;
}

/* With w->mu held, after hand_over_to_node_locked(): the directory above
 * must now wait for this delayed one, so the node of the frame below
 * counts it (given *spare when it has none yet; a task root's node above is
 * the task's, already counting the task). The frame below also takes a
 * reference to the path, which begins its own. Returns false when out of
 * memory (no node to count in). */
static bool count_in_parent_locked(struct worker *k, size_t i, struct dnode **spare)
{
	struct dnode *n = k->stack[i].node;
	struct frame *b;

	if (i == 0) {
		n->up = k->task->up;
		return true;
	}
	b = &k->stack[i - 1];
	if (!b->node && *spare) {
		node_link_locked(k->w, *spare);
		b->node = *spare;
		*spare = NULL;
	}
	n->up = b->node;
	if (n->up)
		n->up->pending++;
	if (n->path && !b->shared)
		b->shared = spath_get(n->path);
	return n->up != NULL;
}

/* Part of the subtree of frame i's directory went to other workers (its
 * node counts what is still out). Returns true when some is still out: the
 * directory is then delayed, for the worker that finishes the last part to
 * deliver; false when it is ours to deliver now (its node is gone). */
static bool delay_while_parts_out(struct worker *k, size_t i)
{
	struct walker *w = k->w;
	struct frame *f = &k->stack[i];
	bool delayed, ok = true;

	/* Our part below it must be finished before anyone else may
	 * deliver it. */
	barrier(k);
	/* If it must wait, the directory below counts it: have that node
	 * ready before taking the lock, which must not be dropped once this
	 * one is marked delayed (a finishing worker could deliver and free it
	 * at once). */
	struct dnode *spare = i > 0 && !k->stack[i - 1].node ? node_alloc() : NULL;
	pthread_mutex_lock(&w->mu);
	delayed = f->node->pending > 0;
	if (delayed) {
		ok = hand_over_to_node_locked(k, i);
		ok = count_in_parent_locked(k, i, &spare) && ok;
	} else {
		node_free_locked(w, f->node);
		f->node = NULL;
	}
	pthread_mutex_unlock(&w->mu);
	free(spare);
	if (!ok)
		set_error(w, -ENOMEM);
	return delayed;
}

/* Deliver the directory of frame i, which is complete: its listing done,
 * nothing below it out. The volume root's path is kept empty (see
 * path_push) and shown as ".". */
static void deliver_dir(struct worker *k, size_t i)
{
	struct frame *f = &k->stack[i];
	struct vp_walk_entry e = {
		.kind = VP_WALK_ENTRY, .relpath = k->path, .relpath_len = f->path_len,
		.name = k->path + f->name_off, .dirfd = i > 0 ? k->stack[i - 1].fd : -1,
		.fd = f->fd, .st = &f->st, .parent_st = parent_of(k, i),
	};

	if (!f->path_len)
		e.relpath = e.name = ".", e.relpath_len = 1;
	deliver(k, &e);
}

/* What the top frame holds (a delayed directory's fd and path went to its
 * node), and the path back to the frame below's. */
static void pop_frame(struct worker *k)
{
	struct frame *f = &k->stack[k->depth - 1];

	if (f->fd >= 0)
		close(f->fd);
	spath_put(f->shared);
	free(f->names);
	k->depth--;
	if (k->depth)
		k->path[k->stack[k->depth - 1].path_len] = 0;
}

/* The top frame's listing is done: deliver it (or delay it), and pop. */
static void leave(struct worker *k)
{
	size_t i = k->depth - 1;
	struct frame *f = &k->stack[i];

	if (f->borrowed) {
		/* Only frame 0 is ever borrowed: our part of the listing was
		 * the whole task. */
		finish_task(k);
		pop_frame(k);
		return;
	}
	if (i > 0)
		reopen_parent_fd(k, i);
	if (f->node && !stopped(k->w) && delay_while_parts_out(k, i)) {
		pop_frame(k);
		return;
	}
	deliver_dir(k, i);
	if (i == 0)
		finish_task(k);
	pop_frame(k);
}

static void run_task(struct worker *k, struct task *t)
{
	int r;

	k->task = t;
	k->depth = 0;
	if (path_reserve(k, t->relpath_len + 1) < 0) {
		set_error(k->w, -ENOMEM);
		return;
	}
	memcpy(k->path, t->relpath, t->relpath_len + 1);
	const char *slash = strrchr(t->relpath, '/');
	size_t name_off = slash ? (size_t)(slash - t->relpath) + 1 : 0;
	/* A walk with a prefix keeps its root's path: "prefix/name" below. */
	bool volume_root = !t->borrowed && !k->w->cfg->prefix;
	if (volume_root)
		k->path[0] = 0; /* see path_push */
	r = push_frame(k, t->fd, &t->st, volume_root ? 0 : t->relpath_len, name_off,
	               t->borrowed ? &t->names : NULL, t->names_len);
	if (r == 0 && t->borrowed)
		k->stack[0].node = t->up; /* splits from it count on its owner's node */
	if (r < 0) {
		struct vp_walk_entry e = {
			.kind = VP_WALK_ERROR, .err = -r, .relpath = t->relpath,
			.relpath_len = t->relpath_len, .name = t->relpath + name_off, .dirfd = -1,
			.fd = -1, .st = &t->st,
		};
		deliver(k, &e);
		finish_task(k);
		return; /* t->fd is closed by task_free */
	}
	t->fd = -1; /* the frame owns it now */
	while (k->depth) {
		if (want_split(k)) {
			r = split(k);
			if (r < 0)
				set_error(k->w, r);
		}
		struct frame *f = &k->stack[k->depth - 1];
		if (stopped(k->w)) {
			pop_frame(k); /* nothing more is delivered */
			continue;
		}
		if (f->pos < f->names_len && k->w->cfg->pin) {
			visit_run(k);
		} else if (f->pos < f->names_len) {
			const char *name = f->names + f->pos;
			f->pos += strlen(name) + 1;
			visit(k, name, NULL, false);
		} else {
			leave(k);
		}
	}
}

static void work(struct worker *k)
{
	struct walker *w = k->w;

	pthread_mutex_lock(&w->mu);
	while (!w->done && !stopped(w)) {
		struct task *t = w->queue;
		if (!t) {
			atomic_fetch_add(&w->idle, 1);
			pthread_cond_wait(&w->cv, &w->mu);
			atomic_fetch_sub(&w->idle, 1);
			continue;
		}
		w->queue = t->next;
		atomic_store(&w->queued, w->queue != NULL);
		pthread_mutex_unlock(&w->mu);
		run_task(k, t);
		task_free(t);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
}

static void *thread_main(void *arg)
{
	work(arg);
	return NULL;
}

static void worker_free(struct worker *k)
{
	free(k->stack);
	free(k->path);
}

/* The root itself: a non-directory is the whole walk; a directory is the
 * first task. Returns the task, or NULL when the walk is already over. */
static int root_task(struct walker *w, struct task **ret)
{
	const struct vp_walk_cfg *cfg = w->cfg;
	const char *rel = cfg->prefix ? cfg->prefix : ".", *slash = strrchr(rel, '/');
	struct vp_walk_entry e = {
		.kind = VP_WALK_ENTRY, .relpath = rel, .relpath_len = strlen(rel),
		.name = slash ? slash + 1 : rel, .dirfd = -1, .fd = cfg->root_fd, .st = cfg->root_st,
	};
	struct stat st;
	int fd, r;

	*ret = NULL;
	/* The path must still lead to the inode the caller pinned: a root
	 * renamed away and replaced (by a symlink, say) since is not the
	 * volume that was asked for. */
	if (lstat(cfg->root, &st) < 0 || st.st_dev != cfg->root_st->st_dev ||
	    st.st_ino != cfg->root_st->st_ino) {
		e.kind = VP_WALK_SKIP;
		e.skip = VP_SKIP_CHANGED;
	} else if (S_ISDIR(cfg->root_st->st_mode) && cfg->forbid &&
	           cfg->root_st->st_dev == cfg->forbid->st_dev &&
	           cfg->root_st->st_ino == cfg->forbid->st_ino) {
		e.kind = VP_WALK_FORBIDDEN;
	} else if ((S_ISCHR(cfg->root_st->st_mode) || S_ISBLK(cfg->root_st->st_mode)) &&
	           !cfg->policy->include_devices) {
		e.kind = VP_WALK_SKIP;
		e.skip = VP_SKIP_DEVICE;
	} else if (S_ISDIR(cfg->root_st->st_mode)) {
		/* A read fd of the very inode the caller pinned. */
		fd = openat(cfg->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_dev != cfg->root_st->st_dev ||
		                st.st_ino != cfg->root_st->st_ino)) {
			close(fd);
			fd = -1;
			errno = ESTALE;
		}
		if (fd >= 0) {
			struct task *t = calloc(1, sizeof(*t));
			if (!t || !(t->relpath = strdup(rel))) {
				free(t);
				close(fd);
				return -ENOMEM;
			}
			t->fd = fd;
			t->st = *cfg->root_st;
			t->relpath_len = strlen(rel);
			*ret = t;
			return 0;
		}
		e.kind = VP_WALK_ERROR;
		e.err = errno;
	}
	r = cfg->fn(&e, cfg->userdata);
	if (r == 0 && cfg->barrier)
		r = cfg->barrier(0, cfg->userdata);
	return r;
}

int vp_walk(const struct vp_walk_cfg *cfg)
{
	struct walker w = { .cfg = cfg };
	unsigned jobs = cfg->jobs ? cfg->jobs : 1;
	struct worker *ks = NULL;
	pthread_t *th = NULL;
	unsigned started = 0;
	struct task *t;
	int r;

	if (pthread_mutex_init(&w.mu, NULL) != 0)
		return -ENOMEM;
	if (pthread_cond_init(&w.cv, NULL) != 0) {
		pthread_mutex_destroy(&w.mu);
		return -ENOMEM;
	}
	/* Without a mount table (no /proc) st_dev and pin's RESOLVE_NO_XDEV
	 * still guard. A table there is but that we could not hold or read
	 * whole is another matter: a bind mount left out would be entered. */
	r = vp_mounts_load(&w.mounts, NULL, cfg->root);
	if (r == -ENOMEM || r == -EIO)
		goto out;
	ks = calloc(jobs, sizeof(*ks));
	th = calloc(jobs, sizeof(*th));
	if (!ks || !th) {
		r = -ENOMEM;
		goto out;
	}
	r = root_task(&w, &t);
	if (r < 0 || !t)
		goto out;
	w.queue = t;
	atomic_store(&w.queued, true);
	for (unsigned i = 0; i < jobs; i++)
		ks[i] = (struct worker){ .w = &w, .id = i, .since_split = SPLIT_EVERY };
	for (unsigned i = 1; i < jobs; i++) {
		if (pthread_create(&th[i], NULL, thread_main, &ks[i]) != 0)
			break; /* fewer workers; the walk stays correct */
		started++;
	}
	work(&ks[0]);
	for (unsigned i = 1; i <= started; i++)
		pthread_join(th[i], NULL);
	r = w.err;
	if (r == 0 && !w.done)
		r = -EIO; /* cannot happen: every task completes its count */
out:
	while (w.queue) {
		t = w.queue;
		w.queue = t->next;
		task_free(t);
	}
	while (w.nodes)
		node_free_locked(&w, w.nodes);
	if (ks)
		for (unsigned i = 0; i < jobs; i++)
			worker_free(&ks[i]);
	free(ks);
	free(th);
	vp_mounts_free(&w.mounts);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	return r;
}
