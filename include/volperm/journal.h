/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_JOURNAL_H
#define VOLPERM_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* The rollback journal. The rules (invariants, state machine, byte layout)
 * are at the top of src/journal.c and in docs/journal-format.md: read them
 * before changing anything here. */

#include "volperm/userns.h"

#define VP_JOURNAL_MAGIC "VOLPERMJ"
/* The version of a header with nothing in the extension area (1 is read
 * too: no sequence). A header that records user namespace maps is written
 * as VP_JOURNAL_VERSION_EXT: see "Why two versions" in journal.c. */
#define VP_JOURNAL_VERSION 2u
#define VP_JOURNAL_VERSION_EXT 3u
#define VP_JOURNAL_SUFFIX ".vpj"

enum vp_rec_type {
	VP_REC_ENTRY = 1,          /* before-image of one entry, about to change */
	VP_REC_COMMIT = 2,         /* every change applied and synced */
	VP_REC_ROLLBACK_BEGIN = 3, /* a rollback started */
	VP_REC_ROLLED_BACK = 4,    /* the rollback finished; the tree is as before */
};

enum vp_jstate {
	VP_JSTATE_ACTIVE = 0,      /* apply running, or crashed (hot if unlocked) */
	VP_JSTATE_COMMITTED,
	VP_JSTATE_ROLLING_BACK,    /* rollback running, or crashed (hot if unlocked) */
	VP_JSTATE_ROLLED_BACK,
};
const char *vp_jstate_name(enum vp_jstate s);

struct vp_jheader {
	uint32_t version;
	uint64_t created_ns;     /* CLOCK_REALTIME */
	uint64_t root_dev, root_ino;
	uint64_t fsid;
	uint8_t nonce[16];
	uint32_t flags;
	uint64_t seq;            /* order among the root's journals (0: version 1) */
	char *host;              /* NUL-terminated copies, owned by the header */
	char *root;
	char *policy;            /* vp_policy_to_text() */
	size_t policy_len;
	uint32_t crc;            /* the header's own CRC: seeds every record CRC */
	/* Version 3 (docs/journal-format.md, "Extension area"). ns: the uid_map
	 * and gid_map of the user namespace the journal was written in, as
	 * /proc/self/uid_map showed them (inside -> outside ids); empty when it
	 * was the initial namespace, or the journal is older than version 3:
	 * its ids are host ids. userns: the --userns / --uid-map translation of
	 * the run (userns.spec its SPEC text); empty when none was given. Both
	 * owned by the header. */
	struct vp_userns ns;
	struct vp_userns userns;
};
void vp_jheader_free(struct vp_jheader *h);

/* One before-image. Pointers borrow from the caller (encode) or from the
 * reader's buffer (decode: valid until the next read). */
struct vp_jentry {
	uint64_t seq;
	uint32_t batch;
	uint64_t dev, ino;
	uint64_t btime;                      /* birth time in ns, 0 if unknown */
	uint32_t uid, gid, mode;             /* before */
	uint32_t new_uid, new_gid, new_mode; /* what volperm sets */
	uint32_t changes;                    /* VP_CH_* */
	const char *path; uint32_t path_len; /* relative to the root; "." is the root */
	const void *acl_access; uint32_t acl_access_len;   /* raw system.posix_acl_access */
	const void *acl_default; uint32_t acl_default_len; /* raw system.posix_acl_default */
	const void *caps; uint32_t caps_len;               /* raw security.capability */
	/* What volperm sets (with VP_CH_ACL / VP_CH_DEFAULT_ACL; else empty):
	 * rollback restores an entry only if it still has these. */
	const void *new_acl_access; uint32_t new_acl_access_len;
	const void *new_acl_default; uint32_t new_acl_default_len;
};

/* Record codec, exposed for unit tests and fuzzers. */
#define VP_REC_MAGIC 0x31525056u /* "VPR1" little-endian */
#define VP_REC_FRAME 32u         /* fixed bytes per record: 24 in front, 8 behind */
#define VP_REC_MAX (64u << 20)   /* sanity bound on one record */
size_t vp_jrec_entry_size(const struct vp_jentry *e);
/* Encode into buf (size >= vp_jrec_entry_size()). Returns the size. */
size_t vp_jrec_encode_entry(uint8_t *buf, const struct vp_jentry *e, uint32_t seed);
size_t vp_jrec_encode_mark(uint8_t *buf, enum vp_rec_type t, uint64_t seq, uint32_t batch,
                           uint32_t seed);
/* Decode the record at buf (avail bytes). Returns its length, or -EBADMSG
 * (bad magic, length, checksum or fields) or -ENODATA (fewer bytes than the
 * record needs: a torn tail). *type gets the record type; *e is filled for
 * VP_REC_ENTRY. */
long vp_jrec_decode(const uint8_t *buf, size_t avail, uint32_t seed, int *type,
                    struct vp_jentry *e);
/* Record in h the current process's id maps (vp_userns_self(); nothing
 * when they are the identity, i.e. the initial namespace, or cannot be
 * read) and a copy of userns (NULL or empty: none). 0 or -ENOMEM. Free the
 * maps with vp_jheader_free(), or vp_userns_free() of h->ns and h->userns
 * when the header's strings are borrowed. */
int vp_jheader_set_userns(struct vp_jheader *h, const struct vp_userns *userns);
/* A map that maps every id to itself: empty (no map recorded), or the
 * initial namespace's "0 0 4294967295" on both sides. */
bool vp_jmap_identity(const struct vp_userns *m);
/* The same uid and gid ranges, in any order (an empty map equals the
 * identity). */
bool vp_jmap_equal(const struct vp_userns *a, const struct vp_userns *b);
/* Is the current process in a user namespace whose maps equal those the
 * journal was written in (ids in the journal mean here what they meant
 * then)? 1 yes, 0 no (*here gets the current maps when non-NULL: free
 * them), or -errno when /proc cannot tell. */
int vp_jheader_ns_here(const struct vp_jheader *h, struct vp_userns *here);
/* Header codec. */
int vp_jheader_encode(const struct vp_jheader *h, uint8_t **ret, size_t *ret_len);
int vp_jheader_decode(const uint8_t *buf, size_t avail, struct vp_jheader *h, size_t *hlen);

/* ---- writer ---- */
struct vp_jwriter;

/* Create dirfd/name with O_CREAT|O_EXCL|O_NOFOLLOW, 0600, take flock(LOCK_EX),
 * write and fsync the header, fsync the directory. batch_max is what
 * vp_jw_full() compares the buffered entries with. */
int vp_jw_create(int dirfd, const char *name, struct vp_jheader *h, size_t batch_max,
                 struct vp_jwriter **ret);
/* Reopen an existing journal to append (rollback marks, recover --forward):
 * takes flock(LOCK_EX|LOCK_NB) (-EWOULDBLOCK if held), validates it, cuts a
 * torn tail and positions after the last valid record. */
int vp_jw_open(int dirfd, const char *name, size_t batch_max, struct vp_jwriter **ret);
/* Buffer one entry (copies it); *ticket (required) gets the number of the
 * batch the entry went into: vp_jw_sync(w, *ticket) makes it durable.
 * Thread-safe: several workers may add to one writer. */
int vp_jw_add(struct vp_jwriter *w, const struct vp_jentry *e, uint32_t *ticket);
/* Make batch `ticket` (and every batch before it) durable: write it and
 * fdatasync it. After this returns 0, the before-images added with that
 * ticket or an earlier one survive a crash (write-ahead, invariant 1).
 * Threads asking at the same time share one write + fdatasync (group
 * commit); one batch at a time is in flight. After a failure every later
 * sync (and add) fails with the same error until vp_jw_discard().
 * Thread-safe. */
int vp_jw_sync(struct vp_jwriter *w, uint32_t ticket);
/* Buffered entries, and whether there are batch_max of them. Unlocked: for
 * single-threaded callers. */
bool vp_jw_full(const struct vp_jwriter *w);
size_t vp_jw_pending(const struct vp_jwriter *w);
/* Append a state record and fdatasync. -EBUSY while entries are buffered, a
 * batch is in flight or a failed one was not discarded: a mark follows
 * durable entries only. */
int vp_jw_mark(struct vp_jwriter *w, enum vp_rec_type t);
const struct vp_jheader *vp_jw_header(const struct vp_jwriter *w);
uint64_t vp_jw_entries(const struct vp_jwriter *w);
/* The journal's state as the writer sees it: at vp_jw_open() that of its
 * last valid mark (a torn tail cut), then of every mark written since. */
enum vp_jstate vp_jw_state(const struct vp_jwriter *w);
/* Drop the buffered, unsynced entries (and a failed batch's error): used
 * when an apply aborts before the batch was flushed (none of those entries
 * was changed). Only when no other thread uses the writer. */
void vp_jw_discard(struct vp_jwriter *w);
/* Close (releases the lock). Unflushed entries are dropped: their changes
 * were never made. */
void vp_jw_close(struct vp_jwriter *w);

/* Is p[0..n) a path relative to the root as journals (and shard manifests)
 * store them: not empty, no NUL, not absolute, no empty, "." or ".."
 * component, no trailing slash; "." alone is the root. */
bool vp_jpath_ok(const char *p, size_t n);

/* ---- reader ---- */

/* A quick look without validating every record: the header and the last
 * record only, O(1). *state is ACTIVE unless the last record is a valid mark
 * (a torn tail therefore reads as ACTIVE: recovery then validates fully).
 * *live tells whether a writer holds the journal's lock right now. With hdr
 * non-NULL, the decoded header is handed over (vp_jheader_free() it). */
int vp_jr_peek(int dirfd, const char *name, enum vp_jstate *state, bool *live,
               struct vp_jheader *hdr);

struct vp_jreader;

/* Open and validate a journal: header, every record checksum (streamed, O(1)
 * memory), torn tail vs corruption in the middle. Errors: -EBADMSG corrupt
 * (vp_jr_error() says where), -EPROTO unknown version, -ENODATA a header
 * that was never completely written (a crash at creation: no entry can have
 * changed), -errno from I/O. On -EBADMSG in the records *ret is still set,
 * so the caller can print vp_jr_error() and vp_jr_header(); it must then only
 * close it. On -EBADMSG in the header *ret is NULL. */
int vp_jr_open_at(int dirfd, const char *name, struct vp_jreader **ret);
void vp_jr_close(struct vp_jreader *r);
const struct vp_jheader *vp_jr_header(const struct vp_jreader *r);
enum vp_jstate vp_jr_state(const struct vp_jreader *r);
uint64_t vp_jr_entries(const struct vp_jreader *r);
bool vp_jr_torn(const struct vp_jreader *r);  /* a torn tail was ignored */
uint64_t vp_jr_valid_end(const struct vp_jreader *r);
int vp_jr_fd(const struct vp_jreader *r);
const char *vp_jr_error(const struct vp_jreader *r);
/* The journal file's mtime when it was opened: for a committed journal, the
 * time of the COMMIT mark, later than every change the apply made. */
struct timespec vp_jr_mtime(const struct vp_jreader *r);
/* Iterate entry records forward (from the first) or backward (from the last):
 * 1 with *e filled, 0 at the end, or -errno. */
void vp_jr_rewind(struct vp_jreader *r);
/* From now on, give every entry's ids (uid, gid, new_uid, new_gid and the
 * user/group qualifiers of the four ACL values) as seen through `to`
 * instead of the journal's namespace `from`: id -> host id through from
 * (vp_userns_to_host), -> to's id for it (vp_userns_to_container). An
 * identity map (vp_jmap_identity) is no step. An id that cannot be
 * translated makes vp_jr_next/prev return -ERANGE, with vp_jr_xlat_fail()
 * telling which. Both maps are copied. 0 or -ENOMEM. */
int vp_jr_translate(struct vp_jreader *r, const struct vp_userns *from,
                    const struct vp_userns *to);
/* Does r translate (vp_jr_translate with a map that is no identity)? */
bool vp_jr_translating(const struct vp_jreader *r);
/* After -ERANGE: the id, and whether it is a gid. */
void vp_jr_xlat_fail(const struct vp_jreader *r, uint32_t *id, bool *gid);
int vp_jr_next(struct vp_jreader *r, struct vp_jentry *e);
void vp_jr_seek_end(struct vp_jreader *r);
int vp_jr_prev(struct vp_jreader *r, struct vp_jentry *e);

#endif
