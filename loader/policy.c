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
	       "MATCH:\n"
	       "  --port P[-Q]           either end's port: both sockets of a connection to\n"
	       "                         (or from) that port\n"
	       "  --local-port P[-Q]     this socket's port (a server's listening port)\n"
	       "  --remote-port P[-Q]    the peer's port\n"
	       "  --local-addr CIDR      this socket's address (IPv4 or IPv6 prefix)\n"
	       "  --remote-addr CIDR     the peer's address\n"
	       "\n"
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

int cmd_policy(int argc, char **argv)
{
	const char *cgroup = NULL, *pid = NULL, *verb;
	struct sa_cgroup_info info;
	struct sa_policy pol;
	struct sa_rule rule = {};
	char path[PATH_MAX];
	int cg_map = -1, pol_map = -1, lock = -1, i, ret = 1;
	int action = 0;
	__u64 id;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return usage_policy(), argc < 2 ? 1 : 0;
	/* policy exe PATH ACTION: the same as exe set PATH ACTION. */
	if (!strcmp(argv[1], "exe")) {
		char *args[5] = { "exe", "set", NULL, NULL, NULL };

		if (argc != 4)
			return err_msg("usage: sockaccel policy exe PATH accelerate|tcp|learn"), 1;
		args[2] = argv[2];
		args[3] = argv[3];
		return cmd_exe(4, args);
	}
	verb = argv[1];
	if (strcmp(verb, "show") && strcmp(verb, "add") && strcmp(verb, "default") &&
	    strcmp(verb, "clear"))
		return err_msg("unknown policy command '%s' (see: sockaccel policy --help)", verb), 1;
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return usage_policy(), 0;
		if (!strcmp(a, "include") || !strcmp(a, "exclude")) {
			action = !strcmp(a, "include") ? SA_ACT_INCLUDE : SA_ACT_EXCLUDE;
			continue;
		}
		if (!v || v[0] == '-')
			return err_msg("option '%s' needs a value (see: sockaccel policy --help)", a), 1;
		i++;
		if (!strcmp(a, "--cgroup")) {
			cgroup = v;
		} else if (!strcmp(a, "--pid")) {
			pid = v;
		} else if (!strcmp(a, "--port")) {
			if (parse_ports(v, &rule.local_port_lo, &rule.local_port_hi))
				return 1;
			rule.match |= SA_RULE_PORT;
		} else if (!strcmp(a, "--local-port")) {
			if (parse_ports(v, &rule.local_port_lo, &rule.local_port_hi))
				return 1;
			rule.match |= SA_RULE_LOCAL_PORT;
		} else if (!strcmp(a, "--remote-port")) {
			if (parse_ports(v, &rule.remote_port_lo, &rule.remote_port_hi))
				return 1;
			rule.match |= SA_RULE_REMOTE_PORT;
		} else if (!strcmp(a, "--local-addr")) {
			if (parse_cidr(v, rule.local_addr6, &rule.local_prefix))
				return 1;
			rule.match |= SA_RULE_LOCAL_ADDR;
		} else if (!strcmp(a, "--remote-addr")) {
			if (parse_cidr(v, rule.remote_addr6, &rule.remote_prefix))
				return 1;
			rule.match |= SA_RULE_REMOTE_ADDR;
		} else {
			return err_msg("unknown option '%s' (see: sockaccel policy --help)", a), 1;
		}
	}
	if (!cgroup && !pid)
		return err_msg("policy needs --cgroup DIR or --pid PID"), 1;
	if ((!strcmp(verb, "add") || !strcmp(verb, "default")) && !action)
		return err_msg("policy %s needs include or exclude", verb), 1;
	if (strcmp(verb, "add") && rule.match)
		return err_msg("match options only go with 'policy add'"), 1;
	if (require_caps())
		return 1;
	if (resolve_cgroup(cgroup, pid, path, sizeof(path), &id))
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
	if (!strcmp(verb, "show")) {
		show(path, &pol);
		ret = 0;
		goto out;
	}
	if (!strcmp(verb, "add")) {
		if (pol.nr_rules >= SA_MAX_RULES) {
			err_msg("%s already has %d rules (hint: policy clear)", path, SA_MAX_RULES);
			goto out;
		}
		rule.action = action;
		pol.rules[pol.nr_rules++] = rule;
	} else if (!strcmp(verb, "default")) {
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
