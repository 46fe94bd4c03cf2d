// SPDX-License-Identifier: GPL-2.0
/*
 * The guard: syscall tracepoints for the two ways a program can read or
 * send TCP bytes that the sk_msg program cannot see.
 *
 * splice() from a socket reads only sk_receive_queue (tcp_splice_read()
 * -> tcp_read_sock()); redirected bytes wait in the psock's ingress_msg,
 * which only tcp_bpf_recvmsg() serves. A splice reader handed redirected
 * bytes would see a short stream end at the FIN, with every syscall
 * successful. So:
 *  - every splice() from a TCP socket marks the calling executable
 *    (struct sa_exe, by file identity) and the listener the socket was
 *    accepted on, and sock_ops never inserts sockets they read again;
 *  - a splice() from an inserted socket stops every redirect to it
 *    (SA_PF_SPLICED, seen by the peer's sk_msg program through the guard
 *    generation) and, once nothing redirected is unread, the socket leaves
 *    the sockhash: the splice reader reads plain TCP from then on;
 *  - if redirected bytes are already unread there, no hook can hand them
 *    to splice() or fail the call (no bpf_override_return on these
 *    kernels), and the reader would silently lose them: it is killed
 *    (SIGKILL, before the syscall returns to it), counted, traced and
 *    named in `sockaccel status`. Probation (struct sa_exe) exists so that
 *    a program splices first, on plain TCP, before this can happen.
 *
 * MSG_OOB: the sk_msg program does not see send flags (struct sk_msg_md),
 * and a redirected urgent byte arrives inline with no urgent mark. A send
 * with MSG_OOB from an inserted socket marks it (SA_PF_URGENT) before the
 * send runs; its sk_msg program then passes this and every later message
 * to TCP, and both ends leave the sockhash.
 *
 * Each program exits after one compare for every call that is not a
 * splice() from, or an MSG_OOB send on, a TCP socket.
 */
/* Tracepoints read kernel objects with probe reads on every kernel. */
#define SA_CORE_READS
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define SA_S_IFMT		00170000	/* include/uapi/linux/stat.h */
#define SA_S_IFSOCK		0140000
#define SA_IPPROTO_TCP		6
#define SA_SOCK_STREAM		1
#define SA_MSG_OOB		1
#define SA_SIGKILL		9

/*
 * How long a splice() waits for the socket's sender to leave sendmsg():
 * a verdict taken before the mark may still be queueing its bytes
 * (tcp_bpf_sendmsg() -> bpf_tcp_ingress()), which takes microseconds.
 */
#define SA_GUARD_WAIT_NS	(1000 * 1000ull)
#define SA_GUARD_WAIT_LOOPS	(1u << 16)

/* The current task's fd, if it is a TCP socket: its struct sock. */
static __always_inline struct sock *tcp_sock_of_fd(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *file = NULL;
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & SA_S_IFMT) != SA_S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != SA_IPPROTO_TCP ||
	    BPF_CORE_READ(sk, sk_type) != SA_SOCK_STREAM)
		return NULL;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	return family == AF_INET || family == AF_INET6 ? sk : NULL;
}

/* The socket's own public record, if it is in sockaccel_socks. */
static __always_inline struct sa_peer *record_of(struct sock *sk, struct sa_conn_key *key)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 snd_una = BPF_CORE_READ(tp, snd_una), rcv_nxt = BPF_CORE_READ(tp, rcv_nxt);
	__u64 acked = BPF_CORE_READ(tp, bytes_acked), received = BPF_CORE_READ(tp, bytes_received);
	struct sa_peer *rec;
	int i;

	/* Either role: the record's own address tells which is this one. */
	for (i = 0; i < 2; i++) {
		sa_conn_key(key, i == 0, snd_una, rcv_nxt, acked, received);
		rec = bpf_map_lookup_elem(&sockaccel_peers, key);
		if (rec && rec->sk_addr == (__u64)(unsigned long)sk)
			return rec;
	}
	return NULL;
}

/* The other end's psock, from its record. */
static __always_inline struct sk_psock *peer_psock(const struct sa_conn_key *key)
{
	struct sa_conn_key pk;
	struct sa_peer *prec;

	sa_peer_key(key, &pk);
	prec = bpf_map_lookup_elem(&sockaccel_peers, &pk);
	if (!prec)
		return NULL;
	return sa_psock(sa_tcp_sock_at(prec->sk_addr));
}

struct psock_wait {
	struct sk_psock *psock;
	__u64 start;
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
	return bpf_ktime_get_ns() - w->start > SA_GUARD_WAIT_NS;
}

/* Wait up to SA_GUARD_WAIT_NS for a psock to be idle, or drained. */
static __always_inline bool psock_wait(struct sk_psock *psock, bool for_unread)
{
	struct psock_wait w = { .psock = psock, .for_unread = for_unread };

	if (psock_wait_done(&w))
		return true;
	w.start = bpf_ktime_get_ns();
	bpf_loop(SA_GUARD_WAIT_LOOPS, psock_wait_step, &w, 0);
	return psock_wait_done(&w);
}

static __always_inline void emit(struct sock *sk, __u32 type, __u32 slot, __u64 cgroup_id,
				 const struct sa_exe_key *exe, __u32 tgid, long unread)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct sa_event *ev;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	ev = bpf_ringbuf_reserve(&sockaccel_events, sizeof(*ev), 0);
	if (!ev)
		return;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = bpf_ktime_get_ns();
	ev->cgroup_id = cgroup_id;
	ev->type = type;
	ev->family = family;
	ev->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		ev->local_ip6[2] = ev->remote_ip6[2] = bpf_htonl(0xffff);
		ev->local_ip6[3] = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		ev->remote_ip6[3] = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO(&ev->local_ip6, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&ev->remote_ip6, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	}
	ev->pid = tgid;
	ev->unread = unread > 0xffffffffl ? 0xffffffffu : unread;
	ev->exe = *exe;
	bpf_core_read_str(ev->comm, sizeof(ev->comm), &task->comm);
	bpf_ringbuf_submit(ev, 0);
}

/* A child of a listener in this netns on the socket's local port? */
static __always_inline void mark_listener(struct sock *sk)
{
	struct sa_listen_key k = {};
	struct sa_listener *l;

	k.netns_cookie = BPF_CORE_READ(sk, __sk_common.skc_net.net, net_cookie);
	k.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	k.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	l = bpf_map_lookup_elem(&sockaccel_listeners, &k);
	if (l && !(l->flags & SA_LF_SPLICED))
		__sync_fetch_and_or(&l->flags, SA_LF_SPLICED);
}

SEC("tracepoint/syscalls/sys_enter_splice")
int sockaccel_guard_splice(struct trace_event_raw_sys_enter *ctx)
{
	struct sa_config *cfg = sa_config();
	struct sa_conn_key key;
	struct sa_exe_key exe;
	struct sk_psock *psock;
	struct sa_peer *rec;
	struct sa_exe *e;
	struct sock *sk;
	__u64 cgroup_id;
	__u32 slot, tgid, old;
	bool learned = false, idle;
	long unread;

	if (!cfg || !cfg->enabled)
		return 0;
	sk = tcp_sock_of_fd((long)(int)ctx->args[0]);
	if (!sk)
		return 0;
	slot = sa_cgroup_slot(sk, &cgroup_id);
	sa_count(slot, SA_C_SPLICE_READS, 1);
	mark_listener(sk);
	if (sa_current_exe(&exe, &tgid)) {
		e = sa_exe_record(&exe);
		if (e) {
			old = __sync_fetch_and_or(&e->flags, SA_EXE_SPLICES);
			learned = !(old & SA_EXE_SPLICES);
			if (e->splices != 0xffffffff)
				e->splices++;
			e->last_splice_ns = bpf_ktime_get_ns();
		}
	}
	if (learned && cfg->trace)
		emit(sk, SA_EV_SPLICE_LEARNED, slot, cgroup_id, &exe, tgid, 0);
	rec = record_of(sk, &key);
	if (!rec) {
		if (learned)
			sa_guard_bump();	/* senders to its sockets look again */
		return 0;
	}

	/*
	 * Dekker with the peer's sk_msg program: the mark (then the
	 * generation, a full barrier) before reading the peer's psock
	 * reference; the peer takes that reference (tcp_bpf_sendmsg()) and
	 * a full barrier before reading the generation. Either the peer sees
	 * the mark and passes, or this sees it inside sendmsg() and waits.
	 */
	old = __sync_fetch_and_or(&rec->flags, SA_PF_SPLICED);
	sa_guard_bump();
	idle = psock_wait(peer_psock(&key), false);
	psock = sa_psock((struct tcp_sock *)sk);
	unread = sa_psock_has_unread(psock) ? sa_unread_redirected((struct tcp_sock *)sk, cfg) : 0;
	if (unread != 0) {
		/*
		 * Bytes only recvmsg() can read, and a reader that will not
		 * call it: no hook can give them to splice() or fail it.
		 */
		bpf_send_signal(SA_SIGKILL);
		sa_count(slot, SA_C_SPLICE_KILLS, 1);
		e = bpf_map_lookup_elem(&sockaccel_exes, &exe);
		if (e)
			__sync_fetch_and_add(&e->kills, 1);
		emit(sk, SA_EV_SPLICE_KILL, slot, cgroup_id, &exe, tgid, unread);
		return 0;
	}
	if (old & SA_PF_SPLICED)
		return 0;
	sa_count(slot, idle ? SA_C_SPLICE_SWITCHES : SA_C_SPLICE_UNSURE, 1);
	if (cfg->trace)
		emit(sk, SA_EV_SPLICE_SWITCH, slot, cgroup_id, &exe, tgid, 0);
	return 0;
}

/*
 * An urgent send from an inserted socket: mark it before the send runs
 * (its sk_msg program runs later in this same syscall and passes). If
 * its peer still holds unread redirected bytes, wait briefly for them to
 * be read: tcp_bpf_recvmsg() serves recv(MSG_OOB) from the psock queue.
 */
static __always_inline int on_send(long fd, unsigned long flags)
{
	struct sa_config *cfg;
	struct sa_conn_key key;
	struct sa_exe_key exe;
	struct sa_peer *rec;
	struct sock *sk;
	__u64 cgroup_id;
	__u32 slot, old, tgid;
	long unread = 0;

	if (!(flags & SA_MSG_OOB))
		return 0;
	cfg = sa_config();
	if (!cfg)
		return 0;
	sk = tcp_sock_of_fd(fd);
	if (!sk)
		return 0;
	rec = record_of(sk, &key);
	if (!rec)
		return 0;
	old = __sync_fetch_and_or(&rec->flags, SA_PF_URGENT);
	sa_guard_bump();
	if (old & SA_PF_URGENT)
		return 0;
	/*
	 * Every verdict of this socket passes from the mark on (this thread's
	 * later in this syscall; others' through the generation). Once no
	 * sendmsg() of it is running, none decided before the mark can still
	 * be queueing: its peer may then leave without waiting for it to be
	 * idle (maybe_leave()), which it would otherwise only see at its
	 * next transmitted segment, long after loopback delivered this one.
	 */
	if (psock_wait(sa_psock((struct tcp_sock *)sk), false))
		__sync_fetch_and_or(&rec->flags, SA_PF_QUIESCED);
	slot = sa_cgroup_slot(sk, &cgroup_id);
	sa_count(slot, SA_C_URGENT_SENDS, 1);
	if (!psock_wait(peer_psock(&key), true)) {
		unread = 1;
		sa_count(slot, SA_C_URGENT_UNREAD, 1);
	}
	if (cfg->trace) {
		sa_current_exe(&exe, &tgid);
		emit(sk, SA_EV_URGENT, slot, cgroup_id, &exe, tgid, unread);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int sockaccel_guard_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return on_send((long)(int)ctx->args[0], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int sockaccel_guard_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return on_send((long)(int)ctx->args[0], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int sockaccel_guard_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
	return on_send((long)(int)ctx->args[0], ctx->args[3]);
}
