/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Privilege drop and exec for `volperm exec` (see privdrop.h). The order is
 * the classic one: supplementary groups, then the gid, then the uid (after
 * setresuid we could no longer change groups), then prove that the way back
 * to root is closed, then no_new_privs so a setuid binary cannot reopen it. */
#include <errno.h>
#include <linux/capability.h>
#include <grp.h>
#include <signal.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "volperm/caps.h"
#include "volperm/privdrop.h"
#include "volperm/quote.h"

static void add_group(struct vp_exec_user *u, gid_t g)
{
	for (size_t i = 0; i < u->n_groups; i++)
		if (u->groups[i] == g)
			return;
	if (u->n_groups < sizeof(u->groups) / sizeof(u->groups[0]))
		u->groups[u->n_groups++] = g;
}

static bool member(char **mem, const char *name)
{
	for (; mem && *mem; mem++)
		if (strcmp(*mem, name) == 0)
			return true;
	return false;
}

int vp_exec_user_lookup(const struct vp_iddb *db, uid_t uid, gid_t gid, struct vp_exec_user *u)
{
	char name[256] = "";
	struct passwd *pw;
	struct group *gr;
	FILE *f;

#ifdef VOLPERM_STATIC
	/* A static binary has no NSS: the local database is the files. */
	static const struct vp_iddb files = { "/etc/passwd", "/etc/group" };
	if (!db || (!db->passwd_file && !db->group_file))
		db = &files;
#endif
	memset(u, 0, sizeof(*u));
	u->uid = uid;
	u->gid = gid;
	add_group(u, gid);
	if (db && db->passwd_file) {
		f = fopen(db->passwd_file, "re");
		if (!f)
			return -errno;
		while ((pw = fgetpwent(f)))
			if (pw->pw_uid == uid) {
				snprintf(name, sizeof(name), "%s", pw->pw_name);
				snprintf(u->home, sizeof(u->home), "%s", pw->pw_dir);
				break;
			}
		fclose(f);
	} else if ((pw = getpwuid(uid))) {
		snprintf(name, sizeof(name), "%s", pw->pw_name);
		snprintf(u->home, sizeof(u->home), "%s", pw->pw_dir);
	}
	if (!*name)
		return 0; /* an id without an entry: only its own group */
	if (db && db->group_file) {
		f = fopen(db->group_file, "re");
		if (!f)
			return -errno;
		while ((gr = fgetgrent(f)))
			if (member(gr->gr_mem, name))
				add_group(u, gr->gr_gid);
		fclose(f);
	} else if (!(db && db->passwd_file)) {
		gid_t g[64];
		int n = 64;
		if (getgrouplist(name, gid, g, &n) >= 0)
			for (int i = 0; i < n; i++)
				add_group(u, g[i]);
	}
	return 0;
}

int vp_exec_as(const struct vp_exec_user *u, char *const argv[], const struct vp_exec_signals *sig,
               char *why, size_t why_len)
{
	int e;

	if (setgroups(u->n_groups, u->groups) < 0) {
		e = errno;
		snprintf(why, why_len, "cannot set the supplementary groups: %s", strerror(e));
		return -e;
	}
	if (setresgid(u->gid, u->gid, u->gid) < 0 || setresuid(u->uid, u->uid, u->uid) < 0) {
		e = errno;
		snprintf(why, why_len, "cannot become %u:%u: %s", (unsigned)u->uid, (unsigned)u->gid,
		         strerror(e));
		return -e;
	}
	/* If any way back to root were left open, exec-ing the app would hand
	 * it that way. */
	if (u->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(why, why_len, "privileges could be regained after dropping them; refusing to run the command");
		return -EPERM;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		e = errno;
		snprintf(why, why_len, "cannot set no_new_privs: %s", strerror(e));
		return -e;
	}
	if (*u->home && setenv("HOME", u->home, 1) < 0) {
		e = errno;
		snprintf(why, why_len, "cannot set HOME: %s", strerror(e));
		return -e;
	}
	/* Last, so that until here our handlers still record a stop signal
	 * (the caller blocked them; one pending now takes the app's default
	 * action as soon as the mask is restored, before execve). */
	for (size_t i = 0; sig && i < sig->n; i++)
		if (sigaction(sig->signo[i], &sig->action[i], NULL) < 0) {
			e = errno;
			snprintf(why, why_len, "cannot restore signal %d: %s", sig->signo[i], strerror(e));
			return -e;
		}
	if (sig && sigprocmask(SIG_SETMASK, &sig->mask, NULL) < 0) {
		e = errno;
		snprintf(why, why_len, "cannot restore the signal mask: %s", strerror(e));
		return -e;
	}
	execvp(argv[0], argv);
	e = errno;
	char q[1024];
	snprintf(why, why_len, "cannot run %s: %s",
	         vp_quote_shell_buf(q, sizeof(q), argv[0], strlen(argv[0])), strerror(e));
	return -e;
}

int vp_exec_can_become(uid_t uid, gid_t gid, int *missing)
{
	(void)gid; /* any gid, ours included: setgroups() needs CAP_SETGID */
	if (!vp_cap_effective(CAP_SETGID)) {
		*missing = CAP_SETGID;
		return -EPERM;
	}
	if (uid != geteuid() && !vp_cap_effective(CAP_SETUID)) {
		*missing = CAP_SETUID;
		return -EPERM;
	}
	return 0;
}
