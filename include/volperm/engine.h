/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_ENGINE_H
#define VOLPERM_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "volperm/cancel.h"
#include "volperm/outcome.h"
#include "volperm/journal.h"
#include "volperm/policy.h"
#include "volperm/report.h"
#include "volperm/walk.h"

struct vp_run_id;
struct vp_sight_writer;

/* plan, check and apply: one walk, one decision function, and for apply the
 * write-ahead journal and fd-pinned changes. The dry run shares the path up
 * to the first syscall that would change something. */

enum vp_cmd { VP_CMD_PLAN, VP_CMD_CHECK, VP_CMD_APPLY };

struct vp_run {
	enum vp_cmd cmd;
	const char *root;            /* resolved absolute path */
	int root_fd;                 /* O_PATH fd of root, borrowed */
	struct stat root_st;         /* fstat(root_fd) */
	const struct vp_policy *policy;
	int jdir_fd;                 /* journal directory; -1 with --no-journal */
	int jdir_error;              /* -errno: the journal directory could not be
	                              * opened; an error only once a change is due */
	const char *jdir_path;       /* for that message */
	bool has_jdir;               /* jdir_st is the journal directory's stat: the */
	struct stat jdir_st;         /* walk refuses to enter it (bind mounts) */
	bool keep_going;
	unsigned jobs;               /* walk workers (threads); 0 means 1 */
	size_t batch_max;            /* entries per journal batch (and open fds),
	                              * shared out between the workers */
	struct vp_reporter rep;
	/* recover --forward: append to this open journal (named journal[])
	 * instead of creating one. Borrowed; the caller closes it. */
	struct vp_jwriter *resume;
	/* Any signal counted here stops the run at the next entry (apply: then
	 * rolls back, VP_OUT_INTERRUPTED); a further one stops that rollback
	 * (VP_OUT_ROLLBACK_INCOMPLETE, journal left hot). NULL: never. Borrowed. */
	const struct vp_cancel *cancel;
	/* --userns / --uid-map translation of the policy's ids, recorded in the
	 * journal header (NULL: none). Borrowed. */
	const struct vp_userns *userns;
	/* ---- sharded runs (shard.h, docs/scale-out.md; all zero otherwise) ---- */
	/* The journal is named for shard shard_k of run shard_id
	 * (vp_shard_journal_name) instead of vp_jdir_name. Borrowed. */
	const struct vp_run_id *shard_id;
	uint32_t shard_k;
	/* Walk with this instead of vp_walk() (a shard's buckets, finalize's
	 * list); it is given the volume's walk configuration. */
	int (*walk)(const struct vp_walk_cfg *cfg, void *arg);
	void *walk_arg;
	/* A shard: never decide a non-directory with st_nlink > 1 (another
	 * shard may hold one of its links); apply records a sighting of each
	 * that needs a change in sight, and commits the sightings before its
	 * journal's COMMIT mark (run->sight is NULL after vp_engine_run
	 * committed or freed it; on failure the caller aborts it). */
	bool defer_links;
	struct vp_sight_writer *sight;
	uint64_t sight_fsid;       /* f_fsid of the root, for the sightings */
	/* Create the journal (apply) even when nothing needs a change: a
	 * shard's or finalize's journal is its state. */
	bool start_journal;
	/* out */
	uint64_t deferred;           /* defer_links: entries left to finalize */
	char journal[128];           /* name of the journal written, "" if none */
	const char *journal_state;   /* its state at the end ("committed", ...) */
	char why[512];               /* one sentence when the run failed as a whole */
};

/* Run it. Returns an outcome (outcome.h), never a negative errno: a failure
 * of the whole run (out of memory included) is VP_OUT_INVALID before any
 * change, VP_OUT_ROLLED_BACK after one, and so on, with its one sentence in
 * run->why. Fills *st. */
enum vp_outcome vp_engine_run(struct vp_run *run, struct vp_stats *st);

#endif
