//! nats-server killed (SIGKILL) under a daemon that appends at a fixed `--rate` with
//! `--replicate`: the appends go on at about the rate while NATS is away (they never wait for
//! the network), `/ready` stays 200 and `/metrics` shows the disconnect and the growing lag;
//! once the server is back the replicator reconnects and the stream catches up to exactly the
//! log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod replica;

use std::time::{Duration, Instant};

use common::{Daemon, value};
use events_nats::LocalServer;
use replica::assert_stream_is_log;

const RATE: f64 = 500.0;
const OUTAGE: Duration = Duration::from_secs(4);
const STREAM: (&str, &str) = ("stream", "EVENTLOG");

/// A replication metric of the stream (counters carry their `_total`).
fn replication(daemon: &Daemon, metric: &str) -> u64 {
    value(&daemon.scrape(), metric, Some(STREAM))
        .unwrap_or_else(|| panic!("{metric} is not in /metrics")) as u64
}

fn last_position(daemon: &Daemon) -> u64 {
    value(&daemon.scrape(), "eventlog_last_position", None).unwrap() as u64
}

/// Waits (at most 60 s) until `check` holds.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn appends_go_on_while_nats_is_down_and_the_stream_catches_up() {
    let mut server = LocalServer::start().unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let rate = RATE.to_string();
    let mut daemon = Daemon::start(
        &store,
        &["--replicate", &url, "--rate", &rate, "--workers", "2"],
    );
    wait_until("the first events replicated", || {
        replication(&daemon, "eventlog_replicated_position") >= 100
    });

    server.kill();
    let before = last_position(&daemon);
    let cut = Instant::now();
    while cut.elapsed() < OUTAGE {
        std::thread::sleep(Duration::from_millis(500));
        let ready = daemon.get("/ready");
        assert_eq!(ready.status, 200, "NATS away is no reason: {}", ready.body);
    }
    let after = last_position(&daemon);
    let secs = cut.elapsed().as_secs_f64();
    let appended = after - before;
    eprintln!("during the {secs:.1} s outage: {appended} events appended (rate {RATE}/s)");
    assert!(
        appended as f64 >= 0.5 * RATE * secs,
        "appends stalled while NATS was away: {appended} events in {secs:.1} s at --rate {RATE}"
    );
    assert!(replication(&daemon, "eventlog_replication_disconnects_total") >= 1);
    let replicated = replication(&daemon, "eventlog_replicated_position");
    assert!(
        replicated < after,
        "nothing can be replicated with NATS away: {replicated} of {after}"
    );
    assert!(replication(&daemon, "eventlog_replication_lag_events") > 0);

    server.restart().unwrap();
    let resumed = Instant::now();
    wait_until("the stream catching up", || {
        replication(&daemon, "eventlog_replicated_position") >= after
    });
    eprintln!(
        "caught up {after} events {:.1} s after the restart",
        resumed.elapsed().as_secs_f64()
    );
    assert!(replication(&daemon, "eventlog_replication_reconnects_total") >= 1);
    let scrape = daemon.scrape();
    assert_eq!(
        value(
            &scrape,
            "eventlog_replication_state",
            Some(("state", "replicating"))
        ),
        Some(1.0)
    );

    let status = daemon.stop();
    let stderr = daemon.stderr_text();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("the stream holds the whole log"),
        "the stop drained the stream: {stderr}"
    );
    assert_stream_is_log(&url, "EVENTLOG", &store);
}
