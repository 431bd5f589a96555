"""Spark batch reads and writes through the Kafka connector, for tests/spark.rs.

Usage (under spark-submit):
  spark_batch.py BOOTSTRAP --spark-topic T1 --ck-topic T2 --rows N

T1 must exist with 3 partitions and be empty: this writes N rows to it with
df.write.format("kafka") (key, value, headers, an explicit partition i % 3).
T2 holds records produced by `ck.py produce` (CreateTime TS_BASE + i).
Then it reads both back with spark.read.format("kafka") and several
startingOffsets/endingOffsets forms (earliest/latest, JSON per partition,
assign, by timestamp), headers included. failOnDataLoss keeps its default.

Prints one JSON object as the last line of stdout: per read, the records as
[partition, offset, key_hex, value_hex, [[header, value_hex], ...], timestamp_ms]
(see tests/common/records.rs); the Rust test makes the assertions.
"""
import argparse
import json
import sys

sys.dont_write_bytecode = True
from _records import TS_BASE, emit, rec, run_main  # noqa: E402

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql.types import (ArrayType, BinaryType, IntegerType, StringType, StructField,  # noqa: E402
                               StructType)

# The offsets and timestamps the Rust test computes its expectations from.
JSON_START = {"0": 2, "1": -2, "2": 5}
JSON_END = {"0": 50, "1": -1, "2": 95}
START_TS = 200
BY_TS_START = {"0": 50, "1": 100, "2": 150}
BY_TS_END = {"0": 250, "1": 260, "2": 270}


def spark_rows(n):
    """Row i: key k-i, value v-i, partition i % 3, headers idx=i, src=spark,
    and on every tenth row a header with a null value."""
    out = []
    for i in range(n):
        hdrs = [("idx", str(i).encode()), ("src", b"spark")]
        if i % 10 == 0:
            hdrs.append(("nullh", None))
        out.append((f"k-{i}".encode(), f"v-{i}".encode(), i % 3, hdrs))
    return out


WRITE_SCHEMA = StructType([
    StructField("key", BinaryType()),
    StructField("value", BinaryType()),
    StructField("partition", IntegerType()),
    StructField("headers", ArrayType(StructType([
        StructField("key", StringType()),
        StructField("value", BinaryType()),
    ]))),
])


def read(spark, boot, **opts):
    r = spark.read.format("kafka").option("kafka.bootstrap.servers", boot).option("includeHeaders", "true")
    for k, v in opts.items():
        r = r.option(k, v)
    df = r.load().select("partition", "offset", "key", "value", "headers",
                         F.expr("unix_millis(timestamp)").alias("ts"))
    rows = df.collect()
    out = [rec(x.partition, x.offset, x.key, x.value,
               [(h.key, h.value) for h in (x.headers or [])], x.ts) for x in rows]
    out.sort(key=lambda r: (r[0], r[1]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("--spark-topic", required=True)
    ap.add_argument("--ck-topic", required=True)
    ap.add_argument("--rows", type=int, default=300)
    a = ap.parse_args()
    spark = SparkSession.builder.appName("sluice-test-spark-batch").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    boot, t1, t2 = a.bootstrap, a.spark_topic, a.ck_topic

    df = spark.createDataFrame(spark_rows(a.rows), WRITE_SCHEMA)
    df.write.format("kafka").option("kafka.bootstrap.servers", boot).option("topic", t1).save()

    def ts_map(m):
        return json.dumps({t2: {p: TS_BASE + i for p, i in m.items()}})

    result = {
        "spark_all": read(spark, boot, subscribe=t1, startingOffsets="earliest", endingOffsets="latest"),
        "spark_json": read(spark, boot, subscribe=t1, startingOffsets=json.dumps({t1: JSON_START}),
                           endingOffsets=json.dumps({t1: JSON_END})),
        "spark_assign": read(spark, boot, assign=json.dumps({t1: [0, 2]})),
        "ck_all": read(spark, boot, subscribe=t2),
        "ck_start_ts": read(spark, boot, subscribe=t2, startingTimestamp=str(TS_BASE + START_TS)),
        "ck_by_ts": read(spark, boot, subscribe=t2, startingOffsetsByTimestamp=ts_map(BY_TS_START),
                         endingOffsetsByTimestamp=ts_map(BY_TS_END)),
        "params": {"ts_base": TS_BASE, "json_start": JSON_START, "json_end": JSON_END, "start_ts": START_TS,
                   "by_ts_start": BY_TS_START, "by_ts_end": BY_TS_END},
    }
    spark.stop()
    emit(result)


if __name__ == "__main__":
    run_main(main)
