/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer harness for everything volperm parses from users and from
 * journal headers:
 *
 *   vp_parse_id, vp_parse_owner(_db), vp_parse_uid_map(_db),
 *   vp_parse_gid_map(_db)   --owner, --map, --map-gid (names from the local
 *                           database, and from passwd/group files as with
 *                           --passwd/--group-file)
 *   vp_parse_chmod, vp_parse_octal_mode           --chmod, --root-mode
 *   vp_parse_grants                               --grant, --revoke
 *   vp_policy_from_text                           the policy in a journal
 *                                                 header (recover --forward)
 *   vp_acl_from_xattr                             ACL xattrs in journals
 *
 * The whole input goes to every parser (as a NUL-terminated string; the
 * binary ones get the raw bytes). Properties, abort() when violated:
 *   - ids are never above 4294967294 (the "no change" value -1 is refused);
 *   - on failure the out-parameters are untouched (idspec.h promises it);
 *   - vp_parse_id accepts digits only;
 *   - a parsed chmod program maps every mode into 07777;
 *   - grants have a user or group tag and rwx permissions;
 *   - a policy text that parses is re-serialised by vp_policy_to_text into a
 *     text that parses to the same serialisation (a canonical round trip),
 *     and can be described;
 *   - an ACL xattr that parses round-trips through vp_acl_to_xattr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "volperm/acl.h"
#include "volperm/idspec.h"
#include "volperm/modespec.h"
#include "volperm/policy.h"

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "fuzz_parsers: property violated: %s (%s:%d)\n", #cond, \
			        __FILE__, __LINE__);                                           \
			abort();                                                       \
		}                                                                      \
	} while (0)

static struct vp_iddb db;
static char dir_path[64], passwd_path[96], group_path[96];

static void remove_files(void)
{
	unlink(passwd_path);
	unlink(group_path);
	rmdir(dir_path);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

static void setup(void)
{
	snprintf(dir_path, sizeof(dir_path), "%s/vp-fuzzp-XXXXXX",
	         access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir_path))
		abort();
	snprintf(passwd_path, sizeof(passwd_path), "%s/passwd", dir_path);
	snprintf(group_path, sizeof(group_path), "%s/group", dir_path);
	/* an app image's files: odd but legal lines included */
	write_file(passwd_path, "root:x:0:0:root:/root:/bin/sh\n"
	                        "app:x:1001:1001::/home/app:/bin/sh\n"
	                        "postgres:x:999:999::/var/lib/postgresql:/bin/false\n"
	                        "# comment\n\n"
	                        "big:x:4294967294:4294967294:::\n"
	                        "bad:x:-1:5:::\n");
	write_file(group_path, "root:x:0:\napp:x:1001:\npostgres:x:999:app\nbig:x:4294967294:\n");
	db.passwd_file = passwd_path;
	db.group_file = group_path;
	atexit(remove_files);
}

static void fuzz_ids(const char *s)
{
	uint32_t id = 0xdeadbeef, a = 0xdeadbeef, b = 0xdeadbeef;
	struct vp_owner o, sentinel;
	int r;

	r = vp_parse_id(s, &id);
	if (r == 0) {
		CHECK(id <= VP_ID_MAX);
		CHECK(s[0] != 0 && strspn(s, "0123456789") == strlen(s));
	} else {
		CHECK(id == 0xdeadbeef);
		CHECK(r == -EINVAL || r == -ERANGE);
	}

	for (int pass = 0; pass < 2; pass++) {
		memset(&o, 0xa5, sizeof(o));
		sentinel = o;
		r = pass ? vp_parse_owner_db(&db, s, &o) : vp_parse_owner(s, &o);
		if (r == 0) {
			CHECK(o.has_uid || o.has_gid);
			CHECK(!o.has_uid || o.uid <= VP_ID_MAX);
			CHECK(!o.has_gid || o.gid <= VP_ID_MAX);
		} else {
			CHECK(memcmp(&o, &sentinel, sizeof(o)) == 0);
		}

		for (int gid = 0; gid < 2; gid++) {
			a = b = 0xdeadbeef;
			if (pass)
				r = gid ? vp_parse_gid_map_db(&db, s, &a, &b) : vp_parse_uid_map_db(&db, s, &a, &b);
			else
				r = gid ? vp_parse_gid_map(s, &a, &b) : vp_parse_uid_map(s, &a, &b);
			if (r == 0) {
				CHECK(a <= VP_ID_MAX && b <= VP_ID_MAX);
				CHECK(strchr(s, ':') != NULL);
			} else {
				CHECK(a == 0xdeadbeef && b == 0xdeadbeef);
			}
		}
	}
}

static void fuzz_modes(const char *s)
{
	static const mode_t modes[] = { 0, 0644, 0755, 04755, 02770, 01777, 07777, 0600 };
	struct vp_modeprog p;
	mode_t m = 0123456;

	if (vp_parse_chmod(s, &p) == 0) {
		CHECK(p.n <= VP_MODE_MAX_CLAUSES);
		for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
			for (int dir = 0; dir < 2; dir++) {
				mode_t out = vp_modeprog_apply(&p, modes[i], dir);
				CHECK((out & ~(mode_t)07777) == 0);
				CHECK(vp_modeprog_apply(&p, modes[i], dir) == out); /* pure */
			}
		}
	}
	if (vp_parse_octal_mode(s, &m) == 0)
		CHECK(m <= 07777);
	else
		CHECK(m == 0123456);
}

static void fuzz_grants(const char *s)
{
	for (int revoke = 0; revoke < 2; revoke++) {
		struct vp_grant *v = NULL;
		size_t n = 0;
		int r = vp_parse_grants(&db, s, revoke, &v, &n);
		if (r == 0) {
			for (size_t i = 0; i < n; i++) {
				CHECK(v[i].tag == VP_ACL_USER || v[i].tag == VP_ACL_GROUP);
				CHECK(v[i].perm <= 7);
				CHECK(v[i].id <= VP_ID_MAX);
			}
		}
		free(v);
	}
}

static void fuzz_policy(const uint8_t *data, size_t size)
{
	struct vp_policy p, q;
	char *t1 = NULL, *t2 = NULL, *desc = NULL;
	size_t l1, l2;

	if (vp_policy_from_text((const char *)data, size, &p) != 0)
		return;
	CHECK(vp_policy_to_text(&p, &t1, &l1) == 0);
	if (vp_policy_from_text(t1, l1, &q) != 0) {
		fprintf(stderr, "fuzz_parsers: re-serialised policy does not parse:\n%.*s\n", (int)l1, t1);
		abort();
	}
	CHECK(vp_policy_to_text(&q, &t2, &l2) == 0);
	if (l1 != l2 || memcmp(t1, t2, l1) != 0) {
		fprintf(stderr, "fuzz_parsers: policy round trip differs:\n%.*s\n---\n%.*s\n", (int)l1, t1,
		        (int)l2, t2);
		abort();
	}
	CHECK(vp_policy_describe(&p, &desc) == 0);
	CHECK(desc != NULL);
	(void)vp_policy_excluded(&p, "a/b/c", "c");
	(void)vp_policy_excluded(&p, ".hidden", ".hidden");
	(void)vp_policy_is_empty(&p);
	free(desc);
	free(t1);
	free(t2);
	vp_policy_free(&p);
	vp_policy_free(&q);
}

static void fuzz_acl(const uint8_t *data, size_t size)
{
	struct vp_acl a = VP_ACL_INIT, b = VP_ACL_INIT;
	uint8_t *buf = NULL;

	if (vp_acl_from_xattr(data, size, &a) != 0)
		goto out;
	CHECK(a.n <= VP_ACL_MAX);
	size_t n = vp_acl_to_xattr(&a, NULL, 0);
	CHECK(n == 4 + 8 * a.n && n <= VP_ACL_XATTR_MAX);
	buf = malloc(n);
	CHECK(buf != NULL);
	CHECK(vp_acl_to_xattr(&a, buf, n) == n);
	CHECK(vp_acl_from_xattr(buf, n, &b) == 0);
	CHECK(b.n == a.n);
	(void)vp_acl_check(&a);
	(void)vp_acl_mode(&a, 0644);
	(void)vp_acl_is_minimal(&a);
out:
	free(buf);
	vp_acl_free(&a);
	vp_acl_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (!db.passwd_file)
		setup();
	if (size > 4096)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	fuzz_ids(s);
	fuzz_modes(s);
	fuzz_grants(s);
	fuzz_policy(data, size);
	fuzz_acl(data, size);
	free(s);
	return 0;
}
