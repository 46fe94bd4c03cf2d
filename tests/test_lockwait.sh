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

# The CPUs this test may run on (affinity; nproc counts the same): the
# two ends are pinned to the first two.
read -ra CPUS <<< "$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
if [ "${#CPUS[@]}" -lt 2 ]; then
	skip "${#CPUS[@]} usable CPU(s) (${CPUS[*]:-none}): a busy receiver's lock cannot be met from another CPU"
fi

NS=$(new_netns lockwait)
CG=$(new_cgroup lockwait)
attach "$CG"

# echo_run LABEL: 8 echoed connections, random write sizes, both ends
# pinned apart; prints nothing, returns the client's status.
echo_run() {
	local pf port spid
	pf=$(mktemp)
	start_server "$CG" "$NS" "$pf" taskset -c "${CPUS[1]}" "$TOOLS/saxfer" server --listen 127.0.0.1:0 \
		--port-file "$pf" --conns 8 --echo --quiet --timeout 60
	spid=$SERVER_PID port=$SERVER_PORT; rm -f "$pf"
	in_cgroup_netns "$CG" "$NS" taskset -c "${CPUS[0]}" "$TOOLS/saxfer" client \
		--connect "127.0.0.1:$port" --conns 8 --echo --seed "$1" \
		--bytes 40000000 --write-size rand --quiet --timeout 60 || { wait "$spid"; return 1; }
	wait "$spid"
}

# status_has TEXT: the JSON status contains TEXT.
status_has() { "$SA" -j status | grep -qF "$1"; }

check "default wait bound is 30 us (status -j)" status_has '"lock_spin_us":30'

w0=$(counter lock_waits); r0=$(counter bytes_redirected)
check "waiting: 8 full-duplex echo streams verified" echo_run 11
w1=$(counter lock_waits); r1=$(counter bytes_redirected)
t1=$(counter lock_wait_timeouts)
log "waiting: lock_waits $((w1 - w0)), timeouts $t1, redirected $((r1 - r0)) bytes"
check "waiting: bytes went the fast path" [ $((r1 - r0)) -ge 10000000 ]
check "waiting: some redirects found the receiver busy and waited" [ $((w1 - w0)) -gt 0 ]

"$SA" load --lock-spin-us 0 >/dev/null || fail "load --lock-spin-us 0 (live) failed"
check "control: lock_spin_us 0 applied live (status -j)" status_has '"lock_spin_us":0'
check "control: 8 full-duplex echo streams verified" echo_run 12
w2=$(counter lock_waits); r2=$(counter bytes_redirected)
log "control: lock_waits $((w2 - w1)), redirected $((r2 - r1)) bytes"
check "control: bytes went the fast path" [ $((r2 - r1)) -ge 10000000 ]
check "control: no waits with the bound at 0" [ "$w2" -eq "$w1" ]
finish
