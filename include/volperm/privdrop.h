/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_PRIVDROP_H
#define VOLPERM_PRIVDROP_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "volperm/idspec.h"

/* `volperm exec`: after the volume is fixed, become the app user for good
 * and exec the app (the replacement for `chown -R ... && exec gosu app ...`
 * entrypoints). */

struct vp_exec_user {
	uid_t uid;
	gid_t gid;
	gid_t groups[64];   /* supplementary groups */
	size_t n_groups;
	char home[512];     /* "" when no passwd entry names a home */
};

/* Fill *u for uid:gid: supplementary groups and home from the passwd/group
 * files in db (or the local database), when the uid has an entry there;
 * none otherwise. 0 or -errno. */
/* Can this process become uid:gid for good? Setting the gid (and the
 * groups) needs CAP_SETGID; a uid other than ours needs CAP_SETUID. 0, or
 * -EPERM with *missing the first capability lacking (CAP_SETGID first: it is
 * needed whatever the uid). Checked before anything is fixed, so that exec
 * never changes a volume it then cannot hand over. */
int vp_exec_can_become(uid_t uid, gid_t gid, int *missing);

int vp_exec_user_lookup(const struct vp_iddb *db, uid_t uid, gid_t gid, struct vp_exec_user *u);

/* The signal set-up the app must get back: execve() keeps ignored signals
 * ignored and the mask as it is, so volperm's own SIGPIPE=SIG_IGN (and any
 * signal it blocked) would leak into the app. */
struct vp_exec_signals {
	size_t n;
	int signo[8];
	struct sigaction action[8]; /* each one as volperm found it */
	sigset_t mask;              /* the mask volperm was started with */
};

/* Drop every privilege and exec argv[0] (searched in PATH) with the
 * environment intact (HOME set from the passwd entry if there is one):
 * setgroups, setresgid, setresuid, check that root cannot be regained,
 * PR_SET_NO_NEW_PRIVS; then, last, put back sig (if not NULL). Returns only
 * on failure: -errno, with why set to one sentence. */
int vp_exec_as(const struct vp_exec_user *u, char *const argv[], const struct vp_exec_signals *sig,
               char *why, size_t why_len);

#endif
