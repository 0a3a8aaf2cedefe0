//! Every Omni Writer event type round-trips through JSON and through the codec, as a payload and
//! as a whole recorded event.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod strategies;

use events_core::*;
use proptest::prelude::*;
use strategies::*;

fn check<E>(
    event: E,
    context: EventContext,
    version: u64,
    position: u64,
) -> Result<(), TestCaseError>
where
    E: DomainEvent + PartialEq + std::fmt::Debug,
{
    let registry = omni_domain::registry();

    // Payload through the codec.
    let bytes = codec::encode_payload(&event).unwrap();
    prop_assert_eq!(&codec::decode_payload::<E>(&bytes).unwrap(), &event);

    // Payload through JSON.
    let json = serde_json::to_string(&event).unwrap();
    prop_assert_eq!(&serde_json::from_str::<E>(&json).unwrap(), &event);

    // The whole event: typed -> envelope -> metadata codec -> JSON -> back.
    let recorded = NewEvent::from_event("agg-1", &event, context)
        .unwrap()
        .into_recorded(version, position);
    let metadata_bytes = codec::encode_metadata(&recorded.metadata).unwrap();
    prop_assert_eq!(
        &codec::decode_metadata(&metadata_bytes).unwrap(),
        &recorded.metadata
    );
    prop_assert_eq!(&registry.decode::<E>(&recorded).unwrap(), &event);

    let as_json = registry.event_to_json(&recorded).unwrap();
    let text = serde_json::to_string(&as_json).unwrap();
    let back = registry
        .event_from_json(serde_json::from_str(&text).unwrap())
        .unwrap();
    prop_assert_eq!(&back, &recorded);

    let new_event = recorded.to_new_event();
    let new_json = registry.new_event_to_json(&new_event).unwrap();
    prop_assert_eq!(&registry.new_event_from_json(new_json).unwrap(), &new_event);
    Ok(())
}

macro_rules! round_trip {
    ($($name:ident => $strategy:expr),* $(,)?) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            $(
                #[test]
                fn $name(event in $strategy, context in context(), version in 1_u64.., position in 1_u64..) {
                    check(event, context, version, position)?;
                }
            )*
        }
    };
}

round_trip! {
    article_generation_started_round_trips => article_generation_started(),
    article_generation_completed_round_trips => article_generation_completed(),
    article_generation_failed_round_trips => article_generation_failed(),
    prompt_validation_started_round_trips => prompt_validation_started(),
    prompt_validation_completed_round_trips => prompt_validation_completed(),
    prompt_validation_failed_round_trips => prompt_validation_failed(),
    cache_hit_round_trips => cache_hit(),
    cache_miss_round_trips => cache_miss(),
    cache_set_round_trips => cache_set(),
    cache_invalidated_round_trips => cache_invalidated(),
    retry_attempted_round_trips => retry_attempted(),
    retry_succeeded_round_trips => retry_succeeded(),
    retry_failed_round_trips => retry_failed(),
    pipeline_started_round_trips => pipeline_started(),
    pipeline_completed_round_trips => pipeline_completed(),
    pipeline_failed_round_trips => pipeline_failed(),
}
