#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""xfer.py: one timed, verified transfer with build/tests/saxfer, for the
bench's stalled-reader and late-join cells. Runs server and client as
children (so both inherit this process's cgroup and network namespace),
times the client from its start to its exit (it exits once the server has
checked every byte and answered), and prints one JSON line in sabench's
style: {"tool":"saxfer","mode":"xfer","ok":...,"bytes":N,"mb_per_s":...}.

  xfer.py --saxfer PATH [--bytes N] [--write-size N] [--timeout S]
          [--conns N] [--server-arg ARG]...    e.g. --server-arg=--late-nonblock
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--saxfer", required=True)
    ap.add_argument("--bytes", type=int, default=100_000_000)
    ap.add_argument("--write-size", type=int, default=65536)
    ap.add_argument("--timeout", type=int, default=60)
    ap.add_argument("--conns", type=int, default=1, help="serial transfers (warm-up)")
    ap.add_argument("--server-arg", action="append", default=[])
    a = ap.parse_args()
    res = {"tool": "saxfer", "mode": "xfer", "transport": "tcp4", "size": a.write_size,
           "conns": 1, "cpus": 0, "server_args": " ".join(a.server_arg), "ok": False}
    with tempfile.TemporaryDirectory(prefix="xfer.") as d:
        pf = os.path.join(d, "port")
        srv = subprocess.Popen([a.saxfer, "server", "--listen", "127.0.0.1:0", "--port-file", pf,
                                "--conns", str(a.conns), "--quiet", "--timeout", str(a.timeout)]
                               + a.server_arg, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and srv.poll() is None:
            try:
                with open(pf) as f:
                    port = int(f.read().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.005)
        if port is None:
            srv.kill()
            res["error"] = "server did not start: " + (srv.communicate()[1] or "")[-200:]
            print(json.dumps(res))
            return 1
        t0 = time.monotonic()
        cli = subprocess.run([a.saxfer, "client", "--connect", f"127.0.0.1:{port}",
                              "--bytes", str(a.bytes), "--write-size", str(a.write_size),
                              "--conns", str(a.conns),
                              "--quiet", "--timeout", str(a.timeout)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        el = time.monotonic() - t0
        try:
            srv_err = srv.communicate(timeout=10)[1]
        except subprocess.TimeoutExpired:
            srv.kill()
            srv_err = "server did not exit"
    res.update({"elapsed_s": el, "bytes": a.bytes * a.conns,
                "mb_per_s": a.bytes * a.conns / 1e6 / el,
                "client_rc": cli.returncode, "server_rc": srv.returncode})
    if cli.returncode == 0 and srv.returncode == 0:
        res["ok"] = True
    else:
        res["error"] = (f"client exit {cli.returncode}, server exit {srv.returncode}: "
                        f"{(cli.stderr or '').strip()[-150:]} {(srv_err or '').strip()[-150:]}")
    print(json.dumps(res))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
