#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# A nonblocking, selector-driven client of join_server.py: streams BYTES
# of random data (1 MiB writes), half-closes, and checks the server's
# "<sha256 hex> <bytes>" answer against what it sent.
# --lowat N: set TCP_NOTSENT_LOWAT (IPPROTO_TCP, 25) to N before
# connecting, and read it back with getsockopt() after every send() and
# once more after the answer: a program must always read its own value,
# even while sockaccel holds the option at 1 to pause the sender
# (sockops.bpf.c, pause_sender(); sockopt.bpf.c hides it).
# Prints one line "verified=0|1 bytes=N lowat_reads=N lowat_other=LIST
# lowat_after=V"; exit 0 when verified (and every read was N).
# --greet: wait for the server's "G" (join_server.py --greet) before sending.
import argparse, hashlib, os, selectors, socket, sys, time

TCP_NOTSENT_LOWAT = 25
ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("bytes", type=int)
ap.add_argument("--lowat", type=int, default=0)
ap.add_argument("--timeout", type=float, default=60)
ap.add_argument("--greet", action="store_true")
a = ap.parse_args()
deadline = time.monotonic() + a.timeout

block = os.urandom(1 << 20)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if a.lowat:
    s.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, a.lowat)
s.setblocking(False)
s.connect_ex(("127.0.0.1", a.port))
sel = selectors.DefaultSelector()
sel.register(s, selectors.EVENT_WRITE)

h, sent, reads, other = hashlib.sha256(), 0, 0, set()


def read_lowat():
    global reads
    if a.lowat:
        v = s.getsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT)
        reads += 1
        if v != a.lowat:
            other.add(v)


def wait():
    left = deadline - time.monotonic()
    if left <= 0 or not sel.select(left):
        sys.exit("lowat_client: timeout after %d bytes" % sent)


if a.greet:
    # The server says when its socket is nonblocking: no send of ours
    # can find it still blocking (between accept() and setblocking()).
    sel.modify(s, selectors.EVENT_READ)
    g = b""
    while not g:
        wait()
        try:
            g = s.recv(1)
        except BlockingIOError:
            continue
        if g != b"G":
            sys.exit("lowat_client: no greeting (%r)" % g)
    sel.modify(s, selectors.EVENT_WRITE)
while sent < a.bytes:
    wait()
    while sent < a.bytes:
        off = sent % len(block)
        chunk = memoryview(block)[off:off + min(len(block) - off, a.bytes - sent)]
        try:
            k = s.send(chunk)
        except (BlockingIOError, InterruptedError):
            break
        except OSError as e:
            if e.errno == 107:	# ENOTCONN: the connect has not completed yet
                break
            raise
        h.update(chunk[:k])
        sent += k
        read_lowat()
    read_lowat()
s.shutdown(socket.SHUT_WR)
sel.modify(s, selectors.EVENT_READ)
answer = b""
while True:
    wait()
    try:
        b = s.recv(4096)
    except BlockingIOError:
        continue
    if not b:
        break
    answer += b
read_lowat()
after = s.getsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT)
s.close()
ok = answer.decode(errors="replace").split() == [h.hexdigest(), str(sent)]
print("verified=%d bytes=%d lowat_reads=%d lowat_other=%s lowat_after=%d" %
      (ok, sent, reads, ",".join(map(str, sorted(other))) or "none", after))
sys.exit(0 if ok and not other and (not a.lowat or after == a.lowat) else 1)
