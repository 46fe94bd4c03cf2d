#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Only connections whose both ends are accelerated keep a psock: tcp_bpf's
# pass path costs about half of plain TCP's throughput, so a socket whose
# peer will never pair must not stay in the sockhash.
#  - server end in an attached cgroup, client not: the server end is never
#    inserted (its client has no record at PASSIVE_ESTABLISHED);
#  - client end attached, server not: the client leaves once it knows
#    no peer will come, and every byte still arrives;
#  - server attached but excluded by policy: the client is told (declined)
#    and leaves;
#  - a port whose connections exchange a message or two (connect, request,
#    reply, close): after SA_SHORT_MIN_SAMPLES of them, new ones stay on TCP
#    (a psock costs more than it saves), except one in SA_SHORT_SAMPLE_EVERY;
#    judged per client executable: another program's long connection to
#    the same listener is still accelerated;
#  - the same from a new executable on probation, whose connections are
#    join candidates that never join: their TCP data segments count for
#    the port, so they stop being candidates too.
. "$(dirname "$0")/lib.sh"
require_root
require_not_loaded

NS=$(new_netns loc)
CG_ON=$(new_cgroup loc-on)
CG_OFF=$(new_cgroup loc-off)
attach "$CG_ON"
pf=$(mktemp); on_exit "rm -f $pf"

# run SERVER_CG CLIENT_CG [client args]: one verified transfer.
run() {
	local scg=$1 ccg=$2; shift 2
	start_server "$scg" "$NS" "$pf" "${XFER:-$TOOLS/saxfer}" server --listen 127.0.0.1:0 --port-file "$pf" \
		--conns "${SERVER_CONNS:-1}" --quiet --timeout 60
	in_cgroup_netns "$ccg" "$NS" "${XFER:-$TOOLS/saxfer}" client --connect "127.0.0.1:$SERVER_PORT" \
		--quiet --timeout 60 "$@" && wait "$SERVER_PID"
}

added0=$(counter socks_added); miss0=$(counter peer_missing)
check "accelerated server, plain client: verified" run "$CG_ON" "$CG_OFF" --bytes 20000000
check "  the server end was not inserted" [ "$(counter socks_added)" -eq "$added0" ]
check "  (peer_missing counted)" [ "$(counter peer_missing)" -gt "$miss0" ]

added0=$(counter socks_added); ev0=$(counter socks_left)
# Writes spread over > 20 ms so the client learns that no peer will pair.
check "accelerated client, plain server: verified" \
	run "$CG_OFF" "$CG_ON" --bytes 50000000 --write-size 16384 --pace
check "  the client end was inserted" [ "$(counter socks_added)" -eq $((added0 + 1)) ]
check "  and left" [ "$(counter socks_left)" -gt "$ev0" ]
check "  with reason peer_gone" [ "$(counter peer_gone)" -gt 0 ]

# The server in its own attached cgroup whose policy excludes everything.
added0=$(counter socks_added); ev0=$(counter socks_left)
CG_SRV=$(new_cgroup loc-srv)
attach "$CG_SRV"
"$SA" policy add --cgroup "$CG_SRV" exclude --local-port 1-65535 >/dev/null
check "server excluded by policy: verified" run "$CG_SRV" "$CG_ON" --bytes 20000000 --write-size 16384
check "  only the client was inserted" [ "$(counter socks_added)" -eq $((added0 + 1)) ]
check "  and it left at its first send (declined)" [ "$(counter socks_left)" -gt "$ev0" ]

short0=$(counter short_conns); added0=$(counter socks_added)
SERVER_CONNS=200 check "200 short connections to one port: all verified" \
	run "$CG_ON" "$CG_ON" --bytes 100 --conns 200 --parallel 4
skipped=$(( $(counter short_conns) - short0 )); added=$(( $(counter socks_added) - added0 ))
log "short connections: $skipped left on TCP, $added sockets inserted"
check "  most of them stayed on TCP (short_conns)" [ "$skipped" -gt 150 ]
check "  the first ones and the periodic probes were accelerated" [ "$added" -ge 16 ]

# Judged per client executable: once one program's connections to a port
# are short, another program's connection to the same listener (a pool
# opened after a burst of health checks) is still accelerated, and the
# first program's next ones still stay on TCP.
other=$(mktemp -d); on_exit "rm -rf $other"
cp "$TOOLS/saxfer" "$other/saxfer"
start_server "$CG_ON" "$NS" "$pf" "$TOOLS/saxfer" server --listen 127.0.0.1:0 --port-file "$pf" \
	--conns 203 --quiet --timeout 60
PORT2=$SERVER_PORT
# client EXE ARGS...: one verified client run to that server.
client() { local x=$1; shift; in_cgroup_netns "$CG_ON" "$NS" "$x" client --connect "127.0.0.1:$PORT2" --quiet --timeout 60 "$@"; }
check "200 short connections from one program: all verified" client "$TOOLS/saxfer" --bytes 100 --conns 200 --parallel 4
short0=$(counter short_conns); added0=$(counter socks_added); red0=$(counter bytes_redirected)
check "another program's long connection to that listener: verified" client "$other/saxfer" --bytes 20000000
short1=$(counter short_conns); added1=$(counter socks_added); red1=$(counter bytes_redirected)
log "another program: short_conns +$((short1 - short0)), sockets inserted +$((added1 - added0)), $((red1 - red0)) bytes redirected"
check "  not left on TCP as short (short_conns +$((short1 - short0)))" [ "$short1" -eq "$short0" ]
check "  both ends inserted" [ $((added1 - added0)) -eq 2 ]
check "  on the fast path (>= 90% redirected)" [ $((red1 - red0)) -ge 18000000 ]
# Two: one in SA_SHORT_SAMPLE_EVERY is inserted anyway, never two in a row.
check "the first program's next two connections: verified" client "$TOOLS/saxfer" --bytes 100 --conns 2
check "  still short_conns" [ "$(counter short_conns)" -gt "$short1" ]
wait "$SERVER_PID" || fail "the server of both programs failed"

# A new executable (a copy of saxfer: another inode), on a probation that
# outlasts the test, on a new port: every connection is a join candidate
# at first (probation), none joins, and none is inserted to count
# messages. The candidates' own segments must judge the port short.
# Candidates exist only where a join hook sees the segments: a process of
# the cgroup in NS when attach runs again hooks NS's lo.
"$SA" load --probation 8 --probation-time 600000 >/dev/null || die "load --probation failed"
spawn "$CG_ON" "$NS" sleep 600
wait_until 5 left_netns "$SPAWNED" || log "the holder did not enter $NS"
"$SA" attach --cgroup "$CG_ON" >/dev/null || die "attach $CG_ON again failed"
kill "$SPAWNED" 2>/dev/null
fresh=$(mktemp -d); on_exit "rm -rf $fresh"
cp "$TOOLS/saxfer" "$fresh/saxfer"
short0=$(counter short_conns); prob0=$(counter probation); added0=$(counter socks_added)
XFER=$fresh/saxfer SERVER_CONNS=100 check "100 short connections from a new executable: all verified" \
	run "$CG_ON" "$CG_ON" --bytes 100 --conns 100 --parallel 4
skipped=$(( $(counter short_conns) - short0 )); prob=$(( $(counter probation) - prob0 ))
log "new executable: $skipped connections short_conns, $prob probation"
check "  its port was judged short while it was on probation (short_conns $skipped)" \
	[ "$skipped" -ge 50 ]
check "  none was inserted (probation)" [ "$(counter socks_added)" -eq "$added0" ]
check "  the first ones stayed on TCP for probation ($prob)" [ "$prob" -ge 16 ]
finish
