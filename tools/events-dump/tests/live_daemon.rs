//! The dump while the daemon holds the store: commands that need its sled data (`verify`,
//! `snapshot`, `state`) get a plain message pointing at the newest checkpoint,
//! `--latest-checkpoint` and `--checkpoint` read it, then a consistent store after SIGTERM.
//! (Reading the live store's log read-only: `live_store_reads.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{
    arg, checkpoints, dump, json_lines, json_object, signal, spawn_writer, stderr, wait_started,
    wait_until,
};

#[test]
fn a_store_in_use_points_at_its_newest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = arg(&store);
    let mut daemon = spawn_writer(&["--store", s, "--rate", "2000", "--json", "--seed", "8"]);
    // From this line on the daemon holds the store and handles signals.
    let _logs = wait_started(&mut daemon);

    let locked = |output: &std::process::Output| {
        output.status.code() == Some(2) && stderr(output).contains("in use by a running process")
    };
    assert!(wait_until(Duration::from_secs(30), || locked(&dump(&[
        "--store", s, "verify"
    ]))));
    let before = dump(&["--store", s, "state", "pipeline", "pipeline-000001"]);
    assert!(
        stderr(&before).contains("no checkpoint yet"),
        "{}",
        stderr(&before)
    );
    let none = dump(&["--store", s, "--latest-checkpoint", "info"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("no checkpoint in"),
        "{}",
        stderr(&none)
    );

    signal(&daemon, "USR1");
    assert!(wait_until(Duration::from_secs(30), || !checkpoints(&store).is_empty()));
    let file = checkpoints(&store).remove(0);
    let message = stderr(&dump(&[
        "--store", s, "snapshot", "pipeline", "p-1", "--json",
    ]));
    assert!(
        message.contains("`snapshot` needs its sled data"),
        "{message}"
    );
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("--latest-checkpoint"), "{message}");

    let info = json_object(&dump(&[
        "--store",
        s,
        "--latest-checkpoint",
        "info",
        "--json",
    ]));
    let position = info["checkpoint"]["last_position"].as_u64().unwrap();
    assert!(position > 0);
    assert_eq!(info["last_position"], position);
    assert_eq!(info["chain_head"], info["checkpoint"]["chain_head"]);
    let events = json_lines(&dump(&[
        "--store",
        s,
        "--latest-checkpoint",
        "log",
        "--json",
    ]));
    assert_eq!(events.len() as u64, position);
    let from_file = json_lines(&dump(&["--checkpoint", arg(&file), "log", "--json"]));
    assert_eq!(from_file, events);
    let listed = json_lines(&dump(&["--store", s, "checkpoint", "list", "--json"]));
    assert_eq!(listed.len(), 1);

    signal(&daemon, "TERM");
    let output = daemon.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verify = dump(&["--store", s, "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", common::stdout(&verify));
    // Everything from before the checkpoint is still there, unchanged.
    let now = json_lines(&dump(&[
        "--store",
        s,
        "log",
        "--limit",
        &position.to_string(),
        "--json",
    ]));
    assert_eq!(now, events);
}
