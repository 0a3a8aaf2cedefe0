//! One simulated pipeline: what happens, in which order, and which events record it.
//!
//! A pipeline of N prompts runs, for each prompt: validation (started + completed or failed,
//! one append), a cache lookup (hit, miss, or invalidated-then-miss for a stale entry, one
//! append), and on a miss the generation: `started`, then either `failed` + `retry_attempted`
//! (one atomic append of both aggregates) and a new `started`, or `completed` (+
//! `retry_succeeded`) + `cache_set` (one atomic append); after the last attempt fails,
//! `failed` + `retry_failed`. The pipeline ends with `pipeline_completed` holding the real
//! totals, or `pipeline_failed` (a simulated archive error, or `Interrupted` on a stop).
//!
//! Every draw comes from the generator of `(seed, pipeline number)`, so a pipeline's events
//! depend on nothing else (see the daemon's `--help` for the exact guarantee).

use eventlog::{AppendBatch, ExpectedVersion, NewEvent, StreamId};
use omni_domain::{
    ArticleGenerationCompleted, ArticleGenerationFailed, ArticleGenerationStarted, ArticleOutput,
    CacheHit, CacheInvalidated, CacheMiss, CacheSet, GenerationConfig, PipelineCompleted,
    PipelineFailed, PipelineStarted, PromptInput, PromptValidationCompleted,
    PromptValidationFailed, PromptValidationStarted, RetryAttempted, RetryFailed, RetrySucceeded,
};
use uuid::Uuid;

use crate::content::{self, GENERATION_ERRORS, VALIDATION_RULES};
use crate::emitter::{Emitter, Writer};
use crate::rng::{Rng, round_ms};

/// The retried operation's name in retry events.
const OPERATION: &str = "article_generation";
/// Attempts per generation before it fails.
const MAX_ATTEMPTS: u32 = 3;
/// Probability that one generation attempt fails.
const ATTEMPT_FAILURE: f64 = 0.12;
/// Probability that a pipeline fails (simulated archive error) part-way.
const PIPELINE_FAILURE: f64 = 0.02;

/// Where a pipeline's appends go.
pub trait Sink {
    /// Appends one step: batches of one aggregate each, atomically (all or none).
    ///
    /// # Errors
    ///
    /// When the store refuses or fails the append.
    fn append(&mut self, step: Vec<AppendBatch>) -> anyhow::Result<()>;

    /// Whether the daemon is stopping: no new prompt should start.
    fn stopping(&self) -> bool;
}

/// How a pipeline ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineEnd {
    /// Every prompt processed: `pipeline_completed`.
    Completed,
    /// A simulated failure: `pipeline_failed`.
    Failed,
    /// Stopped by the daemon before its last prompt: `pipeline_failed` (`Interrupted`).
    Interrupted,
}

/// What one pipeline did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineOutcome {
    /// How it ended.
    pub end: PipelineEnd,
    /// Events it wrote.
    pub events: u64,
}

/// How one prompt ended.
struct PromptResult {
    success: bool,
    last_event: Uuid,
    seconds: f64,
}

/// The state of one running pipeline.
struct Run<'a, S: Sink> {
    sink: &'a mut S,
    rng: Rng,
    emitter: Emitter,
    writer: Writer,
    number: u64,
    config: GenerationConfig,
    started_event: Uuid,
}

fn one(stream: &StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendBatch {
    AppendBatch::new(stream.clone(), expected, events)
}

/// Runs pipeline `number` of `writer` and `seed` to its end, appending through `sink`.
///
/// # Errors
///
/// When an append fails.
pub fn run_pipeline<S: Sink>(
    seed: u64,
    writer: Writer,
    number: u64,
    sink: &mut S,
) -> anyhow::Result<PipelineOutcome> {
    let mut rng = Rng::new(seed, writer.stream(number));
    let mut emitter = Emitter::new(seed, writer, number);
    let id = writer.pipeline_id(number);
    let stream = StreamId::of::<PipelineStarted>(&id);
    let config = content::generation_config(&mut rng);
    let pipeline_type = if rng.chance(0.7) {
        "single_instance"
    } else {
        "multi_instance"
    };
    let total_prompts = rng.between(3, 8);
    let fail_at = rng
        .chance(PIPELINE_FAILURE)
        .then(|| rng.between(1, total_prompts - 1));
    let started = emitter.event(
        &id,
        &PipelineStarted {
            pipeline_type: pipeline_type.to_string(),
            config: config.clone(),
            total_prompts,
        },
        None,
    )?;
    let started_event = started.event_id;
    sink.append(vec![one(&stream, ExpectedVersion::NoStream, vec![started])])?;

    let mut run = Run {
        sink,
        rng,
        emitter,
        writer,
        number,
        config,
        started_event,
    };
    let mut successes = 0;
    let mut seconds = 0.0;
    let mut last_event = started_event;
    let mut end = PipelineEnd::Completed;
    let mut processed = 0;
    for index in 0..total_prompts {
        if fail_at == Some(index) {
            end = PipelineEnd::Failed;
            break;
        }
        if run.sink.stopping() {
            end = PipelineEnd::Interrupted;
            break;
        }
        let result = run.prompt(index, pipeline_type == "multi_instance")?;
        successes += u32::from(result.success);
        seconds += result.seconds;
        last_event = result.last_event;
        processed += 1;
    }
    let seconds = round_ms(seconds);
    let finished = match end {
        PipelineEnd::Completed => run.emitter.event(
            &id,
            &PipelineCompleted {
                pipeline_type: pipeline_type.to_string(),
                total_articles: total_prompts,
                successful_articles: successes,
                failed_articles: total_prompts - successes,
                total_time: seconds,
                zip_path: format!("output/{id}.zip"),
            },
            Some(last_event),
        )?,
        PipelineEnd::Failed => run.emitter.event(
            &id,
            &PipelineFailed {
                pipeline_type: pipeline_type.to_string(),
                error_message: "could not write the output archive: disk quota exceeded".into(),
                error_type: "ArchiveError".into(),
                processed_prompts: processed,
                total_time: seconds,
            },
            Some(last_event),
        )?,
        PipelineEnd::Interrupted => run.emitter.event(
            &id,
            &PipelineFailed {
                pipeline_type: pipeline_type.to_string(),
                error_message: format!(
                    "the daemon was stopped after {processed} of {total_prompts} prompts"
                ),
                error_type: "Interrupted".into(),
                processed_prompts: processed,
                total_time: seconds,
            },
            Some(last_event),
        )?,
    };
    run.sink.append(vec![one(
        &stream,
        ExpectedVersion::exact(1),
        vec![finished],
    )])?;
    Ok(PipelineOutcome {
        end,
        events: run.emitter.events(),
    })
}

/// How a cache lookup went.
enum Lookup {
    /// The article came from the cache.
    Hit(Uuid),
    /// Nothing usable: generate, caused by this event.
    Miss(Uuid),
}

impl<S: Sink> Run<'_, S> {
    /// Validates, looks up the cache and (on a miss) generates one prompt's article.
    fn prompt(&mut self, index: u32, multi_instance: bool) -> anyhow::Result<PromptResult> {
        let (topic, text) = content::prompt(&mut self.rng);
        let (valid, validation_event, mut seconds) = self.validate(index, &text)?;
        if !valid {
            // Refused or not checked: counted as a failed article.
            return Ok(PromptResult {
                success: false,
                last_event: validation_event,
                seconds,
            });
        }
        let key = content::cache_key(&text, &self.config);
        let miss_event = match self.look_up(&key, validation_event)? {
            Lookup::Hit(event) => {
                return Ok(PromptResult {
                    success: true,
                    last_event: event,
                    seconds,
                });
            }
            Lookup::Miss(event) => event,
        };
        let variation = if multi_instance {
            self.rng.between(1, 3)
        } else {
            1
        };
        let prompt = PromptInput { text, index };
        let result = self.generate(index, prompt, variation, topic, &key, miss_event)?;
        seconds += result.seconds;
        Ok(PromptResult { seconds, ..result })
    }

    /// `prompt_validation_started` + `completed` (or `failed`), one append. Returns whether the
    /// prompt may be generated, the last event and the simulated seconds.
    fn validate(&mut self, index: u32, text: &str) -> anyhow::Result<(bool, Uuid, f64)> {
        let id = self.writer.prompt_aggregate_id("val", self.number, index);
        let started = self.emitter.event(
            &id,
            &PromptValidationStarted {
                prompt_text: text.to_string(),
                validation_rules: VALIDATION_RULES.iter().map(|r| (*r).to_string()).collect(),
            },
            Some(self.started_event),
        )?;
        let cause = Some(started.event_id);
        let roll = self.rng.unit();
        let seconds = self.rng.seconds(0.02, 0.3);
        let (valid, finished) = if roll < 0.02 {
            let failed = PromptValidationFailed {
                error_message: "the content filter did not answer in time".into(),
                error_type: "ValidatorUnavailable".into(),
                failed_rules: vec!["content".into()],
            };
            (false, self.emitter.event(&id, &failed, cause)?)
        } else {
            let too_long = roll < 0.05;
            let validation_results = VALIDATION_RULES
                .iter()
                .map(|rule| ((*rule).to_string(), !(too_long && *rule == "length")))
                .collect();
            let words = u64::try_from(text.split_whitespace().count()).unwrap_or(0);
            let completed = PromptValidationCompleted {
                is_valid: !too_long,
                validation_results,
                estimated_tokens: 400 + words * 2 + self.rng.below(200),
            };
            (!too_long, self.emitter.event(&id, &completed, cause)?)
        };
        let last = finished.event_id;
        self.sink.append(vec![one(
            &StreamId::of::<PromptValidationStarted>(&id),
            ExpectedVersion::NoStream,
            vec![started, finished],
        )])?;
        Ok((valid, last, seconds))
    }

    /// `cache_hit`, `cache_miss`, or `cache_invalidated` + `cache_miss` (a stale entry): one
    /// append to the key's cache aggregate.
    fn look_up(&mut self, key: &str, cause: Uuid) -> anyhow::Result<Lookup> {
        let id = self.writer.cache_id(key);
        let cache_key = format!("prompt:{key}");
        let cache_type = "memory".to_string();
        let roll = self.rng.unit();
        let (events, lookup) = if roll < 0.25 {
            let hit = self.emitter.event(
                &id,
                &CacheHit {
                    cache_key,
                    cache_type,
                    response_time: round_ms(0.001 + 0.01 * self.rng.unit()),
                },
                Some(cause),
            )?;
            let lookup = Lookup::Hit(hit.event_id);
            (vec![hit], lookup)
        } else if roll < 0.28 {
            let invalidated = self.emitter.event(
                &id,
                &CacheInvalidated {
                    cache_key: cache_key.clone(),
                    cache_type: cache_type.clone(),
                    reason: "expired".into(),
                },
                Some(cause),
            )?;
            let miss = self.emitter.event(
                &id,
                &CacheMiss {
                    cache_key,
                    cache_type,
                    reason: "expired".into(),
                },
                Some(invalidated.event_id),
            )?;
            let lookup = Lookup::Miss(miss.event_id);
            (vec![invalidated, miss], lookup)
        } else {
            let miss = self.emitter.event(
                &id,
                &CacheMiss {
                    cache_key,
                    cache_type,
                    reason: "not_found".into(),
                },
                Some(cause),
            )?;
            let lookup = Lookup::Miss(miss.event_id);
            (vec![miss], lookup)
        };
        let stream = StreamId::of::<CacheHit>(&id);
        self.sink
            .append(vec![one(&stream, ExpectedVersion::Any, events)])?;
        Ok(lookup)
    }

    /// Generation attempts with retries, then the cache write on success.
    fn generate(
        &mut self,
        index: u32,
        prompt: PromptInput,
        variation: u32,
        topic: &str,
        key: &str,
        miss_event: Uuid,
    ) -> anyhow::Result<PromptResult> {
        let gen_id = self.writer.prompt_aggregate_id("gen", self.number, index);
        let retry_id = self.writer.prompt_aggregate_id("retry", self.number, index);
        let gen_stream = StreamId::of::<ArticleGenerationStarted>(&gen_id);
        let retry_stream = StreamId::of::<RetryAttempted>(&retry_id);
        let mut gen_version = 0;
        let mut retry_version = 0;
        let mut cause = miss_event;
        let mut seconds = 0.0;
        for attempt in 1..=MAX_ATTEMPTS {
            let started = self.emitter.event(
                &gen_id,
                &ArticleGenerationStarted {
                    config: self.config.clone(),
                    prompt: prompt.clone(),
                    variation,
                    started_at: eventlog::now_micros(),
                },
                Some(cause),
            )?;
            let started_id = started.event_id;
            self.sink.append(vec![one(
                &gen_stream,
                ExpectedVersion::exact(gen_version),
                vec![started],
            )])?;
            gen_version += 1;

            if self.rng.chance(ATTEMPT_FAILURE) {
                let generation_time = self.rng.seconds(0.5, 30.0);
                seconds += generation_time;
                let (error_type, error_message) = *self.rng.pick(GENERATION_ERRORS);
                let failed = self.emitter.event(
                    &gen_id,
                    &ArticleGenerationFailed {
                        error_message: error_message.into(),
                        error_type: error_type.into(),
                        generation_time,
                    },
                    Some(started_id),
                )?;
                let failed_id = failed.event_id;
                let retry = if attempt < MAX_ATTEMPTS {
                    let delay_seconds =
                        round_ms(f64::from(1_u32 << (attempt - 1)) + 0.5 * self.rng.unit());
                    seconds += delay_seconds;
                    let attempted = RetryAttempted {
                        operation: OPERATION.into(),
                        attempt_number: attempt + 1,
                        max_attempts: MAX_ATTEMPTS,
                        delay_seconds,
                        error_message: error_message.into(),
                    };
                    self.emitter.event(&retry_id, &attempted, Some(failed_id))?
                } else {
                    let gave_up = RetryFailed {
                        operation: OPERATION.into(),
                        total_attempts: attempt,
                        total_time: round_ms(seconds),
                        final_error: error_message.into(),
                    };
                    self.emitter.event(&retry_id, &gave_up, Some(failed_id))?
                };
                cause = retry.event_id;
                self.sink.append(vec![
                    one(
                        &gen_stream,
                        ExpectedVersion::exact(gen_version),
                        vec![failed],
                    ),
                    one(
                        &retry_stream,
                        ExpectedVersion::exact(retry_version),
                        vec![retry],
                    ),
                ])?;
                gen_version += 1;
                retry_version += 1;
                continue;
            }

            let generation_time = self.rng.seconds(2.0, 45.0);
            seconds += generation_time;
            let (content, metadata) = content::article(&mut self.rng, topic);
            let size_bytes = u64::try_from(content.len()).unwrap_or(u64::MAX);
            let tokens = u64::from(self.config.max_tokens / 4) + self.rng.below(1000);
            let completed = self.emitter.event(
                &gen_id,
                &ArticleGenerationCompleted {
                    article_output: ArticleOutput {
                        content,
                        filename: format!(
                            "{}/article-{index:03}-v{variation}.md",
                            self.writer.pipeline_id(self.number)
                        ),
                        metadata,
                    },
                    generation_time,
                    model_used: content::model_name(&self.config.model_type),
                    tokens_used: Some(tokens),
                },
                Some(started_id),
            )?;
            let completed_id = completed.event_id;
            let mut step = vec![one(
                &gen_stream,
                ExpectedVersion::exact(gen_version),
                vec![completed],
            )];
            if attempt > 1 {
                let succeeded = RetrySucceeded {
                    operation: OPERATION.into(),
                    final_attempt_number: attempt,
                    total_time: round_ms(seconds),
                };
                let event = self
                    .emitter
                    .event(&retry_id, &succeeded, Some(completed_id))?;
                step.push(one(
                    &retry_stream,
                    ExpectedVersion::exact(retry_version),
                    vec![event],
                ));
            }
            let cache_id = self.writer.cache_id(key);
            let set = self.emitter.event(
                &cache_id,
                &CacheSet {
                    cache_key: format!("prompt:{key}"),
                    cache_type: "memory".into(),
                    ttl_seconds: Some(86_400),
                    size_bytes,
                },
                Some(completed_id),
            )?;
            let last_event = set.event_id;
            step.push(one(
                &StreamId::of::<CacheSet>(&cache_id),
                ExpectedVersion::Any,
                vec![set],
            ));
            self.sink.append(step)?;
            return Ok(PromptResult {
                success: true,
                last_event,
                seconds,
            });
        }
        Ok(PromptResult {
            success: false,
            last_event: cause,
            seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps every append, in order.
    #[derive(Default)]
    struct Recorder {
        steps: Vec<Vec<AppendBatch>>,
        stop_after: Option<usize>,
    }

    impl Sink for Recorder {
        fn append(&mut self, step: Vec<AppendBatch>) -> anyhow::Result<()> {
            self.steps.push(step);
            Ok(())
        }
        fn stopping(&self) -> bool {
            self.stop_after.is_some_and(|n| self.steps.len() >= n)
        }
    }

    fn events(recorder: &Recorder) -> Vec<&NewEvent> {
        recorder
            .steps
            .iter()
            .flat_map(|step| step.iter().flat_map(|b| b.events.iter()))
            .collect()
    }

    /// Everything but the wall-clock fields.
    fn fingerprint(event: &NewEvent) -> (String, String, String, Vec<u8>, String) {
        let payload = if event.event_type == "article_generation_started" {
            Vec::new() // carries started_at, a wall-clock time
        } else {
            event.payload.clone()
        };
        (
            event.event_id.to_string(),
            event.event_type.clone(),
            event.aggregate_id.clone(),
            payload,
            format!("{:?}", event.context),
        )
    }

    #[test]
    fn the_same_seed_and_number_give_the_same_events() -> anyhow::Result<()> {
        for number in 1..=30 {
            let mut a = Recorder::default();
            let mut b = Recorder::default();
            run_pipeline(99, Writer::default(), number, &mut a)?;
            run_pipeline(99, Writer::default(), number, &mut b)?;
            let fa: Vec<_> = events(&a).into_iter().map(fingerprint).collect();
            let fb: Vec<_> = events(&b).into_iter().map(fingerprint).collect();
            assert_eq!(fa, fb);
        }
        let mut other = Recorder::default();
        run_pipeline(100, Writer::default(), 1, &mut other)?;
        let mut first = Recorder::default();
        run_pipeline(99, Writer::default(), 1, &mut first)?;
        assert_ne!(
            events(&other)[0].event_id,
            events(&first)[0].event_id,
            "another seed, other events"
        );
        Ok(())
    }

    #[test]
    fn causation_links_point_to_earlier_events_of_the_pipeline() -> anyhow::Result<()> {
        for number in 1..=50 {
            let mut recorder = Recorder::default();
            let outcome = run_pipeline(5, Writer::default(), number, &mut recorder)?;
            let all = events(&recorder);
            assert_eq!(outcome.events, all.len() as u64);
            assert_eq!(all[0].event_type, "pipeline_started");
            assert!(all[0].context.causation_id.is_none());
            let last = all.last().map(|e| e.event_type.as_str());
            assert!(matches!(
                last,
                Some("pipeline_completed" | "pipeline_failed")
            ));
            let mut seen = std::collections::HashSet::new();
            for event in &all {
                if let Some(cause) = &event.context.causation_id {
                    assert!(
                        seen.contains(cause),
                        "{} caused by a later event",
                        event.event_type
                    );
                }
                assert_eq!(
                    event.context.correlation_id.as_deref(),
                    Some(Writer::default().pipeline_id(number).as_str())
                );
                seen.insert(event.event_id.to_string());
            }
        }
        Ok(())
    }

    #[test]
    fn totals_match_the_prompts() -> anyhow::Result<()> {
        let registry = omni_domain::registry();
        for number in 1..=50 {
            let mut recorder = Recorder::default();
            let outcome = run_pipeline(11, Writer::default(), number, &mut recorder)?;
            let all = events(&recorder);
            let Some(last) = all.last() else {
                panic!("no events")
            };
            let recorded = (*last).clone().into_recorded(2, 1);
            if outcome.end == PipelineEnd::Completed {
                let done: PipelineCompleted = registry.decode(&recorded)?;
                let generated = all
                    .iter()
                    .filter(|e| e.event_type == "article_generation_completed")
                    .count() as u32;
                let hits = all.iter().filter(|e| e.event_type == "cache_hit").count() as u32;
                assert_eq!(done.successful_articles, generated + hits);
                assert_eq!(
                    done.successful_articles + done.failed_articles,
                    done.total_articles
                );
            }
        }
        Ok(())
    }

    #[test]
    fn a_writer_id_tags_every_aggregate_and_changes_every_event_id() -> anyhow::Result<()> {
        let mut plain = Recorder::default();
        let mut tagged = Recorder::default();
        run_pipeline(3, Writer::default(), 1, &mut plain)?;
        run_pipeline(3, Writer::new(Some(4)), 1, &mut tagged)?;
        let plain_ids: std::collections::HashSet<_> =
            events(&plain).iter().map(|e| e.event_id).collect();
        for event in events(&tagged) {
            let (kind, rest) = event.aggregate_id.split_once('-').unwrap_or_default();
            assert!(
                rest.starts_with("w4-"),
                "{kind} aggregate {} has no writer tag",
                event.aggregate_id
            );
            assert!(!plain_ids.contains(&event.event_id));
        }
        Ok(())
    }

    #[test]
    fn a_stop_closes_the_pipeline_as_interrupted() -> anyhow::Result<()> {
        let mut recorder = Recorder {
            stop_after: Some(1),
            ..Recorder::default()
        };
        let outcome = run_pipeline(1, Writer::default(), 1, &mut recorder)?;
        assert_eq!(outcome.end, PipelineEnd::Interrupted);
        let all = events(&recorder);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].event_type, "pipeline_failed");
        Ok(())
    }
}
