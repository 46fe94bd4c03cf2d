#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions run through check() and traps
# SPDX-License-Identifier: GPL-2.0
# Offline checks of the container deployment (deploy/, docs/kubernetes.md):
# no cluster, no container engine, no BPF. The DaemonSet manifest is parsed
# with python3-yaml and its security-relevant fields are checked; the
# Dockerfile's stages are read; deploy/entrypoint.sh runs against fake
# cgroup trees and a fake mount table, in dry-run mode or with a fake
# sockaccel binary, so nothing is ever attached to a real cgroup.
#
# It does not source tests/lib.sh on purpose: lib.sh's EXIT trap runs the
# real `sockaccel unload`, and this test must not touch the machine's BPF
# state. Needs: bash, python3, python3-yaml, coreutils, awk.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPLOY="$TOP/deploy"
EP="$DEPLOY/entrypoint.sh"
YAML="$DEPLOY/daemonset.yaml"
DOCKERFILE="$DEPLOY/Dockerfile"
DOC="$TOP/docs/kubernetes.md"
PASSED=0
FAILED=0

pass() { printf '  ok: %s\n' "$*"; PASSED=$((PASSED + 1)); }
fail() { printf '  FAIL: %s\n' "$*"; FAILED=$((FAILED + 1)); }
check() {
	local what=$1; shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
finish() {
	printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
	[ "$FAILED" -eq 0 ]
	exit
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sockaccel-deploy-test.XXXXXX") || exit 1
cleanup() {
	[ -n "${BGPID:-}" ] && kill "$BGPID" 2>/dev/null
	rm -rf -- "$WORK"
}
trap cleanup EXIT

for f in "$EP" "$YAML" "$DOCKERFILE" "$DOC"; do
	check "exists: ${f#"$TOP"/}" test -f "$f"
done

# ---------------------------------------------------------------- manifest
if ! python3 -c 'import yaml' 2>/dev/null; then
	fail "python3 cannot import yaml: install python3-yaml (apt-get install -y python3-yaml)"
	finish
fi

py_out=$(python3 - "$YAML" <<'PY'
import sys, yaml

EXPECTED_CAPS = {"BPF", "PERFMON", "NET_ADMIN"}
results = []

def check(what, cond):
    results.append(("ok" if cond else "FAIL", what))

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dss = [d for d in docs if d.get("kind") == "DaemonSet"]
check("manifest has exactly one DaemonSet", len(dss) == 1)
if len(dss) != 1:
    for r in results:
        print("%s: %s" % r)
    sys.exit(0)
ds = dss[0]
check("DaemonSet apiVersion is apps/v1", ds.get("apiVersion") == "apps/v1")
ns = ds["metadata"].get("namespace", "default")
pod = ds["spec"]["template"]["spec"]
meta = ds["spec"]["template"].get("metadata", {})
containers = pod.get("containers", [])
check("one container", len(containers) == 1)
c = containers[0]
sc = c.get("securityContext", {})
caps = sc.get("capabilities", {})

def norm(cap):
    cap = str(cap).upper()
    return cap[4:] if cap.startswith("CAP_") else cap

added = {norm(x) for x in caps.get("add", [])}
dropped = {norm(x) for x in caps.get("drop", [])}
ann = meta.get("annotations", {})
check("metrics: prometheus.io scrape annotations on port 9477",
      ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9477"
      and ann.get("prometheus.io/path") == "/metrics")
check("metrics: the container declares port 9477",
      any(p.get("containerPort") == 9477 for p in c.get("ports", [])))
check("privileged is explicitly false", sc.get("privileged") is False)
check("allowPrivilegeEscalation is false", sc.get("allowPrivilegeEscalation") is False)
check("capabilities add == BPF, PERFMON, NET_ADMIN (got %s)" % sorted(added), added == EXPECTED_CAPS)
check("capabilities drop includes ALL", "ALL" in dropped)
check("SYS_ADMIN not added", "SYS_ADMIN" not in added)
check("runs as uid 0 (capabilities need it without ambient caps)", sc.get("runAsUser") == 0)
check("seccompProfile type is set", sc.get("seccompProfile", {}).get("type") in ("RuntimeDefault", "Unconfined", "Localhost"))
aa_ann = meta.get("annotations", {}).get("container.apparmor.security.beta.kubernetes.io/" + c["name"])
aa_field = sc.get("appArmorProfile", {}).get("type")
check("AppArmor: the runtime's default profile, not unconfined (annotation %s, field %s)" % (aa_ann, aa_field),
      aa_ann in (None, "runtime/default") and aa_field in (None, "RuntimeDefault"))
check("pod is not privileged through the pod securityContext either",
      not pod.get("securityContext", {}).get("privileged", False))
check("hostNetwork not used", not pod.get("hostNetwork", False))
check("hostPID not used", not pod.get("hostPID", False))
check("hostUsers not false (bpf() checks the initial user namespace)", pod.get("hostUsers", True) is not False)

vols = {v["name"]: v for v in pod.get("volumes", [])}
mounts = c.get("volumeMounts", [])
def hostpath_mount(path):
    for m in mounts:
        v = vols.get(m["name"], {})
        if v.get("hostPath", {}).get("path", "").rstrip("/") == path:
            return m
    return None

env = {e["name"]: e.get("value") for e in c.get("env", [])}
def norm_path(p):
    return "/" + str(p).strip("/")
def within(p, top):
    p, top = norm_path(p), norm_path(top)
    return p == top or top == "/" or p.startswith(top + "/")
host_paths = [norm_path(v["hostPath"]["path"]) for v in vols.values() if "hostPath" in v]
check("the host's /sys/fs/bpf is not mounted as a whole (nor any directory above it)",
      not any(within("/sys/fs/bpf", h) for h in host_paths))
check("nothing is mounted at, above or inside the container's /sys/fs/bpf",
      not any(within(m["mountPath"], "/sys/fs/bpf") or
              (within("/sys/fs/bpf", m["mountPath"]) and norm_path(m["mountPath"]) != "/") for m in mounts))
check("of the host's bpffs, only /sys/fs/bpf/sockaccel and /sys/fs/bpf/sockaccel-state are mounted",
      sorted(h for h in host_paths if within(h, "/sys/fs/bpf")) ==
      ["/sys/fs/bpf/sockaccel", "/sys/fs/bpf/sockaccel-state"])
for what, host, var in (("pin root", "/sys/fs/bpf/sockaccel", "SOCKACCEL_PIN_ROOT"),
                        ("state directory", "/sys/fs/bpf/sockaccel-state", "SOCKACCEL_STATE_ROOT")):
    m = hostpath_mount(host)
    v = vols.get((m or {}).get("name"), {}).get("hostPath", {})
    check("%s: hostPath %s, type DirectoryOrCreate" % (what, host), v.get("type") == "DirectoryOrCreate")
    check("%s: mounted writable" % what, bool(m) and not m.get("readOnly", False))
    check("%s: mounted outside /sys (the container's /sys is sysfs: no mount point can be made there)" % what,
          bool(m) and not within(m["mountPath"], "/sys"))
    check("%s: %s (%s) is where it is mounted (%s)" % (what, var, env.get(var), (m or {}).get("mountPath")),
          bool(m) and env.get(var) is not None and norm_path(env[var]) == norm_path(m["mountPath"]))
    print("%s=%s" % (var, env.get(var) or ""))
if env.get("SOCKACCEL_PIN_ROOT") and env.get("SOCKACCEL_STATE_ROOT"):
    check("pin root and state directory are separate, neither inside the other",
          not within(env["SOCKACCEL_PIN_ROOT"], env["SOCKACCEL_STATE_ROOT"]) and
          not within(env["SOCKACCEL_STATE_ROOT"], env["SOCKACCEL_PIN_ROOT"]))
check("no mount propagates both ways (Bidirectional needs privileged)",
      all(m.get("mountPropagation", "None") != "Bidirectional" for m in mounts) or sc.get("privileged") is True)
probe = " ".join(map(str, c.get("readinessProbe", {}).get("exec", {}).get("command", [])))
check("readiness probe looks for sockaccel_sk_msg (pinned last, on every kernel) in the pin root",
      "$SOCKACCEL_PIN_ROOT/sockaccel_sk_msg\"" in probe or
      "%s/sockaccel_sk_msg" % env.get("SOCKACCEL_PIN_ROOT") in probe)
cg = hostpath_mount("/sys/fs/cgroup")
host_cg = env.get("SOCKACCEL_HOST_CGROUP") or "/host/sys/fs/cgroup"
check("hostPath /sys/fs/cgroup mounted where the entrypoint looks (%s)" % host_cg,
      bool(cg) and cg["mountPath"].rstrip("/") == host_cg.rstrip("/"))
check("cgroup mount is read-only", bool(cg) and cg.get("readOnly") is True)
check("cgroup mount is not over the container's own /sys/fs/cgroup",
      bool(cg) and cg["mountPath"].rstrip("/") != "/sys/fs/cgroup")
btf = hostpath_mount("/sys/kernel/btf")
check("hostPath /sys/kernel/btf mounted read-only", bool(btf) and btf.get("readOnly") is True)
if sc.get("readOnlyRootFilesystem"):
    check("writable /tmp for the lock and readiness file (read-only root)",
          any(m["mountPath"].rstrip("/") == "/tmp" for m in mounts))

cmd = " ".join(str(x) for x in (c.get("command", []) + c.get("args", [])))
check("container runs deploy/entrypoint.sh", "entrypoint.sh" in cmd)
check("entrypoint attaches the pods' cgroup root (SOCKACCEL_CGROUP auto or unset)",
      env.get("SOCKACCEL_CGROUP", "auto") == "auto")
check("cross-netns pairing on", env.get("SOCKACCEL_CROSS_NETNS", "on") == "on")

grace = pod.get("terminationGracePeriodSeconds", 30)
check("terminationGracePeriodSeconds >= 10 (got %s)" % grace, isinstance(grace, int) and grace >= 10)
prestop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
print("PRESTOP_UNLOADS=%d" % (1 if "unload" in " ".join(map(str, prestop)) else 0))

tols = pod.get("tolerations", [])
check("tolerations let it run on every node (operator Exists, no key)",
      any(t.get("operator") == "Exists" and not t.get("key") and not t.get("effect") for t in tols))
res = c.get("resources", {})
check("resource requests set", bool(res.get("requests", {}).get("memory")) and bool(res.get("requests", {}).get("cpu")))
check("resource memory limit set", bool(res.get("limits", {}).get("memory")))
ru = ds["spec"].get("updateStrategy", {}).get("rollingUpdate", {})
check("rolling update never runs two pods per node (maxSurge 0)", ru.get("maxSurge", 0) in (0, "0", "0%"))
if ns not in ("kube-system",):
    nss = [d for d in docs if d.get("kind") == "Namespace" and d["metadata"]["name"] == ns]
    check("own namespace %s defined with Pod Security level privileged" % ns,
          len(nss) == 1 and nss[0]["metadata"].get("labels", {}).get(
              "pod-security.kubernetes.io/enforce") == "privileged")
for r in results:
    print("%s: %s" % r)
PY
) || fail "manifest checks crashed (python3 exit $?)"
prestop_unloads=0
M_PINS='' M_STATE=''
while IFS= read -r line; do
	case "$line" in
	"ok: "*) pass "${line#ok: }" ;;
	"FAIL: "*) fail "${line#FAIL: }" ;;
	PRESTOP_UNLOADS=*) prestop_unloads=${line#PRESTOP_UNLOADS=} ;;
	SOCKACCEL_PIN_ROOT=*) M_PINS=${line#*=} ;;
	SOCKACCEL_STATE_ROOT=*) M_STATE=${line#*=} ;;
	esac
done <<< "$py_out"
# The entrypoint runs below with the manifest's pin root and state directory.
M_PINS=${M_PINS:-/run/sockaccel/pins} M_STATE=${M_STATE:-/run/sockaccel/state}

# Termination: a preStop hook that unloads, or the entrypoint's trap.
trap_unloads=0
if grep -Eq "^[[:space:]]*trap .*on_signal.* TERM" "$EP" &&
   awk '/^on_signal\(\)/,/^}/' "$EP" | grep -q 'unload'; then
	trap_unloads=1
fi
check "termination unloads (entrypoint SIGTERM trap or preStop)" \
	[ $((trap_unloads + prestop_unloads)) -ge 1 ]

# ---------------------------------------------------------------- scripts
check "bash -n deploy/entrypoint.sh" bash -n "$EP"
if command -v shellcheck >/dev/null; then
	check "shellcheck deploy/entrypoint.sh" shellcheck -S warning "$EP"
else
	printf '  skip: shellcheck not installed\n'
fi

# -------------------------------------------------------------- Dockerfile
# stage N: the lines of the Nth FROM (1-based), continuation lines joined.
stage() {
	awk -v n="$1" '
		{ line = line $0 }
		/\\$/ { sub(/\\$/, "", line); next }
		{ if (line ~ /^[[:space:]]*FROM[[:space:]]/) s++; if (s == n) print line; line = "" }
	' "$DOCKERFILE"
}
build_stage=$(stage 1)
run_stage=$(stage 2)
build_name=$(printf '%s\n' "$build_stage" | awk 'toupper($1) == "FROM" && toupper($3) == "AS" { print $4; exit }')
check "Dockerfile has exactly two stages" [ "$(grep -Ec '^[[:space:]]*FROM[[:space:]]' "$DOCKERFILE")" -eq 2 ]
check "build stage is debian:bookworm, named" \
	grep -Eq '^[[:space:]]*FROM[[:space:]]+debian:bookworm[[:space:]]+AS[[:space:]]+[A-Za-z0-9_-]+' <<< "$build_stage"
check "build stage runs make" \
	grep -Eq '^[[:space:]]*RUN[[:space:]]+(.*(&&|;|\|\|)[[:space:]]*)?make([[:space:]]|$)' <<< "$build_stage"
missing=""
for p in clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libcap-dev gcc make; do
	grep -Eq "apt-get install.*[[:space:]]$p([[:space:]]|$)" <<< "$build_stage" || missing="$missing $p"
done
check "build stage installs the build dependencies${missing:+ (missing:$missing)}" [ -z "$missing" ]
check "runtime stage is debian:bookworm-slim" \
	grep -Eq '^[[:space:]]*FROM[[:space:]]+debian:bookworm-slim' <<< "$run_stage"
check "runtime stage copies build/sockaccel from the build stage" \
	grep -Eq "^[[:space:]]*COPY[[:space:]]+--from=${build_name:-NONE}[[:space:]].*build/sockaccel" <<< "$run_stage"
check "runtime stage copies deploy/entrypoint.sh" \
	grep -Eq '^[[:space:]]*COPY[[:space:]].*deploy/entrypoint\.sh' <<< "$run_stage"
missing=""
for p in libbpf1 libelf1 zlib1g libcap2; do
	grep -Eq "apt-get install.*[[:space:]]$p([[:space:]]|$)" <<< "$run_stage" || missing="$missing $p"
done
check "runtime stage installs the runtime libraries${missing:+ (missing:$missing)}" [ -z "$missing" ]
nomatch() { ! grep -Eq -- "$1" <<< "$2"; }	# nomatch ERE TEXT
check "runtime stage has no compiler" nomatch 'apt-get install.*[[:space:]](clang|gcc|llvm)([[:space:]]|$)' "$run_stage"
ep_in_image=$(printf '%s\n' "$run_stage" | awk '/^[[:space:]]*COPY[[:space:]].*deploy\/entrypoint\.sh/ { print $NF; exit }')
check "image entrypoint path matches the manifest's command ($ep_in_image)" \
	grep -Fq "command: [\"$ep_in_image\"]" "$YAML"

# ---------------------------------------------------------------- docs
for w in CAP_BPF CAP_PERFMON CAP_NET_ADMIN DirectoryOrCreate SOCKACCEL_PIN_ROOT SOCKACCEL_STATE_ROOT \
	seccomp AppArmor runtime/default SOCKACCEL_CGROUP vmlinux.h; do
	check "docs/kubernetes.md covers $w" grep -q "$w" "$DOC"
done

# ------------------------------------------------ entrypoint, fake trees
# mkhost NAME LAYOUT: a fake host under $WORK/NAME with a mount table.
#   v2:     /sys/fs/cgroup is cgroup2
#   hybrid: /sys/fs/cgroup is a tmpfs with v1 controllers, cgroup2 at unified/
#   v1:     tmpfs with v1 controllers only (and a stray unified/ directory)
# BPFFS: which bpffs mounts the table has (default "pins state", the
# manifest's two bind mounts at $M_PINS and $M_STATE; "all": the host's
# whole /sys/fs/bpf at /sys/fs/bpf, the old layout; "" none).
mkhost() {
	local name=$1 layout=$2 bpffs=${3-pins state} r="$WORK/$1" b
	mkdir -p "$r/host/sys/fs/cgroup"
	{
		echo "overlay / overlay rw 0 0"
		echo "sysfs /sys sysfs ro,nosuid,nodev,noexec 0 0"
		echo "cgroup2 /sys/fs/cgroup cgroup2 ro,nosuid,nodev,noexec 0 0"
		for b in $bpffs; do
			case $b in
			pins) echo "bpf $M_PINS bpf rw,nosuid,nodev,noexec,relatime,mode=700 0 0" ;;
			state) echo "bpf $M_STATE bpf rw,nosuid,nodev,noexec,relatime,mode=700 0 0" ;;
			all) echo "bpf /sys/fs/bpf bpf rw,nosuid,nodev,noexec,mode=700 0 0" ;;
			esac
		done
		case "$layout" in
		v2)
			echo "cgroup2 $r/host/sys/fs/cgroup cgroup2 ro,nosuid,nodev,noexec 0 0" ;;
		hybrid)
			mkdir -p "$r/host/sys/fs/cgroup/unified" "$r/host/sys/fs/cgroup/cpu"
			echo "tmpfs $r/host/sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0"
			echo "cgroup $r/host/sys/fs/cgroup/cpu cgroup rw,nosuid,nodev,noexec,cpu 0 0"
			echo "cgroup2 $r/host/sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec 0 0" ;;
		v1)
			mkdir -p "$r/host/sys/fs/cgroup/unified/kubepods" "$r/host/sys/fs/cgroup/cpu/kubepods"
			echo "tmpfs $r/host/sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0"
			echo "cgroup $r/host/sys/fs/cgroup/cpu cgroup rw,nosuid,nodev,noexec,cpu 0 0" ;;
		esac
	} > "$r/mounts"
}
# cg2 NAME: the fake host's cgroup2 root directory.
cg2() {
	if [ -d "$WORK/$1/host/sys/fs/cgroup/unified" ] && grep -q "cgroup2 $WORK/$1/host/sys/fs/cgroup/unified " "$WORK/$1/mounts"; then
		echo "$WORK/$1/host/sys/fs/cgroup/unified"
	else
		echo "$WORK/$1/host/sys/fs/cgroup"
	fi
}
# ep NAME [VAR=VALUE...] [-- ARGS]: the entrypoint in dry-run mode against
# fake host NAME; stdout+stderr in $OUT, exit status in $RC. SOCKACCEL_BIN
# points nowhere: even a broken dry-run mode could run nothing real.
ep() {
	local name=$1; shift
	local vars=() args=()
	while [ $# -gt 0 ]; do
		case "$1" in
		--) shift; args=("$@"); break ;;
		*) vars+=("$1"); shift ;;
		esac
	done
	OUT=$(env -u SOCKACCEL_CGROUP -u SOCKACCEL_LOAD_ARGS -u SOCKACCEL_CROSS_NETNS -u SOCKACCEL_ALLOW_ROOT \
		SOCKACCEL_PIN_ROOT="$M_PINS" SOCKACCEL_STATE_ROOT="$M_STATE" \
		SOCKACCEL_DRY_RUN=1 SOCKACCEL_BIN=/nonexistent/sockaccel \
		SOCKACCEL_MOUNTS="$WORK/$name/mounts" SOCKACCEL_HOST_CGROUP="$WORK/$name/host/sys/fs/cgroup" \
		SOCKACCEL_READY_FILE="$WORK/$name/ready" "${vars[@]}" \
		timeout 20 bash "$EP" "${args[@]}" 2>&1)
	RC=$?
}
has() { grep -Fxq -- "$1" <<< "$OUT"; }
attaches() { grep -c '^+ /nonexistent/sockaccel attach ' <<< "$OUT"; }
LOAD="+ /nonexistent/sockaccel load --cross-netns on"
ATTACH="+ /nonexistent/sockaccel attach --cgroup"

# cgroup v2 host, systemd cgroup driver.
mkhost v2sd v2
mkdir -p "$(cg2 v2sd)/kubepods.slice/kubepods-besteffort.slice" \
	"$(cg2 v2sd)/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b2c3d_0000_4000_8000_00000000abcd.slice" \
	"$(cg2 v2sd)/kubepods.slice/kubepods-pod11111111_2222_3333_4444_555555555555.slice" \
	"$(cg2 v2sd)/system.slice" "$WORK/outside"
ep v2sd
check "v2/systemd: exits 0" [ "$RC" -eq 0 ]
check "v2/systemd: loads with --cross-netns on" has "$LOAD"
check "v2/systemd: attaches kubepods.slice" has "$ATTACH $(cg2 v2sd)/kubepods.slice"
check "v2/systemd: exactly one attach" [ "$(attaches)" -eq 1 ]
check "v2/systemd: load before attach" \
	[ "$(grep -n -m1 -F "$LOAD" <<< "$OUT" | cut -d: -f1)" -lt "$(grep -n -m1 -F "$ATTACH" <<< "$OUT" | cut -d: -f1)" ]
check "v2/systemd: dry run does not wait, says it would unload" has "+ wait for SIGTERM/SIGINT, then: /nonexistent/sockaccel unload"
check "v2/systemd: pins and state on bpffs, the entrypoint says where" \
	has "sockaccel-entrypoint: pins: $M_PINS, state: $M_STATE"

# cgroup v2 host, cgroupfs driver.
mkhost v2fs v2
mkdir -p "$(cg2 v2fs)/kubepods/burstable/pod0a1b2c3d-0000-4000-8000-00000000abcd" "$(cg2 v2fs)/kubepods/pod99999999-2222-3333-4444-555555555555"
ep v2fs
check "v2/cgroupfs: attaches kubepods" has "$ATTACH $(cg2 v2fs)/kubepods"
check "v2/cgroupfs: exactly one attach" [ "$(attaches)" -eq 1 ]

# Hybrid host: cgroup2 at unified/, found by the mount table's type.
mkhost hyb hybrid
mkdir -p "$(cg2 hyb)/kubepods.slice" "$WORK/hyb/host/sys/fs/cgroup/cpu/kubepods.slice"
ep hyb
check "hybrid: cgroup2 found at .../unified" grep -q "cgroup2 hierarchy: $WORK/hyb/host/sys/fs/cgroup/unified\$" <<< "$OUT"
check "hybrid: attaches unified/kubepods.slice, not the v1 one" has "$ATTACH $WORK/hyb/host/sys/fs/cgroup/unified/kubepods.slice"
check "hybrid: exactly one attach" [ "$(attaches)" -eq 1 ]

# cgroup v1-only host: a directory named unified is not enough.
mkhost v1 v1
ep v1
check "v1-only: fails" [ "$RC" -ne 0 ]
check "v1-only: nothing loaded or attached" nomatch '^\+ ' "$OUT"
check "v1-only: says cgroup v2 is needed" grep -q "needs cgroup v2" <<< "$OUT"

# Host cgroup mount missing altogether.
ep nohost
check "no host cgroup mount: fails" [ "$RC" -ne 0 ]

# Both driver layouts present: ambiguous, refuse.
mkhost both v2
mkdir -p "$(cg2 both)/kubepods.slice" "$(cg2 both)/kubepods"
ep both
check "kubepods.slice and kubepods both present: fails" [ "$RC" -ne 0 ]
check "ambiguous: nothing attached" [ "$(attaches)" -eq 0 ]

# Neither present: refuse (never fall back to the root).
mkhost neither v2
ep neither
check "no kubepods cgroup: fails" [ "$RC" -ne 0 ]
check "no kubepods cgroup: nothing attached" [ "$(attaches)" -eq 0 ]

# SOCKACCEL_CGROUP overrides.
ep v2sd SOCKACCEL_CGROUP=kubepods.slice/kubepods-besteffort.slice
check "override: attaches the given cgroup" has "$ATTACH $(cg2 v2sd)/kubepods.slice/kubepods-besteffort.slice"
check "override: only that one" [ "$(attaches)" -eq 1 ]
ep v2sd "SOCKACCEL_CGROUP=/kubepods.slice/kubepods-besteffort.slice  system.slice"
check "override list: two attaches" [ "$(attaches)" -eq 2 ]
check "override list: leading slash is relative to the cgroup2 root" has "$ATTACH $(cg2 v2sd)/kubepods.slice/kubepods-besteffort.slice"
check "override list: second entry" has "$ATTACH $(cg2 v2sd)/system.slice"
ep v2sd SOCKACCEL_CGROUP=none
check "none: exits 0" [ "$RC" -eq 0 ]
check "none: loads" has "$LOAD"
check "none: attaches nothing" [ "$(attaches)" -eq 0 ]
ep v2sd SOCKACCEL_CGROUP=no-such.slice
check "override to a missing cgroup: fails" [ "$RC" -ne 0 ]
check "override to a missing cgroup: nothing loaded" nomatch '^\+ ' "$OUT"
ep v2sd SOCKACCEL_CGROUP=../../../../outside
check "override escaping the hierarchy: fails" [ "$RC" -ne 0 ]
check "override escaping the hierarchy: nothing attached" [ "$(attaches)" -eq 0 ]
ep v2sd SOCKACCEL_CGROUP=/
check "cgroup2 root refused without SOCKACCEL_ALLOW_ROOT" [ "$RC" -ne 0 ]
check "cgroup2 root refused: nothing attached" [ "$(attaches)" -eq 0 ]
ep v2sd SOCKACCEL_CGROUP=kubepods.slice/..
check "root through .. refused too" [ "$RC" -ne 0 ]
# (fake root, dry run: prints the command only)
ep v2sd SOCKACCEL_CGROUP=/ SOCKACCEL_ALLOW_ROOT=1
check "fake root with SOCKACCEL_ALLOW_ROOT=1: attach printed" has "$ATTACH $(cg2 v2sd)"

# Load options.
ep v2sd "SOCKACCEL_LOAD_ARGS=--max-sockets 4096 --backlog-limit 4M" SOCKACCEL_CROSS_NETNS=off
check "load options passed through" has "+ /nonexistent/sockaccel load --cross-netns off --max-sockets 4096 --backlog-limit 4M"

# The pin root and the state directory must both be on bpffs (the host's:
# the pod cannot mount one), never on the container's own file systems.
mkhost nobpf v2 ""
mkdir -p "$(cg2 nobpf)/kubepods.slice"
ep nobpf
check "no bpffs mounted: fails" [ "$RC" -ne 0 ]
check "no bpffs mounted: nothing loaded" nomatch '^\+ ' "$OUT"
check "no bpffs mounted: names the pin root and the hostPath to mount there" \
	grep -q "$M_PINS is not on a bpf file system; mount the host's directory there (hostPath /sys/fs/bpf/sockaccel" <<< "$OUT"
mkhost nostate v2 pins
mkdir -p "$(cg2 nostate)/kubepods.slice"
ep nostate
check "state directory not on bpffs: fails" [ "$RC" -ne 0 ]
check "state directory not on bpffs: nothing loaded" nomatch '^\+ ' "$OUT"
check "state directory not on bpffs: named" grep -q "$M_STATE is not on a bpf file system" <<< "$OUT"
# The whole of /sys/fs/bpf mounted and no SOCKACCEL_PIN_ROOT (the layout
# before): the loader's defaults are checked, and they are on bpffs.
mkhost old v2 all
mkdir -p "$(cg2 old)/kubepods.slice"
ep old SOCKACCEL_PIN_ROOT= SOCKACCEL_STATE_ROOT=
check "no SOCKACCEL_PIN_ROOT: the loader's default pin root is checked" \
	has "sockaccel-entrypoint: pins: /sys/fs/bpf/sockaccel, state: /sys/fs/bpf/sockaccel-state"
check "no SOCKACCEL_PIN_ROOT, /sys/fs/bpf on bpffs: loads" has "$LOAD"
ep nobpf SOCKACCEL_PIN_ROOT= SOCKACCEL_STATE_ROOT=
check "no SOCKACCEL_PIN_ROOT, no bpffs at /sys/fs/bpf: fails" [ "$RC" -ne 0 ]

# pod-cgroup UID: systemd (burstable, guaranteed) and cgroupfs layouts.
ep v2sd -- pod-cgroup 0a1b2c3d-0000-4000-8000-00000000abcd
check "pod-cgroup, systemd burstable" [ "$OUT" = "$(cg2 v2sd)/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b2c3d_0000_4000_8000_00000000abcd.slice" ]
ep v2sd -- pod-cgroup 11111111-2222-3333-4444-555555555555
check "pod-cgroup, systemd guaranteed" [ "$OUT" = "$(cg2 v2sd)/kubepods.slice/kubepods-pod11111111_2222_3333_4444_555555555555.slice" ]
ep v2fs -- pod-cgroup 0a1b2c3d-0000-4000-8000-00000000abcd
check "pod-cgroup, cgroupfs burstable" [ "$OUT" = "$(cg2 v2fs)/kubepods/burstable/pod0a1b2c3d-0000-4000-8000-00000000abcd" ]
ep v2fs -- pod-cgroup 99999999-2222-3333-4444-555555555555
check "pod-cgroup, cgroupfs guaranteed" [ "$OUT" = "$(cg2 v2fs)/kubepods/pod99999999-2222-3333-4444-555555555555" ]
ep v2sd -- pod-cgroup 'x/../..'
check "pod-cgroup rejects a malformed UID" [ "$RC" -ne 0 ]
ep v2sd -- pod-cgroup 22222222-2222-3333-4444-555555555555
check "pod-cgroup: unknown pod fails" [ "$RC" -ne 0 ]

# ------------------------------------- entrypoint, real signal, fake binary
# Not a dry run: a fake sockaccel that logs its arguments. SIGTERM must run
# `unload` and end the entrypoint with status 0.
FAKE="$WORK/fake-sockaccel"
cat > "$FAKE" <<'EOF'
#!/bin/sh
echo "$*" >> "$FAKE_LOG"
echo "${SOCKACCEL_PIN_ROOT:-unset} ${SOCKACCEL_STATE_ROOT:-unset}" >> "$FAKE_LOG.env"
case "$1" in attach) [ -z "${FAKE_FAIL_ATTACH:-}" ] || exit 1 ;; esac
exit 0
EOF
chmod +x "$FAKE"
run_real() {	# NAME: start the entrypoint in the background
	FAKE_LOG="$WORK/$1.log" SOCKACCEL_BIN="$FAKE" SOCKACCEL_MOUNTS="$WORK/v2sd/mounts" \
		SOCKACCEL_PIN_ROOT="$M_PINS" SOCKACCEL_STATE_ROOT="$M_STATE" \
		SOCKACCEL_HOST_CGROUP="$WORK/v2sd/host/sys/fs/cgroup" SOCKACCEL_READY_FILE="$WORK/$1.ready" \
		bash "$EP" > "$WORK/$1.out" 2>&1 &
	BGPID=$!
}
wait_real() {	# WAIT_RC: the entrypoint's status, 124 (and killed) after 10 s
	WAIT_RC=124
	for _ in $(seq 100); do
		if ! kill -0 "$BGPID" 2>/dev/null; then wait "$BGPID"; WAIT_RC=$?; break; fi
		sleep 0.1
	done
	[ "$WAIT_RC" -eq 124 ] && kill -KILL "$BGPID" 2>/dev/null
	BGPID=
}
run_real sig
for _ in $(seq 100); do [ -e "$WORK/sig.ready" ] && break; sleep 0.1; done
check "signal: readiness file created after attach" test -e "$WORK/sig.ready"
# The metrics server is started in the background just before the
# readiness file: on a busy machine a SIGTERM right away could end it
# before it logged a line (bounded wait).
for _ in $(seq 100); do grep -q '^metrics ' "$WORK/sig.log" 2>/dev/null && break; sleep 0.1; done
kill -TERM "$BGPID" 2>/dev/null
wait_real
rc=$WAIT_RC
check "signal: SIGTERM ends the entrypoint with status 0 (got $rc)" [ "$rc" -eq 0 ]
check "signal: load, attach, metrics, unload in that order" \
	[ "$(tr '\n' '|' < "$WORK/sig.log")" = "load --cross-netns on|attach --cgroup $(cg2 v2sd)/kubepods.slice|$(for p in 2379-2380 6443 10250-10259; do printf 'policy add --cgroup %s exclude --port %s|' "$(cg2 v2sd)/kubepods.slice" "$p"; done)metrics --listen 0.0.0.0:9477|unload|" ]
check "signal: readiness file removed" test ! -e "$WORK/sig.ready"
check "signal: every sockaccel command saw the manifest's pin root and state directory" \
	[ "$(sort -u "$WORK/sig.log.env")" = "$M_PINS $M_STATE" ]

# A failed attach: exit non-zero and leave nothing loaded behind.
FAKE_FAIL_ATTACH=1 run_real fail
wait_real
rc=$WAIT_RC
failed_cleanly=no
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && failed_cleanly=yes
check "failed attach: entrypoint exits non-zero by itself (got $rc)" [ "$failed_cleanly" = yes ]
check "failed attach: unloads" grep -qx unload "$WORK/fail.log"
check "failed attach: not ready" test ! -e "$WORK/fail.ready"

finish
