// SPDX-License-Identifier: GPL-2.0
/*
 * The join hook (bpf/join.bpf.c) on loopback's ingress, in the network
 * namespace the loader runs in: a tcx link where the kernel has them
 * (6.6+), pinned like every other link, else a classic tc filter under
 * the clsact qdisc, whose handle and priority are derived from the pin
 * root so that each instance finds and removes its own (a filter cannot
 * be pinned). The namespace's cookie goes into sockaccel_join_netns:
 * sockets there may become join candidates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "common.h"
#include "maps.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE		71
#endif
/* enum bpf_attach_type in 6.6+ (uapi/linux/bpf.h); libbpf 1.1's headers predate it. */
#define SA_BPF_TCX_INGRESS	46

/* The cookie of the loader's own network namespace (5.14+), 0 if unknown. */
static __u64 own_netns_cookie(void)
{
	__u64 cookie = 0;
	socklen_t len = sizeof(cookie);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
		cookie = 0;
	close(fd);
	return cookie;
}

/* This instance's tc filter: handle and priority from its pin root (FNV-1a). */
static void filter_id(__u32 *handle, __u32 *priority)
{
	const unsigned char *p = (const unsigned char *)pin_root();
	__u32 h = 2166136261u;

	while (*p)
		h = (h ^ *p++) * 16777619u;
	*handle = h | 1;
	*priority = 0xc000 + (h >> 20);	/* 0xc000..0xcfff: clear of tc's defaults */
}

static int attach_filter(int prog_fd, int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	int err;

	filter_id(&opts.handle, &opts.priority);
	/* The clsact qdisc stays after unload: other users' filters may sit under it. */
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	return bpf_tc_attach(&hook, &opts);
}

int join_hook_attach(int prog_fd, const char **how)
{
	char p[PATH_MAX];
	int ifindex = if_nametoindex("lo"), map, link, err;
	__u64 cookie = own_netns_cookie();
	__u32 v;

	*how = "none";
	if (!ifindex || !cookie)
		return err_msg("no loopback device or netns cookie here: connections join only at establishment");
	pin_path(p, sizeof(p), PIN_LINK_JOIN);
	unlink(p);	/* a killed load's: unpinning detaches it */
	link = getenv_flag("SOCKACCEL_TC_FILTER") ? -1 :
	       bpf_link_create(prog_fd, ifindex, SA_BPF_TCX_INGRESS, NULL);
	if (link >= 0) {
		err = bpf_obj_pin(link, p) ? -errno : 0;
		close(link);
		if (err)
			return err_errno(-err, NULL, "cannot pin %s", p);
		*how = "tcx";
	} else {
		err = attach_filter(prog_fd, ifindex);
		if (err)
			return err_errno(-err, "connections join only at establishment",
					 "cannot attach the join hook to lo");
		*how = "tc";
	}
	v = ifindex;
	map = open_pinned(MAP_JOIN_NETNS);
	if (map < 0 || bpf_map_update_elem(map, &cookie, &v, BPF_ANY)) {
		err = errno;
		if (map >= 0)
			close(map);
		join_hook_detach();
		return err_errno(err, NULL, "cannot record the join hook's network namespace");
	}
	close(map);
	return 0;
}

/* libbpf prints the kernel's answer to a query for a filter that is not there. */
static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

void join_hook_detach(void)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts);
	libbpf_print_fn_t old;
	char p[PATH_MAX];

	pin_path(p, sizeof(p), PIN_LINK_JOIN);
	unlink(p);
	hook.ifindex = if_nametoindex("lo");
	if (!hook.ifindex)
		return;
	filter_id(&opts.handle, &opts.priority);
	old = libbpf_set_print(opt_verbose ? NULL : quiet);
	bpf_tc_detach(&hook, &opts);	/* ENOENT when it was a tcx link: fine */
	libbpf_set_print(old);
}

/* How the hook is attached now: "tcx", "tc" or "none". */
const char *join_hook_state(void)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts);
	libbpf_print_fn_t old;
	char p[PATH_MAX];
	int err;

	pin_path(p, sizeof(p), PIN_LINK_JOIN);
	if (access(p, F_OK) == 0)
		return "tcx";
	hook.ifindex = if_nametoindex("lo");
	if (!hook.ifindex)
		return "none";
	filter_id(&opts.handle, &opts.priority);
	old = libbpf_set_print(opt_verbose ? NULL : quiet);
	err = bpf_tc_query(&hook, &opts);
	libbpf_set_print(old);
	return err ? "none" : "tc";
}
