//! Malformed input on the wire (no client library: std TcpStream and
//! hand-encoded frames). For each case the broker must, within a bounded
//! time, either answer (a response whose correlation id matches) or close the
//! connection; afterwards a new, well-formed client still gets an
//! ApiVersions answer, a connection opened before the bad one still works,
//! and the process is still alive.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::Broker;

/// How long the broker has to answer or close.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Encoding

fn i16b(v: i16) -> [u8; 2] {
    v.to_be_bytes()
}

fn i32b(v: i32) -> [u8; 4] {
    v.to_be_bytes()
}

fn string(s: &str) -> Vec<u8> {
    let mut v = i16b(s.len() as i16).to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

fn uvarint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

fn compact_string(s: &str) -> Vec<u8> {
    let mut v = uvarint(s.len() as u64 + 1);
    v.extend_from_slice(s.as_bytes());
    v
}

/// Request header v1 (api key, version, correlation id, client id); with
/// `flexible`, header v2 (plus an empty tagged-field section).
fn header(api_key: i16, version: i16, corr: i32, flexible: bool) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&i16b(api_key));
    h.extend_from_slice(&i16b(version));
    h.extend_from_slice(&i32b(corr));
    h.extend_from_slice(&string("sluice-bad-input"));
    if flexible {
        h.push(0);
    }
    h
}

/// A size-prefixed frame.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = i32b(payload.len() as i32).to_vec();
    f.extend_from_slice(payload);
    f
}

/// ApiVersions v0: size, api_key=18, version=0, correlation id, client id; no body.
fn api_versions_v0(corr: i32) -> Vec<u8> {
    frame(&header(18, 0, corr, false))
}

// ---------------------------------------------------------------------------
// Reading

#[derive(Debug)]
enum Outcome {
    /// The broker closed the connection (EOF or reset).
    Closed,
    /// A whole response frame (without its size prefix).
    Answered(Vec<u8>),
    /// Neither within the timeout.
    Silent,
}

fn read_exact_or_close(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<bool, Outcome> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Outcome::Silent);
        }
        s.set_read_timeout(Some(left)).expect("set_read_timeout");
        match s.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Err(Outcome::Silent),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Ok(false), // reset: closed
        }
    }
    Ok(true)
}

fn read_response(s: &mut TcpStream, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let mut size = [0u8; 4];
    match read_exact_or_close(s, &mut size, deadline) {
        Err(o) => return o,
        Ok(false) => return Outcome::Closed,
        Ok(true) => {}
    }
    let n = i32::from_be_bytes(size);
    assert!((4..=64 << 20).contains(&n), "response frame size {n} is not sane");
    let mut body = vec![0u8; n as usize];
    match read_exact_or_close(s, &mut body, deadline) {
        Err(o) => o,
        Ok(false) => panic!("the broker closed the connection in the middle of a {n}-byte response"),
        Ok(true) => Outcome::Answered(body),
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        assert!(self.i + n <= self.b.len(), "response too short: need {n} bytes at {} of {}", self.i, self.b.len());
        let s = &self.b[self.i..self.i + n];
        self.i += n;
        s
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    fn uvarint(&mut self) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return v;
            }
        }
        panic!("varint too long");
    }
    fn tagged_fields(&mut self) -> u64 {
        let n = self.uvarint();
        for _ in 0..n {
            self.uvarint();
            let size = self.uvarint() as usize;
            self.take(size);
        }
        n
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

/// Parses an ApiVersions response in the v0 body format (error code, then
/// an int32-counted array of (key, min, max), nothing after it). Returns
/// (error code, entries).
fn parse_api_versions_v0(resp: &[u8], corr: i32) -> (i16, Vec<(i16, i16, i16)>) {
    let mut r = Reader { b: resp, i: 0 };
    assert_eq!(r.i32(), corr, "correlation id of the ApiVersions response");
    let err = r.i16();
    let n = r.i32();
    assert!((1..1000).contains(&n), "ApiVersions v0 array length {n}");
    let entries: Vec<_> = (0..n).map(|_| (r.i16(), r.i16(), r.i16())).collect();
    assert!(r.done(), "ApiVersions v0 response has {} bytes after the array", resp.len() - r.i);
    for (k, min, max) in &entries {
        assert!(0 <= *min && min <= max, "api key {k}: bad range {min}..{max}");
    }
    (err, entries)
}

/// A well-formed ApiVersions v0 exchange on `s` must succeed.
fn assert_api_versions_ok(s: &mut TcpStream, corr: i32, who: &str) {
    s.write_all(&api_versions_v0(corr)).unwrap_or_else(|e| panic!("{who}: writing ApiVersions: {e}"));
    match read_response(s, RESPONSE_TIMEOUT) {
        Outcome::Answered(resp) => {
            let (err, entries) = parse_api_versions_v0(&resp, corr);
            assert_eq!(err, 0, "{who}: ApiVersions v0 error code");
            assert!(
                entries.iter().any(|(k, min, _)| *k == 18 && *min == 0),
                "{who}: ApiVersions v0 must list key 18 from v0"
            );
        }
        other => panic!("{who}: no ApiVersions answer: {other:?}"),
    }
}

fn connect(broker: &Broker) -> TcpStream {
    let s = TcpStream::connect_timeout(&broker.addr(), Duration::from_secs(5)).expect("connecting to the broker");
    s.set_nodelay(true).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

// ---------------------------------------------------------------------------
// The cases

enum Then {
    /// Keep the connection open and wait for an answer or a close.
    Wait,
    /// Half-close (no more bytes will come), then wait.
    HalfClose,
    /// Close the connection at once; only the broker's health is checked.
    Drop,
}

/// What an answer must look like.
enum Expect {
    /// Any response with this correlation id.
    Corr(i32),
    /// A response with this correlation id whose body starts with a non-zero error code.
    CorrAndError(i32),
    /// Correlation id unknowable (garbage); any well-framed response.
    Any,
}

/// Starts a broker, checks it, sends `bytes` on a fresh connection, and
/// checks the outcome and the broker's health afterwards.
fn bad_case(name: &str, bytes: &[u8], then: Then, expect: Expect) {
    let mut broker = Broker::start();
    let mut bystander = connect(&broker);
    assert_api_versions_ok(&mut bystander, 1, &format!("{name}: before, bystander"));

    let mut s = connect(&broker);
    // The broker may close before taking everything: a failed write is fine.
    let _ = s.write_all(bytes);
    let outcome = match then {
        Then::Drop => {
            drop(s);
            None
        }
        Then::HalfClose => {
            let _ = s.shutdown(Shutdown::Write);
            Some(read_response(&mut s, RESPONSE_TIMEOUT))
        }
        Then::Wait => Some(read_response(&mut s, RESPONSE_TIMEOUT)),
    };
    match outcome {
        None | Some(Outcome::Closed) => {}
        Some(Outcome::Silent) => panic!("{name}: the broker neither answered nor closed within {RESPONSE_TIMEOUT:?}"),
        Some(Outcome::Answered(resp)) => {
            let corr = i32::from_be_bytes(resp[..4].try_into().unwrap());
            match expect {
                Expect::Any => {}
                Expect::Corr(c) => assert_eq!(corr, c, "{name}: correlation id of the answer"),
                Expect::CorrAndError(c) => {
                    assert_eq!(corr, c, "{name}: correlation id of the answer");
                    assert!(resp.len() >= 6, "{name}: answer without an error code");
                    let err = i16::from_be_bytes([resp[4], resp[5]]);
                    assert_ne!(err, 0, "{name}: the answer should carry an error code");
                }
            }
        }
    }

    std::thread::sleep(Duration::from_millis(100));
    assert!(broker.is_running(), "{name}: the broker process died; log tail:\n{}", broker.log_tail());
    let mut fresh = connect(&broker);
    assert_api_versions_ok(&mut fresh, 2, &format!("{name}: after, new client"));
    assert_api_versions_ok(&mut bystander, 3, &format!("{name}: after, bystander"));
    assert!(broker.is_running(), "{name}: the broker process died; log tail:\n{}", broker.log_tail());
}

/// Deterministic noise.
fn noise(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn http_request() {
    // "GET " read as a frame size is about 1.2 GB.
    bad_case("HTTP GET", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", Then::Wait, Expect::Any);
}

#[test]
fn random_bytes() {
    // The first four bytes may claim any size, so end the input: the broker
    // must cope with noise and then EOF.
    bad_case("random bytes", &noise(4096, 0xDEAD_BEEF), Then::HalfClose, Expect::Any);
}

#[test]
fn random_frame_body() {
    // A sane size, then noise as header and body.
    let body = noise(512, 0x1234_5678);
    let corr = i32::from_be_bytes(body[4..8].try_into().unwrap());
    bad_case("random frame body", &frame(&body), Then::Wait, Expect::Corr(corr));
}

#[test]
fn frame_size_2gib() {
    let mut b = i32b(i32::MAX).to_vec();
    b.extend_from_slice(&header(18, 0, 7, false));
    b.extend_from_slice(&[0u8; 64 * 1024]);
    bad_case("2 GiB frame size", &b, Then::Wait, Expect::Corr(7));
}

#[test]
fn frame_size_negative() {
    let mut b = i32b(-1).to_vec();
    b.extend_from_slice(&header(18, 0, 7, false));
    bad_case("frame size -1", &b, Then::Wait, Expect::Corr(7));
}

#[test]
fn frame_size_min_i32() {
    let mut b = i32b(i32::MIN).to_vec();
    b.extend_from_slice(&header(18, 0, 7, false));
    bad_case("frame size i32::MIN", &b, Then::Wait, Expect::Corr(7));
}

#[test]
fn frame_size_zero() {
    bad_case("empty frame", &i32b(0), Then::Wait, Expect::Any);
}

#[test]
fn frame_shorter_than_a_header() {
    bad_case("3-byte frame", &frame(&[0, 18, 0]), Then::Wait, Expect::Any);
}

#[test]
fn truncated_request_half_closed() {
    // Metadata v1 claiming 100 bytes; 20 sent, then EOF.
    let mut b = i32b(100).to_vec();
    b.extend_from_slice(&header(3, 1, 11, false)[..16]);
    bad_case("truncated request (half-closed)", &b, Then::HalfClose, Expect::Corr(11));
}

#[test]
fn truncated_request_dropped() {
    let mut b = i32b(100).to_vec();
    b.extend_from_slice(&header(3, 1, 11, false)[..16]);
    bad_case("truncated request (connection dropped)", &b, Then::Drop, Expect::Any);
}

#[test]
fn unknown_api_key() {
    let mut p = header(999, 0, 4242, false);
    p.extend_from_slice(&[0u8; 8]);
    bad_case("api key 999", &frame(&p), Then::Wait, Expect::CorrAndError(4242));
}

#[test]
fn metadata_topic_count_lies() {
    // Metadata v1: topics array of 1,000,000 entries, none sent.
    let mut p = header(3, 1, 21, false);
    p.extend_from_slice(&i32b(1_000_000));
    bad_case("Metadata v1 with 1,000,000 topics claimed", &frame(&p), Then::Wait, Expect::Corr(21));
}

#[test]
fn metadata_flexible_topic_count_lies() {
    // Metadata v9 (flexible): compact array claiming 1,000,000 topics.
    let mut p = header(3, 9, 22, true);
    p.extend_from_slice(&uvarint(1_000_001));
    p.extend_from_slice(&compact_string("t"));
    bad_case("Metadata v9 with 1,000,000 topics claimed", &frame(&p), Then::Wait, Expect::Corr(22));
}

#[test]
fn metadata_topic_name_length_lies() {
    // One topic whose name claims 30,000 bytes; 10 sent.
    let mut p = header(3, 1, 23, false);
    p.extend_from_slice(&i32b(1));
    p.extend_from_slice(&i16b(30_000));
    p.extend_from_slice(b"0123456789");
    bad_case("Metadata v1 topic name length lies", &frame(&p), Then::Wait, Expect::Corr(23));
}

#[test]
fn client_id_length_lies() {
    let mut p = Vec::new();
    p.extend_from_slice(&i16b(18));
    p.extend_from_slice(&i16b(0));
    p.extend_from_slice(&i32b(24));
    p.extend_from_slice(&i16b(20_000));
    p.extend_from_slice(b"short");
    bad_case("client id length lies", &frame(&p), Then::Wait, Expect::Any);
}

#[test]
fn produce_records_length_lies() {
    // Produce v3: one partition whose records claim ~2 GiB; 61 bytes sent.
    let mut p = header(0, 3, 25, false);
    p.extend_from_slice(&i16b(-1)); // transactional id: null
    p.extend_from_slice(&i16b(1)); // acks
    p.extend_from_slice(&i32b(1000)); // timeout
    p.extend_from_slice(&i32b(1)); // topics
    p.extend_from_slice(&string("bad-input"));
    p.extend_from_slice(&i32b(1)); // partitions
    p.extend_from_slice(&i32b(0));
    p.extend_from_slice(&i32b(0x7FFF_FFF0)); // records length
    p.extend_from_slice(&noise(61, 99));
    bad_case("Produce v3 records length lies", &frame(&p), Then::Wait, Expect::Corr(25));
}

#[test]
fn produce_garbage_record_batch() {
    // Produce v3 with a records field of the right length holding noise
    // (not a record batch): an error answer or a close, never a crash.
    let records = noise(300, 7);
    let mut p = header(0, 3, 26, false);
    p.extend_from_slice(&i16b(-1));
    p.extend_from_slice(&i16b(1));
    p.extend_from_slice(&i32b(1000));
    p.extend_from_slice(&i32b(1));
    p.extend_from_slice(&string("bad-input"));
    p.extend_from_slice(&i32b(1));
    p.extend_from_slice(&i32b(0));
    p.extend_from_slice(&i32b(records.len() as i32));
    p.extend_from_slice(&records);
    bad_case("Produce v3 with a garbage record batch", &frame(&p), Then::Wait, Expect::Corr(26));
}

// ---------------------------------------------------------------------------
// ApiVersions itself

/// An ApiVersions version the broker does not know gets error 35
/// (UNSUPPORTED_VERSION) in a v0-format body listing the supported ranges,
/// so the client can retry with a version it finds there.
#[test]
fn api_versions_unsupported_version_gets_error_35_in_v0_format() {
    let broker = Broker::start();
    let mut s = connect(&broker);
    // As a client newer than the broker would send it: header v2 and a v3-style body.
    let mut p = header(18, 99, 99, true);
    p.extend_from_slice(&compact_string("sluice-test"));
    p.extend_from_slice(&compact_string("1.0"));
    p.push(0);
    s.write_all(&frame(&p)).unwrap();
    match read_response(&mut s, RESPONSE_TIMEOUT) {
        Outcome::Answered(resp) => {
            let (err, entries) = parse_api_versions_v0(&resp, 99);
            assert_eq!(err, 35, "UNSUPPORTED_VERSION");
            let av = entries.iter().find(|e| e.0 == 18).expect("the list includes ApiVersions");
            assert_eq!(av.1, 0, "ApiVersions is supported from v0");
        }
        other => panic!("no answer to ApiVersions v99: {other:?}"),
    }
    // The connection stays usable: the client retries with v0.
    assert_api_versions_ok(&mut s, 100, "after v99, same connection");
}

/// ApiVersions v3 (flexible; what librdkafka sends first) parses exactly
/// and lists every API the broker serves.
#[test]
fn api_versions_v3_is_well_formed_and_lists_the_served_apis() {
    let broker = Broker::start();
    let mut s = connect(&broker);
    let mut p = header(18, 3, 5, true);
    p.extend_from_slice(&compact_string("sluice-test"));
    p.extend_from_slice(&compact_string("1.0"));
    p.push(0);
    s.write_all(&frame(&p)).unwrap();
    let resp = match read_response(&mut s, RESPONSE_TIMEOUT) {
        Outcome::Answered(resp) => resp,
        other => panic!("no answer to ApiVersions v3: {other:?}"),
    };
    // Response header v0 (ApiVersions never uses the flexible header).
    let mut r = Reader { b: &resp, i: 0 };
    assert_eq!(r.i32(), 5, "correlation id");
    assert_eq!(r.i16(), 0, "error code");
    let n = r.uvarint();
    assert!((2..1000).contains(&n), "compact array length {n}");
    let mut entries = Vec::new();
    for _ in 0..n - 1 {
        entries.push((r.i16(), r.i16(), r.i16()));
        r.tagged_fields();
    }
    let _throttle = r.i32();
    r.tagged_fields();
    assert!(r.done(), "{} bytes after the ApiVersions v3 body", resp.len() - r.i);
    // Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch,
    // FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup,
    // ApiVersions, CreateTopics, DeleteTopics, InitProducerId.
    for key in [0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20, 22] {
        let e = entries.iter().find(|e| e.0 == key);
        assert!(e.is_some_and(|e| e.1 <= e.2), "ApiVersions should list api key {key}: {entries:?}");
    }
    let (_, _, av_max) = *entries.iter().find(|e| e.0 == 18).unwrap();
    assert!(av_max >= 3, "ApiVersions v3 was just answered, so it must be listed (max {av_max})");
}
