//! How bytes reach the disk: every segment, index and snapshot file is read
//! and written through glommio's io_uring reactor on the owning shard.
//!
//! Files are opened buffered (through the page cache), not O_DIRECT: appends
//! of small batches measured faster that way, and recent data stays in the
//! page cache so that a fetch can `sendfile` it straight to a socket
//! (docs/storage.md has the numbers behind this choice).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use glommio::io::{BufferedFile, OpenOptions, ReadResult};

use crate::error::{Result, StorageError};

pub struct SegmentFile {
    file: BufferedFile,
    path: PathBuf,
    /// A duplicate descriptor that other threads may hold to `sendfile`
    /// from; it keeps the file readable after it is closed or unlinked here.
    shared: Arc<OwnedFd>,
}

impl SegmentFile {
    pub async fn open(path: &Path, create: bool) -> Result<SegmentFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .buffered_open(path)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        let dup = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(StorageError::io(path, std::io::Error::last_os_error()));
        }
        let shared = Arc::new(unsafe { OwnedFd::from_raw_fd(dup) });
        Ok(SegmentFile { file, path: path.to_path_buf(), shared })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn shared_fd(&self) -> Arc<OwnedFd> {
        self.shared.clone()
    }

    /// Writes all of `buf` at `pos`; the buffer is handed to the kernel as is.
    pub async fn write_all_at(&self, buf: Vec<u8>, pos: u64) -> Result<()> {
        let len = buf.len();
        let done = self.file.write_at(buf, pos).await.map_err(|e| self.err(e))?;
        if done < len {
            // Only near ENOSPC; the caller truncates back to the last good end.
            return Err(self.err(std::io::Error::new(std::io::ErrorKind::WriteZero, "short write (device full?)")));
        }
        Ok(())
    }

    /// Reads up to `len` bytes at `pos`; shorter only at the end of the file.
    pub async fn read_at(&self, pos: u64, len: usize) -> Result<ReadResult> {
        self.file.read_at(pos, len).await.map_err(|e| self.err(e))
    }

    pub async fn sync(&self) -> Result<()> {
        self.file.fdatasync().await.map_err(|e| self.err(e))
    }

    pub async fn truncate(&self, len: u64) -> Result<()> {
        self.file.truncate(len).await.map_err(|e| self.err(e))
    }

    pub async fn size(&self) -> Result<u64> {
        self.file.file_size().await.map_err(|e| self.err(e))
    }

    pub async fn remove(&self) -> Result<()> {
        self.file.remove().await.map_err(|e| self.err(e))
    }

    fn err(&self, e: impl Into<std::io::Error>) -> StorageError {
        StorageError::io(&self.path, e)
    }
}

/// For `sendfile`/`splice` by the network layer.
impl AsRawFd for SegmentFile {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// Reads a whole small file (index, snapshot, checkpoint); `None` if absent.
pub async fn read_small(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match OpenOptions::new().read(true).buffered_open(path).await {
        Ok(f) => f,
        Err(e) => {
            let e: std::io::Error = e.into();
            if e.kind() == std::io::ErrorKind::NotFound {
                return Ok(None);
            }
            return Err(StorageError::io(path, e));
        }
    };
    let size = file.file_size().await.map_err(|e| StorageError::io(path, e))? as usize;
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        let chunk = file.read_at(out.len() as u64, size - out.len()).await.map_err(|e| StorageError::io(path, e))?;
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    let _ = file.close().await;
    Ok(Some(out))
}

/// Replaces `path` with `data` atomically: a temp file, fdatasync, rename.
pub async fn write_small(path: &Path, data: Vec<u8>) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .buffered_open(&tmp)
        .await
        .map_err(|e| StorageError::io(&tmp, e))?;
    if !data.is_empty() {
        let len = data.len();
        let n = file.write_at(data, 0).await.map_err(|e| StorageError::io(&tmp, e))?;
        if n != len {
            return Err(StorageError::io(&tmp, std::io::Error::from(std::io::ErrorKind::WriteZero)));
        }
    }
    file.fdatasync().await.map_err(|e| StorageError::io(&tmp, e))?;
    file.rename(path).await.map_err(|e| StorageError::io(path, e))?;
    let _ = file.close().await;
    sync_dir(path.parent().unwrap_or(Path::new("."))).await
}

pub async fn sync_dir(dir: &Path) -> Result<()> {
    let d = glommio::io::Directory::open(dir).await.map_err(|e| StorageError::io(dir, e))?;
    d.sync().await.map_err(|e| StorageError::io(dir, e))?;
    let _ = d.close().await;
    Ok(())
}

pub async fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}
