//! Appender rounds: this binary re-executed as a child with several appender threads, a durable
//! subscription, a projection and a live subscription attached, a snapshot thread and a
//! checkpoint thread; killed at a random moment, or right after an export or a snapshot began.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use eventlog::{
    AppendBatch, ApplyError, Durability, EventContext, EventLog, EventLogConfig, EventRegistry,
    ExpectedVersion, NewEvent, Projection, RecordedEvent, StreamId, StreamRead, SubscriptionFilter,
    Version, list_checkpoints,
};
use omni_domain::{CacheHit, GenerationConfig, PipelineStarted};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acks::{AckLog, AckWriter, check_acks, check_whole_appends};
use crate::check::{Observed, check_checkpoints, check_store};
use crate::process::{ensure_no_panic, kill9, read_text, wait_for};
use crate::rng::Rng;
use crate::{Options, Pair, Round, sleep_ms};

/// The environment variable that makes the binary the appender child (its value: the spec).
pub const CHILD_ENV: &str = "TORTURE_APPENDER_CHILD";

/// The hot aggregates (type `cache`): every thread races on them.
pub const HOT: [&str; 4] = ["hot-0", "hot-1", "hot-2", "hot-3"];

/// The durable subscription's name.
const HANDLED: &str = "handled";
/// The projection's name.
const COUNTS: &str = "counts";

/// What the child is told.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChildSpec {
    /// The store.
    pub store: PathBuf,
    /// The ack log.
    pub acks: PathBuf,
    /// Where the durable subscription writes each event it handles.
    pub handled: PathBuf,
    /// Progress markers: `ready`, `export begin/end`, `snapshot begin/end`, problems.
    pub status: PathBuf,
    /// Durable mode.
    pub durable: bool,
    /// The round's seed.
    pub seed: u64,
    /// Appender threads.
    pub threads: usize,
}

/// The store configuration of the child (and of the checks).
fn config(store: &Path, durable: bool) -> EventLogConfig {
    EventLogConfig::new(store)
        .registry(omni_domain::registry())
        .durability(if durable {
            Durability::Durable
        } else {
            Durability::Buffered
        })
        .snapshot_every(None)
        .store(|s| {
            s.cache_capacity(32 << 20)
                .flush_interval(Duration::from_millis(50))
                .index_flush_events(2_000)
                .record_target_bytes(8 << 10)
        })
}

/// The projection: events per hot aggregate, and an order-sensitive digest of the positions
/// applied (a double or a skipped apply changes it).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Events per aggregate id.
    pub per_aggregate: BTreeMap<String, u64>,
    /// Events applied.
    pub applied: u64,
    /// The last position applied.
    pub last: u64,
    /// Digest of the positions applied, in order.
    pub digest: u64,
}

impl Counts {
    fn add(&mut self, aggregate_id: &str, position: u64) -> Result<(), ApplyError> {
        if position <= self.last {
            return Err(ApplyError::rejected(format!(
                "position {position} after {}",
                self.last
            )));
        }
        *self
            .per_aggregate
            .entry(aggregate_id.to_string())
            .or_default() += 1;
        self.applied += 1;
        self.last = position;
        self.digest = self
            .digest
            .wrapping_mul(0x100_0000_01B3)
            .wrapping_add(position);
        Ok(())
    }
}

impl Projection for Counts {
    fn apply(&mut self, event: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
        self.add(&event.metadata.aggregate_id, event.position)
    }
}

fn projection_filter() -> SubscriptionFilter {
    SubscriptionFilter::all().aggregate_type("cache")
}

/// A file written one line per `write` call, opened for appending.
#[derive(Debug)]
struct Lines(Mutex<File>);

impl Lines {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self(Mutex::new(file)))
    }

    fn line(&self, line: &str) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(format!("{line}\n").as_bytes())
    }
}

fn hot_event(id: &str, tag: &str) -> anyhow::Result<NewEvent> {
    let hit = CacheHit {
        cache_key: tag.to_string(),
        cache_type: "torture".into(),
        response_time: 0.0,
    };
    Ok(NewEvent::from_event(
        id,
        &hit,
        EventContext::new("torture"),
    )?)
}

fn cold_event(id: &str, n: u32) -> anyhow::Result<NewEvent> {
    let started = PipelineStarted {
        pipeline_type: "torture".into(),
        config: GenerationConfig {
            model_type: "none".into(),
            temperature: 0.0,
            max_tokens: 1,
            language: "pt-BR".into(),
        },
        total_prompts: n,
    };
    Ok(NewEvent::from_event(
        id,
        &started,
        EventContext::new("torture"),
    )?)
}

/// The child's main: never returns unless something fails.
///
/// # Errors
///
/// Whatever stopped it; the status file names it too.
pub fn child_main(spec: &str) -> anyhow::Result<()> {
    let spec: ChildSpec = serde_json::from_str(spec).context("the child's spec")?;
    let status = Arc::new(Lines::open(&spec.status)?);
    match child(&spec, &status) {
        Ok(()) => Ok(()),
        Err(error) => {
            let _ = status.line(&format!("error: {error:#}"));
            Err(error)
        }
    }
}

fn child(spec: &ChildSpec, status: &Arc<Lines>) -> anyhow::Result<()> {
    let log = EventLog::open(config(&spec.store, spec.durable))?;
    let _counts = log.project::<Counts>(COUNTS, projection_filter())?;
    let handled = Lines::open(&spec.handled)?;
    handled.line("resume")?;
    let _handled = log.subscribe_durable(
        HANDLED,
        SubscriptionFilter::all(),
        move |event: &RecordedEvent| {
            handled.line(&format!(
                "{} {}",
                event.position,
                event.metadata.event_id.simple()
            ))
        },
    )?;
    let mut next = log.last_position()?.get() + 1;
    let order_status = Arc::clone(status);
    let _order = log.subscribe(
        "order",
        SubscriptionFilter::all(),
        move |event: &RecordedEvent| {
            if event.position != next {
                let _ = order_status.line(&format!(
                    "violation: the live subscription got position {} where {next} was due",
                    event.position
                ));
            }
            next = event.position + 1;
            Ok::<(), String>(())
        },
    )?;

    let acks = Arc::new(AckWriter::open(&spec.acks)?);
    let (failed_tx, failed_rx) = std::sync::mpsc::channel::<anyhow::Error>();
    for thread in 0..spec.threads {
        let log = log.clone();
        let acks = Arc::clone(&acks);
        let failed = failed_tx.clone();
        let seed = spec.seed ^ (thread as u64 + 1).wrapping_mul(0x5851_F42D_4C95_7F2D);
        let round = spec.seed;
        std::thread::Builder::new()
            .name(format!("appender-{thread}"))
            .spawn(move || {
                if let Err(e) = appender(&log, &acks, thread, round, seed) {
                    let _ = failed.send(e.context(format!("appender {thread}")));
                }
            })?;
    }
    {
        let log = log.clone();
        let status = Arc::clone(status);
        let failed = failed_tx.clone();
        let seed = spec.seed ^ 0xABCD;
        std::thread::Builder::new()
            .name("snapshots".into())
            .spawn(move || {
                if let Err(e) = snapshots(&log, &status, seed) {
                    let _ = failed.send(e.context("snapshot thread"));
                }
            })?;
    }
    {
        let log = log.clone();
        let status = Arc::clone(status);
        let failed = failed_tx;
        let seed = spec.seed ^ 0x1234;
        std::thread::Builder::new()
            .name("checkpoints".into())
            .spawn(move || {
                if let Err(e) = checkpoints(&log, &status, seed) {
                    let _ = failed.send(e.context("checkpoint thread"));
                }
            })?;
    }
    status.line("ready")?;
    // Runs until killed; a failed thread ends the child with its error.
    match failed_rx.recv() {
        Ok(error) => Err(error),
        Err(_) => bail!("every thread ended"),
    }
}

/// One appender thread: a mix of every expected-version kind on hot and cold aggregates, and
/// multi-aggregate appends; each call logged before and acknowledged after.
fn appender(
    log: &EventLog,
    acks: &AckWriter,
    thread: usize,
    round: u64,
    seed: u64,
) -> anyhow::Result<()> {
    let mut rng = Rng::new(seed);
    // This thread's last cold aggregate and its version: nobody else appends to it.
    let mut own: Option<(String, u64)> = None;
    let mut n: u64 = 0;
    loop {
        n += 1;
        let tag = format!("{thread}:{n}");
        let hot = HOT[rng.below(HOT.len() as u64) as usize];
        let roll = rng.below(100);
        let count = rng.between(1, 3);
        let hot_events = |count: u64| -> anyhow::Result<Vec<NewEvent>> {
            (0..count)
                .map(|i| hot_event(hot, &format!("{tag}:{i}")))
                .collect()
        };
        let cold_id = format!("cold-{round:x}-{thread}-{n}");
        let cold_events = |id: &str, count: u64| -> anyhow::Result<Vec<NewEvent>> {
            (0..count).map(|i| cold_event(id, i as u32)).collect()
        };
        let hot_stream = StreamId::of::<CacheHit>(hot);
        let cold_stream = |id: &str| StreamId::of::<PipelineStarted>(id);
        let mut own_next = None;
        let batches = match roll {
            // Read-modify-append on a hot aggregate: races, one winner per version.
            0..40 => {
                let version = log.stream_version(&hot_stream)?;
                vec![AppendBatch::new(
                    hot_stream,
                    ExpectedVersion::Exact(version),
                    hot_events(count)?,
                )]
            }
            40..50 => vec![AppendBatch::new(
                hot_stream,
                ExpectedVersion::Any,
                hot_events(count)?,
            )],
            50..55 => vec![AppendBatch::new(
                hot_stream,
                ExpectedVersion::StreamExists,
                hot_events(count)?,
            )],
            55..57 => vec![AppendBatch::new(
                hot_stream,
                ExpectedVersion::NoStream,
                hot_events(1)?,
            )],
            57..85 => {
                own_next = Some((cold_id.clone(), count));
                vec![AppendBatch::new(
                    cold_stream(&cold_id),
                    ExpectedVersion::NoStream,
                    cold_events(&cold_id, count)?,
                )]
            }
            85..92 => match &own {
                Some((id, version)) => {
                    own_next = Some((id.clone(), version + count));
                    vec![AppendBatch::new(
                        cold_stream(id),
                        ExpectedVersion::exact(*version),
                        cold_events(id, count)?,
                    )]
                }
                None => continue,
            },
            _ => {
                let version = log.stream_version(&hot_stream)?;
                own_next = Some((cold_id.clone(), count));
                vec![
                    AppendBatch::new(hot_stream, ExpectedVersion::Exact(version), hot_events(1)?),
                    AppendBatch::new(
                        cold_stream(&cold_id),
                        ExpectedVersion::NoStream,
                        cold_events(&cold_id, count)?,
                    ),
                ]
            }
        };
        let ids: Vec<Uuid> = batches
            .iter()
            .flat_map(|b| b.events.iter().map(|e| e.event_id))
            .collect();
        let own_append = matches!(roll, 85..92);
        acks.begin(&ids)?;
        let result = if batches.len() == 1 {
            let mut batches = batches;
            let batch = batches.remove(0);
            log.append(&batch.stream, batch.expected, batch.events)
                .map(|r| vec![r])
        } else {
            log.append_batches(batches)
        };
        match result {
            Ok(results) => {
                let first = results.first().map_or(0, |r| r.first_position);
                let last = results.last().map_or(0, |r| r.last_position);
                acks.ack(&ids, first, last)?;
                if let Some((id, version)) = own_next {
                    own = Some((id, version));
                }
            }
            Err(e) if e.is_conflict() && !own_append => {}
            Err(e) => return Err(e).context("append"),
        }
    }
}

/// Snapshots of hot aggregates, continuously: the state names the version and the event id at
/// that version, so the checks can tell whether it reflects the log.
fn snapshots(log: &EventLog, status: &Lines, seed: u64) -> anyhow::Result<()> {
    let mut rng = Rng::new(seed);
    loop {
        let hot = HOT[rng.below(HOT.len() as u64) as usize];
        let stream = StreamId::of::<CacheHit>(hot);
        let version = log.stream_version(&stream)?;
        if version == Version::NONE {
            sleep_ms(1);
            continue;
        }
        let event = log
            .read_stream(&stream, StreamRead::forwards().from(version.get()).limit(1))?
            .next()
            .context("the event at the stream's version")??;
        let state = format!("{version}:{}", event.metadata.event_id.simple());
        status.line("snapshot begin")?;
        log.admin()
            .save_snapshot(&stream, version, 1, state.as_bytes())?;
        status.line("snapshot end")?;
        sleep_ms(rng.below(3));
    }
}

/// Checkpoint exports, continuously, keeping the newest two.
fn checkpoints(log: &EventLog, status: &Lines, seed: u64) -> anyhow::Result<()> {
    let mut rng = Rng::new(seed);
    let checkpoints = log.admin().checkpoint_dir();
    loop {
        status.line("export begin")?;
        log.admin().checkpoint()?;
        status.line("export end")?;
        let files = list_checkpoints(&checkpoints)?;
        for info in files.iter().take(files.len().saturating_sub(2)) {
            std::fs::remove_file(&info.path)?;
        }
        sleep_ms(rng.below(50));
    }
}

/// One round: start the child, kill it, check the store, the snapshots, the projection and the
/// durable subscription.
///
/// # Errors
///
/// The first failed check.
pub fn round(options: &Options, pair: &mut Pair, rng: &mut Rng) -> anyhow::Result<Round> {
    let exe = options
        .child_exe
        .as_ref()
        .context("appender mode needs the torture binary to re-execute")?;
    let round = pair.stats.kills;
    let status = pair.dir.join(format!("status-{round}"));
    let handled = pair.dir.join(format!("handled-{round}"));
    let log_file = pair.dir.join(format!("child-{round}.log"));
    let spec = ChildSpec {
        store: pair.store(),
        acks: pair.acks(),
        handled: handled.clone(),
        status: status.clone(),
        durable: pair.durable,
        seed: rng.next_u64(),
        threads: options.threads,
    };
    let started = Instant::now();
    let mut child = Command::new(exe)
        .env(CHILD_ENV, serde_json::to_string(&spec)?)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log_file)?)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;

    let mut moment = "at random";
    let wait = |child: &mut std::process::Child, needle: &str, after: usize| {
        wait_for(
            child,
            &log_file,
            &status,
            needle,
            after,
            Duration::from_secs(120),
        )
    };
    if rng.percent(10) {
        sleep_ms(rng.below(150));
        if !read_text(&status).contains("ready") {
            moment = "while opening";
        }
    } else {
        if !wait(&mut child, "ready", 0)? {
            let _ = child.kill();
            bail!("the child was not ready within 120 s");
        }
        let roll = rng.below(100);
        if roll < 35 {
            let seen = read_text(&status).matches("export begin").count();
            wait(&mut child, "export begin", seen)?;
            sleep_ms(rng.below(25));
            moment = "after export began";
        } else if roll < 60 {
            let seen = read_text(&status).matches("snapshot begin").count();
            wait(&mut child, "snapshot begin", seen)?;
            moment = "after snapshot began";
        } else {
            sleep_ms(rng.between(options.run_ms.0, options.run_ms.1));
        }
    }
    kill9(&mut child, &log_file)?;
    let ran_ms = started.elapsed().as_millis() as u64;
    ensure_no_panic(&log_file)?;
    let text = read_text(&status);
    if let Some(line) = text
        .lines()
        .find(|l| l.starts_with("violation") || l.starts_with("error"))
    {
        bail!("the child reported: {line}");
    }
    if moment == "while opening" {
        pair.stats.kills_before_ready += 1;
    }
    let export_in_progress =
        text.matches("export begin").count() > text.matches("export end").count();
    let snapshot_in_progress =
        text.matches("snapshot begin").count() > text.matches("snapshot end").count();
    pair.stats.kills_during_export += u64::from(export_in_progress);
    pair.stats.kills_during_snapshot += u64::from(snapshot_in_progress);
    if snapshot_in_progress {
        moment = "during snapshot";
    } else if export_in_progress {
        moment = "during export";
    }

    let log = EventLog::open(config(&pair.store(), pair.durable))
        .context("reopening the store after the kill")?;
    let observed = check_store(&log, pair.last, options.sample, rng)?;
    AckLog::drop_partial_tail(&pair.acks())?;
    let ack_log = AckLog::read(&pair.acks())?;
    let acked = check_acks(&observed.ids, &ack_log, pair.durable)?;
    let appends = check_whole_appends(&observed.ids, &ack_log)?;
    let snapshots = check_snapshots(&log, &observed)?;
    check_projection(&log, &observed, pair)?;
    let deliveries = check_deliveries(&log, &observed, pair, &read_text(&handled))?;
    log.close().context("closing the store after the checks")?;
    let checkpoints = check_checkpoints(&pair.store(), &observed, &mut pair.compared, 2)?;
    if !pair.durable {
        ack_log.keep_upto(&pair.acks(), observed.last())?;
    }

    let stats = &mut pair.stats;
    stats.events_checked += observed.last();
    stats.acks_checked += acked.present;
    stats.acks_lost += acked.lost;
    stats.appends_tiled += appends;
    stats.snapshots_checked += snapshots;
    stats.projections_checked += 1;
    stats.deliveries_checked += deliveries.checked;
    stats.deliveries_lost += deliveries.lost;
    stats.resumes_checked += u64::from(deliveries.resumed);
    stats.checkpoints_verified += checkpoints.verified;
    stats.checkpoints_compared += checkpoints.compared;
    stats.partial_checkpoint_files += checkpoints.partial;
    pair.last = observed.last();
    for file in [&status, &handled, &log_file] {
        let _ = std::fs::remove_file(file);
    }
    Ok(Round {
        ran_ms,
        moment,
        last: observed.last(),
    })
}

/// Every kept snapshot of a hot aggregate is within the aggregate and names the event the log
/// holds at its version. Returns how many were checked.
fn check_snapshots(log: &EventLog, observed: &Observed) -> anyhow::Result<u64> {
    let mut checked = 0;
    for hot in HOT {
        let positions = observed
            .aggregate("cache", hot)
            .map(|i| observed.positions[i].as_slice())
            .unwrap_or_default();
        for snapshot in log.admin().snapshots(&StreamId::of::<CacheHit>(hot))? {
            let version = snapshot.version;
            ensure!(
                version >= 1 && version <= positions.len() as u64,
                "snapshot of {hot} at version {version}, the log holds {} events of it",
                positions.len()
            );
            let state = String::from_utf8_lossy(&snapshot.state).into_owned();
            let at = observed.ids[(positions[(version - 1) as usize] - 1) as usize];
            ensure!(
                state == format!("{version}:{}", at.simple()),
                "snapshot of {hot} at version {version} says `{state}`, the log holds {at} there"
            );
            checked += 1;
        }
    }
    Ok(checked)
}

/// The projection's state is the fold of the log up to its stored position, which never goes
/// back and never passes the log.
fn check_projection(log: &EventLog, observed: &Observed, pair: &mut Pair) -> anyhow::Result<()> {
    ensure_not_beyond_the_log(log, COUNTS, observed)?;
    let (position, state) = log
        .projection_state::<Counts>(COUNTS)?
        .map(|(position, state)| (position.get(), state))
        .unwrap_or_default();
    ensure!(
        position >= pair.projection_position,
        "the projection went back from {} to {position}",
        pair.projection_position
    );
    let mut expected = Counts::default();
    for (i, &aggregate) in observed.aggregate_of.iter().enumerate() {
        let position_i = i as u64 + 1;
        if position_i > position {
            break;
        }
        let (aggregate_type, aggregate_id) = &observed.aggregates[aggregate as usize];
        if aggregate_type == "cache" {
            expected
                .add(aggregate_id, position_i)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    ensure!(
        state == expected,
        "the projection's state at {position} is not the fold of the log up to it: stored \
         {state:?}, fold {expected:?}"
    );
    pair.projection_position = position;
    Ok(())
}

/// The consumer's position as stored, before `consumer()` resumes one found beyond the log at
/// the log's end (or drops a projection's state found there): it must never pass the log.
fn ensure_not_beyond_the_log(
    log: &EventLog,
    name: &str,
    observed: &Observed,
) -> anyhow::Result<()> {
    let stored = log
        .admin()
        .consumers()?
        .into_iter()
        .find_map(|(consumer, position)| (consumer == name).then_some(position))
        .unwrap_or(0);
    ensure!(
        stored <= observed.last(),
        "consumer `{name}` is stored at {stored}, beyond the log's end at {}",
        observed.last()
    );
    Ok(())
}

/// What [`check_deliveries`] found.
#[derive(Debug, Default)]
struct Deliveries {
    checked: u64,
    lost: u64,
    resumed: bool,
}

/// The durable subscription: this round it resumed right after its stored position, handled
/// every event once, in order, each the log's event at that position; its stored position never
/// goes back, never passes the log, and (durable mode) lags the handler by at most one event.
fn check_deliveries(
    log: &EventLog,
    observed: &Observed,
    pair: &mut Pair,
    handled: &str,
) -> anyhow::Result<Deliveries> {
    ensure_not_beyond_the_log(log, HANDLED, observed)?;
    let stored = log.admin().consumer(HANDLED)?.map_or(0, |c| c.position);
    ensure!(
        stored >= pair.consumer_position,
        "the durable subscription went back from {} to {stored}",
        pair.consumer_position
    );
    let mut result = Deliveries::default();
    let mut last_handled = None;
    // Complete lines after the `resume` marker (a line cut by the kill was never handled).
    let complete = handled.rfind('\n').map_or("", |end| &handled[..=end]);
    let lines = complete.lines().skip_while(|l| *l != "resume").skip(1);
    for (expected, line) in (pair.consumer_position + 1..).zip(lines) {
        let (position, id) = line
            .split_once(' ')
            .with_context(|| format!("malformed delivery line `{line}`"))?;
        let position: u64 = position.parse()?;
        ensure!(
            position == expected,
            "the durable subscription handled position {position} where {expected} was due \
             (stored position before the round: {})",
            pair.consumer_position
        );
        if expected == pair.consumer_position + 1 {
            result.resumed = true;
        }
        if position <= observed.last() {
            let at = observed.ids[(position - 1) as usize].simple().to_string();
            ensure!(
                id == at,
                "the durable subscription handled {id} at position {position}, the log holds {at}"
            );
        } else if pair.durable {
            bail!(
                "the durable subscription handled position {position}, lost by the crash \
                 (the log ends at {}): durable mode delivers only what is on disk",
                observed.last()
            );
        } else {
            result.lost += 1;
        }
        result.checked += 1;
        last_handled = Some(position);
    }
    match last_handled {
        None => ensure!(
            stored == pair.consumer_position,
            "the durable subscription moved to {stored} without handling anything"
        ),
        Some(last) => {
            ensure!(
                stored <= last,
                "the durable subscription is stored at {stored}, past the last event it \
                 handled ({last})"
            );
            ensure!(
                !pair.durable || last <= stored + 1,
                "with synced commits the durable subscription handled up to {last} but is \
                 stored at {stored}"
            );
        }
    }
    pair.consumer_position = stored;
    Ok(result)
}
