//! The stream a store owns: created when absent (file storage, replicas, delete and purge
//! denied, a duplicate window), its owner recorded in its description, and checked on every
//! session.

use async_nats::jetstream::Context;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::{Config, StorageType, Stream};
use uuid::Uuid;

use crate::config::ReplicationConfig;
use crate::error::ReplicationError;
use crate::message;
use crate::replicator::nats_error;

/// What the description of a store's stream starts with; the store's id follows.
pub const OWNER_PREFIX: &str = "eventlog store ";

/// The store id a stream's description names, if it names one.
pub fn stream_owner(description: Option<&str>) -> Option<&str> {
    description
        .and_then(|d| d.strip_prefix(OWNER_PREFIX))
        .map(str::trim)
        .filter(|id| !id.is_empty())
}

/// The stream `config` names, created when absent with `subjects` (one filter) and
/// `description`, file storage, `config`'s replicas and duplicate window, delete and purge
/// denied; and whether it was created. `kind` names it in errors ("stream", "merged stream").
pub(crate) async fn get_or_create(
    js: &Context,
    config: &ReplicationConfig,
    kind: &str,
    subjects: &str,
    description: String,
) -> Result<(Stream, bool), ReplicationError> {
    let name = &config.stream;
    match js.get_stream(name).await {
        Ok(stream) => Ok((stream, false)),
        Err(error) => match error.kind() {
            GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                let wanted = Config {
                    name: name.clone(),
                    subjects: vec![subjects.to_owned()],
                    description: Some(description),
                    storage: StorageType::File,
                    num_replicas: config.replicas,
                    deny_delete: true,
                    deny_purge: true,
                    duplicate_window: config.duplicate_window,
                    allow_direct: true,
                    ..Config::default()
                };
                let stream = js
                    .create_stream(wanted)
                    .await
                    .map_err(|e| nats_error(format!("create {kind} {name}"), e))?;
                Ok((stream, true))
            }
            _ => Err(nats_error(format!("look up stream {name}"), error)),
        },
    }
}

/// The stream `config` names: created when absent, refused when it is not this store's.
pub(crate) async fn ensure_stream(
    js: &Context,
    config: &ReplicationConfig,
    prefix: &str,
    store_id: &str,
) -> Result<Stream, ReplicationError> {
    let subjects = format!("{prefix}.>");
    let description = format!("{OWNER_PREFIX}{store_id}");
    let (stream, created) = get_or_create(js, config, "stream", &subjects, description).await?;
    if created {
        tracing::info!(name: "events_nats_stream_created", stream = %config.stream, subjects = %subjects, replicas = config.replicas, store_id, "created the store's stream");
    }
    let info = stream.cached_info();
    let owner = stream_owner(info.config.description.as_deref());
    match owner {
        Some(owner) if owner == store_id => {}
        Some(owner) => {
            return Err(ReplicationError::OwnedByAnotherStore {
                stream: config.stream.clone(),
                owner: owner.to_owned(),
                store: store_id.to_owned(),
            });
        }
        None => {
            return Err(ReplicationError::NotAnEventLogStream {
                stream: config.stream.clone(),
                subjects,
                found: format!(
                    "description {:?}",
                    info.config.description.as_deref().unwrap_or("")
                ),
            });
        }
    }
    if info.config.subjects != [subjects.clone()] {
        return Err(ReplicationError::NotAnEventLogStream {
            stream: config.stream.clone(),
            subjects,
            found: format!("subjects {:?}", info.config.subjects),
        });
    }
    Ok(stream)
}

/// The event id of the stream's message at `sequence` (`None` when it carries none).
pub(crate) async fn event_id_at(
    stream: &Stream,
    sequence: u64,
) -> Result<Option<Uuid>, ReplicationError> {
    let message = stream
        .get_raw_message(sequence)
        .await
        .map_err(|e| nats_error(format!("read stream message {sequence}"), e))?;
    Ok(message::event_id(&message.headers))
}
