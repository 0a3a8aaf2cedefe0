//! The global log in append-only segment files (see docs/design.md, "Segment files").

pub(crate) mod layout;
pub(crate) mod vfs;
