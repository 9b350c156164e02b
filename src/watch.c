/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Rename detection for multiply linked inodes (see watch.h): one inotify
 * instance, and the set of watch descriptors that have had an event. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "watch.h"

/* Only events that say a name of the inode (or its link count) changed;
 * IN_ATTRIB also comes with chmod, chown and xattr changes by someone else,
 * which is reason enough to leave the inode alone too. */
#define WATCH_MASK (IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF)

struct vp_watch {
	int fd;              /* inotify, -1 until the first watch */
	unsigned long epoch; /* IN_Q_OVERFLOW seen so far */
	int *moved;          /* open addressing set of wds with events; 0 = free */
	size_t cap, n;
};

int vp_watch_new(struct vp_watch **ret)
{
	struct vp_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = -1;
	*ret = w;
	return 0;
}

void vp_watch_free(struct vp_watch *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->moved);
	free(w);
}

static size_t slot_of(int wd, size_t cap)
{
	return ((size_t)(unsigned)wd * 0x9E3779B1u) & (cap - 1);
}

static bool set_has(const struct vp_watch *w, int wd)
{
	if (!w->cap)
		return false;
	for (size_t i = slot_of(wd, w->cap);; i = (i + 1) & (w->cap - 1)) {
		if (w->moved[i] == wd)
			return true;
		if (w->moved[i] == 0)
			return false;
	}
}

static int set_add(struct vp_watch *w, int wd)
{
	if (set_has(w, wd))
		return 0;
	if ((w->n + 1) * 2 > w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 64;
		int *nm = calloc(ncap, sizeof(*nm));
		if (!nm)
			return -ENOMEM;
		for (size_t i = 0; i < w->cap; i++) {
			if (!w->moved[i])
				continue;
			size_t j = slot_of(w->moved[i], ncap);
			while (nm[j])
				j = (j + 1) & (ncap - 1);
			nm[j] = w->moved[i];
		}
		free(w->moved);
		w->moved = nm;
		w->cap = ncap;
	}
	size_t i = slot_of(wd, w->cap);
	while (w->moved[i])
		i = (i + 1) & (w->cap - 1);
	w->moved[i] = wd;
	w->n++;
	return 0;
}

int vp_watch_begin(struct vp_watch *w, struct vp_watch_token *tok)
{
	tok->wd = -1;
	if (w->fd < 0) {
		w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (w->fd < 0)
			return -errno;
	}
	tok->epoch = w->epoch;
	return 0;
}

int vp_watch_add(const struct vp_watch *w, int dirfd, const char *name, const struct stat *st,
                 struct vp_watch_token *tok)
{
	char path[64];
	struct stat now;
	int fd, wd, r;

	tok->wd = -1;
	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESTALE : -errno;
	if (fstat(fd, &now) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
		close(fd);
		return -ESTALE;
	}
	/* inotify_add_watch() has no *at() form; the fd's magic link is the
	 * only way to name exactly the inode just checked. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	wd = inotify_add_watch(w->fd, path, WATCH_MASK);
	r = wd < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return r;
	tok->wd = wd;
	return 0;
}

void vp_watch_remove(const struct vp_watch *w, struct vp_watch_token *tok)
{
	if (tok->wd >= 0 && w->fd >= 0)
		(void)inotify_rm_watch(w->fd, tok->wd);
	tok->wd = -1;
}

int vp_watch_sync_dir(int dirfd)
{
	/* Room for one entry of any name, or getdents() says EINVAL (after
	 * taking the lock, but do not rely on that). At the end of the
	 * listing it returns 0, and the walker has read it all already. */
	char buf[sizeof(struct dirent64) + 256] __attribute__((aligned(8)));

	for (;;) {
		if (getdents64(dirfd, buf, sizeof(buf)) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* Read every queued event into the set. */
static int drain(struct vp_watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	if (w->fd < 0)
		return 0;
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		for (ssize_t off = 0; off < n;) {
			const struct inotify_event *ev = (const void *)(buf + off);
			off += (ssize_t)(sizeof(*ev) + ev->len);
			if (ev->mask & IN_Q_OVERFLOW) {
				w->epoch++;
				continue;
			}
			/* IN_IGNORED alone: a watch went away (ours, removed
			 * once its inode was decided). */
			if (ev->wd > 0 && (ev->mask & WATCH_MASK)) {
				int r = set_add(w, ev->wd);
				if (r < 0)
					return r;
			}
		}
	}
}

int vp_watch_changed(struct vp_watch *w, const struct vp_watch_token *tok)
{
	int r = drain(w);
	if (r < 0)
		return r;
	if (tok->wd < 0)
		return 1;
	return w->epoch != tok->epoch || set_has(w, tok->wd);
}
