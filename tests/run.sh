#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs every tests/test_*.sh (or the ones named) in order, each bounded in
# time; prints a summary and exits non-zero if any failed. A test that
# could not run here (lib.sh's skip) is a SKIP, neither passed nor failed.
set -u
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "tests must run as root (sudo make test)"; exit 1; }
# Each test runs a private instance (tests/lib.sh) in its own child cgroups
# of the cgroup2 root, so a live default instance is left alone, unless it
# is attached to the cgroup2 root itself: then both would see the tests'
# sockets.
live=/sys/fs/bpf/sockaccel
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
if [ -d "$live" ] && [ -z "${SA_TEST_FORCE:-}" ] && [ -x build/sockaccel ] && [ -n "$cg2" ] &&
   SOCKACCEL_PIN_ROOT=$live build/sockaccel -j status 2>/dev/null |
   python3 -c 'import json, sys; sys.exit(0 if any(c["path"] == sys.argv[1] for c in json.load(sys.stdin).get("cgroups", [])) else 1)' "$cg2"; then
	echo "sockaccel is attached to the cgroup2 root ($cg2): it would accelerate the tests' sockets too."
	echo "Detach it first (sudo build/sockaccel detach --cgroup $cg2), or set SA_TEST_FORCE=1."
	exit 1
fi

. scripts/deps.sh
sa_install_missing $SA_BUILD_PKGS $SA_TEST_PKGS || exit 1
make -s all || exit 1

if [ $# -gt 0 ]; then
	tests=("$@")
else
	tests=(tests/test_*.sh)
fi
timeout_s=${SA_TEST_TIMEOUT:-900}
failed=() skipped=()
start=$(date +%s)
# skip() in lib.sh writes its reason here: exit 0 alone cannot tell a test
# that passed from one that tested nothing.
skipf=$(mktemp /tmp/sockaccel-skip.XXXXXX) || exit 1
trap 'rm -f "$skipf"' EXIT
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	echo "== $name"
	t0=$(date +%s)
	: > "$skipf"
	if SA_TEST_SKIP_FILE=$skipf timeout --kill-after=30 "$timeout_s" bash "$t"; then
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
done
passed=$(( ${#tests[@]} - ${#failed[@]} - ${#skipped[@]} ))
echo
echo "$passed/${#tests[@]} tests passed in $(( $(date +%s) - start ))s"
echo "tests: $passed passed, ${#failed[@]} failed, ${#skipped[@]} skipped"
[ ${#skipped[@]} -eq 0 ] || echo "skipped (not tested): ${skipped[*]}"
if [ ${#failed[@]} -gt 0 ]; then
	echo "failed: ${failed[*]}"
	exit 1
fi
