/* SPDX-License-Identifier: GPL-2.0-or-later */
/* journal show / export (see export.h). The ACL xattr layout is the kernel's
 * (include/uapi/linux/posix_acl_xattr.h): a le32 version 2, then entries of
 * le16 tag, le16 perm, le32 id. We decode it ourselves because libacl has no
 * public call that takes a raw xattr value. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decide.h"
#include "volperm/export.h"
#include "volperm/quote.h"

#define ACL_XATTR_VERSION 2
enum { T_USER_OBJ = 1, T_USER = 2, T_GROUP_OBJ = 4, T_GROUP = 8, T_MASK = 0x10, T_OTHER = 0x20 };

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void perms(FILE *f, unsigned p)
{
	fprintf(f, "%c%c%c", p & 4 ? 'r' : '-', p & 2 ? 'w' : '-', p & 1 ? 'x' : '-');
}

int vp_acl_xattr_to_text(FILE *f, const void *val, size_t len, const char *prefix)
{
	const uint8_t *p = val;

	if (len < 4 || (len - 4) % 8 || le32(p) != ACL_XATTR_VERSION)
		return -EBADMSG;
	for (size_t off = 4; off < len; off += 8) {
		unsigned tag = (unsigned)p[off] | (unsigned)p[off + 1] << 8;
		unsigned perm = (unsigned)p[off + 2] | (unsigned)p[off + 3] << 8;
		uint32_t id = le32(p + off + 4);

		fputs(prefix, f);
		switch (tag) {
		case T_USER_OBJ: fputs("user::", f); break;
		case T_USER: fprintf(f, "user:%" PRIu32 ":", id); break;
		case T_GROUP_OBJ: fputs("group::", f); break;
		case T_GROUP: fprintf(f, "group:%" PRIu32 ":", id); break;
		case T_MASK: fputs("mask::", f); break;
		case T_OTHER: fputs("other::", f); break;
		default: return -EBADMSG;
		}
		perms(f, perm);
		fputc('\n', f);
	}
	return 0;
}

static void iso_time(char buf[64], uint64_t ns)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, 64, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void changes_words(FILE *f, unsigned ch, const char *sep0, bool json)
{
	static const struct { unsigned bit; const char *name; } w[] = {
		{ VP_CH_UID, "owner" }, { VP_CH_GID, "group" }, { VP_CH_DROP_SUID, "setuid" },
		{ VP_CH_DROP_SGID, "setgid" }, { VP_CH_DROP_CAPS, "caps" },
	};
	const char *sep = "";
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (ch & w[i].bit) {
			fprintf(f, json ? "%s\"%s\"" : "%s%s", sep, w[i].name);
			sep = sep0;
		}
}

/* One side of a map as /proc/PID/uid_map has it, a range after another:
 * "0 100000 65536, 65536 200000 1000". */
static void map_ranges(FILE *f, const struct vp_idrange *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%u %u %u", i ? ", " : "", v[i].c, v[i].h, v[i].n);
}

static void show_maps(FILE *f, const struct vp_jheader *h)
{
	if (vp_jmap_identity(&h->ns)) {
		fputs("uid map:  initial namespace\ngid map:  initial namespace\n", f);
	} else {
		fputs("uid map:  ", f);
		map_ranges(f, h->ns.uid, h->ns.n_uid);
		fputs("\ngid map:  ", f);
		map_ranges(f, h->ns.gid, h->ns.n_gid);
		fputs("\nids:      this namespace's, below (journal export gives host ids)\n", f);
	}
	fputs("userns:   ", f);
	if (vp_userns_empty(&h->userns)) {
		fputs("none (no --userns, --uid-map or --gid-map)\n", f);
		return;
	}
	char q[4096];
	/* the SPEC quoted (it may be a path), --uid-map[/--gid-map] as it is */
	fputs(vp_userns_name(&h->userns, q, sizeof(q), "--uid-map"), f);
	fputs(" (", f);
	(void)vp_userns_format(&h->userns, f);
	fputs(")\n", f);
}

static void json_ranges(FILE *f, const char *key, const struct vp_idrange *v, size_t n)
{
	fprintf(f, ",\"%s\":[", key);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s[%u,%u,%u]", i ? "," : "", v[i].c, v[i].h, v[i].n);
	fputc(']', f);
}

void vp_export_json_maps(FILE *f, const struct vp_jheader *h)
{
	if (vp_jmap_identity(&h->ns)) {
		fputs(",\"uid_map\":null,\"gid_map\":null", f);
	} else {
		json_ranges(f, "uid_map", h->ns.uid, h->ns.n_uid);
		json_ranges(f, "gid_map", h->ns.gid, h->ns.n_gid);
	}
	if (vp_userns_empty(&h->userns)) {
		fputs(",\"userns\":null", f);
		return;
	}
	fputs(",\"userns\":{", f);
	const char *spec = h->userns.spec ? h->userns.spec : "";
	vp_quote_json_member(f, "spec", spec, strlen(spec));
	json_ranges(f, "uid_map", h->userns.uid, h->userns.n_uid);
	json_ranges(f, "gid_map", h->userns.gid, h->userns.n_gid);
	fputc('}', f);
}

int vp_export_host_ids(struct vp_jreader *r, const char *file, char *why, size_t why_size)
{
	const struct vp_jheader *h = vp_jr_header(r);
	struct vp_userns host = VP_USERNS_INIT;
	struct vp_jentry e;
	int n;

	/* Host ids already, or ids that are right where we are (whoever
	 * restores the export here gets the journal's files back). */
	if (vp_jmap_identity(&h->ns) || vp_jheader_ns_here(h, NULL) == 1)
		return 0;
	n = vp_jr_translate(r, &h->ns, &host);
	if (n < 0)
		return n;
	/* Every id before the first line: a half-printed export that stops at
	 * an unmapped id would restore half a tree. */
	vp_jr_rewind(r);
	while ((n = vp_jr_next(r, &e)) > 0)
		;
	vp_jr_rewind(r);
	if (n == -ERANGE) {
		uint32_t id;
		bool gid;
		char q[4096];
		vp_jr_xlat_fail(r, &id, &gid);
		snprintf(why, why_size,
		         "journal %s records %s %u, which the id map of the user namespace it was written in does not map to a host id%s; refusing to export it (export it inside that namespace, e.g. with podman unshare)",
		         vp_quote_shell_buf(q, sizeof(q), file, strlen(file)), gid ? "gid" : "uid", id,
		         id == 65534 || id == 4294967295u
		                 ? " (the kernel shows an id that namespace does not map as 65534, or as 4294967295 in an ACL)"
		                 : "");
		return -ERANGE;
	}
	return n;
}

int vp_export_show(FILE *f, const char *file, struct vp_jreader *r)
{
	const struct vp_jheader *h = vp_jr_header(r);
	struct vp_jentry e;
	char when[64];
	int n;

	iso_time(when, h->created_ns);
	fputs("journal:  ", f);
	vp_quote_shell(f, file, strlen(file));
	fputc('\n', f);
	fprintf(f, "state:    %s%s\n", vp_jstate_name(vp_jr_state(r)),
	        vp_jr_torn(r) ? " (a torn last batch was ignored)" : "");
	fprintf(f, "root:     ");
	vp_quote_shell(f, h->root, strlen(h->root));
	fprintf(f, " (dev %" PRIu64 ", inode %" PRIu64 ", fsid %016" PRIx64 ")\n", h->root_dev,
	        h->root_ino, h->fsid);
	fprintf(f, "created:  %s on ", when);
	vp_quote_shell(f, h->host, strlen(h->host));
	fputc('\n', f);
	if (h->version >= 2)
		fprintf(f, "sequence: %" PRIu64 " (its place among the journals of this root)\n",
		        h->seq);
	else
		fprintf(f, "sequence: none (a version 1 journal: ordered by its creation time)\n");
	show_maps(f, h);
	fputs("nonce:    ", f);
	for (int i = 0; i < 16; i++)
		fprintf(f, "%02x", h->nonce[i]);
	fputc('\n', f);
	fputs("policy:  ", f);
	for (const char *p = h->policy; *p;) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		/* volperm writes it %-escaped, but this is the file's word */
		fputc(' ', f);
		vp_quote_text(f, p, l);
		fputc(';', f);
		p += l + (nl ? 1 : 0);
	}
	fprintf(f, "\nentries:  %" PRIu64 "\n", vp_jr_entries(r));
	vp_jr_rewind(r);
	while ((n = vp_jr_next(r, &e)) > 0) {
		fprintf(f, "%" PRIu64 " %s %u:%u->%u:%u mode %04o->%04o [", e.seq,
		        vp_type_name(e.mode), e.uid, e.gid, e.new_uid, e.new_gid, e.mode & 07777,
		        e.new_mode & 07777);
		changes_words(f, e.changes, ",", false);
		fputs("]", f);
		if (e.acl_access_len)
			fputs(" acl", f);
		if (e.acl_default_len)
			fputs(" default-acl", f);
		if (e.caps_len)
			fputs(" caps", f);
		fputc(' ', f);
		vp_quote_shell(f, e.path, e.path_len);
		fputc('\n', f);
	}
	return n;
}

static void symlink_comments(FILE *f, struct vp_jreader *r)
{
	struct vp_jentry e;
	uint64_t n = 0;

	/* setfacl --restore would chown the target of a symlink, so symlinks
	 * are only listed, as comments ahead of the first "# file:" (the only
	 * place where setfacl accepts free comments). */
	vp_jr_seek_end(r);
	while (vp_jr_prev(r, &e) > 0) {
		if (!S_ISLNK(e.mode))
			continue;
		if (n++ == 0)
			fputs("# symlinks (setfacl cannot restore them; volperm rollback can):\n", f);
		fprintf(f, "#   chown -h %u:%u ", e.uid, e.gid);
		vp_quote_getfacl(f, e.path, e.path_len);
		fputc('\n', f);
	}
}

int vp_export_getfacl(FILE *f, struct vp_jreader *r)
{
	const struct vp_jheader *h = vp_jr_header(r);
	struct vp_jentry e;
	int n, err = 0;

	fputs("# volperm journal export: before-images for setfacl --restore\n# root: ", f);
	vp_quote_getfacl(f, h->root, strlen(h->root));
	fputs("\n# run: cd ROOT && setfacl --restore=THIS_FILE\n", f);
	if (!vp_jmap_identity(&h->ns)) {
		fputs(vp_jr_translating(r) ? "# ids: host ids, translated from those of the user namespace the journal was written in (uid map: "
		                           : "# ids: those of the user namespace the journal was written in, which is this one (uid map: ", f);
		map_ranges(f, h->ns.uid, h->ns.n_uid);
		fputs("; gid map: ", f);
		map_ranges(f, h->ns.gid, h->ns.n_gid);
		fputs(")\n", f);
	}
	symlink_comments(f, r);
	fputc('\n', f);
	vp_jr_seek_end(r);
	while ((n = vp_jr_prev(r, &e)) > 0) {
		if (S_ISLNK(e.mode))
			continue;
		fputs("# file: ", f);
		vp_quote_getfacl(f, e.path, e.path_len);
		fprintf(f, "\n# owner: %u\n# group: %u\n", e.uid, e.gid);
		if (e.mode & (S_ISUID | S_ISGID | S_ISVTX))
			fprintf(f, "# flags: %c%c%c\n", e.mode & S_ISUID ? 's' : '-',
			        e.mode & S_ISGID ? 's' : '-', e.mode & S_ISVTX ? 't' : '-');
		if (e.acl_access_len) {
			if (vp_acl_xattr_to_text(f, e.acl_access, e.acl_access_len, "") < 0)
				err = -EBADMSG;
		} else {
			fputs("user::", f);
			perms(f, (e.mode >> 6) & 7);
			fputs("\ngroup::", f);
			perms(f, (e.mode >> 3) & 7);
			fputs("\nother::", f);
			perms(f, e.mode & 7);
			fputc('\n', f);
		}
		if (e.acl_default_len && vp_acl_xattr_to_text(f, e.acl_default, e.acl_default_len,
		                                              "default:") < 0)
			err = -EBADMSG;
		fputc('\n', f);
	}
	return n < 0 ? n : err;
}


static void json_blob(FILE *f, const char *key, const void *v, size_t len)
{
	fprintf(f, ",\"%s\":", key);
	if (!len) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	vp_write_base64(f, v, len);
	fputc('"', f);
}

static void json_acl_text(FILE *f, const char *key, const void *v, size_t len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *m;

	if (!len)
		return;
	m = open_memstream(&buf, &n);
	if (!m)
		return;
	int r = vp_acl_xattr_to_text(m, v, len, "");
	fclose(m);
	if (r == 0) {
		fprintf(f, ",\"%s\":", key);
		vp_quote_json(f, buf, n);
	}
	free(buf);
}

int vp_export_json(FILE *f, struct vp_jreader *r)
{
	const struct vp_jheader *h = vp_jr_header(r);
	struct vp_jentry e;
	char when[64];
	int n;

	iso_time(when, h->created_ns);
	fputs("{\"record\":\"header\",", f);
	vp_quote_json_member(f, "root", h->root, strlen(h->root));
	fprintf(f, ",\"root_dev\":%" PRIu64 ",\"root_ino\":%" PRIu64 ",\"fsid\":\"%016" PRIx64
	           "\",\"created\":\"%s\",\"created_ns\":%" PRIu64 ",\"sequence\":%" PRIu64
	           ",\"host\":",
	        h->root_dev, h->root_ino, h->fsid, when, h->created_ns, h->seq);
	vp_quote_json(f, h->host, strlen(h->host));
	fputs(",\"policy\":", f);
	vp_quote_json(f, h->policy, h->policy_len);
	vp_export_json_maps(f, h);
	fprintf(f, ",\"ids\":\"%s\"", vp_jr_translating(r) ? "host"
	        : vp_jmap_identity(&h->ns) ? "host" : "namespace");
	fprintf(f, ",\"state\":\"%s\",\"entries\":%" PRIu64 ",\"torn\":%s}\n",
	        vp_jstate_name(vp_jr_state(r)), vp_jr_entries(r), vp_jr_torn(r) ? "true" : "false");
	vp_jr_rewind(r);
	while ((n = vp_jr_next(r, &e)) > 0) {
		fprintf(f, "{\"record\":\"entry\",\"seq\":%" PRIu64 ",\"batch\":%u,", e.seq,
		        e.batch);
		vp_quote_json_member(f, "path", e.path, e.path_len);
		fprintf(f, ",\"type\":\"%s\",\"dev\":%" PRIu64 ",\"ino\":%" PRIu64
		           ",\"uid\":%u,\"gid\":%u,\"mode\":\"%04o\",\"new_uid\":%u,\"new_gid\":%u,\"new_mode\":\"%04o\",\"changes\":[",
		        vp_type_name(e.mode), e.dev, e.ino, e.uid, e.gid, e.mode & 07777, e.new_uid,
		        e.new_gid, e.new_mode & 07777);
		changes_words(f, e.changes, ",", true);
		fputc(']', f);
		json_acl_text(f, "acl_access", e.acl_access, e.acl_access_len);
		json_acl_text(f, "acl_default", e.acl_default, e.acl_default_len);
		json_blob(f, "acl_access_b64", e.acl_access, e.acl_access_len);
		json_blob(f, "acl_default_b64", e.acl_default, e.acl_default_len);
		json_blob(f, "caps_b64", e.caps, e.caps_len);
		fputs("}\n", f);
	}
	return n;
}
