/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_EXPORT_H
#define VOLPERM_EXPORT_H

#include <stdio.h>

#include "volperm/journal.h"

/* Reading a journal out for people and for standard tools (invariant 8). */

/* journal export writes host ids (docs/journal-format.md): for a journal
 * written in a user namespace whose maps are not ours, make r give every
 * id through the recorded map as a host id (vp_jr_translate), after
 * checking that each has one. 0 (also when nothing is to translate:
 * no maps recorded, or ours are the same), -ERANGE with why naming the id
 * and file, or -errno. */
int vp_export_host_ids(struct vp_jreader *r, const char *file, char *why, size_t why_size);

/* ,"uid_map":[[C,H,N],...],"gid_map":...,"userns":{...} members (null for
 * the initial namespace, no --userns) of h, for JSON objects. */
void vp_export_json_maps(FILE *f, const struct vp_jheader *h);

/* The header and every entry, one line each, for `journal show`. */
int vp_export_show(FILE *f, const char *file, struct vp_jreader *r);

/* setfacl --restore input: the before-images, newest first (the order
 * rollback uses), paths relative to the root, numeric ids. Symlinks cannot
 * be restored by setfacl (it would follow them): they are listed as
 * comments at the top. */
int vp_export_getfacl(FILE *f, struct vp_jreader *r);

/* One JSON object per entry record, after one for the header. */
int vp_export_json(FILE *f, struct vp_jreader *r);

/* Decode a raw system.posix_acl_* xattr value into getfacl text lines
 * ("user::rw-\n..."), each prefixed with prefix ("" or "default:").
 * Returns 0 or -EBADMSG when the value is malformed. */
int vp_acl_xattr_to_text(FILE *f, const void *val, size_t len, const char *prefix);

#endif
