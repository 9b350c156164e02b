/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_EXIT_H
#define VOLPERM_EXIT_H

/* Exit statuses: a public contract (docs/volperm.1, EXIT STATUS). Scripts and
 * orchestrators branch on these, so never renumber. */
enum vp_exit {
	VP_EXIT_OK = 0,            /* done, or compliant */
	VP_EXIT_CHANGES = 1,       /* check: changes are needed */
	VP_EXIT_USAGE = 2,         /* usage error or bad input; nothing changed */
	VP_EXIT_ROLLED_BACK = 3,   /* apply failed and was rolled back */
	VP_EXIT_HOT = 4,           /* an interrupted or running apply blocks this run */
	VP_EXIT_PARTIAL = 5,       /* finished with skipped or failed entries */
	VP_EXIT_ROLLBACK_FAIL = 6, /* rollback could not restore everything */
	VP_EXIT_INTERRUPTED = 7,   /* stopped by SIGTERM/SIGINT/SIGHUP: apply rolled
	                            * back (or, --no-journal, kept what it changed) */
	VP_EXIT_OUTPUT = 8,        /* the run succeeded but standard output could
	                            * not be written (closed pipe, full disk) */
};

#endif
