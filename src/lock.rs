//! One broker per data directory: an exclusive `flock` on `DIR/.lock`, held
//! for the life of the process and released by the kernel on any exit.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub fn acquire(dir: &Path) -> Result<DataDirLock, String> {
        let path = dir.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!("{} is in use by another broker (locked {})", dir.display(), path.display()));
        }
        Ok(DataDirLock { _file: file })
    }
}
