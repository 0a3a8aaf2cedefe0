//! kill -9 of a replicating daemon at random moments (while it opens and connects, while it
//! appends and publishes, while it drains after a SIGTERM), restarted on the same store each
//! time: after every kill the stream is a gap-free prefix of the log, and once a last run ends
//! cleanly the stream holds exactly the log: no duplicate, no gap, in order.
//!
//! Kills: `REPLICATE_KILLS` (default 20); seed: `REPLICATE_KILL_SEED` (default from the clock,
//! printed: rerun a failure with it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod replica;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eventlog::{EventLog, EventLogConfig, Position};
use events_nats::{FollowError, LocalServer, StreamReader};
use replica::{WAIT, assert_caught_up, assert_stream_is_log, run_daemon, summary};
use torture::process::{ensure_no_panic, kill9, read_text, signal, wait_for};
use torture::rng::Rng;

const STARTED: &str = "omni-writer started";

fn seed() -> u64 {
    std::env::var("REPLICATE_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

#[test]
fn kill9_while_replicating_keeps_the_stream_exactly_the_log() {
    let kills: usize = std::env::var("REPLICATE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed = seed();
    eprintln!(
        "replicate_kill9: seed {seed} (REPLICATE_KILL_SEED={seed} reruns this), {kills} kills"
    );
    let mut rng = Rng::new(seed);
    let server = LocalServer::start().unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let started = Instant::now();
    let (mut behind, mut stream_last, mut killed, mut round) = (0_usize, 0_u64, 0_usize, 0_usize);

    while killed < kills {
        round += 1;
        let kill = round;
        let log_file = dir.path().join(format!("daemon-{kill}.log"));
        let mut child = Command::new(common::bin())
            .arg("--store")
            .arg(&store)
            .args(["--replicate", &url, "--workers", "3"])
            .args(["--seed", &(rng.next_u64() >> 33).to_string()])
            .args(["--progress-every", "3600", "--log-level", "info"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_file).unwrap())
            .spawn()
            .unwrap();
        let moment = if rng.percent(15) {
            // While it opens the store and connects to NATS.
            std::thread::sleep(Duration::from_millis(rng.below(150)));
            "opening"
        } else {
            let up = wait_for(
                &mut child,
                &log_file,
                &log_file,
                STARTED,
                0,
                Duration::from_secs(60),
            )
            .unwrap();
            assert!(up, "the daemon did not start: {}", read_text(&log_file));
            std::thread::sleep(Duration::from_millis(rng.between(20, 500)));
            if rng.percent(20) {
                // While it stops: the last prompts, the flush, the drain.
                signal(&child, "TERM").unwrap();
                std::thread::sleep(Duration::from_millis(rng.below(60)));
                "stopping"
            } else {
                "running"
            }
        };
        let moment = if child.try_wait().unwrap().is_some() {
            // A SIGTERM finished it before the kill: a clean stop (not counted as a kill).
            assert_eq!(moment, "stopping", "{}", read_text(&log_file));
            "stopped before the kill"
        } else {
            kill9(&mut child, &log_file).unwrap();
            killed += 1;
            moment
        };
        ensure_no_panic(&log_file).unwrap();

        // The stream is a gap-free prefix of the log, and never shrinks.
        let found = StreamReader::connect(&url, "EVENTLOG", WAIT)
            .and_then(|reader| reader.summary().map(|summary| (reader, summary)));
        let (reader, summary) = match found {
            Ok(found) => found,
            Err(FollowError::NoSuchStream { .. }) => {
                assert_eq!(stream_last, 0, "the stream vanished");
                continue; // killed before the daemon created the stream
            }
            Err(e) => panic!("kill {kill}: reading the stream: {e}"),
        };
        assert_eq!(
            summary.messages, summary.last_sequence,
            "a gap: {summary:?}"
        );
        assert!(summary.last_sequence >= stream_last, "{summary:?}");
        stream_last = summary.last_sequence;
        let log = EventLog::open(EventLogConfig::new(&store)).unwrap();
        let log_last = log.last_position().unwrap().get();
        assert!(
            stream_last <= log_last,
            "the stream ({stream_last}) is ahead of the log ({log_last})"
        );
        if stream_last > 0 {
            let in_log = log
                .read_log(Position(stream_last), Some(1))
                .unwrap()
                .next()
                .unwrap()
                .unwrap();
            let in_stream = reader.get(stream_last).unwrap().unwrap();
            assert_eq!(in_stream, in_log, "kill {kill}: the stream's last event");
        }
        log.close().unwrap();
        behind += usize::from(stream_last < log_last);
        eprintln!(
            "round {kill} ({moment}): log {log_last}, stream {stream_last}, {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let _ = std::fs::remove_file(&log_file);
    }

    // A last run stops cleanly: the stream catches up and holds exactly the log.
    let output = run_daemon(&store, &["--pipelines", "3", "--replicate", &url]);
    assert_caught_up(&summary(&output), "EVENTLOG");
    let log = assert_stream_is_log(&url, "EVENTLOG", &store);
    eprintln!(
        "replicate_kill9: seed {seed}: {killed} kills in {round} rounds ({behind} with the stream \
         behind the log), {} events, {:.1} s",
        log.len(),
        started.elapsed().as_secs_f64()
    );
}
