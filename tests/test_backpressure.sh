#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# A stopped reader: what a sender can queue stays bounded like plain TCP's
# (redirected bytes bypass the receive window, so sk_msg.bpf.c stops at
# backlog_limit and lets TCP flow control take over), every byte arrives
# once the reader resumes, and other connections on the host keep working
# meanwhile.
. "$(dirname "$0")/lib.sh"
require_root
require_not_loaded

NS=$(new_netns bp)
CG_ON=$(new_cgroup bp-on)
CG_OFF=$(new_cgroup bp-off)
attach "$CG_ON"
limit=$("$SA" -j status | python3 -c 'import json,sys; print(json.load(sys.stdin)["backlog_limit"])')
log "backlog_limit: $limit bytes"

get() { sed -n "s/.*$1=\([0-9]*\).*/\1/p"; }

plain=$(in_cgroup_netns "$CG_OFF" "$NS" "$TOOLS/sastall" 127.0.0.1:0 3)
log "plain:       $plain"
# While the accelerated sender is stalled, an unrelated transfer must work.
in_cgroup_netns "$CG_ON" "$NS" "$TOOLS/sastall" 127.0.0.1:0 4 > /tmp/sa-bp.$$ &
STALL=$!
sleep 2
mem=$(awk '/^TCP:/ { for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat)
pf=$(mktemp); on_exit "rm -f $pf /tmp/sa-bp.$$"
in_cgroup_netns "$CG_OFF" "$NS" "$TOOLS/saxfer" server --listen 127.0.0.1:0 --port-file "$pf" \
	--conns 1 --quiet --timeout 30 &
sleep 0.3
check "another connection works while a reader is stopped" \
	in_cgroup_netns "$CG_OFF" "$NS" "$TOOLS/saxfer" client --connect "127.0.0.1:$(cat "$pf")" \
	--bytes 20000000 --quiet --timeout 30
wait %2 2>/dev/null
wait "$STALL"; rc=$?
accel=$(cat /tmp/sa-bp.$$)
log "accelerated: $accel"
check "accelerated stopped-reader stream verified after resuming" [ "$rc" -eq 0 ]
q_plain=$(echo "$plain" | get queued)
q_accel=$(echo "$accel" | get queued)
# Bounded: at most the redirect backlog plus what plain TCP queues itself.
check "accelerated sender queued $q_accel bytes <= backlog_limit + 2 x plain ($q_plain)" \
	[ "$q_accel" -le $((limit + 2 * q_plain)) ]
check "the fast path was used before falling back ($(counter bytes_redirected) bytes)" \
	[ "$(counter bytes_redirected)" -gt 0 ]
check "the fallback was counted (peer_backlog)" [ "$(counter peer_backlog)" -gt 0 ]
lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/tcp_mem)
check "host TCP memory while stalled was measured ($mem pages)" [ "$mem" -gt 0 ]
check "host TCP memory while stalled ($mem pages) stays far under tcp_mem pressure ($lo)" \
	[ "$mem" -lt $((lo / 10)) ]
finish
