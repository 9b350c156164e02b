/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One command on one root (see session.h): the rules that used to sit in
 * the command line, where no unit test reached them. Nothing here prints;
 * the sentences built here go to the caller in a why. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fstype.h"
#include "volperm/quote.h"
#include "volperm/session.h"
#include "volperm/shard.h"

int vp_session_find(int jdir_fd, const struct vp_root *rt, enum vp_pick pick,
                    char name[VP_JNAME_MAX])
{
	struct vp_jinfo *v = NULL;
	size_t n = 0;
	int r = vp_jdir_list(jdir_fd, false, rt->st.st_dev, rt->st.st_ino, &v, &n);

	if (r < 0)
		return r;
	r = 0;
	/* vp_jdir_list orders by sequence, unreadable ones last: newest first
	 * is from the end. */
	for (size_t i = n; i-- > 0;) {
		bool match;
		if (pick == VP_PICK_HOT)
			match = v[i].hot;
		else
			match = v[i].unreadable || pick == VP_PICK_ANY ||
			        v[i].state != VP_JSTATE_ROLLED_BACK;
		if (match) {
			memcpy(name, v[i].name, VP_JNAME_MAX);
			r = 1;
			break;
		}
	}
	vp_jdir_list_free(v, n);
	return r;
}

/* The root and the directories above it, by dev/ino, the root first, as
 * vp_tree_overlap() wants them. A root that is not a directory has no ".."
 * of its own: its parent's ancestry, behind its own dev/ino. (Climbing from
 * the parent alone put the parent first, where vp_tree_overlap() looks for
 * the root itself: a hot journal of the directory holding a one-file volume
 * went unseen.) On failure an empty ancestry: only the root's own journals,
 * and trees found inside it from their side, are seen. */
static void root_ancestry(const struct vp_root *rt, struct vp_ancestry *anc)
{
	struct vp_ancestry up = { 0 };

	*anc = (struct vp_ancestry){ 0 };
	if (S_ISDIR(rt->st.st_mode)) {
		if (vp_ancestry_get(rt->fd, anc) < 0)
			*anc = (struct vp_ancestry){ 0 };
		return;
	}
	if (rt->parent_fd < 0 || vp_ancestry_get(rt->parent_fd, &up) < 0)
		return;
	anc->v = malloc((up.n + 1) * sizeof(*anc->v));
	if (anc->v) {
		anc->v[0] = (struct vp_devino){ (uint64_t)rt->st.st_dev, (uint64_t)rt->st.st_ino };
		memcpy(anc->v + 1, up.v, up.n * sizeof(*up.v));
		anc->n = up.n + 1;
	}
	vp_ancestry_free(&up);
}

void vp_hot_free(struct vp_hot *h)
{
	free(h->tree);
	free(h->unreadable);
	h->tree = NULL;
	h->unreadable = NULL;
	h->n_unreadable = 0;
}

static int note_unreadable(struct vp_hot *h, const char *name)
{
	char (*nv)[VP_JNAME_MAX] = realloc(h->unreadable, (h->n_unreadable + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	h->unreadable = nv;
	memcpy(h->unreadable[h->n_unreadable++], name, VP_JNAME_MAX);
	return 0;
}

/* shard: NULL for a plain run; else the run id and shard K of a sharded
 * run's shard, which ignores the journals of the other shards of its run. */
struct shard_self {
	const uint8_t *run_id;
	uint32_t k;
};

static int check_hot(int jdir_fd, const struct vp_root *rt, bool allow_hot,
                     const struct shard_self *self, struct vp_hot *h)
{
	struct vp_ancestry anc = { 0 };
	struct vp_jinfo *v = NULL;
	size_t n = 0;
	int r = VP_OUT_OK;

	*h = (struct vp_hot){ .block = VP_BLOCK_NONE };
	/* Every journal of the directory, not only this root's: one of a tree
	 * inside this one, or containing it, matters as much (volume.h). */
	if (jdir_fd < 0 || vp_jdir_list(jdir_fd, true, 0, 0, &v, &n) < 0)
		return VP_OUT_OK;
	root_ancestry(rt, &anc);
	for (size_t i = 0; i < n && r == VP_OUT_OK; i++) {
		bool same = v[i].dev == (uint64_t)rt->st.st_dev && v[i].ino == (uint64_t)rt->st.st_ino;
		bool running = v[i].live &&
		               (v[i].state == VP_JSTATE_ACTIVE || v[i].state == VP_JSTATE_ROLLING_BACK);
		if (same && v[i].unreadable && note_unreadable(h, v[i].name) < 0) {
			r = -ENOMEM;
			break;
		}
		if (!running && !v[i].hot)
			continue;
		/* The other shards of our own run change other buckets: running
		 * or hot, they are not ours to wait for (the run's state says
		 * what became of them). Its finalize is: it changes the
		 * directories above every bucket. */
		bool mine = self && v[i].is_shard && !memcmp(v[i].run_id, self->run_id, 16);
		if (mine && v[i].shard != self->k && v[i].shard != VP_SHARD_FINALIZE)
			continue;
		/* Only these few are looked at more closely: the overlap of
		 * another tree costs an open and a climb. */
		int ov = same ? 1 : vp_tree_overlap(rt->st.st_dev, rt->st.st_ino, &anc, &v[i]);
		if (!ov)
			continue;
		/* apply --recover rolls back a hot journal of its own: a plain
		 * run's, or a shard's own one. A plain apply does not take a
		 * sharded run's journal for its own (recover, or rollback
		 * --run, undoes those). */
		if (!running && ov == 1 && allow_hot &&
		    (self ? mine && v[i].shard == self->k : !v[i].is_shard)) {
			memcpy(h->recover, v[i].name, VP_JNAME_MAX);
			continue;
		}
		const char *tree = ov == 1 ? rt->path : v[i].root;
		h->block = running ? VP_BLOCK_RUNNING : ov == 1 ? VP_BLOCK_HOT : VP_BLOCK_HOT_OVERLAP;
		h->overlap = ov;
		memcpy(h->journal, v[i].name, VP_JNAME_MAX);
		if (tree && !(h->tree = strdup(tree))) {
			r = -ENOMEM;
			break;
		}
		r = VP_OUT_BLOCKED;
	}
	vp_ancestry_free(&anc);
	vp_jdir_list_free(v, n);
	return r;
}

int vp_session_check_hot(int jdir_fd, const struct vp_root *rt, bool allow_hot,
                         struct vp_hot *h)
{
	return check_hot(jdir_fd, rt, allow_hot, NULL, h);
}

int vp_session_check_hot_shard(int jdir_fd, const struct vp_root *rt, const uint8_t run_id[16],
                               uint32_t k, bool allow_hot, struct vp_hot *h)
{
	struct shard_self self = { run_id, k };
	return check_hot(jdir_fd, rt, allow_hot, &self, h);
}

int vp_session_unfinished_run(int jdir_fd, const struct vp_root *rt, uint8_t run_id[16])
{
	struct vp_jinfo *v = NULL;
	size_t n = 0;
	int r;

	if (jdir_fd < 0)
		return 0;
	r = vp_jdir_list(jdir_fd, false, rt->st.st_dev, rt->st.st_ino, &v, &n);
	if (r < 0)
		return r;
	r = 0;
	for (size_t i = 0; i < n && !r; i++) {
		if (!v[i].is_shard || (!v[i].unreadable && v[i].state == VP_JSTATE_ROLLED_BACK))
			continue;
		/* A journal of a run that is not undone: is its finalize
		 * committed? */
		bool done = false;
		for (size_t j = 0; j < n && !done; j++)
			done = v[j].is_shard && v[j].shard == VP_SHARD_FINALIZE && !v[j].unreadable &&
			       v[j].state == VP_JSTATE_COMMITTED && !memcmp(v[j].run_id, v[i].run_id, 16);
		if (!done) {
			memcpy(run_id, v[i].run_id, 16);
			r = 1;
		}
	}
	vp_jdir_list_free(v, n);
	return r;
}

int vp_session_lock(const struct vp_root *rt, int jdir_fd, struct vp_tree_lock *lk)
{
	int r = vp_tree_lock(rt->fd, rt->parent_fd, jdir_fd, rt->st.st_dev, rt->st.st_ino, lk);
	return r == -EWOULDBLOCK ? VP_OUT_BLOCKED : r;
}

bool vp_session_jdir_inside(int jdir_fd, const struct vp_root *rt)
{
	return vp_jdir_inside(jdir_fd, rt->st.st_dev, rt->st.st_ino) == 1 ||
	       vp_jdir_inside_fs(jdir_fd, rt->fd) == 1;
}

bool vp_session_jdir_error_deferred(int err)
{
	return err == -ENOENT || err == -EROFS || err == -EACCES || err == -ENOSPC;
}

int vp_session_journal_root(int jdir_fd, const char *name, char **root)
{
	struct vp_jreader *jr = NULL;
	int r = vp_jr_open_at(jdir_fd, name, &jr);

	if (r == 0) {
		*root = strdup(vp_jr_header(jr)->root);
		r = *root ? 0 : -ENOMEM;
	}
	vp_jr_close(jr);
	return r;
}

int vp_session_journals(int jdir_fd, const struct vp_root *rt, struct vp_jinfo **ret,
                        size_t *n_ret)
{
	struct vp_ancestry anc = { 0 };
	struct vp_jinfo *v = NULL;
	size_t n = 0, kept = 0;
	int r = vp_jdir_list(jdir_fd, true, 0, 0, &v, &n);

	if (r < 0)
		return r;
	if (rt) {
		root_ancestry(rt, &anc);
		for (size_t i = 0; i < n; i++) {
			if (!vp_tree_overlap(rt->st.st_dev, rt->st.st_ino, &anc, &v[i])) {
				free(v[i].root);
				continue;
			}
			v[kept++] = v[i];
		}
		vp_ancestry_free(&anc);
		n = kept;
	}
	*ret = v;
	*n_ret = n;
	return 0;
}

/* ---- rollback of one named journal ---- */

static char *join(const char *dir, const char *name)
{
	char *p = NULL;
	return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* A map for a sentence: "uid 0:100000:65536; gid 0:100000:65536", or
 * "the initial namespace's" for the identity (truncated to size). */
static const char *map_text(const struct vp_userns *m, char *buf, size_t size)
{
	FILE *f;

	if (vp_jmap_identity(m))
		return "the initial namespace's identity map";
	f = fmemopen(buf, size, "w");
	if (!f)
		return "an id map";
	setvbuf(f, NULL, _IONBF, 0);
	(void)vp_userns_format(m, f);
	fclose(f);
	buf[size - 1] = 0;
	return buf;
}

/* The ids of a journal are those of the user namespace it was written in
 * (its header's maps; none recorded: the initial namespace). Here they are
 * right when our maps are the same. Otherwise: refused, with one sentence
 * that says where to run it (*j->why), unless force, which reads every
 * entry's ids through the recorded map to host ids and from there to ours
 * (vp_jr_translate), after checking that every one of them has an id here.
 * VP_OUT_OK, VP_OUT_INVALID or -ENOMEM. */
static int rollback_userns(struct vp_rbjob *j, const char *jp, const struct vp_root *rt,
                           bool force)
{
	const struct vp_jheader *h = vp_jr_header(j->r);
	struct vp_userns here = VP_USERNS_INIT;
	char m1[512], m2[512], q2[4096];
	struct vp_jentry e;
	int same = vp_jheader_ns_here(h, &here), r;

	/* /proc cannot tell: as before version 3, a journal without maps is
	 * taken as ours; one with maps cannot be checked, so it is refused. */
	if (same < 0)
		same = vp_jmap_identity(&h->ns);
	if (same) {
		vp_userns_free(&here);
		return VP_OUT_OK;
	}
	if (!force) {
		snprintf(j->why, sizeof(j->why),
		         "journal %s was written in a user namespace with a different id map (%s) than this one (%s): run the rollback there (e.g. podman unshare), or give --force to translate its ids through the recorded map (volperm rollback --force --journal %s %s); nothing was changed",
		         jp, map_text(&h->ns, m1, sizeof(m1)), map_text(&here, m2, sizeof(m2)), jp,
		         vp_quote_shell_buf(q2, sizeof(q2), rt->path, strlen(rt->path)));
		vp_userns_free(&here);
		return VP_OUT_INVALID;
	}
	r = vp_jr_translate(j->r, &h->ns, &here);
	vp_userns_free(&here);
	if (r < 0)
		return r;
	/* Every id first: a rollback that stops half way through for an id it
	 * cannot give would leave the tree neither before nor after. */
	vp_jr_rewind(j->r);
	while ((r = vp_jr_next(j->r, &e)) > 0)
		;
	vp_jr_rewind(j->r);
	if (r == -ERANGE) {
		uint32_t id;
		bool gid;
		vp_jr_xlat_fail(j->r, &id, &gid);
		snprintf(j->why, sizeof(j->why),
		         "journal %s records %s %u, which has no id in this user namespace through the map it was written with (%s)%s; refusing it, nothing was changed",
		         jp, gid ? "gid" : "uid", id, map_text(&h->ns, m1, sizeof(m1)),
		         id == 65534 || id == 4294967295u
		                 ? " (the kernel shows an id that namespace does not map as 65534, or as 4294967295 in an ACL)"
		                 : "");
		return VP_OUT_INVALID;
	}
	if (r < 0) {
		snprintf(j->why, sizeof(j->why), "cannot read journal %s: %s", jp, strerror(-r));
		return r == -ENOMEM ? r : VP_OUT_INVALID;
	}
	return VP_OUT_OK;
}

static int rollback_open(int jdir_fd, const char *jdir_path, const char *name,
                         const struct vp_root *rt, bool force, bool run_rollback,
                         struct vp_rbjob *j)
{
	char q[4096], belongs[512], newest[VP_JNAME_MAX];
	const char *jp;
	int e;

	*j = (struct vp_rbjob){ 0 };
	j->path = join(jdir_path, name);
	if (!j->path)
		return -ENOMEM;
	jp = vp_quote_shell_buf(q, sizeof(q), j->path, strlen(j->path));
	/* Validate first (the reader says where a journal is corrupt), then
	 * take the journal's lock through the writer. */
	e = vp_jr_open_at(jdir_fd, name, &j->r);
	if (e == 0) {
		e = vp_jw_open(jdir_fd, name, 1, &j->w);
		if (e == -EWOULDBLOCK) {
			snprintf(j->why, sizeof(j->why), "journal %s is in use by another volperm", jp);
			return VP_OUT_BLOCKED;
		}
	}
	if (e == -EBADMSG) {
		snprintf(j->why, sizeof(j->why),
		         "journal %s is corrupt (%s); refusing to use it, nothing was changed", jp,
		         j->r ? vp_jr_error(j->r) : "bad header or checksum");
		return VP_OUT_INVALID;
	}
	if (e < 0) {
		snprintf(j->why, sizeof(j->why), "cannot read journal %s: %s", jp,
		         e == -EPROTO ? "written by an incompatible volperm version" : strerror(-e));
		return VP_OUT_INVALID;
	}
	/* Invariant 3, said before anything is printed (vp_rollback_run
	 * checks it again: no caller can skip it). */
	if (vp_journal_belongs(j->r, rt->fd, rt->path, belongs, sizeof(belongs)) < 0) {
		snprintf(j->why, sizeof(j->why), "journal %s %s", jp, belongs);
		return VP_OUT_INVALID;
	}
	/* A committed shard journal is a part of a sharded run: undone alone
	 * (and before its finalize), it would leave the run half undone in an
	 * order no rule allows. A hot one is only its own shard's: recover
	 * may roll it back like any interrupted apply. */
	uint64_t sd, si, sc;
	struct vp_run_id rid;
	uint32_t sk;
	if (!run_rollback && vp_shard_journal_parse(name, &sd, &si, &sc, &rid, &sk) &&
	    vp_jr_state(j->r) != VP_JSTATE_ACTIVE && vp_jr_state(j->r) != VP_JSTATE_ROLLING_BACK) {
		char hex[VP_RUN_ID_HEX], qr[4096];
		vp_run_id_hex(&rid, hex);
		snprintf(j->why, sizeof(j->why),
		         "journal %s belongs to the sharded run %s; roll the whole run back with volperm rollback --run %s %s",
		         jp, hex, hex, vp_quote_shell_buf(qr, sizeof(qr), rt->path, strlen(rt->path)));
		return VP_OUT_INVALID;
	}
	e = rollback_userns(j, jp, rt, force);
	if (e != VP_OUT_OK)
		return e;
	if (vp_jr_state(j->r) == VP_JSTATE_ROLLED_BACK && !force) {
		snprintf(j->why, sizeof(j->why),
		         "journal %s was already rolled back (use --force to run it again)", jp);
		return VP_OUT_INVALID;
	}
	/* Only the newest journal's entries can be judged by their ctime
	 * (rollback.c): a later apply changed them again. */
	j->rb = (struct vp_rollback){
		.root_fd = rt->fd, .root = rt->path, .force = force,
		.newest = vp_session_find(jdir_fd, rt, VP_PICK_ANY, newest) > 0 &&
		          strcmp(newest, name) == 0,
	};
	return VP_OUT_OK;
}

int vp_session_rollback_open(int jdir_fd, const char *jdir_path, const char *name,
                             const struct vp_root *rt, bool force, struct vp_rbjob *j)
{
	return rollback_open(jdir_fd, jdir_path, name, rt, force, false, j);
}

int vp_session_rollback_open_run(int jdir_fd, const char *jdir_path, const char *name,
                                 const struct vp_root *rt, bool force, struct vp_rbjob *j)
{
	return rollback_open(jdir_fd, jdir_path, name, rt, force, true, j);
}

int vp_session_rollback_run(struct vp_rbjob *j, struct vp_stats *st)
{
	struct vp_rollback *rb = &j->rb;
	struct timespec t0, t1;
	char q1[4096], q2[4096];
	int out;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	out = vp_rollback_run(rb, j->r, j->w, st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	st->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (rb->interrupted) {
		size_t l = strlen(rb->why);
		const char *jp = vp_quote_shell_buf(q1, sizeof(q1), j->path, strlen(j->path));
		if (out == VP_OUT_INTERRUPTED)
			snprintf(rb->why + l, sizeof(rb->why) - l, "; nothing was changed (journal %s)",
			         jp);
		else
			snprintf(rb->why + l, sizeof(rb->why) - l, " (%s): run volperm recover %s", jp,
			         vp_quote_shell_buf(q2, sizeof(q2), rb->root, strlen(rb->root)));
	}
	return out;
}

void vp_session_rollback_close(struct vp_rbjob *j)
{
	vp_jr_close(j->r);
	vp_jw_close(j->w);
	free(j->path);
	j->r = NULL;
	j->w = NULL;
	j->path = NULL;
}

/* ---- recover ---- */

int vp_session_recover_next(int jdir_fd, const struct vp_root *rt, bool forward,
                            const char *last, char name[VP_JNAME_MAX],
                            enum vp_recover_step *step)
{
	enum vp_jstate state = VP_JSTATE_ACTIVE;
	bool live = false;
	int r = vp_session_find(jdir_fd, rt, VP_PICK_HOT, name);

	if (r <= 0) {
		name[0] = 0;
		return r; /* VP_OUT_OK: none left */
	}
	/* Recovering a journal that stays hot would loop for ever. */
	if (strcmp(name, last) == 0)
		return VP_OUT_ROLLBACK_INCOMPLETE;
	(void)vp_jr_peek(jdir_fd, name, &state, &live, NULL);
	/* The quick look reads a torn tail as ACTIVE. After a COMMIT the only
	 * record ever written is a rollback's first mark, so a torn one there
	 * is a rollback that crashed as it began: going forward would append
	 * entries after the COMMIT (a corrupt journal, no rollback possible).
	 * Before going forward, read the state the records really end in; a
	 * journal whose rollback began is finished by rolling back, as a
	 * rolling-back one is. */
	if (forward && state == VP_JSTATE_ACTIVE) {
		struct vp_jreader *jr = NULL;
		r = vp_jr_open_at(jdir_fd, name, &jr);
		if (r == 0)
			state = vp_jr_state(jr);
		vp_jr_close(jr);
		/* unreadable: the rollback step names what is wrong with it */
		if (r < 0)
			state = VP_JSTATE_ROLLING_BACK;
	}
	/* A sharded run's journal covers its shard's buckets only: finishing
	 * it forward would walk the whole tree into it. It is rolled back;
	 * the shard finishes by running again (apply --recover --run). */
	uint64_t sd, si, sc;
	struct vp_run_id rid;
	uint32_t sk;
	if (vp_shard_journal_parse(name, &sd, &si, &sc, &rid, &sk))
		forward = false;
	*step = forward && state == VP_JSTATE_ACTIVE ? VP_RECOVER_FORWARD : VP_RECOVER_ROLLBACK;
	return VP_OUT_OK;
}

int vp_session_forward_open(int jdir_fd, const char *jdir_path, const char *name,
                            const struct vp_root *rt, size_t batch_max, struct vp_fwdjob *f)
{
	char q1[4096], q2[4096];
	int r;

	*f = (struct vp_fwdjob){ 0 };
	f->path = join(jdir_path, name);
	if (!f->path)
		return -ENOMEM;
	r = vp_jw_open(jdir_fd, name, batch_max, &f->w);
	if (r < 0) {
		snprintf(f->why, sizeof(f->why), "cannot open journal %s: %s",
		         vp_quote_shell_buf(q1, sizeof(q1), f->path, strlen(f->path)),
		         r == -EBADMSG ? "it is corrupt" : strerror(-r));
		return r == -EWOULDBLOCK ? VP_OUT_BLOCKED : VP_OUT_INVALID;
	}
	/* Only an apply that never committed can be finished forward: entries
	 * after any mark would make the journal corrupt. */
	if (vp_jw_state(f->w) != VP_JSTATE_ACTIVE) {
		snprintf(f->why, sizeof(f->why),
		         "journal %s is %s, not an interrupted apply; refusing to finish it forward (run volperm recover without --forward)",
		         vp_quote_shell_buf(q1, sizeof(q1), f->path, strlen(f->path)),
		         vp_jstate_name(vp_jw_state(f->w)));
		return VP_OUT_INVALID;
	}
	const struct vp_jheader *h = vp_jw_header(f->w);
	/* Its policy's ids are those of the namespace it was written in: going
	 * forward under another map would give the files other owners. There
	 * is no --force for this: rollback --force translates, an apply
	 * cannot be half translated. */
	r = vp_jheader_ns_here(h, NULL);
	if (r == 0 || (r < 0 && !vp_jmap_identity(&h->ns))) {
		char m1[512];
		snprintf(f->why, sizeof(f->why),
		         "journal %s was written in a user namespace with a different id map (%s) than this one: finish it there (e.g. podman unshare volperm recover --forward %s), or roll it back with volperm rollback --force --journal %s %s; nothing was changed",
		         vp_quote_shell_buf(q1, sizeof(q1), f->path, strlen(f->path)),
		         map_text(&h->ns, m1, sizeof(m1)),
		         vp_quote_shell_buf(q2, sizeof(q2), rt->path, strlen(rt->path)), q1, q2);
		return VP_OUT_INVALID;
	}
	if (vp_policy_from_text(h->policy, h->policy_len, &f->policy) < 0) {
		snprintf(f->why, sizeof(f->why),
		         "journal %s has a policy this volperm cannot read; refusing it (for %s)",
		         vp_quote_shell_buf(q1, sizeof(q1), f->path, strlen(f->path)),
		         vp_quote_shell_buf(q2, sizeof(q2), rt->path, strlen(rt->path)));
		return VP_OUT_INVALID;
	}
	f->has_policy = true;
	(void)vp_policy_describe(&f->policy, &f->desc);
	f->run = (struct vp_run){
		.cmd = VP_CMD_APPLY, .root = rt->path, .root_fd = rt->fd, .root_st = rt->st,
		.policy = &f->policy, .jdir_fd = jdir_fd, .keep_going = false,
		.batch_max = batch_max, .resume = f->w, .jdir_path = jdir_path,
	};
	snprintf(f->run.journal, sizeof(f->run.journal), "%s", name);
	return VP_OUT_OK;
}

void vp_session_forward_close(struct vp_fwdjob *f)
{
	vp_jw_close(f->w);
	if (f->has_policy)
		vp_policy_free(&f->policy);
	free(f->desc);
	free(f->path);
	*f = (struct vp_fwdjob){ 0 };
}

/* ---- resources of a run ---- */

size_t vp_session_batch_max(void)
{
	struct rlimit rl;
	size_t b = 4096;

	/* Each entry of a batch holds a pinned fd until the batch is applied;
	 * the --jobs workers share these out. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < 2 * b + 1024) {
			rlim_t want = rl.rlim_max < 2 * b + 1024 ? rl.rlim_max : 2 * b + 1024;
			struct rlimit nl = { want, rl.rlim_max };
			if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
				rl.rlim_cur = want;
		}
		if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 2 < b)
			b = rl.rlim_cur / 2 > 16 ? rl.rlim_cur / 2 - 16 : 1;
	}
	return b;
}

int vp_jobs_parse(const char *text, unsigned *jobs)
{
	char *end;

	if (strcmp(text, "auto") == 0) {
		*jobs = 0;
		return 0;
	}
	errno = 0;
	unsigned long n = strtoul(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || n < 1 || n > VP_JOBS_MAX)
		return -EINVAL;
	*jobs = (unsigned)n;
	return 0;
}

unsigned vp_jobs_default(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 1)
		return CPU_COUNT(&set) < VP_JOBS_DEFAULT_MAX ? (unsigned)CPU_COUNT(&set)
		                                              : VP_JOBS_DEFAULT_MAX;
	return 1;
}

static long long mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

void vp_jobs_auto(int root_fd, struct vp_jobs_choice *c)
{
	unsigned cpus = vp_jobs_default();
	struct statfs sf;
	const char *name;
	char other[24];

	c->jobs = cpus;
	if (fstatfs(root_fd, &sf) < 0) {
		snprintf(c->why, sizeof(c->why), "auto: the CPUs (filesystem unknown)");
		return;
	}
	name = vp_fstype_local((unsigned long)sf.f_type);
	if (name) {
		snprintf(c->why, sizeof(c->why), "auto: %s, %u CPU%s", name, cpus, cpus == 1 ? "" : "s");
		return;
	}
	name = vp_fstype_remote((unsigned long)sf.f_type);
	if (!name) {
		snprintf(other, sizeof(other), "type 0x%lx", (unsigned long)sf.f_type);
		name = other;
	}
	/* One round trip, not the attribute cache: AT_STATX_FORCE_SYNC makes
	 * NFS and FUSE ask the server. The median of 5 keeps one slow answer
	 * from deciding. */
	long long t[5];
	struct statx sx;
	for (int i = 0; i < 5; i++) {
		long long t0 = mono_ns();
		if (statx(root_fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_STATX_FORCE_SYNC,
		          STATX_BASIC_STATS, &sx) < 0) {
			snprintf(c->why, sizeof(c->why), "auto: %s, the CPUs (no latency measured)", name);
			return;
		}
		t[i] = mono_ns() - t0;
	}
	qsort(t, 5, sizeof(t[0]), cmp_ll);
	long long lat = t[2];
	if (lat < 50000) { /* under 50 us: served about as fast as a local disk */
		snprintf(c->why, sizeof(c->why), "auto: %s, %.0f us a request, %u CPU%s", name,
		         (double)lat / 1e3, cpus, cpus == 1 ? "" : "s");
		return;
	}
	/* Each entry costs about 25 us of our CPU; to keep the CPUs busy while
	 * requests wait, about CPUs x latency / 25 us must be in flight. */
	long long want = (long long)cpus * lat / 25000;
	if (want < 16)
		want = 16;
	if (want > VP_JOBS_REMOTE_MAX)
		want = VP_JOBS_REMOTE_MAX;
	c->jobs = (unsigned)want;
	snprintf(c->why, sizeof(c->why), "auto: %s, %.2f ms a request", name, (double)lat / 1e6);
}
