/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sharded runs (docs/scale-out.md, docs/volperm.1): shard plan, the shards
 * (plan, check and apply with --run ID --shard K/N), shard finalize, shard
 * status and rollback --run. The rules are the core's (shard.h,
 * shardrun.h, session.h); this reads the command line and says what they
 * answered. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "volperm/jdir.h"
#include "volperm/session.h"
#include "volperm/shard.h"
#include "volperm/shardrun.h"

#include "cli.h"

/* What every --run command opens: the journal directory, the manifest,
 * and (with a PATH) the root, checked to be the run's. */
struct runctx {
	const char *jdir_path;
	int jdir;
	struct vp_run_id id;
	char hex[VP_RUN_ID_HEX];
	struct vp_manifest m;
	bool has_m;
	struct vp_root rt;
	struct vp_policy policy;   /* the manifest's */
	bool has_policy;
	uint32_t k;                /* --shard */
	bool has_k;
};

static void runctx_free(struct runctx *c)
{
	if (c->has_m)
		vp_manifest_free(&c->m);
	if (c->has_policy)
		vp_policy_free(&c->policy);
	if (c->jdir >= 0)
		close(c->jdir);
	vp_root_close(&c->rt);
}

/* The policy options as cmd_run joins them. */
static void given_policy(const struct cli_opts *o, struct vp_policy *p)
{
	*p = o->policy;
	p->cross_mounts = o->cross_mounts;
	p->include_devices = o->include_devices;
	p->allow_external_links = o->allow_external_links;
}

static int parse_shards(const char *text, uint32_t *n)
{
	char *end;
	unsigned long v;

	if (!text[0] || text[0] == '0' || strspn(text, "0123456789") != strlen(text))
		return -EINVAL;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || v < 1 || v > VP_SHARD_MAX)
		return -ERANGE;
	*n = (uint32_t)v;
	return 0;
}

/* --run ID, the journal directory and its manifest; PATH when given.
 * 0, or the exit status (said). */
static int open_run(const struct cli_opts *o, const char *arg, struct runctx *c)
{
	struct qpath q1, q2, q3;
	int r;

	*c = (struct runctx){ .jdir = -1, .rt = VP_ROOT_INIT };
	c->jdir_path = cli_journal_dir(o);
	if (vp_run_id_parse(o->run_id, &c->id) < 0) {
		usage_error("invalid --run '%s': give the 32 hex digits that shard plan printed",
		            o->run_id);
		return VP_EXIT_USAGE;
	}
	vp_run_id_hex(&c->id, c->hex);
	r = cli_open_jdir(c->jdir_path, false, &c->jdir);
	if (r == -ENOENT)
		cli_error("no journal directory %s: no run %s there", qp(&q1, c->jdir_path), c->hex);
	if (r < 0)
		return VP_EXIT_USAGE;
	r = vp_manifest_read(c->jdir, &c->id, &c->m);
	if (r < 0) {
		char name[VP_MANIFEST_NAME_MAX];
		vp_manifest_name(name, &c->id);
		if (r == -ENOENT)
			cli_error("no run %s in %s (no %s): plan it with volperm shard plan", c->hex,
			          qp(&q1, c->jdir_path), name);
		else
			cli_error("the manifest %s cannot be used: %s", qjp(&q1, c->jdir_path, name),
			          r == -EBADMSG ? "it is corrupt"
			          : r == -EPROTO ? "written by an incompatible volperm version"
			                         : strerror(-r));
		return VP_EXIT_USAGE;
	}
	c->has_m = true;
	if (vp_manifest_policy(&c->m, &c->policy) < 0) {
		cli_error("out of memory");
		return VP_EXIT_USAGE;
	}
	c->has_policy = true;
	/* A policy given again must be the run's. */
	if (!vp_policy_is_empty(&o->policy)) {
		struct vp_policy g;
		given_policy(o, &g);
		r = vp_manifest_policy_matches(&c->m, &g);
		if (r <= 0) {
			cli_error(r < 0 ? "out of memory"
			                : "the policy given is not the one run %s was planned with; give none (the run's applies) or the same",
			          c->hex);
			return VP_EXIT_USAGE;
		}
	}
	if (!arg)
		return 0;
	/* a system path was allowed when it was planned */
	if (cli_open_root(arg, &c->rt, true) < 0)
		return VP_EXIT_USAGE;
	r = vp_manifest_check_root(&c->m, c->rt.fd);
	if (r < 0) {
		cli_error("%s is not the tree run %s was planned on (%s on %s)%s", qp(&q1, c->rt.path),
		          c->hex, qp(&q2, c->m.root), qp(&q3, c->m.host),
		          r == -EXDEV ? "" : "; cannot tell");
		return VP_EXIT_USAGE;
	}
	return 0;
}

/* --shard K/N or auto, against the manifest's N. 0, or the exit status. */
static int which_shard(const struct cli_opts *o, struct runctx *c)
{
	uint32_t k, n;
	int r;

	if (!o->shard_spec)
		return 0;
	if (strcmp(o->shard_spec, "auto") == 0) {
		struct vp_shard_env env;
		char why[512];
		uint32_t hint = c->m.n_shards;
		if (o->shards_text && (parse_shards(o->shards_text, &hint) < 0 || hint != c->m.n_shards)) {
			usage_error("--shards %s is not run %s's %u shards", o->shards_text, c->hex,
			            c->m.n_shards);
			return VP_EXIT_USAGE;
		}
		r = vp_shard_from_env(NULL, hint, &env);
		if (r < 0) {
			cli_error("%s", vp_shard_env_why(r, &env, why, sizeof(why)));
			return VP_EXIT_USAGE;
		}
		k = env.k;
		n = env.n;
	} else {
		r = vp_shard_parse(o->shard_spec, &k, &n);
		if (r < 0) {
			usage_error("invalid --shard '%s': give K/N (0 <= K < N, decimal) or auto",
			            o->shard_spec);
			return VP_EXIT_USAGE;
		}
	}
	if (n != c->m.n_shards) {
		cli_error("--shard %u/%u: run %s has %u shards", k, n, c->hex, c->m.n_shards);
		return VP_EXIT_USAGE;
	}
	c->k = k;
	c->has_k = true;
	return 0;
}

static int run_status(struct runctx *c, struct vp_shard_status **st, enum vp_run_state *rs)
{
	int r = vp_run_status(c->jdir, &c->id, c->m.n_shards, st);
	if (r < 0) {
		struct qpath q;
		cli_error("cannot read the journals of run %s in %s: %s", c->hex,
		          qp(&q, c->jdir_path), strerror(-r));
		return VP_EXIT_USAGE;
	}
	*rs = vp_run_state_of(*st, c->m.n_shards);
	return 0;
}

/* What a shard lock refused. */
static int say_lock(int r, const struct runctx *c)
{
	struct qpath q;

	if (r == -EWOULDBLOCK)
		cli_error("another volperm is working on %s, or on this shard of run %s, right now; try again when it has finished",
		          qp(&q, c->rt.path), c->hex);
	else
		cli_error("cannot take the locks of run %s: %s", c->hex, strerror(-r));
	return r == -EWOULDBLOCK ? VP_EXIT_HOT : VP_EXIT_USAGE;
}

/* What vp_session_check_hot*() found (as cmd_run says it). */
static void say_hot(const struct vp_hot *h, const char *jdir_path, const struct vp_root *rt)
{
	struct qpath q1, q2;

	if (h->block == VP_BLOCK_RUNNING)
		cli_error("another volperm is changing %s right now (journal %s); try again when it has finished",
		          qp(&q1, h->tree ? h->tree : rt->path), qjp(&q2, jdir_path, h->journal));
	else if (h->block != VP_BLOCK_NONE)
		cli_error("an interrupted apply left %s half changed (journal %s); run it again with --recover (a shard), or volperm recover %s",
		          qp(&q1, h->tree ? h->tree : rt->path), qjp(&q2, jdir_path, h->journal), q1.s);
}

/* Roll back one journal of the run, printing as command. */
static int rollback_one(const struct cli_opts *o, struct runctx *c, const char *name,
                        const char *command, bool run_journal)
{
	struct vp_stats st;
	struct vp_rbjob j;
	int r = run_journal ? vp_session_rollback_open_run(c->jdir, c->jdir_path, name, &c->rt,
	                                                   o->force, &j)
	                    : vp_session_rollback_open(c->jdir, c->jdir_path, name, &c->rt,
	                                               false, &j);
	int ex = cli_rollback_run(o, r, &j, &c->rt, command, &st);

	vp_session_rollback_close(&j);
	if (!ex && vp_root_refresh(&c->rt) < 0)
		ex = VP_EXIT_USAGE;
	return ex;
}

/* The engine on the run's root with c->policy: a shard's buckets, or
 * finalize's list. */
static int run_engine(const struct cli_opts *o, struct runctx *c, struct vp_run *run,
                      const char *command)
{
	struct vp_output out = cli_output(o, command);
	struct vp_stats st;
	char *desc = NULL, *jp = NULL;
	struct qpath q;
	int ex;

	if (vp_policy_describe(&c->policy, &desc) < 0)
		desc = NULL;
	run->root = c->rt.path;
	run->root_fd = c->rt.fd;
	run->root_st = c->rt.st;
	run->policy = &c->policy;
	run->keep_going = o->keep_going;
	run->batch_max = vp_session_batch_max();
	run->rep = (struct vp_reporter){ vp_output_event, vp_output_progress, &out };
	run->cancel = &cli_cancel;
	run->jdir_path = c->jdir_path;
	run->has_jdir = fstat(c->jdir, &run->jdir_st) == 0;
	struct vp_jobs_choice jc = { .jobs = 1, .why = "one thread" };
	if (run->jobs == 1) {
		out.jobs = 1;
		out.jobs_why = jc.why;
	} else {
		run->jobs = cli_jobs(o, c->rt.fd, &jc, &out);
	}
	vp_output_start(&out, c->rt.path, desc);
	ex = cli_exit(vp_engine_run(run, &st));
	jp = cli_journal_path(c->jdir_path, run->journal);
	out.journal_state = run->journal_state;
	vp_output_summary(&out, c->rt.path, desc, &st, jp, ex, run->why);
	if (run->defer_links && run->deferred && !o->quiet && !o->json)
		fprintf(stdout, "deferred:  %llu multiply-linked entries, for shard finalize\n",
		        (unsigned long long)run->deferred);
	if (ex == VP_EXIT_OK)
		cli_done("the %s itself finished: %llu entries %s%s%s", command,
		         (unsigned long long)st.changes,
		         run->cmd == VP_CMD_APPLY ? "changed" : "to change", jp ? ", journal " : "",
		         jp ? qp(&q, jp) : "");
	cli_note_output(&out);
	free(desc);
	free(jp);
	return ex;
}

/* ---- shard plan ---- */

static int shard_plan(const struct cli_opts *o, const char *arg)
{
	struct vp_root rt = VP_ROOT_INIT;
	struct vp_manifest m;
	struct vp_policy policy;
	const char *jdir_path = cli_journal_dir(o);
	char tried[PATH_MAX] = "", hex[VP_RUN_ID_HEX], name[VP_MANIFEST_NAME_MAX];
	struct qpath q1, q2;
	struct stat jst;
	uint32_t n;
	int jdir = -1, ex = VP_EXIT_USAGE, r;

	vp_manifest_init(&m);
	if (vp_policy_is_empty(&o->policy)) {
		usage_error("nothing to do: give --owner, --map, --map-gid, --fsgroup, --chmod, --root-mode, --grant or --revoke");
		return VP_EXIT_USAGE;
	}
	if (!o->shards_text) {
		usage_error("shard plan needs --shards N");
		return VP_EXIT_USAGE;
	}
	if (parse_shards(o->shards_text, &n) < 0) {
		usage_error("invalid --shards '%s': give a number of shards from 1 to %u",
		            o->shards_text, VP_SHARD_MAX);
		return VP_EXIT_USAGE;
	}
	if (o->run_id || o->shard_spec || o->recover || o->no_journal) {
		usage_error("an option was given that 'shard plan' does not take");
		return VP_EXIT_USAGE;
	}
	given_policy(o, &policy);
	if (cli_open_root(arg, &rt, o->allow_system_path) < 0)
		goto out;
	if (!S_ISDIR(rt.st.st_mode)) {
		cli_error("%s is not a directory: a single file is not split into shards",
		          qp(&q1, rt.path));
		goto out;
	}
	if (cli_open_jdir_ex(jdir_path, true, &jdir, tried, sizeof(tried)) < 0) {
		if (tried[0])
			cli_error("cannot create the journal directory %s, where the run's manifest goes",
			          qp(&q1, tried));
		goto out;
	}
	if (vp_session_jdir_inside(jdir, &rt)) {
		cli_error("the journal directory %s is inside %s; put it outside the volume (on storage every shard mounts)",
		          qp(&q1, jdir_path), qp(&q2, rt.path));
		goto out;
	}
	r = vp_manifest_prepare(&m, rt.fd, rt.path, &policy, n);
	if (r == 0) {
		/* The estimates' listings overlap their round trips like a
		 * walk's (--jobs, or auto on the root). */
		struct vp_jobs_choice jc = { .jobs = o->jobs };
		if (!o->jobs)
			vp_jobs_auto(rt.fd, &jc);
		struct vp_partition_cfg pc = { .n_shards = n, .policy = &policy,
		                               .forbid = fstat(jdir, &jst) == 0 ? &jst : NULL,
		                               .jobs = jc.jobs };
		memcpy(&pc.seed, m.id.b, sizeof(pc.seed));
		r = vp_partition(rt.fd, &pc, &m);
	}
	if (r == 0)
		r = vp_manifest_write(jdir, &m);
	if (r < 0) {
		cli_error("cannot plan the run on %s: %s", qp(&q1, rt.path), strerror(-r));
		goto out;
	}
	vp_run_id_hex(&m.id, hex);
	vp_manifest_name(name, &m.id);
	if (o->quiet) {
		printf("%s\n", hex);
	} else {
		uint64_t total = 0;
		printf("run:       %s\n", hex);
		printf("root:      %s\n", qp(&q1, rt.path));
		printf("manifest:  %s\n", qjp(&q2, jdir_path, name));
		printf("shards:    %u (%zu buckets, %zu directories above them)\n", n, m.n_buckets,
		       m.n_above);
		for (uint32_t k = 0; k < n; k++) {
			size_t nb = 0;
			for (size_t i = 0; i < m.n_buckets; i++)
				nb += m.buckets[i].shard == k;
			uint64_t e = vp_manifest_shard_estimate(&m, k);
			total += e;
			printf("shard %u/%u: about %llu entries in %zu buckets\n", k, n,
			       (unsigned long long)e, nb);
		}
		printf("estimate:  about %llu entries\n", (unsigned long long)total);
		printf("next:      volperm apply --run %s --shard K/%u %s (each K), then volperm shard finalize --run %s %s\n",
		       hex, n, q1.s, hex, q1.s);
	}
	ex = VP_EXIT_OK;
out:
	vp_manifest_free(&m);
	if (jdir >= 0)
		close(jdir);
	vp_root_close(&rt);
	return ex;
}

/* ---- a shard: plan, check, apply --run ID --shard K/N ---- */

/* check --run ID PATH: is the run done, and does the tree comply? */
static int check_run(const struct cli_opts *o, struct runctx *c)
{
	struct vp_shard_status *st = NULL;
	enum vp_run_state rs;
	int ex = run_status(c, &st, &rs);

	free(st);
	if (ex)
		return ex;
	if (rs != VP_RUN_COMMITTED) {
		cli_error("run %s is not done: it is %s (see volperm shard status --run %s)", c->hex,
		          vp_run_state_name(rs), c->hex);
		return VP_EXIT_CHANGES;
	}
	struct vp_run run = { .cmd = VP_CMD_CHECK, .jdir_fd = -1, .jobs = o->jobs };
	return run_engine(o, c, &run, "check");
}

int cmd_shard_run(const struct cli_opts *o, enum vp_cmd cmd, const char *command,
                  const char *arg)
{
	struct vp_shard_lock lock = VP_SHARD_LOCK_INIT;
	struct vp_shard_status *st = NULL;
	struct vp_shard_walk *sw = NULL;
	struct vp_sight_writer *sight = NULL;
	struct runctx c;
	enum vp_run_state rs;
	char why[VP_SHARDRUN_WHY_MAX];
	struct qpath q;
	int ex, r;

	if (o->no_journal) {
		usage_error("a sharded run needs its journals: --run cannot go with --no-journal");
		return VP_EXIT_USAGE;
	}
	ex = open_run(o, arg, &c);
	if (!ex)
		ex = which_shard(o, &c);
	if (ex)
		goto out;
	if (!c.has_k) {
		if (cmd == VP_CMD_CHECK) {
			ex = check_run(o, &c);
			goto out;
		}
		usage_error("%s --run needs --shard K/N or --shard auto", command);
		ex = VP_EXIT_USAGE;
		goto out;
	}
	ex = run_status(&c, &st, &rs);
	if (ex)
		goto out;
	if (cmd == VP_CMD_APPLY && st[c.m.n_shards].state != VP_SHARD_NOT_STARTED &&
	    st[c.m.n_shards].state != VP_SHARD_ROLLED_BACK) {
		cli_error("run %s is %s: its shards cannot run again (volperm rollback --run %s undoes the run)",
		          c.hex, vp_run_state_name(rs), c.hex);
		ex = VP_EXIT_USAGE;
		goto out;
	}
	/* A requeued shard that had finished: nothing to do again. */
	if (cmd == VP_CMD_APPLY && st[c.k].state == VP_SHARD_COMMITTED) {
		if (!o->quiet)
			printf("shard %u/%u of run %s is already committed (journal %s)\n", c.k,
			       c.m.n_shards, c.hex, qjp(&q, c.jdir_path, st[c.k].journal));
		goto out;
	}
	if (cmd == VP_CMD_APPLY) {
		r = vp_shard_lock(&c.m, c.k, c.rt.fd, c.jdir, &lock);
		if (r < 0) {
			ex = say_lock(r, &c);
			goto out;
		}
	}
	struct vp_hot hot;
	r = vp_session_check_hot_shard(c.jdir, &c.rt, c.id.b, c.k, cmd == VP_CMD_APPLY && o->recover,
	                               &hot);
	say_hot(&hot, c.jdir_path, &c.rt);
	ex = cli_exit(r);
	if (r >= 0 && !ex && hot.recover[0])
		ex = rollback_one(o, &c, hot.recover, "recover", false);
	vp_hot_free(&hot);
	if (ex)
		goto out;
	r = vp_shard_walk_open(&c.m, c.k, c.rt.fd, c.rt.path, &c.rt.st, c.policy.cross_mounts, &sw,
	                       why, sizeof(why));
	if (r < 0) {
		cli_error("%s", r == -ENOMEM ? "out of memory" : why);
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (cmd == VP_CMD_APPLY) {
		uint8_t key[16];
		vp_host_key(key);
		r = vp_sight_create(c.jdir, &c.id, c.k, key, &sight);
		if (r < 0) {
			cli_error("cannot create the hard-link file of shard %u/%u in %s: %s", c.k,
			          c.m.n_shards, qp(&q, c.jdir_path), strerror(-r));
			ex = VP_EXIT_USAGE;
			goto out;
		}
	}
	struct vp_run run = {
		.cmd = cmd, .jdir_fd = cmd == VP_CMD_APPLY ? c.jdir : -1, .jobs = o->jobs,
		.shard_id = &c.id, .shard_k = c.k, .walk = vp_shard_walk, .walk_arg = sw,
		.defer_links = true, .sight = sight, .sight_fsid = vp_fsid_of(c.rt.fd),
		.start_journal = true,
	};
	ex = run_engine(o, &c, &run, command);
	sight = run.sight; /* NULL once committed */
out:
	if (sight)
		vp_sight_abort(sight);
	vp_shard_walk_free(sw);
	vp_shard_unlock(&lock);
	free(st);
	runctx_free(&c);
	return ex;
}

/* ---- shard finalize ---- */

static int shard_finalize(const struct cli_opts *o, const char *arg)
{
	struct vp_tree_lock lock = VP_TREE_LOCK_INIT;
	struct vp_shard_status *st = NULL;
	struct vp_finalize *f = NULL;
	enum vp_run_state rs;
	struct runctx c;
	char why[VP_SHARDRUN_WHY_MAX];
	int ex, r;

	if (o->shard_spec || o->no_journal) {
		usage_error("an option was given that 'shard finalize' does not take");
		return VP_EXIT_USAGE;
	}
	ex = open_run(o, arg, &c);
	if (ex)
		goto out;
	/* Everything exclusively: no shard of the run, nor anything else. */
	ex = cli_lock(&c.rt, c.jdir, &lock);
	if (ex)
		goto out;
	ex = run_status(&c, &st, &rs);
	if (ex)
		goto out;
	if (rs == VP_RUN_COMMITTED) {
		if (!o->quiet)
			printf("run %s is already committed\n", c.hex);
		goto out;
	}
	for (uint32_t k = 0; k < c.m.n_shards; k++) {
		if (st[k].state == VP_SHARD_COMMITTED)
			continue;
		cli_error("shard %u/%u of run %s is %s: every shard must have committed before finalize%s",
		          k, c.m.n_shards, c.hex, vp_shard_state_name(st[k].state),
		          st[k].state == VP_SHARD_HOT ? " (run it again with --recover)" : "");
		ex = st[k].state == VP_SHARD_HOT || st[k].state == VP_SHARD_RUNNING ? VP_EXIT_HOT
		                                                                     : VP_EXIT_USAGE;
		goto out;
	}
	/* A finalize that was interrupted: its own journal is rolled back
	 * first, then it runs again (a restarted finalize Job). */
	struct vp_hot hot;
	r = vp_session_check_hot_shard(c.jdir, &c.rt, c.id.b, VP_SHARD_FINALIZE, true, &hot);
	say_hot(&hot, c.jdir_path, &c.rt);
	ex = cli_exit(r);
	if (r >= 0 && !ex && hot.recover[0])
		ex = rollback_one(o, &c, hot.recover, "recover", false);
	vp_hot_free(&hot);
	if (ex)
		goto out;
	r = vp_finalize_open(&c.m, c.jdir, c.rt.fd, &c.rt.st, c.policy.allow_external_links,
	                     c.policy.cross_mounts, &f, why, sizeof(why));
	if (r < 0) {
		cli_error("%s", r == -ENOMEM ? "out of memory" : why);
		ex = VP_EXIT_USAGE;
		goto out;
	}
	/* One worker: the journal in the order one machine's would be. */
	struct vp_run run = {
		.cmd = VP_CMD_APPLY, .jdir_fd = c.jdir, .jobs = 1, .shard_id = &c.id,
		.shard_k = VP_SHARD_FINALIZE, .walk = vp_finalize_walk, .walk_arg = f,
		.start_journal = true,
	};
	ex = run_engine(o, &c, &run, "finalize");
	if (!o->quiet && !o->json)
		printf("run:       %s %s\n", c.hex,
		       ex == VP_EXIT_OK || ex == VP_EXIT_PARTIAL ? "committed" : "not committed");
out:
	vp_finalize_free(f);
	vp_tree_unlock(&lock);
	free(st);
	runctx_free(&c);
	return ex;
}

/* ---- shard status ---- */

static int shard_status(const struct cli_opts *o)
{
	struct vp_shard_status *st = NULL;
	enum vp_run_state rs;
	struct runctx c;
	struct qpath q, q2;
	int ex = open_run(o, NULL, &c);

	if (!ex)
		ex = run_status(&c, &st, &rs);
	if (ex)
		goto out;
	printf("run:       %s\n", c.hex);
	printf("root:      %s (planned on %s)\n", qp(&q, c.m.root), qp(&q2, c.m.host));
	printf("shards:    %u\n", c.m.n_shards);
	for (uint32_t k = 0; k <= c.m.n_shards; k++) {
		char label[32];
		if (k == c.m.n_shards)
			snprintf(label, sizeof(label), "finalize:");
		else
			snprintf(label, sizeof(label), "shard %u/%u:", k, c.m.n_shards);
		printf("%-10s %s", label, vp_shard_state_name(st[k].state));
		if (st[k].journal[0]) {
			struct vp_jreader *jr = NULL;
			if (vp_jr_open_at(c.jdir, st[k].journal, &jr) == 0)
				printf(", %llu entries", (unsigned long long)vp_jr_entries(jr));
			vp_jr_close(jr);
			if (st[k].n_journals > 1)
				printf(", %zu attempts", st[k].n_journals);
			printf(" (journal %s)", qjp(&q, c.jdir_path, st[k].journal));
		}
		printf("\n");
	}
	printf("state:     %s\n", vp_run_state_name(rs));
out:
	free(st);
	runctx_free(&c);
	return ex;
}

/* ---- rollback --run ---- */

/* rollback --run --shard K/N: finalize changed the directories above every
 * bucket, so its journal is undone first (a shard's paths then resolve as
 * they did when it ran), by whichever task of a rollback array gets the
 * exclusive locks first; the others wait for it (polling, at most ten
 * minutes). 0, or the exit status (said). */
static int finalize_undone(const struct cli_opts *o, struct runctx *c)
{
	const struct timespec pause = { 0, 200 * 1000 * 1000 };

	for (unsigned tries = 0;; tries++) {
		struct vp_shard_status *st = NULL;
		struct vp_tree_lock lk;
		enum vp_run_state rs;
		int ex = run_status(c, &st, &rs), r;

		if (ex)
			return ex;
		enum vp_shard_state fs = st[c->m.n_shards].state;
		free(st);
		if (fs == VP_SHARD_NOT_STARTED || fs == VP_SHARD_ROLLED_BACK)
			return 0;
		r = vp_session_lock(&c->rt, c->jdir, &lk);
		if (r == VP_OUT_OK) {
			char (*names)[VP_SHARD_JNAME_MAX] = NULL;
			size_t n = 0;
			r = vp_run_journals(c->jdir, &c->id, (uint64_t)c->rt.st.st_ino,
			                    VP_SHARD_FINALIZE, &names, &n);
			if (r < 0) {
				cli_error("cannot list the journals of run %s: %s", c->hex, strerror(-r));
				ex = VP_EXIT_USAGE;
			}
			for (size_t i = 0; i < n && !ex; i++)
				ex = rollback_one(o, c, names[i], "rollback", true);
			free(names);
			vp_tree_unlock(&lk);
			return ex;
		}
		if (r != VP_OUT_BLOCKED)
			return cli_lock(&c->rt, c->jdir, &lk); /* says why */
		if (vp_cancel_count(&cli_cancel)) {
			cli_error("interrupted by %s while waiting for run %s's finalize to be rolled back; nothing was changed",
			          vp_cancel_name(&cli_cancel), c->hex);
			return VP_EXIT_INTERRUPTED;
		}
		if (tries >= 3000) {
			struct qpath q;
			cli_error("run %s's finalize is %s and another volperm has held %s for ten minutes; try again when it has finished",
			          c->hex, vp_shard_state_name(fs), qp(&q, c->rt.path));
			return VP_EXIT_HOT;
		}
		nanosleep(&pause, NULL);
	}
}

int cmd_shard_rollback(const struct cli_opts *o, const char *arg)
{
	struct vp_tree_lock lock = VP_TREE_LOCK_INIT;
	struct vp_shard_lock slock = VP_SHARD_LOCK_INIT;
	struct vp_shard_status *st = NULL;
	char (*names)[VP_SHARD_JNAME_MAX] = NULL;
	enum vp_run_state rs;
	struct runctx c;
	size_t n = 0;
	int ex, r;

	if (!arg) {
		usage_error("rollback --run needs PATH");
		return VP_EXIT_USAGE;
	}
	if (o->journal) {
		usage_error("--journal and --run do not go together");
		return VP_EXIT_USAGE;
	}
	ex = open_run(o, arg, &c);
	if (!ex)
		ex = which_shard(o, &c);
	if (!ex)
		ex = run_status(&c, &st, &rs);
	if (ex)
		goto out;
	if (c.has_k) {
		ex = finalize_undone(o, &c);
		if (ex)
			goto out;
		r = vp_shard_lock(&c.m, c.k, c.rt.fd, c.jdir, &slock);
		if (r < 0) {
			ex = say_lock(r, &c);
			goto out;
		}
	} else {
		ex = cli_lock(&c.rt, c.jdir, &lock);
		if (ex)
			goto out;
	}
	r = vp_run_journals(c.jdir, &c.id, (uint64_t)c.rt.st.st_ino,
	                    c.has_k ? c.k : VP_SHARD_ALL, &names, &n);
	if (r < 0) {
		cli_error("cannot list the journals of run %s: %s", c.hex, strerror(-r));
		ex = VP_EXIT_USAGE;
		goto out;
	}
	for (size_t i = 0; i < n && !ex; i++)
		ex = rollback_one(o, &c, names[i], "rollback", true);
	if (!ex && !o->quiet && !o->json) {
		if (c.has_k)
			printf("shard %u/%u of run %s: rolled back (%zu journals)\n", c.k, c.m.n_shards,
			       c.hex, n);
		else
			printf("run %s: rolled back (%zu journals)\n", c.hex, n);
	}
out:
	free(names);
	vp_shard_unlock(&slock);
	vp_tree_unlock(&lock);
	free(st);
	runctx_free(&c);
	return ex;
}

/* ---- the shard command ---- */

int cmd_shard(const struct cli_opts *o)
{
	const char *sub = o->nargs ? o->args[0] : NULL;

	if (o->user || o->allow_root || o->forward || o->force || o->journal || o->idmap_undo ||
	    o->idmap_dry_run || o->print_unit || o->idmap_plan) {
		usage_error("an option was given that 'shard' does not take");
		return VP_EXIT_USAGE;
	}
	if (!sub) {
		usage_error("shard needs plan, finalize or status");
		return VP_EXIT_USAGE;
	}
	if (strcmp(sub, "status") == 0) {
		if (o->nargs > 1) {
			usage_error("too many arguments: shard status takes --run ID only");
			return VP_EXIT_USAGE;
		}
		if (!o->run_id) {
			usage_error("shard status needs --run ID");
			return VP_EXIT_USAGE;
		}
		return shard_status(o);
	}
	if (strcmp(sub, "plan") && strcmp(sub, "finalize")) {
		usage_error("unknown shard command '%s': use plan, finalize or status", sub);
		return VP_EXIT_USAGE;
	}
	if (o->nargs != 2) {
		usage_error(o->nargs < 2 ? "missing PATH" : "too many arguments: volperm works on one PATH at a time");
		return VP_EXIT_USAGE;
	}
	if (strcmp(sub, "plan") == 0)
		return shard_plan(o, o->args[1]);
	if (!o->run_id) {
		usage_error("shard finalize needs --run ID");
		return VP_EXIT_USAGE;
	}
	if (o->shards_text) {
		usage_error("an option was given that 'shard finalize' does not take");
		return VP_EXIT_USAGE;
	}
	return shard_finalize(o, o->args[1]);
}
