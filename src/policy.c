/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The target policy and its text form. The text form lives in every journal
 * header so that `recover --forward` can finish an apply with exactly the
 * policy it started with, and so a human can see what a journal was for. */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volperm/idspec.h"
#include "volperm/policy.h"

void vp_policy_init(struct vp_policy *p)
{
	memset(p, 0, sizeof(*p));
}

void vp_policy_free(struct vp_policy *p)
{
	if (!p)
		return;
	free(p->uid_maps);
	free(p->gid_maps);
	for (size_t i = 0; i < p->n_excludes; i++)
		free(p->excludes[i]);
	free(p->excludes);
	free(p->chmod_text);
	free(p->grants);
	free(p->revokes);
	vp_policy_init(p);
}

bool vp_policy_is_empty(const struct vp_policy *p)
{
	return !p->has_uid && !p->has_gid && p->n_uid_maps == 0 && p->n_gid_maps == 0 &&
	       !p->has_fsgroup && !p->chmod_text && !p->has_root_mode && !p->n_grants &&
	       !p->n_revokes;
}

bool vp_policy_needs_acls(const struct vp_policy *p)
{
	return p->n_grants || p->n_revokes;
}

int vp_policy_set_chmod(struct vp_policy *p, const char *text)
{
	struct vp_modeprog prog;
	char *copy;

	if (vp_parse_chmod(text, &prog) < 0)
		return -EINVAL;
	copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	free(p->chmod_text);
	p->chmod_text = copy;
	p->chmod = prog;
	return 0;
}

int vp_policy_add_grants(struct vp_policy *p, const struct vp_iddb *db, const char *text,
                         bool revoke)
{
	return revoke ? vp_parse_grants(db, text, true, &p->revokes, &p->n_revokes)
	              : vp_parse_grants(db, text, false, &p->grants, &p->n_grants);
}

static void put_id(FILE *f, const struct vp_policy_idfmt *fmt, bool group, uint32_t id)
{
	if (fmt && fmt->id)
		fmt->id(f, group, id, fmt->ctx);
	else
		fprintf(f, "%u", (unsigned)id);
}

/* fmt: NULL where ids are written for the journal's policy text. */
static void put_grant(FILE *f, const struct vp_policy_idfmt *fmt, const struct vp_grant *g,
                      bool revoke)
{
	fprintf(f, "%c:", g->tag == VP_ACL_USER ? 'u' : 'g');
	put_id(f, fmt, g->tag != VP_ACL_USER, g->id);
	if (revoke)
		return;
	fputc(':', f);
	if (g->perm & 4)
		fputc('r', f);
	if (g->perm & 2)
		fputc('w', f);
	if (g->perm & 1)
		fputc('x', f);
	if (g->cond_x)
		fputc('X', f);
	if (!g->perm && !g->cond_x)
		fputc('-', f);
}

static int add_map(struct vp_idmap **v, size_t *n, uint32_t from, uint32_t to)
{
	struct vp_idmap *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	nv[*n] = (struct vp_idmap){ .from = from, .to = to };
	*v = nv;
	(*n)++;
	return 0;
}

int vp_policy_add_uid_map(struct vp_policy *p, uint32_t from, uint32_t to)
{
	return add_map(&p->uid_maps, &p->n_uid_maps, from, to);
}

int vp_policy_add_gid_map(struct vp_policy *p, uint32_t from, uint32_t to)
{
	return add_map(&p->gid_maps, &p->n_gid_maps, from, to);
}

int vp_policy_add_exclude(struct vp_policy *p, const char *glob)
{
	char *copy = strdup(glob);
	char **nv;

	if (!copy)
		return -ENOMEM;
	nv = realloc(p->excludes, (p->n_excludes + 1) * sizeof(*nv));
	if (!nv) {
		free(copy);
		return -ENOMEM;
	}
	nv[p->n_excludes++] = copy;
	p->excludes = nv;
	return 0;
}

bool vp_policy_excluded(const struct vp_policy *p, const char *relpath, const char *name)
{
	for (size_t i = 0; i < p->n_excludes; i++) {
		const char *g = p->excludes[i];
		if (strchr(g, '/')) {
			if (fnmatch(g, relpath, FNM_PATHNAME | FNM_PERIOD) == 0)
				return true;
		} else if (fnmatch(g, name, FNM_PERIOD) == 0) {
			return true;
		}
	}
	return false;
}

/* ---- text form: "key value\n", value bytes outside 0x21..0x7e and '%'
 * written as %XX so that any glob (newlines included) survives. ---- */

static int put_escaped(FILE *f, const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c <= 0x20 || *c >= 0x7f || *c == '%') {
			if (fprintf(f, "%%%02X", *c) < 0)
				return -EIO;
		} else if (fputc(*c, f) == EOF) {
			return -EIO;
		}
	}
	return 0;
}

int vp_policy_to_text(const struct vp_policy *p, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int r = 0;

	if (!f)
		return -ENOMEM;
	if (p->has_uid)
		fprintf(f, "uid %u\n", (unsigned)p->uid);
	if (p->has_gid)
		fprintf(f, "gid %u\n", (unsigned)p->gid);
	for (size_t i = 0; i < p->n_uid_maps; i++)
		fprintf(f, "map-uid %u:%u\n", p->uid_maps[i].from, p->uid_maps[i].to);
	for (size_t i = 0; i < p->n_gid_maps; i++)
		fprintf(f, "map-gid %u:%u\n", p->gid_maps[i].from, p->gid_maps[i].to);
	for (size_t i = 0; i < p->n_excludes && r == 0; i++) {
		fputs("exclude ", f);
		r = put_escaped(f, p->excludes[i]);
		fputc('\n', f);
	}
	if (p->has_fsgroup)
		fprintf(f, "fsgroup %u\n", (unsigned)p->fsgroup);
	if (p->fsgroup_readonly)
		fputs("fsgroup-read-only 1\n", f);
	if (p->on_root_mismatch)
		fputs("on-root-mismatch 1\n", f);
	if (p->chmod_text && r == 0) {
		fputs("chmod ", f);
		r = put_escaped(f, p->chmod_text);
		fputc('\n', f);
	}
	if (p->has_root_mode)
		fprintf(f, "root-mode %04o\n", (unsigned)p->root_mode);
	for (size_t i = 0; i < p->n_grants; i++) {
		fputs("grant ", f);
		put_grant(f, NULL, &p->grants[i], false);
		fputc('\n', f);
	}
	for (size_t i = 0; i < p->n_revokes; i++) {
		fputs("revoke ", f);
		put_grant(f, NULL, &p->revokes[i], true);
		fputc('\n', f);
	}
	if (p->cross_mounts)
		fputs("cross-mounts 1\n", f);
	if (p->include_devices)
		fputs("include-devices 1\n", f);
	if (p->allow_external_links)
		fputs("allow-external-links 1\n", f);
	if (fclose(f) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static char *unescape(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi, lo;
			if (i + 2 >= n)
				goto bad;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = 0;
	return out;
bad:
	free(out);
	return NULL;
}

/* Ids in a journal go through the same strict parser as the command line:
 * a forged "uid -1" or "map-uid 5:4294967296" must not become a valid id. */
static int parse_u32_pair(const char *v, uint32_t *a, uint32_t *b)
{
	const char *colon = strchr(v, ':');
	char left[16];
	uint32_t x, y;

	if (!colon || (size_t)(colon - v) >= sizeof(left))
		return -EBADMSG;
	memcpy(left, v, (size_t)(colon - v));
	left[colon - v] = 0;
	if (vp_parse_id(left, &x) < 0 || vp_parse_id(colon + 1, &y) < 0)
		return -EBADMSG;
	*a = x;
	*b = y;
	return 0;
}

int vp_policy_from_text(const char *text, size_t len, struct vp_policy *ret)
{
	struct vp_policy p;
	const char *s = text, *end = text + len;
	int r = 0;

	vp_policy_init(&p);
	while (s < end && r == 0) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *sp;
		char *val;
		size_t klen;

		if (!nl || !(sp = memchr(s, ' ', (size_t)(nl - s)))) {
			r = -EBADMSG;
			break;
		}
		klen = (size_t)(sp - s);
		val = unescape(sp + 1, (size_t)(nl - sp - 1));
		if (!val) {
			r = -EBADMSG;
			break;
		}
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(s, k, klen) == 0)
		if (KEY("uid") || KEY("gid")) {
			uint32_t v;
			if (vp_parse_id(val, &v) < 0)
				r = -EBADMSG;
			else if (KEY("uid"))
				p.has_uid = true, p.uid = v;
			else
				p.has_gid = true, p.gid = v;
		} else if (KEY("map-uid") || KEY("map-gid")) {
			uint32_t a, b;
			r = parse_u32_pair(val, &a, &b);
			if (r == 0)
				r = KEY("map-uid") ? vp_policy_add_uid_map(&p, a, b)
				                   : vp_policy_add_gid_map(&p, a, b);
		} else if (KEY("exclude")) {
			r = vp_policy_add_exclude(&p, val);
		} else if (KEY("fsgroup")) {
			uint32_t v;
			if (vp_parse_id(val, &v) < 0)
				r = -EBADMSG;
			else
				p.has_fsgroup = true, p.fsgroup = v;
		} else if (KEY("fsgroup-read-only")) {
			p.fsgroup_readonly = true;
		} else if (KEY("on-root-mismatch")) {
			p.on_root_mismatch = true;
		} else if (KEY("chmod")) {
			r = vp_policy_set_chmod(&p, val) < 0 ? -EBADMSG : 0;
		} else if (KEY("root-mode")) {
			mode_t m;
			if (vp_parse_octal_mode(val, &m) < 0)
				r = -EBADMSG;
			else
				p.has_root_mode = true, p.root_mode = m;
		} else if (KEY("grant") || KEY("revoke")) {
			/* Only numeric ids were written: no name lookup happens. */
			for (const char *q = val; *q; q++)
				if (!strchr("ug:0123456789rwxX-", *q))
					r = -EBADMSG;
			if (r == 0 && vp_policy_add_grants(&p, NULL, val, KEY("revoke")) < 0)
				r = -EBADMSG;
		} else if (KEY("cross-mounts")) {
			p.cross_mounts = true;
		} else if (KEY("include-devices")) {
			p.include_devices = true;
		} else if (KEY("allow-external-links")) {
			p.allow_external_links = true;
		} else {
			/* A newer volperm wrote a policy we do not understand:
			 * finishing it forward would apply something else. */
			r = -EPROTO;
		}
#undef KEY
		free(val);
		s = nl + 1;
	}
	if (r < 0) {
		vp_policy_free(&p);
		return r;
	}
	*ret = p;
	return 0;
}

int vp_policy_describe_ids(const struct vp_policy *p, const struct vp_policy_idfmt *fmt,
                           char **ret)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *sep = "";

	if (!f)
		return -ENOMEM;
	if (p->has_uid || p->has_gid) {
		fputs("owner ", f);
		if (fmt && fmt->owner) {
			fmt->owner(f, p, fmt->ctx);
		} else {
			if (p->has_uid)
				fprintf(f, "%u", (unsigned)p->uid);
			if (p->has_gid)
				fprintf(f, ":%u", (unsigned)p->gid);
		}
		sep = ", ";
	}
	for (size_t i = 0; i < p->n_uid_maps; i++, sep = ", ") {
		fprintf(f, "%smap uid ", sep);
		put_id(f, fmt, false, p->uid_maps[i].from);
		fputs("->", f);
		put_id(f, fmt, false, p->uid_maps[i].to);
	}
	for (size_t i = 0; i < p->n_gid_maps; i++, sep = ", ") {
		fprintf(f, "%smap gid ", sep);
		put_id(f, fmt, true, p->gid_maps[i].from);
		fputs("->", f);
		put_id(f, fmt, true, p->gid_maps[i].to);
	}
	if (p->has_fsgroup) {
		fprintf(f, "%sfsgroup ", sep);
		put_id(f, fmt, true, p->fsgroup);
		fprintf(f, "%s%s", p->fsgroup_readonly ? " read-only" : "",
		        p->on_root_mismatch ? " (on-root-mismatch)" : "");
		sep = ", ";
	} else if (p->on_root_mismatch) {
		fprintf(f, "%sif root mismatches", sep);
		sep = ", ";
	}
	if (p->chmod_text) {
		fprintf(f, "%schmod %s", sep, p->chmod_text);
		sep = ", ";
	}
	if (p->has_root_mode) {
		fprintf(f, "%sroot mode %04o", sep, (unsigned)p->root_mode);
		sep = ", ";
	}
	for (size_t i = 0; i < p->n_grants; i++, sep = ", ") {
		fprintf(f, "%sgrant ", sep);
		put_grant(f, fmt, &p->grants[i], false);
	}
	for (size_t i = 0; i < p->n_revokes; i++, sep = ", ") {
		fprintf(f, "%srevoke ", sep);
		put_grant(f, fmt, &p->revokes[i], true);
	}
	if (!*sep)
		fputs("nothing", f);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	return 0;
}

int vp_policy_describe(const struct vp_policy *p, char **ret)
{
	return vp_policy_describe_ids(p, NULL, ret);
}
