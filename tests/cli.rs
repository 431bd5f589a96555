//! The command-line tools (`sluice topic|produce|consume|group|cluster`)
//! run as a user runs them, against a real broker, checking what they print
//! and how they exit: the README's quickstart block command by command, each
//! command group, and each error case (one line on stderr, non-zero exit,
//! no panic).

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{broker_bin, free_port, run, unique_name, Broker, Json, CLIENT_TIMEOUT};

/// Runs `sluice ARGS` with `stdin`, to completion.
fn sluice(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(broker_bin());
    cmd.args(args).env_remove("SLUICE_BOOTSTRAP_SERVER");
    run(cmd, stdin.map(|s| s.as_bytes().to_vec()), CLIENT_TIMEOUT, &format!("sluice {}", args.join(" ")))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `sluice ARGS --bootstrap-server B`, which must succeed; its stdout.
fn ok(b: &Broker, args: &[&str], stdin: Option<&str>) -> String {
    let bootstrap = b.bootstrap();
    let mut all = args.to_vec();
    all.extend(["--bootstrap-server", &bootstrap]);
    let out = sluice(&all, stdin);
    assert!(
        out.status.success(),
        "sluice {} failed ({}):\nstderr: {}\nstdout: {}",
        all.join(" "),
        out.status,
        stderr(&out),
        stdout(&out)
    );
    stdout(&out)
}

/// Runs `sluice ARGS`, which must fail with `code` and exactly one line on
/// stderr, `error: ...` containing `want`; returns that line.
fn fails(args: &[&str], stdin: Option<&str>, code: i32, want: &str) -> String {
    let out = sluice(args, stdin);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "sluice {}: exit status; stderr: {err}", args.join(" "));
    let lines: Vec<&str> = err.lines().collect();
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "a panic: {err}");
    if code == 1 {
        assert_eq!(lines.len(), 1, "sluice {}: one error line expected:\n{err}", args.join(" "));
    }
    let first = lines.first().copied().unwrap_or("");
    assert!(first.starts_with("error: "), "sluice {}: {err}", args.join(" "));
    assert!(first.contains(want), "sluice {}: {first:?} does not contain {want:?}", args.join(" "));
    first.to_string()
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

fn sorted(s: &str) -> Vec<String> {
    let mut l = lines(s);
    l.sort();
    l
}

/// A `sluice` process in the background with its stdout collected, for
/// `consume` without an end; stopped with SIGINT, as Ctrl-C does.
struct Background {
    child: Option<Child>,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Background {
    fn start(args: &[String]) -> Background {
        let mut child = Command::new(broker_bin())
            .args(args)
            .env_remove("SLUICE_BOOTSTRAP_SERVER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting sluice");
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let collect = |mut from: Box<dyn Read + Send>, into: Arc<Mutex<Vec<u8>>>| {
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    into.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        };
        let readers = vec![
            collect(Box::new(child.stdout.take().expect("stdout")), out.clone()),
            collect(Box::new(child.stderr.take().expect("stderr")), err.clone()),
        ];
        Background { child: Some(child), out, err, readers }
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Waits (bounded) until stdout has `n` lines.
    fn wait_lines(&self, n: usize) -> String {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        loop {
            let s = self.stdout();
            if s.lines().count() >= n {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{n} lines not printed in time; stdout:\n{s}\nstderr:\n{}",
                String::from_utf8_lossy(&self.err.lock().unwrap())
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGINT, then waits (bounded) for the exit: (status, stdout, stderr).
    fn interrupt(mut self) -> (std::process::ExitStatus, String, String) {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child, not reaped yet.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0, "kill(SIGINT): {}", std::io::Error::last_os_error());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().expect("waiting") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("sluice consume did not exit within 30 s of SIGINT; stdout:\n{}", self.stdout());
            }
            thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let err = String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned();
        (status, self.stdout(), err)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One command of the README's quickstart block: its words and its
/// here-document input.
struct Step {
    words: Vec<String>,
    stdin: Option<String>,
}

/// The `sluice ...` commands between `<!-- quickstart` and
/// `<!-- /quickstart -->` in README.md, with their `<<'EOF'` input.
fn quickstart_steps() -> Vec<Step> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    let start = readme.find("<!-- quickstart").expect("README.md has no <!-- quickstart --> block");
    let end = readme[start..].find("<!-- /quickstart -->").expect("the quickstart block is not closed") + start;
    let mut steps = Vec::new();
    let mut body = readme[start..end].lines();
    while let Some(line) = body.next() {
        let line = line.trim();
        if !line.starts_with("sluice ") {
            assert!(
                line.is_empty() || line.starts_with('#') || line.starts_with("```") || line.starts_with("<!--"),
                "a line of the quickstart that is not a sluice command: {line:?}"
            );
            continue;
        }
        let (cmd, heredoc) = match line.split_once("<<") {
            Some((c, marker)) => (c.trim(), Some(marker.trim().trim_matches('\'').to_string())),
            None => (line, None),
        };
        assert!(!cmd.contains(['"', '\'', '|', '>', '$']), "keep quickstart commands plain words: {cmd:?}");
        let stdin = heredoc.map(|marker| {
            let mut text = String::new();
            for l in body.by_ref() {
                if l.trim() == marker {
                    return text;
                }
                text.push_str(l);
                text.push('\n');
            }
            panic!("here-document {marker} is not closed");
        });
        steps.push(Step { words: cmd.split_whitespace().skip(1).map(str::to_string).collect(), stdin });
    }
    steps
}

/// Every command of the README quickstart, in order, against a real broker
/// (the broker itself is the harness's), checking what each prints. The
/// consumer runs in the background and is stopped with Ctrl-C (SIGINT).
#[test]
fn readme_quickstart() {
    let steps = quickstart_steps();
    let kinds: Vec<String> =
        steps.iter().map(|s| s.words.iter().take(2).cloned().collect::<Vec<_>>().join(" ")).collect();
    let topic = "quickstart-events";
    assert_eq!(
        kinds,
        [
            "serve".to_string(),
            "topic create".to_string(),
            format!("produce {topic}"),
            format!("consume {topic}"),
            "topic describe".to_string(),
            "topic delete".to_string(),
        ],
        "the quickstart's steps changed: update this test with them"
    );
    let b = Broker::start();
    let bootstrap = b.bootstrap();
    let mut produced: Vec<String> = Vec::new();
    for step in &steps {
        let args: Vec<&str> = step.words.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["serve"] => {} // the harness's broker
            ["topic", "create", name, "--partitions", "3"] => {
                assert_eq!(*name, topic);
                assert_eq!(ok(&b, &args, None), format!("Created topic {topic}.\n"));
                assert_eq!(ok(&b, &["topic", "list", "--exclude-internal"], None), format!("{topic}\n"));
            }
            ["produce", _] => {
                let input = step.stdin.as_deref().expect("the produce step has its input");
                assert!(input.contains("secret message"), "{input}");
                assert_eq!(ok(&b, &args, Some(input)), "");
                produced = lines(input);
                assert_eq!(produced.len(), 3);
            }
            ["consume", _, "--from-beginning"] => {
                let mut full: Vec<String> = step.words.clone();
                full.extend(["--bootstrap-server".to_string(), bootstrap.clone()]);
                let consumer = Background::start(&full);
                consumer.wait_lines(produced.len());
                let (status, out, err) = consumer.interrupt();
                assert!(status.success(), "Ctrl-C must end consume cleanly: {status}; stderr: {err}");
                let mut want = produced.clone();
                want.sort();
                assert_eq!(sorted(&out), want, "consumed records");
                assert_eq!(err, format!("Processed a total of {} messages\n", produced.len()));
            }
            ["topic", "describe", _] => {
                let out = ok(&b, &args, None);
                let l = lines(&out);
                assert_eq!(l.len(), 4, "{out}");
                assert!(l[0].starts_with(&format!("Topic: {topic}\tTopicId: ")), "{out}");
                assert!(l[0].ends_with("\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: "), "{out}");
                for (i, line) in l[1..].iter().enumerate() {
                    assert_eq!(
                        *line,
                        format!("\tTopic: {topic}\tPartition: {i}\tLeader: 1\tReplicas: 1\tIsr: 1"),
                        "{out}"
                    );
                }
            }
            ["topic", "delete", _] => {
                assert_eq!(ok(&b, &args, None), format!("Deleted topic {topic}.\n"));
                assert_eq!(ok(&b, &["topic", "list", "--exclude-internal"], None), "");
            }
            other => panic!("a quickstart command this test does not know: {other:?}"),
        }
    }
}

#[test]
fn version() {
    let out = sluice(&["--version"], None);
    assert!(out.status.success());
    assert_eq!(stdout(&out), format!("sluice {}\n", env!("CARGO_PKG_VERSION")));
}

/// create (with configs), list, describe, alter-config, add-partitions,
/// delete, and what each prints.
#[test]
fn topic_commands() {
    let b = Broker::start();
    let t = unique_name("topics");
    let out = ok(
        &b,
        &[
            "topic",
            "create",
            &t,
            "--partitions",
            "2",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=3600000",
            "--config",
            "cleanup.policy=delete",
        ],
        None,
    );
    assert_eq!(out, format!("Created topic {t}.\n"));
    let other = unique_name("other");
    ok(&b, &["topic", "create", &other], None);
    let listed = ok(&b, &["topic", "list", "--exclude-internal"], None);
    let mut want = vec![t.clone(), other.clone()];
    want.sort();
    assert_eq!(lines(&listed), want);

    let header = |b: &Broker| lines(&ok(b, &["topic", "describe", &t], None))[0].clone();
    assert!(
        header(&b).ends_with(
            "\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: cleanup.policy=delete,retention.ms=3600000"
        ),
        "{}",
        header(&b)
    );

    let out = ok(
        &b,
        &["topic", "alter-config", &t, "--config", "retention.ms=1000", "--delete-config", "cleanup.policy"],
        None,
    );
    assert_eq!(out, format!("Completed updating config for topic {t}.\n"));
    assert!(header(&b).ends_with("\tConfigs: retention.ms=1000"), "{}", header(&b));

    let out = ok(&b, &["topic", "add-partitions", &t, "--partitions", "5"], None);
    assert_eq!(out, format!("Topic {t} now has 5 partitions.\n"));
    let described = ok(&b, &["topic", "describe", &t], None);
    assert_eq!(lines(&described).len(), 6, "{described}");
    assert!(lines(&described)[5].starts_with(&format!("\tTopic: {t}\tPartition: 4\tLeader: ")), "{described}");

    // describe without a name: every topic.
    let all = ok(&b, &["topic", "describe"], None);
    assert!(all.contains(&format!("Topic: {t}\t")) && all.contains(&format!("Topic: {other}\t")), "{all}");

    assert_eq!(ok(&b, &["topic", "delete", &t], None), format!("Deleted topic {t}.\n"));
    assert_eq!(lines(&ok(&b, &["topic", "list", "--exclude-internal"], None)), vec![other]);
}

/// Keys, headers, partitions and the three output formats.
#[test]
fn produce_and_consume_formats() {
    let b = Broker::start();
    let t = unique_name("formats");
    ok(&b, &["topic", "create", &t, "--partitions", "3"], None);
    ok(
        &b,
        &["produce", &t, "--key-separator", ":", "--header", "source=cli", "--header", "n=1", "--partition", "1"],
        Some("k1:v1\nk2:v2:with:colons\r\n"),
    );
    let json = ok(&b, &["consume", &t, "--from-beginning", "--max-messages", "2", "--format", "json"], None);
    let recs: Vec<Json> = json.lines().map(|l| Json::parse(l).expect("a JSON line")).collect();
    assert_eq!(recs.len(), 2, "{json}");
    for (i, (k, v)) in [("k1", "v1"), ("k2", "v2:with:colons")].iter().enumerate() {
        let r = &recs[i];
        assert_eq!(r.get("topic").as_str(), t);
        assert_eq!(r.get("partition").as_i64(), 1);
        assert_eq!(r.get("offset").as_i64(), i as i64);
        assert!(r.get("timestamp").as_i64() > 0);
        assert_eq!(r.get("key").as_str(), *k);
        assert_eq!(r.get("value").as_str(), *v);
        assert_eq!(r.get("headers").get("source").as_str(), "cli");
        assert_eq!(r.get("headers").get("n").as_str(), "1");
    }
    let kv = ok(&b, &["consume", &t, "--from-beginning", "--max-messages", "2", "--format", "key-value"], None);
    assert_eq!(kv, "k1\tv1\nk2\tv2:with:colons\n");
    let kv = ok(
        &b,
        &["consume", &t, "--from-beginning", "--max-messages", "2", "--format", "key-value", "--key-separator", "="],
        None,
    );
    assert_eq!(kv, "k1=v1\nk2=v2:with:colons\n");

    // Keyed records go where the Java client's partitioner puts them:
    // the same key always to the same partition.
    let t2 = unique_name("keys");
    ok(&b, &["topic", "create", &t2, "--partitions", "3"], None);
    let input: String = (0..30).map(|i| format!("key-{}:value-{i}\n", i % 5)).collect();
    ok(&b, &["produce", &t2, "--key-separator", ":"], Some(&input));
    let json = ok(&b, &["consume", &t2, "--from-beginning", "--max-messages", "30", "--format", "json"], None);
    let mut seen = std::collections::BTreeMap::new();
    for l in json.lines() {
        let r = Json::parse(l).expect("JSON");
        let prev = seen.insert(r.get("key").as_str().to_string(), r.get("partition").as_i64());
        if let Some(p) = prev {
            assert_eq!(p, r.get("partition").as_i64(), "a key on two partitions");
        }
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(json.lines().count(), 30);
}

/// Every compression and acks setting round-trips.
#[test]
fn produce_compression_and_acks() {
    let b = Broker::start();
    let t = unique_name("codecs");
    ok(&b, &["topic", "create", &t, "--partitions", "1"], None);
    let mut want = Vec::new();
    for (codec, acks) in [("none", "all"), ("gzip", "1"), ("snappy", "-1"), ("lz4", "all"), ("zstd", "1")] {
        let input: String = (0..100).map(|i| format!("{codec}-{i}\n")).collect();
        want.extend(lines(&input));
        assert_eq!(ok(&b, &["produce", &t, "--compression", codec, "--acks", acks], Some(&input)), "");
    }
    // acks=0 gets no answer: read it back to know it arrived.
    ok(&b, &["produce", &t, "--acks", "0"], Some("unacknowledged\n"));
    want.push("unacknowledged".into());
    let got = ok(&b, &["consume", &t, "--from-beginning", "--max-messages", &want.len().to_string()], None);
    assert_eq!(lines(&got), want);
}

/// --offset with --partition, earliest/latest, --max-messages, --timeout-ms,
/// and --file.
#[test]
fn consume_positions() {
    let b = Broker::start();
    let t = unique_name("positions");
    ok(&b, &["topic", "create", &t, "--partitions", "2"], None);
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let input: String = (0..10).map(|i| format!("r{i}\n")).collect();
    std::fs::write(file.path(), &input).expect("writing the input");
    let path = file.path().to_str().expect("utf-8 path");
    ok(&b, &["produce", &t, "--partition", "0", "--file", path], None);
    ok(&b, &["produce", &t, "--partition", "1"], Some("other\n"));

    let out = ok(&b, &["consume", &t, "--partition", "0", "--offset", "7", "--max-messages", "3"], None);
    assert_eq!(out, "r7\nr8\nr9\n");
    let out = ok(&b, &["consume", &t, "--partition", "0", "--offset", "earliest", "--max-messages", "2"], None);
    assert_eq!(out, "r0\nr1\n");
    let out = ok(&b, &["consume", &t, "--partition", "1", "--from-beginning", "--timeout-ms", "1000"], None);
    assert_eq!(out, "other\n");
    // latest: only what comes after; nothing does, so it ends at the timeout.
    let out = ok(&b, &["consume", &t, "--offset", "latest", "--timeout-ms", "500"], None);
    assert_eq!(out, "");
    let out = ok(&b, &["consume", &t, "--from-beginning", "--timeout-ms", "1000"], None);
    assert_eq!(out.lines().count(), 11);
}

/// consume --group commits; group list/describe show it with lag; reset
/// offsets (dry run and --execute), delete the topic's offsets, delete the
/// group; an active group refuses resets and deletion.
#[test]
fn group_commands() {
    let b = Broker::start_with(&["group.initial.rebalance.delay.ms=0"], 2);
    let t = unique_name("grouped");
    let g = unique_name("group");
    ok(&b, &["topic", "create", &t, "--partitions", "2"], None);
    ok(&b, &["produce", &t, "--partition", "0"], Some("a\nb\nc\nd\n"));
    ok(&b, &["produce", &t, "--partition", "1"], Some("e\nf\n"));

    let out = ok(&b, &["consume", &t, "--group", &g, "--from-beginning", "--max-messages", "6"], None);
    assert_eq!(sorted(&out), ["a", "b", "c", "d", "e", "f"]);
    // The group resumes where it committed: nothing new to read.
    let out = ok(&b, &["consume", &t, "--group", &g, "--from-beginning", "--timeout-ms", "1000"], None);
    assert_eq!(out, "");
    assert!(lines(&ok(&b, &["group", "list"], None)).contains(&g));

    ok(&b, &["produce", &t, "--partition", "1"], Some("g\n"));
    let described = ok(&b, &["group", "describe", &g], None);
    let l = lines(&described);
    assert_eq!(l[0], format!("Consumer group '{g}': state Empty, 0 members."), "{described}");
    let cols = |line: &str| line.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        cols(&l[1]),
        ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]
    );
    assert_eq!(cols(&l[2]), [g.as_str(), t.as_str(), "0", "4", "4", "0", "-", "-", "-"]);
    assert_eq!(cols(&l[3]), [g.as_str(), t.as_str(), "1", "2", "3", "1", "-", "-", "-"]);
    assert_eq!(l.len(), 4, "{described}");

    // While a member is active: it shows in describe, and resets are refused.
    let bootstrap = b.bootstrap();
    let member = Background::start(&["consume", &t, "--group", &g, "--bootstrap-server", &bootstrap].map(String::from));
    assert_eq!(member.wait_lines(1), "g\n");
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    loop {
        let d = ok(&b, &["group", "describe", &g], None);
        if d.starts_with(&format!("Consumer group '{g}': state Stable, 1 member.")) {
            let rows: Vec<Vec<String>> = d.lines().skip(2).map(cols).collect();
            assert_eq!(rows.len(), 2, "{d}");
            for r in &rows {
                assert!(r[6].starts_with("sluice-cli-"), "{d}");
                assert_eq!(r[8], "sluice-cli", "{d}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "the member never showed as Stable:\n{d}");
        thread::sleep(Duration::from_millis(100));
    }
    let bs = ["--bootstrap-server", &bootstrap];
    let args = |a: &[&str]| a.iter().chain(bs.iter()).copied().map(String::from).collect::<Vec<_>>();
    let reset = args(&["group", "reset-offsets", &g, "--topic", &t, "--to-earliest", "--execute"]);
    fails(&reset.iter().map(String::as_str).collect::<Vec<_>>(), None, 1, "is active");
    let delete = args(&["group", "delete", &g]);
    fails(&delete.iter().map(String::as_str).collect::<Vec<_>>(), None, 1, "has active members");
    let (status, _, err) = member.interrupt();
    assert!(status.success(), "{err}");

    // After Ctrl-C the member committed and left.
    let d = lines(&ok(&b, &["group", "describe", &g], None));
    assert_eq!(d[0], format!("Consumer group '{g}': state Empty, 0 members."));
    assert_eq!(cols(&d[3])[3..6], ["3", "3", "0"]);

    // Dry run by default.
    let plan = ok(&b, &["group", "reset-offsets", &g, "--topic", &t, "--to-earliest"], None);
    let plan: Vec<Vec<String>> = plan.lines().map(cols).collect();
    assert_eq!(plan[0], ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]);
    assert_eq!(plan[1], [g.as_str(), t.as_str(), "0", "0"]);
    assert_eq!(plan[2], [g.as_str(), t.as_str(), "1", "0"]);
    assert_eq!(cols(&lines(&ok(&b, &["group", "describe", &g], None))[2])[3], "4", "a dry run changed nothing");

    ok(&b, &["group", "reset-offsets", &g, "--topic", &t, "--shift-by", "-2", "--partition", "0", "--execute"], None);
    ok(&b, &["group", "reset-offsets", &g, "--topic", &t, "--to-offset", "1", "--partition", "1", "--execute"], None);
    let d = lines(&ok(&b, &["group", "describe", &g], None));
    assert_eq!(cols(&d[2])[3..6], ["2", "4", "2"]);
    assert_eq!(cols(&d[3])[3..6], ["1", "3", "2"]);
    let out = ok(&b, &["consume", &t, "--group", &g, "--max-messages", "4"], None);
    assert_eq!(sorted(&out), ["c", "d", "f", "g"]);

    let out = ok(&b, &["group", "delete", &g, "--topic", &t], None);
    assert_eq!(out, format!("Deleted the offsets of consumer group {g} for topic {t}.\n"));
    assert_eq!(lines(&ok(&b, &["group", "describe", &g], None)).len(), 2, "no offsets left");
    assert_eq!(ok(&b, &["group", "delete", &g], None), format!("Deleted consumer group {g}.\n"));
    assert!(!lines(&ok(&b, &["group", "list"], None)).contains(&g));
    let describe = args(&["group", "describe", &g]);
    fails(
        &describe.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
        1,
        &format!("consumer group {g} does not exist"),
    );
}

/// Two `consume --group` processes share a topic: the leader's range
/// assignment gives each two of the four partitions, every record is read
/// once, and both leave cleanly on Ctrl-C.
#[test]
fn group_members_share_partitions() {
    let b = Broker::start_with(&["group.initial.rebalance.delay.ms=0"], 2);
    let t = unique_name("shared");
    let g = unique_name("sharing");
    ok(&b, &["topic", "create", &t, "--partitions", "4"], None);
    let bootstrap = b.bootstrap();
    let member = || {
        Background::start(
            &["consume", &t, "--group", &g, "--from-beginning", "--bootstrap-server", &bootstrap].map(String::from),
        )
    };
    let (m1, m2) = (member(), member());
    let cols = |line: &str| line.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    loop {
        // The members may not have joined yet: the group does not exist.
        let out = sluice(&["group", "describe", &g, "--bootstrap-server", &bootstrap], None);
        let d = stdout(&out);
        assert!(
            out.status.success() || stderr(&out).contains("does not exist"),
            "sluice group describe: {}",
            stderr(&out)
        );
        let rows: Vec<Vec<String>> = d.lines().skip(2).map(cols).collect();
        let owners: BTreeSet<&String> = rows.iter().map(|r| &r[6]).collect();
        if d.starts_with(&format!("Consumer group '{g}': state Stable, 2 members."))
            && rows.len() == 4
            && owners.len() == 2
        {
            // Range: the first member (by id) gets partitions 0 and 1.
            assert_eq!(rows.iter().map(|r| r[2].as_str()).collect::<Vec<_>>(), ["0", "1", "2", "3"], "{d}");
            assert_eq!(rows[0][6], rows[1][6], "{d}");
            assert_eq!(rows[2][6], rows[3][6], "{d}");
            assert!(rows[0][6] < rows[2][6], "{d}");
            break;
        }
        assert!(Instant::now() < deadline, "the two members never settled:\n{d}");
        thread::sleep(Duration::from_millis(100));
    }
    let input: String = (0..40).map(|i| format!("k{i}:v{i}\n")).collect();
    ok(&b, &["produce", &t, "--key-separator", ":"], Some(&input));
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while m1.stdout().lines().count() + m2.stdout().lines().count() < 40 {
        assert!(Instant::now() < deadline, "not all records were read:\n{}\n--\n{}", m1.stdout(), m2.stdout());
        thread::sleep(Duration::from_millis(20));
    }
    let (s1, out1, e1) = m1.interrupt();
    let (s2, out2, e2) = m2.interrupt();
    assert!(s1.success() && s2.success(), "{e1}\n{e2}");
    assert!(!out1.is_empty() && !out2.is_empty(), "both members read: {out1:?} {out2:?}");
    let mut all: Vec<String> = out1.lines().chain(out2.lines()).map(str::to_string).collect();
    all.sort();
    let mut want: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(all, want, "every record once");
    let d = ok(&b, &["group", "describe", &g], None);
    assert!(d.starts_with(&format!("Consumer group '{g}': state Empty, 0 members.")), "{d}");
    let lag: Vec<String> = d.lines().skip(2).map(|l| cols(l)[5].clone()).collect();
    assert_eq!(lag, ["0", "0", "0", "0"], "{d}");
}

/// Interoperability with librdkafka (kcat): what kcat writes (compressed,
/// keyed, with headers) the CLI reads, what the CLI writes kcat reads, and
/// keyed records land on the partitions librdkafka's Java-compatible
/// partitioner (murmur2) picks.
#[test]
fn kcat_interop() {
    let b = Broker::start();
    let bs = b.bootstrap();
    let from_kcat = unique_name("from-kcat");
    ok(&b, &["topic", "create", &from_kcat, "--partitions", "3"], None);
    let input: String = (0..30).map(|i| format!("key-{i}:value-{i}\n")).collect();
    let out = common::kcat(
        &[
            "-b",
            &bs,
            "-P",
            "-t",
            &from_kcat,
            "-K:",
            "-z",
            "lz4",
            "-H",
            "origin=kcat",
            "-X",
            "partitioner=murmur2_random",
        ],
        input.as_bytes(),
    );
    common::expect_success(&out, "kcat -P");
    let json = ok(&b, &["consume", &from_kcat, "--from-beginning", "--max-messages", "30", "--format", "json"], None);
    let mut kcat_partition = std::collections::BTreeMap::new();
    for l in json.lines() {
        let r = Json::parse(l).expect("JSON");
        let key = r.get("key").as_str().to_string();
        assert_eq!(r.get("value").as_str(), key.replace("key", "value"));
        assert_eq!(r.get("headers").get("origin").as_str(), "kcat");
        kcat_partition.insert(key, r.get("partition").as_i64());
    }
    assert_eq!(kcat_partition.len(), 30);

    // The same keys through the CLI land on the same partitions.
    let from_cli = unique_name("from-cli");
    ok(&b, &["topic", "create", &from_cli, "--partitions", "3"], None);
    ok(
        &b,
        &["produce", &from_cli, "--key-separator", ":", "--header", "origin=cli", "--compression", "zstd"],
        Some(&input),
    );
    let out = common::kcat(&["-b", &bs, "-C", "-t", &from_cli, "-e", "-o", "beginning", "-f", "%p %k %s %h\n"], b"");
    common::expect_success(&out, "kcat -C");
    let text = stdout(&out);
    let mut seen = 0;
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f.len(), 4, "{l}");
        assert_eq!(f[2], f[1].replace("key", "value"));
        assert_eq!(f[3], "origin=cli");
        assert_eq!(Some(&f[0].parse::<i64>().expect("partition")), kcat_partition.get(f[1]), "partition of {}", f[1]);
        seen += 1;
    }
    assert_eq!(seen, 30, "{text}");
}

#[test]
fn cluster_info() {
    let b = Broker::start();
    let out = ok(&b, &["cluster", "info"], None);
    let l = lines(&out);
    assert_eq!(l.len(), 6, "{out}");
    assert!(l[0].starts_with("Cluster ID: ") && l[0].len() > "Cluster ID: ".len(), "{out}");
    assert_eq!(l[1], "Controller: 1");
    assert_eq!(l[2], "Brokers:");
    assert_eq!(l[3], format!("  1  {}  (controller)", b.bootstrap()));
    // A broker on its own is a quorum of one.
    assert!(l[4].starts_with("Quorum leader: 1 (epoch "), "{out}");
    assert_eq!(l[5], "Quorum voters: 1");
}

/// Broker unreachable, unknown topic, bad config key, bad flags: one line,
/// non-zero exit, never a panic.
#[test]
fn errors() {
    // Nothing listens on a port that was free a moment ago.
    let dead = format!("127.0.0.1:{}", free_port());
    let want = format!("error: broker {dead} unreachable: Connection refused");
    for args in [
        vec!["topic", "list"],
        vec!["topic", "create", "x"],
        vec!["produce", "x"],
        vec!["consume", "x"],
        vec!["group", "list"],
        vec!["cluster", "info"],
    ] {
        let mut a = args.clone();
        a.extend(["--bootstrap-server", &dead]);
        assert_eq!(fails(&a, Some("v\n"), 1, "unreachable"), want);
    }

    let b = Broker::start();
    let bs = b.bootstrap();
    let with = |a: &[&str]| {
        let mut v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        v.extend(["--bootstrap-server".to_string(), bs.clone()]);
        v
    };
    let check = |a: &[&str], stdin: Option<&str>, code: i32, want: &str| {
        let v = with(a);
        fails(&v.iter().map(String::as_str).collect::<Vec<_>>(), stdin, code, want)
    };
    // Unknown topic: no command creates it as a side effect.
    assert_eq!(check(&["produce", "missing"], Some("v\n"), 1, ""), "error: unknown topic missing");
    assert_eq!(check(&["consume", "missing"], None, 1, ""), "error: unknown topic missing");
    assert_eq!(check(&["topic", "describe", "missing"], None, 1, ""), "error: unknown topic missing");
    assert_eq!(check(&["topic", "delete", "missing"], None, 1, ""), "error: unknown topic missing");
    check(&["topic", "alter-config", "missing", "--config", "retention.ms=1"], None, 1, "unknown topic missing");
    check(&["topic", "add-partitions", "missing", "--partitions", "3"], None, 1, "unknown topic missing");
    assert!(!ok(&b, &["topic", "list"], None).contains("missing"));

    // Bad config key, on create and on alter.
    assert_eq!(
        check(&["topic", "create", "t", "--config", "no.such.key=1"], None, 1, ""),
        "error: creating topic t: Unknown topic config name: no.such.key (INVALID_CONFIG)"
    );
    ok(&b, &["topic", "create", "t", "--partitions", "2"], None);
    check(
        &["topic", "alter-config", "t", "--config", "no.such.key=1"],
        None,
        1,
        "Unknown topic config name: no.such.key",
    );
    check(&["topic", "create", "t"], None, 1, "topic t already exists");
    check(&["topic", "add-partitions", "t", "--partitions", "1"], None, 1, "INVALID_PARTITIONS");
    check(&["produce", "t", "--partition", "7"], Some("v\n"), 1, "topic t has no partition 7");
    check(&["consume", "t", "--partition", "7"], None, 1, "topic t has no partition 7");
    check(&["produce", "t", "--key-separator", ":"], Some("k:v\nno separator\n"), 1, "line 2 has no key separator");
    check(&["consume", "t", "--partition", "0", "--offset", "99"], None, 1, "offset 99 is out of range for t-0");
    check(&["group", "describe", "nobody"], None, 1, "consumer group nobody does not exist");
    check(&["group", "delete", "nobody"], None, 1, "consumer group nobody does not exist");

    // Bad flags: exit 2, as clap's own usage errors.
    check(&["topic", "create", "t", "--config", "novalue"], None, 2, "expected KEY=VALUE");
    check(&["consume", "t", "--offset", "5"], None, 2, "--offset with a number needs --partition");
    check(&["consume", "t", "--offset", "soon", "--partition", "0"], None, 2, "expected earliest, latest");
    check(&["produce", "t", "--acks", "2"], None, 2, "expected all, -1, 0 or 1");
    check(&["produce", "t", "--compression", "brotli"], None, 2, "brotli");
    check(&["consume", "t", "--group", "g", "--partition", "0"], None, 2, "cannot be used with");
    check(&["topic", "frobnicate"], None, 2, "unrecognized subcommand");
    check(&["group", "reset-offsets", "g", "--topic", "t"], None, 2, "needs one of --to-earliest");
    let out = sluice(&["topic", "create"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));

    // A produce that fails at the broker: a record over max.message.bytes.
    ok(&b, &["topic", "create", "small", "--config", "max.message.bytes=100"], None);
    let big = format!("{}\n", "x".repeat(1000));
    check(&["produce", "small"], Some(&big), 1, "MESSAGE_TOO_LARGE");
}
