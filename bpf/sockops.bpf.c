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

char LICENSE[] SEC("license") = "GPL";

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
	st->remote_port = bpf_ntohl(skops->remote_port);	/* network order in ctx */
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
 * TCP_CONNECT_CB runs in connect()'s own context (tcp_connect()), the one
 * place a client socket and the program that will read it meet; the
 * established callback may run in softirq. Only sockets in an attached
 * cgroup get sk_storage here.
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
	st = bpf_sk_storage_get(&sockaccel_sock_states, bsk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	/* Nested attachments run this once per attached ancestor. */
	if (!st || (st->flags & SA_SF_READER_KNOWN))
		return;
	st->reader = exe;
	st->flags |= SA_SF_READER_KNOWN;
	count_conn(&exe);
}

/*
 * A client connecting to a listener in its own netns whose connections
 * exchanged fewer than SA_SHORT_MSGS messages per socket on average stays
 * on TCP; one connection in SA_SHORT_SAMPLE_EVERY is inserted anyway so
 * the average follows the traffic. The server end follows its client
 * (inserted only if the client is), so both ends always agree.
 */
static __always_inline bool short_connections(struct bpf_sock_ops *skops,
					      const struct sa_config *cfg, __u16 remote_port)
{
	struct sa_listen_key k;
	struct sa_listener *l;

	if (!cfg->short_conns)
		return false;
	listen_key(skops, remote_port, &k);
	l = bpf_map_lookup_elem(&sockaccel_listeners, &k);
	if (!l || l->samples < SA_SHORT_MIN_SAMPLES ||
	    l->avg_msgs >= SA_SHORT_MSGS * 16)
		return false;
	return l->skipped++ % SA_SHORT_SAMPLE_EVERY != 0;
}

/* At close: fold what this socket sent into its listener's average. */
static __always_inline void account_listener(struct bpf_sock_ops *skops,
					     const struct sa_sock_state *st)
{
	struct sa_listen_key k;
	struct sa_listener *l;
	__u32 sample = st->msgs > 0xffff ? 0xffff * 16 : st->msgs * 16;

	listen_key(skops, st->key.role == SA_ROLE_SERVER ? st->local_port : st->remote_port, &k);
	l = bpf_map_lookup_elem(&sockaccel_listeners, &k);
	if (!l)
		return;
	l->avg_msgs = l->samples ? l->avg_msgs - l->avg_msgs / 8 + sample / 8 : sample;
	if (l->samples < 0xffffffff)
		l->samples++;
}

static __always_inline void count_reason(__u32 slot, __u32 reason)
{
	sa_count(slot, SA_C_REASON_BASE + reason, 1);
}

static __always_inline void decide_connection(struct bpf_sock_ops *skops, bool active)
{
	struct sa_config *cfg = sa_config();
	struct sa_sock_state tmp = {}, *st;
	struct sa_record rec = {}, *client = NULL;
	struct sa_listener *listener = NULL;
	struct sa_conn_key client_key;
	struct bpf_sock *bsk = skops->sk;
	struct tcp_sock *tp;
	__u64 cgroup_id;
	__u32 slot, reason = SA_R_NONE;
	int nb, lnb = -1, err;

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
	slot = sa_cgroup_slot(sa_sk(tp), &cgroup_id);
	if (!slot)
		return;
	sa_count(slot, SA_C_SOCKS_SEEN, 1);

	/*
	 * Decided on the stack: only an inserted socket, or a client whose
	 * reader note_reader() recorded, has sk_storage.
	 */
	/*
	 * A cgroup and its child both attached (BPF_F_ALLOW_MULTI) run this
	 * program twice per socket: the first run decides, the second must
	 * not undo an insertion (sock_hash_update() refuses a duplicate key).
	 */
	st = bpf_sk_storage_get(&sockaccel_sock_states, bsk, 0, 0);
	if (st && (st->flags & SA_SF_INSERTED))
		return;
	if (active) {
		if (st && (st->flags & SA_SF_READER_KNOWN))
			tmp.reader = st->reader;
	} else {
		listener = listener_of(skops);
		if (listener && !(listener->flags & SA_LF_EXE_UNKNOWN)) {
			tmp.reader = listener->exe;
			count_conn(&tmp.reader);
		}
	}
	tmp.slot = slot;
	tmp.netns_cookie = bpf_get_netns_cookie(skops);
	fill_addresses(skops, &tmp);

	sa_conn_key(&tmp.key, active, skops->snd_una, skops->rcv_nxt,
		    skops->bytes_acked, skops->bytes_received);

	/*
	 * A client's ACTIVE_ESTABLISHED callback runs before it sends the ACK
	 * that establishes the server end (tcp_finish_connect()), so a local
	 * client in an attached cgroup has its record by now. No record: the
	 * client is remote or not accelerated, and a psock here would only
	 * slow this socket down (tcp_bpf's pass path costs about half of
	 * plain TCP's throughput).
	 */
	if (!active) {
		sa_peer_key(&tmp.key, &client_key);
		client = bpf_map_lookup_elem(&sockaccel_records, &client_key);
		if (!client) {
			reason = SA_R_PEER_MISSING;
			goto pass;
		}
		reason = verify_peer(&tmp, client, cfg);
		if (reason != SA_R_NONE)
			goto pass;
	}

	/* TCP_REPAIR can set sequence numbers at will: never trust its keys. */
	if (SA_RD_BITS(tp, repair)) {
		reason = SA_R_REPAIR;
		goto pass;
	}
	/* A ULP, SO_ZEROCOPY or transmit timestamps from the start. */
	reason = sa_tx_mode_reason(tp);
	if (reason != SA_R_NONE)
		goto pass;
	if (!policy_allows(slot, &tmp)) {
		reason = SA_R_POLICY;
		goto pass;
	}
	/*
	 * tcp_bpf_recvmsg() (net/ipv4/tcp_bpf.c) returns -EAGAIN when a
	 * blocking reader is woken without data (signal, its own FIN acked,
	 * write space), and ignores MSG_WAITALL and SO_RCVLOWAT for queued
	 * redirected bytes. A blocking socket must never get that recvmsg.
	 */
	if (!(cfg->kernel_flags & SA_KF_RECV_WAITS_SAFELY)) {
		if (active) {
			nb = sa_file_nonblocking(tp);
			if (nb == 0) {
				reason = SA_R_BLOCKING;
				goto pass;
			}
		} else {
			lnb = listener ? listener_nonblocking(listener) : -1;
			if (lnb == 0) {
				reason = SA_R_LISTENER_BLOCKING;
				goto pass;
			}
		}
	}
	/* The reader must be known not to read with splice() (guard.bpf.c). */
	reason = active ? sa_reader_verdict(cfg, &tmp.reader) : child_reader_verdict(cfg, listener);
	if (reason != SA_R_NONE)
		goto pass;
	if (active && short_connections(skops, cfg, tmp.remote_port)) {
		reason = SA_R_SHORT_CONNS;
		goto pass;
	}

	st = bpf_sk_storage_get(&sockaccel_sock_states, bsk, 0,
				BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return;
	*st = tmp;

	/* The public record first: a peer that finds the key finds this too. */
	rec.sk_addr = (__u64)(unsigned long)tp;
	rec.netns_cookie = st->netns_cookie;
	/*
	 * A child of a nonblocking listener may take redirected bytes before
	 * accept(): event-driven servers accept nonblocking (accept4
	 * SOCK_NONBLOCK, or O_NONBLOCK before the first read). Without this a
	 * client that writes right after connect() would put its first bytes
	 * on the stack and, if it never pauses, stay there (rule 1).
	 */
	rec.flags = lnb == 1 ? SA_RF_LISTENER_NB : 0;
	rec.reader = st->reader;
	rec.family = st->family;
	rec.local_port = st->local_port;
	rec.remote_port = st->remote_port;
	__builtin_memcpy(rec.local_ip6, st->local_ip6, sizeof(rec.local_ip6));
	__builtin_memcpy(rec.remote_ip6, st->remote_ip6, sizeof(rec.remote_ip6));
	if (bpf_map_update_elem(&sockaccel_records, &st->key, &rec, BPF_ANY)) {
		sa_count(slot, SA_C_INSERT_FAILED, 1);
		return;
	}
	/* NOEXIST: a duplicate key (never seen in practice) pairs nothing. */
	err = bpf_sock_hash_update(skops, &sockaccel_socks, &st->key, BPF_NOEXIST);
	if (err) {
		bpf_map_delete_elem(&sockaccel_records, &st->key);
		sa_count(slot, SA_C_INSERT_FAILED, 1);
		return;
	}
	st->flags |= SA_SF_INSERTED;
	st->last_reason = SA_R_UNDECIDED;
	st->established_ns = bpf_ktime_get_ns();
	sa_count(slot, SA_C_SOCKS_ADDED, 1);
	/*
	 * STATE: count the close, feed the listener's statistics, trace.
	 * WRITE_HDR_OPT: a callback on every segment this socket transmits
	 * (no option bytes are reserved), where maybe_leave() runs.
	 */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
				  BPF_SOCK_OPS_STATE_CB_FLAG |
				  BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
	if (cfg->trace)
		sa_emit(st, SA_EV_ACCELERATED, SA_R_NONE, cgroup_id);
	return;
pass:
	/* Tell the client end it will never be paired: it leaves the sockhash. */
	if (client)
		__sync_fetch_and_or(&client->flags, SA_RF_DECLINED);
	count_reason(slot, reason);
	if (cfg->trace)
		sa_emit(&tmp, SA_EV_PASSED, reason, cgroup_id);
}

/*
 * Called for every segment an inserted socket transmits: the place where a
 * socket leaves the sockhash, restoring tcp_recvmsg()/tcp_sendmsg(). Why
 * leave: it is read in blocking mode now (fcntl() after a nonblocking
 * connect), or sk_msg.bpf.c asked (no peer will pair, or its sends stayed
 * on TCP, where tcp_bpf's pass path is slower than plain TCP).
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
 */
static __always_inline void maybe_leave(struct bpf_sock_ops *skops)
{
	struct sa_config *cfg = sa_config();
	struct sa_conn_key peer_key;
	struct sa_record *rec, *peer_rec;
	struct sa_sock_state *st;
	struct bpf_sock *bsk = skops->sk;
	struct tcp_sock *tp;
	__u32 reason, flags;

	if (!bsk || !cfg)
		return;
	st = bpf_sk_storage_get(&sockaccel_sock_states, bsk, 0, 0);
	if (!st || !(st->flags & SA_SF_INSERTED) || (st->flags & SA_SF_LEFT))
		goto stop;
	tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return;
	sa_peer_key(&st->key, &peer_key);
	peer_rec = NULL;
	if (st->flags & SA_SF_LEAVE_REQ) {
		reason = st->leave_reason;
	} else if (!(cfg->kernel_flags & SA_KF_RECV_WAITS_SAFELY) && sa_file_nonblocking(tp) == 0) {
		reason = SA_R_SELF_BLOCKING;
	} else if ((reason = sa_guard_reason(st, cfg)) != SA_R_NONE) {
		/* Read with splice(), sent urgent data, or forced out. */
	} else {
		/*
		 * A receiver whose sender left: every leaver raises the
		 * beacon, read through the paired address when we have one
		 * (no map lookup per segment); a socket that never sent
		 * looks at its peer's record instead.
		 */
		if (st->peer_addr) {
			struct tcp_sock *peer = sa_tcp_sock_at(st->peer_addr);

			if (!(SA_RD(peer, bpf_sock_ops_cb_flags) & SA_LEAVING_BEACON))
				return;
		} else {
			peer_rec = bpf_map_lookup_elem(&sockaccel_records, &peer_key);
			if (!peer_rec || !(peer_rec->flags & SA_RF_LEFT))
				return;	/* nothing to do; look again next segment */
		}
		reason = SA_R_PEER_GONE;
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
		if (!peer_rec)
			peer_rec = bpf_map_lookup_elem(&sockaccel_records, &peer_key);
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
	if (__sync_val_compare_and_swap(&rec->flags, flags, flags | SA_RF_LEFT) != flags)
		return;		/* a peer announced meanwhile: decide again */
	bpf_map_delete_elem(&sockaccel_socks, &st->key);
	st->leave_reason = reason;
	st->flags |= SA_SF_LEFT;
	sa_count(st->slot, SA_C_SOCKS_LEFT, 1);
	if (cfg->trace)
		sa_emit(st, SA_EV_LEFT, reason, 0);
stop:
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags &
				  ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
}

static __always_inline void on_state_change(struct bpf_sock_ops *skops)
{
	struct sa_sock_state *st;
	struct bpf_sock *bsk = skops->sk;
	struct sa_config *cfg;

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
	if (!st || !(st->flags & SA_SF_INSERTED) || (st->flags & SA_SF_CLOSED))
		return;
	st->flags |= SA_SF_CLOSED;	/* once, however many attachments run */
	/* The sockhash entry goes with the socket (sock_map_close/unhash). */
	bpf_map_delete_elem(&sockaccel_records, &st->key);
	account_listener(skops, st);
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
