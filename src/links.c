/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Hard-link table: open addressing on (dev, ino), only for nlink > 1. */
#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "volperm/links.h"

struct slot {
	dev_t dev;
	ino_t ino;
	nlink_t nlink, seen;
	char *first;   /* first path seen, for the report; NULL once done */
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
	for (size_t i = 0; i < l->cap; i++)
		free(l->s[i].first);
	free(l->s);
	free(l);
}

static size_t hash(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4Full;
	return (size_t)(h ^ (h >> 29));
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

long vp_links_see(struct vp_links *l, dev_t dev, ino_t ino, nlink_t nlink, const char *relpath)
{
	struct slot *s;

	if ((l->n + 1) * 2 > l->cap && grow(l) < 0)
		return -ENOMEM;
	s = find(l, dev, ino);
	if (!s->used) {
		char *copy = strdup(relpath);
		if (!copy)
			return -ENOMEM;
		*s = (struct slot){ .dev = dev, .ino = ino, .nlink = nlink, .first = copy, .used = 1 };
		l->n++;
	}
	/* st_nlink may have changed since the first sighting: keep the largest,
	 * so a link added during the walk never makes an inode look complete. */
	if (nlink > s->nlink)
		s->nlink = nlink;
	return (long)++s->seen;
}

void vp_links_done(struct vp_links *l, dev_t dev, ino_t ino)
{
	struct slot *s = find(l, dev, ino);
	if (s && s->used) {
		s->done = 1;
		free(s->first);
		s->first = NULL;
	}
}

void vp_links_each_incomplete(const struct vp_links *l, vp_links_fn fn, void *userdata)
{
	for (size_t i = 0; i < l->cap; i++) {
		const struct slot *s = &l->s[i];
		if (s->used && !s->done)
			fn(s->first, s->seen, s->nlink, userdata);
	}
}
