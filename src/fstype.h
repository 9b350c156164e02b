/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_FSTYPE_H
#define VOLPERM_FSTYPE_H

#include <stdbool.h>

/* Filesystem types, by statfs(2) f_type, as far as they matter to how a
 * run is done: on a local one every request is served by this kernel at
 * the cost of a function call, so the walk is CPU-bound and the fewest
 * syscalls win; on anything else (network storage, FUSE) each lookup,
 * getattr and setattr may be a round trip, and the fewest requests win,
 * even at more syscalls.
 *
 * vp_fstype_local: the name of a local type ("ext4", "tmpfs", "overlayfs",
 * which stacks on local ones, ...), or NULL. vp_fstype_remote: the name of
 * a type known to serve requests elsewhere ("nfs", "fuse", "ceph", ...), or
 * NULL (also for types nobody listed). */
const char *vp_fstype_local(unsigned long type);
const char *vp_fstype_remote(unsigned long type);

/* Is fd on a filesystem not known to be local (so its requests may be
 * round trips)? false when fstatfs fails: the local way is the default. */
bool vp_fs_round_trips(int fd);

#endif
