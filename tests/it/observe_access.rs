//! Who may read the `--listen` endpoint (SPEC §9, issue 17): the `Host` check against DNS
//! rebinding (421), and the bearer token of `--listen-token-file` (401).

use std::net::SocketAddr;

use crate::common::*;
use crate::observe::{exchange, served_addr};

/// A GET of `path` with the given `Host` (none: HTTP/1.0 without one) and extra header lines.
fn ask(addr: SocketAddr, path: &str, host: Option<&str>, extra: &str) -> (u16, String, String) {
    let request = match host {
        Some(host) => format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n"),
        None => format!("GET {path} HTTP/1.0\r\n{extra}\r\n"),
    };
    exchange(addr, request.as_bytes())
}

/// See: issue 17. A page on another origin whose name is made to resolve to 127.0.0.1 (DNS
/// rebinding) sends its own name as `Host`; it must not read the status or the crash tails.
#[test]
fn issue_17_a_host_that_names_another_site_gets_421() {
    let env = Env::new();
    let r = env.start(&[
        "-n",
        "host",
        "--listen",
        "127.0.0.1:0",
        "--",
        "sleep",
        "300",
    ]);
    let addr = served_addr(&r);
    env.wait_child("host");
    let port = addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        // Through a tunnel (ssh -L 8080:127.0.0.1:PORT) the port is the tunnel's.
        "localhost:8080".to_string(),
    ] {
        let (status, head, body) = ask(addr, "/status", Some(&host), "");
        assert_eq!(status, 200, "Host: {host}\n{head}\n{body}");
        assert!(body.contains("\"name\":\"host\""), "Host: {host}: {body}");
    }
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("sub.localhost:{port}"),
        format!("10.1.2.3:{port}"),
        format!("[::1]:{port}"),
        format!("127.0.0.1:{port}@evil.example"),
        String::new(),
    ] {
        let (status, head, body) = ask(addr, "/status", Some(&host), "");
        assert_eq!(status, 421, "Host: {host:?}\n{head}\n{body}");
        assert!(
            head.starts_with("HTTP/1.1 421 Misdirected Request\r\n"),
            "{head}"
        );
        assert!(!body.contains("\"name\""), "Host: {host:?}: {body}");
    }
    // Browsers always send Host; a client that sends none (HTTP/1.0) cannot be a rebound page.
    let (status, _, body) = ask(addr, "/status", None, "");
    assert_eq!(status, 200, "{body}");
}
