// SPDX-License-Identifier: GPL-2.0
/*
 * sastall: a stopped reader. One process, both ends, nonblocking. The
 * writer writes a deterministic stream for --write-seconds while the reader
 * does not read; it prints how many bytes the kernel accepted (what a
 * sender can queue against a stopped reader). Then the reader drains and
 * verifies every byte; it prints how long the drain took.
 * Output: "queued=N received=N drain_ms=N verified=1"
 */
#include "common.h"
#include <poll.h>
#include <signal.h>

static void on_alarm(int sig)
{
	static const char m[] = "sastall: timeout\n";

	(void)!write(2, m, sizeof(m) - 1);
	_exit(3);
}

int main(int argc, char **argv)
{
	const char *addr = argc > 1 ? argv[1] : "127.0.0.1:0";
	double wsec = argc > 2 ? atof(argv[2]) : 3;
	struct sockaddr_storage ss;
	socklen_t len;
	int lfd, cfd, sfd;
	uint8_t buf[65536];
	uint64_t queued = 0, received = 0, t0, t1, td;

	signal(SIGALRM, on_alarm);
	alarm(120);
	if (parse_addr(addr, &ss, &len))
		die("bad address");
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0 || bind(lfd, (void *)&ss, len) || listen(lfd, 1))
		die("listen");
	len = sizeof(ss);
	getsockname(lfd, (void *)&ss, &len);
	cfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (connect(cfd, (void *)&ss, len) && errno != EINPROGRESS)
		die("connect");
	for (;;) {
		sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
		if (sfd >= 0)
			break;
		if (errno != EAGAIN)
			die("accept");
		usleep(1000);
	}
	t0 = now_ns();
	while (now_ns() - t0 < (uint64_t)(wsec * 1e9)) {
		ssize_t w;

		stream_fill(7, queued, buf, sizeof(buf));
		w = send(cfd, buf, sizeof(buf), MSG_NOSIGNAL);
		if (w > 0) {
			queued += w;
		} else if (errno == EAGAIN) {
			struct pollfd p = { cfd, POLLOUT, 0 };

			poll(&p, 1, 10);
		} else {
			die("send");
		}
	}
	shutdown(cfd, SHUT_WR);
	t1 = now_ns();
	for (;;) {
		ssize_t n = recv(sfd, buf, sizeof(buf), 0);

		if (n > 0) {
			if (stream_check(7, received, buf, n) >= 0) {
				printf("queued=%llu received=%llu verified=0 mismatch\n",
				       (unsigned long long)queued, (unsigned long long)received);
				return 1;
			}
			received += n;
			continue;
		}
		if (n == 0)
			break;
		if (errno != EAGAIN)
			die("recv");
		{
			struct pollfd p = { sfd, POLLIN, 0 };

			poll(&p, 1, 1000);
		}
	}
	td = now_ns() - t1;
	printf("queued=%llu received=%llu drain_ms=%llu verified=%d\n", (unsigned long long)queued,
	       (unsigned long long)received, (unsigned long long)(td / 1000000),
	       received == queued);
	return received == queued ? 0 : 1;
}
