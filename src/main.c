/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>

#include "volperm/cli.h"

int main(int argc, char **argv)
{
	/* vp_cli_main() has flushed stdout and turned a failed write into its
	 * own message and status (docs/volperm.1, EXIT STATUS 8). */
	exit(vp_cli_main(argc, argv));
}
