/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_CANCEL_H
#define VOLPERM_CANCEL_H

#include <signal.h>
#include <stdatomic.h>

/* How a signal asks the core to stop (docs/volperm.1, SIGNALS). The CLI owns
 * the one instance and its handlers only count signals into it; the core
 * never installs a handler and only polls the count at its safe points
 * (between entries, never inside one entry's chown/ACL/chmod sequence).
 * Lock-free atomics, because a handler may touch only those (C11 7.14.1.1)
 * and because with --jobs the handler runs on whichever thread the kernel
 * picks while the workers read. */
struct vp_cancel {
	atomic_uint count; /* signals received so far */
	atomic_int signo;  /* the latest of them */
};

static inline unsigned vp_cancel_count(const struct vp_cancel *c)
{
	return c ? atomic_load(&c->count) : 0;
}

/* The name the messages use for the latest signal: "SIGTERM", ... */
static inline const char *vp_cancel_name(const struct vp_cancel *c)
{
	switch (c ? atomic_load(&c->signo) : 0) {
	case SIGTERM: return "SIGTERM";
	case SIGINT: return "SIGINT";
	case SIGHUP: return "SIGHUP";
	}
	return "a signal";
}

#endif
