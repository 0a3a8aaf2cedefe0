//! A `Subscriber` trait object gets its hooks (start, back to live, stop with its report) on
//! its own named thread.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use common::{Publisher, VecSource};
use events_bus::{Bus, Subscriber, SubscriberError, SubscriberOptions, SubscriberReport};

struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn note(&self, line: String) {
        let thread = std::thread::current().name().unwrap_or("?").to_owned();
        self.log.lock().unwrap().push(format!("{thread}: {line}"));
    }
}

impl Subscriber<u64> for Recorder {
    fn handle(&mut self, message: &u64) -> Result<(), SubscriberError> {
        if *message == 4 {
            return Err(SubscriberError::new("four"));
        }
        self.note(format!("handle {message}"));
        Ok(())
    }

    fn on_start(&mut self) {
        self.note("start".into());
    }

    fn on_live(&mut self, last_sequence: u64) {
        self.note(format!("live after {last_sequence}"));
    }

    fn on_stop(&mut self, report: &SubscriberReport) {
        self.note(format!(
            "stop at {} ({:?})",
            report.last_sequence, report.state
        ));
    }
}

#[test]
fn hooks_run_on_the_subscriber_thread() {
    let source = VecSource::<u64>::new();
    let bus = Bus::builder().catch_up_source(Arc::clone(&source)).build();
    let publisher = Publisher {
        bus: bus.clone(),
        source: Arc::clone(&source),
    };
    publisher.publish(1);
    publisher.publish(2);
    let log = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder {
        log: Arc::clone(&log),
    };
    let options =
        SubscriberOptions::new().settings(|s| s.failure_policy(events_bus::FailurePolicy::Skip));
    bus.subscribe_boxed("rec", Some(0), options, Box::new(recorder))
        .unwrap();
    // Wait until it is live, so message 3 onwards arrive live.
    assert!(common::wait_until(
        std::time::Duration::from_secs(10),
        || { bus.health()[0].state == events_bus::SubscriberState::Live }
    ));
    publisher.publish(3);
    publisher.publish(4);
    publisher.publish(5);
    let report = bus.shutdown().unwrap().remove(0);
    assert_eq!(report.counts.delivered, 4);
    assert_eq!(report.counts.skipped, 1);

    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "bus-rec: start",
            "bus-rec: handle 1",
            "bus-rec: handle 2",
            "bus-rec: live after 2",
            "bus-rec: handle 3",
            "bus-rec: handle 5",
            "bus-rec: stop at 5 (Finished)",
        ]
    );
}
