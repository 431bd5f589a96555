//! Integration-test harness: starts a real `sluice` broker on a free loopback
//! port in a fresh temp dir, and runs real Kafka clients against it (the
//! scripts in tests/clients/, kcat).
//!
//! Nothing is shared between tests: each `Broker` has its own port, data dir
//! and log, so the tests of a file run in parallel. Every wait is bounded.
//!
//! The Java programs in tests/java/ are compiled with javac against the
//! Java client's jars on first use (`java(...)`).
//!
//! The clients are installed by `scripts/test-deps.sh` under
//! `$SLUICE_TEST_CACHE` (default `$HOME/.cache/sluice-test`); a missing client
//! fails the test (it is never skipped).
//!
//! Environment knobs (all optional):
//! - `SLUICE_TEST_EXTERNAL_BOOTSTRAP=HOST:PORT`: use an already running
//!   broker instead of starting `sluice` (to check the client scripts against
//!   another Kafka-compatible broker). Config lines are ignored then, and
//!   tests that stop or restart the broker panic.
//! - `SLUICE_TEST_BROKER_BIN=PATH`: run this binary instead of the `sluice`
//!   that cargo built (same command line).
//! - `SLUICE_TEST_BROKER=kafka`: start Apache Kafka (single-node KRaft, the
//!   jars test-deps.sh installs) instead of Sluice: the reference broker the
//!   client tests must pass against too (kafka_broker.rs).
//! - `SLUICE_TEST_KEEP=1`: keep each broker's temp dir (data and log).
//! - `SLUICE_TEST_JAVA_LOG=info|debug|...`: the Java client's log level
//!   (stderr; default warn).
#![allow(dead_code)]

pub mod cluster;
pub mod go;
pub mod idem;
pub mod json;
pub mod kafka_broker;
pub mod kafka_tools;
pub mod records;

pub use json::Json;
#[allow(unused_imports)]
pub use kafka_broker::{broker_name, reference_kafka, sluice_only};
pub use records::Rec;

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a broker may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a broker may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one client run may take before it is killed.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

const EXTERNAL_ENV: &str = "SLUICE_TEST_EXTERNAL_BOOTSTRAP";

/// A `sluice serve` process owned by one test. Dropping it SIGKILLs and
/// reaps the process (also when the test panics) and removes its temp dir.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    dir: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    log_path: PathBuf,
    config_path: Option<PathBuf>,
    cores: usize,
    starts: usize,
    external: Option<String>,
    /// Apache Kafka instead of Sluice: its controller listener's port.
    kafka_controller_port: Option<u16>,
    /// `--listeners` when not just PLAINTEXT on `port` (a cluster node).
    listeners: Option<String>,
    /// The log's length when the current process was spawned.
    log_mark: u64,
}

enum StartError {
    Exited(ExitStatus),
    TimedOut,
}

impl Broker {
    /// A broker with default settings and 2 shards.
    pub fn start() -> Broker {
        Broker::start_with(&[], 2)
    }

    /// A broker whose `--config` file holds `config_lines` (Kafka-style
    /// properties, e.g. `"num.partitions=3"`; none means no `--config`),
    /// running `cores` shards.
    pub fn start_with(config_lines: &[&str], cores: usize) -> Broker {
        let dir = tempfile::Builder::new().prefix("sluice-test-").tempdir().expect("creating a temp dir");
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("broker.log");
        if let Ok(ext) = std::env::var(EXTERNAL_ENV) {
            let port =
                ext.rsplit(':').next().and_then(|p| p.parse().ok()).expect("SLUICE_TEST_EXTERNAL_BOOTSTRAP=HOST:PORT");
            eprintln!("sluice-test: using the external broker at {ext}; config {config_lines:?} not applied");
            return Broker {
                child: None,
                port,
                dir: Some(dir),
                data_dir,
                log_path,
                config_path: None,
                cores,
                starts: 0,
                external: Some(ext),
                kafka_controller_port: None,
                listeners: None,
                log_mark: 0,
            };
        }
        let kafka = reference_kafka();
        let config_path = if kafka {
            Some(dir.path().join("server.properties"))
        } else if config_lines.is_empty() {
            None
        } else {
            let path = dir.path().join("broker.properties");
            let mut text = config_lines.join("\n");
            text.push('\n');
            fs::write(&path, text).expect("writing the broker config");
            Some(path)
        };
        let mut broker = Broker {
            child: None,
            port: 0,
            dir: Some(dir),
            data_dir,
            log_path,
            config_path,
            cores,
            starts: 0,
            external: None,
            kafka_controller_port: None,
            listeners: None,
            log_mark: 0,
        };
        let kafka_lines: Vec<String> = config_lines.iter().map(|l| l.to_string()).collect();
        // A port picked free can be taken by another test before the broker
        // binds it: then the broker exits at once, and we try another port.
        for attempt in 1..=3 {
            broker.port = free_port();
            if kafka {
                let controller = free_port();
                broker.kafka_controller_port = Some(controller);
                let lines: Vec<&str> = kafka_lines.iter().map(String::as_str).collect();
                let cfg = broker.config_path.clone().expect("Kafka's config path");
                kafka_broker::write_config(&cfg, broker.port, controller, &broker.data_dir, &lines);
                if attempt == 1 {
                    kafka_broker::format_storage(broker.dir.as_ref().expect("temp dir").path(), &cfg);
                }
            }
            broker.spawn();
            match broker.wait_ready() {
                Ok(()) => return broker,
                Err(StartError::Exited(status)) if attempt < 3 && broker.log_says_port_in_use() => {
                    eprintln!("sluice-test: port {} was taken ({status}); retrying", broker.port);
                    broker.child = None;
                }
                Err(e) => broker.start_failed(e),
            }
        }
        unreachable!()
    }

    /// A node of a cluster, started but not waited for (a KRaft node may
    /// wait for the quorum before it serves, so all are started first; then
    /// `wait_started`). Its ports are fixed in advance (the other nodes'
    /// configs name them): `listeners` is its `--listeners`. No retry on
    /// another port: a taken port fails the start. With
    /// `SLUICE_TEST_BROKER=kafka` it is an Apache Kafka node with the same
    /// settings, its storage formatted with the cluster's `kafka_cluster_id`.
    pub fn spawn_node(
        port: u16,
        controller_port: u16,
        listeners: &str,
        config_lines: &[&str],
        cores: usize,
        kafka_cluster_id: &str,
    ) -> Broker {
        let dir = tempfile::Builder::new().prefix("sluice-node-").tempdir().expect("creating a temp dir");
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("broker.log");
        let kafka = reference_kafka();
        let path = dir.path().join(if kafka { "server.properties" } else { "broker.properties" });
        if kafka {
            kafka_broker::write_config(&path, port, controller_port, &data_dir, config_lines);
            kafka_broker::format_storage_with_id(dir.path(), &path, kafka_cluster_id);
        } else {
            fs::write(&path, format!("{}\n", config_lines.join("\n"))).expect("writing the broker config");
        }
        let mut broker = Broker {
            child: None,
            port,
            dir: Some(dir),
            data_dir,
            log_path,
            config_path: Some(path),
            cores,
            starts: 0,
            external: None,
            kafka_controller_port: kafka.then_some(controller_port),
            listeners: Some(listeners.to_string()),
            log_mark: 0,
        };
        broker.spawn();
        broker
    }

    /// Waits until a node from `spawn_node` serves.
    pub fn wait_started(&mut self) {
        if let Err(e) = self.wait_ready() {
            self.start_failed(e);
        }
    }

    /// SIGSTOPs (`true`) or SIGCONTs (`false`) the process.
    pub fn pause(&mut self, stop: bool) {
        self.no_external("pause");
        let pid = self.pid() as i32;
        let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: signals a child this harness spawned and has not reaped.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig})");
    }

    /// "127.0.0.1:PORT".
    pub fn bootstrap(&self) -> String {
        match &self.external {
            Some(ext) => ext.clone(),
            None => format!("127.0.0.1:{}", self.port),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        self.bootstrap().parse().expect("bootstrap address")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn is_external(&self) -> bool {
        self.external.is_some()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the broker is not running").id()
    }

    /// Whether the process is still running (an external broker: always).
    pub fn is_running(&mut self) -> bool {
        if self.external.is_some() {
            return true;
        }
        match self.child.as_mut() {
            None => false,
            Some(c) => matches!(c.try_wait(), Ok(None)),
        }
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn sigterm_and_wait(&mut self) -> ExitStatus {
        self.no_external("sigterm_and_wait");
        let mut child = self.child.take().expect("sigterm_and_wait: the broker is not running");
        let pid = child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed: {}", std::io::Error::last_os_error());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the broker") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the broker did not exit within {STOP_TIMEOUT:?} of SIGTERM; log tail:\n{}", self.log_tail());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill9(&mut self) {
        self.no_external("kill9");
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port, data dir and config, and
    /// waits until it listens. The previous process must have been stopped.
    pub fn restart(&mut self) {
        self.no_external("restart");
        if self.is_running() {
            panic!("restart: the broker is still running; stop it first (sigterm_and_wait or kill9)");
        }
        self.child = None;
        // A killed broker's listening socket can outlive the process for a
        // moment (io_uring tears its ring down asynchronously, holding the
        // socket): retry the same port a bounded number of times.
        for attempt in 1..=20 {
            let before = fs::metadata(&self.log_path).map(|m| m.len()).unwrap_or(0);
            self.spawn();
            match self.wait_ready() {
                Ok(()) => return,
                Err(StartError::Exited(_)) if attempt < 20 && self.log_since_says_port_in_use(before) => {
                    self.child = None;
                    thread::sleep(Duration::from_millis(250));
                }
                Err(e) => self.start_failed(e),
            }
        }
    }

    fn log_since_says_port_in_use(&self, from: u64) -> bool {
        let log = fs::read(&self.log_path).unwrap_or_default();
        let tail = String::from_utf8_lossy(log.get(from as usize..).unwrap_or_default()).to_lowercase();
        tail.contains("address already in use") || tail.contains("addrinuse")
    }

    /// The last lines of the broker's log (stderr and stdout, all starts).
    pub fn log_tail(&self) -> String {
        tail_lines(&fs::read(&self.log_path).unwrap_or_default(), 80)
    }

    fn no_external(&self, what: &str) {
        if let Some(ext) = &self.external {
            panic!("{what}: not possible with the external broker {ext} ({EXTERNAL_ENV})");
        }
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let mut log =
            OpenOptions::new().create(true).append(true).open(&self.log_path).expect("opening the broker log");
        writeln!(log, "=== sluice-test: start #{} on 127.0.0.1:{} ===", self.starts, self.port)
            .expect("writing the log");
        self.log_mark = fs::metadata(&self.log_path).map(|m| m.len()).unwrap_or(0);
        let mut cmd = if self.kafka_controller_port.is_some() {
            let dir = self.dir.as_ref().expect("temp dir").path().to_path_buf();
            let cfg = self.config_path.clone().expect("Kafka's config path");
            kafka_broker::server_command(&dir, &cfg)
        } else {
            self.sluice_command()
        };
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .env_remove("SLUICE_DATA_DIR")
            .env_remove("SLUICE_LISTENERS")
            .env_remove("SLUICE_CORES");
        die_with_parent(&mut cmd);
        let what = if self.kafka_controller_port.is_some() { PathBuf::from("java kafka.Kafka") } else { broker_bin() };
        self.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("spawning {}: {e}", what.display())));
    }

    fn sluice_command(&self) -> Command {
        let mut cmd = Command::new(broker_bin());
        cmd.arg("serve")
            .arg("--listeners")
            .arg(self.listeners.clone().unwrap_or_else(|| format!("PLAINTEXT://127.0.0.1:{}", self.port)))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--cores")
            .arg(self.cores.to_string());
        if let Some(cfg) = &self.config_path {
            cmd.arg("--config").arg(cfg);
        }
        cmd
    }

    fn wait_ready(&mut self) -> Result<(), StartError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let kafka = self.kafka_controller_port.is_some();
        let deadline = Instant::now() + if kafka { kafka_broker::KAFKA_START_TIMEOUT } else { START_TIMEOUT };
        // Kafka listens before it serves: wait for its "started" line of this
        // start (which may come before this wait begins: a cluster's nodes
        // are all spawned first).
        let log_from = self.log_mark;
        let log_path = self.log_path.clone();
        let kafka_started = move || {
            !kafka || {
                let log = fs::read(&log_path).unwrap_or_default();
                kafka_broker::started(&String::from_utf8_lossy(log.get(log_from as usize..).unwrap_or_default()))
            }
        };
        let child = self.child.as_mut().expect("spawned");
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the broker") {
                self.child = None;
                return Err(StartError::Exited(status));
            }
            // The listening socket must be our process's, not another test's
            // that took the port.
            if listens_on(child.id(), self.port)
                && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
                && kafka_started()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StartError::TimedOut);
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    fn log_says_port_in_use(&self) -> bool {
        let log = String::from_utf8_lossy(&fs::read(&self.log_path).unwrap_or_default()).to_lowercase();
        log.contains("address already in use") || log.contains("addrinuse")
    }

    fn start_failed(&mut self, e: StartError) -> ! {
        let why = match e {
            StartError::Exited(status) => format!("exited during start-up ({status})"),
            StartError::TimedOut => format!("was not listening on 127.0.0.1:{} after {START_TIMEOUT:?}", self.port),
        };
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut hint = String::new();
        if self.log_says_port_in_use() {
            hint = format!(
                "\nsockets on port {} now (from /proc/net/tcp):\n{}\n(TIME_WAIT sockets left by the previous process block \
                 the port unless its listener had SO_REUSEADDR)",
                self.port,
                sockets_on_port(self.port)
            );
        }
        panic!("the broker {why}; log tail:\n{}{hint}", self.log_tail());
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.external.is_none() && thread::panicking() {
            eprintln!("--- sluice broker log tail ({}) ---\n{}", self.log_path.display(), self.log_tail());
        }
        if std::env::var_os("SLUICE_TEST_KEEP").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("sluice-test: kept {}", dir.keep().display());
            }
        }
    }
}

/// The broker binary: `$SLUICE_TEST_BROKER_BIN`, or the `sluice` cargo built.
pub fn broker_bin() -> PathBuf {
    std::env::var_os("SLUICE_TEST_BROKER_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sluice")), PathBuf::from)
}

/// A loopback port that was free a moment ago, and not given before in
/// this process: a JVM binds its ports seconds after it was handed them,
/// and the kernel may hand the same port to a test running beside it
/// meanwhile (seen once: two Kafka nodes of two cluster tests on one port).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    for _ in 0..1000 {
        let l = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = l.local_addr().expect("local addr").port();
        if GIVEN.lock().unwrap().get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("no loopback port that was not given before in 1000 tries");
}

/// Whether process `pid` holds a socket listening on 127.0.0.1:`port` (or
/// 0.0.0.0:`port`). If /proc cannot be read, says yes.
fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(tcp) = fs::read_to_string("/proc/net/tcp") else { return true };
    // Java binds dual-stack sockets: 127.0.0.1 shows as an IPv4-mapped address in tcp6.
    let tcp6 = fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    let wanted = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
        format!("0000000000000000FFFF00000100007F:{port:04X}"),
        format!("00000000000000000000000000000000:{port:04X}"),
    ];
    let inodes: HashSet<&str> = tcp
        .lines()
        .skip(1)
        .chain(tcp6.lines().skip(1))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // local_address rem_address st ... inode is field 9
            (f.len() > 9 && wanted.iter().any(|w| w == f[1]) && f[3] == "0A").then_some(f[9])
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else { return true };
    fds.filter_map(|e| e.ok()).filter_map(|e| fs::read_link(e.path()).ok()).any(|target| {
        let t = target.to_string_lossy();
        t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')).is_some_and(|ino| inodes.contains(ino))
    })
}

/// The IPv4 TCP sockets whose local or remote port is `port`, one line each.
pub fn sockets_on_port(port: u16) -> String {
    const STATES: [&str; 12] = [
        "?",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
    ];
    let Ok(tcp) = fs::read_to_string("/proc/net/tcp") else { return "(no /proc/net/tcp)".into() };
    let addr = |a: &str| {
        let (ip, p) = a.split_once(':').unwrap_or((a, "0"));
        let ip = u32::from_str_radix(ip, 16).unwrap_or(0).to_le_bytes();
        (format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]), u16::from_str_radix(p, 16).unwrap_or(0))
    };
    tcp.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let ((lip, lp), (rip, rp)) = (addr(f.get(1)?), addr(f.get(2)?));
            let st = STATES.get(usize::from_str_radix(f.get(3)?, 16).ok()?).unwrap_or(&"?");
            (lp == port || rp == port).then(|| format!("  {lip}:{lp} -> {rip}:{rp} {st}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Children get SIGKILL if the test thread that started them dies (so a
/// killed `cargo test` leaves no broker or client behind).
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// The last `n` lines of `bytes`, and at most the last 8 KiB of them.
fn tail_lines(bytes: &[u8], n: usize) -> String {
    const MAX: usize = 8 << 10;
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(n)..].join("\n");
    if tail.len() <= MAX {
        return tail;
    }
    let mut start = tail.len() - MAX;
    while !tail.is_char_boundary(start) {
        start += 1;
    }
    format!("[...]{}", &tail[start..])
}

/// A name no other test (or earlier run against an external broker) uses.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{}-{nanos:x}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

// ---------------------------------------------------------------------------
// Running clients

/// Where scripts/test-deps.sh installs the clients.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SLUICE_TEST_CACHE") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").expect("HOME is not set");
    Path::new(&home).join(".cache/sluice-test")
}

pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("clients")
}

pub(crate) fn missing(what: &str, path: &Path) -> ! {
    panic!("{what} not found at {}: run scripts/test-deps.sh (it installs the test clients)", path.display())
}

pub fn venv_python() -> PathBuf {
    let py = cache_dir().join("venv/bin/python");
    if !py.exists() {
        missing("the test venv's python", &py);
    }
    py
}

pub fn node_modules() -> PathBuf {
    let nm = cache_dir().join("node/node_modules");
    if !nm.join("kafkajs/package.json").exists() {
        missing("kafkajs", &nm.join("kafkajs"));
    }
    nm
}

fn script_path(script: &str) -> PathBuf {
    let path = clients_dir().join(script);
    assert!(path.exists(), "no client script {}", path.display());
    path
}

pub fn python_cmd(script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(venv_python());
    cmd.arg(script_path(script)).args(args).env("PYTHONUNBUFFERED", "1").env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

/// Where scripts/test-deps.sh put kafka-clients and its run-time jars.
pub fn java_jars() -> PathBuf {
    let dir = cache_dir().join("jars");
    if !dir.join("kafka-clients-4.3.0.jar").exists() {
        missing("the Java client (kafka-clients-4.3.0.jar)", &dir.join("kafka-clients-4.3.0.jar"));
    }
    dir
}

/// The Java test programs' sources (and their log4j2.properties).
pub fn java_sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("java")
}

/// tests/java compiled (javac, no build tool) into a directory under cargo's
/// target tmpdir named by a hash of the sources and jars, so it is compiled
/// once per change and shared by every test; built in a temp dir and renamed
/// into place, so concurrent test processes never see half a build.
pub fn java_classes() -> PathBuf {
    static CLASSES: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CLASSES.get_or_init(compile_java).clone()
}

fn compile_java() -> PathBuf {
    use std::hash::{Hash, Hasher};
    let src = java_sources();
    let jars = java_jars();
    let javac = find_in_path("javac").unwrap_or_else(|| missing("javac (a JDK 17 or newer)", Path::new("$PATH")));
    let mut files: Vec<PathBuf> = fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("reading {}: {e}", src.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "java" || x == "properties"))
        .collect();
    files.sort();
    let mut jar_names: Vec<String> = fs::read_dir(&jars)
        .unwrap_or_else(|e| panic!("reading {}: {e}", jars.display()))
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".jar"))
        .collect();
    jar_names.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in &files {
        f.file_name().hash(&mut h);
        fs::read(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display())).hash(&mut h);
    }
    jar_names.hash(&mut h);
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sluice-java");
    let out = root.join(format!("{:016x}", h.finish()));
    if out.join(".complete").exists() {
        return out;
    }
    fs::create_dir_all(&root).unwrap_or_else(|e| panic!("creating {}: {e}", root.display()));
    let tmp = tempfile::Builder::new().prefix("build-").tempdir_in(&root).expect("a temp dir for javac");
    let sources: Vec<&PathBuf> = files.iter().filter(|p| p.extension().is_some_and(|x| x == "java")).collect();
    let mut cmd = Command::new(javac);
    cmd.args(["-Xlint:all", "--release", "17", "-encoding", "UTF-8", "-d"])
        .arg(tmp.path())
        .arg("-cp")
        .arg(jars.join("*"))
        .args(&sources);
    let out_javac = run(cmd, None, CLIENT_TIMEOUT, "javac tests/java/*.java");
    expect_success(&out_javac, "javac tests/java/*.java");
    for f in files.iter().filter(|p| p.extension().is_some_and(|x| x == "properties")) {
        fs::copy(f, tmp.path().join(f.file_name().expect("file name"))).expect("copying a resource");
    }
    fs::write(tmp.path().join(".complete"), b"").expect("writing the build marker");
    let built = tmp.keep();
    if fs::rename(&built, &out).is_err() {
        // Another test process finished the same build first.
        let _ = fs::remove_dir_all(&built);
        assert!(out.join(".complete").exists(), "could not move the Java build into {}", out.display());
    }
    out
}

pub fn java_cmd(class: &str, args: &[&str]) -> Command {
    let classes = java_classes();
    let java = find_in_path("java").unwrap_or_else(|| missing("java (a JDK 17 or newer)", Path::new("$PATH")));
    let mut cp = std::ffi::OsString::from(classes.as_os_str());
    cp.push(":");
    cp.push(java_jars().join("*"));
    let level = std::env::var("SLUICE_TEST_JAVA_LOG").unwrap_or_else(|_| "warn".into());
    let mut cmd = Command::new(java);
    // Small, quick-starting JVMs: several run at once on a 2-core machine.
    cmd.args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m"])
        .arg(format!("-Dsluice.log.level={level}"))
        .arg("-cp")
        .arg(cp)
        .arg(class)
        .args(args);
    cmd
}

fn node_cmd(script: &str, args: &[&str]) -> Command {
    let nm = node_modules();
    let mut cmd = Command::new("node");
    cmd.arg(script_path(script)).args(args).env("NODE_PATH", nm);
    cmd
}

/// Runs `tests/clients/<script>` with the test venv's python.
pub fn python(script: &str, args: &[&str]) -> Output {
    run(python_cmd(script, args), None, CLIENT_TIMEOUT, &format!("python {script} {}", args.join(" ")))
}

/// Runs `tests/java/<class>.java` (compiled on first use, see `java_classes`)
/// with the Java client's jars on the classpath.
pub fn java(class: &str, args: &[&str]) -> Output {
    run(java_cmd(class, args), None, CLIENT_TIMEOUT, &format!("java {class} {}", args.join(" ")))
}

/// Runs `tests/clients/<script>` with node, NODE_PATH at the cached node_modules.
pub fn node(script: &str, args: &[&str]) -> Output {
    run(node_cmd(script, args), None, CLIENT_TIMEOUT, &format!("node {script} {}", args.join(" ")))
}

/// Runs kcat with `stdin` as its input.
pub fn kcat(args: &[&str], stdin: &[u8]) -> Output {
    let path = find_in_path("kcat").unwrap_or_else(|| missing("kcat", Path::new("$PATH")));
    let mut cmd = Command::new(path);
    cmd.args(args);
    run(cmd, Some(stdin.to_vec()), CLIENT_TIMEOUT, &format!("kcat {}", args.join(" ")))
}

/// `python(...)`, which must exit 0; its stdout parsed as JSON.
pub fn python_json(script: &str, args: &[&str]) -> Json {
    let out = python(script, args);
    json_result(&out, &format!("python {script} {}", args.join(" ")))
}

/// `node(...)`, which must exit 0; its stdout parsed as JSON.
pub fn node_json(script: &str, args: &[&str]) -> Json {
    let out = node(script, args);
    json_result(&out, &format!("node {script} {}", args.join(" ")))
}

/// `java(...)`, which must exit 0; its stdout parsed as JSON.
pub fn java_json(class: &str, args: &[&str]) -> Json {
    let out = java(class, args);
    json_result(&out, &format!("java {class} {}", args.join(" ")))
}

/// Starts a Java program in the background (see `RunningClient`).
pub fn spawn_java(class: &str, args: &[&str]) -> RunningClient {
    RunningClient::spawn(java_cmd(class, args), None, CLIENT_TIMEOUT, &format!("java {class} {}", args.join(" ")))
}

/// Starts a node client in the background (see `RunningClient`).
pub fn spawn_node(script: &str, args: &[&str]) -> RunningClient {
    RunningClient::spawn(node_cmd(script, args), None, CLIENT_TIMEOUT, &format!("node {script} {}", args.join(" ")))
}

/// Starts a python client in the background (see `RunningClient`).
pub fn spawn_python(script: &str, args: &[&str]) -> RunningClient {
    RunningClient::spawn(python_cmd(script, args), None, CLIENT_TIMEOUT, &format!("python {script} {}", args.join(" ")))
}

/// Panics (showing stderr) unless the client exited 0.
pub fn expect_success(out: &Output, what: &str) {
    if !out.status.success() {
        panic!(
            "{what} failed ({}).\n--- stderr (tail) ---\n{}\n--- stdout (tail) ---\n{}",
            out.status,
            tail_lines(&out.stderr, 60),
            tail_lines(&out.stdout, 20)
        );
    }
}

/// The client's stdout as JSON, after `expect_success`.
pub fn json_result(out: &Output, what: &str) -> Json {
    expect_success(out, what);
    let text = String::from_utf8_lossy(&out.stdout);
    Json::parse(text.trim()).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not JSON ({e}):\n{}\n--- stderr ---\n{}",
            tail_lines(&out.stdout, 20),
            tail_lines(&out.stderr, 40)
        )
    })
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
}

/// Runs `cmd` to completion, killing it after `timeout` (then panics).
pub fn run(cmd: Command, stdin: Option<Vec<u8>>, timeout: Duration, what: &str) -> Output {
    RunningClient::spawn(cmd, stdin, timeout, what).wait()
}

/// A client process running in the background, its stdout and stderr
/// collected as they come. Dropping it kills the process.
pub struct RunningClient {
    child: Option<Child>,
    what: String,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    threads: Vec<JoinHandle<()>>,
    deadline: Instant,
}

impl RunningClient {
    pub fn spawn(mut cmd: Command, stdin: Option<Vec<u8>>, timeout: Duration, what: &str) -> RunningClient {
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        let mut threads = Vec::new();
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            threads.push(thread::spawn(move || {
                // The client may exit early (an error); it then gets EPIPE here.
                let _ = pipe.write_all(&input);
            }));
        }
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        threads.push(collect(child.stdout.take().expect("stdout pipe"), stdout.clone()));
        threads.push(collect(child.stderr.take().expect("stderr pipe"), stderr.clone()));
        RunningClient {
            child: Some(child),
            what: what.to_string(),
            stdout,
            stderr,
            threads,
            deadline: Instant::now() + timeout,
        }
    }

    /// The client's process id (while it runs).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the client was already reaped").id()
    }

    /// Whether the process has exited (without reaping its output).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(Some(_))) | None)
    }

    /// SIGKILLs the client (no clean shutdown: a crashed consumer) and
    /// returns what it printed until then.
    pub fn kill9(mut self) -> Output {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
        }
        self.wait()
    }

    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until `pred(stderr so far)` holds; false if the client exited
    /// or `timeout` passed first.
    pub fn wait_for_stderr(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.stderr_so_far()) {
                return true;
            }
            let exited = matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(Some(_))));
            if exited || Instant::now() > deadline {
                return pred(&self.stderr_so_far());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the client to exit (killing it at its deadline, then
    /// panicking) and returns what it printed.
    pub fn wait(mut self) -> Output {
        let mut child = self.child.take().expect("child");
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for a client") {
                break status;
            }
            if Instant::now() > self.deadline {
                let _ = child.kill();
                let _ = child.wait();
                for t in self.threads.drain(..) {
                    let _ = t.join();
                }
                panic!(
                    "{} did not finish in time and was killed.\n--- stderr (tail) ---\n{}\n--- stdout (tail) ---\n{}",
                    self.what,
                    tail_lines(&self.stderr.lock().unwrap(), 60),
                    tail_lines(&self.stdout.lock().unwrap(), 20)
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let stdout = std::mem::take(&mut *self.stdout.lock().unwrap());
        let stderr = std::mem::take(&mut *self.stderr.lock().unwrap());
        Output { status, stdout, stderr }
    }
}

impl Drop for RunningClient {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

// ---------------------------------------------------------------------------
// confluent-kafka (tests/clients/ck.py), used by several test files

/// Creates `topic` with `partitions` partitions (CreateTopics) and waits
/// until the metadata shows them with leaders.
pub fn ck_create(bootstrap: &str, topic: &str, partitions: u32) {
    python_json("ck.py", &["create", bootstrap, topic, &partitions.to_string()]);
}

/// What a `ck.py produce` run reported.
pub struct Produced {
    /// The acknowledged records, in send order.
    pub delivered: Vec<Rec>,
    /// (record index, error) of each failed delivery.
    pub failed: Vec<(i64, String)>,
}

pub fn ck_parse_produced(j: &Json) -> Produced {
    Produced {
        delivered: Rec::list(j.get("delivered")),
        failed: j
            .get("failed")
            .as_arr()
            .iter()
            .map(|f| (f.as_arr()[0].as_i64(), f.as_arr()[1].as_str().to_string()))
            .collect(),
    }
}

/// Produces `count` records (acks=all; `extra` adds ck.py options such as
/// `--compression lz4`), all of which must be acknowledged.
pub fn ck_produce(bootstrap: &str, topic: &str, count: usize, extra: &[&str]) -> Vec<Rec> {
    let mut args = vec!["produce", bootstrap, topic];
    let count = count.to_string();
    args.extend(["--count", &count]);
    args.extend_from_slice(extra);
    let p = ck_parse_produced(&python_json("ck.py", &args));
    assert!(p.failed.is_empty(), "deliveries failed: {:?}", &p.failed[..p.failed.len().min(5)]);
    p.delivered
}

/// What a `ck.py consume` run read.
pub struct Consumed {
    pub records: Vec<Rec>,
    /// Per partition: the low and high watermarks (ListOffsets) before reading.
    pub low: std::collections::BTreeMap<i32, i64>,
    pub high: std::collections::BTreeMap<i32, i64>,
}

/// Reads `topic` with assign() at explicit offsets (0 unless `extra` says
/// `--start P:OFF`) up to each partition's high watermark (or `--end P:OFF`).
pub fn ck_consume(bootstrap: &str, topic: &str, extra: &[&str]) -> Consumed {
    let mut args = vec!["consume", bootstrap, topic];
    args.extend_from_slice(extra);
    let j = python_json("ck.py", &args);
    let marks = |name: &str| {
        j.get(name).as_obj().iter().map(|(k, v)| (k.parse::<i32>().expect("partition"), v.as_i64())).collect()
    };
    Consumed { records: Rec::list(j.get("records")), low: marks("low"), high: marks("high") }
}

/// `--end P:OFF` options: read each partition at least up to its last
/// acknowledged offset + 1 (so a wrong high watermark cannot end a read early).
pub fn end_args(delivered: &[Rec]) -> Vec<String> {
    acked_ends(delivered).iter().flat_map(|(p, end)| ["--end".to_string(), format!("{p}:{end}")]).collect()
}

/// Per partition: the last acknowledged offset + 1.
pub fn acked_ends(delivered: &[Rec]) -> std::collections::BTreeMap<i32, i64> {
    let mut ends = std::collections::BTreeMap::new();
    for r in delivered {
        let e = ends.entry(r.partition).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    ends
}
