/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Options (docs/volperm.1): the popt tables, which are the --help text, and
 * the checks of every value, made before any module touches a volume. */
#include <errno.h>
#include <popt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "volperm/idspec.h"
#include "volperm/jdir.h"
#include "volperm/session.h"

#include "cli.h"

enum {
	OPT_OWNER = 1, OPT_MAP, OPT_MAP_GID, OPT_EXCLUDE, OPT_VERSION, OPT_FSGROUP, OPT_CHMOD,
	OPT_ROOT_MODE, OPT_GRANT, OPT_REVOKE, OPT_UID_MAP, OPT_GID_MAP,
};

static const char *const commands[] = {
	[CLI_PLAN] = "plan", [CLI_CHECK] = "check", [CLI_APPLY] = "apply",
	[CLI_ROLLBACK] = "rollback", [CLI_RECOVER] = "recover", [CLI_JOURNAL] = "journal",
	[CLI_EXEC] = "exec", [CLI_IDMAP] = "idmap", [CLI_SHARD] = "shard",
};

static const char usage_text[] =
	"[plan|check|apply] [OPTIONS] PATH\n"
	"  or:  volperm rollback [--journal FILE] [--force] [--journal-dir DIR] [PATH]\n"
	"  or:  volperm recover [--forward] [--journal-dir DIR] PATH\n"
	"  or:  volperm journal list|show|export [--format getfacl|json] [--journal-dir DIR] [FILE|PATH]\n"
	"  or:  volperm exec [OPTIONS] --user UID:GID PATH... -- CMD [ARG...]\n"
	"  or:  volperm idmap [--map OLD:NEW]... [--map-gid OLD:NEW]... | [--owner UID[:GID]] [--read-only] [--dry-run|--print-unit] SRC DST\n"
	"  or:  volperm plan --idmap [--map OLD:NEW]... [--map-gid OLD:NEW]... | [--owner UID[:GID]] PATH\n"
	"  or:  volperm idmap --undo DST\n"
	"  or:  volperm shard plan --shards N [OPTIONS] [-q] PATH\n"
	"  or:  volperm apply|plan|check --run ID --shard K/N|auto [--recover] PATH\n"
	"  or:  volperm shard finalize --run ID PATH\n"
	"  or:  volperm shard status --run ID\n"
	"  or:  volperm rollback --run ID [--shard K/N|auto] PATH";

void cli_command(int *argc, char ***argv_p, struct cli_opts *o)
{
	char **argv = *argv_p;

	o->cmd = CLI_PLAN;
	if (*argc > 1 && strcmp(argv[1], "exec") == 0)
		/* Everything after the first "--" is the command, untouched by popt. */
		for (int i = 2; i < *argc; i++)
			if (strcmp(argv[i], "--") == 0) {
				argv[i] = NULL;
				o->exec_cmd = argv + i + 1;
				*argc = i;
				break;
			}
	if (*argc > 1)
		for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
			if (strcmp(argv[1], commands[c]) == 0) {
				o->cmd = (enum cli_cmd)c;
				argv[1] = argv[0];
				argv++;
				(*argc)--;
				break;
			}
	o->command = commands[o->cmd];
	*argv_p = argv;
}

static const char *id_error(int r)
{
	if (r == -ERANGE)
		return "ids must be between 0 and 4294967294 (4294967295 and -1 mean \"no change\" to chown and are refused)";
	if (r == -EINVAL)
		return "expected a decimal id, or a name found in the user/group database (--passwd, --group-file)";
	if (r == -EISDIR)
		return "the --passwd or --group-file given is a directory, not a passwd/group file";
	return r == -ENOENT ? "the --passwd or --group-file given does not exist"
	                    : "the --passwd or --group-file given cannot be read";
}

/* When a name lookup failed for another reason than "no such name": a
 * --passwd or --group-file that cannot be read is its own error, named, and
 * not "unknown user". Numeric ids never open the files, so they still work
 * when the files are missing. */
static int check_db_files(const struct cli_opts *o)
{
	const char *files[] = { o->passwd_file, o->group_file };
	const char *opts[] = { "--passwd", "--group-file" };

	for (int i = 0; i < 2; i++) {
		struct stat st;
		struct qpath q;
		if (!files[i])
			continue;
		if (stat(files[i], &st) < 0 || access(files[i], R_OK) < 0) {
			int e = errno;
			value_error("cannot read %s %s: %s", opts[i], qp(&q, files[i]), strerror(e));
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			value_error("%s %s is not a regular file", opts[i], qp(&q, files[i]));
			return -1;
		}
	}
	return 0;
}

static int parse_option(struct cli_opts *o, const struct vp_iddb *db, int val, const char *arg)
{
	uint32_t a, b;
	int r;

	switch (val) {
	case OPT_OWNER: {
		struct vp_owner ow;
		r = vp_parse_owner_db(db, arg, &ow);
		if (r < 0 && r != -EINVAL && r != -ERANGE && check_db_files(o) < 0)
			return -1;
		if (r < 0) {
			value_error("invalid owner '%s': %s%s", arg, id_error(r),
			            strchr(arg, ':') && arg[strlen(arg) - 1] == ':' ? "; give the group too, as UID:GID" : "");
			return -1;
		}
		o->policy.has_uid = ow.has_uid;
		o->policy.uid = ow.uid;
		o->policy.has_gid = ow.has_gid;
		o->policy.gid = ow.gid;
		return 0;
	}
	case OPT_MAP:
	case OPT_MAP_GID:
		r = val == OPT_MAP ? vp_parse_uid_map_db(db, arg, &a, &b)
		                   : vp_parse_gid_map_db(db, arg, &a, &b);
		if (r < 0 && r != -EINVAL && r != -ERANGE && check_db_files(o) < 0)
			return -1;
		if (r < 0) {
			value_error("invalid %s '%s': expected OLD:NEW; %s",
			            val == OPT_MAP ? "--map" : "--map-gid", arg, id_error(r));
			return -1;
		}
		r = val == OPT_MAP ? vp_policy_add_uid_map(&o->policy, a, b)
		                   : vp_policy_add_gid_map(&o->policy, a, b);
		return r < 0 ? -1 : 0;
	case OPT_FSGROUP: {
		gid_t g;
		r = vp_parse_group_db(db, arg, &g);
		if (r < 0 && r != -EINVAL && r != -ERANGE && check_db_files(o) < 0)
			return -1;
		if (r < 0) {
			value_error("invalid --fsgroup '%s': %s", arg, id_error(r));
			return -1;
		}
		o->policy.has_fsgroup = true;
		o->policy.fsgroup = g;
		return 0;
	}
	case OPT_CHMOD:
		if (vp_policy_set_chmod(&o->policy, arg) < 0) {
			value_error("invalid --chmod '%s': expected a chmod mode such as u+rwX,go-w or 0750", arg);
			return -1;
		}
		return 0;
	case OPT_ROOT_MODE:
		if (vp_parse_octal_mode(arg, &o->policy.root_mode) < 0) {
			value_error("invalid --root-mode '%s': expected an octal mode such as 0700", arg);
			return -1;
		}
		o->policy.has_root_mode = true;
		return 0;
	case OPT_GRANT:
	case OPT_REVOKE:
		r = vp_policy_add_grants(&o->policy, db, arg, val == OPT_REVOKE);
		if (r < 0 && r != -EINVAL && check_db_files(o) < 0)
			return -1;
		if (r < 0) {
			value_error(val == OPT_GRANT
			            ? "invalid --grant '%s': expected u:UID:PERMS or g:GID:PERMS (PERMS of rwxX), comma-separated"
			            : "invalid --revoke '%s': expected u:UID or g:GID, comma-separated", arg);
			return -1;
		}
		return 0;
	case OPT_EXCLUDE:
		if (!*arg) {
			usage_error("--exclude needs a non-empty glob");
			return -1;
		}
		return vp_policy_add_exclude(&o->policy, arg) < 0 ? -1 : 0;
	}
	return 0;
}

/* --userns, --uid-map, --gid-map: build the map, and translate every id of
 * the policy from the container's to the host's (userns.c says why). 0, or
 * -1 (said). */
static int userns_options(struct cli_opts *o)
{
	char **u = calloc(o->n_raw + 1, sizeof(*u)), **g = calloc(o->n_raw + 1, sizeof(*g)), why[512];
	size_t nu = 0, ng = 0;
	int r = -ENOMEM;

	if (u && g) {
		for (size_t i = 0; i < o->n_raw; i++)
			if (o->raw[i].val == OPT_UID_MAP || o->raw[i].val == OPT_GID_MAP) {
				char *a = o->raw[i].arg ? o->raw[i].arg : "";
				if (o->raw[i].val == OPT_UID_MAP)
					u[nu++] = a;
				else
					g[ng++] = a;
			}
		r = vp_userns_build(&o->userns, o->userns_spec, u, nu, g, ng, why, sizeof(why));
	} else {
		snprintf(why, sizeof(why), "out of memory");
	}
	free(u);
	free(g);
	if (r == 0 && !vp_userns_empty(&o->userns))
		r = vp_userns_translate_policy(&o->userns, &o->policy, why, sizeof(why));
	if (r < 0) {
		value_error("%s", why);
		return -1;
	}
	return 0;
}

/* --jobs N or auto, else VOLPERM_JOBS, else auto (0: decided by
 * vp_jobs_auto() once the root is open). */
static int resolve_jobs(struct cli_opts *o)
{
	const char *text = o->jobs_text, *from = "--jobs";

	if (!text && (text = getenv("VOLPERM_JOBS")) && *text)
		from = "VOLPERM_JOBS";
	else if (!o->jobs_text)
		text = NULL;
	o->jobs_from = text ? from : NULL;
	if (!text) {
		o->jobs = 0;
		return 0;
	}
	if (vp_jobs_parse(text, &o->jobs) < 0) {
		usage_error("invalid %s '%s': give a number of threads from 1 to %d, or auto", from, text,
		            VP_JOBS_MAX);
		return -EINVAL;
	}
	return 0;
}

/* The values that need the whole command line (the name databases), and
 * the options that only go together. 0, or -1 (said). */
static int check_values(struct cli_opts *o)
{
	struct vp_iddb db = { o->passwd_file, o->group_file };

	for (size_t i = 0; i < o->n_raw; i++)
		if (!o->bad && parse_option(o, &db, o->raw[i].val, o->raw[i].arg ? o->raw[i].arg : "") < 0)
			o->bad = 1;
	if (!o->bad && userns_options(o) < 0)
		o->bad = 1;
	if (!o->bad && o->fsgroup_policy) {
		if (!strcmp(o->fsgroup_policy, "on-root-mismatch"))
			o->policy.on_root_mismatch = true;
		else if (strcmp(o->fsgroup_policy, "always")) {
			usage_error("invalid --fsgroup-policy '%s': use always or on-root-mismatch", o->fsgroup_policy);
			o->bad = 1;
		}
	}
	if (!o->bad && (o->fsgroup_policy || (o->read_only && o->cmd != CLI_IDMAP)) && !o->policy.has_fsgroup) {
		usage_error("--fsgroup-policy and --read-only go with --fsgroup");
		o->bad = 1;
	}
	if (!o->bad && o->policy.has_fsgroup && o->policy.has_gid) {
		usage_error("--fsgroup sets the group: give --owner UID without a group, or drop --fsgroup");
		o->bad = 1;
	}
	o->policy.fsgroup_readonly = o->read_only;
	if (o->if_root_mismatch)
		o->policy.on_root_mismatch = true;
	return o->bad ? -1 : 0;
}

/* Read the command line into o with popt. 0; -2 after --version; -1 after a
 * usage error (said). The tables point into o, so they live here, in this
 * call, and the operands are copied out before the context goes. */
static int popt_read(int argc, char **argv, struct cli_opts *o)
{
	struct poptOption target_table[] = {
		{ "owner", 'o', POPT_ARG_STRING, NULL, OPT_OWNER, "give every entry this owner (and group)", "UID[:GID]" },
		{ "map", 0, POPT_ARG_STRING, NULL, OPT_MAP, "change only entries owned by uid OLD, to NEW (repeatable)", "OLD:NEW" },
		{ "map-gid", 0, POPT_ARG_STRING, NULL, OPT_MAP_GID, "change only entries of group OLD, to NEW (repeatable)", "OLD:NEW" },
		{ "fsgroup", 0, POPT_ARG_STRING, NULL, OPT_FSGROUP, "Kubernetes fsGroup: group GID, g+rw files, g+rwxs dirs", "GID" },
		{ "fsgroup-policy", 0, POPT_ARG_STRING, &o->fsgroup_policy, 0, "always (default) or on-root-mismatch", "POLICY" },
		{ "read-only", 0, POPT_ARG_NONE, &o->read_only, 0, "with --fsgroup: g+r instead of g+rw", NULL },
		{ "chmod", 0, POPT_ARG_STRING, NULL, OPT_CHMOD, "change modes as chmod MODE does (e.g. u+rwX,go-w)", "MODE" },
		{ "root-mode", 0, POPT_ARG_STRING, NULL, OPT_ROOT_MODE, "give PATH itself exactly this mode (e.g. 0700)", "OCTAL" },
		{ "grant", 0, POPT_ARG_STRING, NULL, OPT_GRANT, "add ACL entries, and default ACL entries on dirs (repeatable)", "u:UID:PERMS,g:GID:PERMS" },
		{ "revoke", 0, POPT_ARG_STRING, NULL, OPT_REVOKE, "remove named ACL entries (repeatable)", "u:UID,g:GID" },
		{ "if-root-mismatch", 0, POPT_ARG_NONE, &o->if_root_mismatch, 0, "skip the walk when PATH itself already complies (O(1))", NULL },
		{ "passwd", 0, POPT_ARG_STRING, &o->passwd_file, 0, "resolve user names in this passwd file (e.g. the app image's)", "FILE" },
		{ "group-file", 0, POPT_ARG_STRING, &o->group_file, 0, "resolve group names in this group file", "FILE" },
		{ "userns", 0, POPT_ARG_STRING, &o->userns_spec, 0, "ids given are a user namespace's: user:NAME (rootless podman/docker), pid:PID or /proc/PID/ns/user", "SPEC" },
		{ "uid-map", 0, POPT_ARG_STRING, NULL, OPT_UID_MAP, "ids given are a user namespace's: container uids C.. are host uids H.. (repeatable)", "C:H:N" },
		{ "gid-map", 0, POPT_ARG_STRING, NULL, OPT_GID_MAP, "the same for gids (default: as --uid-map)", "C:H:N" },
		POPT_TABLEEND
	};
	struct poptOption scope_table[] = {
		{ "exclude", 0, POPT_ARG_STRING, NULL, OPT_EXCLUDE, "skip entries matching GLOB (a name, or a path below PATH if it has '/'; repeatable)", "GLOB" },
		{ "jobs", 'j', POPT_ARG_STRING, &o->jobs_text, 0, "walk and apply with N threads (1-256), or auto (env VOLPERM_JOBS; default auto: the CPUs, at most 8, on a local filesystem; up to 128 where each request is a round trip)", "N|auto" },
		{ "cross-mounts", 0, POPT_ARG_NONE, &o->cross_mounts, 0, "enter nested mount points (default: stay on one filesystem)", NULL },
		{ "include-devices", 0, POPT_ARG_NONE, &o->include_devices, 0, "change device nodes too (default: skip them)", NULL },
		{ "allow-external-links", 0, POPT_ARG_NONE, &o->allow_external_links, 0, "change files with hard links outside PATH (unsafe)", NULL },
		{ "allow-system-path", 0, POPT_ARG_NONE, &o->allow_system_path, 0, "allow PATH to be /, /etc, /usr, /var, /home, ...", NULL },
		POPT_TABLEEND
	};
	struct poptOption journal_table[] = {
		{ "journal-dir", 0, POPT_ARG_STRING, &o->journal_dir, 0, "where journals live (env VOLPERM_JOURNAL_DIR; default " VP_JOURNAL_DIR_DEFAULT ", or ~/.local/state/volperm when not root)", "DIR" },
		{ "no-journal", 0, POPT_ARG_NONE, &o->no_journal, 0, "apply without a journal: no rollback possible", NULL },
		{ "keep-going", 0, POPT_ARG_NONE, &o->keep_going, 0, "do not stop at the first error; no automatic rollback; exit 5", NULL },
		{ "recover", 0, POPT_ARG_NONE, &o->recover, 0, "apply: roll back an interrupted apply first", NULL },
		{ "journal", 0, POPT_ARG_STRING, &o->journal, 0, "rollback: use this journal file", "FILE" },
		{ "force", 0, POPT_ARG_NONE, &o->force, 0, "rollback: restore entries changed since volperm set them", NULL },
		{ "forward", 0, POPT_ARG_NONE, &o->forward, 0, "recover: finish the interrupted apply instead of rolling it back", NULL },
		{ "format", 0, POPT_ARG_STRING, &o->format, 0, "journal export: getfacl or json", "FORMAT" },
		{ "user", 0, POPT_ARG_STRING, &o->user, 0, "exec: run the command as this user", "UID:GID" },
		{ "allow-root", 0, POPT_ARG_NONE, &o->allow_root, 0, "exec: allow --user 0", NULL },
		{ "undo", 0, POPT_ARG_NONE, &o->idmap_undo, 0, "idmap: unmount the idmapped mount on DST", NULL },
		{ "dry-run", 0, POPT_ARG_NONE, &o->idmap_dry_run, 0, "idmap: show what DST would show, probe support, mount nothing", NULL },
		{ "print-unit", 0, POPT_ARG_NONE, &o->print_unit, 0, "idmap: print a systemd unit that makes the mount (and its fstab line)", NULL },
		{ "idmap", 0, POPT_ARG_NONE, &o->idmap_plan, 0, "plan: would an idmapped mount do instead of chown, and what each costs", NULL },
		POPT_TABLEEND
	};
	struct poptOption shard_table[] = {
		{ "run", 0, POPT_ARG_STRING, &o->run_id, 0, "the sharded run (the id shard plan printed)", "ID" },
		{ "shard", 0, POPT_ARG_STRING, &o->shard_spec, 0, "with --run: be shard K of N, or auto (Slurm, Kubernetes Indexed Job, MPI)", "K/N|auto" },
		{ "shards", 0, POPT_ARG_STRING, &o->shards_text, 0, "shard plan: split the tree into N shards (1-65536)", "N" },
		POPT_TABLEEND
	};
	struct poptOption output_table[] = {
		{ "list", 0, POPT_ARG_NONE, &o->list, 0, "print one line per change or skip", NULL },
		{ "json", 0, POPT_ARG_NONE, &o->json, 0, "print NDJSON events instead of text", NULL },
		{ "quiet", 'q', POPT_ARG_NONE, &o->quiet, 0, "print errors only", NULL },
		{ "progress", 0, POPT_ARG_STRING, &o->progress, 0, "auto (default: live on a terminal, else a line every interval after the first), always or never", "WHEN" },
		{ "progress-interval", 0, POPT_ARG_DOUBLE, &o->progress_interval, 0, "seconds between progress lines without a terminal (default 10)", "SECONDS" },
		POPT_TABLEEND
	};
	struct poptOption main_table[] = {
		{ NULL, 0, POPT_ARG_INCLUDE_TABLE, target_table, 0, "Target (plan, check, apply; combine freely):", NULL },
		{ NULL, 0, POPT_ARG_INCLUDE_TABLE, scope_table, 0, "Scope:", NULL },
		{ NULL, 0, POPT_ARG_INCLUDE_TABLE, journal_table, 0, "Journal and safety:", NULL },
		{ NULL, 0, POPT_ARG_INCLUDE_TABLE, shard_table, 0, "Sharded runs (docs/scale-out.md):", NULL },
		{ NULL, 0, POPT_ARG_INCLUDE_TABLE, output_table, 0, "Output:", NULL },
		{ "version", 0, POPT_ARG_NONE, NULL, OPT_VERSION, "print the version", NULL },
		POPT_AUTOHELP
		POPT_TABLEEND
	};
	poptContext ctx = poptGetContext("volperm", argc, (const char **)argv, main_table, 0);
	int rc, r = 0;

	poptSetOtherOptionHelp(ctx, usage_text);
	while ((rc = poptGetNextOpt(ctx)) > 0) {
		if (rc == OPT_VERSION) {
			printf("volperm " VOLPERM_VERSION "\n");
			poptFreeContext(ctx);
			return -2;
		}
		/* poptGetOptArg() hands over a malloc()ed copy, once. */
		char *optarg_ = poptGetOptArg(ctx);
		struct cli_rawopt *nr = realloc(o->raw, (o->n_raw + 1) * sizeof(*nr));
		if (!nr) {
			free(optarg_);
			o->bad = 1;
			continue;
		}
		o->raw = nr;
		o->raw[o->n_raw++] = (struct cli_rawopt){ rc, optarg_ };
	}
	/* A refused value and an unknown option are both said, in this order. */
	(void)check_values(o);
	if (rc < -1) {
		usage_error("%s: %s", poptBadOption(ctx, POPT_BADOPTION_NOALIAS), poptStrerror(rc));
		r = -1;
	} else if (o->bad) {
		r = -1;
	}
	const char **args = poptGetArgs(ctx);
	while (r == 0 && args && args[o->nargs])
		o->nargs++;
	if (r == 0 && !(o->args = calloc((size_t)o->nargs + 1, sizeof(*o->args))))
		r = -1;
	for (int i = 0; r == 0 && i < o->nargs; i++)
		if (!(o->args[i] = strdup(args[i])))
			r = -1;
	poptFreeContext(ctx);
	return r;
}

int cli_parse(int argc, char **argv, struct cli_opts *o)
{
	vp_policy_init(&o->policy);
	int r = popt_read(argc, argv, o);
	if (r == -2)
		return VP_EXIT_OK;
	if (r < 0)
		return VP_EXIT_USAGE;
	if (o->progress && strcmp(o->progress, "auto") && strcmp(o->progress, "always") &&
	    strcmp(o->progress, "never")) {
		usage_error("invalid --progress '%s': use auto, always or never", o->progress);
		return VP_EXIT_USAGE;
	}
	if (o->progress_interval < 0) {
		usage_error("--progress-interval must be positive");
		return VP_EXIT_USAGE;
	}
	if (resolve_jobs(o) < 0)
		return VP_EXIT_USAGE;
	if (o->json && o->list) {
		usage_error("--json and --list do not go together (JSON has every event)");
		return VP_EXIT_USAGE;
	}
	/* rollback takes them for its output (each owner as the container
	 * sees it too); idmap's --map/--owner ids are the container's as for
	 * apply (the mount gets their host ids, and so does --print-unit's
	 * unit); journal, recover and idmap --undo have no ids to translate. */
	if (!vp_userns_empty(&o->userns) && o->cmd != CLI_PLAN && o->cmd != CLI_CHECK &&
	    o->cmd != CLI_APPLY && o->cmd != CLI_EXEC && o->cmd != CLI_ROLLBACK &&
	    (o->cmd != CLI_IDMAP || o->idmap_undo)) {
		usage_error("--userns, --uid-map and --gid-map go with plan, check, apply, exec, rollback and idmap");
		return VP_EXIT_USAGE;
	}
	/* Not root, or root of a user namespace: the default journal
	 * directory is the user's (jdir.h). Worked out only when it is the one
	 * used (it may ask the passwd database); -ENOENT (no home) leaves
	 * VP_JOURNAL_DIR_DEFAULT, which then names itself in any refusal. */
	const char *env = getenv("VOLPERM_JOURNAL_DIR");
	if (!o->journal_dir && !(env && *env) && vp_jdir_default(&o->jdir_default) < 0)
		o->jdir_default = NULL;
	return -1;
}

int cli_check_command(const struct cli_opts *o)
{
	const char *command = o->command;
	bool is_run = o->cmd == CLI_PLAN || o->cmd == CLI_CHECK || o->cmd == CLI_APPLY;

	if (o->user || o->allow_root) {
		usage_error("--user and --allow-root go with exec");
		return VP_EXIT_USAGE;
	}
	if (o->jobs_text && !is_run && o->cmd != CLI_RECOVER && o->cmd != CLI_ROLLBACK) {
		usage_error("--jobs goes with plan, check, apply, rollback and recover; %s runs on one thread",
		            command);
		return VP_EXIT_USAGE;
	}
	if ((o->run_id || o->shard_spec) && !is_run && o->cmd != CLI_ROLLBACK) {
		usage_error("--run and --shard go with plan, check, apply, rollback and shard");
		return VP_EXIT_USAGE;
	}
	if (o->shard_spec && !o->run_id) {
		usage_error("--shard goes with --run ID (the id shard plan printed)");
		return VP_EXIT_USAGE;
	}
	if (o->shards_text && !(is_run && o->run_id)) {
		usage_error("--shards goes with shard plan (and with --run ... --shard auto)");
		return VP_EXIT_USAGE;
	}
	if ((o->forward && o->cmd != CLI_RECOVER) || (o->force && o->cmd != CLI_ROLLBACK) ||
	    (o->journal && o->cmd != CLI_ROLLBACK) || (o->recover && o->cmd != CLI_APPLY) ||
	    o->idmap_undo || o->idmap_dry_run || o->print_unit || o->idmap_plan ||
	    (!is_run && !vp_policy_is_empty(&o->policy))) {
		usage_error("an option was given that '%s' does not take", command);
		return VP_EXIT_USAGE;
	}
	if (o->cmd == CLI_JOURNAL) {
		if (o->nargs > 2) {
			usage_error("too many arguments");
			return VP_EXIT_USAGE;
		}
		return -1;
	}
	if (o->nargs > 1) {
		usage_error("too many arguments: volperm works on one PATH at a time");
		return VP_EXIT_USAGE;
	}
	if (is_run && o->nargs != 1) {
		usage_error("missing PATH");
		return VP_EXIT_USAGE;
	}
	return -1;
}

void cli_opts_free(struct cli_opts *o)
{
	/* popt hands each POPT_ARG_STRING value over as a malloc()ed copy. */
	char **strings[] = { &o->journal_dir, &o->journal, &o->format,
		             &o->fsgroup_policy, &o->passwd_file, &o->group_file, &o->progress,
		             &o->jobs_text, &o->user, &o->userns_spec, &o->jdir_default,
		             &o->run_id, &o->shard_spec, &o->shards_text };
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		free(*strings[i]);
		*strings[i] = NULL;
	}
	vp_policy_free(&o->policy);
	vp_userns_free(&o->userns);
	for (size_t i = 0; i < o->n_raw; i++)
		free(o->raw[i].arg);
	free(o->raw);
	for (int i = 0; o->args && i < o->nargs; i++)
		free(o->args[i]);
	free(o->args);
	o->raw = NULL;
	o->args = NULL;
	o->n_raw = 0;
	o->nargs = 0;
}
