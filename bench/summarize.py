#!/usr/bin/env python3
"""Summarise bench/compare.sh's raw.tsv as markdown tables.

usage: summarize.py RAW_TSV CLK_TCK [--pairs A/B,C/D,...] [--paired A/B,...]

--pairs   the ratio columns (default respite/direct, respite/twemproxy, twemproxy/direct,
          plus CPU/req respite/twemproxy); with --pairs every pair of two proxies also
          gets a CPU/req column.
--paired  for each pair, the rps ratio within every round (the two runs of a round are
          next to each other in time), with its median and range.
"""
import csv
import statistics
import sys

TARGET_ORDER = ["direct", "twemproxy", "respite"]


def fnum(x):
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if v != v else v  # NaN -> None


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def parse_pairs(text):
    return [tuple(p.split("/", 1)) for p in text.split(",") if p]


def main():
    path, clk_tck = sys.argv[1], float(sys.argv[2])
    opts = {}
    rest = sys.argv[3:]
    while rest:
        if rest[0] in ("--pairs", "--paired") and len(rest) > 1:
            opts[rest[0]] = parse_pairs(rest[1])
            rest = rest[2:]
        else:
            sys.exit(f"summarize.py: unknown argument {rest[0]}")
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    workloads, targets = [], []
    for r in rows:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
        if r["target"] not in targets:
            targets.append(r["target"])
    targets.sort(key=lambda t: TARGET_ORDER.index(t) if t in TARGET_ORDER else 99)

    stats = {}  # (workload, target) -> dict
    for w in workloads:
        for t in targets:
            runs = [r for r in rows if r["workload"] == w and r["target"] == t]
            ok = [r for r in runs if r["status"] == "ok"]
            s = {"runs": len(runs), "ok": len(ok)}
            rps = [fnum(r["rps"]) for r in ok]
            p50 = [fnum(r["p50_ms"]) for r in ok]
            p99 = [fnum(r["p99_ms"]) for r in ok]
            rps = [v for v in rps if v is not None]
            p50 = [v for v in p50 if v is not None]
            p99 = [v for v in p99 if v is not None]
            s["rps"] = statistics.median(rps) if rps else None
            s["rps_min"] = min(rps) if rps else None
            s["rps_max"] = max(rps) if rps else None
            s["p50"] = statistics.median(p50) if p50 else None
            s["p99"] = statistics.median(p99) if p99 else None
            nreq = sum(int(r["requests"]) for r in ok)
            pt = sum(int(r["proxy_ticks"]) for r in ok)
            rt = sum(int(r["redis_ticks"]) for r in ok)
            us = 1e6 / clk_tck
            s["proxy_us"] = (pt * us / nreq) if (nreq and t != "direct") else None
            s["redis_us"] = (rt * us / nreq) if nreq else None
            s["proxy_ticks"] = pt
            stats[(w, t)] = s

    print("## Per target (median of rounds)")
    print()
    print("| workload | target | ok/runs | rps (median) | rps min–max | p50 ms | p99 ms "
          "| proxy CPU µs/req | redis CPU µs/req |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        for t in targets:
            s = stats[(w, t)]
            spread = ("—" if s["rps_min"] is None
                      else f"{s['rps_min']:,.0f}–{s['rps_max']:,.0f}")
            print(f"| {w} | {t} | {s['ok']}/{s['runs']} | {fmt(s['rps'], ',.0f')} | {spread} "
                  f"| {fmt(s['p50'], '.3f')} | {fmt(s['p99'], '.3f')} "
                  f"| {fmt(s['proxy_us'], '.2f')} | {fmt(s['redis_us'], '.2f')} |")
    print()

    custom = "--pairs" in opts
    pairs = []
    for a, b in opts.get("--pairs", [("respite", "direct"), ("respite", "twemproxy"), ("twemproxy", "direct")]):
        if a in targets and b in targets:
            pairs.append((a, b))
    cpu_pairs = ([(a, b) for a, b in pairs if "direct" not in (a, b)] if custom
                 else [("respite", "twemproxy")] if "respite" in targets and "twemproxy" in targets else [])
    if pairs:
        print("## Ratios (medians; rps: higher is better, p50 and CPU: lower is better)")
        print()
        head = "| workload |"
        sep = "|---|"
        for a, b in pairs:
            head += f" rps {a}/{b} | p50 {a}/{b} |"
            sep += "---:|---:|"
        for a, b in cpu_pairs:
            head += f" CPU/req {a}/{b} |"
            sep += "---:|"
        print(head)
        print(sep)
        for w in workloads:
            line = f"| {w} |"
            for a, b in pairs:
                sa, sb = stats[(w, a)], stats[(w, b)]
                line += (f" {fmt(ratio(sa['rps'], sb['rps']), '.2f')} "
                         f"| {fmt(ratio(sa['p50'], sb['p50']), '.2f')} |")
            for a, b in cpu_pairs:
                line += f" {fmt(ratio(stats[(w, a)]['proxy_us'], stats[(w, b)]['proxy_us']), '.2f')} |"
            print(line)
        print()

    for a, b in opts.get("--paired", []):
        if a not in targets or b not in targets:
            continue
        print(f"## rps {a}/{b} within each round (paired runs)")
        print()
        print(f"| workload | per round | median | min–max |")
        print("|---|---|---:|---:|")
        for w in workloads:
            rounds = {}
            for r in rows:
                if r["workload"] == w and r["status"] == "ok" and r["target"] in (a, b):
                    rounds.setdefault(r["round"], {})[r["target"]] = fnum(r["rps"])
            rs = [ratio(v.get(a), v.get(b)) for _, v in sorted(rounds.items(), key=lambda kv: int(kv[0]))]
            rs = [x for x in rs if x is not None]
            if not rs:
                print(f"| {w} | — | — | — |")
                continue
            print(f"| {w} | {' '.join(f'{x:.3f}' for x in rs)} | {statistics.median(rs):.3f} "
                  f"| {min(rs):.3f}–{max(rs):.3f} |")
        print()
    print(f"CPU µs/req = (utime+stime ticks of the process during its runs, 1 tick = "
          f"{1e3 / clk_tck:.0f} ms) / requests, summed over the ok rounds. The three "
          f"processes (redis-benchmark, proxy, redis-server) share the machine's cores.")
    low = [f"{w}/{t}" for (w, t), s in stats.items()
           if t != "direct" and s["ok"] and s["proxy_ticks"] < 100]
    if low:
        print(f"Note: fewer than 100 CPU ticks measured for {', '.join(low)}; "
              f"their µs/req is coarse (raise BENCH_SCALE).")


if __name__ == "__main__":
    main()
