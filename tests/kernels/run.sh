#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Kernel test matrix: boots Debian's own kernel packages under qemu (TCG,
# no KVM needed) and runs chosen tests/test_*.sh inside each guest.
#
#   tests/kernels/run.sh [--kernels "6.1 6.12"] [--tests "test_accel test_blocking"]
#                        [--timeout SECONDS] [--mem MB] [--no-build] [--strict]
#
# A kernel is a version prefix ("6.1", "6.12": the newest amd64 image apt
# knows, cloud/rt flavours excluded) or a package name
# ("linux-image-6.1.0-57-amd64"). Packages are downloaded with
# `apt-get download` and unpacked under build/kernels/ (cached). The guest
# mounts the host's root read-only over virtio-9p under a tmpfs overlay
# and runs the tests in a snapshot of this tree taken after `make -s all`
# on the host (build/ included: nothing is built in the guest), with the
# host's userland; it has no network device. Its log and exit code come
# back through a second, writable 9p share:
# build/kernels/results/<package>/{log,rc,console.log}.
#
# One PASS/FAIL/SKIP line per kernel, then the tests' summary. Exits
# non-zero if any kernel failed; a kernel whose package cannot be found
# or downloaded is a SKIP (a failure with --strict). Every guest is killed
# after --timeout seconds (default 1200).
#
# Environment: SA_KERNELS, SA_KERNEL_TESTS, SA_KERNEL_TIMEOUT,
# SA_KERNEL_MEM, SA_KERNEL_SMP (same as the options); SA_TEST_TIMEOUT
# (per test inside the guest, default 900). Other SA_* and SOCKACCEL_*
# variables (e.g. SA_COMPAT_FAMILIES=4) are passed to the tests.
set -u
cd "$(dirname "$0")/../.." || exit 1
TOP=$PWD
KDIR=$TOP/build/kernels
HERE=$TOP/tests/kernels

kernels=${SA_KERNELS:-6.1 6.12}
tests=${SA_KERNEL_TESTS:-test_accel test_blocking}
timeout_s=${SA_KERNEL_TIMEOUT:-1200}
mem=${SA_KERNEL_MEM:-2048}
smp=${SA_KERNEL_SMP:-2}
build=1
strict=
usage() { sed -n '3,29s/^# \{0,1\}//p' "$0"; }
while [ $# -gt 0 ]; do
	case $1 in
	--kernels) kernels=$2; shift 2 ;;
	--tests) tests=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--no-build) build=; shift ;;
	--strict) strict=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
done

[ "$(id -u)" -eq 0 ] || { echo "the kernel matrix must run as root (qemu's 9p share of /, apt-get download)"; exit 1; }
[ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ] || { echo "the kernel matrix runs amd64 kernels on an amd64 host only"; exit 1; }

mkdir -p "$KDIR"
# One matrix at a time: runs share build/kernels/results/ (and the CPUs).
exec 9> "$KDIR/.lock"
flock -n 9 || { echo "another kernel matrix run holds $KDIR/.lock"; exit 1; }

. scripts/deps.sh
sa_install_missing $SA_BUILD_PKGS $SA_TEST_PKGS $SA_KERNEL_TEST_PKGS || exit 1
if [ -n "$build" ]; then
	make -s all || { echo "build failed"; exit 1; }
	# test_fuzz's sanitized loader too: nothing is compiled under TCG.
	make -s SANITIZE=1 build/san/sockaccel > /dev/null 2>&1 || echo "make SANITIZE=1 failed (test_fuzz will say why)"
fi

# Test names: test_accel, accel or tests/test_accel.sh.
test_paths=()
for t in $tests; do
	t=$(basename "$t" .sh); t=test_${t#test_}
	[ -f "tests/$t.sh" ] || { echo "no such test: tests/$t.sh" >&2; exit 2; }
	test_paths+=("tests/$t.sh")
done
[ ${#test_paths[@]} -gt 0 ] || { echo "no tests given" >&2; exit 2; }

# The guests run a snapshot of the tree (sources and build/, mtimes kept):
# edits and rebuilds on the host during a long run cannot reach them, and
# nothing looks out of date to make in a guest (load.sh would rebuild
# under TCG).
mkdir -p "$KDIR"
SNAP=$(mktemp -d "$KDIR/tree.XXXXXX") || exit 1
QPID=
trap 'rm -rf "$SNAP"' EXIT
trap '[ -n "$QPID" ] && kill "$QPID" 2>/dev/null; exit 130' INT TERM
tar -C "$TOP" --exclude=./build/kernels --exclude=./build/gocache --exclude=./.git --format=posix -cf - . |
	tar -C "$SNAP" -xf - || { echo "cannot copy the tree to $SNAP"; exit 1; }

BUSYBOX=$(command -v busybox) || { echo "busybox-static is missing"; exit 1; }
QEMU=$(command -v qemu-system-x86_64) || { echo "qemu-system-x86 is missing"; exit 1; }
mkdir -p "$KDIR/debs" "$KDIR/results"

say() { printf '%s\n' "$*"; }
loud() { say "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; say "!!! $*"; say "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; }

# resolve SPEC: the package name for a version prefix (newest first), or
# SPEC itself when it is a package name. Falls back to a cached download.
resolve() {
	local spec=$1 re
	case $spec in linux-image-*) echo "$spec"; return 0 ;; esac
	re="^linux-image-${spec//./\\.}\\.[0-9]+[-+][a-z0-9.+-]*amd64\$"
	{
		apt-cache search --names-only "$re" 2>/dev/null | awk '{ print $1 }'
		ls "$KDIR/debs" 2>/dev/null | sed -n 's/_.*//p' | grep -E "$re"
	} | grep -Ev -- '-(cloud|rt)-amd64$' | sort -uV | tail -1
}

# fetch PKG: the .deb path (downloaded once into build/kernels/debs).
fetch() {
	local pkg=$1 deb
	deb=$(ls "$KDIR/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -1)
	if [ -z "$deb" ]; then
		say "  downloading $pkg" >&2
		(cd "$KDIR/debs" && timeout 900 apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) || return 1
		deb=$(ls "$KDIR/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -1)
	fi
	[ -n "$deb" ] && echo "$deb"
}

# unpack DEB DIR: kernel, modules and modules.dep (depmod) under DIR/root.
unpack() {
	local deb=$1 dir=$2 ver
	[ -f "$dir/.unpacked" ] && [ "$dir/.unpacked" -nt "$deb" ] && return 0
	rm -rf "$dir" && mkdir -p "$dir/root" || return 1
	dpkg-deb -x "$deb" "$dir/root" || return 1
	ver=$(ls "$dir/root/lib/modules" | head -1)
	[ -n "$ver" ] && ls "$dir/root/boot/vmlinuz-$ver" >/dev/null || return 1
	depmod -b "$dir/root" "$ver" || return 1
	touch "$dir/.unpacked"
}

# initramfs DIR VER: busybox, /init and the modules needed to reach the
# 9p root, decompressed, in load order (modules.dep lists a module's
# dependencies with the deepest last).
initramfs() {
	local dir=$1 ver=$2 st moddir want m dep f
	moddir=$dir/root/lib/modules/$ver
	st=$dir/initramfs.d
	rm -rf "$st" && mkdir -p "$st"/{bin,dev,proc,sys,lower,rw,newroot,modules} || return 1
	cp "$BUSYBOX" "$st/bin/busybox" && ln -s busybox "$st/bin/sh" || return 1
	cp "$HERE/init" "$st/init" && chmod 755 "$st/init" || return 1
	mknod "$st/dev/console" c 5 1 || return 1
	want=()
	for m in virtio_pci 9pnet_virtio 9p overlay; do
		grep -Eq "/$m\\.ko(\\.[a-z]+)?\$" "$moddir/modules.builtin" && continue
		dep=$(grep -E "/$m\\.ko(\\.[a-z]+)?:" "$moddir/modules.dep") ||
			{ echo "module $m is neither built in nor in modules.dep" >&2; return 1; }
		# "path/m.ko.xz: dep1 dep2 ...": the deps in reverse, then m.
		# shellcheck disable=SC2086
		mapfile -t -O ${#want[@]} want < <(printf '%s\n' ${dep#*:} | tac; echo "${dep%%:*}")
	done
	: > "$st/modules/load.list"
	for f in "${want[@]}"; do
		[ -n "$f" ] || continue
		m=$(basename "$f"); m=${m%.xz}; m=${m%.zst}; m=${m%.gz}
		grep -qx "$m" "$st/modules/load.list" && continue
		case $f in
		*.xz) "$BUSYBOX" unxz -c "$moddir/$f" > "$st/modules/$m" ;;
		*.gz) gzip -dc "$moddir/$f" > "$st/modules/$m" ;;
		*.zst) zstd -qdc "$moddir/$f" > "$st/modules/$m" ;;
		*) cp "$moddir/$f" "$st/modules/$m" ;;
		esac || return 1
		echo "$m" >> "$st/modules/load.list"
	done
	(cd "$st" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null) > "$dir/initramfs.cpio" || return 1
	rm -rf "$st"
}

# boot PKG DIR VER RES: runs the guest, streams its test lines, waits
# (bounded); the verdict is in RES/rc (absent: the guest did not finish).
boot() {
	local pkg=$1 dir=$2 ver=$3 res=$4 shown=0 n deadline
	timeout --kill-after=15 "$timeout_s" "$QEMU" \
		-machine q35 -accel tcg,thread=multi -cpu max -smp "$smp" -m "$mem" \
		-display none -monitor none -serial "file:$res/console.log" \
		-no-reboot -nic none \
		-kernel "$dir/root/boot/vmlinuz-$ver" -initrd "$dir/initramfs.cpio" \
		-append "console=ttyS0 rdinit=/init panic=-1 loglevel=4 mitigations=off" \
		-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$res,mount_tag=saresults,security_model=none,multidevs=remap" \
		> "$res/qemu.out" 2>&1 &
	QPID=$!
	deadline=$(( $(date +%s) + timeout_s + 30 ))
	while kill -0 "$QPID" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
		sleep 2
		if [ -f "$res/log" ]; then
			n=$(wc -l < "$res/log")
			if [ "$n" -gt "$shown" ]; then
				sed -n "$((shown + 1)),${n}p" "$res/log" | grep -E '^== (test_|preflight)' | sed "s/^/  [$ver] /"
				shown=$n
			fi
		fi
	done
	kill "$QPID" 2>/dev/null
	wait "$QPID" 2>/dev/null
	QPID=
}

# report LABEL RES: the tests' summary from the guest's log.
report() {
	local res=$1
	[ -f "$res/log" ] || return 0
	# Preflight failure: the loader's own words.
	if grep -q '^== preflight: sockaccel load: FAILED' "$res/log"; then
		grep '^== preflight' "$res/log" | sed 's/^/    /'
		# The error lines of libbpf's log, and the end of each verifier log.
		awk '
			!/^  load( -v)?\| / { next }
			/-- BEGIN PROG LOAD LOG --/ { inlog = 1; n = 0; next }
			/-- END PROG LOAD LOG --/ {
				for (i = (n > 8 ? n - 8 : 0); i < n; i++) print buf[i]
				inlog = 0; next
			}
			inlog { buf[n++] = $0; next }
			/not found|[Ff]ail|[Ee]rror|[Ii]nvalid|[Uu]nsupported|[Uu]nknown|denied|cannot|\| sockaccel:/
		' "$res/log" | head -40 | sed 's/^/  /'
	fi
	grep -E '^== test_[a-z0-9_]+: (PASS|FAIL|SKIP)|^  FAIL: |^[0-9]+/[0-9]+ tests passed|^(failed|skipped)[ :]' "$res/log" | sed 's/^/    /'
}

failed_k=() skipped_k=() passed_k=()
t_all=$(date +%s)
for spec in $kernels; do
	say "== kernel $spec"
	pkg=$(resolve "$spec")
	if [ -z "$pkg" ]; then
		loud "SKIP kernel $spec: no linux-image package for it in apt's lists (apt-get update?)"
		skipped_k+=("$spec"); continue
	fi
	if ! deb=$(fetch "$pkg"); then
		loud "SKIP kernel $spec: cannot download $pkg"
		skipped_k+=("$spec"); continue
	fi
	dir=$KDIR/$pkg
	if ! unpack "$deb" "$dir"; then
		say "FAIL kernel $spec: cannot unpack $deb"
		failed_k+=("$spec"); continue
	fi
	ver=$(ls "$dir/root/lib/modules" | head -1)
	if ! initramfs "$dir" "$ver"; then
		say "FAIL kernel $spec ($ver): cannot build the initramfs"
		failed_k+=("$spec"); continue
	fi
	res=$KDIR/results/$pkg
	rm -rf "$res" && mkdir -p "$res"
	{
		# The tests' own knobs (SA_COMPAT_FAMILIES, SA_TEST_FORCE, ...).
		for v in $(compgen -e | grep -E '^(SA_|SOCKACCEL_)' | grep -Ev '^SA_(KERNEL|TEST_TIMEOUT$)'); do
			printf 'export %s=%q\n' "$v" "${!v}"
		done
		printf 'SA_TOP=%q\n' "$SNAP"
		printf 'SA_MODDIR=%q\n' "$dir/root/lib/modules/$ver"
		printf 'SA_TESTS=%q\n' "${test_paths[*]}"
		printf 'SA_TEST_TIMEOUT=%q\n' "${SA_TEST_TIMEOUT:-900}"
	} > "$res/config"
	say "  $pkg ($(dpkg-deb -f "$deb" Version)), ${#test_paths[@]} test(s), timeout ${timeout_s}s"
	t0=$(date +%s)
	boot "$pkg" "$dir" "$ver" "$res"
	took=$(( $(date +%s) - t0 ))
	rc=$(cat "$res/rc" 2>/dev/null)
	if [ "$rc" = 0 ]; then
		say "PASS kernel $spec ($ver) in ${took}s"
		passed_k+=("$spec")
	else
		if [ -z "$rc" ]; then
			why="the guest did not finish (timeout ${timeout_s}s, crash or boot failure)"
			[ "$took" -ge "$timeout_s" ] && why="timed out after ${timeout_s}s"
		else
			why="tests failed"
		fi
		say "FAIL kernel $spec ($ver) in ${took}s: $why"
		failed_k+=("$spec")
		if [ -z "$rc" ]; then
			say "  last console lines ($res/console.log):"
			tail -n 25 "$res/console.log" 2>/dev/null | sed 's/^/    | /'
			[ -s "$res/qemu.out" ] && sed 's/^/    qemu| /' "$res/qemu.out" | tail -n 10
		fi
	fi
	report "$res"
	say "  log: $res/log (console: $res/console.log)"
done

say
say "kernel matrix in $(( $(date +%s) - t_all ))s: passed ${passed_k[*]:-none}; failed ${failed_k[*]:-none}; skipped ${skipped_k[*]:-none}"
# The plain closing line CI reads.
say "kernels: ${#passed_k[@]} passed, ${#failed_k[@]} failed, ${#skipped_k[@]} skipped"
[ ${#skipped_k[@]} -gt 0 ] && loud "SKIPPED kernels: ${skipped_k[*]} (not tested!)"
[ ${#failed_k[@]} -eq 0 ] || exit 1
[ -z "$strict" ] || [ ${#skipped_k[@]} -eq 0 ] || exit 1
exit 0
