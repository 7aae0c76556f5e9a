//! A process's `GET /metrics` (its `--metrics-addr`), read as the Prometheus text it is
//! (tests/controller.rs and benches/controller.rs).
#![allow(dead_code)] // each crate uses its own part

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

/// The metrics text served at `addr` (empty when nothing answers there).
pub fn metrics(addr: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// `buildplane_api_requests_total` in `text`: (cluster, kind) → requests.
pub fn api_requests(text: &str) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("buildplane_api_requests_total{cluster=\"") else {
            continue;
        };
        let Some((cluster, rest)) = rest.split_once("\",kind=\"") else {
            continue;
        };
        let Some((kind, value)) = rest.split_once("\"} ") else {
            continue;
        };
        if let Ok(v) = value.trim().parse() {
            out.insert((cluster.to_owned(), kind.to_owned()), v);
        }
    }
    out
}
