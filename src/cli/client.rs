//! A small blocking Kafka client for the command-line tools: one
//! `std::net::TcpStream` per broker, requests answered one at a time. The
//! message bodies are the `kafka-protocol` crate's; this file adds the size
//! prefix, the request header, and the choice of version for each API from
//! what the broker's ApiVersions lists.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, GroupId, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::kafka_error::check;

/// Longest a broker may take to answer one request (fetches ask for much
/// less: their long poll is bounded by `max_wait_ms`).
const IO_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A response claiming more is treated as garbage rather than allocated.
const MAX_FRAME: usize = 256 << 20;
/// How often (100 ms apart) a loading coordinator is asked again: 5 s.
const LOADING_RETRIES: usize = 50;

pub fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

pub fn group_id(s: &str) -> GroupId {
    GroupId(str_bytes(s))
}

fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map(|k| format!("{k:?}")).unwrap_or_else(|_| format!("API {key}"))
}

/// "Connection refused" rather than "Connection refused (os error 111)".
pub fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// One connection to one broker.
pub struct Conn {
    pub addr: String,
    stream: TcpStream,
    /// (api key, oldest, newest) as the broker listed them.
    ranges: Vec<(i16, i16, i16)>,
    next_correlation: i32,
}

impl Conn {
    /// Connects to `addr` ("host:port"; every address it resolves to is
    /// tried in turn) and asks for the broker's API versions.
    pub fn connect(addr: &str) -> Result<Conn> {
        let addrs: Vec<_> = match addr.to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => bail!("broker {addr} unreachable: {}", io_reason(&e)),
        };
        let mut last = None;
        let mut stream = None;
        for sa in &addrs {
            match TcpStream::connect_timeout(sa, CONNECT_TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(stream) = stream else {
            let why = last.map(|e| io_reason(&e)).unwrap_or_else(|| "resolves to no address".into());
            bail!("broker {addr} unreachable: {why}");
        };
        let unreachable = |e: std::io::Error| anyhow!("broker {addr} unreachable: {}", io_reason(&e));
        stream.set_nodelay(true).map_err(unreachable)?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(unreachable)?;
        stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(unreachable)?;
        let mut conn = Conn { addr: addr.to_string(), stream, ranges: Vec::new(), next_correlation: 1 };
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = StrBytes::from_static_str("sluice-cli");
        req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        // A broker that does not know v3 answers UNSUPPORTED_VERSION in a v0
        // body (which fails to decode as v3) or closes the connection: fall
        // back to v0 on a fresh connection.
        let resp = match conn.call(&req, 3) {
            Ok(r) if r.error_code == 0 => r,
            _ => {
                let mut again = Conn::connect_plain(addr)?;
                let r = again.call(&ApiVersionsRequest::default(), 0)?;
                conn = again;
                r
            }
        };
        check(resp.error_code, None).with_context(|| format!("ApiVersions from {addr}"))?;
        conn.ranges = resp.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
        Ok(conn)
    }

    fn connect_plain(addr: &str) -> Result<Conn> {
        let stream = addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.find_map(|sa| TcpStream::connect_timeout(&sa, CONNECT_TIMEOUT).ok()))
            .ok_or_else(|| anyhow!("broker {addr} unreachable"))?;
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        Ok(Conn { addr: addr.to_string(), stream, ranges: Vec::new(), next_correlation: 1 })
    }

    /// Whether the broker serves this API at all.
    pub fn supports<R: Request>(&self) -> bool {
        self.ranges.iter().any(|r| r.0 == R::KEY)
    }

    /// The newest version of `R` that the broker, the codec and `cap` all
    /// allow.
    pub fn version<R: Request>(&self, cap: i16) -> Result<i16> {
        let Some(&(_, lo, hi)) = self.ranges.iter().find(|r| r.0 == R::KEY) else {
            bail!("broker {} does not serve {}", self.addr, api_name(R::KEY));
        };
        let v = hi.min(cap).min(R::VERSIONS.max);
        if v < lo || v < R::VERSIONS.min {
            bail!("broker {} serves {} v{lo}-{hi}, this tool speaks up to v{}", self.addr, api_name(R::KEY), cap);
        }
        Ok(v)
    }

    /// `call`, sent again while the group coordinator answers
    /// COORDINATOR_LOAD_IN_PROGRESS (it is replaying its offsets partition),
    /// as Kafka's Admin client retries it; `code` picks the response's
    /// group-level error.
    pub fn call_while_loading<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        code: impl Fn(&R::Response) -> i16,
    ) -> Result<R::Response> {
        const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
        for _ in 0..LOADING_RETRIES {
            let resp = self.call(req, version)?;
            if code(&resp) != COORDINATOR_LOAD_IN_PROGRESS {
                return Ok(resp);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.call(req, version)
    }

    fn frame<R: Request>(&mut self, req: &R, version: i16) -> Result<(Bytes, i32)> {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1).max(1);
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = correlation;
        header.client_id = Some(StrBytes::from_static_str("sluice-cli"));
        let hv = R::header_version(version);
        let size = header.compute_size(hv)? + req.compute_size(version)?;
        let mut buf = BytesMut::with_capacity(4 + size);
        buf.put_i32(size as i32);
        header.encode(&mut buf, hv)?;
        req.encode(&mut buf, version)?;
        Ok((buf.freeze(), correlation))
    }

    fn write(&mut self, frame: &[u8]) -> Result<()> {
        self.stream.write_all(frame).map_err(|e| anyhow!("broker {}: sending failed: {}", self.addr, io_reason(&e)))
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub fn send<R: Request>(&mut self, req: &R, version: i16) -> Result<()> {
        let (frame, _) = self.frame(req, version)?;
        self.write(&frame)
    }

    /// One request, one response.
    pub fn call<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response> {
        let (frame, correlation) = self.frame(req, version)?;
        self.write(&frame)?;
        let mut body = self.read_frame().with_context(|| format!("broker {}", self.addr))?;
        let hv = <R::Response as HeaderVersion>::header_version(version);
        let header = ResponseHeader::decode(&mut body, hv).context("a malformed response header")?;
        if header.correlation_id != correlation {
            bail!("broker {} answered request {} where {correlation} was expected", self.addr, header.correlation_id);
        }
        <R::Response as Decodable>::decode(&mut body, version)
            .with_context(|| format!("broker {}: malformed {} v{version} response", self.addr, api_name(R::KEY)))
    }

    fn read_frame(&mut self) -> Result<Bytes> {
        let mut size = [0u8; 4];
        self.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        if size < 4 || size as usize > MAX_FRAME {
            bail!("a response frame of {size} bytes");
        }
        let mut body = vec![0u8; size as usize];
        self.read_exact(&mut body)?;
        Ok(Bytes::from(body))
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.stream.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => anyhow!("the broker closed the connection"),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                anyhow!("no answer within {} s", IO_TIMEOUT.as_secs())
            }
            _ => anyhow!("reading failed: {}", io_reason(&e)),
        })
    }
}

/// A topic's partitions and where they are led.
pub struct TopicLayout {
    pub name: String,
    pub id: uuid::Uuid,
    /// Sorted by partition index.
    pub partitions: Vec<PartitionLayout>,
}

pub struct PartitionLayout {
    pub index: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error_code: i16,
}

/// The cluster as seen through one bootstrap broker, with a connection per
/// broker opened when first needed.
pub struct Cluster {
    pub bootstrap: Conn,
    /// node id → "host:port", from the last Metadata.
    pub brokers: BTreeMap<i32, String>,
    conns: BTreeMap<i32, Conn>,
}

impl Cluster {
    /// Connects to the first reachable server of a comma-separated list
    /// (a missing port means 9092).
    pub fn connect(servers: &str) -> Result<Cluster> {
        let mut last = None;
        for s in servers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let addr = if s.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
                s.to_string()
            } else {
                format!("{s}:9092")
            };
            match Conn::connect(&addr) {
                Ok(c) => return Ok(Cluster { bootstrap: c, brokers: BTreeMap::new(), conns: BTreeMap::new() }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("no bootstrap server given")))
    }

    /// Metadata for `topics` (None: all), never creating topics.
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<MetadataResponse> {
        let v = self.bootstrap.version::<MetadataRequest>(12)?;
        let mut req = MetadataRequest::default();
        req.allow_auto_topic_creation = false;
        req.topics = match topics {
            None if v == 0 => Some(Vec::new()),
            None => None,
            Some(names) => Some(
                names
                    .iter()
                    .map(|n| {
                        let mut t = MetadataRequestTopic::default();
                        t.name = Some(topic_name(n));
                        t
                    })
                    .collect(),
            ),
        };
        let resp = self.bootstrap.call(&req, v)?;
        self.brokers = resp.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port))).collect();
        Ok(resp)
    }

    /// One topic's layout; an error if the topic does not exist. Waits a
    /// little (bounded) for partitions without a leader, as after a create.
    pub fn topic(&mut self, name: &str) -> Result<TopicLayout> {
        for attempt in 0.. {
            let resp = self.metadata(Some(&[name.to_string()]))?;
            let Some(t) = resp.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == name)) else {
                bail!("unknown topic {name}");
            };
            if t.error_code == 3 {
                bail!("unknown topic {name}");
            }
            let retriable = matches!(t.error_code, 5 | 6);
            let leaderless = t.partitions.iter().any(|p| p.leader_id.0 < 0);
            if (retriable || leaderless || t.partitions.is_empty()) && attempt < 50 {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            check(t.error_code, None).with_context(|| format!("topic {name}"))?;
            if t.partitions.is_empty() {
                bail!("topic {name} has no partitions");
            }
            let mut partitions: Vec<PartitionLayout> = t
                .partitions
                .iter()
                .map(|p| PartitionLayout {
                    index: p.partition_index,
                    leader: p.leader_id.0,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.index);
            return Ok(TopicLayout { name: name.to_string(), id: t.topic_id, partitions });
        }
        unreachable!("the loop returns")
    }

    /// The connection to broker `node` (opened on first use).
    pub fn node(&mut self, node: i32) -> Result<&mut Conn> {
        if !self.conns.contains_key(&node) {
            let Some(addr) = self.brokers.get(&node).cloned() else {
                bail!("broker {node} is not in the cluster metadata");
            };
            let conn = Conn::connect(&addr)?;
            self.conns.insert(node, conn);
        }
        Ok(self.conns.get_mut(&node).expect("inserted above"))
    }

    /// Drops the connection to `node` (after an error on it): the next
    /// `node(..)` connects afresh.
    pub fn forget(&mut self, node: i32) {
        self.conns.remove(&node);
    }

    /// Opens a connection to the coordinator of `group` (FindCoordinator,
    /// retried while the coordinator is loading).
    pub fn coordinator(&mut self, group: &str) -> Result<Conn> {
        let v = self.bootstrap.version::<FindCoordinatorRequest>(6)?;
        for attempt in 0.. {
            let mut req = FindCoordinatorRequest::default();
            if v >= 4 {
                req.coordinator_keys = vec![str_bytes(group)];
            } else {
                req.key = str_bytes(group);
            }
            let resp = self.bootstrap.call(&req, v)?;
            let (code, msg, host, port) = if v >= 4 {
                let Some(c) = resp.coordinators.first() else { bail!("FindCoordinator returned no coordinator") };
                (c.error_code, c.error_message.clone(), c.host.clone(), c.port)
            } else {
                (resp.error_code, resp.error_message.clone(), resp.host.clone(), resp.port)
            };
            // 14: COORDINATOR_LOAD_IN_PROGRESS, 15: COORDINATOR_NOT_AVAILABLE.
            if matches!(code, 14 | 15) && attempt < LOADING_RETRIES {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            check(code, msg.as_deref()).with_context(|| format!("finding the coordinator of group {group}"))?;
            return Conn::connect(&format!("{}:{port}", host.as_str()));
        }
        unreachable!("the loop returns")
    }
}
