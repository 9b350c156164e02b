/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for vp_change_missing_cap() (src/preflight.h): which
 * change, and which rollback of it, needs CAP_CHOWN or CAP_FOWNER, for a
 * caller with and without them. The rules are the kernel's (chown_ok,
 * chgrp_ok, inode_owner_or_capable). */

#include <linux/capability.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "decide.h"
#include "preflight.h"

static gid_t groups[] = { 1000, 27 };

static int need(bool chown_, bool fowner, uint32_t uid, uint32_t gid, uint32_t mode,
                uint32_t nuid, uint32_t ngid, uint32_t nmode, unsigned changes, bool reverse)
{
	struct vp_creds c = { .uid = 1000, .groups = groups, .n_groups = 2, .cap_chown = chown_,
		              .cap_fowner = fowner };
	struct vp_change ch = { uid, gid, mode, nuid, ngid, nmode, changes };
	const char *what = NULL;
	int r = vp_change_missing_cap(&c, &ch, reverse, &what);
	if (r >= 0)
		assert_non_null(what);
	return r;
}

#define F (S_IFREG | 0644)
#define D (S_IFDIR | 0755)

static void test_unprivileged(void **state)
{
	(void)state;
	/* chmod / ACL of own files: nothing needed, both ways */
	assert_int_equal(need(0, 0, 1000, 1000, F, 1000, 1000, S_IFREG | 0664, VP_CH_MODE, false), -1);
	assert_int_equal(need(0, 0, 1000, 1000, F, 1000, 1000, S_IFREG | 0664, VP_CH_MODE, true), -1);
	assert_int_equal(need(0, 0, 1000, 1000, D, 1000, 1000, D, VP_CH_ACL | VP_CH_DEFAULT_ACL, false), -1);
	/* of someone else's: FOWNER */
	assert_int_equal(need(0, 0, 0, 0, F, 0, 0, S_IFREG | 0664, VP_CH_MODE, false), CAP_FOWNER);
	assert_int_equal(need(0, 0, 0, 0, F, 0, 0, F, VP_CH_ACL, true), CAP_FOWNER);
	/* chgrp of own file to one of our groups: nothing; back to ours too */
	assert_int_equal(need(0, 0, 1000, 1000, F, 1000, 27, F, VP_CH_GID, false), -1);
	assert_int_equal(need(0, 0, 1000, 1000, F, 1000, 27, F, VP_CH_GID, true), -1);
	/* ... to a group we are not in: CHOWN; rollback to one we are not in */
	assert_int_equal(need(0, 0, 1000, 1000, F, 1000, 5, F, VP_CH_GID, false), CAP_CHOWN);
	assert_int_equal(need(0, 0, 1000, 5, F, 1000, 1000, F, VP_CH_GID, false), -1);
	assert_int_equal(need(0, 0, 1000, 5, F, 1000, 1000, F, VP_CH_GID, true), CAP_CHOWN);
	/* chgrp of someone else's file: CHOWN */
	assert_int_equal(need(0, 0, 0, 0, F, 0, 27, F, VP_CH_GID, false), CAP_CHOWN);
	/* a new owner: CHOWN, always (our own uid to another too) */
	assert_int_equal(need(0, 0, 1000, 1000, F, 1001, 1000, F, VP_CH_UID, false), CAP_CHOWN);
	assert_int_equal(need(0, 1, 1000, 1000, F, 1001, 1000, F, VP_CH_UID, true), CAP_CHOWN);
	/* chown then chmod: the chmod is of the new owner's file */
	assert_int_equal(need(1, 0, 1000, 1000, F, 1001, 1000, S_IFREG | 0600, VP_CH_UID | VP_CH_MODE, false),
	                 CAP_FOWNER);
	assert_int_equal(need(1, 0, 1001, 1000, F, 1000, 1000, S_IFREG | 0600, VP_CH_UID | VP_CH_MODE, false), -1);
	/* symlinks never get a mode */
	assert_int_equal(need(0, 0, 0, 0, S_IFLNK | 0777, 0, 0, S_IFLNK | 0777, VP_CH_MODE, false), -1);
}

static void test_privileged(void **state)
{
	(void)state;
	/* CHOWN without FOWNER: a plain chown of someone else's file, both ways */
	assert_int_equal(need(1, 0, 5, 5, F, 1001, 1001, F, VP_CH_UID | VP_CH_GID, false), -1);
	assert_int_equal(need(1, 0, 5, 5, F, 1001, 1001, F, VP_CH_UID | VP_CH_GID, true), -1);
	/* ... but the chown clears setuid: a chmod of a file we do not own */
	assert_int_equal(need(1, 0, 5, 5, S_IFREG | 04755, 1001, 1001, F, VP_CH_UID | VP_CH_DROP_SUID, false),
	                 CAP_FOWNER);
	/* rolling it back puts setuid back: a chmod of uid 5's file */
	assert_int_equal(need(1, 0, 5, 5, S_IFREG | 04755, 1001, 1001, F,
	                      VP_CH_UID | VP_CH_DROP_SUID, true), CAP_FOWNER);
	/* directories keep setgid on chown */
	assert_int_equal(need(1, 0, 5, 5, S_IFDIR | 02755, 1001, 1001, S_IFDIR | 02755, VP_CH_UID, false), -1);
	/* both: nothing ever missing */
	assert_int_equal(need(1, 1, 5, 5, S_IFREG | 04755, 1001, 1001, F, VP_CH_UID | VP_CH_DROP_SUID | VP_CH_ACL, true), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unprivileged),
		cmocka_unit_test(test_privileged),
	};
	return cmocka_run_group_tests_name("preflight", tests, NULL, NULL);
}
