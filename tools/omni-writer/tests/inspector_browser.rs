//! The inspector in a real browser: Debian's headless Chromium loads the page the daemon
//! serves (`--http`), runs its script against the live JSON API, and the DOM it renders is
//! checked. A pipeline's page links to its trace; the trace view holds every event of the
//! pipeline once, each under the event that caused it. Screenshots of both views are taken
//! (into a temporary directory; `docs/inspector-*.png` were made the same way).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, value};
use scraper::{Html, Selector};
use serde_json::Value;

/// The Chromium binary (`CHROMIUM` overrides; `.ci/run` installs Debian's).
fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Runs headless Chromium on `url` with `extra` flags; the network stays on loopback.
fn browse(url: &str, extra: &[&str]) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            // Virtual time stands still while the page's fetches are pending, so the budget
            // covers the script's requests however slow the machine.
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e} (install chromium)", chromium().display()));
    assert!(
        output.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The DOM of `url` once its script ran.
fn dom(url: &str) -> Html {
    let output = browse(url, &["--dump-dom"]);
    Html::parse_document(&String::from_utf8_lossy(&output.stdout))
}

fn select<'a>(html: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    html.select(&Selector::parse(css).unwrap()).collect()
}

/// A daemon serving its inspector while it writes (seed 42, paced, buffered).
fn start_daemon(store: &Path) -> Daemon {
    let args = [
        "--seed",
        "42",
        "--workers",
        "2",
        "--rate",
        "300",
        "--durability",
        "buffered",
    ];
    Daemon::start(store, &args)
}

/// Waits until pipeline `id` has ended (its stream holds its last event).
fn wait_pipeline(daemon: &Daemon, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if daemon
            .try_get(&format!("/api/stream?type=pipeline&id={id}"))
            .is_some_and(|a| a.status == 200 && a.json()["version"] == 2)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("pipeline {id} did not end within 60 s");
}

#[test]
fn a_pipelines_trace_renders_as_its_causation_tree_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(&dir.path().join("store"));
    wait_pipeline(&daemon, "pipeline-000002");

    // The pipeline's page: its events, and a link to its trace (what a user clicks).
    let page = dom(&format!(
        "{}/#/aggregate/pipeline/pipeline-000002",
        daemon.base()
    ));
    let view = select(&page, "main#view");
    assert_eq!(
        view[0].value().attr("data-state"),
        Some("ready"),
        "{}",
        view[0].html()
    );
    assert_eq!(
        select(&page, "table.events tbody tr").len(),
        2,
        "started and ended"
    );
    let trace_links: Vec<_> = select(&page, "a[href=\"#/trace/pipeline-000002\"]");
    assert!(
        !trace_links.is_empty(),
        "the aggregate page links to its trace"
    );
    assert!(
        select(&page, "pre#state")
            .iter()
            .any(|s| s.text().any(|t| t.contains("status")))
    );

    // The trace view, as following that link shows it.
    let trace = dom(&format!("{}/#/trace/pipeline-000002", daemon.base()));
    let view = select(&trace, "main#view");
    assert_eq!(
        view[0].value().attr("data-state"),
        Some("ready"),
        "{}",
        view[0].html()
    );
    let nodes = select(&trace, "#trace-tree .node");
    let expected = daemon.get("/api/trace?id=pipeline-000002").json();
    let expected_tree = expected["tree"].as_array().unwrap();
    assert_eq!(nodes.len(), expected_tree.len());
    assert!(nodes.len() > 5);

    // In causation order: the pipeline's start first; every other event right under its cause,
    // which was rendered before it, one level up.
    let attr =
        |node: &scraper::ElementRef<'_>, name: &str| node.value().attr(name).unwrap().to_string();
    assert_eq!(attr(&nodes[0], "data-event-type"), "pipeline_started");
    assert_eq!(attr(&nodes[0], "data-depth"), "0");
    let mut depth_of: HashMap<String, u64> = HashMap::new();
    for (node, want) in nodes.iter().zip(expected_tree) {
        let position = attr(node, "data-position");
        assert_eq!(position, want["position"].to_string());
        assert_eq!(
            attr(node, "data-event-id"),
            want["event_id"].as_str().unwrap()
        );
        let depth: u64 = attr(node, "data-depth").parse().unwrap();
        let parent = attr(node, "data-parent");
        if !parent.is_empty() {
            let parent_depth = depth_of
                .get(&parent)
                .unwrap_or_else(|| panic!("event {position} is shown before its cause {parent}"));
            assert_eq!(depth, parent_depth + 1);
        }
        depth_of.insert(position, depth);
    }
    let types: Vec<String> = nodes.iter().map(|n| attr(n, "data-event-type")).collect();
    assert!(
        types
            .iter()
            .any(|t| t == "pipeline_completed" || t == "pipeline_failed")
    );
    assert!(types.iter().any(|t| t == "prompt_validation_started"));

    // Screenshots of both views: real PNGs.
    let shots = tempfile::tempdir().unwrap();
    for (name, hash) in [
        ("trace", "#/trace/pipeline-000002"),
        ("aggregate", "#/aggregate/pipeline/pipeline-000002"),
    ] {
        let file = shots.path().join(format!("{name}.png"));
        browse(
            &format!("{}/{hash}", daemon.base()),
            &[
                "--window-size=1400,900",
                &format!("--screenshot={}", file.display()),
            ],
        );
        let mut bytes = Vec::new();
        std::fs::File::open(&file)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
            "{name}.png"
        );
    }
}

#[test]
fn an_unknown_trace_shows_the_servers_reason() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(&dir.path().join("store"));
    wait_pipeline(&daemon, "pipeline-000001");
    let page = dom(&format!("{}/#/trace/no-such-id", daemon.base()));
    let errors = select(&page, "main#view p.error");
    assert_eq!(errors.len(), 1);
    let text: String = errors[0].text().collect();
    assert!(
        text.contains("no event has trace id or correlation id `no-such-id`"),
        "{text}"
    );
}

#[test]
fn the_api_answers_bad_input_over_http_with_json_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(&dir.path().join("store"));
    wait_pipeline(&daemon, "pipeline-000001");
    let agent = common::agent();
    let answer = |request: Result<ureq::http::Response<ureq::Body>, ureq::Error>| {
        let mut response = request.unwrap();
        let status = response.status().as_u16();
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        (status, body)
    };
    let cases = [
        ("/api/log?from=abc", 400, "`from` must be a whole number"),
        ("/api/log?since=yesterday", 400, "RFC 3339"),
        (
            "/api/log?from=%ZZ",
            400,
            "`from` must be a whole number, not `%ZZ`",
        ),
        ("/api/trace?id=nobody", 404, "no event has trace id"),
        (
            "/api/stream?type=pipeline&id=pipeline-999999",
            404,
            "no aggregate",
        ),
    ];
    for (path, status, reason) in cases {
        let (got, body) = answer(agent.get(&format!("{}{path}", daemon.base())).call());
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(reason),
            "{path}: {body}"
        );
    }
    let (got, body) = answer(
        agent
            .post(&format!("{}/api/log", daemon.base()))
            .send_empty(),
    );
    assert_eq!(got, 405, "{body}");
    // Every inspector request is counted in the daemon's metrics.
    let answered = value(
        &daemon.scrape(),
        "omni_writer_inspector_requests_total",
        None,
    );
    // At least the wait's request and the five GETs above (the refused POST is not answered).
    assert!(answered >= Some(6.0), "{answered:?}");
    // A page is capped however much is asked.
    let (got, body) = answer(
        agent
            .get(&format!("{}/api/log?from=1&limit=99999", daemon.base()))
            .call(),
    );
    assert_eq!(got, 200);
    assert!(body["events"].as_array().unwrap().len() <= 500);
}
