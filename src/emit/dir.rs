//! `--emit-dir DIR`: one file per Workload, written atomically (a temporary file in the same
//! directory, flushed, then renamed over the target), so a reader never sees half a file.

use super::path::{Emitted, check_relative};
use std::io::Write;
use std::path::Path;

/// A file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DirError {
    pub path: String,
    pub message: String,
}

/// Writes `content` at `relative` under `root` unless the file already holds exactly it.
pub fn write(root: &Path, relative: &str, content: &[u8]) -> Result<Emitted, DirError> {
    let target = root.join(relative);
    let err = |message: String| DirError {
        path: target.display().to_string(),
        message,
    };
    check_relative(relative).map_err(|e| err(e.to_string()))?;
    if std::fs::read(&target).is_ok_and(|existing| existing == content) {
        return Ok(Emitted::Unchanged);
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
        assert_eq!(write(dir.path(), rel, b"a: 1\n").unwrap(), Emitted::Written);
        assert_eq!(std::fs::read(dir.path().join(rel)).unwrap(), b"a: 1\n");
        let before = std::fs::metadata(dir.path().join(rel))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            write(dir.path(), rel, b"a: 1\n").unwrap(),
            Emitted::Unchanged
        );
        let after = std::fs::metadata(dir.path().join(rel))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
        assert_eq!(write(dir.path(), rel, b"a: 2\n").unwrap(), Emitted::Written);
        assert_eq!(std::fs::read(dir.path().join(rel)).unwrap(), b"a: 2\n");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("acme/shop/cart"))
            .unwrap()
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn refuses_paths_outside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write(dir.path(), "../x.yaml", b"x").is_err());
        assert!(!dir.path().parent().unwrap().join("x.yaml").exists());
    }
}
