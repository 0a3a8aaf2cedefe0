//! Model-based property test: random sequences of operations against the store and an in-memory
//! reference model — appends of every expected-version kind, multi-aggregate appends, retries,
//! reads in every direction, snapshots, checkpoint export and import, close and reopen. Any
//! divergence fails with a shrunk case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::PathBuf;

use events_core::{EventContext, NewEvent};
use events_sled::{
    AppendBatch, AppendError, Durability, ExpectedVersion, Store, StoreConfig, StreamRead,
    import_checkpoint,
};
use proptest::prelude::*;
use uuid::Uuid;

const AGGREGATES: [(&str, &str); 4] = [
    ("cache", "a"),
    ("cache", "b"),
    ("thing", "a"),
    ("thing", "ab"),
];

#[derive(Debug, Clone)]
enum Expect {
    Any,
    NoStream,
    StreamExists,
    Right,
    Wrong(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        agg: usize,
        expect: Expect,
        n: usize,
    },
    AppendTwo {
        first: usize,
        second: usize,
        expect_first: Expect,
        n: usize,
    },
    RetryLast,
    ReadStream {
        agg: usize,
        from: Option<u64>,
        backwards: bool,
        limit: Option<usize>,
    },
    ReadLog {
        from: u64,
        limit: Option<usize>,
    },
    ReadType {
        thing: bool,
        from: u64,
        limit: Option<usize>,
    },
    Snapshot {
        agg: usize,
        back: u64,
    },
    Reopen,
    ExportImport,
    Verify,
}

fn expect() -> impl Strategy<Value = Expect> {
    prop_oneof![
        1 => Just(Expect::Any),
        1 => Just(Expect::NoStream),
        1 => Just(Expect::StreamExists),
        3 => Just(Expect::Right),
        1 => (0_u64..6).prop_map(Expect::Wrong),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..4_usize, expect(), 1..4_usize).prop_map(|(agg, expect, n)| Op::Append { agg, expect, n }),
        2 => (0..4_usize, 0..4_usize, expect(), 1..3_usize).prop_map(|(first, second, expect_first, n)| Op::AppendTwo { first, second, expect_first, n }),
        1 => Just(Op::RetryLast),
        3 => (0..4_usize, prop::option::of(0_u64..12), any::<bool>(), prop::option::of(0_usize..5))
            .prop_map(|(agg, from, backwards, limit)| Op::ReadStream { agg, from, backwards, limit }),
        2 => (0_u64..40, prop::option::of(0_usize..8)).prop_map(|(from, limit)| Op::ReadLog { from, limit }),
        1 => (any::<bool>(), 0_u64..40, prop::option::of(0_usize..8)).prop_map(|(thing, from, limit)| Op::ReadType { thing, from, limit }),
        1 => (0..4_usize, 0_u64..3).prop_map(|(agg, back)| Op::Snapshot { agg, back }),
        1 => Just(Op::Reopen),
        1 => Just(Op::ExportImport),
        1 => Just(Op::Verify),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct Logged {
    position: u64,
    agg: usize,
    version: u64,
    event_id: Uuid,
}

#[derive(Default)]
struct Model {
    log: Vec<Logged>,
    heads: HashMap<usize, u64>,
    snapshots: HashMap<usize, Vec<u64>>,
}

impl Model {
    fn head(&self, agg: usize) -> u64 {
        self.heads.get(&agg).copied().unwrap_or(0)
    }

    fn expected(&self, agg: usize, expect: &Expect) -> ExpectedVersion {
        match expect {
            Expect::Any => ExpectedVersion::Any,
            Expect::NoStream => ExpectedVersion::NoStream,
            Expect::StreamExists => ExpectedVersion::StreamExists,
            Expect::Right => ExpectedVersion::exact(self.head(agg)),
            Expect::Wrong(v) => ExpectedVersion::exact(*v),
        }
    }

    fn apply(&mut self, agg: usize, events: &[NewEvent]) -> (u64, u64) {
        let first = self.log.len() as u64 + 1;
        for event in events {
            let version = self.head(agg) + 1;
            self.heads.insert(agg, version);
            self.log.push(Logged {
                position: self.log.len() as u64 + 1,
                agg,
                version,
                event_id: event.event_id,
            });
        }
        (first, self.log.len() as u64)
    }
}

fn event(agg: usize, n: u64) -> NewEvent {
    let (aggregate_type, aggregate_id) = AGGREGATES[agg];
    NewEvent::from_parts(
        "happened",
        aggregate_type,
        aggregate_id,
        1,
        n.to_le_bytes().to_vec(),
        EventContext::new("model"),
    )
}

struct Harness {
    _dirs: Vec<tempfile::TempDir>,
    path: PathBuf,
    durability: Durability,
    store: Option<Store>,
    counter: u64,
    last: Option<Vec<AppendBatch>>,
}

impl Harness {
    fn config(&self) -> StoreConfig {
        StoreConfig::new(&self.path)
            .cache_capacity(8 << 20)
            .durability(self.durability)
            .index_flush_events(3)
            .record_target_bytes(1024)
            .snapshots_to_keep(2)
    }

    fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    fn events(&mut self, agg: usize, n: usize) -> Vec<NewEvent> {
        (0..n)
            .map(|_| {
                self.counter += 1;
                event(agg, self.counter)
            })
            .collect()
    }
}

fn agg_of(e: &events_core::RecordedEvent) -> usize {
    AGGREGATES
        .iter()
        .position(|(t, i)| *t == e.metadata.aggregate_type && *i == e.metadata.aggregate_id)
        .unwrap()
}

fn run(ops: Vec<Op>, durability: Durability) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut h = Harness {
        _dirs: vec![dir],
        path,
        durability,
        store: None,
        counter: 0,
        last: None,
    };
    h.store = Some(Store::open(h.config()).unwrap());
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append { agg, expect, n } => {
                let expected = model.expected(agg, &expect);
                let events = h.events(agg, n);
                let batch = AppendBatch::new(expected, events.clone());
                let result = h.store().append(expected, events.clone());
                if expected.accepts(model.head(agg)) {
                    let r = result.unwrap();
                    let (first, last) = model.apply(agg, &events);
                    prop_assert_eq!((r.first_position, r.last_position), (first, last));
                    prop_assert_eq!(r.last_version, model.head(agg));
                    h.last = Some(vec![batch]);
                } else {
                    match result {
                        Err(AppendError::WrongExpectedVersion { actual, .. }) => {
                            prop_assert_eq!(actual, model.head(agg))
                        }
                        other => prop_assert!(false, "expected a conflict, got {:?}", other),
                    }
                }
            }
            Op::AppendTwo {
                first,
                second,
                expect_first,
                n,
            } => {
                if first == second {
                    continue;
                }
                let e1 = model.expected(first, &expect_first);
                let ev1 = h.events(first, n);
                let ev2 = h.events(second, n);
                let batches = vec![
                    AppendBatch::new(e1, ev1.clone()),
                    AppendBatch::new(ExpectedVersion::exact(model.head(second)), ev2.clone()),
                ];
                let result = h.store().append_batches(batches.clone());
                if e1.accepts(model.head(first)) {
                    let results = result.unwrap();
                    let (f1, _) = model.apply(first, &ev1);
                    let (_, l2) = model.apply(second, &ev2);
                    prop_assert_eq!(results[0].first_position, f1);
                    prop_assert_eq!(results[1].last_position, l2);
                    h.last = Some(batches);
                } else {
                    let before = h.store().last_position();
                    let conflicted =
                        matches!(result, Err(AppendError::WrongExpectedVersion { .. }));
                    prop_assert!(conflicted, "expected a conflict");
                    prop_assert_eq!(before, model.log.len() as u64, "nothing stored");
                }
            }
            Op::RetryLast => {
                if let Some(batches) = h.last.clone() {
                    let before = model.log.len() as u64;
                    h.store().append_batches(batches).unwrap();
                    prop_assert_eq!(h.store().last_position(), before, "a retry writes nothing");
                }
            }
            Op::ReadStream {
                agg,
                from,
                backwards,
                limit,
            } => {
                let (t, i) = AGGREGATES[agg];
                let mut read = if backwards {
                    StreamRead::backwards()
                } else {
                    StreamRead::forwards()
                };
                if let Some(from) = from {
                    read = read.from(from);
                }
                if let Some(limit) = limit {
                    read = read.limit(limit);
                }
                let got: Vec<(u64, Uuid)> = h
                    .store()
                    .read_stream(t, i, read)
                    .unwrap()
                    .map(|e| e.map(|e| (e.metadata.version, e.metadata.event_id)))
                    .collect::<Result<_, _>>()
                    .unwrap();
                let mut want: Vec<(u64, Uuid)> = model
                    .log
                    .iter()
                    .filter(|e| e.agg == agg)
                    .map(|e| (e.version, e.event_id))
                    .collect();
                if backwards {
                    want.reverse();
                    let top = from.unwrap_or(u64::MAX);
                    want.retain(|(v, _)| *v <= top);
                } else {
                    let bottom = from.unwrap_or(1);
                    want.retain(|(v, _)| *v >= bottom);
                }
                want.truncate(limit.unwrap_or(usize::MAX));
                prop_assert_eq!(got, want);
            }
            Op::ReadLog { from, limit } => {
                let got: Vec<(u64, Uuid)> = h
                    .store()
                    .read_log(from, limit)
                    .map(|e| e.map(|e| (e.position, e.metadata.event_id)))
                    .collect::<Result<_, _>>()
                    .unwrap();
                let want: Vec<(u64, Uuid)> = model
                    .log
                    .iter()
                    .filter(|e| e.position >= from.max(1))
                    .take(limit.unwrap_or(usize::MAX))
                    .map(|e| (e.position, e.event_id))
                    .collect();
                prop_assert_eq!(&got, &want);
                let mut scanned = Vec::new();
                h.store()
                    .scan_log(from, limit, |e| {
                        scanned.push((e.position, e.event_id));
                        std::ops::ControlFlow::Continue(())
                    })
                    .unwrap();
                prop_assert_eq!(scanned, want);
            }
            Op::ReadType { thing, from, limit } => {
                let aggregate_type = if thing { "thing" } else { "cache" };
                let got: Vec<(u64, usize)> = h
                    .store()
                    .read_aggregate_type(aggregate_type, from, limit)
                    .unwrap()
                    .map(|e| e.map(|e| (e.position, agg_of(&e))))
                    .collect::<Result<_, _>>()
                    .unwrap();
                let want: Vec<(u64, usize)> = model
                    .log
                    .iter()
                    .filter(|e| AGGREGATES[e.agg].0 == aggregate_type && e.position >= from.max(1))
                    .take(limit.unwrap_or(usize::MAX))
                    .map(|e| (e.position, e.agg))
                    .collect();
                prop_assert_eq!(got, want);
            }
            Op::Snapshot { agg, back } => {
                let head = model.head(agg);
                if head > back {
                    let version = head - back;
                    let (t, i) = AGGREGATES[agg];
                    h.store()
                        .save_snapshot(t, i, version, 1, &version.to_le_bytes())
                        .unwrap();
                    let kept = model.snapshots.entry(agg).or_default();
                    kept.push(version);
                    kept.sort_unstable();
                    kept.dedup();
                    if kept.len() > 2 {
                        kept.remove(0);
                    }
                    let loaded = h.store().load_snapshot(t, i, 1).unwrap().unwrap();
                    prop_assert_eq!(loaded.version, *kept.last().unwrap());
                    prop_assert_eq!(loaded.state, kept.last().unwrap().to_le_bytes().to_vec());
                }
            }
            Op::Reopen => {
                h.store.take().unwrap().close().unwrap();
                h.store = Some(Store::open(h.config()).unwrap());
                prop_assert_eq!(h.store().last_position(), model.log.len() as u64);
            }
            Op::ExportImport => {
                let file_dir = tempfile::tempdir().unwrap();
                let file = file_dir.path().join("c.evlc");
                let manifest = h.store().export_checkpoint(&file).unwrap();
                prop_assert_eq!(manifest.last_position, model.log.len() as u64);
                let target = tempfile::tempdir().unwrap();
                let into = target.path().join("restored");
                import_checkpoint(&file, &into, None).unwrap();
                h.store.take().unwrap().close().unwrap();
                h.path = into;
                h._dirs.push(target);
                h.store = Some(Store::open(h.config()).unwrap());
                prop_assert_eq!(h.store().last_position(), model.log.len() as u64);
            }
            Op::Verify => {
                let report = h.store().verify().unwrap();
                prop_assert!(report.ok, "{:?}", report);
                prop_assert_eq!(report.events, model.log.len() as u64);
            }
        }
        for (agg, (t, i)) in AGGREGATES.iter().enumerate() {
            prop_assert_eq!(h.store().stream_version(t, i).unwrap(), model.head(agg));
        }
    }
    let report = h.store().verify().unwrap();
    prop_assert!(report.ok, "{:?}", report);
    let aggregates = h.store().aggregates(None).unwrap();
    prop_assert_eq!(aggregates.len(), model.heads.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn buffered_store_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops, Durability::Buffered)?;
    }

    #[test]
    fn durable_store_matches_the_model(ops in prop::collection::vec(op(), 1..25)) {
        run(ops, Durability::Durable)?;
    }
}
