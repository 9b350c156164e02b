/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fault injection (see fault.h). Test builds only. The step counter is the
 * one piece of process-wide mutable state outside the CLI: a crash point is
 * by nature a property of the whole process. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "volperm/fault.h"

#ifdef VOLPERM_FAULT_INJECTION
static unsigned long steps;

void vp_fault_point(const char *what)
{
	const char *after = getenv("VOLPERM_FAULT_AFTER");
	const char *trace = getenv("VOLPERM_FAULT_TRACE");

	steps++;
	if (trace && *trace == '1')
		fprintf(stderr, "fault-step %lu %s\n", steps, what);
	if (after && strtoul(after, NULL, 10) == steps) {
		fflush(stderr);
		raise(SIGKILL);
	}
}
#endif
