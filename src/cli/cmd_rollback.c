/* SPDX-License-Identifier: GPL-2.0-or-later */
/* rollback and recover (docs/volperm.1): which journal, and whether it may
 * run, are the session's (session.h); this says what it found and prints
 * the run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "volperm/jdir.h"
#include "volperm/session.h"

#include "cli.h"

int cli_rollback_run(const struct cli_opts *o, int r, struct vp_rbjob *j,
                     const struct vp_root *rt, const char *command, struct vp_stats *st)
{
	struct vp_output out = cli_output(o, command);
	struct qpath q;
	int ex = cli_exit(r);

	*st = (struct vp_stats){ 0 };
	if (r < 0)
		cli_error("%s", strerror(-r));
	else if (r != VP_OUT_OK)
		cli_error("%s", j->why);
	if (ex)
		return ex;
	out.restore_summary = true;
	struct vp_jobs_choice jc;
	j->rb.jobs = cli_jobs(o, rt->fd, &jc, &out);
	vp_output_start(&out, rt->path, NULL);
	if (!o->json && !o->quiet)
		fprintf(stdout, "journal:   %s (%s, %llu entries)\n", qp(&q, j->path),
		        vp_jstate_name(vp_jr_state(j->r)), (unsigned long long)vp_jr_entries(j->r));
	out.expected = vp_jr_entries(j->r);
	j->rb.rep = (struct vp_reporter){ vp_output_event, vp_output_progress, &out };
	j->rb.cancel = &cli_cancel;
	ex = cli_exit(vp_session_rollback_run(j, st));
	vp_output_summary(&out, rt->path, NULL, st, NULL, ex, j->rb.why);
	cli_note_output(&out);
	return ex;
}

int cli_rollback_journal(const struct cli_opts *o, int jdir, const char *jdir_path,
                         const char *name, const struct vp_root *rt, const char *command,
                         bool force)
{
	struct vp_stats st;
	struct vp_rbjob j;
	struct qpath q, q1;
	int r = vp_session_rollback_open(jdir, jdir_path, name, rt, force, &j);
	int ex = cli_rollback_run(o, r, &j, rt, command, &st);

	if (ex == VP_EXIT_OK)
		cli_done("the %s itself finished: %llu entries restored (journal %s)",
		         command, (unsigned long long)st.restored, qp(&q, j.path));
	if (st.conflicts && !force && !o->quiet)
		cli_error("to restore those entries anyway: volperm rollback --force --journal %s %s",
		          qp(&q, j.path), qp(&q1, rt->path));
	vp_session_rollback_close(&j);
	return ex;
}

int cmd_rollback(const struct cli_opts *o, const char *arg)
{
	struct vp_tree_lock lock = VP_TREE_LOCK_INIT;
	const char *jdir_path = cli_journal_dir(o);
	struct vp_root rt = VP_ROOT_INIT;
	char name[VP_JNAME_MAX], *dir = NULL;
	struct qpath q1, q2;
	int jdir = -1, ex, r;

	if (o->journal) {
		ex = cli_open_journal_file(o->journal, &jdir, &dir, name);
		if (ex)
			goto out;
		jdir_path = dir;
		if (!arg) {
			/* The root comes from the journal; the identity check
			 * of the rollback still compares dev/ino. */
			char *root = NULL;
			r = vp_session_journal_root(jdir, name, &root);
			if (r < 0) {
				cli_error("%s: %s", qp(&q1, o->journal),
				          r == -EBADMSG ? "corrupt journal; refusing it" : strerror(-r));
				ex = VP_EXIT_USAGE;
				goto out;
			}
			/* a system path was allowed when it was applied */
			r = cli_open_root(root, &rt, true);
			free(root);
			if (r < 0) {
				ex = VP_EXIT_USAGE;
				goto out;
			}
		}
	} else {
		if (!arg) {
			usage_error("rollback needs PATH or --journal FILE");
			return VP_EXIT_USAGE;
		}
		r = cli_open_jdir(jdir_path, false, &jdir);
		if (r == -ENOENT)
			cli_error("no journal directory %s: nothing to roll back", qp(&q1, jdir_path));
		if (r < 0) {
			ex = VP_EXIT_USAGE;
			goto out;
		}
	}
	if (rt.fd < 0 && cli_open_root(arg, &rt, o->allow_system_path) < 0) {
		ex = VP_EXIT_USAGE;
		goto out;
	}
	ex = cli_lock(&rt, jdir, &lock);
	if (ex)
		goto out;
	if (!o->journal && vp_session_find(jdir, &rt, VP_PICK_UNDONE, name) <= 0) {
		cli_error("no journal to roll back for %s in %s", qp(&q1, rt.path), qp(&q2, jdir_path));
		ex = VP_EXIT_USAGE;
		goto out;
	}
	ex = cli_rollback_journal(o, jdir, jdir_path, name, &rt, "rollback", o->force);
out:
	vp_tree_unlock(&lock);
	if (jdir >= 0)
		close(jdir);
	free(dir);
	vp_root_close(&rt);
	return ex;
}

static int recover_forward(const struct cli_opts *o, int jdir, const char *jdir_path,
                           const char *name, const struct vp_root *rt)
{
	struct qpath qs1; /* for the closing lines */
	struct vp_output out = cli_output(o, "recover");
	struct vp_stats st;
	struct vp_fwdjob f;
	int r = vp_session_forward_open(jdir, jdir_path, name, rt, vp_session_batch_max(), &f);
	int ex = cli_exit(r);

	if (r < 0)
		cli_error("%s", strerror(-r));
	else if (r != VP_OUT_OK)
		cli_error("%s", f.why);
	if (ex)
		goto out;
	f.run.rep = (struct vp_reporter){ vp_output_event, vp_output_progress, &out };
	struct vp_jobs_choice jc;
	f.run.jobs = cli_jobs(o, rt->fd, &jc, &out);
	f.run.cancel = &cli_cancel;
	vp_output_start(&out, rt->path, f.desc);
	ex = cli_exit(vp_engine_run(&f.run, &st));
	vp_output_summary(&out, rt->path, f.desc, &st, f.path, ex, f.run.why);
	if (ex == VP_EXIT_OK)
		cli_done("recover itself finished: %llu entries changed, journal %s",
		         (unsigned long long)st.changes, qp(&qs1, f.path));
	cli_note_output(&out);
out:
	vp_session_forward_close(&f);
	return ex;
}

int cmd_recover(const struct cli_opts *o, const char *arg)
{
	struct vp_tree_lock lock = VP_TREE_LOCK_INIT;
	const char *jdir_path = cli_journal_dir(o);
	struct vp_root rt = VP_ROOT_INIT;
	char name[VP_JNAME_MAX], last[VP_JNAME_MAX] = "";
	enum vp_recover_step step;
	struct qpath q1, q2;
	int jdir = -1, ex = 0, r;

	if (!arg) {
		usage_error("recover needs PATH");
		return VP_EXIT_USAGE;
	}
	if (cli_open_root(arg, &rt, o->allow_system_path) < 0) {
		ex = VP_EXIT_USAGE;
		goto out;
	}
	r = cli_open_jdir(jdir_path, false, &jdir);
	if (r == -ENOENT) {
		if (!o->quiet)
			printf("volperm: nothing to recover on %s (no journal directory %s)\n",
			       qp(&q1, rt.path), qp(&q2, jdir_path));
		goto out;
	}
	if (r < 0) {
		ex = VP_EXIT_USAGE;
		goto out;
	}
	ex = cli_lock(&rt, jdir, &lock);
	if (ex)
		goto out;
	/* Oldest first: there is normally at most one hot journal. */
	while ((r = vp_session_recover_next(jdir, &rt, o->forward, last, name, &step)) == VP_OUT_OK &&
	       name[0]) {
		memcpy(last, name, sizeof(last));
		ex = step == VP_RECOVER_FORWARD ? recover_forward(o, jdir, jdir_path, name, &rt)
		                                : cli_rollback_journal(o, jdir, jdir_path, name, &rt,
		                                                       "recover", false);
		if (ex)
			goto out;
	}
	/* A directory that cannot be listed (r < 0) has nothing we could
	 * recover, and says nothing, as before. */
	if (r == VP_OUT_ROLLBACK_INCOMPLETE) {
		cli_error("journal %s is still hot after recovery", qjp(&q1, jdir_path, name));
		ex = cli_exit(r);
	} else if (r == VP_OUT_OK && !o->quiet && !o->json) {
		printf("volperm: nothing to recover on %s\n", qp(&q1, rt.path));
	}
out:
	vp_tree_unlock(&lock);
	if (jdir >= 0)
		close(jdir);
	vp_root_close(&rt);
	return ex;
}
