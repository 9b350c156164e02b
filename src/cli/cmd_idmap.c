/* SPDX-License-Identifier: GPL-2.0-or-later */
/* idmap (docs/volperm.1, IDMAPPED MOUNTS): the mapping is idmap.c's; this
 * checks SRC and DST and says what happened. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "volperm/idmap.h"

#include "cli.h"

/* SRC or DST of idmap: a directory named by no symlink, and no system path
 * (an idmapped mount on /usr would shadow it). Pinned as an O_PATH fd; the
 * resolved path (of the fd, so of what was checked) goes in *resolved. */
static int open_idmap_dir(const struct cli_opts *o, const char *arg, const char *role, int *fd,
                          char **resolved)
{
	struct qpath q1, q2;
	int r = vp_idmap_dir_open(arg, o->allow_system_path, fd, resolved);

	switch (r) {
	case 0:
		return 0;
	case -ELOOP:
		cli_error("%s %s is a symbolic link; refusing it (give the real directory)", role, qp(&q1, arg));
		break;
	case -ENOTDIR:
		cli_error("%s %s is not a directory", role, qp(&q1, arg));
		break;
	case -EPERM:
		cli_error("%s %s%s%s is a system path; refusing it (use --allow-system-path if you really mean it)",
		          role, qp(&q1, arg), strcmp(arg, *resolved) ? " resolves to " : "",
		          strcmp(arg, *resolved) ? qp(&q2, *resolved) : "");
		break;
	default:
		cli_error("%s %s: %s", role, qp(&q1, arg), strerror(-r));
	}
	return -1;
}

/* A word of a systemd unit line, quoted for it: specifiers (%) and, on Exec
 * lines, variables ($) doubled; control characters have no safe form. */
static int unit_word(FILE *f, const char *w, bool exec)
{
	for (const char *p = w; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -1;
	fputc('"', f);
	for (const char *p = w; *p; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', f);
		else if (*p == '%' || (exec && *p == '$'))
			fputc(*p, f);
		fputc(*p, f);
	}
	fputc('"', f);
	return 0;
}

/* The maps of one run: --map/--map-gid as given, or those --owner stands
 * for on this SRC (vp_idmap_owner), with the kernel's map texts. */
struct run_maps {
	const struct vp_idmap *um, *gm;
	size_t nu, ng;
	bool from_owner;
	struct vp_idmap_owner own;
	char uid_map[VP_IDMAP_TEXT_MAX], gid_map[VP_IDMAP_TEXT_MAX];
};

/* A path as an fstab(5) field: blanks, newlines and backslashes in octal
 * (libmount unmangles them); control characters were refused already. */
static void fstab_word(FILE *f, const char *w)
{
	for (const char *p = w; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\\')
			fprintf(f, "\\%03o", (unsigned char)*p);
		else
			fputc(*p, f);
}

/* The comment after the unit: the same mount as an fstab line, and whether
 * this host's mount(8) can read it (X-mount.idmap came with util-linux
 * 2.39; Debian 12 has 2.38). */
static void print_fstab(const struct cli_opts *o, const char *src, const char *dst,
                        const struct run_maps *rm)
{
	size_t len = 4 * VP_IDMAP_TEXT_MAX;
	char *opt = malloc(len), ver[256];
	unsigned major = 0, minor = 0;
	int r;

	printf("\n# The same mount as an /etc/fstab line (util-linux 2.39 or later: X-mount.idmap):\n");
	if (!opt || vp_idmap_fstab_option(rm->uid_map, rm->gid_map, opt, len) < 0) {
		printf("# (none: the map is too long for one line)\n");
		free(opt);
		return;
	}
	printf("# ");
	fstab_word(stdout, src);
	putchar(' ');
	fstab_word(stdout, dst);
	printf(" none %s%s,%s 0 0\n", o->cross_mounts ? "rbind" : "bind", o->read_only ? ",ro" : "", opt);
	free(opt);
	r = vp_mount_version(ver, sizeof(ver));
	if (r == 0)
		r = vp_idmap_mount_takes_idmap(ver, &major, &minor);
	if (r == 1)
		printf("# This host's mount(8) is util-linux %u.%u, which takes it.\n", major, minor);
	else if (r == 0)
		printf("# This host's mount(8) is util-linux %u.%u, which has no X-mount.idmap (Debian 12's 2.38 lacks it): use the unit.\n",
		       major, minor);
	else
		printf("# This host's mount(8) version is unknown (%s); X-mount.idmap needs util-linux 2.39 or later (Debian 12's 2.38 lacks it).\n",
		       r == -EINVAL ? "mount --version names no util-linux" : strerror(-r));
}

static int print_unit(const struct cli_opts *o, const char *src, const char *dst, const struct run_maps *rm)
{
	char *self = realpath("/proc/self/exe", NULL);
	struct qpath q, q2;
	int bad = 0;

	printf("# volperm idmap: %s appears on %s with its owners mapped (nothing on disk changes)\n[Unit]\nDescription=volperm idmapped mount on ",
	       src, dst);
	bad |= unit_word(stdout, dst, false);
	printf("\nRequiresMountsFor=");
	bad |= unit_word(stdout, src, false);
	putchar(' ');
	bad |= unit_word(stdout, dst, false);
	printf("\nBefore=docker.service podman.service containerd.service\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=");
	bad |= unit_word(stdout, self ? self : "volperm", true);
	printf(" idmap");
	/* --owner is written as the maps it stood for when the unit was
	 * printed: the unit then mounts in constant time at every boot, and
	 * the same mapping, instead of walking SRC again. */
	for (int k = 0; k < 2; k++) {
		const struct vp_idmap *m = k ? rm->gm : rm->um;
		size_t n = k ? rm->ng : rm->nu;
		for (size_t i = 0; i < n; i++)
			printf(" %s %u:%u", k ? "--map-gid" : "--map", m[i].from, m[i].to);
	}
	printf("%s%s%s ", o->read_only ? " --read-only" : "", o->cross_mounts ? " --cross-mounts" : "",
	       o->allow_system_path ? " --allow-system-path" : "");
	bad |= unit_word(stdout, src, true);
	putchar(' ');
	bad |= unit_word(stdout, dst, true);
	printf("\nExecStop=");
	bad |= unit_word(stdout, self ? self : "volperm", true);
	printf(" idmap --undo ");
	bad |= unit_word(stdout, dst, true);
	printf("\n\n[Install]\nWantedBy=multi-user.target\n");
	free(self);
	if (bad) {
		cli_error("%s or %s holds a control character, which a systemd unit cannot name; rename it first",
		          qp(&q, src), qp(&q2, dst));
		return VP_EXIT_USAGE;
	}
	print_fstab(o, src, dst, rm);
	return VP_EXIT_OK;
}

/* --map/--map-gid as the kernel's map text, refused unless one-to-one. */
static int idmap_text(const char *opt, const struct vp_idmap *m, size_t n, char *buf, size_t len)
{
	uint32_t a, b;

	if (vp_idmap_check(m, n, &a, &b) < 0) {
		if (a == b)
			value_error("%s gives %u two new ids; an idmapped mount maps each id to one id", opt, a);
		else
			value_error("%s maps both %u and %u to the same id; an idmapped mount must be one-to-one", opt, a, b);
		return -1;
	}
	if (vp_idmap_format(m, n, buf, len) < 0) {
		value_error("too many %s pairs: the kernel takes at most %d lines of mapping", opt, 340);
		return -1;
	}
	return 0;
}

static void idmap_census_print(const char *kind, const struct vp_idcount *v, size_t nv,
                               const struct vp_idmap *m, size_t n, uint64_t *same, uint64_t *lost)
{
	for (size_t i = 0; i < nv; i++) {
		uint32_t shown;
		bool ok = vp_idmap_show(m, n, v[i].id, &shown);
		printf("%s %u -> %u: %llu entr%s%s\n", kind, v[i].id, shown, (unsigned long long)v[i].n,
		       v[i].n == 1 ? "y" : "ies",
		       !ok ? " (unmapped: the id is another's NEW; cannot be changed through DST)"
		       : shown == v[i].id ? " (as on disk)" : "");
		if (!ok)
			*lost += v[i].n;
		else if (shown == v[i].id)
			*same += v[i].n;
	}
}

/* "uid 1000: 5 entries, uid 1001: 5 entries, uid 33: 2 entries, ...": the
 * most common ids of a census, for a one-sentence refusal. */
static const char *top_ids(char *buf, size_t len, const char *kind, const struct vp_idcount *v, size_t n)
{
	struct vp_idcount top[3];
	size_t k = vp_idcount_top(v, n, top, 3), used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < k && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s %u: %llu entr%s", i ? ", " : "", kind, top[i].id,
		                 (unsigned long long)top[i].n, top[i].n == 1 ? "y" : "ies");
		used += w > 0 ? (size_t)w : 0;
	}
	if (n > k && used < len)
		snprintf(buf + used, len - used, ", ...");
	return buf;
}

/* --owner as typed: UID:GID, UID, or :GID. */
static const char *owner_text(char *buf, size_t len, const struct vp_policy *p)
{
	if (p->has_uid && p->has_gid)
		snprintf(buf, len, "%u:%u", (unsigned)p->uid, (unsigned)p->gid);
	else if (p->has_uid)
		snprintf(buf, len, "%u", (unsigned)p->uid);
	else
		snprintf(buf, len, ":%u", (unsigned)p->gid);
	return buf;
}

/* "--map 1000:1001 --map-gid 1000:1001": the maps of --owner. */
static const char *owner_maps_text(char *buf, size_t len, const struct vp_idmap_owner *w)
{
	size_t used = 0;

	buf[0] = '\0';
	if (w->n_uid_maps)
		used = (size_t)snprintf(buf, len, "--map %u:%u", w->uid_map.from, w->uid_map.to);
	if (w->n_gid_maps && used < len)
		snprintf(buf + used, len - used, "%s--map-gid %u:%u", used ? " " : "", w->gid_map.from,
		         w->gid_map.to);
	return buf;
}

/* --map/--map-gid as given, as the run's maps: 0, or -1 (said). */
static int maps_given(const struct cli_opts *o, struct run_maps *rm)
{
	rm->um = o->policy.uid_maps;
	rm->nu = o->policy.n_uid_maps;
	rm->gm = o->policy.gid_maps;
	rm->ng = o->policy.n_gid_maps;
	if (idmap_text("--map", rm->um, rm->nu, rm->uid_map, sizeof(rm->uid_map)) < 0 ||
	    idmap_text("--map-gid", rm->gm, rm->ng, rm->gid_map, sizeof(rm->gid_map)) < 0)
		return -1;
	return 0;
}

/* --owner as the run's maps, decided on the census c by vp_idmap_owner():
 * 0 when it is one (and said on stdout, after prefix, so the user can write
 * the map down), 1 when it is not (refused in one sentence on stderr; the
 * maps are then the proposal, for a dry run to show), -1 on an error
 * (said). */
static int maps_owner(const struct cli_opts *o, const struct vp_idcensus *c, const char *src,
                      struct run_maps *rm, const char *prefix)
{
	char own[32], maps[96], t1[256], t2[256], why[640];
	struct qpath q;
	int r = vp_idmap_owner(c, o->policy.has_uid, o->policy.uid, o->policy.has_gid, o->policy.gid, &rm->own);

	if (r < 0) {
		cli_error("cannot decide whether --owner is an idmapped mount of %s: %s", qp(&q, src), strerror(-r));
		return -1;
	}
	const struct vp_idmap_owner *w = &rm->own;
	rm->from_owner = true;
	rm->um = &w->uid_map;
	rm->nu = w->n_uid_maps;
	rm->gm = &w->gid_map;
	rm->ng = w->n_gid_maps;
	/* One pair a side: one-to-one, and far below the kernel's limits. */
	if (vp_idmap_format(rm->um, rm->nu, rm->uid_map, sizeof(rm->uid_map)) < 0 ||
	    vp_idmap_format(rm->gm, rm->ng, rm->gid_map, sizeof(rm->gid_map)) < 0) {
		cli_error("cannot format the map of --owner: %s", strerror(ENOMEM));
		return -1;
	}
	owner_text(own, sizeof(own), &o->policy);
	owner_maps_text(maps, sizeof(maps), w);
	if (w->expressible) {
		char disk[48];
		if (w->n_uid_maps && w->n_gid_maps)
			snprintf(disk, sizeof(disk), "owned by %u:%u", w->uid_map.from, w->gid_map.from);
		else if (w->n_uid_maps)
			snprintf(disk, sizeof(disk), "owned by uid %u", w->uid_map.from);
		else
			snprintf(disk, sizeof(disk), "of group %u", w->gid_map.from);
		printf("%s--owner %s stands for %s on %s: every entry is %s on disk (write the map down to make the same mount again)\n",
		       prefix, own, maps, qp(&q, src), disk);
		return 0;
	}
	if (w->many_uids && w->many_gids)
		snprintf(why, sizeof(why), "it has %zu owners (%s) and %zu groups (%s)", c->n_uids,
		         top_ids(t1, sizeof(t1), "uid", c->uids, c->n_uids), c->n_gids,
		         top_ids(t2, sizeof(t2), "gid", c->gids, c->n_gids));
	else if (w->many_uids)
		snprintf(why, sizeof(why), "it has %zu owners (%s)", c->n_uids,
		         top_ids(t1, sizeof(t1), "uid", c->uids, c->n_uids));
	else if (w->many_gids)
		snprintf(why, sizeof(why), "it has %zu groups (%s)", c->n_gids,
		         top_ids(t2, sizeof(t2), "gid", c->gids, c->n_gids));
	else
		snprintf(why, sizeof(why), "%llu of its entries could not be read (first: %s), so their owners are unknown",
		         (unsigned long long)c->errors, strerror(c->first_error));
	cli_error("--owner %s is no idmapped mount of %s: %s, and a map gives each on-disk id one id; for the most common %s it would be %s (or chown every entry with volperm apply --owner %s); nothing was mounted",
	          own, qp(&q, src), why,
	          w->n_uid_maps && w->n_gid_maps ? "owner and group" : w->n_uid_maps ? "owner" : "group",
	          maps, own);
	return 1;
}

/* idmap --dry-run, and plan --idmap (dst NULL): what an idmapped mount of
 * src would show, whether its filesystem takes one (probed on a detached
 * clone that is never attached) and what chown would cost instead. rm holds
 * the given maps, or nothing yet for --owner. Mounts nothing; the exit
 * status is 0 when an idmapped mount would do, else 2. */
static int idmap_report(const struct cli_opts *o, int sfd, const char *src, const char *dst,
                        struct run_maps *rm)
{
	struct vp_idcensus c;
	struct qpath q1, q2;
	char why[512] = "", own[32], maps[96];
	uint64_t same = 0, lost = 0, gsame = 0, glost = 0, asame = 0, alost = 0, an = 0;
	int r, ns, tree = -1, owner = 0;

	r = vp_idmap_census(sfd, o->cross_mounts, &c);
	if (r < 0) {
		cli_error("cannot walk %s: %s", qp(&q1, src), strerror(-r));
		return VP_EXIT_USAGE;
	}
	printf("idmap plan: %s%s%s\n", qp(&q1, src), dst ? " on " : "", dst ? qp(&q2, dst) : "");
	if ((o->policy.has_uid || o->policy.has_gid) && (owner = maps_owner(o, &c, src, rm, "")) < 0) {
		vp_idcensus_free(&c);
		return VP_EXIT_USAGE;
	}
	if (owner == 1) {
		printf("--owner %s: no idmapped mount, %s on disk; below, the maps for the most common: %s\n",
		       owner_text(own, sizeof(own), &o->policy),
		       rm->own.many_uids ? "more than one owner" : rm->own.many_gids ? "more than one group"
		                                                  : "entries that could not be read",
		       owner_maps_text(maps, sizeof(maps), &rm->own));
		snprintf(why, sizeof(why), "%s", rm->own.many_uids ? "--owner needs one owner on disk, there are more"
		                                 : rm->own.many_gids ? "--owner needs one group on disk, there are more"
		                                                     : "the owners of unreadable entries are unknown");
	}
	ns = vp_idmap_userns(rm->uid_map, rm->gid_map);
	if (ns >= 0) {
		tree = vp_idmap_clone(sfd, o->cross_mounts, ns, o->read_only);
		close(ns);
	}
	bool supported = tree >= 0;
	if (tree >= 0)
		close(tree); /* never attached: closing it drops it */
	else if (ns < 0)
		cli_error("cannot make the user namespace for the mapping: %s", strerror(-ns));
	else if (tree == -EINVAL)
		cli_error("the filesystem of %s%s does not support idmapped mounts (FUSE, overlayfs and NFS do not); nothing was mounted (use volperm apply to chown instead)",
		          qp(&q1, src), o->cross_mounts ? ", or of a mount below it," : "");
	else
		cli_error("cannot make an idmapped clone of %s: %s; nothing was mounted", qp(&q1, src), strerror(-tree));

	idmap_census_print("uid", c.uids, c.n_uids, rm->um, rm->nu, &same, &lost);
	idmap_census_print("gid", c.gids, c.n_gids, rm->gm, rm->ng, &gsame, &glost);
	idmap_census_print("acl user", c.acl_uids, c.n_acl_uids, rm->um, rm->nu, &asame, &alost);
	idmap_census_print("acl group", c.acl_gids, c.n_acl_gids, rm->gm, rm->ng, &asame, &alost);
	for (size_t i = 0; i < c.n_acl_uids; i++)
		an += c.acl_uids[i].n;
	for (size_t i = 0; i < c.n_acl_gids; i++)
		an += c.acl_gids[i].n;
	printf("entries: %llu; uids left as on disk: %llu, gids: %llu; unmapped (show as 65534): %llu uids, %llu gids\n",
	       (unsigned long long)c.entries, (unsigned long long)same, (unsigned long long)gsame,
	       (unsigned long long)lost, (unsigned long long)glost);
	printf("named ACL entries: %llu; appear mapped: %llu; left as on disk: %llu; unmapped (show as 65534): %llu\n",
	       (unsigned long long)an, (unsigned long long)(an - asame - alost), (unsigned long long)asame,
	       (unsigned long long)alost);
	if (c.errors)
		printf("unreadable: %llu entries (first: %s)\n", (unsigned long long)c.errors, strerror(c.first_error));
	if (ns < 0)
		snprintf(why + strlen(why), sizeof(why) - strlen(why), "%scannot make the user namespace: %s",
		         *why ? "; " : "", strerror(-ns));
	else if (tree == -EINVAL)
		snprintf(why + strlen(why), sizeof(why) - strlen(why), "%sthe filesystem does not support idmapped mounts",
		         *why ? "; " : "");
	else if (tree < 0)
		snprintf(why + strlen(why), sizeof(why) - strlen(why), "%scannot make an idmapped clone: %s",
		         *why ? "; " : "", strerror(-tree));
	printf("idmapped mount: %s\n", supported ? "supported (probed on a detached clone)"
	                                         : "NOT supported by this filesystem");
	/* The comparison the plan is for: what chown would write (the policy
	 * as apply reads it: --owner, or the maps) against one mount. */
	printf("chown: %llu entries to write; idmap: one mount (%s%s)\n",
	       (unsigned long long)vp_idmap_chown_cost(&c, &o->policy), *why ? "not supported: " : "supported",
	       why);
	r = supported && owner == 0 && !c.errors ? VP_EXIT_OK : VP_EXIT_USAGE;
	vp_idcensus_free(&c);
	return r;
}

static int idmap_undo(const char *arg)
{
	struct qpath q;
	int fd, r, ex = VP_EXIT_USAGE;

	fd = open(arg, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		struct stat st;
		int e = errno;
		if (lstat(arg, &st) == 0 && S_ISLNK(st.st_mode))
			cli_error("DST %s is a symbolic link; refusing it (give the real mount point)", qp(&q, arg));
		else
			cli_error("DST %s: %s", qp(&q, arg), strerror(e));
		return ex;
	}
	r = vp_idmap_is_idmapped_root(fd);
	if (r == -ENOTCONN)
		cli_error("%s is not a mount point; nothing to undo", qp(&q, arg));
	else if (r == -EMEDIUMTYPE)
		cli_error("%s is a mount but not an idmapped one; refusing to unmount it (volperm only undoes idmapped mounts)", qp(&q, arg));
	else if (r < 0)
		cli_error("cannot tell whether %s is an idmapped mount: %s; leaving it", qp(&q, arg), strerror(-r));
	else if ((r = vp_idmap_detach(fd)) < 0)
		cli_error("cannot unmount %s: %s", qp(&q, arg), strerror(-r));
	else
		ex = VP_EXIT_OK;
	close(fd);
	return ex;
}

/* An option that no idmap (and no plan --idmap) takes. */
static bool foreign_option(const struct cli_opts *o)
{
	struct vp_policy rest = o->policy;

	rest.n_uid_maps = rest.n_gid_maps = 0;
	rest.has_uid = rest.has_gid = false;
	return !vp_policy_is_empty(&rest) || rest.n_excludes || rest.on_root_mismatch ||
	       o->fsgroup_policy || o->journal_dir || o->journal || o->no_journal || o->keep_going ||
	       o->recover || o->force || o->forward || o->format || o->user || o->allow_root ||
	       o->json || o->list || o->jobs_text || o->include_devices || o->allow_external_links ||
	       o->progress;
}

static bool has_owner(const struct cli_opts *o)
{
	return o->policy.has_uid || o->policy.has_gid;
}

/* --owner is a map of its own: with --map it would be two policies. */
static int owner_and_maps(const struct cli_opts *o)
{
	if (has_owner(o) && (o->policy.n_uid_maps || o->policy.n_gid_maps)) {
		usage_error("--owner stands for a map of its own: give --owner or --map/--map-gid, not both");
		return -1;
	}
	return 0;
}

int cmd_idmap(const struct cli_opts *o)
{
	char *const *args = o->args;
	int nargs = o->nargs;
	struct run_maps *rm = NULL;
	char *src = NULL, *dst = NULL;
	int sfd = -1, dfd = -1, ns = -1, tree = -1, ex = VP_EXIT_USAGE;
	struct qpath q1, q2;

	if (foreign_option(o) || o->idmap_plan ||
	    (o->idmap_undo && (o->idmap_dry_run || o->print_unit || o->read_only || o->cross_mounts ||
	                      o->policy.n_uid_maps || o->policy.n_gid_maps || has_owner(o))) ||
	    (o->idmap_dry_run && o->print_unit)) {
		usage_error("an option was given that 'idmap%s' does not take", o->idmap_undo ? " --undo" : "");
		return VP_EXIT_USAGE;
	}
	if (owner_and_maps(o) < 0)
		return VP_EXIT_USAGE;
	if (nargs != (o->idmap_undo ? 1 : 2)) {
		usage_error(o->idmap_undo ? "idmap --undo takes one DST" : "idmap takes SRC and DST");
		return VP_EXIT_USAGE;
	}
	if (o->idmap_undo)
		return idmap_undo(args[0]);
	if (!(rm = calloc(1, sizeof(*rm)))) {
		cli_error("%s", strerror(ENOMEM));
		return VP_EXIT_USAGE;
	}
	if (!has_owner(o) && maps_given(o, rm) < 0)
		goto out;
	if (open_idmap_dir(o, args[0], "SRC", &sfd, &src) < 0 ||
	    open_idmap_dir(o, args[1], "DST", &dfd, &dst) < 0)
		goto out;
	if (o->idmap_dry_run) {
		ex = idmap_report(o, sfd, src, dst, rm);
		goto out;
	}
	if (!o->print_unit) {
		int r = vp_idmap_dst_empty(dfd);
		if (r == -ENOTEMPTY) {
			cli_error("DST %s is not empty; refusing to mount over its files (give an empty directory)", qp(&q1, dst));
			goto out;
		}
		if (r < 0) {
			cli_error("DST %s: %s", qp(&q1, dst), strerror(-r));
			goto out;
		}
	}
	if (has_owner(o)) {
		/* --owner is a map only on a tree with one owner: that takes
		 * a walk, the one per-entry cost of this command. */
		struct vp_idcensus c;
		int r = vp_idmap_census(sfd, o->cross_mounts, &c);
		if (r < 0) {
			cli_error("cannot walk %s: %s", qp(&q1, src), strerror(-r));
			goto out;
		}
		r = maps_owner(o, &c, src, rm, o->print_unit ? "# " : "");
		vp_idcensus_free(&c);
		if (r != 0)
			goto out;
	}
	if (o->print_unit) {
		ex = print_unit(o, src, dst, rm);
		goto out;
	}
	ns = vp_idmap_userns(rm->uid_map, rm->gid_map);
	if (ns < 0) {
		cli_error("cannot make the user namespace for the mapping: %s", strerror(-ns));
		goto out;
	}
	tree = vp_idmap_clone(sfd, o->cross_mounts, ns, o->read_only);
	if (tree == -EINVAL)
		cli_error("the filesystem of %s%s does not support idmapped mounts (FUSE, overlayfs and NFS do not); nothing was mounted (use volperm apply to chown instead)",
		          qp(&q1, src), o->cross_mounts ? ", or of a mount below it," : "");
	else if (tree < 0)
		cli_error("cannot make an idmapped clone of %s: %s; nothing was mounted", qp(&q1, src), strerror(-tree));
	if (tree < 0)
		goto out;
	int r = vp_idmap_attach(tree, dfd);
	if (r < 0) {
		cli_error("cannot mount the idmapped clone of %s on %s: %s; nothing was mounted",
		          qp(&q1, src), qp(&q2, dst), strerror(-r));
		goto out;
	}
	ex = VP_EXIT_OK;
out:
	if (tree >= 0)
		close(tree);
	if (ns >= 0)
		close(ns);
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	free(src);
	free(dst);
	free(rm);
	return ex;
}

int cmd_plan_idmap(const struct cli_opts *o)
{
	struct run_maps *rm = NULL;
	char *path = NULL;
	int fd = -1, ex = VP_EXIT_USAGE;

	if (foreign_option(o) || o->idmap_undo || o->idmap_dry_run || o->print_unit || o->read_only ||
	    o->if_root_mismatch) {
		usage_error("an option was given that 'plan --idmap' does not take");
		return VP_EXIT_USAGE;
	}
	if (owner_and_maps(o) < 0)
		return VP_EXIT_USAGE;
	if (o->nargs != 1) {
		usage_error(o->nargs ? "too many arguments: plan --idmap takes one PATH" : "missing PATH");
		return VP_EXIT_USAGE;
	}
	if (!(rm = calloc(1, sizeof(*rm)))) {
		cli_error("%s", strerror(ENOMEM));
		return VP_EXIT_USAGE;
	}
	if ((has_owner(o) || maps_given(o, rm) == 0) && open_idmap_dir(o, o->args[0], "PATH", &fd, &path) == 0)
		ex = idmap_report(o, fd, path, NULL, rm);
	if (fd >= 0)
		close(fd);
	free(path);
	free(rm);
	return ex;
}
