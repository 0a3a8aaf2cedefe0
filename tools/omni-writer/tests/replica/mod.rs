//! What the replication tests share: a daemon's store and its stream read back whole, and the
//! check that the stream holds exactly the log.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use eventlog::{EventLog, EventLogConfig, Position, RecordedEvent};
use events_nats::StreamReader;
use serde_json::Value;

/// How long a read of a stream may wait for its next message.
pub const WAIT: Duration = Duration::from_secs(30);

/// A store the daemon has left (it has exited): its id and every event in log order.
pub fn store_log(store: &Path) -> (String, Vec<RecordedEvent>) {
    let log = EventLog::open(EventLogConfig::new(store).registry(omni_domain::registry()))
        .unwrap_or_else(|e| panic!("opening {}: {e}", store.display()));
    let events = log
        .read_log(Position::START, None)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let id = log.admin().store_id().unwrap();
    log.close().unwrap();
    (id, events)
}

/// The first `count` events of `stream` from sequence 1; `exact`: and nothing beyond.
pub fn stream_events(url: &str, stream: &str, count: usize, exact: bool) -> Vec<RecordedEvent> {
    let reader = StreamReader::connect(url, stream, WAIT).unwrap();
    let mut follower = reader.follow(1).unwrap();
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        match follower.next(WAIT).unwrap() {
            Some(event) => events.push(event),
            None => panic!(
                "stream {stream} ended at {} of {count} events",
                events.len()
            ),
        }
    }
    if exact {
        let beyond = follower.next(Duration::from_millis(300)).unwrap();
        assert!(
            beyond.is_none(),
            "stream {stream} holds more than {count} events: {beyond:?}"
        );
    }
    events
}

/// Fails at the first event where `a` and `b` differ, showing that pair (not both lists).
pub fn assert_same_events(a: &[RecordedEvent], b: &[RecordedEvent], what: &str) {
    if let Some(i) = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]) {
        panic!(
            "{what}: event {} differs:\n  {:?}\n  {:?}",
            i + 1,
            a[i],
            b[i]
        );
    }
    assert_eq!(a.len(), b.len(), "{what}: counts differ");
}

/// The stream `stream` holds exactly the log of `store`: the same count, and event for event
/// (position = sequence, ids, versions, timestamps, metadata, payload bytes); owned by the
/// store, no gap. Returns the log.
pub fn assert_stream_is_log(url: &str, stream: &str, store: &Path) -> Vec<RecordedEvent> {
    let (store_id, log) = store_log(store);
    assert!(!log.is_empty(), "the daemon wrote nothing");
    let summary = StreamReader::connect(url, stream, WAIT)
        .unwrap()
        .summary()
        .unwrap();
    assert_eq!(summary.owner_store.as_deref(), Some(store_id.as_str()));
    assert_eq!(summary.first_sequence, 1, "{summary:?}");
    assert_eq!(summary.last_sequence, log.len() as u64, "{summary:?}");
    assert_eq!(summary.messages, log.len() as u64, "a gap: {summary:?}");
    let in_stream = stream_events(url, stream, log.len(), true);
    for (i, event) in in_stream.iter().enumerate() {
        assert_eq!(event.position, i as u64 + 1, "sequence = position");
    }
    assert_same_events(&in_stream, &log, &format!("stream {stream} vs the log"));
    log
}

/// Runs the daemon to its end with `args` (and `--json`): its output, checked to exit 0.
pub fn run_daemon(store: &Path, args: &[&str]) -> Output {
    let output = Command::new(crate::common::bin())
        .arg("--store")
        .arg(store)
        .args(["--json", "--progress-every", "3600"])
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "omni-writer {args:?} exited {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The `--json` summary on the daemon's stdout.
pub fn summary(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Checks the summary's replication report: caught up with the log, nothing failed.
pub fn assert_caught_up(summary: &Value, stream: &str) {
    let replication = &summary["replication"];
    assert_eq!(replication["stream"], stream, "{summary}");
    assert_eq!(replication["caught_up"], true, "{summary}");
    assert_eq!(replication["state"], "stopped", "{summary}");
    assert_eq!(replication["error"], Value::Null, "{summary}");
    assert_eq!(
        replication["replicated_position"], summary["last_position"],
        "{summary}"
    );
    assert_eq!(replication["lag_events"], 0, "{summary}");
}
