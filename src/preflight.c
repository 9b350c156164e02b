/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The per-entry capability preflight (see preflight.h).
 *
 * Before issue 13 an apply without CAP_CHOWN or CAP_FOWNER was refused as a
 * whole, although a user may chmod, setfacl and chgrp (to their own groups)
 * their own files without either: `volperm apply --chmod g+rwX ~/data` was
 * refused where `chmod -R g+rwX ~/data` works. Now the refusal is per entry,
 * and still made before the first change: a dry walk (the plan, with the
 * same decisions apply makes) looks for the first entry that needs a
 * capability we lack. It costs a second walk, and only runs that lack a
 * capability pay it. */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "volperm/caps.h"
#include "decide.h"
#include "volperm/engine.h"
#include "preflight.h"
#include "volperm/quote.h"

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
static const char clears_setid[] = "change the owner of a setuid/setgid file, which clears that bit";

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
			*what = clears_setid;
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

struct scan {
	struct vp_creds creds;
	bool journaled;
	const struct vp_cancel *outer;
	struct vp_cancel stop;     /* ours: stops the dry walk at the first find */
	bool found;
	int cap;
	bool reverse;
	const char *what;
	uint32_t owner;
	char path[320];            /* the entry, quoted */
};

static void on_event(void *userdata, const struct vp_event *ev)
{
	struct scan *s = userdata;

	if (vp_cancel_count(s->outer) && !vp_cancel_count(&s->stop)) {
		atomic_store(&s->stop.signo, atomic_load(&s->outer->signo));
		atomic_fetch_add(&s->stop.count, 1);
	}
	if (s->found || ev->type != VP_EV_CHANGE)
		return;
	struct vp_change ch = {
		.uid = ev->uid, .gid = ev->gid, .mode = ev->mode, .new_uid = ev->new_uid,
		.new_gid = ev->new_gid, .new_mode = ev->new_mode, .changes = ev->changes,
	};
	const char *what = NULL;
	bool reverse = false;
	int cap = vp_change_missing_cap(&s->creds, &ch, false, &what);
	if (cap < 0 && s->journaled) {
		reverse = true;
		cap = vp_change_missing_cap(&s->creds, &ch, true, &what);
	}
	if (cap < 0)
		return;
	s->found = true;
	s->cap = cap;
	s->reverse = reverse;
	s->what = what;
	s->owner = ev->uid;
	vp_quote_path_buf(s->path, sizeof(s->path), ev->root, ev->relpath, ev->relpath_len);
	atomic_fetch_add(&s->stop.count, 1);
}

int vp_preflight_caps(const struct vp_run *run, char *why, size_t why_size)
{
	struct scan s = { .journaled = run->jdir_fd >= 0 || run->resume, .outer = run->cancel };
	struct vp_stats st;
	int r;

	r = vp_creds_get(&s.creds);
	if (r < 0) {
		snprintf(why, why_size, "cannot read this process's groups: %s; nothing was changed",
		         strerror(-r));
		return r;
	}
	if (s.creds.cap_chown && s.creds.cap_fowner) {
		vp_creds_free(&s.creds);
		return 0;
	}
	/* The dry walk: the same walk and decisions, one thread so that
	 * "the first entry" is the walk's first, no journal, no output. */
	struct vp_run dry = {
		.cmd = VP_CMD_PLAN, .root = run->root, .root_fd = run->root_fd,
		.root_st = run->root_st, .policy = run->policy, .jdir_fd = -1,
		.jdir_path = run->jdir_path, .has_jdir = run->has_jdir, .jdir_st = run->jdir_st,
		.keep_going = true, .jobs = 1, .batch_max = run->batch_max,
		.rep = { on_event, NULL, &s }, .cancel = &s.stop,
	};
	enum vp_outcome out = vp_engine_run(&dry, &st);
	vp_creds_free(&s.creds);
	if (s.found && s.what == clears_setid && !s.reverse) {
		snprintf(why, why_size,
		         "%s is setuid/setgid: changing its owner clears that bit, which needs the CAP_FOWNER capability, and this process does not have it (add --cap-add FOWNER); nothing was changed",
		         s.path);
		return -EPERM;
	}
	if (s.found) {
		snprintf(why, why_size,
		         "volperm needs the %s capability %s %s (to %s: it is owned by uid %u, this process runs as uid %u) and this process does not have it (%s); nothing was changed",
		         s.cap == CAP_CHOWN ? "CAP_CHOWN" : "CAP_FOWNER",
		         s.reverse ? "to be able to roll back" : "for", s.path, s.what,
		         (unsigned)s.owner, (unsigned)geteuid(),
		         s.reverse ? "give it, or use --no-journal to change without a way back"
		         : s.cap == CAP_CHOWN ? "run it as root, or give the container --cap-add CHOWN"
		                              : "run it as root, or give the container --cap-add FOWNER");
		return -EPERM;
	}
	if (vp_cancel_count(run->cancel)) {
		snprintf(why, why_size, "interrupted by %s", vp_cancel_name(run->cancel));
		return -EINTR;
	}
	(void)out; /* entries the dry walk could not read, the apply reports itself */
	return 0;
}
