//! Checkpoints (placeholder for the automatic thread until export lands).

use std::sync::Arc;

use crate::state::Shared;

pub(crate) fn start_automatic(_shared: &Arc<Shared>) -> std::io::Result<()> {
    Ok(())
}
