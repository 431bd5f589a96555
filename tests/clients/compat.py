"""confluent-kafka (librdkafka) for the client-compatibility tests
(tests/compat.rs): the cases librdkafka applications trip on.

Usage:
  compat.py create  BOOTSTRAP TOPIC PARTITIONS [--config NAME=VALUE ...]
  compat.py big     BOOTSTRAP TOPIC PARTITIONS --count N --size BYTES
  compat.py drain   BOOTSTRAP TOPIC PARTITIONS --count N --fetch-max-bytes B
                    --partition-max-bytes B --receive-max-bytes B [--timeout S]
  compat.py produce-batch BOOTSTRAP TOPIC --keys K,-,K,... [--sizes N,N,...]
  compat.py configs BOOTSTRAP PREFIX NAME=VALUE ...

Prints one JSON object on stdout; exits non-zero on a client error the
command does not report itself.
"""
import argparse
import sys
import time

sys.dont_write_bytecode = True
from _records import emit, log, run_main  # noqa: E402

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic  # noqa: E402
from ck import wait_partitions  # noqa: E402

CLIENT_ID = "sluice-test-compat"


def cmd_create(a):
    configs = dict(c.split("=", 1) for c in a.config)
    admin = AdminClient({"bootstrap.servers": a.bootstrap, "client.id": CLIENT_ID})
    topic = NewTopic(a.topic, num_partitions=a.partitions, replication_factor=1, config=configs)
    for f in admin.create_topics([topic], operation_timeout=30).values():
        f.result(timeout=60)
    wait_partitions(a.bootstrap, a.topic, a.partitions)
    emit({"created": a.topic})


def cmd_big(a):
    """Writes COUNT records of SIZE bytes, round robin over the partitions,
    one record per batch."""
    p = Producer({"bootstrap.servers": a.bootstrap, "client.id": CLIENT_ID, "acks": "all",
                  "message.max.bytes": a.size + 4096, "linger.ms": 0})
    failed = []

    def done(err, _msg):
        if err is not None:
            failed.append(str(err))

    deadline = time.time() + 60
    for i in range(a.count):
        while True:
            try:
                p.produce(a.topic, value=bytes([i % 251]) * a.size, partition=i % a.partitions, on_delivery=done)
                break
            except BufferError:
                if time.time() > deadline:
                    raise
                p.poll(0.1)
        p.poll(0)
    if p.flush(60) != 0 or failed:
        raise RuntimeError(f"produce failed: {failed[:3]} ({len(failed)} errors)")
    emit({"produced": a.count})


def cmd_drain(a):
    """Reads every partition from its start with the given fetch limits until
    COUNT records came back; reports per-partition counts and every error
    the client surfaced."""
    c = Consumer({
        "bootstrap.servers": a.bootstrap,
        "client.id": CLIENT_ID,
        "group.id": f"{a.topic}-drain",
        "enable.auto.commit": False,
        "fetch.max.bytes": a.fetch_max_bytes,
        "max.partition.fetch.bytes": a.partition_max_bytes,
        "receive.message.max.bytes": a.receive_max_bytes,
        "error_cb": lambda e: errors.append(str(e)),
    })
    errors = []
    c.assign([TopicPartition(a.topic, p, 0) for p in range(a.partitions)])
    counts = {}
    nxt = {}
    deadline = time.time() + a.timeout
    while sum(counts.values()) < a.count and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() != KafkaError._PARTITION_EOF:
                errors.append(str(m.error()))
            continue
        p = m.partition()
        if m.offset() != nxt.get(p, 0):
            raise RuntimeError(f"partition {p}: offset {m.offset()}, expected {nxt.get(p, 0)}")
        nxt[p] = m.offset() + 1
        counts[p] = counts.get(p, 0) + 1
    c.close()
    emit({"records": sum(counts.values()), "per_partition": {str(k): v for k, v in sorted(counts.items())},
          "errors": errors[:10]})


def cmd_produce_batch(a):
    """Sends one batch to partition 0 (held back by linger.ms until all are
    queued): a record per --keys entry, '-' for no key, of --sizes bytes;
    reports each record's delivery: its offset, or its error."""
    keys = a.keys.split(",")
    sizes = [int(s) for s in a.sizes.split(",")] if a.sizes else [16] * len(keys)
    p = Producer({"bootstrap.servers": a.bootstrap, "client.id": CLIENT_ID, "acks": "all", "linger.ms": 1000,
                  "batch.num.messages": len(keys), "retries": 0, "message.max.bytes": 4 << 20})
    reports = [None] * len(keys)

    def report(i):
        def done(err, msg):
            if err is None:
                reports[i] = {"offset": msg.offset()}
            else:
                reports[i] = {"error": err.name(), "code": err.code(), "message": err.str()}
        return done

    for i, (k, n) in enumerate(zip(keys, sizes)):
        key = None if k == "-" else k.encode()
        p.produce(a.topic, key=key, value=b"v" * n, partition=0, on_delivery=report(i))
    left = p.flush(60)
    if left:
        raise RuntimeError(f"{left} records not delivered")
    emit({"records": reports})


def cmd_configs(a):
    """For each NAME=VALUE: CreateTopics of PREFIX-i with that config, and an
    IncrementalAlterConfigs SET and DELETE of it on PREFIX-base; reports
    "ok" or "CODE message" for each."""
    admin = AdminClient({"bootstrap.servers": a.bootstrap, "client.id": CLIENT_ID})

    def outcome(f):
        try:
            f.result(timeout=30)
            return "ok"
        except KafkaException as e:
            return f"{e.args[0].code()} {e.args[0].str()}"

    base = f"{a.prefix}-base"
    admin.create_topics([NewTopic(base, 1, 1)])[base].result(timeout=30)
    out = {}
    for i, kv in enumerate(a.configs):
        k, v = kv.split("=", 1)
        t = f"{a.prefix}-{i}"
        created = outcome(admin.create_topics([NewTopic(t, 1, 1, config={k: v})], operation_timeout=30)[t])
        ops = {}
        for name, op in [("set", AlterConfigOpType.SET), ("delete", AlterConfigOpType.DELETE)]:
            res = ConfigResource("topic", base, incremental_configs=[ConfigEntry(k, v, incremental_operation=op)])
            ops[name] = outcome(admin.incremental_alter_configs([res])[res])
        out[kv] = {"create": created, **ops}
    emit(out)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)

    def command(name, *positional):
        c = sub.add_parser(name)
        c.add_argument("bootstrap")
        for arg in positional:
            c.add_argument(arg, type=int) if arg == "partitions" else c.add_argument(arg)
        return c

    command("create", "topic", "partitions").add_argument("--config", action="append", default=[])
    b = command("big", "topic", "partitions")
    b.add_argument("--count", type=int, required=True)
    b.add_argument("--size", type=int, required=True)
    d = command("drain", "topic", "partitions")
    d.add_argument("--count", type=int, required=True)
    d.add_argument("--fetch-max-bytes", type=int, required=True)
    d.add_argument("--partition-max-bytes", type=int, required=True)
    d.add_argument("--receive-max-bytes", type=int, required=True)
    d.add_argument("--timeout", type=float, default=60)
    pb = command("produce-batch", "topic")
    pb.add_argument("--keys", required=True)
    pb.add_argument("--sizes")
    command("configs", "prefix").add_argument("configs", nargs="+")
    a = ap.parse_args()
    {"create": cmd_create, "big": cmd_big, "drain": cmd_drain, "produce-batch": cmd_produce_batch, "configs": cmd_configs}[a.cmd](a)


if __name__ == "__main__":
    run_main(main)
