//! Where events live: the stream of one aggregate ([`StreamId`]), an event's place in it
//! ([`Version`]) and in the whole log ([`Position`]), and what an append expects of the stream
//! ([`ExpectedVersion`]). Newtypes, so a position cannot be passed where a version is meant.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::DomainEvent;

/// One aggregate's stream: its type and its id.
///
/// # Example
///
/// ```
/// use events_core::{DomainEvent, StreamId};
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct Deposited { cents: u64 }
/// # impl DomainEvent for Deposited {
/// #     const EVENT_TYPE: &'static str = "deposited";
/// #     const AGGREGATE_TYPE: &'static str = "account";
/// # }
///
/// let stream = StreamId::new("account", "acc-1");
/// assert_eq!(stream, StreamId::of::<Deposited>("acc-1"));
/// assert_eq!(stream.to_string(), "account/acc-1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StreamId {
    aggregate_type: String,
    aggregate_id: String,
}

impl StreamId {
    /// The stream of aggregate `aggregate_id` of type `aggregate_type`.
    pub fn new(aggregate_type: impl Into<String>, aggregate_id: impl Into<String>) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
        }
    }

    /// The stream of aggregate `aggregate_id` of the aggregate type `E` belongs to.
    pub fn of<E: DomainEvent>(aggregate_id: impl Into<String>) -> Self {
        Self::new(E::AGGREGATE_TYPE, aggregate_id)
    }

    /// The aggregate's type (`"article_generation"`).
    pub fn aggregate_type(&self) -> &str {
        &self.aggregate_type
    }

    /// The aggregate's id.
    pub fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }

    /// Whether `aggregate_type`/`aggregate_id` name this stream.
    pub fn is(&self, aggregate_type: &str, aggregate_id: &str) -> bool {
        self.aggregate_type == aggregate_type && self.aggregate_id == aggregate_id
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.aggregate_type, self.aggregate_id)
    }
}

macro_rules! counter_newtype {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            #[doc = concat!("The ", $what, " as a number.")]
            pub const fn get(self) -> u64 {
                self.0
            }

            #[doc = concat!("The next ", $what, ", or `None` past `u64::MAX`.")]
            pub const fn next(self) -> Option<Self> {
                match self.0.checked_add(1) {
                    Some(next) => Some(Self(next)),
                    None => None,
                }
            }
        }

        impl From<u64> for $name {
            fn from(value: u64) -> Self {
                Self(value)
            }
        }

        impl From<$name> for u64 {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl PartialEq<u64> for $name {
            fn eq(&self, other: &u64) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for u64 {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialOrd<u64> for $name {
            fn partial_cmp(&self, other: &u64) -> Option<std::cmp::Ordering> {
                self.0.partial_cmp(other)
            }
        }

        impl PartialOrd<$name> for u64 {
            fn partial_cmp(&self, other: &$name) -> Option<std::cmp::Ordering> {
                self.partial_cmp(&other.0)
            }
        }

        /// Counting forwards; overflow panics like `u64`'s (with overflow checks on).
        impl std::ops::Add<u64> for $name {
            type Output = Self;
            fn add(self, n: u64) -> Self {
                Self(self.0 + n)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

counter_newtype!(
    /// An event's place in its aggregate's stream: 1 for the first event, 0 for "no events yet".
    Version,
    "version"
);

counter_newtype!(
    /// An event's place in the whole log: 1 for the first event ever appended, 0 for "before the
    /// first event".
    Position,
    "position"
);

impl Version {
    /// No events yet: the version of an aggregate that does not exist.
    pub const NONE: Self = Self(0);
}

impl Position {
    /// Before the first event: reading from here reads the whole log.
    pub const START: Self = Self(0);
}

/// What version an append expects its aggregate to be at (optimistic concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The aggregate must not exist yet.
    NoStream,
    /// The aggregate must have at least one event.
    StreamExists,
    /// The aggregate must be at exactly this version (0 is the same as `NoStream`).
    Exact(Version),
}

impl ExpectedVersion {
    /// [`ExpectedVersion::Exact`] of `version`.
    pub fn exact(version: impl Into<Version>) -> Self {
        Self::Exact(version.into())
    }

    /// Whether an aggregate at `current` (0: absent) satisfies the expectation.
    pub fn accepts(self, current: impl Into<Version>) -> bool {
        let current = current.into();
        match self {
            Self::Any => true,
            Self::NoStream => current == Version::NONE,
            Self::StreamExists => current > Version::NONE,
            Self::Exact(version) => current == version,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("an existing stream"),
            Self::Exact(version) => write!(f, "version {version}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_accept_the_versions_they_name() {
        assert!(ExpectedVersion::Any.accepts(7_u64));
        assert!(ExpectedVersion::NoStream.accepts(0_u64));
        assert!(!ExpectedVersion::NoStream.accepts(1_u64));
        assert!(ExpectedVersion::StreamExists.accepts(1_u64));
        assert!(!ExpectedVersion::StreamExists.accepts(0_u64));
        assert!(ExpectedVersion::exact(3_u64).accepts(3_u64));
        assert!(!ExpectedVersion::exact(3_u64).accepts(4_u64));
        assert!(ExpectedVersion::exact(0_u64).accepts(Version::NONE));
    }

    #[test]
    fn counters_compare_with_numbers_and_stop_at_the_top() {
        assert_eq!(Position(4), 4);
        assert!(Position(4) < 5 && 3 < Position(4));
        assert_eq!(Version(2) + 1, Version(3));
        assert_eq!(Version(2).next(), Some(Version(3)));
        assert_eq!(Version(u64::MAX).next(), None);
        assert_eq!(
            serde_json::to_string(&Position(9)).ok().as_deref(),
            Some("9")
        );
        assert_eq!(StreamId::new("cache", "c-1").to_string(), "cache/c-1");
    }
}
