//! One client connection: length-prefixed frames in, responses out in the
//! same order. Requests are handled one at a time, as Kafka does, so a slow
//! client is held back by its own socket (back-pressure) and nothing else.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use bytes::{Buf, Bytes};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;
use sluice_storage::SharedSlice;

use super::response::{Chunk, Response};
use crate::handlers;

/// A decoded request header and the undecoded body.
pub struct RequestFrame {
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub header: RequestHeader,
    pub body: Bytes,
    /// The client's address (DescribeGroups reports it as the member's host).
    pub peer: SocketAddr,
}

/// Why a connection is closed instead of answered.
#[derive(Debug)]
pub enum Close {
    Eof,
    Io(io::Error),
    Protocol(String),
}

impl From<io::Error> for Close {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Close::Eof
        } else {
            Close::Io(e)
        }
    }
}

pub async fn serve(mut stream: TcpStream, max_frame: usize) {
    let peer = stream.peer_addr().unwrap_or_else(|_| "0.0.0.0:0".parse().unwrap());
    let _ = stream.set_nodelay(true);
    // sendfile must not block the shard when the socket buffer is full.
    unsafe {
        let fd = stream.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    tracing::debug!(%peer, "connection opened");
    loop {
        match next_request(&mut stream, max_frame, peer).await {
            Ok(frame) => {
                let (key, version, correlation) = (frame.api_key, frame.version, frame.correlation_id);
                let client = frame.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default();
                match handlers::handle(frame).await {
                    Ok(Some(resp)) => {
                        if let Err(e) = write_response(&mut stream, resp).await {
                            tracing::debug!(%peer, %e, "write failed");
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(Close::Protocol(why)) => {
                        tracing::warn!(%peer, client, ?key, version, correlation, %why, "closing connection");
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(%peer, ?e, "closing connection");
                        return;
                    }
                }
            }
            Err(Close::Eof) => {
                tracing::debug!(%peer, "connection closed by client");
                return;
            }
            Err(Close::Io(e)) => {
                tracing::debug!(%peer, %e, "read failed");
                return;
            }
            Err(Close::Protocol(why)) => {
                tracing::warn!(%peer, %why, "closing connection");
                return;
            }
        }
    }
}

async fn next_request(stream: &mut TcpStream, max_frame: usize, peer: SocketAddr) -> Result<RequestFrame, Close> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await?;
    let size = i32::from_be_bytes(size);
    // Bound before allocating: a frame holds at least key, version, correlation id.
    if size < 8 || size as usize > max_frame {
        return Err(Close::Protocol(format!("frame size {size} outside [8, {max_frame}] (socket.request.max.bytes)")));
    }
    let mut body = vec![0u8; size as usize];
    stream.read_exact(&mut body).await?;
    let mut body = Bytes::from(body);
    let key = i16::from_be_bytes([body[0], body[1]]);
    let version = i16::from_be_bytes([body[2], body[3]]);
    let correlation_id = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
    let api_key = ApiKey::try_from(key).map_err(|_| Close::Protocol(format!("unknown API key {key}")))?;
    if !handlers::supported(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            // Answered below in v0 so the client can retry with a version we know.
            return Ok(RequestFrame {
                api_key,
                version,
                correlation_id,
                header: RequestHeader::default(),
                body: Bytes::new(),
                peer,
            });
        }
        return Err(Close::Protocol(format!("unsupported version {version} of {api_key:?}")));
    }
    let header = RequestHeader::decode(&mut body, api_key.request_header_version(version))
        .map_err(|e| Close::Protocol(format!("bad request header: {e}")))?;
    Ok(RequestFrame { api_key, version, correlation_id, header, body, peer })
}

async fn write_response(stream: &mut TcpStream, resp: Response) -> io::Result<()> {
    let has_files = resp.chunks.iter().any(|c| matches!(c, Chunk::File(_)));
    if has_files {
        set_cork(stream, true);
    }
    let mut prefix = Some((resp.len as u32).to_be_bytes());
    for chunk in resp.chunks {
        match chunk {
            Chunk::Bytes(b) => {
                if let Some(p) = prefix.take() {
                    // One write for the size and the first bytes.
                    let mut first = Vec::with_capacity(4 + b.len());
                    first.extend_from_slice(&p);
                    first.extend_from_slice(&b);
                    stream.write_all(&first).await?;
                } else {
                    stream.write_all(&b).await?;
                }
            }
            Chunk::File(f) => {
                if let Some(p) = prefix.take() {
                    stream.write_all(&p).await?;
                }
                send_file(stream, &f).await?;
            }
        }
    }
    if let Some(p) = prefix.take() {
        stream.write_all(&p).await?;
    }
    if has_files {
        set_cork(stream, false);
    }
    Ok(())
}

fn set_cork(stream: &TcpStream, on: bool) {
    let v: libc::c_int = on.into();
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            &v as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Sends a file range from the page cache straight to the socket. When the
/// socket is full, one small piece goes through the ordinary (waiting)
/// write path, and `sendfile` resumes once that is through.
async fn send_file(stream: &mut TcpStream, f: &SharedSlice) -> io::Result<()> {
    let (sock, file) = (stream.as_raw_fd(), f.fd.as_raw_fd());
    let mut off = f.position as libc::off_t;
    let end = off + f.len as libc::off_t;
    while off < end {
        let n = unsafe { libc::sendfile(sock, file, &mut off, (end - off) as usize) };
        if n > 0 {
            continue;
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than the fetch range"));
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => {
                let len = ((end - off) as usize).min(16 << 10);
                let mut buf = vec![0u8; len];
                let r = unsafe { libc::pread(file, buf.as_mut_ptr().cast(), len, off) };
                if r <= 0 {
                    return Err(if r == 0 { io::ErrorKind::UnexpectedEof.into() } else { io::Error::last_os_error() });
                }
                stream.write_all(&buf[..r as usize]).await?;
                off += r as libc::off_t;
            }
            _ => return Err(err),
        }
    }
    Ok(())
}

/// Reads the remaining body with a decoder, closing on error.
pub fn decode_body<T: Decodable>(frame: &RequestFrame) -> Result<T, Close> {
    let mut body = frame.body.clone();
    // A lying length can make the codec panic (capacity overflow): contain it.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| T::decode(&mut body, frame.version)));
    let msg = match decoded {
        Ok(Ok(msg)) => msg,
        Ok(Err(e)) => return Err(Close::Protocol(format!("bad {:?} v{} body: {e}", frame.api_key, frame.version))),
        Err(_) => return Err(Close::Protocol(format!("undecodable {:?} v{} body", frame.api_key, frame.version))),
    };
    if body.has_remaining() {
        tracing::debug!(api = ?frame.api_key, extra = body.remaining(), "trailing bytes after request body");
    }
    Ok(msg)
}
