#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Leaving the sockhash (sockops.bpf.c, maybe_leave()) loses nothing:
#  1. a stopped reader: the writer falls back to TCP and blocks there;
#     every byte arrives once the reader resumes;
#  2. a full-duplex echo whose writer outruns the reader: the end that
#     received redirected bytes leaves by the beacon protocol, then its
#     peer; every byte verified in both directions;
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
check "full-duplex echo, writer outruns the echo reader: every byte verified" \
	in_cgroup_netns "$CG" "$NS" "$TOOLS/saxfer" client --connect "127.0.0.1:$SERVER_PORT" \
	--echo --conns 4 --parallel 4 --bytes 100000000 --write-size 131072 --quiet --timeout 90
wait "$SRV"
log "left: $(( $(counter socks_left) - ev0 )), peer_gone passes: $(( $(counter peer_gone) - gone0 ))"
check "ends left the sockhash after falling back" [ "$(counter socks_left)" -gt "$ev0" ]

ev0=$(counter socks_left)
out=$(in_cgroup_netns "$CG" "$NS" "$TOOLS/saflip" 127.0.0.1:0 --banner)
log "saflip --banner: $out"
check "redirected-to socket turned blocking: the reply arrived" [ "${out##*reply_ok=}" = 1 ]
check "and it left the sockhash" [ "$(counter socks_left)" -gt "$ev0" ]
finish
