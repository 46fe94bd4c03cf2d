// SPDX-License-Identifier: GPL-2.0
/*
 * samem: what stopped readers make the kernel hold. One process opens
 * --conns connections to itself (nonblocking); the servers accept and do
 * not read; the clients write --write-size bytes per send, round robin,
 * until every send would block or --seconds passed. Then it reports what
 * the machine's Slab and TCP memory grew by while the bytes sat queued,
 * and every reader drains and verifies its stream.
 * Output: "queued=N msgs=N slab_kb=N tcp_mem_kb=N rmem0=N rcvbuf0=N drain_max_ms=N verified=1"
 */
#include "common.h"
#include <poll.h>
#include <linux/sock_diag.h>
#include <signal.h>

/* Where it was when the alarm rang. */
static volatile const char *phase = "setup";
#define DRAIN_NS	(60 * 1000000000ull)

static void on_alarm(int sig)
{
	char m[80];
	int n = snprintf(m, sizeof(m), "samem: timeout in %s\n", phase);

	(void)!write(2, m, n);
	_exit(3);
}

static long meminfo_kb(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			v = atol(line + strlen(key) + 1);
	if (f)
		fclose(f);
	return v;
}

/* TCP's "mem" in /proc/net/sockstat, pages: tcp_memory_allocated. */
static long tcp_mem_kb(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/net/sockstat", "re");

	while (f && fgets(line, sizeof(line), f)) {
		char *m = strstr(line, " mem ");

		if (!strncmp(line, "TCP:", 4) && m)
			v = atol(m + 5) * (sysconf(_SC_PAGESIZE) / 1024);
	}
	if (f)
		fclose(f);
	return v;
}

int main(int argc, char **argv)
{
	int conns = 200, i, lfd, one = 1;
	size_t wsize = 1;
	double secs = 3;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	static int cfd[4096], sfd[4096];
	static uint64_t sent[4096];
	uint8_t *buf;
	uint64_t queued = 0, msgs = 0, t0;
	long slab0, slab1, tm0, tm1;
	int verified = 1;
	uint64_t drain_max_ns = 0;
	static uint64_t got[4096];
	static char done[4096];
	__u32 mi[SK_MEMINFO_VARS] = { 0 };
	socklen_t ml = sizeof(mi);
	int left;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--conns"))
			conns = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--write-size"))
			wsize = strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--seconds"))
			secs = atof(argv[i + 1]);
		else
			die("usage: samem [--conns N] [--write-size B] [--seconds S]");
	}
	if (conns < 1 || conns > 4096 || wsize < 1 || wsize > (1u << 20))
		die("samem: bad arguments");
	signal(SIGALRM, on_alarm);
	alarm((unsigned int)secs + 120);
	buf = malloc(wsize > 65536 ? wsize : 65536);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (void *)&a, sizeof(a)) || listen(lfd, 4096) || getsockname(lfd, (void *)&a, &al))
		die("samem: listen");
	set_nonblock(lfd, 1);
	for (i = 0; i < conns; i++) {
		struct pollfd p = { .events = POLLIN };

		cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(cfd[i], (void *)&a, sizeof(a)) && errno != EINPROGRESS)
			die("samem: connect");
		p.fd = lfd;
		poll(&p, 1, 5000);
		sfd[i] = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
		if (sfd[i] < 0)
			die("samem: accept");
	}
	usleep(100 * 1000);
	phase = "fill";
	slab0 = meminfo_kb("Slab");
	tm0 = tcp_mem_kb();
	t0 = now_ns();
	for (;;) {
		int progress = 0;

		for (i = 0; i < conns; i++) {
			ssize_t n;

			stream_fill(i + 1, sent[i], buf, wsize);
			n = send(cfd[i], buf, wsize, MSG_NOSIGNAL);
			if (n > 0) {
				sent[i] += n;
				queued += n;
				msgs++;
				progress = 1;
			}
		}
		if (!progress || now_ns() - t0 > secs * 1e9)
			break;
	}
	usleep(200 * 1000);
	slab1 = meminfo_kb("Slab");
	tm1 = tcp_mem_kb();
	/* A reader's receive memory against its buffer: where redirected
	 * bytes count in sk_rmem_alloc and sk_rcvbuf does not grow with
	 * them, TCP drops what follows them (row 16a). */
	getsockopt(sfd[0], SOL_SOCKET, SO_MEMINFO, mi, &ml);
	phase = "drain";
	/*
	 * All readers at once, within one deadline: a stream whose tail went
	 * through TCP may wait for a retransmission (kernel-limitations.md,
	 * row 16a), and those waits must not add up.
	 */
	t0 = now_ns();
	for (i = 0; i < conns; i++)
		shutdown(cfd[i], SHUT_WR);
	for (left = conns; left > 0 && now_ns() - t0 < DRAIN_NS;) {
		static struct pollfd p[4096];
		int np = 0, progress = 0;

		for (i = 0; i < conns; i++) {
			ssize_t n;

			if (done[i])
				continue;
			n = recv(sfd[i], buf, 65536, 0);
			if (n > 0) {
				if (stream_check(i + 1, got[i], buf, n) >= 0)
					verified = 0;
				got[i] += n;
				progress = 1;
			}
			if (n == 0 || got[i] >= sent[i]) {
				done[i] = 1;
				left--;
				if (now_ns() - t0 > drain_max_ns)
					drain_max_ns = now_ns() - t0;
			} else if (n < 0) {
				p[np].fd = sfd[i];
				p[np++].events = POLLIN;
			}
		}
		if (!progress && np)
			poll(p, np, 100);
	}
	for (i = 0; i < conns; i++) {
		if (got[i] != sent[i]) {
			fprintf(stderr, "samem: connection %d: read %llu of %llu bytes in %.0f s\n", i,
				(unsigned long long)got[i], (unsigned long long)sent[i], DRAIN_NS / 1e9);
			verified = 0;
		}
		close(cfd[i]);
		close(sfd[i]);
	}
	printf("queued=%llu msgs=%llu slab_kb=%ld tcp_mem_kb=%ld rmem0=%u rcvbuf0=%u drain_max_ms=%llu verified=%d\n",
	       (unsigned long long)queued, (unsigned long long)msgs, slab1 - slab0, tm1 - tm0,
	       mi[SK_MEMINFO_RMEM_ALLOC], mi[SK_MEMINFO_RCVBUF],
	       (unsigned long long)(drain_max_ns / 1000000), verified);
	return verified ? 0 : 1;
}
