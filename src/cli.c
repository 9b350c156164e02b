/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The command line (see cli.h and docs/volperm.1). Everything the user typed
 * is validated here, before any module touches the volume; the options live
 * in one struct, the only mutable state outside the modules' own objects,
 * with the signal counter (the handlers' only target) and what became of
 * standard output. */
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdbool.h>
#include <time.h>
#include <fcntl.h>
#include <limits.h>
#include <popt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "volperm/cancel.h"
#include "volperm/caps.h"
#include "volperm/cli.h"
#include "volperm/engine.h"
#include "volperm/exit.h"
#include "volperm/export.h"
#include "volperm/idmap.h"
#include "volperm/idspec.h"
#include "volperm/jdir.h"
#include "volperm/journal.h"
#include "volperm/output.h"
#include "volperm/policy.h"
#include "volperm/privdrop.h"
#include "volperm/quote.h"
#include "volperm/rollback.h"
#include "volperm/userns.h"
#include "volperm/volume.h"

enum {
	OPT_OWNER = 1, OPT_MAP, OPT_MAP_GID, OPT_EXCLUDE, OPT_VERSION, OPT_FSGROUP, OPT_CHMOD,
	OPT_ROOT_MODE, OPT_GRANT, OPT_REVOKE, OPT_UID_MAP, OPT_GID_MAP,
};

/* Options whose values need the name databases are kept as typed and parsed
 * after the whole command line is read (--passwd may come last). */
struct rawopt {
	int val;
	char *arg;
};

struct opts {
	char *owner;
	int cross_mounts, include_devices, allow_external_links, allow_system_path;
	char *journal_dir, *journal;
	int no_journal, keep_going, list, json, quiet, recover, force, forward;
	char *format;
	char *fsgroup_policy, *passwd_file, *group_file;
	int read_only, if_root_mismatch;
	char *progress;
	double progress_interval;
	char *jobs_text;       /* --jobs, as typed */
	unsigned jobs;         /* resolved: --jobs, VOLPERM_JOBS, or the CPUs */
	char *user;            /* exec --user */
	int allow_root;        /* exec --allow-root */
	int idmap_undo, idmap_dry_run, print_unit; /* idmap */
	struct rawopt *raw;
	size_t n_raw;
	struct vp_policy policy;
	char *userns_spec;     /* --userns */
	struct vp_userns userns; /* --userns or --uid-map/--gid-map; empty: none */
	int bad;               /* an option value was refused (already reported) */
};


/* Every path in a message goes through the quoting: a name may hold a
 * newline or a terminal escape sequence, and the message goes to the
 * operator's terminal and log. Each path of a message needs its own qpath. */
struct qpath {
	char s[4096];
};

static const char *qp(struct qpath *q, const char *path)
{
	return path ? vp_quote_shell_buf(q->s, sizeof(q->s), path, strlen(path)) : "(none)";
}

/* DIR/NAME, quoted as one path. */
static const char *qjp(struct qpath *q, const char *dir, const char *name)
{
	return vp_quote_path_buf(q->s, sizeof(q->s), dir, name, strlen(name));
}

static void vmessage(bool hint, const char *fmt, va_list ap)
{
	fputs("volperm: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(hint ? "\nTry 'volperm --help' for more information.\n" : "\n", stderr);
}

/* A bad value: one sentence, nothing more (scripts grep for it). */
static void value_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void value_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage(false, fmt, ap);
	va_end(ap);
}

/* A malformed command line: the sentence and where to read more. */
static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage(true, fmt, ap);
	va_end(ap);
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

static struct opts O; /* defined below, with the popt tables */

/* When a name lookup failed for another reason than "no such name": a
 * --passwd or --group-file that cannot be read is its own error, named, and
 * not "unknown user". Numeric ids never open the files, so they still work
 * when the files are missing. */
static int check_db_files(void)
{
	const char *files[] = { O.passwd_file, O.group_file };
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

static int parse_option(struct opts *o, const struct vp_iddb *db, int val, const char *arg)
{
	uint32_t a, b;
	int r;

	switch (val) {
	case OPT_OWNER: {
		struct vp_owner ow;
		r = vp_parse_owner_db(db, arg, &ow);
		if (r < 0 && r != -EINVAL && r != -ERANGE && check_db_files() < 0)
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
		if (r < 0 && r != -EINVAL && r != -ERANGE && check_db_files() < 0)
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
		if (r < 0 && r != -EINVAL && r != -ERANGE && check_db_files() < 0)
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
		if (r < 0 && r != -EINVAL && check_db_files() < 0)
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
 * the policy from the container's to the host's (userns.c says why). */
static int userns_options(void)
{
	char **u = calloc(O.n_raw + 1, sizeof(*u)), **g = calloc(O.n_raw + 1, sizeof(*g)), why[512];
	size_t nu = 0, ng = 0;
	int r = -ENOMEM;

	if (u && g) {
		for (size_t i = 0; i < O.n_raw; i++)
			if (O.raw[i].val == OPT_UID_MAP || O.raw[i].val == OPT_GID_MAP) {
				char *a = O.raw[i].arg ? O.raw[i].arg : "";
				if (O.raw[i].val == OPT_UID_MAP)
					u[nu++] = a;
				else
					g[ng++] = a;
			}
		r = vp_userns_build(&O.userns, O.userns_spec, u, nu, g, ng, why, sizeof(why));
	} else {
		snprintf(why, sizeof(why), "out of memory");
	}
	free(u);
	free(g);
	if (r == 0 && !vp_userns_empty(&O.userns))
		r = vp_userns_translate_policy(&O.userns, &O.policy, why, sizeof(why));
	if (r < 0) {
		value_error("%s", why);
		return -1;
	}
	return 0;
}

/* ---- popt tables: they are the --help text; keep docs/volperm.1 in step ---- */

static struct opts O;  /* popt tables need static addresses; only cli.c sees it */

static struct poptOption target_table[] = {
	{ "owner", 'o', POPT_ARG_STRING, NULL, OPT_OWNER, "give every entry this owner (and group)", "UID[:GID]" },
	{ "map", 0, POPT_ARG_STRING, NULL, OPT_MAP, "change only entries owned by uid OLD, to NEW (repeatable)", "OLD:NEW" },
	{ "map-gid", 0, POPT_ARG_STRING, NULL, OPT_MAP_GID, "change only entries of group OLD, to NEW (repeatable)", "OLD:NEW" },
	{ "fsgroup", 0, POPT_ARG_STRING, NULL, OPT_FSGROUP, "Kubernetes fsGroup: group GID, g+rw files, g+rwxs dirs", "GID" },
	{ "fsgroup-policy", 0, POPT_ARG_STRING, &O.fsgroup_policy, 0, "always (default) or on-root-mismatch", "POLICY" },
	{ "read-only", 0, POPT_ARG_NONE, &O.read_only, 0, "with --fsgroup: g+r instead of g+rw", NULL },
	{ "chmod", 0, POPT_ARG_STRING, NULL, OPT_CHMOD, "change modes as chmod MODE does (e.g. u+rwX,go-w)", "MODE" },
	{ "root-mode", 0, POPT_ARG_STRING, NULL, OPT_ROOT_MODE, "give PATH itself exactly this mode (e.g. 0700)", "OCTAL" },
	{ "grant", 0, POPT_ARG_STRING, NULL, OPT_GRANT, "add ACL entries, and default ACL entries on dirs (repeatable)", "u:UID:PERMS,g:GID:PERMS" },
	{ "revoke", 0, POPT_ARG_STRING, NULL, OPT_REVOKE, "remove named ACL entries (repeatable)", "u:UID,g:GID" },
	{ "if-root-mismatch", 0, POPT_ARG_NONE, &O.if_root_mismatch, 0, "skip the walk when PATH itself already complies (O(1))", NULL },
	{ "passwd", 0, POPT_ARG_STRING, &O.passwd_file, 0, "resolve user names in this passwd file (e.g. the app image's)", "FILE" },
	{ "group-file", 0, POPT_ARG_STRING, &O.group_file, 0, "resolve group names in this group file", "FILE" },
	{ "userns", 0, POPT_ARG_STRING, &O.userns_spec, 0, "ids given are a user namespace's: user:NAME (rootless podman/docker), pid:PID or /proc/PID/ns/user", "SPEC" },
	{ "uid-map", 0, POPT_ARG_STRING, NULL, OPT_UID_MAP, "ids given are a user namespace's: container uids C.. are host uids H.. (repeatable)", "C:H:N" },
	{ "gid-map", 0, POPT_ARG_STRING, NULL, OPT_GID_MAP, "the same for gids (default: as --uid-map)", "C:H:N" },
	POPT_TABLEEND
};

static struct poptOption scope_table[] = {
	{ "exclude", 0, POPT_ARG_STRING, NULL, OPT_EXCLUDE, "skip entries matching GLOB (a name, or a path below PATH if it has '/'; repeatable)", "GLOB" },
	{ "jobs", 'j', POPT_ARG_STRING, &O.jobs_text, 0, "walk and apply with N threads (env VOLPERM_JOBS; default: the CPUs, at most 8)", "N" },
	{ "cross-mounts", 0, POPT_ARG_NONE, &O.cross_mounts, 0, "enter nested mount points (default: stay on one filesystem)", NULL },
	{ "include-devices", 0, POPT_ARG_NONE, &O.include_devices, 0, "change device nodes too (default: skip them)", NULL },
	{ "allow-external-links", 0, POPT_ARG_NONE, &O.allow_external_links, 0, "change files with hard links outside PATH (unsafe)", NULL },
	{ "allow-system-path", 0, POPT_ARG_NONE, &O.allow_system_path, 0, "allow PATH to be /, /etc, /usr, /var, /home, ...", NULL },
	POPT_TABLEEND
};

static struct poptOption journal_table[] = {
	{ "journal-dir", 0, POPT_ARG_STRING, &O.journal_dir, 0, "where journals live (env VOLPERM_JOURNAL_DIR; default " VP_JOURNAL_DIR_DEFAULT ", or ~/.local/state/volperm when not root)", "DIR" },
	{ "no-journal", 0, POPT_ARG_NONE, &O.no_journal, 0, "apply without a journal: no rollback possible", NULL },
	{ "keep-going", 0, POPT_ARG_NONE, &O.keep_going, 0, "do not stop at the first error; no automatic rollback; exit 5", NULL },
	{ "recover", 0, POPT_ARG_NONE, &O.recover, 0, "apply: roll back an interrupted apply first", NULL },
	{ "journal", 0, POPT_ARG_STRING, &O.journal, 0, "rollback: use this journal file", "FILE" },
	{ "force", 0, POPT_ARG_NONE, &O.force, 0, "rollback: restore entries changed since volperm set them", NULL },
	{ "forward", 0, POPT_ARG_NONE, &O.forward, 0, "recover: finish the interrupted apply instead of rolling it back", NULL },
	{ "format", 0, POPT_ARG_STRING, &O.format, 0, "journal export: getfacl or json", "FORMAT" },
	{ "user", 0, POPT_ARG_STRING, &O.user, 0, "exec: run the command as this user", "UID:GID" },
	{ "allow-root", 0, POPT_ARG_NONE, &O.allow_root, 0, "exec: allow --user 0", NULL },
	{ "undo", 0, POPT_ARG_NONE, &O.idmap_undo, 0, "idmap: unmount the idmapped mount on DST", NULL },
	{ "dry-run", 0, POPT_ARG_NONE, &O.idmap_dry_run, 0, "idmap: show what DST would show, probe support, mount nothing", NULL },
	{ "print-unit", 0, POPT_ARG_NONE, &O.print_unit, 0, "idmap: print a systemd unit that makes the mount", NULL },
	POPT_TABLEEND
};

static struct poptOption output_table[] = {
	{ "list", 0, POPT_ARG_NONE, &O.list, 0, "print one line per change or skip", NULL },
	{ "json", 0, POPT_ARG_NONE, &O.json, 0, "print NDJSON events instead of text", NULL },
	{ "quiet", 'q', POPT_ARG_NONE, &O.quiet, 0, "print errors only", NULL },
	{ "progress", 0, POPT_ARG_STRING, &O.progress, 0, "auto (default: live on a terminal, else a line every interval after the first), always or never", "WHEN" },
	{ "progress-interval", 0, POPT_ARG_DOUBLE, &O.progress_interval, 0, "seconds between progress lines without a terminal (default 10)", "SECONDS" },
	POPT_TABLEEND
};

static struct poptOption main_table[] = {
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, target_table, 0, "Target (plan, check, apply; combine freely):", NULL },
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, scope_table, 0, "Scope:", NULL },
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, journal_table, 0, "Journal and safety:", NULL },
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, output_table, 0, "Output:", NULL },
	{ "version", 0, POPT_ARG_NONE, NULL, OPT_VERSION, "print the version", NULL },
	POPT_AUTOHELP
	POPT_TABLEEND
};

static const char usage_text[] =
	"[plan|check|apply] [OPTIONS] PATH\n"
	"  or:  volperm rollback [--journal FILE] [--force] [--journal-dir DIR] [PATH]\n"
	"  or:  volperm recover [--forward] [--journal-dir DIR] PATH\n"
	"  or:  volperm journal list|show|export [--format getfacl|json] [--journal-dir DIR] [FILE|PATH]\n"
	"  or:  volperm exec [OPTIONS] --user UID:GID PATH... -- CMD [ARG...]\n"
	"  or:  volperm idmap [--map OLD:NEW]... [--map-gid OLD:NEW]... [--read-only] [--dry-run|--print-unit] SRC DST\n"
	"  or:  volperm idmap --undo DST";

/* ---- signals (docs/volperm.1, SIGNALS) ---- */

/* SIGTERM (docker stop, Kubernetes), SIGINT (Ctrl-C) and SIGHUP are counted
 * here and nothing else: the core polls the count between entries, stops,
 * and an apply rolls back (a second signal stops that rollback). */
static struct vp_cancel cancel;
/* The dispositions and mask we were started with, for exec's app. */
static struct vp_exec_signals inherited;

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "a signal handler may only touch lock-free atomics");

static void on_stop_signal(int signo)
{
	atomic_store(&cancel.signo, signo);
	atomic_fetch_add(&cancel.count, 1);
}

/* For every command that walks or changes a tree (not `journal`, which only
 * reads journals and dies of a signal like any filter). */
static void setup_signals(void)
{
	static const int stop[] = { SIGTERM, SIGINT, SIGHUP };
	struct sigaction sa = { .sa_handler = on_stop_signal, .sa_flags = SA_RESTART }, old;

	(void)sigprocmask(SIG_SETMASK, NULL, &inherited.mask);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(stop) / sizeof(stop[0]); i++) {
		/* A signal ignored when we started (nohup, a background job of
		 * a script) stays ignored, as coreutils' sort and timeout do. */
		if (sigaction(stop[i], NULL, &old) < 0 || old.sa_handler == SIG_IGN)
			continue;
		if (sigaction(stop[i], &sa, NULL) == 0) {
			inherited.signo[inherited.n] = stop[i];
			inherited.action[inherited.n++] = old;
		}
	}
	/* A closed stdout (`| head -1`) must not kill an apply half way: the
	 * writes fail with EPIPE instead, and output.c stops writing. */
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, &old) == 0) {
		inherited.signo[inherited.n] = SIGPIPE;
		inherited.action[inherited.n++] = old;
	}
}

/* ---- standard output (docs/volperm.1, EXIT STATUS 8) ---- */

static int stdout_error;       /* errno of the first failed write to stdout */
static char stdout_done[640];  /* what the run did, for the closing line */

/* Flush o and keep the first failure of standard output. */
static void note_output(struct vp_output *o)
{
	int e = vp_output_finish(o);
	if (e && !stdout_error)
		stdout_error = e;
}

/* The closing line when standard output failed: said once, on stderr, and
 * exit 8 only when the run would have exited 0 (any other status says more
 * about the volume, and its own sentence is already on stderr). */
static int finish_stdout(int ex)
{
	if (fflush(stdout) != 0 && !stdout_error)
		stdout_error = errno ? errno : EIO;
	if (!stdout_error && ferror(stdout))
		stdout_error = EIO;
	if (!stdout_error)
		return ex;
	fprintf(stderr, "volperm: cannot write to standard output: %s%s%s\n", strerror(stdout_error),
	        ex == VP_EXIT_OK && *stdout_done ? "; " : "", ex == VP_EXIT_OK ? stdout_done : "");
	stdout_error = 0;
	return ex == VP_EXIT_OK ? VP_EXIT_OUTPUT : ex;
}

/* ---- shared steps ---- */

static char *jdir_default;        /* vp_jdir_default(), computed once */
static char jdir_tried[PATH_MAX]; /* the directory open_jdir() failed on */

static const char *journal_dir_path(void)
{
	const char *env = getenv("VOLPERM_JOURNAL_DIR");
	if (O.journal_dir)
		return O.journal_dir;
	if (env && *env)
		return env;
	/* Not root, or root of a user namespace: the user's state dir. */
	if (!jdir_default && vp_jdir_default(&jdir_default) < 0)
		return VP_JOURNAL_DIR_DEFAULT;
	return jdir_default;
}

static int open_jdir(const char *path_raw, bool create, int *fd)
{
	int r = vp_jdir_open_ex(path_raw, create, fd, jdir_tried, sizeof(jdir_tried));
	struct qpath q;
	/* mkdir -p: a parent may be what failed; name that one */
	const char *path = qp(&q, r < 0 && jdir_tried[0] ? jdir_tried : path_raw);

	switch (r) {
	case 0:
		return 0;
	case -ENOENT:
		return -ENOENT; /* callers decide whether a missing dir matters */
	case -ELOOP:
		fprintf(stderr, "volperm: journal directory %s is a symbolic link; refusing it (give the real directory)\n", path);
		break;
	case -ENOTDIR:
		fprintf(stderr, "volperm: journal directory %s is not a directory\n", path);
		break;
	case -EPERM:
		fprintf(stderr, "volperm: journal directory %s is not owned by root or by you; refusing it (someone else could plant or edit journals there)\n", path);
		break;
	case -EEXIST:
		fprintf(stderr, "volperm: journal directory %s is writable by group or others; refusing it (chmod go-w it, or use another --journal-dir)\n", path);
		break;
	default:
		fprintf(stderr, "volperm: cannot open journal directory %s: %s\n", path, strerror(-r));
	}
	return r;
}


/* PATH as the root of a run: the rules (system paths) are volume.c's; this
 * says what went wrong. */
static int open_root(const char *arg, struct vp_root *rt, bool allow_system)
{
	struct qpath q1, q2;
	int r = vp_root_open(arg, allow_system, rt);

	if (r == -EPERM && rt->path) {
		fprintf(stderr, "volperm: %s%s%s is a system path; refusing to change it (use --allow-system-path if you really mean it)\n",
		        qp(&q1, arg), strcmp(arg, rt->path) ? " resolves to " : "",
		        strcmp(arg, rt->path) ? qp(&q2, rt->path) : "");
		return -1;
	}
	if (r < 0) {
		fprintf(stderr, "volperm: %s: %s\n", qp(&q1, rt->path ? rt->path : arg), strerror(-r));
		return -1;
	}
	return 0;
}

/* Newest journal for the root that still describes changes on the tree. */
enum pick { PICK_UNDONE, PICK_HOT, PICK_ANY };

/* The newest journal for the root: not yet rolled back, hot, or any. */
static int find_journal(int jdir, const struct vp_root *rt, enum pick pick, char name[VP_JNAME_MAX])
{
	struct vp_jinfo *v = NULL;
	size_t n = 0;
	int r = vp_jdir_list(jdir, false, rt->st.st_dev, rt->st.st_ino, &v, &n);

	if (r < 0)
		return r;
	r = 0;
	for (size_t i = n; i-- > 0;) {
		bool hot_only = pick == PICK_HOT;
		if (v[i].unreadable && !hot_only) {
			memcpy(name, v[i].name, VP_JNAME_MAX);
			r = 1;
			break;
		}
		if (pick == PICK_ANY || (hot_only ? v[i].hot : v[i].state != VP_JSTATE_ROLLED_BACK)) {
			memcpy(name, v[i].name, VP_JNAME_MAX);
			r = 1;
			break;
		}
	}
	vp_jdir_list_free(v, n);
	return r;
}

/* The directory k levels above path ("/" at the top), for messages. */
static void up_path(const char *path, size_t k, char *buf, size_t size)
{
	snprintf(buf, size, "%s", path);
	while (k-- > 0) {
		char *slash = strrchr(buf, '/');
		if (!slash)
			break;
		if (slash == buf)
			slash[1] = 0;
		else
			*slash = 0;
	}
}

/* Invariant 4: every command on a root sees a hot journal. Returns 0, or
 * VP_EXIT_HOT after saying why. hot_name gets the hot journal, if any. */
static int check_hot(int jdir, const char *jdir_path, const struct vp_root *rt, bool allow_hot,
                     char hot_name[VP_JNAME_MAX])
{
	struct vp_ancestry anc = { 0 };
	struct vp_jinfo *v = NULL;
	struct qpath q1, q2, q3;
	size_t n = 0;
	int ex = 0, up = -1;

	hot_name[0] = 0;
	/* Every journal of the directory, not only this root's: one of a tree
	 * inside this one, or containing it, matters as much (volume.c). */
	if (jdir < 0 || vp_jdir_list(jdir, true, 0, 0, &v, &n) < 0)
		return 0;
	if (!S_ISDIR(rt->st.st_mode)) {
		char dir[PATH_MAX];
		up_path(rt->path, 1, dir, sizeof(dir));
		up = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	if (vp_ancestry_get(up >= 0 ? up : rt->fd, &anc) < 0)
		anc = (struct vp_ancestry){ 0 };
	if (up >= 0)
		close(up);
	for (size_t i = 0; i < n && !ex; i++) {
		bool same = v[i].dev == (uint64_t)rt->st.st_dev && v[i].ino == (uint64_t)rt->st.st_ino;
		bool running = v[i].live &&
		               (v[i].state == VP_JSTATE_ACTIVE || v[i].state == VP_JSTATE_ROLLING_BACK);
		if (same && v[i].unreadable)
			fprintf(stderr, "volperm: warning: journal %s for %s cannot be read (corrupt?); it is ignored, see 'volperm journal show'\n",
			        qjp(&q1, jdir_path, v[i].name), qp(&q2, rt->path));
		if (!running && !v[i].hot)
			continue;
		/* Only these few are looked at more closely. */
		int ov = same ? 1 : vp_tree_overlap(rt->st.st_dev, rt->st.st_ino, &anc, &v[i]);
		if (!ov)
			continue;
		const char *other = ov == 1 ? rt->path : v[i].root;
		if (running) {
			fprintf(stderr, "volperm: another volperm is changing %s right now (journal %s)%s%s; try again when it has finished\n",
			        qp(&q1, other), qjp(&q2, jdir_path, v[i].name),
			        ov == 1 ? "" : ov == 2 ? ", which contains " : ", which is inside ",
			        ov == 1 ? "" : qp(&q3, rt->path));
			ex = VP_EXIT_HOT;
		} else if (ov == 1) {
			memcpy(hot_name, v[i].name, VP_JNAME_MAX);
			if (!allow_hot) {
				fprintf(stderr, "volperm: an interrupted apply left %s half changed (journal %s); run 'volperm recover %s' first (or 'apply --recover')\n",
				        qp(&q1, rt->path), qjp(&q2, jdir_path, v[i].name), q1.s);
				ex = VP_EXIT_HOT;
			}
		} else {
			/* apply --recover rolls back this root's journal only:
			 * the other one is recovered on its own root. */
			fprintf(stderr, "volperm: an interrupted apply left %s half changed (journal %s), and it %s %s; run 'volperm recover %s' first\n",
			        qp(&q1, other), qjp(&q2, jdir_path, v[i].name),
			        ov == 2 ? "contains" : "is inside", qp(&q3, rt->path), q1.s);
			ex = VP_EXIT_HOT;
		}
	}
	vp_ancestry_free(&anc);
	vp_jdir_list_free(v, n);
	return ex;
}

#define JOBS_MAX 64
#define JOBS_DEFAULT_MAX 8 /* more threads than this rarely help one volume */

/* --jobs N, else VOLPERM_JOBS, else the CPUs we may run on (at most 8). */
static int resolve_jobs(struct opts *o)
{
	const char *text = o->jobs_text, *from = "--jobs";
	cpu_set_t set;

	if (!text && (text = getenv("VOLPERM_JOBS")) && *text)
		from = "VOLPERM_JOBS";
	else if (!o->jobs_text)
		text = NULL;
	if (text) {
		char *end;
		errno = 0;
		unsigned long n = strtoul(text, &end, 10);
		if (errno || end == text || *end || text[0] == '-' || n < 1 || n > JOBS_MAX) {
			usage_error("invalid %s '%s': give a number of threads from 1 to %d", from, text,
			            JOBS_MAX);
			return -EINVAL;
		}
		o->jobs = (unsigned)n;
		return 0;
	}
	o->jobs = 1;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 1)
		o->jobs = CPU_COUNT(&set) < JOBS_DEFAULT_MAX ? (unsigned)CPU_COUNT(&set)
		                                             : JOBS_DEFAULT_MAX;
	return 0;
}

static size_t batch_size(void)
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

static struct vp_output make_output(const char *command)
{
	struct vp_output o = { .out = stdout, .err = stderr, .json = O.json, .list = O.list,
		               .quiet = O.quiet, .command = command,
		               .userns = vp_userns_empty(&O.userns) ? NULL : &O.userns,
		               .progress_interval = O.progress_interval > 0 ? O.progress_interval : 10 };
	if (O.progress && !strcmp(O.progress, "always"))
		o.progress = VP_PROGRESS_ALWAYS;
	else if (O.progress && !strcmp(O.progress, "never"))
		o.progress = VP_PROGRESS_NEVER;
	return o;
}

/* The ETA's denominator: the filesystem's used inodes bound the entries. */
static uint64_t used_inodes(int fd)
{
	struct statfs sfs;
	if (fstatfs(fd, &sfs) < 0 || sfs.f_files == 0 || sfs.f_ffree > sfs.f_files)
		return 0;
	return (uint64_t)(sfs.f_files - sfs.f_ffree);
}


static char *journal_path(const char *dir, const char *name)
{
	char *p = NULL;
	if (name && *name && asprintf(&p, "%s/%s", dir, name) < 0)
		p = NULL;
	return p;
}

/* Roll back one journal under the volume lock. */
static int do_rollback(int jdir, const char *jdir_path, const char *name, const struct vp_root *rt,
                       const char *command, bool force)
{
	struct qpath qs2; /* for the closing lines */
	struct vp_output out = make_output(command);
	struct vp_jreader *r = NULL;
	struct vp_jwriter *w = NULL;

	out.restore_summary = true;
	struct vp_stats st = { 0 };
	char *jp_raw = journal_path(jdir_path, name);
	struct qpath q, q1;
	const char *jp = qp(&q, jp_raw);
	int e, ex;

	/* Validate first (the reader says where a journal is corrupt), then
	 * take the journal's lock through the writer. */
	e = vp_jr_open_at(jdir, name, &r);
	if (e == 0) {
		e = vp_jw_open(jdir, name, 1, &w);
		if (e == -EWOULDBLOCK) {
			fprintf(stderr, "volperm: journal %s is in use by another volperm\n", jp);
			ex = VP_EXIT_HOT;
			goto out;
		}
	}
	if (e == -EBADMSG) {
		fprintf(stderr, "volperm: journal %s is corrupt (%s); refusing to use it, nothing was changed\n",
		        jp, r ? vp_jr_error(r) : "bad header or checksum");
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (e < 0) {
		fprintf(stderr, "volperm: cannot read journal %s: %s\n", jp,
		        e == -EPROTO ? "written by an incompatible volperm version" : strerror(-e));
		ex = VP_EXIT_USAGE;
		goto out;
	}
	/* Invariant 3, said before anything is printed (vp_rollback_run
	 * checks it again: no caller can skip it). */
	char why[512];
	if (vp_journal_belongs(r, rt->fd, rt->path, why, sizeof(why)) < 0) {
		fprintf(stderr, "volperm: journal %s %s\n", jp, why);
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (vp_jr_state(r) == VP_JSTATE_ROLLED_BACK && !force) {
		fprintf(stderr, "volperm: journal %s was already rolled back (use --force to run it again)\n", jp);
		ex = VP_EXIT_USAGE;
		goto out;
	}
	vp_output_start(&out, rt->path, NULL);
	if (!O.json && !O.quiet)
		fprintf(stdout, "journal:   %s (%s, %llu entries)\n", jp, vp_jstate_name(vp_jr_state(r)),
		        (unsigned long long)vp_jr_entries(r));
	out.expected = vp_jr_entries(r);
	char newest[VP_JNAME_MAX];
	struct vp_rollback rb = {
		.root_fd = rt->fd, .root = rt->path, .force = force,
		.newest = find_journal(jdir, rt, PICK_ANY, newest) > 0 && strcmp(newest, name) == 0,
		.rep = { vp_output_event, vp_output_progress, &out }, .cancel = &cancel,
	};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ex = vp_rollback_run(&rb, r, w, &st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	st.seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (rb.interrupted) {
		size_t l = strlen(rb.why);
		if (ex == VP_EXIT_INTERRUPTED)
			snprintf(rb.why + l, sizeof(rb.why) - l, "; nothing was changed (journal %s)",
			         jp);
		else
			snprintf(rb.why + l, sizeof(rb.why) - l, " (%s): run volperm recover %s",
			         jp, qp(&qs2, rt->path));
	}
	vp_output_summary(&out, rt->path, NULL, &st, NULL, ex, rb.why);
	if (ex == VP_EXIT_OK)
		snprintf(stdout_done, sizeof(stdout_done), "the %s itself finished: %llu entries restored (journal %s)",
		         command, (unsigned long long)st.restored, jp);
	note_output(&out);
	if (st.conflicts && !force && !O.quiet)
		fprintf(stderr, "volperm: to restore those entries anyway: volperm rollback --force --journal %s %s\n",
		        jp, qp(&q1, rt->path));
out:
	vp_jr_close(r);
	vp_jw_close(w);
	free(jp_raw);
	return ex;
}

/* Keep every other volperm off this tree, off trees inside it and off
 * trees that contain it (volume.c). */
static int lock_volume(int jdir, const struct vp_root *rt, struct vp_tree_lock *lk)
{
	int parent = -1, r;

	if (!S_ISDIR(rt->st.st_mode)) {
		char dir[PATH_MAX];
		up_path(rt->path, 1, dir, sizeof(dir));
		parent = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	r = vp_tree_lock(rt->fd, parent, jdir, rt->st.st_dev, rt->st.st_ino, lk);
	if (parent >= 0)
		close(parent);
	if (r == -EWOULDBLOCK) {
		struct qpath q, q2;
		char above[PATH_MAX];
		if (lk->busy_level == 0) {
			fprintf(stderr, "volperm: another volperm is working on %s or on a tree inside it right now; try again when it has finished\n",
			        qp(&q, rt->path));
		} else {
			up_path(rt->path, lk->busy_level, above, sizeof(above));
			fprintf(stderr, "volperm: another volperm is working on %s, which contains %s, right now; try again when it has finished\n",
			        qp(&q, above), qp(&q2, rt->path));
		}
		return VP_EXIT_HOT;
	}
	if (r < 0) {
		fprintf(stderr, "volperm: cannot take the volume lock: %s\n", strerror(-r));
		return VP_EXIT_USAGE;
	}
	return 0;
}

/* ---- commands ---- */

static int cmd_run(enum vp_cmd cmd, const char *command, const char *arg)
{
	struct vp_tree_lock lock = VP_TREE_LOCK_INIT;
	struct qpath qs1; /* for the closing lines */
	struct vp_output out = make_output(command);
	const char *jdir_path = journal_dir_path();
	struct vp_root rt = VP_ROOT_INIT;
	struct vp_stats st;
	char hot[VP_JNAME_MAX], *desc = NULL, *jp = NULL;
	int jdir = -1, ex, r;
	bool journaled = cmd == VP_CMD_APPLY && !O.no_journal;

	if (vp_policy_is_empty(&O.policy)) {
		usage_error("nothing to do: give --owner, --map, --map-gid, --fsgroup, --chmod, --root-mode, --grant or --revoke");
		return VP_EXIT_USAGE;
	}
	if (O.no_journal && O.recover) {
		usage_error("--recover needs the journal: it cannot go with --no-journal");
		return VP_EXIT_USAGE;
	}
	O.policy.cross_mounts = O.cross_mounts;
	O.policy.include_devices = O.include_devices;
	O.policy.allow_external_links = O.allow_external_links;
	if (open_root(arg, &rt, O.allow_system_path) < 0) {
		ex = VP_EXIT_USAGE;
		goto out;
	}
	r = open_jdir(jdir_path, journaled, &jdir);
	/* A directory that cannot be created (read-only root filesystem of an
	 * init container) matters only once a change is due: the engine says
	 * so then. An unsafe one is refused now. */
	int jdir_error = 0;
	if (r == -ENOENT || r == -EROFS || r == -EACCES || r == -ENOSPC)
		jdir_error = journaled ? r : 0;
	else if (r < 0) {
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (jdir >= 0 && (vp_jdir_inside(jdir, rt.st.st_dev, rt.st.st_ino) == 1 ||
	                  vp_jdir_inside_fs(jdir, rt.fd) == 1)) {
		struct qpath q1, q2;
		fprintf(stderr, "volperm: the journal directory %s is inside %s; put it outside the volume (apps may refuse a volume with extra files, and a journal must not change with the tree it describes)\n",
		        qp(&q1, jdir_path), qp(&q2, rt.path));
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (cmd == VP_CMD_APPLY) {
		ex = lock_volume(journaled ? jdir : -1, &rt, &lock);
		if (ex)
			goto out;
	}
	ex = check_hot(jdir, jdir_path, &rt, cmd == VP_CMD_APPLY && O.recover, hot);
	if (ex)
		goto out;
	if (hot[0]) {
		ex = do_rollback(jdir, jdir_path, hot, &rt, "recover", false);
		if (ex != VP_EXIT_OK)
			goto out;
		/* The rollback changed the root: decide on what it is now. */
		if (fstat(rt.fd, &rt.st) < 0) {
			struct qpath q;
			fprintf(stderr, "volperm: %s: %s\n", qp(&q, rt.path), strerror(errno));
			ex = VP_EXIT_USAGE;
			goto out;
		}
	}
	if ((vp_userns_empty(&O.userns) ? vp_policy_describe(&O.policy, &desc)
	                                : vp_userns_describe(&O.userns, &O.policy, &desc)) < 0)
		desc = NULL;
	struct vp_run run = {
		.cmd = cmd, .root = rt.path, .root_fd = rt.fd, .root_st = rt.st,
		.policy = &O.policy, .jdir_fd = journaled ? jdir : -1, .keep_going = O.keep_going,
		.jdir_error = jdir_error, .jdir_path = jdir_error && jdir_tried[0] ? jdir_tried : jdir_path,
		.batch_max = batch_size(), .rep = { vp_output_event, vp_output_progress, &out },
		.jobs = O.jobs, .cancel = &cancel,
	};
	run.has_jdir = jdir >= 0 && fstat(jdir, &run.jdir_st) == 0;
	out.expected = used_inodes(rt.fd);
	vp_output_start(&out, rt.path, desc);
	ex = vp_engine_run(&run, &st);
	jp = journal_path(jdir_path, run.journal);
	out.journal_state = run.journal_state;
	vp_output_summary(&out, rt.path, desc, &st, jp, ex, run.why);
	if (ex == VP_EXIT_OK)
		snprintf(stdout_done, sizeof(stdout_done), "the %s itself finished: %llu entries %s%s%s%s%s%s",
		         command, (unsigned long long)st.changes,
		         cmd == VP_CMD_APPLY ? "changed" : "to change", jp ? ", journal " : "",
		         jp ? qp(&qs1, jp) : "", jp && run.journal_state ? " (" : "",
		         jp && run.journal_state ? run.journal_state : "",
		         jp && run.journal_state ? ")" : "");
	note_output(&out);
out:
	free(desc);
	free(jp);
	vp_tree_unlock(&lock);
	if (jdir >= 0)
		close(jdir);
	vp_root_close(&rt);
	return ex;
}

/* Split FILE into its directory (validated like any journal dir) and name. */
static int open_journal_file(const char *file, int *jdir, char **dir, char name[VP_JNAME_MAX])
{
	const char *slash = strrchr(file, '/');
	const char *base = slash ? slash + 1 : file;
	struct qpath q;
	int r;

	if (strlen(base) >= VP_JNAME_MAX || !*base) {
		fprintf(stderr, "volperm: %s: not a volperm journal file name\n", qp(&q, file));
		return VP_EXIT_USAGE;
	}
	*dir = slash ? (slash == file ? strdup("/") : strndup(file, (size_t)(slash - file))) : strdup(".");
	if (!*dir)
		return VP_EXIT_USAGE;
	r = open_jdir(*dir, false, jdir);
	if (r == -ENOENT)
		fprintf(stderr, "volperm: %s: no such directory\n", qp(&q, *dir));
	if (r < 0)
		return VP_EXIT_USAGE;
	memcpy(name, base, strlen(base) + 1);
	return 0;
}

static int cmd_rollback(const char *arg)
{
	struct vp_tree_lock lock = VP_TREE_LOCK_INIT;
	const char *jdir_path = journal_dir_path();
	struct vp_root rt = VP_ROOT_INIT;
	char name[VP_JNAME_MAX], *dir = NULL;
	struct qpath q1, q2;
	int jdir = -1, ex, r;

	if (O.journal) {
		ex = open_journal_file(O.journal, &jdir, &dir, name);
		if (ex)
			goto out;
		jdir_path = dir;
		if (!arg) {
			/* The root comes from the journal; the identity check
			 * in do_rollback still compares dev/ino. */
			struct vp_jreader *jr = NULL;
			r = vp_jr_open_at(jdir, name, &jr);
			if (r < 0) {
				fprintf(stderr, "volperm: %s: %s\n", qp(&q1, O.journal),
				        r == -EBADMSG ? "corrupt journal; refusing it" : strerror(-r));
				vp_jr_close(jr);
				ex = VP_EXIT_USAGE;
				goto out;
			}
			char *root = strdup(vp_jr_header(jr)->root);
			vp_jr_close(jr);
			/* a system path was allowed when it was applied */
			r = root ? open_root(root, &rt, true) : -1;
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
		r = open_jdir(jdir_path, false, &jdir);
		if (r == -ENOENT)
			fprintf(stderr, "volperm: no journal directory %s: nothing to roll back\n",
			        qp(&q1, jdir_path));
		if (r < 0) {
			ex = VP_EXIT_USAGE;
			goto out;
		}
	}
	if (rt.fd < 0 && open_root(arg, &rt, O.allow_system_path) < 0) {
		ex = VP_EXIT_USAGE;
		goto out;
	}
	ex = lock_volume(jdir, &rt, &lock);
	if (ex)
		goto out;
	if (!O.journal) {
		r = find_journal(jdir, &rt, PICK_UNDONE, name);
		if (r <= 0) {
			fprintf(stderr, "volperm: no journal to roll back for %s in %s\n",
			        qp(&q1, rt.path), qp(&q2, jdir_path));
			ex = VP_EXIT_USAGE;
			goto out;
		}
	}
	ex = do_rollback(jdir, jdir_path, name, &rt, "rollback", O.force);
out:
	vp_tree_unlock(&lock);
	if (jdir >= 0)
		close(jdir);
	free(dir);
	vp_root_close(&rt);
	return ex;
}

static int recover_forward(int jdir, const char *jdir_path, const char *name, const struct vp_root *rt)
{
	struct qpath qs1; /* for the closing lines */
	struct vp_output out = make_output("recover");
	struct vp_jwriter *w = NULL;
	struct vp_policy pol;
	struct vp_stats st;
	char *desc = NULL, *jp = journal_path(jdir_path, name);
	struct qpath q1, q2;
	int r, ex;

	r = vp_jw_open(jdir, name, batch_size(), &w);
	if (r < 0) {
		fprintf(stderr, "volperm: cannot open journal %s: %s\n", qp(&q1, jp),
		        r == -EBADMSG ? "it is corrupt" : strerror(-r));
		free(jp);
		return r == -EWOULDBLOCK ? VP_EXIT_HOT : VP_EXIT_USAGE;
	}
	/* (Whether it belongs to this root, the engine checks: invariant 3.) */
	const struct vp_jheader *h = vp_jw_header(w);
	if (vp_policy_from_text(h->policy, h->policy_len, &pol) < 0) {
		fprintf(stderr, "volperm: journal %s has a policy this volperm cannot read; refusing it (for %s)\n",
		        qp(&q1, jp), qp(&q2, rt->path));
		vp_jw_close(w);
		free(jp);
		return VP_EXIT_USAGE;
	}
	(void)vp_policy_describe(&pol, &desc);
	struct vp_run run = {
		.cmd = VP_CMD_APPLY, .root = rt->path, .root_fd = rt->fd, .root_st = rt->st,
		.policy = &pol, .jdir_fd = jdir, .keep_going = false, .batch_max = batch_size(),
		.rep = { vp_output_event, vp_output_progress, &out }, .resume = w, .jobs = O.jobs,
		.jdir_path = jdir_path, .cancel = &cancel,
	};
	snprintf(run.journal, sizeof(run.journal), "%s", name);
	vp_output_start(&out, rt->path, desc);
	ex = vp_engine_run(&run, &st);
	vp_output_summary(&out, rt->path, desc, &st, jp, ex, run.why);
	if (ex == VP_EXIT_OK)
		snprintf(stdout_done, sizeof(stdout_done), "recover itself finished: %llu entries changed, journal %s",
		         (unsigned long long)st.changes, qp(&qs1, jp));
	note_output(&out);
	vp_jw_close(w);
	vp_policy_free(&pol);
	free(desc);
	free(jp);
	return ex;
}

static int cmd_recover(const char *arg)
{
	struct vp_tree_lock lock = VP_TREE_LOCK_INIT;
	const char *jdir_path = journal_dir_path();
	struct vp_root rt = VP_ROOT_INIT;
	char name[VP_JNAME_MAX];
	struct qpath q1, q2;
	int jdir = -1, ex = 0, r;

	if (!arg) {
		usage_error("recover needs PATH");
		return VP_EXIT_USAGE;
	}
	if (open_root(arg, &rt, O.allow_system_path) < 0) {
		ex = VP_EXIT_USAGE;
		goto out;
	}
	r = open_jdir(jdir_path, false, &jdir);
	if (r == -ENOENT) {
		if (!O.quiet)
			printf("volperm: nothing to recover on %s (no journal directory %s)\n",
			       qp(&q1, rt.path), qp(&q2, jdir_path));
		goto out;
	}
	if (r < 0) {
		ex = VP_EXIT_USAGE;
		goto out;
	}
	ex = lock_volume(jdir, &rt, &lock);
	if (ex)
		goto out;
	/* Oldest first: there is normally at most one hot journal. */
	char last[VP_JNAME_MAX] = "";
	while (ex == 0 && (r = find_journal(jdir, &rt, PICK_HOT, name)) > 0) {
		enum vp_jstate state = VP_JSTATE_ACTIVE;
		bool live = false;
		if (strcmp(name, last) == 0) {
			fprintf(stderr, "volperm: journal %s is still hot after recovery\n",
			        qjp(&q1, jdir_path, name));
			ex = VP_EXIT_ROLLBACK_FAIL;
			break;
		}
		memcpy(last, name, sizeof(last));
		(void)vp_jr_peek(jdir, name, &state, &live, NULL);
		if (O.forward && state == VP_JSTATE_ACTIVE)
			ex = recover_forward(jdir, jdir_path, name, &rt);
		else
			ex = do_rollback(jdir, jdir_path, name, &rt, "recover", false);
	}
	if (r == 0 && ex == 0 && !O.quiet && !O.json)
		printf("volperm: nothing to recover on %s\n", qp(&q1, rt.path));
out:
	vp_tree_unlock(&lock);
	if (jdir >= 0)
		close(jdir);
	vp_root_close(&rt);
	return ex;
}

static int cmd_journal(const char *sub, const char *arg)
{
	const char *jdir_path = journal_dir_path();
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
	if (O.format && strcmp(sub, "export")) {
		usage_error("--format goes with journal export");
		return VP_EXIT_USAGE;
	}
	if (O.format && strcmp(O.format, "getfacl") && strcmp(O.format, "json")) {
		usage_error("unknown export format '%s': use getfacl or json", O.format);
		return VP_EXIT_USAGE;
	}
	if (!strcmp(sub, "list")) {
		struct vp_jinfo *v = NULL;
		size_t n = 0;
		e = open_jdir(jdir_path, false, &jdir);
		if (e == -ENOENT) {
			if (!O.json)
				printf("no journals (no directory %s)\n", qp(&q1, jdir_path));
			return VP_EXIT_OK;
		}
		if (e < 0)
			return VP_EXIT_USAGE;
		if (arg && open_root(arg, &rt, O.allow_system_path) < 0) {
			ex = VP_EXIT_USAGE;
			goto out;
		}
		if (vp_jdir_list(jdir, true, 0, 0, &v, &n) < 0) {
			ex = VP_EXIT_USAGE;
			goto out;
		}
		/* With PATH: its journals, and those of trees inside it or
		 * containing it (a hot one there blocks PATH too). */
		struct vp_ancestry anc = { 0 };
		if (arg && S_ISDIR(rt.st.st_mode) && vp_ancestry_get(rt.fd, &anc) < 0)
			anc = (struct vp_ancestry){ 0 };
		size_t shown = 0;
		for (size_t i = 0; i < n; i++) {
			struct vp_jreader *jr = NULL;
			if (arg && !vp_tree_overlap(rt.st.st_dev, rt.st.st_ino, &anc, &v[i]))
				continue;
			shown++;
			e = vp_jr_open_at(jdir, v[i].name, &jr);
			const char *state = e == -EBADMSG ? "corrupt" : e < 0 ? "unreadable"
			                    : v[i].live ? "running" : v[i].hot ? "hot" : vp_jstate_name(vp_jr_state(jr));
			if (O.json) {
				/* the same members, and _b64 twins, as --json's paths */
				char *jp = journal_path(jdir_path, v[i].name);
				fputs("{", stdout);
				vp_quote_json_member(stdout, "journal", jp ? jp : "", jp ? strlen(jp) : 0);
				printf(",\"state\":\"%s\",\"entries\":%llu,", state,
				       e == 0 ? (unsigned long long)vp_jr_entries(jr) : 0ull);
				{
					const char *jroot = e == 0 ? vp_jr_header(jr)->root : "";
					vp_quote_json_member(stdout, "root", jroot, strlen(jroot));
				}
				printf("}\n");
				free(jp);
			} else {
				printf("%s  %-12s %8llu entries  ", qjp(&q1, jdir_path, v[i].name), state,
				       e == 0 ? (unsigned long long)vp_jr_entries(jr) : 0ull);
				if (e == 0)
					vp_output_path(stdout, vp_jr_header(jr)->root, NULL, 0);
				putchar('\n');
			}
			vp_jr_close(jr);
		}
		if (!shown && !O.json)
			printf("no journals\n");
		vp_ancestry_free(&anc);
		vp_jdir_list_free(v, n);
		goto out;
	}
	/* show / export: FILE, or PATH meaning its newest journal. */
	if (!arg) {
		usage_error("journal %s needs a journal FILE or a volume PATH", sub);
		return VP_EXIT_USAGE;
	}
	if (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
		ex = open_journal_file(arg, &jdir, &dir, name);
		if (ex)
			goto out;
		jdir_path = dir;
	} else {
		if (open_root(arg, &rt, O.allow_system_path) < 0 || open_jdir(jdir_path, false, &jdir) < 0) {
			if (rt.fd >= 0 && jdir < 0)
				fprintf(stderr, "volperm: no journal directory %s\n", qp(&q1, jdir_path));
			ex = VP_EXIT_USAGE;
			goto out;
		}
		if (find_journal(jdir, &rt, PICK_ANY, name) <= 0) {
			fprintf(stderr, "volperm: no journal for %s in %s\n", qp(&q1, rt.path),
			        qp(&q2, jdir_path));
			ex = VP_EXIT_USAGE;
			goto out;
		}
	}
	e = vp_jr_open_at(jdir, name, &r);
	if (e < 0) {
		fprintf(stderr, "volperm: %s: %s%s\n", qjp(&q1, jdir_path, name),
		        e == -EBADMSG ? "corrupt journal: " : strerror(-e),
		        e == -EBADMSG && r ? vp_jr_error(r) : "");
		ex = VP_EXIT_USAGE;
		goto out;
	}
	char *jp = journal_path(jdir_path, name);
	if (!strcmp(sub, "show"))
		e = vp_export_show(stdout, jp, r);
	else if (!O.format || !strcmp(O.format, "getfacl"))
		e = vp_export_getfacl(stdout, r);
	else
		e = vp_export_json(stdout, r);
	free(jp);
	if (e < 0) {
		fprintf(stderr, "volperm: %s: %s\n", qjp(&q1, jdir_path, name), strerror(-e));
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

/* exec: apply to every PATH, then become --user and run CMD. Any exit other
 * than 0 from the fix keeps the app from starting, as with an init
 * container. */
static int cmd_exec(const char **paths, int npaths, char **cmd)
{
	struct vp_iddb db = { O.passwd_file, O.group_file };
	struct vp_exec_user u;
	struct vp_owner ow;
	char why[256];
	int r, ex;

	if (!O.user || vp_parse_owner_db(&db, O.user, &ow) < 0 || !ow.has_uid || !ow.has_gid) {
		usage_error("exec needs --user UID:GID (numeric, or names from --passwd/--group-file)");
		return VP_EXIT_USAGE;
	}
	if (ow.uid == 0 && !O.allow_root) {
		usage_error("exec refuses to run the command as root; use --allow-root if you mean it");
		return VP_EXIT_USAGE;
	}
	if (!vp_userns_empty(&O.userns)) {
		/* --user is the container's too: run CMD as its host ids. */
		uint32_t hu, hg;
		if (vp_userns_to_host(&O.userns, false, ow.uid, &hu) < 0 ||
		    vp_userns_to_host(&O.userns, true, ow.gid, &hg) < 0) {
			value_error("exec --user %u:%u is outside the user namespace map of %s, so in the container it would be nobody (65534)",
			            (unsigned)ow.uid, (unsigned)ow.gid, O.userns.spec ? O.userns.spec : "--uid-map");
			return VP_EXIT_USAGE;
		}
		ow.uid = hu;
		ow.gid = hg;
	}
	if (!cmd || !cmd[0]) {
		usage_error("exec needs a command after --");
		return VP_EXIT_USAGE;
	}
	if (npaths < 1) {
		usage_error("exec needs at least one PATH to fix before --");
		return VP_EXIT_USAGE;
	}
	/* Refuse before fixing anything if the switch to the user cannot work. */
	if ((ow.uid != geteuid() && !vp_cap_effective(CAP_SETUID)) || !vp_cap_effective(CAP_SETGID)) {
		fprintf(stderr, "volperm: exec needs the CAP_SETUID and CAP_SETGID capabilities to become %u:%u and this process lacks %s; nothing was changed\n",
		        (unsigned)ow.uid, (unsigned)ow.gid,
		        vp_cap_effective(CAP_SETGID) ? "CAP_SETUID" : "CAP_SETGID");
		return VP_EXIT_USAGE;
	}
	r = vp_exec_user_lookup(&db, ow.uid, ow.gid, &u);
	if (r < 0) {
		fprintf(stderr, "volperm: cannot read the passwd or group file: %s\n", strerror(-r));
		return VP_EXIT_USAGE;
	}
	if (!vp_policy_is_empty(&O.policy))
		for (int i = 0; i < npaths; i++) {
			ex = cmd_run(VP_CMD_APPLY, "apply", paths[i]);
			if (ex != VP_EXIT_OK)
				return ex;
		}
	/* The app gets our output streams as they are: a failure of ours is
	 * said now, and is no reason to keep the app from starting. */
	ex = finish_stdout(VP_EXIT_OK);
	(void)ex;
	fflush(NULL);
	/* A stop signal from now on is the app's to take (its default action
	 * once vp_exec_as restores the inherited dispositions and mask); one
	 * that came during the fix keeps the app from starting. */
	sigset_t stop, old;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	(void)sigprocmask(SIG_BLOCK, &stop, &old);
	if (vp_cancel_count(&cancel)) {
		(void)sigprocmask(SIG_SETMASK, &old, NULL);
		fprintf(stderr, "volperm: interrupted by %s before starting %s; the volumes are fixed, the command was not run\n",
		        vp_cancel_name(&cancel), cmd[0]);
		return VP_EXIT_INTERRUPTED;
	}
	r = vp_exec_as(&u, cmd, &inherited, why, sizeof(why));
	fprintf(stderr, "volperm: %s\n", why);
	return r == -ENOENT || r == -EACCES ? 127 : VP_EXIT_USAGE;
}

/* ---- idmap (docs/volperm.1, IDMAPPED MOUNTS) ---- */

/* SRC or DST of idmap: a directory named by no symlink, and no system path
 * (an idmapped mount on /usr would shadow it). Pinned as an O_PATH fd; the
 * resolved path (of the fd, so of what was checked) goes in *resolved. */
static int open_idmap_dir(const char *arg, const char *role, int *fd, char **resolved)
{
	struct qpath q1, q2;
	struct stat st;
	char self[64];

	*fd = open(arg, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0) {
		int e = errno;
		if (lstat(arg, &st) == 0 && S_ISLNK(st.st_mode))
			fprintf(stderr, "volperm: %s %s is a symbolic link; refusing it (give the real directory)\n", role, qp(&q1, arg));
		else if (e == ENOTDIR && lstat(arg, &st) == 0)
			fprintf(stderr, "volperm: %s %s is not a directory\n", role, qp(&q1, arg));
		else
			fprintf(stderr, "volperm: %s %s: %s\n", role, qp(&q1, arg), strerror(e));
		return -1;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", *fd);
	*resolved = realpath(self, NULL);
	if (!*resolved) {
		fprintf(stderr, "volperm: %s %s: %s\n", role, qp(&q1, arg), strerror(errno));
		return -1;
	}
	if (!O.allow_system_path && vp_is_system_path(*resolved)) {
		fprintf(stderr, "volperm: %s %s%s%s is a system path; refusing it (use --allow-system-path if you really mean it)\n",
		        role, qp(&q1, arg), strcmp(arg, *resolved) ? " resolves to " : "",
		        strcmp(arg, *resolved) ? qp(&q2, *resolved) : "");
		return -1;
	}
	return 0;
}

/* A word of a systemd unit line, quoted for it: specifiers (%) and, on Exec
 * lines, variables ($) doubled; control characters have no safe form. */
static int unit_word(FILE *f, const char *w, bool exec)
{
	for (const char *p = w; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -1;
	fputc('"', f);
	for (const char *p = w; *p; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', f);
		else if (*p == '%' || (exec && *p == '$'))
			fputc(*p, f);
		fputc(*p, f);
	}
	fputc('"', f);
	return 0;
}

static int print_unit(const char *src, const char *dst)
{
	char *self = realpath("/proc/self/exe", NULL);
	struct qpath q, q2;
	int bad = 0;

	printf("# volperm idmap: %s appears on %s with its owners mapped (nothing on disk changes)\n[Unit]\nDescription=volperm idmapped mount on ",
	       src, dst);
	bad |= unit_word(stdout, dst, false);
	printf("\nRequiresMountsFor=");
	bad |= unit_word(stdout, src, false);
	putchar(' ');
	bad |= unit_word(stdout, dst, false);
	printf("\nBefore=docker.service podman.service containerd.service\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=");
	bad |= unit_word(stdout, self ? self : "volperm", true);
	printf(" idmap");
	for (int k = 0; k < 2; k++) {
		const struct vp_idmap *m = k ? O.policy.gid_maps : O.policy.uid_maps;
		size_t n = k ? O.policy.n_gid_maps : O.policy.n_uid_maps;
		for (size_t i = 0; i < n; i++)
			printf(" %s %u:%u", k ? "--map-gid" : "--map", m[i].from, m[i].to);
	}
	printf("%s%s%s ", O.read_only ? " --read-only" : "", O.cross_mounts ? " --cross-mounts" : "",
	       O.allow_system_path ? " --allow-system-path" : "");
	bad |= unit_word(stdout, src, true);
	putchar(' ');
	bad |= unit_word(stdout, dst, true);
	printf("\nExecStop=");
	bad |= unit_word(stdout, self ? self : "volperm", true);
	printf(" idmap --undo ");
	bad |= unit_word(stdout, dst, true);
	printf("\n\n[Install]\nWantedBy=multi-user.target\n");
	free(self);
	if (bad) {
		fprintf(stderr, "volperm: %s or %s holds a control character, which a systemd unit cannot name; rename it first\n",
		        qp(&q, src), qp(&q2, dst));
		return VP_EXIT_USAGE;
	}
	return VP_EXIT_OK;
}

/* --map/--map-gid as the kernel's map text, refused unless one-to-one. */
static int idmap_text(const char *opt, const struct vp_idmap *m, size_t n, char *buf, size_t len)
{
	uint32_t a, b;

	if (vp_idmap_check(m, n, &a, &b) < 0) {
		if (a == b)
			value_error("%s gives %u two new ids; an idmapped mount maps each id to one id", opt, a);
		else
			value_error("%s maps both %u and %u to the same id; an idmapped mount must be one-to-one", opt, a, b);
		return -1;
	}
	if (vp_idmap_format(m, n, buf, len) < 0) {
		value_error("too many %s pairs: the kernel takes at most %d lines of mapping", opt, 340);
		return -1;
	}
	return 0;
}

static void idmap_census_print(const char *kind, const struct vp_idcount *v, size_t nv,
                               const struct vp_idmap *m, size_t n, uint64_t *same, uint64_t *lost)
{
	for (size_t i = 0; i < nv; i++) {
		uint32_t shown;
		bool ok = vp_idmap_show(m, n, v[i].id, &shown);
		printf("%s %u -> %u: %llu entr%s%s\n", kind, v[i].id, shown, (unsigned long long)v[i].n,
		       v[i].n == 1 ? "y" : "ies",
		       !ok ? " (unmapped: the id is another's NEW; cannot be changed through DST)"
		       : shown == v[i].id ? " (as on disk)" : "");
		if (!ok)
			*lost += v[i].n;
		else if (shown == v[i].id)
			*same += v[i].n;
	}
}

static int idmap_undo(const char *arg)
{
	struct qpath q;
	int fd, r, ex = VP_EXIT_USAGE;

	fd = open(arg, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		struct stat st;
		int e = errno;
		if (lstat(arg, &st) == 0 && S_ISLNK(st.st_mode))
			fprintf(stderr, "volperm: DST %s is a symbolic link; refusing it (give the real mount point)\n", qp(&q, arg));
		else
			fprintf(stderr, "volperm: DST %s: %s\n", qp(&q, arg), strerror(e));
		return ex;
	}
	r = vp_idmap_is_idmapped_root(fd);
	if (r == -ENOTCONN)
		fprintf(stderr, "volperm: %s is not a mount point; nothing to undo\n", qp(&q, arg));
	else if (r == -EMEDIUMTYPE)
		fprintf(stderr, "volperm: %s is a mount but not an idmapped one; refusing to unmount it (volperm only undoes idmapped mounts)\n", qp(&q, arg));
	else if (r < 0)
		fprintf(stderr, "volperm: cannot tell whether %s is an idmapped mount: %s; leaving it\n", qp(&q, arg), strerror(-r));
	else if ((r = vp_idmap_detach(fd)) < 0)
		fprintf(stderr, "volperm: cannot unmount %s: %s\n", qp(&q, arg), strerror(-r));
	else
		ex = VP_EXIT_OK;
	close(fd);
	return ex;
}

static int cmd_idmap(const char **args, int nargs)
{
	struct vp_policy rest = O.policy;
	char uid_map[VP_IDMAP_TEXT_MAX], gid_map[VP_IDMAP_TEXT_MAX];
	char *src = NULL, *dst = NULL;
	int sfd = -1, dfd = -1, ns = -1, tree = -1, ex = VP_EXIT_USAGE;
	struct qpath q1, q2;

	rest.n_uid_maps = rest.n_gid_maps = 0;
	if (!vp_policy_is_empty(&rest) || rest.n_excludes || rest.on_root_mismatch || O.fsgroup_policy ||
	    O.journal_dir || O.journal || O.no_journal || O.keep_going || O.recover || O.force ||
	    O.forward || O.format || O.user || O.allow_root || O.json || O.list || O.jobs_text ||
	    O.include_devices || O.allow_external_links || O.progress ||
	    (O.idmap_undo && (O.idmap_dry_run || O.print_unit || O.read_only || O.cross_mounts ||
	                      O.policy.n_uid_maps || O.policy.n_gid_maps)) ||
	    (O.idmap_dry_run && O.print_unit)) {
		usage_error("an option was given that 'idmap%s' does not take", O.idmap_undo ? " --undo" : "");
		return VP_EXIT_USAGE;
	}
	if (nargs != (O.idmap_undo ? 1 : 2)) {
		usage_error(O.idmap_undo ? "idmap --undo takes one DST" : "idmap takes SRC and DST");
		return VP_EXIT_USAGE;
	}
	if (O.idmap_undo)
		return idmap_undo(args[0]);
	if (idmap_text("--map", O.policy.uid_maps, O.policy.n_uid_maps, uid_map, sizeof(uid_map)) < 0 ||
	    idmap_text("--map-gid", O.policy.gid_maps, O.policy.n_gid_maps, gid_map, sizeof(gid_map)) < 0)
		return VP_EXIT_USAGE;
	if (open_idmap_dir(args[0], "SRC", &sfd, &src) < 0 || open_idmap_dir(args[1], "DST", &dfd, &dst) < 0)
		goto out;
	if (O.print_unit) {
		ex = print_unit(src, dst);
		goto out;
	}
	if (!O.idmap_dry_run) {
		/* DST must be empty: an idmapped mount over files would hide them. */
		int d = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *dir = d < 0 ? NULL : fdopendir(d);
		struct dirent *de;
		bool empty = true;
		if (!dir) {
			fprintf(stderr, "volperm: DST %s: %s\n", qp(&q1, dst), strerror(errno));
			if (d >= 0)
				close(d);
			goto out;
		}
		while ((de = readdir(dir)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				empty = false;
		closedir(dir);
		if (!empty) {
			fprintf(stderr, "volperm: DST %s is not empty; refusing to mount over its files (give an empty directory)\n", qp(&q1, dst));
			goto out;
		}
	}
	ns = vp_idmap_userns(uid_map, gid_map);
	if (ns < 0) {
		fprintf(stderr, "volperm: cannot make the user namespace for the mapping: %s\n", strerror(-ns));
		goto out;
	}
	tree = vp_idmap_clone(sfd, O.cross_mounts, ns, O.read_only);
	bool supported = tree >= 0;
	if (tree == -EINVAL)
		fprintf(stderr, "volperm: the filesystem of %s%s does not support idmapped mounts (FUSE, overlayfs and NFS do not); nothing was mounted (use volperm apply to chown instead)\n",
		        qp(&q1, src), O.cross_mounts ? ", or of a mount below it," : "");
	else if (tree < 0)
		fprintf(stderr, "volperm: cannot make an idmapped clone of %s: %s; nothing was mounted\n", qp(&q1, src), strerror(-tree));
	if (O.idmap_dry_run) {
		/* The probe's clone was never attached: closing it drops it. */
		struct vp_idcensus c;
		uint64_t same = 0, lost = 0, gsame = 0, glost = 0;
		int r = vp_idmap_census(sfd, O.cross_mounts, &c);
		if (r < 0) {
			fprintf(stderr, "volperm: cannot walk %s: %s\n", qp(&q1, src), strerror(-r));
			goto out;
		}
		printf("idmap plan: %s on %s\n", qp(&q1, src), qp(&q2, dst));
		idmap_census_print("uid", c.uids, c.n_uids, O.policy.uid_maps, O.policy.n_uid_maps, &same, &lost);
		idmap_census_print("gid", c.gids, c.n_gids, O.policy.gid_maps, O.policy.n_gid_maps, &gsame, &glost);
		printf("entries: %llu; uids left as on disk: %llu, gids: %llu; unmapped (show as 65534): %llu uids, %llu gids\n",
		       (unsigned long long)c.entries, (unsigned long long)same, (unsigned long long)gsame,
		       (unsigned long long)lost, (unsigned long long)glost);
		if (c.errors)
			printf("unreadable: %llu entries (first: %s)\n", (unsigned long long)c.errors, strerror(c.first_error));
		printf("idmapped mount: %s; cost: one mount, against %llu entries for chown\n",
		       supported ? "supported (probed on a detached clone)" : "NOT supported by this filesystem",
		       (unsigned long long)(c.entries - same));
		ex = supported && !c.errors ? VP_EXIT_OK : VP_EXIT_USAGE;
		vp_idcensus_free(&c);
		goto out;
	}
	if (!supported)
		goto out;
	int r = vp_idmap_attach(tree, dfd);
	if (r < 0) {
		fprintf(stderr, "volperm: cannot mount the idmapped clone of %s on %s: %s; nothing was mounted\n",
		        qp(&q1, src), qp(&q2, dst), strerror(-r));
		goto out;
	}
	ex = VP_EXIT_OK;
out:
	if (tree >= 0)
		close(tree);
	if (ns >= 0)
		close(ns);
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	free(src);
	free(dst);
	return ex;
}

static const char *const commands[] = { "plan", "check", "apply", "rollback", "recover", "journal", "exec", "idmap", NULL };

static int cli_main(int argc, char **argv)
{
	const char *command = "plan";
	poptContext ctx;
	int rc, ex;

	vp_policy_init(&O.policy);
	char **exec_cmd = NULL;
	if (argc > 1 && strcmp(argv[1], "exec") == 0)
		/* Everything after the first "--" is the command, untouched by popt. */
		for (int i = 2; i < argc; i++)
			if (strcmp(argv[i], "--") == 0) {
				argv[i] = NULL;
				exec_cmd = argv + i + 1;
				argc = i;
				break;
			}
	if (argc > 1)
		for (const char *const *c = commands; *c; c++)
			if (strcmp(argv[1], *c) == 0) {
				command = *c;
				argv[1] = argv[0];
				argv++;
				argc--;
				break;
			}
	if (strcmp(command, "journal"))
		setup_signals();
	ctx = poptGetContext("volperm", argc, (const char **)argv, main_table, 0);
	poptSetOtherOptionHelp(ctx, usage_text);
	while ((rc = poptGetNextOpt(ctx)) > 0) {
		if (rc == OPT_VERSION) {
			printf("volperm " VOLPERM_VERSION "\n");
			poptFreeContext(ctx);
			vp_policy_free(&O.policy);
			return VP_EXIT_OK;
		}
		/* poptGetOptArg() hands over a malloc()ed copy, once. */
		char *optarg_ = poptGetOptArg(ctx);
		struct rawopt *nr = realloc(O.raw, (O.n_raw + 1) * sizeof(*nr));
		if (!nr) {
			free(optarg_);
			O.bad = 1;
			continue;
		}
		O.raw = nr;
		O.raw[O.n_raw++] = (struct rawopt){ rc, optarg_ };
	}
	struct vp_iddb db = { O.passwd_file, O.group_file };
	for (size_t i = 0; i < O.n_raw; i++)
		if (!O.bad && parse_option(&O, &db, O.raw[i].val, O.raw[i].arg ? O.raw[i].arg : "") < 0)
			O.bad = 1;
	if (!O.bad && userns_options() < 0)
		O.bad = 1;
	if (!O.bad && O.fsgroup_policy) {
		if (!strcmp(O.fsgroup_policy, "on-root-mismatch"))
			O.policy.on_root_mismatch = true;
		else if (strcmp(O.fsgroup_policy, "always")) {
			usage_error("invalid --fsgroup-policy '%s': use always or on-root-mismatch", O.fsgroup_policy);
			O.bad = 1;
		}
	}
	if (!O.bad && (O.fsgroup_policy || (O.read_only && strcmp(command, "idmap"))) && !O.policy.has_fsgroup) {
		usage_error("--fsgroup-policy and --read-only go with --fsgroup");
		O.bad = 1;
	}
	if (!O.bad && O.policy.has_fsgroup && O.policy.has_gid) {
		usage_error("--fsgroup sets the group: give --owner UID without a group, or drop --fsgroup");
		O.bad = 1;
	}
	O.policy.fsgroup_readonly = O.read_only;
	if (O.if_root_mismatch)
		O.policy.on_root_mismatch = true;
	if (rc < -1) {
		usage_error("%s: %s", poptBadOption(ctx, POPT_BADOPTION_NOALIAS), poptStrerror(rc));
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (O.bad) {
		ex = VP_EXIT_USAGE;
		goto out;
	}
	const char **args = poptGetArgs(ctx);
	int nargs = 0;
	while (args && args[nargs])
		nargs++;
	bool is_run = !strcmp(command, "plan") || !strcmp(command, "check") || !strcmp(command, "apply");
	if (O.progress && strcmp(O.progress, "auto") && strcmp(O.progress, "always") &&
	    strcmp(O.progress, "never")) {
		usage_error("invalid --progress '%s': use auto, always or never", O.progress);
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (O.progress_interval < 0) {
		usage_error("--progress-interval must be positive");
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (resolve_jobs(&O) < 0) {
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (O.json && O.list) {
		usage_error("--json and --list do not go together (JSON has every event)");
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (!vp_userns_empty(&O.userns) && !is_run && strcmp(command, "rollback") &&
	    strcmp(command, "exec")) {
		usage_error("--userns, --uid-map and --gid-map go with plan, check, apply, exec and rollback");
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (!strcmp(command, "exec")) {
		ex = cmd_exec(args, nargs, exec_cmd);
		goto out;
	}
	if (!strcmp(command, "idmap")) {
		ex = cmd_idmap(args, nargs);
		goto out;
	}
	if ((O.user || O.allow_root) && strcmp(command, "exec")) {
		usage_error("--user and --allow-root go with exec");
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (O.jobs_text && !is_run && strcmp(command, "recover")) {
		usage_error("--jobs goes with plan, check, apply and recover; %s runs on one thread",
		            command);
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if ((O.forward && strcmp(command, "recover")) || (O.force && strcmp(command, "rollback")) ||
	    (O.journal && strcmp(command, "rollback")) || (O.recover && strcmp(command, "apply")) ||
	    O.idmap_undo || O.idmap_dry_run || O.print_unit ||
	    (!is_run && !vp_policy_is_empty(&O.policy))) {
		usage_error("an option was given that '%s' does not take", command);
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (!strcmp(command, "journal")) {
		if (nargs > 2) {
			usage_error("too many arguments");
			ex = VP_EXIT_USAGE;
		} else {
			ex = cmd_journal(nargs > 0 ? args[0] : NULL, nargs > 1 ? args[1] : NULL);
		}
		goto out;
	}
	if (nargs > 1) {
		usage_error("too many arguments: volperm works on one PATH at a time");
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (is_run && nargs != 1) {
		usage_error("missing PATH");
		ex = VP_EXIT_USAGE;
		goto out;
	}
	if (!strcmp(command, "rollback"))
		ex = cmd_rollback(nargs ? args[0] : NULL);
	else if (!strcmp(command, "recover"))
		ex = cmd_recover(nargs ? args[0] : NULL);
	else
		ex = cmd_run(!strcmp(command, "plan") ? VP_CMD_PLAN
		             : !strcmp(command, "check") ? VP_CMD_CHECK : VP_CMD_APPLY,
		             command, args[0]);
out:
	poptFreeContext(ctx);
	vp_policy_free(&O.policy);
	vp_userns_free(&O.userns);
	free(jdir_default);
	jdir_default = NULL;
	for (size_t i = 0; i < O.n_raw; i++)
		free(O.raw[i].arg);
	free(O.raw);
	return ex;
}

int vp_cli_main(int argc, char **argv)
{
	/* Every command, whichever way it returns, ends here: a failed write
	 * to stdout (a full disk, a closed pipe) is said, never taken for
	 * success by the script or init system reading our status. */
	return finish_stdout(cli_main(argc, argv));
}
