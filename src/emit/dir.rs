//! `--emit-dir DIR`: one file per Workload, written atomically (a temporary file in the same
//! directory, flushed, then renamed over the target), so a reader never sees half a file.

use super::path::{Emitted, check_relative};
use std::io::Write;
use std::path::Path;

/// A file could not, or must not, be written.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// Creating, writing or renaming failed.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// The file holds what must not be replaced (another component's Workload).
    #[error("{path}: {message}")]
    Kept { path: String, message: String },
}

/// The most of an existing file read to compare it: a Workload is never larger.
const MAX_EXISTING: u64 = 2 * crate::core::workload::MAX_WORKLOAD_BYTES as u64;

/// The file at `path` if it is a regular file of at most [`MAX_EXISTING`] bytes.
fn read_existing(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_EXISTING {
        return None;
    }
    let mut out = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_EXISTING)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// Writes `content` at `relative` under `root` unless the file already holds exactly it, or
/// `keep` says why what it holds must stay (another component's Workload).
pub fn write(
    root: &Path,
    relative: &str,
    content: &[u8],
    keep: &dyn Fn(&[u8]) -> Option<String>,
) -> Result<Emitted, DirError> {
    let target = root.join(relative);
    let err = |message: String| DirError::Io {
        path: target.display().to_string(),
        message,
    };
    check_relative(relative).map_err(|e| err(e.to_string()))?;
    if let Some(existing) = read_existing(&target) {
        if existing == content {
            return Ok(Emitted::Unchanged);
        }
        if let Some(why) = keep(&existing) {
            return Err(DirError::Kept {
                path: target.display().to_string(),
                message: why,
            });
        }
    }
    let parent = target
        .parent()
        .expect("a relative path has a parent under root");
    std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(|e| err(e.to_string()))?;
    tmp.write_all(content).map_err(|e| err(e.to_string()))?;
    tmp.as_file().sync_all().map_err(|e| err(e.to_string()))?;
    tmp.persist(&target).map_err(|e| err(e.error.to_string()))?;
    Ok(Emitted::Written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_once_then_reports_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let rel = "acme/shop/cart/workload.yaml";
        assert_eq!(
            write(dir.path(), rel, b"a: 1\n", &|_| None).unwrap(),
            Emitted::Written
        );
        assert_eq!(std::fs::read(dir.path().join(rel)).unwrap(), b"a: 1\n");
        let before = std::fs::metadata(dir.path().join(rel))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            write(dir.path(), rel, b"a: 1\n", &|_| None).unwrap(),
            Emitted::Unchanged
        );
        let after = std::fs::metadata(dir.path().join(rel))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
        assert_eq!(
            write(dir.path(), rel, b"a: 2\n", &|_| None).unwrap(),
            Emitted::Written
        );
        assert_eq!(std::fs::read(dir.path().join(rel)).unwrap(), b"a: 2\n");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("acme/shop/cart"))
            .unwrap()
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_file_that_must_stay_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.yaml"), b"theirs").unwrap();
        let keep = |existing: &[u8]| (existing == b"theirs").then(|| "not ours".to_owned());
        let e = write(dir.path(), "w.yaml", b"ours", &keep).unwrap_err();
        assert!(matches!(e, DirError::Kept { ref message, .. } if message == "not ours"));
        assert_eq!(std::fs::read(dir.path().join("w.yaml")).unwrap(), b"theirs");
        // The same content is unchanged whatever `keep` says; a new file is written.
        assert_eq!(
            write(dir.path(), "w.yaml", b"theirs", &keep).unwrap(),
            Emitted::Unchanged
        );
        assert_eq!(
            write(dir.path(), "new.yaml", b"ours", &keep).unwrap(),
            Emitted::Written
        );
    }

    #[test]
    fn refuses_paths_outside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write(dir.path(), "../x.yaml", b"x", &|_| None).is_err());
        assert!(!dir.path().parent().unwrap().join("x.yaml").exists());
    }
}
