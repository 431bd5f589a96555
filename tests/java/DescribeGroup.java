import java.util.List;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;

/**
 * Describes one consumer group with the Java Admin client (which asks
 * ConsumerGroupDescribe first and falls back to DescribeGroups).
 *
 * Usage: DescribeGroup BOOTSTRAP GROUP
 * Prints {"type":"Consumer","state":"Stable","members":[[p,..],..]} with
 * each member's assigned partitions.
 */
public final class DescribeGroup {
    public static void main(String[] args) throws Exception {
        try (Admin admin = Util.admin(args[0])) {
            ConsumerGroupDescription d = Util.get(admin.describeConsumerGroups(List.of(args[1])).describedGroups().get(args[1]));
            String members = d.members().stream()
                .map(DescribeGroup::partitions)
                .collect(Collectors.joining(","));
            System.out.println("{\"type\":\"" + d.type() + "\",\"state\":\"" + d.groupState() + "\",\"members\":[" + members + "]}");
        }
    }

    private static String partitions(MemberDescription m) {
        return "[" + m.assignment().topicPartitions().stream()
            .map(tp -> Integer.toString(tp.partition()))
            .sorted()
            .collect(Collectors.joining(",")) + "]";
    }
}
