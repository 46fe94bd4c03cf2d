// SPDX-License-Identifier: GPL-2.0
/*
 * The floor: bench/run.sh's "floor" variant attaches these to a cgroup of
 * its own, at the three cgroup hooks sockaccel attaches (sock_ops,
 * getsockopt, setsockopt). Each returns at once and sets no sock_ops
 * callback flags, so a connection there pays only what the kernel charges
 * for running a cgroup's programs: __cgroup_bpf_run_filter_sock_ops() on
 * every base callback (connect, both establishments, timeout, receive
 * window and ECN initialisation), and the option copies of
 * __cgroup_bpf_run_filter_{get,set}sockopt() on every call. A connection
 * that sockaccel leaves on TCP (short, blocking, on probation) can cost no
 * less than that; sockaccel/floor is what its decisions add.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("sockops")
int floor_sockops(struct bpf_sock_ops *skops)
{
	return 1;
}

/* 1: the kernel's own answer stands (ctx->retval untouched). */
SEC("cgroup/getsockopt")
int floor_getopt(struct bpf_sockopt *ctx)
{
	return 1;
}

/* 1: the kernel handles the option as given (optlen untouched). */
SEC("cgroup/setsockopt")
int floor_setopt(struct bpf_sockopt *ctx)
{
	return 1;
}
