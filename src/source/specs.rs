//! Where `sync` reads Build specs from, round after round: a branch of a Git repository
//! (fetched into a cache, read straight from the tree) or a watched local directory.

use super::{DirWatch, Problem, SourceError};
use crate::git::{GitError, read::read_branch};
use crate::pipeline::tolerant::SourceFile;
use std::path::PathBuf;
use std::time::Duration;

/// The source could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum SpecSourceError {
    /// The Git source could not be fetched or read.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The directory could not be read or watched.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The clone cache could not be created.
    #[error("cannot create a clone cache")]
    Cache(#[source] std::io::Error),
    /// The blocking read ended without an answer.
    #[error("reading the source stopped")]
    Task(#[source] tokio::task::JoinError),
}

/// Where Build specs come from.
#[derive(Clone)]
pub enum SourceSettings {
    /// A branch of a Git repository, fetched every interval; `path` is a directory inside it.
    Git {
        url: String,
        branch: String,
        path: Option<String>,
        cache_dir: Option<PathBuf>,
    },
    /// A local directory, watched for changes.
    Dir { dir: PathBuf },
}

/// Debug output shows a Git URL as messages do, without credentials.
impl std::fmt::Debug for SourceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSettings::Git {
                url,
                branch,
                path,
                cache_dir,
            } => f
                .debug_struct("Git")
                .field("url", &crate::git::redact_url(url))
                .field("branch", branch)
                .field("path", path)
                .field("cache_dir", cache_dir)
                .finish(),
            SourceSettings::Dir { dir } => f.debug_struct("Dir").field("dir", dir).finish(),
        }
    }
}

/// What a round read: the commit (Git) or directory, and its files.
pub struct Snapshot {
    pub git: bool,
    pub revision: String,
    pub files: Vec<SourceFile>,
}

pub enum SpecSource {
    Git {
        url: String,
        branch: String,
        path: Option<String>,
        cache: PathBuf,
        _temp: Option<tempfile::TempDir>,
    },
    Dir {
        dir: PathBuf,
        watch: DirWatch,
    },
}

impl SpecSource {
    /// Prepares the cache or starts watching (before the first read, so no change is missed).
    pub fn open(settings: &SourceSettings) -> Result<SpecSource, SpecSourceError> {
        Ok(match settings.clone() {
            SourceSettings::Git {
                url,
                branch,
                path,
                cache_dir,
            } => {
                let (cache, temp) = match cache_dir {
                    Some(d) => (d, None),
                    None => {
                        let t = tempfile::Builder::new()
                            .prefix("buildplane-sync-")
                            .tempdir()
                            .map_err(SpecSourceError::Cache)?;
                        (t.path().to_path_buf(), Some(t))
                    }
                };
                SpecSource::Git {
                    url,
                    branch,
                    path,
                    cache,
                    _temp: temp,
                }
            }
            SourceSettings::Dir { dir } => {
                std::fs::read_dir(&dir).map_err(|e| SourceError::new(&dir, Problem::Io(e)))?;
                let watch = super::watch_dir(&dir)?;
                SpecSource::Dir { dir, watch }
            }
        })
    }

    pub async fn read(&self) -> Result<Snapshot, SpecSourceError> {
        match self {
            SpecSource::Git {
                url,
                branch,
                path,
                cache,
                ..
            } => {
                let (url, branch, path, cache) =
                    (url.clone(), branch.clone(), path.clone(), cache.clone());
                let snap = tokio::task::spawn_blocking(move || {
                    read_branch(&url, &branch, &cache, path.as_deref())
                })
                .await
                .map_err(SpecSourceError::Task)??;
                let files = snap
                    .files
                    .into_iter()
                    .map(|f| SourceFile {
                        text: String::from_utf8(f.content).map_err(|_| "not UTF-8 text".to_owned()),
                        name: f.path,
                    })
                    .collect();
                Ok(Snapshot {
                    git: true,
                    revision: snap.commit,
                    files,
                })
            }
            SpecSource::Dir { dir, .. } => {
                // Off the runtime: a slow disk must not keep the loop from its signals.
                let read = dir.clone();
                let files = tokio::task::spawn_blocking(move || super::read_dir_files(&read))
                    .await
                    .map_err(SpecSourceError::Task)??
                    .into_iter()
                    .map(|(path, text)| SourceFile {
                        name: path.display().to_string(),
                        text: text.map_err(|e| e.problem.to_string()),
                    })
                    .collect();
                Ok(Snapshot {
                    git: false,
                    revision: dir.display().to_string(),
                    files,
                })
            }
        }
    }

    /// Waits for the next reason to read: the interval (Git), a change, or — after a failed
    /// round — the interval too (a directory that does not change would never be retried).
    pub async fn next(&mut self, interval: Duration, debounce: Duration, retry: bool) {
        match self {
            SpecSource::Git { .. } => tokio::time::sleep(interval).await,
            SpecSource::Dir { watch, .. } => {
                tokio::select! {
                    alive = watch.changed(debounce) => if !alive {
                        std::future::pending::<()>().await;
                    },
                    _ = tokio::time::sleep(interval), if retry => {}
                }
            }
        }
    }
}
