/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pairing: is a socket's public record (struct sa_record) the other end of
 * this socket's connection? Used by sockops.bpf.c before inserting a
 * passive child and by sk_msg.bpf.c before the first redirected byte.
 */
#ifndef SOCKACCEL_PAIRING_BPF_H
#define SOCKACCEL_PAIRING_BPF_H

#include "common.bpf.h"

static __always_inline bool is_loopback(const __u32 *ip6)
{
	/* ::1 or ::ffff:127.0.0.0/8 */
	if (ip6[0] || ip6[1])
		return false;
	if (ip6[2] == 0)
		return ip6[3] == bpf_htonl(1);
	return ip6[2] == bpf_htonl(0xffff) && (bpf_ntohl(ip6[3]) >> 24) == 127;
}

static __always_inline bool same_ip6(const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/*
 * Is rec the other end of st's connection? The key match (both ISNs) is
 * already given. Same netns: the tuples must mirror exactly, which also
 * rules out an identical loopback connection in another netns. Other netns
 * (pod to pod, service VIP behind DNAT): only when allowed, never loopback,
 * and the client's own address and port must be what the server sees
 * (DNAT rewrites only the destination).
 */
static __always_inline __u32 verify_peer(const struct sa_sock_state *st,
					 const struct sa_record *rec,
					 const struct sa_config *cfg)
{
	if (rec->flags & (SA_RF_LEFT | SA_RF_DECLINED))
		return SA_R_PEER_MISSING;
	if (rec->netns_cookie == st->netns_cookie) {
		if (rec->local_port != st->remote_port ||
		    rec->remote_port != st->local_port ||
		    !same_ip6(rec->local_ip6, st->remote_ip6) ||
		    !same_ip6(rec->remote_ip6, st->local_ip6))
			return SA_R_PEER_UNVERIFIED;
		return SA_R_NONE;
	}
	if (!cfg->allow_cross_netns)
		return SA_R_CROSS_NETNS;
	if (is_loopback(st->local_ip6) || is_loopback(st->remote_ip6) ||
	    is_loopback(rec->local_ip6) || is_loopback(rec->remote_ip6))
		return SA_R_PEER_UNVERIFIED;
	if (st->key.role == SA_ROLE_CLIENT) {
		/* st is the client, rec the server. */
		if (rec->remote_port != st->local_port ||
		    !same_ip6(rec->remote_ip6, st->local_ip6))
			return SA_R_PEER_UNVERIFIED;
	} else {
		if (rec->local_port != st->remote_port ||
		    !same_ip6(rec->local_ip6, st->remote_ip6))
			return SA_R_PEER_UNVERIFIED;
	}
	return SA_R_NONE;
}

#endif /* SOCKACCEL_PAIRING_BPF_H */
