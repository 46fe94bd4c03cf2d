// SPDX-License-Identifier: GPL-2.0
/*
 * The join hook (bpf/join.bpf.c) on loopback's ingress, in the network
 * namespace the loader runs in and in those of an attached cgroup's
 * processes: a tcx link where the kernel has them (6.6+), pinned like
 * every other link, else a classic tc filter under the clsact qdisc,
 * whose handle and priority are derived from the pin root so that each
 * instance finds and removes its own. A filter cannot be pinned: unload
 * enters every namespace it can find (remove_join_filters()) and removes
 * it there, after setting join_off, which makes a filter it could not
 * reach insert nothing. The namespace's cookie goes into
 * sockaccel_join_netns: sockets there may become join candidates.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <limits.h>
#include <stdlib.h>
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

/* libbpf prints the kernel's answer to a query for a filter that is not there. */
static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

/* Remove this instance's tc filter from lo of the namespace this process is in. */
static void detach_filter_here(void)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts);
	libbpf_print_fn_t old;

	hook.ifindex = if_nametoindex("lo");
	if (!hook.ifindex)
		return;
	filter_id(&opts.handle, &opts.priority);
	old = libbpf_set_print(opt_verbose ? NULL : quiet);
	bpf_tc_detach(&hook, &opts);	/* ENOENT when it was a tcx link: fine */
	libbpf_set_print(old);
}

/* hook_here(): sockaccel_join_netns is full (E2BIG). */
#define SA_JOIN_FULL	(-2)

/*
 * Hook lo of the network namespace this process is in now, pinning the
 * link as PIN_NAME. Where tcx links are missing (EINVAL before 6.6), or
 * SOCKACCEL_TC_FILTER asks for it, a tc filter, marked SA_JOIN_TC_FILTER
 * in the map so that unload looks for it. In the loader's own namespace
 * (OWN) any failure to link falls back to the filter.
 */
static int hook_here(int prog_fd, const char *pin_name, bool own, const char **how)
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
		v = ifindex;
	} else if (!own && !force_filter && errno != EINVAL) {
		return err_errno(errno, NULL, "cannot attach the join hook to lo of another network namespace");
	} else {
		err = attach_filter(prog_fd, ifindex);
		if (err)
			return err_errno(-err, "connections join only at establishment",
					 "cannot attach the join hook to lo");
		*how = "tc";
		v = ifindex | SA_JOIN_TC_FILTER;
	}
	map = open_pinned(MAP_JOIN_NETNS);
	if (map < 0 || bpf_map_update_elem(map, &cookie, &v, BPF_ANY)) {
		err = errno;
		if (map >= 0)
			close(map);
		unlink(p);
		if (v & SA_JOIN_TC_FILTER)
			detach_filter_here();
		if (err == E2BIG)
			return SA_JOIN_FULL;
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

/*
 * Network namespaces, each once: (device, inode) of its nsfs file and a
 * path that opens it.
 */
struct netns_ref {
	dev_t dev;
	ino_t ino;
	char path[64 + NAME_MAX];
};

struct netns_list {
	struct netns_ref *v;
	int n, cap;
};

/* Room for one more of *n elements of size in *v (doubling); false if none. */
static bool grow(void *v, int n, int *cap, size_t size)
{
	void **vp = v, *nv;
	int c = *cap ? 2 * *cap : 64;

	if (n < *cap)
		return true;
	nv = realloc(*vp, c * size);
	if (!nv)
		return false;
	*vp = nv;
	*cap = c;
	return true;
}

static struct stat netns_own;

/* Add the namespace PATH opens, unless listed or (SKIP_OWN) the loader's own. */
static void netns_add(struct netns_list *l, const char *path, bool skip_own)
{
	struct stat st;
	int i;

	if (stat(path, &st) || (skip_own && st.st_dev == netns_own.st_dev &&
				st.st_ino == netns_own.st_ino))
		return;
	for (i = 0; i < l->n; i++)
		if (l->v[i].dev == st.st_dev && l->v[i].ino == st.st_ino)
			return;
	if (!grow(&l->v, l->n, &l->cap, sizeof(*l->v)))
		return;
	l->v[l->n].dev = st.st_dev;
	l->v[l->n].ino = st.st_ino;
	snprintf(l->v[l->n++].path, sizeof(l->v[0].path), "%s", path);
}

static void netns_add_pid(struct netns_list *l, pid_t pid, bool skip_own)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
	netns_add(l, p, skip_own);
}

/*
 * Every namespace this loader can enter: those of all processes, and
 * those bound under /run/netns (ip netns) with no process left in them.
 */
static void netns_add_all(struct netns_list *l)
{
	char p[64 + NAME_MAX];
	struct dirent *de;
	DIR *d = opendir("/proc");
	int pid;

	if (stat("/proc/self/ns/net", &netns_own))
		memset(&netns_own, 0, sizeof(netns_own));
	while (d && (de = readdir(d)))
		if (sscanf(de->d_name, "%d", &pid) == 1 && pid > 0)
			netns_add_pid(l, pid, false);
	if (d)
		closedir(d);
	d = opendir("/run/netns");
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/run/netns/%s", de->d_name);
		netns_add(l, p, false);
	}
	if (d)
		closedir(d);
}

/*
 * Run FN in each namespace of L, with the namespace's cookie, and come
 * back: 0, or -1 when this process could not return to HOME (the caller
 * must stop: it would act in another namespace). A namespace gone
 * meanwhile is skipped; one this process may not enter is counted in
 * *DENIED.
 */
static int netns_each(const struct netns_list *l, int home, int *denied,
		      void (*fn)(__u64 cookie, int map, void *arg), int map, void *arg)
{
	int i, fd;

	for (i = 0; i < l->n; i++) {
		/* The loader's own: no setns(), which needs CAP_SYS_ADMIN even here. */
		if (l->v[i].dev == netns_own.st_dev && l->v[i].ino == netns_own.st_ino) {
			fn(own_netns_cookie(), map, arg);
			continue;
		}
		fd = open(l->v[i].path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (setns(fd, CLONE_NEWNET)) {
			close(fd);
			(*denied)++;
			continue;
		}
		close(fd);
		fn(own_netns_cookie(), map, arg);
		if (setns(home, CLONE_NEWNET))
			return err_errno(errno, NULL, "cannot return to the loader's network namespace");
	}
	return 0;
}

/* Does the map say some namespace's hook is a tc filter? */
static bool has_filters(int map)
{
	__u64 k, next;
	__u32 v;
	bool first = true;

	while (!bpf_map_get_next_key(map, first ? NULL : &k, &next)) {
		first = false;
		k = next;
		if (!bpf_map_lookup_elem(map, &k, &v) && (v & SA_JOIN_TC_FILTER))
			return true;
	}
	return false;
}

struct cookie_set {
	__u64 *v;
	int n, cap;
};

static void note_cookie(__u64 cookie, int map, void *arg)
{
	struct cookie_set *s = arg;

	if (!grow(&s->v, s->n, &s->cap, sizeof(*s->v)))
		return;
	s->v[s->n++] = cookie;
}

/*
 * Forget the hooks of namespaces that are gone: tcx links whose device
 * went with them, and filter entries whose cookie no namespace has (a
 * cookie is never reused: net_gen_cookie()).
 */
static int prune_gone_netns(int map, int home)
{
	struct netns_list all = {};
	struct cookie_set live = {};
	char p[PATH_MAX];
	struct dirent *de;
	unsigned long long cookie;
	__u64 k, next;
	__u32 v;
	DIR *d = opendir(pin_root());
	int fd, i, rc = 0, denied = 0;
	bool first = true, seen;

	while (d && (de = readdir(d))) {
		if (sscanf(de->d_name, PIN_LINK_JOIN_NETNS_PREFIX "%llx", &cookie) != 1 ||
		    pin_path(p, sizeof(p), de->d_name))
			continue;
		fd = bpf_obj_get(p);
		if (fd < 0)
			continue;
		if (link_defunct(fd)) {
			unlink(p);
			bpf_map_delete_elem(map, &(__u64){ cookie });
		}
		close(fd);
	}
	if (d)
		closedir(d);
	if (!has_filters(map))
		return 0;
	netns_add_all(&all);
	rc = netns_each(&all, home, &denied, note_cookie, map, &live);
	if (rc || denied || live.n == 0)
		goto out;	/* a namespace it could not see may be hooked */
	while (!bpf_map_get_next_key(map, first ? NULL : &k, &next)) {
		first = false;
		k = next;
		if (bpf_map_lookup_elem(map, &k, &v) || !(v & SA_JOIN_TC_FILTER))
			continue;
		for (seen = false, i = 0; i < live.n && !seen; i++)
			seen = live.v[i] == k;
		if (!seen)
			bpf_map_delete_elem(map, &k);
	}
out:
	free(all.v);
	free(live.v);
	return rc;
}

static __u32 map_capacity(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.max_entries;
}

static struct netns_list *walk_list;	/* nftw() has no argument for its callback */

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
			netns_add_pid(walk_list, pid, true);
	fclose(f);
	return 0;
}

/*
 * Enter the namespace PATH opens, hook its lo unless hooked, come back:
 * 1 if hooked now, 0 if not (said why), -1 if stranded, SA_JOIN_FULL.
 */
static int hook_netns(int prog_fd, int map, const char *path, int home)
{
	char name[64];
	const char *how;
	int fd, ret = 0;
	__u64 cookie;
	__u32 v;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;	/* exited meanwhile */
	if (setns(fd, CLONE_NEWNET)) {
		err_errno(errno, errno == EPERM ? "entering a namespace needs CAP_SYS_ADMIN" : NULL,
			  "cannot enter the network namespace %s, whose connections join only at establishment",
			  path);
		close(fd);
		return 0;
	}
	close(fd);
	cookie = own_netns_cookie();
	snprintf(name, sizeof(name), PIN_LINK_JOIN_NETNS_PREFIX "%llx", (unsigned long long)cookie);
	/* Hooked already: here, or by the load that ran in this namespace. */
	if (bpf_map_lookup_elem(map, &cookie, &v)) {
		ret = hook_here(prog_fd, name, false, &how);
		ret = ret == SA_JOIN_FULL ? ret : ret == 0;
	}
	if (setns(home, CLONE_NEWNET))
		return err_errno(errno, NULL, "cannot return to the loader's network namespace");
	return ret;
}

int join_hook_cgroup_netns(const char *cg_path)
{
	struct netns_list l = {};
	char p[PATH_MAX];
	int prog = -1, home = -1, map = -1, i, n, hooked = 0;

	if (stat("/proc/self/ns/net", &netns_own))
		return 0;
	walk_list = &l;
	if (nftw(cg_path, netns_walk_cb, 16, FTW_PHYS))
		goto out;
	pin_path(p, sizeof(p), PIN_PROG_JOIN);
	prog = bpf_obj_get(p);
	home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	map = open_pinned(MAP_JOIN_NETNS);
	if (prog < 0 || home < 0 || map < 0) {
		err_errno(errno, NULL, "cannot open the join hook or this network namespace");
		goto out;
	}
	if (prune_gone_netns(map, home)) {
		hooked = -1;
		goto out;
	}
	for (i = 0; i < l.n; i++) {
		n = hook_netns(prog, map, l.v[i].path, home);
		if (n == SA_JOIN_FULL) {
			/* A tenant making namespaces by the thousand costs others late join only. */
			info_msg("join hook: not in %d more network namespace%s: the map of hooked namespaces"
				 " is full (%u); connections there are decided at establishment only",
				 l.n - i, l.n - i == 1 ? "" : "s", map_capacity(map));
			break;
		}
		if (n < 0) {
			hooked = -1;
			break;
		}
		hooked += n;
	}
out:
	free(l.v);
	if (prog >= 0)
		close(prog);
	if (home >= 0)
		close(home);
	if (map >= 0)
		close(map);
	return hooked;
}

void join_hook_detach(void)
{
	char p[PATH_MAX];

	pin_path(p, sizeof(p), PIN_LINK_JOIN);
	unlink(p);
	detach_filter_here();
}

static void remove_filter_here(__u64 cookie, int map, void *arg)
{
	__u32 v;

	if (!bpf_map_lookup_elem(map, &cookie, &v) && (v & SA_JOIN_TC_FILTER)) {
		detach_filter_here();
		bpf_map_delete_elem(map, &cookie);
	}
}

int join_hook_off(void)
{
	struct sa_config cfg;

	if (read_config(&cfg))
		return -1;
	cfg.join_off = 1;
	return write_config(&cfg);
}

void remove_join_filters(void)
{
	struct netns_list all = {};
	int map = open_pinned(MAP_JOIN_NETNS), home = -1, denied = 0;

	if (map < 0 || !has_filters(map))
		goto out;
	home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0)
		goto out;
	netns_add_all(&all);
	netns_each(&all, home, &denied, remove_filter_here, map, NULL);
	if (denied)
		info_msg("join hook: %d network namespace%s could not be entered; a filter left there"
			 " joins nothing", denied, denied == 1 ? "" : "s");
out:
	free(all.v);
	if (home >= 0)
		close(home);
	if (map >= 0)
		close(map);
}
