/* SPDX-License-Identifier: GPL-2.0 */
#ifndef SOCKACCEL_LOADER_MAPS_H
#define SOCKACCEL_LOADER_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "sockaccel.h"

/*
 * The pinned objects (maps.c): their names, where they are pinned, opening
 * them, and what the loader reads and writes in the maps (the config, the
 * counters, an attach slot).
 */

/* The maps (bpf/maps.bpf.h), each pinned under its own name. */
#define MAP_SOCKS		"sockaccel_socks"	/* the sockhash */
#define MAP_RECORDS		"sockaccel_records"
#define MAP_LISTENERS		"sockaccel_listeners"
#define MAP_SOCK_STATES		"sockaccel_sock_states"
#define MAP_CONFIG		"sockaccel_config"	/* struct sa_config, key 0 */
#define MAP_CGROUPS		"sockaccel_cgroups"	/* cgroup id -> struct sa_cgroup_info */
#define MAP_POLICY		"sockaccel_policy"	/* slot -> struct sa_policy */
#define MAP_STATS		"sockaccel_stats"	/* slot -> per-CPU struct sa_counters */
#define MAP_EVENTS		"sockaccel_events"	/* trace's ring buffer */
#define MAP_GUARD		"sockaccel_guard"	/* struct sa_guard, key 0 */
#define MAP_JOIN_NETNS		"sockaccel_join_netns"	/* netns cookie -> ifindex of its join hook,
							 * | SA_JOIN_TC_FILTER */
/* The join hook there is a tc filter: unload enters the namespace to remove it. */
#define SA_JOIN_TC_FILTER	0x80000000u
/* State maps: pinned under state_root(), they outlive unload. */
#define MAP_EXES		"sockaccel_exes"	/* what was learned per executable */
#define MAP_EXE_POLICY		"sockaccel_exe_policy"	/* the operator's choice per executable */

/* Every pin under the pin root starts so (a map's name too). */
#define PIN_PREFIX		"sockaccel_"
#define PIN_PROG_SOCKOPS	"sockaccel_sockops"
#define PIN_PROG_SK_MSG		"sockaccel_sk_msg"
#define PIN_PROG_SOCKOPT	"sockaccel_sockopt"
#define PIN_PROG_GETSOCKOPT	"sockaccel_getsockopt"
#define PIN_LINK_SK_MSG		"sockaccel_sk_msg_link"
#define PIN_PROG_JOIN		"sockaccel_join"
#define PIN_LINK_JOIN		"sockaccel_join_link"	/* tcx link on lo (6.6+) */
#define PIN_LINK_JOIN_NETNS_PREFIX "sockaccel_join_link_"	/* + netns cookie (hex): tcx link
							 * on lo of another netns (6.6+) */
#define PIN_CGROUP_PREFIX	"sockaccel_cgroup_"	/* + cgroup id */
#define PIN_LINK_GUARD_PREFIX	"sockaccel_guard_"	/* + program: its tracepoint link */
#define PIN_LINK_SOCKOPT	"sockopt-"	/* + cgroup id: a guard's cgroup link */
#define PIN_LINK_GETSOCKOPT	"getsockopt-"	/* + cgroup id: the same for getsockopt */

const char *pin_root(void);
const char *state_root(void);
int pin_path(char *buf, size_t len, const char *name);
int open_pinned(const char *name);
bool is_state_map(const char *name);
int pin_path_of_map(char *buf, size_t len, const char *name);
int open_pinned_map(const char *name);
bool is_loaded(void);

int read_config(struct sa_config *cfg);
int write_config(const struct sa_config *cfg);
int read_counters(__u32 slot, struct sa_counters *sum);	/* slot -1: all */
/* A slot given to a new cgroup: counters zero, the default policy. */
void reset_slot(__u32 slot);
/* Entries of a map with __u64 keys: the sockhash (socket cookies), MAP_JOIN_NETNS. */
unsigned int count_u64_keys(int fd);

#endif
