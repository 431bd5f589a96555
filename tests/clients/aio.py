"""aiokafka client for the Sluice integration tests.

Usage:
  aio.py admin   BOOTSTRAP PREFIX
  aio.py produce-consume BOOTSTRAP TOPIC [--partitions P] [--count N] [--seed S]
                 [--compression none|gzip] [--start P:OFFSET ...] [--timeout S]

Same work as kp.py (kafka-python), with aiokafka: admin create / duplicate
create / list / describe / delete; produce with acks=all, then read back with
assign() + seek() (no group).

Prints one JSON object on stdout; exits non-zero on any client error.
"""
import argparse
import asyncio
import sys
import time

sys.dont_write_bytecode = True
from _records import emit, make_record, rec, run_main  # noqa: E402

import aiokafka  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402

CLIENT_ID = "sluice-test-aiokafka"


def error_codes(resp):
    """{topic: error_code} from a CreateTopics or DeleteTopics response."""
    obj = resp.to_object()
    rows = obj.get("topic_errors") or obj.get("topic_error_codes") or obj.get("responses") or []
    out = {}
    for r in rows:
        name = r.get("topic") or r.get("name")
        out[name] = r["error_code"]
    return out


async def wait_topics(admin, present, absent, timeout=20):
    deadline = time.time() + timeout
    while True:
        names = set(await admin.list_topics())
        if all(t in names for t in present) and not any(t in names for t in absent):
            return sorted(names)
        if time.time() > deadline:
            raise RuntimeError(f"list_topics: wanted {present} present and {absent} absent, got {sorted(names)}")
        await asyncio.sleep(0.2)


async def create(admin, topics):
    resp = await admin.create_topics([NewTopic(t, num_partitions=p, replication_factor=1) for t, p in topics])
    return error_codes(resp)


async def cmd_admin(a):
    ta, tb = f"{a.prefix}-a", f"{a.prefix}-b"
    admin = AIOKafkaAdminClient(bootstrap_servers=a.bootstrap, client_id=CLIENT_ID)
    await admin.start()
    try:
        errs = await create(admin, [(ta, 3), (tb, 1)])
        if any(errs.values()):
            raise RuntimeError(f"create_topics errors: {errs}")
        listed = await wait_topics(admin, [ta, tb], [])
        dup = await create(admin, [(ta, 3)])
        described = {}
        for t in await admin.describe_topics([ta, tb]):
            described[t["topic"]] = {"error_code": t["error_code"], "partitions": len(t["partitions"])}
        derrs = error_codes(await admin.delete_topics([tb]))
        if any(derrs.values()):
            raise RuntimeError(f"delete_topics errors: {derrs}")
        listed_after = await wait_topics(admin, [ta], [tb])
    finally:
        await admin.close()
    emit({"listed_after_create": [t for t in listed if t in (ta, tb)],
          "duplicate_create_error_code": dup.get(ta),
          "described": described,
          "listed_after_delete": [t for t in listed_after if t in (ta, tb)]})


async def cmd_produce_consume(a):
    admin = AIOKafkaAdminClient(bootstrap_servers=a.bootstrap, client_id=CLIENT_ID)
    await admin.start()
    try:
        errs = await create(admin, [(a.topic, a.partitions)])
        if any(errs.values()):
            raise RuntimeError(f"create_topics errors: {errs}")
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=a.bootstrap, client_id=CLIENT_ID, acks="all", linger_ms=5,
                                compression_type=None if a.compression == "none" else a.compression)
    await producer.start()
    delivered = []
    try:
        futs = []
        for i in range(a.count):
            key, value, hdrs, ts = make_record(a.seed, i, null_headers=False)
            fut = await producer.send(a.topic, key=key, value=value, headers=hdrs, timestamp_ms=ts)
            futs.append((fut, key, value, hdrs, ts))
        for fut, key, value, hdrs, ts in futs:
            md = await asyncio.wait_for(fut, 60)  # raises on a delivery error
            delivered.append(rec(md.partition, md.offset, key, value, hdrs, ts))
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=a.bootstrap, client_id=CLIENT_ID, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="none")
    await consumer.start()
    try:
        tps = [TopicPartition(a.topic, p) for p in range(a.partitions)]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        starts = {}
        for s in a.start or []:
            p, off = s.split(":")
            starts[int(p)] = int(off)
        nxt = {}
        for tp in tps:
            consumer.seek(tp, starts.get(tp.partition, 0))
            nxt[tp.partition] = starts.get(tp.partition, 0)
        # Read to the end offset, or further if more records were acknowledged.
        acked = {}
        for r in delivered:
            acked[r[0]] = max(acked.get(r[0], 0), r[1] + 1)
        want = {tp.partition: max(end[tp], acked.get(tp.partition, 0)) for tp in tps}
        records = []
        deadline = time.time() + a.timeout
        while any(nxt[p] < want[p] for p in want):
            if time.time() > deadline:
                raise RuntimeError(f"timed out: next offsets {nxt}, end offsets {want}, {len(records)} records")
            batches = await consumer.getmany(timeout_ms=500)
            for tp, msgs in batches.items():
                for m in msgs:
                    records.append(rec(m.partition, m.offset, m.key, m.value, list(m.headers),
                                       m.timestamp if m.timestamp_type == 0 else None))
                    nxt[m.partition] = m.offset + 1
    finally:
        await consumer.stop()
    emit({"delivered": delivered, "records": records,
          "end_offsets": {str(tp.partition): v for tp, v in end.items()}, "version": aiokafka.__version__})


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    ad = sub.add_parser("admin")
    ad.add_argument("bootstrap")
    ad.add_argument("prefix")
    pc = sub.add_parser("produce-consume")
    pc.add_argument("bootstrap")
    pc.add_argument("topic")
    pc.add_argument("--partitions", type=int, default=3)
    pc.add_argument("--count", type=int, default=2000)
    pc.add_argument("--seed", default="aio")
    pc.add_argument("--compression", default="none", choices=["none", "gzip"])
    pc.add_argument("--start", action="append")
    pc.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    asyncio.run({"admin": cmd_admin, "produce-consume": cmd_produce_consume}[a.cmd](a))


if __name__ == "__main__":
    run_main(main)
