/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_SESSION_H
#define VOLPERM_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volperm/engine.h"
#include "volperm/jdir.h"
#include "volperm/outcome.h"
#include "volperm/policy.h"
#include "volperm/rollback.h"
#include "volperm/volume.h"

/* The rules of one command on one root, between the command line and the
 * engine: which journal to act on, whether a hot or running journal blocks
 * the root (journal invariant 4), the tree lock, rolling back one named
 * journal, finishing one forward. The caller chooses and opens the journal
 * directory (jdir.h) and the root (volume.h), and says what these calls
 * return: they print nothing, and every sentence they build (a why) names
 * its paths through the quote module.
 *
 * Returns: each call says which of these it returns. An outcome
 * (outcome.h: VP_OUT_OK is 0, the rest positive) is a verdict on the
 * command; a negative errno is a failure of the call itself. */

/* Which journal of a root a command acts on, newest first. */
enum vp_pick {
	VP_PICK_UNDONE, /* not rolled back yet (rollback), or unreadable */
	VP_PICK_HOT,    /* hot: interrupted, nobody writing it (recover) */
	VP_PICK_ANY,    /* any, or unreadable (journal show, the newest check) */
};

/* The newest journal of rt in jdir_fd that pick accepts. An unreadable
 * journal (its header is bad) counts as a match for UNDONE and ANY: it may
 * describe changes, and the command that opens it says it is corrupt.
 * 1 with name set, 0 when there is none, or -errno. */
int vp_session_find(int jdir_fd, const struct vp_root *rt, enum vp_pick pick,
                    char name[VP_JNAME_MAX]);

/* What keeps a command off a root (journal invariant 4, extended to trees
 * that overlap it: volume.h). */
enum vp_block {
	VP_BLOCK_NONE,
	VP_BLOCK_RUNNING,     /* another volperm is writing a journal of an
	                       * overlapping tree right now */
	VP_BLOCK_HOT,         /* an interrupted apply left this root half changed */
	VP_BLOCK_HOT_OVERLAP, /* ... left a tree that contains it, or lies
	                       * inside it, half changed */
};

struct vp_hot {
	enum vp_block block;
	int overlap;                  /* with block: vp_tree_overlap()'s 1, 2 or 3 */
	char journal[VP_JNAME_MAX];   /* with block: the journal that blocks */
	char *tree;                   /* with block: the tree it changes (the root's
	                               * path for overlap 1, else the path the journal
	                               * records); malloc()ed, NULL if unknown */
	char recover[VP_JNAME_MAX];   /* allow_hot: this root's hot journal, to roll
	                               * back before the run; "" when none */
	char (*unreadable)[VP_JNAME_MAX]; /* this root's journals whose header cannot
	                               * be read, seen before the verdict: ignored
	                               * (a warning for the caller to give) */
	size_t n_unreadable;
};

/* Look at every journal in jdir_fd (jdir_fd < 0: none, VP_OUT_OK). A
 * running journal of an overlapping tree blocks; a hot one of this root
 * blocks unless allow_hot (apply --recover), and is then named in
 * h->recover; a hot one of an overlapping tree always blocks (it is
 * recovered on its own root). The first that blocks is the verdict. A
 * directory that cannot be listed blocks nothing (as before: the apply
 * that follows fails on it by itself). Returns VP_OUT_OK or VP_OUT_BLOCKED
 * with *h filled, or -ENOMEM. Free h with vp_hot_free() in every case. */
int vp_session_check_hot(int jdir_fd, const struct vp_root *rt, bool allow_hot,
                         struct vp_hot *h);
void vp_hot_free(struct vp_hot *h);
/* The same for shard k of sharded run run_id (shard.h): the journals of
 * the run's other shards block nothing (their buckets are disjoint from
 * ours), its finalize's does; with allow_hot, the hot journal to recover
 * is shard k's own (h->recover). A plain run (vp_session_check_hot) is
 * blocked by any shard journal of its root that is hot or running, and
 * never takes one for its own to recover. */
int vp_session_check_hot_shard(int jdir_fd, const struct vp_root *rt, const uint8_t run_id[16],
                               uint32_t k, bool allow_hot, struct vp_hot *h);

/* Is a sharded run on rt (shard.h) started and not finished: a journal of
 * it that is not rolled back, and no committed finalize? Its tree is then
 * half changed by design until finalize runs (a plain check says so). 1
 * with run_id set, 0 no, -errno. */
int vp_session_unfinished_run(int jdir_fd, const struct vp_root *rt, uint8_t run_id[16]);

/* vp_tree_lock() for rt (its parent_fd for a root that is not a
 * directory), with the per-root lock file when jdir_fd >= 0. Returns
 * VP_OUT_OK, VP_OUT_BLOCKED (lk->busy_level says where: vp_path_up() of
 * the root's path names it), or -errno. */
int vp_session_lock(const struct vp_root *rt, int jdir_fd, struct vp_tree_lock *lk);

/* Is the journal directory the root, inside it, or inside it through a
 * bind mount? A journal must not change with the tree it describes. */
bool vp_session_jdir_inside(int jdir_fd, const struct vp_root *rt);

/* vp_jdir_open()'s errors that do not refuse a run at once: a directory
 * that cannot be made (a read-only root filesystem of an init container)
 * matters only once a change is due, and the engine says so then
 * (vp_run.jdir_error). An unsafe one (-ELOOP, -EPERM, ...) is refused. */
bool vp_session_jdir_error_deferred(int err);

/* The root recorded in journal name's header (rollback --journal FILE
 * without PATH; the identity check still compares dev/ino). 0 with *root
 * malloc()ed, or -errno (-EBADMSG: corrupt). */
int vp_session_journal_root(int jdir_fd, const char *name, char **root);

/* The journals of jdir_fd, oldest first (vp_jdir_list(all)); with rt,
 * only those of trees that overlap it (a hot one there blocks rt too).
 * 0 or -errno; free with vp_jdir_list_free(). */
int vp_session_journals(int jdir_fd, const struct vp_root *rt, struct vp_jinfo **ret,
                        size_t *n);

/* ---- rollback of one named journal ---- */

/* A sentence naming two quoted paths of up to PATH_MAX, whole. */
#define VP_SESSION_WHY_MAX 9216

struct vp_rbjob {
	struct vp_jreader *r;   /* validated */
	struct vp_jwriter *w;   /* holds the journal's lock, for the marks */
	char *path;             /* jdir_path/name, malloc()ed (unquoted) */
	/* Ready for vp_session_rollback_run(): root, root_fd, force and
	 * newest are set; the caller sets rep and cancel. */
	struct vp_rollback rb;
	char why[VP_SESSION_WHY_MAX]; /* why vp_session_rollback_open() refused */
};

/* Open journal name of jdir_fd (jdir_path names it in sentences) to roll
 * it back on rt: validate the whole file, take its lock, check that it
 * belongs to rt (invariant 3), that it was written in a user namespace
 * with the same id maps as ours (a journal without maps: the initial
 * namespace), that it is not rolled back already (unless force), and
 * whether it is rt's newest journal. Under other maps, force reads its
 * ids through the recorded map to host ids and on to ours (vp_jr_translate
 * on j->r), once every one of them was found to have an id here. Returns
 * VP_OUT_OK; VP_OUT_BLOCKED when another volperm holds it; VP_OUT_INVALID
 * when it is corrupt, unreadable, another tree's, written under other maps
 * (without force, or with an id that has none here) or already rolled back
 * (j->why: one sentence); or -ENOMEM. Close j with
 * vp_session_rollback_close() in every case. */
int vp_session_rollback_open(int jdir_fd, const char *jdir_path, const char *name,
                             const struct vp_root *rt, bool force, struct vp_rbjob *j);

/* A committed or rolled-back journal of a sharded run (shard.h) is refused
 * by vp_session_rollback_open (VP_OUT_INVALID: roll the run back as a
 * whole); this one, for rollback --run, takes it. */
int vp_session_rollback_open_run(int jdir_fd, const char *jdir_path, const char *name,
                                 const struct vp_root *rt, bool force, struct vp_rbjob *j);

/* vp_rollback_run() on it, timed into st->seconds. When a signal stopped
 * it, j->rb.why also says which journal and what to run next. Returns the
 * rollback's outcome. */
int vp_session_rollback_run(struct vp_rbjob *j, struct vp_stats *st);
void vp_session_rollback_close(struct vp_rbjob *j);

/* ---- recover ---- */

enum vp_recover_step {
	VP_RECOVER_ROLLBACK, /* roll the journal back */
	VP_RECOVER_FORWARD,  /* finish its apply (recover --forward, ACTIVE journal) */
};

/* The next hot journal of rt to recover, and how. last: the journal
 * recovered just before ("" at first). Returns VP_OUT_OK with name set
 * (name[0] == 0: none left); VP_OUT_ROLLBACK_INCOMPLETE when last is still
 * hot (recovering it did not cool it; name is it); or -errno. */
int vp_session_recover_next(int jdir_fd, const struct vp_root *rt, bool forward,
                            const char *last, char name[VP_JNAME_MAX],
                            enum vp_recover_step *step);

struct vp_fwdjob {
	struct vp_jwriter *w;   /* the journal, reopened for appending */
	struct vp_policy policy;/* the journal's own policy */
	bool has_policy;
	char *desc;             /* its description, or NULL */
	char *path;             /* jdir_path/name, malloc()ed (unquoted) */
	/* Ready for vp_engine_run(): an apply resuming w; the caller sets rep,
	 * cancel and jobs. */
	struct vp_run run;
	char why[VP_SESSION_WHY_MAX]; /* why vp_session_forward_open() refused */
};

/* Reopen journal name to finish its apply on rt with the policy its header
 * records (whether it belongs to rt, the engine checks: invariant 3);
 * refused (VP_OUT_INVALID) when it was written under other user namespace
 * maps than ours: its policy's ids would mean other users here.
 * Returns VP_OUT_OK; VP_OUT_BLOCKED when another volperm holds it;
 * VP_OUT_INVALID when it cannot be opened or its policy read (f->why); or
 * -ENOMEM. Close f with vp_session_forward_close() in every case. */
int vp_session_forward_open(int jdir_fd, const char *jdir_path, const char *name,
                            const struct vp_root *rt, size_t batch_max, struct vp_fwdjob *f);
void vp_session_forward_close(struct vp_fwdjob *f);

/* ---- resources of a run ---- */

/* Entries per journal batch (each holds a pinned fd until it is applied):
 * raises RLIMIT_NOFILE towards what a full batch needs when allowed, and
 * stays under half of it. */
size_t vp_session_batch_max(void);

#define VP_JOBS_MAX 256
#define VP_JOBS_DEFAULT_MAX 8   /* CPU-bound (local disk): more rarely helps */
#define VP_JOBS_REMOTE_MAX 128  /* latency-bound: requests in flight */

/* A thread count as typed (--jobs, VOLPERM_JOBS): digits only, 1 to
 * VP_JOBS_MAX, or "auto" (*jobs = 0: vp_jobs_auto() decides once the root
 * is open). 0 or -EINVAL. */
int vp_jobs_parse(const char *text, unsigned *jobs);
/* The CPUs this process may run on, at most VP_JOBS_DEFAULT_MAX. */
unsigned vp_jobs_default(void);

/* --jobs auto (the default): on a local filesystem (by statfs type) the
 * CPUs, at most VP_JOBS_DEFAULT_MAX; elsewhere (NFS, SMB, Ceph, FUSE, ...,
 * or a type we do not know) the latency of a forced getattr of the root
 * decides: a fast one counts as local, a slow one gets enough threads to
 * keep the CPUs busy while requests wait (CPUs x latency / 25 us), from 16
 * to VP_JOBS_REMOTE_MAX. why says what was seen ("ext4", "fuse, 1.02 ms a
 * request"). */
struct vp_jobs_choice {
	unsigned jobs;
	char why[96];
};
void vp_jobs_auto(int root_fd, struct vp_jobs_choice *c);

#endif
