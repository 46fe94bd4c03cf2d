// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel probe, run by `sockaccel load` (and `sockaccel probe`): one tiny
 * self-test per known tcp_bpf behaviour, on a loopback pair this process
 * owns, inserted from user space into a private two-slot sockmap. The
 * result picks the safe mode (sa_config.kernel_flags).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sock_diag.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "common.h"
#include "names.h"
#include "probe.skel.h"

struct pair {
	int lfd, cfd, sfd;
	__u16 port;
};

static void pair_close(struct pair *p)
{
	if (p->cfd >= 0)
		close(p->cfd);
	if (p->sfd >= 0)
		close(p->sfd);
	if (p->lfd >= 0)
		close(p->lfd);
}

static int pair_open(struct pair *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	p->cfd = p->sfd = -1;
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->lfd < 0 || bind(p->lfd, (void *)&a, sizeof(a)) || listen(p->lfd, 1) ||
	    getsockname(p->lfd, (void *)&a, &al))
		return -1;
	p->port = ntohs(a.sin_port);
	p->cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->cfd < 0 || connect(p->cfd, (void *)&a, sizeof(a)))
		return -1;
	p->sfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
	return p->sfd < 0 ? -1 : 0;
}

struct reader {
	int fd;
	ssize_t ret;
	int err;
	volatile pid_t tid;
};

static void *blocking_reader(void *arg)
{
	struct reader *r = arg;
	char c;

	r->tid = gettid();
	r->ret = recv(r->fd, &c, 1, 0);
	r->err = errno;
	return NULL;
}

/* Is the thread asleep ('S' in /proc/self/task/TID/stat)? */
static bool thread_sleeping(pid_t tid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	p = strrchr(buf, ')');	/* comm may hold spaces and parentheses */
	return p && p[1] == ' ' && p[2] == 'S';
}

/*
 * A blocking reader waits on an empty socket; the socket's own FIN is then
 * acked (sk_state_change wakes the reader without data), then one byte is
 * redirected to it. Plain TCP returns the byte; tcp_bpf_recvmsg() in
 * net/ipv4/tcp_bpf.c returns -EAGAIN at the first wakeup.
 */
static bool probe_recv_waits(struct pair *p)
{
	struct timeval tv = { .tv_sec = 2 };
	struct reader r = { .fd = p->sfd, .ret = -2 };
	struct timespec d = { 0, 100 * 1000 * 1000 }, poll = { 0, 2 * 1000 * 1000 };
	bool asleep = false;
	pthread_t t;
	int i;

	setsockopt(p->sfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (pthread_create(&t, NULL, blocking_reader, &r))
		return false;
	/*
	 * The wakeup must find the reader asleep in recv(), or the probe
	 * tests nothing: confirm it (up to 1 s) rather than assume it.
	 */
	for (i = 0; i < 500 && !asleep; i++) {
		nanosleep(&poll, NULL);
		asleep = r.tid && thread_sleeping(r.tid);
	}
	nanosleep(&d, NULL);
	shutdown(p->sfd, SHUT_WR);
	nanosleep(&d, NULL);
	send(p->cfd, "x", 1, MSG_NOSIGNAL);
	pthread_join(t, NULL);
	return asleep && r.ret == 1;	/* not confirmed: the safe answer */
}

/*
 * Send len bytes from the client end, then FIONREAD on the server end
 * (tcp_bpf_ioctl()), waiting briefly for them; drains what arrived.
 * Returns whether FIONREAD counted them all.
 */
static bool fionread_counts(struct pair *p, size_t len)
{
	char buf[128] = { 0 };
	int n = -1, i;

	if (len > sizeof(buf) || send(p->cfd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		return false;
	for (i = 0; i < 50; i++) {
		struct timespec d = { 0, 2 * 1000 * 1000 };

		if (ioctl(p->sfd, FIONREAD, &n) == 0 && n == (int)len)
			break;
		nanosleep(&d, NULL);
	}
	for (i = 0; i < 50 && recv(p->sfd, buf, sizeof(buf), MSG_DONTWAIT) <= 0; i++) {
		struct timespec d = { 0, 2 * 1000 * 1000 };

		nanosleep(&d, NULL);
	}
	return n == (int)len;
}

/*
 * Redirect bytes to the server end, then splice() from it into a pipe
 * (nonblocking). tcp_splice_read() reads only sk_receive_queue on every
 * kernel seen so far; a kernel that serves the psock there needs no guard.
 * Drains with recv() whatever splice() did not take.
 */
static bool splice_reads_redirected(struct pair *p)
{
	char buf[64] = "sockaccel-probe";
	int pipefd[2], i;
	ssize_t n = -1;

	int fl = fcntl(p->sfd, F_GETFL);

	/* tcp_splice_read() waits on a blocking socket, whatever the flags. */
	if (fl < 0 || fcntl(p->sfd, F_SETFL, fl | O_NONBLOCK) ||
	    pipe2(pipefd, O_CLOEXEC | O_NONBLOCK))
		return false;
	if (send(p->cfd, buf, 16, MSG_NOSIGNAL) == 16) {
		for (i = 0; i < 50; i++) {
			struct timespec d = { 0, 2 * 1000 * 1000 };

			n = splice(p->sfd, NULL, pipefd[1], NULL, 16, SPLICE_F_NONBLOCK);
			if (n > 0 || (n < 0 && errno != EAGAIN))
				break;
			nanosleep(&d, NULL);
		}
	}
	close(pipefd[0]);
	close(pipefd[1]);
	for (i = 0; i < 50 && recv(p->sfd, buf, sizeof(buf), MSG_DONTWAIT) <= 0; i++) {
		struct timespec d = { 0, 2 * 1000 * 1000 };

		nanosleep(&d, NULL);
	}
	fcntl(p->sfd, F_SETFL, fl);
	return n == 16;
}

/*
 * Redirect bytes to the server end and read its SO_MEMINFO: does
 * sk_rmem_alloc count unread redirected bytes (bpf_tcp_ingress() charging
 * them, 6.1.123+ and 6.12.8+)? Where psock->msg_tot_len is absent (6.1)
 * that is how the sk_msg program measures a receiver's backlog.
 */
static bool rmem_counts_redirected(struct pair *p)
{
	__u32 mem[SK_MEMINFO_VARS] = { 0 };
	socklen_t len = sizeof(mem);
	char buf[4096] = { 0 };
	int i, n = 0;

	if (send(p->cfd, buf, sizeof(buf), MSG_NOSIGNAL) != sizeof(buf))
		return false;
	for (i = 0; i < 50; i++) {
		struct timespec d = { 0, 2 * 1000 * 1000 };

		len = sizeof(mem);
		if (getsockopt(p->sfd, SOL_SOCKET, SO_MEMINFO, mem, &len) == 0 &&
		    mem[SK_MEMINFO_RMEM_ALLOC] >= sizeof(buf))
			break;
		nanosleep(&d, NULL);
	}
	for (i = 0; i < 50 && n < (int)sizeof(buf); i++) {
		ssize_t r = recv(p->sfd, buf, sizeof(buf), MSG_DONTWAIT);
		struct timespec d = { 0, 2 * 1000 * 1000 };

		if (r > 0)
			n += r;
		else
			nanosleep(&d, NULL);
	}
	return mem[SK_MEMINFO_RMEM_ALLOC] >= sizeof(buf);
}

int run_kernel_probe(__u32 *flags, bool report)
{
	struct sockaccel_probe *skel = NULL;
	struct pair p = { -1, -1, -1, 0 };
	__u32 zero = 0, one = 1;
	__u64 cfd, sfd;		/* a sockmap with 8-byte values takes u64 fds */
	int link = -1, ret = -1, map;
	bool fion = false, fion_stack = false, waits = false, splice_ok = false, rmem = false;
	bool attached = false;

	*flags = 0;
	if (pair_open(&p)) {
		err_errno(errno, NULL, "probe: cannot open a loopback pair");
		goto out;
	}
	skel = sockaccel_probe__open();
	if (!skel)
		goto out;
	skel->rodata->server_port = p.port;
	if (sockaccel_probe__load(skel)) {
		err_errno(errno, "run with -v for the verifier log", "probe: cannot load");
		goto out;
	}
	map = bpf_map__fd(skel->maps.probe_socks);
	/* A sockmap link (6.10+), or the older attachment to the map. */
	link = bpf_link_create(bpf_program__fd(skel->progs.sockaccel_probe), map,
			       BPF_SK_MSG_VERDICT, NULL);
	if (link < 0) {
		if (bpf_prog_attach(bpf_program__fd(skel->progs.sockaccel_probe), map,
				    BPF_SK_MSG_VERDICT, 0)) {
			err_errno(errno, NULL, "probe: cannot attach");
			goto out;
		}
		attached = true;
	}
	cfd = p.cfd;
	sfd = p.sfd;
	if (bpf_map_update_elem(map, &zero, &cfd, BPF_ANY) ||
	    bpf_map_update_elem(map, &one, &sfd, BPF_ANY)) {
		err_errno(errno, NULL, "probe: cannot insert sockets");
		goto out;
	}
	/* 100 bytes are redirected; the probe program passes 7-byte messages. */
	fion = fionread_counts(&p, 100);
	fion_stack = fionread_counts(&p, 7);
	splice_ok = splice_reads_redirected(&p);
	rmem = rmem_counts_redirected(&p);
	waits = probe_recv_waits(&p);
	if (fion)
		*flags |= SA_KF_FIONREAD;
	if (fion_stack)
		*flags |= SA_KF_FIONREAD_STACK;
	if (waits)
		*flags |= SA_KF_RECV_WAITS_SAFELY;
	if (splice_ok)
		*flags |= SA_KF_SPLICE_READS_PSOCK;
	if (rmem)
		*flags |= SA_KF_RMEM_COUNTS_REDIRECTED;
	ret = 0;
out:
	pair_close(&p);
	if (link >= 0)
		close(link);
	if (attached)
		bpf_prog_detach2(bpf_program__fd(skel->progs.sockaccel_probe),
				 bpf_map__fd(skel->maps.probe_socks), BPF_SK_MSG_VERDICT);
	sockaccel_probe__destroy(skel);
	if (report && ret == 0) {
		struct json w;

		json_init(&w, stdout);
		if (opt_json)
			kernel_flags_json(&w, *flags);
		else
			kernel_flags_describe(*flags, stdout);
	}
	return ret;
}

static void usage_probe(void)
{
	printf("Usage: sockaccel [-j] probe\n\n"
	       "Run the kernel self-tests that `load` runs and print what they found,\n"
	       "without loading anything. Uses one loopback connection of its own.\n");
}

static int cmd_probe(int argc, char **argv)
{
	__u32 flags;
	int rc;

	rc = opts_parse(&probe_command, argc, argv, NULL, NULL);
	if (rc != OPTS_OK)
		return opts_exit(rc);
	if (require_caps())
		return 1;
	return run_kernel_probe(&flags, true) ? 1 : 0;
}

const struct command probe_command = {
	.name = "probe",
	.summary = "run the kernel self-tests and print the findings",
	.run = cmd_probe,
	.usage = usage_probe,
};
