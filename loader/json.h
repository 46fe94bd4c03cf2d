/* SPDX-License-Identifier: GPL-2.0 */
#ifndef SOCKACCEL_LOADER_JSON_H
#define SOCKACCEL_LOADER_JSON_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

/*
 * -j output (json.c): compact JSON, one document per line. The writer
 * keeps the stack of open objects and arrays, so commas are its business,
 * never the caller's. In an object every value follows a json_key(); in
 * an array none does. A document ends with a newline when its outermost
 * value is complete.
 */
#define JSON_MAX_DEPTH	8

struct json {
	FILE *f;
	int depth;
	bool keyed;			/* a key was written, its value is due */
	struct {
		char close;		/* '}' or ']' */
		bool has_members;
	} stack[JSON_MAX_DEPTH];
};

void json_init(struct json *w, FILE *f);
void json_start_object(struct json *w);
void json_start_array(struct json *w);
void json_end(struct json *w);
void json_key(struct json *w, const char *name);
void json_str(struct json *w, const char *s);
void json_strf(struct json *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void json_u64(struct json *w, __u64 v);
void json_s64(struct json *w, __s64 v);
void json_double(struct json *w, double v, int decimals);
void json_bool(struct json *w, bool v);
void json_null(struct json *w);

/* A member: key and value. */
static inline void json_field_str(struct json *w, const char *key, const char *s)
{
	json_key(w, key);
	json_str(w, s);
}

static inline void json_field_u64(struct json *w, const char *key, __u64 v)
{
	json_key(w, key);
	json_u64(w, v);
}

static inline void json_field_bool(struct json *w, const char *key, bool v)
{
	json_key(w, key);
	json_bool(w, v);
}

#endif
