/* SPDX-License-Identifier: GPL-2.0 */
#ifndef SOCKACCEL_LOADER_OPTIONS_H
#define SOCKACCEL_LOADER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/*
 * The command line (options.c). Every command is a struct command: its
 * name, what it does, and tables of the options it takes (struct opt:
 * names, argument, help, where the value goes); opts_parse() reads argv
 * against them, the same way for every command:
 *
 *   --name VALUE, --name=VALUE, a unique prefix of a long name, -x VALUE,
 *   -xVALUE, switches together (-vj); options anywhere among the
 *   arguments, none after "--";
 *   -h, --help: the command's usage on stdout, exit 0;
 *   -v, -j (opts_global): before the command (main.c) or after it;
 *   an option of another command: "option '--x' does not apply to CMD";
 *   every error is one line (err_msg()).
 */

enum opt_arg {
	OPT_NO_ARG,		/* a switch */
	OPT_ARG,		/* a value: the next word, or attached */
	OPT_OPTIONAL_ARG,	/* attached, or the next word unless it starts with '-' */
};

struct opt {
	const char *name;	/* long name, without "--"; NULL: short only */
	char short_name;	/* 0: long only */
	enum opt_arg arg;
	const char *metavar;	/* the value in the help: "N", "DIR" */
	size_t offset;		/* where the value goes, in its group's struct */
	/*
	 * Checks and stores the value (NULL: an optional one not given);
	 * else err_msg() and -1. Without it, a switch sets a bool and a
	 * value is kept as a const char *.
	 */
	int (*parse)(const char *value, void *field);
	const char *help;	/* lines (\n) for opts_help(); NULL: not shown */
};
/* A table of options ends with an empty entry: {}. */

/* A table, and where its struct is in the command's options struct. */
struct opt_group {
	const struct opt *opts;
	size_t base;
};

#define OPTS_MAX_GROUPS	3
#define OPTS_MAX_ARGS	4

struct command {
	const char *name;	/* "load"; a subcommand "policy add"; NULL: sockaccel */
	const char *summary;	/* its line in sockaccel --help */
	int (*run)(int argc, char **argv);	/* argv[0]: the name */
	void (*usage)(void);	/* on stdout */
	struct opt_group opts[OPTS_MAX_GROUPS];	/* up to the first without opts */
	int max_args;		/* positional arguments it takes (<= OPTS_MAX_ARGS) */
	/* The first positional argument is a subcommand: it and the rest are its own. */
	bool stop_at_arg;
	const struct command *const *subcommands;	/* NULL-terminated */
};

/* Positional arguments, in order: v[0..n-1]. */
struct opts_args {
	int n;
	char **v;
	char *buf[OPTS_MAX_ARGS];
};

enum { OPTS_ERROR = -1, OPTS_OK = 0, OPTS_HELP = 1 };

/*
 * argv[1..argc-1] against c's options, values into dest (c's options
 * struct; NULL if c has none), positional arguments into *args (NULL if
 * it takes none). OPTS_OK, or OPTS_HELP (usage printed), or OPTS_ERROR
 * (error printed): then the command returns opts_exit().
 */
int opts_parse(const struct command *c, int argc, char **argv, void *dest,
	       struct opts_args *args);

static inline int opts_exit(int rc)
{
	return rc == OPTS_HELP ? 0 : 1;
}

/* "  --name VALUE          help", one option a line, help from column 24. */
void opts_help(FILE *f, const struct opt *opts);

/* Every command, for errors (main.c sets it once): sockaccel's own. */
void commands_init(const struct command *root);
/* The subcommand of parent called word ("add" in "policy add"), NULL if none. */
const struct command *command_find(const struct command *parent, const char *word);
/* A command of sockaccel by its name (config files). */
const struct command *command_by_name(const char *name);

/* -v and -j (opt_verbose, opt_json), taken by every command. */
extern const struct opt opts_global[];

#endif
