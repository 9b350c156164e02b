/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_ROLLBACK_H
#define VOLPERM_ROLLBACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "volperm/cancel.h"
#include "volperm/outcome.h"
#include "volperm/journal.h"
#include "volperm/report.h"

/* Undo what a journal recorded (invariant 5): newest entry first, so every
 * directory is restored before anything below it is reached again (with
 * jobs > 1, a chunk of entries at a time, see rollback.c). Each
 * entry is pinned by its path with no symlink or mount crossing, resolved
 * from the deepest ancestor directory pinned before (vp_pin_cache, pin.h) or
 * from the root, and its dev/ino must be the journal's. An entry is restored only if it is
 * still what volperm set (or already restored: then it is left as is); any
 * other state is a conflict, reported and left alone unless force. */

struct vp_rollback {
	int root_fd;            /* O_PATH fd of the volume root (borrowed) */
	const char *root;       /* for reports */
	bool force;
	bool newest;            /* no later journal exists for this root */
	/* Threads restoring at a time (0 or 1: one). More only with
	 * CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE, which make the newest-first
	 * order needless for reaching entries (rollback.c); the records of one
	 * path stay on one thread, in journal order. */
	unsigned jobs;
	struct vp_reporter rep;
	/* A signal counted here beyond cancel_after (those that came before,
	 * e.g. the one that made an apply abort) stops the rollback before the
	 * next entry: the journal stays rolling-back (hot) for `recover` to
	 * finish, VP_OUT_ROLLBACK_INCOMPLETE; before the first change it returns
	 * VP_OUT_INTERRUPTED with the journal untouched. NULL: never. */
	const struct vp_cancel *cancel;
	unsigned cancel_after;
	char why[512];          /* one sentence when it failed as a whole */
	bool interrupted;       /* out: stopped by such a signal */
	bool marked;            /* out: the ROLLED_BACK mark was written */
	uint64_t left;          /* out: then, the entries not yet visited */
	/* internal, set by vp_rollback_run: the commit time, when known */
	bool has_commit_time, ctime_rule;
	struct timespec committed_at, started;
	uint64_t applied_ns;    /* the journal's creation: the apply's start */
	pthread_mutex_t *report_mu; /* held around rep's calls while threads run */
};

/* r: a validated reader of the journal; w: a writer on the same journal (it
 * holds the journal lock) for the state marks. Returns an outcome (outcome.h),
 * never a negative errno: VP_OUT_OK when everything was restored,
 * VP_OUT_INVALID when it refused to start (rb->why says why),
 * VP_OUT_ROLLBACK_INCOMPLETE when some entries could not
 * be (reported as events; conflicts leave the journal rolled back, errors
 * leave it rolling-back so that a re-run can finish; so does an interruption,
 * with rb->interrupted set; see cancel). */
enum vp_outcome vp_rollback_run(struct vp_rollback *rb, struct vp_jreader *r, struct vp_jwriter *w,
                                struct vp_stats *st);

/* Journal invariant 3: does the journal read by r belong to the tree whose
 * root is root_fd (its root's dev/ino, as the header records them)? 0, or
 * -EXDEV with one sentence in why ("belongs to ROOT (...), not to ...;
 * refusing it"), or -errno. vp_rollback_run asks it first, so no caller
 * can skip it; a caller asks it too to say so before printing anything. */
int vp_journal_belongs(struct vp_jreader *r, int root_fd, const char *root, char *why,
                       size_t size);

/* Open a read-only fd on which syncfs() works (O_PATH fds do not), or -errno.
 * Falls back to nothing: callers use sync() when this fails. */
int vp_sync_fd_open(int root_fd);
/* syncfs(fd) if fd >= 0, else sync(). Returns 0 or -errno. */
int vp_sync_volume(int fd);

#endif
