//! Three `sluice serve` processes form one cluster (combined broker and
//! controller nodes, Kafka's KRaft property names): they agree on the
//! brokers and the active controller, fence a broker that is killed or
//! stopped, elect a new controller when the active one dies, and take a
//! returning node back. Topics are the cluster's: created, grown and
//! deleted through any node, their partitions spread over the brokers,
//! produced and consumed (with a group) through any of them.

mod common;

use std::time::Duration;

use common::cluster::{Cluster, Layout};
use common::kafka_tools::{
    describe, kafka_tool, kafka_tool_ok, listed, poll, topics, CONSOLE_CONSUMER, CONSOLE_PRODUCER, CONSUMER_GROUPS,
    DELETE_RECORDS, GET_OFFSETS, LEADER_ELECTION, METADATA_QUORUM, REASSIGN_PARTITIONS,
};
use common::{kcat, unique_name};

/// Short sessions, so that fencing shows within the test's bounds.
const FAST: &[&str] = &["broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500"];
const AGREE: Duration = Duration::from_secs(30);

#[test]
fn three_nodes_form_one_cluster_and_survive_the_loss_of_the_controller() {
    let mut c = Cluster::start(3, FAST);
    let all = [0, 1, 2];
    let info = c.wait_agreed(&all, &[1, 2, 3], AGREE);
    for (i, (id, addr)) in info.brokers.iter().enumerate() {
        assert_eq!(*id, i as i32 + 1);
        assert_eq!(*addr, c.nodes[i].bootstrap(), "advertised address of node {id}");
    }
    assert!(!info.cluster_id.is_empty());
    assert_eq!(info.voters, vec![1, 2, 3]);

    // A real client bootstrapping from any node sees all three brokers.
    for n in &c.nodes {
        let out = kcat(&["-L", "-b", &n.bootstrap(), "-m", "10"], b"");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains(" 3 brokers:"), "kcat -L against {}:\n{text}", n.bootstrap());
    }

    // kill -9 the active controller: the other two elect one of
    // themselves and fence it.
    let old = info.leader.unwrap();
    let dead = (old - 1) as usize;
    c.nodes[dead].kill9();
    let left: Vec<usize> = all.iter().copied().filter(|&i| i != dead).collect();
    let want: Vec<i32> = left.iter().map(|&i| i as i32 + 1).collect();
    let after = c.wait_agreed(&left, &want, AGREE);
    assert_ne!(after.leader, Some(old), "a dead node cannot stay the quorum's leader");
    assert_eq!(after.cluster_id, info.cluster_id, "the cluster keeps its id");

    // It comes back from its own data dir and is listed again.
    c.nodes[dead].restart();
    let back = c.wait_agreed(&all, &[1, 2, 3], AGREE);
    assert_eq!(back.cluster_id, info.cluster_id);
}

#[test]
fn a_stopped_node_is_fenced_and_unfenced_when_it_resumes() {
    let mut c = Cluster::start(3, FAST);
    let all = [0, 1, 2];
    let info = c.wait_agreed(&all, &[1, 2, 3], AGREE);
    // Stop a node that is not the controller (SIGSTOP: its sockets stay
    // open, it just stops answering).
    let stopped = (0..3).find(|&i| Some(i as i32 + 1) != info.leader).unwrap();
    c.nodes[stopped].pause(true);
    let left: Vec<usize> = all.iter().copied().filter(|&i| i != stopped).collect();
    let want: Vec<i32> = left.iter().map(|&i| i as i32 + 1).collect();
    let during = c.wait_agreed(&left, &want, AGREE);
    assert_eq!(during.leader, info.leader, "losing a follower does not move the quorum's leader");
    c.nodes[stopped].pause(false);
    c.wait_agreed(&all, &[1, 2, 3], AGREE);
}

/// Kafka's own `kafka-metadata-quorum` describes the quorum through any
/// node (a follower asks the active controller).
#[test]
fn kafka_metadata_quorum_describes_the_quorum() {
    let c = Cluster::start(3, FAST);
    let info = c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let leader = info.leader.unwrap();
    let follower = (0..3).find(|&i| i as i32 + 1 != leader).unwrap();
    let bs = c.nodes[follower].bootstrap();
    let status = kafka_tool_ok(METADATA_QUORUM, &["--bootstrap-server", &bs, "describe", "--status"], None);
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').trim().to_string()))
            .unwrap_or_else(|| panic!("no {name} in:\n{status}"))
    };
    assert_eq!(field("ClusterId"), info.cluster_id, "{status}");
    assert_eq!(field("LeaderId"), leader.to_string(), "{status}");
    assert!(field("LeaderEpoch").parse::<i64>().unwrap() >= 1, "{status}");
    // The cluster id and three registrations at least are committed.
    assert!(field("HighWatermark").parse::<i64>().unwrap() >= 4, "{status}");
    let voters = field("CurrentVoters");
    for id in 1..=3 {
        let port = c.controller_ports[id - 1];
        assert!(voters.contains(&format!("\"id\": {id}")), "{status}");
        assert!(voters.contains(&format!("CONTROLLER://127.0.0.1:{port}")), "{status}");
    }
    let repl = kafka_tool_ok(METADATA_QUORUM, &["--bootstrap-server", &bs, "describe", "--replication"], None);
    let rows: Vec<Vec<&str>> = repl.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 3, "{repl}");
    let leaders: Vec<&str> = rows.iter().filter(|r| r.last() == Some(&"Leader")).map(|r| r[0]).collect();
    assert_eq!(leaders, vec![leader.to_string().as_str()], "{repl}");
    assert_eq!(rows.iter().filter(|r| r.last() == Some(&"Follower")).count(), 2, "{repl}");
}

/// Partition -> (leader, replicas, isr) as `kafka-topics --describe` prints them.
fn placement(boot: &str, topic: &str) -> Vec<(String, String, String)> {
    let (_, parts) = describe(boot, topic);
    parts.iter().map(|p| (p["Leader"].clone(), p["Replicas"].clone(), p["Isr"].clone())).collect()
}

/// The seed tutorial on three brokers, one replica per partition: Kafka's
/// tools create the topic through one node, describe it through another
/// (each partition led by a different broker), the console producer
/// writes through a third and a console consumer in a group reads it all
/// back through the first; the group's offsets are described through
/// any node; the topic grows and is deleted through yet other nodes.
#[test]
fn topics_are_the_clusters_and_clients_use_any_broker() {
    let c = Cluster::start(3, FAST);
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let topic = unique_name("cluster-topic");
    topics(&boot[1], &["--create", "--topic", &topic, "--partitions", "3", "--replication-factor", "1"]);
    let placed = poll(50, || placement(&boot[2], &topic), |p| p.len() == 3);
    let mut leaders: Vec<String> = placed.iter().map(|p| p.0.clone()).collect();
    for (leader, replicas, isr) in &placed {
        assert_eq!((replicas, isr), (leader, leader), "{placed:?}");
    }
    leaders.sort();
    assert_eq!(leaders, ["1", "2", "3"], "one partition led by each broker: {placed:?}");
    for b in &boot {
        assert!(listed(b).contains(&topic), "{topic} listed by {b}");
    }

    let n = 300;
    let input: String = (0..n).map(|i| format!("k{i}:v{i}\n")).collect();
    let producer = [
        "--bootstrap-server",
        &boot[2],
        "--topic",
        &topic,
        "--reader-property",
        "parse.key=true",
        "--reader-property",
        "key.separator=:",
        "--command-property",
        "acks=all",
    ];
    kafka_tool_ok(CONSOLE_PRODUCER, &producer, Some(input.as_bytes()));
    let group = unique_name("cluster-group");
    let max = n.to_string();
    let consumer = [
        "--bootstrap-server",
        &boot[0],
        "--topic",
        &topic,
        "--from-beginning",
        "--group",
        &group,
        "--max-messages",
        &max,
        "--formatter-property",
        "print.key=true",
        "--formatter-property",
        "print.partition=true",
    ];
    let out = kafka_tool(CONSOLE_CONSUMER, &consumer, None);
    common::expect_success(&out, "console consumer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut got: Vec<String> = stdout.lines().filter_map(|l| l.split('\t').nth(2).map(str::to_string)).collect();
    let partitions: std::collections::BTreeSet<&str> = stdout.lines().filter_map(|l| l.split('\t').next()).collect();
    got.sort();
    let mut want: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(got, want, "every record once");
    assert_eq!(partitions.len(), 3, "records came from all three brokers: {partitions:?}");

    // The group's committed offsets, seen through every node: no lag.
    for b in &boot {
        let d = kafka_tool_ok(CONSUMER_GROUPS, &["--bootstrap-server", b, "--describe", "--group", &group], None);
        let rows: Vec<Vec<&str>> =
            d.lines().filter(|l| l.contains(&topic)).map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows.len(), 3, "{d}");
        let total: i64 = rows.iter().map(|r| r[3].parse::<i64>().unwrap_or_else(|_| panic!("{d}"))).sum();
        assert_eq!(total, n as i64, "{d}");
        assert!(rows.iter().all(|r| r[5] == "0"), "lag 0 everywhere: {d}");
    }

    // Grown through one node, deleted through another.
    topics(&boot[0], &["--alter", "--topic", &topic, "--partitions", "5"]);
    let grown = poll(50, || placement(&boot[1], &topic), |p| p.len() == 5);
    assert_eq!(grown.len(), 5, "{grown:?}");
    assert_eq!(&grown[..3], &placed[..], "existing partitions stay where they are");
    topics(&boot[2], &["--delete", "--topic", &topic]);
    for b in &boot {
        let l = poll(50, || listed(b), |l| !l.contains(&topic));
        assert!(!l.contains(&topic), "{topic} still listed by {b}: {l:?}");
    }
    // Kafka renames a deleted partition's directory to `…-delete` and
    // removes it a minute later; Sluice removes it at once.
    for n in &c.nodes {
        let left: Vec<String> = std::fs::read_dir(n.data_dir())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|f| f.starts_with(&topic) && !f.ends_with("-delete"))
            .collect();
        assert!(left.is_empty(), "partition dirs left in {}: {left:?}", n.data_dir().display());
    }
}

/// A broker that dies takes its partitions offline (no leader) once it is
/// fenced; the others' partitions go on taking writes; when it returns
/// its partitions are led by it again with every record they had, and the
/// logs of a topic deleted while it was down are gone from it.
#[test]
fn a_dead_brokers_partitions_are_offline_until_it_returns() {
    let mut c = Cluster::start(3, FAST);
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let topic = unique_name("cluster-offline");
    topics(&boot[0], &["--create", "--topic", &topic, "--partitions", "3", "--replication-factor", "1"]);
    let placed = poll(50, || placement(&boot[0], &topic), |p| p.len() == 3);
    let input: String = (0..30).map(|i| format!("v{i}\n")).collect();
    // Round-robin, so that every partition holds records.
    let producer = [
        "--bootstrap-server",
        &boot[0],
        "--topic",
        &topic,
        "--command-property",
        "partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner",
        "--command-property",
        "acks=all",
    ];
    kafka_tool_ok(CONSOLE_PRODUCER, &producer, Some(input.as_bytes()));
    let doomed = unique_name("cluster-doomed");
    topics(&boot[0], &["--create", "--topic", &doomed, "--partitions", "3", "--replication-factor", "1"]);
    poll(50, || placement(&boot[0], &doomed), |p| p.len() == 3);
    let dead = (0..3).find(|&i| placed[i].0 != "1").unwrap();
    let dead_node: usize = placed[dead].0.parse::<usize>().unwrap() - 1;
    c.nodes[dead_node].kill9();
    let alive = (0..3).find(|&i| i != dead_node).unwrap();
    let offline = poll(100, || placement(&boot[alive], &topic), |p| p[dead].0 == "none");
    assert_eq!(offline[dead].0, "none", "no leader for the dead broker's partition: {offline:?}");
    for (i, p) in offline.iter().enumerate() {
        if i != dead {
            assert_eq!(p, &placed[i], "the other partitions keep their leaders");
        }
    }
    topics(&boot[alive], &["--delete", "--topic", &doomed]);
    c.nodes[dead_node].restart();
    let back = poll(100, || placement(&boot[alive], &topic), |p| p[dead].0 == placed[dead].0);
    let dir = c.nodes[dead_node].data_dir().to_path_buf();
    let left = || -> Vec<String> {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            // Kafka renames a log it finds deleted while it was away to
            // `…-stray` (KIP-858) and removes it later; Sluice removes it.
            .filter(|f| f.starts_with(&doomed) && !f.ends_with("-delete") && !f.ends_with("-stray"))
            .collect()
    };
    let left = poll(100, left, |l| l.is_empty());
    assert!(left.is_empty(), "logs of the topic deleted while the broker was down: {left:?}");
    assert_eq!(back, placed, "the returning broker leads its partition again");
    let out = kafka_tool_ok(
        CONSOLE_CONSUMER,
        &["--bootstrap-server", &boot[dead_node], "--topic", &topic, "--from-beginning", "--max-messages", "30"],
        None,
    );
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    let mut want: Vec<String> = (0..30).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(got, want, "every record, the dead broker's partition's too");
}

/// InitProducerId through each node, before and after a node restarts:
/// no two producers of the cluster get the same id (each broker hands
/// out ids from blocks the metadata log gives it, as Kafka's
/// AllocateProducerIds does), or their sequences would collide on a
/// partition both write to.
#[test]
fn producer_ids_are_unique_across_the_cluster() {
    use kafka_protocol::messages::InitProducerIdRequest;
    use sluice_bench::load::client::Conn;

    let mut c = Cluster::start(3, FAST);
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let init = |boot: &str| -> Vec<i64> {
        let mut conn = Conn::connect(boot, "pid-test").unwrap();
        (0..5)
            .map(|_| {
                let req =
                    InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000);
                // COORDINATOR_LOAD_IN_PROGRESS (14) while a block is on its way.
                for _ in 0..100 {
                    let r = conn.call(&req, 4).unwrap();
                    if r.error_code == 0 {
                        return r.producer_id.0;
                    }
                    assert_eq!(r.error_code, 14, "InitProducerId through {boot}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                panic!("no producer id through {boot}");
            })
            .collect()
    };
    let mut ids: Vec<i64> = c.nodes.iter().flat_map(|n| init(&n.bootstrap())).collect();
    c.nodes[1].kill9();
    c.nodes[1].restart();
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    ids.extend(init(&c.nodes[1].bootstrap()));
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "producer ids handed out twice: {ids:?}");
    assert!(ids.iter().all(|id| *id >= 0), "{ids:?}");
}

/// DescribeTopicPartitions (KIP-966) through every node: each node's copy
/// of the metadata gives the same pages, sorted by topic, cut at the
/// partition limit with a cursor to go on from.
#[test]
fn describe_topic_partitions_pages_with_a_cursor() {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
    use kafka_protocol::messages::{DescribeTopicPartitionsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use sluice_bench::load::client::Conn;

    let c = Cluster::start(3, FAST);
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let (a, b) = (unique_name("dtp-a"), unique_name("dtp-b"));
    topics(&boot[0], &["--create", "--topic", &a, "--partitions", "3", "--replication-factor", "1"]);
    topics(&boot[0], &["--create", "--topic", &b, "--partitions", "2", "--replication-factor", "1"]);
    let name = |s: &str| TopicName(StrBytes::from_string(s.to_string()));
    for node in &boot {
        poll(50, || listed(node), |l| l.contains(&a) && l.contains(&b));
        let mut conn = Conn::connect(node, "dtp-test").unwrap();
        // Asked for b, a and an unknown topic, two partitions a page.
        let missing = unique_name("dtp-missing");
        let asked: Vec<TopicRequest> =
            [&b, &a, &missing].iter().map(|t| TopicRequest::default().with_name(name(t))).collect();
        let mut pages = Vec::new();
        let mut cursor = None;
        for _ in 0..10 {
            let req = DescribeTopicPartitionsRequest::default()
                .with_topics(asked.clone())
                .with_response_partition_limit(2)
                .with_cursor(cursor.take());
            let resp = conn.call(&req, 0).unwrap();
            let page: Vec<(String, i16, Vec<i32>)> = resp
                .topics
                .iter()
                .map(|t| {
                    let n = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                    (n, t.error_code, t.partitions.iter().map(|p| p.partition_index).collect())
                })
                .collect();
            for t in &resp.topics {
                for p in &t.partitions {
                    assert!(p.leader_id.0 >= 1 && p.replica_nodes.len() == 1, "{node}: {t:?}");
                }
            }
            pages.push(page);
            match resp.next_cursor {
                Some(c) => {
                    cursor =
                        Some(Cursor::default().with_topic_name(c.topic_name).with_partition_index(c.partition_index))
                }
                None => break,
            }
        }
        // The topics sorted by name: a's 3 partitions, b's 2, the unknown one.
        let seen: Vec<(String, i32)> = pages
            .iter()
            .flatten()
            .filter(|t| t.1 == 0)
            .flat_map(|t| t.2.iter().map(|p| (t.0.clone(), *p)).collect::<Vec<_>>())
            .collect();
        let want: Vec<(String, i32)> =
            [(a.clone(), 0), (a.clone(), 1), (a.clone(), 2), (b.clone(), 0), (b.clone(), 1)].into_iter().collect();
        assert_eq!(seen, want, "{node}: pages {pages:#?}");
        assert!(pages.iter().all(|p| p.iter().map(|t| t.2.len()).sum::<usize>() <= 2), "{node}: {pages:#?}");
        assert!(
            pages.iter().flatten().any(|t| t.0 == missing && t.1 == 3),
            "{node}: the unknown topic gets UNKNOWN_TOPIC_OR_PARTITION: {pages:#?}"
        );
    }
}

/// KIP-951: a Produce (v11) or Fetch (v16) for a partition another broker
/// leads is answered NOT_LEADER_OR_FOLLOWER with that broker as the
/// current leader and its endpoint, so that the client goes straight there.
#[test]
fn not_leader_answers_name_the_current_leader() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, MetadataRequest};
    use sluice_bench::load::client::Conn;

    let c = Cluster::start(3, FAST);
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let topic = unique_name("kip951");
    topics(&boot[0], &["--create", "--topic", &topic, "--partitions", "3", "--replication-factor", "1"]);
    let placed = poll(50, || placement(&boot[0], &topic), |p| p.len() == 3);
    let mut conn = Conn::connect(&boot[0], "kip951-test").unwrap();
    let meta = poll(
        50,
        || conn.call(&MetadataRequest::default().with_topics(None), 12).unwrap(),
        |m| m.topics.iter().any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic)),
    );
    let topic_id =
        meta.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic)).unwrap().topic_id;
    // A partition node 1 does not lead, and the node that does.
    let p = placed.iter().position(|(leader, _, _)| leader != "1").unwrap() as i32;
    let leader: i32 = placed[p as usize].0.parse().unwrap();
    let leader_addr = boot[leader as usize - 1].clone();

    let produce = one_record(&topic, p, -1);
    let resp = conn.call(&produce, 11).unwrap();
    let part = &resp.responses[0].partition_responses[0];
    assert_eq!(part.error_code, 6, "NOT_LEADER_OR_FOLLOWER: {resp:?}");
    assert_eq!(part.current_leader.leader_id.0, leader, "{resp:?}");
    assert!(part.current_leader.leader_epoch >= 0, "{resp:?}");
    let ep = resp.node_endpoints.iter().find(|e| e.node_id.0 == leader).unwrap_or_else(|| panic!("{resp:?}"));
    assert_eq!(format!("{}:{}", ep.host, ep.port), leader_addr, "{resp:?}");

    let fetch =
        FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![FetchTopic::default()
            .with_topic_id(topic_id)
            .with_partitions(vec![FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let resp = conn.call(&fetch, 16).unwrap();
    let part = &resp.responses[0].partitions[0];
    assert_eq!(part.error_code, 6, "NOT_LEADER_OR_FOLLOWER: {resp:?}");
    assert_eq!(part.current_leader.leader_id.0, leader, "{resp:?}");
    let ep = resp.node_endpoints.iter().find(|e| e.node_id.0 == leader).unwrap_or_else(|| panic!("{resp:?}"));
    assert_eq!(format!("{}:{}", ep.host, ep.port), leader_addr, "{resp:?}");

    // The leader itself takes the write.
    let mut at_leader = Conn::connect(&leader_addr, "kip951-test").unwrap();
    let resp = at_leader.call(&produce, 11).unwrap();
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0, "{resp:?}");
}

/// The leader and leader epoch of `topic`-0 in the metadata `conn`'s broker
/// gives, once it names a leader.
fn leader_and_epoch(conn: &mut sluice_bench::load::client::Conn, topic: &str) -> Option<(i32, i32)> {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{MetadataRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    let req = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name))]));
    let m = conn.call(&req, 12).ok()?;
    let p = m.topics.first()?.partitions.first()?;
    (p.error_code == 0 && p.leader_id.0 >= 0).then_some((p.leader_id.0, p.leader_epoch))
}

/// Kafka's leader-epoch check on Fetch and ListOffsets (KIP-320): a client
/// naming an epoch older than the leader's is answered FENCED_LEADER_EPOCH
/// (it refreshes its metadata), one newer UNKNOWN_LEADER_EPOCH, and the
/// current one is served. A leader change moves the epoch.
#[test]
fn an_old_leader_epoch_is_fenced_and_a_newer_one_unknown() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use sluice_bench::load::client::Conn;

    let mut c = Cluster::start(3, FAST);
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let topic = unique_name("epochs");
    topics(&boot[0], &["--create", "--topic", &topic, "--partitions", "1", "--replication-factor", "3"]);
    let name = TopicName(StrBytes::from_string(topic.clone()));
    let fetch =
        |conn: &mut Conn, epoch: i32| {
            let req = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
                FetchTopic::default().with_topic(name.clone()).with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(epoch)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)]),
            ]);
            conn.call(&req, 12).map(|r| r.responses[0].partitions[0].error_code).unwrap_or(-1)
        };
    let list = |conn: &mut Conn, epoch: i32| {
        let req =
            ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
                .with_name(name.clone())
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_current_leader_epoch(epoch)
                    .with_timestamp(-1)])]);
        conn.call(&req, 7).map(|r| r.topics[0].partitions[0].error_code).unwrap_or(-1)
    };
    let mut any = Conn::connect(&boot[0], "epoch-test").unwrap();
    let (leader, epoch) = poll(100, || leader_and_epoch(&mut any, &topic), |l| l.is_some()).expect("a leader");
    let mut at_leader = Conn::connect(&boot[leader as usize - 1], "epoch-test").unwrap();
    // The leader's own epoch may be reported a moment after it is elected.
    assert_eq!(poll(50, || fetch(&mut at_leader, epoch), |e| *e == 0), 0, "the current epoch {epoch} is served");
    assert_eq!(list(&mut at_leader, epoch), 0, "ListOffsets with the current epoch");
    assert_eq!(fetch(&mut at_leader, epoch + 1), 75, "UNKNOWN_LEADER_EPOCH for a newer epoch");
    assert_eq!(list(&mut at_leader, epoch + 1), 75, "UNKNOWN_LEADER_EPOCH from ListOffsets");
    assert_eq!(fetch(&mut at_leader, -1), 0, "no epoch, no check");

    c.nodes[leader as usize - 1].kill9();
    let other = (0..3).find(|&i| i != leader as usize - 1).unwrap();
    let mut survivor = Conn::connect(&boot[other], "epoch-test").unwrap();
    let moved = poll(150, || leader_and_epoch(&mut survivor, &topic), |l| l.is_some_and(|(l, _)| l != leader));
    let (new, new_epoch) = moved.expect("a new leader");
    assert!(new_epoch > epoch, "the new leader's epoch {new_epoch} is past {epoch}");
    let mut at_new = Conn::connect(&boot[new as usize - 1], "epoch-test").unwrap();
    assert_eq!(poll(50, || fetch(&mut at_new, new_epoch), |e| *e == 0), 0, "the new epoch is served");
    assert_eq!(fetch(&mut at_new, epoch), 74, "FENCED_LEADER_EPOCH for the old leader's epoch");
    assert_eq!(list(&mut at_new, epoch), 74, "FENCED_LEADER_EPOCH from ListOffsets");
}

/// A Produce of one record to `topic`-`partition` with `acks`.
fn one_record(topic: &str, partition: i32, acks: i16) -> kafka_protocol::messages::ProduceRequest {
    record_of(topic, partition, acks, b"v")
}

fn record_of(topic: &str, partition: i32, acks: i16, value: &[u8]) -> kafka_protocol::messages::ProduceRequest {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let mut batch = sluice_storage::batch::BatchBuilder::new(1_000);
    batch.push(1_000, Some(b"k"), Some(value));
    ProduceRequest::default().with_acks(acks).with_timeout_ms(10_000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(vec![PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(bytes::Bytes::from(batch.build())))])])
}

/// `min.insync.replicas` above the replication factor: Kafka 4 takes
/// `acks=all` writes all the same (KIP-966: the minimum is never more than
/// the replicas there are), and so does Sluice; a partition whose ISR is
/// below the minimum (which needs replicas to fall behind) would answer
/// NOT_ENOUGH_REPLICAS.
#[test]
fn min_insync_replicas_is_at_most_the_replication_factor() {
    use sluice_bench::load::client::Conn;

    let c = Cluster::start(3, FAST);
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let topic = unique_name("min-isr");
    let create = ["--create", "--topic", &topic, "--partitions", "1", "--replication-factor", "1"];
    topics(&boot[0], &[&create[..], &["--config", "min.insync.replicas=2"]].concat());
    let placed = poll(50, || placement(&boot[0], &topic), |p| p.len() == 1);
    let leader: usize = placed[0].0.parse().unwrap();
    let mut conn = Conn::connect(&boot[leader - 1], "min-isr-test").unwrap();
    for acks in [-1, 1] {
        let resp = conn.call(&one_record(&topic, 0, acks), 9).unwrap();
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0, "acks={acks}: {resp:?}");
    }
}

/// The seed tutorial's replicated topic: `kafka-topics --create
/// --partitions 3 --replication-factor 3` through one node, described
/// through another with three replicas and a full ISR, the console producer
/// (`acks=all`) on a third, every record read back from the beginning
/// through the first (kcat). Then kill -9 of partition 0's leader: another replica leads it,
/// writes go on, every acknowledged record is read back exactly once, and
/// the returning broker is back in every ISR.
#[test]
fn replicated_topics_survive_the_loss_of_a_leader() {
    let mut c = Cluster::start(3, FAST);
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let topic = unique_name("replicated");
    topics(&boot[0], &["--create", "--topic", &topic, "--partitions", "3", "--replication-factor", "3"]);
    let full = |p: &[(String, String, String)]| {
        p.len() == 3 && p.iter().all(|(l, r, i)| l != "none" && r.split(',').count() == 3 && i.split(',').count() == 3)
    };
    let placed = poll(100, || placement(&boot[1], &topic), |p| full(p));
    assert!(full(&placed), "three replicas, all in sync: {placed:?}");

    let produce = |b: &str, from: usize, to: usize| {
        let input: String = (from..to).map(|i| format!("k{i}:v{i}\n")).collect();
        let args = [
            "--bootstrap-server",
            b,
            "--topic",
            &topic,
            "--reader-property",
            "parse.key=true",
            "--reader-property",
            "key.separator=:",
            "--command-property",
            "acks=all",
        ];
        kafka_tool_ok(CONSOLE_PRODUCER, &args, Some(input.as_bytes()));
    };
    // Read without a group: the test is about the topic's replicas, not
    // the group coordinator's.
    let consume = |b: &str, n: usize| -> Vec<String> {
        let got = read_all(b, &topic);
        assert_eq!(got.len(), n, "{n} records through {b}");
        got
    };
    let want = |n: usize| values(0, n);
    produce(&boot[2], 0, 300);
    assert_eq!(consume(&boot[0], 300), want(300), "every record once, through another node");

    let old: usize = placed[0].0.parse().unwrap();
    c.nodes[old - 1].kill9();
    let alive: Vec<usize> = (0..3).filter(|&i| i != old - 1).collect();
    let moved = poll(150, || placement(&boot[alive[0]], &topic), |p| p[0].0 != "none" && p[0].0 != old.to_string());
    assert!(moved[0].0 != "none" && moved[0].0 != old.to_string(), "partition 0 led by another replica: {moved:?}");
    produce(&boot[alive[1]], 300, 400);
    assert_eq!(consume(&boot[alive[0]], 400), want(400), "every acknowledged record once after the failover");

    c.nodes[old - 1].restart();
    let back = poll(150, || placement(&boot[alive[1]], &topic), |p| full(p));
    assert!(full(&back), "the returning broker is back in every ISR: {back:?}");
    assert_eq!(consume(&boot[old - 1], 400), want(400), "and it serves them too");
}

/// An idempotent producer's retry of a batch the leader of a replicated
/// partition already has is answered with the first write's offset and not
/// written again; a batch out of sequence is refused.
#[test]
fn a_replicated_leader_knows_an_idempotent_retry() {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{InitProducerIdRequest, ListOffsetsRequest, ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use sluice_bench::load::client::Conn;

    let c = Cluster::start(3, FAST);
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let topic = unique_name("replicated-idem");
    topics(&boot[0], &["--create", "--topic", &topic, "--partitions", "1", "--replication-factor", "3"]);
    let placed = poll(100, || placement(&boot[0], &topic), |p| p.len() == 1 && p[0].0 != "none");
    let leader: usize = placed[0].0.parse().unwrap();
    let mut conn = Conn::connect(&boot[leader - 1], "idem-test").unwrap();
    let pid = loop {
        let r = conn.call(&InitProducerIdRequest::default().with_transactional_id(None), 4).unwrap();
        if r.error_code == 0 {
            break r.producer_id.0;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let produce = |seq: i32| {
        let mut b = sluice_storage::batch::BatchBuilder::new(1_000);
        b.push(1_000, Some(b"k"), Some(format!("v{seq}").as_bytes()));
        ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
            TopicProduceData::default().with_name(TopicName(StrBytes::from_string(topic.clone()))).with_partition_data(
                vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(bytes::Bytes::from(b.build_with_producer(pid, 0, seq))))],
            ),
        ])
    };
    let answer = |conn: &mut Conn, seq: i32| {
        let r = conn.call(&produce(seq), 9).unwrap();
        let p = &r.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    };
    let first = answer(&mut conn, 0);
    assert_eq!(first.0, 0, "{first:?}");
    assert_eq!(answer(&mut conn, 0), first, "the retry gets the first write's offset");
    let second = answer(&mut conn, 1);
    assert_eq!((second.0, second.1), (0, first.1 + 1), "the next sequence is the next offset");
    assert_eq!(answer(&mut conn, 5).0, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER for a gap");
    let end = conn
        .call(
            &ListOffsetsRequest::default().with_replica_id(kafka_protocol::messages::BrokerId(-1)).with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1)]),
            ]),
            7,
        )
        .unwrap();
    let end = end.topics[0].partitions[0].offset;
    assert_eq!(end, second.1 + 1, "two records written, the retry not");
}

/// A leader cut off from the other two (SIGSTOP) takes no `acks=all` write
/// it could lose: a produce that reached its socket while it was stopped,
/// after the others had elected a new leader, is refused when it resumes
/// and is never in the log. Its stale leadership is fenced: it then answers
/// NOT_LEADER_OR_FOLLOWER naming the new leader (KIP-951).
#[test]
fn a_leader_cut_off_from_the_others_is_fenced_when_it_returns() {
    use sluice_bench::load::client::Conn;

    let t0 = std::time::Instant::now();
    let phase = |what: &str| eprintln!("cut-off test: {what} at {:?}", t0.elapsed());
    let mut c = Cluster::start(3, FAST);
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let topic = unique_name("cut-off");
    let create = ["--create", "--topic", &topic, "--partitions", "1", "--replication-factor", "3"];
    topics(&boot[0], &[&create[..], &["--config", "min.insync.replicas=2"]].concat());
    let in_sync =
        |p: &Vec<(String, String, String)>| p.len() == 1 && p[0].0 != "none" && p[0].2.split(',').count() == 3;
    let placed = poll(150, || placement(&boot[0], &topic), in_sync);
    assert!(in_sync(&placed), "{placed:?}");
    let old: usize = placed[0].0.parse().unwrap();
    let others: Vec<usize> = (0..3).filter(|&i| i != old - 1).collect();
    let produce_ok = |addr: &str, value: &[u8]| {
        let ok = poll(
            100,
            || {
                Conn::connect(addr, "cut-off-test")
                    .and_then(|mut conn| conn.call(&record_of(&topic, 0, -1, value), 9))
                    .map(|r| r.responses[0].partition_responses[0].error_code)
                    .unwrap_or(-1)
            },
            |e| *e == 0,
        );
        assert_eq!(ok, 0, "acks=all produce of {:?} through {addr}", String::from_utf8_lossy(value));
    };
    produce_ok(&boot[old - 1], b"before");
    phase("first write");

    let mut cut_off = Conn::connect(&boot[old - 1], "cut-off-test").unwrap();
    c.nodes[old - 1].pause(true);
    let led_by_another =
        |l: &Option<Layout>| l.as_ref().is_some_and(|l| l.len() == 1 && l[0].0 > 0 && l[0].0 != old as i32);
    let moved = poll(150, || c.layout(others[0], &topic), led_by_another);
    assert!(led_by_another(&moved), "another replica leads: {moved:?}");
    let new = moved.unwrap()[0].0 as usize;
    phase("new leader");
    let req = record_of(&topic, 0, -1, b"cut-off");
    let pending = std::thread::spawn(move || cut_off.call(&req, 9));
    produce_ok(&boot[new - 1], b"after");
    c.nodes[old - 1].pause(false);
    phase("write to the new leader; old one resumed");

    match pending.join().unwrap() {
        Ok(r) => {
            let code = r.responses[0].partition_responses[0].error_code;
            assert_ne!(code, 0, "the cut-off leader acknowledged a write the others never had: {r:?}");
        }
        Err(e) => eprintln!("the cut-off leader's connection ended without an answer: {e}"),
    }
    phase("the cut-off write answered");
    // It learns of the new leader and sends clients there.
    let mut conn = Conn::connect(&boot[old - 1], "cut-off-test").unwrap();
    let answer = poll(
        150,
        || conn.call(&record_of(&topic, 0, -1, b"late"), 11).unwrap().responses[0].partition_responses[0].clone(),
        |p| p.error_code == 6,
    );
    assert_eq!(answer.error_code, 6, "NOT_LEADER_OR_FOLLOWER from the old leader: {answer:?}");
    assert_eq!(answer.current_leader.leader_id.0, new as i32, "naming the new leader: {answer:?}");

    phase("fenced");
    let back = poll(150, || placement(&boot[others[0]], &topic), in_sync);
    assert!(in_sync(&back), "the old leader is back in the ISR: {back:?}");
    phase("back in the ISR");
    for b in &boot {
        let out = kcat(&["-C", "-b", b, "-t", &topic, "-o", "beginning", "-e", "-q", "-f", "%o %s\\n"], b"");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "kcat -C against {b}: {}", String::from_utf8_lossy(&out.stderr));
        let got: Vec<&str> = text.lines().map(|l| l.split_once(' ').map_or(l, |(_, v)| v)).collect();
        assert_eq!(got, ["before", "after"], "the log through {b}: {text}");
    }
}

/// Every record value of `topic`, read through `boot` to each partition's
/// end with kcat (no group), sorted.
fn read_all(boot: &str, topic: &str) -> Vec<String> {
    let out = kcat(&["-C", "-b", boot, "-t", topic, "-o", "beginning", "-e", "-q"], b"");
    assert!(out.status.success(), "kcat -C against {boot}: {}", String::from_utf8_lossy(&out.stderr));
    let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    got.sort();
    got
}

/// The values "v{from}".."v{to - 1}" the tests produce, sorted.
fn values(from: usize, to: usize) -> Vec<String> {
    let mut v: Vec<String> = (from..to).map(|i| format!("v{i}")).collect();
    v.sort();
    v
}

/// Kafka's `__consumer_offsets` partition for a group: Java's
/// `String.hashCode` made non-negative, modulo the partition count.
fn offsets_partition(group: &str, partitions: usize) -> usize {
    let h = group.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    (h & 0x7fff_ffff) as usize % partitions
}

/// `__consumer_offsets` has three replicas of each partition; when the
/// broker leading a group's partition (its coordinator) is killed, another
/// replica coordinates the group with every committed offset: a member that
/// joins afterwards reads from where the group had committed, not from the
/// beginning.
#[test]
fn a_groups_coordinator_fails_over_with_its_committed_offsets() {
    let mut c = Cluster::start(3, &[FAST, &["offsets.topic.replication.factor=3"]].concat());
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let all = boot.join(",");
    let topic = unique_name("offsets-failover");
    let group = unique_name("failing-over");
    topics(&boot[0], &["--create", "--topic", &topic, "--partitions", "3", "--replication-factor", "3"]);
    let produce = |b: &str, from: usize, to: usize| {
        let input: String = (from..to).map(|i| format!("v{i}\n")).collect();
        let args = ["--bootstrap-server", b, "--topic", &topic, "--command-property", "acks=all"];
        kafka_tool_ok(CONSOLE_PRODUCER, &args, Some(input.as_bytes()));
    };
    let read = |j: &common::Json| -> Vec<String> {
        let mut v: Vec<String> = common::Rec::list(j.get("records")).into_iter().filter_map(|r| r.value).collect();
        v.sort();
        v
    };
    // ck.py gives values in hex; hex keeps the order `values` sorts by.
    let hex = |s: &String| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let want = |from: usize, to: usize| -> Vec<String> { values(from, to).iter().map(hex).collect() };
    // Per partition, the committed offset (-1001: none), and the partitions
    // the member read records from.
    let committed =
        |j: &common::Json| -> Vec<i64> { (0..3).map(|p| j.get("committed").get(&p.to_string()).as_i64()).collect() };
    let read_from = |j: &common::Json| -> Vec<usize> {
        let mut p: Vec<usize> = common::Rec::list(j.get("records")).iter().map(|r| r.partition as usize).collect();
        p.sort();
        p.dedup();
        p
    };
    produce(&boot[1], 0, 300);
    let first = common::python_json("ck.py", &["group", &all, &topic, &group, "--expect", "300", "--timeout", "90"]);
    assert_eq!(read(&first), want(0, 300), "the group's first member reads every record once");
    let before = committed(&first);
    for p in read_from(&first) {
        assert!(before[p] > 0, "the first member committed its position on partition {p}: {before:?}");
    }

    let offsets = c.layout(0, "__consumer_offsets").expect("describing __consumer_offsets");
    assert!(!offsets.is_empty(), "__consumer_offsets exists");
    assert!(offsets.iter().all(|(_, r, _)| r.len() == 3), "three replicas of each offsets partition: {offsets:?}");
    let p = offsets_partition(&group, offsets.len());
    let coordinator = offsets[p].0;
    assert!(coordinator > 0, "the group's offsets partition {p} has a leader: {:?}", offsets[p]);
    // Every replica has the commits before the coordinator goes.
    let synced = poll(150, || c.layout(0, "__consumer_offsets"), |l| l.as_ref().is_some_and(|l| l[p].2.len() == 3));
    assert!(synced.is_some_and(|l| l[p].2.len() == 3), "offsets partition {p} fully in sync");

    c.nodes[coordinator as usize - 1].kill9();
    let alive: Vec<usize> = (0..3).filter(|&i| i != coordinator as usize - 1).collect();
    let moved = poll(
        150,
        || c.layout(alive[0], "__consumer_offsets"),
        |l| l.as_ref().is_some_and(|l| l[p].0 > 0 && l[p].0 != coordinator),
    );
    assert!(moved.is_some_and(|l| l[p].0 > 0 && l[p].0 != coordinator), "another replica leads offsets partition {p}");
    let survivors: String = alive.iter().map(|&i| boot[i].clone()).collect::<Vec<_>>().join(",");
    produce(&boot[alive[1]], 300, 400);
    let second =
        common::python_json("ck.py", &["group", &survivors, &topic, &group, "--expect", "100", "--timeout", "90"]);
    assert_eq!(read(&second), want(300, 400), "the next member resumes at the committed offsets");
    let after = committed(&second);
    for p in read_from(&second) {
        assert!(
            after[p] > before[p],
            "the new coordinator took the commit on partition {p}: {before:?} then {after:?}"
        );
    }
}

/// Preferred-leader balancing (`auto.leader.rebalance.enable`, on by
/// default; checked every second here): each partition ends up led by its
/// first replica, leadership moves away from a killed broker, and once the
/// broker is back and in sync it leads its partitions again, with nothing
/// acknowledged lost on the way.
#[test]
fn leadership_returns_to_the_preferred_replicas_after_a_broker_comes_back() {
    let mut c = Cluster::start(
        3,
        &[FAST, &["leader.imbalance.check.interval.seconds=1", "replica.lag.time.max.ms=2000"]].concat(),
    );
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let topic = unique_name("preferred");
    topics(&boot[0], &["--create", "--topic", &topic, "--partitions", "3", "--replication-factor", "3"]);
    let balanced = |l: &Option<Layout>| {
        l.as_ref().is_some_and(|l| {
            l.len() == 3 && l.iter().all(|(leader, r, isr)| r.len() == 3 && isr.len() == 3 && Some(leader) == r.first())
        })
    };
    let first = poll(300, || c.layout(0, &topic), balanced);
    assert!(balanced(&first), "every partition led by its preferred replica: {first:?}");
    let first = first.unwrap();
    let preferred: Vec<i32> = first.iter().map(|(_, r, _)| r[0]).collect();
    let mut spread = preferred.clone();
    spread.sort();
    assert_eq!(spread, [1, 2, 3], "placement spreads the preferred leaders");

    let victim = preferred[0];
    c.nodes[victim as usize - 1].kill9();
    let alive: Vec<usize> = (0..3).filter(|&i| i != victim as usize - 1).collect();
    let moved =
        poll(150, || c.layout(alive[0], &topic), |l| l.as_ref().is_some_and(|l| l[0].0 > 0 && l[0].0 != victim));
    assert!(moved.as_ref().is_some_and(|l| l[0].0 > 0 && l[0].0 != victim), "partition 0 led by another: {moved:?}");
    let input: String = (0..200).map(|i| format!("v{i}\n")).collect();
    let args = ["--bootstrap-server", &boot[alive[0]], "--topic", &topic, "--command-property", "acks=all"];
    kafka_tool_ok(CONSOLE_PRODUCER, &args, Some(input.as_bytes()));

    c.nodes[victim as usize - 1].restart();
    let back = poll(300, || c.layout(alive[1], &topic), balanced);
    assert!(balanced(&back), "broker {victim} leads its partitions again: {back:?}");
    let got = read_all(&boot[victim as usize - 1], &topic);
    assert_eq!(got, values(0, 200), "every acknowledged record once, read from the returning leader");
}

/// `kafka-leader-election --election-type PREFERRED` with automatic
/// balancing off: a partition stays with the replica that took over from
/// its killed preferred leader until the tool moves it back; asked again,
/// the tool finds nothing to do.
#[test]
fn the_leader_election_tool_moves_leadership_to_the_preferred_replica() {
    let mut c =
        Cluster::start(3, &[FAST, &["auto.leader.rebalance.enable=false", "replica.lag.time.max.ms=2000"]].concat());
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let topic = unique_name("elect");
    topics(&boot[0], &["--create", "--topic", &topic, "--partitions", "1", "--replication-factor", "3"]);
    let in_sync = |l: &Option<Layout>| l.as_ref().is_some_and(|l| l.len() == 1 && l[0].0 > 0 && l[0].2.len() == 3);
    let placed = poll(150, || c.layout(0, &topic), in_sync);
    assert!(in_sync(&placed), "one partition, three replicas in sync: {placed:?}");
    let (leader, replicas, _) = placed.unwrap().remove(0);
    let preferred = replicas[0];
    // Leadership off the preferred replica: kill it if it leads. Layouts
    // come through a broker that stayed up (a returning one may still show
    // the metadata it had).
    let other = (0..3).find(|&i| i != preferred as usize - 1).unwrap();
    if leader == preferred {
        c.nodes[preferred as usize - 1].kill9();
        let moved =
            poll(150, || c.layout(other, &topic), |l| l.as_ref().is_some_and(|l| l[0].0 > 0 && l[0].0 != preferred));
        assert!(moved.is_some_and(|l| l[0].0 != preferred), "another replica took over");
        c.nodes[preferred as usize - 1].restart();
    }
    let back = poll(150, || c.layout(other, &topic), in_sync);
    assert!(in_sync(&back), "the preferred replica back in sync: {back:?}");
    assert_ne!(back.unwrap()[0].0, preferred, "balancing is off: leadership stays where it went");

    let elect =
        ["--bootstrap-server", &boot[other], "--election-type", "PREFERRED", "--topic", &topic, "--partition", "0"];
    let out = kafka_tool_ok(LEADER_ELECTION, &elect, None);
    assert!(
        out.contains("Successfully completed leader election (PREFERRED) for partitions")
            && out.contains(&format!("{topic}-0")),
        "{out}"
    );
    let led = poll(50, || c.layout(other, &topic), |l| l.as_ref().is_some_and(|l| l[0].0 == preferred));
    assert!(led.is_some_and(|l| l[0].0 == preferred), "the preferred replica {preferred} leads");
    let again = kafka_tool_ok(LEADER_ELECTION, &elect, None);
    assert!(again.contains("Valid replica already elected for partitions"), "{again}");
}

/// `kafka-reassign-partitions` (KIP-455): partition 0 of an RF=2 topic
/// moves off its leader onto the broker that had no replica, partition 1
/// grows to three replicas; `--verify` reports both done, the new replicas
/// are in sync, and with the replaced broker killed partition 0 still
/// takes `acks=all` writes (so the new replica votes) and reads back whole.
#[test]
fn the_reassignment_tool_moves_a_partitions_replicas() {
    let mut c = Cluster::start(3, FAST);
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let topic = unique_name("reassign");
    topics(&boot[0], &["--create", "--topic", &topic, "--partitions", "2", "--replication-factor", "2"]);
    let settled = |l: &Option<Layout>, n: usize| {
        l.as_ref().is_some_and(|l| {
            l.len() == 2
                && l.iter().all(|(leader, r, isr)| *leader > 0 && isr.len() == r.len())
                && l[0].1.len() == 2
                && l[1].1.len() == n
        })
    };
    let before = poll(150, || c.layout(0, &topic), |l| settled(l, 2)).expect("described");
    // Round robin: records on both partitions.
    let input: String = (0..200).map(|i| format!("v{i}\n")).collect();
    let args = [
        "--bootstrap-server",
        &boot[0],
        "--topic",
        &topic,
        "--command-property",
        "acks=all",
        "--command-property",
        "partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner",
    ];
    kafka_tool_ok(CONSOLE_PRODUCER, &args, Some(input.as_bytes()));

    let (leader0, replicas0) = (before[0].0, before[0].1.clone());
    let spare0 = (1..=3).find(|b| !replicas0.contains(b)).unwrap();
    let kept0 = *replicas0.iter().find(|b| **b != leader0).unwrap();
    let spare1 = (1..=3).find(|b| !before[1].1.contains(b)).unwrap();
    let target0 = vec![spare0, kept0];
    let target1: Vec<i32> = before[1].1.iter().copied().chain([spare1]).collect();
    let plan = format!(
        r#"{{"version":1,"partitions":[{{"topic":"{topic}","partition":0,"replicas":{target0:?}}},{{"topic":"{topic}","partition":1,"replicas":{target1:?}}}]}}"#
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    std::fs::write(&file, plan).unwrap();
    let file = file.to_str().unwrap();
    let out = kafka_tool_ok(
        REASSIGN_PARTITIONS,
        &["--bootstrap-server", &boot[1], "--reassignment-json-file", file, "--execute"],
        None,
    );
    assert!(out.contains("Successfully started partition reassignment"), "{out}");

    let verify = || {
        kafka_tool_ok(
            REASSIGN_PARTITIONS,
            &["--bootstrap-server", &boot[2], "--reassignment-json-file", file, "--verify", "--preserve-throttles"],
            None,
        )
    };
    let done = |o: &String| (0..2).all(|p| o.contains(&format!("Reassignment of partition {topic}-{p} is completed")));
    let verified = poll(300, verify, done);
    assert!(done(&verified), "both reassignments complete: {verified}");
    let after = poll(150, || c.layout(1, &topic), |l| settled(l, 3) && l.as_ref().is_some_and(|l| l[0].1 == target0));
    assert!(settled(&after, 3), "in sync on the new replicas: {after:?}");
    let after = after.unwrap();
    assert_eq!(after[0].1, target0, "partition 0's replicas: {after:?}");
    assert_eq!(after[1].1, target1, "partition 1's replicas: {after:?}");

    // The replaced broker is no longer needed by partition 0.
    c.nodes[leader0 as usize - 1].kill9();
    let alive: Vec<usize> = (0..3).filter(|&i| i != leader0 as usize - 1).collect();
    let led = poll(150, || c.layout(alive[0], &topic), |l| l.as_ref().is_some_and(|l| target0.contains(&l[0].0)));
    assert!(led.as_ref().is_some_and(|l| target0.contains(&l[0].0)), "partition 0 led by a new replica: {led:?}");
    let kc = kcat(&["-P", "-b", &boot[alive[0]], "-t", &topic, "-p", "0", "-X", "acks=all"], b"late0\nlate1\n");
    assert!(
        kc.status.success(),
        "acks=all writes to partition 0 without the replaced broker: {}",
        String::from_utf8_lossy(&kc.stderr)
    );
    let mut want = values(0, 200);
    want.extend(["late0".to_string(), "late1".to_string()]);
    want.sort();
    assert_eq!(read_all(&boot[alive[1]], &topic), want, "every record once");
}

/// Retention on a replicated topic (`retention.bytes`): the log start moves
/// on every replica; a replica that was down meanwhile comes back behind
/// the leader's log start, starts its log there (the records before it are
/// kept nowhere) and catches up; led by it again (preferred-leader
/// balancing), the topic reads back the same records from the same start.
#[test]
fn retention_moves_the_log_start_and_a_returning_replica_starts_there() {
    let extra = [
        "leader.imbalance.check.interval.seconds=1",
        "replica.lag.time.max.ms=2000",
        "log.retention.check.interval.ms=500",
    ];
    let mut c = Cluster::start(3, &[FAST, &extra[..]].concat());
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let topic = unique_name("retained");
    let create = ["--create", "--topic", &topic, "--partitions", "1", "--replication-factor", "3"];
    let configs = ["--config", "segment.bytes=1048576", "--config", "retention.bytes=1048576"];
    topics(&boot[0], &[&create[..], &configs[..]].concat());
    let preferred_leads = |l: &Option<Layout>| {
        l.as_ref().is_some_and(|l| l.len() == 1 && l[0].2.len() == 3 && Some(&l[0].0) == l[0].1.first())
    };
    let first = poll(300, || c.layout(0, &topic), preferred_leads);
    assert!(preferred_leads(&first), "led by its preferred replica, all in sync: {first:?}");
    let a = first.unwrap()[0].0 as usize;
    c.nodes[a - 1].kill9();
    let alive: Vec<usize> = (0..3).filter(|&i| i != a - 1).collect();
    let moved =
        poll(150, || c.layout(alive[0], &topic), |l| l.as_ref().is_some_and(|l| l[0].0 > 0 && l[0].0 != a as i32));
    assert!(moved.as_ref().is_some_and(|l| l[0].0 > 0 && l[0].0 != a as i32), "another replica leads: {moved:?}");

    // About 3 MiB: segments of 1 MiB, of which retention keeps about one.
    let pad = "x".repeat(1000);
    let input: String = (0..3000).map(|i| format!("v{i}-{pad}\n")).collect();
    let out = kcat(&["-P", "-b", &boot[alive[0]], "-t", &topic, "-X", "acks=all"], input.as_bytes());
    assert!(out.status.success(), "kcat -P: {}", String::from_utf8_lossy(&out.stderr));
    let earliest = |b: &str| {
        let out = kafka_tool(GET_OFFSETS, &["--bootstrap-server", b, "--topic", &topic, "--time", "-2"], None);
        String::from_utf8_lossy(&out.stdout).trim().rsplit(':').next().and_then(|o| o.parse::<i64>().ok()).unwrap_or(-1)
    };
    let start = poll(150, || earliest(&boot[alive[0]]), |o| *o > 0);
    assert!(start > 0, "retention moved the log start: {start}");
    let read = |b: &str| -> Vec<(i64, String)> {
        let out = kcat(&["-C", "-b", b, "-t", &topic, "-o", "beginning", "-e", "-q", "-f", "%o %s\\n"], b"");
        assert!(out.status.success(), "kcat -C against {b}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(o, v)| (o.parse().unwrap_or(-1), v.to_string())))
            .collect()
    };
    let before = read(&boot[alive[0]]);
    assert!(
        !before.is_empty() && before[0].0 >= start,
        "read from the log start on: {:?}",
        before.first().map(|r| r.0)
    );
    assert!(
        before.len() < 3000 && before.last().is_some_and(|r| r.1.starts_with("v2999-")),
        "{} records",
        before.len()
    );

    c.nodes[a - 1].restart();
    let back = poll(
        300,
        || c.layout(alive[1], &topic),
        |l| preferred_leads(l) && l.as_ref().is_some_and(|l| l[0].0 == a as i32),
    );
    assert!(back.as_ref().is_some_and(|l| l[0].0 == a as i32), "broker {a} is back in sync and leads again: {back:?}");
    let after = read(&boot[a - 1]);
    assert!(!after.is_empty() && after[0].0 > 0, "from a moved start: {:?}", after.first().map(|r| r.0));
    assert!(
        before.ends_with(&after),
        "the returning leader has the records from its start: {} of {} records, first at {}",
        after.len(),
        before.len(),
        after[0].0
    );
    assert!(after.len() * 2 > before.len(), "most of what was kept: {} of {}", after.len(), before.len());
}

/// DeleteRecords and compaction on replicated partitions. Kafka's
/// `kafka-delete-records` moves the log start of every replica: the leader
/// that follows a killed one starts there too. A compacted topic is
/// compacted on every replica (each cleans what it has applied), keeping
/// the latest value of every key: the leader that follows a killed one
/// serves that too.
#[test]
fn delete_records_and_compaction_hold_on_every_replica() {
    let extra = ["log.cleaner.backoff.ms=500", "replica.lag.time.max.ms=2000"];
    let mut c = Cluster::start(3, &[FAST, &extra[..]].concat());
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let (deleted, compacted) = (unique_name("deleted"), unique_name("compacted"));
    fn create(t: &str) -> Vec<&str> {
        vec!["--create", "--topic", t, "--partitions", "1", "--replication-factor", "3"]
    }
    topics(&boot[0], &create(&deleted));
    let configs = ["--config", "cleanup.policy=compact", "--config", "segment.bytes=1048576"];
    let ratio = ["--config", "min.cleanable.dirty.ratio=0.01"];
    topics(&boot[0], &[&create(&compacted)[..], &configs[..], &ratio[..]].concat());
    let in_sync = |l: &Option<Layout>| l.as_ref().is_some_and(|l| l.len() == 1 && l[0].0 > 0 && l[0].2.len() == 3);
    for t in [&deleted, &compacted] {
        let l = poll(300, || c.layout(0, t), in_sync);
        assert!(in_sync(&l), "{t}: led, all in sync: {l:?}");
    }
    // (offset, key, value) from the log start on, through broker `b`.
    let read = |b: &str, t: &str| -> Vec<(i64, String, String)> {
        let out = kcat(&["-C", "-b", b, "-t", t, "-o", "beginning", "-e", "-q", "-f", "%o %k %s\\n"], b"");
        assert!(out.status.success(), "kcat -C against {b}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, ' ');
                Some((f.next()?.parse().ok()?, f.next()?.to_string(), f.next()?.to_string()))
            })
            .collect()
    };
    let produce = |b: &str, t: &str, input: &str| {
        let out = kcat(&["-P", "-b", b, "-t", t, "-K", ":", "-X", "acks=all"], input.as_bytes());
        assert!(out.status.success(), "kcat -P: {}", String::from_utf8_lossy(&out.stderr));
    };
    let earliest = |b: &str, t: &str| {
        let out = kafka_tool(GET_OFFSETS, &["--bootstrap-server", b, "--topic", t, "--time", "-2"], None);
        String::from_utf8_lossy(&out.stdout).trim().rsplit(':').next().and_then(|o| o.parse::<i64>().ok()).unwrap_or(-1)
    };

    // DeleteRecords up to the 41st record, through a broker that may not lead.
    let input: String = (0..100).map(|i| format!("k{i}:d{i}\n")).collect();
    produce(&boot[0], &deleted, &input);
    let all = read(&boot[1], &deleted);
    assert_eq!(all.len(), 100, "every record produced");
    let cut = all[40].0;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("offsets.json");
    let spec = format!(r#"{{"partitions":[{{"topic":"{deleted}","partition":0,"offset":{cut}}}],"version":1}}"#);
    std::fs::write(&json, spec).unwrap();
    let out = kafka_tool_ok(
        DELETE_RECORDS,
        &["--bootstrap-server", &boot[2], "--offset-json-file", json.to_str().unwrap()],
        None,
    );
    assert!(out.contains(&format!("low_watermark: {cut}")), "kafka-delete-records: {out}");
    let leader = c.layout(0, &deleted).unwrap()[0].0 as usize;
    c.nodes[leader - 1].kill9();
    let alive = (0..3).find(|&i| i != leader - 1).unwrap();
    let moved = |l: &Option<Layout>| l.as_ref().is_some_and(|l| l[0].0 > 0 && l[0].0 != leader as i32);
    let l = poll(150, || c.layout(alive, &deleted), moved);
    assert!(moved(&l), "another replica leads: {l:?}");
    assert_eq!(poll(60, || earliest(&boot[alive], &deleted), |o| *o == cut), cut, "the new leader starts at {cut}");
    let after = read(&boot[alive], &deleted);
    assert_eq!(after.first().map(|r| r.0), Some(cut), "read from the new log start");
    assert_eq!(after[..], all[40..], "the records from there on, unchanged");
    c.nodes[leader - 1].restart();
    let l = poll(300, || c.layout(alive, &compacted), in_sync);
    assert!(in_sync(&l), "{compacted}: all in sync again: {l:?}");

    // About 3 MiB over ten keys: the sealed segments compact to ten records.
    let pad = "x".repeat(1000);
    let input: String = (0..3000).map(|i| format!("k{}:v{i}-{pad}\n", i % 10)).collect();
    produce(&boot[1], &compacted, &input);
    let latest: std::collections::BTreeMap<String, String> =
        (2990..3000).map(|i| (format!("k{}", i % 10), format!("v{i}-{pad}"))).collect();
    let check = |recs: &[(i64, String, String)], who: &str| {
        assert!(recs.windows(2).all(|w| w[0].0 < w[1].0), "{who}: offsets increase");
        let last: std::collections::BTreeMap<String, String> =
            recs.iter().map(|(_, k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(last.len(), 10, "{who}: ten keys");
        assert!(last == latest, "{who}: the latest value of every key stays");
    };
    let leader = c.layout(alive, &compacted).unwrap()[0].0 as usize;
    let cleaned = poll(120, || read(&boot[leader - 1], &compacted), |r| r.len() < 2500);
    assert!(cleaned.len() < 2500, "the leader compacted: {} of 3000 records left", cleaned.len());
    check(&cleaned, "the leader");
    c.nodes[leader - 1].kill9();
    let alive = (0..3).find(|&i| i != leader - 1).unwrap();
    let moved = |l: &Option<Layout>| l.as_ref().is_some_and(|l| l[0].0 > 0 && l[0].0 != leader as i32);
    let l = poll(150, || c.layout(alive, &compacted), moved);
    assert!(moved(&l), "another replica leads: {l:?}");
    let next = l.unwrap()[0].0 as usize;
    let cleaned = poll(120, || read(&boot[next - 1], &compacted), |r| r.len() < 2500);
    assert!(cleaned.len() < 2500, "the new leader compacted its own log: {} of 3000 records left", cleaned.len());
    check(&cleaned, "the new leader");
}
