// SPDX-License-Identifier: GPL-2.0
/*
 * The pinned objects (maps.h): the only place that knows where they are
 * and what the loader reads and writes in the maps.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "maps.h"

/*
 * SOCKACCEL_PIN_ROOT runs an independent instance (its own programs and
 * maps) beside the default one, e.g. for experiments next to a live setup.
 */
const char *pin_root(void)
{
	const char *r = getenv("SOCKACCEL_PIN_ROOT");

	return r && *r ? r : SA_PIN_ROOT;
}

int pin_path(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", pin_root(), name);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int open_pinned(const char *name)
{
	char p[PATH_MAX];

	if (pin_path(p, sizeof(p), name))
		return -1;
	return bpf_obj_get(p);
}

/*
 * What sockaccel learned (sockaccel_exes) and the operator chose per
 * executable (sockaccel_exe_policy) live beside the pin root, not in it:
 * unload removes the pin root, and a reload must not forget which
 * programs read sockets with splice(). <pin root>-state, or
 * SOCKACCEL_STATE_ROOT.
 */
const char *state_root(void)
{
	static char buf[PATH_MAX];
	const char *r = getenv("SOCKACCEL_STATE_ROOT");

	/* Set where the two are mount points of their own (deploy/). */
	if (r && *r)
		return r;
	snprintf(buf, sizeof(buf), "%s-state", pin_root());
	return buf;
}

bool is_state_map(const char *name)
{
	return !strcmp(name, MAP_EXES) || !strcmp(name, MAP_EXE_POLICY);
}

int pin_path_of_map(char *buf, size_t len, const char *name)
{
	int n;

	if (!is_state_map(name))
		return pin_path(buf, len, name);
	n = snprintf(buf, len, "%s/%s", state_root(), name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int open_pinned_map(const char *name)
{
	char p[PATH_MAX];

	if (pin_path_of_map(p, sizeof(p), name))
		return -1;
	return bpf_obj_get(p);
}

bool is_loaded(void)
{
	char p[PATH_MAX];

	/* Pinned last by a load, with or without a sockmap link. */
	pin_path(p, sizeof(p), PIN_PROG_SK_MSG);
	return access(p, F_OK) == 0;
}

int read_config(struct sa_config *cfg)
{
	__u32 zero = 0;
	int fd = open_pinned(MAP_CONFIG), err;

	if (fd < 0)
		return -1;
	err = bpf_map_lookup_elem(fd, &zero, cfg);
	close(fd);
	return err;
}

int write_config(const struct sa_config *cfg)
{
	__u32 zero = 0;
	int fd = open_pinned(MAP_CONFIG), err;

	if (fd < 0)
		return -1;
	err = bpf_map_update_elem(fd, &zero, cfg, BPF_ANY);
	close(fd);
	return err;
}

int read_counters(__u32 slot, struct sa_counters *sum)
{
	int ncpu = libbpf_num_possible_cpus(), fd, cpu, i;
	struct sa_counters *v;
	__u32 s, first = slot, last = slot;

	memset(sum, 0, sizeof(*sum));
	if (ncpu <= 0)
		return -1;
	fd = open_pinned(MAP_STATS);
	if (fd < 0)
		return -1;
	v = calloc(ncpu, sizeof(*v));
	if (!v) {
		close(fd);
		return -1;
	}
	if (slot == (__u32)-1) {
		first = 0;
		last = SA_MAX_CGROUPS - 1;
	}
	for (s = first; s <= last; s++) {
		if (bpf_map_lookup_elem(fd, &s, v))
			continue;
		for (cpu = 0; cpu < ncpu; cpu++)
			for (i = 0; i < SA_C_MAX; i++)
				sum->c[i] += v[cpu].c[i];
	}
	free(v);
	close(fd);
	return 0;
}

void reset_slot(__u32 slot)
{
	int ncpu = libbpf_num_possible_cpus();
	int stats = open_pinned(MAP_STATS), pol = open_pinned(MAP_POLICY);
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

unsigned int count_u64_keys(int fd)
{
	__u64 k, *prev = NULL;
	unsigned int n = 0;

	while (bpf_map_get_next_key(fd, prev, &k) == 0 && n < (1u << 25)) {
		n++;
		prev = &k;
	}
	return n;
}
