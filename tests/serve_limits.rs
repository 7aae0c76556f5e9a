//! `/healthz` and `/metrics` under a flood of slow clients, on a real `buildplane sync`
//! process (its loop talks to the real test API server) whose open-files limit is low: the
//! probe is still answered within 1 s, the process does not spin, and slow clients are closed.

mod cluster;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /healthz`, with 1 s to connect and 1 s to answer.
fn healthz(port: u16) -> Result<String, String> {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// User + system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime), counted from the state field (3).
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_flood_of_slow_clients_cannot_keep_the_probe_out() {
    let kc = cluster::kubeconfig();
    let dir = tempfile::tempdir().unwrap();
    let port = cluster::free_port();
    let addr = format!("127.0.0.1:{port}");
    // 96 open files at most: the flood below is three times that.
    let child = Command::new("sh")
        .args(["-c", "ulimit -n 96 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_buildplane"))
        .args(["sync", "--dir"])
        .arg(dir.path())
        .args(["--interval", "1h", "--metrics-addr", &addr, "--kubeconfig"])
        .arg(&kc)
        .env_remove("KUBECONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sync = Killed(child);
    let started = Instant::now();
    while healthz(port).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "sync never served"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // 300 clients that send half a request and then nothing.
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        slow.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let asked = Instant::now();
        let answer = healthz(port).unwrap_or_else(|e| panic!("/healthz under the flood: {e}"));
        assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{:?}",
            asked.elapsed()
        );
    }

    // Not spinning: under half a core while the slow clients stay connected.
    let pid = sync.0.id();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    assert!(used < 100, "{used} ticks of CPU in 2 s");

    // Every slow client has been closed by the server by now (header timeout 3 s).
    std::thread::sleep(Duration::from_secs(2));
    let mut open = 0;
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(_) => {} // an error response, then closed
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open += 1,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => open += 1,
            Err(_) => {} // reset
        }
    }
    assert_eq!(open, 0, "slow clients still held open");
    assert!(healthz(port).is_ok());
}
