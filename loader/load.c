// SPDX-License-Identifier: GPL-2.0
/*
 * load, attach, detach, unload. Lifecycle: open -> size maps / reuse
 * pinned ones -> load -> pin -> attach sk_msg to the sockhash -> (attach)
 * sock_ops to cgroups. The sk_msg program must be on the map before any
 * socket is inserted: sock_map_link() copies the map's programs into each
 * socket's psock at insertion time.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "common.h"
#include "sockops.skel.h"
#include "sk_msg.skel.h"

static __u64 sysctl_max(const char *path, __u64 fallback)
{
	unsigned long lo, def, max;
	FILE *f = fopen(path, "re");
	__u64 v = fallback;

	if (f) {
		if (fscanf(f, "%lu %lu %lu", &lo, &def, &max) == 3 && max > 0)
			v = max;
		fclose(f);
	}
	return v;
}

/*
 * Unread redirected bytes a receiver may hold: what one plain TCP sender
 * may queue (tcp_wmem max), and at most half of tcp_rmem max. Redirected
 * bytes count in the receiver's sk_rmem_alloc; below half of tcp_rmem max,
 * tcp_clamp_window() can still grow sk_rcvbuf around them when the
 * connection falls back to TCP, so the stack takes over without drops and
 * retransmission backoff (measured: a 32 MB backlog with tcp_rmem max
 * 32 MB stalled the drain 1.8 s on retransmits; 4 MB drained in 5 ms).
 */
static __u64 default_backlog_limit(void)
{
	__u64 wmem = sysctl_max("/proc/sys/net/ipv4/tcp_wmem", 4u << 20);
	__u64 rmem = sysctl_max("/proc/sys/net/ipv4/tcp_rmem", 6u << 20);

	return wmem < rmem / 2 ? wmem : rmem / 2;
}

/* While the reader keeps reading: half of tcp_rmem max (see above). */
static __u64 active_backlog_limit(__u64 idle)
{
	__u64 rmem = sysctl_max("/proc/sys/net/ipv4/tcp_rmem", 6u << 20);

	return rmem / 2 > idle ? rmem / 2 : idle;
}

int read_config(struct sa_config *cfg)
{
	__u32 zero = 0;
	int fd = open_pinned("sockaccel_config"), err;

	if (fd < 0)
		return -1;
	err = bpf_map_lookup_elem(fd, &zero, cfg);
	close(fd);
	return err;
}

int write_config(const struct sa_config *cfg)
{
	__u32 zero = 0;
	int fd = open_pinned("sockaccel_config"), err;

	if (fd < 0)
		return -1;
	err = bpf_map_update_elem(fd, &zero, cfg, BPF_ANY);
	close(fd);
	return err;
}

/*
 * Every map is pinned under its own name; libbpf reuses a compatible pin
 * left by an earlier load (bpf_object__reuse_map()) instead of creating it.
 */
static int pin_maps_at_load(struct bpf_object *obj, const struct load_opts *o)
{
	struct bpf_map *map;
	char p[PATH_MAX];

	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);

		if (strncmp(name, "sockaccel_", 10))
			continue;	/* .rodata/.bss stay private to each object */
		if (pin_path(p, sizeof(p), name) || bpf_map__set_pin_path(map, p))
			return err_msg("cannot set pin path for %s", name);
		if (o->max_socks && !strcmp(name, "sockaccel_socks"))
			bpf_map__set_max_entries(map, o->max_socks);
		if (o->max_socks && !strcmp(name, "sockaccel_peers"))
			bpf_map__set_max_entries(map, 2 * o->max_socks);
	}
	return 0;
}

static void remove_pins(void)
{
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(pin_root());

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "sockaccel_", 10))
			continue;
		if (pin_path(p, sizeof(p), de->d_name) == 0)
			unlink(p);
	}
	closedir(d);
	rmdir(pin_root());
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!opt_verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int do_load(const struct load_opts *o, bool *loaded_now)
{
	struct sockaccel_sockops *ops = NULL;
	struct sockaccel_sk_msg *msg = NULL;
	struct sa_config cfg = {};
	__u32 kflags = 0;
	char p[PATH_MAX];
	int link_fd = -1, err = -1;

	*loaded_now = false;
	libbpf_set_print(libbpf_quiet);
	if (is_loaded()) {
		/* Idempotent: only the options given change. */
		if (read_config(&cfg))
			return err_errno(errno, "run: sockaccel unload, then load again",
					 "loaded but config map unreadable");
		if (o->backlog_limit) {
			cfg.backlog_limit = o->backlog_limit;
			cfg.backlog_active = active_backlog_limit(o->backlog_limit);
		}
		if (o->cross_netns >= 0)
			cfg.allow_cross_netns = o->cross_netns;
		if (o->skip_short >= 0)
			cfg.skip_short = o->skip_short;
		if (o->lock_spin_ns >= 0)
			cfg.lock_spin_ns = o->lock_spin_ns;
		if (write_config(&cfg))
			return err_errno(errno, NULL, "cannot update config");
		return 0;
	}
	if (ensure_kernel_support())
		return -1;
	if (mkdir(pin_root(), 0700) && errno != EEXIST)
		return err_errno(errno, NULL, "cannot create %s", pin_root());

	ops = sockaccel_sockops__open();
	msg = sockaccel_sk_msg__open();
	if (!ops || !msg) {
		err_errno(errno, "run with -v for libbpf's log", "cannot open BPF objects");
		goto cleanup;
	}
	if (pin_maps_at_load(ops->obj, o) || pin_maps_at_load(msg->obj, o))
		goto cleanup;
	/* The first load creates and pins the maps, the second reuses them. */
	if (sockaccel_sockops__load(ops) || sockaccel_sk_msg__load(msg)) {
		err_errno(errno, "run with -v for the verifier log", "cannot load BPF programs");
		goto cleanup;
	}

	if (run_kernel_probe(&kflags, false))
		kflags = 0;	/* assume every known defect: the safe mode */
	cfg.enabled = 1;
	cfg.trace = 0;
	cfg.kernel_flags = kflags;
	cfg.backlog_limit = o->backlog_limit ? o->backlog_limit : default_backlog_limit();
	cfg.backlog_active = active_backlog_limit(cfg.backlog_limit);
	/* Two full send buffers passed in a row: more than one fallback. */
	cfg.stay_limit = 2 * sysctl_max("/proc/sys/net/ipv4/tcp_wmem", 4u << 20);
	cfg.allow_cross_netns = o->cross_netns > 0;
	cfg.skip_short = o->skip_short != 0;
	cfg.lock_spin_ns = o->lock_spin_ns >= 0 ? o->lock_spin_ns : SA_LOCK_SPIN_NS_DEFAULT;
	if (bpf_map_update_elem(bpf_map__fd(ops->maps.sockaccel_config), &(__u32){0}, &cfg, BPF_ANY)) {
		err_errno(errno, NULL, "cannot write config");
		goto cleanup;
	}

	pin_path(p, sizeof(p), PIN_PROG_SOCKOPS);
	if (bpf_program__pin(ops->progs.sockaccel_sockops, p)) {
		err_errno(errno, NULL, "cannot pin %s", p);
		goto cleanup;
	}
	pin_path(p, sizeof(p), PIN_PROG_SK_MSG);
	if (bpf_program__pin(msg->progs.sockaccel_sk_msg, p)) {
		err_errno(errno, NULL, "cannot pin %s", p);
		goto cleanup;
	}
	/* libbpf 1.1 has no bpf_program__attach_sockmap(); a raw link works. */
	link_fd = bpf_link_create(bpf_program__fd(msg->progs.sockaccel_sk_msg),
				  bpf_map__fd(msg->maps.sockaccel_socks),
				  BPF_SK_MSG_VERDICT, NULL);
	if (link_fd < 0) {
		err_errno(errno, "the kernel needs sockmap links (5.19+)",
			  "cannot attach sk_msg program to the sockhash");
		goto cleanup;
	}
	pin_path(p, sizeof(p), PIN_LINK_SK_MSG);
	if (bpf_obj_pin(link_fd, p)) {
		err_errno(errno, NULL, "cannot pin %s", p);
		goto cleanup;
	}
	*loaded_now = true;
	err = 0;
cleanup:
	if (link_fd >= 0)
		close(link_fd);
	sockaccel_sk_msg__destroy(msg);
	sockaccel_sockops__destroy(ops);
	if (err)
		remove_pins();
	return err;
}

static int parse_load_opts(int argc, char **argv, struct load_opts *o,
			   const char **cgroup, const char **pid, void (*usage)(void))
{
	static const struct option longopts[] = {
		{ "cgroup", required_argument, NULL, 'c' },
		{ "pid", required_argument, NULL, 'p' },
		{ "max-socks", required_argument, NULL, 'm' },
		{ "backlog-limit", required_argument, NULL, 'b' },
		{ "cross-netns", required_argument, NULL, 'x' },
		{ "short-conns", required_argument, NULL, 's' },
		{ "lock-spin-us", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	__u64 v;
	int c;

	memset(o, 0, sizeof(*o));
	o->cross_netns = -1;
	o->skip_short = -1;
	o->lock_spin_ns = -1;
	optind = 1;
	opterr = 0;	/* our own one-line errors */
	while ((c = getopt_long(argc, argv, ":c:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (!cgroup)
				goto bad;
			*cgroup = optarg;
			break;
		case 'p':
			if (!pid)
				goto bad;
			*pid = optarg;
			break;
		case 'm':
			if (parse_size(optarg, &v) || v < 2 || v > (1u << 24))
				return err_msg("invalid --max-socks '%s' (2..16777216)", optarg);
			o->max_socks = v;
			break;
		case 'b':
			if (parse_size(optarg, &v) || v < 4096)
				return err_msg("invalid --backlog-limit '%s' (bytes, at least 4096; K/M/G suffixes)", optarg);
			o->backlog_limit = v;
			break;
		case 'x':
			if (strcmp(optarg, "on") == 0)
				o->cross_netns = 1;
			else if (strcmp(optarg, "off") == 0)
				o->cross_netns = 0;
			else
				return err_msg("invalid --cross-netns '%s' (on or off)", optarg);
			break;
		case 's':
			if (strcmp(optarg, "tcp") == 0)
				o->skip_short = 1;
			else if (strcmp(optarg, "accelerate") == 0)
				o->skip_short = 0;
			else
				return err_msg("invalid --short-conns '%s' (tcp or accelerate)", optarg);
			break;
		case 'w':
			if (parse_size(optarg, &v) || v > SA_LOCK_SPIN_NS_MAX / 1000)
				return err_msg("invalid --lock-spin-us '%s' (0..%d)", optarg,
					       SA_LOCK_SPIN_NS_MAX / 1000);
			o->lock_spin_ns = v * 1000;
			break;
		case 'h':
			usage();
			exit(0);
		case ':':
			return err_msg("option '%s' needs a value (see: sockaccel %s --help)",
				       argv[optind - 1], argv[0]);
		default:
			goto bad;
		}
	}
	if (optind != argc)
		return err_msg("unexpected argument '%s' (see: sockaccel %s --help)",
			       argv[optind], argv[0]);
	return 0;
bad:
	return err_msg("unknown option '%s' for %s (see: sockaccel %s --help)",
		       argv[optind - 1], argv[0], argv[0]);
}

static void usage_load(void)
{
	printf("Usage: sockaccel load [--max-socks N] [--backlog-limit BYTES] [--cross-netns on|off]\n"
	       "                      [--short-conns tcp|accelerate] [--lock-spin-us N]\n"
	       "\n"
	       "Load the programs and maps, pin them under %s and return.\n"
	       "Nothing is accelerated until a cgroup is attached. Loading again is a\n"
	       "no-op that only applies the options given.\n"
	       "\n"
	       "  --max-socks N         sockhash capacity in sockets (default %u)\n"
	       "  --backlog-limit BYTES unread redirected bytes a receiver that stopped\n"
	       "                        reading may hold before the connection falls back to\n"
	       "                        TCP flow control (default: min(tcp_wmem max,\n"
	       "                        tcp_rmem max / 2)); a receiver that keeps reading may\n"
	       "                        hold up to max(this, tcp_rmem max / 2)\n"
	       "  --cross-netns on|off  pair sockets in different network namespaces\n"
	       "                        (pod to pod, service VIPs); default off\n"
	       "  --short-conns tcp|accelerate\n"
	       "                        connections to a local port whose connections send\n"
	       "                        fewer than %d messages per socket on average: leave\n"
	       "                        them on TCP, where a psock's setup costs more than it\n"
	       "                        saves (default), or accelerate them anyway\n"
	       "  --lock-spin-us N      wait up to N microseconds (0..%d, default %d) for a\n"
	       "                        receiver that is busy reading before handing it\n"
	       "                        bytes, instead of sleeping on its socket lock; 0\n"
	       "                        never waits\n"
	       "\n"
	       "Examples:\n"
	       "  sockaccel load\n"
	       "  sockaccel load --backlog-limit 8M --cross-netns on\n",
	       pin_root(), SA_DEFAULT_MAX_SOCKS, SA_SHORT_MSGS, SA_LOCK_SPIN_NS_MAX / 1000,
	       SA_LOCK_SPIN_NS_DEFAULT / 1000);
}

int cmd_load(int argc, char **argv)
{
	struct load_opts o;
	bool now;
	int lock, err;

	if (parse_load_opts(argc, argv, &o, NULL, NULL, usage_load))
		return 1;
	if (require_caps() || ensure_bpffs())
		return 1;
	lock = lock_acquire();
	if (lock < 0)
		return 1;
	err = do_load(&o, &now);
	lock_release(lock);
	drop_caps();
	if (err)
		return 1;
	info_msg(now ? "loaded: pinned under %s" : "already loaded: %s", pin_root());
	return 0;
}

static int slot_for_new_cgroup(int cg_fd)
{
	bool used[SA_MAX_CGROUPS] = { true };	/* slot 0: not attached */
	struct sa_cgroup_info info;
	__u64 key, *prev = NULL;
	int s;

	while (bpf_map_get_next_key(cg_fd, prev, &key) == 0) {
		if (bpf_map_lookup_elem(cg_fd, &key, &info) == 0 && info.slot < SA_MAX_CGROUPS)
			used[info.slot] = true;
		prev = &key;
	}
	for (s = 1; s < SA_MAX_CGROUPS; s++)
		if (!used[s])
			return s;
	return -1;
}

static void reset_slot(__u32 slot)
{
	int ncpu = libbpf_num_possible_cpus();
	int stats = open_pinned("sockaccel_stats"), pol = open_pinned("sockaccel_policy");
	struct sa_policy empty = { .default_action = SA_ACT_INCLUDE };
	struct sa_counters *zero;

	if (ncpu > 0 && stats >= 0) {
		zero = calloc(ncpu, sizeof(*zero));
		if (zero)
			bpf_map_update_elem(stats, &slot, zero, BPF_ANY);
		free(zero);
	}
	if (pol >= 0)
		bpf_map_update_elem(pol, &slot, &empty, BPF_ANY);
	if (stats >= 0)
		close(stats);
	if (pol >= 0)
		close(pol);
}

static void usage_attach(void)
{
	printf("Usage: sockaccel attach (--cgroup DIR | --pid PID) [load options]\n"
	       "\n"
	       "Accelerate TCP connections of every process in a cgroup v2 (and its\n"
	       "descendants). Loads first if needed. Attaching a cgroup that is already\n"
	       "attached is a no-op; several cgroups share one set of maps.\n"
	       "\n"
	       "  --cgroup DIR   a cgroup v2 directory\n"
	       "  --pid PID      the cgroup v2 of process PID (from /proc/PID/cgroup)\n"
	       "\n"
	       "Examples:\n"
	       "  sockaccel attach --cgroup /sys/fs/cgroup/system.slice/redis.service\n"
	       "  sockaccel attach --pid $(pidof nginx | cut -d' ' -f1)\n");
}

int cmd_attach(int argc, char **argv)
{
	const char *cgroup = NULL, *pid = NULL;
	struct sa_cgroup_info info = {};
	char path[PATH_MAX], pin[PATH_MAX], name[64];
	struct load_opts o;
	int lock = -1, cg_map = -1, cg_dir = -1, prog = -1, link = -1, ret = 1;
	bool now, slot_added = false;
	__u64 id;

	if (parse_load_opts(argc, argv, &o, &cgroup, &pid, usage_attach))
		return 1;
	if (!cgroup && !pid)
		return err_msg("attach needs --cgroup DIR or --pid PID (see: sockaccel attach --help)"), 1;
	if (cgroup && pid)
		return err_msg("give --cgroup or --pid, not both"), 1;
	if (require_caps())
		return 1;
	if (resolve_cgroup(cgroup, pid, path, sizeof(path), &id))
		return 1;
	if (ensure_bpffs())
		return 1;
	lock = lock_acquire();
	if (lock < 0)
		return 1;
	if (do_load(&o, &now))
		goto out;
	snprintf(name, sizeof(name), PIN_CGROUP_PREFIX "%llu", (unsigned long long)id);
	pin_path(pin, sizeof(pin), name);
	if (access(pin, F_OK) == 0) {
		info_msg("already attached: %s", path);
		ret = 0;
		goto out;
	}
	cg_map = open_pinned("sockaccel_cgroups");
	prog = open_pinned(PIN_PROG_SOCKOPS);
	if (cg_map < 0 || prog < 0) {
		err_errno(errno, "run: sockaccel unload, then attach again", "pinned objects missing");
		goto out;
	}
	/* Slot record first, so the program counts the very first socket. */
	info.slot = slot_for_new_cgroup(cg_map);
	if ((int)info.slot < 0) {
		err_msg("all %d attach slots in use (hint: detach a cgroup)", SA_MAX_CGROUPS - 1);
		goto out;
	}
	reset_slot(info.slot);
	if (bpf_map_update_elem(cg_map, &id, &info, BPF_NOEXIST)) {
		err_errno(errno, NULL, "cannot record cgroup %s", path);
		goto out;
	}
	slot_added = true;
	cg_dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_dir < 0) {
		err_errno(errno, NULL, "cannot open cgroup %s", path);
		goto out;
	}
	link = bpf_link_create(prog, cg_dir, BPF_CGROUP_SOCK_OPS, NULL);
	if (link < 0) {
		err_errno(errno, NULL, "cannot attach sock_ops to %s", path);
		goto out;
	}
	if (bpf_obj_pin(link, pin)) {
		err_errno(errno, NULL, "cannot pin %s", pin);
		goto out;
	}
	info_msg("attached: %s (cgroup id %llu, slot %u)", path, (unsigned long long)id, info.slot);
	ret = 0;
out:
	if (ret && slot_added)
		bpf_map_delete_elem(cg_map, &id);
	if (link >= 0)
		close(link);
	if (cg_dir >= 0)
		close(cg_dir);
	if (prog >= 0)
		close(prog);
	if (cg_map >= 0)
		close(cg_map);
	lock_release(lock);
	drop_caps();
	return ret;
}

/* Unpin the cgroup's link (which detaches it) and free its slot. */
static int detach_id(__u64 id)
{
	char pin[PATH_MAX], name[64];
	struct sa_cgroup_info info;
	int cg_map = open_pinned("sockaccel_cgroups");

	snprintf(name, sizeof(name), PIN_CGROUP_PREFIX "%llu", (unsigned long long)id);
	pin_path(pin, sizeof(pin), name);
	if (unlink(pin) && errno != ENOENT)
		return err_errno(errno, NULL, "cannot remove %s", pin);
	if (cg_map >= 0) {
		if (bpf_map_lookup_elem(cg_map, &id, &info) == 0) {
			bpf_map_delete_elem(cg_map, &id);
			reset_slot(info.slot);
		}
		close(cg_map);
	}
	return 0;
}

static void usage_detach(void)
{
	printf("Usage: sockaccel detach (--cgroup DIR | --pid PID)\n"
	       "\n"
	       "Stop accelerating new connections in one cgroup; other cgroups and the\n"
	       "connections already accelerated are not disturbed. Detaching a cgroup\n"
	       "that is not attached is a no-op.\n"
	       "\n"
	       "Examples:\n"
	       "  sockaccel detach --cgroup /sys/fs/cgroup/unified/pod1\n");
}

int cmd_detach(int argc, char **argv)
{
	const char *cgroup = NULL, *pid = NULL;
	char path[PATH_MAX];
	struct load_opts o;
	int lock, err;
	__u64 id;

	if (parse_load_opts(argc, argv, &o, &cgroup, &pid, usage_detach))
		return 1;
	if (!cgroup && !pid)
		return err_msg("detach needs --cgroup DIR or --pid PID (see: sockaccel detach --help)"), 1;
	if (require_caps())
		return 1;
	if (resolve_cgroup(cgroup, pid, path, sizeof(path), &id))
		return 1;
	lock = lock_acquire();
	if (lock < 0)
		return 1;
	err = is_loaded() ? detach_id(id) : 0;
	lock_release(lock);
	drop_caps();
	if (err)
		return 1;
	info_msg("detached: %s", path);
	return 0;
}

static void usage_unload(void)
{
	printf("Usage: sockaccel unload\n"
	       "\n"
	       "Detach from every cgroup and remove every pin under %s.\n"
	       "Connections already accelerated keep their fast path until they close:\n"
	       "their sockets hold the programs and maps, so no queued byte is lost.\n"
	       "Succeeds when nothing is loaded.\n", pin_root());
}

int cmd_unload(int argc, char **argv)
{
	struct load_opts o;
	struct dirent *de;
	int lock;
	DIR *d;

	if (parse_load_opts(argc, argv, &o, NULL, NULL, usage_unload))
		return 1;
	if (require_caps())
		return 1;
	lock = lock_acquire();
	if (lock < 0)
		return 1;
	d = opendir(pin_root());
	if (d) {
		/* Cgroups first: no new socket enters while the rest goes. */
		while ((de = readdir(d))) {
			unsigned long long id;

			if (sscanf(de->d_name, PIN_CGROUP_PREFIX "%llu", &id) == 1)
				detach_id(id);
		}
		closedir(d);
		remove_pins();
	}
	lock_release(lock);
	drop_caps();
	info_msg("unloaded");
	return 0;
}
