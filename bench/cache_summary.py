#!/usr/bin/env python3
"""Summarise bench/cache.sh's raw.tsv as markdown tables, ratios and target checks.

usage: cache_summary.py RAW_TSV CLK_TCK

Per workload and target: median rps (min-max over the rounds), median p50/p99, the
respite cache hit ratio (hits / (hits + misses) over all rounds, from RESPITE CACHE
STATS before and after each round), upstream GETs per client request (Redis's
cmdstat_get calls delta / requests), CPU per request of the proxy and of the delay
relay.  Then the respite/direct and respite/twemproxy ratios of the medians, and the
targets of the near-cache issue as PASS/MISS lines.
"""
import csv
import statistics
import sys

TARGET_ORDER = ["direct", "twemproxy", "respite", "respite-nocache"]


def num(x):
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if v != v else v


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    path, clk_tck = sys.argv[1], float(sys.argv[2])
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    workloads, desc, targets = [], {}, []
    for r in rows:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
            desc[r["workload"]] = r["desc"]
        if r["target"] not in targets:
            targets.append(r["target"])
    targets.sort(key=lambda t: TARGET_ORDER.index(t) if t in TARGET_ORDER else 99)

    S = {}
    for w in workloads:
        for t in targets:
            runs = [r for r in rows if r["workload"] == w and r["target"] == t]
            if not runs:
                continue
            ok = [r for r in runs if r["status"] == "ok"]
            s = {"runs": len(runs), "ok": len(ok)}
            rps = [num(r["rps"]) for r in ok]
            s["rps"] = med(rps)
            good = [v for v in rps if v is not None]
            s["rps_min"] = min(good) if good else None
            s["rps_max"] = max(good) if good else None
            s["p50"] = med([num(r["p50_ms"]) for r in ok])
            s["p99"] = med([num(r["p99_ms"]) for r in ok])
            hits = [num(r["hits"]) for r in ok]
            misses = [num(r["misses"]) for r in ok]
            if ok and all(h is not None for h in hits) and all(m is not None for m in misses):
                tot = sum(hits) + sum(misses)
                s["hit"] = sum(hits) / tot if tot else None
                s["hit_rounds"] = [h / (h + m) if h + m else None for h, m in zip(hits, misses)]
            else:
                s["hit"] = None
                s["hit_rounds"] = []
            nreq = sum(num(r["requests"]) or 0 for r in ok)
            ups = [num(r["upstream_gets"]) for r in ok]
            s["upstream"] = (sum(u for u in ups if u is not None) / nreq
                             if nreq and all(u is not None for u in ups) else None)
            us = 1e6 / clk_tck
            pt = sum(num(r["proxy_ticks"]) or 0 for r in ok)
            rt = [num(r["relay_ticks"]) for r in ok]
            s["proxy_us"] = pt * us / nreq if nreq and t != "direct" else None
            s["relay_us"] = (sum(x for x in rt if x is not None) * us / nreq
                             if nreq and all(x is not None for x in rt) else None)
            s["errors"] = sum(int(num(r["errors"]) or 0) for r in runs)
            s["nil"] = sum(int(num(r["nil"]) or 0) for r in runs)
            S[(w, t)] = s

    print("## Per target (median of rounds)")
    print()
    print("| workload | target | ok/runs | rps (median) | rps min–max | p50 ms | p99 ms "
          "| hit ratio | upstream GETs/req | proxy CPU µs/req | relay CPU µs/req | errors / nil |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        for t in targets:
            s = S.get((w, t))
            if not s:
                continue
            spread = ("—" if s["rps_min"] is None else f"{s['rps_min']:,.0f}–{s['rps_max']:,.0f}")
            hit = "—" if t != "respite" else ("n/a" if s["hit"] is None else f"{s['hit']:.4f}")
            print(f"| {w} | {t} | {s['ok']}/{s['runs']} | {fmt(s['rps'], ',.0f')} | {spread} "
                  f"| {fmt(s['p50'], '.3f')} | {fmt(s['p99'], '.3f')} | {hit} "
                  f"| {fmt(s['upstream'], '.4f')} | {fmt(s['proxy_us'], '.2f')} "
                  f"| {fmt(s['relay_us'], '.2f')} | {s['errors']} / {s['nil']} |")
    print()
    print("Workloads:")
    print()
    for w in workloads:
        print(f"- `{w}`: {desc[w]}")
    print()
    print("hit ratio = hits / (hits + misses) of RESPITE CACHE STATS, summed over the rounds "
          "(per round in the log). upstream GETs/req = Redis's cmdstat_get calls during the "
          "rounds / client requests (1 for pass-through, slightly above 1 for getload runs, whose "
          "requests still in flight at the end are not counted; about the miss ratio for a "
          "cache). CPU µs/req = utime+stime ticks (10 ms) during the rounds / requests; the relay "
          "column is the delay relay of that target (direct: client -> relay -> redis). "
          "errors / nil are counted by getload only (redis-benchmark does not check replies).")
    print()

    print("## Ratios (medians of rounds; rps: higher is better, p50: lower is better)")
    print()
    nocache = any(t == "respite-nocache" for t in targets)
    print("| workload | rps respite/direct | rps respite/twemproxy | p50 respite/direct "
          "| p50 respite/twemproxy | rps twemproxy/direct |"
          + (" rps respite/respite-nocache |" if nocache else ""))
    print("|---|---:|---:|---:|---:|---:|" + ("---:|" if nocache else ""))
    for w in workloads:
        d, tw, rs = S.get((w, "direct")), S.get((w, "twemproxy")), S.get((w, "respite"))
        nc = S.get((w, "respite-nocache"))
        g = lambda s, k: s[k] if s else None  # noqa: E731
        print(f"| {w} | {fmt(ratio(g(rs, 'rps'), g(d, 'rps')), '.2f')} "
              f"| {fmt(ratio(g(rs, 'rps'), g(tw, 'rps')), '.2f')} "
              f"| {fmt(ratio(g(rs, 'p50'), g(d, 'p50')), '.2f')} "
              f"| {fmt(ratio(g(rs, 'p50'), g(tw, 'p50')), '.2f')} "
              f"| {fmt(ratio(g(tw, 'rps'), g(d, 'rps')), '.2f')} |"
              + (f" {fmt(ratio(g(rs, 'rps'), g(nc, 'rps')), '.2f')} |" if nocache else ""))
    print()

    print("## Target checks (near-cache issue)")
    print()
    print("```")

    def check(label, w, cond_fn, figures_fn):
        d, rs = S.get((w, "direct")), S.get((w, "respite"))
        if not rs or rs["rps"] is None:
            print(f"SKIP  {label}: no respite figures for {w}")
            return
        hit = "n/a" if rs["hit"] is None else f"{rs['hit']:.4f}"
        try:
            ok = cond_fn(d, rs)
        except TypeError:
            ok = False
        print(f"{'PASS' if ok else 'MISS'}  {label}: {figures_fn(d, rs)} (hit ratio {hit}; {w})")

    check("hot set cached, no delay, -c 50 -P 1: respite GET rps >= direct", "s1-P1",
          lambda d, r: r["rps"] >= d["rps"],
          lambda d, r: f"respite {fmt(r['rps'], ',.0f')} vs direct {fmt(d and d['rps'], ',.0f')} rps"
                       f" = {fmt(ratio(r['rps'], d and d['rps']), '.2f')}x")
    check("hot set cached, no delay, -c 50 -P 16: respite GET rps >= direct", "s1-P16",
          lambda d, r: r["rps"] >= d["rps"],
          lambda d, r: f"respite {fmt(r['rps'], ',.0f')} vs direct {fmt(d and d['rps'], ',.0f')} rps"
                       f" = {fmt(ratio(r['rps'], d and d['rps']), '.2f')}x")
    check("1 ms delay, -c 50 -P 1: cache-hit GET rps >= 10x direct", "s3-P1",
          lambda d, r: r["rps"] >= 10 * d["rps"],
          lambda d, r: f"respite {fmt(r['rps'], ',.0f')} vs direct {fmt(d and d['rps'], ',.0f')} rps"
                       f" = {fmt(ratio(r['rps'], d and d['rps']), '.2f')}x")
    check("1 ms delay: respite p50 < 0.1 ms on hits (-c 1 -P 1; needs hit ratio > 0.5)", "s3-c1",
          lambda d, r: r["p50"] < 0.1 and (r["hit"] or 0) > 0.5,
          lambda d, r: f"respite p50 {fmt(r['p50'], '.3f')} ms, direct {fmt(d and d['p50'], '.3f')} ms")
    rs = S.get(("s3-P1", "respite"))
    if rs and rs["p50"] is not None:
        print(f"info  1 ms delay, -c 50 -P 1: respite p50 {rs['p50']:.3f} ms (50 requests in flight: "
              f"p50 ~ 50 / rps = {50 / rs['rps'] * 1000:.3f} ms by Little's law)")
    for w in ("s2-P1", "s2-P16", "s4-P1", "s4-P16"):
        rs = S.get((w, "respite"))
        if rs:
            hit = "n/a" if rs["hit"] is None else f"{rs['hit']:.4f}"
            print(f"info  {w}: respite hit ratio {hit}, respite/direct rps "
                  f"{fmt(ratio(rs['rps'], S.get((w, 'direct'), {}).get('rps')), '.2f')}")
    print("```")


if __name__ == "__main__":
    main()
