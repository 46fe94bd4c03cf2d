#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# PID 1 of a kernel-matrix guest (tests/kernels/run.sh), after the
# initramfs switched to the overlay of the host's root. Mounts what the
# tests need, checks that sockaccel loads (its full output goes to the
# log), runs the chosen tests/test_*.sh with the binaries the host built
# (no make, no apt), writes the log and exit code to /sa-results (a 9p
# share of a host directory) and powers off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LC_ALL=C.UTF-8
R=/sa-results
. "$R/config"

poweroff_now() {
	sync
	umount "$R" 2>/dev/null
	busybox poweroff -f 2>/dev/null
	sleep 5
	echo o > /proc/sysrq-trigger
	sleep 60
}

m() { mkdir -p "$2" && mount -t "$1" "$1" "$2" ${3:+-o "$3"} || echo "guest: cannot mount $1 on $2"; }
m tmpfs /run mode=755
# /tmp is already writable (the overlay's upper layer is tmpfs); a fresh
# tmpfs there would hide a project that lives under /tmp (CI's clones).
case "$SA_TOP/" in
/tmp/*) ;;
*) m tmpfs /tmp mode=1777 ;;
esac
m tmpfs /dev/shm mode=1777
m devpts /dev/pts
m bpf /sys/fs/bpf
m cgroup2 /sys/fs/cgroup
m debugfs /sys/kernel/debug
m tracefs /sys/kernel/tracing
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
hostname sa-kernel-test
ip link set lo up

cd "$SA_TOP" || { echo "SA_GUEST_DONE rc=no-project" ; poweroff_now; }

# The static keys the tests' loads and unloads would flip, held on for the
# guest's life: under qemu's TCG a flip can kill the guest with "Oops:
# int3" (hold_keys.py says why). It keeps its own network namespace.
HOLD_KEYS=/tmp/sa-hold-keys
unshare --net python3 tests/kernels/hold_keys.py > "$HOLD_KEYS" 2>&1 &
for _ in $(seq 100); do grep -q '^ready' "$HOLD_KEYS" && break; sleep 0.1; done

run() {
	local rc t name t0 failed=() skipped=() start skipf=/tmp/sa-skip passed
	echo "== kernel $(uname -r) ($(uname -v)); $(nproc) CPUs, $(awk '/MemTotal/ { print int($2 / 1024) " MB" }' /proc/meminfo)"
	grep -v '^ready' "$HOLD_KEYS"
	# Preflight: does the loader work on this kernel at all? Its whole
	# output (libbpf and verifier messages included) goes to the log.
	out=$(timeout 300 build/sockaccel load 2>&1); rc=$?
	if [ "$rc" -eq 0 ]; then
		echo "== preflight: sockaccel load: ok"
		timeout 120 build/sockaccel status 2>&1 | sed 's/^/  status| /'
	else
		echo "== preflight: sockaccel load: FAILED (exit $rc)"
		printf '%s\n' "$out" | sed 's/^/  load| /'
		# Again with libbpf's log (verifier output included).
		timeout 300 build/sockaccel -v load 2>&1 | sed 's/^/  load -v| /'
	fi
	timeout 120 build/sockaccel unload >/dev/null 2>&1

	failed=() skipped=()
	start=$(date +%s)
	for t in $SA_TESTS; do
		name=$(basename "$t" .sh)
		echo "== $name"
		t0=$(date +%s)
		# skip() in lib.sh writes its reason here (as tests/run.sh).
		: > "$skipf"
		if SA_TEST_SKIP_FILE=$skipf timeout --kill-after=30 "$SA_TEST_TIMEOUT" bash "$t" </dev/null; then
			if [ -s "$skipf" ]; then
				echo "== $name: SKIP ($(head -1 "$skipf")) ($(( $(date +%s) - t0 ))s)"
				skipped+=("$name")
			else
				echo "== $name: PASS ($(( $(date +%s) - t0 ))s)"
			fi
		else
			echo "== $name: FAIL ($(( $(date +%s) - t0 ))s)"
			failed+=("$name")
		fi
		# A test killed by its timeout cannot clean up: leave nothing
		# loaded for the next one.
		timeout 120 build/sockaccel unload >/dev/null 2>&1
	done
	set -- $SA_TESTS
	passed=$(( $# - ${#failed[@]} - ${#skipped[@]} ))
	echo
	echo "$passed/$# tests passed in $(( $(date +%s) - start ))s"
	[ ${#skipped[@]} -eq 0 ] || echo "skipped (not tested): ${skipped[*]}"
	[ ${#failed[@]} -eq 0 ] || { echo "failed: ${failed[*]}"; return 1; }
}

run 2>&1 | tee "$R/log"
rc=${PIPESTATUS[0]}
echo "$rc" > "$R/rc"
echo "SA_GUEST_DONE rc=$rc"
poweroff_now
