#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""indep.py: an "independent-style" loopback benchmark, written the way a
quick outside benchmark would be, to compare with sabench (issue 12, item 5).

Client and server are two *processes* (the server is forked), not two
threads of one process with epoll like sabench. Prints one JSON line in
sabench's format (mode, ok, ops_per_s, lat_p50_us, lat_p99_us, ...).

  indep.py rr  [--size 64] [--seconds 2] [--io block|poll|select|timeout|epoll] [--cpus 0|1|2]
  indep.py crr [--seconds 2] [--io ...] [--cpus ...]

--io block    blocking sockets, sendall()/recv() (the simplest client)
--io timeout  settimeout(5): Python makes the fd O_NONBLOCK and poll()s
              before each call (socket.create_connection(timeout=...))
--io poll     O_NONBLOCK sockets, select.poll() before each recv
--io epoll    O_NONBLOCK sockets, select.epoll (level-triggered), like sabench
--cpus 1      both processes on the first CPU of --cpu-list (sched_setaffinity)
--nodelay 0|1 TCP_NODELAY on both ends (default 1)
--port N      listen port (default: ephemeral)
--late-nonblock  client connect()s blocking, then goes O_NONBLOCK
The listener is blocking (socketserver style); accepted sockets are set up
like the client's (blocking, timeout or O_NONBLOCK after accept()).
"""
import argparse
import errno
import json
import os
import select
import signal
import socket
import sys
import time


def pin(cpus, cpu_list, role):
    if cpus == 0:
        return
    cpu = cpu_list[0] if cpus == 1 or role == 0 else cpu_list[1]
    os.sched_setaffinity(0, {cpu})


def setup_sock(s, a):
    if a.nodelay:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if a.io == "timeout":
        s.settimeout(5)
    elif a.io in ("poll", "select", "epoll"):
        s.setblocking(False)
    else:
        s.setblocking(True)


class Waiter:
    """Waits for readability the way --io says; None for blocking I/O."""

    def __init__(self, io, fd):
        self.io, self.fd = io, fd
        if io == "poll":
            self.p = select.poll()
            self.p.register(fd, select.POLLIN)
        elif io == "epoll":
            self.p = select.epoll()
            self.p.register(fd, select.EPOLLIN)

    def wait(self):
        if self.io == "poll":
            if not self.p.poll(5000):
                raise TimeoutError("poll")
        elif self.io == "epoll":
            if not self.p.poll(5):
                raise TimeoutError("epoll")
        elif self.io == "select":
            r, _, _ = select.select([self.fd], [], [], 5)
            if not r:
                raise TimeoutError("select")

    def close(self):
        if self.io == "epoll":
            self.p.close()


def recv_exact(s, w, n):
    got = 0
    while got < n:
        if w is not None and w.io in ("poll", "select", "epoll"):
            w.wait()
            try:
                b = s.recv(65536)
            except BlockingIOError:
                continue
        else:
            b = s.recv(65536)
        if not b:
            raise EOFError("EOF")
        got += len(b)
    return got


def send_all(s, buf, a):
    if a.io in ("poll", "select", "epoll"):
        v = memoryview(buf)
        while v:
            try:
                k = s.send(v)
            except BlockingIOError:
                select.select([], [s], [], 5)
                continue
            v = v[k:]
    else:
        s.sendall(buf)


def serve(a, ls):
    """Server process: one connection at a time (rr: one long one)."""
    pin(a.cpus, a.cpu_list, 1)
    resp = b"r" * a.size
    while True:
        try:
            c, _ = ls.accept()
        except OSError:
            return
        setup_sock(c, a)
        w = Waiter(a.io, c.fileno())
        try:
            while True:
                recv_exact(c, w, a.size)
                send_all(c, resp, a)
                if a.mode == "crr":
                    break
        except (EOFError, ConnectionError):
            pass
        if a.mode == "crr":
            # The client closes first after the response; wait for its EOF.
            try:
                while c.recv(65536):
                    pass
            except (BlockingIOError, OSError):
                pass
        c.close()


def connect(addr, a):
    """A connected client socket in the mode --io says. Nonblocking modes
    connect nonblocking (EINPROGRESS, then wait for writable) unless
    --late-nonblock: then connect() blocks and O_NONBLOCK comes after."""
    if a.io == "timeout":
        s = socket.create_connection(addr, timeout=5)
        setup_sock(s, a)
        return s
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if a.io == "block" or a.late_nonblock:
        s.connect(addr)
        setup_sock(s, a)
        return s
    setup_sock(s, a)
    if s.connect_ex(addr) not in (0, errno.EINPROGRESS):
        raise ConnectionError("connect")
    select.select([], [s], [], 5)
    e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if e:
        raise ConnectionError(os.strerror(e))
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("rr", "crr"))
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=2)
    ap.add_argument("--io", default="block",
                    choices=("block", "timeout", "poll", "select", "epoll"))
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--cpu-list", default="0,1")
    ap.add_argument("--nodelay", type=int, default=1)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--late-nonblock", action="store_true",
                    help="client: connect() blocking, then O_NONBLOCK")
    a = ap.parse_args()
    a.cpu_list = [int(x) for x in a.cpu_list.split(",")]
    if a.mode == "crr":
        a.size = 64

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.port))
    ls.listen(128)   # blocking listener, as socketserver and most scripts
    addr = ls.getsockname()
    pid = os.fork()
    if pid == 0:
        try:
            serve(a, ls)
        finally:
            os._exit(0)
    ls.close()
    pin(a.cpus, a.cpu_list, 0)
    req = b"q" * a.size
    lat = []
    deadline = time.monotonic() + a.seconds
    ok, err = True, None
    t0 = time.monotonic()
    c0 = time.process_time()
    try:
        if a.mode == "rr":
            s = connect(addr, a)
            w = Waiter(a.io, s.fileno())
            while True:
                t = time.perf_counter_ns()
                send_all(s, req, a)
                recv_exact(s, w, a.size)
                lat.append(time.perf_counter_ns() - t)
                if time.monotonic() >= deadline:
                    break
            s.close()
        else:
            while time.monotonic() < deadline:
                t = time.perf_counter_ns()
                s = connect(addr, a)
                w = Waiter(a.io, s.fileno())
                send_all(s, req, a)
                recv_exact(s, w, a.size)
                w.close()
                s.close()
                lat.append(time.perf_counter_ns() - t)
    except Exception as e:   # report, never hang
        ok, err = False, f"{type(e).__name__}: {e}"
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - c0
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
    lat.sort()

    def pct(p):
        if not lat:
            return 0.0
        i = max(0, min(len(lat) - 1, int(-(-p / 100 * len(lat) // 1)) - 1))
        return lat[i] / 1e3
    r = {"tool": "indep.py", "mode": a.mode, "transport": "tcp4", "io": a.io, "size": a.size,
         "conns": 1, "cpus": a.cpus, "nodelay": bool(a.nodelay), "ok": ok,
         "elapsed_s": elapsed, "ops": len(lat), "ops_per_s": len(lat) / elapsed,
         "lat_p50_us": pct(50), "lat_p99_us": pct(99),
         "cpu_us_per_op": cpu * 1e6 / len(lat) if lat else 0.0,
         "client_cpu_s": cpu}
    if not ok:
        r["error"] = err
    print(json.dumps(r))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
