/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Policy (struct sa_policy): the operator's rules per attached cgroup,
 * applied when a socket is inserted, at establishment (sockops.bpf.c) or
 * when it joins later (join.bpf.c).
 */
#ifndef SOCKACCEL_POLICY_BPF_H
#define SOCKACCEL_POLICY_BPF_H

#include "common.bpf.h"

static __always_inline bool prefix_match(const __u32 *a, const __u32 *b,
					 __u32 prefix_len)
{
	int i;

	for (i = 0; i < 4; i++) {
		__u32 bits, mask;

		if (prefix_len == 0)
			return true;
		bits = prefix_len > 32 ? 32 : prefix_len;
		mask = bits == 32 ? 0xffffffff : ~(0xffffffffu >> bits);
		if ((bpf_ntohl(a[i]) & mask) != (bpf_ntohl(b[i]) & mask))
			return false;
		prefix_len -= bits;
	}
	return true;
}

static __always_inline bool rule_matches(const struct sa_rule *r,
					 const struct sa_sock_state *st)
{
	if ((r->match & SA_RULE_LOCAL_PORT) &&
	    (st->local_port < r->local_port_lo || st->local_port > r->local_port_hi))
		return false;
	if ((r->match & SA_RULE_REMOTE_PORT) &&
	    (st->remote_port < r->remote_port_lo || st->remote_port > r->remote_port_hi))
		return false;
	if ((r->match & SA_RULE_PORT) &&
	    (st->local_port < r->local_port_lo || st->local_port > r->local_port_hi) &&
	    (st->remote_port < r->local_port_lo || st->remote_port > r->local_port_hi))
		return false;
	if ((r->match & SA_RULE_LOCAL_ADDR) &&
	    !prefix_match(st->local_ip6, r->local_addr6, r->local_prefix))
		return false;
	if ((r->match & SA_RULE_REMOTE_ADDR) &&
	    !prefix_match(st->remote_ip6, r->remote_addr6, r->remote_prefix))
		return false;
	return true;
}

/* First matching rule wins; no rule matching means the slot's default. */
static __always_inline bool policy_allows(__u32 slot, const struct sa_sock_state *st)
{
	struct sa_policy *pol = bpf_map_lookup_elem(&sockaccel_policy, &slot);
	int i;

	if (!pol)
		return true;
	for (i = 0; i < SA_MAX_RULES; i++) {
		if (i >= pol->nr_rules)
			break;
		if (rule_matches(&pol->rules[i], st))
			return pol->rules[i].action != SA_ACT_EXCLUDE;
	}
	return pol->default_action != SA_ACT_EXCLUDE;
}

#endif /* SOCKACCEL_POLICY_BPF_H */
