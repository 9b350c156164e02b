/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Quoting of file names for people (shell style), for programs (JSON) and for
 * setfacl --restore (octal escapes). A name is attacker-controlled on a
 * volume an untrusted app wrote: a newline must never start a fake line, and
 * nothing that a terminal acts on (C0 and C1 controls, DEL, invalid UTF-8)
 * may reach one raw: an ESC or CSI sequence could clear the screen, retitle
 * the window or rewrite what the operator reads. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "volperm/quote.h"

#define OUT(expr) do { if ((expr) < 0) return -EIO; } while (0)

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. Rejects
 * overlongs, surrogates and code points above U+10FFFF (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	unsigned c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool vp_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	while (len) {
		size_t n = utf8_seq(p, len);
		if (!n)
			return false;
		p += n;
		len -= n;
	}
	return true;
}

static bool shell_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("_./:,+@%=-", c) != NULL;
}

/* The unit at s: a valid UTF-8 sequence, or one byte of invalid UTF-8.
 * *shown is false for what a terminal acts on instead of showing: C0
 * controls, DEL, C1 controls (U+0080..U+009F, which UTF-8 terminals honour:
 * U+009B is CSI, U+009D OSC, U+0085 NEL) and invalid UTF-8 (which a
 * terminal in a legacy 8-bit charset reads as C1 bytes). */
static size_t unit(const unsigned char *s, size_t len, bool *shown)
{
	size_t n = utf8_seq(s, len);

	if (n == 0) {
		*shown = false;
		return 1;
	}
	if (n == 1)
		*shown = s[0] >= 0x20 && s[0] < 0x7f;
	else
		*shown = !(n == 2 && s[0] == 0xc2 && s[1] < 0xa0);
	return n;
}

/* Where quoted text goes: a stream, or a buffer (which counts what would
 * not fit, as snprintf does). */
struct sink {
	FILE *f;
	char *buf;
	size_t size, n;
};

static int put(struct sink *k, const void *p, size_t n)
{
	if (k->f)
		return fwrite(p, 1, n, k->f) == n ? 0 : -EIO;
	if (k->n < k->size)
		memcpy(k->buf + k->n, p, n < k->size - k->n ? n : k->size - k->n);
	k->n += n;
	return 0;
}

#define PUT(k, p, n) do { if (put((k), (p), (n)) < 0) return -EIO; } while (0)
#define PUTS(k, lit) PUT((k), (lit), sizeof(lit) - 1)

static int shell(struct sink *k, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	bool bare = len > 0 && p[0] != '-', in_single = false;

	for (size_t i = 0; i < len && bare; i++)
		bare = p[i] != 0 && shell_safe(p[i]);
	if (bare) {
		PUT(k, s, len);
		return 0;
	}
	if (len == 0) {
		PUTS(k, "''");
		return 0;
	}
	/* What a terminal shows goes inside '...'; everything else in $'...'
	 * segments, which bash, zsh, ksh and busybox sh all understand. */
	for (size_t i = 0; i < len;) {
		bool shown;
		size_t n = unit(p + i, len - i, &shown);

		if (shown && p[i] != '\'') {
			if (!in_single)
				PUTS(k, "'");
			in_single = true;
			PUT(k, p + i, n);
			i += n;
			continue;
		}
		if (in_single)
			PUTS(k, "'");
		in_single = false;
		if (p[i] == '\'') {
			PUTS(k, "\\'");
		} else if (p[i] == '\n') {
			PUTS(k, "$'\\n'");
		} else if (p[i] == '\t') {
			PUTS(k, "$'\\t'");
		} else {
			/* one segment per unit: a C1 control is $'\xc2\x9b' */
			PUTS(k, "$'");
			for (size_t j = 0; j < n; j++) {
				char x[5];
				snprintf(x, sizeof(x), "\\x%02x", p[i + j]);
				PUT(k, x, 4);
			}
			PUTS(k, "'");
		}
		i += n;
	}
	if (in_single)
		PUTS(k, "'");
	return 0;
}

int vp_quote_shell(FILE *f, const char *s, size_t len)
{
	struct sink k = { .f = f };

	return shell(&k, s, len);
}

static size_t shell_len(const char *s, size_t len)
{
	struct sink k = { 0 };

	shell(&k, s, len);
	return k.n;
}

/* cut: s is already the tail of a longer name. */
static const char *shell_buf(char *buf, size_t size, const char *s, size_t len, bool cut)
{
	struct sink k = { .buf = buf, .size = size };
	size_t i;

	if (size == 0)
		return buf;
	if (!cut && shell_len(s, len) < size) {
		shell(&k, s, len);
		buf[k.n] = 0;
		return buf;
	}
	/* Leave out the start: the end of a path (the entry's own name) is
	 * what tells it apart. Every byte kept costs at least one character,
	 * so the search starts where at most size - 4 bytes are left. */
	i = len + 4 > size ? len + 4 - size : 0;
	for (int j = 0; j < 3 && i < len && (((const unsigned char *)s)[i] & 0xc0) == 0x80; j++)
		i++; /* not in the middle of a character */
	while (i < len && shell_len(s + i, len - i) + 3 >= size)
		i++;
	put(&k, "...", 3);
	shell(&k, s + i, len - i);
	buf[k.n < size ? k.n : size - 1] = 0;
	return buf;
}

const char *vp_quote_shell_buf(char *buf, size_t size, const char *s, size_t len)
{
	return shell_buf(buf, size, s, len, false);
}

const char *vp_quote_path_buf(char *buf, size_t size, const char *root, const char *rel,
                              size_t rel_len)
{
	/* Two PATH_MAXes: a root and a path below it. Relative paths of deep
	 * trees can be longer; only their end can show then. */
	char tmp[8194];
	size_t rl = strlen(root), n = 0, skip;
	bool self = !rel || (rel_len == 1 && rel[0] == '.');
	bool slash = rl > 0 && root[rl - 1] != '/' && !self;
	size_t total = rl + slash + (self ? 0 : rel_len);

	skip = total > sizeof(tmp) ? total - sizeof(tmp) : 0;
	/* copy root, "/", rel, leaving out the first `skip` bytes */
	const struct { const char *p; size_t n; } part[3] = {
		{ root, rl }, { "/", slash }, { rel, self ? 0 : rel_len },
	};
	for (size_t j = 0; j < 3; j++) {
		size_t from = skip < part[j].n ? skip : part[j].n;
		skip -= from;
		if (part[j].n == from)
			continue; /* nothing left of it (rel may be NULL) */
		memcpy(tmp + n, part[j].p + from, part[j].n - from);
		n += part[j].n - from;
	}
	return shell_buf(buf, size, tmp, n, total > sizeof(tmp));
}

int vp_quote_text(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	struct sink k = { .f = f };

	for (size_t i = 0; i < len;) {
		bool shown;
		size_t n = unit(p + i, len - i, &shown);

		if (shown && p[i] != '\\') {
			PUT(&k, p + i, n);
		} else {
			for (size_t j = 0; j < n; j++)
				OUT(fprintf(f, "\\x%02x", p[i + j]));
		}
		i += n;
	}
	return 0;
}

int vp_quote_json(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	OUT(fputc('"', f));
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(p + i, len - i);
		unsigned char c = p[i];

		if (n == 0) {
			OUT(fputs("\\ufffd", f));
			i++;
		} else if (n == 2 && c == 0xc2 && p[i + 1] < 0xa0) {
			/* a C1 control: valid JSON raw, but a terminal showing
			 * the output would act on it */
			OUT(fprintf(f, "\\u%04x", p[i + 1]));
			i += 2;
		} else if (n > 1) {
			OUT(fwrite(p + i, 1, n, f) == n ? 0 : -1);
			i += n;
		} else {
			if (c == '"' || c == '\\')
				OUT(fprintf(f, "\\%c", c));
			else if (c == '\n')
				OUT(fputs("\\n", f));
			else if (c == '\t')
				OUT(fputs("\\t", f));
			else if (c == '\r')
				OUT(fputs("\\r", f));
			else if (c < 0x20 || c == 0x7f)
				OUT(fprintf(f, "\\u%04x", c));
			else
				OUT(fputc(c, f));
			i++;
		}
	}
	OUT(fputc('"', f));
	return 0;
}

int vp_write_base64(FILE *f, const void *buf, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		char q[4] = { tab[v >> 18], tab[(v >> 12) & 63],
			      i + 1 < len ? tab[(v >> 6) & 63] : '=', i + 2 < len ? tab[v & 63] : '=' };
		OUT(fwrite(q, 1, 4, f) == 4 ? 0 : -1);
	}
	return 0;
}

int vp_quote_getfacl(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		if (c <= 0x20 || c >= 0x7f || c == '\\')
			OUT(fprintf(f, "\\%03o", c));
		else
			OUT(fputc(c, f));
	}
	return 0;
}

void vp_quote_json_member(FILE *f, const char *key, const char *s, size_t len)
{
	fprintf(f, "\"%s\":", key);
	vp_quote_json(f, s, len);
	if (!vp_utf8_valid(s, len)) {
		fprintf(f, ",\"%s_b64\":\"", key);
		vp_write_base64(f, s, len);
		fputc('"', f);
	}
}
