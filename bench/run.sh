#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# sockaccel benchmark driver (`make bench`, root). Creates its own network
# namespace and two child cgroups, attaches sockaccel to one of them, and
# for every cell runs plain TCP (cgroup not attached), sockaccel (cgroup
# attached) and AF_UNIX, interleaved, BENCH_REPS times; then redis-benchmark
# plain vs accelerated. Medians, ratios, counters and a chart go to
# bench/results/ (results.md, results.json, chart.svg, raw.jsonl, run.log).
# Everything it creates is removed at exit; sockaccel is unloaded only if
# this script loaded it. See bench/README.md.
#
# Environment:
#   BENCH_REPS=5        repetitions per variant and cell
#   BENCH_SECONDS=2     measured seconds per sabench run
#   BENCH_QUICK=1       smoke run: BENCH_REPS=1 BENCH_SECONDS=1 unless set
#   BENCH_CELLS=REGEX   only cells whose id matches (grep -E), e.g. 'stream|crr'
#   BENCH_REDIS=0       skip the redis-benchmark comparison
#   BENCH_REDIS_N=N     requests per redis test at -P 1 (-P 16 uses 8N)
#   BENCH_OUT=DIR       results directory (default bench/results)
#   BENCH_WAIT=120      seconds to wait for someone else's sockaccel to unload
#   BENCH_FORCE=1       share an already loaded sockaccel (never unloaded here)
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SA="$TOP/build/sockaccel"
SABENCH="$TOP/build/bench/sabench"
REPORT="$TOP/bench/report.py"

if [ -n "${BENCH_QUICK:-}" ]; then
	: "${BENCH_REPS:=1}" "${BENCH_SECONDS:=1}"
fi
REPS=${BENCH_REPS:-5}
SECS=${BENCH_SECONDS:-2}
CELLS_RE=${BENCH_CELLS:-.}
REDIS=${BENCH_REDIS:-1}
REDIS_N=${BENCH_REDIS_N:-$((50000 * SECS))}
OUT=${BENCH_OUT:-$TOP/bench/results}
WAIT=${BENCH_WAIT:-120}
STALL=${BENCH_STALL:-5}
RPORT_PLAIN=65101	# redis ports: above the netns ephemeral range (1024-65000)
RPORT_ACCEL=65102

die() { echo "bench: $*" >&2; exit 1; }
isnum() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }
isnum "$REPS" && [ "$REPS" -ge 1 ] || die "BENCH_REPS must be a positive integer"
isnum "$SECS" && [ "$SECS" -ge 1 ] && [ "$SECS" -le 600 ] || die "BENCH_SECONDS must be an integer 1..600"
isnum "$REDIS_N" && [ "$REDIS_N" -ge 1000 ] || die "BENCH_REDIS_N must be an integer >= 1000"
isnum "$WAIT" || die "BENCH_WAIT must be an integer"
[ "$(id -u)" -eq 0 ] || die "must run as root (sudo make bench)"
[ -x "$SA" ] && [ -x "$SABENCH" ] || die "build first: make (build/sockaccel and build/bench/sabench)"
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
cp "$SA" "$TMP/sockaccel" && cp "$SABENCH" "$TMP/sabench" || die "cannot copy the binaries to $TMP"
SA_MTIME=$(date -r "$SA" '+%F %T' 2>/dev/null)
SA="$TMP/sockaccel"
SABENCH="$TMP/sabench"
NS="sa-bench-$$"
CG_ON="$CG2/sockaccel-bench-on-$$"
CG_OFF="$CG2/sockaccel-bench-off-$$"
PIDS=()
MADE_CGS=()
MADE_NS=0

cleanup() {
	local rc=$? pid cg left
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	"$SA" detach --cgroup "$CG_ON" >/dev/null 2>&1
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
	if [ "$WE_LOADED" = 1 ] && [ -d /sys/fs/bpf/sockaccel ]; then
		left=$("$SA" -j status 2>/dev/null | python3 -c \
			'import json,sys; print(len(json.load(sys.stdin).get("cgroups", [])))' 2>/dev/null)
		if [ "${left:-0}" = 0 ]; then
			"$SA" unload >/dev/null 2>&1
		else
			echo "bench: sockaccel left loaded: $left other cgroup(s) attached meanwhile" >&2
		fi
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$CG_ON" && MADE_CGS+=("$CG_ON") || die "cannot create $CG_ON"
mkdir "$CG_OFF" && MADE_CGS+=("$CG_OFF") || die "cannot create $CG_OFF"
ip netns add "$NS" || die "cannot create netns $NS"
MADE_NS=1
ip -n "$NS" link set lo up
# Serial connect/close cycles leave TIME_WAIT behind on the client side.
ip netns exec "$NS" sysctl -q -w net.ipv4.ip_local_port_range="1024 65000" \
	net.ipv4.tcp_tw_reuse=1 >/dev/null || true
"$SA" attach --cgroup "$CG_ON" >/dev/null || die "sockaccel attach $CG_ON failed"
CGID=$(stat -c %i "$CG_ON")

mkdir -p "$OUT" || die "cannot create $OUT"
RAW="$OUT/raw.jsonl"
LOG="$OUT/run.log"
: > "$RAW"
: > "$LOG"
rm -f "$OUT/results.md" "$OUT/results.json" "$OUT/chart.svg" "$OUT/machine.json"
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
CELLS=()
for w in 64 1024 16384 131072 1048576; do
	for c in 1 2; do CELLS+=("stream-$(human $w)-${c}cpu|stream --size $w --cpus $c"); done
done
for c in 1 2; do CELLS+=("streams64-16K-${c}cpu|stream --conns 64 --size 16384 --cpus $c"); done
for s in 64 1024 16384; do
	for c in 1 2; do CELLS+=("rr-$(human $s)-${c}cpu|rr --size $s --cpus $c"); done
done
for c in 1 2; do CELLS+=("crr-${c}cpu|crr --cpus $c"); done

SEL=()
for cell in "${CELLS[@]}"; do
	echo "${cell%%|*}" | grep -Eq -- "$CELLS_RE" && SEL+=("$cell")
done
if [ "$REDIS" = 1 ] && ! command -v redis-server >/dev/null; then
	say "bench: redis-server not found, skipping the redis comparison"
	REDIS=0
fi
REDIS_RUNS=0
[ "$REDIS" = 1 ] && REDIS_RUNS=$((REPS * 2 * 2))
TOTAL=$((${#SEL[@]} * 3 * REPS + REDIS_RUNS))
DONE=0

progress() {
	local now el eta
	now=$(date +%s)
	el=$((now - START))
	if [ "$DONE" -gt 0 ]; then eta=$((el * (TOTAL - DONE) / DONE)); else eta=0; fi
	printf '[%3d/%d %3ds, ~%ds left] %s\n' "$DONE" "$TOTAL" "$el" "$eta" "$*" | tee -a "$LOG"
}

VARIANTS=(plain sockaccel unix)
rotated() { # rotated N: the variants in order starting at index N mod 3
	local i
	for i in 0 1 2; do echo "${VARIANTS[$(((i + $1) % 3))]}"; done
}

say "sockaccel bench: ${#SEL[@]} cells x 3 variants x $REPS reps x ${SECS}s$([ "$REDIS" = 1 ] && echo ", redis -n $REDIS_N"); netns $NS, cgroups $CG_ON (attached) and $CG_OFF; $TOTAL runs"
say "machine: $(uname -r), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) CPUs, load $LOAD_START"

run_one() { # CELL VARIANT REP ARGS...
	local cell=$1 variant=$2 rep=$3 cg=$CG_OFF tr=tcp4 rc t0 t1 summary
	shift 3
	case $variant in
	sockaccel) cg=$CG_ON ;;
	unix) tr=unix ;;
	esac
	[ "$variant" = sockaccel ] && snapshot "$TMP/before.json"
	t0=$(date +%s.%N)
	timeout -k 5 $((SECS + 3 * STALL + 40)) "${IN[@]}" "$cg" "$NS" "$SABENCH" "$@" \
		--transport "$tr" --seconds "$SECS" --stall "$STALL" \
		> "$TMP/out.json" 2> "$TMP/err.txt"
	rc=$?
	t1=$(date +%s.%N)
	[ "$variant" = sockaccel ] && "$SA" -j status > "$TMP/after.json" 2>/dev/null
	summary=$(python3 "$REPORT" record "$RAW" cell="$cell" variant="$variant" rep="$rep" \
		out="$TMP/out.json" before="$TMP/before.json" after="$TMP/after.json" \
		cgpath="$CG_ON" cgid="$CGID" rc="$rc" wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
	DONE=$((DONE + 1))
	progress "$(printf '%-18s %-9s rep %d/%d: %s' "$cell" "$variant" "$rep" "$REPS" "$summary")"
	if [ "$rc" -ne 0 ] && [ -s "$TMP/err.txt" ]; then
		sed 's/^/    /' "$TMP/err.txt" | tail -5 | tee -a "$LOG"
	fi
	rm -f "$TMP/before.json" "$TMP/after.json"
}

for cell in "${SEL[@]}"; do
	id=${cell%%|*}
	read -r -a args <<< "${cell#*|}"
	for ((rep = 1; rep <= REPS; rep++)); do
		for v in $(rotated "$rep"); do
			run_one "$id" "$v" "$rep" "${args[@]}"
		done
	done
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

# ------------------------------------------------------------------ report
WALL=$(($(date +%s) - START))
python3 "$REPORT" machine "$OUT/machine.json" \
	git="$GIT" sockaccel_binary="$SA_MTIME" \
	reps="$REPS" seconds="$SECS" redis_n="$REDIS_N" cells="$CELLS_RE" \
	loadavg_start="$LOAD_START" loadavg_end="$(cut -d' ' -f1-3 /proc/loadavg)" \
	wall_time="${WALL}s" redis_version="$(redis-server --version 2>/dev/null | awk '{print $3}')" \
	sockaccel_status_json="$TMP/status0.json" || die "machine info failed"
python3 "$REPORT" report "$OUT" || die "report failed"
say ""
say "done in ${WALL}s: $OUT/results.md, results.json, chart.svg (raw runs: raw.jsonl)"
