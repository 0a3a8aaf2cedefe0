//! Two daemons, `--writer-id 1` and `--writer-id 2`, on two stores and one nats-server, at once
//! and with the same seed: each stream (EVENTLOG-W1, EVENTLOG-W2) holds exactly its store's
//! log; no aggregate id and no event id is in both stores; a stream merging both
//! (`events_nats::Merger`, what `events-dump merge` runs) holds every event of both, once, each
//! writer's in its own log order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod replica;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use eventlog::RecordedEvent;
use events_nats::{LocalServer, MergeConfig, StreamReader, merge_until_caught_up};
use replica::{WAIT, assert_caught_up, assert_stream_is_log, summary};

fn spawn(store: &Path, writer: &str, url: &str) -> std::process::Child {
    Command::new(common::bin())
        .arg("--store")
        .arg(store)
        .args(["--writer-id", writer, "--replicate", url])
        .args(["--pipelines", "25", "--seed", "7", "--json"])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_writers_own_their_streams_and_merge_into_one_feed() {
    let server = LocalServer::start().unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let stores = [dir.path().join("w1"), dir.path().join("w2")];
    let children = [spawn(&stores[0], "1", &url), spawn(&stores[1], "2", &url)];
    for (child, stream) in children.into_iter().zip(["EVENTLOG-W1", "EVENTLOG-W2"]) {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{stream}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_caught_up(&summary(&output), stream);
    }

    let logs: Vec<Vec<RecordedEvent>> = stores
        .iter()
        .zip(["EVENTLOG-W1", "EVENTLOG-W2"])
        .map(|(store, stream)| assert_stream_is_log(&url, stream, store))
        .collect();

    // Disjoint: aggregates carry the writer's tag, events their own ids.
    let aggregates = |log: &[RecordedEvent]| -> HashSet<String> {
        log.iter()
            .map(|e| e.metadata.aggregate_id.clone())
            .collect()
    };
    let (a1, a2) = (aggregates(&logs[0]), aggregates(&logs[1]));
    assert!(a1.iter().all(|id| id.contains("-w1-")), "{a1:?}");
    assert!(a2.iter().all(|id| id.contains("-w2-")), "{a2:?}");
    assert!(a1.is_disjoint(&a2));
    let owner: HashMap<_, _> = logs
        .iter()
        .enumerate()
        .flat_map(|(w, log)| log.iter().map(move |e| (e.metadata.event_id, w)))
        .collect();
    let total = logs[0].len() + logs[1].len();
    assert_eq!(owner.len(), total, "an event id is in both stores");

    // The merged feed: every event of both, once, as it is in its own log.
    let merge = MergeConfig::new(&url, "ALL", ["EVENTLOG-W1", "EVENTLOG-W2"]);
    merge_until_caught_up(merge, WAIT).unwrap();
    let reader = StreamReader::connect(&url, "ALL", WAIT).unwrap();
    let merged = reader.summary().unwrap();
    assert!(merged.is_merged(), "{merged:?}");
    assert_eq!(merged.messages, total as u64, "{merged:?}");
    let mut follower = reader.follow(1).unwrap();
    let mut next_in_log = [0_usize; 2];
    for _ in 0..total {
        let event = follower
            .next(WAIT)
            .unwrap()
            .unwrap_or_else(|| panic!("the merged stream ended before {total} events"));
        let writer = owner[&event.metadata.event_id];
        let expected = &logs[writer][next_in_log[writer]];
        assert_eq!(
            &event,
            expected,
            "writer {}'s events, in its log order",
            writer + 1
        );
        next_in_log[writer] += 1;
    }
    assert_eq!(next_in_log, [logs[0].len(), logs[1].len()]);
    let beyond = follower
        .next(std::time::Duration::from_millis(500))
        .unwrap();
    assert!(beyond.is_none(), "the merged stream holds more: {beyond:?}");
}
