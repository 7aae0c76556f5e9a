//! Expanding files and directories into the YAML files they hold, under the rules of the
//! module above: each entry is looked at with `symlink_metadata`, a symlink is resolved and
//! followed only inside the root, each directory is read once, and the walk is bounded.

use super::{MAX_DEPTH, MAX_FILES, Problem, SourceError, read_regular, special_kind};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// A YAML file to read: the path it was reached by (shown in messages) and the regular file
/// it reads (where a symlink led, resolved once when it was found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    pub name: PathBuf,
    at: PathBuf,
}

impl InputFile {
    /// The file's text, or why it was refused.
    pub fn read(&self) -> Result<String, SourceError> {
        read_regular(&self.name, &self.at)
    }
}

/// A file's path with its text, or why that one file (or entry) was not read.
pub type FileText = (PathBuf, Result<String, SourceError>);

/// Expands files and directories into the YAML files they hold (`.yaml`/`.yml`, recursively,
/// in sorted order so that output and errors do not depend on directory order; names starting
/// with `.` are skipped). A file named directly is taken whatever its extension. The first
/// refused entry, in that order, is the error.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<InputFile>, SourceError> {
    let mut out = Vec::new();
    for p in paths {
        for (name, at) in walk_root(p, &mut out.len())? {
            let at = at.map_err(|problem| SourceError::new(&name, problem))?;
            out.push(InputFile { name, at });
        }
    }
    Ok(out)
}

/// Every YAML file under `dir` (as `expand_paths` finds them) with its text, or why that one
/// entry was refused or unreadable: a loop reports a bad file and goes on. Fatal only: `dir`
/// itself unreadable or not a directory, a directory below it unreadable, too many files.
pub fn read_dir_files(dir: &Path) -> Result<Vec<FileText>, SourceError> {
    let meta = std::fs::metadata(dir).map_err(|e| SourceError::new(dir, Problem::Io(e)))?;
    if !meta.is_dir() {
        let e = std::io::Error::from(std::io::ErrorKind::NotADirectory);
        return Err(SourceError::new(dir, Problem::Io(e)));
    }
    Ok(walk_root(dir, &mut 0)?
        .into_iter()
        .map(|(name, at)| {
            let text = match at {
                Ok(at) => read_regular(&name, &at),
                Err(problem) => Err(SourceError::new(&name, problem)),
            };
            (name, text)
        })
        .collect())
}

/// What a walk found, in order: a YAML file to read, or an entry it refused.
type Found = (PathBuf, Result<PathBuf, Problem>);

/// One path given by the user: a directory is walked, anything else is a single file (a
/// symlink named directly is followed wherever it leads: the user chose it). `taken` counts
/// the files of every root against [`MAX_FILES`].
fn walk_root(path: &Path, taken: &mut usize) -> Result<Vec<Found>, SourceError> {
    let fail = |problem| SourceError::new(path, problem);
    let root = std::fs::canonicalize(path).map_err(|e| fail(Problem::Io(e)))?;
    let meta = std::fs::metadata(&root).map_err(|e| fail(Problem::Io(e)))?;
    if !meta.is_dir() {
        let at = match special_kind(meta.file_type()) {
            Some(kind) => Err(Problem::NotRegular(kind)),
            None => Ok(root),
        };
        return Ok(vec![(path.to_path_buf(), at)]);
    }
    let mut walk = Walk {
        root_name: path.to_path_buf(),
        root: root.clone(),
        visited: HashMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
        taken,
    };
    walk.enter(path, &root, 0)?;
    Ok(walk.found)
}

struct Walk<'a> {
    /// The root as given, for errors about the whole walk.
    root_name: PathBuf,
    /// The canonical root: every symlink must lead inside it.
    root: PathBuf,
    /// Canonical directories read so far, with the path each was reached by first.
    visited: HashMap<PathBuf, PathBuf>,
    /// Canonical directories the walk is inside now: a link to one of them is a loop.
    stack: Vec<PathBuf>,
    found: Vec<Found>,
    taken: &'a mut usize,
}

fn is_yaml(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.ends_with(".yaml") || name.ends_with(".yml")
}

impl Walk<'_> {
    fn push(&mut self, name: &Path, at: Result<PathBuf, Problem>) -> Result<(), SourceError> {
        *self.taken += 1;
        if *self.taken > MAX_FILES {
            return Err(SourceError::new(&self.root_name, Problem::TooManyFiles));
        }
        self.found.push((name.to_path_buf(), at));
        Ok(())
    }

    /// Reads the directory `real` (canonical), reached as `name`, unless it loops, was read
    /// already or lies too deep (then the entry is refused).
    fn enter(&mut self, name: &Path, real: &Path, depth: usize) -> Result<(), SourceError> {
        if self.stack.iter().any(|d| d == real) {
            let first = self.visited.get(real).cloned().unwrap_or_default();
            return self.push(name, Err(Problem::Loop(first.display().to_string())));
        }
        if let Some(first) = self.visited.get(real) {
            let first = first.display().to_string();
            return self.push(name, Err(Problem::AlreadyRead(first)));
        }
        if depth > MAX_DEPTH {
            return self.push(name, Err(Problem::TooDeep));
        }
        self.visited.insert(real.to_path_buf(), name.to_path_buf());
        self.stack.push(real.to_path_buf());
        let read = self.read_dir(name, real, depth);
        self.stack.pop();
        read
    }

    fn read_dir(&mut self, name: &Path, real: &Path, depth: usize) -> Result<(), SourceError> {
        let io = |e| SourceError::new(name, Problem::Io(e));
        let mut entries: Vec<_> = std::fs::read_dir(real)
            .map_err(io)?
            .map(|e| e.map(|e| e.file_name()).map_err(io))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            if entry.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let (name, real, yaml) = (name.join(&entry), real.join(&entry), is_yaml(&entry));
            let meta = match std::fs::symlink_metadata(&real) {
                Ok(m) => m,
                // Gone since the listing (an editor's temporary file): only a YAML file matters.
                Err(e) if yaml => {
                    self.push(&name, Err(Problem::Io(e)))?;
                    continue;
                }
                Err(_) => continue,
            };
            let t = meta.file_type();
            if t.is_dir() {
                self.enter(&name, &real, depth + 1)?;
            } else if t.is_symlink() {
                self.link(&name, &real, yaml, depth)?;
            } else if yaml {
                let at = match special_kind(t) {
                    Some(kind) => Err(Problem::NotRegular(kind)),
                    None => Ok(real),
                };
                self.push(&name, at)?;
            }
        }
        Ok(())
    }

    /// A symlink: followed to a directory or, for a YAML name, a regular file, when it leads
    /// inside the root. Links with other names that lead to files are not looked at further.
    fn link(
        &mut self,
        name: &Path,
        real: &Path,
        yaml: bool,
        depth: usize,
    ) -> Result<(), SourceError> {
        let resolved = std::fs::canonicalize(real)
            .map_err(Problem::Unresolved)
            .and_then(|target| match std::fs::metadata(&target) {
                Ok(meta) => Ok((target, meta)),
                Err(e) => Err(Problem::Unresolved(e)),
            });
        let (target, meta) = match resolved {
            Ok(r) => r,
            Err(problem) if yaml => return self.push(name, Err(problem)),
            Err(_) => return Ok(()),
        };
        if !meta.is_dir() && !yaml {
            return Ok(());
        }
        if !target.starts_with(&self.root) {
            let problem = Problem::Escapes {
                target: target.display().to_string(),
                root: self.root.display().to_string(),
            };
            return self.push(name, Err(problem));
        }
        if meta.is_dir() {
            return self.enter(name, &target, depth + 1);
        }
        let at = match special_kind(meta.file_type()) {
            Some(kind) => Err(Problem::NotRegular(kind)),
            None => Ok(target),
        };
        self.push(name, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(found: &[FileText], root: &Path) -> Vec<(String, String)> {
        found
            .iter()
            .map(|(p, r)| {
                let p = p.strip_prefix(root).unwrap().display().to_string();
                let r = match r {
                    Ok(text) => text.clone(),
                    Err(e) => e.problem.to_string(),
                };
                (p, r)
            })
            .collect()
    }

    #[test]
    fn links_are_followed_inside_the_root_only_and_each_directory_is_read_once() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside.yaml");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join(".shared")).unwrap();
        std::fs::write(&outside, "out").unwrap();
        std::fs::write(root.join("sub/a.yaml"), "a").unwrap();
        std::fs::write(root.join(".shared/b.yml"), "b").unwrap();
        std::fs::write(root.join("notes.txt"), "n").unwrap();
        symlink(".shared/b.yml", root.join("b.yaml")).unwrap();
        symlink(".", root.join("l")).unwrap();
        symlink("..", root.join("sub/up")).unwrap();
        symlink(&outside, root.join("out.yaml")).unwrap();
        symlink(tmp.path(), root.join("outdir")).unwrap();
        symlink("missing.yaml", root.join("gone.yaml")).unwrap();
        symlink("missing", root.join("gone")).unwrap();
        symlink("sub", root.join("again")).unwrap();
        symlink("notes.txt", root.join("notes.yaml")).unwrap();
        let found = read_dir_files(&root).unwrap();
        let root_s = root.display().to_string();
        let sub = root.join("again").display().to_string();
        assert_eq!(
            names(&found, &root),
            [
                ("again/a.yaml", "a".to_owned()),
                ("again/up", format!("symlink loop: leads back to {root_s}")),
                ("b.yaml", "b".to_owned()),
                (
                    "gone.yaml",
                    "symlink cannot be resolved: No such file or directory (os error 2)".to_owned()
                ),
                ("l", format!("symlink loop: leads back to {root_s}")),
                ("notes.yaml", "n".to_owned()),
                (
                    "out.yaml",
                    format!(
                        "symlink to {} leads outside {}; only links inside it are followed",
                        outside.canonicalize().unwrap().display(),
                        root.canonicalize().unwrap().display()
                    )
                ),
                (
                    "outdir",
                    format!(
                        "symlink to {} leads outside {}; only links inside it are followed",
                        tmp.path().canonicalize().unwrap().display(),
                        root.canonicalize().unwrap().display()
                    )
                ),
                ("sub", format!("directory already read as {sub}")),
            ]
            .map(|(p, r)| (p.to_owned(), r))
        );
    }

    #[test]
    fn special_files_are_refused_without_being_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("x.yaml");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let sock = tmp.path().join("s.yaml");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let found = read_dir_files(tmp.path()).unwrap();
        let shown = names(&found, tmp.path());
        assert_eq!(shown[0].0, "s.yaml");
        assert!(
            shown[0].1.starts_with("a socket, not a regular file"),
            "{shown:?}"
        );
        assert_eq!(shown[1].0, "x.yaml");
        assert!(
            shown[1].1.starts_with("a FIFO, not a regular file"),
            "{shown:?}"
        );
        let e = expand_paths(std::slice::from_ref(&fifo)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{}: a FIFO", fifo.display())),
            "{e}"
        );
    }

    #[test]
    fn depth_and_file_count_are_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let mut deep = tmp.path().to_path_buf();
        for _ in 0..=MAX_DEPTH {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        let found = read_dir_files(tmp.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, deep);
        assert!(matches!(
            found[0].1.as_ref().unwrap_err().problem,
            Problem::TooDeep
        ));

        let many = tempfile::tempdir().unwrap();
        for i in 0..=MAX_FILES {
            std::fs::write(many.path().join(format!("{i}.yaml")), "").unwrap();
        }
        let e = expand_paths(&[many.path().to_path_buf()]).unwrap_err();
        assert!(matches!(e.problem, Problem::TooManyFiles), "{e}");
        assert_eq!(e.path, many.path().display().to_string());
    }

    #[test]
    fn a_file_named_directly_is_taken_whatever_its_name() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("spec.txt");
        std::fs::write(&file, "x").unwrap();
        let link = tmp.path().join("link");
        symlink(&file, &link).unwrap();
        let files = expand_paths(&[file.clone(), link.clone()]).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].name, link);
        assert_eq!(files[1].read().unwrap(), "x");
    }
}
