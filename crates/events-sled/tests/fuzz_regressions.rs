//! Inputs the fuzz targets (`fuzz/`, cargo-fuzz) found to crash a decoder, kept as regression
//! tests: each must decode to an error, never a panic. The first byte of a `record_decoder`
//! input picks the decoder (0 record, 1 page, 2 snapshot), as in `fuzz/fuzz_targets`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use events_sled::fuzz::{decode_page, decode_record, decode_snapshot};

/// Runs an input the way `fuzz/fuzz_targets/record_decoder.rs` does; true if it decoded.
fn record_decoder(data: &[u8]) -> bool {
    let Some((&selector, rest)) = data.split_first() else {
        return false;
    };
    match selector % 3 {
        0 => decode_record(rest).is_ok(),
        1 => decode_page(rest).is_ok(),
        _ => {
            let Some((&key_len, rest)) = rest.split_first() else {
                return false;
            };
            let (key, value) = rest.split_at(usize::from(key_len).min(rest.len()));
            decode_snapshot(key, value).is_ok()
        }
    }
}

/// `record_decoder`, minimized: a record whose first position is `u64::MAX` and whose event
/// count is 11, so its last position does not fit in a u64. `Record::parse` accepts it and
/// `Record::last_position` (record.rs) overflows: a panic in builds with overflow checks, a
/// wrapped position without them.
#[test]
fn a_record_whose_last_position_overflows_is_an_error() {
    let input: [u8; 46] = [
        0, 1, 255, 255, 255, 255, 255, 255, 255, 255, 1, 11, 0, 255, 255, 1, 0, 0, 0, 239, 64, 2,
        45, 178, 157, 2, 45, 178, 157, 239, 64, 0, 157, 239, 64, 157, 239, 64, 2, 45, 178, 157,
        239, 64, 0, 64,
    ];
    assert!(!record_decoder(&input));
}

/// `segment_recovery`'s check, run over damage a store's own log can suffer: a real log of
/// several segments, its active segment truncated or bit-flipped at a spread of offsets. Every
/// open answers (a log that reads back whole, or a typed error), never a panic.
#[test]
fn damaged_segment_files_recover_or_fail_typed() {
    use events_sled::fuzz::recover_segments;
    use events_sled::{ExpectedVersion, Store, StoreConfig};

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        StoreConfig::new(dir.path())
            .cache_capacity(8 << 20)
            .log_segment_bytes(64 << 10),
    )
    .unwrap();
    for n in 0..400_u64 {
        let event = events_core::NewEvent::from_parts(
            "noted",
            "cache",
            format!("a{}", n % 9),
            1,
            vec![n as u8; 300],
            events_core::EventContext::new("t"),
        );
        store.append(ExpectedVersion::Any, vec![event]).unwrap();
    }
    store.close().unwrap();
    let log = dir.path().join("log");
    let mut names: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".evl"))
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    let active = names.last().unwrap().clone();
    let original = std::fs::read(log.join(&active)).unwrap();
    let (mut recovered, mut refused) = (0, 0);
    for at in (0..original.len()).step_by(211) {
        for truncate in [true, false] {
            let mut bytes = original.clone();
            if truncate {
                bytes.truncate(at);
            } else {
                bytes[at] ^= 0x5A;
            }
            std::fs::write(log.join(&active), &bytes).unwrap();
            match recover_segments(&log) {
                Ok(_) => recovered += 1,
                Err(_) => refused += 1,
            }
            // Each case starts from the same sealed segments and the undamaged tail.
            for name in std::fs::read_dir(&log).unwrap() {
                let name = name.unwrap().file_name().into_string().unwrap();
                if !names.contains(&name) && !name.ends_with(".idx") {
                    std::fs::remove_file(log.join(name)).unwrap();
                }
            }
        }
    }
    assert!(
        recovered > 0 && refused > 0,
        "{recovered} recovered, {refused} refused"
    );
}
