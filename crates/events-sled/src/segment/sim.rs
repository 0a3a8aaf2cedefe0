//! A simulated directory for power-loss tests, in memory. Every file remembers what was synced;
//! a [`SimDir::crash`] gives the directory as a power loss could leave it: each file keeps what was
//! synced plus an arbitrary subset of the 512-byte sectors written since (a torn write keeps some
//! sectors of a frame and not others), its length anywhere between the synced and the written
//! one; names created, removed or renamed since the last directory sync may or may not survive.
//! An I/O budget makes every operation fail once spent, so a crash can fall inside any step:
//! an append, a seal, a recovery.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::vfs::{Dir, VfsFile};

/// The sector a write is atomic within.
pub(crate) const SECTOR: usize = 512;

/// A small deterministic generator (xorshift64*), so a failing seed replays.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Default, Clone)]
struct Content {
    /// What a power loss keeps for sure.
    synced: Vec<u8>,
    /// What readers see now.
    current: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    /// File contents by id.
    files: Vec<Content>,
    /// Names as the directory shows them now.
    names: HashMap<String, usize>,
    /// Names as the last directory sync left them.
    synced_names: HashMap<String, usize>,
    /// Operations left before every operation fails (`None`: no limit).
    budget: Option<u64>,
}

/// The simulated directory. Clones share it.
#[derive(Debug, Clone)]
pub(crate) struct SimDir {
    state: Arc<Mutex<State>>,
    path: PathBuf,
}

#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<State>>,
    id: usize,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn dead() -> io::Error {
    io::Error::other("simulated power loss: the process is gone")
}

impl State {
    /// Spends one operation of the budget; fails once it is spent.
    fn spend(&mut self) -> io::Result<()> {
        match &mut self.budget {
            Some(0) => Err(dead()),
            Some(left) => {
                *left -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn content(&mut self, id: usize) -> io::Result<&mut Content> {
        self.files
            .get_mut(id)
            .ok_or_else(|| io::Error::other("simulated file vanished"))
    }
}

impl SimDir {
    pub(crate) fn new() -> Self {
        Self {
            state: Arc::default(),
            path: PathBuf::from("/sim/log"),
        }
    }

    /// From now on, `ops` more operations succeed and every later one fails.
    pub(crate) fn set_budget(&self, ops: Option<u64>) {
        lock(&self.state).budget = ops;
    }

    /// The directory after a power loss now: a new, independent directory (handles to this one
    /// keep working on the old one, as a dead process's would, and matter no more).
    pub(crate) fn crash(&self, rng: &mut Rng) -> SimDir {
        let state = lock(&self.state);
        let mut names = state.synced_names.clone();
        // Each name changed since the last directory sync: the change survives or not.
        let mut changed: Vec<&String> = state
            .names
            .keys()
            .chain(state.synced_names.keys())
            .filter(|name| state.names.get(*name) != state.synced_names.get(*name))
            .collect();
        changed.sort();
        changed.dedup();
        for name in changed {
            if rng.chance(50) {
                match state.names.get(name) {
                    Some(id) => names.insert(name.clone(), *id),
                    None => names.remove(name),
                };
            }
        }
        let files = state
            .files
            .iter()
            .map(|content| {
                let kept = survive(content, rng);
                Content {
                    synced: kept.clone(),
                    current: kept,
                }
            })
            .collect();
        SimDir {
            state: Arc::new(Mutex::new(State {
                files,
                synced_names: names.clone(),
                names,
                budget: None,
            })),
            path: self.path.clone(),
        }
    }
}

/// What a power loss leaves of one file: the synced bytes, with each sector written since
/// replaced by its new content or not, at a length between the synced and the current one.
fn survive(content: &Content, rng: &mut Rng) -> Vec<u8> {
    let Content { synced, current } = content;
    let low = synced.len().min(current.len());
    let high = synced.len().max(current.len());
    // The length: a sector boundary between the two (or either end).
    let len = if low == high {
        low
    } else {
        let sectors = (high - low).div_ceil(SECTOR) as u64;
        (low + rng.below(sectors + 1) as usize * SECTOR).min(high)
    };
    let mut out = Vec::with_capacity(len);
    let mut at = 0;
    while at < len {
        let end = (at + SECTOR).min(len);
        let old = synced.get(at..end.min(synced.len())).unwrap_or(&[]);
        let new = current.get(at..end.min(current.len())).unwrap_or(&[]);
        let take_new = old != new && rng.chance(50);
        let source = if take_new { new } else { old };
        out.extend_from_slice(source);
        // A sector past one version's end reads as zeros there.
        out.resize(end, 0);
        at = end;
    }
    out
}

impl VfsFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut state = lock(&self.state);
        state.spend()?;
        let content = &state.content(self.id)?.current;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(content.len());
        let n = buf.len().min(content.len() - start);
        buf[..n].copy_from_slice(&content[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.spend()?;
        let content = &mut state.content(self.id)?.current;
        let start = usize::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
        if content.len() < start + buf.len() {
            content.resize(start + buf.len(), 0);
        }
        content[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let mut state = lock(&self.state);
        Ok(state.content(self.id)?.current.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.spend()?;
        let len = usize::try_from(len).map_err(|_| io::Error::other("length too large"))?;
        state.content(self.id)?.current.resize(len, 0);
        Ok(())
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.spend()?;
        let len = usize::try_from(len).map_err(|_| io::Error::other("length too large"))?;
        let content = &mut state.content(self.id)?.current;
        if content.len() < len {
            content.resize(len, 0);
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.spend()?;
        let content = state.content(self.id)?;
        content.synced.clone_from(&content.current);
        Ok(())
    }
}

impl Dir for SimDir {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut state = lock(&self.state);
        state.spend()?;
        let mut names: Vec<String> = state.names.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn VfsFile>> {
        let mut state = lock(&self.state);
        state.spend()?;
        let id = match state.names.get(name) {
            Some(&id) => id,
            None if create => {
                state.files.push(Content::default());
                let id = state.files.len() - 1;
                state.names.insert(name.to_owned(), id);
                id
            }
            None => return Err(io::Error::from(io::ErrorKind::NotFound)),
        };
        Ok(Arc::new(SimFile {
            state: Arc::clone(&self.state),
            id,
        }))
    }

    fn open_read(&self, name: &str) -> io::Result<Arc<dyn VfsFile>> {
        self.open(name, false)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.spend()?;
        state
            .names
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.spend()?;
        let id = state
            .names
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        state.names.insert(to.to_owned(), id);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.spend()?;
        state.synced_names = state.names.clone();
        Ok(())
    }

    fn path(&self) -> &Path {
        &self.path
    }
}
