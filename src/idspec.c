/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Strict parsing of user and group ids. strtoul() accepts " -1" and wraps it
 * to ULONG_MAX, which is how `chown -1` bugs happen; we accept digits only
 * and refuse (uid_t)-1, chown's "leave unchanged" value. */
#include <errno.h>
#include <stdbool.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "volperm/idspec.h"

static int lookup_file(const char *file, bool group, const char *name, uint32_t *ret)
{
	FILE *f = fopen(file, "re");
	struct stat st;
	int r = -EINVAL;

	if (!f)
		return -errno;
	if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
		fclose(f);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	for (;;) {
		if (group) {
			struct group *g = fgetgrent(f);
			if (!g)
				break;
			if (strcmp(g->gr_name, name) == 0) {
				*ret = g->gr_gid;
				r = 0;
				break;
			}
		} else {
			struct passwd *pw = fgetpwent(f);
			if (!pw)
				break;
			if (strcmp(pw->pw_name, name) == 0) {
				*ret = pw->pw_uid;
				r = 0;
				break;
			}
		}
	}
	fclose(f);
	return r;
}

int vp_parse_id(const char *s, uint32_t *ret)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > VP_ID_MAX)
			return -ERANGE;
	}
	*ret = (uint32_t)v;
	return 0;
}

static bool all_digits_or_sign(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* A string that looks numeric is an id and never a name: "-1" must not be
 * looked up (and silently fail), it must be refused as out of range. */
static int parse_numeric_or_refuse(const char *s, uint32_t *ret)
{
	if (*s == '-' || *s == '+')
		return *s == '-' ? -ERANGE : -EINVAL;
	return vp_parse_id(s, ret);
}

/* A user (group=false) or group name or id. The numeric path never opens a
 * database; a name goes to the chosen file, else (static builds) the
 * system's files, else NSS. */
static int parse_name_or_id(const struct vp_iddb *db, const char *s, bool group, uint32_t *ret)
{
	const char *file = db ? (group ? db->group_file : db->passwd_file) : NULL;
	uint32_t id = 0;
	int r;

	if (!s || !*s)
		return -EINVAL;
	if (all_digits_or_sign(s))
		return parse_numeric_or_refuse(s, ret);
#ifdef VOLPERM_STATIC
	/* A static binary has no NSS modules: read the files directly. */
	if (!file) {
		r = lookup_file(group ? "/etc/group" : "/etc/passwd", group, s, &id);
		if (r == 0)
			*ret = id;
		return r == -ENOENT ? -EINVAL : r;
	}
#endif
	if (file) {
		r = lookup_file(file, group, s, &id);
		if (r == 0)
			*ret = id;
		return r;
	}
	if (group) {
		struct group *gr = getgrnam(s);
		if (!gr)
			return -EINVAL;
		*ret = gr->gr_gid;
	} else {
		struct passwd *pw = getpwnam(s);
		if (!pw)
			return -EINVAL;
		*ret = pw->pw_uid;
	}
	return 0;
}

int vp_parse_user_db(const struct vp_iddb *db, const char *s, uid_t *ret)
{
	uint32_t v;
	int r = parse_name_or_id(db, s, false, &v);

	if (r == 0)
		*ret = v;
	return r;
}

int vp_parse_group_db(const struct vp_iddb *db, const char *s, gid_t *ret)
{
	uint32_t v;
	int r = parse_name_or_id(db, s, true, &v);

	if (r == 0)
		*ret = v;
	return r;
}

int vp_parse_user(const char *s, uid_t *ret)
{
	return vp_parse_user_db(NULL, s, ret);
}

int vp_parse_group(const char *s, gid_t *ret)
{
	return vp_parse_group_db(NULL, s, ret);
}

int vp_parse_owner(const char *s, struct vp_owner *ret)
{
	return vp_parse_owner_db(NULL, s, ret);
}

int vp_parse_owner_db(const struct vp_iddb *db, const char *s, struct vp_owner *ret)
{
	struct vp_owner o = { 0 };
	const char *colon;
	int r;

	if (!s || !*s)
		return -EINVAL;
	colon = strchr(s, ':');
	if (!colon) {
		r = vp_parse_user_db(db, s, &o.uid);
		if (r < 0)
			return r;
		o.has_uid = true;
		*ret = o;
		return 0;
	}
	if (strchr(colon + 1, ':') || !colon[1])
		return -EINVAL;
	if (colon != s) {
		char *user = strndup(s, (size_t)(colon - s));
		if (!user)
			return -ENOMEM;
		r = vp_parse_user_db(db, user, &o.uid);
		free(user);
		if (r < 0)
			return r;
		o.has_uid = true;
	}
	r = vp_parse_group_db(db, colon + 1, &o.gid);
	if (r < 0)
		return r;
	o.has_gid = true;
	*ret = o;
	return 0;
}

static int parse_pair(const struct vp_iddb *db, const char *s, bool group, uint32_t *from,
                      uint32_t *to)
{
	const char *colon;
	char *left;
	uint32_t a, b;
	int r;

	if (!s || !(colon = strchr(s, ':')) || colon == s || !colon[1] || strchr(colon + 1, ':'))
		return -EINVAL;
	left = strndup(s, (size_t)(colon - s));
	if (!left)
		return -ENOMEM;
	if (group) {
		gid_t ga = 0, gb = 0;
		r = vp_parse_group_db(db, left, &ga);
		if (r >= 0)
			r = vp_parse_group_db(db, colon + 1, &gb);
		a = ga;
		b = gb;
	} else {
		uid_t ua = 0, ub = 0;
		r = vp_parse_user_db(db, left, &ua);
		if (r >= 0)
			r = vp_parse_user_db(db, colon + 1, &ub);
		a = ua;
		b = ub;
	}
	free(left);
	if (r < 0)
		return r;
	*from = a;
	*to = b;
	return 0;
}

int vp_parse_uid_map(const char *s, uint32_t *from, uint32_t *to)
{
	return parse_pair(NULL, s, false, from, to);
}

int vp_parse_gid_map(const char *s, uint32_t *from, uint32_t *to)
{
	return parse_pair(NULL, s, true, from, to);
}

int vp_parse_uid_map_db(const struct vp_iddb *db, const char *s, uint32_t *from, uint32_t *to)
{
	return parse_pair(db, s, false, from, to);
}

int vp_parse_gid_map_db(const struct vp_iddb *db, const char *s, uint32_t *from, uint32_t *to)
{
	return parse_pair(db, s, true, from, to);
}
