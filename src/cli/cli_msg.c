/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the CLI says (see cli.h): the message helpers, the one map from an
 * outcome to an exit status, and the steps every command shares, each the
 * core's call and the sentence for its refusal. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volperm/jdir.h"
#include "volperm/outcome.h"
#include "volperm/session.h"

#include "cli.h"

static void vmessage(bool hint, const char *fmt, va_list ap)
{
	fputs("volperm: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(hint ? "\nTry 'volperm --help' for more information.\n" : "\n", stderr);
}

void cli_error(const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	/* One write: stderr is unbuffered, and another process may share it. */
	if (n >= 0)
		fprintf(stderr, "volperm: %s\n", msg);
	else
		fputs("volperm: out of memory\n", stderr);
	free(msg);
}

void value_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage(false, fmt, ap);
	va_end(ap);
}

void usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage(true, fmt, ap);
	va_end(ap);
}

int cli_exit(int outcome)
{
	if (outcome < 0)
		return VP_EXIT_USAGE;
	switch ((enum vp_outcome)outcome) {
	case VP_OUT_OK: return VP_EXIT_OK;
	case VP_OUT_CHANGES_NEEDED: return VP_EXIT_CHANGES;
	case VP_OUT_INVALID: return VP_EXIT_USAGE;
	case VP_OUT_ROLLED_BACK: return VP_EXIT_ROLLED_BACK;
	case VP_OUT_BLOCKED: return VP_EXIT_HOT;
	case VP_OUT_PARTIAL: return VP_EXIT_PARTIAL;
	case VP_OUT_ROLLBACK_INCOMPLETE: return VP_EXIT_ROLLBACK_FAIL;
	case VP_OUT_INTERRUPTED: return VP_EXIT_INTERRUPTED;
	}
	return VP_EXIT_USAGE; /* an outcome this CLI does not know: fail safe */
}

/* The path choice only; its checks are jdir.c's. */
const char *cli_journal_dir(const struct cli_opts *o)
{
	const char *env = getenv("VOLPERM_JOURNAL_DIR");
	if (o->journal_dir)
		return o->journal_dir;
	if (env && *env)
		return env;
	/* Not root, or root of a user namespace: the user's state dir. */
	return o->jdir_default ? o->jdir_default : VP_JOURNAL_DIR_DEFAULT;
}

int cli_open_jdir(const char *path, bool create, int *fd)
{
	char tried[PATH_MAX];
	return cli_open_jdir_ex(path, create, fd, tried, sizeof(tried));
}

int cli_open_jdir_ex(const char *path_raw, bool create, int *fd, char *tried, size_t tried_size)
{
	int r = vp_jdir_open_ex(path_raw, create, fd, tried, tried_size);
	struct qpath q;
	/* mkdir -p: a parent may be what failed; name that one */
	const char *path = qp(&q, r < 0 && tried && tried[0] ? tried : path_raw);

	switch (r) {
	case 0:
		return 0;
	case -ENOENT:
		return -ENOENT; /* callers decide whether a missing dir matters */
	case -ELOOP:
		cli_error("journal directory %s is a symbolic link; refusing it (give the real directory)", path);
		break;
	case -ENOTDIR:
		cli_error("journal directory %s is not a directory", path);
		break;
	case -EPERM:
		cli_error("journal directory %s is not owned by root or by you; refusing it (someone else could plant or edit journals there)", path);
		break;
	case -EEXIST:
		cli_error("journal directory %s is writable by group or others; refusing it (chmod go-w it, or use another --journal-dir)", path);
		break;
	default:
		cli_error("cannot open journal directory %s: %s", path, strerror(-r));
	}
	return r;
}

int cli_open_root(const char *arg, struct vp_root *rt, bool allow_system)
{
	struct qpath q1, q2;
	int r = vp_root_open(arg, allow_system, rt);

	if (r == -EPERM && rt->path) {
		cli_error("%s%s%s is a system path; refusing to change it (use --allow-system-path if you really mean it)",
		          qp(&q1, arg), strcmp(arg, rt->path) ? " resolves to " : "",
		          strcmp(arg, rt->path) ? qp(&q2, rt->path) : "");
		return -1;
	}
	if (r < 0) {
		cli_error("%s: %s", qp(&q1, rt->path ? rt->path : arg), strerror(-r));
		return -1;
	}
	return 0;
}

int cli_open_journal_file(const char *file, int *jdir, char **dir, char name[])
{
	const char *slash = strrchr(file, '/');
	const char *base = slash ? slash + 1 : file;
	struct qpath q;
	int r;

	if (strlen(base) >= VP_JNAME_MAX || !*base) {
		cli_error("%s: not a volperm journal file name", qp(&q, file));
		return VP_EXIT_USAGE;
	}
	*dir = slash ? (slash == file ? strdup("/") : strndup(file, (size_t)(slash - file))) : strdup(".");
	if (!*dir)
		return VP_EXIT_USAGE;
	r = cli_open_jdir(*dir, false, jdir);
	if (r == -ENOENT)
		cli_error("%s: no such directory", qp(&q, *dir));
	if (r < 0)
		return VP_EXIT_USAGE;
	memcpy(name, base, strlen(base) + 1);
	return 0;
}

int cli_lock(const struct vp_root *rt, int jdir, struct vp_tree_lock *lk)
{
	struct qpath q, q2;
	int r = vp_session_lock(rt, jdir, lk);

	if (r == VP_OUT_BLOCKED) {
		char above[PATH_MAX];
		if (lk->busy_level == 0) {
			cli_error("another volperm is working on %s or on a tree inside it right now; try again when it has finished",
			          qp(&q, rt->path));
		} else {
			vp_path_up(rt->path, lk->busy_level, above, sizeof(above));
			cli_error("another volperm is working on %s, which contains %s, right now; try again when it has finished",
			          qp(&q, above), qp(&q2, rt->path));
		}
	} else if (r < 0) {
		cli_error("cannot take the volume lock: %s", strerror(-r));
	}
	return cli_exit(r);
}

struct vp_output cli_output(const struct cli_opts *o, const char *command)
{
	struct vp_output out = { .out = stdout, .err = stderr, .json = o->json, .list = o->list,
		                 .quiet = o->quiet, .command = command,
		                 .userns = vp_userns_empty(&o->userns) ? NULL : &o->userns,
		                 .progress_interval = o->progress_interval > 0 ? o->progress_interval : 10 };
	if (o->progress && !strcmp(o->progress, "always"))
		out.progress = VP_PROGRESS_ALWAYS;
	else if (o->progress && !strcmp(o->progress, "never"))
		out.progress = VP_PROGRESS_NEVER;
	return out;
}

unsigned cli_jobs(const struct cli_opts *o, int root_fd, struct vp_jobs_choice *jc,
                  struct vp_output *out)
{
	jc->jobs = o->jobs;
	if (o->jobs)
		snprintf(jc->why, sizeof(jc->why), "%s", o->jobs_from);
	else
		vp_jobs_auto(root_fd, jc);
	out->jobs = jc->jobs;
	out->jobs_why = jc->why;
	return jc->jobs;
}

char *cli_journal_path(const char *dir, const char *name)
{
	char *p = NULL;
	if (name && *name && asprintf(&p, "%s/%s", dir, name) < 0)
		p = NULL;
	return p;
}
