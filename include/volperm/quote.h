/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_QUOTE_H
#define VOLPERM_QUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Quoting of hostile names. File names are arbitrary bytes except '/' and
 * NUL: newlines, control bytes, invalid UTF-8 and leading dashes all occur on
 * volumes that untrusted apps wrote. Each writer here is unambiguous and
 * reversible. All return 0 or -errno from the stream. */

/* Shell style, as GNU ls --quoting-style=shell-escape: bare when every byte is
 * in [A-Za-z0-9_./:,+@%=-] (and the name does not start with '-'), else
 * '...' with ' written as '\'' , and control bytes / invalid UTF-8 as $'\n' /
 * $'\xff' segments. Pasting the output into sh gives the original bytes. */
int vp_quote_shell(FILE *f, const char *s, size_t len);

/* A JSON string literal (with the quotes). Valid UTF-8 is kept, control
 * characters are \u-escaped, and each byte of invalid UTF-8 is replaced by
 * U+FFFD. Use vp_utf8_valid() to know whether the bytes survived; callers
 * add a "path_b64" member with the exact bytes when they did not. */
int vp_quote_json(FILE *f, const char *s, size_t len);

/* Base64 (RFC 4648, with padding), without quotes. */
int vp_write_base64(FILE *f, const void *buf, size_t len);

bool vp_utf8_valid(const char *s, size_t len);

/* getfacl/setfacl --restore style: bytes that are whitespace, non-printable
 * (including every byte >= 0x80) or '\\' are written as \ooo octal. */
int vp_quote_getfacl(FILE *f, const char *s, size_t len);

#endif
