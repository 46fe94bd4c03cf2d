/* SPDX-License-Identifier: GPL-2.0 */
#ifndef SOCKACCEL_LOADER_COMMON_H
#define SOCKACCEL_LOADER_COMMON_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>
#include "sockaccel.h"
#include "json.h"
#include "options.h"

/* -v, -j: before the command or after it (options.c parses them). */
extern bool opt_verbose;
extern bool opt_json;
/* Config files (config.c): check every argument, change nothing. */
extern bool opt_dry_run;
extern const char *err_context;
extern bool keep_caps;

/*
 * Errors: one lowercase line on stderr; with -j, that line is a JSON
 * object, {"error":"..."}. Always returns -1 for chaining.
 */
int err_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, with ": <strerror(errnum)>" and an optional hint. */
int err_errno(int errnum, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void info_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Environment (util.c). */
int require_caps(void);
void drop_caps(void);
int ensure_bpffs(void);
int ensure_kernel_support(void);
int open_lock_file(const char *name, const char *override, char *path, size_t len);
int lock_acquire(void);
void lock_release(int fd);
int cgroup2_mount(char *buf, size_t len);
int resolve_cgroup(const char *dir, const char *pid, char *path, size_t len, __u64 *id);
int cgroup_path_by_id(__u64 id, char *path, size_t len);
int ensure_tracefs(void);
int check_pin_dir(const char *dir);
void remove_pin_dir(const char *dir);
int parse_size(const char *s, __u64 *out);
bool getenv_flag(const char *name);

/* --cgroup DIR, --pid PID (util.c): attach, detach, policy. */
struct cgroup_args {
	const char *cgroup;
	const char *pid;
};
extern const struct opt cgroup_opts[];

/* Commands (main.c lists them). */
extern const struct command load_command;
extern const struct command attach_command;
extern const struct command detach_command;
extern const struct command unload_command;
extern const struct command status_command;
extern const struct command stats_command;
extern const struct command trace_command;
extern const struct command policy_command;
extern const struct command exe_command;
extern const struct command probe_command;
extern const struct command metrics_command;
int load_config(const char *file);

/* The join hook on loopback (join.c). */
int join_hook_attach(int prog_fd, const char **how);
void join_hook_detach(void);
/* Unload: the join hook inserts nothing from now (sa_config.join_off). */
int join_hook_off(void);
/* Unload: remove this instance's tc filters from every namespace it can enter. */
void remove_join_filters(void);
/* lo of the other namespaces of a cgroup's processes: how many hooked now, -1 on error. */
int join_hook_cgroup_netns(const char *cg_path);

/* Executables (exe.c). */
/* Text on f, or with w, a JSON array. */
void exes_print(FILE *f, struct json *w);
int exe_guard_bump(void);

/* Shared between commands. */
struct load_opts {
	__u32 max_socks;
	__u64 backlog_limit;
	int cross_netns;	/* -1 keep, 0 off, 1 on */
	int short_conns;		/* -1 keep, 0 accelerate short connections, 1 skip */
	long lock_spin_ns;	/* -1 keep, else the wait bound (0 = never wait) */
	long probation_conns;	/* -1 keep, else connections per new executable */
	long probation_ms;	/* -1 keep, else milliseconds per new executable */
};
int do_load(const struct load_opts *o, bool *loaded_now);
int run_kernel_probe(__u32 *flags, bool report);

#endif
