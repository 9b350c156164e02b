/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fault injection (see fault.h). Test builds only. The step counter is the
 * one piece of process-wide mutable state outside the CLI: a crash point is
 * by nature a property of the whole process. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fault.h"

#ifdef VOLPERM_FAULT_INJECTION
static atomic_ulong steps;

void vp_fault_point(const char *what)
{
	const char *after = getenv("VOLPERM_FAULT_AFTER");
	const char *trace = getenv("VOLPERM_FAULT_TRACE");

	/* Atomic: with --jobs, workers reach their steps concurrently (and
	 * their order is then not reproducible from run to run). */
	unsigned long step = atomic_fetch_add(&steps, 1) + 1;
	if (trace && *trace == '1')
		fprintf(stderr, "fault-step %lu %s\n", step, what);
	if (after && strtoul(after, NULL, 10) == step) {
		fflush(stderr);
		raise(SIGKILL);
	}
}
#endif
