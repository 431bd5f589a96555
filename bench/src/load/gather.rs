//! A `ByteBufMut` that lets the `kafka-protocol` encoder build a Produce
//! request without copying the record batches into it: when the encoder
//! puts a slice that *is* one of the request's batches (same address, same
//! length), the batch is referenced instead of copied. The request is then
//! a list of segments (encoded fields, batch, encoded fields, batch, …)
//! written with `writev`, so the payload is copied once, by the kernel.

use std::io::{IoSlice, Write};
use std::net::TcpStream;
use std::ops::Range;

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

/// Slices shorter than this are copied even if they are a batch.
const MIN_REFERENCED: usize = 512;

pub struct Gather<'a> {
    batches: &'a [Bytes],
    segs: Vec<Bytes>,
    head: BytesMut,
    len: usize,
}

impl<'a> Gather<'a> {
    pub fn new(batches: &'a [Bytes]) -> Gather<'a> {
        Gather { batches, segs: Vec::with_capacity(2 * batches.len() + 2), head: BytesMut::with_capacity(256), len: 0 }
    }

    /// Bytes put so far (referenced ones included).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(mut self) -> Vec<Bytes> {
        if !self.head.is_empty() {
            self.segs.push(self.head.split().freeze());
        }
        self.segs
    }
}

// SAFETY: every method delegates to the inline `BytesMut`, whose contract
// it keeps; `len` only counts.
unsafe impl BufMut for Gather<'_> {
    fn remaining_mut(&self) -> usize {
        usize::MAX - self.len
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        self.head.advance_mut(cnt);
        self.len += cnt;
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        if self.head.capacity() == self.head.len() {
            self.head.reserve(256);
        }
        self.head.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if src.len() >= MIN_REFERENCED {
            if let Some(b) = self.batches.iter().find(|b| b.as_ptr() == src.as_ptr() && b.len() == src.len()) {
                if !self.head.is_empty() {
                    self.segs.push(self.head.split().freeze());
                }
                self.segs.push(b.clone());
                self.len += src.len();
                return;
            }
        }
        self.head.extend_from_slice(src);
        self.len += src.len();
    }
}

impl ByteBufMut for Gather<'_> {
    fn offset(&self) -> usize {
        self.len
    }

    fn seek(&mut self, offset: usize) {
        assert!(offset >= self.len, "Gather cannot seek backwards");
        let n = offset - self.len;
        self.head.put_bytes(0, n);
        self.len = offset;
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let head_start = self.len - self.head.len();
        assert!(r.start >= head_start, "Gather: a gap before a referenced batch");
        &mut self.head[r.start - head_start..r.end - head_start]
    }
}

/// Writes all segments (`writev`, resumed after partial writes).
pub fn write_all_segments(stream: &mut TcpStream, segs: &[Bytes]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = segs.iter().filter(|s| !s.is_empty()).map(|s| IoSlice::new(s)).collect();
    let mut rest: &mut [IoSlice<'_>] = &mut slices;
    while !rest.is_empty() {
        match stream.write_vectored(rest) {
            Ok(0) => return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, "wrote nothing")),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use crate::load::client::{encode_frame, encode_frame_gather};

    #[test]
    fn gathered_frame_equals_the_copied_one() {
        let batches: Vec<Bytes> = (0..5u8).map(|i| Bytes::from(vec![i; 700 + i as usize * 1000])).collect();
        let mut td = TopicProduceData::default();
        td.name = TopicName(StrBytes::from_static_str("t"));
        td.partition_data = batches
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut p = PartitionProduceData::default();
                p.index = i as i32;
                p.records = Some(b.clone());
                p
            })
            .collect();
        // A short batch (copied, not referenced) as well.
        let mut small = PartitionProduceData::default();
        small.index = 9;
        small.records = Some(Bytes::from_static(b"tiny"));
        td.partition_data.push(small);
        let mut req = ProduceRequest::default();
        req.acks = -1;
        req.timeout_ms = 1000;
        req.topic_data = vec![td];
        let id = StrBytes::from_static_str("c");
        for version in [3, 7, 9] {
            let flat = encode_frame(&req, version, 42, &id).unwrap();
            let segs = encode_frame_gather(&req, version, 42, &id, &batches).unwrap();
            let joined: Vec<u8> = segs.iter().flat_map(|s| s.iter().copied()).collect();
            assert_eq!(joined, flat.to_vec(), "v{version}");
            // The batches were referenced: same memory.
            for b in &batches {
                assert!(segs.iter().any(|s| s.as_ptr() == b.as_ptr()), "v{version}: a batch was copied");
            }
        }
    }
}
