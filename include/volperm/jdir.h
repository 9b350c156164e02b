/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_JDIR_H
#define VOLPERM_JDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volperm/journal.h"

/* The journal directory: where journals live, how they are named and found,
 * the per-volume lock, and what makes a directory safe to hold them
 * (invariant 6). */

#define VP_JOURNAL_DIR_DEFAULT "/var/lib/volperm"
/* Room for a shard journal's name too (shard.h: VP_SHARD_JNAME_MAX):
 * vp-<dev>-<ino>-<created_ns>-run<id>-<K>.vpj is 102 bytes. */
#define VP_JNAME_MAX 128

/* The default journal directory (not created): VP_JOURNAL_DIR_DEFAULT for
 * root in the initial user namespace. Anyone else cannot write there, and a
 * root inside a user namespace (podman unshare, a rootless container) is
 * the user: $XDG_STATE_HOME/volperm (when absolute, as the XDG Base
 * Directory spec wants), else $HOME/.local/state/volperm, else the passwd
 * home's. *ret is malloc()ed. -ENOENT when no home is known. */
int vp_jdir_default(char **ret);

/* Open (and with create, mkdir 0700 when missing) the journal directory.
 *   -ENOENT missing   -ELOOP it is a symlink   -ENOTDIR not a directory
 *   -EPERM  owned by someone other than root or the caller
 *   -EEXIST writable by group or others (not -EACCES: that is open()'s) */
int vp_jdir_open(const char *path, bool create, int *ret_fd);
/* The same; with create, missing parents are made too, 0700 (mkdir -p),
 * and on failure tried (when not NULL) gets the directory that could not be
 * made or opened: the one a message must name. */
int vp_jdir_open_ex(const char *path, bool create, int *ret_fd, char *tried, size_t tried_size);

/* 1 if the journal directory is the volume root or inside it, 0 if not. */
int vp_jdir_inside(int jdir_fd, uint64_t root_dev, uint64_t root_ino);
/* The same question through bind mounts: 1 when both are on one filesystem
 * and the journal directory's path inside that filesystem (mountinfo's
 * mount root + the path below the mount point) lies below the volume's. */
int vp_jdir_inside_fs(int jdir_fd, int root_fd);

/* "vp-<dev>-<ino>-<created_ns>.vpj", each as 16 hex digits. */
void vp_jdir_name(char buf[VP_JNAME_MAX], uint64_t dev, uint64_t ino, uint64_t created_ns);

/* Take the per-volume lock (LOCK_EX|LOCK_NB on vp-<dev>-<ino>.lock).
 * -EWOULDBLOCK when another volperm holds it. */
int vp_jdir_lock(int jdir_fd, uint64_t dev, uint64_t ino, int *ret_fd);
/* That lock file's name, "vp-<dev>-<ino>.lock". */
void vp_jdir_lock_name(char buf[VP_JNAME_MAX], uint64_t dev, uint64_t ino);
/* Open (create, 0600, no symlink, a regular file only) lock file name of
 * jdir_fd and flock(how | LOCK_NB) it: 0 with *ret_fd, -EWOULDBLOCK when
 * held, or -errno. */
int vp_jdir_lock_file(int jdir_fd, const char *name, int how, int *ret_fd);

struct vp_jinfo {
	char name[VP_JNAME_MAX];
	uint64_t dev, ino, created_ns;
	enum vp_jstate state;  /* from the last record (quick look) */
	bool live;             /* someone holds its lock right now */
	bool hot;              /* active or rolling-back and not live */
	bool unreadable;       /* not even the header could be read */
	uint64_t seq;          /* its sequence (0: version 1, or unreadable) */
	char *root;            /* its root path as the header records it; NULL
	                        * when unreadable (vp_jdir_list_free frees it) */
	/* A shard journal (shard.h, vp_shard_journal_name): a sharded run's
	 * journal of shard `shard` (VP_SHARD_FINALIZE: its finalize). Plain
	 * journals have is_shard false. It is a journal of its root like any
	 * other: hot, it blocks a plain run there (journal invariant 4). */
	bool is_shard;
	uint8_t run_id[16];
	uint32_t shard;
};

/* Journals for (dev, ino), or all with all=true, oldest first: by their
 * sequence, not their creation time (a clock can be set back); unreadable
 * ones last, as if newest. *ret is
 * malloc()ed: free it with vp_jdir_list_free(). Looks at the header and the
 * last record only: O(1) each. */
int vp_jdir_list(int jdir_fd, bool all, uint64_t dev, uint64_t ino, struct vp_jinfo **ret,
                 size_t *n);
void vp_jdir_list_free(struct vp_jinfo *v, size_t n);

/* The sequence a new journal of (dev, ino) gets: 1 + the largest of its
 * journals in the directory. Call it under the volume lock. */
int vp_jdir_next_seq(int jdir_fd, uint64_t dev, uint64_t ino, uint64_t *seq);

#endif
