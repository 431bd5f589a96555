"""confluent-kafka (librdkafka) client for the Sluice integration tests.

Usage:
  ck.py create  BOOTSTRAP TOPIC PARTITIONS
  ck.py produce BOOTSTRAP TOPIC [--count N] [--start I] [--seed S] [--compression C]
                [--idempotence] [--chunk K --pace-ms MS] [--progress-every K]
                [--message-timeout-ms MS] [--allow-failures]
  ck.py consume BOOTSTRAP TOPIC [--start P:OFFSET ...] [--end P:OFFSET ...] [--rewind P:AT:TO]
                [--timeout S]
  ck.py tail    BOOTSTRAP TOPIC PARTITIONS --stop-file PATH [--timeout S]
  ck.py group   BOOTSTRAP TOPIC GROUP --expect N [--timeout S]
  ck.py member  BOOTSTRAP TOPIC GROUP --name NAME --stop-file PATH [--session-timeout-ms MS]
                [--strategy range|roundrobin|cooperative-sticky]
  ck.py commit-at BOOTSTRAP TOPIC GROUP --commit P:OFFSET ... [--timeout S]
  ck.py resume  BOOTSTRAP TOPIC GROUP --end P:OFFSET ... [--timeout S]
  ck.py simple-commit BOOTSTRAP TOPIC GROUP --commit P:OFFSET ...

Prints one JSON object on stdout; exits non-zero on any client error.
`member` is the exception: a long-running group member that prints one JSON
event per line (see `cmd_member`) until PATH exists, then leaves the group.
"""
import argparse
import os
import struct
import sys
import time

sys.dont_write_bytecode = True
from _records import emit, log, make_record, rec, run_main  # noqa: E402

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

CLIENT_ID = "sluice-test-confluent"


def wait_partitions(boot, topic, want, timeout=30):
    admin = AdminClient({"bootstrap.servers": boot, "client.id": CLIENT_ID})
    deadline = time.time() + timeout
    while True:
        md = admin.list_topics(topic, timeout=10)
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == want and all(
            p.leader >= 0 for p in t.partitions.values()
        ):
            return
        if time.time() > deadline:
            raise RuntimeError(f"topic {topic}: metadata never showed {want} partitions with leaders: {t}")
        time.sleep(0.2)


def cmd_create(a):
    admin = AdminClient({"bootstrap.servers": a.bootstrap, "client.id": CLIENT_ID})
    futs = admin.create_topics([NewTopic(a.topic, num_partitions=a.partitions, replication_factor=1)],
                               operation_timeout=30, request_timeout=30)
    for f in futs.values():
        f.result(timeout=60)
    wait_partitions(a.bootstrap, a.topic, a.partitions)
    emit({"created": a.topic, "partitions": a.partitions})


def cmd_produce(a):
    conf = {
        "bootstrap.servers": a.bootstrap,
        "client.id": CLIENT_ID,
        "acks": "all",
        "compression.type": a.compression,
        "linger.ms": 5,
        "message.timeout.ms": a.message_timeout_ms,
        "enable.idempotence": a.idempotence,
    }
    p = Producer(conf)
    results = {}  # index -> record or error string
    state = {"ok": 0}

    def on_delivery(i, key, value, hdrs, ts):
        def cb(err, msg):
            if err is not None:
                results[i] = ("err", str(err))
            else:
                results[i] = ("ok", rec(msg.partition(), msg.offset(), key, value, hdrs, ts))
                state["ok"] += 1
                if a.progress_every and state["ok"] % a.progress_every == 0:
                    log(f"progress delivered={state['ok']}")
        return cb

    t0 = time.time()
    for n, i in enumerate(range(a.start, a.start + a.count)):
        key, value, hdrs, ts = make_record(a.seed, i)
        while True:
            try:
                p.produce(a.topic, value=value, key=key, headers=hdrs, timestamp=ts,
                          on_delivery=on_delivery(i, key, value, hdrs, ts))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
        if a.chunk and a.pace_ms and (n + 1) % a.chunk == 0:
            end = time.time() + a.pace_ms / 1000.0
            while time.time() < end:
                p.poll(0.005)
    remaining = p.flush(a.message_timeout_ms / 1000.0 + 30)
    delivered, failed = [], []
    for i in range(a.start, a.start + a.count):
        kind, v = results.get(i, ("err", "no delivery report"))
        if kind == "ok":
            delivered.append(v)
        else:
            failed.append([i, v])
    emit({"delivered": delivered, "failed": failed, "undelivered_in_queue": remaining,
          "seconds": round(time.time() - t0, 3)})
    if (failed or remaining) and not a.allow_failures:
        log(f"{len(failed)} deliveries failed, e.g. {failed[:3]}; {remaining} still queued")
        sys.exit(1)


def parse_start(specs):
    out = {}
    for s in specs or []:
        p, off = s.split(":")
        out[int(p)] = int(off)
    return out


def msg_rec(m):
    ts_type, ts = m.timestamp()
    return rec(m.partition(), m.offset(), m.key(), m.value(), m.headers(), ts if ts_type != 0 else None)


def poll_record(c, timeout, tolerated=None):
    """The consumer's next record, or None when there is none yet or a
    partition's end was reached. An error raises, unless `tolerated` is a
    list and the error is retriable or not fatal: it is noted there."""
    m = c.poll(timeout)
    if m is None:
        return None
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            return None
        if tolerated is not None and (m.error().retriable() or not m.error().fatal()):
            tolerated.append(str(m.error()))
            return None
        raise KafkaException(m.error())
    return m


def assign_only_consumer(boot, **extra):
    """A consumer that reads with assign() and explicit offsets only."""
    conf = {
        "bootstrap.servers": boot,
        "client.id": CLIENT_ID,
        "group.id": "sluice-test-assign-only",  # never joined: assign() only, no commits
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
    }
    conf.update(extra)
    return Consumer(conf)


def cmd_consume(a):
    c = assign_only_consumer(a.bootstrap)
    try:
        md = c.list_topics(a.topic, timeout=10)
        t = md.topics.get(a.topic)
        if t is None or t.error is not None:
            raise RuntimeError(f"topic {a.topic}: {t.error if t else 'missing'}")
        parts = sorted(t.partitions)
        starts = parse_start(a.start)
        low, high = {}, {}
        for p in parts:
            lo, hi = c.get_watermark_offsets(TopicPartition(a.topic, p), timeout=10)
            low[p], high[p] = lo, hi
        rewind = None
        if a.rewind:
            rp, at, to = (int(x) for x in a.rewind.split(":"))
            rewind = [rp, at, to, False]
        # Read each partition up to its high watermark, or further if the
        # test knows more records were acknowledged (--end P:OFFSET).
        end = {p: max(high[p], parse_start(a.end).get(p, 0)) for p in parts}
        assign = [TopicPartition(a.topic, p, starts.get(p, 0)) for p in parts if starts.get(p, 0) < end[p]]
        nxt = {tp.partition: tp.offset for tp in assign}
        c.assign(assign)
        records = []
        deadline = time.time() + a.timeout

        def done():
            return all(nxt[p] >= end[p] for p in nxt) and (rewind is None or rewind[3])

        while not done():
            if time.time() > deadline:
                raise RuntimeError(f"timed out: next offsets {nxt}, high watermarks {high}, ends {end}, {len(records)} records")
            m = poll_record(c, 0.5)
            if m is None:
                continue
            records.append(msg_rec(m))
            nxt[m.partition()] = m.offset() + 1
            if rewind and not rewind[3] and m.partition() == rewind[0] and m.offset() == rewind[1]:
                c.seek(TopicPartition(a.topic, rewind[0], rewind[2]))
                nxt[rewind[0]] = rewind[2]
                rewind[3] = True
        emit({"records": records, "low": {str(p): v for p, v in low.items()},
              "high": {str(p): v for p, v in high.items()}})
    finally:
        c.close()


def watermark_after_churn(c, tp, deadline):
    """The high watermark of tp. Right after a broker restarts librdkafka's
    metadata cache may still hold the partition without a leader, and the
    query fails locally (_UNKNOWN_PARTITION, _LEADER_NOT_AVAILABLE): ask
    again until the cache is refreshed, up to the deadline."""
    while True:
        try:
            return c.get_watermark_offsets(tp, timeout=10)[1]
        except KafkaException as e:
            err = e.args[0]
            local = err.code() in (KafkaError._UNKNOWN_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                                   KafkaError._TRANSPORT, KafkaError._TIMED_OUT)
            if not (local or err.retriable()) or time.time() > deadline:
                raise
            time.sleep(0.2)


def cmd_tail(a):
    """Reads every partition from offset 0 while the test runs (assign(), no
    group: librdkafka follows leader changes itself) until PATH exists and
    each partition is read to its high watermark as it is then. Reports every
    record in the order read."""
    c = assign_only_consumer(a.bootstrap, **{
        "topic.metadata.refresh.interval.ms": 1000,
        # A SIGSTOPped broker keeps its connections open: give up on it soon.
        "socket.timeout.ms": 6000,
    })
    try:
        wait_partitions(a.bootstrap, a.topic, a.partitions)
        md = c.list_topics(a.topic, timeout=10)
        parts = sorted(md.topics[a.topic].partitions)
        c.assign([TopicPartition(a.topic, p, 0) for p in parts])
        nxt = {p: 0 for p in parts}
        records = []
        errors = []
        end = None
        deadline = time.time() + a.timeout
        while end is None or any(nxt[p] < end[p] for p in parts):
            if time.time() > deadline:
                raise RuntimeError(f"timed out: next offsets {nxt}, ends {end}, {len(records)} records")
            if end is None and os.path.exists(a.stop_file):
                end = {}
                for p in parts:
                    end[p] = watermark_after_churn(c, TopicPartition(a.topic, p), deadline)
            m = poll_record(c, 0.2, tolerated=errors)
            if m is None:
                continue
            records.append(msg_rec(m))
            nxt[m.partition()] = m.offset() + 1
        emit({"records": records, "errors": errors[:20], "error_count": len(errors)})
    finally:
        c.close()


def cmd_group(a):
    conf = {
        "bootstrap.servers": a.bootstrap,
        "client.id": CLIENT_ID,
        "group.id": a.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
    }
    c = Consumer(conf)
    records = []
    assigned = []
    c.subscribe([a.topic], on_assign=lambda _c, parts: assigned.extend(p.partition for p in parts))
    deadline = time.time() + a.timeout
    try:
        while len(records) < a.expect:
            if time.time() > deadline:
                raise RuntimeError(f"timed out with {len(records)} of {a.expect} records; assigned {assigned}")
            m = poll_record(c, 0.5)
            if m is None:
                continue
            records.append(msg_rec(m))
        c.commit(asynchronous=False)
    finally:
        c.close()  # leaves the group
    # A new member of the same group sees the committed offsets.
    c2 = Consumer(dict(conf, **{"client.id": CLIENT_ID + "-2"}))
    try:
        parts = sorted(c2.list_topics(a.topic, timeout=10).topics[a.topic].partitions)
        committed = c2.committed([TopicPartition(a.topic, p) for p in parts], timeout=10)
        for tp in committed:
            if tp.error:
                raise KafkaException(tp.error)
    finally:
        c2.close()
    emit({"records": records, "assigned": sorted(set(assigned)),
          "committed": {str(tp.partition): tp.offset for tp in committed}})


def cgmd_generation(c):
    """The consumer's current generation id. confluent-kafka has no getter;
    consumer_group_metadata() is librdkafka's serialized form:
    b"CGMDv2:", int32 generation id (host order), group id, member id, ..."""
    m = bytes(c.consumer_group_metadata())
    if not m.startswith(b"CGMDv2:") or len(m) < 11:
        return None
    return struct.unpack("=i", m[7:11])[0]


def cmd_member(a):
    """A group member for the rebalance tests (tests/groups.rs), printing one
    JSON event per line: {"ev": "assigned", "gen", "member", "parts"} with
    everything it owns after an assignment (the cooperative protocol's
    callbacks only name the change), {"ev": "revoked", ..., "parts"} with
    what it gave up, {"ev": "records", "r": [[partition, offset], ...]}
    for what it consumed, {"ev": "closed"} after a clean close (LeaveGroup).
    Offsets are stored for auto-commit only after the records are printed,
    so a SIGKILL never commits what the test has not seen."""
    conf = {
        "bootstrap.servers": a.bootstrap,
        "client.id": f"{CLIENT_ID}-{a.name}",
        "group.id": a.group,
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 500,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": a.session_timeout_ms,
        "heartbeat.interval.ms": max(100, a.session_timeout_ms // 8),
    }
    if a.strategy:
        conf["partition.assignment.strategy"] = a.strategy
    c = Consumer(conf)
    owned = set()

    def on_assign(_c, parts):
        owned.update(p.partition for p in parts)
        emit({"ev": "assigned", "gen": cgmd_generation(c), "member": c.memberid(), "parts": sorted(owned)})

    def on_revoke(_c, parts, ev="revoked"):
        gone = {p.partition for p in parts}
        owned.difference_update(gone)
        emit({"ev": ev, "gen": cgmd_generation(c), "member": c.memberid(), "parts": sorted(gone)})

    c.subscribe([a.topic], on_assign=on_assign, on_revoke=on_revoke,
                on_lost=lambda _c, parts: on_revoke(_c, parts, "lost"))
    emit({"ev": "started", "name": a.name})
    while not os.path.exists(a.stop_file):
        msgs = c.consume(num_messages=500, timeout=0.2)
        done = []
        for m in msgs:
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(m.error())
            done.append(m)
        if done:
            emit({"ev": "records", "r": [[m.partition(), m.offset()] for m in done]})
            for m in done:
                c.store_offsets(message=m)
    c.close()  # commits the stored offsets, leaves the group
    emit({"ev": "closed"})


def manual_commit_member_conf(a):
    """A group member that commits only when told to, reading from the start."""
    return {
        "bootstrap.servers": a.bootstrap,
        "client.id": CLIENT_ID,
        "group.id": a.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }


def cmd_commit_at(a):
    """Joins GROUP alone, reads each partition of --commit up to OFFSET,
    commits exactly those offsets synchronously (as the group member, with
    its generation), reads them back with committed() and leaves."""
    want = parse_start(a.commit)
    c = Consumer(manual_commit_member_conf(a))
    c.subscribe([a.topic])
    nxt = {}
    deadline = time.time() + a.timeout
    try:
        while not all(nxt.get(p, 0) >= off for p, off in want.items()):
            if time.time() > deadline:
                raise RuntimeError(f"timed out: next offsets {nxt}, want {want}")
            m = poll_record(c, 0.2)
            if m is None:
                continue
            nxt[m.partition()] = m.offset() + 1
        gen, member = cgmd_generation(c), c.memberid()
        res = c.commit(offsets=[TopicPartition(a.topic, p, off) for p, off in sorted(want.items())],
                       asynchronous=False)
        for tp in res or []:
            if tp.error:
                raise KafkaException(tp.error)
        back = c.committed([TopicPartition(a.topic, p) for p in sorted(want)], timeout=10)
    finally:
        c.close()
    emit({"generation": gen, "member": member, "read_to": {str(p): o for p, o in nxt.items()},
          "committed": {str(tp.partition): tp.offset for tp in back}})


def cmd_resume(a):
    """A new member of GROUP (auto.offset.reset=earliest, no commits):
    committed() first, then subscribe and read until every partition of
    --end reached its OFFSET; reports what it read."""
    end = parse_start(a.end)
    c = Consumer(manual_commit_member_conf(a))
    try:
        before = c.committed([TopicPartition(a.topic, p) for p in sorted(end)], timeout=10)
        for tp in before:
            if tp.error:
                raise KafkaException(tp.error)
        c.subscribe([a.topic])
        nxt, records = {}, []
        deadline = time.time() + a.timeout
        while not all(nxt.get(p, -1) >= off for p, off in end.items()):
            if time.time() > deadline:
                raise RuntimeError(f"timed out: next offsets {nxt}, ends {end}, {len(records)} records")
            m = poll_record(c, 0.2)
            if m is None:
                continue
            records.append([m.partition(), m.offset()])
            nxt[m.partition()] = m.offset() + 1
    finally:
        c.close()
    emit({"committed_before": {str(tp.partition): tp.offset for tp in before}, "records": records})


def cmd_simple_commit(a):
    """Commits without group membership (assign() + commit(), generation -1,
    no member id: what kcat and Spark do), reads the offsets back with
    committed() from the same and from a new consumer, then a third
    consumer assign()s without offsets and must start at the commits."""
    want = parse_start(a.commit)
    conf = {
        "bootstrap.servers": a.bootstrap,
        "client.id": CLIENT_ID,
        "group.id": a.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    tps = [TopicPartition(a.topic, p, off) for p, off in sorted(want.items())]
    c = Consumer(conf)
    try:
        c.assign(tps)
        res = c.commit(offsets=tps, asynchronous=False)
        for tp in res or []:
            if tp.error:
                raise KafkaException(tp.error)
        same = c.committed([TopicPartition(a.topic, p) for p in sorted(want)], timeout=10)
    finally:
        c.close()
    c = Consumer(dict(conf, **{"client.id": CLIENT_ID + "-2"}))
    try:
        other = c.committed([TopicPartition(a.topic, p) for p in sorted(want)], timeout=10)
    finally:
        c.close()
    c = Consumer(dict(conf, **{"client.id": CLIENT_ID + "-3"}))
    first = {}
    try:
        c.assign([TopicPartition(a.topic, p) for p in sorted(want)])  # offsets: the committed ones
        deadline = time.time() + 30
        while len(first) < len(want):
            if time.time() > deadline:
                raise RuntimeError(f"timed out: first offsets {first}, want {want}")
            m = poll_record(c, 0.2)
            if m is None:
                continue
            first.setdefault(m.partition(), m.offset())
    finally:
        c.close()
    for tp in list(same) + list(other):
        if tp.error:
            raise KafkaException(tp.error)
    emit({"committed_same": {str(tp.partition): tp.offset for tp in same},
          "committed_new": {str(tp.partition): tp.offset for tp in other},
          "first_read": {str(p): o for p, o in first.items()}})


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("bootstrap")
    c.add_argument("topic")
    c.add_argument("partitions", type=int)
    p = sub.add_parser("produce")
    p.add_argument("bootstrap")
    p.add_argument("topic")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--seed", default="s")
    p.add_argument("--compression", default="none", choices=["none", "gzip", "snappy", "lz4", "zstd"])
    p.add_argument("--idempotence", action="store_true")
    p.add_argument("--chunk", type=int, default=0)
    p.add_argument("--pace-ms", type=int, default=0)
    p.add_argument("--progress-every", type=int, default=0)
    p.add_argument("--message-timeout-ms", type=int, default=30000)
    p.add_argument("--allow-failures", action="store_true")
    q = sub.add_parser("consume")
    q.add_argument("bootstrap")
    q.add_argument("topic")
    q.add_argument("--start", action="append")
    q.add_argument("--end", action="append")
    q.add_argument("--rewind")
    q.add_argument("--timeout", type=float, default=60)
    t = sub.add_parser("tail")
    t.add_argument("bootstrap")
    t.add_argument("topic")
    t.add_argument("partitions", type=int)
    t.add_argument("--stop-file", required=True)
    t.add_argument("--timeout", type=float, default=600)
    g = sub.add_parser("group")
    g.add_argument("bootstrap")
    g.add_argument("topic")
    g.add_argument("group")
    g.add_argument("--expect", type=int, required=True)
    g.add_argument("--timeout", type=float, default=60)
    mb = sub.add_parser("member")
    mb.add_argument("bootstrap")
    mb.add_argument("topic")
    mb.add_argument("group")
    mb.add_argument("--name", required=True)
    mb.add_argument("--stop-file", required=True)
    mb.add_argument("--session-timeout-ms", type=int, default=6000)
    mb.add_argument("--strategy")
    ca = sub.add_parser("commit-at")
    ca.add_argument("bootstrap")
    ca.add_argument("topic")
    ca.add_argument("group")
    ca.add_argument("--commit", action="append", required=True)
    ca.add_argument("--timeout", type=float, default=60)
    rs = sub.add_parser("resume")
    rs.add_argument("bootstrap")
    rs.add_argument("topic")
    rs.add_argument("group")
    rs.add_argument("--end", action="append", required=True)
    rs.add_argument("--timeout", type=float, default=60)
    sc = sub.add_parser("simple-commit")
    sc.add_argument("bootstrap")
    sc.add_argument("topic")
    sc.add_argument("group")
    sc.add_argument("--commit", action="append", required=True)
    a = ap.parse_args()
    {"create": cmd_create, "produce": cmd_produce, "consume": cmd_consume, "tail": cmd_tail, "group": cmd_group,
     "member": cmd_member, "commit-at": cmd_commit_at, "resume": cmd_resume,
     "simple-commit": cmd_simple_commit}[a.cmd](a)


if __name__ == "__main__":
    run_main(main)
