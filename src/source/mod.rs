//! Inputs from the file system: Build files and directories, values files.
//!
//! Inputs are often written by someone else (a team's directory watched by `sync`), so reading
//! one must never hang, spin or exhaust memory: only regular files are read, never more than
//! [`MAX_FILE_BYTES`] of one; a symlink is followed only to a regular file or directory inside
//! the root being read; FIFOs, sockets and devices are refused without being opened; a walk
//! reads each directory once and stops at [`MAX_DEPTH`] and [`MAX_FILES`].

pub mod specs;
mod walk;

pub use walk::{FileText, InputFile, expand_paths, read_dir_files};

use std::fs::{File, FileType};
use std::io::Read as _;
use std::path::Path;

/// The most one input file may hold. A Build or values file is a few KiB; 4 MiB leaves room
/// for generated files and keeps a log file or `/dev/zero` named `.yaml` out of memory.
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// The most YAML files one walk takes: a walk over a home directory by mistake ends early.
pub const MAX_FILES: usize = 10_000;
/// How deep a walk descends below the directory it was given.
pub const MAX_DEPTH: usize = 32;

/// An input path that was refused or could not be read; the message names the path.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct SourceError {
    /// The path as the user gave it or as the walk reached it (not where a symlink led).
    pub path: String,
    pub problem: Problem,
}

/// Why an input path was not read.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The file system refused (missing file, no permission, …).
    #[error("{0}")]
    Io(std::io::Error),
    /// A symlink that is dangling or cannot be resolved.
    #[error("symlink cannot be resolved: {0}")]
    Unresolved(std::io::Error),
    /// A symlink leading outside the directory being read.
    #[error("symlink to {target} leads outside {root}; only links inside it are followed")]
    Escapes { target: String, root: String },
    /// A symlink leading back to a directory the walk is inside.
    #[error("symlink loop: leads back to {0}")]
    Loop(String),
    /// A directory reached a second time through a symlink: its files are read once.
    #[error("directory already read as {0}")]
    AlreadyRead(String),
    /// A FIFO, socket or device: reading one may block forever or never end.
    #[error("{0}, not a regular file; only regular files and directories are read")]
    NotRegular(&'static str),
    /// A file larger than [`MAX_FILE_BYTES`].
    #[error("larger than {} MiB, the most an input file may hold", MAX_FILE_BYTES >> 20)]
    TooLarge,
    /// A file that is not UTF-8 text.
    #[error("not UTF-8 text")]
    NotUtf8,
    /// A directory nested deeper than [`MAX_DEPTH`] below the one given.
    #[error("directory nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
    /// More YAML files than [`MAX_FILES`] under the directory given.
    #[error("more than {MAX_FILES} YAML files")]
    TooManyFiles,
}

impl SourceError {
    pub(crate) fn new(path: &Path, problem: Problem) -> SourceError {
        SourceError {
            path: path.display().to_string(),
            problem,
        }
    }
}

/// What a file type is, for a refusal ("a FIFO"); None for a regular file or a directory.
fn special_kind(t: FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt as _;
    if t.is_file() || t.is_dir() {
        None
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else {
        Some("a special file")
    }
}

/// Reads one file named by the user (a Build file or a `-f` values file) as UTF-8 text. A
/// symlink named directly is followed wherever it leads (the user chose it), but only to a
/// regular file.
pub fn read_text(path: &Path) -> Result<String, SourceError> {
    let at = std::fs::canonicalize(path).map_err(|e| SourceError::new(path, Problem::Io(e)))?;
    read_regular(path, &at)
}

/// Reads the regular file at `at`, named `name` in errors, up to [`MAX_FILE_BYTES`]. The type
/// is checked before opening, and again on the open file (it may have been replaced since):
/// the open does not wait for a FIFO's writer, and the cap holds whatever the size claims.
fn read_regular(name: &Path, at: &Path) -> Result<String, SourceError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let fail = |problem| SourceError::new(name, problem);
    let before = std::fs::metadata(at).map_err(|e| fail(Problem::Io(e)))?;
    if let Some(kind) = special_kind(before.file_type()) {
        return Err(fail(Problem::NotRegular(kind)));
    }
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(at)
        .map_err(|e| fail(Problem::Io(e)))?;
    let meta = file.metadata().map_err(|e| fail(Problem::Io(e)))?;
    if let Some(kind) = special_kind(meta.file_type()) {
        return Err(fail(Problem::NotRegular(kind)));
    }
    if meta.is_dir() {
        return Err(fail(Problem::Io(std::io::Error::from(
            std::io::ErrorKind::IsADirectory,
        ))));
    }
    read_capped(name, file, meta.len())
}

/// How stdin is named in messages (`-f -`, `--set-file key=-`).
pub const STDIN_NAME: &str = "stdin";

/// Reads stdin to its end as UTF-8 text, under the cap of a file ([`MAX_FILE_BYTES`]): `-f -`
/// and `--set-file key=-`. A caller reads it once; what is piped in is not known beforehand, so
/// the cap is enforced while reading.
pub fn read_stdin() -> Result<String, SourceError> {
    read_capped(Path::new(STDIN_NAME), std::io::stdin().lock(), 0)
}

/// Reads `from` up to [`MAX_FILE_BYTES`] (one byte more says it is too large) as UTF-8.
fn read_capped(
    name: &Path,
    from: impl std::io::Read,
    size_hint: u64,
) -> Result<String, SourceError> {
    let fail = |problem| SourceError::new(name, problem);
    let mut bytes = Vec::with_capacity(size_hint.min(MAX_FILE_BYTES) as usize);
    from.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(Problem::Io(e)))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(Problem::TooLarge));
    }
    String::from_utf8(bytes).map_err(|_| fail(Problem::NotUtf8))
}

/// A directory watched recursively with `notify`; each burst of changes is reported once.
pub struct DirWatch {
    // Kept alive: dropping the watcher stops the events.
    _watcher: notify::RecommendedWatcher,
    events: tokio::sync::mpsc::UnboundedReceiver<()>,
}

/// Starts watching `dir` (and everything below it). Symlinks are not followed: a link inside
/// `dir` leads to a directory that is watched under its own name, and one leading outside is
/// refused by the read anyway (following it could mean watching the whole file system).
pub fn watch_dir(dir: &Path) -> Result<DirWatch, SourceError> {
    use notify::Watcher as _;
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let handler = move |e: notify::Result<notify::Event>| {
        // Reads do not change what a round would see; errors are reported as a change so
        // that the next round reads the directory again.
        if !matches!(&e, Ok(ev) if ev.kind.is_access()) {
            let _ = tx.send(());
        }
    };
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut watcher =
        notify::RecommendedWatcher::new(handler, config).map_err(|e| notify_err(dir, e))?;
    watcher
        .watch(dir, notify::RecursiveMode::Recursive)
        .map_err(|e| notify_err(dir, e))?;
    Ok(DirWatch {
        _watcher: watcher,
        events,
    })
}

fn notify_err(dir: &Path, e: notify::Error) -> SourceError {
    let message = format!("cannot watch: {e}");
    SourceError::new(dir, Problem::Io(std::io::Error::other(message)))
}

impl DirWatch {
    /// Waits for a change, then until `quiet` passes without another (an editor's save or a
    /// `git checkout` is many events: one round should see the end result). False when the
    /// watcher stopped.
    pub async fn changed(&mut self, quiet: std::time::Duration) -> bool {
        if self.events.recv().await.is_none() {
            return false;
        }
        loop {
            match tokio::time::timeout(quiet, self.events.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return false,
                Err(_) => return true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_the_cap_is_refused_and_one_at_the_cap_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("at.yaml");
        std::fs::write(&at, vec![b'a'; MAX_FILE_BYTES as usize]).unwrap();
        assert_eq!(read_text(&at).unwrap().len() as u64, MAX_FILE_BYTES);
        let over = dir.path().join("over.yaml");
        std::fs::write(&over, vec![b'a'; MAX_FILE_BYTES as usize + 1]).unwrap();
        let e = read_text(&over).unwrap_err();
        assert!(matches!(e.problem, Problem::TooLarge), "{e}");
        assert!(
            e.to_string().contains("over.yaml: larger than 4 MiB"),
            "{e}"
        );
    }

    #[test]
    fn devices_are_refused_and_not_utf8_is_named() {
        let e = read_text(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero: a character device, not a regular file; only regular files and \
             directories are read"
        );
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("b.yaml");
        std::fs::write(&bin, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_text(&bin).unwrap_err().problem,
            Problem::NotUtf8
        ));
    }
}
