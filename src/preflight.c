/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The per-entry capability preflight (see preflight.h).
 *
 * Before issue 13 an apply without CAP_CHOWN or CAP_FOWNER was refused as a
 * whole, although a user may chmod, setfacl and chgrp (to their own groups)
 * their own files without either: `volperm apply --chmod g+rwX ~/data` was
 * refused where `chmod -R g+rwX ~/data` works. Now the refusal is per entry,
 * and still made before the first change: a dry walk (the plan, with the
 * same decisions apply makes; engine.c's caps_scan) looks for the first
 * entry that needs a capability we lack, asking the rule here for each. It
 * costs a second walk, and only runs that lack a capability pay it. This
 * file is the rule only, so it sits below the engine.
 *
 * The same walk asks the second per-entry rule, vp_owner_unmapped(): in a
 * user namespace, an entry owned by an id the namespace does not map cannot
 * be changed at all, whatever our capabilities (caps.h says why). The walk
 * runs for that only when the namespace can show such an owner (its
 * overflow id is unmapped): never in the initial namespace. */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "volperm/caps.h"
#include "decide.h"
#include "preflight.h"
#include "volperm/quote.h"
#include "volperm/report.h"

int vp_creds_get(struct vp_creds *c)
{
	int n = getgroups(0, NULL);
	gid_t *g;

	if (n < 0)
		return -errno;
	g = calloc((size_t)n + 1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	n = getgroups(n, g + 1);
	if (n < 0) {
		int r = -errno;
		free(g);
		return r;
	}
	g[0] = getegid();
	*c = (struct vp_creds){
		.uid = geteuid(), .groups = g, .n_groups = (size_t)n + 1,
		.cap_chown = vp_cap_effective(CAP_CHOWN), .cap_fowner = vp_cap_effective(CAP_FOWNER),
	};
	return 0;
}

void vp_creds_free(struct vp_creds *c)
{
	free(c->groups);
	c->groups = NULL;
	c->n_groups = 0;
}

/* The one step with its own message (the form engine.c used before). */
const char vp_what_clears_setid[] = "change the owner of a setuid/setgid file, which clears that bit";

static bool in_group(const struct vp_creds *c, uint32_t gid)
{
	for (size_t i = 0; i < c->n_groups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

int vp_change_missing_cap(const struct vp_creds *c, const struct vp_change *ch, bool reverse,
                          const char **what)
{
	/* Undoing is a change from the after-state to the before-state. */
	uint32_t uid = reverse ? ch->new_uid : ch->uid, gid = reverse ? ch->new_gid : ch->gid;
	uint32_t nuid = reverse ? ch->uid : ch->new_uid, ngid = reverse ? ch->gid : ch->new_gid;
	mode_t mode = reverse ? ch->new_mode : ch->mode;
	unsigned modes = VP_CH_MODE | VP_CH_ACL | VP_CH_DEFAULT_ACL;
	uint32_t owner = uid;

	if (reverse)
		/* Putting back what the chown cleared is a chmod too. */
		modes |= VP_CH_DROP_SUID | VP_CH_DROP_SGID;
	if (ch->changes & (VP_CH_UID | VP_CH_GID) && (uid != nuid || gid != ngid)) {
		if (uid != nuid && !c->cap_chown) {
			*what = "give it another owner";
			return CAP_CHOWN;
		}
		if (gid != ngid && !c->cap_chown && !(c->uid == uid && uid == nuid && in_group(c, ngid))) {
			*what = c->uid != uid ? "change the group of a file this process does not own"
			                      : "give it a group this process is not a member of";
			return CAP_CHOWN;
		}
		/* The kernel clears setuid (and setgid with group-execute) of
		 * a non-directory on chown: a mode change of the file as it
		 * is, allowed to its owner. */
		if (!S_ISDIR(mode) && (vp_mode_after_chown(mode) & 07777) != (mode & 07777) &&
		    c->uid != uid && !c->cap_fowner) {
			*what = vp_what_clears_setid;
			return CAP_FOWNER;
		}
		owner = nuid;
	}
	if ((ch->changes & modes) && !S_ISLNK(ch->mode) && c->uid != owner && !c->cap_fowner) {
		*what = reverse ? "restore the mode or ACL of a file this process does not own"
		                : "change the mode or ACL of a file this process does not own";
		return CAP_FOWNER;
	}
	return -1;
}

/* ---- owners not mapped in this user namespace (caps.h) ---- */

bool vp_owner_unmapped(const struct vp_nsview *v, uint32_t uid, uint32_t gid, unsigned changes,
                       bool *gid_side)
{
	/* The kernel shows every unmapped owner as the overflow id; when
	 * that id is itself unmapped, an owner shown as it is unmapped. */
	if (!changes)
		return false;
	if (v->uid_tells && uid == v->overflow_uid) {
		/* inode_owner_or_capable (mode, ACLs) and chown_ok both need
		 * the owner mapped. */
		*gid_side = false;
		return true;
	}
	if (v->gid_tells && gid == v->overflow_gid && (changes & (VP_CH_UID | VP_CH_GID))) {
		/* Only chown needs the group mapped too
		 * (privileged_wrt_inode_uidgid). */
		*gid_side = true;
		return true;
	}
	return false;
}

void vp_unmapped_owners_event(struct vp_unmapped_owners *w, const struct vp_event *ev)
{
	bool gid_side;

	if (ev->type != VP_EV_CHANGE ||
	    !vp_owner_unmapped(&w->ns, ev->uid, ev->gid, ev->changes, &gid_side))
		return;
	if (!w->count++) {
		w->gid = gid_side;
		w->shown = gid_side ? ev->gid : ev->uid;
		vp_quote_path_buf(w->first, sizeof(w->first), ev->root, ev->relpath, ev->relpath_len);
	}
}

void vp_unmapped_owners_why(const struct vp_unmapped_owners *w, char *buf, size_t size)
{
	bool one = w->count == 1;

	snprintf(buf, size,
	         "%llu %s to change%s%s, %s owned by an id not mapped in this user namespace (shown as %s %u): fix %s from the host, or with --userns; apply refuses to start while %s",
	         (unsigned long long)w->count, one ? "entry" : "entries", one ? ", " : ", the first ",
	         w->first, one ? "is" : "are", w->gid ? "gid" : "uid",
	         (unsigned)w->shown, one ? "it" : "them", one ? "it is" : "they are");
}
