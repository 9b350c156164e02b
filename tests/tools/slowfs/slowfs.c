/*
 * slowfs: a latency-bound passthrough filesystem for volperm's tests and
 * benchmarks (issue 14).
 *
 *   slowfs BACKING MOUNTPOINT [-f] [-o delay_us=N,meta_delay_us=N,set_delay_us=N,
 *          entry_timeout=S,attr_timeout=S,threads=N,stats=PATH,<fuse mount options>]
 *
 * Every request is served by the backing directory, after a delay: that
 * makes a local tree behave like network storage (NFS, EFS, CephFS), where
 * each lookup, getattr and setattr is a round trip and the only way to go
 * faster is to have many requests in flight. bindfs on 2 CPUs is CPU-bound,
 * not latency-bound, so it cannot show that.
 *
 *   delay_us       delay of every request (default 500 µs)
 *   meta_delay_us  lookup, getattr, readdir, opendir, getxattr, listxattr,
 *                  readlink, access, statfs (default: delay_us)
 *   set_delay_us   setattr (chown, chmod, truncate, utimens), setxattr,
 *                  removexattr (default: delay_us)
 *   entry_timeout, attr_timeout
 *                  the kernel's dentry and attribute cache (seconds, default
 *                  0: every path walk and stat is a request, "NFS without
 *                  attribute cache")
 *   threads        most requests served at once (default 256). libfuse's own
 *                  default is 10, which would cap any client at 10 requests
 *                  in flight, whatever its parallelism.
 *   stats=PATH     also write the request counts to PATH at unmount
 *
 * Delays sleep (nanosleep) in the serving thread, so they overlap across
 * threads like network round trips do, and cost no CPU. FORGET and
 * BATCH_FORGET are counted but not delayed: the kernel sends them without
 * waiting for an answer, and the same holds for NFS's client-side frees.
 *
 * Request counts, per type: printed on stderr at unmount, and readable at
 * any time from the virtual file MOUNTPOINT/.slowfs-stats ("NAME COUNT"
 * lines, "total" last). That file is not listed by readdir (a walk of the
 * tree never sees it) and requests on it are not counted, so reading it
 * does not move the counters it reports.
 *
 * Inode numbers: st_ino of every entry is the backing inode's (the FUSE
 * equivalent of use_ino), and one backing inode is one FUSE node, so hard
 * links share a node; st_dev is the FUSE mount's. The kernel's FUSE node
 * ids are pointers to our inode records, kept while the kernel holds a
 * lookup count on them (passthrough_ll's scheme).
 *
 * Credentials: the daemon runs as root and does every operation as root;
 * files it creates are then chowned to the caller's uid/gid. Mount it with
 * -o allow_other,default_permissions when non-root processes use it, so
 * the kernel checks mode bits (not ACLs: slowfs does not ask for
 * FUSE_POSIX_ACL; system.posix_acl_* pass through as plain xattrs, which
 * is what getfacl/setfacl and volperm read and write).
 *
 * Limits: xattrs of symlinks are not reachable race-free through an O_PATH
 * fd (fgetxattr refuses O_PATH, getxattrat's AT_EMPTY_PATH too), so a
 * symlink has none here (list is empty, get is ENODATA, set is EPERM as for
 * user.* on symlinks); utimens of a symlink is EPERM (as passthrough_ll).
 * No statx request: libfuse 3.14 has none, so the kernel answers statx from
 * getattr. No readdirplus, no writeback cache: the point is the plain
 * request count.
 *
 * ioctl: only the inode flags (FS_IOC_GETFLAGS/SETFLAGS and
 * FS_IOC_FSGETXATTR/FSSETXATTR: chattr +i/+a, lsattr), passed to the
 * backing inode, so that the tests of immutable and append-only entries
 * run on slowfs too; anything else is ENOTTY.
 */
#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define STATS_NAME ".slowfs-stats"

/* Request types, counted one by one. */
enum op {
	OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD,
	OP_MKDIR, OP_UNLINK, OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN,
	OP_READ, OP_WRITE, OP_FLUSH, OP_RELEASE, OP_FSYNC, OP_OPENDIR,
	OP_READDIR, OP_RELEASEDIR, OP_FSYNCDIR, OP_STATFS, OP_SETXATTR,
	OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR, OP_ACCESS, OP_CREATE,
	OP_FALLOCATE, OP_IOCTL, OP_NOPS
};

static const char *const op_names[OP_NOPS] = {
	"lookup", "forget", "getattr", "setattr", "readlink", "mknod",
	"mkdir", "unlink", "rmdir", "symlink", "rename", "link", "open",
	"read", "write", "flush", "release", "fsync", "opendir",
	"readdir", "releasedir", "fsyncdir", "statfs", "setxattr",
	"getxattr", "listxattr", "removexattr", "access", "create",
	"fallocate", "ioctl",
};

enum delay_class { D_NONE, D_META, D_SET, D_OTHER };

struct inode {
	int fd;              /* O_PATH, O_NOFOLLOW: the backing inode */
	dev_t dev;
	ino_t ino;
	mode_t type;         /* S_IFMT bits: symlinks need other calls */
	uint64_t nlookup;    /* the kernel's lookup count; guarded by fs->lock */
	struct inode *next;  /* hash chain */
};

struct fs {
	/* options (fuse_opt fills them: int/double/char* members) */
	int delay_us, meta_delay_us, set_delay_us;
	double entry_timeout, attr_timeout;
	int threads;
	char *stats_path;
	char *source;

	struct inode root;
	struct inode stats_node;   /* the virtual .slowfs-stats; never in the table */
	pthread_mutex_t lock;      /* the table and every nlookup */
	struct inode **table;
	size_t nbuckets, ninodes;
	atomic_uint_fast64_t count[OP_NOPS];
};

/* ---- delays and counters ------------------------------------------------ */

static void sleep_us(int us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	while (us > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Count the request and wait its delay. Requests on the stats file are
 * neither counted nor delayed: reading the counters must not move them. */
static void serve(fuse_req_t req, enum op op, enum delay_class dc, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);

	if (ino == (fuse_ino_t)(uintptr_t)&fs->stats_node)
		return;
	atomic_fetch_add_explicit(&fs->count[op], 1, memory_order_relaxed);
	switch (dc) {
	case D_META: sleep_us(fs->meta_delay_us); break;
	case D_SET: sleep_us(fs->set_delay_us); break;
	case D_OTHER: sleep_us(fs->delay_us); break;
	case D_NONE: break;
	}
}

static size_t format_stats(struct fs *fs, char *buf, size_t size)
{
	uint64_t total = 0;
	size_t n = 0;
	int i, r;

	for (i = 0; i < OP_NOPS; i++) {
		uint64_t c = atomic_load_explicit(&fs->count[i], memory_order_relaxed);

		total += c;
		r = snprintf(buf + n, size - n, "%s %" PRIu64 "\n", op_names[i], c);
		if (r < 0 || (size_t)r >= size - n)
			return n;
		n += (size_t)r;
	}
	r = snprintf(buf + n, size - n, "total %" PRIu64 "\n", total);
	if (r > 0 && (size_t)r < size - n)
		n += (size_t)r;
	return n;
}

/* ---- the inode table ------------------------------------------------------ */

static struct inode *inode_of(fuse_req_t req, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &fs_of(req)->root;
	return (struct inode *)(uintptr_t)ino;
}

static int fd_of(fuse_req_t req, fuse_ino_t ino)
{
	return inode_of(req, ino)->fd;
}

static size_t bucket(const struct fs *fs, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev;

	return (size_t)(h % fs->nbuckets);
}

/* Grow at load factor 1: the bench trees have 10^4..10^6 nodes. */
static void table_grow(struct fs *fs)
{
	size_t old = fs->nbuckets, i;
	struct inode **t = calloc(old * 2, sizeof(*t));

	if (!t)
		return; /* keep the longer chains: still correct */
	fs->nbuckets = old * 2;
	for (i = 0; i < old; i++) {
		struct inode *p = fs->table[i], *nx;

		for (; p; p = nx) {
			size_t b = bucket(fs, p->dev, p->ino);

			nx = p->next;
			p->next = t[b];
			t[b] = p;
		}
	}
	free(fs->table);
	fs->table = t;
}

/* Look NAME up below PARENT in the backing tree and take one kernel lookup
 * reference on its node (a new one, or the one its inode already has). */
static int do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct fs *fs = fs_of(req);
	struct inode *p, *in;
	struct stat st;
	size_t b;
	int fd;

	memset(e, 0, sizeof(*e));
	e->attr_timeout = fs->attr_timeout;
	e->entry_timeout = fs->entry_timeout;

	fd = openat(fd_of(req, parent), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int err = errno;

		close(fd);
		return err;
	}

	pthread_mutex_lock(&fs->lock);
	if (st.st_dev == fs->root.dev && st.st_ino == fs->root.ino) {
		/* ".." of a top-level directory in the kernel's view cannot
		 * happen (the kernel resolves ".." itself), but a bind mount
		 * of the root below itself could: one node for one inode. */
		in = &fs->root;
	} else {
		b = bucket(fs, st.st_dev, st.st_ino);
		for (in = fs->table[b]; in; in = in->next)
			if (in->dev == st.st_dev && in->ino == st.st_ino)
				break;
	}
	if (in) {
		in->nlookup++;
		pthread_mutex_unlock(&fs->lock);
		close(fd);
	} else {
		p = calloc(1, sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&fs->lock);
			close(fd);
			return ENOMEM;
		}
		p->fd = fd;
		p->dev = st.st_dev;
		p->ino = st.st_ino;
		p->type = st.st_mode & S_IFMT;
		p->nlookup = 1;
		if (fs->ninodes >= fs->nbuckets)
			table_grow(fs);
		b = bucket(fs, st.st_dev, st.st_ino);
		p->next = fs->table[b];
		fs->table[b] = p;
		fs->ninodes++;
		pthread_mutex_unlock(&fs->lock);
		in = p;
	}
	e->ino = in == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)in;
	e->attr = st;
	return 0;
}

static void forget_one(struct fs *fs, fuse_ino_t ino, uint64_t n)
{
	struct inode *in, **pp;

	if (ino == FUSE_ROOT_ID || ino == (fuse_ino_t)(uintptr_t)&fs->stats_node)
		return;
	in = (struct inode *)(uintptr_t)ino;
	pthread_mutex_lock(&fs->lock);
	if (n > in->nlookup)
		n = in->nlookup; /* a kernel bug; do not wrap */
	in->nlookup -= n;
	if (in->nlookup == 0) {
		for (pp = &fs->table[bucket(fs, in->dev, in->ino)]; *pp; pp = &(*pp)->next)
			if (*pp == in) {
				*pp = in->next;
				fs->ninodes--;
				break;
			}
		pthread_mutex_unlock(&fs->lock);
		close(in->fd);
		free(in);
		return;
	}
	pthread_mutex_unlock(&fs->lock);
}

/* /proc/self/fd/N: the way to reach an O_PATH fd's inode with calls that
 * take a path and follow it (xattrs, chmod, truncate, utimensat, link). */
static void proc_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

static bool is_stats(fuse_req_t req, fuse_ino_t ino)
{
	return ino == (fuse_ino_t)(uintptr_t)&fs_of(req)->stats_node;
}

static void stats_attr(struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = 0xffffffffu; /* not a backing inode; only shown by stat */
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
}

/* ---- operations ------------------------------------------------------------ */

static void sl_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* The count of READDIR + LOOKUP is what a client without readdirplus
	 * (most NFS mounts with small directories do use it, but FUSE's
	 * heuristics differ) pays; keep it plain and predictable. */
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS;
	/* The kernel applies the umask; our own umask is 0 (main). */
	conn->want &= ~(unsigned)FUSE_CAP_DONT_MASK;
}

static void sl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;
	int err;

	if (parent == FUSE_ROOT_ID && strcmp(name, STATS_NAME) == 0) {
		memset(&e, 0, sizeof(e));
		e.ino = (fuse_ino_t)(uintptr_t)&fs->stats_node;
		stats_attr(&e.attr);
		fuse_reply_entry(req, &e);
		return;
	}
	serve(req, OP_LOOKUP, D_META, parent);
	err = do_lookup(req, parent, name, &e);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

static void sl_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	serve(req, OP_FORGET, D_NONE, ino);
	forget_one(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void sl_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *fl)
{
	size_t i;

	serve(req, OP_FORGET, D_NONE, 0);
	for (i = 0; i < count; i++)
		forget_one(fs_of(req), fl[i].ino, fl[i].nlookup);
	fuse_reply_none(req);
}

static void sl_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (is_stats(req, ino)) {
		stats_attr(&st);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	serve(req, OP_GETATTR, D_META, ino);
	if (fstatat(fd_of(req, ino), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_attr(req, &st, fs_of(req)->attr_timeout);
}

static void sl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct inode *in = inode_of(req, ino);
	char path[64];
	int r;

	if (is_stats(req, ino)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	serve(req, OP_SETATTR, D_SET, ino);
	proc_path(path, sizeof(path), in->fd);
	/* Owner first: a chown by root clears setuid/setgid and
	 * security.capability in the backing filesystem; a mode in the same
	 * request (the kernel sends the killed mode along) then lands last. */
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t u = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t g = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		if (fchownat(in->fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			goto err;
	}
	if (valid & FUSE_SET_ATTR_MODE) {
		if (in->type == S_IFLNK) {
			errno = EOPNOTSUPP;
			goto err;
		}
		r = fi ? fchmod((int)fi->fh, attr->st_mode) : chmod(path, attr->st_mode);
		if (r < 0)
			goto err;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		r = fi ? ftruncate((int)fi->fh, attr->st_size) : truncate(path, attr->st_size);
		if (r < 0)
			goto err;
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec tv[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };

		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		if (in->type == S_IFLNK) {
			errno = EPERM;
			goto err;
		}
		r = fi ? futimens((int)fi->fh, tv) : utimensat(AT_FDCWD, path, tv, 0);
		if (r < 0)
			goto err;
	}
	{
		struct stat st;

		if (fstatat(in->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			goto err;
		fuse_reply_attr(req, &st, fs_of(req)->attr_timeout);
	}
	return;
err:
	fuse_reply_err(req, errno);
}

static void sl_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n;

	serve(req, OP_READLINK, D_META, ino);
	n = readlinkat(fd_of(req, ino), "", buf, sizeof(buf));
	if (n < 0)
		fuse_reply_err(req, errno);
	else if (n >= (ssize_t)sizeof(buf))
		fuse_reply_err(req, ENAMETOOLONG);
	else {
		buf[n] = '\0';
		fuse_reply_readlink(req, buf);
	}
}

/* A new entry exists in the backing tree as root's: give it to the caller,
 * as a local filesystem would, then look it up (one kernel reference). */
static void reply_new(fuse_req_t req, fuse_ino_t parent, const char *name, int res)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fuse_entry_param e;
	int err;

	if (res < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	if (fchownat(fd_of(req, parent), name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	err = do_lookup(req, parent, name, &e);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

static void sl_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	serve(req, OP_MKNOD, D_OTHER, parent);
	reply_new(req, parent, name, mknodat(fd_of(req, parent), name, mode, rdev));
}

static void sl_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	serve(req, OP_MKDIR, D_OTHER, parent);
	reply_new(req, parent, name, mkdirat(fd_of(req, parent), name, mode));
}

static void sl_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	serve(req, OP_SYMLINK, D_OTHER, parent);
	reply_new(req, parent, name, symlinkat(link, fd_of(req, parent), name));
}

static void sl_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	char path[64];
	int err;

	serve(req, OP_LINK, D_OTHER, ino);
	proc_path(path, sizeof(path), fd_of(req, ino));
	/* linkat(fd, "", AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH in the
	 * initial namespace; the /proc link with AT_SYMLINK_FOLLOW does not. */
	if (linkat(AT_FDCWD, path, fd_of(req, parent), name, AT_SYMLINK_FOLLOW) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	err = do_lookup(req, parent, name, &e);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

static void sl_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	serve(req, OP_UNLINK, D_OTHER, parent);
	fuse_reply_err(req, unlinkat(fd_of(req, parent), name, 0) < 0 ? errno : 0);
}

static void sl_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	serve(req, OP_RMDIR, D_OTHER, parent);
	fuse_reply_err(req, unlinkat(fd_of(req, parent), name, AT_REMOVEDIR) < 0 ? errno : 0);
}

static void sl_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	serve(req, OP_RENAME, D_OTHER, parent);
	if (renameat2(fd_of(req, parent), name, fd_of(req, newparent), newname, flags) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_err(req, 0);
}

struct stats_buf {
	size_t len;
	char data[4096];
};

static void sl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	char path[64];
	int fd;

	if (is_stats(req, ino)) {
		/* Snapshot at open: one read(2) loop sees one consistent set. */
		struct stats_buf *sb = malloc(sizeof(*sb));

		if (!sb) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		sb->len = format_stats(fs_of(req), sb->data, sizeof(sb->data));
		fi->fh = (uint64_t)(uintptr_t)sb;
		fi->direct_io = 1; /* size 0 in getattr; never cache */
		fuse_reply_open(req, fi);
		return;
	}
	serve(req, OP_OPEN, D_OTHER, ino);
	proc_path(path, sizeof(path), fd_of(req, ino));
	fd = open(path, (fi->flags & ~O_NOFOLLOW) | O_CLOEXEC);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)fd;
	fuse_reply_open(req, fi);
}

static void sl_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fuse_entry_param e;
	int fd, err;

	serve(req, OP_CREATE, D_OTHER, parent);
	fd = openat(fd_of(req, parent), name, (fi->flags | O_CREAT) & ~O_NOFOLLOW, mode);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	if (fchown(fd, ctx->uid, ctx->gid) < 0) {
		err = errno;
		close(fd);
		fuse_reply_err(req, err);
		return;
	}
	err = do_lookup(req, parent, name, &e);
	if (err) {
		close(fd);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uint64_t)fd;
	fuse_reply_create(req, &e, fi);
}

static void sl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	char *buf;
	ssize_t n;

	if (is_stats(req, ino)) {
		struct stats_buf *sb = (struct stats_buf *)(uintptr_t)fi->fh;
		size_t o = off < 0 ? 0 : (size_t)off;

		if (o >= sb->len)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_buf(req, sb->data + o, size < sb->len - o ? size : sb->len - o);
		return;
	}
	serve(req, OP_READ, D_OTHER, ino);
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = pread((int)fi->fh, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void sl_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	ssize_t n;

	serve(req, OP_WRITE, D_OTHER, ino);
	n = pwrite((int)fi->fh, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, (size_t)n);
}

static void sl_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int fd;

	if (is_stats(req, ino)) {
		fuse_reply_err(req, 0);
		return;
	}
	serve(req, OP_FLUSH, D_OTHER, ino);
	/* close(dup()): what close(2) on the client side would report. */
	fd = dup((int)fi->fh);
	fuse_reply_err(req, fd < 0 || close(fd) < 0 ? errno : 0);
}

static void sl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (is_stats(req, ino)) {
		free((void *)(uintptr_t)fi->fh);
		fuse_reply_err(req, 0);
		return;
	}
	serve(req, OP_RELEASE, D_OTHER, ino);
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void sl_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int r;

	serve(req, OP_FSYNC, D_OTHER, ino);
	r = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
	fuse_reply_err(req, r < 0 ? errno : 0);
}

static void sl_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	serve(req, OP_FALLOCATE, D_OTHER, ino);
	fuse_reply_err(req, fallocate((int)fi->fh, mode, off, len) < 0 ? errno : 0);
}

struct dir {
	DIR *dp;
	struct dirent *entry; /* read but not yet handed out */
	off_t offset;
};

static void sl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir *d;
	int fd;

	serve(req, OP_OPENDIR, D_META, ino);
	d = calloc(1, sizeof(*d));
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = openat(fd_of(req, ino), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		free(d);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fuse_reply_open(req, fi);
}

static void sl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct dir *d = (struct dir *)(uintptr_t)fi->fh;
	char *buf, *p;
	size_t rem = size;
	int err = 0;

	serve(req, OP_READDIR, D_META, ino);
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	p = buf;
	if (off != d->offset) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->offset = off;
	}
	for (;;) {
		struct stat st;
		size_t n;

		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				err = errno;
				break;
			}
		}
		memset(&st, 0, sizeof(st));
		st.st_ino = d->entry->d_ino;
		st.st_mode = (mode_t)d->entry->d_type << 12;
		n = fuse_add_direntry(req, p, rem, d->entry->d_name, &st, d->entry->d_off);
		if (n > rem)
			break; /* the reply is full: hand this entry out next time */
		p += n;
		rem -= n;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
	/* An error after some entries: return those, the error comes again. */
	if (err && p == buf)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, (size_t)(p - buf));
	free(buf);
}

/* The inode flags: the kernel sends these for chattr/lsattr (fileattr_get
 * and _set, through a file it opens itself, so fi is ours from open or
 * opendir) as restricted ioctls: GETFLAGS/SETFLAGS with an int, and
 * FSGETXATTR/FSSETXATTR with a struct fsxattr (a SETFLAGS first reads the
 * old flags with FSGETXATTR). */
static void sl_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		     size_t in_bufsz, size_t out_bufsz)
{
	union {
		int flags;
		struct fsxattr fsx;
	} buf;
	size_t size;
	bool set;
	int fd;

	(void)arg;
	serve(req, OP_IOCTL, D_SET, ino);
	if (cmd == (unsigned)FS_IOC_GETFLAGS || cmd == (unsigned)FS_IOC_SETFLAGS)
		size = sizeof(buf.flags);
	else if (cmd == (unsigned)FS_IOC_FSGETXATTR || cmd == (unsigned)FS_IOC_FSSETXATTR)
		size = sizeof(buf.fsx);
	else
		size = 0;
	if (size == 0 || is_stats(req, ino) || !fi) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	/* the get calls fill the buffer, the set calls read it */
	set = cmd == (unsigned)FS_IOC_SETFLAGS || cmd == (unsigned)FS_IOC_FSSETXATTR;
	if (set ? in_bufsz < size : out_bufsz < size) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	memset(&buf, 0, sizeof(buf));
	if (set)
		memcpy(&buf, in_buf, size);
	fd = (flags & FUSE_IOCTL_DIR) ? dirfd(((struct dir *)(uintptr_t)fi->fh)->dp) : (int)fi->fh;
	if (ioctl(fd, cmd, &buf) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_ioctl(req, 0, set ? NULL : &buf, set ? 0 : size);
}

static void sl_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir *d = (struct dir *)(uintptr_t)fi->fh;

	serve(req, OP_RELEASEDIR, D_OTHER, ino);
	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void sl_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct dir *d = (struct dir *)(uintptr_t)fi->fh;
	int fd = dirfd(d->dp), r;

	serve(req, OP_FSYNCDIR, D_OTHER, ino);
	r = datasync ? fdatasync(fd) : fsync(fd);
	fuse_reply_err(req, r < 0 ? errno : 0);
}

static void sl_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	serve(req, OP_STATFS, D_META, ino);
	if (fstatvfs(fd_of(req, ino), &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

static void sl_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	char path[64];

	serve(req, OP_ACCESS, D_META, ino);
	proc_path(path, sizeof(path), fd_of(req, ino));
	fuse_reply_err(req, faccessat(AT_FDCWD, path, mask, AT_EACCESS) < 0 ? errno : 0);
}

/* getxattr and listxattr share the size protocol: size 0 asks for the
 * length, otherwise the data or ERANGE. */
static void reply_xattr(fuse_req_t req, size_t size, ssize_t n, const char *buf)
{
	if (n < 0)
		fuse_reply_err(req, errno);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void sl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct inode *in = inode_of(req, ino);
	char path[64], *buf = NULL;
	ssize_t n;

	serve(req, OP_GETXATTR, D_META, ino);
	if (in->type == S_IFLNK || is_stats(req, ino)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	proc_path(path, sizeof(path), in->fd);
	n = getxattr(path, name, buf, size);
	reply_xattr(req, size, n, buf);
	free(buf);
}

static void sl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct inode *in = inode_of(req, ino);
	char path[64], *buf = NULL;
	ssize_t n;

	serve(req, OP_LISTXATTR, D_META, ino);
	if (in->type == S_IFLNK || is_stats(req, ino)) {
		if (size == 0)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	proc_path(path, sizeof(path), in->fd);
	n = listxattr(path, buf, size);
	reply_xattr(req, size, n, buf);
	free(buf);
}

static void sl_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct inode *in = inode_of(req, ino);
	char path[64];

	serve(req, OP_SETXATTR, D_SET, ino);
	if (in->type == S_IFLNK || is_stats(req, ino)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	proc_path(path, sizeof(path), in->fd);
	fuse_reply_err(req, setxattr(path, name, value, size, flags) < 0 ? errno : 0);
}

static void sl_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct inode *in = inode_of(req, ino);
	char path[64];

	serve(req, OP_REMOVEXATTR, D_SET, ino);
	if (in->type == S_IFLNK || is_stats(req, ino)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	proc_path(path, sizeof(path), in->fd);
	fuse_reply_err(req, removexattr(path, name) < 0 ? errno : 0);
}

static const struct fuse_lowlevel_ops sl_ops = {
	.init = sl_init,
	.lookup = sl_lookup,
	.forget = sl_forget,
	.forget_multi = sl_forget_multi,
	.getattr = sl_getattr,
	.setattr = sl_setattr,
	.readlink = sl_readlink,
	.mknod = sl_mknod,
	.mkdir = sl_mkdir,
	.unlink = sl_unlink,
	.rmdir = sl_rmdir,
	.symlink = sl_symlink,
	.rename = sl_rename,
	.link = sl_link,
	.open = sl_open,
	.read = sl_read,
	.write = sl_write,
	.flush = sl_flush,
	.release = sl_release,
	.fsync = sl_fsync,
	.opendir = sl_opendir,
	.readdir = sl_readdir,
	.releasedir = sl_releasedir,
	.fsyncdir = sl_fsyncdir,
	.statfs = sl_statfs,
	.setxattr = sl_setxattr,
	.getxattr = sl_getxattr,
	.listxattr = sl_listxattr,
	.removexattr = sl_removexattr,
	.access = sl_access,
	.create = sl_create,
	.fallocate = sl_fallocate,
	.ioctl = sl_ioctl,
};

/* ---- main ------------------------------------------------------------------ */

#define SL_OPT(t, m) { t, offsetof(struct fs, m), 0 }
static const struct fuse_opt sl_opts[] = {
	SL_OPT("delay_us=%d", delay_us),
	SL_OPT("meta_delay_us=%d", meta_delay_us),
	SL_OPT("set_delay_us=%d", set_delay_us),
	SL_OPT("entry_timeout=%lf", entry_timeout),
	SL_OPT("attr_timeout=%lf", attr_timeout),
	SL_OPT("threads=%d", threads),
	SL_OPT("stats=%s", stats_path),
	FUSE_OPT_END
};

/* The first non-option argument is the backing directory; the second is
 * left in args for fuse_parse_cmdline (the mount point). */
static int sl_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct fs *fs = data;

	(void)outargs;
	if (key == FUSE_OPT_KEY_NONOPT && !fs->source) {
		fs->source = strdup(arg);
		return fs->source ? 0 : -1;
	}
	return 1;
}

static void usage(const char *prog)
{
	printf("usage: %s BACKING MOUNTPOINT [-f] [-d] [-o OPT[,OPT...]]\n"
	       "slowfs options:\n"
	       "  -o delay_us=N       delay of every request in µs (default 500)\n"
	       "  -o meta_delay_us=N  lookup/getattr/readdir/getxattr/listxattr (default delay_us)\n"
	       "  -o set_delay_us=N   setattr/setxattr/removexattr (default delay_us)\n"
	       "  -o entry_timeout=S  kernel dentry cache, seconds (default 0)\n"
	       "  -o attr_timeout=S   kernel attribute cache, seconds (default 0)\n"
	       "  -o threads=N        requests served at once (default 256)\n"
	       "  -o stats=PATH       write the request counts to PATH at unmount\n"
	       "Counts: MOUNTPOINT/" STATS_NAME " at any time, stderr at unmount.\n\n",
	       prog);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* One backing O_PATH fd per inode the kernel holds a lookup on (the scheme
 * of passthrough_ll): a walk of N entries can hold N of them until the
 * kernel forgets, so the soft limit goes to the hard one, and for root (as
 * the tests and the bench run it) to fs.nr_open. Without this a 20,000-entry
 * tree under a 20,000 limit answered EMFILE to lookups, which the client
 * sees as its own "Too many open files". (libfuse's passthrough_hp does the
 * same.) Best effort: a failure leaves the limit as it was. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	unsigned long nr_open = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");

	if (f) {
		if (fscanf(f, "%lu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (nr_open > rl.rlim_max) {
		struct rlimit want = { (rlim_t)nr_open, (rlim_t)nr_open };
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			return;
	}
	rl.rlim_cur = rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se = NULL;
	struct fs fs;
	struct stat st;
	char stats[4096];
	size_t slen;
	int ret = 1, i;

	memset(&fs, 0, sizeof(fs));
	fs.delay_us = 500;
	fs.meta_delay_us = -1;
	fs.set_delay_us = -1;
	fs.threads = 256;
	fs.root.fd = -1;
	pthread_mutex_init(&fs.lock, NULL);
	raise_fd_limit();
	for (i = 0; i < OP_NOPS; i++)
		atomic_init(&fs.count[i], 0);

	/* Ours first: it takes BACKING (the first non-option) and our -o
	 * options out of args, so fuse_parse_cmdline then finds the mount
	 * point as its only non-option. */
	if (fuse_opt_parse(&args, &fs, sl_opts, sl_opt_proc) == -1)
		return 1;
	if (fuse_parse_cmdline(&args, &opts) != 0)
		return 1;
	if (opts.show_help) {
		usage(argv[0]);
		ret = 0;
		goto out;
	}
	if (opts.show_version) {
		printf("slowfs, FUSE library version %s\n", fuse_pkgversion());
		ret = 0;
		goto out;
	}
	if (!opts.mountpoint || !fs.source) {
		fprintf(stderr, "usage: %s BACKING MOUNTPOINT [options] (--help)\n", argv[0]);
		goto out;
	}
	if (fs.meta_delay_us < 0)
		fs.meta_delay_us = fs.delay_us;
	if (fs.set_delay_us < 0)
		fs.set_delay_us = fs.delay_us;
	if (fs.delay_us < 0 || fs.threads < 1 || fs.entry_timeout < 0 || fs.attr_timeout < 0) {
		fprintf(stderr, "slowfs: delays, threads and timeouts must not be negative\n");
		goto out;
	}

	fs.root.fd = open(fs.source, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs.root.fd < 0 || fstat(fs.root.fd, &st) < 0) {
		perror(fs.source);
		goto out;
	}
	fs.root.dev = st.st_dev;
	fs.root.ino = st.st_ino;
	fs.root.type = S_IFDIR;
	fs.root.nlookup = 2; /* never freed */
	fs.nbuckets = 1024;
	fs.table = calloc(fs.nbuckets, sizeof(*fs.table));
	if (!fs.table)
		goto out;
	/* Modes come from the kernel with the caller's umask applied. */
	umask(0);

	se = fuse_session_new(&args, &sl_ops, sizeof(sl_ops), &fs);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_signals;
	if (fuse_daemonize(opts.foreground) != 0)
		goto out_unmount;

	if (opts.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		cfg = fuse_loop_cfg_create();
		if (!cfg)
			goto out_unmount;
		fuse_loop_cfg_set_clone_fd(cfg, opts.clone_fd);
		fuse_loop_cfg_set_max_threads(cfg, (unsigned)fs.threads);
		/* Keep the workers: creating a thread per request would add
		 * CPU noise to a latency measurement. */
		fuse_loop_cfg_set_idle_threads(cfg, (unsigned)fs.threads);
		ret = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}

out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
	slen = format_stats(&fs, stats, sizeof(stats));
	fprintf(stderr, "slowfs: requests served:\n%.*s", (int)slen, stats);
	if (fs.stats_path) {
		FILE *f = fopen(fs.stats_path, "we");

		if (!f || fwrite(stats, 1, slen, f) != slen || fclose(f) != 0) {
			perror(fs.stats_path);
			ret = 1;
		}
	}
out:
	if (fs.table) {
		size_t b;

		for (b = 0; b < fs.nbuckets; b++) {
			struct inode *p = fs.table[b], *nx;

			for (; p; p = nx) {
				nx = p->next;
				close(p->fd);
				free(p);
			}
		}
		free(fs.table);
	}
	if (fs.root.fd >= 0)
		close(fs.root.fd);
	free(fs.source);
	free(fs.stats_path);
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return ret ? 1 : 0;
}
