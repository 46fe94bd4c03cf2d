/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Stops: how the guard (guard.bpf.c) and the sockopt program
 * (sockopt.bpf.c) take a connection off the fast path when a socket is
 * about to be used in a way redirected bytes cannot serve, without losing
 * a redirect that was already decided.
 *
 * The handshake with the peer's sk_msg program (Dekker): a stop sets its
 * flag in the socket's own record (struct sa_record), then bumps the guard
 * generation (a fetching atomic: a full barrier), then reads the peer's
 * psock reference count. The peer's tcp_bpf_sendmsg() takes that
 * reference before running the verdict, and the verdict puts a full
 * barrier before reading the generation (sk_msg.bpf.c). Either the peer
 * sees the stop and passes, or the stop sees the peer inside sendmsg()
 * and waits for it to leave; once it has, every redirected byte that will
 * ever arrive here has arrived, and "nothing unread" is final.
 */
#ifndef SOCKACCEL_STOP_BPF_H
#define SOCKACCEL_STOP_BPF_H

#include "common.bpf.h"

/*
 * How long a stop waits for the peer's sender to leave sendmsg(): a
 * verdict taken before the stop may still be queueing its bytes
 * (tcp_bpf_sendmsg() -> bpf_tcp_ingress()), which takes microseconds.
 */
#define SA_STOP_WAIT_NS		(1000 * 1000ull)
#define SA_STOP_WAIT_LOOPS	(1u << 16)

/* The socket's own public record, if it is in sockaccel_socks. */
static __always_inline struct sa_record *record_of(struct sock *sk, struct sa_conn_key *key)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 snd_una = BPF_CORE_READ(tp, snd_una), rcv_nxt = BPF_CORE_READ(tp, rcv_nxt);
	__u64 acked = BPF_CORE_READ(tp, bytes_acked), received = BPF_CORE_READ(tp, bytes_received);
	struct sa_record *rec;
	int i;

	/* Either role: the record's own address tells which is this one. */
	for (i = 0; i < 2; i++) {
		sa_conn_key(key, i == 0, snd_una, rcv_nxt, acked, received);
		rec = bpf_map_lookup_elem(&sockaccel_records, key);
		if (rec && rec->sk_addr == (__u64)(unsigned long)sk)
			return rec;
	}
	return NULL;
}

/* The other end's psock, from its record (NULL: closed or never inserted). */
static __always_inline struct sk_psock *peer_psock(const struct sa_conn_key *key)
{
	struct sa_conn_key pk;
	struct sa_record *prec;

	sa_peer_key(key, &pk);
	prec = bpf_map_lookup_elem(&sockaccel_records, &pk);
	if (!prec)
		return NULL;
	return sa_psock(sa_tcp_sock_at(prec->sk_addr));
}

struct psock_wait {
	struct sk_psock *psock;
	__u64 start;
	__u64 bound;
	bool for_unread;	/* until nothing is unread, else until idle */
};

static __always_inline bool psock_wait_done(const struct psock_wait *w)
{
	return w->for_unread ? !sa_psock_has_unread(w->psock) : sa_psock_idle(w->psock);
}

static long psock_wait_step(__u32 i, struct psock_wait *w)
{
	if (psock_wait_done(w))
		return 1;
	return bpf_ktime_get_ns() - w->start > w->bound;
}

/* Wait up to bound_ns for a psock to be idle, or drained. */
static __always_inline bool psock_wait(struct sk_psock *psock, bool for_unread, __u64 bound_ns)
{
	struct psock_wait w = { .psock = psock, .for_unread = for_unread, .bound = bound_ns };

	if (psock_wait_done(&w))
		return true;
	if (!bound_ns)
		return false;
	w.start = bpf_ktime_get_ns();
	bpf_loop(SA_STOP_WAIT_LOOPS, psock_wait_step, &w, 0);
	return psock_wait_done(&w);
}

/*
 * Put a stop (SA_RF_RX_STOPPED or SA_RF_TX_STOPPED) on a socket's own
 * record. True if it is the first of that kind. The reason is written
 * before the flag, whose fetching atomic orders it.
 */
static __always_inline bool sa_stop(struct sa_record *rec, __u32 flag, __u32 reason)
{
	__u32 old;

	if (!rec->stop_reason)
		rec->stop_reason = reason;
	old = __sync_fetch_and_or(&rec->flags, flag);
	sa_guard_bump();
	return !(old & flag);
}

/*
 * Learn a use (SA_EXE_*) of the current executable. True if it is new, so
 * senders to its sockets look again (the guard generation).
 */
static __always_inline bool learn_use(__u32 use)
{
	struct sa_exe_key exe;
	struct sa_exe *e;
	__u32 old;

	if (!sa_current_exe(&exe, NULL))
		return false;
	e = sa_exe_record(&exe);
	if (!e)
		return false;
	old = __sync_fetch_and_or(&e->flags, use);
	if (use == SA_EXE_SPLICES) {
		if (e->splices != 0xffffffff)
			e->splices++;
		e->last_splice_ns = bpf_ktime_get_ns();
	}
	return !(old & use);
}

#endif /* SOCKACCEL_STOP_BPF_H */
