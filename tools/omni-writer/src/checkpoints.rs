//! Checkpoints while running: on SIGUSR1 and every `--checkpoint-every` seconds, taken by one
//! named thread into the store's checkpoint directory.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use eventlog::EventLog;

/// What the checkpoint thread is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Take a checkpoint now; the reason is logged.
    Now(&'static str),
    /// Finish.
    Stop,
}

/// Checkpoints taken by this run.
#[derive(Debug, Default)]
pub struct Taken {
    inner: Mutex<TakenInner>,
}

#[derive(Debug, Default)]
struct TakenInner {
    count: u64,
    last: Option<PathBuf>,
    /// When the last one was done.
    at: Option<Instant>,
}

impl Taken {
    fn record(&self, path: PathBuf) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.count += 1;
        inner.last = Some(path);
        inner.at = Some(Instant::now());
    }

    /// How many, and the last one's file.
    pub fn get(&self) -> (u64, Option<PathBuf>) {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        (inner.count, inner.last.clone())
    }

    /// Time since the last checkpoint of this run was done (`None`: none yet).
    pub fn age(&self) -> Option<Duration> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.at.map(|at| at.elapsed())
    }
}

/// Takes a checkpoint now, logging the outcome; a failure is logged, not fatal.
pub fn take(log: &EventLog, reason: &str, taken: &Taken) {
    let started = Instant::now();
    match log.admin().checkpoint() {
        Ok((path, manifest)) => {
            tracing::info!(
                name: "omni_writer_checkpoint",
                reason,
                path = %path.display(),
                last_position = manifest.last_position,
                chain_head = %manifest.chain_head,
                millis = started.elapsed().as_millis() as u64,
                "checkpoint taken"
            );
            taken.record(path);
        }
        Err(error) => {
            tracing::error!(name: "omni_writer_checkpoint_failed", reason, error = %error, "checkpoint failed");
        }
    }
}

/// The checkpoint thread and its request channel.
#[derive(Debug)]
pub struct Checkpointer {
    sender: Sender<Request>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Starts the thread (`omni-checkpoint`): a checkpoint on every request, and every `every`
    /// if given.
    ///
    /// # Errors
    ///
    /// When the thread cannot start.
    pub fn spawn(
        log: EventLog,
        every: Option<Duration>,
        taken: Arc<Taken>,
    ) -> anyhow::Result<Self> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("omni-checkpoint".into())
            .spawn(move || serve(&log, every, &receiver, &taken))
            .context("starting the checkpoint thread")?;
        Ok(Self { sender, thread })
    }

    /// A handle to send requests (for the signal thread).
    pub fn sender(&self) -> Sender<Request> {
        self.sender.clone()
    }

    /// Stops the thread (after the checkpoint in progress) and joins it.
    pub fn stop(self) {
        let _ = self.sender.send(Request::Stop);
        if self.thread.join().is_err() {
            tracing::error!(name: "omni_writer_checkpoint_panicked", "the checkpoint thread panicked");
        }
    }
}

fn serve(log: &EventLog, every: Option<Duration>, receiver: &Receiver<Request>, taken: &Taken) {
    let mut next = every.map(|every| Instant::now() + every);
    loop {
        let request = match next {
            Some(at) => match receiver.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(request) => request,
                Err(RecvTimeoutError::Timeout) => Request::Now("--checkpoint-every"),
                Err(RecvTimeoutError::Disconnected) => Request::Stop,
            },
            None => receiver.recv().unwrap_or(Request::Stop),
        };
        match request {
            Request::Stop => break,
            Request::Now(reason) => {
                take(log, reason, taken);
                if let Some(every) = every {
                    next = Some(Instant::now() + every);
                }
            }
        }
    }
}
