/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_IDSPEC_H
#define VOLPERM_IDSPEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Parsing of user and group ids as users type them. Every function returns 0
 * or a negative errno and leaves its out-parameters untouched on failure:
 *   -EINVAL  junk: empty, '+', spaces, non-digits, unknown name
 *   -ERANGE  out of range: > 4294967294, or negative ("-1", "-5"): (uid_t)-1
 *            is chown's "no change" value and is never a valid target, and a
 *            negative number is refused as out of range, not looked up as a
 *            name. vp_parse_id() itself takes digits only (-EINVAL for "-1"). */

#define VP_ID_MAX 4294967294u

/* A decimal id: digits only, no sign, no leading/trailing space. */
int vp_parse_id(const char *s, uint32_t *ret);

/* Where names are looked up: passwd(5)/group(5) files copied out of the app
 * image (--passwd, --group-file); a NULL file (or a NULL db) means the local
 * database (NSS). A name not found is -EINVAL; an unreadable file -errno. */
struct vp_iddb {
	const char *passwd_file;
	const char *group_file;
};

/* A user: a decimal id, or a name looked up in the local user database. */
int vp_parse_user(const char *s, uid_t *ret);
/* A group: a decimal id, or a name looked up in the local group database. */
int vp_parse_group(const char *s, gid_t *ret);
/* The same with names looked up in db. */
int vp_parse_user_db(const struct vp_iddb *db, const char *s, uid_t *ret);
int vp_parse_group_db(const struct vp_iddb *db, const char *s, gid_t *ret);
int vp_parse_uid_map_db(const struct vp_iddb *db, const char *s, uint32_t *from, uint32_t *to);
int vp_parse_gid_map_db(const struct vp_iddb *db, const char *s, uint32_t *from, uint32_t *to);

/* --owner: "UID", "UID:GID" or ":GID". ("UID:" is refused: we do not guess a
 * login group.) has_uid/has_gid tell which parts were given. */
struct vp_owner {
	bool has_uid, has_gid;
	uid_t uid;
	gid_t gid;
};
int vp_parse_owner(const char *s, struct vp_owner *ret);
int vp_parse_owner_db(const struct vp_iddb *db, const char *s, struct vp_owner *ret);

/* --map / --map-gid: "OLD:NEW", both decimal ids (or names). */
int vp_parse_uid_map(const char *s, uint32_t *from, uint32_t *to);
int vp_parse_gid_map(const char *s, uint32_t *from, uint32_t *to);

#endif
