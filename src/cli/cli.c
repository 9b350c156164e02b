/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vp_cli_main (see cli.h): the command word, then the one command. Here too
 * live the only mutable state of the CLI outside its options: the signal
 * counter (the handlers' only target) and what became of standard output. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "volperm/cli.h"

#include "cli.h"

/* ---- signals (docs/volperm.1, SIGNALS) ---- */

/* SIGTERM (docker stop, Kubernetes), SIGINT (Ctrl-C) and SIGHUP are counted
 * here and nothing else: the core polls the count between entries, stops,
 * and an apply rolls back (a second signal stops that rollback). */
struct vp_cancel cli_cancel;
/* The dispositions and mask we were started with, for exec's app. */
struct vp_exec_signals cli_inherited;

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "a signal handler may only touch lock-free atomics");

static void on_stop_signal(int signo)
{
	atomic_store(&cli_cancel.signo, signo);
	atomic_fetch_add(&cli_cancel.count, 1);
}

/* For every command that walks or changes a tree (not `journal`, which only
 * reads journals and dies of a signal like any filter). */
static void setup_signals(void)
{
	static const int stop[] = { SIGTERM, SIGINT, SIGHUP };
	struct sigaction sa = { .sa_handler = on_stop_signal, .sa_flags = SA_RESTART }, old;
	struct vp_exec_signals *in = &cli_inherited;

	(void)sigprocmask(SIG_SETMASK, NULL, &in->mask);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(stop) / sizeof(stop[0]); i++) {
		/* A signal ignored when we started (nohup, a background job of
		 * a script) stays ignored, as coreutils' sort and timeout do. */
		if (sigaction(stop[i], NULL, &old) < 0 || old.sa_handler == SIG_IGN)
			continue;
		if (sigaction(stop[i], &sa, NULL) == 0) {
			in->signo[in->n] = stop[i];
			in->action[in->n++] = old;
		}
	}
	/* A closed stdout (`| head -1`) must not kill an apply half way: the
	 * writes fail with EPIPE instead, and output.c stops writing. */
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, &old) == 0) {
		in->signo[in->n] = SIGPIPE;
		in->action[in->n++] = old;
	}
}

/* ---- standard output (docs/volperm.1, EXIT STATUS 8) ---- */

static int stdout_error;       /* errno of the first failed write to stdout */
static char stdout_done[640];  /* what the run did, for the closing line */

void cli_note_output(struct vp_output *o)
{
	int e = vp_output_finish(o);
	if (e && !stdout_error)
		stdout_error = e;
}

void cli_done(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(stdout_done, sizeof(stdout_done), fmt, ap);
	va_end(ap);
}

/* Said once, on stderr, and exit 8 only when the run would have exited 0
 * (any other status says more about the volume, and its own sentence is
 * already on stderr). */
int cli_finish_stdout(int ex)
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

/* ---- dispatch ---- */

static int run_command(const struct cli_opts *o)
{
	const char *arg = o->nargs ? o->args[0] : NULL;
	int ex;

	if (o->cmd == CLI_EXEC)
		return cmd_exec(o);
	if (o->cmd == CLI_IDMAP)
		return cmd_idmap(o);
	if (o->cmd == CLI_PLAN && o->idmap_plan)
		return cmd_plan_idmap(o);
	if (o->cmd == CLI_SHARD)
		return cmd_shard(o);
	if ((ex = cli_check_command(o)) >= 0)
		return ex;
	if (o->run_id && o->cmd == CLI_ROLLBACK)
		return cmd_shard_rollback(o, arg);
	if (o->run_id)
		return cmd_shard_run(o, o->cmd == CLI_PLAN ? VP_CMD_PLAN : o->cmd == CLI_CHECK
		                                             ? VP_CMD_CHECK : VP_CMD_APPLY,
		                     o->command, arg);
	switch (o->cmd) {
	case CLI_JOURNAL:
		return cmd_journal(o, arg, o->nargs > 1 ? o->args[1] : NULL);
	case CLI_ROLLBACK:
		return cmd_rollback(o, arg);
	case CLI_RECOVER:
		return cmd_recover(o, arg);
	default:
		return cmd_run(o, o->cmd == CLI_PLAN ? VP_CMD_PLAN : o->cmd == CLI_CHECK ? VP_CMD_CHECK
		                                                                       : VP_CMD_APPLY,
		               o->command, arg);
	}
}

int vp_cli_main(int argc, char **argv)
{
	struct cli_opts o = { 0 };
	int ex;

	cli_command(&argc, &argv, &o);
	if (o.cmd != CLI_JOURNAL)
		setup_signals();
	ex = cli_parse(argc, argv, &o);
	if (ex < 0)
		ex = run_command(&o);
	cli_opts_free(&o);
	/* Every command, whichever way it returns, ends here: a failed write
	 * to stdout (a full disk, a closed pipe) is said, never taken for
	 * success by the script or init system reading our status. */
	return cli_finish_stdout(ex);
}
