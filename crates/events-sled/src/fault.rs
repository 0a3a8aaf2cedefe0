//! Test-only fault injection: a hook called before each `fdatasync` of the store's data, which
//! can delay that sync (by blocking) or fail it (by returning an error, which the store then
//! treats as that sync's error). Public only with the cargo feature `fault-injection`, which
//! nothing but this crate's own tests enable (through its dev-dependency on itself); without the
//! feature the hook does not exist and every sync runs as is.

/// A sync of the store's data that a sync hook can delay or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncPoint {
    /// The `fdatasync` of the log's active segment: durable mode's per-group sync on the writer
    /// thread (until it returns, the group is not durable), and every flush's first step.
    Log,
    /// The `fdatasync` of sled's data file: in every flush (the flusher thread,
    /// `Store::flush`, a checkpoint export, closing) and in a durable consumer commit.
    DataFile,
}

/// The hook: called with the sync about to run; an `Err` is returned as that sync's error.
#[cfg(feature = "fault-injection")]
pub type SyncHook = std::sync::Arc<dyn Fn(SyncPoint) -> std::io::Result<()> + Send + Sync>;

/// A [`SyncHook`] in the configuration (which is `Debug`).
#[cfg(feature = "fault-injection")]
#[derive(Clone)]
pub(crate) struct HookSlot(pub(crate) SyncHook);

#[cfg(feature = "fault-injection")]
impl std::fmt::Debug for HookSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncHook")
    }
}

impl crate::state::Shared {
    /// Runs the configured sync hook, if any, before the sync at `point`.
    pub(crate) fn before_sync(&self, point: SyncPoint) -> std::io::Result<()> {
        #[cfg(feature = "fault-injection")]
        if let Some(hook) = &self.config.sync_hook {
            return (hook.0)(point);
        }
        let _ = point;
        Ok(())
    }
}
