// SPDX-License-Identifier: GPL-2.0
/* sockaccel: command-line entry point. */
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "common.h"

#ifndef SA_VERSION
#define SA_VERSION "unknown"
#endif

bool opt_verbose;
bool opt_json;

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "load", cmd_load, "load and pin programs and maps (no cgroup yet)" },
	{ "attach", cmd_attach, "accelerate a cgroup: --cgroup DIR or --pid PID" },
	{ "detach", cmd_detach, "stop accelerating new connections of one cgroup" },
	{ "unload", cmd_unload, "detach everywhere and remove every pin" },
	{ "status", cmd_status, "what is loaded, attached, found by the kernel probe" },
	{ "stats", cmd_stats, "counter totals, or live rates with -w" },
	{ "trace", cmd_trace, "print connection events until Ctrl-C" },
	{ "policy", cmd_policy, "per-cgroup include/exclude rules, changed live" },
	{ "exe", cmd_exe, "executables kept on TCP (splice, urgent data, ...), policy" },
	{ "probe", cmd_probe, "run the kernel self-tests and print the findings" },
	{ "metrics", cmd_metrics, "counters in the Prometheus text format, or served (--listen)" },
};

void usage_main(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: sockaccel [-v] [-j] COMMAND [ARGS]\n"
		   "\n"
		   "Local TCP acceleration: connections between processes of attached\n"
		   "cgroups skip the TCP/IP stack where that is provably invisible to them.\n"
		   "\n"
		   "Commands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n"
		   "Options:\n"
		   "  -v  show libbpf's log\n"
		   "  -V  --version: sockaccel's and libbpf's versions\n"
		   "  -j  JSON output (status, stats, trace, policy, probe, exe list; errors)\n"
		   "  -h  this help; COMMAND --help for each command\n"
		   "\n"
		   "Examples:\n"
		   "  sockaccel attach --cgroup /sys/fs/cgroup/system.slice/nginx.service\n"
		   "  sockaccel attach --pid 4242\n"
		   "  sockaccel -j status\n"
		   "  sockaccel stats -w\n"
		   "  sockaccel unload\n");
}

static void print_version(void)
{
	struct json w;

	if (!opt_json) {
		printf("sockaccel %s (libbpf %u.%u)\n", SA_VERSION,
		       libbpf_major_version(), libbpf_minor_version());
		return;
	}
	json_init(&w, stdout);
	json_start_object(&w);
	json_field_str(&w, "version", SA_VERSION);
	json_key(&w, "libbpf");
	json_strf(&w, "%u.%u", libbpf_major_version(), libbpf_minor_version());
	json_end(&w);
}

int main(int argc, char **argv)
{
	size_t i;
	int a = 1;

	while (a < argc && argv[a][0] == '-') {
		if (!strcmp(argv[a], "-v") || !strcmp(argv[a], "--verbose"))
			opt_verbose = true;
		else if (!strcmp(argv[a], "-j") || !strcmp(argv[a], "--json"))
			opt_json = true;
		else if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help"))
			return usage_main(stdout), 0;
		else if (!strcmp(argv[a], "-V") || !strcmp(argv[a], "--version"))
			return print_version(), 0;
		else
			return err_msg("unknown option '%s' (see: sockaccel --help)", argv[a]), 1;
		a++;
	}
	if (a >= argc) {
		usage_main(stderr);
		return 1;
	}
	if (!strcmp(argv[a], "help"))
		return usage_main(stdout), 0;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[a], commands[i].name))
			return commands[i].fn(argc - a, argv + a);
	return err_msg("unknown command '%s' (see: sockaccel --help)", argv[a]), 1;
}
