/* Unit tests for include/volperm/walk.h: the walk's ordering guarantee, on
 * real trees.
 *
 * Three trees under a temporary directory (a random mix of fan-out and
 * depth with empty directories, a wide one, a deep chain with files at
 * every level and a fan at the bottom, symlinks to directories among
 * them), each walked with 1, 2, 3, 4 and 8 workers. The rules under test:
 *  - every entry is delivered exactly once, as VP_WALK_ENTRY, with the
 *    (dev, ino) and the parent's that lstat shows, its name the last
 *    component of its path, its dirfd and fd (when given) that very entry;
 *  - every directory after all its descendants, and when a descendant was
 *    delivered by another worker, after a barrier of that worker that came
 *    after it (its changes are finished before the directory's);
 *  - the root last;
 *  - the same set with N workers as with one;
 *  - a symlink to a directory is delivered, never entered;
 *  - a callback's error stops the walk and is what vp_walk returns;
 *  - a non-directory root is the whole walk.
 * The callbacks yield and sleep now and then, so that runs differ in their
 * interleavings; argv[1] sets the number of rounds (default 3). To be sure
 * that nothing is timing-dependent, run it in a loop, and under ASan. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "volperm/policy.h"
#include "volperm/walk.h"

static char base[PATH_MAX];
static unsigned rounds = 3;
static unsigned multi_worker_walks; /* walks where more than one worker delivered */

/* ---- the trees, and what a walk must find in them ---- */

struct expect {
	char *path;   /* relative to the tree's root; "." for the root */
	bool dir;
	dev_t dev;
	ino_t ino;
};

struct tree {
	char root[PATH_MAX];
	struct expect *v;
	size_t n, cap;
};

static void tree_add(struct tree *t, const char *rel)
{
	char p[PATH_MAX * 2];
	struct stat st;

	assert_true((size_t)snprintf(p, sizeof(p), "%s/%s", t->root, rel) < sizeof(p));
	assert_int_equal(lstat(p, &st), 0);
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 1024;
		t->v = realloc(t->v, t->cap * sizeof(*t->v));
		assert_non_null(t->v);
	}
	t->v[t->n++] = (struct expect){ strdup(rel), S_ISDIR(st.st_mode), st.st_dev, st.st_ino };
	assert_non_null(t->v[t->n - 1].path);
}

static void mk_dir(struct tree *t, const char *rel)
{
	char p[PATH_MAX * 2];

	assert_true((size_t)snprintf(p, sizeof(p), "%s/%s", t->root, rel) < sizeof(p));
	assert_int_equal(mkdir(p, 0755), 0);
	tree_add(t, rel);
}

static void mk_file(struct tree *t, const char *rel)
{
	char p[PATH_MAX * 2];
	int fd;

	assert_true((size_t)snprintf(p, sizeof(p), "%s/%s", t->root, rel) < sizeof(p));
	fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	tree_add(t, rel);
}

static void mk_symlink(struct tree *t, const char *target, const char *rel)
{
	char p[PATH_MAX * 2];

	assert_true((size_t)snprintf(p, sizeof(p), "%s/%s", t->root, rel) < sizeof(p));
	assert_int_equal(symlink(target, p), 0);
	tree_add(t, rel);
}

static void tree_init(struct tree *t, const char *name)
{
	memset(t, 0, sizeof(*t));
	int n = snprintf(t->root, sizeof(t->root), "%s/%s", base, name);
	assert_true(n > 0 && (size_t)n < sizeof(t->root));
	assert_int_equal(mkdir(t->root, 0755), 0);
	tree_add(t, ".");
}

static void tree_free(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].path);
	free(t->v);
	t->v = NULL;
	t->n = t->cap = 0;
}

static unsigned long lcg(unsigned long *s)
{
	*s = *s * 6364136223846793005ul + 1442695040888963407ul;
	return *s >> 33;
}

/* Fan-out and depth mixed at random: 0-7 files and 0-4 directories a
 * level, fewer further down; some directories stay empty. */
static void gen_mixed(struct tree *t, const char *rel, int depth, unsigned long *seed)
{
	char p[PATH_MAX];
	unsigned nf = (unsigned)(lcg(seed) % 8), nd = depth < 6 ? (unsigned)(lcg(seed) % 5) : 0;

	if (depth > 0 && lcg(seed) % 6 == 0)
		return; /* an empty directory */
	for (unsigned i = 0; i < nf; i++) {
		/* never truncated: a path that does not fit fails the test */
		assert_true((size_t)snprintf(p, sizeof(p), "%s/f%u", rel, i) < sizeof(p));
		mk_file(t, p);
	}
	for (unsigned i = 0; i < nd; i++) {
		assert_true((size_t)snprintf(p, sizeof(p), "%s/d%u", rel, i) < sizeof(p));
		mk_dir(t, p);
		gen_mixed(t, p, depth + 1, seed);
	}
}

static void build_mixed(struct tree *t)
{
	unsigned long seed = 12;

	tree_init(t, "mixed");
	/* Several top-level subtrees, so that the root's own listing is split. */
	for (int i = 0; i < 24; i++) {
		char p[32];
		snprintf(p, sizeof(p), "top%d", i);
		mk_dir(t, p);
		gen_mixed(t, p, 1, &seed);
	}
	mk_symlink(t, "top0", "link-to-dir");
	mk_symlink(t, "nowhere", "dangling");
}

static void build_wide(struct tree *t, const char *name, int files)
{
	char p[64];

	tree_init(t, name);
	for (int i = 0; i < files; i++) {
		snprintf(p, sizeof(p), "file%04d", i);
		mk_file(t, p);
	}
	for (int i = 0; i < 30; i++) {
		snprintf(p, sizeof(p), "dir%02d", i);
		mk_dir(t, p);
		for (int j = 0; j < 30; j++) {
			snprintf(p, sizeof(p), "dir%02d/f%02d", i, j);
			mk_file(t, p);
		}
	}
	for (int i = 0; i < 20; i++) {
		snprintf(p, sizeof(p), "empty%02d", i);
		mk_dir(t, p);
	}
}

/* Deeper than the walk keeps fds open (it reopens through ".."), files at
 * every level so that any level can be split, a fan at the bottom, and a
 * chain of empty directories. */
static void build_deep(struct tree *t)
{
	char p[PATH_MAX], q[PATH_MAX + 64];
	size_t len = 0;

	tree_init(t, "deep");
	p[0] = 0;
	for (int i = 0; i < 400; i++) {
		len += (size_t)snprintf(p + len, sizeof(p) - len, "%sd", len ? "/" : "");
		mk_dir(t, p);
		for (int j = 0; j < 2; j++) {
			assert_true((size_t)snprintf(q, sizeof(q), "%s/f%d", p, j) < sizeof(q));
			mk_file(t, q);
		}
		if (i == 200) {
			assert_true((size_t)snprintf(q, sizeof(q), "%s/up", p) < sizeof(q));
			mk_symlink(t, "..", q);
		}
	}
	for (int j = 0; j < 300; j++) {
		assert_true((size_t)snprintf(q, sizeof(q), "%s/bottom%03d", p, j) < sizeof(q));
		mk_file(t, q);
	}
	len = 0;
	for (int i = 0; i < 60; i++) {
		len += (size_t)snprintf(p + len, sizeof(p) - len, "%se", len ? "/" : "");
		mk_dir(t, p);
	}
}

/* ---- what a walk delivered ---- */

struct rec {
	char *path;
	enum vp_walk_kind kind;
	unsigned worker;
	unsigned long seq;
	dev_t dev, pdev;
	ino_t ino, pino;
	bool has_parent, dir;
};

struct log {
	pthread_mutex_t mu;
	unsigned jobs;
	unsigned long seq;
	struct rec *v;
	size_t n, cap;
	/* barriers: per worker, the seqs at which one returned */
	unsigned long *bar[8];
	size_t n_bar[8], cap_bar[8];
	unsigned long jitter;
	unsigned long fail_at;   /* 0, or the entry whose callback fails */
	unsigned bad;            /* checks that failed in a callback */
	char why[512];
};

/* cmocka's checks longjmp: not from the walk's threads. */
static void bad(struct log *l, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&l->mu);
	if (!l->bad++) {
		va_start(ap, fmt);
		vsnprintf(l->why, sizeof(l->why), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&l->mu);
}

/* Now and then a yield or a short sleep, differently in every round. */
static void jitter(struct log *l, unsigned long seq, unsigned long salt)
{
	unsigned long x = (seq * 2654435761ul) ^ (l->jitter + salt * 40503ul);

	x ^= x >> 13;
	if (x % 97 == 0)
		sched_yield();
	else if (x % 1009 == 1)
		usleep(200);
}

static bool same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int on_entry(const struct vp_walk_entry *e, void *userdata)
{
	struct log *l = userdata;
	struct stat st;
	unsigned long seq;

	if (e->worker >= l->jobs)
		bad(l, "%s: worker %u of %u", e->relpath, e->worker, l->jobs);
	if (strlen(e->relpath) != e->relpath_len)
		bad(l, "%s: relpath_len %zu", e->relpath, e->relpath_len);
	const char *slash = strrchr(e->relpath, '/');
	if (strcmp(e->name, slash ? slash + 1 : e->relpath) != 0)
		bad(l, "%s: name \"%s\"", e->relpath, e->name);
	if (e->kind == VP_WALK_ENTRY && !e->st)
		bad(l, "%s: no stat", e->relpath);
	if (e->st && e->dirfd >= 0 &&
	    (fstatat(e->dirfd, e->name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !same_inode(&st, e->st)))
		bad(l, "%s: its dirfd does not hold it", e->relpath);
	if (e->st && e->fd >= 0 && (fstat(e->fd, &st) < 0 || !same_inode(&st, e->st)))
		bad(l, "%s: its fd is another inode", e->relpath);

	pthread_mutex_lock(&l->mu);
	seq = ++l->seq;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4096;
		struct rec *nv = realloc(l->v, l->cap * sizeof(*nv));
		if (!nv)
			abort();
		l->v = nv;
	}
	l->v[l->n++] = (struct rec){
		.path = strdup(e->relpath), .kind = e->kind, .worker = e->worker, .seq = seq,
		.dev = e->st ? e->st->st_dev : 0, .ino = e->st ? e->st->st_ino : 0,
		.has_parent = e->parent_st != NULL,
		.pdev = e->parent_st ? e->parent_st->st_dev : 0,
		.pino = e->parent_st ? e->parent_st->st_ino : 0,
		.dir = e->st && S_ISDIR(e->st->st_mode),
	};
	bool fail = l->fail_at && l->n == l->fail_at;
	pthread_mutex_unlock(&l->mu);
	jitter(l, seq, e->worker);
	return fail ? -EDOM : 0;
}

static int on_barrier(unsigned worker, void *userdata)
{
	struct log *l = userdata;

	if (worker >= l->jobs || worker >= 8) {
		bad(l, "barrier of worker %u of %u", worker, l->jobs);
		return 0;
	}
	/* As the engine's barrier journals and changes, this takes a while,
	 * sometimes. */
	jitter(l, l->n_bar[worker] * 7 + worker, 3);
	pthread_mutex_lock(&l->mu);
	if (l->n_bar[worker] == l->cap_bar[worker]) {
		l->cap_bar[worker] = l->cap_bar[worker] ? l->cap_bar[worker] * 2 : 64;
		unsigned long *nb = realloc(l->bar[worker], l->cap_bar[worker] * sizeof(*nb));
		if (!nb)
			abort();
		l->bar[worker] = nb;
	}
	l->bar[worker][l->n_bar[worker]++] = ++l->seq;
	pthread_mutex_unlock(&l->mu);
	return 0;
}

static void log_free(struct log *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	for (int i = 0; i < 8; i++)
		free(l->bar[i]);
	pthread_mutex_destroy(&l->mu);
}

static int cmp_rec(const void *a, const void *b)
{
	return strcmp(((const struct rec *)a)->path, ((const struct rec *)b)->path);
}

static int cmp_expect(const void *a, const void *b)
{
	return strcmp(((const struct expect *)a)->path, ((const struct expect *)b)->path);
}

static const struct rec *find(const struct log *l, const char *path)
{
	struct rec key = { .path = (char *)path };

	return bsearch(&key, l->v, l->n, sizeof(*l->v), cmp_rec);
}

/* The seq of the first barrier of worker w after seq s (ULONG_MAX: none). */
static unsigned long next_barrier(const struct log *l, unsigned w, unsigned long s)
{
	size_t lo = 0, hi = l->n_bar[w];

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (l->bar[w][mid] <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->n_bar[w] ? l->bar[w][lo] : ULONG_MAX;
}

static int walk(const char *root, unsigned jobs, unsigned long jitter_seed,
                unsigned long fail_at, struct log *l)
{
	struct vp_policy p;
	struct stat st;
	int fd, r;

	memset(l, 0, sizeof(*l));
	assert_int_equal(pthread_mutex_init(&l->mu, NULL), 0);
	l->jobs = jobs;
	l->jitter = jitter_seed;
	l->fail_at = fail_at;
	vp_policy_init(&p);
	fd = open(root, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	struct vp_walk_cfg cfg = {
		.root = root, .root_fd = fd, .root_st = &st, .policy = &p, .jobs = jobs,
		.fn = on_entry, .barrier = on_barrier, .userdata = l,
	};
	r = vp_walk(&cfg);
	close(fd);
	vp_policy_free(&p);
	qsort(l->v, l->n, sizeof(*l->v), cmp_rec);
	return r;
}

/* Every rule of the header comment, for one walk of t. */
static void check_walk(struct tree *t, const struct log *l)
{
	unsigned long root_seq = 0, max_seq = 0;
	bool workers[8] = { false };
	unsigned n_workers = 0;

	if (l->bad)
		fail_msg("%u bad deliveries, the first: %s", l->bad, l->why);
	/* Exactly once: both sorted, same length, same paths. */
	if (l->n != t->n)
		fail_msg("%zu entries delivered, %zu in the tree", l->n, t->n);
	for (size_t i = 0; i < t->n; i++) {
		const struct rec *r = &l->v[i];
		const struct expect *x = &t->v[i];
		if (strcmp(r->path, x->path) != 0)
			fail_msg("delivered \"%s\" where the tree has \"%s\"", r->path, x->path);
		if (r->kind != VP_WALK_ENTRY)
			fail_msg("%s: kind %d", r->path, r->kind);
		if (r->dev != x->dev || r->ino != x->ino || r->dir != x->dir)
			fail_msg("%s: another inode", r->path);
		if (!workers[r->worker]) {
			workers[r->worker] = true;
			n_workers++;
		}
		if (r->seq > max_seq)
			max_seq = r->seq;
		if (strcmp(r->path, ".") == 0) {
			root_seq = r->seq;
			if (r->has_parent)
				fail_msg("the root has a parent");
			continue;
		}
		/* Its parent, and every directory above it: delivered after
		 * it, and after a barrier of its worker if they are not the
		 * same worker's. */
		char up[PATH_MAX];
		snprintf(up, sizeof(up), "%s", r->path);
		bool parent = true;
		for (;;) {
			char *slash = strrchr(up, '/');
			if (slash)
				*slash = 0;
			else
				snprintf(up, sizeof(up), ".");
			const struct rec *a = find(l, up);
			if (!a)
				fail_msg("%s: %s not delivered", r->path, up);
			if (parent && (!r->has_parent || r->pdev != a->dev || r->pino != a->ino))
				fail_msg("%s: parent_st is not %s's", r->path, up);
			parent = false;
			if (a->seq < r->seq)
				fail_msg("%s delivered before %s, which is below it", up, r->path);
			if (a->worker != r->worker && next_barrier(l, r->worker, r->seq) > a->seq)
				fail_msg("%s (worker %u) delivered before a barrier of worker %u after %s",
				         up, a->worker, r->worker, r->path);
			if (!slash)
				break;
		}
	}
	if (root_seq != max_seq)
		fail_msg("the root is not last (%lu of %lu)", root_seq, max_seq);
	if (n_workers > 1)
		multi_worker_walks++;
}

static void check_same_set(const struct log *a, const struct log *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		assert_string_equal(a->v[i].path, b->v[i].path);
		assert_int_equal(a->v[i].kind, b->v[i].kind);
		assert_true(a->v[i].dev == b->v[i].dev && a->v[i].ino == b->v[i].ino);
	}
}

static void walk_all_jobs(struct tree *t)
{
	static const unsigned jobs[] = { 1, 2, 3, 4, 8 };
	struct log single, l;

	unsigned before = multi_worker_walks;

	qsort(t->v, t->n, sizeof(*t->v), cmp_expect);
	for (unsigned round = 0; round < rounds; round++) {
		unsigned long seed = (unsigned long)getpid() * 31u + round * 7919u;
		assert_int_equal(walk(t->root, 1, seed, 0, &single), 0);
		check_walk(t, &single);
		for (size_t j = 1; j < sizeof(jobs) / sizeof(*jobs); j++) {
			assert_int_equal(walk(t->root, jobs[j], seed + j, 0, &l), 0);
			check_walk(t, &l);
			check_same_set(&single, &l);
			log_free(&l);
		}
		log_free(&single);
	}
	printf("%s: %zu entries; %u of %u walks on 2-8 workers had more than one deliver\n",
	       t->root, t->n, multi_worker_walks - before, rounds * 4);
}

static void test_mixed(void **state)
{
	(void)state;
	struct tree t;

	build_mixed(&t);
	assert_true(t.n > 1000);
	walk_all_jobs(&t);
	tree_free(&t);
}

static void test_wide(void **state)
{
	(void)state;
	struct tree t;

	build_wide(&t, "wide", 1500);
	walk_all_jobs(&t);
	tree_free(&t);
}

static void test_deep(void **state)
{
	(void)state;
	struct tree t;

	build_deep(&t);
	walk_all_jobs(&t);
	tree_free(&t);
}

/* With this many walks on N workers, a walk that never split means the
 * tests above did not test the parallel walk at all. */
static void test_splits_happened(void **state)
{
	(void)state;
	assert_true(multi_worker_walks > 0);
}

/* A callback's error stops the walk, on any number of workers: vp_walk
 * returns it, and no entry comes after the root (there is no root). */
static void test_callback_error_stops(void **state)
{
	(void)state;
	struct tree t;
	struct log l;

	build_wide(&t, "wide-fail", 300);
	for (unsigned jobs = 1; jobs <= 8; jobs *= 2) {
		assert_int_equal(walk(t.root, jobs, jobs, 100, &l), -EDOM);
		assert_int_equal(l.bad, 0);
		assert_true(l.n >= 100);
		assert_true(l.n < t.n);
		assert_null(find(&l, "."));
		log_free(&l);
	}
	tree_free(&t);
}

static void test_file_root(void **state)
{
	(void)state;
	struct tree t;
	struct log l;
	char p[PATH_MAX * 2];

	tree_init(&t, "fileroot");
	mk_file(&t, "only");
	snprintf(p, sizeof(p), "%s/only", t.root);
	assert_int_equal(walk(p, 4, 1, 0, &l), 0);
	assert_int_equal(l.bad, 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].path, ".");
	assert_int_equal(l.v[0].kind, VP_WALK_ENTRY);
	assert_false(l.v[0].has_parent);
	log_free(&l);
	tree_free(&t);
}

/* ---- a walk of one part of a volume (prefix, prune: sharded runs) ---- */

struct plog {
	pthread_mutex_t mu;
	char seen[64][64];
	size_t n, excluded;
	bool bad;
};

static int plog_fn(const struct vp_walk_entry *e, void *userdata)
{
	struct plog *l = userdata;
	pthread_mutex_lock(&l->mu);
	if (l->n < 64 && e->relpath_len < 64 && e->kind == VP_WALK_ENTRY) {
		memcpy(l->seen[l->n], e->relpath, e->relpath_len);
		l->seen[l->n++][e->relpath_len] = 0;
	} else if (e->kind == VP_WALK_SKIP && e->skip == VP_SKIP_EXCLUDED &&
	           strcmp(e->relpath, "a/b/ex") == 0) {
		l->excluded++;
	} else {
		l->bad = true;
	}
	/* the name is the last component of the volume's relpath */
	const char *slash = strrchr(e->relpath, '/');
	if (strcmp(e->name, slash ? slash + 1 : e->relpath) != 0)
		l->bad = true;
	pthread_mutex_unlock(&l->mu);
	return 0;
}

static bool plog_prune(const char *relpath, size_t len, const struct stat *st, void *userdata)
{
	(void)st;
	(void)userdata;
	return len == 5 && memcmp(relpath, "a/b/p", 5) == 0;
}

static bool plog_has(const struct plog *l, const char *p)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->seen[i], p) == 0)
			return true;
	return false;
}

static void test_prefix_prune(void **state)
{
	(void)state;
	struct tree t;
	char p[PATH_MAX * 2];
	struct stat st;
	struct vp_policy pol;

	tree_init(&t, "prefix");
	mk_dir(&t, "a");
	mk_dir(&t, "a/b");
	mk_file(&t, "a/b/f");
	mk_dir(&t, "a/b/x");
	mk_file(&t, "a/b/x/y");
	mk_dir(&t, "a/b/p");         /* pruned: another bucket's */
	mk_file(&t, "a/b/p/q");
	mk_dir(&t, "a/b/ex");        /* excluded by a volume-relative glob */
	mk_file(&t, "a/b/ex/z");
	vp_policy_init(&pol);
	assert_int_equal(vp_policy_add_exclude(&pol, "a/b/ex"), 0);
	snprintf(p, sizeof(p), "%s/a/b", t.root);
	int fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	for (unsigned jobs = 1; jobs <= 4; jobs *= 2) {
		struct plog l = { .mu = PTHREAD_MUTEX_INITIALIZER };
		struct vp_walk_cfg cfg = {
			.root = p, .root_fd = fd, .root_st = &st, .policy = &pol, .jobs = jobs,
			.fn = plog_fn, .userdata = &l, .prefix = "a/b", .prune = plog_prune,
		};
		assert_int_equal(vp_walk(&cfg), 0);
		assert_false(l.bad);
		assert_int_equal(l.n, 4);
		assert_int_equal(l.excluded, 1);
		assert_true(plog_has(&l, "a/b/f"));
		assert_true(plog_has(&l, "a/b/x"));
		assert_true(plog_has(&l, "a/b/x/y"));
		/* the walk's own root, delivered last, by its volume path */
		assert_string_equal(l.seen[l.n - 1], "a/b");
	}
	close(fd);
	vp_policy_free(&pol);
	tree_free(&t);
}

static int setup(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	char b[PATH_MAX];

	if (!tmp || strlen(tmp) > 200)
		tmp = "/tmp";
	snprintf(b, sizeof(b), "%s/vp-test-walk.XXXXXX", tmp);
	if (!mkdtemp(b) || !realpath(b, base))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		rounds = (unsigned)strtoul(argv[1], NULL, 10);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mixed),
		cmocka_unit_test(test_wide),
		cmocka_unit_test(test_deep),
		cmocka_unit_test(test_splits_happened),
		cmocka_unit_test(test_callback_error_stops),
		cmocka_unit_test(test_file_root),
		cmocka_unit_test(test_prefix_prune),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
