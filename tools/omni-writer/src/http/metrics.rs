//! What `/metrics` shows, in the OpenMetrics text format (the Prometheus format) produced by
//! `prometheus-client`: the daemon's own instruments ([`AppendMetrics`], fed by the workers), and
//! what is read at scrape time ([`ScrapeCollector`]: the store's metrics, the subscriptions,
//! the last checkpoint, the process's resident memory).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use eventlog::{EventLog, NewEvent, ReplicationMetrics};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::checkpoints::Taken;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The label of the appended-events counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EventTypeLabel {
    event_type: String,
}

/// What the workers measure around their appends (only with `--http`).
#[derive(Debug)]
pub struct AppendMetrics {
    appended: Family<EventTypeLabel, Counter>,
    append_seconds: Histogram,
}

impl Default for AppendMetrics {
    fn default() -> Self {
        Self {
            appended: Family::default(),
            // 50 µs to ~1.6 s, doubling.
            append_seconds: Histogram::new(exponential_buckets(50e-6, 2.0, 16)),
        }
    }
}

impl AppendMetrics {
    /// The event types of an append about to be made, counted per type (a step has a handful
    /// of events of one to three types).
    pub fn types_of<'a>(events: impl IntoIterator<Item = &'a NewEvent>) -> Vec<(String, u64)> {
        let mut types: Vec<(String, u64)> = Vec::new();
        for event in events {
            match types.iter_mut().find(|(t, _)| *t == event.event_type) {
                Some((_, count)) => *count += 1,
                None => types.push((event.event_type.clone(), 1)),
            }
        }
        types
    }

    /// Counts an acknowledged append: its events by type (from [`AppendMetrics::types_of`]) and
    /// how long the call took.
    pub fn appended(&self, types: Vec<(String, u64)>, took: Duration) {
        for (event_type, count) in types {
            self.appended
                .get_or_create(&EventTypeLabel { event_type })
                .inc_by(count);
        }
        self.append_seconds.observe(took.as_secs_f64());
    }
}

/// Reads the store and the process at each scrape. Runs on a blocking thread (the facade is
/// synchronous): `/metrics` renders inside `spawn_blocking`.
#[derive(Debug)]
pub struct ScrapeCollector {
    log: EventLog,
    taken: Arc<Taken>,
}

/// A gauge with no labels.
fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: impl EncodeGaugeValue,
) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, unit, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// One of the store's histograms (`events_sled::HistogramSnapshot`, not re-exported by the
/// facade, hence its parts): `cumulative` are its `(le, count)` buckets, each counting the
/// observations at or below `le`; they become the per-bucket counts the encoder expects, with
/// the `+Inf` bucket last.
struct StoreHistogram<'a> {
    name: &'a str,
    help: &'a str,
    unit: Option<&'a Unit>,
    cumulative: Vec<(f64, u64)>,
    count: u64,
    sum: f64,
}

impl StoreHistogram<'_> {
    fn encode(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let mut buckets = Vec::with_capacity(self.cumulative.len() + 1);
        let mut below = 0_u64;
        for &(le, count) in &self.cumulative {
            buckets.push((le, count.saturating_sub(below)));
            below = count;
        }
        buckets.push((f64::INFINITY, self.count.saturating_sub(below)));
        encoder
            .encode_descriptor(self.name, self.help, self.unit, MetricType::Histogram)?
            .encode_histogram::<NoLabelSet>(self.sum, self.count, &buckets, None)
    }
}

impl Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        match self.log.admin().metrics() {
            Ok(metrics) => {
                let store = &metrics.store;
                let groups = &store.group_events;
                StoreHistogram {
                    name: "eventlog_group_events",
                    help: "Events per group write since the store opened: one log record each \
                           (in durable mode one fdatasync, shared by the appends in it).",
                    unit: None,
                    cumulative: groups.buckets.iter().map(|b| (b.le, b.count)).collect(),
                    count: groups.count,
                    sum: groups.sum,
                }
                .encode(&mut encoder)?;
                let syncs = &store.log_sync_seconds;
                StoreHistogram {
                    name: "eventlog_log_sync",
                    help: "Duration of each fdatasync of the log's active segment since the \
                           store opened (durable mode's per-group sync and every flush's).",
                    unit: Some(&Unit::Seconds),
                    cumulative: syncs.buckets.iter().map(|b| (b.le, b.count)).collect(),
                    count: syncs.count,
                    sum: syncs.sum,
                }
                .encode(&mut encoder)?;
                gauge(
                    &mut encoder,
                    "eventlog_last_position",
                    "Position of the last acknowledged event.",
                    None,
                    store.last_position,
                )?;
                gauge(
                    &mut encoder,
                    "eventlog_durable_position",
                    "Every event up to this position is on disk.",
                    None,
                    store.durable_position,
                )?;
                gauge(
                    &mut encoder,
                    "eventlog_store_failed",
                    "1 once the store failed (a write or sync failed: it appends nothing more \
                     until reopened), else 0.",
                    None,
                    u64::from(store.failure.is_some()),
                )?;
                let mut lag = encoder.encode_descriptor(
                    "eventlog_subscription_lag",
                    "Events published but not yet handled, per subscription.",
                    None,
                    MetricType::Gauge,
                )?;
                for subscriber in &metrics.bus.subscribers {
                    lag.encode_family(&[("subscription", subscriber.name.as_str())])?
                        .encode_gauge(&subscriber.lag)?;
                }
                encode_replication(&mut encoder, &metrics.replication)?;
            }
            Err(error) => {
                tracing::debug!(name: "omni_writer_http_metrics_unreadable", error = %error, "the store's metrics are unreadable");
            }
        }
        if let Some(age) = self.taken.age() {
            gauge(
                &mut encoder,
                "omni_writer_checkpoint_age",
                "Seconds since this daemon's last checkpoint (absent before the first one).",
                Some(&Unit::Seconds),
                age.as_secs_f64(),
            )?;
        }
        if let Some(bytes) = resident_bytes() {
            gauge(
                &mut encoder,
                "omni_writer_resident_memory",
                "Resident memory of the daemon's process (VmRSS of /proc/self/status).",
                Some(&Unit::Bytes),
                bytes,
            )?;
        }
        Ok(())
    }
}

/// A replicator's value, read at scrape time.
type ReplicationValue = fn(&ReplicationMetrics) -> u64;

/// Each replicator's progress (with `--replicate`), labelled by stream: where it is, how far
/// behind, and what went wrong on the way. Absent without a replicator.
fn encode_replication(
    encoder: &mut DescriptorEncoder,
    replication: &[ReplicationMetrics],
) -> fmt::Result {
    if replication.is_empty() {
        return Ok(());
    }
    let families: [(&str, &str, MetricType, ReplicationValue); 6] = [
        (
            "eventlog_replicated_position",
            "Every event up to this log position is in the stream (acknowledged by JetStream).",
            MetricType::Gauge,
            |r| r.replicated_position,
        ),
        (
            "eventlog_replication_lag_events",
            "Events committed to the log and not yet in the stream.",
            MetricType::Gauge,
            |r| r.replication_lag_events,
        ),
        (
            "eventlog_replication_published",
            "Messages the replicator published (retries included).",
            MetricType::Counter,
            |r| r.published,
        ),
        (
            "eventlog_replication_publish_errors",
            "Publishes that failed or whose outcome was unknown (each ends a session; the next \
             one reads the stream back).",
            MetricType::Counter,
            |r| r.publish_errors,
        ),
        (
            "eventlog_replication_disconnects",
            "Times the replicator lost its connection to NATS.",
            MetricType::Counter,
            |r| r.disconnects,
        ),
        (
            "eventlog_replication_reconnects",
            "Times the replicator's connection to NATS was re-established after a loss.",
            MetricType::Counter,
            |r| r.reconnects,
        ),
    ];
    for (name, help, kind, value) in families {
        let mut family = encoder.encode_descriptor(name, help, None, kind)?;
        for r in replication {
            let labels = [("stream", r.stream.as_str())];
            let mut metric = family.encode_family(&labels)?;
            if matches!(kind, MetricType::Counter) {
                metric.encode_counter::<NoLabelSet, _, u64>(&value(r), None)?;
            } else {
                metric.encode_gauge(&value(r))?;
            }
        }
    }
    let mut state = encoder.encode_descriptor(
        "eventlog_replication_state",
        "1 for the replicator's state: connecting, replicating, retrying, stopped or failed \
         (failed: it ships nothing more until the daemon restarts).",
        None,
        MetricType::Gauge,
    )?;
    for r in replication {
        state
            .encode_family(&[("stream", r.stream.as_str()), ("state", r.state)])?
            .encode_gauge(&1_u64)?;
    }
    Ok(())
}

/// The process's resident set (`VmRSS`), in bytes; `None` where `/proc` does not tell.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// The registry `/metrics` encodes: the workers' instruments and the scrape collector.
pub fn registry(
    append: &AppendMetrics,
    inspector_requests: &Counter,
    log: EventLog,
    taken: Arc<Taken>,
) -> Registry {
    let mut registry = Registry::default();
    registry.register(
        "omni_writer_inspector_requests",
        "Requests the inspector answered (its page, assets and /api/...)",
        inspector_requests.clone(),
    );
    registry.register(
        "omni_writer_events_appended",
        "Events this daemon appended (acknowledged by the store), by event type",
        append.appended.clone(),
    );
    registry.register_with_unit(
        "omni_writer_append_duration",
        "Duration of each append call of the daemon (one pipeline step, one or more \
         aggregates), until acknowledged: in durable mode, on disk",
        Unit::Seconds,
        append.append_seconds.clone(),
    );
    registry.register_collector(Box::new(ScrapeCollector { log, taken }));
    registry
}

/// The registry in the OpenMetrics text format.
///
/// # Errors
///
/// When encoding fails (a collector's formatting error).
pub fn render(registry: &Registry) -> Result<String, fmt::Error> {
    let mut text = String::with_capacity(8 << 10);
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tomni-writer\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tlots kB\n"), None);
    }

    #[test]
    fn the_process_has_a_resident_set() {
        assert!(resident_bytes().is_some_and(|bytes| bytes > 0));
    }
}
