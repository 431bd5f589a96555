"""kafka-python client for the Sluice integration tests.

Usage:
  kp.py admin   BOOTSTRAP PREFIX
  kp.py produce-consume BOOTSTRAP TOPIC [--partitions P] [--count N] [--seed S]
                [--compression none|gzip] [--start P:OFFSET ...] [--timeout S]
  kp.py member  BOOTSTRAP TOPIC GROUP --name NAME --stop-file PATH [--session-timeout-ms MS]

admin: creates PREFIX-a (3 partitions) and PREFIX-b (1), tries to create
PREFIX-a again, lists and describes them, deletes PREFIX-b and lists again.
produce-consume: creates TOPIC, produces N records (the producer's defaults:
idempotent, acks=all), then reads them back with assign() + seek() (no group).

member: a long-running group member (subscribe) that prints one JSON event
per line until PATH exists, then closes (LeaveGroup); see cmd_member.

Prints one JSON object on stdout; exits non-zero on any client error.
"""
import argparse
import os
import sys
import time

sys.dont_write_bytecode = True
from _records import emit, log, make_record, rec, run_main  # noqa: E402

import kafka  # noqa: E402
from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.errors import KafkaError, TopicAlreadyExistsError  # noqa: E402

CLIENT_ID = "sluice-test-kafka-python"


def describe(admin, names):
    out = {}
    for t in admin.describe_topics(names):
        out[t["name"]] = {"error_code": t["error_code"], "partitions": len(t["partitions"])}
    return out


def wait_topics(admin, present, absent, timeout=20):
    deadline = time.time() + timeout
    while True:
        names = set(admin.list_topics())
        if all(t in names for t in present) and not any(t in names for t in absent):
            return sorted(names)
        if time.time() > deadline:
            raise RuntimeError(f"list_topics: wanted {present} present and {absent} absent, got {sorted(names)}")
        time.sleep(0.2)


def cmd_admin(a):
    ta, tb = f"{a.prefix}-a", f"{a.prefix}-b"
    admin = KafkaAdminClient(bootstrap_servers=a.bootstrap, client_id=CLIENT_ID, request_timeout_ms=30000)
    try:
        admin.create_topics({ta: {"num_partitions": 3, "replication_factor": 1},
                             tb: {"num_partitions": 1, "replication_factor": 1}})
        listed = wait_topics(admin, [ta, tb], [])
        dup_error = None
        try:
            admin.create_topics({ta: {"num_partitions": 3, "replication_factor": 1}})
        except TopicAlreadyExistsError as e:
            dup_error = type(e).__name__
        described = describe(admin, [ta, tb])
        admin.delete_topics([tb])
        listed_after = wait_topics(admin, [ta], [tb])
        emit({"listed_after_create": [t for t in listed if t in (ta, tb)],
              "duplicate_create_error": dup_error,
              "described": described,
              "listed_after_delete": [t for t in listed_after if t in (ta, tb)]})
    finally:
        admin.close()


def cmd_produce_consume(a):
    admin = KafkaAdminClient(bootstrap_servers=a.bootstrap, client_id=CLIENT_ID, request_timeout_ms=30000)
    try:
        admin.create_topics({a.topic: {"num_partitions": a.partitions, "replication_factor": 1}},
                            wait_for_metadata=True)
    finally:
        admin.close()

    producer = KafkaProducer(bootstrap_servers=a.bootstrap, client_id=CLIENT_ID,
                             compression_type=None if a.compression == "none" else a.compression,
                             linger_ms=5)
    idempotent = bool(producer.config.get("enable_idempotence"))
    sent = []
    for i in range(a.count):
        key, value, hdrs, ts = make_record(a.seed, i, null_headers=False)
        fut = producer.send(a.topic, key=key, value=value, headers=hdrs, timestamp_ms=ts)
        sent.append((fut, key, value, hdrs, ts))
    producer.flush(timeout=60)
    delivered = []
    for fut, key, value, hdrs, ts in sent:
        md = fut.get(timeout=30)  # raises on a delivery error
        delivered.append(rec(md.partition, md.offset, key, value, hdrs, ts))
    producer.close(timeout=10)

    consumer = KafkaConsumer(bootstrap_servers=a.bootstrap, client_id=CLIENT_ID, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="none")
    try:
        tps = [TopicPartition(a.topic, p) for p in range(a.partitions)]
        end = consumer.end_offsets(tps)
        starts = {}
        for s in a.start or []:
            p, off = s.split(":")
            starts[int(p)] = int(off)
        consumer.assign(tps)
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
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                for m in msgs:
                    records.append(rec(m.partition, m.offset, m.key, m.value, m.headers,
                                       m.timestamp if m.timestamp_type == 0 else None))
                    nxt[m.partition] = m.offset + 1
    finally:
        consumer.close()
    emit({"idempotent": idempotent, "delivered": delivered, "records": records,
          "end_offsets": {str(tp.partition): v for tp, v in end.items()}, "version": kafka.__version__})


def cmd_member(a):
    """A group member for tests/groups.rs: one JSON event per line,
    {"ev": "assigned", "gen", "member", "parts"} (the whole assignment:
    kafka-python's assignors are eager), {"ev": "revoked", ...},
    {"ev": "records", "r": [[partition, offset], ...]}, {"ev": "closed"}.
    Auto commit runs inside poll(), after the previous records were printed.
    kafka-python's log goes to stderr (INFO: joins, syncs, rebalances)."""
    import logging
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("SLUICE_TEST_PY_LOG", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    c = KafkaConsumer(bootstrap_servers=a.bootstrap, client_id=f"{CLIENT_ID}-{a.name}", group_id=a.group,
                      auto_offset_reset="earliest", enable_auto_commit=True, auto_commit_interval_ms=500,
                      session_timeout_ms=a.session_timeout_ms,
                      heartbeat_interval_ms=max(100, a.session_timeout_ms // 8))

    def generation():
        # No public getter: the coordinator's current Generation.
        g = getattr(c._coordinator, "_generation", None)
        return (g.generation_id, g.member_id) if g is not None else (None, None)

    def report(ev, parts):
        gen, member = generation()
        emit({"ev": ev, "gen": gen, "member": member, "parts": sorted(tp.partition for tp in parts)})

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            report("revoked", revoked)

        def on_partitions_assigned(self, assigned):
            report("assigned", assigned)

    # kafka-python 3.0.12 bug: a JoinGroup started because the leader's
    # metadata snapshot changed, still in flight when poll()'s timeout ends,
    # is never finished: the next poll() sees no reason to rejoin (the
    # leader's new assignment snapshot matches the metadata), so the member
    # never completes the join, stops heartbeating and hangs for good. The
    # first leader always triggers such a rejoin: its metadata snapshot is
    # only refreshed by a metadata update after subscribe(), which its own
    # assignment requests. So: know the topic, subscribe, and refresh the
    # snapshot from the metadata already known before the first join.
    deadline = time.time() + 30
    while not c.partitions_for_topic(a.topic):
        if time.time() > deadline:
            raise RuntimeError(f"no metadata for {a.topic}")
        time.sleep(0.1)
    c.subscribe([a.topic], listener=Listener())
    coordinator = c._coordinator
    coordinator._handle_metadata_update(coordinator._cluster)
    emit({"ev": "started", "name": a.name})
    while not os.path.exists(a.stop_file):
        recs = []
        for tp, msgs in c.poll(timeout_ms=200).items():
            recs.extend([m.partition, m.offset] for m in msgs)
        if recs:
            emit({"ev": "records", "r": recs})
    c.close()  # commits, leaves the group
    emit({"ev": "closed"})


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
    pc.add_argument("--seed", default="kp")
    pc.add_argument("--compression", default="none", choices=["none", "gzip"])
    pc.add_argument("--start", action="append")
    pc.add_argument("--timeout", type=float, default=60)
    mb = sub.add_parser("member")
    mb.add_argument("bootstrap")
    mb.add_argument("topic")
    mb.add_argument("group")
    mb.add_argument("--name", required=True)
    mb.add_argument("--stop-file", required=True)
    mb.add_argument("--session-timeout-ms", type=int, default=10000)
    a = ap.parse_args()
    {"admin": cmd_admin, "produce-consume": cmd_produce_consume, "member": cmd_member}[a.cmd](a)


if __name__ == "__main__":
    run_main(main)
