/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sharded runs (see shard.h and docs/scale-out.md): the run manifest, the
 * partition, the shard identity, the hard-link sightings and the run state.
 *
 * WHY THE MANIFEST IS BINARY. It holds paths, and paths are arbitrary bytes
 * (newlines included): a line-based text form would need an escaping of its
 * own, and a reader of it would need the same care as this one anyway. The
 * journal already has a binary, little-endian, length-prefixed, CRC-32C
 * checked format whose decoder is fuzzed; the manifest follows the same
 * conventions (and the journal's path rule, vp_jpath_ok), so there is one way to read
 * untrusted bytes in volperm, not two. People read it through `volperm
 * shard status`, as they read journals through `journal show`.
 *
 * MANIFEST LAYOUT (version 1, integers little-endian)
 *      0  8  magic "VOLPERMM"
 *      8  4  version (1)
 *     12  4  flags (0)
 *     16  8  L, the file's length including the CRC
 *     24 16  run id
 *     40  8  created, ns since the epoch
 *     48  8  root st_dev       56  8  root st_ino      64  8  f_fsid
 *     72  4  N (shards)
 *     76  4  host length h     80  4  root length r    84  4  policy length p
 *     88  4  above count A     92  4  bucket count B
 *     96  .  host, root path, policy text (vp_policy_to_text)
 *      .     A above records:  8 dev, 8 ino, 4 path length, path
 *      .     B bucket records: 1 kind, 3 zero, 4 shard, 8 estimate, 8 dev,
 *                              8 ino, 4 path length, path
 *    L-4  4  CRC-32C of bytes [0, L-4)
 * Every length is checked against what is left before it is used; the
 * counts cannot claim more records than the bytes could hold; the CRC is
 * checked before any field is believed, so a flipped byte is -EBADMSG; a
 * manifest with a good CRC must still satisfy every invariant of shard.h.
 *
 * SIGHTINGS LAYOUT (version 1), written once per shard, atomically:
 *      0  8  magic "VOLPERMS"    8  4  version (1)    12  4  shard K
 *     16 16  run id             32 16  host key (boot id)
 *     48  .  records: 4 R (length, 80 + path length), 8 dev, 8 ino, 8 fsid,
 *            8 nlink, 8 parent dev, 8 parent ino, 4 uid, 4 gid, 4 mode,
 *            8 ctime s, 4 ctime ns, 4 path length, path
 *      .     trailer: 8 "VPSEND\0\0", 8 record count, 4 CRC-32C of all
 *            bytes before it
 * One CRC for the whole file rather than one per record: the file is
 * renamed into place only when complete, so there is no torn tail to tell
 * apart from damage; any damage refuses the whole file.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "le.h"
#include "crc32c.h"
#include "pin.h"
#include "volperm/shard.h"

extern char **environ;

/* The manifest's order: bytewise, a prefix before what extends it. */
static int pathcmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

/* The parent of a relative path ("a/b" -> "a", "a" -> "."); false for ".". */
static bool parent_of(const char *p, size_t n, const char **pp, size_t *pn)
{
	if (n == 1 && p[0] == '.')
		return false;
	const char *slash = memrchr(p, '/', n);
	if (!slash) {
		*pp = ".";
		*pn = 1;
	} else {
		*pp = p;
		*pn = (size_t)(slash - p);
	}
	return true;
}

static char *dup_bytes(const void *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = 0;
	}
	return s;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t fsid_of(int fd)
{
	struct statfs sfs;
	uint32_t v[2];

	if (fstatfs(fd, &sfs) < 0)
		return 0;
	memcpy(v, &sfs.f_fsid, sizeof(v));
	return (uint64_t)v[0] | (uint64_t)v[1] << 32;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read a whole regular file of at most max bytes, opened O_NOFOLLOW. */
static int read_file_at(int dirfd, const char *name, size_t max, uint8_t **ret, size_t *ret_len)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EBADMSG;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		r = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EBADMSG; /* shrank under us */
			free(buf);
			goto out;
		}
		done += (size_t)n;
	}
	*ret = buf;
	*ret_len = done;
out:
	close(fd);
	return r;
}

/* Create a unique temporary file next to `final` for an atomic write. */
static int tmp_create(int dirfd, const char *final, char *tmp, size_t size)
{
	for (int i = 0; i < 16; i++) {
		uint32_t rnd;
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint32_t)now_ns() ^ (uint32_t)getpid() * 2654435761u;
		snprintf(tmp, size, ".%s.%08" PRIx32 ".tmp", final, rnd);
		int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd < 0 ? -errno : fd;
	}
	return -EEXIST;
}

/* ---- run id ---- */

int vp_run_id_new(struct vp_run_id *id)
{
	struct vp_run_id v;
	size_t done = 0;

	while (done < sizeof(v.b)) {
		ssize_t n = getrandom(v.b + done, sizeof(v.b) - done, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	*id = v;
	return 0;
}

void vp_run_id_hex(const struct vp_run_id *id, char out[VP_RUN_ID_HEX])
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < VP_RUN_ID_LEN; i++) {
		out[2 * i] = hex[id->b[i] >> 4];
		out[2 * i + 1] = hex[id->b[i] & 15];
	}
	out[2 * VP_RUN_ID_LEN] = 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vp_run_id_parse(const char *s, struct vp_run_id *id)
{
	struct vp_run_id v;

	if (!s || strlen(s) != 2 * VP_RUN_ID_LEN)
		return -EINVAL;
	for (size_t i = 0; i < VP_RUN_ID_LEN; i++) {
		int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		v.b[i] = (uint8_t)(hi << 4 | lo);
	}
	*id = v;
	return 0;
}

bool vp_run_id_eq(const struct vp_run_id *a, const struct vp_run_id *b)
{
	return memcmp(a->b, b->b, VP_RUN_ID_LEN) == 0;
}

/* ---- manifest: memory ---- */

void vp_manifest_init(struct vp_manifest *m)
{
	memset(m, 0, sizeof(*m));
	m->version = VP_MANIFEST_VERSION;
}

void vp_manifest_free(struct vp_manifest *m)
{
	if (!m)
		return;
	free(m->root);
	free(m->host);
	free(m->policy);
	for (size_t i = 0; i < m->n_buckets; i++)
		free(m->buckets[i].path);
	free(m->buckets);
	for (size_t i = 0; i < m->n_above; i++)
		free(m->above[i].path);
	free(m->above);
	vp_manifest_init(m);
}

int vp_manifest_prepare(struct vp_manifest *m, int root_fd, const char *root_path,
                        const struct vp_policy *policy, uint32_t n_shards)
{
	struct vp_manifest n;
	struct stat st;
	char host[256] = "";
	int r;

	if (n_shards < 1 || n_shards > VP_SHARD_MAX)
		return -ERANGE;
	if (!root_path || root_path[0] != '/')
		return -EINVAL;
	if (fstat(root_fd, &st) < 0)
		return -errno;
	vp_manifest_init(&n);
	r = vp_run_id_new(&n.id);
	if (r < 0)
		return r;
	n.created_ns = now_ns();
	n.n_shards = n_shards;
	n.root_dev = (uint64_t)st.st_dev;
	n.root_ino = (uint64_t)st.st_ino;
	n.fsid = fsid_of(root_fd);
	(void)gethostname(host, sizeof(host) - 1);
	n.host = strdup(host);
	n.root = strdup(root_path);
	if (!n.host || !n.root) {
		vp_manifest_free(&n);
		return -ENOMEM;
	}
	struct vp_policy none;
	vp_policy_init(&none);
	r = vp_policy_to_text(policy ? policy : &none, &n.policy, &n.policy_len);
	if (r < 0) {
		vp_manifest_free(&n);
		return r;
	}
	/* Keep what the caller's m held besides (nothing, normally). */
	vp_manifest_free(m);
	*m = n;
	return 0;
}

/* ---- manifest: lookups ---- */

static long find_above(const struct vp_manifest *m, const char *p, size_t n)
{
	size_t lo = 0, hi = m->n_above;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = pathcmp(m->above[mid].path, m->above[mid].path_len, p, n);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static long find_bucket(const struct vp_manifest *m, const char *p, size_t n)
{
	size_t lo = 0, hi = m->n_buckets;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = pathcmp(m->buckets[mid].path, m->buckets[mid].path_len, p, n);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

enum vp_manifest_where vp_manifest_lookup(const struct vp_manifest *m, const char *path,
                                          size_t len, size_t *idx)
{
	long i = find_above(m, path, len);
	if (i >= 0) {
		*idx = (size_t)i;
		return VP_WHERE_ABOVE;
	}
	i = find_bucket(m, path, len);
	if (i >= 0 && m->buckets[i].kind == VP_BUCKET_SUBTREE) {
		*idx = (size_t)i;
		return VP_WHERE_SUBTREE;
	}
	return VP_WHERE_NONE;
}

long vp_manifest_files_bucket(const struct vp_manifest *m, size_t above_idx)
{
	if (above_idx >= m->n_above)
		return -ENOENT;
	long i = find_bucket(m, m->above[above_idx].path, m->above[above_idx].path_len);
	if (i < 0 || m->buckets[i].kind != VP_BUCKET_FILES)
		return -ENOENT;
	return i;
}

uint64_t vp_manifest_shard_estimate(const struct vp_manifest *m, uint32_t k)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < m->n_buckets; i++)
		if (m->buckets[i].shard == k)
			sum += m->buckets[i].estimate;
	return sum;
}

static size_t depth_of(const char *p, size_t n)
{
	size_t d = 0;
	if (n == 1 && p[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		d += p[i] == '/';
	return d + 1;
}

static int cmp_above_order(const void *a, const void *b, void *arg)
{
	const struct vp_manifest *m = arg;
	const struct vp_above *x = &m->above[*(const size_t *)a];
	const struct vp_above *y = &m->above[*(const size_t *)b];
	size_t dx = depth_of(x->path, x->path_len), dy = depth_of(y->path, y->path_len);
	if (dx != dy)
		return dx > dy ? -1 : 1;
	return pathcmp(x->path, x->path_len, y->path, y->path_len);
}

int vp_manifest_above_order(const struct vp_manifest *m, size_t **ret)
{
	size_t *v = malloc((m->n_above ? m->n_above : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_above; i++)
		v[i] = i;
	qsort_r(v, m->n_above, sizeof(*v), cmp_above_order, (void *)m);
	*ret = v;
	return 0;
}

/* ---- manifest: invariants and codec ---- */

#define M_FIXED 96u
#define M_ABOVE_FIXED 20u
#define M_BUCKET_FIXED 36u

int vp_manifest_validate(const struct vp_manifest *m)
{
	if (m->n_shards < 1 || m->n_shards > VP_SHARD_MAX)
		return -EBADMSG;
	if (!m->root || m->root[0] != '/' || !m->host || (!m->policy && m->policy_len))
		return -EBADMSG;
	for (size_t i = 0; i < m->n_above; i++) {
		const struct vp_above *a = &m->above[i];
		if (!vp_jpath_ok(a->path, a->path_len))
			return -EBADMSG;
		if (i && pathcmp(m->above[i - 1].path, m->above[i - 1].path_len, a->path,
		                 a->path_len) >= 0)
			return -EBADMSG;
	}
	for (size_t i = 0; i < m->n_buckets; i++) {
		const struct vp_bucket *b = &m->buckets[i];
		if (!vp_jpath_ok(b->path, b->path_len) || b->shard >= m->n_shards ||
		    (b->kind != VP_BUCKET_SUBTREE && b->kind != VP_BUCKET_FILES))
			return -EBADMSG;
		if (i && pathcmp(m->buckets[i - 1].path, m->buckets[i - 1].path_len, b->path,
		                 b->path_len) >= 0)
			return -EBADMSG;
	}
	if (find_above(m, ".", 1) < 0)
		return -EBADMSG;
	for (size_t i = 0; i < m->n_above; i++) {
		const struct vp_above *a = &m->above[i];
		const char *pp;
		size_t pn;
		if (parent_of(a->path, a->path_len, &pp, &pn) && find_above(m, pp, pn) < 0)
			return -EBADMSG;
		if (vp_manifest_files_bucket(m, i) < 0)
			return -EBADMSG;
	}
	for (size_t i = 0; i < m->n_buckets; i++) {
		const struct vp_bucket *b = &m->buckets[i];
		const char *pp;
		size_t pn;
		if (b->kind == VP_BUCKET_FILES) {
			if (find_above(m, b->path, b->path_len) < 0)
				return -EBADMSG;
			continue;
		}
		/* A subtree: not above, and directly below an above directory
		 * (so no bucket or above directory can be inside it). */
		if (find_above(m, b->path, b->path_len) >= 0 ||
		    !parent_of(b->path, b->path_len, &pp, &pn) || find_above(m, pp, pn) < 0)
			return -EBADMSG;
	}
	/* The policy text must be exactly what this volperm writes for it:
	 * the comparison of a policy given again is a byte comparison. */
	struct vp_policy p;
	char *text = NULL;
	size_t tlen = 0;
	int r = vp_policy_from_text(m->policy ? m->policy : "", m->policy_len, &p);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return -EBADMSG;
	r = vp_policy_to_text(&p, &text, &tlen);
	vp_policy_free(&p);
	if (r < 0)
		return r;
	r = tlen == m->policy_len && (tlen == 0 || memcmp(text, m->policy, tlen) == 0) ? 0
	                                                                               : -EBADMSG;
	free(text);
	return r;
}

int vp_manifest_encode(const struct vp_manifest *m, uint8_t **ret, size_t *ret_len)
{
	size_t hl, rl, len;
	uint8_t *b, *p;
	int r = vp_manifest_validate(m);

	if (r == -EBADMSG)
		return -EINVAL;
	if (r < 0)
		return r;
	hl = strlen(m->host);
	rl = strlen(m->root);
	len = M_FIXED + hl + rl + m->policy_len + 4;
	for (size_t i = 0; i < m->n_above; i++)
		len += M_ABOVE_FIXED + m->above[i].path_len;
	for (size_t i = 0; i < m->n_buckets; i++)
		len += M_BUCKET_FIXED + m->buckets[i].path_len;
	if (len > VP_MANIFEST_MAX || m->n_above > UINT32_MAX || m->n_buckets > UINT32_MAX)
		return -E2BIG;
	b = calloc(1, len);
	if (!b)
		return -ENOMEM;
	memcpy(b, VP_MANIFEST_MAGIC, 8);
	vp_put32(b + 8, VP_MANIFEST_VERSION);
	vp_put32(b + 12, 0);
	vp_put64(b + 16, len);
	memcpy(b + 24, m->id.b, VP_RUN_ID_LEN);
	vp_put64(b + 40, m->created_ns);
	vp_put64(b + 48, m->root_dev);
	vp_put64(b + 56, m->root_ino);
	vp_put64(b + 64, m->fsid);
	vp_put32(b + 72, m->n_shards);
	vp_put32(b + 76, (uint32_t)hl);
	vp_put32(b + 80, (uint32_t)rl);
	vp_put32(b + 84, (uint32_t)m->policy_len);
	vp_put32(b + 88, (uint32_t)m->n_above);
	vp_put32(b + 92, (uint32_t)m->n_buckets);
	p = b + M_FIXED;
	memcpy(p, m->host, hl);
	p += hl;
	memcpy(p, m->root, rl);
	p += rl;
	if (m->policy_len)
		memcpy(p, m->policy, m->policy_len);
	p += m->policy_len;
	for (size_t i = 0; i < m->n_above; i++) {
		const struct vp_above *a = &m->above[i];
		vp_put64(p, a->dev);
		vp_put64(p + 8, a->ino);
		vp_put32(p + 16, (uint32_t)a->path_len);
		memcpy(p + 20, a->path, a->path_len);
		p += M_ABOVE_FIXED + a->path_len;
	}
	for (size_t i = 0; i < m->n_buckets; i++) {
		const struct vp_bucket *k = &m->buckets[i];
		p[0] = (uint8_t)k->kind;
		vp_put32(p + 4, k->shard);
		vp_put64(p + 8, k->estimate);
		vp_put64(p + 16, k->dev);
		vp_put64(p + 24, k->ino);
		vp_put32(p + 32, (uint32_t)k->path_len);
		memcpy(p + 36, k->path, k->path_len);
		p += M_BUCKET_FIXED + k->path_len;
	}
	vp_put32(p, vp_crc32c(0, b, len - 4));
	*ret = b;
	*ret_len = len;
	return 0;
}

int vp_manifest_decode(const uint8_t *buf, size_t len, struct vp_manifest *ret)
{
	struct vp_manifest m;
	uint32_t hl, rl, pl, na, nb;
	size_t off, end;
	int r = -EBADMSG;

	if (len < M_FIXED + 4 || memcmp(buf, VP_MANIFEST_MAGIC, 8) != 0 || vp_get64(buf + 16) != len)
		return -EBADMSG;
	if (vp_crc32c(0, buf, len - 4) != vp_get32(buf + len - 4))
		return -EBADMSG;
	if (vp_get32(buf + 8) != VP_MANIFEST_VERSION)
		return -EPROTO;
	if (vp_get32(buf + 12) != 0)
		return -EBADMSG;
	end = len - 4;
	hl = vp_get32(buf + 76);
	rl = vp_get32(buf + 80);
	pl = vp_get32(buf + 84);
	na = vp_get32(buf + 88);
	nb = vp_get32(buf + 92);
	if ((uint64_t)M_FIXED + hl + rl + pl > end)
		return -EBADMSG;
	/* Counts that the bytes left could not hold are refused before any
	 * allocation sized by them. */
	off = M_FIXED + hl + rl + pl;
	if ((uint64_t)na * M_ABOVE_FIXED + (uint64_t)nb * M_BUCKET_FIXED > end - off)
		return -EBADMSG;
	vp_manifest_init(&m);
	memcpy(m.id.b, buf + 24, VP_RUN_ID_LEN);
	m.created_ns = vp_get64(buf + 40);
	m.root_dev = vp_get64(buf + 48);
	m.root_ino = vp_get64(buf + 56);
	m.fsid = vp_get64(buf + 64);
	m.n_shards = vp_get32(buf + 72);
	if (memchr(buf + M_FIXED, 0, hl) || memchr(buf + M_FIXED + hl, 0, rl))
		return -EBADMSG;
	m.host = dup_bytes(buf + M_FIXED, hl);
	m.root = dup_bytes(buf + M_FIXED + hl, rl);
	m.policy = dup_bytes(buf + M_FIXED + hl + rl, pl);
	m.policy_len = pl;
	m.above = calloc(na ? na : 1, sizeof(*m.above));
	m.buckets = calloc(nb ? nb : 1, sizeof(*m.buckets));
	if (!m.host || !m.root || !m.policy || !m.above || !m.buckets) {
		r = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < na; i++) {
		if (end - off < M_ABOVE_FIXED)
			goto fail;
		struct vp_above *a = &m.above[i];
		uint32_t n = vp_get32(buf + off + 16);
		if (n > end - off - M_ABOVE_FIXED)
			goto fail;
		a->dev = vp_get64(buf + off);
		a->ino = vp_get64(buf + off + 8);
		a->path = dup_bytes(buf + off + M_ABOVE_FIXED, n);
		a->path_len = n;
		m.n_above++;
		if (!a->path) {
			r = -ENOMEM;
			goto fail;
		}
		off += M_ABOVE_FIXED + n;
	}
	for (uint32_t i = 0; i < nb; i++) {
		if (end - off < M_BUCKET_FIXED)
			goto fail;
		struct vp_bucket *k = &m.buckets[i];
		const uint8_t *p = buf + off;
		uint32_t n = vp_get32(p + 32);
		if (n > end - off - M_BUCKET_FIXED || p[1] || p[2] || p[3])
			goto fail;
		k->kind = (enum vp_bucket_kind)p[0];
		k->shard = vp_get32(p + 4);
		k->estimate = vp_get64(p + 8);
		k->dev = vp_get64(p + 16);
		k->ino = vp_get64(p + 24);
		k->path = dup_bytes(p + M_BUCKET_FIXED, n);
		k->path_len = n;
		m.n_buckets++;
		if (!k->path) {
			r = -ENOMEM;
			goto fail;
		}
		off += M_BUCKET_FIXED + n;
	}
	if (off != end)
		goto fail;
	r = vp_manifest_validate(&m);
	if (r < 0)
		goto fail;
	*ret = m;
	return 0;
fail:
	vp_manifest_free(&m);
	return r;
}

void vp_manifest_name(char buf[VP_MANIFEST_NAME_MAX], const struct vp_run_id *id)
{
	char hex[VP_RUN_ID_HEX];
	vp_run_id_hex(id, hex);
	snprintf(buf, VP_MANIFEST_NAME_MAX, "run-%s%s", hex, VP_MANIFEST_SUFFIX);
}

/* Rename without replacing. renameat2(RENAME_NOREPLACE) where the
 * filesystem has it; else link(2), which never replaces either (NFS). */
static int rename_noreplace(int dirfd, const char *from, const char *to)
{
	if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
		return -errno;
	if (linkat(dirfd, from, dirfd, to, 0) < 0)
		return -errno;
	(void)unlinkat(dirfd, from, 0);
	return 0;
}

/* Atomic creation of name: temp file, fsync, rename, fsync of the
 * directory (so the name is durable before the caller tells anyone). */
static int write_atomic(int dirfd, const char *name, const void *buf, size_t len, bool replace)
{
	char tmp[VP_SHARD_JNAME_MAX + 32];
	int fd = tmp_create(dirfd, name, tmp, sizeof(tmp)), r;

	if (fd < 0)
		return fd;
	r = write_full(fd, buf, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0) {
		if (replace)
			r = renameat(dirfd, tmp, dirfd, name) < 0 ? -errno : 0;
		else
			r = rename_noreplace(dirfd, tmp, name);
	}
	if (r < 0) {
		(void)unlinkat(dirfd, tmp, 0);
		return r;
	}
	return fsync(dirfd) < 0 ? -errno : 0;
}

int vp_manifest_write(int jdir_fd, const struct vp_manifest *m)
{
	char name[VP_MANIFEST_NAME_MAX];
	uint8_t *buf;
	size_t len;
	int r = vp_manifest_encode(m, &buf, &len);

	if (r < 0)
		return r;
	vp_manifest_name(name, &m->id);
	r = write_atomic(jdir_fd, name, buf, len, false);
	free(buf);
	return r;
}

int vp_manifest_read(int jdir_fd, const struct vp_run_id *id, struct vp_manifest *ret)
{
	char name[VP_MANIFEST_NAME_MAX];
	struct vp_manifest m;
	uint8_t *buf;
	size_t len;
	int r;

	vp_manifest_name(name, id);
	r = read_file_at(jdir_fd, name, VP_MANIFEST_MAX, &buf, &len);
	if (r == -EFBIG)
		r = -EBADMSG;
	if (r < 0)
		return r;
	r = vp_manifest_decode(buf, len, &m);
	free(buf);
	if (r < 0)
		return r;
	if (!vp_run_id_eq(&m.id, id)) {
		vp_manifest_free(&m);
		return -EBADMSG; /* copied or renamed from another run */
	}
	*ret = m;
	return 0;
}

int vp_manifest_policy(const struct vp_manifest *m, struct vp_policy *p)
{
	int r = vp_policy_from_text(m->policy ? m->policy : "", m->policy_len, p);
	return r == -ENOMEM ? r : r < 0 ? -EBADMSG : 0;
}

int vp_manifest_policy_matches(const struct vp_manifest *m, const struct vp_policy *p)
{
	char *text = NULL;
	size_t len = 0;
	int r = vp_policy_to_text(p, &text, &len);

	if (r < 0)
		return r;
	r = len == m->policy_len && (len == 0 || memcmp(text, m->policy, len) == 0);
	free(text);
	return r;
}

int vp_manifest_check_root(const struct vp_manifest *m, int root_fd)
{
	struct stat st;

	if (fstat(root_fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_ino != m->root_ino)
		return -EXDEV;
	if (m->fsid != 0)
		return fsid_of(root_fd) == m->fsid ? 0 : -EXDEV;
	return (uint64_t)st.st_dev == m->root_dev ? 0 : -EXDEV;
}

/* ---- partition ----
 *
 * 1. Breadth first from the root: each directory expanded becomes an
 *    "above" directory (finalize changes it) with a FILES bucket for its
 *    entries, and each of its subdirectories a candidate subtree; until
 *    there are per_shard * N candidates or nothing left to expand. Levels
 *    are shallow on real trees (a data set root, users' homes, projects).
 * 2. Each candidate's size in entries is estimated: counted exactly (a
 *    depth-first count) up to count_max entries; beyond that, sampled with
 *    Knuth's random-descent estimator (Knuth 1975, "Estimating the
 *    efficiency of backtrack programs"): from the subtree's top, descend
 *    through uniformly chosen subdirectories to a leaf, adding at each
 *    level (its entries that are not subdirectories, plus itself) times
 *    the product of the subdirectory counts above it. Each descent is an
 *    unbiased estimate of the subtree's size; `probes` of them are
 *    averaged. It costs one listing per level per probe instead of a walk
 *    of the whole subtree, and it is what fpart-like tools without a full
 *    crawl do. Skewed trees (one huge directory in many small ones) give it
 *    a large variance; step 3 splits exactly those subtrees, so their
 *    parts are estimated again, closer to the leaves.
 * 3. While the largest candidate is more than half a shard's fair share
 *    and has subdirectories, it is expanded like in step 1 (N > 1 only).
 *    Estimates are independent of each other: with cfg->jobs threads they
 *    are made at once (on network storage each listing is a round trip),
 *    each candidate's sampling seeded from the run's seed and its index,
 *    so that the result is the same with any number of threads.
 * 4. Buckets are assigned largest first, each to the least loaded shard
 *    (LPT, as fpart's "-n" mode): the heaviest shard gets at most the mean
 *    plus the largest bucket, and at most 4/3 of the best possible.
 */

enum { P_CAND = 1, P_ABOVE = 2 };
enum { COUNT_DEPTH_MAX = 64 };      /* open fds of one exact count */
enum { PROBE_DEPTH_MAX = 4096 };

struct pnode {
	char *path;
	size_t len;
	uint64_t dev, ino;
	int state;
	uint64_t est;        /* P_CAND: the subtree; P_ABOVE: its FILES bucket */
	bool leaf;           /* P_CAND: no subdirectory we would enter */
	bool unreadable;
};

struct plan {
	const struct vp_partition_cfg *cfg;
	int root_fd;
	dev_t root_dev;
	bool cross;
	unsigned pin_flags;
	uint64_t rng;
	struct pnode *v;
	size_t n, cap;
	size_t n_above;
	char *pbuf;          /* path scratch for excludes */
	size_t pcap;
};

static uint64_t rnd(struct plan *pl)
{
	/* xorshift64*: deterministic for a seed, so a plan is repeatable. */
	uint64_t x = pl->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	pl->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static int pbuf_set(struct plan *pl, size_t at, const char *name, size_t *ret_len)
{
	size_t nl = strlen(name), need = at + 1 + nl + 1;
	if (need > pl->pcap) {
		size_t nc = pl->pcap ? pl->pcap : 256;
		while (nc < need)
			nc *= 2;
		char *nb = realloc(pl->pbuf, nc);
		if (!nb)
			return -ENOMEM;
		pl->pbuf = nb;
		pl->pcap = nc;
	}
	/* "." + name is just the name: paths are relative to the root. */
	if (at == 1 && pl->pbuf[0] == '.')
		at = 0;
	if (at)
		pl->pbuf[at++] = '/';
	memcpy(pl->pbuf + at, name, nl + 1);
	*ret_len = at + nl;
	return 0;
}

static int pbuf_load(struct plan *pl, const char *p, size_t n)
{
	if (n + 1 > pl->pcap) {
		size_t nc = pl->pcap ? pl->pcap : 256;
		while (nc < n + 1)
			nc *= 2;
		char *nb = realloc(pl->pbuf, nc);
		if (!nb)
			return -ENOMEM;
		pl->pbuf = nb;
		pl->pcap = nc;
	}
	memcpy(pl->pbuf, p, n);
	pl->pbuf[n] = 0;
	return 0;
}

/* Would the walk enter this entry of dirfd as a directory of the tree?
 * pbuf holds its path (for excludes); *st gets its lstat. */
static bool enterable(struct plan *pl, int dirfd, const struct dirent *de, struct stat *st)
{
	if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
		return false;
	if (fstatat(dirfd, de->d_name, st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st->st_mode))
		return false;
	if (pl->cfg->forbid && st->st_dev == pl->cfg->forbid->st_dev &&
	    st->st_ino == pl->cfg->forbid->st_ino)
		return false;
	if (pl->cfg->policy && vp_policy_excluded(pl->cfg->policy, pl->pbuf, de->d_name))
		return false;
	if (pl->cross)
		return true;
	if (st->st_dev != pl->root_dev)
		return false;
	/* A bind mount of the same filesystem: same st_dev (walk.c's rule). */
	struct statx sx;
	if (statx(dirfd, de->d_name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, 0, &sx) == 0 &&
	    (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
		return false;
	return true;
}

static bool dots(const char *n)
{
	return n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2]));
}

/* A read fd of a planned directory, checked by dev/ino. */
static int open_node(struct plan *pl, const struct pnode *nd)
{
	struct stat st;
	int pfd, fd;

	if (nd->len == 1 && nd->path[0] == '.') {
		fd = openat(pl->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	pfd = vp_pin(pl->root_fd, nd->path, nd->dev, nd->ino, &st, NULL, pl->pin_flags);
	if (pfd < 0)
		return pfd;
	fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(pfd);
	return fd < 0 ? -errno : fd;
}

static int add_node(struct plan *pl, const char *path, size_t len, const struct stat *st)
{
	if (pl->n == pl->cap) {
		size_t nc = pl->cap ? pl->cap * 2 : 64;
		struct pnode *nv = realloc(pl->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		pl->v = nv;
		pl->cap = nc;
	}
	char *copy = dup_bytes(path, len);
	if (!copy)
		return -ENOMEM;
	pl->v[pl->n++] = (struct pnode){ .path = copy, .len = len, .dev = (uint64_t)st->st_dev,
		                         .ino = (uint64_t)st->st_ino, .state = P_CAND };
	return 0;
}

/* Node i becomes an above directory; its subdirectories become candidates.
 * An unreadable directory stays a candidate leaf (estimate 1): its shard's
 * walk meets the error and reports it. */
static int expand(struct plan *pl, size_t i)
{
	struct dirent *de;
	uint64_t files = 0;
	DIR *d;
	int fd = open_node(pl, &pl->v[i]), r = 0;

	if (fd < 0) {
		if (i == 0)
			return fd;
		pl->v[i].leaf = pl->v[i].unreadable = true;
		pl->v[i].est = 1;
		return 0;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	char *base = dup_bytes(pl->v[i].path, pl->v[i].len);
	size_t blen = pl->v[i].len, before = pl->n;
	if (!base) {
		closedir(d);
		return -ENOMEM;
	}
	errno = 0;
	while ((de = readdir(d))) {
		struct stat st;
		size_t plen;
		if (dots(de->d_name))
			continue;
		r = pbuf_load(pl, base, blen);
		if (r == 0)
			r = pbuf_set(pl, blen, de->d_name, &plen);
		if (r < 0)
			break;
		if (enterable(pl, dirfd(d), de, &st)) {
			r = add_node(pl, pl->pbuf, plen, &st);
			if (r < 0)
				break;
		} else {
			files++;
		}
		errno = 0;
	}
	if (r == 0 && errno && i == 0)
		r = -errno;
	free(base);
	closedir(d);
	if (r < 0)
		return r;
	if (i > 0 && pl->n == before) {
		/* No subdirectory to hand out: splitting it would only move the
		 * directory to finalize. It stays one subtree, counted exactly. */
		pl->v[i].leaf = true;
		pl->v[i].est = 1 + files;
		return 0;
	}
	pl->v[i].state = P_ABOVE;
	pl->v[i].est = files;
	pl->n_above++;
	return 0;
}

/* One listing: entries, enterable subdirectories, and one of them chosen
 * uniformly (reservoir sampling) when choose. */
static int list_dir(struct plan *pl, int fd, size_t plen, uint64_t *n_ent, uint64_t *n_sub,
                    bool choose, char **chosen, struct stat *chosen_st)
{
	struct dirent *de;
	DIR *d;
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3), r = 0;

	*n_ent = *n_sub = 0;
	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	char *base = dup_bytes(pl->pbuf, plen);
	if (!base) {
		closedir(d);
		return -ENOMEM;
	}
	while ((de = readdir(d))) {
		struct stat st;
		size_t l;
		if (dots(de->d_name))
			continue;
		(*n_ent)++;
		r = pbuf_load(pl, base, plen);
		if (r == 0)
			r = pbuf_set(pl, plen, de->d_name, &l);
		if (r < 0)
			break;
		if (!enterable(pl, dirfd(d), de, &st))
			continue;
		(*n_sub)++;
		if (choose && rnd(pl) % *n_sub == 0) {
			char *c = strdup(de->d_name);
			if (!c) {
				r = -ENOMEM;
				break;
			}
			free(*chosen);
			*chosen = c;
			*chosen_st = st;
		}
	}
	if (r == 0)
		r = pbuf_load(pl, base, plen);
	free(base);
	closedir(d);
	return r;
}

static int open_child(int dirfd, const char *name, const struct stat *want)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_dev != want->st_dev || st.st_ino != want->st_ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* Exact count of the subtree at node nd (itself included), or -E2BIG
 * beyond count_max entries or COUNT_DEPTH_MAX levels. *top_sub gets the
 * number of subdirectories at its top. */
static int count_exact(struct plan *pl, const struct pnode *nd, uint64_t *ret, uint64_t *top_sub)
{
	struct frame {
		DIR *d;
		size_t plen;
	} stack[COUNT_DEPTH_MAX];
	size_t depth = 0;
	uint64_t total = 1, limit = pl->cfg->count_max ? pl->cfg->count_max : 4096;
	int fd = open_node(pl, nd), r = 0;

	*top_sub = 0;
	if (fd < 0)
		return fd;
	r = pbuf_load(pl, nd->path, nd->len);
	if (r < 0) {
		close(fd);
		return r;
	}
	stack[0].d = fdopendir(fd);
	if (!stack[0].d) {
		close(fd);
		return -errno;
	}
	stack[0].plen = nd->len;
	depth = 1;
	while (depth && r == 0) {
		struct frame *f = &stack[depth - 1];
		struct dirent *de = readdir(f->d);
		struct stat st;
		size_t l;
		if (!de) {
			closedir(f->d);
			depth--;
			continue;
		}
		if (dots(de->d_name))
			continue;
		if (++total > limit) {
			r = -E2BIG;
			break;
		}
		/* pbuf holds a path that begins with this frame's: the
		 * child's name goes after that prefix. */
		r = pbuf_set(pl, f->plen, de->d_name, &l);
		if (r < 0)
			break;
		if (!enterable(pl, dirfd(f->d), de, &st))
			continue;
		if (depth == 1)
			(*top_sub)++;
		int cfd = open_child(dirfd(f->d), de->d_name, &st);
		if (cfd < 0)
			continue; /* counted as one entry; its shard reports it */
		if (depth == COUNT_DEPTH_MAX) {
			close(cfd);
			r = -E2BIG;
			break;
		}
		DIR *cd = fdopendir(cfd);
		if (!cd) {
			close(cfd);
			continue;
		}
		stack[depth].d = cd;
		stack[depth].plen = l;
		depth++;
	}
	while (depth)
		closedir(stack[--depth].d);
	if (r == 0)
		*ret = total;
	return r;
}

/* Knuth's estimate of the subtree at node nd (see above). */
static int count_sampled(struct plan *pl, const struct pnode *nd, uint64_t *ret, uint64_t *top_sub)
{
	unsigned probes = pl->cfg->probes ? pl->cfg->probes : 64;
	uint64_t n_ent = 0, n_sub = 0; /* list_dir sets both; zero for -O2 flow analysis */
	double sum = 0;
	char *chosen = NULL;
	struct stat cst = { 0 }; /* set with chosen; zeroed for -O2 flow analysis */
	int fd = open_node(pl, nd), r;

	if (fd < 0)
		return fd;
	r = pbuf_load(pl, nd->path, nd->len);
	if (r == 0)
		r = list_dir(pl, fd, nd->len, &n_ent, &n_sub, false, &chosen, &cst);
	if (r < 0) {
		close(fd);
		return r;
	}
	*top_sub = n_sub;
	/* The top is listed once; each probe starts at a random subdirectory
	 * of it, chosen again by index (a second listing per probe would cost
	 * as much as the probe on a wide top). */
	for (unsigned p = 0; p < probes && n_sub && r == 0; p++) {
		uint64_t pick = rnd(pl) % n_sub, seen = 0;
		struct dirent *de;
		int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3), cur = -1;
		DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
		size_t plen = nd->len, l;
		if (!d) {
			if (dfd >= 0)
				close(dfd);
			r = -errno;
			break;
		}
		rewinddir(d);
		while ((de = readdir(d))) {
			struct stat st;
			if (dots(de->d_name))
				continue;
			r = pbuf_load(pl, nd->path, nd->len);
			if (r == 0)
				r = pbuf_set(pl, nd->len, de->d_name, &l);
			if (r < 0)
				break;
			if (enterable(pl, dirfd(d), de, &st) && seen++ == pick) {
				cur = open_child(dirfd(d), de->d_name, &st);
				plen = l;
				break;
			}
		}
		closedir(d);
		if (r < 0)
			break;
		double w = 1, est = 0;
		for (int level = 0; cur >= 0 && level < PROBE_DEPTH_MAX; level++) {
			uint64_t e, s;
			free(chosen);
			chosen = NULL;
			r = list_dir(pl, cur, plen, &e, &s, true, &chosen, &cst);
			if (r < 0)
				break;
			est += w * (double)(1 + e - s);
			if (!s || !chosen)
				break;
			w *= (double)s;
			size_t nl;
			r = pbuf_set(pl, plen, chosen, &nl);
			if (r < 0)
				break;
			int next = open_child(cur, chosen, &cst);
			close(cur);
			cur = next;
			plen = nl;
		}
		if (cur >= 0)
			close(cur);
		sum += est > 0 ? est : w; /* an unreadable pick still is one entry */
	}
	free(chosen);
	close(fd);
	if (r < 0)
		return r;
	double total = 1.0 + (double)(n_ent - n_sub) +
	               (n_sub ? (double)n_sub * sum / (double)probes : 0.0);
	*ret = total >= 1.8e19 ? UINT64_MAX : (uint64_t)(total + 0.5);
	return 0;
}

static int estimate(struct plan *pl, size_t i)
{
	struct pnode *nd = &pl->v[i];
	uint64_t est = 0, sub = 0;
	int r;

	if (nd->unreadable)
		return 0;
	r = count_exact(pl, nd, &est, &sub);
	if (r == -E2BIG)
		r = count_sampled(pl, nd, &est, &sub);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		/* Gone or unreadable since it was listed: one entry, whole. */
		nd->est = 1;
		nd->leaf = true;
		return 0;
	}
	nd->est = est;
	nd->leaf = sub == 0;
	return 0;
}

/* The sampling's seed for candidate i: the same with any number of threads. */
static uint64_t seed_for(const struct plan *pl, size_t i)
{
	uint64_t x = (pl->cfg->seed ? pl->cfg->seed : 0x9E3779B97F4A7C15ull) ^
	             ((uint64_t)i * 0xBF58476D1CE4E5B9ull);
	return x ? x : 1;
}

struct est_job {
	struct plan *pl;
	size_t from, to;          /* the candidates pl->v[from, to) */
	atomic_size_t next;
	pthread_mutex_t mu;
	int err;                  /* the first failure */
};

/* Estimate candidates until none is left: a shallow copy of the plan with
 * its own path scratch and PRNG (the nodes themselves are distinct). */
static void *est_worker(void *arg)
{
	struct est_job *j = arg;
	struct plan mine = *j->pl;
	size_t i;

	mine.pbuf = NULL;
	mine.pcap = 0;
	while ((i = atomic_fetch_add(&j->next, 1)) < j->to) {
		if (j->pl->v[i].state != P_CAND || j->pl->v[i].leaf)
			continue;
		mine.rng = seed_for(j->pl, i);
		int r = estimate(&mine, i);
		if (r < 0) {
			pthread_mutex_lock(&j->mu);
			if (!j->err)
				j->err = r;
			pthread_mutex_unlock(&j->mu);
			break;
		}
	}
	free(mine.pbuf);
	return NULL;
}

/* Estimate the candidates pl->v[from, to) with up to cfg->jobs threads.
 * (No node is added meanwhile: pl->v stays where it is.) */
static int estimate_range(struct plan *pl, size_t from, size_t to)
{
	struct est_job j = { .pl = pl, .from = from, .to = to };
	unsigned jobs = pl->cfg->jobs ? pl->cfg->jobs : 1;
	pthread_t t[256];
	unsigned started = 0;

	if (jobs > 256)
		jobs = 256;
	if (jobs > to - from)
		jobs = (unsigned)(to - from);
	atomic_init(&j.next, from);
	pthread_mutex_init(&j.mu, NULL);
	/* This thread is one of them; no thread started is not an error. */
	for (; started + 1 < jobs; started++)
		if (pthread_create(&t[started], NULL, est_worker, &j) != 0)
			break;
	est_worker(&j);
	for (unsigned k = 0; k < started; k++)
		pthread_join(t[k], NULL);
	pthread_mutex_destroy(&j.mu);
	return j.err;
}

struct slot {
	uint64_t load;
	uint32_t k;
};

static bool slot_less(const struct slot *a, const struct slot *b)
{
	return a->load < b->load || (a->load == b->load && a->k < b->k);
}

static void heap_down(struct slot *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < n && slot_less(&h[l], &h[m]))
			m = l;
		if (l + 1 < n && slot_less(&h[l + 1], &h[m]))
			m = l + 1;
		if (m == i)
			return;
		struct slot t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static int cmp_bucket_path(const void *a, const void *b)
{
	const struct vp_bucket *x = a, *y = b;
	return pathcmp(x->path, x->path_len, y->path, y->path_len);
}

static int cmp_above_path(const void *a, const void *b)
{
	const struct vp_above *x = a, *y = b;
	return pathcmp(x->path, x->path_len, y->path, y->path_len);
}

static int cmp_by_estimate(const void *a, const void *b, void *arg)
{
	const struct vp_bucket *v = arg;
	const struct vp_bucket *x = &v[*(const size_t *)a], *y = &v[*(const size_t *)b];
	if (x->estimate != y->estimate)
		return x->estimate > y->estimate ? -1 : 1;
	return pathcmp(x->path, x->path_len, y->path, y->path_len);
}

/* Steps 4 and the manifest's arrays. */
static int build(struct plan *pl, uint32_t n_shards, struct vp_manifest *m)
{
	size_t na = 0, nb = 0;
	struct vp_above *above;
	struct vp_bucket *buckets;
	size_t *order = NULL;
	struct slot *heap = NULL;
	int r = -ENOMEM;

	for (size_t i = 0; i < pl->n; i++)
		na += pl->v[i].state == P_ABOVE;
	nb = pl->n; /* one per node: FILES for above, SUBTREE for candidates */
	above = calloc(na ? na : 1, sizeof(*above));
	buckets = calloc(nb ? nb : 1, sizeof(*buckets));
	order = malloc((nb ? nb : 1) * sizeof(*order));
	heap = malloc(n_shards * sizeof(*heap));
	if (!above || !buckets || !order || !heap)
		goto fail;
	na = 0;
	for (size_t i = 0; i < pl->n; i++) {
		struct pnode *nd = &pl->v[i];
		/* Ownership of the path moves into the manifest (one copy for
		 * an above directory's FILES bucket). */
		buckets[i] = (struct vp_bucket){
			.kind = nd->state == P_ABOVE ? VP_BUCKET_FILES : VP_BUCKET_SUBTREE,
			.estimate = nd->est, .dev = nd->dev, .ino = nd->ino,
			.path = nd->path, .path_len = nd->len,
		};
		if (nd->state == P_ABOVE) {
			char *copy = dup_bytes(nd->path, nd->len);
			if (!copy)
				goto fail;
			above[na++] = (struct vp_above){ .dev = nd->dev, .ino = nd->ino,
				                         .path = copy, .path_len = nd->len };
		}
	}
	for (size_t i = 0; i < pl->n; i++)
		pl->v[i].path = NULL;
	qsort(buckets, nb, sizeof(*buckets), cmp_bucket_path);
	qsort(above, na, sizeof(*above), cmp_above_path);
	for (size_t i = 0; i < nb; i++)
		order[i] = i;
	qsort_r(order, nb, sizeof(*order), cmp_by_estimate, buckets);
	for (uint32_t k = 0; k < n_shards; k++)
		heap[k] = (struct slot){ .load = 0, .k = k };
	for (size_t i = 0; i < nb; i++) {
		struct vp_bucket *b = &buckets[order[i]];
		b->shard = heap[0].k;
		heap[0].load = heap[0].load + b->estimate < heap[0].load ? UINT64_MAX
		                                                         : heap[0].load + b->estimate;
		heap_down(heap, n_shards, 0);
	}
	free(order);
	free(heap);
	for (size_t i = 0; i < m->n_buckets; i++)
		free(m->buckets[i].path);
	free(m->buckets);
	for (size_t i = 0; i < m->n_above; i++)
		free(m->above[i].path);
	free(m->above);
	m->buckets = buckets;
	m->n_buckets = nb;
	m->above = above;
	m->n_above = na;
	m->n_shards = n_shards;
	return 0;
fail:
	for (size_t i = 0; i < na; i++)
		free(above[i].path);
	free(above);
	free(buckets); /* its paths are still the nodes' */
	free(order);
	free(heap);
	return r;
}

int vp_partition(int root_fd, const struct vp_partition_cfg *cfg, struct vp_manifest *m)
{
	struct plan pl = { .cfg = cfg, .root_fd = root_fd };
	struct stat st;
	uint32_t n = cfg->n_shards;
	size_t want, max_buckets;
	int r;

	if (n < 1 || n > VP_SHARD_MAX)
		return -ERANGE;
	if (fstat(root_fd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	pl.root_dev = st.st_dev;
	pl.cross = cfg->policy && cfg->policy->cross_mounts;
	pl.pin_flags = pl.cross ? VP_PIN_XDEV : 0;
	pl.rng = cfg->seed ? cfg->seed : 0x9E3779B97F4A7C15ull;
	want = (size_t)n * (cfg->per_shard ? cfg->per_shard : 8);
	max_buckets = cfg->max_buckets ? cfg->max_buckets : (size_t)64 * n + 4096;

	r = add_node(&pl, ".", 1, &st);
	/* 1: breadth first (nodes are appended, so index order is BFS). */
	for (size_t i = 0; r == 0 && i < pl.n; i++) {
		if (i > 0 && (pl.n - pl.n_above >= want || pl.n >= max_buckets))
			break;
		if (pl.v[i].state == P_CAND && !pl.v[i].leaf)
			r = expand(&pl, i);
	}
	/* 2: estimates. */
	if (r == 0)
		r = estimate_range(&pl, 0, pl.n);
	/* 3: split the subtrees too big for one shard's fair share. */
	while (r == 0 && n > 1 && pl.n < max_buckets) {
		uint64_t total = 0, best = 0;
		size_t bi = SIZE_MAX;
		for (size_t i = 0; i < pl.n; i++) {
			total += pl.v[i].est;
			if (pl.v[i].state == P_CAND && !pl.v[i].leaf && pl.v[i].est > best) {
				best = pl.v[i].est;
				bi = i;
			}
		}
		if (bi == SIZE_MAX || best <= total / n / 2)
			break;
		size_t before = pl.n;
		r = expand(&pl, bi);
		if (r == 0)
			r = estimate_range(&pl, before, pl.n);
		if (r == 0 && pl.v[bi].state != P_ABOVE)
			pl.v[bi].leaf = true; /* could not be split: keep it whole */
	}
	if (r == 0)
		r = build(&pl, n, m);
	for (size_t i = 0; i < pl.n; i++)
		free(pl.v[i].path);
	free(pl.v);
	free(pl.pbuf);
	return r;
}

/* ---- which shard am I ---- */

/* Decimal, digits only, no leading zero except "0" itself, fits 32 bits. */
static int parse_u32(const char *s, size_t n, uint32_t *v)
{
	uint64_t x = 0;

	if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	if (x > UINT32_MAX)
		return -EINVAL;
	*v = (uint32_t)x;
	return 0;
}

int vp_shard_parse(const char *s, uint32_t *k, uint32_t *n)
{
	const char *slash;
	uint32_t a, b;

	if (!s || !(slash = strchr(s, '/')))
		return -EINVAL;
	if (parse_u32(s, (size_t)(slash - s), &a) < 0 ||
	    parse_u32(slash + 1, strlen(slash + 1), &b) < 0)
		return -EINVAL;
	if (b < 1 || b > VP_SHARD_MAX || a >= b)
		return -ERANGE;
	*k = a;
	*n = b;
	return 0;
}

const char *vp_shard_source_name(enum vp_shard_source s)
{
	switch (s) {
	case VP_SHARD_SRC_NONE: return "none";
	case VP_SHARD_SRC_ARG: return "command line";
	case VP_SHARD_SRC_SLURM_ARRAY: return "Slurm job array";
	case VP_SHARD_SRC_SLURM_STEP: return "Slurm job step";
	case VP_SHARD_SRC_K8S: return "Kubernetes Indexed Job";
	case VP_SHARD_SRC_OMPI: return "Open MPI";
	case VP_SHARD_SRC_PMI: return "PMI";
	}
	return "unknown";
}

static const char *env_get(char *const *envp, const char *name)
{
	size_t nl = strlen(name);
	for (char *const *e = envp; e && *e; e++)
		if (strncmp(*e, name, nl) == 0 && (*e)[nl] == '=')
			return *e + nl + 1;
	return NULL;
}

static int env_u32(char *const *envp, const char *name, uint32_t *v, bool *present,
                   struct vp_shard_env *out)
{
	const char *s = env_get(envp, name);
	*present = s != NULL;
	if (!s)
		return 0;
	if (parse_u32(s, strlen(s), v) < 0) {
		out->var = name;
		return -EINVAL;
	}
	return 0;
}

struct cand {
	enum vp_shard_source src;
	uint32_t k, n;
	bool n_unknown;      /* Kubernetes without a hint: any N agrees */
	bool weak;           /* Slurm's batch step: 0 of 1 */
	const char *k_var, *n_var;
};

/* A rank/size pair: both or neither. */
static int env_pair(char *const *envp, enum vp_shard_source src, const char *kv, const char *nv,
                    struct cand *c, bool *found, struct vp_shard_env *out)
{
	bool hk, hn;
	uint32_t k = 0, n = 0;
	int r = env_u32(envp, kv, &k, &hk, out);

	if (r == 0)
		r = env_u32(envp, nv, &n, &hn, out);
	if (r < 0)
		return r;
	*found = hk && hn;
	if (hk != hn) {
		out->var = hk ? nv : kv; /* the missing one */
		return -EINVAL;
	}
	if (*found)
		*c = (struct cand){ .src = src, .k = k, .n = n, .k_var = kv, .n_var = nv };
	return 0;
}

static int cand_check(const struct cand *c, uint32_t n_hint, struct vp_shard_env *out)
{
	if (c->n_unknown)
		return 0;
	if (c->n < 1 || c->n > VP_SHARD_MAX) {
		out->var = c->n_var;
		return -ERANGE;
	}
	if (n_hint && c->n != n_hint) {
		out->var = c->n_var;
		out->n = c->n;
		out->want_n = n_hint;
		return -ERANGE;
	}
	if (c->k >= c->n) {
		out->var = c->k_var;
		out->k = c->k;
		out->n = c->n;
		return -ERANGE;
	}
	return 0;
}

int vp_shard_from_env(char *const *envp, uint32_t n_hint, struct vp_shard_env *ret)
{
	struct vp_shard_env out = { 0 };
	struct cand c[5];
	size_t nc = 0;
	bool found;
	int r;

	if (!envp)
		envp = environ;

	/* Slurm job array: the index may start at an --array offset and move
	 * by a step (--array=1-16:3); K counts the tasks from 0. An array
	 * with gaps (--array=1,3,8) has no K/N meaning: refused by MAX. */
	{
		uint32_t id = 0, cnt = 0, min = 0, max = 0, step = 1;
		bool hid, hcnt, hmin, hmax, hstep;
		r = env_u32(envp, "SLURM_ARRAY_TASK_ID", &id, &hid, &out);
		if (r == 0)
			r = env_u32(envp, "SLURM_ARRAY_TASK_COUNT", &cnt, &hcnt, &out);
		if (r == 0)
			r = env_u32(envp, "SLURM_ARRAY_TASK_MIN", &min, &hmin, &out);
		if (r == 0)
			r = env_u32(envp, "SLURM_ARRAY_TASK_MAX", &max, &hmax, &out);
		if (r == 0)
			r = env_u32(envp, "SLURM_ARRAY_TASK_STEP", &step, &hstep, &out);
		if (r < 0)
			goto fail;
		if (hid != hcnt) {
			out.var = hid ? "SLURM_ARRAY_TASK_COUNT" : "SLURM_ARRAY_TASK_ID";
			r = -EINVAL;
			goto fail;
		}
		if (hid) {
			if (!hstep)
				step = 1;
			if (step == 0) {
				out.var = "SLURM_ARRAY_TASK_STEP";
				r = -EINVAL;
				goto fail;
			}
			if (id < min || (id - min) % step) {
				out.var = "SLURM_ARRAY_TASK_ID";
				r = -ERANGE;
				goto fail;
			}
			if (hmax && (max < min || (max - min) % step || (max - min) / step + 1 != cnt)) {
				out.var = "SLURM_ARRAY_TASK_MAX";
				r = -ERANGE;
				goto fail;
			}
			c[nc++] = (struct cand){ .src = VP_SHARD_SRC_SLURM_ARRAY,
				                 .k = (id - min) / step, .n = cnt,
				                 .k_var = "SLURM_ARRAY_TASK_ID",
				                 .n_var = "SLURM_ARRAY_TASK_COUNT" };
		}
	}
	r = env_pair(envp, VP_SHARD_SRC_OMPI, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
	             &c[nc], &found, &out);
	if (r < 0)
		goto fail;
	nc += found;
	r = env_pair(envp, VP_SHARD_SRC_PMI, "PMI_RANK", "PMI_SIZE", &c[nc], &found, &out);
	if (r < 0)
		goto fail;
	nc += found;
	/* The batch step of an sbatch job without -n/--ntasks (every task of
	 * `sbatch --array ... --wrap`, seen on Slurm 22.05) has SLURM_PROCID=0
	 * and no SLURM_NTASKS: that is 0 of 1 too, not half a pair. */
	const char *procid = env_get(envp, "SLURM_PROCID");
	if (!env_get(envp, "SLURM_NTASKS") && (!procid || strcmp(procid, "0") == 0)) {
		r = 0;
		found = false;
	} else {
		r = env_pair(envp, VP_SHARD_SRC_SLURM_STEP, "SLURM_PROCID", "SLURM_NTASKS", &c[nc],
		             &found, &out);
	}
	if (r < 0)
		goto fail;
	if (found) {
		c[nc].weak = c[nc].k == 0 && c[nc].n == 1;
		nc++;
	}
	{
		uint32_t idx;
		bool h;
		r = env_u32(envp, "JOB_COMPLETION_INDEX", &idx, &h, &out);
		if (r < 0)
			goto fail;
		if (h)
			c[nc++] = (struct cand){ .src = VP_SHARD_SRC_K8S, .k = idx, .n = n_hint,
				                 .n_unknown = n_hint == 0,
				                 .k_var = "JOB_COMPLETION_INDEX",
				                 .n_var = "JOB_COMPLETION_INDEX" };
	}
	if (nc == 0) {
		r = -ENOENT;
		goto fail;
	}
	for (size_t i = 0; i < nc; i++) {
		r = cand_check(&c[i], n_hint, &out);
		if (r < 0)
			goto fail;
	}
	/* The first strong source in the order above; every other strong one
	 * must agree with it (a known N with a known N, K with K). */
	size_t pick = SIZE_MAX;
	for (size_t i = 0; i < nc && pick == SIZE_MAX; i++)
		if (!c[i].weak)
			pick = i;
	if (pick == SIZE_MAX)
		pick = 0;
	for (size_t i = 0; i < nc; i++) {
		if (i == pick || c[i].weak)
			continue;
		if (c[i].k != c[pick].k ||
		    (!c[i].n_unknown && !c[pick].n_unknown && c[i].n != c[pick].n)) {
			out.source = c[pick].src;
			out.k = c[pick].k;
			out.n = c[pick].n;
			out.other = c[i].src;
			out.other_k = c[i].k;
			out.other_n = c[i].n;
			r = -EEXIST;
			goto fail;
		}
		if (c[pick].n_unknown && !c[i].n_unknown) {
			c[pick].n = c[i].n;
			c[pick].n_unknown = false;
		}
	}
	if (c[pick].n_unknown) {
		out.var = c[pick].k_var;
		r = -EDOM;
		goto fail;
	}
	if (c[pick].k >= c[pick].n) {
		out.var = c[pick].k_var;
		out.k = c[pick].k;
		out.n = c[pick].n;
		r = -ERANGE;
		goto fail;
	}
	*ret = (struct vp_shard_env){ .k = c[pick].k, .n = c[pick].n, .source = c[pick].src };
	return 0;
fail:
	*ret = out;
	return r;
}

const char *vp_shard_env_why(int err, const struct vp_shard_env *e, char *buf, size_t size)
{
	switch (err) {
	case -ENOENT:
		snprintf(buf, size,
		         "--shard auto found no shard index in the environment (SLURM_ARRAY_TASK_ID, SLURM_PROCID, JOB_COMPLETION_INDEX, OMPI_COMM_WORLD_RANK or PMI_RANK); give --shard K/N");
		break;
	case -EINVAL:
		snprintf(buf, size,
		         "--shard auto: the environment variable %s is missing or not a decimal number",
		         e->var ? e->var : "?");
		break;
	case -ERANGE:
		if (e->want_n)
			snprintf(buf, size, "--shard auto: %s says %" PRIu32 " shards but the run has %" PRIu32,
			         e->var ? e->var : "?", e->n, e->want_n);
		else if (e->n)
			snprintf(buf, size,
			         "--shard auto: %s gives shard %" PRIu32 " but there are only %" PRIu32 " shards",
			         e->var ? e->var : "?", e->k, e->n);
		else
			snprintf(buf, size,
			         "--shard auto: %s is out of range (an array must be a contiguous range, at most %u shards)",
			         e->var ? e->var : "?", VP_SHARD_MAX);
		break;
	case -EEXIST:
		snprintf(buf, size,
		         "--shard auto: the environment names two different shards (%s: %" PRIu32 "/%" PRIu32 ", %s: %" PRIu32 "/%" PRIu32 "); give --shard K/N",
		         vp_shard_source_name(e->source), e->k, e->n, vp_shard_source_name(e->other),
		         e->other_k, e->other_n);
		break;
	case -EDOM:
		snprintf(buf, size,
		         "--shard auto: %s gives the shard index but not the number of shards; give --run ID or --shards N",
		         e->var ? e->var : "?");
		break;
	default:
		snprintf(buf, size, "--shard auto: %s", strerror(-err));
	}
	return buf;
}

/* ---- sightings ---- */

#define S_HDR 48u
#define S_REC 80u
#define S_TRAILER 20u
#define S_END_MAGIC "VPSEND\0\0"
#define S_MAX ((size_t)4 << 30)

void vp_sight_name(char buf[VP_MANIFEST_NAME_MAX], const struct vp_run_id *id, uint32_t k)
{
	char hex[VP_RUN_ID_HEX];
	vp_run_id_hex(id, hex);
	snprintf(buf, VP_MANIFEST_NAME_MAX, "run-%s-%08" PRIx32 ".vps", hex, k);
}

struct vp_sight_writer {
	int dirfd, fd;
	char name[VP_MANIFEST_NAME_MAX];
	char tmp[VP_MANIFEST_NAME_MAX + 32];
	uint32_t crc;
	uint64_t count;
	int err;
	uint8_t *buf;
	size_t len, cap;
	pthread_mutex_t mu;
};

enum { S_BUF = 1 << 16 };

static int sw_flush(struct vp_sight_writer *w)
{
	int r = write_full(w->fd, w->buf, w->len);
	if (r == 0)
		w->len = 0;
	return r;
}

/* Append bytes to the buffer (and the running CRC). */
static int sw_put(struct vp_sight_writer *w, const void *p, size_t n)
{
	w->crc = vp_crc32c(w->crc, p, n);
	if (w->len + n > w->cap) {
		int r = sw_flush(w);
		if (r < 0)
			return r;
	}
	if (n > w->cap)
		return write_full(w->fd, p, n);
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

int vp_sight_create(int jdir_fd, const struct vp_run_id *id, uint32_t k,
                    const uint8_t host_key[16], struct vp_sight_writer **ret)
{
	struct vp_sight_writer *w = calloc(1, sizeof(*w));
	uint8_t hdr[S_HDR];
	int r;

	if (!w)
		return -ENOMEM;
	w->buf = malloc(S_BUF);
	if (!w->buf) {
		free(w);
		return -ENOMEM;
	}
	w->cap = S_BUF;
	w->dirfd = jdir_fd;
	vp_sight_name(w->name, id, k);
	w->fd = tmp_create(jdir_fd, w->name, w->tmp, sizeof(w->tmp));
	if (w->fd < 0) {
		r = w->fd;
		free(w->buf);
		free(w);
		return r;
	}
	pthread_mutex_init(&w->mu, NULL);
	memcpy(hdr, VP_SIGHT_MAGIC, 8);
	vp_put32(hdr + 8, VP_SIGHT_VERSION);
	vp_put32(hdr + 12, k);
	memcpy(hdr + 16, id->b, VP_RUN_ID_LEN);
	memcpy(hdr + 32, host_key, 16);
	r = sw_put(w, hdr, sizeof(hdr));
	if (r < 0) {
		vp_sight_abort(w);
		return r;
	}
	*ret = w;
	return 0;
}

int vp_sight_add(struct vp_sight_writer *w, const struct vp_sighting *s)
{
	uint8_t rec[S_REC];
	int r;

	if (!vp_jpath_ok(s->path, s->path_len) || (s->path_len == 1 && s->path[0] == '.') ||
	    S_ISDIR(s->mode) || s->path_len > UINT32_MAX - S_REC)
		return -EINVAL;
	vp_put32(rec, S_REC + s->path_len);
	vp_put64(rec + 4, s->dev);
	vp_put64(rec + 12, s->ino);
	vp_put64(rec + 20, s->fsid);
	vp_put64(rec + 28, s->nlink);
	vp_put64(rec + 36, s->parent_dev);
	vp_put64(rec + 44, s->parent_ino);
	vp_put32(rec + 52, s->uid);
	vp_put32(rec + 56, s->gid);
	vp_put32(rec + 60, s->mode);
	vp_put64(rec + 64, (uint64_t)s->ctime_sec);
	vp_put32(rec + 72, s->ctime_nsec);
	vp_put32(rec + 76, s->path_len);
	pthread_mutex_lock(&w->mu);
	r = w->err;
	if (r == 0)
		r = sw_put(w, rec, sizeof(rec));
	if (r == 0)
		r = sw_put(w, s->path, s->path_len);
	if (r == 0)
		w->count++;
	else
		w->err = r;
	pthread_mutex_unlock(&w->mu);
	return r;
}

void vp_sight_abort(struct vp_sight_writer *w)
{
	if (!w)
		return;
	close(w->fd);
	(void)unlinkat(w->dirfd, w->tmp, 0);
	pthread_mutex_destroy(&w->mu);
	free(w->buf);
	free(w);
}

int vp_sight_commit(struct vp_sight_writer *w)
{
	uint8_t tr[S_TRAILER];
	int r = w->err;

	memcpy(tr, S_END_MAGIC, 8);
	vp_put64(tr + 8, w->count);
	if (r == 0)
		r = sw_put(w, tr, 16);
	vp_put32(tr + 16, w->crc);
	/* The CRC covers everything before it, the trailer's first 16 bytes
	 * included (sw_put added them). */
	if (r == 0 && w->len + 4 > w->cap)
		r = sw_flush(w);
	if (r == 0) {
		memcpy(w->buf + w->len, tr + 16, 4);
		w->len += 4;
		r = sw_flush(w);
	}
	if (r == 0 && fsync(w->fd) < 0)
		r = -errno;
	/* A restarted shard writes its sightings again, complete: replacing
	 * the earlier attempt's file is what we want. */
	if (r == 0 && renameat(w->dirfd, w->tmp, w->dirfd, w->name) < 0)
		r = -errno;
	if (r == 0 && fsync(w->dirfd) < 0)
		r = -errno;
	if (r < 0) {
		vp_sight_abort(w);
		return r;
	}
	close(w->fd);
	pthread_mutex_destroy(&w->mu);
	free(w->buf);
	free(w);
	return 0;
}

static void sight_at(const uint8_t *p, struct vp_sighting *s)
{
	*s = (struct vp_sighting){
		.dev = vp_get64(p + 4), .ino = vp_get64(p + 12), .fsid = vp_get64(p + 20),
		.nlink = vp_get64(p + 28), .parent_dev = vp_get64(p + 36), .parent_ino = vp_get64(p + 44),
		.uid = vp_get32(p + 52), .gid = vp_get32(p + 56), .mode = vp_get32(p + 60),
		.ctime_sec = (int64_t)vp_get64(p + 64), .ctime_nsec = vp_get32(p + 72),
		.path_len = vp_get32(p + 76), .path = (const char *)p + S_REC,
	};
}

int vp_sight_decode(const uint8_t *buf, size_t len, const struct vp_run_id *id, uint32_t k,
                    vp_sight_fn fn, void *userdata)
{
	size_t off, end;
	uint64_t count = 0;

	if (len < S_HDR + S_TRAILER || memcmp(buf, VP_SIGHT_MAGIC, 8) != 0)
		return -EBADMSG;
	if (vp_crc32c(0, buf, len - 4) != vp_get32(buf + len - 4))
		return -EBADMSG;
	if (vp_get32(buf + 8) != VP_SIGHT_VERSION)
		return -EPROTO;
	if (vp_get32(buf + 12) != k || memcmp(buf + 16, id->b, VP_RUN_ID_LEN) != 0)
		return -EBADMSG;
	end = len - S_TRAILER;
	if (memcmp(buf + end, S_END_MAGIC, 8) != 0)
		return -EBADMSG;
	/* Pass 1 validates everything, pass 2 hands records out: a damaged
	 * file gives the caller nothing. */
	for (int pass = 0; pass < 2; pass++) {
		count = 0;
		for (off = S_HDR; off < end; count++) {
			struct vp_sighting s;
			if (end - off < S_REC)
				return -EBADMSG;
			uint32_t rl = vp_get32(buf + off);
			if (rl < S_REC || rl > end - off)
				return -EBADMSG;
			sight_at(buf + off, &s);
			if ((uint64_t)S_REC + s.path_len != rl || !vp_jpath_ok(s.path, s.path_len) ||
			    (s.path_len == 1 && s.path[0] == '.') || S_ISDIR(s.mode) || s.nlink < 2 ||
			    s.ctime_nsec >= 1000000000u)
				return -EBADMSG;
			if (pass == 1) {
				int r = fn(buf + 32, &s, userdata);
				if (r < 0)
					return r;
			}
			off += rl;
		}
		if (count != vp_get64(buf + end + 8))
			return -EBADMSG;
	}
	return 0;
}

int vp_sight_read(int jdir_fd, const struct vp_run_id *id, uint32_t k, vp_sight_fn fn,
                  void *userdata)
{
	char name[VP_MANIFEST_NAME_MAX];
	uint8_t *buf;
	size_t len;
	int r;

	vp_sight_name(name, id, k);
	r = read_file_at(jdir_fd, name, S_MAX, &buf, &len);
	if (r == -EFBIG)
		r = -EBADMSG;
	if (r < 0)
		return r;
	r = vp_sight_decode(buf, len, id, k, fn, userdata);
	free(buf);
	return r;
}

/* ---- the merge ---- */

/* Where an inode lives, in terms that mean the same on every host: the
 * filesystem id when there is one; else this host's st_dev, qualified by
 * the host. No padding: compared with memcmp. */
struct fskey {
	uint64_t fsid;
	uint8_t host[16];
	uint64_t dev;
};

struct msight {
	struct fskey key;
	uint64_t pdev;       /* parent's dev, 0 when the fsid says it all */
	struct vp_sighting s;/* .path owned */
};

struct vp_sight_merge {
	bool allow_external;
	struct msight *v;
	size_t n, cap;
};

const char *vp_sight_verdict_name(enum vp_sight_verdict v)
{
	switch (v) {
	case VP_SIGHT_DUE: return "due";
	case VP_SIGHT_EXTERNAL: return "external-hardlink";
	case VP_SIGHT_UNSTABLE: return "changed";
	}
	return "unknown";
}

int vp_sight_merge_new(bool allow_external, struct vp_sight_merge **ret)
{
	struct vp_sight_merge *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->allow_external = allow_external;
	*ret = m;
	return 0;
}

void vp_sight_merge_free(struct vp_sight_merge *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free((char *)m->v[i].s.path);
	free(m->v);
	free(m);
}

int vp_sight_merge_add(struct vp_sight_merge *m, const uint8_t host_key[16],
                       const struct vp_sighting *s)
{
	struct msight x = { 0 };

	if (!vp_jpath_ok(s->path, s->path_len) || S_ISDIR(s->mode))
		return -EINVAL;
	if (m->n == m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 256;
		struct msight *nv = realloc(m->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		m->v = nv;
		m->cap = nc;
	}
	x.key.fsid = s->fsid;
	if (!s->fsid) {
		memcpy(x.key.host, host_key, 16);
		x.key.dev = s->dev;
		x.pdev = s->parent_dev;
	}
	x.s = *s;
	x.s.path = dup_bytes(s->path, s->path_len);
	if (!x.s.path)
		return -ENOMEM;
	m->v[m->n++] = x;
	return 0;
}

static int merge_cb(const uint8_t host_key[16], const struct vp_sighting *s, void *userdata)
{
	return vp_sight_merge_add(userdata, host_key, s);
}

int vp_sight_merge_file(struct vp_sight_merge *m, int jdir_fd, const struct vp_run_id *id,
                        uint32_t k)
{
	return vp_sight_read(jdir_fd, id, k, merge_cb, m);
}

/* The link's identity: its directory and its name (links.c's rule). */
static const char *base_name(const struct vp_sighting *s, size_t *len)
{
	const char *slash = memrchr(s->path, '/', s->path_len);
	const char *b = slash ? slash + 1 : s->path;
	*len = s->path_len - (size_t)(b - s->path);
	return b;
}

static int cmp_inode(const struct msight *x, const struct msight *y)
{
	int c = memcmp(&x->key, &y->key, sizeof(x->key));
	if (c)
		return c;
	return x->s.ino < y->s.ino ? -1 : x->s.ino > y->s.ino;
}

static int cmp_link(const struct msight *x, const struct msight *y)
{
	size_t xl, yl;
	const char *xn, *yn;
	int c = cmp_inode(x, y);

	if (c)
		return c;
	if (x->pdev != y->pdev)
		return x->pdev < y->pdev ? -1 : 1;
	if (x->s.parent_ino != y->s.parent_ino)
		return x->s.parent_ino < y->s.parent_ino ? -1 : 1;
	xn = base_name(&x->s, &xl);
	yn = base_name(&y->s, &yl);
	c = pathcmp(xn, xl, yn, yl);
	if (c)
		return c;
	return pathcmp(x->s.path, x->s.path_len, y->s.path, y->s.path_len);
}

static int cmp_msight(const void *a, const void *b)
{
	return cmp_link(a, b);
}

struct mgroup {
	size_t at, n;        /* range in m->v */
	const struct vp_sighting *first;
};

static int cmp_group(const void *a, const void *b)
{
	const struct mgroup *x = a, *y = b;
	return pathcmp(x->first->path, x->first->path_len, y->first->path, y->first->path_len);
}

int vp_sight_merge_each(struct vp_sight_merge *m, vp_sight_merge_fn fn, void *userdata)
{
	struct mgroup *g = NULL;
	const struct vp_sighting **all = NULL;
	size_t ng = 0;
	int r = 0;

	if (m->n == 0)
		return 0;
	qsort(m->v, m->n, sizeof(*m->v), cmp_msight);
	g = calloc(m->n, sizeof(*g));
	all = calloc(m->n, sizeof(*all));
	if (!g || !all) {
		free(g);
		free(all);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->n;) {
		size_t j = i;
		while (j < m->n && cmp_inode(&m->v[i], &m->v[j]) == 0)
			j++;
		g[ng] = (struct mgroup){ .at = i, .n = j - i, .first = &m->v[i].s };
		for (size_t t = i; t < j; t++)
			if (pathcmp(m->v[t].s.path, m->v[t].s.path_len, g[ng].first->path,
			            g[ng].first->path_len) < 0)
				g[ng].first = &m->v[t].s;
		ng++;
		i = j;
	}
	qsort(g, ng, sizeof(*g), cmp_group);
	for (size_t gi = 0; gi < ng && r == 0; gi++) {
		struct vp_sight_inode in = { .first = g[gi].first, .all = all };
		const struct msight *v = &m->v[g[gi].at];
		bool unstable = false;
		uint64_t links = 0;
		for (size_t t = 0; t < g[gi].n; t++) {
			const struct vp_sighting *s = &v[t].s;
			if (s->nlink > in.nlink)
				in.nlink = s->nlink; /* the largest: a link added meanwhile
				                      * never makes it look complete */
			/* One name seen twice counts once (a bind mount, or two
			 * shards' buckets that both saw it after a rename). */
			if (t > 0 && v[t].pdev == v[t - 1].pdev &&
			    s->parent_ino == v[t - 1].s.parent_ino) {
				size_t al, bl;
				const char *a = base_name(s, &al), *b = base_name(&v[t - 1].s, &bl);
				if (pathcmp(a, al, b, bl) == 0)
					continue;
			}
			all[links++] = s;
			/* Every sighting must show the inode as the first one did:
			 * a ctime, owner or mode that moved means it changed
			 * between the sightings (links.c's ctime rule; the watch
			 * it also uses cannot span hosts: finalize re-checks). */
			if (s->ctime_sec != v[0].s.ctime_sec || s->ctime_nsec != v[0].s.ctime_nsec ||
			    s->uid != v[0].s.uid || s->gid != v[0].s.gid || s->mode != v[0].s.mode)
				unstable = true;
		}
		in.links = links;
		if (m->allow_external)
			in.verdict = VP_SIGHT_DUE; /* its first link decides, as on one host */
		else if (unstable)
			in.verdict = VP_SIGHT_UNSTABLE;
		else
			in.verdict = links >= in.nlink ? VP_SIGHT_DUE : VP_SIGHT_EXTERNAL;
		r = fn(&in, userdata);
	}
	free(g);
	free(all);
	return r;
}

/* ---- a run's journals and state ---- */

void vp_shard_journal_name(char buf[VP_SHARD_JNAME_MAX], uint64_t dev, uint64_t ino,
                           uint64_t created_ns, const struct vp_run_id *id, uint32_t k)
{
	char hex[VP_RUN_ID_HEX];
	vp_run_id_hex(id, hex);
	snprintf(buf, VP_SHARD_JNAME_MAX,
	         "vp-%016" PRIx64 "-%016" PRIx64 "-%016" PRIx64 "-run%s-%08" PRIx32 "%s", dev, ino,
	         created_ns, hex, k, VP_JOURNAL_SUFFIX);
}

static bool lowhex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static uint64_t hex64(const char *s, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 4 | (uint64_t)hexval((unsigned char)s[i]);
	return v;
}

bool vp_shard_journal_parse(const char *n, uint64_t *dev, uint64_t *ino, uint64_t *created_ns,
                            struct vp_run_id *id, uint32_t *k)
{
	/* vp-DDDDDDDDDDDDDDDD-IIIIIIIIIIIIIIII-CCCCCCCCCCCCCCCC-runXXXX...-KKKKKKKK.vpj */
	char hex[VP_RUN_ID_HEX];

	if (strlen(n) != 102 || memcmp(n, "vp-", 3) || n[19] != '-' || n[36] != '-' ||
	    memcmp(n + 53, "-run", 4) || n[89] != '-' || strcmp(n + 98, VP_JOURNAL_SUFFIX))
		return false;
	if (!lowhex(n + 3, 16) || !lowhex(n + 20, 16) || !lowhex(n + 37, 16) ||
	    !lowhex(n + 57, 32) || !lowhex(n + 90, 8))
		return false;
	memcpy(hex, n + 57, 32);
	hex[32] = 0;
	if (vp_run_id_parse(hex, id) < 0)
		return false;
	*dev = hex64(n + 3, 16);
	*ino = hex64(n + 20, 16);
	*created_ns = hex64(n + 37, 16);
	*k = (uint32_t)hex64(n + 90, 8);
	return true;
}

const char *vp_shard_state_name(enum vp_shard_state s)
{
	switch (s) {
	case VP_SHARD_NOT_STARTED: return "not started";
	case VP_SHARD_RUNNING: return "running";
	case VP_SHARD_HOT: return "hot";
	case VP_SHARD_COMMITTED: return "committed";
	case VP_SHARD_ROLLED_BACK: return "rolled back";
	case VP_SHARD_UNREADABLE: return "unreadable";
	}
	return "unknown";
}

const char *vp_run_state_name(enum vp_run_state s)
{
	switch (s) {
	case VP_RUN_PLANNED: return "planned";
	case VP_RUN_IN_PROGRESS: return "in progress";
	case VP_RUN_FAILED: return "failed";
	case VP_RUN_READY: return "ready to finalize";
	case VP_RUN_FINALIZING: return "finalizing";
	case VP_RUN_COMMITTED: return "committed";
	case VP_RUN_ROLLED_BACK: return "rolled back";
	}
	return "unknown";
}

struct agg {
	bool unreadable, running, hot;
	uint64_t newest_created;
	enum vp_shard_state newest_state;
};

int vp_run_status(int jdir_fd, const struct vp_run_id *id, uint32_t n_shards,
                  struct vp_shard_status **ret)
{
	struct vp_shard_status *v;
	struct agg *ag;
	struct dirent *de;
	DIR *d;
	int fd;

	if (n_shards < 1 || n_shards > VP_SHARD_MAX)
		return -ERANGE;
	v = calloc((size_t)n_shards + 1, sizeof(*v));
	ag = calloc((size_t)n_shards + 1, sizeof(*ag));
	fd = openat(jdir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!v || !ag || fd < 0) {
		int r = fd < 0 ? -errno : -ENOMEM;
		if (fd >= 0)
			close(fd);
		free(v);
		free(ag);
		return r;
	}
	d = fdopendir(fd);
	if (!d) {
		int r = -errno;
		close(fd);
		free(v);
		free(ag);
		return r;
	}
	for (uint32_t k = 0; k <= n_shards; k++)
		v[k].k = k == n_shards ? VP_SHARD_FINALIZE : k;
	while ((de = readdir(d))) {
		uint64_t dev, ino, created;
		struct vp_run_id rid;
		uint32_t k;
		if (!vp_shard_journal_parse(de->d_name, &dev, &ino, &created, &rid, &k) ||
		    !vp_run_id_eq(&rid, id))
			continue;
		size_t slot = k == VP_SHARD_FINALIZE ? n_shards : k;
		if (k != VP_SHARD_FINALIZE && k >= n_shards)
			continue; /* not this manifest's: status says nothing of it */
		enum vp_jstate js;
		bool live;
		struct vp_jheader h;
		int r = vp_jr_peek(jdir_fd, de->d_name, &js, &live, &h);
		if (r == -ENODATA)
			continue; /* its header never became durable: nothing changed */
		if (r == 0) {
			if (h.root_dev != dev || h.root_ino != ino)
				r = -EXDEV; /* planted under another root's name */
			vp_jheader_free(&h);
		}
		struct vp_shard_status *s = &v[slot];
		struct agg *a = &ag[slot];
		s->n_journals++;
		enum vp_shard_state st;
		if (r < 0)
			st = VP_SHARD_UNREADABLE, a->unreadable = true;
		else if (js == VP_JSTATE_COMMITTED)
			st = VP_SHARD_COMMITTED;
		else if (js == VP_JSTATE_ROLLED_BACK)
			st = VP_SHARD_ROLLED_BACK;
		else if (live)
			st = VP_SHARD_RUNNING, a->running = true;
		else
			st = VP_SHARD_HOT, a->hot = true;
		if (s->n_journals == 1 || created > a->newest_created ||
		    (created == a->newest_created && strcmp(de->d_name, s->journal) > 0)) {
			a->newest_created = created;
			a->newest_state = st;
			memcpy(s->journal, de->d_name, strlen(de->d_name) + 1); /* 102 bytes: parsed */
		}
	}
	closedir(d);
	for (uint32_t k = 0; k <= n_shards; k++) {
		struct agg *a = &ag[k];
		struct vp_shard_status *s = &v[k];
		char name[VP_MANIFEST_NAME_MAX];
		struct stat st;
		if (!s->n_journals)
			s->state = VP_SHARD_NOT_STARTED;
		else if (a->unreadable)
			s->state = VP_SHARD_UNREADABLE;
		else if (a->running)
			s->state = VP_SHARD_RUNNING;
		else if (a->hot)
			s->state = VP_SHARD_HOT;
		else
			s->state = a->newest_state;
		if (k < n_shards) {
			vp_sight_name(name, id, k);
			s->sightings = fstatat(jdir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			               S_ISREG(st.st_mode);
		}
	}
	free(ag);
	*ret = v;
	return 0;
}

enum vp_run_state vp_run_state_of(const struct vp_shard_status *st, uint32_t n_shards)
{
	const struct vp_shard_status *fin = &st[n_shards];
	size_t committed = 0, rolled = 0, bad = 0, not_started = 0;

	if (fin->state == VP_SHARD_COMMITTED)
		return VP_RUN_COMMITTED;
	if (fin->state == VP_SHARD_RUNNING || fin->state == VP_SHARD_HOT)
		return VP_RUN_FINALIZING;
	if (fin->state == VP_SHARD_UNREADABLE)
		return VP_RUN_FAILED;
	for (uint32_t k = 0; k < n_shards; k++) {
		switch (st[k].state) {
		case VP_SHARD_COMMITTED: committed++; break;
		case VP_SHARD_ROLLED_BACK: rolled++; break;
		case VP_SHARD_HOT:
		case VP_SHARD_UNREADABLE: bad++; break;
		case VP_SHARD_NOT_STARTED: not_started++; break;
		case VP_SHARD_RUNNING: break;
		}
	}
	if (bad)
		return VP_RUN_FAILED;
	if (rolled + not_started == n_shards && (rolled || fin->state == VP_SHARD_ROLLED_BACK))
		return VP_RUN_ROLLED_BACK;
	if (rolled || fin->state == VP_SHARD_ROLLED_BACK)
		return VP_RUN_FAILED; /* part undone, part not: finish the rollback */
	if (committed == n_shards)
		return VP_RUN_READY;
	if (not_started == n_shards)
		return VP_RUN_PLANNED;
	return VP_RUN_IN_PROGRESS;
}
