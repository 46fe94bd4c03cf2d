#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# sockaccel benchmark driver (`make bench`, root). Creates its own network
# namespace and two child cgroups, attaches sockaccel to one of them, and
# for every cell runs plain TCP (cgroup not attached), sockaccel (cgroup
# attached) and AF_UNIX, interleaved, BENCH_REPS times; then redis-benchmark
# plain vs accelerated. Medians, ratios, counters and a chart go to
# bench/results/ (results.md, results.json, chart.svg, raw.jsonl, cost.jsonl,
# run.log); sabench cells also get one bpf_stats run per variant (cost_one).
# sockaccel is loaded inside the benchmark's namespace, so its join hook
# (tc ingress on that namespace's lo) sees the traffic; a second namespace
# without a hook measures what the hook costs (cells with a "nohook"
# variant). Cells whose connections stay on TCP by design also run a
# "floor" variant: a third cgroup with empty programs at sockaccel's three
# cgroup hooks (bench/floor.bpf.c), what attaching anything costs.
# PostgreSQL (pgbench) and saxfer cells follow redis's pattern: plain vs
# sockaccel only. Last, the bystander cells: plain TCP with sockaccel
# loaded against not loaded at all (only if this script loaded it).
# Everything it creates is removed at exit; sockaccel is unloaded only if
# this script loaded it. See bench/README.md.
#
# Environment:
#   BENCH_REPS=5        repetitions per variant and cell
#   BENCH_SECONDS=2     measured seconds per sabench run
#   BENCH_QUICK=1       smoke run: BENCH_REPS=1 BENCH_SECONDS=1 unless set
#   BENCH_CELLS=REGEX   only cells whose id matches (grep -E), e.g. 'stream|crr'
#   BENCH_REDIS=0       skip the redis-benchmark comparison
#   BENCH_PG=0          skip the PostgreSQL (pgbench) comparison
#   BENCH_REDIS_N=N     requests per redis test at -P 1 (-P 16 uses 8N)
#   BENCH_OUT=DIR       results directory (default bench/results)
#   BENCH_WAIT=120      seconds to wait for someone else's sockaccel to unload
#   BENCH_FORCE=1       share an already loaded sockaccel (never unloaded here)
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SA="$TOP/build/sockaccel"
SABENCH="$TOP/build/bench/sabench"
SAXFER="$TOP/build/tests/saxfer"
FLOOR_OBJ="$TOP/build/bench/floor.bpf.o"
INDEP="$TOP/bench/indep.py"
XFER="$TOP/bench/xfer.py"
REPORT="$TOP/bench/report.py"
PGBIN=${BENCH_PGBIN:-/usr/lib/postgresql/15/bin}

if [ -n "${BENCH_QUICK:-}" ]; then
	: "${BENCH_REPS:=1}" "${BENCH_SECONDS:=1}"
fi
REPS=${BENCH_REPS:-5}
SECS=${BENCH_SECONDS:-2}
CELLS_RE=${BENCH_CELLS:-.}
REDIS=${BENCH_REDIS:-1}
PG=${BENCH_PG:-1}
REDIS_N=${BENCH_REDIS_N:-$((50000 * SECS))}
OUT=${BENCH_OUT:-$TOP/bench/results}
WAIT=${BENCH_WAIT:-120}
STALL=${BENCH_STALL:-5}
RPORT_PLAIN=65101	# redis ports: above the netns ephemeral range (1024-65000)
RPORT_ACCEL=65102
PGPORT_PLAIN=65103	# PostgreSQL ports, likewise
PGPORT_ACCEL=65104

die() { echo "bench: $*" >&2; exit 1; }
isnum() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }
isnum "$REPS" && [ "$REPS" -ge 1 ] || die "BENCH_REPS must be a positive integer"
isnum "$SECS" && [ "$SECS" -ge 1 ] && [ "$SECS" -le 600 ] || die "BENCH_SECONDS must be an integer 1..600"
isnum "$REDIS_N" && [ "$REDIS_N" -ge 1000 ] || die "BENCH_REDIS_N must be an integer >= 1000"
isnum "$WAIT" || die "BENCH_WAIT must be an integer"
[ "$(id -u)" -eq 0 ] || die "must run as root (sudo make bench)"
[ -x "$SA" ] && [ -x "$SABENCH" ] && [ -x "$SAXFER" ] ||
	die "build first: make (build/sockaccel, build/bench/sabench, build/tests/saxfer)"
command -v python3 >/dev/null || die "python3 is needed for the report"
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$CG2" ] || die "no cgroup2 hierarchy mounted"

# Somebody else's sockaccel (e.g. a concurrent `make test`, which unloads
# at exit): wait for it to go, or refuse.
if [ -d /sys/fs/bpf/sockaccel ] && [ -z "${BENCH_FORCE:-}" ]; then
	echo "bench: sockaccel is already loaded (someone else's test?); waiting up to ${WAIT}s for it to be unloaded"
	waited=0
	while [ -d /sys/fs/bpf/sockaccel ] && [ "$waited" -lt "$WAIT" ]; do
		sleep 2
		waited=$((waited + 2))
	done
	[ -d /sys/fs/bpf/sockaccel ] &&
		die "sockaccel is still loaded; unload it first or set BENCH_FORCE=1 (it will then be shared and not unloaded)"
fi
WE_LOADED=0
[ -d /sys/fs/bpf/sockaccel ] || WE_LOADED=1

TMP=$(mktemp -d /tmp/sabench.XXXXXX)
# Private copies: build/ is shared, and a rebuild during the run (new
# counter layout, say) must not change the loader that reads our counters.
cp "$SA" "$TMP/sockaccel" && cp "$SABENCH" "$TMP/sabench" && cp "$SAXFER" "$TMP/saxfer" &&
	cp "$INDEP" "$TMP/indep.py" && cp "$XFER" "$TMP/xfer.py" || die "cannot copy the binaries to $TMP"
cp "$FLOOR_OBJ" "$TMP/floor.bpf.o" 2>/dev/null
SA_MTIME=$(date -r "$SA" '+%F %T' 2>/dev/null)
SA="$TMP/sockaccel"
SABENCH="$TMP/sabench"
SAXFER="$TMP/saxfer"
INDEP="$TMP/indep.py"
XFER="$TMP/xfer.py"
NS="sa-bench-$$"
NS_NOHOOK="sa-bench-nohook-$$"	# same cgroups, no join hook on its lo
CG_ON="$CG2/sockaccel-bench-on-$$"
CG_OFF="$CG2/sockaccel-bench-off-$$"
CG_FLOOR="$CG2/sockaccel-bench-floor-$$"
FLOOR_PIN="/sys/fs/bpf/sockaccel-bench-floor-$$"	# beside, not under, sockaccel's pin root
FLOOR=0
PIDS=()
MADE_CGS=()
MADE_NS=0
PGDIR=""

cleanup() {
	local rc=$? pid cg left
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	"$SA" detach --cgroup "$CG_ON" >/dev/null 2>&1
	[ "$FLOOR" = 1 ] && floor_detach
	rm -rf "$FLOOR_PIN"
	for cg in "${MADE_CGS[@]}"; do
		[ -d "$cg" ] || continue
		# Only this script puts processes here: end leftovers, by pid.
		while read -r pid; do
			kill "$pid" 2>/dev/null
		done < "$cg/cgroup.procs" 2>/dev/null
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			[ -s "$cg/cgroup.procs" ] || break
			sleep 0.1
		done
		while read -r pid; do
			echo "$pid" > "$CG2/cgroup.procs" 2>/dev/null
		done < "$cg/cgroup.procs" 2>/dev/null
		rmdir "$cg" 2>/dev/null || echo "bench: could not remove $cg" >&2
	done
	[ "$MADE_NS" = 1 ] && ip netns del "$NS" 2>/dev/null
	[ "$MADE_NS" = 1 ] && ip netns del "$NS_NOHOOK" 2>/dev/null
	if [ "$WE_LOADED" = 1 ] && [ -d /sys/fs/bpf/sockaccel ]; then
		left=$("$SA" -j status 2>/dev/null | python3 -c \
			'import json,sys; print(len(json.load(sys.stdin).get("cgroups", [])))' 2>/dev/null)
		if [ "${left:-0}" = 0 ]; then
			"$SA" unload >/dev/null 2>&1
		else
			echo "bench: sockaccel left loaded: $left other cgroup(s) attached meanwhile" >&2
		fi
	fi
	[ -n "${BPF_STATS0:-}" ] && sysctl -q -w kernel.bpf_stats_enabled="$BPF_STATS0" 2>/dev/null
	rm -rf "$TMP"
	[ -n "$PGDIR" ] && rm -rf "$PGDIR"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$CG_ON" && MADE_CGS+=("$CG_ON") || die "cannot create $CG_ON"
mkdir "$CG_OFF" && MADE_CGS+=("$CG_OFF") || die "cannot create $CG_OFF"
ip netns add "$NS" || die "cannot create netns $NS"
MADE_NS=1
ip netns add "$NS_NOHOOK" || die "cannot create netns $NS_NOHOOK"
for ns in "$NS" "$NS_NOHOOK"; do
	ip -n "$ns" link set lo up
	# Serial connect/close cycles leave TIME_WAIT behind on the client side.
	ip netns exec "$ns" sysctl -q -w net.ipv4.ip_local_port_range="1024 65000" \
		net.ipv4.tcp_tw_reuse=1 >/dev/null || true
done
# Load inside our namespace: the join hook goes on the lo that `load` sees
# (nsenter, not `ip netns exec`, which remounts /sys and hides bpffs).
sa_load() { nsenter --net="/run/netns/$NS" "$SA" load >/dev/null; }
HOOK_NOTE="join hook on $NS's lo"
if [ "$WE_LOADED" = 1 ]; then
	sa_load || die "sockaccel load (in netns $NS) failed"
else
	HOOK_NOTE="shared instance (BENCH_FORCE): its join hook is where it was loaded, not necessarily on $NS's lo"
fi
"$SA" attach --cgroup "$CG_ON" >/dev/null || die "sockaccel attach $CG_ON failed"
CGID=$(stat -c %i "$CG_ON")

mkdir -p "$OUT" || die "cannot create $OUT"
RAW="$OUT/raw.jsonl"
LOG="$OUT/run.log"
: > "$RAW"
: > "$LOG"
rm -f "$OUT/results.md" "$OUT/results.json" "$OUT/chart.svg" "$OUT/machine.json" "$OUT/cost.jsonl"
"$SA" -j status > "$TMP/status0.json" 2>/dev/null
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
GIT="$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$TOP" diff --quiet HEAD -- bpf loader 2>/dev/null || echo '+uncommitted-bpf/loader-changes')"
START=$(date +%s)

say() { echo "$*" | tee -a "$LOG"; }

# "${IN[@]}" CGROUP NETNS CMD...: run CMD in the cgroup (joined first:
# `ip netns exec` remounts /sys) and the namespace; sh and ip exec, so the
# pid is CMD's.
IN=(sh -c 'echo $$ > "$1/cgroup.procs" && ns=$2 && shift 2 && exec ip netns exec "$ns" "$@"' sh)

# Make sure our cgroup is still attached (a concurrent test's unload would
# have removed it) and snapshot the counters into FILE.
snapshot() {
	"$SA" -j status > "$1" 2>/dev/null
	if ! grep -q "\"path\":\"$CG_ON\"" "$1"; then
		say "  WARNING: $CG_ON is no longer attached (someone unloaded sockaccel?); attaching again"
		[ -d /sys/fs/bpf/sockaccel ] || WE_LOADED=1
		"$SA" attach --cgroup "$CG_ON" >/dev/null 2>&1
		"$SA" -j status > "$1" 2>/dev/null
	fi
}

# ------------------------------------------------------------------ cells
human() {
	if [ "$1" -ge 1048576 ]; then echo "$(($1 / 1048576))M"
	elif [ "$1" -ge 1024 ]; then echo "$(($1 / 1024))K"
	else echo "$1B"; fi
}
# A cell: "ID|KIND|VARIANTS|DESCRIPTION|ARGS". KIND: sabench; fresh (sabench
# from a new copy of the binary per run: a new executable, on probation);
# py (bench/indep.py: client and server processes in Python); xfer
# (bench/xfer.py: one verified saxfer transfer). VARIANTS: plain (cgroup
# not attached), sockaccel (attached), unix (sabench over AF_UNIX),
# nohook (attached, in the namespace without a join hook), floor (empty
# programs attached, bench/floor.bpf.c). An empty DESCRIPTION lets
# report.py describe the cell.
V3="plain sockaccel unix"
CELLS=()
for w in 64 1024 16384 131072 1048576; do
	for c in 1 2; do CELLS+=("stream-$(human $w)-${c}cpu|sabench|$V3||stream --size $w --cpus $c"); done
done
# Mid-size writes across two CPUs: sender and reader take turns on the
# reader's socket lock (bpf_tcp_ingress(), tcp_bpf_recvmsg()); the worst
# size of a sweep on the Intel hosts (README, Performance).
CELLS+=("stream-32K-2cpu|sabench|$V3||stream --size 32768 --cpus 2")
for c in 1 2; do CELLS+=("streams64-16K-${c}cpu|sabench|$V3||stream --conns 64 --size 16384 --cpus $c"); done
for s in 64 1024 16384; do
	for c in 1 2; do CELLS+=("rr-$(human $s)-${c}cpu|sabench|$V3||rr --size $s --cpus $c"); done
done
for c in 1 2; do CELLS+=("crr-${c}cpu|sabench|$V3 floor||crr --cpus $c"); done
# How other benchmarks wait and connect (issue 12, item 5): poll() instead
# of epoll; blocking sockets (stay on TCP; with the join hook they are
# candidates that never join: nohook = the same without the hook); a
# blocking listener and connect() made nonblocking after (late join); a
# new executable (probation); a Python client and server (two processes).
CELLS+=("rr-64B-poll-1cpu|sabench|$V3|req/resp 64 B, poll() on nonblocking sockets, 1 CPU|rr --size 64 --cpus 1 --io poll")
CELLS+=("rr-64B-block-1cpu|sabench|plain sockaccel nohook unix floor|req/resp 64 B, blocking sockets, 1 CPU|rr --size 64 --cpus 1 --io block")
CELLS+=("crr-block-1cpu|sabench|plain sockaccel nohook unix floor|connect+64 B req/resp+close, blocking sockets, 1 CPU|crr --cpus 1 --io block")
CELLS+=("rr-64B-latenb-1cpu|sabench|plain sockaccel|req/resp 64 B, blocking listener, accepted socket made nonblocking after accept() (late join), 1 CPU|rr --size 64 --cpus 1 --late-nonblock")
CELLS+=("rr-64B-fresh-1cpu|fresh|plain sockaccel floor|req/resp 64 B, 1 CPU, a new executable each run (probation)|rr --size 64 --cpus 1")
CELLS+=("crr-fresh-1cpu|fresh|plain sockaccel floor|connect+64 B req/resp+close, 1 CPU, a new executable each run (probation)|crr --cpus 1")
CELLS+=("py-rr-64B-poll-1cpu|py|plain sockaccel|Python client and server processes, req/resp 64 B, poll(), 1 CPU|rr --size 64 --cpus 1 --io poll")
CELLS+=("py-crr-block-1cpu|py|plain sockaccel floor|Python client and server processes, connect+64 B req/resp+close, blocking sockets, 1 CPU|crr --cpus 1 --io block")
# The join hook at work: a reader that stalls once (its direction falls
# back to TCP and comes back), and a server that accepts on a blocking
# listener and makes each socket nonblocking after accept() (joins late).
CELLS+=("xfer-stall|xfer|plain sockaccel|200 MB stream, reader sleeps 300 ms once after 50 MB|--bytes 200000000 --server-arg=--stall-at --server-arg=50000000 --server-arg=--stall-ms --server-arg=300")
CELLS+=("xfer-latejoin|xfer|plain sockaccel|100 MB stream in 1 MiB writes to a server that makes accepted sockets nonblocking (late join)|--bytes 100000000 --write-size 1048576 --server-arg=--late-nonblock")

# What loading sockaccel costs processes it does not serve: plain TCP in
# the cgroup that is not attached, with sockaccel loaded ("plain", the
# baseline of every cell above) and not loaded at all ("unloaded"). The
# guard's syscall tracepoints run for every process on the machine
# (docs/kernel-limitations.md, row 9); the join hook for every segment on
# $NS's lo, as on the host's loopback where sockaccel was loaded in the
# host's namespace; kind sabench-nohook runs in $NS_NOHOOK, as a pod's own
# namespace. Run last, after redis and PostgreSQL: each unloaded run
# unloads sockaccel and loads it again after, which drops every map under
# the pin root (the listeners' statistics among them; what was learned
# about executables is kept). Only when this script loaded sockaccel.
BYSTANDER=()
BYSTANDER+=("bystander-rr-64B-1cpu|sabench|plain unloaded|req/resp 64 B, 1 CPU, not attached, on a loopback with a join hook|rr --size 64 --cpus 1")
BYSTANDER+=("bystander-rr-64B-block-1cpu|sabench|plain unloaded|req/resp 64 B, blocking sockets, 1 CPU, not attached, on a loopback with a join hook|rr --size 64 --cpus 1 --io block")
BYSTANDER+=("bystander-crr-1cpu|sabench|plain unloaded|connect+64 B req/resp+close, 1 CPU, not attached, on a loopback with a join hook|crr --cpus 1")
BYSTANDER+=("bystander-rr-64B-nohook-1cpu|sabench-nohook|plain unloaded|req/resp 64 B, 1 CPU, not attached, a namespace without a join hook|rr --size 64 --cpus 1")

SEL=()
for cell in "${CELLS[@]}"; do
	echo "${cell%%|*}" | grep -Eq -- "$CELLS_RE" && SEL+=("$cell")
done
BSEL=()
for cell in "${BYSTANDER[@]}"; do
	echo "${cell%%|*}" | grep -Eq -- "$CELLS_RE" && BSEL+=("$cell")
done
if [ "${#BSEL[@]}" -gt 0 ] && [ "$WE_LOADED" != 1 ]; then
	say "bench: sockaccel was loaded before the bench (shared): not unloading it, no bystander cells"
	BSEL=()
fi

# The floor variant's cgroup: floor.bpf.o's three programs pinned beside
# sockaccel's pins (`sockaccel load` mounted bpffs) and attached with
# BPF_F_ALLOW_MULTI, as sockaccel attaches its own.
FLOOR_HOOKS="sock_ops:floor_sockops getsockopt:floor_getopt setsockopt:floor_setopt"
floor_detach() {
	local h
	for h in $FLOOR_HOOKS; do
		bpftool cgroup detach "$CG_FLOOR" "${h%%:*}" pinned "$FLOOR_PIN/${h#*:}" >/dev/null 2>&1
	done
}
floor_attach() {
	local h
	[ -s "$TMP/floor.bpf.o" ] && command -v bpftool >/dev/null || return 1
	mkdir "$CG_FLOOR" && MADE_CGS+=("$CG_FLOOR") || return 1
	FLOOR=1
	bpftool prog loadall "$TMP/floor.bpf.o" "$FLOOR_PIN" >/dev/null 2>&1 || return 1
	for h in $FLOOR_HOOKS; do
		bpftool cgroup attach "$CG_FLOOR" "${h%%:*}" pinned "$FLOOR_PIN/${h#*:}" multi \
			>/dev/null 2>&1 || return 1
	done
}
if printf '%s\n' "${SEL[@]}" | grep -q '^[^|]*|[^|]*|[^|]* floor|' && ! floor_attach; then
	say "bench: cannot attach the floor programs ($FLOOR_OBJ, bpftool): no floor variant"
	SEL=("${SEL[@]// floor|/|}")
fi
if [ "$REDIS" = 1 ] && ! command -v redis-server >/dev/null; then
	say "bench: redis-server not found, skipping the redis comparison"
	REDIS=0
fi
if [ "$PG" = 1 ] && { [ ! -x "$PGBIN/postgres" ] || ! command -v pgbench >/dev/null ||
	! id postgres >/dev/null 2>&1; }; then
	say "bench: PostgreSQL ($PGBIN/postgres, pgbench, user postgres) not found, skipping pgbench"
	PG=0
fi
REDIS_RUNS=0
[ "$REDIS" = 1 ] && REDIS_RUNS=$((REPS * 2 * 2))
PG_RUNS=0
[ "$PG" = 1 ] && PG_RUNS=$((REPS * 2 * 2))
TOTAL=$((REDIS_RUNS + PG_RUNS))
for cell in "${SEL[@]}" "${BSEL[@]}"; do
	IFS='|' read -r _ _ vs _ _ <<< "$cell"
	set -- $vs
	TOTAL=$((TOTAL + $# * REPS))
done
DONE=0

progress() {
	local now el eta
	now=$(date +%s)
	el=$((now - START))
	if [ "$DONE" -gt 0 ]; then eta=$((el * (TOTAL - DONE) / DONE)); else eta=0; fi
	printf '[%3d/%d %3ds, ~%ds left] %s\n' "$DONE" "$TOTAL" "$el" "$eta" "$*" | tee -a "$LOG"
}

rotated() { # rotated N V...: the variants in order starting at index N mod their count
	local n=$1 i
	shift
	local vs=("$@")
	for ((i = 0; i < ${#vs[@]}; i++)); do echo "${vs[$(((i + n) % ${#vs[@]}))]}"; done
}

say "sockaccel bench: ${#SEL[@]} cells x 2-5 variants x $REPS reps x ${SECS}s$([ "$REDIS" = 1 ] && echo ", redis -n $REDIS_N")$([ "$PG" = 1 ] && echo ", pgbench -T $SECS"); netns $NS ($HOOK_NOTE) and $NS_NOHOOK, cgroups $CG_ON (attached) and $CG_OFF; $TOTAL runs"
say "machine: $(uname -r), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) CPUs, load $LOAD_START"

# Before any cell: the bench's copy of sabench (and Python, for the py
# cells) past probation (8 connections and 1 s in an attached cgroup), so
# that no cell depends on the order the cells run in. The fresh cells use
# new copies on purpose.
"${IN[@]}" "$CG_ON" "$NS" "$SABENCH" crr --seconds 1.2 --stall "$STALL" >/dev/null 2>&1
if printf '%s\n' "${SEL[@]}" | grep -q '^[^|]*|py|'; then
	"${IN[@]}" "$CG_ON" "$NS" python3 "$INDEP" crr --seconds 1.2 --cpus 0 >/dev/null 2>&1
fi
if printf '%s\n' "${SEL[@]}" | grep -q '^[^|]*|xfer|'; then
	"${IN[@]}" "$CG_ON" "$NS" python3 "$XFER" --saxfer "$SAXFER" --conns 10 --bytes 100000 \
		>/dev/null 2>&1
	sleep 1
fi

FRESH_N=0
# cell_cmd KIND VARIANT SECONDS ARGS...: sets CMD, CMD_CG, CMD_NS (and
# CMD_BIN, a fresh copy to remove after the run).
cell_cmd() {
	local kind=$1 variant=$2 secs=$3 tr=tcp4
	shift 3
	CMD_CG=$CG_OFF CMD_NS=$NS CMD_BIN=""
	case $variant in
	sockaccel) CMD_CG=$CG_ON ;;
	nohook) CMD_CG=$CG_ON CMD_NS=$NS_NOHOOK ;;
	floor) CMD_CG=$CG_FLOOR ;;
	unix) tr=unix ;;
	esac
	case $kind in
	sabench) CMD=("$SABENCH" "$@" --transport "$tr" --seconds "$secs" --stall "$STALL") ;;
	sabench-nohook)
		CMD_NS=$NS_NOHOOK
		CMD=("$SABENCH" "$@" --transport "$tr" --seconds "$secs" --stall "$STALL")
		;;
	fresh)
		FRESH_N=$((FRESH_N + 1))
		CMD_BIN="$TMP/sabench-fresh-$FRESH_N"
		cp "$SABENCH" "$CMD_BIN" || die "cannot copy sabench"
		CMD=("$CMD_BIN" "$@" --transport "$tr" --seconds "$secs" --stall "$STALL")
		;;
	py) CMD=(python3 "$INDEP" "$@" --seconds "$secs") ;;
	xfer) CMD=(python3 "$XFER" --saxfer "$SAXFER" --timeout $((3 * STALL + 30)) "$@") ;;
	*) die "unknown cell kind $kind" ;;
	esac
}

run_one() { # CELL KIND VARIANT REP DESC ARGS...
	local cell=$1 kind=$2 variant=$3 rep=$4 desc=$5 rc t0 t1 summary
	shift 5
	cell_cmd "$kind" "$variant" "$SECS" "$@"
	case $variant in sockaccel | nohook) snapshot "$TMP/before.json" ;; esac
	# The bystander cells' unloaded variant: no sockaccel for this run,
	# then loaded and attached again as at the start.
	if [ "$variant" = unloaded ]; then
		"$SA" unload >/dev/null || die "sockaccel unload (bystander cells) failed"
	fi
	t0=$(date +%s.%N)
	timeout -k 5 $((SECS + 3 * STALL + 40)) "${IN[@]}" "$CMD_CG" "$CMD_NS" "${CMD[@]}" \
		> "$TMP/out.json" 2> "$TMP/err.txt"
	rc=$?
	t1=$(date +%s.%N)
	case $variant in sockaccel | nohook) "$SA" -j status > "$TMP/after.json" 2>/dev/null ;; esac
	if [ "$variant" = unloaded ]; then
		{ sa_load && "$SA" attach --cgroup "$CG_ON" >/dev/null; } ||
			die "sockaccel load (bystander cells) failed"
	fi
	[ -n "$CMD_BIN" ] && rm -f "$CMD_BIN"
	summary=$(python3 "$REPORT" record "$RAW" cell="$cell" variant="$variant" rep="$rep" \
		desc="$desc" out="$TMP/out.json" before="$TMP/before.json" after="$TMP/after.json" \
		cgpath="$CG_ON" cgid="$CGID" rc="$rc" wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
	DONE=$((DONE + 1))
	progress "$(printf '%-18s %-9s rep %d/%d: %s' "$cell" "$variant" "$rep" "$REPS" "$summary")"
	if [ "$rc" -ne 0 ] && [ -s "$TMP/err.txt" ]; then
		sed 's/^/    /' "$TMP/err.txt" | tail -5 | tee -a "$LOG"
	fi
	rm -f "$TMP/before.json" "$TMP/after.json"
}

# What sockaccel's programs cost, measured rather than read from ratios
# that the machine's noise moves by 10-40%: one more 1 s run per variant
# (AF_UNIX aside) with kernel.bpf_stats_enabled=1, which makes
# bpf_prog_run() add each program's run time to its run_time_ns; the
# delta over sockaccel's programs (their names start with sockaccel_) per
# operation. Not part of the medians: the statistics cost two clock reads
# per program run. The plain variant pays too: the guard's tracepoints
# (guard.bpf.c) run for every process on the machine.
cost_one() { # CELL KIND VARIANT ARGS...
	local cell=$1 kind=$2 variant=$3 rc
	shift 3
	cell_cmd "$kind" "$variant" 1 "$@"
	bpftool -j prog show > "$TMP/progs0.json" 2>/dev/null || return 0
	timeout -k 5 $((1 + 3 * STALL + 40)) "${IN[@]}" "$CMD_CG" "$CMD_NS" "${CMD[@]}" \
		> "$TMP/out.json" 2> "$TMP/err.txt"
	rc=$?
	bpftool -j prog show > "$TMP/progs1.json" 2>/dev/null
	[ -n "$CMD_BIN" ] && rm -f "$CMD_BIN"
	python3 "$REPORT" cost "$OUT/cost.jsonl" cell="$cell" variant="$variant" rc="$rc" \
		out="$TMP/out.json" before="$TMP/progs0.json" after="$TMP/progs1.json" | tee -a "$LOG"
}

# run_cell CELL: its variants BENCH_REPS times, in a rotating order; leaves
# id, kind, args and vlist set for the caller.
run_cell() {
	local vs desc argstr rep v
	IFS='|' read -r id kind vs desc argstr <<< "$1"
	read -r -a args <<< "$argstr"
	read -r -a vlist <<< "$vs"
	for ((rep = 1; rep <= REPS; rep++)); do
		for v in $(rotated "$rep" "${vlist[@]}"); do
			run_one "$id" "$kind" "$v" "$rep" "$desc" "${args[@]}"
		done
	done
}

BPF_STATS0=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null)
for cell in "${SEL[@]}"; do
	run_cell "$cell"
	case $kind in sabench | fresh) ;; *) continue ;; esac
	[ -n "$BPF_STATS0" ] && sysctl -q -w kernel.bpf_stats_enabled=1 2>/dev/null || continue
	for v in "${vlist[@]}"; do
		[ "$v" = unix ] || cost_one "$id" "$kind" "$v" "${args[@]}"
	done
	sysctl -q -w kernel.bpf_stats_enabled="$BPF_STATS0"
done

# ------------------------------------------------------------------ redis
redis_up() { # PORT: wait (bounded) until the server answers
	local i
	for i in $(seq 100); do
		[ "$(ip netns exec "$NS" redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
		sleep 0.1
	done
	return 1
}

if [ "$REDIS" = 1 ]; then
	# One server per variant, each in its variant's cgroup (accepted
	# sockets belong to the listener's cgroup), unpinned.
	# Ports outside the namespace's ephemeral range: the crr cells leave
	# client TIME_WAIT sockets on ephemeral ports, which block a bind().
	"${IN[@]}" "$CG_OFF" "$NS" redis-server --port "$RPORT_PLAIN" --bind 127.0.0.1 --save '' \
		--appendonly no --protected-mode no --daemonize no --logfile "$TMP/redis-plain.log" \
		</dev/null >/dev/null 2>&1 &
	PIDS+=("$!")
	"${IN[@]}" "$CG_ON" "$NS" redis-server --port "$RPORT_ACCEL" --bind 127.0.0.1 --save '' \
		--appendonly no --protected-mode no --daemonize no --logfile "$TMP/redis-accel.log" \
		</dev/null >/dev/null 2>&1 &
	PIDS+=("$!")
	if redis_up "$RPORT_PLAIN" && redis_up "$RPORT_ACCEL"; then
		for ((rep = 1; rep <= REPS; rep++)); do
			order="plain sockaccel"
			[ $((rep % 2)) = 0 ] && order="sockaccel plain"
			for v in $order; do
				cg=$CG_OFF port=$RPORT_PLAIN
				[ "$v" = sockaccel ] && cg=$CG_ON port=$RPORT_ACCEL
				for p in 1 16; do
					n=$REDIS_N
					[ "$p" = 16 ] && n=$((REDIS_N * 8))
					[ "$v" = sockaccel ] && snapshot "$TMP/before.json"
					t0=$(date +%s.%N)
					timeout -k 5 300 "${IN[@]}" "$cg" "$NS" redis-benchmark -p "$port" -q --csv -t set,get -n "$n" -P "$p" \
						> "$TMP/out.csv" 2> "$TMP/err.txt"
					rc=$?
					t1=$(date +%s.%N)
					[ "$v" = sockaccel ] && "$SA" -j status > "$TMP/after.json" 2>/dev/null
					summary=$(python3 "$REPORT" record "$RAW" kind=redis cell="redis-P$p" \
						variant="$v" rep="$rep" pipeline="$p" n="$n" out="$TMP/out.csv" \
						before="$TMP/before.json" after="$TMP/after.json" cgpath="$CG_ON" \
						cgid="$CGID" rc="$rc" wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
					DONE=$((DONE + 1))
					progress "$(printf '%-18s %-9s rep %d/%d: %s' "redis-P$p" "$v" "$rep" "$REPS" "$summary")"
					rm -f "$TMP/before.json" "$TMP/after.json"
				done
			done
		done
	else
		say "bench: redis-server did not come up; skipping redis (logs: $TMP/redis-*.log)"
		cat "$TMP"/redis-*.log 2>/dev/null | tail -5 | tee -a "$LOG"
	fi
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
	PIDS=()
fi

# ------------------------------------------------------------------ PostgreSQL
# A private cluster per variant (initdb once as user postgres, -A trust,
# copied), each postmaster in its variant's cgroup and in our namespace,
# unpinned; `pgbench -i -s 2` once per cluster; then `pgbench -S` (select
# only) and the default TPC-B-like script, -c 4 -T SECS over TCP, plain
# and accelerated alternating, with per-transaction logs (-l) for p50/p99.
# PostgreSQL accepts on a blocking listener and makes each backend's socket
# nonblocking after accept(): its connections join through the join hook.
pg_up() { # PORT
	local i
	for i in $(seq 100); do
		ip netns exec "$NS" "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

if [ "$PG" = 1 ]; then
	PGDIR=$(mktemp -d /tmp/sabench-pg.XXXXXX)
	chmod 755 "$PGDIR" && chown postgres: "$PGDIR"
	PGRUN=(setpriv --reuid=postgres --regid=postgres --init-groups)
	pg_ok=0
	if (cd / && "${PGRUN[@]}" "$PGBIN/initdb" -D "$PGDIR/plain" -A trust -U postgres --no-sync \
		> "$PGDIR/initdb.log" 2>&1) && cp -a "$PGDIR/plain" "$PGDIR/accel"; then
		for v in plain sockaccel; do
			cg=$CG_OFF port=$PGPORT_PLAIN dir=plain
			[ "$v" = sockaccel ] && cg=$CG_ON port=$PGPORT_ACCEL dir=accel
			(cd / && exec "${IN[@]}" "$cg" "$NS" "${PGRUN[@]}" "$PGBIN/postgres" -D "$PGDIR/$dir" \
				-k "$PGDIR" -p "$port" -c listen_addresses=127.0.0.1 -c fsync=off \
				-c synchronous_commit=off -c max_connections=40) \
				</dev/null > "$PGDIR/$dir.log" 2>&1 &
			PIDS+=("$!")
		done
		if pg_up "$PGPORT_PLAIN" && pg_up "$PGPORT_ACCEL"; then
			pg_ok=1
			for v in plain sockaccel; do
				cg=$CG_OFF port=$PGPORT_PLAIN
				[ "$v" = sockaccel ] && cg=$CG_ON port=$PGPORT_ACCEL
				"${IN[@]}" "$cg" "$NS" pgbench -h 127.0.0.1 -p "$port" -U postgres -i -s 2 -q \
					postgres > "$PGDIR/init-$v.log" 2>&1 || pg_ok=0
				# Warm-up (not recorded): caches, and pgbench and postgres
				# past probation in the attached cgroup.
				"${IN[@]}" "$cg" "$NS" pgbench -h 127.0.0.1 -p "$port" -U postgres -S -c 8 -T 1 \
					postgres > /dev/null 2>&1
			done
		fi
	fi
	if [ "$pg_ok" = 1 ]; then
		mkdir -p "$PGDIR/logs"
		for ((rep = 1; rep <= REPS; rep++)); do
			order="plain sockaccel"
			[ $((rep % 2)) = 0 ] && order="sockaccel plain"
			for v in $order; do
				cg=$CG_OFF port=$PGPORT_PLAIN
				[ "$v" = sockaccel ] && cg=$CG_ON port=$PGPORT_ACCEL
				for script in select tpcb; do
					sarg=-S
					[ "$script" = tpcb ] && sarg="-b tpcb-like"
					rm -f "$PGDIR"/logs/*
					[ "$v" = sockaccel ] && snapshot "$TMP/before.json"
					t0=$(date +%s.%N)
					# shellcheck disable=SC2086
					(cd "$PGDIR/logs" && exec timeout -k 5 $((SECS + 60)) "${IN[@]}" "$cg" "$NS" \
						pgbench -h 127.0.0.1 -p "$port" -U postgres $sarg -c 4 -T "$SECS" \
						-l --log-prefix="$PGDIR/logs/pgbench" postgres) \
						> "$TMP/pgbench.txt" 2> "$TMP/err.txt"
					rc=$?
					t1=$(date +%s.%N)
					[ "$v" = sockaccel ] && "$SA" -j status > "$TMP/after.json" 2>/dev/null
					python3 "$REPORT" pgbench "$TMP/out.json" "$TMP/pgbench.txt" "$PGDIR/logs" \
						script="$script" clients=4 rc="$rc"
					summary=$(python3 "$REPORT" record "$RAW" cell="pg-$script-c4" variant="$v" \
						rep="$rep" out="$TMP/out.json" before="$TMP/before.json" \
						after="$TMP/after.json" cgpath="$CG_ON" cgid="$CGID" rc="$rc" \
						wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
					DONE=$((DONE + 1))
					progress "$(printf '%-18s %-9s rep %d/%d: %s' "pg-$script-c4" "$v" "$rep" "$REPS" "$summary")"
					if [ "$rc" -ne 0 ]; then
						cat "$TMP/pgbench.txt" "$TMP/err.txt" | tail -5 | sed 's/^/    /' | tee -a "$LOG"
					fi
					rm -f "$TMP/before.json" "$TMP/after.json"
				done
			done
		done
	else
		say "bench: the PostgreSQL clusters did not come up; skipping pgbench (logs: $PGDIR)"
		tail -3 "$PGDIR"/*.log 2>/dev/null | tee -a "$LOG"
	fi
	# SIGINT: a fast shutdown; the backends end with the postmaster.
	for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
	PIDS=()
fi

# ------------------------------------------------------------------ bystander
for cell in "${BSEL[@]}"; do
	run_cell "$cell"
done

# ------------------------------------------------------------------ report
WALL=$(($(date +%s) - START))
python3 "$REPORT" machine "$OUT/machine.json" \
	git="$GIT" sockaccel_binary="$SA_MTIME" \
	reps="$REPS" seconds="$SECS" redis_n="$REDIS_N" cells="$CELLS_RE" join_hook="$HOOK_NOTE" \
	loadavg_start="$LOAD_START" loadavg_end="$(cut -d' ' -f1-3 /proc/loadavg)" \
	wall_time="${WALL}s" redis_version="$(redis-server --version 2>/dev/null | awk '{print $3}')" \
	sockaccel_status_json="$TMP/status0.json" || die "machine info failed"
python3 "$REPORT" report "$OUT" || die "report failed"
say ""
say "done in ${WALL}s: $OUT/results.md, results.json, chart.svg (raw runs: raw.jsonl)"
