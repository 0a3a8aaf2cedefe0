//! [`ReplicationConfig`]: where and how a replicator ships the log; validated by
//! [`Replicator::start`](crate::Replicator::start).

use std::time::Duration;

use crate::error::ReplicationError;

/// The stream name used when none is set.
pub const DEFAULT_STREAM: &str = "EVENTLOG";

/// Which events a replicator may ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Ship {
    /// Only events on disk (the log's durable position). Nothing the stream holds can be lost
    /// by a crash of the writer, so the stream never gets ahead of the log. In a durable store
    /// every committed event is durable: this costs nothing there.
    #[default]
    Durable,
    /// Every committed event, durable or not (lower lag in a buffered store). A crash of the
    /// writer may lose events the stream already holds; the replicator then refuses to go on
    /// ([`ReplicationError::StreamAhead`] or [`ReplicationError::ContentMismatch`]).
    Committed,
}

/// Where and how a replicator ships the log. Every setting has a default; `url` is required.
///
/// ```
/// use std::time::Duration;
/// use events_nats::{ReplicationConfig, Ship};
///
/// let config = ReplicationConfig::new("nats://127.0.0.1:4222")
///     .stream("ORDERS")
///     .replicas(3)
///     .ship(Ship::Durable)
///     .max_in_flight(1024)
///     .ack_timeout(Duration::from_secs(2));
/// assert_eq!(config.subject_prefix_or_default(), "eventlog.ORDERS");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    pub(crate) url: String,
    pub(crate) stream: String,
    pub(crate) subject_prefix: Option<String>,
    pub(crate) replicas: usize,
    pub(crate) duplicate_window: Duration,
    pub(crate) ship: Ship,
    pub(crate) max_in_flight: usize,
    pub(crate) read_batch: usize,
    pub(crate) linger: Duration,
    pub(crate) ack_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
}

impl ReplicationConfig {
    /// Ships to the NATS server(s) at `url`: `nats://host:port`, or several comma-separated
    /// (the nodes of a cluster).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            stream: DEFAULT_STREAM.to_owned(),
            subject_prefix: None,
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            ship: Ship::Durable,
            max_in_flight: 4096,
            read_batch: 2048,
            linger: Duration::from_millis(50),
            ack_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
        }
    }

    /// The JetStream stream this store owns. Default = `EVENTLOG` ([`DEFAULT_STREAM`]).
    /// Letters, digits, `-` and `_` only.
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = name.into();
        self
    }

    /// Subjects are `<prefix>.<aggregate_type>.<aggregate_id>`. Default = `eventlog.<stream>`
    /// (so two stores' streams never claim the same subjects).
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = Some(prefix.into());
        self
    }

    /// Replicas of a stream the replicator creates (1 to 5; a cluster needs as many nodes).
    /// An existing stream keeps its own. Default = 1.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// JetStream's duplicate window of a stream the replicator creates. Default = 2 minutes.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Which events may be shipped. Default = [`Ship::Durable`].
    pub fn ship(mut self, ship: Ship) -> Self {
        self.ship = ship;
        self
    }

    /// Publishes awaiting their ack at most (1 to 65 536). Default = 4096.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max;
        self
    }

    /// Events read from the log at a time (1 to 65 536). Default = 2048.
    pub fn read_batch(mut self, events: usize) -> Self {
        self.read_batch = events;
        self
    }

    /// After a read that found fewer than `read_batch` events (the replicator has caught up),
    /// how long to wait before reading again, so that what the store commits meanwhile is
    /// shipped together (0 to 1 s). A longer linger costs lag and saves CPU on both sides:
    /// each read and each short burst of publishes costs a wake-up, a log read and a socket
    /// write here, and a read and a flush in the server. A full batch is followed by the next
    /// read at once. Default = 50 ms.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// How long an ack (or a stream request) may take before its outcome is unknown and is
    /// read back from the stream. Default = 5 s.
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// How long [`Replicator::start`](crate::Replicator::start) waits for the first connection
    /// and the stream's checks before it returns and goes on trying in the background.
    /// Default = 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The pause after a failure, doubling up to `max` while failures repeat.
    /// Default = 100 ms to 5 s.
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.retry_min = min;
        self.retry_max = max;
        self
    }

    /// Which events may be shipped.
    pub fn shipping(&self) -> Ship {
        self.ship
    }

    /// The stream's name.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The subject prefix, the default one when none was set.
    pub fn subject_prefix_or_default(&self) -> String {
        self.subject_prefix
            .clone()
            .unwrap_or_else(|| format!("eventlog.{}", self.stream))
    }

    /// Checks every setting.
    pub(crate) fn validate(&self) -> Result<(), ReplicationError> {
        let invalid = |setting, reason: &str| {
            Err(ReplicationError::InvalidConfig {
                setting,
                reason: reason.to_owned(),
            })
        };
        if let Err(reason) = server_addrs(&self.url) {
            return invalid("url", &reason);
        }
        if let Err(reason) = check_stream_name(&self.stream) {
            return invalid("stream", &reason);
        }
        let prefix = self.subject_prefix_or_default();
        if prefix.is_empty()
            || prefix
                .split('.')
                .any(|t| t.is_empty() || t.contains(['*', '>']) || t.contains(char::is_whitespace))
        {
            return invalid(
                "subject_prefix",
                "must be dot-separated non-empty tokens without wildcards or whitespace",
            );
        }
        if !(1..=5).contains(&self.replicas) {
            return invalid("replicas", "must be 1 to 5");
        }
        if !(1..=65_536).contains(&self.max_in_flight) {
            return invalid("max_in_flight", "must be 1 to 65536");
        }
        if !(1..=65_536).contains(&self.read_batch) {
            return invalid("read_batch", "must be 1 to 65536");
        }
        for (setting, value) in [
            ("ack_timeout", self.ack_timeout),
            ("connect_timeout", self.connect_timeout),
            ("duplicate_window", self.duplicate_window),
            ("retry_backoff", self.retry_min),
        ] {
            if value.is_zero() {
                return invalid(setting, "must be more than zero");
            }
        }
        if self.linger > Duration::from_secs(1) {
            return invalid("linger", "must be at most 1 s");
        }
        if self.retry_max < self.retry_min {
            return invalid("retry_backoff", "max is below min");
        }
        Ok(())
    }
}

/// The servers a URL names: one `nats://host:port`, or several comma-separated (a cluster).
pub(crate) fn server_addrs(url: &str) -> Result<Vec<async_nats::ServerAddr>, String> {
    url.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<async_nats::ServerAddr>()
                .map_err(|e| format!("{part}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|addrs| {
            if addrs.is_empty() {
                Err("empty".to_owned())
            } else {
                Ok(addrs)
            }
        })
}

/// Whether `name` can name a JetStream stream (letters, digits, `-`, `_`; at most 255).
pub(crate) fn check_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err("must be 1 to 255 characters".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("letters, digits, '-' and '_' only".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(config: ReplicationConfig) -> &'static str {
        match config.validate() {
            Err(ReplicationError::InvalidConfig { setting, .. }) => setting,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert!(
            ReplicationConfig::new("nats://127.0.0.1:4222")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let base = || ReplicationConfig::new("nats://127.0.0.1:4222");
        assert_eq!(refused(base().stream("a.b")), "stream");
        assert_eq!(refused(base().stream("")), "stream");
        assert_eq!(refused(base().subject_prefix("a.*")), "subject_prefix");
        assert_eq!(refused(base().subject_prefix("a..b")), "subject_prefix");
        assert_eq!(refused(base().replicas(0)), "replicas");
        assert_eq!(refused(base().replicas(6)), "replicas");
        assert_eq!(refused(base().max_in_flight(0)), "max_in_flight");
        assert_eq!(refused(base().read_batch(0)), "read_batch");
        assert_eq!(refused(base().ack_timeout(Duration::ZERO)), "ack_timeout");
        assert_eq!(
            refused(base().retry_backoff(Duration::from_secs(2), Duration::from_secs(1))),
            "retry_backoff"
        );
        assert_eq!(refused(ReplicationConfig::new(" ")), "url");
        assert_eq!(
            refused(base().linger(Duration::from_millis(1001))),
            "linger"
        );
        assert!(base().linger(Duration::ZERO).validate().is_ok());
    }
}
