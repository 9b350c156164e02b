/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The walker: one fts(3) pass, physical, classifying every entry. It makes
 * no decision about ownership and changes nothing (see walk.h). */
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "volperm/walk.h"

const char *vp_skip_name(enum vp_skip s)
{
	switch (s) {
	case VP_SKIP_NONE: return "none";
	case VP_SKIP_EXCLUDED: return "excluded";
	case VP_SKIP_MOUNT: return "mount-point";
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

/* Mount points below the root, as (dev, ino) of what lstat shows there. A
 * bind mount of a directory of the same filesystem has the same st_dev as
 * its surroundings, so st_dev alone cannot see it; mountinfo can. */
struct mounts {
	dev_t *dev;
	ino_t *ino;
	size_t n;
};

static void unescape_octal(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') << 6 | (p[2] - '0') << 3 | (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = 0;
}

static void mounts_load(const char *root, struct mounts *m)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0, rl = strlen(root);

	memset(m, 0, sizeof(*m));
	if (!f)
		return; /* no /proc: st_dev and RESOLVE_NO_XDEV still guard */
	while (getline(&line, &cap, f) > 0) {
		/* id parent major:minor root mountpoint ... */
		char *save = NULL, *tok = strtok_r(line, " ", &save);
		for (int i = 0; tok && i < 4; i++)
			tok = strtok_r(NULL, " ", &save);
		if (!tok)
			continue;
		unescape_octal(tok);
		bool below = rl == 1 ? tok[0] == '/' && tok[1] : strncmp(tok, root, rl) == 0 && tok[rl] == '/';
		if (!below)
			continue;
		struct stat st;
		if (lstat(tok, &st) < 0)
			continue;
		dev_t *nd = realloc(m->dev, (m->n + 1) * sizeof(*nd));
		if (!nd)
			break;
		m->dev = nd;
		ino_t *ni = realloc(m->ino, (m->n + 1) * sizeof(*ni));
		if (!ni)
			break;
		m->ino = ni;
		m->dev[m->n] = st.st_dev;
		m->ino[m->n] = st.st_ino;
		m->n++;
	}
	free(line);
	fclose(f);
}

/* Is the entry at accpath (cwd-relative) a mount point? A different st_dev
 * says so at once. A bind mount from the same filesystem has the same
 * st_dev, and the same (dev, ino) as its source directory, so a match in
 * the mountinfo table is confirmed with statx's STATX_ATTR_MOUNT_ROOT: the
 * source itself is an ordinary directory of the volume. */
static bool is_mount(const struct mounts *m, const struct stat *st, dev_t root_dev,
                     const char *accpath)
{
	if (st->st_dev != root_dev)
		return true;
	for (size_t i = 0; i < m->n; i++)
		if (m->dev[i] == st->st_dev && m->ino[i] == st->st_ino) {
			struct statx sx;
			if (statx(AT_FDCWD, accpath, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, 0, &sx) == 0 &&
			    (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
				return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
			return true; /* cannot tell: be safe, do not enter */
		}
	return false;
}

#define SKIPPED 1 /* fts_number mark: a directory we skipped at preorder */

int vp_walk(const char *root, const struct stat *root_st, const struct vp_policy *p,
            const struct stat *forbid, vp_walk_fn fn, void *userdata)
{
	char *argv[] = { (char *)root, NULL };
	size_t rl = strlen(root);
	size_t skip = rl > 1 ? rl + 1 : rl; /* "/" is the only root ending in '/' */
	struct mounts mounts;
	FTSENT *f;
	FTS *fts;
	int r = 0, cwd;

	/* fts in chdir mode changes the working directory; put it back. */
	cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	mounts_load(root, &mounts);
	fts = fts_open(argv, FTS_PHYSICAL, NULL);
	if (!fts) {
		r = -errno;
		goto out;
	}
	for (;;) {
		errno = 0;
		f = fts_read(fts);
		if (!f) {
			/* NULL with errno 0 is the end; with errno, a failure. */
			if (errno)
				r = -errno;
			break;
		}
		struct vp_walk_entry e = {
			.kind = VP_WALK_ENTRY,
			.path = f->fts_path,
			.accpath = f->fts_accpath,
			.st = f->fts_statp,
			.name = f->fts_name,
			.parent_st = f->fts_level > FTS_ROOTLEVEL ? f->fts_parent->fts_statp : NULL,
		};
		bool top = f->fts_level == FTS_ROOTLEVEL;
		if (top) {
			e.relpath = ".";
			e.relpath_len = 1;
		} else {
			e.relpath = f->fts_path + skip;
			e.relpath_len = f->fts_pathlen - skip;
		}
		switch (f->fts_info) {
		case FTS_D:
			if (forbid && f->fts_statp->st_dev == forbid->st_dev &&
			    f->fts_statp->st_ino == forbid->st_ino) {
				e.kind = VP_WALK_FORBIDDEN;
				f->fts_number = SKIPPED;
				fts_set(fts, f, FTS_SKIP);
				break;
			}
			if (top)
				continue;
			if (vp_policy_excluded(p, e.relpath, f->fts_name)) {
				e.kind = VP_WALK_SKIP;
				e.skip = VP_SKIP_EXCLUDED;
			} else if (!p->cross_mounts && is_mount(&mounts, f->fts_statp, root_st->st_dev, f->fts_accpath)) {
				e.kind = VP_WALK_SKIP;
				e.skip = VP_SKIP_MOUNT;
			} else {
				continue; /* delivered in postorder */
			}
			f->fts_number = SKIPPED;
			fts_set(fts, f, FTS_SKIP);
			break;
		case FTS_DP:
			if (f->fts_number == SKIPPED)
				continue;
			break;
		case FTS_DC:
			e.kind = VP_WALK_SKIP;
			e.skip = VP_SKIP_CYCLE;
			break;
		case FTS_DNR:
		case FTS_ERR:
		case FTS_NS:
			e.kind = VP_WALK_ERROR;
			e.err = f->fts_errno ? f->fts_errno : EIO;
			if (f->fts_info == FTS_NS)
				e.st = NULL;
			break;
		case FTS_F:
		case FTS_SL:
		case FTS_SLNONE:
		case FTS_DEFAULT:
			if (!top && vp_policy_excluded(p, e.relpath, f->fts_name)) {
				e.kind = VP_WALK_SKIP;
				e.skip = VP_SKIP_EXCLUDED;
			} else if (!top && !p->cross_mounts &&
			           is_mount(&mounts, f->fts_statp, root_st->st_dev, f->fts_accpath)) {
				e.kind = VP_WALK_SKIP; /* a bind-mounted file */
				e.skip = VP_SKIP_MOUNT;
			} else if ((S_ISCHR(f->fts_statp->st_mode) || S_ISBLK(f->fts_statp->st_mode)) &&
			           !p->include_devices) {
				e.kind = VP_WALK_SKIP;
				e.skip = VP_SKIP_DEVICE;
			}
			break;
		default:
			/* FTS_DOT and FTS_NSOK cannot occur with these options. */
			e.kind = VP_WALK_ERROR;
			e.err = EIO;
			break;
		}
		/* The root must be the inode the caller resolved and pinned. */
		if (top && e.st && (e.st->st_dev != root_st->st_dev || e.st->st_ino != root_st->st_ino)) {
			e.kind = VP_WALK_SKIP;
			e.skip = VP_SKIP_CHANGED;
		}
		r = fn(&e, userdata);
		if (r < 0)
			break;
	}
	if (fts_close(fts) < 0 && r == 0)
		r = -errno;
out:
	if (cwd >= 0) {
		if (fchdir(cwd) < 0 && r == 0)
			r = -errno;
		close(cwd);
	}
	free(mounts.dev);
	free(mounts.ino);
	return r;
}
