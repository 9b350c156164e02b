/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for include/volperm/modespec.h: --chmod and --root-mode.
 *
 * The rules under test (modespec.h, issue 5):
 *  - vp_parse_chmod takes chmod(1)'s syntax: symbolic clauses
 *    [ugoa]*[+-=](perms|u|g|o)... separated by ',', perms of rwxXst, or an
 *    octal mode of 1 to 4 digits (5 or more: a directory's setuid/setgid are
 *    cleared too, as GNU chmod does). Junk is -EINVAL.
 *  - vp_modeprog_apply has GNU chmod's semantics, except that a missing
 *    "who" means 'a' (the umask is ignored): the result must not depend on
 *    the caller's umask. So the reference is GNU chmod run with umask 0.
 *  - vp_parse_octal_mode: octal digits only, at most 07777 (-ERANGE above),
 *    anything else -EINVAL.
 *
 * The reference: ref_compile/ref_adjust below are a transcription of
 * gnulib's modechange.c (mode_compile, mode_adjust), the code GNU chmod
 * runs, with umask 0. test_apply_matches_gnu_chmod compares volperm with it
 * for every one of the 4096 permission patterns of a file and of a
 * directory, for a list of expressions; tests/policy/chmod.sh compares with
 * the real chmod -R on real trees. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "volperm/modespec.h"

/* ---- a transcription of gnulib modechange.c (GNU chmod), umask 0 ---- */

#define REF_MODE_BITS 07777u
enum { REF_ORDINARY, REF_X_IF_ANY_X, REF_COPY_EXISTING };

struct ref_change {
	char op;
	char flag;
	unsigned affected, value, mentioned;
};

struct ref_prog {
	size_t n;
	struct ref_change c[64];
};

/* mode_compile. Returns false for what GNU chmod calls an invalid mode. */
static bool ref_compile(const char *s, struct ref_prog *rp)
{
	const char *p = s;

	rp->n = 0;
	if (*s >= '0' && *s < '8') {
		unsigned octal = 0;
		do {
			octal = 8 * octal + (unsigned)(*p++ - '0');
			if (octal > REF_MODE_BITS)
				return false;
		} while (*p >= '0' && *p < '8');
		if (*p)
			return false;
		unsigned mentioned = p - s < 5 ? (octal & (S_ISUID | S_ISGID)) | S_ISVTX | 0777
		                               : REF_MODE_BITS;
		rp->c[rp->n++] = (struct ref_change){ '=', REF_ORDINARY, REF_MODE_BITS, octal,
		                                      mentioned };
		return true;
	}
	do {
		unsigned affected = 0;
		for (;; p++) {
			switch (*p) {
			case 'u': affected |= S_ISUID | 0700; continue;
			case 'g': affected |= S_ISGID | 0070; continue;
			case 'o': affected |= S_ISVTX | 0007; continue;
			case 'a': affected |= REF_MODE_BITS; continue;
			case '=': case '+': case '-': break;
			default: return false;
			}
			break;
		}
		do {
			char op = *p++;
			unsigned value = 0, mentioned = 0;
			char flag = REF_COPY_EXISTING;
			switch (*p) {
			case 'u': value = 0700; p++; break;
			case 'g': value = 0070; p++; break;
			case 'o': value = 0007; p++; break;
			case '0': case '1': case '2': case '3':
			case '4': case '5': case '6': case '7': {
				/* "=755": an absolute octal mode after the operator */
				unsigned octal = 0;
				do {
					octal = 8 * octal + (unsigned)(*p++ - '0');
					if (octal > REF_MODE_BITS)
						return false;
				} while (*p >= '0' && *p < '8');
				if (affected || (*p && *p != ','))
					return false;
				affected = mentioned = REF_MODE_BITS;
				value = octal;
				flag = REF_ORDINARY;
				break;
			}
			default:
				flag = REF_ORDINARY;
				for (;; p++) {
					if (*p == 'r')
						value |= 0444;
					else if (*p == 'w')
						value |= 0222;
					else if (*p == 'x')
						value |= 0111;
					else if (*p == 's')
						value |= S_ISUID | S_ISGID;
					else if (*p == 't')
						value |= S_ISVTX;
					else if (*p == 'X')
						flag = REF_X_IF_ANY_X;
					else
						break;
				}
			}
			if (rp->n == sizeof rp->c / sizeof rp->c[0])
				return false;
			mentioned = mentioned ? mentioned : affected ? affected & value : value;
			rp->c[rp->n++] = (struct ref_change){ op, flag, affected, value, mentioned };
		} while (*p == '=' || *p == '+' || *p == '-');
	} while (*p++ == ',');
	return *--p == 0;
}

/* mode_adjust with umask 0. */
static unsigned ref_adjust(const struct ref_prog *rp, unsigned oldmode, bool dir)
{
	unsigned newmode = oldmode & REF_MODE_BITS;

	for (size_t i = 0; i < rp->n; i++) {
		const struct ref_change *c = &rp->c[i];
		unsigned affected = c->affected;
		unsigned omit = (dir ? S_ISUID | S_ISGID : 0) & ~c->mentioned;
		unsigned value = c->value;
		if (c->flag == REF_COPY_EXISTING) {
			value &= newmode;
			value |= (value & 0444 ? 0444 : 0) | (value & 0222 ? 0222 : 0) |
			         (value & 0111 ? 0111 : 0);
		} else if (c->flag == REF_X_IF_ANY_X) {
			if ((newmode & 0111) || dir)
				value |= 0111;
		}
		value &= (affected ? affected : ~0u /* ~umask, umask 0 */) & ~omit;
		switch (c->op) {
		case '=': {
			unsigned preserved = (affected ? ~affected : 0) | omit;
			newmode = (newmode & preserved) | value;
			break;
		}
		case '+': newmode |= value; break;
		case '-': newmode &= ~value; break;
		}
	}
	return newmode & REF_MODE_BITS;
}

/* ---- helpers ---- */

static mode_t apply_str(const char *spec, mode_t mode, bool is_dir)
{
	struct vp_modeprog p;
	int r = vp_parse_chmod(spec, &p);
	if (r != 0)
		fail_msg("vp_parse_chmod(\"%s\") = %d, want 0", spec, r);
	return vp_modeprog_apply(&p, mode, is_dir);
}

/* ---- vp_parse_chmod ---- */

static void test_parse_valid(void **state)
{
	(void)state;
	static const char *const ok[] = {
		"u+rwX,go-w", "a=r", "g+s", "755", "0755", "00755", "0", "7777", "07777",
		"u=rwx,g=u,o=", "+t", "=", "u-x+w", "ug+rw-x", "a+X", "o=g", "u=g+x",
		"ugo+r", "+", "-", "u=", "g-s,o+t", "a=rwxst", "go=u-w", "u+rwxXst",
		"uuu+r", "+r,+w,+x", "u=rwX,g=rX,o=",
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct vp_modeprog p;
		struct ref_prog rp;
		memset(&p, 0x5a, sizeof p);
		int r = vp_parse_chmod(ok[i], &p);
		if (r != 0) {
			print_error("vp_parse_chmod(\"%s\") = %d, want 0\n", ok[i], r);
			failures++;
		}
		if (!ref_compile(ok[i], &rp)) {
			print_error("test bug: GNU chmod would refuse \"%s\"\n", ok[i]);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void test_parse_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "u", "ug", "x", "r", "rw", "u+rwz", "u+r,", ",u+r", "u+r,,g+w", "8", "0758",
		"017777", "77777", "u+r w", " 755", "755 ", "u*r", "abc", "u+r;", "+755x",
		"-755", "0x755", "u=gx", "ub+r", "U+r", "u+R", "a+w\n", "u+r,x",
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct vp_modeprog p, before;
		memset(&p, 0x5a, sizeof p);
		memcpy(&before, &p, sizeof p);
		int r = vp_parse_chmod(bad[i], &p);
		if (r != -EINVAL) {
			print_error("vp_parse_chmod(\"%s\") = %d, want -EINVAL\n", bad[i], r);
			failures++;
		}
		struct ref_prog rp;
		if (ref_compile(bad[i], &rp) && strcmp(bad[i], "-755") != 0) {
			/* "-755" is a valid GNU mode ("remove 0755") but volperm
			 * takes numeric modes only as absolute modes; everything
			 * else listed here GNU chmod refuses too. */
			print_error("test bug: GNU chmod accepts \"%s\"\n", bad[i]);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
	struct vp_modeprog p;
	assert_int_equal(vp_parse_chmod(NULL, &p), -EINVAL);
}

/* More clauses than the program holds is refused, not truncated. */
static void test_parse_too_many_clauses(void **state)
{
	(void)state;
	char buf[1024] = "";
	for (int i = 0; i < VP_MODE_MAX_CLAUSES; i++)
		strcat(buf, i ? ",u+r" : "u+r");
	struct vp_modeprog p;
	assert_int_equal(vp_parse_chmod(buf, &p), 0);
	assert_int_equal(apply_str(buf, 0, false), 0400);
	strcat(buf, ",g+w");
	assert_int_equal(vp_parse_chmod(buf, &p), -EINVAL);
}

/* ---- vp_parse_octal_mode ---- */

static void test_parse_octal_mode(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int r;
		mode_t want;
	} t[] = {
		{ "0700", 0, 0700 }, { "700", 0, 0700 }, { "750", 0, 0750 }, { "0", 0, 0 },
		{ "00", 0, 0 }, { "7777", 0, 07777 }, { "07777", 0, 07777 }, { "2770", 0, 02770 },
		{ "000700", 0, 0700 }, { "1", 0, 01 },
		{ "10000", -ERANGE, 0 }, { "17777", -ERANGE, 0 }, { "77777", -ERANGE, 0 },
		{ "", -EINVAL, 0 }, { "8", -EINVAL, 0 }, { "0780", -EINVAL, 0 }, { "07a0", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 }, { "+700", -EINVAL, 0 }, { " 700", -EINVAL, 0 },
		{ "700 ", -EINVAL, 0 }, { "0x700", -EINVAL, 0 }, { "u=rwx", -EINVAL, 0 },
		{ "0700\n", -EINVAL, 0 },
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		mode_t m = 0123;
		int r = vp_parse_octal_mode(t[i].s, &m);
		bool bad = t[i].r == 0 ? r != 0 || m != t[i].want
		                       : (t[i].r == -ERANGE ? r != -ERANGE && r != -EINVAL : r != -EINVAL) ||
		                             m != 0123;
		if (bad) {
			print_error("vp_parse_octal_mode(\"%s\") = %d, mode %04o; want %d, %04o%s\n",
			            t[i].s, r, (unsigned)m, t[i].r, (unsigned)t[i].want,
			            t[i].r ? " (mode untouched)" : "");
			failures++;
		}
	}
	assert_int_equal(failures, 0);
	mode_t m;
	assert_int_equal(vp_parse_octal_mode(NULL, &m), -EINVAL);
	/* out of range above 07777: -ERANGE as modespec.h documents */
	assert_int_equal(vp_parse_octal_mode("10000", &m), -ERANGE);
}

/* ---- vp_modeprog_apply: hand-checked cases (what GNU chmod gives) ---- */

static void test_apply_table(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		bool dir;
		mode_t in, want;
	} t[] = {
		/* the issue's example */
		{ "u+rwX,go-w", false, 0666, 0644 },
		{ "u+rwX,go-w", false, 0600, 0600 },
		{ "u+rwX,go-w", false, 0700, 0700 },
		{ "u+rwX,go-w", false, 0410, 0710 },  /* X: some x already set */
		{ "u+rwX,go-w", false, 0444, 0644 },  /* X: no x anywhere, file */
		{ "u+rwX,go-w", true, 0444, 0744 },   /* X: directory */
		{ "u+rwX,go-w", true, 0777, 0755 },
		{ "u+rwX,go-w", true, 02777, 02755 }, /* setgid untouched */
		/* X looks at the mode as changed so far */
		{ "u+x,g+X", false, 0600, 0710 },
		{ "g+X,u+x", false, 0600, 0700 },
		{ "a-x,a+X", false, 0755, 0644 },
		{ "a-x,a+X", true, 0644, 0755 },
		/* missing who is 'a' (no umask) */
		{ "+w", false, 0444, 0666 },
		{ "-r", false, 0644, 0200 },
		{ "=r", false, 0755, 0444 },
		{ "+x", false, 0600, 0711 },
		/* '=' */
		{ "a=r", false, 0777, 0444 },
		{ "u=rwx,g=rx,o=", false, 0666, 0750 },
		{ "go=", true, 0777, 0700 },
		{ "u=", false, 04755, 0055 },         /* clears setuid of a file */
		{ "g=rx", false, 02775, 0755 },       /* clears setgid of a file */
		{ "g=rx", true, 02775, 02755 },       /* a directory keeps it unless named */
		{ "u=rwx", true, 04755, 04755 },
		{ "g=rwxs", true, 0755, 02775 },
		/* copies */
		{ "g=u", false, 0640, 0660 },
		{ "o=g", false, 0751, 0755 },
		{ "go=u", false, 0700, 0777 },
		{ "g=u-w", false, 0740, 0750 },
		{ "u=g+x", false, 0040, 0540 },
		{ "o+u", false, 0600, 0606 },
		{ "u-o", false, 0705, 0205 },
		/* s and t */
		{ "g+s", true, 0755, 02755 },
		{ "g+s", false, 0755, 02755 },
		{ "u+s", false, 0755, 04755 },
		{ "o+s", false, 0755, 0755 },         /* no id bit for "other" */
		{ "+t", true, 0777, 01777 },
		{ "u+t", true, 0777, 0777 },          /* sticky belongs to 'o' */
		{ "a-s", true, 06775, 0775 },
		{ "g-s", true, 02775, 0775 },
		{ "-t", true, 01777, 0777 },
		/* octal */
		{ "755", false, 04700, 0755 },
		{ "0755", false, 06777, 0755 },
		{ "0644", false, 01777, 0644 },
		{ "0755", true, 02700, 02755 },       /* 1-4 digits: a dir keeps setgid */
		{ "0755", true, 04700, 04755 },       /* ... and setuid */
		{ "00755", true, 02700, 0755 },       /* 5 digits: cleared */
		{ "2755", true, 0700, 02755 },
		{ "2755", true, 04700, 06755 },
		{ "0755", true, 01777, 0755 },        /* sticky is not kept */
		{ "1777", true, 0, 01777 },
		{ "0", false, 07777, 0 },
		{ "0", true, 07777, 06000 },
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		mode_t got = apply_str(t[i].spec, t[i].in, t[i].dir);
		if (got != t[i].want) {
			print_error("\"%s\" on %s %04o: got %04o, want %04o\n", t[i].spec,
			            t[i].dir ? "dir" : "file", (unsigned)t[i].in, (unsigned)got,
			            (unsigned)t[i].want);
			failures++;
		}
		/* the hand-checked table agrees with the gnulib transcription */
		struct ref_prog rp;
		assert_true(ref_compile(t[i].spec, &rp));
		unsigned ref = ref_adjust(&rp, t[i].in, t[i].dir);
		if (ref != t[i].want) {
			print_error("test bug: gnulib gives %04o for \"%s\" on %s %04o, table says %04o\n",
			            ref, t[i].spec, t[i].dir ? "dir" : "file", (unsigned)t[i].in,
			            (unsigned)t[i].want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* '=' governs the sticky bit when "other" is among the who (o, a, or no
 * who at all), as GNU chmod does: `chmod o=rx` or `chmod -R u=rwX,g=rX,o=`
 * on a sticky directory (a shared upload or tmp dir inside a volume)
 * leaves it without the sticky bit. */
static void test_apply_equals_clears_sticky(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		bool dir;
		mode_t in, want;
	} t[] = {
		{ "o=r", false, 01755, 0754 },
		{ "o=rx", true, 01777, 0775 },
		{ "a=rX", true, 01777, 0555 },
		{ "a=rX", true, 03775, 02555 },       /* setgid of a dir stays, sticky goes */
		{ "=r", false, 01644, 0444 },
		{ "u=rwX,g=rX,o=", true, 01777, 0750 },
		{ "go=", true, 01777, 0700 },
		{ "o=t", true, 0777, 01770 },         /* unless named */
		{ "u=rwx", true, 01777, 01777 },      /* 'u' does not govern it */
		{ "g=u", true, 01755, 01775 },
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		mode_t got = apply_str(t[i].spec, t[i].in, t[i].dir);
		struct ref_prog rp;
		assert_true(ref_compile(t[i].spec, &rp));
		assert_int_equal(ref_adjust(&rp, t[i].in, t[i].dir), t[i].want);
		if (got != t[i].want) {
			print_error("\"%s\" on %s %04o: got %04o, want %04o (GNU chmod)\n", t[i].spec,
			            t[i].dir ? "dir" : "file", (unsigned)t[i].in, (unsigned)got,
			            (unsigned)t[i].want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* Exhaustive: every permission pattern (07777) of a file and of a directory,
 * for each expression, against the gnulib transcription. */
static void test_apply_matches_gnu_chmod(void **state)
{
	(void)state;
	static const char *const specs[] = {
		"u+rwX,go-w", "a=r", "a+X", "a-x,a+X", "+X", "=X", "u=rwX,g=rX,o=", "go-rwx",
		"ug+rw", "o=", "u=", "g=", "=", "+", "g=u", "o=g", "u=o", "go=u-w", "u=g+x", "g+s",
		"u+s", "g-s", "a-s", "+s", "=s", "u=s", "+t", "-t", "o=t", "a=rwxst", "o+t,o-x",
		"u+x,g+X", "g+X,u+x", "ug=rwX", "a=rwx", "u+rwX,g+rX,o-rwx", "=rX", "ugo=rX",
		"a+rw,u-w,g=o", "0", "755", "0755", "00755", "0644", "2755", "02770", "4755",
		"1777", "7777", "01777", "000755", "750", "0700",
	};
	unsigned long total = 0;
	for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
		struct vp_modeprog p;
		struct ref_prog rp;
		if (vp_parse_chmod(specs[s], &p) != 0)
			fail_msg("vp_parse_chmod(\"%s\") refused a valid mode", specs[s]);
		assert_true(ref_compile(specs[s], &rp));
		unsigned long bad = 0;
		for (int dir = 0; dir < 2; dir++) {
			for (mode_t m = 0; m <= 07777; m++) {
				mode_t got = vp_modeprog_apply(&p, m, dir);
				unsigned want = ref_adjust(&rp, m, dir);
				if (got != want) {
					if (bad < 3)
						print_error("\"%s\" on %s %04o: volperm %04o, GNU chmod %04o\n",
						            specs[s], dir ? "dir" : "file", (unsigned)m,
						            (unsigned)got, want);
					bad++;
				}
			}
		}
		if (bad)
			print_error("\"%s\": %lu of 8192 modes differ from GNU chmod\n", specs[s], bad);
		total += bad;
	}
	assert_int_equal(total, 0);
}

/* The result holds permission bits only (no file type), whatever the
 * input carries, and the umask plays no part. */
static void test_apply_bits_only_no_umask(void **state)
{
	(void)state;
	mode_t old = umask(077);
	assert_int_equal(apply_str("+rw", S_IFREG | 0400, false), 0666);
	assert_int_equal(apply_str("+x", S_IFDIR | 0700, true), 0711);
	umask(0777);
	assert_int_equal(apply_str("=rwX", S_IFDIR | 0, true), 0777);
	assert_int_equal(apply_str("a+r", S_IFREG | 0, false), 0444);
	umask(old);
	assert_int_equal(apply_str("u+r", S_IFDIR | 0, true), 0400);
	assert_int_equal(apply_str("0750", S_IFREG | 0644, false), 0750);
	assert_int_equal(apply_str("0750", S_IFLNK | 0777, false), 0750);
}

/* One parsed program applies to many modes (parse once, apply to many):
 * applying does not change the program. */
static void test_program_reusable(void **state)
{
	(void)state;
	struct vp_modeprog p, copy;
	assert_int_equal(vp_parse_chmod("u+rwX,go-w,g+s", &p), 0);
	memcpy(&copy, &p, sizeof p);
	for (mode_t m = 0; m <= 07777; m += 7)
		(void)vp_modeprog_apply(&p, m, m & 1);
	assert_memory_equal(&p, &copy, sizeof p);
	assert_int_equal(vp_modeprog_apply(&p, 0666, false), 02644);
	assert_int_equal(vp_modeprog_apply(&p, 0777, true), 02755);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_parse_too_many_clauses),
		cmocka_unit_test(test_parse_octal_mode),
		cmocka_unit_test(test_apply_table),
		cmocka_unit_test(test_apply_equals_clears_sticky),
		cmocka_unit_test(test_apply_matches_gnu_chmod),
		cmocka_unit_test(test_apply_bits_only_no_umask),
		cmocka_unit_test(test_program_reusable),
	};
	return cmocka_run_group_tests_name("modespec", tests, NULL, NULL);
}
