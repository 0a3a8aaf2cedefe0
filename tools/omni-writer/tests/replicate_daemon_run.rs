//! A daemon run with `--replicate`: once it exits, its stream holds exactly its log (count,
//! order, sequence = position, every header, payload bytes), and its summary says the stream
//! caught up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod replica;

use events_nats::LocalServer;
use replica::{assert_caught_up, assert_stream_is_log, run_daemon, summary};

#[test]
fn the_stream_holds_exactly_the_daemons_log() {
    let server = LocalServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let url = server.url();
    let output = run_daemon(
        &store,
        &["--pipelines", "40", "--seed", "12", "--replicate", &url],
    );
    let summary = summary(&output);
    assert_caught_up(&summary, "EVENTLOG");
    let log = assert_stream_is_log(&url, "EVENTLOG", &store);
    assert_eq!(summary["last_position"], log.len() as u64);
    assert_eq!(summary["replication"]["publish_errors"], 0, "{summary}");
    assert!(
        summary["replication"]["published"].as_u64().unwrap() >= log.len() as u64,
        "{summary}"
    );
}
