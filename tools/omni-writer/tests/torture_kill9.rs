//! CI-sized crash torture of the daemon: the real `omni-writer` binary (with `--ack-log` and a
//! checkpoint every 100 ms, some kills right after a SIGUSR1 checkpoint request) SIGKILLed at
//! random moments in both durability modes; after each kill the `torture` crate checks every
//! acknowledged append, whole appends, the hash chain, every index and every checkpoint. Kills:
//! `TORTURE_KILLS` (default 12, half per mode). The long run is `torture --kills 500` (README,
//! "Reliability").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use torture::{Mode, Options};

#[test]
fn daemon_survives_random_kills_in_both_modes() {
    let kills: usize = std::env::var("TORTURE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(kills, dir.path());
    options.modes = vec![Mode::Daemon];
    options.seed = 0x5EED_0002;
    options.omni_writer = Some(env!("CARGO_BIN_EXE_omni-writer").into());
    options.run_ms = (30, 300);
    options.rounds_per_store = 5;
    options.threads = 3;
    options.sample = 50;
    let summary = torture::run(&options).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("{}", serde_json::to_string_pretty(&summary).unwrap());
    assert_eq!(summary.total.kills, kills as u64);
    assert!(summary.total.events_checked > 0);
    assert!(summary.total.acks_checked > 0);
    assert!(summary.total.checkpoints_verified > 0);
    for pair in &summary.pairs {
        if pair.durability == "durable" {
            assert_eq!(pair.acks_lost, 0);
        }
    }
}
