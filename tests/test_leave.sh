#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Leaving the sockhash (sockops.bpf.c, maybe_leave()) loses nothing:
#  1. a stopped reader: the writer falls back to TCP and blocks there;
#     every byte arrives once the reader resumes;
#  2. a full-duplex echo whose writer outruns the reader: its sends fall
#     back to TCP, and come back to the fast path once the direction
#     drained (the sender paused, sockops.bpf.c pause_sender()) or leave
#     by the beacon protocol; every byte verified in both directions;
#  3. a socket that received redirected bytes and then turned blocking
#     leaves before its blocking read meets tcp_bpf_recvmsg().
. "$(dirname "$0")/lib.sh"
require_root
require_not_loaded

NS=$(new_netns leave)
CG=$(new_cgroup leave)
attach "$CG"

ev0=$(counter socks_left)
out=$(in_cgroup_netns "$CG" "$NS" "$TOOLS/sastall" 127.0.0.1:0 3)
log "stopped reader: $out"
check "stopped reader: every byte verified after resuming" [ "${out##*verified=}" = 1 ]

pf=$(mktemp); on_exit "rm -f $pf"
start_server "$CG" "$NS" "$pf" "$TOOLS/saxfer" server --listen 127.0.0.1:0 --port-file "$pf" \
	--conns 4 --quiet --timeout 90
SRV=$SERVER_PID
ev0=$(counter socks_left); gone0=$(counter peer_gone)
st0=$(counter to_stack); rd0=$(counter to_redirect)
check "full-duplex echo, writer outruns the echo reader: every byte verified" \
	in_cgroup_netns "$CG" "$NS" "$TOOLS/saxfer" client --connect "127.0.0.1:$SERVER_PORT" \
	--echo --conns 4 --parallel 4 --bytes 100000000 --write-size 131072 --quiet --timeout 90
wait "$SRV"
left=$(( $(counter socks_left) - ev0 )); back=$(( $(counter to_redirect) - rd0 ))
log "fell back: $(( $(counter to_stack) - st0 )), came back: $back, left: $left," \
	"peer_gone passes: $(( $(counter peer_gone) - gone0 ))"
check "the writers outran the readers: sends fell back to TCP" [ "$(counter to_stack)" -gt "$st0" ]
check "and came back to the fast path, or left the sockhash" [ $((back + left)) -gt 0 ]

ev0=$(counter socks_left)
out=$(in_cgroup_netns "$CG" "$NS" "$TOOLS/saflip" 127.0.0.1:0 --banner)
log "saflip --banner: $out"
check "redirected-to socket turned blocking: the reply arrived" [ "${out##*reply_ok=}" = 1 ]
check "and it left the sockhash" [ "$(counter socks_left)" -gt "$ev0" ]
finish
