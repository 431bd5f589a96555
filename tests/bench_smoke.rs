//! The load generator (`sluice-bench`, driven as a library) against a real
//! broker: produce 20k records, consume them back, and a short e2e run;
//! checks the counts and that the report has the fields scripts rely on.
//! Needs `sluice-bench` as a dev-dependency of `sluice`.

mod common;

use common::Broker;
use sluice_bench::load::{self, Args, Mode, Value};

fn args(bootstrap: &str, extra: &[&str]) -> Args {
    let mut words = vec!["--bootstrap-server", bootstrap, "--quiet", "--timeout", "15"];
    words.extend_from_slice(extra);
    Args::parse_from(words).expect("load arguments")
}

fn assert_latency(l: &Value, what: &str) {
    assert!(l["count"].as_u64().unwrap_or(0) > 0, "{what}: no latency samples: {l}");
    for k in ["p50_us", "p90_us", "p99_us", "p99_9_us", "p99_99_us", "max_us"] {
        assert!(l[k].as_f64().is_some_and(|v| v > 0.0), "{what}: {k} missing: {l}");
    }
    assert!(l["curve"].as_array().is_some_and(|c| !c.is_empty()), "{what}: no curve: {l}");
}

#[test]
fn produce_consume_e2e_20k_records() {
    let broker = Broker::start();
    let bs = broker.bootstrap();

    let p = load::run(
        Mode::Produce,
        &args(&bs, &["--topic", "smoke", "--partitions", "3", "--records", "20000", "--record-size", "100"]),
    )
    .expect("produce run");
    assert_eq!(p["ok"].as_bool(), Some(true), "produce report: {p}");
    assert_eq!(p["produce"]["records"].as_u64(), Some(20_000), "{p}");
    assert_eq!(p["produce"]["errors"].as_u64(), Some(0), "{p}");
    assert!(p["produce"]["records_per_s"].as_f64().unwrap() > 0.0, "{p}");
    assert!(p["produce"]["mb_per_s"].as_f64().unwrap() > 0.0, "{p}");
    assert_latency(&p["produce"]["latency"], "produce");
    // The whole report is one JSON object.
    assert!(p.to_string().starts_with('{'));

    let c = load::run(
        Mode::Consume,
        &args(&bs, &["--topic", "smoke", "--records", "20000", "--from", "earliest", "--consumers", "2"]),
    )
    .expect("consume run");
    assert_eq!(c["ok"].as_bool(), Some(true), "consume report: {c}");
    assert_eq!(c["consume"]["records"].as_u64(), Some(20_000), "{c}");
    assert_eq!(c["consume"]["bytes"].as_u64(), Some(20_000 * 100), "{c}");

    let e = load::run(
        Mode::E2e,
        &args(
            &bs,
            &["--topic", "smoke-e2e", "--partitions", "2", "--records", "5000", "--rate", "5000", "--acks", "1"],
        ),
    )
    .expect("e2e run");
    assert_eq!(e["ok"].as_bool(), Some(true), "e2e report: {e}");
    assert_eq!(e["produce"]["records"].as_u64(), Some(5_000), "{e}");
    assert_eq!(e["consume"]["records"].as_u64(), Some(5_000), "{e}");
    assert_eq!(e["e2e"]["missing"].as_u64(), Some(0), "{e}");
    assert_latency(&e["e2e"]["latency"], "e2e");
}
