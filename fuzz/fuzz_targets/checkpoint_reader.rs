//! The checkpoint reader: the input is written as a checkpoint file, then read with
//! `read_manifest` and verified with `verify_checkpoint`. Each must answer with a manifest or a
//! typed error, never a panic; a file that verifies must give the same manifest both ways, and
//! must import into a store that holds exactly what its manifest says.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use events_sled::{Store, StoreConfig, import_checkpoint, read_manifest, verify_checkpoint};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("fuzz-checkpoint-")
            .tempdir()
            .map(tempfile::TempDir::keep)
            .unwrap_or_else(|_| std::env::temp_dir());
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch().join("input.evlc");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let manifest = read_manifest(&path);
    if let Ok(verified) = verify_checkpoint(&path) {
        // A verified file's manifest reads the same without verifying.
        assert_eq!(manifest.ok().as_ref(), Some(&verified));
        let into = scratch().join("imported");
        let _ = std::fs::remove_dir_all(&into);
        let imported = import_checkpoint(&path, &into, None).map(|_| ());
        assert!(
            imported.is_ok(),
            "a verified checkpoint failed to import: {imported:?}"
        );
        let store = Store::open(StoreConfig::new(&into).cache_capacity(1 << 20));
        let store = store.unwrap_or_else(|e| panic!("an imported checkpoint failed to open: {e}"));
        assert_eq!(store.last_position(), verified.last_position);
        let report = store.verify();
        assert!(
            matches!(&report, Ok(r) if r.ok),
            "an imported checkpoint does not verify: {report:?}"
        );
        let _ = store.close();
        let _ = std::fs::remove_dir_all(&into);
    }
});
