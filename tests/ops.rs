//! Operations: host tuning (`scripts/tune.sh`), deployment (`deploy/`), the
//! broker's start-up report, and shellcheck on every script.
//!
//! - `tune.sh --check` runs on this very host (as it is, and unprivileged)
//!   and must print its table and exit 0 whatever the host's settings;
//!   `--check --strict` exits 1 exactly when a row failed.
//! - `tune.sh --apply --dry-run` on this host lists the changes for the
//!   failing rows and changes nothing.
//! - `--apply`, its idempotence and `--revert` run against a fake host
//!   (`--root DIR` with a made-up /proc and /sys), never the real one.
//! - `deploy/install.sh --prefix` installs into a temp root, and
//!   `systemd-analyze verify --root` checks the unit there, warnings included.
//! - The broker logs cores, memory, memlock, io_uring and the data dir's
//!   filesystem before it starts, warns on tmpfs, and refuses to start when
//!   a seccomp filter makes io_uring_setup fail.
//!
//! Tools: bash, shellcheck, systemd-analyze (package systemd), findmnt and
//! setpriv (util-linux). A missing tool fails the test with its package name.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{broker_bin, free_port, run, RunningClient};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The path of `name` on PATH (also /usr/sbin and /sbin), or a panic that
/// names the Debian package to install.
fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: install the Debian package {package} (scripts/test-deps.sh does)"))
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn show(out: &Output) -> String {
    let (o, e) = text(out);
    format!("exit {}\n--- stdout ---\n{o}\n--- stderr ---\n{e}", out.status)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs scripts/tune.sh (from `dir`, default the repository) with `args`.
fn tune_in(dir: &Path, args: &[&str], as_nobody: bool) -> Output {
    let script = dir.join("scripts/tune.sh");
    let mut cmd = if as_nobody {
        let mut c = Command::new(tool("setpriv", "util-linux"));
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(tool("bash", "bash")).arg(&script);
        c
    } else {
        let mut c = Command::new(tool("bash", "bash"));
        c.arg(&script);
        c
    };
    cmd.args(args).current_dir(std::env::temp_dir());
    run(cmd, None, SCRIPT_TIMEOUT, &format!("tune.sh {}", args.join(" ")))
}

fn tune(args: &[&str]) -> Output {
    tune_in(&repo(), args, false)
}

/// A row of a `--check` table: the setting and its result (pass, FAIL, skip).
#[derive(Debug, Clone)]
struct Row {
    name: String,
    result: String,
}

/// Parses the table between the SETTING header and the summary line (its
/// columns start where the header's titles do), and checks that every row
/// has pass, FAIL or skip in the RESULT column.
fn table(stdout: &str) -> (Vec<Row>, String) {
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with("SETTING "));
    let header = lines.next().unwrap_or_else(|| panic!("no SETTING header in:\n{stdout}"));
    let col = |title: &str| header.find(title).unwrap_or_else(|| panic!("no {title} column in {header:?}"));
    let (current, result_at) = (col("CURRENT"), col("RESULT"));
    let mut rows = Vec::new();
    let mut summary = None;
    for line in lines {
        if line.starts_with("summary: ") {
            summary = Some(line.to_string());
            break;
        }
        if line.starts_with("    why: ") {
            continue;
        }
        let name = line.get(..current).unwrap_or(line).trim_end().to_string();
        let result = line.get(result_at..).and_then(|r| r.split_whitespace().next()).unwrap_or("");
        assert!(
            matches!(result, "pass" | "FAIL" | "skip") && !name.is_empty(),
            "row without pass/FAIL/skip in the RESULT column: {line:?}\n{stdout}"
        );
        rows.push(Row { name, result: result.to_string() });
    }
    let summary = summary.unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    (rows, summary)
}

/// The `key = value` settings of a kernel-tuning profile file.
fn profile_keys(file: &str) -> Vec<String> {
    let text = fs::read_to_string(repo().join("kernel-tuning").join(file)).expect("reading the profile");
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| l.split('=').next().unwrap().trim().to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// tune.sh on this host

#[test]
fn tune_check_prints_every_setting_and_exits_0() {
    let out = tune(&["--check", "--why"]);
    assert!(out.status.success(), "--check must exit 0 when it ran, whatever it found\n{}", show(&out));
    let (stdout, _) = text(&out);
    let (rows, summary) = table(&stdout);
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    // Every setting of the profile has its row (a skip where unreadable).
    for key in profile_keys("99-sluice.conf") {
        assert!(names.contains(&format!("sysctl {key}").as_str()), "no row for sysctl {key}:\n{stdout}");
    }
    let host_rows = [
        ("cpu.governor", "cpu governor"),
        ("clocksource", "clocksource"),
        ("irq.cpus", "irq"),
        ("mm.thp.enabled", "thp enabled"),
        ("mm.thp.defrag", "thp defrag"),
        ("limit.memlock", "limit memlock"),
        ("limit.nofile", "limit nofile"),
        ("block.scheduler", "block"),
        ("block.nr_requests", "block"),
        ("block.read_ahead_kb", "block"),
        ("block.rq_affinity", "block"),
    ];
    for key in profile_keys("host.conf") {
        let prefix = host_rows
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("host.conf has {key}, which this test does not know: add it to host_rows"))
            .1;
        assert!(names.iter().any(|n| n.starts_with(prefix)), "no row for {key} ({prefix}...):\n{stdout}");
    }
    for f in ["/etc/sysctl.d/99-sluice.conf", "/etc/udev/rules.d/60-sluice-block.rules"] {
        assert!(names.contains(&format!("file {f}").as_str()), "no row for {f}:\n{stdout}");
    }
    // The summary adds up, and --strict exits 1 exactly when a row failed.
    let count = |r: &str| rows.iter().filter(|row| row.result == r).count();
    let expected = format!(
        "summary: {} settings: {} pass, {} fail, {} skipped",
        rows.len(),
        count("pass"),
        count("FAIL"),
        count("skip")
    );
    assert!(summary.starts_with(&expected), "summary {summary:?} does not match the rows ({expected})");
    assert!(stdout.contains("    why: "), "--why printed no reasons:\n{stdout}");
    let strict = tune(&["--check", "--strict"]);
    let (strict_out, _) = text(&strict);
    let (strict_rows, _) = table(&strict_out);
    let failed = strict_rows.iter().any(|r| r.result == "FAIL");
    assert_eq!(strict.status.code(), Some(if failed { 1 } else { 0 }), "--strict exit status\n{}", show(&strict));
}

#[test]
fn tune_check_runs_unprivileged_and_apply_needs_root() {
    // A world-readable copy, so that nobody can run it wherever the
    // repository is checked out.
    let dir = tempfile::Builder::new().prefix("sluice-tune-").tempdir().expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for sub in ["scripts", "kernel-tuning"] {
        fs::create_dir(dir.path().join(sub)).unwrap();
        fs::set_permissions(dir.path().join(sub), fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::copy(repo().join("scripts/tune.sh"), dir.path().join("scripts/tune.sh")).unwrap();
    for f in ["99-sluice.conf", "host.conf", "60-sluice-block.rules", "99-sluice-limits.conf"] {
        fs::copy(repo().join("kernel-tuning").join(f), dir.path().join("kernel-tuning").join(f)).unwrap();
    }
    for f in walk(dir.path()) {
        fs::set_permissions(&f, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let as_nobody = is_root();
    let out = tune_in(dir.path(), &["--check"], as_nobody);
    assert!(out.status.success(), "unprivileged --check\n{}", show(&out));
    let (stdout, _) = text(&out);
    table(&stdout);
    if as_nobody {
        assert!(stdout.contains("uid 65534"), "not run as nobody:\n{stdout}");
    }
    let out = tune_in(dir.path(), &["--apply"], as_nobody);
    assert_eq!(out.status.code(), Some(1), "--apply without root must refuse\n{}", show(&out));
    assert!(text(&out).1.contains("needs root"), "{}", show(&out));
}

/// The /proc/sys values and boot-time files that `--apply` would change.
fn host_snapshot() -> Vec<(String, Option<String>)> {
    let mut paths: Vec<String> = profile_keys("99-sluice.conf")
        .iter()
        .map(|k| format!("/proc/sys/{}", k.replace('.', "/")))
        .chain(
            [
                "/sys/kernel/mm/transparent_hugepage/enabled",
                "/sys/kernel/mm/transparent_hugepage/defrag",
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
                "/etc/sysctl.d/99-sluice.conf",
                "/etc/udev/rules.d/60-sluice-block.rules",
                "/etc/security/limits.d/99-sluice.conf",
                "/var/lib/sluice-tune/saved.tsv",
            ]
            .map(String::from),
        )
        .collect();
    for dev in fs::read_dir("/sys/block").into_iter().flatten().flatten() {
        for attr in ["scheduler", "read_ahead_kb", "rq_affinity"] {
            paths.push(format!("{}/queue/{attr}", dev.path().display()));
        }
    }
    for irq in fs::read_dir("/proc/irq").into_iter().flatten().flatten() {
        paths.push(format!("{}/smp_affinity_list", irq.path().display()));
    }
    paths.into_iter().map(|p| (p.clone(), fs::read_to_string(&p).ok())).collect()
}

#[test]
fn tune_apply_dry_run_lists_the_changes_and_makes_none() {
    let check = tune(&["--check"]);
    assert!(check.status.success(), "{}", show(&check));
    let (check_out, _) = text(&check);
    let (rows, _) = table(&check_out);

    let before = host_snapshot();
    let out = tune(&["--apply", "--dry-run"]);
    let after = host_snapshot();
    assert!(out.status.success(), "--apply --dry-run\n{}", show(&out));
    let (stdout, _) = text(&out);
    for ((path, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "--dry-run changed {path}\n{stdout}");
    }
    // One planned change per failing row that --apply can fix, at least the
    // failing sysctls and the missing boot-time files.
    let would: Vec<&str> = stdout.lines().filter(|l| l.starts_with("  would ")).collect();
    if would.is_empty() {
        assert!(stdout.contains("nothing to change"), "no changes listed and no 'nothing to change':\n{stdout}");
    }
    for row in rows.iter().filter(|r| r.result == "FAIL") {
        if let Some(key) = row.name.strip_prefix("sysctl ") {
            let want = format!("  would set sysctl {key}: ");
            assert!(would.iter().any(|l| l.starts_with(&want)), "failing {key} is not in the dry run:\n{stdout}");
        }
        if let Some(file) = row.name.strip_prefix("file ") {
            let want = format!("  would install {file} ");
            assert!(would.iter().any(|l| l.starts_with(&want)), "missing {file} is not in the dry run:\n{stdout}");
        }
    }
}

// ---------------------------------------------------------------------------
// tune.sh --apply / --revert on a fake host

fn put(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, format!("{content}\n")).unwrap();
}

/// A made-up host: 4 CPUs at powersave, THP always, hpet, an NVMe disk with
/// mq-deadline and an 8 MiB read-ahead, a NIC whose IRQs all land on CPU 0,
/// a few sysctls off; the other sysctls do not exist (skipped).
fn fake_host(root: &Path) {
    put(root, "proc/sys/net/core/somaxconn", "128");
    put(root, "proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456");
    put(root, "proc/sys/vm/swappiness", "60");
    put(root, "proc/sys/fs/file-max", "9223372036854775807");
    put(root, "proc/sys/kernel/io_uring_disabled", "0");
    put(root, "sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never");
    put(root, "sys/kernel/mm/transparent_hugepage/defrag", "always defer defer+madvise [madvise] never");
    put(root, "sys/devices/system/cpu/online", "0-3");
    for c in 0..4 {
        put(root, &format!("sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor"), "powersave");
        put(
            root,
            &format!("sys/devices/system/cpu/cpu{c}/cpufreq/scaling_available_governors"),
            "performance powersave",
        );
    }
    put(root, "sys/devices/system/clocksource/clocksource0/current_clocksource", "hpet");
    put(root, "sys/devices/system/clocksource/clocksource0/available_clocksource", "tsc hpet acpi_pm");
    for (attr, v) in [
        ("scheduler", "[mq-deadline] kyber none"),
        ("rotational", "0"),
        ("nr_requests", "256"),
        ("read_ahead_kb", "8192"),
        ("rq_affinity", "1"),
    ] {
        put(root, &format!("sys/block/nvme0n1/queue/{attr}"), v);
    }
    // eth0 -> virtio2 on the PCI function 0000:00:03.0, whose MSI-X vectors are IRQs 40-42.
    let pci = "sys/devices/pci0000:00/0000:00:03.0";
    fs::create_dir_all(root.join(pci).join("virtio2/net/eth0")).unwrap();
    for irq in [40, 41, 42] {
        put(root, &format!("{pci}/msi_irqs/{irq}"), "msix");
        put(root, &format!("proc/irq/{irq}/smp_affinity_list"), "0-3");
        put(root, &format!("proc/irq/{irq}/effective_affinity_list"), "0");
    }
    std::os::unix::fs::symlink("../../../virtio2", root.join(pci).join("virtio2/net/eth0/device")).unwrap();
    fs::create_dir_all(root.join("sys/class/net")).unwrap();
    std::os::unix::fs::symlink(
        "../../devices/pci0000:00/0000:00:03.0/virtio2/net/eth0",
        root.join("sys/class/net/eth0"),
    )
    .unwrap();
    put(
        root,
        "proc/interrupts",
        "           CPU0       CPU1       CPU2       CPU3\n 40:  0 0 0 0  PCI-MSIX-0000:00:03.0 0-edge virtio2-config\n \
         41:  9 0 0 0  PCI-MSIX-0000:00:03.0 1-edge virtio2-input.0\n 42:  9 0 0 0  PCI-MSIX-0000:00:03.0 2-edge \
         virtio2-output.0",
    );
}

/// Every regular file under `root` with its content.
fn files(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out: Vec<_> =
        walk(root).into_iter().map(|p| (p.clone(), fs::read_to_string(&p).unwrap_or_default())).collect();
    out.sort();
    out
}

/// Regular files under `root`, not following symlinks.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

/// The active choice of a sysfs selector ("a [b] c" -> "b"), or the value.
fn selected(v: &str) -> String {
    let v = v.trim();
    match (v.find('['), v.find(']')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
        _ => v.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

fn fails(stdout: &str) -> BTreeSet<String> {
    table(stdout).0.into_iter().filter(|r| r.result == "FAIL").map(|r| r.name).collect()
}

#[test]
fn tune_apply_is_idempotent_and_revert_restores_a_fake_host() {
    let dir = tempfile::Builder::new().prefix("sluice-fakehost-").tempdir().expect("temp dir");
    let root = dir.path();
    fake_host(root);
    let r = root.to_str().unwrap();

    let check = tune(&["--root", r, "--check"]);
    assert!(check.status.success(), "{}", show(&check));
    let (out, _) = text(&check);
    let failing = fails(&out);
    for want in [
        "sysctl net.core.somaxconn",
        "sysctl net.ipv4.tcp_rmem",
        "sysctl vm.swappiness",
        "thp enabled",
        "cpu governor",
        "clocksource",
        "irq nic eth0 (2)",
        "block nvme0n1 scheduler",
        "block nvme0n1 nr_requests",
        "block nvme0n1 read_ahead_kb",
        "block nvme0n1 rq_affinity",
        "file /etc/sysctl.d/99-sluice.conf",
    ] {
        assert!(failing.contains(want), "{want} should fail on the fake host:\n{out}");
    }
    let rows = table(&out).0;
    let result = |name: &str| rows.iter().find(|r| r.name == name).map(|r| r.result.clone());
    assert_eq!(result("sysctl fs.file-max").as_deref(), Some("pass"), "{out}");
    assert_eq!(result("sysctl vm.dirty_ratio").as_deref(), Some("skip"), "absent here: skipped\n{out}");
    assert_eq!(tune(&["--root", r, "--check", "--strict"]).status.code(), Some(1));

    // --dry-run lists, changes nothing.
    let before = files(root);
    let dry = tune(&["--root", r, "--apply", "--dry-run"]);
    assert!(dry.status.success(), "{}", show(&dry));
    let (dry_out, _) = text(&dry);
    assert_eq!(before, files(root), "--dry-run changed the fake host:\n{dry_out}");
    for want in [
        "would set sysctl vm.swappiness: 60 -> 1",
        "would set sysctl net.ipv4.tcp_rmem: 4096 131072 6291456 -> 4096 131072 16777216",
        "would set nvme0n1 scheduler: mq-deadline -> none",
        "would set clocksource: hpet -> tsc",
        "would install ",
    ] {
        assert!(dry_out.contains(want), "dry run lacks {want:?}:\n{dry_out}");
    }

    // --apply fixes every failing row; the check passes in --strict.
    let apply = tune(&["--root", r, "--apply"]);
    assert!(apply.status.success(), "{}", show(&apply));
    let strict = tune(&["--root", r, "--check", "--strict"]);
    assert!(strict.status.success(), "after --apply every row should pass or skip\n{}", show(&strict));
    let read = |rel: &str| fs::read_to_string(root.join(rel)).unwrap();
    assert_eq!(selected(&read("proc/sys/vm/swappiness")), "1");
    assert_eq!(selected(&read("sys/block/nvme0n1/queue/scheduler")), "none");
    assert_eq!(selected(&read("proc/sys/net/core/somaxconn")), "4096");
    assert_eq!(
        read("etc/sysctl.d/99-sluice.conf"),
        fs::read_to_string(repo().join("kernel-tuning/99-sluice.conf")).unwrap()
    );
    let eth0_irqs: BTreeSet<String> =
        [41, 42].iter().map(|i| read(&format!("proc/irq/{i}/smp_affinity_list")).trim().to_string()).collect();
    assert_eq!(eth0_irqs.len(), 2, "eth0's two I/O interrupts should be on two CPUs: {eth0_irqs:?}");

    // A second --apply has nothing left to do and keeps the first saved values.
    let saved = read("var/lib/sluice-tune/saved.tsv");
    let again = tune(&["--root", r, "--apply"]);
    assert!(again.status.success(), "{}", show(&again));
    assert!(text(&again).0.contains("nothing to change"), "second --apply:\n{}", show(&again));
    assert_eq!(saved, read("var/lib/sluice-tune/saved.tsv"));

    // --revert puts every value back and forgets them.
    let revert = tune(&["--root", r, "--revert"]);
    assert!(revert.status.success(), "{}", show(&revert));
    for (path, old) in &before {
        let now = fs::read_to_string(path).unwrap_or_else(|e| panic!("{} after --revert: {e}", path.display()));
        assert_eq!(selected(&now), selected(old), "{} after --revert", path.display());
    }
    assert!(!root.join("etc/sysctl.d/99-sluice.conf").exists(), "--revert left the installed sysctl file");
    assert!(!root.join("var/lib/sluice-tune/saved.tsv").exists(), "--revert kept its record");
    assert_eq!(fails(&text(&tune(&["--root", r, "--check"])).0), failing, "the host after --revert");
    let nothing = tune(&["--root", r, "--revert"]);
    assert!(nothing.status.success() && text(&nothing).0.contains("nothing to revert"), "{}", show(&nothing));
}

// ---------------------------------------------------------------------------
// shellcheck

#[test]
fn shellcheck_passes_on_every_script() {
    let shellcheck = tool("shellcheck", "shellcheck");
    let mut scripts: Vec<PathBuf> = Vec::new();
    let mut stack = vec![repo()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("reading the repository").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                if !matches!(name.as_str(), ".git" | "target" | "node_modules" | "data" | "bench-data") {
                    stack.push(e.path());
                }
            } else if ft.is_file() && name.ends_with(".sh") {
                scripts.push(e.path());
            }
        }
    }
    scripts.push(repo().join(".ci/run"));
    scripts.sort();
    for must in ["scripts/tune.sh", "deploy/install.sh", "scripts/perf/flamegraph.sh"] {
        assert!(scripts.contains(&repo().join(must)), "{must} not found among {scripts:?}");
    }
    let mut cmd = Command::new(shellcheck);
    cmd.arg("--external-sources").args(&scripts).current_dir(repo());
    let out = run(cmd, None, SCRIPT_TIMEOUT, "shellcheck");
    assert!(out.status.success(), "shellcheck on {} scripts\n{}", scripts.len(), show(&out));
}

// ---------------------------------------------------------------------------
// deploy/

fn install(prefix: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(tool("bash", "bash"));
    cmd.arg(repo().join("deploy/install.sh")).arg("--prefix").arg(prefix).arg("--bin").arg(broker_bin()).args(extra);
    run(cmd, None, SCRIPT_TIMEOUT, "deploy/install.sh")
}

#[test]
fn install_sh_dry_run_touches_nothing_and_reinstall_keeps_the_config() {
    let dir = tempfile::Builder::new().prefix("sluice-install-").tempdir().expect("temp dir");
    let out = install(dir.path(), &["--dry-run"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(text(&out).0.contains("would: install"), "{}", show(&out));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "--dry-run wrote into the prefix");

    let out = install(dir.path(), &[]);
    assert!(out.status.success(), "{}", show(&out));
    let p = |rel: &str| dir.path().join(rel);
    let bin = fs::metadata(p("usr/local/bin/sluice")).expect("the binary is installed");
    assert_eq!(bin.permissions().mode() & 0o777, 0o755);
    assert!(p("var/lib/sluice/data").is_dir());
    assert!(p("etc/default/sluice").is_file());
    assert!(p("usr/local/share/sluice/tune.sh").is_file());
    assert!(p("usr/local/share/sluice/kernel-tuning/99-sluice.conf").is_file());
    assert_eq!(
        fs::read_to_string(p("etc/sluice/sluice.properties")).unwrap(),
        fs::read_to_string(repo().join("deploy/sluice.properties")).unwrap()
    );
    // An operator's edit survives a reinstall.
    fs::write(p("etc/sluice/sluice.properties"), "num.partitions=7\n").unwrap();
    let out = install(dir.path(), &[]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(text(&out).0.contains("kept: "), "{}", show(&out));
    assert_eq!(fs::read_to_string(p("etc/sluice/sluice.properties")).unwrap(), "num.partitions=7\n");
    // The installed tune.sh finds its profile.
    let mut cmd = Command::new(tool("bash", "bash"));
    cmd.arg(p("usr/local/share/sluice/tune.sh")).arg("--check");
    let out = run(cmd, None, SCRIPT_TIMEOUT, "installed tune.sh");
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let analyze = tool("systemd-analyze", "systemd");
    let dir = tempfile::Builder::new().prefix("sluice-unit-").tempdir().expect("temp dir");
    let root = dir.path();
    let out = install(root, &["--shard-cpus", "0"]);
    assert!(out.status.success(), "{}", show(&out));
    // verify --root resolves the unit's dependencies (sysinit.target,
    // network-online.target, ...) and ExecStart= inside the root: give it
    // the system's unit directory.
    let units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .map(Path::new)
        .into_iter()
        .find(|d| d.join("multi-user.target").exists())
        .expect("no /usr/lib/systemd/system/multi-user.target: install the Debian package systemd");
    let dest = root.join("usr/lib/systemd/system");
    fs::create_dir_all(&dest).unwrap();
    let mut cp = Command::new("cp");
    cp.arg("-a").arg(format!("{}/.", units.display())).arg(&dest);
    assert!(run(cp, None, SCRIPT_TIMEOUT, "cp units").status.success());

    let verify = |what: &str| {
        let mut cmd = Command::new(&analyze);
        cmd.arg("verify").arg(format!("--root={}", root.display())).arg("sluice.service");
        cmd.env("SYSTEMD_LOG_COLOR", "0");
        run(cmd, None, SCRIPT_TIMEOUT, what)
    };
    let out = verify("systemd-analyze verify");
    let (o, e) = text(&out);
    assert!(out.status.success(), "systemd-analyze verify failed\n{}", show(&out));
    // Unknown keys and bad values are only warnings (exit 0): none allowed.
    assert!(o.trim().is_empty() && e.trim().is_empty(), "systemd-analyze verify warned\n{}", show(&out));

    // And it does look at ExecStart= inside the root.
    fs::remove_file(root.join("usr/local/bin/sluice")).unwrap();
    let out = verify("systemd-analyze verify without the binary");
    assert!(!out.status.success(), "verify passed without /usr/local/bin/sluice in the root\n{}", show(&out));
}

/// The setting names `BrokerConfig::apply` matches, read from src/config.rs.
fn config_keys() -> BTreeSet<String> {
    let src = fs::read_to_string(repo().join("src/config.rs")).expect("src/config.rs");
    let start = src.find("pub fn apply(").expect("BrokerConfig::apply in src/config.rs");
    let end = start + src[start..].find("_ =>").expect("the catch-all arm of apply");
    let mut keys = BTreeSet::new();
    for line in src[start..end].lines() {
        let line = line.trim();
        let Some((pattern, _)) = line.split_once("=>") else { continue };
        if !pattern.starts_with('"') {
            continue;
        }
        for alt in pattern.split('|') {
            keys.insert(alt.trim().trim_matches('"').to_string());
        }
    }
    assert!(keys.len() > 20, "found too few settings in apply(): {keys:?}");
    keys
}

#[test]
fn sample_properties_document_every_setting() {
    let text = fs::read_to_string(repo().join("deploy/sluice.properties")).unwrap();
    let keys = config_keys();
    // Settings are `key=value` lines, or `#key=value` for optional ones and
    // alternative spellings; prose comments start with "# ".
    let mentioned: BTreeSet<String> = text
        .lines()
        .map(|l| l.strip_prefix('#').unwrap_or(l))
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.to_string())
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.'))
        .collect();
    let missing: Vec<_> = keys.difference(&mentioned).collect();
    assert!(missing.is_empty(), "deploy/sluice.properties does not document {missing:?}");
    let unknown: Vec<_> = mentioned.difference(&keys).collect();
    assert!(unknown.is_empty(), "deploy/sluice.properties names settings the broker ignores: {unknown:?}");
}

// ---------------------------------------------------------------------------
// The broker: sample config and start-up report

/// `sluice serve` on a free loopback port with `data_dir`, its stderr
/// collected; killed when dropped.
fn serve(data_dir: &Path, extra: &[&str], seccomp_no_io_uring: bool) -> RunningClient {
    let port = free_port();
    let mut cmd = Command::new(broker_bin());
    cmd.arg("serve")
        .arg("--listeners")
        .arg(format!("PLAINTEXT://127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--cores")
        .arg("1")
        .args(extra)
        .env("SLUICE_LOG", "info");
    for var in ["SLUICE_CONFIG", "SLUICE_DATA_DIR", "SLUICE_LISTENERS", "SLUICE_ADVERTISED_LISTENERS", "SLUICE_CORES"] {
        cmd.env_remove(var);
    }
    if seccomp_no_io_uring {
        deny_io_uring(&mut cmd);
    }
    RunningClient::spawn(cmd, None, BROKER_TIMEOUT, "sluice serve")
}

/// Makes io_uring_setup fail with EPERM in the child, as Docker's default
/// seccomp profile does: a classic-BPF seccomp filter installed between fork
/// and exec.
fn deny_io_uring(cmd: &mut Command) {
    // AUDIT_ARCH_* of linux/audit.h: the filter leaves other ABIs alone.
    let audit_arch: u32 = if cfg!(target_arch = "x86_64") {
        0xC000_003E
    } else if cfg!(target_arch = "aarch64") {
        0xC000_00B7
    } else {
        panic!("deny_io_uring: add this architecture's AUDIT_ARCH value")
    };
    let stmt = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let filter = [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4), // seccomp_data.arch
        jeq(audit_arch, 0, 3),                               // another ABI: allow
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0), // seccomp_data.nr
        jeq(libc::SYS_io_uring_setup as u32, 0, 1),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: only prctl between fork and exec; `filter` was built before the
    // fork and lives in the child's copy of this closure.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr() as *mut libc::sock_filter };
            let one: libc::c_ulong = 1;
            let mode = libc::SECCOMP_MODE_FILTER as libc::c_ulong;
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, one, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong)
                != 0
                || libc::prctl(libc::PR_SET_SECCOMP, mode, &prog as *const libc::sock_fprog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The filesystem type of `path` as util-linux's findmnt sees it.
fn fstype(path: &Path) -> String {
    let mut cmd = Command::new(tool("findmnt", "util-linux"));
    cmd.args(["-n", "-o", "FSTYPE", "-T"]).arg(path);
    let out = run(cmd, None, SCRIPT_TIMEOUT, "findmnt");
    assert!(out.status.success(), "{}", show(&out));
    text(&out).0.lines().next().unwrap_or("").trim().to_string()
}

const REPORT: [&str; 5] =
    ["host cores", "host memory", "host memlock", "host io_uring: available", "data dir filesystem"];

/// Waits until the broker logged "sluice starting" (after the report), and
/// returns its stderr.
fn wait_started(broker: &mut RunningClient) -> String {
    let started = broker.wait_for_stderr(BROKER_TIMEOUT, |s| s.contains("sluice starting"));
    let stderr = broker.stderr_so_far();
    assert!(started, "the broker did not log 'sluice starting' within {BROKER_TIMEOUT:?}; stderr:\n{stderr}");
    stderr
}

/// The line of `stderr` holding `what`.
fn line_with<'a>(stderr: &'a str, what: &str) -> &'a str {
    stderr.lines().find(|l| l.contains(what)).unwrap_or_else(|| panic!("no {what:?} line in the log:\n{stderr}"))
}

#[test]
fn broker_starts_with_the_sample_properties() {
    let dir = tempfile::Builder::new().prefix("sluice-sample-").tempdir().expect("temp dir");
    let config = repo().join("deploy/sluice.properties");
    let mut broker = serve(&dir.path().join("data"), &["--config", config.to_str().unwrap()], false);
    let stderr = wait_started(&mut broker);
    assert!(!stderr.contains("unknown setting"), "the sample config has settings the broker ignores:\n{stderr}");
    assert!(!stderr.contains(" ERROR "), "{stderr}");
}

#[test]
fn startup_report_tells_what_the_host_offers() {
    let dir = tempfile::Builder::new().prefix("sluice-report-").tempdir().expect("temp dir");
    // A data dir that does not exist yet: the report looks at its parent.
    let data = dir.path().join("not/yet/data");
    let mut broker = serve(&data, &[], false);
    let stderr = wait_started(&mut broker);
    let starting = stderr.find("sluice starting").unwrap();
    for what in REPORT {
        let at = stderr.find(what).unwrap_or_else(|| panic!("the start-up report lacks {what:?}:\n{stderr}"));
        assert!(at < starting, "{what:?} should come before 'sluice starting':\n{stderr}");
    }
    assert!(line_with(&stderr, "host cores").contains("shards=1"), "{stderr}");
    assert!(line_with(&stderr, "host memory").contains("total_mib="), "{stderr}");
    assert!(line_with(&stderr, "host memlock").contains("limit="), "{stderr}");
    let fs_line = line_with(&stderr, "data dir filesystem");
    let fs = fstype(dir.path());
    assert!(fs_line.contains(&format!("fs={fs}")), "findmnt says {fs}:\n{fs_line}");
    let warned = fs_line.contains(" WARN ");
    assert_eq!(warned, !matches!(fs.as_str(), "xfs" | "ext4"), "warning on {fs}:\n{fs_line}");
}

#[test]
fn startup_report_warns_when_the_data_dir_is_on_tmpfs() {
    let shm = Path::new("/dev/shm");
    assert_eq!(fstype(shm), "tmpfs", "this test needs /dev/shm to be a tmpfs");
    let dir = tempfile::Builder::new().prefix("sluice-tmpfs-").tempdir_in(shm).expect("temp dir in /dev/shm");
    let mut broker = serve(&dir.path().join("data"), &[], false);
    let stderr = wait_started(&mut broker);
    let fs_line = line_with(&stderr, "data dir filesystem");
    assert!(
        fs_line.contains(" WARN ") && fs_line.contains("not XFS or ext4") && fs_line.contains("fs=tmpfs"),
        "expected a warning about tmpfs:\n{stderr}"
    );
}

#[test]
fn refuses_to_start_without_io_uring() {
    let dir = tempfile::Builder::new().prefix("sluice-nouring-").tempdir().expect("temp dir");
    let broker = serve(&dir.path().join("data"), &[], true);
    let out = broker.wait();
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "the broker started without io_uring:\n{stderr}");
    assert!(stderr.contains("io_uring is unavailable"), "no clear message:\n{stderr}");
    assert!(stderr.contains("seccomp"), "the message should name the seccomp filter:\n{stderr}");
    assert!(!stderr.contains("sluice starting"), "it got as far as starting:\n{stderr}");
}
