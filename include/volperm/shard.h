/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_SHARD_H
#define VOLPERM_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "volperm/journal.h"
#include "volperm/policy.h"

/* Sharded runs (issue 15; docs/scale-out.md): one tree, N processes on any
 * number of machines that share the journal directory, one journal per
 * shard, one finalize step, one rollback for the whole run. This module is
 * the part that needs neither the engine nor the CLI:
 *
 *   - the run manifest: which disjoint parts of the tree ("buckets") each
 *     shard owns, the policy, the root's identity (run-<id>.vpm in the
 *     journal directory);
 *   - the partition that makes it (a sampled walk of the top of the tree,
 *     greedy largest-first bin packing);
 *   - which shard this process is: "K/N", or "auto" from Slurm, Kubernetes
 *     Indexed Jobs or MPI environment variables;
 *   - the sightings of multiply-linked inodes a shard saw (it never changes
 *     them alone), and their merge for finalize;
 *   - the names of a run's journals and the state of each shard.
 *
 * Library rules as everywhere: 0 or -errno, out-parameters untouched on
 * failure, nothing printed, no global state. */

/* ---- run id ---- */

#define VP_RUN_ID_LEN 16           /* random bytes; 32 lowercase hex digits */
#define VP_RUN_ID_HEX (2 * VP_RUN_ID_LEN + 1)
#define VP_SHARD_MAX 65536u        /* N is 1 .. VP_SHARD_MAX */
#define VP_SHARD_FINALIZE UINT32_MAX /* "K" of finalize's journal */

struct vp_run_id {
	uint8_t b[VP_RUN_ID_LEN];
};

/* getrandom(2). -errno when the kernel gives no random bytes. */
int vp_run_id_new(struct vp_run_id *id);
void vp_run_id_hex(const struct vp_run_id *id, char out[VP_RUN_ID_HEX]);
/* Exactly 32 hex digits (lowercase, as printed; uppercase too): -EINVAL
 * otherwise. */
int vp_run_id_parse(const char *s, struct vp_run_id *id);
bool vp_run_id_eq(const struct vp_run_id *a, const struct vp_run_id *b);

/* ---- the run manifest ---- */

#define VP_MANIFEST_MAGIC "VOLPERMM"
#define VP_MANIFEST_VERSION 1u
#define VP_MANIFEST_SUFFIX ".vpm"
#define VP_MANIFEST_NAME_MAX 64    /* "run-<32 hex>.vpm" and NUL */
#define VP_MANIFEST_MAX (256u << 20)

enum vp_bucket_kind {
	/* The directory at path, everything below it, and the directory itself
	 * last (postorder), as an ordinary walk rooted there. */
	VP_BUCKET_SUBTREE = 1,
	/* The entries of the "above" directory at path that are not themselves
	 * buckets or above directories: its files, symlinks, devices, the
	 * subdirectories the walk does not enter (mount points, excluded), and
	 * the whole subtree of any directory that appeared there after the
	 * plan. Not the directory itself: finalize changes that. */
	VP_BUCKET_FILES = 2,
};

struct vp_bucket {
	enum vp_bucket_kind kind;
	uint32_t shard;            /* 0 .. n_shards-1 */
	uint64_t estimate;         /* entries, as the partition estimated them */
	uint64_t dev, ino;         /* the directory at path, when planned */
	char *path;                /* relative to the root, "." for the root;
	                            * NUL-terminated, path_len bytes */
	size_t path_len;
};

/* A directory above the buckets (the root, and each directory the partition
 * split into its subdirectories): only finalize changes it. */
struct vp_above {
	uint64_t dev, ino;
	char *path;
	size_t path_len;
};

/* Invariants (vp_manifest_decode() refuses a manifest that breaks one):
 *   - buckets and above are each sorted by path (bytewise, shorter first on
 *     a common prefix) without duplicates, so lookups are binary searches
 *     and the encoding of one plan is one byte string;
 *   - "." is an above directory, and the parent of every other above
 *     directory is one too;
 *   - every above directory has exactly one FILES bucket, and every FILES
 *     bucket is at an above directory;
 *   - a SUBTREE bucket is not an above directory and its parent is one:
 *     together these make every bucket disjoint from every other and from
 *     the above directories, and their union the whole tree;
 *   - every bucket's shard is < n_shards;
 *   - the policy text parses (vp_policy_from_text) and is canonical: it is
 *     exactly what vp_policy_to_text() writes for the policy it parses to. */
struct vp_manifest {
	uint32_t version;
	struct vp_run_id id;
	uint64_t created_ns;       /* CLOCK_REALTIME */
	uint32_t n_shards;
	uint64_t root_dev, root_ino;
	uint64_t fsid;             /* statfs f_fsid as in the journal header */
	char *root;                /* the root's resolved path when planned */
	char *host;                /* where the plan was made */
	char *policy;              /* vp_policy_to_text() */
	size_t policy_len;
	struct vp_bucket *buckets;
	size_t n_buckets;
	struct vp_above *above;
	size_t n_above;
};

void vp_manifest_init(struct vp_manifest *m);
void vp_manifest_free(struct vp_manifest *m);

/* Fill the identity part of m for a new run: a new random id, now, the
 * root's dev/ino/fsid (fstat/fstatfs of root_fd), root_path, the host name,
 * the policy's canonical text and n_shards. Buckets are vp_partition()'s. */
int vp_manifest_prepare(struct vp_manifest *m, int root_fd, const char *root_path,
                        const struct vp_policy *policy, uint32_t n_shards);

/* Codec: exposed for the unit tests and a fuzzer. encode sorts nothing:
 * the manifest must already satisfy the invariants (-EINVAL if not).
 * decode: -EBADMSG on any damage (magic, length, CRC, field, invariant),
 * -EPROTO for a well-formed manifest of an unknown version, -ENOMEM. */
int vp_manifest_encode(const struct vp_manifest *m, uint8_t **ret, size_t *ret_len);
int vp_manifest_decode(const uint8_t *buf, size_t len, struct vp_manifest *m);
/* The invariants above: 0 or -EBADMSG. */
int vp_manifest_validate(const struct vp_manifest *m);

/* "run-<id>.vpm" */
void vp_manifest_name(char buf[VP_MANIFEST_NAME_MAX], const struct vp_run_id *id);
/* Write run-<id>.vpm into the journal directory atomically: a temporary
 * file (O_EXCL|O_NOFOLLOW, 0600), fsync, rename without replacing (a
 * manifest is never overwritten: -EEXIST), fsync of the directory. */
int vp_manifest_write(int jdir_fd, const struct vp_manifest *m);
/* Read and decode run-<id>.vpm (O_NOFOLLOW, a regular file); also -ENOENT,
 * and -EBADMSG when the manifest names another run id than its file. */
int vp_manifest_read(int jdir_fd, const struct vp_run_id *id, struct vp_manifest *m);

/* Does the policy given again on a shard's command line equal the
 * manifest's? Compared by canonical text (ids resolved to numbers): 1 yes,
 * 0 no, -ENOMEM. */
int vp_manifest_policy_matches(const struct vp_manifest *m, const struct vp_policy *p);
/* Parse the manifest's policy (always succeeds on a decoded manifest,
 * except -ENOMEM). */
int vp_manifest_policy(const struct vp_manifest *m, struct vp_policy *p);

/* Is root_fd the manifest's root? st_ino must match; then the filesystem id
 * when the manifest has one (st_dev of a network filesystem differs from
 * client to client, its f_fsid does not on Lustre, CephFS, GPFS), else
 * st_dev. 0 yes, -EXDEV no, -errno from fstat. */
int vp_manifest_check_root(const struct vp_manifest *m, int root_fd);

/* What a directory's path (relative to the root) is in the plan: a SUBTREE
 * bucket (*idx into buckets), an above directory (*idx into above), or
 * neither (a directory inside some bucket, or one made after the plan).
 * O(log n). A shard's walk of a FILES bucket skips subdirectories for
 * which this says SUBTREE or ABOVE, and walks the others whole. */
enum vp_manifest_where { VP_WHERE_NONE = 0, VP_WHERE_SUBTREE, VP_WHERE_ABOVE };
enum vp_manifest_where vp_manifest_lookup(const struct vp_manifest *m, const char *path,
                                          size_t len, size_t *idx);
/* The FILES bucket of above directory a (index into buckets), or -ENOENT. */
long vp_manifest_files_bucket(const struct vp_manifest *m, size_t above_idx);
/* The sum of shard k's bucket estimates. */
uint64_t vp_manifest_shard_estimate(const struct vp_manifest *m, uint32_t k);
/* The above directories in the order finalize changes them: deeper first,
 * the root last (every directory after everything below it, as the walk's
 * postorder). *ret: n_above indexes, malloc()ed. */
int vp_manifest_above_order(const struct vp_manifest *m, size_t **ret);

/* ---- partition ---- */

struct vp_partition_cfg {
	uint32_t n_shards;               /* 1 .. VP_SHARD_MAX */
	const struct vp_policy *policy;  /* its excludes and cross_mounts (NULL: none) */
	const struct stat *forbid;       /* a directory never entered (the journal
	                                  * directory), or NULL */
	unsigned per_shard;              /* candidate subtrees wanted per shard (0: 8) */
	uint64_t count_max;              /* entries counted exactly per subtree before
	                                  * it is sampled instead (0: 4096) */
	unsigned probes;                 /* random descents per sampled subtree (0: 64) */
	uint64_t seed;                   /* of the sampling's PRNG (the run id's bytes) */
	size_t max_buckets;              /* stop splitting here (0: 64 * n_shards + 4096) */
	unsigned jobs;                   /* threads estimating subtrees at once (0, 1:
	                                  * one); the estimates do not depend on it */
};

/* Split the tree at root_fd (O_PATH or a read fd of a directory: -ENOTDIR
 * otherwise) into buckets and assign them to cfg->n_shards shards: fills
 * m->buckets, m->above, m->n_shards (the rest of m is left alone). Reads
 * only; never follows a symlink; never enters another filesystem (st_dev,
 * or a mount point on the same one) unless the policy crosses mounts; never
 * enters an excluded directory or cfg->forbid. Unreadable directories stay
 * whole in their parent's bucket with an estimate of 1 (the shard's walk
 * meets the error and reports it). -errno on failure (m untouched). */
int vp_partition(int root_fd, const struct vp_partition_cfg *cfg, struct vp_manifest *m);

/* ---- which shard am I ---- */

/* "K/N": decimal digits only, no sign, no spaces, no leading zeros (other
 * than "0"); 1 <= N <= VP_SHARD_MAX; 0 <= K < N. -EINVAL bad syntax,
 * -ERANGE out of range. */
int vp_shard_parse(const char *s, uint32_t *k, uint32_t *n);

enum vp_shard_source {
	VP_SHARD_SRC_NONE = 0,
	VP_SHARD_SRC_ARG,          /* K/N given */
	VP_SHARD_SRC_SLURM_ARRAY,  /* SLURM_ARRAY_TASK_ID/_COUNT (_MIN, _STEP, _MAX) */
	VP_SHARD_SRC_SLURM_STEP,   /* SLURM_PROCID/SLURM_NTASKS */
	VP_SHARD_SRC_K8S,          /* JOB_COMPLETION_INDEX, N from the caller */
	VP_SHARD_SRC_OMPI,         /* OMPI_COMM_WORLD_RANK/_SIZE */
	VP_SHARD_SRC_PMI,          /* PMI_RANK/PMI_SIZE (MPICH, Intel MPI, srun --mpi) */
};
const char *vp_shard_source_name(enum vp_shard_source s);

struct vp_shard_env {
	uint32_t k, n;
	enum vp_shard_source source;
	/* On failure, what to name in the one-sentence error: */
	const char *var;           /* the variable at fault (-EINVAL, -ERANGE) */
	enum vp_shard_source other;/* the source that disagrees (-EEXIST) */
	uint32_t other_k, other_n;
	uint32_t want_n;           /* -ERANGE from n_hint: the count it wanted */
};

/* --shard auto: find K and N in envp (NULL: environ). n_hint is N from
 * --shards or the manifest (0: unknown); a source whose N differs from a
 * non-zero n_hint is an error. Sources that agree are fine (srun --mpi=pmi2
 * sets both SLURM_PROCID and PMI_RANK); SLURM_PROCID=0 with SLURM_NTASKS=1,
 * or alone (sbatch without -n sets no SLURM_NTASKS), is the batch step of
 * any Slurm job and yields to any other source.
 * Returns 0 with *out filled, or
 *   -ENOENT  no source at all
 *   -EINVAL  a variable that is not a number, or one of a pair without the
 *            other (out->var names it)
 *   -ERANGE  K >= N, N out of range, an array that is not 0..N-1 after its
 *            offset and step, or N != n_hint (out->var names it)
 *   -EEXIST  two sources that disagree (out->source and out->other)
 *   -EDOM    JOB_COMPLETION_INDEX alone and n_hint == 0
 * vp_shard_env_why() makes the sentence. */
int vp_shard_from_env(char *const *envp, uint32_t n_hint, struct vp_shard_env *out);
/* One sentence (no trailing period) for a vp_shard_from_env() error. */
const char *vp_shard_env_why(int err, const struct vp_shard_env *e, char *buf, size_t size);

/* ---- sightings: multiply-linked inodes a shard saw ---- */

/* A shard never changes a non-directory with st_nlink > 1: one of its
 * links may be in another shard's bucket, or outside the tree. It records
 * each sighting of one that needs a change; finalize merges the sightings
 * of every shard and applies the all-links-inside rule (links.h) across
 * them. The file is run-<id>-<K as 8 hex>.vps in the journal directory,
 * written once, atomically, before the shard's COMMIT mark. */

#define VP_SIGHT_MAGIC "VOLPERMS"
#define VP_SIGHT_VERSION 1u

struct vp_sighting {
	uint64_t dev, ino;         /* as this shard's host sees them */
	uint64_t fsid;             /* f_fsid of its filesystem (0: none) */
	uint64_t nlink;
	uint64_t parent_dev, parent_ino;
	uint32_t uid, gid, mode;   /* as seen (st_mode with the type) */
	int64_t ctime_sec;
	uint32_t ctime_nsec;
	const char *path;          /* the link, relative to the root: its
	                            * parent directory and its name */
	uint32_t path_len;
};

struct vp_sight_writer;
/* Create the temporary file in the journal directory. host_key: 16 bytes
 * that tell this host's st_dev numbers apart from another's
 * (/proc/sys/kernel/random/boot_id; zeros if unknown). */
int vp_sight_create(int jdir_fd, const struct vp_run_id *id, uint32_t k,
                    const uint8_t host_key[16], struct vp_sight_writer **ret);
/* Thread-safe. Copies. */
int vp_sight_add(struct vp_sight_writer *w, const struct vp_sighting *s);
/* Trailer (count, CRC), fsync, rename into place (replacing an earlier
 * attempt of the same shard: a restarted shard rewrites all of its own),
 * fsync the directory, free w. After an error w is freed too and the
 * temporary file removed. */
int vp_sight_commit(struct vp_sight_writer *w);
/* Drop it (remove the temporary file). */
void vp_sight_abort(struct vp_sight_writer *w);
/* "run-<id>-<k>.vps" */
void vp_sight_name(char buf[VP_MANIFEST_NAME_MAX], const struct vp_run_id *id, uint32_t k);

/* Read one shard's file: fn is called for every record (the pointers are
 * valid during the call only) after the whole file was validated. -ENOENT,
 * -EBADMSG (damage, or another run/shard than the name says), -EPROTO. */
typedef int (*vp_sight_fn)(const uint8_t host_key[16], const struct vp_sighting *s,
                           void *userdata);
int vp_sight_read(int jdir_fd, const struct vp_run_id *id, uint32_t k, vp_sight_fn fn,
                  void *userdata);
/* The same from a buffer (unit tests, fuzzer). */
int vp_sight_decode(const uint8_t *buf, size_t len, const struct vp_run_id *id, uint32_t k,
                    vp_sight_fn fn, void *userdata);

/* The merge. Inodes are keyed by (fsid, ino) when the filesystem has an
 * id, else by (host key, dev, ino): st_dev numbers mean nothing on another
 * host, so two hosts' sightings of one inode on a filesystem without an
 * id stay apart, and the inode looks as if links were missing: skipped,
 * never wrongly changed. Links are told apart by parent and name, as in
 * links.c. */
enum vp_sight_verdict {
	VP_SIGHT_DUE,       /* every link found: change it once, through one link */
	VP_SIGHT_EXTERNAL,  /* fewer links found than st_nlink: skip (external-hardlink) */
	VP_SIGHT_UNSTABLE,  /* sightings disagree (ctime, owner, mode, type): it
	                     * changed between them: skip (changed) */
};
const char *vp_sight_verdict_name(enum vp_sight_verdict v);

struct vp_sight_merge;
int vp_sight_merge_new(bool allow_external, struct vp_sight_merge **ret);
void vp_sight_merge_free(struct vp_sight_merge *m);
int vp_sight_merge_add(struct vp_sight_merge *m, const uint8_t host_key[16],
                       const struct vp_sighting *s);
/* vp_sight_read() of shard k into the merge. */
int vp_sight_merge_file(struct vp_sight_merge *m, int jdir_fd, const struct vp_run_id *id,
                        uint32_t k);

struct vp_sight_inode {
	enum vp_sight_verdict verdict;
	uint64_t nlink;            /* the largest seen */
	uint64_t links;            /* distinct links found */
	const struct vp_sighting *first; /* the link finalize pins and changes
	                            * (the smallest path, for a stable choice) */
	const struct vp_sighting *const *all; /* every distinct link found */
};
/* Every inode, in a stable order (by path of .first). Finalize must not
 * trust the verdict alone for DUE inodes: the sightings were made at
 * different moments, on different hosts, so it does what links.c does on
 * one machine before it changes one: an inotify watch on the inode, a fresh
 * lookup of every recorded link (all the same inode, the recorded ctime),
 * a getdents of each of their directories, then the watch's queue. */
typedef int (*vp_sight_merge_fn)(const struct vp_sight_inode *in, void *userdata);
int vp_sight_merge_each(struct vp_sight_merge *m, vp_sight_merge_fn fn, void *userdata);

/* ---- a run's journals and state ---- */

/* Shard journals keep jdir.c's name and add the run and the shard:
 *   vp-<dev>-<ino>-<created_ns>-run<id>-<K>.vpj
 * dev, ino, created_ns and K as 16, 16, 16 and 8 lowercase hex digits, id
 * as 32; K = ffffffff is finalize's journal. (102 bytes and NUL: more than
 * VP_JNAME_MAX; see docs/scale-out.md for what jdir.c must learn.) */
#define VP_SHARD_JNAME_MAX 128
void vp_shard_journal_name(char buf[VP_SHARD_JNAME_MAX], uint64_t dev, uint64_t ino,
                           uint64_t created_ns, const struct vp_run_id *id, uint32_t k);
/* Parse such a name strictly; false for anything else (plain journals too). */
bool vp_shard_journal_parse(const char *name, uint64_t *dev, uint64_t *ino,
                            uint64_t *created_ns, struct vp_run_id *id, uint32_t *k);

enum vp_shard_state {
	VP_SHARD_NOT_STARTED = 0,  /* no journal */
	VP_SHARD_RUNNING,          /* a live process holds its journal */
	VP_SHARD_HOT,              /* active or rolling-back, and its process is gone */
	VP_SHARD_COMMITTED,
	VP_SHARD_ROLLED_BACK,
	VP_SHARD_UNREADABLE,       /* a journal of it cannot be read */
};
const char *vp_shard_state_name(enum vp_shard_state s);

struct vp_shard_status {
	uint32_t k;                /* VP_SHARD_FINALIZE for finalize */
	enum vp_shard_state state;
	size_t n_journals;         /* journals of this shard (restarts make more) */
	char journal[VP_SHARD_JNAME_MAX]; /* the one that decides the state ("" if none) */
	bool sightings;            /* its run-<id>-<K>.vps exists */
};

/* Per shard 0..n_shards-1, then finalize as the last element (n_shards+1
 * in all). The state of a shard with several journals: unreadable if any
 * is; else running or hot if any is (a restarted shard's older attempt
 * that is still hot matters more than its newer one); else the newest
 * one's (by creation time, then name). Reads headers and last records only
 * (vp_jr_peek): O(1) per journal. *ret is malloc()ed. */
int vp_run_status(int jdir_fd, const struct vp_run_id *id, uint32_t n_shards,
                  struct vp_shard_status **ret);

enum vp_run_state {
	VP_RUN_PLANNED,            /* no shard started */
	VP_RUN_IN_PROGRESS,        /* some shards not committed yet, none hot */
	VP_RUN_FAILED,             /* a shard is hot, unreadable, or rolled back
	                            * while others are not: roll the run back */
	VP_RUN_READY,              /* every shard committed: finalize is due */
	VP_RUN_FINALIZING,         /* finalize running, or hot */
	VP_RUN_COMMITTED,          /* finalize committed: the run is done */
	VP_RUN_ROLLED_BACK,        /* finalize (if any) and every shard that
	                            * started are rolled back */
};
const char *vp_run_state_name(enum vp_run_state s);
/* The run's state from vp_run_status()'s array (n_shards + 1 elements). */
enum vp_run_state vp_run_state_of(const struct vp_shard_status *st, uint32_t n_shards);

#endif
