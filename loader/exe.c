// SPDX-License-Identifier: GPL-2.0
/*
 * exe: executables as readers of sockets. The guard (bpf/guard.bpf.c)
 * learns which executables read TCP sockets with splice(), sock_ops keeps
 * new executables on probation (struct sa_exe), and the operator can force
 * one in or out (sockaccel_exe_policy). Keys are file identities (inode
 * and device of the file), never comm.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <bpf/bpf.h>
#include "common.h"
#include "maps.h"

/* The kernel's dev_t (MAJOR << 20 | MINOR), as inode->i_sb->s_dev holds it. */
static void exe_key_of_stat(const struct stat *st, struct sa_exe_key *k)
{
	memset(k, 0, sizeof(*k));
	k->ino = st->st_ino;
	k->dev = (major(st->st_dev) << 20) | minor(st->st_dev);
}

/*
 * 6.1 knows a file on overlayfs (container images) by the device of the
 * layer it lives in, not the overlay's that stat() shows. If no seen
 * executable has this exact key but exactly one has this inode number on
 * another device, that is the one: `exe set` names a program on such a
 * kernel once it has run (exe list shows what it matched).
 */
static void exe_key_fixup_dev(struct sa_exe_key *k)
{
	int fd = open_pinned_map(MAP_EXES);
	struct sa_exe_key cur, next, *prev = NULL, found = {};
	int n = 0;

	if (fd < 0)
		return;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		cur = next;
		prev = &cur;
		if (cur.ino != k->ino)
			continue;
		if (cur.dev == k->dev) {
			close(fd);
			return;
		}
		found = cur;
		n++;
	}
	close(fd);
	if (n == 1)
		*k = found;
}

static int exe_key_of_path(const char *path, struct sa_exe_key *k)
{
	struct stat st;

	if (stat(path, &st))
		return err_errno(errno, NULL, "cannot stat '%s'", path);
	if (!S_ISREG(st.st_mode))
		return err_msg("'%s' is not a regular file (an executable is named by its file)", path);
	exe_key_of_stat(&st, k);
	exe_key_fixup_dev(k);
	return 0;
}

/* A running process's path for the key, for display only; "" if none. */
static void exe_path(const struct sa_exe_key *k, char *out, size_t len, int *pid_out)
{
	char link[300];
	struct dirent *de;
	struct stat st;
	DIR *d = opendir("/proc");

	*out = 0;
	*pid_out = 0;
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct sa_exe_key pk;
		ssize_t n;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(link, sizeof(link), "/proc/%s/exe", de->d_name);
		if (stat(link, &st))
			continue;
		exe_key_of_stat(&st, &pk);
		if (pk.ino != k->ino || pk.dev != k->dev)
			continue;
		n = readlink(link, out, len - 1);
		out[n > 0 ? n : 0] = 0;
		*pid_out = atoi(de->d_name);
		break;
	}
	closedir(d);
}

static const char *action_name(__u32 a)
{
	return a == SA_EXE_ACCELERATE ? "accelerate" : a == SA_EXE_TCP ? "tcp" : "learn";
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);	/* bpf_ktime_get_ns()'s clock */
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* What an executable was seen doing (struct sa_exe.flags), by name. */
static const struct {
	__u32 flag;
	const char *name;
} exe_uses[] = {
	{ SA_EXE_SPLICES, "splice" },
	{ SA_EXE_ZEROCOPY_RX, "zerocopy_rx" },
	{ SA_EXE_URGENT, "urgent" },
	{ SA_EXE_RX_OPTIONS, "rx_options" },
	{ SA_EXE_FIONREAD, "fionread" },
	{ SA_EXE_TX_TIMESTAMPS, "tx_timestamps" },
	{ SA_EXE_ULP, "ulp" },
};

/* "splice,urgent": the uses in flags, "" if none. */
static const char *exe_uses_str(__u32 flags, char *buf, size_t len)
{
	size_t i, n = 0;

	buf[0] = 0;
	for (i = 0; i < sizeof(exe_uses) / sizeof(exe_uses[0]); i++)
		if ((flags & exe_uses[i].flag) && n + strlen(exe_uses[i].name) + 2 < len)
			n += snprintf(buf + n, len - n, "%s%s", n ? "," : "", exe_uses[i].name);
	return buf;
}

static const char *exe_state(const struct sa_exe *e, const struct sa_config *cfg, bool have_cfg)
{
	if (e->flags & SA_EXE_SPLICES)
		return "splices";
	if (e->flags & SA_EXE_UNSAFE)
		return "tcp_only";
	if (have_cfg && (e->conns < cfg->probation_conns ||
			 now_ns() - e->first_ns < cfg->probation_ns))
		return "probation";
	return "trusted";
}

/* One executable of exe list -j; e is all zeroes for one never seen. */
static void exe_json(struct json *w, const struct sa_exe_key *k, const struct sa_exe *e,
		     const char *path, int pid, const char *state, __u32 action)
{
	char comm[17], uses[96];

	memcpy(comm, e->comm, 16);
	comm[16] = 0;
	json_start_object(w);
	json_field_str(w, "path", path);
	json_field_str(w, "comm", comm);
	json_key(w, "pid");
	json_s64(w, pid);
	json_field_u64(w, "dev", k->dev);
	json_field_u64(w, "ino", k->ino);
	json_field_str(w, "state", state);
	json_field_str(w, "policy", action_name(action));
	json_field_str(w, "uses", exe_uses_str(e->flags, uses, sizeof(uses)));
	json_field_u64(w, "conns", e->conns);
	json_field_u64(w, "splices", e->splices);
	json_field_u64(w, "kills", e->kills);
	json_end(w);
}

/*
 * Executables that read with splice() or have a policy (all learned ones
 * with -v): status's "executables" section, or a JSON array.
 */
void exes_print(FILE *f, struct json *w)
{
	int efd = open_pinned_map(MAP_EXES), pfd = open_pinned_map(MAP_EXE_POLICY);
	struct sa_exe_key k, next, *prev = NULL;
	struct sa_config cfg;
	bool have_cfg = read_config(&cfg) == 0;
	int shown = 0, learned = 0;

	if (w)
		json_start_array(w);
	while (efd >= 0 && bpf_map_get_next_key(efd, prev, &next) == 0) {
		struct sa_exe e;
		__u32 action = SA_EXE_LEARN;
		char path[PATH_MAX], comm[17], pidbuf[24] = "", uses[96];
		int pid;

		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(efd, &k, &e))
			continue;
		learned++;
		if (pfd >= 0)
			bpf_map_lookup_elem(pfd, &k, &action);
		if (!(e.flags & SA_EXE_UNSAFE) && action == SA_EXE_LEARN && !opt_verbose)
			continue;
		exe_path(&k, path, sizeof(path), &pid);
		shown++;
		if (w) {
			exe_json(w, &k, &e, path, pid, exe_state(&e, &cfg, have_cfg), action);
			continue;
		}
		exe_uses_str(e.flags, uses, sizeof(uses));
		if (pid)
			snprintf(pidbuf, sizeof(pidbuf), " pid %d", pid);
		memcpy(comm, e.comm, 16);
		comm[16] = 0;
		fprintf(f, "    %-9s %s%s (comm %s, dev %u:%u ino %llu): uses %s, %u splice() "
			"calls, %u kills, %u connections%s%s\n",
			exe_state(&e, &cfg, have_cfg), path[0] ? path : "not running",
			pidbuf, comm, k.dev >> 20, k.dev & 0xfffff, (unsigned long long)k.ino,
			uses[0] ? uses : "none", e.splices, e.kills, e.conns,
			action != SA_EXE_LEARN ? ", policy " : "",
			action != SA_EXE_LEARN ? action_name(action) : "");
	}
	/* Policies for executables never seen yet. */
	prev = NULL;
	while (pfd >= 0 && bpf_map_get_next_key(pfd, prev, &next) == 0) {
		struct sa_exe e;
		__u32 action;
		char path[PATH_MAX];
		int pid;

		k = next;
		prev = &k;
		if ((efd >= 0 && bpf_map_lookup_elem(efd, &k, &e) == 0) ||
		    bpf_map_lookup_elem(pfd, &k, &action))
			continue;
		exe_path(&k, path, sizeof(path), &pid);
		shown++;
		if (w) {
			memset(&e, 0, sizeof(e));
			exe_json(w, &k, &e, path, pid, "unseen", action);
		} else {
			fprintf(f, "    %-9s %s (dev %u:%u ino %llu), policy %s\n", "unseen",
				path[0] ? path : "not running", k.dev >> 20, k.dev & 0xfffff,
				(unsigned long long)k.ino, action_name(action));
		}
	}
	if (w)
		json_end(w);
	else if (!shown)
		fprintf(f, "    none of %d seen uses TCP sockets in ways the fast path cannot serve\n",
			learned);
	if (efd >= 0)
		close(efd);
	if (pfd >= 0)
		close(pfd);
}

/* Every socket looks at its records and readers again (struct sa_guard). */
int exe_guard_bump(void)
{
	int fd = open_pinned(MAP_GUARD);
	struct sa_guard g;
	__u32 zero = 0;
	int err = -1;

	if (fd < 0)
		return -1;
	/* Not atomic with the BPF side's increments, which only need "moved". */
	if (bpf_map_lookup_elem(fd, &zero, &g) == 0) {
		g.gen += 1u << 20;
		err = bpf_map_update_elem(fd, &zero, &g, BPF_ANY);
	}
	close(fd);
	return err;
}

static void usage_exe(void)
{
	printf("Usage: sockaccel exe list\n"
	       "       sockaccel exe set PATH accelerate|tcp|learn\n"
	       "       sockaccel exe forget PATH\n"
	       "\n"
	       "splice() never sees bytes handed to a socket by sockaccel, so sockets read\n"
	       "by a program that splices must stay on TCP. Every splice() from a TCP\n"
	       "socket teaches sockaccel that its executable (the file, by device and\n"
	       "inode) splices; its sockets are never inserted again. A new executable\n"
	       "stays on TCP for a probation (load --probation, --probation-time).\n"
	       "\n"
	       "  list       learned executables: state splices|probation|trusted (all\n"
	       "             of them with -v), kills, and any policy\n"
	       "  set        accelerate: no probation, splice() learning ignored (a\n"
	       "             splice() from a socket holding redirected bytes then kills\n"
	       "             the program); tcp: never accelerated; learn: the default\n"
	       "  forget     drop what was learned about PATH (it starts probation again)\n"
	       "\n"
	       "What was learned outlives unload and reload (%s).\n"
	       "\n"
	       "Examples:\n"
	       "  sockaccel exe list\n"
	       "  sockaccel exe set /usr/local/bin/my-proxy tcp\n"
	       "  sockaccel -j exe list\n", state_root());
}

static const struct command exe_list = { .name = "exe list", .usage = usage_exe };
static const struct command exe_set = { .name = "exe set", .usage = usage_exe, .max_args = 2 };
static const struct command exe_forget = { .name = "exe forget", .usage = usage_exe, .max_args = 1 };
static const struct command *const exe_verbs[] = { &exe_list, &exe_set, &exe_forget, NULL };

static int cmd_exe(int argc, char **argv)
{
	const struct command *verb;
	struct opts_args words, args;
	struct sa_exe_key k;
	int fd, lock, err = 0, rc;
	__u32 action;

	rc = opts_parse(&exe_command, argc, argv, NULL, &words);
	if (rc != OPTS_OK)
		return opts_exit(rc);
	if (!words.n)
		return usage_exe(), 1;
	verb = command_find(&exe_command, words.v[0]);
	if (!verb)
		return err_msg("unknown exe command '%s' (see: sockaccel exe --help)", words.v[0]), 1;
	rc = opts_parse(verb, words.n, words.v, NULL, &args);
	if (rc != OPTS_OK)
		return opts_exit(rc);
	if (verb == &exe_list) {
		if (require_caps())
			return 1;
		if (!is_loaded() && access(state_root(), F_OK))
			return err_msg("sockaccel is not loaded (hint: sockaccel load)"), 1;
		if (opt_json) {
			struct json w;

			json_init(&w, stdout);
			exes_print(stdout, &w);
		} else {
			exes_print(stdout, NULL);
		}
		return 0;
	}
	if (args.n != verb->max_args)
		return err_msg("wrong number of arguments (see: sockaccel exe --help)"), 1;
	if (verb == &exe_set) {
		if (!strcmp(args.v[1], "accelerate"))
			action = SA_EXE_ACCELERATE;
		else if (!strcmp(args.v[1], "tcp"))
			action = SA_EXE_TCP;
		else if (!strcmp(args.v[1], "learn"))
			action = SA_EXE_LEARN;
		else
			return err_msg("invalid action '%s' (accelerate, tcp or learn)", args.v[1]), 1;
	}
	if (exe_key_of_path(args.v[0], &k))
		return 1;
	if (opt_dry_run)
		return 0;
	if (require_caps())
		return 1;
	if (!is_loaded())
		return err_msg("sockaccel is not loaded (hint: sockaccel load)"), 1;
	lock = lock_acquire();
	if (lock < 0)
		return 1;
	if (verb == &exe_set) {
		fd = open_pinned_map(MAP_EXE_POLICY);
		if (fd < 0)
			err = err_errno(errno, NULL, "cannot open the executable policy map");
		else if (action == SA_EXE_LEARN)
			bpf_map_delete_elem(fd, &k);
		else if (bpf_map_update_elem(fd, &k, &action, BPF_ANY))
			err = err_errno(errno, "at most 1024 executables have a policy",
					"cannot set the policy of '%s'", args.v[0]);
	} else {
		fd = open_pinned_map(MAP_EXES);
		if (fd < 0)
			err = err_errno(errno, NULL, "cannot open the executables map");
		else
			bpf_map_delete_elem(fd, &k);
	}
	if (fd >= 0)
		close(fd);
	/* Connections of a program forced to TCP leave the fast path now. */
	if (!err)
		exe_guard_bump();
	lock_release(lock);
	drop_caps();
	return err ? 1 : 0;
}

const struct command exe_command = {
	.name = "exe",
	.summary = "executables kept on TCP (splice, urgent data, ...), policy",
	.run = cmd_exe,
	.usage = usage_exe,
	.stop_at_arg = true,
	.subcommands = exe_verbs,
};
