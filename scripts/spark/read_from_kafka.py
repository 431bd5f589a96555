"""Spark Structured Streaming: read a topic from Sluice and print it to the console.

The classic Structured Streaming + Kafka example, pointed at a Sluice broker.
Spark's Kafka source talks to Sluice through the Java Kafka client: the driver
lists offsets with an Admin client, the executors read with assign + seek + poll.

    spark-submit --packages org.apache.spark:spark-sql-kafka-0-10_2.13:<spark version> \\
        scripts/spark/read_from_kafka.py --bootstrap localhost:9092 --topic events

Runs until stopped (Ctrl-C), printing each micro-batch. With --available-now it
reads what the topic holds when the query starts and then exits.
See scripts/spark/README.md.
"""
import argparse
import os

from pyspark.sql import SparkSession
from pyspark.sql.functions import col


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", default=os.environ.get("SLUICE_BOOTSTRAP", "localhost:9092"),
                    help="Sluice's address, HOST:PORT (default $SLUICE_BOOTSTRAP or localhost:9092)")
    ap.add_argument("--topic", default="events", help="topic to read (default events)")
    ap.add_argument("--starting-offsets", default="earliest",
                    help="earliest, latest, or Spark's JSON form, e.g. '{\"events\":{\"0\":42}}' (default earliest)")
    ap.add_argument("--checkpoint", default=None,
                    help="checkpoint directory: a restarted query resumes where it stopped (default: none)")
    ap.add_argument("--max-offsets-per-trigger", type=int, default=None,
                    help="at most this many records per micro-batch")
    ap.add_argument("--available-now", action="store_true",
                    help="read what is in the topic now, in as many micro-batches as needed, then stop")
    return ap.parse_args()


def main():
    a = parse_args()
    spark = SparkSession.builder.appName("sluice-read-from-kafka").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")

    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", a.bootstrap)
        .option("subscribe", a.topic)
        .option("startingOffsets", a.starting_offsets)
    )
    if a.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", a.max_offsets_per_trigger)
    df = reader.load()

    rows = df.select(
        col("topic"),
        col("partition"),
        col("offset"),
        col("timestamp"),
        col("key").cast("string").alias("key"),
        col("value").cast("string").alias("value"),
    )
    writer = rows.writeStream.format("console").outputMode("append").option("truncate", False).option("numRows", 1000)
    if a.checkpoint:
        writer = writer.option("checkpointLocation", a.checkpoint)
    if a.available_now:
        writer = writer.trigger(availableNow=True)
    query = writer.start()
    query.awaitTermination()
    spark.stop()


if __name__ == "__main__":
    main()
