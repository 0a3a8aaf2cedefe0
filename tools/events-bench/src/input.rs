//! The events of workload W, generated before any timing starts: the same bytes for every system.
//!
//! Every payload is a real `article_generation_started` event: an `ArticleGenerationStarted`
//! encoded by the events-core codec (format byte + bincode), exactly 200 bytes, whose prompt text
//! is seeded pseudo-words (so it does not compress trivially). Every system stores these very
//! bytes; the eventlog can fold them into its `ArticleGeneration` aggregate (W-load).
//!
//! Everything is derived from one fixed seed, so two runs (and the three systems within a run)
//! append exactly the same event ids, timestamps and payloads.

use chrono::{DateTime, Utc};
use events_core::codec;
use omni_domain::{ArticleGenerationStarted, GenerationConfig, PromptInput};
use uuid::Uuid;

/// Bytes of every payload.
pub const PAYLOAD_BYTES: usize = 200;
/// The event type of every event of W.
pub const EVENT_TYPE: &str = "article_generation_started";
/// The aggregate type of every event of W.
pub const AGGREGATE_TYPE: &str = "article_generation";
/// The `source` of every event's context.
pub const SOURCE: &str = "bench";
/// The payload's schema version.
pub const SCHEMA_VERSION: u16 = 1;

const SEED: u64 = 0x5eed_e7e1_0b3e_0001;
/// 2025-01-01T00:00:00Z in microseconds: timestamps are in the past (the store rejects future
/// ones), one millisecond apart.
const BASE_MICROS: i64 = 1_735_689_600_000_000;

/// `gen-<n>`.
pub fn aggregate_id(n: u32) -> String {
    format!("gen-{n}")
}

/// `article_generation/gen-<n>`: the stream id of the baselines.
pub fn stream_id(n: u32) -> String {
    format!("{AGGREGATE_TYPE}/gen-{n}")
}

/// SplitMix64: tiny, seeded, good enough to make payloads that do not compress trivially.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const SYLLABLES: &[&str] = &[
    "ar", "ti", "go", "ben", "cha", "do", "el", "fru", "gen", "ha", "in", "jo", "ka", "lu", "mor",
    "ne", "o", "pra", "qui", "ro", "sa", "te", "u", "vi", "wen", "xo", "ya", "ze", "bra", "cle",
    "dri", "fla", "gro", "ple", "stru", "tan", "ver", "mi", "na", "pe", "so", "lin", "tor", "cas",
    "dem", "fis", "gul", "hor",
];
const MODELS: &[&str] = &["openai", "deepseek", "claude", "llama", "mistral", "gemini"];
const LANGUAGES: &[&str] = &["pt-BR", "en-US", "es-ES", "fr-FR", "de-DE"];

/// The payload's text: seeded pseudo-words, exactly `len` bytes (ASCII).
fn words(rng: &mut Rng, len: usize) -> String {
    let mut text = String::with_capacity(len + 16);
    while text.len() < len {
        if !text.is_empty() {
            text.push(' ');
        }
        for _ in 0..1 + rng.below(3) {
            text.push_str(rng.pick(SYLLABLES));
        }
    }
    text.truncate(len);
    if text.ends_with(' ') {
        text.pop();
        text.push('a');
    }
    text
}

/// One payload: a valid `ArticleGenerationStarted` (the real event type of W) encoded by the
/// events-core codec, exactly [`PAYLOAD_BYTES`] bytes: the prompt's text (random pseudo-words)
/// takes whatever the other fields leave. Its JSON form (`payload_json_bytes`) is about 320
/// bytes. `started_at` is the event's timestamp.
fn payload(rng: &mut Rng, started_at: DateTime<Utc>) -> anyhow::Result<Vec<u8>> {
    let mut event = ArticleGenerationStarted {
        config: GenerationConfig {
            model_type: rng.pick(MODELS).to_string(),
            temperature: rng.below(100) as f64 / 100.0,
            max_tokens: 256 + rng.below(3840) as u32,
            language: rng.pick(LANGUAGES).to_string(),
        },
        prompt: PromptInput {
            text: String::new(),
            index: rng.below(1000) as u32,
        },
        variation: rng.below(10) as u32,
        started_at,
    };
    // The text's length prefix is one byte below 251 bytes (bincode varint), so the encoding
    // without text plus the text is the exact size.
    let without_text = codec::encode_payload(&event)?.len();
    let text_len = PAYLOAD_BYTES
        .checked_sub(without_text)
        .filter(|&n| n < 251)
        .ok_or_else(|| anyhow::anyhow!("the payload's fixed fields take {without_text} bytes"))?;
    event.prompt.text = words(rng, text_len);
    Ok(codec::encode_payload(&event)?)
}

/// The JSON form of payload `bytes` (for the record: how big W's payload is as JSON).
pub fn payload_json_bytes(bytes: &[u8]) -> anyhow::Result<usize> {
    let event: ArticleGenerationStarted = codec::decode_payload(bytes)?;
    Ok(serde_json::to_vec(&event)?.len())
}

/// The ids, timestamps and payloads of `count` events, in one allocation each.
#[derive(Debug)]
pub struct Input {
    ids: Vec<Uuid>,
    timestamps: Vec<DateTime<Utc>>,
    payloads: Vec<u8>,
}

impl Input {
    /// Generates `count` events from the fixed seed: event `i` is the same in every run.
    pub fn generate(count: usize) -> anyhow::Result<Self> {
        let mut rng = Rng(SEED);
        let mut ids = Vec::with_capacity(count);
        let mut timestamps = Vec::with_capacity(count);
        let mut payloads = Vec::with_capacity(count * PAYLOAD_BYTES);
        for i in 0..count {
            let mut bytes = [0_u8; 16];
            bytes[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
            bytes[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
            ids.push(uuid::Builder::from_random_bytes(bytes).into_uuid());
            let micros = BASE_MICROS + i as i64 * 1_000;
            timestamps.push(
                DateTime::from_timestamp_micros(micros)
                    .ok_or_else(|| anyhow::anyhow!("timestamp {micros} µs out of range"))?,
            );
            let bytes = payload(&mut rng, timestamps[i])?;
            anyhow::ensure!(
                bytes.len() == PAYLOAD_BYTES,
                "payload {i} is {} bytes, not {PAYLOAD_BYTES}",
                bytes.len()
            );
            payloads.extend_from_slice(&bytes);
        }
        Ok(Self {
            ids,
            timestamps,
            payloads,
        })
    }

    /// How many events there are.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Event `i`'s id.
    pub fn id(&self, i: usize) -> Uuid {
        self.ids[i]
    }

    /// Event `i`'s timestamp.
    pub fn timestamp(&self, i: usize) -> DateTime<Utc> {
        self.timestamps[i]
    }

    /// Event `i`'s payload: [`PAYLOAD_BYTES`] bytes, an encoded `ArticleGenerationStarted`.
    pub fn payload(&self, i: usize) -> &[u8] {
        &self.payloads[i * PAYLOAD_BYTES..(i + 1) * PAYLOAD_BYTES]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn payloads_are_200_bytes_of_distinct_started_events_and_deterministic() {
        let a = Input::generate(2_000).unwrap();
        let b = Input::generate(2_000).unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..a.len() {
            let p = a.payload(i);
            assert_eq!(p.len(), PAYLOAD_BYTES);
            let event: ArticleGenerationStarted = codec::decode_payload(p).unwrap();
            assert!(event.prompt.text.len() > 100, "{}", event.prompt.text.len());
            assert_eq!(event.started_at, a.timestamp(i));
            let json = payload_json_bytes(p).unwrap();
            assert!((280..360).contains(&json), "{json}");
            assert_eq!(p, b.payload(i));
            assert_eq!(a.id(i), b.id(i));
            assert_eq!(a.id(i).get_version_num(), 4);
            assert!(seen.insert(p.to_vec()));
        }
        assert!(a.timestamp(1) > a.timestamp(0));
        assert!(a.timestamp(1_999) < Utc::now());
    }
}
