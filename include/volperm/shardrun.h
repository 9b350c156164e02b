/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_SHARDRUN_H
#define VOLPERM_SHARDRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "volperm/shard.h"
#include "volperm/walk.h"

/* The steps of a sharded run (docs/scale-out.md) that need the engine:
 * what a shard walks, what finalize walks, the locks they take, and the
 * order in which rollback --run undoes a run's journals. shard.c holds the
 * manifest, the partition, the sightings and the run state; the engine
 * (engine.h: vp_run.walk, defer_links, sight) runs each step with the
 * ordinary journal; the CLI only says what these return. Library rules: 0
 * or -errno, nothing printed, the sentences go to the caller in a why. */

#define VP_SHARDRUN_WHY_MAX 1024

/* ---- a shard's walk ---- */

/* The buckets of shard k, each pinned (beneath the root, no symlink, the
 * inode the plan saw). */
struct vp_shard_walk;

/* Pin every bucket of shard k of m below root_fd (the root's path root,
 * its stat root_st). A bucket that is not the directory the plan saw any
 * more (renamed, replaced, removed): -ESTALE with why, before anything
 * changed: plan the run again. -ENOMEM. */
int vp_shard_walk_open(const struct vp_manifest *m, uint32_t k, int root_fd, const char *root,
                       const struct stat *root_st, bool cross_mounts,
                       struct vp_shard_walk **ret, char *why, size_t why_size);
void vp_shard_walk_free(struct vp_shard_walk *sw);
/* vp_run.walk for a shard (walk_arg: the vp_shard_walk): walks each bucket
 * with vp_walk() and cfg's callbacks: a subtree bucket whole, the
 * directory itself last; a files bucket of D without D itself and without
 * D's subdirectories that are buckets or above directories. The above
 * directories and the root are never delivered: finalize changes them. */
int vp_shard_walk(const struct vp_walk_cfg *cfg, void *arg);

/* ---- finalize ---- */

struct vp_finalize;

/* Merge every shard's sightings (all of them must exist: -ENOENT with why
 * naming the first missing), for finalize's walk on root_fd. */
int vp_finalize_open(const struct vp_manifest *m, int jdir_fd, int root_fd,
                     const struct stat *root_st, bool allow_external, bool cross_mounts,
                     struct vp_finalize **ret, char *why, size_t why_size);
void vp_finalize_free(struct vp_finalize *f);
/* vp_run.walk for finalize (one worker): every link of every
 * multiply-linked inode some shard saw, looked up afresh (the engine's
 * link table then decides with its inotify watch, as on one machine;
 * sightings that disagreed are skipped as changed), then the above
 * directories, deepest first, the root last. */
int vp_finalize_walk(const struct vp_walk_cfg *cfg, void *arg);
/* Inodes the merge found (after vp_finalize_open). */
size_t vp_finalize_inodes(const struct vp_finalize *f);

/* ---- locks ---- */

/* A shard shares the root with the other shards of its run and excludes
 * everything else: LOCK_SH on the per-root lock file (a plain run, and
 * finalize, take it LOCK_EX), LOCK_EX on the shard's own lock file
 * run-<id>-<K>.lock (the same shard started twice), LOCK_SH on the root
 * and every directory above it, LOCK_SH on the above directories and
 * LOCK_EX on each subtree bucket's directory (a plain run inside the tree
 * takes those the other way round). All LOCK_NB. */
struct vp_shard_lock {
	int *fds;
	size_t n;
};
#define VP_SHARD_LOCK_INIT { NULL, 0 }
/* 0; -EWOULDBLOCK when someone holds one of them; -errno. Nothing stays
 * locked on failure. */
int vp_shard_lock(const struct vp_manifest *m, uint32_t k, int root_fd, int jdir_fd,
                  struct vp_shard_lock *l);
void vp_shard_unlock(struct vp_shard_lock *l);

/* ---- the run's journals ---- */

/* The journals rollback --run undoes, in that order: finalize's first,
 * then each shard's (shard `only`, or all with only == UINT32_MAX - 1
 * (VP_SHARD_ALL)), newest first within a shard; journals already rolled
 * back are left out. *ret: malloc()ed array of n names of
 * VP_SHARD_JNAME_MAX bytes each. */
#define VP_SHARD_ALL (UINT32_MAX - 1)
int vp_run_journals(int jdir_fd, const struct vp_run_id *id, uint64_t root_ino, uint32_t only,
                    char (**ret)[VP_SHARD_JNAME_MAX], size_t *n);

/* 16 bytes that tell this host's st_dev numbers apart from another's: the
 * kernel's boot id; zeros when it cannot be read. */
void vp_host_key(uint8_t key[16]);
/* f_fsid of fd's filesystem as the journal header has it (0: none). */
uint64_t vp_fsid_of(int fd);

#endif
