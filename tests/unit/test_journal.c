/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for include/volperm/journal.h and crc32c.h.
 *
 * Codec level: CRC-32C vectors; entry and mark records round-trip exactly
 * (binary paths, ACL and capability blobs); ANY single flipped byte in a
 * record is -EBADMSG (never accepted, never mistaken for a torn tail); every
 * strict prefix of a record is -ENODATA; the header round-trips and refuses
 * every flipped byte.
 *
 * (One allowance, from journal.h and docs/journal-format.md: a flipped byte
 * in a record's length field that makes the record claim more bytes than
 * the buffer holds is, to the codec, a torn tail: -ENODATA. The test checks
 * that it is exactly that case, by giving the decoder the bytes it claims.
 * The file-level tests then require that such damage followed by later
 * batches is refused, which is the property that matters.)
 *
 * File level (in a mkdtemp() directory, batch_max 4 so there are several
 * batches): create/add/sync/commit then read forward and backward; states;
 * a torn tail is ignored (one fewer entry), corruption in the middle or in
 * the header is refused; vp_jw_open appends after the valid end (cutting a
 * torn tail); the flock excludes a second writer; O_EXCL|O_NOFOLLOW, 0600.
 *
 * Group commit (the writer as apply --jobs uses it): 1, 2, 4 and 8 threads
 * add and sync concurrently, then every record is read back exactly once, in
 * order, in the batch its ticket named, and inside what had been
 * fdatasync()ed when its worker's sync returned (this binary's fdatasync()
 * watches the journal); a leader's batch held in flight while a follower
 * waits for it and the next batch fills; a failed batch is sticky until
 * discarded.
 *
 * The tests use the record codec to find record boundaries in the file, so
 * they do not depend on the byte layout beyond what journal.h promises:
 * records follow the header, the header's CRC seeds the record CRCs. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "crc32c.h"
#include "decide.h"
#include "volperm/journal.h"
#include "volperm/policy.h"

/* ---- test data ---- */

struct ent_store {
	char path[600];
	uint8_t acl_a[256], acl_d[256], caps[24];
	struct vp_jentry e;
};

/* A deterministic, varied entry i: the root ".", binary names (newline,
 * 0xff, NUL-free), empty and non-empty ACL/caps blobs. */
static void make_entry(size_t i, struct ent_store *s)
{
	memset(s, 0, sizeof *s);
	struct vp_jentry *e = &s->e;
	int n;
	if (i == 0)
		n = snprintf(s->path, sizeof s->path, ".");
	else if (i % 5 == 1)
		n = snprintf(s->path, sizeof s->path, "dir\nwith newline/\xff\xfe name-%zu", i);
	else if (i % 11 == 7)
		n = snprintf(s->path, sizeof s->path, "%0500zu", i); /* long name */
	else
		n = snprintf(s->path, sizeof s->path, "d%zu/file-%zu", i % 3, i);
	assert_true(n > 0);
	e->path = s->path;
	e->path_len = (uint32_t)n;
	e->seq = i + 1;
	e->batch = (uint32_t)(i / 4);
	e->dev = 0x0803;
	e->ino = 100000 + i;
	e->uid = 1000 + (uint32_t)i;
	e->gid = 2000 + (uint32_t)i;
	e->mode = (i % 6 == 4) ? (S_IFREG | 04755) : (i % 2 ? S_IFDIR | 02775 : S_IFREG | 0644);
	e->new_uid = 5000 + (uint32_t)i;
	e->new_gid = 6000 + (uint32_t)i;
	e->new_mode = vp_mode_after_chown(e->mode);
	e->changes = VP_CH_UID | VP_CH_GID | (e->mode != e->new_mode ? VP_CH_DROP_SUID : 0);
	if (i % 3 != 0) {
		e->acl_access_len = 28 + 8 * (uint32_t)(i % 4);
		for (uint32_t k = 0; k < e->acl_access_len; k++)
			s->acl_a[k] = (uint8_t)(k * 7 + i);
		e->acl_access = s->acl_a;
	}
	if (i % 4 == 2) {
		e->acl_default_len = 44;
		for (uint32_t k = 0; k < e->acl_default_len; k++)
			s->acl_d[k] = (uint8_t)(0xff - k - i);
		e->acl_default = s->acl_d;
	}
	if (i % 7 == 3) {
		e->caps_len = 20;
		for (uint32_t k = 0; k < e->caps_len; k++)
			s->caps[k] = (uint8_t)(k ^ 0xa5);
		e->caps = s->caps;
		e->changes |= VP_CH_DROP_CAPS;
	}
}

static void assert_blob_equal(const void *a, uint32_t alen, const void *b, uint32_t blen,
                              const char *what, size_t i)
{
	if (alen != blen)
		fail_msg("entry %zu: %s length %u, want %u", i, what, blen, alen);
	if (alen && (!b || memcmp(a, b, alen) != 0))
		fail_msg("entry %zu: %s bytes differ", i, what);
}

/* Compare everything the caller gave; seq/batch only when asked (the writer
 * may number records itself). */
static void assert_entry_equal(const struct vp_jentry *want, const struct vp_jentry *got, size_t i,
                               bool seq_batch)
{
	if (seq_batch) {
		if (want->seq != got->seq || want->batch != got->batch)
			fail_msg("entry %zu: seq/batch %llu/%u, want %llu/%u", i,
			         (unsigned long long)got->seq, got->batch,
			         (unsigned long long)want->seq, want->batch);
	}
	if (want->dev != got->dev || want->ino != got->ino)
		fail_msg("entry %zu: dev/ino %llx/%llu, want %llx/%llu", i,
		         (unsigned long long)got->dev, (unsigned long long)got->ino,
		         (unsigned long long)want->dev, (unsigned long long)want->ino);
	if (want->uid != got->uid || want->gid != got->gid || want->mode != got->mode)
		fail_msg("entry %zu: before %u:%u %o, want %u:%u %o", i, got->uid, got->gid,
		         got->mode, want->uid, want->gid, want->mode);
	if (want->new_uid != got->new_uid || want->new_gid != got->new_gid ||
	    want->new_mode != got->new_mode)
		fail_msg("entry %zu: after %u:%u %o, want %u:%u %o", i, got->new_uid, got->new_gid,
		         got->new_mode, want->new_uid, want->new_gid, want->new_mode);
	if (want->changes != got->changes)
		fail_msg("entry %zu: changes %#x, want %#x", i, got->changes, want->changes);
	assert_blob_equal(want->path, want->path_len, got->path, got->path_len, "path", i);
	assert_blob_equal(want->acl_access, want->acl_access_len, got->acl_access,
	                  got->acl_access_len, "acl_access", i);
	assert_blob_equal(want->acl_default, want->acl_default_len, got->acl_default,
	                  got->acl_default_len, "acl_default", i);
	assert_blob_equal(want->caps, want->caps_len, got->caps, got->caps_len, "caps", i);
}

/* ---- CRC-32C ---- */

static void test_crc32c(void **state)
{
	(void)state;
	assert_int_equal(vp_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(vp_crc32c(0, "", 0), 0);
	assert_int_equal(vp_crc32c(0, "a", 1), 0xC1D04330u);
	/* RFC 3720 (iSCSI) B.4 vectors */
	uint8_t b[48];
	memset(b, 0, 32);
	assert_int_equal(vp_crc32c(0, b, 32), 0x8A9136AAu);
	memset(b, 0xff, 32);
	assert_int_equal(vp_crc32c(0, b, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	assert_int_equal(vp_crc32c(0, b, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	assert_int_equal(vp_crc32c(0, b, 32), 0x113FDB5Cu);
	static const uint8_t iscsi_read[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	assert_int_equal(vp_crc32c(0, iscsi_read, 48), 0xD9963A56u);

	/* running value: crc(crc(a), b) == crc(a||b), at every split point, and
	 * unaligned starts (table/slice implementations get these wrong) */
	static const char text[] = "The quick brown fox jumps over the lazy dog, 0123456789!";
	const size_t n = sizeof text - 1;
	uint32_t whole = vp_crc32c(0, text, n);
	assert_int_equal(whole, vp_crc32c(0, text, n)); /* deterministic */
	for (size_t k = 0; k <= n; k++)
		assert_int_equal(vp_crc32c(vp_crc32c(0, text, k), text + k, n - k), whole);
	uint32_t c = 0;
	for (size_t k = 0; k < n; k++)
		c = vp_crc32c(c, text + k, 1);
	assert_int_equal(c, whole);
	uint8_t big[4096 + 16];
	for (size_t k = 0; k < sizeof big; k++)
		big[k] = (uint8_t)(k * 131 + 7);
	for (size_t off = 0; off < 16; off++) {
		uint8_t *copy = malloc(4096 + 16);
		assert_non_null(copy);
		memcpy(copy + off, big, 4096);
		assert_int_equal(vp_crc32c(0, copy + off, 4096), vp_crc32c(0, big, 4096));
		free(copy);
	}
	/* one flipped bit changes the value */
	uint32_t ref = vp_crc32c(0, big, 4096);
	for (size_t k = 0; k < 4096; k += 97) {
		big[k] ^= 0x10;
		assert_int_not_equal(vp_crc32c(0, big, 4096), ref);
		big[k] ^= 0x10;
	}
}

/* ---- record codec ---- */

static uint8_t *encode_entry(const struct vp_jentry *e, uint32_t seed, size_t *n)
{
	size_t sz = vp_jrec_entry_size(e);
	assert_true(sz >= VP_REC_FRAME + e->path_len + e->acl_access_len + e->acl_default_len +
	                          e->caps_len);
	uint8_t *buf = malloc(sz + 64);
	assert_non_null(buf);
	memset(buf, 0xEE, sz + 64);
	size_t got = vp_jrec_encode_entry(buf, e, seed);
	assert_int_equal(got, sz);
	for (size_t k = sz; k < sz + 64; k++)
		if (buf[k] != 0xEE)
			fail_msg("vp_jrec_encode_entry wrote past its size (byte %zu)", k);
	*n = sz;
	return buf;
}

static void test_rec_entry_roundtrip(void **state)
{
	(void)state;
	static const uint32_t seeds[] = { 0, 1, 0xdeadbeef, 0xffffffff };
	for (size_t i = 0; i < 40; i++) {
		struct ent_store s;
		make_entry(i, &s);
		/* widen the values to the type limits on some entries */
		if (i == 39) {
			s.e.seq = UINT64_MAX;
			s.e.batch = UINT32_MAX;
			s.e.dev = UINT64_MAX;
			s.e.ino = UINT64_MAX - 1;
			s.e.uid = s.e.new_uid = 4294967294u;
			s.e.gid = s.e.new_gid = 4294967294u;
			s.e.mode = s.e.new_mode = S_IFREG | 07777;
			s.e.changes = VP_CH_UID | VP_CH_GID | VP_CH_DROP_SUID | VP_CH_DROP_SGID |
			              VP_CH_DROP_CAPS;
		}
		uint32_t seed = seeds[i % 4];
		size_t n;
		uint8_t *buf = encode_entry(&s.e, seed, &n);
		struct vp_jentry d;
		memset(&d, 0, sizeof d);
		int type = -1;
		long r = vp_jrec_decode(buf, n, seed, &type, &d);
		if (r != (long)n)
			fail_msg("entry %zu: decode returned %ld, want %zu", i, r, n);
		assert_int_equal(type, VP_REC_ENTRY);
		assert_entry_equal(&s.e, &d, i, true);
		/* trailing bytes after the record are not part of it */
		memset(&d, 0, sizeof d);
		r = vp_jrec_decode(buf, n + 64, seed, &type, &d);
		assert_int_equal(r, (long)n);
		assert_entry_equal(&s.e, &d, i, true);
		/* the seed is part of the checksum */
		r = vp_jrec_decode(buf, n, seed ^ 1, &type, &d);
		if (r != -EBADMSG)
			fail_msg("entry %zu: decode with another seed returned %ld, want -EBADMSG", i,
			         r);
		/* encoding is deterministic */
		size_t n2;
		uint8_t *buf2 = encode_entry(&s.e, seed, &n2);
		assert_int_equal(n, n2);
		assert_memory_equal(buf, buf2, n);
		free(buf2);
		free(buf);
	}
}

/* Large blobs: a 4 KiB path, a big ACL. */
static void test_rec_entry_large(void **state)
{
	(void)state;
	static char path[4096];
	static uint8_t acl[65536];
	for (size_t k = 0; k < sizeof path; k++)
		path[k] = (char)(k % 255 + 1); /* every non-NUL byte, '/' and '\n' included */
	for (size_t k = 0; k < sizeof acl; k++)
		acl[k] = (uint8_t)(k * 13);
	struct vp_jentry e;
	memset(&e, 0, sizeof e);
	e.seq = 7;
	e.path = path;
	e.path_len = sizeof path;
	e.acl_access = acl;
	e.acl_access_len = sizeof acl;
	e.acl_default = acl + 1;
	e.acl_default_len = 1000;
	e.caps = acl + 2;
	e.caps_len = 24;
	e.mode = S_IFDIR | 0755;
	size_t n;
	uint8_t *buf = encode_entry(&e, 42, &n);
	struct vp_jentry d;
	int type;
	assert_int_equal(vp_jrec_decode(buf, n, 42, &type, &d), (long)n);
	assert_int_equal(type, VP_REC_ENTRY);
	assert_entry_equal(&e, &d, 0, true);
	/* flip one byte deep inside the ACL */
	buf[n / 2] ^= 0x01;
	assert_int_equal(vp_jrec_decode(buf, n, 42, &type, &d), -EBADMSG);
	free(buf);
}

/* Every byte, three different flips: -EBADMSG. The one allowed exception is
 * -ENODATA when the flip made the record claim more bytes than given (a
 * length byte): then, given that many bytes, the decoder must say -EBADMSG. */
static void check_every_flip(uint8_t *buf, size_t n, uint32_t seed, const char *what)
{
	static const uint8_t flips[] = { 0x01, 0x80, 0xff };
	int bad = 0;
	uint8_t *big = NULL;
	for (size_t k = 0; k < n; k++) {
		for (size_t f = 0; f < sizeof flips; f++) {
			buf[k] ^= flips[f];
			struct vp_jentry d;
			int type = -1;
			long r = vp_jrec_decode(buf, n, seed, &type, &d);
			if (r == -ENODATA) {
				/* VP_REC_MAX bytes more: every length the decoder accepts */
				if (!big) {
					big = calloc(1, (size_t)VP_REC_MAX + n);
					assert_non_null(big);
				}
				memcpy(big, buf, n);
				long r2 = vp_jrec_decode(big, (size_t)VP_REC_MAX + n, seed, &type, &d);
				memset(big, 0, n);
				if (r2 != -EBADMSG) {
					print_error("%s (%zu bytes): byte %zu ^ 0x%02x: -ENODATA, and with "
					            "all the bytes it claims: %ld, want -EBADMSG\n",
					            what, n, k, flips[f], r2);
					bad++;
				}
			} else if (r != -EBADMSG) {
				if (bad++ < 20)
					print_error("%s (%zu bytes): byte %zu ^ 0x%02x: decode returned %ld, "
					            "want -EBADMSG (%d)\n",
					            what, n, k, flips[f], r, -EBADMSG);
			}
			buf[k] ^= flips[f];
		}
	}
	free(big);
	if (bad)
		fail_msg("%s: %d flipped-byte cases not refused", what, bad);
	/* and the original still decodes */
	struct vp_jentry d;
	int type;
	assert_int_equal(vp_jrec_decode(buf, n, seed, &type, &d), (long)n);
}

static void check_every_prefix(const uint8_t *buf, size_t n, uint32_t seed, const char *what)
{
	for (size_t k = 0; k < n; k++) {
		/* a fresh exact-size copy, so that a read past avail shows up under ASan */
		uint8_t *p = malloc(k ? k : 1);
		assert_non_null(p);
		memcpy(p, buf, k);
		struct vp_jentry d;
		int type = -1;
		long r = vp_jrec_decode(p, k, seed, &type, &d);
		free(p);
		if (r != -ENODATA)
			fail_msg("%s (%zu bytes): prefix of %zu bytes: decode returned %ld, want "
			         "-ENODATA (%d)",
			         what, n, k, r, -ENODATA);
	}
}

static void test_rec_entry_flips_and_prefixes(void **state)
{
	(void)state;
	static const size_t which[] = { 0, 1, 2, 3, 7 };
	for (size_t w = 0; w < sizeof which / sizeof which[0]; w++) {
		struct ent_store s;
		make_entry(which[w], &s);
		size_t n;
		uint8_t *buf = encode_entry(&s.e, 0x12345678, &n);
		char what[64];
		snprintf(what, sizeof what, "entry record %zu", which[w]);
		check_every_flip(buf, n, 0x12345678, what);
		check_every_prefix(buf, n, 0x12345678, what);
		free(buf);
	}
}

static void test_rec_marks(void **state)
{
	(void)state;
	static const enum vp_rec_type types[] = { VP_REC_COMMIT, VP_REC_ROLLBACK_BEGIN,
		                                  VP_REC_ROLLED_BACK };
	for (size_t t = 0; t < 3; t++) {
		uint8_t buf[4096];
		memset(buf, 0xEE, sizeof buf);
		size_t n = vp_jrec_encode_mark(buf, types[t], 99 + t, 5, 0xabcdef01);
		assert_true(n >= VP_REC_FRAME);
		assert_true(n < 1024);
		for (size_t k = n; k < sizeof buf; k++)
			if (buf[k] != 0xEE)
				fail_msg("mark %d wrote past its size %zu", types[t], n);
		int type = -1;
		struct vp_jentry d;
		assert_int_equal(vp_jrec_decode(buf, n, 0xabcdef01, &type, &d), (long)n);
		assert_int_equal(type, types[t]);
		assert_int_equal(vp_jrec_decode(buf, n, 0xabcdef00, &type, &d), -EBADMSG);
		char what[32];
		snprintf(what, sizeof what, "mark record %d", types[t]);
		check_every_flip(buf, n, 0xabcdef01, what);
		check_every_prefix(buf, n, 0xabcdef01, what);
	}
	/* two different marks do not encode the same */
	uint8_t a[4096], b[4096];
	size_t na = vp_jrec_encode_mark(a, VP_REC_COMMIT, 1, 1, 0);
	size_t nb = vp_jrec_encode_mark(b, VP_REC_ROLLED_BACK, 1, 1, 0);
	assert_true(na != nb || memcmp(a, b, na) != 0);
}

/* Records one after the other in a buffer decode one after the other. */
static void test_rec_stream(void **state)
{
	(void)state;
	uint8_t *stream = malloc(1 << 20);
	assert_non_null(stream);
	size_t off = 0;
	size_t offs[30];
	for (size_t i = 0; i < 25; i++) {
		struct ent_store s;
		make_entry(i, &s);
		offs[i] = off;
		off += vp_jrec_encode_entry(stream + off, &s.e, 77);
	}
	offs[25] = off;
	off += vp_jrec_encode_mark(stream + off, VP_REC_COMMIT, 26, 7, 77);
	size_t pos = 0;
	for (size_t i = 0; i < 25; i++) {
		struct ent_store s;
		make_entry(i, &s);
		struct vp_jentry d;
		int type;
		assert_int_equal(pos, offs[i]);
		long r = vp_jrec_decode(stream + pos, off - pos, 77, &type, &d);
		assert_true(r > 0);
		assert_int_equal(type, VP_REC_ENTRY);
		assert_entry_equal(&s.e, &d, i, true);
		pos += (size_t)r;
	}
	int type;
	struct vp_jentry d;
	long r = vp_jrec_decode(stream + pos, off - pos, 77, &type, &d);
	assert_int_equal(r, (long)(off - pos));
	assert_int_equal(type, VP_REC_COMMIT);
	free(stream);
}

/* ---- header codec ---- */

static char *policy_text(size_t *len)
{
	struct vp_policy p;
	vp_policy_init(&p);
	p.has_uid = p.has_gid = true;
	p.uid = 1001;
	p.gid = 1001;
	assert_int_equal(vp_policy_add_uid_map(&p, 1000, 1001), 0);
	assert_int_equal(vp_policy_add_exclude(&p, "we ird\n%\xff"), 0);
	char *t = NULL;
	size_t n = 0;
	assert_int_equal(vp_policy_to_text(&p, &t, &n), 0);
	vp_policy_free(&p);
	char *z = malloc(n + 1); /* NUL-terminated copy, as the header holds it */
	assert_non_null(z);
	memcpy(z, t, n);
	z[n] = 0;
	free(t);
	*len = n;
	return z;
}

#define TEST_HOST "test-host.example"
#define TEST_ROOT "/srv/data/with space/\xc3\xa9"

/* A header owned by the caller (free with vp_jheader_free). */
static void make_header(struct vp_jheader *h)
{
	memset(h, 0, sizeof *h);
	h->version = VP_JOURNAL_VERSION;
	h->created_ns = 1700000000123456789ull;
	h->root_dev = 0x0803;
	h->root_ino = 0x123456789aull;
	h->fsid = 0xdeadbeefcafef00dull;
	for (int i = 0; i < 16; i++)
		h->nonce[i] = (uint8_t)(0xa0 + i);
	h->flags = 0;
	h->seq = 0x0102030405060708ull;
	h->host = strdup(TEST_HOST);
	h->root = strdup(TEST_ROOT);
	assert_non_null(h->host);
	assert_non_null(h->root);
	h->policy = policy_text(&h->policy_len);
}

static void assert_header_equal(const struct vp_jheader *a, const struct vp_jheader *b)
{
	assert_int_equal(a->version, b->version);
	assert_true(a->created_ns == b->created_ns);
	assert_true(a->root_dev == b->root_dev);
	assert_true(a->root_ino == b->root_ino);
	assert_true(a->fsid == b->fsid);
	assert_memory_equal(a->nonce, b->nonce, 16);
	assert_int_equal(a->flags, b->flags);
	assert_true(a->seq == b->seq);
	assert_non_null(b->host);
	assert_non_null(b->root);
	assert_non_null(b->policy);
	assert_string_equal(a->host, b->host);
	assert_string_equal(a->root, b->root);
	assert_int_equal(a->policy_len, b->policy_len);
	assert_memory_equal(a->policy, b->policy, a->policy_len);
}

static void test_header_roundtrip(void **state)
{
	(void)state;
	struct vp_jheader h;
	make_header(&h);
	uint8_t *buf = NULL;
	size_t len = 0;
	assert_int_equal(vp_jheader_encode(&h, &buf, &len), 0);
	assert_non_null(buf);
	assert_true(len > strlen(TEST_HOST) + strlen(TEST_ROOT) + h.policy_len);
	assert_memory_equal(buf, VP_JOURNAL_MAGIC, strlen(VP_JOURNAL_MAGIC));

	struct vp_jheader d;
	memset(&d, 0, sizeof d);
	size_t hlen = 0;
	assert_int_equal(vp_jheader_decode(buf, len, &d, &hlen), 0);
	assert_int_equal(hlen, len);
	assert_header_equal(&h, &d);
	/* the decoded policy is the policy */
	struct vp_policy p;
	assert_int_equal(vp_policy_from_text(d.policy, d.policy_len, &p), 0);
	assert_int_equal(p.uid, 1001);
	assert_int_equal(p.n_excludes, 1);
	assert_string_equal(p.excludes[0], "we ird\n%\xff");
	vp_policy_free(&p);

	/* with records after it, the header length is still the header's */
	uint8_t *more = malloc(len + 100);
	assert_non_null(more);
	memcpy(more, buf, len);
	memset(more + len, 0x42, 100);
	struct vp_jheader d2;
	memset(&d2, 0, sizeof d2);
	size_t hlen2 = 0;
	assert_int_equal(vp_jheader_decode(more, len + 100, &d2, &hlen2), 0);
	assert_int_equal(hlen2, len);
	assert_header_equal(&h, &d2);
	assert_int_equal(d.crc, d2.crc);
	free(more);
	vp_jheader_free(&d2);

	/* a different nonce gives a different header CRC (it seeds the records:
	 * records of one journal cannot be spliced into another) */
	struct vp_jheader h3 = h;
	h3.nonce[0] ^= 1;
	uint8_t *buf3 = NULL;
	size_t len3 = 0;
	assert_int_equal(vp_jheader_encode(&h3, &buf3, &len3), 0);
	struct vp_jheader d3;
	memset(&d3, 0, sizeof d3);
	assert_int_equal(vp_jheader_decode(buf3, len3, &d3, &hlen2), 0);
	assert_int_not_equal(d3.crc, d.crc);
	vp_jheader_free(&d3);
	free(buf3);

	vp_jheader_free(&d);
	free(buf);
	vp_jheader_free(&h);
}

/* Version 2 stores the sequence at offset 80, before the variable part;
 * a version 1 header (no sequence, variable part at 80) still decodes, as
 * sequence 0. The version 1 bytes are built here by hand from the layout in
 * journal.c, not by the encoder, which writes version 2 only. */
static void test_header_sequence_and_v1(void **state)
{
	(void)state;
	struct vp_jheader h, d;
	uint8_t *buf = NULL;
	size_t len = 0, hlen = 0;

	make_header(&h);
	h.seq = 42;
	assert_int_equal(vp_jheader_encode(&h, &buf, &len), 0);
	assert_int_equal(buf[8], 2);
	assert_int_equal(buf[80], 42);
	for (int i = 81; i < 88; i++)
		assert_int_equal(buf[i], 0);
	assert_memory_equal(buf + 88, TEST_HOST, strlen(TEST_HOST));
	memset(&d, 0, sizeof d);
	assert_int_equal(vp_jheader_decode(buf, len, &d, &hlen), 0);
	assert_true(d.seq == 42);
	vp_jheader_free(&d);

	/* the same header as version 1: drop the 8 sequence bytes */
	size_t len1 = len - 8;
	uint8_t *v1 = malloc(len1);
	assert_non_null(v1);
	memcpy(v1, buf, 80);
	memcpy(v1 + 80, buf + 88, len - 88 - 4);
	v1[8] = 1;
	v1[12] = (uint8_t)len1;
	v1[13] = (uint8_t)(len1 >> 8);
	v1[14] = (uint8_t)(len1 >> 16);
	v1[15] = (uint8_t)(len1 >> 24);
	uint32_t crc = vp_crc32c(0, v1, len1 - 4);
	for (int i = 0; i < 4; i++)
		v1[len1 - 4 + i] = (uint8_t)(crc >> (8 * i));
	memset(&d, 0, sizeof d);
	assert_int_equal(vp_jheader_decode(v1, len1, &d, &hlen), 0);
	assert_int_equal(hlen, len1);
	assert_int_equal(d.version, 1);
	assert_true(d.seq == 0);
	assert_string_equal(d.host, TEST_HOST);
	assert_string_equal(d.root, TEST_ROOT);
	assert_int_equal(d.policy_len, h.policy_len);
	vp_jheader_free(&d);

	/* an unknown version is refused, not guessed at */
	v1[8] = 3;
	crc = vp_crc32c(0, v1, len1 - 4);
	for (int i = 0; i < 4; i++)
		v1[len1 - 4 + i] = (uint8_t)(crc >> (8 * i));
	memset(&d, 0, sizeof d);
	assert_int_not_equal(vp_jheader_decode(v1, len1, &d, &hlen), 0);
	free(v1);
	free(buf);
	vp_jheader_free(&h);
}

static void test_header_flips_and_prefixes(void **state)
{
	(void)state;
	struct vp_jheader h;
	make_header(&h);
	uint8_t *buf = NULL;
	size_t len = 0;
	assert_int_equal(vp_jheader_encode(&h, &buf, &len), 0);
	static const uint8_t flips[] = { 0x01, 0x80, 0xff };
	int bad = 0;
	/* The header is fsync()ed before any record exists, and its length H is
	 * redundant (H = 80 + h + r + p + 4, docs/journal-format.md): a flipped
	 * byte is corruption, never "a header that was never completely
	 * written" (-ENODATA), which callers skip as harmless. */
	for (size_t k = 0; k < len; k++) {
		for (size_t f = 0; f < sizeof flips; f++) {
			buf[k] ^= flips[f];
			struct vp_jheader d;
			memset(&d, 0, sizeof d);
			size_t hlen = 0;
			int r = vp_jheader_decode(buf, len, &d, &hlen);
			buf[k] ^= flips[f];
			/* -EPROTO is the honest answer when the flip hits the version */
			if (r == 0)
				vp_jheader_free(&d);
			if (r != -EBADMSG && r != -EPROTO) {
				print_error("header byte %zu ^ 0x%02x: decode returned %d, want -EBADMSG\n",
				            k, flips[f], r);
				bad++;
			}
		}
	}
	for (size_t k = 0; k < len; k++) {
		uint8_t *p = malloc(k ? k : 1);
		assert_non_null(p);
		memcpy(p, buf, k);
		struct vp_jheader d;
		memset(&d, 0, sizeof d);
		size_t hlen = 0;
		int r = vp_jheader_decode(p, k, &d, &hlen);
		free(p);
		if (r >= 0) {
			vp_jheader_free(&d);
			print_error("header prefix of %zu/%zu bytes: decode returned %d, want an "
			            "error\n",
			            k, len, r);
			bad++;
		}
	}
	free(buf);
	vp_jheader_free(&h);
	if (bad)
		fail_msg("%d flipped or cut headers not refused as corrupt", bad);
}

/* ---- what the writer syncs, seen from outside it ----
 *
 * This test binary's fdatasync(): the library is linked into it statically,
 * so this definition replaces libc's for the journal writer too. For the one
 * journal being watched it records how far the file reached when its data
 * was synced (the size before the call: what that sync covers) and counts
 * the syncs; it can also hold the next call until released (to catch a
 * batch in flight) or fail it. Every other fd gets the real call only. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	dev_t dev;
	ino_t ino;          /* 0: nothing watched */
	uint64_t durable;   /* the file size the last successful sync covered */
	unsigned calls;     /* successful syncs of the watched file */
	bool hold;          /* the next call waits until `release` */
	bool held, release;
	int fail_errno;     /* the next call fails with it */
} watch = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

int fdatasync(int fd)
{
	struct stat st;
	bool watched;
	int fail = 0;

	pthread_mutex_lock(&watch.mu);
	watched = watch.ino && fstat(fd, &st) == 0 && st.st_dev == watch.dev &&
	          st.st_ino == watch.ino;
	if (watched && watch.hold) {
		watch.hold = false;
		watch.held = true;
		pthread_cond_broadcast(&watch.cv);
		while (!watch.release)
			pthread_cond_wait(&watch.cv, &watch.mu);
	}
	if (watched && watch.fail_errno) {
		fail = watch.fail_errno;
		watch.fail_errno = 0;
	}
	pthread_mutex_unlock(&watch.mu);
	if (fail) {
		errno = fail;
		return -1;
	}
	if (syscall(SYS_fdatasync, fd) < 0)
		return -1;
	if (watched) {
		pthread_mutex_lock(&watch.mu);
		if ((uint64_t)st.st_size > watch.durable)
			watch.durable = (uint64_t)st.st_size;
		watch.calls++;
		pthread_mutex_unlock(&watch.mu);
	}
	return 0;
}

static void watch_reset(dev_t dev, ino_t ino, uint64_t durable)
{
	pthread_mutex_lock(&watch.mu);
	watch.dev = dev;
	watch.ino = ino;
	watch.durable = durable;
	watch.calls = 0;
	watch.hold = watch.held = watch.release = false;
	watch.fail_errno = 0;
	pthread_mutex_unlock(&watch.mu);
}

/* Watch dfd/name from now on; what it holds now counts as durable (the
 * writer fsync()s the header). */
static void watch_journal(int dfd, const char *name)
{
	struct stat st;
	assert_int_equal(fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
	watch_reset(st.st_dev, st.st_ino, (uint64_t)st.st_size);
}

static uint64_t watch_durable(void)
{
	pthread_mutex_lock(&watch.mu);
	uint64_t d = watch.durable;
	pthread_mutex_unlock(&watch.mu);
	return d;
}

static unsigned watch_calls(void)
{
	pthread_mutex_lock(&watch.mu);
	unsigned n = watch.calls;
	pthread_mutex_unlock(&watch.mu);
	return n;
}

/* ---- file level ---- */

struct fx {
	char dir[64];
	int dfd;
};

static int fx_setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	if (!x)
		return -1;
	strcpy(x->dir, "/tmp/volperm-jtest-XXXXXX");
	if (!mkdtemp(x->dir)) {
		free(x);
		return -1;
	}
	x->dfd = open(x->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x->dfd < 0) {
		rmdir(x->dir);
		free(x);
		return -1;
	}
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *x = *state;
	DIR *d = opendir(x->dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				unlinkat(x->dfd, de->d_name, 0);
		closedir(d);
	}
	close(x->dfd);
	rmdir(x->dir);
	free(x);
	watch_reset(0, 0, 0); /* after a failed test too */
	return 0;
}

#define JNAME "vp-0000000000000803-000000123456789a-0000000000000001.vpj"

static uint8_t *slurp(int dfd, const char *name, size_t *size)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
	close(fd);
	*size = got;
	return buf;
}

static off_t file_size(int dfd, const char *name)
{
	struct stat st;
	assert_int_equal(fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st.st_size;
}

static void truncate_at(int dfd, const char *name, off_t len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, len), 0);
	close(fd);
}

static void xor_byte_at(int dfd, const char *name, off_t off, uint8_t x)
{
	int fd = openat(dfd, name, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= x;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

struct recinfo {
	size_t off, len;
	int type;
};

/* Find the records in a journal file with the codec: header, then records
 * seeded with the header's CRC. Returns the number of records. */
static size_t walk_file(int dfd, const char *name, struct recinfo *out, size_t max,
                        size_t *hlen_out, size_t *size_out)
{
	size_t size;
	uint8_t *buf = slurp(dfd, name, &size);
	struct vp_jheader h;
	memset(&h, 0, sizeof h);
	size_t hlen = 0;
	assert_int_equal(vp_jheader_decode(buf, size, &h, &hlen), 0);
	size_t off = hlen, n = 0;
	while (off < size) {
		struct vp_jentry e;
		int type = -1;
		long r = vp_jrec_decode(buf + off, size - off, h.crc, &type, &e);
		if (r <= 0)
			break;
		assert_true(n < max);
		out[n].off = off;
		out[n].len = (size_t)r;
		out[n].type = type;
		n++;
		off += (size_t)r;
	}
	vp_jheader_free(&h);
	free(buf);
	if (hlen_out)
		*hlen_out = hlen;
	if (size_out)
		*size_out = size;
	return n;
}

/* Write entries [from, to) with the writer, syncing whenever it is full
 * (and checking vp_jw_full/vp_jw_pending against batch_max on the way).
 * Returns the ticket of the last entry (0 if none), for vp_jw_sync(). */
static uint32_t add_entries(struct vp_jwriter *w, size_t from, size_t to, size_t batch_max)
{
	uint32_t ticket = 0;
	for (size_t i = from; i < to; i++) {
		struct ent_store s;
		make_entry(i, &s);
		size_t before = vp_jw_pending(w);
		assert_true(before < batch_max);
		uint32_t prev = ticket;
		assert_int_equal(vp_jw_add(w, &s.e, &ticket), 0);
		/* a batch holds consecutive entries: the ticket moves by one after a sync */
		if (i > from)
			assert_int_equal(ticket, before ? prev : prev + 1);
		/* the writer copied the entry: scribbling over ours changes nothing */
		memset(&s, 0x77, sizeof s);
		assert_int_equal(vp_jw_pending(w), before + 1);
		if (vp_jw_pending(w) == batch_max) {
			assert_true(vp_jw_full(w));
			assert_int_equal(vp_jw_sync(w, ticket), 0);
			assert_int_equal(vp_jw_pending(w), 0);
		}
		assert_false(vp_jw_full(w));
	}
	return ticket;
}

static struct vp_jwriter *create_journal(struct fx *x, const char *name, size_t n_entries,
                                         size_t batch_max, struct vp_jheader *snap)
{
	struct vp_jheader h;
	make_header(&h);
	struct vp_jwriter *w = NULL;
	int r = vp_jw_create(x->dfd, name, &h, batch_max, &w);
	if (r != 0)
		fail_msg("vp_jw_create: %d", r);
	assert_non_null(w);
	const struct vp_jheader *wh = vp_jw_header(w);
	assert_non_null(wh);
	assert_string_equal(wh->root, TEST_ROOT);
	assert_string_equal(wh->host, TEST_HOST);
	if (snap) {
		*snap = *wh;
		snap->host = strdup(wh->host);
		snap->root = strdup(wh->root);
		snap->policy = malloc(wh->policy_len + 1);
		assert_non_null(snap->policy);
		memcpy(snap->policy, wh->policy, wh->policy_len);
		snap->policy[wh->policy_len] = 0;
	}
	vp_jheader_free(&h);
	uint32_t ticket = add_entries(w, 0, n_entries, batch_max);
	assert_int_equal(vp_jw_sync(w, ticket), 0);
	assert_int_equal(vp_jw_pending(w), 0);
	assert_int_equal(vp_jw_entries(w), n_entries);
	return w;
}

/* vp_jr_open_at's return code; the reader it may hand over (always on
 * success, also on -EBADMSG, journal.h) is closed. */
static int open_rc(struct fx *x, const char *name)
{
	struct vp_jreader *r = NULL;
	int rc = vp_jr_open_at(x->dfd, name, &r);
	if (rc == -EBADMSG && r)
		assert_true(vp_jr_error(r)[0] != 0); /* it says where */
	if (rc == 0 || rc == -EBADMSG)
		vp_jr_close(r);
	else
		assert_null(r);
	return rc;
}

static struct vp_jreader *open_reader(struct fx *x, const char *name)
{
	struct vp_jreader *r = NULL;
	int rc = vp_jr_open_at(x->dfd, name, &r);
	if (rc != 0)
		fail_msg("vp_jr_open_at(%s): %d", name, rc);
	assert_non_null(r);
	return r;
}

/* Read all entries forward and backward and compare with make_entry(from..to). */
static void check_entries(struct vp_jreader *r, size_t n)
{
	struct vp_jentry e;
	uint64_t last_seq = 0;
	uint32_t last_batch = 0;
	vp_jr_rewind(r);
	for (size_t i = 0; i < n; i++) {
		int rc = vp_jr_next(r, &e);
		if (rc != 1)
			fail_msg("vp_jr_next #%zu returned %d, want 1", i, rc);
		struct ent_store s;
		make_entry(i, &s);
		assert_entry_equal(&s.e, &e, i, false);
		if (i > 0 && e.seq <= last_seq)
			fail_msg("entry %zu: seq %llu not after %llu", i, (unsigned long long)e.seq,
			         (unsigned long long)last_seq);
		if (i > 0 && e.batch < last_batch)
			fail_msg("entry %zu: batch %u before %u", i, e.batch, last_batch);
		last_seq = e.seq;
		last_batch = e.batch;
	}
	assert_int_equal(vp_jr_next(r, &e), 0);
	assert_int_equal(vp_jr_next(r, &e), 0); /* stays at the end */

	vp_jr_seek_end(r);
	for (size_t i = n; i-- > 0;) {
		int rc = vp_jr_prev(r, &e);
		if (rc != 1)
			fail_msg("vp_jr_prev for entry %zu returned %d, want 1", i, rc);
		struct ent_store s;
		make_entry(i, &s);
		assert_entry_equal(&s.e, &e, i, false);
	}
	assert_int_equal(vp_jr_prev(r, &e), 0);
	assert_int_equal(vp_jr_prev(r, &e), 0);

	/* and forward again after a rewind */
	vp_jr_rewind(r);
	size_t count = 0;
	while (vp_jr_next(r, &e) == 1)
		count++;
	assert_int_equal(count, n);
}

static void test_jstate_names(void **state)
{
	(void)state;
	assert_string_equal(vp_jstate_name(VP_JSTATE_ACTIVE), "active");
	assert_string_equal(vp_jstate_name(VP_JSTATE_COMMITTED), "committed");
	assert_string_equal(vp_jstate_name(VP_JSTATE_ROLLING_BACK), "rolling-back");
	assert_string_equal(vp_jstate_name(VP_JSTATE_ROLLED_BACK), "rolled-back");
}

static void test_file_commit_read(void **state)
{
	struct fx *x = *state;
	struct vp_jheader snap;
	struct vp_jwriter *w = create_journal(x, JNAME, 10, 4, &snap);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	uint32_t wcrc = vp_jw_header(w)->crc;
	vp_jw_close(w);

	/* the file: 0600, a regular file, starts with the magic */
	struct stat st;
	assert_int_equal(fstatat(x->dfd, JNAME, &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	size_t size;
	uint8_t *raw = slurp(x->dfd, JNAME, &size);
	assert_memory_equal(raw, VP_JOURNAL_MAGIC, strlen(VP_JOURNAL_MAGIC));
	free(raw);

	/* the records: 10 entries in 3 batches, then COMMIT */
	struct recinfo ri[64];
	size_t hlen;
	size_t nrec = walk_file(x->dfd, JNAME, ri, 64, &hlen, &size);
	assert_int_equal(nrec, 11);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(ri[i].type, VP_REC_ENTRY);
	assert_int_equal(ri[10].type, VP_REC_COMMIT);
	assert_int_equal(ri[10].off + ri[10].len, size);

	struct vp_jreader *r = open_reader(x, JNAME);
	assert_int_equal(vp_jr_state(r), VP_JSTATE_COMMITTED);
	assert_int_equal(vp_jr_entries(r), 10);
	assert_false(vp_jr_torn(r));
	assert_int_equal(vp_jr_valid_end(r), size);
	assert_true(vp_jr_fd(r) >= 0);
	const struct vp_jheader *rh = vp_jr_header(r);
	assert_non_null(rh);
	assert_header_equal(&snap, rh);
	assert_int_equal(rh->crc, wcrc);
	assert_int_equal(rh->version, VP_JOURNAL_VERSION);
	assert_true(rh->root_dev == 0x0803);
	assert_true(rh->root_ino == 0x123456789aull);
	assert_true(rh->fsid == 0xdeadbeefcafef00dull);
	check_entries(r, 10);
	vp_jr_close(r);
	/* the reader changed nothing */
	assert_int_equal(file_size(x->dfd, JNAME), (off_t)size);
	vp_jheader_free(&snap);
}

static void test_file_many_entries(void **state)
{
	struct fx *x = *state;
	struct vp_jwriter *w = create_journal(x, JNAME, 1000, 64, NULL);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	vp_jw_close(w);
	struct vp_jreader *r = open_reader(x, JNAME);
	assert_int_equal(vp_jr_entries(r), 1000);
	assert_int_equal(vp_jr_state(r), VP_JSTATE_COMMITTED);
	check_entries(r, 1000);
	vp_jr_close(r);
}

static void test_file_states(void **state)
{
	struct fx *x = *state;
	static const struct {
		enum vp_rec_type marks[3];
		size_t n;
		enum vp_jstate want;
	} t[] = {
		{ { 0 }, 0, VP_JSTATE_ACTIVE },
		{ { VP_REC_COMMIT }, 1, VP_JSTATE_COMMITTED },
		{ { VP_REC_ROLLBACK_BEGIN }, 1, VP_JSTATE_ROLLING_BACK },   /* hot journal rollback */
		{ { VP_REC_ROLLBACK_BEGIN, VP_REC_ROLLED_BACK }, 2, VP_JSTATE_ROLLED_BACK },
		{ { VP_REC_COMMIT, VP_REC_ROLLBACK_BEGIN }, 2, VP_JSTATE_ROLLING_BACK },
		{ { VP_REC_COMMIT, VP_REC_ROLLBACK_BEGIN, VP_REC_ROLLED_BACK }, 3,
		  VP_JSTATE_ROLLED_BACK },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char name[64];
		snprintf(name, sizeof name, "state-%zu.vpj", i);
		struct vp_jwriter *w = create_journal(x, name, 6, 4, NULL);
		for (size_t k = 0; k < t[i].n; k++)
			assert_int_equal(vp_jw_mark(w, t[i].marks[k]), 0);
		vp_jw_close(w);
		struct vp_jreader *r = open_reader(x, name);
		if (vp_jr_state(r) != t[i].want)
			fail_msg("case %zu: state %s, want %s", i, vp_jstate_name(vp_jr_state(r)),
			         vp_jstate_name(t[i].want));
		assert_int_equal(vp_jr_entries(r), 6);
		assert_false(vp_jr_torn(r));
		check_entries(r, 6);
		vp_jr_close(r);

		/* the marks survive a reopen for appending (rollback marks are
		 * appended with vp_jw_open) */
		if (t[i].want == VP_JSTATE_ROLLED_BACK)
			continue;
		w = NULL;
		assert_int_equal(vp_jw_open(x->dfd, name, 4, &w), 0);
		vp_jw_close(w);
		r = open_reader(x, name);
		assert_int_equal(vp_jr_state(r), t[i].want);
		vp_jr_close(r);
	}
}

static void test_file_empty_journal(void **state)
{
	struct fx *x = *state;
	struct vp_jwriter *w = create_journal(x, JNAME, 0, 4, NULL);
	vp_jw_close(w);
	struct vp_jreader *r = open_reader(x, JNAME);
	assert_int_equal(vp_jr_entries(r), 0);
	assert_int_equal(vp_jr_state(r), VP_JSTATE_ACTIVE);
	assert_false(vp_jr_torn(r));
	struct vp_jentry e;
	vp_jr_rewind(r);
	assert_int_equal(vp_jr_next(r, &e), 0);
	vp_jr_seek_end(r);
	assert_int_equal(vp_jr_prev(r, &e), 0);
	vp_jr_close(r);
}

/* Unflushed entries are dropped at close: their changes never happened. */
static void test_file_unflushed_dropped(void **state)
{
	struct fx *x = *state;
	struct vp_jwriter *w = create_journal(x, JNAME, 3, 4, NULL);
	struct ent_store s;
	uint32_t ticket;
	make_entry(3, &s);
	assert_int_equal(vp_jw_add(w, &s.e, &ticket), 0);
	make_entry(4, &s);
	assert_int_equal(vp_jw_add(w, &s.e, &ticket), 0);
	assert_int_equal(vp_jw_pending(w), 2);
	vp_jw_close(w);
	struct vp_jreader *r = open_reader(x, JNAME);
	assert_int_equal(vp_jr_entries(r), 3);
	assert_false(vp_jr_torn(r));
	check_entries(r, 3);
	vp_jr_close(r);
}

/* A torn tail: the last record cut anywhere inside it is ignored. */
static void test_file_torn_tail(void **state)
{
	struct fx *x = *state;
	struct vp_jwriter *w = create_journal(x, JNAME, 9, 4, NULL);
	vp_jw_close(w);
	struct recinfo ri[64];
	size_t size;
	size_t nrec = walk_file(x->dfd, JNAME, ri, 64, NULL, &size);
	assert_int_equal(nrec, 9);
	const struct recinfo last = ri[8];
	assert_int_equal(last.off + last.len, size);

	/* cut in the middle of the last record */
	truncate_at(x->dfd, JNAME, (off_t)(last.off + last.len / 2));
	struct vp_jreader *r = open_reader(x, JNAME);
	assert_true(vp_jr_torn(r));
	assert_int_equal(vp_jr_entries(r), 8);
	assert_int_equal(vp_jr_state(r), VP_JSTATE_ACTIVE);
	assert_int_equal(vp_jr_valid_end(r), last.off);
	check_entries(r, 8);
	vp_jr_close(r);
	/* the reader does not repair: the file is as it was */
	assert_int_equal(file_size(x->dfd, JNAME), (off_t)(last.off + last.len / 2));

	/* every other cut inside the record, down to one byte */
	for (size_t cut = last.len / 2; cut-- > 1;) {
		truncate_at(x->dfd, JNAME, (off_t)(last.off + cut));
		struct vp_jreader *r2 = NULL;
		int rc = vp_jr_open_at(x->dfd, JNAME, &r2);
		if (rc != 0) {
			if (rc == -EBADMSG)
				vp_jr_close(r2);
			fail_msg("cut after %zu of %zu bytes of the last record: open returned %d",
			         cut, last.len, rc);
		}
		if (!vp_jr_torn(r2) || vp_jr_entries(r2) != 8 || vp_jr_valid_end(r2) != last.off)
			fail_msg("cut after %zu bytes: torn=%d entries=%llu valid_end=%llu", cut,
			         vp_jr_torn(r2), (unsigned long long)vp_jr_entries(r2),
			         (unsigned long long)vp_jr_valid_end(r2));
		vp_jr_close(r2);
	}

	/* cut exactly at the record boundary: nothing torn */
	truncate_at(x->dfd, JNAME, (off_t)last.off);
	r = open_reader(x, JNAME);
	assert_false(vp_jr_torn(r));
	assert_int_equal(vp_jr_entries(r), 8);
	vp_jr_close(r);
}

/* A torn COMMIT mark: the commit did not happen, the journal is active. */
static void test_file_torn_commit(void **state)
{
	struct fx *x = *state;
	struct vp_jwriter *w = create_journal(x, JNAME, 5, 4, NULL);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	vp_jw_close(w);
	struct recinfo ri[16];
	size_t size;
	assert_int_equal(walk_file(x->dfd, JNAME, ri, 16, NULL, &size), 6);
	assert_int_equal(ri[5].type, VP_REC_COMMIT);
	truncate_at(x->dfd, JNAME, (off_t)(size - 1));
	struct vp_jreader *r = open_reader(x, JNAME);
	assert_int_equal(vp_jr_state(r), VP_JSTATE_ACTIVE);
	assert_true(vp_jr_torn(r));
	assert_int_equal(vp_jr_entries(r), 5);
	assert_int_equal(vp_jr_valid_end(r), ri[5].off);
	vp_jr_close(r);
}

/* Any flipped byte in a record followed by later batches: refused. */
static void test_file_corrupt_middle(void **state)
{
	struct fx *x = *state;
	struct vp_jwriter *w = create_journal(x, JNAME, 12, 4, NULL);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	vp_jw_close(w);
	struct recinfo ri[32];
	size_t size;
	assert_int_equal(walk_file(x->dfd, JNAME, ri, 32, NULL, &size), 13);

	/* the brief's case: one byte in the middle of record 5 */
	xor_byte_at(x->dfd, JNAME, (off_t)(ri[5].off + ri[5].len / 2), 0x20);
	assert_int_equal(open_rc(x, JNAME), -EBADMSG);
	xor_byte_at(x->dfd, JNAME, (off_t)(ri[5].off + ri[5].len / 2), 0x20);

	/* every byte of an early record, and of the last entry (followed by the
	 * COMMIT mark), including the length and magic bytes */
	static const size_t recs[] = { 1, 11 };
	int bad = 0;
	for (size_t k = 0; k < 2; k++) {
		const struct recinfo *q = &ri[recs[k]];
		for (size_t b = 0; b < q->len; b++) {
			xor_byte_at(x->dfd, JNAME, (off_t)(q->off + b), 0xff);
			struct vp_jreader *r = NULL;
			int rc = vp_jr_open_at(x->dfd, JNAME, &r);
			xor_byte_at(x->dfd, JNAME, (off_t)(q->off + b), 0xff);
			if (rc != -EBADMSG) {
				if (rc == 0)
					print_error("record %zu (of 13) byte %zu/%zu ^ 0xff: opened as %s, "
					            "torn=%d, %llu entries; want -EBADMSG\n",
					            recs[k], b, q->len, vp_jstate_name(vp_jr_state(r)),
					            vp_jr_torn(r), (unsigned long long)vp_jr_entries(r));
				else
					print_error("record %zu (of 13) byte %zu/%zu ^ 0xff: vp_jr_open_at "
					            "returned %d, want -EBADMSG\n",
					            recs[k], b, q->len, rc);
				bad++;
			}
			if (r)
				vp_jr_close(r);
		}
	}
	/* vp_jw_open must not "repair" such damage by cutting the journal */
	xor_byte_at(x->dfd, JNAME, (off_t)(ri[1].off + 5), 0xff);
	struct vp_jwriter *wx = NULL;
	int rcw = vp_jw_open(x->dfd, JNAME, 4, &wx);
	if (rcw == 0)
		vp_jw_close(wx);
	off_t after = file_size(x->dfd, JNAME);
	if (rcw != -EBADMSG || after != (off_t)size) {
		/* put the bytes back as far as possible for the checks below */
		print_error("length byte of record 1 flipped: vp_jw_open returned %d and left %lld of "
		            "%zu bytes\n",
		            rcw, (long long)after, size);
		bad++;
	}
	if (after == (off_t)size)
		xor_byte_at(x->dfd, JNAME, (off_t)(ri[1].off + 5), 0xff);
	if (bad)
		fail_msg("%d flipped bytes in synced records were not refused", bad);

	/* restored: opens again */
	struct vp_jreader *r = open_reader(x, JNAME);
	assert_int_equal(vp_jr_entries(r), 12);
	vp_jr_close(r);

	/* vp_jw_open validates too */
	xor_byte_at(x->dfd, JNAME, (off_t)(ri[2].off + 3), 0x01);
	struct vp_jwriter *w2 = NULL;
	assert_int_equal(vp_jw_open(x->dfd, JNAME, 4, &w2), -EBADMSG);
	assert_null(w2);
	/* and did not cut the file */
	assert_int_equal(file_size(x->dfd, JNAME), (off_t)size);
}

/* A damaged last record is never taken for a COMMIT: it is either refused
 * or treated as torn (then the journal is active). */
static void test_file_corrupt_commit_mark(void **state)
{
	struct fx *x = *state;
	struct vp_jwriter *w = create_journal(x, JNAME, 5, 4, NULL);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	vp_jw_close(w);
	struct recinfo ri[16];
	size_t size;
	assert_int_equal(walk_file(x->dfd, JNAME, ri, 16, NULL, &size), 6);
	for (size_t b = 0; b < ri[5].len; b++) {
		xor_byte_at(x->dfd, JNAME, (off_t)(ri[5].off + b), 0x04);
		struct vp_jreader *r = NULL;
		int rc = vp_jr_open_at(x->dfd, JNAME, &r);
		xor_byte_at(x->dfd, JNAME, (off_t)(ri[5].off + b), 0x04);
		if (rc == -EBADMSG)
			vp_jr_close(r);
		if (rc == 0) {
			enum vp_jstate s = vp_jr_state(r);
			uint64_t n = vp_jr_entries(r);
			vp_jr_close(r);
			if (s == VP_JSTATE_COMMITTED || n != 5)
				fail_msg("COMMIT byte %zu flipped: opened as %s with %llu entries", b,
				         vp_jstate_name(s), (unsigned long long)n);
		} else if (rc != -EBADMSG) {
			fail_msg("COMMIT byte %zu flipped: open returned %d", b, rc);
		}
	}
}

static void test_file_corrupt_header(void **state)
{
	struct fx *x = *state;
	struct vp_jwriter *w = create_journal(x, JNAME, 6, 4, NULL);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	vp_jw_close(w);
	size_t size, hlen;
	struct recinfo ri[16];
	assert_int_equal(walk_file(x->dfd, JNAME, ri, 16, &hlen, &size), 7);
	uint8_t *raw = slurp(x->dfd, JNAME, &size);
	const uint8_t *host = memmem(raw, hlen, TEST_HOST, strlen(TEST_HOST));
	assert_non_null(host);
	size_t host_off = (size_t)(host - raw);
	const uint8_t *root = memmem(raw, hlen, TEST_ROOT, strlen(TEST_ROOT));
	assert_non_null(root);
	size_t root_off = (size_t)(root - raw);
	free(raw);

	/* the brief's case: a byte of the host name */
	xor_byte_at(x->dfd, JNAME, (off_t)(host_off + 2), 0x01);
	assert_int_equal(open_rc(x, JNAME), -EBADMSG);
	xor_byte_at(x->dfd, JNAME, (off_t)(host_off + 2), 0x01);
	/* the root path */
	xor_byte_at(x->dfd, JNAME, (off_t)(root_off + 1), 0x08);
	assert_int_equal(open_rc(x, JNAME), -EBADMSG);
	xor_byte_at(x->dfd, JNAME, (off_t)(root_off + 1), 0x08);
	/* the magic */
	xor_byte_at(x->dfd, JNAME, 0, 0x01);
	assert_int_equal(open_rc(x, JNAME), -EBADMSG);
	xor_byte_at(x->dfd, JNAME, 0, 0x01);

	/* every header byte, two flips: corrupt (-EPROTO allowed for the version
	 * field). Never -ENODATA ("never completely written", which callers
	 * skip as harmless): this header was complete and records follow it. */
	static const uint8_t hflips[] = { 0x40, 0x01 };
	int bad = 0;
	for (size_t b = 0; b < hlen; b++) {
		for (size_t f = 0; f < sizeof hflips; f++) {
			xor_byte_at(x->dfd, JNAME, (off_t)b, hflips[f]);
			int rc = open_rc(x, JNAME);
			xor_byte_at(x->dfd, JNAME, (off_t)b, hflips[f]);
			if (rc != -EBADMSG && rc != -EPROTO) {
				print_error("header byte %zu/%zu ^ 0x%02x: vp_jr_open_at returned %d\n", b,
				            hlen, hflips[f], rc);
				bad++;
			}
		}
	}
	if (bad)
		fail_msg("%d flipped header bytes not refused as corrupt", bad);
	struct vp_jreader *r = open_reader(x, JNAME);
	assert_int_equal(vp_jr_entries(r), 6);
	vp_jr_close(r);

	/* a file cut inside its header, and an empty file: a header that was
	 * never completely written (journal.h: -ENODATA) */
	truncate_at(x->dfd, JNAME, (off_t)(hlen - 1));
	assert_int_equal(open_rc(x, JNAME), -ENODATA);
	truncate_at(x->dfd, JNAME, 10);
	assert_int_equal(open_rc(x, JNAME), -ENODATA);
	truncate_at(x->dfd, JNAME, 0);
	assert_int_equal(open_rc(x, JNAME), -ENODATA);
	/* not a journal at all */
	int fd = openat(x->dfd, "junk.vpj", O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	char junk[512];
	memset(junk, 'J', sizeof junk);
	assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	assert_int_equal(open_rc(x, "junk.vpj"), -EBADMSG);
	/* missing file: -ENOENT */
	assert_int_equal(open_rc(x, "missing.vpj"), -ENOENT);
}

/* vp_jw_open appends after the valid end. */
static void test_file_reopen_appends(void **state)
{
	struct fx *x = *state;
	struct vp_jheader snap;
	struct vp_jwriter *w = create_journal(x, JNAME, 5, 4, &snap);
	vp_jw_close(w);

	w = NULL;
	assert_int_equal(vp_jw_open(x->dfd, JNAME, 4, &w), 0);
	assert_non_null(w);
	assert_header_equal(&snap, vp_jw_header(w));
	assert_int_equal(vp_jw_header(w)->crc, snap.crc);
	assert_int_equal(vp_jw_pending(w), 0);
	assert_int_equal(vp_jw_sync(w, add_entries(w, 5, 8, 4)), 0);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	vp_jw_close(w);

	struct vp_jreader *r = open_reader(x, JNAME);
	assert_int_equal(vp_jr_state(r), VP_JSTATE_COMMITTED);
	assert_int_equal(vp_jr_entries(r), 8);
	assert_false(vp_jr_torn(r));
	assert_int_equal(vp_jr_valid_end(r), (uint64_t)file_size(x->dfd, JNAME));
	check_entries(r, 8);
	vp_jr_close(r);
	vp_jheader_free(&snap);
}

/* vp_jw_open cuts a torn tail, then appends after the last valid record. */
static void test_file_reopen_cuts_torn_tail(void **state)
{
	struct fx *x = *state;
	struct vp_jwriter *w = create_journal(x, JNAME, 6, 4, NULL);
	vp_jw_close(w);
	struct recinfo ri[16];
	size_t size;
	assert_int_equal(walk_file(x->dfd, JNAME, ri, 16, NULL, &size), 6);
	truncate_at(x->dfd, JNAME, (off_t)(ri[5].off + 7)); /* entry 5 is torn */

	w = NULL;
	assert_int_equal(vp_jw_open(x->dfd, JNAME, 4, &w), 0);
	/* entries 5 and 6 again, for real this time */
	assert_int_equal(vp_jw_sync(w, add_entries(w, 5, 7, 4)), 0);
	vp_jw_close(w);

	struct vp_jreader *r = open_reader(x, JNAME);
	assert_false(vp_jr_torn(r));
	assert_int_equal(vp_jr_entries(r), 7);
	assert_int_equal(vp_jr_state(r), VP_JSTATE_ACTIVE);
	assert_int_equal(vp_jr_valid_end(r), (uint64_t)file_size(x->dfd, JNAME));
	check_entries(r, 7);
	vp_jr_close(r);
	/* the garbage of the torn record is gone: record 5 starts where it did */
	struct recinfo ri2[16];
	assert_int_equal(walk_file(x->dfd, JNAME, ri2, 16, NULL, &size), 7);
	assert_int_equal(ri2[5].off, ri[5].off);
}

/* flock is per open file description: a second open in this process must
 * see the first writer's lock. */
static void test_file_lock(void **state)
{
	struct fx *x = *state;
	struct vp_jwriter *w1 = create_journal(x, JNAME, 2, 4, NULL);
	struct vp_jwriter *w2 = NULL;
	assert_int_equal(vp_jw_open(x->dfd, JNAME, 4, &w2), -EWOULDBLOCK);
	assert_null(w2);
	/* the refused open did not damage the journal the first writer is using */
	assert_int_equal(vp_jw_sync(w1, add_entries(w1, 2, 4, 4)), 0);
	assert_int_equal(vp_jw_mark(w1, VP_REC_COMMIT), 0);
	vp_jw_close(w1);

	assert_int_equal(vp_jw_open(x->dfd, JNAME, 4, &w2), 0);
	struct vp_jwriter *w3 = NULL;
	assert_int_equal(vp_jw_open(x->dfd, JNAME, 4, &w3), -EWOULDBLOCK);
	assert_null(w3);
	vp_jw_close(w2);
	assert_int_equal(vp_jw_open(x->dfd, JNAME, 4, &w3), 0);
	vp_jw_close(w3);

	struct vp_jreader *r = open_reader(x, JNAME);
	assert_int_equal(vp_jr_entries(r), 4);
	assert_int_equal(vp_jr_state(r), VP_JSTATE_COMMITTED);
	check_entries(r, 4);
	vp_jr_close(r);
}

/* vp_jw_discard drops the buffered batch; numbering stays consecutive. */
static void test_file_discard(void **state)
{
	struct fx *x = *state;
	struct vp_jwriter *w = create_journal(x, JNAME, 2, 4, NULL);
	uint32_t dropped = 0;
	for (size_t i = 100; i < 103; i++) {
		struct ent_store s;
		make_entry(i, &s);
		assert_int_equal(vp_jw_add(w, &s.e, &dropped), 0);
	}
	assert_int_equal(vp_jw_pending(w), 3);
	vp_jw_discard(w);
	assert_int_equal(vp_jw_pending(w), 0);
	assert_false(vp_jw_full(w));
	/* the dropped batch's ticket: nothing to write, and its number is not
	 * used up (no gap in the batch numbers the torn-tail rule reads) */
	off_t size = file_size(x->dfd, JNAME);
	assert_int_equal(vp_jw_sync(w, dropped), 0);
	assert_int_equal(file_size(x->dfd, JNAME), size);
	assert_int_equal(vp_jw_entries(w), 2);
	struct ent_store s2;
	uint32_t ticket;
	make_entry(2, &s2);
	assert_int_equal(vp_jw_add(w, &s2.e, &ticket), 0);
	assert_int_equal(ticket, dropped);
	ticket = add_entries(w, 3, 7, 4);
	assert_int_equal(vp_jw_sync(w, ticket), 0);
	assert_int_equal(vp_jw_entries(w), 7);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	vp_jw_close(w);
	struct vp_jreader *r = open_reader(x, JNAME);
	assert_int_equal(vp_jr_entries(r), 7);
	assert_int_equal(vp_jr_state(r), VP_JSTATE_COMMITTED);
	check_entries(r, 7); /* no trace of entries 100..102 */
	vp_jr_close(r);
}

/* vp_jr_peek: state from the last record, and whether a writer is alive. */
static void test_file_peek(void **state)
{
	struct fx *x = *state;
	enum vp_jstate st = VP_JSTATE_ROLLED_BACK;
	bool live = false;
	struct vp_jwriter *w = create_journal(x, JNAME, 5, 4, NULL);
	assert_int_equal(vp_jr_peek(x->dfd, JNAME, &st, &live, NULL), 0);
	assert_int_equal(st, VP_JSTATE_ACTIVE);
	assert_true(live); /* we hold the writer's lock */
	vp_jw_close(w);
	live = true;
	assert_int_equal(vp_jr_peek(x->dfd, JNAME, &st, &live, NULL), 0);
	assert_int_equal(st, VP_JSTATE_ACTIVE);
	assert_false(live); /* active and unlocked: hot */

	static const struct {
		enum vp_rec_type mark;
		enum vp_jstate want;
	} seq[] = {
		{ VP_REC_COMMIT, VP_JSTATE_COMMITTED },
		{ VP_REC_ROLLBACK_BEGIN, VP_JSTATE_ROLLING_BACK },
		{ VP_REC_ROLLED_BACK, VP_JSTATE_ROLLED_BACK },
	};
	for (size_t i = 0; i < 3; i++) {
		w = NULL;
		assert_int_equal(vp_jw_open(x->dfd, JNAME, 4, &w), 0);
		assert_int_equal(vp_jw_mark(w, seq[i].mark), 0);
		assert_int_equal(vp_jr_peek(x->dfd, JNAME, &st, &live, NULL), 0);
		assert_int_equal(st, seq[i].want);
		assert_true(live);
		vp_jw_close(w);
		assert_int_equal(vp_jr_peek(x->dfd, JNAME, &st, &live, NULL), 0);
		assert_int_equal(st, seq[i].want);
		assert_false(live);
	}

	/* A flipped header byte is corruption. -ENODATA would mean "never
	 * completely written: nothing to recover", and callers skip such a
	 * journal: a hot journal would become invisible. */
	size_t size, hlen;
	struct recinfo ri[16];
	assert_int_equal(walk_file(x->dfd, JNAME, ri, 16, &hlen, &size), 8);
	int bad = 0;
	for (size_t b = 0; b < hlen; b++) {
		static const uint8_t hflips[] = { 0x40, 0x01 };
		for (size_t f = 0; f < sizeof hflips; f++) {
			xor_byte_at(x->dfd, JNAME, (off_t)b, hflips[f]);
			int rc = vp_jr_peek(x->dfd, JNAME, &st, &live, NULL);
			xor_byte_at(x->dfd, JNAME, (off_t)b, hflips[f]);
			if (rc != -EBADMSG && rc != -EPROTO) {
				print_error("header byte %zu/%zu ^ 0x%02x: vp_jr_peek returned %d\n", b,
				            hlen, hflips[f], rc);
				bad++;
			}
		}
	}
	if (bad)
		fail_msg("%d flipped header bytes not reported as corrupt by vp_jr_peek", bad);

	/* a cut last record reads as ACTIVE (journal.h) */
	truncate_at(x->dfd, JNAME, (off_t)(size - 3));
	assert_int_equal(vp_jr_peek(x->dfd, JNAME, &st, &live, NULL), 0);
	assert_int_equal(st, VP_JSTATE_ACTIVE);
	/* a header never completely written */
	truncate_at(x->dfd, JNAME, (off_t)(hlen - 1));
	assert_int_equal(vp_jr_peek(x->dfd, JNAME, &st, &live, NULL), -ENODATA);
	truncate_at(x->dfd, JNAME, 0);
	assert_int_equal(vp_jr_peek(x->dfd, JNAME, &st, &live, NULL), -ENODATA);
	assert_int_equal(vp_jr_peek(x->dfd, "missing.vpj", &st, &live, NULL), -ENOENT);
}

/* O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600 whatever the umask. */
static void test_file_create_exclusive(void **state)
{
	struct fx *x = *state;
	mode_t old = umask(0);
	struct vp_jwriter *w = create_journal(x, JNAME, 1, 4, NULL);
	umask(old);
	struct stat st;
	assert_int_equal(fstatat(x->dfd, JNAME, &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	vp_jw_close(w);
	off_t size = file_size(x->dfd, JNAME);

	struct vp_jheader h;
	make_header(&h);
	struct vp_jwriter *w2 = NULL;
	assert_int_equal(vp_jw_create(x->dfd, JNAME, &h, 4, &w2), -EEXIST);
	assert_null(w2);
	assert_int_equal(file_size(x->dfd, JNAME), size); /* not truncated */

	/* a symlink planted at the name (dangling or not) is not followed */
	assert_int_equal(symlinkat("target.vpj", x->dfd, "link.vpj"), 0);
	assert_int_equal(vp_jw_create(x->dfd, "link.vpj", &h, 4, &w2), -EEXIST);
	assert_int_equal(faccessat(x->dfd, "target.vpj", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(symlinkat(JNAME, x->dfd, "link2.vpj"), 0);
	assert_int_equal(vp_jw_create(x->dfd, "link2.vpj", &h, 4, &w2), -EEXIST);
	assert_int_equal(file_size(x->dfd, JNAME), size);
	vp_jheader_free(&h);

	/* a dangling link is no journal */
	assert_true(open_rc(x, "link.vpj") < 0);
}

/* ---- group commit: the writer as the engine's --jobs workers use it ---- */

#define GC_DEV 42u
#define GC_MAX_THREADS 8

struct gc_rec {
	char path[96];
	struct vp_jentry e;
};

/* Record j of thread t: (t, j) is in the inode number, so a record read
 * back says whose it is; paths of varied lengths give batches of varied
 * sizes. */
static void gc_entry(unsigned t, unsigned j, struct gc_rec *r)
{
	static const char pad[] = "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp";
	memset(r, 0, sizeof *r);
	int n = snprintf(r->path, sizeof r->path, "t%u/%.*sr%u", t, (int)(j % 9) * 7, pad, j);
	r->e.path = r->path;
	r->e.path_len = (uint32_t)n;
	r->e.dev = GC_DEV;
	r->e.ino = (uint64_t)t << 32 | j;
	r->e.uid = t;
	r->e.gid = j;
	r->e.mode = S_IFREG | 0644;
	r->e.new_uid = 1000 + t;
	r->e.new_gid = j;
	r->e.new_mode = S_IFREG | 0644;
	r->e.changes = VP_CH_UID;
}

struct gc_worker {
	struct vp_jwriter *w;
	pthread_barrier_t *start;
	unsigned id, n, every;
	uint32_t *ticket;     /* per record: what vp_jw_add() gave */
	uint64_t *durable_at; /* per record: the durable file size when the
	                       * vp_jw_sync() that covered it returned */
	unsigned syncs;
	char err[160];        /* cmocka's checks are for the main thread only */
};

/* One worker: add n records, and after every `every` of them (and the last)
 * ask for the batch of the newest one to be durable, as flush_batch() does. */
static void *gc_run(void *arg)
{
	struct gc_worker *g = arg;
	unsigned from = 0;

	pthread_barrier_wait(g->start);
	for (unsigned j = 0; j < g->n; j++) {
		struct gc_rec r;
		gc_entry(g->id, j, &r);
		int e = vp_jw_add(g->w, &r.e, &g->ticket[j]);
		if (e < 0) {
			snprintf(g->err, sizeof g->err, "vp_jw_add of record %u: %d", j, e);
			return NULL;
		}
		if (j > 0 && g->ticket[j] < g->ticket[j - 1]) {
			snprintf(g->err, sizeof g->err, "record %u: ticket %u after %u", j,
			         g->ticket[j], g->ticket[j - 1]);
			return NULL;
		}
		if ((j + 1) % g->every != 0 && j + 1 < g->n)
			continue;
		e = vp_jw_sync(g->w, g->ticket[j]);
		if (e < 0) {
			snprintf(g->err, sizeof g->err, "vp_jw_sync(%u) after record %u: %d",
			         g->ticket[j], j, e);
			return NULL;
		}
		g->syncs++;
		uint64_t d = watch_durable();
		for (; from <= j; from++)
			g->durable_at[from] = d;
	}
	return NULL;
}

/* nthreads workers add records concurrently, each syncing at its own pace
 * (after every 1, 6, 11 or 16 records); then a commit. Read back with the
 * reader: every record exactly once, in its worker's order, in the batch its
 * ticket named, with consecutive sequence and batch numbers (the reader
 * checked the CRCs); each one inside what had been fdatasync()ed when its
 * worker's sync returned; one fdatasync per batch (plus the mark's). */
static void group_commit_run(struct fx *x, unsigned nthreads, unsigned n)
{
	char name[64];
	snprintf(name, sizeof name, "gc-%u.vpj", nthreads);
	struct vp_jheader h;
	make_header(&h);
	struct vp_jwriter *w = NULL;
	assert_int_equal(vp_jw_create(x->dfd, name, &h, 64, &w), 0);
	vp_jheader_free(&h);
	watch_journal(x->dfd, name);

	pthread_barrier_t start;
	assert_int_equal(pthread_barrier_init(&start, NULL, nthreads), 0);
	struct gc_worker g[GC_MAX_THREADS];
	pthread_t tid[GC_MAX_THREADS];
	assert_true(nthreads <= GC_MAX_THREADS);
	for (unsigned t = 0; t < nthreads; t++) {
		g[t] = (struct gc_worker){
			.w = w, .start = &start, .id = t, .n = n, .every = 1 + (t % 4) * 5,
			.ticket = calloc(n, sizeof(uint32_t)),
			.durable_at = calloc(n, sizeof(uint64_t)),
		};
		assert_non_null(g[t].ticket);
		assert_non_null(g[t].durable_at);
		assert_int_equal(pthread_create(&tid[t], NULL, gc_run, &g[t]), 0);
	}
	unsigned syncs = 0;
	for (unsigned t = 0; t < nthreads; t++) {
		assert_int_equal(pthread_join(tid[t], NULL), 0);
		if (g[t].err[0])
			fail_msg("%u threads, worker %u: %s", nthreads, t, g[t].err);
		syncs += g[t].syncs;
	}
	pthread_barrier_destroy(&start);
	const uint64_t total = (uint64_t)nthreads * n;
	assert_int_equal(vp_jw_pending(w), 0);
	assert_int_equal(vp_jw_entries(w), total);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	unsigned calls = watch_calls();
	vp_jw_close(w);
	watch_reset(0, 0, 0);
	/* group commit: never more fdatasyncs than syncs asked for */
	assert_true(calls >= 2 && calls <= syncs + 1);

	struct vp_jreader *r = open_reader(x, name);
	assert_int_equal(vp_jr_state(r), VP_JSTATE_COMMITTED);
	assert_false(vp_jr_torn(r));
	assert_int_equal(vp_jr_entries(r), total);
	assert_int_equal(vp_jr_valid_end(r), (uint64_t)file_size(x->dfd, name));
	/* Where each record ends in the file: the header, then the entries,
	 * then the COMMIT mark. */
	struct vp_jentry e;
	uint64_t sum = 0;
	vp_jr_rewind(r);
	while (vp_jr_next(r, &e) == 1)
		sum += vp_jrec_entry_size(&e);
	uint64_t off = vp_jr_valid_end(r) - VP_REC_FRAME - sum;

	bool *seen = calloc(total, sizeof(bool));
	assert_non_null(seen);
	unsigned next_j[GC_MAX_THREADS] = { 0 };
	uint32_t batch = 0, nbatches = 0;
	uint64_t k = 0;
	int rc;
	vp_jr_rewind(r);
	while ((rc = vp_jr_next(r, &e)) == 1) {
		unsigned t = (unsigned)(e.ino >> 32), j = (unsigned)e.ino;
		if (e.dev != GC_DEV || t >= nthreads || j >= n)
			fail_msg("record %llu: not one of ours (ino %#llx)", (unsigned long long)k,
			         (unsigned long long)e.ino);
		if (seen[(uint64_t)t * n + j])
			fail_msg("record %u of worker %u is there twice", j, t);
		seen[(uint64_t)t * n + j] = true;
		struct gc_rec want;
		gc_entry(t, j, &want);
		assert_entry_equal(&want.e, &e, (size_t)k, false);
		if (e.seq != k)
			fail_msg("record %llu has sequence number %llu", (unsigned long long)k,
			         (unsigned long long)e.seq);
		if (j != next_j[t])
			fail_msg("worker %u: record %u where %u was due", t, j, next_j[t]);
		next_j[t]++;
		if (e.batch != g[t].ticket[j])
			fail_msg("worker %u record %u: in batch %u, its ticket said %u", t, j, e.batch,
			         g[t].ticket[j]);
		if (e.batch != batch) {
			if (e.batch != batch + 1)
				fail_msg("batch %u follows batch %u", e.batch, batch);
			batch = e.batch;
			nbatches++;
		}
		off += vp_jrec_entry_size(&e);
		if (off > g[t].durable_at[j])
			fail_msg("worker %u record %u ends at %llu, but its sync returned when %llu bytes were durable",
			         t, j, (unsigned long long)off, (unsigned long long)g[t].durable_at[j]);
		k++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(k, total); /* so, with no duplicate, every record is there */
	/* one fdatasync per batch and one for the mark: none twice, none skipped */
	assert_int_equal(calls, nbatches + 1);
	vp_jr_close(r);
	free(seen);
	for (unsigned t = 0; t < nthreads; t++) {
		free(g[t].ticket);
		free(g[t].durable_at);
	}
}

static void test_group_commit_threads(void **state)
{
	struct fx *x = *state;
	static const unsigned threads[] = { 1, 2, 4, 8 };
	for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++)
		group_commit_run(x, threads[i], 150);
}

/* One vp_jw_sync() on its own thread, for the leader/follower test. */
struct gc_sync {
	pthread_t thread;
	struct vp_jwriter *w;
	uint32_t ticket;
	pid_t tid;            /* set by the thread (under watch.mu) */
	int ret;
	bool after_release;   /* it returned after the held fdatasync was let go */
	uint64_t durable;     /* the durable size when it returned */
};

static void *gc_sync_run(void *arg)
{
	struct gc_sync *s = arg;

	pthread_mutex_lock(&watch.mu);
	s->tid = (pid_t)syscall(SYS_gettid);
	pthread_cond_broadcast(&watch.cv);
	pthread_mutex_unlock(&watch.mu);
	s->ret = vp_jw_sync(s->w, s->ticket);
	pthread_mutex_lock(&watch.mu);
	s->after_release = watch.release;
	s->durable = watch.durable;
	pthread_mutex_unlock(&watch.mu);
	return NULL;
}

static void gc_sync_start(struct gc_sync *s, struct vp_jwriter *w, uint32_t ticket)
{
	*s = (struct gc_sync){ .w = w, .ticket = ticket };
	assert_int_equal(pthread_create(&s->thread, NULL, gc_sync_run, s), 0);
	pthread_mutex_lock(&watch.mu);
	while (!s->tid)
		pthread_cond_wait(&watch.cv, &watch.mu);
	pthread_mutex_unlock(&watch.mu);
}

/* Wait until thread tid sleeps. On the way through vp_jw_sync() while
 * another thread's batch is in flight, the only place it can sleep is the
 * writer's condition variable: no sleep decides anything here, the loop
 * only yields until the thread got there. */
static void wait_until_sleeping(pid_t tid)
{
	char path[64], buf[512];
	struct timespec t0, now;

	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fail_msg("thread %d returned instead of waiting for the batch in flight",
			         (int)tid);
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		assert_true(n > 0);
		buf[n] = 0;
		const char *p = strrchr(buf, ')'); /* "pid (comm) S ..." */
		assert_non_null(p);
		if (p[1] == ' ' && p[2] == 'S')
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 60)
			fail_msg("thread %d never waited", (int)tid);
		sched_yield();
	}
}

/* Leader and followers, step by step: the leader's fdatasync of batch k is
 * held; meanwhile an entry goes into batch k+1 (adding does not wait for
 * the flush), a follower asks for batch k and another for batch k+1. The
 * follower of k returns only after the leader's fdatasync, without one of
 * its own; the one of k+1 then leads its own batch. */
static void test_group_commit_leader_followers(void **state)
{
	struct fx *x = *state;
	struct vp_jheader h;
	make_header(&h);
	struct vp_jwriter *w = NULL;
	assert_int_equal(vp_jw_create(x->dfd, JNAME, &h, 64, &w), 0);
	vp_jheader_free(&h);
	watch_journal(x->dfd, JNAME);

	struct ent_store s;
	uint32_t k, k1;
	make_entry(0, &s);
	assert_int_equal(vp_jw_add(w, &s.e, &k), 0);
	pthread_mutex_lock(&watch.mu);
	watch.hold = true;
	pthread_mutex_unlock(&watch.mu);
	struct gc_sync leader, follower, next;
	gc_sync_start(&leader, w, k);
	pthread_mutex_lock(&watch.mu);
	while (!watch.held)
		pthread_cond_wait(&watch.cv, &watch.mu);
	pthread_mutex_unlock(&watch.mu);

	/* batch k is in flight: a new entry goes into k+1 at once */
	make_entry(1, &s);
	assert_int_equal(vp_jw_add(w, &s.e, &k1), 0);
	assert_int_equal(k1, k + 1);
	assert_int_equal(vp_jw_pending(w), 1);
	gc_sync_start(&follower, w, k);
	wait_until_sleeping(follower.tid);
	gc_sync_start(&next, w, k1);
	wait_until_sleeping(next.tid);
	assert_int_equal(watch_calls(), 0);

	pthread_mutex_lock(&watch.mu);
	watch.release = true;
	pthread_cond_broadcast(&watch.cv);
	pthread_mutex_unlock(&watch.mu);
	assert_int_equal(pthread_join(leader.thread, NULL), 0);
	assert_int_equal(pthread_join(follower.thread, NULL), 0);
	assert_int_equal(pthread_join(next.thread, NULL), 0);
	assert_int_equal(leader.ret, 0);
	assert_int_equal(follower.ret, 0);
	assert_int_equal(next.ret, 0);
	assert_true(follower.after_release);
	assert_true(next.after_release);
	/* two batches, two fdatasyncs: the follower of k had none of its own */
	assert_int_equal(watch_calls(), 2);
	size_t size = (size_t)file_size(x->dfd, JNAME);
	assert_true(next.durable == size);
	assert_int_equal(vp_jw_pending(w), 0);
	assert_int_equal(vp_jw_entries(w), 2);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	vp_jw_close(w);
	watch_reset(0, 0, 0);

	struct recinfo ri[4];
	assert_int_equal(walk_file(x->dfd, JNAME, ri, 4, NULL, NULL), 3);
	struct vp_jreader *r = open_reader(x, JNAME);
	assert_int_equal(vp_jr_state(r), VP_JSTATE_COMMITTED);
	check_entries(r, 2);
	struct vp_jentry e;
	vp_jr_rewind(r);
	assert_int_equal(vp_jr_next(r, &e), 1);
	assert_int_equal(e.batch, k);
	/* the leader and the follower of k returned with batch k durable */
	assert_true(leader.durable >= ri[0].off + ri[0].len);
	assert_true(follower.durable >= ri[0].off + ri[0].len);
	assert_int_equal(vp_jr_next(r, &e), 1);
	assert_int_equal(e.batch, k1);
	vp_jr_close(r);
}

/* A batch that cannot be made durable: the error is sticky (adds and syncs
 * fail with it, a mark is refused) and the file keeps only durable records,
 * until vp_jw_discard(); then the lost batch's number is used again. */
static void test_group_commit_failure(void **state)
{
	struct fx *x = *state;
	struct vp_jwriter *w = create_journal(x, JNAME, 2, 4, NULL);
	watch_journal(x->dfd, JNAME);
	off_t size = file_size(x->dfd, JNAME);
	struct ent_store s;
	uint32_t t, t2;
	make_entry(2, &s);
	assert_int_equal(vp_jw_add(w, &s.e, &t), 0);
	pthread_mutex_lock(&watch.mu);
	watch.fail_errno = EIO;
	pthread_mutex_unlock(&watch.mu);
	assert_int_equal(vp_jw_sync(w, t), -EIO);
	assert_int_equal(file_size(x->dfd, JNAME), size); /* the written batch was cut */
	assert_int_equal(vp_jw_sync(w, t), -EIO);
	make_entry(3, &s);
	assert_int_equal(vp_jw_add(w, &s.e, &t2), -EIO);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), -EBUSY);
	assert_int_equal(vp_jw_entries(w), 2);
	vp_jw_discard(w);
	make_entry(2, &s);
	assert_int_equal(vp_jw_add(w, &s.e, &t2), 0);
	assert_int_equal(t2, t);
	assert_int_equal(vp_jw_sync(w, t2), 0);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	vp_jw_close(w);
	watch_reset(0, 0, 0);
	struct vp_jreader *r = open_reader(x, JNAME);
	assert_int_equal(vp_jr_state(r), VP_JSTATE_COMMITTED);
	assert_false(vp_jr_torn(r));
	check_entries(r, 3);
	vp_jr_close(r);
}

/* ---- version 3: the user namespace maps (issue 13) ---- */

static void put32le(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void reseal(uint8_t *b, size_t len)
{
	put32le(b + 12, (uint32_t)len);
	put32le(b + len - 4, vp_crc32c(0, b, len - 4));
}

/* A version 3 header built by hand from the layout in journal.c around
 * the extension area ext[0..xl): the make_header() fields, then the
 * extension area, resealed. */
static uint8_t *v3_with_ext(const uint8_t *ext, size_t xl, size_t *ret_len)
{
	struct vp_jheader h;
	uint8_t *v2 = NULL;
	size_t len2 = 0;

	make_header(&h);
	assert_int_equal(vp_jheader_encode(&h, &v2, &len2), 0);
	assert_int_equal(v2[8], 2);
	size_t var = len2 - 88 - 4, len = 92 + var + xl + 4;
	uint8_t *b = calloc(1, len);
	assert_non_null(b);
	memcpy(b, v2, 88);
	b[8] = 3;
	put32le(b + 88, (uint32_t)xl);
	memcpy(b + 92, v2 + 88, var);
	if (xl)
		memcpy(b + 92 + var, ext, xl);
	reseal(b, len);
	free(v2);
	vp_jheader_free(&h);
	*ret_len = len;
	return b;
}

/* An item: tag, n, then k ranges (c, h, n) from r[]. */
static size_t item_ranges(uint8_t *p, uint32_t tag, const uint32_t *r, size_t k)
{
	put32le(p, tag);
	put32le(p + 4, (uint32_t)(12 * k));
	for (size_t i = 0; i < 3 * k; i++)
		put32le(p + 8 + 4 * i, r[i]);
	return 8 + 12 * k;
}

static int decode_v3(const uint8_t *ext, size_t xl, struct vp_jheader *d)
{
	size_t len, hlen;
	uint8_t *b = v3_with_ext(ext, xl, &len);
	memset(d, 0, sizeof *d);
	int r = vp_jheader_decode(b, len, d, &hlen);
	free(b);
	return r;
}

static void make_ns_header(struct vp_jheader *h, size_t nranges)
{
	make_header(h);
	/* rootless layout: 0 is the user, 1.. the subordinate ranges */
	assert_int_equal(vp_userns_add(&h->ns, false, 0, 1000, 1), 0);
	assert_int_equal(vp_userns_add(&h->ns, true, 0, 1000, 1), 0);
	for (size_t i = 1; i < nranges; i++) {
		assert_int_equal(vp_userns_add(&h->ns, false, (uint32_t)(i * 100), (uint32_t)(100000 + i * 1000), 100), 0);
		assert_int_equal(vp_userns_add(&h->ns, true, (uint32_t)(i * 100), (uint32_t)(200000 + i * 1000), 100), 0);
	}
	assert_int_equal(vp_userns_add(&h->userns, false, 0, 100000, 65536), 0);
	assert_int_equal(vp_userns_add(&h->userns, true, 0, 100000, 65536), 0);
	h->userns.spec = strdup("user:alice");
	assert_non_null(h->userns.spec);
}

static void assert_map_equal(const struct vp_userns *a, const struct vp_userns *b)
{
	assert_int_equal(a->n_uid, b->n_uid);
	assert_int_equal(a->n_gid, b->n_gid);
	if (a->n_uid)
		assert_memory_equal(a->uid, b->uid, a->n_uid * sizeof(a->uid[0]));
	if (a->n_gid)
		assert_memory_equal(a->gid, b->gid, a->n_gid * sizeof(a->gid[0]));
	if (a->spec || b->spec) {
		assert_non_null(a->spec);
		assert_non_null(b->spec);
		assert_string_equal(a->spec, b->spec);
	}
}

static void test_header_userns_roundtrip(void **state)
{
	(void)state;
	/* 2 ranges, and the kernel's limit of 340 */
	static const size_t sizes[] = { 2, VP_USERNS_MAX_RANGES };
	for (size_t s = 0; s < 2; s++) {
		struct vp_jheader h, d;
		uint8_t *buf = NULL;
		size_t len = 0, hlen = 0;
		make_ns_header(&h, sizes[s]);
		assert_int_equal(vp_jheader_encode(&h, &buf, &len), 0);
		assert_int_equal(buf[8], VP_JOURNAL_VERSION_EXT);
		memset(&d, 0, sizeof d);
		assert_int_equal(vp_jheader_decode(buf, len, &d, &hlen), 0);
		assert_int_equal(hlen, len);
		assert_int_equal(d.version, VP_JOURNAL_VERSION_EXT);
		h.version = VP_JOURNAL_VERSION_EXT;
		assert_header_equal(&h, &d);
		assert_map_equal(&h.ns, &d.ns);
		assert_map_equal(&h.userns, &d.userns);
		assert_true(vp_jmap_equal(&h.ns, &d.ns));
		assert_false(vp_jmap_identity(&d.ns));

		/* every byte matters: a flip is corruption (or, in the
		 * version field, an unknown version), never accepted */
		int bad = 0;
		for (size_t k = 0; k < len; k++) {
			buf[k] ^= 0x10;
			struct vp_jheader x;
			memset(&x, 0, sizeof x);
			int r = vp_jheader_decode(buf, len, &x, &hlen);
			buf[k] ^= 0x10;
			if (r == 0)
				vp_jheader_free(&x);
			if (r != -EBADMSG && r != -EPROTO)
				bad++;
		}
		assert_int_equal(bad, 0);
		/* a cut one is never accepted either */
		for (size_t k = 0; k < len; k += 7) {
			struct vp_jheader x;
			memset(&x, 0, sizeof x);
			int r = vp_jheader_decode(buf, k, &x, &hlen);
			if (r == 0)
				vp_jheader_free(&x);
			assert_true(r < 0);
		}
		/* the same header without maps is version 2, as before: an older
		 * volperm reads it */
		vp_userns_free(&h.ns);
		vp_userns_free(&h.userns);
		uint8_t *b2 = NULL;
		size_t l2 = 0;
		assert_int_equal(vp_jheader_encode(&h, &b2, &l2), 0);
		assert_int_equal(b2[8], 2);
		struct vp_jheader d2;
		memset(&d2, 0, sizeof d2);
		assert_int_equal(vp_jheader_decode(b2, l2, &d2, &hlen), 0);
		assert_true(vp_userns_empty(&d2.ns));
		assert_true(vp_userns_empty(&d2.userns));
		assert_true(vp_jmap_identity(&d2.ns));
		vp_jheader_free(&d2);
		free(b2);
		free(buf);
		vp_jheader_free(&d);
		vp_jheader_free(&h);
	}
}

/* Damage behind a valid CRC: what the decoder itself refuses. */
static void test_header_userns_damage(void **state)
{
	(void)state;
	uint8_t ext[16 + 12 * 400];
	struct vp_jheader d;
	size_t n;
	static const uint32_t one[] = { 0, 100000, 65536 };
	static const uint32_t two_overlap[] = { 0, 100000, 10, 5, 200000, 10 };
	static const uint32_t host_overlap[] = { 0, 100000, 10, 20, 100005, 10 };
	static const uint32_t zero_count[] = { 0, 100000, 0 };
	static const uint32_t past_end[] = { 1, 0, 4294967295u };

	/* well formed: uid and gid map */
	n = item_ranges(ext, 1, one, 1);
	n += item_ranges(ext + n, 2, one, 1);
	assert_int_equal(decode_v3(ext, n, &d), 0);
	assert_int_equal(d.ns.n_uid, 1);
	assert_int_equal(d.ns.uid[0].h, 100000);
	vp_jheader_free(&d);

	/* an optional tag this volperm does not know is skipped ... */
	n = item_ranges(ext, 1, one, 1);
	n += item_ranges(ext + n, 2, one, 1);
	put32le(ext + n, 0x1000);
	put32le(ext + n + 4, 3);
	memcpy(ext + n + 8, "abc", 3);
	assert_int_equal(decode_v3(ext, n + 11, &d), 0);
	vp_jheader_free(&d);
	/* ... one that must be understood is an unknown version of the format */
	put32le(ext + n, 0x80001000u);
	assert_int_equal(decode_v3(ext, n + 11, &d), -EPROTO);

	struct { const char *what; size_t len; } bad[12];
	uint8_t area[12][sizeof ext];
	size_t k = 0;
#define BAD(desc) do { bad[k].what = desc; bad[k].len = n; k++; } while (0)
	/* uid map alone */
	n = item_ranges(area[k], 1, one, 1);
	BAD("uid map without gid map");
	/* out of order */
	n = item_ranges(area[k], 2, one, 1);
	n += item_ranges(area[k] + n, 1, one, 1);
	BAD("tags out of order");
	/* repeated */
	n = item_ranges(area[k], 1, one, 1);
	n += item_ranges(area[k] + n, 1, one, 1);
	n += item_ranges(area[k] + n, 2, one, 1);
	BAD("tag repeated");
	/* overlapping ranges, inside and outside */
	n = item_ranges(area[k], 1, two_overlap, 2);
	n += item_ranges(area[k] + n, 2, one, 1);
	BAD("ranges overlap inside");
	n = item_ranges(area[k], 1, host_overlap, 2);
	n += item_ranges(area[k] + n, 2, one, 1);
	BAD("ranges overlap outside");
	n = item_ranges(area[k], 1, zero_count, 1);
	n += item_ranges(area[k] + n, 2, one, 1);
	BAD("count 0");
	n = item_ranges(area[k], 1, past_end, 1);
	n += item_ranges(area[k] + n, 2, one, 1);
	BAD("range past 4294967295");
	/* 341 ranges: more than the kernel allows */
	{
		uint32_t r[3 * 341];
		for (size_t i = 0; i < 341; i++) {
			r[3 * i] = (uint32_t)i * 10;
			r[3 * i + 1] = 100000 + (uint32_t)i * 10;
			r[3 * i + 2] = 10;
		}
		n = item_ranges(area[k], 1, r, 341);
		n += item_ranges(area[k] + n, 2, one, 1);
		assert_true(n <= sizeof area[k]);
		BAD("341 ranges");
	}
	/* an item longer than the area */
	n = item_ranges(area[k], 1, one, 1);
	n += item_ranges(area[k] + n, 2, one, 1);
	put32le(area[k] + 4 + 20, 100);
	BAD("item past the area");
	/* a length that is no multiple of a range */
	n = item_ranges(area[k], 1, one, 1);
	n += item_ranges(area[k] + n, 2, one, 1);
	put32le(area[k] + 4, 11);
	n -= 1;
	memmove(area[k] + 19, area[k] + 20, n - 19);
	BAD("ranges of 11 bytes");
	/* --userns ranges without their SPEC */
	n = item_ranges(area[k], 4, one, 1);
	n += item_ranges(area[k] + n, 5, one, 1);
	BAD("--userns ranges without SPEC");
	/* version 3 with nothing in it */
	n = 0;
	BAD("empty extension area");
#undef BAD
	for (size_t i = 0; i < k; i++) {
		int r = decode_v3(area[i], bad[i].len, &d);
		if (r == 0)
			vp_jheader_free(&d);
		if (r != -EBADMSG)
			fail_msg("%s: decode returned %d, want -EBADMSG", bad[i].what, r);
	}
}

static void test_jmap_equal(void **state)
{
	(void)state;
	struct vp_userns a = VP_USERNS_INIT, b = VP_USERNS_INIT, init = VP_USERNS_INIT;
	assert_true(vp_jmap_identity(&a));
	assert_int_equal(vp_userns_add_map_text(&init, false, "0 0 4294967295\n"), 0);
	assert_int_equal(vp_userns_add_map_text(&init, true, "0 0 4294967295\n"), 0);
	assert_true(vp_jmap_identity(&init));
	assert_true(vp_jmap_equal(&a, &init)); /* no map recorded = initial */
	assert_int_equal(vp_userns_add_map_text(&a, false, "0 1000 1\n1 100000 65536\n"), 0);
	assert_int_equal(vp_userns_add_map_text(&a, true, "0 1000 1\n1 100000 65536\n"), 0);
	assert_int_equal(vp_userns_add_map_text(&b, false, "1 100000 65536\n0 1000 1\n"), 0);
	assert_int_equal(vp_userns_add_map_text(&b, true, "0 1000 1\n1 100000 65536\n"), 0);
	assert_false(vp_jmap_identity(&a));
	assert_true(vp_jmap_equal(&a, &b)); /* order does not matter */
	assert_false(vp_jmap_equal(&a, &init));
	vp_userns_free(&b);
	assert_int_equal(vp_userns_add_map_text(&b, false, "0 1000 1\n1 100000 65535\n"), 0);
	assert_int_equal(vp_userns_add_map_text(&b, true, "0 1000 1\n1 100000 65536\n"), 0);
	assert_false(vp_jmap_equal(&a, &b));
	vp_userns_free(&a);
	vp_userns_free(&b);
	vp_userns_free(&init);
}

/* A journal written with maps: vp_jw_create keeps them, the reader gives
 * them back, and vp_jr_translate gives every id (owner, group, ACL
 * qualifiers) as a host id, or -ERANGE for one the map does not have. */
static void test_file_userns_translate(void **state)
{
	struct fx *x = *state;
	struct vp_jheader h;
	struct vp_jwriter *w = NULL;
	/* ACL: user::rw-, user:5:r--, group:6:r--, mask::r--, other::--- */
	uint8_t acl[4 + 5 * 8];
	static const uint16_t tag[] = { 1, 2, 8, 0x10, 0x20 };
	static const uint32_t qid[] = { 0xffffffffu, 5, 6, 0xffffffffu, 0xffffffffu };
	put32le(acl, 2);
	for (int i = 0; i < 5; i++) {
		acl[4 + 8 * i] = (uint8_t)tag[i];
		acl[5 + 8 * i] = (uint8_t)(tag[i] >> 8);
		acl[6 + 8 * i] = 4;
		acl[7 + 8 * i] = 0;
		put32le(acl + 8 + 8 * i, qid[i]);
	}
	make_header(&h);
	assert_int_equal(vp_userns_add_map_text(&h.ns, false, "0 1000 1\n1 100000 65536\n"), 0);
	assert_int_equal(vp_userns_add_map_text(&h.ns, true, "0 1000 1\n1 200000 65536\n"), 0);
	assert_int_equal(vp_jw_create(x->dfd, JNAME, &h, 8, &w), 0);
	struct vp_jentry e = { 0 };
	uint32_t ticket;
	e.dev = 1;
	e.ino = 2;
	e.path = ".";
	e.path_len = 1;
	e.uid = 0;
	e.gid = 7;
	e.mode = S_IFDIR | 0755;
	e.new_uid = 1001;
	e.new_gid = 1001;
	e.new_mode = S_IFDIR | 0755;
	e.changes = VP_CH_UID | VP_CH_GID;
	e.acl_access = acl;
	e.acl_access_len = sizeof acl;
	e.new_acl_access = acl;
	e.new_acl_access_len = sizeof acl;
	assert_int_equal(vp_jw_add(w, &e, &ticket), 0);
	/* 65536 + 1 is past the map: no host id */
	e.path = "x";
	e.ino = 3;
	e.uid = 70000;
	e.acl_access = e.new_acl_access = NULL;
	e.acl_access_len = e.new_acl_access_len = 0;
	assert_int_equal(vp_jw_add(w, &e, &ticket), 0);
	assert_int_equal(vp_jw_sync(w, ticket), 0);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	vp_jw_close(w);

	struct vp_jreader *r = open_reader(x, JNAME);
	const struct vp_jheader *rh = vp_jr_header(r);
	assert_int_equal(rh->version, VP_JOURNAL_VERSION_EXT);
	assert_map_equal(&h.ns, &rh->ns);
	assert_true(vp_userns_empty(&rh->userns));
	/* untranslated: the namespace's ids */
	struct vp_jentry g;
	vp_jr_rewind(r);
	assert_int_equal(vp_jr_next(r, &g), 1);
	assert_int_equal(g.uid, 0);
	assert_false(vp_jr_translating(r));

	struct vp_userns host = VP_USERNS_INIT;
	assert_int_equal(vp_jr_translate(r, &rh->ns, &host), 0);
	assert_true(vp_jr_translating(r));
	vp_jr_rewind(r);
	assert_int_equal(vp_jr_next(r, &g), 1);
	assert_int_equal(g.uid, 1000);
	assert_int_equal(g.gid, 200006);
	assert_int_equal(g.new_uid, 101000);
	assert_int_equal(g.new_gid, 201000);
	for (int k = 0; k < 2; k++) {
		const uint8_t *a = k ? g.new_acl_access : g.acl_access;
		assert_int_equal(k ? g.new_acl_access_len : g.acl_access_len, sizeof acl);
		assert_memory_equal(a, acl, 16);
		assert_int_equal(a[16] | a[17] << 8 | a[18] << 16 | (uint32_t)a[19] << 24, 100004);
		assert_memory_equal(a + 20, acl + 20, 4);
		assert_int_equal(a[24] | a[25] << 8 | a[26] << 16 | (uint32_t)a[27] << 24, 200005);
		assert_memory_equal(a + 28, acl + 28, sizeof acl - 28);
	}
	assert_int_equal(vp_jr_next(r, &g), -ERANGE);
	uint32_t id;
	bool isgid;
	vp_jr_xlat_fail(r, &id, &isgid);
	assert_int_equal(id, 70000);
	assert_false(isgid);
	/* backwards too, and the window's bytes were not changed in place:
	 * a second pass gives the same answer */
	vp_jr_seek_end(r);
	assert_int_equal(vp_jr_prev(r, &g), -ERANGE);
	assert_int_equal(vp_jr_prev(r, &g), 1);
	assert_int_equal(g.uid, 1000);
	assert_int_equal(g.gid, 200006);

	/* from host ids back into a namespace with the same map: the
	 * journal's own ids again */
	assert_int_equal(vp_jr_translate(r, &rh->ns, &rh->ns), 0);
	vp_jr_rewind(r);
	assert_int_equal(vp_jr_next(r, &g), 1);
	assert_int_equal(g.uid, 0);
	assert_int_equal(g.gid, 7);
	assert_memory_equal(g.acl_access, acl, sizeof acl);
	/* identity both ways: no translation */
	assert_int_equal(vp_jr_translate(r, &host, &host), 0);
	assert_false(vp_jr_translating(r));
	vp_jr_close(r);
	vp_jheader_free(&h);
}

/* vp_jheader_set_userns records this process's maps only when they are not
 * the identity; the test runs in the initial namespace (or says why not). */
static void test_header_set_userns(void **state)
{
	(void)state;
	struct vp_jheader h;
	struct vp_userns self = VP_USERNS_INIT, given = VP_USERNS_INIT;
	make_header(&h);
	assert_int_equal(vp_userns_add(&given, false, 0, 100000, 65536), 0);
	assert_int_equal(vp_userns_add(&given, true, 0, 100000, 65536), 0);
	given.spec = strdup("--uid-map");
	assert_int_equal(vp_jheader_set_userns(&h, &given), 0);
	assert_map_equal(&given, &h.userns);
	if (vp_userns_self(&self) == 0) {
		if (vp_jmap_identity(&self))
			assert_true(vp_userns_empty(&h.ns));
		else
			assert_map_equal(&self, &h.ns);
		assert_int_equal(vp_jheader_ns_here(&h, NULL), 1);
	}
	vp_userns_free(&self);
	vp_userns_free(&given);
	vp_jheader_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_rec_entry_roundtrip),
		cmocka_unit_test(test_rec_entry_large),
		cmocka_unit_test(test_rec_entry_flips_and_prefixes),
		cmocka_unit_test(test_rec_marks),
		cmocka_unit_test(test_rec_stream),
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_header_sequence_and_v1),
		cmocka_unit_test(test_header_flips_and_prefixes),
		cmocka_unit_test(test_header_userns_roundtrip),
		cmocka_unit_test(test_header_userns_damage),
		cmocka_unit_test(test_header_set_userns),
		cmocka_unit_test(test_jmap_equal),
		cmocka_unit_test(test_jstate_names),
		cmocka_unit_test_setup_teardown(test_file_commit_read, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_many_entries, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_states, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_empty_journal, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_unflushed_dropped, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_torn_tail, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_torn_commit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_corrupt_middle, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_corrupt_commit_mark, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_corrupt_header, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_reopen_appends, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_reopen_cuts_torn_tail, fx_setup,
		                                fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_lock, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_create_exclusive, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_discard, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_peek, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_userns_translate, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_threads, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_leader_followers, fx_setup,
		                                fx_teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_failure, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
