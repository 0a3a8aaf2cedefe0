//! The inspector's answers on a store holding real simulated pipelines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use eventlog::{AppendBatch, Durability, EventLog, EventLogConfig};
use serde_json::Value;

use super::{Reply, respond};
use crate::sim::{Sink, run_pipeline};

/// Appends each step of a simulated pipeline to the log.
struct LogSink<'a>(&'a EventLog);

impl Sink for LogSink<'_> {
    fn append(&mut self, step: Vec<AppendBatch>) -> anyhow::Result<()> {
        self.0.append_batches(step)?;
        Ok(())
    }
    fn stopping(&self) -> bool {
        false
    }
}

fn store_with_pipelines(dir: &std::path::Path, pipelines: u64) -> EventLog {
    let log = EventLog::open(
        EventLogConfig::new(dir)
            .registry(omni_domain::registry())
            .durability(Durability::Buffered),
    )
    .unwrap();
    for number in 1..=pipelines {
        run_pipeline(
            5,
            crate::emitter::Writer::default(),
            number,
            &mut LogSink(&log),
        )
        .unwrap();
    }
    log
}

fn get(log: &EventLog, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let params: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    let Reply {
        status,
        content_type,
        body,
    } = respond(log, path, &params);
    assert_eq!(content_type, "application/json", "{path}");
    (status, serde_json::from_slice(&body).unwrap())
}

#[test]
fn the_page_and_its_assets_are_served_from_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let log = store_with_pipelines(dir.path(), 0);
    let page = respond(&log, "/", &BTreeMap::new());
    assert_eq!(
        (page.status, page.content_type),
        (200, "text/html; charset=utf-8")
    );
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("<script src=\"/app.js\"></script>"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN"
    );
    assert_eq!(respond(&log, "/app.js", &BTreeMap::new()).status, 200);
    assert_eq!(respond(&log, "/style.css", &BTreeMap::new()).status, 200);
    assert_eq!(get(&log, "/api/nothing", &[]).0, 404);
}

#[test]
fn types_aggregates_and_a_stream_with_its_state_at_any_version() {
    let dir = tempfile::tempdir().unwrap();
    let log = store_with_pipelines(dir.path(), 3);
    let (status, types) = get(&log, "/api/types", &[]);
    assert_eq!(status, 200);
    let pipeline = types["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["aggregate_type"] == "pipeline")
        .unwrap();
    assert_eq!(pipeline["aggregates"], 3);
    assert_eq!(pipeline["events"], 6, "started + ended, three times");

    let (_, found) = get(
        &log,
        "/api/aggregates",
        &[("type", "pipeline"), ("q", "000002")],
    );
    assert_eq!(found["total"], 1);
    assert_eq!(found["aggregates"][0]["aggregate_id"], "pipeline-000002");

    let (status, stream) = get(
        &log,
        "/api/stream",
        &[("type", "pipeline"), ("id", "pipeline-000002")],
    );
    assert_eq!(status, 200);
    assert_eq!(stream["version"], 2);
    assert_eq!(stream["events"][0]["event_type"], "pipeline_started");

    let (_, at_one) = get(
        &log,
        "/api/state",
        &[("type", "pipeline"), ("id", "pipeline-000002"), ("at", "1")],
    );
    assert_eq!(
        (
            at_one["version"].as_u64(),
            at_one["state"]["status"].as_str()
        ),
        (Some(1), Some("started"))
    );
    let (_, now) = get(
        &log,
        "/api/state",
        &[("type", "pipeline"), ("id", "pipeline-000002")],
    );
    assert_ne!(now["state"]["status"], "started");
}

#[test]
fn the_log_pages_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let log = store_with_pipelines(dir.path(), 3);
    let last = log.last_position().unwrap().get();
    let (_, first) = get(&log, "/api/log", &[("from", "1"), ("limit", "10")]);
    let positions: Vec<u64> = first["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, (1..=10).collect::<Vec<_>>());
    assert_eq!(first["next"], 11);

    // Default: the newest page, ending at the log's end.
    let (_, newest) = get(&log, "/api/log", &[("limit", "5")]);
    assert_eq!(newest["events"][4]["position"], last);
    assert_eq!(newest["next"], Value::Null);

    let (_, cache) = get(
        &log,
        "/api/log",
        &[("from", "1"), ("event_type", "cache_set"), ("limit", "500")],
    );
    let events = cache["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["event_type"] == "cache_set"));

    let (_, none) = get(
        &log,
        "/api/log",
        &[("from", "1"), ("until", "2000-01-01T00:00:00Z")],
    );
    assert!(none["events"].as_array().unwrap().is_empty());
}

#[test]
fn a_pipelines_trace_is_its_causation_tree() {
    let dir = tempfile::tempdir().unwrap();
    let log = store_with_pipelines(dir.path(), 2);
    let (status, trace) = get(&log, "/api/trace", &[("id", "pipeline-000001")]);
    assert_eq!(status, 200);
    let tree = trace["tree"].as_array().unwrap();
    assert_eq!(tree[0]["event_type"], "pipeline_started");
    assert_eq!(trace["roots"], 1);
    assert!(
        tree.iter()
            .all(|n| n["correlation_id"] == "pipeline-000001")
    );
    let (status, _) = get(&log, "/api/trace", &[("id", "pipeline-999999")]);
    assert_eq!(status, 404);
}

#[test]
fn bad_input_is_a_400_with_the_reason_and_unknown_ids_a_404() {
    let dir = tempfile::tempdir().unwrap();
    let log = store_with_pipelines(dir.path(), 1);
    // (path, parameters, status, what the reason says)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str);
    let cases: [Case<'_>; 9] = [
        (
            "/api/log",
            &[("from", "abc")],
            400,
            "`from` must be a whole number",
        ),
        (
            "/api/log",
            &[("limit", "0")],
            400,
            "`limit` must be at least 1",
        ),
        ("/api/log", &[("since", "yesterday")], 400, "RFC 3339"),
        (
            "/api/log",
            &[("color", "red")],
            400,
            "unknown parameter `color`",
        ),
        (
            "/api/stream",
            &[("type", "pipeline")],
            400,
            "`id` is required",
        ),
        (
            "/api/stream",
            &[("type", "pipeline"), ("id", "nope")],
            404,
            "no aggregate",
        ),
        (
            "/api/state",
            &[("type", "invoice"), ("id", "x")],
            404,
            "no Omni Writer aggregate",
        ),
        (
            "/api/state",
            &[
                ("type", "pipeline"),
                ("id", "pipeline-000001"),
                ("at", "99"),
            ],
            404,
            "is at version 2",
        ),
        ("/api/trace", &[], 400, "`id` is required"),
    ];
    for (path, params, want, reason) in cases {
        let (status, body) = get(&log, path, params);
        assert_eq!(status, want, "{path} {params:?}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(reason), "{path} {params:?}: {error}");
    }
    // Pages are capped.
    let (_, capped) = get(&log, "/api/log", &[("from", "1"), ("limit", "100000")]);
    assert!(capped["events"].as_array().unwrap().len() <= super::api::MAX_PAGE);
}
