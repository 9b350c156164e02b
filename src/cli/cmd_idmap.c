/* SPDX-License-Identifier: GPL-2.0-or-later */
/* idmap (docs/volperm.1, IDMAPPED MOUNTS): the mapping is idmap.c's; this
 * checks SRC and DST and says what happened. */
#include <dirent.h>
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
	struct stat st;
	char self[64];

	*fd = open(arg, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0) {
		int e = errno;
		if (lstat(arg, &st) == 0 && S_ISLNK(st.st_mode))
			cli_error("%s %s is a symbolic link; refusing it (give the real directory)", role, qp(&q1, arg));
		else if (e == ENOTDIR && lstat(arg, &st) == 0)
			cli_error("%s %s is not a directory", role, qp(&q1, arg));
		else
			cli_error("%s %s: %s", role, qp(&q1, arg), strerror(e));
		return -1;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", *fd);
	*resolved = realpath(self, NULL);
	if (!*resolved) {
		cli_error("%s %s: %s", role, qp(&q1, arg), strerror(errno));
		return -1;
	}
	if (!o->allow_system_path && vp_is_system_path(*resolved)) {
		cli_error("%s %s%s%s is a system path; refusing it (use --allow-system-path if you really mean it)",
		          role, qp(&q1, arg), strcmp(arg, *resolved) ? " resolves to " : "",
		          strcmp(arg, *resolved) ? qp(&q2, *resolved) : "");
		return -1;
	}
	return 0;
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

static int print_unit(const struct cli_opts *o, const char *src, const char *dst)
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
	for (int k = 0; k < 2; k++) {
		const struct vp_idmap *m = k ? o->policy.gid_maps : o->policy.uid_maps;
		size_t n = k ? o->policy.n_gid_maps : o->policy.n_uid_maps;
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

int cmd_idmap(const struct cli_opts *o)
{
	char *const *args = o->args;
	int nargs = o->nargs;
	struct vp_policy rest = o->policy;
	char uid_map[VP_IDMAP_TEXT_MAX], gid_map[VP_IDMAP_TEXT_MAX];
	char *src = NULL, *dst = NULL;
	int sfd = -1, dfd = -1, ns = -1, tree = -1, ex = VP_EXIT_USAGE;
	struct qpath q1, q2;

	rest.n_uid_maps = rest.n_gid_maps = 0;
	if (!vp_policy_is_empty(&rest) || rest.n_excludes || rest.on_root_mismatch || o->fsgroup_policy ||
	    o->journal_dir || o->journal || o->no_journal || o->keep_going || o->recover || o->force ||
	    o->forward || o->format || o->user || o->allow_root || o->json || o->list || o->jobs_text ||
	    o->include_devices || o->allow_external_links || o->progress ||
	    (o->idmap_undo && (o->idmap_dry_run || o->print_unit || o->read_only || o->cross_mounts ||
	                      o->policy.n_uid_maps || o->policy.n_gid_maps)) ||
	    (o->idmap_dry_run && o->print_unit)) {
		usage_error("an option was given that 'idmap%s' does not take", o->idmap_undo ? " --undo" : "");
		return VP_EXIT_USAGE;
	}
	if (nargs != (o->idmap_undo ? 1 : 2)) {
		usage_error(o->idmap_undo ? "idmap --undo takes one DST" : "idmap takes SRC and DST");
		return VP_EXIT_USAGE;
	}
	if (o->idmap_undo)
		return idmap_undo(args[0]);
	if (idmap_text("--map", o->policy.uid_maps, o->policy.n_uid_maps, uid_map, sizeof(uid_map)) < 0 ||
	    idmap_text("--map-gid", o->policy.gid_maps, o->policy.n_gid_maps, gid_map, sizeof(gid_map)) < 0)
		return VP_EXIT_USAGE;
	if (open_idmap_dir(o, args[0], "SRC", &sfd, &src) < 0 ||
	    open_idmap_dir(o, args[1], "DST", &dfd, &dst) < 0)
		goto out;
	if (o->print_unit) {
		ex = print_unit(o, src, dst);
		goto out;
	}
	if (!o->idmap_dry_run) {
		/* DST must be empty: an idmapped mount over files would hide them. */
		int d = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *dir = d < 0 ? NULL : fdopendir(d);
		struct dirent *de;
		bool empty = true;
		if (!dir) {
			cli_error("DST %s: %s", qp(&q1, dst), strerror(errno));
			if (d >= 0)
				close(d);
			goto out;
		}
		while ((de = readdir(dir)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				empty = false;
		closedir(dir);
		if (!empty) {
			cli_error("DST %s is not empty; refusing to mount over its files (give an empty directory)", qp(&q1, dst));
			goto out;
		}
	}
	ns = vp_idmap_userns(uid_map, gid_map);
	if (ns < 0) {
		cli_error("cannot make the user namespace for the mapping: %s", strerror(-ns));
		goto out;
	}
	tree = vp_idmap_clone(sfd, o->cross_mounts, ns, o->read_only);
	bool supported = tree >= 0;
	if (tree == -EINVAL)
		cli_error("the filesystem of %s%s does not support idmapped mounts (FUSE, overlayfs and NFS do not); nothing was mounted (use volperm apply to chown instead)",
		          qp(&q1, src), o->cross_mounts ? ", or of a mount below it," : "");
	else if (tree < 0)
		cli_error("cannot make an idmapped clone of %s: %s; nothing was mounted", qp(&q1, src), strerror(-tree));
	if (o->idmap_dry_run) {
		/* The probe's clone was never attached: closing it drops it. */
		struct vp_idcensus c;
		uint64_t same = 0, lost = 0, gsame = 0, glost = 0;
		int r = vp_idmap_census(sfd, o->cross_mounts, &c);
		if (r < 0) {
			cli_error("cannot walk %s: %s", qp(&q1, src), strerror(-r));
			goto out;
		}
		printf("idmap plan: %s on %s\n", qp(&q1, src), qp(&q2, dst));
		idmap_census_print("uid", c.uids, c.n_uids, o->policy.uid_maps, o->policy.n_uid_maps, &same, &lost);
		idmap_census_print("gid", c.gids, c.n_gids, o->policy.gid_maps, o->policy.n_gid_maps, &gsame, &glost);
		printf("entries: %llu; uids left as on disk: %llu, gids: %llu; unmapped (show as 65534): %llu uids, %llu gids\n",
		       (unsigned long long)c.entries, (unsigned long long)same, (unsigned long long)gsame,
		       (unsigned long long)lost, (unsigned long long)glost);
		if (c.errors)
			printf("unreadable: %llu entries (first: %s)\n", (unsigned long long)c.errors, strerror(c.first_error));
		printf("idmapped mount: %s; cost: one mount, against %llu entries for chown\n",
		       supported ? "supported (probed on a detached clone)" : "NOT supported by this filesystem",
		       (unsigned long long)(c.entries - same));
		ex = supported && !c.errors ? VP_EXIT_OK : VP_EXIT_USAGE;
		vp_idcensus_free(&c);
		goto out;
	}
	if (!supported)
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
	return ex;
}
