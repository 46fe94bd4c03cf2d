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

/*
 * Kernel objects known only by their address: a peer's tcp_sock (struct
 * sa_peer.sk_addr), a psock (sk_user_data). Every read through them is
 * fault-safe: a stale address reads garbage, never faults, so callers
 * confirm the object is still alive some other way before acting on it.
 * SA_AT(type, addr) names the object, SA_RD(p, field) reads a field.
 *
 * 6.2+ has the bpf_rdonly_cast() kfunc (kernel/bpf/helpers.c, every
 * program type): the result takes direct loads, which the JIT makes
 * PROBE_MEM loads, one instruction each on the per-message path. 6.1 has
 * no such kfunc: the same source built with -DSA_CORE_READS (the *_core
 * objects, chosen by the loader from the kernel's BTF) reads each field
 * with bpf_probe_read_kernel() (CO-RE relocated), a helper call each.
 * Pointers from bpf_skc_to_tcp_sock() take either form; bitfields always
 * go through SA_RD_BITS().
 */
#ifdef SA_CORE_READS
#define SA_AT(type, addr)	((type *)(unsigned long)(addr))
#define SA_RD(p, f)		BPF_CORE_READ(p, f)
#define SA_RD_ONCE(p, f)	BPF_CORE_READ(p, f)
#define SA_RD_BITS(p, f)	BPF_CORE_READ_BITFIELD_PROBED(p, f)
#else
extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id) __ksym;
#define SA_AT(type, addr)	\
	((type *)bpf_rdonly_cast((void *)(unsigned long)(addr), bpf_core_type_id_kernel(type)))
#define SA_RD(p, f)		((p)->f)
#define SA_RD_ONCE(p, f)	(*(volatile typeof((p)->f) *)&(p)->f)
/*
 * Bitfields move between kernels (tcp_sock's repair is bit 6 of one byte
 * on 6.1, bit 0 of another on 6.18): a plain p->f relocates the byte but
 * keeps the build kernel's bit. BPF_CORE_READ_BITFIELD relocates both.
 */
#define SA_RD_BITS(p, f)	BPF_CORE_READ_BITFIELD(p, f)
#endif

static __always_inline struct tcp_sock *sa_tcp_sock_at(__u64 addr)
{
	return SA_AT(struct tcp_sock, addr);
}

#define SA_MAX_CGROUP_DEPTH	32

/* Transmit timestamps of any kind (SO_TIMESTAMPING, uapi/linux/net_tstamp.h). */
#define SA_SOF_TIMESTAMPING_TX	(SOF_TIMESTAMPING_TX_HARDWARE | SOF_TIMESTAMPING_TX_SOFTWARE | \
				 SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_ACK)
/* Receive timestamps (SOF_TIMESTAMPING_RX_*). */
#define SA_SOF_TIMESTAMPING_RX	(SOF_TIMESTAMPING_RX_HARDWARE | SOF_TIMESTAMPING_RX_SOFTWARE)

/*
 * A full memory barrier, for the Dekker-style handshakes (maybe_leave(),
 * the splice guard). clang emits an atomic add whose result is used with
 * BPF_FETCH, which every JIT orders fully (x86: lock xadd; arm64: ldaddal
 * or an ll/sc loop with dmb ish); an add whose result is unused becomes a
 * plain BPF_ATOMIC add, which arm64's JIT does not order.
 */
static __always_inline void sa_full_barrier(__u64 *scratch)
{
	__u64 v = __sync_fetch_and_add(scratch, 0);

	asm volatile("" : : "r"(v) : "memory");
}

/*
 * A connection's sockhash key from the socket's own counters, which start
 * at zero: both ISNs survive any NAT. Client: snd_una advanced from its
 * ISN by bytes_acked, which counts the SYN (tcp_snd_una_update()); rcv_nxt
 * = server ISN + 1 + bytes_received. Server child: snd_una starts at
 * ISN + 1 (tcp_create_openreq_child()), rcv_nxt = client ISN + 1 + data
 * (TFO SYN data included). Valid for the socket's whole life.
 */
static __always_inline void sa_conn_key(struct sa_conn_key *k, bool client, __u32 snd_una,
					__u32 rcv_nxt, __u64 bytes_acked, __u64 bytes_received)
{
	if (client) {
		k->client_isn = snd_una - (__u32)bytes_acked;
		k->server_isn = rcv_nxt - 1 - (__u32)bytes_received;
		k->role = SA_ROLE_CLIENT;
	} else {
		k->client_isn = rcv_nxt - 1 - (__u32)bytes_received;
		k->server_isn = snd_una - 1 - (__u32)bytes_acked;
		k->role = SA_ROLE_SERVER;
	}
}

/* The key the other end of the connection is stored under. */
static __always_inline void sa_peer_key(const struct sa_conn_key *self, struct sa_conn_key *peer)
{
	peer->client_isn = self->client_isn;
	peer->server_isn = self->server_isn;
	peer->role = self->role == SA_ROLE_CLIENT ? SA_ROLE_SERVER : SA_ROLE_CLIENT;
}

static __always_inline struct sa_config *sa_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sockaccel_config, &zero);
}

static __always_inline struct sa_guard *sa_guard(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sockaccel_guard, &zero);
}

/* Make every socket look at its records again (struct sa_guard). */
static __always_inline void sa_guard_bump(void)
{
	struct sa_guard *g = sa_guard();
	__u64 v;

	if (!g)
		return;
	/* A fetching atomic: a full barrier, so the marks precede it. */
	v = __sync_fetch_and_add(&g->gen, 1);
	asm volatile("" : : "r"(v) : "memory");
}

/* The nearest attached ancestor of a socket's cgroup v2 (or itself). */
static __always_inline __u32 sa_cgroup_slot(struct sock *sk, __u64 *cgroup_id)
{
	struct cgroup *cgrp = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
	struct sa_cgroup_info *info;
	int i;

	for (i = 0; i < SA_MAX_CGROUP_DEPTH && cgrp; i++) {
		__u64 id = BPF_CORE_READ(cgrp, kn, id);

		info = bpf_map_lookup_elem(&sockaccel_cgroups, &id);
		if (info) {
			*cgroup_id = id;
			return info->slot;
		}
		/* css is the first member of struct cgroup. */
		cgrp = (struct cgroup *)BPF_CORE_READ(cgrp, self.parent);
	}
	*cgroup_id = 0;
	return 0;
}

/*
 * The executable the current task runs (struct sa_exe_key), and its
 * global tgid. False for kernel threads (no mm). Plain probe reads: this
 * runs in sock_ops and in tracepoints alike.
 */
static __always_inline bool sa_current_exe(struct sa_exe_key *k, __u32 *tgid)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	/*
	 * The inode of the path the process was started from (f_path's
	 * dentry), as stat() shows it, not f_inode: on overlayfs (container
	 * images) 6.1's f_inode is the layer's inode, on another device, so
	 * `sockaccel exe set PATH` could not name it.
	 */
	struct inode *ino = BPF_CORE_READ(task, mm, exe_file, f_path.dentry, d_inode);

	k->ino = 0;
	k->dev = 0;
	k->pad = 0;
	if (tgid)
		*tgid = BPF_CORE_READ(task, tgid);
	if (!ino)
		return false;
	k->ino = BPF_CORE_READ(ino, i_ino);
	k->dev = BPF_CORE_READ(ino, i_sb, s_dev);
	return k->ino != 0;
}

/* The executable's record, created (first seen now) if missing. */
static __always_inline struct sa_exe *sa_exe_record(const struct sa_exe_key *k)
{
	struct task_struct *task;
	struct sa_exe *e, n = {};

	e = bpf_map_lookup_elem(&sockaccel_exes, k);
	if (e)
		return e;
	task = (struct task_struct *)bpf_get_current_task();
	n.first_ns = bpf_ktime_get_ns();
	bpf_core_read_str(n.comm, sizeof(n.comm), &task->comm);
	bpf_map_update_elem(&sockaccel_exes, k, &n, BPF_NOEXIST);
	return bpf_map_lookup_elem(&sockaccel_exes, k);
}

/* Why an executable's learned uses (struct sa_exe.flags) keep it off. */
static __always_inline __u32 sa_exe_uses_reason(__u32 flags, const struct sa_config *cfg)
{
	if ((flags & SA_EXE_SPLICES) && !(cfg->kernel_flags & SA_KF_SPLICE_READS_PSOCK))
		return SA_R_SPLICE_READER;
	if (flags & SA_EXE_ZEROCOPY_RX)
		return SA_R_ZEROCOPY_READER;
	if (flags & SA_EXE_URGENT)
		return SA_R_URGENT;
	if (flags & SA_EXE_RX_OPTIONS)
		return SA_R_RX_OPTIONS;
	if (flags & SA_EXE_FIONREAD)
		return SA_R_FIONREAD_READER;
	if (flags & SA_EXE_TX_TIMESTAMPS)
		return SA_R_TX_TIMESTAMPS;
	if (flags & SA_EXE_ULP)
		return SA_R_ULP;
	return SA_R_NONE;
}

/*
 * May a socket used by this executable be handed redirected bytes?
 * SA_R_NONE if so, else why not. Nothing but the executable tells in
 * advance how a socket will be read and written: one seen doing what
 * tcp_bpf does not serve (splice(), zerocopy receive, urgent data,
 * receive options mid-stream: struct sa_exe) never is, and a new one
 * not before its probation ended, so that it shows what it does on
 * plain TCP first.
 */
static __always_inline __u32 sa_reader_verdict(const struct sa_config *cfg,
					       const struct sa_exe_key *k)
{
	struct sa_exe *e;
	__u32 *action, r;

	action = bpf_map_lookup_elem(&sockaccel_exe_policy, k);
	if (action && *action == SA_EXE_ACCELERATE)
		return SA_R_NONE;
	if (action && *action == SA_EXE_TCP)
		return SA_R_POLICY;
	if (!k->ino)
		return SA_R_READER_UNKNOWN;
	e = bpf_map_lookup_elem(&sockaccel_exes, k);
	if (!e)
		return SA_R_PROBATION;
	r = sa_exe_uses_reason(e->flags, cfg);
	if (r != SA_R_NONE)
		return r;
	if (e->conns < cfg->probation_conns ||
	    bpf_ktime_get_ns() - e->first_ns < cfg->probation_ns)
		return SA_R_PROBATION;
	return SA_R_NONE;
}

/* A verdict that must take an inserted socket back out (learned or forced). */
static __always_inline bool sa_verdict_forces_leave(__u32 r)
{
	return r != SA_R_NONE && r != SA_R_PROBATION && r != SA_R_READER_UNKNOWN;
}

/*
 * What the guard, the sockopt program or the operator marked on this
 * connection since this socket last looked: SA_R_NONE, or why it must
 * leave the sockhash. One load per call unless the guard generation
 * moved. Callers on the send path put a full barrier before it (see
 * guard.bpf.c: the stop handshake).
 */
static __always_inline __u32 sa_guard_reason(struct sa_sock_state *st,
					     const struct sa_config *cfg)
{
	struct sa_guard *g = sa_guard();
	struct sa_conn_key pk;
	struct sa_record *rec;
	__u64 gen;
	__u32 r;

	if (!g)
		return SA_R_NONE;
	gen = *(volatile __u64 *)&g->gen;
	if (gen == st->guard_gen)
		return SA_R_NONE;
	rec = bpf_map_lookup_elem(&sockaccel_records, &st->key);
	if (rec && (rec->flags & (SA_RF_RX_STOPPED | SA_RF_TX_STOPPED)))
		return rec->stop_reason ? rec->stop_reason : SA_R_POLICY;
	/* Learned or forced since insertion (probation was passed then). */
	r = sa_reader_verdict(cfg, &st->reader);
	if (sa_verdict_forces_leave(r))
		return r;
	sa_peer_key(&st->key, &pk);
	rec = bpf_map_lookup_elem(&sockaccel_records, &pk);
	if (rec && (rec->flags & SA_RF_RX_STOPPED))
		return rec->stop_reason ? rec->stop_reason : SA_R_POLICY;
	if (rec) {
		r = sa_reader_verdict(cfg, &rec->reader);
		if (sa_verdict_forces_leave(r))
			return r;
	}
	st->guard_gen = gen;
	return SA_R_NONE;
}

static __always_inline void sa_count(__u32 slot, __u32 counter, __u64 n)
{
	struct sa_counters *c = bpf_map_lookup_elem(&sockaccel_stats, &slot);

	/*
	 * Keep the bound on the register that indexes: clang may otherwise
	 * prove it from a reason's range and drop it, and 6.1's verifier
	 * cannot follow (an index computed before its operand's check).
	 */
	barrier_var(counter);
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
	struct socket *sock = SA_RD(tp, inet_conn.icsk_inet.sk.sk_socket);
	struct file *file;

	if (!sock)
		return -1;
	file = SA_RD(sock, file);
	if (!file)
		return -1;
	return (SA_RD(file, f_flags) & SA_O_NONBLOCK) ? 1 : 0;
}

/*
 * The psock hanging off a socket: sk_user_data with flag bits in its low
 * bits (include/net/sock.h). Only sockets in a sockmap have one here.
 */
static __always_inline struct sk_psock *sa_psock(struct tcp_sock *tp)
{
	unsigned long ud = (unsigned long)SA_RD(tp, inet_conn.icsk_inet.sk.sk_user_data);

	ud &= SA_SK_USER_DATA_PTRMASK;
	return ud ? SA_AT(struct sk_psock, ud) : NULL;
}

/* Does the psock hold redirected bytes not yet read (ingress_msg)? */
static __always_inline bool sa_psock_has_unread(struct sk_psock *psock)
{
	if (!psock)
		return false;
	if (bpf_core_field_exists(struct sk_psock, msg_tot_len))
		return SA_RD(psock, msg_tot_len) != 0;
	return SA_RD(psock, ingress_msg.next) != &psock->ingress_msg;
}

/*
 * Bytes redirected into this socket and not yet read, -1 if they cannot
 * be told. psock->msg_tot_len, kept by sk_psock_queue_msg() and
 * __sk_msg_recvmsg() (net/core/skmsg.c), exists from 6.2 (6.1 backports
 * vary). Without it: sk_rmem_alloc, which bpf_tcp_ingress() charges per
 * redirected byte on kernels where the probe saw it do so
 * (SA_KF_RMEM_COUNTS_REDIRECTED); rule 1 keeps this direction's TCP queue
 * empty whenever it matters, so the rest of sk_rmem_alloc is small.
 */
static __always_inline long sa_unread_redirected(struct tcp_sock *tp, const struct sa_config *cfg)
{
	struct sk_psock *psock = sa_psock(tp);

	if (!psock)
		return -1;
	if (bpf_core_field_exists(struct sk_psock, msg_tot_len))
		return SA_RD(psock, msg_tot_len);
	if (!sa_psock_has_unread(psock))
		return 0;
	if (!(cfg->kernel_flags & SA_KF_RMEM_COUNTS_REDIRECTED))
		return -1;
	return SA_RD(tp, inet_conn.icsk_inet.sk.sk_backlog.rmem_alloc.counter);
}

/*
 * Is the socket inside sendmsg()/recvmsg() right now? Both hold a
 * reference on their psock for the whole call (tcp_bpf_sendmsg(),
 * tcp_bpf_recvmsg()); a psock in one map and in no call has refcnt 1
 * (sk_psock_init(), sock_map_link()). A socket with no psock is in no
 * sockhash and cannot redirect.
 */
static __always_inline bool sa_psock_idle(struct sk_psock *psock)
{
	return !psock || SA_RD_ONCE(psock, refcnt.refs.counter) == 1;
}

static __always_inline bool sa_peer_idle(struct tcp_sock *peer)
{
	return sa_psock_idle(sa_psock(peer));
}

/*
 * A socket whose sends only the TCP stack serves, SA_R_NONE if none: a
 * ULP (kTLS runs the verdict on plaintext in tls_sw_sendmsg() and
 * encrypts after it; its peer's kTLS reads redirected bytes without
 * decrypting them, tls_sw_recvmsg()), SO_ZEROCOPY (MSG_ZEROCOPY
 * completions come from skbs, msg_zerocopy_realloc(); tcp_bpf_sendmsg()
 * copies and reports none), transmit timestamps (tcp_tx_timestamp() on
 * skbs). sock_flags is an internal enum: its value is relocated.
 */
static __always_inline __u32 sa_tx_mode_reason(struct tcp_sock *tp)
{
	unsigned long zc = 1ul << bpf_core_enum_value(enum sock_flags, SOCK_ZEROCOPY);

	if (SA_RD(tp, inet_conn.icsk_ulp_ops))
		return SA_R_ULP;
	if (SA_RD(tp, inet_conn.icsk_inet.sk.__sk_common.skc_flags) & zc)
		return SA_R_ZEROCOPY_TX;
	if (SA_RD(tp, inet_conn.icsk_inet.sk.sk_tsflags) & SA_SOF_TIMESTAMPING_TX)
		return SA_R_TX_TIMESTAMPS;
	return SA_R_NONE;
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
