//! Reading a branch's files straight from the fetched tree, for a sync source: fetched into the
//! same kind of bare cache the emit side uses, read without a worktree, so nothing on disk can
//! drift from what the branch holds.

use super::{Ctx, GitError, GitTarget, fetch_tip};
use git2::{ObjectType, Repository, TreeWalkMode, TreeWalkResult};
use std::path::Path;

/// One file of the tree: its repository path (`/`-separated) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub path: String,
    pub content: Vec<u8>,
}

/// A branch as read: the commit it pointed at and its YAML files under the directory asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub commit: String,
    pub files: Vec<TreeFile>,
}

/// Fetches `branch` of `url` into the bare cache `workdir` and returns its `*.yaml`/`*.yml`
/// files under `under` (the repository root when None), sorted by path; names starting with `.`
/// are skipped, like a directory source skips them.
pub fn read_branch(
    url: &str,
    branch: &str,
    workdir: &Path,
    under: Option<&str>,
) -> Result<Snapshot, GitError> {
    let target = GitTarget {
        url: url.to_owned(),
        branch: branch.to_owned(),
        author_name: String::new(),
        author_email: String::new(),
    };
    let ctx = Ctx::new(&target);
    if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
        return Err(fail!(ctx, InvalidBranch));
    }
    let repo = Repository::open_bare(workdir)
        .or_else(|_| Repository::init_bare(workdir))
        .map_err(|source| fail!(ctx, Cache, workdir: workdir.to_path_buf(), source))?;
    let tip = fetch_tip(&repo, &target, &ctx)?.ok_or_else(|| fail!(ctx, NoBranch))?;
    let git = |e: git2::Error| ctx.commit(&e);
    let commit = repo.find_commit(tip).map_err(git)?;
    let root = commit.tree().map_err(git)?;
    let prefix = under.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty());
    let tree = match prefix {
        None => root,
        Some(p) => {
            let missing = || fail!(ctx, NoDirectory, path: p.to_owned());
            let entry = root.get_path(Path::new(p)).map_err(|_| missing())?;
            if entry.kind() != Some(ObjectType::Tree) {
                return Err(missing());
            }
            repo.find_tree(entry.id()).map_err(git)?
        }
    };
    let mut found = Vec::new();
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        let name = entry.name().unwrap_or_default();
        if name.starts_with('.') {
            return TreeWalkResult::Skip;
        }
        if entry.kind() == Some(ObjectType::Blob)
            && (name.ends_with(".yaml") || name.ends_with(".yml"))
        {
            found.push((format!("{dir}{name}"), entry.id()));
        }
        TreeWalkResult::Ok
    })
    .map_err(git)?;
    let mut files = Vec::with_capacity(found.len());
    for (rel, id) in found {
        let blob = repo.find_blob(id).map_err(git)?;
        let path = match prefix {
            Some(p) => format!("{p}/{rel}"),
            None => rel,
        };
        files.push(TreeFile {
            path,
            content: blob.content().to_vec(),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Snapshot {
        commit: tip.to_string(),
        files,
    })
}
