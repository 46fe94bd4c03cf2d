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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <limits.h>
#include <net/if.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* hook_here() in another namespace, on a kernel without tcx links (6.6+). */
#define SA_JOIN_NO_TCX	(-2)

/*
 * Hook lo of the network namespace this process is in now, pinning the
 * link as PIN_NAME. A tc filter only where the loader runs (load): a
 * filter in another namespace could be found again only from inside it,
 * and unload does not enter namespaces.
 */
static int hook_here(int prog_fd, const char *pin_name, bool filter_ok, const char **how)
{
	char p[PATH_MAX];
	int ifindex = if_nametoindex("lo"), map, link, err;
	bool force_filter = getenv_flag("SOCKACCEL_TC_FILTER");
	__u64 cookie = own_netns_cookie();
	__u32 v;

	*how = "none";
	if (!ifindex || !cookie)
		return err_msg("no loopback device or netns cookie here: connections join only at establishment");
	pin_path(p, sizeof(p), pin_name);
	unlink(p);	/* a killed load's: unpinning detaches it */
	link = force_filter ? -1 : bpf_link_create(prog_fd, ifindex, SA_BPF_TCX_INGRESS, NULL);
	if (link >= 0) {
		err = bpf_obj_pin(link, p) ? -errno : 0;
		close(link);
		if (err)
			return err_errno(-err, NULL, "cannot pin %s", p);
		*how = "tcx";
	} else if (!filter_ok) {
		/* EINVAL: no BPF_TCX_INGRESS (bpf_link_create() before 6.6). */
		if (force_filter || errno == EINVAL)
			return SA_JOIN_NO_TCX;
		return err_errno(errno, NULL, "cannot attach the join hook to lo of another network namespace");
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
		if (filter_ok)
			join_hook_detach();
		else
			unlink(p);
		return err_errno(err, NULL, "cannot record the join hook's network namespace");
	}
	close(map);
	return 0;
}

int join_hook_attach(int prog_fd, const char **how)
{
	return hook_here(prog_fd, PIN_LINK_JOIN, true, how);
}

/*
 * A tcx link whose device went away with its namespace stays pinned,
 * detached: its ifindex reads 0 (tcx_link_fill_link_info()). libbpf 1.1's
 * struct bpf_link_info predates tcx: its union starts at byte 16
 * (aligned(8) after type, id, prog_id), tcx.ifindex first in it.
 */
static bool link_defunct(int fd)
{
	__u8 info[256] = {};
	__u32 len = sizeof(info), ifindex;

	if (bpf_obj_get_info_by_fd(fd, info, &len) || len < 20)
		return false;
	memcpy(&ifindex, info + 16, sizeof(ifindex));
	return ifindex == 0;
}

/* Forget the hooks of namespaces that are gone: their pins and map entries. */
static void prune_gone_netns(void)
{
	char p[PATH_MAX];
	struct dirent *de;
	unsigned long long cookie;
	DIR *d = opendir(pin_root());
	int map = open_pinned(MAP_JOIN_NETNS), fd;

	while (d && (de = readdir(d))) {
		if (sscanf(de->d_name, PIN_LINK_JOIN_NETNS_PREFIX "%llx", &cookie) != 1 ||
		    pin_path(p, sizeof(p), de->d_name))
			continue;
		fd = bpf_obj_get(p);
		if (fd < 0)
			continue;
		if (link_defunct(fd)) {
			unlink(p);
			if (map >= 0)
				bpf_map_delete_elem(map, &(__u64){ cookie });
		}
		close(fd);
	}
	if (d)
		closedir(d);
	if (map >= 0)
		close(map);
}

/* Network namespaces seen in one cgroup walk: (device, inode) of each. */
#define SA_NETNS_SEEN_MAX	1024
static struct { dev_t dev; ino_t ino; pid_t pid; } netns_seen[SA_NETNS_SEEN_MAX];
static int netns_nseen;
static struct stat netns_own;

static void note_netns(pid_t pid)
{
	char p[64];
	struct stat st;
	int i;

	snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
	if (stat(p, &st) || (st.st_dev == netns_own.st_dev && st.st_ino == netns_own.st_ino))
		return;
	for (i = 0; i < netns_nseen; i++)
		if (netns_seen[i].dev == st.st_dev && netns_seen[i].ino == st.st_ino)
			return;
	if (netns_nseen == SA_NETNS_SEEN_MAX)
		return;
	netns_seen[netns_nseen].dev = st.st_dev;
	netns_seen[netns_nseen].ino = st.st_ino;
	netns_seen[netns_nseen++].pid = pid;
}

static int netns_walk_cb(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
	char p[PATH_MAX];
	FILE *f;
	int pid;

	if (type != FTW_D)
		return 0;
	snprintf(p, sizeof(p), "%s/cgroup.procs", fpath);
	f = fopen(p, "re");
	if (!f)
		return 0;
	while (fscanf(f, "%d", &pid) == 1)
		if (pid > 0)
			note_netns(pid);
	fclose(f);
	return 0;
}

/*
 * Enter the namespace of PID, hook its lo unless hooked, come back: 1 if
 * hooked now, 0 if not (said why), -1 if stranded, SA_JOIN_NO_TCX.
 */
static int hook_netns_of(int prog_fd, int map, pid_t pid, int home)
{
	char p[PATH_MAX], name[64];
	const char *how;
	int fd, ret = 0;
	__u64 cookie;
	__u32 v;

	snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;	/* exited meanwhile */
	if (setns(fd, CLONE_NEWNET)) {
		err_errno(errno, errno == EPERM ? "entering a namespace needs CAP_SYS_ADMIN" : NULL,
			  "cannot enter the network namespace of pid %d, whose connections join only at establishment",
			  pid);
		close(fd);
		return 0;
	}
	close(fd);
	cookie = own_netns_cookie();
	snprintf(name, sizeof(name), PIN_LINK_JOIN_NETNS_PREFIX "%llx", (unsigned long long)cookie);
	/* Hooked already: here, or by the load that ran in this namespace. */
	if (bpf_map_lookup_elem(map, &cookie, &v)) {
		ret = hook_here(prog_fd, name, false, &how);
		ret = ret == SA_JOIN_NO_TCX ? ret : ret == 0;
	}
	if (setns(home, CLONE_NEWNET))
		return err_errno(errno, NULL, "cannot return to the loader's network namespace");
	return ret;
}

int join_hook_cgroup_netns(const char *cg_path)
{
	char p[PATH_MAX];
	int prog = -1, home = -1, map = -1, i, n, hooked = 0;

	netns_nseen = 0;
	if (stat("/proc/self/ns/net", &netns_own))
		return 0;
	if (nftw(cg_path, netns_walk_cb, 16, FTW_PHYS))
		return 0;
	prune_gone_netns();
	if (!netns_nseen)
		return 0;
	pin_path(p, sizeof(p), PIN_PROG_JOIN);
	prog = bpf_obj_get(p);
	home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	map = open_pinned(MAP_JOIN_NETNS);
	if (prog < 0 || home < 0 || map < 0) {
		err_errno(errno, NULL, "cannot open the join hook or this network namespace");
		goto out;
	}
	for (i = 0; i < netns_nseen; i++) {
		n = hook_netns_of(prog, map, netns_seen[i].pid, home);
		if (n == SA_JOIN_NO_TCX) {
			info_msg("join hook: not in %d other network namespace%s (tcx links need Linux 6.6):"
				 " connections there are decided at establishment only",
				 netns_nseen, netns_nseen == 1 ? "" : "s");
			break;
		}
		if (n < 0) {
			hooked = -1;
			break;
		}
		hooked += n;
	}
out:
	if (prog >= 0)
		close(prog);
	if (home >= 0)
		close(home);
	if (map >= 0)
		close(map);
	return hooked;
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
