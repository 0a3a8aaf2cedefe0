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
