// SPDX-License-Identifier: GPL-2.0
/*
 * load --config FILE: one sockaccel command per line (load, attach,
 * policy add|default, exe set), checked all before any is applied, then
 * applied in that order. A policy line replaces nothing by itself: the
 * policies of the cgroups the file names are cleared first, so the file
 * is the whole policy and applying it twice changes nothing.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

#define MAX_LINES	256
#define MAX_ARGS	32

struct line {
	int no;
	int argc;
	char *argv[MAX_ARGS + 1];
};

/* The commands a config may hold, found among sockaccel's (main.c). */
static const struct command *command_of(const char *verb)
{
	if (strcmp(verb, "load") && strcmp(verb, "attach") && strcmp(verb, "policy") &&
	    strcmp(verb, "exe"))
		return NULL;
	return command_by_name(verb);
}

/* The --cgroup value of a command line, NULL if none. */
static const char *cgroup_of(const struct line *l)
{
	int i;

	for (i = 1; i + 1 < l->argc; i++)
		if (!strcmp(l->argv[i], "--cgroup"))
			return l->argv[i + 1];
	return NULL;
}

static int parse(const char *file, char *text, struct line *lines, int *n)
{
	char *save = NULL, *s;
	int no = 0;

	*n = 0;
	for (s = strtok_r(text, "\n", &save); s; s = strtok_r(NULL, "\n", &save)) {
		struct line *l;
		char *tok, *tsave = NULL, *hash = strchr(s, '#');

		no++;
		if (hash)
			*hash = 0;
		if (!strtok_r(strdupa(s), " \t\r", &tsave))
			continue;
		if (*n == MAX_LINES)
			return err_msg("%s:%d: more than %d commands", file, no, MAX_LINES);
		l = &lines[(*n)++];
		l->no = no;
		l->argc = 0;
		tsave = NULL;
		for (tok = strtok_r(s, " \t\r", &tsave); tok; tok = strtok_r(NULL, " \t\r", &tsave)) {
			if (l->argc == MAX_ARGS)
				return err_msg("%s:%d: more than %d words", file, no, MAX_ARGS);
			l->argv[l->argc++] = tok;
		}
		l->argv[l->argc] = NULL;
		if (!command_of(l->argv[0]))
			return err_msg("%s:%d: unknown command '%s' (load, attach, policy, exe)", file,
				       no, l->argv[0]);
		if (!strcmp(l->argv[0], "policy") &&
		    (l->argc < 2 || (strcmp(l->argv[1], "add") && strcmp(l->argv[1], "default"))))
			return err_msg("%s:%d: only 'policy add' and 'policy default' belong in a config",
				       file, no);
		if (!strcmp(l->argv[0], "policy") && !cgroup_of(l))
			return err_msg("%s:%d: policy needs --cgroup DIR in a config", file, no);
		if (!strcmp(l->argv[0], "exe") && (l->argc < 2 || strcmp(l->argv[1], "set")))
			return err_msg("%s:%d: only 'exe set PATH ACTION' belongs in a config", file, no);
		if (!strcmp(l->argv[0], "attach") && !cgroup_of(l))
			return err_msg("%s:%d: attach needs --cgroup DIR in a config", file, no);
		if (!strcmp(l->argv[0], "load") && l->argc > 1 && !strcmp(l->argv[1], "--config"))
			return err_msg("%s:%d: a config cannot load another", file, no);
	}
	return 0;
}

/* Every policy line's cgroup is one the file attaches: else it could not apply. */
static int check_policies(const char *file, const struct line *lines, int n)
{
	int i, j;

	for (i = 0; i < n; i++) {
		if (strcmp(lines[i].argv[0], "policy"))
			continue;
		for (j = 0; j < n; j++)
			if (!strcmp(lines[j].argv[0], "attach") &&
			    !strcmp(cgroup_of(&lines[j]), cgroup_of(&lines[i])))
				break;
		if (j == n)
			return err_msg("%s:%d: policy for %s, which this file does not attach", file,
				       lines[i].no, cgroup_of(&lines[i]));
	}
	return 0;
}

static int run(const char *file, struct line *l, bool dry)
{
	char ctx[512];
	int rc;

	snprintf(ctx, sizeof(ctx), "%s:%d: ", file, l->no);
	err_context = ctx;
	opt_dry_run = dry;
	rc = command_of(l->argv[0])->run(l->argc, l->argv);
	opt_dry_run = false;
	err_context = "";
	return rc;
}

int load_config(const char *file)
{
	static struct line lines[MAX_LINES];
	static bool running;
	char *text = NULL, *clear[4] = { "policy", "clear", "--cgroup", NULL };
	const char *seen[MAX_LINES];
	int n, i, j, nseen = 0, ret = -1, pass;
	size_t len = 0;
	FILE *f;

	/* parse() refuses "load --config"; this, one that abbreviates it. */
	if (running)
		return err_msg("a config cannot load another");
	f = fopen(file, "re");
	if (!f)
		return err_errno(errno, NULL, "cannot open %s", file);
	if (getdelim(&text, &len, 0, f) < 0 && ferror(f)) {
		fclose(f);
		return err_errno(errno, NULL, "cannot read %s", file);
	}
	fclose(f);
	if (!text)
		text = strdup("");
	running = true;
	if (parse(file, text, lines, &n) || check_policies(file, lines, n))
		goto out;
	/* Nothing is applied unless every line is right. */
	for (i = 0; i < n; i++)
		if (run(file, &lines[i], true))
			goto out;
	if (require_caps())
		goto out;
	keep_caps = true;
	/* load first (with its options), then attach, then policy and exe. */
	for (pass = 0; pass < 3; pass++) {
		for (i = 0; i < n; i++) {
			const char *verb = lines[i].argv[0];
			bool mine = pass == 0 ? !strcmp(verb, "load") :
				    pass == 1 ? !strcmp(verb, "attach") :
				    strcmp(verb, "load") && strcmp(verb, "attach");

			if (!mine)
				continue;
			if (!strcmp(verb, "policy")) {
				const char *cg = cgroup_of(&lines[i]);

				for (j = 0; j < nseen && strcmp(seen[j], cg); j++)
					;
				if (j == nseen) {
					struct line c = { .no = lines[i].no, .argc = 4 };

					seen[nseen++] = cg;
					memcpy(c.argv, clear, sizeof(clear));
					c.argv[3] = (char *)cg;
					if (run(file, &c, false))
						goto out;
				}
			}
			if (run(file, &lines[i], false))
				goto out;
		}
	}
	ret = 0;
out:
	running = false;
	keep_caps = false;
	drop_caps();
	free(text);
	return ret;
}
