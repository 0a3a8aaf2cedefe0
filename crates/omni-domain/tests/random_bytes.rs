//! Random bytes given to any decoder return an error or a value, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use events_core::*;
use omni_domain::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn metadata_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = codec::decode_metadata(&bytes);
    }

    #[test]
    fn metadata_decoder_never_panics_behind_a_valid_format_byte(
        mut bytes in prop::collection::vec(any::<u8>(), 0..256)
    ) {
        bytes.insert(0, codec::CODEC_FORMAT_VERSION);
        let _ = codec::decode_metadata(&bytes);
    }

    #[test]
    fn every_payload_decoder_never_panics(
        mut bytes in prop::collection::vec(any::<u8>(), 0..256),
        schema_version in 0_u16..4,
    ) {
        bytes.insert(0, codec::CODEC_FORMAT_VERSION);
        let registry = omni_domain::registry();
        for event_type in registry.event_types() {
            let _ = registry.payload_to_json(event_type, schema_version, &bytes);
        }
    }

    #[test]
    fn json_event_reader_never_panics(text in "\\PC{0,200}") {
        let registry = omni_domain::registry();
        if let Ok(json) = serde_json::from_str(&text) {
            let _ = registry.event_from_json(json);
        }
    }
}

#[test]
fn flipping_any_bit_of_metadata_never_panics() {
    let metadata = NewEvent::from_event(
        "gen-1",
        &CacheHit {
            cache_key: "key".into(),
            cache_type: "memory".into(),
            response_time: 0.5,
        },
        EventContext::new("test").with_trace_id("t-1"),
    )
    .unwrap()
    .metadata(7);
    let bytes = codec::encode_metadata(&metadata).unwrap();
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let _ = codec::decode_metadata(&flipped);
    }
}
