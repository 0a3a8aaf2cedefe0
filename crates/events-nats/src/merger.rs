//! [`Merger`]: one feed of several stores' streams, in a stream of its own.
//!
//! Why not JetStream `sources`: nats-server 2.9 keeps a sourced message's headers, including
//! the `Nats-Expected-Last-Sequence` every replicated event carries, and checks them against
//! the *merging* stream, where they do not hold: it refuses the messages and the merge stalls
//! (`crates/events-nats/tests/merged_stream.rs` shows it). So the merged stream is fed like a
//! store's own stream: by one publisher, the merger, which follows every source stream and
//! publishes each event with `Nats-Expected-Last-Sequence` = the merged stream's previous
//! sequence. Each source's events keep their headers (their position in their own log) and
//! land on the subject `<prefix>.<source stream>`, so a session resumes each source after the
//! last of its events the merged stream holds (read back from the stream, no local cursor).
//! The merged stream therefore holds every source's events exactly once, each source's in its
//! own position order, interleaved in the order the merger received them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::Context;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::config::{ReplicationConfig, check_stream_name};
use crate::error::ReplicationError;
use crate::follower::StreamReader;
use crate::message::header;
use crate::replicator::{
    ReplicationProbe, ReplicationStatus, SessionEnd, Shared, await_acks, classify, nats_error,
};
use crate::running::{Running, Sessions};
use crate::streams::get_or_create;

/// What the description of a merged stream starts with; the source streams follow,
/// comma-separated.
pub const MERGED_PREFIX: &str = "eventlog merged feed of ";

/// The header naming the stream an event of a merged stream came from.
pub const ORIGIN_STREAM: &str = "Eventlog-Origin-Stream";

/// The source streams a merged stream's description names, if it names any.
pub fn merged_sources(description: Option<&str>) -> Option<Vec<String>> {
    let list = description?.strip_prefix(MERGED_PREFIX)?;
    let sources: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    (!sources.is_empty()).then_some(sources)
}

/// Which streams to merge into which, and how. Every setting but the URL, the merged stream
/// and its sources has a default.
///
/// ```
/// use events_nats::MergeConfig;
///
/// let config = MergeConfig::new("nats://127.0.0.1:4222", "ALL", ["EVENTLOG-W1", "EVENTLOG-W2"])
///     .replicas(3);
/// assert_eq!(config.subject_for("EVENTLOG-W1"), "eventlog.ALL.EVENTLOG-W1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeConfig {
    base: ReplicationConfig,
    sources: Vec<String>,
}

impl MergeConfig {
    /// Merges the streams `sources` into the stream `stream` on the server(s) at `url`.
    pub fn new<S: Into<String>>(
        url: impl Into<String>,
        stream: impl Into<String>,
        sources: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            base: ReplicationConfig::new(url).stream(stream),
            sources: sources.into_iter().map(Into::into).collect(),
        }
    }

    /// Replicas of the merged stream when the merger creates it. Default = 1.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.base = self.base.replicas(replicas);
        self
    }

    /// Publishes awaiting their ack at most. Default = 4096.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.base = self.base.max_in_flight(max);
        self
    }

    /// How long an ack or a request may take. Default = 5 s.
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.base = self.base.ack_timeout(timeout);
        self
    }

    /// How long [`Merger::start`] waits for the first connection and checks. Default = 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.base = self.base.connect_timeout(timeout);
        self
    }

    /// The pause after a failure, doubling up to `max`. Default = 100 ms to 5 s.
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.base = self.base.retry_backoff(min, max);
        self
    }

    /// The subject a source's events land on in the merged stream.
    pub fn subject_for(&self, source: &str) -> String {
        format!("{}.{source}", self.base.subject_prefix_or_default())
    }

    fn description(&self) -> String {
        format!("{MERGED_PREFIX}{}", self.sources.join(", "))
    }

    fn validate(&self) -> Result<(), ReplicationError> {
        self.base.validate()?;
        let invalid = |reason: String| ReplicationError::InvalidConfig {
            setting: "sources",
            reason,
        };
        if self.sources.is_empty() {
            return Err(invalid("at least one stream to merge".into()));
        }
        for (i, source) in self.sources.iter().enumerate() {
            check_stream_name(source).map_err(|reason| invalid(format!("{source}: {reason}")))?;
            if source == self.base.stream_name() {
                return Err(invalid(format!("{source} is the merged stream itself")));
            }
            if self.sources[..i].contains(source) {
                return Err(invalid(format!("{source} is named twice")));
            }
        }
        Ok(())
    }
}

/// A running merger: one named thread owning a tokio runtime, feeding the merged stream from
/// its sources until stopped. Its status reports the merged stream's last sequence as
/// `replicated_position`.
#[derive(Debug)]
pub struct Merger {
    running: Running,
}

impl Merger {
    /// Starts merging. Waits at most the connect timeout for the first connection, the
    /// merged stream's checks and the sources' feeds (its state is then `replicating`).
    ///
    /// # Errors
    ///
    /// [`ReplicationError::InvalidConfig`]; [`ReplicationError::NotAnEventLogStream`] when the
    /// merged stream exists and is not a merged feed of exactly these sources;
    /// [`ReplicationError::Thread`].
    pub fn start(config: MergeConfig) -> Result<Self, ReplicationError> {
        config.validate()?;
        let running = Running::spawn("merger", config.base.clone(), move |shared| MergeWorker {
            config,
            shared,
        })?;
        Ok(Self { running })
    }

    /// Its progress: `replicated_position` is the merged stream's last acknowledged sequence.
    pub fn status(&self) -> ReplicationStatus {
        self.running.probe().status()
    }

    /// A handle that reads its status.
    pub fn probe(&self) -> ReplicationProbe {
        self.running.probe()
    }

    /// Stops it and joins its thread.
    ///
    /// # Errors
    ///
    /// The error that stopped it, if one did.
    pub fn stop(self) -> Result<ReplicationStatus, ReplicationError> {
        self.running.stop()
    }
}

/// Merges `config`'s sources until the merged stream holds every event each source held when
/// this was called, then stops. Returns the merged stream's final status.
///
/// # Errors
///
/// As [`Merger::start`]; [`ReplicationError::Nats`] when a source cannot be read or the merge
/// did not complete within `timeout`.
pub fn merge_until_caught_up(
    config: MergeConfig,
    timeout: Duration,
) -> Result<ReplicationStatus, ReplicationError> {
    let url = config.base.url().to_owned();
    let request_timeout = config.base.ack_timeout;
    let summary = |stream: &str| {
        StreamReader::connect(&url, stream, request_timeout)
            .and_then(|reader| reader.summary())
            .map_err(|e| nats_error(format!("read stream {stream}"), e))
    };
    let wanted: u64 = config
        .sources
        .iter()
        .map(|source| summary(source).map(|s| s.last_sequence))
        .sum::<Result<u64, _>>()?;
    let merged_stream = config.base.stream_name().to_owned();
    let merger = Merger::start(config)?;
    let deadline = Instant::now() + timeout;
    loop {
        // Sources are merged exactly once each, so the count says how far it got.
        let merged = summary(&merged_stream).map(|s| s.messages).unwrap_or(0);
        if merged >= wanted {
            return merger.stop();
        }
        if Instant::now() >= deadline || merger.probe().is_finished() {
            let status = merger.stop()?;
            return Err(nats_error(
                format!("merge into {merged_stream}"),
                format!("{merged} of {wanted} events merged in time; status {status:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct MergeWorker {
    config: MergeConfig,
    shared: Arc<Shared>,
}

impl Sessions for MergeWorker {
    fn session(
        &mut self,
        js: &Context,
        _client: &async_nats::Client,
        stop: &watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = SessionEnd> {
        MergeWorker::session(self, js, stop)
    }
}

impl MergeWorker {
    async fn session(&mut self, js: &Context, stop: &watch::Receiver<bool>) -> SessionEnd {
        let merged = match self.ensure_merged_stream(js).await {
            Ok(stream) => stream,
            Err(error) => return classify(error),
        };
        let merged_last = merged.cached_info().state.last_sequence;
        // Each source resumes after its last event the merged stream holds.
        let mut feeds = Vec::with_capacity(self.config.sources.len());
        let mut next_positions = Vec::with_capacity(self.config.sources.len());
        for (index, source) in self.config.sources.iter().enumerate() {
            let subject = self.config.subject_for(source);
            let done = match merged.get_last_raw_message_by_subject(&subject).await {
                Ok(message) => match message
                    .headers
                    .get(header::POSITION)
                    .and_then(|v| v.as_str().parse::<u64>().ok())
                {
                    Some(position) => position,
                    None => {
                        return SessionEnd::Fatal(ReplicationError::NotAnEventLogStream {
                            stream: self.config.base.stream_name().to_owned(),
                            subjects: subject,
                            found: format!("message {} without a position", message.sequence),
                        });
                    }
                },
                Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => 0,
                Err(e) => return SessionEnd::Retry(format!("read {subject}: {e}")),
            };
            let stream = match js.get_stream(source).await {
                Ok(stream) => stream,
                Err(e) => return SessionEnd::Retry(format!("source {source}: {e}")),
            };
            let consumer = match stream
                .create_consumer(OrderedConfig {
                    deliver_subject: js.client().new_inbox(),
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: done + 1,
                    },
                    ..OrderedConfig::default()
                })
                .await
            {
                Ok(consumer) => consumer,
                Err(e) => return SessionEnd::Retry(format!("follow {source}: {e}")),
            };
            match consumer.messages().await {
                Ok(messages) => feeds.push(messages.map(move |m| (index, m)).boxed()),
                Err(e) => return SessionEnd::Retry(format!("follow {source}: {e}")),
            }
            next_positions.push(done + 1);
        }
        self.shared.resumed(merged_last);
        tracing::info!(name: "events_nats_merge_resumed", stream = %self.config.base.stream_name(), merged_last, "merging");

        let (acks_tx, acks_rx) = mpsc::channel(self.config.base.max_in_flight);
        let sender = self.relay(js, feeds, next_positions, merged_last + 1, acks_tx, stop);
        let acker = await_acks(&self.shared, acks_rx);
        match tokio::try_join!(sender, acker) {
            Ok(((), ())) => SessionEnd::Stopped,
            Err(end) => end,
        }
    }

    async fn relay(
        &self,
        js: &Context,
        feeds: Vec<futures_util::stream::BoxStream<'static, (usize, OrderedItem)>>,
        mut next_positions: Vec<u64>,
        mut next_sequence: u64,
        acks: mpsc::Sender<(u64, async_nats::jetstream::context::PublishAckFuture)>,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), SessionEnd> {
        let mut merged = futures_util::stream::select_all(feeds);
        let mut stop = stop.clone();
        loop {
            let (index, item) = tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return Ok(()),
                item = merged.next() => match item {
                    Some(item) => item,
                    None => return Err(SessionEnd::Retry("a source's consumer ended".into())),
                },
            };
            let source = &self.config.sources[index];
            let message = item.map_err(|e| SessionEnd::Retry(format!("follow {source}: {e}")))?;
            let mut headers = message.message.headers.clone().unwrap_or_default();
            let position = headers
                .get(header::POSITION)
                .and_then(|v| v.as_str().parse::<u64>().ok());
            if position != Some(next_positions[index]) {
                return Err(SessionEnd::Retry(format!(
                    "{source} delivered position {position:?}, expected {}",
                    next_positions[index]
                )));
            }
            next_positions[index] += 1;
            headers.insert(
                header::NATS_EXPECTED_LAST_SEQUENCE,
                (next_sequence - 1).to_string().as_str(),
            );
            headers.insert(ORIGIN_STREAM, source.as_str());
            let publish = PublishMessage::build()
                .payload(message.message.payload.clone())
                .headers(headers);
            let ack = js
                .send_publish(self.config.subject_for(source), publish)
                .await
                .map_err(|e| {
                    self.shared
                        .publish_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    SessionEnd::Retry(format!("publish merged sequence {next_sequence}: {e}"))
                })?;
            self.shared
                .published
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if acks.send((next_sequence, ack)).await.is_err() {
                return Ok(());
            }
            next_sequence += 1;
        }
    }

    async fn ensure_merged_stream(&self, js: &Context) -> Result<Stream, ReplicationError> {
        let name = self.config.base.stream_name();
        let subjects = format!("{}.>", self.config.base.subject_prefix_or_default());
        let description = self.config.description();
        let (stream, created) = get_or_create(
            js,
            &self.config.base,
            "merged stream",
            &subjects,
            description.clone(),
        )
        .await?;
        if created {
            tracing::info!(name: "events_nats_merged_stream_created", stream = %name, sources = %self.config.sources.join(","), "created the merged stream");
        }
        let info = stream.cached_info();
        if info.config.description.as_deref() != Some(description.as_str())
            || info.config.subjects != [subjects.clone()]
        {
            return Err(ReplicationError::NotAnEventLogStream {
                stream: name.to_owned(),
                subjects,
                found: format!(
                    "description {:?}, subjects {:?}",
                    info.config.description.as_deref().unwrap_or(""),
                    info.config.subjects
                ),
            });
        }
        Ok(stream)
    }
}

type OrderedItem =
    Result<async_nats::jetstream::Message, async_nats::jetstream::consumer::push::OrderedError>;
