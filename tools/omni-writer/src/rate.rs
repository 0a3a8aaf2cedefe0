//! `--rate`: a shared pacer that spaces events evenly over all workers.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::control::Control;

/// Hands out send times `1/rate` seconds apart per event.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// At most `events_per_sec` events per second.
    pub fn new(events_per_sec: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / events_per_sec),
            next: Mutex::new(None),
        }
    }

    /// Waits until `events` more events may be written. Returns at once when stopping (the
    /// work in flight then finishes unpaced).
    pub fn acquire(&self, events: u32, control: &Control) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            // No credit for idle time: a pause does not allow a burst afterwards.
            let at = next.map_or(now, |n| n.max(now));
            *next = Some(at + self.interval * events);
            at
        };
        let wait = at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            control.sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_events() {
        let control = Control::default();
        let limiter = RateLimiter::new(1000.0);
        let started = Instant::now();
        for _ in 0..10 {
            limiter.acquire(5, &control);
        }
        // 50 events at 1000/s: the last batch may start at 45 ms.
        assert!(started.elapsed() >= Duration::from_millis(40));
    }

    #[test]
    fn a_stop_ends_the_wait() {
        let control = Control::default();
        let limiter = RateLimiter::new(0.1);
        limiter.acquire(1, &control);
        control.stop("test");
        let started = Instant::now();
        limiter.acquire(1, &control);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
