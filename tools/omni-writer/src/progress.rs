//! Progress while the daemon works: a bar (or spinner) when stderr is a terminal, a log line
//! every few seconds otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use eventlog::EventLog;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::control::Control;
use crate::logging::BarSlot;
use crate::runner::Counters;

/// What the reporter needs.
#[derive(Debug)]
pub struct Reporter {
    /// The store (for the durable position).
    pub log: EventLog,
    /// What the workers wrote.
    pub counters: Arc<Counters>,
    /// Stop flag: the reporter ends with the run.
    pub control: Arc<Control>,
    /// `--pipelines`, for the bar's length.
    pub pipelines: Option<u64>,
    /// Seconds between log lines (no terminal).
    pub every: Duration,
    /// Where the bar is published for the log writer.
    pub slot: BarSlot,
}

/// Events and events per second since the last look.
struct Rate {
    events: u64,
    at: Instant,
}

impl Rate {
    fn update(&mut self, events: u64) -> f64 {
        let now = Instant::now();
        let secs = now.duration_since(self.at).as_secs_f64();
        let rate = if secs > 0.0 {
            events.saturating_sub(self.events) as f64 / secs
        } else {
            0.0
        };
        self.events = events;
        self.at = now;
        rate
    }
}

fn bar(pipelines: Option<u64>) -> ProgressBar {
    let bar = match pipelines {
        Some(total) => {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} pipelines  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        }
        None => {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {pos} pipelines  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar
        }
    };
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

impl Reporter {
    /// Starts the reporter thread (`omni-progress`).
    ///
    /// # Errors
    ///
    /// When the thread cannot start.
    pub fn spawn(self) -> anyhow::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("omni-progress".into())
            .spawn(move || self.run())
            .context("starting the progress thread")
    }

    fn run(self) {
        let started = Instant::now();
        let mut rate = Rate {
            events: 0,
            at: started,
        };
        if std::io::stderr().is_terminal() {
            let bar = bar(self.pipelines);
            self.slot.set(Some(bar.clone()));
            loop {
                let stopping = self.control.sleep(Duration::from_millis(500));
                let events = self.counters.events.load(Ordering::Relaxed);
                let per_sec = rate.update(events);
                bar.set_position(self.counters.pipelines());
                bar.set_message(format!(
                    "{events} events  {per_sec:.0} events/s  durable position {}",
                    self.log.durable_position().map_or(0, |p| p.get())
                ));
                if stopping {
                    break;
                }
            }
            self.slot.set(None);
            bar.finish_and_clear();
        } else {
            while !self.control.sleep(self.every) {
                let events = self.counters.events.load(Ordering::Relaxed);
                let per_sec = rate.update(events);
                tracing::info!(
                    name: "omni_writer_progress",
                    events,
                    events_per_sec = per_sec.round() as u64,
                    pipelines = self.counters.pipelines(),
                    durable_position = self.log.durable_position().map_or(0, |p| p.get()),
                    elapsed_secs = started.elapsed().as_secs(),
                    "progress"
                );
            }
        }
    }
}
