//! SIGINT, SIGTERM and SIGUSR1, handled on a named thread through `signal-hook` (no unsafe).

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use anyhow::Context as _;
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::{Handle, Signals};

use crate::checkpoints::Request;
use crate::control::Control;

/// The exit status of a second SIGINT/SIGTERM: stop at once.
pub const FORCED_EXIT: i32 = 130;

/// The signal thread.
#[derive(Debug)]
pub struct SignalThread {
    handle: Handle,
    thread: JoinHandle<()>,
}

impl SignalThread {
    /// Starts the thread (`omni-signals`): SIGINT/SIGTERM request a stop and end a linger after
    /// a failure (a second one exits at once), SIGUSR1 requests a checkpoint.
    ///
    /// # Errors
    ///
    /// When the handlers cannot be installed or the thread cannot start.
    pub fn spawn(control: Arc<Control>, checkpoints: Sender<Request>) -> anyhow::Result<Self> {
        let mut signals =
            Signals::new([SIGINT, SIGTERM, SIGUSR1]).context("installing signal handlers")?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("omni-signals".into())
            .spawn(move || {
                let mut stop_signals = 0_u32;
                for signal in signals.forever() {
                    let name = match signal {
                        SIGINT => "SIGINT",
                        SIGTERM => "SIGTERM",
                        _ => "SIGUSR1",
                    };
                    if signal == SIGUSR1 {
                        tracing::info!(name: "omni_writer_signal", signal = name, "checkpoint requested");
                        let _ = checkpoints.send(Request::Now("SIGUSR1"));
                        continue;
                    }
                    stop_signals += 1;
                    if stop_signals == 1 {
                        // The daemon may already be stopping (a failure): then this ends the
                        // linger, and the second signal is still the one that exits at once.
                        control.stop(format!("{name} received"));
                        control.cut_linger();
                        tracing::info!(
                            name: "omni_writer_signal",
                            signal = name,
                            "stopping: finishing the prompts in flight, then flushing"
                        );
                    } else {
                        tracing::warn!(
                            name: "omni_writer_signal",
                            signal = name,
                            "second stop signal: exiting now (durable appends are on disk)"
                        );
                        std::process::exit(FORCED_EXIT);
                    }
                }
            })
            .context("starting the signal thread")?;
        Ok(Self { handle, thread })
    }

    /// Uninstalls the handlers and joins the thread.
    pub fn close(self) {
        self.handle.close();
        if self.thread.join().is_err() {
            tracing::error!(name: "omni_writer_signals_panicked", "the signal thread panicked");
        }
    }
}
