//! The records of `__consumer_offsets`, laid out as Apache Kafka lays them
//! out (the group coordinator's `OffsetCommitKey` and `OffsetCommitValue`
//! schemas), so tools that read Kafka's topic read ours. Every key and
//! value starts with its schema version; key versions 0 and 1 are offset
//! commits, 2 is group metadata (Sluice writes none and skips others on
//! replay). A record with a null value (tombstone) deletes its key.

use super::offsets::CommittedOffset;

/// What a `__consumer_offsets` key names.
#[derive(Debug, PartialEq, Eq)]
pub enum Key {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    /// Group metadata or a version this broker does not know.
    Other,
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    // Kafka strings are at most i16::MAX bytes; longer names cannot reach
    // here (group ids and topics are bounded when they are decoded).
    let s = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    b.extend_from_slice(&(s.len() as i16).to_be_bytes());
    b.extend_from_slice(s);
}

/// Key version 1: group, topic, partition.
pub fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut b = Vec::with_capacity(10 + group.len() + topic.len());
    b.extend_from_slice(&1i16.to_be_bytes());
    put_str(&mut b, group);
    put_str(&mut b, topic);
    b.extend_from_slice(&partition.to_be_bytes());
    b
}

/// Value version 3: offset, leader epoch, metadata, commit timestamp.
pub fn offset_value(o: &CommittedOffset) -> Vec<u8> {
    let mut b = Vec::with_capacity(24 + o.metadata.len());
    b.extend_from_slice(&3i16.to_be_bytes());
    b.extend_from_slice(&o.offset.to_be_bytes());
    b.extend_from_slice(&o.leader_epoch.to_be_bytes());
    put_str(&mut b, &o.metadata);
    b.extend_from_slice(&o.commit_timestamp_ms.to_be_bytes());
    b
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let len = self.i16()?;
        if len < 0 {
            return Some(String::new());
        }
        String::from_utf8(self.take(len as usize)?.to_vec()).ok()
    }
}

/// `None` when the key is malformed.
pub fn decode_key(b: &[u8]) -> Option<Key> {
    let mut r = Reader(b);
    match r.i16()? {
        0 | 1 => Some(Key::Offset { group: r.string()?, topic: r.string()?, partition: r.i32()? }),
        _ => Some(Key::Other),
    }
}

/// Value versions 0–3; `None` when malformed or of a newer version.
pub fn decode_value(b: &[u8]) -> Option<CommittedOffset> {
    let mut r = Reader(b);
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = match version {
        0..=3 => r.i64()?,
        _ => return None,
    };
    Some(CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_kafka_layout() {
        let key = offset_key("g", "t", 7);
        // version 1, "g", "t", partition 7: as Kafka's OffsetCommitKey v1.
        assert_eq!(key, [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7]);
        assert_eq!(decode_key(&key), Some(Key::Offset { group: "g".into(), topic: "t".into(), partition: 7 }));
        let o = CommittedOffset { offset: 42, leader_epoch: 3, metadata: "m".into(), commit_timestamp_ms: 99 };
        assert_eq!(decode_value(&offset_value(&o)), Some(o));
        // Group metadata keys (version 2) are recognised and skipped.
        assert_eq!(decode_key(&[0, 2, 0, 1, b'g']), Some(Key::Other));
        // Truncated input is refused, not read past.
        assert_eq!(decode_key(&key[..key.len() - 1]), None);
        assert_eq!(decode_value(&[0, 3, 0]), None);
        // Version 1 values carry an expire timestamp after the commit time.
        let mut v1 = vec![0, 1];
        v1.extend_from_slice(&5i64.to_be_bytes());
        v1.extend_from_slice(&[0xff, 0xff]);
        v1.extend_from_slice(&7i64.to_be_bytes());
        v1.extend_from_slice(&8i64.to_be_bytes());
        let d = decode_value(&v1).unwrap();
        assert_eq!((d.offset, d.leader_epoch, d.metadata.as_str(), d.commit_timestamp_ms), (5, -1, "", 7));
    }
}
