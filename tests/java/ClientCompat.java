import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java client in the cases tests/compat.rs checks (the client's
 * defaults otherwise):
 *
 *   ClientCompat drain BOOTSTRAP TOPIC PARTITIONS --count N --fetch-max-bytes B --partition-max-bytes B
 *     assign + seekToBeginning, poll until N records; {"records":N,"per_partition":{...}}
 *   ClientCompat produce-batch BOOTSTRAP TOPIC --keys K,-,K,... [--sizes N,...]
 *     one batch to partition 0 (linger until all are queued, no retries);
 *     {"records":[{"offset":O} | {"error":CLASS,"message":M}, ...]}
 */
public final class ClientCompat {
    private ClientCompat() {}

    public static void main(String[] argv) throws Exception {
        Util.Args a = new Util.Args(argv);
        String cmd = a.pos(0, "COMMAND");
        String boot = a.pos(1, "BOOTSTRAP");
        String topic = a.pos(2, "TOPIC");
        switch (cmd) {
            case "drain" -> drain(a, boot, topic);
            case "produce-batch" -> produceBatch(a, boot, topic);
            default -> throw new IllegalArgumentException("unknown command " + cmd);
        }
    }

    private static void drain(Util.Args a, String boot, String topic) {
        int partitions = Integer.parseInt(a.pos(3, "PARTITIONS"));
        long count = a.optLong("count", 0);
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, boot);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "sluice-test-java-compat");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, a.opt("fetch-max-bytes", "52428800"));
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, a.opt("partition-max-bytes", "1048576"));
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        Map<Integer, Long> counts = new TreeMap<>();
        long got = 0;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) {
                tps.add(new TopicPartition(topic, i));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(a.optLong("timeout", 60));
            while (got < count && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    long want = counts.getOrDefault(r.partition(), 0L);
                    if (r.offset() != want) {
                        throw new IllegalStateException("partition " + r.partition() + ": offset " + r.offset()
                            + ", expected " + want);
                    }
                    counts.put(r.partition(), want + 1);
                    got++;
                }
            }
        }
        Map<String, Object> perPartition = new LinkedHashMap<>();
        counts.forEach((k, v) -> perPartition.put(k.toString(), v));
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("records", got);
        out.put("per_partition", perPartition);
        Util.emit(out);
    }

    private static void produceBatch(Util.Args a, String boot, String topic) throws Exception {
        String[] keys = a.opt("keys", "").split(",");
        String[] sizes = a.opt("sizes", "").isEmpty() ? null : a.opt("sizes", "").split(",");
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, boot);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "sluice-test-java-compat");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "1000");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, Integer.toString(4 << 20));
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(8 << 20));
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        List<Object> reports = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> prod = new KafkaProducer<>(p)) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < keys.length; i++) {
                byte[] key = keys[i].equals("-") ? null : keys[i].getBytes();
                byte[] value = new byte[sizes == null ? 16 : Integer.parseInt(sizes[i])];
                sent.add(prod.send(new ProducerRecord<>(topic, 0, key, value)));
            }
            prod.flush();
            for (Future<RecordMetadata> f : sent) {
                Map<String, Object> r = new LinkedHashMap<>();
                try {
                    r.put("offset", f.get(60, TimeUnit.SECONDS).offset());
                } catch (Exception e) {
                    Throwable t = Util.unwrap(e);
                    r.put("error", t.getClass().getSimpleName());
                    r.put("message", String.valueOf(t.getMessage()));
                }
                reports.add(r);
            }
        }
        Util.emit(Map.of("records", reports));
    }
}
