//! Three `sluice serve` processes form one cluster (combined broker and
//! controller nodes, Kafka's KRaft property names): they agree on the
//! brokers and the active controller, fence a broker that is killed or
//! stopped, elect a new controller when the active one dies, and take a
//! returning node back.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::kafka_tools::{kafka_tool_ok, METADATA_QUORUM};
use common::kcat;

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

    // A real client bootstrapping from any node sees all three brokers.
    for n in &c.nodes {
        let out = kcat(&["-L", "-b", &n.bootstrap(), "-m", "10"], b"");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains(" 3 brokers:"), "kcat -L against {}:\n{text}", n.bootstrap());
    }

    // kill -9 the active controller: the other two elect one of
    // themselves and fence it.
    let old = info.controller.unwrap();
    let dead = (old - 1) as usize;
    c.nodes[dead].kill9();
    let left: Vec<usize> = all.iter().copied().filter(|&i| i != dead).collect();
    let want: Vec<i32> = left.iter().map(|&i| i as i32 + 1).collect();
    let after = c.wait_agreed(&left, &want, AGREE);
    assert_ne!(after.controller, Some(old), "a dead node cannot stay controller");
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
    let stopped = (0..3).find(|&i| Some(i as i32 + 1) != info.controller).unwrap();
    c.nodes[stopped].pause(true);
    let left: Vec<usize> = all.iter().copied().filter(|&i| i != stopped).collect();
    let want: Vec<i32> = left.iter().map(|&i| i as i32 + 1).collect();
    let during = c.wait_agreed(&left, &want, AGREE);
    assert_eq!(during.controller, info.controller, "losing a follower does not move the controller");
    c.nodes[stopped].pause(false);
    c.wait_agreed(&all, &[1, 2, 3], AGREE);
}

/// Kafka's own `kafka-metadata-quorum` describes the quorum through any
/// node (a follower asks the active controller).
#[test]
fn kafka_metadata_quorum_describes_the_quorum() {
    let c = Cluster::start(3, FAST);
    let info = c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let leader = info.controller.unwrap();
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
