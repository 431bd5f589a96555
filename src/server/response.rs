//! Encoding responses, with record data left in place: a fetch response is
//! a list of chunks, encoded bytes and file ranges, that the connection
//! writes in order, sending the file ranges with `sendfile`.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::Encodable;
use sluice_storage::SharedSlice;

use super::connection::RequestFrame;

/// Longest file range one partition of a fetch may carry.
pub const MAX_FILE_CHUNK: usize = 64 << 20;

/// Stands in for file-backed records while a message is encoded: the
/// encoder copies `records` with `put_slice`, and a slice that points into
/// this (never read) zeroed region is recognised and replaced by the file.
static PLACEHOLDER: [u8; MAX_FILE_CHUNK] = [0; MAX_FILE_CHUNK];

/// `Bytes` to put in a message's `records` field for a file range of `len`.
pub fn file_placeholder(len: usize) -> Bytes {
    Bytes::from_static(&PLACEHOLDER[..len.min(MAX_FILE_CHUNK)])
}

pub enum Chunk {
    Bytes(Bytes),
    File(SharedSlice),
}

pub struct Response {
    pub chunks: Vec<Chunk>,
    /// Bytes on the wire after the size prefix.
    pub len: usize,
}

/// A `ByteBufMut` that swaps placeholder slices for file chunks.
struct ChunkBuf {
    cur: BytesMut,
    chunks: Vec<Chunk>,
    files: std::vec::IntoIter<SharedSlice>,
    /// Logical length before `cur` (including earlier file chunks).
    before: usize,
}

impl ChunkBuf {
    fn finish(mut self) -> Response {
        let len = self.before + self.cur.len();
        if !self.cur.is_empty() {
            self.chunks.push(Chunk::Bytes(self.cur.freeze()));
        }
        Response { chunks: self.chunks, len }
    }
}

unsafe impl BufMut for ChunkBuf {
    fn remaining_mut(&self) -> usize {
        self.cur.remaining_mut()
    }
    unsafe fn advance_mut(&mut self, cnt: usize) {
        unsafe { self.cur.advance_mut(cnt) }
    }
    fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
        self.cur.chunk_mut()
    }
    fn put_slice(&mut self, src: &[u8]) {
        let base = PLACEHOLDER.as_ptr() as usize;
        let p = src.as_ptr() as usize;
        if !src.is_empty() && p >= base && p + src.len() <= base + MAX_FILE_CHUNK {
            let file = self.files.next().expect("a file chunk for every placeholder");
            debug_assert_eq!(file.len, src.len());
            let done = std::mem::take(&mut self.cur);
            self.before += done.len() + src.len();
            if !done.is_empty() {
                self.chunks.push(Chunk::Bytes(done.freeze()));
            }
            self.chunks.push(Chunk::File(file));
        } else {
            self.cur.extend_from_slice(src);
        }
    }
}

impl ByteBufMut for ChunkBuf {
    fn offset(&self) -> usize {
        self.before + self.cur.len()
    }
    fn seek(&mut self, offset: usize) {
        self.cur.resize(offset - self.before, 0);
    }
    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        &mut self.cur[r.start - self.before..r.end - self.before]
    }
}

/// Encodes header and body of a response to `req`. `files` are the file
/// ranges whose placeholders the body holds, in encoding order.
pub fn encode<M: Encodable>(req: &RequestFrame, body: &M, files: Vec<SharedSlice>) -> anyhow::Result<Response> {
    let mut buf =
        ChunkBuf { cur: BytesMut::with_capacity(256), chunks: Vec::new(), files: files.into_iter(), before: 0 };
    let header = ResponseHeader::default().with_correlation_id(req.correlation_id);
    header.encode(&mut buf, req.api_key.response_header_version(req.version))?;
    body.encode(&mut buf, req.version)?;
    Ok(buf.finish())
}

/// A response in the v0 header and the given body version, for ApiVersions'
/// special case (an unknown version is answered in v0).
pub fn encode_v0<M: Encodable>(correlation_id: i32, body: &M, version: i16) -> anyhow::Result<Response> {
    let mut buf =
        ChunkBuf { cur: BytesMut::with_capacity(256), chunks: Vec::new(), files: Vec::new().into_iter(), before: 0 };
    ResponseHeader::default().with_correlation_id(correlation_id).encode(&mut buf, 0)?;
    body.encode(&mut buf, version)?;
    Ok(buf.finish())
}
