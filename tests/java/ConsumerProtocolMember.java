import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * One member of a consumer group, for tests/consumer_protocol.rs (the
 * KIP-848 protocol; GroupMember is the classic one): subscribes, then
 * polls and commits synchronously until STOPFILE exists (or 100 s pass),
 * then closes (leaving the group).
 *
 * Usage: ConsumerProtocolMember BOOTSTRAP TOPIC GROUP PROTOCOL STOPFILE
 *   PROTOCOL: classic or consumer (KIP-848).
 *
 * Prints one JSON object per line, flushed at once:
 *   {"event":"assigned","partitions":[..]}  partitions added to the member
 *   {"event":"revoked","partitions":[..]}   partitions taken away (or lost)
 *   {"event":"records","records":[[p,o],..]} what a poll returned
 *   {"event":"closed"}
 */
public final class ConsumerProtocolMember {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2], protocol = args[3];
        Path stop = Path.of(args[4]);
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        if (protocol.equals("classic")) {
            // The broker's minimum in the tests; KIP-848 sessions are the broker's.
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        }
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                    if (!parts.isEmpty()) {
                        out.println(event("revoked", parts));
                    }
                }

                @Override
                public void onPartitionsLost(Collection<TopicPartition> parts) {
                    if (!parts.isEmpty()) {
                        out.println(event("revoked", parts));
                    }
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                    if (!parts.isEmpty()) {
                        out.println(event("assigned", parts));
                    }
                }
            });
            long deadline = System.nanoTime() + Duration.ofSeconds(100).toNanos();
            while (!Files.exists(stop) && System.nanoTime() < deadline) {
                ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(200));
                if (recs.isEmpty()) {
                    continue;
                }
                StringBuilder sb = new StringBuilder("{\"event\":\"records\",\"records\":[");
                boolean first = true;
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    sb.append(first ? "" : ",").append('[').append(r.partition()).append(',').append(r.offset()).append(']');
                    first = false;
                }
                out.println(sb.append("]}"));
                try {
                    c.commitSync(Duration.ofSeconds(10));
                } catch (Exception e) {
                    // A rebalance may take the partitions first; the next owner re-reads.
                    System.err.println("commit failed: " + e);
                }
            }
        }
        out.println("{\"event\":\"closed\"}");
    }

    private static String event(String name, Collection<TopicPartition> parts) {
        String ps = parts.stream().map(tp -> Integer.toString(tp.partition())).sorted().collect(Collectors.joining(","));
        return "{\"event\":\"" + name + "\",\"partitions\":[" + ps + "]}";
    }
}
