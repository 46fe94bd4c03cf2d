// SPDX-License-Identifier: GPL-2.0
/*
 * The join hook: a tc ingress program on loopback that inserts join
 * candidates (join.bpf.h) into the sockhash once nothing keeps them out,
 * so a connection's fate is not sealed at establishment:
 *  - a socket passed then only for its mode (a blocking client, or a
 *    child of a blocking listener that its server makes nonblocking after
 *    accept(), as PostgreSQL does), its reader's probation, or because its
 *    peer was not in yet, joins at a later segment;
 *  - a socket that left (its reader stalled and its sends stayed on TCP,
 *    it turned blocking, its peer left) rejoins once that is over, after a
 *    backoff that doubles at each rejoin.
 *
 * Why tc: sock_ops may insert only in its established and listen callbacks
 * (sock_map_op_okay()), and tracepoints and cgroup programs may not update
 * a sockhash at all (may_update_sockmap()). A tc program may
 * (sock_map_update_elem(), under bh_lock_sock()). At ingress no socket
 * lock is held on this CPU: net_rx_action() runs the loopback backlog
 * (enqueue_to_backlog() from loopback_xmit()) with bottom halves off and
 * no socket spinlock, so locking the socket found cannot deadlock.
 *
 * Each segment costs one array read while there is no candidate, a
 * header parse and a second read while its destination port has none
 * (sockaccel_join_ports); then a socket lookup (bpf_sk_lookup_tcp(), in
 * this netns) and its state. A candidate is looked at again no sooner
 * than SA_JOIN_RECHECK_NS later, doubling up to SA_JOIN_RECHECK_MAX_NS,
 * and gives up after SA_JOIN_PATIENCE_NS; while it is a port's only
 * candidate, segments to that port skip the lookup until then
 * (sockaccel_join_due, defer_port()).
 *
 * Only the socket the segment is for joins here; its peer joins on a
 * segment that arrives for it (the ACK of this one, or the reply), so
 * either end may live in another network namespace that has its own hook.
 * The join never drops or changes a segment: TC_ACT_OK always.
 */
#include "common.bpf.h"
#include "pairing.bpf.h"
#include "policy.bpf.h"
#include "join.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define SA_TC_ACT_OK		0
#define SA_ETH_HLEN		14
#define SA_ETH_P_IP		0x0800
#define SA_ETH_P_IPV6		0x86DD
#define SA_IPPROTO_TCP		6

/*
 * A handshake segment is for a socket not established yet (consider()
 * would look it up for nothing); after a FIN or a reset there is nothing
 * left to join for. Skipped: about 4 of a short connection's 10 lookups.
 */
static __always_inline bool opens_or_closes(const struct tcphdr *th)
{
	return th->syn || th->fin || th->rst;
}

/*
 * The tuple bpf_sk_lookup_tcp() wants for this segment, and its port; 0
 * for a segment no candidate can join on.
 */
static __always_inline __u32 segment_tuple(struct __sk_buff *skb, struct bpf_sock_tuple *t,
					   __u16 *dport)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *th;

	if ((void *)(eth + 1) > end)
		return 0;
	if (eth->h_proto == bpf_htons(SA_ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->protocol != SA_IPPROTO_TCP || ip->ihl != 5 ||
		    (ip->frag_off & bpf_htons(0x3fff)))
			return 0;
		th = (void *)(ip + 1);
		if ((void *)(th + 1) > end || opens_or_closes(th))
			return 0;
		t->ipv4.saddr = ip->saddr;
		t->ipv4.daddr = ip->daddr;
		t->ipv4.sport = th->source;
		t->ipv4.dport = th->dest;
		*dport = bpf_ntohs(th->dest);
		return sizeof(t->ipv4);
	}
	if (eth->h_proto == bpf_htons(SA_ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != SA_IPPROTO_TCP)
			return 0;
		th = (void *)(ip6 + 1);
		if ((void *)(th + 1) > end || opens_or_closes(th))
			return 0;
		__builtin_memcpy(t->ipv6.saddr, &ip6->saddr, sizeof(t->ipv6.saddr));
		__builtin_memcpy(t->ipv6.daddr, &ip6->daddr, sizeof(t->ipv6.daddr));
		t->ipv6.sport = th->source;
		t->ipv6.dport = th->dest;
		*dport = bpf_ntohs(th->dest);
		return sizeof(t->ipv6);
	}
	return 0;
}

/*
 * A thread asleep in a call on this socket: sk_wait_event() (recv()'s
 * sk_wait_data(), send()'s sk_stream_wait_memory(), tcp_bpf's
 * tcp_msg_wait_data()) queues woken_wake_function() on the socket's wait
 * queue; epoll, poll and select queue others. A thread that entered
 * recv() while the socket was blocking sleeps in tcp_recvmsg(), which a
 * join would not make it leave: redirected bytes wake it, it finds
 * sk_receive_queue empty and sleeps again. So no join while one sleeps.
 * The walk is bounded; a longer queue counts as a sleeper.
 */
extern const void woken_wake_function __ksym;
#define SA_WAITERS_MAX		8

static __always_inline bool thread_asleep_on(struct tcp_sock *tp)
{
	struct sock *sk = sa_sk(tp);
	struct socket_wq *wq = BPF_CORE_READ(sk, sk_wq);
	struct list_head *head, *pos;
	int i;

	if (!wq)
		return false;
	head = &wq->wait.head;
	pos = BPF_CORE_READ(wq, wait.head.next);
	for (i = 0; i < SA_WAITERS_MAX; i++) {
		struct wait_queue_entry *e;

		if (!pos || pos == head)
			return false;
		e = container_of(pos, struct wait_queue_entry, entry);
		if ((unsigned long)BPF_CORE_READ(e, func) == (unsigned long)&woken_wake_function)
			return true;
		pos = BPF_CORE_READ(pos, next);
	}
	return true;
}

/*
 * Its own side: what decide_connection() checks, read live. SA_R_NONE if
 * it may join; a reason sa_join_may_wait() accepts if it may later.
 * Blocking: as at establishment, tcp_bpf_recvmsg() is unsafe for blocking
 * readers. No file yet: a passive child before accept().
 */
static __always_inline __u32 own_side_ok(struct tcp_sock *tp, struct sa_sock_state *st,
					 const struct sa_config *cfg, __u32 slot)
{
	int nb = sa_file_nonblocking(tp);
	__u32 r;

	if (nb < 0)
		return SA_R_LISTENER_BLOCKING;
	if (nb == 0 && !(cfg->kernel_flags & SA_KF_RECV_WAITS_SAFELY))
		return SA_R_BLOCKING;
	if (thread_asleep_on(tp))
		return SA_R_BLOCKING;
	if (SA_RD_BITS(tp, repair))
		return SA_R_REPAIR;
	r = sa_tx_mode_reason(tp);
	if (r != SA_R_NONE)
		return r;
	if (!policy_allows(slot, st))
		return SA_R_POLICY;
	return sa_reader_verdict(cfg, &st->reader);
}

/*
 * Its peer: still there, the other end of this connection (the same
 * verification as pairing), not stopped, and able to join too (its mode
 * and its reader, read through its record). It may be in the sockhash or
 * a candidate itself.
 */
static __always_inline __u32 peer_side_ok(struct sa_sock_state *st, struct sa_record *own,
					  struct sa_record *peer, const struct sa_config *cfg)
{
	struct sa_record rec;
	struct tcp_sock *ptp;
	int nb;

	if (!peer)
		return SA_R_PEER_GONE;
	if ((own->flags | peer->flags) & (SA_RF_RX_STOPPED | SA_RF_TX_STOPPED))
		return peer->stop_reason ? peer->stop_reason : own->stop_reason ? own->stop_reason :
									     SA_R_POLICY;
	if (peer->flags & SA_RF_DECLINED)
		return SA_R_PEER_GONE;
	if ((peer->flags & SA_RF_LEFT) && !(peer->flags & SA_RF_CANDIDATE))
		return SA_R_PEER_GONE;
	/* verify_peer() reads a left peer as missing: only its identity here. */
	rec = *peer;
	rec.flags = 0;
	if (verify_peer(st, &rec, cfg) != SA_R_NONE)
		return SA_R_PEER_UNVERIFIED;
	ptp = sa_tcp_sock_at(peer->sk_addr);
	nb = sa_file_nonblocking(ptp);
	if (nb == 0 && !(cfg->kernel_flags & SA_KF_RECV_WAITS_SAFELY))
		return SA_R_BLOCKING;
	return sa_reader_verdict(cfg, &peer->reader);
}

/* Why a candidate cannot join now (SA_R_NONE: it can). */
static __always_inline __u32 join_verdict(struct tcp_sock *tp, struct sa_sock_state *st,
					  const struct sa_config *cfg, __u32 slot,
					  struct sa_record **own)
{
	struct sa_conn_key peer_key;
	struct sa_record *peer;
	__u32 r;

	*own = bpf_map_lookup_elem(&sockaccel_records, &st->key);
	if (*own && (*own)->cookie != st->cookie)
		*own = NULL;	/* another socket's, by the same key: never touch it */
	if (!*own)
		return SA_R_PEER_UNVERIFIED;
	r = own_side_ok(tp, st, cfg, slot);
	if (r != SA_R_NONE)
		return r;
	sa_peer_key(&st->key, &peer_key);
	peer = bpf_map_lookup_elem(&sockaccel_records, &peer_key);
	r = peer_side_ok(st, *own, peer, cfg);
	if (r != SA_R_NONE)
		return r;
	/*
	 * A psock still attached: a sendmsg() from before it left still holds
	 * the old one (sk_psock_put() drops it only at the last reference).
	 * Join once it is gone, with fresh state.
	 */
	if (sa_psock(tp))
		return SA_R_PEER_NOT_JOINED;
	return SA_R_NONE;
}

/*
 * Reset what described the last time in the sockhash: pairing, leaving,
 * the backlog and small-write accounting. Its record keeps
 * SA_RF_GOT_REDIRECT: a peer still paired from before redirects to this
 * socket again without announcing it anew, and maybe_leave() must keep
 * waiting for such a peer.
 */
static __always_inline void fresh_in_state(struct sa_sock_state *st, __u32 slot, __u64 now)
{
	__sync_fetch_and_and(&st->flags, ~(SA_SF_LEFT | SA_SF_LEAVE_REQ | SA_SF_PAIRED |
					   SA_SF_PEER_WAITED | SA_SF_CROSS_NETNS |
					   SA_SF_PEER_PREACCEPT));
	st->slot = slot;
	st->peer_addr = 0;
	st->peer_cookie = 0;
	st->passed_run = 0;
	st->small_msgs = 0;
	st->small_behind = 0;
	st->msgs_since_empty = 0;
	st->min_msg_since_empty = 0;
	st->peer_consumed = 0;
	st->peer_read_ns = now;
	st->guard_gen = 0;
	st->leave_reason = SA_R_NONE;
	st->last_reason = SA_R_UNDECIDED;
	st->inserted_ns = now;
}

static __always_inline void join(struct bpf_sock *sk, struct sa_sock_state *st,
				 struct sa_record *own, const struct sa_config *cfg,
				 __u32 slot, __u64 cgroup_id)
{
	__u32 f = st->flags, reason = st->out_reason;
	bool rejoin = f & SA_SF_LEFT;
	__u64 now = bpf_ktime_get_ns();

	if (reason >= SA_R_MAX)
		reason = SA_R_NONE;
	/* Claim it: a close (SA_SF_CLOSED) or another CPU's hook loses to this, or wins. */
	if (!(f & SA_SF_CANDIDATE) || (f & (SA_SF_CLOSED | SA_SF_JOINING)) ||
	    __sync_val_compare_and_swap(&st->flags, f, (f & ~SA_SF_CANDIDATE) | SA_SF_JOINING) != f)
		return;
	sa_join_ports_add(st->local_port, -1);
	fresh_in_state(st, slot, now);
	__sync_fetch_and_or(&st->flags, SA_SF_INSERTED);
	/*
	 * Into the sockhash first, then the record says "in": a peer pairs
	 * only with a socket its redirect can reach.
	 */
	if (bpf_map_update_elem(&sockaccel_socks, &st->cookie, sk, BPF_NOEXIST)) {
		if (!rejoin)
			__sync_fetch_and_and(&st->flags, ~SA_SF_INSERTED);
		else
			__sync_fetch_and_or(&st->flags, SA_SF_LEFT);
		__sync_fetch_and_and(&st->flags, ~SA_SF_JOINING);
		sa_count(slot, SA_C_JOIN_FAILED, 1);
		/* Full, or closing: look again after a backoff, unless closed. */
		if (!(st->flags & SA_SF_CLOSED))
			sa_become_candidate(st, NULL, reason, SA_REJOIN_BACKOFF_MAX_NS);
		return;
	}
	__sync_fetch_and_and(&own->flags, ~(SA_RF_CANDIDATE | SA_RF_LEFT | SA_RF_QUIESCED));
	__sync_fetch_and_and(&st->flags, ~SA_SF_JOINING);
	sa_count(slot, rejoin ? SA_C_SOCKS_REJOINED : SA_C_SOCKS_JOINED, 1);
	sa_count(slot, (rejoin ? SA_C_REJOIN_BASE : SA_C_JOIN_BASE) + reason, 1);
	if (cfg->trace)
		sa_emit(st, rejoin ? SA_EV_REJOINED : SA_EV_JOINED, reason, cgroup_id);
}

/*
 * A segment for sk, a candidate's socket or not. Returns when this
 * candidate is next due, if it stays one and is not due now; else 0.
 */
static __always_inline __u64 consider(struct bpf_sock *sk, const struct sa_config *cfg, __u64 now)
{
	struct sa_sock_state *st;
	struct sa_record *own = NULL;
	struct tcp_sock *tp;
	__u64 cgroup_id;
	__u32 slot, r;

	if (sk->state != BPF_TCP_ESTABLISHED)
		return 0;
	st = bpf_sk_storage_get(&sockaccel_sock_states, sk, 0, 0);
	if (!st || !(st->flags & SA_SF_CANDIDATE))
		return 0;
	if (now < st->join_after_ns)
		return st->join_after_ns;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	/* Its cgroup may have been detached since: slot 0 is not ours. */
	slot = sa_cgroup_slot(sa_sk(tp), &cgroup_id);
	sa_count(slot ? slot : st->slot, SA_C_JOIN_CHECKS, 1);
	r = slot ? join_verdict(tp, st, cfg, slot, &own) : SA_R_POLICY;
	if (r == SA_R_NONE && own) {
		join(sk, st, own, cfg, slot, cgroup_id);
		return 0;
	}
	if (sa_join_may_wait(r) && now < st->join_deadline_ns) {
		if (!st->join_recheck_ns)
			st->join_recheck_ns = SA_JOIN_RECHECK_NS;
		st->join_after_ns = now + st->join_recheck_ns;
		if (st->join_recheck_ns < SA_JOIN_RECHECK_MAX_NS)
			st->join_recheck_ns *= 2;
		return st->join_after_ns;
	}
	sa_give_up_joining(st, own);
	return 0;
}

/*
 * No lookup for this port until its only candidate is due. A candidate
 * that arrives meanwhile raises the count before it resets the time
 * (sa_become_candidate()): either the count read after this
 * compare-and-swap (a full barrier) sees it, and the time goes back to 0,
 * or its reset comes after and wins. With more candidates on the port,
 * each looks at its own time (consider()).
 */
static __always_inline void defer_port(__u64 *due, __u64 seen, __u64 next, __u32 *n)
{
	if (__sync_val_compare_and_swap(due, seen, next) != seen)
		return;
	if (*(volatile __u32 *)n != 1)
		__sync_lock_test_and_set(due, 0);
}

SEC("tc")
int sockaccel_join(struct __sk_buff *skb)
{
	struct bpf_sock_tuple t = {};
	__u32 len, port = SA_JOIN_PORTS_ALL, *n;
	__u64 *due, seen, now, next;
	struct sa_config *cfg;
	struct bpf_sock *sk;
	__u16 dport = 0;

	/* No candidate anywhere: half this program's cost per segment. */
	n = bpf_map_lookup_elem(&sockaccel_join_ports, &port);
	if (!n || !*n)
		return SA_TC_ACT_OK;
	len = segment_tuple(skb, &t, &dport);
	if (!len)
		return SA_TC_ACT_OK;
	port = dport;
	n = bpf_map_lookup_elem(&sockaccel_join_ports, &port);
	if (!n || !*n)
		return SA_TC_ACT_OK;
	due = bpf_map_lookup_elem(&sockaccel_join_due, &port);
	if (!due)
		return SA_TC_ACT_OK;
	seen = *due;
	now = bpf_ktime_get_ns();
	if (now < seen)
		return SA_TC_ACT_OK;
	cfg = sa_config();
	if (!cfg || !cfg->enabled || cfg->join_off)
		return SA_TC_ACT_OK;
	sk = bpf_sk_lookup_tcp(skb, &t, len, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return SA_TC_ACT_OK;
	next = consider(sk, cfg, now);
	bpf_sk_release(sk);
	if (next > now && *n == 1)
		defer_port(due, seen, next, n);
	return SA_TC_ACT_OK;
}
