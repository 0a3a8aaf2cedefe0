//! CI-sized crash torture of the multi-threaded appender (with a durable subscription, a
//! projection, a live subscription, snapshots and checkpoint exports attached): SIGKILLed at
//! random moments in both durability modes, every guarantee checked after each kill (see the
//! `torture` crate docs). Kills: `TORTURE_KILLS` (default 12, half per mode). The long run is
//! `torture --kills 500` (README, "Reliability").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use torture::{Mode, Options};

#[test]
fn appender_survives_random_kills_in_both_modes() {
    let kills: usize = std::env::var("TORTURE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(kills, dir.path());
    options.modes = vec![Mode::Appender];
    options.seed = 0x5EED_0001;
    options.child_exe = Some(env!("CARGO_BIN_EXE_torture").into());
    options.run_ms = (30, 400);
    options.rounds_per_store = 6;
    options.threads = 3;
    options.sample = 50;
    let summary = torture::run(&options).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("{}", serde_json::to_string_pretty(&summary).unwrap());
    assert_eq!(summary.total.kills, kills as u64);
    // The checks had something to check.
    assert!(summary.total.events_checked > 0);
    assert!(summary.total.acks_checked > 0);
    assert!(summary.total.projections_checked > 0);
    for pair in &summary.pairs {
        assert!(pair.acks_checked > 0, "{pair:?}");
        if pair.durability == "durable" {
            assert_eq!(pair.acks_lost, 0);
            assert_eq!(pair.deliveries_lost, 0);
        }
    }
}
