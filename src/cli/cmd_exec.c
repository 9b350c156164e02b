/* SPDX-License-Identifier: GPL-2.0-or-later */
/* exec (docs/volperm.1): fix the volumes, then become the app user. */
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "volperm/idspec.h"

#include "cli.h"

/* exec: apply to every PATH, then become --user and run CMD. Any exit other
 * than 0 from the fix keeps the app from starting, as with an init
 * container. */
int cmd_exec(const struct cli_opts *o)
{
	char *const *paths = o->args, **cmd = o->exec_cmd;
	int npaths = o->nargs;
	struct vp_iddb db = { o->passwd_file, o->group_file };
	struct vp_exec_user u;
	struct vp_owner ow;
	char why[256];
	int r, ex;

	if (!o->user || vp_parse_owner_db(&db, o->user, &ow) < 0 || !ow.has_uid || !ow.has_gid) {
		usage_error("exec needs --user UID:GID (numeric, or names from --passwd/--group-file)");
		return VP_EXIT_USAGE;
	}
	if (ow.uid == 0 && !o->allow_root) {
		usage_error("exec refuses to run the command as root; use --allow-root if you mean it");
		return VP_EXIT_USAGE;
	}
	if (!vp_userns_empty(&o->userns)) {
		/* --user is the container's too: run CMD as its host ids. */
		uint32_t hu, hg;
		struct qpath q;
		if (vp_userns_to_host(&o->userns, false, ow.uid, &hu) < 0 ||
		    vp_userns_to_host(&o->userns, true, ow.gid, &hg) < 0) {
			value_error("exec --user %u:%u is outside the user namespace map of %s, so in the container it would be nobody (65534)",
			            (unsigned)ow.uid, (unsigned)ow.gid,
			            vp_userns_name(&o->userns, q.s, sizeof(q.s), "--uid-map"));
			return VP_EXIT_USAGE;
		}
		ow.uid = hu;
		ow.gid = hg;
	}
	if (!cmd || !cmd[0]) {
		usage_error("exec needs a command after --");
		return VP_EXIT_USAGE;
	}
	if (npaths < 1) {
		usage_error("exec needs at least one PATH to fix before --");
		return VP_EXIT_USAGE;
	}
	/* Refuse before fixing anything if the switch to the user cannot work. */
	int missing;
	if (vp_exec_can_become(ow.uid, ow.gid, &missing) < 0) {
		cli_error("exec needs the CAP_SETUID and CAP_SETGID capabilities to become %u:%u and this process lacks %s; nothing was changed",
		          (unsigned)ow.uid, (unsigned)ow.gid,
		          missing == CAP_SETGID ? "CAP_SETGID" : "CAP_SETUID");
		return VP_EXIT_USAGE;
	}
	r = vp_exec_user_lookup(&db, ow.uid, ow.gid, &u);
	if (r < 0) {
		cli_error("cannot read the passwd or group file: %s", strerror(-r));
		return VP_EXIT_USAGE;
	}
	if (!vp_policy_is_empty(&o->policy))
		for (int i = 0; i < npaths; i++) {
			ex = cmd_run(o, VP_CMD_APPLY, "apply", paths[i]);
			if (ex != VP_EXIT_OK)
				return ex;
		}
	/* The app gets our output streams as they are: a failure of ours is
	 * said now, and is no reason to keep the app from starting. */
	ex = cli_finish_stdout(VP_EXIT_OK);
	(void)ex;
	fflush(NULL);
	/* A stop signal from now on is the app's to take (its default action
	 * once vp_exec_as restores the inherited dispositions and mask); one
	 * that came during the fix keeps the app from starting. */
	sigset_t stop, old;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	(void)sigprocmask(SIG_BLOCK, &stop, &old);
	if (vp_cancel_count(&cli_cancel)) {
		(void)sigprocmask(SIG_SETMASK, &old, NULL);
		cli_error("interrupted by %s before starting %s; the volumes are fixed, the command was not run",
		          vp_cancel_name(&cli_cancel), cmd[0]);
		return VP_EXIT_INTERRUPTED;
	}
	r = vp_exec_as(&u, cmd, &cli_inherited, why, sizeof(why));
	cli_error("%s", why);
	return r == -ENOENT || r == -EACCES ? 127 : VP_EXIT_USAGE;
}
