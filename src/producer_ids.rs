//! Producer ids, unique across restarts: handed out from blocks whose end
//! is written to `DATA_DIR/producer-ids` before any id of the block is used.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

const BLOCK: i64 = 1000;

pub struct ProducerIds {
    next: AtomicI64,
    /// End of the current block (exclusive); refilled under the mutex.
    limit: Mutex<i64>,
    path: PathBuf,
}

impl ProducerIds {
    pub fn open(data_dir: &std::path::Path) -> Result<ProducerIds, String> {
        let path = data_dir.join("producer-ids");
        let saved = match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().parse::<i64>().map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        // Ids below the saved end may have been handed out: start after it.
        Ok(ProducerIds { next: AtomicI64::new(saved), limit: Mutex::new(saved), path })
    }

    pub fn next(&self) -> Result<i64, String> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut limit = self.limit.lock().unwrap();
        if id >= *limit {
            let new_limit = id + BLOCK;
            write_durably(&self.path, new_limit).map_err(|e| format!("{}: {e}", self.path.display()))?;
            *limit = new_limit;
        }
        Ok(id)
    }
}

fn write_durably(path: &std::path::Path, v: i64) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(v.to_string().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
