//! The Git token (`BUILDPLANE_GIT_TOKEN`) never travels over plain http: a loopback server
//! plays a smart-http remote that wants credentials (it answers every request `401` with a
//! Basic challenge) and records every request head it receives. The emit runs in a child
//! process of this test binary, so the token is set in its environment only.

use buildplane::git::{Change, GitError, GitTarget, TOKEN_ENV, emit};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "tok-3f9a0c1d-never-in-clear";
/// Set in the child: the URL to emit to.
const CHILD_ENV: &str = "GIT_CREDENTIALS_CHILD_URL";

/// Every request head the server received, in order.
type Heads = Arc<Mutex<Vec<String>>>;

/// A loopback HTTP server answering `401 Unauthorized` (Basic) to everything.
fn asking_server() -> (String, Heads) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads: Heads = Arc::default();
    let seen = Arc::clone(&heads);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line == "\r\n" => break,
                    Ok(_) => head.push_str(&line),
                }
            }
            seen.lock().unwrap().push(head);
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (format!("http://127.0.0.1:{port}/org/repo.git"), heads)
}

/// In the child: one emit to the URL; prints its error.
fn child(url: &str) {
    let cache = tempfile::tempdir().unwrap();
    let target = GitTarget {
        url: url.to_owned(),
        branch: "main".into(),
        author_name: "buildplane".into(),
        author_email: "bp@example.com".into(),
    };
    let change = Change {
        path: "a/workload.yaml".into(),
        content: b"kind: Workload\n".to_vec(),
        message: "build".into(),
    };
    let err = emit(&target, cache.path(), &[change], Duration::from_secs(5))
        .expect_err("the remote refuses everything");
    assert!(matches!(err, GitError::Fetch { .. }), "{err}");
    println!("EMIT_ERROR={err}");
}

#[test]
fn the_token_is_never_sent_over_plain_http() {
    if let Ok(url) = std::env::var(CHILD_ENV) {
        return child(&url);
    }
    let (url, heads) = asking_server();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_token_is_never_sent_over_plain_http",
            "--nocapture",
        ])
        .env(CHILD_ENV, &url)
        .env(TOKEN_ENV, TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let heads = heads.lock().unwrap().clone();
    assert!(!heads.is_empty(), "the client never asked the server");
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"));
    for head in &heads {
        assert!(
            !head.to_ascii_lowercase().contains("\nauthorization:"),
            "credentials were sent over plain http:\n{head}"
        );
        assert!(!head.contains(TOKEN) && !head.contains(&basic), "{head}");
    }
    let error = stdout
        .lines()
        .find_map(|l| l.strip_prefix("EMIT_ERROR="))
        .unwrap_or_else(|| panic!("no error reported: {stdout}"));
    assert!(
        error.contains("BUILDPLANE_GIT_TOKEN is withheld") && error.contains(&url),
        "{error}"
    );
    assert!(!error.contains(TOKEN), "{error}");
}
