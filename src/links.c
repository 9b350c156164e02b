/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Hard-link table (see links.h): open addressing on (dev, ino), only for
 * nlink > 1, each slot with the distinct links seen (parent dev/ino and a
 * 64-bit hash of the name). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "volperm/links.h"

struct link_id {
	uint64_t parent_dev, parent_ino, name_hash;
};

struct slot {
	dev_t dev;
	ino_t ino;
	nlink_t nlink;
	struct timespec ctime;  /* at first sighting */
	char *first;            /* first path seen, for the report; NULL once done */
	struct link_id *seen;
	size_t n_seen;
	int used, done;
};

struct vp_links {
	struct slot *s;
	size_t cap, n;
};

int vp_links_new(struct vp_links **ret)
{
	struct vp_links *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	*ret = l;
	return 0;
}

void vp_links_free(struct vp_links *l)
{
	if (!l)
		return;
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

long vp_links_see(struct vp_links *l, const struct stat *st, const struct stat *parent,
                  const char *name, const char *relpath)
{
	struct link_id id = {
		.parent_dev = parent ? (uint64_t)parent->st_dev : 0,
		.parent_ino = parent ? (uint64_t)parent->st_ino : 0,
		.name_hash = name_hash(name),
	};
	struct slot *s;

	if ((l->n + 1) * 2 > l->cap && grow(l) < 0)
		return -ENOMEM;
	s = find(l, st->st_dev, st->st_ino);
	if (!s->used) {
		char *copy = strdup(relpath);
		if (!copy)
			return -ENOMEM;
		*s = (struct slot){ .dev = st->st_dev, .ino = st->st_ino, .nlink = st->st_nlink,
			            .ctime = st->st_ctim, .first = copy, .used = 1 };
		l->n++;
	}
	if (s->done)
		return 0; /* already changed (its ctime moved because of us) */
	if (st->st_ctim.tv_sec != s->ctime.tv_sec || st->st_ctim.tv_nsec != s->ctime.tv_nsec)
		return -ESTALE;
	/* st_nlink may have changed since the first sighting: keep the largest,
	 * so a link added during the walk never makes an inode look complete. */
	if (st->st_nlink > s->nlink)
		s->nlink = st->st_nlink;
	for (size_t i = 0; i < s->n_seen; i++)
		if (memcmp(&s->seen[i], &id, sizeof(id)) == 0)
			return (long)s->n_seen; /* the same link again */
	struct link_id *nv = realloc(s->seen, (s->n_seen + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	nv[s->n_seen++] = id;
	s->seen = nv;
	return (long)s->n_seen;
}

void vp_links_done(struct vp_links *l, dev_t dev, ino_t ino)
{
	struct slot *s = find(l, dev, ino);
	if (s && s->used) {
		s->done = 1;
		free(s->first);
		s->first = NULL;
		free(s->seen);
		s->seen = NULL;
	}
}

void vp_links_each_incomplete(const struct vp_links *l, vp_links_fn fn, void *userdata)
{
	for (size_t i = 0; i < l->cap; i++) {
		const struct slot *s = &l->s[i];
		if (s->used && !s->done)
			fn(s->first, (nlink_t)s->n_seen, s->nlink, userdata);
	}
}
