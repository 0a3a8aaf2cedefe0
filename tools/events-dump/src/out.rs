//! Standard output: buffered, JSON Lines or aligned tables, and a closed pipe recognised so
//! that `events-dump ... | head` ends quietly.

use std::fmt::Display;
use std::io::{BufWriter, ErrorKind, StdoutLock, Write};

use serde::Serialize;

/// Buffered standard output.
#[derive(Debug)]
pub struct Out {
    inner: BufWriter<StdoutLock<'static>>,
}

impl Out {
    /// Locks standard output for the whole command.
    pub fn new() -> Self {
        Self {
            inner: BufWriter::with_capacity(64 << 10, std::io::stdout().lock()),
        }
    }

    /// One line of text.
    ///
    /// # Errors
    ///
    /// When stdout cannot be written (a closed pipe included).
    pub fn line(&mut self, text: impl Display) -> anyhow::Result<()> {
        writeln!(self.inner, "{text}")?;
        Ok(())
    }

    /// One JSON object on one line.
    ///
    /// # Errors
    ///
    /// When the value does not serialize, or stdout cannot be written.
    pub fn json(&mut self, value: &impl Serialize) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.inner, value).map_err(|e| match e.io_error_kind() {
            Some(kind) => anyhow::Error::from(std::io::Error::from(kind)),
            None => anyhow::Error::from(e),
        })?;
        self.inner.write_all(b"\n")?;
        Ok(())
    }

    /// Writes out what is buffered, now (for output that follows a live log).
    ///
    /// # Errors
    ///
    /// When stdout cannot be written.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.inner.flush()?;
        Ok(())
    }

    /// Flushes what is buffered.
    ///
    /// # Errors
    ///
    /// When stdout cannot be written.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.inner.flush()?;
        Ok(())
    }
}

/// Whether `error` is a write to a closed pipe (the reader went away: not a failure).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == ErrorKind::BrokenPipe)
    })
}

/// A table whose columns are as wide as their widest cell.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers; a header starting with `>` is right-aligned (numbers).
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers
                .iter()
                .map(|h| h.strip_prefix('>').unwrap_or(h))
                .collect(),
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Writes the headers and the rows.
    ///
    /// # Errors
    ///
    /// When stdout cannot be written.
    pub fn write(&self, out: &mut Out) -> anyhow::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let headers: Vec<String> = self.headers.iter().map(|h| (*h).to_string()).collect();
        out.line(self.format(&headers, &widths))?;
        for row in &self.rows {
            out.line(self.format(row, &widths))?;
        }
        Ok(())
    }

    fn format(&self, cells: &[String], widths: &[usize]) -> String {
        let last = cells.len().saturating_sub(1);
        let mut line = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            let right = self.right.get(index).copied().unwrap_or(false);
            if right {
                line.push_str(&format!("{cell:>width$}"));
            } else if index == last {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}"));
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_numbers_go_right() {
        let mut table = Table::new(&["NAME", ">COUNT", "NOTE"]);
        table.row(vec!["a".into(), "1".into(), "x".into()]);
        table.row(vec!["longer".into(), "1000".into(), "y".into()]);
        let widths = [6, 5, 4];
        let header = table.format(&["NAME".into(), "COUNT".into(), "NOTE".into()], &widths);
        assert_eq!(header, "NAME    COUNT  NOTE");
        assert_eq!(table.format(&table.rows[0], &widths), "a           1  x");
    }

    #[test]
    fn broken_pipes_are_recognised_through_context() {
        let error = anyhow::Error::from(std::io::Error::from(ErrorKind::BrokenPipe))
            .context("writing the log");
        assert!(is_broken_pipe(&error));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
