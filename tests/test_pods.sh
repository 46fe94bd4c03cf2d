#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Containers: "pods" are network namespace + cgroup pairs with addresses
# that exist only inside the namespaces this test creates.
#  1. pod to pod over a veth pair, and over a bridge in a "node" namespace;
#  2. a service VIP that nftables DNATs (in the node namespace) to a pod on
#     another routed subnet, kube-proxy style: the two sockets see different
#     tuples and are paired by their initial sequence numbers;
#  3. with SNAT the server cannot see the client's address: not paired;
#  4. isolation: the identical loopback tuple live in two namespaces at once.
# Acceleration is proven with the pods' TcpOutSegs against the same
# transfer from cgroups that are not attached; every byte is verified.
. "$(dirname "$0")/lib.sh"
require_root
require_not_loaded
command -v nft >/dev/null || die "nft (nftables) is required"

BYTES=$((50 * 1000 * 1000))
PF_DIR=$(mktemp -d /tmp/sa-pods.XXXXXX)
on_exit "rm -rf '$PF_DIR'"
"$SA" load --cross-netns on >/dev/null || die "load failed"

# pod NAME: a netns and two cgroups (attached and not), names in globals.
pod() {
	local n=$1
	eval "NS_$n=\$(new_netns $n)"
	eval "CGON_$n=\$(new_cgroup $n-on)"
	eval "CGOFF_$n=\$(new_cgroup $n-off)"
	eval "attach \"\$CGON_$n\""
}

# xfer SRV_NS SRV_CG LISTEN CLI_NS CLI_CG CONNECT_HOST: verified transfer;
# prints "<client segs> <server segs>" or "failed"; nothing if its server
# did not start (the failure is recorded: start_server died in the $(...)).
xfer() {
	local sns=$1 scg=$2 listen=$3 cns=$4 ccg=$5 host=$6 pf port spid c0 s0
	pf=$PF_DIR/xfer
	start_server "$scg" "$sns" "$pf" "$TOOLS/saxfer" server --listen "$listen" --port-file "$pf" \
		--conns 1 --quiet --timeout 60
	spid=$SERVER_PID port=${FIXED_PORT:-$SERVER_PORT}; rm -f "$pf"
	c0=$(tcp_out_segs "$cns"); s0=$(tcp_out_segs "$sns")
	if ! in_cgroup_netns "$ccg" "$cns" "$TOOLS/saxfer" client --connect "$host:$port" \
		--bytes "$BYTES" --pace --quiet --timeout 60; then
		kill "$spid" 2>/dev/null; wait "$spid"; echo failed; return
	fi
	wait "$spid" || { echo failed; return; }
	echo "$(( $(tcp_out_segs "$cns") - c0 )) $(( $(tcp_out_segs "$sns") - s0 ))"
}

# prove NAME ON OFF: accelerated run ON vs control OFF.
prove() {
	local name=$1 on=${2:-failed} off=${3:-failed}
	log "$name: accelerated segments (client server) = $on; control = $off"
	if [ "$on" = failed ] || [ "$off" = failed ]; then
		fail "$name: a transfer failed verification"
		return
	fi
	set -- $on $off
	check "$name: accelerated pod a sent < 50 segments" [ "$1" -lt 50 ]
	check "$name: accelerated pod b sent < 50 segments" [ "$2" -lt 50 ]
	check "$name: control pods sent > 1000 segments" [ "$3" -gt 1000 ]
}

# --- 1a. veth pair
pod a; pod b
ip link add va type veth peer name vb
ip link set va netns "$NS_a"; ip link set vb netns "$NS_b"
ip -n "$NS_a" addr add 10.99.0.1/24 dev va; ip -n "$NS_a" link set va up
ip -n "$NS_b" addr add 10.99.0.2/24 dev vb; ip -n "$NS_b" link set vb up
red0=$(counter bytes_redirected)
on=$(xfer "$NS_b" "$CGON_b" 10.99.0.2:0 "$NS_a" "$CGON_a" 10.99.0.2)
red1=$(counter bytes_redirected)
off=$(xfer "$NS_b" "$CGOFF_b" 10.99.0.2:0 "$NS_a" "$CGOFF_a" 10.99.0.2)
prove "veth pod to pod" "$on" "$off"
# The stream one way, the server's verdict ("SAOK") the other.
check "veth: both directions redirected ($((red1 - red0)) bytes)" [ $((red1 - red0)) -ge $((BYTES + 8)) ]

# --- 1b. bridge in a node namespace
NODE=$(new_netns node)
ip -n "$NODE" link add br0 type bridge; ip -n "$NODE" link set br0 up
ip -n "$NODE" addr add 10.98.0.254/24 dev br0
pod c; pod d
for p in c d; do
	eval "ns=\$NS_$p"
	ip link add "h$p" type veth peer name "e$p"
	ip link set "h$p" netns "$NODE"; ip link set "e$p" netns "$ns"
	ip -n "$NODE" link set "h$p" master br0; ip -n "$NODE" link set "h$p" up
	ip -n "$ns" link set "e$p" up
done
ip -n "$NS_c" addr add 10.98.0.1/24 dev ec
ip -n "$NS_d" addr add 10.98.0.2/24 dev ed
on=$(xfer "$NS_d" "$CGON_d" 10.98.0.2:0 "$NS_c" "$CGON_c" 10.98.0.2)
off=$(xfer "$NS_d" "$CGOFF_d" 10.98.0.2:0 "$NS_c" "$CGOFF_c" 10.98.0.2)
prove "bridged pod to pod" "$on" "$off"

# --- 2. service VIP: routed pods (e on 10.97.1.0/24, f on 10.97.2.0/24),
# the node forwards and DNATs 10.96.0.10:80 -> 10.97.2.1:8080.
pod e; pod f
for p in e f; do
	eval "ns=\$NS_$p"
	n=$([ "$p" = e ] && echo 1 || echo 2)
	ip link add "r$p" type veth peer name "i$p"
	ip link set "r$p" netns "$NODE"; ip link set "i$p" netns "$ns"
	ip -n "$NODE" addr add "10.97.$n.254/24" dev "r$p"; ip -n "$NODE" link set "r$p" up
	ip -n "$ns" addr add "10.97.$n.1/24" dev "i$p"; ip -n "$ns" link set "i$p" up
	ip -n "$ns" route add default via "10.97.$n.254"
done
ip netns exec "$NODE" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$NODE" nft -f - <<'NFT'
table ip svc {
	chain prerouting {
		type nat hook prerouting priority dstnat;
		ip daddr 10.96.0.10 tcp dport 80 dnat to 10.97.2.1:8080
	}
}
NFT
red0=$(counter bytes_redirected)
on=$(FIXED_PORT=80 xfer "$NS_f" "$CGON_f" 10.97.2.1:8080 "$NS_e" "$CGON_e" 10.96.0.10)
red1=$(counter bytes_redirected)
off=$(FIXED_PORT=80 xfer "$NS_f" "$CGOFF_f" 10.97.2.1:8080 "$NS_e" "$CGOFF_e" 10.96.0.10)
prove "service VIP behind DNAT" "$on" "$off"
check "VIP: both directions redirected ($((red1 - red0)) bytes)" [ $((red1 - red0)) -ge $((BYTES + 8)) ]

# --- 3. SNAT hides the client's address: must not be paired, still exact.
ip netns exec "$NODE" nft -f - <<'NFT'
table ip masq {
	chain postrouting {
		type nat hook postrouting priority srcnat;
		ip daddr 10.97.2.1 masquerade
	}
}
NFT
un0=$(counter peer_unverified)
res=$(FIXED_PORT=80 xfer "$NS_f" "$CGON_f" 10.97.2.1:8080 "$NS_e" "$CGON_e" 10.96.0.10)
check "SNAT: transfer verified" [ "${res:-failed}" != failed ]
# not_paired: either reason is a refusal to pair; one condition.
not_paired() { [ "$(counter peer_unverified)" -gt "$un0" ] || [ "$(counter peer_missing)" -gt 0 ]; }
check "SNAT: sockets not paired (peer_unverified counted by it, or peer_missing counted)" not_paired
ip netns exec "$NODE" nft delete table ip masq

# --- 4. isolation: the same loopback tuple (127.0.0.1:7001 -> 127.0.0.1:7000)
# live in two namespaces at once with different streams; then a socket
# outliving its peer (server killed) keeps writing while the other
# namespace's identical tuple is in use. Every live stream must verify:
# a single foreign byte would fail the check at its offset.
pod g; pod h
for p in g h; do
	eval "ns=\$NS_$p cg=\$CGON_$p"
	start_server "$cg" "$ns" "$PF_DIR/$p" "$TOOLS/saxfer" server --listen 127.0.0.1:7000 \
		--port-file "$PF_DIR/$p" --conns 1 --echo --quiet --timeout 60
	eval "SRV_$p=\$SERVER_PID"
done
# serving NS PID: PID holds an established connection on port 7000 in NS,
# i.e. it accepted it (a connection still in the accept queue has no owner).
serving() { ip netns exec "$1" ss -Htnp state established '( sport = :7000 )' | grep -q "pid=$2,"; }
# g's stream (100 GB) cannot end before its server is killed, at any
# speed; h's must finish.
seed=1
for p in g h; do
	eval "ns=\$NS_$p cg=\$CGON_$p"
	bytes=100000000
	[ "$p" = g ] && bytes=100000000000
	in_cgroup_netns "$cg" "$ns" "$TOOLS/saxfer" client --connect 127.0.0.1:7000 \
		--bind 127.0.0.1:7001 --echo --seed $((seed * 1000)) --bytes "$bytes" \
		--write-size rand --quiet --timeout 60 &
	eval "CLI_$p=\$!"
	seed=$((seed + 1))
done
# g's server dies mid-stream, once it serves the stream; g's client socket
# outlives it and keeps writing.
check "isolation: g's server accepted its stream's connection" wait_until 10 serving "$NS_g" "$SRV_g"
check "isolation: g's stream still running when its server is killed" kill -0 "$SRV_g"
kill -9 "$SRV_g"; wait "$SRV_g" 2>/dev/null
start_server "$CGON_g" "$NS_g" "$PF_DIR/g2" "$TOOLS/saxfer" server --listen 127.0.0.1:7000 \
	--port-file "$PF_DIR/g2" --conns 1 --echo --quiet --timeout 60
SRV_g2=$SERVER_PID
in_cgroup_netns "$CGON_g" "$NS_g" "$TOOLS/saxfer" client --connect 127.0.0.1:7000 \
	--bind 127.0.0.1:7002 --echo --seed 7777 --bytes 20000000 --write-size rand --quiet --timeout 60
check "isolation: a new connection beside the orphaned socket verified" [ $? -eq 0 ]
wait "$SRV_g2"
check "isolation: h's stream (same tuple as g's) verified" wait "$CLI_h"
check "isolation: h's server verified" wait "$SRV_h"
wait "$CLI_g" 2>/dev/null
check "isolation: g's orphaned client saw its peer die (no silent delivery)" [ $? -ne 0 ]
finish
