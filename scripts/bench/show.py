#!/usr/bin/env python3
"""Prints one progress line per results.jsonl entry (bench-compare.sh).

    show.py RESULTS.jsonl --last          the last entry
    show.py RESULTS.jsonl --kinds fio,iperf3
"""
import json
import sys


def line(r):
    wl, b, run, x = r.get("workload"), r.get("broker"), r.get("run"), r.get("result") or {}
    if r["kind"] in ("fio", "iperf3"):
        return f"    {wl:<22} #{run}: {x.get('mb_per_s') or 0:>9.0f} MB/s"
    if r["kind"] == "rdkafka":
        return (f"    {wl:<22} {b:<12} #{run}: {x.get('records_per_s', 0):>10.0f} rec/s "
                f"{x.get('mb_per_s', 0):>8.1f} MB/s rc={r.get('rc')}")
    if r["kind"] == "kafka-perf":
        lat = x.get("latency_ms")
        extra = f" avg {lat['avg']:.1f} ms p99 {lat['p99']:.0f} ms" if lat else ""
        flag = "" if x.get("ok") else " FAILED"
        return (f"    {wl:<22} {b:<12} #{run}: {x.get('records_per_s', 0):>10.0f} rec/s "
                f"{x.get('mb_per_s', 0):>8.1f} MB/s{extra} rc={r.get('rc')}{flag}")
    parts = []
    for k in ("produce", "consume"):
        if isinstance(x.get(k), dict):
            parts.append(f"{k} {x[k]['records_per_s']:>10.0f} rec/s {x[k]['mb_per_s']:>8.1f} MB/s")
    lat = (x.get("e2e") or {}).get("latency") or (x.get("produce") or {}).get("latency") or {}
    if lat.get("count"):
        parts.append(f"p99 {lat['p99_us'] / 1000:.2f} ms")
    if x:
        parts.append(f"client {x.get('client_cores')} cores")
        if r.get("wall_s") and r.get("broker_cpu_s"):
            parts.append(f"broker {r['broker_cpu_s'] / r['wall_s']:.2f} cores")
        if not x.get("ok"):
            parts.append(f"FAILED {x.get('failures')}")
    else:
        parts.append(f"no result (rc={r.get('rc')})")
    return f"    {wl:<22} {b:<12} #{run}: " + " | ".join(parts)


def main():
    path, args = sys.argv[1], sys.argv[2:]
    rows = [json.loads(l) for l in open(path) if l.strip()]
    if "--last" in args:
        rows = rows[-1:]
    if "--kinds" in args:
        kinds = set(args[args.index("--kinds") + 1].split(","))
        rows = [r for r in rows if r["kind"] in kinds]
    for r in rows:
        print(line(r), file=sys.stderr)


if __name__ == "__main__":
    main()
