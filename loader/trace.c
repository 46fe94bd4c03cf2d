// SPDX-License-Identifier: GPL-2.0
/*
 * trace: switch per-connection events on, print one line each, switch
 * them off on Ctrl-C. Events are emitted only at establishment, leaving
 * and close, never per message, and only while sa_config.trace is set.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "common.h"
#include "maps.h"
#include "names.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static void fmt_endpoint(const __u32 *ip6, __u16 port, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == htonl(0xffff)) {
		inet_ntop(AF_INET, &ip6[3], a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, port);
	} else {
		inet_ntop(AF_INET6, ip6, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, port);
	}
}

/* An event about a reader (use learned, reader switched or killed, ...). */
static void reader_event_json(const struct sa_event *ev, const char *ts, long us,
			      const char *l, const char *r)
{
	char comm[17];
	struct json w;

	memcpy(comm, ev->comm, 16);
	comm[16] = 0;
	json_init(&w, stdout);
	json_start_object(&w);
	json_key(&w, "time");
	json_strf(&w, "%s.%06ld", ts, us);
	json_field_str(&w, "event", event_name(ev->type));
	json_field_str(&w, "reason", reason_name(ev->reason));
	json_field_u64(&w, "pid", ev->pid);
	json_field_str(&w, "comm", comm);
	json_field_u64(&w, "exe_dev", ev->exe.dev);
	json_field_u64(&w, "exe_ino", ev->exe.ino);
	json_field_str(&w, "local", l);
	json_field_str(&w, "remote", r);
	json_field_u64(&w, "unread", ev->unread);
	json_end(&w);
}

/* Why an option was refused (the sockopt event's unread flag). */
static const char *sockopt_refusal(__u32 reason)
{
	/* Refused on any inserted socket (sockopt.bpf.c, always_refuse). */
	if (reason == SA_R_ULP || reason == SA_R_ZEROCOPY_TX)
		return " REFUSED: the socket is on the fast path";
	return " REFUSED: redirected bytes unread";
}

static void reader_event_text(const struct sa_event *ev, const char *ts, long us,
			      const char *l, const char *r)
{
	char comm[17];
	size_t i;

	/* comm is any process's to set: print it escaped, for display. */
	memcpy(comm, ev->comm, 16);
	comm[16] = 0;
	for (i = 0; comm[i]; i++)
		if ((unsigned char)comm[i] < 0x20 || comm[i] == '"' || comm[i] == '\\')
			comm[i] = '?';
	printf("%s.%06ld %-14s %s pid %u (%s, exe %u:%u inode %llu) socket %s <-> %s%s\n",
	       ts, us, event_name(ev->type), reason_name(ev->reason),
	       ev->pid, comm, ev->exe.dev >> 20, ev->exe.dev & 0xfffff,
	       (unsigned long long)ev->exe.ino, l, r,
	       ev->type == SA_EV_READER_KILL ? " KILLED: held unread redirected bytes" :
	       ev->type == SA_EV_SOCKOPT && ev->unread ? sockopt_refusal(ev->reason) : "");
}

/* An event about a reader (its executable, its pid), not about a connection's fate. */
static bool reader_event(__u32 type)
{
	return type >= SA_EV_USE_LEARNED && type != SA_EV_JOINED && type != SA_EV_REJOINED;
}

/* A connection event: accelerated, passed, left, joined, rejoined, closed. */
static void conn_event_json(const struct sa_event *ev, const char *ts, long us,
			    const char *l, const char *r)
{
	struct json w;

	json_init(&w, stdout);
	json_start_object(&w);
	json_key(&w, "time");
	json_strf(&w, "%s.%06ld", ts, us);
	json_field_str(&w, "event", event_name(ev->type));
	json_field_str(&w, "role", ev->role == SA_ROLE_CLIENT ? "client" : "server");
	json_field_str(&w, "local", l);
	json_field_str(&w, "remote", r);
	json_field_str(&w, "reason", reason_name(ev->reason));
	json_field_u64(&w, "bytes_redirected", ev->bytes_redirected);
	json_field_u64(&w, "bytes_passed", ev->bytes_passed);
	json_end(&w);
}

static void conn_event_text(const struct sa_event *ev, const char *ts, long us,
			    const char *l, const char *r)
{
	printf("%s.%06ld %-11s %-6s %s %s %s", ts, us, event_name(ev->type),
	       ev->role == SA_ROLE_CLIENT ? "client" : "server", l,
	       ev->role == SA_ROLE_CLIENT ? "->" : "<-", r);
	if (ev->type == SA_EV_PASSED || ev->type == SA_EV_LEFT || ev->type == SA_EV_JOINED ||
	    ev->type == SA_EV_REJOINED)
		printf(" reason %s", reason_name(ev->reason));
	if (ev->type == SA_EV_CLOSED)
		printf(" sent: redirected %llu B, passed %llu B",
		       (unsigned long long)ev->bytes_redirected,
		       (unsigned long long)ev->bytes_passed);
	printf("\n");
}

static int on_event(void *ctx, void *data, size_t size)
{
	const struct sa_event *ev = data;
	char l[80], r[80], ts[32];
	struct timespec now;
	struct tm tm;
	long us;

	if (size < sizeof(*ev))
		return 0;
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	us = now.tv_nsec / 1000;
	fmt_endpoint(ev->local_ip6, ev->local_port, l, sizeof(l));
	fmt_endpoint(ev->remote_ip6, ev->remote_port, r, sizeof(r));
	if (reader_event(ev->type) && opt_json)
		reader_event_json(ev, ts, us, l, r);
	else if (reader_event(ev->type))
		reader_event_text(ev, ts, us, l, r);
	else if (opt_json)
		conn_event_json(ev, ts, us, l, r);
	else
		conn_event_text(ev, ts, us, l, r);
	fflush(stdout);
	return 0;
}

/* --duration SECONDS: a double, 0 without it. */
static int parse_duration(const char *s, void *field)
{
	double *duration = field;
	char *end;

	*duration = strtod(s, &end);
	if (*end || !(*duration > 0))
		return err_msg("invalid --duration '%s'", s);
	return 0;
}

static const struct opt trace_opts[] = {
	{ .name = "duration", .arg = OPT_ARG, .metavar = "SECONDS", .parse = parse_duration,
	  .help = "stop after SECONDS (default: at Ctrl-C)" },
	{}
};

static void usage_trace(void)
{
	printf("Usage: sockaccel [-j] trace [--duration SECONDS]\n"
	       "\n"
	       "Print one line per connection event in attached cgroups: accelerated,\n"
	       "passed (with the reason), left, closed (with bytes sent each way).\n"
	       "Tracing is switched on while this runs and off when it ends (Ctrl-C or\n"
	       "--duration); no per-message cost either way.\n"
	       "\n");
	opts_help(stdout, trace_opts);
	printf("\n"
	       "Examples:\n"
	       "  sockaccel trace\n"
	       "  sockaccel -j trace --duration 10\n");
}


/*
 * Events flow while any trace session runs. Each holds a shared flock on
 * its pin root's trace file (named by a hash of the pin root, beside the
 * command lock) for its whole life (the kernel drops it when
 * a session is killed), and the last one out, whose exclusive flock then
 * succeeds, turns tracing off: two trace.sh sessions no longer switch
 * each other off. The config is rewritten under the command lock, so a
 * session never writes back options a concurrent load changed.
 */
static int trace_session_join(void)
{
	unsigned long long h = 0xcbf29ce484222325ull;	/* FNV-1a of the pin root */
	char name[64], path[PATH_MAX];
	const char *c;
	int fd, i;

	for (c = pin_root(); *c; c++)
		h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
	snprintf(name, sizeof(name), "sockaccel.trace.%016llx", h);
	fd = open_lock_file(name, NULL, path, sizeof(path));
	if (fd < 0)
		return -1;
	/* Only a session that is leaving holds it exclusively, briefly. */
	for (i = 0; i < 200; i++) {
		if (flock(fd, LOCK_SH | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK)
			break;
		usleep(10 * 1000);
	}
	err_errno(errno, NULL, "cannot lock %s", path);
	close(fd);
	return -1;
}

static int set_trace(__u32 on)
{
	struct sa_config cfg;
	int lock = lock_acquire(), err = -1;

	if (lock < 0)
		return -1;
	if (read_config(&cfg) == 0) {
		cfg.trace = on;
		err = write_config(&cfg);
	}
	close(lock);
	return err;
}

static void trace_session_leave(int fd)
{
	flock(fd, LOCK_UN);
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && is_loaded())
		set_trace(0);
	close(fd);
}

static int cmd_trace(int argc, char **argv)
{
	struct ring_buffer *rb = NULL;
	double duration = 0;
	struct timespec start, now;
	int fd, ret = 1, session = -1, rc;

	rc = opts_parse(&trace_command, argc, argv, &duration, NULL);
	if (rc != OPTS_OK)
		return opts_exit(rc);
	if (require_caps())
		return 1;
	if (!is_loaded())
		return err_msg("not loaded (hint: sudo ./load.sh CGROUP_DIR)"), 1;
	fd = open_pinned(MAP_EVENTS);
	if (fd < 0)
		return err_errno(errno, NULL, "cannot open event ring buffer"), 1;
	rb = ring_buffer__new(fd, on_event, NULL, NULL);
	if (!rb) {
		err_errno(errno, NULL, "cannot map event ring buffer");
		goto out;
	}
	session = trace_session_join();
	if (session < 0 || set_trace(1))
		goto out;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!opt_json)
		fprintf(stderr, "tracing sockaccel connection events; Ctrl-C to stop\n");
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!stop) {
		int err = ring_buffer__poll(rb, 200);

		if (err < 0 && err != -EINTR) {
			err_errno(err, NULL, "ring buffer poll");
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (duration && (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 >= duration)
			break;
	}
	ring_buffer__consume(rb);
	ret = 0;
out:
	if (session >= 0)
		trace_session_leave(session);
	ring_buffer__free(rb);
	close(fd);
	return ret;
}

const struct command trace_command = {
	.name = "trace",
	.summary = "print connection events until Ctrl-C",
	.run = cmd_trace,
	.usage = usage_trace,
	.opts = { { trace_opts, 0 } },
};
