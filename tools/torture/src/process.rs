//! The writer process of one round: started, watched through the files it writes, killed.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A file's text (empty when it does not exist yet).
pub fn read_text(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Fails when the child exited on its own: a writer must run until it is killed.
///
/// # Errors
///
/// The child's exit, with its log.
pub fn ensure_running(child: &mut Child, log: &Path) -> anyhow::Result<()> {
    if let Some(status) = child.try_wait()? {
        bail!(
            "the writer exited by itself ({status}) before the kill; its log:\n{}",
            tail(&read_text(log), 4000)
        );
    }
    Ok(())
}

/// Waits until `path` holds more than `after` occurrences of `needle`; false on a timeout.
///
/// # Errors
///
/// When the child exits meanwhile.
pub fn wait_for(
    child: &mut Child,
    log: &Path,
    path: &Path,
    needle: &str,
    after: usize,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if read_text(path).matches(needle).count() > after {
            return Ok(true);
        }
        ensure_running(child, log)?;
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sends `signal` (a name, e.g. `USR1`) to the child.
///
/// # Errors
///
/// When `kill` cannot be run or fails.
pub fn signal(child: &Child, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -{signal} {} failed", child.id());
    }
    Ok(())
}

/// SIGKILLs the child (after checking it still runs) and reaps it.
///
/// # Errors
///
/// When it exited on its own, or cannot be killed.
pub fn kill9(child: &mut Child, log: &Path) -> anyhow::Result<()> {
    ensure_running(child, log)?;
    child.kill().context("SIGKILL")?;
    child.wait().context("reaping the killed writer")?;
    Ok(())
}

/// The last `max` bytes of `text`, on a character boundary.
pub fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Fails when a writer's log shows a panic.
///
/// # Errors
///
/// The panic, with the log's tail.
pub fn ensure_no_panic(log: &Path) -> anyhow::Result<()> {
    let text = read_text(log);
    if text.contains("panicked") {
        bail!("the writer panicked; its log:\n{}", tail(&text, 4000));
    }
    Ok(())
}
