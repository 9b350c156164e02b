/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The decision function shared by plan, check and apply. It is pure so that
 * the dry run cannot disagree with the real run, and so it can be tested as
 * a table without a filesystem. */
#include "volperm/decide.h"

static uint32_t map_id(const struct vp_idmap *m, size_t n, uint32_t id, bool has_default,
                       uint32_t def)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].from == id)
			return m[i].to;
	return has_default ? def : id;
}

mode_t vp_mode_after_chown(mode_t mode)
{
	if (S_ISDIR(mode))
		return mode;
	mode &= ~(mode_t)S_ISUID;
	if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		mode &= ~(mode_t)S_ISGID;
	return mode;
}

void vp_decide(const struct vp_policy *p, const struct stat *st, struct vp_decision *d)
{
	d->uid = map_id(p->uid_maps, p->n_uid_maps, st->st_uid, p->has_uid, p->uid);
	d->gid = map_id(p->gid_maps, p->n_gid_maps, st->st_gid, p->has_gid, p->gid);
	d->changes = 0;
	d->mode = st->st_mode;
	if (d->uid != st->st_uid)
		d->changes |= VP_CH_UID;
	if (d->gid != st->st_gid)
		d->changes |= VP_CH_GID;
	if (!d->changes)
		return;
	/* Symlink modes are meaningless and never change. */
	if (!S_ISLNK(st->st_mode))
		d->mode = vp_mode_after_chown(st->st_mode);
	if ((st->st_mode & S_ISUID) && !(d->mode & S_ISUID))
		d->changes |= VP_CH_DROP_SUID;
	if ((st->st_mode & S_ISGID) && !(d->mode & S_ISGID))
		d->changes |= VP_CH_DROP_SGID;
}

const char *vp_type_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR: return "dir";
	case S_IFREG: return "file";
	case S_IFLNK: return "symlink";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	case S_IFCHR: return "chardev";
	case S_IFBLK: return "blockdev";
	default: return "unknown";
	}
}
