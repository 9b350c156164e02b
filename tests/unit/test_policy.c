/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for include/volperm/policy.h.
 *
 * - vp_policy_excluded: a glob without '/' matches the entry's name at any
 *   depth; a glob with '/' matches the whole path relative to the root with
 *   FNM_PATHNAME ('*' does not cross '/').
 * - vp_policy_to_text / vp_policy_from_text: "key value\n" lines, values
 *   %XX-escaped; the round trip is exact for any exclude bytes (spaces,
 *   newlines, '%', non-ASCII); bad text is -EBADMSG and leaves *p untouched.
 *   The text is stored in the journal and drives `recover --forward`, so an
 *   exclude must never be able to smuggle in a key of its own.
 * - vp_policy_is_empty, vp_policy_describe. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "volperm/policy.h"

/* ---- helpers ---- */

static void policy_with_excludes(struct vp_policy *p, const char *const *globs, size_t n)
{
	vp_policy_init(p);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(vp_policy_add_exclude(p, globs[i]), 0);
}

static void assert_policy_equal(const struct vp_policy *a, const struct vp_policy *b)
{
	assert_int_equal(a->has_uid, b->has_uid);
	assert_int_equal(a->has_gid, b->has_gid);
	if (a->has_uid)
		assert_int_equal(a->uid, b->uid);
	if (a->has_gid)
		assert_int_equal(a->gid, b->gid);
	assert_int_equal(a->n_uid_maps, b->n_uid_maps);
	for (size_t i = 0; i < a->n_uid_maps; i++) {
		assert_int_equal(a->uid_maps[i].from, b->uid_maps[i].from);
		assert_int_equal(a->uid_maps[i].to, b->uid_maps[i].to);
	}
	assert_int_equal(a->n_gid_maps, b->n_gid_maps);
	for (size_t i = 0; i < a->n_gid_maps; i++) {
		assert_int_equal(a->gid_maps[i].from, b->gid_maps[i].from);
		assert_int_equal(a->gid_maps[i].to, b->gid_maps[i].to);
	}
	assert_int_equal(a->n_excludes, b->n_excludes);
	for (size_t i = 0; i < a->n_excludes; i++) {
		assert_non_null(b->excludes[i]);
		size_t la = strlen(a->excludes[i]), lb = strlen(b->excludes[i]);
		if (la != lb || memcmp(a->excludes[i], b->excludes[i], la) != 0)
			fail_msg("exclude %zu: [%s] came back as [%s]", i, a->excludes[i],
			         b->excludes[i]);
	}
	assert_int_equal(a->cross_mounts, b->cross_mounts);
	assert_int_equal(a->include_devices, b->include_devices);
	assert_int_equal(a->allow_external_links, b->allow_external_links);
}

/* "key value\n" lines: a key of [a-z0-9_-] starting with a letter, then
 * nothing or one space and a value; every line ends in '\n'. */
static void check_text_shape(const char *t, size_t n)
{
	size_t i = 0;
	while (i < n) {
		const char *nl = memchr(t + i, '\n', n - i);
		if (!nl)
			fail_msg("policy text does not end with a newline (at %zu): [%.*s]", i,
			         (int)(n - i), t + i);
		size_t end = (size_t)(nl - t);
		if (!(t[i] >= 'a' && t[i] <= 'z'))
			fail_msg("policy text line at %zu does not start with a key: [%.*s]", i,
			         (int)(end - i), t + i);
		size_t k = i;
		while (k < end && ((t[k] >= 'a' && t[k] <= 'z') || (t[k] >= '0' && t[k] <= '9') ||
		                   t[k] == '_' || t[k] == '-'))
			k++;
		if (k < end && t[k] != ' ')
			fail_msg("policy text line at %zu: bad key: [%.*s]", i, (int)(end - i), t + i);
		for (size_t j = i; j < end; j++)
			if (t[j] == '\0')
				fail_msg("policy text has a NUL byte at %zu", j);
		i = end + 1;
	}
}

static void roundtrip(const struct vp_policy *p, struct vp_policy *out)
{
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(vp_policy_to_text(p, &text, &len), 0);
	assert_non_null(text);
	check_text_shape(text, len);
	int r = vp_policy_from_text(text, len, out);
	if (r != 0)
		fail_msg("vp_policy_from_text of its own output failed: %d: [%.*s]", r, (int)len,
		         text);
	assert_policy_equal(p, out);
	/* serialising the copy gives the same text (canonical form) */
	char *text2 = NULL;
	size_t len2 = 0;
	assert_int_equal(vp_policy_to_text(out, &text2, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(text, text2, len);
	free(text);
	free(text2);
}

/* ---- vp_policy_excluded ---- */

struct ex {
	const char *relpath, *name;
	bool want;
};

static void check_excluded(const char *const *globs, size_t ng, const struct ex *cases, size_t n)
{
	struct vp_policy p;
	policy_with_excludes(&p, globs, ng);
	for (size_t i = 0; i < n; i++) {
		bool got = vp_policy_excluded(&p, cases[i].relpath, cases[i].name);
		if (got != cases[i].want)
			fail_msg("globs [%s%s] relpath \"%s\" name \"%s\": excluded=%d, want %d",
			         globs[0], ng > 1 ? ", ..." : "", cases[i].relpath, cases[i].name, got,
			         cases[i].want);
	}
	vp_policy_free(&p);
}

#define CHECK_EX(globs, cases) \
	check_excluded((globs), sizeof(globs) / sizeof((globs)[0]), (cases), \
	               sizeof(cases) / sizeof((cases)[0]))

static void test_excluded_name_globs(void **state)
{
	(void)state;
	static const char *const g1[] = { "*.log" };
	static const struct ex c1[] = {
		{ "x.log", "x.log", true },
		{ "a/x.log", "x.log", true },
		{ "a/b/c/d/x.log", "x.log", true },
		{ "a/x.logs", "x.logs", false },
		{ "x.log.d/y", "y", false },   /* only the entry's own name counts */
		{ "logs/x.txt", "x.txt", false },
	};
	CHECK_EX(g1, c1);

	static const char *const g2[] = { "cache" };
	static const struct ex c2[] = {
		{ "cache", "cache", true },
		{ "a/cache", "cache", true },
		{ "a/b/cache", "cache", true },
		{ "a/cache2", "cache2", false },
		{ "a/xcache", "xcache", false },
		{ "cache/x", "x", false },
		{ "a/Cache", "Cache", false }, /* case-sensitive */
	};
	CHECK_EX(g2, c2);

	static const char *const g3[] = { "[ab]?" };
	static const struct ex c3[] = {
		{ "d/a1", "a1", true },
		{ "b2", "b2", true },
		{ "d/c1", "c1", false },
		{ "d/a", "a", false },
		{ "d/a12", "a12", false },
	};
	CHECK_EX(g3, c3);

	static const char *const g4[] = { "a b", ".git", "\xff*" };
	static const struct ex c4[] = {
		{ "d/a b", "a b", true },
		{ "d/ab", "ab", false },
		{ ".git", ".git", true },
		{ "x/y/.git", ".git", true },
		{ "x/.gitignore", ".gitignore", false },
		{ "x/\xff\xfe", "\xff\xfe", true },
		{ "x/\xfe\xff", "\xfe\xff", false },
	};
	CHECK_EX(g4, c4);

	static const char *const g5[] = { "*" };
	static const struct ex c5[] = {
		{ "a", "a", true },
		{ "a/b/c", "c", true },
	};
	CHECK_EX(g5, c5);
}

static void test_excluded_path_globs(void **state)
{
	(void)state;
	static const char *const g1[] = { "build/cache" };
	static const struct ex c1[] = {
		{ "build/cache", "cache", true },
		{ "x/build/cache", "cache", false }, /* anchored at the root */
		{ "build/cache/x", "x", false },
		{ "cache", "cache", false },
		{ "build", "build", false },
	};
	CHECK_EX(g1, c1);

	static const char *const g2[] = { "a/*.tmp" };
	static const struct ex c2[] = {
		{ "a/x.tmp", "x.tmp", true },
		{ "a/b/x.tmp", "x.tmp", false }, /* FNM_PATHNAME: '*' does not cross '/' */
		{ "b/a/x.tmp", "x.tmp", false },
		{ "x.tmp", "x.tmp", false },
		{ "a/x.tmp2", "x.tmp2", false },
	};
	CHECK_EX(g2, c2);

	static const char *const g3[] = { "*/node_modules" };
	static const struct ex c3[] = {
		{ "app/node_modules", "node_modules", true },
		{ "node_modules", "node_modules", false },
		{ "a/b/node_modules", "node_modules", false },
	};
	CHECK_EX(g3, c3);

	static const char *const g4[] = { "*/*" };
	static const struct ex c4[] = {
		{ "a/b", "b", true },
		{ "a", "a", false },
		{ "a/b/c", "c", false },
	};
	CHECK_EX(g4, c4);

	static const char *const g5[] = { "data/?/x" };
	static const struct ex c5[] = {
		{ "data/1/x", "x", true },
		{ "data//x", "x", false },
		{ "data/12/x", "x", false },
	};
	CHECK_EX(g5, c5);
}

static void test_excluded_mixed_and_none(void **state)
{
	(void)state;
	static const char *const g[] = { "*.log", "var/tmp", "lost+found" };
	static const struct ex c[] = {
		{ "a/b.log", "b.log", true },
		{ "var/tmp", "tmp", true },
		{ "x/var/tmp", "tmp", false },
		{ "lost+found", "lost+found", true },
		{ "x/lost+found", "lost+found", true },
		{ "var/tmp2", "tmp2", false },
		{ "var", "var", false },
		{ "tmp", "tmp", false },
	};
	CHECK_EX(g, c);

	struct vp_policy p;
	vp_policy_init(&p);
	assert_false(vp_policy_excluded(&p, "a", "a"));
	assert_false(vp_policy_excluded(&p, "a/b.log", "b.log"));
	assert_false(vp_policy_excluded(&p, ".", "."));
	vp_policy_free(&p);
}

/* The policy owns its excludes: later changes to the caller's buffer do not
 * leak in. */
static void test_add_exclude_copies(void **state)
{
	(void)state;
	char buf[16];
	strcpy(buf, "*.log");
	struct vp_policy p;
	vp_policy_init(&p);
	assert_int_equal(vp_policy_add_exclude(&p, buf), 0);
	strcpy(buf, "zzz");
	assert_int_equal(p.n_excludes, 1);
	assert_string_equal(p.excludes[0], "*.log");
	assert_true(p.excludes[0] != buf);
	assert_true(vp_policy_excluded(&p, "a/x.log", "x.log"));
	assert_false(vp_policy_excluded(&p, "zzz", "zzz"));
	vp_policy_free(&p);
}

/* ---- maps ---- */

static void test_add_maps(void **state)
{
	(void)state;
	struct vp_policy p;
	vp_policy_init(&p);
	assert_int_equal(p.n_uid_maps, 0);
	assert_int_equal(p.n_gid_maps, 0);
	assert_int_equal(p.n_excludes, 0);
	assert_false(p.has_uid);
	assert_false(p.has_gid);
	assert_false(p.cross_mounts);
	assert_false(p.include_devices);
	assert_false(p.allow_external_links);
	for (uint32_t i = 0; i < 100; i++) {
		assert_int_equal(vp_policy_add_uid_map(&p, i, i + 1000), 0);
		assert_int_equal(vp_policy_add_gid_map(&p, i * 2, i * 3), 0);
	}
	assert_int_equal(p.n_uid_maps, 100);
	assert_int_equal(p.n_gid_maps, 100);
	for (uint32_t i = 0; i < 100; i++) {
		assert_int_equal(p.uid_maps[i].from, i);
		assert_int_equal(p.uid_maps[i].to, i + 1000);
		assert_int_equal(p.gid_maps[i].from, i * 2);
		assert_int_equal(p.gid_maps[i].to, i * 3);
	}
	vp_policy_free(&p);
}

/* ---- is_empty ---- */

static void test_is_empty(void **state)
{
	(void)state;
	struct vp_policy p;

	vp_policy_init(&p);
	assert_true(vp_policy_is_empty(&p));
	/* scope options change nothing by themselves */
	p.cross_mounts = p.include_devices = p.allow_external_links = true;
	assert_int_equal(vp_policy_add_exclude(&p, "*.log"), 0);
	assert_true(vp_policy_is_empty(&p));
	vp_policy_free(&p);

	vp_policy_init(&p);
	p.has_uid = true;
	p.uid = 0;
	assert_false(vp_policy_is_empty(&p));
	vp_policy_free(&p);

	vp_policy_init(&p);
	p.has_gid = true;
	p.gid = 0;
	assert_false(vp_policy_is_empty(&p));
	vp_policy_free(&p);

	vp_policy_init(&p);
	assert_int_equal(vp_policy_add_uid_map(&p, 1000, 1001), 0);
	assert_false(vp_policy_is_empty(&p));
	vp_policy_free(&p);

	vp_policy_init(&p);
	assert_int_equal(vp_policy_add_gid_map(&p, 1000, 1001), 0);
	assert_false(vp_policy_is_empty(&p));
	vp_policy_free(&p);
}

/* ---- text round trip ---- */

static const char *const hostile_excludes[] = {
	"*.log",
	"with space",
	" leading",
	"trailing ",
	"two  spaces",
	"new\nline",
	"\n",
	"tab\there",
	"cr\rlf",
	"100%",
	"%",
	"%%",
	"%41",    /* must come back as "%41", not "A" */
	"%2",
	"%zz",
	"\xff\xfe",
	"\xc3\xa9t\xc3\xa9",
	"\x01\x1f\x7f\x80",
	"back\\slash",
	"=",
	"key value",
	"exclude x",
	"a/b c/*.tmp",
	"[!a-z]*",
};

static void test_text_roundtrip_full(void **state)
{
	(void)state;
	struct vp_policy p, q;
	vp_policy_init(&p);
	p.has_uid = true;
	p.uid = 1001;
	p.has_gid = true;
	p.gid = 1002;
	assert_int_equal(vp_policy_add_uid_map(&p, 1000, 2000), 0);
	assert_int_equal(vp_policy_add_uid_map(&p, 0, 4294967294u), 0);
	assert_int_equal(vp_policy_add_uid_map(&p, 4294967294u, 0), 0);
	assert_int_equal(vp_policy_add_gid_map(&p, 1000, 3000), 0);
	assert_int_equal(vp_policy_add_gid_map(&p, 7, 7), 0);
	for (size_t i = 0; i < sizeof hostile_excludes / sizeof hostile_excludes[0]; i++)
		assert_int_equal(vp_policy_add_exclude(&p, hostile_excludes[i]), 0);
	p.cross_mounts = true;
	p.include_devices = true;
	p.allow_external_links = true;
	roundtrip(&p, &q);
	vp_policy_free(&q);
	vp_policy_free(&p);
}

static void test_text_roundtrip_variants(void **state)
{
	(void)state;
	/* every combination of the optional parts */
	for (unsigned bits = 0; bits < 256; bits++) {
		struct vp_policy p, q;
		vp_policy_init(&p);
		if (bits & 1) {
			p.has_uid = true;
			p.uid = (bits & 16) ? 0 : 4294967294u;
		}
		if (bits & 2) {
			p.has_gid = true;
			p.gid = (bits & 16) ? 4294967294u : 0;
		}
		if (bits & 4)
			assert_int_equal(vp_policy_add_uid_map(&p, 1000 + bits, 2000 + bits), 0);
		if (bits & 8)
			assert_int_equal(vp_policy_add_gid_map(&p, 3000 + bits, 4000 + bits), 0);
		if (bits & 16)
			assert_int_equal(vp_policy_add_exclude(&p, "x\ny %41"), 0);
		p.cross_mounts = (bits & 32) != 0;
		p.include_devices = (bits & 64) != 0;
		p.allow_external_links = (bits & 128) != 0;
		roundtrip(&p, &q);
		assert_int_equal(vp_policy_is_empty(&q), vp_policy_is_empty(&p));
		vp_policy_free(&q);
		vp_policy_free(&p);
	}
}

/* Every single hostile exclude alone, and all 255 non-NUL bytes in one. */
static void test_text_roundtrip_each_exclude(void **state)
{
	(void)state;
	char all[256];
	for (int c = 1; c <= 255; c++)
		all[c - 1] = (char)c;
	all[255] = 0;
	for (size_t i = 0; i <= sizeof hostile_excludes / sizeof hostile_excludes[0]; i++) {
		struct vp_policy p, q;
		vp_policy_init(&p);
		const char *g = i < sizeof hostile_excludes / sizeof hostile_excludes[0]
		                        ? hostile_excludes[i]
		                        : all;
		assert_int_equal(vp_policy_add_exclude(&p, g), 0);
		roundtrip(&p, &q);
		vp_policy_free(&q);
		vp_policy_free(&p);
	}
}

/* An exclude that looks like policy lines must stay an exclude: the journal
 * policy drives `recover --forward`. */
static void test_text_no_injection(void **state)
{
	(void)state;
	struct vp_policy p, q;
	vp_policy_init(&p);
	/* whatever the key names are, a raw newline would start a new line */
	char *text = NULL;
	size_t len = 0;
	p.has_uid = true;
	p.uid = 1;
	assert_int_equal(vp_policy_to_text(&p, &text, &len), 0);
	vp_policy_free(&p);

	/* build an exclude that contains the whole text of an "owner 1" policy */
	char *evil = malloc(len + 8);
	assert_non_null(evil);
	memcpy(evil, "x\n", 2);
	memcpy(evil + 2, text, len);
	evil[len + 2] = 0;
	free(text);

	vp_policy_init(&p);
	assert_int_equal(vp_policy_add_exclude(&p, evil), 0);
	assert_int_equal(vp_policy_to_text(&p, &text, &len), 0);
	check_text_shape(text, len);
	/* no raw newline inside the value: exactly one line for one exclude */
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	char *text0 = NULL;
	size_t len0 = 0;
	struct vp_policy empty;
	vp_policy_init(&empty);
	assert_int_equal(vp_policy_to_text(&empty, &text0, &len0), 0);
	size_t lines0 = 0;
	for (size_t i = 0; i < len0; i++)
		lines0 += text0[i] == '\n';
	assert_int_equal(lines, lines0 + 1);
	free(text0);
	vp_policy_free(&empty);

	assert_int_equal(vp_policy_from_text(text, len, &q), 0);
	assert_false(q.has_uid);
	assert_false(q.has_gid);
	assert_true(vp_policy_is_empty(&q));
	assert_int_equal(q.n_excludes, 1);
	assert_string_equal(q.excludes[0], evil);
	vp_policy_free(&q);
	vp_policy_free(&p);
	free(text);
	free(evil);
}

/* ---- from_text: bad input ---- */

static char *replace_once(const char *text, size_t len, const char *old, const char *new,
                          size_t *newlen)
{
	const char *at = memmem(text, len, old, strlen(old));
	if (!at)
		fail_msg("[%s] not found in the policy text [%.*s]", old, (int)len, text);
	size_t pre = (size_t)(at - text), lo = strlen(old), ln = strlen(new);
	char *out = malloc(len - lo + ln + 1);
	assert_non_null(out);
	memcpy(out, text, pre);
	memcpy(out + pre, new, ln);
	memcpy(out + pre + ln, at + lo, len - pre - lo);
	*newlen = len - lo + ln;
	out[*newlen] = 0;
	return out;
}

/* Returns the number of problems (printed), so that one run lists them all. */
static int expect_bad_text(const char *text, size_t len, const char *what, int alt)
{
	struct vp_policy q, before;
	memset(&q, 0x5a, sizeof q);
	memcpy(&before, &q, sizeof q);
	int r = vp_policy_from_text(text, len, &q);
	if (r == 0) {
		print_error("%s: vp_policy_from_text accepted bad text [%.*s]\n", what, (int)len,
		            text);
		vp_policy_free(&q);
		return 1;
	}
	if (r != -EBADMSG && (alt == 0 || r != alt)) {
		print_error("%s: vp_policy_from_text returned %d, want -EBADMSG (%d)\n", what, r,
		            -EBADMSG);
		return 1;
	}
	if (memcmp(&q, &before, sizeof q) != 0) {
		print_error("%s: *p changed on failure\n", what);
		return 1;
	}
	return 0;
}

static void test_from_text_bad(void **state)
{
	(void)state;
	struct vp_policy p;
	vp_policy_init(&p);
	p.has_uid = true;
	p.uid = 1234567;
	p.has_gid = true;
	p.gid = 2345678;
	assert_int_equal(vp_policy_add_uid_map(&p, 3456789, 4567891), 0);
	assert_int_equal(vp_policy_add_exclude(&p, "%"), 0);
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(vp_policy_to_text(&p, &text, &len), 0);
	vp_policy_free(&p);

	/* sanity: the unmodified text parses */
	struct vp_policy ok;
	assert_int_equal(vp_policy_from_text(text, len, &ok), 0);
	assert_int_equal(ok.uid, 1234567);
	vp_policy_free(&ok);

	static const struct {
		const char *old, *new, *what;
	} muts[] = {
		{ "%25", "%zz", "bad hex in an escape" },
		{ "%25", "%g5", "bad hex digit" },
		{ "%25\n", "%2\n", "truncated escape" },
		{ "%25\n", "%\n", "bare percent" },
		{ "1234567", "4294967295", "uid out of range" },
		{ "1234567", "99999999999999999999", "uid overflow" },
		{ "1234567", "-1", "negative uid" },
		{ "1234567", "12a", "junk uid" },
		{ "1234567", "", "empty uid" },
		{ "2345678", "0x10", "hex gid" },
		{ "3456789", "x", "junk map" },
		{ "4567891", "4294967296", "map target out of range" },
	};
	int problems = 0;
	for (size_t i = 0; i < sizeof muts / sizeof muts[0]; i++) {
		size_t n2;
		char *t2 = replace_once(text, len, muts[i].old, muts[i].new, &n2);
		problems += expect_bad_text(t2, n2, muts[i].what, 0);
		free(t2);
	}

	/* a line that is not "key value" at all, appended to good text */
	static const char *const tails[] = {
		"this-key-does-not-exist 1\n",
		"\n",
		" leading-space 1\n",
		"\x01\x02\x03\n",
	};
	/* an unknown key may also be -EPROTO ("written by a newer volperm") */
	for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
		size_t tl = strlen(tails[i]);
		char *t2 = malloc(len + tl + 1);
		assert_non_null(t2);
		memcpy(t2, text, len);
		memcpy(t2 + len, tails[i], tl);
		t2[len + tl] = 0;
		problems += expect_bad_text(t2, len + tl, tails[i], i == 0 || i == 2 ? -EPROTO : 0);
		free(t2);
	}
	problems += expect_bad_text("garbage", 7, "garbage without newline", 0);
	problems += expect_bad_text("\xff\xfe\xfd\n", 4, "binary garbage", 0);
	free(text);
	assert_int_equal(problems, 0);
}

/* ---- describe ---- */

static char *describe(const struct vp_policy *p)
{
	char *s = NULL;
	assert_int_equal(vp_policy_describe(p, &s), 0);
	assert_non_null(s);
	return s;
}

static void test_describe(void **state)
{
	(void)state;
	struct vp_policy p;
	char *s;

	vp_policy_init(&p);
	p.has_uid = p.has_gid = true;
	p.uid = 1001;
	p.gid = 1001;
	s = describe(&p);
	assert_string_equal(s, "owner 1001:1001");
	free(s);
	assert_int_equal(vp_policy_add_uid_map(&p, 1000, 1001), 0);
	s = describe(&p);
	assert_string_equal(s, "owner 1001:1001, map uid 1000->1001");
	free(s);
	vp_policy_free(&p);

	vp_policy_init(&p);
	p.has_uid = p.has_gid = true;
	p.uid = 1001;
	p.gid = 1002;
	s = describe(&p);
	assert_non_null(strstr(s, "1001"));
	assert_non_null(strstr(s, "1002"));
	assert_null(strchr(s, '\n'));
	free(s);
	vp_policy_free(&p);

	vp_policy_init(&p);
	assert_int_equal(vp_policy_add_gid_map(&p, 2000, 2001), 0);
	s = describe(&p);
	assert_non_null(strstr(s, "2000"));
	assert_non_null(strstr(s, "2001"));
	assert_null(strstr(s, "uid")); /* a gid map is not described as a uid map */
	free(s);
	vp_policy_free(&p);

	vp_policy_init(&p);
	p.has_gid = true;
	p.gid = 4294967294u;
	s = describe(&p);
	assert_non_null(strstr(s, "4294967294"));
	free(s);
	vp_policy_free(&p);

	vp_policy_init(&p);
	s = describe(&p);
	free(s);
	vp_policy_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_excluded_name_globs),
		cmocka_unit_test(test_excluded_path_globs),
		cmocka_unit_test(test_excluded_mixed_and_none),
		cmocka_unit_test(test_add_exclude_copies),
		cmocka_unit_test(test_add_maps),
		cmocka_unit_test(test_is_empty),
		cmocka_unit_test(test_text_roundtrip_full),
		cmocka_unit_test(test_text_roundtrip_variants),
		cmocka_unit_test(test_text_roundtrip_each_exclude),
		cmocka_unit_test(test_text_no_injection),
		cmocka_unit_test(test_from_text_bad),
		cmocka_unit_test(test_describe),
	};
	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
