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
 * '...' with ' written as '\'' , and everything a terminal would act on
 * instead of showing as $'...' segments: C0 controls and DEL ($'\n',
 * $'\x1b'), C1 controls, i.e. U+0080..U+009F in UTF-8 ($'\xc2\x9b'), and
 * each byte of invalid UTF-8 ($'\xff'). Pasting the output into sh gives the
 * original bytes. The output is printable UTF-8: no byte below 0x20, no DEL,
 * no C1. */
int vp_quote_shell(FILE *f, const char *s, size_t len);

/* The same into buf (size > 5), NUL-terminated, for messages built with
 * printf ("%s"): library code composes its `why` sentences with these, so a
 * path can never reach a message raw. When the quoted form does not fit,
 * the start of the name is left out and "..." written before the quoted
 * rest (the end of a path, the entry's own name, is what tells entries
 * apart): the message around it keeps its meaning. Returns buf. */
const char *vp_quote_shell_buf(char *buf, size_t size, const char *s, size_t len);

/* vp_quote_shell_buf of root + "/" + rel (rel_len bytes); rel NULL or "."
 * is the root itself. */
const char *vp_quote_path_buf(char *buf, size_t size, const char *root, const char *rel,
                              size_t rel_len);

/* Text that is not a name (a journal's policy lines) for a terminal:
 * printable UTF-8 as is; '\\' and what vp_quote_shell puts in $'...' as
 * \xHH per byte. */
int vp_quote_text(FILE *f, const char *s, size_t len);

/* A JSON string literal (with the quotes). Valid UTF-8 is kept, control
 * characters (C0, DEL and C1: raw C1 is valid JSON but not for a terminal
 * showing it) are \u-escaped, and each byte of invalid UTF-8 is replaced by
 * U+FFFD. Use vp_utf8_valid() to know whether the bytes survived; callers
 * add a "path_b64" member with the exact bytes when they did not. */
int vp_quote_json(FILE *f, const char *s, size_t len);

/* "KEY":"..." for a name (a path): vp_quote_json, and when the bytes are not
 * UTF-8 a "KEY_b64" member after it with their exact bytes, so that JSON
 * readers get every name back. */
void vp_quote_json_member(FILE *f, const char *key, const char *s, size_t len);

/* Base64 (RFC 4648, with padding), without quotes. */
int vp_write_base64(FILE *f, const void *buf, size_t len);

bool vp_utf8_valid(const char *s, size_t len);

/* getfacl/setfacl --restore style: bytes that are whitespace, non-printable
 * (including every byte >= 0x80) or '\\' are written as \ooo octal. */
int vp_quote_getfacl(FILE *f, const char *s, size_t len);

#endif
