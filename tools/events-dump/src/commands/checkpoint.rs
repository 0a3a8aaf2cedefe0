//! `checkpoint export | import | verify | list | prune`, and `migrate` (through a checkpoint).

use std::path::Path;

use anyhow::{Context as _, bail};
use eventlog::{
    CheckpointError, CheckpointManifest, EventLog, import_checkpoint, list_checkpoints,
    migrate_store, prune_checkpoints, repair_store, verify_checkpoint_with,
};
use serde_json::json;

use crate::commands::Status;
use crate::out::{Out, Table};
use crate::progress;
use crate::source::checkpoint_dir;

fn print_manifest(
    verb: &str,
    file: &Path,
    manifest: &CheckpointManifest,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<()> {
    if json {
        out.json(&json!({"file": file, "manifest": manifest}))
    } else {
        out.line(format!(
            "{verb} {}: {} events (positions 1..={}), {} records, {} snapshots, {} consumers, \
             chain head {}, created {}",
            file.display(),
            manifest.event_count,
            manifest.last_position,
            manifest.records,
            manifest.snapshots,
            manifest.consumers,
            manifest.chain_head,
            manifest.created_at.to_rfc3339()
        ))
    }
}

/// `checkpoint export FILE`.
///
/// # Errors
///
/// When FILE exists or cannot be written.
pub fn export(log: &EventLog, file: &Path, json: bool, out: &mut Out) -> anyhow::Result<Status> {
    if file.exists() {
        bail!("{} exists already: choose a new file name", file.display());
    }
    let bar = progress::bar(log.last_position()?.get(), "exporting");
    let manifest = {
        let mut report = progress::callback(&bar);
        log.admin().export_checkpoint_with(file, &mut report)
    };
    bar.finish_and_clear();
    let manifest = manifest.with_context(|| format!("exporting to {}", file.display()))?;
    print_manifest("exported", file, &manifest, json, out)?;
    Ok(Status::Ok)
}

/// `checkpoint import FILE --into DIR`.
///
/// # Errors
///
/// When FILE is missing or damaged, or DIR is not empty.
pub fn import(file: &Path, into: &Path, json: bool, out: &mut Out) -> anyhow::Result<Status> {
    if !file.is_file() {
        bail!("no checkpoint file at {}", file.display());
    }
    let bar = progress::bar(0, "importing");
    let manifest = {
        let mut report = progress::callback(&bar);
        import_checkpoint(file, into, Some(&mut report))
    };
    bar.finish_and_clear();
    let manifest = manifest
        .with_context(|| format!("importing {} into {}", file.display(), into.display()))?;
    print_manifest(
        &format!("imported into {} from", into.display()),
        file,
        &manifest,
        json,
        out,
    )?;
    Ok(Status::Ok)
}

/// `migrate --from OLD --to NEW_DIR`: a format-1 store copied into a new store.
///
/// # Errors
///
/// When OLD is missing, not a format-1 store, in use or damaged, or NEW_DIR is not empty.
pub fn migrate(from: &Path, to: &Path, json: bool, out: &mut Out) -> anyhow::Result<Status> {
    if !from.is_dir() {
        bail!(
            "no store at {}: the directory does not exist",
            from.display()
        );
    }
    let bar = progress::bar(0, "migrating");
    let manifest = {
        let mut report = progress::callback(&bar);
        migrate_store(from, to, Some(&mut report))
    };
    bar.finish_and_clear();
    let manifest =
        manifest.with_context(|| format!("migrating {} into {}", from.display(), to.display()))?;
    if json {
        out.json(&json!({"from": from, "to": to, "manifest": manifest}))?;
    } else {
        out.line(format!(
            "migrated {} into {}: {} events (positions 1..={}), chain head {}, {} snapshots, \
             {} consumers",
            from.display(),
            to.display(),
            manifest.event_count,
            manifest.last_position,
            manifest.chain_head,
            manifest.snapshots,
            manifest.consumers,
        ))?;
    }
    Ok(Status::Ok)
}

/// `repair`: rebuilds the store's sled part from its log.
///
/// # Errors
///
/// When there is no store, it is in use, or the rebuild fails.
pub fn repair(store: &Path, json: bool, out: &mut Out) -> anyhow::Result<Status> {
    if !store.join("log").is_dir() {
        bail!(
            "no format-2 store at {}: it has no log/ directory to rebuild from",
            store.display()
        );
    }
    let report = repair_store(store).with_context(|| format!("repairing {}", store.display()))?;
    if json {
        out.json(&json!({"store": store, "report": report}))?;
    } else {
        out.line(format!(
            "rebuilt {} from its log: {} events; {} snapshots and {} consumers carried over{}",
            store.display(),
            report.last_position,
            report.snapshots,
            report.consumers,
            report
                .set_aside
                .as_ref()
                .map_or(String::new(), |aside| format!(
                    "; the old sled directory is kept at {}",
                    aside.display()
                )),
        ))?;
    }
    Ok(Status::Ok)
}

/// `checkpoint verify FILE`: exit status 0 only when the file is intact.
///
/// # Errors
///
/// When FILE cannot be read at all (damage is a finding: exit status 1).
pub fn verify(file: &Path, json: bool, out: &mut Out) -> anyhow::Result<Status> {
    if !file.is_file() {
        bail!("no checkpoint file at {}", file.display());
    }
    let size = std::fs::metadata(file).map_or(0, |m| m.len());
    let bar = progress::byte_bar(size, "verifying");
    let verified = {
        let mut report = progress::callback(&bar);
        verify_checkpoint_with(file, Some(&mut report))
    };
    bar.finish_and_clear();
    match verified {
        Ok(manifest) => {
            print_manifest("intact:", file, &manifest, json, out)?;
            Ok(Status::Ok)
        }
        Err(CheckpointError::Invalid { detail, .. }) => {
            if json {
                out.json(&json!({"file": file, "ok": false, "problem": detail}))?;
            } else {
                out.line(format!("DAMAGED: {}: {detail}", file.display()))?;
            }
            Ok(Status::Inconsistent)
        }
        Err(error) => Err(error).with_context(|| format!("verifying {}", file.display())),
    }
}

/// `checkpoint list`.
///
/// # Errors
///
/// When the checkpoint directory cannot be read.
pub fn list(store: &Path, json: bool, out: &mut Out) -> anyhow::Result<Status> {
    let dir = checkpoint_dir(store);
    let listed = list_checkpoints(&dir)
        .with_context(|| format!("listing the checkpoints in {}", dir.display()))?;
    if json {
        for info in &listed {
            out.json(info)?;
        }
        return Ok(Status::Ok);
    }
    if listed.is_empty() {
        out.line(format!("no checkpoints in {}", dir.display()))?;
        return Ok(Status::Ok);
    }
    let mut table = Table::new(&["CREATED", ">LAST POSITION", ">BYTES", "FILE"]);
    for info in listed {
        let (created, position) = match (&info.manifest, &info.problem) {
            (Some(m), _) => (m.created_at.to_rfc3339(), m.last_position.to_string()),
            (None, Some(problem)) => (format!("unreadable: {problem}"), "?".into()),
            (None, None) => ("unreadable".into(), "?".into()),
        };
        table.row(vec![
            created,
            position,
            info.size_bytes.to_string(),
            info.path.display().to_string(),
        ]);
    }
    table.write(out)?;
    Ok(Status::Ok)
}

/// `checkpoint prune --older-than DAYS`.
///
/// # Errors
///
/// When the directory cannot be read or a file cannot be deleted.
pub fn prune(store: &Path, days: u32, json: bool, out: &mut Out) -> anyhow::Result<Status> {
    let dir = checkpoint_dir(store);
    let removed = prune_checkpoints(&dir, days)
        .with_context(|| format!("pruning the checkpoints in {}", dir.display()))?;
    if json {
        out.json(&json!({"dir": dir, "older_than_days": days, "removed": removed}))?;
    } else {
        out.line(format!(
            "removed {} checkpoints older than {days} days from {}",
            removed.len(),
            dir.display()
        ))?;
        for path in removed {
            out.line(format!("  {}", path.display()))?;
        }
    }
    Ok(Status::Ok)
}
