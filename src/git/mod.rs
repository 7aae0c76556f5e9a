//! Writing build results into a branch of a Git repository, safely when others push too.
//!
//! Commits are built without a worktree, on top of the freshly fetched tip, in a bare clone
//! kept in a cache directory. Pushes are never forced: when the branch moved, the same changes
//! are re-applied on the new tip and pushed again, with jittered backoff, until they land or the
//! deadline passes. Credentials come from git2's callback, by transport: over `ssh://` (and
//! scp-like `user@host:path`) the SSH agent's keys; over `https://` the `BUILDPLANE_GIT_TOKEN`
//! variable, then the platform default; over plain `http://` nothing: a server that asks for
//! credentials there makes the fetch fail, saying the token was withheld. No error or debug
//! output ever carries credentials: URLs are shown without their userinfo, query and fragment.
//!
//! One `emit` at a time per cache directory: the cache's refs are not locked across processes.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use git2::{
    AutotagOption, Cred, CredentialType, ErrorCode, FetchOptions, FileMode, ObjectType, Oid,
    PushOptions, RemoteCallbacks, Repository, Signature, Tree,
};

/// The environment variable holding an HTTPS token (sent as the password of `x-access-token`,
/// only ever to an `https://` remote).
pub const TOKEN_ENV: &str = "BUILDPLANE_GIT_TOKEN";

/// What stands for a credential in messages.
const MASK: &str = "***";

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A `GitError` variant with the context's credential-free URL and its branch filled in.
macro_rules! fail {
    ($ctx:expr, $variant:ident $(, $field:ident $(: $value:expr)?)* $(,)?) => {
        GitError::$variant {
            url: $ctx.url.clone(),
            branch: $ctx.branch.clone(),
            $($field $(: $value)?),*
        }
    };
}

pub mod read;

/// Where results go. `url` may be any URL git2 understands, or a local path.
#[derive(Clone)]
pub struct GitTarget {
    pub url: String,
    pub branch: String,
    pub author_name: String,
    pub author_email: String,
}

/// Debug output strips credentials from the URL, so a target can be logged as it is.
impl fmt::Debug for GitTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitTarget")
            .field("url", &redact_url(&self.url))
            .field("branch", &self.branch)
            .field("author_name", &self.author_name)
            .field("author_email", &self.author_email)
            .finish()
    }
}

/// One file to write, committed with its own message. `path` is repo-relative and
/// `/`-separated; anything that could escape the tree or touch `.git` is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub content: Vec<u8>,
    pub message: String,
}

/// What an emit did, as a value: callers report it, nothing here prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmitOutcome {
    /// Every file already had that content on the branch: nothing was committed.
    Unchanged,
    /// The branch now ends in `commit`; `attempts` counts pushes (1 when nobody raced us).
    Committed { commit: String, attempts: u32 },
}

/// Why an emit failed. Every message names the repository (without credentials) and branch.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// A change's path could escape the repository tree or is not a plain relative path.
    #[error("refusing path {path:?} for {url} branch {branch}: {reason}")]
    InvalidPath {
        url: String,
        branch: String,
        path: String,
        reason: &'static str,
    },
    /// The branch name is not a valid Git reference name.
    #[error("invalid branch name {branch:?} for {url}")]
    InvalidBranch { url: String, branch: String },
    /// A change's path runs through a file, or names a directory, on the branch.
    #[error("cannot write {path} on {url} branch {branch}: {reason}")]
    PathBlocked {
        url: String,
        branch: String,
        path: String,
        reason: &'static str,
    },
    /// The clone cache directory could not be opened or created as a bare repository.
    #[error("cannot open the clone cache {} for {url} branch {branch}", .workdir.display())]
    Cache {
        url: String,
        branch: String,
        workdir: PathBuf,
        #[source]
        source: git2::Error,
    },
    /// Fetching failed: network, authentication, or a remote that is not a repository.
    #[error("fetching {url} branch {branch} failed: {detail}")]
    Fetch {
        url: String,
        branch: String,
        detail: String,
    },
    /// Pushing failed for a reason other than the branch having moved.
    #[error("pushing to {url} branch {branch} failed: {detail}")]
    Push {
        url: String,
        branch: String,
        detail: String,
    },
    /// Writing blobs, trees, commits or refs in the clone cache failed.
    #[error("building the commit for {url} branch {branch} failed: {detail}")]
    Commit {
        url: String,
        branch: String,
        detail: String,
    },
    /// The file on the branch must not be replaced (another component's Workload).
    #[error("{url} branch {branch}: {path}: {reason}")]
    Refused {
        url: String,
        branch: String,
        path: String,
        reason: String,
    },
    /// The branch is not on the remote (reading a source needs it).
    #[error("{url} has no branch {branch}")]
    NoBranch { url: String, branch: String },
    /// The sub-directory to read is not a directory on the branch.
    #[error("{url} branch {branch} has no directory {path}")]
    NoDirectory {
        url: String,
        branch: String,
        path: String,
    },
    /// The branch kept moving (or pushes kept being rejected) until the deadline passed.
    #[error(
        "no push to {url} branch {branch} landed within {deadline:?} after {attempts} attempts \
         (last rejection: {last_rejection})"
    )]
    Deadline {
        url: String,
        branch: String,
        attempts: u32,
        deadline: Duration,
        last_rejection: String,
    },
}

/// Writes `changes` into `target.branch` and pushes, retrying on conflicts until `deadline`.
///
/// Each change that alters the tree becomes one commit (author and committer from `target`);
/// all of them are pushed together. Paths and the branch name are checked before anything is
/// touched, so bad input makes no request.
pub fn emit(
    target: &GitTarget,
    workdir: &Path,
    changes: &[Change],
    deadline: Duration,
) -> Result<EmitOutcome, GitError> {
    emit_keeping(target, workdir, changes, deadline, &|_| None)
}

/// [`emit`], except that a file on the branch for which `keep` gives a reason is not replaced:
/// the emit fails with [`GitError::Refused`] and that reason (checked on every fetched tip, so a
/// file that appears while we retry is kept too).
pub fn emit_keeping(
    target: &GitTarget,
    workdir: &Path,
    changes: &[Change],
    deadline: Duration,
    keep: &dyn Fn(&[u8]) -> Option<String>,
) -> Result<EmitOutcome, GitError> {
    let started = Instant::now();
    let ctx = Ctx::new(target);
    let paths = changes
        .iter()
        .map(|c| {
            split_path(&c.path)
                .map_err(|reason| fail!(ctx, InvalidPath, path: c.path.clone(), reason))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !git2::Reference::is_valid_name(&format!("refs/heads/{}", target.branch)) {
        return Err(fail!(ctx, InvalidBranch));
    }
    let repo = Repository::open_bare(workdir)
        .or_else(|_| Repository::init_bare(workdir))
        .map_err(|source| fail!(ctx, Cache, workdir: workdir.to_path_buf(), source))?;
    let signature =
        Signature::now(&target.author_name, &target.author_email).map_err(|e| ctx.commit(&e))?;
    let mut backoff = Backoff::new();
    let mut attempts = 0;
    loop {
        let tip = fetch_tip(&repo, target, &ctx)?;
        let built = build_commits(&repo, &ctx, tip, changes, &paths, &signature, keep)?;
        let Some(commit) = built else {
            return Ok(EmitOutcome::Unchanged);
        };
        attempts += 1;
        let last_rejection = match push(&repo, target, &ctx, commit)? {
            Pushed::Landed => {
                repo.reference(&ctx.tracking_ref, commit, true, "buildplane: pushed")
                    .map_err(|e| ctx.commit(&e))?;
                let commit = commit.to_string();
                return Ok(EmitOutcome::Committed { commit, attempts });
            }
            Pushed::Rejected(reason) => reason,
        };
        let wait = backoff.next_wait();
        if started.elapsed() + wait >= deadline {
            return Err(fail!(ctx, Deadline, attempts, deadline, last_rejection));
        }
        std::thread::sleep(wait);
    }
}

/// Replaces each `{name}` whose name is in `vars` by its value, once and literally: values are
/// not scanned again, and unknown placeholders stay as written.
pub fn render_message(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after
            .find('}')
            .and_then(|close| Some((vars.iter().find(|(k, _)| *k == &after[..close])?, close)));
        match value {
            Some(((_, value), close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The URL without its userinfo (`https://user:token@host/x` → `https://host/x`), and with its
/// query and fragment, whatever they hold, replaced by `***` (`https://host/x?***`): tokens
/// travel as `?access_token=…` too. For messages.
pub fn redact_url(url: &str) -> String {
    let url = match userinfo_span(url) {
        Some((start, end)) => format!("{}{}", &url[..start], &url[end..]),
        None => url.to_owned(),
    };
    match query_start(&url) {
        Some(at) => {
            let mark = &url[at..=at];
            format!("{}{mark}{MASK}", &url[..at])
        }
        None => url,
    }
}

/// Where a scheme URL's query (`?`) or, without one, its fragment (`#`) starts. scp-like
/// addresses and local paths have neither: a `?` there is part of the path.
fn query_start(url: &str) -> Option<usize> {
    let after_scheme = url.find("://")? + 3;
    url[after_scheme..]
        .find(['?', '#'])
        .map(|i| after_scheme + i)
}

/// The parts of a URL that may be credentials and that a message must not show: the
/// password of its userinfo, its query and fragment as a whole, and each of their values.
/// Short parts (under four bytes) are left out: replacing them would garble a message.
fn url_secrets(url: &str) -> Vec<&str> {
    let mut secrets = Vec::new();
    if let Some((start, end)) = userinfo_span(url)
        && let Some((_, password)) = url[start..end].trim_end_matches('@').split_once(':')
    {
        secrets.push(password);
    }
    if let Some(at) = query_start(url) {
        let rest = &url[at + 1..];
        secrets.push(rest);
        secrets.extend(
            rest.split(['&', ';', '#', '?'])
                .map(|pair| pair.split_once('=').map_or(pair, |(_, v)| v)),
        );
    }
    secrets.retain(|s| s.len() >= 4);
    // Longest first, so a value inside the whole query does not break its replacement.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

/// The byte range of `userinfo@` in a scheme URL or an scp-like `user@host:path`.
fn userinfo_span(url: &str) -> Option<(usize, usize)> {
    let (start, authority_end) = match url.find("://") {
        Some(scheme_end) => {
            let start = scheme_end + 3;
            let end = url[start..].find('/').map_or(url.len(), |i| start + i);
            (start, end)
        }
        None => {
            let colon = url.find(':')?;
            if url[..colon].contains('/') {
                return None;
            }
            (0, colon)
        }
    };
    let at = url[start..authority_end].rfind('@')?;
    Some((start, start + at + 1))
}

/// The names every message carries, and where the cache keeps the branch's last known tip.
struct Ctx {
    raw_url: String,
    url: String,
    branch: String,
    tracking_ref: String,
}

impl Ctx {
    fn new(target: &GitTarget) -> Self {
        Ctx {
            raw_url: target.url.clone(),
            url: redact_url(&target.url),
            branch: target.branch.clone(),
            tracking_ref: format!("refs/buildplane/remote/{}", target.branch),
        }
    }

    /// A git2 message with the URL's userinfo, password, query values and the token replaced.
    fn scrub(&self, e: &git2::Error) -> String {
        scrub_message(e.message(), &self.raw_url, &self.url)
    }

    fn fetch(&self, e: &git2::Error) -> GitError {
        fail!(self, Fetch, detail: self.scrub(e))
    }

    fn push(&self, e: &git2::Error) -> GitError {
        fail!(self, Push, detail: self.scrub(e))
    }

    fn commit(&self, e: &git2::Error) -> GitError {
        fail!(self, Commit, detail: self.scrub(e))
    }
}

/// `message` without the credentials of `raw_url` (shown as `shown`) or the token.
fn scrub_message(message: &str, raw_url: &str, shown: &str) -> String {
    let mut text = message.replace(raw_url, shown);
    if let Some((start, end)) = userinfo_span(raw_url) {
        text = text.replace(&raw_url[start..end], "");
    }
    for secret in url_secrets(raw_url) {
        text = text.replace(secret, MASK);
    }
    match std::env::var(TOKEN_ENV) {
        Ok(token) if token.len() >= 4 => text.replace(&token, MASK),
        _ => text,
    }
}

/// How a remote is reached, as far as credentials go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// `https://`: the token, then the platform's default credentials.
    Https,
    /// `http://`: nothing, ever; the token would travel in clear.
    Http,
    /// `ssh://` (also `git+ssh://`, `ssh+git://`) or scp-like `[user@]host:path`: SSH keys.
    Ssh,
    /// `git://`, `file://`, a local path: no credentials are asked for.
    Other,
}

impl Transport {
    fn of(url: &str) -> Transport {
        match url.find("://") {
            Some(end) => match url[..end].to_ascii_lowercase().as_str() {
                "https" => Transport::Https,
                "http" => Transport::Http,
                "ssh" | "git+ssh" | "ssh+git" => Transport::Ssh,
                _ => Transport::Other,
            },
            None => match url.find(':') {
                Some(colon) if colon > 0 && !url[..colon].contains('/') => Transport::Ssh,
                _ => Transport::Other,
            },
        }
    }

    /// The transport of a request for credentials: the remote's and the one libgit2 names in
    /// the request must agree; where one of them is plain http, it is plain http.
    fn of_request(remote: &str, asked_for: &str) -> Transport {
        match (Transport::of(remote), Transport::of(asked_for)) {
            (a, b) if a == b => a,
            (Transport::Http, _) | (_, Transport::Http) => Transport::Http,
            _ => Transport::Other,
        }
    }
}

/// The credentials callback's answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offer {
    /// The user name SSH asks for first.
    Username,
    /// The SSH agent's keys.
    SshAgent,
    /// [`TOKEN_ENV`] as the password of `x-access-token`.
    Token,
    /// The platform's default credentials (Negotiate/NTLM).
    PlatformDefault,
    /// Nothing: why, as the fetch's error says it.
    Refuse(&'static str),
}

const TOKEN_WITHHELD: &str = "the server asks for credentials over plain http: \
     BUILDPLANE_GIT_TOKEN is withheld (it is only sent over https)";
const PLAIN_HTTP: &str =
    "the server asks for credentials over plain http: none are sent (use an https URL)";
const NONE_USABLE: &str = "no usable credentials";

/// What to offer for a request over `transport` allowing `allowed`, each kind of credential
/// once (`tried` remembers) so that a refused one cannot loop forever: SSH keys only over SSH,
/// the token and the platform default only over https, nothing over plain http.
fn offer(
    transport: Transport,
    allowed: CredentialType,
    tried: &mut CredentialType,
    token_set: bool,
) -> Offer {
    let mut first_try = |kind| {
        let fresh = allowed.contains(kind) && !tried.contains(kind);
        if fresh {
            *tried |= kind;
        }
        fresh
    };
    match transport {
        Transport::Ssh if allowed.contains(CredentialType::USERNAME) => Offer::Username,
        Transport::Ssh if first_try(CredentialType::SSH_KEY) => Offer::SshAgent,
        Transport::Https if token_set && first_try(CredentialType::USER_PASS_PLAINTEXT) => {
            Offer::Token
        }
        Transport::Https if first_try(CredentialType::DEFAULT) => Offer::PlatformDefault,
        Transport::Http if token_set => Offer::Refuse(TOKEN_WITHHELD),
        Transport::Http => Offer::Refuse(PLAIN_HTTP),
        _ => Offer::Refuse(NONE_USABLE),
    }
}

/// The path's components, or why it is refused.
fn split_path(path: &str) -> Result<Vec<&str>, &'static str> {
    if path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return Err("must be relative, '/'-separated, without NUL");
    }
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts {
        match *part {
            "" => return Err("empty path component"),
            "." | ".." => return Err("'.' and '..' components are not allowed"),
            p if p.eq_ignore_ascii_case(".git") => return Err("'.git' components are not allowed"),
            _ => {}
        }
    }
    Ok(parts)
}

/// Credentials for `remote` as [`offer`] decides, per request.
fn callbacks<'a>(remote: &str) -> RemoteCallbacks<'a> {
    let remote = remote.to_owned();
    let mut tried = CredentialType::empty();
    let mut cbs = RemoteCallbacks::new();
    cbs.credentials(move |url, username, allowed| {
        let user = username.unwrap_or("git");
        let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
        let transport = Transport::of_request(&remote, url);
        match offer(transport, allowed, &mut tried, token.is_some()) {
            Offer::Username => Cred::username(user),
            Offer::SshAgent => Cred::ssh_key_from_agent(user),
            Offer::Token => {
                Cred::userpass_plaintext("x-access-token", token.as_deref().unwrap_or(""))
            }
            Offer::PlatformDefault => Cred::default(),
            Offer::Refuse(why) => Err(git2::Error::from_str(why)),
        }
    });
    cbs
}

/// Fetches the branch and returns the remote's tip as advertised (None: no such branch yet).
fn fetch_tip(repo: &Repository, target: &GitTarget, ctx: &Ctx) -> Result<Option<Oid>, GitError> {
    let mut remote = repo
        .remote_anonymous(&target.url)
        .map_err(|e| ctx.fetch(&e))?;
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(callbacks(&target.url))
        .download_tags(AutotagOption::None);
    let refspec = format!("+refs/heads/{}:{}", target.branch, ctx.tracking_ref);
    remote
        .fetch(&[refspec], Some(&mut opts), None)
        .map_err(|e| ctx.fetch(&e))?;
    let wanted = format!("refs/heads/{}", target.branch);
    let tip = remote
        .list()
        .map_err(|e| ctx.fetch(&e))?
        .iter()
        .find(|head| head.name() == wanted)
        .map(|head| head.oid());
    if tip.is_none()
        && let Ok(mut stale) = repo.find_reference(&ctx.tracking_ref)
    {
        stale.delete().map_err(|e| ctx.commit(&e))?;
    }
    Ok(tip)
}

/// Commits each change that alters the tree on top of `tip`; None when nothing changed.
fn build_commits(
    repo: &Repository,
    ctx: &Ctx,
    tip: Option<Oid>,
    changes: &[Change],
    paths: &[Vec<&str>],
    signature: &Signature<'_>,
    keep: &dyn Fn(&[u8]) -> Option<String>,
) -> Result<Option<Oid>, GitError> {
    let git = |e: git2::Error| ctx.commit(&e);
    let mut head = tip;
    let tip_commit = tip
        .map(|id| repo.find_commit(id))
        .transpose()
        .map_err(git)?;
    let mut tree = tip_commit.map(|c| c.tree()).transpose().map_err(git)?;
    for (change, parts) in changes.iter().zip(paths) {
        if let Some(reason) = kept_reason(repo, tree.as_ref(), &change.path, keep) {
            return Err(fail!(ctx, Refused, path: change.path.clone(), reason));
        }
        let blob = repo.blob(&change.content).map_err(git)?;
        let new_id = upsert(repo, ctx, tree.as_ref(), parts, blob, &change.path)?;
        if tree.as_ref().is_some_and(|t| t.id() == new_id) {
            continue;
        }
        let new_tree = repo.find_tree(new_id).map_err(git)?;
        let parent = head
            .map(|id| repo.find_commit(id))
            .transpose()
            .map_err(git)?;
        let (parents, message) = (Vec::from_iter(&parent), &change.message);
        let id = repo
            .commit(None, signature, signature, message, &new_tree, &parents)
            .map_err(git)?;
        head = Some(id);
        tree = Some(new_tree);
    }
    Ok(head.filter(|&id| Some(id) != tip))
}

/// Why the file at `path` in `tree` must stay, if `keep` says so (files only, at most 2 MiB).
fn kept_reason(
    repo: &Repository,
    tree: Option<&Tree<'_>>,
    path: &str,
    keep: &dyn Fn(&[u8]) -> Option<String>,
) -> Option<String> {
    let entry = tree?.get_path(Path::new(path)).ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    if blob.size() > 2 * 1024 * 1024 || blob.content().is_empty() {
        return None;
    }
    keep(blob.content())
}

/// `base` with the blob at `parts` (intermediate trees created), written; returns its id.
fn upsert(
    repo: &Repository,
    ctx: &Ctx,
    base: Option<&Tree<'_>>,
    parts: &[&str],
    blob: Oid,
    path: &str,
) -> Result<Oid, GitError> {
    let git = |e: git2::Error| ctx.commit(&e);
    let [name, rest @ ..] = parts else {
        return Err(fail!(ctx, InvalidPath, path: path.into(), reason: "empty path"));
    };
    let mut builder = repo.treebuilder(base).map_err(git)?;
    let existing = builder
        .get(name)
        .map_err(git)?
        .map(|e| (e.id(), e.kind(), e.filemode()));
    if rest.is_empty() {
        let mode = match existing {
            Some((_, Some(ObjectType::Tree), _)) => {
                let reason = "a directory has that path";
                return Err(fail!(ctx, PathBlocked, path: path.into(), reason));
            }
            Some((_, _, mode)) if mode == i32::from(FileMode::BlobExecutable) => mode,
            _ => FileMode::Blob.into(),
        };
        builder.insert(name, blob, mode).map_err(git)?;
    } else {
        let sub = match existing {
            Some((id, Some(ObjectType::Tree), _)) => Some(repo.find_tree(id).map_err(git)?),
            Some(_) => {
                let reason = "a parent directory is a file";
                return Err(fail!(ctx, PathBlocked, path: path.into(), reason));
            }
            None => None,
        };
        let id = upsert(repo, ctx, sub.as_ref(), rest, blob, path)?;
        builder
            .insert(name, id, FileMode::Tree.into())
            .map_err(git)?;
    }
    builder.write().map_err(git)
}

enum Pushed {
    Landed,
    /// The remote (or libgit2, before sending) refused the update; the reason as reported.
    Rejected(String),
}

/// Pushes `commit` to the branch without force.
///
/// A branch that moved shows up two ways: libgit2 refuses before sending when the advertised
/// tip is unknown locally or not an ancestor (`ErrorCode::NotFastForward`), and the server
/// refuses a ref whose value changed meanwhile (a status in `push_update_reference`).
fn push(repo: &Repository, target: &GitTarget, ctx: &Ctx, commit: Oid) -> Result<Pushed, GitError> {
    let mut remote = repo
        .remote_anonymous(&target.url)
        .map_err(|e| ctx.push(&e))?;
    let refspec = format!("{commit}:refs/heads/{}", target.branch);
    let mut status = None;
    let result = {
        let mut cbs = callbacks(&target.url);
        cbs.push_update_reference(|_, message| {
            if let Some(message) = message {
                status = Some(message.to_owned());
            }
            Ok(())
        });
        let mut opts = PushOptions::new();
        opts.remote_callbacks(cbs);
        remote.push(&[refspec], Some(&mut opts))
    };
    match (result, status) {
        (Err(e), _) if e.code() == ErrorCode::NotFastForward => Ok(Pushed::Rejected(ctx.scrub(&e))),
        (Err(e), _) => Err(ctx.push(&e)),
        (Ok(()), Some(status)) => Ok(Pushed::Rejected(status)),
        (Ok(()), None) => Ok(Pushed::Landed),
    }
}

/// Exponential backoff from 50 ms doubling to 2 s, each wait jittered by ±50% so racing
/// writers spread out. The seed comes from std's per-process random hasher keys.
struct Backoff {
    next: Duration,
    state: u64,
}

impl Backoff {
    fn new() -> Self {
        let mut hasher = std::hash::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        Backoff {
            next: FIRST_BACKOFF,
            state: hasher.finish() | 1,
        }
    }

    fn next_wait(&mut self) -> Duration {
        // xorshift64: plenty for spreading retries.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let factor = 0.5 + (self.state >> 11) as f64 / (1u64 << 53) as f64;
        let wait = self.next.mul_f64(factor);
        self.next = (self.next * 2).min(MAX_BACKOFF);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_userinfo_query_or_fragment() {
        let cases = [
            ("https://x-access-token:t0k@h/o/r.git", "https://h/o/r.git"),
            ("https://h/o/r.git?token=s3cr3t", "https://h/o/r.git?***"),
            (
                "https://u:p4ss@h/r.git?access_token=abc&x=1#frag",
                "https://h/r.git?***",
            ),
            ("https://h/r.git#s3cr3t", "https://h/r.git#***"),
            ("https://h?private_token=zz", "https://h?***"),
            ("git@github.com:o/r.git", "github.com:o/r.git"),
            ("/srv/a@b:c/r?.git", "/srv/a@b:c/r?.git"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let target = GitTarget {
            url: "https://h/r.git?access_token=s3cr3t-value".into(),
            branch: "main".into(),
            author_name: "a".into(),
            author_email: "a@b".into(),
        };
        assert!(!format!("{target:?}").contains("s3cr3t"));
    }

    #[test]
    fn messages_lose_the_url_credentials() {
        let raw = "https://u:pa55word@h/r.git?access_token=s3cr3t-one&private_token=s3cr3t-two";
        let shown = redact_url(raw);
        let message = format!(
            "failed to fetch {raw}: 401 for /r.git/info/refs?access_token=s3cr3t-one&\
             private_token=s3cr3t-two (token s3cr3t-two, user u:pa55word@)"
        );
        let text = scrub_message(&message, raw, &shown);
        for secret in ["pa55word", "s3cr3t-one", "s3cr3t-two"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            text.starts_with("failed to fetch https://h/r.git?***: 401"),
            "{text}"
        );
    }

    #[test]
    fn transports_are_told_apart() {
        let cases = [
            ("https://h/r.git", Transport::Https),
            ("HTTPS://h/r.git", Transport::Https),
            ("http://h/r.git", Transport::Http),
            ("ssh://git@h/r.git", Transport::Ssh),
            ("git+ssh://h/r.git", Transport::Ssh),
            ("git@github.com:o/r.git", Transport::Ssh),
            ("git://h/r.git", Transport::Other),
            ("file:///srv/r.git", Transport::Other),
            ("/srv/r.git", Transport::Other),
            ("./r:x", Transport::Other),
        ];
        for (url, want) in cases {
            assert_eq!(Transport::of(url), want, "{url}");
        }
        let remote = "https://h/r.git";
        assert_eq!(Transport::of_request(remote, remote), Transport::Https);
        assert_eq!(
            Transport::of_request(remote, "http://h/r.git"),
            Transport::Http
        );
        assert_eq!(
            Transport::of_request(remote, "ssh://h/r.git"),
            Transport::Other
        );
    }

    #[test]
    fn the_token_goes_only_to_https_and_keys_only_to_ssh() {
        let all =
            CredentialType::USER_PASS_PLAINTEXT | CredentialType::SSH_KEY | CredentialType::DEFAULT;
        let run = |t: Transport, token: bool| {
            let mut tried = CredentialType::empty();
            let mut offers = Vec::new();
            loop {
                let o = offer(t, all, &mut tried, token);
                offers.push(o);
                if matches!(o, Offer::Refuse(_)) {
                    return offers;
                }
            }
        };
        assert_eq!(
            run(Transport::Https, true),
            [
                Offer::Token,
                Offer::PlatformDefault,
                Offer::Refuse(NONE_USABLE)
            ]
        );
        assert_eq!(
            run(Transport::Https, false),
            [Offer::PlatformDefault, Offer::Refuse(NONE_USABLE)]
        );
        assert_eq!(run(Transport::Http, true), [Offer::Refuse(TOKEN_WITHHELD)]);
        assert!(TOKEN_WITHHELD.contains(TOKEN_ENV));
        assert_eq!(run(Transport::Http, false), [Offer::Refuse(PLAIN_HTTP)]);
        assert_eq!(
            run(Transport::Ssh, true),
            [Offer::SshAgent, Offer::Refuse(NONE_USABLE)]
        );
        assert_eq!(run(Transport::Other, true), [Offer::Refuse(NONE_USABLE)]);
        let mut tried = CredentialType::empty();
        assert_eq!(
            offer(Transport::Ssh, CredentialType::USERNAME, &mut tried, true),
            Offer::Username
        );
    }

    #[test]
    fn backoff_doubles_to_two_seconds_within_fifty_percent() {
        let mut backoff = Backoff::new();
        for base in [50, 100, 200, 400, 800, 1600, 2000, 2000].map(Duration::from_millis) {
            let wait = backoff.next_wait();
            assert!(
                wait >= base / 2 && wait <= base.mul_f64(1.5),
                "{wait:?} vs {base:?}"
            );
        }
    }
}
