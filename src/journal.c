/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The rollback journal: format, writer and reader.
 *
 * Anyone changing this file reads these rules first. docs/journal-format.md
 * repeats them for people who do not read C; the two must agree.
 *
 * INVARIANTS (numbered as in the product brief; the callers in engine.c and
 * rollback.c keep the ones that are about ordering)
 *
 *  1. Write-ahead. The before-image of an entry (uid, gid, full mode, raw
 *     access and default ACL xattrs, raw security.capability) is on stable
 *     storage before the entry changes. The engine's workers add
 *     before-images to one shared buffer (vp_jw_add); a worker asks for the
 *     batch holding its entries to be durable (vp_jw_sync): the whole buffer
 *     is written as one batch with one pwrite and fdatasync()ed, once for
 *     every worker waiting at that moment, and only then do they change
 *     those entries. One batch at a time is in flight.
 *  2. Self-validating. A versioned header with its own CRC-32C; every record
 *     carries a CRC-32C seeded with the header's CRC (a record copied from
 *     another journal never validates). A torn last batch is ignored; bad
 *     bytes followed by a later batch are corruption and the journal is
 *     refused.
 *  3. Bound to its volume. The header holds the root path, the root's
 *     st_dev/st_ino, the filesystem id (statfs f_fsid), the policy, a random
 *     nonce, the host name and the creation time. Rollback compares the
 *     root's dev/ino with the header before touching anything. A journal
 *     written in a user namespace holds its id maps (version 3): its ids
 *     are that namespace's (session.c and export.c read them through the
 *     maps; docs/journal-format.md, "User namespaces").
 *  4. States. ACTIVE (no mark yet) -> COMMITTED (COMMIT mark: written only
 *     after every change was applied and syncfs() returned) -> ROLLING_BACK
 *     (ROLLBACK_BEGIN mark) -> ROLLED_BACK (ROLLED_BACK mark). A failed apply
 *     goes ACTIVE -> ROLLING_BACK -> ROLLED_BACK. The state is the last mark.
 *     A journal in ACTIVE or ROLLING_BACK whose flock() nobody holds is HOT:
 *     its process died. The writer holds LOCK_EX for its whole life.
 *  5. Rollback is fd-safe, idempotent and restartable (rollback.c).
 *  6. Never in the tree by accident. Journal files are created with
 *     O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, in a directory that jdir.c has
 *     checked (root-owned, not group/world-writable, outside the volume).
 *  7. Streamed. The writer holds one batch; the reader holds one window of
 *     the file. Memory does not grow with the number of entries.
 *  8. Exportable. export.c turns the before-images into setfacl --restore
 *     input or JSON.
 *
 * BYTE LAYOUT (all integers little-endian)
 *
 * Header, H bytes:
 *      0  8  magic "VOLPERMJ"
 *      8  4  version (2, or 3 with an extension area; 1 is read too, see below)
 *     12  4  H, the header length including its CRC
 *     16  8  created, ns since the epoch (CLOCK_REALTIME)
 *     24  8  root st_dev
 *     32  8  root st_ino
 *     40  8  filesystem id (f_fsid: val[0] | val[1] << 32)
 *     48 16  nonce (getrandom)
 *     64  4  flags (0)
 *     68  4  host name length  (h)
 *     72  4  root path length  (r)
 *     76  4  policy text length (p)
 *     80  8  sequence: 1 + the largest sequence of the journals of the same
 *            root in the directory, chosen under the volume lock. "The
 *            newest journal" is the one with the largest sequence: the
 *            creation time comes from a clock that can be set back (an NTP
 *            step, a VM restored from a snapshot), a sequence cannot.
 *     88  h  host name, then r bytes root path, then p bytes policy text
 *    H-4  4  CRC-32C of bytes [0, H-4)
 * Version 1 headers have no sequence field (the variable part starts at
 * 80) and read as sequence 0: older than every version 2 journal, and
 * ordered among themselves by creation time, as version 1 ordered them.
 *
 * Version 3 = version 2 + an extension area:
 *     88  4  x, the extension area's length
 *     92  h  host name, r bytes root path, p bytes policy text (as above)
 *      .  x  extension area: items of  tag (4), n (4), n bytes value
 *    H-4  4  CRC-32C of bytes [0, H-4)          H = 92 + h + r + p + x + 4
 * Tags, each at most once, ascending:
 *     1  the writer's uid_map      } k ranges of  inside (4), outside (4),
 *     2  the writer's gid_map      } count (4); 1 <= k <= 340 (the kernel's
 *     4  --userns uid ranges       } limit), no overlap on either side,
 *     5  --userns gid ranges       } count >= 1, no range past 4294967295
 *     3  --userns SPEC text (no NUL), only with 4 and 5
 * 1 and 2 come together (so do 4 and 5). A tag with bit 31 clear that
 * this volperm does not know is skipped (a later volperm's optional
 * addition); one with bit 31 set must be understood: -EPROTO.
 *
 * Why two versions are written. The extension area is new information
 * only for a journal written inside a user namespace (or with --userns):
 * one written in the initial namespace without --userns has an empty area
 * and is written as version 2, byte for byte what volperm wrote before, so
 * that an older volperm (a downgrade, a rescue system) can still read and
 * roll back the common case. Only a header with something to say is
 * version 3, which an older volperm refuses (it does not know the layout)
 * instead of rolling back namespace-relative ids as host ids. A tagged
 * area rather than fixed fields: maps have a variable length, and later
 * additions can be optional without a version 4. The whole area is under
 * the header CRC, like every other header byte.
 *
 * Record, L bytes (L >= 32), following the header back to back:
 *      0  4  magic 0x31525056 ("VPR1")
 *      4  4  L
 *      8  1  type: 1 ENTRY, 2 COMMIT, 3 ROLLBACK_BEGIN, 4 ROLLED_BACK
 *      9  3  zero
 *     12  4  batch number (1, 2, ...; a mark carries the next batch number)
 *     16  8  sequence number (0, 1, ... over all records)
 *     24  .  payload (empty for marks)
 *    L-8  4  CRC-32C of bytes [0, L-8), seeded with the header CRC
 *    L-4  4  L again, so the file can be read backwards for rollback
 *
 * ENTRY payload, 76 bytes + variable:
 *      0  8  st_dev          8  8  st_ino
 *     16  4  uid before     20  4  gid before     24  4  mode before (with type)
 *     28  4  uid after      32  4  gid after      36  4  mode after (predicted)
 *     40  4  changes (VP_CH_* bits)
 *     44  4  path length    48  4  access ACL length
 *     52  4  default ACL length                   56  4  capability length
 *     60  4  new access ACL length                64  4  new default ACL length
 *     68  8  birth time (statx btime, ns; 0 if the filesystem has none): an
 *            inode number can be reused, a birth time is not
 *     76  .  path (relative to the root, "." for the root; no NUL, not
 *            absolute, no ".." component), then the raw xattr values: access
 *            ACL, default ACL, capability (the before-image), then the new
 *            access and default ACL that volperm writes (the after-image)
 *
 * TORN TAIL VS CORRUPTION. The writer never writes batch k+1 before batch k
 * is synced, and a mark is written alone after the batch before it is synced.
 * So after a crash only the last batch can be incomplete, and none of its
 * changes happened (they come after its fdatasync). The reader, meeting a
 * record that does not validate at offset X after batch b, searches the rest
 * of the file for any valid record: if one is a mark, or has a batch number
 * greater than b+1, the damage is in synced data and the journal is refused
 * (-EBADMSG). Otherwise everything from X on is the torn last batch and is
 * ignored. (Damage to a synced batch b whose successor b+1 is itself torn
 * cannot be told from a torn write; docs/journal-format.md says so.)
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "le.h"
#include "crc32c.h"
#include "fault.h"
#include "volperm/journal.h"

#define HDR_FIXED 80u    /* version 1; also the prefix every version has */
#define HDR_FIXED_V2 88u /* version 2: + the sequence */
#define HDR_FIXED_V3 92u /* version 3: + the extension area's length */
#define HDR_FIXED_READ HDR_FIXED_V3 /* what readers read before they know H */
/* Extension area tags (version 3). */
#define JX_NS_UID 1u
#define JX_NS_GID 2u
#define JX_USERNS_SPEC 3u
#define JX_USERNS_UID 4u
#define JX_USERNS_GID 5u
#define JX_CRITICAL 0x80000000u
#define HDR_MAX (16u << 20)
#define ENTRY_FIXED 76u
#define WINDOW (1u << 20)

const char *vp_jstate_name(enum vp_jstate s)
{
	switch (s) {
	case VP_JSTATE_ACTIVE: return "active";
	case VP_JSTATE_COMMITTED: return "committed";
	case VP_JSTATE_ROLLING_BACK: return "rolling-back";
	case VP_JSTATE_ROLLED_BACK: return "rolled-back";
	}
	return "unknown";
}

void vp_jheader_free(struct vp_jheader *h)
{
	if (!h)
		return;
	free(h->host);
	free(h->root);
	free(h->policy);
	h->host = h->root = h->policy = NULL;
	vp_userns_free(&h->ns);
	vp_userns_free(&h->userns);
}

/* ---- record codec ---- */

size_t vp_jrec_entry_size(const struct vp_jentry *e)
{
	return VP_REC_FRAME + ENTRY_FIXED + e->path_len + e->acl_access_len +
	       e->acl_default_len + e->caps_len + e->new_acl_access_len + e->new_acl_default_len;
}

static void frame(uint8_t *buf, size_t len, int type, uint64_t seq, uint32_t batch)
{
	vp_put32(buf, VP_REC_MAGIC);
	vp_put32(buf + 4, (uint32_t)len);
	buf[8] = (uint8_t)type;
	buf[9] = buf[10] = buf[11] = 0;
	vp_put32(buf + 12, batch);
	vp_put64(buf + 16, seq);
}

static void seal(uint8_t *buf, size_t len, uint32_t seed)
{
	vp_put32(buf + len - 8, vp_crc32c(seed, buf, len - 8));
	vp_put32(buf + len - 4, (uint32_t)len);
}

size_t vp_jrec_encode_entry(uint8_t *buf, const struct vp_jentry *e, uint32_t seed)
{
	size_t len = vp_jrec_entry_size(e);
	uint8_t *p = buf + 24;

	frame(buf, len, VP_REC_ENTRY, e->seq, e->batch);
	vp_put64(p, e->dev);
	vp_put64(p + 8, e->ino);
	vp_put32(p + 16, e->uid);
	vp_put32(p + 20, e->gid);
	vp_put32(p + 24, e->mode);
	vp_put32(p + 28, e->new_uid);
	vp_put32(p + 32, e->new_gid);
	vp_put32(p + 36, e->new_mode);
	vp_put32(p + 40, e->changes);
	vp_put32(p + 44, e->path_len);
	vp_put32(p + 48, e->acl_access_len);
	vp_put32(p + 52, e->acl_default_len);
	vp_put32(p + 56, e->caps_len);
	vp_put32(p + 60, e->new_acl_access_len);
	vp_put32(p + 64, e->new_acl_default_len);
	vp_put64(p + 68, e->btime);
	p += ENTRY_FIXED;
	memcpy(p, e->path, e->path_len);
	p += e->path_len;
	if (e->acl_access_len)
		memcpy(p, e->acl_access, e->acl_access_len);
	p += e->acl_access_len;
	if (e->acl_default_len)
		memcpy(p, e->acl_default, e->acl_default_len);
	p += e->acl_default_len;
	if (e->caps_len)
		memcpy(p, e->caps, e->caps_len);
	p += e->caps_len;
	if (e->new_acl_access_len)
		memcpy(p, e->new_acl_access, e->new_acl_access_len);
	p += e->new_acl_access_len;
	if (e->new_acl_default_len)
		memcpy(p, e->new_acl_default, e->new_acl_default_len);
	seal(buf, len, seed);
	return len;
}

size_t vp_jrec_encode_mark(uint8_t *buf, enum vp_rec_type t, uint64_t seq, uint32_t batch,
                           uint32_t seed)
{
	frame(buf, VP_REC_FRAME, (int)t, seq, batch);
	seal(buf, VP_REC_FRAME, seed);
	return VP_REC_FRAME;
}

/* A path from a journal is used to find an entry below the root. Even with
 * RESOLVE_BENEATH at use, refuse anything that is not a plain relative path
 * so a forged journal is rejected early and loudly. */
bool vp_jpath_ok(const char *p, size_t n)
{
	if (n == 0 || memchr(p, 0, n) || p[0] == '/')
		return false;
	if (n == 1 && p[0] == '.')
		return true;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		if (j == i || (j - i == 1 && p[i] == '.') ||
		    (j - i == 2 && p[i] == '.' && p[i + 1] == '.'))
			return false;
		i = j + 1;
		if (j + 1 == n)
			return false; /* trailing slash */
	}
	return true;
}

long vp_jrec_decode(const uint8_t *buf, size_t avail, uint32_t seed, int *type,
                    struct vp_jentry *e)
{
	uint32_t len;

	if (avail < 8)
		return -ENODATA;
	if (vp_get32(buf) != VP_REC_MAGIC)
		return -EBADMSG;
	len = vp_get32(buf + 4);
	if (len < VP_REC_FRAME || len > VP_REC_MAX)
		return -EBADMSG;
	if (avail < len)
		return -ENODATA;
	if (vp_crc32c(seed, buf, len - 8) != vp_get32(buf + len - 8) || vp_get32(buf + len - 4) != len)
		return -EBADMSG;
	if (buf[9] || buf[10] || buf[11])
		return -EBADMSG;
	*type = buf[8];
	switch (*type) {
	case VP_REC_COMMIT:
	case VP_REC_ROLLBACK_BEGIN:
	case VP_REC_ROLLED_BACK:
		if (len != VP_REC_FRAME)
			return -EBADMSG;
		if (e) {
			memset(e, 0, sizeof(*e));
			e->batch = vp_get32(buf + 12);
			e->seq = vp_get64(buf + 16);
		}
		return len;
	case VP_REC_ENTRY:
		break;
	default:
		return -EBADMSG;
	}
	if (len < VP_REC_FRAME + ENTRY_FIXED)
		return -EBADMSG;
	const uint8_t *p = buf + 24;
	struct vp_jentry d = {
		.batch = vp_get32(buf + 12),
		.seq = vp_get64(buf + 16),
		.dev = vp_get64(p),
		.ino = vp_get64(p + 8),
		.uid = vp_get32(p + 16),
		.gid = vp_get32(p + 20),
		.mode = vp_get32(p + 24),
		.new_uid = vp_get32(p + 28),
		.new_gid = vp_get32(p + 32),
		.new_mode = vp_get32(p + 36),
		.changes = vp_get32(p + 40),
		.path_len = vp_get32(p + 44),
		.acl_access_len = vp_get32(p + 48),
		.acl_default_len = vp_get32(p + 52),
		.caps_len = vp_get32(p + 56),
		.new_acl_access_len = vp_get32(p + 60),
		.new_acl_default_len = vp_get32(p + 64),
		.btime = vp_get64(p + 68),
	};
	uint64_t var = (uint64_t)d.path_len + d.acl_access_len + d.acl_default_len + d.caps_len +
	               d.new_acl_access_len + d.new_acl_default_len;
	if (VP_REC_FRAME + ENTRY_FIXED + var != len)
		return -EBADMSG;
	p += ENTRY_FIXED;
	d.path = (const char *)p;
	p += d.path_len;
	d.acl_access = d.acl_access_len ? p : NULL;
	p += d.acl_access_len;
	d.acl_default = d.acl_default_len ? p : NULL;
	p += d.acl_default_len;
	d.caps = d.caps_len ? p : NULL;
	p += d.caps_len;
	d.new_acl_access = d.new_acl_access_len ? p : NULL;
	p += d.new_acl_access_len;
	d.new_acl_default = d.new_acl_default_len ? p : NULL;
	if (!vp_jpath_ok(d.path, d.path_len))
		return -EBADMSG;
	if (e)
		*e = d;
	return len;
}

/* ---- header codec ---- */

/* Where a header's variable part starts: after the sequence field from
 * version 2 on, after the extension length from version 3 on. (An unknown
 * version is refused by the decoder; its length is still checked as
 * version 2's.) */
static uint32_t hdr_fixed(const uint8_t *fixed)
{
	uint32_t v = vp_get32(fixed + 8);
	return v == 1 ? HDR_FIXED : v == VP_JOURNAL_VERSION_EXT ? HDR_FIXED_V3 : HDR_FIXED_V2;
}

/* The header length must equal what its own length fields add up to;
 * checked before anything trusts it, so a flipped length byte reads as
 * corruption and not as a header that was never completely written.
 * fixed holds avail >= HDR_FIXED bytes. 1 consistent, 0 not, -ENODATA: a
 * version 3 header cut inside its fixed part (the file is shorter than
 * any version 3 header: it was never completely written). */
static int header_len_consistent(const uint8_t *fixed, size_t avail)
{
	uint32_t f = hdr_fixed(fixed);
	if (memcmp(fixed, VP_JOURNAL_MAGIC, 8) != 0)
		return 0;
	if (avail < f)
		return -ENODATA;
	uint64_t want = (uint64_t)f + vp_get32(fixed + 68) + vp_get32(fixed + 72) +
	                vp_get32(fixed + 76) + 4;
	if (f == HDR_FIXED_V3)
		want += vp_get32(fixed + 88);
	return want == vp_get32(fixed + 12) && want <= HDR_MAX;
}

bool vp_jmap_identity(const struct vp_userns *m)
{
	if (vp_userns_empty(m))
		return true;
	return m->n_uid == 1 && m->n_gid == 1 && m->uid[0].c == 0 && m->uid[0].h == 0 &&
	       m->uid[0].n == 4294967295u && m->gid[0].c == 0 && m->gid[0].h == 0 &&
	       m->gid[0].n == 4294967295u;
}

static bool ranges_equal(const struct vp_idrange *a, size_t na, const struct vp_idrange *b,
                         size_t nb)
{
	if (na != nb)
		return false;
	/* No two ranges of a map overlap, so equal counts and every range of a
	 * found in b is set equality. n <= 340: quadratic is fine. */
	for (size_t i = 0; i < na; i++) {
		size_t k = 0;
		while (k < nb && memcmp(&a[i], &b[k], sizeof(a[i])) != 0)
			k++;
		if (k == nb)
			return false;
	}
	return true;
}

bool vp_jmap_equal(const struct vp_userns *a, const struct vp_userns *b)
{
	if (vp_jmap_identity(a) || vp_jmap_identity(b))
		return vp_jmap_identity(a) && vp_jmap_identity(b);
	return ranges_equal(a->uid, a->n_uid, b->uid, b->n_uid) &&
	       ranges_equal(a->gid, a->n_gid, b->gid, b->n_gid);
}

static int copy_map(struct vp_userns *dst, const struct vp_userns *src)
{
	struct vp_userns t = VP_USERNS_INIT;
	int r = 0;

	for (size_t i = 0; !r && i < src->n_uid; i++)
		r = vp_userns_add(&t, false, src->uid[i].c, src->uid[i].h, src->uid[i].n);
	for (size_t i = 0; !r && i < src->n_gid; i++)
		r = vp_userns_add(&t, true, src->gid[i].c, src->gid[i].h, src->gid[i].n);
	if (!r && src->spec && !(t.spec = strdup(src->spec)))
		r = -ENOMEM;
	if (r < 0) {
		vp_userns_free(&t);
		return r;
	}
	vp_userns_free(dst);
	*dst = t;
	return 0;
}

int vp_jheader_set_userns(struct vp_jheader *h, const struct vp_userns *userns)
{
	struct vp_userns self = VP_USERNS_INIT;
	int r;

	/* /proc unreadable (not mounted in a minimal container): nothing is
	 * recorded, and the journal reads as written in the initial namespace,
	 * as every journal before version 3 does (docs/journal-format.md). */
	r = vp_userns_self(&self);
	if (r == -ENOMEM)
		return r;
	if (r == 0 && !vp_jmap_identity(&self)) {
		vp_userns_free(&h->ns);
		h->ns = self;
	} else {
		vp_userns_free(&self);
	}
	if (userns && !vp_userns_empty(userns))
		return copy_map(&h->userns, userns);
	return 0;
}

int vp_jheader_ns_here(const struct vp_jheader *h, struct vp_userns *here)
{
	struct vp_userns cur = VP_USERNS_INIT;
	int r = vp_userns_self(&cur);

	if (r < 0)
		return r;
	r = vp_jmap_equal(&h->ns, &cur);
	if (here)
		*here = cur;
	else
		vp_userns_free(&cur);
	return r;
}

static size_t ranges_size(size_t n)
{
	return n ? 8 + 12 * n : 0;
}

/* The extension area's length for h (0: none, version 2). */
static size_t ext_size(const struct vp_jheader *h)
{
	size_t n = ranges_size(h->ns.n_uid) + ranges_size(h->ns.n_gid);
	if (!vp_userns_empty(&h->userns))
		n += ranges_size(h->userns.n_uid) + ranges_size(h->userns.n_gid) + 8 +
		     (h->userns.spec ? strlen(h->userns.spec) : 0);
	return n;
}

static uint8_t *put_ranges(uint8_t *b, uint32_t tag, const struct vp_idrange *v, size_t n)
{
	if (!n)
		return b;
	vp_put32(b, tag);
	vp_put32(b + 4, (uint32_t)(12 * n));
	b += 8;
	for (size_t i = 0; i < n; i++, b += 12) {
		vp_put32(b, v[i].c);
		vp_put32(b + 4, v[i].h);
		vp_put32(b + 8, v[i].n);
	}
	return b;
}

static void put_ext(uint8_t *b, const struct vp_jheader *h)
{
	b = put_ranges(b, JX_NS_UID, h->ns.uid, h->ns.n_uid);
	b = put_ranges(b, JX_NS_GID, h->ns.gid, h->ns.n_gid);
	if (!vp_userns_empty(&h->userns)) {
		size_t sl = h->userns.spec ? strlen(h->userns.spec) : 0;
		vp_put32(b, JX_USERNS_SPEC);
		vp_put32(b + 4, (uint32_t)sl);
		if (sl)
			memcpy(b + 8, h->userns.spec, sl);
		b += 8 + sl;
		b = put_ranges(b, JX_USERNS_UID, h->userns.uid, h->userns.n_uid);
		(void)put_ranges(b, JX_USERNS_GID, h->userns.gid, h->userns.n_gid);
	}
}

int vp_jheader_encode(const struct vp_jheader *h, uint8_t **ret, size_t *ret_len)
{
	size_t hl = h->host ? strlen(h->host) : 0, rl = strlen(h->root), pl = h->policy_len;
	size_t xl = ext_size(h);
	size_t fixed = xl ? HDR_FIXED_V3 : HDR_FIXED_V2;
	size_t len = fixed + hl + rl + pl + xl + 4;
	uint8_t *b;

	/* Each side of a map comes with the other (the decoder insists). */
	if ((!h->ns.n_uid != !h->ns.n_gid) ||
	    (!vp_userns_empty(&h->userns) && (!h->userns.n_uid || !h->userns.n_gid)) ||
	    (h->userns.spec && memchr(h->userns.spec, 0, strlen(h->userns.spec))))
		return -EINVAL;
	if (len > HDR_MAX || hl > HDR_MAX || rl > HDR_MAX || pl > HDR_MAX)
		return -E2BIG;
	b = calloc(1, len);
	if (!b)
		return -ENOMEM;
	memcpy(b, VP_JOURNAL_MAGIC, 8);
	vp_put32(b + 8, xl ? VP_JOURNAL_VERSION_EXT : VP_JOURNAL_VERSION);
	vp_put32(b + 12, (uint32_t)len);
	vp_put64(b + 16, h->created_ns);
	vp_put64(b + 24, h->root_dev);
	vp_put64(b + 32, h->root_ino);
	vp_put64(b + 40, h->fsid);
	memcpy(b + 48, h->nonce, 16);
	vp_put32(b + 64, h->flags);
	vp_put32(b + 68, (uint32_t)hl);
	vp_put32(b + 72, (uint32_t)rl);
	vp_put32(b + 76, (uint32_t)pl);
	vp_put64(b + 80, h->seq);
	if (xl)
		vp_put32(b + 88, (uint32_t)xl);
	if (hl)
		memcpy(b + fixed, h->host, hl);
	memcpy(b + fixed + hl, h->root, rl);
	if (pl)
		memcpy(b + fixed + hl + rl, h->policy, pl);
	if (xl)
		put_ext(b + fixed + hl + rl + pl, h);
	vp_put32(b + len - 4, vp_crc32c(0, b, len - 4));
	*ret = b;
	*ret_len = len;
	return 0;
}

static char *dup_bytes(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = 0;
	}
	return s;
}

/* One map side from an item's value: k ranges, 1 <= k <= 340, each as
 * vp_userns_add() accepts it (count >= 1, in bounds, no overlap). */
static int get_ranges(struct vp_userns *u, bool gid, const uint8_t *v, uint32_t n)
{
	if (n == 0 || n % 12 || n / 12 > VP_USERNS_MAX_RANGES)
		return -EBADMSG;
	for (uint32_t off = 0; off < n; off += 12) {
		int r = vp_userns_add(u, gid, vp_get32(v + off), vp_get32(v + off + 4),
		                      vp_get32(v + off + 8));
		if (r < 0)
			return r == -ENOMEM ? r : -EBADMSG;
	}
	return 0;
}

static int get_ext(struct vp_jheader *h, const uint8_t *b, uint32_t xl)
{
	uint32_t off = 0, last = 0;
	bool spec = false;
	int r;

	while (off < xl) {
		if (xl - off < 8)
			return -EBADMSG;
		uint32_t tag = vp_get32(b + off), n = vp_get32(b + off + 4);
		const uint8_t *v = b + off + 8;
		if (n > xl - off - 8 || tag <= last)
			return -EBADMSG; /* past the area; repeated or out of order */
		last = tag;
		switch (tag) {
		case JX_NS_UID: r = get_ranges(&h->ns, false, v, n); break;
		case JX_NS_GID: r = get_ranges(&h->ns, true, v, n); break;
		case JX_USERNS_UID: r = get_ranges(&h->userns, false, v, n); break;
		case JX_USERNS_GID: r = get_ranges(&h->userns, true, v, n); break;
		case JX_USERNS_SPEC:
			spec = true;
			r = memchr(v, 0, n) ? -EBADMSG : 0;
			if (!r && n && !(h->userns.spec = dup_bytes(v, n)))
				r = -ENOMEM;
			break;
		default:
			r = tag & JX_CRITICAL ? -EPROTO : 0;
		}
		if (r < 0)
			return r;
		off += 8 + n;
	}
	if (!h->ns.n_uid != !h->ns.n_gid || !h->userns.n_uid != !h->userns.n_gid ||
	    spec != (h->userns.n_uid != 0))
		return -EBADMSG;
	/* Version 3 is written only when there is something to say. */
	return vp_userns_empty(&h->ns) && vp_userns_empty(&h->userns) ? -EBADMSG : 0;
}

int vp_jheader_decode(const uint8_t *buf, size_t avail, struct vp_jheader *ret, size_t *hlen)
{
	struct vp_jheader h = { 0 };
	uint32_t len, hl, rl, pl, xl = 0;
	int c, e;

	if (avail < HDR_FIXED)
		return -ENODATA;
	c = header_len_consistent(buf, avail);
	if (c <= 0)
		return c < 0 ? c : -EBADMSG;
	len = vp_get32(buf + 12);
	if (avail < len)
		return -ENODATA;
	if (vp_crc32c(0, buf, len - 4) != vp_get32(buf + len - 4))
		return -EBADMSG;
	h.version = vp_get32(buf + 8);
	if (h.version != 1 && h.version != VP_JOURNAL_VERSION &&
	    h.version != VP_JOURNAL_VERSION_EXT)
		return -EPROTO;
	uint32_t fixed = hdr_fixed(buf);
	hl = vp_get32(buf + 68);
	rl = vp_get32(buf + 72);
	pl = vp_get32(buf + 76);
	if (fixed == HDR_FIXED_V3)
		xl = vp_get32(buf + 88);
	if ((uint64_t)fixed + hl + rl + pl + xl + 4 != len || rl == 0)
		return -EBADMSG;
	h.seq = h.version == 1 ? 0 : vp_get64(buf + 80);
	h.created_ns = vp_get64(buf + 16);
	h.root_dev = vp_get64(buf + 24);
	h.root_ino = vp_get64(buf + 32);
	h.fsid = vp_get64(buf + 40);
	memcpy(h.nonce, buf + 48, 16);
	h.flags = vp_get32(buf + 64);
	h.host = dup_bytes(buf + fixed, hl);
	h.root = dup_bytes(buf + fixed + hl, rl);
	h.policy = dup_bytes(buf + fixed + hl + rl, pl);
	h.policy_len = pl;
	h.crc = vp_get32(buf + len - 4);
	if (!h.host || !h.root || !h.policy) {
		vp_jheader_free(&h);
		return -ENOMEM;
	}
	if (memchr(h.root, 0, rl)) {
		vp_jheader_free(&h);
		return -EBADMSG;
	}
	if (fixed == HDR_FIXED_V3 && (e = get_ext(&h, buf + fixed + hl + rl + pl, xl)) < 0) {
		vp_jheader_free(&h);
		return e;
	}
	*ret = h;
	*hlen = len;
	return 0;
}

/* ---- reader ---- */

struct vp_jreader {
	int fd;
	uint64_t size;
	struct vp_jheader h;
	uint64_t hlen;
	uint64_t valid_end;
	bool torn;
	enum vp_jstate state;
	uint64_t entries;
	struct timespec mtime;
	uint64_t last_seq;   /* of the last valid record; UINT64_MAX if none */
	uint32_t last_batch; /* of the last valid record; 0 if none */
	char err[160];
	uint8_t *buf;        /* window: file bytes [wstart, wstart + wlen) */
	size_t cap, wlen;
	uint64_t wstart;
	uint64_t pos;        /* iteration cursor */
	/* vp_jr_translate(): ids are given through these maps */
	bool xlat;
	struct vp_userns xfrom, xto;
	uint8_t *xbuf;       /* the translated ACL values of the last entry */
	size_t xcap;
	uint32_t xfail_id;
	bool xfail_gid;
};

static int read_full(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
	size_t done = 0;

	*got = 0;
	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

/* Make file bytes [off, off+need) available; returns a pointer to off, with
 * *avail bytes valid from there (may be < need at end of file). */
static int window_at(struct vp_jreader *r, uint64_t off, size_t need, const uint8_t **ret,
                     size_t *avail)
{
	if (off >= r->wstart && off + need <= r->wstart + r->wlen) {
		*ret = r->buf + (off - r->wstart);
		*avail = (size_t)(r->wstart + r->wlen - off);
		return 0;
	}
	size_t want = need > WINDOW ? need : WINDOW;
	if (want > r->cap) {
		uint8_t *nb = realloc(r->buf, want);
		if (!nb)
			return -ENOMEM;
		r->buf = nb;
		r->cap = want;
	}
	if (off + want > r->size)
		want = off < r->size ? (size_t)(r->size - off) : 0;
	size_t got;
	int e = read_full(r->fd, r->buf, want, off, &got);
	if (e < 0)
		return e;
	r->wstart = off;
	r->wlen = got;
	*ret = r->buf;
	*avail = got;
	return 0;
}

/* Is there any valid record after offset `from` that proves damage lies in
 * synced data (see TORN TAIL VS CORRUPTION)? Only run on the error path. */
static int damage_is_in_synced_data(struct vp_jreader *r, uint64_t from, uint32_t last_batch)
{
	const uint8_t magic[4] = { 0x56, 0x50, 0x52, 0x31 };

	for (uint64_t off = from + 1; off + VP_REC_FRAME <= r->size;) {
		const uint8_t *p, *hit;
		size_t avail;
		int e = window_at(r, off, VP_REC_FRAME, &p, &avail);
		if (e < 0)
			return e;
		hit = memmem(p, avail, magic, 4);
		if (!hit) {
			off += avail > 3 ? avail - 3 : 1;
			continue;
		}
		off += (uint64_t)(hit - p);
		e = window_at(r, off, VP_REC_FRAME, &p, &avail);
		if (e < 0)
			return e;
		uint32_t len = avail >= 8 ? vp_get32(p + 4) : 0;
		if (len >= VP_REC_FRAME && len <= VP_REC_MAX && off + len <= r->size) {
			e = window_at(r, off, len, &p, &avail);
			if (e < 0)
				return e;
			int type;
			struct vp_jentry d;
			if (vp_jrec_decode(p, avail, r->h.crc, &type, &d) > 0 &&
			    (type != VP_REC_ENTRY || d.batch > last_batch + 1))
				return 1;
		}
		off++;
	}
	return 0;
}

static int scan(struct vp_jreader *r)
{
	uint64_t off = r->hlen;

	r->state = VP_JSTATE_ACTIVE;
	r->entries = 0;
	r->last_seq = UINT64_MAX;
	r->last_batch = 0;
	r->torn = false;
	while (off < r->size) {
		const uint8_t *p;
		size_t avail;
		int type, e;
		struct vp_jentry d;

		e = window_at(r, off, VP_REC_FRAME + ENTRY_FIXED, &p, &avail);
		if (e < 0)
			return e;
		/* Records larger than the window: fetch the whole record. */
		if (avail >= 8 && vp_get32(p) == VP_REC_MAGIC && vp_get32(p + 4) > avail &&
		    vp_get32(p + 4) <= VP_REC_MAX && off + vp_get32(p + 4) <= r->size) {
			e = window_at(r, off, vp_get32(p + 4), &p, &avail);
			if (e < 0)
				return e;
		}
		long n = vp_jrec_decode(p, avail, r->h.crc, &type, &d);
		bool seq_bad = n > 0 && d.seq != r->last_seq + 1; /* UINT64_MAX + 1 == 0 */
		if (n < 0 || seq_bad) {
			/* -ENODATA (a record longer than what is left) is a torn
			 * tail only if nothing valid follows: a damaged length
			 * field in the middle looks just the same. */
			e = damage_is_in_synced_data(r, off, r->last_batch);
			if (e < 0)
				return e;
			if (e > 0) {
				snprintf(r->err, sizeof(r->err),
				         "corrupt record at offset %llu (checksum or format mismatch before later synced records)",
				         (unsigned long long)off);
				return -EBADMSG;
			}
			r->torn = true;
			break;
		}
		switch (type) {
		case VP_REC_ENTRY:
			if (r->state != VP_JSTATE_ACTIVE) {
				snprintf(r->err, sizeof(r->err),
				         "entry record after a %s mark at offset %llu",
				         vp_jstate_name(r->state), (unsigned long long)off);
				return -EBADMSG;
			}
			r->entries++;
			break;
		case VP_REC_COMMIT:
			r->state = VP_JSTATE_COMMITTED;
			break;
		case VP_REC_ROLLBACK_BEGIN:
			r->state = VP_JSTATE_ROLLING_BACK;
			break;
		case VP_REC_ROLLED_BACK:
			r->state = VP_JSTATE_ROLLED_BACK;
			break;
		}
		r->last_seq = d.seq;
		r->last_batch = d.batch;
		off += (uint64_t)n;
	}
	r->valid_end = off;
	return 0;
}

static int reader_open_fd(int fd, struct vp_jreader **ret)
{
	struct vp_jreader *r;
	struct stat st;
	uint8_t fixed[HDR_FIXED_READ];
	size_t got, hl;
	int e, c;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	e = read_full(fd, fixed, sizeof(fixed), 0, &got);
	if (e < 0)
		return e;
	if (got < HDR_FIXED)
		return memcmp(fixed, VP_JOURNAL_MAGIC, got < 8 ? got : 8) == 0 ? -ENODATA : -EBADMSG;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = fd;
	r->size = (uint64_t)st.st_size;
	r->mtime = st.st_mtim;
	uint32_t len = vp_get32(fixed + 12);
	c = header_len_consistent(fixed, got);
	if (c <= 0) {
		e = c < 0 ? c : -EBADMSG;
		goto fail;
	}
	if (len > r->size) {
		e = -ENODATA; /* the header was never completely written */
		goto fail;
	}
	const uint8_t *p;
	size_t avail;
	e = window_at(r, 0, len, &p, &avail);
	if (e < 0)
		goto fail;
	e = vp_jheader_decode(p, avail, &r->h, &hl);
	if (e < 0)
		goto fail;
	r->hlen = hl;
	e = scan(r);
	if (e < 0 && e != -EBADMSG)
		goto fail;
	if (e == -EBADMSG) {
		/* Keep the message: callers print vp_jr_error() with the path. */
		*ret = r;
		return -EBADMSG;
	}
	r->pos = r->hlen;
	*ret = r;
	return 0;
fail:
	vp_jheader_free(&r->h);
	free(r->buf);
	free(r);
	return e;
}

int vp_jr_open_at(int dirfd, const char *name, struct vp_jreader **ret)
{
	struct vp_jreader *r = NULL;
	/* O_NONBLOCK: a FIFO planted under a journal's name must not hang us
	 * (reader_open_fd then refuses anything but a regular file). */
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	int e;

	if (fd < 0)
		return -errno;
	e = reader_open_fd(fd, &r);
	if (e < 0 && !r) {
		close(fd);
		return e;
	}
	/* On -EBADMSG the reader is handed over too, so that the caller can
	 * print vp_jr_error(); it must not iterate it. */
	*ret = r;
	return e;
}

void vp_jr_close(struct vp_jreader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	vp_jheader_free(&r->h);
	vp_userns_free(&r->xfrom);
	vp_userns_free(&r->xto);
	free(r->xbuf);
	free(r->buf);
	free(r);
}

const struct vp_jheader *vp_jr_header(const struct vp_jreader *r) { return &r->h; }
enum vp_jstate vp_jr_state(const struct vp_jreader *r) { return r->state; }
uint64_t vp_jr_entries(const struct vp_jreader *r) { return r->entries; }
bool vp_jr_torn(const struct vp_jreader *r) { return r->torn; }
uint64_t vp_jr_valid_end(const struct vp_jreader *r) { return r->valid_end; }
int vp_jr_fd(const struct vp_jreader *r) { return r->fd; }
const char *vp_jr_error(const struct vp_jreader *r) { return r->err; }
struct timespec vp_jr_mtime(const struct vp_jreader *r) { return r->mtime; }

int vp_jr_translate(struct vp_jreader *r, const struct vp_userns *from,
                    const struct vp_userns *to)
{
	struct vp_userns f = VP_USERNS_INIT, t = VP_USERNS_INIT;
	int e;

	if ((e = copy_map(&f, from)) < 0 || (e = copy_map(&t, to)) < 0) {
		vp_userns_free(&f);
		return e;
	}
	vp_userns_free(&r->xfrom);
	vp_userns_free(&r->xto);
	r->xfrom = f;
	r->xto = t;
	r->xlat = !vp_jmap_identity(&f) || !vp_jmap_identity(&t);
	return 0;
}

bool vp_jr_translating(const struct vp_jreader *r)
{
	return r->xlat;
}

void vp_jr_xlat_fail(const struct vp_jreader *r, uint32_t *id, bool *gid)
{
	*id = r->xfail_id;
	*gid = r->xfail_gid;
}

/* One id from the journal's namespace to the target's, through the host
 * (the namespace both maps' outside ids are in). */
static int xlat_id(struct vp_jreader *r, bool gid, uint32_t *id)
{
	uint32_t host = *id, out;

	if (!vp_jmap_identity(&r->xfrom) && vp_userns_to_host(&r->xfrom, gid, *id, &host) < 0)
		goto fail;
	out = host;
	if (!vp_jmap_identity(&r->xto) && vp_userns_to_container(&r->xto, gid, host, &out) < 0)
		goto fail;
	*id = out;
	return 0;
fail:
	r->xfail_id = *id;
	r->xfail_gid = gid;
	return -ERANGE;
}

/* Copy an ACL xattr value (le32 version, then le16 tag, le16 perm, le32
 * id) to dst with the ids of its named user (2) and group (8) entries
 * translated. A value that is not well formed is copied as it is: export
 * reports it, rollback compares it byte for byte. */
static int xlat_acl(struct vp_jreader *r, uint8_t *dst, const void *src, uint32_t len)
{
	memcpy(dst, src, len);
	if (len < 4 || (len - 4) % 8)
		return 0;
	for (uint32_t off = 4; off < len; off += 8) {
		unsigned tag = (unsigned)dst[off] | (unsigned)dst[off + 1] << 8;
		uint32_t id = vp_get32(dst + off + 4);
		if (tag != 2 && tag != 8)
			continue;
		if (xlat_id(r, tag == 8, &id) < 0)
			return -ERANGE;
		vp_put32(dst + off + 4, id);
	}
	return 0;
}

static int xlat_entry(struct vp_jreader *r, struct vp_jentry *e)
{
	size_t need = (size_t)e->acl_access_len + e->acl_default_len + e->new_acl_access_len +
	              e->new_acl_default_len;
	uint8_t *p;

	if (xlat_id(r, false, &e->uid) < 0 || xlat_id(r, true, &e->gid) < 0 ||
	    xlat_id(r, false, &e->new_uid) < 0 || xlat_id(r, true, &e->new_gid) < 0)
		return -ERANGE;
	if (need > r->xcap) {
		uint8_t *nb = realloc(r->xbuf, need);
		if (!nb)
			return -ENOMEM;
		r->xbuf = nb;
		r->xcap = need;
	}
	p = r->xbuf;
	/* The entry's pointers borrow from the window: point them at our
	 * translated copies instead (valid until the next read, as before). */
	const void **v[4] = { &e->acl_access, &e->acl_default, &e->new_acl_access,
	                      &e->new_acl_default };
	uint32_t l[4] = { e->acl_access_len, e->acl_default_len, e->new_acl_access_len,
	                  e->new_acl_default_len };
	for (int i = 0; i < 4; i++) {
		if (!l[i])
			continue;
		if (xlat_acl(r, p, *v[i], l[i]) < 0)
			return -ERANGE;
		*v[i] = p;
		p += l[i];
	}
	return 0;
}

void vp_jr_rewind(struct vp_jreader *r)
{
	r->pos = r->hlen;
}

void vp_jr_seek_end(struct vp_jreader *r)
{
	r->pos = r->valid_end;
}

int vp_jr_next(struct vp_jreader *r, struct vp_jentry *e)
{
	while (r->pos < r->valid_end) {
		const uint8_t *p;
		size_t avail;
		int type, err;

		err = window_at(r, r->pos, VP_REC_FRAME, &p, &avail);
		if (err < 0)
			return err;
		if (avail < 8)
			return -EIO;
		err = window_at(r, r->pos, vp_get32(p + 4), &p, &avail);
		if (err < 0)
			return err;
		long n = vp_jrec_decode(p, avail, r->h.crc, &type, e);
		if (n < 0)
			return -EIO; /* validated at open: the file changed under us */
		r->pos += (uint64_t)n;
		if (type == VP_REC_ENTRY)
			return r->xlat ? (err = xlat_entry(r, e)) < 0 ? err : 1 : 1;
	}
	return 0;
}

int vp_jr_prev(struct vp_jreader *r, struct vp_jentry *e)
{
	while (r->pos > r->hlen) {
		const uint8_t *p;
		size_t avail;
		int type, err;
		uint32_t len;

		if (r->pos - r->hlen < VP_REC_FRAME)
			return -EIO;
		/* Read backwards a window at a time: the window ends at pos. */
		if (!(r->pos - 4 >= r->wstart && r->pos <= r->wstart + r->wlen)) {
			uint64_t start = r->pos > WINDOW + r->hlen ? r->pos - WINDOW : r->hlen;
			err = window_at(r, start, (size_t)(r->pos - start), &p, &avail);
			if (err < 0)
				return err;
		}
		len = vp_get32(r->buf + (r->pos - 4 - r->wstart));
		if (len < VP_REC_FRAME || len > r->pos - r->hlen)
			return -EIO;
		if (r->pos - len < r->wstart) {
			err = window_at(r, r->pos - len, len, &p, &avail);
			if (err < 0)
				return err;
		}
		p = r->buf + (r->pos - len - r->wstart);
		long n = vp_jrec_decode(p, len, r->h.crc, &type, e);
		if (n != (long)len)
			return -EIO;
		r->pos -= len;
		if (type == VP_REC_ENTRY)
			return r->xlat ? (err = xlat_entry(r, e)) < 0 ? err : 1 : 1;
	}
	return 0;
}

/* ---- writer ---- */

/* Several engine workers share one writer. Entries go into one buffer (the
 * batch being filled) under `mu`; vp_jw_sync() makes a batch durable. Only
 * one batch is ever in flight: the thread that flushes (the leader) takes
 * the whole buffer as batch k, and batch k+1 starts filling while k is
 * written and fdatasync()ed; k+1 is written only after k is durable (the
 * torn-tail rule above). Threads that need a batch that is being flushed
 * (the followers) wait for it: one fdatasync serves all of them (group
 * commit).
 *
 * WRITER PHASES (as SQLite's pager.c keeps eState and checks every other
 * field against it in assert_pager_state(), jw_state_ok() below checks the
 * fields against the phase at every entry point and transition):
 *
 *   IDLE      nothing in flight. Batches 1..synced_batch are durable;
 *             batch = synced_batch + 1 is filling (pending entries, maybe 0).
 *   FLUSHING  the leader writes and syncs batch synced_batch + 1 (inflight
 *             entries) without holding `mu`; batch = synced_batch + 2 fills
 *             meanwhile. Only the leader touches the file and `off`.
 *   FAILED    batch synced_batch + 1 could not be made durable (`failed`):
 *             its inflight entries are lost, nothing is added and every sync
 *             fails with that error until vp_jw_discard() (back to IDLE).
 *
 *   IDLE --sync--> FLUSHING --ok--> IDLE
 *                           --error--> FAILED --discard--> IDLE
 *   IDLE --mark--> IDLE (the record is written and synced under `mu`)
 *
 * Counters, in every phase: seq = synced_seq + inflight + pending (every
 * sequence number handed out is durable, in flight or lost, or buffered),
 * and entries <= synced_seq. Batch numbers are compared modulo 2^32: the
 * numbering of a reopened journal goes on from whatever its last record says.
 *
 * The journal's own state (ACTIVE, COMMITTED, ROLLING_BACK, ROLLED_BACK;
 * invariant 4) is `jstate`: that of the journal at create/open, then of the
 * last mark written. The writer does not refuse marks out of order: the
 * state at open comes from the disk, and rollback --force of a rolled-back
 * journal writes ROLLBACK_BEGIN again on purpose. */
enum jw_phase {
	JW_IDLE = 0,
	JW_FLUSHING,
	JW_FAILED,
};

struct vp_jwriter {
	int fd;
	struct vp_jheader h;   /* owned copy */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum jw_phase phase;
	pthread_t leader;      /* FLUSHING: the thread writing the batch */
	int failed;            /* FAILED: -errno of the lost batch */
	enum vp_jstate jstate;
	uint64_t off;          /* end of the last synced record */
	uint64_t seq;          /* next sequence number */
	uint64_t synced_seq;   /* next sequence number after the synced records */
	uint32_t batch;        /* number of the batch being buffered */
	uint32_t synced_batch; /* the last durable batch (0: none) */
	uint64_t entries;      /* durable entry records */
	size_t batch_max;
	size_t pending;        /* entries buffered in `buf` (batch `batch`) */
	size_t inflight;       /* FLUSHING: entries being written; FAILED: lost */
	uint8_t *buf, *spare;
	size_t len, cap, spare_cap;
};

/* Is batch a durable already (or older than the last durable one)? */
static bool batch_durable(const struct vp_jwriter *w, uint32_t a)
{
	return (int32_t)(a - w->synced_batch) <= 0;
}

#ifndef NDEBUG
/* The writer's invariants, with `mu` held (or before the writer is shared).
 * Asserts each one, so that a failure names the line; returns true so that
 * callers write assert(jw_state_ok(w)), which NDEBUG removes whole. */
static bool jw_state_ok(const struct vp_jwriter *w)
{
	uint32_t ahead = w->batch - w->synced_batch;

	assert(w->fd >= 0);
	assert(w->batch_max >= 1);
	assert(w->jstate == VP_JSTATE_ACTIVE || w->jstate == VP_JSTATE_COMMITTED ||
	       w->jstate == VP_JSTATE_ROLLING_BACK || w->jstate == VP_JSTATE_ROLLED_BACK);
	/* the buffer of the filling batch, and the spare one */
	assert(w->len <= w->cap);
	assert((w->buf == NULL) == (w->cap == 0));
	assert((w->spare == NULL) == (w->spare_cap == 0));
	assert((w->len == 0) == (w->pending == 0));
	assert(w->len >= w->pending * (VP_REC_FRAME + ENTRY_FIXED));
	/* pending vs durable */
	assert(w->synced_seq <= w->seq);
	assert(w->seq - w->synced_seq == (uint64_t)w->inflight + w->pending);
	assert(w->entries <= w->synced_seq);
	switch (w->phase) {
	case JW_IDLE:
		assert(w->failed == 0);
		assert(w->inflight == 0);
		assert(ahead == 1);
		assert(w->off >= HDR_FIXED);
		break;
	case JW_FLUSHING:
		/* `off` is the leader's while it writes: not read here */
		assert(w->failed == 0);
		assert(ahead == 2);
		break;
	case JW_FAILED:
		assert(w->failed < 0);
		assert(ahead == 2);
		assert(w->off >= HDR_FIXED);
		break;
	default:
		assert(!"unknown writer phase");
	}
	return true;
}
#endif

static struct vp_jwriter *writer_new(void)
{
	struct vp_jwriter *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	if (pthread_mutex_init(&w->mu, NULL) != 0) {
		free(w);
		return NULL;
	}
	if (pthread_cond_init(&w->cv, NULL) != 0) {
		pthread_mutex_destroy(&w->mu);
		free(w);
		return NULL;
	}
	w->fd = -1;
	w->phase = JW_IDLE;
	w->jstate = VP_JSTATE_ACTIVE;
	return w;
}

static int write_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

static int copy_header(struct vp_jheader *dst, const struct vp_jheader *src)
{
	*dst = *src;
	dst->ns = (struct vp_userns)VP_USERNS_INIT;
	dst->userns = (struct vp_userns)VP_USERNS_INIT;
	dst->host = strdup(src->host ? src->host : "");
	dst->root = strdup(src->root);
	dst->policy = malloc(src->policy_len + 1);
	if (!dst->host || !dst->root || !dst->policy || copy_map(&dst->ns, &src->ns) < 0 ||
	    copy_map(&dst->userns, &src->userns) < 0) {
		vp_jheader_free(dst);
		return -ENOMEM;
	}
	if (src->policy_len)
		memcpy(dst->policy, src->policy, src->policy_len);
	dst->policy[src->policy_len] = 0;
	return 0;
}

static int reserve_tail(struct vp_jwriter *w);

int vp_jw_create(int dirfd, const char *name, struct vp_jheader *h, size_t batch_max,
                 struct vp_jwriter **ret)
{
	struct vp_jwriter *w;
	uint8_t *hb = NULL;
	size_t hl;
	int fd, e;

	e = vp_jheader_encode(h, &hb, &hl);
	if (e < 0)
		return e;
	h->crc = vp_get32(hb + hl - 4);
	fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		e = -errno;
		free(hb);
		return e;
	}
	/* Lock before the header exists, so nobody can ever see this journal
	 * active and unlocked (= hot) while we are alive. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fchmod(fd, 0600) < 0) {
		e = -errno;
		goto fail_unlink;
	}
	e = write_full(fd, hb, hl, 0);
	vp_fault_point("journal-header-write");
	if (e == 0 && fsync(fd) < 0)
		e = -errno;
	vp_fault_point("journal-header-fsync");
	/* The new name must be durable too, or a crash could lose the file
	 * while the changes it describes survive. */
	if (e == 0 && fsync(dirfd) < 0)
		e = -errno;
	vp_fault_point("journal-dir-fsync");
	if (e < 0)
		goto fail_unlink;
	w = writer_new();
	if (!w || copy_header(&w->h, h) < 0) {
		vp_jw_close(w);
		e = -ENOMEM;
		goto fail_unlink;
	}
	free(hb);
	w->fd = fd;
	w->off = hl;
	(void)reserve_tail(w);
	w->seq = w->synced_seq = 0;
	w->batch = 1;
	w->batch_max = batch_max ? batch_max : 1;
	assert(jw_state_ok(w) && w->entries == 0);
	*ret = w;
	return 0;
fail_unlink:
	(void)unlinkat(dirfd, name, 0);
	close(fd);
	free(hb);
	return e;
}

int vp_jw_open(int dirfd, const char *name, size_t batch_max, struct vp_jwriter **ret)
{
	struct vp_jreader *r = NULL;
	struct vp_jwriter *w;
	int fd, e;

	struct stat st;
	fd = openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	int rfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (rfd < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	e = reader_open_fd(rfd, &r);
	if (e < 0) {
		if (r)
			vp_jr_close(r);
		else
			close(rfd);
		close(fd);
		return e;
	}
	w = writer_new();
	if (!w || copy_header(&w->h, &r->h) < 0) {
		vp_jw_close(w);
		vp_jr_close(r);
		close(fd);
		return -ENOMEM;
	}
	w->fd = fd;
	w->off = r->valid_end;
	w->seq = w->synced_seq = r->last_seq + 1;
	w->batch = r->last_batch + 1;
	w->synced_batch = r->last_batch;
	w->entries = r->entries;
	w->jstate = r->state;
	w->batch_max = batch_max ? batch_max : 1;
	/* Cut a torn tail so that new records follow valid ones directly. */
	if (r->valid_end < r->size) {
		if (ftruncate(fd, (off_t)r->valid_end) < 0 || fsync(fd) < 0)
			e = -errno;
	}
	vp_jr_close(r);
	if (e < 0) {
		vp_jw_close(w);
		return e;
	}
	assert(jw_state_ok(w));
	*ret = w;
	return 0;
}

int vp_jw_add(struct vp_jwriter *w, const struct vp_jentry *e, uint32_t *ticket)
{
	struct vp_jentry c = *e;
	size_t need;
	int r = 0;

	assert(ticket);
	pthread_mutex_lock(&w->mu);
	assert(jw_state_ok(w));
	if (w->phase == JW_FAILED) {
		r = w->failed;
		goto out;
	}
	c.seq = w->seq;
	c.batch = w->batch;
	need = vp_jrec_entry_size(&c);
	if (need > VP_REC_MAX) {
		r = -E2BIG;
		goto out;
	}
	if (w->len + need > w->cap) {
		size_t ncap = w->cap ? w->cap : 64 * 1024;
		while (ncap < w->len + need)
			ncap *= 2;
		uint8_t *nb = realloc(w->buf, ncap);
		if (!nb) {
			r = -ENOMEM;
			goto out;
		}
		w->buf = nb;
		w->cap = ncap;
	}
	w->len += vp_jrec_encode_entry(w->buf + w->len, &c, w->h.crc);
	w->seq++;
	w->pending++;
	*ticket = w->batch;
	assert(jw_state_ok(w));
out:
	pthread_mutex_unlock(&w->mu);
	return r;
}

/* Unlocked reads: for the single-threaded callers (tests, rollback). */
bool vp_jw_full(const struct vp_jwriter *w) { return w->pending >= w->batch_max; }
size_t vp_jw_pending(const struct vp_jwriter *w) { return w->pending; }
const struct vp_jheader *vp_jw_header(const struct vp_jwriter *w) { return &w->h; }
uint64_t vp_jw_entries(const struct vp_jwriter *w) { return w->entries; }
enum vp_jstate vp_jw_state(const struct vp_jwriter *w) { return w->jstate; }

/* Keep one page allocated past the end (FALLOC_FL_KEEP_SIZE) so that the
 * rollback marks still fit when the journal's filesystem has filled up: an
 * apply that dies of ENOSPC must be able to say it rolled back. */
static int reserve_tail(struct vp_jwriter *w)
{
	if (fallocate(w->fd, FALLOC_FL_KEEP_SIZE, (off_t)w->off, 4096) < 0)
		return errno == ENOSPC ? -ENOSPC : 0; /* no fallocate: nothing to keep */
	return 0;
}

/* Write bytes at the end and make them durable. On failure, cut what may
 * have been written partly, so the file ends with valid records only. With
 * keep_room, a batch that leaves no room for the rollback marks is taken
 * back too (its entries were not changed yet), and that is ENOSPC. */
static int append_synced(struct vp_jwriter *w, const uint8_t *buf, size_t len, bool keep_room)
{
	int e = write_full(w->fd, buf, len, w->off);

	vp_fault_point("journal-write");
	if (e == 0 && fdatasync(w->fd) < 0)
		e = -errno;
	vp_fault_point("journal-fdatasync");
	if (e == 0 && keep_room) {
		uint64_t off = w->off;
		w->off += len;
		e = reserve_tail(w);
		w->off = off;
	}
	if (e < 0) {
		if (ftruncate(w->fd, (off_t)w->off) == 0)
			(void)fdatasync(w->fd);
		(void)reserve_tail(w);
		return e;
	}
	w->off += len;
	return 0;
}

int vp_jw_sync(struct vp_jwriter *w, uint32_t ticket)
{
	int e = 0;

	pthread_mutex_lock(&w->mu);
	assert(jw_state_ok(w));
	/* A ticket comes from vp_jw_add(): never a batch that is not filling yet. */
	assert((int32_t)(ticket - w->batch) <= 0);
	for (;;) {
		if (w->phase == JW_FAILED) {
			e = w->failed;
			break;
		}
		if (batch_durable(w, ticket))
			break;
		if (w->phase == JW_FLUSHING) {
			/* A follower: its batch is the one in flight or the one
			 * filling behind it; the leader never waits for itself. */
			assert(!pthread_equal(w->leader, pthread_self()));
			pthread_cond_wait(&w->cv, &w->mu);
			assert(jw_state_ok(w));
			continue;
		}
		/* IDLE, and the batch is not durable: it is the one filling (all
		 * older ones are durable in IDLE). This thread leads. */
		assert(w->phase == JW_IDLE && ticket == w->batch);
		if (!w->pending)
			break; /* nothing was added to it (discarded): nothing to make
			        * durable, and its number stays for the next entries */
		/* Take the whole buffer as one batch; new entries go on filling
		 * the next one while it is written. */
		uint8_t *buf = w->buf;
		size_t len = w->len, n = w->pending, cap = w->cap;
		uint32_t batch = w->batch;
		w->buf = w->spare;
		w->cap = w->spare_cap;
		w->spare = NULL;
		w->spare_cap = 0;
		w->len = w->pending = 0;
		w->inflight = n;
		w->batch++;
		w->phase = JW_FLUSHING;
		w->leader = pthread_self();
		assert(jw_state_ok(w));
		pthread_mutex_unlock(&w->mu);
		e = append_synced(w, buf, len, true);
		pthread_mutex_lock(&w->mu);
		/* Nobody else ended the flush, and nothing became durable behind
		 * the leader's back. */
		assert(w->phase == JW_FLUSHING && pthread_equal(w->leader, pthread_self()));
		assert(batch == w->synced_batch + 1 && w->inflight == n);
		if (!w->spare) {
			w->spare = buf;
			w->spare_cap = cap;
		} else {
			free(buf);
		}
		if (e < 0) {
			/* Not durable, so none of it may change: the batch is gone,
			 * and every later sync fails until vp_jw_discard(). */
			w->failed = e;
			w->phase = JW_FAILED;
		} else {
			w->synced_batch = batch;
			w->entries += n;
			w->synced_seq += n;
			w->inflight = 0;
			w->phase = JW_IDLE;
		}
		assert(jw_state_ok(w));
		pthread_cond_broadcast(&w->cv);
	}
	/* Reported durable only when it is (or when its batch holds nothing). */
	assert(e < 0 || batch_durable(w, ticket) || (ticket == w->batch && !w->pending));
	pthread_mutex_unlock(&w->mu);
	return e;
}

static enum vp_jstate mark_state(enum vp_rec_type t)
{
	switch (t) {
	case VP_REC_COMMIT: return VP_JSTATE_COMMITTED;
	case VP_REC_ROLLBACK_BEGIN: return VP_JSTATE_ROLLING_BACK;
	case VP_REC_ROLLED_BACK: return VP_JSTATE_ROLLED_BACK;
	case VP_REC_ENTRY: break;
	}
	assert(!"not a mark");
	return VP_JSTATE_ACTIVE;
}

int vp_jw_mark(struct vp_jwriter *w, enum vp_rec_type t)
{
	uint8_t rec[VP_REC_FRAME];
	enum vp_jstate next = mark_state(t);
	int e;

	pthread_mutex_lock(&w->mu);
	assert(jw_state_ok(w));
	if (w->pending || w->phase != JW_IDLE) {
		pthread_mutex_unlock(&w->mu);
		return -EBUSY; /* a mark must follow synced entries only */
	}
	assert(w->seq == w->synced_seq);
	vp_jrec_encode_mark(rec, t, w->seq, w->batch, w->h.crc);
	e = append_synced(w, rec, sizeof(rec), false);
	if (e == 0) {
		w->seq++;
		w->synced_seq = w->seq;
		w->synced_batch = w->batch;
		w->batch++;
		w->jstate = next;
	}
	assert(jw_state_ok(w));
	pthread_mutex_unlock(&w->mu);
	return e;
}

void vp_jw_close(struct vp_jwriter *w)
{
	if (!w)
		return;
	/* No thread may still be in vp_jw_sync() (the engine joins them). */
	assert(w->phase != JW_FLUSHING);
	if (w->fd >= 0)
		close(w->fd);
	vp_jheader_free(&w->h);
	free(w->buf);
	free(w->spare);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* Only with no sync in flight (the engine's workers have stopped). */
void vp_jw_discard(struct vp_jwriter *w)
{
	pthread_mutex_lock(&w->mu);
	assert(jw_state_ok(w));
	assert(w->phase != JW_FLUSHING);
	w->seq = w->synced_seq;
	w->batch = w->synced_batch + 1;
	w->len = w->pending = w->inflight = 0;
	w->failed = 0;
	w->phase = JW_IDLE;
	assert(jw_state_ok(w));
	pthread_mutex_unlock(&w->mu);
}

int vp_jr_peek(int dirfd, const char *name, enum vp_jstate *state, bool *live,
               struct vp_jheader *hdr)
{
	uint8_t fixed[HDR_FIXED_READ], tail[VP_REC_FRAME];
	struct vp_jheader h;
	struct stat st;
	size_t got, hl;
	uint8_t *hb = NULL;
	int fd, e, type;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL; /* a FIFO or device planted under a journal name */
	}
	/* A writer holds LOCK_EX for its whole life: a shared lock that we can
	 * take means nobody is writing. */
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			e = -errno;
			goto out;
		}
		*live = true;
	} else {
		*live = false;
		(void)flock(fd, LOCK_UN);
	}
	if (fstat(fd, &st) < 0) {
		e = -errno;
		goto out;
	}
	e = read_full(fd, fixed, sizeof(fixed), 0, &got);
	if (e < 0)
		goto out;
	if (got < HDR_FIXED) {
		e = -ENODATA;
		goto out;
	}
	uint32_t len = vp_get32(fixed + 12);
	int c = header_len_consistent(fixed, got);
	if (c <= 0 || (uint64_t)st.st_size < len) {
		e = c == 0 ? -EBADMSG : -ENODATA;
		goto out;
	}
	hb = malloc(len);
	if (!hb) {
		e = -ENOMEM;
		goto out;
	}
	e = read_full(fd, hb, len, 0, &got);
	if (e < 0)
		goto out;
	e = vp_jheader_decode(hb, got, &h, &hl);
	if (e < 0)
		goto out;
	*state = VP_JSTATE_ACTIVE;
	if ((uint64_t)st.st_size >= hl + VP_REC_FRAME) {
		e = read_full(fd, tail, sizeof(tail), (uint64_t)st.st_size - VP_REC_FRAME, &got);
		if (e == 0 && got == VP_REC_FRAME && vp_jrec_decode(tail, got, h.crc, &type, NULL) > 0) {
			if (type == VP_REC_COMMIT)
				*state = VP_JSTATE_COMMITTED;
			else if (type == VP_REC_ROLLBACK_BEGIN)
				*state = VP_JSTATE_ROLLING_BACK;
			else if (type == VP_REC_ROLLED_BACK)
				*state = VP_JSTATE_ROLLED_BACK;
		}
	}
	if (hdr)
		*hdr = h; /* handed over */
	else
		vp_jheader_free(&h);
	e = 0;
out:
	free(hb);
	close(fd);
	return e;
}
