/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_CLI_H
#define VOLPERM_CLI_H

/* The command line: popt tables, subcommand dispatch. Returns the exit
 * status (enum vp_exit); main() is the only caller and the only exit(). */
int vp_cli_main(int argc, char **argv);

#endif
