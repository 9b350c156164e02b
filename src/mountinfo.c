/* SPDX-License-Identifier: GPL-2.0-or-later */
/* /proc/self/mountinfo and the mount-point decisions of the walk (see
 * mountinfo.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mountinfo.h"

/* The kernel writes space, tab, newline and backslash in paths as \ooo
 * (three octal digits), so that a line splits on spaces; anything else
 * after a backslash is kept as it is. */
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

/* The next field of *p, NUL-terminated in place, or NULL when none is left.
 * The kernel separates fields by exactly one space: an empty field is a
 * malformed line, and NULL too. */
static char *next_field(char **p)
{
	char *s = *p, *e;

	if (!*s || *s == ' ')
		return NULL;
	e = strchr(s, ' ');
	if (e) {
		*e = 0;
		*p = e + 1;
	} else {
		*p = s + strlen(s);
	}
	return s;
}

/* Decimal digits only: strtoull alone would take signs and blanks. */
static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*v = x;
	return 0;
}

static int parse_devno(char *s, unsigned *major, unsigned *minor)
{
	char *colon = strchr(s, ':');
	uint64_t a, b;

	if (!colon)
		return -EINVAL;
	*colon = 0;
	if (parse_u64(s, &a) < 0 || parse_u64(colon + 1, &b) < 0 || a > 0xffffffffu || b > 0xffffffffu)
		return -EINVAL;
	*major = (unsigned)a;
	*minor = (unsigned)b;
	return 0;
}

int vp_mountinfo_parse_line(char *line, struct vp_mountinfo *m)
{
	char *p = line, *f[6], *opt, *first_opt = NULL;
	size_t len = strlen(line);

	if (len && line[len - 1] == '\n')
		line[len - 1] = 0;
	/* id parent major:minor root mount-point options */
	for (int i = 0; i < 6; i++)
		if (!(f[i] = next_field(&p)))
			return -EINVAL;
	if (parse_u64(f[0], &m->id) < 0 || parse_u64(f[1], &m->parent_id) < 0 ||
	    parse_devno(f[2], &m->major, &m->minor) < 0)
		return -EINVAL;
	/* Zero or more optional fields up to a lone "-". They stay one string:
	 * the NUL that next_field put between two of them becomes a space
	 * again. */
	for (;;) {
		if (!(opt = next_field(&p)))
			return -EINVAL; /* no "-": not a mountinfo line */
		if (strcmp(opt, "-") == 0)
			break;
		if (first_opt)
			opt[-1] = ' ';
		else
			first_opt = opt;
	}
	m->optional = first_opt ? first_opt : "";
	/* fstype source super-options */
	char *fstype = next_field(&p), *source = next_field(&p), *super = next_field(&p);
	if (!fstype || !source || !super)
		return -EINVAL;
	unescape_octal(f[3]);
	unescape_octal(f[4]);
	unescape_octal(fstype);
	unescape_octal(source);
	m->root = f[3];
	m->mount_point = f[4];
	m->options = f[5];
	m->fstype = fstype;
	m->source = source;
	m->super_options = super;
	return 0;
}

int vp_mountinfo_each(const char *path, vp_mountinfo_fn fn, void *userdata)
{
	FILE *f = fopen(path ? path : "/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int r = 0;

	if (!f)
		return -errno;
	while (r == 0 && getline(&line, &cap, f) > 0) {
		struct vp_mountinfo m;
		if (vp_mountinfo_parse_line(line, &m) == 0)
			r = fn(&m, userdata);
	}
	if (r == 0 && ferror(f))
		r = -EIO;
	free(line);
	fclose(f);
	return r;
}

/* ---- the mount points below a root ---- */

struct load {
	struct vp_mounts *m;
	size_t cap;
	const char *root;
	size_t root_len;
};

/* Strictly below root: the root itself is the volume, not a nested mount,
 * and "/srv/volume2" is not below "/srv/volume". */
static bool below(const char *root, size_t rl, const char *path)
{
	if (rl == 1)
		return path[0] == '/' && path[1];
	return strncmp(path, root, rl) == 0 && path[rl] == '/';
}

static int add_mount(const struct vp_mountinfo *mi, void *userdata)
{
	struct load *l = userdata;
	struct vp_mounts *m = l->m;
	struct stat st;

	if (!below(l->root, l->root_len, mi->mount_point))
		return 0;
	if (lstat(mi->mount_point, &st) < 0)
		return 0;
	if (m->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		struct vp_mount_key *nv = realloc(m->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		m->v = nv;
		l->cap = ncap;
	}
	m->v[m->n++] = (struct vp_mount_key){ st.st_dev, st.st_ino };
	return 0;
}

int vp_mounts_load(struct vp_mounts *m, const char *path, const char *root)
{
	struct load l = { .m = m, .root = root, .root_len = strlen(root) };
	int r;

	m->v = NULL;
	m->n = 0;
	r = vp_mountinfo_each(path, add_mount, &l);
	if (r < 0)
		vp_mounts_free(m);
	return r;
}

void vp_mounts_free(struct vp_mounts *m)
{
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

enum vp_nested vp_mounts_nested(const struct vp_mounts *m, const struct stat *st, dev_t root_dev,
                                int dirfd, const char *name)
{
	struct statx sx;

	if (st->st_dev != root_dev) {
		/* A btrfs subvolume has an st_dev of its own but is reached
		 * without any mount (same vfsmount, so RESOLVE_NO_XDEV would
		 * let us in): the st_dev rule is what keeps the walk on one
		 * filesystem tree, as find -xdev does. */
		if (S_ISDIR(st->st_mode) &&
		    statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, 0, &sx) == 0 &&
		    (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
		    !(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
			return VP_NESTED_SUBVOLUME;
		return VP_NESTED_MOUNT;
	}
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].dev == st->st_dev && m->v[i].ino == st->st_ino) {
			/* The bind mount and its source share (dev, ino); only
			 * the mount is a mount root. */
			if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, 0, &sx) == 0 &&
			    (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
				return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) ? VP_NESTED_MOUNT
				                                                  : VP_NESTED_NONE;
			return VP_NESTED_MOUNT; /* cannot tell: be safe, do not enter */
		}
	return VP_NESTED_NONE;
}
