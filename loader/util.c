// SPDX-License-Identifier: GPL-2.0
/* Environment checks and plumbing shared by every command. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/capability.h>
#include "common.h"
#include "maps.h"

bool opt_verbose;
bool opt_json;
/* "FILE:LINE: " while a config file is read (config.c), else "". */
const char *err_context = "";
bool opt_dry_run;

/*
 * -j: a script reads stderr too, so the error is one JSON object holding
 * the very text the plain line would (the writer escapes what it must).
 */
static void err_json(const char *msg, const char *sys, const char *hint)
{
	struct json w;

	json_init(&w, stderr);
	json_start_object(&w);
	json_key(&w, "error");
	json_strf(&w, "%s%s%s%s%s%s", err_context, msg, sys ? ": " : "", sys ? sys : "",
		  hint ? " (hint: " : "", hint ? ")" : "");
	json_end(&w);
}

/*
 * msg is what the command formatted, sys strerror()'s part. An error is
 * one line: control characters from the user's own arguments (a newline
 * in a path) are written as \xNN.
 */
static void err_print(const char *msg, const char *sys, const char *hint)
{
	const unsigned char *c;

	if (opt_json) {
		err_json(msg, sys, hint);
		return;
	}
	fprintf(stderr, "sockaccel: %s", err_context);
	for (c = (const unsigned char *)msg; *c; c++) {
		if (*c < 0x20 || *c == 0x7f)
			fprintf(stderr, "\\x%02x", *c);
		else
			fputc(*c, stderr);
	}
	if (sys)
		fprintf(stderr, ": %s", sys);
	if (hint)
		fprintf(stderr, " (hint: %s)", hint);
	fputc('\n', stderr);
}

static void vformat_lower(char *buf, size_t len, const char *fmt, va_list ap)
{
	vsnprintf(buf, len, fmt, ap);
	buf[0] = tolower((unsigned char)buf[0]);
}

int err_msg(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vformat_lower(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	err_print(buf, NULL, NULL);
	return -1;
}

int err_errno(int errnum, const char *hint, const char *fmt, ...)
{
	char buf[1024], e[128];
	va_list ap;

	va_start(ap, fmt);
	vformat_lower(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	snprintf(e, sizeof(e), "%s", strerror(errnum < 0 ? -errnum : errnum));
	e[0] = tolower((unsigned char)e[0]);
	err_print(buf, e, hint);
	return -1;
}

void info_msg(const char *fmt, ...)
{
	va_list ap;

	if (opt_json)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

static bool cap_effective(cap_t caps, cap_value_t v)
{
	cap_flag_value_t val = CAP_CLEAR;

	if (!CAP_IS_SUPPORTED(v))
		return false;
	cap_get_flag(caps, v, CAP_EFFECTIVE, &val);
	return val == CAP_SET;
}

/*
 * bpf() needs CAP_BPF (+ CAP_PERFMON for the pointer reads both programs
 * do), cgroup and sockmap programs need CAP_NET_ADMIN; CAP_SYS_ADMIN
 * covers BPF and PERFMON on every kernel and is needed to mount bpffs.
 */
int require_caps(void)
{
	cap_t caps = cap_get_proc();
	bool sys_admin, bpf, perfmon, net_admin;

	if (!caps)
		return err_errno(errno, NULL, "cannot read process capabilities");
	sys_admin = cap_effective(caps, CAP_SYS_ADMIN);
	bpf = cap_effective(caps, CAP_BPF) || sys_admin;
	perfmon = cap_effective(caps, CAP_PERFMON) || sys_admin;
	net_admin = cap_effective(caps, CAP_NET_ADMIN);
	cap_free(caps);
	if (bpf && perfmon && net_admin)
		return 0;
	return err_msg("missing capabilities:%s%s%s (hint: run as root)",
		       bpf ? "" : " CAP_BPF", perfmon ? "" : " CAP_PERFMON",
		       net_admin ? "" : " CAP_NET_ADMIN");
}

/* After the privileged work: keep nothing. Open fds stay usable. */
bool keep_caps;		/* a config file runs several commands (config.c) */

void drop_caps(void)
{
	cap_t caps;

	if (keep_caps)
		return;
	caps = cap_init();

	if (caps) {
		cap_set_proc(caps);
		cap_free(caps);
	}
}

static int mount_sys_fs_bpf(void)
{
	struct statfs st;

	if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mkdir("/sys/fs/bpf", 0755) && errno != EEXIST)
		return err_errno(errno, "is /sys mounted read-only?", "cannot create /sys/fs/bpf");
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
		return err_errno(errno, "mount it with: mount -t bpf bpf /sys/fs/bpf",
				 "cannot mount bpffs at /sys/fs/bpf");
	info_msg("mounted bpffs at /sys/fs/bpf");
	return 0;
}

/*
 * Is DIR on bpffs, or, while it does not exist, the directory it is to be
 * made in? 1 or 0; -1 (errno set) if neither can be looked at. *at: the
 * directory looked at.
 */
static int bpffs_at(const char *dir, char *at, size_t len)
{
	struct statfs st;
	char *slash;
	size_t n;

	snprintf(at, len, "%s", dir);
	if (statfs(at, &st) == 0)
		return st.f_type == BPF_FS_MAGIC;
	if (errno != ENOENT)
		return -1;
	/* Its parent: drop trailing slashes, then the last name. */
	n = strlen(at);
	while (n > 1 && at[n - 1] == '/')
		at[--n] = 0;
	slash = strrchr(at, '/');
	if (!slash)
		snprintf(at, len, ".");
	else
		slash[slash == at ? 1 : 0] = 0;
	if (statfs(at, &st))
		return -1;
	return st.f_type == BPF_FS_MAGIC;
}

/*
 * The pin root and the state directory must be on bpffs. They need not be
 * under /sys/fs/bpf: in a container (deploy/daemonset.yaml) they are bind
 * mounts of two directories of the host's bpffs, and /sys/fs/bpf is the
 * container's read-only sysfs, where nothing may be mounted. Only for a
 * directory under /sys/fs/bpf is bpffs mounted there when missing.
 */
int ensure_bpffs(void)
{
	const char *dirs[2] = { pin_root(), state_root() };
	char at[PATH_MAX];
	int i, on;

	/* unload empties the pin root: what was learned would go with it. */
	if (!strcmp(dirs[0], dirs[1]))
		return err_msg("the state directory (SOCKACCEL_STATE_ROOT) is the pin root %s: "
			       "give each its own", dirs[0]);
	for (i = 0; i < 2; i++) {
		on = bpffs_at(dirs[i], at, sizeof(at));
		if (on != 1 && !strncmp(dirs[i], "/sys/fs/bpf/", strlen("/sys/fs/bpf/"))) {
			if (mount_sys_fs_bpf())
				return -1;
			on = bpffs_at(dirs[i], at, sizeof(at));
		}
		if (on < 0 && errno == ENOENT)
			return err_errno(errno, NULL, "cannot create %s", dirs[i]);
		if (on < 0)
			return err_errno(errno, NULL, "cannot stat %s", at);
		if (!on)
			return err_msg("%s is not on a bpf file system, so nothing can be pinned in it "
				       "(hint: a directory of bpffs, or a bind mount of one)", at);
	}
	return 0;
}

/*
 * What sockaccel needs from the kernel, checked before anything is
 * loaded, so a kernel that lacks one gets one line naming it and the
 * version that brought it, never a verifier's "invalid argument".
 * SOCKACCEL_TEST_MISSING=NAME makes check NAME fail (tests/test_cli.sh:
 * no kernel that old boots here). SOCKACCEL_TEST_KERNEL_RELEASE stands
 * in for uname's release.
 */
#define SA_MIN_KERNEL_MAJOR	6
#define SA_MIN_KERNEL_MINOR	1

static int check_release(void)
{
	const char *fake = getenv("SOCKACCEL_TEST_KERNEL_RELEASE");
	struct utsname u;
	const char *r;
	int major = 0, minor = 0;

	if (uname(&u))
		return 1;
	r = fake && *fake ? fake : u.release;
	if (sscanf(r, "%d.%d", &major, &minor) != 2)
		return 1;	/* unknown format: let the feature checks decide */
	return major > SA_MIN_KERNEL_MAJOR ||
	       (major == SA_MIN_KERNEL_MAJOR && minor >= SA_MIN_KERNEL_MINOR);
}

static int check_btf(void)
{
	return access("/sys/kernel/btf/vmlinux", R_OK) == 0;
}

static int check_sockhash(void)
{
	return libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SOCKHASH, NULL);
}

static int check_sk_msg(void)
{
	return libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_MSG, NULL);
}

static int check_sock_ops(void)
{
	return libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, NULL);
}

static int check_tracepoint(void)
{
	return libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACEPOINT, NULL);
}

static int check_sk_storage(void)
{
	return libbpf_probe_bpf_helper(BPF_PROG_TYPE_SK_MSG, BPF_FUNC_sk_storage_get, NULL);
}

static int check_bpf_loop(void)
{
	return libbpf_probe_bpf_helper(BPF_PROG_TYPE_SK_MSG, BPF_FUNC_loop, NULL);
}

static const struct kernel_feature {
	const char *name;
	int (*check)(void);	/* 1 present, 0 absent, < 0 cannot tell */
	const char *what;	/* "kernel has no ..." */
	const char *since;	/* where it came from */
} kernel_features[] = {
	{ "kernel_version", check_release, NULL, "Linux 6.1" },
	{ "btf", check_btf, "BTF at /sys/kernel/btf/vmlinux", "CONFIG_DEBUG_INFO_BTF=y, Linux 5.4" },
	{ "sockhash", check_sockhash, "BPF_MAP_TYPE_SOCKHASH",
	  "CONFIG_BPF_STREAM_PARSER=y, Linux 4.18" },
	{ "sk_msg", check_sk_msg, "sk_msg programs", "CONFIG_NET_SOCK_MSG=y, Linux 4.17" },
	{ "sock_ops", check_sock_ops, "sock_ops programs on cgroups", "CONFIG_CGROUP_BPF=y, Linux 4.13" },
	{ "tracepoint", check_tracepoint, "BPF tracepoint programs (the splice/MSG_OOB guard)",
	  "CONFIG_BPF_EVENTS=y, Linux 4.7" },
	{ "sk_storage", check_sk_storage, "bpf_sk_storage_get() in sk_msg programs", "Linux 5.2" },
	{ "bpf_loop", check_bpf_loop, "bpf_loop() in sk_msg programs", "Linux 5.17" },
};

int ensure_kernel_support(void)
{
	const char *missing = getenv("SOCKACCEL_TEST_MISSING");
	size_t i;

	for (i = 0; i < sizeof(kernel_features) / sizeof(kernel_features[0]); i++) {
		const struct kernel_feature *f = &kernel_features[i];
		int ret = missing && !strcmp(missing, f->name) ? 0 : f->check();

		/* A probe that cannot run at all (seccomp, LSM) is not a missing feature. */
		if (ret < 0)
			return err_errno(-ret, "a seccomp profile or LSM may block bpf(); see docs/kubernetes.md",
					 "cannot probe BPF features (%s)", f->name);
		if (ret == 0 && f->check == check_release) {
			const char *fake = getenv("SOCKACCEL_TEST_KERNEL_RELEASE");
			struct utsname u;

			uname(&u);
			return err_msg("kernel %s is older than the supported minimum, %s",
				       fake && *fake ? fake : u.release, f->since);
		}
		if (ret == 0)
			return err_msg("kernel has no %s (hint: needs %s)", f->what, f->since);
	}
	return 0;
}

/*
 * Serialises load/attach/detach/unload/policy/exe (xdp-tools style). The
 * lock file lives in /run (root's, mode 0755), not the world-writable
 * /run/lock, where any user could pre-create it or hold a lock on it; it
 * is opened with O_NOFOLLOW, and waited for a bounded time: a command
 * never hangs on a lock somebody else holds. The holder's pid is written
 * into the file so the error can name it, and so a waiter can tell a
 * queue that moves (many commands at once: each holder for a moment) from
 * one holder that does not: it gives up when one holder has kept the lock
 * for SOCKACCEL_LOCK_WAIT seconds (a first load, which probes the kernel,
 * took over 10 s under qemu's TCG with 39 other commands starting), or
 * after four times that in all (flock() is not fair: a stream of other
 * commands could take it first forever).
 */
#define SA_LOCK_WAIT_S		30
#define SA_LOCK_WAIT_MAX_S	3600

/* SOCKACCEL_LOCK_WAIT, or the default; -1 (reported) if it is not 1..3600. */
static int lock_wait_s(void)
{
	const char *v = getenv("SOCKACCEL_LOCK_WAIT");
	char *end;
	long n;

	if (!v || !*v)
		return SA_LOCK_WAIT_S;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < 1 || n > SA_LOCK_WAIT_MAX_S)
		return err_msg("invalid SOCKACCEL_LOCK_WAIT '%s' (seconds, 1..%d)", v,
			       SA_LOCK_WAIT_MAX_S);
	return n;
}

/*
 * Open (or create) a lock file of ours: /run/NAME, or /tmp/NAME in a
 * container with a read-only root (deploy/), or *override if set. *path
 * says which. One made by someone else (a shared /tmp) is not ours to
 * wait on.
 */
int open_lock_file(const char *name, const char *override, char *path, size_t len)
{
	struct stat st;
	int fd;

	if (override && *override)
		snprintf(path, len, "%s", override);
	else
		snprintf(path, len, "/run/%s", name);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && (errno == EROFS || errno == EACCES) && (!override || !*override)) {
		snprintf(path, len, "/tmp/%s", name);
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (fd < 0)
		return err_errno(errno, NULL, "cannot open lock file %s", path);
	if (fstat(fd, &st) || st.st_uid != geteuid()) {
		close(fd);
		return err_msg("lock file %s is owned by uid %u, not by this user: refusing to use it",
			       path, (unsigned int)st.st_uid);
	}
	return fd;
}

static double monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The pid the lock's last holder wrote, "" if none. */
static void lock_holder(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = 0;
	buf[strcspn(buf, "\n")] = 0;
}

int lock_acquire(void)
{
	char holder[32], seen[32], path[PATH_MAX];
	int fd, wait_s = lock_wait_s();
	double start, since, now;

	if (wait_s < 0)
		return -1;
	fd = open_lock_file("sockaccel.lock", getenv("SOCKACCEL_LOCK_FILE"), path, sizeof(path));
	if (fd < 0)
		return -1;
	start = since = monotonic_s();
	lock_holder(fd, seen, sizeof(seen));
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			char pid[32];
			int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());

			if (ftruncate(fd, 0) == 0)
				(void)!pwrite(fd, pid, n, 0);
			return fd;
		}
		if (errno != EWOULDBLOCK) {
			close(fd);
			return err_errno(errno, NULL, "cannot lock %s", path);
		}
		now = monotonic_s();
		lock_holder(fd, holder, sizeof(holder));
		if (strcmp(holder, seen)) {
			/* Another command took it since: the queue moves. */
			snprintf(seen, sizeof(seen), "%s", holder);
			since = now;
		}
		if (now - since >= wait_s || now - start >= 4 * wait_s)
			break;
		usleep(50 * 1000);
	}
	close(fd);
	if (now - since >= wait_s)
		return err_msg("%s has been held by another command for %d s (last taken by pid %s); giving up",
			       path, wait_s, seen[0] ? seen : "unknown");
	return err_msg("%s was taken by other commands for %d s (last by pid %s); giving up",
		       path, 4 * wait_s, seen[0] ? seen : "unknown");
}

/*
 * A pin root or state directory made by someone else is never adopted:
 * whoever owns it could pre-pin maps that a load would reuse, or unlink
 * pins. It must be a directory owned by root, writable by nobody else.
 */
int check_pin_dir(const char *dir)
{
	struct statfs sf;
	struct stat st;

	if (lstat(dir, &st)) {
		if (errno == ENOENT)
			return 0;
		return err_errno(errno, NULL, "cannot stat %s", dir);
	}
	if (!S_ISDIR(st.st_mode))
		return err_msg("%s is not a directory: refusing to use it (hint: remove it)", dir);
	if (st.st_uid != 0 || (st.st_mode & 022))
		return err_msg("%s is owned by uid %u with mode %04o: refusing to adopt it "
			       "(hint: remove it; sockaccel creates it, root-only)",
			       dir, (unsigned int)st.st_uid, (unsigned int)(st.st_mode & 07777));
	/* It may be a mount point (a bind mount in a container): on bpffs. */
	if (statfs(dir, &sf))
		return err_errno(errno, NULL, "cannot stat %s", dir);
	if (sf.f_type != BPF_FS_MAGIC)
		return err_msg("%s is not on a bpf file system: refusing to use it "
			       "(hint: a directory of bpffs, or a bind mount of one)", dir);
	return 0;
}

/*
 * Remove an emptied pin root or state directory. One that is a mount point
 * (a bind mount of a directory of the host's bpffs: deploy/daemonset.yaml)
 * cannot be removed (EBUSY) and stays, empty, for the next load; so does
 * one that holds something that is not sockaccel's.
 */
void remove_pin_dir(const char *dir)
{
	if (rmdir(dir) == 0 || errno == ENOENT)
		return;
	if (opt_verbose && errno == EBUSY)
		fprintf(stderr, "sockaccel: %s is a mount point: left in place\n", dir);
	else if (opt_verbose)
		fprintf(stderr, "sockaccel: %s left in place: %s\n", dir, strerror(errno));
}

void lock_release(int fd)
{
	if (fd >= 0) {
		flock(fd, LOCK_UN);
		close(fd);
	}
}

/* First cgroup2 mount in /proc/mounts (hybrid hosts: /sys/fs/cgroup/unified). */
int cgroup2_mount(char *buf, size_t len)
{
	char dev[256], dir[PATH_MAX], type[64];
	FILE *f = fopen("/proc/mounts", "re");
	int ret = -1;

	if (!f)
		return -1;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]\n", dev, dir, type) == 3) {
		if (strcmp(type, "cgroup2") == 0) {
			snprintf(buf, len, "%s", dir);
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

static int pid_cgroup_dir(const char *pid_s, char *out, size_t len)
{
	char path[64], line[PATH_MAX + 16], mnt[PATH_MAX];
	char *end;
	long pid = strtol(pid_s, &end, 10);
	FILE *f;
	int found = 0;

	if (*pid_s == '\0' || *end || pid <= 0 || pid > INT_MAX)
		return err_msg("invalid pid '%s'", pid_s);
	snprintf(path, sizeof(path), "/proc/%ld/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return err_errno(errno, NULL, "no process with pid %ld", pid);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			found = 1;
			break;
		}
	}
	fclose(f);
	if (!found)
		return err_msg("process %ld is in no cgroup v2", pid);
	if (cgroup2_mount(mnt, sizeof(mnt)))
		return err_msg("no cgroup2 hierarchy is mounted (hint: sudo ./load.sh mounts one)");
	if ((size_t)snprintf(out, len, "%s%s", mnt, strcmp(line + 3, "/") == 0 ? "" : line + 3) >= len)
		return err_msg("cgroup path of pid %ld too long", pid);
	return 0;
}

/* Where attach, detach and policy take their cgroup from (struct cgroup_args). */
const struct opt cgroup_opts[] = {
	{ .name = "cgroup", .short_name = 'c', .arg = OPT_ARG, .metavar = "DIR",
	  .offset = offsetof(struct cgroup_args, cgroup), .help = "a cgroup v2 directory" },
	{ .name = "pid", .short_name = 'p', .arg = OPT_ARG, .metavar = "PID",
	  .offset = offsetof(struct cgroup_args, pid),
	  .help = "the cgroup v2 of process PID (from /proc/PID/cgroup)" },
	{}
};

/* A cgroup v2 directory from --cgroup DIR or --pid PID, and its id. */
int resolve_cgroup(const char *dir, const char *pid, char *path, size_t len, __u64 *id)
{
	char tmp[PATH_MAX];
	struct statfs sfs;
	struct stat st;

	if (pid) {
		if (pid_cgroup_dir(pid, tmp, sizeof(tmp)))
			return -1;
		dir = tmp;
	}
	if (!dir)
		return err_msg("no cgroup given (hint: --cgroup DIR or --pid PID)");
	if (!realpath(dir, path))
		return err_errno(errno, NULL, "cgroup %s", dir);
	if (statfs(path, &sfs))
		return err_errno(errno, NULL, "cgroup %s", path);
	if (sfs.f_type == CGROUP_SUPER_MAGIC)
		return err_msg("%s is a cgroup v1 directory; sockaccel needs cgroup v2 (hint: use the cgroup2 mount, see /proc/mounts)", path);
	if (sfs.f_type != CGROUP2_SUPER_MAGIC)
		return err_msg("%s is not a cgroup v2 directory", path);
	if (stat(path, &st))
		return err_errno(errno, NULL, "cgroup %s", path);
	if (!S_ISDIR(st.st_mode))
		return err_msg("%s is not a directory", path);
	/* On cgroup2 the inode number is the kernfs id bpf sees. */
	*id = st.st_ino;
	(void)len;
	return 0;
}

static __u64 walk_id;
static char walk_found[PATH_MAX];

static int walk_cb(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
	if (type == FTW_D && (__u64)sb->st_ino == walk_id) {
		snprintf(walk_found, sizeof(walk_found), "%s", fpath);
		return 1;
	}
	return 0;
}

int cgroup_path_by_id(__u64 id, char *path, size_t len)
{
	char mnt[PATH_MAX];

	if (cgroup2_mount(mnt, sizeof(mnt)))
		return -1;
	walk_id = id;
	walk_found[0] = '\0';
	if (nftw(mnt, walk_cb, 32, FTW_PHYS | FTW_MOUNT) == 1) {
		snprintf(path, len, "%s", walk_found);
		return 0;
	}
	return -1;
}

/* An environment switch: set to "1". */
bool getenv_flag(const char *name)
{
	const char *v = getenv(name);

	return v && v[0] == '1' && !v[1];
}

/* libbpf attaches tracepoints by their ids under tracefs. */
int ensure_tracefs(void)
{
	struct statfs st;

	if (access("/sys/kernel/tracing/events/syscalls", F_OK) == 0 ||
	    access("/sys/kernel/debug/tracing/events/syscalls", F_OK) == 0)
		return 0;
	if (statfs("/sys/kernel/tracing", &st) == 0 && st.f_type == TRACEFS_MAGIC)
		return err_msg("kernel has no syscall tracepoints (hint: CONFIG_FTRACE_SYSCALLS)");
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, "mode=0700"))
		return err_errno(errno, "mount it with: mount -t tracefs tracefs /sys/kernel/tracing",
				 "cannot mount tracefs at /sys/kernel/tracing");
	if (access("/sys/kernel/tracing/events/syscalls", F_OK))
		return err_msg("kernel has no syscall tracepoints (hint: CONFIG_FTRACE_SYSCALLS)");
	info_msg("mounted tracefs at /sys/kernel/tracing");
	return 0;
}

/* "4M", "65536", "1G": bytes. */
int parse_size(const char *s, __u64 *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end)
		return -1;
	*out = v;
	return 0;
}
