/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by sockops.bpf.c and sk_msg.bpf.c. */
#ifndef SOCKACCEL_COMMON_BPF_H
#define SOCKACCEL_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.bpf.h"

#define AF_INET		2
#define AF_INET6	10
/* O_NONBLOCK as on x86, arm64, riscv (asm-generic/fcntl.h). */
#define SA_O_NONBLOCK	04000
/* sk_user_data carries flag bits below the psock pointer (include/net/sock.h). */
#define SA_SK_USER_DATA_PTRMASK	(~7UL)

/* Generic kfunc, available to every program type (kernel/bpf/helpers.c). */
extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id) __ksym;

/*
 * A tcp_sock known only by its address (struct sa_peer.sk_addr). Loads
 * through the result are fault-safe (PROBE_MEM): a stale address reads
 * garbage, never faults, so callers confirm the socket is still alive some
 * other way before acting on what they read.
 */
static __always_inline struct tcp_sock *sa_tcp_sock_at(__u64 addr)
{
	return bpf_rdonly_cast((void *)(unsigned long)addr,
			       bpf_core_type_id_kernel(struct tcp_sock));
}

#define SA_TCP_CLOSE		7
#define SA_TCP_LISTEN		10

static __always_inline struct sa_config *sa_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sockaccel_config, &zero);
}

static __always_inline void sa_count(__u32 slot, __u32 counter, __u64 n)
{
	struct sa_counters *c = bpf_map_lookup_elem(&sockaccel_stats, &slot);

	if (c && counter < SA_C_MAX)
		c->c[counter] += n;	/* per-CPU: no atomics needed */
}

static __always_inline struct sock *sa_sk(struct tcp_sock *tp)
{
	return &tp->inet_conn.icsk_inet.sk;
}

/*
 * 1 if the socket's file is O_NONBLOCK, 0 if blocking, -1 if it has no
 * file yet (a passive child before accept()). Read live on every call:
 * fcntl() can change it at any time.
 */
static __always_inline int sa_file_nonblocking(struct tcp_sock *tp)
{
	struct socket *sock = tp->inet_conn.icsk_inet.sk.sk_socket;
	struct file *file;

	if (!sock)
		return -1;
	file = sock->file;
	if (!file)
		return -1;
	return (file->f_flags & SA_O_NONBLOCK) ? 1 : 0;
}

/*
 * Bytes redirected into this socket and not yet read: psock->msg_tot_len,
 * kept by sk_psock_queue_msg() and __sk_msg_recvmsg() (net/core/skmsg.c).
 * The psock hangs off sk_user_data with flag bits in the low bits.
 * Returns -1 when it cannot be read (no psock, or field absent).
 */
static __always_inline long sa_unread_redirected(struct tcp_sock *tp)
{
	unsigned long ud = (unsigned long)tp->inet_conn.icsk_inet.sk.sk_user_data;
	struct sk_psock *psock;

	ud &= SA_SK_USER_DATA_PTRMASK;
	if (!ud || !bpf_core_field_exists(struct sk_psock, msg_tot_len))
		return -1;
	psock = bpf_rdonly_cast((void *)ud, bpf_core_type_id_kernel(struct sk_psock));
	return psock->msg_tot_len;
}

/*
 * Is the peer (known by its tcp_sock) inside sendmsg()/recvmsg() right now?
 * Both hold a reference on their psock for the whole call
 * (tcp_bpf_sendmsg(), tcp_bpf_recvmsg()); a psock in one map and in no
 * call has refcnt 1 (sk_psock_init(), sock_map_link()). A peer with no
 * psock is not in any sockhash and cannot redirect.
 */
static __always_inline bool sa_peer_idle(struct tcp_sock *peer)
{
	unsigned long ud = (unsigned long)peer->inet_conn.icsk_inet.sk.sk_user_data;
	struct sk_psock *psock;

	ud &= SA_SK_USER_DATA_PTRMASK;
	if (!ud)
		return true;
	psock = bpf_rdonly_cast((void *)ud, bpf_core_type_id_kernel(struct sk_psock));
	return psock->refcnt.refs.counter == 1;
}

static __always_inline void sa_emit(struct sa_sock_state *st, __u32 type,
				    __u32 reason, __u64 cgroup_id)
{
	struct sa_event *ev;

	ev = bpf_ringbuf_reserve(&sockaccel_events, sizeof(*ev), 0);
	if (!ev)
		return;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->cgroup_id = cgroup_id;
	ev->bytes_redirected = st->bytes_redirected;
	ev->bytes_passed = st->bytes_passed;
	ev->type = type;
	ev->reason = reason;
	ev->family = st->family;
	ev->role = st->key.role;
	ev->local_port = st->local_port;
	ev->remote_port = st->remote_port;
	__builtin_memcpy(ev->local_ip6, st->local_ip6, sizeof(ev->local_ip6));
	__builtin_memcpy(ev->remote_ip6, st->remote_ip6, sizeof(ev->remote_ip6));
	bpf_ringbuf_submit(ev, 0);
}

#endif /* SOCKACCEL_COMMON_BPF_H */
