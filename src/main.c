/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "volperm/cli.h"

int main(int argc, char **argv)
{
	int r = vp_cli_main(argc, argv);

	/* A failed write to stdout (a full disk, a closed pipe) must not be
	 * mistaken for success by the init system reading our status. */
	if (fflush(stdout) != 0 && r == 0)
		r = 2;
	exit(r);
}
