//! Helpers shared by the store's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use events_core::{CacheHit, EventContext, NewEvent};
use events_sled::{Durability, Store, StoreConfig};
use tempfile::TempDir;

/// A cache-hit event for aggregate `id`, with a recognisable key.
pub fn hit(id: &str, n: u64) -> NewEvent {
    NewEvent::from_event(
        id,
        &CacheHit {
            cache_key: format!("key-{n}"),
            cache_type: "memory".into(),
            response_time: n as f64,
        },
        EventContext::new("test").with_trace_id(format!("trace-{n}")),
    )
    .unwrap()
}

pub fn config(dir: &TempDir) -> StoreConfig {
    StoreConfig::new(dir.path())
        .cache_capacity(16 << 20)
        .durability(Durability::Buffered)
}

pub fn open(dir: &TempDir) -> Store {
    Store::open(config(dir)).unwrap()
}

pub fn cache_key_of(event: &events_core::RecordedEvent) -> String {
    events_core::codec::decode_payload::<CacheHit>(&event.payload)
        .unwrap()
        .cache_key
}

/// A checkpoint file's sections `(tag, bytes)`, manifest last (see `checkpoint.rs` for the layout).
pub fn checkpoint_sections(path: &std::path::Path) -> Vec<(u8, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"EVLCKPT1");
    let body = &bytes[..bytes.len() - 48];
    let mut sections = Vec::new();
    let mut at = 8;
    while at < body.len() {
        let tag = body[at];
        let len = u64::from_be_bytes(body[at + 1..at + 9].try_into().unwrap()) as usize;
        sections.push((tag, body[at + 9..at + 9 + len].to_vec()));
        at += 9 + len;
    }
    sections
}

/// Writes `sections` as a checkpoint file with a correct footer (manifest offset and hash).
pub fn write_checkpoint_sections(path: &std::path::Path, sections: &[(u8, Vec<u8>)]) {
    let mut out = b"EVLCKPT1".to_vec();
    let mut manifest_offset = 0;
    for (tag, bytes) in sections {
        if *tag == b'M' {
            manifest_offset = out.len() as u64;
        }
        out.push(*tag);
        out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    let hash = blake3::hash(&out);
    out.extend_from_slice(&manifest_offset.to_be_bytes());
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(b"EVLCKEND");
    std::fs::write(path, out).unwrap();
}
