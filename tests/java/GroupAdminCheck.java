import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.GroupSubscribedToTopicException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Consumer-group administration with the Java Admin client, checked call by
 * call: committed offsets (alter/list, simple commits), listGroups with
 * state filters, describeConsumerGroups of a live, a simple and a deleted
 * group, deleteConsumerGroups and deleteConsumerGroupOffsets (OffsetDelete)
 * with Kafka's errors.
 *
 * Usage: GroupAdminCheck PHASE BOOTSTRAP TOPIC
 *   before  creates TOPIC (3 partitions) and groups TOPIC-g1 (offsets p0=5,
 *           p1=7, then p1 deleted), TOPIC-g2 (deleted), TOPIC-g3 (live, then deleted)
 *   after   run after a broker restart (kill -9): the same state is there
 *
 * Prints "OK"/"FAIL" lines per check and a RESULT line; exits 1 on failure.
 */
public final class GroupAdminCheck {
    private GroupAdminCheck() {}

    public static void main(String[] argv) throws Exception {
        String phase = argv[0], boot = argv[1], topic = argv[2];
        AdminCheck.watchdog(55);
        Util.Checks c = new Util.Checks();
        try (Admin admin = Util.admin(boot)) {
            if (phase.equals("before")) {
                before(admin, boot, topic, c);
            } else {
                after(admin, boot, topic, c);
            }
        }
        c.finish();
    }

    static TopicPartition tp(String topic, int p) {
        return new TopicPartition(topic, p);
    }

    static Map<Integer, Long> committed(Admin admin, String group) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> m =
            Util.get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        Map<Integer, Long> out = new TreeMap<>();
        m.forEach((k, v) -> {
            if (v != null) {
                out.put(k.partition(), v.offset());
            }
        });
        return out;
    }

    static Set<String> listed(Admin admin, GroupState state) throws Exception {
        ListGroupsOptions o = ListGroupsOptions.forConsumerGroups().inGroupStates(Set.of(state));
        Collection<GroupListing> all = Util.get(admin.listGroups(o).all());
        return all.stream().map(GroupListing::groupId).collect(Collectors.toSet());
    }

    static KafkaConsumer<byte[], byte[]> member(String boot, String group, String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, boot);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "group-admin-check");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p);
        c.subscribe(List.of(topic));
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (c.assignment().size() < 3 && System.nanoTime() < deadline) {
            c.poll(Duration.ofMillis(100));
        }
        return c;
    }

    static void before(Admin admin, String boot, String topic, Util.Checks c) {
        String g1 = topic + "-g1", g2 = topic + "-g2", g3 = topic + "-g3";
        if (!c.check("createTopics " + topic + " (3 partitions)", () ->
                Util.get(admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all()))) {
            return;
        }
        c.check("alterConsumerGroupOffsets of groups without members (simple commits)", () -> {
            Util.get(admin.alterConsumerGroupOffsets(g1,
                Map.of(tp(topic, 0), new OffsetAndMetadata(5), tp(topic, 1), new OffsetAndMetadata(7, "meta"))).all());
            Util.get(admin.alterConsumerGroupOffsets(g2, Map.of(tp(topic, 2), new OffsetAndMetadata(9))).all());
            return null;
        });
        c.check("listConsumerGroupOffsets reads them back", () -> {
            Util.expectEq(Map.of(0, 5L, 1, 7L), committed(admin, g1), g1);
            Util.expectEq(Map.of(2, 9L), committed(admin, g2), g2);
            return null;
        });
        try (KafkaConsumer<byte[], byte[]> live = member(boot, g3, topic)) {
            c.check("describeConsumerGroups of a live group: Stable, its member, client id, host, assignment", () -> {
                ConsumerGroupDescription d = Util.get(admin.describeConsumerGroups(List.of(g3)).all()).get(g3);
                Util.expectEq(GroupState.STABLE, d.groupState(), "state");
                Util.expectEq(1, d.members().size(), "members");
                MemberDescription m = d.members().iterator().next();
                Util.expectEq("group-admin-check", m.clientId(), "client id");
                Util.expect(m.host().startsWith("/127."), "host " + m.host());
                Util.expectEq(3, m.assignment().topicPartitions().size(), "assigned partitions");
                Util.expect(!d.isSimpleConsumerGroup(), "a group with members is not simple");
                return d.partitionAssignor() + " " + m;
            });
            c.check("listGroups by state: Stable has the live group, Empty the others", () -> {
                Set<String> stable = listed(admin, GroupState.STABLE);
                Set<String> empty = listed(admin, GroupState.EMPTY);
                Util.expect(stable.contains(g3) && !stable.contains(g1), "Stable: " + stable);
                Util.expect(empty.containsAll(List.of(g1, g2)) && !empty.contains(g3), "Empty: " + empty);
                return null;
            });
            c.check("deleteConsumerGroups of a group with members -> GroupNotEmptyException", () ->
                Util.expectError(GroupNotEmptyException.class, () -> Util.get(admin.deleteConsumerGroups(List.of(g3)).all())));
            c.check("deleteConsumerGroupOffsets of a subscribed topic -> GroupSubscribedToTopicException", () ->
                Util.expectError(GroupSubscribedToTopicException.class,
                    () -> Util.get(admin.deleteConsumerGroupOffsets(g3, Set.of(tp(topic, 0))).all())));
        }
        c.check("deleteConsumerGroups of the group its member left", () -> Util.get(admin.deleteConsumerGroups(List.of(g3)).all()));
        c.check("deleteConsumerGroupOffsets (OffsetDelete) of one partition", () -> {
            Util.get(admin.deleteConsumerGroupOffsets(g1, Set.of(tp(topic, 1))).all());
            Util.expectEq(Map.of(0, 5L), committed(admin, g1), g1);
            return null;
        });
        c.check("describeConsumerGroups of a group with offsets only: Empty, simple", () -> {
            ConsumerGroupDescription d = Util.get(admin.describeConsumerGroups(List.of(g2)).all()).get(g2);
            Util.expectEq(GroupState.EMPTY, d.groupState(), "state");
            Util.expect(d.isSimpleConsumerGroup() && d.members().isEmpty(), "simple, no members: " + d);
            return null;
        });
        // Once deleted the group is gone: since KIP-1043 (DescribeGroups v6, KAFKA-17550) Kafka
        // answers GROUP_ID_NOT_FOUND for a group that does not exist instead of a Dead group, so
        // the client fails describeConsumerGroups; its offsets went with it.
        c.check("deleteConsumerGroups of a group with offsets only; describing it then -> GroupIdNotFoundException, "
            + "no offsets", () -> {
                Util.get(admin.deleteConsumerGroups(List.of(g2)).all());
                String r = Util.expectError(GroupIdNotFoundException.class,
                    () -> Util.get(admin.describeConsumerGroups(List.of(g2)).all()));
                Util.expectEq(Map.of(), committed(admin, g2), g2);
                return r;
            });
        c.check("deleteConsumerGroups of an unknown group -> GroupIdNotFoundException", () ->
            Util.expectError(GroupIdNotFoundException.class,
                () -> Util.get(admin.deleteConsumerGroups(List.of(topic + "-nope")).all())));
        c.check("describeConsumerGroups of an unknown group -> GroupIdNotFoundException", () ->
            Util.expectError(GroupIdNotFoundException.class,
                () -> Util.get(admin.describeConsumerGroups(List.of(topic + "-nope")).all())));
    }

    static void after(Admin admin, String boot, String topic, Util.Checks c) {
        String g1 = topic + "-g1", g2 = topic + "-g2", g3 = topic + "-g3";
        c.check("after the restart: the committed offset is back, the deleted one stays deleted", () -> {
            Util.expectEq(Map.of(0, 5L), committed(admin, g1), g1);
            return null;
        });
        c.check("after the restart: deleted groups stay deleted", () -> {
            Set<String> all = Util.get(admin.listGroups(ListGroupsOptions.forConsumerGroups()).all())
                .stream().map(GroupListing::groupId).collect(Collectors.toSet());
            Util.expect(all.contains(g1), g1 + " missing from " + all);
            Util.expect(!all.contains(g2) && !all.contains(g3), "deleted groups listed: " + all);
            Util.expectEq(Map.of(), committed(admin, g2), g2);
            return null;
        });
    }
}
