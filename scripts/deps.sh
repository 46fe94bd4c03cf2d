# SPDX-License-Identifier: GPL-2.0
# Sourced by load.sh and .ci/run: build and runtime packages on Debian/Ubuntu.
SA_BUILD_PKGS="make gcc clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libcap-dev pkg-config"

# sa_install_missing PKG...: apt-get install only what dpkg does not have.
sa_install_missing() {
	local missing=() p
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if ! command -v apt-get >/dev/null; then
		echo "sockaccel: missing packages: ${missing[*]} (no apt-get here; install them by hand)" >&2
		return 1
	fi
	echo "sockaccel: installing missing packages with apt-get: ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Packages the tests drive (real programs, namespaces, NAT, YAML parsing).
# golang-go: Go programs copy between TCP connections with splice() (test_splice).
# postgresql: a server whose backends make their sockets nonblocking after
# accept(), driven by pgbench (test_join).
SA_TEST_PKGS="iproute2 nftables redis-server redis-tools nginx-light curl memcached haproxy python3 python3-yaml python3-prometheus-client procps kmod golang-go man-db postgresql"

# The kernel test matrix (make test-kernels): Debian kernels under qemu.
SA_KERNEL_TEST_PKGS="qemu-system-x86 busybox-static"
