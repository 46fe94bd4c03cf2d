#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# sudo ./trace.sh: one line per connection event (accelerated, passed with
# the reason, evicted, closed with byte counts) until Ctrl-C. Tracing is on
# only while this runs.
set -eu
cd "$(dirname "$0")"
if [ "$(id -u)" -ne 0 ]; then
	echo "sockaccel: trace.sh must run as root" >&2
	exit 1
fi
exec build/sockaccel trace "$@"
