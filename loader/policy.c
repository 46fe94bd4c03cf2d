// SPDX-License-Identifier: GPL-2.0
/*
 * policy: per-cgroup include/exclude rules, replaced live in
 * sockaccel_policy and applied by sockops.bpf.c when a connection is
 * established (connections already decided keep their fate).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "common.h"
#include "maps.h"

static int parse_ports(const char *s, __u16 *lo, __u16 *hi)
{
	char *end;
	long a, b;

	a = strtol(s, &end, 10);
	b = a;
	if (*end == '-')
		b = strtol(end + 1, &end, 10);
	if (*end || a < 0 || b < a || b > 65535)
		return err_msg("invalid port or range '%s'", s);
	*lo = a;
	*hi = b;
	return 0;
}

static int parse_cidr(const char *s, __u32 *addr6, __u8 *prefix)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;
	struct in_addr a4;
	long len = -1;

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (slash) {
		char *end;

		*slash = '\0';
		len = strtol(slash + 1, &end, 10);
		if (*end || len < 0)
			return err_msg("invalid prefix length in '%s'", s);
	}
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		if (len > 32)
			return err_msg("invalid IPv4 prefix length in '%s'", s);
		addr6[0] = addr6[1] = 0;
		addr6[2] = htonl(0xffff);
		addr6[3] = a4.s_addr;
		*prefix = 96 + (len < 0 ? 32 : len);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, addr6) == 1) {
		if (len > 128)
			return err_msg("invalid IPv6 prefix length in '%s'", s);
		*prefix = len < 0 ? 128 : len;
		return 0;
	}
	return err_msg("invalid address '%s' (IPv4 or IPv6, optionally /LEN)", s);
}

/* The MATCH options of policy add, each into the rule (struct sa_rule). */
static int match_port(const char *v, void *field)
{
	struct sa_rule *r = field;

	if (parse_ports(v, &r->local_port_lo, &r->local_port_hi))
		return -1;
	r->match |= SA_RULE_PORT;
	return 0;
}

static int match_local_port(const char *v, void *field)
{
	struct sa_rule *r = field;

	if (parse_ports(v, &r->local_port_lo, &r->local_port_hi))
		return -1;
	r->match |= SA_RULE_LOCAL_PORT;
	return 0;
}

static int match_remote_port(const char *v, void *field)
{
	struct sa_rule *r = field;

	if (parse_ports(v, &r->remote_port_lo, &r->remote_port_hi))
		return -1;
	r->match |= SA_RULE_REMOTE_PORT;
	return 0;
}

static int match_local_addr(const char *v, void *field)
{
	struct sa_rule *r = field;

	if (parse_cidr(v, r->local_addr6, &r->local_prefix))
		return -1;
	r->match |= SA_RULE_LOCAL_ADDR;
	return 0;
}

static int match_remote_addr(const char *v, void *field)
{
	struct sa_rule *r = field;

	if (parse_cidr(v, r->remote_addr6, &r->remote_prefix))
		return -1;
	r->match |= SA_RULE_REMOTE_ADDR;
	return 0;
}

static const struct opt match_opts[] = {
	{ .name = "port", .arg = OPT_ARG, .metavar = "P[-Q]", .parse = match_port,
	  .help = "either end's port: both sockets of a connection to\n"
		  "(or from) that port" },
	{ .name = "local-port", .arg = OPT_ARG, .metavar = "P[-Q]", .parse = match_local_port,
	  .help = "this socket's port (a server's listening port)" },
	{ .name = "remote-port", .arg = OPT_ARG, .metavar = "P[-Q]", .parse = match_remote_port,
	  .help = "the peer's port" },
	{ .name = "local-addr", .arg = OPT_ARG, .metavar = "CIDR", .parse = match_local_addr,
	  .help = "this socket's address (IPv4 or IPv6 prefix)" },
	{ .name = "remote-addr", .arg = OPT_ARG, .metavar = "CIDR", .parse = match_remote_addr,
	  .help = "the peer's address" },
	{}
};

static void usage_policy(void)
{
	printf("Usage: sockaccel policy show    (--cgroup DIR | --pid PID)\n"
	       "       sockaccel policy add     (--cgroup DIR | --pid PID) include|exclude MATCH...\n"
	       "       sockaccel policy default (--cgroup DIR | --pid PID) include|exclude\n"
	       "       sockaccel policy clear   (--cgroup DIR | --pid PID)\n"
	       "       sockaccel policy exe PATH accelerate|tcp|learn   (see: sockaccel exe --help)\n"
	       "\n"
	       "Rules of an attached cgroup, evaluated in order when a connection is\n"
	       "established; the first rule whose every MATCH holds decides, otherwise\n"
	       "the default (include). Excluded connections stay on plain TCP. Changes\n"
	       "apply to new connections at once, without reloading.\n"
	       "\n"
	       "MATCH:\n");
	opts_help(stdout, match_opts);
	printf("\n"
	       "Examples:\n"
	       "  # keep one port on TCP\n"
	       "  sockaccel policy add --cgroup /sys/fs/cgroup/app exclude --port 8080\n"
	       "  # never accelerate one program (machine-wide)\n"
	       "  sockaccel policy exe /usr/local/bin/proxy tcp\n"
	       "  # accelerate only 10.0.0.0/8 peers\n"
	       "  sockaccel policy add --cgroup /sys/fs/cgroup/app include --remote-addr 10.0.0.0/8\n"
	       "  sockaccel policy default --cgroup /sys/fs/cgroup/app exclude\n"
	       "  sockaccel -j policy show --cgroup /sys/fs/cgroup/app\n");
}

static void fmt_addr(const __u32 *a6, __u8 prefix, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (a6[0] == 0 && a6[1] == 0 && a6[2] == htonl(0xffff) && prefix >= 96) {
		inet_ntop(AF_INET, &a6[3], a, sizeof(a));
		snprintf(buf, len, "%s/%u", a, prefix - 96);
	} else {
		inet_ntop(AF_INET6, a6, a, sizeof(a));
		snprintf(buf, len, "%s/%u", a, prefix);
	}
}

/* A rule's matches in the order they are shown: JSON key, text label. */
static const struct {
	__u32 bit;
	const char *key;
	const char *label;
} rule_matches[] = {
	{ SA_RULE_PORT, "port", "port" },
	{ SA_RULE_LOCAL_PORT, "local_port", "local port" },
	{ SA_RULE_REMOTE_PORT, "remote_port", "remote port" },
	{ SA_RULE_LOCAL_ADDR, "local_addr", "local addr" },
	{ SA_RULE_REMOTE_ADDR, "remote_addr", "remote addr" },
};

#define NR_RULE_MATCHES	(sizeof(rule_matches) / sizeof(rule_matches[0]))

/* "8080-8080", "10.0.0.0/8": what match bit of r requires. */
static void match_value(const struct sa_rule *r, __u32 bit, char *buf, size_t len)
{
	switch (bit) {
	case SA_RULE_PORT:
	case SA_RULE_LOCAL_PORT:
		snprintf(buf, len, "%u-%u", r->local_port_lo, r->local_port_hi);
		break;
	case SA_RULE_REMOTE_PORT:
		snprintf(buf, len, "%u-%u", r->remote_port_lo, r->remote_port_hi);
		break;
	case SA_RULE_LOCAL_ADDR:
		fmt_addr(r->local_addr6, r->local_prefix, buf, len);
		break;
	default:
		fmt_addr(r->remote_addr6, r->remote_prefix, buf, len);
		break;
	}
}

static const char *action_str(__u32 action)
{
	return action == SA_ACT_EXCLUDE ? "exclude" : "include";
}

static void show_json(const char *path, const struct sa_policy *p)
{
	struct json w;
	char v[80];
	__u32 i;
	size_t m;

	json_init(&w, stdout);
	json_start_object(&w);
	json_field_str(&w, "cgroup", path);
	json_field_str(&w, "default", action_str(p->default_action));
	json_key(&w, "rules");
	json_start_array(&w);
	for (i = 0; i < p->nr_rules && i < SA_MAX_RULES; i++) {
		const struct sa_rule *r = &p->rules[i];

		json_start_object(&w);
		json_field_str(&w, "action", action_str(r->action));
		for (m = 0; m < NR_RULE_MATCHES; m++) {
			if (!(r->match & rule_matches[m].bit))
				continue;
			match_value(r, rule_matches[m].bit, v, sizeof(v));
			json_field_str(&w, rule_matches[m].key, v);
		}
		json_end(&w);
	}
	json_end(&w);
	json_end(&w);
}

static void show_text(const char *path, const struct sa_policy *p)
{
	char v[80];
	__u32 i;
	size_t m;

	printf("policy of %s (default %s)\n", path, action_str(p->default_action));
	if (!p->nr_rules)
		printf("  no rules\n");
	for (i = 0; i < p->nr_rules && i < SA_MAX_RULES; i++) {
		const struct sa_rule *r = &p->rules[i];
		bool first = true;

		printf("  %u: %s", i + 1, action_str(r->action));
		for (m = 0; m < NR_RULE_MATCHES; m++) {
			if (!(r->match & rule_matches[m].bit))
				continue;
			match_value(r, rule_matches[m].bit, v, sizeof(v));
			printf("%s%s %s", first ? " " : " and ", rule_matches[m].label, v);
			first = false;
		}
		printf(first ? " everything\n" : "\n");
	}
}

static void show(const char *path, const struct sa_policy *p)
{
	if (opt_json)
		show_json(path, p);
	else
		show_text(path, p);
}

struct policy_args {
	struct cgroup_args target;
	struct sa_rule rule;
};

/* policy show|add|default|clear take the cgroup, add its MATCH too. */
static const struct command policy_show = {
	.name = "policy show",
	.usage = usage_policy,
	.opts = { { cgroup_opts, offsetof(struct policy_args, target) } },
};

static const struct command policy_add = {
	.name = "policy add",
	.usage = usage_policy,
	.opts = { { cgroup_opts, offsetof(struct policy_args, target) },
		  { match_opts, offsetof(struct policy_args, rule) } },
	.max_args = 1,		/* include|exclude */
};

static const struct command policy_default = {
	.name = "policy default",
	.usage = usage_policy,
	.opts = { { cgroup_opts, offsetof(struct policy_args, target) } },
	.max_args = 1,		/* include|exclude */
};

static const struct command policy_clear = {
	.name = "policy clear",
	.usage = usage_policy,
	.opts = { { cgroup_opts, offsetof(struct policy_args, target) } },
};

/* policy exe PATH ACTION: the same as exe set PATH ACTION. */
static const struct command policy_exe = {
	.name = "policy exe",
	.usage = usage_policy,
	.max_args = 2,
};

static const struct command *const policy_verbs[] = {
	&policy_show, &policy_add, &policy_default, &policy_clear, &policy_exe, NULL
};

static int cmd_policy(int argc, char **argv)
{
	const struct command *verb_cmd;
	struct policy_args p = {};
	struct opts_args words, args;
	struct sa_cgroup_info info;
	struct sa_policy pol;
	char path[PATH_MAX];
	int cg_map = -1, pol_map = -1, lock = -1, ret = 1, rc;
	int action = 0;
	const char *verb;
	__u64 id;

	rc = opts_parse(&policy_command, argc, argv, NULL, &words);
	if (rc != OPTS_OK)
		return opts_exit(rc);
	if (!words.n)
		return usage_policy(), 1;
	verb = words.v[0];
	verb_cmd = command_find(&policy_command, verb);
	if (!verb_cmd)
		return err_msg("unknown policy command '%s' (see: sockaccel policy --help)", verb), 1;
	rc = opts_parse(verb_cmd, words.n, words.v, &p, &args);
	if (rc != OPTS_OK)
		return opts_exit(rc);
	if (verb_cmd == &policy_exe) {
		char *set[] = { "exe", "set", "--", NULL, NULL, NULL };

		if (args.n != 2)
			return err_msg("usage: sockaccel policy exe PATH accelerate|tcp|learn"), 1;
		set[3] = args.v[0];
		set[4] = args.v[1];
		return exe_command.run(5, set);
	}
	if (args.n && !strcmp(args.v[0], "include"))
		action = SA_ACT_INCLUDE;
	else if (args.n && !strcmp(args.v[0], "exclude"))
		action = SA_ACT_EXCLUDE;
	else if (args.n)
		return err_msg("invalid action '%s' (include or exclude)", args.v[0]), 1;
	if (!p.target.cgroup && !p.target.pid)
		return err_msg("policy needs --cgroup DIR or --pid PID"), 1;
	if ((verb_cmd == &policy_add || verb_cmd == &policy_default) && !action)
		return err_msg("policy %s needs include or exclude", verb), 1;
	if (require_caps())
		return 1;
	if (resolve_cgroup(p.target.cgroup, p.target.pid, path, sizeof(path), &id))
		return 1;
	if (opt_dry_run)
		return 0;
	lock = lock_acquire();
	if (lock < 0)
		return 1;
	if (!is_loaded()) {
		err_msg("not loaded (hint: sockaccel attach --cgroup %s)", path);
		goto out;
	}
	cg_map = open_pinned(MAP_CGROUPS);
	pol_map = open_pinned(MAP_POLICY);
	if (cg_map < 0 || pol_map < 0) {
		err_errno(errno, NULL, "pinned maps unreadable");
		goto out;
	}
	if (bpf_map_lookup_elem(cg_map, &id, &info)) {
		err_msg("%s is not attached (hint: sockaccel attach --cgroup %s)", path, path);
		goto out;
	}
	if (bpf_map_lookup_elem(pol_map, &info.slot, &pol)) {
		err_errno(errno, NULL, "cannot read policy");
		goto out;
	}
	if (verb_cmd == &policy_show) {
		show(path, &pol);
		ret = 0;
		goto out;
	}
	if (verb_cmd == &policy_add) {
		if (pol.nr_rules >= SA_MAX_RULES) {
			err_msg("%s already has %d rules (hint: policy clear)", path, SA_MAX_RULES);
			goto out;
		}
		p.rule.action = action;
		pol.rules[pol.nr_rules++] = p.rule;
	} else if (verb_cmd == &policy_default) {
		pol.default_action = action;
	} else {
		memset(&pol, 0, sizeof(pol));
		pol.default_action = SA_ACT_INCLUDE;
	}
	if (bpf_map_update_elem(pol_map, &info.slot, &pol, BPF_ANY)) {
		err_errno(errno, NULL, "cannot write policy");
		goto out;
	}
	if (opt_json)
		show(path, &pol);
	else
		info_msg("policy of %s updated (%u rules, default %s)", path, pol.nr_rules,
			 action_str(pol.default_action));
	ret = 0;
out:
	if (cg_map >= 0)
		close(cg_map);
	if (pol_map >= 0)
		close(pol_map);
	lock_release(lock);
	drop_caps();
	return ret;
}

const struct command policy_command = {
	.name = "policy",
	.summary = "per-cgroup include/exclude rules, changed live",
	.run = cmd_policy,
	.usage = usage_policy,
	.stop_at_arg = true,
	.subcommands = policy_verbs,
};
