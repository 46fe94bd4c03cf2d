// SPDX-License-Identifier: GPL-2.0
/* status and stats: read-only views of the pinned maps. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "common.h"

static const char *const counter_names[SA_C_REASON_BASE] = {
	[SA_C_SOCKS_SEEN] = "socks_seen",
	[SA_C_SOCKS_ADDED] = "socks_added",
	[SA_C_INSERT_FAILED] = "insert_failed",
	[SA_C_SOCKS_EVICTED] = "socks_evicted",
	[SA_C_SOCKS_CLOSED] = "socks_closed",
	[SA_C_MSGS_REDIRECTED] = "msgs_redirected",
	[SA_C_BYTES_REDIRECTED] = "bytes_redirected",
	[SA_C_MSGS_PASSED] = "msgs_passed",
	[SA_C_BYTES_PASSED] = "bytes_passed",
	[SA_C_LOOKUP_MISSES] = "lookup_misses",
	[SA_C_TO_STACK] = "to_stack",
	[SA_C_TO_REDIRECT] = "to_redirect",
	[SA_C_LOCK_WAITS] = "lock_waits",
	[SA_C_LOCK_WAIT_TIMEOUTS] = "lock_wait_timeouts",
	[SA_C_SPLICE_READS] = "splice_reads",
	[SA_C_SPLICE_SWITCHES] = "splice_switches",
	[SA_C_SPLICE_KILLS] = "splice_kills",
	[SA_C_SPLICE_UNSURE] = "splice_unsure",
	[SA_C_URGENT_SENDS] = "urgent_sends",
	[SA_C_URGENT_UNREAD] = "urgent_unread",
	[SA_C_ZEROCOPY_MAPS] = "zerocopy_maps",
	[SA_C_ZEROCOPY_KILLS] = "zerocopy_kills",
	[SA_C_SOCKOPT_STOPS] = "sockopt_stops",
	[SA_C_SOCKOPT_REFUSED] = "sockopt_refused",
	[SA_C_SOCKOPT_UNREAD] = "sockopt_unread",
	[SA_C_IOCTL_FIXES] = "ioctl_fixes",
	[SA_C_MSG_BOUND] = "msg_bound",
	[SA_C_PEER_WAITS] = "peer_waits",
	[SA_C_PEER_WAIT_NS] = "peer_wait_ns",
};

static const char *const reason_names[SA_R_MAX] = {
	[SA_R_NONE] = "none",
	[SA_R_BLOCKING] = "blocking",
	[SA_R_LISTENER_BLOCKING] = "listener_blocking",
	[SA_R_POLICY] = "policy",
	[SA_R_REPAIR] = "repair",
	[SA_R_PEER_MISSING] = "peer_missing",
	[SA_R_PEER_UNVERIFIED] = "peer_unverified",
	[SA_R_PEER_NOT_ACCEPTED] = "peer_not_accepted",
	[SA_R_PEER_BLOCKING] = "peer_blocking",
	[SA_R_PEER_RCVLOWAT] = "peer_rcvlowat",
	[SA_R_PEER_BACKLOG] = "peer_backlog",
	[SA_R_PEER_RXOPTS] = "peer_rxopts",
	[SA_R_STACK_PENDING] = "stack_pending",
	[SA_R_CROSS_NETNS] = "cross_netns",
	[SA_R_SELF_BLOCKING] = "self_blocking",
	[SA_R_PEER_GONE] = "peer_gone",
	[SA_R_SHUTDOWN] = "shutdown",
	[SA_R_STAYED_ON_TCP] = "stayed_on_tcp",
	[SA_R_SMALL_STREAM] = "small_stream",
	[SA_R_SHORT_CONN] = "short_conn",
	[SA_R_SPLICE_READER] = "splice_reader",
	[SA_R_PROBATION] = "probation",
	[SA_R_READER_UNKNOWN] = "reader_unknown",
	[SA_R_URGENT] = "urgent",
	[SA_R_ZEROCOPY_READER] = "zerocopy_reader",
	[SA_R_RX_OPTIONS] = "rx_options",
	[SA_R_ULP] = "ulp",
	[SA_R_ZEROCOPY_TX] = "zerocopy_tx",
	[SA_R_TX_TIMESTAMPS] = "tx_timestamps",
	[SA_R_FIONREAD_READER] = "fionread_reader",
};

const char *reason_name(unsigned int r)
{
	return r < SA_R_MAX && reason_names[r] ? reason_names[r] : "unknown";
}

const char *counter_name(unsigned int c)
{
	return c < SA_C_REASON_BASE ? counter_names[c] : reason_name(c - SA_C_REASON_BASE);
}

int read_counters(__u32 slot, struct sa_counters *sum)
{
	int ncpu = libbpf_num_possible_cpus(), fd, cpu, i;
	struct sa_counters *v;
	__u32 s, first = slot, last = slot;

	memset(sum, 0, sizeof(*sum));
	if (ncpu <= 0)
		return -1;
	fd = open_pinned("sockaccel_stats");
	if (fd < 0)
		return -1;
	v = calloc(ncpu, sizeof(*v));
	if (!v) {
		close(fd);
		return -1;
	}
	if (slot == (__u32)-1) {
		first = 0;
		last = SA_MAX_CGROUPS - 1;
	}
	for (s = first; s <= last; s++) {
		if (bpf_map_lookup_elem(fd, &s, v))
			continue;
		for (cpu = 0; cpu < ncpu; cpu++)
			for (i = 0; i < SA_C_MAX; i++)
				sum->c[i] += v[cpu].c[i];
	}
	free(v);
	close(fd);
	return 0;
}

void kernel_flags_describe(__u32 flags, FILE *f, bool json)
{
	bool waits = flags & SA_KF_RECV_WAITS_SAFELY, fion = flags & SA_KF_FIONREAD;
	bool fion_stack = flags & SA_KF_FIONREAD_STACK, splice = flags & SA_KF_SPLICE_READS_PSOCK;
	bool rmem = flags & SA_KF_RMEM_COUNTS_REDIRECTED, core = flags & SA_KF_CORE_READS;
	bool prog_attach = flags & SA_KF_PROG_ATTACH, fixup = flags & SA_KF_IOCTL_FIXUP;

	if (json) {
		fprintf(f, "{\"recv_waits_safely\":%s,\"fionread_counts_redirected\":%s,"
			"\"fionread_counts_tcp\":%s,\"splice_reads_redirected\":%s,"
			"\"rmem_counts_redirected\":%s,\"reads\":\"%s\",\"sk_msg_attach\":\"%s\","
			"\"ioctl_fixup\":%s}",
			waits ? "true" : "false", fion ? "true" : "false",
			fion_stack ? "true" : "false", splice ? "true" : "false",
			rmem ? "true" : "false", core ? "probe_read" : "rdonly_cast",
			prog_attach ? "prog_attach" : "link", fixup ? "true" : "false");
		return;
	}
	fprintf(f, "  kernel       blocking reads: %s\n",
		waits ? "safe (tcp_bpf_recvmsg waits again after wakeups)"
		      : "unsafe (tcp_bpf_recvmsg returns EAGAIN on wakeups): blocking sockets stay on TCP");
	fprintf(f, "               FIONREAD on redirected bytes: %s; on bytes through TCP: %s\n",
		fion ? "counted" : "not counted", fion_stack ? "counted" : "not counted");
	fprintf(f, "               FIONREAD and SIOCATMARK answers: %s\n",
		fixup ? "corrected by the guard to what TCP would say"
		      : "cannot be corrected (bpf_probe_write_user refused: lockdown?): "
			"programs that ask stay on TCP");
	fprintf(f, "               sk_rmem_alloc counts redirected bytes: %s\n", rmem ? "yes" : "no");
	fprintf(f, "               programs read peers with %s; sk_msg attached with %s\n",
		core ? "probe reads (no bpf_rdonly_cast: 6.1)" : "bpf_rdonly_cast (direct loads)",
		prog_attach ? "bpf_prog_attach (no sockmap links before 6.10)" : "a link");
	fprintf(f, "               splice() from a socket: %s\n",
		splice ? "reads redirected bytes (no splice guard needed)"
		       : "does not read redirected bytes: splice readers stay on TCP (guard)");
}

static void print_counters_json(const struct sa_counters *c)
{
	int i;

	printf("{");
	for (i = 0; i < SA_C_REASON_BASE; i++)
		printf("%s\"%s\":%llu", i ? "," : "", counter_names[i], (unsigned long long)c->c[i]);
	printf(",\"pass_reasons\":{");
	for (i = 1; i < SA_R_MAX; i++)
		printf("%s\"%s\":%llu", i > 1 ? "," : "", reason_names[i],
		       (unsigned long long)c->c[SA_C_REASON_BASE + i]);
	printf("}}");
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

static unsigned int count_entries(int fd)
{
	struct sa_conn_key k, *prev = NULL;
	unsigned int n = 0;

	while (bpf_map_get_next_key(fd, prev, &k) == 0 && n < (1u << 25)) {
		n++;
		prev = &k;
	}
	return n;
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

int cmd_status(int argc, char **argv)
{
	struct sa_config cfg = {};
	struct sa_counters all;
	struct bpf_map_info minfo = {};
	__u32 mlen = sizeof(minfo);
	int socks, cgs, n = 0, i;
	__u64 key, *prev = NULL;
	unsigned int nsocks;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return usage_status(), 0;
	if (argc > 1)
		return err_msg("unexpected argument '%s' (see: sockaccel status --help)", argv[1]), 1;
	if (require_caps())
		return 1;
	if (!is_loaded()) {
		if (opt_json)
			printf("{\"loaded\":false}\n");
		else
			printf("sockaccel: not loaded\n");
		return 0;
	}
	socks = open_pinned("sockaccel_socks");
	cgs = open_pinned("sockaccel_cgroups");
	if (socks < 0 || cgs < 0 || read_config(&cfg))
		return err_errno(errno, "run: sockaccel unload, then load again",
				 "pinned objects unreadable"), 1;
	drop_caps();
	bpf_obj_get_info_by_fd(socks, &minfo, &mlen);
	nsocks = count_entries(socks);
	read_counters(-1, &all);
	if (opt_json) {
		printf("{\"loaded\":true,\"pin_root\":\"%s\",\"programs\":{\"sock_ops_id\":%u,\"sk_msg_id\":%u},"
		       "\"sockets\":%u,\"max_sockets\":%u,\"backlog_limit\":%llu,\"backlog_active\":%llu,"
		       "\"cross_netns\":%s,\"short_conns\":\"%s\",\"lock_spin_us\":%u,\"kernel\":",
		       pin_root(), prog_id(PIN_PROG_SOCKOPS), prog_id(PIN_PROG_SK_MSG), nsocks,
		       minfo.max_entries, (unsigned long long)cfg.backlog_limit,
		       (unsigned long long)cfg.backlog_active,
		       cfg.allow_cross_netns ? "true" : "false",
		       cfg.skip_short ? "tcp" : "accelerate", cfg.lock_spin_ns / 1000);
		kernel_flags_describe(cfg.kernel_flags, stdout, true);
		printf(",\"probation\":{\"conns\":%u,\"ms\":%llu},\"guard\":{\"splice\":\"%s\"",
		       cfg.probation_conns, (unsigned long long)(cfg.probation_ns / 1000000),
		       cfg.kernel_flags & SA_KF_SPLICE_READS_PSOCK ? "not_needed" : "guarded");
		for (i = SA_C_SPLICE_READS; i <= SA_C_IOCTL_FIXES; i++)
			printf(",\"%s\":%llu", counter_names[i], (unsigned long long)all.c[i]);
		printf("},\"executables\":");
		exes_print(stdout, true);
		printf(",\"cgroups\":[");
	} else {
		printf("sockaccel loaded: %s\n", pin_root());
		printf("  programs     sock_ops id %u, sk_msg id %u\n", prog_id(PIN_PROG_SOCKOPS),
		       prog_id(PIN_PROG_SK_MSG));
		printf("  sockets      %u on the fast path (capacity %u)\n", nsocks, minfo.max_entries);
		printf("  backlog      %llu bytes per idle receiver, %llu while it reads\n",
		       (unsigned long long)cfg.backlog_limit, (unsigned long long)cfg.backlog_active);
		printf("  cross-netns  %s\n", cfg.allow_cross_netns ? "on" : "off");
		printf("  short conns  %s\n", cfg.skip_short ? "left on TCP" : "accelerated");
		printf("  lock spin    %u us\n", cfg.lock_spin_ns / 1000);
		kernel_flags_describe(cfg.kernel_flags, stdout, false);
		printf("  probation    %u connections and %llu ms per new executable\n",
		       cfg.probation_conns, (unsigned long long)(cfg.probation_ns / 1000000));
		printf("  guard        splice() from TCP sockets: %llu calls, %llu switched to TCP safely, "
		       "%llu readers killed, %llu unsure\n"
		       "               MSG_OOB sends: %llu, %llu while the peer held unread bytes\n",
		       (unsigned long long)all.c[SA_C_SPLICE_READS],
		       (unsigned long long)all.c[SA_C_SPLICE_SWITCHES],
		       (unsigned long long)all.c[SA_C_SPLICE_KILLS],
		       (unsigned long long)all.c[SA_C_SPLICE_UNSURE],
		       (unsigned long long)all.c[SA_C_URGENT_SENDS],
		       (unsigned long long)all.c[SA_C_URGENT_UNREAD]);
		printf("               mmap() of TCP sockets (zerocopy receive): %llu, %llu readers killed\n"
		       "               setsockopt(): %llu took sockets off the fast path, %llu refused, "
		       "%llu with bytes unread\n"
		       "               FIONREAD/SIOCATMARK answers corrected: %llu\n",
		       (unsigned long long)all.c[SA_C_ZEROCOPY_MAPS],
		       (unsigned long long)all.c[SA_C_ZEROCOPY_KILLS],
		       (unsigned long long)all.c[SA_C_SOCKOPT_STOPS],
		       (unsigned long long)all.c[SA_C_SOCKOPT_REFUSED],
		       (unsigned long long)all.c[SA_C_SOCKOPT_UNREAD],
		       (unsigned long long)all.c[SA_C_IOCTL_FIXES]);
		if (all.c[SA_C_SPLICE_KILLS] + all.c[SA_C_ZEROCOPY_KILLS])
			printf("               WARNING: %llu readers were killed: they spliced or mapped\n"
			       "               sockets holding bytes they cannot read (see: sockaccel exe list)\n",
			       (unsigned long long)(all.c[SA_C_SPLICE_KILLS] + all.c[SA_C_ZEROCOPY_KILLS]));
		printf("  executables  using TCP sockets in ways the fast path cannot serve (stay on TCP),\n"
		       "               or with a policy:\n");
		exes_print(stdout, false);
	}
	while (bpf_map_get_next_key(cgs, prev, &key) == 0) {
		struct sa_cgroup_info info;
		struct sa_counters c;
		char path[PATH_MAX], r[32], p[32];

		prev = &key;
		if (bpf_map_lookup_elem(cgs, &key, &info))
			continue;
		if (cgroup_path_by_id(key, path, sizeof(path)))
			snprintf(path, sizeof(path), "(cgroup id %llu, removed)", (unsigned long long)key);
		read_counters(info.slot, &c);
		if (opt_json) {
			printf("%s{\"path\":\"%s\",\"id\":%llu,\"slot\":%u,\"counters\":", n ? "," : "",
			       path, (unsigned long long)key, info.slot);
			print_counters_json(&c);
			printf("}");
		} else {
			if (!n)
				printf("  cgroups\n");
			human_bytes(c.c[SA_C_BYTES_REDIRECTED], r, sizeof(r));
			human_bytes(c.c[SA_C_BYTES_PASSED], p, sizeof(p));
			printf("    %s (id %llu, slot %u): sockets added %llu, redirected %s, passed %s\n",
			       path, (unsigned long long)key, info.slot,
			       (unsigned long long)c.c[SA_C_SOCKS_ADDED], r, p);
		}
		n++;
	}
	if (opt_json)
		printf("]}\n");
	else if (!n)
		printf("  cgroups      none attached (hint: sockaccel attach --cgroup DIR)\n");
	close(socks);
	close(cgs);
	return 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static void usage_stats(void)
{
	printf("Usage: sockaccel [-j] stats [-w [SECONDS]]\n"
	       "\n"
	       "Counter totals over every attached cgroup: sockets added, insert\n"
	       "failures, messages and bytes redirected or passed to TCP, lookup misses,\n"
	       "and why each pass happened. -w prints rates per second every SECONDS\n"
	       "(default 1) until Ctrl-C. -j prints JSON.\n"
	       "\n"
	       "Examples:\n"
	       "  sockaccel stats\n"
	       "  sockaccel stats -w\n"
	       "  sockaccel -j stats\n");
}

int cmd_stats(int argc, char **argv)
{
	struct sa_counters prev, cur;
	double interval = 0;
	int i, c;

	if (argc > 1 && !strcmp(argv[1], "--help"))
		return usage_stats(), 0;
	optind = 1;
	opterr = 0;
	while ((c = getopt(argc, argv, "+w::jh")) != -1) {
		switch (c) {
		case 'w':
			interval = 1;
			if (!optarg && optind < argc && argv[optind][0] != '-')
				optarg = argv[optind++];
			if (optarg) {
				char *end;

				interval = strtod(optarg, &end);
				if (*end || interval <= 0 || interval > 3600)
					return err_msg("invalid interval '%s' (seconds, 0 < s <= 3600)", optarg), 1;
			}
			break;
		case 'j':
			opt_json = true;
			break;
		case 'h':
			usage_stats();
			return 0;
		default:
			return err_msg("unknown option (see: sockaccel stats --help)"), 1;
		}
	}
	if (optind < argc)
		return err_msg("unexpected argument '%s' (see: sockaccel stats --help)", argv[optind]), 1;
	if (require_caps())
		return 1;
	if (!is_loaded())
		return err_msg("not loaded (hint: sudo ./load.sh CGROUP_DIR)"), 1;
	if (read_counters((__u32)-1, &cur))
		return err_errno(errno, NULL, "cannot read counters"), 1;
	if (!interval) {
		if (opt_json) {
			print_counters_json(&cur);
			printf("\n");
			return 0;
		}
		for (i = 0; i < SA_C_REASON_BASE; i++)
			printf("%-18s %llu\n", counter_names[i], (unsigned long long)cur.c[i]);
		printf("pass reasons:\n");
		for (i = 1; i < SA_R_MAX; i++)
			if (cur.c[SA_C_REASON_BASE + i])
				printf("  %-18s %llu\n", reason_names[i],
				       (unsigned long long)cur.c[SA_C_REASON_BASE + i]);
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
			printf("{\"socks_added\":%.1f,\"msgs_redirected\":%.1f,\"bytes_redirected\":%.1f,"
			       "\"msgs_passed\":%.1f,\"bytes_passed\":%.1f,\"lookup_misses\":%.1f}\n",
			       RATE(SA_C_SOCKS_ADDED), RATE(SA_C_MSGS_REDIRECTED), RATE(SA_C_BYTES_REDIRECTED),
			       RATE(SA_C_MSGS_PASSED), RATE(SA_C_BYTES_PASSED), RATE(SA_C_LOOKUP_MISSES));
		else
			printf("%10.0f %10.0f %12.0f %10.0f %12.0f %8.0f\n",
			       RATE(SA_C_SOCKS_ADDED), RATE(SA_C_MSGS_REDIRECTED), RATE(SA_C_BYTES_REDIRECTED),
			       RATE(SA_C_MSGS_PASSED), RATE(SA_C_BYTES_PASSED), RATE(SA_C_LOOKUP_MISSES));
#undef RATE
		fflush(stdout);
	}
	return 0;
}
