// SPDX-License-Identifier: GPL-2.0
/* sockaccel: command-line entry point. */
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "common.h"

#ifndef SA_VERSION
#define SA_VERSION "unknown"
#endif

/* Each command, with its options, is defined in its own file. */
static const struct command *const commands[] = {
	&load_command,
	&attach_command,
	&detach_command,
	&unload_command,
	&status_command,
	&stats_command,
	&trace_command,
	&policy_command,
	&exe_command,
	&probe_command,
	&metrics_command,
	NULL
};

struct main_args {
	bool version;
};

/* Before the command; -v and -j too (opts_global), and -h. */
static const struct opt main_opts[] = {
	{ .name = "version", .short_name = 'V', .offset = offsetof(struct main_args, version),
	  .help = "sockaccel's and libbpf's versions" },
	{}
};

static void usage_main(FILE *f)
{
	const struct command *const *c;

	fprintf(f, "Usage: sockaccel [-v] [-j] COMMAND [ARGS]\n"
		   "\n"
		   "Local TCP acceleration: connections between processes of attached\n"
		   "cgroups skip the TCP/IP stack where that is provably invisible to them.\n"
		   "\n"
		   "Commands:\n");
	for (c = commands; *c; c++)
		fprintf(f, "  %-8s %s\n", (*c)->name, (*c)->summary);
	fprintf(f, "\n"
		   "Options:\n");
	opts_help(f, opts_global);
	opts_help(f, main_opts);
	fprintf(f, "  -h, --help            this help; COMMAND --help for each command\n"
		   "\n"
		   "Examples:\n"
		   "  sockaccel attach --cgroup /sys/fs/cgroup/system.slice/nginx.service\n"
		   "  sockaccel attach --pid 4242\n"
		   "  sockaccel -j status\n"
		   "  sockaccel stats -w\n"
		   "  sockaccel unload\n");
}

static void usage(void)
{
	usage_main(stdout);
}

static const struct command sockaccel = {
	.usage = usage,
	.opts = { { main_opts, 0 } },
	.stop_at_arg = true,
	.subcommands = commands,
};

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
	struct main_args m = {};
	const struct command *c;
	struct opts_args args;
	int rc;

	commands_init(&sockaccel);
	rc = opts_parse(&sockaccel, argc, argv, &m, &args);
	if (rc != OPTS_OK)
		return opts_exit(rc);
	if (m.version)
		return print_version(), 0;
	if (!args.n) {
		usage_main(stderr);
		return 1;
	}
	if (!strcmp(args.v[0], "help"))
		return usage_main(stdout), 0;
	c = command_find(&sockaccel, args.v[0]);
	if (!c)
		return err_msg("unknown command '%s' (see: sockaccel --help)", args.v[0]), 1;
	return c->run(args.n, args.v);
}
