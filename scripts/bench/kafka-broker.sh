#!/usr/bin/env bash
# Runs one single-node Apache Kafka (KRaft, combined broker+controller) for
# bench-compare.sh: writes DIR/server.properties, formats DIR/logs once
# (kafka.tools.StorageTool), then execs the broker (kafka.Kafka) in the
# foreground, so the caller's pid is the JVM's and killing it stops Kafka.
#
#   kafka-broker.sh LIBS DIR PORT CONTROLLER_PORT fsync|default LOG4J2_FILE
#
# fsync:   log.flush.interval.messages=1, an fsync per appended batch
#          (comparable with Sluice's acks=all, which answers after fdatasync);
# default: Kafka's own durability, no forced flush (the OS writes back).
# JVM: the heap and GC flags of Kafka's kafka-server-start.sh
# (KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS); G1 is named explicitly so
# that a broker pinned to one CPU keeps it (the JVM picks Serial GC there).
set -euo pipefail

LIBS="$1" DIR="$2" PORT="$3" CPORT="$4" MODE="$5" LOG4J="$6"
KAFKA_JVM=(-Xmx1g -Xms1g -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true)

mkdir -p "$DIR"
PROPS="$DIR/server.properties"
{
  cat <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/logs
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# As Sluice's defaults: the largest batch (1 MiB + 12), 1 GiB segments, and
# 3 partitions for a topic created on first use (the workloads create theirs).
message.max.bytes=1048588
log.segment.bytes=1073741824
num.partitions=3
EOF
  case "$MODE" in
    fsync) echo "log.flush.interval.messages=1" ;;
    default) ;;
    *) echo "kafka-broker: mode must be fsync or default, not $MODE" >&2; exit 2 ;;
  esac
} >"$PROPS"

export CLASSPATH="$LIBS/*"
JOPTS=(-Dlog4j2.configurationFile="$LOG4J" -Dkafka.logs.dir="$DIR/app-logs")
if [ ! -f "$DIR/logs/meta.properties" ]; then
  CLUSTER_ID="$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
  timeout 120 java -Xmx256m "${JOPTS[@]}" kafka.tools.StorageTool format --cluster-id="$CLUSTER_ID" -c "$PROPS" >"$DIR/format.log" 2>&1 \
    || { cat "$DIR/format.log" >&2; exit 1; }
fi
exec java "${KAFKA_JVM[@]}" "${JOPTS[@]}" kafka.Kafka "$PROPS"
