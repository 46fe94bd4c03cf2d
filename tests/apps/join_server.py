#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# A selectors-based server the way many Python servers are written: its
# listener has a timeout (settimeout(5)) and socket.accept() hands back a
# BLOCKING socket (CPython's accept4() passes no SOCK_NONBLOCK, whatever
# the listener's mode), which the server then makes nonblocking
# (setblocking(False)) and serves from a selector. CPython implements the
# listener's timeout with O_NONBLOCK on its file: the kernel (and
# sockaccel) see a nonblocking listener. Each connection is a sink: it
# reads until EOF, then answers "<sha256 hex> <bytes>\n" and closes.
#   --stall-at BYTES --stall-ms MS  each reader sleeps once after BYTES
#                                   (a GC pause, a busy CPU)
#   --blocking-listener             no timeout: a blocking listener, whose
#                                   readiness the selector reports
#   --greet                         send "G" once the accepted socket is
#                                   nonblocking (lowat_client.py --greet
#                                   waits for it before sending)
#   --nonblock-after-ms MS          sleep MS between accept() and
#                                   setblocking(False) (a reproducer: the
#                                   accepted socket stays blocking longer)
# Usage: join_server.py PORT_FILE [--conns N] [options] [--timeout S];
# writes its port to PORT_FILE; exit 0 when N connections were served.
import argparse, hashlib, os, selectors, socket, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("port_file")
ap.add_argument("--conns", type=int, default=1)
ap.add_argument("--stall-at", type=int, default=0)
ap.add_argument("--stall-ms", type=int, default=0)
ap.add_argument("--timeout", type=float, default=60)
ap.add_argument("--blocking-listener", action="store_true")
ap.add_argument("--nonblock-after-ms", type=int, default=0)
ap.add_argument("--greet", action="store_true")
a = ap.parse_args()
deadline = time.monotonic() + a.timeout

ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(64)
if not a.blocking_listener:
    ls.settimeout(5)
with open(a.port_file + ".tmp", "w") as f:
    f.write("%d\n" % ls.getsockname()[1])
os.rename(a.port_file + ".tmp", a.port_file)

sel = selectors.DefaultSelector()
sel.register(ls, selectors.EVENT_READ, None)


class Conn:
    def __init__(self, s):
        self.s, self.h, self.n, self.stalled, self.out = s, hashlib.sha256(), 0, False, None


served = 0
while served < a.conns:
    left = deadline - time.monotonic()
    if left <= 0:
        sys.exit("join_server: timeout (%d of %d served)" % (served, a.conns))
    for key, ev in sel.select(min(left, 1.0)):
        c = key.data
        if c is None:
            try:
                s, _ = ls.accept()	# blocking socket here (listener timeout)
            except (BlockingIOError, socket.timeout):
                continue
            if a.nonblock_after_ms:
                time.sleep(a.nonblock_after_ms / 1000)
            s.setblocking(False)
            if a.greet:
                s.send(b"G")	# now nonblocking: the client may start
            sel.register(s, selectors.EVENT_READ, Conn(s))
            continue
        if c.out is None:
            while True:
                try:
                    b = c.s.recv(1 << 18)
                except BlockingIOError:
                    break
                if not b:
                    c.out = memoryview(("%s %d\n" % (c.h.hexdigest(), c.n)).encode())
                    sel.modify(c.s, selectors.EVENT_WRITE, c)
                    break
                c.h.update(b)
                c.n += len(b)
                if a.stall_ms and not c.stalled and c.n >= a.stall_at:
                    c.stalled = True
                    time.sleep(a.stall_ms / 1000)
        if c.out is not None:
            try:
                k = c.s.send(c.out)
                c.out = c.out[k:]
            except BlockingIOError:
                pass
            if not c.out:
                sel.unregister(c.s)
                c.s.close()
                served += 1
