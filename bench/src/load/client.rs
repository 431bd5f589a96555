//! A minimal blocking Kafka client on `std::net::TcpStream`: framing, request
//! headers and version negotiation. Every message body is encoded and decoded
//! by the `kafka-protocol` crate; this file only adds the 4-byte size prefix
//! and the correlation id bookkeeping.
//!
//! A connection can be split into a writing half and a reading half (the two
//! share the socket), so that a producer writes requests on one thread while
//! another thread reads the pipelined responses.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// Versions this client prefers (it speaks each of them and everything down
/// to the floor). Produce and Fetch stay below 13, where topic ids replace
/// names.
const PREFERRED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
];

/// The version of each API used on one broker: the highest both sides speak.
#[derive(Clone, Copy, Debug, Default)]
pub struct Versions {
    pub produce: i16,
    pub fetch: i16,
    pub list_offsets: i16,
    pub metadata: i16,
    pub create_topics: i16,
    pub delete_topics: i16,
}

impl Versions {
    fn pick(ranges: &[(i16, i16, i16)]) -> Result<Versions> {
        let mut v = Versions::default();
        for &(key, floor, want) in PREFERRED {
            let broker = ranges.iter().find(|r| r.0 == key as i16);
            let chosen = match broker {
                Some(&(_, min, max)) if max >= floor && min <= want => max.min(want),
                _ => -1,
            };
            match key {
                ApiKey::Produce => v.produce = chosen,
                ApiKey::Fetch => v.fetch = chosen,
                ApiKey::ListOffsets => v.list_offsets = chosen,
                ApiKey::Metadata => v.metadata = chosen,
                ApiKey::CreateTopics => v.create_topics = chosen,
                ApiKey::DeleteTopics => v.delete_topics = chosen,
                _ => {}
            }
        }
        if v.produce < 0 || v.fetch < 0 || v.metadata < 0 || v.list_offsets < 0 {
            bail!("the broker does not speak Produce 3+, Fetch 4+, Metadata 1+ and ListOffsets 1+: {ranges:?}");
        }
        Ok(v)
    }
}

/// Encodes one request frame: size, header, body.
pub fn encode_frame<R: Request>(req: &R, version: i16, correlation_id: i32, client_id: &StrBytes) -> Result<Bytes> {
    let mut header = RequestHeader::default();
    header.request_api_key = R::KEY;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(client_id.clone());
    let hv = R::header_version(version);
    let size = header.compute_size(hv)? + req.compute_size(version)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, hv)?;
    req.encode(&mut buf, version)?;
    debug_assert_eq!(buf.len(), 4 + size);
    Ok(buf.freeze())
}

/// Encodes one request frame as segments: the size prefix and header and
/// the encoded fields are copied, the record batches in `batches` (which the
/// request's records fields point to) are referenced, not copied.
pub fn encode_frame_gather<R: Request>(
    req: &R,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
    batches: &[Bytes],
) -> Result<Vec<Bytes>> {
    let mut header = RequestHeader::default();
    header.request_api_key = R::KEY;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(client_id.clone());
    let hv = R::header_version(version);
    let size = header.compute_size(hv)? + req.compute_size(version)?;
    let mut buf = super::gather::Gather::new(batches);
    buf.put_i32(size as i32);
    header.encode(&mut buf, hv)?;
    req.encode(&mut buf, version)?;
    if buf.len() != 4 + size {
        bail!("encoded {} bytes where {} were computed", buf.len(), 4 + size);
    }
    Ok(buf.finish())
}

/// Decodes a response frame (without its size prefix) as `R`'s response,
/// checking the correlation id.
pub fn decode_response<R: Request>(mut frame: Bytes, version: i16, correlation_id: i32) -> Result<R::Response> {
    let hv = <R::Response as HeaderVersion>::header_version(version);
    let header = ResponseHeader::decode(&mut frame, hv).context("response header")?;
    if header.correlation_id != correlation_id {
        bail!("response correlation id {} where {} was expected", header.correlation_id, correlation_id);
    }
    <R::Response as Decodable>::decode(&mut frame, version)
        .with_context(|| format!("decoding api {} v{version}", R::KEY))
}

/// Reads size-prefixed frames from a socket into a reused buffer. Reads ask
/// for as much as the buffer has room for, so small pipelined responses
/// arrive several per system call; a large frame is read into one
/// allocation, reused once the previous frame's bytes are dropped.
pub struct FrameReader {
    stream: TcpStream,
    buf: BytesMut,
    max_frame: usize,
}

impl FrameReader {
    /// Reads from `stream` (its own handle: a `try_clone` when another
    /// thread writes on the same socket).
    pub fn new(stream: TcpStream) -> FrameReader {
        FrameReader { stream, buf: BytesMut::new(), max_frame: 512 << 20 }
    }

    /// Reads into the spare capacity until at least `want` bytes are buffered.
    fn fill(&mut self, want: usize) -> Result<()> {
        while self.buf.len() < want {
            let missing = want - self.buf.len();
            let spare = missing.max(64 << 10);
            self.buf.reserve(spare);
            let chunk = self.buf.spare_capacity_mut();
            // SAFETY: the kernel writes at most `chunk.len()` bytes into the
            // spare capacity, which we then mark as initialised.
            let n = unsafe { libc::read(self.stream.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(anyhow!(e).context("reading from the broker"));
            }
            if n == 0 {
                bail!("the broker closed the connection");
            }
            unsafe { self.buf.set_len(self.buf.len() + n as usize) };
        }
        Ok(())
    }

    /// The next frame, without its size prefix.
    pub fn next_frame(&mut self) -> Result<Bytes> {
        self.fill(4)?;
        let size = i32::from_be_bytes(self.buf[..4].try_into().unwrap());
        if size < 4 || size as usize > self.max_frame {
            bail!("response frame of {size} bytes");
        }
        let total = 4 + size as usize;
        self.fill(total)?;
        let mut frame = self.buf.split_to(total);
        let _ = frame.split_to(4);
        Ok(frame.freeze())
    }
}

/// A connection to one broker, with the versions negotiated on it.
pub struct Conn {
    pub stream: TcpStream,
    pub reader: FrameReader,
    pub versions: Versions,
    pub client_id: StrBytes,
    next_correlation: i32,
}

pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

pub fn resolve(addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .ok_or_else(|| anyhow!("{addr} resolves to nothing"))
}

impl Conn {
    /// Connects, sets TCP_NODELAY and bounded socket timeouts, and negotiates
    /// versions with ApiVersions (v3, or v0 if the broker refuses v3).
    pub fn connect(addr: &str, client_id: &str) -> Result<Conn> {
        let sa = resolve(addr)?;
        let stream = TcpStream::connect_timeout(&sa, Duration::from_secs(10))
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let reader = FrameReader::new(stream.try_clone()?);
        let mut conn = Conn {
            stream,
            reader,
            versions: Versions::default(),
            client_id: StrBytes::from_string(client_id.to_string()),
            next_correlation: 1,
        };
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = StrBytes::from_static_str("sluice-bench");
        req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        // A broker that does not know v3 answers UNSUPPORTED_VERSION (35) in
        // a v0 body, which does not decode as v3: retry with v0 either way.
        let resp = match conn.call(&req, 3) {
            Ok(r) if r.error_code != 35 => r,
            _ => conn.call(&ApiVersionsRequest::default(), 0)?,
        };
        if resp.error_code != 0 {
            bail!("ApiVersions failed with error {}", resp.error_code);
        }
        let ranges: Vec<(i16, i16, i16)> =
            resp.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
        conn.versions = Versions::pick(&ranges)?;
        Ok(conn)
    }

    pub fn next_correlation_id(&mut self) -> i32 {
        let c = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1).max(1);
        c
    }

    /// One request, one response.
    pub fn call<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response> {
        let corr = self.next_correlation_id();
        let frame = encode_frame(req, version, corr, &self.client_id)?;
        self.stream.write_all(&frame).context("writing a request")?;
        let resp = self.reader.next_frame()?;
        decode_response::<R>(resp, version, corr)
    }

    /// A handle that shuts the socket down from another thread (to unblock
    /// a reader or writer at a hard time limit).
    pub fn killer(&self) -> Result<Killer> {
        Ok(Killer(self.stream.try_clone()?))
    }
}

pub struct Killer(TcpStream);

impl Killer {
    pub fn kill(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}
