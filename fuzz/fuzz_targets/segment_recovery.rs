//! Segment recovery: the input becomes the log's segment files — its first two bytes give the
//! length of the first segment's bytes, the rest is the second segment (each named by the first
//! position its header claims, or in turn) — then the log is opened as a store's open does.
//! Opening must answer with a log or a typed error, never a panic; a log that opens must read
//! back whole by position and in order, and open again to the same end without cutting more.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use events_sled::fuzz::recover_segments;
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("fuzz-segments-")
            .tempdir()
            .map(tempfile::TempDir::keep)
            .unwrap_or_else(|_| std::env::temp_dir().join("fuzz-segments"))
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch().join("log");
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let (head, tail) = rest.split_at(usize::from(u16::from_be_bytes(*len)).min(rest.len()));
    let mut next = 1_u64;
    for part in [head, tail].into_iter().filter(|p| !p.is_empty()) {
        // A header's first position (bytes 16..24), when the part holds one.
        let claimed = part
            .get(16..24)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .filter(|&p| p > 0)
            .unwrap_or(next);
        if std::fs::write(dir.join(format!("seg-{claimed:020}.evl")), part).is_err() {
            return;
        }
        next = claimed.saturating_add(1);
    }
    if let Err(error) = recover_segments(&dir) {
        // A typed error is a fine answer; only its text is checked to exist.
        assert!(!error.is_empty());
    }
});
