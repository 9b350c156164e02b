/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VOLPERM_OUTPUT_H
#define VOLPERM_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

#include "volperm/report.h"
#include "volperm/userns.h"

/* Presentation: human text, --list lines, or NDJSON (docs/volperm.1, JSON
 * OUTPUT). The only module besides cli.c that prints. */

struct vp_output {
	FILE *out;            /* stdout */
	FILE *err;            /* stderr */
	bool json, list, quiet;
	const char *command;  /* "plan", "apply", ... */
	bool restore_summary; /* summarise restores (rollback, recover) */
	const char *journal_state; /* shown after the summary's journal path */
	/* Progress: live on a terminal (stderr), else one line per interval,
	 * so `docker logs` shows the run is alive. */
	enum { VP_PROGRESS_AUTO, VP_PROGRESS_ALWAYS, VP_PROGRESS_NEVER } progress;
	double progress_interval;     /* seconds between plain lines */
	uint64_t expected;            /* entries expected (used inodes), 0 if unknown */
	/* --userns/--uid-map in force: --list and --json show each owner as
	 * the container sees it too. NULL (the default): output as always. */
	const struct vp_userns *userns;
	unsigned jobs;                /* the run's threads (0: not shown) and why */
	const char *jobs_why;         /* that many: "--jobs", "auto: ext4, 2 CPUs" */
	/* state */
	double started, last_shown;
	bool live_line;               /* a \r line is on the terminal */
	int out_error;                /* errno of the first failed write to out:
	                               * nothing more is written there */
};

/* The vp_reporter progress callback: userdata is a struct vp_output. */
void vp_output_progress(void *userdata, const struct vp_stats *st);
/* Erase a live progress line before other output. */
void vp_output_progress_done(struct vp_output *o);

/* The vp_reporter callback: userdata is a struct vp_output. */
void vp_output_event(void *userdata, const struct vp_event *ev);

void vp_output_start(struct vp_output *o, const char *root, const char *policy);

/* The closing summary. journal: full path or NULL; why: NULL or the one
 * sentence that explains a failed run (also printed to stderr). */
void vp_output_summary(struct vp_output *o, const char *root, const char *policy,
                       const struct vp_stats *st, const char *journal, int exit_status,
                       const char *why);

/* Flush out; returns the errno of its first failed write (a closed pipe, a
 * full disk), or 0. The run itself never stops for it: the caller says so
 * once at the end (docs/volperm.1, EXIT STATUS 8). */
int vp_output_finish(struct vp_output *o);

/* "volperm: <message>" on stderr, and an error event in JSON mode. */
void vp_output_error(const struct vp_output *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A full path (root + relpath), shell-quoted, to f. */
void vp_output_path(FILE *f, const char *root, const char *relpath, size_t len);

#endif
