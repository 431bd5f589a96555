#!/usr/bin/env python3
"""Turns the output of Kafka's perf tools into one results.jsonl line
(bench-compare.sh, kind "kafka-perf").

    parse_kafka_perf.py RAW producer|consumer WORKLOAD BROKER RUN RC BROKER_CPU_S EXPECTED_RECORDS

producer (ProducerPerformance): the final summary line,
  "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max
  latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th."
consumer (ConsumerPerformance): the CSV line under its header
  "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg,
  nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec".

The tools count MB as 2^20 bytes of values; mb_per_s here is 10^6 bytes, as
everywhere else in results.jsonl. The consumer's figures are those of its
fetch time (the group join excluded); the totals are kept beside them.
"""
import json
import re
import sys

NUM = r"([0-9.]+)"
SUMMARY = re.compile(
    rf"{NUM} records sent, {NUM} records/sec \({NUM} MB/sec\), {NUM} ms avg latency, {NUM} ms max latency, "
    rf"{NUM} ms 50th, {NUM} ms 95th, {NUM} ms 99th, {NUM} ms 99.9th"
)
MIB = 1048576 / 1e6


def producer(text):
    res = None
    for m in SUMMARY.finditer(text):
        n, rps, mibs, avg, mx, p50, p95, p99, p999 = (float(x) for x in m.groups())
        res = {
            "records": n,
            "seconds": n / rps if rps else None,
            "records_per_s": rps,
            "mb_per_s": mibs * MIB,
            "latency_ms": {"avg": avg, "max": mx, "p50": p50, "p95": p95, "p99": p99, "p99_9": p999},
        }
    return res


def consumer(text):
    header, res = None, None
    for line in text.splitlines():
        cols = [c.strip() for c in line.split(",")]
        if cols and cols[0] == "start.time":
            header = cols
        elif header and len(cols) == len(header):
            row = dict(zip(header, cols))
            try:
                fetch_ms = float(row["fetch.time.ms"])
                res = {
                    "records": float(row["data.consumed.in.nMsg"]),
                    "seconds": fetch_ms / 1000,
                    "records_per_s": float(row["fetch.nMsg.sec"]),
                    "mb_per_s": float(row["fetch.MB.sec"]) * MIB,
                    "total_mb_per_s": float(row["MB.sec"]) * MIB,
                    "rebalance_ms": float(row["rebalance.time.ms"]),
                }
            except (KeyError, ValueError):
                continue
    return res


def main():
    raw, which, wl, broker, run, rc, cpu, expected = sys.argv[1:9]
    text = open(raw, errors="replace").read()
    res = producer(text) if which == "producer" else consumer(text)
    if res is not None:
        # Both tools print their summary after failed sends or a consumer
        # timeout too: such a run is kept but marked.
        res["ok"] = int(rc) == 0 and res["records"] >= float(expected)
    print(json.dumps({"kind": "kafka-perf", "workload": wl, "broker": broker, "run": int(run), "rc": int(rc),
                      "broker_cpu_s": float(cpu), "result": res}))


if __name__ == "__main__":
    main()
