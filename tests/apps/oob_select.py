#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Urgent data as select()/poll() programs see it (asyncore's handle_expt,
SIOCATMARK loops): a client sends "hello", the server reads it, the client
sends one byte with MSG_OOB and then "after". Prints one line of what the
server saw; run plain and accelerated, the lines must be identical.

--warmup N: N short connections first, then a pause (the splice guard's
probation for a new executable); --family 4|6."""
import argparse
import fcntl
import select
import socket
import struct
import sys
import time

SIOCATMARK = 0x8905


def atmark(s):
    return struct.unpack("i", fcntl.ioctl(s, SIOCATMARK, b"\0\0\0\0"))[0]


def pair(lst, fam):
    """Nonblocking from the start, as event-driven programs are."""
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex(lst.getsockname()[:2])
    select.select([], [c], [], 2)
    select.select([lst], [], [], 2)
    s, _ = lst.accept()
    s.setblocking(False)
    return c, s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--pause", type=float, default=1.2)
    ap.add_argument("--family", default="4")
    a = ap.parse_args()
    fam, host = (socket.AF_INET, "127.0.0.1") if a.family == "4" else (socket.AF_INET6, "::1")
    lst = socket.socket(fam, socket.SOCK_STREAM)
    lst.bind((host, 0))
    lst.listen(16)
    lst.setblocking(False)
    for _ in range(a.warmup):
        c, s = pair(lst, fam)
        c.send(b"w")
        select.select([s], [], [], 2)
        s.recv(1)
        c.close()
        s.close()
    if a.warmup:
        time.sleep(a.pause)
    c, s = pair(lst, fam)
    out = []
    c.send(b"hello")
    r, _, _ = select.select([s], [], [], 2)
    out.append("readable=%d" % bool(r))
    out.append("recv0=%r" % s.recv(64))
    c.send(b"!", socket.MSG_OOB)
    _, _, x = select.select([], [], [s], 2)
    out.append("select_exceptional=%d" % bool(x))
    p = select.poll()
    p.register(s, select.POLLIN | select.POLLPRI)
    ev = dict(p.poll(2000)).get(s.fileno(), 0)
    out.append("pollpri=%d" % bool(ev & select.POLLPRI))
    out.append("atmark=%d" % atmark(s))
    out.append("oob=%r" % s.recv(1, socket.MSG_OOB))
    c.send(b"after")
    select.select([s], [], [], 2)
    time.sleep(0.05)
    out.append("recv1=%r" % s.recv(64))
    try:
        s.recv(1, socket.MSG_OOB)
        out.append("oob_again=data")
    except OSError as e:
        out.append("oob_again=%s" % ("EINVAL" if e.errno == 22 else "errno%d" % e.errno))
    print("outcome: " + " ".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
