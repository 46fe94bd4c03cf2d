# SPDX-License-Identifier: GPL-2.0
# Shared test harness, sourced by tests/test_*.sh. Every test makes its own
# child cgroups (never the root) and network namespaces, and removes them,
# pins included, even on failure (EXIT trap). Traffic stays on loopback or
# inside namespaces created here. Every wait is bounded.

set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SA="$TOP/build/sockaccel"
TOOLS="$TOP/build/tests"
TEST_NAME=$(basename "$0" .sh)
_SA_CGROUPS=()
_SA_NETNS=()
_SA_PIDS=()
_SA_CLEANUPS=()
_SA_FAILS=0

CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)

log()  { printf '  %s\n' "$*"; }
fail() { printf '  FAIL: %s\n' "$*"; _SA_FAILS=$((_SA_FAILS + 1)); }
pass() { printf '  ok: %s\n' "$*"; }
die()  { printf '  FAIL: %s\n' "$*"; exit 1; }

# check DESCRIPTION COMMAND...: pass if the command succeeds.
check() {
	local what=$1; shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

# Register a command to run at exit (LIFO).
on_exit() { _SA_CLEANUPS+=("$*"); }

_sa_cleanup() {
	local rc=$? i pid cg ns
	for ((i = ${#_SA_CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${_SA_CLEANUPS[$i]}" >/dev/null 2>&1 || true
	done
	for pid in "${_SA_PIDS[@]}"; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	for cg in "${_SA_CGROUPS[@]}"; do
		"$SA" detach --cgroup "$cg" >/dev/null 2>&1 || true
	done
	for ((i = ${#_SA_CGROUPS[@]} - 1; i >= 0; i--)); do
		cg=${_SA_CGROUPS[$i]}
		[ -d "$cg" ] || continue
		# Move stragglers (there should be none) to the parent, then remove.
		while read -r pid; do
			echo "$pid" > "$(dirname "$cg")/cgroup.procs" 2>/dev/null
		done < "$cg/cgroup.procs" 2>/dev/null
		rmdir "$cg" 2>/dev/null || true
	done
	for ns in "${_SA_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	if [ -z "${SA_KEEP_LOADED:-}" ]; then
		"$SA" unload >/dev/null 2>&1 || true
	fi
	if [ "$rc" -eq 0 ] && [ "$_SA_FAILS" -gt 0 ]; then
		rc=1
	fi
	exit "$rc"
}
trap _sa_cleanup EXIT
trap 'exit 130' INT TERM

require_root() {
	[ "$(id -u)" -eq 0 ] || die "tests must run as root"
	[ -n "$CG2" ] || die "no cgroup2 hierarchy mounted (load.sh mounts one)"
}

# new_cgroup NAME: a fresh child of the cgroup2 root; prints its path.
new_cgroup() {
	local cg="$CG2/sockaccel-test-$1-$$"
	mkdir "$cg" || die "cannot create $cg"
	_SA_CGROUPS+=("$cg")
	echo "$cg"
}

# new_netns NAME: a fresh network namespace with lo up; prints its name.
new_netns() {
	local ns="sa-$1-$$"
	ip netns add "$ns" || die "cannot create netns $ns"
	_SA_NETNS+=("$ns")
	ip -n "$ns" link set lo up
	echo "$ns"
}

# in_cgroup CG CMD...: run CMD inside cgroup CG (joined before exec).
in_cgroup() {
	local cg=$1; shift
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$cg" "$@"
}

# in_cgroup_netns CG NS CMD...: join the cgroup first, then the netns
# (ip netns exec remounts /sys, so the cgroup must be joined before).
in_cgroup_netns() {
	local cg=$1 ns=$2; shift 2
	sh -c 'echo $$ > "$1/cgroup.procs" && ns=$2 && shift 2 && exec ip netns exec "$ns" "$@"' \
		sh "$cg" "$ns" "$@"
}

# bg CMD...: start in the background, remember the pid for cleanup.
bg() {
	"$@" &
	_SA_PIDS+=("$!")
	echo "$!" > /dev/null
}
last_bg_pid() { echo "${_SA_PIDS[-1]}"; }

# tcp_out_segs [NS]: absolute TcpOutSegs of the namespace.
tcp_out_segs() {
	if [ -n "${1:-}" ]; then
		ip netns exec "$1" nstat -az TcpOutSegs | awk '$1 == "TcpOutSegs" { print $2 }'
	else
		nstat -az TcpOutSegs | awk '$1 == "TcpOutSegs" { print $2 }'
	fi
}

# counter NAME: a total from `sockaccel -j stats` (0 when not loaded).
counter() {
	"$SA" -j stats 2>/dev/null | python3 -c '
import json, sys
name = sys.argv[1]
try:
    d = json.load(sys.stdin)
except Exception:
    print(0); sys.exit()
print(d.get(name, d.get("pass_reasons", {}).get(name, 0)))' "$1"
}

attach() {
	"$SA" attach --cgroup "$1" >/dev/null || die "attach $1 failed"
}

# Refuse to run over somebody's live sockaccel: tests unload at exit.
require_not_loaded() {
	if [ -d /sys/fs/bpf/sockaccel ] && [ -z "${SA_TEST_FORCE:-}" ]; then
		die "sockaccel is loaded on this machine; tests would unload it (unload first, or set SA_TEST_FORCE=1)"
	fi
}

finish() {
	if [ "$_SA_FAILS" -gt 0 ]; then
		printf '%s: %d check(s) failed\n' "$TEST_NAME" "$_SA_FAILS"
		exit 1
	fi
	exit 0
}
