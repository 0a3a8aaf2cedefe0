//! What a replicator and a merger share: a named thread owning a current-thread tokio runtime,
//! one connection, and sessions retried with a backoff until stopped or failed.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use async_nats::jetstream::{self, Context};
use tokio::sync::watch;

use crate::config::ReplicationConfig;
use crate::error::{ReplicationError, SourceError};
use crate::replicator::{
    ReplicationProbe, ReplicationStatus, ReplicatorState, SessionEnd, Shared, connect_client,
};

/// One session's work: check the stream, publish until an error or `stop`.
pub(crate) trait Sessions: Send + 'static {
    fn session(
        &mut self,
        js: &Context,
        client: &async_nats::Client,
        stop: &watch::Receiver<bool>,
    ) -> impl Future<Output = SessionEnd>;
}

/// The thread, its stop signal and its shared status.
#[derive(Debug)]
pub(crate) struct Running {
    stream: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<Result<(), ReplicationError>>>,
}

impl Running {
    /// Starts `events-nats-<kind>` running the sessions of the worker `make` builds, and waits
    /// at most the connect timeout for the first session's checks: their refusal is returned.
    pub(crate) fn spawn<W: Sessions>(
        kind: &'static str,
        config: ReplicationConfig,
        make: impl FnOnce(Arc<Shared>) -> W,
    ) -> Result<Self, ReplicationError> {
        let shared = Arc::new(Shared::default());
        let (first_tx, first_rx) = std::sync::mpsc::sync_channel(1);
        *crate::replicator::lock(&shared.first) = Some(first_tx);
        let (stop, stop_rx) = watch::channel(false);
        let worker = make(Arc::clone(&shared));
        let stream = config.stream.clone();
        let connect_timeout = config.connect_timeout;
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("events-nats-{kind}"))
            .spawn(move || run(kind, config, worker, thread_shared, stop_rx))
            .map_err(ReplicationError::Thread)?;
        let mut running = Self {
            stream,
            shared,
            stop,
            thread: Some(thread),
        };
        match first_rx.recv_timeout(connect_timeout) {
            Ok(true) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(running),
            Ok(false) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                // It ended on an error no retry fixes: return that error.
                running.join()?;
                Err(ReplicationError::Source(SourceError::Closed))
            }
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn probe(&self) -> ReplicationProbe {
        ReplicationProbe::new(self.stream.clone(), Arc::clone(&self.shared))
    }

    /// Stops it, joins the thread, and returns the final status.
    pub(crate) fn stop(mut self) -> Result<ReplicationStatus, ReplicationError> {
        self.join()?;
        Ok(self.probe().status())
    }

    fn join(&mut self) -> Result<(), ReplicationError> {
        self.stop.send_replace(true);
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        thread.join().unwrap_or_else(|_| {
            tracing::error!(name: "events_nats_thread_panicked", stream = %self.stream, "the replication thread panicked");
            Err(ReplicationError::Thread(std::io::Error::other(
                "the replication thread panicked",
            )))
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Err(error) = self.join() {
            tracing::warn!(name: "events_nats_ended_on_error", stream = %self.stream, error = %error, "replication ended on an error");
        }
    }
}

/// The thread's body: sessions on a current-thread runtime, then the final state.
fn run<W: Sessions>(
    kind: &'static str,
    config: ReplicationConfig,
    mut worker: W,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> Result<(), ReplicationError> {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name(format!("events-nats-{kind}-io"))
        .build()
        .map_err(ReplicationError::Thread)
        .and_then(|runtime| {
            let result = runtime.block_on(sessions(kind, &config, &mut worker, &shared, stop));
            // Reads still blocking on the log end by themselves (their wait is short).
            runtime.shutdown_timeout(Duration::from_secs(1));
            result
        });
    match &result {
        Ok(()) => shared.set_state(ReplicatorState::Stopped),
        Err(error) => {
            shared.note_error(&error.to_string());
            shared.set_state(ReplicatorState::Failed);
            tracing::error!(name: "events_nats_failed", kind, stream = %config.stream, error = %error, "stopped on an error");
        }
    }
    shared.report_first(result.is_ok());
    result
}

async fn sessions<W: Sessions>(
    kind: &'static str,
    config: &ReplicationConfig,
    worker: &mut W,
    shared: &Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> Result<(), ReplicationError> {
    let span = tracing::info_span!("events_nats_sessions", kind, stream = %config.stream, url = %config.url);
    let _entered = span.enter();
    let client = connect_client(
        &config.url,
        &format!("eventlog-{kind}-{}", config.stream),
        config,
        shared,
        &config.stream,
    )
    .await?;
    // Acks of an ended session are left to the client's background acker: bound its wait as
    // well, or their permits would hold up the next session (30 s by default).
    let js = jetstream::context::ContextBuilder::new()
        .timeout(config.ack_timeout)
        .ack_timeout(config.ack_timeout)
        .max_ack_inflight(config.max_in_flight)
        .backpressure_on_inflight(true)
        .build(client.clone());
    let mut backoff = config.retry_min;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        shared.sessions.fetch_add(1, Ordering::Relaxed);
        shared.set_state(ReplicatorState::Connecting);
        let before = shared.replicated.load(Ordering::Acquire);
        match worker.session(&js, &client, &stop).await {
            SessionEnd::Stopped => return Ok(()),
            SessionEnd::Fatal(error) => return Err(error),
            SessionEnd::Retry(reason) => {
                shared.note_error(&reason);
                shared.set_state(ReplicatorState::Retrying);
                if shared.replicated.load(Ordering::Acquire) > before {
                    backoff = config.retry_min;
                }
                tracing::warn!(name: "events_nats_session_retry", kind, stream = %config.stream, reason = %reason, backoff_ms = backoff.as_millis() as u64, "session ended; retrying");
                let mut stop = stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|stop| *stop) => return Ok(()),
                }
                backoff = (backoff * 2).min(config.retry_max);
            }
        }
    }
}
