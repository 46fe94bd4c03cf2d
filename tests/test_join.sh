#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Late join (issue 12): a socket passed at establishment only for
# something that can change becomes a join candidate, and the join hook
# (bpf/join.bpf.c, tc ingress on loopback) inserts it at a later segment;
# a socket that left for a reason that can go away rejoins after a
# backoff. Every accelerated case runs against its control (the same
# programs in a cgroup that is NOT attached, in a netns of its own), with
# the bytes verified in both, TcpOutSegs of the case's netns and the
# counter deltas logged.
#
# The join hook watches `lo` of the network namespace `sockaccel load`
# ran in, and only sockets of a hooked namespace become candidates: the
# load runs inside NS_ON with nsenter (not ip netns exec, which remounts
# /sys and would hide bpffs).
#
#  1. PostgreSQL's pattern, reduced: a blocking listener whose children
#     the server makes nonblocking right after accept() (saxfer
#     --late-nonblock), request/response (--echo --rr: 16 KiB requests,
#     each echoed before the next, 4 MB each way per connection, 10
#     connections one after the other): the server ends join (join reason
#     listener_blocking), and `sockaccel trace` says so; bytes verified,
#     segments < control / 4, most (> 50%) bytes redirected.
#  2. A continuous writer (100 MB) to a --late-nonblock server: the server
#     end joins, every byte verified. A writer that never pauses comes back
#     to the fast path only at drained moments (60-100% redirected per
#     run measured): the share and segments are logged, not asserted.
#  3. A stall: a 200 MB nonblocking transfer whose reader sleeps 300 ms
#     once after 50 MB: every byte verified, the direction fell back to
#     TCP (to_stack) and came back (to_redirect, or a rejoin).
#  5. Python (tests/apps/join_server.py, lowat_client.py):
#     a. the listener has a timeout (settimeout(5)), so socket.accept()
#        returns a socket that is blocking until the server calls
#        setblocking(False). CPython implements the timeout with
#        O_NONBLOCK on the listener's file, so sockaccel sees a
#        nonblocking listener and inserts the server end at
#        establishment: both ends in (added or joined), bytes verified;
#        the share is logged, not asserted: a send that lands between
#        accept() and setblocking(False) passes (peer_blocking) and the
#        server end may leave (self_blocking) and both rejoin. (A
#        beacon left up when its reason went away kept the client
#        leaving for good in 3 of 6 runs of join_server.py
#        --nonblock-after-ms 50; fixed in maybe_leave().)
#     b. a truly blocking listener, its children set nonblocking after
#        accept(): the server end joins (listener_blocking), verified.
#  6. A pair that can never join (blocking client, blocking server): it
#     stays on TCP (nothing added, nothing joined, nothing redirected),
#     bytes verified; the hook's join_checks on it are logged.
#  7. getsockopt() transparency: a client that set TCP_NOTSENT_LOWAT to
#     12345 before connecting streams (after the server's greeting, so
#     that no send meets the accepted socket still blocking: see 5a) to
#     a reader that stalls once, so
#     its direction falls back and sockaccel pauses the sender (holds the
#     option at 1, sender_pauses); every getsockopt() during and after
#     returns 12345. SKIP (this case only) if no sender was paused.
#  8. A thread asleep in recv() on a blocking accepted socket that another
#     thread makes nonblocking (tests/apps/join_sleeper.py): the join hook
#     must not insert it while the thread sleeps (it would sleep on in
#     tcp_recvmsg() while redirected bytes wait in the psock): the thread
#     gets the client's request (it hung, 2 of 2, without that check).
# 10. A second namespace (a container's) with a process of the attached
#     cgroup: the join hook is not there until `attach` runs again, which
#     hooks it (a tcx link, 6.6+; a tc filter before 6.6 or with
#     SOCKACCEL_TC_FILTER=1). Case 1 run there before (the control:
#     nothing joins) and after (server ends join, segments < control /
#     4); once the namespace is deleted, the next attach forgets it.
# 11. Java (JDK 17; a SKIP line without it): java.net.Socket clients of a
#     java.nio Selector server (tests/apps/HashEcho.java), SHA-256 of
#     every message compared, plain and accelerated. A timed connect()
#     (the JDK leaves the socket blocking after it, nonblocking from the
#     first timed read): >= 90% redirected, segments < plain / 4. An
#     untimed connect() (blocking at establishment): stays on TCP, pass
#     reason blocking (the documented limit: asserted, so that a change
#     shows).
# 12. Node.js (a SKIP line without it): net server and client
#     (tests/apps/hash_echo.js), verified, >= 90% redirected, segments <
#     plain / 4.
# 13. Unload, run in no namespace with a hook, removes the hook from a
#     container's namespace and from the one the load ran in: no tc
#     filter left, and no join program left in the kernel. The test loads
#     again for case 4.
#  4. PostgreSQL 15 (SKIP if not installed; run last, since lib.sh's
#     skip ends the test): a private cluster per mode, plain and
#     accelerated, over TCP: pgbench -i -s 2, COPY of pgbench_accounts
#     (sha256 equal plain and accelerated), pgbench -S -c 4 -t N (the
#     same count processed), pgbench -S -T and the default TPC-B script
#     -T: no failed transaction, exit 0; accelerated: every connection's
#     server end joined, >= 90% of the bytes redirected, segments per
#     transaction < plain's / 4.
# Sizes: SA_JOIN_STREAM_MB (100), SA_JOIN_STALL_MB (200, the reader
# stalls after a quarter), SA_JOIN_PY_MB (64), SA_JOIN_PG_SECONDS (5),
# SA_JOIN_PG_TX (1000 transactions per pgbench -t client),
# SA_JOIN_RT_ROUNDS (200 messages of up to 300 KB per Java/Node client;
# 0: cases 11 and 12 are not run).
. "$(dirname "$0")/lib.sh"
require_root
require_not_loaded

STREAM_MB=${SA_JOIN_STREAM_MB:-100}
STALL_MB=${SA_JOIN_STALL_MB:-200}
PY_MB=${SA_JOIN_PY_MB:-64}
PG_SECONDS=${SA_JOIN_PG_SECONDS:-5}
PG_TX=${SA_JOIN_PG_TX:-1000}
APPS="$TOP/tests/apps"
T0=$(date +%s)
W=$(mktemp -d /tmp/sa-join.XXXXXX)
on_exit "rm -rf '$W'"
chmod 755 "$W"

NS_ON=$(new_netns join-on)
NS_OFF=$(new_netns join-off)
CG_ON=$(new_cgroup join-on)
CG_OFF=$(new_cgroup join-off)
# shellcheck disable=SC2086
nsenter --net="/run/netns/$NS_ON" "$SA" load $SA_TEST_LOAD_OPTS > /dev/null || die "load in $NS_ON failed"
"$SA" attach --cgroup "$CG_ON" > /dev/null || die "attach $CG_ON failed"
# ns_cookie NS: the network namespace's cookie (SO_NETNS_COOKIE).
ns_cookie() {
	ip netns exec "$1" python3 -c 'import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print(struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, 71, 8))[0])'
}
# hooked_netns: the cookies of the namespaces whose lo has the join hook.
hooked_netns() {
	bpftool -j map dump pinned "$SOCKACCEL_PIN_ROOT/sockaccel_join_netns" 2> /dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    print(int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little"))'
}
check "the join hook watches $NS_ON and only it" [ "$(hooked_netns)" = "$(ns_cookie "$NS_ON")" ]

# section TITLE: a case's heading, with the time since the start.
section() { echo "$1 ($(( $(date +%s) - T0 )) s)"; }

# --- helpers ----------------------------------------------------------------
join_ports_clear() { [ "$(map_entries sockaccel_join_ports sum)" -eq 0 ]; }

# snap FILE: the JSON counters now.
snap() { "$SA" -j stats > "$1" 2> /dev/null || echo '{}' > "$1"; }

# deltas: every counter's delta over the last measure(), one "KEY N" a
# line in $W/delta (KEY: a top-level counter, or GROUP.NAME of
# pass_reasons, leave_reasons, join_reasons, rejoin_reasons). One python
# for all: dv and moved only read the file.
deltas() {
	python3 - "$W/c0" "$W/c1" > "$W/delta" << 'EOF2'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
for k, v in b.items():
    if isinstance(v, int):
        print(k, v - a.get(k, 0))
    elif isinstance(v, dict):
        for n, x in v.items():
            print("%s.%s" % (k, n), x - a.get(k, {}).get(n, 0))
EOF2
}

# dv KEY: KEY's delta over the last measure() (0 if unknown).
dv() { awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }' "$W/delta"; }

# moved GROUP: the group's nonzero deltas of the last measure(), "name=+n ...".
moved() {
	awk -v g="$1." 'index($1, g) == 1 && $2 != 0 { s = s sprintf("%s=+%d ", substr($1, length(g) + 1), $2) }
		END { sub(/ $/, "", s); print (s == "" ? "none" : s) }' "$W/delta"
}

# share MOVED: percent of the bytes redirected in the last measure(), of
# those the sk_msg program saw or of MOVED (what the programs are known
# to have sent), whichever is larger: passed bytes can be missing from
# the counters (see test_apps.sh, delta()).
share() {
	local red pas tot
	red=$(dv bytes_redirected) pas=$(dv bytes_passed)
	tot=$((red + pas))
	[ "$tot" -ge "${1:-0}" ] || tot=$1
	[ "$tot" -gt 0 ] && echo $((100 * red / tot)) || echo 0
}

# measure NS CMD...: run CMD (in this shell) between two counter
# snapshots; SEGS is NS's TcpOutSegs delta; returns CMD's status.
measure() {
	local ns=$1 s0 rc
	shift
	snap "$W/c0"; s0=$(tcp_out_segs "$ns")
	"$@"; rc=$?
	snap "$W/c1"; SEGS=$(( $(tcp_out_segs "$ns") - s0 ))
	deltas
	return $rc
}

# summary: one line of what the last measure() moved.
summary() {
	echo "segments $SEGS; redirected $(dv bytes_redirected) B, passed $(dv bytes_passed) B;" \
		"added $(dv socks_added), joined $(dv socks_joined), left $(dv socks_left)," \
		"rejoined $(dv socks_rejoined), join_checks $(dv join_checks);" \
		"to_stack $(dv to_stack), to_redirect $(dv to_redirect), drain_waits $(dv drain_waits)" \
		"(ok $(dv drain_wait_ok)), sender_pauses $(dv sender_pauses);" \
		"pass: $(moved pass_reasons); join: $(moved join_reasons);" \
		"leave: $(moved leave_reasons); rejoin: $(moved rejoin_reasons)"
}

# stop PID: SIGTERM, then SIGKILL after 5 s; reaps it.
stop() {
	local pid=$1 n=50
	kill "$pid" 2> /dev/null
	while [ "$n" -gt 0 ] && kill -0 "$pid" 2> /dev/null; do
		[ "$(awk '{ print $3 }' "/proc/$pid/stat" 2> /dev/null)" = Z ] && break
		sleep 0.1; n=$((n - 1))
	done
	kill -9 "$pid" 2> /dev/null
	wait "$pid" 2> /dev/null
	return 0
}

# xfer CG NS "SERVER OPTIONS" "CLIENT OPTIONS": one saxfer server and its
# client; 0 when both verified every byte.
xfer() {
	local cg=$1 ns=$2 rc=0
	# shellcheck disable=SC2086
	start_server "$cg" "$ns" "$W/port" "$TOOLS/saxfer" server --listen 127.0.0.1:0 \
		--port-file "$W/port" --quiet --timeout 90 $3
	local spid=$SERVER_PID
	# shellcheck disable=SC2086
	in_cgroup_netns "$cg" "$ns" "$TOOLS/saxfer" client --connect "127.0.0.1:$SERVER_PORT" \
		--quiet --timeout 90 $4 || { log "saxfer client failed (exit $?)"; rc=1; }
	[ "$rc" -eq 0 ] || stop "$spid"
	wait "$spid" || { log "saxfer server failed (exit $?)"; rc=1; }
	return $rc
}

# pyxfer CG NS "SERVER OPTIONS" "CLIENT OPTIONS": join_server.py and
# lowat_client.py (its line in $W/py.out); 0 when both succeeded.
pyxfer() {
	local cg=$1 ns=$2 rc=0
	# shellcheck disable=SC2086
	start_server "$cg" "$ns" "$W/port" python3 "$APPS/join_server.py" "$W/port" --timeout 90 $3
	local spid=$SERVER_PID
	# shellcheck disable=SC2086
	in_cgroup_netns "$cg" "$ns" python3 "$APPS/lowat_client.py" "$SERVER_PORT" \
		$((PY_MB * 1000000)) --timeout 90 $4 > "$W/py.out" || { log "lowat_client.py failed (exit $?)"; rc=1; }
	[ "$rc" -eq 0 ] || stop "$spid"
	wait "$spid" > /dev/null || { log "join_server.py failed (exit $?)"; rc=1; }
	return $rc
}
# py_field NAME: NAME=VALUE from lowat_client.py's line.
py_field() { tr ' ' '\n' < "$W/py.out" | sed -n "s/^$1=//p"; }

# --- 1. the reduced PostgreSQL pattern --------------------------------------
section "1. blocking listener, children made nonblocking after accept(), request/response"
C1_CONNS=10 C1_BYTES=4000000
C1_MOVED=$((2 * C1_CONNS * C1_BYTES))
C1_S="--late-nonblock --conns $C1_CONNS"
# Request/response: at most 16 KiB sent and not yet answered, as a
# database client waits for its reply (a client writing 4 MB at once
# would send what TCP buffers before the server end joined). What goes
# through TCP is the first requests, until the join hook sees the server
# end nonblocking (rechecked at most every millisecond): per connection a
# time, not a size, so connections long enough to dwarf it (measured
# here: 86-176 segments against 5013 plain; with 20 connections of 2 MB
# and 64 KiB requests, 250-840 against 3840, too close to a quarter).
C1_C="--echo --rr 16384 --bytes $C1_BYTES --conns $C1_CONNS --parallel 1"
check "1 [plain]: $C1_CONNS echoed connections verified" measure "$NS_OFF" xfer "$CG_OFF" "$NS_OFF" "$C1_S" "$C1_C"
C1_OFF=$SEGS
log "1 [plain]: segments $C1_OFF"
# The trace runs around the accelerated case: joins are events too.
"$SA" trace > "$W/trace" 2>&1 &
TRACE_PID=$!
echo "$TRACE_PID" >> "$_SA_STATE/pids"
wait_until 10 grep -q tracing "$W/trace" || log "trace did not start: $(cat "$W/trace")"
check "1 [accel]: $C1_CONNS echoed connections verified" measure "$NS_ON" xfer "$CG_ON" "$NS_ON" "$C1_S" "$C1_C"
kill -INT "$TRACE_PID" 2> /dev/null
wait_until 5 sh -c "! kill -0 $TRACE_PID" || kill "$TRACE_PID" 2> /dev/null
wait "$TRACE_PID" 2> /dev/null
C1_PCT=$(share "$C1_MOVED")
log "1 [accel]: $(summary); $C1_PCT% of $C1_MOVED B redirected"
check "1 [accel]: server ends joined (socks_joined +$(dv socks_joined) >= 1)" [ "$(dv socks_joined)" -ge 1 ]
check "1 [accel]: join reason listener_blocking counted (+$(dv join_reasons.listener_blocking))" \
	[ "$(dv join_reasons.listener_blocking)" -ge 1 ]
check "1 [accel]: segments $SEGS < plain $C1_OFF / 4" [ "$SEGS" -lt $((C1_OFF / 4)) ]
check "1 [accel]: most bytes redirected ($C1_PCT% > 50%)" [ "$C1_PCT" -gt 50 ]
# Either layout: joined events print as reader events today (loader/trace.c
# dispatches every type from SA_EV_USE_LEARNED on to those), without role.
check "1 [accel]: trace printed a 'joined' line with reason listener_blocking" \
	grep -qE '^[0-9:.]+ +joined .*listener_blocking' "$W/trace"
grep -E 'joined' "$W/trace" | head -1 | sed 's/^/  trace| /'

# --- 2. a continuous writer ---------------------------------------------------
section "2. a continuous ${STREAM_MB} MB writer to a blocking listener's child made nonblocking"
C2_BYTES=$((STREAM_MB * 1000000))
check "2 [plain]: $C2_BYTES bytes verified" measure "$NS_OFF" xfer "$CG_OFF" "$NS_OFF" "--late-nonblock" "--bytes $C2_BYTES"
C2_OFF=$SEGS
check "2 [accel]: $C2_BYTES bytes verified" measure "$NS_ON" xfer "$CG_ON" "$NS_ON" "--late-nonblock" "--bytes $C2_BYTES"
log "2 [accel]: $(summary); $(share "$C2_BYTES")% redirected (reported, not asserted); plain: segments $C2_OFF"
check "2 [accel]: the server end joined (socks_joined +$(dv socks_joined))" [ "$(dv socks_joined)" -ge 1 ]

# --- 3. a reader that stalls once -------------------------------------------------
section "3. a ${STALL_MB} MB nonblocking transfer, the reader sleeps 300 ms after a quarter"
C3_BYTES=$((STALL_MB * 1000000))
C3_S="--stall-at $((C3_BYTES / 4)) --stall-ms 300"
check "3 [plain]: $C3_BYTES bytes verified" measure "$NS_OFF" xfer "$CG_OFF" "$NS_OFF" "$C3_S" "--bytes $C3_BYTES"
C3_OFF=$SEGS
check "3 [accel]: $C3_BYTES bytes verified" measure "$NS_ON" xfer "$CG_ON" "$NS_ON" "$C3_S" "--bytes $C3_BYTES"
log "3 [accel]: $(summary); $(share "$C3_BYTES")% redirected; plain: segments $C3_OFF"
check "3 [accel]: the direction fell back to TCP (to_stack +$(dv to_stack))" [ "$(dv to_stack)" -ge 1 ]
check "3 [accel]: and came back (to_redirect +$(dv to_redirect), rejoined +$(dv socks_rejoined))" \
	[ $(( $(dv to_redirect) + $(dv socks_rejoined) )) -ge 1 ]

# --- 5. Python ----------------------------------------------------------------------
section "5. Python selectors server, accept() then setblocking(False); nonblocking client"
check "5 [plain]: listener with a timeout: ${PY_MB} MB, sha256 verified" \
	measure "$NS_OFF" pyxfer "$CG_OFF" "$NS_OFF" "" ""
C5_OFF=$SEGS
log "5 [plain]: segments $C5_OFF"
check "5a [accel]: listener with a timeout: ${PY_MB} MB, sha256 verified" \
	measure "$NS_ON" pyxfer "$CG_ON" "$NS_ON" "" ""
log "5a [accel]: $(summary); $(share $((PY_MB * 1000000)))% redirected (reported)"
check "5a [accel]: both ends in the sockhash (added +$(dv socks_added), joined +$(dv socks_joined))" \
	[ $(( $(dv socks_added) + $(dv socks_joined) )) -ge 2 ]
check "5b [accel]: blocking listener: ${PY_MB} MB, sha256 verified" \
	measure "$NS_ON" pyxfer "$CG_ON" "$NS_ON" "--blocking-listener" ""
log "5b [accel]: $(summary); $(share $((PY_MB * 1000000)))% redirected"
check "5b [accel]: the server end joined (socks_joined +$(dv socks_joined))" [ "$(dv socks_joined)" -ge 1 ]
check "5b [accel]: join reason listener_blocking (+$(dv join_reasons.listener_blocking))" \
	[ "$(dv join_reasons.listener_blocking)" -ge 1 ]

# --- 6. a pair that can never join ------------------------------------------------------
section "6. blocking client, blocking server: never joins"
C6_BYTES=$((STREAM_MB * 1000000 / 2))
check "6 [plain]: $C6_BYTES bytes verified" measure "$NS_OFF" xfer "$CG_OFF" "$NS_OFF" "--block" "--block --bytes $C6_BYTES"
C6_OFF=$SEGS
check "6 [accel]: $C6_BYTES bytes verified" measure "$NS_ON" xfer "$CG_ON" "$NS_ON" "--block" "--block --bytes $C6_BYTES"
log "6 [accel]: $(summary); plain: segments $C6_OFF; the hook looked $(dv join_checks) times"
check "6 [accel]: nothing added (socks_added +$(dv socks_added))" [ "$(dv socks_added)" -eq 0 ]
check "6 [accel]: nothing joined (socks_joined +$(dv socks_joined))" [ "$(dv socks_joined)" -eq 0 ]
check "6 [accel]: nothing redirected (+$(dv bytes_redirected) B)" [ "$(dv bytes_redirected)" -eq 0 ]

# --- 7. TCP_NOTSENT_LOWAT while the sender is paused -------------------------------------
section "7. getsockopt(TCP_NOTSENT_LOWAT) while sockaccel pauses the sender"
C7_S="--stall-at $((PY_MB * 1000000 / 4)) --stall-ms 300"
check "7 [plain]: ${PY_MB} MB to a stalling reader, sha256 verified, TCP_NOTSENT_LOWAT read back" \
	measure "$NS_OFF" pyxfer "$CG_OFF" "$NS_OFF" "$C7_S --greet" "--lowat 12345 --greet"
log "7 [plain]: $(cat "$W/py.out"); segments $SEGS"
check "7 [accel]: ${PY_MB} MB to a stalling reader, sha256 verified" \
	measure "$NS_ON" pyxfer "$CG_ON" "$NS_ON" "$C7_S --greet" "--lowat 12345 --greet"
log "7 [accel]: $(cat "$W/py.out"); $(summary)"
if [ "$(dv sender_pauses)" -ge 1 ]; then
	check "7 [accel]: getsockopt read $(py_field lowat_reads) times during the transfer" \
		[ "$(py_field lowat_reads)" -gt 0 ]
	check "7 [accel]: every read during the transfer returned 12345 (others: $(py_field lowat_other))" \
		[ "$(py_field lowat_other)" = none ]
	check "7 [accel]: and after it ($(py_field lowat_after))" [ "$(py_field lowat_after)" = 12345 ]
else
	# lib.sh's skip would end the whole test: this case alone is skipped.
	printf '  SKIP: %s\n' "7: no sender was paused (sender_pauses +0): TCP_NOTSENT_LOWAT was not hidden, nothing tested" >&"$_SA_OUT"
fi

# --- 8. a thread asleep in recv() --------------------------------------------------------
section "8. a thread asleep in recv() when its socket is made nonblocking"
for i in 1 2 3; do
	check "8 [accel] run $i: the sleeping reader gets the request" \
		in_cgroup_netns "$CG_ON" "$NS_ON" timeout 20 python3 "$APPS/join_sleeper.py"
done

# --- 10. a namespace of its own (a container's) ----------------------------------------
# The load ran in NS_ON: its join hook is on NS_ON's lo only. A container's
# processes are in a namespace of their own, which `attach` hooks (a tcx
# link, 6.6+, else a tc filter) when it finds a process of the cgroup
# there. The control is the same case in that namespace before it is
# hooked.
section "10. a container's network namespace: hooked by attach"
# The kind of hook: a tcx link (6.6+) unless SOCKACCEL_TC_FILTER asks for
# a tc filter; without tcx links, a tc filter.
JOIN_HOOK=tc
if [ -e "$SOCKACCEL_PIN_ROOT/sockaccel_join_link" ] && [ -z "${SOCKACCEL_TC_FILTER:-}" ]; then
	JOIN_HOOK=tcx
fi
log "10: the join hook is a $JOIN_HOOK hook"
# lo_filter NS: lo of NS has a tc filter running sockaccel_join.
lo_filter() { ip netns exec "$1" tc filter show dev lo ingress | grep -q sockaccel_join; }
join_netns() { "$SA" -j status 2> /dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin).get("join_netns", -1))'; }
NS_POD=$(new_netns join-pod)
spawn "$CG_ON" "$NS_POD" sleep 600
HOLDER=$SPAWNED
wait_until 5 left_netns "$HOLDER" || log "10: the holder did not enter $NS_POD"
check "10: before attach runs again, only NS_ON is hooked (join_netns $(join_netns))" [ "$(join_netns)" -eq 1 ]
check "10 [unhooked]: $C1_CONNS echoed connections verified" measure "$NS_POD" xfer "$CG_ON" "$NS_POD" "$C1_S" "$C1_C"
C10_OFF=$SEGS
log "10 [unhooked]: $(summary)"
check "10 [unhooked]: no socket joined (socks_joined +$(dv socks_joined))" [ "$(dv socks_joined)" -eq 0 ]
check "10 [unhooked]: the server ends that could have joined are counted (join_unhooked +$(dv join_unhooked) >= $C1_CONNS)" \
	[ "$(dv join_unhooked)" -ge "$C1_CONNS" ]
"$SA" attach --cgroup "$CG_ON" > "$W/attach10" 2>&1
check "10: attach again hooked one more namespace ($(tr '\n' ' ' < "$W/attach10"))" \
	grep -qx 'join hook: lo of 1 more network namespace' "$W/attach10"
check "10: join_netns is 2 ($(join_netns))" [ "$(join_netns)" -eq 2 ]
if [ "$JOIN_HOOK" = tc ]; then
	check "10: $NS_POD's lo has the join hook's tc filter" lo_filter "$NS_POD"
fi
check "10 [hooked]: $C1_CONNS echoed connections verified" measure "$NS_POD" xfer "$CG_ON" "$NS_POD" "$C1_S" "$C1_C"
log "10 [hooked]: $(summary)"
check "10 [hooked]: server ends joined (socks_joined +$(dv socks_joined) >= 1)" [ "$(dv socks_joined)" -ge 1 ]
check "10 [hooked]: segments $SEGS < unhooked $C10_OFF / 4" [ "$SEGS" -lt $((C10_OFF / 4)) ]
check "10 [hooked]: join_unhooked did not move (+$(dv join_unhooked))" [ "$(dv join_unhooked)" -eq 0 ]
"$SA" attach --cgroup "$CG_ON" > "$W/attach10b" 2>&1
check "10: attaching again hooks nothing new ($(tr '\n' ' ' < "$W/attach10b"))" \
	sh -c "! grep -q '^join hook' '$W/attach10b'"
# A namespace that is gone: its link is defunct, its filter's cookie
# found in no namespace; the next attach forgets it.
kill "$HOLDER" 2> /dev/null; wait "$HOLDER" 2> /dev/null
ip netns del "$NS_POD"
pod_forgotten() { "$SA" attach --cgroup "$CG_ON" > /dev/null 2>&1 && [ "$(join_netns)" -eq 1 ]; }
check "10: once $NS_POD is gone, attach forgets it (join_netns $(join_netns) -> 1)" wait_until 10 pod_forgotten

# --- 11, 12. Java's and Node.js's own sockets -------------------------------------------
# rt_case N NAME CMD...: CMD (a server and its client, 0 when every answer
# matched) plain, then accelerated; RT_PCT is the accelerated share,
# RT_OFF the plain run's segments.
rt_case() {
	local n=$1 name=$2
	shift 2
	check "$n $name [plain]: $RT_ROUNDS answers verified" measure "$NS_OFF" "$@" "$CG_OFF" "$NS_OFF"
	RT_OFF=$SEGS
	check "$n $name [accel]: $RT_ROUNDS answers verified" measure "$NS_ON" "$@" "$CG_ON" "$NS_ON"
	RT_PCT=$(share 0)
	log "$n $name [accel]: $(summary); $RT_PCT% redirected; plain: segments $RT_OFF"
}
# rt_fast N NAME: the last rt_case was accelerated (most bytes, few segments).
rt_fast() {
	check "$1 $2 [accel]: >= 90% of the bytes redirected ($RT_PCT%)" [ "$RT_PCT" -ge 90 ]
	check "$1 $2 [accel]: segments $SEGS < plain $RT_OFF / 4" [ "$SEGS" -lt $((RT_OFF / 4)) ]
}
# rt_pair CG NS: RT_SERVER and RT_CLIENT (arrays, the server's port as
# @PORT@ in the client's) in CG and NS; 0 when both succeeded.
rt_pair() {
	local rc=0
	start_server "$1" "$2" "$W/port" "${RT_SERVER[@]}"
	local spid=$SERVER_PID
	in_cgroup_netns "$1" "$2" timeout 120 "${RT_CLIENT[@]/@PORT@/$SERVER_PORT}" > "$W/rt.out" ||
		{ log "client failed (exit $?): $(cat "$W/rt.out")"; rc=1; }
	[ "$rc" -eq 0 ] || stop "$spid"
	wait "$spid" || { log "server failed (exit $?)"; rc=1; }
	return $rc
}
RT_ROUNDS=${SA_JOIN_RT_ROUNDS:-200}

section "11. Java: java.net.Socket clients of a java.nio Selector server"
# A timed connect() leaves the socket blocking after it (JDK 17's
# NioSocketImpl) and nonblocking again at the first timed read: the
# client leaves (self_blocking) and rejoins. An untimed connect() is
# blocking at establishment: a blocking client is never a candidate
# (limitations row 21), so it stays on TCP however it reads later.
if [ "$RT_ROUNDS" -eq 0 ]; then
	printf '  SKIP: %s\n' "11: SA_JOIN_RT_ROUNDS=0 (the kernel matrix: JIT-compiled code crashes under qemu's TCG)" >&"$_SA_OUT"
elif ! command -v java > /dev/null || ! command -v javac > /dev/null; then
	printf '  SKIP: %s\n' "11: no JDK here (java, javac)" >&"$_SA_OUT"
elif ! javac -d "$W" "$APPS/HashEcho.java" > "$W/javac.log" 2>&1; then
	fail "11: javac HashEcho.java: $(tail -3 "$W/javac.log")"
else
	RT_SERVER=(java -cp "$W" HashEcho server "$W/port" 1)
	RT_CLIENT=(java -cp "$W" HashEcho client @PORT@ "$RT_ROUNDS" 300000 timed)
	rt_case 11 "timed connect" rt_pair
	rt_fast 11 "timed connect"
	RT_CLIENT=(java -cp "$W" HashEcho client @PORT@ "$RT_ROUNDS" 300000 untimed)
	rt_case 11 "untimed connect" rt_pair
	check "11 untimed connect [accel]: stays on TCP, nothing redirected (+$(dv bytes_redirected) B)" \
		[ "$(dv bytes_redirected)" -eq 0 ]
	check "11 untimed connect [accel]: passed as a blocking client (pass reason blocking +$(dv pass_reasons.blocking))" \
		[ "$(dv pass_reasons.blocking)" -ge 1 ]
fi

section "12. Node.js: net server and client"
if [ "$RT_ROUNDS" -eq 0 ]; then
	printf '  SKIP: %s\n' "12: SA_JOIN_RT_ROUNDS=0" >&"$_SA_OUT"
elif ! command -v node > /dev/null; then
	printf '  SKIP: %s\n' "12: no Node.js here (node)" >&"$_SA_OUT"
else
	RT_SERVER=(node "$APPS/hash_echo.js" server "$W/port" 1)
	RT_CLIENT=(node "$APPS/hash_echo.js" client @PORT@ "$RT_ROUNDS" 300000)
	rt_case 12 "node" rt_pair
	rt_fast 12 "node"
fi

# --- what the cases above leave behind ------------------------------------------------
# Every connection above has closed: no candidate may stay counted on its
# port (the hook would look up every segment of that port for nothing),
# and no record may stay.
section "9. after the cases: nothing left"
wait_until 5 join_ports_clear
check "no port counts a join candidate any more (sockaccel_join_ports sums to $(map_entries sockaccel_join_ports sum))" \
	join_ports_clear
check "no record left (sockaccel_records holds $(map_entries sockaccel_records))" \
	[ "$(map_entries sockaccel_records)" -eq 0 ]

# --- 13. unload and a container's namespace ---------------------------------------------
# Unload, run outside every namespace the hook is in, must take the hook
# out of each: a tcx link goes with its pin, a tc filter only if unload
# enters the namespace and removes it. A hook left behind would keep the
# join program and the unloaded instance's maps alive. Then the test
# loads again for case 4.
section "13. unload removes the join hook from a container's namespace"
NS_POD2=$(new_netns join-pod2)
spawn "$CG_ON" "$NS_POD2" sleep 600
HOLDER2=$SPAWNED
wait_until 5 left_netns "$HOLDER2" || log "13: the holder did not enter $NS_POD2"
"$SA" attach --cgroup "$CG_ON" > "$W/attach13" 2>&1
check "13: attach hooked $NS_POD2 ($(tr '\n' ' ' < "$W/attach13"))" \
	grep -qx 'join hook: lo of 1 more network namespace' "$W/attach13"
if [ "$JOIN_HOOK" = tc ]; then
	check "13: $NS_POD2's lo has the join hook's tc filter" lo_filter "$NS_POD2"
fi
# join_progs: how many programs named sockaccel_join the kernel holds.
join_progs() { bpftool -j prog show 2> /dev/null | python3 -c '
import json, sys
print(sum(p.get("name") == "sockaccel_join" for p in json.load(sys.stdin)))'; }
check "13: unload" sh -c "'$SA' unload > /dev/null"
if [ "$JOIN_HOOK" = tc ]; then
	check "13: no tc filter of the join hook left on lo of $NS_POD2" sh -c "! ip netns exec '$NS_POD2' tc filter show dev lo ingress | grep -q sockaccel_join"
	check "13: nor on lo of $NS_ON, where the load ran" sh -c "! ip netns exec '$NS_ON' tc filter show dev lo ingress | grep -q sockaccel_join"
fi
no_join_prog() { [ "$(join_progs)" -eq 0 ]; }
check "13: no join program left in the kernel ($(join_progs))" wait_until 10 no_join_prog
kill "$HOLDER2" 2> /dev/null; wait "$HOLDER2" 2> /dev/null
# shellcheck disable=SC2086
nsenter --net="/run/netns/$NS_ON" "$SA" load $SA_TEST_LOAD_OPTS > /dev/null || die "load in $NS_ON failed"
"$SA" attach --cgroup "$CG_ON" > /dev/null || die "attach $CG_ON failed"

# --- 4. PostgreSQL -------------------------------------------------------------------------
section "4. PostgreSQL: pgbench, plain and accelerated"
PGB=/usr/lib/postgresql/15/bin
if ! [ -x "$PGB/postgres" ] || ! [ -x "$PGB/pgbench" ] || ! id postgres > /dev/null 2>&1; then
	skip "PostgreSQL 15 is not installed (apt-get install postgresql); cases 1-3 and 5-7 ran above"
fi
PG="$W/pg"
mkdir "$PG" && chown postgres: "$PG"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
as_pg "$PGB/initdb" -D "$PG" -A trust -U postgres --no-sync > "$W/initdb.log" 2>&1 ||
	die "initdb failed: $(tail -3 "$W/initdb.log")"

# pg_stop: a fast shutdown of the cluster, bounded (at exit too).
pg_stop() {
	[ -s "$PG/postmaster.pid" ] || return 0
	as_pg "$PGB/pg_ctl" stop -D "$PG" -m fast -w -t 30 > /dev/null 2>&1
}
on_exit pg_stop

# pg CMD ARGS...: a PostgreSQL client program in the mode's cgroup and netns, over TCP.
pg() {
	local cmd=$1; shift
	in_cgroup_netns "$CG" "$NS" timeout 120 "$PGB/$cmd" -h 127.0.0.1 -p 5432 -U postgres "$@"
}

# pgbench_ok NAME ARGS...: a pgbench run that exits 0 with no failed
# transaction; its output in $W/pgbench.NAME.$MODE.
pgbench_ok() {
	local name=$1 out="$W/pgbench.$1.$MODE"
	shift
	pg pgbench "$@" postgres > "$out" 2>&1 || { log "pgbench $*: exit $?: $(tail -3 "$out")"; return 1; }
	grep -q '^number of failed transactions: 0 ' "$out" ||
		{ log "pgbench $*: $(grep -E 'failed|abort' "$out" | head -3)"; return 1; }
}
# pg_init: pgbench's tables, scale 2 (200000 accounts).
pg_init() {
	pg pgbench -i -s 2 -q postgres > "$W/pgbench.init.$MODE" 2>&1 ||
		{ log "pgbench -i: exit $?: $(tail -3 "$W/pgbench.init.$MODE")"; return 1; }
}
# pg_copy: pgbench_accounts in aid order through psql; "<rows> rows, sha256 <hex>" in $W/copy.$MODE.
pg_copy() {
	pg psql -XAtq -v ON_ERROR_STOP=1 -c 'COPY (SELECT * FROM pgbench_accounts ORDER BY aid) TO STDOUT' \
		postgres > "$W/copy.out" || { log "psql COPY: exit $?"; return 1; }
	echo "$(wc -l < "$W/copy.out") rows, sha256 $(sha256sum < "$W/copy.out" | cut -d' ' -f1)" > "$W/copy.$MODE"
	rm -f "$W/copy.out"
}
processed() { sed -n 's/^number of transactions actually processed: //p' "$W/pgbench.$1.$MODE"; }

pg_mode() {
	MODE=$1 CG=$2 NS=$3
	# sh execs setpriv, which execs postgres: SPAWNED is the postmaster.
	# shellcheck disable=SC2016
	spawn "$CG" "$NS" sh -c 'exec "$@" > "$0" 2>&1' "$W/postgres.$MODE.log" \
		setpriv --reuid=postgres --regid=postgres --init-groups "$PGB/postgres" -D "$PG" \
		-k "$PG" -c listen_addresses=127.0.0.1 -p 5432 -c fsync=off
	PG_PID=$SPAWNED
	if ! wait_until 30 ip netns exec "$NS" "$PGB/pg_isready" -q -h 127.0.0.1 -p 5432 -U postgres; then
		fail "4 [$MODE]: postgres not ready within 30 s ($(tail -3 "$W/postgres.$MODE.log"))"
		pg_stop
		stop "$PG_PID"
		return
	fi
	check "4 [$MODE]: pgbench -i -s 2" pg_init
	check "4 [$MODE]: COPY pgbench_accounts to psql over TCP" measure "$NS" pg_copy
	log "4 [$MODE]: COPY: $(cat "$W/copy.$MODE"); $(summary)"
	check "4 [$MODE]: pgbench -S -c 4 -t $PG_TX" pgbench_ok count -S -c 4 -t "$PG_TX"
	local what
	for what in select:-S tpcb:; do
		local name=${what%%:*} opt=${what#*:}
		# shellcheck disable=SC2086
		check "4 [$MODE]: pgbench $opt -c 4 -T $PG_SECONDS: exit 0, no failed transaction" \
			measure "$NS" pgbench_ok "$name" $opt -c 4 -T "$PG_SECONDS"
		log "4 [$MODE]: pgbench $opt -c 4 -T $PG_SECONDS: $(processed "$name") transactions; $(summary)"
		# Transactions, not seconds, are the unit: plain TCP runs fewer of
		# them in the same time (under qemu's TCG, 5 times fewer).
		local tx
		tx=$(processed "$name")
		eval "PG_SEGS_${name}_$MODE=$SEGS PG_TX_${name}_$MODE=${tx:-0}"
		if [ "$MODE" = accel ]; then
			local psegs ptx pct
			psegs=$(eval echo "\${PG_SEGS_${name}_plain:-0}")
			ptx=$(eval echo "\${PG_TX_${name}_plain:-0}")
			pct=$(share)
			check "4 [accel]: $name: every connection's server end joined (socks_joined +$(dv socks_joined) >= 4)" \
				[ "$(dv socks_joined)" -ge 4 ]
			check "4 [accel]: $name: >= 90% of the bytes redirected ($pct%)" [ "$pct" -ge 90 ]
			check "4 [accel]: $name: segments per transaction $SEGS/${tx:-0} < plain's $psegs/$ptx / 4" \
				[ $((4 * SEGS * ptx)) -lt $((psegs * ${tx:-0})) ]
		fi
	done
	check "4 [$MODE]: postgres stops (pg_ctl stop -m fast)" pg_stop
	wait "$PG_PID" 2> /dev/null
}

pg_mode plain "$CG_OFF" "$NS_OFF"
pg_mode accel "$CG_ON" "$NS_ON"
check "4: COPY of pgbench_accounts identical plain and accelerated" cmp -s "$W/copy.plain" "$W/copy.accel"
check "4: pgbench -S -t: the same count processed plain ($(MODE=plain processed count)) and accelerated ($(MODE=accel processed count))" \
	[ "$(MODE=plain processed count)" = "$(MODE=accel processed count)" ]
check "4: and every transaction ($(MODE=accel processed count) = $((4 * PG_TX))/$((4 * PG_TX)))" \
	[ "$(MODE=accel processed count)" = $((4 * PG_TX))/$((4 * PG_TX)) ]

check "no insert failures" [ "$(counter insert_failed)" -eq 0 ]
log "runtime $(( $(date +%s) - T0 )) s"
finish
