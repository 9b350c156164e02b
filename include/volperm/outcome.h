/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_OUTCOME_H
#define VOLPERM_OUTCOME_H

/* How a run of the core ended, as a value the caller can branch on. The
 * engine, rollback and the session calls (session.h) return one of these,
 * or a negative errno where their header says so; never a process exit
 * status. Each outcome has exactly one exit status (docs/volperm.1, EXIT
 * STATUS), and the CLI alone maps one to the other (cli_exit(), src/cli/):
 * the core does not know it runs in a process that exits. VP_OUT_OK is 0,
 * the others positive, so "r < 0" still tells an errno apart. */
enum vp_outcome {
	VP_OUT_OK = 0,              /* done, or compliant */
	VP_OUT_CHANGES_NEEDED,      /* check: changes are needed */
	VP_OUT_INVALID,             /* bad input, or refused before any change */
	VP_OUT_ROLLED_BACK,         /* apply failed and was rolled back */
	VP_OUT_BLOCKED,             /* an interrupted or running apply blocks this run */
	VP_OUT_PARTIAL,             /* finished with skipped or failed entries */
	VP_OUT_ROLLBACK_INCOMPLETE, /* rollback could not restore everything */
	VP_OUT_INTERRUPTED,         /* stopped by a signal counted in vp_cancel */
};

#endif
