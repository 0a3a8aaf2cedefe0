//! A daemon started with `--http` on a free loopback port, and what the HTTP tests read from it.
//!
//! A daemon cannot be told to take port 0 and report it, so each test picks a free ephemeral
//! port (bind 127.0.0.1:0, read the port, drop the listener) and starts the daemon on it,
//! retrying with another port if the daemon reports the address in use.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};
use serde_json::Value as Json;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_omni-writer")
}

/// A running daemon with `--http` on `port`.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    stderr: Option<JoinHandle<String>>,
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// An answer: status, content type, body.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Daemon {
    /// Starts the daemon on `store` with `args` and `--http 127.0.0.1:<free port>`, once `/health`
    /// answers.
    pub fn start(store: &Path, args: &[&str]) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(bin())
                .arg("--store")
                .arg(store)
                .args(["--http", &format!("127.0.0.1:{port}")])
                .args(args)
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting omni-writer");
            let mut pipe = child.stderr.take().unwrap();
            let stderr = std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            });
            let mut daemon = Self {
                child,
                port,
                stderr: Some(stderr),
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Some(status) = daemon.child.try_wait().unwrap() {
                    let stderr = daemon.stderr_text();
                    if stderr.contains("in use") {
                        break; // another process took the port: try another one
                    }
                    panic!("the daemon exited ({status}) before serving: {stderr}");
                }
                if daemon.try_get("/health").is_some_and(|a| a.status == 200) {
                    return daemon;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if daemon.child.try_wait().unwrap().is_none() {
                let _ = daemon.child.kill();
                panic!("the daemon did not serve /health within 60 s");
            }
        }
        panic!("no free port after 5 tries");
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn try_get(&self, path: &str) -> Option<Answer> {
        let url = format!("{}{path}", self.base());
        let mut response = agent().get(&url).call().ok()?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Some(Answer {
            status: response.status().as_u16(),
            content_type,
            body: response.body_mut().read_to_string().ok()?,
        })
    }

    pub fn get(&self, path: &str) -> Answer {
        self.try_get(path)
            .unwrap_or_else(|| panic!("GET {path} failed"))
    }

    pub fn scrape(&self) -> Scrape {
        let answer = self.get("/metrics");
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(
            answer
                .content_type
                .starts_with("application/openmetrics-text"),
            "{}",
            answer.content_type
        );
        Scrape::parse(answer.body.lines().map(|l| Ok(l.to_string()))).unwrap()
    }

    /// Waits for the process to end (at most `timeout`).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("the daemon did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        self.wait(Duration::from_secs(60))
    }

    /// Everything the daemon wrote on stderr (once it has exited).
    pub fn stderr_text(&mut self) -> String {
        self.stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A sample's value: counters come out untyped (`_total`, `_count` carry suffixes the parser
/// does not map to their family's type), gauges as gauges.
pub fn value(scrape: &Scrape, metric: &str, label: Option<(&str, &str)>) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .find_map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            _ => None,
        })
}
