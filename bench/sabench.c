// SPDX-License-Identifier: GPL-2.0
/*
 * sabench: micro-benchmarks for sockaccel. Client and server live in this
 * one process (two threads), so both ends of every connection are in the
 * same cgroup and network namespace. Every socket is nonblocking and driven
 * by epoll (level-triggered), the way event-driven servers work; sockaccel
 * leaves blocking sockets on TCP.
 *
 * Modes (one run, one JSON line on stdout):
 *   stream  --size W [--conns N]  writer thread sends W-byte messages on N
 *           connections for --seconds, reader thread reads; MB/s (1e6 B/s)
 *           and CPU seconds per GB (1e9 B) of the whole process.
 *   rr      --size S              one connection, ping-pong of S bytes;
 *           round-trip p50/p99/mean in microseconds, transactions/s.
 *   crr     connect, 64 B request, 64 B response, close, repeated;
 *           connections/s and p50/p99 of the whole cycle.
 *
 *   --transport tcp4|tcp6|unix  loopback TCP or AF_UNIX stream (abstract).
 *   --io epoll|poll|block  (rr, crr) how both ends wait: level-triggered
 *                 epoll on nonblocking sockets (default), poll() on
 *                 nonblocking sockets, or blocking sockets (listener
 *                 included) and plain send()/recv(), as netperf does.
 *   --late-nonblock  (rr, --io epoll|poll) blocking listener, each
 *                 accepted socket made nonblocking after accept()
 *                 (PostgreSQL's backends; the client connects nonblocking,
 *                 as libpq does).
 *   --cpus 0|1|2  0 no pinning; 1 both threads on one CPU; 2 client/writer
 *                 and server/reader on different CPUs (--cpu-list A,B).
 *
 * Exit 0 ok, 1 run failed (the JSON line says why), 2 usage/setup error,
 * 3 hard timeout. Every wait is bounded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

enum mode { M_STREAM, M_RR, M_CRR };
enum io { IO_EPOLL, IO_POLL, IO_BLOCK };
enum transport { T_TCP4, T_TCP6, T_UNIX };

static struct {
	enum mode mode;
	enum transport tr;
	size_t size;		/* message size; 0 = mode default */
	size_t rbuf;		/* reader buffer; 0 = max(size, 64 KiB) */
	int conns;
	int cpus;
	int cpu_a, cpu_b;
	int nodelay;
	double seconds;
	double stall;		/* no progress for this long = failure */
	enum io io;		/* rr, crr: how the ends wait */
	int late_nonblock;	/* rr: accepted sockets nonblocking after accept() */
} opt = { .mode = M_STREAM, .tr = T_TCP4, .conns = 1, .cpus = 0, .cpu_a = 0, .cpu_b = 1,
	  .nodelay = 1, .seconds = 3, .stall = 10 };

static const char *mode_names[] = { "stream", "rr", "crr" };
static const char *tr_names[] = { "tcp4", "tcp6", "unix" };
static const char *io_names[] = { "epoll", "poll", "block" };

/*
 * The listener and accepted sockets start nonblocking unless --io block
 * or --late-nonblock; the client unless --io block (libpq connects
 * nonblocking).
 */
static int sock_nb_flag(void)
{
	return opt.io == IO_BLOCK || opt.late_nonblock ? 0 : SOCK_NONBLOCK;
}

static int client_nb_flag(void)
{
	return opt.io == IO_BLOCK ? 0 : SOCK_NONBLOCK;
}


/* ------------------------------------------------------------ helpers */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static double tv_s(struct timeval tv)
{
	return tv.tv_sec + tv.tv_usec / 1e6;
}

/* Prints a failure record (one JSON line) and exits 1. */
static void fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int e = errno;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (e) {
		size_t l = strlen(msg);

		snprintf(msg + l, sizeof(msg) - l, ": %s", strerror(e));
	}
	for (i = 0; msg[i]; i++)
		if (msg[i] == '"' || msg[i] == '\\' || (unsigned char)msg[i] < 0x20)
			msg[i] = '\'';
	printf("{\"tool\":\"sabench\",\"mode\":\"%s\",\"transport\":\"%s\",\"size\":%zu,"
	       "\"conns\":%d,\"cpus\":%d,\"ok\":false,\"error\":\"%s\"}\n",
	       mode_names[opt.mode], tr_names[opt.tr], opt.size, opt.conns, opt.cpus, msg);
	fflush(stdout);
	fprintf(stderr, "sabench: %s\n", msg);
	exit(1);
}

static void on_alarm(int sig)
{
	static const char m[] = "{\"tool\":\"sabench\",\"ok\":false,\"error\":\"hard timeout\"}\n";

	(void)!write(1, m, sizeof(m) - 1);
	_exit(3);
}

static void pin_self(int role)
{
	cpu_set_t set;
	int cpu;

	if (!opt.cpus)
		return;
	cpu = (opt.cpus == 1 || role == 0) ? opt.cpu_a : opt.cpu_b;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		fail("sched_setaffinity cpu %d", cpu);
}

/* Absolute value of a "Tcp:" column of /proc/net/snmp (this netns). */
static long long snmp_tcp(const char *col)
{
	char hdr[1024], val[1024];
	FILE *f = fopen("/proc/net/snmp", "r");
	long long r = -1;

	if (!f)
		return -1;
	while (fgets(hdr, sizeof(hdr), f)) {
		char *sh, *sv, *th, *tv;
		int match;

		if (strncmp(hdr, "Tcp:", 4) || !fgets(val, sizeof(val), f))
			continue;
		th = strtok_r(hdr, " \n", &sh);
		tv = strtok_r(val, " \n", &sv);
		while (th && tv) {
			match = !strcmp(th, col);
			if (match) {
				r = atoll(tv);
				break;
			}
			th = strtok_r(NULL, " \n", &sh);
			tv = strtok_r(NULL, " \n", &sv);
		}
		break;
	}
	fclose(f);
	return r;
}

/*
 * Idle time of the whole machine in seconds (idle + iowait of all CPUs,
 * /proc/stat). With NOHZ these come from the precise idle clocks, unlike
 * user/system, which are sampled at ticks; machine busy time over a run is
 * then wall time x CPUs - idle.
 */
static double host_idle_s(void)
{
	unsigned long long v[5] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	long hz = sysconf(_SC_CLK_TCK);
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4]);
	fclose(f);
	if (n < 5 || hz <= 0)
		return -1;
	return (double)(v[3] + v[4]) / hz;
}

/* ---------------------------------------------------------- sockets */

static struct sockaddr_storage srv_addr;
static socklen_t srv_len;

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		fail("fcntl O_NONBLOCK");
}

static void tune(int fd)
{
	int one = 1;

	if (opt.tr != T_UNIX && opt.nodelay &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		fail("TCP_NODELAY");
}

static int make_listener(void)
{
	int one = 1, fd;

	memset(&srv_addr, 0, sizeof(srv_addr));
	if (opt.tr == T_UNIX) {
		struct sockaddr_un *un = (void *)&srv_addr;
		static int seq;

		un->sun_family = AF_UNIX;
		/* Abstract name: nothing on disk, private to the netns. */
		snprintf(un->sun_path + 1, sizeof(un->sun_path) - 1, "sabench-%d-%d", (int)getpid(),
			 seq++);
		srv_len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(un->sun_path + 1);
	} else if (opt.tr == T_TCP4) {
		struct sockaddr_in *a = (void *)&srv_addr;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		srv_len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&srv_addr;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		srv_len = sizeof(*a);
	}
	/*
	 * Nonblocking from the start (sockaccel checks the listener's mode),
	 * except for --io block and --late-nonblock.
	 */
	fd = socket(srv_addr.ss_family, SOCK_STREAM | sock_nb_flag() | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("socket");
	if (opt.tr != T_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (void *)&srv_addr, srv_len))
		fail("bind");
	if (listen(fd, 4096))
		fail("listen");
	if (opt.tr != T_UNIX) {
		srv_len = sizeof(srv_addr);
		if (getsockname(fd, (void *)&srv_addr, &srv_len))
			fail("getsockname");
	}
	return fd;
}

/*
 * Nonblocking connect; returns at once (may still be in progress). With
 * --io block a blocking connect, complete on return.
 */
static int start_connect(void)
{
	int fd = socket(srv_addr.ss_family, SOCK_STREAM | client_nb_flag() | SOCK_CLOEXEC, 0);
	uint64_t until = now_ns() + (uint64_t)(opt.stall * 1e9);

	if (fd < 0)
		fail("socket");
	tune(fd);
	while (connect(fd, (void *)&srv_addr, srv_len)) {
		if (errno == EINPROGRESS)
			break;
		/* AF_UNIX: listener backlog full, retry briefly. */
		if (errno == EAGAIN && now_ns() < until) {
			usleep(100);
			continue;
		}
		fail("connect");
	}
	return fd;
}

static void wait_fd(int fd, short ev, const char *what)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int n = poll(&p, 1, (int)(opt.stall * 1000));

	if (n < 0)
		fail("poll (%s)", what);
	if (n == 0) {
		errno = 0;
		fail("timed out waiting for %s", what);
	}
}

static void check_connected(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		fail("getsockopt SO_ERROR");
	if (err) {
		errno = err;
		fail("connect");
	}
}

/*
 * One established pair, client and accepted server side, both nonblocking
 * (--io block: both blocking; --late-nonblock: the server side made
 * nonblocking after accept(), as PostgreSQL's backends do).
 */
static void make_pair(int lfd, int *cfd, int *sfd)
{
	uint64_t until = now_ns() + (uint64_t)(opt.stall * 1e9);

	*cfd = start_connect();
	for (;;) {
		if (!sock_nb_flag())
			wait_fd(lfd, POLLIN, "accept");
		*sfd = accept4(lfd, NULL, NULL, sock_nb_flag() | SOCK_CLOEXEC);
		if (*sfd >= 0)
			break;
		if (errno != EAGAIN || now_ns() > until)
			fail("accept");
		wait_fd(lfd, POLLIN, "accept");
	}
	tune(*sfd);
	wait_fd(*cfd, POLLOUT, "connect");
	check_connected(*cfd);
	if (opt.late_nonblock)
		set_nonblock(*sfd);
}

/* ---------------------------------------------------------- latency */

struct lat {
	uint64_t *v;
	size_t n, cap;
	uint64_t sum;
	uint64_t count;		/* all samples, also beyond the stored cap */
};

#define LAT_MAX_STORED (16u << 20)

static void lat_add(struct lat *l, uint64_t ns)
{
	l->sum += ns;
	l->count++;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 65536;
		uint64_t *nv;

		if (nc > LAT_MAX_STORED)
			return;
		nv = realloc(l->v, nc * sizeof(*nv));
		if (!nv)
			return;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double lat_pct(struct lat *l, double p)
{
	size_t i;

	if (!l->n)
		return 0;
	i = (size_t)ceil(p / 100.0 * l->n);
	if (i > 0)
		i--;
	if (i >= l->n)
		i = l->n - 1;
	return l->v[i] / 1e3;
}

/* ---------------------------------------------------------- run state */

static pthread_barrier_t ready, go;
static uint64_t t0_ns, deadline_ns, hard_ns;
static volatile int stop_flag;

struct result {
	uint64_t bytes_tx, bytes_rx, writes, reads, ops, end_ns;
	struct lat lat;
	char err[256];
};

static struct result wr, rd;	/* role 0 (client/writer), role 1 (server/reader) */

static void set_err(struct result *r, const char *what)
{
	if (!r->err[0])
		snprintf(r->err, sizeof(r->err), "%s%s%s", what, errno ? ": " : "",
			 errno ? strerror(errno) : "");
}

static void start_line(int role)
{
	pin_self(role);
	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&go);
}

static int ep_add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int ep_mod(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* ---------------------------------------------------------- stream */

static int *cfds, *sfds;
static char *wbuf;

#define BURST 256	/* syscalls per socket per wakeup (fairness over N conns) */

static void *stream_writer(void *arg)
{
	struct epoll_event evs[128];
	size_t *off = calloc(opt.conns, sizeof(*off));
	int ep = epoll_create1(EPOLL_CLOEXEC), i, open = opt.conns;
	uint64_t last = 0, t = 0;

	if (ep < 0 || !off)
		return set_err(&wr, "epoll_create/calloc"), NULL;
	for (i = 0; i < opt.conns; i++)
		if (ep_add(ep, cfds[i], EPOLLOUT, i))
			return set_err(&wr, "epoll_ctl"), NULL;
	start_line(0);
	last = now_ns();
	while (open > 0) {
		int n = epoll_wait(ep, evs, 128, 100);

		t = now_ns();
		if (n < 0 && errno != EINTR)
			return set_err(&wr, "epoll_wait"), NULL;
		if (t >= deadline_ns)
			break;
		if (t - last > (uint64_t)(opt.stall * 1e9)) {
			errno = 0;
			return set_err(&wr, "writer stalled (no progress)"), NULL;
		}
		for (i = 0; i < n; i++) {
			int c = evs[i].data.u64, k;

			for (k = 0; k < BURST; k++) {
				ssize_t w = send(cfds[c], wbuf + off[c], opt.size - off[c], MSG_NOSIGNAL);

				if (w < 0) {
					if (errno == EAGAIN || errno == EINTR)
						break;
					return set_err(&wr, "send"), NULL;
				}
				wr.writes++;
				wr.bytes_tx += w;
				off[c] += w;
				if (off[c] == opt.size) {
					off[c] = 0;
					wr.ops++;
				}
				last = now_ns();
				if (last >= deadline_ns)
					break;
			}
		}
	}
	for (i = 0; i < opt.conns; i++)
		shutdown(cfds[i], SHUT_WR);
	wr.end_ns = now_ns();
	close(ep);
	free(off);
	return NULL;
}

static void *stream_reader(void *arg)
{
	struct epoll_event evs[128];
	size_t rlen = opt.rbuf ? opt.rbuf : (opt.size > 65536 ? opt.size : 65536);
	char *buf = malloc(rlen);
	int ep = epoll_create1(EPOLL_CLOEXEC), i, open = opt.conns;
	uint64_t last;

	if (ep < 0 || !buf)
		return set_err(&rd, "epoll_create/malloc"), NULL;
	for (i = 0; i < opt.conns; i++)
		if (ep_add(ep, sfds[i], EPOLLIN, i))
			return set_err(&rd, "epoll_ctl"), NULL;
	start_line(1);
	last = now_ns();
	while (open > 0) {
		int n = epoll_wait(ep, evs, 128, 100);
		uint64_t t = now_ns();

		if (n < 0 && errno != EINTR)
			return set_err(&rd, "epoll_wait"), NULL;
		if (t > hard_ns) {
			errno = 0;
			return set_err(&rd, "reader: EOF not seen before the hard deadline"), NULL;
		}
		if (t - last > (uint64_t)(opt.stall * 1e9)) {
			errno = 0;
			return set_err(&rd, "reader stalled (no progress)"), NULL;
		}
		for (i = 0; i < n; i++) {
			int c = evs[i].data.u64, k;

			for (k = 0; k < BURST; k++) {
				ssize_t r = recv(sfds[c], buf, rlen, 0);

				if (r < 0) {
					if (errno == EAGAIN || errno == EINTR)
						break;
					return set_err(&rd, "recv"), NULL;
				}
				rd.reads++;
				if (r == 0) {
					epoll_ctl(ep, EPOLL_CTL_DEL, sfds[c], NULL);
					open--;
					break;
				}
				rd.bytes_rx += r;
				last = now_ns();
			}
		}
	}
	rd.end_ns = now_ns();
	close(ep);
	free(buf);
	return NULL;
}

/* ---------------------------------------------------------- rr */

static int rr_cfd, rr_sfd;

static int send_all(int fd, const char *buf, size_t len, struct result *r)
{
	size_t done = 0;

	while (done < len) {
		ssize_t w = send(fd, buf + done, len - done, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = { .fd = fd, .events = POLLOUT };

				if (poll(&p, 1, (int)(opt.stall * 1000)) <= 0) {
					errno = 0;
					set_err(r, "send: no write space");
					return -1;
				}
				continue;
			}
			set_err(r, "send");
			return -1;
		}
		r->writes++;
		r->bytes_tx += w;
		done += w;
	}
	return 0;
}

/*
 * Wait until fd is readable the way --io says: epoll_wait() on ep (fd
 * registered for EPOLLIN only), poll() on fd, or not at all (blocking
 * sockets: the recv() waits). > 0 ready, 0 timed out, < 0 error.
 */
static int wait_in(int ep, int fd, int timeout_ms)
{
	struct epoll_event ev;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	switch (opt.io) {
	case IO_POLL:
		return poll(&p, 1, timeout_ms);
	case IO_BLOCK:
		return 1;
	default:
		return epoll_wait(ep, &ev, 1, timeout_ms);
	}
}

/* Read exactly len bytes from fd, waiting with wait_in(). The reply is
 * discarded: only its arrival is timed. */
static int recv_all(int ep, int fd, char *buf, size_t len, struct result *r)
{
	size_t got = 0;

	while (got < len) {
		int n = wait_in(ep, fd, (int)(opt.stall * 1000));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			errno = n < 0 ? errno : 0;
			set_err(r, n < 0 ? "epoll_wait" : "no response (stalled)");
			return -1;
		}
		while (got < len) {
			ssize_t k = recv(fd, buf, len - got, 0);

			if (k < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				set_err(r, "recv");
				return -1;
			}
			if (k == 0) {
				errno = 0;
				set_err(r, "unexpected EOF");
				return -1;
			}
			r->reads++;
			r->bytes_rx += k;
			got += k;
		}
	}
	return 0;
}

static void *rr_client(void *arg)
{
	char *buf = malloc(opt.size), *rbuf = malloc(opt.size);
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (!buf || !rbuf || ep < 0 || ep_add(ep, rr_cfd, EPOLLIN, 0))
		return set_err(&wr, "setup"), NULL;
	memset(buf, 'q', opt.size);
	start_line(0);
	while (now_ns() < deadline_ns) {
		uint64_t t = now_ns();

		if (send_all(rr_cfd, buf, opt.size, &wr))
			return NULL;
		if (recv_all(ep, rr_cfd, rbuf, opt.size, &wr))
			return NULL;
		lat_add(&wr.lat, now_ns() - t);
		wr.ops++;
	}
	wr.end_ns = now_ns();
	shutdown(rr_cfd, SHUT_WR);
	close(ep);
	free(buf);
	free(rbuf);
	return NULL;
}

static void *rr_server(void *arg)
{
	size_t rlen = opt.size > 65536 ? opt.size : 65536;
	char *buf = malloc(rlen), *resp = malloc(opt.size);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	size_t acc = 0;

	if (!buf || !resp || ep < 0 || ep_add(ep, rr_sfd, EPOLLIN, 0))
		return set_err(&rd, "setup"), NULL;
	memset(resp, 'r', opt.size);
	start_line(1);
	for (;;) {
		int n = wait_in(ep, rr_sfd, 100);

		if (n < 0 && errno != EINTR)
			return set_err(&rd, "epoll_wait"), NULL;
		if (now_ns() > hard_ns) {
			errno = 0;
			return set_err(&rd, "server: EOF not seen before the hard deadline"), NULL;
		}
		if (n <= 0)
			continue;
		for (;;) {
			ssize_t r = recv(rr_sfd, buf, rlen, 0);

			if (r < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				return set_err(&rd, "recv"), NULL;
			}
			if (r == 0)
				goto out;
			rd.reads++;
			rd.bytes_rx += r;
			acc += r;
			while (acc >= opt.size) {
				acc -= opt.size;
				if (send_all(rr_sfd, resp, opt.size, &rd))
					return NULL;
				rd.ops++;
			}
		}
	}
out:
	rd.end_ns = now_ns();
	close(ep);
	free(buf);
	free(resp);
	return NULL;
}

/* ---------------------------------------------------------- crr */

#define CRR_MSG 64
#define CRR_MAXFD 65536
#define CRR_LISTENER ((uint64_t)-1)

static int crr_lfd;

static void *crr_client(void *arg)
{
	char req[CRR_MSG], resp[CRR_MSG];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev;

	if (ep < 0)
		return set_err(&wr, "epoll_create"), NULL;
	memset(req, 'c', sizeof(req));
	start_line(0);
	while (now_ns() < deadline_ns) {
		uint64_t t = now_ns();
		int fd = start_connect(), n = 1;

		/* Writable = connected (TCP) ; AF_UNIX connects at once. */
		if (opt.io == IO_EPOLL) {
			if (ep_add(ep, fd, EPOLLOUT, 0))
				return set_err(&wr, "epoll_ctl"), NULL;
			do
				n = epoll_wait(ep, &ev, 1, (int)(opt.stall * 1000));
			while (n < 0 && errno == EINTR);
		} else if (opt.io == IO_POLL) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			do
				n = poll(&p, 1, (int)(opt.stall * 1000));
			while (n < 0 && errno == EINTR);
		}
		if (n <= 0) {
			errno = n < 0 ? errno : 0;
			return set_err(&wr, "connect did not complete"), NULL;
		}
		check_connected(fd);
		if (send_all(fd, req, sizeof(req), &wr))
			return NULL;
		if (opt.io == IO_EPOLL && ep_mod(ep, fd, EPOLLIN, 0))
			return set_err(&wr, "epoll_ctl"), NULL;
		if (recv_all(ep, fd, resp, sizeof(resp), &wr))
			return NULL;
		close(fd);	/* also leaves the epoll set */
		lat_add(&wr.lat, now_ns() - t);
		wr.ops++;
	}
	wr.end_ns = now_ns();
	stop_flag = 1;
	/* Wakes a server blocked in accept() (EINVAL); harmless for epoll. */
	if (opt.io != IO_EPOLL)
		shutdown(crr_lfd, SHUT_RDWR);
	close(ep);
	return NULL;
}

/*
 * --io poll|block: one connection at a time, as a simple server does (the
 * client is serial anyway): accept, read the request, answer, read until
 * EOF, close. poll() before every accept and read, or blocking calls.
 */
static void *crr_server_serial(void *arg)
{
	char buf[CRR_MSG * 4], resp[CRR_MSG];
	int to = (int)(opt.stall * 1000);

	memset(resp, 's', sizeof(resp));
	start_line(1);
	while (!stop_flag) {
		size_t got = 0;
		int fd, answered = 0;

		if (opt.io == IO_POLL) {
			struct pollfd p = { .fd = crr_lfd, .events = POLLIN };
			int n = poll(&p, 1, 50);

			if (n < 0 && errno != EINTR)
				return set_err(&rd, "poll"), NULL;
			if (n <= 0)
				continue;
		}
		fd = accept4(crr_lfd, NULL, NULL, sock_nb_flag() | SOCK_CLOEXEC);
		if (fd < 0) {
			if (stop_flag)
				break;
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				continue;
			return set_err(&rd, "accept"), NULL;
		}
		tune(fd);
		for (;;) {
			ssize_t r;

			if (opt.io == IO_POLL) {
				int n = wait_in(-1, fd, to);

				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					errno = n < 0 ? errno : 0;
					close(fd);
					return set_err(&rd, "server: no request/EOF (stalled)"), NULL;
				}
			}
			r = recv(fd, buf, sizeof(buf), 0);
			if (r < 0) {
				if (errno == EAGAIN || errno == EINTR)
					continue;
				if (errno == ECONNRESET)
					break;
				close(fd);
				return set_err(&rd, "recv"), NULL;
			}
			if (r == 0)	/* client closed after its response */
				break;
			rd.reads++;
			rd.bytes_rx += r;
			got += r;
			if (!answered && got >= CRR_MSG) {
				if (send_all(fd, resp, sizeof(resp), &rd)) {
					close(fd);
					return NULL;
				}
				answered = 1;
				rd.ops++;
			}
		}
		close(fd);
		if (now_ns() > hard_ns) {
			errno = 0;
			return set_err(&rd, "server: hard deadline"), NULL;
		}
	}
	rd.end_ns = now_ns();
	return NULL;
}

static void *crr_server(void *arg)
{
	static uint8_t got[CRR_MAXFD];
	char buf[CRR_MSG * 4], resp[CRR_MSG];
	struct epoll_event evs[64];
	int ep = epoll_create1(EPOLL_CLOEXEC), i;

	if (ep < 0 || ep_add(ep, crr_lfd, EPOLLIN, CRR_LISTENER))
		return set_err(&rd, "setup"), NULL;
	memset(resp, 's', sizeof(resp));
	start_line(1);
	for (;;) {
		int n = epoll_wait(ep, evs, 64, 50);

		if (n < 0 && errno != EINTR)
			return set_err(&rd, "epoll_wait"), NULL;
		if (stop_flag && n <= 0)
			break;
		if (now_ns() > hard_ns) {
			errno = 0;
			return set_err(&rd, "server: hard deadline"), NULL;
		}
		for (i = 0; i < n; i++) {
			int fd;

			if (evs[i].data.u64 == CRR_LISTENER) {
				while ((fd = accept4(crr_lfd, NULL, NULL,
						     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					if (fd >= CRR_MAXFD) {
						errno = 0;
						return set_err(&rd, "fd too large"), NULL;
					}
					tune(fd);
					got[fd] = 0;
					if (ep_add(ep, fd, EPOLLIN, fd))
						return set_err(&rd, "epoll_ctl"), NULL;
				}
				if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
					return set_err(&rd, "accept"), NULL;
				continue;
			}
			fd = evs[i].data.u64;
			for (;;) {
				ssize_t r = recv(fd, buf, sizeof(buf), 0);

				if (r < 0) {
					if (errno == EAGAIN || errno == EINTR)
						break;
					if (errno == ECONNRESET) {
						close(fd);
						break;
					}
					return set_err(&rd, "recv"), NULL;
				}
				if (r == 0) {	/* client closed after its response */
					close(fd);
					break;
				}
				rd.reads++;
				rd.bytes_rx += r;
				if (got[fd] < CRR_MSG && got[fd] + r >= CRR_MSG) {
					if (send_all(fd, resp, sizeof(resp), &rd))
						return NULL;
					rd.ops++;
				}
				got[fd] = got[fd] + r > 255 ? 255 : got[fd] + r;
			}
		}
	}
	rd.end_ns = now_ns();
	close(ep);
	return NULL;
}

/* ---------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr,
		"Usage: sabench MODE [options]\n"
		"  MODE: stream | rr | crr\n"
		"  --transport tcp4|tcp6|unix   (default tcp4)\n"
		"  --size N        message/write size (stream 16384, rr 64; crr fixed 64)\n"
		"  --conns N       parallel connections (stream only, default 1)\n"
		"  --seconds S     measured duration (default 3)\n"
		"  --cpus 0|1|2    0 no pinning, 1 both ends on one CPU, 2 on two CPUs\n"
		"  --cpu-list A,B  CPUs used by --cpus (default 0,1)\n"
		"  --rbuf N        reader buffer (default max(size, 65536))\n"
		"  --no-nodelay    leave Nagle on (default: TCP_NODELAY on every socket)\n"
		"  --io epoll|poll|block  rr, crr: epoll (default) or poll() on nonblocking\n"
		"                  sockets, or blocking sockets (listener included)\n"
		"  --late-nonblock rr: blocking listener, accepted sockets made\n"
		"                  nonblocking after accept() (PostgreSQL's backends)\n"
		"  --stall S       fail when no progress for S seconds (default 10)\n"
		"Prints one JSON line. Exit 0 ok, 1 failed run, 2 usage, 3 hard timeout.\n");
	exit(2);
}

static double parse_num(const char *s, double lo, double hi, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == '\0' || (*end && strcmp(end, "k") && strcmp(end, "K") && strcmp(end, "m") &&
			   strcmp(end, "M")))
		goto bad;
	if (*end == 'k' || *end == 'K')
		v *= 1024;
	else if (*end == 'm' || *end == 'M')
		v *= 1024 * 1024;
	if (v < lo || v > hi)
		goto bad;
	return v;
bad:
	fprintf(stderr, "sabench: bad %s '%s'\n", what, s);
	exit(2);
}

int main(int argc, char **argv)
{
	pthread_t ta, tb;
	void *(*fa)(void *), *(*fb)(void *);
	struct rusage ru0, ru1;
	uint64_t c0, c1, t_end, t_end_all;
	long long segs0, segs1;
	double idle0, idle1;
	double elapsed, cpu_s, gb;
	int i, lfd;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "stream"))
		opt.mode = M_STREAM;
	else if (!strcmp(argv[1], "rr"))
		opt.mode = M_RR;
	else if (!strcmp(argv[1], "crr"))
		opt.mode = M_CRR;
	else
		usage();
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--no-nodelay")) {
			opt.nodelay = 0;
			continue;
		}
		if (!strcmp(a, "--late-nonblock")) {
			opt.late_nonblock = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--transport")) {
			if (!strcmp(v, "tcp4") || !strcmp(v, "tcp"))
				opt.tr = T_TCP4;
			else if (!strcmp(v, "tcp6"))
				opt.tr = T_TCP6;
			else if (!strcmp(v, "unix"))
				opt.tr = T_UNIX;
			else
				usage();
		} else if (!strcmp(a, "--io")) {
			if (!strcmp(v, "epoll"))
				opt.io = IO_EPOLL;
			else if (!strcmp(v, "poll"))
				opt.io = IO_POLL;
			else if (!strcmp(v, "block"))
				opt.io = IO_BLOCK;
			else
				usage();
		} else if (!strcmp(a, "--size")) {
			opt.size = parse_num(v, 1, 64 << 20, "size");
		} else if (!strcmp(a, "--rbuf")) {
			opt.rbuf = parse_num(v, 1, 64 << 20, "rbuf");
		} else if (!strcmp(a, "--conns")) {
			opt.conns = parse_num(v, 1, 4096, "conns");
		} else if (!strcmp(a, "--seconds")) {
			opt.seconds = parse_num(v, 0.05, 3600, "seconds");
		} else if (!strcmp(a, "--stall")) {
			opt.stall = parse_num(v, 0.1, 600, "stall");
		} else if (!strcmp(a, "--cpus")) {
			opt.cpus = parse_num(v, 0, 2, "cpus");
		} else if (!strcmp(a, "--cpu-list")) {
			if (sscanf(v, "%d,%d", &opt.cpu_a, &opt.cpu_b) != 2 || opt.cpu_a < 0 ||
			    opt.cpu_b < 0 || opt.cpu_a >= CPU_SETSIZE || opt.cpu_b >= CPU_SETSIZE)
				usage();
		} else {
			usage();
		}
	}
	if (opt.mode == M_CRR)
		opt.size = CRR_MSG;
	if (!opt.size)
		opt.size = opt.mode == M_STREAM ? 16384 : 64;
	if (opt.mode != M_STREAM && opt.conns != 1) {
		fprintf(stderr, "sabench: --conns is for stream mode only\n");
		exit(2);
	}
	if (opt.mode == M_STREAM && (opt.io != IO_EPOLL || opt.late_nonblock)) {
		fprintf(stderr, "sabench: --io and --late-nonblock are for rr and crr\n");
		exit(2);
	}
	if (opt.late_nonblock && (opt.io == IO_BLOCK || opt.mode != M_RR)) {
		fprintf(stderr, "sabench: --late-nonblock is for rr with --io epoll or poll\n");
		exit(2);
	}
	if (opt.cpus == 2 && opt.cpu_a == opt.cpu_b) {
		fprintf(stderr, "sabench: --cpus 2 needs two different CPUs in --cpu-list\n");
		exit(2);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm((unsigned int)(opt.seconds + 3 * opt.stall + 30));

	lfd = make_listener();
	switch (opt.mode) {
	case M_STREAM:
		cfds = calloc(opt.conns, sizeof(int));
		sfds = calloc(opt.conns, sizeof(int));
		wbuf = malloc(opt.size);
		if (!cfds || !sfds || !wbuf)
			fail("malloc");
		memset(wbuf, 'w', opt.size);
		for (i = 0; i < opt.conns; i++)
			make_pair(lfd, &cfds[i], &sfds[i]);
		close(lfd);
		fa = stream_writer;
		fb = stream_reader;
		break;
	case M_RR:
		make_pair(lfd, &rr_cfd, &rr_sfd);
		close(lfd);
		fa = rr_client;
		fb = rr_server;
		break;
	default:
		crr_lfd = lfd;
		fa = crr_client;
		fb = opt.io == IO_EPOLL ? crr_server : crr_server_serial;
		break;
	}

	if (pthread_barrier_init(&ready, NULL, 3) || pthread_barrier_init(&go, NULL, 3))
		fail("pthread_barrier_init");
	if (pthread_create(&ta, NULL, fa, NULL) || pthread_create(&tb, NULL, fb, NULL))
		fail("pthread_create");
	pthread_barrier_wait(&ready);
	segs0 = snmp_tcp("OutSegs");
	idle0 = host_idle_s();
	getrusage(RUSAGE_SELF, &ru0);
	c0 = cpu_ns();
	t0_ns = now_ns();
	deadline_ns = t0_ns + (uint64_t)(opt.seconds * 1e9);
	hard_ns = deadline_ns + (uint64_t)(2 * opt.stall * 1e9);
	pthread_barrier_wait(&go);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	c1 = cpu_ns();
	t_end_all = now_ns();
	getrusage(RUSAGE_SELF, &ru1);
	idle1 = host_idle_s();
	segs1 = snmp_tcp("OutSegs");

	if (wr.err[0] || rd.err[0]) {
		errno = 0;
		fail("%s%s%s", wr.err, wr.err[0] && rd.err[0] ? "; " : "", rd.err);
	}
	if (opt.mode == M_STREAM && wr.bytes_tx != rd.bytes_rx) {
		errno = 0;
		fail("sent %llu bytes but received %llu", (unsigned long long)wr.bytes_tx,
		     (unsigned long long)rd.bytes_rx);
	}
	if (opt.mode == M_RR && wr.ops != rd.ops) {
		errno = 0;
		fail("client completed %llu round trips, server answered %llu",
		     (unsigned long long)wr.ops, (unsigned long long)rd.ops);
	}
	t_end = opt.mode == M_STREAM ? rd.end_ns : wr.end_ns;
	elapsed = (t_end - t0_ns) / 1e9;
	cpu_s = (c1 - c0) / 1e9;
	if (wr.lat.n)
		qsort(wr.lat.v, wr.lat.n, sizeof(uint64_t), cmp_u64);
	{
		/* Bytes moved: the stream payload, or both directions of rr/crr. */
		uint64_t moved = opt.mode == M_STREAM ? rd.bytes_rx : wr.bytes_tx + rd.bytes_tx;
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		double busy = idle0 >= 0 && idle1 >= 0 && ncpu > 0 ?
			      (t_end_all - t0_ns) / 1e9 * ncpu - (idle1 - idle0) : -1.0;

		gb = moved / 1e9;
		printf("{\"tool\":\"sabench\",\"mode\":\"%s\",\"transport\":\"%s\",\"size\":%zu,"
		       "\"conns\":%d,\"cpus\":%d,\"cpu_list\":\"%d,%d\",\"nodelay\":%s,"
		       "\"io\":\"%s\",\"late_nonblock\":%s,"
		       "\"seconds\":%.3f,\"ok\":true,\"elapsed_s\":%.6f,\"bytes\":%llu,"
		       "\"mb_per_s\":%.3f,\"writes\":%llu,\"reads\":%llu,\"ops\":%llu,"
		       "\"ops_per_s\":%.3f,\"cpu_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f,"
		       "\"cpu_s_per_gb\":%.6f,\"cpu_us_per_op\":%.6f,\"host_busy_s\":%.3f,"
		       "\"tcp_out_segs\":%lld",
		       mode_names[opt.mode], tr_names[opt.tr], opt.size, opt.conns, opt.cpus,
		       opt.cpu_a, opt.cpu_b, opt.tr == T_UNIX ? "null" : opt.nodelay ? "true" : "false",
		       io_names[opt.io], opt.late_nonblock ? "true" : "false",
		       opt.seconds, elapsed, (unsigned long long)moved, moved / 1e6 / elapsed,
		       (unsigned long long)(wr.writes + rd.writes),
		       (unsigned long long)(wr.reads + rd.reads),
		       (unsigned long long)wr.ops, wr.ops / elapsed, cpu_s,
		       tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime), tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime),
		       gb > 0 ? cpu_s / gb : 0.0, wr.ops ? cpu_s * 1e6 / wr.ops : 0.0,
		       busy < 0 && idle0 >= 0 ? 0.0 : busy,
		       segs0 >= 0 && segs1 >= 0 ? segs1 - segs0 : -1);
		if (opt.mode != M_STREAM)
			printf(",\"lat_p50_us\":%.3f,\"lat_p90_us\":%.3f,\"lat_p99_us\":%.3f,"
			       "\"lat_p999_us\":%.3f,\"lat_mean_us\":%.3f,\"lat_max_us\":%.3f",
			       lat_pct(&wr.lat, 50), lat_pct(&wr.lat, 90), lat_pct(&wr.lat, 99),
			       lat_pct(&wr.lat, 99.9),
			       wr.lat.count ? wr.lat.sum / 1e3 / wr.lat.count : 0.0,
			       wr.lat.n ? wr.lat.v[wr.lat.n - 1] / 1e3 : 0.0);
		printf("}\n");
	}
	return 0;
}
