//! `trace ID`: a seeded daemon run's pipeline as a causation tree, found by its pipeline id or
//! by its trace id alike; every event of the pipeline once, each under the event that caused
//! it; an unknown id is an error that says so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use common::{arg, dump, json_lines, json_object, stderr, stdout, writer};
use serde_json::Value;

/// A store written by the daemon with a fixed seed: pipeline N holds the same events every run.
fn seeded_store(dir: &Path) -> std::path::PathBuf {
    let store = dir.join("store");
    let output = writer(&[
        "--store",
        arg(&store),
        "--seed",
        "11",
        "--workers",
        "2",
        "--pipelines",
        "4",
        "--durability",
        "buffered",
    ]);
    assert!(output.status.success(), "omni-writer: {}", stderr(&output));
    store
}

/// The log's events that carry `correlation_id`, by position.
fn events_of(store: &Path, correlation_id: &str) -> Vec<Value> {
    json_lines(&dump(&["--store", arg(store), "log", "--json"]))
        .into_iter()
        .filter(|e| e["correlation_id"] == correlation_id)
        .collect()
}

#[test]
fn a_pipelines_trace_holds_each_of_its_events_once_under_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let store = seeded_store(dir.path());
    let expected = events_of(&store, "pipeline-000003");
    assert!(expected.len() > 5, "a pipeline has more than a few events");

    let trace = json_object(&dump(&[
        "--store",
        arg(&store),
        "trace",
        "pipeline-000003",
        "--json",
    ]));
    let tree = trace["tree"].as_array().unwrap();
    assert_eq!(trace["events"], expected.len());
    assert_eq!(trace["truncated"], false);
    assert_eq!(tree.len(), expected.len());

    // The same events (each once), each the log's event at its position.
    let by_position: HashMap<u64, &Value> = expected
        .iter()
        .map(|e| (e["position"].as_u64().unwrap(), e))
        .collect();
    let mut seen = HashSet::new();
    for node in tree {
        let position = node["position"].as_u64().unwrap();
        assert!(seen.insert(position), "position {position} twice");
        let logged = by_position[&position];
        assert_eq!(node["event_id"], logged["event_id"]);
        assert_eq!(node["payload"], logged["payload"]);
    }

    // One root, the pipeline's start; every other event sits under the event its causation id
    // names, which comes before it in the walk (depth first) and one level up.
    assert_eq!(trace["roots"], 1);
    assert_eq!(tree[0]["event_type"], "pipeline_started");
    assert_eq!(tree[0]["depth"], 0);
    let mut walked: HashMap<u64, (&Value, u64)> = HashMap::new();
    for node in tree {
        let position = node["position"].as_u64().unwrap();
        let depth = node["depth"].as_u64().unwrap();
        if let Some(parent) = node["parent"].as_u64() {
            let (parent_node, parent_depth) = walked[&parent];
            assert_eq!(node["causation_id"], parent_node["event_id"]);
            assert_eq!(depth, parent_depth + 1);
            assert!(parent < position, "a cause comes first in the log");
            let listed: Vec<u64> = parent_node["children"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .collect();
            assert!(listed.contains(&position));
        }
        walked.insert(position, (node, depth));
    }
    let ends = ["pipeline_completed", "pipeline_failed"];
    assert!(
        tree.iter()
            .any(|n| ends.contains(&n["event_type"].as_str().unwrap()))
    );
    // The pipeline's span of the log was scanned, not the whole log.
    assert_eq!(trace["scanned"]["from"], tree[0]["position"]);
}

#[test]
fn a_trace_id_finds_the_same_tree_as_the_pipeline_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = seeded_store(dir.path());
    let s = arg(&store);
    let by_pipeline = json_object(&dump(&["--store", s, "trace", "pipeline-000002", "--json"]));
    let trace_id = by_pipeline["tree"][0]["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_trace = json_object(&dump(&["--store", s, "trace", &trace_id, "--json"]));
    assert_eq!(by_trace["tree"], by_pipeline["tree"]);
    assert_eq!(
        by_trace["scanned"]["from"], 1,
        "a trace id scans the whole log"
    );

    // The text tree: one line per event after the header, indented by depth.
    let text = stdout(&dump(&["--store", s, "trace", "pipeline-000002"]));
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("trace pipeline-000002: "));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), by_pipeline["tree"].as_array().unwrap().len());
    assert!(rows[0].contains(" pipeline_started pipeline/pipeline-000002 v1"));
    assert!(
        rows[1].contains("    prompt_validation_started"),
        "{}",
        rows[1]
    );
}

#[test]
fn an_unknown_id_is_an_error_and_max_events_truncates() {
    let dir = tempfile::tempdir().unwrap();
    let store = seeded_store(dir.path());
    let s = arg(&store);
    let unknown = dump(&["--store", s, "trace", "pipeline-999999"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("no event has trace id or correlation id `pipeline-999999`"));

    let cut = json_object(&dump(&[
        "--store",
        s,
        "trace",
        "pipeline-000001",
        "--max-events",
        "3",
        "--json",
    ]));
    assert_eq!(cut["truncated"], true);
    assert_eq!(cut["tree"].as_array().unwrap().len(), 3);
}

#[test]
fn the_same_seed_gives_the_same_tree() {
    // Pipeline N of a seed holds the same events whatever the run (positions and times aside):
    // its tree, by event id, type and cause, is the same in two stores.
    let shape = |store: &Path| -> Vec<(String, String, u64, Option<String>)> {
        let trace = json_object(&dump(&[
            "--store",
            arg(store),
            "trace",
            "pipeline-000004",
            "--json",
        ]));
        let tree = trace["tree"].as_array().unwrap().clone();
        let id_at: HashMap<u64, String> = tree
            .iter()
            .map(|n| {
                (
                    n["position"].as_u64().unwrap(),
                    n["event_id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        tree.iter()
            .map(|n| {
                (
                    n["event_id"].as_str().unwrap().to_string(),
                    n["event_type"].as_str().unwrap().to_string(),
                    n["depth"].as_u64().unwrap(),
                    n["parent"].as_u64().map(|p| id_at[&p].clone()),
                )
            })
            .collect()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = shape(&seeded_store(a.path()));
    assert!(first.len() > 5);
    assert_eq!(first, shape(&seeded_store(b.path())));
}
