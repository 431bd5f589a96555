//! Raft messages (and the group's own small messages) between nodes over
//! TCP, on plain threads: one accept loop, one reader per inbound
//! connection, one writer per peer with a bounded queue.
//!
//! A connection opens with `SLUICERF`, a u16 version and the sender's u64
//! id; then frames `[u32 len][u8 kind][payload]` (little-endian; `len`
//! counts kind and payload). Raft tolerates lost messages, so a full
//! queue or a broken connection drops frames rather than block the node;
//! the writer reconnects with a backoff.

use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::Message;

const MAGIC: &[u8; 8] = b"SLUICERF";
const VERSION: u16 = 1;
/// Largest frame read; a metadata snapshot is the biggest thing sent.
pub const MAX_FRAME: usize = 64 << 20;
const QUEUE: usize = 4096;
const MAX_INBOUND: usize = 64;
const KIND_RAFT: u8 = 0;
const KIND_APP: u8 = 1;
const KIND_GROUP: u8 = 2;

/// Names one of many Raft groups sharing the connections (a partition:
/// its topic id and index).
pub type GroupId = [u8; 20];

pub enum Frame {
    Raft(Message),
    /// Bytes the group's owner defines (forwarded proposals, heartbeats).
    App(Vec<u8>),
    /// A message of another Raft group than the connection owner's.
    Group(GroupId, Message),
}

pub struct Inbound {
    pub from: u64,
    pub frame: Frame,
}

type Sink = Arc<dyn Fn(Inbound) -> bool + Send + Sync>;

/// Senders to every peer; `Send`, cheap to share.
pub struct Transport {
    peers: HashMap<u64, SyncSender<Frame>>,
}

impl Transport {
    /// Serves `listener` (already bound: a port in use fails at start-up,
    /// not here) and connects to `peers` (id → `host:port`). What arrives
    /// is handed to `inbound`, from the reader threads; it returns false
    /// once nobody listens any more.
    pub fn start(
        self_id: u64,
        listener: TcpListener,
        peers: &HashMap<u64, String>,
        inbound: impl Fn(Inbound) -> bool + Send + Sync + 'static,
    ) -> io::Result<Transport> {
        let inbound: Sink = Arc::new(inbound);
        let active = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new().name("raft-accept".into()).spawn(move || accept_loop(listener, inbound, active))?;
        let mut senders = HashMap::new();
        for (&id, addr) in peers {
            if id == self_id {
                continue;
            }
            let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
            let addr = addr.clone();
            std::thread::Builder::new()
                .name(format!("raft-to-{id}"))
                .spawn(move || write_loop(self_id, id, addr, rx))?;
            senders.insert(id, tx);
        }
        Ok(Transport { peers: senders })
    }

    /// Queues a frame for `to`; false when it was dropped (unknown peer,
    /// or its queue is full).
    pub fn send(&self, to: u64, frame: Frame) -> bool {
        match self.peers.get(&to) {
            Some(tx) => match tx.try_send(frame) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
            },
            None => false,
        }
    }
}

fn accept_loop(listener: TcpListener, inbound: Sink, active: Arc<AtomicUsize>) {
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%e, "raft transport: accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.load(Ordering::SeqCst) >= MAX_INBOUND {
            tracing::warn!(peer = ?stream.peer_addr().ok(), "raft transport: too many connections; closing one");
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (inbound, active) = (inbound.clone(), active.clone());
        let spawned = std::thread::Builder::new().name("raft-from".into()).spawn(move || {
            let peer = stream.peer_addr().ok();
            if let Err(e) = read_loop(stream, &inbound) {
                tracing::debug!(?peer, %e, "raft transport: inbound connection closed");
            }
            active.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            tracing::warn!("raft transport: cannot start a reader thread");
        }
    }
}

fn read_loop(stream: TcpStream, inbound: &Sink) -> io::Result<()> {
    // A quiet link between two followers may stay idle; the writer side
    // reconnects when it has something again.
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut r = BufReader::with_capacity(64 << 10, stream);
    let mut hello = [0u8; 18];
    r.read_exact(&mut hello)?;
    if &hello[..8] != MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a Sluice raft connection"));
    }
    let version = u16::from_le_bytes([hello[8], hello[9]]);
    if version != VERSION {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("raft transport version {version}")));
    }
    let from = u64::from_le_bytes(hello[10..18].try_into().unwrap());
    loop {
        let mut len = [0u8; 4];
        r.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 || len > MAX_FRAME {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("raft frame of {len} bytes")));
        }
        let mut buf = vec![0u8; len];
        r.read_exact(&mut buf)?;
        let frame = match buf[0] {
            KIND_RAFT => match Message::parse_from_bytes(&buf[1..]) {
                // The sender's claimed id must be the connection's.
                Ok(m) if m.from == from => Frame::Raft(m),
                Ok(m) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("raft message from {} on the connection of {from}", m.from),
                    ))
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            },
            KIND_APP => Frame::App(buf[1..].to_vec()),
            KIND_GROUP if buf.len() > 21 => {
                let group: GroupId = buf[1..21].try_into().expect("20 bytes");
                match Message::parse_from_bytes(&buf[21..]) {
                    Ok(m) if m.from == from => Frame::Group(group, m),
                    Ok(m) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("raft message from {} on the connection of {from}", m.from),
                        ))
                    }
                    Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
                }
            }
            k => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("raft frame kind {k}"))),
        };
        if !inbound(Inbound { from, frame }) {
            return Ok(());
        }
    }
}

fn encode(frame: &Frame, out: &mut Vec<u8>) -> io::Result<()> {
    let (kind, payload) = match frame {
        Frame::Raft(m) => (KIND_RAFT, m.write_to_bytes().map_err(|e| io::Error::other(e.to_string()))?),
        Frame::App(b) => (KIND_APP, b.clone()),
        Frame::Group(g, m) => {
            let mut p = g.to_vec();
            p.extend_from_slice(&m.write_to_bytes().map_err(|e| io::Error::other(e.to_string()))?);
            (KIND_GROUP, p)
        }
    };
    if payload.len() + 1 > MAX_FRAME {
        return Err(io::Error::other(format!("raft frame of {} bytes is over the limit", payload.len())));
    }
    out.extend_from_slice(&((payload.len() + 1) as u32).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&payload);
    Ok(())
}

fn connect(self_id: u64, addr: &str) -> io::Result<BufWriter<TcpStream>> {
    let sa = addr.to_socket_addrs()?.next().ok_or_else(|| io::Error::other(format!("{addr}: no address")))?;
    let s = TcpStream::connect_timeout(&sa, Duration::from_secs(1))?;
    s.set_nodelay(true)?;
    // A stopped peer stops reading: give up on it rather than block.
    s.set_write_timeout(Some(Duration::from_secs(3)))?;
    let mut w = BufWriter::with_capacity(64 << 10, s);
    w.write_all(MAGIC)?;
    w.write_all(&VERSION.to_le_bytes())?;
    w.write_all(&self_id.to_le_bytes())?;
    Ok(w)
}

fn write_loop(self_id: u64, to: u64, addr: String, rx: Receiver<Frame>) {
    let mut conn: Option<BufWriter<TcpStream>> = None;
    let mut backoff = Duration::from_millis(50);
    let mut buf = Vec::new();
    loop {
        let first = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(f) => f,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if conn.is_none() {
            match connect(self_id, &addr) {
                Ok(c) => {
                    tracing::debug!(to, %addr, "raft transport: connected");
                    conn = Some(c);
                    backoff = Duration::from_millis(50);
                }
                Err(e) => {
                    tracing::debug!(to, %addr, %e, "raft transport: cannot connect");
                    // What waited is stale by the time the peer is back.
                    while rx.try_recv().is_ok() {}
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            }
        }
        buf.clear();
        let mut ok = encode(&first, &mut buf).is_ok();
        // Batch whatever else is queued into the same write.
        while ok && buf.len() < (1 << 20) {
            match rx.try_recv() {
                Ok(f) => ok = encode(&f, &mut buf).is_ok(),
                Err(_) => break,
            }
        }
        let w = conn.as_mut().expect("connected above");
        if let Err(e) = w.write_all(&buf).and_then(|_| w.flush()) {
            tracing::debug!(to, %addr, %e, "raft transport: send failed; reconnecting");
            conn = None;
        }
    }
}
