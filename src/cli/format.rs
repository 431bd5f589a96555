//! How `sluice consume` prints a record: the value alone, key and value, or
//! one JSON object per line with everything the record carries.

use std::io::Write;

use kafka_protocol::records::Record;
use serde_json::{Map, Value};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The value, as kafka-console-consumer prints it.
    Value,
    /// Key, the separator, then the value.
    KeyValue,
    /// One JSON object per line: topic, partition, offset, timestamp, key, value, headers.
    Json,
}

/// Bytes as text; absent (null) shown as `null`, as the Java console
/// consumer does.
fn raw(b: Option<&[u8]>) -> &[u8] {
    b.unwrap_or(b"null")
}

fn text(b: Option<&[u8]>) -> Value {
    match b {
        Some(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        None => Value::Null,
    }
}

pub fn write(
    out: &mut impl Write,
    format: Format,
    sep: &str,
    topic: &str,
    partition: i32,
    r: &Record,
) -> std::io::Result<()> {
    match format {
        Format::Value => {
            out.write_all(raw(r.value.as_deref()))?;
        }
        Format::KeyValue => {
            out.write_all(raw(r.key.as_deref()))?;
            out.write_all(sep.as_bytes())?;
            out.write_all(raw(r.value.as_deref()))?;
        }
        Format::Json => {
            let headers: Map<String, Value> =
                r.headers.iter().map(|(k, v)| (k.to_string(), text(v.as_deref()))).collect();
            // Written field by field: a serde_json object would sort the keys.
            write!(out, "{{\"topic\":{},\"partition\":{partition},", Value::from(topic))?;
            write!(out, "\"offset\":{},\"timestamp\":{},", r.offset, r.timestamp)?;
            write!(out, "\"key\":{},\"value\":{},", text(r.key.as_deref()), text(r.value.as_deref()))?;
            write!(out, "\"headers\":{}}}", Value::Object(headers))?;
        }
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::protocol::StrBytes;

    fn record() -> Record {
        let mut r = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: 7,
            sequence: -1,
            timestamp: 1000,
            key: Some(Bytes::from_static(b"k")),
            value: None,
            headers: Default::default(),
        };
        r.headers.insert(StrBytes::from_static_str("h"), Some(Bytes::from_static(b"v")));
        r
    }

    fn show(format: Format) -> String {
        let mut out = Vec::new();
        write(&mut out, format, ":", "t\"x", 2, &record()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats() {
        assert_eq!(show(Format::Value), "null\n");
        assert_eq!(show(Format::KeyValue), "k:null\n");
        assert_eq!(
            show(Format::Json),
            "{\"topic\":\"t\\\"x\",\"partition\":2,\"offset\":7,\"timestamp\":1000,\"key\":\"k\",\"value\":null,\"headers\":{\"h\":\"v\"}}\n"
        );
    }
}
