//! Stopping: one flag every thread checks, with the reason, and sleeps that wake on a stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Shared by every thread of the daemon.
#[derive(Debug, Default)]
pub struct Control {
    stopping: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    reason: Option<String>,
    workers_done: usize,
    /// Set by a stop signal: a linger (now or later) ends at once.
    linger_cut: bool,
}

impl Control {
    /// Whether a stop was requested (cheap: one atomic load).
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Requests a stop; returns false when one was already requested (the first reason stays).
    pub fn stop(&self, reason: impl Into<String>) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let first = state.reason.is_none();
        if first {
            state.reason = Some(reason.into());
            self.stopping.store(true, Ordering::Release);
        }
        self.changed.notify_all();
        first
    }

    /// Why the daemon stopped (`None`: it was not asked to).
    pub fn reason(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reason
            .clone()
    }

    /// A worker finished.
    pub fn worker_done(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.workers_done += 1;
        self.changed.notify_all();
    }

    /// Sleeps `duration`, or less if a stop is requested; true when stopping.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.reason.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self.wait_changed(state, deadline - now);
        }
        true
    }

    /// After a failure, with `--http`: waits `duration` so that a supervisor sees the 503 of
    /// `/ready`, unless a stop signal cuts it short (before or during the wait).
    pub fn linger(&self, duration: Duration) {
        // A duration past what an `Instant` can hold waits until cut.
        let deadline = Instant::now().checked_add(duration);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !state.linger_cut {
            let now = Instant::now();
            let left = match deadline {
                Some(deadline) if now >= deadline => return,
                Some(deadline) => deadline - now,
                None => Duration::from_secs(3600),
            };
            state = self.wait_changed(state, left);
        }
    }

    /// Waits for a change of the state, at most `timeout`.
    fn wait_changed<'a>(
        &self,
        state: MutexGuard<'a, State>,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        self.changed
            .wait_timeout(state, timeout)
            .map(|(guard, _)| guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner().0)
    }

    /// Ends the linger, now or before it starts (a stop signal).
    pub fn cut_linger(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.linger_cut = true;
        self.changed.notify_all();
    }

    /// Waits until `workers` workers are done; requests a stop at `deadline` if one is given.
    pub fn wait_for_workers(&self, workers: usize, deadline: Option<Instant>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.workers_done < workers {
            let timeout = match deadline {
                Some(deadline) if state.reason.is_none() => {
                    let now = Instant::now();
                    if now >= deadline {
                        state.reason = Some("--duration reached".into());
                        self.stopping.store(true, Ordering::Release);
                        self.changed.notify_all();
                        continue;
                    }
                    deadline - now
                }
                _ => Duration::from_secs(3600),
            };
            state = self.wait_changed(state, timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins_and_sleeps_wake() {
        let control = Control::default();
        assert!(!control.stopping());
        assert!(!control.sleep(Duration::from_millis(1)));
        assert!(control.stop("SIGTERM"));
        assert!(!control.stop("SIGINT"));
        assert_eq!(control.reason().as_deref(), Some("SIGTERM"));
        let started = Instant::now();
        assert!(control.sleep(Duration::from_secs(10)));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_linger_waits_unless_cut() {
        let control = std::sync::Arc::new(Control::default());
        let started = Instant::now();
        control.linger(Duration::from_millis(30));
        assert!(started.elapsed() >= Duration::from_millis(30));
        let cutter = {
            let control = std::sync::Arc::clone(&control);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                control.cut_linger();
            })
        };
        let started = Instant::now();
        control.linger(Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(cutter.join().is_ok());
        // Cut before it starts: it does not wait.
        let started = Instant::now();
        control.linger(Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_deadline_stops_the_workers() {
        let control = std::sync::Arc::new(Control::default());
        let worker = {
            let control = std::sync::Arc::clone(&control);
            std::thread::spawn(move || {
                while !control.sleep(Duration::from_secs(5)) {}
                control.worker_done();
            })
        };
        control.wait_for_workers(1, Some(Instant::now() + Duration::from_millis(20)));
        assert_eq!(control.reason().as_deref(), Some("--duration reached"));
        assert!(worker.join().is_ok());
    }
}
