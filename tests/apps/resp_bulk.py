#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# An event-driven (nonblocking, selector-based) redis client, the way
# hiredis' async API, redis-benchmark or a redis replica talk to a server:
# SET KEY <the bytes of FILE> then GET KEY, and the reply must be the
# file, byte for byte. Each command is written with as few send() calls as
# the socket accepts (a whole buffer at a time, as hiredis does).
# Usage: resp_bulk.py PORT KEY FILE [TIMEOUT_S]; exit 0 when verified.
import hashlib, selectors, socket, sys, time

port, key, path = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
deadline = time.monotonic() + (float(sys.argv[4]) if len(sys.argv) > 4 else 60)
data = open(path, "rb").read()

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setblocking(False)
sock.connect_ex(("127.0.0.1", port))
sel = selectors.DefaultSelector()


def wait(ev):
    sel.register(sock, ev)
    left = deadline - time.monotonic()
    ready = sel.select(max(left, 0)) if left > 0 else []
    sel.unregister(sock)
    if not ready:
        sys.exit("timeout")


def send_all(buf):
    view = memoryview(buf)
    while view:
        try:
            n = sock.send(view)
            view = view[n:]
        except BlockingIOError:
            wait(selectors.EVENT_WRITE)


rbuf = bytearray()


def fill():
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except BlockingIOError:
            wait(selectors.EVENT_READ)
            continue
        if not chunk:
            sys.exit("connection closed by server")
        rbuf.extend(chunk)
        return


def read_line():
    while b"\r\n" not in rbuf:
        fill()
    i = rbuf.index(b"\r\n")
    line = bytes(rbuf[:i])
    del rbuf[:i + 2]
    return line


def read_exact(n):
    """n bytes: what is buffered, then straight into one preallocated
    buffer with recv_into() (one copy, as hiredis reads into its sds)."""
    out = bytearray(n)
    view = memoryview(out)
    got = min(n, len(rbuf))
    view[:got] = rbuf[:got]
    del rbuf[:got]
    while got < n:
        try:
            k = sock.recv_into(view[got:])
        except BlockingIOError:
            wait(selectors.EVENT_READ)
            continue
        if not k:
            sys.exit("connection closed by server")
        got += k
    return out


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


wait(selectors.EVENT_WRITE)
err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
if err:
    sys.exit("connect failed: errno %d" % err)
send_all(b"*3\r\n$3\r\nSET\r\n" + bulk(key) + bulk(data))
line = read_line()
if line != b"+OK":
    sys.exit("SET reply %r" % line[:80])
send_all(b"*2\r\n$3\r\nGET\r\n" + bulk(key))
line = read_line()
if not line.startswith(b"$") or int(line[1:]) != len(data):
    sys.exit("GET reply header %r, expected $%d" % (line[:80], len(data)))
value = read_exact(len(data))
if read_exact(2) != b"\r\n":
    sys.exit("GET reply not terminated")
if hashlib.sha256(value).digest() != hashlib.sha256(data).digest():
    sys.exit("GET returned different bytes")
print("verified %d bytes sha256=%s" % (len(data), hashlib.sha256(value).hexdigest()))
