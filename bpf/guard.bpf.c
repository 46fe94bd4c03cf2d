// SPDX-License-Identifier: GPL-2.0
/*
 * The guard: tracepoints for the ways a program can read, send or query
 * TCP bytes that the sk_msg program cannot see or tcp_bpf does not serve.
 *
 * Reads around tcp_bpf_recvmsg(). Redirected bytes wait in the psock's
 * ingress_msg, which only tcp_bpf_recvmsg() serves. splice() (the syscall
 * and io_uring's IORING_OP_SPLICE: tcp_splice_read() -> tcp_read_sock())
 * and zerocopy receive (mmap() of the socket, then TCP_ZEROCOPY_RECEIVE:
 * tcp_zerocopy_receive()) read only sk_receive_queue, so a reader handed
 * redirected bytes would see a short or reordered stream with every call
 * successful. So (reader_bypass()):
 *  - every such use of a TCP socket marks the calling executable (struct
 *    sa_exe, by file identity) and the listener the socket was accepted
 *    on, and sock_ops never inserts sockets they use again;
 *  - on an inserted socket it stops every redirect to it (stop.bpf.h) and,
 *    once nothing redirected is unread, the socket leaves the sockhash;
 *  - if redirected bytes are already unread there, no hook can hand them
 *    to the reader or fail the call (no bpf_override_return on these
 *    kernels), and the reader would silently lose them: it is killed
 *    (SIGKILL, before the syscall returns to it), counted, traced and
 *    named in `sockaccel status`. Probation (struct sa_exe) exists so that
 *    a program shows these uses first, on plain TCP.
 *
 * Sends the sk_msg program cannot see the flags of (struct sk_msg_md has
 * none). A redirected MSG_OOB byte arrives inline with no urgent mark,
 * and tcp_bpf_sendmsg() drops ancillary data (SCM_TIMESTAMPING). Such a
 * send from an inserted socket (send*() or io_uring) stops it before the
 * send runs (urgent_send()): its sk_msg program then passes this and every
 * later message to TCP, and both ends leave the sockhash.
 *
 * Queries tcp_bpf answers wrongly for redirected bytes: FIONREAD counts
 * only TCP bytes on 6.1 (tcp_ioctl()) and only redirected ones on 6.18
 * (tcp_bpf_ioctl()); SIOCATMARK ignores redirected bytes still ahead of
 * the mark. The exit tracepoint rewrites the answer to what TCP would
 * give, in the caller's own int (bpf_probe_write_user()), before the
 * syscall returns. Where lockdown forbids that helper, the program that
 * asked is learned instead and its sockets stay on TCP.
 *
 * Each program exits after a compare or two for every call that is not
 * one of these on a TCP socket.
 */
/* Tracepoints read kernel objects with probe reads on every kernel. */
#define SA_CORE_READS
#include "stop.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define SA_S_IFMT		00170000	/* include/uapi/linux/stat.h */
#define SA_S_IFSOCK		0140000
#define SA_IPPROTO_TCP		6
#define SA_SOCK_STREAM		1
#define SA_MSG_OOB		1
#define SA_SIGKILL		9
#define SA_SIOCINQ		0x541B		/* FIONREAD, asm-generic/ioctls.h */
#define SA_SIOCATMARK		0x8905		/* uapi/linux/sockios.h */
#define SA_SPLICE_F_FD_IN_FIXED	(1u << 31)	/* uapi/linux/io_uring.h */
#define SA_IOSQE_FIXED_FILE	(1u << 0)	/* REQ_F_FIXED_FILE in req->flags */
#define SA_FFS_MASK		(~3ul)		/* io_uring/filetable.h: flag bits */
#define SA_TCP_SOCK_STATES_NOINQ ((1u << TCP_SYN_SENT) | (1u << TCP_SYN_RECV))

/* The fd table of the current task: a TCP socket's struct sock, or NULL. */
static __always_inline struct sock *tcp_sock_of_file(struct file *file)
{
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & SA_S_IFMT) != SA_S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != SA_IPPROTO_TCP ||
	    BPF_CORE_READ(sk, sk_type) != SA_SOCK_STREAM)
		return NULL;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	return family == AF_INET || family == AF_INET6 ? sk : NULL;
}

static __always_inline struct sock *tcp_sock_of_fd(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *file = NULL;

	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return NULL;
	return tcp_sock_of_file(file);
}

static __always_inline void emit(struct sock *sk, __u32 type, __u32 reason, __u32 slot,
				 __u64 cgroup_id, long unread)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct sa_event *ev;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u32 tgid;

	ev = bpf_ringbuf_reserve(&sockaccel_events, sizeof(*ev), 0);
	if (!ev)
		return;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = bpf_ktime_get_ns();
	ev->cgroup_id = cgroup_id;
	ev->type = type;
	ev->reason = reason;
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
	sa_current_exe(&ev->exe, &tgid);
	ev->pid = tgid;
	ev->unread = unread > 0xffffffffl ? 0xffffffffu : unread;
	bpf_core_read_str(ev->comm, sizeof(ev->comm), &task->comm);
	bpf_ringbuf_submit(ev, 0);
}

/* Children of this socket's listener (in its netns, on its port) are read this way too. */
static __always_inline void mark_listener(struct sock *sk, __u32 lflag)
{
	struct sa_listen_key k = {};
	struct sa_listener *l;

	k.netns_cookie = BPF_CORE_READ(sk, __sk_common.skc_net.net, net_cookie);
	k.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	k.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	l = bpf_map_lookup_elem(&sockaccel_listeners, &k);
	if (l && !(l->flags & lflag))
		__sync_fetch_and_or(&l->flags, lflag);
}

/*
 * A read that bypasses tcp_bpf_recvmsg() is about to start on sk (see the
 * top of this file). use: SA_EXE_SPLICES or SA_EXE_ZEROCOPY_RX.
 */
static __always_inline void reader_bypass(struct sock *sk, __u32 use)
{
	bool splice = use == SA_EXE_SPLICES;
	__u32 reason = splice ? SA_R_SPLICE_READER : SA_R_ZEROCOPY_READER;
	struct sa_config *cfg = sa_config();
	struct sa_conn_key key;
	struct sk_psock *psock;
	struct sa_exe_key exe;
	struct sa_record *rec;
	struct sa_exe *e;
	__u64 cgroup_id;
	__u32 slot;
	bool learned, first, idle;
	long unread;

	if (!cfg || !cfg->enabled)
		return;
	slot = sa_cgroup_slot(sk, &cgroup_id);
	sa_count(slot, splice ? SA_C_SPLICE_READS : SA_C_ZEROCOPY_MAPS, 1);
	mark_listener(sk, splice ? SA_LF_SPLICED : SA_LF_ZEROCOPY_RX);
	learned = learn_use(use);
	if (learned && cfg->trace)
		emit(sk, SA_EV_USE_LEARNED, reason, slot, cgroup_id, 0);
	rec = record_of(sk, &key);
	if (!rec) {
		if (learned)
			sa_guard_bump();	/* senders to its sockets look again */
		return;
	}
	first = sa_stop(rec, SA_RF_RX_STOPPED, reason);
	idle = psock_wait(peer_psock(&key), false, SA_STOP_WAIT_NS);
	psock = sa_psock((struct tcp_sock *)sk);
	unread = sa_psock_has_unread(psock) ? sa_unread_redirected((struct tcp_sock *)sk, cfg) : 0;
	if (unread != 0) {
		/*
		 * Bytes only recvmsg() can read, and a reader that will not
		 * call it: no hook can give them to it or fail the call.
		 */
		bpf_send_signal(SA_SIGKILL);
		sa_count(slot, splice ? SA_C_SPLICE_KILLS : SA_C_ZEROCOPY_KILLS, 1);
		if (sa_current_exe(&exe, NULL)) {
			e = bpf_map_lookup_elem(&sockaccel_exes, &exe);
			if (e)
				__sync_fetch_and_add(&e->kills, 1);
		}
		emit(sk, SA_EV_READER_KILL, reason, slot, cgroup_id, unread);
		return;
	}
	if (!first)
		return;
	if (splice)
		sa_count(slot, idle ? SA_C_SPLICE_SWITCHES : SA_C_SPLICE_UNSURE, 1);
	if (cfg->trace)
		emit(sk, SA_EV_READER_SWITCH, reason, slot, cgroup_id, 0);
}

SEC("tracepoint/syscalls/sys_enter_splice")
int sockaccel_guard_splice(struct trace_event_raw_sys_enter *ctx)
{
	struct sock *sk = tcp_sock_of_fd((long)(int)ctx->args[0]);

	if (sk)
		reader_bypass(sk, SA_EXE_SPLICES);
	return 0;
}

/* mmap() of a TCP socket: the start of zerocopy receive (tcp_mmap()). */
SEC("tracepoint/syscalls/sys_enter_mmap")
int sockaccel_guard_mmap(struct trace_event_raw_sys_enter *ctx)
{
	long fd = (long)(int)ctx->args[4];
	struct sock *sk;

	if (fd < 0)
		return 0;
	sk = tcp_sock_of_fd(fd);
	if (sk)
		reader_bypass(sk, SA_EXE_ZEROCOPY_RX);
	return 0;
}

/*
 * A send whose flags or ancillary data the fast path cannot carry, about
 * to run on sk: stop the socket's own redirects before it does (its
 * sk_msg program runs later in this same syscall and passes). For urgent
 * data, if its peer still holds unread redirected bytes, wait briefly for
 * them to be read: tcp_bpf_recvmsg() serves recv(MSG_OOB) from the psock
 * queue.
 */
static __always_inline void special_send(struct sock *sk, bool urgent)
{
	__u32 reason = urgent ? SA_R_URGENT : SA_R_TX_TIMESTAMPS;
	struct sa_config *cfg = sa_config();
	struct sa_conn_key key;
	struct sa_record *rec;
	__u64 cgroup_id;
	__u32 slot;
	long unread = 0;

	if (!cfg)
		return;
	if (learn_use(urgent ? SA_EXE_URGENT : SA_EXE_TX_TIMESTAMPS))
		sa_guard_bump();
	rec = record_of(sk, &key);
	if (!rec)
		return;
	if (!sa_stop(rec, SA_RF_TX_STOPPED, reason))
		return;
	/*
	 * Every verdict of this socket passes from the stop on (this
	 * thread's later in this syscall; others' through the generation).
	 * Once no sendmsg() of it is running, none decided before the stop
	 * can still be queueing: its peer may then leave without waiting for
	 * it to be idle (maybe_leave()), which it would otherwise only see at
	 * its next transmitted segment, long after loopback delivered this
	 * one.
	 */
	if (psock_wait(sa_psock((struct tcp_sock *)sk), false, SA_STOP_WAIT_NS))
		__sync_fetch_and_or(&rec->flags, SA_RF_QUIESCED);
	slot = sa_cgroup_slot(sk, &cgroup_id);
	if (!urgent)
		return;
	sa_count(slot, SA_C_URGENT_SENDS, 1);
	if (!psock_wait(peer_psock(&key), true, SA_STOP_WAIT_NS)) {
		unread = 1;
		sa_count(slot, SA_C_URGENT_UNREAD, 1);
	}
	if (cfg->trace)
		emit(sk, SA_EV_URGENT, reason, slot, cgroup_id, unread);
}

static __always_inline int on_send(long fd, unsigned long flags, const void *umsg)
{
	struct user_msghdr mh;
	struct sock *sk;
	bool cmsg = false;

	if (!(flags & SA_MSG_OOB)) {
		/* Ancillary data: SCM_TIMESTAMPING is all TCP takes from it. */
		if (!umsg || bpf_probe_read_user(&mh, sizeof(mh), umsg) || !mh.msg_controllen)
			return 0;
		cmsg = true;
	}
	sk = tcp_sock_of_fd(fd);
	if (sk)
		special_send(sk, !cmsg);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int sockaccel_guard_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return on_send((long)(int)ctx->args[0], ctx->args[3], NULL);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int sockaccel_guard_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return on_send((long)(int)ctx->args[0], ctx->args[2], (const void *)ctx->args[1]);
}

/* struct mmsghdr starts with its struct user_msghdr: the first message's. */
SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int sockaccel_guard_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
	return on_send((long)(int)ctx->args[0], ctx->args[3], (const void *)ctx->args[1]);
}

/*
 * io_uring: requests are prepared (io_init_req() -> ->prep()) before the
 * submit tracepoint fires in the submitter's context, so the target fd
 * and flags are known; the file itself is looked up at issue time, from
 * the submitter's fd table or the ring's fixed files.
 */
struct io_fixed_file___old {
	unsigned long file_ptr;
};

struct io_file_table___old {
	struct io_fixed_file___old *files;
};

struct io_ring_ctx___old {
	struct io_file_table___old file_table;
	unsigned int nr_user_files;
};

/* A fixed file of the ring: 6.13+ nodes[idx]->file_ptr, before files[idx].file_ptr. */
static __always_inline struct file *uring_fixed_file(struct io_ring_ctx *ctx, __u32 idx)
{
	unsigned long ptr = 0;

	if (bpf_core_field_exists(struct io_file_table, data)) {
		struct io_rsrc_node **nodes = BPF_CORE_READ(ctx, file_table.data.nodes);
		struct io_rsrc_node *node = NULL;

		if (idx >= BPF_CORE_READ(ctx, file_table.data.nr) ||
		    bpf_probe_read_kernel(&node, sizeof(node), &nodes[idx]) || !node)
			return NULL;
		ptr = BPF_CORE_READ(node, file_ptr);
	} else {
		struct io_ring_ctx___old *octx = (void *)ctx;
		struct io_fixed_file___old *files = BPF_CORE_READ(octx, file_table.files);

		if (idx >= BPF_CORE_READ(octx, nr_user_files) ||
		    bpf_probe_read_kernel(&ptr, sizeof(ptr), &files[idx].file_ptr))
			return NULL;
	}
	return (struct file *)(ptr & SA_FFS_MASK);
}

static __always_inline struct sock *uring_tcp_sock(struct io_kiocb *req, long fd, bool fixed)
{
	if (!fixed)
		return tcp_sock_of_fd(fd);
	if (fd < 0)
		return NULL;
	return tcp_sock_of_file(uring_fixed_file(BPF_CORE_READ(req, ctx), fd));
}

static __always_inline int on_uring(struct io_kiocb *req)
{
	__u8 op = BPF_CORE_READ(req, opcode);
	struct sock *sk;

	if (op == IORING_OP_SPLICE) {
		struct io_splice *sp = (void *)req;	/* io_kiocb_to_cmd() */
		__u32 flags = BPF_CORE_READ(sp, flags);

		sk = uring_tcp_sock(req, BPF_CORE_READ(sp, splice_fd_in),
				    flags & SA_SPLICE_F_FD_IN_FIXED);
		if (sk)
			reader_bypass(sk, SA_EXE_SPLICES);
	} else if (op == IORING_OP_SEND || op == IORING_OP_SENDMSG ||
		   op == IORING_OP_SEND_ZC || op == IORING_OP_SENDMSG_ZC) {
		struct io_sr_msg *sr = (void *)req;

		if (!(BPF_CORE_READ(sr, msg_flags) & SA_MSG_OOB))
			return 0;
		sk = uring_tcp_sock(req, BPF_CORE_READ(req, cqe.fd),
				    BPF_CORE_READ(req, flags) & SA_IOSQE_FIXED_FILE);
		if (sk)
			special_send(sk, true);
	}
	return 0;
}

SEC("tracepoint/io_uring/io_uring_submit_req")
int sockaccel_guard_uring(struct trace_event_raw_io_uring_submit_req *ctx)
{
	return on_uring(ctx->req);
}

/* Before 6.5 the same tracepoint was io_uring_submit_sqe. */
struct trace_event_raw_io_uring_submit_sqe {
	struct trace_entry ent;
	void *ctx;
	void *req;
} __attribute__((preserve_access_index));

SEC("tracepoint/io_uring/io_uring_submit_sqe")
int sockaccel_guard_uring_old(struct trace_event_raw_io_uring_submit_sqe *ctx)
{
	return on_uring(BPF_CORE_READ(ctx, req));
}

/*
 * FIONREAD and SIOCATMARK on inserted sockets: the request is noted at
 * entry (per thread) and the answer corrected at exit.
 */
struct ioctl_req {
	__u64 arg;		/* host byte order: the caller's int * */
	__u32 cmd;		/* host byte order */
	__s32 fd;		/* host byte order */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);		/* bpf_get_current_pid_tgid() */
	__type(value, struct ioctl_req);
} sockaccel_ioctls SEC(".maps");

/* Does this kernel's FIONREAD miss bytes of an inserted socket (probe)? */
static __always_inline bool fionread_inexact(const struct sa_config *cfg)
{
	__u32 both = SA_KF_FIONREAD | SA_KF_FIONREAD_STACK;

	return (cfg->kernel_flags & both) != both;
}

/* Redirected bytes not yet read, exactly: msg_tot_len, else the queue walked (6.1). */
struct msg_walk {
	struct list_head *head;
	struct list_head *pos;
	__u64 sum;
};

static long msg_walk_step(__u32 i, struct msg_walk *w)
{
	/* A local first: BPF_CORE_READ(w->pos, ...) would relocate msg_walk too. */
	struct list_head *pos = w->pos;
	struct sk_msg *m;

	if (!pos || pos == w->head)
		return 1;
	m = (void *)pos - bpf_core_field_offset(struct sk_msg, list);
	w->sum += BPF_CORE_READ(m, sg.size);
	w->pos = BPF_CORE_READ(pos, next);
	return 0;
}

static __always_inline __u64 unread_exact(struct sk_psock *psock)
{
	struct msg_walk w = {};

	if (!psock)
		return 0;
	if (bpf_core_field_exists(struct sk_psock, msg_tot_len))
		return BPF_CORE_READ(psock, msg_tot_len);
	w.head = &psock->ingress_msg;
	w.pos = BPF_CORE_READ(psock, ingress_msg.next);
	bpf_loop(8192, msg_walk_step, &w, 0);
	return w.sum;
}

/* tcp_inq(): what TCP itself holds unread, urgent mark and FIN as TCP counts them. */
static __always_inline __u32 tcp_inq_of(struct tcp_sock *tp)
{
	struct sock *sk = (struct sock *)tp;
	unsigned long flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
	__u32 rcv_nxt = BPF_CORE_READ(tp, rcv_nxt), copied = BPF_CORE_READ(tp, copied_seq);
	__u32 urg_seq = BPF_CORE_READ(tp, urg_seq), answ;
	bool inline_urg = flags & (1ul << bpf_core_enum_value(enum sock_flags, SOCK_URGINLINE));
	bool done = flags & (1ul << bpf_core_enum_value(enum sock_flags, SOCK_DONE));

	if ((1u << BPF_CORE_READ(sk, __sk_common.skc_state)) & SA_TCP_SOCK_STATES_NOINQ)
		return 0;
	if (inline_urg || !BPF_CORE_READ(tp, urg_data) || (__s32)(urg_seq - copied) < 0 ||
	    (__s32)(urg_seq - rcv_nxt) >= 0) {
		answ = rcv_nxt - copied;
		if (answ && done)
			answ--;
		return answ;
	}
	return urg_seq - copied;
}

/*
 * Would this kernel's answer be wrong right now? FIONREAD: where it counts
 * only TCP bytes, if redirected ones are unread; where only redirected
 * ones, if TCP bytes are. SIOCATMARK: if it would say "at the mark" with
 * redirected bytes still ahead of it.
 */
static __always_inline bool ioctl_answer_wrong(struct sock *sk, __u32 cmd,
					       const struct sa_config *cfg)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u64 unread = unread_exact(sa_psock(tp));

	if (cmd == SA_SIOCATMARK)
		return unread && BPF_CORE_READ(tp, urg_data) &&
		       BPF_CORE_READ(tp, urg_seq) == BPF_CORE_READ(tp, copied_seq);
	if (!fionread_inexact(cfg))
		return false;
	if (!(cfg->kernel_flags & SA_KF_FIONREAD))
		return unread != 0;
	return tcp_inq_of(tp) != 0;
}

SEC("tracepoint/syscalls/sys_enter_ioctl")
int sockaccel_guard_ioctl(struct trace_event_raw_sys_enter *ctx)
{
	__u32 cmd = ctx->args[1];
	struct ioctl_req r = { .arg = ctx->args[2], .cmd = cmd, .fd = (int)ctx->args[0] };
	__u64 id = bpf_get_current_pid_tgid();
	struct sa_config *cfg;
	struct sa_conn_key key;
	struct sa_record *rec;
	struct sock *sk;

	if (cmd != SA_SIOCINQ && cmd != SA_SIOCATMARK)
		return 0;
	cfg = sa_config();
	sk = tcp_sock_of_fd(r.fd);
	if (!cfg || !sk)
		return 0;
	/* Only sockets of ours: another sockmap user's psock is its own. */
	rec = record_of(sk, &key);
	if (!rec || !sa_psock((struct tcp_sock *)sk))
		return 0;
	if (cfg->kernel_flags & SA_KF_IOCTL_FIXUP) {
		bpf_map_update_elem(&sockaccel_ioctls, &id, &r, BPF_ANY);
		return 0;
	}
	/*
	 * Lockdown: the answer cannot be corrected. If it is wrong now, the
	 * asker is learned (its later sockets stay on TCP) and this socket
	 * stops taking redirected bytes where they are what the answer
	 * misses (FIONREAD counting only TCP bytes: 6.1; SIOCATMARK). Where
	 * FIONREAD counts only redirected bytes (6.18), more redirects keep
	 * it right and TCP bytes are what it misses: no stop.
	 */
	if (!ioctl_answer_wrong(sk, cmd, cfg))
		return 0;
	if (learn_use(SA_EXE_FIONREAD))
		sa_guard_bump();
	if (cmd == SA_SIOCATMARK || !(cfg->kernel_flags & SA_KF_FIONREAD))
		sa_stop(rec, SA_RF_RX_STOPPED, SA_R_FIONREAD_READER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_ioctl")
int sockaccel_guard_ioctl_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ioctl_req *r = bpf_map_lookup_elem(&sockaccel_ioctls, &id);
	struct ioctl_req req;
	struct sk_psock *psock;
	struct sock *sk;
	__u64 cgroup_id;
	__u64 unread;
	int have = 0, want;

	if (!r)
		return 0;
	req = *r;
	bpf_map_delete_elem(&sockaccel_ioctls, &id);
	if (ctx->ret != 0)
		return 0;
	sk = tcp_sock_of_fd(req.fd);
	if (!sk)
		return 0;
	psock = sa_psock((struct tcp_sock *)sk);
	unread = unread_exact(psock);
	if (bpf_probe_read_user(&have, sizeof(have), (void *)req.arg))
		return 0;
	if (req.cmd == SA_SIOCINQ)
		want = unread + tcp_inq_of((struct tcp_sock *)sk);
	else
		want = unread ? 0 : have;	/* the mark is behind redirected bytes */
	if (want == have)
		return 0;
	bpf_probe_write_user((void *)req.arg, &want, sizeof(want));
	sa_count(sa_cgroup_slot(sk, &cgroup_id), SA_C_IOCTL_FIXES, 1);
	return 0;
}
