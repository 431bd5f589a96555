import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.AlterConfigsOptions;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreatePartitionsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.OffsetOutOfRangeException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Admin API as the Java client (and Spark's driver) uses it, checked
 * call by call against Apache Kafka 4.x semantics.
 *
 * Usage: AdminCheck COMMAND BOOTSTRAP TOPIC [options]
 *   topics      describeCluster, createTopics, describeTopics (by name, by id), listTopics, deleteTopics (by name, by id)
 *   offsets     listOffsets earliest/latest/forTimestamp/maxTimestamp (both isolation levels), deleteRecords
 *   configs     describeConfigs (topic, broker), incrementalAlterConfigs SET/DELETE/APPEND/SUBTRACT, applied live;
 *               --static-segment-bytes N: the broker was started with log.segment.bytes=N;
 *               the broker must run with a short log.retention.check.interval.ms (the retention check waits 15 s)
 *   partitions  createPartitions 3 -> 5
 *   logdirs     describeLogDirs
 *
 * Prints one "OK   name: detail" or "FAIL name: exception [error code]" line per
 * check and a final "RESULT" line; exits 1 if any check failed.
 */
public final class AdminCheck {
    private AdminCheck() {}

    public static void main(String[] argv) throws Exception {
        Util.Args a = new Util.Args(argv);
        String cmd = a.pos(0, "COMMAND");
        String boot = a.pos(1, "BOOTSTRAP");
        String topic = a.pos(2, "TOPIC");
        watchdog(55);
        Util.Checks c = new Util.Checks();
        try (Admin admin = Util.admin(boot)) {
            switch (cmd) {
                case "topics" -> topics(admin, boot, topic, c);
                case "offsets" -> offsets(admin, boot, topic, c);
                case "configs" -> configs(admin, boot, topic, a.optLong("static-segment-bytes", -1), c);
                case "partitions" -> partitions(admin, boot, topic, c);
                case "logdirs" -> logdirs(admin, boot, topic, c);
                default -> throw new IllegalArgumentException("unknown command " + cmd);
            }
        }
        c.finish();
    }

    /** Ends the run (status 2) if it hangs, so the Rust test gets the lines printed so far. */
    static void watchdog(int seconds) {
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(seconds * 1000L);
            } catch (InterruptedException e) {
                return;
            }
            System.out.println("FAIL watchdog: the run took more than " + seconds + " s");
            System.out.flush();
            Runtime.getRuntime().halt(2);
        });
        t.setDaemon(true);
        t.start();
    }

    // ------------------------------------------------------------------ topics

    static void topics(Admin admin, String boot, String topic, Util.Checks c) {
        int port = Integer.parseInt(boot.substring(boot.lastIndexOf(':') + 1));
        int[] node = {-1};
        c.check("describeCluster: one node at the bootstrap port, a cluster id, a controller", () -> {
            DescribeClusterResult r = admin.describeCluster();
            Collection<Node> nodes = Util.get(r.nodes());
            String clusterId = Util.get(r.clusterId());
            Node controller = Util.get(r.controller());
            Util.expectEq(1, nodes.size(), "number of nodes " + nodes);
            Node n = nodes.iterator().next();
            Util.expectEq(port, n.port(), "the node's port");
            Util.expect(clusterId != null && !clusterId.isEmpty(), "cluster id is empty: " + clusterId);
            Util.expect(controller != null && controller.id() == n.id(),
                "controller should be the one node " + n.id() + ", got " + controller);
            node[0] = n.id();
            return "node " + n + ", cluster id " + clusterId + ", controller " + controller.id();
        });

        Uuid[] id = {null};
        boolean created = c.check("createTopics(" + topic + ", 3 partitions, rf 1): topic id, partitions, rf", () -> {
            CreateTopicsResult r = admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1)));
            Util.get(r.all());
            Uuid tid = Util.get(r.topicId(topic));
            Util.expect(tid != null && !Uuid.ZERO_UUID.equals(tid), "CreateTopics returned topic id " + tid);
            Util.expectEq(3, Util.get(r.numPartitions(topic)), "numPartitions");
            Util.expectEq(1, Util.get(r.replicationFactor(topic)), "replicationFactor");
            id[0] = tid;
            return "topic id " + tid;
        });
        if (!created) {
            c.skip("the rest of 'topics'", "createTopics failed");
            return;
        }
        c.check("createTopics returns the topic's configs (CreateTopics v5+)", () -> {
            // A second CreateTopics with validateOnly would fail (exists); the configs came with the first
            // response, so ask again the way the client does: create another topic.
            String t2 = topic + "-cfg";
            CreateTopicsResult r = admin.createTopics(List.of(new NewTopic(t2, 1, (short) 1)));
            Util.get(r.all());
            Config cfg = Util.get(r.config(t2));
            ConfigEntry e = cfg.get("retention.ms");
            Util.expect(e != null, "no retention.ms among " + names(cfg));
            Util.expectEq("604800000", e.value(), "retention.ms");
            Util.get(admin.deleteTopics(List.of(t2)).all());
            return cfg.entries().size() + " entries";
        });
        c.check("createTopics of an existing topic -> TopicExistsException", () ->
            Util.expectError(TopicExistsException.class,
                () -> Util.get(admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all())));
        c.check("describeTopics(by name): 3 partitions led by the node, topic id as created", () -> {
            TopicDescription d = Util.get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
            Util.expectEq(topic, d.name(), "name");
            Util.expectEq(id[0], d.topicId(), "topic id");
            Util.expect(!d.isInternal(), "internal");
            Util.expectEq(3, d.partitions().size(), "partition count");
            for (TopicPartitionInfo p : d.partitions()) {
                Util.expect(p.leader() != null, "partition " + p.partition() + " has no leader");
                if (node[0] >= 0) {
                    Util.expectEq(node[0], p.leader().id(), "leader of partition " + p.partition());
                }
                Util.expectEq(1, p.replicas().size(), "replicas of partition " + p.partition());
                Util.expectEq(1, p.isr().size(), "isr of partition " + p.partition());
            }
            return d.partitions().size() + " partitions, topic id " + d.topicId();
        });
        c.check("describeTopics(by topic id)", () -> {
            Map<Uuid, TopicDescription> m =
                Util.get(admin.describeTopics(TopicCollection.ofTopicIds(List.of(id[0]))).allTopicIds());
            TopicDescription d = m.get(id[0]);
            Util.expect(d != null, "no description for " + id[0] + ": " + m);
            Util.expectEq(topic, d.name(), "name");
            Util.expectEq(3, d.partitions().size(), "partition count");
            return d.name();
        });
        c.check("listTopics contains the topic", () -> {
            Set<String> names = Util.get(admin.listTopics().names());
            Util.expect(names.contains(topic), topic + " not in " + names);
            return names.size() + " topics";
        });
        String unknown = topic + "-nonexistent";
        c.check("describeTopics(unknown) -> UnknownTopicOrPartitionException, and it is not auto-created", () -> {
            String r = Util.expectError(UnknownTopicOrPartitionException.class,
                () -> Util.get(admin.describeTopics(List.of(unknown)).allTopicNames()));
            Set<String> names = Util.get(admin.listTopics().names());
            Util.expect(!names.contains(unknown), "describeTopics auto-created " + unknown);
            return r;
        });
        c.check("deleteTopics(by name), then listTopics lacks it and describeTopics fails", () -> {
            Util.get(admin.deleteTopics(List.of(topic)).all());
            waitGone(admin, topic);
            return Util.expectError(UnknownTopicOrPartitionException.class,
                () -> Util.get(admin.describeTopics(List.of(topic)).allTopicNames()));
        });
        c.check("deleteTopics(by topic id), then listTopics lacks it", () -> {
            String t2 = topic + "-byid";
            CreateTopicsResult r = admin.createTopics(List.of(new NewTopic(t2, 1, (short) 1)));
            Util.get(r.all());
            Uuid tid = Util.get(r.topicId(t2));
            Util.get(admin.deleteTopics(TopicCollection.ofTopicIds(List.of(tid))).all());
            waitGone(admin, t2);
            return t2 + " (" + tid + ") deleted";
        });
        c.check("deleteTopics(unknown) -> UnknownTopicOrPartitionException", () ->
            Util.expectError(UnknownTopicOrPartitionException.class,
                () -> Util.get(admin.deleteTopics(List.of(unknown)).all())));
    }

    static void waitGone(Admin admin, String topic) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (true) {
            Set<String> names = Util.get(admin.listTopics().names());
            if (!names.contains(topic)) {
                return;
            }
            Util.expect(System.nanoTime() < deadline, "listTopics still lists " + topic + " 5 s after deleteTopics");
            Thread.sleep(100);
        }
    }

    static boolean createTopic(Admin admin, Util.Checks c, String topic, int partitions, Map<String, String> configs) {
        return c.check("createTopics(" + topic + ", " + partitions + " partitions" + (configs.isEmpty() ? "" : ", " + configs)
            + ")", () -> {
                Util.get(admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1).configs(configs))).all());
                return null;
            });
    }

    // ------------------------------------------------------------------ offsets

    static ListOffsetsResultInfo listOffset(Admin admin, TopicPartition tp, OffsetSpec spec, IsolationLevel iso)
        throws Exception {
        return Util.get(admin.listOffsets(Map.of(tp, spec), new ListOffsetsOptions(iso)).partitionResult(tp));
    }

    static ListOffsetsResultInfo listOffset(Admin admin, TopicPartition tp, OffsetSpec spec) throws Exception {
        return listOffset(admin, tp, spec, IsolationLevel.READ_UNCOMMITTED);
    }

    /** Checks that `spec` on `tp` gives offset `off` (and timestamp `ts` unless null). */
    static void offsetCheck(Admin admin, Util.Checks c, String name, TopicPartition tp, OffsetSpec spec,
        IsolationLevel iso, long off, Long ts) {
        c.check(name + " -> offset " + off + (ts == null ? "" : ", timestamp " + ts), () -> {
            ListOffsetsResultInfo r = listOffset(admin, tp, spec, iso);
            Util.expectEq(off, r.offset(), "offset");
            if (ts != null) {
                Util.expectEq(ts, r.timestamp(), "timestamp");
            }
            return r.toString();
        });
    }

    static void offsets(Admin admin, String boot, String topic, Util.Checks c) {
        if (!createTopic(admin, c, topic, 2, Map.of())) {
            return;
        }
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        // Ten records on partition 0 in two batches (0..4, 5..9), timestamps chosen:
        // ascending by 10 ms, except offset 8, which carries the largest one.
        long b = System.currentTimeMillis() - 3_600_000L;
        long[] ts = {b, b + 10, b + 20, b + 30, b + 40, b + 50, b + 60, b + 70, b + 1000, b + 80};
        boolean produced = c.check("produce 10 records with chosen timestamps to partition 0 (default producer)", () -> {
            try (KafkaProducer<byte[], byte[]> p = producer(boot)) {
                List<RecordMetadata> mds = new ArrayList<>();
                for (int i = 0; i < ts.length; i++) {
                    mds.add(p.send(new ProducerRecord<>(topic, 0, ts[i], null, Util.utf8("offsets-" + i))).get(30,
                        TimeUnit.SECONDS));
                    if (i == 4) {
                        p.flush();
                    }
                }
                for (int i = 0; i < mds.size(); i++) {
                    Util.expectEq((long) i, mds.get(i).offset(), "offset of record " + i);
                    Util.expectEq(ts[i], mds.get(i).timestamp(), "timestamp of record " + i);
                }
            }
            return "base timestamp " + b;
        });
        if (!produced) {
            c.skip("the rest of 'offsets'", "producing failed");
            return;
        }
        IsolationLevel ru = IsolationLevel.READ_UNCOMMITTED;
        IsolationLevel rc = IsolationLevel.READ_COMMITTED;
        offsetCheck(admin, c, "listOffsets p0 earliest", p0, OffsetSpec.earliest(), ru, 0, null);
        offsetCheck(admin, c, "listOffsets p0 latest", p0, OffsetSpec.latest(), ru, 10, null);
        offsetCheck(admin, c, "listOffsets p0 latest READ_COMMITTED", p0, OffsetSpec.latest(), rc, 10, null);
        offsetCheck(admin, c, "listOffsets p0 earliest READ_COMMITTED", p0, OffsetSpec.earliest(), rc, 0, null);
        offsetCheck(admin, c, "listOffsets p0 maxTimestamp", p0, OffsetSpec.maxTimestamp(), ru, 8, b + 1000);
        offsetCheck(admin, c, "listOffsets p0 forTimestamp(base-100)", p0, OffsetSpec.forTimestamp(b - 100), ru, 0, b);
        offsetCheck(admin, c, "listOffsets p0 forTimestamp(base)", p0, OffsetSpec.forTimestamp(b), ru, 0, b);
        offsetCheck(admin, c, "listOffsets p0 forTimestamp(base+25)", p0, OffsetSpec.forTimestamp(b + 25), ru, 3,
            b + 30);
        offsetCheck(admin, c, "listOffsets p0 forTimestamp(base+50), first of the second batch", p0,
            OffsetSpec.forTimestamp(b + 50), ru, 5, b + 50);
        offsetCheck(admin, c, "listOffsets p0 forTimestamp(base+55), inside the second batch", p0,
            OffsetSpec.forTimestamp(b + 55), ru, 6, b + 60);
        // The first record in offset order whose timestamp is >= the target: offset 8
        // (b+1000), not offset 9 (b+80), whose timestamp is closer.
        offsetCheck(admin, c, "listOffsets p0 forTimestamp(base+75): first offset with timestamp >= target", p0,
            OffsetSpec.forTimestamp(b + 75), ru, 8, b + 1000);
        offsetCheck(admin, c, "listOffsets p0 forTimestamp(base+1001): none -> -1", p0,
            OffsetSpec.forTimestamp(b + 1001), ru, -1, -1L);
        offsetCheck(admin, c, "listOffsets p0 forTimestamp(base+25) READ_COMMITTED", p0,
            OffsetSpec.forTimestamp(b + 25), rc, 3, b + 30);
        offsetCheck(admin, c, "listOffsets p1 (empty) earliest", p1, OffsetSpec.earliest(), ru, 0, null);
        offsetCheck(admin, c, "listOffsets p1 (empty) latest", p1, OffsetSpec.latest(), ru, 0, null);
        offsetCheck(admin, c, "listOffsets p1 (empty) maxTimestamp -> -1", p1, OffsetSpec.maxTimestamp(), ru, -1, -1L);
        offsetCheck(admin, c, "listOffsets p1 (empty) forTimestamp(base) -> -1", p1, OffsetSpec.forTimestamp(b), ru, -1,
            -1L);
        c.check("listOffsets of two partitions in one call (p0 latest, p1 earliest)", () -> {
            Map<TopicPartition, ListOffsetsResultInfo> m =
                Util.get(admin.listOffsets(Map.of(p0, OffsetSpec.latest(), p1, OffsetSpec.earliest())).all());
            Util.expectEq(10L, m.get(p0).offset(), "p0 latest");
            Util.expectEq(0L, m.get(p1).offset(), "p1 earliest");
            return m.toString();
        });

        c.check("consumer seek(p0, offset 6 with the leader epoch ListOffsets gave) is validated "
            + "(OffsetForLeaderEpoch) and reads from 6; the batch carries that leader epoch", () -> {
                Optional<Integer> epoch = listOffset(admin, p0, OffsetSpec.latest()).leaderEpoch();
                Util.expect(epoch.isPresent(), "ListOffsets returned no leader epoch");
                List<ConsumerRecord<byte[], byte[]>> recs = read(boot, p0, 6, epoch, 4);
                Util.expectEq(6L, recs.get(0).offset(), "first offset read");
                Util.expectEq(epoch, recs.get(0).leaderEpoch(), "leader epoch of the record's batch");
                return "leader epoch " + epoch.get();
            });

        boolean deleted = c.check("deleteRecords(p0 before offset 4) -> low watermark 4", () -> {
            long low = Util.get(admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(p0))
                .lowWatermark();
            Util.expectEq(4L, low, "low watermark");
            return null;
        });
        if (deleted) {
            offsetCheck(admin, c, "after deleteRecords: listOffsets p0 earliest", p0, OffsetSpec.earliest(), ru, 4, null);
            offsetCheck(admin, c, "after deleteRecords: listOffsets p0 latest", p0, OffsetSpec.latest(), ru, 10, null);
            offsetCheck(admin, c, "after deleteRecords: listOffsets p0 forTimestamp(base-100)", p0,
                OffsetSpec.forTimestamp(b - 100), ru, 4, b + 40);
            c.check("after deleteRecords: a consumer's seekToBeginning starts at offset 4", () -> {
                List<ConsumerRecord<byte[], byte[]>> recs = read(boot, p0, -2, 6);
                Util.expectEq(4L, recs.get(0).offset(), "first offset read");
                Util.expectEq("offsets-4", new String(recs.get(0).value()), "first value read");
                return recs.size() + " records from offset 4";
            });
            c.check("deleteRecords(p0 before 2), below the low watermark: low watermark stays 4", () -> {
                long low = Util.get(admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(2))).lowWatermarks()
                    .get(p0)).lowWatermark();
                Util.expectEq(4L, low, "low watermark");
                return null;
            });
        }
        c.check("deleteRecords(p0 before 100), beyond the high watermark -> OffsetOutOfRangeException", () ->
            Util.expectError(OffsetOutOfRangeException.class,
                () -> Util.get(admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(100))).all())));
    }

    static KafkaProducer<byte[], byte[]> producer(String boot) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, boot);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "sluice-test-java-producer");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "15000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "20000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        return new KafkaProducer<>(p);
    }

    /**
     * Reads `count` records of `tp` from `offset` (-2: seekToBeginning) with
     * assign + seek + poll, as a Spark executor does.
     */
    static List<ConsumerRecord<byte[], byte[]>> read(String boot, TopicPartition tp, long offset, int count) {
        return read(boot, tp, offset, Optional.empty(), count);
    }

    /**
     * As above; with a leader epoch the seek position carries it, so the
     * consumer validates it with OffsetForLeaderEpoch before fetching.
     */
    static List<ConsumerRecord<byte[], byte[]>> read(String boot, TopicPartition tp, long offset,
        Optional<Integer> epoch, int count) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, boot);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "spark-kafka-source-" + UUID.randomUUID() + "-executor");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            consumer.assign(List.of(tp));
            if (offset == -2) {
                consumer.seekToBeginning(List.of(tp));
            } else if (epoch.isPresent()) {
                consumer.seek(tp, new OffsetAndMetadata(offset, epoch, ""));
            } else {
                consumer.seek(tp, offset);
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
            while (out.size() < count) {
                Util.expect(System.nanoTime() < deadline,
                    "read " + out.size() + " of " + count + " records of " + tp + " in 15 s");
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200)).records(tp)) {
                    out.add(r);
                }
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ configs

    static Config describe(Admin admin, ConfigResource res) throws Exception {
        return Util.get(admin.describeConfigs(List.of(res), new DescribeConfigsOptions().includeSynonyms(true)).all())
            .get(res);
    }

    /**
     * describeConfigs until {@code name} shows {@code value}, at most 5 s: Apache Kafka's broker answers from
     * its copy of the metadata, which takes an alteration a moment after the controller acknowledged it.
     */
    static Config describeShowing(Admin admin, ConfigResource res, String name, String value) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (true) {
            Config cfg = describe(admin, res);
            ConfigEntry e = cfg.get(name);
            if ((e != null && value.equals(e.value())) || System.nanoTime() > deadline) {
                return cfg;
            }
            Thread.sleep(100);
        }
    }

    static List<String> names(Config cfg) {
        List<String> n = new ArrayList<>();
        for (ConfigEntry e : cfg.entries()) {
            n.add(e.name());
        }
        return n;
    }

    static ConfigEntry entry(Config cfg, String name) {
        ConfigEntry e = cfg.get(name);
        Util.expect(e != null, "no entry " + name + " among " + names(cfg));
        return e;
    }

    static String brief(ConfigEntry e) {
        List<String> syn = new ArrayList<>();
        for (ConfigEntry.ConfigSynonym s : e.synonyms()) {
            syn.add(s.name() + "=" + s.value() + "/" + s.source());
        }
        return e.name() + "=" + e.value() + " source=" + e.source() + " default=" + e.isDefault() + " readOnly="
            + e.isReadOnly() + " type=" + e.type() + " synonyms=" + syn;
    }

    /** Value and source as expected; the first synonym (if any) is the entry's own source, as Kafka orders them. */
    static ConfigEntry expectEntry(Config cfg, String name, String value, ConfigEntry.ConfigSource source) {
        ConfigEntry e = entry(cfg, name);
        Util.expectEq(value, e.value(), name + " value (" + brief(e) + ")");
        Util.expectEq(source, e.source(), name + " source (" + brief(e) + ")");
        Util.expectEq(source == ConfigEntry.ConfigSource.DEFAULT_CONFIG, e.isDefault(), name + " isDefault (" + brief(e)
            + ")");
        if (!e.synonyms().isEmpty()) {
            Util.expectEq(source, e.synonyms().get(0).source(), name + " first synonym's source (" + brief(e) + ")");
        }
        return e;
    }

    /** The entry's synonyms, exactly: "name=value/SOURCE", most specific first. */
    static void expectSynonyms(ConfigEntry e, String... expected) {
        List<String> got = new ArrayList<>();
        for (ConfigEntry.ConfigSynonym s : e.synonyms()) {
            got.add(s.name() + "=" + s.value() + "/" + s.source());
        }
        Util.expectEq(List.of(expected), got, e.name() + " synonyms");
    }

    static void alter(Admin admin, ConfigResource res, boolean validateOnly, AlterConfigOp... ops) throws Exception {
        Util.get(admin.incrementalAlterConfigs(Map.of(res, List.of(ops)), new AlterConfigsOptions().validateOnly(
            validateOnly)).all());
    }

    static AlterConfigOp set(String name, String value) {
        return new AlterConfigOp(new ConfigEntry(name, value), AlterConfigOp.OpType.SET);
    }

    static AlterConfigOp op(AlterConfigOp.OpType type, String name, String value) {
        return new AlterConfigOp(new ConfigEntry(name, value), type);
    }

    static String produceOne(String boot, String topic, byte[] key, int valueBytes) throws Exception {
        try (KafkaProducer<byte[], byte[]> p = producer(boot)) {
            RecordMetadata md = p.send(new ProducerRecord<>(topic, 0, key, new byte[valueBytes])).get(30,
                TimeUnit.SECONDS);
            return "offset " + md.offset();
        }
    }

    static void configs(Admin admin, String boot, String topic, long staticSegmentBytes, Util.Checks c) {
        final ConfigEntry.ConfigSource dflt = ConfigEntry.ConfigSource.DEFAULT_CONFIG;
        final ConfigEntry.ConfigSource dyn = ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG;
        final ConfigEntry.ConfigSource stat = ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG;
        String nodeId = "1";
        try {
            nodeId = Integer.toString(Util.get(admin.describeCluster().nodes()).iterator().next().id());
        } catch (Exception e) {
            System.out.println("note: describeCluster failed (" + Util.describe(e) + "); using broker id 1");
        }
        if (!createTopic(admin, c, topic, 1, Map.of())) {
            return;
        }
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        c.check("describeConfigs(topic): Kafka's topic configs with defaults, sources and types", () -> {
            Config cfg = describe(admin, res);
            for (String n : List.of("cleanup.policy", "retention.ms", "retention.bytes", "segment.bytes", "segment.ms",
                "max.message.bytes", "min.insync.replicas", "message.timestamp.type", "compression.type")) {
                entry(cfg, n);
            }
            ConfigEntry r = expectEntry(cfg, "retention.ms", "604800000", dflt);
            Util.expectEq(ConfigEntry.ConfigType.LONG, r.type(), "retention.ms type");
            Util.expect(!r.isReadOnly() && !r.isSensitive(), "retention.ms read-only or sensitive: " + brief(r));
            // Kafka lists a broker synonym only from the topic config's first broker synonym on
            // (ConfigHelper.configSynonyms): log.retention.ms has no default (log.retention.hours=168
            // stands in for it), so a default retention.ms has no synonyms at all.
            expectSynonyms(r);
            ConfigEntry cp = expectEntry(cfg, "cleanup.policy", "delete", dflt);
            Util.expectEq(ConfigEntry.ConfigType.LIST, cp.type(), "cleanup.policy type");
            expectSynonyms(cp, "log.cleanup.policy=delete/DEFAULT_CONFIG");
            ConfigEntry mm = expectEntry(cfg, "max.message.bytes", "1048588", dflt);
            Util.expectEq(ConfigEntry.ConfigType.INT, mm.type(), "max.message.bytes type");
            expectSynonyms(mm, "message.max.bytes=1048588/DEFAULT_CONFIG");
            if (staticSegmentBytes > 0) {
                // Set in the broker's properties file: the topic entry reports the broker's value and
                // source, then Kafka's built-in default.
                ConfigEntry s = expectEntry(cfg, "segment.bytes", Long.toString(staticSegmentBytes), stat);
                expectSynonyms(s, "log.segment.bytes=" + staticSegmentBytes + "/STATIC_BROKER_CONFIG",
                    "log.segment.bytes=1073741824/DEFAULT_CONFIG");
            }
            return cfg.entries().size() + " entries; " + brief(r);
        });
        c.check("describeConfigs(unknown topic) -> UnknownTopicOrPartitionException", () ->
            Util.expectError(UnknownTopicOrPartitionException.class,
                () -> describe(admin, new ConfigResource(ConfigResource.Type.TOPIC, topic + "-nonexistent"))));
        String node = nodeId;
        c.check("describeConfigs(broker " + node + "): static and default broker configs", () -> {
            Config cfg = describe(admin, new ConfigResource(ConfigResource.Type.BROKER, node));
            Util.expect(cfg.entries().size() >= 5, "only " + cfg.entries().size() + " broker configs: " + names(cfg));
            expectEntry(cfg, "message.max.bytes", "1048588", dflt);
            entry(cfg, "num.partitions");
            if (staticSegmentBytes > 0) {
                expectSynonyms(expectEntry(cfg, "log.segment.bytes", Long.toString(staticSegmentBytes), stat),
                    "log.segment.bytes=" + staticSegmentBytes + "/STATIC_BROKER_CONFIG",
                    "log.segment.bytes=1073741824/DEFAULT_CONFIG");
            }
            return cfg.entries().size() + " entries; " + brief(entry(cfg, "num.partitions"));
        });

        c.check("incrementalAlterConfigs SET retention.ms=3600000, then describe: DYNAMIC_TOPIC_CONFIG, "
            + "the topic's own value its only synonym", () -> {
                alter(admin, res, false, set("retention.ms", "3600000"));
                ConfigEntry e =
                    expectEntry(describeShowing(admin, res, "retention.ms", "3600000"), "retention.ms", "3600000", dyn);
                // No broker synonym: log.retention.ms is neither set nor has a default (see above).
                expectSynonyms(e, "retention.ms=3600000/DYNAMIC_TOPIC_CONFIG");
                return brief(e);
            });
        c.check("incrementalAlterConfigs validateOnly SET retention.ms=1 changes nothing", () -> {
            String before = entry(describe(admin, res), "retention.ms").value();
            alter(admin, res, true, set("retention.ms", "1"));
            Util.expectEq(before, entry(describe(admin, res), "retention.ms").value(), "retention.ms after validateOnly");
            return "still " + before;
        });
        c.check("incrementalAlterConfigs SET retention.ms=notanumber -> InvalidConfigurationException", () ->
            Util.expectError(InvalidConfigurationException.class,
                () -> { alter(admin, res, false, set("retention.ms", "notanumber")); return null; }));
        c.check("incrementalAlterConfigs SET no.such.config=1 -> InvalidConfigurationException", () ->
            Util.expectError(InvalidConfigurationException.class,
                () -> { alter(admin, res, false, set("no.such.config", "1")); return null; }));
        c.check("incrementalAlterConfigs on an unknown topic -> UnknownTopicOrPartitionException", () ->
            Util.expectError(UnknownTopicOrPartitionException.class, () -> {
                alter(admin, new ConfigResource(ConfigResource.Type.TOPIC, topic + "-nonexistent"), false,
                    set("retention.ms", "1000"));
                return null;
            }));
        c.check("incrementalAlterConfigs DELETE retention.ms -> back to the default", () -> {
            alter(admin, res, false, op(AlterConfigOp.OpType.DELETE, "retention.ms", null));
            Config cfg = describeShowing(admin, res, "retention.ms", "604800000");
            return brief(expectEntry(cfg, "retention.ms", "604800000", dflt));
        });
        c.check("incrementalAlterConfigs APPEND cleanup.policy compact -> delete,compact; SUBTRACT delete -> compact; "
            + "DELETE -> delete", () -> {
                alter(admin, res, false, op(AlterConfigOp.OpType.APPEND, "cleanup.policy", "compact"));
                expectEntry(describeShowing(admin, res, "cleanup.policy", "delete,compact"), "cleanup.policy",
                    "delete,compact", dyn);
                alter(admin, res, false, op(AlterConfigOp.OpType.SUBTRACT, "cleanup.policy", "delete"));
                expectEntry(describeShowing(admin, res, "cleanup.policy", "compact"), "cleanup.policy", "compact", dyn);
                alter(admin, res, false, op(AlterConfigOp.OpType.DELETE, "cleanup.policy", null));
                Config cfg = describeShowing(admin, res, "cleanup.policy", "delete");
                return brief(expectEntry(cfg, "cleanup.policy", "delete", dflt));
            });
        c.check("incrementalAlterConfigs SET several at once (segment.bytes, segment.ms, max.message.bytes)", () -> {
            alter(admin, res, false, set("segment.bytes", "1048576"), set("segment.ms", "3600000"),
                set("max.message.bytes", "2000"));
            Config cfg = describeShowing(admin, res, "max.message.bytes", "2000");
            ConfigEntry sb = expectEntry(cfg, "segment.bytes", "1048576", dyn);
            if (staticSegmentBytes > 0) {
                // The topic's value first, then the broker's static value, then Kafka's default.
                expectSynonyms(sb, "segment.bytes=1048576/DYNAMIC_TOPIC_CONFIG",
                    "log.segment.bytes=" + staticSegmentBytes + "/STATIC_BROKER_CONFIG",
                    "log.segment.bytes=1073741824/DEFAULT_CONFIG");
            }
            expectEntry(cfg, "segment.ms", "3600000", dyn);
            expectSynonyms(expectEntry(cfg, "max.message.bytes", "2000", dyn),
                "max.message.bytes=2000/DYNAMIC_TOPIC_CONFIG", "message.max.bytes=1048588/DEFAULT_CONFIG");
            return brief(sb);
        });
        c.check("max.message.bytes=2000 applied live: a 5000-byte record -> RecordTooLargeException, 100 bytes ok",
            () -> {
                String r = Util.expectError(RecordTooLargeException.class, () -> produceOne(boot, topic, null, 5000));
                return r + "; small record at " + produceOne(boot, topic, null, 100);
            });
        c.check("max.message.bytes DELETE applied live: a 5000-byte record is accepted again", () -> {
            alter(admin, res, false, op(AlterConfigOp.OpType.DELETE, "max.message.bytes", null));
            return produceOne(boot, topic, null, 5000);
        });
        c.check("cleanup.policy=compact applied live: a record without a key -> InvalidRecordException", () -> {
            alter(admin, res, false, set("cleanup.policy", "compact"));
            String r = Util.expectError(InvalidRecordException.class, () -> produceOne(boot, topic, null, 10));
            return r + "; keyed record at " + produceOne(boot, topic, Util.utf8("k"), 10);
        });
        c.check("createTopics with configs: they describe as DYNAMIC_TOPIC_CONFIG", () -> {
            String t2 = topic + "-withcfg";
            Util.get(admin.createTopics(List.of(new NewTopic(t2, 1, (short) 1).configs(Map.of("retention.ms",
                "123456")))).all());
            return brief(expectEntry(describe(admin, new ConfigResource(ConfigResource.Type.TOPIC, t2)),
                "retention.ms", "123456", dyn));
        });
        retentionLive(admin, boot, topic + "-retention", c);
    }

    /**
     * retention.ms applied live: three records in three segments (segment.ms=100), then
     * retention.ms=1000; the closed segments must go within a few retention checks.
     */
    static void retentionLive(Admin admin, String boot, String topic, Util.Checks c) {
        if (!createTopic(admin, c, topic, 1, Map.of())) {
            return;
        }
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        TopicPartition tp = new TopicPartition(topic, 0);
        c.check("retention.ms applied live: segment.ms=100, 3 records 300 ms apart, retention.ms=1000 -> "
            + "earliest offset moves past the closed segments", () -> {
                alter(admin, res, false, set("segment.ms", "100"));
                try (KafkaProducer<byte[], byte[]> p = producer(boot)) {
                    for (int i = 0; i < 3; i++) {
                        p.send(new ProducerRecord<>(topic, 0, null, Util.utf8("retention-" + i))).get(30,
                            TimeUnit.SECONDS);
                        Thread.sleep(300);
                    }
                }
                alter(admin, res, false, set("retention.ms", "1000"));
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
                long earliest;
                while (true) {
                    earliest = listOffset(admin, tp, OffsetSpec.earliest()).offset();
                    if (earliest >= 2) {
                        break;
                    }
                    Util.expect(System.nanoTime() < deadline,
                        "earliest offset still " + earliest + " 15 s after retention.ms=1000");
                    Thread.sleep(200);
                }
                Util.expectEq(3L, listOffset(admin, tp, OffsetSpec.latest()).offset(), "latest offset");
                return "earliest offset " + earliest;
            });
    }

    // ------------------------------------------------------------------ partitions

    static void partitions(Admin admin, String boot, String topic, Util.Checks c) {
        if (!createTopic(admin, c, topic, 3, Map.of())) {
            return;
        }
        boolean grown = c.check("createPartitions(" + topic + " 3 -> 5), then describeTopics shows 5 with leaders", () -> {
            Util.get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all());
            // Apache Kafka answers once the controller has the change; the
            // broker's metadata shows it a moment later (bounded wait).
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            TopicDescription d;
            while (true) {
                d = Util.get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
                if (d.partitions().size() == 5 || System.nanoTime() > deadline) {
                    break;
                }
                Thread.sleep(100);
            }
            Util.expectEq(5, d.partitions().size(), "partition count");
            for (TopicPartitionInfo p : d.partitions()) {
                Util.expect(p.leader() != null, "partition " + p.partition() + " has no leader");
            }
            return null;
        });
        c.check("createPartitions validateOnly 5 -> 7 changes nothing", () -> {
            Util.get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(7)),
                new CreatePartitionsOptions().validateOnly(true)).all());
            int n = Util.get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size();
            Util.expectEq(grown ? 5 : 3, n, "partition count after validateOnly");
            return null;
        });
        c.check("createPartitions 5 -> 4 (fewer) -> InvalidPartitionsException", () ->
            Util.expectError(InvalidPartitionsException.class,
                () -> Util.get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all())));
        c.check("createPartitions 5 -> 5 (same) -> InvalidPartitionsException", () ->
            Util.expectError(InvalidPartitionsException.class,
                () -> Util.get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(grown ? 5 : 3))).all())));
        c.check("createPartitions(unknown topic) -> UnknownTopicOrPartitionException", () ->
            Util.expectError(UnknownTopicOrPartitionException.class, () -> Util.get(admin.createPartitions(Map.of(
                topic + "-nonexistent", NewPartitions.increaseTo(5))).all())));
        if (!grown) {
            c.skip("produce to and read from the new partition 4", "createPartitions failed");
            return;
        }
        TopicPartition p4 = new TopicPartition(topic, 4);
        c.check("new partitions: listOffsets p3/p4 latest -> 0", () -> {
            Map<TopicPartition, ListOffsetsResultInfo> m = Util.get(admin.listOffsets(Map.of(new TopicPartition(topic,
                3), OffsetSpec.latest(), p4, OffsetSpec.latest())).all());
            for (ListOffsetsResultInfo r : m.values()) {
                Util.expectEq(0L, r.offset(), "latest of a new partition");
            }
            return null;
        });
        c.check("produce to the new partition 4 and read it back", () -> {
            try (KafkaProducer<byte[], byte[]> p = producer(boot)) {
                RecordMetadata md = p.send(new ProducerRecord<>(topic, 4, null, Util.utf8("in-p4"))).get(30,
                    TimeUnit.SECONDS);
                Util.expectEq(4, md.partition(), "partition");
                Util.expectEq(0L, md.offset(), "offset");
            }
            List<ConsumerRecord<byte[], byte[]>> recs = read(boot, p4, 0, 1);
            Util.expectEq("in-p4", new String(recs.get(0).value()), "value read back");
            return null;
        });
    }

    // ------------------------------------------------------------------ logdirs

    static void logdirs(Admin admin, String boot, String topic, Util.Checks c) {
        if (!createTopic(admin, c, topic, 2, Map.of())) {
            return;
        }
        boolean produced = c.check("produce 100 records of 100 bytes to partition 0", () -> {
            try (KafkaProducer<byte[], byte[]> p = producer(boot)) {
                for (int i = 0; i < 100; i++) {
                    p.send(new ProducerRecord<>(topic, 0, null, new byte[100]));
                }
                p.flush();
            }
            return null;
        });
        c.check("describeLogDirs: a log dir holding both partitions, sizes, no lag", () -> {
            int node = Util.get(admin.describeCluster().nodes()).iterator().next().id();
            Map<String, LogDirDescription> dirs = Util.get(admin.describeLogDirs(List.of(node)).allDescriptions())
                .get(node);
            Util.expect(dirs != null && !dirs.isEmpty(), "no log dirs for node " + node + ": " + dirs);
            TopicPartition t0 = new TopicPartition(topic, 0);
            TopicPartition t1 = new TopicPartition(topic, 1);
            for (Map.Entry<String, LogDirDescription> e : dirs.entrySet()) {
                LogDirDescription d = e.getValue();
                if (!d.replicaInfos().containsKey(t0)) {
                    continue;
                }
                Util.expect(d.error() == null, "log dir " + e.getKey() + " error " + d.error());
                ReplicaInfo r0 = d.replicaInfos().get(t0);
                ReplicaInfo r1 = d.replicaInfos().get(t1);
                Util.expect(r1 != null, "partition 1 not in " + e.getKey() + ": " + d.replicaInfos().keySet());
                if (produced) {
                    Util.expect(r0.size() >= 10_000, "partition 0 size " + r0.size() + " < 10000 after 10 kB of values");
                }
                Util.expectEq(0L, r1.size(), "size of the empty partition 1");
                Util.expectEq(0L, r0.offsetLag(), "offsetLag");
                Util.expect(!r0.isFuture(), "isFuture");
                return e.getKey() + ": p0 " + r0 + ", p1 " + r1 + ", total " + d.totalBytes() + ", usable "
                    + d.usableBytes();
            }
            throw new Util.CheckFailed("no log dir holds " + t0 + ": " + dirs);
        });
        c.check("describeLogDirs reports totalBytes and usableBytes (v4+)", () -> {
            int node = Util.get(admin.describeCluster().nodes()).iterator().next().id();
            Map<String, LogDirDescription> dirs = Util.get(admin.describeLogDirs(List.of(node)).allDescriptions())
                .get(node);
            for (LogDirDescription d : dirs.values()) {
                Optional<Long> total = d.totalBytes().isPresent() ? Optional.of(d.totalBytes().getAsLong()) : Optional.empty();
                Util.expect(total.isPresent() && d.usableBytes().isPresent(), "missing total/usable bytes: " + d);
                Util.expect(d.usableBytes().getAsLong() <= total.get(), "usable > total: " + d);
            }
            return null;
        });
    }
}
