//! An export cut short by a crash leaves its temporary file (`.<name>.<pid>.partial`) in the
//! checkpoint directory; the next open removes it — but not the file of a process that still
//! runs, nor anything that is not an export's temporary file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::ExpectedVersion;

#[test]
fn opening_removes_the_temporary_files_of_exports_a_crash_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .append(ExpectedVersion::Any, vec![hit("s1", 1)])
        .unwrap();
    let (checkpoint, _) = store.checkpoint().unwrap();
    store.close().unwrap();

    let checkpoints = checkpoint.parent().unwrap().to_path_buf();
    // No process has this id: Linux pids stay below 2^22.
    let abandoned = checkpoints.join(".checkpoint-00000000000000000002.evlc.4294967295.partial");
    let running = checkpoints.join(format!(
        ".checkpoint-00000000000000000003.evlc.{}.partial",
        std::process::id()
    ));
    let unrelated = checkpoints.join("notes.partial.txt");
    for path in [&abandoned, &running, &unrelated] {
        std::fs::write(path, b"half a checkpoint").unwrap();
    }

    let store = open(&dir);
    assert!(
        !abandoned.exists(),
        "the abandoned export's file is still there"
    );
    assert!(
        running.exists(),
        "a running process's export file was removed"
    );
    assert!(unrelated.exists(), "a file that is no export's was removed");
    assert!(checkpoint.exists(), "the finished checkpoint was removed");
    assert_eq!(store.list_checkpoints().unwrap().len(), 1);
    store.close().unwrap();
}
