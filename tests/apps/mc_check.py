#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# A memcached text-protocol client on nonblocking sockets (the way
# libmemcached and pymemcache with a timeout talk): CONNS connections,
# ROUNDS random operations among them, each on a random connection:
#  - set of a random key to fresh random bytes (1 B to 900 KB), one
#    sendall() for the command line and the value;
#  - get of 1-4 keys at once, every value compared with what was stored;
#  - three requests written back to back before any reply is read
#    (pipelined: set, get, delete), each reply checked in order.
# Prints one line "ops N bytes_out N bytes_in N"; exit 0 only when every
# reply was exactly what memcached must answer.
# Usage: mc_check.py PORT CONNS ROUNDS SEED [TIMEOUT_S]
#        mc_check.py PORT version   (exit 0 once memcached answers)
import os, random, socket, sys, time

if sys.argv[2:3] == ["version"]:     # mc_check.py PORT version: is it up?
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
    s.sendall(b"version\r\n")
    sys.exit(0 if s.recv(64).startswith(b"VERSION ") else 1)
port, nconns, rounds, seed = (int(a) for a in sys.argv[1:5])
deadline = time.monotonic() + (float(sys.argv[5]) if len(sys.argv) > 5 else 120)
rnd = random.Random(seed)
SIZES = (1, 10, 100, 1000, 5000, 65536, 300000, 900000)
out_bytes = in_bytes = 0


class Conn:
    def __init__(self):
        # A timeout makes Python's socket nonblocking (O_NONBLOCK) and
        # wait in poll(): what sockaccel accelerates.
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = bytearray()

    def send(self, data):
        global out_bytes
        self.s.sendall(data)
        out_bytes += len(data)

    def _more(self):
        global in_bytes
        if time.monotonic() > deadline:
            sys.exit("timeout")
        chunk = self.s.recv(1 << 20)
        if not chunk:
            sys.exit("connection closed by memcached")
        in_bytes += len(chunk)
        self.buf += chunk

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return ln
            self._more()

    def exactly(self, n):
        while len(self.buf) < n:
            self._more()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


def fail(msg):
    print("mismatch:", msg, file=sys.stderr)
    sys.exit(1)


def expect_line(c, want, what):
    got = c.line()
    if got != want:
        fail(f"{what}: {got[:60]!r} != {want!r}")


def read_values(c, keys, store, what):
    """The reply to a get: VALUE blocks in request order (misses skipped), END."""
    for k in keys:
        if k not in store:
            continue
        hdr = c.line().split()
        if len(hdr) != 4 or hdr[0] != b"VALUE" or hdr[1] != k:
            fail(f"{what}: header {b' '.join(hdr)[:60]!r} for key {k!r}")
        n = int(hdr[3])
        data = c.exactly(n + 2)
        if data[:n] != store[k] or data[n:] != b"\r\n":
            fail(f"{what}: value of {k!r} differs ({n} bytes, stored {len(store[k])})")
    expect_line(c, b"END", what)


def new_value():
    return os.urandom(rnd.choice(SIZES))


conns = [Conn() for _ in range(nconns)]
store = {}
for op in range(rounds):
    c = rnd.choice(conns)
    r = rnd.random()
    if r < 0.4 or not store:
        k, v = b"k%d" % rnd.randrange(64), new_value()
        c.send(b"set %s 0 0 %d\r\n" % (k, len(v)) + v + b"\r\n")
        expect_line(c, b"STORED", f"set {k!r}")
        store[k] = v
    elif r < 0.85:
        # At most 4 keys: a reply up to 3.6 MB stays within backlog_limit
        # (4 MiB) even if this client has not started reading.
        keys = rnd.sample(sorted(store), min(len(store), rnd.randrange(1, 5)))
        c.send(b"get " + b" ".join(keys) + b"\r\n")
        read_values(c, keys, store, "get")
    else:
        k, v = b"p%d" % op, new_value()
        c.send(b"set %s 0 0 %d\r\n" % (k, len(v)) + v + b"\r\n" +
               b"get %s\r\n" % k + b"delete %s\r\n" % k)
        expect_line(c, b"STORED", "pipelined set")
        read_values(c, [k], {k: v}, "pipelined get")
        expect_line(c, b"DELETED", "pipelined delete")
for c in conns:
    if c.buf:
        fail(f"{len(c.buf)} bytes nobody asked for")
    c.send(b"quit\r\n")
    c.s.close()
print(f"ops {rounds} bytes_out {out_bytes} bytes_in {in_bytes}")
