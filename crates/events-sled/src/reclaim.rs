//! Helping sled reclaim the memory of the page versions it replaces.
//!
//! sled 0.34 frees a replaced page version (a copy of a whole leaf, holding references to its
//! values) through crossbeam-epoch's global collector, which frees at most 8 bags of 64 objects
//! each time a thread has pinned 128 times. A single write pins once and retires a page version or
//! two, so the collector keeps up with one-key writes; but `apply_batch` pins once for all its keys
//! and retires a page version per key, so the index persistences (tens of thousands of keys in
//! the daemon's workload) retired garbage far faster than anything freed it: in the daemon's
//! buffered workload the process reached 1.4 GiB after 4 M events with a 256 MiB cache (556 MiB
//! with this; BENCHMARKS.md, "Memory"). After each sled write the store runs the collector in
//! proportion to the keys written.
//!
//! The collector is crossbeam-epoch's default one, shared with sled because cargo unifies the
//! `0.9` requirement of both crates into one crate instance.

/// Keys written per collector run: a run frees up to 512 retired objects, a key write retires a
/// page version or two (a few more when a leaf splits); one run per 32 keys leaves a wide margin.
const KEYS_PER_RUN: usize = 32;

/// Runs the epoch collector after `keys` sled key writes (at least once): moves this thread's
/// retired objects to the global queue, advances the epoch when every pinned thread allows it,
/// and frees what expired.
pub(crate) fn reclaim_after_writes(keys: usize) {
    for _ in 0..=keys / KEYS_PER_RUN {
        crossbeam_epoch::pin().flush();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The runs only help if sled's collector is the one this crate runs: a second
    /// crossbeam-epoch version in the build would make them free nothing, silently.
    #[test]
    fn sled_and_the_store_share_one_crossbeam_epoch() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
                .unwrap();
        assert_eq!(lock.matches("name = \"crossbeam-epoch\"").count(), 1);
    }
}
