#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs every tests/test_*.sh (or the ones named) in order, each bounded in
# time; prints a summary and exits non-zero if any failed.
set -u
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "tests must run as root (sudo make test)"; exit 1; }
if [ -d "${SOCKACCEL_PIN_ROOT:-/sys/fs/bpf/sockaccel}" ] && [ -z "${SA_TEST_FORCE:-}" ]; then
	echo "sockaccel is loaded on this machine; the tests would unload it."
	echo "Unload it first (sudo ./unload.sh) or set SA_TEST_FORCE=1."
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
failed=()
start=$(date +%s)
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	echo "== $name"
	t0=$(date +%s)
	if timeout --kill-after=30 "$timeout_s" bash "$t"; then
		echo "== $name: PASS ($(( $(date +%s) - t0 ))s)"
	else
		echo "== $name: FAIL ($(( $(date +%s) - t0 ))s)"
		failed+=("$name")
	fi
done
echo
echo "$(( ${#tests[@]} - ${#failed[@]} ))/${#tests[@]} tests passed in $(( $(date +%s) - start ))s"
if [ ${#failed[@]} -gt 0 ]; then
	echo "failed: ${failed[*]}"
	exit 1
fi
