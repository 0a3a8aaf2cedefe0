//! `--http ADDR`: the operators' surface — `GET /metrics`, `/health`, `/ready`, and the
//! inspector (`/`, `/api/...`, see [`crate::inspector`]) — served by axum on
//! a small tokio runtime of the daemon's own (one worker thread and at most two blocking threads,
//! all named `omni-http`). The daemon starts it once the store is open and stops it (gracefully,
//! joining its threads) before the store closes. Tokio stays in this module: the library crates
//! are synchronous, so every read of the store runs in `spawn_blocking`. Handlers only read.

pub mod metrics;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use eventlog::EventLog;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::checkpoints::Taken;
use crate::control::Control;
use crate::inspector;
use metrics::AppendMetrics;

/// How long a stop waits for requests in flight before the runtime is dropped.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// What the handlers read.
#[derive(Debug)]
struct Surface {
    log: EventLog,
    control: Arc<Control>,
    registry: Registry,
    inspector_requests: Counter,
    /// Why `--replicate` was refused at the start (the stream's checks), if it was.
    replication_refused: Option<String>,
}

/// The running server: its runtime, the serving task and the way to stop it.
#[derive(Debug)]
pub struct HttpServer {
    runtime: Runtime,
    task: JoinHandle<std::io::Result<()>>,
    stop: oneshot::Sender<()>,
    addr: SocketAddr,
}

impl HttpServer {
    /// Binds `addr` and starts serving. `replication_refused`: why `--replicate` was refused at
    /// the start, for `/ready`.
    ///
    /// # Errors
    ///
    /// When the runtime cannot start or the address cannot be bound (in use, not local).
    pub fn start(
        addr: SocketAddr,
        log: &EventLog,
        control: &Arc<Control>,
        append: &AppendMetrics,
        taken: &Arc<Taken>,
        replication_refused: Option<String>,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .thread_name("omni-http")
            .enable_io()
            .enable_time()
            .build()
            .context("starting the HTTP runtime")?;
        // Bound here, synchronously: an address in use is the daemon's error at once.
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("--http {addr}: binding the address"))?;
        let addr = listener.local_addr().unwrap_or(addr);
        listener
            .set_nonblocking(true)
            .context("--http: a non-blocking listener")?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
                .context("--http: registering the listener")?
        };
        let inspector_requests = Counter::default();
        let surface = Arc::new(Surface {
            log: log.clone(),
            control: Arc::clone(control),
            registry: metrics::registry(
                append,
                &inspector_requests,
                log.clone(),
                Arc::clone(taken),
            ),
            inspector_requests,
            replication_refused,
        });
        let router = Router::new()
            .route("/metrics", get(serve_metrics))
            .route("/health", get(health))
            .route("/ready", get(ready))
            .fallback(inspect)
            .with_state(surface);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            // A dropped sender stops the server too.
            let _ = stopped.await;
        });
        let task = runtime.spawn(server.into_future());
        tracing::info!(name: "omni_writer_http_started", address = %addr, "serving /metrics, /health and /ready");
        Ok(Self {
            runtime,
            task,
            stop,
            addr,
        })
    }

    /// The address served (the bound one).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets the requests in flight finish (at most [`STOP_WAIT`]), and shuts
    /// the runtime down, joining its threads.
    pub fn stop(self) {
        let Self {
            runtime,
            task,
            stop,
            addr,
        } = self;
        let _ = stop.send(());
        let served = runtime.block_on(async { tokio::time::timeout(STOP_WAIT, task).await });
        match served {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => {
                tracing::error!(name: "omni_writer_http_failed", address = %addr, error = %error, "the HTTP server failed");
            }
            Ok(Err(error)) => {
                tracing::error!(name: "omni_writer_http_failed", address = %addr, error = %error, "the HTTP server task ended abnormally");
            }
            Err(_) => {
                tracing::warn!(name: "omni_writer_http_stop_timeout", address = %addr, "requests still in flight after 5 s: dropped");
            }
        }
        runtime.shutdown_timeout(STOP_WAIT);
        tracing::info!(name: "omni_writer_http_stopped", address = %addr, "HTTP server stopped");
    }
}

/// A JSON answer.
fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

/// 500, when a blocking read could not run or finish.
fn internal_error(what: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(name: "omni_writer_http_error", what, error = %error, "HTTP handler failed");
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"status": "error", "reason": format!("{what}: {error}")}),
    )
}

async fn serve_metrics(State(surface): State<Arc<Surface>>) -> Response {
    match tokio::task::spawn_blocking(move || metrics::render(&surface.registry)).await {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Ok(Err(error)) => internal_error("encoding the metrics", &error),
        Err(error) => internal_error("reading the metrics", &error),
    }
}

async fn health() -> Response {
    json_response(StatusCode::OK, json!({"status": "alive"}))
}

async fn ready(State(surface): State<Arc<Surface>>) -> Response {
    match tokio::task::spawn_blocking(move || readiness(&surface)).await {
        Ok(Ok(body)) => json_response(StatusCode::OK, body),
        Ok(Err(reason)) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "reason": reason}),
        ),
        Err(error) => internal_error("checking readiness", &error),
    }
}

/// Ready: the store is open, has not failed, replication (with `--replicate`) has not failed,
/// and the daemon is not stopping. The body, or why not. A failed replication makes the
/// daemon not ready although it goes on appending: what it writes no longer reaches its
/// stream, and a supervisor should see that.
fn readiness(surface: &Surface) -> Result<serde_json::Value, String> {
    let (log, control) = (&surface.log, &surface.control);
    if log.is_closed() {
        return Err("the store is closed".into());
    }
    let metrics = log
        .admin()
        .metrics()
        .map_err(|e| format!("the store's metrics are unreadable: {e}"))?;
    let store = metrics.store;
    if let Some(failure) = store.failure {
        return Err(format!("the store failed: {failure}"));
    }
    if let Some(reason) = control.reason() {
        return Err(format!("stopping: {reason}"));
    }
    if let Some(refused) = &surface.replication_refused {
        return Err(format!("replication refused: {refused}"));
    }
    if let Some(failed) = metrics.replication.iter().find(|r| r.state == "failed") {
        return Err(format!(
            "replication into stream {} failed at position {}: {}",
            failed.stream,
            failed.replicated_position,
            failed.last_error.as_deref().unwrap_or("unknown error")
        ));
    }
    let mut body = json!({
        "status": "ready",
        "last_position": store.last_position,
        "durable_position": store.durable_position,
        "durability": store.durability,
    });
    if let Some(replication) = metrics.replication.last() {
        body["replication"] = json!({
            "stream": replication.stream,
            "state": replication.state,
            "replicated_position": replication.replicated_position,
            "lag_events": replication.replication_lag_events,
        });
    }
    Ok(body)
}

/// The inspector's page and API ([`crate::inspector`]), read on a blocking thread; any other
/// path is a JSON 404, and the inspector answers `GET` only.
async fn inspect(
    State(surface): State<Arc<Surface>>,
    method: Method,
    uri: Uri,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Response {
    let path = uri.path().to_string();
    if !inspector::serves(&path) {
        return not_found(uri).await;
    }
    if method != Method::GET && method != Method::HEAD {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": format!("{method} {path}: the inspector only reads (GET)")}),
        );
    }
    let params = match query {
        Ok(Query(params)) => params,
        Err(rejection) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("malformed query: {rejection}")}),
            );
        }
    };
    surface.inspector_requests.inc();
    let answered =
        tokio::task::spawn_blocking(move || inspector::respond(&surface.log, &path, &params)).await;
    match answered {
        Ok(reply) => (
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [
                (header::CONTENT_TYPE, reply.content_type),
                // A new binary may serve a new page under the same name.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            reply.body,
        )
            .into_response(),
        Err(error) => internal_error("answering an inspector request", &error),
    }
}

async fn not_found(uri: Uri) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"status": "not_found", "path": uri.path()}),
    )
}
