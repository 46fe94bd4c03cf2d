#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A WebSocket-style upgrade through an HTTP reverse proxy: ask for
"Upgrade: echo", expect 101, then stream BYTES deterministic bytes while
reading their echo; close once all of it came back (Go's ReverseProxy ends
an upgraded connection when either direction ends, so no half-close).
Exit 0 when every echoed byte matches, 1 otherwise; prints one line."""
import hashlib
import selectors
import socket
import sys


def stream(n, seed):
    out, i = bytearray(), 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, i)).digest()
        i += 1
    return bytes(out[:n])


def main():
    host, port, nbytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    data = stream(nbytes, seed)
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: backend\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            print("upgrade: EOF before the response")
            return 1
        head += chunk
    status, _, rest = head.partition(b"\r\n\r\n")
    if not status.startswith(b"HTTP/1.1 101"):
        print("upgrade: %r" % status.split(b"\r\n")[0])
        return 1
    got = bytearray(rest)
    s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent = 0
    while len(got) < nbytes:
        events = sel.select(timeout=10)
        if not events:
            print("upgrade: timeout: sent %d echoed %d" % (sent, len(got)))
            return 1
        for _, mask in events:
            if mask & selectors.EVENT_WRITE and sent < nbytes:
                try:
                    sent += s.send(data[sent:sent + 65536])
                except BlockingIOError:
                    pass
                if sent == nbytes:
                    sel.modify(s, selectors.EVENT_READ)
            if mask & selectors.EVENT_READ:
                try:
                    chunk = s.recv(1 << 17)
                except BlockingIOError:
                    continue
                if not chunk:
                    print("upgrade: EOF: sent %d echoed %d" % (sent, len(got)))
                    return 1
                got += chunk
    s.close()
    ok = bytes(got) == data
    print("upgrade: sent %d echoed %d %s" % (sent, len(got), "match" if ok else "MISMATCH"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
