//! `events-dump repair`: the store's sled part is rebuilt from its log (the old directory kept),
//! after which the store reads as before; a directory without a log is refused with exit 2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{arg, dump, stderr, stdout, writer};

#[test]
fn repair_rebuilds_a_store_that_then_reads_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let output = writer(&["--store", arg(&store), "--pipelines", "3", "--seed", "5"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let before = dump(&["--store", arg(&store), "--json", "log"]);
    assert_eq!(before.status.code(), Some(0), "{}", stderr(&before));

    let repaired = dump(&["--store", arg(&store), "repair"]);
    assert_eq!(repaired.status.code(), Some(0), "{}", stderr(&repaired));
    assert!(
        stdout(&repaired).contains("rebuilt"),
        "{}",
        stdout(&repaired)
    );
    let kept = std::fs::read_dir(&store)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("data.damaged-")
        })
        .count();
    assert_eq!(kept, 1, "the old sled directory is kept");

    let after = dump(&["--store", arg(&store), "--json", "log"]);
    assert_eq!(after.status.code(), Some(0), "{}", stderr(&after));
    assert_eq!(stdout(&after), stdout(&before));
    let verify = dump(&["--store", arg(&store), "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
}

#[test]
fn repair_without_a_log_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = dump(&["--store", arg(dir.path()), "repair"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no log/"), "{}", stderr(&output));
}
