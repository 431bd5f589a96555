import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads a topic the way Spark Structured Streaming's Kafka source does.
 *
 * Driver: an Admin client describes the topic and lists every partition's
 * earliest and latest offsets (ListOffsets, read_uncommitted). Executors: for
 * each partition a KafkaConsumer with a "spark-kafka-source-...-executor"
 * group id, enable.auto.commit=false and auto.offset.reset=none, which only
 * uses assign() + seek() + poll() + position() (no group membership, no
 * commits) and reads exactly [start, end).
 *
 * Usage: RangeConsumer BOOTSTRAP TOPIC [--start P:OFFSET ...] [--end P:OFFSET ...]
 *   start defaults to the listed earliest offset, end to the latest.
 *
 * Prints {"earliest": {p: off}, "latest": {p: off}, "records": [rec, ...]}
 * with records as [partition, offset, key_hex, value_hex, [[header, value_hex], ...], timestamp]
 * (tests/common/records.rs), each partition in the order read. Exits 1 (the
 * reason on stderr) if a partition cannot be read exactly: a gap, a record
 * outside the range, or no progress for 20 s.
 */
public final class RangeConsumer {
    private RangeConsumer() {}

    public static void main(String[] argv) throws Exception {
        Util.Args a = new Util.Args(argv);
        String boot = a.pos(0, "BOOTSTRAP");
        String topic = a.pos(1, "TOPIC");
        Map<Integer, Long> startArg = a.partitionOffsets("start");
        Map<Integer, Long> endArg = a.partitionOffsets("end");

        // --- driver
        Map<Integer, Long> earliest = new TreeMap<>();
        Map<Integer, Long> latest = new TreeMap<>();
        try (Admin admin = Util.admin(boot)) {
            TopicDescription d = step("Admin.describeTopics(" + topic + ")",
                () -> Util.get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic));
            Map<TopicPartition, OffsetSpec> first = new HashMap<>();
            Map<TopicPartition, OffsetSpec> last = new HashMap<>();
            for (TopicPartitionInfo p : d.partitions()) {
                first.put(new TopicPartition(topic, p.partition()), OffsetSpec.earliest());
                last.put(new TopicPartition(topic, p.partition()), OffsetSpec.latest());
            }
            ListOffsetsOptions opts = new ListOffsetsOptions(IsolationLevel.READ_UNCOMMITTED);
            Map<TopicPartition, ListOffsetsResultInfo> e =
                step("Admin.listOffsets(earliest)", () -> Util.get(admin.listOffsets(first, opts).all()));
            Map<TopicPartition, ListOffsetsResultInfo> l =
                step("Admin.listOffsets(latest)", () -> Util.get(admin.listOffsets(last, opts).all()));
            e.forEach((tp, r) -> earliest.put(tp.partition(), r.offset()));
            l.forEach((tp, r) -> latest.put(tp.partition(), r.offset()));
        }
        Util.log("listed earliest " + earliest + ", latest " + latest);

        // --- executors, one consumer per partition (Spark caches one per task's TopicPartition)
        List<Object> records = new ArrayList<>();
        String groupId = "spark-kafka-source-" + UUID.randomUUID() + "--" + Math.abs(topic.hashCode()) + "-executor";
        for (int partition : earliest.keySet()) {
            long start = startArg.getOrDefault(partition, earliest.get(partition));
            long end = endArg.getOrDefault(partition, latest.get(partition));
            if (start >= end) {
                continue;
            }
            readRange(boot, groupId, new TopicPartition(topic, partition), start, end, records);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("earliest", earliest);
        out.put("latest", latest);
        out.put("records", records);
        Util.emit(out);
    }

    static <T> T step(String what, Util.ThrowingSupplier<T> call) {
        try {
            return call.get();
        } catch (Throwable t) {
            Util.log("FAIL " + what + ": " + Util.describe(t));
            System.exit(1);
            return null;
        }
    }

    static void readRange(String boot, String groupId, TopicPartition tp, long start, long end, List<Object> out) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, boot);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "sluice-test-java-executor-" + tp.partition());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        p.put(ConsumerConfig.RECEIVE_BUFFER_CONFIG, "65536");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        Util.log("executor: reading " + tp + " [" + start + ", " + end + ")");
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            consumer.assign(List.of(tp));
            consumer.seek(tp, start);
            long next = start;
            long lastProgress = System.nanoTime();
            while (next < end) {
                List<ConsumerRecord<byte[], byte[]>> got = step("KafkaConsumer.poll(" + tp + " at " + next + ")",
                    () -> consumer.poll(Duration.ofMillis(512)).records(tp));
                for (ConsumerRecord<byte[], byte[]> r : got) {
                    if (r.offset() >= end) {
                        break;
                    }
                    if (r.offset() != next) {
                        Util.log("FAIL " + tp + ": expected offset " + next + ", poll returned " + r.offset());
                        System.exit(1);
                    }
                    out.add(rec(r));
                    next++;
                }
                long position = step("KafkaConsumer.position(" + tp + ")", () -> consumer.position(tp));
                if (!got.isEmpty()) {
                    lastProgress = System.nanoTime();
                    if (position < Math.min(next, end)) {
                        Util.log("FAIL " + tp + ": position " + position + " after reading up to " + next);
                        System.exit(1);
                    }
                    if (next < end && position > next) {
                        // Spark seeks back when the consumer ran ahead of what it handed out.
                        consumer.seek(tp, next);
                    }
                } else if (System.nanoTime() - lastProgress > TimeUnit.SECONDS.toNanos(20)) {
                    Util.log("FAIL " + tp + ": no records for 20 s at offset " + next + " (range end " + end
                        + ", position " + position + ")");
                    System.exit(1);
                }
            }
        }
    }

    static List<Object> rec(ConsumerRecord<byte[], byte[]> r) {
        List<Object> headers = new ArrayList<>();
        for (Header h : r.headers()) {
            headers.add(java.util.Arrays.asList(h.key(), Util.hex(h.value())));
        }
        return java.util.Arrays.asList(r.partition(), r.offset(), Util.hex(r.key()), Util.hex(r.value()), headers,
            r.timestamp());
    }
}
