/* SPDX-License-Identifier: GPL-2.0-or-later */
/* plan, check and apply (docs/volperm.1): the root, the journal directory,
 * the volume lock and the hot-journal check (session.h), then the engine. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "volperm/caps.h"
#include "volperm/jdir.h"
#include "volperm/report.h"
#include "volperm/session.h"
#include "volperm/shard.h"

#include "cli.h"

/* Say what vp_session_check_hot() found: the journals it could not read,
 * then what blocks the run, if anything. */
static void say_hot(const struct vp_hot *h, const char *jdir_path, const struct vp_root *rt)
{
	struct qpath q1, q2, q3;

	for (size_t i = 0; i < h->n_unreadable; i++)
		cli_error("warning: journal %s for %s cannot be read (corrupt?); it is ignored, see 'volperm journal show'",
		          qjp(&q1, jdir_path, h->unreadable[i]), qp(&q2, rt->path));
	switch (h->block) {
	case VP_BLOCK_NONE:
		break;
	case VP_BLOCK_RUNNING:
		cli_error("another volperm is changing %s right now (journal %s)%s%s; try again when it has finished",
		          qp(&q1, h->tree), qjp(&q2, jdir_path, h->journal),
		          h->overlap == 1 ? "" : h->overlap == 2 ? ", which contains " : ", which is inside ",
		          h->overlap == 1 ? "" : qp(&q3, rt->path));
		break;
	case VP_BLOCK_HOT:
		cli_error("an interrupted apply left %s half changed (journal %s); run 'volperm recover %s' first (or 'apply --recover')",
		          qp(&q1, h->tree), qjp(&q2, jdir_path, h->journal), q1.s);
		break;
	case VP_BLOCK_HOT_OVERLAP:
		/* apply --recover rolls back this root's journal only: the
		 * other one is recovered on its own root. */
		cli_error("an interrupted apply left %s half changed (journal %s), and it %s %s; run 'volperm recover %s' first",
		          qp(&q1, h->tree), qjp(&q2, jdir_path, h->journal),
		          h->overlap == 2 ? "contains" : "is inside", qp(&q3, rt->path), q1.s);
		break;
	}
}

/* A sharded run on this root that is not finalized: its tree is half
 * changed by design until then (docs/scale-out.md). */
static void say_unfinished_run(int jdir, const struct vp_root *rt)
{
	struct vp_run_id id;
	char hex[VP_RUN_ID_HEX];
	struct qpath q;

	if (vp_session_unfinished_run(jdir, rt, id.b) != 1)
		return;
	vp_run_id_hex(&id, hex);
	cli_error("warning: the sharded run %s on %s is not done (see volperm shard status --run %s)",
	          hex, qp(&q, rt->path), hex);
}

/* Everything before the engine: 0 to go on, else the exit status (said).
 * *jdir_error: a journal directory that could not be opened, for the
 * engine to say once a change is due; jdir_tried (PATH_MAX) names the
 * directory that failed (a parent of jdir_path when mkdir -p stopped there). */
static int prepare(const struct cli_opts *o, enum vp_cmd cmd, const char *arg,
                   const char *jdir_path, struct vp_root *rt, int *jdir, int *jdir_error,
                   char *jdir_tried, struct vp_tree_lock *lock)
{
	bool journaled = cmd == VP_CMD_APPLY && !o->no_journal;
	struct vp_hot hot;
	struct qpath q1, q2;
	int r, ex;

	if (cli_open_root(arg, rt, o->allow_system_path) < 0)
		return VP_EXIT_USAGE;
	r = cli_open_jdir_ex(jdir_path, journaled, jdir, jdir_tried, PATH_MAX);
	*jdir_error = 0;
	if (vp_session_jdir_error_deferred(r))
		*jdir_error = journaled ? r : 0;
	else if (r < 0)
		return VP_EXIT_USAGE;
	if (*jdir >= 0 && vp_session_jdir_inside(*jdir, rt)) {
		cli_error("the journal directory %s is inside %s; put it outside the volume (apps may refuse a volume with extra files, and a journal must not change with the tree it describes)",
		          qp(&q1, jdir_path), qp(&q2, rt->path));
		return VP_EXIT_USAGE;
	}
	if (cmd == VP_CMD_APPLY && (ex = cli_lock(rt, journaled ? *jdir : -1, lock)))
		return ex;
	r = vp_session_check_hot(*jdir, rt, cmd == VP_CMD_APPLY && o->recover, &hot);
	say_hot(&hot, jdir_path, rt);
	say_unfinished_run(*jdir, rt);
	ex = cli_exit(r);
	if (r >= 0 && !ex && hot.recover[0]) {
		ex = cli_rollback_journal(o, *jdir, jdir_path, hot.recover, rt, "recover", false);
		/* The rollback changed the root: decide on what it is now. */
		if (!ex && (r = vp_root_refresh(rt)) < 0) {
			cli_error("%s: %s", qp(&q1, rt->path), strerror(-r));
			ex = VP_EXIT_USAGE;
		}
	}
	vp_hot_free(&hot);
	return ex;
}

/* plan and check: the entries to change that are owned by an id unmapped
 * in this user namespace, counted on the way to the output (caps.h), for
 * one warning at the end; apply refuses them up front instead. */
struct owner_watch {
	struct vp_unmapped_owners w;
	struct vp_reporter inner;
};

static void watch_event(void *userdata, const struct vp_event *ev)
{
	struct owner_watch *ow = userdata;

	vp_unmapped_owners_event(&ow->w, ev);
	vp_report(&ow->inner, ev);
}

static void watch_progress(void *userdata, const struct vp_stats *st)
{
	struct owner_watch *ow = userdata;

	if (ow->inner.progress)
		ow->inner.progress(ow->inner.userdata, st);
}

int cmd_run(const struct cli_opts *o, enum vp_cmd cmd, const char *command, const char *arg)
{
	struct vp_tree_lock lock = VP_TREE_LOCK_INIT;
	struct qpath qs1; /* for the closing lines */
	struct vp_output out = cli_output(o, command);
	const char *jdir_path = cli_journal_dir(o);
	struct vp_root rt = VP_ROOT_INIT;
	struct vp_policy policy = o->policy; /* the scope options join it here */
	struct vp_stats st;
	char *desc = NULL, *jp = NULL, jdir_tried[PATH_MAX] = "";
	int jdir = -1, jdir_error = 0, ex;

	if (vp_policy_is_empty(&o->policy)) {
		usage_error("nothing to do: give --owner, --map, --map-gid, --fsgroup, --chmod, --root-mode, --grant or --revoke");
		return VP_EXIT_USAGE;
	}
	if (o->no_journal && o->recover) {
		usage_error("--recover needs the journal: it cannot go with --no-journal");
		return VP_EXIT_USAGE;
	}
	policy.cross_mounts = o->cross_mounts;
	policy.include_devices = o->include_devices;
	policy.allow_external_links = o->allow_external_links;
	ex = prepare(o, cmd, arg, jdir_path, &rt, &jdir, &jdir_error, jdir_tried, &lock);
	if (ex)
		goto out;
	if ((vp_userns_empty(&o->userns) ? vp_policy_describe(&policy, &desc)
	                                 : vp_userns_describe(&o->userns, &policy, &desc)) < 0)
		desc = NULL;
	bool journaled = cmd == VP_CMD_APPLY && !o->no_journal;
	struct vp_run run = {
		.cmd = cmd, .root = rt.path, .root_fd = rt.fd, .root_st = rt.st,
		.policy = &policy, .jdir_fd = journaled ? jdir : -1, .keep_going = o->keep_going,
		.jdir_error = jdir_error, .jdir_path = jdir_error && jdir_tried[0] ? jdir_tried : jdir_path,
		.batch_max = vp_session_batch_max(), .rep = { vp_output_event, vp_output_progress, &out },
		.jobs = o->jobs, .cancel = &cli_cancel,
		.userns = vp_userns_empty(&o->userns) ? NULL : &o->userns,
	};
	struct vp_jobs_choice jc;
	run.jobs = cli_jobs(o, rt.fd, &jc, &out);
	run.has_jdir = jdir >= 0 && fstat(jdir, &run.jdir_st) == 0;
	struct owner_watch ow = { .inner = run.rep };
	if (cmd != VP_CMD_APPLY && vp_nsview_get(&ow.w.ns) == 0 && vp_nsview_active(&ow.w.ns))
		run.rep = (struct vp_reporter){ watch_event, watch_progress, &ow };
	out.expected = vp_root_used_inodes(&rt);
	vp_output_start(&out, rt.path, desc);
	/* Before the walk: no id outside this namespace's maps can be written
	 * (with --userns: the host ids). apply refuses such a target as a run
	 * (its sentence printed once, and the --json summary's message); plan
	 * and check show what the policy means and warn, once, that apply
	 * would refuse it (issue 13: a dry run still answers). */
	char unmapped[sizeof(run.why) - 32];
	if (vp_policy_check_mapped(&policy, &o->userns, unmapped, sizeof(unmapped)) < 0) {
		if (cmd == VP_CMD_APPLY) {
			snprintf(run.why, sizeof(run.why), "%s; nothing was changed", unmapped);
			memset(&st, 0, sizeof(st));
			ex = VP_EXIT_USAGE;
			goto summary;
		}
		cli_error("warning: %s: apply refuses it", unmapped);
	}
	ex = cli_exit(vp_engine_run(&run, &st));
summary:
	jp = cli_journal_path(jdir_path, run.journal);
	out.journal_state = run.journal_state;
	if (ow.w.count) {
		char why[512];
		vp_unmapped_owners_why(&ow.w, why, sizeof(why));
		cli_error("warning: %s", why);
	}
	vp_output_summary(&out, rt.path, desc, &st, jp, ex, run.why);
	if (ex == VP_EXIT_OK)
		cli_done("the %s itself finished: %llu entries %s%s%s%s%s%s",
		         command, (unsigned long long)st.changes,
		         cmd == VP_CMD_APPLY ? "changed" : "to change", jp ? ", journal " : "",
		         jp ? qp(&qs1, jp) : "", jp && run.journal_state ? " (" : "",
		         jp && run.journal_state ? run.journal_state : "",
		         jp && run.journal_state ? ")" : "");
	cli_note_output(&out);
out:
	free(desc);
	free(jp);
	vp_tree_unlock(&lock);
	if (jdir >= 0)
		close(jdir);
	vp_root_close(&rt);
	return ex;
}
