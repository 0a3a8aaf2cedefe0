//! Shared by the integration tests: the two real binaries, run as a user would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The events-dump binary under test.
pub fn dump_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_events-dump"))
}

/// The omni-writer binary, next to events-dump in the target directory. `cargo test
/// --workspace` and `cargo test -p omni-writer -p events-dump` build it; `cargo test -p
/// events-dump` alone does not, so it is built here once if missing.
pub fn writer_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dump = dump_bin();
            let dir = dump.parent().expect("the binary has a directory");
            let writer = dir.join(format!("omni-writer{}", std::env::consts::EXE_SUFFIX));
            if !writer.exists() {
                let mut build = Command::new(option_env!("CARGO").unwrap_or("cargo"));
                build.args(["build", "-p", "omni-writer"]);
                if dir.file_name().is_some_and(|n| n == "release") {
                    build.arg("--release");
                }
                let status = build.status().expect("running cargo build -p omni-writer");
                assert!(status.success(), "cargo build -p omni-writer failed");
            }
            writer
        })
        .clone()
}

/// Runs events-dump with `args`.
pub fn dump(args: &[&str]) -> Output {
    Command::new(dump_bin())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running events-dump")
}

/// Runs events-dump with `args`, which must succeed.
pub fn dump_ok(args: &[&str]) -> Output {
    let output = dump(args);
    assert!(
        output.status.success(),
        "events-dump {args:?}: {}",
        stderr(&output)
    );
    output
}

/// Runs omni-writer with `args` to its end.
pub fn writer(args: &[&str]) -> Output {
    Command::new(writer_bin())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running omni-writer")
}

/// Starts omni-writer with `args`, its output piped.
pub fn spawn_writer(args: &[&str]) -> Child {
    Command::new(writer_bin())
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting omni-writer")
}

/// Reads the child's stderr until the daemon says it started (its signal handlers are then
/// installed), and keeps draining it on a thread, whose handle returns everything read.
pub fn wait_started(child: &mut Child) -> std::thread::JoinHandle<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let drain = std::thread::Builder::new()
        .name("test-stderr".into())
        .spawn(move || {
            let mut all = String::new();
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("omni-writer started") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        })
        .expect("starting the stderr thread");
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the daemon did not start within 60 s");
    drain
}

/// Sends `signal` (`TERM`, `USR1`, ...) to `child` with kill(1).
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// Waits until `check` holds, for at most `timeout`.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// stdout's JSON Lines, each parsed.
pub fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// The one JSON object on stdout.
pub fn json_object(output: &Output) -> Value {
    let lines = json_lines(output);
    assert_eq!(
        lines.len(),
        1,
        "one JSON object expected: {}",
        stdout(output)
    );
    lines.into_iter().next().expect("one line")
}

/// `path` as a `&str` argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// The checkpoint files in a store's checkpoint directory.
pub fn checkpoints(store: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(store.join("checkpoints")) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "evlc"))
            .collect(),
        Err(_) => Vec::new(),
    }
}
