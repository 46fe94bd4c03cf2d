// SPDX-License-Identifier: GPL-2.0
/*
 * sock_ops: where a connection's fate is decided.
 *
 * At establishment (decide_connection) a socket in an attached cgroup is
 * either inserted into sockaccel_socks, which gives it tcp_bpf's sendmsg/
 * recvmsg and runs sk_msg.bpf.c on each of its sends, or left alone. Later
 * callbacks trace closes and take a socket back out of the sockhash when it
 * turned blocking or will not use the fast path again (maybe_leave).
 */
#include "common.bpf.h"
#include "pairing.bpf.h"
#include "policy.bpf.h"
#include "join.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Network order in the ctx's upper 16 bits (sock_ops_convert_ctx_access()). */
static __always_inline __u16 sa_remote_port(struct bpf_sock_ops *skops)
{
	return bpf_ntohl(skops->remote_port);
}

static __always_inline void fill_addresses(struct bpf_sock_ops *skops,
					   struct sa_sock_state *st)
{
	/*
	 * Read every ctx field unconditionally: clang otherwise folds the
	 * v4/v6 branches into one load at a computed ctx offset, which the
	 * verifier rejects ("dereference of modified ctx ptr").
	 */
	__u32 l4 = skops->local_ip4, r4 = skops->remote_ip4;
	__u32 l0 = skops->local_ip6[0], l1 = skops->local_ip6[1];
	__u32 l2 = skops->local_ip6[2], l3 = skops->local_ip6[3];
	__u32 r0 = skops->remote_ip6[0], r1 = skops->remote_ip6[1];
	__u32 r2 = skops->remote_ip6[2], r3 = skops->remote_ip6[3];
	__u32 family = skops->family;

	st->family = family;
	st->local_port = skops->local_port;			/* host order in ctx */
	st->remote_port = sa_remote_port(skops);
	if (family == AF_INET) {
		l0 = l1 = r0 = r1 = 0;
		l2 = r2 = bpf_htonl(0xffff);
		l3 = l4;
		r3 = r4;
	}
	st->local_ip6[0] = l0;
	st->local_ip6[1] = l1;
	st->local_ip6[2] = l2;
	st->local_ip6[3] = l3;
	st->remote_ip6[0] = r0;
	st->remote_ip6[1] = r1;
	st->remote_ip6[2] = r2;
	st->remote_ip6[3] = r3;
}

static __always_inline void listen_key(struct bpf_sock_ops *skops, __u16 port,
				       struct sa_listen_key *k)
{
	k->netns_cookie = bpf_get_netns_cookie(skops);
	k->port = port;
	k->family = skops->family;
	k->pad = 0;
}

static __always_inline void remember_listener(struct bpf_sock_ops *skops)
{
	struct bpf_sock *bsk = skops->sk;
	struct sa_listener l = {};
	struct sa_listen_key k;
	struct tcp_sock *tp;
	__u32 tgid;

	if (!bsk)
		return;
	tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return;
	listen_key(skops, skops->local_port, &k);
	l.sk_addr = (__u64)(unsigned long)tp;
	/*
	 * listen() runs in its caller's context: that executable reads the
	 * children, unless it is PID 1 handing the socket to another program
	 * (socket activation), which accepts and reads them unseen.
	 */
	if (sa_current_exe(&l.exe, &tgid) && tgid != 1)
		sa_exe_record(&l.exe);
	else
		l.flags |= SA_LF_EXE_UNKNOWN;
	/* Latest listener on the port wins (SO_REUSEPORT groups share a mode). */
	bpf_map_update_elem(&sockaccel_listeners, &k, &l, BPF_ANY);
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
				  BPF_SOCK_OPS_STATE_CB_FLAG);
}

/* The listener a passive child is being accepted on, if it was seen. */
static __always_inline struct sa_listener *listener_of(struct bpf_sock_ops *skops)
{
	struct sa_listen_key k;

	listen_key(skops, skops->local_port, &k);
	return bpf_map_lookup_elem(&sockaccel_listeners, &k);
}

/*
 * A passive child has no struct socket until accept(): the listener's
 * current mode is the best hint of how it will be read. 1 nonblocking,
 * 0 blocking, -1 unknown.
 */
static __always_inline int listener_nonblocking(const struct sa_listener *l)
{
	struct tcp_sock *ltp;

	/*
	 * The listener is alive: it is the socket this child is being
	 * accepted on, and its entry leaves at its close (on_state_change).
	 */
	ltp = sa_tcp_sock_at(l->sk_addr);
	if (SA_RD(ltp, inet_conn.icsk_inet.sk.__sk_common.skc_state) != TCP_LISTEN)
		return -1;
	return sa_file_nonblocking(ltp);
}

/*
 * Who will read a passive child: the executable that called listen(),
 * unless a child of that listener was read with splice() already or the
 * listener was made by PID 1 for another program. A listener that was
 * not seen (it listened before the load) is unknown: unknown is unsafe.
 */
static __always_inline __u32 child_reader_verdict(const struct sa_config *cfg,
						  const struct sa_listener *l)
{
	if (!l || (l->flags & SA_LF_EXE_UNKNOWN))
		return SA_R_READER_UNKNOWN;
	if (l->flags & SA_LF_SPLICED)
		return SA_R_SPLICE_READER;
	if (l->flags & SA_LF_ZEROCOPY_RX)
		return SA_R_ZEROCOPY_READER;
	return sa_reader_verdict(cfg, &l->exe);
}

/* One more connection for an executable's probation (saturating). */
static __always_inline void count_conn(const struct sa_exe_key *k)
{
	struct sa_exe *e = k->ino ? sa_exe_record(k) : NULL;

	if (e && e->conns != 0xffffffff)
		__sync_fetch_and_add(&e->conns, 1);
}

/*
 * The short_conns statistics of a client executable's connections to the
 * listener on port (in this socket's netns), created if asked; NULL if
 * that listener was not seen, or (not creating) if they were counted for
 * an earlier listener on the port.
 */
static __always_inline struct sa_short *short_stats(struct bpf_sock_ops *skops, __u16 port,
						    const struct sa_exe_key *client, bool create)
{
	struct sa_short_key k = {};
	struct sa_listener *l;
	struct sa_short *s, n = {};

	if (!client->ino)
		return NULL;
	listen_key(skops, port, &k.listener);
	l = bpf_map_lookup_elem(&sockaccel_listeners, &k.listener);
	if (!l)
		return NULL;
	k.client = *client;
	s = bpf_map_lookup_elem(&sockaccel_short, &k);
	if (s && s->listener_addr == l->sk_addr)
		return s;
	if (!create)
		return NULL;
	n.listener_addr = l->sk_addr;
	bpf_map_update_elem(&sockaccel_short, &k, &n, BPF_ANY);
	return bpf_map_lookup_elem(&sockaccel_short, &k);
}

/*
 * A client connecting to a listener in its own netns, from an executable
 * whose connections to it sent fewer than SA_SHORT_MSGS messages per
 * socket on average, stays on TCP; one connection in SA_SHORT_SAMPLE_EVERY
 * is inserted anyway so the average follows the traffic. The server end
 * follows its client (inserted only if the client is), so both ends
 * always agree. Decided once per connection, at connect (note_reader()):
 * such a client gets no sk_storage, only SA_SHORT_MARK, by which its
 * establishment counts the reason.
 */
static __always_inline bool short_connections(struct bpf_sock_ops *skops,
					      const struct sa_config *cfg,
					      const struct sa_exe_key *client)
{
	struct sa_short *s;

	if (!cfg->short_conns)
		return false;
	s = short_stats(skops, sa_remote_port(skops), client, false);
	if (!s || s->samples < SA_SHORT_MIN_SAMPLES || s->avg_msgs >= SA_SHORT_MSGS * SA_AVG_ONE)
		return false;
	return s->skipped++ % SA_SHORT_SAMPLE_EVERY != 0;
}

/*
 * tcp_bpf_recvmsg() (net/ipv4/tcp_bpf.c) returns -EAGAIN when a blocking
 * reader is woken without data (signal, its own FIN acked, write space),
 * and ignores MSG_WAITALL and SO_RCVLOWAT for queued redirected bytes. A
 * blocking socket must never get that recvmsg: a final reason (a client
 * does not join later, sa_may_join_later()).
 */
static __always_inline __u32 client_reads_nonblocking(struct tcp_sock *tp,
						      const struct sa_config *cfg)
{
	if (cfg->kernel_flags & SA_KF_RECV_WAITS_SAFELY)
		return SA_R_NONE;
	return sa_file_nonblocking(tp) == 0 ? SA_R_BLOCKING : SA_R_NONE;
}

/*
 * TCP_CONNECT_CB runs in connect()'s own context (tcp_connect()), the one
 * place a client socket and the program that will read it meet; the
 * established callback may run in softirq. Every connection of an
 * attached cgroup counts for its executable's probation (and makes it
 * known), but only one that can be inserted gets sk_storage: a blocking
 * connect() is still blocking at establishment (it sleeps in
 * inet_wait_for_connect() until then), so client_reads_nonblocking() will
 * pass it, and a short connection stays on TCP; creating their sk_storage
 * (bpf_local_storage_alloc(), then bpf_sk_storage_free() at close:
 * measured 1.1 us of a blocking connection's 1.5 us in this program)
 * would buy nothing. Should it be made nonblocking meanwhile (by another
 * thread, or after a connect() interrupted by a signal), its reader is
 * unknown: passed. Without sk_storage nothing marks a second attached
 * ancestor's run: nested attachments count such a connection once per
 * attachment.
 */
static __always_inline void note_reader(struct bpf_sock_ops *skops)
{
	struct sa_config *cfg = sa_config();
	struct bpf_sock *bsk = skops->sk;
	struct sa_sock_state *st;
	struct sa_exe_key exe;
	struct tcp_sock *tp;
	__u64 cgroup_id;

	if (!cfg || !cfg->enabled || !bsk)
		return;
	tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp || !sa_cgroup_slot(sa_sk(tp), &cgroup_id))
		return;
	if (!sa_current_exe(&exe, NULL))
		return;
	if (client_reads_nonblocking(tp, cfg) != SA_R_NONE) {
		count_conn(&exe);
		return;
	}
	if (short_connections(skops, cfg, &exe)) {
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | SA_SHORT_MARK);
		count_conn(&exe);
		return;
	}
	st = bpf_sk_storage_get(&sockaccel_sock_states, bsk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	/* Nested attachments run this once per attached ancestor. */
	if (!st || (st->flags & SA_SF_READER_KNOWN))
		return;
	st->reader = exe;
	st->flags |= SA_SF_READER_KNOWN;
	count_conn(&exe);
}

/*
 * At close: fold what this socket sent into the short_conns average of its
 * listener and client executable (a server end: its client's, which its
 * record kept from the client's at establishment). An inserted socket
 * counts its messages (st->msgs, one per sendmsg() its sk_msg program
 * saw). A candidate that never joined ran no sk_msg program: its data
 * segments on TCP stand in (tcp_sock.data_segs_out; with TCP_NODELAY one
 * per small send, fewer where Nagle or autocork coalesced). Without that
 * sample a program whose connections are all candidates (its executable
 * on probation, a blocking listener) would never be judged short, and
 * each of its short connections would pay a candidate's callbacks and
 * join-hook lookups for nothing.
 */
static __always_inline void account_short(struct bpf_sock_ops *skops, const struct sa_sock_state *st,
					  const struct sa_exe_key *client, __u32 msgs)
{
	bool server = st->key.role == SA_ROLE_SERVER;
	__u32 sample = (msgs > 0xffff ? 0xffff : msgs) * SA_AVG_ONE;
	struct sa_short *s;

	s = short_stats(skops, server ? st->local_port : st->remote_port, client, true);
	if (!s)
		return;
	s->avg_msgs = s->samples ? s->avg_msgs - s->avg_msgs / SA_AVG_WEIGHT + sample / SA_AVG_WEIGHT
				 : sample;
	if (s->samples < 0xffffffff)
		s->samples++;
}

static __always_inline void count_reason(__u32 slot, __u32 reason)
{
	sa_count(slot, SA_C_REASON_BASE + reason, 1);
}

/* What decide_connection() learns about a new connection. */
struct new_conn {
	struct sa_sock_state st;	/* the socket's state, if it is kept */
	struct sa_listener *listener;	/* server end: its listener, if seen */
	struct sa_record *client;	/* server end: the client end's record */
	__u64 cgroup_id;
	int listener_nb;		/* server end: 1 nonblocking, 0 not, -1 unknown */
	bool active;			/* client end */
	bool reader_known;		/* client end: note_reader() kept it */
};

/*
 * The first reason a new connection may not be inserted now, and whether
 * any reason against it is final (cannot go away: no later join). The
 * first reason is what is counted and traced.
 */
struct verdict {
	__u32 first;
	bool final;
};

/* Note a check's result; true once a final reason makes the rest moot. */
static __always_inline bool note_reason(struct verdict *v, __u32 reason)
{
	if (reason == SA_R_NONE)
		return false;
	if (v->first == SA_R_NONE)
		v->first = reason;
	if (!sa_may_join_later(reason))
		v->final = true;
	return v->final;
}

/*
 * A client's ACTIVE_ESTABLISHED callback runs before it sends the ACK
 * that establishes the server end (tcp_finish_connect()), so a local
 * client in an attached cgroup has its record by now. No record: the
 * client is remote or not accelerated, and a psock here would only slow
 * this socket down (tcp_bpf's pass path costs about half of plain TCP's
 * throughput).
 */
static __always_inline __u32 client_end_verified(struct new_conn *nc, const struct sa_config *cfg)
{
	struct sa_conn_key client_key;

	sa_peer_key(&nc->st.key, &client_key);
	nc->client = bpf_map_lookup_elem(&sockaccel_records, &client_key);
	if (!nc->client)
		return SA_R_PEER_MISSING;
	return verify_peer(&nc->st, nc->client, cfg);
}

/*
 * A passive child has no file until accept(): its listener's mode is the
 * hint (client_reads_nonblocking() says why blocking matters).
 */
static __always_inline __u32 reads_nonblocking(struct tcp_sock *tp, struct new_conn *nc,
					       const struct sa_config *cfg)
{
	if (nc->active)
		return client_reads_nonblocking(tp, cfg);
	if (cfg->kernel_flags & SA_KF_RECV_WAITS_SAFELY)
		return SA_R_NONE;
	nc->listener_nb = nc->listener ? listener_nonblocking(nc->listener) : -1;
	return nc->listener_nb == 0 ? SA_R_LISTENER_BLOCKING : SA_R_NONE;
}

/* Every rule for a new connection, in the order reasons are counted. */
static __always_inline struct verdict insert_verdict(struct bpf_sock_ops *skops, struct tcp_sock *tp,
						     struct new_conn *nc,
						     const struct sa_config *cfg)
{
	struct verdict v = {};
	__u32 r;

	if (!nc->active && note_reason(&v, client_end_verified(nc, cfg)))
		return v;
	/* TCP_REPAIR can set sequence numbers at will: never trust its keys. */
	if (note_reason(&v, SA_RD_BITS(tp, repair) ? SA_R_REPAIR : SA_R_NONE))
		return v;
	/* A ULP, SO_ZEROCOPY or transmit timestamps from the start. */
	if (note_reason(&v, sa_tx_mode_reason(tp)))
		return v;
	if (note_reason(&v, policy_allows(nc->st.slot, &nc->st) ? SA_R_NONE : SA_R_POLICY))
		return v;
	if (note_reason(&v, reads_nonblocking(tp, nc, cfg)))
		return v;
	/* Decided at connect (short_connections()). */
	if (nc->active && !nc->reader_known &&
	    note_reason(&v, skops->bpf_sock_ops_cb_flags & SA_SHORT_MARK ?
			    SA_R_SHORT_CONNS : SA_R_NONE))
		return v;
	/* The reader must be known not to read with splice() (guard.bpf.c). */
	r = nc->active ? sa_reader_verdict(cfg, &nc->st.reader) : child_reader_verdict(cfg, nc->listener);
	if (note_reason(&v, r))
		return v;
	/* Its client end may still join: follow it in then. */
	if (!nc->active && nc->client && (nc->client->flags & SA_RF_CANDIDATE))
		note_reason(&v, SA_R_PEER_NOT_JOINED);
	return v;
}

/* Publish a socket's own record (struct sa_record). 0 on success. */
static __always_inline int publish_record(struct tcp_sock *tp, struct sa_sock_state *st, __u32 flags,
					  const struct new_conn *nc)
{
	__u32 zero = 0;
	struct sa_record *rec = bpf_map_lookup_elem(&sockaccel_scratch, &zero);

	if (!rec)
		return -1;
	__builtin_memset(rec, 0, sizeof(*rec));
	rec->sk_addr = (__u64)(unsigned long)tp;
	rec->cookie = st->cookie;
	rec->netns_cookie = st->netns_cookie;
	rec->flags = flags;
	rec->reader = st->reader;
	if (!nc->active && nc->client)
		rec->peer_reader = nc->client->reader;
	rec->family = st->family;
	rec->local_port = st->local_port;
	rec->remote_port = st->remote_port;
	__builtin_memcpy(rec->local_ip6, st->local_ip6, sizeof(rec->local_ip6));
	__builtin_memcpy(rec->remote_ip6, st->remote_ip6, sizeof(rec->remote_ip6));
	if (bpf_map_update_elem(&sockaccel_records, &st->key, rec, BPF_ANY))
		return -1;
	st->flags |= SA_SF_RECORD;
	return 0;
}

/*
 * The callbacks an inserted socket or a candidate needs. STATE: count the
 * close, feed the listener's statistics, forget the record. WRITE_HDR_OPT:
 * a callback on every segment it transmits (no option bytes are reserved),
 * where maybe_leave() runs; a candidate needs it already, since the join
 * hook (a tc program) cannot set callback flags.
 */
static __always_inline void want_callbacks(struct bpf_sock_ops *skops)
{
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
				  BPF_SOCK_OPS_STATE_CB_FLAG |
				  BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
}

/*
 * A passive child inherits its listener's STATE callback flag
 * (sk_clone_lock() copies the tcp_sock, and nothing clears the flags
 * before inet_csk_prepare_for_destroy_sock()): four runs of this program
 * per connection that a child passed for good does not need.
 */
static __always_inline void no_callbacks(struct bpf_sock_ops *skops)
{
	bpf_sock_ops_cb_flags_set(skops, 0);
}

static __always_inline void insert_connection(struct bpf_sock_ops *skops, struct bpf_sock *bsk,
					      struct tcp_sock *tp, struct new_conn *nc,
					      const struct sa_config *cfg)
{
	struct sa_sock_state *st;

	st = bpf_sk_storage_get(&sockaccel_sock_states, bsk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return;
	*st = nc->st;
	/*
	 * The public record first: a peer that finds the key finds this too.
	 * A child of a nonblocking listener may take redirected bytes before
	 * accept(): event-driven servers accept nonblocking (accept4
	 * SOCK_NONBLOCK, or O_NONBLOCK before the first read).
	 */
	if (publish_record(tp, st, nc->listener_nb == 1 ? SA_RF_LISTENER_NB : 0, nc)) {
		sa_count(st->slot, SA_C_INSERT_FAILED, 1);
		return;
	}
	/* NOEXIST: a cookie is never reused; a second attachment's run stops above. */
	if (bpf_sock_hash_update(skops, &sockaccel_socks, &st->cookie, BPF_NOEXIST)) {
		bpf_map_delete_elem(&sockaccel_records, &st->key);
		st->flags &= ~SA_SF_RECORD;
		sa_count(st->slot, SA_C_INSERT_FAILED, 1);
		return;
	}
	st->flags |= SA_SF_INSERTED;
	st->last_reason = SA_R_UNDECIDED;
	st->inserted_ns = bpf_ktime_get_ns();
	sa_count(st->slot, SA_C_SOCKS_ADDED, 1);
	want_callbacks(skops);
	if (cfg->trace)
		sa_emit(st, SA_EV_ACCELERATED, SA_R_NONE, nc->cgroup_id);
}

/*
 * Passed now for a reason that can go away, in a network namespace a
 * join hook watches: keep its state and a record marked as a candidate,
 * and let the join hook insert it later (join.bpf.c). True if it is one.
 */
static __always_inline bool make_candidate(struct bpf_sock_ops *skops, struct bpf_sock *bsk,
					   struct tcp_sock *tp, struct new_conn *nc, __u32 reason)
{
	struct sa_sock_state *st;

	if (!sa_join_hooked(nc->st.netns_cookie)) {
		sa_count(nc->st.slot, SA_C_JOIN_UNHOOKED, 1);
		return false;
	}
	st = bpf_sk_storage_get(&sockaccel_sock_states, bsk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return false;
	*st = nc->st;
	if (publish_record(tp, st, SA_RF_CANDIDATE, nc))
		return false;
	st->last_reason = SA_R_UNDECIDED;
	want_callbacks(skops);
	sa_become_candidate(st, NULL, reason, 0);
	return true;
}

static __always_inline void decide_connection(struct bpf_sock_ops *skops, bool active)
{
	struct sa_config *cfg = sa_config();
	struct new_conn nc = { .listener_nb = -1, .active = active };
	struct bpf_sock *bsk = skops->sk;
	struct sa_sock_state *st;
	struct tcp_sock *tp;
	struct verdict v;
	__u32 slot;

	if (!cfg || !cfg->enabled || !bsk)
		return;
	if (skops->family != AF_INET && skops->family != AF_INET6)
		return;
	tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return;
	/*
	 * Slot 0: no attached ancestor found (deeper than
	 * SA_MAX_CGROUP_DEPTH, or a cgroup id that changed): not ours.
	 */
	slot = sa_cgroup_slot(sa_sk(tp), &nc.cgroup_id);
	if (!slot)
		return;
	/*
	 * A cgroup and its child both attached (BPF_F_ALLOW_MULTI) run this
	 * program twice per socket: the first run decides, the second must
	 * not undo it (sock_hash_update() refuses a duplicate key).
	 * Decided on the stack until then: only a client whose reader
	 * note_reader() recorded has sk_storage before.
	 */
	st = bpf_sk_storage_get(&sockaccel_sock_states, bsk, 0, 0);
	if (st && (st->flags & (SA_SF_INSERTED | SA_SF_RECORD)))
		return;
	sa_count(slot, SA_C_SOCKS_SEEN, 1);
	if (active) {
		nc.reader_known = st && (st->flags & SA_SF_READER_KNOWN);
		if (nc.reader_known)
			nc.st.reader = st->reader;
	} else {
		nc.listener = listener_of(skops);
		if (nc.listener && !(nc.listener->flags & SA_LF_EXE_UNKNOWN)) {
			nc.st.reader = nc.listener->exe;
			count_conn(&nc.st.reader);
		}
	}
	nc.st.slot = slot;
	nc.st.netns_cookie = bpf_get_netns_cookie(skops);
	nc.st.cookie = bpf_get_socket_cookie(skops);
	fill_addresses(skops, &nc.st);
	sa_conn_key(&nc.st.key, active, skops->snd_una, skops->rcv_nxt,
		    skops->bytes_acked, skops->bytes_received);

	v = insert_verdict(skops, tp, &nc, cfg);
	if (v.first == SA_R_NONE) {
		insert_connection(skops, bsk, tp, &nc, cfg);
		return;
	}
	count_reason(slot, v.first);
	if (cfg->trace)
		sa_emit(&nc.st, SA_EV_PASSED, v.first, nc.cgroup_id);
	if (!v.final && make_candidate(skops, bsk, tp, &nc, v.first))
		return;
	if (active)
		return;
	no_callbacks(skops);
	/* Tell the client end it will never be paired: it leaves the sockhash. */
	if (nc.client)
		__sync_fetch_and_or(&nc.client->flags, SA_RF_DECLINED);
}

/*
 * Called for every segment an inserted socket or a candidate transmits:
 * the place where a socket leaves the sockhash, restoring tcp_recvmsg()/
 * tcp_sendmsg(). Why leave: it is read in blocking mode now (fcntl()
 * after a nonblocking connect), or sk_msg.bpf.c asked (no peer will
 * pair, or its sends stayed on TCP, where tcp_bpf's pass path is slower
 * than plain TCP).
 *
 * Deleting a socket from the sockhash discards its unread redirected bytes
 * and any redirect still on its way (sk_psock_drop(), and
 * sk_psock_queue_msg() once the psock is stopped), so:
 *  - if no peer ever announced a redirect to it (SA_RF_GOT_REDIRECT), a
 *    compare-and-swap on its record decides between the two: leave now;
 *  - otherwise raise SA_LEAVING_BEACON, after which every verdict of the
 *    peer passes, and leave only once the peer is seen outside sendmsg()
 *    (no verdict taken before the beacon can still be in flight) and
 *    nothing redirected is unread. Both sides order their write before
 *    their read with a full barrier (Dekker), so one of them sees the
 *    other. Until then the socket stays and tries again next segment.
 * A socket that left for a reason that can go away becomes a candidate
 * and may rejoin (join.bpf.c).
 */
static __always_inline __u32 leave_reason_now(struct sa_sock_state *st, struct tcp_sock *tp,
					      const struct sa_config *cfg,
					      struct sa_record **peer_rec)
{
	struct sa_conn_key peer_key;
	__u32 reason;

	if (st->flags & SA_SF_LEAVE_REQ)
		return st->leave_reason;
	if (!(cfg->kernel_flags & SA_KF_RECV_WAITS_SAFELY) && sa_file_nonblocking(tp) == 0)
		return SA_R_SELF_BLOCKING;
	/* Read with splice(), sent urgent data, or forced out. */
	reason = sa_guard_reason(st, cfg);
	if (reason != SA_R_NONE)
		return reason;
	/*
	 * A receiver whose sender left: every leaver raises the beacon until
	 * it is out, read through the paired address when we have one (no
	 * map lookup per segment); a socket that never sent looks at its
	 * peer's record instead.
	 */
	if (st->peer_addr) {
		struct tcp_sock *peer = sa_tcp_sock_at(st->peer_addr);

		return SA_RD(peer, bpf_sock_ops_cb_flags) & SA_LEAVING_BEACON ? SA_R_PEER_GONE
									       : SA_R_NONE;
	}
	sa_peer_key(&st->key, &peer_key);
	*peer_rec = bpf_map_lookup_elem(&sockaccel_records, &peer_key);
	if (*peer_rec && ((*peer_rec)->flags & SA_RF_LEFT) && !((*peer_rec)->flags & SA_RF_CANDIDATE))
		return SA_R_PEER_GONE;
	return SA_R_NONE;
}

/* The wait before a socket that left may rejoin: doubled at each leave. */
static __always_inline __u64 rejoin_backoff(struct sa_sock_state *st, __u32 reason)
{
	__u64 wait;

	if (reason == SA_R_PEER_NOT_JOINED)
		return 0;	/* not a flap: its peer was not in yet */
	/* In for a good while since the last rejoin: not flapping either. */
	if (!st->rejoin_backoff_ns ||
	    bpf_ktime_get_ns() - st->inserted_ns > 8 * SA_REJOIN_BACKOFF_MAX_NS)
		st->rejoin_backoff_ns = SA_REJOIN_BACKOFF_NS;
	wait = st->rejoin_backoff_ns;
	st->rejoin_backoff_ns = wait * 2 > SA_REJOIN_BACKOFF_MAX_NS ? SA_REJOIN_BACKOFF_MAX_NS : wait * 2;
	return wait;
}

/*
 * A direction back on TCP returns to the fast path only once its stack
 * drained (sk_msg.bpf.c, stack_drained()). A sender that never pauses
 * writes again whenever there is room, so when it writes, bytes are
 * still unsent (its window is full) and wait_for_drain() cannot help:
 * only this sender could send them. Once a paired direction fell back,
 * its sender's TCP_NOTSENT_LOWAT is 1 (pause_sender()):
 * tcp_stream_memory_free() refuses a write while any byte is unsent, so
 * tcp_bpf_sendmsg() (and poll()'s POLLOUT) hold its next write until all
 * it queued is sent, and that write finds every byte delivered, which
 * wait_for_drain() then sees read. Writes are held, never refused: what
 * a slower network does. It acts on nothing while the direction is on the
 * fast path (no byte is unsent). The socket's own value is kept, shown to
 * getsockopt() meanwhile and dropped when the program sets one
 * (sockopt.bpf.c), and put back when it leaves the sockhash.
 * bpf_setsockopt() is allowed here: HDR_OPT_LEN_CB runs with the socket
 * locked (is_locked_tcp_sock_ops()).
 */
#define SA_SOL_TCP		6	/* uapi/linux/socket.h */
#define SA_TCP_NOTSENT_LOWAT	25	/* uapi/linux/tcp.h */

static __always_inline void pause_sender(struct bpf_sock_ops *skops, struct sa_sock_state *st,
					 struct tcp_sock *tp)
{
	int one = 1;

	st->flags &= ~SA_SF_PAUSE_REQ;
	st->saved_lowat = SA_RD(tp, notsent_lowat);
	if (bpf_setsockopt(skops, SA_SOL_TCP, SA_TCP_NOTSENT_LOWAT, &one, sizeof(one)))
		return;
	st->flags |= SA_SF_PAUSED;
	sa_count(st->slot, SA_C_SENDER_PAUSES, 1);
}

static __always_inline void unpause_sender(struct bpf_sock_ops *skops, struct sa_sock_state *st)
{
	int v = st->saved_lowat;

	if (!(st->flags & SA_SF_PAUSED))
		return;
	bpf_setsockopt(skops, SA_SOL_TCP, SA_TCP_NOTSENT_LOWAT, &v, sizeof(v));
	st->flags &= ~SA_SF_PAUSED;
}

static __always_inline void maybe_leave(struct bpf_sock_ops *skops)
{
	struct sa_config *cfg = sa_config();
	struct sa_conn_key peer_key;
	struct sa_record *rec, *peer_rec = NULL;
	struct sa_sock_state *st;
	struct bpf_sock *bsk = skops->sk;
	struct tcp_sock *tp;
	__u32 reason, flags;
	bool rejoin;

	if (!bsk || !cfg)
		return;
	st = bpf_sk_storage_get(&sockaccel_sock_states, bsk, 0, 0);
	if (!st)
		goto stop;
	/* Out, and the join hook may insert it: it needs these callbacks then. */
	if (st->flags & (SA_SF_CANDIDATE | SA_SF_JOINING))
		return;
	if (!(st->flags & SA_SF_INSERTED) || (st->flags & SA_SF_LEFT))
		goto stop;
	tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return;
	reason = leave_reason_now(st, tp, cfg, &peer_rec);
	if (reason == SA_R_NONE) {
		/*
		 * A reason that went away before it could leave (it turned
		 * blocking, then nonblocking again): the beacon it raised would
		 * make its peer pass and leave, again and again, for good.
		 */
		if (skops->bpf_sock_ops_cb_flags & SA_LEAVING_BEACON)
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags &
						  ~SA_LEAVING_BEACON);
		if ((st->flags & (SA_SF_PAUSE_REQ | SA_SF_PAUSED)) == SA_SF_PAUSE_REQ)
			pause_sender(skops, st, tp);
		return;		/* nothing else to do; look again next segment */
	}

	rec = bpf_map_lookup_elem(&sockaccel_records, &st->key);
	if (!rec)
		goto stop;	/* no record to coordinate with: stay */
	/* Raised by every leaver: its peer follows it out (above). */
	if (!(skops->bpf_sock_ops_cb_flags & SA_LEAVING_BEACON))
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
					  SA_LEAVING_BEACON);
	flags = rec->flags;
	if (flags & SA_RF_GOT_REDIRECT) {
		sa_full_barrier(&st->passed_run);
		if (!peer_rec) {
			sa_peer_key(&st->key, &peer_key);
			peer_rec = bpf_map_lookup_elem(&sockaccel_records, &peer_key);
		}
		/*
		 * No record: the peer closed (on_state_change()). A peer that
		 * sent urgent data when none of its redirects was in flight
		 * passes every verdict since (guard.bpf.c): no need to see it
		 * outside sendmsg().
		 */
		if (peer_rec && !(peer_rec->flags & SA_RF_QUIESCED) &&
		    !sa_peer_idle(sa_tcp_sock_at(peer_rec->sk_addr)))
			return;
		if (sa_psock_has_unread(sa_psock(tp)))
			return;	/* unread (or unknown): let the reader drain it */
	}
	/* Left and, if it may come back, a candidate: one change, seen whole. */
	rejoin = sa_may_rejoin(reason) && sa_join_hooked(st->netns_cookie);
	if (__sync_val_compare_and_swap(&rec->flags, flags,
					flags | SA_RF_LEFT | (rejoin ? SA_RF_CANDIDATE : 0)) != flags)
		return;		/* a peer announced meanwhile: decide again */
	bpf_map_delete_elem(&sockaccel_socks, &st->cookie);
	unpause_sender(skops, st);
	st->leave_reason = reason;
	st->flags |= SA_SF_LEFT;
	sa_count(st->slot, SA_C_SOCKS_LEFT, 1);
	sa_count(st->slot, SA_C_LEAVE_BASE + (reason < SA_R_MAX ? reason : 0), 1);
	if (!rejoin && sa_may_rejoin(reason))
		sa_count(st->slot, SA_C_JOIN_UNHOOKED, 1);
	if (cfg->trace)
		sa_emit(st, SA_EV_LEFT, reason, 0);
	if (rejoin) {
		/*
		 * Out of the sockhash, a peer's redirect fails its lookup:
		 * the beacon has done its work, and must not be carried back
		 * in at a rejoin (the join hook cannot lower it).
		 */
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~SA_LEAVING_BEACON);
		sa_become_candidate(st, NULL, reason, rejoin_backoff(st, reason));
		return;
	}
stop:
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags &
				  ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
}

/*
 * A closing socket's own record goes with it (not another's by the same
 * key); what it knew of its client's executable is kept in *client.
 */
static __always_inline void forget_record(const struct sa_sock_state *st, struct sa_exe_key *client)
{
	struct sa_record *rec = bpf_map_lookup_elem(&sockaccel_records, &st->key);

	if (rec && rec->cookie == st->cookie) {
		*client = rec->peer_reader;
		bpf_map_delete_elem(&sockaccel_records, &st->key);
	}
}

static __always_inline void on_state_change(struct bpf_sock_ops *skops)
{
	struct sa_sock_state *st;
	struct bpf_sock *bsk = skops->sk;
	struct sa_exe_key client = {};
	struct sa_config *cfg;
	__u32 old;

	/* args[0] old state, args[1] new state (tcp_set_state()). */
	if (skops->args[1] != TCP_CLOSE || !bsk)
		return;
	if (skops->args[0] == TCP_LISTEN) {
		struct sa_listen_key k;

		listen_key(skops, skops->local_port, &k);
		bpf_map_delete_elem(&sockaccel_listeners, &k);
		return;
	}
	st = bpf_sk_storage_get(&sockaccel_sock_states, bsk, 0, 0);
	if (!st)
		return;
	/*
	 * Once, however many attachments run. Atomic: the join hook may be
	 * claiming this candidate now, and fails to once this is set.
	 */
	old = __sync_fetch_and_or(&st->flags, SA_SF_CLOSED);
	if (old & SA_SF_CLOSED)
		return;
	sa_end_candidacy(st);
	/* The sockhash entry goes with the socket (sock_map_close/unhash). */
	if (old & SA_SF_RECORD)
		forget_record(st, &client);
	if (st->key.role != SA_ROLE_SERVER)
		client = st->reader;
	if (!(old & SA_SF_INSERTED)) {
		struct tcp_sock *tp = bpf_skc_to_tcp_sock(bsk);

		if (tp)
			account_short(skops, st, &client, SA_RD(tp, data_segs_out));
		return;
	}
	account_short(skops, st, &client, st->msgs);
	sa_count(st->slot, SA_C_SOCKS_CLOSED, 1);
	cfg = sa_config();
	if (cfg && cfg->trace)
		sa_emit(st, SA_EV_CLOSED, SA_R_NONE, 0);
}

SEC("sockops")
int sockaccel_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
		remember_listener(skops);
		break;
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		note_reader(skops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		decide_connection(skops, true);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		decide_connection(skops, false);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		maybe_leave(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		on_state_change(skops);
		break;
	}
	return 1;
}
