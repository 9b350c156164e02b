/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_MODESPEC_H
#define VOLPERM_MODESPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* chmod(1)-style mode expressions for --chmod, and octal modes for
 * --root-mode. Pure: parse once, apply to many modes. */

struct vp_modeclause {
	unsigned who;     /* bits of 07777 this clause may touch (from u/g/o/a) */
	char op;          /* '+', '-', '=' */
	unsigned perm;    /* r/w/x/s/t as mode bits, before masking with who */
	bool cond_x;      /* 'X': execute if a directory or already executable */
	char copy;        /* 'u', 'g', 'o' to copy those bits, or 0 */
};

#define VP_MODE_MAX_CLAUSES 32

struct vp_modeprog {
	bool octal;
	mode_t octal_mode;
	bool octal_explicit_ids; /* 5+ digits: also sets a directory's setuid/setgid */
	size_t n;
	struct vp_modeclause c[VP_MODE_MAX_CLAUSES];
};

/* "u+rwX,go-w", "a=r", "g+s", "755", "0755", "00755". A missing who means
 * 'a' (unlike chmod(1), the umask is ignored: a volume's result must not
 * depend on the caller's umask). Returns 0 or -EINVAL. */
int vp_parse_chmod(const char *s, struct vp_modeprog *ret);

/* An octal permission mode, e.g. "0700", "750" (no more than 07777).
 * Returns 0, -EINVAL or -ERANGE. */
int vp_parse_octal_mode(const char *s, mode_t *ret);

/* The permission bits (07777) after applying the program to mode. */
mode_t vp_modeprog_apply(const struct vp_modeprog *p, mode_t mode, bool is_dir);

#endif
