/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * plan, check and apply (see engine.h).
 *
 * Apply, entry by entry, in walk order (directories after their contents):
 *   1. decide from the walk's lstat (no syscall);
 *   2. pin: openat2 of its name from the directory fd the walk holds, no
 *      symlinks, no mount crossing, and the fd's dev/ino must be what the
 *      walk saw;
 *   3. decide again from the pinned fstat (that is what gets journaled);
 *   4. read the xattrs that make up the before-image, add it to the batch;
 * and when the batch is full (and at the end):
 *   5. write the batch to the journal and fdatasync it (write-ahead);
 *   6. chown each entry of the batch through its pinned fd.
 * At the end: syncfs the volume, then write the COMMIT mark. Any failure
 * (without --keep-going) stops the walk and rolls back through rollback.c.
 *
 * With --jobs N the walk runs on N workers (walk.c), each with its own batch
 * of pinned entries. The journal writer is shared: each worker waits for the
 * batch its records went into to be durable (one fdatasync serves every
 * worker waiting at that moment) before it changes its entries. The walk's
 * barrier (on_barrier: flush_batch) keeps journal order and change order postorder
 * across workers. Shared state (the hard-link table, the reporter, the first
 * failure) is behind `mu`.
 *
 * The journal and the first change wait for the first entry that needs one:
 * a compliant volume creates no journal and needs no capability.
 *
 * A signal (run->cancel, counted by the CLI's handler) is polled at the safe
 * points only: before each entry of the walk, before each change of a batch,
 * and before the commit. It stops the run like a failure does (apply rolls
 * back through abort_apply), with VP_OUT_INTERRUPTED.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "volperm/caps.h"
#include "decide.h"
#include "volperm/engine.h"
#include "fault.h"
#include "fstype.h"
#include "volperm/jdir.h"
#include "volperm/journal.h"
#include "links.h"
#include "meta.h"
#include "pin.h"
#include "preflight.h"
#include "volperm/quote.h"
#include "volperm/rollback.h"
#include "volperm/shard.h"

/* Room for one quoted path in run->why: longer ones lose their start
 * (vp_quote_shell_buf), so that the sentence around them survives. */
#define WHY_PATH_MAX 320
/* What all the workers' batches may hold in memory together, in paths and
 * journal records (the journal writer holds the records once more while a
 * batch is written): about 8 MiB, whatever the depth. A flat tree of short
 * paths fills a batch by its count of entries long before. */
#define BATCH_BYTES (8u << 20)

struct pending {
	int fd;
	const char *failed_op;   /* for the error report */
	struct stat st;          /* pinned fstat: the before-image */
	struct vp_decision d;
	char *relpath;
	size_t relpath_len;
};

struct ctx;

/* One walk worker: its batch and its counts (summed at the end). */
struct wctx {
	struct ctx *c;
	unsigned id;
	struct pending *batch;
	size_t n, max;
	size_t bytes, max_bytes; /* held for the batch: its paths and records */
	uint32_t ticket;         /* journal batch holding our newest record */
	struct vp_stats st;
	uint64_t shown_scanned, shown_changes; /* already in c->progress */
	bool safety_skip;
};

struct ctx {
	struct vp_run *run;
	pthread_mutex_t mu;      /* reporter, progress, first failure */
	struct vp_links *links;
	pthread_mutex_t start_mu; /* preflight */
	int start_err;
	struct vp_jwriter *jw;
	struct wctx *w;
	unsigned jobs;
	struct vp_stats progress;
	bool started;            /* preflight done, journal open */
	bool failed;             /* run->why and fail are set */
	bool jmarked;            /* an abort's rollback marked the journal rolled back */
	enum vp_outcome fail;    /* the outcome of an abort */
	int sync_fd;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count_type(struct vp_stats *st, mode_t mode)
{
	st->scanned++;
	if (S_ISDIR(mode))
		st->dirs++;
	else if (S_ISREG(mode))
		st->files++;
	else if (S_ISLNK(mode))
		st->symlinks++;
	else
		st->other++;
}

static void count_change(struct vp_stats *st, unsigned ch)
{
	st->changes++;
	st->ch_uid += !!(ch & VP_CH_UID);
	st->ch_gid += !!(ch & VP_CH_GID);
	st->drop_suid += !!(ch & VP_CH_DROP_SUID);
	st->drop_sgid += !!(ch & VP_CH_DROP_SGID);
	st->drop_caps += !!(ch & VP_CH_DROP_CAPS);
	st->ch_mode += !!(ch & VP_CH_MODE);
	st->ch_acl += !!(ch & (VP_CH_ACL | VP_CH_DEFAULT_ACL));
}

static void report(struct ctx *c, const struct vp_event *ev)
{
	pthread_mutex_lock(&c->mu);
	vp_report(&c->run->rep, ev);
	pthread_mutex_unlock(&c->mu);
}

static void report_change(struct wctx *w, const char *relpath, size_t len,
                          const struct stat *st, const struct vp_decision *d)
{
	struct vp_event ev = {
		.type = VP_EV_CHANGE, .root = w->c->run->root, .relpath = relpath,
		.relpath_len = len, .mode = st->st_mode, .uid = st->st_uid, .gid = st->st_gid,
		.new_uid = d->uid, .new_gid = d->gid, .new_mode = d->mode, .changes = d->changes,
	};
	report(w->c, &ev);
}

static void report_skip(struct wctx *w, const char *relpath, size_t len, mode_t mode,
                        enum vp_skip why, const char *detail)
{
	struct vp_event ev = {
		.type = VP_EV_SKIP, .root = w->c->run->root, .relpath = relpath, .relpath_len = len,
		.mode = mode, .skip = why, .detail = detail,
	};
	w->st.skipped++;
	w->st.skip[why]++;
	if (vp_skip_is_safety(why))
		w->safety_skip = true;
	report(w->c, &ev);
}

/* The progress line needs totals over all workers: each adds what it did
 * since it last reported. */
static void report_progress(struct wctx *w)
{
	struct ctx *c = w->c;

	if (!c->run->rep.progress || w->st.scanned % VP_PROGRESS_EVERY)
		return;
	pthread_mutex_lock(&c->mu);
	c->progress.scanned += w->st.scanned - w->shown_scanned;
	c->progress.changes += w->st.changes - w->shown_changes;
	w->shown_scanned = w->st.scanned;
	w->shown_changes = w->st.changes;
	c->run->rep.progress(c->run->rep.userdata, &c->progress);
	pthread_mutex_unlock(&c->mu);
}

/* Record why the whole run fails: the first reason wins. Called with mu
 * held. Every path in fmt's arguments is quoted (vp_quote_*_buf): this
 * sentence goes to the operator's terminal and log. */
static bool set_failure_locked(struct ctx *c, enum vp_outcome code, const char *fmt, va_list ap)
{
	if (c->failed)
		return false;
	vsnprintf(c->run->why, sizeof(c->run->why), fmt, ap);
	c->fail = code;
	c->failed = true;
	return true;
}

static void set_failure(struct ctx *c, enum vp_outcome code, const char *fmt, va_list ap)
{
	pthread_mutex_lock(&c->mu);
	set_failure_locked(c, code, fmt, ap);
	pthread_mutex_unlock(&c->mu);
}

static bool fail_locked(struct ctx *c, enum vp_outcome code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static bool fail_locked(struct ctx *c, enum vp_outcome code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bool first = set_failure_locked(c, code, fmt, ap);
	va_end(ap);
	return first;
}

static int fail_run(struct ctx *c, enum vp_outcome code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail_run(struct ctx *c, enum vp_outcome code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_failure(c, code, fmt, ap);
	va_end(ap);
	return -ECANCELED;
}

/* An operation failed on one entry (detail: why, or NULL). Returns 0 to go
 * on (--keep-going, or a dry run, which reports every problem), or
 * -ECANCELED to stop. */
static int entry_error_ex(struct wctx *w, const char *relpath, size_t len, mode_t mode,
                          const char *op, int err, const char *detail)
{
	struct ctx *c = w->c;
	struct vp_event ev = {
		.type = VP_EV_ERROR, .root = c->run->root, .relpath = relpath, .relpath_len = len,
		.mode = mode, .op = op, .err = err, .detail = detail,
	};
	bool stops = c->run->cmd == VP_CMD_APPLY && !c->run->keep_going;
	char q[WHY_PATH_MAX];

	if (!stops) {
		w->st.errors++;
		report(c, &ev);
		return 0;
	}
	/* The error that stops the run is its reason: the event (for --json)
	 * says it names it, so that a person reads it once. With --jobs, other
	 * workers may fail on entries of their own before the first failure
	 * stops them: the run stops at, and reports, the first; those entries
	 * were not changed, and the rest is rolled back. */
	vp_quote_path_buf(q, sizeof(q), c->run->root, relpath, len);
	pthread_mutex_lock(&c->mu);
	if (fail_locked(c, VP_OUT_ROLLED_BACK, "%s: %s: %s%s%s", q, op, strerror(err),
	                detail ? ": " : "", detail ? detail : "")) {
		w->st.errors++;
		ev.is_reason = true;
		vp_report(&c->run->rep, &ev);
	}
	pthread_mutex_unlock(&c->mu);
	return -ECANCELED;
}

static int entry_error(struct wctx *w, const char *relpath, size_t len, mode_t mode,
                       const char *op, int err)
{
	return entry_error_ex(w, relpath, len, mode, op, err, NULL);
}

/* vp_decide failed on one entry: one error for it, saying why. */
static int decide_error(struct wctx *w, const char *relpath, size_t len, mode_t mode, int r)
{
	if (r == -ENOMEM)
		return fail_run(w->c, VP_OUT_ROLLED_BACK, "out of memory");
	_Static_assert(VP_ACL_MAX == 8191, "the message below names VP_ACL_MAX");
	if (r == -E2BIG)
		return entry_error_ex(w, relpath, len, mode, "edit ACL", E2BIG,
		                      "the ACL would have more than 8191 entries, more than the kernel stores");
	return entry_error(w, relpath, len, mode, "parse ACL", -r);
}

/* Has a signal asked us to stop? Then the run fails as interrupted (the
 * first reason still wins: an abort already under way stays what it was). */
static int check_cancel(struct ctx *c)
{
	if (!vp_cancel_count(c->run->cancel))
		return 0;
	return fail_run(c, VP_OUT_INTERRUPTED, "interrupted by %s",
	                vp_cancel_name(c->run->cancel));
}

static int create_journal(struct ctx *c)
{
	struct vp_run *run = c->run;
	struct vp_jheader h = { .version = VP_JOURNAL_VERSION };
	struct timespec ts;
	struct statfs sfs;
	char host[256] = "", *policy = NULL;
	size_t plen = 0;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	h.created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	h.root_dev = run->root_st.st_dev;
	h.root_ino = run->root_st.st_ino;
	if (fstatfs(run->root_fd, &sfs) == 0) {
		uint32_t v[2];
		memcpy(v, &sfs.f_fsid, sizeof(v));
		h.fsid = (uint64_t)v[0] | (uint64_t)v[1] << 32;
	}
	if (getrandom(h.nonce, sizeof(h.nonce), 0) != sizeof(h.nonce))
		return fail_run(c, VP_OUT_INVALID, "cannot get random bytes for the journal nonce: %s",
		                strerror(errno));
	(void)gethostname(host, sizeof(host) - 1);
	h.host = host;
	h.root = (char *)run->root;
	r = vp_policy_to_text(run->policy, &policy, &plen);
	if (r < 0)
		return fail_run(c, VP_OUT_INVALID, "cannot describe the policy for the journal: %s", strerror(-r));
	h.policy = policy;
	h.policy_len = plen;
	/* The order of the root's journals (the volume lock is held). */
	r = vp_jdir_next_seq(run->jdir_fd, h.root_dev, h.root_ino, &h.seq);
	if (r < 0) {
		free(policy);
		return fail_run(c, VP_OUT_INVALID,
		                "cannot list the journal directory: %s; nothing was changed",
		                strerror(-r));
	}
	if (run->shard_id)
		vp_shard_journal_name(run->journal, h.root_dev, h.root_ino, h.created_ns,
		                      run->shard_id, run->shard_k);
	else
		vp_jdir_name(run->journal, h.root_dev, h.root_ino, h.created_ns);
	/* The id maps the journal's ids mean something in (version 3). */
	r = vp_jheader_set_userns(&h, run->userns);
	if (r == 0)
		r = vp_jw_create(run->jdir_fd, run->journal, &h, run->batch_max, &c->jw);
	vp_userns_free(&h.ns);
	vp_userns_free(&h.userns);
	free(policy);
	if (r < 0) {
		char q[WHY_PATH_MAX];
		r = fail_run(c, VP_OUT_INVALID,
		             "cannot create journal %s in the journal directory: %s; nothing was changed",
		             vp_quote_shell_buf(q, sizeof(q), run->journal, strlen(run->journal)),
		             strerror(-r));
		run->journal[0] = 0;
		return r;
	}
	return 0;
}

/* ---- the capability scan (preflight.h holds the rule) ---- */

struct caps_scan {
	struct vp_creds creds;
	struct vp_nsview ns;       /* owners unmapped here: caps.h */
	bool unmapped;             /* found: one, on the gid side when gid_side */
	bool gid_side;
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

static void caps_scan_event(void *userdata, const struct vp_event *ev)
{
	struct caps_scan *s = userdata;

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
	int cap = -1;
	if (vp_owner_unmapped(&s->ns, ev->uid, ev->gid, ev->changes, &s->gid_side))
		s->unmapped = true;
	else
		cap = vp_change_missing_cap(&s->creds, &ch, false, &what);
	if (cap < 0 && !s->unmapped && s->journaled) {
		reverse = true;
		cap = vp_change_missing_cap(&s->creds, &ch, true, &what);
	}
	if (cap < 0 && !s->unmapped)
		return;
	s->found = true;
	s->cap = cap;
	s->reverse = reverse;
	s->what = what;
	s->owner = s->gid_side ? ev->gid : ev->uid;
	vp_quote_path_buf(s->path, sizeof(s->path), ev->root, ev->relpath, ev->relpath_len);
	atomic_fetch_add(&s->stop.count, 1);
}

/* Before the first change of a run that lacks CAP_CHOWN or CAP_FOWNER, or
 * runs in a user namespace that can show an unmapped owner: the first entry
 * owned by an unmapped id (caps.h), or whose change (or, journaled, whose
 * rollback) needs a capability we lack (preflight.h's rule), found by a
 * nested plan-mode run on one thread so that "the first" is the walk's
 * first. 0 when none does (or neither can happen: no walk); -EPERM with
 * the sentence in why; -EINTR when a signal stopped the scan; -errno. */
static int caps_scan(const struct vp_run *run, char *why, size_t why_size)
{
	struct caps_scan s = { .journaled = run->jdir_fd >= 0 || run->resume, .outer = run->cancel };
	struct vp_stats st;
	int r;

	r = vp_creds_get(&s.creds);
	if (r < 0) {
		snprintf(why, why_size, "cannot read this process's groups: %s; nothing was changed",
		         strerror(-r));
		return r;
	}
	/* Where no owner can show as unmapped (always in the initial
	 * namespace), a run with both capabilities needs no walk. */
	(void)vp_nsview_get(&s.ns);
	if (s.creds.cap_chown && s.creds.cap_fowner && !vp_nsview_active(&s.ns)) {
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
		.rep = { caps_scan_event, NULL, &s }, .cancel = &s.stop,
		/* a shard's (or finalize's) scan walks what it changes */
		.walk = run->walk, .walk_arg = run->walk_arg, .defer_links = run->defer_links,
	};
	enum vp_outcome out = vp_engine_run(&dry, &st);
	vp_creds_free(&s.creds);
	if (s.found && s.unmapped) {
		snprintf(why, why_size,
		         "%s is owned by an id not mapped in this user namespace (shown as %s %u), so it cannot be changed from here: fix it from the host, or with --userns; nothing was changed",
		         s.path, s.gid_side ? "gid" : "uid", (unsigned)s.owner);
		return -EPERM;
	}
	if (s.found && s.what == vp_what_clears_setid && !s.reverse) {
		snprintf(why, why_size,
		         "%s is setuid/setgid: changing its owner clears that bit, which needs the CAP_FOWNER capability, and this process does not have it (add --cap-add FOWNER); nothing was changed",
		         s.path);
		return -EPERM;
	}
	if (s.found) {
		/* The path is already cut to 320 bytes by the quoting; a message
		 * that still does not fit ends in "..." rather than mid-word
		 * unannounced. */
		if (snprintf(why, why_size,
		         "volperm needs the %s capability %s %s (to %s: it is owned by uid %u, this process runs as uid %u) and this process does not have it (%s); nothing was changed",
		         s.cap == CAP_CHOWN ? "CAP_CHOWN" : "CAP_FOWNER",
		         s.reverse ? "to be able to roll back" : "for", s.path, s.what,
		         (unsigned)s.owner, (unsigned)geteuid(),
		         s.reverse ? "give it, or use --no-journal to change without a way back"
		         : s.cap == CAP_CHOWN ? "run it as root, or give the container --cap-add CHOWN"
		                              : "run it as root, or give the container --cap-add FOWNER") >=
		    (int)why_size && why_size > 4)
			memcpy(why + why_size - 4, "...", 4);
		return -EPERM;
	}
	if (vp_cancel_count(run->cancel)) {
		snprintf(why, why_size, "interrupted by %s", vp_cancel_name(run->cancel));
		return -EINTR;
	}
	(void)out; /* entries the dry walk could not read, the apply reports itself */
	return 0;
}

/* Everything that can make the whole apply impossible is checked here,
 * once, before the first change: one clear sentence instead of an EPERM
 * per file, and nothing changed. */
static int preflight(struct ctx *c)
{
	struct statvfs sv;
	char q[WHY_PATH_MAX];
	int r;

	/* A compliant volume needs no journal; this one does. */
	if (c->run->jdir_error)
		return fail_run(c, VP_OUT_INVALID,
		                "cannot create the journal directory %s: %s; give --journal-dir on a writable filesystem outside the volume, or --no-journal; nothing was changed",
		                vp_quote_shell_buf(q, sizeof(q), c->run->jdir_path,
		                                   strlen(c->run->jdir_path)),
		                strerror(-c->run->jdir_error));
	const struct vp_policy *p = c->run->policy;

	/* CAP_CHOWN and CAP_FOWNER: needed per entry (preflight.c), so that a
	 * user may change their own files without them. */
	char msg[sizeof(c->run->why)];
	r = caps_scan(c->run, msg, sizeof(msg));
	if (r < 0)
		return fail_run(c, r == -EINTR ? VP_OUT_INTERRUPTED : VP_OUT_INVALID, "%s", msg);
	/* Without CAP_FSETID the kernel silently drops setgid from a chmod of a
	 * file whose group we are not in: exactly fsGroup's directories. */
	bool sets_setgid = p->has_fsgroup || (p->chmod_text && strchr(p->chmod_text, 's')) ||
	                   (p->chmod.octal && (p->chmod.octal_mode & S_ISGID)) ||
	                   (p->has_root_mode && (p->root_mode & S_ISGID));
	if (sets_setgid && !vp_cap_effective(CAP_FSETID))
		return fail_run(c, VP_OUT_INVALID,
		                "volperm needs the CAP_FSETID capability to set the setgid bit (--fsgroup directories, or your --chmod/--root-mode), and this process does not have it: without it the kernel drops the bit silently (add --cap-add FSETID); nothing was changed");

	/* Every id the policy would write, mapped here (caps.h): one
	 * sentence, not an EINVAL per entry after half the tree changed. */
	if (vp_policy_check_mapped(p, NULL, msg, sizeof(msg)) < 0)
		return fail_run(c, VP_OUT_INVALID, "%s; nothing was changed", msg);
	if (vp_proc_fd_usable() < 0)
		return fail_run(c, VP_OUT_INVALID,
		                "/proc is not mounted: volperm changes entries through /proc/self/fd and cannot work without it; nothing was changed");
	if (fstatvfs(c->run->root_fd, &sv) == 0 && (sv.f_flag & ST_RDONLY))
		return fail_run(c, VP_OUT_ROLLED_BACK,
		                "%s is on a read-only file system; nothing was changed",
		                vp_quote_path_buf(q, sizeof(q), c->run->root, NULL, 0));
	c->sync_fd = vp_sync_fd_open(c->run->root_fd);
	if (c->run->resume) {
		c->jw = c->run->resume;
		return 0;
	}
	if (c->run->jdir_fd >= 0)
		return create_journal(c);
	return 0;
}

static void close_batch(struct wctx *w, size_t from)
{
	for (size_t i = from; i < w->n; i++) {
		close(w->batch[i].fd);
		free(w->batch[i].relpath);
		vp_decision_free(&w->batch[i].d);
	}
	w->n = 0;
	w->bytes = 0;
}

/* Make one entry's change through its pinned fd, in the order the decision
 * assumed: chown (the kernel clears setuid/setgid and capabilities), then
 * the ACLs (setting an access ACL also sets the group class of the mode),
 * then the exact mode. */
static int change_one(struct pending *p)
{
	const struct vp_decision *d = &p->d;
	int r = 0;

	if (d->changes & (VP_CH_UID | VP_CH_GID)) {
		p->failed_op = "chown";
		r = vp_fd_chown(p->fd, d->changes & VP_CH_UID ? d->uid : (uid_t)-1,
		                d->changes & VP_CH_GID ? d->gid : (gid_t)-1);
		vp_fault_point("chown");
		if (r < 0)
			return r;
	}
	if (d->changes & VP_CH_ACL) {
		p->failed_op = "setxattr " VP_XATTR_ACL_ACCESS;
		r = vp_fd_setxattr(p->fd, VP_XATTR_ACL_ACCESS, d->acl_access_len ? d->acl_access : NULL,
		                   d->acl_access_len);
		vp_fault_point("setxattr");
		if (r < 0)
			return r;
	}
	if (d->changes & VP_CH_DEFAULT_ACL) {
		p->failed_op = "setxattr " VP_XATTR_ACL_DEFAULT;
		r = vp_fd_setxattr(p->fd, VP_XATTR_ACL_DEFAULT,
		                   d->acl_default_len ? d->acl_default : NULL, d->acl_default_len);
		vp_fault_point("setxattr");
		if (r < 0)
			return r;
	}
	if (d->changes & (VP_CH_MODE | VP_CH_ACL)) {
		struct stat st;
		p->failed_op = "chmod";
		r = vp_fd_chmod(p->fd, d->mode & 07777);
		vp_fault_point("chmod");
		/* chmod can succeed and still not set what was asked (setgid
		 * without CAP_FSETID): never report a change that did not happen. */
		if (r == 0 && (fstat(p->fd, &st) < 0 || (st.st_mode & 07777) != (d->mode & 07777))) {
			p->failed_op = "chmod (verify)";
			r = -EPERM;
		}
	}
	return r;
}

/* Make this worker's batch durable in the journal, then change it. */
static int flush_batch(struct wctx *w)
{
	struct ctx *c = w->c;
	int r;

	if (!w->n)
		return 0;
	if (c->jw) {
		r = vp_jw_sync(c->jw, w->ticket);
		if (r < 0) {
			char q[WHY_PATH_MAX];
			close_batch(w, 0);
			return fail_run(c, VP_OUT_ROLLED_BACK, "cannot write the journal %s: %s",
			                vp_quote_shell_buf(q, sizeof(q), c->run->journal,
			                                   strlen(c->run->journal)),
			                strerror(-r));
		}
	}
	/* Only now, with their before-images durable, do these entries change. */
	for (size_t i = 0; i < w->n; i++) {
		struct pending *p = &w->batch[i];
		/* Between two entries, never inside one entry's sequence; the
		 * entries not changed yet are journaled, and rollback finds
		 * them as they were. */
		r = check_cancel(c);
		if (r < 0) {
			close_batch(w, i);
			return r;
		}
		r = change_one(p);
		if (r < 0) {
			r = entry_error(w, p->relpath, p->relpath_len, p->st.st_mode, p->failed_op, -r);
			if (r < 0) {
				close_batch(w, i);
				return r;
			}
		} else {
			count_change(&w->st, p->d.changes);
			report_change(w, p->relpath, p->relpath_len, &p->st, &p->d);
		}
		close(p->fd);
		free(p->relpath);
		p->relpath = NULL;
		vp_decision_free(&p->d);
	}
	w->n = 0;
	w->bytes = 0;
	return 0;
}

/* The walk's barrier: everything this worker holds is finished. */
static int on_barrier(unsigned worker, void *userdata)
{
	struct ctx *c = userdata;

	return c->run->cmd == VP_CMD_APPLY ? flush_batch(&c->w[worker]) : 0;
}

/* Preflight once, on the first entry that needs a change, whichever worker
 * meets it; the others wait for it, and share its failure. */
static int ensure_started(struct ctx *c)
{
	int r;

	pthread_mutex_lock(&c->start_mu);
	if (!c->started && !c->start_err) {
		r = preflight(c);
		if (r < 0)
			c->start_err = r;
		else
			c->started = true;
	}
	r = c->start_err;
	pthread_mutex_unlock(&c->start_mu);
	return r;
}

/* Why apply asks whether the directory dirfd changed since the walk's stat
 * of it (vp_dir_changed; also asked of a delayed directory's own fd, with
 * its own stat), unless the walk pinned the entry and asked it already
 * (walk.h, cfg->pin). Pinning from the directory's fd finds the entry even if the directory was
 * renamed away (and a symlink put in its place) after the walk; resolving
 * from the root would have failed there. The inode is the same either way
 * (pin.c), but its journaled path would no longer lead to it, so rollback
 * could not restore it. A renamed directory has a new ctime (tmpfs, ext4,
 * xfs and btrfs all set it); so does one in which an entry was created or
 * removed meanwhile (an app writing, or on overlayfs our own copy-up of a
 * sibling, which creates it in the upper directory). So a changed ctime is
 * not a verdict: the caller then resolves the entry's path from the root as
 * the pin did before (O(depth), but only for these), and only an entry that
 * its path no longer leads to is skipped as changed. This sees the
 * containing directory only; a rename further up can make the journal path
 * stale, which rollback reports as a conflict, as it would for a rename
 * made just after the pin. */
static int apply_change(struct wctx *w, const struct vp_walk_entry *e)
{
	struct ctx *c = w->c;
	struct vp_run *run = c->run;
	struct pending p = { .fd = -1 };
	struct vp_xattrs x;
	int r;

	r = ensure_started(c);
	if (r < 0)
		return r;
	uint64_t btime;
	unsigned pin_flags = run->policy->cross_mounts ? VP_PIN_XDEV : 0;
	const char *changed = NULL;
	/* From the directory the walk holds, by the one name: the walk opened
	 * it O_NOFOLLOW from its own checked parent and checked its dev/ino, so
	 * this proves what a resolution from the root would (pin.c says why),
	 * at a cost that does not grow with depth. A hard link's counted
	 * sighting was a lookup of this same name in this same fd. With
	 * --cross-mounts, a directory that is a mount root is pinned from its
	 * parent on the other filesystem: VP_PIN_XDEV lets that step cross.
	 * A directory whose delivery a split of its subtree delayed (--jobs)
	 * has no parent fd any more, but its own read fd, opened the same way:
	 * "." of it, and its own ctime must be the one its parent's listing
	 * showed (a rename of it moves it). Resolving those from the root cost
	 * O(depth) each, and a tree can be made so that every directory of a
	 * deep chain is delayed (1.86 million opens for 2,000 levels). */
	bool from_root = false;
	if (e->pinned) {
		/* The walk pinned it by these rules and checked its directory
		 * after: its stat is e->st, what was decided on. */
		r = fcntl(e->pin_fd, F_DUPFD_CLOEXEC, 3);
		if (r < 0)
			r = -errno;
		p.st = *e->st;
		btime = e->pin_btime;
	} else if (e->dirfd < 0 && e->fd >= 0 && !(e->relpath_len == 1 && e->relpath[0] == '.')) {
		r = vp_pin(e->fd, ".", e->st->st_dev, e->st->st_ino, &p.st, &btime, pin_flags);
		if (r >= 0 && vp_dir_changed(r, e->st)) {
			close(r);
			from_root = true;
			changed = "it was renamed since the walk listed it";
		}
	} else if (e->dirfd >= 0) {
		r = vp_pin(e->dirfd, e->name, e->st->st_dev, e->st->st_ino, &p.st, &btime, pin_flags);
		/* (In the root, journal paths start from the root's own fd.) */
		if (r >= 0 && e->parent_st && memchr(e->relpath, '/', e->relpath_len) &&
		    vp_dir_changed(e->dirfd, e->parent_st)) {
			close(r);
			from_root = true;
			changed = "its directory was renamed since the walk listed it";
		}
	} else {
		from_root = true;
	}
	if (from_root) {
		r = vp_pin(run->root_fd, e->relpath, e->st->st_dev, e->st->st_ino, &p.st, &btime,
		           pin_flags);
	}
	if (r < 0) {
		if (vp_pin_tree_changed(r)) {
			report_skip(w, e->relpath, e->relpath_len, e->st->st_mode, VP_SKIP_CHANGED,
			            changed ? changed : strerror(-r));
			return 0;
		}
		return entry_error(w, e->relpath, e->relpath_len, e->st->st_mode, "open", -r);
	}
	p.fd = r;
	if (!S_ISDIR(p.st.st_mode) && e->st->st_nlink > 1 &&
	    (p.st.st_ctim.tv_sec != e->st->st_ctim.tv_sec ||
	     p.st.st_ctim.tv_nsec != e->st->st_ctim.tv_nsec || p.st.st_nlink != e->st->st_nlink)) {
		/* The link count was settled on the walk's view of this inode;
		 * any rename or link since then voids it. */
		close(p.fd);
		report_skip(w, e->relpath, e->relpath_len, e->st->st_mode, VP_SKIP_CHANGED,
		            "its hard links changed before it could be changed");
		return 0;
	}
	r = vp_xattrs_read(p.fd, p.st.st_mode, &x);
	if (r < 0) {
		close(p.fd);
		return entry_error(w, e->relpath, e->relpath_len, e->st->st_mode, "getxattr", -r);
	}
	/* Decide again on what is pinned: that is what gets journaled. */
	struct vp_decide_in in = {
		.st = &p.st, .is_root = e->relpath_len == 1 && e->relpath[0] == '.',
		.acl_access = x.acl_access, .acl_access_len = x.acl_access_len,
		.acl_default = x.acl_default, .acl_default_len = x.acl_default_len,
	};
	r = vp_decide(run->policy, &in, &p.d);
	if (r < 0 || !p.d.changes) {
		vp_decision_free(&p.d);
		vp_xattrs_free(&x);
		close(p.fd);
		if (r < 0)
			return decide_error(w, e->relpath, e->relpath_len, e->st->st_mode, r);
		w->st.unchanged++;
		return 0;
	}
	if (x.caps && (p.d.changes & (VP_CH_UID | VP_CH_GID)))
		p.d.changes |= VP_CH_DROP_CAPS;
	/* The kernel refuses to chown a setuid/setgid file without CAP_FOWNER
	 * (clearing the bit is a mode change) unless we own it: say so once,
	 * by name. (The preflight said so already, unless the file changed
	 * since its dry walk.) */
	if ((p.d.changes & (VP_CH_DROP_SUID | VP_CH_DROP_SGID)) && p.st.st_uid != geteuid() &&
	    !vp_cap_effective(CAP_FOWNER)) {
		char q[WHY_PATH_MAX];
		vp_decision_free(&p.d);
		vp_xattrs_free(&x);
		close(p.fd);
		return fail_run(c, VP_OUT_INVALID,
		                "%s is setuid/setgid: changing its owner clears that bit, which needs the CAP_FOWNER capability, and this process does not have it (add --cap-add FOWNER)",
		                vp_quote_path_buf(q, sizeof(q), run->root, e->relpath,
		                                  e->relpath_len));
	}
	if (c->jw) {
		struct vp_jentry je = {
			.dev = p.st.st_dev, .ino = p.st.st_ino, .btime = btime,
			.uid = p.st.st_uid, .gid = p.st.st_gid, .mode = p.st.st_mode,
			.new_uid = p.d.uid, .new_gid = p.d.gid, .new_mode = p.d.mode,
			.changes = p.d.changes,
			.path = e->relpath, .path_len = (uint32_t)e->relpath_len,
			.acl_access = x.acl_access, .acl_access_len = (uint32_t)x.acl_access_len,
			.acl_default = x.acl_default, .acl_default_len = (uint32_t)x.acl_default_len,
			.caps = x.caps, .caps_len = (uint32_t)x.caps_len,
			.new_acl_access = p.d.acl_access,
			.new_acl_access_len = p.d.changes & VP_CH_ACL ? (uint32_t)p.d.acl_access_len : 0,
			.new_acl_default = p.d.acl_default,
			.new_acl_default_len =
				p.d.changes & VP_CH_DEFAULT_ACL ? (uint32_t)p.d.acl_default_len : 0,
		};
		r = vp_jw_add(c->jw, &je, &w->ticket);
		w->bytes += vp_jrec_entry_size(&je);
	}
	vp_xattrs_free(&x);
	if (r < 0) {
		/* Usually not this entry's fault: the shared writer refuses
		 * new records once another worker's batch failed (ENOSPC, EIO),
		 * with that batch's error. Name it, whichever worker got here
		 * first. */
		close(p.fd);
		vp_decision_free(&p.d);
		return fail_run(c, VP_OUT_ROLLED_BACK, "cannot write the journal %s: %s",
		                run->journal, strerror(-r));
	}
	p.relpath = strndup(e->relpath, e->relpath_len);
	p.relpath_len = e->relpath_len;
	if (!p.relpath) {
		close(p.fd);
		vp_decision_free(&p.d);
		return fail_run(c, VP_OUT_ROLLED_BACK, "out of memory");
	}
	w->batch[w->n++] = p; /* the batch owns p's fd, path and ACL buffers now */
	w->bytes += p.relpath_len;
	/* Full by count (the fds it pins) or by bytes: a record of a deep entry
	 * holds a path of up to depth x (NAME_MAX + 1), so a batch full of them
	 * held memory quadratic in the depth (218 MB on 5,000 levels). */
	if (w->n >= w->max || w->bytes >= w->max_bytes)
		return flush_batch(w);
	return 0;
}

static void plan_change(struct wctx *w, const struct vp_walk_entry *e, struct vp_decision *d)
{
	/* The dry run reads (never writes) the one xattr that chown drops, on
	 * files that can be executed: only execve() honours it, and reading it
	 * on every file would cost as much as the walk itself. apply reads it
	 * on every file, for the journal. */
	if (S_ISREG(e->st->st_mode) && (e->st->st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) &&
	    (d->changes & (VP_CH_UID | VP_CH_GID)) &&
	    vp_walk_getxattr(e, VP_XATTR_CAPS, NULL, 0) > 0)
		d->changes |= VP_CH_DROP_CAPS;
	count_change(&w->st, d->changes);
	report_change(w, e->relpath, e->relpath_len, e->st, d);
}

/* An xattr of a walked entry, for the decision: into small when it fits
 * (most ACLs are a few entries), else into a buffer of the size the
 * filesystem reports, so that an ACL of any size it allows (up to the
 * kernel's 64 KiB) is seen whole. *val is small, a malloc()ed buffer, or
 * NULL (with *len 0) when the entry has no such xattr. */
#define WALK_XATTR_SMALL 256
static int read_walk_xattr(const struct vp_walk_entry *e, const char *name,
                           uint8_t small[WALK_XATTR_SMALL], uint8_t **val, size_t *len)
{
	long n = vp_walk_getxattr(e, name, small, WALK_XATTR_SMALL);

	*val = NULL;
	*len = 0;
	if (n > 0) {
		*val = small;
		*len = (size_t)n;
		return 0;
	}
	/* Larger: size it, then read it; again if it grew in between. */
	for (int tries = 0; n == -ERANGE && tries < 8; tries++) {
		long size = vp_walk_getxattr(e, name, NULL, 0);
		if (size <= 0) {
			n = size;
			break;
		}
		uint8_t *buf = malloc((size_t)size);
		if (!buf)
			return -ENOMEM;
		n = vp_walk_getxattr(e, name, buf, (size_t)size);
		if (n > 0) {
			*val = buf;
			*len = (size_t)n;
			return 0;
		}
		free(buf);
	}
	return n == 0 || n == -ENODATA || n == -ENOTSUP ? 0 : (int)n;
}

#ifndef OVERLAYFS_SUPER_MAGIC
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#endif

/* overlayfs without its index feature (index=off, the default of most
 * distributions' kernels, and of Docker's overlay2) copies a lower-layer
 * file up on its first change and splits its hard links there: the name
 * changed gets an inode of its own, every other name keeps the lower one.
 * Counting names and changing the inode once, through the last one, would
 * then change that name only, and the journal would name an inode that is
 * no longer there. So before a multiply-linked regular file on overlayfs is
 * counted, apply makes the copy-up happen for this name: the pinned inode
 * is reopened for writing through its /proc/self/fd link (same inode, no
 * lookup that could be swapped; opening writes nothing, keeps setuid and
 * capabilities, and only a regular file is ever opened) and closed again.
 * If that split the link, this name is a file of its own now (one link, a
 * new inode number), changed like any other, which is what chown -R does on
 * overlayfs; no other name, inside the tree or outside, is touched. If the
 * link stayed whole (an upper-layer file, or index=on), the counting rule
 * applies as anywhere else, and the other names are not probed: with
 * index=on each write-open "links up" one more name and moves the ctime
 * that the link count relies on. (Two names of one inode met first by two
 * workers at the same moment can still both be probed: the count then sees
 * the ctime move and skips the file as changed, the safe side.)
 * Returns 1 with *now the split file's stat; 2 when the link stayed whole,
 * with *now its stat after the copy-up (which moved its ctime: the link
 * table must count from this one); 0 when not on overlayfs; or -errno. */
static int overlay_split(const struct vp_walk_entry *e, struct stat *now)
{
	struct statfs sf;
	struct stat st;
	char p[32];
	int fd, wfd, r = 0;

	if (fstatfs(e->dirfd, &sf) < 0)
		return -errno;
	if (sf.f_type != OVERLAYFS_SUPER_MAGIC)
		return 0;
	fd = openat(e->dirfd, e->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_dev != e->st->st_dev || st.st_ino != e->st->st_ino) {
		r = -ESTALE; /* not what the walk saw: the tree changed under us */
		goto out;
	}
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	wfd = open(p, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (wfd < 0) {
		r = -errno;
		goto out;
	}
	close(wfd);
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	*now = st;
	r = st.st_ino != e->st->st_ino || st.st_nlink < e->st->st_nlink ? 1 : 2;
out:
	close(fd);
	return r;
}

/* A shard's multiply-linked entry that needs a change: another of its
 * links may be in another shard's bucket, or outside the tree, so no shard
 * decides it; apply records what it saw for finalize (shard.h). */
static int defer_link(struct wctx *w, const struct vp_walk_entry *e)
{
	struct ctx *c = w->c;
	struct vp_run *run = c->run;

	if (run->cmd == VP_CMD_APPLY && run->sight) {
		struct vp_sighting s = {
			.dev = (uint64_t)e->st->st_dev, .ino = (uint64_t)e->st->st_ino,
			.fsid = run->sight_fsid, .nlink = (uint64_t)e->st->st_nlink,
			.parent_dev = e->parent_st ? (uint64_t)e->parent_st->st_dev : 0,
			.parent_ino = e->parent_st ? (uint64_t)e->parent_st->st_ino : 0,
			.uid = e->st->st_uid, .gid = e->st->st_gid, .mode = e->st->st_mode,
			.ctime_sec = e->st->st_ctim.tv_sec, .ctime_nsec = (uint32_t)e->st->st_ctim.tv_nsec,
			.path = e->relpath, .path_len = (uint32_t)e->relpath_len,
		};
		int r = vp_sight_add(run->sight, &s);
		if (r < 0)
			return fail_run(c, VP_OUT_ROLLED_BACK, "cannot record a hard link for finalize: %s",
			                strerror(-r));
	}
	pthread_mutex_lock(&c->mu);
	run->deferred++;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* The entry needs the change d: count its hard links, then plan it or
 * apply it. */
static int on_change(struct wctx *w, const struct vp_walk_entry *e, struct vp_decision *d)
{
	struct ctx *c = w->c;
	const struct vp_policy *p = c->run->policy;
	struct stat now, probed;
	struct vp_walk_entry counted, probe;

	if (c->run->defer_links && !S_ISDIR(e->st->st_mode) && e->st->st_nlink > 1)
		return defer_link(w, e);
	if (c->run->cmd == VP_CMD_APPLY && S_ISREG(e->st->st_mode) && e->st->st_nlink > 1 &&
	    !vp_links_known(c->links, e->st->st_dev, e->st->st_ino)) {
		int v = ensure_started(c); /* the copy-up is the first change */
		if (v < 0)
			return v;
		v = overlay_split(e, &probed);
		if (v == -ESTALE || v == -ENOENT || v == -ELOOP) {
			report_skip(w, e->relpath, e->relpath_len, e->st->st_mode, VP_SKIP_CHANGED,
			            strerror(-v));
			return 0;
		}
		if (v < 0)
			return entry_error(w, e->relpath, e->relpath_len, e->st->st_mode, "copy up", -v);
		if (v > 0) {
			probe = *e;
			probe.st = &probed;
			probe.pinned = false; /* the walk's pin is of the lower inode */
			e = &probe;
			if (v == 1)
				return apply_change(w, e);
		}
	}
	if (!S_ISDIR(e->st->st_mode) && e->st->st_nlink > 1) {
		/* One table for all workers: whichever finds an inode's last
		 * link decides, once. */
		int v = vp_links_see(c->links, e->dirfd, e->name, e->parent_st, e->st, e->relpath,
		                     p->allow_external_links, &now);
		if (v == VP_LINKS_UNSTABLE) {
			/* Renamed, linked or unlinked while we walk: a link swap
			 * could be trying to pass an outside file off as ours. */
			report_skip(w, e->relpath, e->relpath_len, e->st->st_mode, VP_SKIP_CHANGED,
			            "its hard links changed during the walk");
			return 0;
		}
		if (v == -ENOMEM)
			return fail_run(c, VP_OUT_ROLLED_BACK, "out of memory");
		if (v < 0) {
			/* Without the watch, a count of its links proves nothing. */
			char detail[160];
			snprintf(detail, sizeof(detail),
			         "cannot watch its hard links for renames: %s%s", strerror(-v),
			         v == -ENOSPC ? " (raise fs.inotify.max_user_watches)"
			         : v == -EMFILE ? " (raise fs.inotify.max_user_instances)"
			         : v == -ENOENT ? " (is /proc mounted?)" : "");
			report_skip(w, e->relpath, e->relpath_len, e->st->st_mode,
			            VP_SKIP_EXTERNAL_LINK, detail);
			return 0;
		}
		if (v != VP_LINKS_DUE)
			return 0; /* not yet due, or decided through another link */
		/* Pin against the sighting that settled the count. */
		counted = *e;
		counted.st = &now;
		counted.pinned = false; /* pinned again, as this sighting */
		e = &counted;
	}
	if (c->run->cmd != VP_CMD_APPLY) {
		plan_change(w, e, d);
		return 0;
	}
	return apply_change(w, e);
}

static int on_entry(const struct vp_walk_entry *e, void *userdata)
{
	struct ctx *c = userdata;
	struct wctx *w = &c->w[e->worker];
	const struct vp_policy *p = c->run->policy;
	struct vp_decision d;
	int r = check_cancel(c);

	if (r < 0)
		return r;
	switch (e->kind) {
	case VP_WALK_SKIP:
		report_skip(w, e->relpath, e->relpath_len, e->st ? e->st->st_mode : 0, e->skip, NULL);
		return 0;
	case VP_WALK_FORBIDDEN: {
		char q[WHY_PATH_MAX];
		return fail_run(c, VP_OUT_INVALID,
		                "the journal directory is inside the volume (reached at %s, e.g. through a bind mount); put it outside the volume",
		                vp_quote_path_buf(q, sizeof(q), c->run->root, e->relpath,
		                                  e->relpath_len));
	}
	case VP_WALK_ERROR:
		return entry_error(w, e->relpath, e->relpath_len, e->st ? e->st->st_mode : 0,
		                   e->st && S_ISDIR(e->st->st_mode) ? "read directory" : "stat", e->err);
	case VP_WALK_ENTRY:
		break;
	}
	count_type(&w->st, e->st->st_mode);
	report_progress(w);
	struct vp_decide_in in = {
		.st = e->st, .is_root = e->relpath_len == 1 && e->relpath[0] == '.',
	};
	uint8_t acc_small[WALK_XATTR_SMALL], def_small[WALK_XATTR_SMALL], *acc = NULL, *def = NULL;
	if (vp_policy_needs_acls(p) && (S_ISREG(e->st->st_mode) || S_ISDIR(e->st->st_mode))) {
		/* Reading only; apply reads again through the pinned fd. */
		r = read_walk_xattr(e, VP_XATTR_ACL_ACCESS, acc_small, &acc, &in.acl_access_len);
		if (r == 0 && S_ISDIR(e->st->st_mode))
			r = read_walk_xattr(e, VP_XATTR_ACL_DEFAULT, def_small, &def,
			                    &in.acl_default_len);
		in.acl_access = acc;
		in.acl_default = def;
	}
	if (r < 0) {
		r = entry_error(w, e->relpath, e->relpath_len, e->st->st_mode, "getxattr", -r);
	} else {
		r = vp_decide(p, &in, &d);
		if (r < 0)
			r = decide_error(w, e->relpath, e->relpath_len, e->st->st_mode, r);
		else if (!d.changes)
			w->st.unchanged++;
		else
			r = on_change(w, e, &d);
		vp_decision_free(&d);
	}
	if (acc != acc_small)
		free(acc);
	if (def != def_small)
		free(def);
	return r;
}

static void on_incomplete_link(const char *relpath, nlink_t seen, nlink_t nlink, void *userdata)
{
	struct ctx *c = userdata;
	char detail[96];

	snprintf(detail, sizeof(detail), "%lu of %lu hard links inside the tree",
	         (unsigned long)seen, (unsigned long)nlink);
	report_skip(&c->w[0], relpath, strlen(relpath), S_IFREG, VP_SKIP_EXTERNAL_LINK, detail);
}

static enum vp_outcome abort_apply(struct ctx *c, struct vp_stats *st)
{
	struct vp_run *run = c->run;
	struct vp_jreader *r = NULL;
	enum vp_outcome ex;
	int e;

	for (unsigned i = 0; i < c->jobs; i++)
		close_batch(&c->w[i], 0);
	if (!c->jw && c->fail == VP_OUT_INTERRUPTED) {
		size_t l = strlen(run->why);
		if (st->changes)
			snprintf(run->why + l, sizeof(run->why) - l,
			         "; %llu entries were changed and stay changed (no journal, nothing to roll back): run it again to finish",
			         (unsigned long long)st->changes);
		else
			snprintf(run->why + l, sizeof(run->why) - l, "; nothing was changed");
		return VP_OUT_INTERRUPTED;
	}
	if (!c->jw)
		/* No journal: what was changed stays changed; a re-run converges. */
		return st->changes ? VP_OUT_PARTIAL : c->fail;
	vp_jw_discard(c->jw);
	e = vp_jr_open_at(run->jdir_fd, run->journal, &r);
	if (e < 0) {
		size_t l = strlen(run->why);
		snprintf(run->why + l, sizeof(run->why) - l,
		         "; and the journal cannot be read back to roll back (%s): run volperm recover",
		         strerror(-e));
		vp_jr_close(r);
		return VP_OUT_ROLLBACK_INCOMPLETE;
	}
	struct vp_rollback rb = {
		.root_fd = run->root_fd, .root = run->root, .rep = run->rep, .cancel = run->cancel,
		.jobs = run->jobs,
		/* the signal that stopped the apply must not stop its undo */
		.cancel_after = vp_cancel_count(run->cancel),
	};
	struct vp_stats rst = { 0 };
	ex = vp_rollback_run(&rb, r, c->jw, &rst);
	uint64_t entries = vp_jr_entries(r);
	vp_jr_close(r);
	st->restored = rst.restored;
	st->already = rst.already;
	st->conflicts = rst.conflicts;
	size_t l = strlen(run->why);
	char qj[WHY_PATH_MAX], qr[WHY_PATH_MAX];
	const char *jpath = run->jdir_path
		? vp_quote_path_buf(qj, sizeof(qj), run->jdir_path, run->journal, strlen(run->journal))
		: vp_quote_shell_buf(qj, sizeof(qj), run->journal, strlen(run->journal));
	if (rb.interrupted) {
		/* A second signal: stop here rather than be SIGKILLed half way
		 * through an entry; the journal is hot and says what is left. */
		snprintf(run->why + l, sizeof(run->why) - l,
		         "; the rollback was interrupted by %s with %llu of %llu entries still to restore: the journal %s is hot, run volperm recover %s",
		         vp_cancel_name(run->cancel), (unsigned long long)rb.left,
		         (unsigned long long)entries, jpath,
		         vp_quote_path_buf(qr, sizeof(qr), run->root, NULL, 0));
		return VP_OUT_ROLLBACK_INCOMPLETE;
	}
	c->jmarked = rb.marked;
	if (ex != VP_OUT_OK) {
		/* Say what the tree holds now: the rollback's own reason may
		 * only speak of what it restored. */
		uint64_t left = st->changes > rst.restored + rst.already
		                        ? st->changes - rst.restored - rst.already : 0;
		if (!rst.conflicts && left)
			snprintf(run->why + l, sizeof(run->why) - l,
			         "; and the rollback was incomplete: %s; %llu entries changed by this apply are still changed: run volperm recover %s once the cause is fixed",
			         rb.why[0] ? rb.why : "see the errors above", (unsigned long long)left,
			         vp_quote_path_buf(qr, sizeof(qr), run->root, NULL, 0));
		else
			snprintf(run->why + l, sizeof(run->why) - l, "; and the rollback was incomplete: %s",
			         rb.why[0] ? rb.why : "see the errors above");
		return VP_OUT_ROLLBACK_INCOMPLETE;
	}
	/* The reason is the one line a person reads about this run (the
	 * error that stopped it is not repeated): it says how it ended. */
	if (c->fail == VP_OUT_INTERRUPTED)
		snprintf(run->why + l, sizeof(run->why) - l,
		         "; every change was rolled back, nothing changed (journal %s)", jpath);
	else if (rst.restored)
		snprintf(run->why + l, sizeof(run->why) - l, "; every change was rolled back");
	else if (rst.already)
		snprintf(run->why + l, sizeof(run->why) - l, "; nothing was changed");
	return c->fail;
}

static void sum_stats(struct vp_stats *to, const struct vp_stats *from)
{
	to->scanned += from->scanned;
	to->dirs += from->dirs;
	to->files += from->files;
	to->symlinks += from->symlinks;
	to->other += from->other;
	to->changes += from->changes;
	to->unchanged += from->unchanged;
	to->skipped += from->skipped;
	to->errors += from->errors;
	to->ch_uid += from->ch_uid;
	to->ch_gid += from->ch_gid;
	to->drop_suid += from->drop_suid;
	to->drop_sgid += from->drop_sgid;
	to->drop_caps += from->drop_caps;
	to->ch_mode += from->ch_mode;
	to->ch_acl += from->ch_acl;
	for (size_t i = 0; i < VP_SKIP__MAX; i++)
		to->skip[i] += from->skip[i];
}

static int ctx_init(struct ctx *c, struct vp_run *run)
{
	c->run = run;
	c->sync_fd = -1;
	c->fail = VP_OUT_ROLLED_BACK;
	c->jobs = run->jobs ? run->jobs : 1;
	/* Each worker needs a few pinned fds for its batch (and ~17 for its
	 * walk, which batch_max already leaves room for): under a low
	 * RLIMIT_NOFILE, fewer workers. */
	if (run->batch_max / c->jobs < 4)
		c->jobs = run->batch_max >= 8 ? (unsigned)(run->batch_max / 4) : 1;
	/* And the walk's own fds must fit beside the batches' (with room for
	 * the journal, the lock and the libraries'): a walk that runs out of
	 * fds stops the run. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		rlim_t used = (rlim_t)run->batch_max + 64;
		rlim_t most = rl.rlim_cur > used ? (rl.rlim_cur - used) / VP_WALK_FDS_PER_JOB : 0;
		if (c->jobs > most)
			c->jobs = most ? (unsigned)most : 1;
	}
	if (pthread_mutex_init(&c->mu, NULL) != 0)
		return -ENOMEM;
	if (pthread_mutex_init(&c->start_mu, NULL) != 0) {
		pthread_mutex_destroy(&c->mu);
		return -ENOMEM;
	}
	c->w = calloc(c->jobs, sizeof(*c->w));
	if (!c->w || vp_links_new(&c->links) < 0)
		return -ENOMEM;
	/* The fds a batch may pin are shared out between the workers. */
	size_t per = run->batch_max / c->jobs;
	for (unsigned i = 0; i < c->jobs; i++) {
		c->w[i] = (struct wctx){ .c = c, .id = i, .max = per,
		                         .max_bytes = BATCH_BYTES / c->jobs };
		c->w[i].batch = calloc(per, sizeof(struct pending));
		if (!c->w[i].batch)
			return -ENOMEM;
	}
	return 0;
}

static void ctx_free(struct ctx *c)
{
	if (c->w)
		for (unsigned i = 0; i < c->jobs; i++)
			free(c->w[i].batch);
	free(c->w);
	vp_links_free(c->links);
	pthread_mutex_destroy(&c->start_mu);
	pthread_mutex_destroy(&c->mu);
}

enum vp_outcome vp_engine_run(struct vp_run *run, struct vp_stats *st)
{
	struct ctx c = { 0 };
	enum vp_outcome ex = VP_OUT_OK;
	double t0 = now();
	bool safety_skip = false;
	char q[WHY_PATH_MAX];
	int r = 0;

	memset(st, 0, sizeof(*st));
	run->deferred = 0;
	if (!run->resume)
		run->journal[0] = 0;
	run->why[0] = 0;
	if (run->batch_max == 0)
		run->batch_max = 1;
	if (ctx_init(&c, run) < 0) {
		ctx_free(&c);
		snprintf(run->why, sizeof(run->why), "out of memory");
		return VP_OUT_INVALID;
	}
	if (run->resume) {
		/* recover --forward: journal invariant 3 holds for finishing an
		 * apply as it does for undoing one. Entries may only follow
		 * entries (vp_session_forward_open refuses a marked journal). */
		assert(vp_jw_state(run->resume) == VP_JSTATE_ACTIVE);
		const struct vp_jheader *h = vp_jw_header(run->resume);
		if (h->root_dev != (uint64_t)run->root_st.st_dev ||
		    h->root_ino != (uint64_t)run->root_st.st_ino) {
			char q1[WHY_PATH_MAX], q2[WHY_PATH_MAX];
			snprintf(run->why, sizeof(run->why),
			         "the journal belongs to %s (device %llu, inode %llu), not to %s; refusing it, nothing was changed",
			         vp_quote_path_buf(q1, sizeof(q1), h->root, NULL, 0),
			         (unsigned long long)h->root_dev, (unsigned long long)h->root_ino,
			         vp_quote_path_buf(q2, sizeof(q2), run->root, NULL, 0));
			ctx_free(&c);
			return VP_OUT_INVALID;
		}
	}
	/* (A shard never changes the root: its answer is finalize's.) */
	if (!run->walk && run->policy->on_root_mismatch &&
	    vp_root_complies(run->policy, &run->root_st)) {
		/* kubelet's OnRootMismatch: an O(1) answer, trusting that a root
		 * which complies was made so by a complete earlier run (the root
		 * is always changed last). */
		st->root_complies = true;
		goto done;
	}
	struct vp_walk_cfg wc = {
		.root = run->root, .root_fd = run->root_fd, .root_st = &run->root_st,
		.policy = run->policy, .forbid = run->has_jdir ? &run->jdir_st : NULL,
		.jobs = c.jobs, .fn = on_entry, .barrier = on_barrier, .userdata = &c,
		/* Where requests are round trips, pinning in the walk saves
		 * three of the ~eight a changed entry costs. On a local disk
		 * it costs instead: an open, a statx and a close for every
		 * entry, changed or not, where fstatat is one syscall (a
		 * re-apply of 100k entries on ext4 took 0.53 s instead of
		 * 0.25 s), and apply's own pin is cheap there. */
		.pin = run->cmd == VP_CMD_APPLY && vp_fs_round_trips(run->root_fd),
		.pin_flags = run->policy->cross_mounts ? VP_PIN_XDEV : 0,
	};
	/* A shard's or finalize's journal exists even when nothing changes:
	 * it is that part's state (shard.h, vp_run_status). */
	if (run->start_journal && run->cmd == VP_CMD_APPLY && !run->resume)
		r = ensure_started(&c);
	if (r == 0)
		r = run->walk ? run->walk(&wc, run->walk_arg) : vp_walk(&wc);
	if (r == 0)
		vp_links_each_incomplete(c.links, on_incomplete_link, &c);
	/* The root's barrier flushed the last batches; an empty walk (a
	 * compliant volume) has none. */
	for (unsigned i = 0; r == 0 && i < c.jobs; i++)
		r = on_barrier(i, &c);
	for (unsigned i = 0; i < c.jobs; i++) {
		sum_stats(st, &c.w[i].st);
		safety_skip |= c.w[i].safety_skip;
	}
	/* recover --forward whose crash came after the last change: nothing is
	 * left to change, but the journal still waits for its commit. */
	if (r == 0 && run->resume && !c.started) {
		c.jw = run->resume;
		c.started = true;
	}
	/* The last safe point: a signal before the commit still undoes all. */
	if (r == 0 && c.started && run->cmd == VP_CMD_APPLY)
		r = check_cancel(&c);
	if (r == 0 && c.started) {
		/* Commit only once every change is on stable storage. */
		r = vp_sync_volume(c.sync_fd);
		vp_fault_point("syncfs");
		if (r < 0)
			r = fail_run(&c, VP_OUT_ROLLED_BACK, "cannot sync %s: %s",
			             vp_quote_path_buf(q, sizeof(q), run->root, NULL, 0), strerror(-r));
		/* A committed shard always has its sightings (shard.h). */
		if (r == 0 && run->sight) {
			r = vp_sight_commit(run->sight);
			run->sight = NULL;
			vp_fault_point("sightings");
			if (r < 0)
				r = fail_run(&c, VP_OUT_ROLLED_BACK,
				             "cannot write the hard links seen for finalize: %s",
				             strerror(-r));
		}
		if (r == 0 && c.jw && (r = vp_jw_mark(c.jw, VP_REC_COMMIT)) < 0)
			r = fail_run(&c, VP_OUT_ROLLED_BACK, "cannot write the commit mark to %s: %s",
			             vp_quote_shell_buf(q, sizeof(q), run->journal,
			                                strlen(run->journal)),
			             strerror(-r));
	}
	if (r < 0 && r != -ECANCELED)
		r = fail_run(&c, VP_OUT_ROLLED_BACK, "cannot walk %s: %s",
		             vp_quote_path_buf(q, sizeof(q), run->root, NULL, 0), strerror(-r));
	if (r < 0 && run->cmd != VP_CMD_APPLY && c.fail == VP_OUT_INTERRUPTED) {
		size_t l = strlen(run->why);
		snprintf(run->why + l, sizeof(run->why) - l, "; nothing was changed");
	}
	if (r < 0)
		ex = run->cmd == VP_CMD_APPLY ? abort_apply(&c, st) : c.fail;
	else if (run->cmd == VP_CMD_CHECK)
		ex = st->errors ? VP_OUT_PARTIAL
		     : st->changes || safety_skip ? VP_OUT_CHANGES_NEEDED : VP_OUT_OK;
	else if (st->errors || safety_skip)
		ex = VP_OUT_PARTIAL;
done:
	/* What the journal says now, for the summary. */
	/* An abort's rollback either wrote its ROLLED_BACK mark (conflicts
	 * are final: left alone and reported, the journal is rolled back) or
	 * it did not, and the journal is hot until recover finishes it. */
	run->journal_state = !c.jw ? NULL
	                     : r == 0 ? "committed"
	                     : c.jmarked ? "rolled back"
	                                 : "rolling-back: run volperm recover";
	if (c.jw != run->resume)
		vp_jw_close(c.jw);
	if (c.sync_fd >= 0)
		close(c.sync_fd);
	ctx_free(&c);
	st->seconds = now() - t0;
	return ex;
}
