# SPDX-License-Identifier: GPL-2.0
# Shared test harness, sourced by tests/test_*.sh. Every test makes its own
# child cgroups (never the root) and network namespaces, and removes them,
# pins included, even on failure (EXIT trap). Traffic stays on loopback or
# inside namespaces created here. Every wait is bounded.

set -u
# Debian's own python3 first: python3-yaml and python3-prometheus-client are
# installed for it (scripts/deps.sh), and a version manager's shim in front
# of it (pyenv's costs 0.4 s per start here) makes tests that start python
# often several minutes slower.
[ -x /usr/bin/python3 ] && PATH=/usr/bin:$PATH
# Every test runs its own sockaccel instance (own programs, maps and pins,
# and its own state directory, removed at exit), never the default one.
export SOCKACCEL_PIN_ROOT=${SOCKACCEL_PIN_ROOT:-/sys/fs/bpf/sockaccel-test-$$}
# Its state directory is <pin root>-state: a SOCKACCEL_STATE_ROOT from the
# caller's environment would have every test share one (and forget it).
unset SOCKACCEL_STATE_ROOT
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SA="$TOP/build/sockaccel"
TOOLS="$TOP/build/tests"
TEST_NAME=$(basename "$0" .sh)
# Resources are recorded in files, not arrays: helpers are usually called
# as CG=$(new_cgroup x), i.e. in a subshell whose variables are lost.
_SA_STATE=$(mktemp -d /tmp/sockaccel-test.XXXXXX)
_SA_CLEANUPS=()
# Verdicts (ok, FAIL, SKIP) go to the test's own stdout, saved here, and
# failures are counted in a file: a check or die inside $(...) or a
# pipeline runs in a subshell, whose output may be captured and whose
# variables are lost, and neither may hide a failure.
exec {_SA_OUT}>&1

CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)

log()  { printf '  %s\n' "$*"; }
fail() { printf '  FAIL: %s\n' "$*" >&"$_SA_OUT"; printf '%s\n' "$*" >> "$_SA_STATE/fails"; }
pass() { printf '  ok: %s\n' "$*" >&"$_SA_OUT"; }
die()  { fail "$@"; exit 1; }
# _sa_fails: how many failures were recorded, in any subshell.
_sa_fails() { if [ -f "$_SA_STATE/fails" ]; then wc -l < "$_SA_STATE/fails"; else echo 0; fi; }

# skip REASON: the test cannot run here; it tested nothing, which is not a
# pass. Prints SKIP and exits 0; tests/run.sh (SA_TEST_SKIP_FILE) reports
# SKIP. A failure recorded before still fails the test (exit 1).
skip() {
	# In a subshell the exit would only end the subshell, and the test
	# would go on after reporting SKIP.
	[ "$BASH_SUBSHELL" -eq 0 ] || die "skip called in a subshell: $*"
	printf '  SKIP: %s\n' "$*" >&"$_SA_OUT"
	if [ -n "${SA_TEST_SKIP_FILE:-}" ]; then
		printf '%s\n' "$*" > "$SA_TEST_SKIP_FILE"
	fi
	exit 0
}

# check DESCRIPTION COMMAND...: pass if the command succeeds; returns its
# verdict, so a failed check can add diagnostics (check ... || log ...).
check() {
	local what=$1; shift
	if "$@"; then pass "$what"; else fail "$what"; return 1; fi
}

# Register a command to run at exit (LIFO).
on_exit() { _SA_CLEANUPS+=("$*"); }

_sa_cleanup() {
	local rc=$? i pid cg ns nfails
	for ((i = ${#_SA_CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${_SA_CLEANUPS[$i]}" >/dev/null 2>&1 || true
	done
	# Processes this test started, then anything left inside its cgroups
	# (those were created empty by this test, so everything in them is ours).
	while read -r pid; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done < <(cat "$_SA_STATE/pids" 2>/dev/null)
	while read -r cg; do
		"$SA" detach --cgroup "$cg" >/dev/null 2>&1 || true
		for pid in $(cat "$cg/cgroup.procs" 2>/dev/null); do
			kill -9 "$pid" 2>/dev/null
		done
	done < <(cat "$_SA_STATE/cgroups" 2>/dev/null)
	while read -r cg; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			[ -d "$cg" ] || break
			rmdir "$cg" 2>/dev/null && break
			sleep 0.2
		done
	done < <(tac "$_SA_STATE/cgroups" 2>/dev/null)
	while read -r ns; do
		ip netns del "$ns" 2>/dev/null || true
	done < <(cat "$_SA_STATE/netns" 2>/dev/null)
	nfails=$(_sa_fails)
	rm -rf "$_SA_STATE"
	# Unload only an instance this test may have created: a test refused
	# by require_not_loaded must leave somebody else's sockaccel alone.
	if [ -z "${SA_KEEP_LOADED:-}" ] && [ -z "${_SA_NOT_OURS:-}" ]; then
		"$SA" unload --forget >/dev/null 2>&1 || true
	fi
	if [ "$rc" -eq 0 ] && [ "$nfails" -gt 0 ]; then
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
	echo "$cg" >> "$_SA_STATE/cgroups"
	echo "$cg"
}

# new_netns NAME: a fresh network namespace with lo up; prints its name.
new_netns() {
	local ns="sa-$1-$$"
	ip netns add "$ns" || die "cannot create netns $ns"
	echo "$ns" >> "$_SA_STATE/netns"
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

# spawn CG NS CMD...: start CMD in the background inside cgroup CG and
# netns NS (NS may be "" for the current one); SPAWNED is its pid (the
# shell execs, so SPAWNED is CMD's own pid and can be signalled).
spawn() {
	local cg=$1 ns=$2; shift 2
	if [ -n "$ns" ]; then
		sh -c 'echo $$ > "$1/cgroup.procs" && ns=$2 && shift 2 && exec ip netns exec "$ns" "$@"' \
			sh "$cg" "$ns" "$@" &
	else
		sh -c 'echo $$ > "$1/cgroup.procs" && shift 2 && exec "$@"' sh "$cg" "" "$@" &
	fi
	SPAWNED=$!
	echo "$SPAWNED" >> "$_SA_STATE/pids"
}

# start_server CG NS PORT_FILE CMD...: start a server (CMD, which writes
# its port to PORT_FILE once it listens) in the background inside cgroup CG
# and netns NS, as spawn (its pid registered for cleanup); wait for
# PORT_FILE (bounded) and set SERVER_PID and SERVER_PORT, or die. Call it
# in the shell that will wait for the server's verdict (not in $(...)):
# only the parent of a process can wait for it.
start_server() {
	local cg=$1 ns=$2 pf=$3; shift 3
	# A port file left by an earlier server would be taken for this one's.
	rm -f "$pf"
	spawn "$cg" "$ns" "$@"
	SERVER_PID=$SPAWNED
	# A server that exited (bind failed, say) will never write it.
	wait_until 10 _sa_port_or_gone "$pf" "$SERVER_PID"
	[ -s "$pf" ] || die "server wrote no port to $pf within 10 s ($(_sa_alive "$SERVER_PID")): $*"
	SERVER_PORT=$(cat "$pf")
}
_sa_port_or_gone() { [ -s "$1" ] || ! kill -0 "$2" 2>/dev/null; }
_sa_alive() { if kill -0 "$1" 2>/dev/null; then echo "still running"; else echo "exited"; fi; }

# map_entries MAP [sum]: entries of a map pinned under the test's pin root,
# or with "sum" the sum of their values (bpftool's formatted output: maps
# with BTF); -1 if it cannot be read.
map_entries() {
	bpftool -j map dump pinned "$SOCKACCEL_PIN_ROOT/$1" 2> /dev/null |
		python3 -c 'import json, sys
try:
    d = json.load(sys.stdin)
    print(sum(e["formatted"]["value"] for e in d) if sys.argv[1:] == ["sum"] else len(d))
except Exception:
    print(-1)' "${2:-}"
}

# bg CMD...: start in the background (from the test's own shell, not a
# subshell), remember the pid for cleanup; $! is the pid afterwards.
bg() {
	"$@" &
	echo "$!" >> "$_SA_STATE/pids"
}

# nstat_value NS NAME: an absolute SNMP/netstat counter of the namespace
# (NS empty: this one).
nstat_value() {
	if [ -n "$1" ]; then
		ip netns exec "$1" nstat -az "$2"
	else
		nstat -az "$2"
	fi | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}

# tcp_out_segs [NS]: absolute TcpOutSegs of the namespace.
tcp_out_segs() { nstat_value "${1:-}" TcpOutSegs; }

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

# attach CG: load (once) and accelerate CG. Tests of other rules start
# without the splice guard's probation (SA_TEST_LOAD_OPTS), or every new
# tool's first connections would stay on TCP; test_splice.sh and
# test_compat.sh run with the defaults.
SA_TEST_LOAD_OPTS=${SA_TEST_LOAD_OPTS---probation 0 --probation-time 0}
attach() {
	# shellcheck disable=SC2086
	"$SA" load $SA_TEST_LOAD_OPTS >/dev/null || die "load failed"
	"$SA" attach --cgroup "$1" >/dev/null || die "attach $1 failed"
}

# wait_until SECONDS COMMAND...: until COMMAND succeeds (its output
# discarded), polled every 0.05 s; fails once SECONDS (whole seconds) have
# passed. Bounded in time, not in tries: a slow COMMAND cannot stretch it.
wait_until() {
	local end=$(( ${EPOCHREALTIME//[!0-9]/} + $1 * 1000000 ))
	shift
	until "$@" > /dev/null 2>&1; do
		[ "${EPOCHREALTIME//[!0-9]/}" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# left_netns PID: PID runs in another network namespace than this shell
# (spawn's `ip netns exec` has entered it). A gone PID has not.
left_netns() {
	local own
	own=$(stat -L -c %i /proc/self/ns/net)
	[ "$(stat -L -c %i "/proc/$1/ns/net" 2> /dev/null || echo "$own")" != "$own" ]
}

# wait_file FILE [SECONDS]: until FILE is non-empty (default 5 s).
wait_file() { wait_until "${2:-5}" test -s "$1"; }

# exe_field PATH FIELD: FIELD (state, kills, splices, conns, policy) of the
# executable file PATH in `sockaccel -v -j exe list`, "absent" if not there.
exe_field() {
	"$SA" -v -j exe list 2>/dev/null | python3 -c '
import json, os, sys
st = os.stat(sys.argv[1])
dev = (os.major(st.st_dev) << 20) | os.minor(st.st_dev)
exes = json.load(sys.stdin)
same = [e for e in exes if e["ino"] == st.st_ino and e["dev"] == dev]
# 6.1 knows a file on overlayfs by its layer'"'"'s device, not the one stat()
# shows (seen in the qemu guests): the inode number alone, if unique.
same = same or [e for e in exes if e["ino"] == st.st_ino]
print(same[0][sys.argv[2]] if len(same) == 1 else "absent")' "$1" "$2"
}

# Refuse to run over somebody's live sockaccel: tests unload at exit.
require_not_loaded() {
	if [ -d "$SOCKACCEL_PIN_ROOT" ] && [ -z "${SA_TEST_FORCE:-}" ]; then
		_SA_NOT_OURS=1
		die "sockaccel is loaded on this machine; tests would unload it (unload first, or set SA_TEST_FORCE=1)"
	fi
}

finish() {
	local n
	n=$(_sa_fails)
	if [ "$n" -gt 0 ]; then
		printf '%s: %d check(s) failed\n' "$TEST_NAME" "$n"
		exit 1
	fi
	exit 0
}
