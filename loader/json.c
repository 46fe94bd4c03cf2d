// SPDX-License-Identifier: GPL-2.0
/* The JSON writer behind -j (json.h), RFC 8259. */
#define _GNU_SOURCE
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

void json_init(struct json *w, FILE *f)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
}

/* Every value starts here: the one place that writes commas. */
static void value_begin(struct json *w)
{
	if (w->depth) {
		bool in_array = w->stack[w->depth - 1].close == ']';

		/* A caller bug would print something no parser takes. */
		assert(in_array != w->keyed);
		if (in_array && w->stack[w->depth - 1].has_members)
			fputc(',', w->f);
		w->stack[w->depth - 1].has_members = true;
	}
	w->keyed = false;
}

/* One document per line: scripts read -j output line by line. */
static void value_end(struct json *w)
{
	if (!w->depth)
		fputc('\n', w->f);
}

/* Bytes of the well-formed UTF-8 sequence at s (RFC 3629), 0 if none. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned int cp, n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)	/* also stops at the NUL */
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;	/* overlong, a surrogate, beyond Unicode */
	return n;
}

/*
 * Paths and comms are bytes, not text, but JSON must be UTF-8: a byte
 * that starts no well-formed sequence becomes U+FFFD, so the document
 * still parses. Control characters would end a line: \u00XX.
 */
static void put_string(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;

	fputc('"', f);
	while (*s) {
		if (*s == '"' || *s == '\\') {
			fputc('\\', f);
			fputc(*s++, f);
		} else if (*s < 0x20 || *s == 0x7f) {
			fprintf(f, "\\u%04x", *s++);
		} else if (*s < 0x80) {
			fputc(*s++, f);
		} else if ((n = utf8_len(s))) {
			fwrite(s, 1, n, f);
			s += n;
		} else {
			fputs("\\ufffd", f);
			s++;
		}
	}
	fputc('"', f);
}

static void start(struct json *w, char open, char close)
{
	value_begin(w);
	assert(w->depth < JSON_MAX_DEPTH);
	w->stack[w->depth].close = close;
	w->stack[w->depth].has_members = false;
	w->depth++;
	fputc(open, w->f);
}

void json_start_object(struct json *w)
{
	start(w, '{', '}');
}

void json_start_array(struct json *w)
{
	start(w, '[', ']');
}

void json_end(struct json *w)
{
	assert(w->depth > 0 && !w->keyed);
	w->depth--;
	fputc(w->stack[w->depth].close, w->f);
	value_end(w);
}

/* Keys are names a script types: lowercase, digits, underscores. */
static bool __attribute__((unused)) is_snake_case(const char *s)	/* NDEBUG: unused */
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

void json_key(struct json *w, const char *name)
{
	assert(w->depth > 0 && w->stack[w->depth - 1].close == '}' && !w->keyed);
	assert(is_snake_case(name));
	if (w->stack[w->depth - 1].has_members)
		fputc(',', w->f);
	put_string(w->f, name);
	fputc(':', w->f);
	w->keyed = true;
}

void json_str(struct json *w, const char *s)
{
	value_begin(w);
	put_string(w->f, s);
	value_end(w);
}

void json_strf(struct json *w, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		json_null(w);
		return;
	}
	json_str(w, s);
	free(s);
}

void json_u64(struct json *w, __u64 v)
{
	value_begin(w);
	fprintf(w->f, "%llu", (unsigned long long)v);
	value_end(w);
}

void json_s64(struct json *w, __s64 v)
{
	value_begin(w);
	fprintf(w->f, "%lld", (long long)v);
	value_end(w);
}

/* JSON has no NaN or infinity. */
void json_double(struct json *w, double v, int decimals)
{
	if (!isfinite(v)) {
		json_null(w);
		return;
	}
	value_begin(w);
	fprintf(w->f, "%.*f", decimals, v);
	value_end(w);
}

void json_bool(struct json *w, bool v)
{
	value_begin(w);
	fputs(v ? "true" : "false", w->f);
	value_end(w);
}

void json_null(struct json *w)
{
	value_begin(w);
	fputs("null", w->f);
	value_end(w);
}
