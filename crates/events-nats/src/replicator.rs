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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, Context};
use events_core::RecordedEvent;
use tokio::sync::{mpsc, watch};

use crate::config::{ReplicationConfig, server_addrs};
use crate::error::{BoxError, ReplicationError, SourceError};
use crate::message::to_message;
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
struct Shared {
    state: AtomicU8,
    replicated: AtomicU64,
    published: AtomicU64,
    publish_errors: AtomicU64,
    disconnects: AtomicU64,
    reconnects: AtomicU64,
    sessions: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Wakes `wait_replicated`.
    progress: Condvar,
    progress_lock: Mutex<()>,
}

impl Shared {
    fn set_state(&self, state: ReplicatorState) {
        self.state.store(state as u8, Ordering::Release);
        self.progress.notify_all();
    }

    fn state(&self) -> ReplicatorState {
        ReplicatorState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn note_error(&self, error: &str) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.to_owned());
    }

    fn advance(&self, position: u64) {
        self.replicated.fetch_max(position, Ordering::AcqRel);
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
    stream: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<Result<(), ReplicationError>>>,
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
        let shared = Arc::new(Shared::default());
        let (stop, stop_rx) = watch::channel(false);
        let (first_tx, first_rx) = std::sync::mpsc::sync_channel(1);
        let stream = config.stream.clone();
        let connect_timeout = config.connect_timeout;
        let worker = Worker {
            config,
            store_id,
            source,
            shared: Arc::clone(&shared),
            stop: stop_rx,
            first: Some(first_tx),
        };
        let thread = std::thread::Builder::new()
            .name("events-nats-replicator".into())
            .spawn(move || worker.run())
            .map_err(ReplicationError::Thread)?;
        let mut replicator = Self {
            stream,
            shared,
            stop,
            thread: Some(thread),
        };
        match first_rx.recv_timeout(connect_timeout) {
            Ok(Ok(())) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(replicator),
            Ok(Err(())) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                // It ended on an error no retry fixes: return that error.
                match replicator.join() {
                    Err(error) => Err(error),
                    Ok(()) => Err(ReplicationError::Source(SourceError::Closed)),
                }
            }
        }
    }

    /// Its progress and counters.
    pub fn status(&self) -> ReplicationStatus {
        self.probe().status()
    }

    /// A handle that reads its status, for whoever reports on it (it does not keep it running).
    pub fn probe(&self) -> ReplicationProbe {
        ReplicationProbe {
            stream: self.stream.clone(),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Every event up to this position is in the stream.
    pub fn replicated_position(&self) -> u64 {
        self.shared.replicated.load(Ordering::Acquire)
    }

    /// Waits at most `timeout` until every event up to `position` is in the stream; whether it
    /// is. Returns early (false) when the replicator stopped or failed.
    pub fn wait_replicated(&self, position: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self
            .shared
            .progress_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.replicated_position() >= position {
                return true;
            }
            if matches!(
                self.shared.state(),
                ReplicatorState::Stopped | ReplicatorState::Failed
            ) {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self
                .shared
                .progress
                .wait_timeout(guard, (deadline - now).min(Duration::from_millis(100)))
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }

    /// Stops publishing (acks in flight are awaited, at most the ack timeout), joins the
    /// thread and returns the final status.
    ///
    /// # Errors
    ///
    /// The error that stopped it, when one did (the ones [`Replicator::start`] names, found
    /// later, e.g. after a reconnect).
    pub fn stop(mut self) -> Result<ReplicationStatus, ReplicationError> {
        self.stop.send_replace(true);
        self.join()?;
        Ok(self.status())
    }

    fn join(&mut self) -> Result<(), ReplicationError> {
        self.stop.send_replace(true);
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        match thread.join() {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(name: "events_nats_replicator_panicked", stream = %self.stream, "the replicator thread panicked");
                Err(ReplicationError::Thread(std::io::Error::other(
                    "the replicator thread panicked",
                )))
            }
        }
    }
}

impl Drop for Replicator {
    fn drop(&mut self) {
        if let Err(error) = self.join() {
            tracing::warn!(name: "events_nats_replicator_failed", stream = %self.stream, error = %error, "replicator ended on an error");
        }
    }
}

/// Why a session ended.
enum SessionEnd {
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
    stop: watch::Receiver<bool>,
    first: Option<std::sync::mpsc::SyncSender<Result<(), ()>>>,
}

impl Worker {
    fn run(mut self) -> Result<(), ReplicationError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("events-nats-replicator-io")
            .build()
            .map_err(ReplicationError::Thread)?;
        let result = runtime.block_on(self.replicate());
        // Reads still blocking on the log end by themselves (their wait is short).
        runtime.shutdown_timeout(Duration::from_secs(1));
        match &result {
            Ok(()) => self.shared.set_state(ReplicatorState::Stopped),
            Err(error) => {
                self.shared.note_error(&error.to_string());
                self.shared.set_state(ReplicatorState::Failed);
                tracing::error!(name: "events_nats_replication_failed", stream = %self.config.stream, error = %error, "replication stopped on an error");
            }
        }
        result
    }

    fn report_first(&mut self, ok: bool) {
        if let Some(first) = self.first.take() {
            let _ = first.try_send(if ok { Ok(()) } else { Err(()) });
        }
    }

    async fn replicate(&mut self) -> Result<(), ReplicationError> {
        let span = tracing::info_span!("events_nats_replicate", stream = %self.config.stream, url = %self.config.url);
        let _entered = span.enter();
        let client = match self.connect().await {
            Ok(client) => client,
            Err(error) => {
                self.report_first(false);
                return Err(error);
            }
        };
        let js = jetstream::context::ContextBuilder::new()
            .timeout(self.config.ack_timeout)
            .max_ack_inflight(self.config.max_in_flight)
            .backpressure_on_inflight(true)
            .build(client.clone());
        let mut backoff = self.config.retry_min;
        loop {
            if *self.stop.borrow() {
                return Ok(());
            }
            self.shared.sessions.fetch_add(1, Ordering::Relaxed);
            self.shared.set_state(ReplicatorState::Connecting);
            let before = self.shared.replicated.load(Ordering::Acquire);
            match self.session(&js, &client).await {
                SessionEnd::Stopped => {
                    self.report_first(true);
                    return Ok(());
                }
                SessionEnd::Fatal(error) => {
                    self.report_first(false);
                    return Err(error);
                }
                SessionEnd::Retry(reason) => {
                    self.shared.note_error(&reason);
                    self.shared.set_state(ReplicatorState::Retrying);
                    if self.shared.replicated.load(Ordering::Acquire) > before {
                        backoff = self.config.retry_min;
                    }
                    tracing::warn!(name: "events_nats_replication_retry", stream = %self.config.stream, reason = %reason, backoff_ms = backoff.as_millis() as u64, "replication session ended; retrying");
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.wait_for(|stop| *stop) => return Ok(()),
                    }
                    backoff = (backoff * 2).min(self.config.retry_max);
                }
            }
        }
    }

    async fn connect(&self) -> Result<async_nats::Client, ReplicationError> {
        let shared = Arc::clone(&self.shared);
        let stream = self.config.stream.clone();
        let options = async_nats::ConnectOptions::new()
            .name(format!("eventlog-replicator-{}", self.config.stream))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(self.config.connect_timeout)
            .request_timeout(Some(self.config.ack_timeout))
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
            });
        let servers =
            server_addrs(&self.config.url).map_err(|reason| ReplicationError::InvalidConfig {
                setting: "url",
                reason,
            })?;
        options
            .connect(servers)
            .await
            .map_err(|error| ReplicationError::Nats {
                context: format!("connect to {}", self.config.url),
                source: Box::new(error),
            })
    }

    /// One session: check the stream, then publish from its last sequence on until an error.
    async fn session(&mut self, js: &Context, client: &async_nats::Client) -> SessionEnd {
        let prefix = self.config.subject_prefix_or_default();
        let stream = match ensure_stream(js, &self.config, &prefix, &self.store_id).await {
            Ok(stream) => stream,
            Err(error) => return classify(error),
        };
        let stream_last = stream.cached_info().state.last_sequence;
        if let Err(end) = self.check_agreement(&stream, stream_last).await {
            return end;
        }
        self.report_first(true);
        self.shared.advance(stream_last);
        self.shared.set_state(ReplicatorState::Replicating);
        tracing::info!(name: "events_nats_replication_resumed", stream = %self.config.stream, from_position = stream_last + 1, "replicating");

        let max_payload = client.server_info().max_payload;
        let (acks_tx, acks_rx) = mpsc::channel(self.config.max_in_flight);
        let sender = self.send(js, &prefix, stream_last + 1, max_payload, acks_tx);
        let acker = self.await_acks(acks_rx);
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
        let source = Arc::clone(&self.source);
        let events = read_blocking(source, stream_last, 1, Duration::ZERO).await?;
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
    ) -> Result<(), SessionEnd> {
        let batch = self.config.read_batch;
        let mut next = from;
        let mut pending = spawn_read(&self.source, next, batch, Duration::ZERO);
        let mut last_lag_report = Instant::now();
        loop {
            if *self.stop.borrow() {
                return Ok(());
            }
            let events = match pending.await {
                Ok(result) => result.map_err(source_end)?,
                Err(join) => return Err(SessionEnd::Retry(format!("log read failed: {join}"))),
            };
            let Some(last) = events.last().map(|e| e.position) else {
                pending = spawn_read(&self.source, next, batch, IDLE_WAIT);
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
            // Read ahead while this batch is published.
            pending = spawn_read(&self.source, next, batch, Duration::ZERO);
            for event in &events {
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
                                position: event.position,
                                bytes: size,
                                max: max_payload,
                            })
                        } else {
                            SessionEnd::Retry(format!(
                                "publish of position {}: {error}",
                                event.position
                            ))
                        }
                    })?;
                self.shared.published.fetch_add(1, Ordering::Relaxed);
                if acks.send((event.position, ack)).await.is_err() {
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

    /// Awaits each publish's ack, in order; the first failure ends the session.
    async fn await_acks(
        &self,
        mut acks: mpsc::Receiver<(u64, PublishAckFuture)>,
    ) -> Result<(), SessionEnd> {
        let mut in_order: VecDeque<u64> = VecDeque::new();
        while let Some((position, ack)) = acks.recv().await {
            in_order.push_back(position);
            match ack.await {
                Ok(ack) if ack.sequence == position => {
                    in_order.pop_front();
                    self.shared.advance(position);
                }
                Ok(ack) => {
                    self.shared.publish_errors.fetch_add(1, Ordering::Relaxed);
                    return Err(SessionEnd::Retry(format!(
                        "position {position} was acknowledged as sequence {} (duplicate: {})",
                        ack.sequence, ack.duplicate
                    )));
                }
                Err(error) => {
                    self.shared.publish_errors.fetch_add(1, Ordering::Relaxed);
                    return Err(SessionEnd::Retry(format!(
                        "ack of position {position}: {error}"
                    )));
                }
            }
        }
        Ok(())
    }
}

fn spawn_read(
    source: &Arc<dyn ReplicaSource>,
    from: u64,
    max: usize,
    wait: Duration,
) -> tokio::task::JoinHandle<Result<Vec<RecordedEvent>, SourceError>> {
    let source = Arc::clone(source);
    tokio::task::spawn_blocking(move || source.read(from, max, wait))
}

async fn read_blocking(
    source: Arc<dyn ReplicaSource>,
    from: u64,
    max: usize,
    wait: Duration,
) -> Result<Vec<RecordedEvent>, SessionEnd> {
    match tokio::task::spawn_blocking(move || source.read(from, max, wait)).await {
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
fn classify(error: ReplicationError) -> SessionEnd {
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
