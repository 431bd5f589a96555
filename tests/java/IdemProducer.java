import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java client's default producer (idempotent, acks=all: nothing about
 * either is configured) in a paced send loop, for the exactly-once tests.
 *
 * Usage: IdemProducer BOOTSTRAP TOPIC [--count N] [--seed S] [--chunk K --pace-ms MS] [--progress-every K]
 *                     [--until-file PATH] [--request-timeout-ms MS]
 *
 * Record i has key "k-i" and the unique value "SEED-i". Every K sends the loop
 * sleeps MS ms; with --until-file it stops sending (before N) once PATH
 * exists, checked every K sends. Every K acknowledgements it prints "progress acked=N" on
 * stderr (the Rust test restarts the broker or drops connections when it sees
 * them). At the end it prints one JSON object:
 *   {"acked": [[i, partition, offset, ack_ms], ...], "failed": [[i, "error"], ...], "sent": n,
 *    "idempotence": bool, "acks": "...", "retries": n, "errors": n}
 * where retries/errors are the producer's record-retry-total and
 * record-error-total metrics. Exits 0 even if some sends failed (the test
 * decides); non-zero only if the producer itself broke.
 */
public final class IdemProducer {
    private IdemProducer() {}

    public static void main(String[] argv) throws Exception {
        Util.Args a = new Util.Args(argv);
        String boot = a.pos(0, "BOOTSTRAP");
        String topic = a.pos(1, "TOPIC");
        int count = (int) a.optLong("count", 20_000);
        String seed = a.opt("seed", "idem");
        int chunk = (int) a.optLong("chunk", 0);
        long paceMs = a.optLong("pace-ms", 0);
        int progressEvery = (int) a.optLong("progress-every", 0);
        String untilFile = a.opt("until-file", "");
        long requestTimeout = a.optLong("request-timeout-ms", 0);

        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, boot);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "sluice-test-java-idempotent");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        if (requestTimeout > 0) {
            // A SIGSTOPped broker keeps connections open: shorter than the
            // 30 s default so that the chaos test's rounds stay short.
            p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, Long.toString(requestTimeout));
        }
        // What the defaults resolve to (the test asserts idempotence and acks=all).
        ProducerConfig resolved = new ProducerConfig(p);
        boolean idempotence = resolved.getBoolean(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG);
        String acks = resolved.getString(ProducerConfig.ACKS_CONFIG);

        long[][] acked = new long[count][];
        String[] failed = new String[count];
        AtomicInteger ackedCount = new AtomicInteger();
        long retries;
        long errors;
        int sent = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < count; i++) {
                final int idx = i;
                byte[] key = Util.utf8("k-" + i);
                byte[] value = Util.utf8(seed + "-" + i);
                producer.send(new ProducerRecord<>(topic, key, value), (md, err) -> {
                    if (err != null) {
                        failed[idx] = Util.describe(err);
                        return;
                    }
                    acked[idx] = new long[] {idx, md.partition(), md.offset(), System.currentTimeMillis()};
                    int n = ackedCount.incrementAndGet();
                    if (progressEvery > 0 && n % progressEvery == 0) {
                        Util.log("progress acked=" + n);
                    }
                });
                sent = i + 1;
                if (chunk > 0 && (i + 1) % chunk == 0) {
                    if (paceMs > 0) {
                        Thread.sleep(paceMs);
                    }
                    if (!untilFile.isEmpty() && new java.io.File(untilFile).exists()) {
                        break;
                    }
                }
            }
            producer.flush();
            retries = metric(producer.metrics(), "record-retry-total");
            errors = metric(producer.metrics(), "record-error-total");
        }
        List<Object> ackedList = new ArrayList<>();
        List<Object> failedList = new ArrayList<>();
        for (int i = 0; i < sent; i++) {
            if (acked[i] != null) {
                ackedList.add(List.of(acked[i][0], acked[i][1], acked[i][2], acked[i][3]));
            } else {
                failedList.add(List.of(i, failed[i] == null ? "no callback" : failed[i]));
            }
        }
        Util.log("done: acked=" + ackedList.size() + " failed=" + failedList.size() + " retries=" + retries
            + " errors=" + errors);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("idempotence", idempotence);
        out.put("acks", acks);
        out.put("retries", retries);
        out.put("errors", errors);
        out.put("sent", sent);
        out.put("failed", failedList);
        out.put("acked", ackedList);
        Util.emit(out);
    }

    static long metric(Map<MetricName, ? extends Metric> metrics, String name) {
        for (Map.Entry<MetricName, ? extends Metric> e : metrics.entrySet()) {
            if (e.getKey().name().equals(name) && e.getKey().group().equals("producer-metrics")) {
                Object v = e.getValue().metricValue();
                return v instanceof Number ? ((Number) v).longValue() : -1;
            }
        }
        return -1;
    }
}
