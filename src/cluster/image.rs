//! The cluster's metadata as the metadata log builds it: records (what the
//! controller writes) and the image (what applying them gives). Every
//! broker applies the same records in the same order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One entry of the metadata log, as JSON. Kafka's metadata records carry
/// the same facts (RegisterBrokerRecord, FenceBrokerRecord, …); the format
/// is ours.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Record {
    /// The first record of a new cluster.
    ClusterId { id: String },
    /// A broker (re)starts: `incarnation` tells one run from the next.
    RegisterBroker { id: i32, incarnation: uuid::Uuid, host: String, port: u16, rack: Option<String> },
    /// Not heard from within `broker.session.timeout.ms`.
    FenceBroker { id: i32, incarnation: uuid::Uuid },
    /// Heard from again.
    UnfenceBroker { id: i32, incarnation: uuid::Uuid },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub id: i32,
    pub incarnation: uuid::Uuid,
    /// The log index of its registration (Kafka's broker epoch).
    pub epoch: u64,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub fenced: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// The index of the last record applied.
    pub applied: u64,
}

impl MetadataImage {
    pub fn apply(&mut self, index: u64, record: Record) {
        self.applied = index;
        match record {
            Record::ClusterId { id } => {
                // Only the first one counts: two leaders of successive terms
                // may both have proposed one before seeing the other's.
                self.cluster_id.get_or_insert(id);
            }
            Record::RegisterBroker { id, incarnation, host, port, rack } => {
                self.brokers.insert(id, BrokerInfo { id, incarnation, epoch: index, host, port, rack, fenced: false });
            }
            Record::FenceBroker { id, incarnation } | Record::UnfenceBroker { id, incarnation } => {
                let fence = matches!(record, Record::FenceBroker { .. });
                // A record about an earlier run of the broker is stale.
                if let Some(b) = self.brokers.get_mut(&id).filter(|b| b.incarnation == incarnation) {
                    b.fenced = fence;
                }
            }
        }
    }

    pub fn unfenced(&self) -> impl Iterator<Item = &BrokerInfo> {
        self.brokers.values().filter(|b| !b.fenced)
    }
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("records serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Record, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_fencing_and_a_restart_of_the_broker() {
        let mut img = MetadataImage::default();
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        img.apply(1, Record::ClusterId { id: "c1".into() });
        img.apply(2, Record::ClusterId { id: "c2".into() });
        assert_eq!(img.cluster_id.as_deref(), Some("c1"));
        let reg = |inc| Record::RegisterBroker { id: 2, incarnation: inc, host: "h".into(), port: 9092, rack: None };
        img.apply(3, reg(a));
        img.apply(4, Record::FenceBroker { id: 2, incarnation: a });
        assert!(img.brokers[&2].fenced);
        img.apply(5, reg(b));
        assert!(!img.brokers[&2].fenced && img.brokers[&2].epoch == 5);
        img.apply(6, Record::FenceBroker { id: 2, incarnation: a });
        assert!(!img.brokers[&2].fenced, "a fence of the previous run does not touch the new one");
        let bytes = Record::UnfenceBroker { id: 2, incarnation: b }.encode();
        assert_eq!(Record::decode(&bytes).unwrap(), Record::UnfenceBroker { id: 2, incarnation: b });
        assert!(Record::decode(b"{\"type\":\"Nope\"}").is_err());
    }
}
