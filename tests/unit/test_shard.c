/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for include/volperm/shard.h, on real trees under TMPDIR.
 *
 *  - manifest: encode/decode round trip (binary names, a policy with a
 *    newline in a glob); atomic write/read in a journal directory, never
 *    overwriting; a flip of any byte, any truncation, is -EBADMSG; a flip
 *    with the CRC recomputed (the fuzzer's case) is refused or decodes to a
 *    manifest that re-encodes to the same bytes, never a crash (run the
 *    unit tests in build-asan for the memory side); each invariant broken
 *    by hand is refused; the policy given again compares equal, another
 *    does not; the root check by dev/ino/fsid.
 *  - partition: on trees with files, symlinks to directories (inside and
 *    out), an excluded directory, names with newlines, deep chains, for
 *    N = 1, 3, 8, exact and sampled: the buckets and above directories,
 *    expanded as shard.h defines them, list every entry of a full walk
 *    exactly once; exact estimates add up to the entry count; on a skewed
 *    tree the heaviest shard holds at most the mean plus the largest
 *    bucket (the LPT bound) and at most 1.3 times the mean.
 *  - K/N and the environment: tables of accepted and refused values.
 *  - sightings: write/read, damage refused; the merge with links of one
 *    inode spread over three shards (due), one whose third link is outside
 *    the tree (external), one whose ctime moved between shards (changed),
 *    one name seen twice (counts once), hosts without a filesystem id kept
 *    apart; and the same on a real tree through the partition.
 *  - run state: shard journal names; per-shard states from real journals
 *    (none, live, hot, committed, rolled back) and the run's state. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crc32c.h"
#include "volperm/journal.h"
#include "volperm/policy.h"
#include "volperm/shard.h"

static char dir[4096];   /* per test: dir/tree is the root, dir/j the journal dir */
static char tree[4200], jdir[4200];

static int rm_cb(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)type;
	(void)f;
	return remove(p);
}

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/vp-shard-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(tree, sizeof(tree), "%s/tree", dir);
	snprintf(jdir, sizeof(jdir), "%s/j", dir);
	if (mkdir(tree, 0755) < 0 || mkdir(jdir, 0700) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nftw(dir, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void mk(const char *rel, bool is_dir)
{
	char p[8192];
	/* A path that does not fit is the test's own bug: say so, never truncate. */
	assert_true((size_t)snprintf(p, sizeof(p), "%s/%s", tree, rel) < sizeof(p));
	if (is_dir) {
		assert_int_equal(mkdir(p, 0755), 0);
	} else {
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
}

static void mkfiles(const char *d, int n)
{
	char rel[4096];
	for (int i = 0; i < n; i++) {
		snprintf(rel, sizeof(rel), "%s/f%d", d, i);
		mk(rel, false);
	}
}

static int open_tree(void)
{
	int fd = open(tree, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static int open_jdir(void)
{
	int fd = open(jdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* ---- path lists ---- */

struct plist {
	char **v;
	size_t n, cap;
};

static void pl_add(struct plist *l, const char *p, size_t n)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	l->v[l->n] = strndup(p, n);
	assert_non_null(l->v[l->n]);
	l->n++;
}

static void pl_free(struct plist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const struct vp_policy *g_policy; /* the test's excludes; set per test */

static bool excluded(const char *rel, const char *name)
{
	return g_policy && vp_policy_excluded(g_policy, rel, name);
}

static void join(char *out, size_t size, const char *a, const char *name)
{
	if (strcmp(a, ".") == 0)
		snprintf(out, size, "%s", name);
	else
		snprintf(out, size, "%s/%s", a, name);
}

/* Everything below rel (not rel itself), as the walk sees it: physical,
 * not into excluded directories. When m is given, directories the manifest
 * claims are left out (with what is below them): a FILES bucket. */
static void walk_below(int dfd, const char *rel, struct plist *out, const struct vp_manifest *m)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	DIR *d = fdopendir(fd);
	struct dirent *de;
	assert_non_null(d);
	while ((de = readdir(d))) {
		char p[8192];
		struct stat st;
		size_t idx;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		join(p, sizeof(p), rel, de->d_name);
		assert_int_equal(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
		if (m && S_ISDIR(st.st_mode) &&
		    vp_manifest_lookup(m, p, strlen(p), &idx) != VP_WHERE_NONE)
			continue;
		pl_add(out, p, strlen(p));
		if (S_ISDIR(st.st_mode) && !excluded(p, de->d_name)) {
			int c = openat(dirfd(d), de->d_name,
			               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			assert_true(c >= 0);
			walk_below(c, p, out, NULL);
			close(c);
		}
	}
	closedir(d);
}

static int open_rel(const char *rel)
{
	char p[8400];
	snprintf(p, sizeof(p), "%s/%s", tree, rel);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* The entries of bucket b (shard.h's definition). */
static void bucket_entries(const struct vp_manifest *m, const struct vp_bucket *b, struct plist *out)
{
	int fd = open_rel(b->path);
	if (b->kind == VP_BUCKET_SUBTREE) {
		pl_add(out, b->path, b->path_len);
		walk_below(fd, b->path, out, NULL);
	} else {
		walk_below(fd, b->path, out, m);
	}
	close(fd);
}

/* Every entry exactly once; returns the per-shard entry counts. */
static void check_cover(const struct vp_manifest *m, uint64_t *per_shard)
{
	struct plist all = { 0 }, got = { 0 };
	int fd = open_rel(".");

	pl_add(&all, ".", 1);
	walk_below(fd, ".", &all, NULL);
	close(fd);
	for (size_t i = 0; i < m->n_above; i++)
		pl_add(&got, m->above[i].path, m->above[i].path_len);
	for (size_t i = 0; i < m->n_buckets; i++) {
		size_t before = got.n;
		bucket_entries(m, &m->buckets[i], &got);
		if (per_shard)
			per_shard[m->buckets[i].shard] += got.n - before;
	}
	qsort(all.v, all.n, sizeof(char *), cmp_str);
	qsort(got.v, got.n, sizeof(char *), cmp_str);
	for (size_t i = 1; i < got.n; i++)
		if (strcmp(got.v[i - 1], got.v[i]) == 0)
			fail_msg("entry %s is in two buckets", got.v[i]);
	assert_int_equal(got.n, all.n);
	for (size_t i = 0; i < all.n; i++)
		assert_string_equal(got.v[i], all.v[i]);
	pl_free(&all);
	pl_free(&got);
}

/* ---- trees ---- */

static void mixed_tree(void)
{
	char outside[4300];
	mk("a", true);
	mk("a/b", true);
	mk("a/b/c", true);
	mkfiles("a/b/c", 30);
	mkfiles("a", 5);
	mk("a/empty", true);
	mk("d", true);
	mkfiles("d", 40);
	mk("e", true);
	mk("e/x", true);
	mk("e/x/y", true);
	mk("e/x/y/z", true);
	mkfiles("e/x/y/z", 12);
	mk("skip", true);
	mkfiles("skip", 7);
	mk("nl\nname", true);
	mkfiles("nl\nname", 3);
	mk("rootfile", false);
	for (int i = 0; i < 20; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "w%02d", i);
		mk(rel, true);
		snprintf(rel, sizeof(rel), "w%02d/sub", i);
		mk(rel, true);
		mkfiles(rel, i);
	}
	/* A symlink to a directory inside and one outside: entries, never
	 * followed. */
	char p[8400];
	snprintf(p, sizeof(p), "%s/lnk", tree);
	assert_int_equal(symlink("a", p), 0);
	snprintf(outside, sizeof(outside), "%s/outside", dir);
	assert_int_equal(mkdir(outside, 0755), 0);
	snprintf(p, sizeof(p), "%s/out", tree);
	assert_int_equal(symlink(outside, p), 0);
	/* A deep chain: more levels than an exact count keeps open. */
	char rel[4096] = "deep";
	mk(rel, true);
	for (int i = 0; i < 80; i++) {
		strcat(rel, "/q");
		mk(rel, true);
	}
}

static void make_policy(struct vp_policy *p)
{
	vp_policy_init(p);
	p->has_uid = p->has_gid = true;
	p->uid = 1001;
	p->gid = 1002;
	assert_int_equal(vp_policy_add_exclude(p, "skip"), 0);
	assert_int_equal(vp_policy_add_exclude(p, "glob\nwith newline"), 0);
}

static void plan_cfg(const struct vp_partition_cfg *cfg, struct vp_manifest *m)
{
	int fd = open_tree();
	vp_manifest_init(m);
	assert_int_equal(vp_manifest_prepare(m, fd, tree, cfg->policy, cfg->n_shards), 0);
	assert_int_equal(vp_partition(fd, cfg, m), 0);
	assert_int_equal(vp_manifest_validate(m), 0);
	close(fd);
}

static void plan(uint32_t n, uint64_t count_max, struct vp_manifest *m, const struct vp_policy *p)
{
	struct vp_partition_cfg cfg = { .n_shards = n, .policy = p, .count_max = count_max,
		                        .seed = 42 };
	plan_cfg(&cfg, m);
}

/* ---- manifest ---- */

static void assert_manifest_equal(const struct vp_manifest *a, const struct vp_manifest *b)
{
	assert_memory_equal(a->id.b, b->id.b, VP_RUN_ID_LEN);
	assert_int_equal(a->created_ns, b->created_ns);
	assert_int_equal(a->n_shards, b->n_shards);
	assert_int_equal(a->root_dev, b->root_dev);
	assert_int_equal(a->root_ino, b->root_ino);
	assert_int_equal(a->fsid, b->fsid);
	assert_string_equal(a->root, b->root);
	assert_string_equal(a->host, b->host);
	assert_int_equal(a->policy_len, b->policy_len);
	assert_memory_equal(a->policy, b->policy, a->policy_len);
	assert_int_equal(a->n_above, b->n_above);
	assert_int_equal(a->n_buckets, b->n_buckets);
	for (size_t i = 0; i < a->n_above; i++) {
		assert_int_equal(a->above[i].path_len, b->above[i].path_len);
		assert_memory_equal(a->above[i].path, b->above[i].path, a->above[i].path_len);
		assert_int_equal(a->above[i].ino, b->above[i].ino);
	}
	for (size_t i = 0; i < a->n_buckets; i++) {
		assert_int_equal(a->buckets[i].kind, b->buckets[i].kind);
		assert_int_equal(a->buckets[i].shard, b->buckets[i].shard);
		assert_int_equal(a->buckets[i].estimate, b->buckets[i].estimate);
		assert_int_equal(a->buckets[i].ino, b->buckets[i].ino);
		assert_int_equal(a->buckets[i].path_len, b->buckets[i].path_len);
		assert_memory_equal(a->buckets[i].path, b->buckets[i].path, a->buckets[i].path_len);
	}
}

static void manifest_roundtrip(void **state)
{
	(void)state;
	struct vp_policy p, p2;
	struct vp_manifest m, d, r;
	uint8_t *buf, *buf2;
	size_t len, len2;

	mixed_tree();
	make_policy(&p);
	g_policy = &p;
	plan(3, 0, &m, &p);
	assert_int_equal(vp_manifest_encode(&m, &buf, &len), 0);
	assert_int_equal(vp_manifest_decode(buf, len, &d), 0);
	assert_manifest_equal(&m, &d);
	/* Deterministic: the decoded manifest encodes to the same bytes. */
	assert_int_equal(vp_manifest_encode(&d, &buf2, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);
	free(buf2);

	int jfd = open_jdir();
	assert_int_equal(vp_manifest_write(jfd, &m), 0);
	assert_int_equal(vp_manifest_write(jfd, &m), -EEXIST); /* never overwritten */
	assert_int_equal(vp_manifest_read(jfd, &m.id, &r), 0);
	assert_manifest_equal(&m, &r);
	char name[VP_MANIFEST_NAME_MAX], hex[VP_RUN_ID_HEX];
	vp_manifest_name(name, &m.id);
	vp_run_id_hex(&m.id, hex);
	assert_int_equal(strlen(name), 4 + 32 + 4);
	assert_memory_equal(name + 4, hex, 32);
	struct stat st;
	assert_int_equal(fstatat(jfd, name, &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* No temporary file is left behind. */
	DIR *dd = opendir(jdir);
	struct dirent *de;
	int files = 0;
	while ((de = readdir(dd)))
		files += de->d_name[0] != '.';
	closedir(dd);
	assert_int_equal(files, 1);
	/* A manifest renamed to another run's name is refused. */
	struct vp_run_id other;
	char oname[VP_MANIFEST_NAME_MAX];
	assert_int_equal(vp_run_id_new(&other), 0);
	vp_manifest_name(oname, &other);
	assert_int_equal(linkat(jfd, name, jfd, oname, 0), 0);
	struct vp_manifest x;
	assert_int_equal(vp_manifest_read(jfd, &other, &x), -EBADMSG);
	struct vp_run_id missing;
	assert_int_equal(vp_run_id_new(&missing), 0);
	assert_int_equal(vp_manifest_read(jfd, &missing, &x), -ENOENT);

	/* Run ids. */
	struct vp_run_id id2;
	assert_int_equal(vp_run_id_parse(hex, &id2), 0);
	assert_true(vp_run_id_eq(&id2, &m.id));
	assert_int_equal(vp_run_id_parse("0123", &id2), -EINVAL);
	hex[5] = 'g';
	assert_int_equal(vp_run_id_parse(hex, &id2), -EINVAL);

	/* The policy given again: equal; another: not. */
	make_policy(&p2);
	assert_int_equal(vp_manifest_policy_matches(&d, &p2), 1);
	p2.uid = 1003;
	assert_int_equal(vp_manifest_policy_matches(&d, &p2), 0);
	vp_policy_free(&p2);
	assert_int_equal(vp_manifest_policy(&d, &p2), 0);
	assert_int_equal(vp_manifest_policy_matches(&m, &p2), 1);
	vp_policy_free(&p2);

	/* The root check. */
	int fd = open_tree();
	assert_int_equal(vp_manifest_check_root(&d, fd), 0);
	close(fd);
	fd = open(jdir, O_PATH | O_CLOEXEC);
	assert_int_equal(vp_manifest_check_root(&d, fd), -EXDEV);
	close(fd);

	/* The finalize order: deeper first, the root last. */
	size_t *ord;
	assert_int_equal(vp_manifest_above_order(&d, &ord), 0);
	assert_string_equal(d.above[ord[d.n_above - 1]].path, ".");
	for (size_t i = 1; i < d.n_above; i++) {
		const char *x1 = d.above[ord[i - 1]].path, *x2 = d.above[ord[i]].path;
		/* no directory comes before one below it */
		size_t l2 = strlen(x2);
		assert_false(strncmp(x1, x2, l2) == 0 && x1[l2] == 0);
		if (strcmp(x1, ".") != 0)
			assert_false(strncmp(x2, x1, strlen(x1)) == 0 && x2[strlen(x1)] == '/');
	}
	free(ord);

	close(jfd);
	free(buf);
	vp_manifest_free(&m);
	vp_manifest_free(&d);
	vp_manifest_free(&r);
	vp_policy_free(&p);
	g_policy = NULL;
}

static void reseal(uint8_t *b, size_t len)
{
	uint32_t c = vp_crc32c(0, b, len - 4);
	for (int i = 0; i < 4; i++)
		b[len - 4 + i] = (uint8_t)(c >> (8 * i));
}

static void manifest_damage(void **state)
{
	(void)state;
	struct vp_policy p;
	struct vp_manifest m, d;
	uint8_t *buf, *copy;
	size_t len;
	size_t accepted = 0;

	mixed_tree();
	make_policy(&p);
	plan(3, 0, &m, &p);
	assert_int_equal(vp_manifest_encode(&m, &buf, &len), 0);
	copy = malloc(len);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			memcpy(copy, buf, len);
			copy[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(vp_manifest_decode(copy, len, &d), -EBADMSG);
			/* The fuzzer's case: the damage with a valid CRC. */
			if (i < len - 4) {
				reseal(copy, len);
				int r = vp_manifest_decode(copy, len, &d);
				if (r == 0) {
					uint8_t *again;
					size_t alen;
					assert_int_equal(vp_manifest_encode(&d, &again, &alen), 0);
					assert_int_equal(alen, len);
					assert_memory_equal(again, copy, len);
					free(again);
					vp_manifest_free(&d);
					accepted++;
				} else if (r != -EBADMSG) {
					/* Only the version field may say "newer". */
					assert_int_equal(r, -EPROTO);
					assert_true(i >= 8 && i < 12);
				}
			}
		}
	}
	/* Fields nothing checks (ids, times, dev/ino, estimates) do decode:
	 * the CRC is what protects them. */
	assert_true(accepted > 0);
	for (size_t n = 0; n < len; n++)
		assert_int_equal(vp_manifest_decode(buf, n, &d), -EBADMSG);
	uint8_t *longer = calloc(1, len + 1);
	memcpy(longer, buf, len);
	assert_int_equal(vp_manifest_decode(longer, len + 1, &d), -EBADMSG);
	free(longer);
	free(copy);
	free(buf);
	vp_manifest_free(&m);
	vp_policy_free(&p);
}

/* A small manifest by hand. */
static char *S(const char *s)
{
	char *c = strdup(s);
	assert_non_null(c);
	return c;
}

static void hand(struct vp_manifest *m)
{
	vp_manifest_init(m);
	m->n_shards = 2;
	m->root = S("/vol");
	m->host = S("h");
	m->policy = S("uid 5\n");
	m->policy_len = 6;
	m->n_above = 2;
	m->above = calloc(2, sizeof(*m->above));
	m->above[0] = (struct vp_above){ .path = S("."), .path_len = 1 };
	m->above[1] = (struct vp_above){ .path = S("a"), .path_len = 1 };
	m->n_buckets = 4;
	m->buckets = calloc(4, sizeof(*m->buckets));
	m->buckets[0] = (struct vp_bucket){ .kind = VP_BUCKET_FILES, .path = S("."), .path_len = 1 };
	m->buckets[1] = (struct vp_bucket){ .kind = VP_BUCKET_FILES, .path = S("a"), .path_len = 1 };
	m->buckets[2] = (struct vp_bucket){ .kind = VP_BUCKET_SUBTREE, .shard = 1,
		                            .path = S("a/x"), .path_len = 3 };
	m->buckets[3] = (struct vp_bucket){ .kind = VP_BUCKET_SUBTREE, .path = S("b"),
		                            .path_len = 1 };
}

static void set_path(char **p, size_t *len, const char *s)
{
	free(*p);
	*p = S(s);
	*len = strlen(s);
}

static void manifest_invariants(void **state)
{
	(void)state;
	struct vp_manifest m;
	uint8_t *buf;
	size_t len, idx;

	hand(&m);
	assert_int_equal(vp_manifest_validate(&m), 0);
	assert_int_equal(vp_manifest_lookup(&m, "a/x", 3, &idx), VP_WHERE_SUBTREE);
	assert_int_equal(idx, 2);
	assert_int_equal(vp_manifest_lookup(&m, "a", 1, &idx), VP_WHERE_ABOVE);
	assert_int_equal(vp_manifest_lookup(&m, "c", 1, &idx), VP_WHERE_NONE);
	assert_int_equal(vp_manifest_lookup(&m, "a/x/y", 5, &idx), VP_WHERE_NONE);
	assert_int_equal(vp_manifest_files_bucket(&m, 1), 1);
	vp_manifest_free(&m);

#define BROKEN(stmt)                                                         \
	do {                                                                 \
		hand(&m);                                                    \
		stmt;                                                        \
		assert_int_equal(vp_manifest_validate(&m), -EBADMSG);        \
		assert_int_equal(vp_manifest_encode(&m, &buf, &len), -EINVAL); \
		vp_manifest_free(&m);                                        \
	} while (0)
	BROKEN(m.n_shards = 0);
	BROKEN(m.n_shards = VP_SHARD_MAX + 1);
	BROKEN(m.buckets[2].shard = 2);                          /* shard >= N */
	BROKEN(set_path(&m.buckets[3].path, &m.buckets[3].path_len, "a/x/y")); /* inside a/x, order */
	BROKEN(set_path(&m.buckets[3].path, &m.buckets[3].path_len, "c/d")); /* parent not above */
	BROKEN(set_path(&m.buckets[3].path, &m.buckets[3].path_len, "../b"));
	BROKEN(set_path(&m.buckets[3].path, &m.buckets[3].path_len, "b/"));
	BROKEN(set_path(&m.buckets[3].path, &m.buckets[3].path_len, "/b"));
	BROKEN(m.buckets[1].kind = VP_BUCKET_SUBTREE);            /* above dir as subtree */
	BROKEN(m.buckets[3].kind = VP_BUCKET_FILES);              /* files of a non-above dir */
	BROKEN(m.buckets[3].kind = 7);
	BROKEN({ /* an above dir without its FILES bucket */
		free(m.buckets[1].path);
		memmove(&m.buckets[1], &m.buckets[2], 2 * sizeof(m.buckets[0]));
		m.n_buckets = 3;
	});
	BROKEN({ /* no root */
		free(m.above[0].path);
		m.above[0] = m.above[1];
		m.n_above = 1;
		free(m.buckets[0].path);
		m.buckets[0].path = S("zz"); /* keep it sorted-ish; fails anyway */
		m.buckets[0].path_len = 2;
	});
	BROKEN({ /* unsorted */
		struct vp_bucket t = m.buckets[2];
		m.buckets[2] = m.buckets[3];
		m.buckets[3] = t;
	});
	BROKEN(set_path(&m.policy, &m.policy_len, "uid -1\n"));
	BROKEN(set_path(&m.policy, &m.policy_len, "uid 05\n")); /* not canonical */
	BROKEN(set_path(&m.policy, &m.policy_len, "newer-key 1\n"));
	BROKEN({ free(m.root); m.root = S("vol"); });
#undef BROKEN
}

/* ---- partition ---- */

static void partition_cover(void **state)
{
	(void)state;
	struct vp_policy p;
	static const uint32_t ns[] = { 1, 3, 8 };
	static const uint64_t counts[] = { 0, 16, 3 };

	mixed_tree();
	make_policy(&p);
	g_policy = &p;
	struct plist all = { 0 };
	int fd = open_rel(".");
	pl_add(&all, ".", 1);
	walk_below(fd, ".", &all, NULL);
	close(fd);
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			struct vp_manifest m;
			uint64_t per[8] = { 0 };
			plan(ns[i], counts[c], &m, &p);
			check_cover(&m, per);
			/* Nothing under an excluded directory, through a symlink,
			 * or for the deep chain's levels beyond the open fds is a
			 * bucket of its own. */
			size_t idx;
			assert_int_equal(vp_manifest_lookup(&m, "skip", 4, &idx), VP_WHERE_NONE);
			assert_int_equal(vp_manifest_lookup(&m, "lnk", 3, &idx), VP_WHERE_NONE);
			assert_int_equal(vp_manifest_lookup(&m, "out", 3, &idx), VP_WHERE_NONE);
			if (counts[c] == 0) {
				/* Counted exactly (4096 > the tree): the estimates and
				 * the above directories add up to every entry. */
				uint64_t sum = m.n_above;
				for (size_t b = 0; b < m.n_buckets; b++)
					sum += m.buckets[b].estimate;
				assert_int_equal(sum, all.n);
				for (uint32_t k = 0; k < ns[i]; k++)
					assert_int_equal(per[k], vp_manifest_shard_estimate(&m, k));
			}
			vp_manifest_free(&m);
		}
	}
	pl_free(&all);
	vp_policy_free(&p);
	g_policy = NULL;

	/* Not a directory. */
	struct vp_manifest m;
	struct vp_partition_cfg cfg = { .n_shards = 2 };
	char f[8400];
	snprintf(f, sizeof(f), "%s/rootfile", tree);
	int ffd = open(f, O_PATH | O_CLOEXEC);
	vp_manifest_init(&m);
	assert_int_equal(vp_partition(ffd, &cfg, &m), -ENOTDIR);
	cfg.n_shards = 0;
	assert_int_equal(vp_partition(ffd, &cfg, &m), -ERANGE);
	close(ffd);
}

/* One big directory of many subdirectories among small ones: the big one
 * must be split, or one shard gets most of the tree. */
static void skewed_tree(void)
{
	char rel[256];
	mk("big", true);
	for (int i = 0; i < 40; i++) {
		snprintf(rel, sizeof(rel), "big/s%02d", i);
		mk(rel, true);
		mkfiles(rel, 50);
	}
	for (int i = 0; i < 10; i++) {
		snprintf(rel, sizeof(rel), "small%d", i);
		mk(rel, true);
		mkfiles(rel, 10);
	}
}

static void partition_balance(void **state)
{
	(void)state;
	static const uint64_t counts[] = { 0, 64 };

	skewed_tree();
	for (size_t c = 0; c < 2; c++) {
		struct vp_manifest m;
		uint64_t per[4] = { 0 }, total = 0, max = 0, largest = 0;
		plan(4, counts[c], &m, NULL);
		check_cover(&m, per);
		for (size_t b = 0; b < m.n_buckets; b++) {
			uint64_t real = 0;
			struct plist l = { 0 };
			bucket_entries(&m, &m.buckets[b], &l);
			real = l.n;
			pl_free(&l);
			if (real > largest)
				largest = real;
		}
		for (int k = 0; k < 4; k++) {
			total += per[k];
			if (per[k] > max)
				max = per[k];
		}
		double mean = (double)total / 4;
		print_message("count_max %" PRIu64 ": shards %" PRIu64 " %" PRIu64 " %" PRIu64
		              " %" PRIu64 " (mean %.0f, largest bucket %" PRIu64 ", %zu buckets)\n",
		              counts[c], per[0], per[1], per[2], per[3], mean, largest, m.n_buckets);
		assert_true((double)max <= mean + (double)largest);
		assert_true((double)max <= 1.3 * mean);
		assert_true(vp_manifest_lookup(&m, "big", 3, &(size_t){ 0 }) == VP_WHERE_ABOVE);
		vp_manifest_free(&m);
	}
}

/* A subtree too big to count (count_max 64) is sampled: the estimate is
 * within 30% of its real size on an irregular tree (fixed seed), and the
 * split that follows still balances two shards within 1.3 of the mean. */
static void partition_sampled(void **state)
{
	(void)state;
	char rel[256];

	mk("big", true);
	for (int i = 0; i < 20; i++) {
		snprintf(rel, sizeof(rel), "big/s%02d", i);
		mk(rel, true);
		mkfiles(rel, 20 + (i * 7) % 41);
		if (i % 3 == 0) {
			snprintf(rel, sizeof(rel), "big/s%02d/deeper", i);
			mk(rel, true);
			mkfiles(rel, 15);
		}
	}
	for (int i = 0; i < 6; i++) {
		snprintf(rel, sizeof(rel), "small%d", i);
		mk(rel, true);
		mkfiles(rel, 10);
	}
	struct vp_manifest m;
	struct vp_partition_cfg cfg = { .n_shards = 1, .per_shard = 1, .count_max = 64,
		                        .seed = 7 };
	plan_cfg(&cfg, &m);
	size_t idx;
	assert_int_equal(vp_manifest_lookup(&m, "big", 3, &idx), VP_WHERE_SUBTREE);
	struct plist l = { 0 };
	bucket_entries(&m, &m.buckets[idx], &l);
	double est = (double)m.buckets[idx].estimate, real = (double)l.n;
	print_message("big: estimated %.0f, real %.0f\n", est, real);
	assert_true(est >= 0.7 * real && est <= 1.3 * real);
	pl_free(&l);
	check_cover(&m, NULL);
	vp_manifest_free(&m);

	cfg.n_shards = 2;
	cfg.per_shard = 2;
	uint64_t per[2] = { 0 };
	plan_cfg(&cfg, &m);
	check_cover(&m, per);
	double mean = (double)(per[0] + per[1]) / 2;
	print_message("2 shards: %" PRIu64 " %" PRIu64 "\n", per[0], per[1]);
	assert_true((double)per[0] <= 1.3 * mean && (double)per[1] <= 1.3 * mean);
	assert_int_equal(vp_manifest_lookup(&m, "big", 3, &idx), VP_WHERE_ABOVE);

	/* With threads estimating at once, the same buckets, estimates and
	 * shards: each candidate's sampling has its own seed. */
	for (unsigned jobs = 2; jobs <= 16; jobs *= 4) {
		struct vp_manifest mj;
		cfg.jobs = jobs;
		plan_cfg(&cfg, &mj);
		assert_int_equal(mj.n_buckets, m.n_buckets);
		assert_int_equal(mj.n_above, m.n_above);
		for (size_t i = 0; i < m.n_buckets; i++) {
			assert_string_equal(mj.buckets[i].path, m.buckets[i].path);
			assert_int_equal(mj.buckets[i].kind, m.buckets[i].kind);
			assert_int_equal(mj.buckets[i].estimate, m.buckets[i].estimate);
			assert_int_equal(mj.buckets[i].shard, m.buckets[i].shard);
		}
		vp_manifest_free(&mj);
	}
	vp_manifest_free(&m);
}

/* ---- K/N and the environment ---- */

static void shard_parse(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int r;
		uint32_t k, n;
	} t[] = {
		{ "0/1", 0, 0, 1 },       { "3/4", 0, 3, 4 },       { "0/65536", 0, 0, 65536 },
		{ "65535/65536", 0, 65535, 65536 },
		{ "4/4", -ERANGE, 0, 0 }, { "0/0", -ERANGE, 0, 0 }, { "0/65537", -ERANGE, 0, 0 },
		{ "-1/4", -EINVAL, 0, 0 }, { "+1/4", -EINVAL, 0, 0 }, { "01/4", -EINVAL, 0, 0 },
		{ "1/04", -EINVAL, 0, 0 }, { " 1/4", -EINVAL, 0, 0 }, { "1/4 ", -EINVAL, 0, 0 },
		{ "1/", -EINVAL, 0, 0 },  { "/4", -EINVAL, 0, 0 },  { "1", -EINVAL, 0, 0 },
		{ "1/4/5", -EINVAL, 0, 0 }, { "a/4", -EINVAL, 0, 0 }, { "", -EINVAL, 0, 0 },
		{ "4294967296/1", -EINVAL, 0, 0 }, { "1/99999999999", -EINVAL, 0, 0 },
		{ "auto", -EINVAL, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint32_t k = 77, n = 77;
		int r = vp_shard_parse(t[i].s, &k, &n);
		if (r != t[i].r)
			fail_msg("\"%s\": %d, want %d", t[i].s, r, t[i].r);
		if (r == 0) {
			assert_int_equal(k, t[i].k);
			assert_int_equal(n, t[i].n);
		} else {
			assert_int_equal(k, 77); /* untouched */
		}
	}
}

static void shard_env(void **state)
{
	(void)state;
	static const struct {
		const char *env[8];
		uint32_t hint;
		int r;
		uint32_t k, n;
		enum vp_shard_source src;
		const char *var;
	} t[] = {
		{ { NULL }, 0, -ENOENT, 0, 0, 0, NULL },
		{ { "PATH=/bin", NULL }, 4, -ENOENT, 0, 0, 0, NULL },
		{ { "SLURM_ARRAY_TASK_ID=2", "SLURM_ARRAY_TASK_COUNT=4", NULL }, 0, 0, 2, 4,
		  VP_SHARD_SRC_SLURM_ARRAY, NULL },
		/* --array=1-4: ids 1..4 are shards 0..3 */
		{ { "SLURM_ARRAY_TASK_ID=1", "SLURM_ARRAY_TASK_COUNT=4", "SLURM_ARRAY_TASK_MIN=1",
		    "SLURM_ARRAY_TASK_MAX=4", NULL }, 4, 0, 0, 4, VP_SHARD_SRC_SLURM_ARRAY, NULL },
		{ { "SLURM_ARRAY_TASK_ID=4", "SLURM_ARRAY_TASK_COUNT=4", "SLURM_ARRAY_TASK_MIN=1",
		    "SLURM_ARRAY_TASK_MAX=4", NULL }, 0, 0, 3, 4, VP_SHARD_SRC_SLURM_ARRAY, NULL },
		/* without MIN an offset array is out of range, not silently wrong */
		{ { "SLURM_ARRAY_TASK_ID=4", "SLURM_ARRAY_TASK_COUNT=4", NULL }, 0, -ERANGE, 0, 0, 0,
		  "SLURM_ARRAY_TASK_ID" },
		/* --array=10-22:4 -> 10,14,18,22 */
		{ { "SLURM_ARRAY_TASK_ID=18", "SLURM_ARRAY_TASK_COUNT=4", "SLURM_ARRAY_TASK_MIN=10",
		    "SLURM_ARRAY_TASK_MAX=22", "SLURM_ARRAY_TASK_STEP=4", NULL }, 0, 0, 2, 4,
		  VP_SHARD_SRC_SLURM_ARRAY, NULL },
		/* --array=1,3,8: not a range */
		{ { "SLURM_ARRAY_TASK_ID=3", "SLURM_ARRAY_TASK_COUNT=3", "SLURM_ARRAY_TASK_MIN=1",
		    "SLURM_ARRAY_TASK_MAX=8", NULL }, 0, -ERANGE, 0, 0, 0, "SLURM_ARRAY_TASK_MAX" },
		{ { "SLURM_ARRAY_TASK_ID=2", NULL }, 0, -EINVAL, 0, 0, 0, "SLURM_ARRAY_TASK_COUNT" },
		{ { "SLURM_ARRAY_TASK_ID=x", "SLURM_ARRAY_TASK_COUNT=4", NULL }, 0, -EINVAL, 0, 0, 0,
		  "SLURM_ARRAY_TASK_ID" },
		/* the array's batch step: PROCID 0 of 1 yields */
		{ { "SLURM_ARRAY_TASK_ID=2", "SLURM_ARRAY_TASK_COUNT=4", "SLURM_PROCID=0",
		    "SLURM_NTASKS=1", NULL }, 0, 0, 2, 4, VP_SHARD_SRC_SLURM_ARRAY, NULL },
		/* ...and without -n, where Slurm sets no SLURM_NTASKS */
		{ { "SLURM_ARRAY_TASK_ID=2", "SLURM_ARRAY_TASK_COUNT=4", "SLURM_PROCID=0", NULL }, 0,
		  0, 2, 4, VP_SHARD_SRC_SLURM_ARRAY, NULL },
		{ { "SLURM_PROCID=0", NULL }, 0, -ENOENT, 0, 0, 0, NULL },
		{ { "SLURM_PROCID=0", "OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=2", NULL }, 0, 0,
		  1, 2, VP_SHARD_SRC_OMPI, NULL },
		{ { "SLURM_PROCID=3", NULL }, 0, -EINVAL, 0, 0, 0, "SLURM_NTASKS" },
		/* srun -n 3 inside an array task: ambiguous */
		{ { "SLURM_ARRAY_TASK_ID=2", "SLURM_ARRAY_TASK_COUNT=4", "SLURM_PROCID=1",
		    "SLURM_NTASKS=3", NULL }, 0, -EEXIST, 0, 0, 0, NULL },
		{ { "SLURM_PROCID=5", "SLURM_NTASKS=8", NULL }, 0, 0, 5, 8, VP_SHARD_SRC_SLURM_STEP,
		  NULL },
		{ { "SLURM_PROCID=8", "SLURM_NTASKS=8", NULL }, 0, -ERANGE, 0, 0, 0, "SLURM_PROCID" },
		{ { "SLURM_NTASKS=8", NULL }, 0, -EINVAL, 0, 0, 0, "SLURM_PROCID" },
		/* the count from the manifest must match */
		{ { "SLURM_PROCID=1", "SLURM_NTASKS=8", NULL }, 4, -ERANGE, 0, 0, 0, "SLURM_NTASKS" },
		/* srun --mpi=pmi2: both, agreeing */
		{ { "SLURM_PROCID=1", "SLURM_NTASKS=4", "PMI_RANK=1", "PMI_SIZE=4", NULL }, 0, 0, 1,
		  4, VP_SHARD_SRC_PMI, NULL },
		{ { "SLURM_PROCID=1", "SLURM_NTASKS=4", "PMI_RANK=2", "PMI_SIZE=4", NULL }, 0,
		  -EEXIST, 0, 0, 0, NULL },
		{ { "OMPI_COMM_WORLD_RANK=3", "OMPI_COMM_WORLD_SIZE=4", NULL }, 0, 0, 3, 4,
		  VP_SHARD_SRC_OMPI, NULL },
		{ { "OMPI_COMM_WORLD_RANK=3", NULL }, 0, -EINVAL, 0, 0, 0, "OMPI_COMM_WORLD_SIZE" },
		{ { "OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=0", NULL }, 0, -ERANGE, 0, 0, 0,
		  "OMPI_COMM_WORLD_SIZE" },
		{ { "PMI_RANK=0", "PMI_SIZE=2", NULL }, 2, 0, 0, 2, VP_SHARD_SRC_PMI, NULL },
		{ { "JOB_COMPLETION_INDEX=3", NULL }, 5, 0, 3, 5, VP_SHARD_SRC_K8S, NULL },
		{ { "JOB_COMPLETION_INDEX=3", NULL }, 0, -EDOM, 0, 0, 0, "JOB_COMPLETION_INDEX" },
		{ { "JOB_COMPLETION_INDEX=5", NULL }, 5, -ERANGE, 0, 0, 0, "JOB_COMPLETION_INDEX" },
		{ { "JOB_COMPLETION_INDEX=05", NULL }, 8, -EINVAL, 0, 0, 0, "JOB_COMPLETION_INDEX" },
		{ { "JOB_COMPLETION_INDEX=-1", NULL }, 8, -EINVAL, 0, 0, 0, "JOB_COMPLETION_INDEX" },
		/* a prefix of a name is not the name */
		{ { "PMI_RANKX=1", "PMI_SIZEX=2", NULL }, 0, -ENOENT, 0, 0, 0, NULL },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct vp_shard_env e;
		char why[512];
		int r = vp_shard_from_env((char *const *)t[i].env, t[i].hint, &e);
		if (r != t[i].r)
			fail_msg("case %zu: %d, want %d", i, r, t[i].r);
		if (r == 0) {
			assert_int_equal(e.k, t[i].k);
			assert_int_equal(e.n, t[i].n);
			assert_int_equal(e.source, t[i].src);
		} else {
			if (t[i].var)
				assert_string_equal(e.var, t[i].var);
			vp_shard_env_why(r, &e, why, sizeof(why));
			/* one sentence: no newline, no final period */
			assert_null(strchr(why, '\n'));
			assert_true(why[strlen(why) - 1] != '.');
			print_message("  %s\n", why);
		}
	}
}

/* ---- sightings ---- */

static const uint8_t HOST_A[16] = { 1 }, HOST_B[16] = { 2 }, HOST_C[16] = { 3 };

static struct vp_sighting sgt(uint64_t ino, uint64_t nlink, uint64_t pino, const char *path)
{
	return (struct vp_sighting){ .dev = 50, .ino = ino, .fsid = 0x1234, .nlink = nlink,
		                     .parent_dev = 50, .parent_ino = pino, .uid = 1000,
		                     .gid = 1000, .mode = S_IFREG | 0644, .ctime_sec = 100,
		                     .ctime_nsec = 5, .path = path,
		                     .path_len = (uint32_t)strlen(path) };
}

struct verdicts {
	char first[16][64];
	enum vp_sight_verdict v[16];
	uint64_t links[16];
	size_t n;
};

static int collect(const struct vp_sight_inode *in, void *ud)
{
	struct verdicts *vs = ud;
	assert_true(vs->n < 16);
	snprintf(vs->first[vs->n], 64, "%.*s", (int)in->first->path_len, in->first->path);
	vs->v[vs->n] = in->verdict;
	vs->links[vs->n] = in->links;
	for (uint64_t i = 0; i < in->links; i++)
		assert_int_equal(in->all[i]->ino, in->first->ino);
	vs->n++;
	return 0;
}

static enum vp_sight_verdict verdict_of(const struct verdicts *vs, const char *first)
{
	for (size_t i = 0; i < vs->n; i++)
		if (strcmp(vs->first[i], first) == 0)
			return vs->v[i];
	fail_msg("no inode with first link %s", first);
	return VP_SIGHT_DUE;
}

static int count_cb(const uint8_t host[16], const struct vp_sighting *s, void *ud)
{
	(void)host;
	(void)s;
	(*(int *)ud)++;
	return 0;
}

static void sightings_merge(void **state)
{
	(void)state;
	struct vp_run_id id;
	struct vp_sight_writer *w[3];
	const uint8_t *hosts[3] = { HOST_A, HOST_B, HOST_C };
	int jfd = open_jdir();

	assert_int_equal(vp_run_id_new(&id), 0);
	for (uint32_t k = 0; k < 3; k++)
		assert_int_equal(vp_sight_create(jfd, &id, k, hosts[k], &w[k]), 0);
	/* inode 10: three links, one in each shard: due */
	struct vp_sighting s = sgt(10, 3, 1, "a/one");
	assert_int_equal(vp_sight_add(w[0], &s), 0);
	s = sgt(10, 3, 2, "b/two");
	assert_int_equal(vp_sight_add(w[1], &s), 0);
	s = sgt(10, 3, 3, "c/three");
	assert_int_equal(vp_sight_add(w[2], &s), 0);
	/* inode 11: three links, two inside, one outside the tree: external */
	s = sgt(11, 3, 1, "a/x");
	assert_int_equal(vp_sight_add(w[0], &s), 0);
	s = sgt(11, 3, 3, "c/y");
	assert_int_equal(vp_sight_add(w[2], &s), 0);
	/* inode 12: its ctime moved between two shards: changed */
	s = sgt(12, 2, 1, "a/m");
	assert_int_equal(vp_sight_add(w[0], &s), 0);
	s = sgt(12, 2, 2, "b/m");
	s.ctime_nsec = 6;
	assert_int_equal(vp_sight_add(w[1], &s), 0);
	/* inode 13: one link seen twice (same parent, same name): counts once */
	s = sgt(13, 2, 1, "a/twice");
	assert_int_equal(vp_sight_add(w[0], &s), 0);
	s = sgt(13, 2, 1, "a/twice");
	assert_int_equal(vp_sight_add(w[1], &s), 0);
	/* inode 14 on a filesystem without an id, dev 7 on two hosts: the
	 * same numbers may be two inodes: kept apart, not due */
	s = sgt(14, 2, 1, "a/nofsid");
	s.fsid = 0;
	s.dev = s.parent_dev = 7;
	assert_int_equal(vp_sight_add(w[0], &s), 0);
	s = sgt(14, 2, 2, "b/nofsid");
	s.fsid = 0;
	s.dev = s.parent_dev = 7;
	assert_int_equal(vp_sight_add(w[1], &s), 0);
	/* inode 15 with an fsid, different st_dev on two hosts: one inode */
	s = sgt(15, 2, 1, "a/fsid");
	s.dev = s.parent_dev = 8;
	assert_int_equal(vp_sight_add(w[0], &s), 0);
	s = sgt(15, 2, 2, "b/fsid");
	s.dev = s.parent_dev = 9;
	assert_int_equal(vp_sight_add(w[2], &s), 0);
	/* Refused: the root, a directory, a bad path. */
	s = sgt(16, 2, 1, ".");
	assert_int_equal(vp_sight_add(w[0], &s), -EINVAL);
	s = sgt(16, 2, 1, "a/d");
	s.mode = S_IFDIR | 0755;
	assert_int_equal(vp_sight_add(w[0], &s), -EINVAL);
	s = sgt(16, 2, 1, "a/../b");
	assert_int_equal(vp_sight_add(w[0], &s), -EINVAL);
	for (uint32_t k = 0; k < 3; k++)
		assert_int_equal(vp_sight_commit(w[k]), 0);

	int n = 0;
	assert_int_equal(vp_sight_read(jfd, &id, 0, count_cb, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(vp_sight_read(jfd, &id, 3, count_cb, &n), -ENOENT);

	struct vp_sight_merge *m;
	struct verdicts vs = { 0 };
	assert_int_equal(vp_sight_merge_new(false, &m), 0);
	for (uint32_t k = 0; k < 3; k++)
		assert_int_equal(vp_sight_merge_file(m, jfd, &id, k), 0);
	assert_int_equal(vp_sight_merge_each(m, collect, &vs), 0);
	assert_int_equal(vs.n, 7);
	assert_int_equal(verdict_of(&vs, "a/one"), VP_SIGHT_DUE);
	assert_int_equal(verdict_of(&vs, "a/x"), VP_SIGHT_EXTERNAL);
	assert_int_equal(verdict_of(&vs, "a/m"), VP_SIGHT_UNSTABLE);
	assert_int_equal(verdict_of(&vs, "a/twice"), VP_SIGHT_EXTERNAL);
	assert_int_equal(verdict_of(&vs, "a/nofsid"), VP_SIGHT_EXTERNAL);
	assert_int_equal(verdict_of(&vs, "b/nofsid"), VP_SIGHT_EXTERNAL);
	assert_int_equal(verdict_of(&vs, "a/fsid"), VP_SIGHT_DUE);
	vp_sight_merge_free(m);

	/* --allow-external-links: every inode due, as on one host. */
	memset(&vs, 0, sizeof(vs));
	assert_int_equal(vp_sight_merge_new(true, &m), 0);
	for (uint32_t k = 0; k < 3; k++)
		assert_int_equal(vp_sight_merge_file(m, jfd, &id, k), 0);
	assert_int_equal(vp_sight_merge_each(m, collect, &vs), 0);
	assert_int_equal(verdict_of(&vs, "a/x"), VP_SIGHT_DUE);
	vp_sight_merge_free(m);

	/* Damage: every flipped byte of shard 0's file is refused, and the
	 * callback never runs for a damaged file. */
	char name[VP_MANIFEST_NAME_MAX];
	int fd;
	struct stat st;
	vp_sight_name(name, &id, 0);
	fd = openat(jfd, name, O_RDONLY | O_CLOEXEC);
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *buf = malloc((size_t)st.st_size);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	for (off_t i = 0; i < st.st_size; i++) {
		n = 0;
		buf[i] ^= 0x10;
		assert_int_equal(vp_sight_decode(buf, (size_t)st.st_size, &id, 0, count_cb, &n),
		                 -EBADMSG);
		assert_int_equal(n, 0);
		buf[i] ^= 0x10;
	}
	for (off_t i = 0; i < st.st_size; i++)
		assert_int_equal(vp_sight_decode(buf, (size_t)i, &id, 0, count_cb, &n), -EBADMSG);
	/* Another shard's or run's file under this name. */
	assert_int_equal(vp_sight_decode(buf, (size_t)st.st_size, &id, 1, count_cb, &n), -EBADMSG);
	struct vp_run_id other;
	vp_run_id_new(&other);
	assert_int_equal(vp_sight_decode(buf, (size_t)st.st_size, &other, 0, count_cb, &n),
	                 -EBADMSG);
	free(buf);

	/* An aborted writer leaves nothing. */
	assert_int_equal(vp_sight_create(jfd, &other, 0, HOST_A, &w[0]), 0);
	vp_sight_abort(w[0]);
	DIR *d = opendir(jdir);
	struct dirent *de;
	char hex[VP_RUN_ID_HEX];
	vp_run_id_hex(&other, hex);
	while ((de = readdir(d)))
		assert_null(strstr(de->d_name, hex));
	closedir(d);
	close(jfd);
}

/* The same through a real tree and a real plan: three buckets a, b, c on
 * three shards; inode X linked from a, b and c; inode Y from a, b and from
 * outside the tree. Each simulated shard records what it sees in its own
 * buckets (nlink > 1 only); finalize's merge: X due once, Y external. */
struct shard_sim {
	struct vp_sight_writer *w;
	const struct vp_manifest *m;
	uint64_t fsid;
};

static void record_below(struct shard_sim *sim, int dfd, const char *rel, bool files_only)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fdopendir(fd);
	struct dirent *de;
	struct stat self;
	assert_int_equal(fstat(dirfd(d), &self), 0);
	while ((de = readdir(d))) {
		char p[8192];
		struct stat st;
		size_t idx;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		join(p, sizeof(p), rel, de->d_name);
		assert_int_equal(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
		if (S_ISDIR(st.st_mode)) {
			if (files_only && vp_manifest_lookup(sim->m, p, strlen(p), &idx))
				continue;
			int c = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			record_below(sim, c, p, false);
			close(c);
		} else if (st.st_nlink > 1) {
			struct vp_sighting s = {
				.dev = st.st_dev, .ino = st.st_ino, .fsid = sim->fsid,
				.nlink = st.st_nlink, .parent_dev = self.st_dev,
				.parent_ino = self.st_ino, .uid = st.st_uid, .gid = st.st_gid,
				.mode = st.st_mode, .ctime_sec = st.st_ctim.tv_sec,
				.ctime_nsec = (uint32_t)st.st_ctim.tv_nsec, .path = p,
				.path_len = (uint32_t)strlen(p),
			};
			assert_int_equal(vp_sight_add(sim->w, &s), 0);
		}
	}
	closedir(d);
}

static void sightings_tree(void **state)
{
	(void)state;
	char a[8400], b[8400];
	struct vp_manifest m;

	mk("a", true);
	mk("b", true);
	mk("c", true);
	mkfiles("a", 4);
	mkfiles("b", 4);
	mkfiles("c", 4);
	mk("a/X", false);
	mk("a/Y", false);
	snprintf(a, sizeof(a), "%s/a/X", tree);
	snprintf(b, sizeof(b), "%s/b/X2", tree);
	assert_int_equal(link(a, b), 0);
	snprintf(b, sizeof(b), "%s/c/X3", tree);
	assert_int_equal(link(a, b), 0);
	snprintf(a, sizeof(a), "%s/a/Y", tree);
	snprintf(b, sizeof(b), "%s/b/Y2", tree);
	assert_int_equal(link(a, b), 0);
	snprintf(b, sizeof(b), "%s/Y-outside", dir);
	assert_int_equal(link(a, b), 0);
	mk("c/pad", false); /* a, b, c: six entries each */
	mk("c/pad2", false);
	mk("b/pad", false);

	plan(3, 0, &m, NULL);
	size_t ia, ib, ic;
	assert_int_equal(vp_manifest_lookup(&m, "a", 1, &ia), VP_WHERE_SUBTREE);
	assert_int_equal(vp_manifest_lookup(&m, "b", 1, &ib), VP_WHERE_SUBTREE);
	assert_int_equal(vp_manifest_lookup(&m, "c", 1, &ic), VP_WHERE_SUBTREE);
	assert_int_not_equal(m.buckets[ia].shard, m.buckets[ib].shard);
	assert_int_not_equal(m.buckets[ib].shard, m.buckets[ic].shard);
	assert_int_not_equal(m.buckets[ia].shard, m.buckets[ic].shard);

	int jfd = open_jdir(), tfd = open_tree();
	for (uint32_t k = 0; k < 3; k++) {
		struct shard_sim sim = { .m = &m, .fsid = m.fsid };
		assert_int_equal(vp_sight_create(jfd, &m.id, k, HOST_A, &sim.w), 0);
		for (size_t i = 0; i < m.n_buckets; i++) {
			const struct vp_bucket *bk = &m.buckets[i];
			if (bk->shard != k)
				continue;
			int fd = open_rel(bk->path);
			record_below(&sim, fd, bk->path, bk->kind == VP_BUCKET_FILES);
			close(fd);
		}
		assert_int_equal(vp_sight_commit(sim.w), 0);
	}
	struct vp_sight_merge *mg;
	struct verdicts vs = { 0 };
	assert_int_equal(vp_sight_merge_new(false, &mg), 0);
	for (uint32_t k = 0; k < 3; k++)
		assert_int_equal(vp_sight_merge_file(mg, jfd, &m.id, k), 0);
	assert_int_equal(vp_sight_merge_each(mg, collect, &vs), 0);
	assert_int_equal(vs.n, 2);
	assert_int_equal(verdict_of(&vs, "a/X"), VP_SIGHT_DUE);
	assert_int_equal(verdict_of(&vs, "a/Y"), VP_SIGHT_EXTERNAL);
	for (size_t i = 0; i < vs.n; i++)
		assert_int_equal(vs.links[i], strcmp(vs.first[i], "a/X") == 0 ? 3 : 2);
	vp_sight_merge_free(mg);
	vp_manifest_free(&m);
	close(jfd);
	close(tfd);
}

/* ---- run state ---- */

static void journal_names(void **state)
{
	(void)state;
	struct vp_run_id id, id2;
	char name[VP_SHARD_JNAME_MAX];
	uint64_t dev, ino, created;
	uint32_t k;

	assert_int_equal(vp_run_id_new(&id), 0);
	vp_shard_journal_name(name, 0x803, 0x1234, 0x17a0000000000000ull, &id, 7);
	assert_int_equal(strlen(name), 102);
	assert_true(vp_shard_journal_parse(name, &dev, &ino, &created, &id2, &k));
	assert_int_equal(dev, 0x803);
	assert_int_equal(ino, 0x1234);
	assert_int_equal(created, 0x17a0000000000000ull);
	assert_int_equal(k, 7);
	assert_true(vp_run_id_eq(&id, &id2));
	vp_shard_journal_name(name, 1, 2, 3, &id, VP_SHARD_FINALIZE);
	assert_true(vp_shard_journal_parse(name, &dev, &ino, &created, &id2, &k));
	assert_int_equal(k, VP_SHARD_FINALIZE);
	/* Plain journals and near misses are not shard journals. */
	assert_false(vp_shard_journal_parse(
		"vp-0000000000000803-0000000000001234-17a0000000000000.vpj", &dev, &ino, &created,
		&id2, &k));
	char bad[VP_SHARD_JNAME_MAX];
	for (size_t i = 0; i < 102; i++) {
		if (i >= 3 && i != 19 && i != 36 && !(i >= 53 && i < 57) && i != 89 && i < 98)
			continue; /* hex digits: a changed digit is another name */
		memcpy(bad, name, sizeof(bad));
		bad[i] = 'X';
		assert_false(vp_shard_journal_parse(bad, &dev, &ino, &created, &id2, &k));
	}
	memcpy(bad, name, sizeof(bad));
	bad[60] = 'A'; /* uppercase hex: not a name we write */
	assert_false(vp_shard_journal_parse(bad, &dev, &ino, &created, &id2, &k));
}

static struct vp_jwriter *mkjournal(int jfd, const struct vp_run_id *id, uint32_t k,
                                    uint64_t created)
{
	char name[VP_SHARD_JNAME_MAX];
	struct vp_jheader h = { .version = VP_JOURNAL_VERSION, .created_ns = created,
		                .root_dev = 5, .root_ino = 6, .seq = created, .host = "h",
		                .root = "/vol", .policy = "uid 5\n", .policy_len = 6 };
	struct vp_jwriter *w;
	vp_shard_journal_name(name, 5, 6, created, id, k);
	assert_int_equal(vp_jw_create(jfd, name, &h, 4, &w), 0);
	return w;
}

static enum vp_run_state run_state(int jfd, const struct vp_run_id *id, uint32_t n,
                                   struct vp_shard_status **st)
{
	assert_int_equal(vp_run_status(jfd, id, n, st), 0);
	return vp_run_state_of(*st, n);
}

static void run_status(void **state)
{
	(void)state;
	struct vp_run_id id;
	struct vp_shard_status *st;
	int jfd = open_jdir();

	assert_int_equal(vp_run_id_new(&id), 0);
	assert_int_equal(run_state(jfd, &id, 3, &st), VP_RUN_PLANNED);
	for (int k = 0; k < 3; k++)
		assert_int_equal(st[k].state, VP_SHARD_NOT_STARTED);
	assert_int_equal(st[3].k, VP_SHARD_FINALIZE);
	free(st);

	/* Shard 0 committed, shard 1 running (its writer holds the lock). */
	struct vp_jwriter *w0 = mkjournal(jfd, &id, 0, 100), *w1 = mkjournal(jfd, &id, 1, 101);
	assert_int_equal(vp_jw_mark(w0, VP_REC_COMMIT), 0);
	vp_jw_close(w0);
	assert_int_equal(run_state(jfd, &id, 3, &st), VP_RUN_IN_PROGRESS);
	assert_int_equal(st[0].state, VP_SHARD_COMMITTED);
	assert_int_equal(st[1].state, VP_SHARD_RUNNING);
	assert_int_equal(st[2].state, VP_SHARD_NOT_STARTED);
	assert_int_equal(st[0].n_journals, 1);
	free(st);
	/* Shard 1's process dies: hot, the run failed. */
	vp_jw_close(w1);
	assert_int_equal(run_state(jfd, &id, 3, &st), VP_RUN_FAILED);
	assert_int_equal(st[1].state, VP_SHARD_HOT);
	free(st);
	/* Recovered (rolled back), restarted, committed: the newest decides. */
	struct vp_jwriter *w;
	char name1[VP_SHARD_JNAME_MAX];
	vp_shard_journal_name(name1, 5, 6, 101, &id, 1);
	assert_int_equal(vp_jw_open(jfd, name1, 4, &w), 0);
	assert_int_equal(vp_jw_mark(w, VP_REC_ROLLBACK_BEGIN), 0);
	assert_int_equal(vp_jw_mark(w, VP_REC_ROLLED_BACK), 0);
	vp_jw_close(w);
	assert_int_equal(run_state(jfd, &id, 3, &st), VP_RUN_FAILED); /* 0 done, 1 undone */
	assert_int_equal(st[1].state, VP_SHARD_ROLLED_BACK);
	free(st);
	w = mkjournal(jfd, &id, 1, 102);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	vp_jw_close(w);
	w = mkjournal(jfd, &id, 2, 103);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	vp_jw_close(w);
	assert_int_equal(run_state(jfd, &id, 3, &st), VP_RUN_READY);
	assert_int_equal(st[1].state, VP_SHARD_COMMITTED);
	assert_int_equal(st[1].n_journals, 2);
	assert_false(st[1].sightings);
	free(st);
	/* Another run's journals and shard numbers beyond N are not ours. */
	struct vp_run_id other;
	vp_run_id_new(&other);
	w = mkjournal(jfd, &other, 0, 104);
	vp_jw_close(w); /* hot, but another run's */
	w = mkjournal(jfd, &id, 7, 105);
	vp_jw_close(w);
	assert_int_equal(run_state(jfd, &id, 3, &st), VP_RUN_READY);
	free(st);
	/* Finalize: running, then committed. */
	w = mkjournal(jfd, &id, VP_SHARD_FINALIZE, 106);
	assert_int_equal(run_state(jfd, &id, 3, &st), VP_RUN_FINALIZING);
	assert_int_equal(st[3].state, VP_SHARD_RUNNING);
	free(st);
	assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	vp_jw_close(w);
	assert_int_equal(run_state(jfd, &id, 3, &st), VP_RUN_COMMITTED);
	free(st);
	/* A journal someone planted under a shard name of another root. */
	char planted[VP_SHARD_JNAME_MAX], src[VP_SHARD_JNAME_MAX];
	vp_shard_journal_name(src, 5, 6, 103, &id, 2);
	vp_shard_journal_name(planted, 9, 9, 200, &id, 2);
	assert_int_equal(linkat(jfd, src, jfd, planted, 0), 0);
	assert_int_equal(run_state(jfd, &id, 3, &st), VP_RUN_COMMITTED);
	assert_int_equal(st[2].state, VP_SHARD_UNREADABLE);
	free(st);
	close(jfd);

	/* The run state as a table of shard states. */
	struct vp_shard_status t[3] = { { .k = 0 }, { .k = 1 }, { .k = VP_SHARD_FINALIZE } };
	t[0].state = VP_SHARD_ROLLED_BACK;
	t[1].state = VP_SHARD_NOT_STARTED;
	assert_int_equal(vp_run_state_of(t, 2), VP_RUN_ROLLED_BACK);
	t[2].state = VP_SHARD_ROLLED_BACK;
	t[0].state = VP_SHARD_COMMITTED;
	t[1].state = VP_SHARD_COMMITTED;
	assert_int_equal(vp_run_state_of(t, 2), VP_RUN_FAILED); /* rollback half done */
	t[0].state = t[1].state = VP_SHARD_ROLLED_BACK;
	assert_int_equal(vp_run_state_of(t, 2), VP_RUN_ROLLED_BACK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(manifest_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(manifest_damage, setup, teardown),
		cmocka_unit_test(manifest_invariants),
		cmocka_unit_test_setup_teardown(partition_cover, setup, teardown),
		cmocka_unit_test_setup_teardown(partition_balance, setup, teardown),
		cmocka_unit_test_setup_teardown(partition_sampled, setup, teardown),
		cmocka_unit_test(shard_parse),
		cmocka_unit_test(shard_env),
		cmocka_unit_test_setup_teardown(sightings_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(sightings_tree, setup, teardown),
		cmocka_unit_test(journal_names),
		cmocka_unit_test_setup_teardown(run_status, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
