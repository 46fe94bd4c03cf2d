#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# sudo ./load.sh [CGROUP_DIR]
# Installs missing build packages (apt), builds, mounts bpffs and a cgroup2
# hierarchy if missing, loads sockaccel and attaches it to CGROUP_DIR
# (default: the cgroup v2 root, i.e. every process on the machine).
# Running it again on the same cgroup is a no-op; on another cgroup it
# attaches that one too, sharing the same maps.
set -eu
cd "$(dirname "$0")"
. scripts/deps.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "sockaccel: load.sh must run as root" >&2
	exit 1
fi

if [ ! -x build/sockaccel ] || [ -n "$(find bpf loader Makefile -newer build/sockaccel 2>/dev/null | head -1)" ]; then
	sa_install_missing $SA_BUILD_PKGS
	make -s
fi

if ! awk '$3 == "bpf" && $2 == "/sys/fs/bpf" { f = 1 } END { exit !f }' /proc/mounts; then
	mkdir -p /sys/fs/bpf
	mount -t bpf -o mode=0700 bpf /sys/fs/bpf
	echo "sockaccel: mounted bpffs at /sys/fs/bpf"
fi

cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
if [ -z "$cg2" ]; then
	# Hybrid/v1 hosts keep v1 controllers under /sys/fs/cgroup (a tmpfs).
	if awk '$2 == "/sys/fs/cgroup" && $3 == "tmpfs" { f = 1 } END { exit !f }' /proc/mounts; then
		cg2=/sys/fs/cgroup/unified
	else
		cg2=/sys/fs/cgroup
	fi
	mkdir -p "$cg2"
	mount -t cgroup2 none "$cg2"
	echo "sockaccel: mounted a cgroup2 hierarchy at $cg2"
fi

exec build/sockaccel attach --cgroup "${1:-$cg2}"
