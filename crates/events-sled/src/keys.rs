//! The key layout of the `log` tree, in one place. Every key starts with a one-byte tag; numbers
//! are big-endian so sled's byte order is numeric order.
//!
//! | key | value |
//! |---|---|
//! | `M` `format` | store format version, u32 BE |
//! | `M` `watermark` | last position covered by the persisted indexes, u64 BE |
//! | `M` `counters` | persisted counters ([`crate::record`]) |
//! | `M` `synced` | the last position a flush synced in the segment files, and the chain hash there ([`crate::record`]) |
//! | `M` `storeid` | the store's id, a UUID (16 bytes), made when the store is first opened |
//! | `L` position | format 1 only (read by the migration): a log record whose first event is at `position` |
//! | `S` stream first_version | a page of the stream index, from `first_version` |
//! | `T` type first_position | a page of the aggregate-type index, from `first_position` |
//!
//! A stream is `u16 BE len(aggregate_type) · aggregate_type · u16 BE len(aggregate_id) ·
//! aggregate_id`; length prefixes keep any bytes (NUL included) unambiguous and put every stream of
//! one aggregate type under one prefix.

use crate::varint::{Malformed, Reader};

pub(crate) const TAG_LOG: u8 = b'L';
pub(crate) const TAG_STREAM: u8 = b'S';
pub(crate) const TAG_TYPE: u8 = b'T';

pub(crate) const FORMAT_KEY: &[u8] = b"Mformat";
pub(crate) const WATERMARK_KEY: &[u8] = b"Mwatermark";
pub(crate) const COUNTERS_KEY: &[u8] = b"Mcounters";
/// The position an index persistence in progress reaches (big-endian u64), written before its
/// first page batch when it takes several and removed with its last: pages past the watermark
/// never pass it.
pub(crate) const INDEXING_KEY: &[u8] = b"Mindexing";
pub(crate) const SYNCED_KEY: &[u8] = b"Msynced";
pub(crate) const STORE_ID_KEY: &[u8] = b"Mstoreid";

/// The key of the log record that starts at `first_position`.
pub(crate) fn log_key(first_position: u64) -> [u8; 9] {
    let mut key = [TAG_LOG; 9];
    key[1..].copy_from_slice(&first_position.to_be_bytes());
    key
}

/// The first position of a log record key.
#[cfg(test)]
pub(crate) fn parse_log_key(key: &[u8]) -> Result<u64, Malformed> {
    let mut reader = Reader::new(key);
    if reader.u8("log key tag")? != TAG_LOG || key.len() != 9 {
        return Err(Malformed {
            what: "log key",
            offset: 0,
        });
    }
    reader.u64_be("log key position")
}

/// An aggregate (stream) identity in key form: type and id, length-prefixed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct StreamKey(Box<[u8]>);

impl StreamKey {
    /// Both parts must be under 64 KiB; validation limits them far below that.
    pub(crate) fn new(aggregate_type: &str, aggregate_id: &str) -> Self {
        let mut bytes = Vec::with_capacity(4 + aggregate_type.len() + aggregate_id.len());
        Self::write(&mut bytes, aggregate_type, aggregate_id);
        Self(bytes.into_boxed_slice())
    }

    /// Appends the key bytes of `aggregate_type/aggregate_id` to `out` (no allocation when `out`
    /// has room).
    pub(crate) fn write(out: &mut Vec<u8>, aggregate_type: &str, aggregate_id: &str) {
        push_str16(out, aggregate_type);
        push_str16(out, aggregate_id);
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `aggregate_type/aggregate_id`, for messages.
    pub(crate) fn label(&self) -> String {
        Self::label_of(&self.0)
    }

    /// [`StreamKey::label`] of key bytes.
    pub(crate) fn label_of(bytes: &[u8]) -> String {
        match Self::parse(bytes) {
            Ok((t, i, _)) => format!("{t}/{i}"),
            Err(_) => bytes.escape_ascii().to_string(),
        }
    }

    /// Splits key bytes back into `(aggregate_type, aggregate_id, rest)`.
    pub(crate) fn parse(bytes: &[u8]) -> Result<(String, String, &[u8]), Malformed> {
        let mut reader = Reader::new(bytes);
        let aggregate_type = read_str16(&mut reader, "stream key aggregate_type")?;
        let aggregate_id = read_str16(&mut reader, "stream key aggregate_id")?;
        let offset = reader.offset();
        Ok((aggregate_type, aggregate_id, &bytes[offset..]))
    }
}

fn push_str16(out: &mut Vec<u8>, text: &str) {
    let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&text.as_bytes()[..usize::from(len)]);
}

fn read_str16(reader: &mut Reader<'_>, what: &'static str) -> Result<String, Malformed> {
    let len = u16::from_be_bytes(reader.array(what)?);
    let offset = reader.offset();
    let bytes = reader.take(usize::from(len), what)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| Malformed { what, offset })
}

/// `S` · stream: every page of one stream.
pub(crate) fn stream_prefix(stream: &StreamKey) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + stream.0.len() + 8);
    key.push(TAG_STREAM);
    key.extend_from_slice(&stream.0);
    key
}

/// `S` · u16 len · aggregate_type: every page of every stream of one aggregate type.
pub(crate) fn stream_type_prefix(aggregate_type: &str) -> Vec<u8> {
    let mut key = vec![TAG_STREAM];
    push_str16(&mut key, aggregate_type);
    key
}

/// The key of the stream page whose first version is `first_version`.
pub(crate) fn stream_page_key(stream: &StreamKey, first_version: u64) -> Vec<u8> {
    let mut key = stream_prefix(stream);
    key.extend_from_slice(&first_version.to_be_bytes());
    key
}

/// Splits a stream page key into its stream and first version.
pub(crate) fn parse_stream_page_key(key: &[u8]) -> Result<(StreamKey, u64), Malformed> {
    let malformed = Malformed {
        what: "stream page key",
        offset: 0,
    };
    let (&tag, rest) = key.split_first().ok_or(malformed.clone())?;
    if tag != TAG_STREAM || rest.len() < 8 {
        return Err(malformed);
    }
    let (stream, version) = rest.split_at(rest.len() - 8);
    StreamKey::parse(stream).and_then(|(_, _, tail)| {
        if tail.is_empty() {
            Ok(())
        } else {
            Err(malformed.clone())
        }
    })?;
    let mut reader = Reader::new(version);
    Ok((
        StreamKey(stream.to_vec().into_boxed_slice()),
        reader.u64_be("stream page version")?,
    ))
}

/// `T` · u16 len · aggregate_type: every page of one aggregate type's index.
pub(crate) fn type_prefix(aggregate_type: &str) -> Vec<u8> {
    let mut key = vec![TAG_TYPE];
    push_str16(&mut key, aggregate_type);
    key
}

/// The key of the type page whose first position is `first_position`.
pub(crate) fn type_page_key(aggregate_type: &str, first_position: u64) -> Vec<u8> {
    let mut key = type_prefix(aggregate_type);
    key.extend_from_slice(&first_position.to_be_bytes());
    key
}

/// Splits a type page key into its aggregate type and first position.
pub(crate) fn parse_type_page_key(key: &[u8]) -> Result<(String, u64), Malformed> {
    let mut reader = Reader::new(key);
    if reader.u8("type page tag")? != TAG_TYPE {
        return Err(Malformed {
            what: "type page key",
            offset: 0,
        });
    }
    let aggregate_type = read_str16(&mut reader, "type page aggregate_type")?;
    let position = reader.u64_be("type page position")?;
    if !reader.is_empty() {
        return Err(Malformed {
            what: "type page key",
            offset: reader.offset(),
        });
    }
    Ok((aggregate_type, position))
}

/// The smallest key after every key starting with `prefix` (for exclusive range ends).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_position() {
        assert!(log_key(2) < log_key(10));
        assert!(log_key(255) < log_key(256));
        assert_eq!(parse_log_key(&log_key(77)).unwrap(), 77);
        assert!(parse_log_key(b"X").is_err());
    }

    #[test]
    fn stream_page_keys_sort_by_version_within_a_stream() {
        let s = StreamKey::new("article_generation", "gen-1");
        assert!(stream_page_key(&s, 9) < stream_page_key(&s, 10));
        let (back, v) = parse_stream_page_key(&stream_page_key(&s, 300)).unwrap();
        assert_eq!((back, v), (s.clone(), 300));
        assert!(stream_page_key(&s, 1).starts_with(&stream_type_prefix("article_generation")));
    }

    #[test]
    fn ids_with_odd_bytes_stay_apart() {
        let a = StreamKey::new("t", "a\0b");
        let b = StreamKey::new("t", "a");
        assert_ne!(a, b);
        assert!(!stream_prefix(&a).starts_with(&stream_prefix(&b)));
        let (ty, id, rest) = StreamKey::parse(a.as_bytes()).unwrap();
        assert_eq!((ty.as_str(), id.as_str(), rest), ("t", "a\0b", &[][..]));
    }

    #[test]
    fn type_page_keys_round_trip() {
        let key = type_page_key("cache", 1234);
        assert_eq!(
            parse_type_page_key(&key).unwrap(),
            ("cache".to_string(), 1234)
        );
        assert!(parse_type_page_key(b"T\x00").is_err());
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(b"ab"), b"ac".to_vec());
        assert_eq!(prefix_end(&[1, 0xFF]), vec![2]);
    }
}
