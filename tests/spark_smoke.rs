//! PySpark smoke test of the examples in scripts/spark/ against a real
//! Sluice broker: `write_to_kafka.py` streams a CSV directory into a topic
//! (twice, the second run resuming from its checkpoint), `read_from_kafka.py`
//! reads the topic back to the console.
//!
//! Spark's Kafka connector (spark-sql-kafka-0-10 and the jars it needs) is
//! not obtainable from the package registries this project can reach, so the
//! test runs only when `SPARK_KAFKA_JARS` lists those jars (comma-separated,
//! as for `spark-submit --jars`); otherwise it says that it was skipped, and
//! why, and passes. When it runs, it installs the pyspark matching the
//! connector's version (from the jar's name, or `PYSPARK_VERSION`) into the
//! test venv if missing, and asserts on everything. See scripts/spark/README.md.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{cache_dir, ck_consume, ck_create, expect_success, run, unique_name, venv_python, Broker, Json};

const JARS_ENV: &str = "SPARK_KAFKA_JARS";
/// One spark-submit run (JVM and Python start-up included; slow on 2 cores).
const SPARK_TIMEOUT: Duration = Duration::from_secs(300);
/// A pyspark download and install.
const PIP_TIMEOUT: Duration = Duration::from_secs(1200);

/// Says so on the real stderr (not captured by the test harness, so it shows
/// in a plain `cargo test` run) and on the captured output.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
    println!("{msg}");
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Spark version and Scala version of `spark-sql-kafka-0-10_SCALA-VERSION.jar`.
fn connector_version(jars: &[PathBuf]) -> (String, String) {
    for j in jars {
        let name = j.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(rest) = name.strip_prefix("spark-sql-kafka-0-10_").and_then(|r| r.strip_suffix(".jar")) {
            if let Some((scala, version)) = rest.split_once('-') {
                return (version.to_string(), scala.to_string());
            }
        }
    }
    panic!(
        "{JARS_ENV} lists no spark-sql-kafka-0-10_<scala>-<spark version>.jar: {jars:?}\n\
         It must hold the connector and what it needs: spark-sql-kafka-0-10, spark-token-provider-kafka-0-10, \
         kafka-clients and commons-pool2 (see scripts/spark/README.md)"
    );
}

/// The test venv's pyspark, installed at `version` if it has another or none.
fn ensure_pyspark(version: &str) -> PathBuf {
    let py = venv_python();
    let have = Command::new(&py)
        .args(["-c", "import pyspark; print(pyspark.__version__)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if have.as_deref() != Some(version) {
        say(&format!("spark smoke test: installing pyspark=={version} into the test venv (had {have:?})"));
        let mut cmd = Command::new(&py);
        cmd.args(["-m", "pip", "install", "-q", &format!("pyspark=={version}")])
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
        let out = run(cmd, None, PIP_TIMEOUT, "pip install pyspark");
        expect_success(&out, &format!("pip install pyspark=={version}"));
    }
    let submit = cache_dir().join("venv/bin/spark-submit");
    assert!(submit.exists(), "pyspark installed no {}", submit.display());
    submit
}

fn spark_submit(submit: &Path, jars: &str, script: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(submit);
    cmd.args(["--master", "local[2]", "--driver-memory", "1g", "--jars", jars])
        .args(["--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=2"])
        .arg(repo().join("scripts/spark").join(script))
        .args(args)
        .env("PYSPARK_PYTHON", venv_python())
        .env("PYSPARK_DRIVER_PYTHON", venv_python())
        .env("SPARK_LOCAL_IP", "127.0.0.1");
    let what = format!("spark-submit {script} {}", args.join(" "));
    let out = run(cmd, None, SPARK_TIMEOUT, &what);
    expect_success(&out, &what);
    out
}

/// Rows `from..to` of the CSV input: id, name, amount.
fn write_csv(path: &Path, from: usize, to: usize) {
    let mut text = String::from("id,name,amount\n");
    for i in from..to {
        text.push_str(&format!("id-{i},name {i},{}\n", i as f64 * 1.5));
    }
    fs::write(path, text).expect("writing a CSV file");
}

fn utf8_hex(h: &str) -> String {
    let bytes: Vec<u8> = (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex")).collect();
    String::from_utf8(bytes).expect("utf-8")
}

/// The topic's records as key -> (value text, count); checks each value is
/// the JSON of its CSV row.
fn topic_rows(boot: &str, topic: &str) -> BTreeMap<String, (String, usize)> {
    let mut rows: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for r in ck_consume(boot, topic, &[]).records {
        let key = utf8_hex(r.key.as_deref().expect("a record without a key"));
        let value = utf8_hex(r.value.as_deref().expect("a record without a value"));
        let j = Json::parse(&value).unwrap_or_else(|e| panic!("value of {key} is not JSON ({e}): {value}"));
        let i: usize = key.strip_prefix("id-").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("key {key}"));
        assert_eq!(j.get("id").as_str(), key, "id in the value of {key}");
        assert_eq!(j.get("name").as_str(), format!("name {i}"), "name in the value of {key}");
        assert_eq!(j.get("amount").as_f64(), i as f64 * 1.5, "amount in the value of {key}");
        rows.entry(key).or_insert((value, 0)).1 += 1;
    }
    rows
}

fn expect_rows(rows: &BTreeMap<String, (String, usize)>, n: usize, what: &str) {
    let dups: Vec<_> = rows.iter().filter(|(_, (_, c))| *c != 1).collect();
    assert!(dups.is_empty(), "{what}: rows written more than once: {dups:?}");
    let want: Vec<String> = (0..n).map(|i| format!("id-{i}")).collect();
    let got: Vec<&String> = rows.keys().collect();
    let mut want_sorted: Vec<&String> = want.iter().collect();
    want_sorted.sort();
    assert_eq!(got, want_sorted, "{what}: the topic's keys");
}

#[test]
fn pyspark_examples_write_and_read_through_sluice() {
    let jars = match std::env::var(JARS_ENV) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => {
            say(&format!(
                "SKIPPED spark_smoke::pyspark_examples_write_and_read_through_sluice: {JARS_ENV} is not set. \
                 Spark's Kafka connector (spark-sql-kafka-0-10 and its jars) cannot be obtained from the package \
                 registries here; set {JARS_ENV}=/path/spark-sql-kafka-0-10_2.13-V.jar,... to run this test \
                 (see scripts/spark/README.md)."
            ));
            return;
        }
    };
    let jar_paths: Vec<PathBuf> = jars.split(',').map(|j| PathBuf::from(j.trim())).collect();
    for j in &jar_paths {
        assert!(j.is_file(), "{JARS_ENV}: no such jar {}", j.display());
    }
    let (connector, scala) = connector_version(&jar_paths);
    let version = std::env::var("PYSPARK_VERSION").unwrap_or(connector);
    say(&format!("spark smoke test: pyspark {version} (connector for Scala {scala}), jars {jars}"));
    let submit = ensure_pyspark(&version);

    let broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name("spark-smoke");
    ck_create(&boot, &topic, 3);
    let dir = tempfile::Builder::new().prefix("sluice-spark-").tempdir().expect("a temp dir");
    let input = dir.path().join("input");
    let checkpoint = dir.path().join("write-checkpoint");
    fs::create_dir_all(&input).expect("creating the input dir");
    let (input_s, checkpoint_s) = (input.display().to_string(), checkpoint.display().to_string());
    let write_args = [
        "--bootstrap",
        &boot,
        "--topic",
        &topic,
        "--input",
        &input_s,
        "--checkpoint",
        &checkpoint_s,
        "--available-now",
    ];

    // 1. 50 CSV rows -> 50 records, key = id, value = the row as JSON.
    write_csv(&input.join("part-1.csv"), 0, 50);
    spark_submit(&submit, &jars, "write_to_kafka.py", &write_args);
    expect_rows(&topic_rows(&boot, &topic), 50, "after the first write_to_kafka.py run");

    // 2. A new file, the same checkpoint: only the new rows are written.
    write_csv(&input.join("part-2.csv"), 50, 80);
    spark_submit(&submit, &jars, "write_to_kafka.py", &write_args);
    let rows = topic_rows(&boot, &topic);
    expect_rows(&rows, 80, "after the second write_to_kafka.py run (resumed from its checkpoint)");

    // 3. read_from_kafka.py prints every record to the console.
    let out = spark_submit(
        &submit,
        &jars,
        "read_from_kafka.py",
        &["--bootstrap", &boot, "--topic", &topic, "--starting-offsets", "earliest", "--available-now"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Batch: 0"), "read_from_kafka.py printed no batch:\n{stdout}");
    let missing: Vec<&String> = rows.values().map(|(v, _)| v).filter(|v| !stdout.contains(v.as_str())).collect();
    assert!(
        missing.is_empty(),
        "read_from_kafka.py did not print {} values, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    say(&format!("spark smoke test: 80 rows written in two runs and read back through Sluice ({topic})"));
}
