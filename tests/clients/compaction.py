"""confluent-kafka client for the compaction test (tests/compaction.rs).

Usage:
  compaction.py create  BOOTSTRAP TOPIC [CONFIG=VALUE ...]
  compaction.py alter   BOOTSTRAP TOPIC CONFIG=VALUE ...   (IncrementalAlterConfigs SET)
  compaction.py produce BOOTSTRAP TOPIC --count N --keys K [--tombstone-every T] [--compression C]
  compaction.py sentinel BOOTSTRAP TOPIC
  compaction.py consume BOOTSTRAP TOPIC [--start OFFSET] [--timeout S]

Records go to partition 0. `produce` sends N records round-robin over keys
"key-0".."key-(K-1)" with value "<key>=<i>", then a tombstone (null value)
for every T-th key, and prints the latest value per key (null for a
tombstone). `consume` reads partition 0 from OFFSET to the high watermark
and prints the watermarks and every record as [offset, key, value|null].
"""
import argparse
import sys
import time

sys.dont_write_bytecode = True
from _records import emit, log, run_main  # noqa: E402

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import (  # noqa: E402
    AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType)

CLIENT_ID = "sluice-test-compaction"


def cmd_create(a):
    configs = dict(kv.split("=", 1) for kv in a.configs)
    admin = AdminClient({"bootstrap.servers": a.bootstrap, "client.id": CLIENT_ID})
    futs = admin.create_topics([NewTopic(a.topic, num_partitions=1, replication_factor=1, config=configs)],
                               operation_timeout=30, request_timeout=30)
    for f in futs.values():
        f.result(timeout=60)
    emit({"created": a.topic, "configs": configs})


def cmd_alter(a):
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
               for k, v in (kv.split("=", 1) for kv in a.configs)]
    admin = AdminClient({"bootstrap.servers": a.bootstrap, "client.id": CLIENT_ID})
    res = ConfigResource(ResourceType.TOPIC, a.topic, incremental_configs=entries)
    for f in admin.incremental_alter_configs([res]).values():
        f.result(timeout=60)
    emit({"altered": a.topic})


def producer(a):
    return Producer({
        "bootstrap.servers": a.bootstrap,
        "client.id": CLIENT_ID,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": getattr(a, "compression", "none"),
    })


def send_all(p, topic, records):
    failures = []

    def done(err, msg):
        if err is not None:
            failures.append(str(err))

    for key, value in records:
        while True:
            try:
                p.produce(topic, key=key.encode(), value=None if value is None else value.encode(),
                          partition=0, on_delivery=done)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(60)
    if failures or left:
        raise RuntimeError(f"{len(failures)} failed deliveries ({failures[:3]}), {left} not flushed")


def cmd_produce(a):
    latest = {}
    records = []
    for i in range(a.count):
        key = f"key-{i % a.keys}"
        records.append((key, f"{key}={i}"))
        latest[key] = f"{key}={i}"
    if a.tombstone_every:
        for k in range(0, a.keys, a.tombstone_every):
            records.append((f"key-{k}", None))
            latest[f"key-{k}"] = None
    send_all(producer(a), a.topic, records)
    emit({"sent": len(records), "latest": latest})


def cmd_sentinel(a):
    send_all(producer(a), a.topic, [("sentinel", "sentinel")])
    emit({"sent": 1})


def cmd_consume(a):
    c = Consumer({
        "bootstrap.servers": a.bootstrap,
        "client.id": CLIENT_ID,
        "group.id": "sluice-test-compaction-unused",
        "enable.auto.commit": False,
        "auto.offset.reset": "error",
        "enable.partition.eof": True,
    })
    low, high = c.get_watermark_offsets(TopicPartition(a.topic, 0), timeout=30)
    start = OFFSET_BEGINNING if a.start is None else a.start
    c.assign([TopicPartition(a.topic, 0, start)])
    out = []
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                break
            raise KafkaException(msg.error())
        key = None if msg.key() is None else msg.key().decode()
        value = None if msg.value() is None else msg.value().decode()
        out.append([msg.offset(), key, value])
        if msg.offset() >= high - 1:
            break
    else:
        log(f"consume: stopped at the {a.timeout}s timeout with {len(out)} records")
    c.close()
    emit({"low": low, "high": high, "records": out})


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("create")
    s.add_argument("bootstrap")
    s.add_argument("topic")
    s.add_argument("configs", nargs="*")
    s = sub.add_parser("alter")
    s.add_argument("bootstrap")
    s.add_argument("topic")
    s.add_argument("configs", nargs="+")
    s = sub.add_parser("produce")
    s.add_argument("bootstrap")
    s.add_argument("topic")
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--keys", type=int, required=True)
    s.add_argument("--tombstone-every", type=int, default=0)
    s.add_argument("--compression", default="none")
    s = sub.add_parser("sentinel")
    s.add_argument("bootstrap")
    s.add_argument("topic")
    s = sub.add_parser("consume")
    s.add_argument("bootstrap")
    s.add_argument("topic")
    s.add_argument("--start", type=int)
    s.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    {"create": cmd_create, "alter": cmd_alter, "produce": cmd_produce, "sentinel": cmd_sentinel, "consume": cmd_consume}[a.cmd](a)


if __name__ == "__main__":
    run_main(main)
