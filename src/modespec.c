/* SPDX-License-Identifier: GPL-2.0-or-later */
/* chmod-style mode expressions (see modespec.h), with chmod(1)'s semantics
 * for X, s, t, copies (g=u) and a directory's setuid/setgid under an octal
 * mode (kept unless five digits are given, as GNU chmod does). */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "volperm/modespec.h"

int vp_parse_octal_mode(const char *s, mode_t *ret)
{
	unsigned long v = 0;

	if (!s || !*s || strlen(s) > 6)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '7')
			return -EINVAL;
		v = v * 8 + (unsigned long)(*p - '0');
	}
	if (v > 07777)
		return -ERANGE;
	*ret = (mode_t)v;
	return 0;
}

int vp_parse_chmod(const char *s, struct vp_modeprog *ret)
{
	struct vp_modeprog p = { 0 };
	const char *c = s;

	if (!s || !*s)
		return -EINVAL;
	if (*s >= '0' && *s <= '7') {
		mode_t m;
		if (vp_parse_octal_mode(s, &m) < 0)
			return -EINVAL;
		p.octal = true;
		p.octal_mode = m;
		p.octal_explicit_ids = strlen(s) >= 5;
		*ret = p;
		return 0;
	}
	while (*c) {
		unsigned who = 0;
		for (; *c && strchr("ugoa", *c); c++)
			who |= *c == 'u' ? 04700u : *c == 'g' ? 02070u : *c == 'o' ? 01007u : 07777u;
		if (!who)
			who = 07777;
		if (!*c || !strchr("+-=", *c))
			return -EINVAL;
		while (*c && strchr("+-=", *c)) {
			struct vp_modeclause cl = { .who = who, .op = *c++ };
			if (*c && strchr("ugo", *c) && (c[1] == 0 || c[1] == ',' || strchr("+-=", c[1]))) {
				cl.copy = *c++;
			} else {
				for (; *c && strchr("rwxXst", *c); c++) {
					switch (*c) {
					case 'r': cl.perm |= 0444; break;
					case 'w': cl.perm |= 0222; break;
					case 'x': cl.perm |= 0111; break;
					case 'X': cl.cond_x = true; break;
					case 's': cl.perm |= S_ISUID | S_ISGID; break;
					case 't': cl.perm |= S_ISVTX; break;
					}
				}
			}
			if (p.n == VP_MODE_MAX_CLAUSES)
				return -EINVAL;
			p.c[p.n++] = cl;
		}
		if (*c == ',') {
			c++;
			if (!*c)
				return -EINVAL;
		} else if (*c) {
			return -EINVAL;
		}
	}
	*ret = p;
	return 0;
}

static unsigned copy_bits(mode_t m, char from)
{
	unsigned b = from == 'u' ? (m >> 6) & 7 : from == 'g' ? (m >> 3) & 7 : m & 7;
	return b * 0111; /* replicate to u, g and o; the clause's who masks it */
}

mode_t vp_modeprog_apply(const struct vp_modeprog *p, mode_t mode, bool is_dir)
{
	mode_t m = mode & 07777;

	if (p->octal) {
		mode_t keep = is_dir && !p->octal_explicit_ids ? m & (S_ISUID | S_ISGID) : 0;
		return p->octal_mode | keep;
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct vp_modeclause *c = &p->c[i];
		unsigned bits = c->copy ? copy_bits(m, c->copy) : c->perm;
		if (c->cond_x && (is_dir || (m & 0111)))
			bits |= 0111;
		bits &= c->who;
		switch (c->op) {
		case '+': m |= bits; break;
		case '-': m &= ~bits; break;
		case '=': {
			/* '=' clears the rwx it governs, the sticky bit with 'o',
			 * and for u/g the id bits; like chmod, a directory keeps
			 * setuid/setgid unless they are named. */
			unsigned clear = c->who & (0777 | S_ISVTX);
			if (!is_dir)
				clear |= c->who & (S_ISUID | S_ISGID);
			m = (m & ~clear) | bits;
			break;
		}
		}
	}
	return m & 07777;
}
