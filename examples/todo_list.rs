//! A to-do list from scratch: its own events, an aggregate folding them, optimistic
//! concurrency, a load and a live subscription. Run with `cargo run --example todo_list`.

use eventlog::{
    Aggregate, AppendError, ApplyError, DomainEvent, EventContext, EventLog, EventLogConfig,
    EventMetadata, EventRegistry, ExpectedVersion, RecordedEvent, StreamId, SubscriptionFilter,
    event_set,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TaskAdded(String);
impl DomainEvent for TaskAdded {
    const EVENT_TYPE: &'static str = "task_added";
    const AGGREGATE_TYPE: &'static str = "todo_list";
}
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TaskDone(String);
impl DomainEvent for TaskDone {
    const EVENT_TYPE: &'static str = "task_done";
    const AGGREGATE_TYPE: &'static str = "todo_list";
}

event_set! {
    /// Everything that happens to a to-do list: decoded once by the log, matched here.
    #[derive(Debug, Clone)]
    enum TodoEvent { Added(TaskAdded), Done(TaskDone) }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TodoList {
    open: Vec<String>,
    done: usize,
}

impl Aggregate for TodoList {
    const AGGREGATE_TYPE: &'static str = "todo_list";
    type Event = TodoEvent;
    fn apply(&mut self, event: TodoEvent, _: &EventMetadata) -> Result<(), ApplyError> {
        match event {
            TodoEvent::Added(TaskAdded(title)) => self.open.push(title),
            TodoEvent::Done(TaskDone(title)) => {
                self.open.retain(|t| *t != title);
                self.done += 1;
            }
        }
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = EventRegistry::new();
    registry.register::<TaskAdded>()?;
    registry.register::<TaskDone>()?;
    let dir = tempfile::tempdir()?;
    let log = EventLog::open(EventLogConfig::new(dir.path()).registry(registry))?;
    log.subscribe("printer", SubscriptionFilter::all(), |e: &RecordedEvent| {
        let (position, meta) = (e.position, &e.metadata);
        println!("#{position} {} v{}", meta.event_type, meta.version);
        Ok::<(), String>(())
    })?;

    let list = StreamId::new("todo_list", "groceries");
    let add = |title: &str| TodoEvent::Added(TaskAdded(title.into()));
    let ctx = || EventContext::new("todo-example");
    let first = [add("milk"), add("bread")];
    log.append_events(&list, ExpectedVersion::NoStream, first, ctx())?;
    let done = TodoEvent::Done(TaskDone("milk".into()));
    log.append_events(&list, ExpectedVersion::exact(2), [done], ctx())?;
    // A writer that read the list at version 2 loses the race; nothing of its append is stored.
    match log.append_events(&list, ExpectedVersion::exact(2), [add("eggs")], ctx()) {
        Err(AppendError::WrongExpectedVersion { actual, .. }) => println!("conflict at v{actual}"),
        other => return Err(format!("expected a conflict, got {other:?}").into()),
    }
    let loaded = log.load::<TodoList>("groceries")?;
    println!("v{}: {:?}", loaded.version, loaded.state);
    log.close()?; // delivers every committed event to the printer first
    Ok(())
}
