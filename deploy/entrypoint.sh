#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# sockaccel DaemonSet entrypoint (see deploy/daemonset.yaml, docs/kubernetes.md).
#
#   entrypoint.sh              load, attach to the kubelet pods' cgroup, wait;
#                              on SIGTERM/SIGINT: sockaccel unload, exit
#   entrypoint.sh pod-cgroup UID
#                              print the cgroup v2 directory of pod UID (for a
#                              manual `sockaccel attach --cgroup`)
#
# Environment (defaults in brackets):
#   SOCKACCEL_CGROUP        [auto] what to attach, as paths relative to the
#                           cgroup2 root (like /proc/PID/cgroup's "0::/PATH"),
#                           separated by spaces. auto: kubepods.slice (kubelet
#                           systemd cgroup driver) or kubepods (cgroupfs
#                           driver), whichever exists. none: load only.
#                           "/" (the whole node, host daemons included) also
#                           needs SOCKACCEL_ALLOW_ROOT=1.
#   SOCKACCEL_CROSS_NETNS   [on] pair sockets across network namespaces (pods)
#   SOCKACCEL_LOAD_ARGS     [] more `sockaccel load` options, e.g.
#                           "--max-sockets 262144 --backlog-limit 4M"
#   SOCKACCEL_HOST_CGROUP   [/host/sys/fs/cgroup] where the host's
#                           /sys/fs/cgroup is mounted; the cgroup2 hierarchy is
#                           found under it by file system type (it is
#                           .../unified on hybrid hosts)
#   SOCKACCEL_CONTROL_PLANE [tcp] connections to etcd (2379-2380), the API
#                           server (6443) and the kubelet (10250-10259)
#                           stay on TCP; "accelerate" includes them
#   SOCKACCEL_METRICS       [:9477] serve `sockaccel metrics` (Prometheus) on
#                           ADDR:PORT of the pod's own network namespace;
#                           empty: no metrics
#   SOCKACCEL_READY_FILE    [/tmp/sockaccel.ready] created once attached
#   SOCKACCEL_PIN_ROOT      [/sys/fs/bpf/sockaccel] and
#   SOCKACCEL_STATE_ROOT    [<pin root>-state]: where the loader pins, read
#                           by every sockaccel command (kubectl exec ones
#                           too: set them in the pod spec, not here). The
#                           manifest bind-mounts the host's
#                           /sys/fs/bpf/sockaccel and /sys/fs/bpf/sockaccel-state
#                           at /run/sockaccel/pins and /run/sockaccel/state.
#                           Both must be on bpffs, or the entrypoint stops.
#
# For tests only:
#   SOCKACCEL_DRY_RUN=1     print the sockaccel commands instead of running
#                           them, then exit 0 without waiting
#   SOCKACCEL_MOUNTS        [/proc/self/mounts] mount table used for the file
#                           system type checks (a fake one for a fake tree)
#   SOCKACCEL_BIN           [sockaccel] the binary to run
set -u

HOST_CG=${SOCKACCEL_HOST_CGROUP:-/host/sys/fs/cgroup}
MOUNTS=${SOCKACCEL_MOUNTS:-/proc/self/mounts}
SA=${SOCKACCEL_BIN:-sockaccel}
READY=${SOCKACCEL_READY_FILE:-/tmp/sockaccel.ready}
DRY=${SOCKACCEL_DRY_RUN:-0}
# The loader's own defaults (loader/util.c: pin_root(), state_root()).
PINS=${SOCKACCEL_PIN_ROOT:-/sys/fs/bpf/sockaccel}
STATE=${SOCKACCEL_STATE_ROOT:-$PINS-state}
DOCS="docs/kubernetes.md"

log() { printf 'sockaccel-entrypoint: %s\n' "$*"; }
err() { printf 'sockaccel-entrypoint: error: %s\n' "$*" >&2; }

# run CMD...: run a sockaccel command, or print it in dry-run mode.
run() {
	if [ "$DRY" = 1 ]; then
		printf '+ %s\n' "$*"
		return 0
	fi
	log "running: $*"
	"$@"
}

# fstype PATH: type of the file system PATH is on, from the mount table: the
# entry with the longest mount point containing PATH (the last one wins for
# stacked mounts). Prints nothing if PATH is not covered.
fstype() {
	local p
	p=$(realpath -m -- "$1") || return 1
	awk -v p="$p" '
		{
			mp = $2
			gsub(/\\040/, " ", mp); gsub(/\\011/, "\t", mp)
			gsub(/\\012/, "\n", mp); gsub(/\\134/, "\\", mp)
			if (mp == p || mp == "/" || index(p, mp "/") == 1) {
				if (length(mp) >= best) { best = length(mp); t = $3 }
			}
		}
		END { if (t != "") print t }' "$MOUNTS"
}

# find_cgroup2: the cgroup2 hierarchy mounted at or under $HOST_CG.
find_cgroup2() {
	local mp
	if [ ! -d "$HOST_CG" ]; then
		err "$HOST_CG does not exist (mount the host's /sys/fs/cgroup there: hostPath volume)"
		return 1
	fi
	if [ "$(fstype "$HOST_CG")" = cgroup2 ]; then
		realpath -- "$HOST_CG"
		return 0
	fi
	# Hybrid host: v1 controllers on a tmpfs, cgroup2 at .../unified.
	if [ -d "$HOST_CG/unified" ] && [ "$(fstype "$HOST_CG/unified")" = cgroup2 ]; then
		realpath -- "$HOST_CG/unified"
		return 0
	fi
	# Anything else mounted as cgroup2 below it.
	mp=$(awk -v root="$(realpath -m -- "$HOST_CG")" \
		'$3 == "cgroup2" && index($2, root "/") == 1 { print $2; exit }' "$MOUNTS")
	if [ -n "$mp" ] && [ -d "$mp" ]; then
		printf '%s\n' "$mp"
		return 0
	fi
	err "no cgroup2 hierarchy at or under $HOST_CG (its type: $(fstype "$HOST_CG" || echo unknown));" \
	    "sockaccel needs cgroup v2 (a cgroup v1-only node is not supported)"
	return 1
}

# resolve_target CG2 REL: the directory for REL (relative to CG2), checked
# to be a cgroup2 directory inside CG2.
resolve_target() {
	local cg2=$1 rel=$2 dir
	rel=${rel#/}
	if [ -z "$rel" ]; then
		if [ "${SOCKACCEL_ALLOW_ROOT:-0}" != 1 ]; then
			err "refusing to attach to the cgroup2 root (every process on the node, host daemons" \
			    "included); set SOCKACCEL_ALLOW_ROOT=1 to mean it"
			return 1
		fi
		printf '%s\n' "$cg2"
		return 0
	fi
	dir=$(realpath -e -- "$cg2/$rel" 2>/dev/null) || {
		err "cgroup $rel not found under $cg2"
		return 1
	}
	if [ "$dir" = "$cg2" ]; then
		resolve_target "$cg2" /
		return
	fi
	case "$dir" in
	"$cg2"/*) ;;
	*) err "cgroup $rel resolves to $dir, outside $cg2"; return 1 ;;
	esac
	if [ ! -d "$dir" ]; then
		err "$dir is not a directory"
		return 1
	fi
	if [ "$(fstype "$dir")" != cgroup2 ]; then
		err "$dir is not on a cgroup2 file system"
		return 1
	fi
	printf '%s\n' "$dir"
}

# pods_root CG2: the kubelet's pod cgroup root, by cgroup driver.
pods_root() {
	local cg2=$1 found=() c
	for c in kubepods.slice kubepods; do
		[ -d "$cg2/$c" ] && found+=("$c")
	done
	case ${#found[@]} in
	1) resolve_target "$cg2" "${found[0]}" ;;
	0)
		err "no kubepods.slice (systemd cgroup driver) or kubepods (cgroupfs driver) in $cg2;" \
		    "set SOCKACCEL_CGROUP to the kubelet's pod cgroup root (below its --cgroup-root, if set)"
		return 1 ;;
	*)
		err "both kubepods.slice and kubepods exist in $cg2 (cgroup driver changed?);" \
		    "set SOCKACCEL_CGROUP to the one the kubelet uses"
		return 1 ;;
	esac
}

# targets CG2: the cgroup directories to attach, one a line (none: nothing).
targets() {
	local cg2=$1 spec=${SOCKACCEL_CGROUP:-auto} t list
	case "$spec" in
	auto) pods_root "$cg2" ;;
	none) return 0 ;;
	*)
		# A space-separated list; read -a splits without globbing.
		read -ra list <<< "$spec"
		for t in "${list[@]}"; do
			resolve_target "$cg2" "$t" || return 1
		done ;;
	esac
}

# pod_cgroup CG2 UID: the cgroup directory of a pod. systemd driver:
# kubepods-<qos>-pod<uid with _>.slice; cgroupfs driver: pod<uid>.
pod_cgroup() {
	local cg2=$1 uid=$2 u_=${2//-/_} parent d
	case "$uid" in
	*[!0-9a-fA-F-]* | "") err "invalid pod UID '$uid'"; return 1 ;;
	esac
	for parent in "$cg2"/kubepods*/ "$cg2"/kubepods*/*/; do
		for d in "$parent"*pod"$u_".slice "$parent"pod"$uid"; do
			if [ -d "$d" ]; then
				realpath -- "$d"
				return 0
			fi
		done
	done
	err "no cgroup for pod $uid under $cg2/kubepods* (is the pod on this node?)"
	return 1
}

hint_on_failure() {
	err "$1 failed. Common causes: seccomp blocking bpf() (RuntimeDefault without CAP_BPF" \
	    "support: set seccompProfile Unconfined; the loader then reports a missing" \
	    "BPF_MAP_TYPE_SOCKHASH), an AppArmor profile denying pins in $PINS or $STATE" \
	    "(the runtimes' default profiles deny pinning only under /sys), missing" \
	    "capabilities (BPF, PERFMON, NET_ADMIN), kernel.perf_event_paranoid above 2 on the" \
	    "node (Debian and Ubuntu kernels then refuse the guard's tracepoints: set it to 2)," \
	    "a kernel older than 6.1 or without BTF; see $DOCS"
}

unloading=0
on_signal() {
	local rc=0
	[ "$unloading" = 1 ] && return
	unloading=1
	log "$1: unloading"
	[ -n "${sleeper:-}" ] && kill "$sleeper" 2>/dev/null
	[ -n "${metrics:-}" ] && kill "$metrics" 2>/dev/null
	rm -f -- "$READY"
	run "$SA" unload || rc=$?
	if [ "$rc" -ne 0 ]; then
		err "sockaccel unload exited $rc; pins may remain in $PINS"
		exit 1
	fi
	log "unloaded, exiting"
	exit 0
}

main() {
	local cg2 list=() line t

	# First thing: PID 1 without a handler ignores SIGTERM.
	trap 'on_signal SIGTERM' TERM
	trap 'on_signal SIGINT' INT

	cg2=$(find_cgroup2) || exit 1
	log "cgroup2 hierarchy: $cg2"
	while IFS= read -r line; do
		[ -n "$line" ] && list+=("$line")
	done < <(targets "$cg2"; echo "rc=$?")
	if [ "${list[-1]}" != "rc=0" ]; then
		exit 1
	fi
	unset 'list[-1]'

	# Pins must land in the host's bpffs (the two hostPath directories), or
	# they would vanish with this container and take the attachments with
	# them. This container cannot mount bpffs (no CAP_SYS_ADMIN), so a bpf
	# file system here is one the runtime mounted: a hostPath volume.
	for d in "$PINS" "$STATE"; do
		if [ "$(fstype "$d")" != bpf ]; then
			err "$d is not on a bpf file system; mount the host's directory there" \
			    "(hostPath /sys/fs/bpf/sockaccel at SOCKACCEL_PIN_ROOT, /sys/fs/bpf/sockaccel-state" \
			    "at SOCKACCEL_STATE_ROOT, type DirectoryOrCreate), and make sure the host has bpffs" \
			    "at /sys/fs/bpf (systemd mounts it; otherwise: mount -t bpf bpf /sys/fs/bpf)"
			exit 1
		fi
	done
	log "pins: $PINS, state: $STATE"

	# shellcheck disable=SC2086  # SOCKACCEL_LOAD_ARGS is a list of options
	if ! run "$SA" load --cross-netns "${SOCKACCEL_CROSS_NETNS:-on}" ${SOCKACCEL_LOAD_ARGS:-}; then
		hint_on_failure "sockaccel load"
		exit 1
	fi
	for t in "${list[@]}"; do
		if ! run "$SA" attach --cgroup "$t"; then
			hint_on_failure "sockaccel attach --cgroup $t"
			# Leave the node as if this pod had never started.
			run "$SA" unload >/dev/null 2>&1
			exit 1
		fi
		# The control plane's own connections (etcd, the API server and
		# the kubelet over loopback) stay on TCP unless asked.
		if [ "${SOCKACCEL_CONTROL_PLANE:-tcp}" = tcp ]; then
			for ports in 2379-2380 6443 10250-10259; do
				run "$SA" policy add --cgroup "$t" exclude --port "$ports" ||
					{ run "$SA" unload >/dev/null 2>&1; exit 1; }
			done
		fi
	done
	[ ${#list[@]} -eq 0 ] && log "SOCKACCEL_CGROUP=none: loaded, nothing attached"

	METRICS=${SOCKACCEL_METRICS-:9477}
	if [ -n "$METRICS" ]; then
		[ "${METRICS#:}" != "$METRICS" ] && METRICS="0.0.0.0$METRICS"
		if [ "$DRY" = 1 ]; then
			printf '+ %s metrics --listen %s &\n' "$SA" "$METRICS"
		else
			"$SA" metrics --listen "$METRICS" &
			metrics=$!
		fi
	fi
	if [ "$DRY" = 1 ]; then
		printf '+ wait for SIGTERM/SIGINT, then: %s unload\n' "$SA"
		exit 0
	fi
	: > "$READY" || err "cannot create $READY (readiness)"
	log "ready; waiting for SIGTERM"
	# A background sleep and `wait`: bash runs the trap as soon as a signal
	# arrives, not when a foreground child would have ended.
	while :; do
		sleep infinity &
		sleeper=$!
		wait "$sleeper"
	done
}

case "${1:-}" in
"")
	main ;;
pod-cgroup)
	[ $# -eq 2 ] || { err "usage: $0 pod-cgroup POD_UID"; exit 2; }
	cg2=$(find_cgroup2) || exit 1
	pod_cgroup "$cg2" "$2" ;;
-h | --help)
	awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0" ;;
*)
	err "unknown argument '$1' (see: $0 --help)"
	exit 2 ;;
esac
