/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Maps used by both programs. Each .bpf.c is its own object and skeleton
 * and declares every map; the loader pins the first object's maps under
 * SA_PIN_ROOT (names carry a "sockaccel_" prefix) and the second object,
 * like every later load, reuses those pins, so there is one set of maps.
 */
#ifndef SOCKACCEL_MAPS_BPF_H
#define SOCKACCEL_MAPS_BPF_H

#include "sockaccel.h"

/*
 * Inserted sockets by socket cookie; sk_msg.bpf.c is attached here. The
 * cookie (sock_gen_cookie(): a 64-bit counter) is never reused, so once a
 * peer is verified through its record (by connection key), a redirect can
 * only ever reach that very socket, however the key is re-created later.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SA_DEFAULT_MAX_SOCKS);	/* loader may resize */
	__type(key, __u64);
	__type(value, __u64);
} sockaccel_socks SEC(".maps");

/*
 * Public records of inserted sockets and join candidates, by connection
 * key (see struct sa_record). A plain hash, not an LRU: maybe_leave()
 * reads a missing record as "that socket closed", which an LRU eviction
 * must never fake. Records leave at close (on_state_change()); when the
 * map is full a new connection stays on TCP (insert_failed).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * SA_DEFAULT_MAX_SOCKS);	/* loader may resize */
	__type(key, struct sa_conn_key);
	__type(value, struct sa_record);
} sockaccel_records SEC(".maps");

/*
 * Listening sockets in attached cgroups (struct sa_listener), so a passive
 * child can consult its listener's current O_NONBLOCK at establishment
 * (the child has no struct socket until accept()), and a client can find
 * its short_conns statistics. Entries leave when the listener closes
 * (STATE_CB).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct sa_listen_key);
	__type(value, struct sa_listener);
} sockaccel_listeners SEC(".maps");

/* Per listener and client executable: are its connections short (struct sa_short)? */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct sa_short_key);
	__type(value, struct sa_short);
} sockaccel_short SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sa_sock_state);
} sockaccel_sock_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sa_config);
} sockaccel_config SEC(".maps");

/* Attached cgroups: cgroup id -> slot. Written by the loader only. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SA_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct sa_cgroup_info);
} sockaccel_cgroups SEC(".maps");

/* Policy per slot, replaced live by `sockaccel policy`. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SA_MAX_CGROUPS);
	__type(key, __u32);
	__type(value, struct sa_policy);
} sockaccel_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SA_MAX_CGROUPS);
	__type(key, __u32);
	__type(value, struct sa_counters);
} sockaccel_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} sockaccel_events SEC(".maps");

/*
 * Executables: what was learned (struct sa_exe) and what the operator chose
 * (enum sa_exe_action). Both are pinned under the state directory beside
 * the pin root, which unload keeps: learning must outlive a reload.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct sa_exe_key);
	__type(value, struct sa_exe);
} sockaccel_exes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct sa_exe_key);
	__type(value, __u32);		/* enum sa_exe_action */
} sockaccel_exe_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sa_guard);
} sockaccel_guard SEC(".maps");

/*
 * Scratch space for building a record (struct sa_record): sock_ops'
 * stack (512 bytes) already holds the new socket's state.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sa_record);
} sockaccel_scratch SEC(".maps");

/*
 * Join candidates per local port (host byte order index): the join hook
 * (join.bpf.c) runs on every segment loopback delivers, and looks a
 * socket up only when its destination port has one. Index 0 (no
 * connected socket has local port 0) counts them all: with none, the hook
 * returns before parsing the segment.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SA_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} sockaccel_join_ports SEC(".maps");

/*
 * When the join hook next needs to look up the socket of a segment to
 * this local port (index as sockaccel_join_ports; bpf_ktime_get_ns(),
 * host byte order; 0: at once). Set when the port's only candidate is
 * not due, so a candidate on probation or in a backoff does not cost each
 * segment a socket lookup; a new candidate on the port resets it
 * (sa_join_due_reset()).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SA_PORTS);
	__type(key, __u32);
	__type(value, __u64);
} sockaccel_join_due SEC(".maps");

/*
 * Network namespaces with a join hook (netns cookie, host byte order ->
 * the ifindex it is attached to), written by the loader: a socket becomes
 * a candidate only where a hook will see its segments. Where load ran, and
 * the namespaces of attached cgroups' processes (attach; one per pod).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} sockaccel_join_netns SEC(".maps");

#endif /* SOCKACCEL_MAPS_BPF_H */
