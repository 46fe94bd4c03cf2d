#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Waiting for a busy receiver's socket lock (sk_msg.bpf.c,
# wait_for_peer_lock()). Full-duplex echo streams with the two ends pinned
# to different CPUs, so each side's redirects meet the other's reader
# inside tcp_bpf_recvmsg(), and both sides send at once (the case where
# two waiters could wait for each other): every byte verified, and the
# lock_waits counter proves the wait ran. The control is the same run
# after `load --lock-spin-us 0` (applied live): verified, and no wait.
. "$(dirname "$0")/lib.sh"
require_root
require_not_loaded

if [ "$(nproc)" -lt 2 ]; then
	log "one CPU: a busy receiver lock cannot be met from another CPU; nothing to test"
	finish
fi

NS=$(new_netns lockwait)
CG=$(new_cgroup lockwait)
attach "$CG"

# echo_run LABEL: 8 echoed connections, random write sizes, both ends
# pinned apart; prints nothing, returns the client's status.
echo_run() {
	local pf port spid
	pf=$(mktemp)
	spawn "$CG" "$NS" taskset -c 1 "$TOOLS/saxfer" server --listen 127.0.0.1:0 \
		--port-file "$pf" --conns 8 --echo --quiet --timeout 60
	spid=$SPAWNED
	for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
	port=$(cat "$pf"); rm -f "$pf"
	in_cgroup_netns "$CG" "$NS" taskset -c 0 "$TOOLS/saxfer" client \
		--connect "127.0.0.1:$port" --conns 8 --echo --seed "$1" \
		--bytes 40000000 --write-size rand --quiet --timeout 60 || { wait "$spid"; return 1; }
	wait "$spid"
}

"$SA" -j status | grep -q '"lock_spin_us":30' &&
	pass "default wait bound is 30 us (status -j)" || fail "default lock_spin_us not 30"

w0=$(counter lock_waits); r0=$(counter bytes_redirected)
check "waiting: 8 full-duplex echo streams verified" echo_run 11
w1=$(counter lock_waits); r1=$(counter bytes_redirected)
t1=$(counter lock_wait_timeouts)
log "waiting: lock_waits $((w1 - w0)), timeouts $t1, redirected $((r1 - r0)) bytes"
check "waiting: bytes went the fast path" [ $((r1 - r0)) -ge 10000000 ]
check "waiting: some redirects found the receiver busy and waited" [ $((w1 - w0)) -gt 0 ]

"$SA" load --lock-spin-us 0 >/dev/null || fail "load --lock-spin-us 0 (live) failed"
"$SA" -j status | grep -q '"lock_spin_us":0' &&
	pass "control: lock_spin_us 0 applied live" || fail "lock_spin_us 0 not applied"
check "control: 8 full-duplex echo streams verified" echo_run 12
w2=$(counter lock_waits); r2=$(counter bytes_redirected)
log "control: lock_waits $((w2 - w1)), redirected $((r2 - r1)) bytes"
check "control: bytes went the fast path" [ $((r2 - r1)) -ge 10000000 ]
check "control: no waits with the bound at 0" [ "$w2" -eq "$w1" ]
finish
