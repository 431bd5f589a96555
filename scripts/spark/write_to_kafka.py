"""Spark Structured Streaming: stream a directory of CSV files into a Sluice topic.

The classic "files to Kafka" example, pointed at a Sluice broker. Every CSV
file (a header line, fields separated by --delimiter, default ',') that
appears in --input becomes records: key = the id column, value = the row as
JSON. The checkpoint records which files are done, so a restarted query
writes only the new ones. Spark's Kafka sink is the Java client's default
producer (idempotent, acks=all).

    spark-submit --packages org.apache.spark:spark-sql-kafka-0-10_2.13:<spark version> \\
        scripts/spark/write_to_kafka.py --bootstrap localhost:9092 --topic events \\
        --input /tmp/events-csv --checkpoint /tmp/events-checkpoint

Runs until stopped (Ctrl-C), picking up new files as they land. With
--available-now it writes the files present when the query starts and exits.
See scripts/spark/README.md.
"""
import argparse
import os

from pyspark.sql import SparkSession
from pyspark.sql.functions import col, struct, to_json

DEFAULT_SCHEMA = "id STRING, name STRING, amount DOUBLE"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", default=os.environ.get("SLUICE_BOOTSTRAP", "localhost:9092"),
                    help="Sluice's address, HOST:PORT (default $SLUICE_BOOTSTRAP or localhost:9092)")
    ap.add_argument("--topic", default="events", help="topic to write (default events)")
    ap.add_argument("--input", required=True, help="directory watched for CSV files (with a header line)")
    ap.add_argument("--checkpoint", required=True, help="checkpoint directory (keep it to resume)")
    ap.add_argument("--schema", default=DEFAULT_SCHEMA,
                    help=f"the CSV columns as a Spark DDL string (default '{DEFAULT_SCHEMA}'); "
                    "the first column is the record key")
    ap.add_argument("--delimiter", default=",",
                    help="the CSV field separator (default ','), e.g. ';'")
    ap.add_argument("--available-now", action="store_true",
                    help="write the files present now, then stop")
    return ap.parse_args()


def main():
    a = parse_args()
    spark = SparkSession.builder.appName("sluice-write-to-kafka").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")

    rows = spark.readStream.schema(a.schema).option("header", True).option("sep", a.delimiter).csv(a.input)
    key_column = rows.columns[0]
    records = rows.select(
        col(key_column).cast("string").alias("key"),
        to_json(struct(*[col(c) for c in rows.columns])).alias("value"),
    )
    writer = (
        records.writeStream.format("kafka")
        .option("kafka.bootstrap.servers", a.bootstrap)
        .option("topic", a.topic)
        .option("checkpointLocation", a.checkpoint)
    )
    if a.available_now:
        writer = writer.trigger(availableNow=True)
    query = writer.start()
    query.awaitTermination()
    spark.stop()


if __name__ == "__main__":
    main()
