/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Rollback (see rollback.h and invariant 5 in journal.c).
 *
 * Order: newest record first. Apply changed every directory after its
 * contents, so in reverse every directory is restored before anything
 * below it is reached: if we hold CAP_CHOWN but not CAP_DAC_READ_SEARCH, a
 * directory is searchable again (it was when apply walked it) before we
 * need to pass through it.
 *
 * Per entry, through an fd pinned with apply's rules (pin.h), from the
 * deepest ancestor directory pinned before (vp_pin_cache) or the root:
 *   state == before-image         -> already restored (a re-run): skip
 *   state == what volperm set     -> restore: chown, then chmod (chown
 *                                    cleared setuid/setgid), then xattrs
 *                                    (chown dropped security.capability)
 *   anything else                 -> conflict: report, leave (unless force)
 * Every restore is verified afterwards. is_before() reads the xattrs it
 * compares back from the inode; the owner and mode it compares come from an
 * fstat taken after the last step that may have left something else than
 * what was asked without an error:
 *   chown           clears setuid, and setgid depending on group-execute
 *                   and CAP_FSETID (no other mode bit)
 *   writing an ACL  an access ACL sets the group class of the mode, and
 *                   may drop setgid
 *   chmod           silently drops setgid without CAP_FSETID when we are
 *                   not in the file's group
 * Other steps are exact when they succeed: a chown of an entry without
 * setuid/setgid bits, a chmod to a mode without setgid, a capability
 * write. Their outcome is known from the pin's fstat and is not asked for
 * again: the common rollback (owners only) costs the pin's fstat alone.
 *
 * With rb->jobs > 1 the entries are restored by that many threads, a chunk
 * of the journal at a time: read newest first, copied, sorted by path, and
 * cut into one contiguous range a thread. The journal of a parallel apply
 * interleaves subtrees; sorted, each thread's entries come directory by
 * directory, and vp_pin_cache (one path of pinned ancestors) resolves each
 * from its parent instead of climbing back from the root: half the
 * requests on network storage. Ranges are of equal size (a big directory
 * is shared), but never cut between records of one path, which therefore
 * stay on one thread in journal order. Two records of one inode under two
 * paths would be identical before-images (the policy changes an inode
 * once; links.c decides a hard-linked inode once; an apply finished
 * forward may record an entry again before changing it, under the same
 * path), so their order does not matter. Inside a chunk the
 * directory-before-contents order no longer
 * holds across threads, so that only happens when this process may search
 * every directory whatever its mode (CAP_DAC_READ_SEARCH or
 * CAP_DAC_OVERRIDE); else one thread.
 * Nothing else depends on the order: each restore is idempotent and checks
 * its own inode only, and the ROLLED_BACK mark follows the last chunk. On
 * network storage, where every request is a round trip, this is what makes
 * rollback as fast as the parallel apply it undoes.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "volperm/caps.h"
#include "decide.h"
#include "fault.h"
#include "meta.h"
#include "pin.h"
#include "preflight.h"
#include "volperm/policy.h"
#include "volperm/quote.h"
#include "volperm/rollback.h"

#define PERM_BITS (S_IRWXU | S_IRWXG | S_IRWXO | S_ISVTX)
#define ID_BITS (S_ISUID | S_ISGID)

int vp_sync_fd_open(int root_fd)
{
	char p[32];
	struct stat a, b;
	int fd;

	/* Reopen the pinned root through its magic link: same inode, and an
	 * fd that syncfs() accepts. Needs read permission; else sync(). */
	/* Never open a FIFO or a device (side effects: a tape rewinds, a
	 * watchdog fires): only directories and regular files. */
	if (fstat(root_fd, &b) < 0)
		return -errno;
	if (!S_ISDIR(b.st_mode) && !S_ISREG(b.st_mode))
		return -EINVAL;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", root_fd);
	fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &a) < 0 || fstat(root_fd, &b) < 0 || a.st_dev != b.st_dev ||
	    a.st_ino != b.st_ino || !(S_ISDIR(a.st_mode) || S_ISREG(a.st_mode))) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int vp_sync_volume(int fd)
{
	if (fd >= 0)
		return syncfs(fd) < 0 ? -errno : 0;
	sync();
	return 0;
}

static bool xattr_equal(int fd, const char *name, const void *want, size_t want_len)
{
	void *cur = NULL;
	size_t len = 0;
	bool eq;

	if (vp_fd_getxattr(fd, name, &cur, &len) < 0)
		return false;
	eq = len == want_len && (len == 0 || memcmp(cur, want, len) == 0);
	free(cur);
	return eq;
}

static bool is_before(const struct stat *st, const struct vp_jentry *e, int fd)
{
	if (st->st_uid != e->uid || st->st_gid != e->gid)
		return false;
	if (!S_ISLNK(st->st_mode) && (st->st_mode & 07777) != (e->mode & 07777))
		return false;
	if ((e->changes & VP_CH_DROP_CAPS) && !xattr_equal(fd, VP_XATTR_CAPS, e->caps, e->caps_len))
		return false;
	if ((e->changes & VP_CH_ACL) &&
	    !xattr_equal(fd, VP_XATTR_ACL_ACCESS, e->acl_access, e->acl_access_len))
		return false;
	if ((e->changes & VP_CH_DEFAULT_ACL) &&
	    !xattr_equal(fd, VP_XATTR_ACL_DEFAULT, e->acl_default, e->acl_default_len))
		return false;
	return true;
}

/* What volperm left: its owner and group, its permission bits, setuid and
 * setgid no more than it meant to leave (the kernel may clear setgid that
 * chown was predicted to keep), and the ACLs it wrote. */
static bool is_after(const struct stat *st, const struct vp_jentry *e, int fd)
{
	if (st->st_uid != e->new_uid || st->st_gid != e->new_gid)
		return false;
	if (S_ISLNK(st->st_mode))
		return true;
	if ((st->st_mode & PERM_BITS) != (e->new_mode & PERM_BITS))
		return false;
	if ((st->st_mode & ID_BITS & ~e->new_mode) != 0)
		return false;
	if ((e->changes & VP_CH_ACL) &&
	    !xattr_equal(fd, VP_XATTR_ACL_ACCESS, e->new_acl_access, e->new_acl_access_len))
		return false;
	if ((e->changes & VP_CH_DEFAULT_ACL) &&
	    !xattr_equal(fd, VP_XATTR_ACL_DEFAULT, e->new_acl_default, e->new_acl_default_len))
		return false;
	return true;
}

/* A crash in the middle of one entry's change (after the chown, before the
 * ACL or the chmod) leaves it half way: every part is either volperm's
 * before or its after value. That is still ours to restore. */
static bool is_between(const struct stat *st, const struct vp_jentry *e, int fd)
{
	mode_t perm = st->st_mode & PERM_BITS, b = e->mode & PERM_BITS, a = e->new_mode & PERM_BITS;

	if ((st->st_uid != e->uid && st->st_uid != e->new_uid) ||
	    (st->st_gid != e->gid && st->st_gid != e->new_gid))
		return false;
	if (S_ISLNK(st->st_mode))
		return true;
	/* before; after; or an access ACL already written (group class = new
	 * mask) with the final chmod still to come */
	if (perm != b && perm != a && perm != ((b & ~(mode_t)S_IRWXG) | (a & S_IRWXG)) &&
	    perm != (vp_mode_after_chown(e->mode) & PERM_BITS))
		return false;
	if (st->st_mode & ID_BITS & ~(e->mode | e->new_mode))
		return false;
	if ((e->changes & VP_CH_ACL) &&
	    !xattr_equal(fd, VP_XATTR_ACL_ACCESS, e->acl_access, e->acl_access_len) &&
	    !xattr_equal(fd, VP_XATTR_ACL_ACCESS, e->new_acl_access, e->new_acl_access_len))
		return false;
	if ((e->changes & VP_CH_DEFAULT_ACL) &&
	    !xattr_equal(fd, VP_XATTR_ACL_DEFAULT, e->acl_default, e->acl_default_len) &&
	    !xattr_equal(fd, VP_XATTR_ACL_DEFAULT, e->new_acl_default, e->new_acl_default_len))
		return false;
	return true;
}

/* cur: the state found before restoring (NULL if unknown). */
static void report(struct vp_rollback *rb, enum vp_event_type t, const struct vp_jentry *e,
                   const struct stat *cur, const char *op, int err, const char *detail)
{
	struct vp_event ev = {
		.type = t, .root = rb->root, .relpath = e->path, .relpath_len = e->path_len,
		.mode = cur ? cur->st_mode : (mode_t)e->new_mode, .uid = cur ? cur->st_uid : e->new_uid,
		.gid = cur ? cur->st_gid : e->new_gid, .new_uid = e->uid, .new_gid = e->gid,
		.new_mode = e->mode, .changes = e->changes, .op = op, .err = err, .detail = detail,
	};
	if (rb->report_mu)
		pthread_mutex_lock(rb->report_mu);
	vp_report(&rb->rep, &ev);
	if (rb->report_mu)
		pthread_mutex_unlock(rb->report_mu);
}

static bool after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/* Would restoring put back a privilege (setuid, setgid, a file capability)
 * that the change took away, onto a file whose content runs? (A directory's
 * setgid only makes new files inherit its group.) */
static bool readds_privilege(const struct stat *st, const struct vp_jentry *e)
{
	return S_ISREG(st->st_mode) &&
	       ((e->mode & ~st->st_mode & (S_ISUID | S_ISGID)) || e->caps_len);
}

#ifndef OVERLAYFS_SUPER_MAGIC
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#endif
#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

/* The journal's creation time comes from the fine clock, birth times from
 * the coarse one file times use, which may lag it by a tick (10 ms at
 * HZ=100): a copy-up made right after the journal was created can carry a
 * birth time a little before it. */
#define CLOCK_SLACK_NS 20000000ull

static uint64_t ts_ns(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
}

/* Is the inode pinned at fd (dev/ino already match) the file the journal
 * recorded? An inode number can be reused as soon as a file is deleted; a
 * reused one has a new birth time, so a different birth time means another
 * file -- except where our own change gave ours a new one. overlayfs (and
 * fuse-overlayfs, a FUSE filesystem) keep a lower file's inode number when
 * its first metadata change copies it up to the upper layer, and the copy is
 * born at that moment. There a changed birth time is still ours when it falls
 * inside the apply itself: after the journal was created, and before the
 * commit (for an apply that never committed, before this rollback started;
 * an init container's app does not start after a failed apply). A file born
 * later is someone else's, and stays a conflict. */
static bool same_file(const struct vp_rollback *rb, int fd, const struct vp_jentry *e,
                      uint64_t btime)
{
	struct statfs sf;

	if (!e->btime || btime == e->btime)
		return true;
	if (fstatfs(fd, &sf) < 0 ||
	    (sf.f_type != OVERLAYFS_SUPER_MAGIC && sf.f_type != FUSE_SUPER_MAGIC))
		return false;
	uint64_t from = rb->applied_ns > CLOCK_SLACK_NS ? rb->applied_ns - CLOCK_SLACK_NS : 0;
	uint64_t to = ts_ns(rb->has_commit_time ? &rb->committed_at : &rb->started) + CLOCK_SLACK_NS;
	return btime >= from && btime <= to;
}

/* 1 restored, 0 already fine, 2 conflict, <0 error (reported). */
static int restore_one(struct vp_rollback *rb, struct vp_pin_cache *pins,
                       const struct vp_jentry *e)
{
	struct stat st, found;
	int fd, r = 0;

	uint64_t btime;
	fd = vp_pin_cached(pins, e->path, e->path_len, e->dev, e->ino, &st, &btime);
	/* Out of fds (EMFILE), memory, I/O, permission: not the tree's doing,
	 * and a re-run may not meet it, so an error (the journal stays
	 * rolling-back), never a conflict, which would be final. */
	if (fd < 0 && !vp_pin_tree_changed(fd)) {
		report(rb, VP_EV_ERROR, e, NULL, "open", -fd, NULL);
		return fd;
	}
	if (fd < 0) {
		report(rb, VP_EV_CONFLICT, e, NULL, "open", -fd,
		       fd == -ESTALE ? "another file is there now" : "it is gone or moved");
		return 2;
	}
	/* Same inode number, another file: the app deleted ours and the
	 * filesystem reused the number for its new one. */
	if (!same_file(rb, fd, e, btime)) {
		report(rb, VP_EV_CONFLICT, e, &st, "verify", 0, "another file is there now");
		r = 2;
		goto out;
	}
	if ((st.st_mode & S_IFMT) != (e->mode & S_IFMT)) {
		report(rb, VP_EV_CONFLICT, e, &st, "verify", 0, "the file type differs");
		r = 2;
		goto out;
	}
	if (is_before(&st, e, fd))
		goto out;
	found = st;
	/* The app may have rewritten the file since (same inode, same mode):
	 * putting setuid root or a capability back onto new content would be a
	 * privilege escalation. Content written after the commit (mtime), or for
	 * the newest journal any inode change after it (ctime, which nobody can
	 * forge; an older journal's entries may carry the ctime of volperm's own
	 * later runs), is a conflict then, even with --force. */
	/* (Changes this rollback made itself come after its start.) */
	if (rb->has_commit_time && readds_privilege(&st, e) &&
	    ((after(&st.st_mtim, &rb->committed_at) && after(&rb->started, &st.st_mtim)) ||
	     (rb->ctime_rule && after(&st.st_ctim, &rb->committed_at) &&
	      after(&rb->started, &st.st_ctim)))) {
		report(rb, VP_EV_CONFLICT, e, &st, "verify", 0,
		       "changed after the apply was committed; setuid/setgid/capabilities are not put back onto it");
		r = 2;
		goto out;
	}
	if (!is_after(&st, e, fd) && !is_between(&st, e, fd) && !rb->force) {
		report(rb, VP_EV_CONFLICT, e, &st, "verify", 0,
		       "changed since volperm set it (use --force to restore anyway)");
		r = 2;
		goto out;
	}
	/* now: owner and mode as this restore leaves them, known while every
	 * step so far is exact when it succeeds (see the header); after one
	 * that is not, an fstat tells. */
	struct stat now = st;
	bool known = true;
	if (st.st_uid != e->uid || st.st_gid != e->gid) {
		r = vp_fd_chown(fd, e->uid, e->gid);
		vp_fault_point("rollback-chown");
		if (r < 0) {
			report(rb, VP_EV_ERROR, e, &st, "chown", -r, NULL);
			goto out;
		}
		now.st_uid = e->uid;
		now.st_gid = e->gid;
		/* chown clears setuid, and setgid depending on group-execute and
		 * CAP_FSETID, and no other mode bit. */
		if (now.st_mode & ID_BITS)
			known = false;
	}
	/* ACLs before the mode: writing an access ACL sets the group class of
	 * the mode, and the final chmod makes the mode exact. */
	if (e->changes & VP_CH_ACL) {
		r = vp_fd_setxattr(fd, VP_XATTR_ACL_ACCESS, e->acl_access, e->acl_access_len);
		vp_fault_point("rollback-setxattr");
		if (r < 0) {
			report(rb, VP_EV_ERROR, e, &found, "setxattr " VP_XATTR_ACL_ACCESS, -r, NULL);
			goto out;
		}
		known = false;
	}
	if (e->changes & VP_CH_DEFAULT_ACL) {
		r = vp_fd_setxattr(fd, VP_XATTR_ACL_DEFAULT, e->acl_default, e->acl_default_len);
		vp_fault_point("rollback-setxattr");
		if (r < 0) {
			report(rb, VP_EV_ERROR, e, &found, "setxattr " VP_XATTR_ACL_DEFAULT, -r, NULL);
			goto out;
		}
		known = false;
	}
	/* chmod only when the mode differs: an unneeded chmod without
	 * CAP_FSETID would drop a setgid bit that is still right. */
	if (!S_ISLNK(e->mode)) {
		if (!known) {
			if (fstat(fd, &now) < 0) {
				r = -errno;
				report(rb, VP_EV_ERROR, e, &found, "fstat", -r, NULL);
				goto out;
			}
			known = true;
		}
		if ((now.st_mode & 07777) != (e->mode & 07777)) {
			r = vp_fd_chmod_type(fd, st.st_mode, e->mode & 07777);
			vp_fault_point("rollback-chmod");
			if (r < 0) {
				report(rb, VP_EV_ERROR, e, &st, "chmod", -r, NULL);
				goto out;
			}
			now.st_mode = (now.st_mode & S_IFMT) | (e->mode & 07777);
			/* chmod sets exactly the bits asked, except setgid, which
			 * it drops silently without CAP_FSETID. */
			if (e->mode & S_ISGID)
				known = false;
		}
	}
	if (e->caps_len) {
		r = vp_fd_setxattr(fd, VP_XATTR_CAPS, e->caps, e->caps_len);
		vp_fault_point("rollback-setxattr");
		if (r < 0) {
			report(rb, VP_EV_ERROR, e, &st, "setxattr security.capability", -r, NULL);
			goto out;
		}
	}
	/* A capability write leaves owner and mode alone; is_before() reads
	 * the xattrs it compares back from the inode in any case. */
	if (known)
		st = now;
	if ((!known && fstat(fd, &st) < 0) || !is_before(&st, e, fd)) {
		r = -EPERM;
		report(rb, VP_EV_ERROR, e, &found, "verify", EPERM,
		       (e->mode & S_ISGID) && !(st.st_mode & S_ISGID)
		               ? "setgid could not be restored (needs CAP_FSETID)"
		               : "the restored state does not match the journal");
		goto out;
	}
	report(rb, VP_EV_RESTORE, e, &found, NULL, 0, NULL);
	r = 1;
out:
	close(fd);
	return r;
}

static bool cancelled(const struct vp_rollback *rb)
{
	return vp_cancel_count(rb->cancel) > rb->cancel_after;
}

/* Count restore_one()'s answer x into st (and *errors). */
static void tally(struct vp_stats *st, uint64_t *errors, int x)
{
	st->scanned++;
	if (x == 1)
		st->restored++;
	else if (x == 0)
		st->already++;
	else if (x == 2)
		st->conflicts++;
	else
		(*errors)++;
}

/* One thread, newest first. Returns 0, or -errno with rb->why set. */
static int restore_serial(struct vp_rollback *rb, struct vp_jreader *r, unsigned pin_flags,
                          struct vp_stats *st, uint64_t *errors)
{
	struct vp_pin_cache *pins = NULL;
	struct vp_jentry e;
	int n;

	if (vp_pin_cache_new(rb->root_fd, pin_flags, &pins) < 0) {
		snprintf(rb->why, sizeof(rb->why), "out of memory");
		return -ENOMEM;
	}
	/* Newest first is preorder (apply journals in postorder): each path is
	 * resolved from its deepest ancestor the cache pinned before, usually
	 * its parent, so an entry costs the same at any depth. */
	while ((n = vp_jr_prev(r, &e)) > 0) {
		/* Between entries only: each restore_one() is a sequence
		 * (chown, ACLs, chmod, caps) that must not stop half way. */
		if (cancelled(rb)) {
			rb->interrupted = true;
			rb->left = vp_jr_entries(r) - st->scanned;
			n = 0; /* the entry in hand was not restored: rb->left counts it */
			break;
		}
		tally(st, errors, restore_one(rb, pins, &e));
		vp_report_progress(&rb->rep, st, st->scanned);
	}
	vp_pin_cache_free(pins);
	if (n < 0)
		snprintf(rb->why, sizeof(rb->why), "cannot read the journal: %s", strerror(-n));
	return n < 0 ? n : 0;
}

/* ---- several threads (see the top of the file) ---- */

/* Entries read and handed out at a time: a multiple of VP_PROGRESS_EVERY,
 * so that progress is shown between chunks as often as one thread shows it;
 * and at most RB_CHUNK_BYTES of copied records (paths, ACLs): a record of a
 * deep tree holds a path of 100 kB, and 4096 of those would be 400 MB. */
#define RB_CHUNK 4096u
#define RB_CHUNK_BYTES (8u << 20)

struct rb_item {
	struct vp_jentry e; /* its pointers point into blk */
	void *blk;
	size_t idx;         /* place in the chunk: journal order, for the sort */
};

struct rb_pool {
	struct vp_rollback *rb;
	struct rb_item *items;   /* the current chunk, sorted */
	size_t *lo, *hi;         /* thread i restores items[lo[i], hi[i]) */
	pthread_mutex_t mu;
	pthread_cond_t go, idle;
	unsigned gen;            /* chunk number: a change wakes the workers */
	unsigned busy;           /* workers still on the current chunk */
	bool quit;
	atomic_bool stop;        /* a signal came: no thread starts another entry */
};

struct rb_worker {
	struct rb_pool *p;
	unsigned id;
	struct vp_pin_cache *pins;
	struct vp_stats st;      /* this chunk's counts; added up between chunks */
	uint64_t errors;
	pthread_t t;
};

static void *rb_worker_main(void *arg)
{
	struct rb_worker *w = arg;
	struct rb_pool *p = w->p;
	unsigned seen = 0;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->gen == seen && !p->quit)
			pthread_cond_wait(&p->go, &p->mu);
		if (p->quit) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		seen = p->gen;
		pthread_mutex_unlock(&p->mu);
		for (size_t i = p->lo[w->id]; i < p->hi[w->id]; i++) {
			if (atomic_load(&p->stop))
				break;
			if (cancelled(p->rb)) {
				atomic_store(&p->stop, true);
				break;
			}
			tally(&w->st, &w->errors, restore_one(p->rb, w->pins, &p->items[i].e));
		}
		pthread_mutex_lock(&p->mu);
		if (--p->busy == 0)
			pthread_cond_signal(&p->idle);
		pthread_mutex_unlock(&p->mu);
	}
}

/* Copy e (whose pointers borrow the reader's buffer) into it: one block.
 * Returns its size, or -ENOMEM. */
static long rb_item_copy(struct rb_item *it, const struct vp_jentry *e)
{
	size_t len = (size_t)e->path_len + 1 + e->acl_access_len + e->acl_default_len +
	             e->caps_len + e->new_acl_access_len + e->new_acl_default_len;
	char *b = malloc(len);

	if (!b)
		return -ENOMEM;
	it->blk = b;
	it->e = *e;
#define RB_TAKE(field, n)                                   \
	do {                                                \
		if (n)                                      \
			memcpy(b, e->field, n);             \
		it->e.field = b;                            \
		b += n;                                     \
	} while (0)
	RB_TAKE(path, e->path_len);
	*b++ = 0;
	RB_TAKE(acl_access, e->acl_access_len);
	RB_TAKE(acl_default, e->acl_default_len);
	RB_TAKE(caps, e->caps_len);
	RB_TAKE(new_acl_access, e->new_acl_access_len);
	RB_TAKE(new_acl_default, e->new_acl_default_len);
#undef RB_TAKE
	return (long)len;
}

static bool same_path(const struct rb_item *a, const struct rb_item *b)
{
	return a->e.path_len == b->e.path_len && !memcmp(a->e.path, b->e.path, a->e.path_len);
}

/* Path, then journal order (qsort is not stable). */
static int rb_item_cmp(const void *pa, const void *pb)
{
	const struct rb_item *a = pa, *b = pb;
	size_t n = a->e.path_len < b->e.path_len ? a->e.path_len : b->e.path_len;
	int c = memcmp(a->e.path, b->e.path, n);

	if (c)
		return c;
	if (a->e.path_len != b->e.path_len)
		return a->e.path_len < b->e.path_len ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Sort the chunk's k items and cut them into the threads' ranges. */
static void rb_share_out(struct rb_pool *p, size_t k, unsigned nworkers)
{
	size_t at = 0;

	qsort(p->items, k, sizeof(*p->items), rb_item_cmp);
	for (unsigned i = 0; i < nworkers; i++) {
		size_t end = k * (i + 1) / nworkers;
		if (end < at)
			end = at;
		while (end > at && end < k && same_path(&p->items[end - 1], &p->items[end]))
			end++;
		p->lo[i] = at;
		p->hi[i] = end;
		at = end;
	}
}

static void rb_add_stats(struct vp_stats *to, struct vp_stats *from)
{
	to->scanned += from->scanned;
	to->restored += from->restored;
	to->already += from->already;
	to->conflicts += from->conflicts;
	*from = (struct vp_stats){ 0 };
}

/* Returns 0, or -errno with rb->why set; 1 when no thread could be started
 * (nothing was restored: the caller goes on with one). */
static int restore_parallel(struct vp_rollback *rb, struct vp_jreader *r, unsigned pin_flags,
                            unsigned jobs, struct vp_stats *st, uint64_t *errors)
{
	struct rb_pool p = { .rb = rb };
	struct rb_worker *w = calloc(jobs, sizeof(*w));
	pthread_mutex_t report_mu = PTHREAD_MUTEX_INITIALIZER;
	unsigned started = 0;
	int n = 1, ret = 0;

	p.items = calloc(RB_CHUNK, sizeof(*p.items));
	p.lo = calloc(jobs, sizeof(*p.lo));
	p.hi = calloc(jobs, sizeof(*p.hi));
	if (!w || !p.items || !p.lo || !p.hi) {
		free(w);
		free(p.items);
		free(p.lo);
		free(p.hi);
		return 1;
	}
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.go, NULL);
	pthread_cond_init(&p.idle, NULL);
	atomic_init(&p.stop, false);
	for (; started < jobs; started++) {
		struct rb_worker *x = &w[started];
		x->p = &p;
		x->id = started;
		if (vp_pin_cache_new(rb->root_fd, pin_flags, &x->pins) < 0)
			break;
		if (pthread_create(&x->t, NULL, rb_worker_main, x) != 0) {
			vp_pin_cache_free(x->pins);
			break;
		}
	}
	if (started < 2) {
		ret = 1;
		goto stop;
	}
	rb->report_mu = &report_mu;
	while (!atomic_load(&p.stop)) {
		size_t k = 0, bytes = 0;
		struct vp_jentry e;
		while (k < RB_CHUNK && bytes < RB_CHUNK_BYTES && (n = vp_jr_prev(r, &e)) > 0) {
			long len = rb_item_copy(&p.items[k], &e);
			if (len < 0) {
				n = -ENOMEM;
				break;
			}
			bytes += (size_t)len;
			p.items[k].idx = k;
			k++;
		}
		if (k) {
			rb_share_out(&p, k, started);
			pthread_mutex_lock(&p.mu);
			p.busy = started;
			p.gen++;
			pthread_cond_broadcast(&p.go);
			while (p.busy)
				pthread_cond_wait(&p.idle, &p.mu);
			pthread_mutex_unlock(&p.mu);
			for (size_t i = 0; i < k; i++)
				free(p.items[i].blk);
			uint64_t before = st->scanned;
			for (unsigned i = 0; i < started; i++) {
				rb_add_stats(st, &w[i].st);
				*errors += w[i].errors;
				w[i].errors = 0;
			}
			/* As often as one thread would: whenever the count passed
			 * a multiple of VP_PROGRESS_EVERY (chunks may be smaller). */
			if (before / VP_PROGRESS_EVERY != st->scanned / VP_PROGRESS_EVERY)
				vp_report_progress(&rb->rep, st, 0);
		}
		if (n <= 0)
			break;
	}
	rb->report_mu = NULL;
	if (atomic_load(&p.stop)) {
		rb->interrupted = true;
		rb->left = vp_jr_entries(r) - st->scanned;
	} else if (n < 0) {
		snprintf(rb->why, sizeof(rb->why), "cannot read the journal: %s", strerror(-n));
		ret = n;
	}
stop:
	pthread_mutex_lock(&p.mu);
	p.quit = true;
	pthread_cond_broadcast(&p.go);
	pthread_mutex_unlock(&p.mu);
	for (unsigned i = 0; i < started; i++) {
		pthread_join(w[i].t, NULL);
		vp_pin_cache_free(w[i].pins);
	}
	pthread_cond_destroy(&p.idle);
	pthread_cond_destroy(&p.go);
	pthread_mutex_destroy(&p.mu);
	pthread_mutex_destroy(&report_mu);
	free(p.items);
	free(p.lo);
	free(p.hi);
	free(w);
	return ret;
}

int vp_journal_belongs(struct vp_jreader *r, int root_fd, const char *root, char *why,
                       size_t size)
{
	const struct vp_jheader *h = vp_jr_header(r);
	char q1[320], q2[320];
	struct stat st;

	if (fstat(root_fd, &st) < 0)
		return -errno;
	if (h->root_dev == (uint64_t)st.st_dev && h->root_ino == (uint64_t)st.st_ino)
		return 0;
	snprintf(why, size,
	         "belongs to %s (device %llu, inode %llu), not to %s (device %llu, inode %llu); refusing it, nothing was changed",
	         vp_quote_path_buf(q1, sizeof(q1), h->root, NULL, 0), (unsigned long long)h->root_dev,
	         (unsigned long long)h->root_ino, vp_quote_path_buf(q2, sizeof(q2), root, NULL, 0),
	         (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	return -EXDEV;
}

enum vp_outcome vp_rollback_run(struct vp_rollback *rb, struct vp_jreader *r, struct vp_jwriter *w,
                                struct vp_stats *st)
{
	const struct vp_jheader *h = vp_jr_header(r);
	struct vp_policy pol;
	struct vp_jentry e;
	unsigned pin_flags = 0;
	uint64_t errors = 0;
	int n, sync_fd;

	rb->why[0] = 0;
	rb->marked = false;
	/* Invariant 3: a journal only ever touches the tree it was made on. */
	char belongs[400];
	int b = vp_journal_belongs(r, rb->root_fd, rb->root, belongs, sizeof(belongs));
	if (b < 0) {
		snprintf(rb->why, sizeof(rb->why), "the journal %s",
		         b == -EXDEV ? belongs : strerror(-b));
		return VP_OUT_INVALID;
	}
	/* One sentence instead of an EPERM per entry, before anything changes:
	 * chown and chmod need CHOWN and FOWNER, unless the caller owns the
	 * file (preflight.c has the rules: a user may roll back their own
	 * rootless apply); putting back a file capability needs SETFCAP;
	 * putting back setgid on a file of a group we are not in needs FSETID
	 * (without it chmod drops the bit without a word). */
	const char *missing = NULL;
	char where[320] = "";
	if (vp_jr_entries(r) && (!vp_cap_effective(CAP_CHOWN) || !vp_cap_effective(CAP_FOWNER) ||
	                         !vp_cap_effective(CAP_SETFCAP) || !vp_cap_effective(CAP_FSETID))) {
		struct vp_creds cr;
		int cr_err = vp_creds_get(&cr);
		if (cr_err < 0) {
			snprintf(rb->why, sizeof(rb->why),
			         "cannot read this process's groups: %s, so no entry was restored",
			         strerror(-cr_err));
			return VP_OUT_INVALID;
		}
		vp_jr_rewind(r);
		while (!missing && vp_jr_next(r, &e) > 0) {
			struct vp_change ch = {
				.uid = e.uid, .gid = e.gid, .mode = e.mode, .new_uid = e.new_uid,
				.new_gid = e.new_gid, .new_mode = e.new_mode, .changes = e.changes,
			};
			const char *what;
			int cap = vp_change_missing_cap(&cr, &ch, true, &what);
			if (cap >= 0)
				missing = cap == CAP_CHOWN ? "CAP_CHOWN" : "CAP_FOWNER";
			else if (e.caps_len && !vp_cap_effective(CAP_SETFCAP))
				missing = "CAP_SETFCAP (to restore file capabilities)";
			else if ((e.mode & S_ISGID) && !(e.new_mode & S_ISGID) && e.gid != getegid() &&
			         !vp_cap_effective(CAP_FSETID))
				missing = "CAP_FSETID (to put back setgid bits that the change cleared)";
			if (missing)
				vp_quote_path_buf(where, sizeof(where), rb->root, e.path, e.path_len);
		}
		vp_creds_free(&cr);
	}
	if (missing) {
		snprintf(rb->why, sizeof(rb->why),
		         "rollback needs the %s capability to restore %s and this process does not have it, so no entry was restored",
		         missing, where);
		return VP_OUT_INVALID;
	}
	struct statvfs sv;
	if (vp_jr_entries(r) && fstatvfs(rb->root_fd, &sv) == 0 && (sv.f_flag & ST_RDONLY)) {
		char q[320];
		snprintf(rb->why, sizeof(rb->why),
		         "%s is on a read-only file system, so no entry was restored (remount it read-write and run it again)",
		         vp_quote_path_buf(q, sizeof(q), rb->root, NULL, 0));
		return VP_OUT_INVALID;
	}
	/* For a committed journal its mtime is the commit time (see
	 * readds_privilege). A crashed apply has no commit: the app did not run
	 * after it (an init container's app starts only on success). */
	rb->committed_at = vp_jr_mtime(r);
	rb->has_commit_time = vp_jr_state(r) == VP_JSTATE_COMMITTED ||
	                      vp_jr_state(r) == VP_JSTATE_ROLLING_BACK;
	/* ctime also moves when a rollback restores (an interrupted one, or an
	 * earlier record of this one): only the first rollback of the newest
	 * journal can read it. The coarse clock is the one file times use. */
	rb->ctime_rule = rb->newest && vp_jr_state(r) == VP_JSTATE_COMMITTED;
	clock_gettime(CLOCK_REALTIME_COARSE, &rb->started);
	rb->applied_ns = h->created_ns;
	if (vp_policy_from_text(h->policy, h->policy_len, &pol) == 0) {
		pin_flags = pol.cross_mounts ? VP_PIN_XDEV : 0;
		vp_policy_free(&pol);
	}
	/* The ROLLBACK_BEGIN mark only tells a later reader that a rollback
	 * started; an ACTIVE journal is rolled back by recovery all the same.
	 * So a full journal filesystem (ENOSPC, the usual reason an apply
	 * aborts) must not stop the restore. */
	/* Stopped before anything changed: leave the journal as it was (a
	 * committed one is not made hot for nothing). */
	rb->interrupted = false;
	rb->left = 0;
	if (vp_cancel_count(rb->cancel) > rb->cancel_after) {
		rb->interrupted = true;
		rb->left = vp_jr_entries(r);
		snprintf(rb->why, sizeof(rb->why), "interrupted by %s before the rollback began",
		         vp_cancel_name(rb->cancel));
		return VP_OUT_INTERRUPTED;
	}
	if (vp_jr_state(r) != VP_JSTATE_ROLLING_BACK)
		(void)vp_jw_mark(w, VP_REC_ROLLBACK_BEGIN);
	sync_fd = vp_sync_fd_open(rb->root_fd);
	vp_jr_seek_end(r);
	/* Threads only pay with requests to wait for: a journal of a few
	 * entries is restored by one. */
	uint64_t entries = vp_jr_entries(r);
	unsigned jobs = rb->jobs;
	if (jobs > entries / 64)
		jobs = (unsigned)(entries / 64);
	/* Each thread's pin cache holds up to VP_PIN_CACHE_FDS directories
	 * and the entry it restores: all of them must fit under
	 * RLIMIT_NOFILE (with room for the journal and the libraries'). */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		rlim_t most = rl.rlim_cur > 64 ? (rl.rlim_cur - 64) / (VP_PIN_CACHE_FDS + 2) : 1;
		if (jobs > most)
			jobs = (unsigned)most;
	}
	n = 1;
	if (jobs > 1 && (vp_cap_effective(CAP_DAC_READ_SEARCH) || vp_cap_effective(CAP_DAC_OVERRIDE)))
		n = restore_parallel(rb, r, pin_flags, jobs, st, &errors);
	if (n == 1)
		n = restore_serial(rb, r, pin_flags, st, &errors);
	st->errors += errors;
	if (n < 0)
		errors++;
	int s = vp_sync_volume(sync_fd);
	vp_fault_point("rollback-syncfs");
	if (sync_fd >= 0)
		close(sync_fd);
	if (s < 0 && !rb->why[0]) {
		snprintf(rb->why, sizeof(rb->why), "cannot sync the volume: %s", strerror(-s));
		errors++;
	}
	/* Interrupted: what was restored is synced, the rest is not touched;
	 * no mark, so the journal stays rolling-back (hot) and `recover`
	 * finishes (restores are idempotent: "already" for the first ones). */
	if (rb->interrupted) {
		snprintf(rb->why, sizeof(rb->why),
		         "interrupted by %s with %llu of %llu entries still to restore; the journal is left rolling-back",
		         vp_cancel_name(rb->cancel), (unsigned long long)rb->left,
		         (unsigned long long)vp_jr_entries(r));
		return VP_OUT_ROLLBACK_INCOMPLETE;
	}
	/* Errors may be passing (EIO, a missing capability): leave the journal
	 * rolling-back so that a re-run finishes. Conflicts are final: someone
	 * else owns those entries now. */
	if (errors) {
		if (!rb->why[0])
			snprintf(rb->why, sizeof(rb->why),
			         "%llu entries could not be restored; fix the cause and run volperm rollback again",
			         (unsigned long long)errors);
		return VP_OUT_ROLLBACK_INCOMPLETE;
	}
	n = vp_jw_mark(w, VP_REC_ROLLED_BACK);
	rb->marked = n == 0;
	if (n < 0) {
		/* Everything is restored, but the journal still says otherwise:
		 * the next command sees it hot and `recover` finds nothing to do
		 * but write the mark. */
		snprintf(rb->why, sizeof(rb->why),
		         "everything was restored, but the journal could not be marked rolled back (%s); run volperm recover when there is space",
		         strerror(-n));
	}
	if (st->conflicts) {
		snprintf(rb->why, sizeof(rb->why),
		         "%llu entries were left alone because they changed since volperm set them",
		         (unsigned long long)st->conflicts);
		return VP_OUT_ROLLBACK_INCOMPLETE;
	}
	return VP_OUT_OK;
}
