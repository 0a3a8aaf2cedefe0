//! The results of a run: the tables and the JSON object.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::child::Outcome;
use crate::input::PAYLOAD_BYTES;
use crate::systems::{SLED_CACHE_BYTES, SystemName};
use crate::workload::{BATCH, MANY_WRITERS, Scale, Shape, Workload};

/// What was asked for.
#[derive(Debug, Clone)]
pub struct RunInfo {
    scale: Scale,
    durable_events: Option<usize>,
    workloads: Vec<Workload>,
    systems: Vec<SystemName>,
    cpus: usize,
}

impl RunInfo {
    /// The run's settings.
    pub fn new(
        scale: Scale,
        durable_events: Option<usize>,
        workloads: &[Workload],
        systems: &[SystemName],
    ) -> Self {
        Self {
            scale,
            durable_events,
            workloads: workloads.to_vec(),
            systems: systems.to_vec(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    fn shape(&self, workload: Workload) -> Shape {
        Shape::of(workload, self.scale, self.durable_events)
    }

    /// One paragraph: the sizes, the machine, where the stores are.
    pub fn describe(&self, root: &Path) -> String {
        let single = self.shape(Workload::AppendSingle);
        let batch = self.shape(Workload::AppendBatch);
        let durable = self.shape(Workload::Durable1);
        format!(
            "events-bench: scale {:?}: W-append-single {} events over {} aggregates; \
             W-append-batch {} events ({} aggregates x {BATCH} per append); W-durable-1-writer/\
             W-durable-16-writers {} events ({MANY_WRITERS} writers: aggregates split by writer); \
             payload {PAYLOAD_BYTES} B; {} CPU(s); stores in {}",
            self.scale,
            num(single.events as f64),
            num(single.aggregates as f64),
            num(batch.events as f64),
            num(batch.aggregates as f64),
            num(durable.events as f64),
            self.cpus,
            root.display()
        )
    }
}

/// Every result of a run.
#[derive(Debug)]
pub struct Report {
    info: RunInfo,
    results: BTreeMap<Workload, BTreeMap<SystemName, Result<Outcome, String>>>,
    elapsed: Duration,
}

/// A progress line for one result.
pub fn progress(result: &anyhow::Result<Outcome>) -> String {
    match result {
        Ok(o) => match o.events_per_s {
            Some(rate) => format!(
                "{:>11} ev/s  ({} events in {:.2} s; {} B/event; peak RSS {} MB)",
                num(rate),
                num(o.events as f64),
                o.secs.unwrap_or(0.0),
                opt(o.bytes_per_event, num),
                opt(o.peak_rss_bytes.map(mb), num),
            ),
            None => o.note.clone().unwrap_or_else(|| "no figure".into()),
        },
        Err(e) => format!("FAILED: {e:#}"),
    }
}

/// Whether the SQLite baseline runs its shared-writer variant.
fn sqlite_shared_writer() -> bool {
    std::env::var_os(crate::systems::sqlite::SHARED_WRITER_ENV).is_some_and(|v| v == "1")
}

/// Milliseconds, to 3 significant digits or so.
fn ms(x: f64) -> String {
    if !x.is_finite() {
        "?".into()
    } else if x < 1.0 {
        format!("{x:.3}")
    } else if x < 100.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.0}")
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// A number with thousands separators (no decimals for large ones).
fn num(x: f64) -> String {
    if !x.is_finite() {
        return "?".into();
    }
    if x.abs() < 10.0 {
        return format!("{x:.2}");
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 { format!("-{out}") } else { out }
}

fn opt<T>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map_or_else(|| "-".into(), show)
}

/// Rounds for the JSON (figures, not measurements to the nanosecond).
fn round(x: f64, decimals: i32) -> f64 {
    let factor = 10_f64.powi(decimals);
    (x * factor).round() / factor
}

impl Report {
    /// An empty report.
    pub fn new(info: RunInfo) -> Self {
        Self {
            info,
            results: BTreeMap::new(),
            elapsed: Duration::ZERO,
        }
    }

    /// Records one pair's result.
    pub fn add(&mut self, workload: Workload, system: SystemName, result: anyhow::Result<Outcome>) {
        self.results
            .entry(workload)
            .or_default()
            .insert(system, result.map_err(|e| format!("{e:#}")));
    }

    /// Records how long the whole run took.
    pub fn finish(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
    }

    /// How many pairs failed.
    pub fn failures(&self) -> usize {
        self.results
            .values()
            .flat_map(|m| m.values())
            .filter(|r| r.is_err())
            .count()
    }

    fn outcome(&self, workload: Workload, system: SystemName) -> Option<&Outcome> {
        self.results.get(&workload)?.get(&system)?.as_ref().ok()
    }

    fn rate(&self, workload: Workload, system: SystemName) -> Option<f64> {
        self.outcome(workload, system)?.events_per_s
    }

    fn ratio(&self, workload: Workload, baseline: SystemName) -> Option<f64> {
        let ours = self.rate(workload, SystemName::Eventlog)?;
        let theirs = self.rate(workload, baseline)?;
        (theirs > 0.0).then(|| ours / theirs)
    }

    /// A cell: the figure, `n/a` when not available, `FAILED`, or `-` when not run.
    fn cell(
        &self,
        workload: Workload,
        system: SystemName,
        show: impl Fn(&Outcome) -> Option<String>,
    ) -> String {
        match self.results.get(&workload).and_then(|m| m.get(&system)) {
            None => "-".into(),
            Some(Err(_)) => "FAILED".into(),
            Some(Ok(o)) if o.events_per_s.is_none() => "n/a".into(),
            Some(Ok(o)) => show(o).unwrap_or_else(|| "-".into()),
        }
    }

    /// The tables, the notes and the errors, as text.
    pub fn tables(&self) -> String {
        let systems = SystemName::all();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nThroughput (events/s; ratio = eventlog / baseline, above 1 means eventlog is faster)\n"
        );
        let _ = writeln!(
            out,
            "{:<22} {:>9} {:>12} {:>12} {:>12} {:>10} {:>12}",
            "workload", "events", "eventlog", "sqlite", "raw_sled", "el/sqlite", "el/raw_sled"
        );
        for &workload in &self.info.workloads {
            let shape = self.info.shape(workload);
            let rates: Vec<String> = systems
                .iter()
                .map(|&s| self.cell(workload, s, |o| o.events_per_s.map(num)))
                .collect();
            let ratio = |baseline| {
                self.ratio(workload, baseline)
                    .map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
            };
            let name = if workload.zero_copy() {
                format!("{}*", workload.name())
            } else {
                workload.name().to_string()
            };
            let _ = writeln!(
                out,
                "{:<22} {:>9} {:>12} {:>12} {:>12} {:>10} {:>12}",
                name,
                num(shape.events as f64),
                rates[0],
                rates[1],
                rates[2],
                ratio(SystemName::Sqlite),
                ratio(SystemName::RawSled),
            );
        }
        if self.info.workloads.iter().any(|w| w.zero_copy()) {
            let _ = writeln!(
                out,
                "  * zero-copy: every event visited as a borrowed view (eventlog EventLog::scan_log, \
                 SQLite row.get_ref, raw sled slices); the other reads materialise owned values."
            );
        }
        out.push_str(&self.durable_table());
        out.push_str(&self.load_table());
        out.push_str(&self.subscribe_table());
        out.push_str(&self.replicate_table());
        let _ = writeln!(
            out,
            "\nResources (bytes allocated on disk per event after close; peak RSS of the process, \
             which includes the pre-generated input, about {} B per event)\n",
            PAYLOAD_BYTES + 28
        );
        let _ = writeln!(
            out,
            "{:<22} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10}",
            "workload", "B/ev el", "B/ev sql", "B/ev raw", "RSS MB el", "RSS MB sql", "RSS MB raw"
        );
        for &workload in &self.info.workloads {
            let bytes: Vec<String> = systems
                .iter()
                .map(|&s| {
                    self.cell(workload, s, |o| {
                        o.bytes_per_event.map(|b| format!("{b:.0}"))
                    })
                })
                .collect();
            let rss: Vec<String> = systems
                .iter()
                .map(|&s| {
                    self.cell(workload, s, |o| {
                        o.peak_rss_bytes.map(|b| format!("{:.0}", mb(b)))
                    })
                })
                .collect();
            let _ = writeln!(
                out,
                "{:<22} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10}",
                workload.name(),
                bytes[0],
                bytes[1],
                bytes[2],
                rss[0],
                rss[1],
                rss[2]
            );
        }
        let mut notes = Vec::new();
        for (workload, by_system) in &self.results {
            let mut by_note: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            let mut opens = Vec::new();
            for (system, result) in by_system {
                match result {
                    Ok(o) => {
                        if let Some(note) = &o.note {
                            by_note.entry(note).or_default().push(system.name());
                        }
                        if let Some(open) = o.open_secs {
                            opens.push(format!("{} {open:.2} s", system.name()));
                        }
                    }
                    Err(e) => notes.push(format!(
                        "{} / {}: FAILED: {e}",
                        workload.name(),
                        system.name()
                    )),
                }
            }
            for (note, systems) in by_note {
                notes.push(format!(
                    "{} / {}: {note}",
                    workload.name(),
                    systems.join(", ")
                ));
            }
            if !opens.is_empty() {
                notes.push(format!(
                    "{}: reopening the store (not timed) took {}",
                    workload.name(),
                    opens.join(", ")
                ));
            }
        }
        let _ = writeln!(out, "\nNotes:");
        let _ = writeln!(
            out,
            "  append figures include one final flush (SQLite: none needed, each commit is in its \
             WAL already).\n  raw_sled: no version checks, no global log (its W-read-all is a \
             scan in key order), one-event appends use insert instead of a one-key apply_batch \
             (see src/systems/raw_sled.rs)."
        );
        let _ = writeln!(
            out,
            "  sled page cache {} MiB for eventlog and raw_sled; SQLite {} uses its default cache.",
            SLED_CACHE_BYTES >> 20,
            rusqlite::version()
        );
        if sqlite_shared_writer() {
            let _ = writeln!(
                out,
                "  SQLite VARIANT: every writer thread shares one connection behind a mutex \
                 ({}=1), not a connection per thread.",
                crate::systems::sqlite::SHARED_WRITER_ENV
            );
        }
        for note in notes {
            let _ = writeln!(out, "  {note}");
        }
        let _ = writeln!(
            out,
            "\nTotal {:.1} s on {} CPU(s), scale {:?}.",
            self.elapsed.as_secs_f64(),
            self.info.cpus,
            self.info.scale
        );
        out
    }

    /// eventlog's W-durable-batch over SQLite's W-append-batch (synchronous=NORMAL): the storage
    /// issue's target for durable 100-event appends is phrased against that baseline.
    fn ratio_durable_batch_vs_normal(&self) -> Option<f64> {
        let ours = self.rate(Workload::DurableBatch, SystemName::Eventlog)?;
        let theirs = self.rate(Workload::AppendBatch, SystemName::Sqlite)?;
        (theirs > 0.0).then(|| ours / theirs)
    }

    fn durable_table(&self) -> String {
        let durable = [
            Workload::Durable1,
            Workload::Durable16,
            Workload::DurableBatch,
        ];
        if !durable.iter().any(|w| self.info.workloads.contains(w)) {
            return String::new();
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nDurable appends (every acknowledged append fsynced; SQLite synchronous=FULL)\n"
        );
        let _ = writeln!(
            out,
            "{:<22} {:>12} {:>12} {:>12} {:>10} {:>12}",
            "workload", "eventlog", "sqlite FULL", "raw_sled", "el/sqlite", "el/raw_sled"
        );
        let ratio = |w, b| {
            self.ratio(w, b)
                .map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
        };
        for workload in durable {
            if !self.info.workloads.contains(&workload) {
                continue;
            }
            let rate = |s| self.cell(workload, s, |o| o.events_per_s.map(num));
            let _ = writeln!(
                out,
                "{:<22} {:>12} {:>12} {:>12} {:>10} {:>12}",
                workload.name(),
                rate(SystemName::Eventlog),
                rate(SystemName::Sqlite),
                rate(SystemName::RawSled),
                ratio(workload, SystemName::Sqlite),
                ratio(workload, SystemName::RawSled),
            );
        }
        if let Some(r) = self.ratio_durable_batch_vs_normal() {
            let _ = writeln!(
                out,
                "  W-durable-batch (eventlog, durable) / W-append-batch (SQLite synchronous=NORMAL): \
                 {r:.2}x ({} vs {} events/s)",
                opt(self.rate(Workload::DurableBatch, SystemName::Eventlog), num),
                opt(self.rate(Workload::AppendBatch, SystemName::Sqlite), num),
            );
        }
        out
    }

    fn load_table(&self) -> String {
        let loads = [Workload::Load, Workload::LoadSnapshot];
        if !loads.iter().any(|w| self.info.workloads.contains(w)) {
            return String::new();
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nAggregate loads (ArticleGeneration, after reopening; ms per load: median [first])\n"
        );
        let _ = writeln!(
            out,
            "{:<18} {:>9} {:>8} {:>22} {:>22} {:>22}",
            "workload", "events", "applied", "eventlog", "sqlite", "raw_sled"
        );
        for workload in loads {
            if !self.info.workloads.contains(&workload) {
                continue;
            }
            let cell = |s| {
                self.cell(workload, s, |o| {
                    o.load
                        .as_ref()
                        .map(|l| format!("{} [{}]", ms(l.median_ms), ms(l.first_ms)))
                })
            };
            let applied = SystemName::all()
                .into_iter()
                .find_map(|s| self.outcome(workload, s)?.load.as_ref())
                .map_or_else(|| "-".into(), |l| num(l.events_applied as f64));
            let _ = writeln!(
                out,
                "{:<18} {:>9} {:>8} {:>22} {:>22} {:>22}",
                workload.name(),
                num(self.info.shape(workload).events as f64),
                applied,
                cell(SystemName::Eventlog),
                cell(SystemName::Sqlite),
                cell(SystemName::RawSled),
            );
            if workload == Workload::LoadSnapshot {
                let head = |s| {
                    self.cell(workload, s, |o| {
                        o.load.as_ref()?.head_snapshot_median_ms.map(ms)
                    })
                };
                let _ = writeln!(
                    out,
                    "{:<18} {:>9} {:>8} {:>22} {:>22} {:>22}",
                    "  (snapshot at head)",
                    "",
                    "0",
                    head(SystemName::Eventlog),
                    head(SystemName::Sqlite),
                    head(SystemName::RawSled),
                );
            }
        }
        out
    }

    fn subscribe_table(&self) -> String {
        let Some(d) = self
            .outcome(Workload::Subscribe, SystemName::Eventlog)
            .and_then(|o| o.deliver.as_ref())
        else {
            return String::new();
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nW-subscribe (eventlog; {} subscribers during W-append-single at {} appends/s): \
             publish→deliver p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs over {} deliveries; \
             draining after the last append took {:.2} s. SQLite and raw sled have no push \
             delivery: null.",
            d.subscribers,
            opt(self.rate(Workload::Subscribe, SystemName::Eventlog), num),
            num(d.p50_us),
            num(d.p99_us),
            num(d.p99_9_us),
            num(d.max_us),
            num(d.deliveries as f64),
            d.drain_secs
        );
        out
    }

    fn replicate_table(&self) -> String {
        let Some(r) = self
            .outcome(Workload::Replicate, SystemName::Eventlog)
            .and_then(|o| o.replicate.as_ref())
        else {
            return String::new();
        };
        let mut out = String::new();
        let alone: Vec<String> = r.append_alone_per_s.iter().map(|&x| num(x)).collect();
        // CPU per message: steadier than the rates on a shared machine.
        let per_event = |part: f64| format!("{:.1} µs", part * 1e6 / r.stream_messages as f64);
        let _ = writeln!(
            out,
            "\nW-replicate (eventlog; {} events of W-append-batch, buffered, into a local \
             single-node JetStream; max_in_flight {}, read_batch {})\n\
             \x20 appends alone:                 {} events/s (before; after)\n\
             \x20 whole log shipped from 1:      {} events/s ({:.2} s; CPU per event: replicator \
             {}, nats-server {})\n\
             \x20 baseline, bare publish:        {} messages/s (W's payloads, Nats-Msg-Id and \
             Nats-Expected-Last-Sequence only; CPU per message: publisher {}, nats-server {}); \
             shipped / bare = {:.3}\n\
             \x20 appends with replication on:   {} events/s = {:.3}x alone; the stream had \
             every event {:.2} s after the last append\n\
             \x20 lag while appending (every {} ms, {} samples): p50 {} / p99 {} / max {} \
             events; p50 {:.2} / p99 {:.2} / max {:.2} s\n\
             \x20 each stream: {} messages = the log's last position = its last sequence; \
             {} publish errors, {} sessions",
            num(r.stream_messages as f64),
            r.max_in_flight,
            r.read_batch,
            alone.join("; "),
            num(r.shipped_per_s),
            r.ship_secs,
            per_event(r.ship_cpu.replicator_secs),
            per_event(r.ship_cpu.nats_server_secs),
            num(r.bare_publish_per_s),
            per_event(r.bare_cpu.process_secs),
            per_event(r.bare_cpu.nats_server_secs),
            r.shipped_vs_bare,
            num(r.append_with_replication_per_s),
            r.append_ratio,
            r.drain_secs,
            r.lag.interval_ms,
            r.lag.samples,
            num(r.lag.p50_events as f64),
            num(r.lag.p99_events as f64),
            num(r.lag.max_events as f64),
            r.lag.p50_secs,
            r.lag.p99_secs,
            r.lag.max_secs,
            num(r.stream_messages as f64),
            r.publish_errors,
            r.sessions,
        );
        out
    }

    /// The JSON object: `{"workloads": {"<W name>": {"eventlog": .., "sqlite": .., "raw_sled":
    /// .., extras}}, run facts}`.
    pub fn to_json(&self) -> Value {
        let systems = SystemName::all();
        let mut workloads = Map::new();
        for &workload in &self.info.workloads {
            let shape = self.info.shape(workload);
            let mut entry = Map::new();
            for &system in &systems {
                entry.insert(
                    system.name().into(),
                    json!(self.rate(workload, system).map(|r| round(r, 1))),
                );
            }
            entry.insert("events".into(), json!(shape.events));
            entry.insert("aggregates".into(), json!(shape.aggregates));
            entry.insert("events_per_append".into(), json!(shape.per_append));
            entry.insert("writers".into(), json!(shape.writers));
            entry.insert("durable".into(), json!(shape.durable));
            entry.insert(
                "ratio_vs_sqlite".into(),
                json!(
                    self.ratio(workload, SystemName::Sqlite)
                        .map(|r| round(r, 3))
                ),
            );
            entry.insert(
                "ratio_vs_raw_sled".into(),
                json!(
                    self.ratio(workload, SystemName::RawSled)
                        .map(|r| round(r, 3))
                ),
            );
            let per_system = |field: &dyn Fn(&Outcome) -> Option<f64>| {
                let map: Map<String, Value> = systems
                    .iter()
                    .map(|&s| {
                        let value = self.outcome(workload, s).and_then(field);
                        (s.name().to_string(), json!(value))
                    })
                    .collect();
                Value::Object(map)
            };
            entry.insert(
                "bytes_per_event".into(),
                per_system(&|o| o.bytes_per_event.map(|b| round(b, 1))),
            );
            entry.insert(
                "peak_rss_mb".into(),
                per_system(&|o| o.peak_rss_bytes.map(|b| round(mb(b), 1))),
            );
            entry.insert(
                "input_rss_mb".into(),
                per_system(&|o| o.input_rss_bytes.map(|b| round(mb(b), 1))),
            );
            entry.insert("secs".into(), per_system(&|o| o.secs.map(|s| round(s, 3))));
            entry.insert("zero_copy".into(), json!(workload.zero_copy()));
            if workload == Workload::DurableBatch {
                entry.insert(
                    "ratio_vs_sqlite_normal_batch".into(),
                    json!(self.ratio_durable_batch_vs_normal().map(|r| round(r, 3))),
                );
            }
            if matches!(workload, Workload::Load | Workload::LoadSnapshot) {
                entry.insert(
                    "load_ms".into(),
                    per_system(&|o| o.load.as_ref().map(|l| round(l.median_ms, 4))),
                );
                entry.insert(
                    "first_load_ms".into(),
                    per_system(&|o| o.load.as_ref().map(|l| round(l.first_ms, 4))),
                );
                entry.insert(
                    "events_applied".into(),
                    per_system(&|o| o.load.as_ref().map(|l| l.events_applied as f64)),
                );
                if workload == Workload::LoadSnapshot {
                    entry.insert(
                        "head_snapshot_load_ms".into(),
                        per_system(&|o| {
                            o.load
                                .as_ref()?
                                .head_snapshot_median_ms
                                .map(|m| round(m, 4))
                        }),
                    );
                }
            }
            if workload == Workload::Subscribe {
                let deliver = self
                    .outcome(workload, SystemName::Eventlog)
                    .and_then(|o| o.deliver.as_ref());
                entry.insert("subscribers".into(), json!(crate::workload::SUBSCRIBERS));
                entry.insert(
                    "deliver_p50_us".into(),
                    json!(deliver.map(|d| round(d.p50_us, 1))),
                );
                entry.insert(
                    "deliver_p99_us".into(),
                    json!(deliver.map(|d| round(d.p99_us, 1))),
                );
                entry.insert(
                    "deliver_p99_9_us".into(),
                    json!(deliver.map(|d| round(d.p99_9_us, 1))),
                );
                entry.insert(
                    "deliver_max_us".into(),
                    json!(deliver.map(|d| round(d.max_us, 1))),
                );
            }
            if workload == Workload::Replicate {
                let figures = self
                    .outcome(workload, SystemName::Eventlog)
                    .and_then(|o| o.replicate.as_ref());
                let field = |f: &dyn Fn(&crate::replicate::ReplicateFigures) -> Value| {
                    figures.map_or(Value::Null, f)
                };
                entry.insert(
                    "append_alone_per_s".into(),
                    field(&|r| {
                        json!(
                            r.append_alone_per_s
                                .iter()
                                .map(|&x| round(x, 1))
                                .collect::<Vec<_>>()
                        )
                    }),
                );
                entry.insert(
                    "bare_publish_per_s".into(),
                    field(&|r| json!(round(r.bare_publish_per_s, 1))),
                );
                entry.insert(
                    "shipped_vs_bare".into(),
                    field(&|r| json!(round(r.shipped_vs_bare, 3))),
                );
                entry.insert(
                    "append_with_replication_per_s".into(),
                    field(&|r| json!(round(r.append_with_replication_per_s, 1))),
                );
                entry.insert(
                    "append_ratio".into(),
                    field(&|r| json!(round(r.append_ratio, 3))),
                );
                entry.insert(
                    "drain_secs".into(),
                    field(&|r| json!(round(r.drain_secs, 3))),
                );
                entry.insert("lag".into(), field(&|r| json!(r.lag)));
            }
            if let Some(by_system) = self.results.get(&workload) {
                let mut notes = Map::new();
                let mut errors = Map::new();
                let mut details = Map::new();
                for (system, result) in by_system {
                    match result {
                        Ok(o) => {
                            if let Some(note) = &o.note {
                                notes.insert(system.name().into(), json!(note));
                            }
                            details.insert(system.name().into(), json!(o));
                        }
                        Err(e) => {
                            errors.insert(system.name().into(), json!(e));
                        }
                    }
                }
                if !notes.is_empty() {
                    entry.insert("notes".into(), Value::Object(notes));
                }
                if !errors.is_empty() {
                    entry.insert("errors".into(), Value::Object(errors));
                }
                entry.insert("details".into(), Value::Object(details));
            }
            workloads.insert(workload.name().into(), Value::Object(entry));
        }
        json!({
            "workloads": workloads,
            "scale": self.info.scale,
            "durable_events": self.info.shape(Workload::Durable1).events,
            "payload_bytes": PAYLOAD_BYTES,
            "sled_cache_mb": SLED_CACHE_BYTES >> 20,
            "systems": self.info.systems.iter().map(|s| s.name()).collect::<Vec<_>>(),
            "cpus": self.info.cpus,
            "sqlite_shared_writer": sqlite_shared_writer(),
            "sqlite_version": rusqlite::version(),
            "elapsed_secs": round(self.elapsed.as_secs_f64(), 1),
            "failures": self.failures(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn numbers_get_separators() {
        assert_eq!(num(1_234_567.4), "1,234,567");
        assert_eq!(num(999.0), "999");
        assert_eq!(num(1.5), "1.50");
        assert_eq!(num(-12_345.0), "-12,345");
    }

    #[test]
    fn json_has_the_three_keys_and_null_where_unavailable() {
        let info = RunInfo::new(
            Scale::Tiny,
            None,
            &[Workload::AppendSingle, Workload::Load],
            &[SystemName::Eventlog, SystemName::Sqlite],
        );
        let mut report = Report::new(info);
        let outcome = |rate| Outcome {
            events: 1_000,
            events_per_s: Some(rate),
            ..Outcome::default()
        };
        report.add(
            Workload::AppendSingle,
            SystemName::Eventlog,
            Ok(outcome(2_000.0)),
        );
        report.add(
            Workload::AppendSingle,
            SystemName::Sqlite,
            Ok(outcome(1_000.0)),
        );
        report.add(Workload::Load, SystemName::Eventlog, Ok(Outcome::default()));
        let json = report.to_json();
        let single = &json["workloads"]["W-append-single"];
        assert_eq!(single["eventlog"], json!(2_000.0));
        assert_eq!(single["sqlite"], json!(1_000.0));
        assert_eq!(single["raw_sled"], Value::Null);
        assert_eq!(single["ratio_vs_sqlite"], json!(2.0));
        assert_eq!(json["workloads"]["W-load"]["eventlog"], Value::Null);
        assert!(report.tables().contains("2.00x"));
    }
}
