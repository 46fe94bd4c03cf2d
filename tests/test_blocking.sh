#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Blocking programs are never broken (docs/kernel-limitations.md, row 1):
#  - blocking sockets are not inserted, and that decision is counted;
#  - a socket that connects nonblocking and then turns blocking (connect
#    with a timeout) leaves before its blocking read can meet
#    tcp_bpf_recvmsg(), and its reply arrives through a signal and its own
#    FIN being acked (saflip; `sockaccel probe` shows the same pattern
#    returns EAGAIN while the socket is in a sockhash).
. "$(dirname "$0")/lib.sh"
require_root
require_not_loaded

NS=$(new_netns blk)
CG=$(new_cgroup blk)
attach "$CG"
if "$SA" -j status | grep -q '"recv_waits_safely":false'; then
	log "probe: blocking reads are unsafe on this kernel"
else
	log "probe: this kernel waits safely; the blocking policy is not exercised"
fi

pf=$(mktemp); on_exit "rm -f $pf"
start_server "$CG" "$NS" "$pf" "$TOOLS/saxfer" server --listen 127.0.0.1:0 --port-file "$pf" \
	--block --conns 4 --quiet --timeout 60
SRV=$SERVER_PID
added0=$(counter socks_added)
check "blocking client and server: every byte verified (echo, full duplex)" \
	in_cgroup_netns "$CG" "$NS" "$TOOLS/saxfer" client --connect "127.0.0.1:$SERVER_PORT" \
	--block --echo --conns 4 --parallel 2 --bytes 5000000 --write-size rand --quiet --timeout 60
wait "$SRV"
check "blocking sockets were not inserted" [ "$(counter socks_added)" -eq "$added0" ]
check "the decision was counted (blocking)" [ "$(counter blocking)" -ge 4 ]
# The server ends follow their clients, which were not inserted: they are
# decided (peer_missing) before their listener's mode is looked at.
check "the server ends followed their clients (peer_missing)" [ "$(counter peer_missing)" -ge 4 ]

ev0=$(counter socks_left)
out=$(in_cgroup_netns "$CG" "$NS" "$TOOLS/saflip" 127.0.0.1:0)
log "saflip: $out"
check "nonblocking connect then blocking I/O: the reply arrived" [ "${out#*reply_ok=}" = 1 ]
check "the socket that turned blocking left the sockhash" [ "$(counter socks_left)" -gt "$ev0" ]
check "its sends went through TCP meanwhile (self_blocking)" [ "$(counter self_blocking)" -ge 1 ]
finish
