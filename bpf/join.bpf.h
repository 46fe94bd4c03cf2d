/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Join candidates: sockets out of the sockhash that may enter it later
 * (SA_SF_CANDIDATE in their state, SA_RF_CANDIDATE in their record).
 * sock_ops makes them, at establishment (decide_connection()) or when a
 * socket leaves (maybe_leave()); the join hook (join.bpf.c) inserts them;
 * sock_ops forgets them at close (on_state_change()).
 *
 * sock_ops may insert a socket only in its established and listen
 * callbacks (sock_map_op_okay(), net/core/sock_map.c), and the verifier
 * refuses sockhash updates from tracepoints and cgroup programs
 * (may_update_sockmap(), kernel/bpf/verifier.c). tc programs may update
 * one: that is why the join hook is a tc program.
 *
 * A candidate's flags change under the join hook, which holds no lock of
 * the socket, so every change to SA_SF_CANDIDATE, SA_SF_JOINING and
 * SA_SF_CLOSED is an atomic one, and the count of candidates per port
 * (sockaccel_join_ports) follows the SA_SF_CANDIDATE bit exactly.
 */
#ifndef SOCKACCEL_JOIN_BPF_H
#define SOCKACCEL_JOIN_BPF_H

#include "common.bpf.h"

/* sockaccel_join_ports' index that counts every candidate (maps.bpf.h). */
#define SA_JOIN_PORTS_ALL	0

/*
 * Pass reasons at establishment that can go away: the socket may join. Not
 * a blocking client: programs that connect blocking read blocking (netperf,
 * plain Python); the converse, a nonblocking connect() then blocking I/O,
 * is the common switch. A child of a blocking listener is made nonblocking
 * after accept() by PostgreSQL, libevent servers and many more.
 */
static __always_inline bool sa_may_join_later(__u32 reason)
{
	return reason == SA_R_LISTENER_BLOCKING || reason == SA_R_PROBATION ||
	       reason == SA_R_PEER_NOT_JOINED;
}

/*
 * Why a candidate cannot join *yet*, as the join hook finds it: its mode or
 * its peer's (blocking, not accepted yet), a reader on probation, a peer
 * not in. Anything else is final: it gives up.
 */
static __always_inline bool sa_join_may_wait(__u32 reason)
{
	return reason == SA_R_BLOCKING || reason == SA_R_LISTENER_BLOCKING ||
	       reason == SA_R_PEER_NOT_ACCEPTED || reason == SA_R_PROBATION ||
	       reason == SA_R_PEER_NOT_JOINED;
}

/*
 * Leave reasons that can go away: the socket may rejoin. Not the stops
 * (what its reader or sender does is for good), not small_stream (TCP's
 * autocork is the better path for that stream: a choice, like
 * short_conns).
 */
static __always_inline bool sa_may_rejoin(__u32 reason)
{
	return reason == SA_R_SELF_BLOCKING || reason == SA_R_STAYED_ON_TCP ||
	       reason == SA_R_PEER_GONE || reason == SA_R_PEER_NOT_JOINED;
}

/* Does a join hook see this network namespace's loopback segments? */
static __always_inline bool sa_join_hooked(__u64 netns_cookie)
{
	return bpf_map_lookup_elem(&sockaccel_join_netns, &netns_cookie) != NULL;
}

static __always_inline void sa_join_ports_add(__u16 port, int delta)
{
	__u32 k = port, all = SA_JOIN_PORTS_ALL;
	__u32 *n = bpf_map_lookup_elem(&sockaccel_join_ports, &k);

	if (n)
		__sync_fetch_and_add(n, delta);
	n = bpf_map_lookup_elem(&sockaccel_join_ports, &all);
	if (n)
		__sync_fetch_and_add(n, delta);
}

/*
 * A candidate on this port may be due now: the join hook looks again at
 * the next segment. After the count went up (sa_join_ports_add()), so
 * that a join hook raising the time meanwhile either sees the new count
 * or is overwritten here (sockaccel_join()).
 */
static __always_inline void sa_join_due_reset(__u16 port)
{
	__u32 k = port;
	__u64 *due = bpf_map_lookup_elem(&sockaccel_join_due, &k);

	if (due)
		__sync_lock_test_and_set(due, 0);
}

/*
 * Make a socket with a published record a candidate, joining no earlier
 * than wait_ns from now. Its record says so first: a peer that sees the
 * candidate waits for it rather than giving up (pair_with_peer()).
 */
static __always_inline void sa_become_candidate(struct sa_sock_state *st, struct sa_record *rec,
						__u32 reason, __u64 wait_ns)
{
	__u32 old;

	__u64 now = bpf_ktime_get_ns();

	st->out_reason = reason;
	st->join_after_ns = now + wait_ns;
	st->join_recheck_ns = 0;
	st->join_deadline_ns = now + wait_ns + SA_JOIN_PATIENCE_NS;
	if (rec)
		__sync_fetch_and_or(&rec->flags, SA_RF_CANDIDATE);
	old = __sync_fetch_and_or(&st->flags, SA_SF_CANDIDATE);
	if (!(old & SA_SF_CANDIDATE))
		sa_join_ports_add(st->local_port, 1);
	sa_join_due_reset(st->local_port);
}

/* Stop being a candidate (closed, or joining). True if it was one. */
static __always_inline bool sa_end_candidacy(struct sa_sock_state *st)
{
	__u32 old = __sync_fetch_and_and(&st->flags, ~SA_SF_CANDIDATE);

	if (!(old & SA_SF_CANDIDATE))
		return false;
	sa_join_ports_add(st->local_port, -1);
	return true;
}

/*
 * A candidate that can no longer join (its peer closed or left for good,
 * a stop, the policy): its record says "never" (declined) to its peer,
 * which then leaves rather than waits.
 */
static __always_inline void sa_give_up_joining(struct sa_sock_state *st, struct sa_record *rec)
{
	if (!sa_end_candidacy(st))
		return;
	if (rec) {
		__sync_fetch_and_or(&rec->flags, SA_RF_DECLINED);
		__sync_fetch_and_and(&rec->flags, ~SA_RF_CANDIDATE);
	}
}

#endif /* SOCKACCEL_JOIN_BPF_H */
