/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Capability and user-namespace checks (see caps.h). capget(2) directly, so
 * the static init-container binary needs no libcap. */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "volperm/caps.h"

bool vp_cap_effective(int cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2] = { 0 };

	if (cap < 0 || cap >= 64 || syscall(SYS_capget, &h, d) < 0)
		return false;
	return d[cap / 32].effective & (1u << (cap % 32));
}

int vp_id_mapped(const char *map_file, uint32_t id)
{
	char path[64];
	unsigned long inside, outside, count;
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/self/%s", map_file);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3)
		if (id >= inside && (unsigned long)id - inside < count) {
			found = 1;
			break;
		}
	fclose(f);
	return found;
}
