//! With `--nats URL`: `log`, `stream`, `tail` and `info` read a JetStream stream a store was
//! replicated into (printed as the store's own commands print), `restore` rebuilds a store
//! from one, `merge` merges several into one.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use eventlog::{
    Durability, EventRegistry, Follower, RecordedEvent, RestoreReport, StreamReader, StreamSummary,
    restore_from_stream_with,
};
use events_nats::{MergeConfig, Merger, merge_until_caught_up};
use serde_json::{Value, json};

use crate::cli::Command;
use crate::commands::Status;
use crate::commands::events::{LogOptions, StreamOptions, print, wanted};
use crate::out::Out;
use crate::progress;
use crate::source;

/// How long connecting, and each request, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a read up to the stream's last message waits for the next one before it says the
/// stream stalled (the messages are in the stream already).
const STALL: Duration = Duration::from_secs(30);

/// How long each wait of a follow (`tail`, `log --follow`) lasts before it waits again.
const FOLLOW_WAIT: Duration = Duration::from_secs(1);

/// How long `merge` (without --follow) may take to catch up with its sources.
const MERGE_TIMEOUT: Duration = Duration::from_secs(600);

/// The command's name, for messages.
pub fn name(command: &Command) -> &'static str {
    match command {
        Command::Info { .. } => "info",
        Command::Streams { .. } => "streams",
        Command::Stream { .. } => "stream",
        Command::Log { .. } => "log",
        Command::Tail { .. } => "tail",
        Command::Restore { .. } => "restore",
        Command::Merge { .. } => "merge",
        Command::Types => "types",
        Command::Trace { .. } => "trace",
        Command::Snapshot { .. } => "snapshot",
        Command::Verify => "verify",
        Command::State { .. } => "state",
        Command::Checkpoint(_) => "checkpoint",
        Command::Migrate { .. } => "migrate",
        Command::Repair => "repair",
    }
}

/// Runs `command` against the stream `stream` at `url`.
///
/// # Errors
///
/// A command that needs a store; no server, no such stream, a message that is not an event.
pub fn run(
    command: &Command,
    url: &str,
    stream: &str,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    match command {
        Command::Info { verify: true } => {
            bail!(
                "`info --verify` verifies a store: with --nats, `restore --into DIR` verifies what the stream holds"
            )
        }
        Command::Merge {
            sources,
            replicas,
            follow,
        } => return merge(url, stream, sources, *replicas, *follow, json, out),
        Command::Info { .. }
        | Command::Log { .. }
        | Command::Stream { .. }
        | Command::Tail { .. }
        | Command::Restore { .. } => {}
        other => bail!(
            "`{}` reads a store, not a NATS stream: with --nats, the commands are log, stream, \
             tail, info, restore and merge",
            name(other)
        ),
    }
    let reader = StreamReader::connect(url, stream, CONNECT_TIMEOUT)
        .with_context(|| format!("reading stream {stream} at {url}"))?;
    let registry = omni_domain::registry();
    if let Some(options) = LogOptions::of(command) {
        return log(&reader, &registry, options, json, out);
    }
    if let Some((aggregate_type, aggregate_id, options)) = StreamOptions::of(command) {
        return aggregate(
            &reader,
            &registry,
            aggregate_type,
            aggregate_id,
            options,
            json,
            out,
        );
    }
    match command {
        Command::Tail {
            from,
            max_events,
            aggregate_type,
            event_type,
        } => {
            let from = match from {
                Some(from) => *from,
                None => reader.summary()?.last_sequence + 1,
            };
            log(
                &reader,
                &registry,
                LogOptions {
                    from,
                    limit: *max_events,
                    aggregate_type: aggregate_type.as_deref(),
                    event_type: event_type.as_deref(),
                    follow: true,
                },
                json,
                out,
            )
        }
        Command::Restore { into } => restore(&reader, into, json, out),
        _ => info(&reader.summary()?, json, out),
    }
}

/// A stream's events from a sequence, up to `until` (waiting at most [`STALL`] for each), or
/// for ever (following).
struct Events {
    follower: Follower,
    stream: String,
    until: Option<u64>,
}

impl Events {
    /// Up to the stream's last message as of now, or for ever when `follow`.
    fn open(reader: &StreamReader, from: u64, follow: bool) -> anyhow::Result<Self> {
        let until = if follow {
            None
        } else {
            Some(reader.summary()?.last_sequence)
        };
        Ok(Self {
            follower: reader.follow(from.max(1))?,
            stream: reader.stream().to_owned(),
            until,
        })
    }

    /// One aggregate's events up to its last one as of now, in a store's own stream: the
    /// server delivers only them.
    fn aggregate(
        reader: &StreamReader,
        aggregate_type: &str,
        aggregate_id: &str,
        last: u64,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            follower: reader.follow_aggregate(1, aggregate_type, aggregate_id)?,
            stream: reader.stream().to_owned(),
            until: Some(last),
        })
    }
}

impl Iterator for Events {
    type Item = anyhow::Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self
                .until
                .is_some_and(|until| self.follower.next_sequence() > until)
            {
                return None;
            }
            let wait = if self.until.is_some() {
                STALL
            } else {
                FOLLOW_WAIT
            };
            match self.follower.next(wait) {
                Ok(Some(event)) => return Some(Ok(event)),
                Ok(None) if self.until.is_none() => {}
                Ok(None) => {
                    return Some(Err(anyhow!(
                        "stream {} delivered nothing for {STALL:?} at sequence {}",
                        self.stream,
                        self.follower.next_sequence()
                    )));
                }
                Err(error) => {
                    return Some(
                        Err(error).with_context(|| format!("reading stream {}", self.stream)),
                    );
                }
            }
        }
    }
}

/// `log` and `tail`: the stream's events from `options.from`, filtered.
fn log(
    reader: &StreamReader,
    registry: &EventRegistry,
    options: LogOptions<'_>,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    let events = Events::open(reader, options.from, options.follow)?;
    let (aggregate_type, event_type) = (options.aggregate_type, options.event_type);
    let filtered = events.filter(move |event| match event {
        Ok(event) => wanted(event, aggregate_type, event_type),
        Err(_) => true,
    });
    let limit = options.limit.unwrap_or(usize::MAX);
    print(registry, filtered.take(limit), json, options.follow, out)?;
    Ok(Status::Ok)
}

/// `stream TYPE ID`: one aggregate's events, ordered and cut as the store's `stream` does. In a
/// store's own stream the server delivers only the aggregate's messages, up to its last one; a
/// merged stream's subjects name its sources, so there the whole stream is read and filtered.
fn aggregate(
    reader: &StreamReader,
    registry: &EventRegistry,
    aggregate_type: &str,
    aggregate_id: &str,
    options: StreamOptions,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    let mut events = Vec::new();
    if reader.summary()?.is_merged() {
        for event in Events::open(reader, 1, false)? {
            let event = event?;
            let m = &event.metadata;
            if m.aggregate_type == aggregate_type && m.aggregate_id == aggregate_id {
                events.push(event);
            }
        }
    } else if let Some(last) = reader.last_sequence_of(aggregate_type, aggregate_id)? {
        for event in Events::aggregate(reader, aggregate_type, aggregate_id, last)? {
            events.push(event?);
        }
    }
    if events.is_empty() {
        bail!(
            "no aggregate {aggregate_type}/{aggregate_id} in stream {}",
            reader.stream()
        );
    }
    if options.backwards {
        events.reverse();
    }
    let from = options.from;
    let shown = events.into_iter().filter(|event| {
        from.is_none_or(|v| {
            if options.backwards {
                event.version() <= v
            } else {
                event.version() >= v
            }
        })
    });
    let shown = shown.take(options.limit.unwrap_or(usize::MAX)).map(Ok);
    print(registry, shown, json, false, out)?;
    Ok(Status::Ok)
}

/// The summary as JSON (field names as in `StreamSummary`).
fn summary_json(summary: &StreamSummary) -> Value {
    json!({
        "stream": summary.name,
        "owner_store": summary.owner_store,
        "subjects": summary.subjects,
        "sources": summary.sources,
        "messages": summary.messages,
        "bytes": summary.bytes,
        "first_sequence": summary.first_sequence,
        "last_sequence": summary.last_sequence,
        "replicas": summary.replicas,
        "leader": summary.leader,
    })
}

/// `info`: the stream's state and configuration.
fn info(summary: &StreamSummary, json: bool, out: &mut Out) -> anyhow::Result<Status> {
    if json {
        out.json(&summary_json(summary))?;
        return Ok(Status::Ok);
    }
    let or_dash = |value: Option<&str>| value.unwrap_or("-").to_owned();
    let list = |values: &[String]| {
        if values.is_empty() {
            "-".to_owned()
        } else {
            values.join(", ")
        }
    };
    out.line(format!("stream            {}", summary.name))?;
    out.line(format!(
        "owner store       {}",
        or_dash(summary.owner_store.as_deref())
    ))?;
    out.line(format!("subjects          {}", list(&summary.subjects)))?;
    out.line(format!("sources           {}", list(&summary.sources)))?;
    out.line(format!("messages          {}", summary.messages))?;
    out.line(format!("bytes             {}", summary.bytes))?;
    out.line(format!("first sequence    {}", summary.first_sequence))?;
    out.line(format!("last sequence     {}", summary.last_sequence))?;
    out.line(format!("replicas          {}", summary.replicas))?;
    out.line(format!(
        "leader            {}",
        or_dash(summary.leader.as_deref())
    ))?;
    Ok(Status::Ok)
}

/// `restore --into DIR`.
fn restore(
    reader: &StreamReader,
    into: &std::path::Path,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    let bar = progress::bar(0, "restoring");
    // Buffered: the restore flushes (and verifies) before it reports.
    let config = source::config(into).durability(Durability::Buffered);
    let restored = {
        let mut report = progress::callback(&bar);
        restore_from_stream_with(reader, config, &mut report)
    };
    bar.finish_and_clear();
    let report: RestoreReport = restored.with_context(|| {
        format!(
            "restoring stream {} into {}",
            reader.stream(),
            into.display()
        )
    })?;
    if json {
        out.json(&json!({
            "stream": report.stream,
            "owner_store": report.owner_store,
            "into": report.path,
            "events": report.events,
            "last_position": report.last_position,
            "chain_head": report.chain_head,
            "verified": true,
            "elapsed_ms": u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX),
        }))?;
    } else {
        out.line(format!(
            "restored {} events (positions 1..={}) from stream {}{} into {} in {:.2} s; \
             verified, chain head {}",
            report.events,
            report.last_position,
            report.stream,
            report
                .owner_store
                .as_deref()
                .map_or(String::new(), |store| format!(" (store {store})")),
            report.path.display(),
            report.elapsed.as_secs_f64(),
            report.chain_head,
        ))?;
    }
    Ok(Status::Ok)
}

/// `merge --sources A,B [--replicas N] [--follow]`.
fn merge(
    url: &str,
    stream: &str,
    sources: &[String],
    replicas: usize,
    follow: bool,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<Status> {
    let config = MergeConfig::new(url, stream, sources).replicas(replicas);
    let what = || format!("merging {} into {stream}", sources.join(", "));
    if follow {
        let merger = Merger::start(config).with_context(what)?;
        tracing::info!(stream, sources = %sources.join(","), "merging until interrupted");
        // Runs until the process is interrupted, or the merger stops on an error.
        while !merger.probe().is_finished() {
            std::thread::sleep(Duration::from_millis(500));
        }
        merger.stop().with_context(what)?;
        bail!("{} stopped", what());
    }
    merge_until_caught_up(config, MERGE_TIMEOUT).with_context(what)?;
    let summary = StreamReader::connect(url, stream, CONNECT_TIMEOUT)
        .and_then(|reader| reader.summary())
        .with_context(|| format!("reading stream {stream} at {url}"))?;
    info(&summary, json, out)
}
