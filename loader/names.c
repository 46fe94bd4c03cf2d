// SPDX-License-Identifier: GPL-2.0
/*
 * Names of what the BPF side counts and reports (names.h), in one place:
 * a new counter, pass reason or event gets its name here and in
 * doc/sockaccel.8.
 */
#include <stdbool.h>
#include <linux/types.h>
#include "sockaccel.h"
#include "names.h"

static const char *const counter_names[SA_C_REASON_BASE] = {
	[SA_C_SOCKS_SEEN] = "socks_seen",
	[SA_C_SOCKS_ADDED] = "socks_added",
	[SA_C_INSERT_FAILED] = "insert_failed",
	[SA_C_SOCKS_LEFT] = "socks_left",
	[SA_C_SOCKS_CLOSED] = "socks_closed",
	[SA_C_MSGS_REDIRECTED] = "msgs_redirected",
	[SA_C_BYTES_REDIRECTED] = "bytes_redirected",
	[SA_C_MSGS_PASSED] = "msgs_passed",
	[SA_C_BYTES_PASSED] = "bytes_passed",
	[SA_C_LOOKUP_MISSES] = "lookup_misses",
	[SA_C_TO_STACK] = "to_stack",
	[SA_C_TO_REDIRECT] = "to_redirect",
	[SA_C_LOCK_WAITS] = "lock_waits",
	[SA_C_LOCK_WAIT_TIMEOUTS] = "lock_wait_timeouts",
	[SA_C_SPLICE_READS] = "splice_reads",
	[SA_C_SPLICE_SWITCHES] = "splice_switches",
	[SA_C_SPLICE_KILLS] = "splice_kills",
	[SA_C_SPLICE_UNSURE] = "splice_unsure",
	[SA_C_URGENT_SENDS] = "urgent_sends",
	[SA_C_URGENT_UNREAD] = "urgent_unread",
	[SA_C_ZEROCOPY_MAPS] = "zerocopy_maps",
	[SA_C_ZEROCOPY_KILLS] = "zerocopy_kills",
	[SA_C_SOCKOPT_STOPS] = "sockopt_stops",
	[SA_C_SOCKOPT_REFUSED] = "sockopt_refused",
	[SA_C_SOCKOPT_UNREAD] = "sockopt_unread",
	[SA_C_IOCTL_FIXES] = "ioctl_fixes",
	[SA_C_MSG_BOUND] = "msg_bound",
	[SA_C_PEER_WAITS] = "peer_waits",
	[SA_C_PEER_WAIT_NS] = "peer_wait_ns",
	[SA_C_SOCKS_JOINED] = "socks_joined",
	[SA_C_SOCKS_REJOINED] = "socks_rejoined",
	[SA_C_JOIN_CHECKS] = "join_checks",
	[SA_C_JOIN_FAILED] = "join_failed",
	[SA_C_DRAIN_WAITS] = "drain_waits",
	[SA_C_DRAIN_WAIT_OK] = "drain_wait_ok",
	[SA_C_SENDER_PAUSES] = "sender_pauses",
	[SA_C_JOIN_UNHOOKED] = "join_unhooked",
};

static const char *const counter_help_texts[SA_C_REASON_BASE] = {
	[SA_C_SOCKS_SEEN] = "Established sockets in an attached cgroup.",
	[SA_C_SOCKS_ADDED] = "Sockets inserted into the sockhash (on the fast path).",
	[SA_C_INSERT_FAILED] = "Insertions refused (sockhash or records full).",
	[SA_C_SOCKS_LEFT] = "Sockets that left the sockhash before closing.",
	[SA_C_SOCKS_CLOSED] = "Inserted sockets that closed.",
	[SA_C_MSGS_REDIRECTED] = "Messages handed straight to the peer socket.",
	[SA_C_BYTES_REDIRECTED] = "Bytes handed straight to the peer socket.",
	[SA_C_MSGS_PASSED] = "Messages of inserted sockets sent through TCP.",
	[SA_C_BYTES_PASSED] = "Bytes of inserted sockets sent through TCP.",
	[SA_C_SOCKS_JOINED] = "Sockets inserted after establishment (late join).",
	[SA_C_SOCKS_REJOINED] = "Sockets inserted again after leaving.",
	[SA_C_JOIN_UNHOOKED] = "Sockets that could join later but are in a network namespace without the join hook.",
};

static const char *const reason_names[SA_R_MAX] = {
	[SA_R_NONE] = "none",
	[SA_R_BLOCKING] = "blocking",
	[SA_R_LISTENER_BLOCKING] = "listener_blocking",
	[SA_R_POLICY] = "policy",
	[SA_R_REPAIR] = "repair",
	[SA_R_PEER_MISSING] = "peer_missing",
	[SA_R_PEER_UNVERIFIED] = "peer_unverified",
	[SA_R_PEER_NOT_ACCEPTED] = "peer_not_accepted",
	[SA_R_PEER_BLOCKING] = "peer_blocking",
	[SA_R_PEER_RCVLOWAT] = "peer_rcvlowat",
	[SA_R_PEER_BACKLOG] = "peer_backlog",
	[SA_R_PEER_RXOPTS] = "peer_rxopts",
	[SA_R_STACK_PENDING] = "stack_pending",
	[SA_R_CROSS_NETNS] = "cross_netns",
	[SA_R_SELF_BLOCKING] = "self_blocking",
	[SA_R_PEER_GONE] = "peer_gone",
	[SA_R_SHUTDOWN] = "shutdown",
	[SA_R_STAYED_ON_TCP] = "stayed_on_tcp",
	[SA_R_SMALL_STREAM] = "small_stream",
	[SA_R_SHORT_CONNS] = "short_conns",
	[SA_R_SPLICE_READER] = "splice_reader",
	[SA_R_PROBATION] = "probation",
	[SA_R_READER_UNKNOWN] = "reader_unknown",
	[SA_R_URGENT] = "urgent",
	[SA_R_ZEROCOPY_READER] = "zerocopy_reader",
	[SA_R_RX_OPTIONS] = "rx_options",
	[SA_R_ULP] = "ulp",
	[SA_R_ZEROCOPY_TX] = "zerocopy_tx",
	[SA_R_TX_TIMESTAMPS] = "tx_timestamps",
	[SA_R_FIONREAD_READER] = "fionread_reader",
	[SA_R_PEER_NOT_JOINED] = "peer_not_joined",
};

/* The counters kept per reason (enum sa_counter), by their JSON and text names. */
const struct reason_group reason_groups[] = {
	{ "pass_reasons", SA_C_REASON_BASE },
	{ "leave_reasons", SA_C_LEAVE_BASE },
	{ "join_reasons", SA_C_JOIN_BASE },
	{ "rejoin_reasons", SA_C_REJOIN_BASE },
	{ NULL, 0 },
};

const char *reason_name(unsigned int r)
{
	return r < SA_R_MAX && reason_names[r] ? reason_names[r] : "unknown";
}

const char *counter_name(unsigned int c)
{
	return c < SA_C_REASON_BASE ? counter_names[c] : reason_name((c - SA_C_REASON_BASE) % SA_R_MAX);
}

const char *counter_help(unsigned int c)
{
	return c < SA_C_REASON_BASE && counter_help_texts[c] ? counter_help_texts[c] :
	       "See sockaccel(8), COUNTERS.";
}

const char *event_name(__u32 t)
{
	switch (t) {
	case SA_EV_ACCELERATED: return "accelerated";
	case SA_EV_PASSED: return "passed";
	case SA_EV_CLOSED: return "closed";
	case SA_EV_LEFT: return "left";
	case SA_EV_USE_LEARNED: return "use_learned";
	case SA_EV_READER_SWITCH: return "reader_switch";
	case SA_EV_READER_KILL: return "reader_kill";
	case SA_EV_URGENT: return "urgent";
	case SA_EV_SOCKOPT: return "sockopt";
	case SA_EV_JOINED: return "joined";
	case SA_EV_REJOINED: return "rejoined";
	}
	return "unknown";
}

void kernel_flags_json(struct json *w, __u32 flags)
{
	json_start_object(w);
	json_field_bool(w, "recv_waits_safely", flags & SA_KF_RECV_WAITS_SAFELY);
	json_field_bool(w, "fionread_counts_redirected", flags & SA_KF_FIONREAD);
	json_field_bool(w, "fionread_counts_tcp", flags & SA_KF_FIONREAD_STACK);
	json_field_bool(w, "splice_reads_redirected", flags & SA_KF_SPLICE_READS_PSOCK);
	json_field_bool(w, "rmem_counts_redirected", flags & SA_KF_RMEM_COUNTS_REDIRECTED);
	json_field_str(w, "reads", flags & SA_KF_CORE_READS ? "probe_read" : "rdonly_cast");
	json_field_str(w, "sk_msg_attach", flags & SA_KF_PROG_ATTACH ? "prog_attach" : "link");
	json_field_bool(w, "ioctl_fixup", flags & SA_KF_IOCTL_FIXUP);
	json_end(w);
}

void kernel_flags_describe(__u32 flags, FILE *f)
{
	bool waits = flags & SA_KF_RECV_WAITS_SAFELY, fion = flags & SA_KF_FIONREAD;
	bool fion_stack = flags & SA_KF_FIONREAD_STACK, splice = flags & SA_KF_SPLICE_READS_PSOCK;
	bool rmem = flags & SA_KF_RMEM_COUNTS_REDIRECTED, core = flags & SA_KF_CORE_READS;
	bool prog_attach = flags & SA_KF_PROG_ATTACH, fixup = flags & SA_KF_IOCTL_FIXUP;

	fprintf(f, "  kernel       blocking reads: %s\n",
		waits ? "safe (tcp_bpf_recvmsg waits again after wakeups)"
		      : "unsafe (tcp_bpf_recvmsg returns EAGAIN on wakeups): blocking sockets stay on TCP");
	fprintf(f, "               FIONREAD on redirected bytes: %s; on bytes through TCP: %s\n",
		fion ? "counted" : "not counted", fion_stack ? "counted" : "not counted");
	fprintf(f, "               FIONREAD and SIOCATMARK answers: %s\n",
		fixup ? "corrected by the guard to what TCP would say"
		      : "cannot be corrected (bpf_probe_write_user refused: lockdown?): "
			"programs that ask stay on TCP");
	fprintf(f, "               sk_rmem_alloc counts redirected bytes: %s\n", rmem ? "yes" : "no");
	fprintf(f, "               programs read peers with %s; sk_msg attached with %s\n",
		core ? "probe reads (no bpf_rdonly_cast: 6.1)" : "bpf_rdonly_cast (direct loads)",
		prog_attach ? "bpf_prog_attach (no sockmap links before 6.10)" : "a link");
	fprintf(f, "               splice() from a socket: %s\n",
		splice ? "reads redirected bytes (no splice guard needed)"
		       : "does not read redirected bytes: splice readers stay on TCP (guard)");
}
