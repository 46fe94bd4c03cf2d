// SPDX-License-Identifier: GPL-2.0
/*
 * The one option parser of every command (options.h): argv against the
 * command's tables, in the manner of getopt_long(), with errors of one
 * line that name the option and the command.
 */
#include <assert.h>
#include <string.h>
#include "common.h"
#include "options.h"

static int set_verbose(const char *value, void *field)
{
	opt_verbose = true;
	return 0;
}

static int set_json(const char *value, void *field)
{
	opt_json = true;
	return 0;
}

const struct opt opts_global[] = {
	{ .name = "verbose", .short_name = 'v', .parse = set_verbose,
	  .help = "show libbpf's log" },
	{ .name = "json", .short_name = 'j', .parse = set_json,
	  .help = "JSON output (status, stats, trace, policy, probe,\n"
		  "exe list; errors)" },
	{}
};

/* Every command's; answered by the parser itself. */
static const struct opt opts_builtin[] = {
	{ .name = "help", .short_name = 'h' },
	{}
};

static const struct command *root;

void commands_init(const struct command *r)
{
	root = r;
}

static bool opt_end(const struct opt *o)
{
	return !o->name && !o->short_name;
}

/* The last word of a command's name: "add" of "policy add". */
static const char *last_word(const char *name)
{
	const char *sp = strrchr(name, ' ');

	return sp ? sp + 1 : name;
}

const struct command *command_find(const struct command *parent, const char *word)
{
	const struct command *const *c;

	for (c = parent->subcommands; c && *c; c++)
		if (!strcmp(last_word((*c)->name), word))
			return *c;
	return NULL;
}

const struct command *command_by_name(const char *name)
{
	return root ? command_find(root, name) : NULL;
}

/*
 * An option looked for by its long name (an exact name wins over a
 * prefix; two different names with that prefix are ambiguous) or by its
 * short one.
 */
struct search {
	const char *name;
	size_t len;
	char short_name;
	const struct opt *exact, *prefix;
	size_t exact_base, prefix_base;
	bool ambiguous;
};

static void search_group(struct search *s, const struct opt *o, size_t base)
{
	for (; !opt_end(o); o++) {
		if (s->short_name) {
			if (o->short_name == s->short_name && !s->exact) {
				s->exact = o;
				s->exact_base = base;
			}
			continue;
		}
		if (!o->name || strncmp(o->name, s->name, s->len))
			continue;
		if (!o->name[s->len]) {
			if (!s->exact) {
				s->exact = o;
				s->exact_base = base;
			}
		} else if (!s->prefix) {
			s->prefix = o;
			s->prefix_base = base;
		} else if (strcmp(s->prefix->name, o->name)) {
			s->ambiguous = true;
		}
	}
}

static const struct opt *search_result(const struct search *s, size_t *base)
{
	if (s->exact) {
		*base = s->exact_base;
		return s->exact;
	}
	if (s->ambiguous)
		return NULL;
	*base = s->prefix_base;
	return s->prefix;
}

/* The options c takes: its groups, then -v and -j, then --help. */
static void search_command(struct search *s, const struct command *c)
{
	int i;

	for (i = 0; i < OPTS_MAX_GROUPS && c->opts[i].opts; i++)
		search_group(s, c->opts[i].opts, c->opts[i].base);
	search_group(s, opts_global, 0);
	search_group(s, opts_builtin, 0);
}

/* Every command's options, subcommands included. */
static void search_all(struct search *s, const struct command *c)
{
	const struct command *const *sub;
	int i;

	for (i = 0; i < OPTS_MAX_GROUPS && c->opts[i].opts; i++)
		search_group(s, c->opts[i].opts, 0);
	for (sub = c->subcommands; sub && *sub; sub++)
		search_all(s, *sub);
}

/* "--name", or "-x" for a short-only option. */
static const char *display(const struct opt *o, char *buf, size_t len)
{
	if (o->name)
		snprintf(buf, len, "--%s", o->name);
	else
		snprintf(buf, len, "-%c", o->short_name);
	return buf;
}

/* "sockaccel policy --help" for "policy add", "sockaccel --help" for sockaccel. */
static const char *see(const struct command *c, char *buf, size_t len)
{
	if (!c->name)
		snprintf(buf, len, "sockaccel --help");
	else
		snprintf(buf, len, "sockaccel %.*s --help", (int)strcspn(c->name, " "), c->name);
	return buf;
}

/* An option c does not take: another command's, or none at all. */
static int refuse(const struct command *c, const struct search *mine, const char *typed)
{
	struct search s = { .name = mine->name, .len = mine->len, .short_name = mine->short_name };
	const struct opt *o = NULL;
	char name[64], help[128];
	size_t base;

	see(c, help, sizeof(help));
	if (mine->ambiguous)
		return err_msg("ambiguous option '%s'%s%s (see: %s)", typed, c->name ? " for " : "",
			       c->name ? c->name : "", help);
	if (root) {
		search_all(&s, root);
		o = search_result(&s, &base);
	}
	if (o && c->stop_at_arg)
		return err_msg("option '%s' goes after the command (see: %s)",
			       display(o, name, sizeof(name)), help);
	if (o)
		return err_msg("option '%s' does not apply to %s (see: %s)",
			       display(o, name, sizeof(name)), c->name, help);
	return err_msg("unknown option '%s'%s%s (see: %s)", typed, c->name ? " for " : "",
		       c->name ? c->name : "", help);
}

static int store(const struct opt *o, size_t base, void *dest, const char *value)
{
	void *field = dest ? (char *)dest + base + o->offset : NULL;

	if (o->parse)
		return o->parse(value, field) ? OPTS_ERROR : OPTS_OK;
	assert(field);
	if (o->arg == OPT_NO_ARG)
		*(bool *)field = true;
	else
		*(const char **)field = value;
	return OPTS_OK;
}

static int needs_value(const struct command *c, const struct opt *o)
{
	char name[64], help[128];

	return err_msg("option '%s' needs a value (see: %s)", display(o, name, sizeof(name)),
		       see(c, help, sizeof(help)));
}

/* An optional value may be the next word, unless that is an option. */
static const char *next_optional(int argc, char **argv, int *i)
{
	if (*i + 1 < argc && argv[*i + 1][0] != '-')
		return argv[++*i];
	return NULL;
}

/* argv[*i] is "--name" or "--name=value". */
static int long_opt(const struct command *c, int argc, char **argv, int *i, void *dest)
{
	const char *name = argv[*i] + 2, *eq = strchr(name, '='), *value = NULL;
	struct search s = { .name = name, .len = eq ? (size_t)(eq - name) : strlen(name) };
	char typed[64], help[128];
	const struct opt *o;
	size_t base;

	snprintf(typed, sizeof(typed), "--%.*s", (int)s.len, name);
	search_command(&s, c);
	o = search_result(&s, &base);
	if (!o)
		return refuse(c, &s, typed);
	if (eq && o->arg == OPT_NO_ARG)
		return err_msg("option '--%s' takes no value (see: %s)", o->name,
			       see(c, help, sizeof(help)));
	if (o == opts_builtin) {
		c->usage();
		return OPTS_HELP;
	}
	if (eq)
		value = eq + 1;
	else if (o->arg == OPT_ARG && *i + 1 >= argc)
		return needs_value(c, o);
	else if (o->arg == OPT_ARG)
		value = argv[++*i];
	else if (o->arg == OPT_OPTIONAL_ARG)
		value = next_optional(argc, argv, i);
	return store(o, base, dest, value);
}

/* argv[*i] is "-x", "-xVALUE" or switches together, "-vj". */
static int short_opts(const struct command *c, int argc, char **argv, int *i, void *dest)
{
	const char *p;
	int rc;

	for (p = argv[*i] + 1; *p; p++) {
		struct search s = { .short_name = *p };
		const char *value = NULL;
		const struct opt *o;
		char typed[3] = { '-', *p, 0 };
		size_t base;

		search_command(&s, c);
		o = search_result(&s, &base);
		if (!o)
			return refuse(c, &s, typed);
		if (o == opts_builtin) {
			c->usage();
			return OPTS_HELP;
		}
		if (o->arg == OPT_NO_ARG) {
			rc = store(o, base, dest, NULL);
			if (rc != OPTS_OK)
				return rc;
			continue;
		}
		/* The rest of the word is the value. */
		if (p[1])
			value = p + 1;
		else if (o->arg == OPT_ARG && *i + 1 >= argc)
			return needs_value(c, o);
		else if (o->arg == OPT_ARG)
			value = argv[++*i];
		else
			value = next_optional(argc, argv, i);
		return store(o, base, dest, value);
	}
	return OPTS_OK;
}

int opts_parse(const struct command *c, int argc, char **argv, void *dest,
	       struct opts_args *args)
{
	bool opts_done = false;
	char help[128];
	int i, rc;

	assert(c->max_args <= OPTS_MAX_ARGS);
	if (args) {
		args->n = 0;
		args->v = args->buf;
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!opts_done && !strcmp(a, "--")) {
			opts_done = true;
			continue;
		}
		if (opts_done || a[0] != '-' || !a[1]) {
			if (c->stop_at_arg && args) {
				args->v = argv + i;
				args->n = argc - i;
				return OPTS_OK;
			}
			if (!args || args->n >= c->max_args)
				return err_msg("unexpected argument '%s' (see: %s)", a,
					       see(c, help, sizeof(help)));
			args->buf[args->n++] = argv[i];
			continue;
		}
		rc = a[1] == '-' ? long_opt(c, argc, argv, &i, dest) : short_opts(c, argc, argv, &i, dest);
		if (rc != OPTS_OK)
			return rc;
	}
	return OPTS_OK;
}

#define HELP_COLUMN	24

void opts_help(FILE *f, const struct opt *o)
{
	for (; !opt_end(o); o++) {
		const char *h, *nl;
		char left[64];
		int n = 0;

		if (!o->help)
			continue;
		if (o->short_name)
			n += snprintf(left + n, sizeof(left) - n, "-%c%s", o->short_name,
				      o->name ? ", " : "");
		if (o->name)
			n += snprintf(left + n, sizeof(left) - n, "--%s", o->name);
		if (o->metavar)
			snprintf(left + n, sizeof(left) - n,
				 o->arg == OPT_OPTIONAL_ARG ? " [%s]" : " %s", o->metavar);
		/* At least one space before the help, else it starts on the next line. */
		if (strlen(left) + 3 > HELP_COLUMN)
			fprintf(f, "  %s\n%*s", left, HELP_COLUMN, "");
		else
			fprintf(f, "  %-*s", HELP_COLUMN - 2, left);
		for (h = o->help; (nl = strchr(h, '\n')); h = nl + 1)
			fprintf(f, "%.*s\n%*s", (int)(nl - h), h, HELP_COLUMN, "");
		fprintf(f, "%s\n", h);
	}
}
