#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# sudo ./unload.sh: detach from every cgroup and remove every pin.
# Succeeds when nothing is loaded.
set -eu
cd "$(dirname "$0")"
if [ "$(id -u)" -ne 0 ]; then
	echo "sockaccel: unload.sh must run as root" >&2
	exit 1
fi
if [ -x build/sockaccel ]; then
	exec build/sockaccel unload
fi
# No binary: removing the pins detaches the links just the same.
rm -f /sys/fs/bpf/sockaccel/sockaccel_* 2>/dev/null || true
rmdir /sys/fs/bpf/sockaccel 2>/dev/null || true
echo "unloaded"
