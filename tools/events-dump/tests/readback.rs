//! What the daemon writes, the dump reads back exactly: the real binaries, then a second,
//! independent read through the `eventlog` facade.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{arg, dump, dump_ok, json_lines, json_object, stderr, stdout, writer};
use eventlog::{EventLog, EventLogConfig, Position};
use serde_json::Value;

const FIELDS: [&str; 15] = [
    "position",
    "event_id",
    "event_type",
    "aggregate_type",
    "aggregate_id",
    "version",
    "timestamp",
    "trace_id",
    "user_id",
    "session_id",
    "source",
    "correlation_id",
    "causation_id",
    "schema_version",
    "payload",
];

/// Runs the daemon to its end and returns its JSON summary.
fn write(store: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--store", arg(store), "--json"];
    args.extend_from_slice(extra);
    let output = writer(&args);
    assert!(output.status.success(), "omni-writer: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_dump_reads_back_exactly_what_the_daemon_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let summary = write(&store, &["--pipelines", "6", "--seed", "9"]);
    let events = summary["events"].as_u64().unwrap();
    assert_eq!(summary["last_position"], events);

    let lines = json_lines(&dump_ok(&["--store", arg(&store), "log", "--json"]));
    assert_eq!(lines.len() as u64, events);
    for (index, line) in lines.iter().enumerate() {
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, FIELDS, "fields and their order");
        assert_eq!(line["position"], index as u64 + 1, "consecutive positions");
        assert_eq!(line["source"], "omni-writer");
        assert!(line["trace_id"].is_string() && line["correlation_id"].is_string());
        assert!(line["payload"].is_object());
    }

    // A second, independent read through the facade gives the same objects.
    let log =
        EventLog::open(EventLogConfig::new(&store).registry(omni_domain::registry())).unwrap();
    let direct: Vec<Value> = log
        .read_log(Position(1), None)
        .unwrap()
        .map(|e| log.event_to_json(&e.unwrap()).unwrap())
        .collect();
    let aggregates = log.aggregates(None).unwrap().len();
    log.close().unwrap();
    assert_eq!(direct, lines);

    // The other read commands agree with the log.
    let types = json_lines(&dump_ok(&["--store", arg(&store), "types", "--json"]));
    let counted: u64 = types.iter().map(|t| t["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, events);
    assert!(types.iter().all(|t| t["registered"] == true));
    let streams = json_lines(&dump_ok(&["--store", arg(&store), "streams", "--json"]));
    assert_eq!(streams.len(), aggregates);
    let pipelines = json_lines(&dump_ok(&[
        "--store",
        arg(&store),
        "streams",
        "--type",
        "pipeline",
        "--json",
    ]));
    assert_eq!(pipelines.len(), 6);
    let info = json_object(&dump_ok(&[
        "--store",
        arg(&store),
        "info",
        "--json",
        "--verify",
    ]));
    assert_eq!(info["last_position"], events);
    assert_eq!(info["consistent"], true);
    assert_eq!(info["aggregates_per_type"]["pipeline"], 6);
    assert!(info["chain_head"].as_str().unwrap().len() == 64);
    let verify = dump(&["--store", arg(&store), "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    assert!(stdout(&verify).starts_with("consistent"));
}

#[test]
fn stream_state_snapshot_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write(
        &store,
        &[
            "--pipelines",
            "3",
            "--seed",
            "4",
            "--durability",
            "buffered",
        ],
    );
    let s = arg(&store);

    let stream = json_lines(&dump_ok(&[
        "--store",
        s,
        "stream",
        "pipeline",
        "pipeline-000002",
        "--json",
    ]));
    let versions: Vec<u64> = stream
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(stream[0]["event_type"], "pipeline_started");
    let backwards = json_lines(&dump_ok(&[
        "--store",
        s,
        "stream",
        "pipeline",
        "pipeline-000002",
        "--backwards",
        "--limit",
        "1",
        "--json",
    ]));
    assert_eq!(backwards.len(), 1);
    assert_eq!(backwards[0]["version"], 2);

    let state = json_object(&dump_ok(&[
        "--store",
        s,
        "state",
        "pipeline",
        "pipeline-000002",
        "--json",
    ]));
    assert_eq!(state["version"], 2);
    assert!(["completed", "failed"].contains(&state["state"]["status"].as_str().unwrap()));
    let at_one = json_object(&dump_ok(&[
        "--store",
        s,
        "state",
        "pipeline",
        "pipeline-000002",
        "--at",
        "1",
        "--json",
    ]));
    assert_eq!(at_one["state"]["status"], "started");

    let snapshots = json_lines(&dump_ok(&[
        "--store",
        s,
        "snapshot",
        "pipeline",
        "pipeline-000002",
        "--create",
        "--json",
    ]));
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0]["version"], 2);
    assert_eq!(snapshots[0]["state"]["from_snapshot"], 2);
    assert_eq!(snapshots[0]["state"]["state"], state["state"]);

    let started = json_lines(&dump_ok(&[
        "--store",
        s,
        "log",
        "--event-type",
        "pipeline_started",
        "--json",
    ]));
    assert_eq!(started.len(), 3);
    let two = json_lines(&dump_ok(&[
        "--store",
        s,
        "log",
        "--type",
        "prompt_validation",
        "--limit",
        "2",
        "--json",
    ]));
    assert_eq!(two.len(), 2);
    assert!(
        two.iter()
            .all(|e| e["aggregate_type"] == "prompt_validation")
    );
    let tail = json_lines(&dump_ok(&[
        "--store", s, "log", "--from", "5", "--limit", "3", "--json",
    ]));
    let positions: Vec<u64> = tail
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [5, 6, 7]);

    // Tables: a header and one row per event.
    let table = stdout(&dump_ok(&["--store", s, "log", "--limit", "4"]));
    assert_eq!(table.lines().count(), 5);
    assert!(table.starts_with("POSITION"));
    assert!(stdout(&dump_ok(&["--store", s, "info"])).contains("last position"));
    assert!(stdout(&dump_ok(&["--store", s, "types"])).contains("pipeline_started"));
}

/// `(event_type, payload without wall-clock fields)` per aggregate, in version order.
fn per_aggregate(store: &Path) -> BTreeMap<String, Vec<(String, Value)>> {
    let lines = json_lines(&dump_ok(&["--store", arg(store), "log", "--json"]));
    let mut by: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for mut line in lines {
        if let Some(payload) = line["payload"].as_object_mut() {
            payload.remove("started_at");
        }
        let key = format!("{}/{}", line["aggregate_type"], line["aggregate_id"]);
        by.entry(key).or_default().push((
            line["event_type"].as_str().unwrap().to_string(),
            line["payload"].clone(),
        ));
    }
    by
}

#[test]
fn the_same_seed_twice_gives_the_same_events_per_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    // One worker: every aggregate, cache entries included, gets its events in the same order.
    write(
        &a,
        &[
            "--pipelines",
            "5",
            "--seed",
            "31",
            "--workers",
            "1",
            "--durability",
            "buffered",
        ],
    );
    write(
        &b,
        &[
            "--pipelines",
            "5",
            "--seed",
            "31",
            "--workers",
            "1",
            "--durability",
            "buffered",
        ],
    );
    let (pa, pb) = (per_aggregate(&a), per_aggregate(&b));
    assert!(pa.len() > 10);
    assert_eq!(pa, pb);

    // Several workers: pipelines interleave, but every aggregate a pipeline owns is the same.
    let c = dir.path().join("c");
    let d = dir.path().join("d");
    write(
        &c,
        &[
            "--pipelines",
            "5",
            "--seed",
            "31",
            "--workers",
            "4",
            "--durability",
            "buffered",
        ],
    );
    write(
        &d,
        &[
            "--pipelines",
            "5",
            "--seed",
            "31",
            "--workers",
            "4",
            "--durability",
            "buffered",
        ],
    );
    let (pc, pd) = (per_aggregate(&c), per_aggregate(&d));
    let owned =
        |m: &BTreeMap<String, Vec<(String, Value)>>| -> BTreeMap<String, Vec<(String, Value)>> {
            m.iter()
                .filter(|(k, _)| !k.starts_with("\"cache\""))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
    assert_eq!(owned(&pc), owned(&pd));
    assert_eq!(
        owned(&pc),
        owned(&pa),
        "the worker count does not change a pipeline"
    );
}

#[test]
fn export_then_import_gives_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = dir.path().join("copy.evlc");
    let restored = dir.path().join("restored");
    write(
        &store,
        &[
            "--pipelines",
            "2",
            "--seed",
            "2",
            "--durability",
            "buffered",
        ],
    );
    let exported = json_object(&dump_ok(&[
        "--store",
        arg(&store),
        "checkpoint",
        "export",
        arg(&file),
        "--json",
    ]));
    let verified = json_object(&dump_ok(&["checkpoint", "verify", arg(&file), "--json"]));
    assert_eq!(exported["manifest"], verified["manifest"]);
    dump_ok(&["checkpoint", "import", arg(&file), "--into", arg(&restored)]);
    let original = stdout(&dump_ok(&["--store", arg(&store), "log", "--json"]));
    let copy = stdout(&dump_ok(&["--store", arg(&restored), "log", "--json"]));
    let from_file = stdout(&dump_ok(&["--checkpoint", arg(&file), "log", "--json"]));
    assert_eq!(original, copy);
    assert_eq!(original, from_file);

    // Exporting over an existing file is refused.
    let again = dump(&["--store", arg(&store), "checkpoint", "export", arg(&file)]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("exists already"));
}
