/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_CAPS_H
#define VOLPERM_CAPS_H

#include <stdbool.h>
#include <stdint.h>

/* Capability and user-namespace checks made once before the first change, so
 * a missing capability is one clear sentence and not thousands of EPERMs. */

/* Is capability `cap` (CAP_CHOWN, ...) in the effective set? */
bool vp_cap_effective(int cap);

/* Is `id` mapped in this process's user namespace (file: "uid_map" or
 * "gid_map")? Returns 1 yes, 0 no, -errno when /proc cannot tell. */
int vp_id_mapped(const char *map_file, uint32_t id);

#endif
