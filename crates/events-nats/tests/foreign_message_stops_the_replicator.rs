//! A message that did not come from this store's replicator (published straight onto the
//! stream's subjects) makes the stream disagree with the log: the replicator stops with
//! `ContentMismatch` naming the position, instead of publishing around it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{MemoryLog, WAIT};
use events_nats::{LocalServer, ReplicationConfig, ReplicationError, Replicator, StreamReader};

#[test]
fn a_foreign_message_in_the_stream_is_a_content_mismatch() {
    let server = LocalServer::start().unwrap();
    let log = MemoryLog::new("store-b");
    for _ in 0..10 {
        log.append("order", "o1");
    }
    let config = ReplicationConfig::new(server.url())
        .stream("FOREIGN")
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100));
    let source: Arc<dyn events_nats::ReplicaSource> = log.clone();
    let replicator = Replicator::start(config.clone(), Arc::clone(&source)).unwrap();
    assert!(replicator.wait_replicated(10, WAIT));
    replicator.stop().unwrap();

    // Someone else publishes message 11, without the replicator's headers.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.publish("eventlog.FOREIGN.order.o1", "not an event".into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    log.append("order", "o1");

    match Replicator::start(config, source) {
        Err(ReplicationError::ContentMismatch {
            position,
            in_stream,
            ..
        }) => {
            assert_eq!(position, 11);
            assert_eq!(in_stream, None, "the foreign message carries no event id");
        }
        Ok(replicator) => panic!("expected ContentMismatch, got {:?}", replicator.status()),
        Err(other) => panic!("expected ContentMismatch, got {other:?}"),
    }
    let summary = StreamReader::connect(&server.url(), "FOREIGN", WAIT)
        .unwrap()
        .summary()
        .unwrap();
    assert_eq!(summary.last_sequence, 11, "nothing published around it");
}
