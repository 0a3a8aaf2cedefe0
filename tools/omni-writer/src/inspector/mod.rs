//! The inspector: a page (`/`, its script and style built into the binary) and the JSON API it
//! reads (`/api/...`). Every request is answered by [`respond`], a plain function of the log,
//! the path and the query parameters, so the HTTP server only carries bytes (on a blocking
//! thread: the reads are synchronous). It only reads; bad input is a 400 with the reason, an
//! unknown id a 404, and every page is capped.

mod api;

use std::collections::BTreeMap;

use eventlog::EventLog;

/// The page, its script and its style: the assets built into the binary (no CDN, no network).
const INDEX_HTML: &str = include_str!("../../assets/inspector/index.html");
const APP_JS: &str = include_str!("../../assets/inspector/app.js");
const STYLE_CSS: &str = include_str!("../../assets/inspector/style.css");

/// An answer: status, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    fn asset(content_type: &'static str, text: &str) -> Self {
        Self {
            status: 200,
            content_type,
            body: text.as_bytes().to_vec(),
        }
    }

    /// A JSON body with `status`.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: value.to_string().into_bytes(),
        }
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, &serde_json::json!({ "error": message.into() }))
    }
}

/// Whether the inspector answers `path` (the HTTP layer routes only these to [`respond`]).
pub fn serves(path: &str) -> bool {
    matches!(path, "/" | "/index.html" | "/app.js" | "/style.css") || path.starts_with("/api/")
}

/// Answers a `GET` of `path` with the query parameters `params`.
pub fn respond(log: &EventLog, path: &str, params: &BTreeMap<String, String>) -> Reply {
    match path {
        "/" | "/index.html" => Reply::asset("text/html; charset=utf-8", INDEX_HTML),
        "/app.js" => Reply::asset("text/javascript; charset=utf-8", APP_JS),
        "/style.css" => Reply::asset("text/css; charset=utf-8", STYLE_CSS),
        _ => match path.strip_prefix("/api/") {
            Some(endpoint) => api::answer(log, endpoint, params),
            None => Reply::error(404, format!("no page at {path}")),
        },
    }
}

#[cfg(test)]
mod tests;
