//! A cluster of Sluice nodes on loopback, each a combined broker and
//! controller (`process.roles=broker,controller`), configured with Kafka's
//! property names as the tutorials' three-node cluster is; with
//! `SLUICE_TEST_BROKER=kafka`, the same cluster of Apache Kafka nodes.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{broker_bin, free_port, run, Broker, CLIENT_TIMEOUT};

/// (leader or -1, replicas, ISR) per partition.
pub type Layout = Vec<(i32, Vec<i32>, Vec<i32>)>;

pub struct Cluster {
    pub nodes: Vec<Broker>,
    /// Each node's CONTROLLER listener port.
    pub controller_ports: Vec<u16>,
}

/// What `sluice cluster info` printed, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    pub cluster_id: String,
    /// DescribeCluster's controller id: Sluice names the broker asked (it
    /// forwards controller work), Kafka a random live broker.
    pub controller: Option<i32>,
    /// (node id, host:port)
    pub brokers: Vec<(i32, String)>,
    /// The metadata quorum's leader (DescribeQuorum), the active controller.
    pub leader: Option<i32>,
    pub voters: Vec<i32>,
}

impl Info {
    fn same_cluster(&self, other: &Info) -> bool {
        (&self.cluster_id, &self.brokers, self.leader, &self.voters)
            == (&other.cluster_id, &other.brokers, other.leader, &other.voters)
    }
}

impl Cluster {
    /// `n` nodes with ids 1..=n. `extra` lines go into every node's config.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let voters: Vec<String> =
            ports.iter().enumerate().map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1)).collect();
        let voters = voters.join(",");
        let kafka_id = super::kafka_broker::cluster_id();
        let mut nodes: Vec<Broker> = ports
            .iter()
            .enumerate()
            .map(|(i, (p, c))| {
                let mut lines: Vec<String> = vec![
                    format!("node.id={}", i + 1),
                    "process.roles=broker,controller".into(),
                    format!("controller.quorum.voters={voters}"),
                    "controller.listener.names=CONTROLLER".into(),
                    "inter.broker.listener.name=PLAINTEXT".into(),
                    format!("advertised.listeners=PLAINTEXT://127.0.0.1:{p}"),
                ];
                lines.extend(extra.iter().map(|s| s.to_string()));
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                let listeners = format!("PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}");
                Broker::spawn_node(*p, *c, &listeners, &lines, 1, &kafka_id)
            })
            .collect();
        for n in &mut nodes {
            n.wait_started();
        }
        Cluster { nodes, controller_ports: ports.iter().map(|p| p.1).collect() }
    }

    /// `sluice cluster info` against node `i` (None: it did not answer).
    pub fn info(&self, i: usize) -> Option<Info> {
        let mut cmd = Command::new(broker_bin());
        cmd.args(["cluster", "info", "--bootstrap-server", &self.nodes[i].bootstrap()])
            .env_remove("SLUICE_BOOTSTRAP_SERVER");
        let out = run(cmd, None, CLIENT_TIMEOUT, "sluice cluster info");
        if !out.status.success() {
            return None;
        }
        parse_info(&String::from_utf8_lossy(&out.stdout))
    }

    /// (leader, replicas, ISR) per partition of `topic` as `sluice topic
    /// describe` through node `i` prints them (None: it did not answer). A
    /// Kafka client that asks only the node it is given, unlike Kafka's
    /// Admin, which may wait out a stopped broker's request timeout.
    pub fn layout(&self, i: usize, topic: &str) -> Option<Layout> {
        let mut cmd = Command::new(broker_bin());
        cmd.args(["topic", "describe", topic, "--bootstrap-server", &self.nodes[i].bootstrap()])
            .env_remove("SLUICE_BOOTSTRAP_SERVER");
        let out = run(cmd, None, CLIENT_TIMEOUT, "sluice topic describe");
        if !out.status.success() {
            return None;
        }
        let ids = |s: &str| -> Vec<i32> { s.split(',').filter_map(|i| i.trim().parse().ok()).collect() };
        let text = String::from_utf8_lossy(&out.stdout);
        let parts = text
            .lines()
            .filter(|l| l.trim_start().starts_with("Topic:") && l.contains("Partition:"))
            .map(|l| {
                let f: HashMap<&str, &str> =
                    l.trim().split('\t').filter_map(|f| f.split_once(':')).map(|(k, v)| (k.trim(), v.trim())).collect();
                (f.get("Leader").and_then(|l| l.parse().ok()).unwrap_or(-1), ids(f["Replicas"]), ids(f["Isr"]))
            })
            .collect();
        Some(parts)
    }

    /// Waits (bounded) until every node in `up` reports the same cluster,
    /// with a controller, listing exactly the brokers `want` (node ids).
    pub fn wait_agreed(&self, up: &[usize], want: &[i32], timeout: Duration) -> Info {
        let deadline = Instant::now() + timeout;
        let mut last: Vec<(usize, Option<Info>)>;
        loop {
            last = up.iter().map(|&i| (i, self.info(i))).collect::<Vec<_>>();
            let infos: Vec<&Info> = last.iter().filter_map(|(_, i)| i.as_ref()).collect();
            if infos.len() == up.len()
                && infos.iter().all(|i| i.same_cluster(infos[0]))
                && infos[0].leader.is_some_and(|l| want.contains(&l))
                && infos[0].brokers.iter().map(|b| b.0).collect::<Vec<_>>() == want
            {
                return infos[0].clone();
            }
            if Instant::now() > deadline {
                let logs: String =
                    up.iter().map(|&i| format!("--- node {} log ---\n{}\n", i + 1, self.nodes[i].log_tail())).collect();
                panic!("nodes {up:?} did not agree on brokers {want:?} within {timeout:?}; last answers: {last:#?}\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

pub fn parse_info(text: &str) -> Option<Info> {
    let mut lines = text.lines();
    let cluster_id = lines.next()?.strip_prefix("Cluster ID: ")?.to_string();
    let c = lines.next()?.strip_prefix("Controller: ")?;
    let controller = c.parse().ok();
    if lines.next()? != "Brokers:" {
        return None;
    }
    let mut brokers = Vec::new();
    let mut leader = None;
    let mut voters = Vec::new();
    for l in lines {
        if let Some(rest) = l.strip_prefix("Quorum leader: ") {
            // A leader of -1 means none is known yet.
            leader = rest.split_whitespace().next()?.parse().ok().filter(|l: &i32| *l >= 0);
        } else if let Some(rest) = l.strip_prefix("Quorum voters: ") {
            voters = rest.split_whitespace().map(|v| v.parse().ok()).collect::<Option<Vec<i32>>>()?;
        } else {
            let f: Vec<&str> = l.split_whitespace().collect();
            brokers.push((f.first()?.parse().ok()?, f.get(1)?.to_string()));
        }
    }
    Some(Info { cluster_id, controller, brokers, leader, voters })
}
