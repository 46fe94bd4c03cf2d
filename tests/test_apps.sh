#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Real programs, each run twice in a network namespace of its own (loopback
# only): plain (server and clients in a cgroup that is NOT attached) and
# accelerated (both in an attached cgroup), with the same expected outcome.
# Every accelerated phase reports its bytes_redirected / bytes_passed deltas,
# the pass reasons that moved, and TcpOutSegs against the plain run.
#
#  1. redis-server 7: redis-benchmark (5 commands, 20 clients, then
#     pipelined -P 16): completes, no error, every request reached the
#     server (INFO commandstats), no failed/rejected call. A 3 MiB random
#     value round trip (SET then GET, sha256 compared) with two clients:
#       - tests/apps/resp_bulk.py, an event-driven nonblocking client (the
#         way hiredis async / redis-benchmark / a replica talk): must be
#         >= 90% redirected;
#       - redis-cli, base64 text via -x: must round-trip identically, but
#         redis-cli is a BLOCKING client (hiredis redisConnect() connects
#         nonblocking, then switches the socket to blocking), and blocking
#         sockets are never accelerated on a kernel whose blocking
#         tcp_bpf_recvmsg() is unsafe (docs/kernel-limitations.md row 1):
#         its ratio is only reported, and the test asserts that this
#         documented reason (self_blocking / peer_blocking / blocking) is
#         why, so anything else falling back would still be caught.
#  2. nginx with sendfile on / tcp_nopush on: a 200 MB random file fetched
#     by curl (libcurl: nonblocking), sha256 compared; 300 small files
#     (random sizes) over one keep-alive connection, then 300 more over 8
#     parallel connections, every status 200 and every byte compared, and
#     >= 90% redirected.
#  3. memcached (libevent, nonblocking): tests/apps/mc_check.py, 4
#     nonblocking connections, random sets of up to 900 KB, gets of 1-4
#     keys and pipelined set/get/delete, every reply compared; >= 90%
#     redirected (of the bytes the client moved) and under a quarter of
#     the plain run's segments.
# redis-benchmark requests/s are printed plain vs accelerated, not asserted.
#
# Bulk and the memory bound (docs/kernel-limitations.md rows 4 and 10): a
# redirecting writer is never held back by its send buffer, so a reader
# that has not started reading may hold at most backlog_limit (4 MiB
# here, about what plain TCP buffers before the writer blocks) and a
# reader that reads slower than the writer at most backlog_active; past
# that the direction falls back to TCP flow control. The value is 3 MiB
# so that its SET, written before redis reads anything, fits; with 8 MiB
# half of the SET would go through TCP, by design. nginx's sendfile
# outruns curl: the 200 MB response starts redirected, falls back, and
# (TCP_CORK keeps a tail unsent, so the stack never drains) the
# connection leaves the sockhash for plain TCP (stayed_on_tcp). The test
# asserts exactly that: fast path first, then plain TCP, every byte exact.
. "$(dirname "$0")/lib.sh"
require_root
require_not_loaded
for p in redis-server redis-cli redis-benchmark nginx curl memcached python3 sha256sum base64; do
	command -v "$p" > /dev/null || die "$p is required (apt-get install redis-server redis-tools nginx-light curl memcached)"
done

APPS="$TOP/tests/apps"
MIN_PCT=90
T0=$(date +%s)
W=$(mktemp -d /tmp/sa-apps.XXXXXX)
on_exit "rm -rf '$W'"
chmod 755 "$W"
CG_OFF=$(new_cgroup apps-plain)
CG_ON=$(new_cgroup apps-accel)
attach "$CG_ON"
# status_field EXPR: a python expression on the status JSON (d).
status_field() {
	"$SA" -j status 2> /dev/null | python3 -c "import json,sys
try: d = json.load(sys.stdin)
except Exception: d = {}
try: print($1)
except Exception: print('')"
}
PROG_ID=$(status_field 'd["programs"]["sk_msg_id"]')
RECV_SAFE=$("$SA" -j status | python3 -c 'import json,sys; print(str(json.load(sys.stdin)["kernel"]["recv_waits_safely"]).lower())')
BACKLOG=$("$SA" -j status | python3 -c 'import json,sys; print(json.load(sys.stdin)["backlog_limit"])')
log "probe: blocking reads safe: $RECV_SAFE; backlog_limit $BACKLOG bytes"

# --- helpers ----------------------------------------------------------------

# snap FILE: the JSON counters now.
snap() { "$SA" -j stats > "$1" 2> /dev/null || echo '{}' > "$1"; }

# delta F0 F1 [MOVED]: sets D_RED, D_PASS, D_PCT and D_REASONS (pass
# reasons that moved, "name=+n ..."). D_PCT is the redirected share, in
# integer percent, of the bytes the sk_msg program saw or of MOVED (what
# the application is known to have sent), whichever is larger: passed
# bytes can be missing from the counters (tcp_bpf_send_verdict(): when the
# push to TCP fails, e.g. EAGAIN on a full send buffer, psock->eval keeps
# __SK_PASS and the next message goes to TCP without running the program),
# which must not inflate the share.
delta() {
	local out
	out=$(python3 - "$1" "$2" "${3:-0}" << 'EOF'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
red = b.get("bytes_redirected", 0) - a.get("bytes_redirected", 0)
pas = b.get("bytes_passed", 0) - a.get("bytes_passed", 0)
tot = max(red + pas, int(sys.argv[3]))
pct = (100 * red) // tot if tot else 0
ra, rb = a.get("pass_reasons", {}), b.get("pass_reasons", {})
rs = " ".join("%s=+%d" % (k, rb[k] - ra.get(k, 0)) for k in rb if rb[k] != ra.get(k, 0))
print(red, pas, pct, rs or "none")
EOF
)
	read -r D_RED D_PASS D_PCT D_REASONS <<< "$out"
}

# measure NAME CMD...: run CMD (in this shell), recording the counter and
# TcpOutSegs deltas of $NS around it; returns CMD's status. MOVED (env,
# optional): the bytes the application sent, both directions.
# Sets SEGS and the delta() globals; prints one line when accelerated.
measure() {
	local name=$1 s0 rc moved=${MOVED:-0}
	shift
	[ "$MODE" = accel ] && guard
	snap "$W/c0"; s0=$(tcp_out_segs "$NS")
	"$@"; rc=$?
	snap "$W/c1"; SEGS=$(( $(tcp_out_segs "$NS") - s0 ))
	[ "$MODE" = accel ] && guard
	delta "$W/c0" "$W/c1" "$moved"
	if [ "$MODE" = accel ]; then
		log "$name [accel]: redirected $D_RED B, passed $D_PASS B ($D_PCT% redirected${MOVED:+ of $moved B moved})," \
			"segments $SEGS; pass reasons: $D_REASONS"
	else
		log "$name [plain]: segments $SEGS"
	fi
	return $rc
}

# stop PID: SIGTERM, then SIGKILL after 5 s; reaps it.
stop() {
	local pid=$1 n=50
	kill "$pid" 2> /dev/null
	while [ "$n" -gt 0 ] && kill -0 "$pid" 2> /dev/null; do
		# a zombie child still answers kill -0; wait would reap it
		[ "$(awk '{ print $3 }' "/proc/$pid/stat" 2> /dev/null)" = Z ] && break
		sleep 0.1; n=$((n - 1))
	done
	kill -9 "$pid" 2> /dev/null
	wait "$pid" 2> /dev/null
	return 0
}

# fastpath_ok NAME PLAIN_SEGS: the last measure() was >= MIN_PCT%
# redirected and sent under a quarter of the plain run's segments (what
# is left: handshakes and FINs); one check each.
fastpath_ok() {
	check_explain "$1: >= $MIN_PCT% redirected ($D_PCT%)" [ "$D_PCT" -ge "$MIN_PCT" ]
	check_explain "$1: segments $SEGS < plain ${2:-?} / 4" [ "$SEGS" -lt $(( ${2:-0} / 4 )) ]
}

# explain: what the pass reasons of the last measure() mean (on failure).
explain() {
	local r
	for r in $D_REASONS; do
		case ${r%%=*} in
		peer_backlog) log "  peer_backlog: the reader fell backlog_limit ($BACKLOG B) behind the" \
			"writer (a redirecting writer never waits for send buffer space), the" \
			"direction fell back to TCP flow control" ;;
		stack_pending) log "  stack_pending: later messages found bytes of that direction still" \
			"on TCP (unacked, unsent or unread); the fast path returns only once they drain" ;;
		*) log "  ${r%%=*}: see bpf/sk_msg.bpf.c" ;;
		esac
	done
}

# check_explain DESCRIPTION COMMAND...: check, explaining the reasons on failure.
check_explain() {
	local what=$1; shift
	if "$@"; then pass "$what"; else fail "$what"; explain; fi
}

# guard: sockaccel is a machine-wide singleton and other people run tests
# here; a test of theirs that exits (even one refused by
# require_not_loaded: lib.sh's EXIT trap unloads) detaches our cgroup.
# Numbers taken after that would be meaningless: stop with a clear
# message, and if another instance replaced ours, leave it loaded.
guard() {
	local id attached
	id=$(status_field 'd["programs"]["sk_msg_id"] if d.get("loaded") else ""')
	attached=$(status_field 'any(c["path"] == "'"$CG_ON"'" for c in d["cgroups"])')
	[ "$id" = "$PROG_ID" ] && [ "$attached" = True ] && return 0
	[ -n "$id" ] && [ "$id" != "$PROG_ID" ] && SA_KEEP_LOADED=1
	die "sockaccel was unloaded, reloaded or detached by another process during this test" \
		"(sk_msg id now '${id:-none}', ours $PROG_ID; our cgroup attached: ${attached:-no}): results invalid, run it again"
}

# X CMD...: CMD inside the current mode's cgroup and netns.
X() { in_cgroup_netns "$CG" "$NS" "$@"; }

# --- inputs -----------------------------------------------------------------
head -c $((3 * 1024 * 1024)) /dev/urandom > "$W/value.bin"
base64 -w0 "$W/value.bin" > "$W/value.b64"
VAL_LEN=$(stat -c %s "$W/value.bin")
B64_SHA=$(sha256sum < "$W/value.b64" | cut -d' ' -f1)
mkdir -p "$W/www/s"
BIG=$((200 * 1000 * 1000))
head -c "$BIG" /dev/urandom > "$W/www/big.bin"
BIG_SHA=$(sha256sum < "$W/www/big.bin" | cut -d' ' -f1)
python3 - "$W/www/s" << 'EOF'
import os, random, sys
r = random.Random(4242)
for i in range(1, 301):
    with open(os.path.join(sys.argv[1], "f%d.bin" % i), "wb") as f:
        f.write(os.urandom(r.choice([1, 100, 1000, 4096, 10000, 65536, 200000])))
EOF
chmod -R a+rX "$W/www"

# --- 1. redis ---------------------------------------------------------------

# commandstats_ok N: INFO says every benchmark command ran >= N times, and
# no call failed or was rejected, no error reply.
commandstats_ok() {
	local n=$1 info cmd calls bad
	info=$(X redis-cli -p "$RPORT" info all | tr -d '\r')
	for cmd in set get incr lpush lpop; do
		calls=$(printf '%s\n' "$info" | sed -n "s/^cmdstat_$cmd:calls=\([0-9]*\),.*/\1/p")
		[ "${calls:-0}" -ge "$n" ] || { log "cmdstat_$cmd calls=${calls:-none} < $n"; return 1; }
	done
	bad=$(printf '%s\n' "$info" | grep -E '^cmdstat_' | grep -vE 'rejected_calls=0,failed_calls=0$')
	[ -z "$bad" ] || { log "failed calls: $bad"; return 1; }
	printf '%s\n' "$info" | grep -qx 'total_error_replies:0' ||
		{ log "$(printf '%s\n' "$info" | grep total_error_replies)"; return 1; }
}

# bench NAME ARGS...: one redis-benchmark run; rps per command into
# $W/rps.$MODE.NAME; fails on non-zero exit, an error line or a missing
# command.
bench() {
	local name=$1 out rc
	shift
	X redis-cli -p "$RPORT" config resetstat > /dev/null
	out=$(X timeout 60 redis-benchmark -p "$RPORT" -q -n 20000 -t set,get,incr,lpush,lpop -c 20 "$@" 2>&1)
	rc=$?
	out=$(printf '%s\n' "$out" | tr '\r' '\n')
	printf '%s\n' "$out" | sed -n 's/^\([A-Z]*\)[^:]*: \([0-9.]*\) requests per second.*/\1 \2/p' \
		> "$W/rps.$MODE.$name"
	[ "$rc" -eq 0 ] || { log "redis-benchmark exited $rc: $(printf '%s\n' "$out" | tail -3)"; return 1; }
	if printf '%s\n' "$out" | grep -iqE 'error|refused|reset|timeout'; then
		log "redis-benchmark: $(printf '%s\n' "$out" | grep -iE 'error|refused|reset|timeout' | head -3)"
		return 1
	fi
	[ "$(wc -l < "$W/rps.$MODE.$name")" -eq 5 ] || { log "redis-benchmark output: $out"; return 1; }
	commandstats_ok 20000
}

redis_cli_roundtrip() {
	local got
	X redis-cli -p "$RPORT" del big > /dev/null
	[ "$(X redis-cli -p "$RPORT" -x set big < "$W/value.b64")" = OK ] || { log "redis-cli SET failed"; return 1; }
	got=$(X redis-cli -p "$RPORT" --raw get big | head -c "$(stat -c %s "$W/value.b64")" | sha256sum | cut -d' ' -f1)
	[ "$got" = "$B64_SHA" ] || { log "redis-cli GET sha256 $got != $B64_SHA"; return 1; }
}

resp_bulk() {
	X timeout 60 python3 "$APPS/resp_bulk.py" "$RPORT" bulk "$W/value.bin" 50 > /dev/null
}

redis_mode() {
	MODE=$1 CG=$2 RPORT=6379
	new_netns "redis-$MODE" > "$W/ns"; NS=$(cat "$W/ns")
	mkdir -p "$W/redis-$MODE"
	spawn "$CG" "$NS" redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
		--daemonize no --dir "$W/redis-$MODE" --logfile "$W/redis-$MODE/redis.log"
	local srv=$SPAWNED
	if ! wait_until 10 sh -c "[ \"\$(ip netns exec $NS redis-cli -p $RPORT ping)\" = PONG ]"; then
		fail "redis [$MODE]: server did not answer PING within 10 s ($(tail -3 "$W/redis-$MODE/redis.log"))"
		stop "$srv"; return
	fi
	check "redis [$MODE]: redis-benchmark (20 clients) completes, every request served, no error" \
		measure "redis-benchmark" bench plain
	eval "BENCH_SEGS_$MODE=$SEGS"
	[ "$MODE" = accel ] && fastpath_ok "redis [accel]: redis-benchmark" "$BENCH_SEGS_plain"
	check "redis [$MODE]: redis-benchmark -P 16 completes, every request served, no error" \
		measure "redis-benchmark -P 16" bench pipe -P 16
	eval "PIPE_SEGS_$MODE=$SEGS"
	[ "$MODE" = accel ] && fastpath_ok "redis [accel]: redis-benchmark -P 16" "$PIPE_SEGS_plain"

	# client: "*3 $3 SET $4 bulk $3145728 <value>" (35 + V bytes with the
	# CRLFs), "*2 $3 GET $4 bulk" (23); server: "+OK" (5), "$3145728 <value>" (12 + V)
	MOVED=$((2 * VAL_LEN + 35 + 23 + 5 + 12)) \
	check "redis [$MODE]: 3 MiB value SET/GET by a nonblocking client, sha256 equal" \
		measure "3 MiB value, nonblocking client" resp_bulk
	eval "NB_SEGS_$MODE=$SEGS"
	if [ "$MODE" = accel ]; then
		check_explain "redis [accel]: 3 MiB nonblocking round trip >= $MIN_PCT% redirected ($D_PCT%; reasons: $D_REASONS)" \
			[ "$D_PCT" -ge "$MIN_PCT" ]
	fi

	check "redis [$MODE]: 3 MiB (base64) value SET/GET by redis-cli, sha256 equal" \
		measure "3 MiB value, redis-cli (blocking client)" redis_cli_roundtrip
	eval "CLI_SEGS_$MODE=$SEGS"
	if [ "$MODE" = accel ] && [ "$RECV_SAFE" = true ]; then
		check_explain "redis [accel]: redis-cli round trip >= $MIN_PCT% redirected ($D_PCT%; reasons: $D_REASONS)" \
			[ "$D_PCT" -ge "$MIN_PCT" ]
	elif [ "$MODE" = accel ]; then
		log "redis-cli is a blocking client and blocking reads are unsafe on this kernel:" \
			"$D_PCT% redirected (documented product limitation, see header)"
		# Nothing but the blocking rules may have sent those bytes to TCP
		# (peer_missing: the server writing to the blocking client that left).
		local other
		other=$(printf '%s\n' $D_REASONS | grep -vE '^(none|self_blocking|peer_blocking|blocking|peer_missing)' | tr '\n' ' ')
		check "redis [accel]: redis-cli bytes went to TCP only for being blocking (other reasons: ${other:-none})" \
			[ -z "$other" ]
	fi
	check "redis [$MODE]: server still answers after the runs" \
		[ "$(X redis-cli -p "$RPORT" ping)" = PONG ]
	stop "$srv"
}

echo "redis"
redis_mode plain "$CG_OFF"
redis_mode accel "$CG_ON"
for name in plain pipe; do
	[ "$name" = pipe ] && label="-P 16" || label="     "
	paste "$W/rps.plain.$name" "$W/rps.accel.$name" 2> /dev/null |
		awk -v l="$label" '{ printf "  redis-benchmark %s %-6s plain %10.0f rps   accelerated %10.0f rps   (x%.2f)\n", l, $1, $2, $4, ($2 > 0 ? $4 / $2 : 0) }'
done
log "segments plain vs accelerated: benchmark ${BENCH_SEGS_plain:-?} vs ${BENCH_SEGS_accel:-?}," \
	"-P 16 ${PIPE_SEGS_plain:-?} vs ${PIPE_SEGS_accel:-?}, 3 MiB nonblocking ${NB_SEGS_plain:-?} vs ${NB_SEGS_accel:-?}," \
	"3 MiB redis-cli ${CLI_SEGS_plain:-?} vs ${CLI_SEGS_accel:-?}"

# --- 2. nginx ---------------------------------------------------------------

# fetch_big [PREFIX]: the 200 MB file (PREFIX proxy/: through nginx's proxy).
fetch_big() {
	rm -f "$W/out.bin"
	X curl -sS -f --max-time 60 -o "$W/out.bin" "http://127.0.0.1:$HPORT/${1:-}big.bin" || return 1
	local got
	got=$(sha256sum < "$W/out.bin" | cut -d' ' -f1)
	rm -f "$W/out.bin"
	[ "$got" = "$BIG_SHA" ] || { log "sha256 $got != $BIG_SHA"; return 1; }
}

# upload_body: a 32 MB POST body nginx reads before it answers with f1.bin.
upload_body() {
	rm -f "$W/out.bin"
	[ -f "$W/body.bin" ] || head -c 32M /dev/urandom > "$W/body.bin"
	X curl -sS -f --max-time 60 -H 'Expect:' --data-binary @"$W/body.bin" -o "$W/out.bin" \
		"http://127.0.0.1:$HPORT/upload" || return 1
	cmp -s "$W/out.bin" "$W/www/s/f1.bin" || { log "upload answer differs from f1.bin"; return 1; }
}

# fetch_small ARGS...: the 300 small files in one curl invocation; every
# status 200, every file identical.
fetch_small() {
	local codes
	rm -rf "$W/small"; mkdir "$W/small"
	codes=$(X curl -s --no-progress-meter --max-time 60 "$@" -w '%{http_code}\n' -o "$W/small/f#1.bin" \
		"http://127.0.0.1:$HPORT/s/f[1-300].bin")
	[ "$(printf '%s\n' "$codes" | grep -cx 200)" -eq 300 ] ||
		{ log "statuses: $(printf '%s\n' "$codes" | sort | uniq -c | tr '\n' ' ')"; return 1; }
	diff -rq "$W/www/s" "$W/small" > /dev/null || { log "small files differ"; return 1; }
}

nginx_mode() {
	MODE=$1 CG=$2 HPORT=8080 UPORT=8081
	local d="$W/nginx-$MODE"
	new_netns "nginx-$MODE" > "$W/ns"; NS=$(cat "$W/ns")
	mkdir -p "$d/tmp"
	cat > "$d/nginx.conf" << EOF
daemon off;
master_process off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	default_type application/octet-stream;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000;
	upstream up {
		server 127.0.0.1:$UPORT;
		keepalive 8;
	}
	server {
		listen 127.0.0.1:$HPORT;
		root $W/www;
		# nginx reads upstream responses and request bodies sizing its
		# reads with FIONREAD (rev->available): both legs accelerated.
		location /proxy/ {
			proxy_pass http://up/;
			proxy_max_temp_file_size 0;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
		location = /upload {
			client_max_body_size 64m;
			client_body_buffer_size 64m;
			proxy_pass http://up/s/f1.bin;
			proxy_method GET;
			proxy_pass_request_body off;
			proxy_set_header Content-Length "";
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
	server {
		listen 127.0.0.1:$UPORT;
		root $W/www;
	}
}
EOF
	spawn "$CG" "$NS" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
	local srv=$SPAWNED
	if ! wait_until 10 ip netns exec "$NS" curl -sf -o /dev/null "http://127.0.0.1:$HPORT/s/f1.bin"; then
		fail "nginx [$MODE]: no answer within 10 s ($(tail -3 "$d/error.log" 2> /dev/null))"
		stop "$srv"; return
	fi
	local ev0 ev1
	ev0=$(counter socks_left)
	MOVED=$BIG check "nginx [$MODE]: 200 MB file by sendfile, fetched by curl, sha256 equal" \
		measure "200 MB sendfile" fetch_big
	ev1=$(counter socks_left)
	eval "BIG_SEGS_$MODE=$SEGS"
	if [ "$MODE" = accel ]; then
		# Either the reader kept up (>= MIN_PCT% redirected), or the
		# connection started on the fast path and, having fallen back
		# for good, left the sockhash for plain TCP (see header).
		check_explain "nginx [accel]: 200 MB on the fast path ($D_PCT%), or fast path then plain TCP (left the sockhash: $((ev1 - ev0)))" \
			[ "$D_PCT" -ge "$MIN_PCT" -o \( "$D_RED" -gt 1000000 -a "$ev1" -gt "$ev0" \) ]
	fi
	check "nginx [$MODE]: 300 small files over one keep-alive connection, all 200 and identical" \
		measure "300 requests, keep-alive" fetch_small
	eval "KA_SEGS_$MODE=$SEGS"
	[ "$MODE" = accel ] && fastpath_ok "nginx [accel]: keep-alive requests" "$KA_SEGS_plain"
	check "nginx [$MODE]: 300 small files over 8 parallel connections, all 200 and identical" \
		measure "300 requests, 8 parallel" fetch_small -Z --parallel-max 8
	eval "PAR_SEGS_$MODE=$SEGS"
	[ "$MODE" = accel ] && fastpath_ok "nginx [accel]: parallel requests" "$PAR_SEGS_plain"
	check "nginx [$MODE]: 200 MB through nginx's proxy (upstream on loopback), sha256 equal" \
		measure "200 MB proxied" fetch_big proxy/
	eval "PROXY_SEGS_$MODE=$SEGS"
	check "nginx [$MODE]: 32 MB request body read by nginx (FIONREAD), answered" \
		measure "32 MB upload" upload_body
	check "nginx [$MODE]: no error logged" [ ! -s "$d/error.log" ]
	[ -s "$d/error.log" ] && log "$(tail -5 "$d/error.log")"
	stop "$srv"
}

echo "nginx"
nginx_mode plain "$CG_OFF"
nginx_mode accel "$CG_ON"
log "segments plain vs accelerated: 200 MB ${BIG_SEGS_plain:-?} vs ${BIG_SEGS_accel:-?}," \
	"keep-alive ${KA_SEGS_plain:-?} vs ${KA_SEGS_accel:-?}, parallel ${PAR_SEGS_plain:-?} vs ${PAR_SEGS_accel:-?}," \
	"200 MB proxied ${PROXY_SEGS_plain:-?} vs ${PROXY_SEGS_accel:-?}"

# --- 3. memcached ------------------------------------------------------------

MC_ROUNDS=${SA_APPS_MC_ROUNDS:-200}

# mc_run CONNS ROUNDS SEED: mc_check.py against the current mode's memcached;
# its summary line goes to $W/mc.out.
mc_run() {
	X timeout 120 python3 "$APPS/mc_check.py" "$MPORT" "$@" 100 > "$W/mc.out"
}

# mc_ready: memcached answers "version" (a connection of its own, plain
# TCP: this shell's cgroup is not attached).
mc_ready() {
	ip netns exec "$NS" python3 "$APPS/mc_check.py" "$MPORT" version
}

memcached_mode() {
	MODE=$1 CG=$2 MPORT=11211
	new_netns "memcached-$MODE" > "$W/ns"; NS=$(cat "$W/ns")
	spawn "$CG" "$NS" memcached -u nobody -l 127.0.0.1 -p "$MPORT" -U 0 -t 2 -m 256
	local srv=$SPAWNED moved
	if ! wait_until 10 mc_ready; then
		fail "memcached [$MODE]: no answer to version within 10 s"
		stop "$srv"; return
	fi
	# Not measured: memcached, a new executable here, past probation (8
	# connections and 1 s; docs/kernel-limitations.md row 9). 8 requests
	# per connection on average: fewer would teach short_conns (row 20)
	# that this port's connections are short, and keep the next ones on TCP.
	mc_run 8 64 1 || log "memcached [$MODE]: warm-up failed"
	sleep 1.2
	check "memcached [$MODE]: $MC_ROUNDS random sets, gets and pipelined requests on 4 nonblocking connections, every reply exact" \
		measure "memcached" mc_run 4 "$MC_ROUNDS" 2
	eval "MC_SEGS_$MODE=$SEGS"
	if [ "$MODE" = accel ]; then
		# The share of what the client moved (its summary), as MOVED does.
		moved=$(awk '{ print $4 + $6 }' "$W/mc.out")
		delta "$W/c0" "$W/c1" "${moved:-0}"
		log "memcached [accel]: the client moved ${moved:-?} B: $D_PCT% redirected"
		fastpath_ok "memcached [accel]" "$MC_SEGS_plain"
	fi
	check "memcached [$MODE]: server still running after the run" kill -0 "$srv"
	stop "$srv"
}

echo "memcached"
memcached_mode plain "$CG_OFF"
memcached_mode accel "$CG_ON"
log "segments plain vs accelerated: memcached ${MC_SEGS_plain:-?} vs ${MC_SEGS_accel:-?}"

check "no insert failures" [ "$(counter insert_failed)" -eq 0 ]
log "runtime $(( $(date +%s) - T0 )) s"
finish
