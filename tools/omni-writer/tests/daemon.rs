//! The daemon binary, run as a user would: what it writes, restarts, signals, checkpoints and
//! bad arguments. The store is read back through the `eventlog` facade.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use eventlog::{EventLog, EventLogConfig, Position, RecordedEvent, verify_checkpoint};
use omni_domain::{Pipeline, RunStatus};
use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_omni-writer")
}

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running omni-writer")
}

fn spawn(args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting omni-writer")
}

/// Reads the child's stderr until the daemon says it started (its signal handlers are then
/// installed), and keeps draining it on a thread, whose handle returns everything read.
fn wait_started(child: &mut Child) -> std::thread::JoinHandle<String> {
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

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

fn summary(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "omni-writer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the summary is one JSON object")
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn open(store: &Path) -> EventLog {
    EventLog::open(EventLogConfig::new(store).registry(omni_domain::registry()))
        .expect("opening the store")
}

fn all_events(log: &EventLog) -> Vec<RecordedEvent> {
    log.read_log(Position(1), None)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// Everything the seed fixes: all but timestamps and positions (versions of shared cache
/// aggregates are compared separately).
fn fingerprint(log: &EventLog, event: &RecordedEvent) -> Value {
    let mut json = log.event_to_json(event).unwrap();
    let map = json.as_object_mut().unwrap();
    map.remove("timestamp");
    map.remove("position");
    if let Some(payload) = map.get_mut("payload").and_then(Value::as_object_mut) {
        payload.remove("started_at");
    }
    json
}

fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

fn checkpoint_files(store: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(store.join("checkpoints"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "evlc"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_seeded_run_writes_linked_events_and_sums_them_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = summary(&run(&[
        "--store",
        s(&store),
        "--pipelines",
        "6",
        "--seed",
        "7",
        "--json",
    ]));
    assert_eq!(out["simulated"], true);
    assert_eq!(out["pipelines"], 6);
    assert_eq!(out["first_pipeline"], 1);
    assert_eq!(out["last_pipeline"], 6);
    assert_eq!(out["durability"], "durable");
    assert_eq!(out["stopped_by"], "--pipelines reached");
    let events = out["events"].as_u64().unwrap();
    assert!(events > 6 * 10, "{events} events");
    assert_eq!(out["last_position"], events);
    assert_eq!(out["durable_position"], events);
    for field in ["events_per_sec", "elapsed_secs", "store"] {
        assert!(!out[field].is_null(), "{field} missing");
    }

    let log = open(&store);
    let all = all_events(&log);
    assert_eq!(all.len() as u64, events);
    let pipelines = log.aggregates(Some("pipeline")).unwrap();
    assert_eq!(pipelines.len(), 6);
    let mut seen = HashSet::new();
    for event in &all {
        let m = &event.metadata;
        assert_eq!(m.source, "omni-writer");
        assert!(m.trace_id.is_some() && m.user_id.is_some() && m.session_id.is_some());
        let correlation = m.correlation_id.as_deref().unwrap();
        assert!(correlation.starts_with("pipeline-"));
        if let Some(cause) = &m.causation_id {
            assert!(
                seen.contains(cause),
                "{} caused by a later event",
                m.event_type
            );
        } else {
            assert_eq!(m.event_type, "pipeline_started");
        }
        seen.insert(m.event_id.to_string());
    }
    for info in pipelines {
        let pipeline = log.load::<Pipeline>(&info.aggregate_id).unwrap().state;
        assert!(matches!(
            pipeline.status,
            RunStatus::Completed | RunStatus::Failed
        ));
    }
    assert!(log.admin().verify().unwrap().ok);
    log.close().unwrap();
}

#[test]
fn a_restart_continues_the_numbering_and_matches_one_longer_run() {
    let dir = tempfile::tempdir().unwrap();
    let split = dir.path().join("split");
    let whole = dir.path().join("whole");
    let first = summary(&run(&[
        "--store",
        s(&split),
        "--pipelines",
        "3",
        "--seed",
        "5",
        "--json",
    ]));
    let second = summary(&run(&[
        "--store",
        s(&split),
        "--pipelines",
        "2",
        "--seed",
        "5",
        "--json",
    ]));
    assert_eq!(
        (
            first["first_pipeline"].as_u64(),
            first["last_pipeline"].as_u64()
        ),
        (Some(1), Some(3))
    );
    assert_eq!(
        (
            second["first_pipeline"].as_u64(),
            second["last_pipeline"].as_u64()
        ),
        (Some(4), Some(5))
    );
    assert_eq!(
        second["last_position"].as_u64().unwrap(),
        first["events"].as_u64().unwrap() + second["events"].as_u64().unwrap()
    );
    summary(&run(&[
        "--store",
        s(&whole),
        "--pipelines",
        "5",
        "--seed",
        "5",
        "--json",
    ]));

    // The same pipelines, event for event (per pipeline: the interleaving may differ).
    let per_pipeline = |store: &Path| {
        let log = open(store);
        let mut by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for event in all_events(&log) {
            let key = event.metadata.correlation_id.clone().unwrap();
            by.entry(key).or_default().push(fingerprint(&log, &event));
        }
        assert_eq!(log.aggregates(Some("pipeline")).unwrap().len(), 5);
        log.close().unwrap();
        by
    };
    let a = per_pipeline(&split);
    let b = per_pipeline(&whole);
    assert_eq!(a.len(), 5);
    for (pipeline, events) in &a {
        // Cache versions depend on the interleaving of pipelines; compare them without.
        let strip = |events: &Vec<Value>| -> Vec<Value> {
            events
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    if e["aggregate_type"] == "cache" {
                        e.as_object_mut().unwrap().remove("version");
                    }
                    e
                })
                .collect()
        };
        assert_eq!(strip(events), strip(&b[pipeline]), "{pipeline} differs");
    }
}

#[test]
fn one_worker_and_one_seed_give_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let read = |name: &str| {
        let store = dir.path().join(name);
        summary(&run(&[
            "--store",
            s(&store),
            "--pipelines",
            "4",
            "--seed",
            "42",
            "--workers",
            "1",
            "--json",
            "--durability",
            "buffered",
        ]));
        let log = open(&store);
        let events: Vec<Value> = all_events(&log)
            .iter()
            .map(|e| fingerprint(&log, e))
            .collect();
        log.close().unwrap();
        events
    };
    let a = read("a");
    let b = read("b");
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[test]
fn sigterm_finishes_the_work_in_flight_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut child = spawn(&[
        "--store",
        s(&store),
        "--json",
        "--rate",
        "3000",
        "--seed",
        "1",
    ]);
    let _logs = wait_started(&mut child);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    let output = child.wait_with_output().unwrap();
    let out = summary(&output);
    assert_eq!(out["stopped_by"], "SIGTERM received");
    assert!(out["events"].as_u64().unwrap() > 0);
    assert_eq!(out["durable_position"], out["last_position"]);

    let log = open(&store);
    assert!(log.admin().verify().unwrap().ok);
    // Every pipeline was closed: none is left started.
    for info in log.aggregates(Some("pipeline")).unwrap() {
        let pipeline = log.load::<Pipeline>(&info.aggregate_id).unwrap().state;
        assert_ne!(
            pipeline.status,
            RunStatus::Started,
            "{} left open",
            info.aggregate_id
        );
    }
    log.close().unwrap();
}

#[test]
fn sigusr1_and_exit_take_verifiable_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut child = spawn(&[
        "--store",
        s(&store),
        "--json",
        "--rate",
        "2000",
        "--checkpoint-on-exit",
    ]);
    let _logs = wait_started(&mut child);
    signal(&child, "USR1");
    assert!(
        wait_for(Duration::from_secs(20), || !checkpoint_files(&store)
            .is_empty()),
        "no checkpoint after SIGUSR1"
    );
    signal(&child, "INT");
    let out = summary(&child.wait_with_output().unwrap());
    assert_eq!(out["stopped_by"], "SIGINT received");
    assert_eq!(out["checkpoints"], 2);
    let files = checkpoint_files(&store);
    assert_eq!(files.len(), 2);
    let last = out["last_checkpoint"].as_str().unwrap();
    let manifest = verify_checkpoint(Path::new(last)).unwrap();
    assert_eq!(
        manifest.last_position,
        out["last_position"].as_u64().unwrap()
    );
    for file in files {
        verify_checkpoint(&file).unwrap();
    }
}

#[test]
fn duration_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let started = Instant::now();
    let out = summary(&run(&[
        "--store",
        s(&store),
        "--duration",
        "0.5",
        "--json",
        "--durability",
        "buffered",
        "--checkpoint-every",
        "60",
    ]));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(out["stopped_by"], "--duration reached");
    assert_eq!(out["durability"], "buffered");
    // --checkpoint-every also checkpoints on exit.
    assert_eq!(out["checkpoints"], 1);
}

#[test]
fn the_human_summary_says_the_generation_is_simulated() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let output = run(&["--store", s(&store), "--pipelines", "1"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("simulated generation"), "{text}");
    assert!(text.contains("last position"), "{text}");
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("SIMULATED"), "{logs}");
}

#[test]
fn json_logs_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let output = run(&[
        "--store",
        s(&store),
        "--pipelines",
        "1",
        "--log-format",
        "json",
    ]);
    assert!(output.status.success());
    let logs = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = logs.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}

#[test]
fn bad_arguments_and_stores_fail_clearly() {
    for (args, needle) in [
        (vec!["--pipelines", "0"], "--pipelines"),
        (vec!["--rate=-5"], "positive"),
        (vec!["--checkpoint-every", "0"], "positive"),
        (vec!["--duration", "soon"], "not a number"),
        (vec!["--durability", "maybe"], "durability"),
        (vec!["--workers", "0"], "workers"),
        (vec!["--frobnicate"], "frobnicate"),
    ] {
        let output = run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a store").unwrap();
    let output = run(&["--store", s(&file), "--pipelines", "1"]);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("opening the store"), "{err}");
    assert!(run(&["--help"]).status.success());
}
