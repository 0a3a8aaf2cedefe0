//! Daemon rounds: the real `omni-writer` binary, with `--ack-log`, killed at a random moment.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use eventlog::{Durability, EventLog, EventLogConfig};

use crate::acks::{AckLog, check_acks, check_whole_appends};
use crate::check::{check_checkpoints, check_store};
use crate::process::{ensure_no_panic, kill9, read_text, signal, wait_for};
use crate::rng::Rng;
use crate::{Options, Pair, Round, sleep_ms};

/// What the daemon logs once its signal handlers are installed.
const STARTED: &str = "omni-writer started";

/// The configuration the daemon opens its store with (`EventLogConfig::new` and the mode).
fn config(pair: &Pair) -> EventLogConfig {
    EventLogConfig::new(pair.store())
        .durability(if pair.durable {
            Durability::Durable
        } else {
            Durability::Buffered
        })
        .snapshot_every(None)
}

/// One round: start the daemon, kill it, check the store.
///
/// # Errors
///
/// The first failed check.
pub fn round(options: &Options, pair: &mut Pair, rng: &mut Rng) -> anyhow::Result<Round> {
    let binary = options
        .omni_writer
        .as_ref()
        .context("daemon mode needs the omni-writer binary (--omni-writer)")?;
    let store = pair.store();
    let acks = pair.acks();
    let log_file = pair.dir.join(format!("daemon-{}.log", pair.stats.kills));
    let seed = rng.next_u64() >> 1;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg("--store")
        .arg(&store)
        .arg("--ack-log")
        .arg(&acks)
        .args(["--durability", pair.durability_name()])
        .args(["--seed", &seed.to_string()])
        .args(["--workers", &options.threads.to_string()])
        .args(["--checkpoint-every", "0.1", "--progress-every", "3600"])
        .args(["--log-level", "info"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_file)?)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;

    let mut moment = "at random";
    if rng.percent(10) {
        sleep_ms(rng.below(150));
        if !read_text(&log_file).contains(STARTED) {
            moment = "while opening";
        }
    } else {
        if !wait_for(
            &mut child,
            &log_file,
            &log_file,
            STARTED,
            0,
            Duration::from_secs(120),
        )? {
            let _ = child.kill();
            bail!("the daemon did not start within 120 s");
        }
        sleep_ms(rng.between(options.run_ms.0, options.run_ms.1));
        if rng.percent(30) {
            signal(&child, "USR1")?;
            pair.stats.sigusr1_sent += 1;
            sleep_ms(rng.below(30));
            moment = "after SIGUSR1";
        }
    }
    kill9(&mut child, &log_file)?;
    let ran_ms = started.elapsed().as_millis() as u64;
    ensure_no_panic(&log_file)?;
    if moment == "while opening" {
        pair.stats.kills_before_ready += 1;
    }

    let log = EventLog::open(config(pair)).context("reopening the store after the kill")?;
    let observed = check_store(&log, pair.last, options.sample, rng)?;
    AckLog::drop_partial_tail(&acks)?;
    let ack_log = AckLog::read(&acks)?;
    let acked = check_acks(&observed.ids, &ack_log, pair.durable)?;
    let appends = check_whole_appends(&observed.ids, &ack_log)?;
    log.close().context("closing the store after the checks")?;
    let checkpoints = check_checkpoints(&store, &observed, &mut pair.compared, 2)?;
    if checkpoints.partial > 0 {
        pair.stats.kills_during_export += 1;
        if moment == "at random" {
            moment = "during export";
        }
    }
    if !pair.durable {
        ack_log.keep_upto(&acks, observed.last())?;
    }
    let stats = &mut pair.stats;
    stats.events_checked += observed.last();
    stats.acks_checked += acked.present;
    stats.acks_lost += acked.lost;
    stats.appends_tiled += appends;
    stats.checkpoints_verified += checkpoints.verified;
    stats.checkpoints_compared += checkpoints.compared;
    stats.partial_checkpoint_files += checkpoints.partial;
    pair.last = observed.last();
    let _ = std::fs::remove_file(&log_file);
    Ok(Round {
        ran_ms,
        moment,
        last: observed.last(),
    })
}
