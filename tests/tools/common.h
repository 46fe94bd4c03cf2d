/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers for the test tools: byte streams, addresses, errors. */
#ifndef SA_TEST_COMMON_H
#define SA_TEST_COMMON_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

static inline void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (errno)
		fprintf(stderr, ": %s", strerror(errno));
	fputc('\n', stderr);
	exit(2);
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/*
 * Deterministic stream: byte i of stream `seed` depends only on (seed, i),
 * so a reader can check every byte at its offset (catches loss, reorder
 * and duplication, and says where).
 */
static inline uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline void stream_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint64_t w = splitmix64(seed ^ ((off + i) >> 3) * 0x100000001b3ull);
		unsigned int b = (off + i) & 7;

		for (; b < 8 && i < len; b++, i++)
			buf[i] = (uint8_t)(w >> (8 * b));
	}
}

/* Returns the offset of the first mismatch, or -1 when all len bytes match. */
static inline int64_t stream_check(uint64_t seed, uint64_t off, const uint8_t *buf, size_t len)
{
	uint8_t exp[4096];
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < sizeof(exp) ? len - done : sizeof(exp);
		size_t i;

		stream_fill(seed, off + done, exp, n);
		if (memcmp(exp, buf + done, n))
			for (i = 0; i < n; i++)
				if (exp[i] != buf[done + i])
					return (int64_t)(off + done + i);
		done += n;
	}
	return -1;
}

/* "127.0.0.1:80", "[::1]:80", "::ffff:127.0.0.1" with port separately. */
static inline int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *port;
	struct sockaddr_in *a4 = (void *)ss;
	struct sockaddr_in6 *a6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *e = strchr(s, ']');

		if (!e || e[1] != ':' || (size_t)(e - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, e - s - 1);
		host[e - s - 1] = '\0';
		port = e + 2;
	} else {
		const char *c = strrchr(s, ':');

		if (!c || (size_t)(c - s) >= sizeof(host))
			return -1;
		memcpy(host, s, c - s);
		host[c - s] = '\0';
		port = c + 1;
	}
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(atoi(port));
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(atoi(port));
		*len = sizeof(*a6);
		return 0;
	}
	return -1;
}

static inline int sockaddr_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ? ((struct sockaddr_in *)ss)->sin_port
					      : ((struct sockaddr_in6 *)ss)->sin6_port);
}

static inline void set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

#endif
