/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for include/volperm/quote.h: quoting of hostile file names.
 *
 * Checked against independent oracles where one exists: bash itself for
 * shell quoting (the output pasted into bash must give back the exact bytes),
 * a strict JSON string decoder and an RFC 3629 validator written here, the
 * RFC 4648 base64 vectors, and the getfacl octal-escape rule. Output is
 * captured with open_memstream(3). */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "volperm/quote.h"

typedef int (*quote_fn)(FILE *, const char *, size_t);

struct buf {
	char *p;
	size_t n;
};

static int b64_adapter(FILE *f, const char *s, size_t len)
{
	return vp_write_base64(f, s, len);
}

/* Run fn on (s,len) into a memstream; the result is NUL-terminated, n bytes. */
static struct buf capture(quote_fn fn, const char *s, size_t len)
{
	struct buf b = { NULL, 0 };
	FILE *f = open_memstream(&b.p, &b.n);
	assert_non_null(f);
	int r = fn(f, s, len);
	if (r != 0)
		fail_msg("quote function returned %d", r);
	assert_int_equal(fclose(f), 0);
	assert_non_null(b.p);
	return b;
}

#define CAP(fn, lit) capture((fn), (lit), sizeof(lit) - 1)

static void expect_out(quote_fn fn, const char *fname, const char *in, size_t inlen,
                       const char *want)
{
	struct buf b = capture(fn, in, inlen);
	if (b.n != strlen(want) || memcmp(b.p, want, b.n) != 0)
		fail_msg("%s: got [%s] (%zu bytes), want [%s]", fname, b.p, b.n, want);
	free(b.p);
}

#define EXPECT(fn, lit, want) expect_out((fn), #fn, (lit), sizeof(lit) - 1, (want))

/* ---- oracles ---- */

/* Strict RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
 * Returns the length of the valid sequence at s (1..4) or 0. */
static size_t ref_utf8_seq(const unsigned char *s, size_t n)
{
	if (n == 0)
		return 0;
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	size_t need;
	uint32_t cp, min;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < need + 1)
		return 0;
	for (size_t k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need + 1;
}

static bool ref_utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0;
	while (i < n) {
		size_t k = ref_utf8_seq(s + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/* What vp_quote_json must carry: valid sequences kept, each byte of invalid
 * UTF-8 replaced by U+FFFD (quote.h). */
static struct buf ref_replace_invalid(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	struct buf b;
	b.p = malloc(3 * n + 1);
	assert_non_null(b.p);
	b.n = 0;
	size_t i = 0;
	while (i < n) {
		size_t k = ref_utf8_seq(s + i, n - i);
		if (k) {
			memcpy(b.p + b.n, s + i, k);
			b.n += k;
			i += k;
		} else {
			memcpy(b.p + b.n, "\xef\xbf\xbd", 3);
			b.n += 3;
			i++;
		}
	}
	b.p[b.n] = 0;
	return b;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool read_u4(const char *s, size_t n, size_t i, uint32_t *v)
{
	if (i + 4 > n)
		return false;
	*v = 0;
	for (size_t k = 0; k < 4; k++) {
		int h = hexval((unsigned char)s[i + k]);
		if (h < 0)
			return false;
		*v = (*v << 4) | (uint32_t)h;
	}
	return true;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A strict RFC 8259 string-literal decoder: the whole input must be one
 * string; raw control characters, bad escapes, lone surrogates and invalid
 * UTF-8 are errors. Returns false with a reason on error. */
static bool json_decode_string(const char *s, size_t n, struct buf *out, const char **why)
{
	out->p = malloc(n + 1);
	assert_non_null(out->p);
	out->n = 0;
	if (!ref_utf8_valid(s, n)) {
		*why = "output is not valid UTF-8";
		return false;
	}
	if (n < 2 || s[0] != '"' || s[n - 1] != '"') {
		*why = "not enclosed in double quotes";
		return false;
	}
	size_t i = 1;
	while (i < n - 1) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20) {
			*why = "raw control character";
			return false;
		}
		if (c == '"') {
			*why = "unescaped quote inside the string";
			return false;
		}
		if (c != '\\') {
			out->p[out->n++] = (char)c;
			i++;
			continue;
		}
		if (i + 1 >= n - 1) {
			*why = "dangling backslash";
			return false;
		}
		char e = s[i + 1];
		i += 2;
		switch (e) {
		case '"': out->p[out->n++] = '"'; break;
		case '\\': out->p[out->n++] = '\\'; break;
		case '/': out->p[out->n++] = '/'; break;
		case 'b': out->p[out->n++] = '\b'; break;
		case 'f': out->p[out->n++] = '\f'; break;
		case 'n': out->p[out->n++] = '\n'; break;
		case 'r': out->p[out->n++] = '\r'; break;
		case 't': out->p[out->n++] = '\t'; break;
		case 'u': {
			uint32_t cp;
			if (!read_u4(s, n - 1, i, &cp)) {
				*why = "bad \\u escape";
				return false;
			}
			i += 4;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				*why = "lone low surrogate";
				return false;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				uint32_t lo;
				if (i + 1 >= n - 1 || s[i] != '\\' || s[i + 1] != 'u' ||
				    !read_u4(s, n - 1, i + 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
					*why = "lone high surrogate";
					return false;
				}
				i += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			out->n += put_utf8(out->p + out->n, cp);
			break;
		}
		default:
			*why = "unknown escape";
			return false;
		}
	}
	out->p[out->n] = 0;
	return true;
}

/* ---- vp_quote_shell ---- */

static void test_shell_exact(void **state)
{
	(void)state;
	EXPECT(vp_quote_shell, "abc", "abc");
	EXPECT(vp_quote_shell, "plain-file_1.txt", "plain-file_1.txt");
	EXPECT(vp_quote_shell, "a/b.c_d:e,f+g@h%i=j-k", "a/b.c_d:e,f+g@h%i=j-k");
	EXPECT(vp_quote_shell, "ABCxyz0189", "ABCxyz0189");
	EXPECT(vp_quote_shell, "/srv/data/x", "/srv/data/x");
	EXPECT(vp_quote_shell, "", "''");
	EXPECT(vp_quote_shell, "a b", "'a b'");
	EXPECT(vp_quote_shell, "/srv/my data/f", "'/srv/my data/f'");
	EXPECT(vp_quote_shell, "-rf", "'-rf'");
	EXPECT(vp_quote_shell, "-", "'-'");
	EXPECT(vp_quote_shell, "--help", "'--help'");
	EXPECT(vp_quote_shell, "a-", "a-");
	EXPECT(vp_quote_shell, "it's", "'it'\\''s'");
	EXPECT(vp_quote_shell, "$HOME", "'$HOME'");
	EXPECT(vp_quote_shell, "a*", "'a*'");
	EXPECT(vp_quote_shell, "\n", "$'\\n'");
	EXPECT(vp_quote_shell, "\t", "$'\\t'");
	EXPECT(vp_quote_shell, "\xff", "$'\\xff'");
	EXPECT(vp_quote_shell, "\xc3\xa9", "'\xc3\xa9'"); /* valid UTF-8 stays readable */
	/* C1 controls are valid UTF-8 that a terminal acts on: U+009B is CSI,
	 * U+009D OSC, U+0085 NEL (a line break to some terminals and logs) */
	EXPECT(vp_quote_shell, "\xc2\x9b", "$'\\xc2\\x9b'");
	EXPECT(vp_quote_shell, "a\xc2\x9b" "31mb", "'a'$'\\xc2\\x9b''31mb'");
	EXPECT(vp_quote_shell, "\xc2\x85", "$'\\xc2\\x85'");
	EXPECT(vp_quote_shell, "\xc2\x80\xc2\x9f", "$'\\xc2\\x80'$'\\xc2\\x9f'");
	EXPECT(vp_quote_shell, "\xc2\xa0", "'\xc2\xa0'"); /* U+00A0 is shown */
	EXPECT(vp_quote_shell, "\x1b[2J", "$'\\x1b''[2J'");
	EXPECT(vp_quote_shell, "\r", "$'\\x0d'");
	EXPECT(vp_quote_shell, "\b", "$'\\x08'");
	EXPECT(vp_quote_shell, "\x7f", "$'\\x7f'");
}

/* What must never reach a terminal raw: C0 controls, DEL, and C1 controls
 * (U+0080..U+009F, in UTF-8 c2 80..c2 9f). */
static void check_no_raw_controls(const struct buf *b, const char *what)
{
	for (size_t i = 0; i < b->n; i++) {
		unsigned char c = (unsigned char)b->p[i];
		if (c < 0x20 || c == 0x7f)
			fail_msg("%s: raw control byte 0x%02x at %zu in [%s]", what, c, i, b->p);
		if (c == 0xc2 && i + 1 < b->n && (unsigned char)b->p[i + 1] < 0xa0)
			fail_msg("%s: raw C1 control U+%04X at %zu", what, (unsigned char)b->p[i + 1],
			         i);
	}
	if (!ref_utf8_valid(b->p, b->n))
		fail_msg("%s: output is not valid UTF-8: [%s]", what, b->p);
}

struct name {
	char s[300];
	size_t len;
};

static size_t hostile_names(struct name *v, size_t max)
{
	static const struct {
		const char *s;
		size_t len;
	} lit[] = {
#define N(x) { x, sizeof(x) - 1 }
		N("plain"), N("a b"), N("it's"), N("'"), N("''"), N("'''"), N("\n"), N("a\nb"),
		N("\nleading"), N("trailing\n"), N("\t"), N("a\tb"), N("\r\n"), N("\xff"),
		N("\xff\xfe"), N("a\xff" "b"), N("-rf"), N("--"), N("-"), N(""), N(" "), N("  "),
		N("$(touch /tmp/volperm-pwned)"), N("`id`"), N("${HOME}"), N("$HOME"), N("a\"b"),
		N("\""), N("a\\b"), N("\\"), N("\\n"), N("$'\\n'"), N("'$'\\n''"), N("\x01\x02\x7f"),
		N("\x1b[31mred\x1b[0m"), N("\xc3\xa9t\xc3\xa9"), N("\xc3"), N("a\xc3"),
		N("\xe2\x80\xae" "evil"), N("\xed\xa0\x80"), N("\xc0\xaf"), N("\xf4\x90\x80\x80"),
		N("!"), N("!!"), N("!$"), N("*"), N("?"), N("[a]"), N("{a,b}"), N("~"), N("~root"),
		N("#x"), N("a#b"), N("x=y"), N("a;b"), N("a&b"), N("a|b"), N("a>b"), N("a<b"),
		N("(a)"), N("%"), N("100%"), N("@"), N("a:b"), N("\xf0\x9f\x98\x80"),
		N("\xe2\x80\xa8"), N("'\n'"), N("\xff'"), N("\\'"), N("\x7f"), N("\x80"),
		N("\xc2\x9b" "2J"), N("\xc2\x9d" "0;pwned\x07"), N("a\xc2\x85" "b"), N("\xc2"),
		N("\xc2\xc2\x9b"), N("\x1b]0;title\x1b\\"), N("\b\b\bok"), N("cr\roverwrite"),
#undef N
	};
	size_t n = 0;
	for (size_t i = 0; i < sizeof lit / sizeof lit[0] && n < max; i++, n++) {
		memcpy(v[n].s, lit[i].s, lit[i].len);
		v[n].len = lit[i].len;
	}
	/* every single byte 1..255 */
	for (int c = 1; c <= 255 && n < max; c++, n++) {
		v[n].s[0] = (char)c;
		v[n].len = 1;
	}
	/* every byte 1..255 in one name */
	if (n < max) {
		for (int c = 1; c <= 255; c++)
			v[n].s[c - 1] = (char)c;
		v[n].len = 255;
		n++;
	}
	/* every C1 control (U+0080..U+009F) between two letters */
	for (int c = 0x80; c <= 0x9f && n < max; c++, n++) {
		memcpy(v[n].s, "x\xc2?y", 4);
		v[n].s[2] = (char)c;
		v[n].len = 4;
	}
	/* every byte between two letters, and doubled */
	for (int c = 1; c <= 255 && n + 1 < max; c++) {
		v[n].s[0] = 'x';
		v[n].s[1] = (char)c;
		v[n].s[2] = 'y';
		v[n].len = 3;
		n++;
		v[n].s[0] = (char)c;
		v[n].s[1] = (char)c;
		v[n].len = 2;
		n++;
	}
	return n;
}

/* The real oracle: paste the quoted names into bash, print them back with
 * printf '%s\0', and compare bytes. */
static void test_shell_roundtrip_bash(void **state)
{
	(void)state;
	if (access("/bin/bash", X_OK) != 0 && access("/usr/bin/bash", X_OK) != 0) {
		print_message("bash not found: skipping the shell round trip\n");
		skip();
	}
	static struct name names[1024];
	size_t n = hostile_names(names, sizeof names / sizeof names[0]);
	assert_true(n > 700);
	unlink("/tmp/volperm-pwned");

	char dir[] = "/tmp/volperm-quote-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char script[sizeof dir + 16];
	snprintf(script, sizeof script, "%s/rt.sh", dir);
	FILE *sf = fopen(script, "w");
	assert_non_null(sf);
	fputs("set -e\nprintf '%s\\0'", sf);
	for (size_t i = 0; i < n; i++) {
		struct buf b = capture(vp_quote_shell, names[i].s, names[i].len);
		check_no_raw_controls(&b, "vp_quote_shell");
		/* output that does not start with a quote (', $' or \') is bare:
		 * exactly the input, and only when the input is made of the safe
		 * characters */
		if (b.n > 0 && b.p[0] != '\'' && b.p[0] != '$' && b.p[0] != '\\') {
			if (b.n != names[i].len || memcmp(b.p, names[i].s, b.n) != 0)
				fail_msg("name %zu: unquoted output [%s] differs from the input", i,
				         b.p);
			if (b.p[0] == '-')
				fail_msg("name %zu: leading dash left bare: [%s]", i, b.p);
			for (size_t k = 0; k < b.n; k++)
				if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				            "0123456789_./:,+@%=-",
				            b.p[k]))
					fail_msg("name %zu: byte 0x%02x left bare: [%s]", i,
					         (unsigned char)b.p[k], b.p);
		}
		if (b.n == 0)
			fail_msg("name %zu: empty output", i);
		fputs(" \\\n", sf);
		fwrite(b.p, 1, b.n, sf);
		free(b.p);
	}
	fputs("\n", sf);
	assert_int_equal(fclose(sf), 0);

	char cmd[sizeof script + 64];
	snprintf(cmd, sizeof cmd, "LC_ALL=C bash --norc --noprofile '%s'", script);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	struct buf out = { NULL, 0 };
	FILE *m = open_memstream(&out.p, &out.n);
	assert_non_null(m);
	char chunk[4096];
	size_t got;
	while ((got = fread(chunk, 1, sizeof chunk, p)) > 0)
		fwrite(chunk, 1, got, m);
	int st = pclose(p);
	assert_int_equal(fclose(m), 0);
	assert_int_equal(st, 0);

	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		const char *nul = memchr(out.p + off, 0, out.n - off);
		if (!nul)
			fail_msg("bash printed %zu names, want %zu", i, n);
		size_t len = (size_t)(nul - (out.p + off));
		if (len != names[i].len || memcmp(out.p + off, names[i].s, len) != 0) {
			struct buf q = capture(vp_quote_shell, names[i].s, names[i].len);
			fail_msg("name %zu (first byte 0x%02x, %zu bytes): quoted as [%s], bash gave "
			         "back %zu different bytes",
			         i, names[i].len ? (unsigned char)names[i].s[0] : 0, names[i].len, q.p,
			         len);
		}
		off += len + 1;
	}
	assert_int_equal(off, out.n);
	free(out.p);
	/* the command substitution in a name must not have run */
	assert_int_not_equal(access("/tmp/volperm-pwned", F_OK), 0);
	unlink(script);
	rmdir(dir);
}

/* ---- vp_quote_shell_buf, vp_quote_path_buf: quoted names for messages ---- */

/* out (a NUL-terminated message part, buffer of size bytes) must be the
 * whole quoted name, or "..." and the quoted form of a suffix of it. */
static void check_buf_result(const char *out, size_t size, const char *s, size_t len,
                             const char *what)
{
	size_t n = strlen(out);
	struct buf whole = capture(vp_quote_shell, s, len);
	struct buf o = { (char *)out, n };

	if (n >= size)
		fail_msg("%s: %zu bytes in a buffer of %zu", what, n, size);
	check_no_raw_controls(&o, what);
	if (whole.n < size) {
		/* it fits: exactly the stream's output */
		if (n != whole.n || memcmp(out, whole.p, n) != 0)
			fail_msg("%s: got [%s], want [%s]", what, out, whole.p);
		free(whole.p);
		return;
	}
	free(whole.p);
	if (n < 3 || memcmp(out, "...", 3) != 0)
		fail_msg("%s: shortened without the \"...\" mark: [%s]", what, out);
	for (size_t k = 0; k <= len; k++) {
		struct buf t = capture(vp_quote_shell, s + k, len - k);
		bool same = t.n == n - 3 && memcmp(t.p, out + 3, t.n) == 0;
		free(t.p);
		if (same)
			return;
	}
	fail_msg("%s: [%s] is not \"...\" and the quoted end of the name", what, out);
}

static void test_shell_buf(void **state)
{
	(void)state;
	char out[512];

	assert_string_equal(vp_quote_shell_buf(out, sizeof out, "a b", 3), "'a b'");
	assert_string_equal(vp_quote_shell_buf(out, sizeof out, "plain", 5), "plain");
	assert_string_equal(vp_quote_shell_buf(out, sizeof out, "x\xc2\x9b", 3),
	                    "'x'$'\\xc2\\x9b'");
	/* exactly fitting, and one byte short: the start goes, the end stays */
	assert_string_equal(vp_quote_shell_buf(out, 6, "abcde", 5), "abcde");
	assert_string_equal(vp_quote_shell_buf(out, 6, "abcdef", 6), "...ef");
	assert_string_equal(vp_quote_shell_buf(out, 10, "/srv/data/evil\n", 15),
	                    "...$'\\n'");
	assert_string_equal(vp_quote_shell_buf(out, 16, "/srv/data/evil\n", 15),
	                    "...'/evil'$'\\n'");
	/* never cut inside a character: a 2-byte letter is skipped whole */
	assert_string_equal(vp_quote_shell_buf(out, 8, "\xc3\xa9\xc3\xa9\xc3\xa9", 6),
	                    "...'\xc3\xa9'");

	/* every hostile name, every small size */
	static struct name names[1024];
	size_t n = hostile_names(names, sizeof names / sizeof names[0]);
	for (size_t i = 0; i < n; i++)
		for (size_t size = 6; size <= 40; size += 1) {
			vp_quote_shell_buf(out, size, names[i].s, names[i].len);
			check_buf_result(out, size, names[i].s, names[i].len, "vp_quote_shell_buf");
		}
}

static void test_path_buf(void **state)
{
	(void)state;
	char out[512];

	assert_string_equal(vp_quote_path_buf(out, sizeof out, "/srv", "a b", 3), "'/srv/a b'");
	assert_string_equal(vp_quote_path_buf(out, sizeof out, "/srv", "a/b", 3), "/srv/a/b");
	assert_string_equal(vp_quote_path_buf(out, sizeof out, "/srv", ".", 1), "/srv");
	assert_string_equal(vp_quote_path_buf(out, sizeof out, "/srv", NULL, 0), "/srv");
	assert_string_equal(vp_quote_path_buf(out, sizeof out, "/", "x", 1), "/x");
	assert_string_equal(vp_quote_path_buf(out, sizeof out, "/srv/", "x", 1), "/srv/x");
	assert_string_equal(vp_quote_path_buf(out, sizeof out, "/srv", "x\x1b[2J\nok", 8),
	                    "'/srv/x'$'\\x1b''[2J'$'\\n''ok'");
	/* only the first len bytes of rel count */
	assert_string_equal(vp_quote_path_buf(out, sizeof out, "/srv", "abc\n", 3), "/srv/abc");
	/* a root that is itself hostile */
	assert_string_equal(vp_quote_path_buf(out, sizeof out, "/m\xc2\x9bnt", "f", 1),
	                    "'/m'$'\\xc2\\x9b''nt/f'");

	/* a relative path longer than two PATH_MAXes (deep trees): its end */
	static char deep[20001];
	for (size_t i = 0; i < sizeof deep - 1; i++)
		deep[i] = (i % 10 == 9) ? '/' : (char)('a' + i % 7);
	memcpy(deep + sizeof deep - 6, "\x1b" "end\n", 5);
	deep[sizeof deep - 1] = 0;
	vp_quote_path_buf(out, 64, "/srv", deep, sizeof deep - 1);
	struct buf o = { out, strlen(out) };
	check_no_raw_controls(&o, "vp_quote_path_buf");
	assert_true(o.n < 64 && o.n > 20);
	assert_memory_equal(out, "...", 3);
	const char *tail = "$'\\x1b''end'$'\\n'";
	assert_string_equal(out + o.n - strlen(tail), tail);
	/* the same as quoting the whole joined path into that room */
	char *whole = malloc(5 + sizeof deep);
	assert_non_null(whole);
	memcpy(whole, "/srv/", 5);
	memcpy(whole + 5, deep, sizeof deep);
	char want64[64];
	assert_string_equal(out, vp_quote_shell_buf(want64, sizeof want64, whole,
	                                            5 + sizeof deep - 1));
	free(whole);
	/* and the full join when it fits, for a long but not deep path */
	char big[600];
	char joined[506] = "/srv/";
	memcpy(joined + 5, deep + sizeof deep - 501, 500);
	struct buf want = capture(vp_quote_shell, joined, 505);
	assert_true(want.n < sizeof big);
	vp_quote_path_buf(big, sizeof big, "/srv", deep + sizeof deep - 501, 500);
	assert_string_equal(big, want.p);
	free(want.p);
}

/* ---- vp_quote_text ---- */

static void test_text(void **state)
{
	(void)state;
	EXPECT(vp_quote_text, "uid 1001", "uid 1001");
	EXPECT(vp_quote_text, "exclude a%20b", "exclude a%20b");
	EXPECT(vp_quote_text, "\x1b[2J", "\\x1b[2J");
	EXPECT(vp_quote_text, "a\nb", "a\\x0ab");
	EXPECT(vp_quote_text, "a\\b", "a\\x5cb");
	EXPECT(vp_quote_text, "\xc2\x9b", "\\xc2\\x9b");
	EXPECT(vp_quote_text, "\xff", "\\xff");
	EXPECT(vp_quote_text, "caf\xc3\xa9", "caf\xc3\xa9");
	static struct name names[1024];
	size_t n = hostile_names(names, sizeof names / sizeof names[0]);
	for (size_t i = 0; i < n; i++) {
		struct buf b = capture(vp_quote_text, names[i].s, names[i].len);
		check_no_raw_controls(&b, "vp_quote_text");
		free(b.p);
	}
}

/* ---- vp_quote_json ---- */

static void check_json(const char *in, size_t len)
{
	struct buf b = capture(vp_quote_json, in, len);
	struct buf dec;
	const char *why = NULL;
	check_no_raw_controls(&b, "vp_quote_json");
	if (!json_decode_string(b.p, b.n, &dec, &why))
		fail_msg("vp_quote_json output [%s] is not a valid JSON string: %s", b.p, why);
	struct buf want = ref_replace_invalid(in, len);
	if (dec.n != want.n || memcmp(dec.p, want.p, dec.n) != 0)
		fail_msg("vp_quote_json output [%s] decodes to %zu bytes, want %zu", b.p, dec.n,
		         want.n);
	free(want.p);
	free(dec.p);
	free(b.p);
}

static void test_json_exact(void **state)
{
	(void)state;
	EXPECT(vp_quote_json, "abc", "\"abc\"");
	EXPECT(vp_quote_json, "", "\"\"");
	EXPECT(vp_quote_json, "/srv/data/a b", "\"/srv/data/a b\"");
	EXPECT(vp_quote_json, "\xc3\xa9t\xc3\xa9", "\"\xc3\xa9t\xc3\xa9\"");      /* kept */
	EXPECT(vp_quote_json, "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");        /* kept */
	EXPECT(vp_quote_json, "\x01", "\"\\u0001\"");
	struct buf b = CAP(vp_quote_json, "\x1f");
	assert_true(strcasecmp(b.p, "\"\\u001f\"") == 0);
	free(b.p);
	EXPECT(vp_quote_json, "a\\b", "\"a\\\\b\"");
	EXPECT(vp_quote_json, "a\"b", "\"a\\\"b\"");
	/* C1 controls: valid JSON raw, but not for a terminal showing it */
	b = CAP(vp_quote_json, "\xc2\x9b");
	assert_true(strcasecmp(b.p, "\"\\u009b\"") == 0);
	free(b.p);
	b = CAP(vp_quote_json, "a\xc2\x85z");
	assert_true(strcasecmp(b.p, "\"a\\u0085z\"") == 0);
	free(b.p);
	EXPECT(vp_quote_json, "\xc2\xa0", "\"\xc2\xa0\""); /* U+00A0 is shown */
	/* U+FFFD may be written raw or as \ufffd */
	b = CAP(vp_quote_json, "\xff");
	assert_true(strcmp(b.p, "\"\xef\xbf\xbd\"") == 0 || strcasecmp(b.p, "\"\\ufffd\"") == 0);
	free(b.p);
	b = CAP(vp_quote_json, "a\xff" "b");
	assert_true(strcmp(b.p, "\"a\xef\xbf\xbd" "b\"") == 0 ||
	            strcasecmp(b.p, "\"a\\ufffdb\"") == 0);
	free(b.p);

	/* a newline has two correct spellings: \n or \u000a */
	b = CAP(vp_quote_json, "a\nb");
	assert_true(strcmp(b.p, "\"a\\nb\"") == 0 || strcasecmp(b.p, "\"a\\u000ab\"") == 0);
	free(b.p);
	b = CAP(vp_quote_json, "\t");
	assert_true(strcmp(b.p, "\"\\t\"") == 0 || strcasecmp(b.p, "\"\\u0009\"") == 0);
	free(b.p);
}

static void test_json_semantics(void **state)
{
	(void)state;
	static struct name names[1024];
	size_t n = hostile_names(names, sizeof names / sizeof names[0]);
	for (size_t i = 0; i < n; i++)
		check_json(names[i].s, names[i].len);

	/* each byte of invalid UTF-8 becomes one U+FFFD */
	static const struct {
		const char *in;
		size_t len;
		unsigned fffd;
	} inv[] = {
		{ "\xff", 1, 1 },
		{ "\xff\xfe", 2, 2 },
		{ "\x80", 1, 1 },
		{ "\xc3", 1, 1 },              /* truncated */
		{ "\xe2\x82", 2, 2 },          /* truncated 3-byte sequence */
		{ "\xc0\xaf", 2, 2 },          /* overlong '/' */
		{ "\xe0\x80\xaf", 3, 3 },      /* overlong */
		{ "\xed\xa0\x80", 3, 3 },      /* surrogate U+D800 */
		{ "\xf4\x90\x80\x80", 4, 4 },  /* > U+10FFFF */
		{ "\xc3\x28", 2, 1 },          /* bad continuation: '(' survives */
	};
	for (size_t i = 0; i < sizeof inv / sizeof inv[0]; i++) {
		struct buf q = capture(vp_quote_json, inv[i].in, inv[i].len);
		struct buf dec;
		const char *why = NULL;
		if (!json_decode_string(q.p, q.n, &dec, &why))
			fail_msg("invalid case %zu: [%s]: %s", i, q.p, why);
		unsigned count = 0;
		for (size_t k = 0; k + 3 <= dec.n; k++)
			if (memcmp(dec.p + k, "\xef\xbf\xbd", 3) == 0)
				count++;
		if (count != inv[i].fffd)
			fail_msg("invalid case %zu: %u U+FFFD, want %u (output [%s])", i, count,
			         inv[i].fffd, q.p);
		free(dec.p);
		free(q.p);
	}

	/* random byte strings, weighted towards interesting bytes */
	srand(12345);
	static const unsigned char pool[] = { 'a', '"', '\\', '\n', 0x01, 0x1f, 0x7f, 0x80,
		                              0xbf, 0xc2, 0xc3, 0xe0, 0xe2, 0xed, 0xef, 0xf0,
		                              0xf4, 0xf5, 0xff, 0xa0, 0x9f, 0x8f, '/' };
	for (int round = 0; round < 5000; round++) {
		char s[24];
		size_t len = (size_t)(rand() % (int)sizeof s);
		for (size_t k = 0; k < len; k++)
			s[k] = (rand() & 1) ? (char)pool[rand() % (int)sizeof pool]
			                    : (char)(1 + rand() % 255);
		check_json(s, len);
	}
}

/* ---- vp_utf8_valid ---- */

static void test_utf8_valid(void **state)
{
	(void)state;
#define V(x) assert_true(vp_utf8_valid((x), sizeof(x) - 1))
#define I(x) assert_false(vp_utf8_valid((x), sizeof(x) - 1))
	V("");
	V("abc");
	V("\x01\x7f");
	V("\xc2\x80");                 /* U+0080 */
	V("\xc3\xa9");                 /* é */
	V("\xdf\xbf");                 /* U+07FF */
	V("\xe0\xa0\x80");             /* U+0800 */
	V("\xe2\x82\xac");             /* € */
	V("\xed\x9f\xbf");             /* U+D7FF */
	V("\xee\x80\x80");             /* U+E000 */
	V("\xef\xbf\xbd");             /* U+FFFD */
	V("\xef\xbf\xbf");             /* U+FFFF */
	V("\xf0\x90\x80\x80");         /* U+10000 */
	V("\xf0\x9d\x84\x9e");         /* 𝄞 */
	V("\xf4\x8f\xbf\xbf");         /* U+10FFFF */
	V("a\xc3\xa9z\xe2\x82\xac!");

	I("\xff");
	I("\xfe");
	I("\x80");                     /* lone continuation */
	I("\xbf");
	I("a\x80" "b");
	I("\xc3");                     /* truncated */
	I("\xe2\x82");
	I("\xf0\x9d\x84");
	I("\xc3\x28");                 /* bad continuation */
	I("\xe2\x28\xa1");
	I("\xc0\x80");                 /* overlong NUL */
	I("\xc0\xaf");                 /* overlong '/' */
	I("\xc1\xbf");
	I("\xe0\x80\xaf");
	I("\xe0\x9f\xbf");             /* overlong U+07FF */
	I("\xf0\x80\x80\xaf");
	I("\xf0\x8f\xbf\xbf");         /* overlong U+FFFF */
	I("\xed\xa0\x80");             /* U+D800 */
	I("\xed\xbf\xbf");             /* U+DFFF */
	I("\xed\xa0\x80\xed\xb0\x80"); /* CESU-8 pair */
	I("\xf4\x90\x80\x80");         /* U+110000 */
	I("\xf5\x80\x80\x80");
	I("\xf8\x88\x80\x80\x80");     /* 5-byte form */
	I("\xfc\x84\x80\x80\x80\x80");
	I("abc\xff");
#undef V
#undef I
	/* the length is honoured: a valid 2-byte sequence cut at 1 */
	assert_false(vp_utf8_valid("\xc3\xa9", 1));
	assert_true(vp_utf8_valid("ab\xff", 2));

	/* exhaustive for 1 and 2 bytes; 3- and 4-byte sequences with every lead
	 * from e0 to f8, every second byte and interesting later bytes; all
	 * against the RFC 3629 oracle */
	static const unsigned char tail[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90,
		                              0x9f, 0xa0, 0xbf, 0xc0, 0xff };
	const size_t nt = sizeof tail / sizeof tail[0];
	unsigned char s[4];
	for (unsigned a = 0; a < 256; a++) {
		s[0] = (unsigned char)a;
		if (vp_utf8_valid((char *)s, 1) != ref_utf8_valid(s, 1))
			fail_msg("1-byte %02x", a);
		for (unsigned b = 0; b < 256; b++) {
			s[1] = (unsigned char)b;
			if (vp_utf8_valid((char *)s, 2) != ref_utf8_valid(s, 2))
				fail_msg("2-byte %02x %02x: got %d", a, b,
				         vp_utf8_valid((char *)s, 2));
		}
	}
	for (unsigned a = 0xe0; a <= 0xf8; a++)
		for (unsigned b = 0; b < 256; b++)
			for (size_t c = 0; c < nt; c++) {
				s[0] = (unsigned char)a;
				s[1] = (unsigned char)b;
				s[2] = tail[c];
				if (vp_utf8_valid((char *)s, 3) != ref_utf8_valid(s, 3))
					fail_msg("3-byte %02x %02x %02x", a, b, tail[c]);
				for (size_t d = 0; d < nt; d++) {
					s[3] = tail[d];
					if (vp_utf8_valid((char *)s, 4) != ref_utf8_valid(s, 4))
						fail_msg("4-byte %02x %02x %02x %02x", a, b, tail[c],
						         tail[d]);
				}
			}
}

/* ---- vp_write_base64 ---- */

static void test_base64(void **state)
{
	(void)state;
	/* RFC 4648, section 10 */
	EXPECT(b64_adapter, "", "");
	EXPECT(b64_adapter, "f", "Zg==");
	EXPECT(b64_adapter, "fo", "Zm8=");
	EXPECT(b64_adapter, "foo", "Zm9v");
	EXPECT(b64_adapter, "foob", "Zm9vYg==");
	EXPECT(b64_adapter, "fooba", "Zm9vYmE=");
	EXPECT(b64_adapter, "foobar", "Zm9vYmFy");
	/* the two non-alphanumeric symbols of the standard (not URL) alphabet */
	EXPECT(b64_adapter, "\xff\xfe\xfd", "//79");
	EXPECT(b64_adapter, "\xfb\xff", "+/8=");
	EXPECT(b64_adapter, "\x00", "AA==");
	EXPECT(b64_adapter, "\x00\x00\x00", "AAAA");
	EXPECT(b64_adapter, "a\nb\xff", "YQpi/w==");

	/* long input: one line, no wrapping (it goes into a JSON member) */
	static const char alpha[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char in[300];
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (unsigned char)(i * 37 + 11);
	for (size_t len = 0; len <= sizeof in; len++) {
		struct buf b = capture(b64_adapter, (const char *)in, len);
		size_t want_n = 4 * ((len + 2) / 3);
		if (b.n != want_n)
			fail_msg("base64 of %zu bytes: %zu chars, want %zu", len, b.n, want_n);
		/* decode and compare */
		size_t o = 0;
		for (size_t i = 0; i < b.n; i += 4) {
			uint32_t v = 0;
			int pad = 0;
			for (int k = 0; k < 4; k++) {
				char c = b.p[i + (size_t)k];
				const char *pos = c ? strchr(alpha, c) : NULL;
				if (c == '=') {
					pad++;
					v <<= 6;
				} else {
					if (!pos || pad)
						fail_msg("base64 of %zu bytes: bad char 0x%02x at %zu", len,
						         (unsigned char)c, i + (size_t)k);
					v = (v << 6) | (uint32_t)(pos - alpha);
				}
			}
			unsigned char d[3] = { (unsigned char)(v >> 16), (unsigned char)(v >> 8),
				               (unsigned char)v };
			for (int k = 0; k < 3 - pad; k++) {
				if (o >= len || d[k] != in[o])
					fail_msg("base64 of %zu bytes: mismatch at byte %zu", len, o);
				o++;
			}
		}
		assert_int_equal(o, len);
		free(b.p);
	}
}

/* ---- vp_quote_getfacl ---- */

static void test_getfacl(void **state)
{
	(void)state;
	EXPECT(vp_quote_getfacl, "abc", "abc");
	EXPECT(vp_quote_getfacl, "dir/sub/file.txt", "dir/sub/file.txt");
	EXPECT(vp_quote_getfacl, "a b", "a\\040b");
	EXPECT(vp_quote_getfacl, " ", "\\040");
	EXPECT(vp_quote_getfacl, "a\\b", "a\\134b");
	EXPECT(vp_quote_getfacl, "\n", "\\012");
	EXPECT(vp_quote_getfacl, "\t", "\\011");
	EXPECT(vp_quote_getfacl, "\r", "\\015");
	EXPECT(vp_quote_getfacl, "\x01", "\\001");
	EXPECT(vp_quote_getfacl, "\x7f", "\\177");
	EXPECT(vp_quote_getfacl, "\xff", "\\377");
	EXPECT(vp_quote_getfacl, "\x80", "\\200");
	EXPECT(vp_quote_getfacl, "\xc3\xa9", "\\303\\251");
	EXPECT(vp_quote_getfacl, "# file: x", "#\\040file:\\040x");
	EXPECT(vp_quote_getfacl, "it's \"q\"", "it's\\040\"q\"");
	EXPECT(vp_quote_getfacl, "", "");

	/* every byte: printable non-space ASCII other than '\\' stays, the rest is
	 * \ooo; decoding gives back the input */
	char all[255];
	for (int c = 1; c <= 255; c++)
		all[c - 1] = (char)c;
	struct buf b = capture(vp_quote_getfacl, all, sizeof all);
	size_t i = 0, o = 0;
	while (i < b.n) {
		unsigned char c = (unsigned char)b.p[i];
		unsigned char want = (unsigned char)all[o];
		bool must_escape = want <= 0x20 || want >= 0x7f || want == '\\';
		if (c == '\\') {
			if (i + 3 >= b.n)
				fail_msg("truncated escape at %zu", i);
			int d0 = b.p[i + 1] - '0', d1 = b.p[i + 2] - '0', d2 = b.p[i + 3] - '0';
			if (d0 < 0 || d0 > 3 || d1 < 0 || d1 > 7 || d2 < 0 || d2 > 7)
				fail_msg("bad octal escape at %zu", i);
			unsigned v = (unsigned)(d0 * 64 + d1 * 8 + d2);
			if (v != want || !must_escape)
				fail_msg("byte 0x%02x: escaped as \\%03o (must_escape=%d)", want, v,
				         must_escape);
			i += 4;
		} else {
			if (c != want || must_escape)
				fail_msg("byte 0x%02x: written raw as 0x%02x", want, c);
			i++;
		}
		o++;
	}
	assert_int_equal(o, sizeof all);
	free(b.p);
}

/* ---- errors from the stream are reported ---- */

static void test_stream_errors(void **state)
{
	(void)state;
	static const quote_fn fns[] = { vp_quote_shell, vp_quote_json, b64_adapter,
		                        vp_quote_getfacl, vp_quote_text };
	static const char *const names[] = { "vp_quote_shell", "vp_quote_json",
		                             "vp_write_base64", "vp_quote_getfacl",
		                             "vp_quote_text" };
	for (size_t i = 0; i < 5; i++) {
		FILE *f = fopen("/dev/null", "r"); /* a stream that refuses writes */
		assert_non_null(f);
		setvbuf(f, NULL, _IONBF, 0);
		int r = fns[i](f, "a b\n\xff", 5);
		if (r >= 0)
			fail_msg("%s on a read-only stream returned %d, want -errno", names[i], r);
		fclose(f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shell_exact),
		cmocka_unit_test(test_shell_roundtrip_bash),
		cmocka_unit_test(test_shell_buf),
		cmocka_unit_test(test_path_buf),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_json_exact),
		cmocka_unit_test(test_json_semantics),
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_getfacl),
		cmocka_unit_test(test_stream_errors),
	};
	return cmocka_run_group_tests_name("quote", tests, NULL, NULL);
}
