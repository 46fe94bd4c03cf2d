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
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "common.h"
#include "maps.h"
#include "sockops.skel.h"
#include "sk_msg.skel.h"
#include "sockops_core.skel.h"
#include "sk_msg_core.skel.h"
#include "guard.skel.h"
#include "sockopt.skel.h"
#include "join.skel.h"
#include "join_core.skel.h"

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

/*
 * Every map is pinned under its own name; libbpf reuses a compatible pin
 * left by an earlier load (bpf_object__reuse_map()) instead of creating it.
 * Not the state maps (what was learned, the executable policy): libbpf
 * unpins every map it pinned or reused when a load fails, which would
 * forget what was learned; those are reused by fd and pinned by hand.
 */
static int pin_maps_at_load(struct bpf_object *obj, const struct load_opts *o)
{
	struct bpf_map *map;
	char p[PATH_MAX];

	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);

		if (strncmp(name, PIN_PREFIX, strlen(PIN_PREFIX)))
			continue;	/* .rodata/.bss stay private to each object */
		if (is_state_map(name)) {
			int fd = open_pinned_map(name);

			if (fd < 0)
				continue;	/* created by this load, pinned after it */
			if (bpf_map__reuse_fd(map, fd)) {
				close(fd);
				return err_msg("the pinned %s/%s does not fit this version (hint: "
					       "sockaccel unload --forget)", state_root(), name);
			}
			close(fd);
			continue;
		}
		if (pin_path(p, sizeof(p), name) || bpf_map__set_pin_path(map, p))
			return err_msg("cannot set pin path for %s", name);
		if (o->max_socks && !strcmp(name, MAP_SOCKS))
			bpf_map__set_max_entries(map, o->max_socks);
		if (o->max_socks && !strcmp(name, MAP_RECORDS))
			bpf_map__set_max_entries(map, 2 * o->max_socks);
	}
	return 0;
}

/* After a load: pin the state maps it created (see pin_maps_at_load()). */
static int pin_state_maps(struct bpf_object *obj)
{
	struct bpf_map *map;
	char p[PATH_MAX];

	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);

		if (!is_state_map(name) || pin_path_of_map(p, sizeof(p), name))
			continue;
		if (access(p, F_OK) == 0)
			continue;
		if (bpf_obj_pin(bpf_map__fd(map), p))
			return err_errno(errno, NULL, "cannot pin %s", p);
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
	remove_join_filters();	/* needs the pinned map */
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, PIN_PREFIX, strlen(PIN_PREFIX)))
			continue;
		if (pin_path(p, sizeof(p), de->d_name) == 0)
			unlink(p);
	}
	closedir(d);
	join_hook_detach();
	remove_pin_dir(pin_root());	/* a mount point stays, empty */
}

/* The sockhash of the instance loaded now (its id), 0 if none. */
static __u32 current_sockhash_id(void)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd = open_pinned(MAP_SOCKS);

	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.id = 0;
	close(fd);
	return info.id;
}

static bool sockhash_empty(int fd)
{
	__u64 k;	/* a socket cookie */

	return bpf_map_get_next_key(fd, NULL, &k) != 0;
}

/*
 * A sockopt guard link (attach_sockopt_guard()) whose cgroup is gone: no
 * socket in it can call setsockopt() any more.
 */
static bool sockopt_guard_orphaned(const char *name)
{
	unsigned long long cg;
	char path[PATH_MAX];
	const char *p = name + strlen(PIN_LINK_GUARD_PREFIX);

	if (!strncmp(p, PIN_LINK_GETSOCKOPT, strlen(PIN_LINK_GETSOCKOPT)))
		p += strlen(PIN_LINK_GETSOCKOPT);
	else if (!strncmp(p, PIN_LINK_SOCKOPT, strlen(PIN_LINK_SOCKOPT)))
		p += strlen(PIN_LINK_SOCKOPT);
	else
		return false;
	if (sscanf(p, "%llu", &cg) != 1)
		return false;
	return cgroup_path_by_id(cg, path, sizeof(path)) != 0;
}

/*
 * The guard's tracepoint links are pinned in the state directory, named
 * after the sockhash they protect: unload leaves them, because sockets
 * inserted before it keep their fast path (their psocks hold the sk_msg
 * program) and may still be spliced. A guard is removed once its sockhash
 * is gone or empty, at the next load or unload, or by unload --forget.
 */
static void collect_guards(bool all)
{
	__u32 live = current_sockhash_id();
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(state_root());

	if (!d)
		return;
	while ((de = readdir(d))) {
		const char *us;
		unsigned long id;
		int fd;

		if (strncmp(de->d_name, PIN_LINK_GUARD_PREFIX, strlen(PIN_LINK_GUARD_PREFIX)))
			continue;
		us = strrchr(de->d_name, '_');
		if (!us || sscanf(us + 1, "%lu", &id) != 1)
			continue;
		if (!all && id == live && !sockopt_guard_orphaned(de->d_name))
			continue;
		fd = all ? -1 : bpf_map_get_fd_by_id(id);
		if (fd >= 0 && !sockhash_empty(fd)) {
			close(fd);
			continue;	/* accelerated sockets remain: keep guarding */
		}
		if (fd >= 0)
			close(fd);
		if (snprintf(p, sizeof(p), "%s/%s", state_root(), de->d_name) < (int)sizeof(p))
			unlink(p);
	}
	closedir(d);
}

/*
 * Debian's and Ubuntu's kernels add perf_event_paranoid level 3, at which
 * perf_event_open() (the tracepoint attach, kernel/events/core.c) needs
 * CAP_SYS_ADMIN whatever CAP_PERFMON says: the DaemonSet's container has
 * no CAP_SYS_ADMIN, so the node's sysctl is the likely cause of EACCES.
 */
static const char *guard_attach_hint(int errnum)
{
	FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "re");
	int level = 0;

	if (f) {
		if (fscanf(f, "%d", &level) != 1)
			level = 0;
		fclose(f);
	}
	if ((errnum == EACCES || errnum == EPERM) && level > 2)
		return "kernel.perf_event_paranoid is above 2: set it to 2, or run with CAP_SYS_ADMIN";
	return "mount tracefs at /sys/kernel/tracing, or run with -v";
}

/*
 * Attach the guard's tracepoints (bpf/guard.bpf.c) and pin each link. The
 * splice guard is left out only when the probe showed that splice() reads
 * redirected bytes on this kernel.
 */
static int attach_guard(struct sockaccel_guard *g, __u32 kflags)
{
	__u32 sockhash = current_sockhash_id();
	struct bpf_program *prog;
	char p[PATH_MAX];

	if (ensure_tracefs())
		return -1;
	bpf_object__for_each_program(prog, g->obj) {
		const char *name = bpf_program__name(prog);
		struct bpf_link *link;
		int err;

		if (!bpf_program__autoload(prog))
			continue;
		if (prog == g->progs.sockaccel_guard_splice && (kflags & SA_KF_SPLICE_READS_PSOCK))
			continue;
		link = bpf_program__attach(prog);
		if (!link)
			return err_errno(errno, guard_attach_hint(errno),
					 "cannot attach the guard program %s", name);
		snprintf(p, sizeof(p), "%s/%s%s_%u", state_root(), PIN_LINK_GUARD_PREFIX,
			 name + strlen("sockaccel_guard_"), sockhash);
		err = bpf_link__pin(link, p);
		/* Pinned or not, the link must outlive this process only by its pin. */
		bpf_link__disconnect(link);
		bpf_link__destroy(link);
		if (err)
			return err_errno(-err, NULL, "cannot pin %s", p);
	}
	return 0;
}

/* Does the running kernel's BTF have this struct (a tracepoint's record)? */
static bool kernel_has_struct(const char *name)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	bool have;

	if (!vmlinux)
		return false;
	have = btf__find_by_name_kind(vmlinux, name, BTF_KIND_STRUCT) >= 0;
	btf__free(vmlinux);
	return have;
}

/*
 * The guard, opened with the programs this kernel can take: io_uring's
 * submit tracepoint by its name here (io_uring_submit_sqe before 6.5,
 * none without io_uring), and the FIONREAD/SIOCATMARK correction only if
 * asked (see load_guard()).
 */
static struct sockaccel_guard *open_guard(bool ioctl_fixup)
{
	struct sockaccel_guard *g = sockaccel_guard__open();

	if (!g)
		return NULL;
	bpf_program__set_autoload(g->progs.sockaccel_guard_uring,
				  kernel_has_struct("trace_event_raw_io_uring_submit_req"));
	bpf_program__set_autoload(g->progs.sockaccel_guard_uring_old,
				  kernel_has_struct("trace_event_raw_io_uring_submit_sqe"));
	bpf_program__set_autoload(g->progs.sockaccel_guard_ioctl_exit, ioctl_fixup);
	return g;
}

/*
 * Load the guard. Its FIONREAD/SIOCATMARK correction writes the caller's
 * int with bpf_probe_write_user(), which kernel lockdown (integrity mode:
 * Secure Boot on Debian and Ubuntu) refuses at load; then the guard loads
 * without it and the askers are learned instead (*ioctl_fixup false).
 */
static struct sockaccel_guard *load_guard(const struct load_opts *o, bool *ioctl_fixup)
{
	struct sockaccel_guard *g;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		*ioctl_fixup = pass == 0 && !getenv_flag("SOCKACCEL_NO_IOCTL_FIXUP");
		g = open_guard(*ioctl_fixup);
		if (!g) {
			err_errno(errno, "run with -v for libbpf's log", "cannot open BPF objects");
			return NULL;
		}
		if (pin_maps_at_load(g->obj, o)) {
			sockaccel_guard__destroy(g);
			return NULL;
		}
		if (!sockaccel_guard__load(g))
			return g;
		sockaccel_guard__destroy(g);
		if (!*ioctl_fixup)
			break;
	}
	err_errno(errno, "run with -v for the verifier log", "cannot load BPF programs");
	return NULL;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!opt_verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* A program object embedded in its skeleton header, opened by name. */
static struct bpf_object *open_elf(const void *(*elf_bytes)(size_t *), const char *name)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name);
	const void *data;
	size_t sz;

	data = elf_bytes(&sz);
	return bpf_object__open_mem(data, sz, &opts);
}

/*
 * Direct loads through bpf_rdonly_cast() (6.2+), or the SA_CORE_READS
 * build (bpf/common.bpf.h) where the kernel's BTF has no such kfunc (6.1).
 * SOCKACCEL_CORE_READS=1 forces the latter (tests run it on new kernels).
 */
static bool use_core_reads(void)
{
	struct btf *vmlinux;
	bool have;

	if (getenv_flag("SOCKACCEL_CORE_READS"))
		return true;
	vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux)
		return true;
	have = btf__find_by_name_kind(vmlinux, "bpf_rdonly_cast", BTF_KIND_FUNC) >= 0;
	btf__free(vmlinux);
	return !have;
}

/*
 * Attach the sk_msg program to the sockhash: a link (6.10+), pinned, or
 * the older bpf_prog_attach() to the map, which lasts as long as the map
 * has user references (its pin): sock_map_release_progs() drops it with
 * the last one. SOCKACCEL_PROG_ATTACH=1 forces the older way.
 */
static int attach_sk_msg(int prog_fd, int map_fd, __u32 *kflags)
{
	char p[PATH_MAX];
	int link_fd = -1;

	if (!getenv_flag("SOCKACCEL_PROG_ATTACH"))
		link_fd = bpf_link_create(prog_fd, map_fd, BPF_SK_MSG_VERDICT, NULL);
	if (link_fd >= 0) {
		pin_path(p, sizeof(p), PIN_LINK_SK_MSG);
		if (bpf_obj_pin(link_fd, p)) {
			err_errno(errno, NULL, "cannot pin %s", p);
			close(link_fd);
			return -1;
		}
		close(link_fd);
		return 0;
	}
	if (bpf_prog_attach(prog_fd, map_fd, BPF_SK_MSG_VERDICT, 0))
		return err_errno(errno, NULL, "cannot attach the sk_msg program to the sockhash");
	*kflags |= SA_KF_PROG_ATTACH;
	return 0;
}

int do_load(const struct load_opts *o, bool *loaded_now)
{
	struct bpf_object *ops = NULL, *msg = NULL, *join = NULL;
	const char *join_how;
	struct sockaccel_guard *guard = NULL;
	struct sockaccel_sockopt *sockopt = NULL;
	struct sa_config cfg = {};
	__u32 kflags = 0;
	char p[PATH_MAX];
	bool core, ioctl_fixup;
	int err = -1;

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
		if (o->short_conns >= 0)
			cfg.short_conns = o->short_conns;
		if (o->lock_spin_ns >= 0)
			cfg.lock_spin_ns = o->lock_spin_ns;
		if (o->probation_conns >= 0)
			cfg.probation_conns = o->probation_conns;
		if (o->probation_ms >= 0)
			cfg.probation_ns = o->probation_ms * 1000000ull;
		if (write_config(&cfg))
			return err_errno(errno, NULL, "cannot update config");
		return 0;
	}
	if (ensure_kernel_support())
		return -1;
	if (check_pin_dir(pin_root()) || check_pin_dir(state_root()))
		return -1;
	if (mkdir(pin_root(), 0700) && errno != EEXIST)
		return err_errno(errno, NULL, "cannot create %s", pin_root());
	if (mkdir(state_root(), 0700) && errno != EEXIST)
		return err_errno(errno, NULL, "cannot create %s", state_root());

	core = use_core_reads();
	ops = open_elf(core ? sockaccel_sockops_core__elf_bytes : sockaccel_sockops__elf_bytes,
		       "sockaccel_sockops");
	msg = open_elf(core ? sockaccel_sk_msg_core__elf_bytes : sockaccel_sk_msg__elf_bytes,
		       "sockaccel_sk_msg");
	join = open_elf(core ? sockaccel_join_core__elf_bytes : sockaccel_join__elf_bytes,
			"sockaccel_join");
	sockopt = sockaccel_sockopt__open();
	if (!ops || !msg || !join || !sockopt) {
		err_errno(errno, "run with -v for libbpf's log", "cannot open BPF objects");
		goto cleanup;
	}
	/* The first load creates and pins the maps, the others reuse them. */
	if (pin_maps_at_load(ops, o))
		goto cleanup;
	if (bpf_object__load(ops)) {
		err_errno(errno, "run with -v for the verifier log", "cannot load BPF programs");
		goto cleanup;
	}
	if (pin_state_maps(ops) || pin_maps_at_load(msg, o) || pin_maps_at_load(sockopt->obj, o) ||
	    pin_maps_at_load(join, o))
		goto cleanup;
	if (bpf_object__load(msg) || sockaccel_sockopt__load(sockopt) || bpf_object__load(join)) {
		err_errno(errno, "run with -v for the verifier log", "cannot load BPF programs");
		goto cleanup;
	}
	guard = load_guard(o, &ioctl_fixup);
	if (!guard)
		goto cleanup;

	if (run_kernel_probe(&kflags, false))
		kflags = 0;	/* assume every known defect: the safe mode */
	if (core)
		kflags |= SA_KF_CORE_READS;
	if (ioctl_fixup)
		kflags |= SA_KF_IOCTL_FIXUP;
	cfg.enabled = 1;
	cfg.trace = 0;
	cfg.backlog_limit = o->backlog_limit ? o->backlog_limit : default_backlog_limit();
	cfg.backlog_active = active_backlog_limit(cfg.backlog_limit);
	/* Two full send buffers passed in a row: more than one fallback. */
	cfg.stay_limit = 2 * sysctl_max("/proc/sys/net/ipv4/tcp_wmem", 4u << 20);
	cfg.allow_cross_netns = o->cross_netns > 0;
	cfg.short_conns = o->short_conns != 0;
	cfg.lock_spin_ns = o->lock_spin_ns >= 0 ? o->lock_spin_ns : SA_LOCK_SPIN_NS_DEFAULT;
	cfg.probation_conns = o->probation_conns >= 0 ? o->probation_conns : SA_PROBATION_CONNS_DEFAULT;
	/* Per-CPU reserves of tcp_memory_allocated: 1 MiB each (SK_MEMORY_PCPU_RESERVE). */
	cfg.mem_margin_pages = (libbpf_num_possible_cpus() > 0 ? libbpf_num_possible_cpus() : 64) *
			       (1u << (20 - 12)) + 256;
	cfg.probation_ns = (o->probation_ms >= 0 ? o->probation_ms : SA_PROBATION_MS_DEFAULT) * 1000000ull;

	pin_path(p, sizeof(p), PIN_PROG_SOCKOPS);
	if (bpf_program__pin(bpf_object__find_program_by_name(ops, "sockaccel_sockops"), p)) {
		err_errno(errno, NULL, "cannot pin %s", p);
		goto cleanup;
	}
	pin_path(p, sizeof(p), PIN_PROG_SOCKOPT);
	if (bpf_program__pin(sockopt->progs.sockaccel_setsockopt, p)) {
		err_errno(errno, NULL, "cannot pin %s", p);
		goto cleanup;
	}
	pin_path(p, sizeof(p), PIN_PROG_GETSOCKOPT);
	if (bpf_program__pin(sockopt->progs.sockaccel_getsockopt, p)) {
		err_errno(errno, NULL, "cannot pin %s", p);
		goto cleanup;
	}
	if (attach_sk_msg(bpf_program__fd(bpf_object__find_program_by_name(msg, "sockaccel_sk_msg")),
			  bpf_map__fd(bpf_object__find_map_by_name(msg, MAP_SOCKS)), &kflags))
		goto cleanup;
	cfg.kernel_flags = kflags;
	if (bpf_map_update_elem(bpf_map__fd(bpf_object__find_map_by_name(ops, MAP_CONFIG)),
				&(__u32){0}, &cfg, BPF_ANY)) {
		err_errno(errno, NULL, "cannot write config");
		goto cleanup;
	}
	/* Before any cgroup is attached: no socket is inserted unguarded. */
	collect_guards(false);
	if (attach_guard(guard, kflags))
		goto cleanup;
	pin_path(p, sizeof(p), PIN_PROG_JOIN);
	if (bpf_program__pin(bpf_object__find_program_by_name(join, "sockaccel_join"), p)) {
		err_errno(errno, NULL, "cannot pin %s", p);
		goto cleanup;
	}
	/* Without it connections are decided at establishment only: said, not fatal. */
	join_hook_attach(bpf_program__fd(bpf_object__find_program_by_name(join, "sockaccel_join")),
			 &join_how);
	/* Last: is_loaded() looks for it. */
	pin_path(p, sizeof(p), PIN_PROG_SK_MSG);
	if (bpf_program__pin(bpf_object__find_program_by_name(msg, "sockaccel_sk_msg"), p)) {
		err_errno(errno, NULL, "cannot pin %s", p);
		goto cleanup;
	}
	*loaded_now = true;
	err = 0;
cleanup:
	sockaccel_guard__destroy(guard);
	sockaccel_sockopt__destroy(sockopt);
	bpf_object__close(join);
	bpf_object__close(msg);
	bpf_object__close(ops);
	if (err) {
		remove_pins();
		collect_guards(false);
	}
	return err;
}

/*
 * The load options (load, attach), struct load_opts: each value is
 * checked as it is read; an option not given keeps what is live.
 */
static void load_opts_init(struct load_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->cross_netns = -1;
	o->short_conns = -1;
	o->lock_spin_ns = -1;
	o->probation_conns = -1;
	o->probation_ms = -1;
}

static bool load_opts_given(const struct load_opts *o)
{
	return o->max_socks || o->backlog_limit || o->cross_netns >= 0 || o->short_conns >= 0 ||
	       o->lock_spin_ns >= 0 || o->probation_conns >= 0 || o->probation_ms >= 0;
}

static int parse_max_sockets(const char *s, void *field)
{
	__u64 v;

	if (parse_size(s, &v) || v < 2 || v > (1u << 24))
		return err_msg("invalid --max-sockets '%s' (2..16777216)", s);
	*(__u32 *)field = v;
	return 0;
}

static int parse_backlog_limit(const char *s, void *field)
{
	__u64 v;

	if (parse_size(s, &v) || v < 4096)
		return err_msg("invalid --backlog-limit '%s' (bytes, at least 4096; K/M/G suffixes)", s);
	*(__u64 *)field = v;
	return 0;
}

static int parse_cross_netns(const char *s, void *field)
{
	if (strcmp(s, "on") && strcmp(s, "off"))
		return err_msg("invalid --cross-netns '%s' (on or off)", s);
	*(int *)field = !strcmp(s, "on");
	return 0;
}

static int parse_short_conns(const char *s, void *field)
{
	if (strcmp(s, "tcp") && strcmp(s, "accelerate"))
		return err_msg("invalid --short-conns '%s' (tcp or accelerate)", s);
	*(int *)field = !strcmp(s, "tcp");
	return 0;
}

static int parse_lock_spin_us(const char *s, void *field)
{
	__u64 v;

	if (parse_size(s, &v) || v > SA_LOCK_SPIN_NS_MAX / 1000)
		return err_msg("invalid --lock-spin-us '%s' (0..%d)", s, SA_LOCK_SPIN_NS_MAX / 1000);
	*(long *)field = v * 1000;
	return 0;
}

static int parse_probation(const char *s, void *field)
{
	__u64 v;

	if (parse_size(s, &v) || v > 1000000)
		return err_msg("invalid --probation '%s' (connections, 0..1000000)", s);
	*(long *)field = v;
	return 0;
}

static int parse_probation_time(const char *s, void *field)
{
	__u64 v;

	if (parse_size(s, &v) || v > 3600000)
		return err_msg("invalid --probation-time '%s' (milliseconds, 0..3600000)", s);
	*(long *)field = v;
	return 0;
}

#define STR_(x)	#x
#define STR(x)	STR_(x)
_Static_assert(SA_LOCK_SPIN_NS_MAX == 1000 * 1000 && SA_LOCK_SPIN_NS_DEFAULT == 30 * 1000,
	       "the help of --lock-spin-us names both");

static const struct opt tuning_opts[] = {
	{ .name = "max-sockets", .arg = OPT_ARG, .metavar = "N",
	  .offset = offsetof(struct load_opts, max_socks), .parse = parse_max_sockets,
	  .help = "sockhash capacity in sockets (default " STR(SA_DEFAULT_MAX_SOCKS) "); when full,\n"
		  "new connections stay on TCP (insert_failed)" },
	{ .name = "backlog-limit", .arg = OPT_ARG, .metavar = "BYTES",
	  .offset = offsetof(struct load_opts, backlog_limit), .parse = parse_backlog_limit,
	  .help = "unread redirected bytes a receiver that stopped\n"
		  "reading may hold before the connection falls back to\n"
		  "TCP flow control (default: min(tcp_wmem max,\n"
		  "tcp_rmem max / 2)); a receiver that keeps reading may\n"
		  "hold up to max(this, tcp_rmem max / 2)" },
	{ .name = "cross-netns", .arg = OPT_ARG, .metavar = "on|off",
	  .offset = offsetof(struct load_opts, cross_netns), .parse = parse_cross_netns,
	  .help = "pair sockets in different network namespaces\n"
		  "(pod to pod, service VIPs); default off" },
	{ .name = "short-conns", .arg = OPT_ARG, .metavar = "tcp|accelerate",
	  .offset = offsetof(struct load_opts, short_conns), .parse = parse_short_conns,
	  .help = "connections to a local port from a program whose\n"
		  "connections to it send fewer than " STR(SA_SHORT_MSGS) " messages per\n"
		  "socket on average: leave them on TCP, where a psock's\n"
		  "setup costs more than it saves (default), or\n"
		  "accelerate them anyway" },
	{ .name = "lock-spin-us", .arg = OPT_ARG, .metavar = "N",
	  .offset = offsetof(struct load_opts, lock_spin_ns), .parse = parse_lock_spin_us,
	  .help = "wait up to N microseconds (0..1000, default 30) for a\n"
		  "receiver that is busy reading before handing it\n"
		  "bytes, instead of sleeping on its socket lock; 0\n"
		  "never waits" },
	{ .name = "probation", .arg = OPT_ARG, .metavar = "N",
	  .offset = offsetof(struct load_opts, probation_conns), .parse = parse_probation,
	  .help = "a new executable's sockets stay on TCP until it has\n"
		  "made or accepted N connections (default " STR(SA_PROBATION_CONNS_DEFAULT) ") ..." },
	{ .name = "probation-time", .arg = OPT_ARG, .metavar = "MS",
	  .offset = offsetof(struct load_opts, probation_ms), .parse = parse_probation_time,
	  .help = "... and MS milliseconds passed since it was first\n"
		  "seen (default " STR(SA_PROBATION_MS_DEFAULT) "): a program that reads sockets with\n"
		  "splice() shows it on plain TCP first, and is then\n"
		  "never accelerated (see: sockaccel exe --help)" },
	{}
};

struct load_args {
	struct load_opts o;
	const char *config;
};

static const struct opt config_opts[] = {
	{ .name = "config", .arg = OPT_ARG, .metavar = "FILE",
	  .help = "one command per line, without \"sockaccel\": load\n"
		  "[OPTIONS], attach --cgroup DIR, policy add|default\n"
		  "--cgroup DIR ..., exe set PATH ACTION; # comments.\n"
		  "Every line is checked before any is applied; the\n"
		  "policies of the cgroups it names are replaced by\n"
		  "its rules, so loading it again changes nothing" },
	{}
};

static void usage_load(void)
{
	printf("Usage: sockaccel load [--max-sockets N] [--backlog-limit BYTES] [--cross-netns on|off]\n"
	       "                      [--short-conns tcp|accelerate] [--lock-spin-us N]\n"
	       "                      [--probation N] [--probation-time MS]\n"
	       "       sockaccel load --config FILE\n"
	       "\n"
	       "Load the programs and maps, pin them under %s and return.\n"
	       "Nothing is accelerated until a cgroup is attached. Loading again is a\n"
	       "no-op that only applies the options given.\n"
	       "\n", pin_root());
	opts_help(stdout, config_opts);
	printf("\n");
	opts_help(stdout, tuning_opts);
	printf("\n"
	       "Examples:\n"
	       "  sockaccel load\n"
	       "  sockaccel load --backlog-limit 8M --cross-netns on\n"
	       "  sockaccel load --config /etc/sockaccel.conf\n");
}

static int cmd_load(int argc, char **argv)
{
	struct load_args a = { .config = NULL };
	bool now;
	int lock, err;

	load_opts_init(&a.o);
	err = opts_parse(&load_command, argc, argv, &a, NULL);
	if (err != OPTS_OK)
		return opts_exit(err);
	if (a.config && load_opts_given(&a.o))
		return err_msg("option '--config' goes alone: the file holds the load options "
			       "(see: sockaccel load --help)"), 1;
	if (a.config)
		return load_config(a.config) ? 1 : 0;
	if (opt_dry_run)
		return 0;
	if (require_caps() || ensure_bpffs())
		return 1;
	lock = lock_acquire();
	if (lock < 0)
		return 1;
	err = do_load(&a.o, &now);
	lock_release(lock);
	drop_caps();
	if (err)
		return 1;
	info_msg(now ? "loaded: pinned under %s" : "already loaded: %s", pin_root());
	return 0;
}

const struct command load_command = {
	.name = "load",
	.summary = "load and pin programs and maps (no cgroup yet)",
	.run = cmd_load,
	.usage = usage_load,
	.opts = { { config_opts, offsetof(struct load_args, config) },
		  { tuning_opts, offsetof(struct load_args, o) } },
};

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

/*
 * The sockopt program (bpf/sockopt.bpf.c) on a cgroup, attached before
 * sock_ops so that no socket is inserted without it. Pinned in the state
 * directory like the tracepoint guards, named after the cgroup and the
 * sockhash: connections accelerated before a detach or an unload keep it
 * until they are gone (collect_guards()).
 */
static int attach_sockopt_guard(int cg_dir, __u64 id)
{
	static const struct {
		const char *prog, *link;
		enum bpf_attach_type type;
	} hooks[] = {
		{ PIN_PROG_SOCKOPT, PIN_LINK_SOCKOPT, BPF_CGROUP_SETSOCKOPT },
		{ PIN_PROG_GETSOCKOPT, PIN_LINK_GETSOCKOPT, BPF_CGROUP_GETSOCKOPT },
	};
	char p[PATH_MAX];
	int prog, link, err = 0;
	size_t i;

	for (i = 0; i < sizeof(hooks) / sizeof(hooks[0]) && !err; i++) {
		snprintf(p, sizeof(p), "%s/" PIN_LINK_GUARD_PREFIX "%s%llu_%u", state_root(),
			 hooks[i].link, (unsigned long long)id, current_sockhash_id());
		if (access(p, F_OK) == 0)
			continue;
		prog = open_pinned(hooks[i].prog);
		if (prog < 0)
			return err_errno(errno, "run: sockaccel unload, then attach again",
					 "pinned objects missing");
		link = bpf_link_create(prog, cg_dir, hooks[i].type, NULL);
		if (link < 0)
			err = err_errno(errno, NULL, "cannot attach the %s guard to cgroup %llu",
					hooks[i].type == BPF_CGROUP_SETSOCKOPT ? "setsockopt" : "getsockopt",
					(unsigned long long)id);
		else if (bpf_obj_pin(link, p))
			err = err_errno(errno, NULL, "cannot pin %s", p);
		if (link >= 0)
			close(link);
		close(prog);
	}
	return err;
}

static void usage_attach(void)
{
	printf("Usage: sockaccel attach (--cgroup DIR | --pid PID) [load options]\n"
	       "\n"
	       "Accelerate TCP connections of every process in a cgroup v2 (and its\n"
	       "descendants). Loads first if needed. Several cgroups share one set of\n"
	       "maps.\n"
	       "\n"
	       "Each network namespace its processes are in (a container's) gets the\n"
	       "join hook on its lo (a tcx link on Linux 6.6+, a tc filter before),\n"
	       "where connections that become eligible after the handshake join\n"
	       "later. Attaching a cgroup again only hooks the namespaces created\n"
	       "since.\n"
	       "\n");
	opts_help(stdout, cgroup_opts);
	printf("\n"
	       "Examples:\n"
	       "  sockaccel attach --cgroup /sys/fs/cgroup/system.slice/redis.service\n"
	       "  sockaccel attach --pid $(pidof nginx | cut -d' ' -f1)\n");
}

struct attach_args {
	struct load_opts o;
	struct cgroup_args target;
};

static int cmd_attach(int argc, char **argv)
{
	struct attach_args a = {};
	struct sa_cgroup_info info = {};
	char path[PATH_MAX], pin[PATH_MAX], name[64];
	int lock = -1, cg_map = -1, cg_dir = -1, prog = -1, link = -1, ret = 1, rc;
	bool now, slot_added = false;
	__u64 id;

	load_opts_init(&a.o);
	rc = opts_parse(&attach_command, argc, argv, &a, NULL);
	if (rc != OPTS_OK)
		return opts_exit(rc);
	if (!a.target.cgroup && !a.target.pid)
		return err_msg("attach needs --cgroup DIR or --pid PID (see: sockaccel attach --help)"), 1;
	if (a.target.cgroup && a.target.pid)
		return err_msg("give --cgroup or --pid, not both"), 1;
	if (require_caps())
		return 1;
	if (resolve_cgroup(a.target.cgroup, a.target.pid, path, sizeof(path), &id))
		return 1;
	if (opt_dry_run)
		return 0;
	if (ensure_bpffs())
		return 1;
	lock = lock_acquire();
	if (lock < 0)
		return 1;
	if (do_load(&a.o, &now))
		goto out;
	snprintf(name, sizeof(name), PIN_CGROUP_PREFIX "%llu", (unsigned long long)id);
	pin_path(pin, sizeof(pin), name);
	if (access(pin, F_OK) == 0) {
		info_msg("already attached: %s", path);
		ret = 0;
		goto hook;
	}
	cg_map = open_pinned(MAP_CGROUPS);
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
	if (attach_sockopt_guard(cg_dir, id))
		goto out;
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
hook:
	/*
	 * Late join needs the join hook on lo of the sockets' own namespace:
	 * a container's processes are in one of their own. Those already
	 * running are found here; attach again to cover later ones.
	 */
	rc = join_hook_cgroup_netns(path);
	if (rc > 0)
		info_msg("join hook: lo of %d more network namespace%s", rc, rc == 1 ? "" : "s");
	if (rc < 0)
		ret = 1;
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

const struct command attach_command = {
	.name = "attach",
	.summary = "accelerate a cgroup: --cgroup DIR or --pid PID",
	.run = cmd_attach,
	.usage = usage_attach,
	.opts = { { cgroup_opts, offsetof(struct attach_args, target) },
		  { tuning_opts, offsetof(struct attach_args, o) } },
};

/* Unpin the cgroup's link (which detaches it) and free its slot. */
static int detach_id(__u64 id)
{
	char pin[PATH_MAX], name[64];
	struct sa_cgroup_info info;
	int cg_map = open_pinned(MAP_CGROUPS);

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

static int cmd_detach(int argc, char **argv)
{
	struct cgroup_args t = {};
	char path[PATH_MAX];
	int lock, err;
	__u64 id;

	err = opts_parse(&detach_command, argc, argv, &t, NULL);
	if (err != OPTS_OK)
		return opts_exit(err);
	if (!t.cgroup && !t.pid)
		return err_msg("detach needs --cgroup DIR or --pid PID (see: sockaccel detach --help)"), 1;
	if (require_caps())
		return 1;
	if (resolve_cgroup(t.cgroup, t.pid, path, sizeof(path), &id))
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

const struct command detach_command = {
	.name = "detach",
	.summary = "stop accelerating new connections of one cgroup",
	.run = cmd_detach,
	.usage = usage_detach,
	.opts = { { cgroup_opts, 0 } },
};

struct unload_args {
	bool forget;
};

static const struct opt unload_opts[] = {
	{ .name = "forget", .offset = offsetof(struct unload_args, forget),
	  .help = "also remove the state directory: what was learned about\n"
		  "executables, the executable policy and every guard (only\n"
		  "safe once no accelerated connection remains)" },
	{}
};

static void usage_unload(void)
{
	printf("Usage: sockaccel unload [--forget]\n"
	       "\n"
	       "Detach from every cgroup and remove every pin under %s.\n"
	       "Connections already accelerated keep their fast path until they close:\n"
	       "their sockets hold the programs and maps, so no queued byte is lost,\n"
	       "and the splice/MSG_OOB guard stays attached until the last of them is\n"
	       "gone (its links are pinned in the state directory, %s).\n"
	       "Succeeds when nothing is loaded.\n"
	       "\n",
	       pin_root(), state_root());
	opts_help(stdout, unload_opts);
}

static int cmd_unload(int argc, char **argv)
{
	struct unload_args u = {};
	struct dirent *de;
	int lock, rc;
	DIR *d;

	rc = opts_parse(&unload_command, argc, argv, &u, NULL);
	if (rc != OPTS_OK)
		return opts_exit(rc);
	if (require_caps())
		return 1;
	lock = lock_acquire();
	if (lock < 0)
		return 1;
	d = opendir(pin_root());
	if (d) {
		/* A join hook unload cannot reach stays attached: it must join nothing. */
		join_hook_off();
		/* Cgroups first: no new socket enters while the rest goes. */
		while ((de = readdir(d))) {
			unsigned long long id;

			if (sscanf(de->d_name, PIN_CGROUP_PREFIX "%llu", &id) == 1)
				detach_id(id);
		}
		closedir(d);
		remove_pins();
	}
	collect_guards(u.forget);
	if (u.forget) {
		char p[PATH_MAX];

		if (pin_path_of_map(p, sizeof(p), MAP_EXES) == 0)
			unlink(p);
		if (pin_path_of_map(p, sizeof(p), MAP_EXE_POLICY) == 0)
			unlink(p);
		remove_pin_dir(state_root());
	}
	lock_release(lock);
	drop_caps();
	info_msg("unloaded");
	return 0;
}

const struct command unload_command = {
	.name = "unload",
	.summary = "detach everywhere and remove every pin",
	.run = cmd_unload,
	.usage = usage_unload,
	.opts = { { unload_opts, 0 } },
};
