//! `events-dump --nats URL --stream NAME ...`: `log`, `stream`, `tail` and `info` read a
//! replicated stream and print what the same commands print from the store; `restore` rebuilds
//! the store event for event (hostile ids too) and refuses a target that holds something and a
//! merged stream; `merge` builds one feed of two stores; a missing stream is a clear error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{arg, dump, dump_bin, dump_ok, json_lines, json_object, stderr, stdout};
use eventlog::{
    Durability, EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent, Position,
    RecordedEvent, ReplicationConfig, StreamId,
};
use events_nats::LocalServer;
use omni_domain::{CacheHit, CacheMiss, GenerationConfig, PipelineStarted};

const WAIT: Duration = Duration::from_secs(30);

/// Aggregate ids NATS subjects cannot carry as they are.
const HOSTILE_IDS: [&str; 7] = ["a b", "x.y", "*", ">", "ünï cødé", "a.*.>", "%41"];

fn config(dir: &Path) -> EventLogConfig {
    EventLogConfig::new(dir)
        .registry(omni_domain::registry())
        .durability(Durability::Buffered)
}

fn hit(id: &str, n: u64, context: EventContext) -> NewEvent {
    let hit = CacheHit {
        cache_key: format!("key-{n}"),
        cache_type: "memory".into(),
        response_time: 0.001,
    };
    NewEvent::from_event(id, &hit, context).unwrap()
}

fn miss(id: &str, n: u64) -> NewEvent {
    let miss = CacheMiss {
        cache_key: format!("key {n}"),
        cache_type: "disk".into(),
        reason: "not_found".into(),
    };
    NewEvent::from_event(id, &miss, EventContext::new("dump-test")).unwrap()
}

fn started(id: &str) -> NewEvent {
    let started = PipelineStarted {
        pipeline_type: "single_instance".into(),
        config: GenerationConfig {
            model_type: "openai".into(),
            temperature: 0.7,
            max_tokens: 4096,
            language: "pt-BR".into(),
        },
        total_prompts: 3,
    };
    NewEvent::from_event(id, &started, EventContext::new("dump-test")).unwrap()
}

/// A context with every field set, in characters headers do not carry as they are.
fn hostile_context(n: u64) -> EventContext {
    EventContext::new(format!("src {n} ø"))
        .with_trace_id(format!("trace.{n}.*>"))
        .with_user_id("üser")
        .with_session_id("s;1=2")
        .with_correlation_id(format!("corr %{n}"))
        .with_causation_id("cause x")
}

fn append(log: &EventLog, events: Vec<NewEvent>) {
    let stream = StreamId::new(
        events[0].aggregate_type.clone(),
        events[0].aggregate_id.clone(),
    );
    log.append(&stream, ExpectedVersion::Any, events).unwrap();
}

/// About `rounds * 3` events: cache aggregates interleaved, hostile ids and contexts, a few
/// pipelines; `tag` keeps two stores' ids apart.
fn fill(log: &EventLog, tag: &str, rounds: u64) {
    for i in 0..rounds {
        let id = format!("{tag}-{}", i % 13);
        append(
            log,
            vec![hit(&id, i, EventContext::new("dump-test")), miss(&id, i)],
        );
        let hostile = HOSTILE_IDS[(i % HOSTILE_IDS.len() as u64) as usize];
        append(log, vec![hit(hostile, i, hostile_context(i))]);
        if i % 100 == 0 {
            append(log, vec![started(&format!("{tag} pipeline {i}"))]);
        }
    }
}

/// Replicates `log` into `stream`, runs `meanwhile`, and waits until the stream holds all of
/// the log.
fn replicate(log: &EventLog, url: &str, stream: &str, meanwhile: impl FnOnce()) {
    let replicator = log
        .replicate(ReplicationConfig::new(url).stream(stream))
        .unwrap();
    meanwhile();
    log.flush().unwrap();
    let last = log.last_position().unwrap().get();
    assert!(
        replicator.wait_replicated(last, WAIT),
        "{:?}",
        replicator.status()
    );
    replicator.stop().unwrap();
}

/// A closed store of about 1 500 events at `dir`, replicated into `stream`; its store id.
fn replicated_store(dir: &Path, url: &str, stream: &str, tag: &str) -> String {
    let log = EventLog::open(config(dir)).unwrap();
    fill(&log, tag, 500);
    replicate(&log, url, stream, || {});
    let id = log.admin().store_id().unwrap();
    log.close().unwrap();
    id
}

fn all(dir: &Path) -> Vec<RecordedEvent> {
    let log = EventLog::open(config(dir)).unwrap();
    let events = log
        .read_log(Position::START, None)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let report = log.admin().verify().unwrap();
    assert!(report.ok, "{:?}", report.issues);
    log.close().unwrap();
    events
}

/// The one-line error of a run that must fail with exit status 2.
fn fails(args: &[&str]) -> String {
    let output = dump(args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "events-dump {args:?}: {}",
        stdout(&output)
    );
    let message = stderr(&output);
    assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    message
}

/// The same command's stdout from the store and from the stream.
fn both(store: &Path, url: &str, stream: &str, command: &[&str]) -> (String, String) {
    let mut from_store = vec!["--store", arg(store)];
    from_store.extend_from_slice(command);
    (
        stdout(&dump_ok(&from_store)),
        stdout(&dump_ok(&at(url, stream, command))),
    )
}

/// `--nats URL --stream STREAM` and `command`.
fn at<'a>(url: &'a str, stream: &'a str, command: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--nats", url, "--stream", stream];
    args.extend_from_slice(command);
    args
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                found.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

#[test]
fn log_stream_tail_and_info_read_the_stream_as_the_store_reads() {
    let server = LocalServer::start().unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_id = replicated_store(&store, &url, "DUMP", "c");
    let last = all(&store).len();

    for command in [
        &["log", "--json"][..],
        &["log"],
        &["log", "--from", "700", "--limit", "40", "--json"],
        &["log", "--type", "pipeline"],
        &[
            "log",
            "--event-type",
            "cache_miss",
            "--limit",
            "25",
            "--json",
        ],
        &["stream", "cache", "c-3", "--json"],
        &[
            "stream",
            "cache",
            "c-3",
            "--backwards",
            "--from",
            "20",
            "--limit",
            "5",
        ],
        &[
            "stream", "cache", "c-3", "--from", "30", "--limit", "4", "--json",
        ],
        &["stream", "pipeline", "c pipeline 100"],
    ] {
        let (from_store, from_stream) = both(&store, &url, "DUMP", command);
        assert!(from_store.lines().count() > 1, "{command:?}: {from_store}");
        assert_eq!(from_stream, from_store, "{command:?}");
    }
    let everything = json_lines(&dump_ok(&["--store", arg(&store), "log", "--json"]));
    assert_eq!(everything.len(), last);
    for id in HOSTILE_IDS {
        let (from_store, from_stream) =
            both(&store, &url, "DUMP", &["stream", "cache", id, "--json"]);
        let lines: Vec<&str> = from_stream.lines().collect();
        assert!(lines.len() > 50, "{id:?}");
        assert_eq!(from_stream, from_store, "{id:?}");
        assert!(
            lines[0].contains("trace.") && lines[0].contains("üser"),
            "{}",
            lines[0]
        );
    }

    // tail from the first sequence: the first events, as `log` prints them.
    let tail = dump_ok(&at(
        &url,
        "DUMP",
        &["tail", "--from", "1", "--max-events", "30", "--json"],
    ));
    assert_eq!(json_lines(&tail), everything[..30]);

    let info = json_object(&dump_ok(&at(&url, "DUMP", &["info", "--json"])));
    assert_eq!(info["stream"], "DUMP");
    assert_eq!(info["owner_store"], store_id.as_str());
    assert_eq!(info["subjects"], serde_json::json!(["eventlog.DUMP.>"]));
    assert_eq!(info["sources"], serde_json::json!([]));
    assert_eq!(
        (info["messages"].as_u64(), info["last_sequence"].as_u64()),
        (Some(last as u64), Some(last as u64))
    );
    assert_eq!(
        (info["first_sequence"].as_u64(), info["replicas"].as_u64()),
        (Some(1), Some(1))
    );
    let text = stdout(&dump_ok(&at(&url, "DUMP", &["info"])));
    assert!(
        text.contains(&format!("owner store       {store_id}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("last sequence     {last}")),
        "{text}"
    );

    // Commands that need a store say so.
    for command in [
        &["types"][..],
        &["verify"],
        &["streams"],
        &["info", "--verify"],
    ] {
        let message = fails(&at(&url, "DUMP", command));
        assert!(message.contains("store"), "{command:?}: {message}");
    }
}

#[test]
fn tail_prints_new_events_as_they_are_replicated() {
    let server = LocalServer::start().unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log = EventLog::open(config(&store)).unwrap();
    fill(&log, "t", 20);
    replicate(&log, &url, "TAIL", || {});
    let before = log.last_position().unwrap().get();

    let mut tail = Command::new(dump_bin())
        .args(at(&url, "TAIL", &["tail", "--max-events", "12"]))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    // The table's header comes once tail follows the stream.
    let header = lines.next().unwrap().unwrap();
    assert!(header.starts_with("POSITION"), "{header}");

    replicate(&log, &url, "TAIL", || fill(&log, "new", 6));
    log.close().unwrap();

    let rows: Vec<String> = lines.map(Result::unwrap).collect();
    let status = tail.wait().unwrap();
    assert!(status.success(), "tail exited with {status}");
    let expected = stdout(&dump_ok(&[
        "--store",
        arg(&store),
        "log",
        "--from",
        &(before + 1).to_string(),
        "--limit",
        "12",
    ]));
    let expected: Vec<&str> = expected.lines().skip(1).collect();
    assert_eq!(rows, expected, "the 12 events after {before}");
}

#[test]
fn restore_rebuilds_the_store_and_refuses_what_it_must() {
    let server = LocalServer::start().unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_id = replicated_store(&store, &url, "ORIG", "r");
    let original = all(&store);

    let restored = dir.path().join("restored");
    let report = json_object(&dump_ok(&at(
        &url,
        "ORIG",
        &["restore", "--into", arg(&restored), "--json"],
    )));
    let last = original.len() as u64;
    assert_eq!(
        (report["events"].as_u64(), report["last_position"].as_u64()),
        (Some(last), Some(last))
    );
    assert_eq!(report["owner_store"], store_id.as_str());
    assert_eq!(report["verified"], true);
    assert_eq!(all(&restored), original, "event for event, every field");
    let (from_original, from_restored) = (
        stdout(&dump_ok(&["--store", arg(&store), "log", "--json"])),
        stdout(&dump_ok(&["--store", arg(&restored), "log", "--json"])),
    );
    assert_eq!(from_restored, from_original);

    // A text report too, into a new directory.
    let again = dir.path().join("again");
    let text = stdout(&dump_ok(&at(
        &url,
        "ORIG",
        &["restore", "--into", arg(&again)],
    )));
    assert!(
        text.starts_with(&format!("restored {last} events")),
        "{text}"
    );
    assert!(text.contains("verified"), "{text}");

    // A directory that holds a store is refused and left as it was.
    let before = files(&store);
    let message = fails(&at(&url, "ORIG", &["restore", "--into", arg(&store)]));
    assert!(message.contains("not empty"), "{message}");
    assert_eq!(files(&store), before);

    // A merged stream is refused.
    dump_ok(&at(&url, "ALL", &["merge", "--sources", "ORIG"]));
    let merged_into = dir.path().join("from-merged");
    let message = fails(&at(&url, "ALL", &["restore", "--into", arg(&merged_into)]));
    assert!(message.contains("merges other streams"), "{message}");

    // A stream that does not exist.
    let message = fails(&at(&url, "NOPE", &["restore", "--into", arg(&merged_into)]));
    assert!(message.contains("stream NOPE does not exist"), "{message}");
    let message = fails(&at(&url, "NOPE", &["log"]));
    assert!(message.contains("stream NOPE does not exist"), "{message}");
    assert!(!merged_into.exists());
}

#[test]
fn merge_builds_one_feed_of_two_stores() {
    let server = LocalServer::start().unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    replicated_store(&one, &url, "ONE", "one");
    replicated_store(&two, &url, "TWO", "two");
    let (first, second) = (all(&one), all(&two));

    let summary = json_object(&dump_ok(&at(
        &url,
        "ALL",
        &["merge", "--sources", "ONE,TWO", "--json"],
    )));
    assert_eq!(summary["sources"], serde_json::json!(["ONE", "TWO"]));
    let total = (first.len() + second.len()) as u64;
    assert_eq!(summary["messages"].as_u64(), Some(total));

    // Each store's events, in its own order, each with its own position.
    let feed = json_lines(&dump_ok(&at(&url, "ALL", &["log", "--json"])));
    assert_eq!(feed.len() as u64, total);
    for (store, events) in [(&one, &first), (&two, &second)] {
        let expected = json_lines(&dump_ok(&["--store", arg(store), "log", "--json"]));
        assert_eq!(expected.len(), events.len());
        let ids: HashSet<&str> = expected
            .iter()
            .map(|e| e["event_id"].as_str().unwrap())
            .collect();
        let mine: Vec<&serde_json::Value> = feed
            .iter()
            .filter(|e| ids.contains(e["event_id"].as_str().unwrap()))
            .collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>());
    }
}
