#!/usr/bin/env python3
"""Turns a bench-compare.sh results directory into medians, ratios, markdown
tables (RESULTS/summary.md, also printed) and, with --plots DIR, PNG plots:
DIR/bench-partitions.png (produce throughput against partition count) and
DIR/bench-latency.png (end-to-end latency percentile curves).

    report.py RESULTS_DIR [--plots DIR]

Only the standard library is needed for the tables; the plots need
matplotlib (bench-compare.sh installs it into a venv under ~/.cache).
"""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def load(results):
    rows = []
    for line in open(Path(results) / "results.jsonl"):
        line = line.strip()
        if line:
            rows.append(json.loads(line))
    return rows


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0):
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or not b:
        return "–"
    return f"**{a / b:.2f}**"


class Results:
    def __init__(self, rows):
        self.rows = rows
        self.by = defaultdict(list)
        for r in rows:
            self.by[(r["kind"], r["workload"], r["broker"])].append(r)
        # The brokers of the main comparison (both cores); the per-core
        # phase's brokers are tabled apart.
        self.brokers = []
        self.core_brokers = []
        for r in rows:
            if r["kind"] == "sluice-bench" and r["workload"].startswith("produce-") and r["broker"] not in self.brokers:
                self.brokers.append(r["broker"])
            if r["kind"] == "sluice-bench" and r["workload"] == "core-produce-1k-p3" and r["broker"] not in self.core_brokers:
                self.core_brokers.append(r["broker"])

    def runs(self, kind, wl, b):
        return [r for r in self.by.get((kind, wl, b), []) if r.get("result")]

    def metric(self, kind, wl, b, path):
        vals = []
        for r in self.runs(kind, wl, b):
            v = r["result"]
            for p in path:
                v = v.get(p) if isinstance(v, dict) else None
            vals.append(v)
        return med(vals)

    def n(self, kind, wl, b):
        return len(self.runs(kind, wl, b))

    def broker_cores(self, wl, b, section="produce"):
        vals = []
        for r in self.runs("sluice-bench", wl, b):
            secs = (r["result"].get(section) or {}).get("seconds")
            if secs and r.get("broker_cpu_s") is not None:
                vals.append(r["broker_cpu_s"] / r["wall_s"] if r.get("wall_s") else None)
        return med(vals)

    def ok(self, kind, wl, b):
        rs = self.by.get((kind, wl, b), [])
        bad = [r for r in rs if not r.get("result") or (kind == "sluice-bench" and not r["result"].get("ok"))
               or r["result"].get("ok") is False]
        return "" if not bad else f" ({len(bad)} failed)"


def tables(res):
    out = []
    S = "sluice-bench"
    bs = res.brokers
    first = bs[0] if bs else "sluice"
    others = bs[1:]
    fio = res.metric("fio", "odirect_qd4", "machine", ["mb_per_s"])
    fio_sync = res.metric("fio", "odirect_sync", "machine", ["mb_per_s"])
    tcp = res.metric("iperf3", "loopback_tcp", "machine", ["mb_per_s"])
    nruns = max([res.n(S, "produce-1k-p3", b) for b in bs] or [0])
    out.append(f"Runs per point: {nruns} (medians). Brokers: {', '.join(bs)}.\n")

    out.append("### Ceilings of this machine (same run)\n")
    out.append("| ceiling | MB/s |")
    out.append("|---|---|")
    out.append(f"| O_DIRECT sequential 1 MiB writes, 4 in flight, fsync at end (fio, io_uring) | {fmt(fio)} |")
    out.append(f"| O_DIRECT sequential 1 MiB writes, fdatasync after each (fio) | {fmt(fio_sync)} |")
    out.append(f"| loopback TCP, one stream (iperf3) | {fmt(tcp)} |")
    out.append("")

    def tp_table(title, wls, section="produce", ceiling=None, ceiling_name=None):
        out.append(f"### {title}\n")
        head = "| workload |"
        for b in bs:
            head += f" {b} rec/s | {b} MB/s |"
        for o in others:
            head += f" {first} / {o} |"
        if ceiling:
            head += f" {first} / {ceiling_name} |"
        head += f" {first} broker cores | client cores |"
        out.append(head)
        out.append("|" + "---|" * (head.count("|") - 1))
        for wl in wls:
            row = f"| {wl} |"
            vals = {}
            for b in bs:
                rps = res.metric(S, wl, b, [section, "records_per_s"])
                mbs = res.metric(S, wl, b, [section, "mb_per_s"])
                vals[b] = mbs
                row += f" {fmt(rps)}{res.ok(S, wl, b)} | {fmt(mbs, 1)} |"
            for o in others:
                row += f" {ratio(vals.get(first), vals.get(o))} |"
            if ceiling:
                row += f" {ratio(vals.get(first), ceiling)} |"
            row += f" {fmt(res.broker_cores(wl, first, section), 2)} | {fmt(res.metric(S, wl, first, ['client_cores']), 2)} |"
            out.append(row)
        out.append("")

    parts_wls = ["produce-1k-p1", "produce-1k-p3", "produce-1k-p100", "produce-1k-p1000", "produce-1k-p3-c8", "produce-100b-p3"]
    tp_table("Produce, acks=all, maximum throughput (sluice-bench)", parts_wls, "produce", fio, "O_DIRECT")
    tp_table("Consumers at the tail while producing (e2e, max throughput)", ["tail-e2e-max"], "consume")
    tp_table("Fetch from the start of a topic (CRC of every batch checked)", ["fetch-warm", "fetch-cold"], "consume", tcp, "loopback TCP")

    out.append("### End-to-end latency at half of each broker's peak (1 KiB, 3 partitions, open loop; core-: pinned, one broker core)\n")
    out.append("| workload | broker | rate rec/s | e2e p50 ms | p90 | p99 | p99.9 | p99.99 | max | produce ack p99 ms | send delay p99 ms |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for wl, wbs in [("latency-half-acksall", bs), ("latency-half-acks1", bs), ("core-latency-half-acks1", res.core_brokers)]:
        for b in wbs:
            if not res.n(S, wl, b):
                continue
            def q(k, sec=("e2e", "latency")):
                v = res.metric(S, wl, b, list(sec) + [k])
                return fmt(v / 1000 if v is not None else None, 3)
            rate = res.metric(S, wl, b, ["target_rate_records_per_s"])
            out.append(
                f"| {wl} | {b}{res.ok(S, wl, b)} | {fmt(rate)} | {q('p50_us')} | {q('p90_us')} | {q('p99_us')} | {q('p99_9_us')} | "
                f"{q('p99_99_us')} | {q('max_us')} | {q('p99_us', ('produce', 'latency'))} | {q('p99_us', ('produce', 'send_delay'))} |"
            )
    out.append("")

    rk = [b for b in bs if res.n("rdkafka", "rdkafka-produce", b)]
    if rk:
        out.append("### librdkafka rdkafka_performance as the client (1 KiB, acks=all, 3 partitions)\n")
        head = "| workload |" + "".join(f" {b} rec/s | {b} MB/s |" for b in rk) + "".join(f" {first} / {o} |" for o in rk[1:])
        out.append(head)
        out.append("|" + "---|" * (head.count("|") - 1))
        for wl in ["rdkafka-produce", "rdkafka-consume"]:
            row = f"| {wl} |"
            vals = {}
            for b in rk:
                vals[b] = res.metric("rdkafka", wl, b, ["mb_per_s"])
                row += f" {fmt(res.metric('rdkafka', wl, b, ['records_per_s']))}{res.ok('rdkafka', wl, b)} | {fmt(vals[b], 1)} |"
            for o in rk[1:]:
                row += f" {ratio(vals.get(first), vals.get(o))} |"
            out.append(row)
        out.append("")

    kp = [b for b in bs if res.n("kafka-perf", "kafka-perf-produce", b)]
    if kp:
        K = "kafka-perf"
        out.append("### Kafka's kafka-producer-perf-test / kafka-consumer-perf-test as the client (1 KiB, acks=all, 3 partitions)\n")
        out.append(f"| workload | broker | rec/s | MB/s | {first} / broker | avg latency ms | p50 | p99 | p99.9 | max | broker cores |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for wl in ["kafka-perf-produce", "kafka-perf-consume"]:
            base = res.metric(K, wl, first, ["mb_per_s"])
            for b in kp:
                mbs = res.metric(K, wl, b, ["mb_per_s"])
                lat = [fmt(res.metric(K, wl, b, ["latency_ms", k]), 1) for k in ["avg", "p50", "p99", "p99_9", "max"]]
                cpu = med([r["broker_cpu_s"] / r["result"]["seconds"] for r in res.runs(K, wl, b)
                           if r.get("broker_cpu_s") is not None and r["result"].get("seconds")])
                out.append(f"| {wl} | {b}{res.ok(K, wl, b)} | {fmt(res.metric(K, wl, b, ['records_per_s']))} | {fmt(mbs, 1)} | "
                           f"{ratio(base, mbs) if b != first else ''} | {' | '.join(lat)} | {fmt(cpu, 2)} |")
        out.append("(consume: MB/s over the fetch time, the group join excluded; broker cores: the broker's CPU seconds per "
                   "second of the tool's own measured time, which excludes the JVM's start)\n")

    core = res.core_brokers
    if core:
        c0 = core[0]
        out.append("### Per broker core (broker pinned to CPU 0, sluice `--cores 1`; load pinned to CPU 1)\n")
        out.append("| workload | " + " | ".join(f"{b} MB/s | {b} broker cores" for b in core)
                   + "".join(f" | {c0} / {b}" for b in core[1:]) + " |")
        out.append("|---|" + "---|---|" * len(core) + "---|" * (len(core) - 1))
        for wl, sec in [("core-produce-1k-p3", "produce"), ("core-fetch-warm", "consume")]:
            vals = [res.metric(S, wl, b, [sec, "mb_per_s"]) for b in core]
            cells = " | ".join(f"{fmt(v, 1)}{res.ok(S, wl, b)} | {fmt(res.broker_cores(wl, b, sec), 2)}" for v, b in zip(vals, core))
            out.append(f"| {wl} | {cells}" + "".join(f" | {ratio(vals[0], v)}" for v in vals[1:]) + " |")
        out.append("")

    out.append("### Broker CPU use (cores: the broker's CPU seconds per second of the load, median)\n")
    out.append("| workload | " + " | ".join(bs) + " |")
    out.append("|---|" + "---|" * len(bs))
    for wl, sec in [(w, "produce") for w in parts_wls] + [("tail-e2e-max", "consume"), ("fetch-warm", "consume"),
                                                          ("fetch-cold", "consume")]:
        out.append(f"| {wl} | " + " | ".join(fmt(res.broker_cores(wl, b, sec), 2) for b in bs) + " |")
    out.append("")

    # Targets.
    out.append("### Targets\n")
    out.append("| target | measured | met |")
    out.append("|---|---|---|")
    best = max((res.metric(S, w, first, ["produce", "mb_per_s"]) or 0, w) for w in parts_wls[:4])
    if fio:
        out.append(f"| produce acks=all ≥ 50% of raw O_DIRECT writes | {fmt(best[0], 1)} MB/s ({best[1]}) = {best[0] / fio:.0%} of {fmt(fio)} | {'yes' if best[0] >= fio / 2 else 'no'} |")
    warm = res.metric(S, "fetch-warm", first, ["consume", "mb_per_s"])
    if tcp and warm:
        out.append(f"| tail fetch ≥ 50% of loopback TCP | {fmt(warm, 1)} MB/s = {warm / tcp:.0%} of {fmt(tcp)} | {'yes' if warm >= tcp / 2 else 'no'} |")
    for wl, b in [("latency-half-acksall", first), ("latency-half-acks1", first), ("core-latency-half-acks1", "sluice1")]:
        p99 = res.metric(S, wl, b, ["e2e", "latency", "p99_us"])
        if p99 is not None:
            out.append(f"| p99 end-to-end ≤ 1 ms at half peak ({wl}) | {p99 / 1000:.3f} ms | {'yes' if p99 <= 1000 else 'no'} |")
    # The 5x target is against the other Rust broker(s); Apache Kafka is the reference, not a target.
    for o in [o for o in others if not o.startswith("kafka")]:
        for wl in parts_wls[:4]:
            a_, b_ = res.metric(S, wl, first, ["produce", "mb_per_s"]), res.metric(S, wl, o, ["produce", "mb_per_s"])
            if a_ and b_:
                out.append(f"| ≥ 5× {o} with the same client ({wl}, sluice-bench) | {a_ / b_:.2f}× | {'yes' if a_ >= 5 * b_ else 'no'} |")
        for wl in ["rdkafka-produce", "rdkafka-consume"]:
            a_, b_ = res.metric("rdkafka", wl, first, ["mb_per_s"]), res.metric("rdkafka", wl, o, ["mb_per_s"])
            if a_ and b_:
                out.append(f"| ≥ 5× {o} with the same client ({wl}) | {a_ / b_:.2f}× | {'yes' if a_ >= 5 * b_ else 'no'} |")
        for wl in ["fetch-warm"]:
            a_, b_ = res.metric(S, wl, first, ["consume", "mb_per_s"]), res.metric(S, wl, o, ["consume", "mb_per_s"])
            if a_ and b_:
                out.append(f"| ≥ 5× {o} with the same client ({wl}, sluice-bench) | {a_ / b_:.2f}× | {'yes' if a_ >= 5 * b_ else 'no'} |")
    out.append("")
    return "\n".join(out)


def plots(res, outdir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    S = "sluice-bench"
    outdir = Path(outdir)
    # Throughput against partition count.
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    xs = [1, 3, 100, 1000]
    for b in res.brokers:
        pts = []
        for p in xs:
            runs = [r["result"]["produce"]["mb_per_s"] for r in res.runs(S, f"produce-1k-p{p}", b) if r["result"].get("produce")]
            if runs:
                pts.append((p, statistics.median(runs), min(runs), max(runs)))
        if pts:
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts],
                        yerr=[[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]], marker="o", capsize=3, label=b)
    fio = res.metric("fio", "odirect_qd4", "machine", ["mb_per_s"])
    if fio:
        ax.axhline(fio, color="grey", linestyle="--", linewidth=1, label="O_DIRECT writes (fio)")
        ax.axhline(fio / 2, color="grey", linestyle=":", linewidth=1, label="50% target")
    ax.set_xscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([str(x) for x in xs])
    ax.set_xlabel("partitions")
    ax.set_ylabel("MB/s (1 KiB records, acks=all)")
    ax.set_title("Produce throughput against partition count (median, min–max)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(outdir / "bench-partitions.png", dpi=110)
    plt.close(fig)

    # Latency percentile curves (median run by p99).
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for wl, style, wbs in [("latency-half-acksall", "-", res.brokers), ("latency-half-acks1", "--", res.brokers),
                           ("core-latency-half-acks1", ":", res.core_brokers[:1])]:
        for b in wbs:
            runs = [r for r in res.runs(S, wl, b) if (r["result"].get("e2e") or {}).get("latency", {}).get("count")]
            if not runs:
                continue
            runs.sort(key=lambda r: r["result"]["e2e"]["latency"]["p99_us"])
            curve = runs[len(runs) // 2]["result"]["e2e"]["latency"]["curve"]
            pts = [(1 / (1 - q), us / 1000) for q, us in curve if q < 1.0 and q >= 0.5]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker=".", label=f"{b} {wl.replace('latency-half-', '')}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [2, 10, 100, 1000, 10000, 100000]
    ax.set_xticks(ticks)
    ax.set_xticklabels(["p50", "p90", "p99", "p99.9", "p99.99", "p99.999"])
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1, label="1 ms target")
    ax.set_xlabel("percentile")
    ax.set_ylabel("end-to-end latency, ms")
    ax.set_title("End-to-end latency at half of peak (1 KiB, 3 partitions)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(outdir / "bench-latency.png", dpi=110)
    plt.close(fig)


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    results = args[0]
    res = Results(load(results))
    text = tables(res)
    (Path(results) / "summary.md").write_text(text + "\n")
    print(text)
    if "--plots" in args:
        outdir = args[args.index("--plots") + 1]
        plots(res, outdir)
        print(f"plots written to {outdir}/bench-partitions.png and {outdir}/bench-latency.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
