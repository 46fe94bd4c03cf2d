#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Acceleration is real: a 200 MB verified transfer inside an attached cgroup
# leaves the namespace's TcpOutSegs nearly unchanged, while the same
# transfer from a cgroup that is not attached (the control) produces
# thousands of segments. IPv4, IPv6 and IPv4-mapped IPv6 (v6 client to a
# v4 server), in one key space. Counters move as expected.
. "$(dirname "$0")/lib.sh"
require_root
require_not_loaded

BYTES=$((200 * 1000 * 1000))
NS=$(new_netns accel)
CG_ON=$(new_cgroup accel-on)
CG_OFF=$(new_cgroup accel-off)
attach "$CG_ON"
ip -n "$NS" addr add ::1/128 dev lo 2>/dev/null || true

# transfer CG LISTEN CONNECT: one verified transfer; prints the segments,
# or a word with "failed" in it; nothing if its server did not start (the
# failure is recorded: start_server died in the $(...) of the caller).
transfer() {
	local cg=$1 listen=$2 connect_host=$3 pf port spid before after
	pf=$(mktemp)
	start_server "$cg" "$NS" "$pf" "$TOOLS/saxfer" server --listen "$listen" \
		--port-file "$pf" --conns 1 --quiet --timeout 60
	spid=$SERVER_PID port=$SERVER_PORT; rm -f "$pf"
	before=$(tcp_out_segs "$NS")
	if ! in_cgroup_netns "$cg" "$NS" "$TOOLS/saxfer" client --connect "$connect_host:$port" \
		--bytes "$BYTES" --write-size "${WRITE_SIZE:-65536}" --pace --quiet --timeout 60; then
		echo "transfer-failed"; kill "$spid" 2>/dev/null; wait "$spid"; return
	fi
	wait "$spid" || { echo "server-failed"; return; }
	after=$(tcp_out_segs "$NS")
	echo $((after - before))
}

# fallback_counters: three totals from one `sockaccel -j stats` (a
# python3 start costs about half a second under TCG, and the race loop
# takes 40 of these): bytes_redirected; passes for any reason but the
# reader falling behind (peer_backlog, and stack_pending until the bytes
# it sent through TCP drain); peer_backlog passes.
fallback_counters() {
	"$SA" -j stats 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    d = {}
r = d.get("pass_reasons", {})
print(d.get("bytes_redirected", 0),
      sum(v for k, v in r.items() if k not in ("peer_backlog", "stack_pending")),
      r.get("peer_backlog", 0))'
}

# Every payload byte redirected; or, where the reader fell backlog_limit
# behind despite --pace (a qemu guest under TCG), at least 90% and the rest
# passed for that reason alone: the fallback the design promises, not a
# lost fast path.
redirected_or_reader_behind() { # REDIRECTED OTHER_PASSES BACKLOG_PASSES
	[ "$1" -ge "$BYTES" ] ||
		{ [ "$1" -ge $((BYTES * 9 / 10)) ] && [ "$2" -eq 0 ] && [ "$3" -gt 0 ]; }
}

# Handshake, FIN and the client's header: a handful of segments; or, when
# the reader fell behind (and for no other reason), under a quarter of
# the control's: most bytes still skipped the stack.
few_segments_or_reader_behind() { # SEGMENTS CONTROL_SEGMENTS OTHER_PASSES BACKLOG_PASSES
	[ "$1" -lt 50 ] || { [ "$3" -eq 0 ] && [ "$4" -gt 0 ] && [ "$1" -lt $(($2 / 4)) ]; }
}

for v in "v4 127.0.0.1:0 127.0.0.1" "v6 [::1]:0 [::1]" "mapped 127.0.0.1:0 [::ffff:127.0.0.1]"; do
	set -- $v
	name=$1 listen=$2 host=$3
	read -r red0 op0 pb0 <<< "$(fallback_counters)"
	on=$(transfer "$CG_ON" "$listen" "$host"); on=${on:-server-failed}
	read -r red1 op1 pb1 <<< "$(fallback_counters)"
	off=$(transfer "$CG_OFF" "$listen" "$host"); off=${off:-server-failed}
	log "$name: accelerated $on segments, control $off segments, redirected $((red1 - red0)) bytes"
	case "$on$off" in *failed*) fail "$name: transfer or verification failed ($on / $off)"; continue ;; esac
	# Handshake, FIN and the client's header: a handful of segments. The
	# writer is paced (--pace) so the reader keeps up; a reader that falls
	# behind by backlog_limit legitimately moves the connection to TCP.
	check "$name: accelerated transfer sent < 50 segments, or < control / 4 while the reader was behind" \
		few_segments_or_reader_behind "$on" "$off" $((op1 - op0)) $((pb1 - pb0))
	check "$name: control transfer sent > 1000 segments" [ "$off" -gt 1000 ]
	[ $((red1 - red0)) -ge "$BYTES" ] ||
		log "$name: $((BYTES - red1 + red0)) bytes through TCP; passes: $((pb1 - pb0)) peer_backlog, $((op1 - op0)) for other reasons"
	check "$name: all payload bytes redirected, or >= 90% and the rest passed only while the reader was behind" \
		redirected_or_reader_behind $((red1 - red0)) $((op1 - op0)) $((pb1 - pb0))
done

# The handshake race: a client that writes at once after connect() may
# find its server end not yet established (the final ACK still queued in
# loopback's softirq); the first send then waits for the server's record
# (bounded) instead of going through TCP, where rule 1 would keep a
# writer that never pauses for good. Every one of the runs must stay on
# the fast path. 1 MiB writes; --pace keeps the reader up with the writer,
# so only the race could move a run to TCP.
RACE_RUNS=${SA_RACE_RUNS:-20}
RACE_BYTES=$(( ${SA_RACE_MB:-200} * 1000 * 1000 ))
# On the fast path means >= 90% of the bytes redirected, or the rest
# passed only while the reader was behind: a reader that falls behind by
# backlog_limit on a busy machine moves a few MB to TCP by design (rule
# 3), which is not the race. In a qemu guest a run is 20 MB, so those few
# MB can be more than a tenth of it (a 6.1 guest: runs at 92% and 93%,
# each with one peer_backlog pass and no other; one CI run had a run
# under 90%). One such episode moves about backlog_limit (3 MiB there);
# a run that fell below half, or that passed for any other reason
# (peer_missing: the race), still counts as lost.
pm0=$(counter peer_missing) w0=$(counter peer_waits) wn0=$(counter peer_wait_ns)
segs_list= pct_list= broken=0 slow=0 behind=0
for i in $(seq "$RACE_RUNS"); do
	read -r r0 op0 pb0 <<< "$(fallback_counters)"
	s=$(BYTES=$RACE_BYTES WRITE_SIZE=1048576 transfer "$CG_ON" 127.0.0.1:0 127.0.0.1)
	read -r r1 op1 pb1 <<< "$(fallback_counters)"
	pct=$(( (r1 - r0) * 100 / RACE_BYTES ))
	segs_list="$segs_list $s" pct_list="$pct_list $pct%"
	case ${s:-server-failed} in *failed*) broken=$((broken + 1)) ;; esac
	[ $((r1 - r0)) -ge "$RACE_BYTES" ] ||
		log "race: run $i: $pct% redirected; passes: $((pb1 - pb0)) peer_backlog, $((op1 - op0)) for other reasons"
	[ "$pct" -ge 90 ] && continue
	if [ "$pct" -ge 50 ] && [ $((op1 - op0)) -eq 0 ] && [ $((pb1 - pb0)) -gt 0 ]; then
		behind=$((behind + 1))
	else
		slow=$((slow + 1))
	fi
done
pm1=$(counter peer_missing) w1=$(counter peer_waits) wn1=$(counter peer_wait_ns)
log "race: $RACE_RUNS runs of $RACE_BYTES bytes, segments:$segs_list; redirected:$pct_list; first sends that waited for their server end: $((w1 - w0)), $(( (wn1 - wn0) / 1000 )) us in all"
check "race: $RACE_RUNS of $RACE_RUNS transfers verified" [ "$broken" -eq 0 ]
check "race: $RACE_RUNS of $RACE_RUNS transfers >= 90% redirected, or >= 50% and the rest passed only while the reader was behind ($behind)" [ "$slow" -eq 0 ]
check "race: no send went through TCP for want of its server end (peer_missing)" [ $((pm1 - pm0)) -eq 0 ]

# Nested attachments (a cgroup and its child, the README's own flow: the
# root, then a container): both links run on the child's sockets.
CG_CHILD="$CG_ON/child"
mkdir "$CG_CHILD" || die "cannot create $CG_CHILD"
echo "$CG_CHILD" >> "$_SA_STATE/cgroups"
attach "$CG_CHILD"
read -r red0 op0 pb0 <<< "$(fallback_counters)"
nested=$(transfer "$CG_CHILD" 127.0.0.1:0 127.0.0.1); nested=${nested:-server-failed}
read -r red1 op1 pb1 <<< "$(fallback_counters)"
log "nested: accelerated $nested segments, redirected $((red1 - red0)) bytes"
check "nested attachment: transfer verified" [ "${nested/*failed*/x}" != x ]
ctl=${off//[!0-9]/}	# the last control transfer's segments
check "nested attachment: < 50 segments, or < control / 4 while the reader was behind" \
	few_segments_or_reader_behind "${nested/*failed*/99999}" "${ctl:-0}" $((op1 - op0)) $((pb1 - pb0))
check "nested attachment: all payload bytes redirected, or >= 90% and the rest passed only while the reader was behind" \
	redirected_or_reader_behind $((red1 - red0)) $((op1 - op0)) $((pb1 - pb0))

check "sockets were added" [ "$(counter socks_added)" -ge 6 ]
check "no insert failures" [ "$(counter insert_failed)" -eq 0 ]
check "closed sockets counted" [ "$(counter socks_closed)" -ge 6 ]
finish
