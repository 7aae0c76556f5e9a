//! Inputs from the file system: Build files and directories, values files.

pub mod specs;

use std::path::{Path, PathBuf};

/// A file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SourceError {
    pub path: String,
    pub message: String,
}

fn io_err(path: &Path, e: std::io::Error) -> SourceError {
    SourceError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Reads one file as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|e| io_err(path, e))
}

/// Expands files and directories into the YAML files they hold (`.yaml`/`.yml`, recursively,
/// in sorted order so that output and errors do not depend on directory order). A file named
/// directly is taken whatever its extension.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SourceError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| io_err(p, e))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| io_err(dir, e)))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(p);
        }
    }
    Ok(())
}

/// A file's path with its text, or why that one file could not be read.
pub type FileText = (PathBuf, Result<String, SourceError>);

/// Every YAML file under `dir` (as `expand_paths` finds them) with its text, or why that one
/// file is unreadable: a loop reports a bad file and goes on; only an unreadable `dir` is fatal.
pub fn read_dir_files(dir: &Path) -> Result<Vec<FileText>, SourceError> {
    let files = expand_paths(&[dir.to_path_buf()])?;
    Ok(files
        .into_iter()
        .map(|f| {
            let text = read_text(&f);
            (f, text)
        })
        .collect())
}

/// A directory watched recursively with `notify`; each burst of changes is reported once.
pub struct DirWatch {
    // Kept alive: dropping the watcher stops the events.
    _watcher: notify::RecommendedWatcher,
    events: tokio::sync::mpsc::UnboundedReceiver<()>,
}

/// Starts watching `dir` (and everything below it).
pub fn watch_dir(dir: &Path) -> Result<DirWatch, SourceError> {
    use notify::Watcher as _;
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
        // Reads do not change what a round would see; errors are reported as a change so
        // that the next round reads the directory again.
        if !matches!(&e, Ok(ev) if ev.kind.is_access()) {
            let _ = tx.send(());
        }
    })
    .map_err(|e| notify_err(dir, e))?;
    watcher
        .watch(dir, notify::RecursiveMode::Recursive)
        .map_err(|e| notify_err(dir, e))?;
    Ok(DirWatch {
        _watcher: watcher,
        events,
    })
}

fn notify_err(dir: &Path, e: notify::Error) -> SourceError {
    SourceError {
        path: dir.display().to_string(),
        message: format!("cannot watch: {e}"),
    }
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
