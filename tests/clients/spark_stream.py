"""Spark Structured Streaming through the Kafka connector, for tests/spark.rs.

Usage (under spark-submit):
  spark_stream.py BOOTSTRAP --source T --sink T2 --out DIR --checkpoint DIR
                  [--max-offsets-per-trigger N]

Runs two queries, one after the other, each with availableNow (everything in
the topic now, in micro-batches of at most N records, then stop) and its own
checkpoint under --checkpoint, so a second run of the same command resumes
where the first stopped:
- "files": readStream of T (earliest, headers included) -> foreachBatch that
  writes each micro-batch's records to DIR/batch-<id>.json (atomically, by
  batch id, so a replayed batch overwrites its own file);
- "kafka": readStream of T -> writeStream.format("kafka") into T2, with
  each record's key, value, headers and partition.
failOnDataLoss keeps its default.

Prints one JSON object as the last line of stdout: per query, the batch ids
it ran and the input rows it processed (from the query's progress).
"""
import argparse
import json
import os
import sys

sys.dont_write_bytecode = True
from _records import emit, rec, run_main  # noqa: E402

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402


def source(spark, a):
    r = (spark.readStream.format("kafka")
         .option("kafka.bootstrap.servers", a.bootstrap)
         .option("subscribe", a.source)
         .option("startingOffsets", "earliest")
         .option("includeHeaders", "true"))
    if a.max_offsets_per_trigger:
        r = r.option("maxOffsetsPerTrigger", a.max_offsets_per_trigger)
    return r.load()


def progress(query):
    batches = [p["batchId"] for p in query.recentProgress if p.get("numInputRows", 0) > 0]
    rows = sum(p.get("numInputRows", 0) for p in query.recentProgress)
    return {"batches": batches, "rows": rows}


def to_files(spark, a):
    def write_batch(df, batch_id):
        rows = df.select("partition", "offset", "key", "value", "headers",
                         F.expr("unix_millis(timestamp)").alias("ts")).collect()
        recs = [rec(x.partition, x.offset, x.key, x.value, [(h.key, h.value) for h in (x.headers or [])], x.ts)
                for x in rows]
        path = os.path.join(a.out, f"batch-{batch_id}.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"batch": batch_id, "records": recs}, f)
        os.replace(path + ".tmp", path)

    q = (source(spark, a).writeStream.foreachBatch(write_batch)
         .option("checkpointLocation", os.path.join(a.checkpoint, "files"))
         .trigger(availableNow=True).start())
    q.awaitTermination()
    return progress(q)


def to_kafka(spark, a):
    df = source(spark, a).select("key", "value", "headers", "partition")
    q = (df.writeStream.format("kafka")
         .option("kafka.bootstrap.servers", a.bootstrap)
         .option("topic", a.sink)
         .option("checkpointLocation", os.path.join(a.checkpoint, "kafka"))
         .trigger(availableNow=True).start())
    q.awaitTermination()
    return progress(q)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("--source", required=True)
    ap.add_argument("--sink", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--max-offsets-per-trigger", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    spark = SparkSession.builder.appName("sluice-test-spark-stream").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    result = {"files": to_files(spark, a), "kafka": to_kafka(spark, a)}
    spark.stop()
    emit(result)


if __name__ == "__main__":
    run_main(main)
