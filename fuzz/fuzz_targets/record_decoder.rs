//! The decoders of stored bytes: log records, index pages, snapshot entries. The first byte picks
//! the decoder; the rest is its input. Every input must give a value or a decode error, never a
//! panic (and never an allocation the input cannot pay for: libFuzzer's -rss_limit_mb).
#![no_main]

use events_sled::fuzz::{decode_page, decode_record, decode_snapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            let _ = decode_record(rest);
        }
        1 => {
            let _ = decode_page(rest);
        }
        _ => {
            // A snapshot entry: key length (one byte), key, value.
            let Some((&key_len, rest)) = rest.split_first() else {
                return;
            };
            let key_len = usize::from(key_len).min(rest.len());
            let (key, value) = rest.split_at(key_len);
            let _ = decode_snapshot(key, value);
        }
    }
});
