/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Id translation between a user namespace and ours (see userns.h).
 *
 * Rootless Podman and Docker run a container in a user namespace whose ids
 * are the user's own uid (container 0) and the user's subordinate range
 * (container 1..N). A file the app sees as owned by 1001 is owned on disk by
 * subuid start + 1000. volperm writes on-disk ids, so every id the user types
 * for such a container is translated here before the policy is built, and
 * checked against the map: an id outside it would be "nobody" (65534) inside
 * the container. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "volperm/idspec.h"
#include "volperm/quote.h"
#include "volperm/userns.h"

/* Ids are 0..VP_ID_MAX; a range may end on VP_ID_MAX (the initial
 * namespace's "0 0 4294967295" does). */
#define RANGE_END ((uint64_t)VP_ID_MAX + 1)

void vp_userns_free(struct vp_userns *u)
{
	free(u->uid);
	free(u->gid);
	free(u->spec);
	*u = (struct vp_userns)VP_USERNS_INIT;
}

bool vp_userns_empty(const struct vp_userns *u)
{
	return u->n_uid == 0 && u->n_gid == 0;
}

static bool overlap(uint32_t a, uint32_t an, uint32_t b, uint32_t bn)
{
	return (uint64_t)a < (uint64_t)b + bn && (uint64_t)b < (uint64_t)a + an;
}

int vp_userns_add(struct vp_userns *u, bool gid, uint32_t c, uint32_t h, uint32_t n)
{
	struct vp_idrange **v = gid ? &u->gid : &u->uid;
	size_t *nv = gid ? &u->n_gid : &u->n_uid;

	if (n == 0 || (uint64_t)c + n > RANGE_END || (uint64_t)h + n > RANGE_END)
		return -EINVAL;
	/* The kernel refuses overlapping ranges on either side; so do we: a
	 * translation must give one answer both ways. */
	for (size_t i = 0; i < *nv; i++)
		if (overlap(c, n, (*v)[i].c, (*v)[i].n) || overlap(h, n, (*v)[i].h, (*v)[i].n))
			return -EEXIST;
	if (*nv >= VP_USERNS_MAX_RANGES)
		return -E2BIG;
	struct vp_idrange *nr = realloc(*v, (*nv + 1) * sizeof(**v));
	if (!nr)
		return -ENOMEM;
	nr[*nv] = (struct vp_idrange){ c, h, n };
	*v = nr;
	(*nv)++;
	return 0;
}

/* Digits only, value <= max; *end gets the first byte after them. */
static int parse_num(const char *s, const char **end, uint64_t max, uint32_t *ret)
{
	uint64_t v = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > max)
			return -EINVAL;
	}
	*end = p;
	*ret = (uint32_t)v;
	return 0;
}

int vp_userns_parse_range(const char *s, uint32_t *c, uint32_t *h, uint32_t *n)
{
	uint32_t a, b, k;
	const char *p;

	if (parse_num(s, &p, VP_ID_MAX, &a) < 0 || *p != ':' ||
	    parse_num(p + 1, &p, VP_ID_MAX, &b) < 0 || *p != ':' ||
	    parse_num(p + 1, &p, RANGE_END, &k) < 0 || *p)
		return -EINVAL;
	if (k == 0 || (uint64_t)a + k > RANGE_END || (uint64_t)b + k > RANGE_END)
		return -EINVAL;
	*c = a;
	*h = b;
	*n = k;
	return 0;
}

int vp_userns_add_map_text(struct vp_userns *u, bool gid, const char *text)
{
	struct vp_userns tmp = VP_USERNS_INIT;
	const char *p = text;
	int r = 0;

	/* Into a copy first: on failure u is unchanged. */
	for (size_t i = 0; i < (gid ? u->n_gid : u->n_uid); i++) {
		const struct vp_idrange *x = gid ? &u->gid[i] : &u->uid[i];
		r = vp_userns_add(&tmp, gid, x->c, x->h, x->n);
		if (r < 0)
			goto out;
	}
	while (*p) {
		uint32_t v[3];
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		for (int k = 0; k < 3; k++) {
			while (k && (*p == ' ' || *p == '\t'))
				p++;
			r = parse_num(p, &p, k == 2 ? RANGE_END : VP_ID_MAX, &v[k]);
			if (r < 0)
				goto out;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p && *p != '\n') {
			r = -EINVAL;
			goto out;
		}
		r = vp_userns_add(&tmp, gid, v[0], v[1], v[2]);
		if (r < 0)
			goto out;
	}
	if (gid) {
		free(u->gid);
		u->gid = tmp.gid;
		u->n_gid = tmp.n_gid;
		tmp.gid = NULL;
	} else {
		free(u->uid);
		u->uid = tmp.uid;
		u->n_uid = tmp.n_uid;
		tmp.uid = NULL;
	}
out:
	vp_userns_free(&tmp);
	return r;
}

int vp_userns_to_host(const struct vp_userns *u, bool gid, uint32_t id, uint32_t *ret)
{
	const struct vp_idrange *v = gid ? u->gid : u->uid;
	size_t n = gid ? u->n_gid : u->n_uid;

	for (size_t i = 0; i < n; i++)
		if (id >= v[i].c && (uint64_t)id - v[i].c < v[i].n) {
			*ret = v[i].h + (id - v[i].c);
			return 0;
		}
	return -ERANGE;
}

int vp_userns_to_container(const struct vp_userns *u, bool gid, uint32_t id, uint32_t *ret)
{
	const struct vp_idrange *v = gid ? u->gid : u->uid;
	size_t n = gid ? u->n_gid : u->n_uid;

	for (size_t i = 0; i < n; i++)
		if (id >= v[i].h && (uint64_t)id - v[i].h < v[i].n) {
			*ret = v[i].c + (id - v[i].h);
			return 0;
		}
	return -ERANGE;
}

/* The first range of name (or of uid in decimal) in a subuid/subgid file.
 * shadow's newuidmap takes every range of the user; Podman and Docker use
 * the first for the container's 1..N, and so do we. */
static int subid_first(const char *file, const char *name, uid_t uid, uint32_t *start,
                       uint32_t *count)
{
	char uidtext[16], *line = NULL;
	size_t cap = 0;
	FILE *f = fopen(file, "re");
	int r = -ENOENT;

	if (!f)
		return -errno;
	snprintf(uidtext, sizeof(uidtext), "%u", (unsigned)uid);
	while (getline(&line, &cap, f) > 0) {
		char *p = line, *colon;
		const char *q;
		uint32_t s, n;

		line[strcspn(line, "\n")] = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		colon = strchr(p, ':');
		if (!colon)
			continue; /* not ours to judge: another user's line */
		*colon = 0;
		if (strcmp(p, name) != 0 && strcmp(p, uidtext) != 0)
			continue;
		if (parse_num(colon + 1, &q, VP_ID_MAX, &s) < 0 || *q != ':' ||
		    parse_num(q + 1, &q, RANGE_END, &n) < 0 || *q || n == 0 ||
		    (uint64_t)s + n > RANGE_END) {
			r = -EBADMSG;
			break;
		}
		*start = s;
		*count = n;
		r = 0;
		break;
	}
	free(line);
	fclose(f);
	return r;
}

static const char *subid_file(const char *given, const char *env, const char *dflt)
{
	const char *e;

	if (given)
		return given;
	e = getenv(env);
	return e && *e ? e : dflt;
}

int vp_userns_from_subid(struct vp_userns *u, const char *name, uid_t uid, gid_t gid,
                         const char *subuid_file, const char *subgid_file)
{
	struct vp_userns tmp = VP_USERNS_INIT;
	uint32_t us, un, gs, gn;
	int r;

	if (uid > VP_ID_MAX || gid > VP_ID_MAX)
		return -EINVAL;
	r = subid_first(subid_file(subuid_file, "VOLPERM_SUBUID_FILE", "/etc/subuid"), name, uid,
	                &us, &un);
	if (r < 0)
		return r;
	r = subid_first(subid_file(subgid_file, "VOLPERM_SUBGID_FILE", "/etc/subgid"), name, uid,
	                &gs, &gn);
	if (r < 0)
		return r;
	/* A range that would not fit above container id 0 is cut, as the
	 * kernel would refuse it whole. */
	if ((uint64_t)un > VP_ID_MAX)
		un = VP_ID_MAX;
	if ((uint64_t)gn > VP_ID_MAX)
		gn = VP_ID_MAX;
	if ((r = vp_userns_add(&tmp, false, 0, uid, 1)) < 0 ||
	    (r = vp_userns_add(&tmp, false, 1, us, un)) < 0 ||
	    (r = vp_userns_add(&tmp, true, 0, gid, 1)) < 0 ||
	    (r = vp_userns_add(&tmp, true, 1, gs, gn)) < 0) {
		vp_userns_free(&tmp);
		return r;
	}
	free(u->uid);
	free(u->gid);
	u->uid = tmp.uid;
	u->gid = tmp.gid;
	u->n_uid = tmp.n_uid;
	u->n_gid = tmp.n_gid;
	return 0;
}

int vp_userns_from_user(struct vp_userns *u, const char *name, const char *subuid_file,
                        const char *subgid_file)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	uint32_t id;

	if (!*name)
		return -EINVAL;
	if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res) {
		res = NULL;
		if (vp_parse_id(name, &id) == 0 && (getpwuid_r(id, &pw, buf, sizeof(buf), &res) != 0))
			res = NULL;
	}
	if (!res)
		return -ENOENT;
	return vp_userns_from_subid(u, res->pw_name, res->pw_uid, res->pw_gid, subuid_file,
	                            subgid_file);
}

/* Read a small /proc file whole into buf (NUL-terminated). */
static int read_small(int dirfd, const char *name, char *buf, size_t size)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	size_t len = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int r = -errno;
			close(fd);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == size - 1) {
			close(fd);
			return -EFBIG;
		}
	}
	close(fd);
	buf[len] = 0;
	return 0;
}

/* Room for VP_USERNS_MAX_RANGES lines of three 10-digit numbers. */
#define MAP_TEXT_MAX (VP_USERNS_MAX_RANGES * 36 + 1)

static int from_proc_dir(struct vp_userns *u, int dirfd)
{
	struct vp_userns tmp = VP_USERNS_INIT;
	char *text = malloc(MAP_TEXT_MAX);
	int r;

	if (!text)
		return -ENOMEM;
	if ((r = read_small(dirfd, "uid_map", text, MAP_TEXT_MAX)) < 0 ||
	    (r = vp_userns_add_map_text(&tmp, false, text)) < 0 ||
	    (r = read_small(dirfd, "gid_map", text, MAP_TEXT_MAX)) < 0 ||
	    (r = vp_userns_add_map_text(&tmp, true, text)) < 0) {
		free(text);
		vp_userns_free(&tmp);
		return r;
	}
	free(text);
	free(u->uid);
	free(u->gid);
	u->uid = tmp.uid;
	u->gid = tmp.gid;
	u->n_uid = tmp.n_uid;
	u->n_gid = tmp.n_gid;
	return 0;
}

int vp_userns_from_pid(struct vp_userns *u, pid_t pid)
{
	char path[32];
	int dfd, r;

	if (pid <= 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	r = from_proc_dir(u, dfd);
	close(dfd);
	return r;
}

int vp_userns_self(struct vp_userns *u)
{
	/* /proc/self, not /proc/getpid(): a /proc of another pid namespace
	 * (bind-mounted from the host) has our pid as someone else's. */
	int dfd = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (dfd < 0)
		return -errno;
	r = from_proc_dir(u, dfd);
	close(dfd);
	return r;
}

int vp_userns_is_initial(void)
{
	struct vp_userns s = VP_USERNS_INIT;
	int r = vp_userns_self(&s);

	if (r < 0)
		return r;
	/* The initial namespace maps the whole id space to itself. A child
	 * namespace can do the same only when created by a privileged parent
	 * (systemd's running_in_userns() looks further, at setgroups); for us
	 * it is the same: every id is what it is on disk. */
	r = s.n_uid == 1 && s.uid[0].c == 0 && s.uid[0].h == 0 && s.uid[0].n == 4294967295u;
	vp_userns_free(&s);
	return r;
}

int vp_userns_from_nsfile(struct vp_userns *u, const char *path)
{
	int fd, sync_pipe[2], release[2], r, status;
	pid_t pid;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	r = ioctl(fd, NS_GET_NSTYPE);
	if (r < 0 || r != CLONE_NEWUSER) {
		close(fd);
		return -ENOTTY;
	}
	if (pipe2(sync_pipe, O_CLOEXEC) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (pipe2(release, O_CLOEXEC) < 0) {
		r = -errno;
		close(sync_pipe[0]);
		close(sync_pipe[1]);
		close(fd);
		return r;
	}
	/* A child joins the namespace (setns into a user namespace needs a
	 * single-threaded process, and would change ours for good); its
	 * /proc/PID/uid_map, read from here, shows the namespace's ids in
	 * terms of ours: exactly the translation we need. The child makes
	 * only async-signal-safe calls. */
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto out_pipes;
	}
	if (pid == 0) {
		/* Our copy of the write end would keep the read below
		 * from ever seeing EOF. */
		close(release[1]);
		close(sync_pipe[0]);
		int e = setns(fd, CLONE_NEWUSER) < 0 ? errno : 0;
		char c;
		(void)!write(sync_pipe[1], &e, sizeof(e));
		/* Wait until the parent has read our maps (EOF). */
		while (read(release[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(sync_pipe[1]);
	sync_pipe[1] = -1;
	close(release[0]);
	release[0] = -1;
	int e = 0;
	ssize_t n;
	do
		n = read(sync_pipe[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(e))
		r = -ECHILD;
	else if (e)
		r = -e;
	else
		r = vp_userns_from_pid(u, pid);
	close(release[1]);
	release[1] = -1;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
out_pipes:
	for (int i = 0; i < 2; i++) {
		if (sync_pipe[i] >= 0)
			close(sync_pipe[i]);
		if (release[i] >= 0)
			close(release[i]);
	}
	close(fd);
	return r;
}

int vp_userns_from_spec(struct vp_userns *u, const char *spec)
{
	struct vp_userns tmp = VP_USERNS_INIT;
	int r;

	if (!strncmp(spec, "user:", 5)) {
		r = vp_userns_from_user(&tmp, spec + 5, NULL, NULL);
	} else if (!strncmp(spec, "pid:", 4)) {
		uint32_t pid;
		r = vp_parse_id(spec + 4, &pid);
		r = r < 0 || pid == 0 || pid > INT_MAX ? -EINVAL : vp_userns_from_pid(&tmp, (pid_t)pid);
	} else if (strchr(spec, '/')) {
		r = vp_userns_from_nsfile(&tmp, spec);
	} else {
		r = -EINVAL;
	}
	if (r == 0 && !(tmp.spec = strdup(spec)))
		r = -ENOMEM;
	if (r < 0) {
		vp_userns_free(&tmp);
		return r;
	}
	vp_userns_free(u);
	*u = tmp;
	return 0;
}

static int add_ranges(struct vp_userns *u, bool gid, char *const *v, size_t n, char *why,
                      size_t why_size)
{
	const char *opt = gid ? "--gid-map" : "--uid-map";

	for (size_t i = 0; i < n; i++) {
		uint32_t c, h, k;
		int r = vp_userns_parse_range(v[i], &c, &h, &k);
		if (r == 0)
			r = vp_userns_add(u, gid, c, h, k);
		if (r == -EEXIST)
			snprintf(why, why_size, "invalid %s '%s': it overlaps another %s range (on the container or the host side)",
			         opt, v[i], opt);
		else if (r == -E2BIG)
			snprintf(why, why_size, "too many %s ranges: the kernel takes at most %d", opt,
			         VP_USERNS_MAX_RANGES);
		else if (r < 0)
			snprintf(why, why_size,
			         "invalid %s '%s': expected CONTAINER:HOST:COUNT, decimal, COUNT at least 1, no id above 4294967294",
			         opt, v[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The two names vp_userns_build() gives maps from --uid-map/--gid-map. */
static const char map_uid[] = "--uid-map", map_both[] = "--uid-map/--gid-map";

int vp_userns_build(struct vp_userns *u, const char *spec, char *const *uid_maps, size_t n_uid,
                    char *const *gid_maps, size_t n_gid, char *why, size_t why_size)
{
	struct vp_userns tmp = VP_USERNS_INIT;
	int r = 0;

	if (spec && (n_uid || n_gid)) {
		snprintf(why, why_size, "--userns and --uid-map/--gid-map do not go together: give one or the other");
		return -EINVAL;
	}
	if (n_gid && !n_uid) {
		snprintf(why, why_size, "--gid-map needs --uid-map too (with --uid-map alone, the gid map is the same)");
		return -EINVAL;
	}
	if (spec) {
		r = vp_userns_from_spec(&tmp, spec);
		if (r < 0) {
			const char *what = strerror(-r);
			if (!strncmp(spec, "user:", 5))
				what = r == -ENOENT ? "no such user, or no range for the user in the subuid or subgid file (/etc/subuid, /etc/subgid, or $VOLPERM_SUBUID_FILE, $VOLPERM_SUBGID_FILE)"
				       : r == -EBADMSG ? "the user's line in the subuid or subgid file is not NAME:START:COUNT"
				                       : what;
			else if (!strncmp(spec, "pid:", 4))
				what = r == -EINVAL ? "expected pid:PID with a decimal process id"
				       : r == -ENOENT ? "no such process" : what;
			else if (!strchr(spec, '/'))
				what = "expected user:NAME, pid:PID, or the path of a user namespace file such as /proc/PID/ns/user";
			else if (r == -ENOTTY)
				what = "not a user namespace file (expected /proc/PID/ns/user or a bind mount of one)";
			else if (r == -EPERM)
				what = "this process may not join that user namespace to read its maps (run it as root or as the namespace's owner)";
			char q[320]; /* SPEC may be a path: quoted, as every path */
			snprintf(why, why_size, "cannot use --userns %s: %s",
			         vp_quote_shell_buf(q, sizeof(q), spec, strlen(spec)), what);
			vp_userns_free(&tmp);
			return r;
		}
	} else {
		r = add_ranges(&tmp, false, uid_maps, n_uid, why, why_size);
		if (r == 0)
			r = add_ranges(&tmp, true, n_gid ? gid_maps : uid_maps, n_gid ? n_gid : n_uid, why,
			               why_size);
		if (r < 0) {
			vp_userns_free(&tmp);
			return r;
		}
		if (n_uid && !(tmp.spec = strdup(n_gid ? map_both : map_uid))) {
			vp_userns_free(&tmp);
			return -ENOMEM;
		}
	}
	vp_userns_free(u);
	*u = tmp;
	return 0;
}

const char *vp_userns_name(const struct vp_userns *u, char *buf, size_t size,
                           const char *fallback)
{
	if (!u->spec)
		return fallback;
	if (!strcmp(u->spec, map_uid) || !strcmp(u->spec, map_both))
		return u->spec;
	return vp_quote_shell_buf(buf, size, u->spec, strlen(u->spec));
}

/* ---- policies ---- */

struct xlat {
	bool gid;
	uint32_t *id;
	const char *option;
};

int vp_userns_translate_policy(const struct vp_userns *u, struct vp_policy *p, char *why,
                               size_t why_size)
{
	size_t n = 4 + 2 * p->n_uid_maps + 2 * p->n_gid_maps + p->n_grants + p->n_revokes, k = 0;
	struct xlat *v = calloc(n, sizeof(*v));
	uint32_t *out;
	int r = 0;

	if (!v)
		return -ENOMEM;
	out = calloc(n, sizeof(*out));
	if (!out) {
		free(v);
		return -ENOMEM;
	}
	if (p->has_uid)
		v[k++] = (struct xlat){ false, &p->uid, "--owner" };
	if (p->has_gid)
		v[k++] = (struct xlat){ true, &p->gid, "--owner" };
	for (size_t i = 0; i < p->n_uid_maps; i++) {
		v[k++] = (struct xlat){ false, &p->uid_maps[i].from, "--map" };
		v[k++] = (struct xlat){ false, &p->uid_maps[i].to, "--map" };
	}
	for (size_t i = 0; i < p->n_gid_maps; i++) {
		v[k++] = (struct xlat){ true, &p->gid_maps[i].from, "--map-gid" };
		v[k++] = (struct xlat){ true, &p->gid_maps[i].to, "--map-gid" };
	}
	if (p->has_fsgroup)
		v[k++] = (struct xlat){ true, &p->fsgroup, "--fsgroup" };
	for (size_t i = 0; i < p->n_grants; i++)
		v[k++] = (struct xlat){ p->grants[i].tag != VP_ACL_USER, &p->grants[i].id, "--grant" };
	for (size_t i = 0; i < p->n_revokes; i++)
		v[k++] = (struct xlat){ p->revokes[i].tag != VP_ACL_USER, &p->revokes[i].id, "--revoke" };
	/* All or nothing: check every id before the first is rewritten. */
	for (size_t i = 0; i < k; i++) {
		r = vp_userns_to_host(u, v[i].gid, *v[i].id, &out[i]);
		if (r < 0) {
			const struct vp_idrange *rg = v[i].gid ? u->gid : u->uid;
			size_t nr = v[i].gid ? u->n_gid : u->n_uid, l = 0;
			char ranges[160] = "none";
			/* The container side of the map, as far as it fits. */
			for (size_t j = 0; j < nr && l + 24 < sizeof(ranges); j++)
				l += (size_t)snprintf(ranges + l, sizeof(ranges) - l, "%s%u-%llu",
				                      j ? "," : "", rg[j].c,
				                      (unsigned long long)rg[j].c + rg[j].n - 1);
			char q[320];
			snprintf(why, why_size,
			         "%s %s %u is outside the user namespace map of %s (container %ss %s), so in the container it would be nobody (65534); nothing was changed",
			         v[i].option, v[i].gid ? "gid" : "uid", *v[i].id,
			         vp_userns_name(u, q, sizeof(q), v[i].gid ? "--gid-map" : "--uid-map"),
			         v[i].gid ? "gid" : "uid", ranges);
			goto out;
		}
	}
	for (size_t i = 0; i < k; i++)
		*v[i].id = out[i];
out:
	free(v);
	free(out);
	return r;
}

/* Each id as "CONTAINER (host HOST)", or "HOST (host)" when the map has no
 * container id for it. */
static void put_id(FILE *f, bool gid, uint32_t host, const void *ctx)
{
	uint32_t c;

	if (vp_userns_to_container(ctx, gid, host, &c) == 0)
		fprintf(f, "%u (host %u)", c, host);
	else
		fprintf(f, "%u (host)", host);
}

/* The owner pair as one: "1001:1001 (host 101000:101000)". */
static void put_owner(FILE *f, const struct vp_policy *p, const void *ctx)
{
	uint32_t cu = 0, cg = 0;
	bool ok = (!p->has_uid || vp_userns_to_container(ctx, false, p->uid, &cu) == 0) &&
	          (!p->has_gid || vp_userns_to_container(ctx, true, p->gid, &cg) == 0);

	if (p->has_uid)
		fprintf(f, "%u", ok ? cu : (unsigned)p->uid);
	if (p->has_gid)
		fprintf(f, ":%u", ok ? cg : (unsigned)p->gid);
	fputs(" (host ", f);
	if (p->has_uid)
		fprintf(f, "%u", (unsigned)p->uid);
	if (p->has_gid)
		fprintf(f, ":%u", (unsigned)p->gid);
	fputc(')', f);
}

int vp_userns_describe(const struct vp_userns *u, const struct vp_policy *p, char **ret)
{
	const struct vp_policy_idfmt fmt = { .id = put_id, .owner = put_owner, .ctx = u };

	return vp_policy_describe_ids(p, &fmt, ret);
}

int vp_userns_format(const struct vp_userns *u, FILE *f)
{
	for (int g = 0; g < 2; g++) {
		const struct vp_idrange *v = g ? u->gid : u->uid;
		size_t n = g ? u->n_gid : u->n_uid;
		fprintf(f, "%s%s ", g ? "; " : "", g ? "gid" : "uid");
		if (!n)
			fputs("none", f);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "%s%u:%u:%u", i ? "," : "", v[i].c, v[i].h, v[i].n);
	}
	return ferror(f) ? -EIO : 0;
}
