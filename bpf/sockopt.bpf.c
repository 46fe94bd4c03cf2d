// SPDX-License-Identifier: GPL-2.0
/*
 * cgroup/setsockopt: options that change how an inserted socket must be
 * served, seen before the kernel applies them
 * (__cgroup_bpf_run_filter_setsockopt() runs this under the socket lock,
 * then the kernel's handler). Attached to every cgroup sock_ops is.
 *
 * Redirected bytes already queued in the psock were judged by the rules
 * of the moment (sk_msg.bpf.c, reader_ok()); an option set later cannot
 * apply to them. So each such option first stops the connection's
 * redirects (stop.bpf.h), and then:
 *  - SO_ZEROCOPY on an inserted socket is refused: tcp_bpf_sendmsg()
 *    copies and reports no MSG_ZEROCOPY completion, and its pass path
 *    numbers completions per pushed fragment, not per call. The refusal
 *    is EOPNOTSUPP, what every socket without zerocopy answers, and every
 *    zerocopy user already handles by copying;
 *  - TCP_ULP (kTLS) on an inserted socket is refused with ENOENT, what a
 *    kernel without the tls module answers (OpenSSL then keeps TLS in
 *    user space, over the fast path): kTLS would hand redirected bytes
 *    to its reader undecrypted, and refuses its keys on a socket with a
 *    psock anyway (do_tls_setsockopt_conf(), EINVAL on 6.1), which this
 *    program cannot remove (the verifier allows no sockhash update or
 *    delete in cgroup/setsockopt: may_update_sockmap()). The executable
 *    is learned (SA_EXE_ULP): its later sockets stay on TCP, with kTLS;
 *  - TCP_REPAIR and SO_PEEK_OFF are refused while redirected bytes are
 *    unread or in flight (CRIU would dump them as missing, a peek offset
 *    would skip nothing), with what a kernel without the feature answers
 *    (EPERM; EOPNOTSUPP: TCP before 6.9); otherwise they go through;
 *  - SO_RCVLOWAT > 1, receive timestamps and TCP_INQ cannot be refused:
 *    they go through, the socket leaves once its queue drained, and bytes
 *    queued before are counted (sockopt_unread);
 *  - transmit timestamps (SO_TIMESTAMPING TX flags): this socket's sends
 *    go through TCP, which makes them, from now on.
 * Receive options and transmit timestamps set on a connected socket also
 * teach the guard about the executable (struct sa_exe): its later
 * sockets stay on TCP.
 */
#define SA_CORE_READS
#include "stop.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Option numbers (asm-generic/socket.h, uapi/linux/tcp.h). */
#define SA_SOL_SOCKET		1
#define SA_SOL_TCP		6
#define SA_IPPROTO_TCP		6
#define SA_SO_RCVLOWAT		18
#define SA_SO_TIMESTAMP_OLD	29
#define SA_SO_TIMESTAMPNS_OLD	35
#define SA_SO_TIMESTAMPING_OLD	37
#define SA_SO_PEEK_OFF		42
#define SA_SO_ZEROCOPY		60
#define SA_SO_TIMESTAMP_NEW	63
#define SA_SO_TIMESTAMPNS_NEW	64
#define SA_SO_TIMESTAMPING_NEW	65
#define SA_TCP_REPAIR		19
#define SA_TCP_ULP		31
#define SA_TCP_INQ		36
#define SA_TCP_NOTSENT_LOWAT	25
#define SA_TCP_REPAIR_ON	1
#define SA_EPERM		1
#define SA_ENOENT		2
#define SA_EOPNOTSUPP		95

/*
 * This runs holding the socket's lock, which a sender inside
 * bpf_tcp_ingress() may be waiting for: a short wait, then a sender still
 * inside sendmsg() counts as in flight.
 */
#define SA_SOCKOPT_WAIT_NS	(20 * 1000ull)

/* What an option asks of an inserted socket. */
struct opt_rule {
	__u32 stop;		/* SA_RF_RX_STOPPED | SA_RF_TX_STOPPED */
	__u32 reason;		/* enum sa_reason */
	__u32 use;		/* SA_EXE_* learned on a connected socket */
	int refuse;		/* errno when unread or in flight; 0: cannot refuse */
	bool always_refuse;	/* refused on any inserted socket */
};

static __always_inline int opt_int(struct bpf_sockopt *ctx)
{
	int *v = ctx->optval;

	if ((void *)(v + 1) > ctx->optval_end)
		return 0;
	return *v;
}

/* The rule for this option and value; false if it changes nothing here. */
static __always_inline bool opt_rule_of(struct bpf_sockopt *ctx, struct opt_rule *r)
{
	int level = ctx->level, name = ctx->optname, val;

	__builtin_memset(r, 0, sizeof(*r));
	if (level == SA_SOL_TCP && name == SA_TCP_ULP) {
		r->reason = SA_R_ULP;
		r->refuse = SA_ENOENT;
		r->always_refuse = true;
		r->use = SA_EXE_ULP;
		return true;
	}
	if (level == SA_SOL_TCP) {
		if (name != SA_TCP_REPAIR && name != SA_TCP_INQ)
			return false;
	} else if (level != SA_SOL_SOCKET) {
		return false;
	}
	val = opt_int(ctx);
	if (level == SA_SOL_TCP && name == SA_TCP_REPAIR) {
		if (val != SA_TCP_REPAIR_ON)
			return false;
		r->stop = SA_RF_RX_STOPPED | SA_RF_TX_STOPPED;
		r->reason = SA_R_REPAIR;
		r->refuse = SA_EPERM;
		return true;
	}
	if (level == SA_SOL_TCP) {	/* TCP_INQ */
		if (!val)
			return false;
		goto rx_option;
	}
	switch (name) {
	case SA_SO_ZEROCOPY:
		if (!val)
			return false;
		r->reason = SA_R_ZEROCOPY_TX;
		r->refuse = SA_EOPNOTSUPP;
		r->always_refuse = true;
		return true;
	case SA_SO_PEEK_OFF:
		if (val < 0)
			return false;
		r->refuse = SA_EOPNOTSUPP;
		goto rx_option;
	case SA_SO_RCVLOWAT:
		if (val <= 1)
			return false;
		goto rx_option;
	case SA_SO_TIMESTAMP_OLD:
	case SA_SO_TIMESTAMPNS_OLD:
	case SA_SO_TIMESTAMP_NEW:
	case SA_SO_TIMESTAMPNS_NEW:
		if (!val)
			return false;
		goto rx_option;
	case SA_SO_TIMESTAMPING_OLD:
	case SA_SO_TIMESTAMPING_NEW:
		/* An int, or struct so_timestamping whose first member is the flags. */
		if (val & SA_SOF_TIMESTAMPING_TX) {
			r->stop = SA_RF_TX_STOPPED;
			r->reason = SA_R_TX_TIMESTAMPS;
			r->use = SA_EXE_TX_TIMESTAMPS;
		}
		if (!(val & SA_SOF_TIMESTAMPING_RX))
			return r->stop != 0;
		r->stop |= SA_RF_RX_STOPPED;
		r->reason = SA_R_RX_OPTIONS;
		r->use |= SA_EXE_RX_OPTIONS;
		return true;
	default:
		return false;
	}
rx_option:
	r->stop = SA_RF_RX_STOPPED;
	r->reason = SA_R_RX_OPTIONS;
	r->use = SA_EXE_RX_OPTIONS;
	return true;
}

static __always_inline void emit_sockopt(const struct sa_sock_state *st, __u32 reason,
					 bool refused)
{
	struct sa_event *ev;

	ev = bpf_ringbuf_reserve(&sockaccel_events, sizeof(*ev), 0);
	if (!ev)
		return;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = bpf_ktime_get_ns();
	ev->type = SA_EV_SOCKOPT;
	ev->reason = reason;
	ev->family = st->family;
	ev->role = st->key.role;
	ev->local_port = st->local_port;
	ev->remote_port = st->remote_port;
	__builtin_memcpy(ev->local_ip6, st->local_ip6, sizeof(ev->local_ip6));
	__builtin_memcpy(ev->remote_ip6, st->remote_ip6, sizeof(ev->remote_ip6));
	ev->unread = refused;
	ev->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, 0);
}

/*
 * TCP_NOTSENT_LOWAT while sock_ops holds it at 1 to let a direction drain
 * (sockops.bpf.c, pause_sender()): the program's own value is what it
 * reads, and one it sets is its own again. The flag that says sock_ops
 * holds the option (SA_SF_PAUSED), 0 for other options.
 */
static __always_inline __u32 held_option(struct bpf_sockopt *ctx)
{
	if (ctx->level == SA_SOL_TCP && ctx->optname == SA_TCP_NOTSENT_LOWAT)
		return SA_SF_PAUSED;
	return 0;
}

/* Under the socket lock, as sock_ops (__cgroup_bpf_run_filter_setsockopt()). */
static __always_inline void held_option_set(struct bpf_sockopt *ctx, __u32 flag)
{
	struct sa_sock_state *st = bpf_sk_storage_get(&sockaccel_sock_states, ctx->sk, 0, 0);

	if (st && (st->flags & flag))
		st->flags &= ~flag;
}

SEC("cgroup/getsockopt")
int sockaccel_getsockopt(struct bpf_sockopt *ctx)
{
	__u32 flag = held_option(ctx);
	struct sa_sock_state *st;
	int *v = ctx->optval;

	if (!flag || !ctx->sk || ctx->retval)
		return 1;
	st = bpf_sk_storage_get(&sockaccel_sock_states, ctx->sk, 0, 0);
	if (!st || !(st->flags & flag) || (void *)(v + 1) > ctx->optval_end)
		return 1;
	*v = st->saved_lowat;
	return 1;
}

SEC("cgroup/setsockopt")
int sockaccel_setsockopt(struct bpf_sockopt *ctx)
{
	struct bpf_sock *bsk = ctx->sk;
	struct sa_sock_state *st;
	struct sa_config *cfg;
	struct opt_rule r;
	struct sa_record *rec;
	struct tcp_sock *tp;
	bool idle, unread;

	if (bsk && held_option(ctx)) {
		held_option_set(ctx, held_option(ctx));
		return 1;
	}
	if (!bsk || bsk->protocol != SA_IPPROTO_TCP || !opt_rule_of(ctx, &r))
		return 1;
	cfg = sa_config();
	if (!cfg)
		return 1;
	/* Learned on any connected socket: probation is where programs show it. */
	if (r.use && bsk->state == TCP_ESTABLISHED && learn_use(r.use))
		sa_guard_bump();
	st = bpf_sk_storage_get(&sockaccel_sock_states, bsk, 0, 0);
	if (!st || !(st->flags & SA_SF_INSERTED) || (st->flags & SA_SF_LEFT))
		return 1;
	if (r.always_refuse) {
		bpf_set_retval(-r.refuse);
		sa_count(st->slot, SA_C_SOCKOPT_REFUSED, 1);
		if (cfg->trace)
			emit_sockopt(st, r.reason, true);
		return 0;
	}
	/* Its own record (inserted with BPF_NOEXIST) holds its address. */
	rec = bpf_map_lookup_elem(&sockaccel_records, &st->key);
	if (!rec)
		return 1;
	tp = sa_tcp_sock_at(rec->sk_addr);
	if (r.stop & SA_RF_RX_STOPPED)
		sa_stop(rec, SA_RF_RX_STOPPED, r.reason);
	if (r.stop & SA_RF_TX_STOPPED)
		sa_stop(rec, SA_RF_TX_STOPPED, r.reason);
	idle = psock_wait(peer_psock(&st->key), false, SA_SOCKOPT_WAIT_NS);
	unread = sa_psock_has_unread(sa_psock(tp));
	if (!(r.stop & SA_RF_RX_STOPPED) || (idle && !unread)) {
		sa_count(st->slot, SA_C_SOCKOPT_STOPS, 1);
		if (cfg->trace)
			emit_sockopt(st, r.reason, false);
		return 1;
	}
	if (r.refuse) {
		bpf_set_retval(-r.refuse);
		sa_count(st->slot, SA_C_SOCKOPT_REFUSED, 1);
		if (cfg->trace)
			emit_sockopt(st, r.reason, true);
		return 0;
	}
	sa_count(st->slot, SA_C_SOCKOPT_STOPS, 1);
	sa_count(st->slot, SA_C_SOCKOPT_UNREAD, 1);
	if (cfg->trace)
		emit_sockopt(st, r.reason, false);
	return 1;
}
