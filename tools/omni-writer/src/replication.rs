//! `--replicate URL`: the log replicated into NATS JetStream while the daemon writes
//! ([`EventLog::replicate`]), and what a stop reports about it.
//!
//! Appends never wait for the replicator: it reads the store on its own threads. A stream that
//! belongs to another store or disagrees with the log ends replication for good; the daemon
//! goes on appending and says so (an error in the log, `/ready` 503, the summary).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use eventlog::{
    EventLog, ReplicationConfig, ReplicationError, ReplicationProbe, Replicator, ReplicatorState,
    Ship,
};
use serde::Serialize;

use crate::cli::{Args, ShipArg};

/// The stream of a store whose daemon was given no `--stream`.
pub fn default_stream(writer_id: Option<u16>) -> String {
    match writer_id {
        Some(k) => format!("{}-W{k}", events_nats::DEFAULT_STREAM),
        None => events_nats::DEFAULT_STREAM.to_owned(),
    }
}

/// Replication as the daemon runs it: a replicator, or the error that refused one at the start.
#[derive(Debug)]
pub struct Replication {
    url: String,
    stream: String,
    replicator: Option<Replicator>,
    refused: Option<String>,
}

/// What replication did, for the summary.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicationSummary {
    /// The NATS server(s).
    pub url: String,
    /// The stream this store owns.
    pub stream: String,
    /// The replicator's state at the end (`stopped`, or `failed`; `refused` when it never
    /// started).
    pub state: String,
    /// Every event up to this position is in the stream.
    pub replicated_position: u64,
    /// Events of the log not in the stream when the replicator stopped (the next run ships them).
    pub lag_events: u64,
    /// Whether the stream reached the log's last position within `--replicate-drain`.
    pub caught_up: bool,
    /// Messages published by this run (retries included).
    pub published: u64,
    /// Publishes that failed or whose outcome was unknown.
    pub publish_errors: u64,
    /// Times the connection to NATS was lost.
    pub disconnects: u64,
    /// Times it was re-established.
    pub reconnects: u64,
    /// The error that ended replication, if one did.
    pub error: Option<String>,
}

/// An error with its causes, on one line (a NATS error's context alone says little).
fn chain(error: &ReplicationError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Replication {
    /// Starts replicating `log` as `args` say (`None` without `--replicate`). Waits at most a few
    /// seconds for NATS; when it is unreachable the replicator goes on trying in the background.
    ///
    /// # Errors
    ///
    /// An invalid setting (`--stream` name, URL). A refusal by the stream (another store's, or
    /// one that disagrees with the log) is not an error of the daemon: it is kept for `/ready`
    /// and the summary.
    pub fn start(args: &Args, log: &EventLog) -> anyhow::Result<Option<Self>> {
        let Some(url) = &args.replicate else {
            return Ok(None);
        };
        let stream = args
            .stream
            .clone()
            .unwrap_or_else(|| default_stream(args.writer_id));
        let config = ReplicationConfig::new(url.clone())
            .stream(stream.clone())
            .replicas(usize::from(args.replicas))
            .ship(match args.ship {
                ShipArg::Durable => Ship::Durable,
                ShipArg::Committed => Ship::Committed,
            });
        let started = Instant::now();
        let (replicator, refused) = match log.replicate(config) {
            Ok(replicator) => {
                let status = replicator.status();
                let waited_ms = started.elapsed().as_millis() as u64;
                if status.state == ReplicatorState::Replicating {
                    tracing::info!(
                        name: "omni_writer_replicating",
                        url = %url,
                        stream = %stream,
                        replicated_position = status.replicated_position,
                        waited_ms,
                        "replicating the log into NATS JetStream"
                    );
                } else {
                    tracing::warn!(
                        name: "omni_writer_replication_waiting",
                        url = %url,
                        stream = %stream,
                        state = status.state.as_str(),
                        last_error = status.last_error.as_deref().unwrap_or(""),
                        waited_ms,
                        "NATS is not reachable yet: the daemon appends all the same and the \
                         replicator keeps trying in the background"
                    );
                }
                (Some(replicator), None)
            }
            Err(error @ ReplicationError::InvalidConfig { .. }) => {
                return Err(error).context("--replicate");
            }
            Err(error) => {
                let reason = chain(&error);
                tracing::error!(
                    name: "omni_writer_replication_refused",
                    url = %url,
                    stream = %stream,
                    error = %reason,
                    "REPLICATION REFUSED: the daemon appends all the same, /ready answers 503 with \
                     this reason; fix the stream (or --stream) and restart to replicate"
                );
                (None, Some(reason))
            }
        };
        Ok(Some(Self {
            url: url.clone(),
            stream,
            replicator,
            refused,
        }))
    }

    /// Why replication was refused at the start, if it was.
    pub fn refused(&self) -> Option<String> {
        self.refused.clone()
    }

    /// The stream.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Waits at most `drain` for the stream to reach `last_position`, stops the replicator and
    /// sums up.
    pub fn finish(self, last_position: u64, drain: Duration) -> ReplicationSummary {
        let Some(replicator) = self.replicator else {
            return ReplicationSummary {
                url: self.url,
                stream: self.stream,
                state: "refused".into(),
                replicated_position: 0,
                lag_events: last_position,
                caught_up: false,
                published: 0,
                publish_errors: 0,
                disconnects: 0,
                reconnects: 0,
                error: self.refused,
            };
        };
        let waited = Instant::now();
        let caught_up = replicator.wait_replicated(last_position, drain);
        let waited_ms = waited.elapsed().as_millis() as u64;
        // The probe outlives the replicator: its final status, whether `stop` succeeds or not.
        let probe: ReplicationProbe = replicator.probe();
        let stopping = Instant::now();
        let stopped = replicator.stop();
        // A session waiting on an unreachable server ends at its request timeout (5 s).
        let stop_ms = stopping.elapsed().as_millis() as u64;
        let status = probe.status();
        let error = match &stopped {
            Ok(_) => None,
            Err(error) => Some(chain(error)),
        };
        let summary = ReplicationSummary {
            url: self.url,
            stream: self.stream,
            state: status.state.as_str().to_owned(),
            replicated_position: status.replicated_position,
            lag_events: last_position.saturating_sub(status.replicated_position),
            caught_up,
            published: status.published,
            publish_errors: status.publish_errors,
            disconnects: status.disconnects,
            reconnects: status.reconnects,
            error,
        };
        match (&summary.error, caught_up) {
            (Some(error), _) => tracing::error!(
                name: "omni_writer_replication_failed",
                stream = %summary.stream,
                replicated_position = summary.replicated_position,
                last_position,
                error = %error,
                "REPLICATION FAILED: the stream stops at the replicated position"
            ),
            (None, true) => tracing::info!(
                name: "omni_writer_replication_drained",
                stream = %summary.stream,
                replicated_position = summary.replicated_position,
                waited_ms,
                stop_ms,
                "the stream holds the whole log"
            ),
            (None, false) => tracing::warn!(
                name: "omni_writer_replication_behind",
                stream = %summary.stream,
                replicated_position = summary.replicated_position,
                last_position,
                lag_events = summary.lag_events,
                waited_ms,
                stop_ms,
                "the stream did not catch up within --replicate-drain; the next run ships the rest"
            ),
        }
        summary
    }
}
