// SPDX-License-Identifier: GPL-2.0
/*
 * saxfer: verified TCP transfers for the tests. The client sends a header
 * (seed, length, flags) and a deterministic stream; the server checks every
 * byte at its offset and either replies "SAOK" or echoes the stream back,
 * which the client checks in turn. Nonblocking epoll by default, blocking
 * sockets with --block. Exit 0 verified, 1 data mismatch, 2 error, 3 timeout.
 */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>

#define MAGIC_HDR 0x31584153u	/* "SAX1" */
#define MAGIC_OK  0x4b4f4153u	/* "SAOK" */
#define F_ECHO 1u

struct hdr {
	uint32_t magic, flags;
	uint64_t seed, total;
};

static struct {
	const char *addr, *port_file, *bind_addr;
	int block, echo, conns, parallel, rand_writes, quiet, pace, keep_open, late_nonblock;
	uint64_t bytes, seed, stall_at, stall_ms, rr;
	size_t write_size;
	unsigned int timeout;
} opt = { .conns = 1, .parallel = 1, .bytes = 1 << 20, .write_size = 65536, .seed = 1,
	  .timeout = 120 };

static void on_alarm(int sig)
{
	static const char m[] = "saxfer: timeout\n";

	(void)!write(2, m, sizeof(m) - 1);
	_exit(3);
}

static size_t next_write_size(uint64_t *rng)
{
	if (!opt.rand_writes)
		return opt.write_size;
	*rng = splitmix64(*rng);
	/* 1 B .. 128 KiB, biased toward small sizes. */
	return 1 + (*rng % (1u << (1 + (*rng >> 32) % 17)));
}

/* ---------------------------------------------------------------- server */

struct sconn {
	int fd;
	uint8_t hbuf[sizeof(struct hdr)];
	size_t hlen;
	struct hdr h;
	uint64_t rx, tx;
	int eof, ok_sent;
	size_t ok_off;
};

static long served, failures;

static int server_listen(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	if (parse_addr(opt.addr, &ss, &len))
		die("bad address %s", opt.addr);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (void *)&ss, len) || listen(fd, 1024))
		die("bind/listen %s", opt.addr);
	len = sizeof(ss);
	getsockname(fd, (void *)&ss, &len);
	if (opt.port_file) {
		FILE *f = fopen(opt.port_file, "w");

		if (!f)
			die("open %s", opt.port_file);
		fprintf(f, "%d\n", sockaddr_port(&ss));
		fclose(f);
	}
	return fd;
}

/* Consume readable bytes; returns 1 when the connection is finished. */
static int sconn_step(struct sconn *c)
{
	uint8_t buf[65536];

	for (;;) {
		ssize_t n;

		if (c->hlen < sizeof(c->hbuf)) {
			n = recv(c->fd, c->hbuf + c->hlen, sizeof(c->hbuf) - c->hlen, 0);
		} else {
			n = recv(c->fd, buf, sizeof(buf), 0);
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			fprintf(stderr, "saxfer server: recv: %s\n", strerror(errno));
			failures++;
			return 1;
		}
		if (n == 0) {
			c->eof = 1;
			break;
		}
		if (c->hlen < sizeof(c->hbuf)) {
			c->hlen += n;
			if (c->hlen == sizeof(c->hbuf)) {
				memcpy(&c->h, c->hbuf, sizeof(c->h));
				if (c->h.magic != MAGIC_HDR) {
					fprintf(stderr, "saxfer server: bad header\n");
					failures++;
					return 1;
				}
			}
			continue;
		}
		if (c->rx + n > c->h.total) {
			fprintf(stderr, "saxfer server: %zd bytes beyond the stream end\n", n);
			failures++;
			return 1;
		}
		{
			int64_t bad = stream_check(c->h.seed, c->rx, buf, n);

			if (bad >= 0) {
				fprintf(stderr, "saxfer server: mismatch at offset %lld (seed %llu)\n",
					(long long)bad, (unsigned long long)c->h.seed);
				failures++;
				return 1;
			}
		}
		c->rx += n;
		/* The reader stops once, mid-stream (a GC pause, a busy CPU). */
		if (opt.stall_ms && c->rx >= opt.stall_at && c->rx - n < opt.stall_at)
			usleep(opt.stall_ms * 1000);
	}
	/* Echo what has arrived so far. */
	while ((c->h.flags & F_ECHO) && c->tx < c->rx) {
		size_t n = c->rx - c->tx < sizeof(buf) ? c->rx - c->tx : sizeof(buf);
		ssize_t w;

		stream_fill(c->h.seed, c->tx, buf, n);
		w = send(c->fd, buf, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			fprintf(stderr, "saxfer server: send: %s\n", strerror(errno));
			failures++;
			return 1;
		}
		c->tx += w;
	}
	if (!c->eof)
		return 0;
	if (c->hlen < sizeof(c->hbuf) || c->rx != c->h.total) {
		fprintf(stderr, "saxfer server: EOF after %llu of %llu bytes\n",
			(unsigned long long)c->rx, (unsigned long long)c->h.total);
		failures++;
		return 1;
	}
	if (c->h.flags & F_ECHO)
		return c->tx == c->rx;
	while (c->ok_off < 8) {
		uint32_t ok[2] = { MAGIC_OK, 0 };
		ssize_t w = send(c->fd, (char *)ok + c->ok_off, 8 - c->ok_off, MSG_NOSIGNAL);

		if (w < 0)
			return errno == EAGAIN ? 0 : 1;
		c->ok_off += w;
	}
	return 1;
}

static void *sconn_thread(void *arg)
{
	struct sconn *c = arg;

	while (!sconn_step(c))
		;
	__atomic_add_fetch(&served, 1, __ATOMIC_SEQ_CST);
	close(c->fd);
	free(c);
	return NULL;
}

static int run_server(void)
{
	int lfd = server_listen(), ep, i;
	struct epoll_event ev, evs[64];

	if (opt.block) {
		for (i = 0; opt.conns <= 0 || i < opt.conns; i++) {
			struct sconn *c = calloc(1, sizeof(*c));
			pthread_t t;

			c->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (c->fd < 0)
				die("accept");
			if (pthread_create(&t, NULL, sconn_thread, c))
				die("pthread_create");
			pthread_detach(t);
		}
		while (__atomic_load_n(&served, __ATOMIC_SEQ_CST) < opt.conns)
			usleep(1000);
		goto done;
	}
	/*
	 * --late-nonblock: a blocking listener whose accepted sockets are made
	 * nonblocking right after accept() (PostgreSQL's backends, libevent):
	 * one accept per readiness event, since a blocking accept() would wait.
	 */
	if (!opt.late_nonblock)
		set_nonblock(lfd, 1);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	while (opt.conns <= 0 || served < opt.conns) {
		int n = epoll_wait(ep, evs, 64, 1000);

		for (i = 0; i < n; i++) {
			struct sconn *c = evs[i].data.ptr;

			if (!c) {
				int fd;

				while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC |
						     (opt.late_nonblock ? 0 : SOCK_NONBLOCK))) >= 0) {
					if (opt.late_nonblock)
						set_nonblock(fd, 1);
					c = calloc(1, sizeof(*c));
					c->fd = fd;
					ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
					if (sconn_step(c)) {
						served++;
						close(fd);
						free(c);
					}
					if (opt.late_nonblock)
						break;
				}
				continue;
			}
			if (sconn_step(c)) {
				served++;
				close(c->fd);
				free(c);
			}
		}
	}
done:
	if (!opt.quiet)
		printf("served %ld connections, %ld failed\n", served, failures);
	return failures ? 1 : 0;
}

/* ---------------------------------------------------------------- client */

struct cconn {
	int fd, done, shut;
	uint64_t seed, tx, rx, rng;
	uint8_t hdr[sizeof(struct hdr)];
	size_t hoff;
	uint8_t ok[8];
	size_t okoff;
};

static long completed, cfailures;

static int client_connect(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (parse_addr(opt.addr, &ss, &len))
		die("bad address %s", opt.addr);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (opt.block ? 0 : SOCK_NONBLOCK), 0);
	if (fd < 0)
		die("socket");
	if (opt.bind_addr) {
		struct sockaddr_storage bs;
		socklen_t bl;
		int one = 1;

		if (parse_addr(opt.bind_addr, &bs, &bl))
			die("bad bind address %s", opt.bind_addr);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (void *)&bs, bl))
			die("bind %s", opt.bind_addr);
	}
	if (connect(fd, (void *)&ss, len) && errno != EINPROGRESS)
		die("connect %s", opt.addr);
	return fd;
}

static void cconn_init(struct cconn *c, uint64_t seed)
{
	struct hdr h = { MAGIC_HDR, opt.echo ? F_ECHO : 0, seed, opt.bytes };

	memset(c, 0, sizeof(*c));
	c->seed = seed;
	c->rng = seed * 7 + 1;
	memcpy(c->hdr, &h, sizeof(h));
	c->fd = client_connect();
}

/* Write what fits, read what is there; 1 when finished (ok or failed). */
static int cconn_step(struct cconn *c)
{
	uint8_t buf[1 << 17];

	while (c->hoff < sizeof(c->hdr)) {
		ssize_t w = send(c->fd, c->hdr + c->hoff, sizeof(c->hdr) - c->hoff, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EAGAIN || errno == ENOTCONN || errno == EINTR)
				return 0;
			fprintf(stderr, "saxfer client: send header: %s\n", strerror(errno));
			cfailures++;
			return 1;
		}
		c->hoff += w;
	}
	while (c->tx < opt.bytes) {
		size_t n = next_write_size(&c->rng);
		ssize_t w;

		if (n > opt.bytes - c->tx)
			n = opt.bytes - c->tx;
		if (n > sizeof(buf))
			n = sizeof(buf);
		/* --rr: request/response, at most rr bytes not yet echoed back. */
		if (opt.rr) {
			if (c->tx - c->rx >= opt.rr)
				break;
			if (n > opt.rr - (c->tx - c->rx))
				n = opt.rr - (c->tx - c->rx);
		}
		stream_fill(c->seed, c->tx, buf, n);
		/*
		 * --pace: check our own buffer before sending, which costs the
		 * writer more than the reader's check costs the reader, so the
		 * reader keeps up (tests that expect no fallback to TCP).
		 */
		if (opt.pace && stream_check(c->seed, c->tx, buf, n) >= 0)
			die("self-check failed");
		w = send(c->fd, buf, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			fprintf(stderr, "saxfer client: send: %s\n", strerror(errno));
			cfailures++;
			return 1;
		}
		c->tx += w;
		if (opt.block)
			break;	/* the reader thread handles the other side */
	}
	if (c->tx == opt.bytes && !c->shut && !opt.keep_open) {
		shutdown(c->fd, SHUT_WR);
		c->shut = 1;
	}
	return 0;
}

/* Reads echo or reply; 1 when finished. */
static int cconn_read(struct cconn *c)
{
	uint8_t buf[1 << 17];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			fprintf(stderr, "saxfer client: recv: %s\n", strerror(errno));
			cfailures++;
			return 1;
		}
		if (n == 0) {
			if (opt.echo ? c->rx == opt.bytes : c->okoff == 8) {
				completed++;
			} else {
				fprintf(stderr, "saxfer client: EOF after %llu of %llu echoed bytes\n",
					(unsigned long long)c->rx, (unsigned long long)opt.bytes);
				cfailures++;
			}
			return 1;
		}
		if (opt.echo) {
			int64_t bad = stream_check(c->seed, c->rx, buf, n);

			if (bad >= 0 || c->rx + n > opt.bytes) {
				fprintf(stderr, "saxfer client: echo mismatch at offset %lld\n",
					(long long)(bad >= 0 ? bad : (int64_t)opt.bytes));
				cfailures++;
				return 1;
			}
			c->rx += n;
			/* --keep-open: the whole echo came back before our FIN. */
			if (opt.keep_open && c->rx == opt.bytes && !c->shut) {
				shutdown(c->fd, SHUT_WR);
				c->shut = 1;
			}
		} else {
			size_t k = (size_t)n < 8 - c->okoff ? (size_t)n : 8 - c->okoff;

			memcpy(c->ok + c->okoff, buf, k);
			c->okoff += k;
			if (c->okoff == 8 && *(uint32_t *)c->ok != MAGIC_OK) {
				fprintf(stderr, "saxfer client: bad reply\n");
				cfailures++;
				return 1;
			}
		}
	}
}

static void *writer_thread(void *arg)
{
	struct cconn *c = arg;

	while (c->tx < opt.bytes || !c->shut)
		if (cconn_step(c))
			break;
	return NULL;
}

static int client_block_one(uint64_t seed)
{
	struct cconn c;
	pthread_t t;

	cconn_init(&c, seed);
	if (pthread_create(&t, NULL, writer_thread, &c))
		die("pthread_create");
	while (!cconn_read(&c))
		;
	pthread_join(t, NULL);
	close(c.fd);
	return 0;
}

static void *client_block_worker(void *arg)
{
	long w = (long)arg, i;

	for (i = w; i < opt.conns; i += opt.parallel)
		client_block_one(opt.seed + i);
	return NULL;
}

static int run_client(void)
{
	struct epoll_event ev, evs[64];
	struct cconn *cs;
	long started = 0, i;
	int ep;

	if (opt.block) {
		pthread_t *ts = calloc(opt.parallel, sizeof(*ts));

		for (i = 0; i < opt.parallel; i++)
			pthread_create(&ts[i], NULL, client_block_worker, (void *)i);
		for (i = 0; i < opt.parallel; i++)
			pthread_join(ts[i], NULL);
		goto done;
	}
	cs = calloc(opt.parallel, sizeof(*cs));
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (i = 0; i < opt.parallel && started < opt.conns; i++, started++) {
		cconn_init(&cs[i], opt.seed + started);
		ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
		ev.data.ptr = &cs[i];
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	while (completed + cfailures < opt.conns) {
		int n = epoll_wait(ep, evs, 64, 1000);

		for (i = 0; i < n; i++) {
			struct cconn *c = evs[i].data.ptr;

			if (c->done)
				continue;
			/* --rr: the echo just read lets the next request go. */
			if (cconn_step(c) || cconn_read(c) || (opt.rr && cconn_step(c))) {
				close(c->fd);
				c->done = 1;
				if (started < opt.conns) {
					cconn_init(c, opt.seed + started++);
					ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
					cconn_step(c);
				}
			}
		}
	}
done:
	if (!opt.quiet)
		printf("completed %ld connections, %ld failed\n", completed, cfailures);
	return cfailures || completed != opt.conns ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: saxfer server --listen ADDR:PORT [--port-file F] [--conns N] [--block]\n"
		"       saxfer client --connect ADDR:PORT [--bytes N] [--write-size N|rand]\n"
		"                     [--echo] [--conns N] [--parallel P] [--seed S] [--block]\n"
		"                     [--pace]  (writer does more work than the reader)\n"
		"                     [--keep-open]  (with --echo: half-close only after the\n"
		"                                    whole echo came back)\n"
		"                     [--bind ADDR:PORT]  (fixed source address)\n"
		"                     [--rr BYTES]  (with --echo: request/response, at most\n"
		"                                   BYTES sent and not yet echoed back)\n"
		"       server: [--late-nonblock]  (blocking listener, each accepted socket\n"
		"                                   set nonblocking right after accept())\n"
		"               [--stall-at BYTES --stall-ms MS]  (each reader sleeps once)\n"
		"       common: [--timeout SECONDS] [--quiet]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int server, i;

	if (argc < 2)
		usage();
	server = !strcmp(argv[1], "server");
	if (!server && strcmp(argv[1], "client"))
		usage();
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--block")) { opt.block = 1; continue; }
		if (!strcmp(a, "--echo")) { opt.echo = 1; continue; }
		if (!strcmp(a, "--quiet")) { opt.quiet = 1; continue; }
		if (!strcmp(a, "--pace")) { opt.pace = 1; continue; }
		if (!strcmp(a, "--keep-open")) { opt.keep_open = 1; continue; }
		if (!strcmp(a, "--late-nonblock")) { opt.late_nonblock = 1; continue; }
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--listen") || !strcmp(a, "--connect"))
			opt.addr = v;
		else if (!strcmp(a, "--bind"))
			opt.bind_addr = v;
		else if (!strcmp(a, "--port-file"))
			opt.port_file = v;
		else if (!strcmp(a, "--conns"))
			opt.conns = atoi(v);
		else if (!strcmp(a, "--parallel"))
			opt.parallel = atoi(v);
		else if (!strcmp(a, "--bytes"))
			opt.bytes = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--seed"))
			opt.seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--timeout"))
			opt.timeout = atoi(v);
		else if (!strcmp(a, "--stall-at"))
			opt.stall_at = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--rr"))
			opt.rr = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--stall-ms"))
			opt.stall_ms = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--write-size")) {
			if (!strcmp(v, "rand"))
				opt.rand_writes = 1;
			else
				opt.write_size = strtoull(v, NULL, 0);
		} else
			usage();
	}
	if (!opt.addr || opt.parallel < 1 || (opt.write_size == 0 && !opt.rand_writes) ||
	    (opt.keep_open && (!opt.echo || opt.block)) || (opt.rr && (!opt.echo || opt.block)))
		usage();
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);
	alarm(opt.timeout);
	return server ? run_server() : run_client();
}
