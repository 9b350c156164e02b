/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Hard-link table (see links.h): open addressing on (dev, ino), only for
 * nlink > 1, each slot with the distinct links seen (parent dev/ino and a
 * 64-bit hash of the name) and the inotify watch on the inode. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "links.h"
#include "watch.h"

struct link_id {
	uint64_t parent_dev, parent_ino, name_hash;
};

struct slot {
	dev_t dev;
	ino_t ino;
	nlink_t nlink;          /* the largest seen */
	struct timespec ctime;  /* at the first counted sighting */
	char *first;            /* first path seen, for the report; NULL once done */
	struct link_id *seen;
	size_t n_seen;
	struct vp_watch_token tok;
	int used, done;
};

struct vp_links {
	struct slot *s;
	size_t cap, n;
	struct vp_watch *watch;
	pthread_mutex_t mu; /* the table and the watch's queue */
};

int vp_links_new(struct vp_links **ret)
{
	struct vp_links *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	if (vp_watch_new(&l->watch) < 0) {
		free(l);
		return -ENOMEM;
	}
	pthread_mutex_init(&l->mu, NULL);
	*ret = l;
	return 0;
}

void vp_links_free(struct vp_links *l)
{
	if (!l)
		return;
	vp_watch_free(l->watch);
	pthread_mutex_destroy(&l->mu);
	for (size_t i = 0; i < l->cap; i++) {
		free(l->s[i].first);
		free(l->s[i].seen);
	}
	free(l->s);
	free(l);
}

static size_t hash(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4Full;
	return (size_t)(h ^ (h >> 29));
}

static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static struct slot *find(const struct vp_links *l, dev_t dev, ino_t ino)
{
	if (!l->cap)
		return NULL;
	for (size_t i = hash(dev, ino) & (l->cap - 1);; i = (i + 1) & (l->cap - 1)) {
		struct slot *s = &l->s[i];
		if (!s->used || (s->dev == dev && s->ino == ino))
			return s;
	}
}

static int grow(struct vp_links *l)
{
	size_t ncap = l->cap ? l->cap * 2 : 1024;
	struct vp_links nl = { .s = calloc(ncap, sizeof(struct slot)), .cap = ncap };

	if (!nl.s)
		return -ENOMEM;
	for (size_t i = 0; i < l->cap; i++)
		if (l->s[i].used)
			*find(&nl, l->s[i].dev, l->s[i].ino) = l->s[i];
	free(l->s);
	l->s = nl.s;
	l->cap = ncap;
	return 0;
}

/* The inode is decided: no more watching, no more links to keep. */
static void settle(struct vp_links *l, struct slot *s)
{
	s->done = 1;
	vp_watch_remove(l->watch, &s->tok);
	free(s->first);
	s->first = NULL;
	free(s->seen);
	s->seen = NULL;
}

static bool same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Look the name up again, now that the watch is set, and wait for the
 * renames in progress in its directory (see watch.h). Returns 0, -ESTALE
 * (it is not the inode any more), or -errno. */
static int sight(int dirfd, const char *name, const struct stat *st, struct stat *now)
{
	if (fstatat(dirfd, name, now, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? -ESTALE : -errno;
	if (!same_inode(now, st))
		return -ESTALE;
	return vp_watch_sync_dir(dirfd);
}

/* The slot of st's inode, made on first sight. */
static int slot_get(struct vp_links *l, const struct stat *st, const char *relpath,
                    struct slot **ret)
{
	struct slot *s;

	if ((l->n + 1) * 2 > l->cap && grow(l) < 0)
		return -ENOMEM;
	s = find(l, st->st_dev, st->st_ino);
	if (!s->used) {
		char *copy = strdup(relpath);
		if (!copy)
			return -ENOMEM;
		*s = (struct slot){ .dev = st->st_dev, .ino = st->st_ino, .nlink = st->st_nlink,
			            .first = copy, .tok = { .wd = -1 }, .used = 1 };
		l->n++;
	}
	*ret = s;
	return 0;
}

/* Count one sighting (*now, made after the watch): under the lock. */
static int count(struct vp_links *l, struct slot *s, const struct link_id *id,
                 const struct stat *now)
{
	size_t i;
	int r;

	/* Kept besides the watch: it also sees renames made behind the VFS's
	 * back (NFS server, FUSE backing directory) when ctime is fine enough. */
	if (s->n_seen == 0)
		s->ctime = now->st_ctim;
	else if (now->st_ctim.tv_sec != s->ctime.tv_sec || now->st_ctim.tv_nsec != s->ctime.tv_nsec) {
		settle(l, s);
		return VP_LINKS_UNSTABLE;
	}
	/* Keep the largest link count, so a link added during the walk never
	 * makes an inode look complete. */
	if (now->st_nlink > s->nlink)
		s->nlink = now->st_nlink;
	for (i = 0; i < s->n_seen; i++)
		if (memcmp(&s->seen[i], id, sizeof(*id)) == 0)
			break; /* the same link again */
	if (i == s->n_seen) {
		struct link_id *nv = realloc(s->seen, (s->n_seen + 1) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		nv[s->n_seen++] = *id;
		s->seen = nv;
	}
	if ((nlink_t)s->n_seen < s->nlink)
		return VP_LINKS_WAIT;
	r = vp_watch_changed(l->watch, &s->tok);
	settle(l, s);
	if (r < 0)
		return r;
	return r ? VP_LINKS_UNSTABLE : VP_LINKS_DUE;
}

int vp_links_see(struct vp_links *l, int dirfd, const char *name, const struct stat *parent,
                 const struct stat *st, const char *relpath, bool allow_external,
                 struct stat *now)
{
	struct link_id id = {
		.parent_dev = parent ? (uint64_t)parent->st_dev : 0,
		.parent_ino = parent ? (uint64_t)parent->st_ino : 0,
		.name_hash = name_hash(name),
	};
	struct vp_watch_token tok = { .wd = -1 };
	struct slot *s;
	bool watched;
	int r;

	*now = *st;
	pthread_mutex_lock(&l->mu);
	r = slot_get(l, st, relpath, &s);
	if (r < 0)
		goto out;
	if (s->done) {
		r = VP_LINKS_DONE;
		goto out;
	}
	if (allow_external) {
		settle(l, s); /* its first link decides; the others find it done */
		r = VP_LINKS_DUE;
		goto out;
	}
	if (dirfd < 0) { /* the root: its one link, never a complete count */
		r = count(l, s, &id, now);
		goto out;
	}
	watched = s->tok.wd >= 0;
	if (!watched)
		r = vp_watch_begin(l->watch, &tok);
	pthread_mutex_unlock(&l->mu);

	/* The lookups, out of the lock: other workers go on meanwhile. A
	 * sighting counts only if the watch was set before it: by us just
	 * now, or by whoever recorded it in the slot before we looked. */
	if (r == 0 && !watched)
		r = vp_watch_add(l->watch, dirfd, name, st, &tok);
	if (r == 0)
		r = sight(dirfd, name, st, now);

	pthread_mutex_lock(&l->mu);
	s = find(l, st->st_dev, st->st_ino); /* the table may have grown */
	if (s->done) {
		/* Decided meanwhile; a watch we added may be a new one (the
		 * slot's went with the decision). */
		vp_watch_remove(l->watch, &tok);
		r = VP_LINKS_DONE;
		goto out;
	}
	if (r < 0) {
		vp_watch_remove(l->watch, &tok);
		settle(l, s);
		r = r == -ESTALE ? VP_LINKS_UNSTABLE : r;
		goto out;
	}
	if (s->tok.wd < 0)
		s->tok = tok;
	else if (tok.wd >= 0 && tok.epoch < s->tok.epoch)
		s->tok.epoch = tok.epoch; /* same inode, same wd: the earlier start counts */
	r = count(l, s, &id, now);
out:
	pthread_mutex_unlock(&l->mu);
	return r;
}

bool vp_links_known(struct vp_links *l, dev_t dev, ino_t ino)
{
	struct slot *s;
	bool r;

	pthread_mutex_lock(&l->mu);
	s = find(l, dev, ino);
	r = s && s->used;
	pthread_mutex_unlock(&l->mu);
	return r;
}

void vp_links_each_incomplete(const struct vp_links *l, vp_links_fn fn, void *userdata)
{
	for (size_t i = 0; i < l->cap; i++) {
		const struct slot *s = &l->s[i];
		if (s->used && !s->done)
			fn(s->first, (nlink_t)s->n_seen, s->nlink, userdata);
	}
}
