// SPDX-License-Identifier: GPL-2.0
/*
 * samem: what stopped readers make the kernel hold. One process opens
 * --conns connections to itself (nonblocking); the servers accept and do
 * not read; the clients write --write-size bytes per send, round robin,
 * until every send would block or --seconds passed. Then it reports what
 * the machine's Slab and TCP memory grew by while the bytes sat queued,
 * and every reader drains and verifies its stream.
 * Output: "queued=N msgs=N slab_kb=N tcp_mem_kb=N verified=1"
 */
#include "common.h"
#include <poll.h>
#include <signal.h>

/* Where it was when the alarm rang: the phase, and the stream drained. */
static volatile const char *phase = "setup";
static volatile int cur_conn = -1;
static volatile uint64_t cur_got, cur_sent;

static void on_alarm(int sig)
{
	char m[160];
	int n = snprintf(m, sizeof(m), "samem: timeout in %s (connection %d: %llu of %llu bytes read)\n",
			 phase, cur_conn, (unsigned long long)cur_got, (unsigned long long)cur_sent);

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
	phase = "drain";
	for (i = 0; i < conns; i++) {
		uint64_t got = 0, t1 = now_ns();

		cur_conn = i;
		cur_sent = sent[i];
		cur_got = 0;
		shutdown(cfd[i], SHUT_WR);
		while (got < sent[i] && now_ns() - t1 < 10e9) {
			ssize_t n = recv(sfd[i], buf, 65536, 0);

			if (n > 0) {
				if (stream_check(i + 1, got, buf, n) >= 0)
					verified = 0;
				got += n;
				cur_got = got;
			} else if (n == 0) {
				break;
			} else {
				struct pollfd p = { .fd = sfd[i], .events = POLLIN };

				poll(&p, 1, 100);
			}
		}
		if (got != sent[i]) {
			fprintf(stderr, "samem: connection %d: read %llu of %llu bytes\n", i,
				(unsigned long long)got, (unsigned long long)sent[i]);
			verified = 0;
		}
		close(cfd[i]);
		close(sfd[i]);
	}
	printf("queued=%llu msgs=%llu slab_kb=%ld tcp_mem_kb=%ld verified=%d\n",
	       (unsigned long long)queued, (unsigned long long)msgs, slab1 - slab0, tm1 - tm0, verified);
	return verified ? 0 : 1;
}
