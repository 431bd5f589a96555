//! Records as the client scripts report them, and the checks the tests make.
//!
//! A script prints a record as the JSON array
//! `[partition, offset, key_hex|null, value_hex|null, [[header_key, value_hex|null], ...], timestamp|null]`
//! (keys, values and header values hex-encoded so any bytes survive).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::Json;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Option<String>,
    pub headers: Vec<(String, Option<String>)>,
    pub timestamp: Option<i64>,
}

impl Rec {
    pub fn from_json(j: &Json) -> Rec {
        let a = j.as_arr();
        assert!(a.len() >= 4, "a record needs at least [partition, offset, key, value]: {}", j.short());
        let headers = match a.get(4) {
            None | Some(Json::Null) => Vec::new(),
            Some(h) => h
                .as_arr()
                .iter()
                .map(|kv| {
                    let kv = kv.as_arr();
                    (kv[0].as_str().to_string(), kv[1].as_opt_str().map(str::to_string))
                })
                .collect(),
        };
        Rec {
            partition: a[0].as_i64() as i32,
            offset: a[1].as_i64(),
            key: a[2].as_opt_str().map(str::to_string),
            value: a[3].as_opt_str().map(str::to_string),
            headers,
            timestamp: a.get(5).filter(|t| !t.is_null()).map(Json::as_i64),
        }
    }

    /// The records of a JSON array.
    pub fn list(j: &Json) -> Vec<Rec> {
        j.as_arr().iter().map(Rec::from_json).collect()
    }

    /// Same key, value, headers and (when both sides know it) timestamp.
    pub fn same_content(&self, other: &Rec) -> bool {
        self.key == other.key
            && self.value == other.value
            && self.headers == other.headers
            && (self.timestamp.is_none() || other.timestamp.is_none() || self.timestamp == other.timestamp)
    }

    pub fn brief(&self) -> String {
        let cut = |s: &Option<String>| match s {
            None => "null".to_string(),
            Some(s) if s.len() > 24 => format!("{}..({} hex)", &s[..24], s.len()),
            Some(s) => s.clone(),
        };
        format!(
            "p{} @{} key={} value={} headers={} ts={:?}",
            self.partition,
            self.offset,
            cut(&self.key),
            cut(&self.value),
            self.headers.len(),
            self.timestamp
        )
    }
}

/// Records grouped by partition, each group in the given order.
pub fn by_partition(recs: &[Rec]) -> BTreeMap<i32, Vec<&Rec>> {
    let mut m: BTreeMap<i32, Vec<&Rec>> = BTreeMap::new();
    for r in recs {
        m.entry(r.partition).or_default().push(r);
    }
    m
}

/// Per partition, the offsets must increase strictly in the order given.
pub fn assert_ordered(what: &str, recs: &[Rec]) {
    for (p, rs) in by_partition(recs) {
        for w in rs.windows(2) {
            assert!(
                w[0].offset < w[1].offset,
                "{what}: partition {p} out of order: {} then {}",
                w[0].brief(),
                w[1].brief()
            );
        }
    }
}

/// Per partition, the offsets are exactly `first[p]`, `first[p] + 1`, ...
/// (partitions missing from `first` start at 0).
pub fn assert_contiguous(what: &str, recs: &[Rec], first: &HashMap<i32, i64>) {
    for (p, rs) in by_partition(recs) {
        let mut offs: Vec<i64> = rs.iter().map(|r| r.offset).collect();
        offs.sort_unstable();
        let start = first.get(&p).copied().unwrap_or(0);
        for (i, o) in offs.iter().enumerate() {
            assert_eq!(*o, start + i as i64, "{what}: partition {p}: offsets not contiguous from {start}");
        }
    }
}

/// `consumed` holds exactly the records of `delivered` (same partition,
/// offset and content), each partition in offset order, and the producer's
/// order was kept: per partition, later sends got higher offsets.
pub fn assert_round_trip(what: &str, delivered: &[Rec], consumed: &[Rec]) {
    assert_ordered(&format!("{what} (delivery reports, in send order)"), delivered);
    assert_ordered(&format!("{what} (consumed)"), consumed);
    assert_subset(what, delivered, consumed);
    if consumed.len() != delivered.len() {
        let known: HashMap<(i32, i64), &Rec> = delivered.iter().map(|r| ((r.partition, r.offset), r)).collect();
        let extra: Vec<String> =
            consumed.iter().filter(|r| !known.contains_key(&(r.partition, r.offset))).take(5).map(Rec::brief).collect();
        panic!(
            "{what}: consumed {} records but {} were delivered; first extra ones: {extra:#?}",
            consumed.len(),
            delivered.len()
        );
    }
}

/// Every record of `delivered` is in `consumed` at its partition and offset,
/// with the same content (and appears there once).
pub fn assert_subset(what: &str, delivered: &[Rec], consumed: &[Rec]) {
    let mut at: HashMap<(i32, i64), &Rec> = HashMap::new();
    for r in consumed {
        if let Some(prev) = at.insert((r.partition, r.offset), r) {
            panic!("{what}: consumed the same offset twice: {} and {}", prev.brief(), r.brief());
        }
    }
    let mut problems = String::new();
    let mut n = 0;
    for d in delivered {
        match at.get(&(d.partition, d.offset)) {
            Some(c) if d.same_content(c) => {}
            Some(c) => {
                n += 1;
                if n <= 5 {
                    let _ = writeln!(problems, "  delivered {}\n   consumed {}", d.brief(), c.brief());
                    if d.headers != c.headers {
                        let _ = writeln!(problems, "   headers {:?} vs {:?}", d.headers, c.headers);
                    }
                }
            }
            None => {
                n += 1;
                if n <= 5 {
                    let _ = writeln!(problems, "  delivered {}, not consumed", d.brief());
                }
            }
        }
    }
    assert!(
        n == 0,
        "{what}: {n} of {} delivered records missing or different; first ones:\n{problems}",
        delivered.len()
    );
}
