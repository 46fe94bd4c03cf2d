#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Nothing grows without bound, and a full sockhash costs no application an
# error. 100,000 short connections (SA_CHURN_CONNS) through an attached
# cgroup, every one verified: afterwards every map holds only what live
# sockets need (no sockhash entry, no peer record, one listener at most),
# and every insertion was matched by a close. Then a sockhash of 64
# sockets (--max-sockets) and 100 connections open at once: the ones that
# do not fit stay on TCP (insert_failed), every byte verified.
. "$(dirname "$0")/lib.sh"
require_root
require_not_loaded

CONNS=${SA_CHURN_CONNS:-100000}
NS=$(new_netns churn)
CG=$(new_cgroup churn)
"$SA" load --short-conns accelerate $SA_TEST_LOAD_OPTS > /dev/null || die "load failed"
attach "$CG"

sockets() { "$SA" -j status | python3 -c 'import json, sys; print(json.load(sys.stdin)["sockets"])'; }

# transfer N PARALLEL BYTES: N verified connections, PARALLEL at a time.
transfer() {
	local pf port spid rc
	pf=$(mktemp)
	start_server "$CG" "$NS" "$pf" "$TOOLS/saxfer" server --listen 127.0.0.1:0 --port-file "$pf" \
		--conns "$1" --quiet --timeout 600
	spid=$SERVER_PID port=$SERVER_PORT; rm -f "$pf"
	in_cgroup_netns "$CG" "$NS" "$TOOLS/saxfer" client --connect "127.0.0.1:$port" \
		--conns "$1" --parallel "$2" --bytes "$3" --quiet --timeout 600
	rc=$?
	wait "$spid" || rc=1
	return $rc
}

added0=$(counter socks_added) closed0=$(counter socks_closed)
t0=$(date +%s)
check "$CONNS short connections, 16 at a time, every one verified" transfer "$CONNS" 16 100
added1=$(counter socks_added) closed1=$(counter socks_closed)
log "$CONNS connections in $(( $(date +%s) - t0 )) s: $((added1 - added0)) sockets inserted, $((closed1 - closed0)) closes accounted"
check "both ends of most connections were inserted (>= $CONNS)" [ $((added1 - added0)) -ge "$CONNS" ]
# Closes are accounted as the sockets go (TCP_CLOSE, on_state_change()).
# drained: no sockhash entry and no peer record left (both checked below).
drained() { [ "$(sockets)" -eq 0 ] && [ "$(map_entries sockaccel_records)" -eq 0 ]; }
wait_until 5 drained
log "after: sockhash $(sockets), peer records $(map_entries sockaccel_records), listeners $(map_entries sockaccel_listeners), executables $(map_entries sockaccel_exes)"
check "no sockhash entry remains" [ "$(sockets)" -eq 0 ]
check "no peer record remains" [ "$(map_entries sockaccel_records)" -eq 0 ]
check "at most one listener entry remains" [ "$(map_entries sockaccel_listeners)" -le 1 ]
check "every inserted socket's close was accounted" [ $((closed1 - closed0)) -ge $((added1 - added0)) ]
check "no insert failures under churn" [ "$(counter insert_failed)" -eq 0 ]

# Capacity: a sockhash of 64 sockets, 100 connections at once.
"$SA" unload > /dev/null
"$SA" load --short-conns accelerate --max-sockets 64 $SA_TEST_LOAD_OPTS > /dev/null || die "reload failed"
attach "$CG"
check "100 connections open at once past a 64-socket sockhash, every byte verified" \
	transfer 100 100 2000000
log "insert_failed $(counter insert_failed), sockets inserted $(counter socks_added), redirected $(counter bytes_redirected) bytes"
check "the connections that did not fit were counted (insert_failed)" [ "$(counter insert_failed)" -gt 0 ]
check "the ones that fit used the fast path" [ "$(counter bytes_redirected)" -gt 0 ]
finish
