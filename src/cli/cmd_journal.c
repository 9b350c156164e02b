/* SPDX-License-Identifier: GPL-2.0-or-later */
/* journal list, show and export (docs/volperm.1): reads journals, changes
 * nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "volperm/export.h"
#include "volperm/jdir.h"
#include "volperm/session.h"

#include "cli.h"

/* One journal of the list: as text, or as JSON with the same members (and
 * _b64 twins) as --json's paths. */
static void list_one(const struct cli_opts *o, int jdir, const char *jdir_path,
                     const struct vp_jinfo *v)
{
	struct vp_jreader *jr = NULL;
	struct qpath q1;
	int e = vp_jr_open_at(jdir, v->name, &jr);
	const char *state = e == -EBADMSG ? "corrupt" : e < 0 ? "unreadable"
	                    : v->live ? "running" : v->hot ? "hot" : vp_jstate_name(vp_jr_state(jr));

	if (o->json) {
		char *jp = cli_journal_path(jdir_path, v->name);
		fputs("{", stdout);
		vp_quote_json_member(stdout, "journal", jp ? jp : "", jp ? strlen(jp) : 0);
		printf(",\"state\":\"%s\",\"entries\":%llu,", state,
		       e == 0 ? (unsigned long long)vp_jr_entries(jr) : 0ull);
		const char *jroot = e == 0 ? vp_jr_header(jr)->root : "";
		vp_quote_json_member(stdout, "root", jroot, strlen(jroot));
		if (e == 0)
			vp_export_json_maps(stdout, vp_jr_header(jr));
		printf("}\n");
		free(jp);
	} else {
		printf("%s  %-12s %8llu entries  ", qjp(&q1, jdir_path, v->name), state,
		       e == 0 ? (unsigned long long)vp_jr_entries(jr) : 0ull);
		if (e == 0)
			vp_output_path(stdout, vp_jr_header(jr)->root, NULL, 0);
		putchar('\n');
	}
	vp_jr_close(jr);
}

static int journal_list(const struct cli_opts *o, const char *jdir_path, const char *arg)
{
	struct vp_root rt = VP_ROOT_INIT;
	struct vp_jinfo *v = NULL;
	struct qpath q1;
	size_t n = 0;
	int jdir = -1, ex = VP_EXIT_OK, e;

	e = cli_open_jdir(jdir_path, false, &jdir);
	if (e == -ENOENT) {
		if (!o->json)
			printf("no journals (no directory %s)\n", qp(&q1, jdir_path));
		return VP_EXIT_OK;
	}
	if (e < 0)
		return VP_EXIT_USAGE;
	/* With PATH: its journals, and those of trees inside it or containing
	 * it (a hot one there blocks PATH too). */
	if (arg && cli_open_root(arg, &rt, o->allow_system_path) < 0)
		ex = VP_EXIT_USAGE;
	else if (vp_session_journals(jdir, arg ? &rt : NULL, &v, &n) < 0)
		ex = VP_EXIT_USAGE;
	for (size_t i = 0; !ex && i < n; i++)
		list_one(o, jdir, jdir_path, &v[i]);
	if (!ex && !n && !o->json)
		printf("no journals\n");
	vp_jdir_list_free(v, n);
	close(jdir);
	vp_root_close(&rt);
	return ex;
}

int cmd_journal(const struct cli_opts *o, const char *sub, const char *arg)
{
	const char *jdir_path = cli_journal_dir(o);
	struct vp_root rt = VP_ROOT_INIT;
	char name[VP_JNAME_MAX], *dir = NULL;
	struct vp_jreader *r = NULL;
	int jdir = -1, ex = VP_EXIT_OK, e;
	struct qpath q1, q2;
	struct stat st;

	if (!sub || (strcmp(sub, "list") && strcmp(sub, "show") && strcmp(sub, "export"))) {
		usage_error("journal needs list, show or export");
		return VP_EXIT_USAGE;
	}
	if (o->format && strcmp(sub, "export")) {
		usage_error("--format goes with journal export");
		return VP_EXIT_USAGE;
	}
	if (o->format && strcmp(o->format, "getfacl") && strcmp(o->format, "json")) {
		usage_error("unknown export format '%s': use getfacl or json", o->format);
		return VP_EXIT_USAGE;
	}
	if (!strcmp(sub, "list"))
		return journal_list(o, jdir_path, arg);
	/* show / export: FILE, or PATH meaning its newest journal. */
	if (!arg) {
		usage_error("journal %s needs a journal FILE or a volume PATH", sub);
		return VP_EXIT_USAGE;
	}
	if (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
		ex = cli_open_journal_file(arg, &jdir, &dir, name);
		if (ex)
			goto out;
		jdir_path = dir;
	} else {
		if (cli_open_root(arg, &rt, o->allow_system_path) < 0 ||
		    cli_open_jdir(jdir_path, false, &jdir) < 0) {
			if (rt.fd >= 0 && jdir < 0)
				cli_error("no journal directory %s", qp(&q1, jdir_path));
			ex = VP_EXIT_USAGE;
			goto out;
		}
		if (vp_session_find(jdir, &rt, VP_PICK_ANY, name) <= 0) {
			cli_error("no journal for %s in %s", qp(&q1, rt.path), qp(&q2, jdir_path));
			ex = VP_EXIT_USAGE;
			goto out;
		}
	}
	e = vp_jr_open_at(jdir, name, &r);
	if (e < 0) {
		cli_error("%s: %s%s", qjp(&q1, jdir_path, name),
		          e == -EBADMSG ? "corrupt journal: " : strerror(-e),
		          e == -EBADMSG && r ? vp_jr_error(r) : "");
		ex = VP_EXIT_USAGE;
		goto out;
	}
	char *jp = cli_journal_path(jdir_path, name);
	if (strcmp(sub, "show")) {
		/* export writes host ids, or nothing (export.h) */
		char why[8192];
		e = jp ? vp_export_host_ids(r, jp, why, sizeof(why)) : -ENOMEM;
		if (e < 0) {
			if (e == -ERANGE)
				cli_error("%s", why);
			else
				cli_error("%s: %s", qjp(&q1, jdir_path, name), strerror(-e));
			free(jp);
			ex = VP_EXIT_USAGE;
			goto out;
		}
	}
	if (!strcmp(sub, "show"))
		e = vp_export_show(stdout, jp, r);
	else if (!o->format || !strcmp(o->format, "getfacl"))
		e = vp_export_getfacl(stdout, r);
	else
		e = vp_export_json(stdout, r);
	free(jp);
	if (e < 0) {
		cli_error("%s: %s", qjp(&q1, jdir_path, name), strerror(-e));
		ex = VP_EXIT_USAGE;
	}
out:
	vp_jr_close(r);
	if (jdir >= 0)
		close(jdir);
	free(dir);
	vp_root_close(&rt);
	return ex;
}
