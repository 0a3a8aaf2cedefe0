//! [`Replicator`]: ships a log into the JetStream stream it owns, exactly once, in order, with
//! the stream's sequence equal to the log's position.
//!
//! How exactly once holds without a local cursor: every message is published with
//! `Nats-Expected-Last-Sequence = position - 1`, so JetStream stores the event at position `p`
//! only as the stream's message `p`, and nothing else there. The stream is always a prefix of
//! the log. A session (one connection's worth of publishing) starts by reading the stream's
//! last sequence and checking that its event id is the log's at that position, then publishes
//! from the next position on, many acks in flight, awaited in order. Any error or unknown
//! outcome (an ack timeout, a reconnect, a refused sequence) ends the session; the next one
//! reads back what the stream holds and goes on from there. Publishes of an ended session that
//! still land do no harm: each can only land at its own position.

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, Context};
use events_core::RecordedEvent;
use tokio::sync::{mpsc, watch};

use crate::config::{ReplicationConfig, server_addrs};
use crate::error::{BoxError, ReplicationError, SourceError};
use crate::message::to_message;
use crate::running::{Running, Sessions};
use crate::source::ReplicaSource;
use crate::streams::{ensure_stream, event_id_at};

/// How long a read waits for a new event when the replicator has shipped everything.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// How often a replicator that is behind reports its lag.
const LAG_REPORT_EVERY: Duration = Duration::from_secs(10);

/// What a replicator is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicatorState {
    /// Connecting, or checking the stream.
    Connecting,
    /// Publishing (or waiting for new events).
    Replicating,
    /// A session failed; waiting before the next.
    Retrying,
    /// Stopped by [`Replicator::stop`] or because the log was closed.
    Stopped,
    /// Stopped by an error no retry can fix (see [`ReplicationStatus::last_error`]).
    Failed,
}

impl ReplicatorState {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Replicating,
            2 => Self::Retrying,
            3 => Self::Stopped,
            4 => Self::Failed,
            _ => Self::Connecting,
        }
    }

    /// The state's name, in snake case.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Replicating => "replicating",
            Self::Retrying => "retrying",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

/// A replicator's progress and counters, as of when it was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationStatus {
    /// The stream.
    pub stream: String,
    /// What it is doing.
    pub state: ReplicatorState,
    /// Every event up to this position is in the stream (acknowledged by JetStream).
    pub replicated_position: u64,
    /// Messages published (retries included).
    pub published: u64,
    /// Publishes that failed or whose outcome was unknown (each ends a session).
    pub publish_errors: u64,
    /// Times the connection to NATS was lost.
    pub disconnects: u64,
    /// Times it was re-established after a loss.
    pub reconnects: u64,
    /// Sessions started (the first, then one per retry).
    pub sessions: u64,
    /// The last error, as text.
    pub last_error: Option<String>,
}

/// Shared between the handle and the runtime thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) state: AtomicU8,
    pub(crate) replicated: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) publish_errors: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) sessions: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
    /// Wakes `wait_replicated`.
    progress: Condvar,
    progress_lock: Mutex<()>,
    /// Threads in `wait_replicated`: an ack wakes nobody (no lock, no syscall) when none wait.
    waiters: AtomicUsize,
    /// Tells `start` how the first session's checks went (once).
    pub(crate) first: Mutex<Option<std::sync::mpsc::SyncSender<bool>>>,
}

impl Shared {
    pub(crate) fn set_state(&self, state: ReplicatorState) {
        self.state.store(state as u8, Ordering::Release);
        self.progress.notify_all();
    }

    pub(crate) fn state(&self) -> ReplicatorState {
        ReplicatorState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn note_error(&self, error: &str) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.to_owned());
    }

    /// Reports the first session's checks to `start` (only the first call counts).
    pub(crate) fn report_first(&self, ok: bool) {
        if let Some(first) = self
            .first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = first.try_send(ok);
        }
    }

    /// A session passed its checks and publishes after `position`: the state says so before
    /// `start` (which returns on the report, and whose caller reads the state) hears of it.
    pub(crate) fn resumed(&self, position: u64) {
        self.advance(position);
        self.set_state(ReplicatorState::Replicating);
        self.report_first(true);
    }

    pub(crate) fn advance(&self, position: u64) {
        // SeqCst pairs with `wait_replicated`: either it sees the new position, or this sees
        // it waiting and notifies under the lock it holds until it sleeps.
        self.replicated.fetch_max(position, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        let _guard = self
            .progress_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.progress.notify_all();
    }
}

/// Reads a replicator's status without owning it (cheap to clone); see [`Replicator::probe`].
#[derive(Debug, Clone)]
pub struct ReplicationProbe {
    stream: String,
    shared: Arc<Shared>,
}

impl ReplicationProbe {
    pub(crate) fn new(stream: String, shared: Arc<Shared>) -> Self {
        Self { stream, shared }
    }

    /// The replicator's progress and counters.
    pub fn status(&self) -> ReplicationStatus {
        let s = &self.shared;
        ReplicationStatus {
            stream: self.stream.clone(),
            state: s.state(),
            replicated_position: s.replicated.load(Ordering::Acquire),
            published: s.published.load(Ordering::Relaxed),
            publish_errors: s.publish_errors.load(Ordering::Relaxed),
            disconnects: s.disconnects.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            sessions: s.sessions.load(Ordering::Relaxed),
            last_error: s
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// Waits at most `timeout` until its position reaches `position`; whether it did. Returns
    /// early (false) once it stopped or failed.
    pub fn wait_replicated(&self, position: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let shared = &self.shared;
        let mut guard = shared
            .progress_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shared.waiters.fetch_add(1, Ordering::SeqCst);
        let reached = loop {
            if shared.replicated.load(Ordering::SeqCst) >= position {
                break true;
            }
            let now = Instant::now();
            if self.is_finished() || now >= deadline {
                break false;
            }
            guard = shared
                .progress
                .wait_timeout(guard, (deadline - now).min(Duration::from_millis(100)))
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        };
        shared.waiters.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
        reached
    }

    /// Whether the replicator has ended (stopped or failed).
    pub fn is_finished(&self) -> bool {
        matches!(
            self.shared.state(),
            ReplicatorState::Stopped | ReplicatorState::Failed
        )
    }
}

/// A running replicator: one named thread that owns a tokio runtime, publishing the log into
/// its stream. Stop it with [`Replicator::stop`] (dropping it stops it too).
///
/// Started by `eventlog::EventLog::replicate`, which supplies the log as a [`ReplicaSource`].
#[derive(Debug)]
pub struct Replicator {
    running: Running,
}

impl Replicator {
    /// Starts replicating `source` as `config` says. Waits at most
    /// [`ReplicationConfig::connect_timeout`] for the first connection and the stream's checks:
    /// when NATS is not reachable by then it returns all the same and goes on trying in the
    /// background (appends never wait for it).
    ///
    /// # Errors
    ///
    /// [`ReplicationError::InvalidConfig`]; the stream's checks when they ran in time:
    /// [`ReplicationError::NotAnEventLogStream`], [`ReplicationError::OwnedByAnotherStore`],
    /// [`ReplicationError::StreamAhead`], [`ReplicationError::ContentMismatch`];
    /// [`ReplicationError::Source`] when the log cannot be read; [`ReplicationError::Thread`].
    pub fn start(
        config: ReplicationConfig,
        source: Arc<dyn ReplicaSource>,
    ) -> Result<Self, ReplicationError> {
        config.validate()?;
        let store_id = source.store_id()?;
        let running = Running::spawn("replicator", config.clone(), move |shared| Worker {
            config,
            store_id,
            source,
            shared,
        })?;
        Ok(Self { running })
    }

    /// Its progress and counters.
    pub fn status(&self) -> ReplicationStatus {
        self.running.probe().status()
    }

    /// A handle that reads its status, for whoever reports on it (it does not keep it running).
    pub fn probe(&self) -> ReplicationProbe {
        self.running.probe()
    }

    /// Every event up to this position is in the stream.
    pub fn replicated_position(&self) -> u64 {
        self.running.shared().replicated.load(Ordering::Acquire)
    }

    /// Waits at most `timeout` until every event up to `position` is in the stream; whether it
    /// is. Returns early (false) when the replicator stopped or failed.
    pub fn wait_replicated(&self, position: u64, timeout: Duration) -> bool {
        self.running.probe().wait_replicated(position, timeout)
    }

    /// Stops publishing (acks in flight are awaited, at most the ack timeout), joins the
    /// thread and returns the final status.
    ///
    /// # Errors
    ///
    /// The error that stopped it, when one did (the ones [`Replicator::start`] names, found
    /// later, e.g. after a reconnect).
    pub fn stop(self) -> Result<ReplicationStatus, ReplicationError> {
        self.running.stop()
    }
}

/// Locks `mutex`, through a poisoning (the data are counters and text: still meaningful).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a session ended.
pub(crate) enum SessionEnd {
    /// Asked to stop, or the log was closed.
    Stopped,
    /// Try again after a pause.
    Retry(String),
    /// No retry can fix it.
    Fatal(ReplicationError),
}

struct Worker {
    config: ReplicationConfig,
    store_id: String,
    source: Arc<dyn ReplicaSource>,
    shared: Arc<Shared>,
}

impl Sessions for Worker {
    fn session(
        &mut self,
        js: &Context,
        client: &async_nats::Client,
        stop: &watch::Receiver<bool>,
    ) -> impl Future<Output = SessionEnd> {
        Worker::session(self, js, client, stop)
    }
}

impl Worker {
    /// One session: check the stream, then publish from its last sequence on until an error.
    async fn session(
        &mut self,
        js: &Context,
        client: &async_nats::Client,
        stop: &watch::Receiver<bool>,
    ) -> SessionEnd {
        let prefix = self.config.subject_prefix_or_default();
        let stream = match ensure_stream(js, &self.config, &prefix, &self.store_id).await {
            Ok(stream) => stream,
            Err(error) => return classify(error),
        };
        let stream_last = stream.cached_info().state.last_sequence;
        if let Err(end) = self.check_agreement(&stream, stream_last).await {
            return end;
        }
        self.shared.resumed(stream_last);
        tracing::info!(name: "events_nats_replication_resumed", stream = %self.config.stream, from_position = stream_last + 1, "replicating");

        let max_payload = client.server_info().max_payload;
        let (acks_tx, acks_rx) = mpsc::channel(self.config.max_in_flight);
        let sender = self.send(js, &prefix, stream_last + 1, max_payload, acks_tx, stop);
        let acker = await_acks(&self.shared, acks_rx);
        // Whichever ends first with an error ends the session (the other is dropped); the
        // sender ends alone (Ok) when asked to stop, and the acker once it awaited the rest.
        match tokio::try_join!(sender, acker) {
            Ok(((), ())) => SessionEnd::Stopped,
            Err(end) => end,
        }
    }

    /// Refuses a stream whose last message is not the log's event at that position.
    async fn check_agreement(
        &self,
        stream: &jetstream::stream::Stream,
        stream_last: u64,
    ) -> Result<(), SessionEnd> {
        if stream_last == 0 {
            return Ok(());
        }
        let read = spawn_read(&self.source, Duration::ZERO, stream_last, 1, Duration::ZERO);
        let events = read_result(read).await?;
        let Some(in_log) = events.first().filter(|e| e.position == stream_last) else {
            let log_last = self.source.last_position().map_err(source_end)?;
            return Err(SessionEnd::Fatal(ReplicationError::StreamAhead {
                stream: self.config.stream.clone(),
                stream_last,
                log_last,
            }));
        };
        let in_stream = event_id_at(stream, stream_last).await.map_err(classify)?;
        if in_stream != Some(in_log.metadata.event_id) {
            return Err(SessionEnd::Fatal(ReplicationError::ContentMismatch {
                stream: self.config.stream.clone(),
                position: stream_last,
                in_stream,
                in_log: in_log.metadata.event_id,
            }));
        }
        Ok(())
    }

    /// Reads the log from `from` on and publishes each event, handing its ack to the acker.
    async fn send(
        &self,
        js: &Context,
        prefix: &str,
        from: u64,
        max_payload: usize,
        acks: mpsc::Sender<(u64, PublishAckFuture)>,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), SessionEnd> {
        let batch = self.config.read_batch;
        let mut next = from;
        let mut pending = spawn_read(&self.source, Duration::ZERO, next, batch, Duration::ZERO);
        let mut last_lag_report = Instant::now();
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let events = read_result(pending).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                pending = spawn_read(&self.source, Duration::ZERO, next, batch, IDLE_WAIT);
                continue;
            };
            if events.first().map(|e| e.position) != Some(next)
                || last != next + events.len() as u64 - 1
            {
                return Err(SessionEnd::Retry(format!(
                    "the log returned positions {:?}..={last} for a read from {next}",
                    events.first().map(|e| e.position)
                )));
            }
            next = last + 1;
            // Read ahead while this batch is published: at once after a full batch; after a
            // short one (caught up), once the linger has gathered what the store commits.
            pending = if events.len() >= batch {
                spawn_read(&self.source, Duration::ZERO, next, batch, Duration::ZERO)
            } else {
                spawn_read(&self.source, self.config.linger, next, batch, IDLE_WAIT)
            };
            for event in events {
                let position = event.position;
                let outbound = to_message(prefix, event);
                let size = outbound.payload.len();
                let publish = PublishMessage::build()
                    .payload(outbound.payload)
                    .headers(outbound.headers);
                let ack = js
                    .send_publish(outbound.subject, publish)
                    .await
                    .map_err(|error| {
                        self.shared.publish_errors.fetch_add(1, Ordering::Relaxed);
                        if error.kind() == PublishErrorKind::MaxPayloadExceeded {
                            SessionEnd::Fatal(ReplicationError::EventTooLarge {
                                position,
                                bytes: size,
                                max: max_payload,
                            })
                        } else {
                            SessionEnd::Retry(format!("publish of position {}: {error}", position))
                        }
                    })?;
                self.shared.published.fetch_add(1, Ordering::Relaxed);
                if acks.send((position, ack)).await.is_err() {
                    // The acker ended on an error: try_join! returns it.
                    return Ok(());
                }
            }
            if last_lag_report.elapsed() >= LAG_REPORT_EVERY {
                last_lag_report = Instant::now();
                let replicated = self.shared.replicated.load(Ordering::Acquire);
                if let Ok(log_last) = self.source.last_position() {
                    tracing::info!(name: "events_nats_replication_lag", stream = %self.config.stream, replicated_position = replicated, log_position = log_last, lag_events = log_last.saturating_sub(replicated), "replication progress");
                }
            }
        }
    }
}

/// Awaits each publish's ack, in order; the first failure (or an ack at another sequence than
/// the one expected) ends the session. Each success advances `shared`'s position.
pub(crate) async fn await_acks(
    shared: &Shared,
    mut acks: mpsc::Receiver<(u64, PublishAckFuture)>,
) -> Result<(), SessionEnd> {
    while let Some((sequence, ack)) = acks.recv().await {
        match ack.await {
            Ok(ack) if ack.sequence == sequence => shared.advance(sequence),
            Ok(ack) => {
                shared.publish_errors.fetch_add(1, Ordering::Relaxed);
                return Err(SessionEnd::Retry(format!(
                    "sequence {sequence} was acknowledged as {} (duplicate: {})",
                    ack.sequence, ack.duplicate
                )));
            }
            Err(error) => {
                shared.publish_errors.fetch_add(1, Ordering::Relaxed);
                return Err(SessionEnd::Retry(format!(
                    "ack of sequence {sequence}: {error}"
                )));
            }
        }
    }
    Ok(())
}

/// Connects to `url` (retrying in the background when it is not reachable yet), counting
/// disconnects and reconnects in `shared`.
pub(crate) async fn connect_client(
    url: &str,
    client_name: &str,
    config: &ReplicationConfig,
    shared: &Arc<Shared>,
    stream: &str,
) -> Result<async_nats::Client, ReplicationError> {
    let servers = server_addrs(url).map_err(|reason| ReplicationError::InvalidConfig {
        setting: "url",
        reason,
    })?;
    let shared = Arc::clone(shared);
    let stream = stream.to_owned();
    async_nats::ConnectOptions::new()
        .name(client_name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(config.connect_timeout)
        .request_timeout(Some(config.ack_timeout))
        .event_callback(move |event| {
            let shared = Arc::clone(&shared);
            let stream = stream.clone();
            async move {
                match event {
                    async_nats::Event::Disconnected => {
                        shared.disconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(name: "events_nats_disconnected", stream = %stream, "lost the connection to NATS");
                    }
                    async_nats::Event::Connected => {
                        if shared.disconnects.load(Ordering::Relaxed) > 0 {
                            shared.reconnects.fetch_add(1, Ordering::Relaxed);
                        }
                        tracing::info!(name: "events_nats_connected", stream = %stream, "connected to NATS");
                    }
                    other => {
                        tracing::debug!(name: "events_nats_client_event", stream = %stream, event = %other, "NATS client event");
                    }
                }
            }
        })
        .connect(servers)
        .await
        .map_err(|error| nats_error(format!("connect to {url}"), error))
}

/// A read of the log ([`ReplicaSource::read`]) on the blocking pool, begun after `pause`.
type LogRead = tokio::task::JoinHandle<Result<Vec<RecordedEvent>, SourceError>>;

fn spawn_read(
    source: &Arc<dyn ReplicaSource>,
    pause: Duration,
    from: u64,
    max: usize,
    wait: Duration,
) -> LogRead {
    let source = Arc::clone(source);
    tokio::task::spawn_blocking(move || {
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        source.read(from, max, wait)
    })
}

/// What a [`LogRead`] returned, its failures as the session's end.
async fn read_result(read: LogRead) -> Result<Vec<RecordedEvent>, SessionEnd> {
    match read.await {
        Ok(result) => result.map_err(source_end),
        Err(join) => Err(SessionEnd::Retry(format!("log read failed: {join}"))),
    }
}

fn source_end(error: SourceError) -> SessionEnd {
    match error {
        SourceError::Closed => SessionEnd::Stopped,
        other => SessionEnd::Fatal(ReplicationError::Source(other)),
    }
}

/// Errors about the stream's identity are fatal; NATS request failures are retried.
pub(crate) fn classify(error: ReplicationError) -> SessionEnd {
    match error {
        ReplicationError::Nats { context, source } => {
            SessionEnd::Retry(format!("{context}: {source}"))
        }
        fatal => SessionEnd::Fatal(fatal),
    }
}

/// Boxes a client error with what was being done.
pub(crate) fn nats_error(
    context: impl Into<String>,
    source: impl Into<BoxError>,
) -> ReplicationError {
    ReplicationError::Nats {
        context: context.into(),
        source: source.into(),
    }
}
