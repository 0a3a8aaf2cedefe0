//! The I/O seam under the segment log: a directory of files that can be read and written at
//! offsets, synced, created, removed and renamed. [`FsDir`] is the real filesystem; the tests'
//! simulated directory (`sim.rs`) keeps what was synced and drops an arbitrary part of what was not,
//! as a power loss does.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One file of a [`Dir`]. Every method takes `&self`: readers and the one writer share a file.
pub(crate) trait VfsFile: Send + Sync + Debug {
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`, growing the file when it reaches past the end.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Reserves disk space for `len` bytes (reading as zeros past what was written), so later
    /// writes below `len` change no file size and cannot fail for lack of space.
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// `fdatasync`: everything written so far survives a power loss.
    fn sync_data(&self) -> io::Result<()>;
}

/// A directory of files. Names are plain file names, never paths.
pub(crate) trait Dir: Send + Sync + Debug {
    /// The names of the files in the directory (any order).
    fn list(&self) -> io::Result<Vec<String>>;
    /// Opens a file for reading and writing; creates it (empty) when `create` and absent.
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn VfsFile>>;
    /// Opens an existing file for reading only (a read-only log never writes; its `VfsFile`'s
    /// writing methods then fail).
    fn open_read(&self, name: &str) -> io::Result<Arc<dyn VfsFile>>;
    /// Removes a file.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Renames a file, replacing `to` if it exists.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// `fsync`s the directory: creations, removals and renames so far survive a power loss.
    fn sync(&self) -> io::Result<()>;
    /// Where the directory is, for error messages.
    fn path(&self) -> &Path;
}

/// A real directory.
#[derive(Debug, Clone)]
pub(crate) struct FsDir {
    path: PathBuf,
}

impl FsDir {
    /// The directory at `path`, which must exist (nothing is created: for read-only use).
    pub(crate) fn existing(path: &Path) -> io::Result<Self> {
        if !std::fs::metadata(path)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", path.display()),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// The directory at `path`, created when absent.
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(path)?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }
}

#[derive(Debug)]
struct FsFile(File);

impl VfsFile for FsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let offset = offset + done as u64;
            match self.0.read_at(&mut buf[done..], offset) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        // fs2 uses `fallocate` on Linux: the blocks are reserved, so a later `fdatasync` of
        // writes below `len` updates no file size.
        fs2::FileExt::allocate(&self.0, len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Dir for FsDir {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.path)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn VfsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(self.path.join(name))?;
        Ok(Arc::new(FsFile(file)))
    }

    fn open_read(&self, name: &str) -> io::Result<Arc<dyn VfsFile>> {
        let file = OpenOptions::new().read(true).open(self.path.join(name))?;
        Ok(Arc::new(FsFile(file)))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path.join(name))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.path.join(from), self.path.join(to))
    }

    fn sync(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }

    fn path(&self) -> &Path {
        &self.path
    }
}
