//! DescribeLogDirs (key 35): the data directory, the size of each
//! partition in it, and (v4) the file system's total and free bytes.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{per_partition, respond};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;
use crate::topics::TopicPartition;

fn fs_space(dir: &std::path::Path) -> (i64, i64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return (-1, -1) };
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return (-1, -1);
    }
    let frsize = st.f_frsize as i64;
    (st.f_blocks as i64 * frsize, st.f_bavail as i64 * frsize)
}

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: DescribeLogDirsRequest = decode_body(frame)?;
    let shard = shard::current();
    let table = shard.topics();
    // Null topics: every partition.
    let wanted: Vec<(String, Vec<i32>)> = match &req.topics {
        None => table.topics.values().map(|t| (t.name.clone(), (0..t.partitions.len() as i32).collect())).collect(),
        Some(ts) => ts
            .iter()
            .filter(|t| table.get(&t.topic.0).is_some())
            .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
            .collect(),
    };
    let items = wanted.iter().flat_map(|(t, ps)| ps.iter().map(move |&p| (TopicPartition::new(t, p), ()))).collect();
    let mut sizes = per_partition(items, |p, ()| async move { Ok(p.offsets.size.get() as i64) }).await.into_iter();
    let topics = wanted
        .iter()
        .map(|(name, parts)| {
            let partitions = parts
                .iter()
                .filter_map(|&p| {
                    let size = sizes.next().expect("a size per partition").ok()?;
                    Some(DescribeLogDirsPartition::default().with_partition_index(p).with_partition_size(size))
                })
                .collect();
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.clone())))
                .with_partitions(partitions)
        })
        .collect();
    let dir = std::fs::canonicalize(&shard.config.data_dir).unwrap_or_else(|_| shard.config.data_dir.clone());
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics);
    if frame.version >= 4 {
        let (total, usable) = fs_space(&dir);
        result = result.with_total_bytes(total).with_usable_bytes(usable);
    }
    respond(frame, &DescribeLogDirsResponse::default().with_results(vec![result]))
}
