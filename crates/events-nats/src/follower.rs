//! Reading a replicated stream from another machine: [`StreamReader`] (its summary, one
//! message) and [`Follower`] (its events in order from a sequence, exactly once per sequence).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::push::{Ordered, OrderedConfig};
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, RawMessageErrorKind, Stream};
use async_nats::jetstream::{self, Context};
use events_core::RecordedEvent;
use futures_util::StreamExt;
use tokio::runtime::Runtime;

use crate::config::{check_stream_name, server_addrs};
use crate::error::{BoxError, FollowError};
use crate::merger::merged_sources;
use crate::message::{self, from_message};
use crate::streams::stream_owner;

/// A stream's state and configuration, as its server reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// Its name.
    pub name: String,
    /// The store that owns it (a replicator's stream), if its description names one.
    pub owner_store: Option<String>,
    /// Its subjects (empty for a stream that only merges others).
    pub subjects: Vec<String>,
    /// The streams it merges (a [`Merger`](crate::Merger)'s stream), if any.
    pub sources: Vec<String>,
    /// Messages it holds.
    pub messages: u64,
    /// Bytes it holds.
    pub bytes: u64,
    /// Its first sequence (1 unless messages were removed).
    pub first_sequence: u64,
    /// Its last sequence (= the last position replicated, in a store's own stream).
    pub last_sequence: u64,
    /// Its replica count.
    pub replicas: usize,
    /// The cluster node leading it, in a cluster.
    pub leader: Option<String>,
}

impl StreamSummary {
    /// Whether it merges other streams (so positions in it repeat, and sequence != position).
    pub fn is_merged(&self) -> bool {
        !self.sources.is_empty()
    }
}

/// A connection to one stream, for reading. Owns a small tokio runtime (one worker thread named
/// `events-nats-reader`).
///
/// # Errors
///
/// Every call returns [`FollowError`]; calling it from inside a tokio runtime is refused with
/// [`FollowError::InvalidConfig`] (`runtime`).
pub struct StreamReader {
    runtime: Arc<Runtime>,
    js: Context,
    stream: String,
}

impl std::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl StreamReader {
    /// Connects to the server at `url` (waiting at most `timeout`) to read `stream`.
    ///
    /// # Errors
    ///
    /// [`FollowError::InvalidConfig`] for a bad stream name or when called inside a tokio
    /// runtime; [`FollowError::Connect`]; [`FollowError::NoSuchStream`].
    pub fn connect(url: &str, stream: &str, timeout: Duration) -> Result<Self, FollowError> {
        check_stream_name(stream).map_err(|reason| FollowError::InvalidConfig {
            setting: "stream",
            reason,
        })?;
        let servers = parse_url(url)?;
        outside_runtime()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("events-nats-reader")
            .enable_all()
            .build()
            .map_err(FollowError::Thread)?;
        let client = runtime
            .block_on(async {
                tokio::time::timeout(
                    timeout,
                    async_nats::ConnectOptions::new()
                        .name("eventlog-reader")
                        .connection_timeout(timeout)
                        .request_timeout(Some(timeout))
                        .connect(servers),
                )
                .await
            })
            .map_err(|elapsed| FollowError::Connect {
                url: url.to_owned(),
                source: Box::new(elapsed),
            })?
            .map_err(|error| FollowError::Connect {
                url: url.to_owned(),
                source: Box::new(error),
            })?;
        // The context spawns its acker task: it needs the runtime entered.
        let js = {
            let _entered = runtime.enter();
            jetstream::context::ContextBuilder::new()
                .timeout(timeout)
                .build(client)
        };
        let reader = Self {
            runtime: Arc::new(runtime),
            js,
            stream: stream.to_owned(),
        };
        reader.lookup()?;
        Ok(reader)
    }

    /// The stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    fn lookup(&self) -> Result<Stream, FollowError> {
        outside_runtime()?;
        self.runtime.block_on(async {
            self.js
                .get_stream(&self.stream)
                .await
                .map_err(|error| match error.kind() {
                    GetStreamErrorKind::JetStream(e)
                        if e.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                    {
                        FollowError::NoSuchStream {
                            stream: self.stream.clone(),
                        }
                    }
                    _ => nats(format!("look up stream {}", self.stream), error),
                })
        })
    }

    /// The stream's state and configuration, now.
    ///
    /// # Errors
    ///
    /// [`FollowError::NoSuchStream`]; [`FollowError::Nats`].
    pub fn summary(&self) -> Result<StreamSummary, FollowError> {
        let stream = self.lookup()?;
        let info = stream.cached_info();
        Ok(StreamSummary {
            name: info.config.name.clone(),
            owner_store: stream_owner(info.config.description.as_deref()).map(str::to_owned),
            subjects: info.config.subjects.clone(),
            sources: merged_sources(info.config.description.as_deref()).unwrap_or_default(),
            messages: info.state.messages,
            bytes: info.state.bytes,
            first_sequence: info.state.first_sequence,
            last_sequence: info.state.last_sequence,
            replicas: info.config.num_replicas,
            leader: info.cluster.as_ref().and_then(|c| c.leader.clone()),
        })
    }

    /// In a store's own stream, the sequence of one aggregate's last event (`None` when the
    /// stream holds none of its events): one request, by subject. With
    /// [`follow_aggregate`](Self::follow_aggregate) it reads an aggregate without reading the
    /// rest of the stream.
    ///
    /// # Errors
    ///
    /// [`FollowError::InvalidConfig`] (`stream`) for a merged stream, whose subjects name its
    /// sources, not aggregates; [`FollowError::NoSuchStream`]; [`FollowError::Nats`].
    pub fn last_sequence_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<u64>, FollowError> {
        let stream = self.lookup()?;
        let Some(prefix) = own_prefix(stream.cached_info()) else {
            return Err(FollowError::InvalidConfig {
                setting: "stream",
                reason: format!(
                    "{} is a merged stream: its subjects name its sources, not aggregates",
                    self.stream
                ),
            });
        };
        let subject = message::subject(prefix, aggregate_type, aggregate_id);
        match self
            .runtime
            .block_on(stream.get_last_raw_message_by_subject(&subject))
        {
            Ok(message) => Ok(Some(message.sequence)),
            Err(error) if matches!(error.kind(), LastRawMessageErrorKind::NoMessageFound) => {
                Ok(None)
            }
            Err(error) => Err(nats(format!("read the last message on {subject}"), error)),
        }
    }

    /// The event at `sequence`; `None` when the stream has no message there.
    ///
    /// # Errors
    ///
    /// [`FollowError::Decode`] when the message is not an event;
    /// [`FollowError::SequenceMismatch`] when, in a store's own stream, it carries another
    /// position; [`FollowError::Nats`].
    pub fn get(&self, sequence: u64) -> Result<Option<RecordedEvent>, FollowError> {
        let stream = self.lookup()?;
        let merged = is_merged(stream.cached_info());
        let message = self.runtime.block_on(stream.get_raw_message(sequence));
        let message = match message {
            Ok(message) => message,
            Err(error) if matches!(error.kind(), RawMessageErrorKind::NoMessageFound) => {
                return Ok(None);
            }
            Err(error) => return Err(nats(format!("read message {sequence}"), error)),
        };
        let event = decode(&self.stream, sequence, &message.headers, &message.payload)?;
        check_sequence(&self.stream, merged, sequence, &event)?;
        Ok(Some(event))
    }

    /// Follows the stream from `from` (a sequence; in a store's own stream, a position).
    ///
    /// # Errors
    ///
    /// [`FollowError::NoSuchStream`]; [`FollowError::Nats`].
    pub fn follow(&self, from: u64) -> Result<Follower, FollowError> {
        self.follow_filtered(from, None)
    }

    /// Follows one aggregate's events in the stream from `from`. In a store's own stream the
    /// server filters them by subject; in a merged one this follower does.
    ///
    /// # Errors
    ///
    /// [`FollowError::NoSuchStream`]; [`FollowError::Nats`].
    pub fn follow_aggregate(
        &self,
        from: u64,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Follower, FollowError> {
        self.follow_filtered(
            from,
            Some((aggregate_type.to_owned(), aggregate_id.to_owned())),
        )
    }

    fn follow_filtered(
        &self,
        from: u64,
        aggregate: Option<(String, String)>,
    ) -> Result<Follower, FollowError> {
        let stream = self.lookup()?;
        let info = stream.cached_info();
        let merged = is_merged(info);
        let filter_subject = match (&aggregate, own_prefix(info)) {
            (Some((t, id)), Some(prefix)) => message::subject(prefix, t, id),
            _ => String::new(),
        };
        let from = from.max(1);
        let messages = self.runtime.block_on(async {
            let consumer = stream
                .create_consumer(OrderedConfig {
                    deliver_subject: self.js.client().new_inbox(),
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: from,
                    },
                    filter_subject,
                    ..OrderedConfig::default()
                })
                .await
                .map_err(|e| nats(format!("create a consumer on {}", self.stream), e))?;
            consumer
                .messages()
                .await
                .map_err(|e| nats(format!("follow {}", self.stream), e))
        })?;
        Ok(Follower {
            runtime: Arc::clone(&self.runtime),
            messages,
            stream: self.stream.clone(),
            merged,
            next: from,
            aggregate,
        })
    }
}

/// A stream's events in order, from a sequence on, each sequence delivered once. In a store's
/// own stream the sequence is the event's position, and this is checked for every message.
/// Resume after a restart with [`StreamReader::follow`] from [`Follower::next_sequence`].
pub struct Follower {
    runtime: Arc<Runtime>,
    messages: Ordered,
    stream: String,
    merged: bool,
    next: u64,
    aggregate: Option<(String, String)>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("stream", &self.stream)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Follower {
    /// The next event, waiting at most `timeout` for it; `None` when none came in time.
    ///
    /// # Errors
    ///
    /// [`FollowError::Decode`]; [`FollowError::SequenceMismatch`]; [`FollowError::Nats`]
    /// when the consumer failed.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<RecordedEvent>, FollowError> {
        outside_runtime()?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = &mut self.messages;
            // The timer is made inside the runtime (it needs its clock).
            let item = self
                .runtime
                .block_on(async { tokio::time::timeout_at(deadline, messages.next()).await });
            let message = match item {
                Err(_elapsed) => return Ok(None),
                Ok(None) => {
                    return Err(nats(
                        format!("follow {}", self.stream),
                        "the consumer ended",
                    ));
                }
                Ok(Some(Err(error))) => {
                    return Err(nats(format!("follow {}", self.stream), error));
                }
                Ok(Some(Ok(message))) => message,
            };
            let sequence = message
                .info()
                .map_err(|e| nats(format!("follow {}", self.stream), e.to_string()))?
                .stream_sequence;
            if sequence < self.next {
                // Redelivered after the ordered consumer was recreated: delivered already.
                continue;
            }
            let headers = message.message.headers.clone().unwrap_or_default();
            let event = decode(&self.stream, sequence, &headers, &message.message.payload)?;
            check_sequence(&self.stream, self.merged, sequence, &event)?;
            self.next = sequence + 1;
            if let Some((t, id)) = &self.aggregate
                && (&event.metadata.aggregate_type != t || &event.metadata.aggregate_id != id)
            {
                continue;
            }
            return Ok(Some(event));
        }
    }

    /// The sequence the next event will have at least: where to resume from.
    pub fn next_sequence(&self) -> u64 {
        self.next
    }
}

/// The subject prefix of a store's own stream (one subject, `<prefix>.>`, its messages on
/// `<prefix>.<aggregate type>.<aggregate id>`); `None` for a merged stream, whose messages'
/// subjects name their source streams, not their aggregates.
fn own_prefix(info: &async_nats::jetstream::stream::Info) -> Option<&str> {
    match info.config.subjects.as_slice() {
        [one] if !is_merged(info) => one.strip_suffix(".>"),
        _ => None,
    }
}

/// Whether a stream merges others (a [`Merger`](crate::Merger)'s, or JetStream `sources`).
fn is_merged(info: &async_nats::jetstream::stream::Info) -> bool {
    merged_sources(info.config.description.as_deref()).is_some()
        || info.config.sources.as_ref().is_some_and(|s| !s.is_empty())
}

fn decode(
    stream: &str,
    sequence: u64,
    headers: &async_nats::HeaderMap,
    payload: &[u8],
) -> Result<RecordedEvent, FollowError> {
    from_message(headers, payload).map_err(|source| FollowError::Decode {
        stream: stream.to_owned(),
        sequence,
        source,
    })
}

fn check_sequence(
    stream: &str,
    merged: bool,
    sequence: u64,
    event: &RecordedEvent,
) -> Result<(), FollowError> {
    if !merged && event.position != sequence {
        return Err(FollowError::SequenceMismatch {
            stream: stream.to_owned(),
            sequence,
            position: event.position,
        });
    }
    Ok(())
}

fn parse_url(url: &str) -> Result<Vec<async_nats::ServerAddr>, FollowError> {
    server_addrs(url).map_err(|reason| FollowError::InvalidConfig {
        setting: "url",
        reason,
    })
}

fn outside_runtime() -> Result<(), FollowError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(FollowError::InvalidConfig {
            setting: "runtime",
            reason: "events-nats blocks: call it from a plain thread, not inside a tokio runtime"
                .into(),
        });
    }
    Ok(())
}

fn nats(context: impl Into<String>, source: impl Into<BoxError>) -> FollowError {
    FollowError::Nats {
        context: context.into(),
        source: source.into(),
    }
}
