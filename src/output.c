/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Output formats (see output.h). Human lines quote every path so that a
 * hostile name cannot forge a line or reach the terminal with a control
 * sequence; JSON keeps exact bytes in path_b64. Free text that is not ours
 * (details) goes through vp_quote_text.
 *
 * Standard output may fail (`| head -1` closes the pipe: SIGPIPE is ignored,
 * so writes return EPIPE; `> /dev/full`: ENOSPC). Nothing the run changes
 * depends on its output, so the run goes on; after the first failed write
 * nothing more is written to out (retrying every line would cost a failing
 * write(2) per buffer) and the error is kept in out_error for the caller. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "decide.h"
#include "volperm/output.h"
#include "volperm/quote.h"

/* Join root and relpath into a malloc()ed buffer ("." is the root itself). */
static char *join(const char *root, const char *rel, size_t len, size_t *out_len)
{
	size_t rl = strlen(root);
	bool self = !rel || (len == 1 && rel[0] == '.');
	bool slash = rl > 0 && root[rl - 1] != '/';
	size_t n = rl + (self ? 0 : len + slash);
	char *s = malloc(n + 1);

	if (!s)
		return NULL;
	memcpy(s, root, rl);
	if (!self) {
		if (slash)
			s[rl] = '/';
		memcpy(s + rl + slash, rel, len);
	}
	s[n] = 0;
	*out_len = n;
	return s;
}

void vp_output_path(FILE *f, const char *root, const char *relpath, size_t len)
{
	size_t n;
	char *p = join(root, relpath, len, &n);

	if (!p) {
		fputs("(out of memory)", f);
		return;
	}
	vp_quote_shell(f, p, n);
	free(p);
}

static void json_path(FILE *f, const char *root, const char *relpath, size_t len)
{
	size_t n;
	char *p = join(root, relpath, len, &n);

	if (!p)
		return;
	vp_quote_json_member(f, "path", p, n);
	free(p);
}

/* Can out still be written to? */
static bool out_ok(const struct vp_output *o)
{
	return o->out_error == 0;
}

/* After writing to out: keep the first error. stdio's error flag is
 * sticky but errno is not, so look right after the writes, while errno is
 * still the failed write(2)'s. */
static void out_check(struct vp_output *o)
{
	if (!o->out_error && ferror(o->out))
		o->out_error = errno ? errno : EIO;
}

int vp_output_finish(struct vp_output *o)
{
	if (!o->out_error && fflush(o->out) != 0)
		o->out_error = errno ? errno : EIO;
	out_check(o);
	return o->out_error;
}

static const char *event_name(enum vp_event_type t)
{
	switch (t) {
	case VP_EV_CHANGE: return "change";
	case VP_EV_SKIP: return "skip";
	case VP_EV_ERROR: return "error";
	case VP_EV_RESTORE: return "restore";
	case VP_EV_CONFLICT: return "conflict";
	}
	return "unknown";
}

/* An id as the container sees it: null when the map has no such host id
 * (the container shows it as the overflow id, 65534). */
static void json_container_id(FILE *f, const struct vp_userns *u, bool gid, const char *key,
                              uint32_t host)
{
	uint32_t c;

	if (vp_userns_to_container(u, gid, host, &c) == 0)
		fprintf(f, ",\"%s\":%u", key, c);
	else
		fprintf(f, ",\"%s\":null", key);
}

static void json_event(const struct vp_output *o, const struct vp_event *ev)
{
	FILE *f = o->out;

	fprintf(f, "{\"event\":\"%s\",", event_name(ev->type));
	json_path(f, ev->root, ev->relpath, ev->relpath_len);
	fprintf(f, ",\"type\":\"%s\"", ev->mode ? vp_type_name(ev->mode) : "unknown");
	switch (ev->type) {
	case VP_EV_CHANGE:
	case VP_EV_RESTORE:
		fprintf(f, ",\"uid\":%u,\"gid\":%u,\"mode\":\"%04o\",\"new_uid\":%u,\"new_gid\":%u,\"new_mode\":\"%04o\"",
		        (unsigned)ev->uid, (unsigned)ev->gid, (unsigned)(ev->mode & 07777),
		        (unsigned)ev->new_uid, (unsigned)ev->new_gid, (unsigned)(ev->new_mode & 07777));
		if (o->userns) {
			json_container_id(f, o->userns, false, "container_uid", ev->uid);
			json_container_id(f, o->userns, true, "container_gid", ev->gid);
			json_container_id(f, o->userns, false, "new_container_uid", ev->new_uid);
			json_container_id(f, o->userns, true, "new_container_gid", ev->new_gid);
		}
		if (ev->type == VP_EV_CHANGE) {
			fprintf(f, ",\"acl\":%s,\"default_acl\":%s", ev->changes & VP_CH_ACL ? "true" : "false",
			        ev->changes & VP_CH_DEFAULT_ACL ? "true" : "false");
		}
		fputs(",\"drops\":[", f);
		if (ev->type == VP_EV_CHANGE) {
			const char *sep = "";
			if (ev->changes & VP_CH_DROP_SUID)
				fprintf(f, "%s\"setuid\"", sep), sep = ",";
			if (ev->changes & VP_CH_DROP_SGID)
				fprintf(f, "%s\"setgid\"", sep), sep = ",";
			if (ev->changes & VP_CH_DROP_CAPS)
				fprintf(f, "%s\"caps\"", sep);
		}
		fputc(']', f);
		break;
	case VP_EV_SKIP:
		fprintf(f, ",\"reason\":\"%s\"", vp_skip_name(ev->skip));
		break;
	case VP_EV_ERROR:
	case VP_EV_CONFLICT:
		if (ev->op)
			fprintf(f, ",\"op\":\"%s\"", ev->op);
		fprintf(f, ",\"errno\":%d,\"message\":", ev->err);
		const char *m = ev->err ? strerror(ev->err) : ev->detail ? ev->detail : "";
		vp_quote_json(f, m, strlen(m));
		break;
	}
	if (ev->detail) {
		fputs(",\"detail\":", f);
		vp_quote_json(f, ev->detail, strlen(ev->detail));
	}
	fputs("}\n", f);
}

/* The end of a human line: a detail (may be NULL), then the newline. */
static void detail_line(FILE *f, const char *detail)
{
	if (detail)
		vp_quote_text(f, detail, strlen(detail));
	fputc('\n', f);
}

/* A container id, or "?" when the map has none for the host id (the
 * container shows the overflow id, 65534, for it). */
static void container_id(FILE *f, const struct vp_userns *u, bool gid, uint32_t host)
{
	uint32_t c;

	if (vp_userns_to_container(u, gid, host, &c) == 0)
		fprintf(f, "%u", c);
	else
		fputc('?', f);
}

/* Each token is written with its leading space. */
static void human_ids(FILE *f, const struct vp_event *ev, const struct vp_userns *u)
{
	if (ev->uid != ev->new_uid || ev->gid != ev->new_gid) {
		fprintf(f, " %u:%u->%u:%u", (unsigned)ev->uid, (unsigned)ev->gid,
		        (unsigned)ev->new_uid, (unsigned)ev->new_gid);
		if (u) {
			fputs(" (container ", f);
			container_id(f, u, false, ev->uid);
			fputc(':', f);
			container_id(f, u, true, ev->gid);
			fputs("->", f);
			container_id(f, u, false, ev->new_uid);
			fputc(':', f);
			container_id(f, u, true, ev->new_gid);
			fputc(')', f);
		}
	}
	if (!S_ISLNK(ev->mode) && (ev->mode & 07777) != (ev->new_mode & 07777))
		fprintf(f, " mode %04o->%04o", (unsigned)(ev->mode & 07777),
		        (unsigned)(ev->new_mode & 07777));
}

void vp_output_event(void *userdata, const struct vp_event *ev)
{
	struct vp_output *o = userdata;

	if (ev->type != VP_EV_CHANGE && ev->type != VP_EV_RESTORE)
		vp_output_progress_done(userdata);

	if (o->json) {
		if (out_ok(o)) {
			json_event(o, ev);
			out_check(o);
		}
		if (ev->type != VP_EV_ERROR && ev->type != VP_EV_CONFLICT)
			return;
	}
	switch (ev->type) {
	case VP_EV_CHANGE:
	case VP_EV_RESTORE:
		if (!o->list || o->json || !out_ok(o))
			return;
		if (ev->type == VP_EV_RESTORE)
			fputs("restore", o->out);
		else
			fputs(ev->changes & (VP_CH_UID | VP_CH_GID) ? "chown" : "change", o->out);
		human_ids(o->out, ev, o->userns);
		if (ev->changes & VP_CH_ACL)
			fputs(" acl", o->out);
		if (ev->changes & VP_CH_DEFAULT_ACL)
			fputs(" default-acl", o->out);
		if (ev->changes & VP_CH_DROP_CAPS && ev->type == VP_EV_CHANGE)
			fputs(" caps-dropped", o->out);
		fputc(' ', o->out);
		vp_output_path(o->out, ev->root, ev->relpath, ev->relpath_len);
		fputc('\n', o->out);
		out_check(o);
		return;
	case VP_EV_SKIP:
		if (o->list && !o->json && out_ok(o)) {
			fprintf(o->out, "skip %s ", vp_skip_name(ev->skip));
			vp_output_path(o->out, ev->root, ev->relpath, ev->relpath_len);
			fputc('\n', o->out);
			out_check(o);
		}
		/* Safety skips and unentered mounts need a person's eyes even
		 * without --list: they are why a volume may not be ready. */
		if (!o->quiet && !o->json &&
		    (vp_skip_is_safety(ev->skip) || ev->skip == VP_SKIP_MOUNT ||
		     ev->skip == VP_SKIP_SUBVOLUME)) {
			fputs("volperm: ", o->err);
			vp_output_path(o->err, ev->root, ev->relpath, ev->relpath_len);
			fprintf(o->err, ": skipped (%s)%s",
			        ev->skip == VP_SKIP_EXTERNAL_LINK ? "hard link leads outside the tree"
			        : ev->skip == VP_SKIP_CHANGED     ? "changed while volperm ran"
			        : ev->skip == VP_SKIP_SUBVOLUME
			                ? "btrfs subvolume, not entered; --cross-mounts enters it"
			                : "nested mount point, not entered",
			        ev->detail ? ": " : "");
			detail_line(o->err, ev->detail);
		}
		return;
	case VP_EV_ERROR:
	case VP_EV_CONFLICT:
		/* The run's reason names it: printed once, by the summary. */
		if (ev->is_reason)
			return;
		fputs("volperm: ", o->err);
		if (ev->relpath)
			vp_output_path(o->err, ev->root, ev->relpath, ev->relpath_len);
		else
			vp_quote_shell(o->err, ev->root, strlen(ev->root));
		if (ev->type == VP_EV_CONFLICT) {
			fputs(": left alone: ", o->err);
			detail_line(o->err, ev->detail ? ev->detail : "changed since");
		} else {
			fprintf(o->err, ": %s: %s%s", ev->op ? ev->op : "error", strerror(ev->err),
			        ev->detail ? ": " : "");
			detail_line(o->err, ev->detail);
		}
		return;
	}
}

/* The map in force: where it came from and its ranges (the start event). */
static void json_userns(FILE *f, const struct vp_userns *u)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	fputs(",\"userns\":", f);
	vp_quote_json(f, u->spec ? u->spec : "", u->spec ? strlen(u->spec) : 0);
	if (!m)
		return;
	int r = vp_userns_format(u, m);
	if (fclose(m) == 0 && r == 0) {
		fputs(",\"id_map\":", f);
		vp_quote_json(f, buf, len);
	}
	free(buf);
}

void vp_output_start(struct vp_output *o, const char *root, const char *policy)
{
	if (!out_ok(o))
		return;
	if (o->json) {
		fprintf(o->out, "{\"event\":\"start\",\"command\":\"%s\",\"root\":", o->command);
		vp_quote_json(o->out, root, strlen(root));
		fputs(",\"policy\":", o->out);
		vp_quote_json(o->out, policy ? policy : "", policy ? strlen(policy) : 0);
		if (o->userns)
			json_userns(o->out, o->userns);
		fputs(",\"version\":\"" VOLPERM_VERSION "\"}\n", o->out);
		out_check(o);
		return;
	}
	if (o->quiet)
		return;
	fprintf(o->out, "volperm %s: ", o->command);
	vp_quote_shell(o->out, root, strlen(root));
	fputc('\n', o->out);
	if (policy)
		fprintf(o->out, "target:    %s\n", policy);
	/* Progress lines go to unbuffered stderr: without this, a log that
	 * merges both streams (docker logs) shows the header after them. */
	if (fflush(o->out) != 0 && !o->out_error)
		o->out_error = errno ? errno : EIO;
	out_check(o);
}

static void json_summary(const struct vp_output *o, const struct vp_stats *st, const char *journal,
                         int exit_status, const char *why)
{
	FILE *f = o->out;

	fprintf(f, "{\"event\":\"summary\",\"command\":\"%s\",\"scanned\":%llu,\"dirs\":%llu,\"files\":%llu,\"symlinks\":%llu,\"other\":%llu,"
	           "\"changes\":%llu,\"owner\":%llu,\"group\":%llu,\"setuid_cleared\":%llu,\"setgid_cleared\":%llu,\"caps_dropped\":%llu,\"mode\":%llu,\"acl\":%llu,\"root_complies\":%s,"
	           "\"unchanged\":%llu,\"skipped\":%llu,\"skip_reasons\":{",
	        o->command, (unsigned long long)st->scanned, (unsigned long long)st->dirs,
	        (unsigned long long)st->files, (unsigned long long)st->symlinks,
	        (unsigned long long)st->other, (unsigned long long)st->changes,
	        (unsigned long long)st->ch_uid, (unsigned long long)st->ch_gid,
	        (unsigned long long)st->drop_suid, (unsigned long long)st->drop_sgid,
	        (unsigned long long)st->drop_caps, (unsigned long long)st->ch_mode,
	        (unsigned long long)st->ch_acl, st->root_complies ? "true" : "false",
	        (unsigned long long)st->unchanged, (unsigned long long)st->skipped);
	const char *sep = "";
	for (int i = VP_SKIP_EXCLUDED; i < VP_SKIP__MAX; i++) {
		fprintf(f, "%s\"%s\":%llu", sep, vp_skip_name((enum vp_skip)i),
		        (unsigned long long)st->skip[i]);
		sep = ",";
	}
	fprintf(f, "},\"errors\":%llu,\"restored\":%llu,\"already\":%llu,\"conflicts\":%llu,\"seconds\":%.3f,",
	        (unsigned long long)st->errors, (unsigned long long)st->restored,
	        (unsigned long long)st->already, (unsigned long long)st->conflicts, st->seconds);
	if (o->jobs) {
		fprintf(f, "\"jobs\":%u,\"jobs_why\":", o->jobs);
		vp_quote_json(f, o->jobs_why ? o->jobs_why : "", strlen(o->jobs_why ? o->jobs_why : ""));
		fputc(',', f);
	}
	fputs("\"journal\":", f);
	if (journal)
		vp_quote_json(f, journal, strlen(journal));
	else
		fputs("null", f);
	fputs(",\"message\":", f);
	if (why)
		vp_quote_json(f, why, strlen(why));
	else
		fputs("null", f);
	fprintf(f, ",\"exit\":%d}\n", exit_status);
}

void vp_output_summary(struct vp_output *o, const char *root, const char *policy,
                       const struct vp_stats *st, const char *journal, int exit_status,
                       const char *why)
{
	FILE *f = o->out;
	bool rollback = o->restore_summary;

	(void)root;
	(void)policy;
	vp_output_progress_done(o);
	if (why && *why)
		fprintf(o->err, "volperm: %s\n", why);
	if (!out_ok(o))
		return;
	if (o->json) {
		json_summary(o, st, journal, exit_status, why && *why ? why : NULL);
		out_check(o);
		return;
	}
	/* A run refused as a whole (exit 2) changed nothing: its partial
	 * counts would only distract from the one sentence above. */
	if (o->quiet || (exit_status == 2 && why && *why))
		return;
	if (rollback) {
		fprintf(f, "entries:   %llu in the journal\n", (unsigned long long)st->scanned);
		fprintf(f, "restored:  %llu\n", (unsigned long long)st->restored);
		fprintf(f, "already:   %llu (already as before)\n", (unsigned long long)st->already);
		fprintf(f, "conflicts: %llu (changed since; left alone)\n", (unsigned long long)st->conflicts);
		fprintf(f, "errors:    %llu\n", (unsigned long long)st->errors);
	} else if (st->root_complies) {
		fputs("root:      already complies; walk skipped (on-root-mismatch)\n", f);
	} else {
		fprintf(f, "scanned:   %llu entries (%llu dirs, %llu files, %llu symlinks, %llu other)\n",
		        (unsigned long long)st->scanned, (unsigned long long)st->dirs,
		        (unsigned long long)st->files, (unsigned long long)st->symlinks,
		        (unsigned long long)st->other);
		fprintf(f, "changes:   %llu entries (owner %llu, group %llu, setuid cleared %llu, setgid cleared %llu, capabilities dropped %llu",
		        (unsigned long long)st->changes, (unsigned long long)st->ch_uid,
		        (unsigned long long)st->ch_gid, (unsigned long long)st->drop_suid,
		        (unsigned long long)st->drop_sgid, (unsigned long long)st->drop_caps);
		if (st->ch_mode || st->ch_acl)
			fprintf(f, ", mode %llu, acl %llu", (unsigned long long)st->ch_mode,
			        (unsigned long long)st->ch_acl);
		fputs(")\n", f);
		fprintf(f, "unchanged: %llu\n", (unsigned long long)st->unchanged);
		fprintf(f, "skipped:   %llu", (unsigned long long)st->skipped);
		const char *sep = " (";
		for (int i = VP_SKIP_EXCLUDED; i < VP_SKIP__MAX; i++)
			if (st->skip[i]) {
				fprintf(f, "%s%s %llu", sep, vp_skip_name((enum vp_skip)i),
				        (unsigned long long)st->skip[i]);
				sep = ", ";
			}
		fputs(*sep == ',' ? ")\n" : "\n", f);
		fprintf(f, "errors:    %llu\n", (unsigned long long)st->errors);
		if (st->restored || st->already || st->conflicts)
			fprintf(f, "rolled back: %llu restored, %llu already as before, %llu conflicts\n",
			        (unsigned long long)st->restored, (unsigned long long)st->already,
			        (unsigned long long)st->conflicts);
	}
	fprintf(f, "time:      %.2f s\n", st->seconds);
	if (o->jobs)
		fprintf(f, "jobs:      %u (%s)\n", o->jobs, o->jobs_why ? o->jobs_why : "");
	if (journal) {
		fputs("journal:   ", f);
		vp_quote_shell(f, journal, strlen(journal));
		if (o->journal_state)
			fprintf(f, " (%s)", o->journal_state);
		fputc('\n', f);
	}
	if (strcmp(o->command, "plan") == 0)
		fputs("dry run: nothing was changed.\n", f);
	out_check(o);
}

void vp_output_error(const struct vp_output *o, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(o->err, "volperm: %s\n", msg);
	if (o->json && out_ok(o)) {
		fputs("{\"event\":\"error\",\"message\":", o->out);
		vp_quote_json(o->out, msg, strlen(msg));
		fputs("}\n", o->out);
	}
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void vp_output_progress(void *userdata, const struct vp_stats *st)
{
	struct vp_output *o = userdata;
	double t = mono(), el, rate;
	bool tty;

	if (o->progress == VP_PROGRESS_NEVER || o->quiet)
		return;
	if (o->started == 0) {
		o->started = o->last_shown = t;
		return;
	}
	tty = !o->json && isatty(fileno(o->err));
	/* A terminal gets a live line twice a second; logs one line per
	 * interval; AUTO shows nothing in the first interval (short runs stay
	 * quiet). */
	if (t - o->last_shown < (tty ? 0.5 : o->progress_interval))
		return;
	if (!tty && o->progress == VP_PROGRESS_AUTO && t - o->started < o->progress_interval)
		return;
	o->last_shown = t;
	el = t - o->started;
	rate = el > 0 ? (double)st->scanned / el : 0;
	uint64_t done = st->scanned ? st->scanned : st->restored + st->already + st->conflicts;
	double eta = o->expected > done && rate > 0 ? (double)(o->expected - done) / rate : -1;
	if (o->json) {
		if (!out_ok(o))
			return;
		fprintf(o->out, "{\"event\":\"progress\",\"scanned\":%llu,\"changes\":%llu,\"restored\":%llu,\"elapsed\":%.1f,\"rate\":%.0f,\"eta\":",
		        (unsigned long long)st->scanned, (unsigned long long)st->changes,
		        (unsigned long long)st->restored, el, rate);
		if (eta >= 0)
			fprintf(o->out, "%.0f}\n", eta);
		else
			fputs("null}\n", o->out);
		if (fflush(o->out) != 0 && !o->out_error)
			o->out_error = errno ? errno : EIO;
		out_check(o);
		return;
	}
	fprintf(o->err, "%svolperm %s: %llu entries, %llu changed, %.0f/s, %.0f s elapsed",
	        tty ? "\r\033[K" : "", o->command, (unsigned long long)done,
	        (unsigned long long)(st->changes + st->restored), rate, el);
	if (eta >= 0)
		fprintf(o->err, ", about %.0f s left", eta);
	fputs(tty ? "" : "\n", o->err);
	fflush(o->err);
	o->live_line = tty;
}

void vp_output_progress_done(struct vp_output *o)
{
	if (o->live_line) {
		fputs("\r\033[K", o->err);
		fflush(o->err);
		o->live_line = false;
	}
}
