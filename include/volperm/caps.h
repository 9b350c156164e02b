/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_CAPS_H
#define VOLPERM_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Capability and user-namespace checks made once before the first change, so
 * a missing capability is one clear sentence and not thousands of EPERMs. */

struct vp_event;
struct vp_policy;
struct vp_userns;

/* Is capability `cap` (CAP_CHOWN, ...) in the effective set? */
bool vp_cap_effective(int cap);

/* Is `id` mapped in this process's user namespace (file: "uid_map" or
 * "gid_map")? Returns 1 yes, 0 no, -errno when /proc cannot tell. */
int vp_id_mapped(const char *map_file, uint32_t id);

/* ---- ids not mapped in the current user namespace (issue 13) ----------------
 *
 * In a user namespace only the ids of its uid_map/gid_map exist. The kernel
 * refuses to give a file to any other id (chown: EINVAL) or to name one in an
 * ACL (EINVAL), and an inode owned by one (uid or gid) is shown with the
 * overflow id (/proc/sys/kernel/overflowuid, overflowgid: usually 65534); its
 * owner, mode and ACLs cannot be changed from inside at all, capabilities or
 * not (EPERM: privileged_wrt_inode_uidgid). Both are checked before the first
 * change instead of failing halfway through an apply. */

/* A target id the current namespace does not map. */
struct vp_unmapped_target {
	const char *option; /* "--owner", "--map", "--map-gid", "--fsgroup", "--grant", "--revoke" */
	bool gid;           /* a gid (else a uid) */
	uint32_t id;        /* as the policy holds it (a host id after --userns) */
};

/* The first id the policy would write (the --owner uid and gid, every --map
 * and --map-gid target, --fsgroup, every u:/g: of --grant, which the default
 * ACLs of directories name too, and of --revoke) that `self` (the current
 * namespace's maps, as vp_userns_self() reads them) does not map: 1 and *ret
 * set; 0 when every one is mapped. */
int vp_policy_unmapped_target(const struct vp_policy *p, const struct vp_userns *self,
                              struct vp_unmapped_target *ret);

/* The same against this process's own maps, and the refusal as one sentence:
 * 0 when every target is mapped (or /proc cannot tell: no user namespaces),
 * -ERANGE with the sentence in why (what follows is the caller's to say:
 * that nothing was changed, or that apply would refuse it). `translated`: the --userns map the
 * policy's ids were translated with (NULL or empty: none), so that the
 * sentence names the id the user gave too. */
int vp_policy_check_mapped(const struct vp_policy *p, const struct vp_userns *translated,
                           char *why, size_t why_size);

/* How this namespace shows owners it does not map. */
struct vp_nsview {
	uint32_t overflow_uid, overflow_gid;
	/* The overflow id is itself unmapped, so an owner shown as it is
	 * certainly unmapped. When it is mapped (Podman's 0..65535 layouts),
	 * stat cannot tell a real 65534 from an unmapped id: not detected. */
	bool uid_tells, gid_tells;
};

/* This process's view: the maps and /proc/sys/kernel/overflow{u,g}id read
 * once. In the initial namespace (every id mapped), and when /proc cannot
 * tell, neither `tells` is set: nothing is ever reported as unmapped. 0 or
 * -errno (then *v is that inactive view). */
int vp_nsview_get(struct vp_nsview *v);
/* The same from given maps and overflow ids (unit tests). */
void vp_nsview_from(struct vp_nsview *v, const struct vp_userns *self, uint32_t overflow_uid,
                    uint32_t overflow_gid);

static inline bool vp_nsview_active(const struct vp_nsview *v)
{
	return v->uid_tells || v->gid_tells;
}

/* The per-entry rule (src/preflight.c): would the change `changes` (VP_CH_*
 * flags, as struct vp_event carries them) of an entry owned by uid:gid fail
 * because that owner is unmapped here? An unmapped uid blocks every change
 * (the kernel's inode_owner_or_capable); an unmapped gid only a chown (it
 * needs both mapped: chown_ok). *gid_side: the group is the unmapped one. */
bool vp_owner_unmapped(const struct vp_nsview *v, uint32_t uid, uint32_t gid, unsigned changes,
                       bool *gid_side);

/* Counting the entries a run would change that are owned by an unmapped id
 * (plan and check warn about them), from the run's VP_EV_CHANGE events. */
struct vp_unmapped_owners {
	struct vp_nsview ns;
	uint64_t count;
	bool gid;          /* the first one's unmapped side */
	uint32_t shown;    /* the first one's id as shown (the overflow id) */
	char first[320];   /* the first one's path, quoted */
};
void vp_unmapped_owners_event(struct vp_unmapped_owners *w, const struct vp_event *ev);
/* The warning for w->count > 0, one sentence (no "warning: " prefix). */
void vp_unmapped_owners_why(const struct vp_unmapped_owners *w, char *buf, size_t size);

#endif
