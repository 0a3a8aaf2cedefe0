//! Logs on stderr (text or JSON, RUST_LOG-style filter), written around the progress bar so
//! the two never garble each other.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use indicatif::ProgressBar;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::LogFormat;

/// The progress bar on screen, if any: log lines are printed above it.
#[derive(Debug, Clone, Default)]
pub struct BarSlot(Arc<Mutex<Option<ProgressBar>>>);

impl BarSlot {
    /// Puts `bar` on screen (or takes it off with `None`).
    pub fn set(&self, bar: Option<ProgressBar>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = bar;
    }

    fn get(&self) -> Option<ProgressBar> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Makes one [`LineWriter`] per log event.
#[derive(Debug, Clone)]
struct StderrAroundBar {
    slot: BarSlot,
}

/// Collects one formatted log event and writes it to stderr when dropped, with the bar
/// suspended.
struct LineWriter {
    slot: BarSlot,
    buffer: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let write = || {
            // Nothing sensible to do if stderr is gone.
            let _ = std::io::stderr().lock().write_all(&self.buffer);
        };
        match self.slot.get() {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

impl<'a> MakeWriter<'a> for StderrAroundBar {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            slot: self.slot.clone(),
            buffer: Vec::with_capacity(256),
        }
    }
}

/// Installs the global tracing subscriber.
///
/// # Errors
///
/// When the filter does not parse or a subscriber is already installed.
pub fn init(format: LogFormat, filter: Option<&str>, slot: BarSlot) -> anyhow::Result<()> {
    let filter = match filter {
        Some(directives) => EnvFilter::try_new(directives)
            .with_context(|| format!("--log-level `{directives}` is not a valid filter"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let writer = StderrAroundBar { slot };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_thread_names(true);
    let installed = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}
