/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for src/links.h and watch.h, on a real directory
 * tree (TMPDIR): the hard-link rule and the rename detection it rests on.
 *
 * The rules under test:
 *  - an inode is due once, on the sighting that finds its last link; a
 *    link seen twice counts once; later sightings find it done;
 *  - a link outside the tree keeps it waiting, and it is reported
 *    incomplete with the links seen and its link count;
 *  - any rename, exchange, link or unlink of one of its names between
 *    sightings makes it unstable, never due: the attack of
 *    tests/security/races_hardlinks.sh done step by step, where the walk
 *    meets one link under two names (the check must not rest on ctime,
 *    which a rename may leave equal: on file systems with fine-grained
 *    ctime both see these, so the watch itself is checked below, and the
 *    coarse-ctime case end to end in races_hardlinks.sh on ext2);
 *  - a name that is another inode by the time it counts is unstable;
 *  - with external links allowed the first sighting is due, once;
 *  - four threads seeing the links of the same inodes at once: each inode
 *    due exactly once, none unstable (nothing moved);
 *  - vp_watch_changed: no for an untouched inode, yes after a chmod of it
 *    (not of another), yes for every watch after the queue overflowed. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
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

#include "links.h"
#include "watch.h"

static char dir[4096];

static void path_of(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", dir, name);
}

static void mkfile(const char *name)
{
	char p[4200];
	path_of(p, sizeof(p), name);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static void mklink(const char *from, const char *to)
{
	char a[4200], b[4200];
	path_of(a, sizeof(a), from);
	path_of(b, sizeof(b), to);
	assert_int_equal(link(a, b), 0);
}

static void mkdir_in(const char *name)
{
	char p[4200];
	path_of(p, sizeof(p), name);
	assert_int_equal(mkdir(p, 0755), 0);
}

static int open_dir(const char *name)
{
	char p[4200];
	path_of(p, sizeof(p), name);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* What the walk would do: read the listing, stat the name, hand it over. */
struct dir {
	int fd;
	struct stat st;
	const char *rel;
};

static struct dir dir_open(const char *rel)
{
	struct dir d = { .fd = open_dir(rel), .rel = rel };
	char buf[4096];
	assert_int_equal(fstat(d.fd, &d.st), 0);
	while (getdents64(d.fd, buf, sizeof(buf)) > 0)
		;
	return d;
}

static int see_ex(struct vp_links *l, const struct dir *d, const char *name, bool allow_external)
{
	struct stat st, now;
	char rel[4200];
	assert_int_equal(fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
	snprintf(rel, sizeof(rel), "%s/%s", d->rel, name);
	int v = vp_links_see(l, d->fd, name, &d->st, &st, rel, allow_external, &now);
	if (v >= 0) {
		assert_true(now.st_dev == st.st_dev);
		assert_true(now.st_ino == st.st_ino);
	}
	return v;
}

static int see(struct vp_links *l, const struct dir *d, const char *name)
{
	return see_ex(l, d, name, false);
}

struct incomplete {
	int n;
	char first[256];
	nlink_t seen, nlink;
};

static void on_incomplete(const char *relpath, nlink_t seen, nlink_t nlink, void *userdata)
{
	struct incomplete *inc = userdata;
	inc->n++;
	snprintf(inc->first, sizeof(inc->first), "%s", relpath);
	inc->seen = seen;
	inc->nlink = nlink;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(p);
}

static int setup(void **state)
{
	const char *t = getenv("TMPDIR");
	(void)state;
	snprintf(dir, sizeof(dir), "%s/vp-links.XXXXXX", t && *t ? t : "/tmp");
	assert_non_null(mkdtemp(dir));
	mkdir_in("t");
	mkdir_in("out");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void all_links_inside(void **state)
{
	struct vp_links *l;
	(void)state;
	mkfile("t/a");
	mklink("t/a", "t/b");
	mklink("t/a", "t/c");
	assert_int_equal(vp_links_new(&l), 0);
	struct dir t = dir_open("t");
	assert_int_equal(see(l, &t, "a"), VP_LINKS_WAIT);
	assert_int_equal(see(l, &t, "a"), VP_LINKS_WAIT); /* the same link again */
	assert_int_equal(see(l, &t, "b"), VP_LINKS_WAIT);
	assert_int_equal(see(l, &t, "c"), VP_LINKS_DUE);
	assert_int_equal(see(l, &t, "b"), VP_LINKS_DONE);
	struct incomplete inc = { 0 };
	vp_links_each_incomplete(l, on_incomplete, &inc);
	assert_int_equal(inc.n, 0);
	vp_links_free(l);
	close(t.fd);
}

static void links_in_two_dirs(void **state)
{
	struct vp_links *l;
	(void)state;
	mkdir_in("t/a");
	mkdir_in("t/b");
	mkfile("t/a/x");
	mklink("t/a/x", "t/b/x"); /* same name, other directory: another link */
	assert_int_equal(vp_links_new(&l), 0);
	struct dir a = dir_open("t/a"), b = dir_open("t/b");
	assert_int_equal(see(l, &a, "x"), VP_LINKS_WAIT);
	assert_int_equal(see(l, &b, "x"), VP_LINKS_DUE);
	vp_links_free(l);
	close(a.fd);
	close(b.fd);
}

static void outside_link_waits(void **state)
{
	struct vp_links *l;
	(void)state;
	mkfile("out/secret");
	mklink("out/secret", "t/x");
	assert_int_equal(vp_links_new(&l), 0);
	struct dir t = dir_open("t");
	assert_int_equal(see(l, &t, "x"), VP_LINKS_WAIT);
	assert_int_equal(see(l, &t, "x"), VP_LINKS_WAIT);
	struct incomplete inc = { 0 };
	vp_links_each_incomplete(l, on_incomplete, &inc);
	assert_int_equal(inc.n, 1);
	assert_string_equal(inc.first, "t/x");
	assert_int_equal(inc.seen, 1);
	assert_int_equal(inc.nlink, 2);
	vp_links_free(l);
	close(t.fd);
}

/* The races_hardlinks "exchange" attack, one step at a time: t/x is a link
 * to out/secret, t/y the app's file; the walk sees x, the names trade
 * places, the walk sees y: two names of the secret inside the tree, and
 * its link count is 2. */
static void exchange_between_sightings(void **state)
{
	struct vp_links *l;
	char a[4200], b[4200];
	(void)state;
	mkfile("out/secret");
	mklink("out/secret", "t/x");
	mkfile("t/y");
	assert_int_equal(vp_links_new(&l), 0);
	struct dir t = dir_open("t");
	assert_int_equal(see(l, &t, "x"), VP_LINKS_WAIT);
	path_of(a, sizeof(a), "t/x");
	path_of(b, sizeof(b), "t/y");
	assert_int_equal(renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE), 0);
	assert_int_equal(see(l, &t, "y"), VP_LINKS_UNSTABLE);
	assert_int_equal(see(l, &t, "y"), VP_LINKS_DONE);  /* left alone for good */
	vp_links_free(l);
	close(t.fd);
}

static void move_between_dirs(void **state)
{
	struct vp_links *l;
	char a[4200], b[4200];
	(void)state;
	mkdir_in("t/a");
	mkdir_in("t/z");
	mkfile("out/secret");
	mklink("out/secret", "t/a/x");
	assert_int_equal(vp_links_new(&l), 0);
	struct dir da = dir_open("t/a"), dz = dir_open("t/z");
	assert_int_equal(see(l, &da, "x"), VP_LINKS_WAIT);
	path_of(a, sizeof(a), "t/a/x");
	path_of(b, sizeof(b), "t/z/x");
	assert_int_equal(rename(a, b), 0);
	assert_int_equal(see(l, &dz, "x"), VP_LINKS_UNSTABLE);
	vp_links_free(l);
	close(da.fd);
	close(dz.fd);
}

static void link_added_between(void **state)
{
	struct vp_links *l;
	int v[2];
	(void)state;
	mkfile("t/p");
	mklink("t/p", "t/q");
	assert_int_equal(vp_links_new(&l), 0);
	struct dir t = dir_open("t");
	assert_int_equal(see(l, &t, "p"), VP_LINKS_WAIT);
	mklink("t/p", "t/r");
	/* q alone would complete the count of 2 it had; r completes 3 */
	v[0] = see(l, &t, "q");
	v[1] = see(l, &t, "r");
	assert_true(v[0] == VP_LINKS_UNSTABLE || (v[0] == VP_LINKS_WAIT && v[1] == VP_LINKS_UNSTABLE));
	vp_links_free(l);
	close(t.fd);
}

/* The walk stat'ed the name, then it was replaced before it counted. */
static void replaced_before_it_counts(void **state)
{
	struct vp_links *l;
	struct stat st, now;
	char a[4200], b[4200];
	(void)state;
	mkfile("t/p");
	mklink("t/p", "t/q");
	mkfile("t/other");
	assert_int_equal(vp_links_new(&l), 0);
	struct dir t = dir_open("t");
	assert_int_equal(fstatat(t.fd, "p", &st, AT_SYMLINK_NOFOLLOW), 0);
	path_of(a, sizeof(a), "t/other");
	path_of(b, sizeof(b), "t/p");
	assert_int_equal(rename(a, b), 0);
	assert_int_equal(vp_links_see(l, t.fd, "p", &t.st, &st, "t/p", false, &now), VP_LINKS_UNSTABLE);
	vp_links_free(l);
	close(t.fd);
}

static void external_allowed(void **state)
{
	struct vp_links *l;
	(void)state;
	mkfile("out/secret");
	mklink("out/secret", "t/x");
	mklink("out/secret", "t/y");
	assert_int_equal(vp_links_new(&l), 0);
	struct dir t = dir_open("t");
	assert_int_equal(see_ex(l, &t, "x", true), VP_LINKS_DUE);
	assert_int_equal(see_ex(l, &t, "y", true), VP_LINKS_DONE);
	vp_links_free(l);
	close(t.fd);
}

/* Four directories, each with a link to every one of N inodes; one thread
 * per directory. */
#define N_INODES 200
struct worker {
	struct vp_links *l;
	struct dir d;
	int due[N_INODES], other;
};

static void *see_all(void *arg)
{
	struct worker *k = arg;
	for (int i = 0; i < N_INODES; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%d", i);
		int v = see(k->l, &k->d, name);
		if (v == VP_LINKS_DUE)
			k->due[i]++;
		else if (v != VP_LINKS_WAIT && v != VP_LINKS_DONE)
			k->other++;
	}
	return NULL;
}

static void threads_at_once(void **state)
{
	struct vp_links *l;
	struct worker k[4];
	pthread_t th[4];
	char a[64], b[64];
	(void)state;
	for (int d = 0; d < 4; d++) {
		snprintf(a, sizeof(a), "t/d%d", d);
		mkdir_in(a);
	}
	for (int i = 0; i < N_INODES; i++) {
		snprintf(a, sizeof(a), "t/d0/f%d", i);
		mkfile(a);
		for (int d = 1; d < 4; d++) {
			snprintf(b, sizeof(b), "t/d%d/f%d", d, i);
			mklink(a, b);
		}
	}
	assert_int_equal(vp_links_new(&l), 0);
	for (int d = 0; d < 4; d++) {
		static char rel[4][16];
		snprintf(rel[d], sizeof(rel[d]), "t/d%d", d);
		memset(&k[d], 0, sizeof(k[d]));
		k[d].l = l;
		k[d].d = dir_open(rel[d]);
		assert_int_equal(pthread_create(&th[d], NULL, see_all, &k[d]), 0);
	}
	for (int d = 0; d < 4; d++)
		assert_int_equal(pthread_join(th[d], NULL), 0);
	for (int i = 0; i < N_INODES; i++)
		assert_int_equal(k[0].due[i] + k[1].due[i] + k[2].due[i] + k[3].due[i], 1);
	for (int d = 0; d < 4; d++) {
		assert_int_equal(k[d].other, 0);
		close(k[d].d.fd);
	}
	vp_links_free(l);
}

static void watch_changed(void **state)
{
	struct vp_watch *w;
	struct vp_watch_token ta, tb, tc;
	struct stat sa, sb, sc;
	char a[4200], c[4200];
	(void)state;
	mkfile("t/a");
	mkfile("t/b");
	mkfile("t/c");
	struct dir t = dir_open("t");
	assert_int_equal(fstatat(t.fd, "a", &sa, 0), 0);
	assert_int_equal(fstatat(t.fd, "b", &sb, 0), 0);
	assert_int_equal(fstatat(t.fd, "c", &sc, 0), 0);
	assert_int_equal(vp_watch_new(&w), 0);
	assert_int_equal(vp_watch_begin(w, &ta), 0);
	assert_int_equal(vp_watch_add(w, t.fd, "a", &sa, &ta), 0);
	assert_int_equal(vp_watch_begin(w, &tb), 0);
	assert_int_equal(vp_watch_add(w, t.fd, "b", &sb, &tb), 0);
	assert_int_equal(vp_watch_begin(w, &tc), 0);
	assert_int_equal(vp_watch_add(w, t.fd, "b", &sa, &tc), -ESTALE); /* b is not a */
	assert_int_equal(tc.wd, -1);
	assert_int_equal(vp_watch_changed(w, &tc), 1); /* no watch: nothing is proven */
	assert_int_equal(vp_watch_add(w, t.fd, "c", &sc, &tc), 0);
	struct vp_watch_token ta2;
	assert_int_equal(vp_watch_begin(w, &ta2), 0);
	assert_int_equal(vp_watch_add(w, t.fd, "a", &sa, &ta2), 0);
	assert_int_equal(ta2.wd, ta.wd); /* one inode, one watch */
	assert_int_equal(vp_watch_sync_dir(t.fd), 0);
	assert_int_equal(vp_watch_changed(w, &ta), 0);
	path_of(a, sizeof(a), "t/a");
	assert_int_equal(chmod(a, 0600), 0);
	assert_int_equal(vp_watch_changed(w, &ta), 1);
	assert_int_equal(vp_watch_changed(w, &tb), 0);
	assert_int_equal(vp_watch_changed(w, &ta), 1); /* and stays so */
	/* Lose events: alternate two inodes (consecutive identical events
	 * are merged) until the queue (fs.inotify.max_queued_events) is
	 * full; then nothing can be trusted, b included. */
	long max = 16384;
	FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "re");
	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 16384;
		fclose(f);
	}
	path_of(c, sizeof(c), "t/c");
	for (long i = 0; i <= max / 2 + 8; i++) {
		assert_int_equal(chmod(a, i % 2 ? 0600 : 0640), 0);
		assert_int_equal(chmod(c, i % 2 ? 0600 : 0640), 0);
	}
	assert_int_equal(vp_watch_changed(w, &tb), 1);
	vp_watch_remove(w, &ta);
	assert_int_equal(ta.wd, -1);
	vp_watch_free(w);
	close(t.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(all_links_inside, setup, teardown),
		cmocka_unit_test_setup_teardown(links_in_two_dirs, setup, teardown),
		cmocka_unit_test_setup_teardown(outside_link_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(exchange_between_sightings, setup, teardown),
		cmocka_unit_test_setup_teardown(move_between_dirs, setup, teardown),
		cmocka_unit_test_setup_teardown(link_added_between, setup, teardown),
		cmocka_unit_test_setup_teardown(replaced_before_it_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(external_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(threads_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(watch_changed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
