/* SPDX-License-Identifier: GPL-2.0 */
#ifndef SOCKACCEL_LOADER_NAMES_H
#define SOCKACCEL_LOADER_NAMES_H

#include <stdio.h>
#include <linux/types.h>
#include "json.h"

/*
 * Names of what the BPF side counts and reports (names.c): the names
 * scripts see in stats -j, status -j, metrics, trace, sockaccel(8).
 */
const char *reason_name(unsigned int reason);	/* enum sa_reason; "unknown" */
const char *counter_name(unsigned int counter);	/* enum sa_counter, reasons after SA_C_REASON_BASE */
const char *counter_help(unsigned int counter);	/* one sentence, for metrics */
const char *event_name(__u32 type);		/* enum sa_event_type; "unknown" */
/* Counters kept per reason: name ("pass_reasons", ...) and first counter. */
struct reason_group {
	const char *name;
	unsigned int base;
};
extern const struct reason_group reason_groups[];
/* The kernel probe's findings (sa_config.kernel_flags): status and probe. */
void kernel_flags_describe(__u32 flags, FILE *f);
void kernel_flags_json(struct json *w, __u32 flags);

#endif
