// SPDX-License-Identifier: GPL-2.0
/*
 * sacompat: application-visible TCP semantics, one named case at a time.
 *
 *   sacompat list                      cases: NAME CLASS TIMEOUT DESCRIPTION
 *   sacompat run CASE [--family 4|6|mapped] [--port P] [--quick]
 *
 * Each case opens both ends itself (threads of this process, so both ends
 * are in whatever cgroup and network namespace the runner chose), talks
 * over loopback, and prints exactly one line
 *
 *   outcome: key=value key=value ...
 *
 * followed by "stats: app_bytes_sent=N" (payload bytes the application
 * handed to sockets; for the runner's redirected share, not compared).
 * describing what the application observed: syscall results ("-1/EAGAIN"
 * for failures), byte counts, poll masks, whether every byte matched its
 * PRNG stream. Nothing timing-dependent goes into that line: the same line
 * with and without sockaccel means the acceleration was invisible. Every
 * case is bounded by alarm(); a timeout prints "outcome: TIMEOUT ..." with
 * what was observed so far. Exit 0 when the case ran (whatever it saw),
 * 2 on a setup error, 3 on timeout.
 *
 * Classes (for the runner, tests/test_compat.sh):
 *   nb      nonblocking/event-driven: the accelerated run must redirect
 *   block   blocking sockets: never inserted by design, ratio only reported
 *   policy  nonblocking, but the product's policy keeps (part of) the bytes
 *           on TCP (SO_RCVLOWAT reader, mode switch, TFO SYN data)
 *   learned the case uses a socket in a way the fast path cannot serve
 *           (splice, io_uring, zerocopy receive, MSG_OOB, receive options):
 *           its executable is learned and stays on TCP, so the runner gives
 *           each such case a fresh copy of this program (the guard learns
 *           per file), on probation like any new program
 *   hatch   cannot be made identical on this kernel: accelerated run uses
 *           the documented escape hatch (policy exclude --local-port)
 */
#include "common.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <linux/io_uring.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <linux/tls.h>

/*
 * Every payload byte the application hands to a socket (successful send,
 * sendto, sendmsg, writev, sendfile, splice into a socket) is counted, so
 * the runner can compare bytes_redirected with what was really sent:
 * bytes of a socket that left the sockhash never reach sk_msg, so
 * bytes_passed alone would overstate the redirected share. Cases send
 * through sa_send(), sa_sendto(), sa_sendmsg(), sa_writev() and
 * sa_sendfile() (splice() into a socket through count_sent()), never the
 * libc calls directly.
 */
static uint64_t g_app_sent;

static ssize_t count_sent(ssize_t n)
{
	if (n > 0)
		__atomic_add_fetch(&g_app_sent, (uint64_t)n, __ATOMIC_RELAXED);
	return n;
}

static ssize_t sa_send(int fd, const void *b, size_t n, int fl)
{
	return count_sent(send(fd, b, n, fl));
}

static ssize_t sa_sendto(int fd, const void *b, size_t n, int fl, const struct sockaddr *a,
			 socklen_t al)
{
	return count_sent(sendto(fd, b, n, fl, a, al));
}

static ssize_t sa_sendmsg(int fd, const struct msghdr *m, int fl)
{
	return count_sent(sendmsg(fd, m, fl));
}

static ssize_t sa_writev(int fd, const struct iovec *v, int cnt)
{
	return count_sent(writev(fd, v, cnt));
}

static ssize_t sa_sendfile(int out, int in, off_t *off, size_t n)
{
	return count_sent(sendfile(out, in, off, n));
}

#define SETTLE_MS	150	/* loopback delivery, delayed ACKs, Nagle: all done */
#define IO_WAIT_MS	10000	/* longest wait for one readiness event */

static int g_family = 4;	/* 4, 6, or 'm' (v6 client to ::ffff:127.0.0.1) */
static int g_port;		/* listening port, 0 = ephemeral */
static int g_quick;		/* smaller stress sizes (development) */
static struct sockaddr_storage g_srv;	/* what clients connect to */
static socklen_t g_srvlen;
static const char *g_case = "?";
static int g_nb;		/* the running case's variant */

static int nb_of_case(void)
{
	return g_nb;
}

/* ------------------------------------------------------------ outcome */

struct obuf {
	char s[8192];
	size_t n;
};

static struct obuf OUT;

static void ob_add(struct obuf *o, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (o->n + 2 >= sizeof(o->s))
		return;
	if (o->n)
		o->s[o->n++] = ' ';
	va_start(ap, fmt);
	k = vsnprintf(o->s + o->n, sizeof(o->s) - o->n, fmt, ap);
	va_end(ap);
	if (k > 0)
		o->n += (size_t)k < sizeof(o->s) - o->n ? (size_t)k : sizeof(o->s) - o->n - 1;
}

#define o(...) ob_add(&OUT, __VA_ARGS__)

static const char *ename(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

/* "key=N" or "key=-1/ENAME"; call right after the syscall (errno). */
static void ob_ret(struct obuf *ob, const char *key, long r)
{
	int e = errno;

	if (r < 0)
		ob_add(ob, "%s=%ld/%s", key, r, ename(e));
	else
		ob_add(ob, "%s=%ld", key, r);
	errno = e;
}

#define oret(k, r) ob_ret(&OUT, k, r)

/* A result stored earlier, with its errno. */
static void oret_e(const char *key, long r, int err)
{
	if (r < 0)
		o("%s=%ld/%s", key, r, ename(err));
	else
		o("%s=%ld", key, r);
}

static void on_alarm(int sig)
{
	char m[9000];
	int n = snprintf(m, sizeof(m), "outcome: TIMEOUT case=%s %.*s\n", g_case,
			 (int)OUT.n, OUT.s);

	(void)!write(1, m, n > 0 && n < (int)sizeof(m) ? n : 0);
	_exit(3);
}

static void fatal(const char *what)
{
	printf("outcome: ERROR case=%s %s: %s\n", g_case, what, strerror(errno));
	fflush(stdout);
	exit(2);
}

static void msleep(int ms)
{
	struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&d, &d) && errno == EINTR)
		;
}

static void settle(void)
{
	msleep(SETTLE_MS);
}

static uint64_t ms_since(uint64_t t0)
{
	return (now_ns() - t0) / 1000000;
}

/* Poll mask as symbols: what poll() reports for IN|PRI|OUT|RDHUP. */
static const char *maskstr(int m, char *buf)
{
	static const struct { int bit; const char *n; } bits[] = {
		{ POLLIN, "IN" }, { POLLPRI, "PRI" }, { POLLOUT, "OUT" },
		{ POLLERR, "ERR" }, { POLLHUP, "HUP" }, { POLLRDHUP, "RDHUP" },
	};
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (m & bits[i].bit) {
			if (buf[0])
				strcat(buf, "|");
			strcat(buf, bits[i].n);
		}
	if (!buf[0])
		strcpy(buf, "none");
	return buf;
}

static int pmask(int fd)
{
	struct pollfd p = { fd, POLLIN | POLLPRI | POLLOUT | POLLRDHUP, 0 };

	return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

/* Level-triggered epoll view of the same socket (must agree with poll). */
static int emask(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP };
	int ep = epoll_create1(EPOLL_CLOEXEC), m = 0;

	if (ep < 0)
		fatal("epoll_create1");
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0 && epoll_wait(ep, &ev, 1, 0) == 1)
		m = ev.events;
	close(ep);
	return m;
}

static void omask(const char *key, int fd)
{
	char a[64], b[64];
	int p = pmask(fd), e = emask(fd);

	if ((p & ~(POLLRDNORM | POLLWRNORM)) == (e & ~(EPOLLRDNORM | EPOLLWRNORM)))
		o("%s=%s", key, maskstr(p, a));
	else
		o("%s=poll:%s/epoll:%s", key, maskstr(p, a), maskstr(e, b));
}

static int wait_ev(int fd, short ev, int ms)
{
	struct pollfd p = { fd, ev, 0 };

	return poll(&p, 1, ms) == 1 ? p.revents : 0;
}

static int ioctl_int(int fd, unsigned long req)
{
	int v = -1;

	if (ioctl(fd, req, &v) < 0)
		return -1000 - errno;
	return v;
}

static void oioctl(const char *key, int fd, unsigned long req)
{
	int v = ioctl_int(fd, req);

	if (v <= -1000)
		o("%s=-1/%s", key, ename(-1000 - v));
	else
		o("%s=%d", key, v);
}

static int getint(int fd, int level, int opt)
{
	int v = -1;
	socklen_t l = sizeof(v);

	if (getsockopt(fd, level, opt, &v, &l) < 0)
		return -1000 - errno;
	return v;
}

static int setint(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v));
}

/* Short strings go into the outcome as they are (only [A-Za-z0-9!]). */
static void ostr(const char *key, long r, const char *buf)
{
	if (r < 0) {
		oret(key, r);
		return;
	}
	o("%s=%ld:%.*s", key, r, (int)(r > 40 ? 40 : r), buf);
}

/* ------------------------------------------------------------ sockets */

static void set_target(const struct sockaddr_storage *lss)
{
	int port = sockaddr_port(lss);

	memset(&g_srv, 0, sizeof(g_srv));
	if (g_family == 4) {
		struct sockaddr_in *a = (void *)&g_srv;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		g_srvlen = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&g_srv;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		inet_pton(AF_INET6, g_family == 6 ? "::1" : "::ffff:127.0.0.1", &a->sin6_addr);
		g_srvlen = sizeof(*a);
	}
}

/* A listener on the family's loopback address; TFO queue if tfo > 0. */
static int mk_listener_opt(int nb, int tfo)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (g_family == 6) {
		struct sockaddr_in6 *a = (void *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(g_port);
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (void *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(g_port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nb ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		fatal("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (void *)&ss, len))
		fatal("bind");
	if (tfo > 0 && setint(fd, IPPROTO_TCP, TCP_FASTOPEN, tfo))
		fatal("setsockopt TCP_FASTOPEN");
	if (listen(fd, 4096))
		fatal("listen");
	len = sizeof(ss);
	getsockname(fd, (void *)&ss, &len);
	set_target(&ss);
	return fd;
}

static int mk_listener(int nb)
{
	return mk_listener_opt(nb, 0);
}

static int mk_socket(int nb)
{
	int fd = socket(g_srv.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nb ? SOCK_NONBLOCK : 0), 0);

	if (fd < 0)
		fatal("socket");
	return fd;
}

/* Connect; a nonblocking connect is waited for only when wait is set. */
static int mk_client(int nb, int wait)
{
	int fd = mk_socket(nb), err;
	socklen_t l = sizeof(err);

	if (connect(fd, (void *)&g_srv, g_srvlen) == 0)
		return fd;
	if (errno != EINPROGRESS)
		fatal("connect");
	if (!wait)
		return fd;
	if (!(wait_ev(fd, POLLOUT, IO_WAIT_MS) & POLLOUT))
		fatal("connect: not writable in time");
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) || err) {
		errno = err;
		fatal("connect (SO_ERROR)");
	}
	return fd;
}

static int do_accept(int lfd, int nb)
{
	int fd;

	if (nb && !(wait_ev(lfd, POLLIN, IO_WAIT_MS) & POLLIN)) {
		errno = ETIMEDOUT;
		fatal("accept: nothing to accept");
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | (nb ? SOCK_NONBLOCK : 0));
	if (fd < 0)
		fatal("accept");
	return fd;
}

/* A connected pair: c the client, s the server's accepted socket. */
static void mk_pair(int nb, int *c, int *s)
{
	int lfd = mk_listener(nb);

	*c = mk_client(nb, 1);
	*s = do_accept(lfd, nb);
	close(lfd);
}

/* ------------------------------------------------------------ bulk I/O */

/*
 * Send len bytes of stream seed from offset off; waits (poll) on EAGAIN,
 * so it works on blocking and nonblocking sockets alike. Returns bytes
 * sent; on error -1 with errno (bytes sent so far in *done if given).
 */
static ssize_t send_stream(int fd, uint64_t seed, uint64_t off, size_t len, int flags,
			   uint64_t *rng)
{
	static __thread uint8_t buf[1 << 17];
	size_t done = 0;
	uint64_t t0 = now_ns();

	while (done < len) {
		size_t n = len - done;
		ssize_t w;

		if (rng) {
			*rng = splitmix64(*rng);
			n = 1 + (*rng % (1u << (1 + (*rng >> 32) % 17)));
			if (n > len - done)
				n = len - done;
		}
		if (n > sizeof(buf))
			n = sizeof(buf);
		stream_fill(seed, off + done, buf, n);
		w = sa_send(fd, buf, n, flags | MSG_NOSIGNAL);
		if (w < 0) {
			if ((errno == EAGAIN || errno == ENOTCONN || errno == EINTR) &&
			    ms_since(t0) < 2 * IO_WAIT_MS) {
				wait_ev(fd, POLLOUT, 1000);
				continue;
			}
			return -1;
		}
		done += w;
	}
	return done;
}

/* Everything until EOF, checked against stream seed; -1 on error. */
struct rx {
	uint64_t bytes;
	int64_t bad;	/* first mismatching offset, -1 */
	int eof, err;
};

static void recv_stream(int fd, uint64_t seed, uint64_t off, uint64_t max, struct rx *r)
{
	static __thread uint8_t buf[1 << 17];
	uint64_t t0 = now_ns();

	r->bytes = 0;
	r->bad = -1;
	r->eof = 0;
	r->err = 0;
	while (r->bytes < max) {
		size_t want = max - r->bytes < sizeof(buf) ? max - r->bytes : sizeof(buf);
		ssize_t n = recv(fd, buf, want, 0);

		if (n < 0) {
			if ((errno == EAGAIN || errno == EINTR) && ms_since(t0) < 3 * IO_WAIT_MS) {
				wait_ev(fd, POLLIN, 1000);
				continue;
			}
			r->err = errno;
			return;
		}
		if (n == 0) {
			r->eof = 1;
			return;
		}
		if (r->bad < 0) {
			int64_t b = stream_check(seed, off + r->bytes, buf, n);

			if (b >= 0)
				r->bad = b;
		}
		r->bytes += n;
	}
}

static void orx(const char *key, const struct rx *r)
{
	if (r->err)
		o("%s=%llu/err:%s", key, (unsigned long long)r->bytes, ename(r->err));
	else
		o("%s=%llu%s%s", key, (unsigned long long)r->bytes, r->eof ? "/eof" : "",
		  r->bad >= 0 ? "/MISMATCH" : "");
}

/* Exactly len bytes (or fewer at EOF/error). */
static ssize_t recv_exact(int fd, void *p, size_t len)
{
	size_t got = 0;
	uint64_t t0 = now_ns();

	while (got < len) {
		ssize_t n = recv(fd, (char *)p + got, len - got, 0);

		if (n < 0) {
			if ((errno == EAGAIN || errno == EINTR) && ms_since(t0) < 2 * IO_WAIT_MS) {
				wait_ev(fd, POLLIN, 1000);
				continue;
			}
			return got ? (ssize_t)got : -1;
		}
		if (n == 0)
			break;
		got += n;
	}
	return got;
}

/* recv() that first waits (bounded) for readability: for EOF and replies. */
static ssize_t recv_wait(int fd, void *p, size_t len, int flags)
{
	wait_ev(fd, POLLIN | POLLRDHUP, IO_WAIT_MS);
	return recv(fd, p, len, flags);
}

static ssize_t send_all(int fd, const void *p, size_t len)
{
	size_t done = 0;
	uint64_t t0 = now_ns();

	while (done < len) {
		ssize_t w = sa_send(fd, (const char *)p + done, len - done, MSG_NOSIGNAL);

		if (w < 0) {
			if ((errno == EAGAIN || errno == ENOTCONN || errno == EINTR) &&
			    ms_since(t0) < 2 * IO_WAIT_MS) {
				wait_ev(fd, POLLOUT, 1000);
				continue;
			}
			return -1;
		}
		done += w;
	}
	return done;
}

/* Send n bytes of stream seed at offset off in one send() call. */
static ssize_t send_chunk(int fd, uint64_t seed, uint64_t off, size_t n, int flags)
{
	uint8_t buf[65536];

	if (n > sizeof(buf))
		n = sizeof(buf);
	stream_fill(seed, off, buf, n);
	return sa_send(fd, buf, n, flags | MSG_NOSIGNAL);
}

/* recv() into buf and note "key=N[/MISMATCH]" against stream seed at off. */
static ssize_t orecv_check(const char *key, int fd, size_t len, int flags, uint64_t seed,
			   uint64_t off)
{
	static uint8_t buf[1 << 17];
	ssize_t n;

	if (len > sizeof(buf))
		len = sizeof(buf);
	n = recv(fd, buf, len, flags);
	if (n <= 0) {
		oret(key, n);
		return n;
	}
	o("%s=%zd%s", key, n, stream_check(seed, off, buf, n) >= 0 ? "/MISMATCH" : "");
	return n;
}

/* A thread running a small timed script on a socket. */
enum { A_END, A_SEND, A_SHUTWR, A_CLOSE, A_SIGNAL, A_SENDSTR };
struct act {
	int at_ms;		/* from the script's start */
	int op;
	int fd;
	size_t len;
	const char *str;
	pthread_t *target;
};
struct script {
	struct act a[16];
	uint64_t seed, off;	/* A_SEND: stream and running offset */
	pthread_t t;
};

#define DO_SEND(t, f, n)	{ .at_ms = (t), .op = A_SEND, .fd = (f), .len = (n) }
#define DO_STR(t, f, s)		{ .at_ms = (t), .op = A_SENDSTR, .fd = (f), .str = (s) }
#define DO_SHUTWR(t, f)		{ .at_ms = (t), .op = A_SHUTWR, .fd = (f) }

static void *script_thread(void *arg)
{
	struct script *s = arg;
	uint64_t t0 = now_ns();
	int i;

	for (i = 0; i < 16 && s->a[i].op != A_END; i++) {
		struct act *a = &s->a[i];
		uint64_t el = ms_since(t0);

		if ((uint64_t)a->at_ms > el)
			msleep(a->at_ms - el);
		switch (a->op) {
		case A_SEND:
			if (send_stream(a->fd, s->seed, s->off, a->len, 0, NULL) == (ssize_t)a->len)
				s->off += a->len;
			break;
		case A_SENDSTR:
			send_all(a->fd, a->str, strlen(a->str));
			break;
		case A_SHUTWR:
			shutdown(a->fd, SHUT_WR);
			break;
		case A_CLOSE:
			close(a->fd);
			break;
		case A_SIGNAL:
			pthread_kill(*a->target, SIGUSR1);
			break;
		}
	}
	return NULL;
}

static void script_start(struct script *s)
{
	if (pthread_create(&s->t, NULL, script_thread, s))
		fatal("pthread_create");
}

static void script_join(struct script *s)
{
	pthread_join(s->t, NULL);
}

static void on_usr1(int sig)
{
}

/* SIGUSR1 with SA_RESTART: a restartable interruption, invisible to TCP readers. */
static void install_usr1(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
}

#define SEED_C 0x1111	/* client -> server stream */
#define SEED_S 0x2222	/* server -> client stream */

/* ============================================================ stress: echo */

#define ECHO_CAP (256 * 1024)

struct echo_cfg {
	int conns, conc;
	uint64_t min_bytes, spread;
};

static struct {
	long ok, bad, srv_done, srv_err;
	uint64_t c2s, s2c, srv_bytes;
	int64_t first_bad;
} E;

static uint64_t echo_total(const struct echo_cfg *cfg, uint64_t seed)
{
	return cfg->min_bytes + splitmix64(seed * 31 + 7) % cfg->spread;
}

struct econn {
	int fd, eof, interest;
	size_t r, w;
	uint64_t in;
	uint8_t buf[ECHO_CAP];
};

/* One server step, level-triggered; 1 = connection finished. */
static int econn_step(int ep, struct econn *c)
{
	struct epoll_event ev;
	int want;

	while (!c->eof && c->w < ECHO_CAP) {
		ssize_t n = recv(c->fd, c->buf + c->w, ECHO_CAP - c->w, 0);

		if (n > 0) {
			c->w += n;
			c->in += n;
		} else if (n == 0) {
			c->eof = 1;
		} else if (errno == EAGAIN || errno == EINTR) {
			break;
		} else {
			__atomic_add_fetch(&E.srv_err, 1, __ATOMIC_SEQ_CST);
			return 1;
		}
	}
	while (c->r < c->w) {
		ssize_t n = sa_send(c->fd, c->buf + c->r, c->w - c->r, MSG_NOSIGNAL);

		if (n > 0) {
			c->r += n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			break;
		} else {
			__atomic_add_fetch(&E.srv_err, 1, __ATOMIC_SEQ_CST);
			return 1;
		}
	}
	if (c->r == c->w)
		c->r = c->w = 0;
	else if (c->w == ECHO_CAP && c->r > 0) {
		memmove(c->buf, c->buf + c->r, c->w - c->r);
		c->w -= c->r;
		c->r = 0;
	}
	if (c->eof && c->r == c->w) {
		shutdown(c->fd, SHUT_WR);
		__atomic_add_fetch(&E.srv_bytes, c->in, __ATOMIC_SEQ_CST);
		return 1;
	}
	want = (!c->eof && c->w < ECHO_CAP ? EPOLLIN : 0) | (c->r < c->w ? EPOLLOUT : 0);
	if (want != c->interest) {
		ev.events = want;
		ev.data.ptr = c;
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->interest = want;
	}
	return 0;
}

struct echo_srv_arg {
	int lfd, conns;
};

static void *echo_server_nb(void *arg)
{
	struct echo_srv_arg *a = arg;
	struct epoll_event ev, evs[64];
	int ep = epoll_create1(EPOLL_CLOEXEC), done = 0, i;

	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, a->lfd, &ev);
	while (done < a->conns) {
		int n = epoll_wait(ep, evs, 64, 1000);

		for (i = 0; i < n; i++) {
			struct econn *c = evs[i].data.ptr;

			if (!c) {
				int fd;

				while ((fd = accept4(a->lfd, NULL, NULL,
						     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					c = calloc(1, sizeof(*c));
					c->fd = fd;
					c->interest = EPOLLIN;
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if (econn_step(ep, c)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				free(c);
				done++;
			}
		}
	}
	close(ep);
	return NULL;
}

struct eclient {
	int fd, shut, active;
	uint64_t seed, total, tx, rx, rng;
};

static void eclient_start(int ep, struct eclient *c, uint64_t seed, const struct echo_cfg *cfg)
{
	struct epoll_event ev;

	memset(c, 0, sizeof(*c));
	c->seed = seed;
	c->total = echo_total(cfg, seed);
	c->rng = seed * 7 + 1;
	c->fd = mk_client(1, 0);	/* writes start right after connect() */
	c->active = 1;
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* 1 = finished (ok or not). */
static int eclient_step(int ep, struct eclient *c)
{
	static uint8_t buf[1 << 17];

	while (c->tx < c->total) {
		size_t n;
		ssize_t w;

		c->rng = splitmix64(c->rng);
		n = 1 + (c->rng % (1u << (1 + (c->rng >> 32) % 17)));
		if (n > c->total - c->tx)
			n = c->total - c->tx;
		stream_fill(c->seed, c->tx, buf, n);
		w = sa_send(c->fd, buf, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == ENOTCONN || errno == EINTR)
				break;
			goto bad;
		}
		c->tx += w;
	}
	if (c->tx == c->total && !c->shut) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };

		shutdown(c->fd, SHUT_WR);
		c->shut = 1;
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		int64_t b;

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			goto bad;
		}
		if (n == 0) {
			if (c->rx != c->total || c->tx != c->total)
				goto bad;
			__atomic_add_fetch(&E.ok, 1, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&E.c2s, c->tx, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&E.s2c, c->rx, __ATOMIC_SEQ_CST);
			return 1;
		}
		b = stream_check(c->seed, c->rx, buf, n);
		if (b >= 0 || c->rx + n > c->total) {
			E.first_bad = b >= 0 ? b : (int64_t)c->total;
			goto bad;
		}
		c->rx += n;
	}
bad:
	__atomic_add_fetch(&E.bad, 1, __ATOMIC_SEQ_CST);
	return 1;
}

static void echo_nb_run(const struct echo_cfg *cfg)
{
	struct echo_srv_arg sa;
	struct eclient *cs = calloc(cfg->conc, sizeof(*cs));
	struct epoll_event evs[64];
	pthread_t st;
	int ep = epoll_create1(EPOLL_CLOEXEC), started = 0, finished = 0, i;

	sa.lfd = mk_listener(1);
	sa.conns = cfg->conns;
	if (pthread_create(&st, NULL, echo_server_nb, &sa))
		fatal("pthread_create");
	for (i = 0; i < cfg->conc && started < cfg->conns; i++)
		eclient_start(ep, &cs[i], 1000 + started++, cfg);
	while (finished < cfg->conns) {
		int n = epoll_wait(ep, evs, 64, 1000);

		for (i = 0; i < n; i++) {
			struct eclient *c = evs[i].data.ptr;

			if (!c->active || !eclient_step(ep, c))
				continue;
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			c->active = 0;
			finished++;
			if (started < cfg->conns)
				eclient_start(ep, c, 1000 + started++, cfg);
		}
	}
	pthread_join(st, NULL);
	close(sa.lfd);
	free(cs);
}

/* Blocking: a thread per server connection; client writer + reader threads. */
static void *echo_srv_conn_blk(void *arg)
{
	int fd = (int)(long)arg;
	static __thread uint8_t buf[65536];
	uint64_t in = 0;

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				__atomic_add_fetch(&E.srv_err, 1, __ATOMIC_SEQ_CST);
			break;
		}
		in += n;
		if (send_all(fd, buf, n) != n) {
			__atomic_add_fetch(&E.srv_err, 1, __ATOMIC_SEQ_CST);
			break;
		}
	}
	shutdown(fd, SHUT_WR);
	__atomic_add_fetch(&E.srv_bytes, in, __ATOMIC_SEQ_CST);
	/* Wait for the client's close before closing (nothing left unread). */
	close(fd);
	return NULL;
}

static void *echo_server_blk(void *arg)
{
	struct echo_srv_arg *a = arg;
	pthread_t *ts = calloc(a->conns, sizeof(*ts));
	int i;

	for (i = 0; i < a->conns; i++) {
		int fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			fatal("accept");
		if (pthread_create(&ts[i], NULL, echo_srv_conn_blk, (void *)(long)fd))
			fatal("pthread_create");
	}
	for (i = 0; i < a->conns; i++)
		pthread_join(ts[i], NULL);
	free(ts);
	return NULL;
}

struct ecli_blk {
	struct eclient c;
	int err;
};

static void *ecli_writer(void *arg)
{
	struct ecli_blk *b = arg;
	struct eclient *c = &b->c;

	if (send_stream(c->fd, c->seed, 0, c->total, 0, &c->rng) != (ssize_t)c->total)
		b->err = errno ? errno : EIO;
	else
		c->tx = c->total;
	shutdown(c->fd, SHUT_WR);
	return NULL;
}

static const struct echo_cfg *g_ecfg;
static int g_enext;

static void *echo_client_worker_blk(void *arg)
{
	for (;;) {
		int idx = __atomic_fetch_add(&g_enext, 1, __ATOMIC_SEQ_CST);
		struct ecli_blk b;
		struct rx r;
		pthread_t w;

		if (idx >= g_ecfg->conns)
			break;
		memset(&b, 0, sizeof(b));
		b.c.seed = 1000 + idx;
		b.c.total = echo_total(g_ecfg, b.c.seed);
		b.c.rng = b.c.seed * 7 + 1;
		b.c.fd = mk_client(0, 1);
		if (pthread_create(&w, NULL, ecli_writer, &b))
			fatal("pthread_create");
		recv_stream(b.c.fd, b.c.seed, 0, b.c.total + 1, &r);
		pthread_join(w, NULL);
		close(b.c.fd);
		if (!b.err && r.eof && !r.err && r.bad < 0 && r.bytes == b.c.total) {
			__atomic_add_fetch(&E.ok, 1, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&E.c2s, b.c.tx, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&E.s2c, r.bytes, __ATOMIC_SEQ_CST);
		} else {
			__atomic_add_fetch(&E.bad, 1, __ATOMIC_SEQ_CST);
			if (r.bad >= 0)
				E.first_bad = r.bad;
		}
	}
	return NULL;
}

static void echo_blk_run(const struct echo_cfg *cfg)
{
	struct echo_srv_arg sa;
	pthread_t st, *ws = calloc(cfg->conc, sizeof(*ws));
	int i;

	sa.lfd = mk_listener(0);
	sa.conns = cfg->conns;
	g_ecfg = cfg;
	g_enext = 0;
	if (pthread_create(&st, NULL, echo_server_blk, &sa))
		fatal("pthread_create");
	for (i = 0; i < cfg->conc; i++)
		if (pthread_create(&ws[i], NULL, echo_client_worker_blk, NULL))
			fatal("pthread_create");
	for (i = 0; i < cfg->conc; i++)
		pthread_join(ws[i], NULL);
	pthread_join(st, NULL);
	close(sa.lfd);
	free(ws);
}

static void case_echo(int nb)
{
	struct echo_cfg cfg = { .conns = 64, .conc = 16, .min_bytes = 128 << 10, .spread = 2 << 20 };
	uint64_t expect = 0;
	int i;

	if (!nb) {
		cfg.conns = 32;
		cfg.conc = 8;
	}
	if (g_quick) {
		cfg.conns = 6;
		cfg.spread = 256 << 10;
	}
	for (i = 0; i < cfg.conns; i++)
		expect += echo_total(&cfg, 1000 + i);
	E.first_bad = -1;
	if (nb)
		echo_nb_run(&cfg);
	else
		echo_blk_run(&cfg);
	o("conns=%d ok=%ld bad=%ld srv_err=%ld", cfg.conns, E.ok, E.bad, E.srv_err);
	o("c2s=%s s2c=%s srv_in=%s", E.c2s == expect ? "all" : "SHORT",
	  E.s2c == expect ? "all" : "SHORT", E.srv_bytes == expect ? "all" : "SHORT");
	o("bytes=%llu", (unsigned long long)expect);
	if (E.first_bad >= 0)
		o("first_mismatch=%lld", (long long)E.first_bad);
}

/* ============================================================ half-close */

struct hc {
	int fd;
	uint64_t a_len, b_len;	/* first / second leg */
	int server_first_closer;
	struct obuf ob;
};

/*
 * Scenario A (client closes first): client sends A bytes, SHUT_WR, then
 * reads the server's B bytes to EOF. Server reads to EOF, reads again
 * (still EOF), then sends B bytes and SHUT_WR.
 * Scenario B (server closes first): the mirror image.
 */
static void *hc_first_closer(void *arg)
{
	struct hc *h = arg;
	uint64_t my = h->server_first_closer ? SEED_S : SEED_C;
	uint64_t peer = h->server_first_closer ? SEED_C : SEED_S;
	struct rx r;
	ssize_t n;
	char b[8];

	ob_ret(&h->ob, "closer_sent", send_stream(h->fd, my, 0, h->a_len, 0, NULL));
	ob_ret(&h->ob, "closer_shutwr", shutdown(h->fd, SHUT_WR));
	n = sa_send(h->fd, "x", 1, MSG_NOSIGNAL);
	ob_ret(&h->ob, "closer_send_after_shut", n);
	recv_stream(h->fd, peer, 0, h->b_len + 1, &r);
	if (r.err)
		ob_add(&h->ob, "closer_rx=%llu/err:%s", (unsigned long long)r.bytes, ename(r.err));
	else
		ob_add(&h->ob, "closer_rx=%llu%s%s", (unsigned long long)r.bytes,
		       r.eof ? "/eof" : "", r.bad >= 0 ? "/MISMATCH" : "");
	n = recv(h->fd, b, sizeof(b), 0);
	ob_ret(&h->ob, "closer_recv_again", n);
	return NULL;
}

static void *hc_second(void *arg)
{
	struct hc *h = arg;
	uint64_t my = h->server_first_closer ? SEED_C : SEED_S;
	uint64_t peer = h->server_first_closer ? SEED_S : SEED_C;
	struct rx r;
	char b[8];

	recv_stream(h->fd, peer, 0, h->a_len + 1, &r);
	if (r.err)
		ob_add(&h->ob, "second_rx=%llu/err:%s", (unsigned long long)r.bytes, ename(r.err));
	else
		ob_add(&h->ob, "second_rx=%llu%s%s", (unsigned long long)r.bytes,
		       r.eof ? "/eof" : "", r.bad >= 0 ? "/MISMATCH" : "");
	ob_ret(&h->ob, "second_recv_again", recv(h->fd, b, sizeof(b), MSG_DONTWAIT));
	{
		char m[64];

		ob_add(&h->ob, "second_mask_after_eof=%s", maskstr(pmask(h->fd), m));
	}
	ob_ret(&h->ob, "second_sent", send_stream(h->fd, my, 0, h->b_len, 0, NULL));
	ob_ret(&h->ob, "second_shutwr", shutdown(h->fd, SHUT_WR));
	return NULL;
}

static void hc_scenario(int nb, int server_first, const char *tag)
{
	struct hc x, y;	/* x: first closer, y: the other end */
	pthread_t tx, ty;
	int c, s;

	mk_pair(nb, &c, &s);
	memset(&x, 0, sizeof(x));
	memset(&y, 0, sizeof(y));
	x.a_len = y.a_len = server_first ? 200000 : 300000;
	x.b_len = y.b_len = server_first ? 400000 : 500000;
	x.server_first_closer = y.server_first_closer = server_first;
	x.fd = server_first ? s : c;
	y.fd = server_first ? c : s;
	pthread_create(&tx, NULL, hc_first_closer, &x);
	pthread_create(&ty, NULL, hc_second, &y);
	pthread_join(tx, NULL);
	pthread_join(ty, NULL);
	{
		char m1[64], m2[64];

		settle();
		o("%s: %.*s %.*s final_mask_closer=%s final_mask_second=%s", tag,
		  (int)x.ob.n, x.ob.s, (int)y.ob.n, y.ob.s, maskstr(pmask(x.fd), m1),
		  maskstr(pmask(y.fd), m2));
	}
	close(c);
	close(s);
}

static void case_halfclose(int nb)
{
	hc_scenario(nb, 0, "client_first");
	hc_scenario(nb, 1, "server_first");
}

/* ============================================================ short conns */

struct sc_hdr {
	uint32_t len;
	uint32_t seed;
};

static uint32_t sc_req_len(uint32_t seed)
{
	return 1 + splitmix64(seed) % 2000;
}

static uint32_t sc_resp_len(uint32_t seed)
{
	return 1 + splitmix64(seed ^ 0xabcdef) % 4000;
}

static struct {
	long ok, bad, srv_ok, srv_bad;
	uint64_t req, resp;
} S;

/* Server side of one short connection; nonblocking-aware (poll waits). */
static void sc_serve(int fd)
{
	struct sc_hdr h;
	uint8_t body[2048];
	ssize_t n = recv_exact(fd, &h, sizeof(h));

	if (n != sizeof(h) || h.len != sc_req_len(h.seed) || h.len > sizeof(body) ||
	    recv_exact(fd, body, h.len) != (ssize_t)h.len ||
	    stream_check(h.seed, 0, body, h.len) >= 0) {
		__atomic_add_fetch(&S.srv_bad, 1, __ATOMIC_SEQ_CST);
		close(fd);
		return;
	}
	if (send_stream(fd, h.seed ^ 0x5555, 0, sc_resp_len(h.seed), 0, NULL) !=
	    (ssize_t)sc_resp_len(h.seed)) {
		__atomic_add_fetch(&S.srv_bad, 1, __ATOMIC_SEQ_CST);
		close(fd);
		return;
	}
	__atomic_add_fetch(&S.srv_ok, 1, __ATOMIC_SEQ_CST);
	close(fd);
}

/* Nonblocking server: epoll loop; each connection is a small state machine. */
struct scs {
	int fd;
	size_t got, sent;
	struct sc_hdr h;
	uint8_t body[2048];
	int phase;	/* 0 header, 1 body, 2 response */
};

static int scs_step(struct scs *c)
{
	for (;;) {
		ssize_t n;

		if (c->phase == 0) {
			n = recv(c->fd, (char *)&c->h + c->got, sizeof(c->h) - c->got, 0);
		} else if (c->phase == 1) {
			n = recv(c->fd, c->body + c->got, c->h.len - c->got, 0);
		} else {
			uint8_t buf[4096];
			size_t len = sc_resp_len(c->h.seed);

			stream_fill(c->h.seed ^ 0x5555, c->sent, buf, len - c->sent);
			n = sa_send(c->fd, buf, len - c->sent, MSG_NOSIGNAL);
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
			c->sent += n;
			if (c->sent == len)
				return 1;
			continue;
		}
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (n == 0)
			return -1;
		c->got += n;
		if (c->phase == 0 && c->got == sizeof(c->h)) {
			if (c->h.len != sc_req_len(c->h.seed) || c->h.len > sizeof(c->body))
				return -1;
			c->phase = 1;
			c->got = 0;
		} else if (c->phase == 1 && c->got == c->h.len) {
			if (stream_check(c->h.seed, 0, c->body, c->h.len) >= 0)
				return -1;
			c->phase = 2;
		}
	}
}

struct sc_srv_arg {
	int lfd, conns;
};

static void *sc_server_nb(void *arg)
{
	struct sc_srv_arg *a = arg;
	struct epoll_event ev, evs[64];
	int ep = epoll_create1(EPOLL_CLOEXEC), i;

	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, a->lfd, &ev);
	while (S.srv_ok + S.srv_bad < a->conns) {
		int n = epoll_wait(ep, evs, 64, 1000);

		for (i = 0; i < n; i++) {
			struct scs *c = evs[i].data.ptr;
			int r;

			if (!c) {
				int fd;

				while ((fd = accept4(a->lfd, NULL, NULL,
						     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					c = calloc(1, sizeof(*c));
					c->fd = fd;
					/* Event-driven servers read right after accept. */
					r = scs_step(c);
					if (r) {
						if (r > 0)
							S.srv_ok++;
						else
							S.srv_bad++;
						close(fd);
						free(c);
						continue;
					}
					ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			r = scs_step(c);
			if (r) {
				if (r > 0)
					S.srv_ok++;
				else
					S.srv_bad++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				free(c);
			}
		}
	}
	close(ep);
	return NULL;
}

struct scc {
	int fd, active, sent_hdr;
	uint32_t seed;
	size_t off, rx;
	int64_t bad;
};

static void scc_start(int ep, struct scc *c, uint32_t seed)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };

	memset(c, 0, sizeof(*c));
	c->seed = seed;
	c->bad = -1;
	c->active = 1;
	c->fd = mk_client(1, 0);
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Request (header + body) right after connect, then the response to EOF. */
static int scc_step(struct scc *c)
{
	uint8_t buf[4096 + sizeof(struct sc_hdr)];
	size_t total = sizeof(struct sc_hdr) + sc_req_len(c->seed);

	while (c->off < total) {
		struct sc_hdr h = { sc_req_len(c->seed), c->seed };
		ssize_t w;

		memcpy(buf, &h, sizeof(h));
		stream_fill(c->seed, 0, buf + sizeof(h), h.len);
		w = sa_send(c->fd, buf + c->off, total - c->off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == ENOTCONN)
				break;
			return -1;
		}
		c->off += w;
	}
	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (n == 0)
			return c->rx == sc_resp_len(c->seed) && c->bad < 0 && c->off == total ? 1 : -1;
		if (c->rx + n > sc_resp_len(c->seed))
			return -1;
		if (c->bad < 0)
			c->bad = stream_check(c->seed ^ 0x5555, c->rx, buf, n);
		c->rx += n;
	}
}

static void short_nb_run(int conns, int conc)
{
	struct sc_srv_arg sa;
	struct scc *cs = calloc(conc, sizeof(*cs));
	struct epoll_event evs[64];
	pthread_t st;
	int ep = epoll_create1(EPOLL_CLOEXEC), started = 0, finished = 0, i;

	sa.lfd = mk_listener(1);
	sa.conns = conns;
	if (pthread_create(&st, NULL, sc_server_nb, &sa))
		fatal("pthread_create");
	for (i = 0; i < conc && started < conns; i++) {
		scc_start(ep, &cs[i], 1 + started++);
		if (scc_step(&cs[i]) < 0) {
			/* finished early: counted on the event */
		}
	}
	while (finished < conns) {
		int n = epoll_wait(ep, evs, 64, 1000);

		for (i = 0; i < n; i++) {
			struct scc *c = evs[i].data.ptr;
			int r;

			if (!c->active)
				continue;
			r = scc_step(c);
			if (!r)
				continue;
			if (r > 0) {
				S.ok++;
				S.req += sc_req_len(c->seed);
				S.resp += c->rx;
			} else {
				S.bad++;
			}
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			c->active = 0;
			finished++;
			if (started < conns) {
				scc_start(ep, c, 1 + started++);
				scc_step(c);
			}
		}
	}
	pthread_join(st, NULL);
	close(sa.lfd);
	free(cs);
}

static int g_sc_next, g_sc_conns, g_sc_lfd;

static void *sc_server_worker_blk(void *arg)
{
	while (__atomic_load_n(&S.srv_ok, __ATOMIC_SEQ_CST) +
	       __atomic_load_n(&S.srv_bad, __ATOMIC_SEQ_CST) < g_sc_conns) {
		int fd = accept4(g_sc_lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			break;	/* listener shut down */
		sc_serve(fd);
	}
	return NULL;
}

static void *sc_client_worker_blk(void *arg)
{
	for (;;) {
		int idx = __atomic_fetch_add(&g_sc_next, 1, __ATOMIC_SEQ_CST);
		uint32_t seed = 1 + idx;
		struct sc_hdr h = { sc_req_len(seed), seed };
		uint8_t buf[2048 + sizeof(h)];
		struct rx r;
		int fd;

		if (idx >= g_sc_conns)
			break;
		fd = mk_client(0, 1);
		memcpy(buf, &h, sizeof(h));
		stream_fill(seed, 0, buf + sizeof(h), h.len);
		if (send_all(fd, buf, sizeof(h) + h.len) != (ssize_t)(sizeof(h) + h.len)) {
			__atomic_add_fetch(&S.bad, 1, __ATOMIC_SEQ_CST);
			close(fd);
			continue;
		}
		recv_stream(fd, seed ^ 0x5555, 0, sc_resp_len(seed) + 1, &r);
		close(fd);
		if (r.eof && !r.err && r.bad < 0 && r.bytes == sc_resp_len(seed)) {
			__atomic_add_fetch(&S.ok, 1, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&S.req, h.len, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&S.resp, r.bytes, __ATOMIC_SEQ_CST);
		} else {
			__atomic_add_fetch(&S.bad, 1, __ATOMIC_SEQ_CST);
		}
	}
	return NULL;
}

static void short_blk_run(int conns, int conc)
{
	pthread_t sw[4], cw[16];
	int i;

	g_sc_lfd = mk_listener(0);
	g_sc_conns = conns;
	for (i = 0; i < 4; i++)
		pthread_create(&sw[i], NULL, sc_server_worker_blk, NULL);
	for (i = 0; i < conc; i++)
		pthread_create(&cw[i], NULL, sc_client_worker_blk, NULL);
	for (i = 0; i < conc; i++)
		pthread_join(cw[i], NULL);
	shutdown(g_sc_lfd, SHUT_RDWR);	/* wakes accept() */
	for (i = 0; i < 4; i++)
		pthread_join(sw[i], NULL);
	close(g_sc_lfd);
}

static void case_short(int nb)
{
	int conns = g_quick ? 500 : 5000, i;
	uint64_t req = 0, resp = 0;

	for (i = 0; i < conns; i++) {
		req += sc_req_len(1 + i);
		resp += sc_resp_len(1 + i);
	}
	if (nb)
		short_nb_run(conns, 16);
	else
		short_blk_run(conns, 8);
	o("conns=%d ok=%ld bad=%ld srv_ok=%ld srv_bad=%ld", conns, S.ok, S.bad, S.srv_ok,
	  S.srv_bad);
	o("req_bytes=%s resp_bytes=%s", S.req == req ? "all" : "SHORT",
	  S.resp == resp ? "all" : "SHORT");
}

/* ============================================================ conversations */

/* Server: read to EOF (verified), reply with an 8-byte count, close. */
struct sink_arg {
	int lfd, nb, delay_ms, conns;
	uint64_t len;
	struct rx rx[16];
	long replied[16];
};

static void *sink_conn(void *arg)
{
	void **p = arg;
	struct sink_arg *a = p[0];
	long i = (long)p[1];
	int fd = (int)(long)p[2];
	uint64_t got;

	recv_stream(fd, SEED_C + i, 0, a->len + 1, &a->rx[i]);
	got = a->rx[i].bytes;
	a->replied[i] = send_all(fd, &got, sizeof(got));
	close(fd);
	free(p);
	return NULL;
}

static void *sink_server(void *arg)
{
	struct sink_arg *a = arg;
	pthread_t t[16];
	int fds[16];
	long i;

	if (a->delay_ms)
		msleep(a->delay_ms);	/* slow to accept: connections queue up */
	for (i = 0; i < a->conns; i++)
		fds[i] = do_accept(a->lfd, a->nb);
	/* Accept order is connect order: the clients connect one at a time. */
	for (i = 0; i < a->conns; i++) {
		void **p = malloc(3 * sizeof(void *));

		p[0] = a;
		p[1] = (void *)i;
		p[2] = (void *)(long)fds[i];
		pthread_create(&t[i], NULL, sink_conn, p);
	}
	for (i = 0; i < a->conns; i++)
		pthread_join(t[i], NULL);
	return NULL;
}

/*
 * Client sends right after connect() (nonblocking: right after
 * EINPROGRESS, without waiting for writability), then SHUT_WR, then reads
 * the reply. Single connection so the server's stream index is known.
 */
static void case_connect_send(int nb)
{
	struct sink_arg a;
	pthread_t st;
	uint64_t reply = 0;
	ssize_t n;
	int fd;

	memset(&a, 0, sizeof(a));
	a.lfd = mk_listener(nb);
	a.nb = nb;
	a.conns = 1;
	a.len = 1 << 20;
	pthread_create(&st, NULL, sink_server, &a);
	fd = mk_client(nb, 0);
	n = send_stream(fd, SEED_C, 0, a.len, 0, NULL);
	oret("sent", n);
	oret("shutwr", shutdown(fd, SHUT_WR));
	n = recv_exact(fd, &reply, sizeof(reply));
	oret("reply_len", n);
	o("reply=%llu", (unsigned long long)reply);
	{
		char b[8];

		oret("recv_eof", recv_wait(fd, b, sizeof(b), 0));
	}
	pthread_join(st, NULL);
	orx("srv_rx", &a.rx[0]);
	close(fd);
	close(a.lfd);
}

struct slow_cli {
	int fd;
	long idx;
	ssize_t sent;
	uint64_t reply;
	ssize_t rlen, eof;
	int sent_err, rlen_err, eof_err;
};

static void *slow_client(void *arg)
{
	struct slow_cli *c = arg;
	char b[8];

	c->sent = send_stream(c->fd, SEED_C + c->idx, 0, 256 << 10, 0, NULL);
	c->sent_err = errno;
	shutdown(c->fd, SHUT_WR);
	c->rlen = recv_exact(c->fd, &c->reply, sizeof(c->reply));
	c->rlen_err = errno;
	c->eof = recv_wait(c->fd, b, sizeof(b), 0);
	c->eof_err = errno;
	return NULL;
}

/*
 * Server slow to accept: 8 clients connect (one at a time, so accept
 * order is connect order), each sends 256 KiB and SHUT_WR while the
 * server sleeps 400 ms before its first accept().
 */
static void case_slow_accept(int nb)
{
	struct sink_arg a;
	struct slow_cli cs[8];
	pthread_t st, ct[8];
	int i, ok = 0, all_sent = 1;

	memset(&a, 0, sizeof(a));
	a.lfd = mk_listener(nb);
	a.nb = nb;
	a.conns = 8;
	a.len = 256 << 10;
	a.delay_ms = 400;
	pthread_create(&st, NULL, sink_server, &a);
	for (i = 0; i < 8; i++) {
		cs[i].idx = i;
		cs[i].fd = mk_client(nb, 1);	/* handshake done: queue order fixed */
	}
	for (i = 0; i < 8; i++)
		pthread_create(&ct[i], NULL, slow_client, &cs[i]);
	for (i = 0; i < 8; i++)
		pthread_join(ct[i], NULL);
	pthread_join(st, NULL);
	for (i = 0; i < 8; i++) {
		if (cs[i].sent != 256 << 10)
			all_sent = 0;
		if (cs[i].rlen == 8 && cs[i].reply == 256 << 10 && cs[i].eof == 0 &&
		    a.rx[i].eof && a.rx[i].bad < 0 && a.rx[i].bytes == 256 << 10)
			ok++;
		close(cs[i].fd);
	}
	o("conns=8 all_sent=%d ok=%d", all_sent, ok);
	for (i = 0; i < 8; i++) {
		char k[32];

		if (cs[i].rlen == 8 && cs[i].reply == 256 << 10 && cs[i].eof == 0 &&
		    a.rx[i].eof && a.rx[i].bad < 0 && a.rx[i].bytes == 256 << 10)
			continue;
		snprintf(k, sizeof(k), "c%d_sent", i);
		oret_e(k, cs[i].sent, cs[i].sent_err);
		snprintf(k, sizeof(k), "c%d_reply_len", i);
		oret_e(k, cs[i].rlen, cs[i].rlen_err);
		o("c%d_reply=%llu", i, (unsigned long long)cs[i].reply);
		snprintf(k, sizeof(k), "c%d_eof", i);
		oret_e(k, cs[i].eof, cs[i].eof_err);
		snprintf(k, sizeof(k), "srv_rx%d", i);
		orx(k, &a.rx[i]);
	}
	close(a.lfd);
}

/* Server speaks first (banner), then 50 length-prefixed request/response rounds. */
struct rpc_srv {
	int lfd, nb, rounds;
	uint64_t rx, tx;
	int bad;
	ssize_t last;
	int last_err;
};

static uint32_t rpc_len(uint64_t seed, int i)
{
	return 1 + splitmix64(seed + i) % (64 << 10);
}

static void *rpc_server(void *arg)
{
	struct rpc_srv *a = arg;
	int fd = do_accept(a->lfd, a->nb);
	uint64_t roff = 0, toff = 0;

	if (send_stream(fd, SEED_S, toff, 128, 0, NULL) != 128)
		a->bad++;
	toff += 128;
	for (;;) {
		static uint8_t buf[64 << 10];
		uint32_t len, rlen;

		if (recv_exact(fd, &len, 4) != 4) {
			a->bad++;
			break;
		}
		if (len == 0)
			break;
		if (len > sizeof(buf) || recv_exact(fd, buf, len) != len ||
		    stream_check(SEED_C, roff, buf, len) >= 0) {
			a->bad++;
			break;
		}
		roff += len;
		rlen = rpc_len(SEED_S, a->rounds);
		if (sa_send(fd, &rlen, 4, MSG_MORE | MSG_NOSIGNAL) != 4 ||
		    send_stream(fd, SEED_S, toff, rlen, 0, NULL) != rlen) {
			a->bad++;
			break;
		}
		toff += rlen;
		a->rounds++;
	}
	a->rx = roff;
	a->tx = toff;
	{
		char b[8];

		a->last = recv_wait(fd, b, sizeof(b), 0);	/* client's FIN */
		a->last_err = errno;
	}
	close(fd);
	return NULL;
}

static void case_server_first(int nb)
{
	struct rpc_srv a;
	pthread_t st;
	int fd, i, bad = 0;
	uint64_t roff = 0, toff = 0;
	static uint8_t buf[64 << 10];

	memset(&a, 0, sizeof(a));
	a.lfd = mk_listener(nb);
	a.nb = nb;
	pthread_create(&st, NULL, rpc_server, &a);
	fd = mk_client(nb, 1);
	/* The banner is there before the client writes anything. */
	if (recv_exact(fd, buf, 128) != 128 || stream_check(SEED_S, 0, buf, 128) >= 0)
		bad++;
	roff = 128;
	for (i = 0; i < 50 && !bad; i++) {
		uint32_t len = rpc_len(SEED_C, i), rlen;

		if (sa_send(fd, &len, 4, MSG_MORE | MSG_NOSIGNAL) != 4 ||
		    send_stream(fd, SEED_C, toff, len, 0, NULL) != len) {
			bad++;
			break;
		}
		toff += len;
		if (recv_exact(fd, &rlen, 4) != 4 || rlen != rpc_len(SEED_S, i) ||
		    recv_exact(fd, buf, rlen) != rlen || stream_check(SEED_S, roff, buf, rlen) >= 0) {
			bad++;
			break;
		}
		roff += rlen;
	}
	{
		uint32_t zero = 0;
		char b[8];

		send_all(fd, &zero, 4);
		shutdown(fd, SHUT_WR);
		pthread_join(st, NULL);
		o("banner_and_rounds=%d bad=%d srv_bad=%d srv_rounds=%d", i, bad, a.bad, a.rounds);
		o("c2s=%llu s2c=%llu srv_rx=%llu srv_tx=%llu", (unsigned long long)toff,
		  (unsigned long long)roff, (unsigned long long)a.rx, (unsigned long long)a.tx);
		oret_e("srv_eof", a.last, a.last_err);
		oret("cli_eof", recv_wait(fd, b, sizeof(b), 0));
	}
	close(fd);
	close(a.lfd);
}

/* Client sends 50 KB and close()s at once (no shutdown); server reads late. */
static void case_send_close(int nb)
{
	int c, s;
	struct rx r;

	mk_pair(nb, &c, &s);
	oret("sent", send_stream(c, SEED_C, 0, 50000, 0, NULL));
	oret("close", close(c));
	settle();
	omask("srv_mask", s);
	oioctl("srv_fionread", s, FIONREAD);
	recv_stream(s, SEED_C, 0, 50001, &r);
	orx("srv_rx", &r);
	oret("srv_send_after_peer_close", sa_send(s, "x", 1, MSG_NOSIGNAL));
	settle();
	omask("srv_mask_after_send", s);
	{
		char b[8];

		oret("srv_recv_after_rst", recv(s, b, sizeof(b), 0));
	}
	close(s);
}

/*
 * A reader that keeps pausing: the sender (random writes 1 B..128 KiB)
 * outruns it, so an accelerated direction falls back to TCP (backlog
 * limit) and comes back when drained, many times; every byte is checked.
 */
struct pr_writer {
	int fd;
	uint64_t total;
	ssize_t sent;
	int err;
};

static void *pr_writer_thread(void *arg)
{
	struct pr_writer *w = arg;
	uint64_t rng = 99;

	w->sent = send_stream(w->fd, SEED_C, 0, w->total, 0, &rng);
	w->err = errno;
	shutdown(w->fd, SHUT_WR);
	return NULL;
}

static void case_pause_resume(int nb)
{
	static uint8_t buf[1 << 16];
	struct pr_writer w = { .total = g_quick ? 8 << 20 : 48 << 20 };
	uint64_t rx = 0, burst_left, rng = 7, wrng = 11, t0 = now_ns();
	int64_t bad = -1;
	int c, s, pauses = 0, eof = 0, err = 0;
	pthread_t t;

	mk_pair(nb, &c, &s);
	w.fd = c;
	pthread_create(&t, NULL, pr_writer_thread, &w);
	rng = splitmix64(rng);
	burst_left = (256 << 10) + rng % (6 << 20);
	while (!eof && !err && ms_since(t0) < 60000) {
		size_t want;
		ssize_t n;

		if (!burst_left) {
			msleep(60);	/* the pause */
			pauses++;
			rng = splitmix64(rng);
			burst_left = (256 << 10) + rng % (6 << 20);
		}
		wrng = splitmix64(wrng);
		want = 1 + wrng % sizeof(buf);
		if (want > burst_left)
			want = burst_left;
		n = recv(s, buf, want, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				wait_ev(s, POLLIN, 1000);
				continue;
			}
			err = errno;
			break;
		}
		if (n == 0) {
			eof = 1;
			break;
		}
		if (bad < 0) {
			int64_t b = stream_check(SEED_C, rx, buf, n);

			if (b >= 0)
				bad = b;
		}
		rx += n;
		burst_left -= n;
	}
	pthread_join(t, NULL);
	oret_e("sent", w.sent, w.err);
	o("rx=%llu eof=%d err=%s pauses=%d", (unsigned long long)rx, eof, err ? ename(err) : "0",
	  pauses);
	if (bad >= 0)
		o("first_mismatch=%lld", (long long)bad);
	close(c);
	close(s);
}

/* ============================================================ semantics */

static void case_peek(int nb)
{
	char b[128];
	int c, s;
	ssize_t n;

	mk_pair(nb, &c, &s);
	if (nb) {
		sa_send(c, "hello", 5, MSG_NOSIGNAL);
		sa_send(c, "world!", 6, MSG_NOSIGNAL);
		settle();
		oioctl("fionread", s, FIONREAD);
		n = recv(s, b, 3, MSG_PEEK);
		ostr("peek3", n, b);
		n = recv(s, b, 64, MSG_PEEK);
		ostr("peek64", n, b);
		n = recv(s, b, 64, MSG_PEEK);
		ostr("peek64_again", n, b);
		n = recv(s, b, 4, 0);
		ostr("recv4", n, b);
		n = recv(s, b, 64, MSG_PEEK);
		ostr("peek_rest", n, b);
		n = recv(s, b, 64, 0);
		ostr("recv_rest", n, b);
		n = recv(s, b, 64, MSG_PEEK);
		ostr("peek_empty", n, b);
		shutdown(c, SHUT_WR);
		settle();
		n = recv(s, b, 64, MSG_PEEK);
		ostr("peek_eof", n, b);
	} else {
		struct script sc = { .a = {
			DO_STR(150, c, "hello"),
			DO_STR(550, c, "world!"),
			DO_SHUTWR(950, c),
		} };

		script_start(&sc);
		n = recv(s, b, 64, MSG_PEEK);	/* blocks until "hello" */
		ostr("peek_block", n, b);
		n = recv(s, b, 64, MSG_PEEK | MSG_DONTWAIT);
		ostr("peek_again", n, b);
		msleep(600);
		oioctl("fionread", s, FIONREAD);
		n = recv(s, b, 64, MSG_PEEK);
		ostr("peek64", n, b);
		n = recv(s, b, 4, 0);
		ostr("recv4", n, b);
		n = recv(s, b, 64, 0);
		ostr("recv_rest", n, b);
		n = recv(s, b, 64, MSG_PEEK);	/* blocks until FIN */
		ostr("peek_eof", n, b);
		script_join(&sc);
	}
	close(c);
	close(s);
}

/* SO_PEEK_OFF set before any data (early) or with data already queued. */
static void peek_off(int early)
{
	char b[128];
	int c, s;
	ssize_t n;

	mk_pair(nb_of_case(), &c, &s);
	if (early)
		oret("set_peek_off", setint(s, SOL_SOCKET, SO_PEEK_OFF, 0));
	sa_send(c, "hello", 5, MSG_NOSIGNAL);
	sa_send(c, "world!", 6, MSG_NOSIGNAL);
	settle();
	if (!early)
		oret("set_peek_off", setint(s, SOL_SOCKET, SO_PEEK_OFF, 0));
	n = recv(s, b, 3, MSG_PEEK);
	ostr("peek3", n, b);
	n = recv(s, b, 3, MSG_PEEK);
	ostr("peek3_next", n, b);
	o("peek_off=%d", getint(s, SOL_SOCKET, SO_PEEK_OFF));
	n = recv(s, b, 5, 0);
	ostr("recv5", n, b);
	o("peek_off_after_recv=%d", getint(s, SOL_SOCKET, SO_PEEK_OFF));
	n = recv(s, b, 3, MSG_PEEK);
	ostr("peek3_after_recv", n, b);
	n = recv(s, b, 64, 0);
	ostr("recv_rest", n, b);
	close(c);
	close(s);
}

static void case_peek_off(int nb)
{
	peek_off(1);
}

static void case_peek_off_mid(int nb)
{
	peek_off(0);
}

static void case_waitall(int nb)
{
	int c, s, i;
	uint64_t off = 0;

	mk_pair(nb, &c, &s);
	if (nb) {
		for (i = 0; i < 10; i++) {
			send_chunk(c, SEED_C, off, 100, 0);
			off += 100;
			msleep(20);
		}
		settle();
		/* Nonblocking: MSG_WAITALL returns what is there. */
		off = 0;
		off += orecv_check("waitall2000", s, 2000, MSG_WAITALL, SEED_C, off);
		orecv_check("waitall_empty", s, 100, MSG_WAITALL, SEED_C, off);
		send_chunk(c, SEED_C, 1000, 300, 0);
		shutdown(c, SHUT_WR);
		settle();
		orecv_check("waitall_eof", s, 1000, MSG_WAITALL, SEED_C, 1000);
		orecv_check("after_eof", s, 1000, MSG_WAITALL, SEED_C, 1300);
	} else {
		struct script sc = { .seed = SEED_C };

		for (i = 0; i < 10; i++)
			sc.a[i] = (struct act)DO_SEND(100 + 30 * i, c, 100);
		sc.a[10] = (struct act)DO_SEND(900, c, 300);
		sc.a[11] = (struct act)DO_SHUTWR(950, c);
		script_start(&sc);
		orecv_check("waitall1000", s, 1000, MSG_WAITALL, SEED_C, 0);
		orecv_check("waitall_eof", s, 1000, MSG_WAITALL, SEED_C, 1000);
		orecv_check("after_eof", s, 1000, MSG_WAITALL, SEED_C, 1300);
		script_join(&sc);
	}
	close(c);
	close(s);
}

static void case_dontwait(int nb)
{
	int c, s, eagain = 0;
	uint64_t sent = 0, t0;
	struct rx r;
	char b[8];

	mk_pair(nb, &c, &s);
	oret("recv_empty", recv(s, b, sizeof(b), MSG_DONTWAIT));
	send_chunk(c, SEED_C, 0, 500, 0);
	settle();
	orecv_check("recv_dontwait", s, 1000, MSG_DONTWAIT, SEED_C, 0);
	/* Flood with MSG_DONTWAIT until the send side refuses. */
	t0 = now_ns();
	while (sent < (512ull << 20) && ms_since(t0) < 20000) {
		ssize_t w = send_chunk(c, SEED_C, 500 + sent, 65536, MSG_DONTWAIT);

		if (w < 0) {
			if (errno == EAGAIN)
				eagain = 1;
			else
				o("flood_err=%s", ename(errno));
			break;
		}
		sent += w;
	}
	o("flood_eagain=%d", eagain);
	omask("sender_mask_when_full", c);
	recv_stream(s, SEED_C, 500, sent, &r);
	o("drained=%s%s", r.bytes == sent ? "all" : "SHORT", r.bad >= 0 ? "/MISMATCH" : "");
	oret("recv_after_drain", recv(s, b, sizeof(b), MSG_DONTWAIT));
	close(c);
	close(s);
}

static void case_fionread(int nb)
{
	int c, s;

	mk_pair(nb, &c, &s);
	oioctl("fionread_empty", s, FIONREAD);
	send_chunk(c, SEED_C, 0, 100, 0);
	send_chunk(c, SEED_C, 100, 200, 0);
	send_chunk(c, SEED_C, 300, 300, 0);
	settle();
	oioctl("fionread", s, FIONREAD);
	oioctl("siocinq", s, SIOCINQ);
	oioctl("siocoutq_sender", c, SIOCOUTQ);
	oioctl("siocoutqnsd_sender", c, SIOCOUTQNSD);
	orecv_check("recv250", s, 250, 0, SEED_C, 0);
	oioctl("fionread_after250", s, FIONREAD);
	orecv_check("recv_rest", s, 1000, 0, SEED_C, 250);
	oioctl("fionread_drained", s, FIONREAD);
	shutdown(c, SHUT_WR);
	settle();
	oioctl("fionread_eof", s, FIONREAD);
	orecv_check("recv_eof", s, 1000, 0, SEED_C, 600);
	close(c);
	close(s);
}

static void case_rcvlowat(int nb)
{
	int c, s;

	mk_pair(nb, &c, &s);
	oret("set_rcvlowat", setint(s, SOL_SOCKET, SO_RCVLOWAT, 100));
	o("rcvlowat=%d", getint(s, SOL_SOCKET, SO_RCVLOWAT));
	if (nb) {
		send_chunk(c, SEED_C, 0, 50, 0);
		settle();
		omask("mask50", s);
		send_chunk(c, SEED_C, 50, 60, 0);
		settle();
		omask("mask110", s);
		orecv_check("recv110", s, 1000, 0, SEED_C, 0);
		send_chunk(c, SEED_C, 110, 20, 0);
		settle();
		omask("mask20", s);
		orecv_check("recv20_nb", s, 1000, 0, SEED_C, 110);
		send_chunk(c, SEED_C, 130, 30, 0);
		shutdown(c, SHUT_WR);
		settle();
		omask("mask_eof", s);
		orecv_check("recv30", s, 1000, 0, SEED_C, 130);
		orecv_check("recv_eof", s, 1000, 0, SEED_C, 160);
	} else {
		struct script sc = { .seed = SEED_C, .a = {
			DO_SEND(100, c, 50),
			DO_SEND(400, c, 60),
			DO_SEND(800, c, 20),
			DO_SEND(1100, c, 30),
			DO_SHUTWR(1100, c),
		} };

		script_start(&sc);
		orecv_check("recv_block", s, 1000, 0, SEED_C, 0);	/* 110 at t=400 */
		orecv_check("recv_block2", s, 1000, 0, SEED_C, 110);	/* 50 at EOF */
		orecv_check("recv_eof", s, 1000, 0, SEED_C, 160);
		script_join(&sc);
	}
	close(c);
	close(s);
}

/* SO_RCVLOWAT raised while redirected-eligible bytes sit unread. */
static void case_rcvlowat_mid(int nb)
{
	int c, s;

	mk_pair(nb, &c, &s);
	send_chunk(c, SEED_C, 0, 50, 0);
	settle();
	omask("mask50_lowat1", s);
	oret("set_rcvlowat", setint(s, SOL_SOCKET, SO_RCVLOWAT, 100));
	settle();
	omask("mask50_lowat100", s);
	send_chunk(c, SEED_C, 50, 60, 0);
	settle();
	omask("mask110", s);
	oioctl("fionread", s, FIONREAD);
	{
		ssize_t n = orecv_check("recv", s, 1000, 0, SEED_C, 0);

		orecv_check("recv_more", s, 1000, MSG_DONTWAIT, SEED_C, n > 0 ? n : 0);
	}
	close(c);
	close(s);
}

static void case_rcvtimeo(int nb)
{
	struct timeval tv = { 0, 300 * 1000 };
	uint64_t t0;
	long el;
	char b[64];
	int c, s;

	mk_pair(nb, &c, &s);
	oret("set_rcvtimeo", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	t0 = now_ns();
	oret("recv_empty", recv(s, b, sizeof(b), 0));
	el = ms_since(t0);
	/* Blocking: waited the timeout; nonblocking: returned at once. */
	o("waited=%s", el >= 250 ? "timeout" : el < 100 ? "no" : "partial");
	if (nb) {
		sa_send(c, "0123456789", 10, MSG_NOSIGNAL);
		settle();
		ostr("recv_data", recv(s, b, sizeof(b), 0), b);
	} else {
		struct script sc = { .a = { DO_STR(100, c, "0123456789") } };

		script_start(&sc);
		ostr("recv_data", recv(s, b, sizeof(b), 0), b);
		script_join(&sc);
	}
	t0 = now_ns();
	oret("recv_empty_again", recv(s, b, sizeof(b), 0));
	el = ms_since(t0);
	o("waited_again=%s", el >= 250 ? "timeout" : el < 100 ? "no" : "partial");
	close(c);
	close(s);
}

/* A blocking recv() on s in a thread, result into *r. */
struct blk_recv {
	int fd;
	ssize_t n;
	int err;
	char buf[128];
};

static void *blk_recv_thread(void *arg)
{
	struct blk_recv *r = arg;

	r->n = recv(r->fd, r->buf, sizeof(r->buf), 0);
	r->err = errno;
	return NULL;
}

/*
 * Nonblocking connection turned blocking (fcntl) after bytes were
 * exchanged, then a blocking recv() is interrupted before data comes:
 * how = 0 by a SA_RESTART signal, 1 by the reader's own SHUT_WR being
 * acked (state change wakeup). fresh: switch right after accept, before
 * any data. On TCP the recv() keeps waiting and returns the data.
 */
static void nb2blk(int how, int fresh)
{
	struct blk_recv r = { 0 };
	pthread_t t;
	char b[64];
	int c, s;

	install_usr1();
	mk_pair(1, &c, &s);
	if (!fresh) {
		sa_send(c, "ping", 4, MSG_NOSIGNAL);
		settle();
		ostr("recv_nb", recv(s, b, sizeof(b), 0), b);
		sa_send(s, "pong", 4, MSG_NOSIGNAL);
		settle();
		ostr("cli_recv_nb", recv(c, b, sizeof(b), 0), b);
	}
	set_nonblock(s, 0);
	r.fd = s;
	pthread_create(&t, NULL, blk_recv_thread, &r);
	msleep(200);
	if (how == 0)
		pthread_kill(t, SIGUSR1);
	else
		shutdown(s, SHUT_WR);
	msleep(300);
	sa_send(c, "0123456789", 10, MSG_NOSIGNAL);
	pthread_join(t, NULL);
	if (r.n < 0)
		o("blocking_recv=%zd/%s", r.n, ename(r.err));
	else
		o("blocking_recv=%zd:%.*s", r.n, (int)r.n, r.buf);
	ostr("recv_after", recv(s, b, sizeof(b), MSG_DONTWAIT), b);
	if (how == 1)
		ostr("cli_recv_eof", recv(c, b, sizeof(b), 0), b);
	close(c);
	close(s);
}

static void case_nb2blk_signal(int nb)
{
	nb2blk(0, 0);
}

static void case_nb2blk_wakeup(int nb)
{
	nb2blk(1, 0);
}

static void case_nb2blk_fresh(int nb)
{
	nb2blk(0, 1);
}

static void case_poll_events(int nb)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET }, out[4];
	char m[64], b[64];
	int c, s, et, n;

	mk_pair(nb, &c, &s);
	settle();
	omask("idle", s);
	et = epoll_create1(EPOLL_CLOEXEC);
	epoll_ctl(et, EPOLL_CTL_ADD, s, &ev);
	n = epoll_wait(et, out, 4, 0);
	o("et_initial=%s", n == 1 ? maskstr(out[0].events, m) : n == 0 ? "none" : "ERR");
	n = epoll_wait(et, out, 4, 0);
	o("et_initial_again=%s", n == 1 ? maskstr(out[0].events, m) : n == 0 ? "none" : "ERR");
	sa_send(c, "0123456789", 10, MSG_NOSIGNAL);
	settle();
	omask("data", s);
	n = epoll_wait(et, out, 4, 0);
	o("et_data=%s", n == 1 ? maskstr(out[0].events, m) : n == 0 ? "none" : "ERR");
	n = epoll_wait(et, out, 4, 0);
	o("et_data_again=%s", n == 1 ? maskstr(out[0].events, m) : n == 0 ? "none" : "ERR");
	ostr("recv", recv(s, b, sizeof(b), 0), b);
	omask("drained", s);
	shutdown(c, SHUT_WR);
	settle();
	omask("peer_shutwr", s);
	n = epoll_wait(et, out, 4, 0);
	o("et_shutwr=%s", n == 1 ? maskstr(out[0].events, m) : n == 0 ? "none" : "ERR");
	ostr("recv_eof", recv(s, b, sizeof(b), 0), b);
	oret("peer_send_after_shutwr", sa_send(c, "x", 1, MSG_NOSIGNAL));
	settle();
	/* Nothing may follow EOF. */
	ostr("recv_after_eof", recv(s, b, sizeof(b), MSG_DONTWAIT), b);
	omask("after_eof", s);
	sa_send(s, "01234567890123456789", 20, MSG_NOSIGNAL);
	settle();
	omask("cli_data", c);
	close(s);
	settle();
	omask("cli_peer_closed", c);
	ostr("cli_recv", recv(c, b, sizeof(b), 0), b);
	ostr("cli_recv_eof", recv(c, b, sizeof(b), 0), b);
	close(et);
	close(c);
}

static void case_epollout(int nb)
{
	struct epoll_event ev = { .events = EPOLLOUT }, out[2];
	uint64_t sent = 0, t0;
	int c, s, ep, n, eagain = 0;
	struct rx r;

	mk_pair(nb, &c, &s);
	ep = epoll_create1(EPOLL_CLOEXEC);
	epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
	n = epoll_wait(ep, out, 2, 0);
	o("out_idle=%d", n);
	t0 = now_ns();
	while (sent < (512ull << 20) && ms_since(t0) < 20000) {
		ssize_t w = send_chunk(c, SEED_C, sent, 65536, MSG_DONTWAIT);

		if (w < 0) {
			eagain = errno == EAGAIN;
			break;
		}
		sent += w;
	}
	o("full_eagain=%d", eagain);
	n = epoll_wait(ep, out, 2, 0);
	o("out_when_full=%d", n);
	recv_stream(s, SEED_C, 0, sent, &r);
	o("drained=%s%s", r.bytes == sent ? "all" : "SHORT", r.bad >= 0 ? "/MISMATCH" : "");
	n = epoll_wait(ep, out, 2, 3000);
	o("out_after_drain=%d", n);
	close(ep);
	close(c);
	close(s);
}

/*
 * A socket closed with unread data: plain TCP sends RST instead of FIN
 * (tcp_close()). closer_is_server: the server holds the unread bytes.
 */
static void close_unread(int nb, int closer_is_server)
{
	char b[256];
	int c, s, writer, closer;

	mk_pair(nb, &c, &s);
	writer = closer_is_server ? c : s;
	closer = closer_is_server ? s : c;
	send_chunk(writer, SEED_C, 0, 100, 0);
	settle();
	oioctl("closer_fionread", closer, FIONREAD);
	close(closer);
	settle();
	omask("peer_mask", writer);
	oret("peer_recv", recv(writer, b, sizeof(b), 0));
	oret("peer_recv2", recv(writer, b, sizeof(b), 0));
	oret("peer_send", sa_send(writer, "x", 1, MSG_NOSIGNAL));
	o("peer_so_error=%d", getint(writer, SOL_SOCKET, SO_ERROR));
	close(writer);
}

static void case_close_unread(int nb)
{
	close_unread(nb, 1);
}

static void case_close_unread_cli(int nb)
{
	close_unread(nb, 0);
}

static void case_linger0(int nb)
{
	struct linger lg = { 1, 0 };
	char b[256];
	int c, s;

	mk_pair(nb, &c, &s);
	send_chunk(s, SEED_S, 0, 100, 0);
	send_chunk(c, SEED_C, 0, 50, 0);
	settle();
	oret("set_linger", setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	/* The server read what it got first: only the RST itself matters. */
	orecv_check("srv_recv", s, 1000, 0, SEED_C, 0);
	oret("close", close(s));
	settle();
	omask("cli_mask", c);
	orecv_check("cli_recv", c, sizeof(b), 0, SEED_S, 0);
	oret("cli_recv2", recv(c, b, sizeof(b), 0));
	oret("cli_recv3", recv(c, b, sizeof(b), 0));
	oret("cli_send", sa_send(c, "x", 1, MSG_NOSIGNAL));
	close(c);
}

static void case_shut_rd(int nb)
{
	char b[256];
	int c, s;

	mk_pair(nb, &c, &s);
	send_chunk(c, SEED_C, 0, 30, 0);
	settle();
	oret("shut_rd", shutdown(s, SHUT_RD));
	omask("mask", s);
	orecv_check("recv_queued", s, sizeof(b), 0, SEED_C, 0);
	orecv_check("recv_after", s, sizeof(b), 0, SEED_C, 30);
	oret("peer_send", send_chunk(c, SEED_C, 30, 40, 0));
	settle();
	omask("mask_new_data", s);
	oioctl("fionread", s, FIONREAD);
	orecv_check("recv_new", s, sizeof(b), 0, SEED_C, 30);
	oret("srv_send", send_chunk(s, SEED_S, 0, 10, 0));
	settle();
	orecv_check("cli_recv", c, sizeof(b), MSG_DONTWAIT, SEED_S, 0);
	close(c);
	settle();
	omask("mask_peer_closed", s);
	orecv_check("recv_peer_closed", s, sizeof(b), 0, SEED_C, 70);
	close(s);
}

/* Data from a file via sendfile(); the reader checks every byte. */
struct sink1 {
	int fd;
	uint64_t seed, len;
	struct rx r;
};

static void *sink1_thread(void *arg)
{
	struct sink1 *k = arg;

	recv_stream(k->fd, k->seed, 0, k->len + 1, &k->r);
	return NULL;
}

static int stream_memfd(uint64_t seed, size_t len)
{
	int fd = memfd_create("sacompat", MFD_CLOEXEC);
	uint8_t buf[65536];
	size_t off = 0;

	if (fd < 0)
		fatal("memfd_create");
	while (off < len) {
		size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);

		stream_fill(seed, off, buf, n);
		if (write(fd, buf, n) != (ssize_t)n)
			fatal("write memfd");
		off += n;
	}
	return fd;
}

static void case_sendfile(int nb)
{
	size_t len = 3 << 20;
	struct sink1 k = { .seed = SEED_C, .len = len };
	int c, s, mfd = stream_memfd(SEED_C, len), calls = 0, err = 0;
	off_t off = 0;
	pthread_t t;
	uint64_t t0 = now_ns();

	mk_pair(nb, &c, &s);
	k.fd = s;
	pthread_create(&t, NULL, sink1_thread, &k);
	while ((size_t)off < len && ms_since(t0) < 30000) {
		ssize_t n = sa_sendfile(c, mfd, &off, len - off > (1 << 20) ? 1 << 20 : len - off);

		calls++;
		if (n < 0) {
			if (errno == EAGAIN) {
				wait_ev(c, POLLOUT, 1000);
				continue;
			}
			err = errno;
			break;
		}
		if (n == 0)
			break;
	}
	o("sendfile_off=%lld err=%s", (long long)off, err ? ename(err) : "0");
	shutdown(c, SHUT_WR);
	pthread_join(t, NULL);
	orx("srv_rx", &k.r);
	close(mfd);
	close(c);
	close(s);
}

static void case_splice_send(int nb)
{
	size_t len = 2 << 20, off = 0;
	struct sink1 k = { .seed = SEED_C, .len = len };
	int c, s, p[2], err = 0;
	pthread_t t;
	uint64_t t0 = now_ns();
	uint8_t buf[65536];

	if (pipe2(p, O_CLOEXEC))
		fatal("pipe");
	mk_pair(nb, &c, &s);
	k.fd = s;
	pthread_create(&t, NULL, sink1_thread, &k);
	while (off < len && !err && ms_since(t0) < 30000) {
		size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf), inpipe;

		stream_fill(SEED_C, off, buf, n);
		if (write(p[1], buf, n) != (ssize_t)n)
			fatal("write pipe");
		inpipe = n;
		while (inpipe && ms_since(t0) < 30000) {
			ssize_t w = count_sent(splice(p[0], NULL, c, NULL, inpipe, SPLICE_F_MOVE));

			if (w < 0) {
				if (errno == EAGAIN) {
					wait_ev(c, POLLOUT, 1000);
					continue;
				}
				err = errno;
				break;
			}
			inpipe -= w;
			off += w;
		}
	}
	o("spliced=%zu err=%s", off, err ? ename(err) : "0");
	shutdown(c, SHUT_WR);
	pthread_join(t, NULL);
	orx("srv_rx", &k.r);
	close(p[0]);
	close(p[1]);
	close(c);
	close(s);
}

/*
 * splice() from socket s into a pipe until EOF, checking the stream from
 * offset off; prints "<key>=BYTES eof= stalled= bad= err=".
 */
static uint64_t splice_until_eof(const char *key, int s, int nb, uint64_t off)
{
	uint64_t got = 0, last = now_ns(), eagains = 0;
	int p[2], eof = 0, stalled = 0, bad = 0, err = 0;
	uint8_t buf[65536];

	if (pipe2(p, O_CLOEXEC))
		fatal("pipe");
	while (!eof && !err) {
		ssize_t n;

		if (ms_since(last) > 2000) {
			stalled = 1;
			break;
		}
		/* As Go's spliceDrain(): splice() first, wait only on EAGAIN. */
		n = splice(s, NULL, p[1], NULL, sizeof(buf), nb ? SPLICE_F_NONBLOCK : 0);
		if (n < 0) {
			if (errno == EAGAIN) {
				eagains++;
				if (nb)
					wait_ev(s, POLLIN, 500);
				if (eagains % 64 == 0)
					msleep(1);
				continue;
			}
			err = errno;
			break;
		}
		if (n == 0) {
			eof = 1;
			break;
		}
		if (read(p[0], buf, n) != n)
			fatal("read pipe");
		if (stream_check(SEED_C, off + got, buf, n) >= 0)
			bad = 1;
		got += n;
		last = now_ns();
	}
	o("%s=%llu eof=%d stalled=%d bad=%d err=%s", key, (unsigned long long)got, eof, stalled,
	  bad, err ? ename(err) : "0");
	close(p[0]);
	close(p[1]);
	return got;
}

/*
 * splice() from the socket into a pipe on the receiver. tcp_splice_read()
 * reads only sk_receive_queue: bytes redirected into the psock are
 * invisible to it. The guard (bpf/guard.bpf.c) keeps splice readers on
 * TCP: the outcome must be plain TCP's.
 */
static void case_splice_recv(int nb)
{
	size_t len = 256 << 10;
	struct script sc = { .seed = SEED_C };
	uint64_t got;
	int c, s;

	mk_pair(nb, &c, &s);
	sc.a[0] = (struct act)DO_SEND(50, c, len);
	sc.a[1] = (struct act)DO_SHUTWR(50, c);
	script_start(&sc);
	got = splice_until_eof("spliced", s, nb, 0);
	script_join(&sc);
	{
		struct rx r;

		/* Bytes splice() did not deliver: does recv() see them? */
		recv_stream(s, SEED_C, got, len + 1, &r);
		orx("recv_after", &r);
	}
	close(c);
	close(s);
}

/*
 * A program that splices only sometimes: it reads the first part with
 * recv() (on the fast path once trusted), then switches the same socket
 * to splice() for the rest (an upgrade), calling splice() before it waits,
 * as Go does. The guard stops redirects to it at that first splice(),
 * which finds nothing unread, and the socket leaves the sockhash: every
 * byte arrives, in order. (A program that first waits for readability and
 * then splices for the first time would find redirected bytes unread:
 * the guard kills it; see docs/kernel-limitations.md, row 9.)
 */
static void case_splice_switch(int nb)
{
	size_t first = 64 << 10, rest = 256 << 10;
	struct script sc = { .seed = SEED_C };
	struct rx r;
	int c, s;

	mk_pair(nb, &c, &s);
	sc.a[0] = (struct act)DO_SEND(20, c, first);
	sc.a[1] = (struct act)DO_SEND(300, c, rest);
	sc.a[2] = (struct act)DO_SHUTWR(300, c);
	script_start(&sc);
	recv_stream(s, SEED_C, 0, first, &r);
	orx("recv_first", &r);
	splice_until_eof("spliced_rest", s, nb, first);
	script_join(&sc);
	close(c);
	close(s);
}

static void case_nodelay_cork(int nb)
{
	struct sink1 k = { .seed = SEED_C, .len = 450 };
	int c, s, i;
	pthread_t t;
	uint64_t off = 0;

	mk_pair(nb, &c, &s);
	k.fd = s;
	oret("set_nodelay", setint(c, IPPROTO_TCP, TCP_NODELAY, 1));
	o("nodelay=%d", getint(c, IPPROTO_TCP, TCP_NODELAY));
	oret("set_cork", setint(c, IPPROTO_TCP, TCP_CORK, 1));
	o("cork=%d", getint(c, IPPROTO_TCP, TCP_CORK));
	for (i = 0; i < 3; i++, off += 100)
		send_chunk(c, SEED_C, off, 100, 0);
	send_chunk(c, SEED_C, off, 50, MSG_MORE);
	off += 50;
	oret("unset_cork", setint(c, IPPROTO_TCP, TCP_CORK, 0));
	o("cork_after=%d", getint(c, IPPROTO_TCP, TCP_CORK));
	for (i = 0; i < 100; i++, off++)
		send_chunk(c, SEED_C, off, 1, 0);
	shutdown(c, SHUT_WR);
	pthread_create(&t, NULL, sink1_thread, &k);
	pthread_join(t, NULL);
	orx("srv_rx", &k.r);
	close(c);
	close(s);
}

/* TCP Fast Open: 1st connection gets a cookie, 2nd sends data in the SYN, 3rd via TCP_FASTOPEN_CONNECT. */
struct tfo_srv {
	int lfd, nb;
	struct rx r[3];
	ssize_t reply[3];
	int reply_err[3];
};

static void *tfo_server(void *arg)
{
	struct tfo_srv *a = arg;
	int i;

	for (i = 0; i < 3; i++) {
		int fd = do_accept(a->lfd, a->nb);

		recv_stream(fd, SEED_C + i, 0, 50100 + 1, &a->r[i]);
		a->reply[i] = send_stream(fd, SEED_S + i, 0, 1000, 0, NULL);
		a->reply_err[i] = errno;
		close(fd);
	}
	return NULL;
}

static void case_tfo(int nb)
{
	struct tfo_srv a;
	pthread_t st;
	char k[32];
	int i;

	{
		FILE *f = fopen("/proc/sys/net/ipv4/tcp_fastopen", "r");
		int v = -1;

		if (f) {
			if (fscanf(f, "%d", &v) != 1)
				v = -1;
			fclose(f);
		}
		o("sysctl_tcp_fastopen=%d", v);
	}
	memset(&a, 0, sizeof(a));
	a.lfd = mk_listener_opt(nb, 16);
	a.nb = nb;
	pthread_create(&st, NULL, tfo_server, &a);
	for (i = 0; i < 3; i++) {
		uint8_t buf[100];
		int fd = mk_socket(nb);
		ssize_t n, rest;
		struct tcp_info ti;
		socklen_t tl = sizeof(ti);
		struct rx r;

		stream_fill(SEED_C + i, 0, buf, sizeof(buf));
		if (i < 2) {
			n = sa_sendto(fd, buf, sizeof(buf), MSG_FASTOPEN | MSG_NOSIGNAL,
				   (void *)&g_srv, g_srvlen);
			snprintf(k, sizeof(k), "c%d_sendto", i);
			oret(k, n);
		} else {
			snprintf(k, sizeof(k), "c%d_connect", i);
			oret("c2_set_fastopen_connect", setint(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1));
			oret(k, connect(fd, (void *)&g_srv, g_srvlen));
			n = sa_send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
			snprintf(k, sizeof(k), "c%d_send", i);
			oret(k, n);
		}
		if (n < 0)
			n = 0;	/* EINPROGRESS: nothing sent yet */
		rest = send_stream(fd, SEED_C + i, n, 50100 - n, 0, NULL);
		snprintf(k, sizeof(k), "c%d_rest", i);
		oret(k, rest);
		shutdown(fd, SHUT_WR);
		recv_stream(fd, SEED_S + i, 0, 1001, &r);
		snprintf(k, sizeof(k), "c%d_rx", i);
		orx(k, &r);
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0)
			o("c%d_syn_data=%d", i, !!(ti.tcpi_options & TCPI_OPT_SYN_DATA));
		close(fd);
	}
	pthread_join(st, NULL);
	for (i = 0; i < 3; i++) {
		snprintf(k, sizeof(k), "s%d_rx", i);
		orx(k, &a.r[i]);
		snprintf(k, sizeof(k), "s%d_reply", i);
		oret_e(k, a.reply[i], a.reply_err[i]);
	}
	close(a.lfd);
}

/* ------------------------------------------------------------ io_uring */

/*
 * One-request io_uring, raw syscalls (no liburing): enough to submit a
 * SPLICE or a SEND and wait for its completion.
 */
struct uring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static int uring_init(struct uring *u)
{
	struct io_uring_params pr = { 0 };
	void *sq, *cq;

	u->fd = syscall(__NR_io_uring_setup, 4, &pr);
	if (u->fd < 0)
		return -1;
	sq = mmap(NULL, pr.sq_off.array + pr.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQ_RING);
	cq = mmap(NULL, pr.cq_off.cqes + pr.cq_entries * sizeof(struct io_uring_cqe),
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_CQ_RING);
	u->sqes = mmap(NULL, pr.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || u->sqes == MAP_FAILED)
		return -1;
	u->sq_tail = sq + pr.sq_off.tail;
	u->sq_mask = sq + pr.sq_off.ring_mask;
	u->sq_array = sq + pr.sq_off.array;
	u->cq_head = cq + pr.cq_off.head;
	u->cq_tail = cq + pr.cq_off.tail;
	u->cq_mask = cq + pr.cq_off.ring_mask;
	u->cqes = cq + pr.cq_off.cqes;
	return 0;
}

/* Submit sqe, wait up to ms for its completion: its res, or -ETIME. */
static int uring_run(struct uring *u, const struct io_uring_sqe *sqe, int ms)
{
	unsigned tail = *u->sq_tail, idx = tail & *u->sq_mask, head;
	uint64_t t0 = now_ns();
	int res;

	u->sqes[idx] = *sqe;
	u->sq_array[idx] = idx;
	__atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, u->fd, 1, 0, 0, NULL, 0) < 0)
		return -errno;
	for (;;) {
		head = *u->cq_head;
		if (head != __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE))
			break;
		if (ms_since(t0) > (uint64_t)ms)
			return -ETIME;
		syscall(__NR_io_uring_enter, u->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
	}
	res = u->cqes[head & *u->cq_mask].res;
	__atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

/*
 * A reader that splices with io_uring (IORING_OP_SPLICE, which reads like
 * splice(): tcp_splice_read()) after the sender's bytes are queued, then
 * recv()s whatever splice did not deliver.
 */
static void case_uring_splice(int nb)
{
	size_t len = 256 << 10;
	struct script sc = { .seed = SEED_C };
	uint64_t got = 0, t0;
	struct uring u;
	uint8_t buf[65536];
	int c, s, p[2], eof = 0, bad = 0, res = 0;
	struct rx r;

	if (uring_init(&u) || pipe2(p, O_CLOEXEC))
		fatal("io_uring_setup");
	mk_pair(nb, &c, &s);
	sc.a[0] = (struct act)DO_SEND(20, c, len);
	sc.a[1] = (struct act)DO_SHUTWR(20, c);
	script_start(&sc);
	msleep(200);
	t0 = now_ns();
	while (!eof && ms_since(t0) < 2000) {
		struct io_uring_sqe q = { .opcode = IORING_OP_SPLICE, .fd = p[1],
					  .len = sizeof(buf), .splice_fd_in = s,
					  .splice_off_in = (uint64_t)-1, .off = (uint64_t)-1,
					  .splice_flags = SPLICE_F_NONBLOCK };

		res = uring_run(&u, &q, 500);
		if (res == -EAGAIN) {
			wait_ev(s, POLLIN, 100);
			continue;
		}
		if (res <= 0) {
			eof = res == 0;
			break;
		}
		if (read(p[0], buf, res) != res)
			fatal("read pipe");
		if (stream_check(SEED_C, got, buf, res) >= 0)
			bad = 1;
		got += res;
	}
	script_join(&sc);
	o("uring_spliced=%llu eof=%d bad=%d last=%s", (unsigned long long)got, eof, bad,
	  res < 0 ? ename(-res) : "0");
	recv_stream(s, SEED_C, got, len + 1, &r);
	orx("recv_after", &r);
	close(c);
	close(s);
}

/* Urgent data sent with io_uring (IORING_OP_SEND, MSG_OOB): never a send*() syscall. */
static void case_uring_oob(int nb)
{
	struct io_uring_sqe q = { .opcode = IORING_OP_SEND, .len = 1, .msg_flags = MSG_OOB };
	struct uring u;
	char b[64];
	int c, s;

	if (uring_init(&u))
		fatal("io_uring_setup");
	mk_pair(nb, &c, &s);
	sa_send(c, "abc", 3, MSG_NOSIGNAL);
	settle();
	ostr("recv0", recv(s, b, sizeof(b), 0), b);
	q.fd = c;
	q.addr = (uint64_t)(uintptr_t)"X";
	o("send_oob=%d", uring_run(&u, &q, 2000));
	sa_send(c, "def", 3, MSG_NOSIGNAL);
	settle();
	omask("mask", s);
	oioctl("atmark", s, SIOCATMARK);
	ostr("recv_oob", recv(s, b, 1, MSG_OOB), b);
	ostr("recv1", recv(s, b, sizeof(b), 0), b);
	close(c);
	close(s);
}

/*
 * Zerocopy receive (tcp_mmap(), TCP_ZEROCOPY_RECEIVE): whole pages are
 * mapped, the rest (recv_skip_hint) read with recv(), as
 * tools/testing/selftests/net/tcp_mmap.c does.
 */
static void case_zerocopy_rx(int nb)
{
	size_t len = 1 << 20, chunk = 1 << 20;
	struct script sc = { .seed = SEED_C };
	uint64_t got = 0, mapped = 0, t0;
	uint8_t *buf = malloc(chunk);
	int c, s, bad = 0, eof = 0, err = 0;
	void *addr;

	mk_pair(nb, &c, &s);
	sc.a[0] = (struct act)DO_SEND(20, c, len);
	sc.a[1] = (struct act)DO_SHUTWR(20, c);
	script_start(&sc);
	msleep(200);
	addr = mmap(NULL, chunk, PROT_READ, MAP_SHARED, s, 0);
	o("mmap=%s", addr == MAP_FAILED ? ename(errno) : "ok");
	t0 = now_ns();
	while (!eof && !err && ms_since(t0) < 3000) {
		struct tcp_zerocopy_receive zc = { 0 };
		socklen_t zl = sizeof(zc);
		ssize_t n;

		if (addr != MAP_FAILED) {
			zc.address = (uint64_t)(uintptr_t)addr;
			zc.length = chunk;
			/* Refused (EIO at EOF, say): read the rest with recv(). */
			if (getsockopt(s, IPPROTO_TCP, TCP_ZEROCOPY_RECEIVE, &zc, &zl)) {
				munmap(addr, chunk);
				addr = MAP_FAILED;
				continue;
			}
			if (zc.length) {
				if (stream_check(SEED_C, got, addr, zc.length) >= 0)
					bad = 1;
				got += zc.length;
				mapped += zc.length;
				madvise(addr, chunk, MADV_DONTNEED);
			}
			if (zc.length && !zc.recv_skip_hint)
				continue;
		}
		n = recv(s, buf, zc.recv_skip_hint ? zc.recv_skip_hint : chunk, 0);
		if (n < 0) {
			if (errno == EAGAIN) {
				wait_ev(s, POLLIN, 200);
				continue;
			}
			err = errno;
		} else if (n == 0) {
			eof = 1;
		} else {
			if (stream_check(SEED_C, got, buf, n) >= 0)
				bad = 1;
			got += n;
		}
	}
	script_join(&sc);
	/* How much was mapped rather than copied depends on page alignment: not compared. */
	(void)mapped;
	o("received=%llu eof=%d bad=%d err=%s", (unsigned long long)got, eof, bad,
	  err ? ename(err) : "0");
	if (addr != MAP_FAILED)
		munmap(addr, chunk);
	free(buf);
	close(c);
	close(s);
}

/*
 * MSG_ZEROCOPY sends (SO_ZEROCOPY set after connect, or before it: early),
 * as a careful program does them: if the kernel refuses SO_ZEROCOPY it
 * sends normally and expects no completions; otherwise it waits until
 * the completions cover every send. What the kernel chose goes to the
 * "info:" line, not the outcome: both are correct TCP behaviour.
 */
static int g_zc_enabled = -1;

static void zerocopy_tx(int nb, int early)
{
	/* One buffer per send: a zerocopy send's pages are the caller's until completed. */
	static uint8_t buf[10][65536];
	int c, s, lfd, i, sends = 10, one = 1, zc;
	uint32_t lo = ~0u, hi = 0, notes = 0, copied = 0, calls = 0;
	uint64_t t0;
	struct rx r;

	lfd = mk_listener(nb);
	c = mk_socket(nb);
	zc = early ? setsockopt(c, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) : 1;
	if (connect(c, (struct sockaddr *)&g_srv, g_srvlen) && errno != EINPROGRESS)
		fatal("connect");
	wait_ev(c, POLLOUT, IO_WAIT_MS);
	s = do_accept(lfd, nb);
	close(lfd);
	settle();
	if (!early)
		zc = setsockopt(c, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one));
	g_zc_enabled = zc == 0;
	for (i = 0; i < sends; i++) {
		size_t done = 0;

		stream_fill(SEED_C, (uint64_t)i * sizeof(buf[i]), buf[i], sizeof(buf[i]));
		t0 = now_ns();
		while (done < sizeof(buf[i]) && ms_since(t0) < IO_WAIT_MS) {
			ssize_t w = sa_send(c, buf[i] + done, sizeof(buf[i]) - done,
					 MSG_NOSIGNAL | (g_zc_enabled ? MSG_ZEROCOPY : 0));

			if (w < 0) {
				if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
					break;
				wait_ev(c, POLLOUT, 100);
				continue;
			}
			done += w;
			calls++;
		}
	}
	shutdown(c, SHUT_WR);
	recv_stream(s, SEED_C, 0, (uint64_t)sends * sizeof(buf[0]) + 1, &r);
	orx("rx", &r);
	/* Completions: the error queue's ranges cover calls 0..calls-1. */
	t0 = now_ns();
	while (g_zc_enabled && calls && (hi < calls - 1 || lo != 0) && ms_since(t0) < 2000) {
		char ctrl[128];
		struct msghdr m = { .msg_control = ctrl, .msg_controllen = sizeof(ctrl) };
		struct cmsghdr *cm;

		if (recvmsg(c, &m, MSG_ERRQUEUE) < 0) {
			wait_ev(c, POLLERR, 100);
			continue;
		}
		for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
			struct sock_extended_err *ee = (void *)CMSG_DATA(cm);

			if (ee->ee_origin != SO_EE_ORIGIN_ZEROCOPY)
				continue;
			notes++;
			if (ee->ee_info < lo)
				lo = ee->ee_info;
			if (ee->ee_data > hi)
				hi = ee->ee_data;
			if (ee->ee_code & SO_EE_CODE_ZEROCOPY_COPIED)
				copied++;
		}
	}
	(void)notes;
	(void)copied;
	o("completions_ok=%d", g_zc_enabled ? (calls && lo == 0 && hi == calls - 1) : 1);
	close(c);
	close(s);
}

static void case_zerocopy_tx(int nb)
{
	zerocopy_tx(nb, 0);
}

static void case_zerocopy_tx_early(int nb)
{
	zerocopy_tx(nb, 1);
}

/* ------------------------------------------------------------ kTLS */

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/*
 * kTLS with fixed keys (no handshake: both ends are this program). AES-GCM
 * with a fixed key and sequence numbers makes the same records every run,
 * so the receiver can compare what it read byte for byte. Where the kernel
 * has no tls module, every call answers ENOENT, plain and accelerated.
 */
static int ktls_on(int fd, int dir)
{
	struct tls12_crypto_info_aes_gcm_128 ci = { 0 };

	ci.info.version = TLS_1_2_VERSION;
	ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
	memcpy(ci.key, "0123456789abcdef", sizeof(ci.key));
	memcpy(ci.iv, "ivivivi!", sizeof(ci.iv));
	memcpy(ci.salt, "salt", sizeof(ci.salt));
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")))
		return -1;
	return setsockopt(fd, SOL_TLS, dir, &ci, sizeof(ci));
}

/* FNV-1a over what the reader got: records or plaintext, compared whole. */
static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	while (n--)
		h = (h ^ *p++) * 0x100000001b3ull;
	return h;
}

static void ktls_case(int nb, int both)
{
	static uint8_t buf[1 << 16];
	uint64_t h = 0xcbf29ce484222325ull, got = 0, want, t0;
	int c, s, i, r;

	mk_pair(nb, &c, &s);
	settle();
	r = ktls_on(c, TLS_TX);
	oret("client_ktls_tx", r);
	if (both)
		oret("server_ktls_rx", ktls_on(s, TLS_RX));
	for (i = 0; i < 32; i++) {
		stream_fill(SEED_C, (uint64_t)i * 4096, buf, 4096);
		if (send_all(c, buf, 4096) != 4096)
			break;
	}
	o("sent=%d", i);
	t0 = now_ns();
	/* A userspace reader of a kTLS sender gets each 4096-byte send as one
	 * record (5-byte header, 8-byte explicit nonce, 16-byte tag); a kTLS
	 * reader, or any reader of a plain sender, the 4096 bytes. */
	want = r || both ? 32u * 4096 : 32u * (4096 + 29);
	while (got < want && ms_since(t0) < 3000) {
		ssize_t n = recv(s, buf, sizeof(buf), 0);

		if (n > 0) {
			h = fnv(h, buf, n);
			got += n;
		} else if (n < 0 && errno == EAGAIN) {
			wait_ev(s, POLLIN, 200);
		} else {
			oret("recv_end", n);
			break;
		}
	}
	/* Userspace TLS readers see records; kTLS readers the plaintext. */
	o("received=%llu hash=%016llx", (unsigned long long)got, (unsigned long long)h);
	close(c);
	close(s);
}

static void case_ktls_tx(int nb)
{
	ktls_case(nb, 0);
}

static void case_ktls_both(int nb)
{
	ktls_case(nb, 1);
}

/*
 * TCP_REPAIR on a connected, drained socket (what CRIU does to dump one),
 * its send queue's sequence read, repair off, then both directions again.
 * The socket leaves the sockhash before repair applies (sockopt.bpf.c).
 */
static void case_repair(int nb)
{
	int c, s, on = 1, off = 0, q = TCP_SEND_QUEUE;
	unsigned int seq;
	socklen_t l = sizeof(seq);
	char b[64];

	mk_pair(nb, &c, &s);
	sa_send(c, "abc", 3, MSG_NOSIGNAL);
	settle();
	ostr("recv1", recv(s, b, sizeof(b), 0), b);
	oret("repair_on", setsockopt(c, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)));
	oret("repair_queue", setsockopt(c, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)));
	oret("queue_seq", getsockopt(c, IPPROTO_TCP, TCP_QUEUE_SEQ, &seq, &l));
	oret("repair_off", setsockopt(c, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)));
	oret("send2", sa_send(c, "def", 3, MSG_NOSIGNAL));
	oret("send3", sa_send(s, "xyz", 3, MSG_NOSIGNAL));
	settle();
	ostr("recv2", recv(s, b, sizeof(b), 0), b);
	ostr("recv3", recv(c, b, sizeof(b), 0), b);
	close(c);
	close(s);
}

static void case_oob(int nb)
{
	char b[64];
	int c, s;

	mk_pair(nb, &c, &s);
	sa_send(c, "abc", 3, MSG_NOSIGNAL);
	oret("send_oob", sa_send(c, "X", 1, MSG_OOB | MSG_NOSIGNAL));
	sa_send(c, "def", 3, MSG_NOSIGNAL);
	settle();
	omask("mask", s);
	oioctl("atmark", s, SIOCATMARK);
	ostr("recv1", recv(s, b, sizeof(b), 0), b);
	oioctl("atmark2", s, SIOCATMARK);
	ostr("recv_oob", recv(s, b, 1, MSG_OOB), b);
	ostr("recv2", recv(s, b, sizeof(b), 0), b);
	ostr("recv_oob_again", recv(s, b, 1, MSG_OOB), b);
	close(c);
	close(s);
}

/*
 * Urgent data after the reader has read everything sent before it: the
 * usual shape (an interrupt on an otherwise idle control connection).
 */
static void case_oob_drained(int nb)
{
	char b[64];
	int c, s;

	mk_pair(nb, &c, &s);
	sa_send(c, "abc", 3, MSG_NOSIGNAL);
	settle();
	ostr("recv0", recv(s, b, sizeof(b), 0), b);
	oret("send_oob", sa_send(c, "X", 1, MSG_OOB | MSG_NOSIGNAL));
	sa_send(c, "def", 3, MSG_NOSIGNAL);
	settle();
	omask("mask", s);
	oioctl("atmark", s, SIOCATMARK);
	ostr("recv_oob", recv(s, b, 1, MSG_OOB), b);
	oioctl("atmark2", s, SIOCATMARK);
	ostr("recv1", recv(s, b, sizeof(b), 0), b);
	ostr("recv_oob_again", recv(s, b, 1, MSG_OOB), b);
	oret("send_after", sa_send(c, "gh", 2, MSG_NOSIGNAL));
	settle();
	ostr("recv2", recv(s, b, sizeof(b), 0), b);
	close(c);
	close(s);
}

static void case_iov(int nb)
{
	static uint8_t src[11111], dst[77777];
	size_t ws[5] = { 1, 10, 100, 1000, 10000 }, rs[5] = { 7, 70, 700, 7000, 70000 };
	struct iovec wv[5], rv[5];
	struct msghdr mh = { 0 };
	size_t off = 0;
	ssize_t n;
	int c, s, i;

	mk_pair(nb, &c, &s);
	stream_fill(SEED_C, 0, src, sizeof(src));
	for (i = 0; i < 5; i++) {
		wv[i].iov_base = src + off;
		wv[i].iov_len = ws[i];
		off += ws[i];
	}
	oret("writev", sa_writev(c, wv, 5));
	settle();
	off = 0;
	for (i = 0; i < 5; i++) {
		rv[i].iov_base = dst + off;
		rv[i].iov_len = rs[i];
		off += rs[i];
	}
	mh.msg_iov = rv;
	mh.msg_iovlen = 5;
	n = recvmsg(s, &mh, 0);
	oret("recvmsg", n);
	o("data=%s msg_flags=%d", n == sizeof(src) && !memcmp(src, dst, sizeof(src)) ? "ok" : "BAD",
	  mh.msg_flags);
	/* sendmsg with iovecs, readv in odd pieces. */
	mh.msg_iov = wv;
	mh.msg_iovlen = 5;
	oret("sendmsg", sa_sendmsg(c, &mh, MSG_NOSIGNAL));
	settle();
	{
		static uint8_t r0[3], r1[5000], r2[20000];

		rv[0] = (struct iovec){ r0, sizeof(r0) };
		rv[1] = (struct iovec){ r1, sizeof(r1) };
		rv[2] = (struct iovec){ r2, sizeof(r2) };
		n = readv(s, rv, 3);
		oret("readv", n);
		o("data2=%s", n == sizeof(src) && !memcmp(src, r0, 3) && !memcmp(src + 3, r1, 5000) &&
		  !memcmp(src + 5003, r2, sizeof(src) - 5003) ? "ok" : "BAD");
	}
	close(c);
	close(s);
}

/* MSG_TRUNC on TCP discards bytes without copying them (tcp_recvmsg). */
static void case_trunc(int nb)
{
	char b[2000];
	int c, s;

	mk_pair(nb, &c, &s);
	send_chunk(c, SEED_C, 0, 1000, 0);
	settle();
	oret("recv_trunc_null", recv(s, NULL, 100, MSG_TRUNC));
	oioctl("fionread", s, FIONREAD);
	orecv_check("recv_rest", s, sizeof(b), 0, SEED_C, 100);
	close(c);
	close(s);
}

/* ============================================================ table */

struct tcase {
	const char *name;
	void (*fn)(int nb);
	int nb;
	const char *cls;
	int timeout;
	const char *desc;
};

#define NB(n, f, cls, to, d) { n "_nb", f, 1, cls, to, d }
#define BLK(n, f, to, d) { n "_blk", f, 0, "block", to, d }
#define BOTH(n, f, to, d) NB(n, f, "nb", to, d), BLK(n, f, to, d)

static const struct tcase cases[] = {
	BOTH("echo", case_echo, 150, "byte-exact full-duplex echo stress, random writes 1B..128KiB, SHUT_WR"),
	BOTH("halfclose", case_halfclose, 60, "half-close in both directions, send after SHUT_WR, EOF twice"),
	BOTH("short", case_short, 150, "5000 short request/response connections, request right after connect"),
	BOTH("connect_send", case_connect_send, 60, "1 MiB sent right after connect(), then SHUT_WR and reply"),
	BOTH("slow_accept", case_slow_accept, 60, "8 clients send 256 KiB + SHUT_WR while the server sleeps before accept"),
	BOTH("server_first", case_server_first, 60, "server banner first, then 50 length-prefixed RPC rounds"),
	NB("pause_resume", case_pause_resume, "policy", 90, "48 MiB, random writes, reader pausing 60 ms every 0.25..6 MiB: redirect/TCP fallback/return, byte-checked"),
	BLK("pause_resume", case_pause_resume, 90, "48 MiB, random writes, reader pausing 60 ms every 0.25..6 MiB, byte-checked"),
	BOTH("send_close", case_send_close, 30, "send 50 KB then close() at once; server reads late"),
	BOTH("peek", case_peek, 30, "MSG_PEEK partial/full/repeated, then EOF"),
	NB("peek_off", case_peek_off, "learned", 30, "SO_PEEK_OFF set before any data, advancing peeks (reader not redirected into by policy)"),
	BLK("peek_off", case_peek_off, 30, "SO_PEEK_OFF set before any data, advancing peeks"),
	NB("peek_off_mid", case_peek_off_mid, "learned", 30, "SO_PEEK_OFF set while 11 bytes are queued, advancing peeks"),
	BLK("peek_off_mid", case_peek_off_mid, 30, "SO_PEEK_OFF set while 11 bytes are queued, advancing peeks"),
	BOTH("waitall", case_waitall, 30, "MSG_WAITALL across chunks and at EOF"),
	NB("dontwait", case_dontwait, "policy", 60, "MSG_DONTWAIT recv on empty, send flood to EAGAIN, drain (flood exceeds backlog_limit: rule 3 falls back to TCP)"),
	BLK("dontwait", case_dontwait, 60, "MSG_DONTWAIT recv on empty, send flood to EAGAIN, drain"),
	BOTH("fionread", case_fionread, 30, "FIONREAD/SIOCINQ/SIOCOUTQ/SIOCOUTQNSD through a stream"),
	NB("rcvlowat", case_rcvlowat, "learned", 30, "SO_RCVLOWAT=100 before data: poll and recv (reader not redirected into by policy)"),
	BLK("rcvlowat", case_rcvlowat, 30, "SO_RCVLOWAT=100: blocking recv waits for 100 bytes or EOF"),
	NB("rcvlowat_mid", case_rcvlowat_mid, "learned", 30, "SO_RCVLOWAT raised while 50 bytes are unread: poll and recv"),
	BOTH("rcvtimeo", case_rcvtimeo, 30, "SO_RCVTIMEO expiry (blocking) / ignored (nonblocking)"),
	NB("nb2blk_signal", case_nb2blk_signal, "hatch", 30, "nonblocking socket turned blocking after traffic; blocking recv interrupted by SA_RESTART signal"),
	NB("nb2blk_wakeup", case_nb2blk_wakeup, "hatch", 30, "nonblocking socket turned blocking after traffic; blocking recv woken by own SHUT_WR"),
	NB("nb2blk_fresh", case_nb2blk_fresh, "hatch", 30, "nonblocking accept, turned blocking at once; blocking recv interrupted by SA_RESTART signal"),
	BOTH("poll_events", case_poll_events, 30, "poll/epoll (LT and ET) masks: idle, data, drained, SHUT_WR (RDHUP), peer close (HUP)"),
	NB("epollout", case_epollout, "policy", 60, "EPOLLOUT gone when the send side is full, back after the reader drains (fill exceeds backlog_limit: rule 3)"),
	BLK("epollout", case_epollout, 60, "EPOLLOUT gone when the send side is full, back after the reader drains"),
	NB("close_unread", case_close_unread, "hatch", 30, "server closes with unread data: what the client sees (RST; kernel-limitations.md #12)"),
	BLK("close_unread", case_close_unread, 30, "server closes with unread data: what the client sees (RST)"),
	NB("close_unread_cli", case_close_unread_cli, "hatch", 30, "client closes with unread data: what the server sees (RST; #12)"),
	BLK("close_unread_cli", case_close_unread_cli, 30, "client closes with unread data: what the server sees (RST)"),
	BOTH("linger0", case_linger0, 30, "SO_LINGER {1,0} close: RST, what the peer reads"),
	BOTH("shut_rd", case_shut_rd, 30, "shutdown(SHUT_RD): recv results, later data, peer close"),
	BOTH("sendfile", case_sendfile, 60, "sendfile() 3 MiB from a memfd"),
	BOTH("splice_send", case_splice_send, 60, "splice() 2 MiB from a pipe into the socket"),
	NB("splice_recv", case_splice_recv, "learned", 30, "splice() from the socket into a pipe on the receiver"),
	NB("splice_switch", case_splice_switch, "learned", 30, "recv() first, then splice() the rest of the stream"),
	BLK("splice_switch", case_splice_switch, 30, "recv() first, then splice() the rest of the stream"),
	BLK("splice_recv", case_splice_recv, 30, "splice() from the socket into a pipe on the receiver"),
	BOTH("nodelay_cork", case_nodelay_cork, 30, "TCP_NODELAY, TCP_CORK, MSG_MORE, 1-byte writes"),
	NB("fastopen", case_tfo, "policy", 60, "TCP Fast Open: cookie, data in SYN (sendto MSG_FASTOPEN), TCP_FASTOPEN_CONNECT"),
	BLK("fastopen", case_tfo, 60, "TCP Fast Open: cookie, data in SYN (sendto MSG_FASTOPEN), TCP_FASTOPEN_CONNECT"),
	NB("oob", case_oob, "learned", 30, "MSG_OOB urgent byte after redirected bytes the reader has not read (kernel-limitations.md #10)"),
	BLK("oob", case_oob, 30, "MSG_OOB urgent byte, SIOCATMARK"),
	NB("oob_drained", case_oob_drained, "learned", 30, "MSG_OOB after the reader read all before it; all after it goes through TCP"),
	BLK("oob_drained", case_oob_drained, 30, "MSG_OOB after the reader read all before it"),
	BOTH("iov", case_iov, 30, "writev/sendmsg with iovecs, recvmsg/readv scatter"),
	NB("trunc", case_trunc, "hatch", 30, "recv(NULL, 100, MSG_TRUNC) discards bytes (#11)"),
	NB("uring_splice", case_uring_splice, "learned", 30, "io_uring IORING_OP_SPLICE from the socket after 256 KiB are queued, then recv()"),
	BLK("uring_splice", case_uring_splice, 30, "io_uring IORING_OP_SPLICE from the socket after 256 KiB are queued, then recv()"),
	NB("uring_oob", case_uring_oob, "learned", 30, "MSG_OOB sent with io_uring (IORING_OP_SEND): SIOCATMARK, recv(MSG_OOB)"),
	BLK("uring_oob", case_uring_oob, 30, "MSG_OOB sent with io_uring (IORING_OP_SEND): SIOCATMARK, recv(MSG_OOB)"),
	NB("zerocopy_rx", case_zerocopy_rx, "learned", 30, "mmap() + TCP_ZEROCOPY_RECEIVE (recv() for the unaligned rest) after 1 MiB is queued"),
	BLK("zerocopy_rx", case_zerocopy_rx, 30, "mmap() + TCP_ZEROCOPY_RECEIVE (recv() for the unaligned rest) after 1 MiB is queued"),
	NB("repair", case_repair, "policy", 30, "TCP_REPAIR on and off on a drained connection (CRIU's dump), then both directions"),
	BLK("repair", case_repair, 30, "TCP_REPAIR on and off on a drained connection, then both directions"),
	NB("ktls_tx", case_ktls_tx, "learned", 30, "kTLS sender (TCP_ULP tls + TLS_TX after connect), userspace reader: the records, byte for byte"),
	BLK("ktls_tx", case_ktls_tx, 30, "kTLS sender (TCP_ULP tls + TLS_TX after connect), userspace reader: the records"),
	NB("ktls_both", case_ktls_both, "learned", 30, "kTLS on both ends after connect: the plaintext, byte for byte"),
	BLK("ktls_both", case_ktls_both, 30, "kTLS on both ends after connect: the plaintext"),
	NB("zerocopy_tx", case_zerocopy_tx, "nb", 30, "SO_ZEROCOPY after connect, 10 MSG_ZEROCOPY sends, completions cover them (a refusal means plain sends)"),
	BLK("zerocopy_tx", case_zerocopy_tx, 30, "SO_ZEROCOPY after connect, 10 MSG_ZEROCOPY sends, completions cover them"),
	NB("zerocopy_tx_early", case_zerocopy_tx_early, "policy", 30, "SO_ZEROCOPY before connect (the socket stays on TCP), MSG_ZEROCOPY sends and completions"),
	BLK("zerocopy_tx_early", case_zerocopy_tx_early, 30, "SO_ZEROCOPY before connect, MSG_ZEROCOPY sends and completions"),
	BLK("trunc", case_trunc, 30, "recv(NULL, 100, MSG_TRUNC) discards bytes"),
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void usage(void)
{
	fprintf(stderr, "usage: sacompat list\n"
			"       sacompat run CASE [--family 4|6|mapped] [--port P] [--quick]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const struct tcase *tc = NULL;
	size_t i;
	int a;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "list")) {
		for (i = 0; i < NCASES; i++)
			printf("%s %s %d %s\n", cases[i].name, cases[i].cls, cases[i].timeout,
			       cases[i].desc);
		return 0;
	}
	if (strcmp(argv[1], "run") || argc < 3)
		usage();
	for (i = 0; i < NCASES; i++)
		if (!strcmp(argv[2], cases[i].name))
			tc = &cases[i];
	if (!tc) {
		fprintf(stderr, "sacompat: no case '%s' (see: sacompat list)\n", argv[2]);
		return 2;
	}
	for (a = 3; a < argc; a++) {
		if (!strcmp(argv[a], "--quick")) {
			g_quick = 1;
		} else if (!strcmp(argv[a], "--family") && a + 1 < argc) {
			const char *f = argv[++a];

			if (!strcmp(f, "4"))
				g_family = 4;
			else if (!strcmp(f, "6"))
				g_family = 6;
			else if (!strcmp(f, "mapped"))
				g_family = 'm';
			else
				usage();
		} else if (!strcmp(argv[a], "--port") && a + 1 < argc) {
			g_port = atoi(argv[++a]);
		} else {
			usage();
		}
	}
	g_case = tc->name;
	g_nb = tc->nb;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(tc->timeout);
	tc->fn(tc->nb);
	alarm(0);
	printf("outcome: %.*s\n", (int)OUT.n, OUT.s);
	/* What the kernel chose where TCP allows either: not compared. */
	if (g_zc_enabled >= 0)
		printf("info: so_zerocopy=%s\n", g_zc_enabled ? "on" : "refused");
	/* Not part of the outcome: timing may move bytes between calls. */
	printf("stats: app_bytes_sent=%llu\n", (unsigned long long)g_app_sent);
	fflush(stdout);
	return 0;
}
