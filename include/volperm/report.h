/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_REPORT_H
#define VOLPERM_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "volperm/walk.h"

/* Events: how the engine and rollback tell the caller what happened, entry by
 * entry, without printing anything themselves. output.c turns them into
 * human lines or NDJSON. */

enum vp_event_type {
	VP_EV_CHANGE,    /* planned (plan/check) or made (apply) */
	VP_EV_SKIP,      /* skipped: skip says why */
	VP_EV_ERROR,     /* an operation failed: op + err */
	VP_EV_RESTORE,   /* rollback restored an entry */
	VP_EV_CONFLICT,  /* rollback left an entry alone: it changed since */
};

struct vp_event {
	enum vp_event_type type;
	const char *root;             /* the volume root */
	const char *relpath;          /* "." for the root; may be NULL for global errors */
	size_t relpath_len;
	mode_t mode;                  /* st_mode before (type bits valid), 0 if unknown */
	uid_t uid, new_uid;
	gid_t gid, new_gid;
	mode_t new_mode;
	unsigned changes;             /* VP_CH_* */
	enum vp_skip skip;
	int err;                      /* positive errno */
	const char *op;               /* "lstat", "chown", "pin", "read", ... */
	const char *detail;           /* optional extra text */
	bool is_reason;               /* VP_EV_ERROR that stopped the run: the run's
	                               * reason (why) names it, so a person needs
	                               * to read it only there */
};

struct vp_stats;

struct vp_reporter {
	void (*event)(void *userdata, const struct vp_event *ev);
	/* Called every VP_PROGRESS_EVERY entries (and may be NULL): the
	 * receiver decides whether it is time to show anything. */
	void (*progress)(void *userdata, const struct vp_stats *st);
	void *userdata;
};

#define VP_PROGRESS_EVERY 4096u

static inline void vp_report(const struct vp_reporter *r, const struct vp_event *ev)
{
	if (r && r->event)
		r->event(r->userdata, ev);
}

static inline void vp_report_progress(const struct vp_reporter *r, const struct vp_stats *st,
                                      uint64_t count)
{
	if (r && r->progress && count % VP_PROGRESS_EVERY == 0)
		r->progress(r->userdata, st);
}

/* Counters shared by every command's summary. */
struct vp_stats {
	uint64_t scanned, dirs, files, symlinks, other;
	uint64_t changes, ch_uid, ch_gid, drop_suid, drop_sgid, drop_caps, ch_mode, ch_acl;
	uint64_t unchanged, skipped, skip[VP_SKIP__MAX], errors;
	uint64_t restored, already, conflicts;   /* rollback */
	bool root_complies;                      /* walk skipped: on-root-mismatch */
	double seconds;
};

#endif
