/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The decision function shared by plan, check and apply. It is pure so that
 * the dry run cannot disagree with the real run, and so it can be tested as
 * a table without a filesystem.
 *
 * Order, as the changes happen on disk: chown (which clears setuid, and
 * setgid with group-execute, on non-directories), then the mode (fsGroup
 * bits, --chmod, --root-mode), then the ACL edits on top of that mode. Bits
 * that chown cleared are never put back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "volperm/acl.h"
#include "decide.h"

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

static mode_t fsgroup_bits(const struct vp_policy *p, mode_t mode)
{
	mode_t bits = p->fsgroup_readonly ? 0440 : 0660;
	if (S_ISDIR(mode))
		bits |= 0110 | S_ISGID;
	return bits;
}

bool vp_root_complies(const struct vp_policy *p, const struct stat *st)
{
	struct vp_decision d;

	/* kubelet: a root that is not a directory is always walked. */
	if (!S_ISDIR(st->st_mode))
		return false;
	if (p->has_fsgroup) {
		mode_t need = fsgroup_bits(p, st->st_mode);
		if (st->st_gid != p->fsgroup || (st->st_mode & need) != need)
			return false;
	}
	struct vp_decide_in in = { .st = st, .is_root = true };
	if (vp_policy_needs_acls(p))
		return false; /* an ACL check needs the xattr; walk instead */
	(void)vp_decide(p, &in, &d); /* no ACL policy here: cannot fail */
	vp_decision_free(&d);
	return d.changes == 0;
}

/* The ACL as the kernel will hold it once the mode is `mode`: chmod sets the
 * owner and other entries and the mask (or group entry without a mask). */
static void acl_after_chmod(struct vp_acl *a, mode_t mode)
{
	bool has_mask = false;
	for (size_t i = 0; i < a->n; i++)
		has_mask |= a->e[i].tag == VP_ACL_MASK;
	for (size_t i = 0; i < a->n; i++) {
		struct vp_acl_entry *e = &a->e[i];
		if (e->tag == VP_ACL_USER_OBJ)
			e->perm = (mode >> 6) & 7;
		else if (e->tag == VP_ACL_OTHER)
			e->perm = mode & 7;
		else if (e->tag == (has_mask ? VP_ACL_MASK : VP_ACL_GROUP_OBJ))
			e->perm = (mode >> 3) & 7;
	}
}

/* The new xattr value of *a into *buf (malloc()ed, replacing what was
 * there), and whether it differs from the current value cur. */
static int encode_acl(const struct vp_acl *a, uint8_t **buf, size_t *len, const void *cur,
                      size_t cur_len, bool *differs)
{
	size_t need = vp_acl_to_xattr(a, NULL, 0);
	uint8_t *b = malloc(need);

	if (!b)
		return -ENOMEM;
	vp_acl_to_xattr(a, b, need);
	free(*buf);
	*buf = b;
	*len = need;
	*differs = need != cur_len || memcmp(b, cur, need) != 0;
	return 0;
}

static int decide_acls(const struct vp_policy *p, const struct vp_decide_in *in,
                       struct vp_decision *d, struct vp_acl *acc, struct vp_acl *def)
{
	bool is_dir = S_ISDIR(d->mode), differs;
	int r;

	if (in->acl_access_len) {
		if (vp_acl_from_xattr(in->acl_access, in->acl_access_len, acc) < 0)
			return -EBADMSG;
		acl_after_chmod(acc, d->mode);
	} else {
		r = vp_acl_from_mode(d->mode, acc);
		if (r < 0)
			return r;
	}
	r = vp_acl_apply(acc, p->grants, p->n_grants, p->revokes, p->n_revokes, is_dir, d->mode);
	if (r < 0)
		return r;
	if (vp_acl_check(acc) < 0)
		return -EBADMSG; /* never write an ACL libacl calls invalid */
	if (vp_acl_is_minimal(acc)) {
		d->acl_access_len = 0;
		if (in->acl_access_len)
			d->changes |= VP_CH_ACL;
	} else {
		r = encode_acl(acc, &d->acl_access, &d->acl_access_len, in->acl_access,
		               in->acl_access_len, &differs);
		if (r < 0)
			return r;
		if (differs)
			d->changes |= VP_CH_ACL;
	}
	/* The access ACL's mask is the mode's group class. */
	mode_t m = vp_acl_mode(acc, d->mode);
	if ((m & 07777) != (d->mode & 07777))
		d->mode = m;
	if (!is_dir)
		return 0;
	/* Default ACL: as setfacl -m d:..., seeded from the access ACL's base
	 * entries when there is none yet; only grants create one. */
	if (in->acl_default_len) {
		if (vp_acl_from_xattr(in->acl_default, in->acl_default_len, def) < 0)
			return -EBADMSG;
	} else if (p->n_grants) {
		/* Room for the three base entries (acc passed vp_acl_check:
		 * exactly one of each), then copied from acc. */
		r = vp_acl_from_mode(d->mode, def);
		if (r < 0)
			return r;
		def->n = 0;
		for (size_t i = 0; i < acc->n; i++)
			if (acc->e[i].tag == VP_ACL_USER_OBJ || acc->e[i].tag == VP_ACL_GROUP_OBJ ||
			    acc->e[i].tag == VP_ACL_OTHER)
				def->e[def->n++] = acc->e[i];
	} else {
		d->acl_default_len = 0;
		return 0;
	}
	r = vp_acl_apply(def, p->grants, p->n_grants, p->revokes, p->n_revokes, true, d->mode);
	if (r < 0)
		return r;
	if (vp_acl_check(def) < 0)
		return -EBADMSG;
	r = encode_acl(def, &d->acl_default, &d->acl_default_len, in->acl_default,
	               in->acl_default_len, &differs);
	if (r < 0)
		return r;
	if (differs)
		d->changes |= VP_CH_DEFAULT_ACL;
	return 0;
}

int vp_decide(const struct vp_policy *p, const struct vp_decide_in *in, struct vp_decision *d)
{
	const struct stat *st = in->st;
	bool lnk = S_ISLNK(st->st_mode);
	int r = 0;

	d->uid = map_id(p->uid_maps, p->n_uid_maps, st->st_uid, p->has_uid, p->uid);
	d->gid = map_id(p->gid_maps, p->n_gid_maps, st->st_gid, p->has_gid, p->gid);
	if (p->has_fsgroup)
		d->gid = p->fsgroup;
	d->changes = 0;
	d->mode = st->st_mode;
	d->acl_access_len = d->acl_default_len = 0;
	d->acl_access = d->acl_default = NULL;
	if (d->uid != st->st_uid)
		d->changes |= VP_CH_UID;
	if (d->gid != st->st_gid)
		d->changes |= VP_CH_GID;
	/* Symlink modes are meaningless and never change. */
	if (lnk)
		return 0;
	if (d->changes)
		d->mode = vp_mode_after_chown(st->st_mode);
	mode_t m = d->mode;
	if (p->has_fsgroup)
		m |= fsgroup_bits(p, m);
	if (p->chmod_text)
		m = (m & S_IFMT) | vp_modeprog_apply(&p->chmod, m, S_ISDIR(m));
	if (in->is_root && p->has_root_mode)
		m = (m & S_IFMT) | p->root_mode;
	d->mode = m;
	if (vp_policy_needs_acls(p) && (S_ISREG(m) || S_ISDIR(m))) {
		struct vp_acl acc = VP_ACL_INIT, def = VP_ACL_INIT;
		r = decide_acls(p, in, d, &acc, &def);
		vp_acl_free(&acc);
		vp_acl_free(&def);
	}
	if ((st->st_mode & S_ISUID) && !(d->mode & S_ISUID) && (d->changes & (VP_CH_UID | VP_CH_GID)))
		d->changes |= VP_CH_DROP_SUID;
	if ((st->st_mode & S_ISGID) && !(d->mode & S_ISGID) && (d->changes & (VP_CH_UID | VP_CH_GID)))
		d->changes |= VP_CH_DROP_SGID;
	/* A mode change is one we must make, beyond what chown does by itself. */
	mode_t base = d->changes & (VP_CH_UID | VP_CH_GID) ? vp_mode_after_chown(st->st_mode)
	                                                   : st->st_mode;
	if ((d->mode & 07777) != (base & 07777))
		d->changes |= VP_CH_MODE;
	if (r < 0) {
		d->changes = 0;
		vp_decision_free(d);
	}
	return r;
}

void vp_decision_free(struct vp_decision *d)
{
	free(d->acl_access);
	free(d->acl_default);
	d->acl_access = d->acl_default = NULL;
	d->acl_access_len = d->acl_default_len = 0;
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
