// SPDX-License-Identifier: GPL-2.0
/*
 * sk_msg: runs on every sendmsg()/sendfile() of an inserted socket and
 * decides, per message, whether the bytes go straight into the peer's
 * psock queue (redirect) or down the TCP stack (pass). The rules keep the
 * byte stream and the peer's syscall results identical to plain TCP; each
 * is a function of its name, checked in this order by sockaccel_sk_msg():
 *
 *  0. sender_ok(): this socket's own sends may leave TCP (not blocking,
 *     not shut down, no ULP / SO_ZEROCOPY / transmit timestamps).
 *  4. pair_with_peer(): identity. The peer's public record must prove it
 *     is the other end of this connection before the first byte; every
 *     redirect then goes to its socket cookie, which no other socket has.
 *     peer_stays(): the peer is not leaving and no stop was put on the
 *     connection (stop.bpf.h).
 *  2. reader_ok(): redirect only into a peer that reads nonblocking, with
 *     SO_RCVLOWAT <= 1, no peek offset, no ULP and no ancillary receive
 *     data, since tcp_bpf_recvmsg() serves none of those.
 *  1. stack_drained(): order. Redirected bytes are read before
 *     sk_receive_queue (tcp_bpf_recvmsg()), so redirect only when no byte
 *     of this direction is on the stack: all received by the peer (its
 *     rcv_nxt == our write_seq) and all read (copied_seq == rcv_nxt).
 *     Stack after redirect is always safe.
 *  3. backlog_ok(): memory. Redirected bytes bypass the receive window;
 *     stop when the peer holds backlog_limit of unread bytes and queued
 *     messages (backlog_active while it keeps reading, as TCP's receive
 *     buffer grows for a reader that reads), or its charge could fail,
 *     and let TCP flow control take over; rule 1 brings the direction
 *     back once it drains.
 * Then note_small_write(), wait_for_peer_lock() and redirect().
 *
 * Never SK_DROP: a refused redirect is a pass, never an EACCES.
 */
#include "common.bpf.h"
#include "pairing.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define SA_SEND_SHUTDOWN	2	/* include/net/sock.h */

/* After this long without a peer record, the peer is not local/accelerated. */
#define SA_PEER_GRACE_NS	(20 * 1000 * 1000ull)

/*
 * The handshake race. A client wakes up established (tcp_finish_connect())
 * and may send before its server end exists: the final ACK can still be
 * queued in loopback's softirq on another CPU. Its first bytes would go
 * through TCP, and rule 1 would then hold a sender that never pauses
 * there for good (measured: 1 in 2 runs of a 200 MB transfer fell back
 * on 6.18, 2 in 3 in a qemu guest). When the connection is young and a
 * listener of an attached cgroup waits on that port in this netns, the
 * server end's record is microseconds away: wait for it, once, bounded.
 */
#define SA_PEER_WAIT_NS		(500 * 1000ull)
#define SA_PEER_WAIT_LOOPS	(1u << 16)

/* A peer that read within this long still counts as reading (rule 3). */
#define SA_READER_ACTIVE_NS	(20 * 1000 * 1000ull)

/* Rule 2, reader_ok(): would the peer read these bytes exactly as from TCP? */
static __always_inline __u32 reader_ok(struct tcp_sock *peer, const struct sa_sock_state *st,
				       const struct sa_config *cfg)
{
	struct sock *sk = &peer->inet_conn.icsk_inet.sk;
	int nb = sa_file_nonblocking(peer);

	if (nb < 0 && !(st->flags & SA_SF_PEER_PREACCEPT))
		return SA_R_PEER_NOT_ACCEPTED;
	if (nb == 0 && !(cfg->kernel_flags & SA_KF_RECV_WAITS_SAFELY))
		return SA_R_PEER_BLOCKING;
	/* kTLS receive: tls_sw_recvmsg() hands psock bytes over undecrypted. */
	if (SA_RD(peer, inet_conn.icsk_ulp_ops))
		return SA_R_ULP;
	if (SA_RD(sk, sk_rcvlowat) > 1)
		return SA_R_PEER_RCVLOWAT;
	/* SO_PEEK_OFF: tcp_bpf_recvmsg() peeks from the start regardless. */
	if (SA_RD(sk, sk_peek_off) >= 0)
		return SA_R_PEER_RXOPTS;
	if ((SA_RD(sk, __sk_common.skc_flags) &
	     ((1ul << SOCK_RCVTSTAMP) | (1ul << SOCK_RCVTSTAMPNS) |
	      (1ul << SOCK_TIMESTAMPING_RX_SOFTWARE))) ||
	    (SA_RD(sk, sk_tsflags) & SA_SOF_TIMESTAMPING_RX) || SA_RD_BITS(peer, recvmsg_inq))
		return SA_R_PEER_RXOPTS;
	return SA_R_NONE;
}

/*
 * Would bpf_tcp_ingress()'s charge of the receiver fail? It charges
 * through __sk_rmem_schedule() -> __sk_mem_raise_allocated(), which
 * cannot fail below tcp_mem[1] (the pressure threshold) unless the
 * receiver's memory cgroup refuses the pages (mem_cgroup_charge_skmem()).
 * A failure is ENOMEM for the *sender*, where TCP would shrink a window
 * and retransmit (seen: an echo server's send() failed with ENOMEM in a
 * 2 GB qemu guest, which had only checked the pressure flag). So pass,
 * well before either: tcp_memory_allocated lags by per-CPU reserves
 * (sk_memory_allocated_add()), cfg->mem_margin_pages covers them, and
 * the receiver's cgroup must be out of socket pressure (vmpressure, a
 * jiffies deadline) with room under every ancestor's memory.max.
 */
#define SA_PAGE_SHIFT		12
#define SA_MEMCG_DEPTH		16

static __always_inline bool charge_may_fail(struct tcp_sock *self, struct tcp_sock *peer,
					    __u32 size, const struct sa_config *cfg)
{
	struct proto *prot = self->inet_conn.icsk_inet.sk.__sk_common.skc_prot;
	long pages = (size >> SA_PAGE_SHIFT) + 1 + cfg->mem_margin_pages, alloc = 0, lim = 0;
	unsigned long pressure = 0, *flag = prot->memory_pressure;
	struct page_counter *pc;
	struct mem_cgroup *mc;
	int i;

	if (flag)
		bpf_core_read(&pressure, sizeof(pressure), flag);
	bpf_core_read(&alloc, sizeof(alloc), &prot->memory_allocated->counter);
	bpf_core_read(&lim, sizeof(lim), &prot->sysctl_mem[1]);
	if (pressure || alloc + pages > lim)
		return true;
	mc = SA_RD(peer, inet_conn.icsk_inet.sk.sk_memcg);
	if (!mc)
		return false;
	if (bpf_jiffies64() < (__u64)SA_RD(mc, socket_pressure))
		return true;
	pc = &mc->memory;
	for (i = 0; i < SA_MEMCG_DEPTH && pc; i++) {
		if (SA_RD(pc, usage.counter) + pages > (long)SA_RD(pc, max))
			return true;
		pc = SA_RD(pc, parent);
	}
	return false;
}

/*
 * Rule 3 counts what the kernel holds for the peer, not only bytes: each
 * redirected message is its own kzalloc()ed struct sk_msg
 * (bpf_tcp_ingress(), ~712 B in kmalloc-1k), charged to no memory cgroup
 * (measured: 200 idle readers sent 1-byte messages for 3 s made Slab grow
 * by 206 MB, plain TCP 1.6 MB). The unread messages are the tail of a
 * FIFO: at most those sent since the queue was last seen empty, and at
 * most unread / the smallest of them, plus a partly read head.
 */
#define SA_MSG_COST		1024

static __always_inline __u64 queued_cost(struct sa_sock_state *st, long unread, __u32 size)
{
	__u64 msgs, by_size;

	if (unread == 0) {
		st->msgs_since_empty = 0;
		st->min_msg_since_empty = 0;
	}
	msgs = st->msgs_since_empty;
	if (st->min_msg_since_empty) {
		by_size = (__u64)unread / st->min_msg_since_empty + 1;
		if (by_size < msgs)
			msgs = by_size;
	}
	return (__u64)unread + size + (msgs + 1) * SA_MSG_COST;
}

static __always_inline void count_queued(struct sa_sock_state *st, __u32 size)
{
	if (st->msgs_since_empty != 0xffffffff)
		st->msgs_since_empty++;
	if (!st->min_msg_since_empty || size < st->min_msg_since_empty)
		st->min_msg_since_empty = size ? size : 1;
}

struct peer_wait {
	struct sa_conn_key peer;
	struct sa_conn_key own;
	__u64 start;
	bool found;
};

/*
 * No server end will ever pair with this client: it decided to stay on
 * TCP (decide_connection() marks the client's record), or the client's
 * own record is gone. Nothing to wait for, no grace to wait out.
 */
static __always_inline bool server_declined(const struct sa_conn_key *own_key)
{
	struct sa_record *own = bpf_map_lookup_elem(&sockaccel_records, own_key);

	return !own || (own->flags & SA_RF_DECLINED);
}

static long peer_wait_step(__u32 i, struct peer_wait *w)
{
	if (bpf_map_lookup_elem(&sockaccel_records, &w->peer)) {
		w->found = true;
		return 1;
	}
	if (server_declined(&w->own))
		return 1;
	return bpf_ktime_get_ns() - w->start > SA_PEER_WAIT_NS;
}

/* Is a listener of an attached cgroup on the port this client connected to? */
static __always_inline bool local_listener(const struct sa_sock_state *st)
{
	struct sa_listen_key k = { .netns_cookie = st->netns_cookie, .port = st->remote_port,
				   .family = st->family };

	if (bpf_map_lookup_elem(&sockaccel_listeners, &k))
		return true;
	/* A v6 client of ::ffff:a.b.c.d reaches an AF_INET listener. */
	if (st->family != AF_INET6 || st->remote_ip6[0] || st->remote_ip6[1] ||
	    st->remote_ip6[2] != bpf_htonl(0xffff))
		return false;
	k.family = AF_INET;
	return bpf_map_lookup_elem(&sockaccel_listeners, &k) != NULL;
}

/* See SA_PEER_WAIT_NS. True if the server end's record exists now. */
static __always_inline bool wait_for_peer_record(struct sa_sock_state *st,
						 const struct sa_conn_key *peer_key,
						 struct sa_counters *c)
{
	struct peer_wait w = { .peer = *peer_key, .own = st->key };

	if (st->key.role != SA_ROLE_CLIENT || (st->flags & SA_SF_PEER_WAITED) ||
	    bpf_ktime_get_ns() - st->inserted_ns >= SA_PEER_GRACE_NS || !local_listener(st))
		return false;
	st->flags |= SA_SF_PEER_WAITED;
	w.start = bpf_ktime_get_ns();
	bpf_loop(SA_PEER_WAIT_LOOPS, peer_wait_step, &w, 0);
	c->c[SA_C_PEER_WAITS]++;
	c->c[SA_C_PEER_WAIT_NS] += bpf_ktime_get_ns() - w.start;
	return w.found;
}

/* Ask sockops.bpf.c's maybe_leave() to take this socket out of the sockhash. */
static __always_inline void request_leave(struct sa_sock_state *st, __u32 reason)
{
	if (!(st->flags & SA_SF_LEAVE_REQ)) {
		st->leave_reason = reason;
		st->flags |= SA_SF_LEAVE_REQ;
	}
}

/* The decision was "no" (reason); account it and hand the bytes to TCP. */
static __always_inline int pass(struct sa_sock_state *st, struct sa_counters *c,
				const struct sa_config *cfg, __u32 reason, __u32 size)
{
	if (st->last_reason == SA_R_NONE)
		c->c[SA_C_TO_STACK]++;
	st->last_reason = reason;
	st->bytes_passed += size;
	c->c[SA_C_MSGS_PASSED]++;
	c->c[SA_C_BYTES_PASSED] += size;
	/* One register for the bound and the index (the verifier tracks it). */
	barrier_var(reason);
	if (reason < SA_R_MAX)
		c->c[SA_C_REASON_BASE + reason]++;
	/*
	 * A direction that keeps going through TCP pays tcp_bpf's pass path,
	 * slower than plain TCP. After a fallback (rule 3) the sender
	 * usually blocks within a few send buffers, the stack drains and
	 * rule 1 brings it back within milliseconds; stay_limit bytes over
	 * SA_STAY_NS without one redirect means it will not come back.
	 */
	/*
	 * Paired, and back on TCP only until this direction drains: let the
	 * sender pause until all it queued is sent, so that a sender that
	 * never pauses by itself meets a drained stack (pause_sender()).
	 */
	if ((reason == SA_R_STACK_PENDING || reason == SA_R_PEER_BACKLOG) &&
	    (st->flags & SA_SF_PAIRED) && !(st->flags & (SA_SF_PAUSED | SA_SF_PAUSE_REQ)))
		st->flags |= SA_SF_PAUSE_REQ;
	if (!st->passed_run)
		st->passed_since_ns = bpf_ktime_get_ns();
	st->passed_run += size;
	if (st->passed_run > cfg->stay_limit &&
	    bpf_ktime_get_ns() - st->passed_since_ns > SA_STAY_NS)
		request_leave(st, SA_R_STAYED_ON_TCP);
	return SK_PASS;
}

/*
 * bpf_tcp_ingress() takes the peer's socket lock, and the peer's reader
 * holds it for its whole copy in tcp_bpf_recvmsg(). lock_sock() never
 * spins: a sender that finds the lock owned sleeps in __lock_sock() until
 * release_sock() wakes it, and that cross-CPU wake-up costs far more than
 * the copy it waited for. Measured here: 64 streams of 16 KiB writes on
 * two CPUs found the peer's lock owned at 17% of redirects and ran at
 * 0.64x of plain TCP, the lost time in those wake-ups (plain TCP's softirq
 * receive never sleeps: tcp_v4_rcv() queues to the owner's backlog).
 * So, like a mutex spinning on a running owner, wait here for the
 * owner to finish, bounded by cfg->lock_spin_ns; then redirect, and
 * lock_sock() sleeps as before if it is still owned.
 *
 * Two senders, each holding its own socket's lock (tcp_bpf_sendmsg())
 * and waiting for the other's, would both wait the whole bound. Each
 * announces its wait in its own record and does not wait while the
 * other side does (a full barrier between the two, as in Dekker's
 * algorithm: at least one of two concurrent waiters sees the other).
 *
 * The rules checked before still hold after the wait: only this socket's
 * sender, whose lock tcp_bpf_sendmsg() holds, adds bytes to this
 * direction; the reader only lowers the backlog; and a peer that wants to
 * leave waits until this sendmsg() has ended (sa_peer_idle()).
 */
struct lock_wait {
	struct tcp_sock *peer;
	__u64 start;
	__u64 bound;
};

static long lock_wait_step(__u32 i, struct lock_wait *w)
{
	struct tcp_sock *peer = w->peer;

	if (!SA_RD_ONCE(peer, inet_conn.icsk_inet.sk.sk_lock.owned))
		return 1;
	return bpf_ktime_get_ns() - w->start > w->bound;
}

static __always_inline void wait_for_peer_lock(struct tcp_sock *peer, struct sa_sock_state *st,
					       struct sa_conn_key *peer_key,
					       const struct sa_config *cfg, struct sa_counters *c)
{
	struct lock_wait w = { .peer = peer, .bound = cfg->lock_spin_ns };
	struct sa_record *self_rec, *peer_rec;

	if (!w.bound || !SA_RD(peer, inet_conn.icsk_inet.sk.sk_lock.owned))
		return;
	self_rec = bpf_map_lookup_elem(&sockaccel_records, &st->key);
	peer_rec = bpf_map_lookup_elem(&sockaccel_records, peer_key);
	if (!self_rec || !peer_rec)
		return;
	__sync_fetch_and_add(&self_rec->lock_waiters, 1);
	if (!*(volatile __u32 *)&peer_rec->lock_waiters) {
		c->c[SA_C_LOCK_WAITS]++;
		w.start = bpf_ktime_get_ns();
		bpf_loop(SA_LOCK_SPIN_LOOPS, lock_wait_step, &w, 0);
		if (SA_RD_ONCE(peer, inet_conn.icsk_inet.sk.sk_lock.owned))
			c->c[SA_C_LOCK_WAIT_TIMEOUTS]++;
	}
	__sync_fetch_and_sub(&self_rec->lock_waiters, 1);
}

/*
 * This socket's own state: why its sends must go through TCP, SA_R_NONE
 * if they need not.
 */
static __always_inline __u32 sender_ok(struct sa_sock_state *st, struct tcp_sock *self,
				       const struct sa_config *cfg)
{
	__u32 reason;

	/* Left the sockhash in the middle of this sendmsg(): TCP from here. */
	if (st->flags & SA_SF_LEFT)
		return st->leave_reason;
	/*
	 * This socket turned blocking (fcntl() after a nonblocking connect):
	 * its own reads are what is at risk. Send through TCP so a segment
	 * leaves; sockops.bpf.c's maybe_leave() runs on it and takes the
	 * socket out of the sockhash as soon as that is safe.
	 */
	if (!(cfg->kernel_flags & SA_KF_RECV_WAITS_SAFELY) && sa_file_nonblocking(self) == 0)
		return SA_R_SELF_BLOCKING;
	if (st->flags & SA_SF_LEAVE_REQ)
		return st->leave_reason;
	/*
	 * After shutdown(SHUT_WR) (or once closing) tcp_sendmsg_locked()
	 * fails with EPIPE; a redirect would deliver the bytes after the
	 * FIN. Let TCP answer.
	 */
	if (self->inet_conn.icsk_inet.sk.sk_shutdown & SA_SEND_SHUTDOWN)
		return SA_R_SHUTDOWN;
	/* A ULP, SO_ZEROCOPY or transmit timestamps: only TCP serves them. */
	reason = sa_tx_mode_reason(self);
	if (reason != SA_R_NONE)
		request_leave(st, reason);
	return reason;
}

/*
 * Rule 4: the peer's public record proves it is the other end of this
 * connection, once, before the first redirected byte; then its address
 * is cached (st->peer_addr). SA_R_NONE once paired.
 */
static __always_inline __u32 pair_with_peer(struct sa_sock_state *st,
					    const struct sa_conn_key *peer_key,
					    struct sa_counters *c, const struct sa_config *cfg)
{
	struct sa_record *rec;
	__u32 reason;

	if (st->flags & SA_SF_PAIRED)
		return SA_R_NONE;
	rec = bpf_map_lookup_elem(&sockaccel_records, peer_key);
	if (!rec && wait_for_peer_record(st, peer_key, c))
		rec = bpf_map_lookup_elem(&sockaccel_records, peer_key);
	/*
	 * No peer will ever pair: it is remote or not accelerated (no record
	 * some time after establishment; a local server end is inserted
	 * within microseconds), or it was not inserted (declined), or it
	 * left. Pass, and ask maybe_leave() to take this socket out:
	 * tcp_bpf's pass path is slower than TCP's.
	 */
	if (!rec) {
		c->c[SA_C_LOOKUP_MISSES]++;
		if (bpf_ktime_get_ns() - st->inserted_ns < SA_PEER_GRACE_NS &&
		    !server_declined(&st->key))
			return SA_R_PEER_MISSING;
		request_leave(st, SA_R_PEER_GONE);
		return SA_R_PEER_GONE;
	}
	if (rec->flags & (SA_RF_LEFT | SA_RF_DECLINED)) {
		request_leave(st, SA_R_PEER_GONE);
		return SA_R_PEER_GONE;
	}
	/*
	 * The peer may still join (join.bpf.c): its segments and ours go
	 * through TCP until then. If it has not within SA_JOIN_GRACE_NS, this
	 * socket leaves too, and both may join later.
	 */
	if (rec->flags & SA_RF_CANDIDATE) {
		if (bpf_ktime_get_ns() - st->inserted_ns > SA_JOIN_GRACE_NS)
			request_leave(st, SA_R_PEER_NOT_JOINED);
		return SA_R_PEER_NOT_JOINED;
	}
	reason = verify_peer(st, rec, cfg);
	if (reason != SA_R_NONE)
		return reason;
	/*
	 * Announce before the first redirect decision; maybe_leave() claims
	 * the record with a compare-and-swap, so exactly one of the two wins:
	 * either the peer leaves and we never redirect to it, or it stays
	 * for good.
	 */
	if (__sync_fetch_and_or(&rec->flags, SA_RF_GOT_REDIRECT) &
	    (SA_RF_LEFT | SA_RF_DECLINED | SA_RF_CANDIDATE)) {
		request_leave(st, SA_R_PEER_GONE);
		return SA_R_PEER_GONE;
	}
	st->peer_addr = rec->sk_addr;
	st->peer_cookie = rec->cookie;
	st->flags |= SA_SF_PAIRED;
	st->paired_ns = bpf_ktime_get_ns();
	if (rec->netns_cookie != st->netns_cookie)
		st->flags |= SA_SF_CROSS_NETNS;
	if (rec->flags & SA_RF_LISTENER_NB)
		st->flags |= SA_SF_PEER_PREACCEPT;
	return SA_R_NONE;
}

/*
 * The peer is leaving (maybe_leave(): its beacon), or the guard, the
 * sockopt program or the operator stopped the connection: every verdict
 * passes from now on and this socket follows it out. The full barrier
 * orders this sendmsg()'s psock reference (taken in tcp_bpf_sendmsg())
 * before both reads: the leaving side and the stops read that reference
 * count after raising the beacon or setting the stop.
 */
static __always_inline __u32 peer_stays(struct sa_sock_state *st, struct tcp_sock *peer,
					const struct sa_config *cfg)
{
	__u32 reason;

	sa_full_barrier(&st->passed_run);
	reason = SA_RD(peer, bpf_sock_ops_cb_flags) & SA_LEAVING_BEACON ? SA_R_PEER_GONE
									 : sa_guard_reason(st, cfg);
	if (reason != SA_R_NONE)
		request_leave(st, reason);
	return reason;
}

/*
 * Rule 1: no byte of this direction left on the stack: the peer has
 * received every byte this socket ever queued to TCP (its rcv_nxt, in
 * the same sequence space, has reached our write_seq: nothing unsent,
 * in flight, in its backlog or out of order) and read them all
 * (copied_seq == rcv_nxt). Unlike snd_una, rcv_nxt does not wait for our
 * ACK processing, which runs only once this sender releases its socket
 * lock (__release_sock()): a sender writing without pause would
 * otherwise never see the stack drained. A retransmission that arrives
 * later is a duplicate, which tcp_data_queue() drops.
 */
static __always_inline bool stack_drained(struct tcp_sock *self, struct tcp_sock *peer)
{
	__u32 rcv_nxt = SA_RD(peer, rcv_nxt);

	return rcv_nxt == self->write_seq && SA_RD(peer, copied_seq) == rcv_nxt;
}

/*
 * Rule 1, waiting. A direction back on TCP (its reader stalled and the
 * backlog filled, or its peer joined late) whose sender never pauses
 * never finds the stack drained by itself: each time it writes, the
 * reader still has the last window unread. The sender is here holding
 * its socket lock, so nothing more of this direction can be sent; the
 * peer's reader, on another CPU, drains what remains at memory speed.
 * So wait for it, as long as it keeps reading (copied_seq moved within
 * SA_DRAIN_IDLE_NS; SA_DRAIN_START_NS for the first move, a reader may
 * have to wake up) and at most SA_DRAIN_WAIT_NS, once per
 * SA_DRAIN_EVERY_NS. With both ends on one CPU the reader cannot run
 * meanwhile: the wait ends after SA_DRAIN_START_NS, and that CPU drains
 * the stack anyway whenever the sender sleeps. Only when every byte sent
 * has arrived (rcv_nxt == write_seq): bytes still unsent would need this
 * sender to send them. The other rules still hold after the wait: only
 * this sender adds to this direction, and the reader only lowers its
 * backlog.
 */
#define SA_DRAIN_WAIT_NS	(5 * 1000 * 1000ull)
#define SA_DRAIN_START_NS	(500 * 1000ull)
#define SA_DRAIN_IDLE_NS	(200 * 1000ull)
#define SA_DRAIN_EVERY_NS	(20 * 1000 * 1000ull)
#define SA_DRAIN_LOOPS		(1u << 20)

struct drain_wait {
	struct tcp_sock *peer;
	__u64 start;
	__u64 moved_ns;
	__u32 target;
	__u32 seen;
};

static long drain_step(__u32 i, struct drain_wait *w)
{
	/* A local first: CO-RE relocates the kernel struct, not ours. */
	struct tcp_sock *peer = w->peer;
	__u32 copied = SA_RD_ONCE(peer, copied_seq);
	__u64 now = bpf_ktime_get_ns();

	if (copied == w->target)
		return 1;
	if (copied != w->seen) {
		w->seen = copied;
		w->moved_ns = now;
	}
	if (now - w->start > SA_DRAIN_WAIT_NS)
		return 1;
	return now - w->moved_ns > (w->moved_ns == w->start ? SA_DRAIN_START_NS : SA_DRAIN_IDLE_NS);
}

static __always_inline bool wait_for_drain(struct tcp_sock *self, struct tcp_sock *peer,
					   struct sa_sock_state *st, struct sa_counters *c)
{
	struct drain_wait w = { .peer = peer };
	__u64 now = bpf_ktime_get_ns();

	w.target = SA_RD(peer, rcv_nxt);
	if (w.target != self->write_seq || now < st->drain_after_ns)
		return false;
	st->drain_after_ns = now + SA_DRAIN_EVERY_NS;
	w.seen = SA_RD(peer, copied_seq);
	w.start = now;
	w.moved_ns = now;
	c->c[SA_C_DRAIN_WAITS]++;
	bpf_loop(SA_DRAIN_LOOPS, drain_step, &w, 0);
	if (!stack_drained(self, peer))
		return false;
	c->c[SA_C_DRAIN_WAIT_OK]++;
	return true;
}

/*
 * Rule 3: the peer's unread redirected bytes and messages stay under the
 * backlog limits, and its charge cannot fail. SA_R_NONE if this message
 * may go; *unread is what the peer held.
 */
static __always_inline __u32 backlog_ok(struct sa_sock_state *st, struct tcp_sock *self,
					struct tcp_sock *peer, __u32 size,
					const struct sa_config *cfg, struct sa_counters *c,
					long *unread)
{
	__u64 cost, consumed, now;

	*unread = sa_unread_redirected(peer, cfg);
	if (*unread < 0 || charge_may_fail(self, peer, size, cfg))
		return SA_R_PEER_BACKLOG;
	cost = queued_cost(st, *unread, size);
	if (cost <= cfg->backlog_limit)
		return SA_R_NONE;
	/*
	 * Only this socket redirects to the peer, so what the peer has read
	 * is what was sent minus what is still queued. Past the idle limit,
	 * go on only if that grew in the last SA_READER_ACTIVE_NS (a reader
	 * on a shared CPU may not run for a few ms while this sender does).
	 */
	consumed = st->bytes_redirected - *unread;
	now = bpf_ktime_get_ns();
	if (consumed != st->peer_consumed) {
		st->peer_consumed = consumed;
		st->peer_read_ns = now;
	}
	/*
	 * A reader that has not read once since pairing is starting, not
	 * stopped: a client writing right after connect() can queue
	 * backlog_limit before its server is scheduled to accept and read.
	 * It gets SA_READER_ACTIVE_NS from pairing, up to twice
	 * backlog_limit (a reader that never reads holds no more than that).
	 */
	if (!consumed && now - st->paired_ns <= SA_READER_ACTIVE_NS &&
	    cost <= 2 * cfg->backlog_limit)
		return SA_R_NONE;
	if (now - st->peer_read_ns <= SA_READER_ACTIVE_NS && cost <= cfg->backlog_active)
		return SA_R_NONE;
	if ((__u64)*unread + size <= cfg->backlog_limit)
		c->c[SA_C_MSG_BOUND]++;
	return SA_R_PEER_BACKLOG;
}

/*
 * A stream of small writes that keeps finding the reader behind is
 * cheaper on plain TCP: leave when three quarters of a window did. This
 * message still goes the fast path; the next ones pass, and their first
 * segment lets maybe_leave() act.
 */
static __always_inline void note_small_write(struct sa_sock_state *st, __u32 size, long unread)
{
	if (size >= SA_SMALL_MSG)
		return;
	st->small_msgs++;
	if (unread > 0)
		st->small_behind++;
	if (st->small_msgs >= SA_SMALL_WINDOW) {
		if (SA_SMALL_BEHIND_DEN * st->small_behind >= SA_SMALL_BEHIND_NUM * st->small_msgs)
			request_leave(st, SA_R_SMALL_STREAM);
		st->small_msgs = 0;
		st->small_behind = 0;
	}
}

/* Hand the message to the peer's psock; a peer that left is a pass. */
static __always_inline int redirect(struct sk_msg_md *msg, struct sa_sock_state *st,
				    struct sa_counters *c, const struct sa_config *cfg, __u32 size)
{
	/* By cookie: only the very socket verified at pairing can take it. */
	if (bpf_msg_redirect_hash(msg, &sockaccel_socks, &st->peer_cookie, BPF_F_INGRESS) != SK_PASS) {
		/* The peer left the sockhash (closed or left) for good. */
		st->flags &= ~SA_SF_PAIRED;
		request_leave(st, SA_R_PEER_GONE);
		st->peer_addr = 0;
		st->peer_cookie = 0;
		c->c[SA_C_LOOKUP_MISSES]++;
		return pass(st, c, cfg, SA_R_PEER_GONE, size);
	}
	if (st->last_reason != SA_R_NONE && st->last_reason != SA_R_UNDECIDED)
		c->c[SA_C_TO_REDIRECT]++;
	st->last_reason = SA_R_NONE;
	st->passed_run = 0;
	st->bytes_redirected += size;
	count_queued(st, size);
	c->c[SA_C_MSGS_REDIRECTED]++;
	c->c[SA_C_BYTES_REDIRECTED] += size;
	/* SK_PASS with msg->sk_redir set is a redirect (sk_psock_map_verd()). */
	return SK_PASS;
}

SEC("sk_msg")
int sockaccel_sk_msg(struct sk_msg_md *msg)
{
	struct sa_sock_state *st;
	struct sa_conn_key peer_key;
	struct tcp_sock *self, *peer;
	struct sa_counters *c;
	struct sa_config *cfg;
	struct bpf_sock *bsk = msg->sk;
	__u32 size = msg->size, reason;
	long unread = 0;

	if (!bsk)
		return SK_PASS;
	st = bpf_sk_storage_get(&sockaccel_sock_states, bsk, 0, 0);
	cfg = sa_config();
	if (!st || !cfg)
		return SK_PASS;
	c = bpf_map_lookup_elem(&sockaccel_stats, &st->slot);
	self = bpf_skc_to_tcp_sock(bsk);
	if (!c || !self)
		return SK_PASS;
	st->msgs++;
	sa_peer_key(&st->key, &peer_key);

	reason = sender_ok(st, self, cfg);
	if (reason == SA_R_NONE)
		reason = pair_with_peer(st, &peer_key, c, cfg);
	if (reason != SA_R_NONE)
		return pass(st, c, cfg, reason, size);
	/*
	 * peer_addr stays readable until the peer's tcp_sock is freed, and a
	 * freed peer's cookie is no longer in the sockhash;
	 * bpf_msg_redirect_hash() is the liveness check, and a failed lookup
	 * is a pass.
	 */
	peer = sa_tcp_sock_at(st->peer_addr);
	reason = peer_stays(st, peer, cfg);
	if (reason == SA_R_NONE)
		reason = reader_ok(peer, st, cfg);
	if (reason == SA_R_NONE && !stack_drained(self, peer) &&
	    !wait_for_drain(self, peer, st, c))
		reason = SA_R_STACK_PENDING;
	if (reason == SA_R_NONE)
		reason = backlog_ok(st, self, peer, size, cfg, c, &unread);
	if (reason != SA_R_NONE)
		return pass(st, c, cfg, reason, size);
	note_small_write(st, size, unread);
	wait_for_peer_lock(peer, st, &peer_key, cfg, c);
	return redirect(msg, st, c, cfg, size);
}
