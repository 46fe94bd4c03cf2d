/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Layouts shared by the BPF programs and the loader: keys, counters,
 * configuration, policy rules and trace events. __u* types only, so the
 * same header compiles against vmlinux.h (BPF side) and <linux/types.h>
 * (user space). Every field says its byte order.
 */
#ifndef SOCKACCEL_H
#define SOCKACCEL_H

#define SA_PIN_ROOT		"/sys/fs/bpf/sockaccel"
#define SA_MAX_CGROUPS		64	/* attach slots; slot 0 is "not attached" */
#define SA_MAX_RULES		16	/* policy rules per attached cgroup */
#define SA_DEFAULT_MAX_SOCKS	65536	/* sockhash capacity (sockets, not pairs) */

/*
 * An executable, by file identity: the inode and device of the file the
 * process runs (mm->exe_file). comm can be set by any process; the file a
 * process runs cannot. Every reader of a socket is judged by this key.
 */
struct sa_exe_key {
	__u64 ino;		/* host byte order: inode number */
	__u32 dev;		/* host byte order: kernel dev_t (MAJOR << 20 | MINOR) */
	__u32 pad;		/* zero */
};

/*
 * What sockaccel learned about an executable (sockaccel_exes, an LRU map
 * pinned beside the pin root so an unload or reload does not forget).
 * splice() reads only sk_receive_queue (tcp_splice_read()), never the
 * redirected bytes in a psock, so a program that reads sockets with
 * splice() must never be handed redirected bytes. A new executable is on
 * probation until it has made or accepted probation_conns connections and
 * probation_ns have passed since it was first seen; a splice() by it from
 * any TCP socket (bpf/guard.bpf.c) marks it for good.
 */
struct sa_exe {
	__u64 first_ns;		/* host byte order: bpf_ktime_get_ns() when first seen */
	__u64 last_splice_ns;	/* host byte order: last splice() from a TCP socket */
	__u32 conns;		/* host byte order: connections made or accepted */
	__u32 splices;		/* host byte order: splice() calls from TCP sockets */
	__u32 kills;		/* host byte order: times the guard killed it */
	__u32 flags;		/* host byte order: SA_EXE_* */
	char comm[16];		/* last comm seen: for display only */
};
/*
 * What an executable was seen doing to a TCP socket that tcp_bpf does not
 * serve the way TCP does (docs/kernel-limitations.md). Any of them keeps
 * its sockets off the fast path for good (sa_reader_verdict()).
 */
#define SA_EXE_SPLICES		(1u << 0)  /* reads with splice() (syscall or io_uring):
					    * tcp_splice_read() reads only
					    * sk_receive_queue */
#define SA_EXE_ZEROCOPY_RX	(1u << 1)  /* mmap()s a TCP socket (TCP_ZEROCOPY_RECEIVE
					    * maps only sk_receive_queue) */
#define SA_EXE_URGENT		(1u << 2)  /* sends MSG_OOB (syscall or io_uring) */
#define SA_EXE_RX_OPTIONS	(1u << 3)  /* sets SO_RCVLOWAT > 1, SO_PEEK_OFF, receive
					    * timestamps or TCP_INQ on a connected
					    * socket, which redirected bytes ignore */
#define SA_EXE_FIONREAD		(1u << 4)  /* asks FIONREAD/SIOCATMARK where the guard
					    * cannot correct the answer (no
					    * bpf_probe_write_user(): lockdown) */
#define SA_EXE_TX_TIMESTAMPS	(1u << 5)  /* asks for transmit timestamps
					    * (SO_TIMESTAMPING, SCM_TIMESTAMPING) */
#define SA_EXE_ULP		(1u << 6)  /* sets TCP_ULP (kTLS) on a connected socket */
#define SA_EXE_UNSAFE		(SA_EXE_SPLICES | SA_EXE_ZEROCOPY_RX | SA_EXE_URGENT | \
				 SA_EXE_RX_OPTIONS | SA_EXE_FIONREAD | SA_EXE_TX_TIMESTAMPS | \
				 SA_EXE_ULP)
#define SA_PROBATION_CONNS_DEFAULT 8
#define SA_PROBATION_MS_DEFAULT	1000

/* Operator's choice per executable (sockaccel_exe_policy, same key). */
enum sa_exe_action {
	SA_EXE_LEARN = 0,	/* default: probation, then learned behaviour */
	SA_EXE_ACCELERATE = 1,	/* no probation, splice() learning ignored */
	SA_EXE_TCP = 2,		/* never inserted */
};

/*
 * Guard generation (sockaccel_guard, one entry): bumped by every mark the
 * guard or sock_ops puts on a socket record or an executable, so the hot
 * path reads one number per message and looks at records only when it
 * moved (struct sa_sock_state.guard_gen).
 */
struct sa_guard {
	__u64 gen;		/* host byte order */
};

/* Which end of the TCP connection a socket is. */
enum sa_role {
	SA_ROLE_CLIENT = 1,	/* active opener (connect) */
	SA_ROLE_SERVER = 2,	/* passive opener (accept) */
};

/*
 * Sockhash key. Both ends of one TCP connection know both initial sequence
 * numbers, whatever NAT did to the addresses, so each end can compute the
 * key its peer is stored under. Sequence numbers are not rewritten by
 * DNAT/SNAT. The key only nominates a candidate: sk_msg.bpf.c verifies the
 * candidate's own record before redirecting a byte to it.
 */
struct sa_conn_key {
	__u32 client_isn;	/* host byte order: active opener's ISN */
	__u32 server_isn;	/* host byte order: passive opener's ISN */
	__u32 role;		/* host byte order: enum sa_role stored here */
};

/* Listener map key: a listening socket per (netns, family, port). */
struct sa_listen_key {
	__u64 netns_cookie;	/* host byte order */
	__u16 port;		/* host byte order */
	__u16 family;		/* host byte order: AF_INET or AF_INET6 */
	__u32 pad;		/* zero */
};

/* A listening socket in an attached cgroup (sockaccel_listeners). */
struct sa_listener {
	__u64 sk_addr;		/* host byte order: its struct tcp_sock */
	struct sa_exe_key exe;	/* who called listen(): its children's reader */
	__u32 flags;		/* host byte order: SA_LF_* */
	__u32 pad2;		/* zero */
};
#define SA_LF_SPLICED		(1u << 0)  /* a child of it was read with splice() */
#define SA_LF_ZEROCOPY_RX	(1u << 2)  /* a child of it was mmap()ed (zerocopy receive) */
#define SA_LF_EXE_UNKNOWN	(1u << 1)  /* listen() by PID 1 (socket activation):
					    * the program that accepts is unknown */

/*
 * What one client executable's connections to one listener did
 * (sockaccel_short). A psock costs a connection its setup and teardown
 * (measured: connect, 64 B each way, close at 0.7-0.9x of plain); when a
 * program's connections to a port exchange only a message or two, the
 * fast path does not pay that back, and its new ones stay on TCP
 * (short_conns). Judged per client executable: the short connections of
 * one program (a health check's client, a script) must not keep another
 * program's long-lived pool to the same port on TCP.
 */
struct sa_short_key {
	struct sa_listen_key listener;
	struct sa_exe_key client;	/* the client end's executable */
};
struct sa_short {
	__u64 listener_addr;	/* host byte order: the listener (its struct
				 * tcp_sock) these were counted for: a new
				 * listener on the port starts again */
	__u32 avg_msgs;		/* host byte order: EWMA (1/SA_AVG_WEIGHT) of
				 * messages each closed socket sent, fixed point
				 * (SA_AVG_ONE) */
	__u32 samples;		/* host byte order: closed sockets seen (saturates) */
	__u32 skipped;		/* host byte order: connections left on TCP */
	__u32 pad;		/* zero */
};
#define SA_SHORT_MSGS		4	/* fewer on average: short connections */
#define SA_AVG_ONE		16	/* sa_short.avg_msgs: x16 fixed point */
#define SA_AVG_WEIGHT		8	/* ...an EWMA giving each close 1/8 */
#define SA_SHORT_MIN_SAMPLES	16	/* before judging a client program */
#define SA_SHORT_SAMPLE_EVERY	32	/* still insert one in this many */
/*
 * A client left on TCP at connect as short has no sk_storage (that is what
 * it saves); its establishment, in softirq where the program that
 * connected is unknown, knows it by this bit of its bpf_sock_ops_cb_flags.
 * The bit enables BPF_SOCK_OPS_RETRANS_CB, which the program ignores (a
 * retransmit on loopback is rare). It is read only on a client with no
 * sk_storage, which stays on TCP whatever it says: another sock_ops
 * program's use of that flag can only change the reason counted.
 */
#define SA_SHORT_MARK		2u	/* BPF_SOCK_OPS_RETRANS_CB_FLAG */

/*
 * Leaving the sockhash. tcp_bpf's pass path costs about half of plain TCP's
 * throughput, so a socket that will not use the fast path again leaves
 * (sockops.bpf.c, maybe_leave()). While a peer may still redirect to it,
 * it first raises SA_LEAVING_BEACON in its own bpf_sock_ops_cb_flags: the
 * one per-socket bit that sock_ops can set and the peer's sk_msg program
 * can read through its cached tcp_sock pointer. The bit chosen enables
 * BPF_SOCK_OPS_RTO_CB, which the program ignores.
 */
#define SA_LEAVING_BEACON	1u	/* BPF_SOCK_OPS_RTO_CB_FLAG */
#define SA_STAY_NS		(100 * 1000 * 1000ull)

/*
 * Small-write streams. Each redirected message costs an allocation, a lock
 * of the receiver and a wakeup (bpf_tcp_ingress()); TCP coalesces a stream
 * of small writes into few segments (autocork). Request/response traffic
 * finds the peer's queue empty at every send; a stream of small writes
 * finds it behind. Measured here: 78% of 64 B stream messages found unread
 * bytes, 0% of 64 B request/response messages.
 */
#define SA_SMALL_MSG		4096	/* bytes: a "small" message */
#define SA_SMALL_WINDOW		1024	/* small messages per decision */
/* Leave when at least 3/4 of a window found the reader behind. */
#define SA_SMALL_BEHIND_NUM	3
#define SA_SMALL_BEHIND_DEN	4

/*
 * Waiting for the peer's socket lock (sk_msg.bpf.c, wait_for_peer_lock()):
 * the default and largest time bounds, and bpf_loop()'s iteration count,
 * which only matters if the clock stood still (each step reads it).
 */
#define SA_LOCK_SPIN_NS_DEFAULT	(30 * 1000)
#define SA_LOCK_SPIN_NS_MAX	(1000 * 1000)
#define SA_LOCK_SPIN_LOOPS	(1u << 15)

/* Per-socket flags in struct sa_sock_state.flags. */
#define SA_SF_INSERTED		(1u << 0)  /* in sockaccel_socks */
#define SA_SF_PAIRED		(1u << 1)  /* peer record verified and cached */
#define SA_SF_LEFT		(1u << 2)  /* left the sockhash before close */
#define SA_SF_CROSS_NETNS	(1u << 3)  /* peer lives in another netns */
#define SA_SF_PEER_PREACCEPT	(1u << 4)  /* peer may take bytes before accept() */
#define SA_SF_LEAVE_REQ		(1u << 5)  /* no peer will pair: leave when safe */
#define SA_SF_READER_KNOWN	(1u << 6)  /* reader was set at TCP_CONNECT_CB */
#define SA_SF_CLOSED		(1u << 7)  /* its close was accounted */
#define SA_SF_PEER_WAITED	(1u << 8)  /* waited once for its server end */
#define SA_SF_CANDIDATE		(1u << 9)  /* out of the sockhash, may join at a later
					    * segment (join.bpf.c); counted in
					    * sockaccel_join_ports */
#define SA_SF_JOINING		(1u << 10) /* the join hook claimed it and is
					    * inserting it */
#define SA_SF_RECORD		(1u << 11) /* its record (struct sa_record) is
					    * published: deleted at close */
#define SA_SF_PAUSE_REQ		(1u << 12) /* sk_msg asks sock_ops to pause its
					    * sender (maybe_leave(): pause_sender()) */
#define SA_SF_PAUSED		(1u << 13) /* its TCP_NOTSENT_LOWAT is ours (1);
					    * its own is in saved_lowat */

/*
 * Joining after establishment (join.bpf.c). A socket passed at
 * establishment only for something that can change (its mode, its
 * reader's probation, its peer not in yet), or that left for such a
 * reason, is a candidate: the join hook looks at it on each segment that
 * arrives for it and inserts it once the reason is gone. A socket that
 * left waits SA_REJOIN_BACKOFF_NS, doubled at each rejoin up to
 * SA_REJOIN_BACKOFF_MAX_NS, so a connection does not flap.
 */
#define SA_REJOIN_BACKOFF_NS	(2 * 1000 * 1000ull)
#define SA_REJOIN_BACKOFF_MAX_NS (1000 * 1000 * 1000ull)
/*
 * An inserted socket whose peer is a candidate passes its sends to TCP
 * (peer_not_joined) and leaves after this long if the peer has not joined.
 */
#define SA_JOIN_GRACE_NS	(200 * 1000 * 1000ull)
/*
 * A candidate that cannot join yet is looked at again after 1 ms, then
 * twice as long each time up to 1 s, and gives up after 10 s: a server
 * that makes its accepted sockets nonblocking does so at once, and each
 * candidate costs a socket lookup per segment of its port.
 */
#define SA_JOIN_RECHECK_NS	(1000 * 1000ull)
#define SA_JOIN_RECHECK_MAX_NS	(1000 * 1000 * 1000ull)
#define SA_JOIN_PATIENCE_NS	(10 * 1000 * 1000 * 1000ull)
/* Local ports with candidates (sockaccel_join_ports). */
#define SA_PORTS		65536

/*
 * Per-socket state (BPF_MAP_TYPE_SK_STORAGE). User space never reads it
 * through the map; it is here so trace events and tests share one layout.
 */
struct sa_sock_state {
	struct sa_conn_key key;	/* this socket's connection key (its record's key) */
	__u32 slot;		/* host byte order: attach slot (counters, policy) */
	__u64 cookie;		/* host byte order: its socket cookie, never reused:
				 * its sockhash key */
	__u64 peer_cookie;	/* host byte order: the peer's socket cookie once
				 * paired: where its redirects go */
	__u64 netns_cookie;	/* host byte order */
	__u64 bytes_redirected;	/* host byte order: sent via the fast path */
	__u64 bytes_passed;	/* host byte order: sent via the stack */
	__u64 inserted_ns;	/* host byte order: bpf_ktime_get_ns() at insertion
				 * (establishment or join) */
	__u64 join_after_ns;	/* host byte order: a candidate joins no earlier */
	__u64 join_recheck_ns;	/* host byte order: the wait after its next failed
				 * check (SA_JOIN_RECHECK_NS, doubling) */
	__u64 join_deadline_ns;	/* host byte order: it gives up after this */
	__u64 rejoin_backoff_ns;/* host byte order: the wait after its next leave */
	__u64 passed_run;	/* host byte order: bytes passed since the last
				 * redirect (sa_config.stay_limit) */
	__u64 passed_since_ns;	/* host byte order: when that run began */
	__u32 msgs;		/* host byte order: messages sent (sk_msg runs) */
	__u32 small_msgs;	/* host byte order: small messages redirected in
				 * the current window (SA_SMALL_WINDOW) */
	__u32 small_behind;	/* host byte order: ...that found the peer with
				 * unread redirected bytes */
	__u64 peer_addr;	/* host byte order: peer's struct tcp_sock, once paired */
	__u64 peer_consumed;	/* host byte order: redirected bytes the peer had
				 * read when last checked past backlog_limit */
	__u64 peer_read_ns;	/* host byte order: when that last grew */
	__u32 flags;		/* host byte order: SA_SF_*; changed with atomics
				 * where the join hook may run at once */
	__u8 leave_reason;	/* enum sa_reason why it asked to leave */
	__u8 out_reason;	/* enum sa_reason why a candidate is out: its pass
				 * reason at establishment, or why it left */
	__u8 pad3[2];		/* zero */
	__u8 last_reason;	/* enum sa_reason of the last pass decision */
	__u16 family;		/* host byte order: AF_INET or AF_INET6 */
	__u16 local_port;	/* host byte order */
	__u16 remote_port;	/* host byte order */
	__u32 local_ip6[4];	/* network byte order; IPv4 as ::ffff:a.b.c.d */
	__u32 remote_ip6[4];	/* network byte order; IPv4 as ::ffff:a.b.c.d */
	struct sa_exe_key reader;/* executable that reads this socket */
	__u64 guard_gen;	/* host byte order: sa_guard.gen last acted on */
	__u64 paired_ns;	/* host byte order: when the peer record verified */
	__u32 msgs_since_empty;	/* host byte order: messages redirected since
				 * the peer's queue was last seen empty */
	__u32 min_msg_since_empty; /* host byte order: the smallest of them, 0
				 * if none */
	__u64 drain_after_ns;	/* host byte order: no drain wait before this */
	__u32 saved_lowat;	/* host byte order: its TCP_NOTSENT_LOWAT while
				 * SA_SF_PAUSED (0: the sysctl's) */
	__u32 pad4;		/* zero */
};

/*
 * A socket's own public record (sockaccel_records, a plain hash), keyed by
 * its connection key: published at insertion, or when it becomes a join
 * candidate, and deleted at close. sk_msg cannot inspect a sockhash entry
 * (a lookup takes a reference that only bpf_sk_release() drops, and that
 * helper is not available to sk_msg or sock_ops), so each socket publishes
 * its own address and identity here for its peer to verify and read; the
 * peer then redirects to its cookie, which no other socket ever has.
 */
#define SA_RF_GOT_REDIRECT	(1u << 0)  /* a peer decided to redirect here */
#define SA_RF_LEFT		(1u << 1)  /* left the sockhash */
#define SA_RF_LISTENER_NB	(1u << 2)  /* passive, listener was nonblocking */
#define SA_RF_DECLINED		(1u << 3)  /* client: the server end was not inserted */
/*
 * Stops: the guard (splice(), io_uring, mmap(), MSG_OOB) or the sockopt
 * program found a use of the socket that redirected bytes cannot serve;
 * stop_reason says which (enum sa_reason). Both ends leave the sockhash.
 */
#define SA_RF_RX_STOPPED	(1u << 4)  /* no more redirects into it: its reader
					    * reads in a way tcp_bpf_recvmsg()'s
					    * queue does not serve */
#define SA_RF_TX_STOPPED	(1u << 5)  /* its own sends go through TCP from now
					    * on (urgent data, a ULP, ...) */
#define SA_RF_QUIESCED		(1u << 6)  /* ...and no redirect of its own was in
					    * flight then: its peer may leave
					    * without seeing it outside sendmsg() */
#define SA_RF_CANDIDATE		(1u << 7)  /* not in the sockhash now, may join
					    * (SA_SF_CANDIDATE) */

struct sa_record {
	__u64 sk_addr;		/* host byte order: kernel address of its tcp_sock */
	__u64 cookie;		/* host byte order: its socket cookie (sockhash key) */
	__u64 netns_cookie;	/* host byte order */
	__u32 flags;		/* host byte order: SA_RF_* */
	__u16 family;		/* host byte order */
	__u16 local_port;	/* host byte order */
	__u16 remote_port;	/* host byte order */
	__u8 stop_reason;	/* enum sa_reason of the first stop */
	__u8 pad;		/* zero */
	__u32 local_ip6[4];	/* network byte order; IPv4 as ::ffff:a.b.c.d */
	__u32 remote_ip6[4];	/* network byte order; IPv4 as ::ffff:a.b.c.d */
	__u32 lock_waiters;	/* host byte order: senders to its peer now
				 * waiting in wait_for_peer_lock() */
	__u32 pad2;		/* zero */
	struct sa_exe_key reader;/* executable that reads this socket */
	struct sa_exe_key peer_reader;/* a server end: its client's executable,
				 * whose short_conns statistics its close feeds */
};

/*
 * Why a socket was not inserted or a message went through the stack.
 * Counted per attach slot; the loader prints these names.
 */
enum sa_reason {
	SA_R_NONE = 0,
	SA_R_BLOCKING,		/* socket is in blocking mode */
	SA_R_LISTENER_BLOCKING,	/* passive child of a blocking listener */
	SA_R_POLICY,		/* excluded by a policy rule */
	SA_R_REPAIR,		/* TCP_REPAIR socket: sequence numbers forgeable */
	SA_R_PEER_MISSING,	/* no peer socket under the expected key */
	SA_R_PEER_UNVERIFIED,	/* candidate failed pairing verification */
	SA_R_PEER_NOT_ACCEPTED,	/* peer not accept()ed yet */
	SA_R_PEER_BLOCKING,	/* peer would read in blocking mode */
	SA_R_PEER_RCVLOWAT,	/* peer set SO_RCVLOWAT > 1 */
	SA_R_PEER_BACKLOG,	/* peer holds too many unread redirected bytes */
	SA_R_PEER_RXOPTS,	/* peer wants timestamps/TCP_INQ ancillary data */
	SA_R_STACK_PENDING,	/* stack bytes still unacked or unread */
	SA_R_CROSS_NETNS,	/* peer in another netns and that is not allowed */
	SA_R_SELF_BLOCKING,	/* this socket became blocking: leave the map */
	SA_R_PEER_GONE,		/* no peer will ever pair (not local, declined,
				 * closed or left): leave the map */
	SA_R_SHUTDOWN,		/* this socket shut down writing: TCP says EPIPE */
	SA_R_STAYED_ON_TCP,	/* stay_limit bytes and SA_STAY_NS passed in a
				 * row: leave */
	SA_R_SMALL_STREAM,	/* streams small writes to a reader that lags:
				 * TCP's autocork is cheaper, leave */
	SA_R_SHORT_CONNS,	/* connections to this port are short: a psock
				 * would cost more than it saves */
	SA_R_SPLICE_READER,	/* its reader (executable or listener) reads
				 * sockets with splice(), which never sees
				 * redirected bytes (tcp_splice_read()) */
	SA_R_PROBATION,		/* its reader's executable is new: not yet known
				 * not to splice (struct sa_exe) */
	SA_R_READER_UNKNOWN,	/* its reader cannot be told (listener created
				 * before load, or by PID 1 for another program) */
	SA_R_URGENT,		/* this socket sent MSG_OOB: urgent data and all
				 * after it go through TCP */
	SA_R_ZEROCOPY_READER,	/* its reader mmap()s TCP sockets: zerocopy
				 * receive maps only sk_receive_queue */
	SA_R_RX_OPTIONS,	/* its reader set a receive option mid-stream
				 * that redirected bytes ignore (SO_RCVLOWAT,
				 * SO_PEEK_OFF, timestamps, TCP_INQ) */
	SA_R_ULP,		/* an upper layer protocol (kTLS) on either end:
				 * its records and redirected bytes do not mix */
	SA_R_ZEROCOPY_TX,	/* SO_ZEROCOPY: MSG_ZEROCOPY completions come
				 * only from the TCP stack */
	SA_R_TX_TIMESTAMPS,	/* SO_TIMESTAMPING transmit timestamps come only
				 * from the TCP stack */
	SA_R_FIONREAD_READER,	/* its reader asks FIONREAD/SIOCATMARK and the
				 * answer cannot be corrected on this machine */
	SA_R_PEER_NOT_JOINED,	/* the peer end is out of the sockhash for now
				 * (a join candidate): its sends and this
				 * socket's stay on TCP until it joins */
	SA_R_MAX,
	SA_R_UNDECIDED = 0xff,	/* sa_sock_state.last_reason before any send */
};

/* Per-CPU counters, one block per attach slot. */
enum sa_counter {
	SA_C_SOCKS_SEEN = 0,	/* established sockets in an attached cgroup */
	SA_C_SOCKS_ADDED,	/* inserted into the sockhash */
	SA_C_INSERT_FAILED,	/* sockhash full or insertion refused */
	SA_C_SOCKS_LEFT,	/* left the sockhash before close */
	SA_C_SOCKS_CLOSED,	/* inserted sockets that closed */
	SA_C_MSGS_REDIRECTED,
	SA_C_BYTES_REDIRECTED,
	SA_C_MSGS_PASSED,
	SA_C_BYTES_PASSED,
	SA_C_LOOKUP_MISSES,	/* peer key not in the sockhash */
	SA_C_TO_STACK,		/* a direction left the fast path */
	SA_C_TO_REDIRECT,	/* a direction (re)entered the fast path */
	SA_C_LOCK_WAITS,	/* redirects that found the peer's lock owned
				 * and waited for it (wait_for_peer_lock()) */
	SA_C_LOCK_WAIT_TIMEOUTS,/* ... and gave up after lock_spin_ns */
	SA_C_SPLICE_READS,	/* splice() calls reading a TCP socket (guard) */
	SA_C_SPLICE_SWITCHES,	/* ...from an inserted socket with nothing
				 * redirected unread: it leaves, nothing lost */
	SA_C_SPLICE_KILLS,	/* ...from a socket holding unread redirected
				 * bytes: the reader was killed (SIGKILL), the
				 * one way left to not hand it a short stream */
	SA_C_SPLICE_UNSURE,	/* ...while its sender stayed inside sendmsg()
				 * past SA_GUARD_WAIT_NS (see guard.bpf.c) */
	SA_C_URGENT_SENDS,	/* MSG_OOB sends from an inserted socket */
	SA_C_URGENT_UNREAD,	/* ...while the peer still held unread
				 * redirected bytes (recv(MSG_OOB) before
				 * reading them would return them) */
	SA_C_ZEROCOPY_MAPS,	/* mmap() of a TCP socket (guard) */
	SA_C_ZEROCOPY_KILLS,	/* ...of one holding unread redirected bytes:
				 * the reader was killed, as for splice() */
	SA_C_SOCKOPT_STOPS,	/* setsockopt() calls that took an inserted
				 * socket off the fast path (sockopt.bpf.c) */
	SA_C_SOCKOPT_REFUSED,	/* ...refused instead, with the errno of a
				 * kernel without the feature, because
				 * redirected bytes were unread or in flight */
	SA_C_SOCKOPT_UNREAD,	/* ...that could not be refused and found
				 * redirected bytes unread: those bytes ignore
				 * the new option (early EPOLLIN for
				 * SO_RCVLOWAT, no timestamp) */
	SA_C_IOCTL_FIXES,	/* FIONREAD/SIOCATMARK answers corrected to
				 * what TCP would say (guard) */
	SA_C_MSG_BOUND,		/* redirects refused for the messages queued,
				 * not their bytes (rule 3, queued_cost()) */
	SA_C_PEER_WAITS,	/* first sends that waited for their local
				 * server end to exist (wait_for_peer_record()) */
	SA_C_PEER_WAIT_NS,	/* ...total time they waited */
	SA_C_SOCKS_JOINED,	/* inserted after establishment, not having been
				 * in before (join.bpf.c) */
	SA_C_SOCKS_REJOINED,	/* inserted again after leaving */
	SA_C_JOIN_CHECKS,	/* segments on which the join hook looked at a
				 * candidate */
	SA_C_JOIN_FAILED,	/* joins the sockhash refused (full, or the
				 * socket changed meanwhile) */
	SA_C_DRAIN_WAITS,	/* sends that waited for the reader to drain this
				 * direction's TCP bytes (wait_for_drain()) */
	SA_C_DRAIN_WAIT_OK,	/* ...after which the send was redirected */
	SA_C_SENDER_PAUSES,	/* senders whose TCP_NOTSENT_LOWAT was lowered so
				 * that their direction can drain (pause_sender()) */
	SA_C_JOIN_UNHOOKED,	/* sockets passed or left for a reason that can go
				 * away, in a network namespace without a join
				 * hook: they would have been candidates there
				 * (sockaccel attach hooks the namespaces of the
				 * cgroup's processes) */
	SA_C_REASON_BASE,	/* SA_R_MAX counters follow, by enum sa_reason:
				 * messages and connections passed */
	SA_C_LEAVE_BASE = SA_C_REASON_BASE + SA_R_MAX,	/* sockets that left, by reason */
	SA_C_JOIN_BASE = SA_C_LEAVE_BASE + SA_R_MAX,	/* joins, by why they were out */
	SA_C_REJOIN_BASE = SA_C_JOIN_BASE + SA_R_MAX,	/* rejoins, by why they left */
	SA_C_MAX = SA_C_REJOIN_BASE + SA_R_MAX,
};

struct sa_counters {
	__u64 c[SA_C_MAX];	/* host byte order */
};

/* Kernel behaviours found by the load-time probe (sa_config.kernel_flags). */
#define SA_KF_RECV_WAITS_SAFELY	(1u << 0)  /* tcp_bpf_recvmsg loops on wakeups */
#define SA_KF_FIONREAD		(1u << 2)  /* FIONREAD counts redirected bytes */
#define SA_KF_FIONREAD_STACK	(1u << 3)  /* ...and bytes that came through TCP */
#define SA_KF_SPLICE_READS_PSOCK (1u << 4) /* splice() reads redirected bytes:
					    * no splice guard needed */
#define SA_KF_RMEM_COUNTS_REDIRECTED (1u << 5) /* sk_rmem_alloc counts unread
					    * redirected bytes (bpf_tcp_ingress()
					    * charges them): the backlog measure
					    * where psock->msg_tot_len is absent */
#define SA_KF_CORE_READS	(1u << 6)  /* loaded the SA_CORE_READS objects
					    * (no bpf_rdonly_cast(): 6.1) */
#define SA_KF_PROG_ATTACH	(1u << 7)  /* sk_msg attached with
					    * bpf_prog_attach() (no sockmap
					    * links before 6.10) */
#define SA_KF_IOCTL_FIXUP	(1u << 8)  /* the guard corrects FIONREAD and
					    * SIOCATMARK answers
					    * (bpf_probe_write_user() allowed) */

/* Global configuration: single-entry array, changed live by the loader. */
struct sa_config {
	__u32 trace;		/* host byte order: 1 = emit connection events */
	__u32 kernel_flags;	/* host byte order: SA_KF_* */
	__u32 allow_cross_netns;/* host byte order: 1 = pair across netns */
	__u32 enabled;		/* host byte order: 0 = insert nothing new */
	__u64 backlog_limit;	/* host byte order: max unread redirected bytes
				 * at a receiver that is not reading */
	__u64 backlog_active;	/* host byte order: the same while it keeps
				 * reading (>= backlog_limit) */
	__u64 stay_limit;	/* host byte order: bytes a direction may pass
				 * in a row before its socket leaves */
	__u32 short_conns;	/* host byte order: 1 = leave short connections
				 * (struct sa_listener) on TCP */
	__u32 lock_spin_ns;	/* host byte order: longest wait for a peer's
				 * socket lock before a redirect; 0 = none */
	__u32 probation_conns;	/* host byte order: connections an executable
				 * makes or accepts before its sockets are
				 * inserted (struct sa_exe) */
	__u32 mem_margin_pages;	/* host byte order: pages tcp_memory_allocated
				 * may lag by (per-CPU reserves) */
	__u64 probation_ns;	/* host byte order: and time since it was first
				 * seen */
	__u32 join_off;		/* host byte order: 1 = the join hook inserts
				 * nothing (set by unload first: a tc filter in
				 * a namespace it cannot enter stays attached) */
	__u32 pad;		/* zero */
};

/* Per-attached-cgroup record, keyed by cgroup id (host byte order u64). */
struct sa_cgroup_info {
	__u32 slot;		/* host byte order: 1..SA_MAX_CGROUPS-1 */
	__u32 nr_rules;		/* host byte order */
};

/* Policy rule, evaluated in order at establishment; first match wins. */
enum sa_rule_action { SA_ACT_INCLUDE = 1, SA_ACT_EXCLUDE = 2 };
#define SA_RULE_LOCAL_PORT	(1u << 0)
#define SA_RULE_REMOTE_PORT	(1u << 1)
#define SA_RULE_LOCAL_ADDR	(1u << 2)
#define SA_RULE_REMOTE_ADDR	(1u << 3)
#define SA_RULE_PORT		(1u << 4)  /* either end's port in local_port_lo..hi */

struct sa_rule {
	__u8 action;		/* enum sa_rule_action */
	__u8 local_prefix;	/* 0..128, over the ::ffff:-mapped address */
	__u8 remote_prefix;	/* 0..128, over the ::ffff:-mapped address */
	__u8 pad;		/* zero */
	__u16 match;		/* host byte order: SA_RULE_* fields tested */
	__u16 local_port_lo;	/* host byte order, inclusive */
	__u16 local_port_hi;	/* host byte order, inclusive */
	__u16 remote_port_lo;	/* host byte order, inclusive */
	__u16 remote_port_hi;	/* host byte order, inclusive */
	__u16 pad2;		/* zero */
	__u32 local_addr6[4];	/* network byte order; IPv4 as ::ffff:a.b.c.d */
	__u32 remote_addr6[4];	/* network byte order; IPv4 as ::ffff:a.b.c.d */
};

struct sa_policy {
	__u32 nr_rules;		/* host byte order */
	__u32 default_action;	/* host byte order: enum sa_rule_action */
	struct sa_rule rules[SA_MAX_RULES];
};

/* Trace events (ring buffer), one per connection decision or close. */
enum sa_event_type {
	SA_EV_ACCELERATED = 1,	/* inserted into the sockhash */
	SA_EV_PASSED,		/* established but left on the stack */
	SA_EV_CLOSED,		/* an inserted socket closed */
	SA_EV_LEFT,		/* removed from the sockhash before close */
	SA_EV_USE_LEARNED,	/* an executable was seen using a TCP socket in a
				 * way the fast path cannot serve (reason) for
				 * the first time */
	SA_EV_READER_SWITCH,	/* ...an inserted socket, nothing unread: it
				 * leaves the sockhash, no byte lost */
	SA_EV_READER_KILL,	/* ...an inserted socket holding unread
				 * redirected bytes, by a reader that cannot
				 * read them (reason): the reader was killed */
	SA_EV_URGENT,		/* an inserted socket sent MSG_OOB */
	SA_EV_SOCKOPT,		/* setsockopt() took an inserted socket off the
				 * fast path (reason), or was refused (unread
				 * != 0) */
	SA_EV_JOINED,		/* inserted after establishment (reason: why it
				 * had been out) */
	SA_EV_REJOINED,		/* inserted again after leaving (reason: why it
				 * left) */
};

struct sa_event {
	__u64 ts_ns;		/* host byte order: bpf_ktime_get_ns() */
	__u64 cgroup_id;	/* host byte order */
	__u64 bytes_redirected;	/* host byte order */
	__u64 bytes_passed;	/* host byte order */
	__u32 type;		/* host byte order: enum sa_event_type */
	__u32 reason;		/* host byte order: enum sa_reason */
	__u16 family;		/* host byte order */
	__u16 role;		/* host byte order: enum sa_role */
	__u16 local_port;	/* host byte order */
	__u16 remote_port;	/* host byte order */
	__u32 local_ip6[4];	/* network byte order */
	__u32 remote_ip6[4];	/* network byte order */
	__u32 pid;		/* host byte order: guard events: the process */
	__u32 unread;		/* host byte order: guard events: redirected
				 * bytes the socket held unread */
	struct sa_exe_key exe;	/* guard events: its executable */
	char comm[16];		/* guard events: its comm, for display */
};

#endif /* SOCKACCEL_H */
