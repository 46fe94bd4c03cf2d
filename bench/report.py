#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Helpers for bench/run.sh (stdlib only).

  report.py machine OUT.json KEY=VALUE...        machine/config record
  report.py record RAW.jsonl KEY=VALUE...        append one run, print a summary
  report.py pgbench OUT.json STDOUT LOGDIR KEY=VALUE...
                                                 one pgbench run as a JSON result
  report.py cost COST.jsonl KEY=VALUE...         append one bpf_stats run, print it
  report.py report DIR                           results.md, results.json, chart.svg

A run record holds the cell, variant, repetition, the sabench (or
redis-benchmark) result and, for sockaccel runs, the per-cgroup counters
of the benchmark's attached cgroup before and after (`sockaccel -j status`).
"""
import json
import math
import os
import statistics
import sys
import time

VARIANTS = ("plain", "sockaccel", "unix", "nohook", "floor", "unloaded")
VNAME = {"plain": "plain TCP", "sockaccel": "sockaccel", "unix": "AF_UNIX",
         "nohook": "sockaccel without join hook", "floor": "empty programs attached",
         "unloaded": "sockaccel not loaded"}
MAIN = ("plain", "sockaccel", "unix")   # the columns of the main table


def kv(args):
    d = {}
    for a in args:
        k, _, v = a.partition("=")
        d[k] = v
    return d


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception:
        return default


# ------------------------------------------------------------------ machine

def cmd_machine(out, args):
    d = kv(args)
    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    u = os.uname()
    info["kernel"] = u.release
    info["kernel_version"] = u.version
    info["arch"] = u.machine
    info["nproc"] = os.cpu_count()
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["cpu_model"] = model
    try:
        with open("/proc/meminfo") as f:
            info["mem_total"] = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        with open("/proc/loadavg") as f:
            info["loadavg_start"] = f.read().split()[:3]
    except OSError:
        pass
    try:
        with open("/sys/devices/system/clocksource/clocksource0/current_clocksource") as f:
            info["clocksource"] = f.read().strip()
    except OSError:
        pass
    for k, v in d.items():
        if k.endswith("_json"):
            info[k[:-5]] = load_json(v)
        elif k.startswith("loadavg"):
            info[k] = v.split()
        else:
            info[k] = v
    with open(out, "w") as f:
        json.dump(info, f, indent=1)


# ------------------------------------------------------------------ record

def cg_counters(status, cgpath, cgid):
    """Counters of our cgroup in a `sockaccel -j status` document, or None."""
    if not status or not status.get("loaded"):
        return None
    for c in status.get("cgroups", []):
        if c.get("path") == cgpath or str(c.get("id")) == str(cgid):
            return c.get("counters")
    return None


def delta(a, b):
    if a is None or b is None:
        return None
    d = {}
    for k, v in b.items():
        if isinstance(v, dict):
            d[k] = {kk: vv - a.get(k, {}).get(kk, 0) for kk, vv in v.items()}
        else:
            d[k] = v - a.get(k, 0)
    return d


def parse_redis_csv(path):
    out = {}
    try:
        with open(path) as f:
            lines = [l.strip() for l in f if l.strip().startswith('"')]
    except OSError:
        return out
    if not lines:
        return out
    hdr = [h.strip('"') for h in lines[0].split(",")]
    for l in lines[1:]:
        vals = [v.strip('"') for v in l.split(",")]
        row = dict(zip(hdr, vals))
        try:
            out[row["test"]] = {"rps": float(row["rps"]),
                                "p50_ms": float(row.get("p50_latency_ms", "nan")),
                                "p99_ms": float(row.get("p99_latency_ms", "nan")),
                                "avg_ms": float(row.get("avg_latency_ms", "nan"))}
        except (KeyError, ValueError):
            pass
    return out


def cmd_pgbench(out, stdout, logdir, args):
    """pgbench's stdout (tps) and per-transaction logs (-l: the third
    field is the transaction's latency in us) as one JSON result."""
    d = kv(args)
    res = {"tool": "pgbench", "mode": "pgbench", "transport": "tcp4",
           "script": d.get("script"), "size": 0, "conns": int(d.get("clients", 0)), "cpus": 0,
           "ok": False}
    tps = None
    try:
        with open(stdout) as f:
            for line in f:
                if line.startswith("tps = "):
                    tps = float(line.split()[2])
    except (OSError, ValueError, IndexError):
        pass
    lat = []
    try:
        for name in sorted(os.listdir(logdir)):
            with open(os.path.join(logdir, name)) as f:
                for line in f:
                    p = line.split()
                    if len(p) >= 3:
                        lat.append(int(p[2]))
    except (OSError, ValueError):
        pass
    lat.sort()

    def pct(q):
        i = max(0, min(len(lat) - 1, math.ceil(q / 100 * len(lat)) - 1))
        return lat[i] / 1e3
    if tps is not None and lat and d.get("rc", "0") == "0":
        res.update({"ok": True, "tps": tps, "transactions": len(lat),
                    "lat_p50_ms": pct(50), "lat_p99_ms": pct(99)})
    else:
        res["error"] = f"pgbench exit {d.get('rc')}, tps {tps}, {len(lat)} logged transactions"
    with open(out, "w") as f:
        f.write(json.dumps(res) + "\n")


def fmt_bytes(n):
    for u in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {u}" if u == "B" else f"{n:.1f} {u}"
        n /= 1000
    return f"{n:.1f} TB"


def last_json_line(path):
    """The last JSON object line a tool printed (sabench, saxfer, pgbench), or None."""
    res = None
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    res = json.loads(line)
    except (OSError, ValueError):
        res = None
    return res


def cmd_record(raw, args):
    d = kv(args)
    rec = {"cell": d["cell"], "variant": d["variant"], "rep": int(d["rep"]),
           "kind": d.get("kind", "sabench"), "rc": int(d.get("rc", 0)),
           "wall_s": float(d.get("wall", 0)), "ts": time.time()}
    if d.get("desc"):
        rec["desc"] = d["desc"]
    if rec["kind"] == "redis":
        res = parse_redis_csv(d["out"])
        rec["result"] = {"ok": bool(res) and rec["rc"] == 0, "tests": res,
                         "pipeline": int(d.get("pipeline", 1)), "requests": int(d.get("n", 0))}
    else:
        res = last_json_line(d["out"])
        if res is None:
            res = {"ok": False, "error": f"no result (exit {rec['rc']})"}
        if rec["rc"] != 0 and res.get("ok"):
            res["ok"] = False
            res["error"] = f"exit {rec['rc']}"
        rec["result"] = res
    if d["variant"] in ("sockaccel", "nohook"):
        a = cg_counters(load_json(d.get("before", ""), None), d.get("cgpath"), d.get("cgid"))
        b = cg_counters(load_json(d.get("after", ""), None), d.get("cgpath"), d.get("cgid"))
        rec["attached"] = a is not None and b is not None
        rec["sa"] = delta(a, b)
        if rec["sa"] and (rec["sa"].get("bytes_redirected", 0) < 0 or
                          rec["sa"].get("bytes_passed", 0) < 0):
            # Counters went backwards: the slot was reset or re-created.
            rec["sa_inconsistent"] = rec["sa"]
            rec["sa"] = None
    with open(raw, "a") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")

    # One-line summary for the progress display.
    r = rec["result"]
    if not r.get("ok"):
        s = "FAILED: " + str(r.get("error", "?"))
    elif rec["kind"] == "redis":
        s = "  ".join(f"{t} {v['rps']:.0f} rps" for t, v in r["tests"].items())
    elif r["mode"] == "stream":
        s = f"{r['mb_per_s']:.1f} MB/s, {r['cpu_s_per_gb']:.2f} CPU s/GB"
    elif r["mode"] == "rr":
        s = f"p50 {r['lat_p50_us']:.1f} us, p99 {r['lat_p99_us']:.1f} us, {r['ops_per_s']:.0f}/s"
    elif r["mode"] == "pgbench":
        s = f"{r['tps']:.0f} tps, p50 {r['lat_p50_ms']:.3f} ms, p99 {r['lat_p99_ms']:.3f} ms"
    elif r["mode"] == "xfer":
        s = f"{r['mb_per_s']:.1f} MB/s ({r['elapsed_s']:.2f} s)"
    else:
        s = f"{r['ops_per_s']:.0f} conn/s, p50 {r['lat_p50_us']:.1f} us"
    if d["variant"] in ("sockaccel", "nohook"):
        sa = rec.get("sa")
        if rec.get("sa_inconsistent"):
            s += "  [counters went backwards during the run: not counted]"
        elif sa is None:
            s += "  [NOT ATTACHED: counters missing]"
        else:
            red, pas = sa.get("bytes_redirected", 0), sa.get("bytes_passed", 0)
            tot = red + pas
            share = 100.0 * red / tot if tot else 0.0
            s += f"  [redirected {fmt_bytes(red)}, passed {fmt_bytes(pas)}: {share:.1f}% fast path"
            j, rj = sa.get("socks_joined", 0), sa.get("socks_rejoined", 0)
            if j or rj or sa.get("join_checks", 0):
                s += f"; joined {j}, rejoined {rj}, join checks {sa.get('join_checks', 0)}"
            s += "]"
    elif "tcp_out_segs" in r and r.get("ok") and d["variant"] == "plain":
        s += f"  [{r['tcp_out_segs']} TCP segs]"
    print(s)


def prog_stats(path):
    """sockaccel's programs (and the floor variant's, bench/floor.bpf.c) in a
    `bpftool -j prog show`: id -> (name, runs, ns)."""
    out = {}
    for p in load_json(path, []) or []:
        if str(p.get("name", "")).startswith(("sockaccel_", "floor_")):
            out[p["id"]] = (p["name"], p.get("run_cnt", 0), p.get("run_time_ns", 0))
    return out


def cmd_cost(path, args):
    """One run with kernel.bpf_stats_enabled=1: sockaccel's BPF time per operation."""
    d = kv(args)
    res = last_json_line(d["out"]) or {}
    a, b = prog_stats(d.get("before", "")), prog_stats(d.get("after", ""))
    progs = {}
    for pid, (name, runs, ns) in b.items():
        r0, n0 = a.get(pid, (name, 0, 0))[1:]
        if runs - r0 > 0:
            e = progs.setdefault(name, [0, 0])
            e[0] += runs - r0
            e[1] += ns - n0
    mode = res.get("mode")
    # Per operation for rr/crr (a request/response, a connection), per MB for streams.
    units = res.get("bytes", 0) / 1e6 if mode == "stream" else res.get("ops", 0)
    rec = {"cell": d["cell"], "variant": d["variant"], "ok": bool(res.get("ok")) and
           int(d.get("rc", 0)) == 0, "mode": mode, "units": units, "progs": progs,
           "cpu_us_per_op": res.get("cpu_us_per_op"), "cpu_s_per_gb": res.get("cpu_s_per_gb")}
    total = sum(v[1] for v in progs.values())
    rec["ns_per_unit"] = total / units if rec["ok"] and units else None
    with open(path, "a") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")
    unit = "MB" if mode == "stream" else "op"
    if rec["ns_per_unit"] is None:
        print(f"  cost {d['cell']} {d['variant']}: no result")
    else:
        print(f"  cost {d['cell']} {d['variant']}: sockaccel's programs {rec['ns_per_unit']:.0f} "
              f"ns/{unit} (bpf_stats)")


def load_costs(d):
    costs = {}
    try:
        with open(os.path.join(d, "cost.jsonl")) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    costs.setdefault(r["cell"], {})[r["variant"]] = r
    except OSError:
        pass
    return costs


def plain_cpu_ns_per_unit(c):
    """Plain TCP's process CPU time per cost unit: per MB for a stream (its
    ops are writes, not MB), per op otherwise. None if not measured."""
    m = c.get("metrics") or {}
    if c["mode"] == "stream":
        mm = m.get("cpu_s_per_gb")
        scale = 1e6     # s/GB = 1e9 ns per 1e3 MB
    else:
        mm = m.get("cpu_us_per_op")
        scale = 1e3
    v = mm["median"].get("plain") if mm else None
    return v * scale if v else None


def cost_lines(cells, costs):
    """The table of what sockaccel's programs cost per operation (bpf_stats)."""
    L = []
    rows = [c for c in cells if c["cell"] in costs]
    if not rows:
        return L
    L.append("")
    L.append("## What sockaccel's programs cost (bpf_stats)\n")
    L.append("One more 1 s run per variant after each cell's repetitions, with "
             "kernel.bpf_stats_enabled=1: the run time of sockaccel's BPF programs "
             "(run_time_ns, summed over every program whose name starts with sockaccel_) per "
             "operation (a request/response for rr, a connection for crr) or per MB (stream). "
             "Measured, not inferred from the ratios above, which the machine's noise moves "
             "by more than these costs. Plain TCP pays too: the guard's tracepoints run for "
             "every process; the floor column adds the floor variant's empty programs "
             "(floor_*). \"share\" is the sockaccel variant's cost over the process CPU "
             "time per unit of plain TCP in the same cell (CPU us/op, or CPU s/GB for streams, "
             "above): the most sockaccel "
             "can take from a connection that stays on TCP. The statistics add about 25 ns "
             "per program run (two clock reads), so these are upper bounds.\n")
    L.append("| cell | unit | plain TCP | sockaccel | sockaccel, no hook | floor | share | "
             "sockaccel's programs per unit (runs, ns) |")
    L.append("|---|---|---:|---:|---:|---:|---:|---|")
    for c in rows:
        cc = costs[c["cell"]]
        unit = "MB" if c["mode"] == "stream" else ("connection" if c["mode"] == "crr" else "req/resp")

        def ns(v):
            r = cc.get(v)
            return f"{r['ns_per_unit']:,.0f} ns" if r and r.get("ns_per_unit") is not None else "–"
        share = "–"
        sa = cc.get("sockaccel")
        plain_ns = plain_cpu_ns_per_unit(c)
        if sa and sa.get("ns_per_unit") is not None and plain_ns:
            share = f"{100.0 * sa['ns_per_unit'] / plain_ns:.1f}%"
        top = ""
        if sa and sa.get("units"):
            items = sorted(sa["progs"].items(), key=lambda x: -x[1][1])[:4]
            top = ", ".join(f"{n[len('sockaccel_'):]} {v[0] / sa['units']:.1f} x "
                            f"{v[1] / v[0]:.0f}" for n, v in items if v[0])
        L.append(f"| {c['cell']} | {unit} | {ns('plain')} | {ns('sockaccel')} | {ns('nohook')} "
                 f"| {ns('floor')} | {share} | {top} |")
    return L


# ------------------------------------------------------------------ report

# metric: (key in result, label, higher_is_better)
def metrics_for(mode):
    if mode == "stream":
        return [("mb_per_s", "MB/s", True)]
    if mode == "rr":
        return [("lat_p50_us", "p50 us", False), ("lat_p99_us", "p99 us", False),
                ("ops_per_s", "trans/s", True)]
    if mode == "crr":
        return [("ops_per_s", "conn/s", True), ("lat_p50_us", "p50 us", False),
                ("lat_p99_us", "p99 us", False)]
    if mode == "pgbench":
        return [("tps", "TPS", True), ("lat_p50_ms", "p50 ms", False),
                ("lat_p99_ms", "p99 ms", False)]
    if mode == "xfer":
        return [("mb_per_s", "MB/s", True)]
    return []


def med(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(xs) if xs else None


def spread(xs):
    """(max - min) / median, as a fraction."""
    xs = [x for x in xs if x is not None]
    if len(xs) < 2:
        return None
    m = statistics.median(xs)
    return (max(xs) - min(xs)) / m if m else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def f_val(v, unit=""):
    if v is None:
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def f_ratio(v):
    return "–" if v is None else f"{v:.2f}x"


def f_paired(mm, key="sockaccel_vs_plain_paired"):
    p = mm.get(key)
    return "" if p is None else f" ({p:.2f}x)"


def f_pct(v):
    return "–" if v is None else f"{100 * v:.0f}%"


def cell_sort_key(cell_order, c):
    return cell_order.index(c) if c in cell_order else len(cell_order)


def summarize(recs):
    """Group records into cells with per-variant medians."""
    cells = {}
    order = []
    for r in recs:
        c = r["cell"]
        if c not in cells:
            cells[c] = {"runs": {v: [] for v in VARIANTS}, "failed": {v: 0 for v in VARIANTS},
                        "kind": r["kind"]}
            order.append(c)
        v = r["variant"]
        cells[c]["runs"].setdefault(v, [])
        cells[c]["failed"].setdefault(v, 0)
        if r["result"].get("ok"):
            cells[c]["runs"][v].append(r)
        else:
            cells[c]["failed"][v] += 1
    out = []
    for c in order:
        cell = cells[c]
        info = {"cell": c, "kind": cell["kind"], "failed": cell["failed"],
                "reps": {v: len(cell["runs"][v]) for v in cell["runs"]}}
        if cell["kind"] == "redis":
            info.update(summarize_redis(cell))
        else:
            info.update(summarize_sabench(cell))
        out.append(info)
    return out


def sa_share(runs):
    red = pas = 0
    detached = 0
    reasons = {}
    joins = {"socks_joined": 0, "socks_rejoined": 0, "join_checks": 0, "sender_pauses": 0,
             "drain_waits": 0, "drain_wait_ok": 0}
    for r in runs:
        sa = r.get("sa")
        if sa is None:
            detached += 1
            continue
        red += sa.get("bytes_redirected", 0)
        pas += sa.get("bytes_passed", 0)
        for k, v in (sa.get("pass_reasons") or {}).items():
            if v:
                reasons[k] = reasons.get(k, 0) + v
        for k in joins:
            joins[k] += sa.get(k, 0)
    tot = red + pas
    return {"bytes_redirected": red, "bytes_passed": pas,
            "redirected_share": (red / tot) if tot else None,
            "pass_reasons": reasons, "runs_without_counters": detached, "joins": joins}


def paired_ratio(cell, key, a="sockaccel", b="plain"):
    """Median over repetitions of a/b within each repetition (its runs were
    adjacent in time): less moved by the machine's slow drifts than the
    ratio of the medians."""
    by_rep = {r["rep"]: r["result"].get(key) for r in cell["runs"].get(b, [])}
    xs = [ratio(r["result"].get(key), by_rep.get(r["rep"])) for r in cell["runs"].get(a, [])]
    return med(xs)


def summarize_sabench(cell):
    any_run = next((rs[0] for rs in cell["runs"].values() if rs), None)
    if any_run is None:
        return {"mode": None, "metrics": {}}
    res0 = any_run["result"]
    mode = res0["mode"]
    info = {"mode": mode, "size": res0["size"], "conns": res0["conns"], "cpus": res0["cpus"],
            "tool": res0.get("tool"), "io": res0.get("io"), "script": res0.get("script"),
            "desc": any_run.get("desc"), "variants": [v for v in VARIANTS
                                                      if cell["runs"].get(v) or
                                                      cell["failed"].get(v)],
            "metrics": {}}
    mlist = metrics_for(mode) + [("cpu_s_per_gb", "CPU s/GB", False),
                                 ("cpu_us_per_op", "CPU us/op", False)]
    for key, label, hib in mlist:
        m = {"label": label, "higher_is_better": hib, "values": {}, "median": {},
             "spread": {}}
        for v in VARIANTS:
            xs = [r["result"].get(key) for r in cell["runs"].get(v, [])]
            m["values"][v] = xs
            m["median"][v] = med(xs)
            m["spread"][v] = spread(xs)
        m["sockaccel_vs_plain"] = ratio(m["median"]["sockaccel"], m["median"]["plain"])
        m["sockaccel_vs_plain_paired"] = paired_ratio(cell, key)
        m["unix_vs_plain"] = ratio(m["median"]["unix"], m["median"]["plain"])
        m["nohook_vs_plain"] = ratio(m["median"]["nohook"], m["median"]["plain"])
        m["sockaccel_vs_nohook"] = ratio(m["median"]["sockaccel"], m["median"]["nohook"])
        m["floor_vs_plain"] = ratio(m["median"]["floor"], m["median"]["plain"])
        m["floor_vs_plain_paired"] = paired_ratio(cell, key, "floor")
        m["sockaccel_vs_floor"] = ratio(m["median"]["sockaccel"], m["median"]["floor"])
        m["sockaccel_vs_floor_paired"] = paired_ratio(cell, key, "sockaccel", "floor")
        m["plain_vs_unloaded"] = ratio(m["median"]["plain"], m["median"]["unloaded"])
        m["plain_vs_unloaded_paired"] = paired_ratio(cell, key, "plain", "unloaded")
        info["metrics"][key] = m
    # Machine-wide busy CPU (includes kworkers/softirq, and anybody else).
    hb = {}
    for v in VARIANTS:
        xs = []
        for r in cell["runs"].get(v, []):
            res = r["result"]
            if res.get("host_busy_s", -1) >= 0 and res.get("bytes"):
                xs.append(res["host_busy_s"] / (res["bytes"] / 1e9))
        hb[v] = med(xs)
    info["host_cpu_s_per_gb"] = hb
    ot = {}
    for v in VARIANTS:
        xs = []
        for r in cell["runs"].get(v, []):
            res = r["result"]
            if res.get("host_busy_s", -1) >= 0 and res.get("elapsed_s"):
                xs.append((res["host_busy_s"] - res["cpu_s"]) / res["elapsed_s"])
        ot[v] = med(xs)
    info["outside_cpus"] = ot
    info["tcp_out_segs"] = {v: med([r["result"].get("tcp_out_segs") for r in
                                    cell["runs"].get(v, [])]) for v in VARIANTS}
    info["sockaccel_counters"] = sa_share(cell["runs"].get("sockaccel", []))
    if cell["runs"].get("nohook"):
        info["nohook_counters"] = sa_share(cell["runs"]["nohook"])
    return info


def summarize_redis(cell):
    info = {"mode": "redis", "metrics": {}}
    tests = set()
    for rs in cell["runs"].values():
        for r in rs:
            tests.update(r["result"]["tests"].keys())
    info["pipeline"] = next((r["result"]["pipeline"] for rs in cell["runs"].values()
                             for r in rs), None)
    for t in sorted(tests, reverse=True):   # SET before GET
        for key, label, hib in (("rps", "req/s", True), ("p50_ms", "p50 ms", False)):
            m = {"label": f"{t} {label}", "higher_is_better": hib, "values": {}, "median": {},
                 "spread": {}}
            for v in ("plain", "sockaccel"):
                xs = [r["result"]["tests"].get(t, {}).get(key) for r in cell["runs"].get(v, [])]
                m["values"][v] = xs
                m["median"][v] = med(xs)
                m["spread"][v] = spread(xs)
            m["median"]["unix"] = None
            m["sockaccel_vs_plain"] = ratio(m["median"]["sockaccel"], m["median"]["plain"])
            m["unix_vs_plain"] = None
            info["metrics"][f"{t}_{key}"] = m
    info["sockaccel_counters"] = sa_share(cell["runs"].get("sockaccel", []))
    return info


def describe(c):
    if c.get("desc"):
        return c["desc"]
    if c["mode"] == "stream":
        w = human_size(c["size"])
        if c["conns"] > 1:
            return f"{c['conns']} streams, {w} writes, {c['cpus']} CPU"
        return f"stream, {w} writes, {c['cpus']} CPU"
    if c["mode"] == "rr":
        return f"req/resp {human_size(c['size'])}, {c['cpus']} CPU"
    if c["mode"] == "crr":
        return f"connect+64 B req/resp+close, {c['cpus']} CPU"
    if c["mode"] == "redis":
        return f"redis-benchmark -P {c['pipeline']}"
    if c["mode"] == "pgbench":
        script = {"select": "-S (select only)", "tpcb": "TPC-B-like"}.get(c.get("script"),
                                                                          c.get("script"))
        return f"PostgreSQL, pgbench {script}, {c['conns']} clients, scale 2"
    return c["cell"]


def human_size(n):
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n >> 10} KiB"
    return f"{n} B"


def primary(c):
    """(metric key, speedup of sockaccel, speedup of unix), >1 = better."""
    ms = c["metrics"]
    if not ms:
        return None, None, None
    if c["mode"] == "stream":
        key = "mb_per_s"
    elif c["mode"] == "rr":
        key = "lat_p50_us"
    elif c["mode"] == "crr":
        key = "ops_per_s"
    elif c["mode"] == "pgbench":
        key = "tps"
    elif c["mode"] == "xfer":
        key = "mb_per_s"
    else:
        key = next(iter(ms))
    m = ms[key]

    def sp(r):
        if r is None or r == 0:
            return None
        return r if m["higher_is_better"] else 1.0 / r
    return key, sp(m["sockaccel_vs_plain"]), sp(m["unix_vs_plain"])


def fast_path_text(c):
    sc = c.get("sockaccel_counters") or {}
    sh = sc.get("redirected_share")
    if sc.get("runs_without_counters"):
        return f"{f_pct(sh)} ({sc['runs_without_counters']} run(s) without valid counters)"
    if sh is None:
        return "no bytes counted"
    return f"{f_pct(sh)} of {fmt_bytes(sc['bytes_redirected'] + sc['bytes_passed'])}"


def three_way_rows(cells, variants, ratios, extra=None):
    """Rows of a table comparing three variants of the same cells: each
    metric's medians, the ratios named by (key, paired key or None), the
    spreads, and extra(cell) in a last column on the cell's first row."""
    L = []
    for c in cells:
        keys = [k for k in c["metrics"] if k not in ("cpu_s_per_gb",)]
        for i, k in enumerate(keys):
            mm = c["metrics"][k]
            name = f"**{c['cell']}**<br>{describe(c)}" if i == 0 else ""
            cols = [name, mm["label"]] + [f_val(mm["median"][v]) for v in variants]
            cols += [f_ratio(mm[r]) + (f_paired(mm, p) if p else "") for r, p in ratios]
            cols.append("/".join(f_pct(mm["spread"].get(v)) for v in variants))
            if extra:
                cols.append(extra(c) if i == 0 else "")
            L.append("| " + " | ".join(cols) + " |")
    return L


def is_bystander(c):
    """A cell that measures what loading sockaccel costs plain TCP (its
    plain variant against an unloaded one), not sockaccel against TCP."""
    return "unloaded" in (c.get("variants") or [])


def write_md(path, machine, cells, bystander, raw_count, wall, costs):
    bystander = [c for c in bystander if c["metrics"]]
    L = []
    L.append("# sockaccel benchmark results\n")
    m = machine or {}
    cfg = m.get("config", {}) or {}
    L.append(f"- date: {m.get('date')}, git {m.get('git', '?')}")
    L.append(f"- kernel {m.get('kernel')} ({m.get('arch')}), CPU: {m.get('cpu_model')}, "
             f"nproc {m.get('nproc')}, {m.get('mem_total', '')} RAM, clocksource "
             f"{m.get('clocksource', '?')}")
    L.append(f"- load average at start {' '.join(m.get('loadavg_start') or [])}, at end "
             f"{' '.join(m.get('loadavg_end') or [])}")
    L.append(f"- repetitions per variant: {m.get('reps')}, seconds per run: {m.get('seconds')}, "
             f"runs recorded: {raw_count}, total wall time: {wall}")
    ks = m.get("sockaccel_status") or {}
    if ks:
        L.append(f"- sockaccel kernel probe: {json.dumps(ks.get('kernel'))}, backlog_limit "
                 f"{ks.get('backlog_limit')}")
    if m.get("join_hook"):
        L.append(f"- {m['join_hook']}")
    L.append("- values are medians over the repetitions; variants were interleaved "
             "(plain, sockaccel, AF_UNIX, rotating order) within every cell.")
    L.append("- ratios are variant / plain TCP of the same metric: for MB/s, conn/s, trans/s, "
             "req/s above 1.00x is better; for latencies (us, ms) and CPU s/GB below 1.00x is "
             "better.")
    L.append("- spread = (max - min) / median over the repetitions "
             "(plain / sockaccel / AF_UNIX).")
    L.append("- in parentheses after sockaccel/plain: the paired ratio, the median over "
             "repetitions of sockaccel/plain within each repetition (two runs adjacent in "
             "time), less moved by slow drifts of the machine's load.")
    L.append("")
    L.append("## Throughput and latency\n")
    L.append("| cell | metric | plain TCP | sockaccel | AF_UNIX | sockaccel/plain (paired) | "
             "AF_UNIX/plain | spread p/s/u | sockaccel fast path (bytes redirected) |")
    L.append("|---|---|---:|---:|---:|---:|---:|---|---|")
    for c in cells:
        if not c["metrics"]:
            L.append(f"| {c['cell']} | (no successful run) | | | | | | | |")
            continue
        keys = [k for k in c["metrics"] if k not in ("cpu_s_per_gb", "cpu_us_per_op")]
        if c["mode"] == "stream":
            keys.append("cpu_s_per_gb")
        elif c["mode"] in ("rr", "crr"):
            keys.append("cpu_us_per_op")
        shown = [v for v in MAIN if c["mode"] != "redis" and v in c.get("variants", MAIN)] \
            if c["mode"] != "redis" else ["plain", "sockaccel"]
        for i, k in enumerate(keys):
            mm = c["metrics"][k]
            sp = "/".join(f_pct(mm["spread"].get(v)) for v in shown)
            name = f"**{c['cell']}**<br>{describe(c)}" if i == 0 else ""
            fp = fast_path_text(c) if i == 0 else ""
            L.append(f"| {name} | {mm['label']} | {f_val(mm['median']['plain'])} | "
                     f"{f_val(mm['median']['sockaccel'])} | {f_val(mm['median'].get('unix'))} | "
                     f"{f_ratio(mm['sockaccel_vs_plain'])}{f_paired(mm)} | "
                     f"{f_ratio(mm['unix_vs_plain'])} | {sp} | {fp} |")
    L.append("")
    L.append("## CPU outside the benchmark process\n")
    L.append("CPU s/GB and CPU us/op above are the sabench process only (both ends, "
             "CLOCK_PROCESS_CPUTIME_ID). Machine CPU s/GB is the busy time of all CPUs "
             "(/proc/stat) per 1e9 bytes moved; 'outside' is machine busy minus process CPU per "
             "second of run, in CPUs: work done in kworkers/ksoftirqd on the benchmark's "
             "behalf, plus anything else running on the machine (noise).\n")
    L.append("| cell | machine CPU s/GB plain | sockaccel | AF_UNIX | outside CPUs plain | "
             "sockaccel | AF_UNIX |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for c in cells:
        if c["mode"] not in ("stream", "rr", "crr"):
            continue
        hb = c.get("host_cpu_s_per_gb") or {}
        ot = c.get("outside_cpus") or {}
        L.append(f"| {c['cell']} | {f_val(hb.get('plain'))} | {f_val(hb.get('sockaccel'))} | "
                 f"{f_val(hb.get('unix'))} | {f_val(ot.get('plain'))} | "
                 f"{f_val(ot.get('sockaccel'))} | {f_val(ot.get('unix'))} |")
    L.append("")
    L.append("## Did the fast path run?\n")
    L.append("Per cell, summed over the sockaccel repetitions: bytes the sk_msg program "
             "redirected vs passed to TCP (counters of the benchmark's own attached cgroup), "
             "pass reasons, and the median TcpOutSegs of the namespace per run (plain TCP vs "
             "sockaccel; handshakes and FINs are a few segments per connection).\n")
    L.append("Joined / rejoined: sockets the join hook inserted after establishment / "
             "that came back after leaving (summed over the runs; sender pauses and drain "
             "waits in results.json).\n")
    L.append("| cell | bytes redirected | bytes passed | redirected share | pass reasons | "
             "joined / rejoined | TCP segs/run plain | TCP segs/run sockaccel |")
    L.append("|---|---:|---:|---:|---|---:|---:|---:|")
    for c in cells:
        sc = c.get("sockaccel_counters") or {}
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(sc.get("pass_reasons", {}).items(),
                                                          key=lambda x: -x[1])) or "–"
        if sc.get("runs_without_counters"):
            reasons += (f" ({sc['runs_without_counters']} run(s) without valid counters: "
                        f"cgroup detached or counters reset by someone else)")
        segs = c.get("tcp_out_segs") or {}
        jn = sc.get("joins") or {}
        L.append(f"| {c['cell']} | {fmt_bytes(sc.get('bytes_redirected', 0))} | "
                 f"{fmt_bytes(sc.get('bytes_passed', 0))} | {f_pct(sc.get('redirected_share'))} "
                 f"| {reasons} | {jn.get('socks_joined', 0)} / {jn.get('socks_rejoined', 0)} "
                 f"| {f_val(segs.get('plain'))} | {f_val(segs.get('sockaccel'))} |")
    hook = [c for c in cells if "nohook" in (c.get("variants") or []) and c["metrics"]]
    if hook:
        L.append("")
        L.append("## What the join hook costs connections that never join\n")
        L.append("Blocking sockets stay on TCP (this kernel's tcp_bpf_recvmsg() is unsafe for "
                 "blocking readers), so these connections never join and are no join "
                 "candidates (a blocking client is passed for good; the server end of a "
                 "client that is not in is too); the hook still runs on every segment "
                 "loopback delivers (one array read while no socket anywhere is a "
                 "candidate). \"no hook\": the same attached cgroup in a second namespace "
                 "whose lo has no hook (connections decided at establishment only). All "
                 "three interleaved.\n")
        L.append("| cell | metric | plain TCP | sockaccel, hook | sockaccel, no hook | "
                 "hook/plain | no hook/plain | hook/no hook | spread p/h/n | join checks/run |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---|---:|")
        def join_checks(c):
            nruns = max(c["reps"].get("sockaccel", 0), 1)
            return f_val((c["sockaccel_counters"].get("joins") or {}).get("join_checks", 0) / nruns)
        L.extend(three_way_rows(hook, ("plain", "sockaccel", "nohook"),
                                (("sockaccel_vs_plain", None), ("nohook_vs_plain", None),
                                 ("sockaccel_vs_nohook", None)), join_checks))
    floor = [c for c in cells if "floor" in (c.get("variants") or []) and c["metrics"]]
    if floor:
        L.append("")
        L.append("## What attaching costs: the floor\n")
        L.append("These connections stay on TCP by design (short connections, blocking sockets, "
                 "a new executable on probation), so sockaccel can only cost them. \"floor\": "
                 "a third cgroup with empty programs at the three cgroup hooks sockaccel "
                 "attaches (sock_ops, getsockopt, setsockopt; bench/floor.bpf.c), the same "
                 "namespace: what the kernel charges for running any program there, before "
                 "anything is decided. floor/plain is that charge; sockaccel/floor is what "
                 "sockaccel's decisions add. Paired ratios in parentheses. All variants "
                 "interleaved.\n")
        L.append("| cell | metric | plain TCP | floor | sockaccel | floor/plain | "
                 "sockaccel/plain | sockaccel/floor | spread p/f/s |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
        L.extend(three_way_rows(floor, ("plain", "floor", "sockaccel"),
                                (("floor_vs_plain", "floor_vs_plain_paired"),
                                 ("sockaccel_vs_plain", "sockaccel_vs_plain_paired"),
                                 ("sockaccel_vs_floor", "sockaccel_vs_floor_paired"))))
    if bystander:
        L.append("")
        L.append("## What loading sockaccel costs processes it does not serve\n")
        L.append("Plain TCP in the cgroup that is not attached, with sockaccel loaded "
                 "(\"loaded\": the plain TCP baseline of every table above) and not loaded "
                 "at all (\"unloaded\": sockaccel unloaded just before the run and loaded "
                 "again after it). The guard's syscall tracepoints (bpf/guard.bpf.c) run for "
                 "every process on the machine, and the join hook for every segment on the "
                 "loopback of the namespace sockaccel was loaded in; \"nohook\" cells run in "
                 "a namespace without a join hook, as a pod's own. loaded/unloaded is what "
                 "loading costs such a process (below 1.00x for rates, above for latencies "
                 "is a cost). Paired ratios in parentheses. Both variants interleaved. "
                 "Measured only when the benchmark loaded sockaccel itself.\n")
        L.append("| cell | metric | unloaded | loaded | loaded/unloaded | spread u/l |")
        L.append("|---|---|---:|---:|---:|---|")
        L.extend(three_way_rows(bystander, ("unloaded", "plain"),
                                (("plain_vs_unloaded", "plain_vs_unloaded_paired"),)))
    L.extend(cost_lines(cells, costs))
    noisy = [(c["cell"], v, o) for c in cells for v, o in (c.get("outside_cpus") or {}).items()
             if o is not None and o > 0.3]
    if noisy:
        L.append("")
        L.append("## Disturbed cells\n")
        L.append("Median CPU used outside the benchmark process above 0.3 CPUs during the run "
                 "(other load on the machine, or kernel threads working for the benchmark); "
                 "treat these numbers with care:\n")
        for cell, v, o in noisy:
            L.append(f"- {cell} / {VNAME.get(v, v)}: {o:.2f} CPUs outside")
    fails = [(c["cell"], v, n) for c in cells for v, n in c["failed"].items() if n]
    if fails:
        L.append("")
        L.append("## Failed runs\n")
        for cell, v, n in fails:
            L.append(f"- {cell} / {VNAME.get(v, v)}: {n} failed run(s), see raw.jsonl")
    L.append("")
    L.append("![speedup chart](chart.svg)")
    L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


def esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def chart_rows(cells):
    """(label, sockaccel speedup, AF_UNIX speedup) per bar group; >1 = better."""
    rows = []
    for c in cells:
        if c["mode"] == "redis":
            for k, m in c["metrics"].items():
                if k.endswith("_rps"):
                    rows.append((f"{c['cell']} {k[:-4]} (req/s)", m["sockaccel_vs_plain"], None))
            continue
        key, s_sa, s_un = primary(c)
        if key is None:
            continue
        lab = {"mb_per_s": "MB/s", "lat_p50_us": "p50 latency", "ops_per_s": "conn/s",
               "tps": "TPS"}[key]
        rows.append((f"{c['cell']} ({lab})", s_sa, s_un))
    return rows


def write_svg(path, cells, machine):
    rows = chart_rows(cells)
    n = max(len(rows), 1)
    gw = 46                       # group width
    left, right, top, bottom = 60, 150, 80, 190
    W = max(left + right + gw * n, 760)
    H = 560
    ph = H - top - bottom
    vals = [v for r in rows for v in r[1:] if v is not None]
    vmax = max(vals + [1.0]) * 1.12
    vmax = math.ceil(vmax * 2) / 2
    pr = left + gw * n            # right end of the plot area

    def y(v):
        return top + ph - ph * (min(v, vmax) / vmax)
    o = []
    o.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">')
    o.append(f'<rect width="{W}" height="{H}" fill="white"/>')
    m = machine or {}
    o.append(f'<text x="{left}" y="22" font-size="15" font-weight="bold">sockaccel benchmark: '
             f'speedup over plain loopback TCP (median; higher is better)</text>')
    o.append(f'<text x="{left}" y="40" fill="#444">kernel {esc(m.get("kernel", ""))}, '
             f'{esc(m.get("cpu_model", ""))}, {esc(m.get("nproc", ""))} CPUs; '
             f'{esc(m.get("reps", ""))} reps x {esc(m.get("seconds", ""))} s per run; '
             f'{esc(m.get("date", ""))}</text>')
    o.append(f'<text x="{left}" y="55" fill="#444">Throughput cells (MB/s, conn/s, req/s): '
             f'variant / plain. Latency cells (rr, p50): plain / variant.</text>')
    o.append(f'<rect x="{left}" y="63" width="12" height="10" fill="#1f77b4"/>'
             f'<text x="{left + 16}" y="72">sockaccel / plain</text>'
             f'<rect x="{left + 130}" y="63" width="12" height="10" fill="#aaaaaa"/>'
             f'<text x="{left + 146}" y="72">AF_UNIX / plain</text>')
    step = 0.25 if vmax <= 2 else 0.5 if vmax <= 4 else 1.0 if vmax <= 10 else 2.0
    t = 0.0
    while t <= vmax + 1e-9:
        yy = y(t)
        o.append(f'<line x1="{left}" x2="{pr}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>')
        o.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{t:.2f}</text>')
        t += step
    o.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#333"/>')
    o.append(f'<line x1="{left}" x2="{pr}" y1="{top + ph}" y2="{top + ph}" stroke="#333"/>')
    bw = 18
    for i, (lab, s_sa, s_un) in enumerate(rows):
        x0 = left + i * gw + (gw - 2 * bw) / 2
        for j, (v, col) in enumerate(((s_sa, "#1f77b4"), (s_un, "#aaaaaa"))):
            x = x0 + j * bw
            if v is None:
                continue
            yy = y(v)
            o.append(f'<rect x="{x:.1f}" y="{yy:.1f}" width="{bw - 2}" '
                     f'height="{top + ph - yy:.1f}" fill="{col}"><title>{esc(lab)}: '
                     f'{v:.2f}x</title></rect>')
            o.append(f'<text x="{x + (bw - 2) / 2:.1f}" y="{yy - 3:.1f}" text-anchor="middle" '
                     f'font-size="8">{v:.2f}</text>')
        cx = left + i * gw + gw / 2 - 3
        o.append(f'<text transform="translate({cx:.1f},{top + ph + 10}) rotate(50)" '
                 f'font-size="10">{esc(lab)}</text>')
    y1 = y(1.0)
    o.append(f'<line x1="{left}" x2="{pr}" y1="{y1:.1f}" y2="{y1:.1f}" stroke="#d62728" '
             f'stroke-width="1.5" stroke-dasharray="6,3"/>')
    o.append(f'<text x="{pr + 6}" y="{y1 + 4:.1f}" fill="#d62728">1.0 = plain TCP</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def cmd_report(d):
    raw = os.path.join(d, "raw.jsonl")
    recs = []
    with open(raw) as f:
        for line in f:
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    machine = load_json(os.path.join(d, "machine.json"), {})
    wall = machine.get("wall_time", "?")
    cells = summarize(recs)
    costs = load_costs(d)
    out = {"machine": machine, "cells": cells, "bpf_cost": costs}
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump(out, f, indent=1)
    bystander = [c for c in cells if is_bystander(c)]
    cells = [c for c in cells if not is_bystander(c)]
    write_md(os.path.join(d, "results.md"), machine, cells, bystander, len(recs), wall, costs)
    write_svg(os.path.join(d, "chart.svg"), cells, machine)


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    cmd = sys.argv[1]
    if cmd == "machine":
        cmd_machine(sys.argv[2], sys.argv[3:])
    elif cmd == "record":
        cmd_record(sys.argv[2], sys.argv[3:])
    elif cmd == "pgbench" and len(sys.argv) >= 5:
        cmd_pgbench(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    elif cmd == "cost":
        cmd_cost(sys.argv[2], sys.argv[3:])
    elif cmd == "report":
        cmd_report(sys.argv[2])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
