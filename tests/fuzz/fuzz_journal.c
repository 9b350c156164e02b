/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer harness for the journal reader (src/journal.c) and the code
 * that prints journals (src/export.c).
 *
 * Each input is written as a journal file into a private directory (on
 * /dev/shm when it exists: fsync is free there), then:
 *
 *   1. vp_jr_peek(): the O(1) look at header and last record;
 *   2. vp_jr_open_at(): full validation. When it accepts the file:
 *      - forward iteration (vp_jr_next) yields exactly vp_jr_entries()
 *        entries, with strictly increasing sequence numbers, and never an
 *        error (the file was validated and nobody changes it);
 *      - backward iteration (vp_jr_prev) yields the same entries in reverse
 *        order (same sequence numbers, same paths);
 *      - every entry path is what the format promises (relative, no empty,
 *        "." or ".." component, no NUL, no trailing slash);
 *      - journal show / export --format getfacl / export --format json
 *        print it without crashing;
 *      - the user namespace maps of a version 3 header: read through them
 *        (vp_jr_translate to host ids), forward iteration gives every
 *        entry or stops at an id with no host id (-ERANGE), backward the
 *        same count; journal export's host-id step then prints or refuses;
 *      - vp_jw_open() (what rollback and recover do: cut a torn tail, append)
 *        followed by one more record (an entry and a COMMIT mark for an
 *        active journal, a ROLLBACK_BEGIN mark otherwise) gives a journal
 *        that validates again, with the expected state and entry count.
 *      When it refuses the file for damaged records (-EBADMSG with a
 *      reader), vp_jr_error() says why.
 *
 * Any violated property calls abort(), which libFuzzer reports as a crash.
 *
 * Checksums would stop a byte-level fuzzer at the first CRC: almost every
 * mutation gives a record the reader discards as torn or corrupt. So a
 * custom mutator, after libFuzzer's own mutation, re-seals half of its
 * outputs: it recomputes the header CRC and then the CRC and trailing
 * length of every record it can frame (magic, plausible length), seeded
 * with the new header CRC. Mutated fields (types, batch and sequence
 * numbers, lengths inside the payload, paths, marks in odd places) then
 * reach the checks behind the checksum.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "volperm/export.h"
#include "volperm/journal.h"

#define NAME "fuzz.vpj"

static int dirfd_ = -1;
static FILE *devnull;

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "fuzz_journal: property violated: %s (%s:%d)\n", #cond, \
			        __FILE__, __LINE__);                                           \
			abort();                                                       \
		}                                                                      \
	} while (0)

static char dir_path[64];

static void remove_dir(void)
{
	(void)unlinkat(dirfd_, NAME, 0);
	(void)rmdir(dir_path);
}

static void setup(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	snprintf(dir_path, sizeof(dir_path), "%s/vp-fuzz-XXXXXX", base);
	if (!mkdtemp(dir_path)) {
		perror("mkdtemp");
		abort();
	}
	dirfd_ = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	devnull = fopen("/dev/null", "w");
	if (dirfd_ < 0 || !devnull)
		abort();
	atexit(remove_dir);
}

static void cleanup(void)
{
	(void)unlinkat(dirfd_, NAME, 0);
}

static void write_input(const uint8_t *data, size_t size)
{
	int fd;

	(void)unlinkat(dirfd_, NAME, 0);
	fd = openat(dirfd_, NAME, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0)
			abort();
		done += (size_t)n;
	}
	close(fd);
}

static bool path_ok(const char *p, size_t n)
{
	if (n == 0 || memchr(p, 0, n))
		return false;
	if (n == 1 && p[0] == '.')
		return true; /* the root */
	if (p[0] == '/' || p[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		size_t c = j - i;
		if (c == 0 || (c == 1 && p[i] == '.') || (c == 2 && p[i] == '.' && p[i + 1] == '.'))
			return false;
		i = j + 1;
	}
	return true;
}

/* Iterate forward and backward; check they agree. Returns the entry count. */
static uint64_t iterate(struct vp_jreader *r)
{
	uint64_t n = vp_jr_entries(r), i = 0, last = 0;
	uint64_t *seqs = calloc(n ? n : 1, sizeof(*seqs));
	uint32_t *plen = calloc(n ? n : 1, sizeof(*plen));
	struct vp_jentry e;
	int k;

	CHECK(seqs && plen);
	vp_jr_rewind(r);
	while ((k = vp_jr_next(r, &e)) > 0) {
		CHECK(i < n);
		CHECK(i == 0 || e.seq > last);
		CHECK(path_ok(e.path, e.path_len));
		seqs[i] = e.seq;
		plen[i] = e.path_len;
		last = e.seq;
		i++;
	}
	CHECK(k == 0);
	CHECK(i == n);
	vp_jr_seek_end(r);
	while ((k = vp_jr_prev(r, &e)) > 0) {
		CHECK(i > 0);
		i--;
		CHECK(e.seq == seqs[i]);
		CHECK(e.path_len == plen[i]);
	}
	CHECK(k == 0);
	CHECK(i == 0);
	/* and forward again after going backward */
	vp_jr_rewind(r);
	while ((k = vp_jr_next(r, &e)) > 0)
		i++;
	CHECK(k == 0 && i == n);
	free(seqs);
	free(plen);
	return n;
}

/* Reopen for appending, add a record, and check that the result validates. */
static void append_and_revalidate(enum vp_jstate state, uint64_t entries)
{
	struct vp_jwriter *w = NULL;
	struct vp_jreader *r = NULL;
	enum vp_jstate want;
	uint64_t want_entries = entries;
	int e;

	e = vp_jw_open(dirfd_, NAME, 4, &w);
	if (e < 0) {
		/* It validated a moment ago: only resource errors may fail here. */
		CHECK(e == -ENOMEM || e == -ENOSPC || e == -EIO || e == -EFBIG);
		return;
	}
	if (state == VP_JSTATE_ACTIVE) {
		static const uint8_t acl[] = { 2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
		                               4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
		                               0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff };
		struct vp_jentry je = {
			.dev = 1, .ino = 2, .uid = 0, .gid = 0, .mode = 0100644,
			.new_uid = 1001, .new_gid = 1001, .new_mode = 0100644, .changes = 3,
			.path = "fuzz/appended", .path_len = 13,
			.acl_access = acl, .acl_access_len = sizeof(acl),
		};
		uint32_t ticket;
		CHECK(vp_jw_add(w, &je, &ticket) == 0);
		e = vp_jw_sync(w, ticket);
		CHECK(e == 0);
		e = vp_jw_mark(w, VP_REC_COMMIT);
		CHECK(e == 0);
		want = VP_JSTATE_COMMITTED;
		want_entries++;
	} else {
		e = vp_jw_mark(w, VP_REC_ROLLBACK_BEGIN);
		CHECK(e == 0);
		want = VP_JSTATE_ROLLING_BACK;
	}
	vp_jw_close(w);
	e = vp_jr_open_at(dirfd_, NAME, &r);
	if (e != 0)
		fprintf(stderr, "fuzz_journal: reopen after append: %d %s\n", e, r ? vp_jr_error(r) : "");
	CHECK(e == 0);
	CHECK(vp_jr_state(r) == want);
	CHECK(vp_jr_entries(r) == want_entries);
	CHECK(!vp_jr_torn(r));
	CHECK(iterate(r) == want_entries);
	vp_jr_close(r);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Re-seal a journal image in place: header CRC, then every frameable record. */
static void reseal(uint8_t *d, size_t size)
{
	uint32_t hl, seed;
	size_t off;

	if (size < 84)
		return;
	hl = rd32(d + 12);
	if (hl < 84 || hl > size)
		return;
	seed = vp_crc32c(0, d, hl - 4);
	wr32(d + hl - 4, seed);
	for (off = hl; off + VP_REC_FRAME <= size;) {
		uint32_t len = rd32(d + off + 4);
		if (rd32(d + off) != VP_REC_MAGIC || len < VP_REC_FRAME || len > size - off)
			break;
		wr32(d + off + len - 8, vp_crc32c(seed, d + off, len - 8));
		wr32(d + off + len - 4, len);
		off += len;
	}
}

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	size = LLVMFuzzerMutate(data, size, max_size);
	if (seed & 1)
		reseal(data, size);
	return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vp_jreader *r = NULL;
	enum vp_jstate state = VP_JSTATE_ACTIVE;
	bool live = true;
	int e;

	if (dirfd_ < 0)
		setup();
	if (size > (4u << 20))
		return 0;
	write_input(data, size);

	e = vp_jr_peek(dirfd_, NAME, &state, &live, NULL);
	if (e == 0)
		CHECK(!live); /* nobody holds its lock */

	e = vp_jr_open_at(dirfd_, NAME, &r);
	if (e == -EBADMSG) {
		/* Damage among the records: the reader comes back with the reason.
		 * (A bad header gives -EBADMSG without a reader.) */
		if (r) {
			CHECK(vp_jr_error(r)[0] != 0);
			vp_jr_close(r);
		}
		cleanup();
		return 0;
	}
	if (e < 0) {
		CHECK(e == -ENODATA || e == -EPROTO || e == -EBADMSG);
		cleanup();
		return 0;
	}
	uint64_t n = iterate(r);
	enum vp_jstate st = vp_jr_state(r);
	CHECK(vp_jr_valid_end(r) <= size);
	/* The O(1) peek agrees with the full scan, except that a torn tail
	 * reads as active to the peek (its last bytes are not a valid mark). */
	if (!vp_jr_torn(r)) {
		CHECK(vp_jr_peek(dirfd_, NAME, &state, &live, NULL) == 0);
		CHECK(state == st);
	}
	vp_jr_rewind(r);
	(void)vp_export_show(devnull, NAME, r);
	vp_jr_rewind(r);
	(void)vp_export_getfacl(devnull, r);
	vp_jr_rewind(r);
	(void)vp_export_json(devnull, r);
	/* Version 3: the recorded maps. Translated to host ids, every entry
	 * still comes out (or -ERANGE names an id), in both directions, and
	 * the export prints. */
	{
		char why[512];
		struct vp_userns host = VP_USERNS_INIT;
		const struct vp_jheader *h = vp_jr_header(r);
		CHECK(vp_jmap_equal(&h->ns, &h->ns));
		if (vp_jr_translate(r, &h->ns, &host) == 0) {
			struct vp_jentry e;
			uint64_t k = 0;
			int m;
			vp_jr_rewind(r);
			while ((m = vp_jr_next(r, &e)) > 0)
				k++;
			CHECK(m == 0 || m == -ERANGE);
			CHECK(m != 0 || k == n);
			if (m == 0) {
				vp_jr_seek_end(r);
				while ((m = vp_jr_prev(r, &e)) > 0)
					k--;
				CHECK(m == 0 && k == 0);
			}
		}
		int x = vp_export_host_ids(r, NAME, why, sizeof(why));
		CHECK(x == 0 || x == -ERANGE || x == -ENOMEM);
		if (x == 0) {
			vp_jr_rewind(r);
			(void)vp_export_getfacl(devnull, r);
		}
	}
	vp_jr_close(r);

	append_and_revalidate(st, n);
	cleanup();
	return 0;
}
