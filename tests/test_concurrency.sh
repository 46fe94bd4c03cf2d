#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Concurrency and crashes: many sockaccel commands at once end in a
# consistent state (the lock serializes them; every command either did its
# work or failed with one line), and a loader killed with SIGKILL at any
# moment of load or attach leaves a state the next load, attach or unload
# repairs.
. "$(dirname "$0")/lib.sh"
require_root
require_not_loaded

# How long a command waits for the lock is test_cli's business; here a
# first load (which probes the kernel) can hold it longer than the default
# 30 s under qemu's TCG while 39 other commands start.
export SOCKACCEL_LOCK_WAIT=120

CG_A=$(new_cgroup conc-a)
CG_B=$(new_cgroup conc-b)
NS=$(new_netns conc)
TMPD=$(mktemp -d /tmp/sa-conc.XXXXXX)
on_exit "rm -rf '$TMPD'"

# consistent: status parses, and every attached cgroup has our sock_ops.
consistent() {
	local st
	st=$("$SA" -j status 2> "$TMPD/err") || { log "status: $(cat "$TMPD/err")"; return 1; }
	python3 -c 'import json, sys; json.loads(sys.argv[1])' "$st" || { log "status is not JSON"; return 1; }
}
attached_ids() { "$SA" -j status | python3 -c 'import json, sys; print(" ".join(str(c["id"]) for c in json.load(sys.stdin).get("cgroups", [])))'; }
has_sockops() { bpftool cgroup show "$1" 2> /dev/null | grep -q sock_ops; }
# attach_quiet CG: sockaccel attach, its message discarded (not the check's).
attach_quiet() { "$SA" attach --cgroup "$1" > /dev/null; }

# 1. 40 commands at once, 4 rounds.
for round in 1 2 3 4; do
	for i in $(seq 10); do
		"$SA" load > "$TMPD/o.$round.$i.1" 2>&1 &
		"$SA" attach --cgroup "$CG_A" > "$TMPD/o.$round.$i.2" 2>&1 &
		"$SA" attach --cgroup "$CG_B" > "$TMPD/o.$round.$i.3" 2>&1 &
		if [ $((i % 3)) = 0 ]; then
			"$SA" detach --cgroup "$CG_B" > "$TMPD/o.$round.$i.4" 2>&1 &
		else
			"$SA" policy add --cgroup "$CG_A" exclude --port $((9000 + i)) > "$TMPD/o.$round.$i.4" 2>&1 &
		fi
	done
	wait
	# Each said one line: what it did, or why not. The order is the
	# scheduler's: a policy add or a detach that runs before any load or
	# attach of its cgroup is refused as such (not loaded, not attached);
	# a cgroup holds 16 rules at most. Any other error is a failure.
	bad=0
	for f in "$TMPD"/o.$round.*; do
		[ "$(wc -l < "$f")" -eq 1 ] || { bad=$((bad + 1)); log "$f: $(head -3 "$f" | tr '\n' '|')"; }
		grep -q '^sockaccel: ' "$f" &&
			! grep -qE 'already has 16 rules|: not loaded \(|is not attached \(' "$f" &&
			{ bad=$((bad + 1)); log "$f: $(cat "$f")"; }
	done
	check "round $round: 40 concurrent commands, each did its work or a one-line refusal its order explains" [ "$bad" -eq 0 ]
	nrules=$("$SA" -j policy show --cgroup "$CG_A" | python3 -c 'import json, sys; d = json.load(sys.stdin); r = d["rules"]; print(len(r), len({json.dumps(x, sort_keys=True) for x in r}))')
	check "round $round: the policy holds at most 16 rules, none twice ($nrules)" \
		python3 -c 'import sys; n, u = map(int, sys.argv[1:]); sys.exit(not (n <= 16 and n == u))' $nrules
	"$SA" policy clear --cgroup "$CG_A" > /dev/null
	check "round $round: the state is consistent (status parses)" consistent
	check "round $round: A is attached and has sock_ops" has_sockops "$CG_A"
done
ids=$(attached_ids)
check "status lists A" grep -qw "$(stat -c %i "$CG_A")" <<< "$ids"
"$SA" unload > /dev/null
check "unload after the storm leaves no pins" [ ! -e "$SOCKACCEL_PIN_ROOT" ]
check "unload detached A" bash -c "! bpftool cgroup show '$CG_A' | grep -q sock_ops"

# 2. Loader killed with SIGKILL at random moments of load, then of attach.
for i in $(seq 12); do
	delay=$(( (i * 37) % 300 ))
	"$SA" attach --cgroup "$CG_A" > /dev/null 2>&1 &
	pid=$!
	# Not a wait: the delay is where in load or attach the kill lands.
	python3 -c "import time; time.sleep($delay / 1000)"
	kill -9 "$pid" 2> /dev/null
	wait "$pid" 2> /dev/null
	if [ $((i % 2)) = 0 ]; then
		"$SA" unload > /dev/null 2>&1
		check "kill $i (${delay} ms): unload repairs (no pins left)" [ ! -e "$SOCKACCEL_PIN_ROOT" ]
	else
		check "kill $i (${delay} ms): attach again succeeds" attach_quiet "$CG_A"
		check "kill $i: status consistent" consistent
	fi
done
# After all that, the fast path works.
"$SA" unload > /dev/null
attach "$CG_A"
pf=$TMPD/port
start_server "$CG_A" "$NS" "$pf" "$TOOLS/saxfer" server --listen 127.0.0.1:0 --port-file "$pf" \
	--conns 1 --quiet --timeout 30
red0=$(counter bytes_redirected)
check "after the kills: a transfer is verified" in_cgroup_netns "$CG_A" "$NS" "$TOOLS/saxfer" client \
	--connect "127.0.0.1:$SERVER_PORT" --bytes 10000000 --quiet --timeout 30
wait "$SERVER_PID"
check "after the kills: it was redirected" [ $(( $(counter bytes_redirected) - red0 )) -ge 10000000 ]
finish
