/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_WALK_H
#define VOLPERM_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "volperm/policy.h"

/* The walker: physical, one filesystem, and nothing else. It classifies what
 * it sees and hands every entry to a callback; it never changes anything.
 *
 * Every directory is read through an fd opened with O_NOFOLLOW|O_DIRECTORY
 * relative to its parent's fd and checked against the (dev, ino) its parent
 * listing showed; every entry is stat'ed relative to that fd. No lookup ever
 * goes through more than one path component, so a directory swapped for a
 * symlink during the walk is never followed (glibc fts in FTS_NOCHDIR mode
 * opens directories by full path and cannot promise that; in its chdir mode
 * it changes the process-wide working directory and cannot run in threads).
 *
 * Directories are delivered in postorder (after everything below them), so
 * that a directory is changed only when nothing more needs to pass through
 * it: with CAP_CHOWN but no CAP_DAC_READ_SEARCH, a directory handed to its
 * new owner may no longer be searchable by us. The root comes last.
 *
 * With jobs > 1 the walk runs on `jobs` threads over disjoint subtrees: a
 * worker hands a subdirectory to an idle worker instead of descending into
 * it. A directory part of whose subtree went to another worker is delivered
 * only after that part is delivered *and* the barrier callback of the worker
 * that walked it returned: the engine's barrier journals and applies what
 * that worker holds, so journal order and change order stay postorder across
 * workers. */

enum vp_walk_kind {
	VP_WALK_ENTRY,  /* decide on this entry */
	VP_WALK_SKIP,   /* skipped by a rule: see skip */
	VP_WALK_ERROR,  /* could not be read: see err */
	VP_WALK_FORBIDDEN, /* the forbidden directory (the journal dir) is here */
};

enum vp_skip {
	VP_SKIP_NONE = 0,
	VP_SKIP_EXCLUDED,       /* rule: --exclude */
	VP_SKIP_MOUNT,          /* rule: nested mount point, not entered */
	VP_SKIP_SUBVOLUME,      /* rule: btrfs subvolume (own st_dev, no mount) */
	VP_SKIP_DEVICE,         /* rule: device node */
	VP_SKIP_CYCLE,          /* rule: directory cycle */
	VP_SKIP_EXTERNAL_LINK,  /* safety: hard links outside the tree */
	VP_SKIP_CHANGED,        /* safety: the entry changed under us */
	VP_SKIP__MAX,
};
/* "excluded", "mount-point", "device", "fs-cycle", "external-hardlink", "changed" */
const char *vp_skip_name(enum vp_skip s);
/* Safety skips leave the volume possibly non-compliant (exit 5). */
bool vp_skip_is_safety(enum vp_skip s);

struct vp_walk_entry {
	enum vp_walk_kind kind;
	enum vp_skip skip;
	int err;                  /* positive errno for VP_WALK_ERROR */
	const char *relpath;      /* relative to the root; "." for the root */
	size_t relpath_len;
	const char *name;         /* the last path component ("." for the root) */
	int dirfd;                /* the directory that holds it (read fd, checked),
	                           * or -1 (the root, and delayed directories) */
	int fd;                   /* the entry's own fd: a read fd for directories,
	                           * the caller's O_PATH fd for a non-directory
	                           * root; -1 for other entries */
	const struct stat *st;    /* NULL for some errors */
	const struct stat *parent_st; /* the containing directory; NULL for the root */
	unsigned worker;          /* 0 .. jobs-1: who delivers it */
	/* With cfg->pin, a non-directory may come pinned: pin_fd is an O_PATH
	 * fd of it opened from dirfd by pin.h's rules (vp_pin_open), st is that
	 * fd's statx, pin_btime its birth time (0: none recorded), and dirfd's
	 * ctime was found unchanged (vp_dir_changed) after the open, so the
	 * entry's relpath led to this inode then. The walk owns and closes
	 * pin_fd after delivery; keep it with fcntl(F_DUPFD_CLOEXEC). */
	bool pinned;
	int pin_fd;
	uint64_t pin_btime;
};

/* Return 0 to go on, or a negative errno to stop the walk with it. Called
 * from up to `jobs` threads at once, never twice at once for one worker. */
typedef int (*vp_walk_fn)(const struct vp_walk_entry *e, void *userdata);
/* Everything delivered to `worker` so far must be finished (journaled and
 * changed) when this returns 0. Negative errno stops the walk. */
typedef int (*vp_walk_barrier_fn)(unsigned worker, void *userdata);

struct vp_walk_cfg {
	const char *root;            /* resolved absolute path, for messages */
	int root_fd;                 /* O_PATH fd of the root */
	const struct stat *root_st;  /* fstat(root_fd) */
	const struct vp_policy *policy;
	const struct stat *forbid;   /* a directory never entered: delivered as
	                              * VP_WALK_FORBIDDEN (may be NULL) */
	unsigned jobs;               /* threads, >= 1 */
	vp_walk_fn fn;
	vp_walk_barrier_fn barrier;  /* may be NULL */
	void *userdata;
	/* A walk of one part of a volume (a sharded run's bucket, shard.h):
	 * root_fd is the directory at this path below the volume's root
	 * (relative, no "." or ".." components), and relpaths, including the
	 * excludes' matching, are the volume's: "prefix/..."; the walk's own
	 * root is delivered as "prefix" (with dirfd -1 and its fd). root is
	 * still its absolute path. NULL: root_fd is the volume's root. */
	const char *prefix;
	/* Asked of every subdirectory before it is entered (after the
	 * journal-directory check): true, and it is neither entered nor
	 * delivered, silently (another bucket's). NULL: none is. */
	bool (*prune)(const char *relpath, size_t len, const struct stat *st, void *userdata);
	/* Pin non-directories as they are first stat'ed (an O_PATH open and a
	 * statx of the fd instead of fstatat), in runs of up to VP_WALK_PIN_RUN
	 * names of one listing whose directory's ctime is asked once after the
	 * run: entry.pinned. For apply, which pins every entry it changes: it
	 * then needs no lookup, stat or directory check of its own, which on
	 * network storage is three round trips of the ~eight a changed entry
	 * costs. Names that cannot be pinned so (errors, mount points, moved
	 * directories) are stat'ed as without it. */
	bool pin;
	unsigned pin_flags;          /* VP_PIN_XDEV with --cross-mounts (pin.h) */
};

#define VP_WALK_PIN_RUN 8

/* The most fds one worker of the walk holds at once: its newest 16
 * directories, a directory being opened or reopened, a run of pins. A
 * caller sizes --jobs to RLIMIT_NOFILE with it. */
#define VP_WALK_FDS_PER_JOB (16 + 2 + VP_WALK_PIN_RUN)

/* Walk. Returns 0, the first error a callback returned, or -errno when the
 * walk itself failed (threads, memory). */
int vp_walk(const struct vp_walk_cfg *cfg);

/* Read the xattr `name` of the entry without following a symlink. Returns
 * its size, or -errno (-ENODATA: absent). */
long vp_walk_getxattr(const struct vp_walk_entry *e, const char *name, void *buf, size_t size);

#endif
