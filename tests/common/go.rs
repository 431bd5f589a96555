//! Go client programs (tests/go: `franz` for franz-go, `sarama` for IBM/sarama):
//! built once per change of their sources into cargo's target tmpdir, then
//! run like the other clients. The modules come from the cache that
//! scripts/test-deps.sh fills (`go mod download`); a test never downloads.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{cache_dir, expect_success, json_result, run, Json, RunningClient, CLIENT_TIMEOUT};

fn module() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("go")
}

/// The Go toolchain's environment: the test cache's module and build caches,
/// no network.
fn go_env(cmd: &mut Command) {
    let cache = cache_dir().join("go");
    cmd.env("GOMODCACHE", cache.join("mod"))
        .env("GOCACHE", cache.join("build"))
        .env("GOFLAGS", "-mod=readonly -modcacherw")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local");
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())).flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "go" || x == "mod" || x == "sum") {
            out.push(p);
        }
    }
}

/// The directory holding the built `franz` and `sarama` binaries.
pub fn go_bin_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(build).clone()
}

fn build() -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut files = Vec::new();
    sources(&module(), &mut files);
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in &files {
        f.strip_prefix(module()).unwrap_or(f).hash(&mut h);
        fs::read(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display())).hash(&mut h);
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sluice-go");
    let out = root.join(format!("{:016x}", h.finish()));
    if out.join(".complete").exists() {
        return out;
    }
    if !cache_dir().join("go/mod").exists() {
        super::missing("the Go module cache (franz-go, sarama)", &cache_dir().join("go/mod"));
    }
    fs::create_dir_all(&root).unwrap_or_else(|e| panic!("creating {}: {e}", root.display()));
    let tmp = tempfile::Builder::new().prefix("build-").tempdir_in(&root).expect("a temp dir for go build");
    let mut cmd = Command::new("go");
    cmd.current_dir(module()).arg("build").arg("-o").arg(tmp.path()).args(["./franz", "./sarama"]);
    go_env(&mut cmd);
    let built = run(cmd, None, std::time::Duration::from_secs(600), "go build ./franz ./sarama");
    expect_success(&built, "go build ./franz ./sarama (tests/go; scripts/test-deps.sh downloads the modules)");
    fs::write(tmp.path().join(".complete"), b"").expect("writing the build marker");
    let kept = tmp.keep();
    if fs::rename(&kept, &out).is_err() {
        // Another test process finished the same build first.
        let _ = fs::remove_dir_all(&kept);
        assert!(out.join(".complete").exists(), "could not move the Go build into {}", out.display());
    }
    out
}

fn go_cmd(program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(go_bin_dir().join(program));
    cmd.args(args);
    cmd
}

/// Runs tests/go/<program> to completion.
pub fn go(program: &str, args: &[&str]) -> Output {
    run(go_cmd(program, args), None, CLIENT_TIMEOUT, &format!("{program} {}", args.join(" ")))
}

/// `go(...)`, which must exit 0; its stdout parsed as JSON.
pub fn go_json(program: &str, args: &[&str]) -> Json {
    let out = go(program, args);
    json_result(&out, &format!("{program} {}", args.join(" ")))
}

/// Starts a Go program in the background (a group member).
pub fn spawn_go(program: &str, args: &[&str]) -> RunningClient {
    RunningClient::spawn(go_cmd(program, args), None, CLIENT_TIMEOUT, &format!("{program} {}", args.join(" ")))
}
