/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Capability and user-namespace checks (see caps.h). capget(2) directly, so
 * the static init-container binary needs no libcap. The maps of this
 * process are read by one reader, userns.c's vp_userns_self(). */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "volperm/acl.h"
#include "volperm/caps.h"
#include "volperm/policy.h"
#include "volperm/userns.h"

bool vp_cap_effective(int cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2] = { 0 };

	if (cap < 0 || cap >= 64 || syscall(SYS_capget, &h, d) < 0)
		return false;
	return d[cap / 32].effective & (1u << (cap % 32));
}

/* "Mapped here" is "an inside id of our own map": the maps' inside side is
 * what vp_userns calls the container side. */
static bool mapped(const struct vp_userns *self, bool gid, uint32_t id)
{
	uint32_t h;

	return vp_userns_to_host(self, gid, id, &h) == 0;
}

int vp_id_mapped(const char *map_file, uint32_t id)
{
	struct vp_userns self = VP_USERNS_INIT;
	bool gid = strcmp(map_file, "gid_map") == 0;
	int r;

	if (!gid && strcmp(map_file, "uid_map") != 0)
		return -EINVAL;
	r = vp_userns_self(&self);
	if (r < 0)
		return r;
	r = mapped(&self, gid, id);
	vp_userns_free(&self);
	return r;
}

static bool target_unmapped(const struct vp_userns *self, const char *option, bool gid,
                            uint32_t id, struct vp_unmapped_target *ret)
{
	if (mapped(self, gid, id))
		return false;
	*ret = (struct vp_unmapped_target){ .option = option, .gid = gid, .id = id };
	return true;
}

int vp_policy_unmapped_target(const struct vp_policy *p, const struct vp_userns *self,
                              struct vp_unmapped_target *ret)
{
	/* In the order the options are described (vp_policy_describe), so that
	 * "the first" is predictable. */
	if (p->has_uid && target_unmapped(self, "--owner", false, p->uid, ret))
		return 1;
	if (p->has_gid && target_unmapped(self, "--owner", true, p->gid, ret))
		return 1;
	for (size_t i = 0; i < p->n_uid_maps; i++)
		if (target_unmapped(self, "--map", false, p->uid_maps[i].to, ret))
			return 1;
	for (size_t i = 0; i < p->n_gid_maps; i++)
		if (target_unmapped(self, "--map-gid", true, p->gid_maps[i].to, ret))
			return 1;
	if (p->has_fsgroup && target_unmapped(self, "--fsgroup", true, p->fsgroup, ret))
		return 1;
	/* A grant is written to directories' default ACLs too: the same ids. */
	for (size_t i = 0; i < p->n_grants; i++)
		if (target_unmapped(self, "--grant", p->grants[i].tag == VP_ACL_GROUP,
		                    p->grants[i].id, ret))
			return 1;
	/* An ACL entry naming an unmapped id cannot be read as such here (it
	 * shows as the overflow id), so a --revoke of one could never match:
	 * refused rather than a silent no-op. */
	for (size_t i = 0; i < p->n_revokes; i++)
		if (target_unmapped(self, "--revoke", p->revokes[i].tag == VP_ACL_GROUP,
		                    p->revokes[i].id, ret))
			return 1;
	return 0;
}

int vp_policy_check_mapped(const struct vp_policy *p, const struct vp_userns *translated,
                           char *why, size_t why_size)
{
	struct vp_userns self = VP_USERNS_INIT;
	struct vp_unmapped_target t;
	char given[64] = "", name[128];
	uint32_t c;
	int r;

	/* No map to read: a kernel without user namespaces, where every id
	 * exists. (No /proc at all is refused later, with its own sentence.) */
	if (vp_userns_self(&self) < 0)
		return 0;
	r = vp_policy_unmapped_target(p, &self, &t);
	vp_userns_free(&self);
	if (r == 0)
		return 0;
	if (translated && !vp_userns_empty(translated) &&
	    vp_userns_to_container(translated, t.gid, t.id, &c) == 0)
		snprintf(given, sizeof(given), "%u (host %u from ", c, t.id);
	if (given[0])
		snprintf(why, why_size,
		         "%s %s %s%s) is not mapped in this user namespace (see /proc/self/%s), so no file can be given to it and no ACL entry can name it",
		         t.option, t.gid ? "gid" : "uid", given,
		         vp_userns_name(translated, name, sizeof(name), "--userns"),
		         t.gid ? "gid_map" : "uid_map");
	else
		snprintf(why, why_size,
		         "%s %s %u is not mapped in this user namespace (see /proc/self/%s), so no file can be given to it and no ACL entry can name it",
		         t.option, t.gid ? "gid" : "uid", t.id, t.gid ? "gid_map" : "uid_map");
	return -ERANGE;
}

void vp_nsview_from(struct vp_nsview *v, const struct vp_userns *self, uint32_t overflow_uid,
                    uint32_t overflow_gid)
{
	*v = (struct vp_nsview){
		.overflow_uid = overflow_uid, .overflow_gid = overflow_gid,
		.uid_tells = !mapped(self, false, overflow_uid),
		.gid_tells = !mapped(self, true, overflow_gid),
	};
}

static int read_u32(const char *path, uint32_t *ret)
{
	char buf[32];
	char *end;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = 0;
	errno = 0;
	unsigned long v = strtoul(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || v > UINT32_MAX)
		return -EBADMSG;
	*ret = (uint32_t)v;
	return 0;
}

int vp_nsview_get(struct vp_nsview *v)
{
	struct vp_userns self = VP_USERNS_INIT;
	uint32_t ou, og;
	int r;

	*v = (struct vp_nsview){ 0 };
	if ((r = read_u32("/proc/sys/kernel/overflowuid", &ou)) < 0 ||
	    (r = read_u32("/proc/sys/kernel/overflowgid", &og)) < 0 ||
	    (r = vp_userns_self(&self)) < 0)
		return r;
	vp_nsview_from(v, &self, ou, og);
	vp_userns_free(&self);
	return 0;
}
