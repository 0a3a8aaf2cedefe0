//! Replication into NATS JetStream: [`EventLog::replicate`] starts an
//! [`events_nats::Replicator`] over this log. The replicator reads the store on its own threads
//! (never from the append path) and waits for new events on the publisher's feed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use events_core::{Position, RecordedEvent};
use events_nats::{
    ReplicaSource, ReplicationConfig, ReplicationError, ReplicationProbe, Replicator, Ship,
    SourceError,
};

use crate::error::ReadError;
use crate::log::EventLog;

/// How often a read for durable events re-checks the durable position while it waits (the
/// publisher's feed wakes on commits, not on flushes).
const DURABLE_POLL: Duration = Duration::from_millis(10);

impl EventLog {
    /// Starts replicating this log into the NATS JetStream stream `config` names: every event
    /// (by default every durable one, see [`Ship`]) in log order, exactly once, the stream's
    /// sequence equal to the event's position. It runs on its own threads and never holds up
    /// an append; when NATS is away it backs off and catches up from the store later. Stop it
    /// with [`Replicator::stop`] before [`EventLog::close`] (closing the log stops it too).
    /// Its progress is in [`Admin::metrics`](crate::Admin::metrics) (`replication`).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use eventlog::{EventLog, EventLogConfig, ReplicationConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// let replicator = log.replicate(ReplicationConfig::new("nats://127.0.0.1:4222").stream("ORDERS"))?;
    /// // ... appends ...
    /// let status = replicator.stop()?;
    /// assert_eq!(status.replicated_position, log.last_position()?.get());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// (`tests/replicate.rs` runs this against a real `nats-server`.)
    ///
    /// # Errors
    ///
    /// As [`Replicator::start`]: [`ReplicationError::InvalidConfig`], the stream's ownership
    /// and agreement checks when NATS answered in time, [`ReplicationError::Source`] with
    /// [`SourceError::Closed`] when the log is closed.
    pub fn replicate(&self, config: ReplicationConfig) -> Result<Replicator, ReplicationError> {
        let source = Arc::new(StoreSource {
            log: self.clone(),
            ship: config.shipping(),
        });
        let replicator = Replicator::start(config, source)?;
        self.inner().replications.register(replicator.probe());
        Ok(replicator)
    }
}

/// The replicators started on a log, for its metrics.
#[derive(Debug, Default)]
pub(crate) struct Replications {
    probes: std::sync::Mutex<Vec<ReplicationProbe>>,
}

impl Replications {
    fn register(&self, probe: ReplicationProbe) {
        let mut probes = crate::projection::lock(&self.probes);
        // Ended replicators are forgotten once another starts.
        probes.retain(|p| !p.is_finished());
        probes.push(probe);
    }

    pub(crate) fn statuses(&self) -> Vec<events_nats::ReplicationStatus> {
        crate::projection::lock(&self.probes)
            .iter()
            .map(ReplicationProbe::status)
            .collect()
    }
}

/// The log as a replicator sees it.
struct StoreSource {
    log: EventLog,
    ship: Ship,
}

impl StoreSource {
    fn horizon(&self) -> Result<u64, SourceError> {
        let position = match self.ship {
            Ship::Committed => self.log.last_position(),
            _ => self.log.durable_position(),
        };
        position.map(Position::get).map_err(source_error)
    }
}

impl ReplicaSource for StoreSource {
    fn store_id(&self) -> Result<String, SourceError> {
        self.log
            .with_store(|s| Ok::<_, ReadError>(s.store_id().to_owned()))
            .map_err(source_error)
    }

    fn read(
        &self,
        from: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<RecordedEvent>, SourceError> {
        let deadline = Instant::now() + wait;
        let mut horizon = self.horizon()?;
        while horizon < from {
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let pause = (deadline - now).min(DURABLE_POLL);
            self.log.inner().publisher.wait_committed(from - 1, pause);
            if self.log.is_closed() {
                return Err(SourceError::Closed);
            }
            horizon = self.horizon()?;
        }
        let count = usize::try_from(horizon - from + 1).map_or(max, |n| n.min(max));
        self.log
            .read_log(Position(from), Some(count))
            .map_err(source_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SourceError::Read(Box::new(e)))
    }

    fn last_position(&self) -> Result<u64, SourceError> {
        self.log
            .last_position()
            .map(Position::get)
            .map_err(source_error)
    }
}

fn source_error(error: ReadError) -> SourceError {
    match error {
        ReadError::Closed => SourceError::Closed,
        other => SourceError::Read(Box::new(other)),
    }
}
