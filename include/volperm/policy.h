/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_POLICY_H
#define VOLPERM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The target policy: what every entry should look like, and the scope of the
 * walk. Built by the CLI, serialised into the journal header, and read back
 * by `recover --forward`. The policy owns every pointer it holds. */

struct vp_idmap {
	uint32_t from, to;
};

struct vp_policy {
	bool has_uid, has_gid;
	uid_t uid;
	gid_t gid;
	struct vp_idmap *uid_maps;
	size_t n_uid_maps;
	struct vp_idmap *gid_maps;
	size_t n_gid_maps;
	char **excludes;            /* fnmatch(3) globs */
	size_t n_excludes;
	bool cross_mounts;          /* enter nested mounts */
	bool include_devices;       /* change device nodes too */
	bool allow_external_links;  /* change files whose hard links leave the tree */
};

void vp_policy_init(struct vp_policy *p);
void vp_policy_free(struct vp_policy *p);

/* True when the policy can change nothing (no owner, no map). */
bool vp_policy_is_empty(const struct vp_policy *p);

/* Append helpers; -ENOMEM on failure, the policy is unchanged then. */
int vp_policy_add_uid_map(struct vp_policy *p, uint32_t from, uint32_t to);
int vp_policy_add_gid_map(struct vp_policy *p, uint32_t from, uint32_t to);
int vp_policy_add_exclude(struct vp_policy *p, const char *glob);

/* An exclude glob without '/' matches an entry's name at any depth; one with
 * '/' matches the whole path relative to the root (FNM_PATHNAME). Both use
 * FNM_PERIOD: a leading '.' must be matched explicitly, as in the shell. */
bool vp_policy_excluded(const struct vp_policy *p, const char *relpath, const char *name);

/* Serialise as "key value\n" lines (values %XX-escaped) for the journal
 * header. *ret is malloc()ed; the caller frees it. */
int vp_policy_to_text(const struct vp_policy *p, char **ret, size_t *ret_len);
/* Parse what vp_policy_to_text() wrote. On success *p is initialised and
 * owned by the caller; on failure *p is untouched. -EBADMSG on bad text
 * (ids are parsed as strictly as on the command line), -EPROTO on a key this
 * version does not know (a newer volperm wrote it). */
int vp_policy_from_text(const char *text, size_t len, struct vp_policy *p);

/* Human one-line description, e.g. "owner 1001:1001, map uid 1000->1001". */
int vp_policy_describe(const struct vp_policy *p, char **ret);

#endif
