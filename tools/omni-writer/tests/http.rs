//! `--http`: the daemon binary serving `/metrics`, `/health` and `/ready` on loopback, read with a
//! real HTTP client (ureq) and a real Prometheus text parser (prometheus-parse), through the
//! daemon of `common` (a free loopback port each).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Daemon, bin, value};
use prometheus_parse::{Scrape, Value};

/// The appended-events counter summed over event types.
fn events_appended(scrape: &Scrape) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == "omni_writer_events_appended_total")
        .map(|s| match s.value {
            Value::Counter(v) | Value::Untyped(v) => v,
            _ => panic!("not a counter: {s:?}"),
        })
        .sum()
}

/// A histogram's `+Inf` bucket (its count), checked against its `_count` sample. The parser
/// names a histogram's buckets after the family (`x`, not `x_bucket`).
fn histogram_count(scrape: &Scrape, metric: &str) -> f64 {
    let buckets = scrape
        .samples
        .iter()
        .find_map(|s| match (&s.value, s.metric == metric) {
            (Value::Histogram(buckets), true) => Some(buckets.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no histogram {metric}"));
    let inf = buckets
        .iter()
        .find(|b| b.less_than.is_infinite())
        .map(|b| b.count)
        .unwrap_or_else(|| panic!("{metric} has no +Inf bucket"));
    assert!(
        buckets.windows(2).all(|w| w[0].count <= w[1].count),
        "{metric}: buckets not cumulative: {buckets:?}"
    );
    assert_eq!(value(scrape, &format!("{metric}_count"), None), Some(inf));
    inf
}

#[test]
fn metrics_parse_and_grow_between_two_scrapes() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(
        &dir.path().join("store"),
        &["--rate", "2000", "--durability", "durable", "--seed", "3"],
    );
    let first = daemon.scrape();
    std::thread::sleep(Duration::from_millis(600));
    let second = daemon.scrape();

    for name in [
        "omni_writer_events_appended",
        "omni_writer_append_duration_seconds",
        "eventlog_group_events",
        "eventlog_log_sync_seconds",
        "eventlog_subscription_lag",
        "eventlog_last_position",
        "eventlog_durable_position",
        "eventlog_store_failed",
        "omni_writer_resident_memory_bytes",
    ] {
        assert!(second.docs.contains_key(name), "no HELP for {name}");
    }
    assert!(events_appended(&second) > events_appended(&first));
    assert!(
        value(
            &second,
            "omni_writer_events_appended_total",
            Some(("event_type", "pipeline_started"))
        )
        .is_some_and(|v| v >= 1.0)
    );
    for histogram in [
        "omni_writer_append_duration_seconds",
        "eventlog_group_events",
        "eventlog_log_sync_seconds",
    ] {
        assert!(
            histogram_count(&second, histogram) > histogram_count(&first, histogram),
            "{histogram} did not grow"
        );
    }
    let last = value(&second, "eventlog_last_position", None).unwrap();
    assert!(last >= events_appended(&second));
    assert_eq!(value(&second, "eventlog_store_failed", None), Some(0.0));
    assert!(value(&second, "omni_writer_resident_memory_bytes", None).is_some_and(|v| v > 1e6));
    assert!(daemon.stop().success());
}

#[test]
fn health_and_ready_answer_200_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(&dir.path().join("store"), &["--rate", "500"]);
    let health = daemon.get("/health");
    assert_eq!(
        (health.status, health.content_type.as_str()),
        (200, "application/json")
    );
    assert_eq!(health.json(), serde_json::json!({"status": "alive"}));
    let ready = daemon.get("/ready");
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.content_type, "application/json");
    let body = ready.json();
    assert_eq!(body["status"], "ready");
    assert!(body["last_position"].is_u64(), "{body}");
    assert_eq!(body["durability"], "durable");
    assert!(daemon.stop().success());
}

#[test]
fn an_unknown_path_is_a_404_with_a_json_body() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(&dir.path().join("store"), &["--rate", "100"]);
    let answer = daemon.get("/nothing-here");
    assert_eq!(answer.status, 404);
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(answer.json()["status"], "not_found");
    assert!(daemon.stop().success());
}

#[test]
fn a_stop_signal_stops_the_server_and_the_daemon_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(&dir.path().join("store"), &["--rate", "500"]);
    assert!(daemon.stop().success());
    assert!(daemon.try_get("/health").is_none(), "still serving");
    let stderr = daemon.stderr_text();
    assert!(stderr.contains("HTTP server stopped"), "{stderr}");
}

#[test]
fn an_invalid_http_address_is_refused_with_exit_2() {
    for bad in [
        "not-an-address",
        "127.0.0.1",
        "127.0.0.1:99999",
        "localhost:9464",
    ] {
        let output = Command::new(bin())
            .args(["--http", bad, "--pipelines", "1"])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "--http {bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--http"), "--http {bad}: {stderr}");
    }
}

/// A mounted tmpfs, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The store on an 80 MiB tmpfs (its first log segment takes 64 MiB), with the free-space
/// check off (`--min-free-disk 0`); once it runs, the test fills the tmpfs: sled's next write
/// past the pages it already has gets "no space left on device" and the store fails. Mounting
/// needs root: without it the test says so and checks nothing.
#[test]
fn ready_turns_503_when_the_store_fails_and_the_daemon_exits_1_after_the_linger() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=80m", "tmpfs"])
        .arg(&disk)
        .output();
    match mounted {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here ({}); this test needs root",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return;
        }
        Err(error) => {
            eprintln!("SKIPPED: cannot run mount ({error})");
            return;
        }
    }
    let _tmpfs = Tmpfs(disk.clone());
    let mut daemon = Daemon::start(
        &disk.join("store"),
        &[
            "--rate",
            "1000",
            "--min-free-disk",
            "0",
            "--http-linger",
            "3",
        ],
    );
    assert_eq!(daemon.get("/ready").status, 200);

    // Another process fills the disk.
    let mut filler = std::fs::File::create(disk.join("filler")).unwrap();
    let block = vec![0_u8; 1 << 20];
    while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    drop(filler);

    let deadline = Instant::now() + Duration::from_secs(60);
    let not_ready = loop {
        let ready = daemon
            .try_get("/ready")
            .expect("the daemon stopped serving before /ready said 503");
        if ready.status == 503 {
            break ready;
        }
        assert_eq!(ready.status, 200, "{}", ready.body);
        assert!(
            Instant::now() < deadline,
            "the store did not fail within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(not_ready.content_type, "application/json");
    let body = not_ready.json();
    assert_eq!(body["status"], "not_ready");
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("the store failed") && reason.contains("No space left"),
        "{reason}"
    );
    // Still alive and scraped while it lingers.
    assert_eq!(daemon.get("/health").status, 200);
    assert_eq!(
        value(&daemon.scrape(), "eventlog_store_failed", None),
        Some(1.0)
    );
    let status = daemon.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1));
    let stderr = daemon.stderr_text();
    assert!(stderr.contains("HTTP server stopped"), "{stderr}");
}
