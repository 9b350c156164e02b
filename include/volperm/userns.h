/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_USERNS_H
#define VOLPERM_USERNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "volperm/policy.h"

/* Id translation between a user namespace ("container" ids, what the app
 * inside sees) and the namespace volperm runs in ("host" ids, what it writes
 * to disk): `--userns SPEC`, `--uid-map C:H:N`, `--gid-map C:H:N`
 * (docs/volperm.1, USER NAMESPACES).
 *
 * A map is a list of ranges, as /proc/PID/uid_map has them: container ids
 * C..C+N-1 are host ids H..H+N-1. As the kernel requires of a uid_map, no
 * two ranges overlap on either side, so translation is one-to-one both ways.
 * Ids are 0..4294967294: 4294967295 is (uid_t)-1, chown's "no change", and
 * lies in no range.
 *
 * Every function returns 0 or a negative errno and leaves its out-parameters
 * alone on failure:
 *   -EINVAL   malformed text, a count of 0, a range past 4294967294
 *   -EEXIST   a range overlapping another one (container or host side)
 *   -ERANGE   an id outside the map
 *   -ENOENT   no such user, no subordinate range for it, no such process
 *   -E2BIG    more ranges than VP_USERNS_MAX_RANGES */

#define VP_USERNS_MAX_RANGES 340 /* the kernel's limit per map (Linux 4.15+) */

struct vp_idrange {
	uint32_t c, h, n; /* container start, host start, count */
};

struct vp_userns {
	struct vp_idrange *uid, *gid;
	size_t n_uid, n_gid;
	char *spec; /* what it was built from, for messages ("user:alice"); may be NULL */
};

#define VP_USERNS_INIT { NULL, NULL, 0, 0, NULL }

void vp_userns_free(struct vp_userns *u);

/* True when the map has no range on either side (nothing given). */
bool vp_userns_empty(const struct vp_userns *u);

/* Add one range to the uid (gid=false) or gid map. */
int vp_userns_add(struct vp_userns *u, bool gid, uint32_t c, uint32_t h, uint32_t n);

/* "C:H:N" as --uid-map/--gid-map take it (decimal, as Podman's --uidmap). */
int vp_userns_parse_range(const char *s, uint32_t *c, uint32_t *h, uint32_t *n);

/* Add every range of /proc/PID/uid_map text ("inside outside count" lines). */
int vp_userns_add_map_text(struct vp_userns *u, bool gid, const char *text);

/* Translate one id: container -> host, and host -> container. */
int vp_userns_to_host(const struct vp_userns *u, bool gid, uint32_t id, uint32_t *ret);
int vp_userns_to_container(const struct vp_userns *u, bool gid, uint32_t id, uint32_t *ret);

/* The rootless Podman/Docker layout for user `name` (uid, gid): container 0
 * is uid/gid itself, container 1..N the first range of the user in the
 * subuid/subgid file (lines "NAME:START:COUNT"; NAME may also be the uid in
 * decimal; '#' comments and blank lines are skipped). NULL files:
 * $VOLPERM_SUBUID_FILE / $VOLPERM_SUBGID_FILE, else /etc/subuid, /etc/subgid.
 * -ENOENT when the user has no range in one of them, -EBADMSG for a line of
 * the user's that is not NAME:START:COUNT. */
int vp_userns_from_subid(struct vp_userns *u, const char *name, uid_t uid, gid_t gid,
                         const char *subuid_file, const char *subgid_file);
/* The same, with uid/gid (and the name, for a numeric NAME) from the
 * passwd database. */
int vp_userns_from_user(struct vp_userns *u, const char *name, const char *subuid_file,
                        const char *subgid_file);
/* /proc/PID/uid_map and gid_map of a running process (its outside ids as
 * seen from our namespace). */
int vp_userns_from_pid(struct vp_userns *u, pid_t pid);
/* A user namespace file (/proc/PID/ns/user, a bind-mounted nsfs file): a
 * child joins it (setns) and we read the child's maps. -ENOTTY when the
 * file is no user namespace; -EPERM when we may not join it. */
int vp_userns_from_nsfile(struct vp_userns *u, const char *path);
/* SPEC as --userns takes it: user:NAME, pid:PID, or a path to a user
 * namespace file. Sets u->spec. */
int vp_userns_from_spec(struct vp_userns *u, const char *spec);

/* The map the command line asks for: --userns SPEC (may be NULL), or the
 * --uid-map / --gid-map ranges (as Podman: with --uid-map only, the gid map
 * is the same; --gid-map alone is refused). --userns with a map is refused. On failure *u is unchanged and
 * why holds one sentence. With nothing given, *u stays empty. */
int vp_userns_build(struct vp_userns *u, const char *spec, char *const *uid_maps, size_t n_uid,
                    char *const *gid_maps, size_t n_gid, char *why, size_t why_size);

/* The maps of the current process (/proc/self/uid_map, gid_map). */
int vp_userns_self(struct vp_userns *u);
/* Is the current process in the initial user namespace? 1 yes, 0 no, or
 * -errno when /proc cannot tell. (The initial namespace maps every id to
 * itself: "0 0 4294967295".) */
int vp_userns_is_initial(void);

/* Translate every id of a policy (owner, --map both sides, --map-gid,
 * --fsgroup, --grant, --revoke) from container to host ids, in place. On
 * -ERANGE nothing was changed and why holds one sentence naming the option
 * and the id. */
int vp_userns_translate_policy(const struct vp_userns *u, struct vp_policy *p, char *why,
                               size_t why_size);

/* The policy's one-line description (as vp_policy_describe) for a
 * translated policy: every id as "CONTAINER (host HOST)", e.g.
 * "owner 1001:1001 (host 101000:101000)". *ret is malloc()ed. */
int vp_userns_describe(const struct vp_userns *u, const struct vp_policy *host, char **ret);

/* What the map was built from, for a sentence: the --userns SPEC quoted
 * (vp_quote_shell_buf: it may be a path), "--uid-map" or
 * "--uid-map/--gid-map" as they are, fallback when there is no spec.
 * Returns buf or a static string. */
const char *vp_userns_name(const struct vp_userns *u, char *buf, size_t size,
                           const char *fallback);

/* The uid and gid map as text: "uid C:H:N[,C:H:N...]; gid ..." (one line). */
int vp_userns_format(const struct vp_userns *u, FILE *f);

#endif
