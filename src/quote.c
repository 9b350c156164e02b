/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Quoting of file names for people (shell style), for programs (JSON) and for
 * setfacl --restore (octal escapes). A name is attacker-controlled on a
 * volume an untrusted app wrote: a newline must never start a fake line. */
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

int vp_quote_shell(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	bool bare = len > 0 && p[0] != '-', in_single = false;

	for (size_t i = 0; i < len && bare; i++)
		bare = p[i] != 0 && shell_safe(p[i]);
	if (bare) {
		OUT(fwrite(s, 1, len, f) == len ? 0 : -1);
		return 0;
	}
	if (len == 0) {
		OUT(fputs("''", f));
		return 0;
	}
	/* Printable UTF-8 goes inside '...'; everything else in $'...'
	 * segments, which bash, zsh, ksh and busybox sh all understand. */
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(p + i, len - i);
		bool printable = n > 1 || (n == 1 && p[i] >= 0x20 && p[i] < 0x7f);

		if (printable && p[i] != '\'') {
			if (!in_single)
				OUT(fputc('\'', f));
			in_single = true;
			OUT(fwrite(p + i, 1, n, f) == n ? 0 : -1);
			i += n;
			continue;
		}
		if (in_single)
			OUT(fputc('\'', f));
		in_single = false;
		if (p[i] == '\'')
			OUT(fputs("\\'", f));
		else if (p[i] == '\n')
			OUT(fputs("$'\\n'", f));
		else if (p[i] == '\t')
			OUT(fputs("$'\\t'", f));
		else
			OUT(fprintf(f, "$'\\x%02x'", p[i]));
		i++;
	}
	if (in_single)
		OUT(fputc('\'', f));
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
