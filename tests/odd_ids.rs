//! Odd ids: empty, too long (in bytes, not characters), NUL and other control characters are
//! refused with a typed error naming the field, and nothing is stored; everything else —
//! direction marks, zero-width and BOM characters, combining marks, emoji, ids at exactly 256
//! bytes, ids that differ only by Unicode normalization or by a trailing invisible character —
//! is accepted consistently: each is its own aggregate, read back byte for byte through the
//! stream and type indexes, the aggregates listing and JSON, after a reopen and through a
//! checkpoint export and import.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::path::Path;

use eventlog::{
    AppendError, Durability, EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent,
    Position, StoreAppendError, StreamId, StreamRead, ValidationError, import_checkpoint,
};
use omni_domain::CacheHit;

fn config(dir: &Path) -> EventLogConfig {
    EventLogConfig::new(dir)
        .registry(omni_domain::registry())
        .durability(Durability::Buffered)
        .snapshot_every(None)
        .store(|s| s.cache_capacity(16 << 20).index_flush_events(7))
}

fn hit(aggregate_id: &str, context: EventContext) -> NewEvent {
    let hit = CacheHit {
        cache_key: aggregate_id.to_string(),
        cache_type: "odd".into(),
        response_time: 0.0,
    };
    NewEvent::from_event(aggregate_id, &hit, context).unwrap()
}

/// Ids the store must accept, each a distinct aggregate.
fn accepted() -> Vec<String> {
    vec![
        "plain".into(),
        "\u{200f}rtl-mark".into(),
        "\u{202e}right-to-left-override".into(),
        "zero\u{200b}width".into(),
        "plain\u{200b}".into(),
        "\u{feff}bom".into(),
        "caf\u{e9}".into(),   // NFC é
        "cafe\u{301}".into(), // NFD é: another aggregate
        "🦀 crab".into(),
        " leading and trailing ".into(),
        "slash/colon:percent%00".into(),
        "i".repeat(256), // at the limit, ASCII
        "é".repeat(128), // 256 bytes, 128 characters
        "💩".repeat(64), // 256 bytes, 64 characters
        "\u{fffd}replacement".into(),
        "\u{10ffff}last-code-point".into(),
    ]
}

/// Ids the store must refuse, with the error expected for `aggregate_id`.
fn refused() -> Vec<(String, &'static str)> {
    let mut cases: Vec<(String, &'static str)> = vec![
        (String::new(), "empty"),
        ("i".repeat(257), "too long"),
        ("é".repeat(129), "too long"), // 129 characters, 258 bytes
        ("💩".repeat(65), "too long"), // 65 characters, 260 bytes
    ];
    for c in [
        '\0', '\n', '\r', '\t', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
    ] {
        cases.push((format!("a{c}b"), "control"));
    }
    cases
}

fn check_refusal(error: AppendError, field: &str, kind: &str, id: &str) {
    let AppendError::Store(StoreAppendError::Invalid { index: 0, source }) = error else {
        panic!("{id:?}: {error:?}");
    };
    match (&source, kind) {
        (ValidationError::EmptyField { field: f }, "empty")
        | (ValidationError::FieldTooLong { field: f, .. }, "too long")
        | (ValidationError::ControlCharacter { field: f, .. }, "control") => {
            assert_eq!(*f, field, "{id:?}: {source:?}");
        }
        _ => panic!("{id:?} ({kind}): {source:?}"),
    }
}

#[test]
fn odd_ids_are_refused_with_a_typed_error_or_accepted_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let log = EventLog::open(config(&path)).unwrap();

    for (id, kind) in refused() {
        let error = log
            .append_own(ExpectedVersion::Any, vec![hit(&id, EventContext::new("t"))])
            .unwrap_err();
        check_refusal(error, "aggregate_id", kind, &id);
        // The same ids in the context fields.
        if !id.is_empty() {
            for (field, context) in [
                ("trace_id", EventContext::new("t").with_trace_id(id.clone())),
                ("user_id", EventContext::new("t").with_user_id(id.clone())),
                (
                    "session_id",
                    EventContext::new("t").with_session_id(id.clone()),
                ),
                (
                    "correlation_id",
                    EventContext::new("t").with_correlation_id(id.clone()),
                ),
                (
                    "causation_id",
                    EventContext::new("t").with_causation_id(id.clone()),
                ),
            ] {
                let error = log
                    .append_own(ExpectedVersion::Any, vec![hit("ok", context)])
                    .unwrap_err();
                check_refusal(error, field, kind, &id);
            }
        }
    }
    assert_eq!(
        log.last_position().unwrap().get(),
        0,
        "a refused append stored events"
    );

    let ids = accepted();
    for id in &ids {
        let context = EventContext::new("t")
            .with_trace_id(id.clone())
            .with_causation_id(id.clone());
        // NoStream: were two ids one aggregate, the second append would conflict.
        let result = log
            .append_own(ExpectedVersion::NoStream, vec![hit(id, context)])
            .unwrap_or_else(|e| panic!("{id:?}: {e}"));
        assert_eq!(result.aggregate_id, *id);
        assert_eq!(result.last_version, 1);
    }

    let check = |log: &EventLog, when: &str| {
        assert_eq!(
            log.last_position().unwrap().get(),
            ids.len() as u64,
            "{when}"
        );
        let mut listed: Vec<String> = log
            .aggregates(Some("cache"))
            .unwrap()
            .into_iter()
            .map(|a| a.aggregate_id)
            .collect();
        listed.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(listed, want, "{when}: the aggregates listing");
        for (i, id) in ids.iter().enumerate() {
            let events: Vec<_> = log
                .read_stream(&StreamId::new("cache", id), StreamRead::forwards())
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(events.len(), 1, "{when}: {id:?}");
            let event = &events[0];
            assert_eq!(event.position, i as u64 + 1, "{when}: {id:?}");
            assert_eq!(&event.metadata.aggregate_id, id);
            assert_eq!(event.metadata.trace_id.as_deref(), Some(id.as_str()));
            assert_eq!(event.metadata.causation_id.as_deref(), Some(id.as_str()));
            let json = log.event_to_json(event).unwrap();
            assert_eq!(json["aggregate_id"], id.as_str(), "{when}: JSON");
            let back = log.registry().event_from_json(json).unwrap();
            assert_eq!(&back, event, "{when}: {id:?} through JSON");
        }
        let by_type: Vec<String> = log
            .read_aggregate_type("cache", Position(1), None)
            .unwrap()
            .map(|e| e.unwrap().metadata.aggregate_id)
            .collect();
        assert_eq!(&by_type, &ids, "{when}: the type index");
        let report = log.admin().verify().unwrap();
        assert!(report.ok, "{when}: {report:?}");
    };
    check(&log, "before reopening");
    let file = dir.path().join("odd.evlc");
    log.admin().export_checkpoint(&file).unwrap();
    log.close().unwrap();

    let log = EventLog::open(config(&path)).unwrap();
    check(&log, "after reopening");
    log.close().unwrap();

    let imported = dir.path().join("imported");
    import_checkpoint(&file, &imported, None).unwrap();
    let log = EventLog::open(config(&imported)).unwrap();
    check(&log, "after a checkpoint import");
    log.close().unwrap();
}
