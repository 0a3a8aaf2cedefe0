//! A store holding an event type the dump's registry does not know: shown, not refused, with
//! its payload as hex. And `checkpoint prune` removing what is older than asked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{arg, dump, json_lines, stdout};
use eventlog::{DomainEvent, EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
use omni_domain::CacheHit;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct InvoicePaid {
    amount_cents: u64,
}

impl DomainEvent for InvoicePaid {
    const EVENT_TYPE: &'static str = "invoice_paid";
    const AGGREGATE_TYPE: &'static str = "invoice";
    const SCHEMA_VERSION: u16 = 3;
}

#[test]
fn unknown_event_types_show_their_payload_as_hex() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut registry = omni_domain::registry();
    registry.register::<InvoicePaid>().unwrap();
    let log = EventLog::open(EventLogConfig::new(&store).registry(registry)).unwrap();
    let context = EventContext::new("billing").with_trace_id("t-1");
    let paid = InvoicePaid { amount_cents: 1999 };
    let stream = StreamId::of::<InvoicePaid>("inv-1");
    log.append_event(&stream, ExpectedVersion::NoStream, &paid, context)
        .unwrap();
    log.close().unwrap();

    let lines = json_lines(&dump(&["--store", arg(&store), "log", "--json"]));
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line["event_type"], "invoice_paid");
    assert_eq!(line["trace_id"], "t-1");
    assert_eq!(line["schema_version"], 3, "the stored schema version");
    let hex = line["payload"]["hex"].as_str().unwrap();
    let len = line["payload"]["len"].as_u64().unwrap();
    assert_eq!(hex.len() as u64, 2 * len);
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(
        line["payload_error"]
            .as_str()
            .unwrap()
            .contains("invoice_paid")
    );

    let table = stdout(&dump(&["--store", arg(&store), "log"]));
    assert!(table.contains("undecoded payload"), "{table}");
    let types = json_lines(&dump(&["--store", arg(&store), "types", "--json"]));
    assert_eq!(types[0]["registered"], false);
    let verify = dump(&["--store", arg(&store), "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
}

#[test]
fn prune_removes_checkpoints_older_than_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log =
        EventLog::open(EventLogConfig::new(&store).registry(omni_domain::registry())).unwrap();
    let hit = CacheHit {
        cache_key: "k".into(),
        cache_type: "memory".into(),
        response_time: 0.001,
    };
    // Two checkpoints, at positions 1 and 2, taken at different instants.
    for _ in 0..2 {
        log.append_event(
            &StreamId::of::<CacheHit>("cache-1"),
            ExpectedVersion::Any,
            &hit,
            EventContext::default(),
        )
        .unwrap();
        log.admin().checkpoint().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    log.close().unwrap();
    let s = arg(&store);

    let kept = json_lines(&dump(&[
        "--store",
        s,
        "checkpoint",
        "prune",
        "--older-than",
        "1",
        "--json",
    ]));
    assert_eq!(kept[0]["removed"].as_array().unwrap().len(), 0);
    assert_eq!(
        json_lines(&dump(&["--store", s, "checkpoint", "list", "--json"])).len(),
        2
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Everything is older than 0 days, but the newest checkpoint that verifies is kept.
    let pruned = dump(&["--store", s, "checkpoint", "prune", "--older-than", "0"]);
    assert!(
        stdout(&pruned).contains("removed 1 checkpoints"),
        "{}",
        stdout(&pruned)
    );
    let left = json_lines(&dump(&["--store", s, "checkpoint", "list", "--json"]));
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["manifest"]["last_position"], 2, "{left:?}");
}
