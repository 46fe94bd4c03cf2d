// SPDX-License-Identifier: GPL-2.0
/*
 * metrics: the counters in the Prometheus text exposition format (version
 * 0.0.4), once on stdout or served over HTTP (--listen ADDR:PORT, GET
 * /metrics). Every counter is a `sockaccel_<name>_total` per attached
 * cgroup, pass reasons one `sockaccel_passes_total` with a `reason` label.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include "common.h"
#include "maps.h"
#include "names.h"

/* A label value: backslash, double quote and newline escaped. */
static void label(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

struct cg_counters {
	__u64 id;
	char path[PATH_MAX];
	struct sa_counters c;
};

/* Counters per reason (see reason_groups) as labelled metrics. */
static const struct {
	const char *metric, *help;
	unsigned int base;
} groups[] = {
	{ "passes", "Messages sent through TCP, or sockets left on TCP, by reason.", SA_C_REASON_BASE },
	{ "leaves", "Sockets that left the sockhash, by reason.", SA_C_LEAVE_BASE },
	{ "joins", "Sockets inserted after establishment, by why they had been out.", SA_C_JOIN_BASE },
	{ "rejoins", "Sockets inserted again after leaving, by why they had left.", SA_C_REJOIN_BASE },
	{ NULL, NULL, 0 },
};

static int write_metrics(FILE *f)
{
	int cgs = open_pinned(MAP_CGROUPS), socks = open_pinned(MAP_SOCKS);
	static struct cg_counters all[SA_MAX_CGROUPS];
	__u64 key, cur;
	unsigned int nsocks = 0, i;
	int n = 0, j, first = 1;
	typeof(&groups[0]) g;

	if (cgs < 0) {
		fprintf(f, "# HELP sockaccel_up Whether sockaccel is loaded.\n"
			   "# TYPE sockaccel_up gauge\nsockaccel_up 0\n");
		return 0;
	}
	if (socks >= 0)
		nsocks = count_u64_keys(socks);
	while (n < SA_MAX_CGROUPS && bpf_map_get_next_key(cgs, first ? NULL : &cur, &key) == 0) {
		struct sa_cgroup_info info;

		cur = key;
		first = 0;
		if (bpf_map_lookup_elem(cgs, &key, &info) || read_counters(info.slot, &all[n].c))
			continue;
		all[n].id = key;
		if (cgroup_path_by_id(key, all[n].path, sizeof(all[n].path)))
			snprintf(all[n].path, sizeof(all[n].path), "(removed)");
		n++;
	}
	fprintf(f, "# HELP sockaccel_up Whether sockaccel is loaded.\n"
		   "# TYPE sockaccel_up gauge\nsockaccel_up 1\n"
		   "# HELP sockaccel_sockets Sockets on the fast path now.\n"
		   "# TYPE sockaccel_sockets gauge\nsockaccel_sockets %u\n", nsocks);
	for (i = 0; i < SA_C_REASON_BASE; i++) {
		const char *name = counter_name(i);

		fprintf(f, "# HELP sockaccel_%s_total %s\n# TYPE sockaccel_%s_total counter\n", name,
			counter_help(i), name);
		for (j = 0; j < n; j++) {
			fprintf(f, "sockaccel_%s_total{cgroup=", name);
			label(f, all[j].path);
			fprintf(f, ",cgroup_id=\"%llu\"} %llu\n", (unsigned long long)all[j].id,
				(unsigned long long)all[j].c.c[i]);
		}
	}
	for (g = groups; g->metric; g++) {
		fprintf(f, "# HELP sockaccel_%s_total %s\n# TYPE sockaccel_%s_total counter\n",
			g->metric, g->help, g->metric);
		for (j = 0; j < n; j++) {
			for (i = 1; i < SA_R_MAX; i++) {
				fprintf(f, "sockaccel_%s_total{cgroup=", g->metric);
				label(f, all[j].path);
				fprintf(f, ",cgroup_id=\"%llu\",reason=\"%s\"} %llu\n",
					(unsigned long long)all[j].id, reason_name(i),
					(unsigned long long)all[j].c.c[g->base + i]);
			}
		}
	}
	close(cgs);
	if (socks >= 0)
		close(socks);
	return 0;
}

/* One request per connection: "GET /metrics", anything else is a 404. */
static void serve_one(int fd)
{
	char req[1024], *body = NULL;
	size_t blen = 0;
	ssize_t n = recv(fd, req, sizeof(req) - 1, 0);
	FILE *f;

	if (n <= 0)
		return;
	req[n] = 0;
	if (strncmp(req, "GET /metrics ", 13) && strncmp(req, "GET / ", 6)) {
		dprintf(fd, "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
		return;
	}
	f = open_memstream(&body, &blen);
	if (!f)
		return;
	write_metrics(f);
	fclose(f);
	dprintf(fd, "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n", blen);
	if (write(fd, body, blen) < 0)
		errno = 0;
	free(body);
}

static int serve(const char *addr)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	char host[128], *colon;
	int fd, one = 1;

	snprintf(host, sizeof(host), "%s", addr);
	colon = strrchr(host, ':');
	if (!colon)
		return err_msg("invalid --listen '%s' (ADDR:PORT, e.g. 127.0.0.1:9477)", addr);
	*colon = 0;
	if (!strcmp(host, "") || !strcmp(host, "*"))
		snprintf(host, sizeof(host), "0.0.0.0");
	{
		struct sockaddr_in *a4 = (void *)&ss;
		struct sockaddr_in6 *a6 = (void *)&ss;
		char *h = host;
		int port = atoi(colon + 1);

		if (port <= 0 || port > 65535)
			return err_msg("invalid port in --listen '%s'", addr);
		if (h[0] == '[' && h[strlen(h) - 1] == ']') {
			h[strlen(h) - 1] = 0;
			h++;
		}
		if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
			a4->sin_family = AF_INET;
			a4->sin_port = htons(port);
			len = sizeof(*a4);
		} else if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons(port);
			len = sizeof(*a6);
		} else {
			return err_msg("invalid address in --listen '%s'", addr);
		}
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_errno(errno, NULL, "cannot create a socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (void *)&ss, len) || listen(fd, 16)) {
		err_errno(errno, NULL, "cannot listen on %s", addr);
		close(fd);
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	info_msg("serving metrics on http://%s/metrics", addr);
	for (;;) {
		struct timeval tv = { 5, 0 };
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(errno, NULL, "accept failed");
		}
		/* A client that sends nothing cannot hold the server. */
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		serve_one(c);
		close(c);
	}
}

static const struct opt metrics_opts[] = {
	{ .name = "listen", .arg = OPT_ARG, .metavar = "ADDR:PORT",
	  .help = "serve them at http://ADDR:PORT/metrics until killed" },
	{}
};

static void usage_metrics(void)
{
	printf("Usage: sockaccel metrics [--listen ADDR:PORT]\n"
	       "\n"
	       "Print every counter, per attached cgroup, in the Prometheus text format;\n"
	       "with --listen, serve them at http://ADDR:PORT/metrics until killed.\n"
	       "\n");
	opts_help(stdout, metrics_opts);
	printf("\n"
	       "Examples:\n"
	       "  sockaccel metrics\n"
	       "  sockaccel metrics --listen 127.0.0.1:9477\n");
}

static int cmd_metrics(int argc, char **argv)
{
	const char *listen_at = NULL;
	int rc;

	rc = opts_parse(&metrics_command, argc, argv, &listen_at, NULL);
	if (rc != OPTS_OK)
		return opts_exit(rc);
	if (require_caps())
		return 1;
	if (listen_at)
		return serve(listen_at) ? 1 : 0;
	write_metrics(stdout);
	return 0;
}

const struct command metrics_command = {
	.name = "metrics",
	.summary = "counters in the Prometheus text format, or served (--listen)",
	.run = cmd_metrics,
	.usage = usage_metrics,
	.opts = { { metrics_opts, 0 } },
};
