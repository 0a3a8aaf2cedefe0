//! An aggregate loaded from a snapshot plus the events after it equals a full replay, at the
//! latest version and as of every earlier version (property test over random Omni Writer event
//! sequences, with loads — hence snapshots — at random points). Also the JSON state by type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{config, generation_config};
use eventlog::{
    Aggregate, ArticleGeneration, ArticleGenerationCompleted, ArticleGenerationFailed,
    ArticleGenerationStarted, ArticleOutput, EventContext, EventLog, EventLogError,
    ExpectedVersion, NewEvent, Pipeline, PipelineCompleted, PipelineFailed, PipelineStarted,
    PromptInput, RunStatus, StreamRead, now_micros,
};
use proptest::prelude::*;

fn generation_event(kind: u8, n: u32) -> NewEvent {
    let context = EventContext::new("prop");
    match kind {
        0 => NewEvent::from_event(
            "gen",
            &ArticleGenerationStarted {
                config: generation_config(),
                prompt: PromptInput {
                    text: format!("prompt {n}"),
                    index: n,
                },
                variation: n % 3,
                started_at: now_micros(),
            },
            context,
        ),
        1 => NewEvent::from_event(
            "gen",
            &ArticleGenerationCompleted {
                article_output: ArticleOutput {
                    content: format!("article {n}"),
                    filename: format!("a{n}.txt"),
                    metadata: BTreeMap::from([("n".to_string(), n.to_string())]),
                },
                generation_time: f64::from(n) / 10.0,
                model_used: "gpt".into(),
                tokens_used: n.is_multiple_of(2).then_some(u64::from(n) * 7),
            },
            context,
        ),
        _ => NewEvent::from_event(
            "gen",
            &ArticleGenerationFailed {
                error_message: format!("error {n}"),
                error_type: "TimeoutError".into(),
                generation_time: 1.0,
            },
            context,
        ),
    }
    .unwrap()
}

/// The reference: every event from version 1 to `upto`, applied in order by hand.
fn fold_by_hand<A: Aggregate>(log: &EventLog, id: &str, upto: u64) -> A {
    let mut state = A::default();
    for event in log
        .read_stream(A::AGGREGATE_TYPE, id, StreamRead::forwards())
        .unwrap()
        .take(upto as usize)
    {
        state.apply(&event.unwrap(), log.registry()).unwrap();
    }
    state
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn snapshot_plus_tail_equals_full_replay(
        steps in prop::collection::vec((0u8..3, any::<bool>()), 1..60),
        every in 1u64..8,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(config(dir.path()).snapshot_every(Some(every))).unwrap();
        for (n, (kind, load)) in steps.iter().enumerate() {
            log.append(ExpectedVersion::exact(n as u64), vec![generation_event(*kind, n as u32)])
                .unwrap();
            if *load {
                let loaded = log.load::<ArticleGeneration>("gen").unwrap();
                prop_assert_eq!(loaded.version, n as u64 + 1);
                prop_assert!(loaded.events_applied < every || loaded.snapshot_saved);
            }
        }
        let n = steps.len() as u64;
        let loaded = log.load::<ArticleGeneration>("gen").unwrap();
        let replayed = log.replay::<ArticleGeneration>("gen").unwrap();
        prop_assert_eq!(loaded.version, n);
        prop_assert_eq!(replayed.from_snapshot, None);
        prop_assert_eq!(replayed.events_applied, n);
        prop_assert_eq!(&loaded.state, &replayed.state);
        prop_assert_eq!(&loaded.state, &fold_by_hand::<ArticleGeneration>(&log, "gen", n));
        for version in 0..=n {
            let at = log.load_at::<ArticleGeneration>("gen", version).unwrap();
            prop_assert_eq!(at.version, version);
            prop_assert!(at.from_snapshot.is_none_or(|s| s <= version));
            prop_assert_eq!(&at.state, &fold_by_hand::<ArticleGeneration>(&log, "gen", version));
        }
        log.close().unwrap();
    }
}

#[test]
fn omni_state_as_json_by_type_name() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let context = EventContext::new("omni-writer");
    log.append_event(
        "pipe_1",
        ExpectedVersion::NoStream,
        &PipelineStarted {
            pipeline_type: "single_instance".into(),
            config: generation_config(),
            total_prompts: 4,
        },
        context.clone(),
    )
    .unwrap();
    log.append_event(
        "pipe_1",
        ExpectedVersion::exact(1),
        &PipelineFailed {
            pipeline_type: "single_instance".into(),
            error_message: "disk full".into(),
            error_type: "IOError".into(),
            processed_prompts: 2,
            total_time: 12.5,
        },
        context.clone(),
    )
    .unwrap();
    log.append_event(
        "pipe_1",
        ExpectedVersion::exact(2),
        &PipelineCompleted {
            pipeline_type: "single_instance".into(),
            total_articles: 4,
            successful_articles: 3,
            failed_articles: 1,
            total_time: 30.0,
            zip_path: "out/articles.zip".into(),
        },
        context,
    )
    .unwrap();

    let latest = log
        .load_omni_state("pipeline", "pipe_1", None)
        .unwrap()
        .unwrap();
    assert_eq!(latest["version"], 3);
    assert_eq!(latest["state"]["status"], "completed");
    assert_eq!(latest["state"]["zip_path"], "out/articles.zip");
    assert_eq!(latest["state"]["successful_articles"], 3);
    let failed = log
        .load_omni_state("pipeline", "pipe_1", Some(2))
        .unwrap()
        .unwrap();
    assert_eq!(failed["state"]["status"], "failed");
    assert_eq!(failed["state"]["last_error_type"], "IOError");
    assert_eq!(failed["state"]["processed_prompts"], 2);
    assert_eq!(
        log.load::<Pipeline>("pipe_1").unwrap().state.status,
        RunStatus::Completed
    );

    assert!(
        log.load_omni_state("pipeline", "nobody", None)
            .unwrap()
            .is_none()
    );
    assert!(
        log.load_omni_state("cache", "nobody", None)
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        log.load_omni_state("invoice", "x", None),
        Err(EventLogError::NoOmniAggregate { .. })
    ));
    assert!(matches!(
        log.load_omni_state("pipeline", "pipe_1", Some(9)),
        Err(EventLogError::VersionNotReached { .. })
    ));
    // Reading the state as JSON never writes a snapshot.
    assert!(log.snapshots("pipeline", "pipe_1").unwrap().is_empty());
    log.close().unwrap();
}
