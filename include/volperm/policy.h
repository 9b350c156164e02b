/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_POLICY_H
#define VOLPERM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "volperm/acl.h"
#include "volperm/idspec.h"
#include "volperm/modespec.h"

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
	/* Kubernetes fsGroup (kubelet semantics): group = fsgroup; files gain
	 * g+rw (g+r when read-only), directories g+rwx and setgid; bits are only
	 * ever added; symlinks get the group only. */
	bool has_fsgroup;
	gid_t fsgroup;
	bool fsgroup_readonly;
	bool on_root_mismatch;      /* skip the walk when the root already complies */
	char *chmod_text;           /* --chmod as given (NULL if none) */
	struct vp_modeprog chmod;
	bool has_root_mode;
	mode_t root_mode;
	struct vp_grant *grants;    /* --grant */
	size_t n_grants;
	struct vp_grant *revokes;   /* --revoke */
	size_t n_revokes;
	bool cross_mounts;          /* enter nested mounts */
	bool include_devices;       /* change device nodes too */
	bool allow_external_links;  /* change files whose hard links leave the tree */
};

void vp_policy_init(struct vp_policy *p);
void vp_policy_free(struct vp_policy *p);

/* True when the policy can change nothing (no owner, map, fsgroup, mode or
 * ACL edit). */
bool vp_policy_is_empty(const struct vp_policy *p);

/* Append helpers; -ENOMEM on failure, the policy is unchanged then. */
int vp_policy_add_uid_map(struct vp_policy *p, uint32_t from, uint32_t to);
int vp_policy_add_gid_map(struct vp_policy *p, uint32_t from, uint32_t to);
int vp_policy_add_exclude(struct vp_policy *p, const char *glob);
/* --chmod: parse and keep the text (for the journal). -EINVAL if bad. */
int vp_policy_set_chmod(struct vp_policy *p, const char *text);
/* --grant / --revoke: a comma list; appends; names via db (NULL: local). */
int vp_policy_add_grants(struct vp_policy *p, const struct vp_iddb *db, const char *text,
                         bool revoke);
/* Does deciding need the entries' ACL xattrs? */
bool vp_policy_needs_acls(const struct vp_policy *p);

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

/* How vp_policy_describe_ids() prints ids, for a reader who knows them by
 * other numbers (userns.c: container ids with their host ids). id prints
 * one uid (group false) or gid; owner prints what follows "owner " for the
 * target owner pair (p->has_uid/has_gid). */
struct vp_policy_idfmt {
	void (*id)(FILE *f, bool group, uint32_t id, const void *ctx);
	void (*owner)(FILE *f, const struct vp_policy *p, const void *ctx);
	const void *ctx;
};
/* vp_policy_describe() with the ids printed by fmt (NULL: as numbers). */
int vp_policy_describe_ids(const struct vp_policy *p, const struct vp_policy_idfmt *fmt,
                           char **ret);

#endif
