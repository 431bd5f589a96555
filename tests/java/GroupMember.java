import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A long-running member of a consumer group (classic protocol, the client's
 * defaults otherwise: range assignor first, auto commit), for the rebalance
 * tests in tests/groups.rs.
 *
 * Usage: GroupMember BOOTSTRAP TOPIC GROUP --name NAME --stop-file PATH [--session-timeout-ms MS]
 *          [--assignor CLASS]   (e.g. org.apache.kafka.clients.consumer.CooperativeStickyAssignor)
 *
 * Prints one JSON object per line on stdout:
 *   {"ev":"assigned","gen":G,"member":ID,"parts":[...]}  after each assignment: everything it owns now
 *   {"ev":"revoked"|"lost","gen":G,"member":ID,"parts":[...]}  the partitions it gave up
 *   {"ev":"records","r":[[partition, offset], ...]}  what one poll returned
 *   {"ev":"closed"}  after close() (LeaveGroup) once PATH exists
 * Auto commit commits during the next poll, after the records were printed.
 */
public final class GroupMember {
    private GroupMember() {}

    public static void main(String[] argv) throws Exception {
        Util.Args a = new Util.Args(argv);
        String boot = a.pos(0, "BOOTSTRAP");
        String topic = a.pos(1, "TOPIC");
        String group = a.pos(2, "GROUP");
        String name = a.opt("name", "member");
        Path stop = Path.of(a.opt("stop-file", "/nonexistent"));
        long session = a.optLong("session-timeout-ms", 6000);

        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, boot);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "sluice-test-java-" + name);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "true");
        p.put(ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, "500");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, Long.toString(session));
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, Long.toString(Math.max(100, session / 8)));
        String assignor = a.opt("assignor", null);
        if (assignor != null) {
            p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor);
        }
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());

        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                    report("revoked", c, parts);
                }

                @Override
                public void onPartitionsLost(Collection<TopicPartition> parts) {
                    report("lost", c, parts);
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                    // The whole assignment, also for cooperative assignors
                    // (whose callback only names what was added).
                    report("assigned", c, c.assignment());
                }
            });
            Map<String, Object> started = new LinkedHashMap<>();
            started.put("ev", "started");
            started.put("name", name);
            Util.emit(started);
            while (!Files.exists(stop)) {
                ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(200));
                if (recs.isEmpty()) {
                    continue;
                }
                List<Object> r = new ArrayList<>();
                for (ConsumerRecord<byte[], byte[]> rec : recs) {
                    r.add(List.of(rec.partition(), rec.offset()));
                }
                Map<String, Object> ev = new LinkedHashMap<>();
                ev.put("ev", "records");
                ev.put("r", r);
                Util.emit(ev);
            }
        } // close(): commits what was polled, leaves the group
        Util.emit(Map.of("ev", "closed"));
    }

    private static void report(String what, KafkaConsumer<byte[], byte[]> c, Collection<TopicPartition> parts) {
        TreeSet<Integer> ps = new TreeSet<>();
        for (TopicPartition tp : parts) {
            ps.add(tp.partition());
        }
        Map<String, Object> ev = new LinkedHashMap<>();
        ev.put("ev", what);
        ev.put("gen", c.groupMetadata().generationId());
        ev.put("member", c.groupMetadata().memberId());
        ev.put("parts", new ArrayList<>(ps));
        Util.emit(ev);
    }
}
