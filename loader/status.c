// SPDX-License-Identifier: GPL-2.0
/* status and stats: read-only views of the pinned maps. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "common.h"
#include "maps.h"
#include "names.h"

static void counters_json(struct json *w, const struct sa_counters *c)
{
	const struct reason_group *g;
	int i;

	json_start_object(w);
	for (i = 0; i < SA_C_REASON_BASE; i++)
		json_field_u64(w, counter_name(i), c->c[i]);
	for (g = reason_groups; g->name; g++) {
		json_key(w, g->name);
		json_start_object(w);
		for (i = 1; i < SA_R_MAX; i++)
			json_field_u64(w, reason_name(i), c->c[g->base + i]);
		json_end(w);
	}
	json_end(w);
}

static void human_bytes(__u64 b, char *buf, size_t len)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = b;
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static __u32 prog_id(const char *pin)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = open_pinned(pin);

	if (fd < 0)
		return 0;
	bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	return info.id;
}

static void usage_status(void)
{
	printf("Usage: sockaccel [-j] status\n"
	       "\n"
	       "Show whether sockaccel is loaded, the kernel probe's findings, the\n"
	       "number of sockets on the fast path and every attached cgroup with its\n"
	       "counters. -j prints JSON.\n"
	       "\n"
	       "Examples:\n"
	       "  sockaccel status\n"
	       "  sockaccel -j status | jq .cgroups\n");
}

/* status -j up to the cgroups array, which is left open. */
static void status_json_head(struct json *w, const struct sa_config *cfg,
			     const struct sa_counters *all, unsigned int nsocks, __u32 max,
			     unsigned int njoin)
{
	int i;

	json_start_object(w);
	json_field_bool(w, "loaded", true);
	json_field_str(w, "pin_root", pin_root());
	json_key(w, "programs");
	json_start_object(w);
	json_field_u64(w, "sock_ops_id", prog_id(PIN_PROG_SOCKOPS));
	json_field_u64(w, "sk_msg_id", prog_id(PIN_PROG_SK_MSG));
	json_end(w);
	json_field_u64(w, "sockets", nsocks);
	json_field_u64(w, "max_sockets", max);
	json_field_u64(w, "backlog_limit", cfg->backlog_limit);
	json_field_u64(w, "backlog_active", cfg->backlog_active);
	json_field_bool(w, "cross_netns", cfg->allow_cross_netns);
	json_field_str(w, "short_conns", cfg->short_conns ? "tcp" : "accelerate");
	json_field_u64(w, "lock_spin_us", cfg->lock_spin_ns / 1000);
	json_field_u64(w, "join_netns", njoin);
	json_key(w, "kernel");
	kernel_flags_json(w, cfg->kernel_flags);
	json_key(w, "probation");
	json_start_object(w);
	json_field_u64(w, "conns", cfg->probation_conns);
	json_field_u64(w, "ms", cfg->probation_ns / 1000000);
	json_end(w);
	json_key(w, "guard");
	json_start_object(w);
	json_field_str(w, "splice", cfg->kernel_flags & SA_KF_SPLICE_READS_PSOCK ?
		       "not_needed" : "guarded");
	for (i = SA_C_SPLICE_READS; i <= SA_C_IOCTL_FIXES; i++)
		json_field_u64(w, counter_name(i), all->c[i]);
	json_end(w);
	json_key(w, "executables");
	exes_print(stdout, w);
	json_key(w, "cgroups");
	json_start_array(w);
}

static void status_text_head(const struct sa_config *cfg, const struct sa_counters *all,
			     unsigned int nsocks, __u32 max, unsigned int njoin)
{
	printf("sockaccel loaded: %s\n", pin_root());
	printf("  programs     sock_ops id %u, sk_msg id %u\n", prog_id(PIN_PROG_SOCKOPS),
	       prog_id(PIN_PROG_SK_MSG));
	printf("  sockets      %u on the fast path (capacity %u)\n", nsocks, max);
	printf("  backlog      %llu bytes per idle receiver, %llu while it reads\n",
	       (unsigned long long)cfg->backlog_limit, (unsigned long long)cfg->backlog_active);
	printf("  cross-netns  %s\n", cfg->allow_cross_netns ? "on" : "off");
	printf("  short conns  %s\n", cfg->short_conns ? "left on TCP" : "accelerated");
	printf("  lock spin    %u us\n", cfg->lock_spin_ns / 1000);
	/* Where late join and rejoin work (loader/join.c). */
	printf("  join hook    lo of %u network namespace%s%s\n", njoin, njoin == 1 ? "" : "s",
	       njoin ? "" : ": connections are decided at establishment only");
	kernel_flags_describe(cfg->kernel_flags, stdout);
	printf("  probation    %u connections and %llu ms per new executable\n",
	       cfg->probation_conns, (unsigned long long)(cfg->probation_ns / 1000000));
	printf("  guard        splice() from TCP sockets: %llu calls, %llu switched to TCP safely, "
	       "%llu readers killed, %llu unsure\n"
	       "               MSG_OOB sends: %llu, %llu while the peer held unread bytes\n",
	       (unsigned long long)all->c[SA_C_SPLICE_READS],
	       (unsigned long long)all->c[SA_C_SPLICE_SWITCHES],
	       (unsigned long long)all->c[SA_C_SPLICE_KILLS],
	       (unsigned long long)all->c[SA_C_SPLICE_UNSURE],
	       (unsigned long long)all->c[SA_C_URGENT_SENDS],
	       (unsigned long long)all->c[SA_C_URGENT_UNREAD]);
	printf("               mmap() of TCP sockets (zerocopy receive): %llu, %llu readers killed\n"
	       "               setsockopt(): %llu took sockets off the fast path, %llu refused, "
	       "%llu with bytes unread\n"
	       "               FIONREAD/SIOCATMARK answers corrected: %llu\n",
	       (unsigned long long)all->c[SA_C_ZEROCOPY_MAPS],
	       (unsigned long long)all->c[SA_C_ZEROCOPY_KILLS],
	       (unsigned long long)all->c[SA_C_SOCKOPT_STOPS],
	       (unsigned long long)all->c[SA_C_SOCKOPT_REFUSED],
	       (unsigned long long)all->c[SA_C_SOCKOPT_UNREAD],
	       (unsigned long long)all->c[SA_C_IOCTL_FIXES]);
	if (all->c[SA_C_SPLICE_KILLS] + all->c[SA_C_ZEROCOPY_KILLS])
		printf("               WARNING: %llu readers were killed: they spliced or mapped\n"
		       "               sockets holding bytes they cannot read (see: sockaccel exe list)\n",
		       (unsigned long long)(all->c[SA_C_SPLICE_KILLS] + all->c[SA_C_ZEROCOPY_KILLS]));
	printf("  executables  using TCP sockets in ways the fast path cannot serve (stay on TCP),\n"
	       "               or with a policy:\n");
	exes_print(stdout, NULL);
}

static void cgroup_json(struct json *w, const char *path, __u64 id, __u32 slot,
			const struct sa_counters *c)
{
	json_start_object(w);
	json_field_str(w, "path", path);
	json_field_u64(w, "id", id);
	json_field_u64(w, "slot", slot);
	json_key(w, "counters");
	counters_json(w, c);
	json_end(w);
}

static void cgroup_text(bool first, const char *path, __u64 id, __u32 slot,
			const struct sa_counters *c)
{
	char r[32], p[32];

	if (first)
		printf("  cgroups\n");
	human_bytes(c->c[SA_C_BYTES_REDIRECTED], r, sizeof(r));
	human_bytes(c->c[SA_C_BYTES_PASSED], p, sizeof(p));
	printf("    %s (id %llu, slot %u): sockets added %llu, redirected %s, passed %s\n",
	       path, (unsigned long long)id, slot, (unsigned long long)c->c[SA_C_SOCKS_ADDED], r, p);
}

static void status_not_loaded(void)
{
	struct json w;

	if (!opt_json) {
		printf("sockaccel: not loaded\n");
		return;
	}
	json_init(&w, stdout);
	json_start_object(&w);
	json_field_bool(&w, "loaded", false);
	json_end(&w);
}

static int cmd_status(int argc, char **argv)
{
	struct sa_config cfg = {};
	struct sa_counters all;
	struct bpf_map_info minfo = {};
	__u32 mlen = sizeof(minfo);
	int socks, cgs, join, n = 0, rc;
	__u64 key, *prev = NULL;
	unsigned int nsocks, njoin = 0;
	struct json w;

	rc = opts_parse(&status_command, argc, argv, NULL, NULL);
	if (rc != OPTS_OK)
		return opts_exit(rc);
	if (require_caps())
		return 1;
	if (!is_loaded())
		return status_not_loaded(), 0;
	socks = open_pinned(MAP_SOCKS);
	cgs = open_pinned(MAP_CGROUPS);
	if (socks < 0 || cgs < 0 || read_config(&cfg))
		return err_errno(errno, "run: sockaccel unload, then load again",
				 "pinned objects unreadable"), 1;
	join = open_pinned(MAP_JOIN_NETNS);
	drop_caps();
	if (join >= 0) {
		njoin = count_u64_keys(join);
		close(join);
	}
	bpf_obj_get_info_by_fd(socks, &minfo, &mlen);
	nsocks = count_u64_keys(socks);
	read_counters(-1, &all);
	json_init(&w, stdout);
	if (opt_json)
		status_json_head(&w, &cfg, &all, nsocks, minfo.max_entries, njoin);
	else
		status_text_head(&cfg, &all, nsocks, minfo.max_entries, njoin);
	while (bpf_map_get_next_key(cgs, prev, &key) == 0) {
		struct sa_cgroup_info info;
		struct sa_counters c;
		char path[PATH_MAX];

		prev = &key;
		if (bpf_map_lookup_elem(cgs, &key, &info))
			continue;
		if (cgroup_path_by_id(key, path, sizeof(path)))
			snprintf(path, sizeof(path), "(cgroup id %llu, removed)", (unsigned long long)key);
		read_counters(info.slot, &c);
		if (opt_json)
			cgroup_json(&w, path, key, info.slot, &c);
		else
			cgroup_text(!n, path, key, info.slot, &c);
		n++;
	}
	if (opt_json) {
		json_end(&w);	/* cgroups */
		json_end(&w);
	} else if (!n) {
		printf("  cgroups      none attached (hint: sockaccel attach --cgroup DIR)\n");
	}
	close(socks);
	close(cgs);
	return 0;
}

const struct command status_command = {
	.name = "status",
	.summary = "what is loaded, attached, found by the kernel probe",
	.run = cmd_status,
	.usage = usage_status,
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

/* -w [SECONDS]: the interval (double); without -w, 0. */
static int parse_interval(const char *s, void *field)
{
	double *interval = field;
	char *end;

	*interval = 1;
	if (!s)
		return 0;
	*interval = strtod(s, &end);
	if (*end || !(*interval > 0 && *interval <= 3600))
		return err_msg("invalid interval '%s' (seconds, 0 < s <= 3600)", s);
	return 0;
}

static const struct opt stats_opts[] = {
	{ .short_name = 'w', .arg = OPT_OPTIONAL_ARG, .metavar = "SECONDS", .parse = parse_interval,
	  .help = "rates per second every SECONDS (default 1) until\n"
		  "Ctrl-C" },
	{}
};

static void usage_stats(void)
{
	printf("Usage: sockaccel [-j] stats [-w [SECONDS]]\n"
	       "\n"
	       "Counter totals over every attached cgroup: sockets added, insert\n"
	       "failures, messages and bytes redirected or passed to TCP, lookup misses,\n"
	       "and why each pass happened. -j prints JSON.\n"
	       "\n");
	opts_help(stdout, stats_opts);
	printf("\n"
	       "Examples:\n"
	       "  sockaccel stats\n"
	       "  sockaccel stats -w\n"
	       "  sockaccel -j stats\n");
}

/* stats -j -w: one object per interval, the counters' names as keys. */
static void rates_json(const struct sa_counters *prev, const struct sa_counters *cur,
		       double interval)
{
	static const unsigned int shown[] = {
		SA_C_SOCKS_ADDED, SA_C_MSGS_REDIRECTED, SA_C_BYTES_REDIRECTED,
		SA_C_MSGS_PASSED, SA_C_BYTES_PASSED, SA_C_LOOKUP_MISSES,
	};
	struct json w;
	size_t i;

	json_init(&w, stdout);
	json_start_object(&w);
	for (i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
		json_key(&w, counter_name(shown[i]));
		json_double(&w, (double)(cur->c[shown[i]] - prev->c[shown[i]]) / interval, 1);
	}
	json_end(&w);
}

static int cmd_stats(int argc, char **argv)
{
	struct sa_counters prev, cur;
	double interval = 0;
	struct json w;
	int i, rc;

	rc = opts_parse(&stats_command, argc, argv, &interval, NULL);
	if (rc != OPTS_OK)
		return opts_exit(rc);
	if (require_caps())
		return 1;
	if (!is_loaded())
		return err_msg("not loaded (hint: sudo ./load.sh CGROUP_DIR)"), 1;
	if (read_counters((__u32)-1, &cur))
		return err_errno(errno, NULL, "cannot read counters"), 1;
	if (!interval) {
		if (opt_json) {
			json_init(&w, stdout);
			counters_json(&w, &cur);
			return 0;
		}
		const struct reason_group *g;

		for (i = 0; i < SA_C_REASON_BASE; i++)
			printf("%-18s %llu\n", counter_name(i), (unsigned long long)cur.c[i]);
		for (g = reason_groups; g->name; g++) {
			/* "pass_reasons" -> "pass reasons:" */
			printf("%.*s reasons:\n", (int)(strchr(g->name, '_') - g->name), g->name);
			for (i = 1; i < SA_R_MAX; i++)
				if (cur.c[g->base + i])
					printf("  %-18s %llu\n", reason_name(i),
					       (unsigned long long)cur.c[g->base + i]);
		}
		return 0;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!opt_json)
		printf("%10s %10s %12s %10s %12s %8s\n", "socks/s", "msgs_rd/s", "bytes_rd/s",
		       "msgs_ps/s", "bytes_ps/s", "misses/s");
	while (!stop) {
		struct timespec ts = { (time_t)interval, (long)((interval - (time_t)interval) * 1e9) };

		prev = cur;
		if (nanosleep(&ts, NULL) && stop)
			break;
		if (read_counters((__u32)-1, &cur))
			return err_errno(errno, "was sockaccel unloaded?", "cannot read counters"), 1;
#define RATE(x) ((double)(cur.c[x] - prev.c[x]) / interval)
		if (opt_json)
			rates_json(&prev, &cur, interval);
		else
			printf("%10.0f %10.0f %12.0f %10.0f %12.0f %8.0f\n",
			       RATE(SA_C_SOCKS_ADDED), RATE(SA_C_MSGS_REDIRECTED), RATE(SA_C_BYTES_REDIRECTED),
			       RATE(SA_C_MSGS_PASSED), RATE(SA_C_BYTES_PASSED), RATE(SA_C_LOOKUP_MISSES));
#undef RATE
		fflush(stdout);
	}
	return 0;
}

const struct command stats_command = {
	.name = "stats",
	.summary = "counter totals, or live rates with -w",
	.run = cmd_stats,
	.usage = usage_stats,
	.opts = { { stats_opts, 0 } },
};
