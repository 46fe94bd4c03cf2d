#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A thread asleep in recv() when its socket could join the fast path.

The server's thread blocks in recv() on the accepted socket while it is
still blocking; the main thread then makes the socket nonblocking (which
makes it eligible to join), sends a greeting so that the client's pure
ACK arrives for it (a segment the join hook sees), and the client sends
its request. The sleeping thread entered tcp_recvmsg() before any join:
redirected bytes would wake it and leave it asleep (they are not in
sk_receive_queue). It must get the request: exit 0, else 1 (2: setup).
"""
import socket
import sys
import threading
import time

ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen()
client = socket.create_connection(("127.0.0.1", ls.getsockname()[1]), timeout=5)
client.setblocking(False)
server, _ = ls.accept()
got = []
reader = threading.Thread(target=lambda: got.append(server.recv(100)), daemon=True)
reader.start()
time.sleep(0.2)           # the reader is asleep in recv() by now
server.setblocking(False)  # fcntl(O_NONBLOCK) under the sleeping reader
server.send(b"hello")      # the client ACKs it: a segment for the server end
deadline = time.monotonic() + 2
while time.monotonic() < deadline:
    try:
        if client.recv(100):
            break
    except BlockingIOError:
        time.sleep(0.01)
else:
    print("join_sleeper: no greeting")
    sys.exit(2)
time.sleep(0.1)            # room for a join to happen before the request
client.send(b"request")
reader.join(3)
print(f"join_sleeper: reader got {got!r}, still asleep: {reader.is_alive()}")
sys.exit(0 if got == [b"request"] else 1)
