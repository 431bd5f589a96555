//! Spark (pyspark 4.1.1, `spark-submit --master local[2]`) with its real
//! Kafka connector (spark-sql-kafka-0-10, from Maven Central via
//! scripts/test-deps.sh) against a test broker:
//! - the tutorial programs in scripts/spark/ as they are: a `;`-separated
//!   CSV directory streamed into a topic twice (the second run resumes from
//!   the checkpoint and writes only the new file), then the topic to the
//!   console;
//! - batch `df.write`/`spark.read` (tests/clients/spark_batch.py): explicit
//!   partitions, keys and headers both ways, startingOffsets/endingOffsets as
//!   earliest/latest, JSON per partition, assign, and by timestamp;
//! - readStream with a checkpoint across a restart of spark-submit, into
//!   files and into another topic with writeStream.format("kafka")
//!   (tests/clients/spark_stream.py): every record exactly once.
//!
//! Each spark-submit costs tens of seconds of JVM start on 2 cores, so the
//! scenarios share runs and at most two run at a time. failOnDataLoss keeps
//! its default everywhere. Nothing is Sluice-specific: the same test runs
//! against Apache Kafka (`SLUICE_TEST_BROKER=kafka`).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::records::{assert_round_trip, by_partition};
use common::{
    broker_name, cache_dir, ck_consume, ck_create, ck_produce, end_args, expect_success, run, unique_name, venv_python,
    Broker, Json, Rec,
};

/// The pyspark and connector version scripts/test-deps.sh installs.
const SPARK_VERSION: &str = "4.1.1";
/// One spark-submit run, JVM and Python start-up included.
const SPARK_TIMEOUT: Duration = Duration::from_secs(300);
/// spark-submits at once (each is a JVM with a 1 GiB heap and two task threads).
const MAX_CONCURRENT_SPARK: usize = 2;
/// ck.py's CreateTime base (tests/clients/_records.py): record i has TS_BASE + i.
const TS_BASE: i64 = 1_700_000_000_000;

/// Shows on the real stderr (in CI logs) and in the captured output.
fn say(msg: &str) {
    eprintln!("{msg}");
    println!("{msg}");
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn missing(what: &str, path: &Path) -> ! {
    panic!(
        "{what} not found at {}: run scripts/test-deps.sh (it installs pyspark {SPARK_VERSION} into the test venv \
         and Spark's Kafka connector jars from Maven Central)",
        path.display()
    )
}

/// The test venv's spark-submit and the connector jars for `--jars`,
/// checked once: pyspark's version must be the connector's.
fn spark_install() -> &'static (PathBuf, String) {
    static INSTALL: OnceLock<(PathBuf, String)> = OnceLock::new();
    INSTALL.get_or_init(|| {
        let submit = cache_dir().join("venv/bin/spark-submit");
        if !submit.is_file() {
            missing("spark-submit (pyspark)", &submit);
        }
        let out = Command::new(venv_python())
            .args(["-c", "import pyspark; print(pyspark.__version__)"])
            .output()
            .expect("running the venv's python");
        let have = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && have == SPARK_VERSION,
            "the test venv has pyspark {have:?}, not {SPARK_VERSION}: run scripts/test-deps.sh\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = cache_dir().join("spark-jars");
        let mut jars: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap_or_else(|_| missing("Spark's Kafka connector jars", &dir))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jar"))
            .collect();
        jars.sort();
        let names: Vec<String> =
            jars.iter().map(|j| j.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
        for want in [
            format!("spark-sql-kafka-0-10_2.13-{SPARK_VERSION}.jar"),
            format!("spark-token-provider-kafka-0-10_2.13-{SPARK_VERSION}.jar"),
            "kafka-clients-".to_string(),
            "commons-pool2-".to_string(),
        ] {
            if !names.iter().any(|n| n.starts_with(&want)) {
                missing(&format!("{want}* (Spark's Kafka connector; found {names:?})"), &dir);
            }
        }
        let list: Vec<String> = jars.iter().map(|j| j.display().to_string()).collect();
        (submit, list.join(","))
    })
}

/// A slot among the `MAX_CONCURRENT_SPARK`; released on drop.
struct SparkSlot;

static SLOTS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

impl SparkSlot {
    fn take() -> SparkSlot {
        let (lock, cv) = &SLOTS;
        // Bounded: the holders' runs are bounded by SPARK_TIMEOUT.
        let mut busy = lock.lock().unwrap_or_else(|e| e.into_inner());
        while *busy >= MAX_CONCURRENT_SPARK {
            busy = cv.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy += 1;
        SparkSlot
    }
}

impl Drop for SparkSlot {
    fn drop(&mut self) {
        let (lock, cv) = &SLOTS;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        cv.notify_one();
    }
}

/// Runs `script` (a path) under spark-submit with local jars only (no Ivy),
/// in `cwd`; it must exit 0.
fn spark_submit(script: &Path, args: &[&str], cwd: &Path) -> Output {
    let (submit, jars) = spark_install();
    let mut cmd = Command::new(submit);
    cmd.args(["--master", "local[2]", "--driver-memory", "1g", "--jars", jars])
        .args(["--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=2"])
        .arg(script)
        .args(args)
        .current_dir(cwd)
        // The venv's own Spark, whatever the environment points at.
        .env_remove("SPARK_HOME")
        .env_remove("PYSPARK_SUBMIT_ARGS")
        .env("PYSPARK_PYTHON", venv_python())
        .env("PYSPARK_DRIVER_PYTHON", venv_python())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("SPARK_LOCAL_IP", "127.0.0.1");
    let name = script.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let what = format!("spark-submit {name} {}", args.join(" "));
    let _slot = SparkSlot::take();
    let t0 = Instant::now();
    let out = run(cmd, None, SPARK_TIMEOUT, &what);
    expect_success(&out, &what);
    say(&format!("spark: spark-submit {name} took {:.1} s", t0.elapsed().as_secs_f64()));
    out
}

/// The driver scripts' result: the last line of stdout (Spark may print
/// before it).
fn last_json(out: &Output, what: &str) -> Json {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    Json::parse(line.trim()).unwrap_or_else(|e| panic!("{what}: the last stdout line is not JSON ({e}): {line}"))
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("sluice-spark-").tempdir().expect("a temp dir")
}

fn unhex(h: &str) -> String {
    let bytes: Vec<u8> = (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex")).collect();
    String::from_utf8(bytes).expect("utf-8")
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn per_partition(recs: &[Rec]) -> BTreeMap<i32, usize> {
    by_partition(recs).into_iter().map(|(p, rs)| (p, rs.len())).collect()
}

fn sorted(mut recs: Vec<Rec>) -> Vec<Rec> {
    recs.sort_by_key(|r| (r.partition, r.offset));
    recs
}

// ---------------------------------------------------------------------------
// 1. The tutorial programs in scripts/spark/

/// CSV rows `from..to` separated by `;`; the names hold commas, so a wrong
/// delimiter cannot parse them.
fn write_csv(path: &Path, from: usize, to: usize) {
    let mut text = String::from("id;name;amount\n");
    for i in from..to {
        text.push_str(&format!("id-{i};name {i}, jr.;{}\n", i as f64 * 1.5));
    }
    fs::write(path, text).expect("writing a CSV file");
}

/// Key -> value of every record in the topic, each key once, each value the
/// JSON of its CSV row.
fn csv_topic_rows(boot: &str, topic: &str, n: usize, what: &str) -> BTreeMap<String, String> {
    let recs = ck_consume(boot, topic, &[]).records;
    let mut rows = BTreeMap::new();
    for r in &recs {
        let key = unhex(r.key.as_deref().unwrap_or_else(|| panic!("{what}: a record without a key: {}", r.brief())));
        let value = unhex(r.value.as_deref().unwrap_or_else(|| panic!("{what}: no value: {}", r.brief())));
        let j = Json::parse(&value).unwrap_or_else(|e| panic!("{what}: value of {key} is not JSON ({e}): {value}"));
        let i: usize = key.strip_prefix("id-").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("key {key}"));
        assert_eq!(j.get("id").as_str(), key, "{what}: id in the value of {key}");
        assert_eq!(j.get("name").as_str(), format!("name {i}, jr."), "{what}: name in the value of {key}");
        assert_eq!(j.get("amount").as_f64(), i as f64 * 1.5, "{what}: amount in the value of {key}");
        assert!(rows.insert(key.clone(), value).is_none(), "{what}: {key} written more than once");
    }
    let want: HashSet<String> = (0..n).map(|i| format!("id-{i}")).collect();
    let got: HashSet<String> = rows.keys().cloned().collect();
    assert_eq!(got, want, "{what}: the topic's keys ({} records)", recs.len());
    rows
}

/// (partition, offset, value) of each row of the console sink's tables for
/// `topic` (columns topic, partition, offset, timestamp, key, value).
fn console_rows(stdout: &str, topic: &str) -> Vec<(i32, i64, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            // "", topic, partition, offset, timestamp, key, value, ""
            (cols.len() == 8 && cols[1] == topic)
                .then(|| (cols[2].parse().expect("partition"), cols[3].parse().expect("offset"), cols[6].to_string()))
        })
        .collect()
}

#[test]
fn tutorial_programs_csv_to_topic_and_topic_to_console() {
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name("spark-tutorial");
    ck_create(&boot, &topic, 3);
    let dir = temp_dir();
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
        "--delimiter",
        ";",
        "--available-now",
    ];
    let scripts = repo().join("scripts/spark");

    write_csv(&input.join("part-1.csv"), 0, 50);
    spark_submit(&scripts.join("write_to_kafka.py"), &write_args, dir.path());
    csv_topic_rows(&boot, &topic, 50, "after the first write_to_kafka.py run");

    // A new file, the same checkpoint: only its rows are written.
    write_csv(&input.join("part-2.csv"), 50, 80);
    spark_submit(&scripts.join("write_to_kafka.py"), &write_args, dir.path());
    let rows = csv_topic_rows(&boot, &topic, 80, "after the second write_to_kafka.py run (resumed)");

    let out = spark_submit(
        &scripts.join("read_from_kafka.py"),
        &["--bootstrap", &boot, "--topic", &topic, "--starting-offsets", "earliest", "--available-now"],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let printed = console_rows(&stdout, &topic);
    let mut at = HashSet::new();
    for (p, o, _) in &printed {
        assert!(at.insert((*p, *o)), "read_from_kafka.py printed partition {p} offset {o} twice");
    }
    let printed_values: HashSet<&str> = printed.iter().map(|(_, _, v)| v.as_str()).collect();
    let want_values: HashSet<&str> = rows.values().map(String::as_str).collect();
    assert_eq!(printed.len(), 80, "read_from_kafka.py printed {} rows:\n{stdout}", printed.len());
    assert_eq!(printed_values, want_values, "read_from_kafka.py: the printed values");
    say(&format!(
        "spark: tutorial against {}: write_to_kafka.py ';' CSV 50 rows, then 30 more resumed from the checkpoint \
         (80 in the topic, each once); read_from_kafka.py printed 80",
        broker_name()
    ));
}

// ---------------------------------------------------------------------------
// 2 and 5. Batch write and read: offsets, timestamps, partitions, keys, headers

/// What spark_batch.py writes as row i: key k-i, value v-i, partition i % 3,
/// headers idx=i, src=spark, and a null-valued one on every tenth row.
fn spark_row(i: usize) -> (i32, String, String, Vec<(String, Option<String>)>) {
    let mut headers = vec![("idx".to_string(), Some(hex(&i.to_string()))), ("src".to_string(), Some(hex("spark")))];
    if i % 10 == 0 {
        headers.push(("nullh".to_string(), None));
    }
    ((i % 3) as i32, hex(&format!("k-{i}")), hex(&format!("v-{i}")), headers)
}

/// The records of `all` within per-partition `[start, end)`.
fn in_ranges(all: &[Rec], start: &BTreeMap<i32, i64>, end: &BTreeMap<i32, i64>) -> Vec<Rec> {
    all.iter()
        .filter(|r| r.offset >= start.get(&r.partition).copied().unwrap_or(i64::MAX) && r.offset < end[&r.partition])
        .cloned()
        .collect()
}

/// Per partition: the first offset whose timestamp is >= the target (what
/// ListOffsets by timestamp answers), or `none` when there is none.
fn offsets_for_times(all: &[Rec], targets: &BTreeMap<i32, i64>, none: &BTreeMap<i32, i64>) -> BTreeMap<i32, i64> {
    targets
        .iter()
        .map(|(&p, &ts)| {
            let first =
                all.iter().filter(|r| r.partition == p && r.timestamp.expect("timestamp") >= ts).map(|r| r.offset);
            (p, first.min().unwrap_or(none[&p]))
        })
        .collect()
}

/// A JSON object partition -> number, each mapped by `f(partition, number)`.
fn partition_map(j: &Json, f: impl Fn(i32, i64) -> i64) -> BTreeMap<i32, i64> {
    j.as_obj()
        .iter()
        .map(|(k, v)| {
            let p = k.parse().expect("partition");
            (p, f(p, v.as_i64()))
        })
        .collect()
}

fn assert_same(what: &str, got: &[Rec], want: &[Rec]) {
    if got != want {
        let first = got.iter().zip(want).find(|(g, w)| g != w);
        panic!("{what}: Spark read {} records, expected {}; first difference: {first:#?}", got.len(), want.len());
    }
}

#[test]
fn batch_write_and_read_offsets_timestamps_keys_headers() {
    const ROWS: usize = 300;
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let (t_spark, t_ck) = (unique_name("spark-batch-w"), unique_name("spark-batch-ts"));
    ck_create(&boot, &t_spark, 3);
    ck_create(&boot, &t_ck, 3);
    let delivered = ck_produce(&boot, &t_ck, ROWS, &[]);
    let dir = temp_dir();
    let rows = ROWS.to_string();
    let out = spark_submit(
        &repo().join("tests/clients/spark_batch.py"),
        &[&boot, "--spark-topic", &t_spark, "--ck-topic", &t_ck, "--rows", &rows],
        dir.path(),
    );
    let j = last_json(&out, "spark_batch.py");
    let params = j.get("params");
    assert_eq!(params.get("ts_base").as_i64(), TS_BASE, "spark_batch.py's TS_BASE");

    // Spark's own write: every row once, in its partition, key/value/headers intact.
    let spark_all = Rec::list(j.get("spark_all"));
    let mut seen = HashSet::new();
    for r in &spark_all {
        let i: usize =
            unhex(r.key.as_deref().expect("key")).strip_prefix("k-").and_then(|n| n.parse().ok()).expect("k-i");
        let (p, key, value, headers) = spark_row(i);
        assert!(seen.insert(i), "row {i} written twice");
        assert_eq!((r.partition, &r.key, &r.value, &r.headers), (p, &Some(key), &Some(value), &headers), "row {i}");
    }
    assert_eq!(seen.len(), ROWS, "Spark read back {} of the {ROWS} rows it wrote", seen.len());
    let per_p = per_partition(&spark_all);
    assert_eq!(per_p, BTreeMap::from([(0, 100), (1, 100), (2, 100)]), "rows per partition");
    // Another client sees the same records, offsets, headers and timestamps.
    let ck_view = sorted(ck_consume(&boot, &t_spark, &[]).records);
    assert_same("confluent-kafka reading what Spark wrote", &spark_all, &ck_view);
    let high: BTreeMap<i32, i64> = per_p.iter().map(|(&p, &n)| (p, n as i64)).collect();

    // JSON offsets: -2 is earliest, -1 latest.
    let start = partition_map(params.get("json_start"), |_, o| if o == -2 { 0 } else { o });
    let end = partition_map(params.get("json_end"), |p, o| if o == -1 { high[&p] } else { o });
    let want_json = in_ranges(&spark_all, &start, &end);
    let spark_json = Rec::list(j.get("spark_json"));
    assert_same("startingOffsets/endingOffsets as JSON", &spark_json, &want_json);
    let spark_assign = Rec::list(j.get("spark_assign"));
    let want_assign: Vec<Rec> = spark_all.iter().filter(|r| r.partition != 1).cloned().collect();
    assert_same("assign partitions 0 and 2", &spark_assign, &want_assign);

    // ck.py's records, timestamps TS_BASE + i.
    let ck_all = Rec::list(j.get("ck_all"));
    assert_round_trip("Spark reading confluent-kafka's records (headers included)", &delivered, &ck_all);
    let ck_sorted = sorted(delivered.clone());
    let ck_high: BTreeMap<i32, i64> = common::acked_ends(&delivered);
    let start_ts = TS_BASE + params.get("start_ts").as_i64();
    let want_start_ts: Vec<Rec> = ck_sorted.iter().filter(|r| r.timestamp.unwrap() >= start_ts).cloned().collect();
    let got_start_ts = Rec::list(j.get("ck_start_ts"));
    assert_same("startingTimestamp", &got_start_ts, &want_start_ts);
    let ts_start = partition_map(params.get("by_ts_start"), |_, i| TS_BASE + i);
    let ts_end = partition_map(params.get("by_ts_end"), |_, i| TS_BASE + i);
    let never = BTreeMap::from([(0, i64::MAX), (1, i64::MAX), (2, i64::MAX)]);
    let by_ts_from = offsets_for_times(&ck_sorted, &ts_start, &never);
    let by_ts_to = offsets_for_times(&ck_sorted, &ts_end, &ck_high);
    let want_by_ts = in_ranges(&ck_sorted, &by_ts_from, &by_ts_to);
    let got_by_ts = Rec::list(j.get("ck_by_ts"));
    assert_same("startingOffsetsByTimestamp/endingOffsetsByTimestamp", &got_by_ts, &want_by_ts);
    assert!(!want_by_ts.is_empty() && !want_start_ts.is_empty(), "the timestamp ranges select nothing");

    say(&format!(
        "spark: batch against {}: wrote {ROWS} records to 3 partitions {per_p:?} (keys, headers), read back {} \
         (earliest..latest, = confluent-kafka's view), {} (JSON offsets {start:?}..{end:?}), {} (assign [0,2]); \
         {} confluent-kafka records {:?}: read {} (earliest..latest, headers), {} (startingTimestamp +{}), \
         {} (by timestamp {by_ts_from:?}..{by_ts_to:?})",
        broker_name(),
        spark_all.len(),
        spark_json.len(),
        spark_assign.len(),
        delivered.len(),
        per_partition(&delivered),
        ck_all.len(),
        got_start_ts.len(),
        start_ts - TS_BASE,
        got_by_ts.len()
    ));
}

// ---------------------------------------------------------------------------
// 3 and 4. Streams across a restart of spark-submit, into files and a topic

/// Records of every batch-N.json the files query wrote, with the batch ids.
fn batch_files(dir: &Path) -> (Vec<i64>, Vec<Rec>) {
    let mut ids = Vec::new();
    let mut recs = Vec::new();
    for e in fs::read_dir(dir).expect("reading the batch dir") {
        let path = e.expect("dir entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if !name.starts_with("batch-") || !name.ends_with(".json") {
            continue;
        }
        let j = Json::parse(&fs::read_to_string(&path).expect("reading a batch file")).expect("batch file JSON");
        ids.push(j.get("batch").as_i64());
        recs.extend(Rec::list(j.get("records")));
    }
    ids.sort_unstable();
    (ids, recs)
}

/// The batch ids a query of spark_stream.py ran, checking its row count.
fn query_batches(j: &Json, query: &str, rows: usize, what: &str) -> Vec<i64> {
    let q = j.get(query);
    assert_eq!(q.get("rows").as_i64(), rows as i64, "{what}: rows the {query} query processed");
    q.get("batches").as_arr().iter().map(Json::as_i64).collect()
}

#[test]
fn stream_restart_exactly_once_into_files_and_topic() {
    const FIRST: usize = 200;
    const SECOND: usize = 150;
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let (src, sink) = (unique_name("spark-stream-src"), unique_name("spark-stream-sink"));
    ck_create(&boot, &src, 3);
    ck_create(&boot, &sink, 3);
    let dir = temp_dir();
    let (out_dir, ckpt) = (dir.path().join("batches"), dir.path().join("checkpoint"));
    let (out_s, ckpt_s) = (out_dir.display().to_string(), ckpt.display().to_string());
    let script = repo().join("tests/clients/spark_stream.py");
    let args = [
        boot.as_str(),
        "--source",
        &src,
        "--sink",
        &sink,
        "--out",
        &out_s,
        "--checkpoint",
        &ckpt_s,
        "--max-offsets-per-trigger",
        "70",
    ];

    let mut delivered = ck_produce(&boot, &src, FIRST, &[]);
    let j1 = last_json(&spark_submit(&script, &args, dir.path()), "spark_stream.py, first run");
    let (ids1, recs1) = batch_files(&out_dir);
    assert_round_trip("files after the first run", &delivered, &sorted(recs1));
    let files1 = query_batches(&j1, "files", FIRST, "first run");
    let kafka1 = query_batches(&j1, "kafka", FIRST, "first run");
    assert_eq!(ids1, files1, "batch files vs the batches the first run reported");

    // More records while no query runs; the restarted process resumes from
    // the checkpoints and reads only those.
    delivered.extend(ck_produce(&boot, &src, SECOND, &["--start", &FIRST.to_string()]));
    let j2 = last_json(&spark_submit(&script, &args, dir.path()), "spark_stream.py, second run");
    let files2 = query_batches(&j2, "files", SECOND, "second run (resumed)");
    let kafka2 = query_batches(&j2, "kafka", SECOND, "second run (resumed)");
    let (ids, recs) = batch_files(&out_dir);
    let recs = sorted(recs);
    assert_round_trip("files after the restart: every record exactly once", &delivered, &recs);
    for (what, before, after) in [("files", &files1, &files2), ("kafka", &kafka1, &kafka2)] {
        assert!(
            !after.is_empty() && after.iter().all(|b| before.iter().all(|a| b > a)),
            "{what} query: the second run's batches {after:?} do not follow the first run's {before:?}"
        );
    }
    assert_eq!(ids, [files1.clone(), files2.clone()].concat(), "batch files after both runs");

    // writeStream.format("kafka"): the sink holds each source record once, in
    // the same partition and order, with its key, value and headers.
    // The sink must reach at least the source's per-partition ends.
    let ends = end_args(&delivered);
    let ends: Vec<&str> = ends.iter().map(String::as_str).collect();
    let sink_recs = ck_consume(&boot, &sink, &ends).records;
    let src_by_p = by_partition(&recs);
    let sink_by_p = by_partition(&sink_recs);
    // Offsets and CreateTime are the sink's own.
    let content = |rs: &Vec<&Rec>| -> Vec<Rec> {
        rs.iter().map(|r| Rec { offset: 0, timestamp: None, ..(*r).clone() }).collect()
    };
    for p in 0..3 {
        let (s, k) = (src_by_p.get(&p).map(content), sink_by_p.get(&p).map(content));
        assert_eq!(s.as_ref().map(Vec::len), k.as_ref().map(Vec::len), "partition {p}: records in source vs sink");
        assert!(s == k, "partition {p}: the sink's records differ from the source's (key, value, headers, order)");
    }
    assert_eq!(sink_recs.len(), FIRST + SECOND, "records in the sink topic");
    let offsets: HashMap<i32, i64> = (0..3).map(|p| (p, 0)).collect();
    common::records::assert_contiguous("the sink topic", &sink_recs, &offsets);

    say(&format!(
        "spark: stream against {}: {FIRST} records {:?}, spark-submit (batches {files1:?}), {SECOND} more, \
         spark-submit again (batches {files2:?}): files hold {} records, each once; writeStream to Kafka \
         {} + {} records, sink topic {} {:?}",
        broker_name(),
        per_partition(&delivered[..FIRST]),
        recs.len(),
        FIRST,
        SECOND,
        sink_recs.len(),
        per_partition(&sink_recs)
    ));
}
