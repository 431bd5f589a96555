//! What a `tests/java/IdemProducer.java` run reported: the Java client's
//! default producer (idempotent, acks=all) in a paced send loop.

use std::process::Output;

use super::{json_result, Json};

pub struct IdemRun {
    pub seed: String,
    /// (record index, partition, offset, acknowledged at: Unix ms) of each
    /// acknowledged record.
    pub acked: Vec<(usize, i32, i64, i64)>,
    pub failed: Vec<(usize, String)>,
    /// How many records the loop sent (with `--until-file`, fewer than asked).
    pub sent: usize,
    pub retries: i64,
    pub errors: i64,
}

/// Parses the run's JSON and checks the producer ran on Kafka's defaults.
pub fn parse(out: &Output, seed: &str, what: &str) -> IdemRun {
    let j = json_result(out, what);
    assert!(j.get("idempotence").as_bool(), "the default Java producer should be idempotent");
    let acks = j.get("acks").as_str();
    assert!(acks == "all" || acks == "-1", "the default Java producer should use acks=all, got {acks}");
    let idx = |v: &Json| usize::try_from(v.as_i64()).expect("record index");
    let run = IdemRun {
        seed: seed.to_string(),
        acked: j
            .get("acked")
            .as_arr()
            .iter()
            .map(|a| {
                let a = a.as_arr();
                (idx(&a[0]), a[1].as_i64() as i32, a[2].as_i64(), a[3].as_i64())
            })
            .collect(),
        failed: j
            .get("failed")
            .as_arr()
            .iter()
            .map(|f| (idx(&f.as_arr()[0]), f.as_arr()[1].as_str().to_string()))
            .collect(),
        sent: idx(j.get("sent")),
        retries: j.get("retries").as_i64(),
        errors: j.get("errors").as_i64(),
    };
    eprintln!(
        "{what}: {} sent, {} acknowledged, {} failed, record-retry-total {}, record-error-total {}",
        run.sent,
        run.acked.len(),
        run.failed.len(),
        run.retries,
        run.errors
    );
    run
}

/// A record value as the client scripts report it (hex) back to its text.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}
