//! An aggregate loaded from a snapshot plus the events after it equals a full replay, at the
//! latest version and as of every earlier version (property test over random Omni Writer event
//! sequences, with loads — hence snapshots — at random points). Also a typed aggregate as of a
//! version, and its JSON form.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::collections::BTreeMap;

use common::{config, generation_config};
use eventlog::{
    Aggregate, EventContext, EventLog, ExpectedVersion, LoadError, NewEvent, StreamId, StreamRead,
    Version, now_micros,
};
use omni_domain::{
    ArticleGeneration, ArticleGenerationCompleted, ArticleGenerationFailed,
    ArticleGenerationStarted, ArticleOutput, Pipeline, PipelineCompleted, PipelineFailed,
    PipelineStarted, PromptInput, RunStatus,
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
        .read_stream(
            &StreamId::new(A::AGGREGATE_TYPE, id),
            StreamRead::forwards(),
        )
        .unwrap()
        .take(upto as usize)
    {
        state
            .apply_recorded(&event.unwrap(), log.registry())
            .unwrap();
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
            log.append_own(ExpectedVersion::exact(n as u64), vec![generation_event(*kind, n as u32)])
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
            let at = log.load_at::<ArticleGeneration>("gen", Version(version)).unwrap();
            prop_assert_eq!(at.version, version);
            prop_assert!(at.from_snapshot.is_none_or(|s| s <= version));
            prop_assert_eq!(&at.state, &fold_by_hand::<ArticleGeneration>(&log, "gen", version));
        }
        log.close().unwrap();
    }
}

#[test]
fn typed_state_as_of_a_version_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let context = EventContext::new("omni-writer");
    let pipe = StreamId::of::<PipelineStarted>("pipe_1");
    log.append_event(
        &pipe,
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
        &pipe,
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
        &pipe,
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

    let latest = serde_json::to_value(log.load::<Pipeline>("pipe_1").unwrap()).unwrap();
    assert_eq!(latest["aggregate_type"], "pipeline");
    assert_eq!(latest["aggregate_id"], "pipe_1");
    assert_eq!(latest["version"], 3);
    assert_eq!(latest["state"]["status"], "completed");
    assert_eq!(latest["state"]["zip_path"], "out/articles.zip");
    assert_eq!(latest["state"]["successful_articles"], 3);
    let failed = log.load_at::<Pipeline>("pipe_1", Version(2)).unwrap();
    assert_eq!(failed.state.status, RunStatus::Failed);
    assert_eq!(failed.state.last_error_type.as_deref(), Some("IOError"));
    assert_eq!(failed.state.processed_prompts, 2);
    assert_eq!(
        log.load::<Pipeline>("pipe_1").unwrap().state.status,
        RunStatus::Completed
    );

    let nobody = log.load::<Pipeline>("nobody").unwrap();
    assert_eq!(
        (nobody.version, nobody.state),
        (Version::NONE, Pipeline::default())
    );
    assert!(matches!(
        log.load_at::<Pipeline>("pipe_1", Version(9)),
        Err(LoadError::VersionNotReached { requested, current, .. }) if requested == 9 && current == 3
    ));
    // Loading as of a version never writes a snapshot.
    assert!(
        log.admin()
            .snapshots(&StreamId::new("pipeline", "pipe_1"))
            .unwrap()
            .is_empty()
    );
    log.close().unwrap();
}
