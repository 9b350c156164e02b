/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for src/pin.h, on a real directory tree (TMPDIR).
 *
 * The rules under test:
 *  - an entry pinned from the directory fd the walk holds, by its one name,
 *    is the inode the walk saw; another inode there now is -ESTALE, and so
 *    is a symlink put in its place (pinned as itself, never followed): the
 *    swap of a directory for a symlink between the walk and the pin;
 *  - a symlink on the way of a longer path is -ELOOP, from the root and
 *    from a directory fd, below and beyond PATH_MAX (the component by
 *    component fallback); ".." and "." components are refused;
 *  - a mount on the way is -EXDEV unless VP_PIN_XDEV (root only: skipped
 *    otherwise);
 *  - vp_pin_cache (rollback): on a 300-level chain of 20-character names
 *    (paths beyond PATH_MAX), directories in preorder then the files from
 *    the bottom up (what a journal read backwards gives) all pin to the
 *    right inode while the open fds stay within VP_PIN_CACHE_FDS; a
 *    directory moved from under a cached one (so that ".." leads elsewhere)
 *    is noticed and the path is resolved afresh; an entry replaced by a
 *    symlink is -ESTALE, a directory on an uncached path replaced by one
 *    is -ELOOP. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pin.h"

enum { DEPTH = 300 };

static char dir[4096];
static int root_fd = -1;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(p);
}

static int setup(void **state)
{
	const char *t = getenv("TMPDIR");
	(void)state;
	snprintf(dir, sizeof(dir), "%s/vp-pin.XXXXXX", t && *t ? t : "/tmp");
	assert_non_null(mkdtemp(dir));
	root_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(root_fd >= 0);
	return 0;
}

/* nftw cannot go beyond PATH_MAX: remove the deep chain by fds first. */
static void rm_chain(int fd, const char *name, int levels)
{
	int sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0)
		return;
	DIR *d = fdopendir(sub);
	struct dirent *de;
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && levels > 0)
			rm_chain(dirfd(d), de->d_name, levels - 1);
	}
	closedir(d);
	(void)unlinkat(fd, name, AT_REMOVEDIR);
}

static int teardown(void **state)
{
	(void)state;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		rm_chain(fd, "c", DEPTH + 2);
		close(fd);
	}
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	close(root_fd);
	return 0;
}

static void mkfile_at(int fd, const char *name)
{
	int f = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(f >= 0);
	close(f);
}

static int open_dir_at(int fd, const char *name)
{
	int d = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	assert_true(d >= 0);
	return d;
}

static struct stat lstat_at(int fd, const char *name)
{
	struct stat st;
	assert_int_equal(fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st;
}

static void assert_pinned(int fd, const struct stat *want, const struct stat *got)
{
	struct stat st;
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_dev == want->st_dev && st.st_ino == want->st_ino);
	assert_true(got->st_dev == want->st_dev && got->st_ino == want->st_ino);
	assert_int_equal(got->st_mode, want->st_mode);
	close(fd);
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* The walk holds d's fd and saw d/f, d/sub: pinned by name from d. */
static void from_parent(void **state)
{
	(void)state;
	int rfd = open_dir_at(AT_FDCWD, dir);
	assert_int_equal(mkdirat(rfd, "d", 0755), 0);
	int d = open_dir_at(rfd, "d");
	mkfile_at(d, "f");
	assert_int_equal(mkdirat(d, "sub", 0755), 0);
	assert_int_equal(symlinkat("/etc/passwd", d, "ln"), 0);
	struct stat f = lstat_at(d, "f"), sub = lstat_at(d, "sub"), ln = lstat_at(d, "ln");
	struct stat st;
	uint64_t bt = 7;

	assert_pinned(vp_pin(d, "f", f.st_dev, f.st_ino, &st, &bt, 0), &f, &st);
	assert_pinned(vp_pin(d, "sub", sub.st_dev, sub.st_ino, &st, NULL, 0), &sub, &st);
	/* a symlink is pinned as itself */
	assert_pinned(vp_pin(d, "ln", ln.st_dev, ln.st_ino, &st, NULL, 0), &ln, &st);
	/* the same from the root, by path */
	assert_pinned(vp_pin(root_fd, "d/f", f.st_dev, f.st_ino, &st, NULL, 0), &f, &st);
	/* "." is the fd itself */
	struct stat ds = lstat_at(rfd, "d");
	assert_pinned(vp_pin(d, ".", ds.st_dev, ds.st_ino, &st, NULL, 0), &ds, &st);
	/* another inode than expected */
	assert_int_equal(vp_pin(d, "f", f.st_dev, sub.st_ino, &st, NULL, 0), -ESTALE);
	/* nothing above or around the directory it starts from */
	assert_true(vp_pin(d, "../d/f", f.st_dev, f.st_ino, &st, NULL, 0) < 0);
	assert_true(vp_pin(d, "/etc/passwd", f.st_dev, f.st_ino, &st, NULL, 0) < 0);
	assert_int_equal(vp_pin(d, "nope", f.st_dev, f.st_ino, &st, NULL, 0), -ENOENT);
	close(d);
	close(rfd);
}

/* Between the walk's stat and the pin, the entry (a directory) is renamed
 * away and a symlink to another directory takes its name; then the same
 * for a file. The pin from the parent fd must never follow it. */
static void swapped_for_symlink(void **state)
{
	(void)state;
	int rfd = open_dir_at(AT_FDCWD, dir);
	assert_int_equal(mkdirat(rfd, "p", 0755), 0);
	assert_int_equal(mkdirat(rfd, "elsewhere", 0755), 0);
	int p = open_dir_at(rfd, "p");
	assert_int_equal(mkdirat(p, "victim", 0755), 0);
	int v = open_dir_at(p, "victim");
	mkfile_at(v, "f");
	mkfile_at(p, "file");
	struct stat vs = lstat_at(p, "victim"), fs = lstat_at(p, "file"), st;
	struct stat vf = lstat_at(v, "f");

	/* the swap */
	assert_int_equal(renameat(p, "victim", rfd, "victim.old"), 0);
	assert_int_equal(symlinkat("../elsewhere", p, "victim"), 0);
	assert_int_equal(renameat(p, "file", rfd, "file.old"), 0);
	assert_int_equal(symlinkat("/etc/passwd", p, "file"), 0);

	assert_int_equal(vp_pin(p, "victim", vs.st_dev, vs.st_ino, &st, NULL, 0), -ESTALE);
	assert_true(S_ISLNK(st.st_mode)); /* it looked at the symlink, not through it */
	assert_int_equal(vp_pin(p, "file", fs.st_dev, fs.st_ino, &st, NULL, 0), -ESTALE);
	assert_true(S_ISLNK(st.st_mode));
	/* through the symlink: from the root and from p, and from the cache */
	assert_int_equal(vp_pin(root_fd, "p/victim/f", vf.st_dev, vf.st_ino, &st, NULL, 0), -ELOOP);
	assert_int_equal(vp_pin(p, "victim/f", vf.st_dev, vf.st_ino, &st, NULL, 0), -ELOOP);
	struct vp_pin_cache *c;
	assert_int_equal(vp_pin_cache_new(root_fd, 0, &c), 0);
	assert_int_equal(vp_pin_cached(c, "p/victim/f", 10, vf.st_dev, vf.st_ino, &st, NULL),
	                 -ELOOP);
	assert_int_equal(vp_pin_cached(c, "p/victim", 8, vs.st_dev, vs.st_ino, &st, NULL), -ESTALE);
	/* the path grammar: no ".", "..", empty components */
	assert_int_equal(vp_pin_cached(c, "p/../p/victim", 13, vs.st_dev, vs.st_ino, &st, NULL),
	                 -EINVAL);
	assert_int_equal(vp_pin_cached(c, "p//victim", 9, vs.st_dev, vs.st_ino, &st, NULL), -EINVAL);
	assert_int_equal(vp_pin_cached(c, "p/./victim", 10, vs.st_dev, vs.st_ino, &st, NULL),
	                 -EINVAL);
	vp_pin_cache_free(c);
	close(v);
	close(p);
	close(rfd);
}

static void mount_crossing(void **state)
{
	(void)state;
	int rfd = open_dir_at(AT_FDCWD, dir);
	char m[4200];
	assert_int_equal(mkdirat(rfd, "m", 0755), 0);
	snprintf(m, sizeof(m), "%s/m", dir);
	if (mount("vp-pin-test", m, "tmpfs", 0, "size=1m") < 0) {
		close(rfd);
		skip(); /* not root, or no mount namespace rights */
	}
	int md = open_dir_at(rfd, "m");
	mkfile_at(md, "f");
	struct stat ms = lstat_at(rfd, "m"), f = lstat_at(md, "f"), st;
	struct vp_pin_cache *c;

	assert_int_equal(vp_pin(rfd, "m", ms.st_dev, ms.st_ino, &st, NULL, 0), -EXDEV);
	assert_int_equal(vp_pin(root_fd, "m/f", f.st_dev, f.st_ino, &st, NULL, 0), -EXDEV);
	assert_pinned(vp_pin(rfd, "m", ms.st_dev, ms.st_ino, &st, NULL, VP_PIN_XDEV), &ms, &st);
	/* from inside the mount, nothing is crossed */
	assert_pinned(vp_pin(md, "f", f.st_dev, f.st_ino, &st, NULL, 0), &f, &st);
	assert_int_equal(vp_pin_cache_new(root_fd, 0, &c), 0);
	assert_int_equal(vp_pin_cached(c, "m/f", 3, f.st_dev, f.st_ino, &st, NULL), -EXDEV);
	vp_pin_cache_free(c);
	assert_int_equal(vp_pin_cache_new(root_fd, VP_PIN_XDEV, &c), 0);
	assert_pinned(vp_pin_cached(c, "m", 1, ms.st_dev, ms.st_ino, &st, NULL), &ms, &st);
	assert_pinned(vp_pin_cached(c, "m/f", 3, f.st_dev, f.st_ino, &st, NULL), &f, &st);
	vp_pin_cache_free(c);
	close(md);
	assert_int_equal(umount2(m, MNT_DETACH), 0);
	close(rfd);
}

/* The chain c/<20 chars>/<20 chars>/... DEPTH levels deep, a file "f" in
 * every level; paths[i] is level i's path (i = 0: "c"). */
struct chain {
	char *paths[DEPTH + 1];
	struct stat dirs[DEPTH + 1], files[DEPTH + 1];
};

static void build_chain(struct chain *ch)
{
	int fd = open_dir_at(AT_FDCWD, dir);
	size_t len = 0;
	char *path = malloc(32 * (DEPTH + 2));

	assert_non_null(path);
	for (int i = 0; i <= DEPTH; i++) {
		char name[32];
		if (i == 0)
			snprintf(name, sizeof(name), "c");
		else
			snprintf(name, sizeof(name), "level-%014d", i);
		assert_int_equal(mkdirat(fd, name, 0755), 0);
		ch->dirs[i] = lstat_at(fd, name);
		len += (size_t)sprintf(path + len, "%s%s", i ? "/" : "", name);
		ch->paths[i] = strdup(path);
		int sub = open_dir_at(fd, name);
		close(fd);
		fd = sub;
		mkfile_at(fd, "f");
		ch->files[i] = lstat_at(fd, "f");
	}
	close(fd);
	free(path);
	assert_true(strlen(ch->paths[DEPTH]) > PATH_MAX);
}

static void free_chain(struct chain *ch)
{
	for (int i = 0; i <= DEPTH; i++)
		free(ch->paths[i]);
}

static int pin_file(struct vp_pin_cache *c, const struct chain *ch, int i, struct stat *st)
{
	char *p;
	int fd;
	assert_true(asprintf(&p, "%s/f", ch->paths[i]) > 0);
	fd = vp_pin_cached(c, p, strlen(p), ch->files[i].st_dev, ch->files[i].st_ino, st, NULL);
	free(p);
	return fd;
}

/* Directories top down, then files bottom up: the order of a journal of
 * this tree read backwards when the walk lists "f" before the subdirectory
 * (the climb back through ".."), then the reverse (files top down). */
static void cache_deep_chain(void **state)
{
	(void)state;
	struct chain ch;
	struct vp_pin_cache *c;
	struct stat st;
	int base = open_fds(), most = 0;

	build_chain(&ch);
	/* beyond PATH_MAX, from the root and from the parent */
	assert_pinned(vp_pin(root_fd, ch.paths[DEPTH], ch.dirs[DEPTH].st_dev, ch.dirs[DEPTH].st_ino,
	                     &st, NULL, 0), &ch.dirs[DEPTH], &st);
	assert_int_equal(vp_pin_cache_new(root_fd, 0, &c), 0);
	for (int i = 0; i <= DEPTH; i++) {
		int fd = vp_pin_cached(c, ch.paths[i], strlen(ch.paths[i]), ch.dirs[i].st_dev,
		                       ch.dirs[i].st_ino, &st, NULL);
		assert_pinned(fd, &ch.dirs[i], &st);
		int n = open_fds() - base;
		most = n > most ? n : most;
	}
	for (int i = DEPTH; i >= 0; i--) {
		assert_pinned(pin_file(c, &ch, i, &st), &ch.files[i], &st);
		int n = open_fds() - base;
		most = n > most ? n : most;
	}
	for (int i = 0; i <= DEPTH; i++)
		assert_pinned(pin_file(c, &ch, i, &st), &ch.files[i], &st);
	/* the root */
	struct stat rs;
	assert_int_equal(fstat(root_fd, &rs), 0);
	assert_pinned(vp_pin_cached(c, ".", 1, rs.st_dev, rs.st_ino, &st, NULL), &rs, &st);
	vp_pin_cache_free(c);
	assert_true(most <= VP_PIN_CACHE_FDS + 1);
	assert_int_equal(open_fds(), base);
	free_chain(&ch);
}

/* Deep in the cache, a directory is moved from under its parent: ".." of
 * it now leads elsewhere, so climbing from it to a closed level must fail
 * its dev/ino check, and the level is reopened from the root by name. And
 * entries replaced meanwhile are refused. */
static void cache_tree_changed(void **state)
{
	(void)state;
	struct chain ch;
	struct vp_pin_cache *c;
	struct stat st;

	build_chain(&ch);
	assert_int_equal(vp_pin_cache_new(root_fd, 0, &c), 0);
	for (int i = 0; i <= DEPTH; i++)
		assert_pinned(vp_pin_cached(c, ch.paths[i], strlen(ch.paths[i]), ch.dirs[i].st_dev,
		                            ch.dirs[i].st_ino, &st, NULL), &ch.dirs[i], &st);
	/* level k, below the levels that still have an fd, moves to the root:
	 * ".." of it is the root now, not level k - 1 */
	int k = DEPTH - VP_PIN_CACHE_FDS - 5;
	int pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int at = pfd;
	for (int i = 0; i < k; i++) {
		const char *name = strrchr(ch.paths[i], '/');
		int sub = open_dir_at(at, name ? name + 1 : ch.paths[i]);
		if (at != pfd)
			close(at);
		at = sub;
	}
	const char *kname = strrchr(ch.paths[k], '/') + 1;
	assert_int_equal(renameat(at, kname, pfd, "moved"), 0);
	/* a file 100 levels up: its level is closed; the climb to it from the
	 * first open level meets the moved directory and must not take the
	 * root for level k - 1; it is reached by name from the root */
	assert_pinned(pin_file(c, &ch, k - 100, &st), &ch.files[k - 100], &st);
	/* level k - 1's own file, and the moved directory by its old path */
	assert_pinned(pin_file(c, &ch, k - 1, &st), &ch.files[k - 1], &st);
	assert_int_equal(vp_pin_cached(c, ch.paths[k], strlen(ch.paths[k]), ch.dirs[k].st_dev,
	                               ch.dirs[k].st_ino, &st, NULL), -ENOENT);
	/* an entry replaced by a symlink to where it went */
	assert_int_equal(symlinkat("/tmp", at, kname), 0);
	assert_int_equal(vp_pin_cached(c, ch.paths[k], strlen(ch.paths[k]), ch.dirs[k].st_dev,
	                               ch.dirs[k].st_ino, &st, NULL), -ESTALE);
	char *p;
	assert_true(asprintf(&p, "%s/f", ch.paths[k]) > 0);
	assert_int_equal(vp_pin_cached(c, p, strlen(p), ch.files[k].st_dev, ch.files[k].st_ino, &st,
	                               NULL), -ELOOP);
	free(p);
	/* a file swapped for another inode */
	mkfile_at(at, "f2");
	assert_int_equal(renameat(at, "f2", at, "f"), 0);
	assert_int_equal(pin_file(c, &ch, k - 1, &st), -ESTALE);
	assert_int_equal(unlinkat(at, kname, 0), 0);
	assert_int_equal(renameat(pfd, "moved", at, kname), 0);
	close(at);
	close(pfd);
	vp_pin_cache_free(c);
	free_chain(&ch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(from_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(swapped_for_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(mount_crossing, setup, teardown),
		cmocka_unit_test_setup_teardown(cache_deep_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(cache_tree_changed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
