//! A commit listener that holds a handle on its own store (the store holds the listener, the
//! listener holds the store) must not keep the store open after it is closed, nor make the
//! writer thread join itself when the last other handle goes away while the listener runs.
//!
//! "The store closed" is checked the way a user sees it: the same directory opens again (sled's
//! lock is released only when the store has closed and dropped sled), within [`REOPEN_TIMEOUT`],
//! so a regression fails instead of hanging.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{config, hit};
use events_core::RecordedEvent;
use events_sled::{ExpectedVersion, OpenError, Store};
use tempfile::TempDir;

/// Generous: a closed store reopens in milliseconds.
const REOPEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Opens the store again, retrying while its directory is still locked; panics after
/// [`REOPEN_TIMEOUT`].
fn reopen(dir: &TempDir) -> Store {
    let deadline = Instant::now() + REOPEN_TIMEOUT;
    loop {
        match Store::open(config(dir)) {
            Ok(store) => return store,
            Err(OpenError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => panic!(
                "the store did not close: reopening failed after {REOPEN_TIMEOUT:?}: {error}"
            ),
        }
    }
}

#[test]
fn closing_a_store_whose_listener_holds_a_handle_releases_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(&dir)).unwrap();
    let held = store.clone();
    let (seen_tx, seen_rx) = mpsc::channel();
    let seen_tx = Mutex::new(seen_tx);
    store.set_commit_listener(Some(Arc::new(move |events: &[Arc<RecordedEvent>]| {
        // The listener uses its handle: the store's end as it sees it.
        let _ = seen_tx
            .lock()
            .unwrap()
            .send((events.len(), held.last_position()));
    })));
    store
        .append(ExpectedVersion::NoStream, vec![hit("c", 1)])
        .unwrap();
    assert_eq!(
        seen_rx.recv_timeout(REOPEN_TIMEOUT).unwrap(),
        (1, 1),
        "the listener saw the append"
    );
    store.close().unwrap();

    let reopened = reopen(&dir);
    assert_eq!(reopened.last_position(), 1);
    reopened.close().unwrap();
}

#[test]
fn the_last_handle_dropped_inside_the_listener_closes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(&dir)).unwrap();
    // The listener's own handle, and a signal that every other handle is gone.
    let held = Mutex::new(Some(store.clone()));
    let (others_gone_tx, others_gone_rx) = mpsc::channel::<()>();
    let others_gone_rx = Mutex::new(others_gone_rx);
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let dropped_tx = Mutex::new(dropped_tx);
    store.set_commit_listener(Some(Arc::new(move |_: &[Arc<RecordedEvent>]| {
        let Some(last) = held.lock().unwrap().take() else {
            return;
        };
        // Wait (bounded) until the test dropped its handle: this one is then the last, and it
        // is dropped here, on the writer thread, inside the listener.
        let waited = others_gone_rx.lock().unwrap().recv_timeout(REOPEN_TIMEOUT);
        drop(last);
        let _ = dropped_tx.lock().unwrap().send(waited.is_ok());
    })));
    store
        .append(ExpectedVersion::NoStream, vec![hit("c", 1)])
        .unwrap();
    drop(store);
    others_gone_tx.send(()).unwrap();
    assert_eq!(
        dropped_rx.recv_timeout(REOPEN_TIMEOUT),
        Ok(true),
        "the listener dropped the last handle"
    );

    let reopened = reopen(&dir);
    assert_eq!(
        reopened.last_position(),
        1,
        "the acknowledged append survived"
    );
    let report = reopened.verify().unwrap();
    assert!(report.ok, "{report:?}");
    reopened.close().unwrap();
}

#[test]
fn closing_the_store_inside_its_listener_finishes_once_the_listener_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(&dir)).unwrap();
    let held = Mutex::new(Some(store.clone()));
    let (closed_tx, closed_rx) = mpsc::channel();
    let closed_tx = Mutex::new(closed_tx);
    store.set_commit_listener(Some(Arc::new(move |_: &[Arc<RecordedEvent>]| {
        if let Some(own) = held.lock().unwrap().take() {
            let closed = own.close();
            let _ = closed_tx.lock().unwrap().send(closed.is_ok());
        }
    })));
    store
        .append(ExpectedVersion::NoStream, vec![hit("c", 1)])
        .unwrap();
    assert_eq!(closed_rx.recv_timeout(REOPEN_TIMEOUT), Ok(true));
    drop(store);

    let reopened = reopen(&dir);
    assert_eq!(
        reopened.last_position(),
        1,
        "the acknowledged append survived"
    );
    reopened.close().unwrap();
}
