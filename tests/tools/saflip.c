// SPDX-License-Identifier: GPL-2.0
/*
 * saflip: a client that connects nonblocking (so sockaccel inserts it) and
 * then switches to blocking I/O, like connect-with-timeout code does. It
 * sends a request, half-closes, and blocks in recv() while a signal with
 * SA_RESTART arrives and its own FIN is acked: both wake the reader
 * without data. Plain TCP restarts the wait and returns the reply; the
 * tcp_bpf recvmsg would return EAGAIN. The server (a nonblocking,
 * event-driven peer) replies after 300 ms.
 * With --banner the server speaks first and the client reads that banner
 * while still nonblocking, so bytes were redirected to it before it turned
 * blocking (it can then only leave the sockhash by the beacon protocol).
 * Output: "recv=<n> errno=<name> reply_ok=<0|1>"; exit 0 when the reply
 * arrived intact.
 */
#include "common.h"
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

static void on_sig(int sig)
{
}

static int banner;

static int server(int lfd)
{
	char req[64];
	int fd, n = 0;
	struct pollfd p;

	for (;;) {
		p = (struct pollfd){ lfd, POLLIN, 0 };
		poll(&p, 1, 5000);
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
		if (fd >= 0)
			break;
		if (errno != EAGAIN)
			return 2;
	}
	if (banner && send(fd, "banner-012345678", 16, MSG_NOSIGNAL) != 16)
		return 2;
	while (n < 16) {
		ssize_t r;

		p = (struct pollfd){ fd, POLLIN, 0 };
		poll(&p, 1, 5000);
		r = recv(fd, req + n, sizeof(req) - n, 0);
		if (r <= 0 && errno != EAGAIN)
			return 2;
		if (r > 0)
			n += r;
	}
	usleep(300 * 1000);
	if (send(fd, "reply-0123456789", 16, MSG_NOSIGNAL) != 16)
		return 2;
	usleep(200 * 1000);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	struct sigaction sa = { .sa_handler = on_sig, .sa_flags = SA_RESTART };
	socklen_t len;
	struct pollfd p;
	char buf[64];
	ssize_t n;
	int lfd, fd, status, e;
	pid_t pid;

	if (argc > 2 && !strcmp(argv[2], "--banner"))
		banner = 1;
	if (parse_addr(argc > 1 ? argv[1] : "127.0.0.1:0", &ss, &len))
		die("bad address");
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0 || bind(lfd, (void *)&ss, len) || listen(lfd, 4))
		die("listen");
	len = sizeof(ss);
	getsockname(lfd, (void *)&ss, &len);
	pid = fork();
	if (pid == 0)
		_exit(server(lfd));
	close(lfd);

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (connect(fd, (void *)&ss, len) && errno != EINPROGRESS)
		die("connect");
	p = (struct pollfd){ fd, POLLOUT, 0 };
	poll(&p, 1, 5000);
	if (banner) {
		int got = 0;

		while (got < 16) {
			p = (struct pollfd){ fd, POLLIN, 0 };
			poll(&p, 1, 5000);
			n = recv(fd, buf + got, 16 - got, 0);
			if (n <= 0 && errno != EAGAIN)
				die("banner");
			if (n > 0)
				got += n;
		}
		if (memcmp(buf, "banner-012345678", 16))
			die("bad banner");
	}
	set_nonblock(fd, 0);	/* from here on: a blocking program */

	sigaction(SIGALRM, &sa, NULL);
	if (send(fd, "request-01234567", 16, 0) != 16)
		die("send");
	shutdown(fd, SHUT_WR);
	ualarm(100 * 1000, 0);
	n = recv(fd, buf, sizeof(buf), MSG_WAITALL);
	e = n < 0 ? errno : 0;
	waitpid(pid, &status, 0);
	printf("recv=%zd errno=%s reply_ok=%d\n", n, e ? strerrorname_np(e) : "0",
	       n == 16 && !memcmp(buf, "reply-0123456789", 16));
	return n == 16 && !memcmp(buf, "reply-0123456789", 16) ? 0 : 1;
}
