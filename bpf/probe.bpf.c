// SPDX-License-Identifier: GPL-2.0
/*
 * Load-time kernel probe: a two-socket sockmap whose sk_msg program
 * redirects every send into the other socket's ingress, exactly as the
 * product does. loader/probe.c inserts a loopback pair it owns and checks
 * each known tcp_bpf behaviour (see docs/kernel-limitations.md).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);		/* 0: client end, 1: server end */
	__type(key, __u32);
	__type(value, __u64);
} probe_socks SEC(".maps");

const volatile __u32 server_port = 0;	/* host byte order, set before load */

/* A message of exactly this size goes through TCP (the pass path). */
#define PROBE_PASS_SIZE 7

SEC("sk_msg")
int sockaccel_probe(struct sk_msg_md *msg)
{
	__u32 to = msg->local_port == server_port ? 0 : 1;

	if (msg->size == PROBE_PASS_SIZE)
		return SK_PASS;
	bpf_msg_redirect_map(msg, &probe_socks, to, BPF_F_INGRESS);
	return SK_PASS;
}
