/* Unit tests for include/volperm/session.h: the rules the command line used
 * to hold. Real directories under a temporary one, real journals written
 * with the journal writer (a "hot" journal is one whose writer closed
 * before any commit mark, as after a crash; a "running" one is still open
 * here, so its lock is held), and, for the lock, another run in a forked
 * child, as it would be another process. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "volperm/session.h"
#include "volperm/shard.h"

static char base[256];
static int jfd = -1;       /* base/j, the journal directory */
static char jpath[300];

static void at(char *buf, const char *rel)
{
	snprintf(buf, PATH_MAX, "%s/%s", base, rel);
}

/* A fresh tree and journal directory for every test. */
static int setup(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	if (!tmp || strlen(tmp) > 200)
		tmp = "/tmp";
	snprintf(base, sizeof(base), "%s/vp-test-session.XXXXXX", tmp);
	if (!mkdtemp(base))
		return -1;
	char p[PATH_MAX];
	const char *dirs[] = { "v", "v/sub", "v/sub/deep", "other", "j" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		at(p, dirs[i]);
		if (mkdir(p, 0700) < 0)
			return -1;
	}
	at(p, "v/file");
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	close(fd);
	at(jpath, "j");
	jfd = open(jpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return jfd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[sizeof(base) + 16];
	close(jfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

static void open_root(const char *rel, struct vp_root *rt)
{
	char p[PATH_MAX];
	at(p, rel);
	assert_int_equal(vp_root_open(p, false, rt), 0);
}

enum kind { COMMITTED, ROLLED_BACK, HOT, RUNNING };

/* A journal of the tree rel with sequence seq, left in state k; its header
 * says it belongs to hdr_rel (normally rel itself). RUNNING hands back the
 * open writer (its lock held), else NULL. */
static struct vp_jwriter *journal_of(const char *rel, const char *hdr_rel, uint64_t seq,
                                     enum kind k, char name[VP_JNAME_MAX])
{
	char p[PATH_MAX], hp[PATH_MAX];
	struct stat st, hst;
	struct vp_jheader h = { 0 };
	struct vp_policy pol;
	struct vp_jwriter *w = NULL;
	char *text = NULL;
	size_t len = 0;

	at(p, rel);
	at(hp, hdr_rel);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(stat(hp, &hst), 0);
	vp_policy_init(&pol);
	pol.has_uid = pol.has_gid = true;
	pol.uid = pol.gid = 1001;
	assert_int_equal(vp_policy_to_text(&pol, &text, &len), 0);
	vp_policy_free(&pol);
	h.version = VP_JOURNAL_VERSION;
	h.created_ns = 1700000000000000000ull + seq;
	h.root_dev = (uint64_t)hst.st_dev;
	h.root_ino = (uint64_t)hst.st_ino;
	h.seq = seq;
	h.host = strdup("test-host");
	h.root = strdup(hp);
	h.policy = malloc(len + 1);
	assert_non_null(h.policy);
	memcpy(h.policy, text, len);
	h.policy[len] = 0;
	h.policy_len = len;
	free(text);
	vp_jdir_name(name, (uint64_t)st.st_dev, (uint64_t)st.st_ino, h.created_ns);
	assert_int_equal(vp_jw_create(jfd, name, &h, 16, &w), 0);
	vp_jheader_free(&h);
	if (k == COMMITTED || k == ROLLED_BACK)
		assert_int_equal(vp_jw_mark(w, VP_REC_COMMIT), 0);
	if (k == ROLLED_BACK) {
		assert_int_equal(vp_jw_mark(w, VP_REC_ROLLBACK_BEGIN), 0);
		assert_int_equal(vp_jw_mark(w, VP_REC_ROLLED_BACK), 0);
	}
	if (k == RUNNING)
		return w;
	vp_jw_close(w);
	return NULL;
}

/* A file under a journal name of rel whose header cannot be read. */
static void garbage_of(const char *rel, char name[VP_JNAME_MAX])
{
	char p[PATH_MAX], junk[512];
	struct stat st;

	at(p, rel);
	assert_int_equal(stat(p, &st), 0);
	vp_jdir_name(name, (uint64_t)st.st_dev, (uint64_t)st.st_ino, 1800000000000000000ull);
	int fd = openat(jfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	memset(junk, 'x', sizeof(junk));
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
}

static void test_find(void **state)
{
	(void)state;
	char j1[VP_JNAME_MAX], j2[VP_JNAME_MAX], j3[VP_JNAME_MAX], j4[VP_JNAME_MAX];
	char other[VP_JNAME_MAX], got[VP_JNAME_MAX];
	struct vp_root rt;

	open_root("v", &rt);
	assert_int_equal(vp_session_find(jfd, &rt, VP_PICK_ANY, got), 0);
	(void)journal_of("v", "v", 1, COMMITTED, j1);
	(void)journal_of("v", "v", 2, HOT, j2);
	(void)journal_of("v", "v", 3, ROLLED_BACK, j3);
	(void)journal_of("other", "other", 9, HOT, other);
	/* newest of any state; newest not rolled back; the hot one */
	assert_int_equal(vp_session_find(jfd, &rt, VP_PICK_ANY, got), 1);
	assert_string_equal(got, j3);
	assert_int_equal(vp_session_find(jfd, &rt, VP_PICK_UNDONE, got), 1);
	assert_string_equal(got, j2);
	assert_int_equal(vp_session_find(jfd, &rt, VP_PICK_HOT, got), 1);
	assert_string_equal(got, j2);
	/* a later committed one is the newest undone; the hot one stays */
	(void)journal_of("v", "v", 4, COMMITTED, j4);
	assert_int_equal(vp_session_find(jfd, &rt, VP_PICK_UNDONE, got), 1);
	assert_string_equal(got, j4);
	assert_int_equal(vp_session_find(jfd, &rt, VP_PICK_HOT, got), 1);
	assert_string_equal(got, j2);
	/* an unreadable one sorts newest and is picked, except for HOT */
	char bad[VP_JNAME_MAX];
	garbage_of("v", bad);
	assert_int_equal(vp_session_find(jfd, &rt, VP_PICK_ANY, got), 1);
	assert_string_equal(got, bad);
	assert_int_equal(vp_session_find(jfd, &rt, VP_PICK_UNDONE, got), 1);
	assert_string_equal(got, bad);
	assert_int_equal(vp_session_find(jfd, &rt, VP_PICK_HOT, got), 1);
	assert_string_equal(got, j2);
	vp_root_close(&rt);

	/* nothing of sub's own */
	open_root("v/sub", &rt);
	assert_int_equal(vp_session_find(jfd, &rt, VP_PICK_ANY, got), 0);
	vp_root_close(&rt);
}

static void test_hot_same_root(void **state)
{
	(void)state;
	char hot[VP_JNAME_MAX], c[VP_JNAME_MAX];
	struct vp_root rt;
	struct vp_hot h;

	open_root("v", &rt);
	/* no journal directory, an empty one, a committed journal: nothing */
	assert_int_equal(vp_session_check_hot(-1, &rt, false, &h), VP_OUT_OK);
	vp_hot_free(&h);
	(void)journal_of("v", "v", 1, COMMITTED, c);
	assert_int_equal(vp_session_check_hot(jfd, &rt, false, &h), VP_OUT_OK);
	assert_int_equal(h.block, VP_BLOCK_NONE);
	assert_string_equal(h.recover, "");
	vp_hot_free(&h);

	(void)journal_of("v", "v", 2, HOT, hot);
	assert_int_equal(vp_session_check_hot(jfd, &rt, false, &h), VP_OUT_BLOCKED);
	assert_int_equal(h.block, VP_BLOCK_HOT);
	assert_int_equal(h.overlap, 1);
	assert_string_equal(h.journal, hot);
	assert_string_equal(h.tree, rt.path);
	vp_hot_free(&h);
	/* apply --recover: not blocked, told what to roll back first */
	assert_int_equal(vp_session_check_hot(jfd, &rt, true, &h), VP_OUT_OK);
	assert_int_equal(h.block, VP_BLOCK_NONE);
	assert_string_equal(h.recover, hot);
	vp_hot_free(&h);

	/* an unreadable journal of this root is named, and blocks nothing */
	char bad[VP_JNAME_MAX];
	garbage_of("v", bad);
	assert_int_equal(vp_session_check_hot(jfd, &rt, true, &h), VP_OUT_OK);
	assert_int_equal(h.n_unreadable, 1);
	assert_string_equal(h.unreadable[0], bad);
	vp_hot_free(&h);
	vp_root_close(&rt);

	/* a tree beside it: none of this matters */
	open_root("other", &rt);
	assert_int_equal(vp_session_check_hot(jfd, &rt, false, &h), VP_OUT_OK);
	assert_int_equal(h.n_unreadable, 0);
	vp_hot_free(&h);
	vp_root_close(&rt);
}

/* A journal of shard k of run id for tree rel, hot (or committed). */
static void shard_journal_of(const char *rel, const struct vp_run_id *id, uint32_t k,
                             uint64_t seq, enum kind kd, char name[VP_JNAME_MAX])
{
	char plain[VP_JNAME_MAX], p[PATH_MAX];
	struct stat st;

	(void)journal_of(rel, rel, seq, kd, plain);
	at(p, rel);
	assert_int_equal(stat(p, &st), 0);
	vp_shard_journal_name(name, (uint64_t)st.st_dev, (uint64_t)st.st_ino,
	                      1700000000000000000ull + seq, id, k);
	assert_int_equal(renameat(jfd, plain, jfd, name), 0);
}

/* jdir.c knows shard journal names: a plain run on the root sees a hot
 * shard journal (exit 4) and does not take it for its own to recover; a
 * shard ignores its run's other shards but not its own hot journal. */
static void test_hot_shard(void **state)
{
	(void)state;
	struct vp_run_id id, other;
	char hot[VP_JNAME_MAX], c[VP_JNAME_MAX];
	struct vp_jinfo *v = NULL;
	struct vp_root rt;
	struct vp_hot h;
	size_t n = 0;

	memset(&id, 0x5a, sizeof(id));
	memset(&other, 0xa5, sizeof(other));
	open_root("v", &rt);
	shard_journal_of("v", &id, 2, 1, HOT, hot);
	shard_journal_of("v", &id, 1, 2, COMMITTED, c);
	assert_int_equal(vp_jdir_list(jfd, false, rt.st.st_dev, rt.st.st_ino, &v, &n), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		assert_true(v[i].is_shard);
		assert_memory_equal(v[i].run_id, id.b, 16);
		assert_int_equal(v[i].shard, strcmp(v[i].name, hot) == 0 ? 2 : 1);
		assert_int_equal(v[i].hot, strcmp(v[i].name, hot) == 0);
	}
	vp_jdir_list_free(v, n);
	/* a plain plan/apply/rollback: blocked, even with --recover */
	assert_int_equal(vp_session_check_hot(jfd, &rt, false, &h), VP_OUT_BLOCKED);
	assert_int_equal(h.block, VP_BLOCK_HOT);
	assert_string_equal(h.journal, hot);
	vp_hot_free(&h);
	assert_int_equal(vp_session_check_hot(jfd, &rt, true, &h), VP_OUT_BLOCKED);
	assert_string_equal(h.recover, "");
	vp_hot_free(&h);
	/* shard 0 of the same run: another shard's journal is not its own */
	assert_int_equal(vp_session_check_hot_shard(jfd, &rt, id.b, 0, false, &h), VP_OUT_OK);
	vp_hot_free(&h);
	/* shard 2 itself: blocked, or told to recover it */
	assert_int_equal(vp_session_check_hot_shard(jfd, &rt, id.b, 2, false, &h), VP_OUT_BLOCKED);
	vp_hot_free(&h);
	assert_int_equal(vp_session_check_hot_shard(jfd, &rt, id.b, 2, true, &h), VP_OUT_OK);
	assert_string_equal(h.recover, hot);
	vp_hot_free(&h);
	/* a shard of another run: blocked like a plain run */
	assert_int_equal(vp_session_check_hot_shard(jfd, &rt, other.b, 2, true, &h), VP_OUT_BLOCKED);
	vp_hot_free(&h);
	/* a run with shard journals and no committed finalize is not done */
	uint8_t rid[16];
	assert_int_equal(vp_session_unfinished_run(jfd, &rt, rid), 1);
	assert_memory_equal(rid, id.b, 16);
	/* recover --forward does not finish a shard's journal forward (it
	 * would walk the whole tree into it): it rolls it back */
	char next[VP_JNAME_MAX];
	enum vp_recover_step step = VP_RECOVER_FORWARD;
	assert_int_equal(vp_session_recover_next(jfd, &rt, true, "", next, &step), VP_OUT_OK);
	assert_string_equal(next, hot);
	assert_int_equal(step, VP_RECOVER_ROLLBACK);
	/* a committed shard journal is not rolled back alone */
	struct vp_rbjob j;
	assert_int_equal(vp_session_rollback_open(jfd, jpath, c, &rt, false, &j), VP_OUT_INVALID);
	assert_non_null(strstr(j.why, "sharded run"));
	vp_session_rollback_close(&j);
	assert_int_equal(vp_session_rollback_open_run(jfd, jpath, c, &rt, false, &j), VP_OUT_OK);
	vp_session_rollback_close(&j);
	/* finalize committed: the run is done */
	char fin[VP_JNAME_MAX];
	shard_journal_of("v", &id, VP_SHARD_FINALIZE, 3, COMMITTED, fin);
	assert_int_equal(vp_session_unfinished_run(jfd, &rt, rid), 0);
	vp_root_close(&rt);
}

static void test_hot_overlapping(void **state)
{
	(void)state;
	char hot[VP_JNAME_MAX], run[VP_JNAME_MAX], vpath[PATH_MAX], sub[PATH_MAX];
	struct vp_root rt;
	struct vp_hot h;

	at(vpath, "v");
	at(sub, "v/sub");
	(void)journal_of("v", "v", 1, HOT, hot);
	/* from inside: v's hot journal contains it; --recover does not help */
	open_root("v/sub/deep", &rt);
	for (int allow = 0; allow < 2; allow++) {
		assert_int_equal(vp_session_check_hot(jfd, &rt, allow, &h), VP_OUT_BLOCKED);
		assert_int_equal(h.block, VP_BLOCK_HOT_OVERLAP);
		assert_int_equal(h.overlap, 2);
		assert_string_equal(h.journal, hot);
		assert_string_equal(h.tree, vpath);
		assert_string_equal(h.recover, "");
		vp_hot_free(&h);
	}
	vp_root_close(&rt);
	/* a root that is not a directory: through its parent, opened once */
	open_root("v/file", &rt);
	assert_true(rt.parent_fd >= 0);
	assert_int_equal(vp_session_check_hot(jfd, &rt, false, &h), VP_OUT_BLOCKED);
	assert_int_equal(h.block, VP_BLOCK_HOT_OVERLAP);
	assert_int_equal(h.overlap, 2);
	vp_hot_free(&h);
	vp_root_close(&rt);
	assert_int_equal(unlinkat(jfd, hot, 0), 0);

	/* from above: a run writing v/sub's journal right now */
	struct vp_jwriter *w = journal_of("v/sub", "v/sub", 1, RUNNING, run);
	open_root("v", &rt);
	assert_int_equal(rt.parent_fd, -1);
	assert_int_equal(vp_session_check_hot(jfd, &rt, true, &h), VP_OUT_BLOCKED);
	assert_int_equal(h.block, VP_BLOCK_RUNNING);
	assert_int_equal(h.overlap, 3);
	assert_string_equal(h.journal, run);
	assert_string_equal(h.tree, sub);
	vp_hot_free(&h);
	/* once it died without a commit, hot: still blocks v */
	vp_jw_close(w);
	assert_int_equal(vp_session_check_hot(jfd, &rt, true, &h), VP_OUT_BLOCKED);
	assert_int_equal(h.block, VP_BLOCK_HOT_OVERLAP);
	assert_int_equal(h.overlap, 3);
	vp_hot_free(&h);
	vp_root_close(&rt);
	/* and not a sibling */
	open_root("other", &rt);
	assert_int_equal(vp_session_check_hot(jfd, &rt, false, &h), VP_OUT_OK);
	vp_hot_free(&h);
	vp_root_close(&rt);
}

static void test_rollback_open(void **state)
{
	(void)state;
	char c1[VP_JNAME_MAX], c2[VP_JNAME_MAX], rb[VP_JNAME_MAX], theirs[VP_JNAME_MAX];
	char run[VP_JNAME_MAX], bad[VP_JNAME_MAX];
	struct vp_root rt;
	struct vp_rbjob j;

	open_root("v", &rt);
	(void)journal_of("v", "v", 1, COMMITTED, c1);
	(void)journal_of("v", "v", 2, COMMITTED, c2);
	/* the newest is told apart (its entries' ctimes can be judged) */
	assert_int_equal(vp_session_rollback_open(jfd, jpath, c1, &rt, false, &j), VP_OUT_OK);
	assert_false(j.rb.newest);
	assert_int_equal(j.rb.root_fd, rt.fd);
	assert_non_null(j.r);
	assert_non_null(j.w);
	vp_session_rollback_close(&j);
	assert_int_equal(vp_session_rollback_open(jfd, jpath, c2, &rt, false, &j), VP_OUT_OK);
	assert_true(j.rb.newest);
	/* the lock is held: a second one is refused as in use */
	struct vp_rbjob j2;
	assert_int_equal(vp_session_rollback_open(jfd, jpath, c2, &rt, false, &j2), VP_OUT_BLOCKED);
	assert_non_null(strstr(j2.why, "is in use by another volperm"));
	vp_session_rollback_close(&j2);
	vp_session_rollback_close(&j);

	/* another tree's journal: refused, naming both (invariant 3) */
	(void)journal_of("other", "other", 1, COMMITTED, theirs);
	assert_int_equal(vp_session_rollback_open(jfd, jpath, theirs, &rt, true, &j), VP_OUT_INVALID);
	assert_non_null(strstr(j.why, "belongs to"));
	assert_non_null(strstr(j.why, "refusing it"));
	vp_session_rollback_close(&j);

	/* already rolled back: only with force */
	(void)journal_of("v", "v", 3, ROLLED_BACK, rb);
	assert_int_equal(vp_session_rollback_open(jfd, jpath, rb, &rt, false, &j), VP_OUT_INVALID);
	assert_non_null(strstr(j.why, "was already rolled back"));
	vp_session_rollback_close(&j);
	assert_int_equal(vp_session_rollback_open(jfd, jpath, rb, &rt, true, &j), VP_OUT_OK);
	vp_session_rollback_close(&j);

	/* written right now by another run */
	struct vp_jwriter *w = journal_of("v", "v", 4, RUNNING, run);
	assert_int_equal(vp_session_rollback_open(jfd, jpath, run, &rt, false, &j), VP_OUT_BLOCKED);
	vp_session_rollback_close(&j);
	vp_jw_close(w);

	/* corrupt */
	garbage_of("v", bad);
	assert_int_equal(vp_session_rollback_open(jfd, jpath, bad, &rt, false, &j), VP_OUT_INVALID);
	assert_non_null(strstr(j.why, "corrupt"));
	vp_session_rollback_close(&j);
	vp_root_close(&rt);
}

static void test_recover_next(void **state)
{
	(void)state;
	char c[VP_JNAME_MAX], hot[VP_JNAME_MAX], name[VP_JNAME_MAX];
	enum vp_recover_step step;
	struct vp_root rt;

	open_root("v", &rt);
	(void)journal_of("v", "v", 1, COMMITTED, c);
	assert_int_equal(vp_session_recover_next(jfd, &rt, false, "", name, &step), VP_OUT_OK);
	assert_string_equal(name, "");
	(void)journal_of("v", "v", 2, HOT, hot);
	assert_int_equal(vp_session_recover_next(jfd, &rt, false, "", name, &step), VP_OUT_OK);
	assert_string_equal(name, hot);
	assert_int_equal(step, VP_RECOVER_ROLLBACK);
	/* --forward finishes an apply that never began to roll back */
	assert_int_equal(vp_session_recover_next(jfd, &rt, true, "", name, &step), VP_OUT_OK);
	assert_int_equal(step, VP_RECOVER_FORWARD);
	/* still hot after it was recovered: said, not looped on */
	assert_int_equal(vp_session_recover_next(jfd, &rt, true, hot, name, &step),
	                 VP_OUT_ROLLBACK_INCOMPLETE);
	assert_string_equal(name, hot);

	/* the journal's own policy, ready to resume */
	struct vp_fwdjob f;
	assert_int_equal(vp_session_forward_open(jfd, jpath, hot, &rt, 8, &f), VP_OUT_OK);
	assert_true(f.policy.has_uid && f.policy.uid == 1001);
	assert_ptr_equal(f.run.resume, f.w);
	assert_string_equal(f.run.journal, hot);
	vp_session_forward_close(&f);
	vp_root_close(&rt);
}

/* Take the session lock on rel in a child and keep it until told (the pipe
 * closes); returns the child's pid once the lock is held. */
static pid_t hold_in_child(const char *rel, bool with_jdir, int *release_fd)
{
	int ready[2], go[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char p[PATH_MAX], c;
		struct vp_root r;
		struct vp_tree_lock l;
		close(ready[0]);
		close(go[1]);
		at(p, rel);
		if (vp_root_open(p, false, &r) < 0 ||
		    vp_session_lock(&r, with_jdir ? jfd : -1, &l) != VP_OUT_OK)
			_exit(1);
		(void)!write(ready[1], "x", 1);
		(void)!read(go[0], &c, 1);
		_exit(0);
	}
	char c;
	close(ready[1]);
	close(go[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*release_fd = go[1];
	return pid;
}

static void release_child(pid_t pid, int fd)
{
	int status;
	close(fd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int try_lock(const char *rel, bool with_jdir, size_t *level)
{
	struct vp_root r;
	struct vp_tree_lock l = VP_TREE_LOCK_INIT;
	open_root(rel, &r);
	int e = vp_session_lock(&r, with_jdir ? jfd : -1, &l);
	if (level)
		*level = l.busy_level;
	vp_tree_unlock(&l);
	vp_root_close(&r);
	return e;
}

static void test_lock(void **state)
{
	(void)state;
	size_t level = 99;
	int rel;

	pid_t pid = hold_in_child("v", true, &rel);
	assert_int_equal(try_lock("v", true, &level), VP_OUT_BLOCKED);
	assert_int_equal(level, 0);
	assert_int_equal(try_lock("v", false, &level), VP_OUT_BLOCKED);
	assert_int_equal(try_lock("v/sub", false, &level), VP_OUT_BLOCKED);
	assert_int_equal(level, 1);
	/* a one-file volume inside it: its parent (v) is locked shared */
	assert_int_equal(try_lock("v/file", true, &level), VP_OUT_BLOCKED);
	assert_int_equal(level, 1);
	assert_int_equal(try_lock("other", true, NULL), VP_OUT_OK);
	release_child(pid, rel);
	assert_int_equal(try_lock("v/file", true, NULL), VP_OUT_OK);

	/* a run on the one-file volume keeps v off, and v/sub is beside it */
	pid = hold_in_child("v/file", true, &rel);
	assert_int_equal(try_lock("v", false, &level), VP_OUT_BLOCKED);
	assert_int_equal(level, 0);
	assert_int_equal(try_lock("v/sub", false, NULL), VP_OUT_OK);
	release_child(pid, rel);
}

static void test_jobs(void **state)
{
	(void)state;
	unsigned n = 0;
	const char *bad[] = { "", "0", "-1", "257", "1x", "auto2", "AUTO", " auto",
		              "99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vp_jobs_parse(bad[i], &n), -EINVAL);
	assert_int_equal(vp_jobs_parse("1", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(vp_jobs_parse("256", &n), 0);
	assert_int_equal(n, VP_JOBS_MAX);
	assert_int_equal(vp_jobs_parse("auto", &n), 0);
	assert_int_equal(n, 0); /* decided by vp_jobs_auto() once the root is open */
	n = vp_jobs_default();
	assert_true(n >= 1 && n <= VP_JOBS_DEFAULT_MAX);
	/* auto on the test's own directory: whatever the filesystem, a choice
	 * in range and a reason that names it */
	struct vp_jobs_choice c;
	int fd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	vp_jobs_auto(fd, &c);
	close(fd);
	assert_true(c.jobs >= 1 && c.jobs <= VP_JOBS_REMOTE_MAX);
	assert_true(strncmp(c.why, "auto: ", 6) == 0);
	assert_true(vp_session_batch_max() >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_find, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_same_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_overlapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_shard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_next, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jobs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
