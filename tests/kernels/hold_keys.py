#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Hold, for a kernel-matrix guest's life, the static keys and tracepoint
static calls that sockaccel's load, attach and unload would otherwise flip.

Why: flipping one rewrites live kernel text with text_poke_bp() (an int3
over the first byte, the rest, then the first byte, each followed by an
IPI to every CPU). Under qemu's TCG with two vCPUs that protocol is not
sound: a vCPU can execute the int3 after the patch is over, finds no patch
in progress (poke_int3_handler()) and dies with "Oops: int3". The kernel
matrix saw it twice in the 6.12 guest: once at the sys_exit tracepoint's
site in syscall_exit_to_user_mode_prepare() (returning from a flock()),
once in an interrupt. Toggling an ftrace event there in a loop, with
syscalls running on both vCPUs, oopses within a minute (at the
sched_wakeup site: recording comms registers it); with these keys held,
1151 toggles did not. The same oops is known from other TCG test farms
(LKML, "qemu-x86_64 booting with 8.0.0 still see int3", July 2023). On
hardware, and on the host, the protocol holds and nothing here is needed.

So the guest holds each key on before the tests start; every flip the
tests would make becomes a count change, which patches nothing:
- cgroup_bpf_enabled_key[] of sock_ops, getsockopt and setsockopt
  (__cgroup_bpf_attach() increments it per program): a program that
  returns 1 at each of these hooks of an empty cgroup of its own;
- ingress_needed_key and egress_needed_key (clsact_init()) and, on 6.6+,
  tcx_needed_key (tcx_skeys_inc()): a clsact qdisc and a tcx link on lo
  of this process's own network namespace;
- the sys_enter, sys_exit and io_uring submit tracepoints the guard
  attaches to: two probes each (one ftrace event per trace instance), so
  that the guard's perf probe takes a tracepoint from 2 probes to 3 and
  back, which changes neither its key nor its static call
  (tracepoint_add_func(): only 0->1 and 1->2 patch text).

Run inside a network namespace of its own (unshare --net); prints one
line per key, then "ready", and sleeps until killed (the link and the
namespace live as long as it does).
"""
import ctypes
import os
import subprocess
import time

NR_BPF = 321  # x86_64
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_LINK_CREATE = 5, 8, 28
PROG_SCHED_CLS, PROG_SOCK_OPS, PROG_CGROUP_SOCKOPT = 3, 13, 25
ATTACH_SOCK_OPS, ATTACH_GETSOCKOPT, ATTACH_SETSOCKOPT, ATTACH_TCX_INGRESS = 3, 21, 22, 46
F_ALLOW_MULTI = 2

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    r = libc.syscall(NR_BPF, cmd, buf, len(attr))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def u32(v):
    return (v & 0xffffffff).to_bytes(4, "little")


def u64(v):
    return v.to_bytes(8, "little")


LICENSE = ctypes.create_string_buffer(b"GPL")


def load(prog_type, ret, expected_attach_type=0):
    # r0 = ret; exit
    insns = ctypes.create_string_buffer(
        bytes([0xb7, 0, 0, 0]) + u32(ret) + bytes([0x95]) + bytes(7), 16)
    attr = (u32(prog_type) + u32(2) + u64(ctypes.addressof(insns)) +
            u64(ctypes.addressof(LICENSE)) + u32(0) + u32(0) + u64(0) + u32(0) + u32(0) +
            b"sa_guest_keys".ljust(16, b"\0") + u32(0) + u32(expected_attach_type))
    return bpf(BPF_PROG_LOAD, attr)


def say(what, how):
    print(f"  {what}: {how}", flush=True)


def cgroup_keys():
    cg2 = None
    with open("/proc/mounts") as f:
        for line in f:
            p = line.split()
            if p[2] == "cgroup2":
                cg2 = p[1]
                break
    if not cg2:
        say("cgroup keys", "no cgroup2 mount")
        return
    path = os.path.join(cg2, "sa-guest-keys")
    os.makedirs(path, exist_ok=True)
    cg = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    for name, ptype, atype in (("sock_ops", PROG_SOCK_OPS, ATTACH_SOCK_OPS),
                               ("getsockopt", PROG_CGROUP_SOCKOPT, ATTACH_GETSOCKOPT),
                               ("setsockopt", PROG_CGROUP_SOCKOPT, ATTACH_SETSOCKOPT)):
        try:
            fd = load(ptype, 1, atype if ptype == PROG_CGROUP_SOCKOPT else 0)
            bpf(BPF_PROG_ATTACH, u32(cg) + u32(fd) + u32(atype) + u32(F_ALLOW_MULTI))
            os.close(fd)  # the cgroup holds the program
            say(f"cgroup {name}", f"held ({path})")
        except OSError as e:
            say(f"cgroup {name}", f"not held: {e.strerror}")
    os.close(cg)


def tc_keys():
    r = subprocess.run(["tc", "qdisc", "add", "dev", "lo", "clsact"],
                       capture_output=True, text=True)
    say("ingress/egress (clsact)", "held" if r.returncode == 0 else f"not held: {r.stderr.strip()}")
    try:
        fd = load(PROG_SCHED_CLS, 0xffffffff)  # TCX_NEXT
        # The link lives as long as its fd, which this process never closes.
        link = bpf(BPF_LINK_CREATE, u32(fd) + u32(1) + u32(ATTACH_TCX_INGRESS) + u32(0) + bytes(16))
        say("tcx", f"held (link fd {link})")
    except OSError as e:
        say("tcx", f"not held: {e.strerror} (no tcx before 6.6)")


def tracepoint_keys():
    top = "/sys/kernel/tracing"
    inst = os.path.join(top, "instances", "sa-guest-keys")
    try:
        os.makedirs(inst, exist_ok=True)
    except OSError as e:
        say("tracepoints", f"not held: {e.strerror}")
        return
    # Cheap events: a syscall nobody here makes; io_uring's submit
    # tracepoint under its name before 6.5 and after.
    for ev in ("syscalls/sys_enter_getppid", "syscalls/sys_exit_getppid",
               "io_uring/io_uring_submit_req", "io_uring/io_uring_submit_sqe"):
        held = 0
        for d in (top, inst):
            try:
                with open(os.path.join(d, "events", ev, "enable"), "w") as f:
                    f.write("1")
                held += 1
            except OSError:
                pass
        if held or not ev.startswith("io_uring"):
            say(ev, f"{held} probes")


def main():
    print("guest: holding static keys (tests/kernels/hold_keys.py)", flush=True)
    cgroup_keys()
    tc_keys()
    tracepoint_keys()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
