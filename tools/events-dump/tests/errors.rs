//! Bad arguments, missing stores, damaged files and closed pipes: a clear message and the
//! documented exit status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{arg, dump, dump_bin, stderr, stdout, writer};

fn small_store(dir: &std::path::Path, pipelines: &str) -> std::path::PathBuf {
    let store = dir.join("store");
    let output = writer(&[
        "--store",
        arg(&store),
        "--pipelines",
        pipelines,
        "--seed",
        "3",
        "--durability",
        "buffered",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    store
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    for args in [
        vec!["frobnicate"],
        vec!["log", "--limit", "many"],
        vec!["stream", "pipeline"],
        vec!["checkpoint", "import", "x.evlc"],
        vec!["--checkpoint", "a", "--latest-checkpoint", "info"],
        vec![],
    ] {
        let output = dump(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!stderr(&output).is_empty(), "{args:?}");
    }
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["info", "--help"],
        vec!["streams", "--help"],
        vec!["stream", "--help"],
        vec!["log", "--help"],
        vec!["types", "--help"],
        vec!["snapshot", "--help"],
        vec!["verify", "--help"],
        vec!["state", "--help"],
        vec!["checkpoint", "--help"],
        vec!["checkpoint", "export", "--help"],
        vec!["checkpoint", "import", "--help"],
        vec!["checkpoint", "verify", "--help"],
        vec!["checkpoint", "list", "--help"],
        vec!["checkpoint", "prune", "--help"],
        vec!["tail", "--help"],
        vec!["restore", "--help"],
        vec!["merge", "--help"],
    ] {
        let output = dump(&args);
        assert!(output.status.success(), "{args:?}");
        assert!(stdout(&output).contains("Usage"), "{args:?}");
    }
}

#[test]
fn missing_stores_and_unknown_aggregates_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let output = dump(&["--store", arg(&missing), "info"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("does not exist"),
        "{}",
        stderr(&output)
    );
    assert!(!missing.exists(), "the dump must not create a store");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = dump(&["--store", arg(&empty), "log"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not an eventlog store"),
        "{}",
        stderr(&output)
    );

    let store = small_store(dir.path(), "1");
    let s = arg(&store);
    for (args, needle) in [
        (
            vec!["stream", "pipeline", "pipeline-999999"],
            "no aggregate",
        ),
        (vec!["state", "pipeline", "pipeline-999999"], "no events"),
        (vec!["state", "invoice", "x"], "no Omni Writer aggregate"),
        (
            vec!["state", "pipeline", "pipeline-000001", "--at", "99"],
            "not 99",
        ),
        (vec!["snapshot", "pipeline", "nope"], "no aggregate"),
    ] {
        let mut full = vec!["--store", s];
        full.extend(args.iter());
        let output = dump(&full);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(needle),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let output = dump(&["--store", s, "checkpoint", "list"]);
    assert!(stdout(&output).contains("no checkpoints"));
    let output = dump(&[
        "--store",
        s,
        "checkpoint",
        "prune",
        "--older-than",
        "30",
        "--json",
    ]);
    assert!(output.status.success());
}

#[test]
fn damaged_checkpoints_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path(), "2");
    let good = dir.path().join("good.evlc");
    let export = dump(&["--store", arg(&store), "checkpoint", "export", arg(&good)]);
    assert!(export.status.success(), "{}", stderr(&export));
    let mut bytes = std::fs::read(&good).unwrap();

    let truncated = dir.path().join("truncated.evlc");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let flipped = dir.path().join("flipped.evlc");
    let middle = bytes.len() / 3;
    bytes[middle] ^= 0x40;
    std::fs::write(&flipped, &bytes).unwrap();
    let garbage = dir.path().join("garbage.evlc");
    std::fs::write(&garbage, b"this is not a checkpoint").unwrap();

    for file in [&truncated, &flipped, &garbage] {
        let verify = dump(&["checkpoint", "verify", arg(file)]);
        assert_eq!(verify.status.code(), Some(1), "{}", stdout(&verify));
        assert!(stdout(&verify).contains("DAMAGED"), "{}", stdout(&verify));
        let read = dump(&["--checkpoint", arg(file), "log"]);
        assert_eq!(read.status.code(), Some(2));
        assert!(stderr(&read).contains("invalid"), "{}", stderr(&read));
        let import = dump(&[
            "checkpoint",
            "import",
            arg(file),
            "--into",
            arg(&dir.path().join("x")),
        ]);
        assert_eq!(import.status.code(), Some(2));
    }
    let missing = dump(&[
        "checkpoint",
        "verify",
        arg(&dir.path().join("missing.evlc")),
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("no checkpoint file"));
    let intact = dump(&["checkpoint", "verify", arg(&good)]);
    assert_eq!(intact.status.code(), Some(0));
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // Enough events that the output outgrows the pipe and the dump's buffer.
    let store = small_store(dir.path(), "60");
    let status_file = dir.path().join("status");
    let err_file = dir.path().join("stderr");
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"{ "$0" --store "$1" log --json 2>"$2"; echo $? >"$3"; } | head -1"#)
        .arg(dump_bin())
        .arg(&store)
        .arg(&err_file)
        .arg(&status_file)
        .output()
        .unwrap();
    assert!(output.status.success());
    let first: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(first["position"], 1);
    let status = std::fs::read_to_string(&status_file).unwrap();
    assert_eq!(status.trim(), "0", "the dump's exit status");
    let errors = std::fs::read_to_string(&err_file).unwrap();
    assert!(errors.is_empty(), "stderr: {errors}");
}
