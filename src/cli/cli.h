/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_CLI_INTERNAL_H
#define VOLPERM_CLI_INTERNAL_H

/* The command line's own header (include/volperm/cli.h is the public
 * entry point). The CLI reads what the user typed, asks the core, and says
 * what the core answered: every rule lives in the core (session.h and the
 * modules it uses); every message and every exit status lives here.
 *
 *   cli.c          vp_cli_main: the command word, signals, standard output
 *   cli_msg.c      messages, the outcome -> exit status map, shared steps
 *   cli_opts.c     popt tables, option values, usage errors
 *   cmd_run.c      plan, check, apply
 *   cmd_rollback.c rollback, recover
 *   cmd_journal.c  journal list, show, export
 *   cmd_exec.c     exec
 *   cmd_idmap.c    idmap
 *   cmd_shard.c    shard plan|finalize|status, and --run of plan, check,
 *                  apply and rollback (sharded runs)
 *
 * The options are one struct, made by vp_cli_main and passed down; nothing
 * changes it once cli_parse() is done. The only file-level mutable state is
 * what signal handlers and the closing line need (cli.c). */

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "volperm/cancel.h"
#include "volperm/engine.h"
#include "volperm/exit.h"
#include "volperm/output.h"
#include "volperm/policy.h"
#include "volperm/privdrop.h"
#include "volperm/quote.h"
#include "volperm/userns.h"
#include "volperm/volume.h"

enum cli_cmd { CLI_PLAN, CLI_CHECK, CLI_APPLY, CLI_ROLLBACK, CLI_RECOVER, CLI_JOURNAL, CLI_EXEC,
               CLI_IDMAP, CLI_SHARD };

/* Options whose values need the name databases are kept as typed and parsed
 * after the whole command line is read (--passwd may come last). */
struct cli_rawopt {
	int val;
	char *arg;
};

struct cli_opts {
	enum cli_cmd cmd;
	const char *command;   /* its word: "plan", ... (messages) */
	int cross_mounts, include_devices, allow_external_links, allow_system_path;
	char *journal_dir, *journal;
	int no_journal, keep_going, list, json, quiet, recover, force, forward;
	char *format;
	char *fsgroup_policy, *passwd_file, *group_file;
	int read_only, if_root_mismatch;
	char *progress;
	double progress_interval;
	char *jobs_text;       /* --jobs, as typed */
	unsigned jobs;         /* --jobs or VOLPERM_JOBS; 0: auto, decided per root */
	const char *jobs_from; /* "--jobs", "VOLPERM_JOBS", or NULL (auto) */
	char *user;            /* exec --user */
	int allow_root;        /* exec --allow-root */
	int idmap_undo, idmap_dry_run, print_unit; /* idmap */
	int idmap_plan;        /* plan --idmap */
	struct cli_rawopt *raw;
	size_t n_raw;
	struct vp_policy policy; /* in host ids (--userns translated them) */
	char *userns_spec;     /* --userns */
	struct vp_userns userns; /* --userns or --uid-map/--gid-map; empty: none */
	/* The default journal directory (vp_jdir_default(): it depends on who
	 * we are and on the environment, so it is worked out once, with the
	 * options); NULL when there is no home to put it in. */
	char *jdir_default;
	int bad;               /* an option value was refused (already reported) */
	char **args;           /* the operands (malloc()ed copies), NULL-terminated */
	int nargs;
	char **exec_cmd;       /* exec: what follows "--" (borrowed from argv) */
	char *run_id;          /* --run ID (sharded runs) */
	char *shard_spec;      /* --shard K/N or auto */
	char *shards_text;     /* --shards N */
};

/* ---- cli_opts.c ---- */

/* Find the command word and exec's "--" (argv is edited in place). */
void cli_command(int *argc, char ***argv, struct cli_opts *o);
/* Parse and check every option of o->command. Returns -1 when the command
 * is to run, else the exit status (a usage error said, or --version). */
int cli_parse(int argc, char **argv, struct cli_opts *o);
/* The checks of a command's options and operands that come after exec and
 * idmap have taken theirs: -1 to run, else VP_EXIT_USAGE (said). */
int cli_check_command(const struct cli_opts *o);
void cli_opts_free(struct cli_opts *o);

/* ---- cli_msg.c ---- */

/* Every path in a message goes through the quoting: a name may hold a
 * newline or a terminal escape sequence, and the message goes to the
 * operator's terminal and log. Each path of a message needs its own qpath. */
struct qpath {
	char s[4096];
};

static inline const char *qp(struct qpath *q, const char *path)
{
	return path ? vp_quote_shell_buf(q->s, sizeof(q->s), path, strlen(path)) : "(none)";
}

/* DIR/NAME, quoted as one path. */
static inline const char *qjp(struct qpath *q, const char *dir, const char *name)
{
	return vp_quote_path_buf(q->s, sizeof(q->s), dir, name, strlen(name));
}

/* "volperm: <sentence>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A bad value: one sentence, nothing more (scripts grep for it). */
void value_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A malformed command line: the sentence and where to read more. */
void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The one map from what the core answered to the process's exit status
 * (docs/volperm.1, EXIT STATUS): an outcome, or a negative errno (a call
 * that failed before it changed anything: 2). */
int cli_exit(int outcome);

/* The journal directory: --journal-dir, else VOLPERM_JOURNAL_DIR, else
 * the default (o->jdir_default, else VP_JOURNAL_DIR_DEFAULT). */
const char *cli_journal_dir(const struct cli_opts *o);
/* vp_jdir_open(), saying why it refused; -ENOENT is left to the caller. */
int cli_open_jdir(const char *path, bool create, int *fd);
/* The same; on failure tried gets the directory that could not be made or
 * opened (with create, a parent of path may be the one): the directory
 * every later message about it names. */
int cli_open_jdir_ex(const char *path, bool create, int *fd, char *tried, size_t tried_size);
/* vp_root_open(), saying why it refused: 0 or -1. */
int cli_open_root(const char *arg, struct vp_root *rt, bool allow_system);
/* Split FILE into its directory (validated like any journal dir) and name:
 * 0, or VP_EXIT_USAGE (said). */
int cli_open_journal_file(const char *file, int *jdir, char **dir, char name[]);
/* vp_session_lock(), saying who holds it: 0, or the exit status. */
int cli_lock(const struct vp_root *rt, int jdir, struct vp_tree_lock *lk);
struct vp_output cli_output(const struct cli_opts *o, const char *command);
/* The run's threads: --jobs / VOLPERM_JOBS, else vp_jobs_auto() on the
 * root; said in out's summary (out->jobs_why points into jc). */
struct vp_jobs_choice;
unsigned cli_jobs(const struct cli_opts *o, int root_fd, struct vp_jobs_choice *jc,
                  struct vp_output *out);
char *cli_journal_path(const char *dir, const char *name);

/* ---- cli.c: standard output (docs/volperm.1, EXIT STATUS 8) and signals ---- */

/* Flush o and keep the first failure of standard output. */
void cli_note_output(struct vp_output *o);
/* What the run did, for the closing line if standard output failed. */
void cli_done(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The closing line when standard output failed; the exit status. */
int cli_finish_stdout(int ex);

/* The handlers' targets: the core polls the count (cancel.h); exec hands
 * the dispositions and mask we were started with to the app. */
extern struct vp_cancel cli_cancel;
extern struct vp_exec_signals cli_inherited;

/* ---- commands ---- */

int cmd_run(const struct cli_opts *o, enum vp_cmd cmd, const char *command, const char *arg);
int cmd_rollback(const struct cli_opts *o, const char *arg);
int cmd_recover(const struct cli_opts *o, const char *arg);
int cmd_journal(const struct cli_opts *o, const char *sub, const char *arg);
int cmd_exec(const struct cli_opts *o);
int cmd_idmap(const struct cli_opts *o);
/* shard plan|finalize|status (cmd_shard.c). */
int cmd_shard(const struct cli_opts *o);
/* plan, check, apply with --run ID: a shard of a sharded run. */
int cmd_shard_run(const struct cli_opts *o, enum vp_cmd cmd, const char *command,
                  const char *arg);
/* rollback --run ID [--shard K/N] PATH. */
int cmd_shard_rollback(const struct cli_opts *o, const char *arg);
/* plan --idmap: idmap --dry-run's report without a DST (cmd_idmap.c). */
int cmd_plan_idmap(const struct cli_opts *o);
/* Run (and print as command) the rollback of job j, which
 * vp_session_rollback_open*() returned r for (r is printed and turned into
 * the exit status when it refused); *st gets the counts. The caller closes
 * j. Returns the exit status. */
struct vp_rbjob;
int cli_rollback_run(const struct cli_opts *o, int r, struct vp_rbjob *j,
                     const struct vp_root *rt, const char *command, struct vp_stats *st);
/* Roll back journal name of jdir on rt, under the caller's volume lock,
 * printing as command ("rollback" or "recover"): the exit status. */
int cli_rollback_journal(const struct cli_opts *o, int jdir, const char *jdir_path,
                         const char *name, const struct vp_root *rt, const char *command,
                         bool force);

#endif
