/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_FAULT_H
#define VOLPERM_FAULT_H

/* Fault injection for the crash-consistency tests (tests/crash/). Only a
 * build configured with -DVOLPERM_FAULT_INJECTION=ON has it; in every other
 * build vp_fault_point() is an empty inline and costs nothing.
 *
 * Each call marks one completed mutating step (a journal write, an fsync, a
 * chown, a chmod, an xattr write, a sync of the volume). With the environment
 * variable VOLPERM_FAULT_AFTER=N the process SIGKILLs itself right after
 * step N, which is what a crash at that point looks like on disk. With
 * VOLPERM_FAULT_TRACE=1 every step is written to stderr as "fault-step N what",
 * so a test can count the steps of a run. */

#ifdef VOLPERM_FAULT_INJECTION
void vp_fault_point(const char *what);
#else
static inline void vp_fault_point(const char *what)
{
	(void)what;
}
#endif

#endif
